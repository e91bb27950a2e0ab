/* test_broker_jobtable.c: every transition of the broker's job table, the
 * refused ones included, queues, heaps, worker lists, counters, and the
 * memory of a 1,000,000-job table. No sockets, no Redis, no sleeping: time
 * is an argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "empq/util.h"
#include "jobtable.h"

static void check_ok(const bk__jobtable *t)
{
    empq_error err = {0};
    int rc = bk__jobtable_check(t, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "invariant: %s\n", err.msg);
    CHECK_INT(rc, EMPQ_OK);
}

static bk__jobtable *table(uint32_t p, uint32_t m, uint32_t s)
{
    bk__jobtable *t = NULL;
    empq_error err = {0};
    CHECK_INT(bk__jobtable_new(&t, p, m, s, &err), EMPQ_OK);
    CHECK(t != NULL);
    return t;
}

static void test_new_and_sizes(void)
{
    bk__jobtable *t = NULL;
    empq_error err = {0};
    CHECK_INT(bk__jobtable_new(&t, 0, 3, 1, &err), EMPQ_EINVAL);
    CHECK(t == NULL);
    CHECK_CONTAINS(err.msg, "0 prompts");
    CHECK_INT(bk__jobtable_new(&t, 70000, 70000, 1, &err), EMPQ_EINVAL);
    t = table(4, 3, 2);
    CHECK_INT(bk__jobtable_total(t), 24);
    CHECK_INT(bk__jobtable_n_models(t), 3);
    CHECK_INT(bk__jobtable_samples(t), 2);
    uint32_t p, m, s;
    bk__jobtable_split(t, (2 * 3 + 1) * 2 + 1, &p, &m, &s);
    CHECK_INT(p, 2);
    CHECK_INT(m, 1);
    CHECK_INT(s, 1);
    bk__counts c = bk__jobtable_counts(t, UINT32_MAX);
    CHECK_INT(c.pending, 24);
    CHECK_INT(c.ready, 24);
    CHECK_INT(c.leased + c.done + c.dead, 0);
    CHECK_INT(bk__jobtable_counts(t, 1).pending, 8);
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_state(t, 24), EMPQ_EINVAL);
    CHECK(!bk__jobtable_finished(t));
    CHECK_INT(bk__jobtable_next_expiry(t), UINT64_MAX);
    CHECK_INT(bk__jobtable_next_ready(t), UINT64_MAX);
    check_ok(t);
    bk__jobtable_free(&t);
    CHECK(t == NULL);
    bk__jobtable_free(&t);
    bk__jobtable_free(NULL);
}

static void test_state_names(void)
{
    CHECK_STR(bk__job_state_str(BK_JOB_PENDING), "pending");
    CHECK_STR(bk__job_state_str(BK_JOB_LEASED), "leased");
    CHECK_STR(bk__job_state_str(BK_JOB_DONE), "done");
    CHECK_STR(bk__job_state_str(BK_JOB_DEAD), "dead");
    CHECK_STR(bk__job_state_str(42), "unknown");
}

/* pending -> leased -> done, and everything refused from done. */
static void test_lease_done(void)
{
    bk__jobtable *t = table(2, 2, 1);
    unsigned w = 99;
    CHECK_INT(bk__jobtable_lease(t, 1, 3, 5000), EMPQ_OK);
    CHECK_INT(bk__jobtable_state(t, 1), BK_JOB_LEASED);
    CHECK_INT(bk__jobtable_worker(t, 1), 3);
    CHECK_INT(bk__jobtable_attempts(t, 1), 1);
    CHECK_INT(bk__jobtable_time(t, 1), 5000);
    CHECK_INT(bk__jobtable_worker_leased(t, 3), 1);
    CHECK_INT(bk__jobtable_worker_leased(t, 2), 0);
    CHECK_INT(bk__jobtable_worker_leased(t, 1000), 0);
    CHECK_INT(bk__jobtable_counts(t, 1).leased, 1);
    CHECK_INT(bk__jobtable_counts(t, 1).ready, 1);
    CHECK_INT(bk__jobtable_next_expiry(t), 5000);
    check_ok(t);
    /* leased -> leased is refused */
    CHECK_INT(bk__jobtable_lease(t, 1, 4, 6000), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_worker(t, 1), 3);
    CHECK_INT(bk__jobtable_done(t, 1, 1, &w), EMPQ_OK);
    CHECK_INT(w, 3);
    CHECK_INT(bk__jobtable_state(t, 1), BK_JOB_DONE);
    CHECK_INT(bk__jobtable_worker(t, 1), BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_time(t, 1), 0);
    CHECK_INT(bk__jobtable_worker_leased(t, 3), 0);
    CHECK_INT(bk__jobtable_counts(t, 1).done, 1);
    CHECK_INT(bk__jobtable_counts(t, 1).cache_hits, 1);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).cache_hits, 1);
    CHECK_INT(bk__jobtable_next_expiry(t), UINT64_MAX);
    check_ok(t);
    /* done is final: every move out of it is refused and changes nothing */
    CHECK_INT(bk__jobtable_lease(t, 1, 3, 7000), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_requeue(t, 1, 0, 0, &w), EMPQ_ESTATE);
    CHECK_INT(w, BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_done(t, 1, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_dead(t, 1, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_state(t, 1), BK_JOB_DONE);
    CHECK_INT(bk__jobtable_counts(t, 1).done, 1);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* pending -> leased -> dead, and everything refused from dead. */
static void test_lease_dead(void)
{
    bk__jobtable *t = table(2, 2, 1);
    unsigned w;
    CHECK_INT(bk__jobtable_lease(t, 2, 0, 100), EMPQ_OK);
    CHECK_INT(bk__jobtable_dead(t, 2, &w), EMPQ_OK);
    CHECK_INT(w, 0);
    CHECK_INT(bk__jobtable_state(t, 2), BK_JOB_DEAD);
    CHECK_INT(bk__jobtable_counts(t, 0).dead, 1);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).dead, 1);
    CHECK_INT(bk__jobtable_lease(t, 2, 0, 100), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_requeue(t, 2, 0, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_done(t, 2, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_dead(t, 2, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_state(t, 2), BK_JOB_DEAD);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* pending -> done and pending -> dead (outcomes after a requeue; marks at
 * load from Redis), from the queue and from the delayed heap. */
static void test_pending_final(void)
{
    bk__jobtable *t = table(3, 1, 1);
    unsigned w = 7;
    CHECK_INT(bk__jobtable_done(t, 1, 0, &w), EMPQ_OK);
    CHECK_INT(w, BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_dead(t, 2, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_counts(t, 0).pending, 1);
    CHECK_INT(bk__jobtable_counts(t, 0).ready, 1);
    check_ok(t);
    /* a delayed pending job becomes done */
    CHECK_INT(bk__jobtable_lease(t, 0, 1, 50), EMPQ_OK);
    CHECK_INT(bk__jobtable_requeue(t, 0, 10, 500, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_next_ready(t), 500);
    CHECK_INT(bk__jobtable_done(t, 0, 0, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_next_ready(t), UINT64_MAX);
    CHECK(bk__jobtable_finished(t));
    check_ok(t);
    bk__jobtable_free(&t);
}

/* pending -> pending and other refused moves. */
static void test_refused(void)
{
    bk__jobtable *t = table(2, 1, 1);
    CHECK_INT(bk__jobtable_requeue(t, 0, 0, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_lease(t, 5, 0, 1), EMPQ_EINVAL);
    CHECK_INT(bk__jobtable_lease(t, 0, BK_WORKER_MAX, 1), EMPQ_EINVAL);
    CHECK_INT(bk__jobtable_lease(t, 0, BK_WORKER_NONE, 1), EMPQ_EINVAL);
    CHECK_INT(bk__jobtable_done(t, 5, 0, NULL), EMPQ_EINVAL);
    CHECK_INT(bk__jobtable_dead(t, 5, NULL), EMPQ_EINVAL);
    CHECK_INT(bk__jobtable_requeue(t, 5, 0, 0, NULL), EMPQ_EINVAL);
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).ready, 2);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* leased -> pending: retry with a backoff (delayed, then promoted), retry
 * without one (ready at once), a lease from the delayed heap. */
static void test_requeue_retry(void)
{
    bk__jobtable *t = table(4, 1, 1);
    uint32_t got[4];
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 1000, got, 4), 4);
    unsigned w;
    CHECK_INT(bk__jobtable_requeue(t, 0, 100, 900, &w), EMPQ_OK); /* delayed to 900 */
    CHECK_INT(w, 2);
    CHECK_INT(bk__jobtable_requeue(t, 1, 100, 300, NULL), EMPQ_OK); /* delayed to 300 */
    CHECK_INT(bk__jobtable_requeue(t, 2, 100, 100, NULL), EMPQ_OK); /* ready now */
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_time(t, 0), 900);
    CHECK_INT(bk__jobtable_time(t, 2), 0);
    bk__counts c = bk__jobtable_counts(t, 0);
    CHECK_INT(c.pending, 3);
    CHECK_INT(c.ready, 1);
    CHECK_INT(c.leased, 1);
    CHECK_INT(bk__jobtable_worker_leased(t, 2), 1);
    CHECK_INT(bk__jobtable_next_ready(t), 300);
    check_ok(t);
    /* only the ready one is taken */
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 2000, got, 4), 1);
    CHECK_INT(got[0], 2);
    CHECK_INT(bk__jobtable_attempts(t, 2), 2);
    CHECK_INT(bk__jobtable_promote(t, 299), 0);
    CHECK_INT(bk__jobtable_promote(t, 300), 1);
    CHECK_INT(bk__jobtable_next_ready(t), 900);
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 2000, got, 4), 1);
    CHECK_INT(got[0], 1);
    check_ok(t);
    /* a delayed job may be leased directly (pending is pending) */
    CHECK_INT(bk__jobtable_lease(t, 0, 5, 3000), EMPQ_OK);
    CHECK_INT(bk__jobtable_next_ready(t), UINT64_MAX);
    CHECK_INT(bk__jobtable_attempts(t, 0), 2);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* leased -> pending by lease expiry, in deadline order. */
static void test_expire(void)
{
    bk__jobtable *t = table(5, 1, 1);
    CHECK_INT(bk__jobtable_lease(t, 0, 0, 300), EMPQ_OK);
    CHECK_INT(bk__jobtable_lease(t, 1, 1, 100), EMPQ_OK);
    CHECK_INT(bk__jobtable_lease(t, 2, 0, 200), EMPQ_OK);
    CHECK_INT(bk__jobtable_lease(t, 3, 1, 400), EMPQ_OK);
    CHECK_INT(bk__jobtable_next_expiry(t), 100);
    uint32_t ex[8];
    CHECK_INT(bk__jobtable_expire(t, 99, ex, 8), 0);
    CHECK_INT(bk__jobtable_expire(t, 250, ex, 8), 2);
    CHECK_INT(ex[0], 1);
    CHECK_INT(ex[1], 2);
    CHECK_INT(bk__jobtable_state(t, 1), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_LEASED);
    CHECK_INT(bk__jobtable_worker_leased(t, 0), 1);
    CHECK_INT(bk__jobtable_worker_leased(t, 1), 1);
    CHECK_INT(bk__jobtable_next_expiry(t), 300);
    CHECK_INT(bk__jobtable_counts(t, 0).ready, 3);
    check_ok(t);
    /* a done job's lease no longer expires */
    CHECK_INT(bk__jobtable_done(t, 0, 0, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_expire(t, 1000, NULL, 0), 1);
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_DONE);
    CHECK_INT(bk__jobtable_state(t, 3), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_next_expiry(t), UINT64_MAX);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* leased -> pending by worker loss (and released): only that worker's jobs. */
static void test_release_worker(void)
{
    bk__jobtable *t = table(10, 2, 1);
    uint32_t got[20];
    CHECK_INT(bk__jobtable_take(t, NULL, 0, 1000, got, 3), 3);
    CHECK_INT(bk__jobtable_take(t, NULL, 40, 1000, got, 4), 4);
    CHECK_INT(bk__jobtable_worker_leased(t, 40), 4);
    check_ok(t);
    /* an outcome removes one from the middle of the worker's list */
    CHECK_INT(bk__jobtable_done(t, got[1], 0, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_worker_leased(t, 40), 3);
    check_ok(t);
    CHECK_INT(bk__jobtable_release_worker(t, 40), 3);
    CHECK_INT(bk__jobtable_worker_leased(t, 40), 0);
    CHECK_INT(bk__jobtable_worker_leased(t, 0), 3);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).leased, 3);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).pending, 20 - 3 - 1);
    CHECK_INT(bk__jobtable_release_worker(t, 40), 0);
    CHECK_INT(bk__jobtable_release_worker(t, 5000), 0);
    check_ok(t);
    /* released jobs are leased again: the attempt count goes on */
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 1000, got, 20), 16);
    unsigned twice = 0;
    for (int i = 0; i < 16; i++)
        twice += bk__jobtable_attempts(t, got[i]) == 2;
    CHECK_INT(twice, 3);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* Recovery: a worker given up comes back with an outcome for a job that is
 * leased to another worker by now, or pending again, or expired and leased
 * again. The first DONE wins whoever sends it; every later outcome for the
 * job is refused (counted as ignored by the broker), so no double result. */
