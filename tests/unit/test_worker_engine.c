/* test_worker_engine.c: the worker's pipeline against a real redis-server,
 * with the transport seam answered in process (no sockets to a backend).
 * Skips (77) when redis-server is not installed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "empq/store.h"
#include "engine.h"

#define KEY "sk-engine-test-SECRET"

/* ==================== a real redis-server ==================== */

static pid_t redis_pid;
static char redis_url[64];
static char tmpdir[64];

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = 0;
        rmdir(tmpdir); /* empty: nothing is saved */
    }
}

static void redis_start(void)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0)
        SKIP("redis-server is not installed");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/empq-test-engine-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        SKIP("cannot create a temporary directory");
    int port = free_port();
    CHECK(port > 0);
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    redis_pid = fork();
    if (redis_pid == 0) {
        freopen("/dev/null", "w", stdout);
        execlp("redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1", "--dir", tmpdir, "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    static int registered;
    if (!registered)
        atexit(redis_stop);
    registered = 1;
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", port);
    for (int i = 0; i < 200; i++) {
        empq_store *s = NULL;
        if (empq_store_open(&s, redis_url, 200, NULL) == EMPQ_OK) {
            empq_store_close(&s);
            return;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "redis-server did not start on %s\n", redis_url);
    exit(1);
}

/* ==================== an in-process transport ==================== */

static worker__req *started[256];
static size_t n_started;
static int fail_start;

static int tp_start(void *ctx, worker__req *r, empq_error *err)
{
    (void)ctx;
    if (fail_start)
        return empq_error_set(err, EMPQ_EHTTP, "refused");
    started[n_started++] = r;
    return EMPQ_OK;
}

static void tp_cancel(void *ctx, worker__req *r)
{
    (void)ctx;
    for (size_t i = 0; i < n_started; i++)
        if (started[i] == r)
            started[i] = NULL;
}

/* the prompt whose request has not wholly left (transport.unsent), -1: none */
static int unsent_prompt = -1;

static int tp_unsent(void *ctx, const worker__req *r)
{
    (void)ctx;
    return (int)r->prompt == unsent_prompt;
}

static void reply(worker__engine *e, worker__req *r, long status, const char *body, const char *retry_after)
{
    r->status = status;
    r->resp.len = 0;
    CHECK_INT(empq_buf_append(&r->resp, body, strlen(body)), EMPQ_OK);
    if (retry_after != NULL)
        snprintf(r->retry_after, sizeof r->retry_after, "%s", retry_after);
    worker__engine_complete(e, r);
}

static int key_env(const char *name, char **out)
{
    if (strcmp(name, "ENGINE_TEST_KEY") != 0)
        return -1;
    *out = strdup(KEY);
    return 0;
}

/* ==================== fixtures ==================== */

#define N_PROMPTS 4

static Empq__ModelSpec human = EMPQ__MODEL_SPEC__INIT, llm = EMPQ__MODEL_SPEC__INIT, nokey = EMPQ__MODEL_SPEC__INIT;
static Empq__GenParams gp = EMPQ__GEN_PARAMS__INIT;

static void make_run(empq_store *s, const char *id)
{
    human.alias = "human";
    human.provider = "human";
    llm.alias = "llm";
    llm.provider = "openai-compatible";
    llm.base_url = "http://127.0.0.1:9/v1";
    llm.model = "fake-warm";
    llm.api_key_env = "ENGINE_TEST_KEY";
    llm.has_max_attempts = 1;
    llm.max_attempts = 2;
    gp.has_temperature = 1;
    gp.temperature = 0.5;
    llm.params = &gp;
    nokey.alias = "nokey";
    nokey.provider = "openai";
    nokey.model = "gpt-4o";
    nokey.api_key_env = "ENGINE_TEST_MISSING";
    nokey.has_max_attempts = 1;
    nokey.max_attempts = 3;
    static Empq__ModelSpec *models[3];
    models[0] = &human;
    models[1] = &llm;
    models[2] = &nokey;
    Empq__RunSpec spec = EMPQ__RUN_SPEC__INIT;
    spec.name = "engine-test";
    spec.template_system = "Be kind.";
    spec.template_user = "{emotion}: {prompt}";
    spec.n_models = 3;
    spec.models = models;
    Empq__Run run = EMPQ__RUN__INIT;
    run.id = (char *)id;
    run.spec = &spec;
    run.n_prompts = N_PROMPTS;
    Empq__Prompt p[N_PROMPTS], *pp[N_PROMPTS];
    char text[N_PROMPTS][32], hum[N_PROMPTS][32], pid[N_PROMPTS][8];
    for (int i = 0; i < N_PROMPTS; i++) {
        Empq__Prompt init = EMPQ__PROMPT__INIT;
        p[i] = init;
        p[i].index = (uint32_t)i;
        snprintf(pid[i], sizeof pid[i], "p%d", i);
        snprintf(text[i], sizeof text[i], "I failed exam %d.", i);
        snprintf(hum[i], sizeof hum[i], "Oh no, exam %d!", i);
        p[i].id = pid[i];
        p[i].emotion = "sad";
        p[i].prompt = text[i];
        p[i].human_response = i == 3 ? NULL : hum[i]; /* prompt 3 has none */
        pp[i] = &p[i];
    }
    CHECK_INT(empq_store_run_create(s, &run, pp, N_PROMPTS), EMPQ_OK);
}

/* A batch of jobs (prompt, model) of run id, attempt given. */
static Empq__JobBatch *batch(const char *id, const uint32_t (*pm)[2], size_t n, uint32_t attempt, int force)
{
    static Empq__Job jobs[64];
    static Empq__Job *jp[64];
    static Empq__JobBatch b;
    Empq__JobBatch init = EMPQ__JOB_BATCH__INIT;
    b = init;
    b.run_id = (char *)id;
    for (size_t i = 0; i < n; i++) {
        Empq__Job j = EMPQ__JOB__INIT;
        jobs[i] = j;
        jobs[i].prompt = pm[i][0];
        jobs[i].model = pm[i][1];
        jobs[i].index = pm[i][0] * 3 + pm[i][1];
        jobs[i].has_sample = 1;
        jobs[i].has_attempt = 1;
        jobs[i].attempt = attempt;
        jp[i] = &jobs[i];
    }
    b.n_jobs = n;
    b.jobs = jp;
    b.has_force = 1;
    b.force = force;
    return &b;
}

static const Empq__Outcome *find(const Empq__Outcomes *o, uint32_t job)
{
    for (size_t i = 0; i < o->n_items; i++)
        if (o->items[i]->job == job)
            return o->items[i];
    fprintf(stderr, "no outcome for job %u\n", job);
    exit(1);
}

static const char *OK_BODY =
    "{\"model\":\"fake-warm-001\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"So sorry.\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}";

static empq_store *store;
static worker__engine *eng;

static void setup(void)
{
    redis_start();
    CHECK_INT(empq_store_open(&store, redis_url, 1000, NULL), EMPQ_OK);
    make_run(store, "r1");
    make_run(store, "r2");
    worker__options opt = WORKER__OPTIONS_INIT;
    opt.worker_id = "wtest";
    opt.getenv_key = key_env;
    worker__transport tp = {NULL, tp_start, tp_cancel, NULL, NULL};
    CHECK_INT(worker__engine_new(&eng, &opt, store, &tp, NULL), EMPQ_OK);
}

/* ==================== tests ==================== */

static void test_human_and_backend(void)
{
    static const uint32_t pm[][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {3, 0}};
    n_started = 0;
    worker__engine_batch(eng, batch("r1", pm, 5, 1, 0));
    CHECK_INT(n_started, 2); /* the two llm jobs missed the empty cache */
    CHECK_INT(worker__engine_in_flight(eng), 2);
    /* the request is the provider's exact body, the endpoint the spec's */
    CHECK_STR(started[0]->url, "http://127.0.0.1:9/v1/chat/completions");
    CHECK_CONTAINS(started[0]->body, "\"content\":\"sad: I failed exam 0.\"");
    CHECK_CONTAINS(started[0]->body, "{\"role\":\"system\",\"content\":\"Be kind.\"}");
    CHECK_INT(started[0]->timeout_ms, 120000);

    const Empq__Outcomes *o = NULL;
    CHECK_INT(worker__engine_flush(eng, &o), 3); /* humans: 2 done, 1 dead (no human response) */
    CHECK_INT(find(o, 0)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(find(o, 3)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(find(o, 9)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD);
    CHECK_CONTAINS(find(o, 9)->reason, "no human response");

    reply(eng, started[0], 200, OK_BODY, NULL);
    reply(eng, started[1], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_in_flight(eng), 0);
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(find(o, 1)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(find(o, 1)->tokens, 15);
    CHECK(!find(o, 1)->cache_hit);
    CHECK_INT(worker__engine_flush(eng, &o), 0);

    uint64_t results = 0, dead = 0;
    CHECK_INT(empq_store_counts(store, "r1", &results, &dead), EMPQ_OK);
    CHECK_INT(results, 4);
    CHECK_INT(dead, 1);
    Empq__Result **all = NULL;
    size_t n = 0;
    CHECK_INT(empq_store_results_all(store, "r1", &all, &n), EMPQ_OK);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i]->job == 0) {
            CHECK_STR(all[i]->gen->text, "Oh no, exam 0!");
            CHECK(!all[i]->cache_hit);
            seen++;
        }
        if (all[i]->job == 4) {
            CHECK_STR(all[i]->gen->text, "So sorry.");
            CHECK_STR(all[i]->gen->model_reported, "fake-warm-001");
            CHECK_INT(all[i]->gen->tokens_in, 12);
            CHECK_INT(all[i]->attempts, 1);
            CHECK_STR(all[i]->worker, "wtest");
            CHECK(all[i]->cache_key != NULL && strlen(all[i]->cache_key) == 64);
            CHECK(all[i]->finished_ms >= all[i]->started_ms);
            seen++;
        }
    }
    CHECK_INT(seen, 2);
    empq_store_free_results(all, n);
}

static void test_cache_hits_across_runs(void)
{
    /* run r2 asks the same requests: served from the cache, no backend call */
    static const uint32_t pm[][2] = {{0, 1}, {1, 1}, {2, 1}};
    worker__stats st0;
    worker__engine_stats(eng, &st0);
    n_started = 0;
    worker__engine_batch(eng, batch("r2", pm, 3, 1, 0));
    CHECK_INT(n_started, 1); /* prompt 2 was never asked */
    const Empq__Outcomes *o = NULL;
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK(find(o, 1)->cache_hit);
    CHECK(find(o, 4)->cache_hit);
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK(!find(o, 7)->cache_hit);

    /* force: the cache is not read */
    n_started = 0;
    static const uint32_t again[][2] = {{0, 1}};
    worker__engine_batch(eng, batch("r2", again, 1, 1, 1));
    CHECK_INT(n_started, 1);
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK(!find(o, 1)->cache_hit);
    worker__stats st;
    worker__engine_stats(eng, &st);
    CHECK_INT(st.cache_hits - st0.cache_hits, 2);
}

static void test_retry_then_dead(void)
{
    static const uint32_t pm[][2] = {{2, 1}};
    const Empq__Outcomes *o = NULL;
    /* attempt 1 of 2: 429 with Retry-After -> RETRY after the delay */
    n_started = 0;
    worker__engine_batch(eng, batch("r1", pm, 1, 1, 1));
    CHECK_INT(n_started, 1);
    reply(eng, started[0], 429, "{\"error\":{\"message\":\"Rate limit reached\"}}", "2");
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK_INT(o->items[0]->retry_after_ms, 2000);
    CHECK_INT(o->items[0]->http_status, 429);
    CHECK_STR(o->items[0]->reason, "HTTP 429: Rate limit reached");
    CHECK(!o->items[0]->has_local_failure); /* the provider's answer: an attempt */

    /* attempt 2 of 2: a 503 -> DEAD with a dead letter, key redacted */
    n_started = 0;
    worker__engine_batch(eng, batch("r1", pm, 1, 2, 1));
    reply(eng, started[0], 503, "{\"error\":{\"message\":\"overloaded, key " KEY "\"}}", NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD);
    CHECK(strstr(o->items[0]->reason, "SECRET") == NULL);
    Empq__DeadLetter **d = NULL;
    size_t n = 0;
    CHECK_INT(empq_store_dead_all(store, "r1", &d, &n), EMPQ_OK);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i]->job == 7) {
            found = 1;
            CHECK_INT(d[i]->last_status, 503);
            CHECK_INT(d[i]->attempts, 2);
            CHECK_CONTAINS(d[i]->body_excerpt, "overloaded, key ***");
            CHECK(strstr(d[i]->body_excerpt, "SECRET") == NULL);
            CHECK(strstr(d[i]->reason, "SECRET") == NULL);
        }
    CHECK(found);
    empq_store_free_dead(d, n);

    /* a permanent error dies at once, whatever the attempt */
    static const uint32_t pm2[][2] = {{3, 1}};
    n_started = 0;
    worker__engine_batch(eng, batch("r1", pm2, 1, 1, 1));
    reply(eng, started[0], 400, "{\"error\":{\"message\":\"bad request\"}}", NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD);

    /* the transport refusing to start is retryable */
    fail_start = 1;
    static const uint32_t pm3[][2] = {{1, 1}};
    worker__engine_batch(eng, batch("r1", pm3, 1, 1, 1));
    fail_start = 0;
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK_CONTAINS(o->items[0]->reason, "transport: refused");
}

