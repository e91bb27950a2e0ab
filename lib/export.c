/* export.c: a run's results as responses.jsonl and dead.jsonl.
 *
 * jansson dumps every string and object of the lines (escaping, UTF-8, the
 * params' reals); integers, true/false/null and timestamps are written as
 * jansson writes them. Nothing is built per line: a formatter made once per
 * export (see struct fmt) keeps its jansson values and sets them in place,
 * and the prompt half of a line is dumped once per prompt.
 * empq_export_responses reads the run in chunks of prompts, in job order,
 * and writes each chunk's lines to temporary files before it reads on, so
 * its memory does not grow with the run. The formatting half
 * (empq_export_line, _dead_line, _render) is pure so the unit tests check it
 * without Redis. */
#include "empq/export.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "empq/log.h"

/* Doubles as the spec wrote them: 15 significant digits print 0.7 as 0.7,
 * not 0.69999999999999996, and keep any value a person typed. */
#define DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15))

#define JOB_CHUNK 2048      /* jobs read from Redis at a time (whole prompts) */
#define FLUSH_AT (1u << 20) /* bytes of lines buffered before a write */

/* ==================== small JSON helpers ==================== */

/* s as valid UTF-8 into b (emptied first): each invalid byte becomes
 * U+FFFD. EMPQ_OK or EMPQ_ENOMEM. */
static int utf8_fix(const char *s, empq_buf *b)
{
    b->len = 0;
    int rc = empq_buf_append(b, "", 0);
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end && rc == EMPQ_OK) {
        size_t n = empq_utf8_seq(p, (size_t)(end - p));
        rc = n > 0 ? empq_buf_append(b, p, n) : empq_buf_append(b, "\xEF\xBF\xBD", 3);
        p += n > 0 ? n : 1;
    }
    return rc;
}

/* A JSON string of s (null when s is NULL); invalid UTF-8 bytes become
 * U+FFFD. Returns NULL only when out of memory. */
static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *v = json_string(s);
    if (v != NULL)
        return v;
    empq_buf b = {0};
    if (utf8_fix(s, &b) == EMPQ_OK)
        v = json_stringn(b.data, b.len);
    empq_buf_free(&b);
    return v;
}

/* Sets key to v, taking v's reference; a NULL v (out of memory) is
 * remembered in *bad. */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0)
        *bad = 1;
}

const char *empq_export_iso8601(uint64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000u);
    struct tm tm;
    if (len == 0)
        return buf;
    if (gmtime_r(&sec, &tm) == NULL) {
        buf[0] = '\0';
        return buf;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000u));
    return buf;
}

static json_t *params_json(const Empq__GenParams *g)
{
    json_t *o = json_object();
    if (o == NULL || g == NULL)
        return o;
    int bad = 0;
    if (g->has_temperature)
        put(o, "temperature", json_real(g->temperature), &bad);
    if (g->has_top_p)
        put(o, "top_p", json_real(g->top_p), &bad);
    if (g->has_max_tokens)
        put(o, "max_tokens", json_integer(g->max_tokens), &bad);
    if (g->has_seed)
        put(o, "seed", json_integer(g->seed), &bad);
    if (g->n_stop > 0) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < g->n_stop; i++) {
            json_t *s = jstr(g->stop[i]);
            if (s == NULL || json_array_append_new(a, s) != 0)
                bad = 1;
        }
        put(o, "stop", a, &bad);
    }
    if (g->has_max_completion_tokens)
        put(o, "max_completion_tokens", json_integer(g->max_completion_tokens), &bad);
    if (g->reasoning_effort != NULL)
        put(o, "reasoning_effort", jstr(g->reasoning_effort), &bad);
    if (g->system_role != NULL)
        put(o, "system_role", jstr(g->system_role), &bad);
    if (g->has_thinking_budget)
        put(o, "thinking_budget", json_integer(g->thinking_budget), &bad);
    if (g->has_include_thoughts)
        put(o, "include_thoughts", json_boolean(g->include_thoughts), &bad);
    if (g->n_safety_settings > 0) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < g->n_safety_settings; i++)
            if (json_array_append_new(a, json_pack("{s:s, s:s}", "category", g->safety_settings[i]->category,
                                                   "threshold", g->safety_settings[i]->threshold)) != 0)
                bad = 1;
        put(o, "safetySettings", a, &bad);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int is_human(const Empq__ModelSpec *m)
{
    return m->provider != NULL && strcmp(m->provider, "human") == 0;
}

/* ==================== pure formatting ==================== */

uint32_t empq_export_samples(const Empq__RunSpec *spec)
{
    uint32_t s = 1;
    for (size_t i = 0; i < spec->n_models; i++)
        if (spec->models[i]->samples > s)
            s = spec->models[i]->samples;
    return s;
}

uint64_t empq_export_total_jobs(const Empq__Run *run)
{
    if (run->spec == NULL)
        return 0;
    return (uint64_t)run->n_prompts * run->spec->n_models * empq_export_samples(run->spec);
}

/* One key of a formatter's object and the value it holds now. The object
 * keeps its keys in the order they were added (JSON_PRESERVE_ORDER); a value
 * is replaced through the key's iterator, which keeps its place. */
typedef struct slot {
    json_t *obj; /* the object (borrowed) */
    void *iter;  /* the key's place in obj */
    json_t *cur; /* the value obj holds now (borrowed) */
    json_t *str; /* this key's string value, made on first use (owned) */
    json_t *num; /* this key's integer value, made on first use (owned) */
} slot;

enum { P_RUN_ID, P_PROMPT_ID, P_PROMPT_INDEX, P_EMOTION, P_SITUATION, P_PROMPT, P_N };
static const char *const prompt_keys[P_N] = {"run_id",  "prompt_id", "prompt_index",
                                             "emotion", "situation", "prompt"};

