/* test_store.c: the Redis store against a real redis-server. */
#include <hiredis/hiredis.h>

#include "check.h"
#include "empq/store.h"
#include "realredis.h"

static realredis redis;

static Empq__Result *make_result(const char *run, uint32_t job, const char *text)
{
    static Empq__Result r;
    static Empq__Generation g;
    empq__result__init(&r);
    empq__generation__init(&g);
    g.text = (char *)text;
    r.run_id = (char *)run;
    r.job = job;
    r.prompt = job / 2;
    r.model = job % 2;
    r.gen = &g;
    return &r;
}

static void test_open_errors(void)
{
    empq_store *s = (empq_store *)1;
    empq_error err = {0};
    CHECK_INT(empq_store_open(&s, "redis://127.0.0.1:1", 500, &err), EMPQ_ESTORE);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "redis://127.0.0.1:1");
    CHECK_INT(empq_store_open(&s, "redis://:notaport", 500, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "redis://:notaport");
    empq_store_close(&s);
    empq_store_close(NULL);
}

static void test_run_roundtrip(void)
{
    empq_store *s;
    empq_error err = {0};
    CHECK_INT(empq_store_open(&s, redis.url, 2000, &err), EMPQ_OK);
    CHECK_INT(empq_store_ping(s), EMPQ_OK);

    Empq__RunSpec spec = EMPQ__RUN_SPEC__INIT;
    spec.name = "t";
    Empq__Run run = EMPQ__RUN__INIT;
    run.id = "r1";
    run.spec = &spec;
    run.n_prompts = 3;
    Empq__Prompt p[3];
    Empq__Prompt *pp[3];
    char ids[3][8];
    for (int i = 0; i < 3; i++) {
        empq__prompt__init(&p[i]);
        p[i].index = (uint32_t)i;
        snprintf(ids[i], sizeof ids[i], "d%d", i);
        p[i].id = ids[i];
        p[i].emotion = "afraid";
        p[i].prompt = " a \"quoted\" prompt";
        pp[i] = &p[i];
    }
    CHECK_INT(empq_store_run_create(s, &run, pp, 3), EMPQ_OK);
    CHECK_INT(empq_store_run_create(s, &run, pp, 3), EMPQ_EEXIST);

    Empq__Run *got;
    CHECK_INT(empq_store_run_get(s, "r1", &got), EMPQ_OK);
    CHECK_STR(got->spec->name, "t");
    CHECK_INT(got->n_prompts, 3);
    empq__run__free_unpacked(got, NULL);
    CHECK_INT(empq_store_run_get(s, "nope", &got), EMPQ_ENOTFOUND);

    CHECK_INT(empq_store_run_set_state(s, "r1", EMPQ__RUN_STATE__RUN_DONE), EMPQ_OK);
    CHECK_INT(empq_store_run_get(s, "r1", &got), EMPQ_OK);
    CHECK_INT(got->state, EMPQ__RUN_STATE__RUN_DONE);
    empq__run__free_unpacked(got, NULL);

    char **ids_out;
    size_t n;
    CHECK_INT(empq_store_run_list(s, &ids_out, &n), EMPQ_OK);
    CHECK_INT(n, 1);
    CHECK_STR(ids_out[0], "r1");
    empq_store_free_strings(ids_out, n);

    uint32_t want[] = {2, 7, 0};
    Empq__Prompt *out[3];
    CHECK_INT(empq_store_prompts_get(s, "r1", want, 3, out), EMPQ_OK);
    CHECK_STR(out[0]->id, "d2");
    CHECK(out[1] == NULL);
    CHECK_STR(out[2]->prompt, " a \"quoted\" prompt");
    empq__prompt__free_unpacked(out[0], NULL);
    empq__prompt__free_unpacked(out[2], NULL);
    empq_store_close(&s);
    CHECK(s == NULL);
}

/* Counts the job; its value must be its own stored Result. */
static void count_job(uint32_t job, const uint8_t *value, size_t len, void *arg)
{
    Empq__Result *r = empq__result__unpack(NULL, len, value);
    CHECK(r != NULL);
    CHECK_INT(r->job, job);
    empq__result__free_unpacked(r, NULL);
    ((int *)arg)[job]++;
}

