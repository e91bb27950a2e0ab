/* empq-worker: takes jobs from the broker, answers them from the cache or
 * an LLM backend, writes results to Redis, reports outcomes.
 *
 *   empq-worker [--broker tcp://127.0.0.1:5555] [--redis URL] [--credit 64] [--prefetch 8]
 *               [--id NAME] [--models a,b] [--heartbeat-ms 1000] [--grace-ms 10000]
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/cliopt.h"
#include "empq/curve.h"
#include "empq/log.h"
#include "loop.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
    worker__loop_wake();
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empq-worker [options]\n"
            "  --broker URL        broker worker endpoint (default tcp://127.0.0.1:5555, env EMPQ_BROKER)\n"
            "  --redis URL         Redis (default $EMPQ_REDIS_URL or redis://127.0.0.1:6379)\n"
            "  --credit N          requests in flight at once (default 64)\n"
            "  --prefetch N        jobs held beyond --credit, read and checked against the cache, ready to\n"
            "                      start when a request ends (default credit/8)\n"
            "  --id NAME           worker id (default host-pid)\n"
            "  --models a,b        serve only these model aliases (default all)\n"
            "  --heartbeat-ms N    heartbeat period until the broker sets one (default 1000)\n"
            "  --grace-ms N        on SIGTERM, time to finish in-flight requests (default 10000)\n"
            "  --curve-secret F    CURVE: this worker's secret key file (empq keygen; env EMPQ_CURVE_SECRET)\n"
            "  --curve-server-pub F  CURVE: the broker's public key file (env EMPQ_CURVE_SERVER_PUB)\n"
            "  --help, --version   this text; the version and the git commit built from\n"
            "API keys are read from the variables or files the study spec names, on this host only.\n");
}

static int parse_u32(const char *s, const char *name, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "empq-worker: %s must be a number in %u..%u, got '%s'\n", name, lo, hi, s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Splits "a,b" into a NULL-free array of n strings (empty items skipped). */
static int split_models(const char *s, char ***out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap, sizeof *v);
    if (v == NULL)
        return -1;
    size_t k = 0;
    const char *p = s;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c != NULL ? (size_t)(c - p) : strlen(p);
        if (len > 0) {
            v[k] = strndup(p, len);
            if (v[k] == NULL)
                return -1;
            k++;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    *out = v;
    *n = k;
    return 0;
}

int main(int argc, char **argv)
{
    empq_log_init("empq-worker", EMPQ_LOG_INFO);
    worker__config cfg = WORKER__CONFIG_INIT;
    const char *env = getenv("EMPQ_BROKER");
    if (env != NULL && env[0] != '\0')
        cfg.broker = env;
    /* EMPQ_REDIS_URL as every program; EMPQ_REDIS, the old name, still works */
    env = getenv("EMPQ_REDIS_URL");
    if (env == NULL || env[0] == '\0')
        env = getenv("EMPQ_REDIS");
    if (env != NULL && env[0] != '\0')
        cfg.redis_url = env;

    static const struct option longopts[] = {
        {"broker", required_argument, NULL, 'b'},       {"redis", required_argument, NULL, 'r'},
        {"credit", required_argument, NULL, 'c'},       {"id", required_argument, NULL, 'i'},
        {"models", required_argument, NULL, 'm'},       {"heartbeat-ms", required_argument, NULL, 'H'},
        {"grace-ms", required_argument, NULL, 'g'},     EMPQ_CLIOPT_HELP_ENTRY,
        {"curve-secret", required_argument, NULL, 'S'}, {"curve-server-pub", required_argument, NULL, 'P'},
        {"prefetch", required_argument, NULL, 'f'},     EMPQ_CLIOPT_VERSION_ENTRY,
        {NULL, 0, NULL, 0},
    };
    int prefetch_set = 0;
    empq_cliopt a = {.prog = "empq-worker", .opts = longopts, .shortopts = "b:r:c:i:m:H:g:S:P:f:", .usage = usage};
    int c;
    while ((c = empq_cliopt_next(&a, argc, argv)) > 0) {
        switch (c) {
        case 'b': cfg.broker = optarg; break;
        case 'r': cfg.redis_url = optarg; break;
        case 'c':
            if (parse_u32(optarg, "--credit", 1, 65536, &cfg.credit) != 0)
                return 2;
            break;
        case 'f':
            if (parse_u32(optarg, "--prefetch", 0, 65536, &cfg.prefetch) != 0)
                return 2;
            prefetch_set = 1;
            break;
        case 'i':
            if (optarg[0] == '\0' || strlen(optarg) > 200) {
                fprintf(stderr, "empq-worker: --id must be 1..200 characters\n");
                return 2;
            }
            cfg.id = optarg;
            break;
        case 'm':
            if (split_models(optarg, &cfg.models, &cfg.n_models) != 0) {
                fprintf(stderr, "empq-worker: out of memory\n");
                return 2;
            }
            break;
        case 'H':
            if (parse_u32(optarg, "--heartbeat-ms", 10, 600000, &cfg.heartbeat_ms) != 0)
                return 2;
            break;
        case 'g':
            if (parse_u32(optarg, "--grace-ms", 0, 3600000, &cfg.grace_ms) != 0)
                return 2;
            break;
        case 'S': cfg.curve_secret = optarg; break;
        case 'P': cfg.curve_server_pub = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    if (!prefetch_set)
        cfg.prefetch = cfg.credit / 8;
    empq_curve_opts co = {cfg.curve_secret, cfg.curve_server_pub, NULL};
    empq_curve_opts_from_env(&co);
    cfg.curve_secret = co.secret_file;
    cfg.curve_server_pub = co.server_pub_file;
    if (cfg.curve_secret != NULL && cfg.curve_server_pub == NULL) {
        fprintf(stderr, "empq-worker: CURVE needs both --curve-secret and --curve-server-pub\n");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: zmq_poll returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "empq-worker: curl_global_init failed\n");
        return 1;
    }
    int status = worker__loop_run(&cfg, &stop_flag);
    curl_global_cleanup();
    for (size_t i = 0; i < cfg.n_models; i++)
        free(cfg.models[i]);
    free(cfg.models);
    return status;
}