/* Keys D_PROMPT_INDEX..D_SAMPLE only when the run has jobs per prompt. */
enum {
    D_RUN_ID, D_JOB, D_PROMPT_INDEX, D_PROMPT_ID, D_SOURCE, D_SAMPLE, D_REASON, D_LAST_STATUS,
    D_BODY_EXCERPT, D_ATTEMPTS, D_AT, D_WORKER, D_REQUEST_ID, D_FINISH_REASON, D_TOKENS_IN, D_TOKENS_OUT,
    D_REASONING_TOKENS, D_SAFETY_RATINGS, D_N
};
static const char *const dead_keys[D_N] = {"run_id",      "job",          "prompt_index",
                                           "prompt_id",   "source",       "sample",
                                           "reason",      "last_status",  "body_excerpt",
                                           "attempts",    "at",           "worker",
                                           "request_id",  "finish_reason", "tokens_in",
                                           "tokens_out",  "reasoning_tokens", "safety_ratings"};

/* Formats one run's lines. A prompt's fields and a dead letter's are set in
 * their objects and dumped whole; a result line is its prompt's dumped
 * prefix, then the result's keys and values appended in order: each string
 * dumped by jansson from one reused string value, the text a model's lines
 * share (source, model, params) dumped once per export. */
typedef struct fmt {
    const Empq__Run *run;
    uint32_t n_models, samples, per_prompt;
    json_t *prompt_obj, *dead_obj; /* owned */
    slot p[P_N], d[D_N];
    json_t *text;          /* the string value dumped on its own (owned) */
    empq_buf *model_part;  /* per model: `,"source":...,"model_version":` */
    empq_buf *params_part; /* per model: `,"params":{...},"finish_reason":` */
    int safe;              /* strings are made valid UTF-8 before they are set */
    empq_buf fixed;        /* scratch: a string made valid */
    empq_buf prefix;       /* `{"run_id":...,"prompt":...,` of prompt prefix_of */
    size_t prefix_of;      /* SIZE_MAX: none yet */
    uint64_t time_sec;     /* the second of time_text */
    char time_text[40];    /* "YYYY-MM-DDTHH:MM:SS.000Z" of time_sec, or "" */
} fmt;

static void fmt_free(fmt *f)
{
    slot *all[] = {f->p, f->d};
    size_t n[] = {P_N, D_N};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < n[k]; i++) {
            json_decref(all[k][i].str);
            json_decref(all[k][i].num);
        }
    json_decref(f->prompt_obj);
    json_decref(f->dead_obj);
    json_decref(f->text);
    for (uint32_t i = 0; i < f->n_models; i++) {
        if (f->model_part != NULL)
            empq_buf_free(&f->model_part[i]);
        if (f->params_part != NULL)
            empq_buf_free(&f->params_part[i]);
    }
    free(f->model_part);
    free(f->params_part);
    empq_buf_free(&f->fixed);
    empq_buf_free(&f->prefix);
    memset(f, 0, sizeof *f);
}

/* Adds key (value null) to obj and points s at it. 0 or -1 (out of memory). */
static int slot_init(slot *s, json_t *obj, const char *key)
{
    if (obj == NULL || json_object_set_new(obj, key, json_null()) != 0)
        return -1;
    s->obj = obj;
    s->iter = json_object_iter_at(obj, key);
    s->cur = json_null();
    return s->iter != NULL ? 0 : -1;
}

/* Makes v the slot's value (obj takes a reference). */
static void slot_put(slot *s, json_t *v)
{
    if (s->cur != v) {
        json_object_iter_set(s->obj, s->iter, v);
        s->cur = v;
    }
}

/* Sets a string (null when text is NULL). In safe mode the text is made
 * valid UTF-8 first; otherwise it is taken as it is and the dump refuses
 * it when it is not valid. EMPQ_OK or EMPQ_ENOMEM. */
static int set_str(fmt *f, slot *s, const char *text)
{
    if (text == NULL) {
        slot_put(s, json_null());
        return EMPQ_OK;
    }
    size_t n = strlen(text);
    if (f->safe) {
        if (utf8_fix(text, &f->fixed) != EMPQ_OK)
            return EMPQ_ENOMEM;
        text = f->fixed.data;
        n = f->fixed.len;
    }
    if (s->str == NULL)
        s->str = json_stringn_nocheck(text, n);
    else if (json_string_setn_nocheck(s->str, text, n) != 0)
        return EMPQ_ENOMEM;
    if (s->str == NULL)
        return EMPQ_ENOMEM;
    slot_put(s, s->str);
    return EMPQ_OK;
}

static int set_int(slot *s, long long v)
{
    if (s->num == NULL)
        s->num = json_integer(v);
    else
        json_integer_set(s->num, v);
    if (s->num == NULL)
        return EMPQ_ENOMEM;
    slot_put(s, s->num);
    return EMPQ_OK;
}

static int set_int_opt(slot *s, int has, long long v)
{
    if (!has) {
        slot_put(s, json_null());
        return EMPQ_OK;
    }
    return set_int(s, v);
}

static int set_time_opt(fmt *f, slot *s, int has, uint64_t ms)
{
    char buf[40];
    return set_str(f, s, has ? empq_export_iso8601(ms, buf, sizeof buf) : NULL);
}

/* The dump callback: appends to data (an empq_buf); 0 or -1 (out of memory). */
static int to_buf(const char *p, size_t n, void *data)
{
    empq_buf *b = data;
    if (b->len + n < b->cap) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
    }
    return empq_buf_append(b, p, n) == EMPQ_OK ? 0 : -1;
}

