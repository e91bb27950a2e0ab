/* jobtable.c: the jobs of one run, their states, queues, leases and heaps.
 * See jobtable.h for the state machine. */
#include "jobtable.h"

#include <stdlib.h>
#include <string.h>

/* One job: 24 bytes. Which links are in use depends on the state:
 *   pending, ready:   next/prev in its model's queue; hpos NONE
 *   pending, delayed: hpos in the delayed heap, t = not-before; no links
 *   leased:           next/prev in its worker's lease list; hpos in the
 *                     lease heap, t = deadline
 *   batched:          hpos in the lease heap, t = deadline; no links, no
 *                     worker
 *   done, dead:       nothing. */
typedef struct bk__job {
    uint64_t t;
    uint32_t next;
    uint32_t prev;
    uint32_t hpos;
    uint16_t worker;
    uint8_t state;
    uint8_t attempts;
} bk__job;

_Static_assert(sizeof(bk__job) == 24, "a job record is 24 bytes");

typedef struct bk__list {
    uint32_t head;
    uint32_t tail;
} bk__list;

/* A min-heap of job indices keyed by the jobs' t (ties by index). */
typedef struct bk__heap {
    uint32_t *v;
    size_t n;
    size_t cap;
} bk__heap;

struct bk__jobtable {
    uint32_t total;
    uint32_t n_models;
    uint32_t samples;
    uint32_t rr;            /* the model bk__jobtable_take starts after */
    bk__job *jobs;
    bk__list *queues;       /* per model: ready pending jobs; requeued ones first, then fresh ones, each FIFO */
    uint32_t *rtail;        /* per model: the last requeued job at the front of its queue, NONE when none */
    bk__counts *mcounts;    /* per model */
    uint32_t *limits;       /* per model: max leased, 0 = no cap */
    bk__counts counts;      /* the run */
    bk__heap delayed;       /* pending jobs by not-before */
    bk__heap leases;        /* leased and batched jobs by deadline */
    bk__list *wlists;       /* per worker slot: leased jobs, oldest first */
    uint32_t *wcount;       /* per worker slot: how many */
    uint32_t *wmcount;      /* per worker slot x model: how many of that model */
    unsigned wcap;          /* slots allocated in wlists and wcount */
};

const char *bk__job_state_str(int state)
{
    switch (state) {
    case BK_JOB_PENDING: return "pending";
    case BK_JOB_LEASED: return "leased";
    case BK_JOB_DONE: return "done";
    case BK_JOB_DEAD: return "dead";
    case BK_JOB_BATCHED: return "batched";
    default: return "unknown";
    }
}

/* ==================== construction ==================== */

int bk__jobtable_new(bk__jobtable **out, uint32_t n_prompts, uint32_t n_models, uint32_t samples,
                     empq_error *err)
{
    *out = NULL;
    uint64_t total = (uint64_t)n_prompts * n_models * samples;
    if (total == 0 || total >= BK_JOB_NONE)
        return empq_error_set(err, EMPQ_EINVAL, "job table: %u prompts x %u models x %u samples is %llu jobs "
                              "(must be 1..%u)", n_prompts, n_models, samples, (unsigned long long)total,
                              BK_JOB_NONE - 1);
    bk__jobtable *t = calloc(1, sizeof *t);
    if (t == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "job table: out of memory");
    t->total = (uint32_t)total;
    t->n_models = n_models;
    t->samples = samples;
    t->rr = n_models - 1;
    t->jobs = malloc(sizeof *t->jobs * total);
    t->queues = malloc(sizeof *t->queues * n_models);
    t->rtail = malloc(sizeof *t->rtail * n_models);
    t->mcounts = calloc(n_models, sizeof *t->mcounts);
    t->limits = calloc(n_models, sizeof *t->limits);
    if (t->jobs == NULL || t->queues == NULL || t->rtail == NULL || t->mcounts == NULL || t->limits == NULL) {
        bk__jobtable_free(&t);
        return empq_error_set(err, EMPQ_ENOMEM, "job table: out of memory for %llu jobs",
                              (unsigned long long)total);
    }
    for (uint32_t m = 0; m < n_models; m++) {
        t->queues[m].head = t->queues[m].tail = BK_JOB_NONE;
        t->rtail[m] = BK_JOB_NONE;
    }
    /* Queue every job on its model in index order (prompt order). */
    for (uint32_t j = 0; j < t->total; j++) {
        uint32_t m = (j / samples) % n_models;
        bk__job *x = &t->jobs[j];
        x->t = 0;
        x->next = BK_JOB_NONE;
        x->prev = t->queues[m].tail;
        x->hpos = BK_JOB_NONE;
        x->worker = BK_WORKER_NONE;
        x->state = BK_JOB_PENDING;
        x->attempts = 0;
        if (t->queues[m].tail != BK_JOB_NONE)
            t->jobs[t->queues[m].tail].next = j;
        else
            t->queues[m].head = j;
        t->queues[m].tail = j;
        t->mcounts[m].pending++;
        t->mcounts[m].ready++;
    }
    t->counts.pending = t->counts.ready = t->total;
    *out = t;
    return EMPQ_OK;
}

