/* engine.c: the worker's request engine (see engine.h). */
#include "engine_int.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/cachekey.h"
#include "empq/judge.h"
#include "empq/log.h"
#include "empq/provider.h"
#include "empq/spec.h"
#include "empq/template.h"

#define KEY_RETRY_MS 5000u    /* delay asked when this worker lacks a key */
#define RESP_KEEP (64u * 1024u) /* a pooled reply buffer larger than this is freed */

/* Grows *v (elements of size sz) to hold at least need; 0 ok, -1 ENOMEM. */
int worker__grow(void **v, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap != 0 ? *cap : 16;
    while (c < need)
        c *= 2;
    void *p = realloc(*v, c * sz);
    if (p == NULL)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

/* Redis trouble is logged when it starts and when it ends, not per call. */
void worker__store_failed(worker__engine *e, const char *op, const char *why)
{
    e->stats.store_errors++;
    e->store_down_errors++;
    if (!e->store_down)
        EMPQ_WARN("event=store_down op=%s outcome=retry reason=\"%s\"", op, why);
    e->store_down = 1;
}

static void store_worked(worker__engine *e)
{
    if (!e->store_down)
        return;
    EMPQ_INFO("event=store_back failed_calls=%llu", (unsigned long long)e->store_down_errors);
    e->store_down = 0;
    e->store_down_errors = 0;
}

/* ==================== runs ==================== */

static void wmodel_clear(worker__wmodel *m)
{
    empq_http_request_clear(&m->ep);
    curl_slist_free_all(m->headers);
    m->headers = NULL;
    if (m->api_key != NULL) {
        memset(m->api_key, 0, strlen(m->api_key));
        free(m->api_key);
        m->api_key = NULL;
    }
}

static void run_free(worker__run *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_models; i++)
        wmodel_clear(&r->models[i]);
    free(r->models);
    if (r->run != NULL)
        empq__run__free_unpacked(r->run, NULL);
    free(r->id);
    free(r);
}

static int default_getenv(const char *name, char **out)
{
    const char *v = getenv(name);
    *out = v != NULL ? empq_strdup(v) : NULL;
    return v != NULL ? 0 : -1;
}

/* Reads the model's key, expands base_url and builds the endpoint, once. */
static void wmodel_prepare(worker__engine *e, worker__wmodel *wm)
{
    if (wm->prepared)
        return;
    wm->prepared = 1;
    const Empq__ModelSpec *m = wm->spec;
    empq_error err = {0};
    if (m->api_key_env != NULL && m->api_key_env[0] != '\0') {
        int (*ge)(const char *, char **) = e->opt.getenv_key != NULL ? e->opt.getenv_key : default_getenv;
        if (ge(m->api_key_env, &wm->api_key) != 0 || wm->api_key == NULL || wm->api_key[0] == '\0') {
            free(wm->api_key);
            wm->api_key = NULL;
            wm->prep_rc = EMPQ_EINVAL;
            wm->prep_retryable = 1;
            snprintf(wm->prep_err, sizeof wm->prep_err,
                     "model %s: API key variable %s is not set on worker %s", m->alias, m->api_key_env,
                     e->opt.worker_id);
            return;
        }
    } else if (m->api_key_file != NULL && m->api_key_file[0] != '\0') {
        size_t len = 0;
        int rc = empq_read_file(m->api_key_file, &wm->api_key, &len, &err);
        if (rc != EMPQ_OK) {
            wm->prep_rc = rc;
            wm->prep_retryable = 1;
            snprintf(wm->prep_err, sizeof wm->prep_err, "model %s: API key file: %s", m->alias, err.msg);
            return;
        }
        while (len > 0 && (wm->api_key[len - 1] == '\n' || wm->api_key[len - 1] == '\r' ||
                           wm->api_key[len - 1] == ' ' || wm->api_key[len - 1] == '\t'))
            wm->api_key[--len] = '\0';
    }
    char *base = NULL;
    if (m->base_url != NULL) {
        int rc = empq_expand_env(m->base_url, &base, &err);
        if (rc != EMPQ_OK) {
            wm->prep_rc = rc;
            wm->prep_retryable = 1;
            snprintf(wm->prep_err, sizeof wm->prep_err, "model %s: base_url: %s", m->alias, err.msg);
            return;
        }
    }
    int rc = empq_provider_endpoint(m, base, wm->api_key, &wm->ep, &err);
    free(base);
    if (rc != EMPQ_OK) {
        wm->prep_rc = rc;
        wm->prep_retryable = 0;
        snprintf(wm->prep_err, sizeof wm->prep_err, "%s", err.msg);
        return;
    }
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < wm->ep.n_headers; i++) {
        struct curl_slist *n = curl_slist_append(h, wm->ep.headers[i]);
        if (n == NULL)
            goto nomem;
        h = n;
    }
    struct curl_slist *n = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (n == NULL)
        goto nomem;
    wm->headers = n;
    EMPQ_INFO("event=model_ready model=%s provider=%s url=%s auth=%s", m->alias, m->provider, wm->ep.url,
              wm->api_key != NULL ? "key" : "none");
    return;
nomem:
    curl_slist_free_all(h);
    wm->prep_rc = EMPQ_ENOMEM;
    wm->prep_retryable = 1;
    snprintf(wm->prep_err, sizeof wm->prep_err, "model %s: out of memory", m->alias);
}

/* Prepares once and logs a failure once (per run and model). */
void worker__wmodel_ready(worker__engine *e, const worker__run *run, worker__wmodel *wm)
{
    if (wm->prepared)
        return;
    wmodel_prepare(e, wm);
    if (wm->prep_rc != EMPQ_OK)
        EMPQ_WARN("event=model_unusable run=%s model=%s outcome=%s reason=\"%s\"", run->id, wm->spec->alias,
                  wm->prep_retryable ? "retry" : "dead", wm->prep_err);
}

