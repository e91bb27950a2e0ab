/* broker.c: the broker's event loop. One zmq_poll over the worker ROUTER and
 * the control ROUTER; the timeout is the next deadline the dispatch core
 * knows (heartbeat, silence limit, lease, retry backoff), never a fixed
 * sleep. Each turn: receive everything waiting (outcomes in batches), do
 * what is due, then send each worker with free credit one JobBatch. */
#include "broker.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "empq/batchrec.h"
#include "empq/curve.h"
#include "empq/endpoint.h"
#include "empq/log.h"
#include "empq/wake.h"
#include "empq/store.h"
#include "empq/util.h"
#include "empq/wire.h"
#include "sched.h"
#include "metrics.h"
#include "runinfo.h"

#define BK_DEFAULT_REDIS "redis://127.0.0.1:6379"
#define BK_DRAIN_WORKER 1024 /* worker messages handled per loop turn at most */
#define BK_DRAIN_CONTROL 64
#define BK_BAD_LOG_MS 1000   /* at most one bad-message line a second */

/* Failed attempts of a run's jobs recorded in Redis before this broker
 * loaded the run (empq:run:{id}:attempts, HINCRBY on every RETRY that was an
 * attempt: not a local failure, see Outcome.local_failure), sorted by
 * job: a job's attempt is these plus its leases since the load, so a broker
 * restart does not give a failing job a fresh max_attempts. Only jobs that
 * ever failed are here. */
typedef struct bk__prior {
    char *run_id;
    uint32_t *jobs;
    uint32_t *attempts;
    size_t n, cap;
    uint32_t *max_attempts; /* per model, from the spec (default 5) */
    uint32_t n_models;
    /* RETRY outcomes that were attempts, per job since the load (open
     * addressing, key job + 1, 0 empty): leases minus these are the leases
     * that ended without an outcome (RELEASED and local-failure leases are
     * taken back from the lease count itself) */
    uint32_t *oc_key, *oc_val;
    size_t oc_n, oc_cap;
    struct bk__prior *next;
} bk__prior;

/* A job is given up by the broker when max_attempts + this many of its
 * leases ended without any outcome (its workers died or its leases
 * expired), as a request that kills the worker taking it does. Leases
 * answered by RETRY do not count, nor do leases handed back (RELEASED: a
 * graceful stop) or failed for the worker's trouble (a store outage), which
 * are not counted as leases at all. */
#define BK_NO_OUTCOME_SLACK 3

typedef struct bk__broker {
    bk__broker_opts o;
    empq_store *store;
    void *zctx;
    void *wsock;
    void *csock;
    empq_curve_zap *zap; /* the CURVE allow-list's ZAP handler; NULL: CURVE off */
    bk__sched *sched;
    /* scratch for one JobBatch */
    uint32_t *jobs;
    Empq__Job *job_msgs;
    Empq__Job **job_ptrs;
    size_t jobs_cap;
    /* counters */
    uint64_t bad_msgs;
    uint64_t dispatched;
    uint64_t outcomes;
    uint64_t ignored[BK_APPLIED_N];
    uint64_t started_wall;
    bk__metrics *metrics; /* Prometheus counters (served with --metrics) */
    bk__runinfo *runinfo; /* per loaded run: its prompts' emotions, its parent */
    bk__prior *prior;     /* per loaded run with failed attempts before the load */
    uint32_t *retry_jobs; /* scratch: RETRY outcomes of one message, to record */
    size_t retry_cap;
    int attempts_failing; /* the last attempt write failed (logged once) */
    uint64_t batched_check_at; /* mono: next check of the batched jobs against the open batch records */
} bk__broker;

#define BK_BATCHED_CHECK_MS 5000 /* how often batched jobs are checked against the open batch records */

void bk__broker_wake(void) { empq_wake(); }

void bk__broker_opts_default(bk__broker_opts *o)
{
    const char *env = getenv("EMPQ_REDIS_URL");
    o->redis_url = env != NULL && env[0] != '\0' ? env : BK_DEFAULT_REDIS;
    o->bind = "tcp://127.0.0.1:5555";
    o->control = "tcp://127.0.0.1:5556";
    o->heartbeat_ms = 1000;
    o->lease_ms = 600000;
    o->insecure = 0;
    o->metrics = NULL;
    o->curve_secret = NULL;
    o->curve_allow = NULL;
}

int bk__broker_endpoint_is_local(const char *ep) { return empq_endpoint_is_loopback(ep); }

static void log_peer(char *buf, size_t len, const empq_wire_peer *p)
{
    char raw[EMPQ_WIRE_MAX_IDENTITY + 1];
    size_t n = p->len < sizeof raw - 1 ? p->len : sizeof raw - 1;
    int printable = n > 0;
    for (size_t i = 0; i < n; i++)
        printable &= p->id[i] >= 0x20 && p->id[i] < 0x7f;
    if (printable) {
        memcpy(raw, p->id, n);
        raw[n] = '\0';
    } else {
        size_t o = 0;
        for (size_t i = 0; i < n && o + 3 < sizeof raw; i++)
            o += (size_t)snprintf(raw + o, sizeof raw - o, "%02x", p->id[i]);
        raw[o] = '\0';
    }
    empq_log_quote(buf, len, raw);
}

/* Counts a dropped message; logs at most one line a second (the rest are
 * counted in the next line's suppressed=N). */
static void bad_message(bk__broker *b, const char *sock, const empq_wire_peer *p, const char *why)
{
    b->bad_msgs++;
    char peer[128], reason[256];
    if (p != NULL && p->len > 0)
        log_peer(peer, sizeof peer, p);
    else
        snprintf(peer, sizeof peer, "-");
    EMPQ_LOG_EVERY(EMPQ_LOG_WARN, "bad_message", BK_BAD_LOG_MS,
                   "event=bad_message socket=%s peer=%s reason=%s total=%llu", sock, peer,
                   empq_log_quote(reason, sizeof reason, why), (unsigned long long)b->bad_msgs);
}

/* ==================== sending to workers ==================== */

static int send_worker(bk__broker *b, unsigned w, const Empq__BrokerMsg *m)
{
    bk__worker *x = bk__sched_worker(b->sched, w);
    empq_wire_peer p;
    memcpy(p.id, x->ident, x->ident_len);
    p.len = x->ident_len;
    p.delimited = 0;
    int rc = empq_wire_send_to(b->wsock, &p, &m->base, ZMQ_DONTWAIT);
    if (rc == EMPQ_OK)
        x->last_sent = empq_mono_ms();
    return rc;
}

static void send_bye(bk__broker *b, const empq_wire_peer *p, int reject, const char *reason)
{
    Empq__Bye bye = EMPQ__BYE__INIT;
    bye.reason = (char *)reason;
    Empq__BrokerMsg m = EMPQ__BROKER_MSG__INIT;
    if (reject) {
        m.body_case = EMPQ__BROKER_MSG__BODY_REJECT;
        m.reject = &bye;
    } else {
        m.body_case = EMPQ__BROKER_MSG__BODY_SHUTDOWN;
        m.shutdown = &bye;
    }
    empq_wire_send_to(b->wsock, p, &m.base, ZMQ_DONTWAIT);
}

/* Gives up a worker the socket cannot reach any more. */
static void drop_worker(bk__broker *b, unsigned w, const char *why)
{
    bk__worker *x = bk__sched_worker(b->sched, w);
    char id[160];
    empq_log_quote(id, sizeof id, x->worker_id);
    size_t n = bk__sched_worker_remove(b->sched, w);
    EMPQ_WARN("event=worker_lost worker=%s reason=%s requeued=%zu", id, why, n);
}

static void send_heartbeat(bk__broker *b, unsigned w, uint64_t now)
{
    Empq__Heartbeat hb = EMPQ__HEARTBEAT__INIT;
    hb.has_sent_ms = 1;
    hb.sent_ms = empq_now_ms();
    Empq__BrokerMsg m = EMPQ__BROKER_MSG__INIT;
    m.body_case = EMPQ__BROKER_MSG__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    int rc = send_worker(b, w, &m);
    if (rc == EMPQ_EWIRE)
        drop_worker(b, w, "unreachable"); /* its connection is gone: requeue now, not 5 beats later */
    else if (rc != EMPQ_OK)
        bk__sched_worker(b->sched, w)->last_sent = now; /* queue full: try again a beat later */
}

static int grow_scratch(bk__broker *b, size_t n)
{
    if (n <= b->jobs_cap)
        return EMPQ_OK;
    uint32_t *j = realloc(b->jobs, n * sizeof *j);
    if (j == NULL)
        return EMPQ_ENOMEM;
    b->jobs = j;
    Empq__Job *m = realloc(b->job_msgs, n * sizeof *m);
    if (m == NULL)
        return EMPQ_ENOMEM;
    b->job_msgs = m;
    Empq__Job **p = realloc(b->job_ptrs, n * sizeof *p);
    if (p == NULL)
        return EMPQ_ENOMEM;
    b->job_ptrs = p;
    b->jobs_cap = n;
    return EMPQ_OK;
}

/* ==================== attempts across restarts ==================== */

static bk__prior *prior_find(bk__broker *b, const char *run_id)
{
    for (bk__prior *p = b->prior; p != NULL; p = p->next)
        if (strcmp(p->run_id, run_id) == 0)
            return p;
    return NULL;
}

