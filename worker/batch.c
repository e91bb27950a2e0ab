/* batch.c: the worker's batch mode (docs/internals.md, "Batch mode"). */
#include "engine_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/batchrec.h"
#include "empq/batchwire.h"
#include "empq/cachekey.h"
#include "empq/log.h"
#include "empq/spec.h"
#include "empq/template.h"

/* ==================== batch mode ==================== */
/* docs/internals.md, "Batch mode". A group collects the jobs of one (run,
 * model) with mode: batch; closed (full, or no job for BATCH_LINGER_MS), it
 * gets its durable record (batch.c) and is sent: OpenAI upload + create,
 * Anthropic create. Then it is polled with backoff and its results are
 * read back by custom_id into the jobs' outcomes, as interactive replies
 * are. Its jobs stay leased to this worker meanwhile. */

#define BATCH_LINGER_MS 300u        /* a group closes after this long without a new job */
#define BATCH_OWNER_MS 30000u       /* the record's owner key lives at least this long (and 3 x the
                                       longest poll interval), renewed at each poll */
#define BATCH_CALL_RETRY_MS 1000u   /* a failed call is tried again after this, doubling */
#define BATCH_CALL_TRIES 8u         /* failed calls in a row before the batch's jobs are handed back */
#define BATCH_HELD_RETRY_MS 5000u   /* a leased job found in another open batch comes back after this */
#define BATCH_SCAN_MS 2000u         /* how often the open records are checked for a dead owner */

typedef enum wb_phase {
    WB_COLLECT = 0, /* taking jobs */
    WB_UPLOAD,      /* OpenAI: the input file */
    WB_CREATE,      /* the batch */
    WB_FIND,        /* a create without answer: is the batch there? */
    WB_POLL,        /* running */
    WB_OUTPUT,      /* OpenAI output file / Anthropic results */
    WB_ERRORS       /* OpenAI error file */
} wb_phase;

typedef struct worker__wbatch {
    worker__run *run; /* holds a ref */
    uint32_t model;
    worker__req **reqs; /* the jobs; a slot is NULL once its outcome is out */
    uint32_t *jobs;     /* from the close on: reqs' jobs, sorted (reqs in the same order) */
    size_t n, cap;
    size_t bytes;
    uint64_t last_add_mono;
    wb_phase phase;
    empq_batchrec rec;
    empq_batch_info info;
    char *payload;    /* the JSONL file (OpenAI) or the create body (Anthropic, Gemini) */
    size_t payload_len;
    char *create;     /* OpenAI create body */
    char *ctl_url;
    struct curl_slist *ctl_headers;
    worker__req *ctl; /* the call in flight */
    int due;          /* a call is to be sent at next_at */
    uint64_t next_at;
    uint32_t poll_ms, poll_cur, failures;
    uint64_t last_counts;
    int adopted;      /* taken over from a worker that died */
    int cancel;       /* the run was cancelled: the next call is the provider's cancel */
    int cancel_sent;
    int cancel_inflight; /* the call in flight is the cancel (Gemini's answers no batch) */
    int create_unconfirmed; /* a create was sent and no batch id is recorded yet */
    struct worker__wbatch *next;
} wbatch;

int worker__batch_model(const Empq__ModelSpec *m) { return empq_batchwire_mode(m) && m->batch != NULL; }

/* How long a record's owner key lives: past three of the longest polls. */
static uint32_t owner_ttl(const Empq__ModelSpec *m)
{
    uint64_t poll = m->batch != NULL && m->batch->poll_ms > 0 ? m->batch->poll_ms : 30000;
    uint64_t t = poll * 10 * 3;
    return t < BATCH_OWNER_MS ? BATCH_OWNER_MS : t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static const Empq__ModelSpec *wb_spec(const wbatch *b) { return b->run->models[b->model].spec; }

static int wb_is_openai(const wbatch *b) { return strcmp(wb_spec(b)->provider, "openai") == 0; }

static int wb_is_anthropic(const wbatch *b) { return strcmp(wb_spec(b)->provider, "anthropic") == 0; }

/* Anthropic's batches carry no key: a create whose answer was lost is
 * found by its time and size, which two unconfirmed creates of the same
 * size could swap. So this worker sends an Anthropic create only while no
 * other is unconfirmed, and writes created_ms just before it: the batch
 * found is then its own, or another worker's. Returns 1 when b must wait,
 * else 0 (created_ms written; on a store failure b waits too). */
static int wb_create_waits(worker__engine *e, wbatch *b)
{
    if (!wb_is_anthropic(b))
        return 0;
    for (const wbatch *o = e->batches; o != NULL; o = o->next)
        if (o != b && o->create_unconfirmed && wb_is_anthropic(o))
            return 1;
    char ms[24];
    empq_error err = {0};
    snprintf(ms, sizeof ms, "%llu", (unsigned long long)empq_now_ms());
    if (empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_UPLOADED, "created_ms", ms, &err) != EMPQ_OK) {
        worker__store_failed(e, "batch_advance", err.msg);
        return 1;
    }
    return 0;
}

void worker__batch_free(worker__engine *e, struct worker__wbatch *b)
{
    for (wbatch **p = &e->batches; *p != NULL; p = &(*p)->next)
        if (*p == b) {
            *p = b->next;
            break;
        }
    free(b->reqs);
    free(b->jobs);
    free(b->payload);
    free(b->create);
    free(b->ctl_url);
    curl_slist_free_all(b->ctl_headers);
    empq_batchrec_clear(&b->rec);
    b->run->refs--;
    free(b);
}

/* Every job still waiting in b gets outcome kind (RETRY or RELEASED) with
 * why; then b is freed (its record is left as it is). */
