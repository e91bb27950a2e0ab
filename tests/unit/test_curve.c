/* test_curve.c: keygen, key loading, the allow-list, and a CURVE
 * ROUTER/DEALER pair over real tcp on loopback with the ZAP handler polled
 * in this thread: an allowed key gets through, a foreign key does not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "empq/curve.h"
#include "empq/util.h"

static char dir[256];

static void path_of(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

static void write_text(const char *name, const char *text)
{
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void test_keygen(void)
{
    char pub[EMPQ_CURVE_KEY_LEN + 1];
    empq_error err = {0};
    CHECK_INT(empq_curve_keygen(dir, "broker", pub, &err), EMPQ_OK);
    CHECK_INT(strlen(pub), 40);
    char kp[512], pp[512];
    path_of(kp, sizeof kp, "broker.key");
    path_of(pp, sizeof pp, "broker.pub");
    struct stat st;
    CHECK_INT(stat(kp, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    char k[EMPQ_CURVE_KEY_LEN + 1], p[EMPQ_CURVE_KEY_LEN + 1], derived[EMPQ_CURVE_KEY_LEN + 1];
    CHECK_INT(empq_curve_read_key(pp, p, &err), EMPQ_OK);
    CHECK_STR(p, pub);
    CHECK_INT(empq_curve_read_key(kp, k, &err), EMPQ_OK);
    CHECK_INT(zmq_curve_public(derived, k), 0);
    CHECK_STR(derived, pub);
    /* never overwritten */
    CHECK_INT(empq_curve_keygen(dir, "broker", NULL, &err), EMPQ_EEXIST);
    CHECK_INT(empq_curve_keygen(dir, "../evil", NULL, &err), EMPQ_EINVAL);
    CHECK_INT(empq_curve_keygen("/nonexistent-empq-folder", "x", NULL, &err), EMPQ_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent-empq-folder");
    CHECK_INT(empq_curve_keygen(dir, "w1", NULL, &err), EMPQ_OK);
    CHECK_INT(empq_curve_keygen(dir, "w2", NULL, &err), EMPQ_OK);
    CHECK_INT(empq_curve_keygen(dir, "cli", NULL, &err), EMPQ_OK);
    CHECK_INT(empq_curve_keygen(dir, "stranger", NULL, &err), EMPQ_OK);
}

static void test_read_errors(void)
{
    char key[EMPQ_CURVE_KEY_LEN + 1], p[512];
    empq_error err = {0};
    write_text("bad.pub", "# comment\nnot-a-key\n");
    path_of(p, sizeof p, "bad.pub");
    CHECK_INT(empq_curve_read_key(p, key, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "bad.pub:2");
    empq_error_clear(&err);
    write_text("empty.txt", "");
    path_of(p, sizeof p, "empty.txt");
    CHECK_INT(empq_curve_read_key(p, key, &err), EMPQ_EPARSE);
    path_of(p, sizeof p, "missing.pub");
    CHECK_INT(empq_curve_read_key(p, key, &err), EMPQ_EIO);
    unlink(p);
    path_of(p, sizeof p, "bad.pub");
    unlink(p);
    path_of(p, sizeof p, "empty.txt");
    unlink(p);
}

/* The allow-list as a folder (a copy of w1.pub and cli.pub) and as a file. */
static void make_allow(char *folder, size_t flen, char *file, size_t len)
{
    snprintf(folder, flen, "%s/allow", dir);
    CHECK_INT(mkdir(folder, 0755), 0);
    char src[512], k[EMPQ_CURVE_KEY_LEN + 1], dst[600];
    empq_error err = {0};
    const char *names[] = {"w1", "cli"};
    char text[512] = "# allowed\n\n";
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s.pub", dir, names[i]);
        CHECK_INT(empq_curve_read_key(src, k, &err), EMPQ_OK);
        snprintf(dst, sizeof dst, "%s/%s.pub", folder, names[i]);
        FILE *f = fopen(dst, "w");
        CHECK(f != NULL);
        fprintf(f, "%s %s\n", k, names[i]);
        fclose(f);
        strncat(text, k, sizeof text - strlen(text) - 1);
        strncat(text, "\n", sizeof text - strlen(text) - 1);
    }
    write_text("allow.txt", text);
    snprintf(file, len, "%s/allow.txt", dir);
}

/* Sends "hello" from a DEALER with client key `name`; polls the ZAP handler
 * and the router up to ms. Returns 1 when the router got it. */