static void prior_free(bk__prior *p)
{
    if (p == NULL)
        return;
    free(p->run_id);
    free(p->jobs);
    free(p->attempts);
    free(p->max_attempts);
    free(p->oc_key);
    free(p->oc_val);
    free(p);
}

static size_t oc_slot(const uint32_t *keys, size_t cap, uint32_t job)
{
    size_t i = (size_t)(job * 2654435761u) & (cap - 1);
    while (keys[i] != 0 && keys[i] != job + 1)
        i = (i + 1) & (cap - 1);
    return i;
}

/* Outcomes (RETRY, RELEASED) the job had since the load. */
static uint32_t oc_get(const bk__prior *p, uint32_t job)
{
    if (p == NULL || p->oc_cap == 0)
        return 0;
    size_t i = oc_slot(p->oc_key, p->oc_cap, job);
    return p->oc_key[i] != 0 ? p->oc_val[i] : 0;
}

static void oc_add(bk__prior *p, uint32_t job)
{
    if (p->oc_n * 2 >= p->oc_cap) { /* keep it at most half full */
        size_t cap = p->oc_cap != 0 ? p->oc_cap * 2 : 256;
        uint32_t *k = calloc(cap, sizeof *k), *v = calloc(cap, sizeof *v);
        if (k == NULL || v == NULL) {
            free(k);
            free(v);
            return; /* not counted: the job may be given up a little sooner */
        }
        for (size_t i = 0; i < p->oc_cap; i++) {
            if (p->oc_key[i] == 0)
                continue;
            size_t j = oc_slot(k, cap, p->oc_key[i] - 1);
            k[j] = p->oc_key[i];
            v[j] = p->oc_val[i];
        }
        free(p->oc_key);
        free(p->oc_val);
        p->oc_key = k;
        p->oc_val = v;
        p->oc_cap = cap;
    }
    size_t i = oc_slot(p->oc_key, p->oc_cap, job);
    if (p->oc_key[i] == 0) {
        p->oc_key[i] = job + 1;
        p->oc_n++;
    }
    p->oc_val[i]++;
}

static void prior_drop(bk__broker *b, const char *run_id)
{
    for (bk__prior **pp = &b->prior; *pp != NULL; pp = &(*pp)->next) {
        if (strcmp((*pp)->run_id, run_id) == 0) {
            bk__prior *p = *pp;
            *pp = p->next;
            prior_free(p);
            return;
        }
    }
}

static void prior_add(uint32_t job, uint32_t attempts, void *arg)
{
    bk__prior *p = arg;
    if (p->n == p->cap) {
        size_t cap = p->cap != 0 ? p->cap * 2 : 64;
        uint32_t *j = realloc(p->jobs, cap * sizeof *j);
        if (j == NULL)
            return;
        p->jobs = j;
        uint32_t *a = realloc(p->attempts, cap * sizeof *a);
        if (a == NULL)
            return;
        p->attempts = a;
        p->cap = cap;
    }
    p->jobs[p->n] = job;
    p->attempts[p->n] = attempts;
    p->n++;
}

static int cmp_u32_pair(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads the run's recorded failed attempts and its models' max_attempts. */
static int prior_load(bk__broker *b, const Empq__Run *run)
{
    const char *run_id = run->id;
    prior_drop(b, run_id);
    bk__prior *p = calloc(1, sizeof *p);
    if (p == NULL)
        return EMPQ_ENOMEM;
    size_t nm = run->spec != NULL ? run->spec->n_models : 0;
    p->max_attempts = calloc(nm > 0 ? nm : 1, sizeof *p->max_attempts);
    p->run_id = empq_strdup(run_id);
    if (p->max_attempts == NULL || p->run_id == NULL) {
        prior_free(p);
        return EMPQ_ENOMEM;
    }
    p->n_models = (uint32_t)nm;
    for (size_t m = 0; m < nm; m++) {
        const Empq__ModelSpec *ms = run->spec->models[m];
        p->max_attempts[m] = ms->has_max_attempts && ms->max_attempts > 0 ? ms->max_attempts : 5;
    }
    int rc = empq_store_attempts_scan(b->store, run_id, prior_add, p);
    if (rc != EMPQ_OK) {
        prior_free(p);
        return rc;
    }
    /* sort the pairs by job: pack them, sort, unpack */
    uint32_t *pairs = malloc((p->n > 0 ? p->n : 1) * 2 * sizeof *pairs);
    if (pairs == NULL) {
        prior_free(p);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < p->n; i++)
        pairs[2 * i] = p->jobs[i], pairs[2 * i + 1] = p->attempts[i];
    qsort(pairs, p->n, 2 * sizeof *pairs, cmp_u32_pair);
    for (size_t i = 0; i < p->n; i++)
        p->jobs[i] = pairs[2 * i], p->attempts[i] = pairs[2 * i + 1];
    free(pairs);
    p->next = b->prior;
    b->prior = p;
    return EMPQ_OK;
}

/* Failed attempts of job recorded before the load; 0 when none. */
static uint32_t prior_of(const bk__prior *p, uint32_t job)
{
    if (p == NULL)
        return 0;
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->jobs[mid] < job)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n && p->jobs[lo] == job ? p->attempts[lo] : 0;
}

/* Records the RETRY outcomes of one run (attempts survive a restart). A
 * failed write costs only that count: logged once per outage. */
static void record_retries(bk__broker *b, const char *run_id, const uint32_t *jobs, size_t n)
{
    if (n == 0)
        return;
    int rc = empq_store_attempts_add(b->store, run_id, jobs, n);
    if (rc != EMPQ_OK && !b->attempts_failing)
        EMPQ_WARN_LIMITED("attempts_not_recorded", "event=attempts_not_recorded run=%s jobs=%zu error=\"%s\"", run_id,
                          n, empq_store_errstr(b->store));
    b->attempts_failing = rc != EMPQ_OK;
}

/* Takes out of the n jobs just leased (b->jobs) those whose attempt would
 * pass max_attempts + BK_NO_OUTCOME_SLACK: their dead letter is written and
 * they are marked dead. A job whose dead letter cannot be written is sent
 * as usual. Returns how many jobs are left, compacted in b->jobs. */
static size_t give_up_no_outcome(bk__broker *b, bk__run *r, const bk__prior *pri, size_t n)
{
    if (pri == NULL)
        return n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t job = b->jobs[i], p, m, s;
        bk__jobtable_split(r->table, job, &p, &m, &s);
        /* earlier leases (this one aside) that ended with no outcome */
        uint32_t leases = bk__jobtable_attempts(r->table, job) - 1;
        uint32_t answered = oc_get(pri, job);
        uint32_t silent = leases > answered ? leases - answered : 0;
        uint32_t max = m < pri->n_models ? pri->max_attempts[m] : 5;
        if (silent < max + BK_NO_OUTCOME_SLACK) {
            b->jobs[k++] = job;
            continue;
        }
        uint32_t attempt = leases + prior_of(pri, job);
        char reason[200];
        snprintf(reason, sizeof reason,
                 "given up by the broker: %u leases ended without an outcome (workers lost or leases expired; "
                 "max_attempts %u + %d)",
                 silent, max, BK_NO_OUTCOME_SLACK);
        Empq__DeadLetter d = EMPQ__DEAD_LETTER__INIT;
        d.run_id = r->id;
        d.job = job;
        d.reason = reason;
        d.has_attempts = 1;
        d.attempts = attempt;
        d.has_at_ms = 1;
        d.at_ms = empq_now_ms();
        d.worker = "broker";
        if (empq_store_dead_put(b->store, &d) != EMPQ_OK) {
            b->jobs[k++] = job; /* try it once more rather than lose the reason */
            continue;
        }
        bk__jobtable_dead(r->table, job, NULL);
        bk__sched_count_dead(r, m, reason);
        EMPQ_WARN_LIMITED("job_dead_no_outcome",
                          "event=job_dead_no_outcome run=%s job=%u model=%s silent_leases=%u max_attempts=%u", r->id,
                          job, r->aliases[m], silent, max);
    }
    return k;
}

/* Sends worker w one batch if it has free credit and there is work for it.
 * Returns 1 when it may take more after this batch. */