static void test_late_outcomes(void)
{
    bk__jobtable *t = table(4, 1, 1);
    unsigned w = 99;
    /* job 0: leased to 1, worker 1 lost, leased to 2; 1's late DONE lands */
    CHECK_INT(bk__jobtable_lease(t, 0, 1, 1000), EMPQ_OK);
    CHECK_INT(bk__jobtable_release_worker(t, 1), 1);
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_attempts(t, 0), 1);
    CHECK_INT(bk__jobtable_lease(t, 0, 2, 2000), EMPQ_OK);
    CHECK_INT(bk__jobtable_attempts(t, 0), 2);
    CHECK_INT(bk__jobtable_done(t, 0, 0, &w), EMPQ_OK);
    CHECK_INT(w, 2); /* worker 2 gets its credit back */
    CHECK_INT(bk__jobtable_worker_leased(t, 2), 0);
    /* worker 2's own DONE, a RETRY-like requeue and a DEAD come later: refused */
    CHECK_INT(bk__jobtable_done(t, 0, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_requeue(t, 0, 0, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_dead(t, 0, NULL), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_counts(t, 0).done, 1);
    check_ok(t);

    /* job 1: lease expires, leased again; the old deadline is gone */
    CHECK_INT(bk__jobtable_lease(t, 1, 3, 100), EMPQ_OK);
    CHECK_INT(bk__jobtable_expire(t, 150, NULL, 0), 1);
    CHECK_INT(bk__jobtable_lease(t, 1, 4, 500), EMPQ_OK);
    CHECK_INT(bk__jobtable_expire(t, 200, NULL, 0), 0);
    CHECK_INT(bk__jobtable_next_expiry(t), 500);
    CHECK_INT(bk__jobtable_worker(t, 1), 4);
    /* the expired holder's DEAD lands first: final, worker 4 freed */
    CHECK_INT(bk__jobtable_dead(t, 1, &w), EMPQ_OK);
    CHECK_INT(w, 4);
    CHECK_INT(bk__jobtable_next_expiry(t), UINT64_MAX);
    CHECK_INT(bk__jobtable_done(t, 1, 0, NULL), EMPQ_ESTATE);
    check_ok(t);

    /* job 2: retried (delayed in the heap) when its dead letter lands */
    CHECK_INT(bk__jobtable_lease(t, 2, 5, 100), EMPQ_OK);
    CHECK_INT(bk__jobtable_requeue(t, 2, 10, 700, &w), EMPQ_OK);
    CHECK_INT(w, 5);
    CHECK_INT(bk__jobtable_next_ready(t), 700);
    CHECK_INT(bk__jobtable_dead(t, 2, &w), EMPQ_OK);
    CHECK_INT(w, BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_next_ready(t), UINT64_MAX);
    CHECK_INT(bk__jobtable_promote(t, 1000), 0);
    check_ok(t);

    /* job 3: requeued with a not-before already past is ready at once */
    CHECK_INT(bk__jobtable_lease(t, 3, 6, 100), EMPQ_OK);
    CHECK_INT(bk__jobtable_requeue(t, 3, 50, 40, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_counts(t, 0).ready, 1);
    CHECK_INT(bk__jobtable_time(t, 3), 0);
    /* a worker lost with nothing leased any more requeues nothing */
    CHECK_INT(bk__jobtable_release_worker(t, 6), 0);
    CHECK_INT(bk__jobtable_release_worker(t, 2), 0);
    uint32_t got[4];
    CHECK_INT(bk__jobtable_take(t, NULL, 7, 900, got, 4), 1);
    CHECK_INT(got[0], 3);
    CHECK_INT(bk__jobtable_done(t, 3, 1, NULL), EMPQ_OK);
    CHECK(bk__jobtable_finished(t));
    bk__counts c = bk__jobtable_counts(t, UINT32_MAX);
    CHECK_INT(c.done, 2);
    CHECK_INT(c.dead, 2);
    CHECK_INT(c.pending + c.leased, 0);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* take: round robin over the served models, FIFO within a model, limits. */
static void test_take_round_robin(void)
{
    bk__jobtable *t = table(4, 3, 1); /* jobs: p*3+m */
    uint32_t got[12];
    CHECK_INT(bk__jobtable_take(t, NULL, 0, 10, got, 4), 4);
    CHECK_INT(got[0], 0); /* p0 m0 */
    CHECK_INT(got[1], 1); /* p0 m1 */
    CHECK_INT(got[2], 2); /* p0 m2 */
    CHECK_INT(got[3], 3); /* p1 m0 */
    /* the next batch goes on with the model after the last one served */
    CHECK_INT(bk__jobtable_take(t, NULL, 0, 10, got, 2), 2);
    CHECK_INT(got[0], 4); /* p1 m1 */
    CHECK_INT(got[1], 5); /* p1 m2 */
    /* a worker serving only model 2 */
    uint8_t serve[3] = {0, 0, 1};
    CHECK_INT(bk__jobtable_take(t, serve, 1, 10, got, 12), 2);
    CHECK_INT(got[0], 8);
    CHECK_INT(got[1], 11);
    CHECK_INT(bk__jobtable_take(t, serve, 1, 10, got, 12), 0);
    /* model 0 capped at 2 leased (it has 2 already) */
    bk__jobtable_set_model_limit(t, 0, 2);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 10, got, 12), 2);
    CHECK_INT(got[0], 7);
    CHECK_INT(got[1], 10);
    CHECK_INT(bk__jobtable_counts(t, 0).ready, 2);
    CHECK_INT(bk__jobtable_done(t, 0, 0, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 10, got, 12), 1);
    CHECK_INT(got[0], 6);
    bk__jobtable_set_model_limit(t, 0, 0);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 10, got, 12), 1);
    CHECK_INT(got[0], 9);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 10, got, 12), 0);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 10, got, 0), 0);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* Jobs that come back (retry whose backoff passed, lost worker, expired
 * lease, release) are taken before any job never handed out, in the order
 * they came back; each model keeps its own front section. */
