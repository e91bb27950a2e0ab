/* batch.c: the batch store, its state machine and scheduler, and the
 * OpenAI input-file checks. See batch.h. */
#include "batch_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "empq/log.h"
#include "front.h"

#define DEFAULT_MAX_OBJECTS 10000
#define DEFAULT_MAX_BYTES (512u * 1024u * 1024u)

/* ------------------------------------------------------------------------ */
/* State machine                                                             */
/* ------------------------------------------------------------------------ */

static const char *const state_names[FAKELLM_BATCH_STATE_COUNT] = {
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"};

const char *fakellm_batch_state_name(fakellm_batch_state s)
{
    return (unsigned)s < FAKELLM_BATCH_STATE_COUNT ? state_names[s] : "?";
}

int fakellm_batch_state_terminal(fakellm_batch_state s)
{
    return s == FAKELLM_BATCH_FAILED || s == FAKELLM_BATCH_COMPLETED || s == FAKELLM_BATCH_EXPIRED ||
           s == FAKELLM_BATCH_CANCELLED;
}

const char *fakellm_batch_anthropic_status(fakellm_batch_state s)
{
    if (fakellm_batch_state_terminal(s))
        return "ended";
    return s == FAKELLM_BATCH_CANCELLING ? "canceling" : "in_progress";
}

int fakellm_batch_transition(fakellm_batch_state *s, fakellm_batch_state to)
{
    int ok = 0;
    switch (*s) {
    case FAKELLM_BATCH_VALIDATING:
        ok = to == FAKELLM_BATCH_IN_PROGRESS || to == FAKELLM_BATCH_FAILED || to == FAKELLM_BATCH_CANCELLING;
        break;
    case FAKELLM_BATCH_IN_PROGRESS:
        ok = to == FAKELLM_BATCH_FINALIZING || to == FAKELLM_BATCH_EXPIRED || to == FAKELLM_BATCH_CANCELLING;
        break;
    case FAKELLM_BATCH_FINALIZING:
        ok = to == FAKELLM_BATCH_COMPLETED;
        break;
    case FAKELLM_BATCH_CANCELLING:
        ok = to == FAKELLM_BATCH_CANCELLED;
        break;
    default:
        break;
    }
    if (!ok)
        return EMPQ_ESTATE;
    *s = to;
    return EMPQ_OK;
}

/* ------------------------------------------------------------------------ */
/* OpenAI input lines                                                        */
/* ------------------------------------------------------------------------ */

void fakellm_batch_input_clear(fakellm_batch_input *in)
{
    if (in == NULL)
        return;
    for (size_t i = 0; i < in->n; i++) {
        free(in->lines[i].custom_id);
        free(in->lines[i].body);
    }
    free(in->lines);
    free(in->model);
    json_decref((json_t *)in->errors);
    memset(in, 0, sizeof(*in));
}

/* Adds a BatchError {code, message, param, line} (line 0: null). Returns 0,
 * or -1 when out of memory. */
static int add_error(fakellm_batch_input *in, size_t line, const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add_error(fakellm_batch_input *in, size_t line, const char *code, const char *param, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    if (in->errors == NULL && (in->errors = json_array()) == NULL)
        return -1;
    if (json_array_size(in->errors) >= FAKELLM_BATCH_MAX_ERRORS)
        return 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s,s:s,s:o,s:o}", "code", code, "message", msg, "param",
                          param ? json_string(param) : json_null(), "line",
                          line ? json_integer((json_int_t)line) : json_null());
    return e != NULL && json_array_append_new(in->errors, e) == 0 ? 0 : -1;
}

/* Checks one parsed line; appends it to in when valid. seen maps the
 * custom_ids so far to their line. Returns 0, or -1 when out of memory. */