static int dispatch_one(bk__broker *b, unsigned w, uint64_t now)
{
    bk__run *r = NULL;
    size_t n = bk__sched_dispatch(b->sched, w, now, b->jobs, b->jobs_cap, &r);
    if (n == 0)
        return 0;
    const bk__prior *pri = b->prior != NULL ? prior_find(b, r->id) : NULL;
    n = give_up_no_outcome(b, r, pri, n);
    if (n == 0) {
        bk__worker *x = bk__sched_worker(b->sched, w);
        return bk__sched_in_flight(b->sched, w) < x->credit;
    }
    for (size_t i = 0; i < n; i++) {
        Empq__Job *j = &b->job_msgs[i];
        empq__job__init(j);
        uint32_t p, m, s;
        bk__jobtable_split(r->table, b->jobs[i], &p, &m, &s);
        j->index = b->jobs[i];
        j->prompt = p;
        j->model = m;
        j->has_sample = 1;
        j->sample = s;
        j->has_attempt = 1;
        j->attempt = bk__jobtable_attempts(r->table, b->jobs[i]) + prior_of(pri, b->jobs[i]);
        b->job_ptrs[i] = j;
    }
    Empq__JobBatch batch = EMPQ__JOB_BATCH__INIT;
    batch.run_id = r->id;
    batch.n_jobs = n;
    batch.jobs = b->job_ptrs;
    batch.has_force = 1;
    batch.force = r->force;
    Empq__BrokerMsg msg = EMPQ__BROKER_MSG__INIT;
    msg.body_case = EMPQ__BROKER_MSG__BODY_JOBS;
    msg.jobs = &batch;
    int rc = send_worker(b, w, &msg);
    if (rc != EMPQ_OK) {
        /* Not sent: the jobs go back at once. A worker the socket cannot
         * route to any more is given up; a full queue is tried again. */
        for (size_t i = 0; i < n; i++)
            bk__jobtable_requeue(r->table, b->jobs[i], now, now, NULL);
        if (rc == EMPQ_EWIRE)
            drop_worker(b, w, "unreachable");
        return 0;
    }
    b->dispatched += n;
    for (size_t i = 0, k = 0; i < n; i = k) { /* per model, in runs of one model */
        for (k = i + 1; k < n && b->job_msgs[k].model == b->job_msgs[i].model; k++)
            ;
        bk__metrics_dispatched(b->metrics, r->aliases[b->job_msgs[i].model], k - i);
    }
    bk__worker *x = bk__sched_worker(b->sched, w);
    return bk__sched_in_flight(b->sched, w) < x->credit;
}

/* ==================== runs ==================== */

/* A run being loaded from Redis, and the clocks of the load. */
typedef struct loading {
    bk__run *r;
    uint64_t wall, mono;
    uint32_t undecodable; /* results whose stored value does not decode */
} loading;

/* A result found in Redis counts as its outcome did for the broker that
 * received it: done (a cache hit as one), and for a fresh call its usage
 * and cost, and its place in the model's minute window (pace.h,
 * bk__pace_restore): a restarted broker neither forgets the money spent
 * nor grants a minute's limit twice. */
static void mark_done(uint32_t job, const uint8_t *value, size_t len, void *arg)
{
    loading *l = arg;
    Empq__Result *res = len > 0 ? empq__result__unpack(NULL, len, value) : NULL;
    if (res == NULL)
        l->undecodable++;
    int cache_hit = res != NULL && res->has_cache_hit && res->cache_hit;
    /* out of range or dead already: ignored */
    if (bk__jobtable_done(l->r->table, job, cache_hit, NULL) == EMPQ_OK && res != NULL && !cache_hit &&
        res->gen != NULL) {
        uint32_t prompt, model, sample;
        bk__jobtable_split(l->r->table, job, &prompt, &model, &sample);
        uint64_t ago = res->has_finished_ms && res->finished_ms <= l->wall ? l->wall - res->finished_ms : UINT64_MAX;
        bk__pace_cached(&l->r->pace[model], res->gen->has_cached_tokens ? res->gen->cached_tokens : 0);
        bk__pace_restore(&l->r->pace[model], res->gen->has_tokens_in ? res->gen->tokens_in : 0,
                         res->gen->has_tokens_out ? res->gen->tokens_out : 0, ago, l->mono);
    }
    if (res != NULL)
        empq__result__free_unpacked(res, NULL);
}

/* A dead letter found in Redis: the job is dead, counted by its reason. */
static void mark_dead(uint32_t job, const uint8_t *value, size_t len, void *arg)
{
    bk__run *r = ((loading *)arg)->r;
    if (bk__jobtable_dead(r->table, job, NULL) != EMPQ_OK)
        return; /* out of range, or done already */
    Empq__DeadLetter *d = len > 0 ? empq__dead_letter__unpack(NULL, len, value) : NULL;
    uint32_t prompt, model, sample;
    bk__jobtable_split(r->table, job, &prompt, &model, &sample);
    bk__sched_count_dead(r, model, d != NULL ? d->reason : NULL);
    /* a reply that was no answer was billed: its usage counts in the cost */
    if (d != NULL && (d->has_tokens_in || d->has_tokens_out))
        bk__pace_restore(&r->pace[model], d->tokens_in, d->tokens_out, UINT64_MAX, ((loading *)arg)->mono);
    if (d != NULL)
        empq__dead_letter__free_unpacked(d, NULL);
}

/* Batch mode: the jobs of r in open provider batches (their records hold
 * them) are batched, not pending: the worker that reads each batch sends
 * their outcomes. */
static int load_batched(bk__broker *b, bk__run *r)
{
    uint32_t *jobs = NULL;
    size_t n = 0;
    empq_error e = {0};
    int rc = empq_batchrec_run_jobs(b->store, r->id, &jobs, &n, &e);
    if (rc != EMPQ_OK) {
        free(jobs);
        return rc;
    }
    size_t k = 0;
    uint64_t guard = empq_mono_ms() + BK_BATCHED_GUARD_MS;
    for (size_t i = 0; i < n; i++)
        k += bk__jobtable_state(r->table, jobs[i]) == BK_JOB_PENDING &&
             bk__jobtable_batch(r->table, jobs[i], guard) == EMPQ_OK;
    free(jobs);
    if (k > 0)
        EMPQ_INFO("event=run_batched_jobs run=%s batched=%zu", r->id, k);
    return EMPQ_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Batch mode: a batched job waits for the outcome of the worker that reads
 * its batch. When that outcome is lost (the worker died between closing the
 * record and sending it, or its socket went with it), nothing else would
 * come: a job batched at two checks in a row (BK_BATCHED_CHECK_MS apart,
 * long enough for an outcome on its way) while no open record holds it is
 * pending again. A worker that takes it finds its answer in the cache when
 * the batch's result was written, else sends it again. */
static void check_batched(bk__broker *b, uint64_t now)
{
    size_t nruns = bk__sched_run_count(b->sched);
    for (size_t i = 0; i < nruns; i++) {
        bk__run *r = bk__sched_run_at(b->sched, i);
        uint32_t nb = bk__jobtable_counts(r->table, UINT32_MAX).batched;
        if (nb == 0) {
            free(r->orphans);
            r->orphans = NULL;
            r->n_orphans = 0;
            continue;
        }
        uint32_t *open = NULL, *jobs = malloc(nb * sizeof *jobs), *next = malloc(nb * sizeof *next);
        size_t n_open = 0;
        empq_error err = {0};
        if (jobs == NULL || next == NULL || empq_batchrec_run_jobs(b->store, r->id, &open, &n_open, &err) != EMPQ_OK) {
            free(jobs);
            free(next);
            free(open);
            continue; /* Redis or memory trouble: the next check */
        }
        qsort(open, n_open, sizeof *open, cmp_u32);
        size_t n = bk__jobtable_batched_list(r->table, jobs, nb), k = 0, requeued = 0;
        for (size_t j = 0; j < n && j < nb; j++) {
            if (bsearch(&jobs[j], open, n_open, sizeof *open, cmp_u32) != NULL)
                continue;
            if (r->orphans != NULL && bsearch(&jobs[j], r->orphans, r->n_orphans, sizeof *r->orphans, cmp_u32)) {
                requeued += bk__jobtable_requeue(r->table, jobs[j], now, now, NULL) == EMPQ_OK;
                continue;
            }
            next[k++] = jobs[j];
        }
        qsort(next, k, sizeof *next, cmp_u32);
        free(r->orphans);
        r->orphans = next;
        r->n_orphans = k;
        free(jobs);
        free(open);
        if (requeued > 0)
            EMPQ_WARN("event=batched_jobs_requeued run=%s jobs=%zu reason=\"in no open batch record for %u ms: "
                      "their outcome was lost\"",
                      r->id, requeued, BK_BATCHED_CHECK_MS);
    }
}

/* Loads a run read from Redis: builds its table, marks finished jobs. */
static int load_run(bk__broker *b, const Empq__Run *run, empq_error *err)
{
    uint64_t t0 = empq_mono_ms();
    bk__run *r = NULL;
    int rc = bk__sched_run_add(b->sched, run, &r, err);
    if (rc == EMPQ_EEXIST)
        return EMPQ_OK;
    if (rc != EMPQ_OK) {
        EMPQ_ERROR("event=run_load_failed run=%s error=\"%s\"", run->id, err != NULL ? err->msg : "");
        return rc;
    }
    loading l = {.r = r, .wall = empq_now_ms(), .mono = empq_mono_ms()};
    rc = empq_store_scan_finished(b->store, r->id, 1, mark_done, &l);
    if (rc == EMPQ_OK)
        rc = empq_store_scan_finished(b->store, r->id, 0, mark_dead, &l);
    if (l.undecodable > 0)
        EMPQ_WARN("event=results_undecodable run=%s count=%u (counted done; their usage and cost are not)", r->id,
                  l.undecodable);
    if (rc == EMPQ_OK)
        rc = prior_load(b, run);
    if (rc == EMPQ_OK)
        rc = load_batched(b, r);
    if (rc != EMPQ_OK) {
        empq_error_set(err, rc, "run %s: reading finished jobs: %s", run->id, empq_store_errstr(b->store));
        EMPQ_ERROR("event=run_load_failed run=%s error=\"%s\"", run->id, empq_store_errstr(b->store));
        bk__sched_run_remove(b->sched, run->id);
        return rc;
    }
    if (bk__runinfo_find(b->runinfo, r->id) == NULL) {
        bk__runinfo *ri = NULL;
        empq_error e = {0};
        if (bk__runinfo_load(b->store, run, &ri, &e) == EMPQ_OK) {
            ri->next = b->runinfo;
            b->runinfo = ri;
        } else {
            EMPQ_WARN("event=run_emotions_failed run=%s error=\"%s\" (status has no per-emotion counts)",
                      r->id, e.msg);
        }
    }
    bk__counts c = bk__jobtable_counts(r->table, UINT32_MAX);
    EMPQ_INFO("event=run_loaded run=%s state=%s jobs=%u models=%u samples=%u done=%u dead=%u pending=%u ms=%llu",
              r->id, protobuf_c_enum_descriptor_get_value(&empq__run_state__descriptor, (int)r->state)->name,
              bk__jobtable_total(r->table), r->n_models, r->samples, c.done, c.dead, c.pending,
              (unsigned long long)(empq_mono_ms() - t0));
    return EMPQ_OK;
}

static int load_run_id(bk__broker *b, const char *id, empq_error *err)
{
    Empq__Run *run = NULL;
    int rc = empq_store_run_get(b->store, id, &run);
    if (rc == EMPQ_ENOTFOUND)
        return empq_error_set(err, rc, "no run %s in Redis", id);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
    rc = load_run(b, run, err);
    empq__run__free_unpacked(run, NULL);
    return rc;
}

static int load_all(bk__broker *b, empq_error *err)
{
    char **ids = NULL;
    size_t n = 0;
    int rc = empq_store_run_list(b->store, &ids, &n);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "listing runs: %s", empq_store_errstr(b->store));
    for (size_t i = 0; i < n; i++) {
        Empq__Run *run = NULL;
        rc = empq_store_run_get(b->store, ids[i], &run);
        if (rc != EMPQ_OK) {
            EMPQ_WARN("event=run_skipped run=%s error=\"%s\"", ids[i], empq_store_errstr(b->store));
            continue;
        }
        Empq__RunState st = run->has_state ? run->state : EMPQ__RUN_STATE__RUN_ACTIVE;
        if (st == EMPQ__RUN_STATE__RUN_ACTIVE || st == EMPQ__RUN_STATE__RUN_PAUSED) {
            empq_error e = {0};
            load_run(b, run, &e); /* logged there; the others still load */
        }
        empq__run__free_unpacked(run, NULL);
    }
    empq_store_free_strings(ids, n);
    return EMPQ_OK;
}

