/* empq-fakellm: a local stand-in LLM server for demos, tests and benchmarks.
 *
 *   empq-fakellm [--port P] [--host ADDR] [--latency-ms L] [--jitter-ms J]
 *                [--require-key KEY] [--port-file PATH] [--threads N]
 *                [--max-connections N] [--limit MODEL:rpm=N,tpm=N,concurrency=N]...
 *                [--batch-delay-ms MS] [--batch-fail P] [--batch-expire]
 *                [--batch-max-objects N] [--batch-max-bytes N]
 *                [--batch-lose-create N] [--batch-lose-after M] [--batch-lose-as reset|500|502|504]
 *                [--default-limit rpm=N,...] [--fault-KIND P]... [--fault-seed N]
 *                [--huge-bytes N] [--azure-deployment NAME=MODEL]... [--request-log PATH]
 *                [--model-fault MODEL:KIND=P]...
 *
 * Serves the OpenAI, Azure OpenAI, Gemini and Anthropic formats with
 * deterministic, styled replies (fakellm/style.h), per-model limits
 * (limits.h), injected faults (faults.h), GET /stats and POST /stats/reset.
 * Runs until SIGINT or SIGTERM, then drains and exits 0. Bad flags: exit 2.
 * docs/fakellm.md is the user's page. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "empq/cliopt.h"
#include "empq/error.h"
#include "empq/log.h"
#include "empq/util.h"
#include "judge.h"
#include "server.h"

#define PROG "empq-fakellm"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [options]\n"
            "  --port P             port to listen on; 0 (the default) picks a free one\n"
            "  --host ADDR          address to bind (default 127.0.0.1)\n"
            "  --latency-ms L       hold each model response L ms (default 0)\n"
            "  --jitter-ms J        vary the latency uniformly by +-J ms (default 0)\n"
            "  --require-key KEY    require 'Authorization: Bearer KEY' on model endpoints\n"
            "  --port-file PATH     write the bound port to PATH (atomically) once listening\n"
            "  --threads N          HTTP polling threads (default 1)\n"
            "  --max-connections N  connections held at once (default 4096)\n"
            "  --limit MODEL:rpm=N,tpm=N,concurrency=N\n"
            "                       limit one model (repeatable; any subset of the three);\n"
            "                       over it: 429 in the provider's shape with Retry-After\n"
            "  --default-limit rpm=N,tpm=N,concurrency=N\n"
            "                       the limit of every model without its own --limit\n"
            "  --fault-429 P, --fault-500 P, --fault-503 P, --fault-hang P, --fault-reset P,\n"
            "  --fault-malformed P, --fault-truncated P, --fault-huge P, --fault-refusal P,\n"
            "  --fault-empty P, --fault-null P, --fault-thinking-only P, --fault-length-empty P,\n"
            "  --fault-safety P, --fault-quota P, --fault-stall P\n"
            "                       inject that fault into a share P (0..1) of model requests\n"
            "  --model-fault MODEL:KIND=P\n"
            "                       a fault of KIND (as above) in a share P of MODEL's requests only\n"
            "                       (repeatable; added to the --fault-* shares for that model)\n"
            "  --fault-seed N       seed of the fault draw (default 1): same seed, same faults\n"
            "  --huge-bytes N       size of the huge fault's padding (default 50000000)\n"
            "  --judge-noise P      fake-judge-* models flip a share P (0..1) of their labels\n"
            "                       (default 0; docs/fakellm.md, judge models)\n"
            "  --judge-seed N       seed of the judges' noise draw (default 1)\n"
            "  --request-log PATH   append one JSON line per answered model request to PATH\n"
            "                       (arrival and reply times, status, model, body hash, Host, peer)\n"
            "  --azure-deployment NAME=MODEL\n"
            "                       the model an Azure deployment reports (repeatable)\n"
            "  --batch-delay-ms MS  a batch stays in_progress MS ms, answering its requests\n"
            "                       evenly over that time, then completes (default 0)\n"
            "  --batch-fail P       a share P (0..1) of the requests in batches fail with the\n"
            "                       provider's 500 (seeded by --fault-seed)\n"
            "  --batch-expire       batches expire at the delay's end instead, half their\n"
            "                       requests unanswered (expired)\n"
            "  --batch-max-objects N  files plus batches kept (default 10000)\n"
            "  --batch-max-bytes N  bytes of files, batch requests and results kept, also the\n"
            "                       largest upload (default 536870912)\n"
            "  --batch-lose-create N  the first N batch creates of each provider make their\n"
            "                       batch, but their answer is lost (default 0)\n"
            "  --batch-lose-after M the lost creates are those after the first M (default 0)\n"
            "  --batch-lose-as HOW  how: reset (the connection is closed without a reply)\n"
            "                       or a gateway's 500, 502 or 504 page (default 504)\n"
            "  --help               this text; --version: the version and git commit\n"
            "Endpoints: POST /v1/chat/completions (OpenAI), POST /openai/deployments/NAME/\n"
            "chat/completions?api-version=V (Azure), POST /v1beta/models/MODEL:generateContent\n"
            "(Gemini; also /v1/), POST /v1/messages (Anthropic), the batch APIs (OpenAI /v1/files\n"
            "and /v1/batches, Anthropic /v1/messages/batches, Gemini /v1beta/models/MODEL:\n"
            "batchGenerateContent and /v1beta/batches), GET /stats, POST /stats/reset,\n"
            "GET /healthz.\n"
            "Models fake-warm, fake-formal, fake-brief, fake-curious have their own styles;\n"
            "any other model name answers in a neutral style. Models named fake-reason* reason\n"
            "before answering (docs/fakellm.md).\n");
}

static int bad_flag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_flag(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try --help)\n");
    return 2;
}

/* Parses a decimal in [0, max]. Returns 0 on success. */
static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
    char *end = NULL;
    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Parses a probability in [0, 1]. Returns 0 on success. */