void bk__jobtable_free(bk__jobtable **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    bk__jobtable *t = *tp;
    free(t->jobs);
    free(t->queues);
    free(t->rtail);
    free(t->mcounts);
    free(t->limits);
    free(t->delayed.v);
    free(t->leases.v);
    free(t->wlists);
    free(t->wcount);
    free(t->wmcount);
    free(t);
    *tp = NULL;
}

uint32_t bk__jobtable_total(const bk__jobtable *t) { return t->total; }
uint32_t bk__jobtable_n_models(const bk__jobtable *t) { return t->n_models; }
uint32_t bk__jobtable_samples(const bk__jobtable *t) { return t->samples; }

static uint32_t model_of(const bk__jobtable *t, uint32_t job)
{
    return (job / t->samples) % t->n_models;
}

void bk__jobtable_split(const bk__jobtable *t, uint32_t job, uint32_t *prompt, uint32_t *model, uint32_t *sample)
{
    *sample = job % t->samples;
    *model = (job / t->samples) % t->n_models;
    *prompt = job / t->samples / t->n_models;
}

size_t bk__jobtable_memory(const bk__jobtable *t)
{
    return sizeof *t + sizeof *t->jobs * (size_t)t->total +
           (sizeof *t->queues + sizeof *t->rtail + sizeof *t->mcounts + sizeof *t->limits) * (size_t)t->n_models +
           sizeof(uint32_t) * (t->delayed.cap + t->leases.cap) +
           (sizeof *t->wlists + sizeof *t->wcount + sizeof *t->wmcount * (size_t)t->n_models) * (size_t)t->wcap;
}

/* ==================== reading ==================== */

int bk__jobtable_state(const bk__jobtable *t, uint32_t job)
{
    return job < t->total ? t->jobs[job].state : EMPQ_EINVAL;
}

unsigned bk__jobtable_attempts(const bk__jobtable *t, uint32_t job)
{
    return job < t->total ? t->jobs[job].attempts : 0;
}

int bk__jobtable_uncount(bk__jobtable *t, uint32_t job)
{
    if (job >= t->total)
        return EMPQ_EINVAL;
    if (t->jobs[job].attempts == 0)
        return EMPQ_ESTATE;
    t->jobs[job].attempts--;
    return EMPQ_OK;
}

unsigned bk__jobtable_worker(const bk__jobtable *t, uint32_t job)
{
    return job < t->total ? t->jobs[job].worker : BK_WORKER_NONE;
}

uint64_t bk__jobtable_time(const bk__jobtable *t, uint32_t job)
{
    if (job >= t->total)
        return 0;
    const bk__job *x = &t->jobs[job];
    if (x->state == BK_JOB_LEASED || x->state == BK_JOB_BATCHED ||
        (x->state == BK_JOB_PENDING && x->hpos != BK_JOB_NONE))
        return x->t;
    return 0;
}

