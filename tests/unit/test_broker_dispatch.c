/* test_broker_dispatch.c: the broker's dispatch logic (bk__sched) over real
 * job tables with worker records made from Hello messages: credit, model
 * filters, round robin over runs and models, outcomes of every kind, retry
 * backoff, lease expiry, worker loss, run completion. No sockets, no Redis:
 * time is an argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "check.h"
#include "sched.h"

/* A run spec held in static storage for the tests. */
typedef struct fake_run {
    Empq__Run run;
    Empq__RunSpec spec;
    Empq__ModelSpec models[4];
    Empq__ModelSpec *pmodels[4];
    Empq__ModelLimits limits[4];
} fake_run;

static void fake_run_init(fake_run *f, const char *id, uint32_t n_prompts, size_t n_models, uint32_t samples)
{
    static const char *aliases[] = {"human", "gpt", "gemini", "claude"};
    memset(f, 0, sizeof *f);
    empq__run__init(&f->run);
    empq__run_spec__init(&f->spec);
    f->run.id = (char *)id;
    f->run.spec = &f->spec;
    f->run.n_prompts = n_prompts;
    f->spec.name = (char *)id;
    f->spec.n_models = n_models;
    f->spec.models = f->pmodels;
    for (size_t m = 0; m < n_models; m++) {
        empq__model_spec__init(&f->models[m]);
        f->models[m].alias = (char *)aliases[m];
        f->models[m].provider = (char *)(m == 0 ? "human" : "openai");
        f->models[m].has_samples = 1;
        f->models[m].samples = m == 1 ? samples : 1;
        f->pmodels[m] = &f->models[m];
    }
}

static bk__sched *sched(void)
{
    bk__sched_opts o;
    bk__sched_opts_default(&o);
    o.heartbeat_ms = 100;
    o.lease_ms = 10000;
    o.seed = 42;
    bk__sched *s = NULL;
    CHECK_INT(bk__sched_new(&s, &o), EMPQ_OK);
    return s;
}

static bk__run *add_run(bk__sched *s, fake_run *f)
{
    bk__run *r = NULL;
    empq_error err = {0};
    CHECK_INT(bk__sched_run_add(s, &f->run, &r, &err), EMPQ_OK);
    CHECK(r != NULL);
    return r;
}

static unsigned hello(bk__sched *s, const char *id, uint32_t credit, const char *model, uint64_t now)
{
    Empq__Hello h = EMPQ__HELLO__INIT;
    h.worker_id = (char *)id;
    h.credit = credit;
    h.host = (char *)"testhost";
    h.has_pid = 1;
    h.pid = 1234;
    char *models[1] = {(char *)model};
    if (model != NULL) {
        h.n_models = 1;
        h.models = models;
    }
    unsigned slot = 999;
    size_t requeued = 99;
    CHECK_INT(bk__sched_worker_hello(s, (const unsigned char *)id, strlen(id), &h, now, &slot, &requeued), EMPQ_OK);
    CHECK(slot < BK_WORKER_MAX);
    return slot;
}

static bk__applied outcome(bk__sched *s, unsigned w, const char *run, uint32_t job, Empq__OutcomeKind kind,
                           uint32_t retry_after, uint64_t now)
{
    Empq__Outcome o = EMPQ__OUTCOME__INIT;
    o.run_id = (char *)run;
    o.job = job;
    o.kind = kind;
    if (retry_after) {
        o.has_retry_after_ms = 1;
        o.retry_after_ms = retry_after;
    }
    return bk__sched_outcome(s, w, &o, now);
}

