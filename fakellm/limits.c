/* limits.c: per-model limits and sliding-window counters. See limits.h. */
#include "limits.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define OTHER "(other)"
#define MODEL_NAME_MAX 256
#define CONCURRENCY_RETRY_MS 1000u

/* ------------------------------------------------------------------------ */
/* Rings of (time, tokens) with sliding windows                              */
/* ------------------------------------------------------------------------ */

typedef struct event {
    uint64_t t;
    uint64_t tok;
} event;

/* A window over the ring's events: those with t > now - span. cursor is the
 * logical index of its oldest event. */
typedef struct window {
    uint64_t span;
    uint64_t cursor;
    uint64_t count, tokens;
} window;

/* Events by logical index: [start, end), physical index = logical % cap. */
typedef struct ring {
    event *a;
    uint64_t cap, start, end;
    window w[2];
    size_t n_w;
} ring;

static void ring_init(ring *r, size_t n_w, const uint64_t *spans)
{
    memset(r, 0, sizeof(*r));
    r->n_w = n_w;
    for (size_t i = 0; i < n_w; i++)
        r->w[i].span = spans[i];
}

static void ring_free(ring *r) { free(r->a); }

static event *at(const ring *r, uint64_t i) { return &r->a[i % r->cap]; }

/* Drops from each window the events that left it by now. */
static void ring_expire(ring *r, uint64_t now)
{
    for (size_t k = 0; k < r->n_w; k++) {
        window *w = &r->w[k];
        while (w->cursor < r->end && at(r, w->cursor)->t + w->span <= now) {
            w->count--;
            w->tokens -= at(r, w->cursor)->tok;
            w->cursor++;
        }
    }
    uint64_t oldest = r->end;
    for (size_t k = 0; k < r->n_w; k++)
        if (r->w[k].cursor < oldest)
            oldest = r->w[k].cursor;
    r->start = oldest;
}

static int ring_push(ring *r, uint64_t t, uint64_t tok)
{
    if (r->end - r->start == r->cap) {
        uint64_t ncap = r->cap ? r->cap * 2 : 64;
        event *na = malloc(ncap * sizeof(*na));
        if (na == NULL)
            return EMPQ_ENOMEM;
        for (uint64_t i = r->start; i < r->end; i++)
            na[i % ncap] = *at(r, i);
        free(r->a);
        r->a = na;
        r->cap = ncap;
    }
    *at(r, r->end) = (event){t, tok};
    r->end++;
    for (size_t k = 0; k < r->n_w; k++) {
        r->w[k].count++;
        r->w[k].tokens += tok;
    }
    ring_expire(r, t);
    return EMPQ_OK;
}