static int parse_prob(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 1)
        return -1;
    *out = v;
    return 0;
}

/* The batch flags that take a value (--batch-expire takes none). */
static int batch_flag(const char *name)
{
    static const char *const flags[] = {"--batch-delay-ms", "--batch-fail", "--batch-max-objects",
                                        "--batch-max-bytes", "--batch-lose-create", "--batch-lose-after",
                                        "--batch-lose-as"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strcmp(name, flags[i]) == 0)
            return 1;
    return 0;
}

static int known_flag(const char *name)
{
    static const char *const known[] = {"--port",          "--host",          "--latency-ms",   "--jitter-ms",
                                        "--require-key",   "--port-file",     "--threads",      "--max-connections",
                                        "--limit",         "--default-limit", "--fault-seed",   "--huge-bytes",
                                        "--azure-deployment", "--model-fault", "--request-log", "--judge-noise",
                                        "--judge-seed"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(name, known[i]) == 0)
            return 1;
    if (batch_flag(name))
        return 1;
    return strncmp(name, "--fault-", 8) == 0 && fakellm_fault_by_name(name + 8) != FAKELLM_FAULT_NONE;
}

#define MAX_TABLE 256

typedef struct cli {
    fakellm_options opts;
    const char *port_file;
    fakellm_limit_spec limits[MAX_TABLE];
    char *limit_models[MAX_TABLE];
    size_t n_limits;
    fakellm_azure_map azure[MAX_TABLE];
    char *azure_names[MAX_TABLE];
    size_t n_azure;
    double judge_noise;   /* --judge-noise */
    uint64_t judge_seed;  /* --judge-seed */
    fakellm_model_faults model_faults[MAX_TABLE]; /* .model owned */
    size_t n_model_faults;
} cli;

static void cli_free(cli *c)
{
    for (size_t i = 0; i < c->n_limits; i++)
        free(c->limit_models[i]);
    for (size_t i = 0; i < c->n_azure; i++)
        free(c->azure_names[i]);
    for (size_t i = 0; i < c->n_model_faults; i++)
        free((char *)c->model_faults[i].model);
    c->n_limits = c->n_azure = c->n_model_faults = 0;
}

/* --model-fault MODEL:KIND=P (the model name may contain ':'; the last one
 * separates). Returns -1 when taken, else 2. */