static void test_results_idempotent(void)
{
    empq_store *s;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    empq_store_put items[1];
    int fresh[1];
    items[0].result = make_result("r1", 4, "hello");
    items[0].cache_key = "abc";
    CHECK_INT(empq_store_results_put(s, items, 1, fresh), EMPQ_OK);
    CHECK_INT(fresh[0], 1);
    items[0].result = make_result("r1", 4, "again");
    CHECK_INT(empq_store_results_put(s, items, 1, fresh), EMPQ_OK);
    CHECK_INT(fresh[0], 0);

    /* the first write wins; the stream holds the job once */
    Empq__Result **all;
    size_t n;
    CHECK_INT(empq_store_results_all(s, "r1", &all, &n), EMPQ_OK);
    CHECK_INT(n, 1);
    CHECK_STR(all[0]->gen->text, "hello");
    empq_store_free_results(all, n);

    /* the cache entry was written */
    const char *keys[] = {"abc", "missing"};
    Empq__Generation *g[2];
    CHECK_INT(empq_store_cache_get(s, keys, 2, g), EMPQ_OK);
    CHECK(g[0] != NULL && g[1] == NULL);
    empq__generation__free_unpacked(g[0], NULL);

    /* many at once: one pipeline */
    enum { N = 2500 };
    static empq_store_put many[N];
    static Empq__Result rs[N];
    static Empq__Generation gs[N];
    static int fr[N];
    for (uint32_t i = 0; i < N; i++) {
        empq__result__init(&rs[i]);
        empq__generation__init(&gs[i]);
        gs[i].text = "x";
        rs[i].run_id = "r2";
        rs[i].job = i;
        rs[i].gen = &gs[i];
        many[i].result = &rs[i];
        many[i].cache_key = NULL;
    }
    CHECK_INT(empq_store_results_put(s, many, N, fr), EMPQ_OK);
    for (int i = 0; i < N; i++)
        CHECK_INT(fr[i], 1);
    uint64_t res, dead;
    CHECK_INT(empq_store_counts(s, "r2", &res, &dead), EMPQ_OK);
    CHECK_INT(res, N);
    CHECK_INT(dead, 0);
    static int seen[N];
    CHECK_INT(empq_store_scan_finished(s, "r2", 1, count_job, seen), EMPQ_OK);
    for (int i = 0; i < N; i++)
        CHECK_INT(seen[i], 1);

    Empq__DeadLetter d = EMPQ__DEAD_LETTER__INIT;
    d.run_id = "r2";
    d.job = 9999;
    d.reason = "first";
    CHECK_INT(empq_store_dead_put(s, &d), EMPQ_OK);
    d.reason = "second";
    CHECK_INT(empq_store_dead_put(s, &d), EMPQ_OK);
    Empq__DeadLetter **dl;
    CHECK_INT(empq_store_dead_all(s, "r2", &dl, &n), EMPQ_OK);
    CHECK_INT(n, 1);
    CHECK_STR(dl[0]->reason, "first");
    empq_store_free_dead(dl, n);
    empq_store_close(&s);
}

/* The console's bulk reads, over what the tests above stored: run r1 (3
 * prompts, a result for job 4), r2 (results 0..2499, a dead letter for job
 * 9999, no Run value). */