static void test_run_add(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "r1", 10, 3, 2); /* samples: max over models = 2 */
    bk__run *r = add_run(s, &f);
    CHECK_STR(r->id, "r1");
    CHECK_INT(r->samples, 2);
    CHECK_INT(bk__jobtable_total(r->table), 10 * 3 * 2);
    CHECK_STR(r->aliases[2], "gemini");
    CHECK(bk__sched_run_find(s, "r1") == r);
    CHECK(bk__sched_run_find(s, "r2") == NULL);
    /* idempotent: the same id again is EEXIST and gives the loaded run */
    bk__run *again = NULL;
    CHECK_INT(bk__sched_run_add(s, &f.run, &again, NULL), EMPQ_EEXIST);
    CHECK(again == r);
    CHECK_INT(bk__sched_run_count(s), 1);
    CHECK_INT(bk__sched_run_remove(s, "nope"), EMPQ_ENOTFOUND);
    fake_run h;
    fake_run_init(&h, "r2", 3, 1, 1);
    add_run(s, &h);
    CHECK_INT(bk__sched_run_count(s), 2);
    CHECK_INT(bk__sched_run_remove(s, "r1"), EMPQ_OK);
    CHECK_INT(bk__sched_run_count(s), 1);
    CHECK(bk__sched_run_find(s, "r1") == NULL);
    CHECK_STR(bk__sched_run_at(s, 0)->id, "r2");
    fake_run g;
    fake_run_init(&g, "empty", 0, 2, 1);
    empq_error err = {0};
    CHECK_INT(bk__sched_run_add(s, &g.run, NULL, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "empty");
    bk__sched_free(&s);
    CHECK(s == NULL);
    bk__sched_free(&s);
}

/* Never more than credit; each outcome frees one. */
static void test_credit(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "r1", 10, 2, 1);
    add_run(s, &f);
    unsigned w = hello(s, "w1", 5, NULL, 0);
    uint32_t jobs[64];
    bk__run *r;
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 64, &r), 5);
    CHECK_STR(r->id, "r1");
    CHECK(r->started_ms > 0);
    CHECK_INT(bk__sched_in_flight(s, w), 5);
    CHECK_INT(bk__jobtable_attempts(r->table, jobs[0]), 1);
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 64, &r), 0);
    CHECK(r == NULL);
    CHECK_INT(outcome(s, w, "r1", 0, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, 1), BK_APPLIED);
    CHECK_INT(outcome(s, w, "r1", 1, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, 1), BK_APPLIED);
    CHECK_INT(bk__sched_in_flight(s, w), 3);
    /* max caps a batch below the free credit */
    CHECK_INT(bk__sched_dispatch(s, w, 1, jobs, 1, &r), 1);
    CHECK_INT(bk__sched_dispatch(s, w, 1, jobs, 64, &r), 1);
    CHECK_INT(bk__sched_dispatch(s, w, 1, jobs, 64, &r), 0);
    bk__worker *x = bk__sched_worker(s, w);
    CHECK_INT(x->done, 2);
    CHECK_STR(x->host, "testhost");
    bk__sched_free(&s);
}

/* A worker serving one model gets only its jobs; models take turns. */
static void test_models(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "r1", 6, 3, 1); /* job = p*3 + m */
    bk__run *r = add_run(s, &f);
    unsigned wg = hello(s, "wg", 100, "gemini", 0);
    unsigned wa = hello(s, "wa", 6, NULL, 0);
    unsigned wx = hello(s, "wx", 100, "nosuchmodel", 0);
    uint32_t jobs[100];
    bk__run *got;
    CHECK_INT(bk__sched_dispatch(s, wx, 0, jobs, 100, &got), 0);
    CHECK_INT(bk__sched_dispatch(s, wg, 0, jobs, 100, &got), 6);
    for (int i = 0; i < 6; i++) {
        uint32_t p, m, smp;
        bk__jobtable_split(r->table, jobs[i], &p, &m, &smp);
        CHECK_INT(m, 2);
        CHECK_INT(p, i);
    }
    CHECK_INT(bk__sched_dispatch(s, wa, 0, jobs, 100, &got), 6);
    int per_model[3] = {0};
    for (int i = 0; i < 6; i++) {
        uint32_t p, m, smp;
        bk__jobtable_split(r->table, jobs[i], &p, &m, &smp);
        per_model[m]++;
    }
    CHECK_INT(per_model[0], 3);
    CHECK_INT(per_model[1], 3);
    bk__sched_free(&s);
}