static void wb_hand_back(worker__engine *e, wbatch *b, Empq__OutcomeKind kind, const char *why)
{
    const Empq__ModelSpec *m = wb_spec(b);
    for (size_t i = 0; i < b->n; i++) {
        worker__req *r = b->reqs[i];
        if (r == NULL)
            continue;
        Empq__Job j = worker__job_of(r);
        worker__run *run = r->run;
        int in_batch = r->in_batch;
        size_t before = e->n_fins;
        run->refs++;
        worker__req_recycle(e, r);
        if (kind == EMPQ__OUTCOME_KIND__OUTCOME_RELEASED)
            worker__fin_released(e, run, run->id, j.index, why);
        else
            worker__fin_fail(e, run, run->id, &j, m->max_attempts, 1, STORE_RETRY_MS, why);
        if (in_batch) /* the broker holds it as batched: this outcome ends that */
            worker__fin_mark_batch(e, before);
        run->refs--;
        b->reqs[i] = NULL;
    }
    if (b->ctl != NULL) {
        if (b->ctl->sent && e->tp.cancel != NULL)
            e->tp.cancel(e->tp.ctx, b->ctl);
        worker__req_recycle(e, b->ctl);
        b->ctl = NULL;
    }
    worker__batch_free(e, b);
}

/* Leaves b to its durable record: its jobs are recycled without an outcome
 * (the broker holds them as batched), its call in flight is cancelled, the
 * record's owner key is let go so another worker (or this one restarted)
 * takes the batch over at its next scan; b is freed. */
static void wb_leave(worker__engine *e, wbatch *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->reqs[i] != NULL)
            worker__req_recycle(e, b->reqs[i]);
    b->n = 0;
    empq_batchrec_claim(e->store, b->rec.key, e->opt.worker_id, 1, NULL);
    EMPQ_INFO("event=batch_left batch=%s provider_id=%s (its record stays open for a taker)", b->rec.key,
              b->info.id);
    wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED, NULL);
}

static int cmp_req_job(const void *a, const void *b)
{
    const worker__req *x = *(worker__req *const *)a, *y = *(worker__req *const *)b;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* Sends b's call op (id: the batch or file id, or NULL) with body (borrowed
 * from b, may be NULL); upload: body is the JSONL file. On failure the call
 * is due again later. */
static void wb_call(worker__engine *e, wbatch *b, empq_batch_op op, const char *id, const char *body, size_t len,
                    int upload)
{
    b->cancel_inflight = 0;
    worker__wmodel *wm = &b->run->models[b->model];
    const Empq__ModelSpec *m = wm->spec;
    empq_error err = {0};
    char *base = NULL;
    empq_http_request hr = {0};
    int rc = m->base_url != NULL ? empq_expand_env(m->base_url, &base, &err) : EMPQ_OK;
    if (rc == EMPQ_OK)
        rc = empq_batchwire_endpoint(m, base, wm->api_key, op, id, &hr, &err);
    free(base);
    worker__req *r = rc == EMPQ_OK ? worker__req_get(e) : NULL;
    if (r == NULL) {
        empq_http_request_clear(&hr);
        EMPQ_WARN_LIMITED("batch_call", "event=batch_call_failed batch=%s error=\"%s\"", b->rec.key,
                          rc == EMPQ_OK ? "out of memory" : err.msg);
        b->due = 1;
        b->next_at = empq_mono_ms() + BATCH_CALL_RETRY_MS;
        return;
    }
    curl_slist_free_all(b->ctl_headers);
    b->ctl_headers = NULL;
    for (size_t i = 0; i < hr.n_headers; i++)
        b->ctl_headers = curl_slist_append(b->ctl_headers, hr.headers[i]);
    b->ctl_headers = curl_slist_append(b->ctl_headers, "Expect:");
    free(b->ctl_url);
    b->ctl_url = hr.url;
    hr.url = NULL;
    r->method = strcmp(hr.method, "GET") == 0 ? "GET" : NULL;
    empq_http_request_clear(&hr);
    r->ctl = 1;
    r->batch = b;
    r->run = b->run;
    b->run->refs++;
    r->model = b->model;
    r->url = b->ctl_url;
    r->headers = b->ctl_headers;
    r->body = body;
    r->body_len = body != NULL ? len : 0;
    r->upload = upload;
    r->timeout_ms = 120000;
    r->started_ms = empq_now_ms();
    r->started_mono = empq_mono_ms();
    b->ctl = r;
    b->due = 0;
    rc = e->tp.start(e->tp.ctx, r, &err);
    if (rc != EMPQ_OK) {
        b->ctl = NULL;
        worker__req_recycle(e, r);
        b->due = 1;
        b->next_at = empq_mono_ms() + BATCH_CALL_RETRY_MS;
        return;
    }
    r->sent = 1;
    e->sent++;
    e->stats.batch_calls++;
}

