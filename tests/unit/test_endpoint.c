/* test_endpoint.c: loopback checks of endpoints and listen addresses, and
 * localhost made an address ZeroMQ can bind: a real ROUTER binds
 * "tcp://localhost:PORT" through empq_endpoint_resolve and a DEALER that
 * connects to the same text reaches it. */
#include <string.h>
#include <zmq.h>

#include "check.h"
#include "empq/endpoint.h"

static void test_loopback(void)
{
    CHECK(empq_endpoint_is_loopback("tcp://127.0.0.1:5555"));
    CHECK(empq_endpoint_is_loopback("tcp://127.3.2.1:5555"));
    CHECK(empq_endpoint_is_loopback("tcp://localhost:5555"));
    CHECK(empq_endpoint_is_loopback("tcp://[::1]:5555"));
    CHECK(empq_endpoint_is_loopback("tcp://::1:5555"));
    CHECK(empq_endpoint_is_loopback("ipc:///tmp/empq.sock"));
    CHECK(empq_endpoint_is_loopback("inproc://x"));
    CHECK(!empq_endpoint_is_loopback("tcp://0.0.0.0:5555"));
    CHECK(!empq_endpoint_is_loopback("tcp://*:5555"));
    CHECK(!empq_endpoint_is_loopback("tcp://10.0.0.5:5555"));
    CHECK(!empq_endpoint_is_loopback("tcp://127.example.com:5555"));
    CHECK(!empq_endpoint_is_loopback("tcp://localhost.evil.com:5555"));
    CHECK(!empq_endpoint_is_loopback("tcp://eth0:5555"));
    CHECK(!empq_endpoint_is_loopback("udp://127.0.0.1:5555"));
    CHECK(!empq_endpoint_is_loopback("tcp://127.0.0.1"));
    CHECK(!empq_endpoint_is_loopback("tcp://localhost:"));

    CHECK(empq_listen_addr_is_loopback("127.0.0.1:9100"));
    CHECK(empq_listen_addr_is_loopback("localhost:9100"));
    CHECK(empq_listen_addr_is_loopback("127.0.0.2:0"));
    CHECK(!empq_listen_addr_is_loopback("0.0.0.0:9100"));
    CHECK(!empq_listen_addr_is_loopback(":9100"));
    CHECK(!empq_listen_addr_is_loopback("10.1.2.3:9100"));
    CHECK(!empq_listen_addr_is_loopback("9100"));
    CHECK(!empq_listen_addr_is_loopback("localhost"));
}

static void test_resolve(void)
{
    char out[64];
    CHECK_STR(empq_endpoint_resolve("tcp://localhost:5555", out, sizeof out), "tcp://127.0.0.1:5555");
    CHECK_STR(empq_endpoint_resolve("tcp://127.0.0.1:5555", out, sizeof out), "tcp://127.0.0.1:5555");
    CHECK_STR(empq_endpoint_resolve("tcp://localhost.example.com:1", out, sizeof out),
              "tcp://localhost.example.com:1");
    CHECK_STR(empq_endpoint_resolve("ipc:///tmp/x", out, sizeof out), "ipc:///tmp/x");
    char tiny[8];
    CHECK(empq_endpoint_resolve("tcp://localhost:5555", tiny, sizeof tiny) == NULL);
    CHECK_STR(tiny, "");
}

/* What the broker and a worker do with "tcp://localhost:*": the bind takes
 * the resolved text; the connect, the endpoint the bind reports. */
static void test_bind_localhost(void)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    CHECK(zmq_bind(router, "tcp://localhost:*") != 0); /* ZeroMQ alone: "No such device" */
    char ep[64];
    CHECK(empq_endpoint_resolve("tcp://localhost:*", ep, sizeof ep) != NULL);
    CHECK_INT(zmq_bind(router, ep), 0);
    char bound[64];
    size_t blen = sizeof bound;
    CHECK_INT(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, bound, &blen), 0);
    const char *port = strrchr(bound, ':');
    CHECK(port != NULL);
    char by_name[64], conn[64];
    snprintf(by_name, sizeof by_name, "tcp://localhost%s", port);
    CHECK(empq_endpoint_resolve(by_name, conn, sizeof conn) != NULL);
    CHECK_INT(zmq_connect(dealer, conn), 0);
    CHECK_INT(zmq_send(dealer, "hi", 2, 0), 2);
    char buf[16];
    CHECK(zmq_recv(router, buf, sizeof buf, 0) > 0); /* the routing id */
    CHECK_INT(zmq_recv(router, buf, sizeof buf, 0), 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

int main(void)
{
    RUN(test_loopback);
    RUN(test_resolve);
    RUN(test_bind_localhost);
    CHECK_DONE();
}