/* Runs take turns; paused and cancelled runs are not dispatched. */
static void test_runs_round_robin(void)
{
    bk__sched *s = sched();
    fake_run f1, f2;
    fake_run_init(&f1, "a", 100, 1, 1);
    fake_run_init(&f2, "b", 100, 1, 1);
    bk__run *ra = add_run(s, &f1);
    bk__run *rb = add_run(s, &f2);
    unsigned w = hello(s, "w", 1000, NULL, 0);
    uint32_t jobs[10];
    bk__run *got;
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 10, &got), 10);
    bk__run *first = got;
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 10, &got), 10);
    CHECK(got != first);
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 10, &got), 10);
    CHECK(got == first);
    ra->state = EMPQ__RUN_STATE__RUN_PAUSED;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 10, &got), 10);
        CHECK(got == rb);
    }
    rb->state = EMPQ__RUN_STATE__RUN_CANCELLED;
    CHECK(!bk__sched_has_ready(s));
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 10, &got), 0);
    ra->state = EMPQ__RUN_STATE__RUN_ACTIVE;
    CHECK(bk__sched_has_ready(s));
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 10, &got), 10);
    CHECK(got == ra);
    bk__sched_free(&s);
}

/* RETRY: back after the backoff (at least retry_after), attempt 2 next;
 * RELEASED: back at once; stale RETRY/RELEASED from another worker ignored;
 * outcomes for final jobs ignored; unknown run and bad job ignored. */
static void test_outcomes(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "r", 4, 1, 1);
    bk__run *r = add_run(s, &f);
    unsigned w1 = hello(s, "w1", 4, NULL, 0);
    unsigned w2 = hello(s, "w2", 4, NULL, 0);
    uint32_t jobs[4];
    bk__run *got;
    CHECK_INT(bk__sched_dispatch(s, w1, 0, jobs, 4, &got), 4);
    /* stale: w2 does not hold job 0 */
    CHECK_INT(outcome(s, w2, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 0, 10), BK_IGNORED_STALE);
    CHECK_INT(outcome(s, w2, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED, 0, 10), BK_IGNORED_STALE);
    CHECK_INT(outcome(s, BK_WORKER_NONE, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 0, 10), BK_IGNORED_STALE);
    CHECK_INT(bk__jobtable_state(r->table, 0), BK_JOB_LEASED);
    /* retry with Retry-After 5 s: not ready before then */
    CHECK_INT(outcome(s, w1, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 5000, 10), BK_APPLIED);
    CHECK_INT(bk__jobtable_state(r->table, 0), BK_JOB_PENDING);
    uint64_t nb = bk__jobtable_time(r->table, 0);
    CHECK(nb >= 10 + 5000);
    CHECK(nb <= 10 + 5000 + 1000);
    CHECK_INT(bk__sched_worker(s, w1)->errors, 1);
    /* released: ready at once, taken by w2 */
    CHECK_INT(outcome(s, w1, "r", 1, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED, 0, 10), BK_APPLIED);
    CHECK_INT(bk__sched_dispatch(s, w2, 10, jobs, 4, &got), 1);
    CHECK_INT(jobs[0], 1);
    CHECK_INT(bk__jobtable_attempts(r->table, 1), 1); /* the lease handed back was not an attempt */
    bk__tick t;
    bk__sched_tick(s, 20, &t);
    CHECK_INT(t.promoted, 0);
    CHECK_INT(bk__sched_dispatch(s, w2, 20, jobs, 4, &got), 0);
    /* keep the workers alive and let the backoff pass */
    bk__sched_worker(s, w1)->last_seen = nb;
    bk__sched_worker(s, w2)->last_seen = nb;
    bk__sched_tick(s, nb, &t);
    CHECK_INT(t.promoted, 1);
    CHECK_INT(bk__sched_dispatch(s, w2, nb, jobs, 4, &got), 1);
    CHECK_INT(jobs[0], 0);
    CHECK_INT(bk__jobtable_attempts(r->table, 0), 2);
    /* DEAD from the holder; then everything for it is ignored */
    CHECK_INT(outcome(s, w2, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_DEAD, 0, nb), BK_APPLIED);
    CHECK_INT(outcome(s, w2, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, nb), BK_IGNORED_FINAL);
    CHECK_INT(outcome(s, w2, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 0, nb), BK_IGNORED_FINAL);
    CHECK_INT(bk__jobtable_state(r->table, 0), BK_JOB_DEAD);
    /* DONE from an unknown worker still counts (the result is in Redis) */
    CHECK_INT(outcome(s, BK_WORKER_NONE, "r", 2, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, nb), BK_APPLIED);
    /* DONE for a job leased to another worker: done; that worker's credit back */
    CHECK_INT(bk__sched_in_flight(s, w1), 1);
    CHECK_INT(outcome(s, w2, "r", 3, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, nb), BK_APPLIED);
    CHECK_INT(bk__sched_in_flight(s, w1), 0);
    CHECK_INT(outcome(s, w1, "nope", 3, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, nb), BK_IGNORED_UNKNOWN_RUN);
    CHECK_INT(outcome(s, w1, "r", 4, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, nb), BK_IGNORED_BAD_JOB);
    CHECK_INT(outcome(s, w1, "r", 1, (Empq__OutcomeKind)9, 0, nb), BK_IGNORED_BAD_JOB);
    CHECK(bk__sched_pop_finished(s) == NULL);
    CHECK_INT(outcome(s, w2, "r", 1, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, nb), BK_APPLIED);
    bk__run *fin = bk__sched_pop_finished(s);
    CHECK(fin == r);
    CHECK(r->finished_ms > 0);
    CHECK(bk__sched_pop_finished(s) == NULL);
    bk__counts c = bk__jobtable_counts(r->table, UINT32_MAX);
    CHECK_INT(c.done, 3);
    CHECK_INT(c.dead, 1);
    CHECK_STR(bk__applied_str(BK_IGNORED_STALE), "ignored_stale");
    bk__sched_free(&s);
}