static int parse_model_fault(cli *c, const char *val)
{
    const char *colon = strrchr(val, ':');
    const char *eq = colon ? strchr(colon, '=') : NULL;
    if (colon == NULL || colon == val || eq == NULL)
        return bad_flag("option --model-fault: '%s' is not MODEL:KIND=P", val);
    char kind[32];
    size_t kn = (size_t)(eq - colon - 1);
    if (kn == 0 || kn >= sizeof(kind))
        return bad_flag("option --model-fault: '%s' has no fault kind", val);
    memcpy(kind, colon + 1, kn);
    kind[kn] = '\0';
    fakellm_fault f = fakellm_fault_by_name(kind);
    if (f == FAKELLM_FAULT_NONE)
        return bad_flag("option --model-fault: unknown fault kind '%s' in '%s' (the kinds of the --fault-* flags)",
                        kind, val);
    double p;
    if (parse_prob(eq + 1, &p) != 0)
        return bad_flag("option --model-fault: '%s' in '%s' is not a probability in [0, 1]", eq + 1, val);
    size_t mn = (size_t)(colon - val), i;
    for (i = 0; i < c->n_model_faults; i++)
        if (strlen(c->model_faults[i].model) == mn && strncmp(c->model_faults[i].model, val, mn) == 0)
            break;
    if (i == c->n_model_faults) {
        if (c->n_model_faults == MAX_TABLE)
            return bad_flag("option --model-fault: at most %d models", MAX_TABLE);
        char *model = strndup(val, mn);
        if (model == NULL)
            return bad_flag("out of memory");
        memset(&c->model_faults[i], 0, sizeof(c->model_faults[i]));
        c->model_faults[i].model = model;
        c->n_model_faults++;
    }
    c->model_faults[i].p[f] = p;
    double sum = 0;
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
        sum += c->model_faults[i].p[k];
    if (sum > 1.0 + 1e-9)
        return bad_flag("the --model-fault probabilities of %s add up to %g, more than 1",
                        c->model_faults[i].model, sum);
    return -1;
}

/* The flags that take tables, probabilities and 64-bit numbers. Returns -1
 * when handled, else an exit status (2). */
static int parse_table_flag(cli *c, const char *name, const char *val)
{
    empq_error err = {0};
    if (strcmp(name, "--limit") == 0 || strcmp(name, "--default-limit") == 0) {
        int def = strcmp(name, "--default-limit") == 0;
        char *model = NULL;
        fakellm_limit lim;
        if (c->n_limits == MAX_TABLE)
            return bad_flag("option %s: at most %d limits", name, MAX_TABLE);
        if (fakellm_limit_parse(val, def ? NULL : &model, &lim, &err) != EMPQ_OK)
            return bad_flag("option %s: %s", name, err.msg);
        c->limit_models[c->n_limits] = model;
        c->limits[c->n_limits].model = model;
        c->limits[c->n_limits].limit = lim;
        c->n_limits++;
        return -1;
    }
    if (strcmp(name, "--azure-deployment") == 0) {
        const char *eq = strchr(val, '=');
        if (eq == NULL || eq == val || eq[1] == '\0')
            return bad_flag("option %s: '%s' is not NAME=MODEL", name, val);
        if (c->n_azure == MAX_TABLE)
            return bad_flag("option %s: at most %d deployments", name, MAX_TABLE);
        char *copy = strdup(val);
        if (copy == NULL)
            return bad_flag("out of memory");
        copy[eq - val] = '\0';
        c->azure_names[c->n_azure] = copy;
        c->azure[c->n_azure].deployment = copy;
        c->azure[c->n_azure].model = copy + (eq - val) + 1;
        c->n_azure++;
        return -1;
    }
    if (strcmp(name, "--model-fault") == 0)
        return parse_model_fault(c, val);
    if (strcmp(name, "--judge-noise") == 0) {
        if (parse_prob(val, &c->judge_noise) != 0)
            return bad_flag("option %s: '%s' is not a probability in [0, 1]", name, val);
        return -1;
    }
    if (strcmp(name, "--judge-seed") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || errno != 0 || *end != '\0')
            return bad_flag("option %s: '%s' is not a valid number for it", name, val);
        c->judge_seed = v;
        return -1;
    }
    if (strcmp(name, "--batch-lose-as") == 0) {
        if (strcmp(val, "reset") == 0)
            c->opts.batch.lose_status = 0;
        else if (strcmp(val, "500") == 0 || strcmp(val, "502") == 0 || strcmp(val, "504") == 0)
            c->opts.batch.lose_status = (unsigned)atoi(val);
        else
            return bad_flag("option %s: '%s' is not one of reset, 500, 502, 504", name, val);
        return -1;
    }
    if (strcmp(name, "--batch-fail") == 0) {
        if (parse_prob(val, &c->opts.batch.fail_p) != 0)
            return bad_flag("option %s: '%s' is not a probability in [0, 1]", name, val);
        return -1;
    }
    if (strcmp(name, "--batch-max-objects") == 0 || strcmp(name, "--batch-max-bytes") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || errno != 0 || *end != '\0' || v == 0 || v > (1ull << 40))
            return bad_flag("option %s: '%s' is not a valid number for it (1 .. 2^40)", name, val);
        if (strcmp(name, "--batch-max-objects") == 0)
            c->opts.batch.max_objects = (size_t)v;
        else
            c->opts.batch.max_bytes = (size_t)v;
        return -1;
    }
    if (strcmp(name, "--fault-seed") == 0 || strcmp(name, "--huge-bytes") == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (val[0] < '0' || val[0] > '9' || errno != 0 || *end != '\0' ||
            (strcmp(name, "--huge-bytes") == 0 && (v == 0 || v > 4000000000ull)))
            return bad_flag("option %s: '%s' is not a valid number for it", name, val);
        if (strcmp(name, "--fault-seed") == 0)
            c->opts.fault_seed = v;
        else
            c->opts.huge_bytes = (size_t)v;
        return -1;
    }
    /* --fault-KIND P */
    double p;
    if (parse_prob(val, &p) != 0)
        return bad_flag("option %s: '%s' is not a probability in [0, 1]", name, val);
    c->opts.fault_p[fakellm_fault_by_name(name + 8)] = p;
    double sum = 0;
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
        sum += c->opts.fault_p[k];
    if (sum > 1.0 + 1e-9)
        return bad_flag("the --fault-* probabilities add up to %g, more than 1", sum);
    return -1;
}


