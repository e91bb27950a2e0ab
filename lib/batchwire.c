/* batchwire.c: OpenAI Batch API, Anthropic Message Batches and Gemini
 * Batch Mode formats (include/empq/batchwire.h). Bytes only: the transport
 * is the worker's. */
#define _XOPEN_SOURCE 700 /* strptime */
#include "empq/batchwire.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "empq/util.h"

typedef enum { WIRE_NONE = 0, WIRE_OPENAI, WIRE_ANTHROPIC, WIRE_GEMINI } wire_kind;

static wire_kind kind_of(const char *provider)
{
    if (provider == NULL)
        return WIRE_NONE;
    if (strcmp(provider, "openai") == 0)
        return WIRE_OPENAI;
    if (strcmp(provider, "anthropic") == 0)
        return WIRE_ANTHROPIC;
    if (strcmp(provider, "gemini") == 0)
        return WIRE_GEMINI;
    return WIRE_NONE;
}

static int no_batch(const Empq__ModelSpec *m, empq_error *err)
{
    return empq_error_set(err, EMPQ_EINVAL, "model %s: provider %s has no batch mode",
                          m != NULL && m->alias != NULL ? m->alias : "?",
                          m != NULL && m->provider != NULL ? m->provider : "?");
}

int empq_batchwire_supported(const char *provider) { return kind_of(provider) != WIRE_NONE; }

const char *empq_batchwire_state_name(empq_batch_state s)
{
    switch (s) {
    case EMPQ_BATCH_OPEN: return "open";
    case EMPQ_BATCH_CANCELLING: return "cancelling";
    case EMPQ_BATCH_ENDED: return "ended";
    case EMPQ_BATCH_FAILED: return "failed";
    case EMPQ_BATCH_EXPIRED: return "expired";
    case EMPQ_BATCH_CANCELLED: return "cancelled";
    }
    return "unknown";
}

/* ==================== custom ids ==================== */

char *empq_batchwire_custom_id(uint32_t job, uint32_t attempt, char *out, size_t outlen)
{
    snprintf(out, outlen, "j%" PRIu32 "-a%" PRIu32, job, attempt);
    return out;
}

/* A decimal uint32 at *p, moving p past it; 0 when there is none. */
static int read_u32(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint64_t x = 0;
    if (!isdigit((unsigned char)*s))
        return 0;
    for (; isdigit((unsigned char)*s); s++) {
        x = x * 10 + (uint64_t)(*s - '0');
        if (x > UINT32_MAX)
            return 0;
    }
    *out = (uint32_t)x;
    *p = s;
    return 1;
}

int empq_batchwire_parse_custom_id(const char *s, uint32_t *job, uint32_t *attempt)
{
    uint32_t j = 0, a = 0;
    if (s == NULL || *s++ != 'j' || !read_u32(&s, &j) || *s++ != '-' || *s++ != 'a' || !read_u32(&s, &a) ||
        *s != '\0')
        return EMPQ_EPARSE;
    *job = j;
    *attempt = a;
    return EMPQ_OK;
}

/* [A-Za-z0-9_-]{1,64} (Anthropic's rule; OpenAI takes any string). */
static int valid_custom_id(const char *s)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-')
            return 0;
    return n >= 1 && n < EMPQ_BATCHWIRE_ID_MAX;
}

/* A provider id put in a URL path: [A-Za-z0-9_.-]{1,127}. */
static int valid_path_id(const char *s)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++)
        if (!isalnum((unsigned char)s[n]) && strchr("_.-", s[n]) == NULL)
            return 0;
    return n >= 1 && n < 128;
}

/* ==================== endpoints ==================== */

/* The interactive URL minus its path suffix: the API's base. */
static char *base_of(const char *url, const char *suffix)
{
    size_t n = strlen(url), k = strlen(suffix);
    if (n >= k && strcmp(url + n - k, suffix) == 0)
        n -= k;
    char *s = malloc(n + 1);
    if (s != NULL) {
        memcpy(s, url, n);
        s[n] = '\0';
    }
    return s;
}