static int check_line(fakellm_batch_input *in, json_t *o, size_t lineno, const char *endpoint, size_t cap,
                      json_t *seen)
{
    json_t *cid = json_object_get(o, "custom_id"), *method = json_object_get(o, "method");
    json_t *url = json_object_get(o, "url"), *body = json_object_get(o, "body");
    if (!json_is_string(cid) || json_string_length(cid) == 0)
        return add_error(in, lineno, "missing_required_parameter", "custom_id",
                         "The request is missing the required parameter 'custom_id' (a non-empty string).");
    if (!json_is_string(method) || strcmp(json_string_value(method), "POST") != 0)
        return add_error(in, lineno, "invalid_method", "method",
                         "The request's 'method' must be 'POST' (got %s).",
                         json_is_string(method) ? json_string_value(method) : fakellm_json_type_name(method));
    if (!json_is_string(url))
        return add_error(in, lineno, "missing_required_parameter", "url",
                         "The request is missing the required parameter 'url'.");
    if (strcmp(json_string_value(url), endpoint) != 0)
        return add_error(in, lineno, "mismatched_endpoint", "url",
                         "The URL provided for this request ('%.100s') does not match the batch endpoint ('%s').",
                         json_string_value(url), endpoint);
    if (!json_is_object(body))
        return add_error(in, lineno, "missing_required_parameter", "body",
                         "The request is missing the required parameter 'body' (an object).");
    json_t *model = json_object_get(body, "model");
    if (!json_is_string(model))
        return add_error(in, lineno, "missing_required_parameter", "body.model",
                         "The request body is missing the required parameter 'model'.");
    if (in->model == NULL) {
        if ((in->model = strdup(json_string_value(model))) == NULL)
            return -1;
    } else if (strcmp(in->model, json_string_value(model)) != 0) {
        return add_error(in, lineno, "mismatched_model", "body.model",
                         "The model '%.100s' does not match the model of the batch ('%.100s'): a batch input file "
                         "may use one model only.",
                         json_string_value(model), in->model);
    }
    json_t *prev = json_object_get(seen, json_string_value(cid));
    if (prev != NULL)
        return add_error(in, lineno, "duplicate_custom_id", "custom_id",
                         "The custom_id for this request ('%.100s') is a duplicate of another request's (line "
                         "%lld). The custom_id parameter must be unique for each request in a batch.",
                         json_string_value(cid), (long long)json_integer_value(prev));
    if (json_object_set_new(seen, json_string_value(cid), json_integer((json_int_t)lineno)) != 0)
        return -1;
    if (in->n >= cap)
        return 0; /* counted, reported once by the caller */
    fakellm_batch_line *l = &in->lines[in->n];
    l->custom_id = strdup(json_string_value(cid));
    l->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (l->custom_id == NULL || l->body == NULL) {
        free(l->custom_id);
        free(l->body);
        l->custom_id = l->body = NULL;
        return -1;
    }
    l->body_len = strlen(l->body);
    in->n++;
    return 0;
}

int fakellm_batch_parse_openai(const char *data, size_t len, const char *endpoint, size_t max_requests,
                               fakellm_batch_input *in)
{
    memset(in, 0, sizeof(*in));
    size_t lines = 0, requests = 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n')
            lines++;
    lines++;
    size_t cap = lines < max_requests ? lines : max_requests;
    in->lines = calloc(cap ? cap : 1, sizeof(*in->lines));
    if (in->lines == NULL)
        return EMPQ_ENOMEM;
    const char *p = data, *end = data + len;
    size_t lineno = 0;
    json_t *seen = json_object(); /* custom_id -> line: a hash table */
    int rc = seen ? 0 : -1;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lineno++;
        size_t n = (size_t)(e - p);
        while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            json_error_t jerr;
            json_t *o = json_loadb(p, n, 0, &jerr);
            requests++;
            if (o == NULL || !json_is_object(o))
                rc = add_error(in, lineno, "invalid_json_line", NULL,
                               "This line is not parseable as valid JSON (%s).", o ? "not an object" : jerr.text);
            else if (requests <= max_requests)
                rc = check_line(in, o, lineno, endpoint, cap, seen);
            json_decref(o);
        }
        p = e + (nl ? 1 : 0);
    }
    if (rc == 0 && requests == 0)
        rc = add_error(in, 0, "empty_file", NULL, "The batch input file is empty: it has no requests.");
    if (rc == 0 && requests > max_requests)
        rc = add_error(in, 0, "too_many_requests", NULL,
                       "The batch input file has %zu requests; a batch may have at most %zu.", requests,
                       max_requests);
    json_decref(seen);
    if (rc != 0) {
        fakellm_batch_input_clear(in);
        return EMPQ_ENOMEM;
    }
    return EMPQ_OK;
}

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

void fakellm_batch_options_init(fakellm_batch_options *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->max_objects = DEFAULT_MAX_OBJECTS;
    o->max_bytes = DEFAULT_MAX_BYTES;
    o->lose_status = 504;
}

static void on_timer(void *item, void *user);