bk__counts bk__jobtable_counts(const bk__jobtable *t, uint32_t m)
{
    if (m < t->n_models)
        return t->mcounts[m];
    return t->counts;
}

int bk__jobtable_finished(const bk__jobtable *t)
{
    return (uint64_t)t->counts.done + t->counts.dead == t->total;
}

uint32_t bk__jobtable_worker_leased(const bk__jobtable *t, unsigned w)
{
    return w < t->wcap ? t->wcount[w] : 0;
}

uint32_t bk__jobtable_worker_model_leased(const bk__jobtable *t, unsigned w, uint32_t m)
{
    return w < t->wcap && m < t->n_models ? t->wmcount[(size_t)w * t->n_models + m] : 0;
}

void bk__jobtable_set_model_limit(bk__jobtable *t, uint32_t m, uint32_t max_leased)
{
    if (m < t->n_models)
        t->limits[m] = max_leased;
}

/* ==================== heaps ==================== */

static int heap_less(const bk__jobtable *t, uint32_t a, uint32_t b)
{
    uint64_t ta = t->jobs[a].t, tb = t->jobs[b].t;
    return ta < tb || (ta == tb && a < b);
}

static void heap_place(bk__jobtable *t, bk__heap *h, size_t i, uint32_t job)
{
    h->v[i] = job;
    t->jobs[job].hpos = (uint32_t)i;
}

static void heap_up(bk__jobtable *t, bk__heap *h, size_t i)
{
    uint32_t job = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(t, job, h->v[p]))
            break;
        heap_place(t, h, i, h->v[p]);
        i = p;
    }
    heap_place(t, h, i, job);
}

static void heap_down(bk__jobtable *t, bk__heap *h, size_t i)
{
    uint32_t job = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_less(t, h->v[c + 1], h->v[c]))
            c++;
        if (!heap_less(t, h->v[c], job))
            break;
        heap_place(t, h, i, h->v[c]);
        i = c;
    }
    heap_place(t, h, i, job);
}

static int heap_push(bk__jobtable *t, bk__heap *h, uint32_t job)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        uint32_t *v = realloc(h->v, cap * sizeof *v);
        if (v == NULL)
            return EMPQ_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    h->n++;
    h->v[h->n - 1] = job;
    heap_up(t, h, h->n - 1);
    return EMPQ_OK;
}

static void heap_remove(bk__jobtable *t, bk__heap *h, uint32_t job)
{
    size_t i = t->jobs[job].hpos;
    t->jobs[job].hpos = BK_JOB_NONE;
    h->n--;
    if (i == h->n)
        return;
    uint32_t last = h->v[h->n];
    heap_place(t, h, i, last);
    if (i > 0 && heap_less(t, last, h->v[(i - 1) / 2]))
        heap_up(t, h, i);
    else
        heap_down(t, h, i);
}

/* Makes room in a heap for every job that could enter it, so that the
 * transitions after this never fail half way. */
static int heap_reserve(bk__heap *h, size_t need)
{
    if (need <= h->cap)
        return EMPQ_OK;
    size_t cap = h->cap ? h->cap : 64;
    while (cap < need)
        cap *= 2;
    uint32_t *v = realloc(h->v, cap * sizeof *v);
    if (v == NULL)
        return EMPQ_ENOMEM;
    h->v = v;
    h->cap = cap;
    return EMPQ_OK;
}

/* ==================== lists ==================== */

static void list_push_tail(bk__jobtable *t, bk__list *l, uint32_t job)
{
    bk__job *x = &t->jobs[job];
    x->next = BK_JOB_NONE;
    x->prev = l->tail;
    if (l->tail != BK_JOB_NONE)
        t->jobs[l->tail].next = job;
    else
        l->head = job;
    l->tail = job;
}

/* Links job into l right after `after` (at the head when after is NONE). */
static void list_insert_after(bk__jobtable *t, bk__list *l, uint32_t after, uint32_t job)
{
    bk__job *x = &t->jobs[job];
    x->prev = after;
    x->next = after != BK_JOB_NONE ? t->jobs[after].next : l->head;
    if (x->next != BK_JOB_NONE)
        t->jobs[x->next].prev = job;
    else
        l->tail = job;
    if (after != BK_JOB_NONE)
        t->jobs[after].next = job;
    else
        l->head = job;
}