/* A run the table says is finished, checked against Redis: a Redis that
 * crashed (not restarted) may have lost the last second of results whose
 * DONE already reached us. Then the run is loaded again from Redis, so
 * exactly the jobs without a result or dead letter are pending again.
 * Returns 1 when it was reloaded (r is gone), 0 when Redis agrees or cannot
 * tell (down: the next start checks again). */
static int reload_if_lost(bk__broker *b, bk__run *r)
{
    uint64_t results = 0, dead = 0;
    if (empq_store_counts(b->store, r->id, &results, &dead) != EMPQ_OK)
        return 0;
    uint32_t total = bk__jobtable_total(r->table);
    if (results + dead >= total)
        return 0;
    char id[160];
    snprintf(id, sizeof id, "%s", r->id);
    EMPQ_WARN("event=run_incomplete_in_redis run=%s total=%u results=%llu dead=%llu missing=%llu action=reload", id,
              total, (unsigned long long)results, (unsigned long long)dead,
              (unsigned long long)(total - results - dead));
    bk__sched_run_remove(b->sched, id);
    empq_error err = {0};
    if (load_run_id(b, id, &err) != EMPQ_OK)
        EMPQ_ERROR_LIMITED("run_reload_failed", "event=run_reload_failed run=%s error=\"%s\" (the next start loads it)",
                           id, err.msg);
    return 1;
}

static void finish_runs(bk__broker *b)
{
    for (bk__run *r = bk__sched_pop_finished(b->sched); r != NULL; r = bk__sched_pop_finished(b->sched)) {
        if (reload_if_lost(b, r))
            continue;
        int rc = empq_store_run_set_state(b->store, r->id, EMPQ__RUN_STATE__RUN_DONE);
        r->state = EMPQ__RUN_STATE__RUN_DONE;
        bk__counts c = bk__jobtable_counts(r->table, UINT32_MAX);
        uint64_t ms = r->started_ms != 0 && r->finished_ms > r->started_ms ? r->finished_ms - r->started_ms : 0;
        EMPQ_INFO("event=run_done run=%s total=%u done=%u dead=%u cache_hits=%u ms=%llu", r->id,
                  bk__jobtable_total(r->table), c.done, c.dead, c.cache_hits, (unsigned long long)ms);
        if (rc != EMPQ_OK)
            EMPQ_ERROR("event=run_state_failed run=%s state=RUN_DONE error=\"%s\" (the next start marks it)",
                       r->id, empq_store_errstr(b->store));
    }
}

/* ==================== workers' messages ==================== */

static void on_hello(bk__broker *b, const empq_wire_peer *p, const Empq__Hello *h, uint64_t now)
{
    unsigned w;
    size_t requeued = 0;
    int rc = bk__sched_worker_hello(b->sched, p->id, p->len, h, now, &w, &requeued);
    char id[160], host[160];
    empq_log_quote(id, sizeof id, h->worker_id);
    empq_log_quote(host, sizeof host, h->host != NULL ? h->host : "");
    if (rc != EMPQ_OK) {
        EMPQ_WARN_LIMITED("worker_refused", "event=worker_refused worker=%s error=%s", id, empq_strerror(rc));
        send_bye(b, p, 1, "broker cannot register this worker");
        return;
    }
    char models[512] = "*";
    size_t o = 0;
    for (size_t i = 0; i < h->n_models && o < sizeof models - 1; i++) {
        int k = snprintf(models + o, sizeof models - o, "%s%s", i ? "," : "", h->models[i]);
        if (k < 0)
            break;
        o += (size_t)k;
    }
    char mq[560];
    EMPQ_INFO("event=worker_hello worker=%s host=%s pid=%u credit=%u models=%s requeued=%zu", id, host,
              h->has_pid ? h->pid : 0, h->credit, empq_log_quote(mq, sizeof mq, models), requeued);
    Empq__Welcome wel = EMPQ__WELCOME__INIT;
    wel.has_heartbeat_ms = 1;
    wel.heartbeat_ms = b->o.heartbeat_ms;
    wel.has_lease_ms = 1;
    wel.lease_ms = b->o.lease_ms;
    Empq__BrokerMsg m = EMPQ__BROKER_MSG__INIT;
    m.body_case = EMPQ__BROKER_MSG__BODY_WELCOME;
    m.welcome = &wel;
    if (send_worker(b, w, &m) == EMPQ_EWIRE)
        drop_worker(b, w, "unreachable");
}

static void on_outcomes(bk__broker *b, int w, const Empq__Outcomes *os, uint64_t now)
{
    unsigned slot = w >= 0 ? (unsigned)w : BK_WORKER_NONE;
    size_t nr = 0;
    const char *retry_run = NULL;
    for (size_t i = 0; i < os->n_items; i++) {
        const Empq__Outcome *o = os->items[i];
        if (w < 0 && o->kind != EMPQ__OUTCOME_KIND__OUTCOME_DONE && o->kind != EMPQ__OUTCOME_KIND__OUTCOME_DEAD &&
            o->kind != EMPQ__OUTCOME_KIND__OUTCOME_BATCHED && !(o->has_from_batch && o->from_batch))
            continue; /* an unknown worker's retry or release: its lease is gone already (a batch's
                         outcomes hold whoever sends them) */
        bk__applied a = bk__sched_outcome(b->sched, slot, o, now);
        /* A RELEASED or a local-failure RETRY lease was taken back from the
         * job's lease count (bk__jobtable_uncount): it is neither an answered
         * lease nor a failed attempt. */
        int attempt = o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY && !(o->has_local_failure && o->local_failure);
        if (a == BK_APPLIED && o->run_id != NULL && attempt) {
            bk__prior *pr = prior_find(b, o->run_id);
            if (pr != NULL)
                oc_add(pr, o->job);
        }
        if (a == BK_APPLIED && attempt && o->run_id != NULL) {
            if (retry_run != NULL && (strcmp(retry_run, o->run_id) != 0 || nr == b->retry_cap)) {
                record_retries(b, retry_run, b->retry_jobs, nr);
                nr = 0;
            }
            if (nr == b->retry_cap) {
                size_t cap = b->retry_cap != 0 ? b->retry_cap * 2 : 256;
                uint32_t *v = realloc(b->retry_jobs, cap * sizeof *v);
                if (v != NULL) {
                    b->retry_jobs = v;
                    b->retry_cap = cap;
                }
            }
            if (nr < b->retry_cap) {
                retry_run = o->run_id;
                b->retry_jobs[nr++] = o->job;
            }
        }
        bk__run *orun = bk__sched_run_find(b->sched, o->run_id);
        if (orun != NULL && o->job < bk__jobtable_total(orun->table)) {
            uint32_t op, om, os_;
            bk__jobtable_split(orun->table, o->job, &op, &om, &os_);
            bk__metrics_outcome(b->metrics, orun->aliases[om], o, a);
        }
        b->outcomes++;
        b->ignored[a]++;
        if (a == BK_IGNORED_UNKNOWN_RUN || a == BK_IGNORED_BAD_JOB)
            EMPQ_DEBUG("event=outcome_ignored run=%s job=%u why=%s", o->run_id, o->job, bk__applied_str(a));
    }
    if (retry_run != NULL)
        record_retries(b, retry_run, b->retry_jobs, nr);
}