/* Returns -1 to go on, or an exit status (0 for --help, 2 for a bad flag). */
static int parse_args(int argc, char **argv, cli *c)
{
    static const struct {
        const char *name;
        unsigned long max;
    } numeric[] = {{"--port", 65535},  {"--latency-ms", 86400000},       {"--jitter-ms", 86400000},
                   {"--threads", 64}, {"--max-connections", 1000000}, {"--batch-delay-ms", 86400000},
                   {"--batch-lose-create", 1000000}, {"--batch-lose-after", 1000000}};

    fakellm_options_init(&c->opts);
    c->opts.fault_seed = 1;
    c->judge_noise = 0;
    c->judge_seed = 1;
    c->port_file = NULL;
    c->n_limits = c->n_azure = c->n_model_faults = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL;
        char name[64];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(arg, "--version") == 0)
            return empq_cliopt_print_version(PROG);
        if (strcmp(arg, "--batch-expire") == 0) { /* a switch: takes no value */
            c->opts.batch.expire = 1;
            continue;
        }
        /* the --fault-KIND names are many: a scan of its own, the wording of
         * every program (empq_cliopt_error) */
        if (arg[0] != '-')
            return empq_cliopt_error(PROG, NULL, EMPQ_CLIOPT_UNEXPECTED, arg, usage);
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (n >= sizeof(name) || strncmp(arg, "--", 2) != 0)
            return empq_cliopt_error(PROG, NULL, EMPQ_CLIOPT_UNKNOWN, arg, usage);
        memcpy(name, arg, n);
        name[n] = '\0';
        if (!known_flag(name))
            return empq_cliopt_error(PROG, NULL, EMPQ_CLIOPT_UNKNOWN, arg, usage);
        if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return empq_cliopt_error(PROG, NULL, EMPQ_CLIOPT_MISSING, name, usage);
        }

        unsigned num = 0;
        size_t k;
        for (k = 0; k < sizeof(numeric) / sizeof(numeric[0]); k++)
            if (strcmp(name, numeric[k].name) == 0)
                break;
        if (k < sizeof(numeric) / sizeof(numeric[0])) {
            if (parse_uint(val, numeric[k].max, &num) != 0 ||
                (strcmp(name, "--threads") == 0 && num == 0) ||
                (strcmp(name, "--max-connections") == 0 && num == 0))
                return bad_flag("option %s: '%s' is not a valid number for it", name, val);
            if (strcmp(name, "--port") == 0)
                c->opts.port = num;
            else if (strcmp(name, "--latency-ms") == 0)
                c->opts.latency_ms = num;
            else if (strcmp(name, "--jitter-ms") == 0)
                c->opts.jitter_ms = num;
            else if (strcmp(name, "--threads") == 0)
                c->opts.threads = num;
            else if (strcmp(name, "--batch-delay-ms") == 0)
                c->opts.batch.delay_ms = num;
            else if (strcmp(name, "--batch-lose-create") == 0)
                c->opts.batch.lose_create = num;
            else if (strcmp(name, "--batch-lose-after") == 0)
                c->opts.batch.lose_after = num;
            else
                c->opts.connection_limit = num;
        } else if (strcmp(name, "--host") == 0) {
            if (val[0] == '\0')
                return bad_flag("option %s needs a non-empty value", name);
            c->opts.host = val;
        } else if (strcmp(name, "--require-key") == 0) {
            if (val[0] == '\0')
                return bad_flag("option %s needs a non-empty key", name);
            c->opts.require_key = val;
        } else if (strcmp(name, "--port-file") == 0) {
            if (val[0] == '\0')
                return bad_flag("option %s needs a path", name);
            c->port_file = val;
        } else if (strcmp(name, "--request-log") == 0) {
            if (val[0] == '\0')
                return bad_flag("option %s needs a path", name);
            c->opts.request_log = val;
        } else {
            int st = parse_table_flag(c, name, val);
            if (st >= 0)
                return st;
        }
    }
    c->opts.batch.seed = c->opts.fault_seed;
    c->opts.limits = c->limits;
    c->opts.n_limits = c->n_limits;
    c->opts.azure = c->azure;
    c->opts.n_azure = c->n_azure;
    c->opts.model_faults = c->model_faults;
    c->opts.n_model_faults = c->n_model_faults;
    for (size_t i = 0; i < c->n_model_faults; i++) {
        double p[FAKELLM_FAULT_COUNT], sum = 0;
        fakellm_fault_table(c->opts.fault_p, c->model_faults + i, 1, c->model_faults[i].model, p);
        for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
            sum += p[k];
        if (sum > 1.0 + 1e-9)
            return bad_flag("the fault probabilities of model %s (--fault-* plus its --model-fault) add up to %g, "
                            "more than 1", c->model_faults[i].model, sum);
    }
    return -1;
}