/* Drops the least recently used run nobody refers to, when over the cap. */
static void runs_trim(worker__engine *e)
{
    while (e->n_runs > e->opt.max_runs) {
        worker__run **victim = NULL;
        for (worker__run **p = &e->runs; *p != NULL; p = &(*p)->next)
            if ((*p)->refs == 0 && (victim == NULL || (*p)->used < (*victim)->used))
                victim = p;
        if (victim == NULL)
            return;
        worker__run *r = *victim;
        *victim = r->next;
        e->n_runs--;
        run_free(r);
    }
}

/* The run with this id, from memory or Redis. NULL with *rc set on failure
 * (EMPQ_ESTORE, EMPQ_ENOTFOUND, EMPQ_EPARSE, EMPQ_ENOMEM). */
worker__run *worker__run_get(worker__engine *e, const char *id, int *rc, char *why, size_t whylen)
{
    for (worker__run *r = e->runs; r != NULL; r = r->next)
        if (strcmp(r->id, id) == 0) {
            r->used = ++e->tick;
            return r;
        }
    Empq__Run *run = NULL;
    *rc = empq_store_run_get(e->store, id, &run);
    if (*rc != EMPQ_ESTORE)
        store_worked(e);
    if (*rc != EMPQ_OK) {
        snprintf(why, whylen, "run %s: %s", id,
                 *rc == EMPQ_ENOTFOUND ? "not found in Redis" : empq_store_errstr(e->store));
        return NULL;
    }
    worker__run *r = calloc(1, sizeof *r);
    size_t nm = run->spec != NULL ? run->spec->n_models : 0;
    if (r != NULL) {
        r->id = empq_strdup(id);
        r->models = calloc(nm > 0 ? nm : 1, sizeof *r->models);
    }
    if (r == NULL || r->id == NULL || r->models == NULL) {
        if (r != NULL) {
            free(r->id);
            free(r->models);
            free(r);
        }
        empq__run__free_unpacked(run, NULL);
        *rc = EMPQ_ENOMEM;
        snprintf(why, whylen, "run %s: out of memory", id);
        return NULL;
    }
    r->run = run;
    r->n_models = nm;
    for (size_t i = 0; i < nm; i++) {
        r->models[i].spec = run->spec->models[i];
        r->models[i].human = run->spec->models[i]->provider != NULL &&
                             strcmp(run->spec->models[i]->provider, "human") == 0;
    }
    r->used = ++e->tick;
    r->next = e->runs;
    e->runs = r;
    e->n_runs++;
    EMPQ_INFO("event=run_loaded run=%s models=%zu prompts=%u", id, nm, run->n_prompts);
    /* every source is checked at once, so the broker hears of a model this
     * worker cannot call (worker__engine_unusable) with its first job of the
     * run, whatever model that job is for */
    for (size_t i = 0; i < nm; i++)
        if (!r->models[i].human)
            worker__wmodel_ready(e, r, &r->models[i]);
    runs_trim(e);
    return r;
}

/* ==================== finished jobs ==================== */

/* Appends a finished job; NULL on ENOMEM (logged: the broker's lease will
 * bring the job back). The pointer is valid until the next fin_add. */
static worker__fin *fin_add(worker__engine *e, worker__run *run, const char *run_id, uint32_t job)
{
    if (worker__grow((void **)&e->fins, &e->cap_fins, e->n_fins + 1, sizeof *e->fins) != 0) {
        EMPQ_ERROR_LIMITED("oom/outcome", "event=oom what=outcome run=%s job=%u", run_id, job);
        return NULL;
    }
    worker__fin *f = &e->fins[e->n_fins++];
    memset(f, 0, sizeof *f);
    Empq__Generation init = EMPQ__GENERATION__INIT;
    f->gen = init;
    f->run = run;
    if (run != NULL)
        run->refs++;
    else
        f->run_id_owned = empq_strdup(run_id);
    f->job = job;
    return f;
}

static const char *fin_run_id(const worker__fin *f) { return f->run != NULL ? f->run->id : f->run_id_owned; }

static void fin_release(worker__engine *e, worker__fin *f)
{
    if (f->run != NULL)
        f->run->refs--;
    free(f->run_id_owned);
    if (f->gen_owned) {
        free(f->gen.text);
        free(f->gen.finish_reason);
        free(f->gen.model_reported);
        free(f->gen.system_fingerprint);
        free(f->gen.request_id);
        free(f->gen.thinking);
        free(f->gen.safety_ratings);
    }
    if (f->cached != NULL)
        empq__generation__free_unpacked(f->cached, NULL);
    free(f->reason);
    free(f->excerpt);
    (void)e;
}

/* Queues a job that did not reach the backend: RETRY below max_attempts or
 * when retryable is 2 (always retry: the worker's trouble, Redis or memory,
 * sent as a local failure that is not an attempt), DEAD otherwise. */
void worker__fin_fail(worker__engine *e, worker__run *run, const char *run_id, const Empq__Job *j,
                     uint32_t max_attempts, int retryable, uint32_t retry_ms, const char *reason)
{
    worker__fin *f = fin_add(e, run, run_id, j->index);
    if (f == NULL)
        return;
    f->prompt = j->prompt;
    f->model = j->model;
    f->sample = j->sample;
    f->attempt = j->has_attempt ? j->attempt : 1;
    uint64_t now = empq_now_ms();
    f->started_ms = f->finished_ms = now;
    if (retryable == 2 || (retryable && f->attempt < max_attempts)) {
        f->kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
        f->retry_after_ms = retry_ms;
        f->local_failure = retryable == 2;
    } else {
        f->kind = EMPQ__OUTCOME_KIND__OUTCOME_DEAD;
    }
    f->reason = empq_strdup(reason);
}

void worker__fin_released(worker__engine *e, worker__run *run, const char *run_id, uint32_t job, const char *why)
{
    worker__fin *f = fin_add(e, run, run_id, job);
    if (f == NULL)
        return;
    f->kind = EMPQ__OUTCOME_KIND__OUTCOME_RELEASED;
    f->reason = empq_strdup(why);
}

void worker__fin_batched(worker__engine *e, const worker__req *r)
{
    worker__fin *f = fin_add(e, r->run, r->run->id, r->job);
    if (f == NULL)
        return; /* the broker keeps the lease: the results still land, the credit frees later */
    f->kind = EMPQ__OUTCOME_KIND__OUTCOME_BATCHED;
    f->prompt = r->prompt;
    f->model = r->model;
    f->sample = r->sample;
    f->attempt = r->attempt;
}