/* Resets the windows to hold nothing (the events stay allocated). */
static void ring_clear(ring *r)
{
    r->start = r->end;
    for (size_t k = 0; k < r->n_w; k++) {
        r->w[k].cursor = r->end;
        r->w[k].count = r->w[k].tokens = 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Models                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct model {
    char *name;
    int has_limit;
    fakellm_limit lim;
    ring seen;     /* received: windows 60 s and 1 s */
    ring admitted; /* admitted: window 60 s (the quota) */
    uint64_t requests, limited, tokens;
    uint64_t open, open_admitted, peak_open;
    uint64_t max_req_60, max_req_1, max_tok_60, max_tok_1;
} model;

struct fakellm_limits {
    pthread_mutex_t mu;
    model *models;
    size_t n, cap;
    int has_default;
    fakellm_limit def;
    uint64_t last_t;
};

fakellm_limits *fakellm_limits_new(void)
{
    fakellm_limits *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void fakellm_limits_free(fakellm_limits **lp)
{
    if (lp == NULL || *lp == NULL)
        return;
    fakellm_limits *l = *lp;
    *lp = NULL;
    for (size_t i = 0; i < l->n; i++) {
        free(l->models[i].name);
        ring_free(&l->models[i].seen);
        ring_free(&l->models[i].admitted);
    }
    free(l->models);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* The index of name, created when new (past the table's size, or a name
 * too long: the shared "(other)" entry). -1 when out of memory. Locked. */
static int find_model(fakellm_limits *l, const char *name)
{
    if (name == NULL)
        name = "";
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->models[i].name, name) == 0)
            return (int)i;
    if (strlen(name) > MODEL_NAME_MAX || l->n >= FAKELLM_LIMITS_MODELS - 1) {
        name = OTHER;
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->models[i].name, name) == 0)
                return (int)i;
        if (l->n >= FAKELLM_LIMITS_MODELS)
            return (int)l->n - 1;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        model *nm = realloc(l->models, ncap * sizeof(*nm));
        if (nm == NULL)
            return -1;
        l->models = nm;
        l->cap = ncap;
    }
    model *m = &l->models[l->n];
    memset(m, 0, sizeof(*m));
    m->name = strdup(name);
    if (m->name == NULL)
        return -1;
    static const uint64_t spans_seen[2] = {FAKELLM_LIMITS_WINDOW_MS, 1000u};
    static const uint64_t spans_admitted[1] = {FAKELLM_LIMITS_WINDOW_MS};
    ring_init(&m->seen, 2, spans_seen);
    ring_init(&m->admitted, 1, spans_admitted);
    if (l->has_default) {
        m->has_limit = 1;
        m->lim = l->def;
    }
    return (int)l->n++;
}

