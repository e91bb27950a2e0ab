/* provider.c: request builders and reply readers of the LLM providers.
 *
 * One adapter per wire format, in a table: endpoint (URL and headers, once
 * per model), body (JSON per request), and the reader of a 2xx body and of
 * an error body. Everything shared (status classes, Retry-After, redaction,
 * reasons) lives outside the adapters. */
#include "empq/provider.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/util.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
#define MESSAGE_MAX 140 /* provider error text kept in a reason */

/* ==================== small helpers ==================== */

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* base without trailing slashes + path; NULL on ENOMEM. */
static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return str_printf("%.*s%s", (int)n, base, path);
}

static int add_header(empq_http_request *r, char *h, empq_error *err)
{
    if (h == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory building headers");
    if (r->n_headers >= EMPQ_HTTP_MAX_HEADERS) {
        free(h);
        return empq_error_set(err, EMPQ_EINVAL, "provider: too many headers");
    }
    r->headers[r->n_headers++] = h;
    return EMPQ_OK;
}

static int has_text(const char *s) { return s != NULL && s[0] != '\0'; }

void empq_http_request_clear(empq_http_request *r)
{
    if (r == NULL)
        return;
    free(r->url);
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void empq_provider_result_clear(empq_provider_result *r)
{
    if (r == NULL)
        return;
    free(r->gen.text);
    free(r->gen.finish_reason);
    free(r->gen.model_reported);
    memset(r, 0, sizeof *r);
    Empq__Generation init = EMPQ__GENERATION__INIT;
    r->gen = init;
}

/* Frees the generation of a result that is not a success; keeps the verdict. */
static void drop_gen(empq_provider_result *r)
{
    free(r->gen.text);
    free(r->gen.finish_reason);
    free(r->gen.model_reported);
    Empq__Generation init = EMPQ__GENERATION__INIT;
    r->gen = init;
}

const char *empq_provider_class_name(empq_provider_class c)
{
    switch (c) {
    case EMPQ_PROVIDER_SUCCESS: return "success";
    case EMPQ_PROVIDER_RETRYABLE: return "retryable";
    case EMPQ_PROVIDER_PERMANENT: return "permanent";
    }
    return "unknown";
}

/* JSON helpers: a string member or NULL; a non-negative integer member. */
static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int juint(const json_t *o, const char *k, uint32_t *out)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    json_int_t x = json_integer_value(v);
    *out = x > (json_int_t)UINT32_MAX ? UINT32_MAX : (uint32_t)x;
    return 1;
}

static int set_str(char **dst, const char *s)
{
    if (s == NULL)
        return EMPQ_OK;
    *dst = empq_strdup(s);
    return *dst != NULL ? EMPQ_OK : EMPQ_ENOMEM;
}

/* ==================== redaction, excerpts, Retry-After ==================== */

void empq_provider_redact(char *s, const char *key)
{
    if (s == NULL || key == NULL)
        return;
    size_t klen = strlen(key);
    if (klen < 4)
        return;
    char *w = s;
    const char *r = s;
    while (*r != '\0') {
        if (*r == key[0] && strncmp(r, key, klen) == 0) {
            memcpy(w, "***", 3);
            w += 3;
            r += klen;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

char *empq_provider_excerpt(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    size_t klen = key != NULL ? strlen(key) : 0;
    if (klen < 4)
        klen = 0;
    size_t w = 0, i = 0;
    while (body != NULL && i < len && w + 1 < outlen) {
        /* matched against the whole body, so a key cut by the end of the
         * excerpt is still replaced as a whole */
        if (klen > 0 && i + klen <= len && memcmp(body + i, key, klen) == 0) {
            if (w + 3 + 1 > outlen)
                break;
            memcpy(out + w, "***", 3);
            w += 3;
            i += klen;
            continue;
        }
        unsigned char c = (unsigned char)body[i++];
        out[w++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    /* drop a UTF-8 sequence cut at the end */
    if (w > 0 && i < len) {
        size_t j = w;
        while (j > 0 && ((unsigned char)out[j - 1] & 0xC0) == 0x80)
            j--;
        if (j > 0 && ((unsigned char)out[j - 1] & 0x80) != 0) {
            unsigned char lead = (unsigned char)out[j - 1];
            size_t need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
            if (w - (j - 1) < need)
                w = j - 1;
        }
    }
    out[w] = '\0';
    return out;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

#define RETRY_AFTER_CAP_MS (24u * 3600u * 1000u)

int empq_retry_after_parse(const char *value, uint64_t now_ms, uint32_t *ms)
{
    if (value == NULL || ms == NULL)
        return EMPQ_EPARSE;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)value[0])) {
        char *end;
        errno = 0;
        double s = strtod(value, &end);
        while (*end == ' ' || *end == '\t')
            end++;
        if (errno != 0 || *end != '\0' || !isfinite(s) || s < 0)
            return EMPQ_EPARSE;
        double v = s * 1000.0;
        *ms = v >= (double)RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : (uint32_t)ceil(v);
        return EMPQ_OK;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *comma = strchr(value, ',');
    if (comma == NULL)
        return EMPQ_EPARSE;
    int day, year, hh, mm, ss, used = 0;
    char mon[4] = {0}, zone[4] = {0};
    if (sscanf(comma + 1, " %2d %3c %4d %2d:%2d:%2d %3c%n", &day, mon, &year, &hh, &mm, &ss, zone, &used) != 7)
        return EMPQ_EPARSE;
    const char *mp = strstr(months, mon);
    if (mp == NULL || (mp - months) % 3 != 0 || strcmp(zone, "GMT") != 0 || day < 1 || day > 31 ||
        hh > 23 || mm > 59 || ss > 60 || year < 1970)
        return EMPQ_EPARSE;
    unsigned month = (unsigned)((mp - months) / 3 + 1);
    int64_t t = days_from_civil(year, month, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    int64_t delta = t * 1000 - (int64_t)now_ms;
    if (delta <= 0)
        *ms = 0;
    else
        *ms = delta >= (int64_t)RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : (uint32_t)delta;
    return EMPQ_OK;
}

empq_provider_class empq_provider_classify_status(long status)
{
    if (status >= 200 && status < 300)
        return EMPQ_PROVIDER_SUCCESS;
    if (status == 0 || status == 408 || status == 409 || status == 425 || status == 429 ||
        (status >= 500 && status < 600))
        return EMPQ_PROVIDER_RETRYABLE;
    return EMPQ_PROVIDER_PERMANENT;
}

/* ==================== adapters ==================== */

typedef struct adapter {
    const char *name;
    int (*endpoint)(const Empq__ModelSpec *m, const char *base, const char *key, empq_http_request *out,
                    empq_error *err);
    /* the body object; NULL on ENOMEM or bad UTF-8 (err set) */
    json_t *(*body)(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                    empq_error *err);
    /* reads a 2xx body into out (cls, gen, reason) */
    void (*parse_ok)(const json_t *root, empq_provider_result *out);
    /* the message of an error body (NULL when none); *blocked = 1 when the
     * provider says the content was blocked by its policy */
    const char *(*error_message)(const json_t *root, int *blocked);
} adapter;

static void set_verdict(empq_provider_result *out, empq_provider_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_verdict(empq_provider_result *out, empq_provider_class cls, const char *fmt, ...)
{
    out->cls = cls;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
}

/* ---- OpenAI chat completions (openai, openai-compatible, azure-openai) ---- */

static int openai_endpoint_common(const Empq__ModelSpec *m, const char *base, const char *path,
                                  const char *key, const char *auth_name, const char *auth_prefix, empq_http_request *out,
                                  empq_error *err)
{
    out->method = "POST";
    out->url = join_url(base, path);
    if (out->url == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
    int rc = add_header(out, empq_strdup("Content-Type: application/json"), err);
    if (rc == EMPQ_OK && has_text(key))
        rc = add_header(out, str_printf("%s: %s%s", auth_name, auth_prefix, key), err);
    (void)m;
    return rc;
}

static int openai_endpoint(const Empq__ModelSpec *m, const char *base, const char *key,
                           empq_http_request *out, empq_error *err)
{
    if (!has_text(base))
        base = "https://api.openai.com/v1";
    return openai_endpoint_common(m, base, "/chat/completions", key, "Authorization", "Bearer ", out, err);
}

static int compat_endpoint(const Empq__ModelSpec *m, const char *base, const char *key,
                           empq_http_request *out, empq_error *err)
{
    if (!has_text(base))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: provider openai-compatible needs base_url", m->alias);
    return openai_endpoint_common(m, base, "/chat/completions", key, "Authorization", "Bearer ", out, err);
}

/* Azure OpenAI: {base}/openai/deployments/{model}/chat/completions?api-version=V,
 * key in the api-key header. model is the deployment name. */
static int azure_endpoint(const Empq__ModelSpec *m, const char *base, const char *key,
                          empq_http_request *out, empq_error *err)
{
    if (!has_text(base))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: provider azure-openai needs base_url", m->alias);
    if (!has_text(m->model))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: provider azure-openai needs model (the deployment)", m->alias);
    const char *ver = has_text(m->api_version) ? m->api_version : "2024-10-21";
    char *path = str_printf("/openai/deployments/%s/chat/completions?api-version=%s", m->model, ver);
    if (path == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
    int rc = openai_endpoint_common(m, base, path, key, "api-key", "", out, err);
    free(path);
    return rc;
}

static json_t *messages_array(const char *system, const char *user, empq_error *err)
{
    json_t *msgs = json_array();
    if (msgs == NULL)
        goto nomem;
    if (has_text(system)) {
        json_t *sys = json_pack("{s:s, s:s}", "role", "system", "content", system);
        if (sys == NULL || json_array_append_new(msgs, sys) != 0)
            goto bad;
    }
    json_t *u = json_pack("{s:s, s:s}", "role", "user", "content", user);
    if (u == NULL || json_array_append_new(msgs, u) != 0)
        goto bad;
    return msgs;
bad:
    json_decref(msgs);
    empq_error_set(err, EMPQ_EINVAL, "provider: a message is not valid UTF-8");
    return NULL;
nomem:
    empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
    return NULL;
}

/* Adds the set generation parameters under the given names (NULL: skip). */
static int add_params(json_t *o, const Empq__GenParams *p, uint32_t sample, const char *temperature,
                      const char *top_p, const char *max_tokens, const char *seed, const char *stop)
{
    if (p == NULL)
        return 0;
    int bad = 0;
    if (p->has_temperature && temperature != NULL)
        bad |= json_object_set_new(o, temperature, json_real(p->temperature));
    if (p->has_top_p && top_p != NULL)
        bad |= json_object_set_new(o, top_p, json_real(p->top_p));
    if (p->has_max_tokens && max_tokens != NULL)
        bad |= json_object_set_new(o, max_tokens, json_integer(p->max_tokens));
    if (p->has_seed && seed != NULL)
        bad |= json_object_set_new(o, seed, json_integer((json_int_t)(p->seed + (int64_t)sample)));
    if (p->n_stop > 0 && stop != NULL) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < p->n_stop; i++)
            bad |= json_array_append_new(a, json_string(p->stop[i]));
        bad |= json_object_set_new(o, stop, a);
    }
    return bad;
}

/* Judges (ModelSpec.output "judge", include/empq/judge.h): the verdict's
 * JSON schema, in the shape each provider's structured output takes: OpenAI
 * response_format json_schema (strict), Gemini responseMimeType
 * application/json with a responseSchema (OpenAPI types in capitals),
 * Anthropic a forced call of the tool JUDGE_TOOL with the schema as its
 * input_schema (the reply's tool_use input becomes the text). The strict
 * reading of the text (empq_judge_check) stays the last word. */
#define JUDGE_TOOL "judge_verdict"
static json_t *judge_schema(int gemini)
{
    const char *obj = gemini ? "OBJECT" : "object", *str = gemini ? "STRING" : "string";
    json_t *s = json_pack("{s:s, s:{s:{s:s, s:[s,s,s]}, s:{s:s}}, s:[s,s]}", "type", obj, "properties", "label",
                          "type", str, "enum", "Good", "Okay", "Bad", "reason", "type", str, "required", "label",
                          "reason");
    if (s != NULL && !gemini && json_object_set_new(s, "additionalProperties", json_false()) != 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

static int is_judge(const Empq__ModelSpec *m)
{
    return m->output != NULL && strcmp(m->output, "judge") == 0;
}

static json_t *openai_body(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                           empq_error *err)
{
    json_t *o = json_object();
    if (o == NULL) {
        empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
        return NULL;
    }
    int bad = 0;
    if (has_text(m->model))
        bad |= json_object_set_new(o, "model", json_string(m->model));
    json_t *msgs = messages_array(system, user, err);
    if (msgs == NULL) {
        json_decref(o);
        return NULL;
    }
    bad |= json_object_set_new(o, "messages", msgs);
    bad |= add_params(o, m->params, sample, "temperature", "top_p", "max_tokens", "seed", "stop");
    if (!bad && is_judge(m))
        bad |= json_object_set_new(o, "response_format",
                                   json_pack("{s:s, s:{s:s, s:b, s:o}}", "type", "json_schema", "json_schema", "name",
                                             "judge_verdict", "strict", 1, "schema", judge_schema(0)));
    if (bad) {
        json_decref(o);
        empq_error_set(err, EMPQ_EINVAL, "model %s: a parameter or stop string is not valid", m->alias);
        return NULL;
    }
    return o;
}

static void openai_parse_ok(const json_t *root, empq_provider_result *out)
{
    const json_t *choices = json_object_get(root, "choices");
    const json_t *c0 = json_array_get(choices, 0);
    const json_t *msg = json_object_get(c0, "message");
    if (!json_is_object(msg)) {
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "malformed reply: no choices[0].message");
        return;
    }
    const json_t *content = json_object_get(msg, "content");
    if (content != NULL && !json_is_string(content) && !json_is_null(content)) {
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "malformed reply: message.content is not a string");
        return;
    }
    const char *text = json_string_value(content);
    const char *refusal = jstr(msg, "refusal");
    const char *finish = jstr(c0, "finish_reason");
    if (!has_text(text) && !has_text(refusal) && finish != NULL && strcmp(finish, "content_filter") == 0) {
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "content refusal: finish_reason content_filter, no text");
        return;
    }
    int rc = EMPQ_OK;
    if (has_text(refusal) && !has_text(text)) {
        out->gen.has_refusal = 1;
        out->gen.refusal = 1;
        rc |= set_str(&out->gen.text, refusal);
    } else {
        rc |= set_str(&out->gen.text, text != NULL ? text : "");
        if (has_text(refusal)) {
            out->gen.has_refusal = 1;
            out->gen.refusal = 1;
        }
    }
    rc |= set_str(&out->gen.finish_reason, finish);
    rc |= set_str(&out->gen.model_reported, jstr(root, "model"));
    const json_t *usage = json_object_get(root, "usage");
    out->gen.has_tokens_in = juint(usage, "prompt_tokens", &out->gen.tokens_in);
    out->gen.has_tokens_out = juint(usage, "completion_tokens", &out->gen.tokens_out);
    if (rc != EMPQ_OK)
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "out of memory reading the reply");
    else
        set_verdict(out, EMPQ_PROVIDER_SUCCESS, "%s", "");
}

static int is_content_code(const char *s)
{
    return s != NULL && (strcmp(s, "content_filter") == 0 || strcmp(s, "content_policy_violation") == 0 ||
                         strcmp(s, "ResponsibleAIPolicyViolation") == 0);
}

/* {"error":{"message","type","code"}}, or what compatible servers send:
 * {"error":"text"}, {"message":"text"}, {"detail":"text"}. */
static const char *openai_error_message(const json_t *root, int *blocked)
{
    const json_t *e = json_object_get(root, "error");
    if (json_is_object(e)) {
        *blocked = is_content_code(jstr(e, "code")) || is_content_code(jstr(e, "type"));
        const char *msg = jstr(e, "message");
        return msg != NULL ? msg : jstr(e, "code");
    }
    if (json_is_string(e))
        return json_string_value(e);
    const char *msg = jstr(root, "message");
    return msg != NULL ? msg : jstr(root, "detail");
}

/* ---- Anthropic Messages ---- */

#define ANTHROPIC_VERSION "2023-06-01"
#define ANTHROPIC_MAX_TOKENS 1024 /* max_tokens is required by the API */

static int anthropic_endpoint(const Empq__ModelSpec *m, const char *base, const char *key,
                              empq_http_request *out, empq_error *err)
{
    if (!has_text(base))
        base = "https://api.anthropic.com/v1";
    out->method = "POST";
    out->url = join_url(base, "/messages");
    if (out->url == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
    int rc = add_header(out, empq_strdup("Content-Type: application/json"), err);
    if (rc == EMPQ_OK)
        rc = add_header(out, str_printf("anthropic-version: %s", has_text(m->api_version) ? m->api_version : ANTHROPIC_VERSION),
                        err);
    if (rc == EMPQ_OK && has_text(key))
        rc = add_header(out, str_printf("x-api-key: %s", key), err);
    return rc;
}

static json_t *anthropic_body(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                              empq_error *err)
{
    json_t *o = json_object();
    json_t *msgs = json_array();
    json_t *u = json_pack("{s:s, s:s}", "role", "user", "content", user);
    int bad = o == NULL || msgs == NULL || u == NULL || json_array_append_new(msgs, u) != 0;
    if (!bad) {
        bad |= json_object_set_new(o, "model", json_string(has_text(m->model) ? m->model : ""));
        int max = m->params != NULL && m->params->has_max_tokens ? m->params->max_tokens : ANTHROPIC_MAX_TOKENS;
        bad |= json_object_set_new(o, "max_tokens", json_integer(max));
        if (has_text(system))
            bad |= json_object_set_new(o, "system", json_string(system));
        bad |= json_object_set_new(o, "messages", msgs);
        msgs = NULL;
        /* no seed in this API */
        bad |= add_params(o, m->params, sample, "temperature", "top_p", NULL, NULL, "stop_sequences");
        if (!bad && is_judge(m)) /* a forced call of one tool whose input is the verdict */
            bad |= json_object_set_new(o, "tools",
                                       json_pack("[{s:s, s:s, s:o}]", "name", JUDGE_TOOL, "description",
                                                 "Record the rating of the response.", "input_schema",
                                                 judge_schema(0))) |
                   json_object_set_new(o, "tool_choice", json_pack("{s:s, s:s}", "type", "tool", "name", JUDGE_TOOL));
    }
    json_decref(msgs);
    if (bad) {
        json_decref(o);
        empq_error_set(err, EMPQ_EINVAL, "model %s: a message, parameter or stop string is not valid", m->alias);
        return NULL;
    }
    return o;
}

/* Concatenates the text of the "text" parts of a content array (Anthropic
 * blocks {type,text}, Gemini parts {text}). NULL when there is none. */
static char *join_text(const json_t *arr, int need_type)
{
    empq_buf b = {0};
    size_t i;
    const json_t *part;
    int any = 0;
    json_array_foreach(arr, i, part) {
        const char *type = jstr(part, "type");
        const char *t = jstr(part, "text");
        if (t == NULL || (need_type && (type == NULL || strcmp(type, "text") != 0)))
            continue;
        if (empq_buf_append(&b, t, strlen(t)) != EMPQ_OK) {
            empq_buf_free(&b);
            return NULL;
        }
        any = 1;
    }
    if (!any)
        return NULL;
    return b.data;
}

/* The input of the JUDGE_TOOL tool_use block of content, as compact JSON
 * (caller frees), or NULL when there is none. */
static char *tool_input(const json_t *content)
{
    size_t i;
    const json_t *blk;
    json_array_foreach(content, i, blk) {
        const char *type = jstr(blk, "type"), *name = jstr(blk, "name");
        if (type != NULL && strcmp(type, "tool_use") == 0 && name != NULL && strcmp(name, JUDGE_TOOL) == 0)
            return json_dumps(json_object_get(blk, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
    }
    return NULL;
}

static void anthropic_parse_ok(const json_t *root, empq_provider_result *out)
{
    const json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "malformed reply: no content array");
        return;
    }
    const char *stop = jstr(root, "stop_reason");
    int refused = stop != NULL && strcmp(stop, "refusal") == 0;
    char *text = join_text(content, 1);
    if (text == NULL) /* a judge's forced tool call: its input, as JSON text */
        text = tool_input(content);
    if (text == NULL && refused) {
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "content refusal: stop_reason refusal, no text");
        return;
    }
    out->gen.text = text != NULL ? text : empq_strdup("");
    if (refused) {
        out->gen.has_refusal = 1;
        out->gen.refusal = 1;
    }
    int rc = set_str(&out->gen.finish_reason, stop);
    rc |= set_str(&out->gen.model_reported, jstr(root, "model"));
    const json_t *usage = json_object_get(root, "usage");
    out->gen.has_tokens_in = juint(usage, "input_tokens", &out->gen.tokens_in);
    out->gen.has_tokens_out = juint(usage, "output_tokens", &out->gen.tokens_out);
    if (rc != EMPQ_OK || out->gen.text == NULL)
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "out of memory reading the reply");
    else
        set_verdict(out, EMPQ_PROVIDER_SUCCESS, "%s", "");
}

/* ---- Google Gemini generateContent ---- */

static int gemini_endpoint(const Empq__ModelSpec *m, const char *base, const char *key,
                           empq_http_request *out, empq_error *err)
{
    if (!has_text(m->model))
        return empq_error_set(err, EMPQ_EINVAL, "model %s: provider gemini needs model", m->alias);
    if (!has_text(base))
        base = "https://generativelanguage.googleapis.com/v1beta";
    const char *name = strncmp(m->model, "models/", 7) == 0 ? m->model + 7 : m->model;
    char *path = str_printf("/models/%s:generateContent", name);
    if (path == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
    out->method = "POST";
    out->url = join_url(base, path);
    free(path);
    if (out->url == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "provider: out of memory");
    int rc = add_header(out, empq_strdup("Content-Type: application/json"), err);
    if (rc == EMPQ_OK && has_text(key))
        rc = add_header(out, str_printf("x-goog-api-key: %s", key), err);
    return rc;
}

static json_t *gemini_body(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                           empq_error *err)
{
    json_t *o = json_object();
    int bad = o == NULL;
    if (!bad && has_text(system))
        bad |= json_object_set_new(o, "systemInstruction", json_pack("{s:[{s:s}]}", "parts", "text", system));
    if (!bad)
        bad |= json_object_set_new(o, "contents",
                                   json_pack("[{s:s, s:[{s:s}]}]", "role", "user", "parts", "text", user));
    json_t *gc = json_object();
    bad |= gc == NULL;
    if (!bad)
        bad |= add_params(gc, m->params, sample, "temperature", "topP", "maxOutputTokens", "seed", "stopSequences");
    if (!bad && is_judge(m)) {
        bad |= json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        bad |= json_object_set_new(gc, "responseSchema", judge_schema(1));
    }
    if (!bad && json_object_size(gc) > 0) {
        bad |= json_object_set_new(o, "generationConfig", gc);
        gc = NULL;
    }
    json_decref(gc);
    if (bad) {
        json_decref(o);
        empq_error_set(err, EMPQ_EINVAL, "model %s: a message, parameter or stop string is not valid", m->alias);
        return NULL;
    }
    return o;
}

static int gemini_blocked(const char *r)
{
    static const char *const blocked[] = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"};
    for (size_t i = 0; r != NULL && i < sizeof blocked / sizeof blocked[0]; i++)
        if (strcmp(r, blocked[i]) == 0)
            return 1;
    return 0;
}

static void gemini_parse_ok(const json_t *root, empq_provider_result *out)
{
    const json_t *c0 = json_array_get(json_object_get(root, "candidates"), 0);
    if (!json_is_object(c0)) {
        const char *block = jstr(json_object_get(root, "promptFeedback"), "blockReason");
        if (block != NULL)
            set_verdict(out, EMPQ_PROVIDER_PERMANENT, "content refusal: prompt blocked (%s)", block);
        else
            set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "malformed reply: no candidates[0]");
        return;
    }
    const char *finish = jstr(c0, "finishReason");
    char *text = join_text(json_object_get(json_object_get(c0, "content"), "parts"), 0);
    if (text == NULL && gemini_blocked(finish)) {
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "content refusal: finishReason %s, no text", finish);
        return;
    }
    out->gen.text = text != NULL ? text : empq_strdup("");
    int rc = set_str(&out->gen.finish_reason, finish);
    rc |= set_str(&out->gen.model_reported, jstr(root, "modelVersion"));
    const json_t *usage = json_object_get(root, "usageMetadata");
    out->gen.has_tokens_in = juint(usage, "promptTokenCount", &out->gen.tokens_in);
    out->gen.has_tokens_out = juint(usage, "candidatesTokenCount", &out->gen.tokens_out);
    if (rc != EMPQ_OK || out->gen.text == NULL)
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "out of memory reading the reply");
    else
        set_verdict(out, EMPQ_PROVIDER_SUCCESS, "%s", "");
}

/* Anthropic {"type":"error","error":{"type","message"}} and Google
 * {"error":{"code","message","status"}} share the OpenAI reader. */
static const adapter adapters[] = {
    {"openai", openai_endpoint, openai_body, openai_parse_ok, openai_error_message},
    {"openai-compatible", compat_endpoint, openai_body, openai_parse_ok, openai_error_message},
    {"azure-openai", azure_endpoint, openai_body, openai_parse_ok, openai_error_message},
    {"anthropic", anthropic_endpoint, anthropic_body, anthropic_parse_ok, openai_error_message},
    {"gemini", gemini_endpoint, gemini_body, gemini_parse_ok, openai_error_message},
};

static const adapter *find_adapter(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof adapters / sizeof adapters[0]; i++)
        if (strcmp(adapters[i].name, name) == 0)
            return &adapters[i];
    return NULL;
}

static int unsupported(const Empq__ModelSpec *m, empq_error *err)
{
    if (m == NULL || m->provider == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "provider: no model spec");
    if (strcmp(m->provider, "human") == 0)
        return empq_error_set(err, EMPQ_EINVAL, "model %s: provider human has no backend", m->alias);
    return empq_error_set(err, EMPQ_EINVAL, "model %s: unknown provider %s", m->alias, m->provider);
}

/* ==================== public entry points ==================== */

int empq_provider_supported(const char *provider) { return find_adapter(provider) != NULL; }

int empq_provider_endpoint(const Empq__ModelSpec *m, const char *base_url, const char *api_key,
                           empq_http_request *out, empq_error *err)
{
    const adapter *a = m != NULL ? find_adapter(m->provider) : NULL;
    if (a == NULL)
        return unsupported(m, err);
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "provider: no request to fill");
    int rc = a->endpoint(m, base_url != NULL ? base_url : m->base_url, api_key, out, err);
    if (rc != EMPQ_OK) {
        empq_http_request_clear(out);
        return rc;
    }
    return EMPQ_OK;
}