int fakellm_batch_store_new(const fakellm_batch_options *o, fakellm_batch_store **out, empq_error *err)
{
    *out = NULL;
    if (!(o->fail_p >= 0 && o->fail_p <= 1))
        return empq_error_set(err, EMPQ_EINVAL, "fakellm: --batch-fail %g is not in [0, 1]", o->fail_p);
    fakellm_batch_store *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    st->o = *o;
    if (st->o.max_objects == 0)
        st->o.max_objects = DEFAULT_MAX_OBJECTS;
    if (st->o.max_bytes == 0)
        st->o.max_bytes = DEFAULT_MAX_BYTES;
    pthread_mutex_init(&st->mu, NULL);
    int rc = fakellm_timer_new(&st->timer, on_timer, st, err);
    if (rc != EMPQ_OK) {
        pthread_mutex_destroy(&st->mu);
        free(st);
        return rc;
    }
    *out = st;
    return EMPQ_OK;
}

static void free_reqs(bb_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->reqs[i].custom_id);
        free(b->reqs[i].body);
        free(b->reqs[i].result);
    }
    free(b->reqs);
    b->reqs = NULL;
}

static void free_file(bb_file *f)
{
    free(f->filename);
    free(f->data);
    free(f);
}

void fakellm_batch_store_free(fakellm_batch_store **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    fakellm_batch_store *st = *sp;
    *sp = NULL;
    fakellm_timer_free(&st->timer); /* no callback runs after this */
    for (size_t i = 0; i < st->n_batches; i++) {
        bb_batch *b = st->batches[i];
        free_reqs(b);
        free(b->input_file_id);
        free(b->endpoint);
        free(b->model);
        free(b->display_name);
        json_decref(b->metadata);
        json_decref(b->errors);
        free(b);
    }
    free(st->batches);
    for (size_t i = 0; i < st->n_files; i++)
        free_file(st->files[i]);
    free(st->files);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void fakellm_batch__count(fakellm_batch_store *st, fakellm_batch_provider p, bb_counter c)
{
    st->counters[p][c]++;
}

int fakellm_batch__fits(const fakellm_batch_store *st, size_t bytes)
{
    return st->objects < st->o.max_objects && bytes <= st->o.max_bytes - (st->bytes < st->o.max_bytes ? st->bytes : st->o.max_bytes);
}

void fakellm_batch__new_id(fakellm_batch_store *st, char *out, size_t cap, const char *prefix, size_t n)
{
    st->next_id++;
    fakellm_make_id(out, cap, prefix, n, fakellm_mix64(st->next_id ^ fakellm_mix64((uint64_t)(uintptr_t)st)));
}

bb_file *fakellm_batch__add_file(fakellm_batch_store *st, const char *filename, const char *purpose, char *data,
                                 size_t len)
{
    bb_file *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->filename = strdup(filename ? filename : "file")) == NULL) {
        free(f);
        free(data);
        return NULL;
    }
    if (st->n_files == st->cap_files) {
        size_t cap = st->cap_files ? st->cap_files * 2 : 64;
        bb_file **a = realloc(st->files, cap * sizeof(*a));
        if (a == NULL) {
            f->data = data;
            free_file(f);
            return NULL;
        }
        st->files = a;
        st->cap_files = cap;
    }
    fakellm_batch__new_id(st, f->id, sizeof(f->id), "file-", 22);
    snprintf(f->purpose, sizeof(f->purpose), "%s", purpose);
    f->data = data;
    f->len = len;
    f->created_s = empq_now_ms() / 1000u;
    st->files[st->n_files++] = f;
    st->objects++;
    st->bytes += len;
    return f;
}

bb_file *fakellm_batch__file(fakellm_batch_store *st, const char *id)
{
    for (size_t i = 0; i < st->n_files; i++)
        if (strcmp(st->files[i]->id, id) == 0)
            return st->files[i];
    return NULL;
}

void fakellm_batch__delete_file(fakellm_batch_store *st, bb_file *f)
{
    for (size_t i = 0; i < st->n_files; i++) {
        if (st->files[i] != f)
            continue;
        memmove(&st->files[i], &st->files[i + 1], (st->n_files - i - 1) * sizeof(*st->files));
        st->n_files--;
        st->objects--;
        st->bytes -= f->len < st->bytes ? f->len : st->bytes;
        free_file(f);
        return;
    }
}

static void schedule(bb_batch *b, uint64_t at_mono)
{
    int rc = fakellm_timer_add(b->st->timer, b, at_mono);
    if (rc != EMPQ_OK && rc != EMPQ_ECANCELED) /* ECANCELED: the store is being freed */
        EMPQ_ERROR("event=batch_schedule_failed batch=%s err=\"%s\"", b->id, empq_strerror(rc));
}