static void on_worker_msg(bk__broker *b, const empq_wire_peer *p, const Empq__WorkerMsg *m, uint64_t now)
{
    int w = bk__sched_worker_find(b->sched, p->id, p->len);
    if (w >= 0)
        bk__sched_worker(b->sched, (unsigned)w)->last_seen = now;
    switch (m->body_case) {
    case EMPQ__WORKER_MSG__BODY_HELLO:
        on_hello(b, p, m->hello, now);
        return;
    case EMPQ__WORKER_MSG__BODY_OUTCOMES:
        on_outcomes(b, w, m->outcomes, now);
        if (w < 0)
            send_bye(b, p, 1, "unknown worker: say hello");
        return;
    case EMPQ__WORKER_MSG__BODY_HEARTBEAT:
        if (w < 0)
            send_bye(b, p, 1, "unknown worker: say hello");
        else if (bk__sched_worker_unusable(b->sched, (unsigned)w, m->heartbeat) != EMPQ_OK)
            EMPQ_DEBUG("event=oom what=unusable_report"); /* its previous report stays */
        return;
    case EMPQ__WORKER_MSG__BODY_BYE:
        if (w >= 0) {
            bk__worker *x = bk__sched_worker(b->sched, (unsigned)w);
            char id[160], why[160];
            empq_log_quote(id, sizeof id, x->worker_id);
            empq_log_quote(why, sizeof why, m->bye->reason != NULL ? m->bye->reason : "");
            size_t n = bk__sched_worker_remove(b->sched, (unsigned)w);
            EMPQ_INFO("event=worker_bye worker=%s reason=%s requeued=%zu", id, why, n);
        }
        return;
    default:
        bad_message(b, "workers", p, "WorkerMsg without a body");
    }
}