/* The call of b's current phase. */
static void wb_call_phase(worker__engine *e, wbatch *b)
{
    switch (b->phase) {
    case WB_COLLECT: break;
    case WB_UPLOAD: wb_call(e, b, EMPQ_BATCH_OP_UPLOAD, NULL, b->payload, b->payload_len, 1); break;
    case WB_CREATE:
        if (wb_create_waits(e, b)) {
            b->due = 1;
            b->next_at = empq_mono_ms() + 100;
            break;
        }
        b->create_unconfirmed = 1;
        if (wb_is_openai(b))
            wb_call(e, b, EMPQ_BATCH_OP_CREATE, NULL, b->create, strlen(b->create), 0);
        else
            wb_call(e, b, EMPQ_BATCH_OP_CREATE, NULL, b->payload, b->payload_len, 0);
        break;
    case WB_FIND: wb_call(e, b, EMPQ_BATCH_OP_LIST, NULL, NULL, 0, 0); break;
    case WB_POLL:
        if (b->cancel && !b->cancel_sent) {
            b->cancel_sent = 1;
            EMPQ_INFO("event=batch_cancel batch=%s provider_id=%s reason=run_cancelled", b->rec.key, b->info.id);
            wb_call(e, b, EMPQ_BATCH_OP_CANCEL, b->info.id, NULL, 0, 0);
            b->cancel_inflight = b->ctl != NULL;
        } else {
            wb_call(e, b, EMPQ_BATCH_OP_GET, b->info.id, NULL, 0, 0);
        }
        break;
    case WB_OUTPUT:
        wb_call(e, b, EMPQ_BATCH_OP_RESULTS, wb_is_openai(b) ? b->info.output_file_id : b->info.id, NULL, 0, 0);
        break;
    case WB_ERRORS: wb_call(e, b, EMPQ_BATCH_OP_RESULTS, b->info.error_file_id, NULL, 0, 0); break;
    }
}

/* Closes group b: its durable record first, then the request lines, then
 * the first call. */
static void wb_close(worker__engine *e, wbatch *b)
{
    const Empq__ModelSpec *m = wb_spec(b);
    empq_error err = {0};
    uint32_t *jobs = malloc(b->n * sizeof *jobs), *att = malloc(b->n * sizeof *att);
    if (jobs == NULL || att == NULL) {
        free(jobs);
        free(att);
        wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, "worker out of memory");
        return;
    }
    qsort(b->reqs, b->n, sizeof *b->reqs, cmp_req_job);
    for (size_t i = 0; i < b->n; i++) {
        jobs[i] = b->reqs[i]->job;
        att[i] = b->reqs[i]->attempt;
    }
    int rc = empq_batchrec_prepare(e->store, b->run->id, b->model, jobs, att, b->n, e->opt.worker_id,
                                   owner_ttl(m), &b->rec, &err);
    free(jobs);
    free(att);
    if (rc != EMPQ_OK) {
        worker__store_failed(e, "batch_prepare", err.msg);
        wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, err.msg);
        return;
    }
    /* jobs another open batch holds already are not sent twice */
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        worker__req *r = b->reqs[i];
        int taken = 0;
        for (size_t x = 0; x < b->rec.n && !taken; x++)
            taken = b->rec.jobs[x] == r->job;
        if (taken) {
            b->reqs[k++] = r;
            continue;
        }
        /* its batch's owner (or the worker that takes the batch over when
         * the owner died) writes its result when that batch ends: until
         * then the job comes back now and then, not counted as an attempt */
        Empq__Job j = worker__job_of(r);
        worker__run *run = r->run;
        run->refs++;
        worker__req_recycle(e, r);
        worker__fin_fail(e, run, run->id, &j, m->max_attempts, 2, BATCH_HELD_RETRY_MS,
                 "batch: the job is in another open provider batch");
        run->refs--;
    }
    b->n = k;
    if (b->n == 0) {
        worker__batch_free(e, b);
        return;
    }
    /* durable now: the broker holds these jobs as batched, this worker's
     * credit is free for more */
    for (size_t i = 0; i < b->n; i++) {
        b->reqs[i]->in_batch = 1;
        worker__fin_batched(e, b->reqs[i]);
    }
    b->jobs = malloc(b->n * sizeof *b->jobs);
    if (b->jobs == NULL) {
        empq_batchrec_finish(e->store, b->rec.key, NULL);
        wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, "worker out of memory");
        return;
    }
    for (size_t i = 0; i < b->n; i++)
        b->jobs[i] = b->reqs[i]->job;
    empq_buf pay = {0};
    int openai = wb_is_openai(b);
    char *head = NULL, *tail = NULL; /* the create body around its requests */
    if (!openai)
        rc = empq_batchwire_create_frame(m, b->rec.key, &head, &tail, &err);
    if (rc == EMPQ_OK && !openai)
        rc = empq_buf_append(&pay, head, strlen(head));
    for (size_t i = 0; rc == EMPQ_OK && i < b->n; i++) {
        worker__req *r = b->reqs[i];
        char cid[EMPQ_BATCHWIRE_ID_MAX], *line = NULL;
        size_t len = 0;
        rc = empq_batchwire_line(m, empq_batchwire_custom_id(r->job, r->attempt, cid, sizeof cid), r->body,
                                 r->body_len, &line, &len, &err);
        if (rc == EMPQ_OK && !openai && i > 0)
            rc = empq_buf_append(&pay, ",", 1);
        if (rc == EMPQ_OK)
            rc = empq_buf_append(&pay, line, len);
        free(line);
    }
    if (rc == EMPQ_OK && !openai)
        rc = empq_buf_append(&pay, tail, strlen(tail));
    free(head);
    free(tail);
    if (rc != EMPQ_OK) {
        empq_buf_free(&pay);
        empq_batchrec_finish(e->store, b->rec.key, NULL);
        wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, err.msg[0] ? err.msg : "worker out of memory");
        return;
    }
    b->payload = pay.data;
    b->payload_len = pay.len;
    b->poll_ms = m->batch->poll_ms > 0 ? m->batch->poll_ms : 30000;
    b->poll_cur = b->poll_ms;
    EMPQ_INFO("event=batch_closed batch=%s model=%s jobs=%zu bytes=%zu", b->rec.key, m->alias, b->n, pay.len);
    b->phase = openai ? WB_UPLOAD : WB_CREATE;
    if (!openai) {
        /* Anthropic and Gemini take the requests in the create call: "uploaded" means
         * ready to create, with the time the create starts */
        char ms[24];
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)empq_now_ms());
        rc = empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_UPLOADED, NULL, NULL, &err);
        if (rc == EMPQ_OK)
            rc = empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_UPLOADED, "created_ms", ms, &err);
        if (rc != EMPQ_OK) {
            worker__store_failed(e, "batch_advance", err.msg);
            empq_batchrec_finish(e->store, b->rec.key, NULL);
            wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, err.msg);
            return;
        }
    }
    wb_call_phase(e, b);
}