static void test_bulk_reads(void)
{
    empq_store *s;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    uint32_t jobs[] = {0, 2499, 9999, 5000};
    Empq__Result *res[4];
    Empq__DeadLetter *dead[4];
    CHECK_INT(empq_store_jobs_get(s, "r2", jobs, 4, res, dead), EMPQ_OK);
    CHECK(res[0] != NULL && res[1] != NULL && res[2] == NULL && res[3] == NULL);
    CHECK_INT(res[1]->job, 2499);
    CHECK(dead[0] == NULL && dead[1] == NULL && dead[2] != NULL && dead[3] == NULL);
    CHECK_STR(dead[2]->reason, "first");
    empq__result__free_unpacked(res[0], NULL);
    empq__result__free_unpacked(res[1], NULL);
    empq__dead_letter__free_unpacked(dead[2], NULL);
    CHECK_INT(empq_store_jobs_get(s, "r2", jobs, 0, res, dead), EMPQ_OK);

    Empq__Prompt **pr;
    size_t np;
    CHECK_INT(empq_store_prompts_all(s, "r1", &pr, &np), EMPQ_OK);
    CHECK_INT(np, 3);
    CHECK_STR(pr[0]->id, "d0");
    CHECK_STR(pr[2]->id, "d2");
    empq_store_free_prompts(pr, np);
    CHECK_INT(empq_store_prompts_all(s, "nope", &pr, &np), EMPQ_OK);
    CHECK_INT(np, 0);
    empq_store_free_prompts(pr, np);
    empq_store_free_prompts(NULL, 0);

    static uint8_t state[10000];
    CHECK_INT(empq_store_job_states(s, "r2", state, 10000), EMPQ_OK);
    CHECK_INT(state[0], EMPQ_STORE_JOB_DONE);
    CHECK_INT(state[2499], EMPQ_STORE_JOB_DONE);
    CHECK_INT(state[2500], 0);
    CHECK_INT(state[9999], EMPQ_STORE_JOB_DEAD);
    CHECK_INT(empq_store_job_states(s, "r2", state, 100), EMPQ_OK); /* beyond total: ignored */
    CHECK_INT(state[99], EMPQ_STORE_JOB_DONE);

    Empq__Result **all;
    Empq__DeadLetter **dl;
    size_t nr, nd;
    CHECK_INT(empq_store_finished_all(s, "r2", &all, &nr, &dl, &nd), EMPQ_OK);
    CHECK_INT(nr, 2500);
    CHECK_INT(nd, 1);
    CHECK_INT(dl[0]->job, 9999);
    empq_store_free_results(all, nr);
    empq_store_free_dead(dl, nd);
    CHECK_INT(empq_store_finished_all(s, "r2", NULL, NULL, &dl, &nd), EMPQ_OK);
    CHECK_INT(nd, 1);
    empq_store_free_dead(dl, nd);

    empq_store_run_info *runs;
    size_t n;
    CHECK_INT(empq_store_runs_overview(s, &runs, &n), EMPQ_OK);
    CHECK_INT(n, 1); /* r2 has no Run value: left out */
    CHECK_STR(runs[0].run->id, "r1");
    CHECK_INT(runs[0].results, 1);
    CHECK_INT(runs[0].dead, 0);
    empq_store_free_runs_overview(runs, n);
    empq_store_free_runs_overview(NULL, 0);
    empq_store_close(&s);
}

static void test_stream(void)
{
    empq_store *s;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    CHECK_INT(empq_store_stream_group(s, "g"), EMPQ_OK);
    CHECK_INT(empq_store_stream_group(s, "g"), EMPQ_OK); /* exists: fine */
    empq_stream_entry e[4000];
    size_t n, total = 0;
    /* 1 (r1) + 2500 (r2) entries; read some without acking, "restart", read again */
    CHECK_INT(empq_store_stream_read(s, "g", "c1", e, 100, 0, &n), EMPQ_OK);
    CHECK_INT(n, 100);
    CHECK_STR(e[0].run_id, "r1");
    CHECK_INT(e[0].job, 4);
    CHECK_INT(empq_store_stream_read(s, "g", "c1", e, 100, 0, &n), EMPQ_OK);
    CHECK_INT(n, 100); /* the same unacked 100 come back first */
    CHECK_STR(e[0].run_id, "r1");
    CHECK_INT(empq_store_stream_ack(s, "g", e, n), EMPQ_OK);
    total += n;
    for (;;) {
        CHECK_INT(empq_store_stream_read(s, "g", "c1", e, 4000, 50, &n), EMPQ_OK);
        if (n == 0)
            break;
        CHECK_INT(empq_store_stream_ack(s, "g", e, n), EMPQ_OK);
        total += n;
    }
    CHECK_INT(total, 2501);
    empq_store_close(&s);
}

