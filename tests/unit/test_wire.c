/* test_wire.c: protobuf over real ZeroMQ sockets (tcp on loopback). */
#include <pthread.h>
#include <zmq.h>

#include "check.h"
#include "empq/wire.h"

static void *ctx;

static void test_dealer_router(void)
{
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    CHECK_INT(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t len = sizeof ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len);
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, "w1", 2);
    CHECK_INT(zmq_connect(dealer, ep), 0);
    int t = 2000;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &t, sizeof t);
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &t, sizeof t);

    Empq__Hello hello = EMPQ__HELLO__INIT;
    hello.worker_id = "w1";
    hello.credit = 64;
    Empq__WorkerMsg wm = EMPQ__WORKER_MSG__INIT;
    wm.body_case = EMPQ__WORKER_MSG__BODY_HELLO;
    wm.hello = &hello;
    CHECK_INT(empq_wire_send(dealer, &wm.base, 0), EMPQ_OK);

    empq_wire_peer peer;
    ProtobufCMessage *m;
    empq_error err = {0};
    CHECK_INT(empq_wire_recv_from(router, &peer, &empq__worker_msg__descriptor, &m, 0, &err), EMPQ_OK);
    CHECK_INT(peer.len, 2);
    CHECK(memcmp(peer.id, "w1", 2) == 0);
    Empq__WorkerMsg *got = (Empq__WorkerMsg *)m;
    CHECK_INT(got->body_case, EMPQ__WORKER_MSG__BODY_HELLO);
    CHECK_INT(got->hello->credit, 64);
    protobuf_c_message_free_unpacked(m, NULL);

    Empq__Job j = EMPQ__JOB__INIT;
    j.index = 7;
    Empq__Job *jobs[] = {&j};
    Empq__JobBatch batch = EMPQ__JOB_BATCH__INIT;
    batch.run_id = "r";
    batch.n_jobs = 1;
    batch.jobs = jobs;
    Empq__BrokerMsg bm = EMPQ__BROKER_MSG__INIT;
    bm.body_case = EMPQ__BROKER_MSG__BODY_JOBS;
    bm.jobs = &batch;
    CHECK_INT(empq_wire_send_to(router, &peer, &bm.base, 0), EMPQ_OK);
    CHECK_INT(empq_wire_recv(dealer, &empq__broker_msg__descriptor, &m, 0, &err), EMPQ_OK);
    CHECK_INT(((Empq__BrokerMsg *)m)->jobs->jobs[0]->index, 7);
    protobuf_c_message_free_unpacked(m, NULL);

    /* garbage is dropped with EMPQ_EPARSE, and the next message still arrives */
    zmq_send(dealer, "\xff\xff\xff\xff\xff", 5, 0);
    CHECK_INT(empq_wire_send(dealer, &wm.base, 0), EMPQ_OK);
    CHECK_INT(empq_wire_recv_from(router, &peer, &empq__worker_msg__descriptor, &m, 0, &err), EMPQ_EPARSE);
    CHECK(m == NULL);
    CHECK_CONTAINS(err.msg, "undecodable");
    CHECK_INT(empq_wire_recv_from(router, &peer, &empq__worker_msg__descriptor, &m, 0, &err), EMPQ_OK);
    protobuf_c_message_free_unpacked(m, NULL);

    /* an unexpected extra frame is dropped whole */
    zmq_send(dealer, "a", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "b", 1, 0);
    CHECK_INT(empq_wire_recv_from(router, &peer, &empq__worker_msg__descriptor, &m, 0, &err), EMPQ_EPARSE);

    /* nothing to read */
    CHECK_INT(empq_wire_recv(dealer, &empq__broker_msg__descriptor, &m, ZMQ_DONTWAIT, &err), EMPQ_ETIMEOUT);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(dealer);
    zmq_close(router);
}

static char control_ep[128];

static void *responder(void *arg)
{
    void *router = arg;
    empq_wire_peer peer;
    ProtobufCMessage *m;
    if (empq_wire_recv_from(router, &peer, &empq__control_request__descriptor, &m, 0, NULL) != EMPQ_OK)
        return NULL;
    Empq__ControlReply rep = EMPQ__CONTROL_REPLY__INIT;
    rep.ok = ((Empq__ControlRequest *)m)->body_case == EMPQ__CONTROL_REQUEST__BODY_PING;
    protobuf_c_message_free_unpacked(m, NULL);
    empq_wire_send_to(router, &peer, &rep.base, 0);
    return NULL;
}

static void test_control(void)
{
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    CHECK_INT(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof control_ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, control_ep, &len);
    pthread_t th;
    pthread_create(&th, NULL, responder, router);
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_PING;
    req.ping = 1;
    Empq__ControlReply *rep;
    empq_error err = {0};
    CHECK_INT(empq_wire_control(ctx, control_ep, &req, 2000, &rep, &err), EMPQ_OK);
    CHECK(rep->ok);
    empq__control_reply__free_unpacked(rep, NULL);
    pthread_join(th, NULL);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(router);

    /* nobody listening: a clear timeout naming the endpoint */
    CHECK_INT(empq_wire_control(ctx, "tcp://127.0.0.1:1", &req, 300, &rep, &err), EMPQ_ETIMEOUT);
    CHECK_CONTAINS(err.msg, "tcp://127.0.0.1:1");
    CHECK_INT(empq_wire_control(ctx, "bogus://x", &req, 300, &rep, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "bogus://x");
}

int main(void)
{
    ctx = zmq_ctx_new();
    RUN(test_dealer_router);
    RUN(test_control);
    zmq_ctx_term(ctx);
    CHECK_DONE();
}