void worker__batch_add(worker__engine *e, worker__req *r)
{
    const Empq__ModelSpec *m = r->run->models[r->model].spec;
    wbatch *b = e->batches;
    while (b != NULL && !(b->phase == WB_COLLECT && b->run == r->run && b->model == r->model))
        b = b->next;
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL) {
            Empq__Job j = worker__job_of(r);
            worker__run *run = r->run;
            run->refs++;
            worker__req_recycle(e, r);
            worker__fin_fail(e, run, run->id, &j, 1, 2, STORE_RETRY_MS, "worker out of memory");
            run->refs--;
            return;
        }
        b->run = r->run;
        b->run->refs++;
        b->model = r->model;
        b->next = e->batches;
        e->batches = b;
    }
    if (worker__grow((void **)&b->reqs, &b->cap, b->n + 1, sizeof *b->reqs) != 0) {
        wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, "worker out of memory");
        return;
    }
    r->batch = b;
    r->started_ms = empq_now_ms();
    r->started_mono = empq_mono_ms();
    b->reqs[b->n++] = r;
    b->bytes += r->body_len + 128; /* the line's envelope */
    b->last_add_mono = r->started_mono;
    uint64_t max_bytes = m->batch->has_max_bytes ? m->batch->max_bytes : 200000000u;
    if ((m->batch->max_requests > 0 && b->n >= m->batch->max_requests) || b->bytes + 65536 >= max_bytes)
        wb_close(e, b);
}

/* The job request of b for custom_id cid, taken out of b; NULL if none. */
static worker__req *wb_take(wbatch *b, const char *cid)
{
    uint32_t job = 0, attempt = 0;
    if (empq_batchwire_parse_custom_id(cid, &job, &attempt) != EMPQ_OK || b->jobs == NULL)
        return NULL;
    const uint32_t *at = bsearch(&job, b->jobs, b->n, sizeof *b->jobs, worker__cmp_u32);
    if (at == NULL)
        return NULL;
    size_t i = (size_t)(at - b->jobs);
    worker__req *r = b->reqs[i];
    if (r == NULL || r->attempt != attempt)
        return NULL;
    b->reqs[i] = NULL;
    return r;
}

/* Job request r of b gets result pres (raw: its result line, may be NULL):
 * on_failure interactive sends a retryable one again at once, alone;
 * anything else is read as an interactive reply would be. */
static void wb_outcome(worker__engine *e, wbatch *b, worker__req *r, empq_provider_result *pres, const char *raw,
                       size_t raw_len)
{
    const Empq__ModelSpec *m = wb_spec(b);
    int fail_dead = m->batch->on_failure != NULL && strcmp(m->batch->on_failure, "dead") == 0;
    int interactive = m->batch->on_failure != NULL && strcmp(m->batch->on_failure, "interactive") == 0;
    if (interactive && pres->cls == EMPQ_PROVIDER_RETRYABLE && r->body != NULL && !e->stopping) {
        EMPQ_DEBUG("event=batch_retry_interactive batch=%s job=%u reason=\"%s\"", b->rec.key, r->job,
                   pres->reason);
        empq_provider_result_clear(pres);
        r->batch = NULL;
        worker__dispatch(e, r);
    } else {
        worker__complete_read(e, r, pres, raw, raw_len, fail_dead);
    }
}

/* Reads a results body into the jobs' outcomes (a Gemini body holds them
 * in the batch object: empq_batchwire_results_lines makes them lines). */
static void wb_results(worker__engine *e, wbatch *b, const char *body, size_t len)
{
    worker__wmodel *wm = &b->run->models[b->model];
    const Empq__ModelSpec *m = wm->spec;
    char *lines = NULL;
    size_t n_lines = 0;
    empq_error lerr = {0};
    if (empq_batchwire_results_lines(m, body, len, &lines, &n_lines, &lerr) != EMPQ_OK) {
        EMPQ_WARN_LIMITED("batch_lines", "event=batch_results_unreadable batch=%s error=\"%s\"", b->rec.key,
                          lerr.msg);
        return;
    }
    if (lines != NULL) {
        body = lines;
        len = n_lines;
    }
    const char *p = body, *end = body + len;
    size_t bad = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            char cid[EMPQ_BATCHWIRE_ID_MAX];
            empq_provider_result pres;
            empq_error err = {0};
            int rc = empq_batchwire_result(m, p, n, wm->api_key, empq_now_ms(), cid, &pres, &err);
            worker__req *r = rc == EMPQ_OK ? wb_take(b, cid) : NULL;
            if (r != NULL)
                wb_outcome(e, b, r, &pres, p, n);
            else {
                bad++;
                empq_provider_result_clear(&pres);
            }
        }
        p += n + 1;
    }
    free(lines);
    if (bad > 0)
        EMPQ_WARN_LIMITED("batch_lines", "event=batch_result_lines_skipped batch=%s lines=%zu", b->rec.key, bad);
}

/* The batch ended and its results are read: what is left gets a retry, the
 * record is closed. */