/* A silent worker is given up after miss_beats x heartbeat; its jobs go back;
 * a lease past its deadline goes back; a worker's second hello requeues. */
static void test_time(void)
{
    bk__sched *s = sched(); /* heartbeat 100 ms, 5 beats, lease 10 s */
    fake_run f;
    fake_run_init(&f, "r", 100, 2, 1);
    bk__run *r = add_run(s, &f);
    CHECK_INT(bk__sched_next_deadline(s), UINT64_MAX);
    unsigned w1 = hello(s, "w1", 10, NULL, 1000);
    unsigned w2 = hello(s, "w2", 20, NULL, 1000);
    CHECK_INT(bk__sched_next_deadline(s), 1100); /* heartbeat due */
    uint32_t jobs[32];
    bk__run *got;
    CHECK_INT(bk__sched_dispatch(s, w1, 1000, jobs, 32, &got), 10);
    CHECK_INT(bk__sched_dispatch(s, w2, 1000, jobs, 32, &got), 20);
    bk__sched_worker(s, w1)->last_sent = 5000;
    bk__sched_worker(s, w2)->last_sent = 5000;
    bk__sched_worker(s, w2)->last_seen = 1400;
    CHECK_INT(bk__sched_next_deadline(s), 1500); /* w1 silent since 1000 */
    bk__tick t;
    bk__sched_tick(s, 1499, &t);
    CHECK_INT(t.lost_workers, 0);
    bk__sched_tick(s, 1500, &t);
    CHECK_INT(t.lost_workers, 1);
    CHECK_INT(t.lost_jobs, 10);
    CHECK(bk__sched_worker(s, w1) == NULL);
    CHECK(bk__sched_worker_find(s, (const unsigned char *)"w1", 2) == EMPQ_ENOTFOUND);
    CHECK_INT(bk__jobtable_counts(r->table, UINT32_MAX).leased, 20);
    CHECK_INT(bk__jobtable_counts(r->table, UINT32_MAX).ready, 200 - 20);
    /* a worker that says hello again has restarted: its jobs go back */
    Empq__Hello h = EMPQ__HELLO__INIT;
    h.worker_id = (char *)"w2";
    h.credit = 3;
    unsigned slot;
    size_t requeued;
    CHECK_INT(bk__sched_worker_hello(s, (const unsigned char *)"w2", 2, &h, 1600, &slot, &requeued), EMPQ_OK);
    CHECK_INT(slot, w2);
    CHECK_INT(requeued, 20);
    CHECK_INT(bk__sched_worker(s, slot)->credit, 3);
    CHECK_INT(bk__jobtable_counts(r->table, UINT32_MAX).ready, 200);
    /* lease expiry: lease_ms after dispatch */
    CHECK_INT(bk__sched_dispatch(s, slot, 2000, jobs, 32, &got), 3);
    bk__sched_worker(s, slot)->last_seen = 20000;
    bk__sched_worker(s, slot)->last_sent = 20000;
    CHECK_INT(bk__sched_next_deadline(s), 12000);
    bk__sched_tick(s, 12000, &t);
    CHECK_INT(t.expired, 3);
    CHECK_INT(bk__jobtable_counts(r->table, UINT32_MAX).ready, 200);
    /* an outcome from the expired holder: DONE still lands */
    CHECK_INT(outcome(s, slot, "r", jobs[0], EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, 12001), BK_APPLIED);
    CHECK_INT(outcome(s, slot, "r", jobs[1], EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 0, 12001), BK_IGNORED_STALE);
    /* removing a worker frees its slot for reuse */
    CHECK_INT(bk__sched_worker_remove(s, slot), 0);
    CHECK_INT(bk__sched_worker_span(s), 0);
    unsigned again = hello(s, "w9", 1, NULL, 13000);
    CHECK_INT(again, 0);
    bk__sched_free(&s);
}