static void list_remove(bk__jobtable *t, bk__list *l, uint32_t job)
{
    bk__job *x = &t->jobs[job];
    if (x->prev != BK_JOB_NONE)
        t->jobs[x->prev].next = x->next;
    else
        l->head = x->next;
    if (x->next != BK_JOB_NONE)
        t->jobs[x->next].prev = x->prev;
    else
        l->tail = x->prev;
    x->next = x->prev = BK_JOB_NONE;
}

static int worker_slots(bk__jobtable *t, unsigned w)
{
    if (w < t->wcap)
        return EMPQ_OK;
    unsigned cap = t->wcap ? t->wcap : 8;
    while (cap <= w)
        cap *= 2;
    bk__list *l = realloc(t->wlists, cap * sizeof *l);
    if (l == NULL)
        return EMPQ_ENOMEM;
    t->wlists = l;
    uint32_t *c = realloc(t->wcount, cap * sizeof *c);
    if (c == NULL)
        return EMPQ_ENOMEM;
    t->wcount = c;
    uint32_t *mc = realloc(t->wmcount, (size_t)cap * t->n_models * sizeof *mc);
    if (mc == NULL)
        return EMPQ_ENOMEM;
    t->wmcount = mc;
    memset(mc + (size_t)t->wcap * t->n_models, 0, (size_t)(cap - t->wcap) * t->n_models * sizeof *mc);
    for (unsigned i = t->wcap; i < cap; i++) {
        t->wlists[i].head = t->wlists[i].tail = BK_JOB_NONE;
        t->wcount[i] = 0;
    }
    t->wcap = cap;
    return EMPQ_OK;
}

/* ==================== leaving and entering a state ==================== */

/* Takes a job out of whatever queue, list or heap its state keeps it in and
 * out of the counters of its state. The state field is left as it was. */
static void detach(bk__jobtable *t, uint32_t job)
{
    bk__job *x = &t->jobs[job];
    uint32_t m = model_of(t, job);
    switch (x->state) {
    case BK_JOB_PENDING:
        if (x->hpos != BK_JOB_NONE) {
            heap_remove(t, &t->delayed, job);
        } else {
            if (t->rtail[m] == job) /* the front section is a prefix: its new last is the one before */
                t->rtail[m] = x->prev;
            list_remove(t, &t->queues[m], job);
            t->mcounts[m].ready--;
            t->counts.ready--;
        }
        t->mcounts[m].pending--;
        t->counts.pending--;
        break;
    case BK_JOB_LEASED:
        heap_remove(t, &t->leases, job);
        list_remove(t, &t->wlists[x->worker], job);
        t->wcount[x->worker]--;
        t->wmcount[(size_t)x->worker * t->n_models + m]--;
        t->mcounts[m].leased--;
        t->counts.leased--;
        x->worker = BK_WORKER_NONE;
        break;
    case BK_JOB_BATCHED:
        heap_remove(t, &t->leases, job);
        t->mcounts[m].batched--;
        t->counts.batched--;
        break;
    default:
        break;
    }
}

/* Makes a detached job pending: ready when not_before <= now, else delayed.
 * Every job that comes here was tried or handed out before (a retry whose
 * backoff passed, an expired lease, a lost worker, a release), so a ready
 * one goes to the end of the front section of its model's queue: ahead of
 * the jobs never tried, behind the jobs requeued before it. The delayed
 * heap must have room. */
static void attach_pending(bk__jobtable *t, uint32_t job, uint64_t now, uint64_t not_before)
{
    bk__job *x = &t->jobs[job];
    uint32_t m = model_of(t, job);
    x->state = BK_JOB_PENDING;
    x->worker = BK_WORKER_NONE;
    if (not_before > now) {
        x->t = not_before;
        x->next = x->prev = BK_JOB_NONE;
        heap_push(t, &t->delayed, job); /* room reserved by the caller */
    } else {
        x->t = 0;
        x->hpos = BK_JOB_NONE;
        list_insert_after(t, &t->queues[m], t->rtail[m], job);
        t->rtail[m] = job;
        t->mcounts[m].ready++;
        t->counts.ready++;
    }
    t->mcounts[m].pending++;
    t->counts.pending++;
}