static void test_missing_key_and_bad_jobs(void)
{
    const Empq__Outcomes *o = NULL;
    /* the key variable is not set on this worker: retry, then dead */
    static const uint32_t pm[][2] = {{0, 2}};
    n_started = 0;
    worker__engine_batch(eng, batch("r1", pm, 1, 1, 0));
    CHECK_INT(n_started, 0);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK_CONTAINS(o->items[0]->reason, "ENGINE_TEST_MISSING is not set on worker wtest");
    worker__engine_batch(eng, batch("r1", pm, 1, 3, 0));
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD);

    /* out of range, and an unknown run: dead */
    static const uint32_t bad[][2] = {{9, 1}};
    worker__engine_batch(eng, batch("r1", bad, 1, 1, 0));
    worker__engine_batch(eng, batch("nope", pm, 1, 1, 0));
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD);
    CHECK_CONTAINS(o->items[0]->reason, "out of range");
    CHECK_INT(o->items[1]->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD);
    CHECK_STR(o->items[1]->run_id, "nope");
    CHECK_CONTAINS(o->items[1]->reason, "not found");
}

static void test_redis_down_means_retry(void)
{
    const Empq__Outcomes *o = NULL;
    static const uint32_t pm[][2] = {{2, 0}, {2, 1}};
    n_started = 0;
    worker__engine_batch(eng, batch("r1", pm, 2, 1, 1)); /* force: no cache read */
    CHECK_INT(n_started, 1);
    redis_stop();
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 2); /* the human result and the reply: both retried */
    for (size_t i = 0; i < o->n_items; i++) {
        CHECK_INT(o->items[i]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
        CHECK_CONTAINS(o->items[i]->reason, "store:");
        CHECK(o->items[i]->has_local_failure && o->items[i]->local_failure); /* not an attempt */
    }
    /* a batch with Redis down: every job retried, nothing lost */
    static const uint32_t pm2[][2] = {{1, 0}, {1, 1}};
    worker__engine_batch(eng, batch("r1", pm2, 2, 1, 0));
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK(o->items[0]->has_local_failure && o->items[0]->local_failure);
    worker__stats st;
    worker__engine_stats(eng, &st);
    CHECK(st.store_errors >= 2);
}