static void wb_done(worker__engine *e, wbatch *b, const char *why)
{
    EMPQ_INFO("event=batch_done batch=%s provider_id=%s state=%s", b->rec.key, b->info.id,
              empq_batchwire_state_name(b->info.state));
    /* the record closes once the results read are in Redis (the next
     * flush): a crash before leaves it open, and the batch is read again */
    char *key = empq_strdup(b->rec.key);
    if (key == NULL || worker__grow((void **)&e->finish_keys, &e->cap_finish, e->n_finish + 1,
                                    sizeof *e->finish_keys) != 0) {
        free(key);
        empq_error err = {0};
        if (empq_batchrec_finish(e->store, b->rec.key, &err) != EMPQ_OK)
            EMPQ_WARN("event=batch_finish_failed batch=%s error=\"%s\"", b->rec.key, err.msg);
    } else {
        e->finish_keys[e->n_finish++] = key;
    }
    wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, why);
}

void worker__batch_finish_flushed(worker__engine *e)
{
    if (e->n_finish == 0 || e->flushed < e->n_fins)
        return; /* what the batches read is not all out yet */
    for (size_t i = 0; i < e->n_finish; i++) {
        empq_error err = {0};
        if (empq_batchrec_finish(e->store, e->finish_keys[i], &err) != EMPQ_OK)
            EMPQ_WARN("event=batch_finish_failed batch=%s error=\"%s\"", e->finish_keys[i], err.msg);
        free(e->finish_keys[i]);
    }
    e->n_finish = 0;
}

static void wb_next_download(worker__engine *e, wbatch *b)
{
    if (b->phase == WB_POLL) {
        b->phase = WB_OUTPUT;
        if (!wb_is_openai(b) || b->info.output_file_id[0] != '\0') {
            wb_call_phase(e, b);
            return;
        }
    }
    if (b->phase == WB_OUTPUT && wb_is_openai(b) && b->info.error_file_id[0] != '\0') {
        b->phase = WB_ERRORS;
        wb_call_phase(e, b);
        return;
    }
    /* an expired or cancelled batch's requests without a result line (a
     * Gemini batch lists none for them) are expired or cancelled requests */
    if (b->info.state == EMPQ_BATCH_EXPIRED || b->info.state == EMPQ_BATCH_CANCELLED)
        for (size_t i = 0; i < b->n; i++) {
            worker__req *r = b->reqs[i];
            if (r == NULL)
                continue;
            b->reqs[i] = NULL;
            empq_provider_result pres;
            empq_batchwire_unanswered(&b->info, &pres);
            wb_outcome(e, b, r, &pres, NULL, 0);
        }
    wb_done(e, b, "batch: no result line for this request");
}

/* A call failed: try again later, or hand the jobs back after too many. */
static void wb_call_failed(worker__engine *e, wbatch *b, long status, const char *body, size_t len)
{
    char ex[160];
    empq_provider_excerpt(body, len, b->run->models[b->model].api_key, ex, sizeof ex);
    b->failures++;
    EMPQ_WARN_LIMITED("batch_call", "event=batch_call_failed batch=%s phase=%d status=%ld failures=%u body=\"%s\"",
                      b->rec.key, (int)b->phase, status, b->failures, ex);
    /* a client error other than a timeout, a conflict or a rate limit says
     * the same every time: no point asking eight times */
    int refused = status >= 400 && status <= 499 && status != 408 && status != 409 && status != 429;
    if ((b->failures >= BATCH_CALL_TRIES || refused) && (b->phase == WB_UPLOAD || b->phase == WB_CREATE)) {
        char why[256];
        snprintf(why, sizeof why, "batch: the provider refused the batch (HTTP %ld: %s)", status, ex);
        empq_error err = {0};
        empq_batchrec_finish(e->store, b->rec.key, &err);
        wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RETRY, why);
        return;
    }
    if (status == 404 && (b->phase == WB_POLL || b->phase == WB_OUTPUT || b->phase == WB_ERRORS) && !b->cancel_inflight) {
        /* the provider no longer has the batch (or its file): its jobs go
         * into new batches, as after a failed batch */
        char why[256];
        snprintf(why, sizeof why, "batch: the provider no longer has batch %s (HTTP 404: %s)", b->info.id, ex);
        EMPQ_WARN("event=batch_gone batch=%s provider_id=%s phase=%d", b->rec.key, b->info.id, (int)b->phase);
        wb_done(e, b, why);
        return;
    }
    if (b->phase == WB_POLL || b->phase == WB_OUTPUT || b->phase == WB_ERRORS) {
        /* the provider is away: keep asking, with backoff, and say so in
         * empq status (the batch's line) */
        char word[64];
        if (status == 0)
            snprintf(word, sizeof word, "unreachable (no reply, %u failed calls)", b->failures);
        else
            snprintf(word, sizeof word, "unreachable (HTTP %ld, %u failed calls)", status, b->failures);
        empq_batchrec_note(e->store, b->rec.key, word, b->info.total, b->info.done_ok, b->info.done_failed,
                           b->info.expires_at > 0 ? (uint64_t)b->info.expires_at * 1000 : 0, NULL);
    }
    /* a create without answer may have made the batch: look for it first */
    if (b->phase == WB_CREATE && (status == 0 || status >= 500 || (status >= 200 && status <= 299)))
        b->phase = WB_FIND;
    uint32_t d = BATCH_CALL_RETRY_MS << (b->failures < 6 ? b->failures : 6);
    b->due = 1;
    b->next_at = empq_mono_ms() + d;
}