/* Each held connection is a descriptor: take all the kernel allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            EMPQ_WARN("event=rlimit_nofile_failed err=\"%s\" limit=%llu", strerror(errno),
                      (unsigned long long)before);
            return;
        }
    }
    EMPQ_DEBUG("event=rlimit_nofile limit=%llu", (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    cli c;
    empq_error err = {0};
    char buf[64], quoted[300];

    empq_log_init(PROG, EMPQ_LOG_INFO);
    int status = parse_args(argc, argv, &c);
    if (status >= 0) {
        cli_free(&c);
        return status;
    }
    raise_nofile();

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    fakellm_server *srv = NULL;
    fakellm_judge_set(c.judge_noise, c.judge_seed);
    int started = fakellm_server_start(&c.opts, &srv, &err);
    cli_free(&c); /* the server keeps copies */
    if (started != EMPQ_OK) {
        EMPQ_ERROR("event=start_failed err=%s", empq_log_quote(quoted, sizeof(quoted), err.msg));
        return 1;
    }
    unsigned port = fakellm_server_port(srv);
    if (c.port_file != NULL) {
        int n = snprintf(buf, sizeof(buf), "%u\n", port);
        if (empq_write_file_atomic(c.port_file, buf, (size_t)n, &err) != EMPQ_OK) {
            EMPQ_ERROR("event=port_file_failed err=%s", empq_log_quote(quoted, sizeof(quoted), err.msg));
            fakellm_server_stop(&srv);
                return 1;
        }
    }
    char faults[256] = "";
    size_t used = 0;
    for (int k = 1; k < FAKELLM_FAULT_COUNT && used < sizeof(faults); k++)
        if (c.opts.fault_p[k] > 0)
            used += (size_t)snprintf(faults + used, sizeof(faults) - used, "%s%s=%g", used ? "," : "",
                                     fakellm_fault_name((fakellm_fault)k), c.opts.fault_p[k]);
    EMPQ_INFO("event=listening host=%s port=%u latency_ms=%u jitter_ms=%u auth=%s threads=%u max_connections=%u "
              "limits=%zu faults=%s fault_seed=%" PRIu64 " model_faults=%zu batch_delay_ms=%u batch_fail=%g "
              "batch_expire=%d batch_lose_create=%u batch_lose_after=%u batch_lose_as=%u",
              c.opts.host, port, c.opts.latency_ms, c.opts.jitter_ms, c.opts.require_key ? "key" : "none",
              c.opts.threads, c.opts.connection_limit, c.opts.n_limits, used ? faults : "none", c.opts.fault_seed,
              c.opts.n_model_faults, c.opts.batch.delay_ms, c.opts.batch.fail_p, c.opts.batch.expire,
              c.opts.batch.lose_create, c.opts.batch.lose_after, c.opts.batch.lose_status);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    EMPQ_INFO("event=stopping signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");

    fakellm_stats_snapshot snap;
    fakellm_stats_get(fakellm_server_stats(srv), &snap);
    fakellm_server_stop(&srv);
    EMPQ_INFO("event=stopped requests=%llu errors=%llu max_in_flight=%llu", (unsigned long long)snap.requests,
              (unsigned long long)snap.errors, (unsigned long long)snap.max_in_flight);
    return 0;
}