/* OpenAI's and Anthropic's URL for op under the API's base. */
static int listed_url(wire_kind k, const char *base, empq_batch_op op, const char *id, empq_buf *u)
{
    const char *coll = k == WIRE_OPENAI ? "batches" : "messages/batches";
    switch (op) {
    case EMPQ_BATCH_OP_UPLOAD:
        return empq_buf_printf(u, "%s/files", base);
    case EMPQ_BATCH_OP_CREATE:
        return empq_buf_printf(u, "%s/%s", base, coll);
    case EMPQ_BATCH_OP_GET:
        return empq_buf_printf(u, "%s/%s/%s", base, coll, id);
    case EMPQ_BATCH_OP_LIST:
        return empq_buf_printf(u, "%s/%s?limit=100", base, coll);
    case EMPQ_BATCH_OP_CANCEL:
        return empq_buf_printf(u, "%s/%s/%s/cancel", base, coll, id);
    case EMPQ_BATCH_OP_RESULTS:
        return k == WIRE_OPENAI ? empq_buf_printf(u, "%s/files/%s/content", base, id)
                                : empq_buf_printf(u, "%s/%s/%s/results", base, coll, id);
    }
    return EMPQ_EINVAL;
}

/* Gemini's URL for op from the interactive one,
 * {base}/models/{model}:generateContent: create
 * {base}/models/{model}:batchGenerateContent; get and results (a finished
 * batch holds its inlined responses) {base}/batches/{id}; list
 * {base}/batches?pageSize=100; cancel {base}/batches/{id}:cancel. */
static int gemini_url(const char *url, empq_batch_op op, const char *id, empq_buf *u)
{
    const char *models = NULL;
    for (const char *p = strstr(url, "/models/"); p != NULL; p = strstr(p + 1, "/models/"))
        models = p;
    int n = models != NULL ? (int)(models - url) : (int)strlen(url);
    const char *colon = models != NULL ? strrchr(models, ':') : NULL;
    switch (op) {
    case EMPQ_BATCH_OP_CREATE:
        return colon != NULL ? empq_buf_printf(u, "%.*s:batchGenerateContent", (int)(colon - url), url) : EMPQ_EINVAL;
    case EMPQ_BATCH_OP_GET:
    case EMPQ_BATCH_OP_RESULTS:
        return empq_buf_printf(u, "%.*s/batches/%s", n, url, id);
    case EMPQ_BATCH_OP_LIST:
        return empq_buf_printf(u, "%.*s/batches?pageSize=100", n, url);
    case EMPQ_BATCH_OP_CANCEL:
        return empq_buf_printf(u, "%.*s/batches/%s:cancel", n, url, id);
    case EMPQ_BATCH_OP_UPLOAD:
        break;
    }
    return EMPQ_EINVAL;
}

/* Drops the Content-Type header (a multipart upload or a GET sets its own). */
static void drop_content_type(empq_http_request *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strncmp(r->headers[i], "Content-Type:", 13) == 0)
            free(r->headers[i]);
        else
            r->headers[k++] = r->headers[i];
    }
    for (size_t i = k; i < r->n_headers; i++)
        r->headers[i] = NULL;
    r->n_headers = k;
}

int empq_batchwire_endpoint(const Empq__ModelSpec *m, const char *base_url, const char *api_key, empq_batch_op op,
                            const char *id, empq_http_request *out, empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || out == NULL)
        return no_batch(m, err);
    int needs_id = op == EMPQ_BATCH_OP_GET || op == EMPQ_BATCH_OP_CANCEL || op == EMPQ_BATCH_OP_RESULTS;
    if (needs_id && !valid_path_id(id))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: batch %s needs an id of [A-Za-z0-9_.-], got '%.60s'",
                              m->alias, op == EMPQ_BATCH_OP_RESULTS ? "results" : "call", id != NULL ? id : "");
    if (op == EMPQ_BATCH_OP_UPLOAD && k != WIRE_OPENAI)
        return empq_error_set(err, EMPQ_EINVAL, "model %s: %s batches take no file upload", m->alias, m->provider);
    int rc = empq_provider_endpoint(m, base_url, api_key, out, err);
    if (rc != EMPQ_OK)
        return rc;
    empq_buf u = {0};
    char *base = NULL;
    if (k == WIRE_GEMINI) {
        rc = gemini_url(out->url, op, id, &u);
    } else {
        base = base_of(out->url, k == WIRE_OPENAI ? "/chat/completions" : "/messages");
        rc = base != NULL ? EMPQ_OK : EMPQ_ENOMEM;
    }
    if (base != NULL)
        rc = listed_url(k, base, op, id, &u);
    free(base);
    free(out->url);
    out->url = u.data;
    if (rc == EMPQ_EINVAL) {
        empq_http_request_clear(out);
        return empq_error_set(err, EMPQ_EINVAL, "model %s: no ':generateContent' in the gemini URL", m->alias);
    }
    if (rc != EMPQ_OK || out->url == NULL) {
        empq_http_request_clear(out);
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    }
    int get = op == EMPQ_BATCH_OP_GET || op == EMPQ_BATCH_OP_LIST || op == EMPQ_BATCH_OP_RESULTS;
    out->method = get ? "GET" : "POST";
    if (get || op == EMPQ_BATCH_OP_UPLOAD || op == EMPQ_BATCH_OP_CANCEL)
        drop_content_type(out);
    return EMPQ_OK;
}