static void test_requeued_first(void)
{
    bk__jobtable *t = table(10, 1, 1);
    uint32_t got[16];
    CHECK_INT(bk__jobtable_take(t, NULL, 0, 10, got, 4), 4); /* 0 1 2 3 to worker 0 */
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 20, got, 2), 2); /* 4 5 to worker 1 */
    CHECK_INT(bk__jobtable_requeue(t, 2, 5, 5, NULL), EMPQ_OK);   /* retry, no backoff left: ready */
    CHECK_INT(bk__jobtable_release_worker(t, 1), 2);              /* 4 5 */
    CHECK_INT(bk__jobtable_requeue(t, 1, 5, 500, NULL), EMPQ_OK); /* retry after a backoff */
    check_ok(t);
    CHECK_INT(bk__jobtable_promote(t, 500), 1);                   /* 1 */
    CHECK_INT(bk__jobtable_expire(t, 600, NULL, 0), 2);           /* 0 3 */
    check_ok(t);
    /* a requeued job finished while pending (a late DONE) leaves the order */
    CHECK_INT(bk__jobtable_done(t, 3, 0, NULL), EMPQ_OK);
    check_ok(t);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 700, got, 3), 3);
    CHECK_INT(got[0], 2);
    CHECK_INT(got[1], 4);
    CHECK_INT(got[2], 5);
    /* one more comes back while the front section is half taken: behind 1 0 */
    CHECK_INT(bk__jobtable_requeue(t, 4, 700, 700, NULL), EMPQ_OK);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 700, got, 16), 7);
    uint32_t want[7] = {1, 0, 4, 6, 7, 8, 9};
    for (int i = 0; i < 7; i++)
        CHECK_INT(got[i], want[i]);
    check_ok(t);
    bk__jobtable_free(&t);

    /* two models: each has its own front section; round robin between them */
    t = table(4, 2, 1); /* jobs p*2+m */
    CHECK_INT(bk__jobtable_take(t, NULL, 0, 10, got, 4), 4); /* 0 1 2 3 */
    CHECK_INT(bk__jobtable_release_worker(t, 0), 4);
    check_ok(t);
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 10, got, 8), 8);
    uint32_t want2[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int i = 0; i < 8; i++)
        CHECK_INT(got[i], want2[i]);
    check_ok(t);
    bk__jobtable_free(&t);
}

