/* cmd_demo.c: `empq demo`: a whole study on this machine, start to end.
 *
 * Starts, as child processes tracked by pid, a private redis-server (data in
 * DIR/redis, append-only, so a second demo with the same DIR is served from
 * the cache), empq-fakellm, empq-broker, W empq-worker and empq-collector;
 * waits until each is ready; submits studies/demo.yaml; shows progress;
 * copies the collector's responses.jsonl to DIR/responses.jsonl; then runs
 * the rating study on the same Redis with SIMULATED participants (`empq
 * assign` into DIR/plan, the rating site's claim / start / answer calls,
 * `empq ratings export` into DIR/ratings, `empq analyze` into DIR/report);
 * prints a summary; and stops everything it started, also on error and on
 * Ctrl-C. Child output goes to DIR/logs/<name>.log.
 *
 * Programs are found next to this executable (/proc/self/exe); the spec in
 * $EMPQ_STUDIES, or ../../studies from build/bin, or ../share/empq/studies. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "empq/assign.h"
#include "empq/csvread.h"
#include "empq/ratings.h"
#include "empq/store.h"
#include "empq/util.h"

#define MAX_CHILDREN 72
#define MAX_WORKERS 64
#define READY_TIMEOUT_MS 15000
#define FINISH_TIMEOUT_MS 60000 /* after the broker reports all jobs done */
#define STOP_GRACE_MS 5000
#define STALL_WARN_MS 10000 /* say so when no job finished for this long */
#define PATHLEN 4096
#define MAX_SOURCES 16 /* listed in the summary */

static volatile sig_atomic_t demo_stop;

static void on_signal(int sig)
{
    (void)sig;
    demo_stop = 1;
}

typedef struct child {
    char name[32];
    pid_t pid;
    int reaped;
    int status;
} child;

/* A source's ratings as the analysis counted them (tables/conditions.csv). */
typedef struct study_source {
    char name[64];
    uint64_t n;
    double good, okay, bad, mean; /* shares 0..1, mean 1..3 */
} study_source;

typedef struct demo {
    /* options */
    uint64_t prompts, workers, latency_ms, credit;
    uint64_t console_port; /* 0: no console; else the collector serves it on 127.0.0.1:PORT */
    char out[PATHLEN];
    /* paths */
    char bin[PATHLEN];
    char spec[PATHLEN];
    char redis_bin[PATHLEN];
    /* endpoints */
    int redis_port, fake_port, broker_port, control_port;
    char redis_url[64], jobs_ep[64], control_ep[64], fake_url[64];
    child kids[MAX_CHILDREN];
    size_t n_kids;
    char run_id[64]; /* once submitted */
    int tty;
    /* the responses, for the summary */
    int have_responses;
    uint64_t jobs, lines, hits, emotions, dead, wall_ms;
    long long calls; /* -1: unknown */
    /* the rating study with SIMULATED participants, for the summary */
    int have_study;
    uint64_t study_ms;
    size_t participants, per_condition, items, checks, ratings;
    study_source sources[MAX_SOURCES];
    size_t n_sources;
} demo;

/* ==================== small helpers ==================== */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "12,345" */
static const char *commas(uint64_t v, char *buf, size_t len)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%" PRIu64, v);
    size_t n = strlen(raw), k = 0;
    for (size_t i = 0; i < n && k + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = '\0';
    return buf;
}

static int is_exec(const char *path)
{
    return access(path, X_OK) == 0;
}

/* A port nobody listens on now (bind to port 0, read it back, close). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Finds redis-server in $PATH (or the usual places). */
static int find_redis(demo *d)
{
    const char *path = getenv("PATH");
    int found = 0;
    for (const char *p = path != NULL ? path : ""; *p != '\0' && !found;) {
        const char *colon = strchr(p, ':');
        size_t n = colon != NULL ? (size_t)(colon - p) : strlen(p);
        if (n > 0 && n < PATHLEN - 16) {
            snprintf(d->redis_bin, sizeof d->redis_bin, "%.*s/redis-server", (int)n, p);
            found = is_exec(d->redis_bin);
        }
        p += n;
        if (*p == ':')
            p++;
    }
    static const char *const fallback[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
                                           "/usr/sbin/redis-server"};
    for (size_t i = 0; i < sizeof fallback / sizeof fallback[0] && !found; i++) {
        snprintf(d->redis_bin, sizeof d->redis_bin, "%s", fallback[i]);
        found = is_exec(d->redis_bin);
    }
    return found;
}

/* The folder of this executable, and the programs and spec around it. */
static int find_paths(demo *d)
{
    char exe[PATHLEN];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        cli__err("demo: cannot find my own executable (/proc/self/exe): %s", strerror(errno));
        return CLI_FAIL;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(d->bin, sizeof d->bin, "%s", exe);
    static const char *const progs[] = {"empq-fakellm", "empq-broker", "empq-worker", "empq-collector"};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        char p[PATHLEN + 64];
        snprintf(p, sizeof p, "%s/%s", d->bin, progs[i]);
        if (!is_exec(p)) {
            cli__err("demo: %s is missing (build it: cmake --build build)", p);
            return CLI_FAIL;
        }
    }
    if (!find_redis(d)) {
        cli__err("demo: redis-server is not installed (not in $PATH nor /usr/bin); "
                 "run deploy/bootstrap.sh or apt-get install redis-server");
        return CLI_FAIL;
    }
    const char *env = getenv("EMPQ_STUDIES");
    char tried[3][PATHLEN];
    size_t n_tried = 0;
    if (env != NULL && env[0] != '\0')
        snprintf(tried[n_tried++], PATHLEN, "%s/demo.yaml", env);
    snprintf(tried[n_tried++], PATHLEN, "%.4000s/../../studies/demo.yaml", d->bin);
    snprintf(tried[n_tried++], PATHLEN, "%.4000s/../share/empq/studies/demo.yaml", d->bin);
    for (size_t i = 0; i < n_tried; i++) {
        if (access(tried[i], R_OK) == 0) {
            char *real = realpath(tried[i], NULL);
            snprintf(d->spec, sizeof d->spec, "%s", real != NULL ? real : tried[i]);
            free(real);
            return CLI_OK;
        }
    }
    cli__err("demo: studies/demo.yaml not found (tried %s, %s%s%s; set EMPQ_STUDIES to its folder)", tried[0],
             tried[1], n_tried > 2 ? ", " : "", n_tried > 2 ? tried[2] : "");
    return CLI_FAIL;
}