bb_batch *fakellm_batch__add_batch(fakellm_batch_store *st, fakellm_batch_provider p, size_t n)
{
    bb_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->reqs = calloc(n ? n : 1, sizeof(*b->reqs));
    if (b->reqs == NULL || (st->n_batches == st->cap_batches && st->cap_batches > SIZE_MAX / 4)) {
        free(b->reqs);
        free(b);
        return NULL;
    }
    if (st->n_batches == st->cap_batches) {
        size_t cap = st->cap_batches ? st->cap_batches * 2 : 64;
        bb_batch **a = realloc(st->batches, cap * sizeof(*a));
        if (a == NULL) {
            free(b->reqs);
            free(b);
            return NULL;
        }
        st->batches = a;
        st->cap_batches = cap;
    }
    b->st = st;
    b->provider = p;
    b->n = n;
    b->counts[BB_PENDING] = n;
    b->seq = st->n_batches + 1;
    b->state = FAKELLM_BATCH_VALIDATING;
    b->at[FAKELLM_BATCH_VALIDATING] = empq_now_ms();
    if (p == FAKELLM_BATCH_OPENAI)
        fakellm_batch__new_id(st, b->id, sizeof(b->id), "batch_", 32);
    else if (p == FAKELLM_BATCH_ANTHROPIC)
        fakellm_batch__new_id(st, b->id, sizeof(b->id), "msgbatch_01", 24);
    else /* Gemini's name is batches/{id} */
        fakellm_batch__new_id(st, b->id, sizeof(b->id), "", 24);
    /* The window: 24 hours, or the delay when batches expire. */
    uint64_t window = st->o.expire ? (st->o.delay_ms + 999u) / 1000u * 1000u : 86400000u;
    b->expires_ms = b->at[FAKELLM_BATCH_VALIDATING] + window;
    st->batches[st->n_batches++] = b;
    st->objects++;
    fakellm_batch__count(st, p, BB_BATCHES_CREATED);
    return b;
}

void fakellm_batch__start(bb_batch *b) { schedule(b, fakellm_timer_now_ms()); }

static const char *gateway_title(unsigned status)
{
    return status == 500 ? "500 Internal Server Error" : status == 502 ? "502 Bad Gateway" : "504 Gateway Time-out";
}

void fakellm_batch__maybe_lose(bb_batch *b, fakellm_reply *out)
{
    fakellm_batch_store *st = b->st;
    unsigned k = ++st->creates[b->provider]; /* 1, 2, ... */
    if (k <= st->o.lose_after || k - st->o.lose_after > st->o.lose_create)
        return;
    fakellm_batch__count(st, b->provider, BB_CREATES_LOST);
    unsigned status = st->o.lose_status;
    EMPQ_INFO("event=batch_create_lost batch=%s as=%s", b->id, status == 0 ? "reset" : gateway_title(status));
    fakellm_reply_clear_headers(out);
    if (status == 0) {
        empq_buf_free(&out->body);
        out->reset = 1;
        return;
    }
    /* what a proxy in front of the provider answers when it gave up waiting */
    char page[256];
    int n = snprintf(page, sizeof(page),
                     "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
                     "</body>\r\n</html>\r\n",
                     gateway_title(status), gateway_title(status));
    if (fakellm_reply_set(out, status, page, (size_t)n) != EMPQ_OK)
        out->reset = 1; /* no page: lost all the same */
    out->content_type = "text/html";
}

bb_batch *fakellm_batch__find(fakellm_batch_store *st, fakellm_batch_provider p, const char *id)
{
    for (size_t i = 0; i < st->n_batches; i++) {
        bb_batch *b = st->batches[i];
        if (b->provider == p && !b->deleted && strcmp(b->id, id) == 0)
            return b;
    }
    return NULL;
}

static void enter(bb_batch *b, fakellm_batch_state to)
{
    if (fakellm_batch_transition(&b->state, to) != EMPQ_OK) {
        EMPQ_ERROR("event=batch_bad_transition batch=%s from=%s to=%s", b->id, fakellm_batch_state_name(b->state),
                   fakellm_batch_state_name(to));
        return;
    }
    b->at[to] = empq_now_ms();
}

/* Records the outcome of request r (pending until now), counts it and
 * drops its body. */