/* ==================== request lines and the create body ==================== */

static int dump(json_t *o, const char *tail, char **out, size_t *len, empq_error *err)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    size_t n = strlen(s), t = strlen(tail);
    char *r = realloc(s, n + t + 1);
    if (r == NULL) {
        free(s);
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    }
    memcpy(r + n, tail, t + 1);
    *out = r;
    if (len != NULL)
        *len = n + t;
    return EMPQ_OK;
}

int empq_batchwire_line(const Empq__ModelSpec *m, const char *custom_id, const char *body, size_t body_len,
                        char **line, size_t *len, empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || line == NULL)
        return no_batch(m, err);
    *line = NULL;
    if (!valid_custom_id(custom_id))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: custom_id '%.70s' is not [A-Za-z0-9_-]{1,64}", m->alias,
                              custom_id != NULL ? custom_id : "");
    json_error_t jerr;
    json_t *b = body != NULL ? json_loadb(body, body_len, 0, &jerr) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        return empq_error_set(err, EMPQ_EINVAL, "model %s: a batch request body must be a JSON object", m->alias);
    }
    json_t *o = k == WIRE_OPENAI ? json_pack("{s:s, s:s, s:s, s:o}", "custom_id", custom_id, "method", "POST", "url",
                                             "/v1/chat/completions", "body", b)
                : k == WIRE_ANTHROPIC ? json_pack("{s:s, s:o}", "custom_id", custom_id, "params", b)
                                      : json_pack("{s:o, s:{s:s}}", "request", b, "metadata", "key", custom_id);
    return dump(o, k == WIRE_OPENAI ? "\n" : "", line, len, err);
}

int empq_batchwire_create_body(const Empq__ModelSpec *m, const char *input_file_id, const char *key,
                               const char *window, char *const *requests, size_t n, char **body, size_t *len,
                               empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || body == NULL)
        return no_batch(m, err);
    *body = NULL;
    if (k == WIRE_OPENAI) {
        if (input_file_id == NULL || key == NULL)
            return empq_error_set(err, EMPQ_EINVAL, "model %s: an openai batch needs its input file and key",
                                  m->alias);
        json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s}}", "input_file_id", input_file_id, "endpoint",
                              "/v1/chat/completions", "completion_window", window != NULL ? window : "24h",
                              "metadata", "empq_batch", key);
        return dump(o, "", body, len, err);
    }
    if (requests == NULL || n == 0 || (k == WIRE_GEMINI && key == NULL))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: a %s batch needs at least one request%s", m->alias,
                              m->provider, k == WIRE_GEMINI ? " and its key" : "");
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_error_t jerr;
        json_t *r = json_loads(requests[i], 0, &jerr);
        if (!json_is_object(r) || json_array_append_new(arr, r) != 0) {
            json_decref(r);
            json_decref(arr);
            return empq_error_set(err, EMPQ_EINVAL, "model %s: batch request %zu is not a JSON object", m->alias, i);
        }
    }
    json_t *o = arr == NULL           ? NULL
                : k == WIRE_ANTHROPIC ? json_pack("{s:o}", "requests", arr)
                                      : json_pack("{s:{s:s, s:{s:{s:o}}}}", "batch", "displayName", key, "inputConfig",
                                                  "requests", "requests", arr);
    return dump(o, "", body, len, err);
}

int empq_batchwire_create_frame(const Empq__ModelSpec *m, const char *key, char **head, char **tail, empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || k == WIRE_OPENAI || head == NULL || tail == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "model %s: provider %s has no create body of requests",
                              m != NULL && m->alias != NULL ? m->alias : "?",
                              m != NULL && m->provider != NULL ? m->provider : "?");
    *head = *tail = NULL;
    if (k == WIRE_ANTHROPIC) {
        *head = empq_strdup("{\"requests\":[");
        *tail = empq_strdup("]}");
    } else {
        if (key == NULL)
            return empq_error_set(err, EMPQ_EINVAL, "model %s: a gemini batch needs its key", m->alias);
        /* the body with an empty list (the key escaped as JSON), cut
         * after its '[' */
        char *full = NULL;
        size_t n = 0;
        json_t *o =
            json_pack("{s:{s:s, s:{s:{s:[]}}}}", "batch", "displayName", key, "inputConfig", "requests", "requests");
        int rc = dump(o, "", &full, &n, err);
        if (rc != EMPQ_OK)
            return rc;
        static const char end[] = "]}}}}";
        if (n > sizeof end && strcmp(full + n - (sizeof end - 1), end) == 0) {
            full[n - (sizeof end - 1)] = '\0';
            *head = full;
            *tail = empq_strdup(end);
        } else {
            free(full);
        }
    }
    if (*head == NULL || *tail == NULL) {
        free(*head);
        free(*tail);
        *head = *tail = NULL;
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    }
    return EMPQ_OK;
}