/* Full jitter: within [0, min(cap, base * 2^(attempt-1))], at least
 * retry_after, and spread out. */
/* A RETRY for the worker's own trouble (Redis down): not an attempt, and
 * back after its retry_after however often it happens, no growing backoff. */
static void test_local_failure(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "r", 1, 1, 1);
    bk__run *r = add_run(s, &f);
    unsigned w = hello(s, "w", 4, NULL, 0);
    uint32_t jobs[4];
    bk__run *got;
    uint64_t now = 0;
    for (int i = 0; i < 6; i++) {
        CHECK_INT(bk__sched_dispatch(s, w, now, jobs, 4, &got), 1);
        CHECK_INT(bk__jobtable_attempts(r->table, 0), 1);
        Empq__Outcome o = EMPQ__OUTCOME__INIT;
        o.run_id = (char *)"r";
        o.job = 0;
        o.kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
        o.has_retry_after_ms = 1;
        o.retry_after_ms = 1000;
        o.has_local_failure = o.local_failure = 1;
        CHECK_INT(bk__sched_outcome(s, w, &o, now), BK_APPLIED);
        CHECK_INT(bk__jobtable_attempts(r->table, 0), 0);
        CHECK_INT(bk__jobtable_time(r->table, 0), now + 1000); /* no jitter, no growth */
        now += 1000;
        bk__sched_worker(s, w)->last_seen = now;
        bk__tick t;
        bk__sched_tick(s, now, &t);
        CHECK_INT(t.promoted, 1);
    }
    /* a real failure after them is attempt 1: backoff at most the base */
    CHECK_INT(bk__sched_dispatch(s, w, now, jobs, 4, &got), 1);
    CHECK_INT(outcome(s, w, "r", 0, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 0, now), BK_APPLIED);
    CHECK_INT(bk__jobtable_attempts(r->table, 0), 1);
    CHECK(bk__jobtable_time(r->table, 0) <= now + 1000);
    CHECK_INT(bk__jobtable_uncount(r->table, 0), EMPQ_OK);
    CHECK_INT(bk__jobtable_uncount(r->table, 0), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_uncount(r->table, 5), EMPQ_EINVAL);
    bk__sched_free(&s);
}

/* Batch mode: a batch-mode model's jobs go to a worker up to the model's
 * window whatever its credit (they fill a provider batch, not the wire);
 * BATCHED takes them out of the lease; a batched job's RETRY or RELEASED
 * counts only from a batch's end (from_batch), from any worker; DONE from
 * any worker. */