static long long xlen(empq_store *s)
{
    redisReply *r = redisCommand(empq_store_redis(s), "XLEN empq:results");
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

static void put_results(empq_store *s, const char *run, uint32_t from, uint32_t n)
{
    for (uint32_t i = from; i < from + n; i++) {
        empq_store_put it = {make_result(run, i, "t"), NULL};
        CHECK_INT(empq_store_results_put(s, &it, 1, NULL), EMPQ_OK);
    }
}

/* Trimming deletes only what every group read and acked. */
static void test_stream_trim(void)
{
    empq_store *s;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    redisReply *r = redisCommand(empq_store_redis(s), "DEL empq:results");
    freeReplyObject(r);
    uint64_t removed = 99;
    /* no stream, then a stream with no group: nothing to do */
    CHECK_INT(empq_store_stream_trim(s, &removed), EMPQ_OK);
    CHECK_INT(removed, 0);
    put_results(s, "tr", 0, 10);
    CHECK_INT(empq_store_stream_trim(s, &removed), EMPQ_OK);
    CHECK_INT(removed, 0);
    CHECK_INT(xlen(s), 10);
    CHECK_INT(empq_store_stream_group(s, "a"), EMPQ_OK);
    CHECK_INT(empq_store_stream_group(s, "b"), EMPQ_OK);
    /* groups that read nothing yet: nothing goes */
    CHECK_INT(empq_store_stream_trim(s, &removed), EMPQ_OK);
    CHECK_INT(xlen(s), 10);
    empq_stream_entry e[16];
    size_t n;
    /* a reads and acks 6; b reads 4 and acks none (a collector killed) */
    CHECK_INT(empq_store_stream_read(s, "a", "c", e, 6, 0, &n), EMPQ_OK);
    CHECK_INT(n, 6);
    CHECK_INT(empq_store_stream_ack(s, "a", e, n), EMPQ_OK);
    CHECK_INT(empq_store_stream_read(s, "b", "c", e, 4, 0, &n), EMPQ_OK);
    CHECK_INT(n, 4);
    CHECK_INT(empq_store_stream_trim(s, &removed), EMPQ_OK);
    CHECK_INT(removed, 0); /* b still holds the first entry */
    CHECK_INT(xlen(s), 10);
    /* b acks 2 of its 4: its oldest pending is the third entry */
    CHECK_INT(empq_store_stream_ack(s, "b", e, 2), EMPQ_OK);
    CHECK_INT(empq_store_stream_trim(s, &removed), EMPQ_OK);
    CHECK_INT(removed, 2);
    CHECK_INT(xlen(s), 8);
    /* b restarts: its unacked two come back, nothing it needs is gone */
    CHECK_INT(empq_store_stream_read(s, "b", "c", e, 16, 0, &n), EMPQ_OK);
    CHECK_INT(n, 2);
    CHECK_INT(e[0].job, 2);
    CHECK_INT(empq_store_stream_ack(s, "b", e, n), EMPQ_OK);
    /* both read and ack everything: all but the last delivered entry go */
    for (const char *g = "a"; g != NULL; g = g[0] == 'a' ? "b" : NULL) {
        CHECK_INT(empq_store_stream_read(s, g, "c", e, 16, 0, &n), EMPQ_OK);
        CHECK_INT(empq_store_stream_ack(s, g, e, n), EMPQ_OK);
    }
    CHECK_INT(empq_store_stream_trim(s, &removed), EMPQ_OK);
    CHECK_INT(removed, 7);
    CHECK_INT(xlen(s), 1);
    /* new entries after a trim are read as usual */
    put_results(s, "tr", 10, 3);
    CHECK_INT(empq_store_stream_read(s, "a", "c", e, 16, 0, &n), EMPQ_OK);
    CHECK_INT(n, 3);
    CHECK_INT(e[0].job, 10);
    empq_store_close(&s);
}

/* A Redis that restarted has no scripts: the result write loads it again. */
static void test_script_flushed(void)
{
    empq_store *s;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    redisReply *r = redisCommand(empq_store_redis(s), "SCRIPT FLUSH");
    freeReplyObject(r);
    empq_store_put it = {make_result("sf", 1, "t"), NULL};
    int fresh = 0;
    CHECK_INT(empq_store_results_put(s, &it, 1, &fresh), EMPQ_OK);
    CHECK_INT(fresh, 1);
    empq_store_close(&s);
}

static void test_reconnect(void)
{
    empq_store *s;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    redisContext *c = empq_store_redis(s);
    redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal SKIPME no");
    if (r != NULL)
        freeReplyObject(r);
    /* the connection is gone; the next call reconnects once */
    CHECK_INT(empq_store_ping(s), EMPQ_OK);
    empq_store_close(&s);
}

int main(void)
{
    realredis_start(&redis);
    RUN(test_open_errors);
    RUN(test_run_roundtrip);
    RUN(test_results_idempotent);
    RUN(test_bulk_reads);
    RUN(test_stream);
    RUN(test_reconnect);
    RUN(test_stream_trim);
    RUN(test_script_flushed);
    realredis_stop(&redis);
    CHECK_DONE();
}