/* ==================== batch objects ==================== */

static void copy_str(char *dst, size_t n, const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static uint32_t count_of(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : 0;
    return x < 0 ? 0 : x > (json_int_t)UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

/* Anthropic times are RFC 3339 ("2024-08-20T18:37:24.100435Z"); 0 when unreadable. */
static int64_t rfc3339(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (!json_is_string(v))
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(json_string_value(v), "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return 0;
    return (int64_t)timegm(&tm);
}

/* Like rfc3339, in milliseconds: the fraction of a second is kept
 * (Anthropic writes microseconds), so batches made in the same second are
 * told apart. */
static int64_t rfc3339_ms(const json_t *v)
{
    int64_t ms = rfc3339(v) * 1000, scale = 100;
    const char *dot = json_is_string(v) ? strchr(json_string_value(v), '.') : NULL;
    for (const char *p = dot != NULL ? dot + 1 : NULL; p != NULL && *p >= '0' && *p <= '9' && scale > 0;
         p++, scale /= 10)
        ms += (*p - '0') * scale;
    return ms;
}

typedef struct {
    const char *word;
    empq_batch_state state;
} status_word;

static const status_word OPENAI_STATES[] = {
    {"validating", EMPQ_BATCH_OPEN},       {"in_progress", EMPQ_BATCH_OPEN}, {"finalizing", EMPQ_BATCH_OPEN},
    {"cancelling", EMPQ_BATCH_CANCELLING}, {"completed", EMPQ_BATCH_ENDED},  {"failed", EMPQ_BATCH_FAILED},
    {"expired", EMPQ_BATCH_EXPIRED},       {"cancelled", EMPQ_BATCH_CANCELLED}, {NULL, EMPQ_BATCH_OPEN},
};
static const status_word ANTHROPIC_STATES[] = {
    {"in_progress", EMPQ_BATCH_OPEN},
    {"canceling", EMPQ_BATCH_CANCELLING},
    {"ended", EMPQ_BATCH_ENDED},
    {NULL, EMPQ_BATCH_OPEN},
};

/* Gemini's batch states (GenerateContentBatch.state, BATCH_STATE_*; the
 * SDKs show them as JOB_STATE_*): the word after the prefix. */
static const status_word GEMINI_STATES[] = {
    {"PENDING", EMPQ_BATCH_OPEN},  {"RUNNING", EMPQ_BATCH_OPEN},        {"SUCCEEDED", EMPQ_BATCH_ENDED},
    {"FAILED", EMPQ_BATCH_FAILED}, {"CANCELLED", EMPQ_BATCH_CANCELLED}, {"EXPIRED", EMPQ_BATCH_EXPIRED},
    {NULL, EMPQ_BATCH_OPEN},
};

/* An int64 of proto JSON: a string of digits or a number; 0 otherwise. */
static uint32_t count_of_i64(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        uint32_t x = 0;
        return read_u32(&s, &x) && *s == '\0' ? x : 0;
    }
    return count_of(o, k);
}

/* A Gemini batch: the long-running Operation {"name": "batches/ID",
 * "metadata": GenerateContentBatch, "done", "error", "response"} that
 * create, get and list return; id is ID without "batches/". */
static int read_gemini(const json_t *o, empq_batch_info *out, empq_error *err)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const json_t *md = json_object_get(o, "metadata");
    if (!json_is_object(o) || name == NULL || strncmp(name, "batches/", 8) != 0 || !json_is_object(md))
        return empq_error_set(err, EMPQ_EPARSE, "batch reply: not a gemini batch operation");
    snprintf(out->id, sizeof out->id, "%s", name + 8);
    if (!valid_path_id(out->id))
        return empq_error_set(err, EMPQ_EPARSE, "batch reply: no valid id");
    copy_str(out->status, sizeof out->status, md, "state");
    const char *w = out->status;
    if (strncmp(w, "BATCH_STATE_", 12) == 0)
        w += 12;
    else if (strncmp(w, "JOB_STATE_", 10) == 0)
        w += 10;
    const status_word *sw = GEMINI_STATES;
    for (; sw->word != NULL && strcmp(sw->word, w) != 0; sw++)
        ;
    if (sw->word == NULL || w == out->status)
        return empq_error_set(err, EMPQ_EPARSE, "batch %s: unknown state '%.30s'", out->id, out->status);
    out->state = sw->state;
    const json_t *st = json_object_get(md, "batchStats");
    out->total = count_of_i64(st, "requestCount");
    out->done_ok = count_of_i64(st, "successfulRequestCount");
    out->done_failed = count_of_i64(st, "failedRequestCount");
    copy_str(out->empq_key, sizeof out->empq_key, md, "displayName");
    out->created_at = rfc3339(json_object_get(md, "createTime"));
    const json_t *e = json_object_get(o, "error");
    if (out->state == EMPQ_BATCH_FAILED)
        snprintf(out->reason, sizeof out->reason, "%s: %s", json_string_value(json_object_get(e, "status")) ?: "FAILED",
                 json_string_value(json_object_get(e, "message")) ?: "the batch failed");
    return EMPQ_OK;
}

static int read_batch(wire_kind k, const json_t *o, empq_batch_info *out, empq_error *err)
{
    memset(out, 0, sizeof *out);
    if (k == WIRE_GEMINI)
        return read_gemini(o, out, err);
    const char *type = json_string_value(json_object_get(o, k == WIRE_OPENAI ? "object" : "type"));
    const char *want = k == WIRE_OPENAI ? "batch" : "message_batch";
    if (!json_is_object(o) || type == NULL || strcmp(type, want) != 0)
        return empq_error_set(err, EMPQ_EPARSE, "batch reply: not a %s object", want);
    copy_str(out->id, sizeof out->id, o, "id");
    copy_str(out->status, sizeof out->status, o, k == WIRE_OPENAI ? "status" : "processing_status");
    if (!valid_path_id(out->id))
        return empq_error_set(err, EMPQ_EPARSE, "batch reply: no valid id");
    const status_word *w = k == WIRE_OPENAI ? OPENAI_STATES : ANTHROPIC_STATES;
    for (; w->word != NULL && strcmp(w->word, out->status) != 0; w++)
        ;
    if (w->word == NULL)
        return empq_error_set(err, EMPQ_EPARSE, "batch %s: unknown status '%.30s'", out->id, out->status);
    out->state = w->state;
    const json_t *rc = json_object_get(o, "request_counts");
    if (k == WIRE_OPENAI) {
        out->total = count_of(rc, "total");
        out->done_ok = count_of(rc, "completed");
        out->done_failed = count_of(rc, "failed");
        copy_str(out->output_file_id, sizeof out->output_file_id, o, "output_file_id");
        copy_str(out->error_file_id, sizeof out->error_file_id, o, "error_file_id");
        copy_str(out->empq_key, sizeof out->empq_key, json_object_get(o, "metadata"), "empq_batch");
        out->created_at = rfc3339(json_object_get(o, "created_at"));
        out->expires_at = rfc3339(json_object_get(o, "expires_at"));
        const json_t *e0 = json_array_get(json_object_get(json_object_get(o, "errors"), "data"), 0);
        if (json_is_object(e0))
            snprintf(out->reason, sizeof out->reason, "%s: %s", json_string_value(json_object_get(e0, "code")) ?: "error",
                     json_string_value(json_object_get(e0, "message")) ?: "");
    } else {
        out->done_ok = count_of(rc, "succeeded");
        out->done_failed = count_of(rc, "errored") + count_of(rc, "canceled") + count_of(rc, "expired");
        out->total = out->done_ok + out->done_failed + count_of(rc, "processing");
        copy_str(out->results_url, sizeof out->results_url, o, "results_url");
        out->created_at = rfc3339(json_object_get(o, "created_at"));
        out->expires_at = rfc3339(json_object_get(o, "expires_at"));
    }
    return EMPQ_OK;
}

static json_t *load(const char *body, size_t len, const char *what, empq_error *err)
{
    json_error_t jerr;
    json_t *o = body != NULL ? json_loadb(body, len, 0, &jerr) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        empq_error_set(err, EMPQ_EPARSE, "%s: not a JSON object", what);
        return NULL;
    }
    return o;
}