/* At scale: a lost worker's jobs in a 1,000,000-job queue are the next
 * ones out, not the last. */
static void test_requeued_first_at_scale(void)
{
    bk__jobtable *t = table(1000000, 1, 1);
    static uint32_t got[2048];
    CHECK_INT(bk__jobtable_take(t, NULL, 0, 600000, got, 1000), 1000);
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 600000, got, 1000), 1000);
    CHECK_INT(bk__jobtable_release_worker(t, 0), 1000);
    CHECK_INT(bk__jobtable_take(t, NULL, 2, 600000, got, 1500), 1500);
    for (uint32_t i = 0; i < 1000; i++)
        CHECK_INT(got[i], i);
    for (uint32_t i = 1000; i < 1500; i++)
        CHECK_INT(got[i], i + 1000); /* then the fresh ones, after worker 1's */
    check_ok(t);
    bk__jobtable_free(&t);
}

/* A random walk over every transition, checking the invariants as it goes. */
/* Batch mode: a leased job enters a provider batch (BATCHED): it leaves its
 * worker's list and credit but stays in the lease heap with its guard
 * deadline; it ends done, dead or back to pending (the batch ended without
 * its answer, or the guard passed), and nothing else moves it. */
static void test_batched(void)
{
    bk__jobtable *t = table(3, 2, 1); /* jobs 0..5, model = job % 2 */
    uint32_t got[8];
    CHECK_INT(bk__jobtable_take(t, NULL, 1, 100, got, 4), 4);
    CHECK_INT(bk__jobtable_worker_leased(t, 1), 4);
    CHECK_INT(bk__jobtable_worker_model_leased(t, 1, 0), 2);
    CHECK_INT(bk__jobtable_worker_model_leased(t, 1, 1), 2);
    CHECK_INT(bk__jobtable_worker_model_leased(t, 1, 2), 0);
    CHECK_INT(bk__jobtable_worker_model_leased(t, 7, 0), 0);
    CHECK_INT(bk__jobtable_batch(t, 0, 5000), EMPQ_OK);
    CHECK_INT(bk__jobtable_batch(t, 1, 6000), EMPQ_OK);
    check_ok(t);
    CHECK_INT(bk__jobtable_state(t, 0), BK_JOB_BATCHED);
    CHECK_STR(bk__job_state_str(BK_JOB_BATCHED), "batched");
    CHECK_INT(bk__jobtable_worker(t, 0), BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_time(t, 0), 5000);
    CHECK_INT(bk__jobtable_worker_leased(t, 1), 2);
    CHECK_INT(bk__jobtable_worker_model_leased(t, 1, 0), 1);
    bk__counts c = bk__jobtable_counts(t, UINT32_MAX);
    CHECK_INT(c.leased, 2);
    CHECK_INT(c.batched, 2);
    CHECK_INT(bk__jobtable_counts(t, 0).batched, 1);
    CHECK_INT(bk__jobtable_attempts(t, 0), 1); /* entering a batch is no new attempt */
    /* refused: batched twice, a lease of a batched job, a bad index */
    CHECK_INT(bk__jobtable_batch(t, 0, 7000), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_lease(t, 0, 2, 9000), EMPQ_ESTATE);
    CHECK_INT(bk__jobtable_batch(t, 99, 7000), EMPQ_EINVAL);
    /* its worker lost: the batched jobs stay (the batch's record holds them) */
    CHECK_INT(bk__jobtable_release_worker(t, 1), 2);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).batched, 2);
    check_ok(t);
    /* a pending job can be batched too (a broker that starts reads the
     * open records) */
    CHECK_INT(bk__jobtable_batch(t, 4, 8000), EMPQ_OK);
    check_ok(t);
    uint32_t bl[8] = {0};
    CHECK_INT(bk__jobtable_batched_list(t, bl, 8), 3); /* 0, 1 and 4, in heap order */
    CHECK_INT(bl[0] + bl[1] + bl[2], 0 + 1 + 4);
    CHECK_INT(bk__jobtable_batched_list(t, NULL, 0), 3);
    CHECK_INT(bk__jobtable_batched_list(t, bl, 1), 3);
    /* done from batched; requeue from batched (ready now, at the front) */
    unsigned was = 0;
    CHECK_INT(bk__jobtable_done(t, 0, 0, &was), EMPQ_OK);
    CHECK_INT(was, BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_requeue(t, 1, 100, 100, &was), EMPQ_OK);
    CHECK_INT(was, BK_WORKER_NONE);
    CHECK_INT(bk__jobtable_state(t, 1), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_batch(t, 0, 9000), EMPQ_ESTATE); /* done is final */
    check_ok(t);
    /* the guard: a batched job whose deadline passed is pending again */
    CHECK_INT(bk__jobtable_next_expiry(t), 8000);
    uint32_t exp[4];
    CHECK_INT(bk__jobtable_expire(t, 8000, exp, 4), 1);
    CHECK_INT(exp[0], 4);
    CHECK_INT(bk__jobtable_state(t, 4), BK_JOB_PENDING);
    CHECK_INT(bk__jobtable_counts(t, UINT32_MAX).batched, 0);
    check_ok(t);
    bk__jobtable_free(&t);
}