int fakellm_limits_set(fakellm_limits *l, const char *model_name, const fakellm_limit *lim)
{
    int rc = EMPQ_OK;
    pthread_mutex_lock(&l->mu);
    if (model_name == NULL) {
        l->has_default = 1;
        l->def = *lim;
        for (size_t i = 0; i < l->n; i++) {
            if (!l->models[i].has_limit) {
                l->models[i].has_limit = 1;
                l->models[i].lim = *lim;
            }
        }
    } else if (strlen(model_name) > MODEL_NAME_MAX || l->n >= FAKELLM_LIMITS_MODELS - 1) {
        rc = EMPQ_EINVAL; /* the last entry is kept for "(other)" */
    } else {
        int i = find_model(l, model_name);
        if (i < 0) {
            rc = EMPQ_ENOMEM;
        } else {
            l->models[i].has_limit = 1;
            l->models[i].lim = *lim;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ms until the oldest k+1 events of window w have all left it. */
static uint64_t wait_for(const ring *r, const window *w, uint64_t k, uint64_t now)
{
    uint64_t i = w->cursor + k;
    if (i >= r->end)
        return w->span;
    uint64_t t = at(r, i)->t + w->span;
    return t > now ? t - now : 1;
}

/* ms until the events now in w have all left it (0 when w is empty). */
static uint64_t until_empty(const ring *r, const window *w, uint64_t now)
{
    if (w->count == 0)
        return 0;
    uint64_t t = at(r, r->end - 1)->t + w->span;
    return t > now ? t - now : 0;
}

/* Decides admission of m for tokens at now; fills the rejection in out. */
static int admit(model *m, uint64_t tokens, uint64_t now, fakellm_admit *out)
{
    ring *r = &m->admitted;
    window *w = &r->w[0];
    ring_expire(r, now);
    if (m->lim.concurrency > 0 && m->open_admitted + 1 > m->lim.concurrency) {
        out->which = "concurrency";
        out->limit = m->lim.concurrency;
        out->used = m->open_admitted;
        out->requested = 1;
        out->retry_after_ms = CONCURRENCY_RETRY_MS;
        return 0;
    }
    if (m->lim.rpm > 0 && w->count + 1 > m->lim.rpm) {
        out->which = "requests";
        out->limit = m->lim.rpm;
        out->used = w->count;
        out->requested = 1;
        out->retry_after_ms = wait_for(r, w, w->count - m->lim.rpm, now);
        return 0;
    }
    if (m->lim.tpm > 0 && w->tokens + tokens > m->lim.tpm) {
        out->which = "tokens";
        out->limit = m->lim.tpm;
        out->used = w->tokens;
        out->requested = tokens;
        if (tokens > m->lim.tpm) {
            out->retry_after_ms = w->span; /* never fits; say a minute */
        } else {
            uint64_t freed = 0, k = 0;
            while (w->tokens - freed + tokens > m->lim.tpm && w->cursor + k < r->end)
                freed += at(r, w->cursor + k++)->tok;
            out->retry_after_ms = wait_for(r, w, k ? k - 1 : 0, now);
        }
        return 0;
    }
    return 1;
}

int fakellm_limits_begin(fakellm_limits *l, const char *model_name, uint64_t tokens, uint64_t now_ms,
                         fakellm_admit *out, fakellm_slot *slot)
{
    memset(out, 0, sizeof(*out));
    out->admitted = 1;
    slot->model = -1;
    slot->admitted = 0;
    pthread_mutex_lock(&l->mu);
    if (now_ms < l->last_t)
        now_ms = l->last_t;
    l->last_t = now_ms;
    int i = find_model(l, model_name);
    if (i < 0) {
        pthread_mutex_unlock(&l->mu);
        return EMPQ_ENOMEM;
    }
    model *m = &l->models[i];
    out->has_limit = m->has_limit;
    out->lim = m->lim;
    if (m->has_limit && !admit(m, tokens, now_ms, out))
        out->admitted = 0;
    uint64_t charged = out->admitted ? tokens : 0;
    if (ring_push(&m->seen, now_ms, charged) != EMPQ_OK ||
        (out->admitted && m->has_limit && ring_push(&m->admitted, now_ms, charged) != EMPQ_OK)) {
        pthread_mutex_unlock(&l->mu);
        out->admitted = 1;
        out->which = NULL;
        return EMPQ_ENOMEM;
    }
    m->requests++;
    m->tokens += charged;
    if (!out->admitted)
        m->limited++;
    m->open++;
    if (m->open > m->peak_open)
        m->peak_open = m->open;
    if (out->admitted)
        m->open_admitted++;
    const window *s60 = &m->seen.w[0], *s1 = &m->seen.w[1];
    if (s60->count > m->max_req_60)
        m->max_req_60 = s60->count;
    if (s1->count > m->max_req_1)
        m->max_req_1 = s1->count;
    if (s60->tokens > m->max_tok_60)
        m->max_tok_60 = s60->tokens;
    if (s1->tokens > m->max_tok_1)
        m->max_tok_1 = s1->tokens;
    if (m->has_limit) {
        const ring *r = &m->admitted;
        const window *w = &r->w[0];
        out->remaining_requests = m->lim.rpm > w->count ? m->lim.rpm - w->count : 0;
        out->remaining_tokens = m->lim.tpm > w->tokens ? m->lim.tpm - w->tokens : 0;
        out->reset_requests_ms = until_empty(r, w, now_ms);
        out->reset_tokens_ms = w->tokens > 0 ? out->reset_requests_ms : 0;
    }
    slot->model = i;
    slot->admitted = out->admitted;
    pthread_mutex_unlock(&l->mu);
    return EMPQ_OK;
}

void fakellm_limits_end(fakellm_limits *l, fakellm_slot *slot)
{
    if (slot == NULL || slot->model < 0)
        return;
    pthread_mutex_lock(&l->mu);
    model *m = &l->models[slot->model];
    if (m->open > 0)
        m->open--;
    if (slot->admitted && m->open_admitted > 0)
        m->open_admitted--;
    pthread_mutex_unlock(&l->mu);
    slot->model = -1;
    slot->admitted = 0;
}

void fakellm_limits_reset(fakellm_limits *l)
{
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++) {
        model *m = &l->models[i];
        ring_clear(&m->seen);
        m->requests = m->limited = m->tokens = 0;
        m->peak_open = m->open;
        m->max_req_60 = m->max_req_1 = m->max_tok_60 = m->max_tok_1 = 0;
    }
    pthread_mutex_unlock(&l->mu);
}

int fakellm_limits_json(fakellm_limits *l, empq_buf *out)
{
    int rc = EMPQ_ENOMEM;
    json_t *root = json_object();
    pthread_mutex_lock(&l->mu);
    if (root == NULL)
        goto unlock;
    for (size_t i = 0; i < l->n; i++) {
        const model *m = &l->models[i];
        json_t *lim = m->has_limit ? json_pack("{s:I,s:I,s:I}", "rpm", (json_int_t)m->lim.rpm, "tpm",
                                               (json_int_t)m->lim.tpm, "concurrency",
                                               (json_int_t)m->lim.concurrency)
                                   : json_null();
        json_t *o = json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "limit", lim, "requests",
                              (json_int_t)m->requests, "limited", (json_int_t)m->limited, "tokens",
                              (json_int_t)m->tokens, "in_flight", (json_int_t)m->open, "peak_concurrency",
                              (json_int_t)m->peak_open, "max_requests_60s", (json_int_t)m->max_req_60,
                              "max_requests_1s", (json_int_t)m->max_req_1, "max_tokens_60s",
                              (json_int_t)m->max_tok_60, "max_tokens_1s", (json_int_t)m->max_tok_1);
        if (o == NULL || json_object_set_new(root, m->name, o) != 0)
            goto unlock;
    }
    rc = EMPQ_OK;
unlock:
    pthread_mutex_unlock(&l->mu);
    if (rc == EMPQ_OK) {
        char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        rc = text ? empq_buf_append(out, text, strlen(text)) : EMPQ_ENOMEM;
        free(text);
    }
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

int fakellm_limit_parse(const char *text, char **model_out, fakellm_limit *out, empq_error *err)
{
    memset(out, 0, sizeof(*out));
    if (model_out != NULL)
        *model_out = NULL;
    const char *spec = text;
    if (model_out != NULL) {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || colon == text)
            return empq_error_set(err, EMPQ_EINVAL, "limit '%s': expected MODEL:rpm=N,tpm=N,concurrency=N", text);
        *model_out = strndup(text, (size_t)(colon - text));
        if (*model_out == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "limit: out of memory");
        spec = colon + 1;
    }
    int any = 0;
    const char *p = spec;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        uint64_t *field = NULL;
        size_t klen = eq ? (size_t)(eq - p) : 0;
        if (eq != NULL && klen == 3 && strncmp(p, "rpm", 3) == 0)
            field = &out->rpm;
        else if (eq != NULL && klen == 3 && strncmp(p, "tpm", 3) == 0)
            field = &out->tpm;
        else if (eq != NULL && klen == 11 && strncmp(p, "concurrency", 11) == 0)
            field = &out->concurrency;
        char num[32];
        size_t vlen = eq ? len - klen - 1 : 0;
        char *stop = NULL;
        unsigned long long v = 0;
        if (field != NULL && vlen > 0 && vlen < sizeof(num) && eq[1] >= '0' && eq[1] <= '9') {
            memcpy(num, eq + 1, vlen);
            num[vlen] = '\0';
            errno = 0;
            v = strtoull(num, &stop, 10);
        }
        if (field == NULL || stop == NULL || *stop != '\0' || errno != 0) {
            if (model_out != NULL) {
                free(*model_out);
                *model_out = NULL;
            }
            return empq_error_set(err, EMPQ_EINVAL,
                                  "limit '%s': '%.*s' is not rpm=N, tpm=N or concurrency=N", text, (int)len, p);
        }
        *field = v;
        any = 1;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!any) {
        if (model_out != NULL) {
            free(*model_out);
            *model_out = NULL;
        }
        return empq_error_set(err, EMPQ_EINVAL, "limit '%s': names no rpm, tpm or concurrency", text);
    }
    return EMPQ_OK;
}