int empq_batchwire_parse_batch(const Empq__ModelSpec *m, const char *body, size_t len, empq_batch_info *out,
                               empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || out == NULL)
        return no_batch(m, err);
    json_t *o = load(body, len, "batch reply", err);
    if (o == NULL)
        return EMPQ_EPARSE;
    int rc = read_batch(k, o, out, err);
    json_decref(o);
    return rc;
}

static int taken_id(const char *id, const char *const *taken, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (taken[i] != NULL && strcmp(taken[i], id) == 0)
            return 1;
    return 0;
}

int empq_batchwire_find(const Empq__ModelSpec *m, const char *body, size_t len, const char *key,
                        int64_t created_after, uint32_t n_requests, const char *const *taken, size_t n_taken,
                        empq_batch_info *out, int *has_more, empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || out == NULL)
        return no_batch(m, err);
    json_t *o = load(body, len, "batch list", err);
    if (o == NULL)
        return EMPQ_EPARSE;
    /* Gemini: {"operations": [...], "nextPageToken"}; proto JSON leaves an
     * empty list out */
    json_t *data = json_object_get(o, k == WIRE_GEMINI ? "operations" : "data");
    json_t *none = k == WIRE_GEMINI && data == NULL ? json_array() : NULL;
    if (none != NULL)
        data = none;
    if (!json_is_array(data)) {
        json_decref(o);
        return empq_error_set(err, EMPQ_EPARSE, "batch list: no %s array", k == WIRE_GEMINI ? "operations" : "data");
    }
    if (has_more != NULL) {
        const char *tok = json_string_value(json_object_get(o, "nextPageToken"));
        *has_more = k == WIRE_GEMINI ? tok != NULL && tok[0] != '\0' : json_is_true(json_object_get(o, "has_more"));
    }
    int rc = EMPQ_ENOTFOUND;
    int64_t best_ms = INT64_MAX;
    size_t i;
    json_t *b;
    json_array_foreach(data, i, b)
    {
        empq_batch_info info;
        empq_error ignored = {0};
        if (read_batch(k, b, &info, &ignored) != EMPQ_OK)
            continue;
        if (k != WIRE_ANTHROPIC) {
            if (key != NULL && strcmp(info.empq_key, key) == 0) {
                *out = info;
                rc = EMPQ_OK;
                break;
            }
            continue;
        }
        /* the list is newest first: of the matches, the one created first */
        int64_t ms = rfc3339_ms(json_object_get(b, "created_at"));
        if (info.created_at >= created_after && info.total == n_requests && !taken_id(info.id, taken, n_taken) &&
            ms < best_ms) {
            *out = info;
            best_ms = ms;
            rc = EMPQ_OK;
        }
    }
    json_decref(none);
    json_decref(o);
    if (rc == EMPQ_ENOTFOUND)
        empq_error_set(err, EMPQ_ENOTFOUND, "no %s batch in the list matches", m->provider);
    return rc;
}

