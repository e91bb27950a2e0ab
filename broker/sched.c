/* sched.c: runs, workers and dispatch decisions of the broker, no I/O. */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/batchwire.h"
#include "empq/log.h"

struct bk__sched {
    bk__sched_opts o;
    empq_rng rng;
    bk__run **runs;
    size_t n_runs, cap_runs;
    bk__worker *workers;
    unsigned n_workers; /* slots allocated */
    unsigned span;      /* one past the highest used slot */
    uint8_t *serve;     /* scratch: models a worker serves in one run */
    size_t serve_cap;
    uint32_t *quota;    /* scratch: jobs each model of a run may take now */
    uint32_t *quota0;   /* scratch: the same before the take */
    uint8_t *mask;      /* scratch: the models of one take (batch mode or interactive) */
    uint32_t *room;     /* scratch: what each batch-mode model may still take for one worker */
    uint64_t now;       /* the latest time the caller passed (for next_deadline) */
    uint64_t unusable_at; /* when the workers' unusable reports were last gathered */
};

#define BK_UNUSABLE_EVERY_MS 250 /* how often bk__sched_tick gathers the unusable reports */
#define BK_UNUSABLE_MAX 256      /* reports kept per worker (a worker holds at most 32 runs) */
#define BK_BATCH_WINDOW_MAX 5000 /* batch mode: jobs of one model a worker may hold while it fills a batch */


static uint64_t now_hint(const bk__sched *s) { return s->now; }

static void see(bk__sched *s, uint64_t now)
{
    if (now > s->now)
        s->now = now;
}

void bk__sched_opts_default(bk__sched_opts *o)
{
    o->heartbeat_ms = 1000;
    o->miss_beats = 5;
    o->lease_ms = 600000;
    o->backoff_base_ms = 1000;
    o->backoff_cap_ms = 60000;
    o->max_batch = 1024;
    o->unusable_ms = 10000;
    bk__pace_opts_default(&o->pace);
    o->seed = empq_mono_ms() ^ ((uint64_t)(uintptr_t)&o->seed << 16);
}

int bk__sched_new(bk__sched **out, const bk__sched_opts *o)
{
    *out = NULL;
    bk__sched *s = calloc(1, sizeof *s);
    if (s == NULL)
        return EMPQ_ENOMEM;
    if (o != NULL)
        s->o = *o;
    else
        bk__sched_opts_default(&s->o);
    if (s->o.heartbeat_ms == 0)
        s->o.heartbeat_ms = 1000;
    if (s->o.miss_beats == 0)
        s->o.miss_beats = 5;
    if (s->o.max_batch == 0)
        s->o.max_batch = 1024;
    empq_rng_seed(&s->rng, s->o.seed);
    *out = s;
    return EMPQ_OK;
}