static void drain_workers(bk__broker *b)
{
    for (int i = 0; i < BK_DRAIN_WORKER; i++) {
        empq_wire_peer p;
        ProtobufCMessage *msg = NULL;
        empq_error err = {0};
        int rc = empq_wire_recv_from(b->wsock, &p, &empq__worker_msg__descriptor, &msg, ZMQ_DONTWAIT, &err);
        if (rc == EMPQ_ETIMEOUT)
            return;
        if (rc == EMPQ_EPARSE) {
            bad_message(b, "workers", &p, err.msg);
            continue;
        }
        if (rc != EMPQ_OK) {
            EMPQ_ERROR_LIMITED("recv_failed/workers", "event=recv_failed socket=workers error=\"%s\"", err.msg);
            return;
        }
        on_worker_msg(b, &p, (const Empq__WorkerMsg *)msg, empq_mono_ms());
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

/* ==================== control ==================== */

/* A RunStatus for a loaded run; the caller frees what fill_status_free says. */
static void fill_status(const bk__run *r, Empq__RunStatus *st, Empq__ModelCounts *mc, Empq__ModelCounts **mp)
{
    empq__run_status__init(st);
    bk__counts c = bk__jobtable_counts(r->table, UINT32_MAX);
    st->run_id = r->id;
    st->has_state = 1;
    st->state = r->state;
    st->has_total = 1;
    st->total = bk__jobtable_total(r->table);
    st->has_pending = st->has_leased = st->has_done = st->has_dead = st->has_cache_hits = 1;
    st->pending = c.pending;
    st->leased = c.leased;
    st->has_batched = c.batched > 0;
    st->batched = c.batched;
    st->done = c.done;
    st->dead = c.dead;
    st->cache_hits = c.cache_hits;
    if (r->started_ms) {
        st->has_started_ms = 1;
        st->started_ms = r->started_ms;
    }
    if (r->finished_ms) {
        st->has_finished_ms = 1;
        st->finished_ms = r->finished_ms;
    }
    for (uint32_t m = 0; m < r->n_models; m++) {
        bk__counts k = bk__jobtable_counts(r->table, m);
        empq__model_counts__init(&mc[m]);
        mc[m].alias = r->aliases[m];
        mc[m].has_pending = mc[m].has_leased = mc[m].has_done = mc[m].has_dead = mc[m].has_cache_hits = 1;
        mc[m].pending = k.pending;
        mc[m].leased = k.leased;
        mc[m].has_batched = k.batched > 0;
        mc[m].batched = k.batched;
        mc[m].done = k.done;
        mc[m].dead = k.dead;
        mc[m].cache_hits = k.cache_hits;
        const bk__pace *pc = &r->pace[m];
        mc[m].has_tokens_in = mc[m].has_tokens_out = mc[m].has_cost = mc[m].has_stopped = 1;
        mc[m].tokens_in = pc->tok_in;
        mc[m].tokens_out = pc->tok_out;
        mc[m].cost = pc->cost;
        mc[m].stopped = pc->stopped;
        if (pc->stopped)
            mc[m].stop_reason = (char *)pc->stop_reason;
        mc[m].has_rate_factor = mc[m].has_rate_limited = 1;
        mc[m].rate_factor = pc->factor;
        mc[m].rate_limited = pc->limited;
        mp[m] = &mc[m];
    }
    st->n_models = r->n_models;
    st->models = mp;
}

/* Each model's mode and the prices its pace counts the cost at (the batch
 * prices in batch mode), as the run's spec gave them when it was loaded;
 * nothing for the human source, no prices when the spec gives none. The
 * strings are static. */
static void fill_prices(const bk__run *r, Empq__ModelCounts *mc)
{
    for (uint32_t m = 0; m < r->n_models; m++) {
        const bk__pace *pc = &r->pace[m];
        unsigned kind = r->source[m] & 3u;
        if (kind == BK_SOURCE_HUMAN)
            continue;
        mc[m].mode = (char *)(kind == BK_SOURCE_BATCH ? "batch" : "interactive");
        if (!(r->source[m] & BK_SOURCE_PRICED))
            continue;
        mc[m].has_price_in_per_mtok = mc[m].has_price_out_per_mtok = 1;
        mc[m].price_in_per_mtok = pc->price_in;
        mc[m].price_out_per_mtok = pc->price_out;
        if (pc->price_cached != pc->price_in) {
            mc[m].has_price_cached_in_per_mtok = 1;
            mc[m].price_cached_in_per_mtok = pc->price_cached;
        }
    }
}

/* Status of a run that is not loaded (finished or cancelled before this
 * broker started): from Redis, without per-model counts. */
static int status_from_store(bk__broker *b, const char *id, Empq__RunStatus *st, empq_error *err)
{
    Empq__Run *run = NULL;
    int rc = empq_store_run_get(b->store, id, &run);
    if (rc == EMPQ_ENOTFOUND)
        return empq_error_set(err, rc, "no run %s", id);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
    uint64_t done = 0, dead = 0;
    rc = empq_store_counts(b->store, id, &done, &dead);
    if (rc != EMPQ_OK) {
        empq__run__free_unpacked(run, NULL);
        return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
    }
    uint32_t samples = 1;
    for (size_t m = 0; m < run->spec->n_models; m++)
        if (run->spec->models[m]->has_samples && run->spec->models[m]->samples > samples)
            samples = run->spec->models[m]->samples;
    uint64_t total = (uint64_t)run->n_prompts * run->spec->n_models * samples;
    empq__run_status__init(st);
    st->run_id = (char *)id;
    st->has_state = 1;
    st->state = run->has_state ? run->state : EMPQ__RUN_STATE__RUN_ACTIVE;
    st->has_total = st->has_done = st->has_dead = st->has_pending = st->has_leased = 1;
    st->total = (uint32_t)total;
    st->done = (uint32_t)done;
    st->dead = (uint32_t)dead;
    st->pending = total > done + dead ? (uint32_t)(total - done - dead) : 0;
    st->leased = 0;
    empq__run__free_unpacked(run, NULL);
    return EMPQ_OK;
}

typedef struct bk__reply {
    Empq__ControlReply r;
    Empq__RunStatus *st;
    Empq__RunStatus **stp;
    Empq__ModelCounts *mc;
    Empq__ModelCounts **mcp;
    Empq__WorkerStatus *ws;
    Empq__WorkerStatus **wsp;
    void **owned; /* per-emotion arrays */
    size_t n_owned;
    char errbuf[EMPQ_ERROR_MSG_MAX];
} bk__reply;

static void reply_free(bk__reply *y)
{
    free(y->st);
    free(y->stp);
    free(y->mc);
    free(y->mcp);
    free(y->ws);
    free(y->wsp);
    for (size_t i = 0; i < y->n_owned; i++)
        free(y->owned[i]);
    free(y->owned);
}

static int reply_error(bk__reply *y, int rc, const empq_error *err)
{
    y->r.ok = 0;
    snprintf(y->errbuf, sizeof y->errbuf, "%s", err->msg[0] ? err->msg : empq_strerror(rc));
    y->r.error = y->errbuf;
    return rc;
}

/* Adds the per-emotion counts and parent of a loaded run to st (from its
 * runinfo; nothing when the emotions could not be read). */
static void fill_emotions(bk__broker *b, bk__reply *y, const bk__run *r, Empq__RunStatus *st)
{
    bk__runinfo *ri = bk__runinfo_find(b->runinfo, r->id);
    if (ri == NULL)
        return;
    st->parent = ri->parent;
    size_t n = ri->n_names + 1;
    void **owned = realloc(y->owned, (y->n_owned + 3) * sizeof *owned);
    if (owned == NULL)
        return;
    y->owned = owned;
    bk__counts *c = calloc(n, sizeof *c);
    Empq__EmotionCounts *ec = calloc(n, sizeof *ec);
    Empq__EmotionCounts **ecp = calloc(n, sizeof *ecp);
    y->owned[y->n_owned++] = c;
    y->owned[y->n_owned++] = ec;
    y->owned[y->n_owned++] = ecp;
    if (c == NULL || ec == NULL || ecp == NULL)
        return;
    bk__runinfo_counts(ri, r->table, c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == ri->n_names && c[i].pending + c[i].leased + c[i].batched + c[i].done + c[i].dead == 0)
            continue; /* every prompt has an emotion */
        empq__emotion_counts__init(&ec[k]);
        ec[k].emotion = i < ri->n_names ? ri->names[i] : (char *)"?";
        ec[k].has_pending = ec[k].has_leased = ec[k].has_done = ec[k].has_dead = 1;
        ec[k].pending = c[i].pending;
        ec[k].leased = c[i].leased + c[i].batched; /* in flight: with a worker or in a provider batch */
        ec[k].done = c[i].done;
        ec[k].dead = c[i].dead;
        ecp[k] = &ec[k];
        k++;
    }
    st->n_emotions = k;
    st->emotions = ecp;
}

/* Keeps p (may be NULL) to free with the reply; 0, or -1 (p freed) when
 * out of memory. */
static int reply_own(bk__reply *y, void *p)
{
    void **owned = p != NULL ? realloc(y->owned, (y->n_owned + 1) * sizeof *owned) : NULL;
    if (owned == NULL) {
        free(p);
        return -1;
    }
    y->owned = owned;
    y->owned[y->n_owned++] = p;
    return 0;
}

static int cmp_reason_count(const void *a, const void *b)
{
    const Empq__ReasonCount *x = *(Empq__ReasonCount *const *)a, *z = *(Empq__ReasonCount *const *)b;
    if (x->count != z->count)
        return x->count > z->count ? -1 : 1;
    return strcmp(x->reason, z->reason);
}

/* Adds each model's dead jobs by reason (most first) and the unusable
 * reports of the workers to the ModelCounts of a loaded run. */
static void fill_reasons(bk__reply *y, const bk__run *r, Empq__ModelCounts *mc)
{
    for (uint32_t m = 0; m < r->n_models; m++) {
        const bk__reasons *d = &r->dead_reasons[m];
        if (d->n > 0) {
            Empq__ReasonCount *rc = calloc(d->n, sizeof *rc);
            Empq__ReasonCount **rcp = calloc(d->n, sizeof *rcp);
            int ok = reply_own(y, rc) == 0;
            ok = reply_own(y, rcp) == 0 && ok;
            if (ok) {
                for (uint32_t i = 0; i < d->n; i++) {
                    empq__reason_count__init(&rc[i]);
                    rc[i].reason = (char *)d->key[i];
                    rc[i].has_count = 1;
                    rc[i].count = d->count[i];
                    rcp[i] = &rc[i];
                }
                qsort(rcp, d->n, sizeof *rcp, cmp_reason_count);
                mc[m].n_dead_reasons = d->n;
                mc[m].dead_reasons = rcp;
            }
        }
        const bk__pace *pc = &r->pace[m];
        if (pc->unusable[0] != '\0') {
            size_t len = strlen(pc->unusable) + 64;
            char *u = malloc(len);
            if (reply_own(y, u) == 0) {
                snprintf(u, len, "%s (%u of %u workers serving it)", pc->unusable, pc->unusable_workers,
                         pc->serving_workers);
                mc[m].unusable_reason = u;
            }
        }
    }
}

/* The open provider batches of run r (batch mode), from their records in
 * Redis; nothing when Redis does not answer. */
static void fill_batches(bk__broker *b, bk__reply *y, const bk__run *r, Empq__RunStatus *st)
{
    char **keys = NULL;
    size_t n = 0, idlen = strlen(r->id);
    if (empq_batchrec_open_keys(b->store, &keys, &n, NULL) != EMPQ_OK)
        return;
    size_t mine = 0;
    for (size_t i = 0; i < n; i++)
        mine += strncmp(keys[i], r->id, idlen) == 0 && keys[i][idlen] == ':';
    Empq__BatchStatus *bs = mine > 0 ? calloc(mine, sizeof *bs) : NULL;
    Empq__BatchStatus **bsp = mine > 0 ? calloc(mine, sizeof *bsp) : NULL;
    int ok = reply_own(y, bs) == 0;
    ok = reply_own(y, bsp) == 0 && ok && bs != NULL && bsp != NULL;
    size_t k = 0;
    for (size_t i = 0; ok && i < n; i++) {
        if (strncmp(keys[i], r->id, idlen) != 0 || keys[i][idlen] != ':')
            continue;
        empq_batchrec rec = {0};
        if (empq_batchrec_load(b->store, keys[i], &rec, NULL) != EMPQ_OK)
            continue;
        char *key = empq_strdup(rec.key), *pid = empq_strdup(rec.batch_id), *pst = empq_strdup(rec.provider_status);
        int owned = reply_own(y, key) == 0;
        owned = reply_own(y, pid) == 0 && owned;
        owned = reply_own(y, pst) == 0 && owned;
        if (owned && key != NULL && pid != NULL && pst != NULL) {
            Empq__BatchStatus *x = &bs[k];
            empq__batch_status__init(x);
            x->key = key;
            x->model = rec.model < r->n_models ? r->aliases[rec.model] : NULL;
            x->state = (char *)empq_batchrec_state_name(rec.state);
            x->provider_id = pid;
            x->provider_status = pst;
            x->has_requests = x->has_succeeded = x->has_failed = 1;
            x->requests = rec.total > 0 ? rec.total : (uint32_t)rec.n;
            x->succeeded = rec.succeeded;
            x->failed = rec.failed;
            x->has_created_ms = rec.created_ms > 0;
            x->created_ms = rec.created_ms;
            x->has_expires_ms = rec.expires_ms > 0;
            x->expires_ms = rec.expires_ms;
            bsp[k++] = x;
        }
        empq_batchrec_clear(&rec);
    }
    empq_store_free_strings(keys, n);
    st->n_batches = k;
    st->batches = k > 0 ? bsp : NULL;
}

/* Status of one loaded run, or of all of them (run NULL). */
static int reply_status(bk__broker *b, bk__reply *y, const char *id, empq_error *err)
{
    size_t nr = 0, nm = 0;
    size_t count = bk__sched_run_count(b->sched);
    for (size_t i = 0; i < count; i++) {
        bk__run *r = bk__sched_run_at(b->sched, i);
        if ((id != NULL && strcmp(r->id, id) != 0))
            continue;
        nr++;
        nm += r->n_models;
    }
    y->st = calloc(nr ? nr : 1, sizeof *y->st);
    y->stp = calloc(nr ? nr : 1, sizeof *y->stp);
    y->mc = calloc(nm ? nm : 1, sizeof *y->mc);
    y->mcp = calloc(nm ? nm : 1, sizeof *y->mcp);
    if (y->st == NULL || y->stp == NULL || y->mc == NULL || y->mcp == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    if (id != NULL && nr == 0) {
        int rc = status_from_store(b, id, &y->st[0], err);
        if (rc != EMPQ_OK)
            return rc;
        y->stp[0] = &y->st[0];
        y->r.n_runs = 1;
        y->r.runs = y->stp;
        return EMPQ_OK;
    }
    size_t k = 0, km = 0;
    for (size_t i = 0; i < count; i++) {
        bk__run *r = bk__sched_run_at(b->sched, i);
        if ((id != NULL && strcmp(r->id, id) != 0))
            continue;
        fill_status(r, &y->st[k], &y->mc[km], &y->mcp[km]);
        fill_prices(r, &y->mc[km]);
        fill_reasons(y, r, &y->mc[km]);
        fill_emotions(b, y, r, &y->st[k]);
        fill_batches(b, y, r, &y->st[k]);
        y->stp[k] = &y->st[k];
        km += r->n_models;
        k++;
    }
    y->r.n_runs = k;
    y->r.runs = y->stp;
    return EMPQ_OK;
}

static int reply_workers(bk__broker *b, bk__reply *y, empq_error *err)
{
    unsigned span = bk__sched_worker_span(b->sched);
    y->ws = calloc(span ? span : 1, sizeof *y->ws);
    y->wsp = calloc(span ? span : 1, sizeof *y->wsp);
    if (y->ws == NULL || y->wsp == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    size_t k = 0;
    for (unsigned w = 0; w < span; w++) {
        bk__worker *x = bk__sched_worker(b->sched, w);
        if (x == NULL)
            continue;
        Empq__WorkerStatus *s = &y->ws[k];
        empq__worker_status__init(s);
        s->worker_id = x->worker_id;
        s->host = x->host;
        s->has_pid = s->has_credit = s->has_in_flight = s->has_done = s->has_errors = 1;
        s->pid = x->pid;
        s->credit = x->credit;
        s->in_flight = bk__sched_in_flight(b->sched, w);
        s->done = x->done;
        s->errors = x->errors;
        s->n_models = x->n_models;
        s->models = x->models;
        Empq__ModelProblem **up = x->n_unusable > 0 ? calloc(x->n_unusable, sizeof *up) : NULL;
        if (up != NULL && reply_own(y, up) == 0) {
            for (size_t i = 0; i < x->n_unusable; i++)
                up[i] = &x->unusable[i];
            s->n_unusable = x->n_unusable;
            s->unusable = up;
        }
        y->wsp[k++] = s;
    }
    y->r.n_workers = k;
    y->r.workers = y->wsp;
    return EMPQ_OK;
}

static const char *state_name(Empq__RunState s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&empq__run_state__descriptor, (int)s);
    return v != NULL ? v->name : "?";
}

/* cancel, pause, resume: Redis first, then the dispatch follows. */
static int set_run_state(bk__broker *b, const char *id, Empq__RunState to, empq_error *err)
{
    bk__run *r = bk__sched_run_find(b->sched, id);
    if (r == NULL && to == EMPQ__RUN_STATE__RUN_ACTIVE) {
        int rc = load_run_id(b, id, err);
        if (rc != EMPQ_OK)
            return rc;
        r = bk__sched_run_find(b->sched, id);
    }
    if (r != NULL) {
        if (r->state == EMPQ__RUN_STATE__RUN_DONE)
            return empq_error_set(err, EMPQ_ESTATE, "run %s is done", id);
        if (r->state == EMPQ__RUN_STATE__RUN_CANCELLED && to != EMPQ__RUN_STATE__RUN_CANCELLED)
            return empq_error_set(err, EMPQ_ESTATE, "run %s is cancelled", id);
    } else {
        Empq__Run *run = NULL;
        int rc = empq_store_run_get(b->store, id, &run);
        if (rc == EMPQ_ENOTFOUND)
            return empq_error_set(err, rc, "no run %s", id);
        if (rc != EMPQ_OK)
            return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
        Empq__RunState st = run->has_state ? run->state : EMPQ__RUN_STATE__RUN_ACTIVE;
        empq__run__free_unpacked(run, NULL);
        if (st == EMPQ__RUN_STATE__RUN_DONE)
            return empq_error_set(err, EMPQ_ESTATE, "run %s is done", id);
    }
    int rc = empq_store_run_set_state(b->store, id, to);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
    Empq__RunState from = r != NULL ? r->state : to;
    if (r != NULL)
        r->state = to;
    EMPQ_INFO("event=run_state run=%s from=%s to=%s", id, state_name(from), state_name(to));
    return EMPQ_OK;
}

/* requeue_dead: the CLI deleted the dead letters of the jobs to run again;
 * the run is set ACTIVE in Redis and loaded again from Redis, so exactly the
 * jobs with neither a result nor a dead letter are pending. A run still in
 * progress loses its leases (their outcomes are still applied when they
 * come; a requeued job may run twice, which costs a cache hit at most). */
static int requeue_dead(bk__broker *b, const char *id, empq_error *err)
{
    Empq__Run *run = NULL;
    int rc = empq_store_run_get(b->store, id, &run);
    if (rc == EMPQ_ENOTFOUND)
        return empq_error_set(err, rc, "no run %s", id);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
    empq__run__free_unpacked(run, NULL);
    bk__run *r = bk__sched_run_find(b->sched, id);
    uint32_t dead_before = r != NULL ? bk__jobtable_counts(r->table, UINT32_MAX).dead : 0;
    rc = empq_store_run_set_state(b->store, id, EMPQ__RUN_STATE__RUN_ACTIVE);
    if (rc == EMPQ_OK)
        rc = empq_store_attempts_clear(b->store, id); /* the rerun jobs get every attempt again */
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", id, empq_store_errstr(b->store));
    if (r != NULL)
        bk__sched_run_remove(b->sched, id);
    rc = load_run_id(b, id, err);
    if (rc != EMPQ_OK)
        return rc;
    r = bk__sched_run_find(b->sched, id);
    bk__counts c = bk__jobtable_counts(r->table, UINT32_MAX);
    EMPQ_INFO("event=run_requeue_dead run=%s dead_before=%u dead=%u pending=%u", id, dead_before, c.dead,
              c.pending);
    return EMPQ_OK;
}

static void on_control(bk__broker *b, const empq_wire_peer *p, const Empq__ControlRequest *q)
{
    bk__reply y;
    memset(&y, 0, sizeof y);
    empq__control_reply__init(&y.r);
    y.r.ok = 1;
    empq_error err = {0};
    int rc = EMPQ_OK;
    switch (q->body_case) {
    case EMPQ__CONTROL_REQUEST__BODY_SUBMIT:
        rc = load_run_id(b, q->submit, &err);
        if (rc == EMPQ_OK)
            rc = reply_status(b, &y, q->submit, &err);
        break;
    case EMPQ__CONTROL_REQUEST__BODY_STATUS:
        rc = reply_status(b, &y, q->status[0] != '\0' ? q->status : NULL, &err);
        break;
    case EMPQ__CONTROL_REQUEST__BODY_CANCEL:
        rc = set_run_state(b, q->cancel, EMPQ__RUN_STATE__RUN_CANCELLED, &err);
        break;
    case EMPQ__CONTROL_REQUEST__BODY_PAUSE:
        rc = set_run_state(b, q->pause, EMPQ__RUN_STATE__RUN_PAUSED, &err);
        break;
    case EMPQ__CONTROL_REQUEST__BODY_RESUME:
        rc = set_run_state(b, q->resume, EMPQ__RUN_STATE__RUN_ACTIVE, &err);
        break;
    case EMPQ__CONTROL_REQUEST__BODY_REQUEUE_DEAD:
        rc = requeue_dead(b, q->requeue_dead, &err);
        if (rc == EMPQ_OK)
            rc = reply_status(b, &y, q->requeue_dead, &err);
        break;
    case EMPQ__CONTROL_REQUEST__BODY_PING:
        break;
    case EMPQ__CONTROL_REQUEST__BODY_WORKERS:
        rc = reply_workers(b, &y, &err);
        break;
    default:
        bad_message(b, "control", p, "ControlRequest without a known body");
        rc = empq_error_set(&err, EMPQ_EINVAL, "unknown control request");
    }
    if (rc != EMPQ_OK) {
        reply_error(&y, rc, &err);
        y.r.n_runs = 0;
        y.r.n_workers = 0;
    }
    if (empq_wire_send_to(b->csock, p, &y.r.base, ZMQ_DONTWAIT) != EMPQ_OK)
        EMPQ_WARN_LIMITED("control_reply_failed", "event=control_reply_failed");
    reply_free(&y);
}

static void drain_control(bk__broker *b)
{
    for (int i = 0; i < BK_DRAIN_CONTROL; i++) {
        empq_wire_peer p;
        ProtobufCMessage *msg = NULL;
        empq_error err = {0};
        int rc = empq_wire_recv_from(b->csock, &p, &empq__control_request__descriptor, &msg, ZMQ_DONTWAIT,
                                     &err);
        if (rc == EMPQ_ETIMEOUT)
            return;
        if (rc == EMPQ_EPARSE) {
            bad_message(b, "control", &p, err.msg);
            if (p.len > 0) { /* a REQ client waits for an answer */
                Empq__ControlReply r = EMPQ__CONTROL_REPLY__INIT;
                r.ok = 0;
                r.error = (char *)"malformed control request";
                empq_wire_send_to(b->csock, &p, &r.base, ZMQ_DONTWAIT);
            }
            continue;
        }
        if (rc != EMPQ_OK) {
            EMPQ_ERROR_LIMITED("recv_failed/control", "event=recv_failed socket=control error=\"%s\"", err.msg);
            return;
        }
        on_control(b, &p, (const Empq__ControlRequest *)msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

/* ==================== the loop ==================== */

static int open_socket(bk__broker *b, void **out, const char *ep, empq_error *err)
{
    void *s = zmq_socket(b->zctx, ZMQ_ROUTER);
    if (s == NULL)
        return empq_error_set(err, EMPQ_EWIRE, "socket: %s", zmq_strerror(errno));
    int one = 1, linger = 500, hwm = 100000;
    int64_t maxsz = 2 * (int64_t)EMPQ_WIRE_MAX_MSG; /* beyond it the peer is cut off */
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsz, sizeof maxsz);
    empq_curve_opts co = {b->o.curve_secret, NULL, b->o.curve_allow};
    int crc = empq_curve_server_setup(s, &co, err);
    if (crc != EMPQ_OK) {
        zmq_close(s);
        return crc;
    }
    char addr[512]; /* ZeroMQ binds IP literals: localhost becomes 127.0.0.1 */
    if (empq_endpoint_resolve(ep, addr, sizeof addr) == NULL || zmq_bind(s, addr) != 0) {
        int rc = empq_error_set(err, EMPQ_EWIRE, "cannot bind %s: %s", ep,
                                addr[0] != '\0' ? zmq_strerror(errno) : "endpoint too long");
        zmq_close(s);
        return rc;
    }
    *out = s;
    return EMPQ_OK;
}

static int poll_timeout(bk__broker *b, uint64_t now, int more)
{
    if (more)
        return 0;
    uint64_t next = bk__sched_next_deadline(b->sched);
    if (next == UINT64_MAX)
        return -1;
    if (next <= now)
        return 0;
    uint64_t d = next - now;
    return d > INT_MAX ? INT_MAX : (int)d;
}

/* Renders the metrics for the scrape that waits (loop thread). */
static void publish_metrics(bk__broker *b)
{
    bk__metrics_broker mb = {b->dispatched, b->outcomes, b->bad_msgs, b->started_wall, 0, 0, 0};
    if (b->zap != NULL) {
        size_t keys = 0;
        empq_curve_zap_stats(b->zap, &mb.curve_allowed, &mb.curve_refused, &keys);
        mb.curve_keys = keys;
    }
    size_t len = 0;
    char *text = bk__metrics_render(b->metrics, b->sched, &mb, &len);
    bk__metrics_http_publish(b->metrics, text, len);
}

static void serve(bk__broker *b, volatile sig_atomic_t *stop)
{
    /* the ZAP handler is answered here, in the loop: a handshake waits for
     * at most one turn, and the allow-list needs no lock */
    zmq_pollitem_t items[4] = {{b->wsock, 0, ZMQ_POLLIN, 0},
                               {b->csock, 0, ZMQ_POLLIN, 0},
                               {NULL, empq_wake_fd(), ZMQ_POLLIN, 0},
                               {b->zap != NULL ? empq_curve_zap_socket(b->zap) : NULL, 0, ZMQ_POLLIN, 0}};
    int nitems = b->zap != NULL ? 4 : 3;
    int more = 0;
    unsigned first = 0; /* the worker slot dispatched first in a turn */
    while (!*stop) {
        uint64_t now = empq_mono_ms();
        int rc = zmq_poll(items, nitems, poll_timeout(b, now, more));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            EMPQ_ERROR("event=poll_failed error=\"%s\"", zmq_strerror(errno));
            return;
        }
        if (items[0].revents & ZMQ_POLLIN)
            drain_workers(b);
        if (items[1].revents & ZMQ_POLLIN)
            drain_control(b);
        if (items[2].revents & ZMQ_POLLIN)
            empq_wake_drain();
        if (nitems > 3 && (items[3].revents & ZMQ_POLLIN))
            empq_curve_zap_handle(b->zap);
        now = empq_mono_ms();
        bk__tick t;
        bk__sched_tick(b->sched, now, &t);
        finish_runs(b);
        if (now >= b->batched_check_at) {
            b->batched_check_at = now + BK_BATCHED_CHECK_MS;
            check_batched(b, now);
        }
        if (bk__metrics_http_pending(b->metrics))
            publish_metrics(b);
        more = 0;
        unsigned span = bk__sched_worker_span(b->sched);
        /* each turn starts with the next worker: with fewer ready jobs than
         * free credit the first one would otherwise take them all, turn
         * after turn, and the others would never see (nor check) the run */
        first = span > 0 ? (first + 1) % span : 0;
        for (unsigned k = 0; k < span; k++) {
            unsigned w = (first + k) % span;
            bk__worker *x = bk__sched_worker(b->sched, w);
            if (x == NULL)
                continue;
            more |= dispatch_one(b, w, now);
            x = bk__sched_worker(b->sched, w);
            if (x != NULL && now >= x->last_sent + b->o.heartbeat_ms)
                send_heartbeat(b, w, now);
        }
    }
}

static void shutdown_workers(bk__broker *b)
{
    unsigned span = bk__sched_worker_span(b->sched);
    size_t n = 0;
    for (unsigned w = 0; w < span; w++) {
        bk__worker *x = bk__sched_worker(b->sched, w);
        if (x == NULL)
            continue;
        empq_wire_peer p;
        memcpy(p.id, x->ident, x->ident_len);
        p.len = x->ident_len;
        p.delimited = 0;
        send_bye(b, &p, 0, "broker stopping");
        n++;
    }
    EMPQ_INFO("event=broker_stopping workers=%zu dispatched=%llu outcomes=%llu bad_messages=%llu", n,
              (unsigned long long)b->dispatched, (unsigned long long)b->outcomes,
              (unsigned long long)b->bad_msgs);
}

static void broker_close(bk__broker *b)
{
    empq_wake_close();
    if (b->wsock != NULL)
        zmq_close(b->wsock);
    if (b->csock != NULL)
        zmq_close(b->csock);
    empq_curve_zap_close(&b->zap);
    if (b->zctx != NULL)
        zmq_ctx_term(b->zctx);
    bk__metrics_free(&b->metrics);
    while (b->runinfo != NULL) {
        bk__runinfo *next = b->runinfo->next;
        bk__runinfo_free(&b->runinfo);
        b->runinfo = next;
    }
    while (b->prior != NULL)
        prior_drop(b, b->prior->run_id);
    free(b->retry_jobs);
    bk__sched_free(&b->sched);
    empq_store_close(&b->store);
    free(b->jobs);
    free(b->job_msgs);
    free(b->job_ptrs);
}

int bk__broker_run(const bk__broker_opts *o, volatile sig_atomic_t *stop, empq_error *err)
{
    bk__broker b;
    memset(&b, 0, sizeof b);
    b.o = *o;
    b.started_wall = empq_now_ms();
    int rc = EMPQ_OK;
    const char *eps[2] = {o->bind, o->control};
    for (int i = 0; i < 2; i++) {
        if (!bk__broker_endpoint_is_local(eps[i]) && !o->insecure && o->curve_secret == NULL) {
            rc = empq_error_set(err, EMPQ_EINVAL,
                                "endpoint %s is not on loopback; without CURVE keys (--curve-secret, "
                                "--curve-allow) the broker has no authentication, so pass --insecure to "
                                "listen there", eps[i]);
            EMPQ_ERROR("event=start_failed error=\"%s\"", err != NULL ? err->msg : "");
            return rc;
        }
        if (!bk__broker_endpoint_is_local(eps[i]) && o->curve_secret == NULL)
            EMPQ_WARN("event=insecure endpoint=%s (no authentication: anyone who reaches it can take jobs)",
                      eps[i]);
    }
    if (bk__metrics_new(&b.metrics) != EMPQ_OK) /* after the checks that return at once */
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    bk__sched_opts so;
    bk__sched_opts_default(&so);
    so.heartbeat_ms = o->heartbeat_ms;
    so.lease_ms = o->lease_ms;
    if (bk__sched_new(&b.sched, &so) != EMPQ_OK || grow_scratch(&b, so.max_batch) != EMPQ_OK) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "out of memory");
        goto out;
    }
    /* Redis may come up after us: try again with backoff (250 ms doubling
     * to 5 s) until stopped; a bad URL ends the start at once. */
    for (uint32_t wait_ms = 250, tries = 1;; tries++) {
        rc = empq_store_open(&b.store, o->redis_url, 5000, err);
        if (rc == EMPQ_OK) {
            if (tries > 1)
                EMPQ_INFO("event=redis_up url=%s tries=%u", empq_store_url(b.store), tries);
            break;
        }
        if (rc != EMPQ_ESTORE || *stop) {
            empq_error_prefix(err, "cannot reach Redis: "); /* err names the URL, password masked */
            goto out;
        }
        if (tries == 1)
            EMPQ_WARN("event=redis_unreachable error=\"%s\" action=retry", err != NULL ? err->msg : "");
        struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a signal cuts it short */
        wait_ms = wait_ms * 2 > 5000 ? 5000 : wait_ms * 2;
    }
    b.zctx = zmq_ctx_new();
    if (b.zctx == NULL)
        rc = empq_error_set(err, EMPQ_EWIRE, "zmq context: %s", zmq_strerror(errno));
    if (rc == EMPQ_OK && o->curve_secret != NULL) /* the ZAP handler binds before the servers */
        rc = empq_curve_zap_open(&b.zap, b.zctx, o->curve_allow, err);
    if (rc == EMPQ_OK)
        rc = open_socket(&b, &b.wsock, o->bind, err);
    if (rc == EMPQ_OK)
        rc = open_socket(&b, &b.csock, o->control, err);
    if (rc == EMPQ_OK)
        rc = empq_wake_open(err);
    if (rc != EMPQ_OK)
        goto out;
    rc = load_all(&b, err);
    if (rc != EMPQ_OK)
        goto out;
    if (o->metrics != NULL) {
        rc = bk__metrics_http_start(b.metrics, o->metrics, bk__broker_wake, err);
        if (rc != EMPQ_OK)
            goto out;
        EMPQ_INFO("event=metrics_listening addr=%s port=%u path=/metrics", o->metrics,
                  bk__metrics_http_port(b.metrics));
    }
    char rq[256];
    size_t curve_keys = 0;
    if (b.zap != NULL)
        empq_curve_zap_stats(b.zap, NULL, NULL, &curve_keys);
    EMPQ_INFO("event=broker_started bind=%s control=%s redis=%s heartbeat_ms=%u lease_ms=%u runs=%zu curve=%s "
              "allowed_keys=%zu",
              o->bind, o->control, empq_log_quote(rq, sizeof rq, empq_store_url(b.store)), o->heartbeat_ms,
              o->lease_ms, bk__sched_run_count(b.sched), b.zap != NULL ? "on" : "off", curve_keys);
    serve(&b, stop);
    shutdown_workers(&b);
out:
    if (rc != EMPQ_OK)
        EMPQ_ERROR("event=start_failed error=\"%s\"", err != NULL ? err->msg : empq_strerror(rc));
    broker_close(&b);
    return rc;
}