/* ==================== result lines ==================== */

static void init_result(empq_provider_result *out, empq_provider_class cls, const char *reason)
{
    memset(out, 0, sizeof *out);
    Empq__Generation g = EMPQ__GENERATION__INIT;
    out->gen = g;
    out->cls = cls;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
}

/* Reads an embedded reply (status, JSON body) as the interactive path would. */
static int embedded(const Empq__ModelSpec *m, long status, const json_t *body, const char *request_id,
                    const char *api_key, uint64_t now_ms, empq_provider_result *out)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    empq_http_reply r = {0};
    r.status = status;
    r.body = text;
    r.body_len = text != NULL ? strlen(text) : 0;
    r.request_id = request_id;
    int rc = empq_provider_parse(m, &r, api_key, now_ms, out);
    free(text);
    return rc;
}

int empq_batchwire_results_lines(const Empq__ModelSpec *m, const char *body, size_t len, char **lines, size_t *n_bytes,
                                 empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || lines == NULL || n_bytes == NULL)
        return no_batch(m, err);
    *lines = NULL;
    *n_bytes = 0;
    if (k != WIRE_GEMINI)
        return EMPQ_OK;
    json_t *o = load(body, len, "batch results", err);
    if (o == NULL)
        return EMPQ_EPARSE;
    /* GenerateContentBatchOutput: in the operation's metadata.output (what
     * the SDKs read) or, once done, its response */
    const json_t *out = json_object_get(json_object_get(o, "metadata"), "output");
    if (!json_is_object(out))
        out = json_object_get(o, "response");
    if (json_object_get(out, "responsesFile") != NULL) {
        json_decref(o);
        return empq_error_set(err, EMPQ_EPARSE, "batch results: in a responses file, not inline");
    }
    const json_t *arr = json_object_get(json_object_get(out, "inlinedResponses"), "inlinedResponses");
    if (arr != NULL && !json_is_array(arr)) {
        json_decref(o);
        return empq_error_set(err, EMPQ_EPARSE, "batch results: inlinedResponses is not a list");
    }
    empq_buf b = {0};
    int rc = EMPQ_OK;
    size_t i;
    const json_t *r;
    json_array_foreach(arr, i, r)
    {
        char *one = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        rc = one != NULL ? empq_buf_append(&b, one, strlen(one)) : EMPQ_ENOMEM;
        if (rc == EMPQ_OK)
            rc = empq_buf_append(&b, "\n", 1);
        free(one);
        if (rc != EMPQ_OK)
            break;
    }
    json_decref(o);
    if (rc != EMPQ_OK) {
        empq_buf_free(&b);
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    }
    if (b.data == NULL && empq_buf_append(&b, "", 0) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    *lines = b.data;
    *n_bytes = b.len;
    return EMPQ_OK;
}