void worker__batch_call_done(worker__engine *e, worker__req *r)
{
    wbatch *b = r->batch;
    const Empq__ModelSpec *m = wb_spec(b);
    long status = r->status;
    empq_buf body = r->resp; /* borrowed until the recycle below */
    empq_error err = {0};
    b->ctl = NULL;
    if (status < 200 || status > 299) {
        wb_call_failed(e, b, status, body.data, body.len);
        worker__req_recycle(e, r);
        return;
    }
    uint64_t now = empq_mono_ms();
    switch (b->phase) {
    case WB_COLLECT: break;
    case WB_UPLOAD: {
        json_error_t je;
        json_t *o = json_loadb(body.data, body.len, 0, &je);
        const char *fid = json_string_value(json_object_get(o, "id"));
        char *cb = NULL;
        int rc = fid != NULL ? empq_batchwire_create_body(m, fid, b->rec.key, NULL, NULL, 0, &cb, NULL, &err)
                             : EMPQ_EPARSE;
        if (rc == EMPQ_OK)
            rc = empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_UPLOADED, "file_id", fid, &err);
        json_decref(o);
        if (rc != EMPQ_OK) {
            free(cb);
            worker__req_recycle(e, r);
            wb_call_failed(e, b, status, NULL, 0);
            return;
        }
        free(b->create);
        b->create = cb;
        b->phase = WB_CREATE;
        b->failures = 0;
        char ms[24];
        snprintf(ms, sizeof ms, "%llu", (unsigned long long)empq_now_ms());
        empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_UPLOADED, "created_ms", ms, NULL);
        worker__req_recycle(e, r);
        wb_call_phase(e, b);
        return;
    }
    case WB_CREATE:
    case WB_FIND: {
        int rc = EMPQ_OK;
        if (b->phase == WB_CREATE) {
            rc = empq_batchwire_parse_batch(m, body.data, body.len, &b->info, &err);
        } else {
            char **taken = NULL;
            size_t nt = 0;
            empq_batchrec_taken_ids(e->store, b->rec.key, &taken, &nt, NULL);
            /* and the ids recorded here lately, whose records may be closed */
            size_t nr = sizeof e->batch_recent / sizeof e->batch_recent[0];
            const char **all = calloc(nt + nr, sizeof *all);
            size_t na = 0;
            for (size_t i = 0; all != NULL && i < nt; i++)
                all[na++] = taken[i];
            for (size_t i = 0; all != NULL && i < nr; i++)
                if (e->batch_recent[i][0] != '\0')
                    all[na++] = e->batch_recent[i];
            empq_batchrec rec = {0};
            empq_batchrec_load(e->store, b->rec.key, &rec, NULL);
            rc = all == NULL ? EMPQ_ENOMEM
                             : empq_batchwire_find(m, body.data, body.len, b->rec.key,
                                                   (int64_t)(rec.created_ms / 1000) - 1, (uint32_t)b->n, all, na,
                                                   &b->info, NULL, &err);
            empq_batchrec_clear(&rec);
            free(all);
            empq_store_free_strings(taken, nt);
            if (rc == EMPQ_ENOTFOUND && b->adopted) {
                /* its owner died before the create: nothing was sent; the
                 * jobs go back to new batches (they are not this worker's) */
                worker__req_recycle(e, r);
                EMPQ_INFO("event=batch_never_sent batch=%s action=close", b->rec.key);
                empq_batchrec_finish(e->store, b->rec.key, NULL);
                wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED, "batch: never sent (its worker died first)");
                return;
            }
            if (rc == EMPQ_ENOTFOUND) { /* never made: create it now */
                b->phase = WB_CREATE;
                worker__req_recycle(e, r);
                wb_call_phase(e, b);
                return;
            }
        }
        if (rc == EMPQ_OK)
            rc = empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_SUBMITTED, "batch_id", b->info.id, &err);
        worker__req_recycle(e, r);
        if (rc != EMPQ_OK) {
            /* the batch may exist while its record does not say so: never
             * create again, find it (by its key or time) and record it */
            EMPQ_WARN_LIMITED("batch_record", "event=batch_record_failed batch=%s error=\"%s\" action=find",
                              b->rec.key, err.msg);
            b->phase = WB_FIND;
            wb_call_failed(e, b, status, NULL, 0);
            return;
        }
        b->failures = 0;
        b->create_unconfirmed = 0;
        snprintf(e->batch_recent[e->batch_recent_next], sizeof e->batch_recent[0], "%s", b->info.id);
        e->batch_recent_next = (e->batch_recent_next + 1) % (sizeof e->batch_recent / sizeof e->batch_recent[0]);
        e->stats.batches_sent++;
        if (b->phase == WB_FIND) /* a create whose answer was lost: the provider's list had it */
            EMPQ_INFO("event=batch_found batch=%s provider_id=%s", b->rec.key, b->info.id);
        EMPQ_INFO("event=batch_submitted batch=%s provider_id=%s jobs=%zu", b->rec.key, b->info.id, b->n);
        b->phase = WB_POLL;
        b->due = 1;
        b->next_at = now + b->poll_cur;
        return;
    }
    case WB_POLL: {
        empq_batch_info got; /* b->info keeps the batch's id when the reply is no batch */
        int rc = empq_batchwire_parse_batch(m, body.data, body.len, &got, &err);
        int was_cancel = b->cancel_inflight;
        b->cancel_inflight = 0;
        /* a batch whose results come with it (Gemini): the reply that shows
         * its end is read as its results, not fetched again */
        empq_buf kept = {0};
        if (rc == EMPQ_OK && (got.state == EMPQ_BATCH_ENDED || got.state == EMPQ_BATCH_EXPIRED ||
                              got.state == EMPQ_BATCH_CANCELLED) &&
            empq_batchwire_results_inline(m)) {
            kept = r->resp;
            memset(&r->resp, 0, sizeof r->resp);
        }
        worker__req_recycle(e, r);
        if (rc != EMPQ_OK && was_cancel) { /* a cancel that answers no batch (Gemini's {}): look now */
            b->due = 1;
            b->next_at = now;
            return;
        }
        if (rc != EMPQ_OK) {
            wb_call_failed(e, b, status, NULL, 0);
            return;
        }
        b->info = got;
        b->failures = 0;
        empq_batchrec_claim(e->store, b->rec.key, e->opt.worker_id, owner_ttl(m), NULL);
        empq_batchrec_note(e->store, b->rec.key, b->info.status, b->info.total, b->info.done_ok,
                           b->info.done_failed, b->info.expires_at > 0 ? (uint64_t)b->info.expires_at * 1000 : 0,
                           NULL);
        if (b->info.state == EMPQ_BATCH_OPEN && !b->cancel_sent) {
            /* a cancelled run cancels its open batches (what finished is
             * still read and written: it is paid for) */
            Empq__Run *run = NULL;
            if (empq_store_run_get(e->store, b->run->id, &run) == EMPQ_OK) {
                b->cancel = run->has_state && run->state == EMPQ__RUN_STATE__RUN_CANCELLED;
                empq__run__free_unpacked(run, NULL);
            }
            if (b->cancel) {
                b->due = 1;
                b->next_at = now;
                return;
            }
        }
        if (b->info.state == EMPQ_BATCH_OPEN || b->info.state == EMPQ_BATCH_CANCELLING) {
            uint64_t counts = (uint64_t)b->info.done_ok + b->info.done_failed;
            if (counts == b->last_counts) {
                uint64_t nx = (uint64_t)b->poll_cur * 2;
                b->poll_cur = nx > (uint64_t)b->poll_ms * 10 ? b->poll_ms * 10 : (uint32_t)nx;
            } else {
                b->poll_cur = b->poll_ms;
            }
            b->last_counts = counts;
            b->due = 1;
            b->next_at = now + b->poll_cur;
            return;
        }
        empq_batchrec_advance(e->store, b->rec.key, EMPQ_BATCHREC_ENDED, NULL, NULL, NULL);
        if (b->info.state == EMPQ_BATCH_FAILED) {
            char why[EMPQ_PROVIDER_REASON_MAX + 32];
            snprintf(why, sizeof why, "batch failed: %s", b->info.reason);
            wb_done(e, b, why);
            return;
        }
        if (kept.data != NULL) {
            b->phase = WB_OUTPUT;
            wb_results(e, b, kept.data, kept.len);
            empq_buf_free(&kept);
        }
        wb_next_download(e, b);
        return;
    }
    case WB_OUTPUT:
    case WB_ERRORS:
        wb_results(e, b, body.data, body.len);
        worker__req_recycle(e, r);
        wb_next_download(e, b);
        return;
    }
    worker__req_recycle(e, r);
}