int empq_provider_body(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                       char **body, size_t *len, empq_error *err)
{
    const adapter *a = m != NULL ? find_adapter(m->provider) : NULL;
    if (a == NULL)
        return unsupported(m, err);
    if (user == NULL || body == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "model %s: no user message", m->alias);
    json_t *o = a->body(m, system, user, sample, err);
    if (o == NULL)
        return err != NULL ? err->code : EMPQ_EINVAL;
    char *s = json_dumps(o, JSON_FLAGS);
    json_decref(o);
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "model %s: out of memory writing the body", m->alias);
    *body = s;
    if (len != NULL)
        *len = strlen(s);
    return EMPQ_OK;
}

int empq_provider_request(const Empq__ModelSpec *m, const char *base_url, const char *system,
                          const char *user, uint32_t sample, const char *api_key,
                          empq_http_request *out, empq_error *err)
{
    int rc = empq_provider_endpoint(m, base_url, api_key, out, err);
    if (rc != EMPQ_OK)
        return rc;
    rc = empq_provider_body(m, system, user, sample, &out->body, &out->body_len, err);
    if (rc != EMPQ_OK)
        empq_http_request_clear(out);
    return rc;
}

int empq_provider_parse(const Empq__ModelSpec *m, const empq_http_reply *reply, const char *api_key,
                        uint64_t now_ms, empq_provider_result *out)
{
    if (out == NULL)
        return EMPQ_EINVAL;
    memset(out, 0, sizeof *out);
    Empq__Generation init = EMPQ__GENERATION__INIT;
    out->gen = init;
    const adapter *a = m != NULL ? find_adapter(m->provider) : NULL;
    if (a == NULL || reply == NULL) {
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "provider %s not supported", m != NULL && m->provider ? m->provider : "?");
        return EMPQ_EINVAL;
    }
    out->status = reply->status;

    uint32_t ra = 0;
    if (reply->retry_after_ms != NULL && isdigit((unsigned char)reply->retry_after_ms[0])) {
        unsigned long v = strtoul(reply->retry_after_ms, NULL, 10);
        out->retry_after_ms = v > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : (uint32_t)v;
    } else if (reply->retry_after != NULL && empq_retry_after_parse(reply->retry_after, now_ms, &ra) == EMPQ_OK) {
        out->retry_after_ms = ra;
    }

    if (reply->status == 0) {
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "no reply: %s",
                    reply->transport_error != NULL ? reply->transport_error : "transfer failed");
        empq_provider_redact(out->reason, api_key);
        return EMPQ_OK;
    }

    if (reply->too_large) {
        /* Whatever the status: max_tokens bounds a completion far below the
         * cap, so this is no completion, and the same request would get it
         * again (and be paid again). */
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "HTTP %ld: reply_too_large (more than %zu bytes)", reply->status,
                    reply->body_len);
        return EMPQ_OK;
    }

    json_error_t jerr;
    json_t *root = NULL;
    if (reply->body != NULL && reply->body_len > 0 && !reply->truncated)
        root = json_loadb(reply->body, reply->body_len, JSON_REJECT_DUPLICATES, &jerr);
    empq_provider_class by_status = empq_provider_classify_status(reply->status);

    if (by_status == EMPQ_PROVIDER_SUCCESS) {
        if (reply->truncated)
            set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "HTTP %ld: reply cut (%zu bytes)", reply->status, reply->body_len);
        else if (!json_is_object(root))
            set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "HTTP %ld: malformed reply: %s", reply->status,
                        root == NULL ? (reply->body_len == 0 ? "empty body" : jerr.text) : "not a JSON object");
        else
            a->parse_ok(root, out);
    } else {
        int blocked = 0;
        const char *msg = json_is_object(root) ? a->error_message(root, &blocked) : NULL;
        char clean[MESSAGE_MAX + 8];
        if (msg != NULL) {
            /* redact over the whole message first, then cut */
            char *copy = empq_strdup(msg);
            if (copy != NULL) {
                empq_provider_redact(copy, api_key);
                empq_provider_excerpt(copy, strlen(copy), NULL, clean, MESSAGE_MAX);
                free(copy);
            } else {
                clean[0] = '\0';
            }
        }
        if (blocked && by_status == EMPQ_PROVIDER_PERMANENT)
            set_verdict(out, EMPQ_PROVIDER_PERMANENT, "content refusal: HTTP %ld: %s", reply->status,
                        msg != NULL ? clean : "");
        else if (msg != NULL && clean[0] != '\0')
            set_verdict(out, by_status, "HTTP %ld: %s", reply->status, clean);
        else
            set_verdict(out, by_status, "HTTP %ld", reply->status);
    }
    json_decref(root);
    empq_provider_redact(out->reason, api_key);
    if (out->cls != EMPQ_PROVIDER_SUCCESS)
        drop_gen(out);
    return EMPQ_OK;
}
