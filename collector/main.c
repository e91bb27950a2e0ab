/* main.c: empq-collector: follow the results stream, write responses.jsonl
 * for every run once all its jobs are done or dead. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "console.h"
#include "mhd.h"
#include "site.h"
#include "empq/cliopt.h"
#include "empq/log.h"
#include "empq/util.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empq-collector [--redis URL] [--out DIR] [--name NAME]\n"
            "  --redis URL   Redis (default $EMPQ_REDIS_URL or redis://127.0.0.1:6379)\n"
            "  --out DIR     write DIR/<run>/responses.jsonl (default ./runs)\n"
            "  --name NAME   consumer name in the group \"collector\" (default collector-1)\n"
            "  --site PORT   also serve the rating site on PORT (0: any free port)\n"
            "  --site-bind ADDR       address of the rating site (default 127.0.0.1)\n"
            "  --site-port-file FILE  write the rating site's port to FILE\n"
            "  --console [HOST:]PORT  also serve the read-only study console (HOST default\n"
            "                         127.0.0.1; PORT 0: any free port). Beyond loopback it\n"
            "                         needs a token: from --console-token-file, else generated\n"
            "                         and printed at start\n"
            "  --console-port-file FILE   write the console's port to FILE\n"
            "  --console-token-file FILE  the console's token (first line, 16-256 characters)\n"
            "  --console-require-token    a token even on loopback\n"
            "  --broker-control EP    the broker's control endpoint, for the console's counts\n"
            "                         (default $EMPQ_BROKER_CONTROL; none: counts from Redis)\n"
            "  --help, --version      this text; the version and the git commit built from\n");
}

/* url with its user:password@ part replaced by ***@, for logs. */
static const char *mask_url(char *buf, size_t len, const char *url)
{
    const char *host = strstr(url, "://");
    host = host != NULL ? host + 3 : url;
    const char *at = strrchr(host, '@');
    if (at == NULL)
        snprintf(buf, len, "%s", url);
    else
        snprintf(buf, len, "%.*s***@%s", (int)(host - url), url, at + 1);
    return buf;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Parses --console's "[HOST:]PORT" ("[V6]:PORT" for IPv6; HOST default
 * 127.0.0.1) into host (64 bytes) and *port. EMPQ_OK or EMPQ_EINVAL with
 * err saying what was given. */
static int parse_console_at(const char *at, char *host, int *port, empq_error *err)
{
    snprintf(host, 64, "127.0.0.1");
    const char *port_s = at;
    const char *colon = strrchr(at, ':');
    if (colon != NULL) {
        const char *h = at;
        size_t n = (size_t)(colon - at);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
            h++, n -= 2;
        if (n == 0 || n >= 64)
            return empq_error_set(err, EMPQ_EINVAL, "--console needs [HOST:]PORT, got '%s'", at);
        snprintf(host, 64, "%.*s", (int)n, h);
        port_s = colon + 1;
    }
    char *end = NULL;
    long v = strtol(port_s, &end, 10);
    if (end == port_s || *end != '\0' || v < 0 || v > 65535)
        return empq_error_set(err, EMPQ_EINVAL, "--console needs [HOST:]PORT with a port 0-65535, got '%s'", at);
    *port = (int)v;
    struct sockaddr_storage addr;
    if (collector__mhd_addr(&addr, "--console", host, *port, err) != EMPQ_OK)
        return empq_error_set(err, EMPQ_EINVAL, "--console needs an IP address as HOST, got '%s'", at);
    return EMPQ_OK;
}

/* Starts the console (co's bind and port parsed already); logs and
 * returns the error. */
static int start_console(console **out, console__opts *co, const collector__opts *o)
{
    empq_error err = {0};
    co->redis_url = o->redis_url;
    co->out_dir = o->out_dir;
    if (co->control != NULL && co->control[0] == '\0')
        co->control = NULL;
    int rc = console__start(out, co, &err);
    if (rc != EMPQ_OK) {
        char q[600];
        EMPQ_ERROR("event=console_failed error=%s", empq_log_quote(q, sizeof q, err.msg));
        return rc;
    }
    const char *tok = console__token(*out), *host = co->bind;
    EMPQ_INFO("event=console_started bind=%s port=%u token=%s broker=%s", host, console__port(*out),
              tok == NULL ? "none" : co->token_file != NULL ? "from-file" : "generated",
              co->control != NULL ? co->control : "none");
    if (tok != NULL && co->token_file == NULL)
        fprintf(stderr, "empq-collector: console: open http://%s%s%s:%u/?token=%s\n", strchr(host, ':') ? "[" : "",
                host, strchr(host, ':') ? "]" : "", console__port(*out), tok);
    return EMPQ_OK;
}