static int try_client(void *ctx, empq_curve_zap *zap, void *router, const char *ep, const char *name, int ms)
{
    char sk[512], spub[512];
    snprintf(sk, sizeof sk, "%s/%s.key", dir, name);
    snprintf(spub, sizeof spub, "%s/broker.pub", dir);
    empq_curve_opts co = {sk, spub, NULL};
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    empq_error err = {0};
    CHECK_INT(empq_curve_client_setup(dealer, &co, &err), EMPQ_OK);
    CHECK_INT(zmq_connect(dealer, ep), 0);
    zmq_send(dealer, "hello", 5, ZMQ_DONTWAIT);
    int got = 0;
    uint64_t end = empq_mono_ms() + (uint64_t)ms;
    while (!got && empq_mono_ms() < end) {
        zmq_pollitem_t it[2] = {{empq_curve_zap_socket(zap), 0, ZMQ_POLLIN, 0}, {router, 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 50);
        if (it[0].revents & ZMQ_POLLIN)
            empq_curve_zap_handle(zap);
        if (it[1].revents & ZMQ_POLLIN) {
            char id[256], body[16];
            zmq_recv(router, id, sizeof id, 0);
            int n = zmq_recv(router, body, sizeof body, 0);
            got = n == 5 && memcmp(body, "hello", 5) == 0;
        }
    }
    zmq_close(dealer);
    return got;
}

static void test_pair(const char *allow)
{
    void *ctx = zmq_ctx_new();
    empq_error err = {0};
    empq_curve_zap *zap = NULL;
    CHECK_INT(empq_curve_zap_open(&zap, ctx, allow, &err), EMPQ_OK);
    size_t keys = 0;
    empq_curve_zap_stats(zap, NULL, NULL, &keys);
    CHECK_INT(keys, 2);
    char sk[512];
    snprintf(sk, sizeof sk, "%s/broker.key", dir);
    empq_curve_opts so = {sk, NULL, allow};
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    CHECK_INT(empq_curve_server_setup(router, &so, &err), EMPQ_OK);
    CHECK_INT(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t len = sizeof ep;
    zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len);

    CHECK_INT(try_client(ctx, zap, router, ep, "w1", 3000), 1);
    CHECK_INT(try_client(ctx, zap, router, ep, "stranger", 800), 0);
    CHECK_INT(try_client(ctx, zap, router, ep, "w2", 800), 0);
    CHECK_INT(try_client(ctx, zap, router, ep, "cli", 3000), 1);
    uint64_t allowed = 0, refused = 0;
    empq_curve_zap_stats(zap, &allowed, &refused, NULL);
    CHECK(allowed >= 2);
    CHECK(refused >= 2);

    /* a plain (no CURVE) client is not let in either */
    void *plain = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(plain, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(plain, ep);
    zmq_send(plain, "hello", 5, ZMQ_DONTWAIT);
    zmq_pollitem_t it[2] = {{empq_curve_zap_socket(zap), 0, ZMQ_POLLIN, 0}, {router, 0, ZMQ_POLLIN, 0}};
    uint64_t end = empq_mono_ms() + 500;
    while (empq_mono_ms() < end) {
        zmq_poll(it, 2, 50);
        if (it[0].revents & ZMQ_POLLIN)
            empq_curve_zap_handle(zap);
        CHECK(!(it[1].revents & ZMQ_POLLIN));
    }
    zmq_close(plain);
    zmq_close(router);
    empq_curve_zap_close(&zap);
    CHECK(zap == NULL);
    empq_curve_zap_close(&zap);
    zmq_ctx_term(ctx);
}

static void test_setup_errors(void)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    empq_error err = {0};
    empq_curve_opts off = EMPQ_CURVE_OPTS_INIT;
    CHECK_INT(empq_curve_client_setup(s, &off, &err), EMPQ_OK);
    char sk[512];
    snprintf(sk, sizeof sk, "%s/w1.key", dir);
    empq_curve_opts nopub = {sk, NULL, NULL};
    CHECK_INT(empq_curve_client_setup(s, &nopub, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "public key");
    empq_curve_zap *z = NULL;
    char p[512];
    path_of(p, sizeof p, "nothing-here");
    CHECK_INT(empq_curve_zap_open(&z, ctx, p, &err), EMPQ_EIO);
    write_text("allow-empty.txt", "# none\n");
    path_of(p, sizeof p, "allow-empty.txt");
    CHECK_INT(empq_curve_zap_open(&z, ctx, p, &err), EMPQ_EINVAL);
    CHECK(z == NULL);
    unlink(p);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    if (!empq_curve_available())
        SKIP("libzmq has no CURVE support");
    snprintf(dir, sizeof dir, "/tmp/empq-test-curve-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    atexit(cleanup);
    RUN(test_keygen);
    RUN(test_read_errors);
    char folder[512], file[512];
    make_allow(folder, sizeof folder, file, sizeof file);
    fprintf(stderr, "-- test_pair(folder)\n");
    test_pair(folder);
    fprintf(stderr, "-- test_pair(file)\n");
    test_pair(file);
    RUN(test_setup_errors);
    CHECK_DONE();
}