/* ==================== transitions ==================== */

int bk__jobtable_lease(bk__jobtable *t, uint32_t job, unsigned w, uint64_t deadline)
{
    if (job >= t->total || w >= BK_WORKER_MAX)
        return EMPQ_EINVAL;
    bk__job *x = &t->jobs[job];
    if (x->state != BK_JOB_PENDING)
        return EMPQ_ESTATE;
    if (worker_slots(t, w) != EMPQ_OK || heap_reserve(&t->leases, t->leases.n + 1) != EMPQ_OK)
        return EMPQ_ENOMEM;
    detach(t, job);
    uint32_t m = model_of(t, job);
    x->state = BK_JOB_LEASED;
    x->worker = (uint16_t)w;
    x->t = deadline;
    if (x->attempts < UINT8_MAX)
        x->attempts++;
    list_push_tail(t, &t->wlists[w], job);
    t->wcount[w]++;
    t->wmcount[(size_t)w * t->n_models + m]++;
    heap_push(t, &t->leases, job);
    t->mcounts[m].leased++;
    t->counts.leased++;
    return EMPQ_OK;
}

int bk__jobtable_requeue(bk__jobtable *t, uint32_t job, uint64_t now, uint64_t not_before, unsigned *was_worker)
{
    if (was_worker != NULL)
        *was_worker = BK_WORKER_NONE;
    if (job >= t->total)
        return EMPQ_EINVAL;
    bk__job *x = &t->jobs[job];
    if (x->state != BK_JOB_LEASED && x->state != BK_JOB_BATCHED)
        return EMPQ_ESTATE;
    if (not_before > now && heap_reserve(&t->delayed, t->delayed.n + 1) != EMPQ_OK)
        return EMPQ_ENOMEM;
    if (was_worker != NULL)
        *was_worker = x->worker;
    detach(t, job);
    attach_pending(t, job, now, not_before);
    return EMPQ_OK;
}

int bk__jobtable_batch(bk__jobtable *t, uint32_t job, uint64_t deadline)
{
    if (job >= t->total)
        return EMPQ_EINVAL;
    bk__job *x = &t->jobs[job];
    if (x->state != BK_JOB_LEASED && x->state != BK_JOB_PENDING)
        return EMPQ_ESTATE;
    if (x->state == BK_JOB_PENDING && heap_reserve(&t->leases, t->leases.n + 1) != EMPQ_OK)
        return EMPQ_ENOMEM;
    detach(t, job); /* a leased job's heap slot is free again: the push below has room */
    uint32_t m = model_of(t, job);
    x->state = BK_JOB_BATCHED;
    x->worker = BK_WORKER_NONE;
    x->next = x->prev = BK_JOB_NONE;
    x->t = deadline;
    heap_push(t, &t->leases, job);
    t->mcounts[m].batched++;
    t->counts.batched++;
    return EMPQ_OK;
}

static int finish(bk__jobtable *t, uint32_t job, int state, int cache_hit, unsigned *was_worker)
{
    if (was_worker != NULL)
        *was_worker = BK_WORKER_NONE;
    if (job >= t->total)
        return EMPQ_EINVAL;
    bk__job *x = &t->jobs[job];
    if (x->state != BK_JOB_PENDING && x->state != BK_JOB_LEASED && x->state != BK_JOB_BATCHED)
        return EMPQ_ESTATE;
    if (was_worker != NULL)
        *was_worker = x->worker;
    detach(t, job);
    uint32_t m = model_of(t, job);
    x->state = (uint8_t)state;
    x->t = 0;
    x->hpos = BK_JOB_NONE;
    if (state == BK_JOB_DONE) {
        t->mcounts[m].done++;
        t->counts.done++;
        if (cache_hit) {
            t->mcounts[m].cache_hits++;
            t->counts.cache_hits++;
        }
    } else {
        t->mcounts[m].dead++;
        t->counts.dead++;
    }
    return EMPQ_OK;
}