static int put_raw(empq_buf *b, const char *s, size_t n) { return to_buf(s, n, b); }

#define PUT_LIT(b, lit) put_raw((b), (lit), sizeof(lit) - 1)

/* Drops what was appended to b after len. */
static void buf_cut(empq_buf *b, size_t len)
{
    if (b->data != NULL && b->len > len) {
        b->len = len;
        b->data[len] = '\0';
    }
}

/* Appends text as a JSON string dumped by jansson (null when text is NULL).
 * Text that is not valid UTF-8 is refused by the dump, then made valid and
 * dumped again. 0 or -1 (out of memory). */
static int put_text(fmt *f, empq_buf *out, const char *text)
{
    if (text == NULL)
        return PUT_LIT(out, "null");
    size_t at = out->len;
    for (int safe = 0; safe < 2; safe++) {
        const char *v = text;
        size_t n;
        if (safe) {
            if (utf8_fix(text, &f->fixed) != EMPQ_OK)
                return -1;
            v = f->fixed.data;
            n = f->fixed.len;
        } else {
            n = strlen(text);
        }
        if (json_string_setn_nocheck(f->text, v, n) != 0)
            return -1;
        if (json_dump_callback(f->text, to_buf, out, DUMP_FLAGS | JSON_ENCODE_ANY) == 0)
            return 0;
        buf_cut(out, at);
    }
    return -1;
}

/* Appends v in decimal, as jansson writes an integer ("%lld"). */
static int put_int(empq_buf *out, long long v)
{
    char buf[24];
    char *p = buf + sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return put_raw(out, p, (size_t)(buf + sizeof buf - p));
}

static int put_int_opt(empq_buf *out, int has, long long v)
{
    return has ? put_int(out, v) : PUT_LIT(out, "null");
}

/* Appends the JSON text js as a value (null when NULL or not JSON). */
static int put_json(empq_buf *out, const char *js)
{
    json_error_t jerr;
    json_t *v = js != NULL ? json_loads(js, JSON_DECODE_ANY, &jerr) : NULL;
    if (v == NULL)
        return PUT_LIT(out, "null");
    int rc = json_dump_callback(v, to_buf, out, DUMP_FLAGS | JSON_ENCODE_ANY);
    json_decref(v);
    return rc != 0 ? -1 : 0;
}

/* Appends ms as "2026-11-22T03:57:22.123Z" (quoted; null when !has), as
 * empq_export_iso8601 writes it; the text of the last second is kept. */
static int put_time_opt(fmt *f, empq_buf *out, int has, uint64_t ms)
{
    if (!has)
        return PUT_LIT(out, "null");
    char buf[40];
    const char *t = buf;
    if (ms / 1000u != f->time_sec || f->time_text[0] == '\0') {
        f->time_sec = ms / 1000u;
        empq_export_iso8601(f->time_sec * 1000u, f->time_text, sizeof f->time_text);
    }
    if (strlen(f->time_text) == 24) {
        memcpy(buf, f->time_text, 25);
        unsigned frac = (unsigned)(ms % 1000u);
        buf[20] = (char)('0' + frac / 100u);
        buf[21] = (char)('0' + frac / 10u % 10u);
        buf[22] = (char)('0' + frac % 10u);
    } else {
        empq_export_iso8601(ms, buf, sizeof buf);
    }
    int bad = PUT_LIT(out, "\"");
    bad = bad || put_raw(out, t, strlen(t));
    return bad || PUT_LIT(out, "\"");
}

/* Makes the formatter of run (whose spec may be NULL). EMPQ_OK or
 * EMPQ_ENOMEM; on failure nothing is left to free. */
static int fmt_init(fmt *f, const Empq__Run *run)
{
    memset(f, 0, sizeof *f);
    f->run = run;
    f->prefix_of = SIZE_MAX;
    f->n_models = run->spec != NULL ? (uint32_t)run->spec->n_models : 0;
    f->samples = run->spec != NULL ? empq_export_samples(run->spec) : 1;
    f->per_prompt = f->n_models * f->samples;
    f->prompt_obj = json_object();
    f->dead_obj = json_object();
    f->text = json_stringn_nocheck("", 0);
    f->model_part = calloc(f->n_models > 0 ? f->n_models : 1, sizeof *f->model_part);
    f->params_part = calloc(f->n_models > 0 ? f->n_models : 1, sizeof *f->params_part);
    int bad = f->text == NULL || f->model_part == NULL || f->params_part == NULL;
    for (size_t i = 0; i < P_N && !bad; i++)
        bad = slot_init(&f->p[i], f->prompt_obj, prompt_keys[i]) != 0;
    for (size_t i = 0; i < D_N && !bad; i++)
        if (f->per_prompt > 0 || i < D_PROMPT_INDEX || i > D_SAMPLE)
            bad = slot_init(&f->d[i], f->dead_obj, dead_keys[i]) != 0;
    /* What a model's lines share, dumped once. */
    for (uint32_t i = 0; i < f->n_models && !bad; i++) {
        const Empq__ModelSpec *m = run->spec->models[i];
        int human = is_human(m);
        empq_buf *mp = &f->model_part[i], *pp = &f->params_part[i];
        json_t *params = human ? json_object() : params_json(m->params);
        bad = params == NULL || PUT_LIT(mp, ",\"source\":") || put_text(f, mp, m->alias) ||
              PUT_LIT(mp, ",\"model\":") || put_text(f, mp, human ? NULL : m->model) ||
              PUT_LIT(mp, ",\"model_version\":") || PUT_LIT(pp, ",\"params\":") ||
              json_dump_callback(params, to_buf, pp, DUMP_FLAGS) != 0 ||
              PUT_LIT(pp, ",\"finish_reason\":");
        json_decref(params);
    }
    if (bad) {
        fmt_free(f);
        return EMPQ_ENOMEM;
    }
    return EMPQ_OK;
}