static void test_stop_releases(void)
{
    const Empq__Outcomes *o = NULL;
    static const uint32_t pm[][2] = {{0, 1}, {1, 1}};
    /* stopping: new jobs are handed back untried */
    worker__engine_stop(eng);
    worker__engine_batch(eng, batch("r1", pm, 2, 1, 0));
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
    CHECK_INT(o->items[1]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
    CHECK_INT(worker__engine_in_flight(eng), 0);
    worker__engine_release_all(eng);
    CHECK_INT(worker__engine_flush(eng, &o), 0);
}

static void test_release_in_flight(void)
{
    /* a fresh engine on a fresh Redis: two requests in flight, then released */
    redis_start();
    empq_store_close(&store);
    CHECK_INT(empq_store_open(&store, redis_url, 1000, NULL), EMPQ_OK);
    make_run(store, "r3");
    worker__engine_free(&eng);
    CHECK(eng == NULL);
    worker__options opt = WORKER__OPTIONS_INIT;
    opt.getenv_key = key_env;
    worker__transport tp = {NULL, tp_start, tp_cancel, NULL, NULL};
    CHECK_INT(worker__engine_new(&eng, &opt, store, &tp, NULL), EMPQ_OK);
    static const uint32_t pm[][2] = {{0, 1}, {1, 1}};
    n_started = 0;
    worker__engine_batch(eng, batch("r3", pm, 2, 1, 1));
    CHECK_INT(worker__engine_in_flight(eng), 2);
    worker__engine_release_all(eng);
    CHECK_INT(worker__engine_in_flight(eng), 0);
    CHECK(started[0] == NULL && started[1] == NULL); /* cancelled on the transport */
    const Empq__Outcomes *o = NULL;
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(o->items[0]->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
}

/* max_requests: the rest of a batch waits ready, in order, and starts in
 * the slots of finished requests once their results are written; a refused
 * start is a RETRY; with Redis failing, or the worker stopping, the queue
 * is handed back untried. */
static void test_request_limit(void)
{
    worker__engine_free(&eng);
    worker__options opt = WORKER__OPTIONS_INIT;
    opt.getenv_key = key_env;
    opt.max_requests = 2;
    worker__transport tp = {NULL, tp_start, tp_cancel, NULL, NULL};
    CHECK_INT(worker__engine_new(&eng, &opt, store, &tp, NULL), EMPQ_OK);
    static const uint32_t pm[][2] = {{0, 1}, {1, 1}, {2, 1}, {3, 1}}; /* jobs 1, 4, 7, 10 */
    n_started = 0;
    worker__engine_batch(eng, batch("r3", pm, 4, 1, 1));
    CHECK_INT(n_started, 2);
    CHECK_INT(worker__engine_sent(eng), 2);
    CHECK_INT(worker__engine_in_flight(eng), 4);
    CHECK_INT(started[0]->prompt, 0);
    CHECK_INT(started[1]->prompt, 1);
    const Empq__Outcomes *o = NULL;
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(n_started, 2); /* not before its result is written */
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 1)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(n_started, 3);
    CHECK_INT(started[2]->prompt, 2);
    CHECK_INT(worker__engine_sent(eng), 2);
    CHECK_INT(worker__engine_in_flight(eng), 3);
    reply(eng, started[1], 200, OK_BODY, NULL);
    fail_start = 1; /* prompt 3 is refused by the transport */
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    fail_start = 0;
    CHECK_INT(find(o, 4)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(n_started, 3);
    CHECK_INT(worker__engine_sent(eng), 1);
    CHECK_INT(worker__engine_in_flight(eng), 1);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 10)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK_CONTAINS(find(o, 10)->reason, "refused");

    /* one slot free: the first of two starts, the second waits and is
     * handed back untried when the worker stops */
    static const uint32_t pm2[][2] = {{0, 1}, {1, 1}};
    worker__engine_batch(eng, batch("r3", pm2, 2, 2, 1));
    CHECK_INT(n_started, 4);
    CHECK_INT(worker__engine_in_flight(eng), 3);
    worker__engine_stop(eng);
    CHECK_INT(worker__engine_in_flight(eng), 2);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 4)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
    worker__engine_release_all(eng);
    CHECK_INT(worker__engine_in_flight(eng), 0);
    CHECK_INT(worker__engine_sent(eng), 0);
    CHECK(started[2] == NULL && started[3] == NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(find(o, 7)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
    CHECK_INT(find(o, 1)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);

    /* the leases are gone (the broker rejected the worker, or gave it up
     * while it was stopped): the two queued are forgotten without an
     * outcome and never start; the two on the transport go on */
    worker__engine_free(&eng);
    CHECK_INT(worker__engine_new(&eng, &opt, store, &tp, NULL), EMPQ_OK);
    n_started = 0;
    worker__engine_batch(eng, batch("r3", pm, 4, 1, 1));
    CHECK_INT(n_started, 2);
    CHECK_INT(worker__engine_drop_queued(eng), 2);
    CHECK_INT(worker__engine_drop_queued(eng), 0);
    CHECK_INT(worker__engine_in_flight(eng), 2);
    CHECK_INT(worker__engine_sent(eng), 2);
    CHECK_INT(worker__engine_flush(eng, &o), 0);
    reply(eng, started[0], 200, OK_BODY, NULL);
    reply(eng, started[1], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(find(o, 1)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(find(o, 4)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(n_started, 2); /* the dropped never start */
    CHECK_INT(worker__engine_in_flight(eng), 0);
    worker__stats st;
    worker__engine_stats(eng, &st);
    CHECK_INT(st.dropped, 2);

    /* a request on the transport whose body has not wholly left (a frozen
     * worker woke while it was connecting) is withdrawn too, without an
     * outcome; the one the provider has goes on */
    worker__engine_free(&eng);
    worker__transport tpu = {NULL, tp_start, tp_cancel, NULL, tp_unsent};
    CHECK_INT(worker__engine_new(&eng, &opt, store, &tpu, NULL), EMPQ_OK);
    n_started = 0;
    worker__engine_batch(eng, batch("r3", pm, 4, 1, 1));
    CHECK_INT(n_started, 2);
    unsent_prompt = 1;
    CHECK_INT(worker__engine_drop_queued(eng), 3);
    unsent_prompt = -1;
    CHECK(started[1] == NULL); /* cancelled on the transport */
    CHECK_INT(worker__engine_in_flight(eng), 1);
    CHECK_INT(worker__engine_sent(eng), 1);
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 1)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    CHECK_INT(n_started, 2);
    CHECK_INT(worker__engine_in_flight(eng), 0);

    /* Redis gone while two wait: the finished request's result cannot be
     * written (RETRY), nothing more is sent, the queue goes back */
    worker__engine_free(&eng);
    CHECK_INT(worker__engine_new(&eng, &opt, store, &tp, NULL), EMPQ_OK);
    n_started = 0;
    worker__engine_batch(eng, batch("r3", pm, 4, 1, 1));
    CHECK_INT(n_started, 2);
    redis_stop();
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 1)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK_INT(n_started, 2);
    CHECK_INT(worker__engine_flush(eng, &o), 2);
    CHECK_INT(find(o, 7)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
    CHECK_INT(find(o, 10)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED);
    CHECK_INT(n_started, 2);
    CHECK_INT(worker__engine_in_flight(eng), 1);
    worker__engine_release_all(eng);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
}

/* A reply without answer text is never a result nor a cache entry: it dies
 * with its reason (or retries), its usage goes to the broker and the dead
 * letter, and the next batch calls the backend again. Runs first, so
 * nothing is cached for prompt 3 yet. */
static void test_no_answer_never_cached(void)
{
    static const uint32_t pm[][2] = {{3, 1}};
    const Empq__Outcomes *o = NULL;
    make_run(store, "r5"); /* its own run: the other tests count r1's results */
    /* the reasoning used the whole budget: finish_reason length, content "" */
    n_started = 0;
    worker__engine_batch(eng, batch("r5", pm, 1, 1, 0));
    CHECK_INT(n_started, 1);
    snprintf(started[0]->request_id, sizeof started[0]->request_id, "req_abc");
    reply(eng, started[0], 200,
          "{\"model\":\"fake-reason\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
          "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":64,"
          "\"completion_tokens_details\":{\"reasoning_tokens\":64}}}",
          NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    const Empq__Outcome *x = find(o, 10);
    CHECK_INT(x->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD); /* permanent: not retried */
    CHECK_STR(x->reason, "reasoning_exhausted_budget");
    CHECK(x->has_tokens_out && x->tokens_out == 64); /* billed: counted in the cost */
    CHECK(x->has_tokens_in && x->tokens_in == 12);
    CHECK(!x->has_model_fatal);
    Empq__DeadLetter **d = NULL;
    size_t n = 0;
    CHECK_INT(empq_store_dead_all(store, "r5", &d, &n), EMPQ_OK);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (d[i]->job == 10) {
            found = 1;
            CHECK_STR(d[i]->reason, "reasoning_exhausted_budget");
            CHECK_STR(d[i]->request_id, "req_abc");
            CHECK_STR(d[i]->finish_reason, "length");
            CHECK_INT(d[i]->tokens_out, 64);
            CHECK_INT(d[i]->reasoning_tokens, 64);
        }
    CHECK(found);
    empq_store_free_dead(d, n);

    /* the same request again: no cache entry, a new call; content null is empty_reply, retried */
    n_started = 0;
    worker__engine_batch(eng, batch("r5", pm, 1, 1, 0));
    CHECK_INT(n_started, 1);
    reply(eng, started[0], 200,
          "{\"model\":\"fake-warm\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null},"
          "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":0}}",
          NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 10)->kind, EMPQ__OUTCOME_KIND__OUTCOME_RETRY);
    CHECK_STR(find(o, 10)->reason, "empty_reply");

    /* and once more: still a call (no entry); a quota error is fatal for the model */
    n_started = 0;
    worker__engine_batch(eng, batch("r5", pm, 1, 1, 0));
    CHECK_INT(n_started, 1);
    reply(eng, started[0], 429,
          "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
          "\"code\":\"insufficient_quota\"}}",
          NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    x = find(o, 10);
    CHECK_INT(x->kind, EMPQ__OUTCOME_KIND__OUTCOME_DEAD); /* attempt 1 of 2: not retried */
    CHECK(x->has_model_fatal && x->model_fatal);
    CHECK_CONTAINS(x->reason, "insufficient_quota");
    CHECK(!x->has_tokens_out);

    /* an answer at last: cached, and the next batch is a hit */
    n_started = 0;
    worker__engine_batch(eng, batch("r5", pm, 1, 1, 0));
    CHECK_INT(n_started, 1);
    reply(eng, started[0], 200, OK_BODY, NULL);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK_INT(find(o, 10)->kind, EMPQ__OUTCOME_KIND__OUTCOME_DONE);
    n_started = 0;
    worker__engine_batch(eng, batch("r5", pm, 1, 1, 0));
    CHECK_INT(n_started, 0);
    CHECK_INT(worker__engine_flush(eng, &o), 1);
    CHECK(find(o, 10)->cache_hit);
}

int main(void)
{
    setup();
    RUN(test_no_answer_never_cached);
    RUN(test_human_and_backend);
    RUN(test_cache_hits_across_runs);
    RUN(test_retry_then_dead);
    RUN(test_missing_key_and_bad_jobs);
    RUN(test_redis_down_means_retry);
    RUN(test_stop_releases);
    RUN(test_release_in_flight);
    RUN(test_request_limit);
    worker__engine_free(&eng);
    worker__engine_free(&eng); /* NULL is fine */
    empq_store_close(&store);
    redis_stop();
    CHECK_DONE();
}