int bk__jobtable_done(bk__jobtable *t, uint32_t job, int cache_hit, unsigned *was_worker)
{
    return finish(t, job, BK_JOB_DONE, cache_hit, was_worker);
}

int bk__jobtable_dead(bk__jobtable *t, uint32_t job, unsigned *was_worker)
{
    return finish(t, job, BK_JOB_DEAD, 0, was_worker);
}

/* ==================== dispatch helpers ==================== */

size_t bk__jobtable_take(bk__jobtable *t, const uint8_t *serve, unsigned w, uint64_t deadline, uint32_t *jobs,
                         size_t max)
{
    return bk__jobtable_take_quota(t, serve, NULL, w, deadline, jobs, max);
}

size_t bk__jobtable_take_quota(bk__jobtable *t, const uint8_t *serve, uint32_t *quota, unsigned w,
                               uint64_t deadline, uint32_t *jobs, size_t max)
{
    if (max == 0 || t->counts.ready == 0 || w >= BK_WORKER_MAX)
        return 0;
    if (worker_slots(t, w) != EMPQ_OK || heap_reserve(&t->leases, t->leases.n + max) != EMPQ_OK)
        return 0;
    size_t n = 0;
    uint32_t m = t->rr;
    uint32_t idle = 0; /* models in a row that gave nothing */
    while (n < max && idle < t->n_models) {
        m = m + 1 < t->n_models ? m + 1 : 0;
        const bk__list *q = &t->queues[m];
        if (q->head == BK_JOB_NONE || (serve != NULL && !serve[m]) ||
            (t->limits[m] != 0 && t->mcounts[m].leased >= t->limits[m]) || (quota != NULL && quota[m] == 0)) {
            idle++;
            continue;
        }
        uint32_t job = q->head;
        bk__jobtable_lease(t, job, w, deadline); /* cannot fail: pending, room reserved */
        if (quota != NULL && quota[m] != UINT32_MAX)
            quota[m]--;
        jobs[n++] = job;
        t->rr = m;
        idle = 0;
    }
    return n;
}

size_t bk__jobtable_promote(bk__jobtable *t, uint64_t now)
{
    size_t n = 0;
    while (t->delayed.n > 0 && t->jobs[t->delayed.v[0]].t <= now) {
        uint32_t job = t->delayed.v[0];
        detach(t, job);
        attach_pending(t, job, now, 0);
        n++;
    }
    return n;
}

size_t bk__jobtable_expire(bk__jobtable *t, uint64_t now, uint32_t *expired, size_t max)
{
    size_t n = 0;
    while (t->leases.n > 0 && t->jobs[t->leases.v[0]].t <= now) {
        uint32_t job = t->leases.v[0];
        detach(t, job);
        attach_pending(t, job, now, 0);
        if (expired != NULL && n < max)
            expired[n] = job;
        n++;
    }
    return n;
}

size_t bk__jobtable_release_worker(bk__jobtable *t, unsigned w)
{
    if (w >= t->wcap)
        return 0;
    size_t n = 0;
    while (t->wlists[w].head != BK_JOB_NONE) {
        uint32_t job = t->wlists[w].head;
        detach(t, job);
        attach_pending(t, job, 0, 0);
        n++;
    }
    return n;
}

size_t bk__jobtable_batched_list(const bk__jobtable *t, uint32_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < t->leases.n; i++) {
        uint32_t job = t->leases.v[i];
        if (t->jobs[job].state != BK_JOB_BATCHED)
            continue;
        if (out != NULL && n < max)
            out[n] = job;
        n++;
    }
    return n;
}

uint64_t bk__jobtable_next_expiry(const bk__jobtable *t)
{
    return t->leases.n > 0 ? t->jobs[t->leases.v[0]].t : UINT64_MAX;
}