/* Sets the prompt fields and dumps them as the prefix of prompt index pi:
 * `{"run_id":...,"prompt":...,`. A dump refused for text that is not valid
 * UTF-8 is done again with every string made valid. */
static int fmt_prefix(fmt *f, const Empq__Prompt *p, uint32_t pi)
{
    f->prefix_of = SIZE_MAX;
    for (f->safe = 0; f->safe < 2; f->safe++) {
        int rc = set_str(f, &f->p[P_RUN_ID], f->run->id);
        if (rc == EMPQ_OK)
            rc = set_str(f, &f->p[P_PROMPT_ID], p != NULL ? p->id : NULL);
        if (rc == EMPQ_OK)
            rc = set_int(&f->p[P_PROMPT_INDEX], pi);
        if (rc == EMPQ_OK)
            rc = set_str(f, &f->p[P_EMOTION], p != NULL ? p->emotion : NULL);
        if (rc == EMPQ_OK)
            rc = set_str(f, &f->p[P_SITUATION], p != NULL ? p->situation : NULL);
        if (rc == EMPQ_OK)
            rc = set_str(f, &f->p[P_PROMPT], p != NULL ? p->prompt : NULL);
        if (rc != EMPQ_OK)
            break;
        buf_cut(&f->prefix, 0);
        if (PUT_LIT(&f->prefix, "{") == 0 &&
            json_dump_callback(f->prompt_obj, to_buf, &f->prefix, DUMP_FLAGS | JSON_EMBED) == 0 &&
            PUT_LIT(&f->prefix, ",") == 0) {
            f->safe = 0;
            f->prefix_of = pi;
            return EMPQ_OK;
        }
    }
    f->safe = 0;
    return EMPQ_ENOMEM;
}

/* The thinking text of a result is written only for a model whose spec
 * keeps it (a cache entry may hold thinking written for another run). */
static int keep_thinking(const fmt *f, const Empq__Result *r, const Empq__Generation *g)
{
    const Empq__ModelSpec *m = f->run->spec->models[r->model];
    return g != NULL && g->thinking != NULL && m->has_keep_thinking && m->keep_thinking;
}

/* Appends result r of prompt p (index pi) as one line to out: the prompt's
 * prefix, then the result's keys in the order of export.h, the strings
 * dumped by jansson, the parts a model's lines share dumped once. */