static void test_random_walk(void)
{
    bk__jobtable *t = table(50, 4, 2);
    empq_rng r;
    empq_rng_seed(&r, 12345);
    uint64_t now = 1000;
    uint32_t got[16];
    for (int step = 0; step < 20000; step++) {
        now += empq_rng_below(&r, 20);
        uint32_t job = (uint32_t)empq_rng_below(&r, bk__jobtable_total(t));
        unsigned w = (unsigned)empq_rng_below(&r, 5);
        int before = bk__jobtable_state(t, job);
        int rc;
        switch (empq_rng_below(&r, 10)) {
        case 9:
            rc = bk__jobtable_batch(t, job, now + 2000);
            CHECK_INT(rc, before == BK_JOB_PENDING || before == BK_JOB_LEASED ? EMPQ_OK : EMPQ_ESTATE);
            break;
        case 0:
            rc = bk__jobtable_lease(t, job, w, now + 500);
            CHECK_INT(rc, before == BK_JOB_PENDING ? EMPQ_OK : EMPQ_ESTATE);
            break;
        case 1:
            rc = bk__jobtable_requeue(t, job, now, now + empq_rng_below(&r, 300), NULL);
            CHECK_INT(rc, before == BK_JOB_LEASED || before == BK_JOB_BATCHED ? EMPQ_OK : EMPQ_ESTATE);
            break;
        case 2:
            if (empq_rng_below(&r, 10) == 0) {
                rc = bk__jobtable_done(t, job, (int)empq_rng_below(&r, 2), NULL);
                CHECK_INT(rc, before <= BK_JOB_LEASED || before == BK_JOB_BATCHED ? EMPQ_OK : EMPQ_ESTATE);
            }
            break;
        case 3:
            if (empq_rng_below(&r, 30) == 0) {
                rc = bk__jobtable_dead(t, job, NULL);
                CHECK_INT(rc, before <= BK_JOB_LEASED || before == BK_JOB_BATCHED ? EMPQ_OK : EMPQ_ESTATE);
            }
            break;
        case 4:
            bk__jobtable_take(t, NULL, w, now + 300, got, empq_rng_below(&r, 16));
            break;
        case 5:
            bk__jobtable_promote(t, now);
            break;
        case 6:
            bk__jobtable_expire(t, now, NULL, 0);
            break;
        case 7:
            if (empq_rng_below(&r, 20) == 0)
                bk__jobtable_release_worker(t, w);
            break;
        default: {
            uint8_t serve[4] = {(uint8_t)(w & 1), 1, (uint8_t)(w & 2), 0};
            bk__jobtable_take(t, serve, w, now + 300, got, 16);
        }
        }
        if (step % 97 == 0)
            check_ok(t);
    }
    check_ok(t);
    bk__jobtable_free(&t);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    long size = 0, res = 0;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    return n == 2 ? res * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

/* 1,000,000 jobs: bytes per job, by the table's own account and by the
 * process's resident memory, with a busy table (leases, delays, done). */
static void test_million_memory(void)
{
    long before = rss_kb();
    bk__jobtable *t = table(200000, 5, 1);
    CHECK_INT(bk__jobtable_total(t), 1000000);
    static uint32_t got[4096];
    uint64_t now = 1;
    /* 100,000 leased over 50 workers, 10,000 delayed, 500,000 done */
    for (unsigned w = 0; w < 50; w++)
        CHECK_INT(bk__jobtable_take(t, NULL, w, 600000 + w, got, 2000), 2000);
    for (uint32_t j = 0; j < 10000; j++)
        CHECK_INT(bk__jobtable_requeue(t, j, now, now + 1000 + j, NULL), EMPQ_OK);
    for (uint32_t j = 200000; j < 700000; j++)
        CHECK_INT(bk__jobtable_done(t, j, 0, NULL), EMPQ_OK);
    long after = rss_kb();
    size_t mem = bk__jobtable_memory(t);
    double per_job = (double)mem / 1000000.0;
    double per_job_rss = (double)(after - before) * 1024.0 / 1000000.0;
    fprintf(stderr, "1,000,000 jobs: table %.1f bytes/job, resident %.1f bytes/job\n", per_job, per_job_rss);
    CHECK(per_job < 300.0);
    CHECK(per_job < 32.0);
    if (before > 0 && after > 0)
        CHECK(per_job_rss < 300.0);
    bk__counts c = bk__jobtable_counts(t, UINT32_MAX);
    CHECK_INT(c.leased, 90000);
    CHECK_INT(c.pending, 1000000 - 100000 + 10000 - 500000);
    CHECK_INT(c.done, 500000);
    /* a lost worker's 2,000 jobs go back without a scan */
    CHECK_INT(bk__jobtable_release_worker(t, 49), 2000);
    CHECK_INT(bk__jobtable_expire(t, 700000, NULL, 0), 88000);
    CHECK_INT(bk__jobtable_promote(t, 1000000), 10000);
    c = bk__jobtable_counts(t, UINT32_MAX);
    CHECK_INT(c.pending, 500000);
    CHECK_INT(c.ready, 500000);
    check_ok(t);
    bk__jobtable_free(&t);
}

int main(void)
{
    RUN(test_new_and_sizes);
    RUN(test_state_names);
    RUN(test_lease_done);
    RUN(test_lease_dead);
    RUN(test_pending_final);
    RUN(test_refused);
    RUN(test_requeue_retry);
    RUN(test_expire);
    RUN(test_release_worker);
    RUN(test_late_outcomes);
    RUN(test_take_round_robin);
    RUN(test_requeued_first);
    RUN(test_requeued_first_at_scale);
    RUN(test_batched);
    RUN(test_random_walk);
    RUN(test_million_memory);
    CHECK_DONE();
}