static void settle(bb_batch *b, bb_req *r, bb_outcome o)
{
    static const bb_counter counter[BB_OUTCOMES] = {BB_COUNTERS, BB_REQ_SUCCEEDED, BB_REQ_FAILED, BB_REQ_EXPIRED,
                                                     BB_REQ_CANCELLED};
    fakellm_batch_store *st = b->st;
    b->counts[BB_PENDING]--;
    r->outcome = o;
    b->counts[o]++;
    if (counter[o] != BB_COUNTERS)
        fakellm_batch__count(st, b->provider, counter[o]);
    if (r->result != NULL)
        st->bytes += r->result_len;
    if (b->provider != FAKELLM_BATCH_OPENAI && r->body != NULL)
        st->bytes -= r->body_len < st->bytes ? r->body_len : st->bytes;
    free(r->body);
    r->body = NULL;
}

/* Answers request i of b: the interactive endpoint's answer, or (a seeded
 * draw per batch and line, share fail_p) the provider's 500. */
static void run_one(bb_batch *b, size_t i)
{
    fakellm_batch_store *st = b->st;
    bb_req *r = &b->reqs[i];
    uint64_t draw = fakellm_mix64(st->o.seed ^ fakellm_mix64((b->seq << 24) ^ (uint64_t)i));
    int fail = st->o.fail_p > 0 && (double)(draw >> 11) / 9007199254740992.0 < st->o.fail_p;
    uint64_t rid = ++st->next_id;
    bb_outcome o = b->provider == FAKELLM_BATCH_OPENAI      ? fakellm_batch__openai_run(b, r, fail, rid)
                   : b->provider == FAKELLM_BATCH_ANTHROPIC ? fakellm_batch__anthropic_run(b, r, fail, rid)
                                                            : fakellm_batch__gemini_run(b, r, fail, rid);
    settle(b, r, o);
}

/* Marks every request not yet answered with outcome o (expired, cancelled). */
static void unrun_rest(bb_batch *b, bb_outcome o)
{
    for (; b->next < b->n; b->next++) {
        bb_req *r = &b->reqs[b->next];
        if (b->provider == FAKELLM_BATCH_OPENAI)
            fakellm_batch__openai_unrun(b, r, o, ++b->st->next_id);
        else if (b->provider == FAKELLM_BATCH_ANTHROPIC)
            fakellm_batch__anthropic_unrun(b, r, o);
        else
            fakellm_batch__gemini_unrun(b, r, o);
        settle(b, r, o);
    }
}

/* The requests that should have been answered by now_mono. */
static size_t due(const bb_batch *b, uint64_t now_mono)
{
    const fakellm_batch_options *o = &b->st->o;
    size_t cap = o->expire ? b->n / 2 : b->n, d = cap;
    if (o->delay_ms > 0) {
        uint64_t el = now_mono > b->start_mono ? now_mono - b->start_mono : 0;
        if (el < o->delay_ms) {
            d = (size_t)((double)b->n * (double)el / (double)o->delay_ms);
            if (d > cap)
                d = cap;
        }
    }
    return d;
}

static void answer_due(bb_batch *b, uint64_t now_mono)
{
    size_t d = due(b, now_mono);
    for (; b->next < d; b->next++)
        run_one(b, b->next);
}

/* Ends b in state `to`; an OpenAI batch gets its output and error files. */
static void finish(bb_batch *b, fakellm_batch_state to)
{
    enter(b, to);
    if (b->provider == FAKELLM_BATCH_OPENAI)
        fakellm_batch__openai_finish(b);
}

/* One step of the machine at now_mono; fired says the timer's deadline came. */
static void step(bb_batch *b, uint64_t now_mono, int fired)
{
    const fakellm_batch_options *o = &b->st->o;
    switch (b->state) {
    case FAKELLM_BATCH_VALIDATING:
        if (!fired)
            return;
        if (b->errors != NULL) {
            enter(b, FAKELLM_BATCH_FAILED);
            return;
        }
        enter(b, FAKELLM_BATCH_IN_PROGRESS);
        b->start_mono = now_mono;
        schedule(b, now_mono + o->delay_ms);
        return;
    case FAKELLM_BATCH_IN_PROGRESS:
        answer_due(b, now_mono);
        if (!fired || now_mono < b->start_mono + o->delay_ms)
            return;
        if (o->expire) {
            unrun_rest(b, BB_EXPIRED);
            finish(b, FAKELLM_BATCH_EXPIRED);
        } else {
            enter(b, FAKELLM_BATCH_FINALIZING);
            finish(b, FAKELLM_BATCH_COMPLETED);
        }
        return;
    case FAKELLM_BATCH_CANCELLING:
        if (!fired)
            return;
        unrun_rest(b, BB_CANCELLED);
        finish(b, FAKELLM_BATCH_CANCELLED);
        return;
    default:
        return;
    }
}