static int fmt_line(fmt *f, const Empq__Prompt *p, uint32_t pi, const Empq__Result *r,
                    empq_buf *out, empq_error *err)
{
    if (f->run->spec == NULL || r->model >= f->n_models)
        return empq_error_set(err, EMPQ_EINVAL, "run %s job %u: model %u is not in the spec",
                              f->run->id, r->job, r->model);
    if (f->prefix_of != pi && fmt_prefix(f, p, pi) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory formatting a line");
    const Empq__Generation *g = r->gen;
    const empq_buf *mp = &f->model_part[r->model], *pp = &f->params_part[r->model];
    size_t at = out->len;
    int bad = put_raw(out, f->prefix.data, f->prefix.len) || PUT_LIT(out, "\"response\":") ||
              put_text(f, out, g != NULL ? g->text : NULL) || put_raw(out, mp->data, mp->len) ||
              put_text(f, out, g != NULL ? g->model_reported : NULL) ||
              PUT_LIT(out, ",\"sample\":") || put_int(out, r->has_sample ? r->sample : 0) ||
              put_raw(out, pp->data, pp->len) ||
              put_text(f, out, g != NULL ? g->finish_reason : NULL) ||
              PUT_LIT(out, ",\"tokens_in\":") ||
              put_int_opt(out, g != NULL && g->has_tokens_in, g != NULL ? g->tokens_in : 0) ||
              PUT_LIT(out, ",\"tokens_out\":") ||
              put_int_opt(out, g != NULL && g->has_tokens_out, g != NULL ? g->tokens_out : 0) ||
              PUT_LIT(out, ",\"reasoning_tokens\":") ||
              put_int_opt(out, g != NULL && g->has_reasoning_tokens, g != NULL ? g->reasoning_tokens : 0) ||
              PUT_LIT(out, ",\"cached_tokens\":") ||
              put_int_opt(out, g != NULL && g->has_cached_tokens, g != NULL ? g->cached_tokens : 0) ||
              PUT_LIT(out, ",\"system_fingerprint\":") ||
              put_text(f, out, g != NULL ? g->system_fingerprint : NULL) ||
              PUT_LIT(out, ",\"request_id\":") || put_text(f, out, g != NULL ? g->request_id : NULL) ||
              PUT_LIT(out, ",\"safety_ratings\":") || put_json(out, g != NULL ? g->safety_ratings : NULL) ||
              PUT_LIT(out, ",\"thinking\":") || put_text(f, out, keep_thinking(f, r, g) ? g->thinking : NULL) ||
              PUT_LIT(out, ",\"latency_ms\":") ||
              put_int_opt(out, g != NULL && g->has_latency_ms, g != NULL ? g->latency_ms : 0) ||
              PUT_LIT(out, ",\"attempts\":") || put_int_opt(out, r->has_attempts, r->attempts) ||
              (r->has_cache_hit && r->cache_hit ? PUT_LIT(out, ",\"cache_hit\":true")
                                                : PUT_LIT(out, ",\"cache_hit\":false")) ||
              PUT_LIT(out, ",\"started_at\":") ||
              put_time_opt(f, out, r->has_started_ms, r->started_ms) ||
              PUT_LIT(out, ",\"finished_at\":") ||
              put_time_opt(f, out, r->has_finished_ms, r->finished_ms) ||
              PUT_LIT(out, ",\"job\":") || put_int(out, r->job) || PUT_LIT(out, "}\n");
    if (bad) {
        buf_cut(out, at);
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory formatting a line");
    }
    return EMPQ_OK;
}

/* Sets the dead letter fields of d. */
static int fmt_dead(fmt *f, const Empq__Prompt *p, const Empq__DeadLetter *d)
{
    slot *s = f->d;
    int rc = set_str(f, &s[D_RUN_ID], f->run->id);
    if (rc == EMPQ_OK)
        rc = set_int(&s[D_JOB], d->job);
    if (rc == EMPQ_OK && f->per_prompt > 0) {
        uint32_t model = (d->job / f->samples) % f->n_models;
        rc = set_int(&s[D_PROMPT_INDEX], d->job / f->per_prompt);
        if (rc == EMPQ_OK)
            rc = set_str(f, &s[D_PROMPT_ID], p != NULL ? p->id : NULL);
        if (rc == EMPQ_OK)
            rc = set_str(f, &s[D_SOURCE], f->run->spec->models[model]->alias);
        if (rc == EMPQ_OK)
            rc = set_int(&s[D_SAMPLE], d->job % f->samples);
    }
    if (rc == EMPQ_OK)
        rc = set_str(f, &s[D_REASON], d->reason);
    if (rc == EMPQ_OK)
        rc = set_int_opt(&s[D_LAST_STATUS], d->has_last_status, d->last_status);
    if (rc == EMPQ_OK)
        rc = set_str(f, &s[D_BODY_EXCERPT], d->body_excerpt);
    if (rc == EMPQ_OK)
        rc = set_int_opt(&s[D_ATTEMPTS], d->has_attempts, d->attempts);
    if (rc == EMPQ_OK)
        rc = set_time_opt(f, &s[D_AT], d->has_at_ms, d->at_ms);
    if (rc == EMPQ_OK)
        rc = set_str(f, &s[D_WORKER], d->worker);
    if (rc == EMPQ_OK)
        rc = set_str(f, &s[D_REQUEST_ID], d->request_id);
    if (rc == EMPQ_OK)
        rc = set_str(f, &s[D_FINISH_REASON], d->finish_reason);
    if (rc == EMPQ_OK)
        rc = set_int_opt(&s[D_TOKENS_IN], d->has_tokens_in, d->tokens_in);
    if (rc == EMPQ_OK)
        rc = set_int_opt(&s[D_TOKENS_OUT], d->has_tokens_out, d->tokens_out);
    if (rc == EMPQ_OK)
        rc = set_int_opt(&s[D_REASONING_TOKENS], d->has_reasoning_tokens, d->reasoning_tokens);
    if (rc == EMPQ_OK) { /* JSON the worker wrote; null when it is not JSON */
        json_t *v = d->safety_ratings != NULL ? json_loads(d->safety_ratings, JSON_DECODE_ANY, NULL) : NULL;
        slot_put(&s[D_SAFETY_RATINGS], v != NULL ? v : json_null());
        json_decref(v); /* the object holds its reference */
    }
    return rc;
}

/* Appends dead letter d (p: its prompt, may be NULL) as one line to out. */
static int fmt_dead_line(fmt *f, const Empq__Prompt *p, const Empq__DeadLetter *d, empq_buf *out,
                         empq_error *err)
{
    size_t at = out->len;
    for (f->safe = 0; f->safe < 2; f->safe++) {
        if (fmt_dead(f, p, d) != EMPQ_OK)
            break;
        if (json_dump_callback(f->dead_obj, to_buf, out, DUMP_FLAGS) == 0 &&
            empq_buf_append(out, "\n", 1) == EMPQ_OK) {
            f->safe = 0;
            return EMPQ_OK;
        }
        buf_cut(out, at);
    }
    f->safe = 0;
    buf_cut(out, at);
    return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
}

int empq_export_line(const Empq__Run *run, const Empq__Prompt *p, const Empq__Result *r,
                     empq_buf *out, empq_error *err)
{
    fmt f;
    if (fmt_init(&f, run) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    int rc = fmt_line(&f, p, r->prompt, r, out, err);
    fmt_free(&f);
    return rc;
}

int empq_export_dead_line(const Empq__Run *run, const Empq__Prompt *p, const Empq__DeadLetter *d,
                          empq_buf *out, empq_error *err)
{
    fmt f;
    if (fmt_init(&f, run) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    int rc = fmt_dead_line(&f, p, d, out, err);
    fmt_free(&f);
    return rc;
}

int empq_export_render(const Empq__Run *run, Empq__Prompt *const *prompts, size_t n_prompts,
                       Empq__Result *const *results, size_t n_results,
                       Empq__DeadLetter *const *dead, size_t n_dead, empq_buf *responses,
                       empq_buf *dead_out, empq_export_stats *st, empq_error *err)
{
    empq_export_stats local = {0};
    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof *st);
    uint64_t total = empq_export_total_jobs(run);
    if (run->spec == NULL || run->spec->n_models == 0)
        return empq_error_set(err, EMPQ_EINVAL, "run %s: the spec has no models", run->id);
    uint32_t per_prompt = (uint32_t)run->spec->n_models * empq_export_samples(run->spec);
    st->total = (size_t)total;

    /* Index results and dead letters by job: job order is output order. */
    const Empq__Result **by_job = calloc(total > 0 ? (size_t)total : 1, sizeof *by_job);
    const Empq__DeadLetter **dead_by_job = calloc(total > 0 ? (size_t)total : 1, sizeof *dead_by_job);
    fmt f;
    if (by_job == NULL || dead_by_job == NULL || fmt_init(&f, run) != EMPQ_OK) {
        free(by_job);
        free(dead_by_job);
        return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory for %" PRIu64 " jobs",
                              run->id, total);
    }
    for (size_t i = 0; i < n_results; i++)
        if (results[i] != NULL && results[i]->job < total && by_job[results[i]->job] == NULL)
            by_job[results[i]->job] = results[i];
    for (size_t i = 0; i < n_dead; i++)
        if (dead[i] != NULL && dead[i]->job < total && dead_by_job[dead[i]->job] == NULL)
            dead_by_job[dead[i]->job] = dead[i];

    int rc = EMPQ_OK;
    for (uint64_t job = 0; job < total && rc == EMPQ_OK; job++) {
        size_t pi = (size_t)(job / per_prompt);
        const Empq__Prompt *p = pi < n_prompts ? prompts[pi] : NULL;
        if (by_job[job] != NULL) {
            rc = fmt_line(&f, p, (uint32_t)pi, by_job[job], responses, err);
            st->lines++;
            if (by_job[job]->has_cache_hit && by_job[job]->cache_hit)
                st->cache_hits++;
        } else if (dead_by_job[job] != NULL) {
            st->dead++;
            if (dead_out != NULL)
                rc = fmt_dead_line(&f, p, dead_by_job[job], dead_out, err);
        } else {
            st->missing++;
        }
    }
    fmt_free(&f);
    free(by_job);
    free(dead_by_job);
    return rc;
}

/* ==================== files written as they grow ==================== */

/* A file written through a temporary one beside it (path.tmp.PID) in
 * pieces of FLUSH_AT bytes, then fsync'd and renamed over path. */
typedef struct sink {
    char *path, *tmp; /* owned */
    int fd;           /* -1 until opened */
    empq_buf buf;     /* lines not written yet */
} sink;

static int sink_init(sink *k, const char *path, empq_error *err)
{
    memset(k, 0, sizeof *k);
    k->fd = -1;
    size_t n = strlen(path) + 32;
    k->path = empq_strdup(path);
    k->tmp = malloc(n);
    if (k->path == NULL || k->tmp == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    snprintf(k->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    return EMPQ_OK;
}

/* Writes what is buffered (opening the temporary file first if need be). */
static int sink_flush(sink *k, empq_error *err)
{
    if (k->fd < 0) {
        k->fd = open(k->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (k->fd < 0)
            return empq_error_set(err, EMPQ_EIO, "%s: %s", k->tmp, strerror(errno));
    }
    for (size_t at = 0; at < k->buf.len;) {
        ssize_t w = write(k->fd, k->buf.data + at, k->buf.len - at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return empq_error_set(err, EMPQ_EIO, "%s: %s", k->tmp, strerror(errno));
        at += (size_t)w;
    }
    buf_cut(&k->buf, 0);
    return EMPQ_OK;
}

static int sink_maybe_flush(sink *k, empq_error *err)
{
    return k->buf.len >= FLUSH_AT ? sink_flush(k, err) : EMPQ_OK;
}

/* Writes the rest, fsyncs and renames the file into place. */
static int sink_commit(sink *k, empq_error *err)
{
    int rc = sink_flush(k, err);
    if (rc != EMPQ_OK)
        return rc;
    int bad = fsync(k->fd) != 0;
    bad = close(k->fd) != 0 || bad;
    k->fd = -1;
    if (bad)
        return empq_error_set(err, EMPQ_EIO, "%s: %s", k->tmp, strerror(errno));
    if (rename(k->tmp, k->path) != 0)
        return empq_error_set(err, EMPQ_EIO, "%s: %s", k->path, strerror(errno));
    free(k->tmp);
    k->tmp = NULL; /* nothing left to remove */
    return EMPQ_OK;
}

/* Frees k; removes its temporary file when it was not committed. */
static void sink_free(sink *k)
{
    if (k->fd >= 0)
        close(k->fd);
    if (k->tmp != NULL)
        unlink(k->tmp);
    free(k->path);
    free(k->tmp);
    empq_buf_free(&k->buf);
    memset(k, 0, sizeof *k);
    k->fd = -1;
}

/* ==================== from the store, in chunks ==================== */

/* Reads a run's prompts, results and dead letters in job order, a chunk of
 * whole prompts at a time: one pipelined HMGET of each hash per chunk, the
 * next chunk asked before the current one is formatted. */
typedef struct reader {
    empq_store *s;
    redisContext *c;
    char keys[3][300];   /* prompts, results, dead letters */
    int n_keys;          /* 2, or 3 when the run has dead letters */
    uint32_t per_prompt;
    size_t n_prompts, chunk; /* prompts per chunk */
    size_t pending;      /* replies asked for and not read yet */
    const char **argv;   /* scratch of one command */
    size_t *lens;
    char (*names)[12];
} reader;

static int reader_init(reader *rd, empq_store *s, const Empq__Run *run, uint32_t per_prompt,
                       int with_dead)
{
    memset(rd, 0, sizeof *rd);
    rd->s = s;
    snprintf(rd->keys[0], sizeof rd->keys[0], "empq:run:%s:prompts", run->id);
    snprintf(rd->keys[1], sizeof rd->keys[1], "empq:run:%s:results", run->id);
    snprintf(rd->keys[2], sizeof rd->keys[2], "empq:run:%s:dead", run->id);
    rd->n_keys = with_dead ? 3 : 2;
    rd->per_prompt = per_prompt;
    rd->n_prompts = run->n_prompts;
    rd->chunk = per_prompt < JOB_CHUNK ? JOB_CHUNK / per_prompt : 1;
    size_t most = rd->chunk * per_prompt + 2;
    rd->argv = calloc(most, sizeof *rd->argv);
    rd->lens = calloc(most, sizeof *rd->lens);
    rd->names = calloc(most, sizeof *rd->names);
    return rd->argv != NULL && rd->lens != NULL && rd->names != NULL ? EMPQ_OK : EMPQ_ENOMEM;
}

/* Reads and drops every reply still pending, so the connection can serve
 * the next caller; a broken one is left for the store to reconnect. */
static void reader_free(reader *rd)
{
    while (rd->pending > 0 && rd->c != NULL && rd->c->err == 0) {
        void *r = NULL;
        if (redisGetReply(rd->c, &r) != REDIS_OK)
            break;
        freeReplyObject(r);
        rd->pending--;
    }
    free(rd->argv);
    free(rd->lens);
    free(rd->names);
    memset(rd, 0, sizeof *rd);
}

static size_t chunk_end(const reader *rd, size_t p0)
{
    return rd->n_prompts - p0 < rd->chunk ? rd->n_prompts : p0 + rd->chunk;
}

/* HMGET key first..first+n-1, appended to the pipeline. */
static int ask(reader *rd, const char *key, uint64_t first, size_t n, empq_error *err)
{
    rd->argv[0] = "HMGET";
    rd->lens[0] = 5;
    rd->argv[1] = key;
    rd->lens[1] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(rd->names[i], sizeof rd->names[i], "%" PRIu64, first + i);
        rd->argv[i + 2] = rd->names[i];
        rd->lens[i + 2] = (size_t)w;
    }
    if (redisAppendCommandArgv(rd->c, (int)(n + 2), rd->argv, rd->lens) != REDIS_OK)
        return empq_error_set(err, EMPQ_ESTORE, "Redis %s: HMGET %s: %s", empq_store_url(rd->s), key,
                              rd->c->errstr);
    rd->pending++;
    return EMPQ_OK;
}

/* Asks for the chunk of prompts starting at p0. */
static int ask_chunk(reader *rd, size_t p0, empq_error *err)
{
    size_t p1 = chunk_end(rd, p0);
    int rc = ask(rd, rd->keys[0], p0, p1 - p0, err);
    for (int k = 1; k < rd->n_keys && rc == EMPQ_OK; k++)
        rc = ask(rd, rd->keys[k], (uint64_t)p0 * rd->per_prompt, (p1 - p0) * rd->per_prompt, err);
    return rc;
}

/* Reads the next reply: an array of n values (strings or nil). */
static int take(reader *rd, const char *key, size_t n, redisReply **out, empq_error *err)
{
    void *v = NULL;
    *out = NULL;
    if (redisGetReply(rd->c, &v) != REDIS_OK || v == NULL)
        return empq_error_set(err, EMPQ_ESTORE, "Redis %s: HMGET %s: %s", empq_store_url(rd->s), key,
                              rd->c->err ? rd->c->errstr : "no reply");
    rd->pending--;
    redisReply *r = v;
    if (r->type == REDIS_REPLY_ERROR || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        int rc = empq_error_set(err, EMPQ_ESTORE, "Redis %s: HMGET %s: %s", empq_store_url(rd->s),
                                key, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return EMPQ_OK;
}

/* Decodes a stored value; NULL when nil, or undecodable (logged). */
static void *decode(const ProtobufCMessageDescriptor *desc, const redisReply *v, const char *key,
                    uint64_t field)
{
    if (v->type != REDIS_REPLY_STRING)
        return NULL;
    void *m = protobuf_c_message_unpack(desc, NULL, v->len, (const uint8_t *)v->str);
    if (m == NULL)
        EMPQ_WARN_LIMITED("undecodable_value", "event=undecodable_value key=%s field=%" PRIu64, key, field);
    return m;
}

/* What one export from the store writes to. */
typedef struct exporter {
    const Empq__Run *run;
    fmt f;
    sink out, dead;
    empq_export_stats *st;
} exporter;

/* Formats the jobs of prompts p0..p1-1 from their replies. */
static int put_chunk(exporter *x, const reader *rd, size_t p0, size_t p1, redisReply *const *rep,
                     empq_error *err)
{
    int rc = EMPQ_OK;
    uint32_t per = rd->per_prompt;
    for (size_t pi = p0; pi < p1 && rc == EMPQ_OK; pi++) {
        /* An undecodable prompt gives null prompt fields, as a missing one. */
        const redisReply *pv = rep[0]->element[pi - p0];
        Empq__Prompt *p = pv->type == REDIS_REPLY_STRING
                              ? empq__prompt__unpack(NULL, pv->len, (const uint8_t *)pv->str)
                              : NULL;
        for (uint32_t k = 0; k < per && rc == EMPQ_OK; k++) {
            size_t i = (pi - p0) * per + k;
            uint64_t job = (uint64_t)pi * per + k;
            Empq__Result *r = decode(&empq__result__descriptor, rep[1]->element[i], rd->keys[1], job);
            if (r != NULL) {
                rc = fmt_line(&x->f, p, (uint32_t)pi, r, &x->out.buf, err);
                x->st->lines++;
                if (r->has_cache_hit && r->cache_hit)
                    x->st->cache_hits++;
                empq__result__free_unpacked(r, NULL);
                if (rc == EMPQ_OK)
                    rc = sink_maybe_flush(&x->out, err);
                continue;
            }
            Empq__DeadLetter *d = rd->n_keys > 2 ? decode(&empq__dead_letter__descriptor,
                                                          rep[2]->element[i], rd->keys[2], job)
                                                 : NULL;
            if (d == NULL) {
                x->st->missing++;
                continue;
            }
            x->st->dead++;
            rc = fmt_dead_line(&x->f, p, d, &x->dead.buf, err);
            empq__dead_letter__free_unpacked(d, NULL);
            if (rc == EMPQ_OK)
                rc = sink_maybe_flush(&x->dead, err);
        }
        if (p != NULL)
            empq__prompt__free_unpacked(p, NULL);
    }
    return rc;
}

/* Reads every chunk and formats it; the lines go to x's sinks. */
static int read_all(exporter *x, reader *rd, empq_error *err)
{
    rd->c = empq_store_redis(rd->s);
    if (rd->c == NULL)
        return empq_error_set(err, EMPQ_ESTORE, "run %s: %s", x->run->id, empq_store_errstr(rd->s));
    int rc = rd->n_prompts > 0 ? ask_chunk(rd, 0, err) : EMPQ_OK;
    for (size_t p0 = 0; p0 < rd->n_prompts && rc == EMPQ_OK;) {
        size_t p1 = chunk_end(rd, p0);
        if (p1 < rd->n_prompts)
            rc = ask_chunk(rd, p1, err);
        redisReply *rep[3] = {NULL, NULL, NULL};
        for (int k = 0; k < rd->n_keys && rc == EMPQ_OK; k++)
            rc = take(rd, rd->keys[k], k == 0 ? p1 - p0 : (p1 - p0) * rd->per_prompt, &rep[k], err);
        if (rc == EMPQ_OK)
            rc = put_chunk(x, rd, p0, p1, rep, err);
        for (int k = 0; k < 3; k++)
            if (rep[k] != NULL)
                freeReplyObject(rep[k]);
        p0 = p1;
    }
    return rc;
}

/* The folder part of path ("." when none); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return empq_strdup(".");
    if (slash == path)
        return empq_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

/* One export of run to path; *broken is set when the connection broke (the
 * caller may try once more). */
static int export_once(empq_store *s, const Empq__Run *run, const char *path,
                       empq_export_stats *st, int *broken, empq_error *err)
{
    exporter x = {.run = run, .st = st};
    reader rd;
    memset(st, 0, sizeof *st);
    memset(&rd, 0, sizeof rd);
    x.out.fd = x.dead.fd = -1;
    *broken = 0;
    uint64_t n_dead = 0;
    char *dir = dir_of(path);
    char *dead_path = NULL;
    int rc = dir != NULL ? EMPQ_OK : empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    if (rc == EMPQ_OK) {
        size_t dl = strlen(dir) + sizeof "/dead.jsonl";
        dead_path = malloc(dl);
        if (dead_path != NULL)
            snprintf(dead_path, dl, "%s/dead.jsonl", dir);
        else
            rc = empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    }
    if (rc == EMPQ_OK && (run->spec == NULL || run->spec->n_models == 0))
        rc = empq_error_set(err, EMPQ_EINVAL, "run %s: the spec has no models", run->id);
    if (rc == EMPQ_OK) {
        rc = empq_store_counts(s, run->id, NULL, &n_dead);
        if (rc != EMPQ_OK)
            rc = empq_error_set(err, rc, "run %s: reading dead letters: %s", run->id,
                                empq_store_errstr(s));
    }
    if (rc == EMPQ_OK && fmt_init(&x.f, run) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    if (rc == EMPQ_OK)
        rc = sink_init(&x.out, path, err);
    if (rc == EMPQ_OK)
        rc = sink_init(&x.dead, dead_path, err);
    if (rc == EMPQ_OK && reader_init(&rd, s, run, x.f.per_prompt, n_dead > 0) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    if (rc == EMPQ_OK) {
        st->total = (size_t)empq_export_total_jobs(run);
        rc = read_all(&x, &rd, err);
        *broken = rc == EMPQ_ESTORE && rd.c != NULL && rd.c->err != 0;
    }
    if (rc == EMPQ_OK)
        rc = sink_flush(&x.out, err); /* the lines are on their way before dead.jsonl */
    /* dead.jsonl first, responses.jsonl last: whoever waits for
     * responses.jsonl (the collector after a restart, a user's script) finds
     * the dead letters of the same export beside it. A dead.jsonl of an
     * earlier export whose dead jobs have since been rerun is replaced (by
     * an empty file when none are dead now), never left stale. */
    struct stat sb;
    if (rc == EMPQ_OK && (st->dead > 0 || stat(dead_path, &sb) == 0))
        rc = sink_commit(&x.dead, err);
    if (rc == EMPQ_OK)
        rc = sink_commit(&x.out, err);
    reader_free(&rd);
    sink_free(&x.out);
    sink_free(&x.dead);
    if (x.f.run != NULL)
        fmt_free(&x.f);
    free(dir);
    free(dead_path);
    return rc;
}

int empq_export_responses(empq_store *s, const char *run_id, const char *path,
                          empq_export_stats *st, empq_error *err)
{
    Empq__Run *run = NULL;
    empq_export_stats local = {0};
    if (st == NULL)
        st = &local;
    int rc = empq_store_run_get(s, run_id, &run);
    if (rc == EMPQ_ENOTFOUND)
        return empq_error_set(err, rc, "no run %s in %s", run_id, empq_store_url(s));
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", run_id, empq_store_errstr(s));
    int broken = 0;
    rc = export_once(s, run, path, st, &broken, err);
    if (rc != EMPQ_OK && broken) /* the store reconnects on the next call */
        rc = export_once(s, run, path, st, &broken, err);
    empq__run__free_unpacked(run, NULL);
    return rc;
}