int main(int argc, char **argv)
{
    empq_log_init("empq-collector", EMPQ_LOG_INFO);
    collector__opts o;
    collector__opts_default(&o);
    const char *site_port = NULL, *site_bind = "127.0.0.1", *site_port_file = NULL;
    const char *console_at = NULL;
    char console_host[64];
    console__opts co = {0};
    co.control = getenv("EMPQ_BROKER_CONTROL");
    enum { REDIS = EMPQ_CLIOPT_FIRST, OUT, NAME, SITE, SITE_BIND, PORT_FILE, CONSOLE, CONSOLE_PORT_FILE,
           CONSOLE_TOKEN_FILE, CONSOLE_REQUIRE_TOKEN, BROKER_CONTROL };
    static const struct option opts[] = {
        EMPQ_CLIOPT_HELP_ENTRY,                                 EMPQ_CLIOPT_VERSION_ENTRY,
        {"redis", required_argument, NULL, REDIS},              {"out", required_argument, NULL, OUT},
        {"name", required_argument, NULL, NAME},                {"site", required_argument, NULL, SITE},
        {"site-bind", required_argument, NULL, SITE_BIND},      {"site-port-file", required_argument, NULL, PORT_FILE},
        {"console", required_argument, NULL, CONSOLE},
        {"console-port-file", required_argument, NULL, CONSOLE_PORT_FILE},
        {"console-token-file", required_argument, NULL, CONSOLE_TOKEN_FILE},
        {"console-require-token", no_argument, NULL, CONSOLE_REQUIRE_TOKEN},
        {"broker-control", required_argument, NULL, BROKER_CONTROL},
        {0}};
    empq_cliopt a = {.prog = "empq-collector", .opts = opts, .usage = usage};
    int opt;
    while ((opt = empq_cliopt_next(&a, argc, argv)) > 0) {
        switch (opt) {
        case REDIS: o.redis_url = optarg; break;
        case OUT: o.out_dir = optarg; break;
        case NAME: o.name = optarg; break;
        case SITE: site_port = optarg; break;
        case SITE_BIND: site_bind = optarg; break;
        case PORT_FILE: site_port_file = optarg; break;
        case CONSOLE: console_at = optarg; break;
        case CONSOLE_PORT_FILE: co.port_file = optarg; break;
        case CONSOLE_TOKEN_FILE: co.token_file = optarg; break;
        case CONSOLE_REQUIRE_TOKEN: co.require_token = 1; break;
        case BROKER_CONTROL: co.control = optarg; break;
        }
    }
    if (opt == 0)
        return a.code;
    if (console_at != NULL) {
        empq_error err = {0};
        if (parse_console_at(console_at, console_host, &co.port, &err) != EMPQ_OK) {
            fprintf(stderr, "empq-collector: %s\n", err.msg);
            return 2;
        }
        co.bind = console_host;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Redis may come up after us: retry the connection until stopped. */
    collector *c = NULL;
    int warned = 0;
    while (!stop_flag) {
        empq_error err = {0};
        int rc = collector__new(&c, &o, &err);
        if (rc == EMPQ_OK)
            break;
        if (rc != EMPQ_ESTORE) {
            char q[600];
            EMPQ_ERROR("event=start_failed error=%s", empq_log_quote(q, sizeof q, err.msg));
            return 1;
        }
        if (!warned) {
            char q[600];
            EMPQ_WARN("event=store_down error=%s retry_ms=500", empq_log_quote(q, sizeof q, err.msg));
            warned = 1;
        }
        sleep_ms(500);
    }
    if (c == NULL)
        return 0;
    char masked[512];
    EMPQ_INFO("event=started redis=%s out=%s name=%s", mask_url(masked, sizeof masked, o.redis_url), o.out_dir,
              o.name);

    site *web = NULL;
    if (site_port != NULL) {
        char *end = NULL;
        long port = strtol(site_port, &end, 10);
        site__opts so = {o.redis_url, site_bind, (int)port, site_port_file};
        empq_error err = {0};
        int rc = end != NULL && *end == '\0' && port >= 0 && port <= 65535
                     ? site__start(&web, &so, &err)
                     : empq_error_set(&err, EMPQ_EINVAL, "--site needs a port, got '%s'", site_port);
        if (rc != EMPQ_OK) {
            char q[600];
            EMPQ_ERROR("event=site_failed error=%s", empq_log_quote(q, sizeof q, err.msg));
            collector__free(&c);
            return 1;
        }
        EMPQ_INFO("event=site_started bind=%s port=%u", site_bind, site__port(web));
    }

    console *con = NULL;
    if (console_at != NULL && start_console(&con, &co, &o) != EMPQ_OK) {
        site__stop(&web);
        collector__free(&c);
        return 1;
    }

    while (!stop_flag) {
        int rc = collector__step(c, NULL);
        if (rc != EMPQ_OK)
            sleep_ms(500);
    }
    console__stop(&con);
    site__stop(&web);
    EMPQ_INFO("event=stopped runs_exported=%llu stream_trimmed=%llu", (unsigned long long)collector__exported(c),
              (unsigned long long)collector__trimmed(c));
    collector__free(&c);
    return 0;
}