void worker__fin_mark_batch(worker__engine *e, size_t before)
{
    for (size_t i = before; i < e->n_fins; i++)
        e->fins[i].from_batch = 1;
}

/* ==================== engine ==================== */

int worker__engine_new(worker__engine **out, const worker__options *opt, empq_store *store,
                       const worker__transport *tp, empq_error *err)
{
    *out = NULL;
    if (store == NULL || tp == NULL || tp->start == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "worker engine: store and transport are required");
    worker__engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "worker engine: out of memory");
    worker__options def = WORKER__OPTIONS_INIT;
    e->opt = opt != NULL ? *opt : def;
    if (e->opt.worker_id == NULL)
        e->opt.worker_id = def.worker_id;
    if (e->opt.max_runs == 0)
        e->opt.max_runs = def.max_runs;
    e->store = store;
    e->tp = *tp;
    Empq__Outcomes init = EMPQ__OUTCOMES__INIT;
    e->outcomes = init;
    *out = e;
    return EMPQ_OK;
}

void worker__req_recycle(worker__engine *e, worker__req *r)
{
    free(r->body_owned);
    r->body_owned = NULL;
    r->body = NULL;
    if (r->resp.cap > RESP_KEEP)
        empq_buf_free(&r->resp);
    r->resp.len = 0;
    if (r->resp.data != NULL)
        r->resp.data[0] = '\0';
    if (r->run != NULL)
        r->run->refs--;
    r->run = NULL;
    if (r->sent)
        e->sent--;
    r->sent = 0;
    r->in_use = 0;
    r->next_free = e->free_reqs;
    e->free_reqs = r;
    e->in_flight--;
}

void worker__engine_free(worker__engine **ep)
{
    if (ep == NULL || *ep == NULL)
        return;
    worker__engine *e = *ep;
    while (e->batches != NULL)
        worker__batch_free(e, e->batches); /* their requests are recycled below */
    for (size_t i = 0; i < e->n_finish; i++)
        free(e->finish_keys[i]); /* still open: a worker taking them over reads them again */
    free(e->finish_keys);
    for (size_t i = 0; i < e->n_reqs; i++) {
        worker__req *r = e->reqs[i];
        if (r->in_use) {
            if (r->sent && e->tp.cancel != NULL)
                e->tp.cancel(e->tp.ctx, r);
            worker__req_recycle(e, r);
        }
        if (e->tp.drop != NULL)
            e->tp.drop(e->tp.ctx, r);
        empq_buf_free(&r->resp);
        free(r);
    }
    free(e->reqs);
    for (size_t i = 0; i < e->n_fins; i++)
        fin_release(e, &e->fins[i]);
    free(e->fins);
    while (e->runs != NULL) {
        worker__run *r = e->runs;
        e->runs = r->next;
        run_free(r);
    }
    free(e->results);
    free(e->puts);
    free(e->put_fin);
    free(e->outs);
    free(e->out_ptrs);
    free(e->probs);
    free(e->prob_ptrs);
    free(e->jw);
    free(e->uidx);
    free(e->prompts);
    free(e->sys);
    free(e->user);
    free(e->keys);
    free(e->hits);
    free(e->key_job);
    free(e);
    *ep = NULL;
}

worker__req *worker__req_get(worker__engine *e)
{
    worker__req *r = e->free_reqs;
    if (r != NULL) {
        e->free_reqs = r->next_free;
    } else {
        if (worker__grow((void **)&e->reqs, &e->cap_reqs, e->n_reqs + 1, sizeof *e->reqs) != 0)
            return NULL;
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return NULL;
        e->reqs[e->n_reqs++] = r;
    }
    r->next_free = NULL;
    r->next_queued = NULL;
    r->sent = 0;
    r->in_use = 1;
    r->ctl = 0;
    r->in_batch = 0;
    r->batch = NULL;
    r->method = NULL;
    r->upload = 0;
    r->status = 0;
    r->truncated = r->too_large = 0;
    r->retry_after[0] = r->retry_after_ms[0] = r->transport_error[0] = '\0';
    r->resp.len = 0;
    e->in_flight++;
    return r;
}

int worker__cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The job a request answers, as the broker sent it. */
Empq__Job worker__job_of(const worker__req *r)
{
    Empq__Job j = EMPQ__JOB__INIT;
    j.index = r->job;
    j.prompt = r->prompt;
    j.model = r->model;
    j.has_sample = j.has_attempt = 1;
    j.sample = r->sample;
    j.attempt = r->attempt;
    return j;
}

/* Hands the ready request r to the transport; the clock of its latency
 * starts here. A refused start is the job's RETRY (or DEAD). */
static void send_request(worker__engine *e, worker__req *r)
{
    empq_error err = {0};
    r->started_ms = empq_now_ms();
    r->started_mono = empq_mono_ms();
    int rc = e->tp.start(e->tp.ctx, r, &err);
    if (rc != EMPQ_OK) {
        worker__run *run = r->run;
        run->refs++; /* through the recycle */
        Empq__Job j = worker__job_of(r);
        worker__req_recycle(e, r);
        char why[EMPQ_ERROR_MSG_MAX + 32];
        snprintf(why, sizeof why, "transport: %s", err.msg);
        worker__fin_fail(e, run, run->id, &j, run->models[j.model].spec->max_attempts, 1, STORE_RETRY_MS, why);
        run->refs--;
        return;
    }
    r->sent = 1;
    e->sent++;
    e->stats.backend_calls++;
}


/* Starts the ready request r, or queues it while max_requests are on the
 * transport. */
void worker__dispatch(worker__engine *e, worker__req *r)
{
    if (e->opt.max_requests > 0 && (e->sent >= e->opt.max_requests || e->queue != NULL)) {
        if (e->queue_tail != NULL)
            e->queue_tail->next_queued = r;
        else
            e->queue = r;
        e->queue_tail = r;
        return;
    }
    send_request(e, r);
}