/* A request standing for job `job` of an adopted batch: its prompt, model
 * and sample from the job index, its cache key from the rendered prompt. */
static worker__req *wb_adopt_req(worker__engine *e, worker__run *run, uint32_t job, uint32_t attempt)
{
    const Empq__RunSpec *spec = run->run->spec;
    uint32_t samples = 1;
    for (size_t i = 0; i < spec->n_models; i++)
        if (spec->models[i]->has_samples && spec->models[i]->samples > samples)
            samples = spec->models[i]->samples;
    uint32_t sample = job % samples, model = (job / samples) % (uint32_t)run->n_models;
    uint32_t prompt = job / samples / (uint32_t)run->n_models;
    Empq__Prompt *p = NULL;
    if (prompt >= run->run->n_prompts || empq_store_prompts_get(e->store, run->id, &prompt, 1, &p) != EMPQ_OK ||
        p == NULL)
        return NULL;
    const Empq__ModelSpec *m = run->models[model].spec;
    char *user = NULL, *sys = NULL;
    empq_error err = {0};
    int rc = empq_template_render(spec->template_user != NULL ? spec->template_user : "{prompt}", p, &user, &err);
    if (rc == EMPQ_OK && spec->template_system != NULL && spec->template_system[0] != '\0')
        rc = empq_template_render(spec->template_system, p, &sys, &err);
    worker__req *r = rc == EMPQ_OK ? worker__req_get(e) : NULL;
    if (r != NULL) {
        r->run = run;
        run->refs++;
        r->job = job;
        r->prompt = prompt;
        r->model = model;
        r->sample = sample;
        r->attempt = attempt;
        r->started_ms = empq_now_ms();
        r->started_mono = empq_mono_ms();
        if (empq_cachekey(m, sys, user, sample, r->cache_key, &err) != EMPQ_OK)
            r->cache_key[0] = '\0';
    }
    free(user);
    free(sys);
    empq__prompt__free_unpacked(p, NULL);
    return r;
}

/* Takes over record key, whose owner died: its jobs become requests of a
 * new batch here, polled (or, when the create's answer was never recorded,
 * looked for first) and read back as if this worker had sent it. */