/* ==================== children ==================== */

/* Starts argv[0] with output appended to DIR/logs/<name>.log, in its own
 * process group (Ctrl-C reaches the demo only; it stops the children in
 * order) and with SIGTERM when the demo dies. */
static int spawn(demo *d, const char *name, char *const argv[])
{
    if (d->n_kids == MAX_CHILDREN) {
        cli__err("demo: too many processes");
        return CLI_FAIL;
    }
    char log[PATHLEN + 64];
    snprintf(log, sizeof log, "%s/logs/%s.log", d->out, name);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        cli__err("demo: cannot open %s: %s", log, strerror(errno));
        return CLI_FAIL;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cli__err("demo: cannot start %s: %s", name, strerror(errno));
        close(fd);
        return CLI_FAIL;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0)
            dup2(in, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        fprintf(stderr, "empq demo: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    child *k = &d->kids[d->n_kids++];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->pid = pid;
    return CLI_OK;
}

/* Reaps exited children. Returns the first that exited since the last call
 * (NULL when none). */
static child *reap(demo *d)
{
    child *first = NULL;
    for (size_t i = 0; i < d->n_kids; i++) {
        child *k = &d->kids[i];
        if (k->reaped)
            continue;
        int st;
        pid_t r = waitpid(k->pid, &st, WNOHANG);
        if (r == k->pid) {
            k->reaped = 1;
            k->status = st;
            if (first == NULL)
                first = k;
        }
    }
    return first;
}

static void report_exit(const demo *d, const child *k)
{
    char how[64];
    if (WIFEXITED(k->status))
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(k->status));
    else if (WIFSIGNALED(k->status))
        snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(k->status));
    else
        snprintf(how, sizeof how, "stopped");
    cli__err("demo: %s (pid %ld) %s; see %s/logs/%s.log", k->name, (long)k->pid, how, d->out,
             k->name);
}

static size_t live_kids(demo *d, const char *prefix, int exclude_prefix)
{
    reap(d);
    size_t n = 0;
    for (size_t i = 0; i < d->n_kids; i++) {
        const child *k = &d->kids[i];
        int match = prefix == NULL || strncmp(k->name, prefix, strlen(prefix)) == 0;
        if (exclude_prefix)
            match = !match;
        if (!k->reaped && match)
            n++;
    }
    return n;
}

/* SIGTERM, wait up to STOP_GRACE_MS, then SIGKILL: first every program but
 * Redis, then Redis (so it writes its append-only file last). */
static void stop_all(demo *d)
{
    for (int phase = 0; phase < 2; phase++) {
        int redis = phase == 1;
        for (size_t i = 0; i < d->n_kids; i++) {
            child *k = &d->kids[i];
            if (!k->reaped && (strcmp(k->name, "redis") == 0) == redis)
                kill(k->pid, SIGTERM);
        }
        uint64_t until = empq_mono_ms() + STOP_GRACE_MS;
        while (live_kids(d, "redis", !redis) > 0 && empq_mono_ms() < until)
            sleep_ms(20);
        for (size_t i = 0; i < d->n_kids; i++) {
            child *k = &d->kids[i];
            if (!k->reaped && (strcmp(k->name, "redis") == 0) == redis) {
                fprintf(stderr, "empq: demo: %s (pid %ld) did not stop in %d s; killing it\n",
                        k->name, (long)k->pid, STOP_GRACE_MS / 1000);
                kill(k->pid, SIGKILL);
                waitpid(k->pid, &k->status, 0);
                k->reaped = 1;
            }
        }
    }
}

/* ==================== readiness ==================== */

/* Nonzero (and reported) when a child has died or the user stopped us. */
static int broken(demo *d)
{
    if (demo_stop)
        return 1;
    child *k = reap(d);
    if (k != NULL) {
        report_exit(d, k);
        return 1;
    }
    return 0;
}

static int wait_redis(demo *d)
{
    uint64_t until = empq_mono_ms() + READY_TIMEOUT_MS;
    empq_error err = {0};
    while (empq_mono_ms() < until) {
        if (broken(d))
            return CLI_FAIL;
        empq_store *s = NULL;
        if (empq_store_open(&s, d->redis_url, 500, &err) == EMPQ_OK) {
            int rc = empq_store_ping(s);
            empq_store_close(&s);
            if (rc == EMPQ_OK)
                return CLI_OK;
        }
        sleep_ms(50);
    }
    cli__err("demo: redis-server did not answer within %d s: %s; see %s/logs/redis.log",
             READY_TIMEOUT_MS / 1000, err.msg, d->out);
    return CLI_FAIL;
}

static int wait_fakellm(demo *d, const char *port_file)
{
    uint64_t until = empq_mono_ms() + READY_TIMEOUT_MS;
    while (empq_mono_ms() < until) {
        if (broken(d))
            return CLI_FAIL;
        char *text = NULL;
        if (empq_read_file(port_file, &text, NULL, NULL) == EMPQ_OK) {
            int port = atoi(text);
            free(text);
            if (port > 0 && port < 65536) {
                d->fake_port = port;
                snprintf(d->fake_url, sizeof d->fake_url, "http://127.0.0.1:%d", port);
                return CLI_OK;
            }
        }
        sleep_ms(20);
    }
    cli__err("demo: empq-fakellm did not write its port to %s within %d s; see %s/logs/fakellm.log",
             port_file, READY_TIMEOUT_MS / 1000, d->out);
    return CLI_FAIL;
}