/* Prepares the backend request of job w (a cache miss) and starts it, or
 * queues it while max_requests are on the transport. */
static void start_request(worker__engine *e, worker__run *run, worker__jwork *w, const char *system, const char *user)
{
    const Empq__Job *j = w->job;
    worker__wmodel *wm = &run->models[j->model];
    const Empq__ModelSpec *m = wm->spec;
    empq_error err = {0};
    worker__req *r = worker__req_get(e);
    if (r == NULL) {
        worker__fin_fail(e, run, run->id, j, m->max_attempts, 2, STORE_RETRY_MS, "worker out of memory");
        return;
    }
    r->run = run;
    run->refs++;
    r->job = j->index;
    r->prompt = j->prompt;
    r->model = j->model;
    r->sample = w->sample;
    r->attempt = w->attempt;
    memcpy(r->cache_key, w->key, sizeof r->cache_key);
    int rc = empq_provider_body(m, system, user, w->sample, &r->body_owned, &r->body_len, &err);
    if (rc != EMPQ_OK) {
        worker__req_recycle(e, r);
        worker__fin_fail(e, run, run->id, j, m->max_attempts, rc == EMPQ_ENOMEM, STORE_RETRY_MS, err.msg);
        return;
    }
    r->body = r->body_owned;
    r->url = wm->ep.url;
    r->headers = wm->headers;
    r->timeout_ms = m->timeout_ms > 0 ? m->timeout_ms : 120000;
    if (worker__batch_model(m)) {
        worker__batch_add(e, r);
        return;
    }
    worker__dispatch(e, r);
}

/* Starts the queued requests while the transport has room for them. */
static void pump_queue(worker__engine *e)
{
    while (e->queue != NULL && (e->opt.max_requests == 0 || e->sent < e->opt.max_requests)) {
        worker__req *r = e->queue;
        e->queue = r->next_queued;
        if (e->queue == NULL)
            e->queue_tail = NULL;
        r->next_queued = NULL;
        send_request(e, r);
    }
}

