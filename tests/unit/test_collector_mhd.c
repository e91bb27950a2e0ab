/* test_collector_mhd.c: the listener plumbing the rating site and the
 * study console share (collector/mhd.c): the bind-address parser, a real
 * daemon on a free loopback port serving one page and stopping, the port
 * file, the port-in-use error, and libmicrohttpd's log lines. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "empq/log.h"
#include "mhd.h"

/* ==================== the bind address ==================== */

static void test_addr_ipv4(void)
{
    struct sockaddr_storage a;
    empq_error err = {0};
    CHECK_INT(collector__mhd_addr(&a, "site", "127.0.0.1", 8080, &err), EMPQ_OK);
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&a;
    CHECK_INT(a4->sin_family, AF_INET);
    CHECK_INT(ntohs(a4->sin_port), 8080);
    CHECK_INT(ntohl(a4->sin_addr.s_addr), 0x7f000001);
    CHECK_INT(collector__mhd_addr(&a, "site", "0.0.0.0", 0, &err), EMPQ_OK);
    CHECK_INT(a4->sin_family, AF_INET);
    CHECK_INT(a4->sin_port, 0);
    CHECK_INT(a4->sin_addr.s_addr, 0);
    CHECK_INT(collector__mhd_addr(&a, "site", "10.1.2.3", 65535, &err), EMPQ_OK);
    CHECK_INT(ntohs(a4->sin_port), 65535);
    CHECK_INT(ntohl(a4->sin_addr.s_addr), 0x0a010203);
}

static void test_addr_ipv6(void)
{
    struct sockaddr_storage a;
    empq_error err = {0};
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&a;
    CHECK_INT(collector__mhd_addr(&a, "console", "::1", 9090, &err), EMPQ_OK);
    CHECK_INT(a6->sin6_family, AF_INET6);
    CHECK_INT(ntohs(a6->sin6_port), 9090);
    CHECK(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));
    CHECK_INT(collector__mhd_addr(&a, "console", "::", 1, &err), EMPQ_OK);
    CHECK_INT(a6->sin6_family, AF_INET6);
    CHECK(IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr));
    CHECK_INT(collector__mhd_addr(&a, "console", "fd00::2", 443, &err), EMPQ_OK);
    CHECK_INT(a6->sin6_addr.s6_addr[0], 0xfd);
    CHECK_INT(a6->sin6_addr.s6_addr[15], 2);
    CHECK_INT(collector__mhd_addr(&a, "console", "::ffff:127.0.0.1", 443, &err), EMPQ_OK);
    CHECK_INT(a6->sin6_family, AF_INET6);
    CHECK(IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr));
}

static void test_addr_refused(void)
{
    static const struct {
        const char *who, *bind;
        int port;
        const char *msg;
    } cases[] = {
        /* names, even one that resolves, are not addresses */
        {"site", "localhost", 80, "site: 'localhost' is not an IP address"},
        {"console", "example.org", 80, "console: 'example.org' is not an IP address"},
        {"site", "", 80, "site: '' is not an IP address"},
        {"site", "127.0.0.1:80", 80, "site: '127.0.0.1:80' is not an IP address"},
        {"site", "[::1]", 80, "site: '[::1]' is not an IP address"},
        {"site", "256.1.1.1", 80, "site: '256.1.1.1' is not an IP address"},
        {"site", "127.0.0.1", 65536, "site: port 65536 is out of range"},
        {"console", "::1", -1, "console: port -1 is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sockaddr_storage a;
        empq_error err = {0};
        CHECK_INT(collector__mhd_addr(&a, cases[i].who, cases[i].bind, cases[i].port, &err), EMPQ_EINVAL);
        CHECK_STR(err.msg, cases[i].msg);
    }
}

/* ==================== a real daemon ==================== */

typedef struct served {
    int requests;
    int completed;
} served;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls)
{
    (void)method, (void)version, (void)data, (void)data_size, (void)con_cls;
    served *s = cls;
    __atomic_add_fetch(&s->requests, 1, __ATOMIC_SEQ_CST);
    empq_buf b = {0};
    empq_buf_printf(&b, "hello from %s\n", url);
    struct MHD_Response *r = collector__mhd_page(&b, "text/plain; charset=utf-8", "no-referrer", "default-src 'none'");
    CHECK(b.data == NULL && b.len == 0); /* the bytes moved to the response */
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)con_cls, (void)toe;
    served *s = cls;
    __atomic_add_fetch(&s->completed, 1, __ATOMIC_SEQ_CST);
}