static void wb_adopt(worker__engine *e, const char *key)
{
    for (wbatch *b = e->batches; b != NULL; b = b->next)
        if (strcmp(b->rec.key, key) == 0)
            return;
    empq_error err = {0};
    empq_batchrec rec = {0};
    if (empq_batchrec_load(e->store, key, &rec, &err) != EMPQ_OK || rec.state == EMPQ_BATCHREC_DONE) {
        empq_batchrec_clear(&rec);
        return;
    }
    int rc = EMPQ_OK;
    char why[EMPQ_ERROR_MSG_MAX];
    worker__run *run = worker__run_get(e, rec.run, &rc, why, sizeof why);
    if (run == NULL || rec.model >= run->n_models || !worker__batch_model(run->models[rec.model].spec)) {
        empq_batchrec_clear(&rec);
        return;
    }
    worker__wmodel *wm = &run->models[rec.model];
    worker__wmodel_ready(e, run, wm);
    if (wm->prep_rc != EMPQ_OK || empq_batchrec_claim(e->store, key, e->opt.worker_id, owner_ttl(wm->spec), &err) != 1) {
        empq_batchrec_clear(&rec);
        return;
    }
    wbatch *b = calloc(1, sizeof *b);
    if (b == NULL || (b->reqs = calloc(rec.n + 1, sizeof *b->reqs)) == NULL ||
        (b->jobs = calloc(rec.n + 1, sizeof *b->jobs)) == NULL) {
        if (b != NULL) {
            free(b->reqs);
            free(b);
        }
        empq_batchrec_clear(&rec);
        return;
    }
    b->run = run;
    run->refs++;
    b->model = rec.model;
    b->rec = rec;
    b->adopted = 1;
    b->next = e->batches;
    e->batches = b;
    for (size_t i = 0; i < rec.n; i++) {
        worker__req *r = wb_adopt_req(e, run, rec.jobs[i], rec.attempts[i]);
        if (r == NULL) {
            /* Redis or memory trouble: give the record back to a later scan */
            EMPQ_WARN_LIMITED("batch_adopt", "event=batch_adopt_failed batch=%s", key);
            empq_batchrec_claim(e->store, key, e->opt.worker_id, 1, NULL);
            for (size_t k = 0; k < b->n; k++)
                worker__req_recycle(e, b->reqs[k]);
            b->n = 0;
            worker__batch_free(e, b);
            return;
        }
        r->batch = b;
        r->in_batch = 1;
        b->reqs[b->n] = r;
        b->jobs[b->n] = r->job;
        b->n++;
    }
    /* the broker may not know yet (the owner died before saying so) */
    for (size_t i = 0; i < b->n; i++)
        worker__fin_batched(e, b->reqs[i]);
    qsort(b->reqs, b->n, sizeof *b->reqs, cmp_req_job);
    for (size_t i = 0; i < b->n; i++)
        b->jobs[i] = b->reqs[i]->job;
    const Empq__ModelSpec *m = wm->spec;
    b->poll_ms = m->batch->poll_ms > 0 ? m->batch->poll_ms : 30000;
    b->poll_cur = b->poll_ms;
    if (b->rec.state >= EMPQ_BATCHREC_SUBMITTED) {
        snprintf(b->info.id, sizeof b->info.id, "%s", b->rec.batch_id);
        b->phase = WB_POLL;
    } else {
        b->phase = WB_FIND; /* sent or not? the provider's list says */
        b->create_unconfirmed = 1;
    }
    b->due = 1;
    b->next_at = empq_mono_ms();
    EMPQ_INFO("event=batch_adopted batch=%s state=%s provider_id=%s jobs=%zu", key,
              empq_batchrec_state_name(b->rec.state), b->rec.batch_id, b->n);
}

/* Looks for open records whose owner's key has expired (the owner died). */
static void wb_scan(worker__engine *e)
{
    char **keys = NULL;
    size_t n = 0;
    if (empq_batchrec_open_keys(e->store, &keys, &n, NULL) != EMPQ_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        int mine = 0;
        for (wbatch *b = e->batches; b != NULL && !mine; b = b->next)
            mine = strcmp(b->rec.key, keys[i]) == 0;
        for (size_t k = 0; k < e->n_finish && !mine; k++)
            mine = strcmp(e->finish_keys[k], keys[i]) == 0; /* read, closing at the next flush */
        char owner[128];
        /* no owner (its time passed: it died), or this worker's own id (it
         * was restarted) */
        if (!mine && empq_batchrec_owner(e->store, keys[i], owner, sizeof owner, NULL) == EMPQ_OK &&
            (owner[0] == '\0' || strcmp(owner, e->opt.worker_id) == 0))
            wb_adopt(e, keys[i]);
    }
    empq_store_free_strings(keys, n);
}

void worker__engine_tick(worker__engine *e, uint64_t now_mono)
{
    if (!e->stopping && now_mono >= e->batch_scan_at) {
        e->batch_scan_at = now_mono + BATCH_SCAN_MS;
        wb_scan(e);
    }
    wbatch *b = e->batches;
    while (b != NULL) {
        wbatch *next = b->next;
        if (b->phase == WB_COLLECT && now_mono >= b->last_add_mono + BATCH_LINGER_MS)
            wb_close(e, b);
        else if (b->phase != WB_COLLECT && b->due && b->ctl == NULL && now_mono >= b->next_at)
            wb_call_phase(e, b);
        b = next;
    }
}

long worker__engine_next_ms(const worker__engine *e, uint64_t now_mono)
{
    long best = -1;
    for (const wbatch *b = e->batches; b != NULL; b = b->next) {
        uint64_t at = 0;
        if (b->phase == WB_COLLECT)
            at = b->last_add_mono + BATCH_LINGER_MS;
        else if (b->due && b->ctl == NULL)
            at = b->next_at;
        else
            continue;
        long ms = at > now_mono ? (long)(at - now_mono) : 0;
        if (best < 0 || ms < best)
            best = ms;
    }
    return best;
}

/* Groups still collecting hand their jobs back (RELEASED with why when
 * outcome, else forgotten: their leases are gone); unless collecting_only,
 * the batches past their durable record are left to it (wb_leave: another
 * worker, or this one restarted, takes them over). */
void worker__batch_release(worker__engine *e, int collecting_only, int outcome, const char *why)
{
    wbatch *b = e->batches;
    while (b != NULL) {
        wbatch *next = b->next;
        if (b->phase == WB_COLLECT) {
            if (!outcome) {
                for (size_t i = 0; i < b->n; i++)
                    if (b->reqs[i] != NULL)
                        worker__req_recycle(e, b->reqs[i]);
                b->n = 0;
            }
            wb_hand_back(e, b, EMPQ__OUTCOME_KIND__OUTCOME_RELEASED, why);
        } else if (!collecting_only) {
            wb_leave(e, b);
        }
        b = next;
    }
}