void worker__engine_batch(worker__engine *e, const Empq__JobBatch *b)
{
    size_t n = b->n_jobs;
    e->stats.jobs += n;
    if (n == 0)
        return;
    if (e->stopping) {
        for (size_t i = 0; i < n; i++)
            worker__fin_released(e, NULL, b->run_id, b->jobs[i]->index, "worker stopping");
        return;
    }
    int rc = EMPQ_OK;
    char why[EMPQ_ERROR_MSG_MAX];
    worker__run *run = worker__run_get(e, b->run_id, &rc, why, sizeof why);
    if (run == NULL) {
        /* Redis trouble: retry later; a run that is gone or unreadable: dead */
        int retry = (rc == EMPQ_ESTORE || rc == EMPQ_ENOMEM) ? 2 : 0;
        if (rc == EMPQ_ESTORE)
            worker__store_failed(e, "worker__run_get", why);
        else
            EMPQ_WARN_LIMITED("run_unavailable", "event=run_unavailable run=%s jobs=%zu outcome=%s reason=\"%s\"",
                              b->run_id, n, retry ? "retry" : "dead", why);
        for (size_t i = 0; i < n; i++)
            worker__fin_fail(e, NULL, b->run_id, b->jobs[i], 1, retry, STORE_RETRY_MS, why);
        return;
    }
    run->refs++; /* keep it through the batch, whatever trimming happens */
    const Empq__RunSpec *spec = run->run->spec;
    int force = b->has_force ? b->force : run->run->force;

    if (worker__grow((void **)&e->jw, &e->cap_jw, n, sizeof *e->jw) != 0 ||
        worker__grow((void **)&e->uidx, &e->cap_u, n, sizeof *e->uidx) != 0)
        goto nomem;
    /* the scratch arrays sized by unique prompts share cap_u: size them all */
    {
        size_t cap = e->cap_u;
        Empq__Prompt **p = realloc(e->prompts, cap * sizeof *p);
        if (p == NULL)
            goto nomem;
        e->prompts = p;
        char **s = realloc(e->sys, cap * sizeof *s);
        if (s == NULL)
            goto nomem;
        e->sys = s;
        char **u = realloc(e->user, cap * sizeof *u);
        if (u == NULL)
            goto nomem;
        e->user = u;
    }

    if (worker__grow((void **)&e->keys, &e->cap_keys, n, sizeof *e->keys) != 0)
        goto nomem;
    {
        size_t cap = e->cap_keys;
        Empq__Generation **h = realloc(e->hits, cap * sizeof *h);
        if (h == NULL)
            goto nomem;
        e->hits = h;
        size_t *kj = realloc(e->key_job, cap * sizeof *kj);
        if (kj == NULL)
            goto nomem;
        e->key_job = kj;
    }

    /* validate, and collect the distinct prompts */
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) {
        const Empq__Job *j = b->jobs[i];
        worker__jwork *w = &e->jw[i];
        w->job = j;
        w->sample = j->has_sample ? j->sample : 0;
        w->attempt = j->has_attempt && j->attempt > 0 ? j->attempt : 1;
        w->active = 1;
        w->key[0] = '\0';
        if (j->model >= run->n_models || j->prompt >= run->run->n_prompts) {
            snprintf(why, sizeof why, "job %u: prompt %u or model %u out of range for run %s", j->index, j->prompt,
                     j->model, run->id);
            worker__fin_fail(e, run, run->id, j, 1, 0, 0, why);
            w->active = 0;
            continue;
        }
        e->uidx[nu++] = j->prompt;
    }
    qsort(e->uidx, nu, sizeof *e->uidx, worker__cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < nu; i++)
        if (k == 0 || e->uidx[k - 1] != e->uidx[i])
            e->uidx[k++] = e->uidx[i];
    nu = k;
    for (size_t i = 0; i < nu; i++) {
        e->prompts[i] = NULL;
        e->sys[i] = e->user[i] = NULL;
    }

    /* one HMGET for the prompts */
    if (nu > 0) {
        rc = empq_store_prompts_get(e->store, run->id, e->uidx, nu, e->prompts);
        if (rc != EMPQ_OK) {
            snprintf(why, sizeof why, "store: %s", empq_store_errstr(e->store));
            worker__store_failed(e, "prompts_get", why);
            for (size_t i = 0; i < n; i++)
                if (e->jw[i].active)
                    worker__fin_fail(e, run, run->id, e->jw[i].job, 1, 2, STORE_RETRY_MS, why);
            goto done;
        }
        store_worked(e);
    }

    /* per job: human answer, or render + cache key */
    size_t nk = 0;
    const char *tmpl_user = spec->template_user != NULL ? spec->template_user : "{prompt}";
    const char *tmpl_sys = spec->template_system;
    for (size_t i = 0; i < n; i++) {
        worker__jwork *w = &e->jw[i];
        if (!w->active)
            continue;
        const Empq__Job *j = w->job;
        const uint32_t *pu = bsearch(&j->prompt, e->uidx, nu, sizeof *e->uidx, worker__cmp_u32);
        w->u = (size_t)(pu - e->uidx);
        const Empq__Prompt *p = e->prompts[w->u];
        worker__wmodel *wm = &run->models[j->model];
        const Empq__ModelSpec *m = wm->spec;
        if (p == NULL) {
            snprintf(why, sizeof why, "prompt %u of run %s not found in Redis", j->prompt, run->id);
            worker__fin_fail(e, run, run->id, j, 1, 0, 0, why);
            w->active = 0;
            continue;
        }
        if (wm->human) {
            w->active = 0;
            if (p->human_response == NULL || p->human_response[0] == '\0') { /* no empty answer is counted */
                snprintf(why, sizeof why, "prompt %u (%s) has no human response", j->prompt, p->id);
                worker__fin_fail(e, run, run->id, j, 1, 0, 0, why);
                continue;
            }
            worker__fin *f = fin_add(e, run, run->id, j->index);
            if (f == NULL)
                continue;
            f->prompt = j->prompt;
            f->model = j->model;
            f->sample = w->sample;
            f->attempt = w->attempt;
            f->kind = EMPQ__OUTCOME_KIND__OUTCOME_DONE;
            f->gen_owned = 1;
            f->gen.text = empq_strdup(p->human_response);
            f->started_ms = f->finished_ms = empq_now_ms();
            f->gen.has_created_ms = 1;
            f->gen.created_ms = f->started_ms;
            e->stats.human++;
            continue;
        }
        worker__wmodel_ready(e, run, wm);
        if (wm->prep_rc != EMPQ_OK) {
            worker__fin_fail(e, run, run->id, j, m->max_attempts, wm->prep_retryable, KEY_RETRY_MS, wm->prep_err);
            w->active = 0;
            continue;
        }
        empq_error err = {0};
        if (e->user[w->u] == NULL) {
            rc = empq_template_render(tmpl_user, p, &e->user[w->u], &err);
            if (rc == EMPQ_OK && tmpl_sys != NULL && tmpl_sys[0] != '\0')
                rc = empq_template_render(tmpl_sys, p, &e->sys[w->u], &err);
            if (rc != EMPQ_OK) {
                free(e->user[w->u]);
                e->user[w->u] = NULL;
                snprintf(why, sizeof why, "template: %s", err.msg);
                worker__fin_fail(e, run, run->id, j, m->max_attempts, rc == EMPQ_ENOMEM, STORE_RETRY_MS, why);
                w->active = 0;
                continue;
            }
        }
        rc = empq_cachekey(m, e->sys[w->u], e->user[w->u], w->sample, w->key, &err);
        if (rc != EMPQ_OK) {
            snprintf(why, sizeof why, "cache key: %s", err.msg);
            worker__fin_fail(e, run, run->id, j, m->max_attempts, rc == EMPQ_ENOMEM, STORE_RETRY_MS, why);
            w->active = 0;
            continue;
        }
        if (!force) {
            e->keys[nk] = w->key;
            e->key_job[nk] = i;
            e->hits[nk] = NULL;
            nk++;
        }
    }

    /* one MGET for the cache */
    if (nk > 0) {
        rc = empq_store_cache_get(e->store, e->keys, nk, e->hits);
        if (rc != EMPQ_OK) {
            snprintf(why, sizeof why, "store: %s", empq_store_errstr(e->store));
            worker__store_failed(e, "cache_get", why);
            for (size_t i = 0; i < n; i++)
                if (e->jw[i].active) {
                    worker__fin_fail(e, run, run->id, e->jw[i].job, 1, 2, STORE_RETRY_MS, why);
                    e->jw[i].active = 0;
                }
            goto done;
        }
        store_worked(e);
        for (size_t x = 0; x < nk; x++) {
            if (e->hits[x] != NULL && (e->hits[x]->text == NULL || e->hits[x]->text[0] == '\0')) {
                /* an empty answer cached by an older worker is no answer: call again */
                empq__generation__free_unpacked(e->hits[x], NULL);
                e->hits[x] = NULL;
            }
            if (e->hits[x] == NULL)
                continue;
            worker__jwork *w = &e->jw[e->key_job[x]];
            w->active = 0;
            worker__fin *f = fin_add(e, run, run->id, w->job->index);
            if (f == NULL) {
                empq__generation__free_unpacked(e->hits[x], NULL);
                continue;
            }
            f->prompt = w->job->prompt;
            f->model = w->job->model;
            f->sample = w->sample;
            f->attempt = w->attempt;
            f->kind = EMPQ__OUTCOME_KIND__OUTCOME_DONE;
            f->cache_hit = 1;
            memcpy(f->cache_key, w->key, sizeof f->cache_key);
            f->cached = e->hits[x];
            f->gen = *e->hits[x];
            f->started_ms = f->finished_ms = empq_now_ms();
            e->stats.cache_hits++;
        }
    }

    /* the misses go to the backend */
    for (size_t i = 0; i < n; i++) {
        worker__jwork *w = &e->jw[i];
        if (w->active)
            start_request(e, run, w, e->sys[w->u], e->user[w->u]);
    }

done:
    for (size_t i = 0; i < nu; i++) {
        if (e->prompts[i] != NULL)
            empq__prompt__free_unpacked(e->prompts[i], NULL);
        free(e->sys[i]);
        free(e->user[i]);
    }
    run->refs--;
    return;