static void test_batch_mode(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "b", 10, 2, 1); /* human + gpt: jobs 2p (human), 2p+1 (gpt) */
    Empq__BatchSpec bs = EMPQ__BATCH_SPEC__INIT;
    bs.has_max_requests = 1;
    bs.max_requests = 6;
    f.models[1].mode = (char *)"batch";
    f.models[1].batch = &bs;
    bk__run *r = add_run(s, &f);
    CHECK_INT(r->window[0], 0);
    CHECK_INT(r->window[1], 6);
    CHECK_INT(r->batch_models, 1);
    unsigned w = hello(s, "w", 2, NULL, 0), v = hello(s, "v", 2, NULL, 0);
    uint32_t jobs[32];
    bk__run *got;
    /* credit 2 for the human source, and the gpt window of 6 besides */
    size_t n = bk__sched_dispatch(s, w, 0, jobs, 32, &got);
    CHECK_INT(n, 8);
    size_t gpt = 0;
    for (size_t i = 0; i < n; i++)
        gpt += jobs[i] % 2 == 1;
    CHECK_INT(gpt, 6);
    CHECK_INT(bk__sched_in_flight(s, w), 2); /* what the credit counts: the interactive ones */
    CHECK_INT(bk__sched_dispatch(s, w, 0, jobs, 32, &got), 0); /* credit and window full */
    /* the batch is durable: BATCHED frees the window */
    for (uint32_t j = 1; j < 12; j += 2)
        CHECK_INT(outcome(s, w, "b", j, EMPQ__OUTCOME_KIND__OUTCOME_BATCHED, 0, 1), BK_APPLIED);
    CHECK_INT(bk__jobtable_counts(r->table, 1).batched, 6);
    CHECK_INT(bk__jobtable_counts(r->table, 1).leased, 0);
    CHECK_INT(outcome(s, w, "b", 1, EMPQ__OUTCOME_KIND__OUTCOME_BATCHED, 0, 1), BK_IGNORED_STALE);
    n = bk__sched_dispatch(s, w, 2, jobs, 32, &got);
    CHECK_INT(n, 4); /* the 4 gpt jobs left; the human ones wait for credit */
    /* a batched job: a plain RETRY (a worker that found it in another open
     * batch) changes nothing; from_batch requeues it, whoever sends it */
    CHECK_INT(outcome(s, v, "b", 1, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, 0, 3), BK_IGNORED_STALE);
    CHECK_INT(outcome(s, w, "b", 1, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED, 0, 3), BK_IGNORED_STALE);
    Empq__Outcome o = EMPQ__OUTCOME__INIT;
    o.run_id = (char *)"b";
    o.job = 1;
    o.kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
    o.has_from_batch = o.from_batch = 1;
    CHECK_INT(bk__sched_outcome(s, v, &o, 3), BK_APPLIED);
    CHECK_INT(bk__jobtable_state(r->table, 1), BK_JOB_PENDING);
    /* a DONE for a batched job from any worker (the one that read the batch) */
    CHECK_INT(outcome(s, v, "b", 3, EMPQ__OUTCOME_KIND__OUTCOME_DONE, 0, 3), BK_APPLIED);
    CHECK_INT(bk__jobtable_state(r->table, 3), BK_JOB_DONE);
    /* a worker lost: its batched jobs stay batched, its leases come back */
    size_t back = bk__sched_worker_remove(s, w);
    CHECK_INT(back, 2 + 4);
    CHECK_INT(bk__jobtable_counts(r->table, 1).batched, 4);
    bk__sched_free(&s);
}

static void test_backoff(void)
{
    bk__sched *s = sched();
    for (unsigned a = 1; a <= 12; a++) {
        uint64_t ceil = 1000;
        for (unsigned i = 1; i < a; i++)
            ceil = ceil * 2 > 60000 ? 60000 : ceil * 2;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint64_t d = bk__sched_backoff_ms(s, a, 0);
            CHECK(d <= ceil);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        CHECK(lo < ceil / 10);
        CHECK(hi > ceil - ceil / 10);
        CHECK(bk__sched_backoff_ms(s, a, 70000) == 70000);
    }
    CHECK(bk__sched_backoff_ms(s, 200, 0) <= 60000);
    bk__sched_free(&s);
}