/* google.rpc.Code -> the HTTP status the interactive API answers with. */
static long grpc_http(json_int_t code)
{
    static const long map[] = {200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401};
    return code >= 0 && code < (json_int_t)(sizeof map / sizeof map[0]) ? map[code] : 500;
}

static const char *grpc_name(json_int_t code)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"};
    return code >= 0 && code < (json_int_t)(sizeof names / sizeof names[0]) ? names[code] : "UNKNOWN";
}

/* One inlined response {"response": GenerateContentResponse | "error":
 * google.rpc.Status, "metadata": {"key"}}: the response as the interactive
 * reply; the error as the interactive API's error of the same code. */
static int gemini_result(const Empq__ModelSpec *m, const json_t *o, const char *cid, const char *api_key,
                         uint64_t now_ms, empq_provider_result *out, empq_error *err)
{
    const json_t *resp = json_object_get(o, "response"), *e = json_object_get(o, "error");
    if (json_is_object(resp))
        return embedded(m, 200, resp, NULL, api_key, now_ms, out);
    if (!json_is_object(e))
        return empq_error_set(err, EMPQ_EPARSE, "batch result %s: neither response nor error", cid);
    json_int_t code = json_integer_value(json_object_get(e, "code"));
    long status = grpc_http(code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    json_t *body = json_pack("{s:{s:I, s:s, s:s}}", "error", "code", (json_int_t)status, "message",
                             msg != NULL ? msg : "", "status", grpc_name(code));
    if (body == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "batchwire: out of memory");
    int rc = embedded(m, status, body, NULL, api_key, now_ms, out);
    json_decref(body);
    return rc;
}

int empq_batchwire_results_inline(const Empq__ModelSpec *m)
{
    return m != NULL && kind_of(m->provider) == WIRE_GEMINI;
}

void empq_batchwire_unanswered(const empq_batch_info *info, empq_provider_result *out)
{
    empq_batch_state s = info != NULL ? info->state : EMPQ_BATCH_ENDED;
    init_result(out, EMPQ_PROVIDER_RETRYABLE,
                s == EMPQ_BATCH_EXPIRED                                   ? "batch_expired"
                : s == EMPQ_BATCH_CANCELLED || s == EMPQ_BATCH_CANCELLING ? "batch_cancelled"
                                                                          : "batch_no_result");
}

int empq_batchwire_result(const Empq__ModelSpec *m, const char *line, size_t len, const char *api_key, uint64_t now_ms,
                          char *custom_id, empq_provider_result *out, empq_error *err)
{
    wire_kind k = m != NULL ? kind_of(m->provider) : WIRE_NONE;
    if (k == WIRE_NONE || out == NULL || custom_id == NULL)
        return no_batch(m, err);
    init_result(out, EMPQ_PROVIDER_PERMANENT, "malformed batch result line");
    custom_id[0] = '\0';
    json_t *o = load(line, len, "batch result line", err);
    if (o == NULL)
        return EMPQ_EPARSE;
    const char *cid = json_string_value(k == WIRE_GEMINI ? json_object_get(json_object_get(o, "metadata"), "key")
                                                         : json_object_get(o, "custom_id"));
    if (!valid_custom_id(cid)) {
        json_decref(o);
        return empq_error_set(err, EMPQ_EPARSE, "batch result line: no valid custom_id");
    }
    snprintf(custom_id, EMPQ_BATCHWIRE_ID_MAX, "%s", cid);
    int rc = EMPQ_OK;
    if (k == WIRE_GEMINI) {
        rc = gemini_result(m, o, cid, api_key, now_ms, out, err);
    } else if (k == WIRE_OPENAI) {
        const json_t *resp = json_object_get(o, "response");
        const json_t *e = json_object_get(o, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        if (json_is_object(resp) && json_is_integer(json_object_get(resp, "status_code"))) {
            rc = embedded(m, (long)json_integer_value(json_object_get(resp, "status_code")),
                          json_object_get(resp, "body"), json_string_value(json_object_get(resp, "request_id")),
                          api_key, now_ms, out);
        } else if (code != NULL && strcmp(code, "batch_expired") == 0) {
            init_result(out, EMPQ_PROVIDER_RETRYABLE, "batch_expired");
        } else if (code != NULL && strcmp(code, "batch_cancelled") == 0) {
            init_result(out, EMPQ_PROVIDER_RETRYABLE, "batch_cancelled");
        } else if (json_is_object(e)) {
            char reason[EMPQ_PROVIDER_REASON_MAX];
            snprintf(reason, sizeof reason, "batch_error: %s: %s", code != NULL ? code : "error",
                     json_string_value(json_object_get(e, "message")) ?: "");
            empq_provider_redact(reason, api_key);
            init_result(out, EMPQ_PROVIDER_RETRYABLE, reason);
        } else {
            rc = empq_error_set(err, EMPQ_EPARSE, "batch result %s: neither response nor error", cid);
        }
    } else {
        const json_t *res = json_object_get(o, "result");
        const char *type = json_string_value(json_object_get(res, "type"));
        if (type == NULL) {
            rc = empq_error_set(err, EMPQ_EPARSE, "batch result %s: no result type", cid);
        } else if (strcmp(type, "succeeded") == 0) {
            rc = embedded(m, 200, json_object_get(res, "message"), NULL, api_key, now_ms, out);
        } else if (strcmp(type, "expired") == 0) {
            init_result(out, EMPQ_PROVIDER_RETRYABLE, "batch_expired");
        } else if (strcmp(type, "canceled") == 0) {
            init_result(out, EMPQ_PROVIDER_RETRYABLE, "batch_cancelled");
        } else if (strcmp(type, "errored") == 0) {
            /* {"type":"error","error":{"type":"invalid_request_error",...}}: an
             * invalid request fails again; anything else (api_error,
             * overloaded_error) may pass later */
            const json_t *eo = json_object_get(res, "error");
            const char *et = json_string_value(json_object_get(json_object_get(eo, "error"), "type"));
            long status = et != NULL && strcmp(et, "invalid_request_error") == 0 ? 400 : 500;
            rc = embedded(m, status, eo, NULL, api_key, now_ms, out);
        } else {
            rc = empq_error_set(err, EMPQ_EPARSE, "batch result %s: unknown result type '%.30s'", cid, type);
        }
    }
    json_decref(o);
    if (rc == EMPQ_EPARSE)
        init_result(out, EMPQ_PROVIDER_PERMANENT, "malformed batch result line");
    return rc;
}

/* ==================== cost ==================== */

void empq_batchwire_prices(const Empq__ModelSpec *m, double *in, double *out)
{
    const Empq__ModelPrices *p = m != NULL ? m->prices : NULL;
    *in = *out = 0.0;
    if (p == NULL)
        return;
    *in = p->has_batch_input_per_mtok ? p->batch_input_per_mtok : 0.5 * p->input_per_mtok;
    *out = p->has_batch_output_per_mtok ? p->batch_output_per_mtok : 0.5 * p->output_per_mtok;
}

int empq_batchwire_mode(const Empq__ModelSpec *m)
{
    return m != NULL && m->mode != NULL && strcmp(m->mode, "batch") == 0 && empq_batchwire_supported(m->provider);
}

double empq_batchwire_cost(const Empq__ModelSpec *m, uint64_t input_tokens, uint64_t output_tokens)
{
    double in = 0, out = 0;
    empq_batchwire_prices(m, &in, &out);
    return ((double)input_tokens * in + (double)output_tokens * out) / 1e6;
}

void empq_model_prices(const Empq__ModelSpec *m, double *in, double *out, double *cached_in)
{
    const Empq__ModelPrices *p = m != NULL ? m->prices : NULL;
    *in = *out = *cached_in = 0.0;
    if (p == NULL)
        return;
    if (empq_batchwire_mode(m)) {
        empq_batchwire_prices(m, in, out);
        *cached_in = *in;
        return;
    }
    *in = p->has_input_per_mtok ? p->input_per_mtok : 0.0;
    *out = p->has_output_per_mtok ? p->output_per_mtok : 0.0;
    *cached_in = p->has_cached_input_per_mtok ? p->cached_input_per_mtok : *in;
}