nomem:
    EMPQ_ERROR_LIMITED("oom/batch", "event=oom what=batch run=%s jobs=%zu", run->id, n);
    for (size_t i = 0; i < n; i++)
        worker__fin_fail(e, run, run->id, b->jobs[i], 1, 2, STORE_RETRY_MS, "worker out of memory");
    run->refs--;
}

/* The outcome of job request r from its read reply pres (taken: cleared
 * here); raw (raw_len bytes, may be NULL) is what a dead letter's excerpt
 * is cut from. fail_dead: a retryable failure is dead at once (batch mode's
 * on_failure: dead). r goes back to the pool. */
void worker__complete_read(worker__engine *e, worker__req *r, empq_provider_result *pres, const char *raw,
                          size_t raw_len, int fail_dead)
{
    worker__run *run = r->run;
    worker__wmodel *wm = &run->models[r->model];
    const Empq__ModelSpec *m = wm->spec;
    uint64_t now = empq_now_ms();
    empq_judge_check(m, pres); /* a judge's answer that is no verdict: retry, then dead (batch results too) */
    worker__fin *f = fin_add(e, run, run->id, r->job);
    if (f == NULL) {
        empq_provider_result_clear(pres);
        worker__req_recycle(e, r);
        return;
    }
    f->prompt = r->prompt;
    f->model = r->model;
    f->sample = r->sample;
    f->attempt = r->attempt;
    f->from_batch = r->in_batch;
    f->started_ms = r->started_ms;
    f->finished_ms = now;
    memcpy(f->cache_key, r->cache_key, sizeof f->cache_key);
    f->http_status = (int32_t)pres->status;
    f->retry_after_ms = pres->retry_after_ms;
    uint32_t max_attempts = m->max_attempts > 0 ? m->max_attempts : 1;
    switch (pres->cls) {
    case EMPQ_PROVIDER_SUCCESS:
        f->kind = EMPQ__OUTCOME_KIND__OUTCOME_DONE;
        f->write_cache = 1;
        break;
    case EMPQ_PROVIDER_RETRYABLE:
        f->kind = f->attempt < max_attempts && !fail_dead ? EMPQ__OUTCOME_KIND__OUTCOME_RETRY
                                                          : EMPQ__OUTCOME_KIND__OUTCOME_DEAD;
        break;
    case EMPQ_PROVIDER_PERMANENT:
        f->kind = EMPQ__OUTCOME_KIND__OUTCOME_DEAD;
        f->model_fatal = pres->model_fatal;
        break;
    }
    /* the generation, or what a reply without answer reported (usage, ids,
     * safety ratings: for the dead letter and the cost); never cached */
    f->gen = pres->gen; /* takes the strings */
    f->gen_owned = 1;
    Empq__Generation init = EMPQ__GENERATION__INIT;
    pres->gen = init;
    if (f->kind == EMPQ__OUTCOME_KIND__OUTCOME_DONE) {
        f->gen.has_latency_ms = 1;
        uint64_t lat = empq_mono_ms() - r->started_mono;
        f->gen.latency_ms = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
        f->gen.has_created_ms = 1;
        f->gen.created_ms = now;
    }
    if (f->kind != EMPQ__OUTCOME_KIND__OUTCOME_DONE) {
        f->reason = empq_strdup(pres->reason);
        EMPQ_DEBUG("event=backend_failure run=%s job=%u model=%s attempt=%u status=%ld class=%s", run->id, r->job,
                   m->alias, r->attempt, pres->status, empq_provider_class_name(pres->cls));
    }
    if (f->kind == EMPQ__OUTCOME_KIND__OUTCOME_DEAD && raw != NULL && raw_len > 0) {
        f->excerpt = malloc(EXCERPT_MAX);
        if (f->excerpt != NULL)
            empq_provider_excerpt(raw, raw_len, wm->api_key, f->excerpt, EXCERPT_MAX);
    }
    empq_provider_result_clear(pres);
    worker__req_recycle(e, r);
}

void worker__engine_complete(worker__engine *e, worker__req *r)
{
    if (r->ctl) {
        worker__batch_call_done(e, r);
        return;
    }
    worker__wmodel *wm = &r->run->models[r->model];
    empq_http_reply rep = {
        .status = r->status,
        .body = r->resp.data,
        .body_len = r->resp.len,
        .retry_after = r->retry_after[0] ? r->retry_after : NULL,
        .retry_after_ms = r->retry_after_ms[0] ? r->retry_after_ms : NULL,
        .truncated = r->truncated,
        .too_large = r->too_large,
        .transport_error = r->transport_error[0] ? r->transport_error : NULL,
        .request_id = r->request_id[0] ? r->request_id : NULL,
    };
    empq_provider_result pres;
    empq_provider_parse(wm->spec, &rep, wm->api_key, empq_now_ms(), &pres);
    worker__complete_read(e, r, &pres, r->resp.data, r->resp.len, 0);
}

/* ==================== flush ==================== */

static void release_queue(worker__engine *e, const char *why);

/* Frees the fins that went out in the last Outcomes. */
static void fins_compact(worker__engine *e)
{
    if (e->flushed == 0)
        return;
    for (size_t i = 0; i < e->flushed; i++)
        fin_release(e, &e->fins[i]);
    memmove(e->fins, e->fins + e->flushed, (e->n_fins - e->flushed) * sizeof *e->fins);
    e->n_fins -= e->flushed;
    e->flushed = 0;
}

static void to_retry(worker__fin *f, const char *why)
{
    f->kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
    f->retry_after_ms = STORE_RETRY_MS;
    f->local_failure = 1;
    free(f->reason);
    f->reason = empq_strdup(why);
}