static void on_timer(void *item, void *user)
{
    fakellm_batch_store *st = user;
    bb_batch *b = item;
    pthread_mutex_lock(&st->mu);
    if (!b->deleted)
        step(b, fakellm_timer_now_ms(), 1);
    pthread_mutex_unlock(&st->mu);
}

void fakellm_batch__advance(bb_batch *b) { step(b, fakellm_timer_now_ms(), 0); }

int fakellm_batch__cancel(bb_batch *b)
{
    if (fakellm_batch_state_terminal(b->state) || b->state == FAKELLM_BATCH_CANCELLING)
        return EMPQ_ESTATE;
    if (b->state == FAKELLM_BATCH_IN_PROGRESS)
        answer_due(b, fakellm_timer_now_ms());
    enter(b, FAKELLM_BATCH_CANCELLING);
    schedule(b, fakellm_timer_now_ms());
    return EMPQ_OK;
}

void fakellm_batch__delete(bb_batch *b)
{
    fakellm_batch_store *st = b->st;
    for (size_t i = 0; i < b->n; i++) {
        const bb_req *r = &b->reqs[i];
        size_t k = (r->result ? r->result_len : 0) +
                   (b->provider != FAKELLM_BATCH_OPENAI && r->body ? r->body_len : 0);
        st->bytes -= k < st->bytes ? k : st->bytes;
    }
    free_reqs(b);
    b->n = b->next = 0;
    b->deleted = 1;
    st->objects--;
}

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

static const char *const counter_names[BB_COUNTERS] = {
    "files_uploaded", "file_gets", "file_lists", "file_downloads", "deletes", "batches_created",
    "batch_gets", "batch_lists", "cancels", "results_downloads", "requests_succeeded", "requests_failed",
    "requests_expired", "requests_cancelled", "creates_lost"};
static const char *const provider_names[FAKELLM_BATCH_PROVIDERS] = {"openai", "anthropic", "gemini"};

int fakellm_batch_stats_json(fakellm_batch_store *st, empq_buf *out)
{
    json_t *root = json_object();
    int rc = root ? EMPQ_OK : EMPQ_ENOMEM;
    pthread_mutex_lock(&st->mu);
    for (int p = 0; p < FAKELLM_BATCH_PROVIDERS && rc == EMPQ_OK; p++) {
        json_t *o = json_object();
        size_t open = 0;
        for (size_t i = 0; i < st->n_batches; i++)
            if ((int)st->batches[i]->provider == p && !st->batches[i]->deleted &&
                !fakellm_batch_state_terminal(st->batches[i]->state))
                open++;
        for (int c = 0; c < BB_COUNTERS && o != NULL; c++)
            if (json_object_set_new(o, counter_names[c], json_integer((json_int_t)st->counters[p][c])) != 0) {
                json_decref(o);
                o = NULL;
            }
        if (o == NULL || json_object_set_new(o, "open", json_integer((json_int_t)open)) != 0 ||
            json_object_set_new(root, provider_names[p], o) != 0)
            rc = EMPQ_ENOMEM;
    }
    pthread_mutex_unlock(&st->mu);
    char *text = rc == EMPQ_OK ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (rc == EMPQ_OK)
        rc = text ? empq_buf_append(out, text, strlen(text)) : EMPQ_ENOMEM;
    free(text);
    json_decref(root);
    return rc;
}

void fakellm_batch_stats_reset(fakellm_batch_store *st)
{
    pthread_mutex_lock(&st->mu);
    memset(st->counters, 0, sizeof(st->counters));
    pthread_mutex_unlock(&st->mu);
}

char *fakellm_batch__rfc3339(char *out, size_t cap, uint64_t unix_ms)
{
    char secs[40];
    fakellm_rfc3339(secs, sizeof(secs), unix_ms);
    size_t n = strlen(secs);
    if (n > 0 && secs[n - 1] == 'Z')
        secs[n - 1] = '\0';
    snprintf(out, cap, "%s.%03" PRIu64 "Z", secs, unix_ms % 1000u);
    return out;
}