uint64_t bk__jobtable_next_ready(const bk__jobtable *t)
{
    return t->delayed.n > 0 ? t->jobs[t->delayed.v[0]].t : UINT64_MAX;
}

/* ==================== invariants (tests) ==================== */

static int check_heap(const bk__jobtable *t, const bk__heap *h, const char *name, int want_state, int or_state,
                      empq_error *err)
{
    for (size_t i = 0; i < h->n; i++) {
        uint32_t j = h->v[i];
        if (j >= t->total || t->jobs[j].hpos != i ||
            (t->jobs[j].state != want_state && t->jobs[j].state != or_state))
            return empq_error_set(err, EMPQ_ESTATE, "%s heap slot %zu: job %u hpos %u state %s", name, i, j,
                                  j < t->total ? t->jobs[j].hpos : 0,
                                  j < t->total ? bk__job_state_str(t->jobs[j].state) : "?");
        if (i > 0 && heap_less(t, j, h->v[(i - 1) / 2]))
            return empq_error_set(err, EMPQ_ESTATE, "%s heap order broken at slot %zu", name, i);
    }
    return EMPQ_OK;
}

static int check_list(const bk__jobtable *t, const bk__list *l, uint32_t *len, empq_error *err)
{
    uint32_t prev = BK_JOB_NONE, n = 0;
    for (uint32_t j = l->head; j != BK_JOB_NONE; j = t->jobs[j].next) {
        if (j >= t->total || t->jobs[j].prev != prev || n > t->total)
            return empq_error_set(err, EMPQ_ESTATE, "list link broken at job %u", j);
        prev = j;
        n++;
    }
    if (l->tail != prev)
        return empq_error_set(err, EMPQ_ESTATE, "list tail %u, last job %u", l->tail, prev);
    *len = n;
    return EMPQ_OK;
}