static size_t flush_outcomes(worker__engine *e, const Empq__Outcomes **out)
{
    fins_compact(e);
    size_t n = e->n_fins;
    if (out != NULL)
        *out = NULL;
    if (n == 0)
        return 0;
    if (worker__grow((void **)&e->results, &e->cap_results, n, sizeof *e->results) != 0 ||
        worker__grow((void **)&e->outs, &e->cap_outs, n, sizeof *e->outs) != 0) {
        EMPQ_ERROR_LIMITED("oom/flush", "event=oom what=flush outcomes=%zu", n);
        return 0; /* kept for the next turn */
    }
    {
        empq_store_put *p = realloc(e->puts, e->cap_results * sizeof *p);
        size_t *pf = p != NULL ? realloc(e->put_fin, e->cap_results * sizeof *pf) : NULL;
        Empq__Outcome **op = realloc(e->out_ptrs, e->cap_outs * sizeof *op);
        if (p != NULL)
            e->puts = p;
        if (pf != NULL)
            e->put_fin = pf;
        if (op != NULL)
            e->out_ptrs = op;
        if (p == NULL || pf == NULL || op == NULL) {
            EMPQ_ERROR_LIMITED("oom/flush", "event=oom what=flush outcomes=%zu", n);
            return 0;
        }
    }

    /* results (and cache entries) in one pipeline */
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        worker__fin *f = &e->fins[i];
        if (f->kind != EMPQ__OUTCOME_KIND__OUTCOME_DONE)
            continue;
        Empq__Result init = EMPQ__RESULT__INIT;
        Empq__Result *res = &e->results[np];
        *res = init;
        res->run_id = (char *)fin_run_id(f);
        res->job = f->job;
        res->prompt = f->prompt;
        res->model = f->model;
        res->has_sample = 1;
        res->sample = f->sample;
        res->gen = &f->gen;
        res->has_attempts = 1;
        res->attempts = f->attempt;
        res->has_cache_hit = 1;
        res->cache_hit = f->cache_hit;
        res->cache_key = f->cache_key[0] != '\0' ? f->cache_key : NULL;
        res->worker = (char *)e->opt.worker_id;
        res->has_started_ms = 1;
        res->started_ms = f->started_ms;
        res->has_finished_ms = 1;
        res->finished_ms = f->finished_ms;
        e->puts[np].result = res;
        e->puts[np].cache_key = f->write_cache && f->cache_key[0] != '\0' ? f->cache_key : NULL;
        e->put_fin[np] = i;
        np++;
    }
    if (np > 0) {
        int rc = empq_store_results_put(e->store, e->puts, np, NULL);
        if (rc != EMPQ_OK) {
            char why[EMPQ_ERROR_MSG_MAX];
            snprintf(why, sizeof why, "store: %s", empq_store_errstr(e->store));
            worker__store_failed(e, "results_put", why);
            for (size_t x = 0; x < np; x++)
                to_retry(&e->fins[e->put_fin[x]], why);
        } else {
            store_worked(e);
        }
    }

    /* dead letters: rare, one call each */
    for (size_t i = 0; i < n; i++) {
        worker__fin *f = &e->fins[i];
        if (f->kind != EMPQ__OUTCOME_KIND__OUTCOME_DEAD)
            continue;
        Empq__DeadLetter d = EMPQ__DEAD_LETTER__INIT;
        d.run_id = (char *)fin_run_id(f);
        d.job = f->job;
        d.reason = f->reason;
        d.has_last_status = 1;
        d.last_status = f->http_status;
        d.body_excerpt = f->excerpt != NULL && f->excerpt[0] != '\0' ? f->excerpt : NULL;
        d.has_attempts = 1;
        d.attempts = f->attempt;
        d.has_at_ms = 1;
        d.at_ms = empq_now_ms();
        d.worker = (char *)e->opt.worker_id;
        d.request_id = f->gen.request_id;
        d.finish_reason = f->gen.finish_reason;
        d.has_tokens_in = f->gen.has_tokens_in;
        d.tokens_in = f->gen.tokens_in;
        d.has_tokens_out = f->gen.has_tokens_out;
        d.tokens_out = f->gen.tokens_out;
        d.has_reasoning_tokens = f->gen.has_reasoning_tokens;
        d.reasoning_tokens = f->gen.reasoning_tokens;
        d.safety_ratings = f->gen.safety_ratings;
        if (d.run_id == NULL)
            continue;
        int rc = empq_store_dead_put(e->store, &d);
        if (rc != EMPQ_OK) {
            char why[EMPQ_ERROR_MSG_MAX];
            snprintf(why, sizeof why, "store: %s", empq_store_errstr(e->store));
            worker__store_failed(e, "dead_put", why);
            to_retry(f, why);
        } else {
            store_worked(e);
            EMPQ_WARN_LIMITED("job_dead", "event=job_dead run=%s job=%u attempts=%u status=%d reason=\"%s\"", d.run_id,
                              f->job, f->attempt, f->http_status, f->reason != NULL ? f->reason : "");
        }
    }

    /* the Outcomes message */
    for (size_t i = 0; i < n; i++) {
        worker__fin *f = &e->fins[i];
        Empq__Outcome init = EMPQ__OUTCOME__INIT;
        Empq__Outcome *o = &e->outs[i];
        *o = init;
        o->run_id = (char *)(fin_run_id(f) != NULL ? fin_run_id(f) : "");
        o->job = f->job;
        o->kind = f->kind;
        if (f->retry_after_ms > 0 && f->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY) {
            o->has_retry_after_ms = 1;
            o->retry_after_ms = f->retry_after_ms;
        }
        if (f->kind != EMPQ__OUTCOME_KIND__OUTCOME_DONE && f->reason != NULL && f->reason[0] != '\0')
            o->reason = f->reason;
        if (f->local_failure && f->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY)
            o->has_local_failure = o->local_failure = 1;
        if (f->http_status != 0) {
            o->has_http_status = 1;
            o->http_status = f->http_status;
        }
        /* usage for the broker's cost and token pacing: tokens_out is the
         * billed output, reasoning included; a reply that was no answer
         * (DEAD or RETRY) was billed too */
        if (!f->cache_hit && (f->kind == EMPQ__OUTCOME_KIND__OUTCOME_DONE || f->gen.has_tokens_in ||
                              f->gen.has_tokens_out)) {
            o->has_tokens = 1;
            o->tokens = f->gen.tokens_in + f->gen.tokens_out;
            o->has_tokens_in = o->has_tokens_out = 1;
            o->tokens_in = f->gen.tokens_in;
            o->tokens_out = f->gen.tokens_out;
            o->has_tokens_cached = f->gen.has_cached_tokens;
            o->tokens_cached = f->gen.cached_tokens;
        }
        if (f->model_fatal && f->kind == EMPQ__OUTCOME_KIND__OUTCOME_DEAD)
            o->has_model_fatal = o->model_fatal = 1;
        if (f->from_batch)
            o->has_from_batch = o->from_batch = 1;
        o->has_latency_ms = f->gen.has_latency_ms && !f->cache_hit; /* for the broker's latency histogram */
        o->latency_ms = f->gen.latency_ms;
        o->has_cache_hit = 1;
        o->cache_hit = f->cache_hit;
        e->out_ptrs[i] = o;
        switch (f->kind) {
        case EMPQ__OUTCOME_KIND__OUTCOME_DONE: e->stats.done++; break;
        case EMPQ__OUTCOME_KIND__OUTCOME_RETRY: e->stats.retry++; break;
        case EMPQ__OUTCOME_KIND__OUTCOME_DEAD: e->stats.dead++; break;
        case EMPQ__OUTCOME_KIND__OUTCOME_BATCHED: e->stats.batched++; break;
        default: e->stats.released++; break;
        }
    }
    e->outcomes.n_items = n;
    e->outcomes.items = e->out_ptrs;
    e->flushed = n;
    if (out != NULL)
        *out = &e->outcomes;
    return n;
}