static void free_strings(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void run_free(bk__run *r)
{
    if (r == NULL)
        return;
    free(r->id);
    free_strings(r->aliases, r->n_models);
    free(r->pace);
    free(r->dead_reasons);
    free(r->window);
    free(r->source);
    free(r->orphans);
    bk__jobtable_free(&r->table);
    free(r);
}

static void unusable_clear(bk__worker *w)
{
    for (size_t i = 0; i < w->n_unusable; i++) {
        free(w->unusable[i].run_id);
        free(w->unusable[i].reason);
    }
    free(w->unusable);
    w->unusable = NULL;
    w->n_unusable = 0;
}

static void worker_clear(bk__worker *w)
{
    unusable_clear(w);
    free(w->worker_id);
    free(w->host);
    free_strings(w->models, w->n_models);
    memset(w, 0, sizeof *w);
}

void bk__sched_free(bk__sched **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    bk__sched *s = *sp;
    for (size_t i = 0; i < s->n_runs; i++)
        run_free(s->runs[i]);
    free(s->runs);
    for (unsigned w = 0; w < s->n_workers; w++)
        worker_clear(&s->workers[w]);
    free(s->workers);
    free(s->serve);
    free(s->quota);
    free(s->quota0);
    free(s->mask);
    free(s->room);
    free(s);
    *sp = NULL;
}

const bk__sched_opts *bk__sched_opts_of(const bk__sched *s) { return &s->o; }

/* ==================== runs ==================== */

bk__run *bk__sched_run_find(const bk__sched *s, const char *id)
{
    for (size_t i = 0; i < s->n_runs; i++)
        if (strcmp(s->runs[i]->id, id) == 0)
            return s->runs[i];
    return NULL;
}

int bk__sched_run_remove(bk__sched *s, const char *id)
{
    for (size_t i = 0; i < s->n_runs; i++) {
        if (strcmp(s->runs[i]->id, id) == 0) {
            run_free(s->runs[i]);
            memmove(&s->runs[i], &s->runs[i + 1], (s->n_runs - i - 1) * sizeof *s->runs);
            s->n_runs--;
            return EMPQ_OK;
        }
    }
    return EMPQ_ENOTFOUND;
}

size_t bk__sched_run_count(const bk__sched *s) { return s->n_runs; }
bk__run *bk__sched_run_at(const bk__sched *s, size_t i) { return i < s->n_runs ? s->runs[i] : NULL; }

int bk__sched_run_add(bk__sched *s, const Empq__Run *run, bk__run **out, empq_error *err)
{
    bk__run *have = bk__sched_run_find(s, run->id);
    if (out != NULL)
        *out = have;
    if (have != NULL)
        return empq_error_set(err, EMPQ_EEXIST, "run %s is loaded already", run->id);
    const Empq__RunSpec *spec = run->spec;
    if (spec == NULL || spec->n_models == 0 || run->n_prompts == 0)
        return empq_error_set(err, EMPQ_EINVAL, "run %s has %zu models and %u prompts: nothing to do", run->id,
                              spec != NULL ? spec->n_models : 0, run->n_prompts);
    uint32_t samples = 1;
    for (size_t m = 0; m < spec->n_models; m++)
        if (spec->models[m]->has_samples && spec->models[m]->samples > samples)
            samples = spec->models[m]->samples;
    if (s->n_runs == s->cap_runs) {
        size_t cap = s->cap_runs ? s->cap_runs * 2 : 8;
        bk__run **v = realloc(s->runs, cap * sizeof *v);
        if (v == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory", run->id);
        s->runs = v;
        s->cap_runs = cap;
    }
    bk__run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory", run->id);
    r->id = empq_strdup(run->id);
    r->state = run->has_state ? run->state : EMPQ__RUN_STATE__RUN_ACTIVE;
    r->force = run->has_force && run->force;
    r->n_prompts = run->n_prompts;
    r->n_models = (uint32_t)spec->n_models;
    r->samples = samples;
    r->aliases = calloc(spec->n_models, sizeof *r->aliases);
    r->pace = calloc(spec->n_models, sizeof *r->pace);
    r->dead_reasons = calloc(spec->n_models, sizeof *r->dead_reasons);
    r->window = calloc(spec->n_models, sizeof *r->window);
    r->source = calloc(spec->n_models, sizeof *r->source);
    if (r->id == NULL || r->aliases == NULL || r->pace == NULL || r->dead_reasons == NULL || r->window == NULL ||
        r->source == NULL) {
        run_free(r);
        return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory", run->id);
    }
    for (size_t m = 0; m < spec->n_models; m++) {
        r->aliases[m] = empq_strdup(spec->models[m]->alias);
        if (r->aliases[m] == NULL) {
            run_free(r);
            return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory", run->id);
        }
    }
    int rc = bk__jobtable_new(&r->table, r->n_prompts, r->n_models, samples, err);
    if (rc != EMPQ_OK) {
        empq_error_prefix(err, "run %s: ", run->id);
        run_free(r);
        return rc;
    }
    for (size_t m = 0; m < spec->n_models; m++) {
        const Empq__ModelLimits *l = spec->models[m]->limits;
        if (l != NULL && l->has_max_concurrency)
            bk__jobtable_set_model_limit(r->table, (uint32_t)m, l->max_concurrency);
        bk__pace_init(&r->pace[m], spec->models[m], &s->o.pace);
        const Empq__ModelSpec *ms = spec->models[m];
        int human = ms->provider == NULL || strcmp(ms->provider, "human") == 0;
        r->source[m] = (uint8_t)((human ? BK_SOURCE_HUMAN : empq_batchwire_mode(ms) ? BK_SOURCE_BATCH
                                                                                   : BK_SOURCE_INTERACTIVE) |
                                 (!human && ms->prices != NULL ? BK_SOURCE_PRICED : 0));
        if (empq_batchwire_mode(ms) && ms->batch != NULL) {
            uint32_t want = ms->batch->max_requests > 0 ? ms->batch->max_requests : BK_BATCH_WINDOW_MAX;
            r->window[m] = want < BK_BATCH_WINDOW_MAX ? want : BK_BATCH_WINDOW_MAX;
            r->batch_models++;
        }
    }
    if (r->n_models > s->serve_cap) {
        uint8_t *v = realloc(s->serve, r->n_models);
        uint32_t *q = v != NULL ? realloc(s->quota, r->n_models * sizeof *q) : NULL;
        if (v != NULL)
            s->serve = v;
        if (q != NULL)
            s->quota = q;
        uint32_t *q0 = q != NULL ? realloc(s->quota0, r->n_models * sizeof *q0) : NULL;
        if (q0 != NULL)
            s->quota0 = q0;
        uint8_t *mk = q0 != NULL ? realloc(s->mask, r->n_models) : NULL;
        if (mk != NULL)
            s->mask = mk;
        uint32_t *rm = mk != NULL ? realloc(s->room, r->n_models * sizeof *rm) : NULL;
        if (rm == NULL) {
            run_free(r);
            return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory", run->id);
        }
        s->room = rm;
        s->serve_cap = r->n_models;
    }
    s->runs[s->n_runs++] = r;
    if (out != NULL)
        *out = r;
    return EMPQ_OK;
}

bk__run *bk__sched_pop_finished(bk__sched *s)
{
    for (size_t i = 0; i < s->n_runs; i++) {
        bk__run *r = s->runs[i];
        if (!r->finish_reported && bk__jobtable_finished(r->table) &&
            (r->state == EMPQ__RUN_STATE__RUN_ACTIVE || r->state == EMPQ__RUN_STATE__RUN_PAUSED)) {
            r->finish_reported = 1;
            r->finished_ms = empq_now_ms();
            return r;
        }
    }
    return NULL;
}

/* ==================== workers ==================== */

int bk__sched_worker_find(const bk__sched *s, const unsigned char *ident, size_t len)
{
    for (unsigned w = 0; w < s->span; w++) {
        const bk__worker *x = &s->workers[w];
        if (x->used && x->ident_len == len && memcmp(x->ident, ident, len) == 0)
            return (int)w;
    }
    return EMPQ_ENOTFOUND;
}

bk__worker *bk__sched_worker(const bk__sched *s, unsigned w)
{
    return w < s->span && s->workers[w].used ? &s->workers[w] : NULL;
}

unsigned bk__sched_worker_span(const bk__sched *s) { return s->span; }

uint32_t bk__sched_in_flight(const bk__sched *s, unsigned w)
{
    uint32_t n = 0;
    for (size_t i = 0; i < s->n_runs; i++) {
        const bk__run *r = s->runs[i];
        n += bk__jobtable_worker_leased(r->table, w);
        for (uint32_t m = 0; r->batch_models > 0 && m < r->n_models; m++)
            if (r->window[m] > 0)
                n -= bk__jobtable_worker_model_leased(r->table, w, m);
    }
    return n;
}

size_t bk__sched_worker_remove(bk__sched *s, unsigned w)
{
    if (w >= s->span || !s->workers[w].used)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < s->n_runs; i++)
        n += bk__jobtable_release_worker(s->runs[i]->table, w);
    worker_clear(&s->workers[w]);
    while (s->span > 0 && !s->workers[s->span - 1].used)
        s->span--;
    return n;
}

int bk__sched_worker_hello(bk__sched *s, const unsigned char *ident, size_t len, const Empq__Hello *h,
                           uint64_t now, unsigned *slot, size_t *requeued)
{
    if (requeued != NULL)
        *requeued = 0;
    if (len == 0 || len > BK_IDENT_MAX)
        return EMPQ_EINVAL;
    int have = bk__sched_worker_find(s, ident, len);
    unsigned w;
    if (have >= 0) {
        w = (unsigned)have;
        size_t n = bk__sched_worker_remove(s, w);
        if (requeued != NULL)
            *requeued = n;
    } else {
        for (w = 0; w < s->n_workers && s->workers[w].used; w++)
            ;
        if (w == s->n_workers) {
            if (s->n_workers >= BK_WORKER_MAX)
                return EMPQ_ERANGE;
            unsigned cap = s->n_workers ? s->n_workers * 2 : 16;
            if (cap > BK_WORKER_MAX)
                cap = BK_WORKER_MAX;
            bk__worker *v = realloc(s->workers, cap * sizeof *v);
            if (v == NULL)
                return EMPQ_ENOMEM;
            memset(v + s->n_workers, 0, (cap - s->n_workers) * sizeof *v);
            s->workers = v;
            s->n_workers = cap;
        }
    }
    bk__worker *x = &s->workers[w];
    memset(x, 0, sizeof *x);
    memcpy(x->ident, ident, len);
    x->ident_len = len;
    x->worker_id = empq_strdup(h->worker_id != NULL ? h->worker_id : "");
    x->host = empq_strdup(h->host != NULL ? h->host : "");
    x->pid = h->has_pid ? h->pid : 0;
    x->credit = h->credit;
    if (h->n_models > 0) {
        x->models = calloc(h->n_models, sizeof *x->models);
        if (x->models != NULL) {
            x->n_models = h->n_models;
            for (size_t i = 0; i < h->n_models; i++)
                x->models[i] = empq_strdup(h->models[i]);
        }
    }
    int oom = x->worker_id == NULL || x->host == NULL || (h->n_models > 0 && x->models == NULL);
    for (size_t i = 0; i < x->n_models; i++)
        oom |= x->models[i] == NULL;
    if (oom) {
        worker_clear(x);
        return EMPQ_ENOMEM;
    }
    x->used = 1;
    x->last_seen = now;
    x->last_sent = now;
    if (w + 1 > s->span)
        s->span = w + 1;
    *slot = w;
    return EMPQ_OK;
}

int bk__sched_worker_unusable(bk__sched *s, unsigned w, const Empq__Heartbeat *hb)
{
    bk__worker *x = bk__sched_worker(s, w);
    if (x == NULL)
        return EMPQ_ENOTFOUND;
    size_t n = hb->n_unusable < BK_UNUSABLE_MAX ? hb->n_unusable : BK_UNUSABLE_MAX;
    if (n == 0) {
        unusable_clear(x);
        return EMPQ_OK;
    }
    Empq__ModelProblem *v = calloc(n, sizeof *v);
    if (v == NULL)
        return EMPQ_ENOMEM;
    int oom = 0;
    for (size_t i = 0; i < n; i++) {
        const Empq__ModelProblem *q = hb->unusable[i];
        empq__model_problem__init(&v[i]);
        v[i].run_id = empq_strdup(q->run_id != NULL ? q->run_id : "");
        v[i].model = q->model;
        v[i].reason = empq_strdup(q->reason != NULL ? q->reason : "");
        oom |= v[i].run_id == NULL || v[i].reason == NULL;
    }
    if (oom) {
        for (size_t i = 0; i < n; i++) {
            free(v[i].run_id);
            free(v[i].reason);
        }
        free(v);
        return EMPQ_ENOMEM;
    }
    unusable_clear(x);
    x->unusable = v;
    x->n_unusable = n;
    return EMPQ_OK;
}

/* ==================== dispatch ==================== */

/* Fills s->serve for worker x and run r. Returns NULL when the worker serves
 * every model, s->serve when it serves some, and sets *any to whether it
 * serves at least one model of the run. */
static const uint8_t *serve_mask(bk__sched *s, const bk__worker *x, const bk__run *r, int *any)
{
    *any = 1;
    if (x->n_models == 0)
        return NULL;
    *any = 0;
    for (uint32_t m = 0; m < r->n_models; m++) {
        s->serve[m] = 0;
        for (size_t i = 0; i < x->n_models; i++) {
            if (strcmp(x->models[i], r->aliases[m]) == 0) {
                s->serve[m] = 1;
                *any = 1;
                break;
            }
        }
    }
    return s->serve;
}

int bk__sched_has_ready(const bk__sched *s)
{
    for (size_t i = 0; i < s->n_runs; i++)
        if (s->runs[i]->state == EMPQ__RUN_STATE__RUN_ACTIVE && bk__jobtable_counts(s->runs[i]->table, UINT32_MAX).ready)
            return 1;
    return 0;
}

/* Logs, once per model, that it was stopped: event=max_cost_reached for
 * max_cost, event=model_stopped with the reason for the others. */
static void log_stopped(const bk__run *r, uint32_t m)
{
    bk__pace *p = &r->pace[m];
    if (!p->stopped || p->stop_logged)
        return;
    p->stop_logged = 1;
    char alias[160], why[BK_PACE_REASON_MAX + 16];
    empq_log_quote(alias, sizeof alias, r->aliases[m]);
    bk__counts c = bk__jobtable_counts(r->table, m);
    if (strcmp(p->stop_reason, "max_cost") == 0)
        EMPQ_WARN("event=max_cost_reached run=%s model=%s cost=%.6f max_cost=%.6f tokens_in=%llu "
                  "tokens_out=%llu pending=%u",
                  r->id, alias, p->cost, p->max_cost, (unsigned long long)p->tok_in,
                  (unsigned long long)p->tok_out, c.pending);
    else
        EMPQ_WARN("event=model_stopped run=%s model=%s reason=%s pending=%u leased=%u (pending jobs stay pending)",
                  r->id, alias, empq_log_quote(why, sizeof why, p->stop_reason), c.pending, c.leased);
}

/* Fills s->quota with what each model of r may take now (UINT32_MAX: no
 * limit). Returns NULL when no model of r is paced (nothing to enforce). */
static uint32_t *fill_quota(bk__sched *s, bk__run *r, uint64_t now)
{
    int any = 0;
    for (uint32_t m = 0; m < r->n_models; m++) {
        bk__pace *p = &r->pace[m];
        if (!bk__pace_active(p)) {
            s->quota[m] = UINT32_MAX;
            continue;
        }
        any = 1;
        /* what a batch holds is spent as surely as what a worker holds */
        bk__counts c = bk__jobtable_counts(r->table, m);
        s->quota[m] = bk__pace_allow(p, c.leased + c.batched, now);
        log_stopped(r, m);
    }
    if (!any)
        return NULL;
    memcpy(s->quota0, s->quota, r->n_models * sizeof *s->quota);
    return s->quota;
}

/* Charges each paced model of r what it took since fill_quota. */
static void charge_quota(bk__sched *s, bk__run *r, uint64_t now)
{
    for (uint32_t m = 0; m < r->n_models; m++)
        if (s->quota0[m] != UINT32_MAX && s->quota0[m] > s->quota[m])
            bk__pace_charge(&r->pace[m], s->quota0[m] - s->quota[m], now);
}

/* Takes for worker w from run r the ready jobs of its batch-mode models
 * (batch != 0: each up to its window less what w holds of it, credit aside:
 * they wait in a group, not on the wire) or of its interactive ones (up to
 * max), within quota (NULL: none) and the models w serves (serve NULL:
 * all). Lowers quota by what it took. */
static size_t take_kind(bk__sched *s, bk__run *r, const uint8_t *serve, uint32_t *quota, int batch, unsigned w,
                        uint64_t deadline, uint32_t *jobs, size_t max)
{
    int any = 0;
    for (uint32_t m = 0; m < r->n_models; m++) {
        s->mask[m] = (serve == NULL || serve[m]) && ((r->window[m] > 0) == (batch != 0));
        any |= s->mask[m];
        if (!batch)
            continue;
        uint32_t held = bk__jobtable_worker_model_leased(r->table, w, m);
        uint32_t room = r->window[m] > held ? r->window[m] - held : 0;
        uint32_t q = quota != NULL ? quota[m] : UINT32_MAX;
        s->room[m] = q < room ? q : room;
    }
    if (!any || max == 0)
        return 0;
    if (!batch)
        return bk__jobtable_take_quota(r->table, s->mask, quota, w, deadline, jobs, max);
    size_t n = bk__jobtable_take_quota(r->table, s->mask, s->room, w, deadline, jobs, max);
    if (quota != NULL) /* what the batch-mode models took comes off their pace quota */
        for (size_t i = 0; i < n; i++) {
            uint32_t p, m, smp;
            bk__jobtable_split(r->table, jobs[i], &p, &m, &smp);
            if (quota[m] != UINT32_MAX && quota[m] > 0)
                quota[m]--;
        }
    return n;
}

size_t bk__sched_dispatch(bk__sched *s, unsigned w, uint64_t now, uint32_t *jobs, size_t max, bk__run **run)
{
    *run = NULL;
    see(s, now);
    bk__worker *x = bk__sched_worker(s, w);
    if (x == NULL || s->n_runs == 0)
        return 0;
    if (max > s->o.max_batch)
        max = s->o.max_batch;
    /* credit counts the interactive jobs a worker holds; batch-mode jobs
     * fill its batches up to each model's window (they leave the lease
     * once their batch is durable: BATCHED) */
    uint32_t busy = bk__sched_in_flight(s, w);
    size_t want = busy < x->credit ? x->credit - busy : 0;
    if (want > max)
        want = max;
    if (max == 0)
        return 0;
    for (size_t k = 1; k <= s->n_runs; k++) {
        size_t i = (x->run_rr + k) % s->n_runs;
        bk__run *r = s->runs[i];
        if (r->state != EMPQ__RUN_STATE__RUN_ACTIVE || bk__jobtable_counts(r->table, UINT32_MAX).ready == 0)
            continue;
        if (want == 0 && r->batch_models == 0)
            continue;
        int any;
        const uint8_t *serve = serve_mask(s, x, r, &any);
        if (!any)
            continue;
        uint32_t *quota = fill_quota(s, r, now);
        uint64_t deadline = now + s->o.lease_ms;
        size_t n = 0;
        if (r->batch_models > 0)
            n = take_kind(s, r, serve, quota, 1, w, deadline, jobs, max);
        if (want > 0 && n < max)
            n += take_kind(s, r, serve, quota, 0, w, deadline, jobs + n, want < max - n ? want : max - n);
        if (quota != NULL)
            charge_quota(s, r, now);
        if (n > 0) {
            x->run_rr = i;
            if (r->started_ms == 0)
                r->started_ms = empq_now_ms();
            *run = r;
            return n;
        }
    }
    return 0;
}

const char *bk__applied_str(bk__applied a)
{
    switch (a) {
    case BK_APPLIED: return "applied";
    case BK_IGNORED_FINAL: return "ignored_final";
    case BK_IGNORED_STALE: return "ignored_stale";
    case BK_IGNORED_UNKNOWN_RUN: return "ignored_unknown_run";
    case BK_IGNORED_BAD_JOB: return "ignored_bad_job";
    default: return "unknown";
    }
}

uint64_t bk__sched_backoff_ms(bk__sched *s, unsigned attempt, uint32_t retry_after_ms)
{
    uint64_t ceil = s->o.backoff_base_ms;
    for (unsigned i = 1; i < attempt && ceil < s->o.backoff_cap_ms; i++)
        ceil *= 2;
    if (ceil > s->o.backoff_cap_ms)
        ceil = s->o.backoff_cap_ms;
    uint64_t d = empq_rng_below(&s->rng, ceil + 1);
    return d < retry_after_ms ? retry_after_ms : d;
}

/* Feeds an outcome to its model's pace (before the job table moves): the
 * dispatch time is known while the reporting worker holds the lease. */
static void pace_outcome(bk__sched *s, bk__run *r, unsigned w, const Empq__Outcome *o, int state, uint64_t now)
{
    uint32_t p, m, smp;
    bk__jobtable_split(r->table, o->job, &p, &m, &smp);
    bk__pace *pc = &r->pace[m];
    uint64_t dispatched = 0;
    if (state == BK_JOB_LEASED && w != BK_WORKER_NONE && bk__jobtable_worker(r->table, o->job) == w) {
        uint64_t deadline = bk__jobtable_time(r->table, o->job);
        dispatched = deadline > s->o.lease_ms ? deadline - s->o.lease_ms : 1;
    }
    uint32_t leased = bk__jobtable_counts(r->table, m).leased;
    if (bk__pace_outcome(pc, o, dispatched, leased, now)) {
        char alias[160];
        empq_log_quote(alias, sizeof alias, r->aliases[m]);
        uint32_t conc = bk__pace_conc(pc);
        EMPQ_WARN("event=model_slowdown run=%s model=%s status=429 rate_factor=%.4f concurrency=%u pause_ms=%llu "
                  "rate_limited=%u",
                  r->id, alias, pc->factor, conc == BK_PACE_UNLIMITED ? 0 : conc,
                  (unsigned long long)(pc->pause_until > now ? pc->pause_until - now : 0), pc->limited);
    }
    if (o->has_model_fatal && o->model_fatal &&
        (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DEAD || o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY))
        bk__pace_stop(pc, o->reason != NULL && o->reason[0] != '\0' ? o->reason : "model_fatal");
    log_stopped(r, m);
}

void bk__sched_count_dead(bk__run *r, uint32_t m, const char *reason)
{
    if (m >= r->n_models)
        return;
    bk__reasons *d = &r->dead_reasons[m];
    char key[BK_REASON_KEY_MAX];
    if (reason == NULL || reason[0] == '\0')
        reason = "unknown";
    const char *cut = strstr(reason, ": ");
    size_t len = cut != NULL ? (size_t)(cut - reason) : strlen(reason);
    if (len > sizeof key - 1)
        len = sizeof key - 1;
    memcpy(key, reason, len);
    key[len] = '\0';
    for (uint32_t i = 0; i < d->n; i++) {
        if (strcmp(d->key[i], key) == 0) {
            d->count[i]++;
            return;
        }
    }
    uint32_t i = d->n;
    if (i == BK_REASONS_MAX) { /* full: the last slot is "other" from now on */
        snprintf(d->key[i], sizeof d->key[i], "other");
        d->n++;
    } else if (i > BK_REASONS_MAX) {
        i = BK_REASONS_MAX;
    } else {
        memcpy(d->key[i], key, len + 1);
        d->n++;
    }
    d->count[i]++;
}

bk__applied bk__sched_outcome(bk__sched *s, unsigned w, const Empq__Outcome *o, uint64_t now)
{
    see(s, now);
    bk__run *r = o->run_id != NULL ? bk__sched_run_find(s, o->run_id) : NULL;
    if (r == NULL)
        return BK_IGNORED_UNKNOWN_RUN;
    bk__jobtable *t = r->table;
    int state = bk__jobtable_state(t, o->job);
    if (state < 0)
        return BK_IGNORED_BAD_JOB;
    bk__worker *x = w != BK_WORKER_NONE ? bk__sched_worker(s, w) : NULL;
    if (x != NULL) {
        if (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DONE)
            x->done++;
        else if (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY || o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DEAD)
            x->errors++;
    }
    if (o->kind != EMPQ__OUTCOME_KIND__OUTCOME_BATCHED)
        pace_outcome(s, r, w, o, state, now);
    if (state == BK_JOB_DONE || state == BK_JOB_DEAD)
        return BK_IGNORED_FINAL;
    switch (o->kind) {
    case EMPQ__OUTCOME_KIND__OUTCOME_BATCHED:
        /* in a provider batch whose record is durable: no worker holds it
         * now (whichever reads the batch's results sends the outcome). A
         * job leased to another worker meanwhile is in this batch, not in
         * that worker's: the record took it first (HSETNX). */
        if (state == BK_JOB_BATCHED)
            return BK_IGNORED_STALE;
        return bk__jobtable_batch(t, o->job, now + BK_BATCHED_GUARD_MS) == EMPQ_OK ? BK_APPLIED : BK_IGNORED_STALE;
    case EMPQ__OUTCOME_KIND__OUTCOME_DONE:
        bk__jobtable_done(t, o->job, o->has_cache_hit && o->cache_hit, NULL);
        return BK_APPLIED;
    case EMPQ__OUTCOME_KIND__OUTCOME_DEAD: {
        bk__jobtable_dead(t, o->job, NULL);
        uint32_t p, m, smp;
        bk__jobtable_split(t, o->job, &p, &m, &smp);
        bk__sched_count_dead(r, m, o->reason);
        return BK_APPLIED;
    }
    case EMPQ__OUTCOME_KIND__OUTCOME_RETRY:
    case EMPQ__OUTCOME_KIND__OUTCOME_RELEASED: {
        /* a leased job: only from the worker holding it; a batched job: only
         * from the batch's end (any worker may read a batch) */
        int from_batch = o->has_from_batch && o->from_batch;
        if (state == BK_JOB_BATCHED ? !from_batch
                                    : (state != BK_JOB_LEASED || w == BK_WORKER_NONE ||
                                       bk__jobtable_worker(t, o->job) != w))
            return BK_IGNORED_STALE;
        int local = o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY && o->has_local_failure && o->local_failure;
        if (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RELEASED || local)
            bk__jobtable_uncount(t, o->job); /* not an attempt */
        uint64_t nb = now;
        if (local) /* the worker's trouble: again after its delay, no growing backoff */
            nb = now + (o->has_retry_after_ms && o->retry_after_ms < s->o.backoff_cap_ms ? o->retry_after_ms
                                                                                          : s->o.backoff_base_ms);
        else if (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY)
            nb = now + bk__sched_backoff_ms(s, bk__jobtable_attempts(t, o->job),
                                            o->has_retry_after_ms ? o->retry_after_ms : 0);
        if (bk__jobtable_requeue(t, o->job, now, nb, NULL) != EMPQ_OK)
            return BK_IGNORED_STALE; /* only on out of memory for the delayed heap */
        return BK_APPLIED;
    }
    default:
        return BK_IGNORED_BAD_JOB;
    }
}

/* ==================== unusable models ==================== */

static int worker_serves(const bk__worker *x, const char *alias)
{
    if (x->n_models == 0)
        return 1;
    for (size_t i = 0; i < x->n_models; i++)
        if (strcmp(x->models[i], alias) == 0)
            return 1;
    return 0;
}

/* The reason worker x gave for model m of run r, or NULL. */
static const char *worker_unusable(const bk__worker *x, const bk__run *r, uint32_t m)
{
    for (size_t i = 0; i < x->n_unusable; i++)
        if (x->unusable[i].model == m && strcmp(x->unusable[i].run_id, r->id) == 0)
            return x->unusable[i].reason;
    return NULL;
}

/* Gathers the live workers' unusable reports into each model's pace
 * (bk__pace_unusable), which stops a model every serving worker has
 * reported for unusable_ms. O(runs x models x workers x reports). */
static void gather_unusable(bk__sched *s, uint64_t now)
{
    for (size_t i = 0; i < s->n_runs; i++) {
        bk__run *r = s->runs[i];
        if (r->state != EMPQ__RUN_STATE__RUN_ACTIVE && r->state != EMPQ__RUN_STATE__RUN_PAUSED)
            continue;
        for (uint32_t m = 0; m < r->n_models; m++) {
            uint32_t serving = 0, reporting = 0;
            const char *reason = NULL;
            for (unsigned w = 0; w < s->span; w++) {
                const bk__worker *x = &s->workers[w];
                if (!x->used || !worker_serves(x, r->aliases[m]))
                    continue;
                serving++;
                const char *why = worker_unusable(x, r, m);
                if (why != NULL) {
                    reporting++;
                    if (reason == NULL)
                        reason = why;
                }
            }
            bk__pace *p = &r->pace[m];
            int had = p->unusable[0] != '\0';
            bk__pace_unusable(p, reporting, serving, reason, now, s->o.unusable_ms);
            if (!had && reporting > 0) { /* logged when it begins, not at every gathering */
                char alias[160], why[BK_PACE_REASON_MAX + 16];
                empq_log_quote(alias, sizeof alias, r->aliases[m]);
                EMPQ_WARN("event=model_unusable run=%s model=%s workers=%u serving=%u reason=%s stop_after_ms=%u",
                          r->id, alias, reporting, serving, empq_log_quote(why, sizeof why, p->unusable),
                          s->o.unusable_ms);
            }
            log_stopped(r, m);
        }
    }
}

/* ==================== time ==================== */

static uint64_t silence_limit(const bk__sched *s)
{
    return (uint64_t)s->o.miss_beats * s->o.heartbeat_ms;
}

void bk__sched_tick(bk__sched *s, uint64_t now, bk__tick *rep)
{
    bk__tick r = {0};
    see(s, now);
    for (size_t i = 0; i < s->n_runs; i++) {
        bk__jobtable *t = s->runs[i]->table;
        r.promoted += bk__jobtable_promote(t, now);
        size_t n = bk__jobtable_expire(t, now, NULL, 0);
        if (n > 0)
            EMPQ_INFO("event=lease_expired run=%s jobs=%zu", s->runs[i]->id, n);
        r.expired += n;
    }
    for (unsigned w = 0; w < s->span; w++) {
        bk__worker *x = &s->workers[w];
        if (!x->used || now < x->last_seen + silence_limit(s))
            continue;
        char id[160];
        empq_log_quote(id, sizeof id, x->worker_id);
        uint64_t silent = now - x->last_seen;
        size_t n = bk__sched_worker_remove(s, w);
        EMPQ_WARN("event=worker_lost worker=%s silent_ms=%llu requeued=%zu", id, (unsigned long long)silent, n);
        r.lost_workers++;
        r.lost_jobs += n;
    }
    if (now >= s->unusable_at + BK_UNUSABLE_EVERY_MS) {
        s->unusable_at = now;
        gather_unusable(s, now);
    }
    if (rep != NULL)
        *rep = r;
}

uint64_t bk__sched_next_deadline(const bk__sched *s)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < s->n_runs; i++) {
        uint64_t a = bk__jobtable_next_expiry(s->runs[i]->table);
        uint64_t b = bk__jobtable_next_ready(s->runs[i]->table);
        if (a < next)
            next = a;
        if (b < next)
            next = b;
        const bk__run *r = s->runs[i];
        if (r->state != EMPQ__RUN_STATE__RUN_ACTIVE)
            continue;
        for (uint32_t m = 0; m < r->n_models; m++) {
            bk__counts c = bk__jobtable_counts(r->table, m);
            if (c.ready == 0 || !bk__pace_active(&r->pace[m]))
                continue;
            uint64_t t = bk__pace_next(&r->pace[m], c.leased, now_hint(s));
            if (t < next)
                next = t;
        }
    }
    for (unsigned w = 0; w < s->span; w++) {
        const bk__worker *x = &s->workers[w];
        if (!x->used)
            continue;
        uint64_t a = x->last_seen + silence_limit(s);
        uint64_t b = x->last_sent + s->o.heartbeat_ms;
        if (a < next)
            next = a;
        if (b < next)
            next = b;
    }
    return next;
}