/* One GET over a real socket to host:port (family af); the whole answer
 * into out (NUL-terminated). Returns the bytes read, or -1 when the
 * connection is refused. */
static int http_get(int af, const char *host, unsigned port, const char *path, char *out, size_t cap)
{
    struct sockaddr_storage a;
    empq_error err = {0};
    CHECK_INT(collector__mhd_addr(&a, "test", host, (int)port, &err), EMPQ_OK);
    int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    socklen_t len = af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (connect(fd, (struct sockaddr *)&a, len) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);
    CHECK_INT(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
    return (int)got;
}

static void test_daemon_serves_and_stops(void)
{
    served s = {0};
    char port_file[] = "/tmp/empq-mhd-port-XXXXXX";
    int pf = mkstemp(port_file);
    CHECK(pf >= 0);
    close(pf);
    collector__mhd_opts o;
    collector__mhd_opts_default(&o);
    o.who = "test";
    o.log_event = "test_http";
    o.port = 0; /* a free port */
    o.port_file = port_file;
    o.listen_backlog = 64;
    o.on_request = on_request;
    o.on_completed = on_completed;
    o.cls = &s;
    struct MHD_Daemon *d = NULL;
    unsigned port = 0;
    empq_error err = {0};
    CHECK_INT(collector__mhd_start(&d, &port, &o, &err), EMPQ_OK);
    CHECK(d != NULL);
    CHECK(port > 0 && port <= 65535);
    char txt[32] = {0}, want[32];
    FILE *f = fopen(port_file, "r");
    CHECK(f != NULL);
    CHECK(fgets(txt, sizeof txt, f) != NULL);
    fclose(f);
    snprintf(want, sizeof want, "%u\n", port);
    CHECK_STR(txt, want);

    char resp[4096];
    CHECK(http_get(AF_INET, "127.0.0.1", port, "/page", resp, sizeof resp) > 0);
    CHECK_CONTAINS(resp, "HTTP/1.1 200 OK\r\n");
    CHECK_CONTAINS(resp, "Content-Type: text/plain; charset=utf-8\r\n");
    CHECK_CONTAINS(resp, "Cache-Control: no-store\r\n");
    CHECK_CONTAINS(resp, "X-Content-Type-Options: nosniff\r\n");
    CHECK_CONTAINS(resp, "Referrer-Policy: no-referrer\r\n");
    CHECK_CONTAINS(resp, "X-Frame-Options: DENY\r\n");
    CHECK_CONTAINS(resp, "Content-Security-Policy: default-src 'none'\r\n");
    CHECK_CONTAINS(resp, "\r\n\r\nhello from /page\n");
    CHECK_INT(__atomic_load_n(&s.requests, __ATOMIC_SEQ_CST), 1);

    collector__mhd_stop(&d);
    CHECK(d == NULL);
    CHECK_INT(s.completed, 1); /* on_completed ran before stop returned */
    CHECK_INT(http_get(AF_INET, "127.0.0.1", port, "/page", resp, sizeof resp), -1); /* nothing listens */
    collector__mhd_stop(&d);  /* already stopped */
    collector__mhd_stop(NULL);

    /* a port file that cannot be written: an error, and the port is free again */
    o.port = (int)port;
    o.port_file = "/nonexistent/dir/port";
    d = (struct MHD_Daemon *)1;
    CHECK(collector__mhd_start(&d, &port, &o, &err) != EMPQ_OK);
    CHECK(d == NULL);
    CHECK_CONTAINS(err.msg, "/nonexistent/dir/port");
    o.port_file = NULL;
    unsigned again = 0;
    CHECK_INT(collector__mhd_start(&d, &again, &o, &err), EMPQ_OK);
    CHECK_INT(again, port);
    collector__mhd_stop(&d);
    unlink(port_file);
}

static void test_daemon_ipv6(void)
{
    served s = {0};
    collector__mhd_opts o;
    collector__mhd_opts_default(&o);
    o.who = "test";
    o.log_event = "test_http";
    o.bind = "::1";
    o.on_request = on_request;
    o.cls = &s;
    struct MHD_Daemon *d = NULL;
    unsigned port = 0;
    empq_error err = {0};
    int rc = collector__mhd_start(&d, &port, &o, &err);
    if (rc != EMPQ_OK && access("/proc/net/if_inet6", F_OK) != 0) {
        fprintf(stderr, "   (no IPv6 on this machine: the ::1 daemon is not tried)\n");
        return;
    }
    CHECK_INT(rc, EMPQ_OK);
    char resp[4096];
    CHECK(http_get(AF_INET6, "::1", port, "/six", resp, sizeof resp) > 0);
    CHECK_CONTAINS(resp, "HTTP/1.1 200 OK\r\n");
    CHECK_CONTAINS(resp, "hello from /six\n");
    collector__mhd_stop(&d);
}

/* Reads f from its start into out. */
static void slurp(FILE *f, char *out, size_t cap)
{
    fflush(f);
    rewind(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
}

static void test_port_in_use(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_INT(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_INT(listen(fd, 4), 0);
    socklen_t len = sizeof a;
    CHECK_INT(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    unsigned taken = ntohs(a.sin_port);

    FILE *log = tmpfile();
    CHECK(log != NULL);
    empq_log_set_output(log);
    empq_log_limits_reset();
    served s = {0};
    collector__mhd_opts o;
    collector__mhd_opts_default(&o);
    o.who = "site";
    o.log_event = "site_http";
    o.port = (int)taken;
    o.on_request = on_request;
    o.cls = &s;
    struct MHD_Daemon *d = (struct MHD_Daemon *)1;
    unsigned port = 0;
    empq_error err = {0};
    CHECK_INT(collector__mhd_start(&d, &port, &o, &err), EMPQ_EIO);
    CHECK(d == NULL);
    char want[128];
    snprintf(want, sizeof want, "site: cannot listen on 127.0.0.1 port %u (in use?)", taken);
    CHECK_STR(err.msg, want);
    /* libmicrohttpd said why, through the shared logger */
    char text[4096];
    slurp(log, text, sizeof text);
    CHECK_CONTAINS(text, "event=site_http error=");
    empq_log_set_output(NULL);
    fclose(log);
    close(fd);
}

/* ==================== the log ==================== */

static void mhd_log(const char *event, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mhd_log(const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    collector__mhd_log((void *)event, fmt, ap);
    va_end(ap);
}

static void test_log(void)
{
    FILE *log = tmpfile();
    CHECK(log != NULL);
    empq_log_set_output(log);
    empq_log_limits_reset();
    mhd_log("console_http", "Failed to bind to port %u: %s\r\n", 8080u, "Address already in use");
    char text[4096];
    slurp(log, text, sizeof text);
    CHECK_CONTAINS(text, "level=warn");
    CHECK_CONTAINS(text, "event=console_http error=\"Failed to bind to port 8080: Address already in use\"");
    CHECK(strstr(text, "\\r") == NULL && strstr(text, "\\n") == NULL); /* the line ends trimmed */
    /* a repeat within the interval is held back; another event is not */
    mhd_log("console_http", "Failed to bind to port %u: %s\n", 8081u, "again");
    mhd_log("site_http", "Error accepting connection: %s\n", "Too many open files");
    slurp(log, text, sizeof text);
    CHECK(strstr(text, "port 8081") == NULL);
    CHECK_CONTAINS(text, "event=site_http error=\"Error accepting connection: Too many open files\"");
    empq_log_set_output(NULL);
    fclose(log);
}

int main(void)
{
    RUN(test_addr_ipv4);
    RUN(test_addr_ipv6);
    RUN(test_addr_refused);
    RUN(test_daemon_serves_and_stops);
    RUN(test_daemon_ipv6);
    RUN(test_port_in_use);
    RUN(test_log);
    CHECK_DONE();
}