/* Sends a control request; ping when run is NULL and workers == 0. */
static int control(demo *d, Empq__ControlRequest *req, int timeout_ms, Empq__ControlReply **reply,
                   empq_error *err)
{
    return cli__control(d->control_ep, req, timeout_ms, reply, err);
}

static int wait_broker(demo *d)
{
    uint64_t until = empq_mono_ms() + READY_TIMEOUT_MS;
    empq_error err = {0};
    while (empq_mono_ms() < until) {
        if (broken(d))
            return CLI_FAIL;
        Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
        req.body_case = EMPQ__CONTROL_REQUEST__BODY_PING;
        req.ping = 1;
        Empq__ControlReply *reply = NULL;
        if (control(d, &req, 300, &reply, &err) == EMPQ_OK) {
            empq__control_reply__free_unpacked(reply, NULL);
            return CLI_OK;
        }
    }
    cli__err("demo: empq-broker did not answer on %s within %d s: %s; see %s/logs/broker.log",
             d->control_ep, READY_TIMEOUT_MS / 1000, err.msg, d->out);
    return CLI_FAIL;
}

/* Waits (briefly) until the broker knows every worker, so the timing starts
 * with all of them connected. Not fatal. */
static int wait_workers(demo *d)
{
    uint64_t until = empq_mono_ms() + READY_TIMEOUT_MS;
    size_t seen = 0;
    while (empq_mono_ms() < until) {
        if (broken(d))
            return CLI_FAIL;
        Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
        req.body_case = EMPQ__CONTROL_REQUEST__BODY_WORKERS;
        req.workers = 1;
        Empq__ControlReply *reply = NULL;
        empq_error err = {0};
        if (control(d, &req, 1000, &reply, &err) == EMPQ_OK) {
            seen = reply->n_workers;
            empq__control_reply__free_unpacked(reply, NULL);
            if (seen >= d->workers)
                return CLI_OK;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "empq: demo: only %zu of %" PRIu64 " workers connected to the broker; going on\n",
            seen, d->workers);
    return CLI_OK;
}

/* ==================== start ==================== */

static int start_all(demo *d)
{
    char p1[PATHLEN + 64], p2[PATHLEN + 64], dir[PATHLEN + 64], log[PATHLEN + 64], num[32];
    d->redis_port = free_port();
    d->broker_port = free_port();
    d->control_port = free_port();
    if (d->redis_port <= 0 || d->broker_port <= 0 || d->control_port <= 0 ||
        d->redis_port == d->broker_port || d->broker_port == d->control_port ||
        d->redis_port == d->control_port) {
        cli__err("demo: cannot find free TCP ports on 127.0.0.1");
        return CLI_FAIL;
    }
    snprintf(d->redis_url, sizeof d->redis_url, "redis://127.0.0.1:%d", d->redis_port);
    snprintf(d->jobs_ep, sizeof d->jobs_ep, "tcp://127.0.0.1:%d", d->broker_port);
    snprintf(d->control_ep, sizeof d->control_ep, "tcp://127.0.0.1:%d", d->control_port);

    /* Redis: its data stays in DIR/redis between demos. */
    snprintf(num, sizeof num, "%d", d->redis_port);
    snprintf(dir, sizeof dir, "%s/redis", d->out);
    snprintf(log, sizeof log, "%s/logs/redis.log", d->out);
    {
        char *argv[] = {d->redis_bin, "--port", num, "--bind", "127.0.0.1", "--dir", dir,
                        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                        "--daemonize", "no", "--logfile", log, NULL};
        if (spawn(d, "redis", argv) != CLI_OK)
            return CLI_FAIL;
    }
    if (wait_redis(d) != CLI_OK)
        return CLI_FAIL;

    /* The fake LLM server on a port of its choosing. */
    char port_file[PATHLEN + 64];
    snprintf(port_file, sizeof port_file, "%s/fakellm.port", d->out);
    unlink(port_file);
    snprintf(p1, sizeof p1, "%s/empq-fakellm", d->bin);
    snprintf(num, sizeof num, "%" PRIu64, d->latency_ms);
    {
        char *argv[] = {p1, "--port", "0", "--port-file", port_file, "--latency-ms", num, NULL};
        if (spawn(d, "fakellm", argv) != CLI_OK)
            return CLI_FAIL;
    }
    if (wait_fakellm(d, port_file) != CLI_OK)
        return CLI_FAIL;
    /* The demo spec's base_url is "${EMPQ_FAKELLM_URL}/v1": the workers
     * expand it from their environment. */
    setenv("EMPQ_FAKELLM_URL", d->fake_url, 1);

    snprintf(p1, sizeof p1, "%s/empq-broker", d->bin);
    {
        char *argv[] = {p1, "--redis", d->redis_url, "--bind", d->jobs_ep, "--control",
                        d->control_ep, NULL};
        if (spawn(d, "broker", argv) != CLI_OK)
            return CLI_FAIL;
    }
    snprintf(p2, sizeof p2, "%s/runs", d->out);
    snprintf(p1, sizeof p1, "%s/empq-collector", d->bin);
    {
        char con[64];
        snprintf(con, sizeof con, "127.0.0.1:%" PRIu64, d->console_port);
        char *argv[] = {p1, "--redis", d->redis_url, "--out", p2, "--name", "collector-1",
                        d->console_port ? "--console" : NULL, con, "--broker-control", d->control_ep, NULL};
        if (spawn(d, "collector", argv) != CLI_OK)
            return CLI_FAIL;
        if (d->console_port)
            fprintf(stderr, "empq: demo: study console on http://%s/\n", con);
    }
    if (wait_broker(d) != CLI_OK)
        return CLI_FAIL;

    snprintf(p1, sizeof p1, "%s/empq-worker", d->bin);
    char credit[32];
    snprintf(credit, sizeof credit, "%" PRIu64, d->credit);
    for (uint64_t w = 0; w < d->workers; w++) {
        char name[32], id[64];
        snprintf(name, sizeof name, "worker-%" PRIu64, w + 1);
        snprintf(id, sizeof id, "demo-worker-%" PRIu64, w + 1);
        char *argv[12];
        int a = 0;
        argv[a++] = p1;
        argv[a++] = "--redis";
        argv[a++] = d->redis_url;
        argv[a++] = "--broker";
        argv[a++] = d->jobs_ep;
        argv[a++] = "--id";
        argv[a++] = id;
        if (d->credit > 0) {
            argv[a++] = "--credit";
            argv[a++] = credit;
        }
        argv[a] = NULL;
        if (spawn(d, name, argv) != CLI_OK)
            return CLI_FAIL;
    }
    return wait_workers(d);
}

/* ==================== progress ==================== */

typedef struct progress {
    uint64_t total, done, dead, cache_hits, pending, leased;
    int known; /* the broker reported the run */
} progress;

static int poll_status(demo *d, const char *run_id, progress *p)
{
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_STATUS;
    req.status = (char *)run_id;
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    int rc = control(d, &req, 2000, &reply, &err);
    if (rc != EMPQ_OK)
        return rc;
    for (size_t i = 0; i < reply->n_runs; i++) {
        const Empq__RunStatus *r = reply->runs[i];
        if (strcmp(r->run_id, run_id) != 0)
            continue;
        p->known = 1;
        p->total = r->total;
        p->done = r->done;
        p->dead = r->dead;
        p->cache_hits = r->cache_hits;
        p->pending = r->pending;
        p->leased = r->leased;
    }
    empq__control_reply__free_unpacked(reply, NULL);
    return EMPQ_OK;
}

static void show(demo *d, const progress *p, uint64_t elapsed_ms, int final)
{
    char a[32], b[32], c[32], e[32], f[32];
    uint64_t fin = p->done + p->dead;
    double secs = elapsed_ms / 1000.0;
    double rate = secs > 0 ? fin / secs : 0;
    double pct = p->total > 0 ? 100.0 * fin / p->total : 0;
    /* ETA: what is left at the rate so far; "-" before the first job ends */
    char eta[32];
    uint64_t left = p->total > fin ? p->total - fin : 0;
    cli__fmt_secs(left == 0 ? 0 : rate > 0 ? (double)left / rate : -1, eta, sizeof eta);
    if (d->tty) {
        char bar[21];
        int fill = p->total > 0 ? (int)(20 * fin / p->total) : 0;
        for (int i = 0; i < 20; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[20] = '\0';
        fprintf(stderr, "\r[%s] %s/%s %5.1f%%  ETA %s  %s jobs/s  cache hits %s  dead %s  %.1f s \033[K%s",
                bar, commas(fin, a, sizeof a), commas(p->total, b, sizeof b), pct, eta,
                commas((uint64_t)rate, f, sizeof f), commas(p->cache_hits, c, sizeof c),
                commas(p->dead, e, sizeof e), secs, final ? "\n" : "");
    } else {
        fprintf(stderr, "empq: demo: %s/%s jobs done (%.1f%%), ETA %s, cache hits %s, dead %s, %.0f jobs/s, %.1f s\n",
                commas(fin, a, sizeof a), commas(p->total, b, sizeof b), pct, eta,
                commas(p->cache_hits, c, sizeof c), commas(p->dead, e, sizeof e), rate, secs);
    }
    fflush(stderr);
}

/* ==================== results ==================== */

static size_t curl_sink(char *ptr, size_t size, size_t nmemb, void *arg)
{
    empq_buf *b = arg;
    return empq_buf_append(b, ptr, size * nmemb) == EMPQ_OK ? size * nmemb : 0;
}

/* GET fakellm /stats -> "requests". -1 when it cannot be read. */
static long long backend_calls(demo *d)
{
    char url[128];
    snprintf(url, sizeof url, "%s/stats", d->fake_url);
    CURL *h = curl_easy_init();
    if (h == NULL)
        return -1;
    empq_buf b = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    long long n = -1;
    if (cc == CURLE_OK && status == 200 && b.data != NULL) {
        json_error_t je;
        json_t *o = json_loads(b.data, 0, &je);
        json_t *r = o != NULL ? json_object_get(o, "requests") : NULL;
        if (json_is_integer(r))
            n = json_integer_value(r);
        json_decref(o);
    }
    if (n < 0)
        fprintf(stderr, "empq: demo: could not read %s (%s)\n", url,
                cc != CURLE_OK ? curl_easy_strerror(cc) : "unexpected reply");
    empq_buf_free(&b);
    return n;
}

/* Counts lines and cache hits of a responses.jsonl. */
static int count_responses(const char *path, uint64_t *lines, uint64_t *hits, uint64_t *emotions)
{
    char *text = NULL;
    size_t len = 0;
    empq_error err = {0};
    if (empq_read_file(path, &text, &len, &err) != EMPQ_OK)
        return CLI_FAIL;
    *lines = *hits = 0;
    char seen_emotions[64][32];
    size_t n_emo = 0;
    for (char *line = text; *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (o != NULL) {
            (*lines)++;
            if (json_is_true(json_object_get(o, "cache_hit")))
                (*hits)++;
            const char *e = json_string_value(json_object_get(o, "emotion"));
            int known = 0;
            for (size_t i = 0; e != NULL && i < n_emo && !known; i++)
                known = strcmp(seen_emotions[i], e) == 0;
            if (e != NULL && !known && n_emo < 64)
                snprintf(seen_emotions[n_emo++], 32, "%s", e);
            json_decref(o);
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    *emotions = n_emo;
    free(text);
    return CLI_OK;
}

/* ==================== the demo ==================== */

/* An interrupted demo cancels its run, so the next demo's broker does not
 * take it up again from Redis. */
static void cancel_run(demo *d)
{
    if (d->run_id[0] == '\0' || d->control_ep[0] == '\0')
        return;
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_CANCEL;
    req.cancel = d->run_id;
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    if (control(d, &req, 1000, &reply, &err) == EMPQ_OK) {
        fprintf(stderr, "empq: demo: run %s cancelled\n", d->run_id);
        empq__control_reply__free_unpacked(reply, NULL);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: empq demo [--prompts N] [--workers W] [--latency-ms L] [--credit C] [--out DIR]\n"
               "                 [--console PORT]\n"
               "  --prompts N      prompts of the demo study (default 2000; x 5 sources = jobs)\n"
               "  --workers W      empq-worker processes (default 2)\n"
               "  --latency-ms L   the fake LLM's latency per request (default 0)\n"
               "  --credit C       jobs each worker holds at once (default: the worker's)\n"
               "  --console PORT   the collector also serves the study console on 127.0.0.1:PORT\n"
               "  --out DIR        outputs, logs and Redis data (default ./empq-demo); run again\n"
               "                   with the same DIR and every response comes from the cache\n"
               "  then rates the responses with SIMULATED participants (not real people):\n"
               "  DIR/plan/ (empq assign), DIR/ratings/ (empq ratings export), DIR/report/\n"
               "  (empq analyze: report.html, report.md, tables/)\n");
}

static int parse(demo *d, int argc, char **argv, int *done)
{
    *done = 0;
    d->prompts = 2000;
    d->workers = 2;
    snprintf(d->out, sizeof d->out, "./empq-demo");
    enum { PROMPTS = CLI_OPT, WORKERS, LATENCY, CREDIT, OUT, CONSOLE };
    static const struct option opts[] = {
        {"prompts", required_argument, NULL, PROMPTS},    {"workers", required_argument, NULL, WORKERS},
        {"latency-ms", required_argument, NULL, LATENCY}, {"credit", required_argument, NULL, CREDIT},
        {"out", required_argument, NULL, OUT},            {"console", required_argument, NULL, CONSOLE},
        CLI_OPT_HELP_ENTRY,
        {0}};
    cli__args a = {.cmd = "demo", .opts = opts, .usage = usage};
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case PROMPTS: cli__opt_u64(&a, 10000000, &d->prompts); break;
        case WORKERS: cli__opt_u64(&a, MAX_WORKERS, &d->workers); break;
        case LATENCY: cli__opt_u64(&a, 600000, &d->latency_ms); break;
        case CREDIT: cli__opt_u64(&a, 1000000, &d->credit); break;
        case CONSOLE: cli__opt_u64(&a, 65535, &d->console_port); break;
        case OUT:
            if (optarg[0] != '\0') {
                snprintf(d->out, sizeof d->out, "%s", optarg);
            } else {
                cli__err("demo: --out needs a folder");
                a.code = CLI_USAGE;
            }
            break;
        }
    }
    if (c == 0) {
        *done = a.code == CLI_OK; /* --help */
        return a.code;
    }
    if (d->prompts == 0 || d->workers == 0) {
        cli__err("demo: --%s must be at least 1", d->prompts == 0 ? "prompts" : "workers");
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int make_dirs(demo *d)
{
    static const char *const sub[] = {"", "/redis", "/logs", "/runs"};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        char p[PATHLEN + 16];
        snprintf(p, sizeof p, "%s%s", d->out, sub[i]);
        empq_error err = {0};
        if (empq_mkdirs(p, &err) != EMPQ_OK) {
            cli__err("demo: cannot create %s", err.msg);
            return CLI_FAIL;
        }
    }
    /* Every path handed to a child is absolute: redis-server enters its
     * --dir before it opens its --logfile, so a relative log path (the
     * default ./empq-demo) would be looked up inside DIR/redis. */
    char *real = realpath(d->out, NULL);
    if (real == NULL || strlen(real) >= sizeof d->out) {
        cli__err("demo: cannot resolve %s: %s", d->out, real == NULL ? strerror(errno) : "path too long");
        free(real);
        return CLI_FAIL;
    }
    snprintf(d->out, sizeof d->out, "%s", real);
    free(real);
    return CLI_OK;
}

/* Runs the study: submit, progress, wait for the collector's file. */
static int run_study(demo *d)
{
    char a[32];
    fprintf(stderr, "empq: demo: %s prompts x 5 sources, %" PRIu64 " workers, fake latency %" PRIu64
                    " ms, outputs in %s\n",
            commas(d->prompts, a, sizeof a), d->workers, d->latency_ms, d->out);
    cli__submit_opts so = {0};
    so.spec_path = d->spec;
    so.redis_url = d->redis_url;
    so.control = d->control_ep;
    so.prompts = d->prompts;
    so.timeout_ms = 5000;
    char run_id[64];
    uint64_t jobs = 0;
    uint64_t t0 = empq_mono_ms();
    int code = cli__submit(&so, run_id, sizeof run_id, &jobs);
    snprintf(d->run_id, sizeof d->run_id, "%s", run_id);
    if (code != CLI_OK)
        return code;

    char produced[PATHLEN + 128], final_path[PATHLEN + 32];
    snprintf(produced, sizeof produced, "%s/runs/%s/responses.jsonl", d->out, run_id);
    snprintf(final_path, sizeof final_path, "%s/responses.jsonl", d->out);

    progress p = {0};
    p.total = jobs;
    uint64_t last_show = 0, last_poll = 0, finished_at = 0;
    uint64_t last_fin = 0, last_change = empq_mono_ms();
    int stall_warned = 0;
    uint64_t show_every = d->tty ? 200 : 2000, poll_every = d->tty ? 200 : 1000;
    struct stat sb;
    for (;;) {
        if (broken(d)) {
            if (d->tty)
                fputc('\n', stderr);
            return demo_stop ? CLI_FAIL : CLI_SERVICE;
        }
        if (stat(produced, &sb) == 0)
            break;
        uint64_t now = empq_mono_ms();
        if (now - last_poll >= poll_every) {
            last_poll = now;
            if (poll_status(d, run_id, &p) == EMPQ_OK && p.known && p.total > 0 &&
                p.done + p.dead >= p.total && finished_at == 0)
                finished_at = now;
        }
        if (p.done + p.dead != last_fin) {
            last_fin = p.done + p.dead;
            last_change = now;
            stall_warned = 0;
        } else if (!stall_warned && finished_at == 0 && now - last_change > STALL_WARN_MS) {
            fprintf(stderr, "%sempq: demo: no job finished in the last %d s (pending %" PRIu64
                            ", leased %" PRIu64 "); see %s/logs/\n",
                    d->tty ? "\n" : "", STALL_WARN_MS / 1000, p.pending, p.leased, d->out);
            stall_warned = 1;
        }
        if (finished_at != 0 && now - finished_at > FINISH_TIMEOUT_MS) {
            cli__err("demo: every job is done but the collector wrote no %s in %d s; see %s/logs/collector.log",
                     produced, FINISH_TIMEOUT_MS / 1000, d->out);
            return CLI_FAIL; /* every service answered: a problem found, not one unreachable */
        }
        if (last_show != 0 && now - last_show >= show_every) {
            show(d, &p, now - t0, 0);
            last_show = now;
        } else if (last_show == 0) {
            last_show = now; /* first line after one period: a fast run shows only the final one */
        }
        sleep_ms(10);
    }
    uint64_t wall = empq_mono_ms() - t0;
    poll_status(d, run_id, &p);
    if (p.done + p.dead < p.total)
        p.done = p.total - p.dead; /* the file is written only when every job finished */
    show(d, &p, wall, 1);

    char *text = NULL;
    size_t len = 0;
    empq_error err = {0};
    if (empq_read_file(produced, &text, &len, &err) != EMPQ_OK ||
        empq_write_file_atomic(final_path, text, len, &err) != EMPQ_OK) {
        free(text);
        cli__err("demo: copying the responses: %s", err.msg);
        return CLI_FAIL;
    }
    free(text);

    d->have_responses = 1;
    d->jobs = jobs;
    d->dead = p.dead;
    d->wall_ms = wall;
    count_responses(final_path, &d->lines, &d->hits, &d->emotions);
    d->calls = backend_calls(d);
    return p.dead > 0 ? CLI_FAIL : CLI_OK;
}

/* ==================== the rating study (SIMULATED participants) ==================== */

/* The demo carries the run on to the report the way a real study does
 * (README: "From responses to ratings to the report"): `empq assign`, the
 * rating site's claim / start / answer calls, `empq ratings export`
 * and `empq analyze`, each the same code, in this process. Only the people
 * are simulated: one deterministic rater per slot whose chance of Good,
 * Okay and Bad depends on the source it rates, so the report has a
 * difference to find. Nobody real rated anything. */

#define STUDY_ITEMS 10          /* dialogues per participant */
#define STUDY_SEED 1            /* the plan's and the raters' */
#define STUDY_CHECK_POS 5       /* one attention check, the sixth entry */
#define STUDY_CODE "DEMO42"     /* completion code */
#define RATER_STREAM 0x3c6ef372fe94f82bull

/* Per mille chance of Good and of Okay (the rest is Bad) the simulated
 * raters give each source: every fake model a little more often Good than
 * the human baseline, and differing among themselves. */
static const struct {
    const char *source;
    unsigned good, okay;
} sim_taste[] = {
    {"human", 350, 380},       {"fake-warm", 600, 300}, {"fake-curious", 520, 320},
    {"fake-formal", 450, 350}, {"fake-brief", 400, 330},
};

/* shift: the rater's leniency minus the item's difficulty, in thousandths of
 * probability moved from Bad/Okay to Good (or back), so ratings cluster by
 * rater and by dialogue as real ones do (docs/analysis.md). */
static int sim_rating(const char *source, int shift, empq_rng *r)
{
    unsigned good = sim_taste[0].good, okay = sim_taste[0].okay; /* unknown: as human */
    for (size_t i = 0; i < sizeof sim_taste / sizeof sim_taste[0]; i++) {
        if (strcmp(sim_taste[i].source, source) == 0) {
            good = sim_taste[i].good;
            okay = sim_taste[i].okay;
        }
    }
    long g = (long)good + shift;
    good = g < 0 ? 0 : g > (long)(1000 - okay) ? 1000 - okay : (unsigned)g;
    uint64_t u = empq_rng_below(r, 1000);
    return u < good ? 3 : u < good + okay ? 2 : 1;
}

/* Runs a command of this program in-process with args (NULL-terminated,
 * at most 23) as its argv, in a writable copy of the array since getopt
 * permutes it. Returns the command's exit code. */
static int run_cmd(int (*cmd)(int, char **), const char *const *args)
{
    char *argv[24];
    int argc = 0;
    while (args[argc] != NULL && argc < 23) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    fflush(NULL);
    int code = cmd(argc, argv);
    fflush(NULL);
    return code;
}

/* One simulated participant through the site's calls, in the site's order:
 * claim (consent given), start (the instructions confirmed), then answer each entry. The
 * site's page views are left out: they only record when an entry was
 * first shown, and cost four Redis round trips each. The plan (plan.json)
 * says which source the claimed slot shows and which answer each attention
 * check asks for; the simulated rater passes every check. */
static int sim_participant(demo *d, empq_store *s, json_t *slots, size_t i)
{
    char pid[32];
    snprintf(pid, sizeof pid, "simulated-%05zu", i + 1);
    empq_error err = {0};
    int outcome = 0;
    uint32_t slot = 0;
    const char *step = "claim";
    int rc = empq_ratings_claim(s, d->run_id, pid, "SIMULATED", NULL, EMPQ_RATINGS_CONSENTED,
                                empq_now_ms(), &outcome, &slot, &err);
    json_t *sl = json_array_get(slots, slot);
    json_t *entries = json_object_get(sl, "entries");
    const char *source = json_string_value(json_object_get(sl, "condition"));
    if (rc == EMPQ_OK && outcome == EMPQ_RATINGS_OK && (!json_is_array(entries) || source == NULL)) {
        cli__err("demo: %s/plan/plan.json has no slot %u", d->out, slot);
        return CLI_FAIL;
    }
    if (rc == EMPQ_OK && outcome == EMPQ_RATINGS_OK) {
        step = "start";
        rc = empq_ratings_start(s, d->run_id, pid, empq_now_ms(), &outcome, &err);
    }
    empq_rng r;
    empq_rng_seed(&r, STUDY_SEED ^ (RATER_STREAM * ((uint64_t)slot + 1)));
    size_t n = json_array_size(entries);
    int lenient = (int)empq_rng_below(&r, 601) - 300; /* this rater: -0.3..+0.3 of P(Good) */
    for (size_t pos = 0; rc == EMPQ_OK && outcome == EMPQ_RATINGS_OK && pos < n; pos++) {
        json_int_t e = json_integer_value(json_array_get(entries, pos));
        int hard = (int)(((uint64_t)e * 2654435761u + STUDY_SEED) % 201) - 100; /* the dialogue: -0.1..+0.1 */
        int rating = EMPQ_ASSIGN_IS_CHECK(e) ? EMPQ_ASSIGN_CHECK_EXPECT(e) : sim_rating(source, lenient - hard, &r);
        step = "answer";
        rc = empq_ratings_answer(s, d->run_id, pid, slot, (uint32_t)pos, rating, empq_now_ms(),
                                 &outcome, &err);
    }
    if (rc != EMPQ_OK) {
        cli__err("demo: simulated participant %s: %s: %s", pid, step, err.msg);
        return rc == EMPQ_ESTORE ? CLI_SERVICE : CLI_FAIL;
    }
    if (outcome != EMPQ_RATINGS_OK) {
        cli__err("demo: simulated participant %s: %s: %s", pid, step, empq_ratings_outcome_name(outcome));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Every slot of the stored plan gets one simulated participant. */
static int simulate(demo *d, const char *plan_json)
{
    json_error_t je;
    json_t *plan = json_load_file(plan_json, 0, &je);
    json_t *slots = json_object_get(plan, "slots");
    if (!json_is_array(slots)) {
        cli__err("demo: %s: %s", plan_json, plan == NULL ? je.text : "no slots");
        json_decref(plan);
        return CLI_FAIL;
    }
    d->per_condition = (size_t)json_integer_value(json_object_get(plan, "participants_per_condition"));
    d->items = (size_t)json_integer_value(json_object_get(plan, "items"));
    d->checks = json_array_size(json_object_get(plan, "attention_checks"));
    empq_store *s = NULL;
    empq_error err = {0};
    int code = CLI_OK;
    if (empq_store_open(&s, d->redis_url, 5000, &err) != EMPQ_OK) {
        cli__err("demo: cannot reach the demo's Redis: %s", err.msg);
        code = CLI_SERVICE;
    }
    size_t n = json_array_size(slots);
    for (size_t i = 0; code == CLI_OK && i < n; i++) {
        if (broken(d))
            code = CLI_FAIL;
        else
            code = sim_participant(d, s, slots, i);
    }
    if (code == CLI_OK)
        d->participants = n;
    empq_store_close(&s);
    json_decref(plan);
    return code;
}

/* Reads the analysis' tables/conditions.csv for the summary. Not fatal. */
static void read_conditions(demo *d, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    empq_error err = {0};
    empq_csvread *r = NULL;
    if (empq_read_file(path, &text, &len, &err) != EMPQ_OK ||
        empq_csvread_open_buf(path, text, len, &r, &err) != EMPQ_OK ||
        empq_csvread_header(r, &err) != EMPQ_OK) {
        fprintf(stderr, "empq: demo: cannot read %s: %s\n", path, err.msg);
        empq_csvread_free(&r);
        free(text);
        return;
    }
    long col[6];
    static const char *const names[] = {"condition", "n", "share_good", "share_okay", "share_bad",
                                        "mean_rating"};
    for (size_t i = 0; i < 6; i++)
        col[i] = empq_csvread_col(r, names[i]);
    while (d->n_sources < MAX_SOURCES && empq_csvread_next(r, &err) == 1) {
        study_source *src = &d->sources[d->n_sources++];
        snprintf(src->name, sizeof src->name, "%s", col[0] >= 0 ? empq_csvread_field(r, (size_t)col[0]) : "?");
        src->n = col[1] >= 0 ? strtoull(empq_csvread_field(r, (size_t)col[1]), NULL, 10) : 0;
        double *v[] = {&src->good, &src->okay, &src->bad, &src->mean};
        for (size_t k = 0; k < 4; k++)
            *v[k] = col[k + 2] >= 0 ? strtod(empq_csvread_field(r, (size_t)col[k + 2]), NULL) : 0;
    }
    empq_csvread_free(&r);
    free(text);
}

/* assign -> SIMULATED participants -> export -> analysis, into DIR/plan,
 * DIR/ratings and DIR/report. */
static int run_rating_study(demo *d)
{
    char plan[PATHLEN + 16], ratings[PATHLEN + 16], report[PATHLEN + 16], path[PATHLEN + 64];
    char responses[PATHLEN + 32], items[16], seed[16], check[16];
    snprintf(plan, sizeof plan, "%s/plan", d->out);
    snprintf(ratings, sizeof ratings, "%s/ratings", d->out);
    snprintf(report, sizeof report, "%s/report", d->out);
    snprintf(responses, sizeof responses, "%s/responses.jsonl", d->out);
    snprintf(items, sizeof items, "%d", STUDY_ITEMS);
    snprintf(seed, sizeof seed, "%d", STUDY_SEED);
    /* the check must fall inside the smallest batch: the batches hold
     * prompts / ceil(prompts / items) dialogues or one more */
    uint64_t min_batch = d->prompts / ((d->prompts + STUDY_ITEMS - 1) / STUDY_ITEMS);
    snprintf(check, sizeof check, "%" PRIu64, min_batch < STUDY_CHECK_POS ? min_batch : STUDY_CHECK_POS);
    fprintf(stderr, "empq: demo: rating study with SIMULATED participants (no real people): plan, "
                    "ratings, analysis\n");
    uint64_t t0 = empq_mono_ms();

    const char *assign[] = {"assign", d->run_id, "--items", items, "--seed", seed, "--attention-checks",
                            check, "--completion-code", STUDY_CODE, "--out", plan, "--redis",
                            d->redis_url, NULL};
    int code = run_cmd(cli__cmd_assign, assign);
    snprintf(path, sizeof path, "%s/plan.json", plan);
    if (code == CLI_OK)
        code = simulate(d, path);
    const char *export[] = {"ratings", "export", d->run_id, "--out", ratings, "--redis", d->redis_url, NULL};
    if (code == CLI_OK)
        code = run_cmd(cli__cmd_ratings, export);
    snprintf(path, sizeof path, "%s/ratings-long.csv", ratings);
    const char *analyze[] = {"analyze", "--ratings", path, "--layout", "long", "--responses", responses,
                             "--out", report, NULL};
    if (code == CLI_OK)
        code = run_cmd(cli__cmd_analyze, analyze);
    if (code != CLI_OK)
        return code;
    d->study_ms = empq_mono_ms() - t0;
    d->have_study = 1;
    snprintf(path, sizeof path, "%s/tables/conditions.csv", report);
    read_conditions(d, path);
    for (size_t i = 0; i < d->n_sources; i++)
        d->ratings += d->sources[i].n;
    return CLI_OK;
}

/* ==================== summary ==================== */

static void print_summary(const demo *d)
{
    char c1[32], c2[32];
    double secs = d->wall_ms / 1000.0;
    printf("\nempq demo: done\n");
    printf("  run            %s\n", d->run_id);
    printf("  jobs           %s (%s prompts x 5 sources)\n", commas(d->jobs, c1, sizeof c1),
           commas(d->prompts, c2, sizeof c2));
    printf("  lines          %s, %" PRIu64 " emotions\n", commas(d->lines, c1, sizeof c1), d->emotions);
    printf("  cache hits     %s\n", commas(d->hits, c1, sizeof c1));
    if (d->calls >= 0)
        printf("  backend calls  %s\n", commas((uint64_t)d->calls, c1, sizeof c1));
    else
        printf("  backend calls  unknown\n");
    printf("  dead           %s\n", commas(d->dead, c1, sizeof c1));
    printf("  wall time      %.2f s (submit to responses.jsonl)\n", secs);
    printf("  throughput     %s jobs/s\n",
           commas(secs > 0 ? (uint64_t)(d->jobs / secs) : d->jobs, c1, sizeof c1));
    printf("  responses      %s/responses.jsonl\n", d->out);
    printf("  run files      %s/runs/%s/\n", d->out, d->run_id);
    if (d->have_study) {
        printf("  participants   %s SIMULATED (%zu per source, %s%zu dialogues + %zu attention check%s "
               "each; not real people)\n",
               commas(d->participants, c1, sizeof c1), d->per_condition,
               d->ratings == d->participants * d->items ? "" : "up to ", d->items, d->checks,
               d->checks == 1 ? "" : "s");
        printf("  ratings        %s (%s/ratings/: ratings.csv, ratings-long.csv, participants.csv)\n",
               commas(d->ratings, c1, sizeof c1), d->out);
        printf("  study time     %.2f s (assign, SIMULATED rating, export, analysis)\n",
               d->study_ms / 1000.0);
        printf("  plan           %s/plan/ (plan.csv, plan.json)\n", d->out);
        printf("  report         %s/report/report.html (and report.md, tables/)\n", d->out);
        if (d->n_sources > 0)
            printf("  rated          Good   Okay   Bad    mean  (SIMULATED raters)\n");
        for (size_t i = 0; i < d->n_sources; i++) {
            const study_source *s = &d->sources[i];
            printf("    %-12s %4.1f%%  %4.1f%%  %4.1f%%  %.2f\n", s->name, 100 * s->good, 100 * s->okay,
                   100 * s->bad, s->mean);
        }
    }
    printf("  logs           %s/logs/\n", d->out);
    printf("  redis data     %s/redis/ (run `empq demo --out %s` again: served from the cache)\n",
           d->out, d->out);
    fflush(stdout);
}

int cli__cmd_demo(int argc, char **argv)
{
    demo *d = calloc(1, sizeof *d);
    if (d == NULL) {
        cli__err("demo: out of memory");
        return CLI_FAIL;
    }
    /* The demo's broker is private, on loopback, without CURVE: keys a user
     * exported for a real cluster must not make its workers and control
     * calls try CURVE against it. */
    static const char *const cluster_env[] = {"EMPQ_CURVE_SECRET", "EMPQ_CURVE_SERVER_PUB",
                                              "EMPQ_BROKER_CURVE_SECRET", "EMPQ_CURVE_ALLOW"};
    for (size_t i = 0; i < sizeof cluster_env / sizeof cluster_env[0]; i++)
        unsetenv(cluster_env[i]);
    int done = 0;
    int code = parse(d, argc, argv, &done);
    if (code != CLI_OK || done) {
        free(d);
        return code;
    }
    code = find_paths(d);
    if (code == CLI_OK)
        code = make_dirs(d);
    if (code != CLI_OK) {
        free(d);
        return code;
    }
    d->tty = isatty(STDERR_FILENO);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    code = start_all(d);
    if (code == CLI_OK)
        code = run_study(d);
    if (code == CLI_OK)
        code = run_rating_study(d);
    if (d->have_responses)
        print_summary(d);
    if (demo_stop) {
        fprintf(stderr, "\nempq: demo: interrupted; stopping\n");
        code = 130;
        cancel_run(d);
    }
    stop_all(d);
    curl_global_cleanup();
    if (code != CLI_OK && code != 130)
        fprintf(stderr, "empq: demo: logs are in %s/logs/\n", d->out);
    free(d);
    return code;
}