/* The queue moves only while Redis answers: with Redis down the queued jobs
 * go back untried, so no more requests are made than were on the transport
 * when it went (their results are what cannot be written). */
size_t worker__engine_flush(worker__engine *e, const Empq__Outcomes **out)
{
    if (e->store_down && e->queue != NULL)
        release_queue(e, "Redis unavailable");
    size_t n = flush_outcomes(e, out);
    worker__batch_finish_flushed(e);
    if (!e->store_down)
        pump_queue(e);
    return n;
}

/* ==================== stopping and counters ==================== */

/* Hands back every queued request untried. */
static void release_queue(worker__engine *e, const char *why)
{
    while (e->queue != NULL) {
        worker__req *r = e->queue;
        e->queue = r->next_queued;
        r->next_queued = NULL;
        worker__fin_released(e, r->run, r->run->id, r->job, why);
        worker__req_recycle(e, r);
    }
    e->queue_tail = NULL;
}

size_t worker__engine_drop_queued(worker__engine *e)
{
    size_t n = 0;
    while (e->queue != NULL) {
        worker__req *r = e->queue;
        e->queue = r->next_queued;
        r->next_queued = NULL;
        worker__req_recycle(e, r);
        n++;
    }
    e->queue_tail = NULL;
    /* batch groups not sent yet: their leases are gone too */
    size_t before = e->in_flight;
    worker__batch_release(e, 1, 0, NULL);
    n += before - e->in_flight;
    /* on the transport but not wholly sent (a frozen worker wakes with such
     * requests): no provider has them, so none is started */
    for (size_t i = 0; e->tp.unsent != NULL && i < e->n_reqs; i++) {
        worker__req *r = e->reqs[i];
        if (!r->in_use || !r->sent || r->ctl || !e->tp.unsent(e->tp.ctx, r))
            continue;
        if (e->tp.cancel != NULL)
            e->tp.cancel(e->tp.ctx, r);
        worker__req_recycle(e, r);
        n++;
    }
    e->stats.dropped += n;
    return n;
}

void worker__engine_stop(worker__engine *e)
{
    e->stopping = 1;
    release_queue(e, "worker stopping");
    worker__batch_release(e, 0, 1, "worker stopping"); /* sent batches stay open in Redis for a taker */
}

void worker__engine_release_all(worker__engine *e)
{
    release_queue(e, "worker stopping: grace period over");
    worker__batch_release(e, 0, 1, "worker stopping: grace period over");
    for (size_t i = 0; i < e->n_reqs; i++) {
        worker__req *r = e->reqs[i];
        if (!r->in_use)
            continue;
        if (r->sent && e->tp.cancel != NULL)
            e->tp.cancel(e->tp.ctx, r);
        worker__fin_released(e, r->run, r->run->id, r->job, "worker stopping: grace period over");
        worker__req_recycle(e, r);
    }
}

size_t worker__engine_in_flight(const worker__engine *e) { return e->in_flight; }

size_t worker__engine_sent(const worker__engine *e) { return e->sent; }

size_t worker__engine_pending(const worker__engine *e) { return e->n_fins - e->flushed; }

void worker__engine_stats(const worker__engine *e, worker__stats *out) { *out = e->stats; }

size_t worker__engine_unusable(worker__engine *e, Empq__ModelProblem ***out)
{
    if (out != NULL)
        *out = NULL;
    size_t n = 0;
    for (const worker__run *r = e->runs; r != NULL; r = r->next)
        for (size_t i = 0; i < r->n_models; i++)
            n += r->models[i].prepared && r->models[i].prep_rc != EMPQ_OK;
    if (n == 0 || out == NULL)
        return n;
    if (n > e->cap_probs) {
        Empq__ModelProblem *p = realloc(e->probs, n * sizeof *p);
        if (p == NULL)
            return 0;
        e->probs = p;
        Empq__ModelProblem **pp = realloc(e->prob_ptrs, n * sizeof *pp);
        if (pp == NULL)
            return 0;
        e->prob_ptrs = pp;
        e->cap_probs = n;
    }
    size_t k = 0;
    for (const worker__run *r = e->runs; r != NULL; r = r->next) {
        for (size_t i = 0; i < r->n_models; i++) {
            const worker__wmodel *wm = &r->models[i];
            if (!wm->prepared || wm->prep_rc == EMPQ_OK)
                continue;
            Empq__ModelProblem *p = &e->probs[k];
            empq__model_problem__init(p);
            p->run_id = r->id;
            p->model = (uint32_t)i;
            p->reason = (char *)wm->prep_err;
            e->prob_ptrs[k++] = p;
        }
    }
    *out = e->prob_ptrs;
    return k;
}