int bk__jobtable_check(const bk__jobtable *t, empq_error *err)
{
    bk__counts run = {0};
    bk__counts *mc = calloc(t->n_models, sizeof *mc);
    uint32_t *wc = calloc(t->wcap ? t->wcap : 1, sizeof *wc);
    int rc = EMPQ_OK;
    if (mc == NULL || wc == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "check: out of memory");
        goto out;
    }
    size_t n_delayed = 0;
    for (uint32_t j = 0; j < t->total && rc == EMPQ_OK; j++) {
        const bk__job *x = &t->jobs[j];
        uint32_t m = model_of(t, j);
        switch (x->state) {
        case BK_JOB_PENDING:
            mc[m].pending++;
            if (x->hpos != BK_JOB_NONE)
                n_delayed++;
            else
                mc[m].ready++;
            if (x->worker != BK_WORKER_NONE)
                rc = empq_error_set(err, EMPQ_ESTATE, "pending job %u has worker %u", j, x->worker);
            break;
        case BK_JOB_LEASED:
            mc[m].leased++;
            if (x->worker >= t->wcap || x->hpos == BK_JOB_NONE)
                rc = empq_error_set(err, EMPQ_ESTATE, "leased job %u: worker %u hpos %u", j, x->worker, x->hpos);
            else
                wc[x->worker]++;
            break;
        case BK_JOB_BATCHED:
            mc[m].batched++;
            if (x->worker != BK_WORKER_NONE || x->hpos == BK_JOB_NONE)
                rc = empq_error_set(err, EMPQ_ESTATE, "batched job %u: worker %u hpos %u", j, x->worker, x->hpos);
            break;
        case BK_JOB_DONE:
            mc[m].done++;
            break;
        case BK_JOB_DEAD:
            mc[m].dead++;
            break;
        default:
            rc = empq_error_set(err, EMPQ_ESTATE, "job %u has state %d", j, x->state);
        }
        if (rc == EMPQ_OK && (x->state == BK_JOB_DONE || x->state == BK_JOB_DEAD) &&
            (x->hpos != BK_JOB_NONE || x->worker != BK_WORKER_NONE))
            rc = empq_error_set(err, EMPQ_ESTATE, "final job %u still linked", j);
    }
    if (rc != EMPQ_OK)
        goto out;
    for (uint32_t m = 0; m < t->n_models; m++) {
        uint32_t len = 0;
        rc = check_list(t, &t->queues[m], &len, err);
        if (rc != EMPQ_OK)
            goto out;
        uint32_t rt = t->rtail[m];
        if (rt != BK_JOB_NONE && (rt >= t->total || t->jobs[rt].state != BK_JOB_PENDING ||
                                  t->jobs[rt].hpos != BK_JOB_NONE || model_of(t, rt) != m))
            rc = empq_error_set(err, EMPQ_ESTATE, "model %u: requeued section ends at job %u, not a ready job of it",
                                m, rt);
        else if (len != mc[m].ready)
            rc = empq_error_set(err, EMPQ_ESTATE, "model %u queue holds %u, %u ready jobs", m, len, mc[m].ready);
        const bk__counts *c = &t->mcounts[m];
        if (rc == EMPQ_OK && (c->pending != mc[m].pending || c->ready != mc[m].ready ||
                              c->leased != mc[m].leased || c->batched != mc[m].batched || c->done != mc[m].done ||
                              c->dead != mc[m].dead))
            rc = empq_error_set(err, EMPQ_ESTATE,
                                "model %u counters p%u r%u l%u b%u d%u x%u, walk p%u r%u l%u b%u d%u x%u", m,
                                c->pending, c->ready, c->leased, c->batched, c->done, c->dead, mc[m].pending,
                                mc[m].ready, mc[m].leased, mc[m].batched, mc[m].done, mc[m].dead);
        if (rc != EMPQ_OK)
            goto out;
        run.pending += c->pending;
        run.ready += c->ready;
        run.leased += c->leased;
        run.batched += c->batched;
        run.done += c->done;
        run.dead += c->dead;
        run.cache_hits += c->cache_hits;
    }
    if (run.pending != t->counts.pending || run.ready != t->counts.ready || run.leased != t->counts.leased ||
        run.batched != t->counts.batched ||
        run.done != t->counts.done || run.dead != t->counts.dead || run.cache_hits != t->counts.cache_hits) {
        rc = empq_error_set(err, EMPQ_ESTATE, "run counters differ from the sum of the models");
        goto out;
    }
    if (t->delayed.n != n_delayed || t->leases.n != (size_t)run.leased + run.batched) {
        rc = empq_error_set(err, EMPQ_ESTATE, "heaps hold %zu delayed and %zu leased, walk %zu and %u",
                            t->delayed.n, t->leases.n, n_delayed, run.leased + run.batched);
        goto out;
    }
    rc = check_heap(t, &t->delayed, "delayed", BK_JOB_PENDING, BK_JOB_PENDING, err);
    if (rc == EMPQ_OK)
        rc = check_heap(t, &t->leases, "lease", BK_JOB_LEASED, BK_JOB_BATCHED, err);
    for (unsigned w = 0; w < t->wcap && rc == EMPQ_OK; w++) {
        uint32_t len = 0;
        rc = check_list(t, &t->wlists[w], &len, err);
        if (rc == EMPQ_OK && (len != wc[w] || len != t->wcount[w]))
            rc = empq_error_set(err, EMPQ_ESTATE, "worker %u list %u, count %u, walk %u", w, len, t->wcount[w],
                                wc[w]);
        uint32_t per_model = 0;
        for (uint32_t j = t->wlists[w].head; rc == EMPQ_OK && j != BK_JOB_NONE; j = t->jobs[j].next)
            if (t->jobs[j].worker != w)
                rc = empq_error_set(err, EMPQ_ESTATE, "job %u in worker %u list has worker %u", j, w,
                                    t->jobs[j].worker);
        for (uint32_t m = 0; m < t->n_models; m++)
            per_model += t->wmcount[(size_t)w * t->n_models + m];
        if (rc == EMPQ_OK && per_model != t->wcount[w])
            rc = empq_error_set(err, EMPQ_ESTATE, "worker %u: %u leased, %u by model", w, t->wcount[w], per_model);
    }
out:
    free(mc);
    free(wc);
    return rc;
}