/* max_concurrency from the spec caps leased jobs per model across workers. */
static void test_model_limit(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "r", 50, 2, 1);
    empq__model_limits__init(&f.limits[1]);
    f.limits[1].has_max_concurrency = 1;
    f.limits[1].max_concurrency = 3;
    f.models[1].limits = &f.limits[1];
    bk__run *r = add_run(s, &f);
    unsigned w1 = hello(s, "w1", 100, NULL, 0);
    unsigned w2 = hello(s, "w2", 100, NULL, 0);
    uint32_t jobs[100];
    bk__run *got;
    bk__sched_dispatch(s, w1, 0, jobs, 100, &got);
    bk__sched_dispatch(s, w2, 0, jobs, 100, &got);
    CHECK_INT(bk__jobtable_counts(r->table, 1).leased, 3);
    CHECK_INT(bk__jobtable_counts(r->table, 0).leased, 50);
    bk__sched_free(&s);
}

/* How fast the dispatch logic itself is: 1,000,000 jobs through two
 * workers with credit 512, outcomes applied in batches. */
static void test_throughput(void)
{
    bk__sched *s = sched();
    fake_run f;
    fake_run_init(&f, "big", 200000, 4, 1); /* 800,000 jobs */
    fake_run g;
    fake_run_init(&g, "big2", 100000, 2, 1); /* 200,000 jobs */
    bk__run *r1 = add_run(s, &f);
    bk__run *r2 = add_run(s, &g);
    unsigned w[2] = {hello(s, "w1", 512, NULL, 0), hello(s, "w2", 512, NULL, 0)};
    static uint32_t held[2][512];
    static bk__run *held_run[2][512];
    size_t n_held[2] = {0, 0};
    uint32_t jobs[512];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t now = 1;
    size_t total = 0;
    for (;;) {
        size_t moved = 0;
        for (int k = 0; k < 2; k++) {
            bk__run *got;
            size_t n = bk__sched_dispatch(s, w[k], now, jobs, 512, &got);
            for (size_t i = 0; i < n; i++) {
                held[k][n_held[k]] = jobs[i];
                held_run[k][n_held[k]++] = got;
            }
            moved += n;
            /* the worker finishes half of what it holds */
            size_t fin = (n_held[k] + 1) / 2;
            for (size_t i = 0; i < fin; i++) {
                Empq__Outcome o = EMPQ__OUTCOME__INIT;
                n_held[k]--;
                o.run_id = held_run[k][n_held[k]]->id;
                o.job = held[k][n_held[k]];
                o.kind = EMPQ__OUTCOME_KIND__OUTCOME_DONE;
                CHECK_INT(bk__sched_outcome(s, w[k], &o, now), BK_APPLIED);
                total++;
            }
            moved += fin;
            bk__sched_worker(s, w[k])->last_seen = now;
        }
        bk__sched_tick(s, now, NULL);
        now++;
        if (moved == 0)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK_INT(total, 1000000);
    CHECK(bk__jobtable_finished(r1->table));
    CHECK(bk__jobtable_finished(r2->table));
    fprintf(stderr, "dispatch logic: 1,000,000 jobs in %.3f s (%.0f jobs/s)\n", secs, 1e6 / secs);
    CHECK(secs < 10.0);
    bk__sched_free(&s);
}

/* The broker refuses non-loopback endpoints without --insecure; the check
 * is lib/endpoint.c's (every case in tests/unit/test_endpoint.c). */
static void test_local_endpoints(void)
{
    CHECK(bk__broker_endpoint_is_local("tcp://localhost:5555"));
    CHECK(bk__broker_endpoint_is_local("ipc:///tmp/empq.sock"));
    CHECK(!bk__broker_endpoint_is_local("tcp://0.0.0.0:5555"));
    CHECK(!bk__broker_endpoint_is_local("tcp://127.example.com:5555"));
}

int main(void)
{
    RUN(test_local_endpoints);
    RUN(test_run_add);
    RUN(test_credit);
    RUN(test_models);
    RUN(test_runs_round_robin);
    RUN(test_outcomes);
    RUN(test_time);
    RUN(test_local_failure);
    RUN(test_batch_mode);
    RUN(test_backoff);
    RUN(test_model_limit);
    RUN(test_throughput);
    CHECK_DONE();
}
