/* main.c: empq-broker: load runs from Redis, hand jobs to workers by credit,
 * track leases, answer control requests. See docs/internals.md. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "empq/cliopt.h"
#include "empq/endpoint.h"
#include "empq/log.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    bk__broker_wake();
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empq-broker [--redis URL] [--bind EP] [--control EP] [--heartbeat-ms N]\n"
            "                   [--lease-ms N] [--curve-secret FILE --curve-allow DIR|FILE] [--insecure]\n"
            "                   [--metrics HOST:PORT [--metrics-public]]\n"
            "  --redis URL        Redis (default $EMPQ_REDIS_URL or redis://127.0.0.1:6379)\n"
            "  --bind EP          worker endpoint (default tcp://127.0.0.1:5555)\n"
            "  --control EP       control endpoint (default tcp://127.0.0.1:5556)\n"
            "  --heartbeat-ms N   heartbeat period; a worker silent 5 periods is given up (default 1000)\n"
            "  --lease-ms N       how long a worker may hold a job (default 600000)\n"
            "  --curve-secret F   CURVE: the broker's secret key file (empq keygen; env EMPQ_BROKER_CURVE_SECRET)\n"
            "  --curve-allow P    CURVE: allowed client keys, a folder of .pub files or a file of keys\n"
            "                     (env EMPQ_CURVE_ALLOW); with CURVE the broker may bind beyond loopback\n"
            "  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics (default: off);\n"
            "                     HOST on loopback unless --metrics-public or --insecure (no authentication)\n"
            "  --metrics-public   allow a --metrics HOST beyond loopback (keep the port on a private network)\n"
            "  --insecure         allow endpoints beyond loopback without CURVE, metrics included (no\n"
            "                     authentication)\n"
            "  --help, --version  this text; the version and the git commit built from\n");
}

static int parse_ms(const char *flag, const char *s, uint32_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || v == 0 || v > 86400000UL) {
        fprintf(stderr, "empq-broker: %s wants milliseconds in 1..86400000, got '%s'\n", flag, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    empq_log_init("empq-broker", EMPQ_LOG_INFO);
    bk__broker_opts o;
    bk__broker_opts_default(&o);
    enum { INSECURE = EMPQ_CLIOPT_FIRST, REDIS, BIND, METRICS, CONTROL, SECRET, ALLOW, HEARTBEAT, LEASE, METRICS_PUBLIC };
    static const struct option opts[] = {
        EMPQ_CLIOPT_HELP_ENTRY,                               EMPQ_CLIOPT_VERSION_ENTRY,
        {"insecure", no_argument, NULL, INSECURE},            {"redis", required_argument, NULL, REDIS},
        {"bind", required_argument, NULL, BIND},              {"metrics", required_argument, NULL, METRICS},
        {"control", required_argument, NULL, CONTROL},        {"curve-secret", required_argument, NULL, SECRET},
        {"curve-allow", required_argument, NULL, ALLOW},      {"heartbeat-ms", required_argument, NULL, HEARTBEAT},
        {"lease-ms", required_argument, NULL, LEASE},         {"metrics-public", no_argument, NULL, METRICS_PUBLIC},
        {0}};
    empq_cliopt a = {.prog = "empq-broker", .opts = opts, .usage = usage};
    int metrics_public = 0;
    int c;
    while ((c = empq_cliopt_next(&a, argc, argv)) > 0) {
        switch (c) {
        case INSECURE: o.insecure = 1; break;
        case REDIS: o.redis_url = optarg; break;
        case BIND: o.bind = optarg; break;
        case METRICS: o.metrics = optarg; break;
        case METRICS_PUBLIC: metrics_public = 1; break;
        case CONTROL: o.control = optarg; break;
        case SECRET: o.curve_secret = optarg; break;
        case ALLOW: o.curve_allow = optarg; break;
        case HEARTBEAT:
            if (parse_ms("--heartbeat-ms", optarg, &o.heartbeat_ms) != 0)
                a.code = EMPQ_CLIOPT_USAGE;
            break;
        case LEASE:
            if (parse_ms("--lease-ms", optarg, &o.lease_ms) != 0)
                a.code = EMPQ_CLIOPT_USAGE;
            break;
        }
    }
    if (c == 0)
        return a.code;
    /* the broker's own variables: EMPQ_CURVE_SECRET is a client's key (worker, CLI) */
    const char *env = getenv("EMPQ_BROKER_CURVE_SECRET");
    if (o.curve_secret == NULL && env != NULL && env[0] != '\0')
        o.curve_secret = env;
    env = getenv("EMPQ_CURVE_ALLOW");
    if (o.curve_allow == NULL && env != NULL && env[0] != '\0')
        o.curve_allow = env;
    if ((o.curve_secret == NULL) != (o.curve_allow == NULL)) {
        fprintf(stderr, "empq-broker: CURVE needs both --curve-secret and --curve-allow\n");
        return 2;
    }
    /* the same rule as the ZeroMQ endpoints: nothing unauthenticated beyond
     * loopback without saying so; the metrics have no authentication at all */
    if (o.metrics != NULL && !empq_listen_addr_is_loopback(o.metrics)) {
        if (!o.insecure && !metrics_public) {
            fprintf(stderr,
                    "empq-broker: metrics address %s is not on loopback; the metrics endpoint has no "
                    "authentication, so pass --insecure (or --metrics-public) to listen there\n",
                    o.metrics);
            return 2;
        }
        EMPQ_WARN("event=insecure endpoint=http://%s/metrics (no authentication: anyone who reaches it can read "
                  "the metrics)",
                  o.metrics);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: zmq_poll returns EINTR at once */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    empq_error err = {0};
    int rc = bk__broker_run(&o, &stop_flag, &err);
    if (rc != 0) {
        fprintf(stderr, "empq-broker: %s\n", err.msg[0] ? err.msg : "failed");
        return 1;
    }
    return 0;
}
