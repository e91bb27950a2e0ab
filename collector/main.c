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

int main(int argc, char **argv)
{
    empq_log_init("empq-collector", EMPQ_LOG_INFO);
    collector__opts o;
    collector__opts_default(&o);
    const char *site_port = NULL, *site_bind = "127.0.0.1", *site_port_file = NULL;
    enum { REDIS = EMPQ_CLIOPT_FIRST, OUT, NAME, SITE, SITE_BIND, PORT_FILE };
    static const struct option opts[] = {
        EMPQ_CLIOPT_HELP_ENTRY,                                 EMPQ_CLIOPT_VERSION_ENTRY,
        {"redis", required_argument, NULL, REDIS},              {"out", required_argument, NULL, OUT},
        {"name", required_argument, NULL, NAME},                {"site", required_argument, NULL, SITE},
        {"site-bind", required_argument, NULL, SITE_BIND},      {"site-port-file", required_argument, NULL, PORT_FILE},
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
        }
    }
    if (opt == 0)
        return a.code;

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

    while (!stop_flag) {
        int rc = collector__step(c, NULL);
        if (rc != EMPQ_OK)
            sleep_ms(500);
    }
    site__stop(&web);
    EMPQ_INFO("event=stopped runs_exported=%llu stream_trimmed=%llu", (unsigned long long)collector__exported(c),
              (unsigned long long)collector__trimmed(c));
    collector__free(&c);
    return 0;
}
