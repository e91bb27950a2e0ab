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

/* Frees the generation's strings and re-initialises it; keeps the verdict. */
static void drop_gen(empq_provider_result *r)
{
    free(r->gen.text);
    free(r->gen.finish_reason);
    free(r->gen.model_reported);
    free(r->gen.system_fingerprint);
    free(r->gen.request_id);
    free(r->gen.thinking);
    free(r->gen.safety_ratings);
    Empq__Generation init = EMPQ__GENERATION__INIT;
    r->gen = init;
}

void empq_provider_result_clear(empq_provider_result *r)
{
    if (r == NULL)
        return;
    drop_gen(r);
    memset(r, 0, sizeof *r);
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
    void (*parse_ok)(const Empq__ModelSpec *m, const json_t *root, empq_provider_result *out);
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

static json_t *messages_array(const char *system, const char *system_role, const char *user, empq_error *err)
{
    json_t *msgs = json_array();
    if (msgs == NULL)
        goto nomem;
    if (has_text(system)) {
        json_t *sys = json_pack("{s:s, s:s}", "role", has_text(system_role) ? system_role : "system", "content",
                                system);
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
    const Empq__GenParams *p = m->params;
    int bad = 0;
    if (has_text(m->model))
        bad |= json_object_set_new(o, "model", json_string(m->model));
    json_t *msgs = messages_array(system, p != NULL ? p->system_role : NULL, user, err);
    if (msgs == NULL) {
        json_decref(o);
        return NULL;
    }
    bad |= json_object_set_new(o, "messages", msgs);
    bad |= add_params(o, p, sample, "temperature", "top_p", "max_tokens", "seed", "stop");
    if (p != NULL && p->has_max_completion_tokens)
        bad |= json_object_set_new(o, "max_completion_tokens", json_integer(p->max_completion_tokens));
    if (p != NULL && has_text(p->reasoning_effort))
        bad |= json_object_set_new(o, "reasoning_effort", json_string(p->reasoning_effort));
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

/* ---- what a 2xx reply without answer text means ---- */

/* The verdict on a reply that gave no answer text: finish is the
 * provider's stop reason, length = 1 when it is its length stop,
 * thought = 1 when reasoning/thinking was spent or returned, blocked names
 * the provider's block reason (NULL: none). Reasons, and why some are
 * retried (docs/spec.md, "What counts as an answer"):
 *   blocked:REASON              the provider's filter: permanent
 *   refusal                     a refusal with no words: permanent
 *   reasoning_exhausted_budget  the length stop came inside the reasoning:
 *                               the same budget ends the same way: permanent
 *   length_before_text          a length stop before any text: permanent
 *   thinking_only               only thinking, normal stop: retried (a new
 *                               sample may answer)
 *   empty_reply                 no text at all: retried */
static void no_answer(empq_provider_result *out, int length, int thought, int refused, const char *blocked)
{
    if (blocked != NULL)
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "blocked:%s", blocked);
    else if (refused)
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "refusal");
    else if (length && thought)
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "reasoning_exhausted_budget");
    else if (length)
        set_verdict(out, EMPQ_PROVIDER_PERMANENT, "length_before_text");
    else if (thought)
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "thinking_only");
    else
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "empty_reply");
}

/* Sets the verdict of a reply whose fields are read: success when the
 * answer text is set, else no_answer's. */
static void answer_verdict(empq_provider_result *out, int rc, int length, int thought, int refused,
                           const char *blocked)
{
    if (rc != EMPQ_OK)
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "out of memory reading the reply");
    else if (has_text(out->gen.text))
        set_verdict(out, EMPQ_PROVIDER_SUCCESS, "%s", "");
    else
        no_answer(out, length, thought, refused, blocked);
}

static int keep_thinking(const Empq__ModelSpec *m) { return m->has_keep_thinking && m->keep_thinking; }

static void openai_parse_ok(const Empq__ModelSpec *m, const json_t *root, empq_provider_result *out)
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
    /* vLLM's reasoning parsers: message.reasoning_content (older) or reasoning */
    const char *thinking = jstr(msg, "reasoning_content");
    if (thinking == NULL)
        thinking = jstr(msg, "reasoning");
    int rc = EMPQ_OK;
    if (has_text(text)) {
        rc |= set_str(&out->gen.text, text);
        if (has_text(refusal))
            out->gen.has_refusal = out->gen.refusal = 1;
    } else if (has_text(refusal)) { /* a refusal in words: the study's data */
        out->gen.has_refusal = out->gen.refusal = 1;
        rc |= set_str(&out->gen.text, refusal);
    }
    if (has_text(thinking) && keep_thinking(m))
        rc |= set_str(&out->gen.thinking, thinking);
    rc |= set_str(&out->gen.finish_reason, finish);
    rc |= set_str(&out->gen.model_reported, jstr(root, "model"));
    rc |= set_str(&out->gen.system_fingerprint, jstr(root, "system_fingerprint"));
    const json_t *usage = json_object_get(root, "usage");
    out->gen.has_tokens_in = juint(usage, "prompt_tokens", &out->gen.tokens_in);
    /* completion_tokens counts the reasoning tokens already */
    out->gen.has_tokens_out = juint(usage, "completion_tokens", &out->gen.tokens_out);
    out->gen.has_reasoning_tokens =
        juint(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens", &out->gen.reasoning_tokens);
    out->gen.has_cached_tokens =
        juint(json_object_get(usage, "prompt_tokens_details"), "cached_tokens", &out->gen.cached_tokens);
    int thought = has_text(thinking) || (out->gen.has_reasoning_tokens && out->gen.reasoning_tokens > 0);
    int filtered = finish != NULL && strcmp(finish, "content_filter") == 0;
    answer_verdict(out, rc, finish != NULL && strcmp(finish, "length") == 0, thought, 0,
                   filtered ? "content_filter" : NULL);
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

/* The name of an error that holds for every job of the model (quota,
 * billing, permission), or NULL: OpenAI error.code/type insufficient_quota
 * (and billing_*), Anthropic error.type billing_error, permission_error
 * and its "credit balance is too low" 400, Google error.status
 * PERMISSION_DENIED and a 429 whose QuotaFailure names a per-day quota;
 * and HTTP 402, 403 whatever the body says. A 401 is not among them: keys
 * live on the workers, and another worker's key may be right (the job
 * dies, the model goes on). */
static const char *fatal_error(const json_t *root, long status)
{
    static const char *const names[] = {"insufficient_quota", "billing_not_active", "billing_hard_limit_reached",
                                        "access_terminated", "billing_error", "permission_error",
                                        "PERMISSION_DENIED"};
    const json_t *e = json_object_get(root, "error");
    const char *cand[] = {jstr(e, "code"), jstr(e, "type"), jstr(e, "status")};
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
        for (size_t j = 0; cand[i] != NULL && j < sizeof names / sizeof names[0]; j++)
            if (strcmp(cand[i], names[j]) == 0)
                return names[j];
    /* Anthropic answers an empty prepaid balance with a 400
     * invalid_request_error "Your credit balance is too low ..." */
    const char *msg = jstr(e, "message");
    if (msg != NULL && strstr(msg, "credit balance is too low") != NULL)
        return "credit_balance_too_low";
    /* Google: a daily quota (QuotaFailure quotaId ...PerDay...) comes back
     * in hours, not seconds */
    size_t i, k;
    const json_t *d, *v;
    json_array_foreach(json_object_get(e, "details"), i, d) {
        const char *type = jstr(d, "@type");
        if (type == NULL || strstr(type, "google.rpc.QuotaFailure") == NULL)
            continue;
        json_array_foreach(json_object_get(d, "violations"), k, v) {
            const char *q = jstr(v, "quotaId");
            if (q != NULL && strstr(q, "PerDay") != NULL)
                return "daily_quota_exhausted";
        }
    }
    if (status == 402)
        return "payment_required";
    if (status == 403)
        return "forbidden";
    return NULL;
}

/* Google's RetryInfo in an error body:
 * {"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}.
 * Returns 1 and *ms when there is one. */
static int google_retry_delay(const json_t *root, uint32_t *ms)
{
    const json_t *details = json_object_get(json_object_get(root, "error"), "details");
    size_t i;
    const json_t *d;
    json_array_foreach(details, i, d) {
        const char *type = jstr(d, "@type");
        const char *delay = jstr(d, "retryDelay");
        if (type == NULL || delay == NULL || strstr(type, "google.rpc.RetryInfo") == NULL)
            continue;
        char *end = NULL;
        errno = 0;
        double sec = strtod(delay, &end);
        if (errno != 0 || end == delay || strcmp(end, "s") != 0 || !isfinite(sec) || sec < 0)
            return 0;
        double v = ceil(sec * 1000.0);
        *ms = v >= (double)RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : (uint32_t)v;
        return 1;
    }
    return 0;
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
    const Empq__GenParams *p = m->params;
    if (!bad) {
        bad |= json_object_set_new(o, "model", json_string(has_text(m->model) ? m->model : ""));
        int max = p != NULL && p->has_max_tokens ? p->max_tokens : ANTHROPIC_MAX_TOKENS;
        bad |= json_object_set_new(o, "max_tokens", json_integer(max));
        if (has_text(system))
            bad |= json_object_set_new(o, "system", json_string(system));
        bad |= json_object_set_new(o, "messages", msgs);
        msgs = NULL;
        /* no seed in this API */
        bad |= add_params(o, p, sample, "temperature", "top_p", NULL, NULL, "stop_sequences");
        if (p != NULL && p->has_thinking_budget)
            bad |= json_object_set_new(o, "thinking", json_pack("{s:s, s:i}", "type", "enabled", "budget_tokens",
                                                                (int)p->thinking_budget));
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

/* Concatenates the member `field` of the parts of a content array whose
 * "type" is `type` (NULL: any type) and whose "thought" flag is `thought`
 * (Anthropic blocks {type,text} / {type,thinking}, Gemini parts {text,
 * thought}). Sets *any when such a part exists; NULL when none has text or
 * memory runs out (*oom set). */
static char *join_parts(const json_t *arr, const char *type, const char *field, int thought, int *any, int *oom)
{
    empq_buf b = {0};
    size_t i;
    const json_t *part;
    json_array_foreach(arr, i, part) {
        const char *t = jstr(part, field);
        const char *ty = jstr(part, "type");
        if (type != NULL && (ty == NULL || strcmp(ty, type) != 0))
            continue;
        if (type == NULL && json_is_true(json_object_get(part, "thought")) != thought)
            continue;
        if (t == NULL)
            continue;
        *any = 1;
        if (empq_buf_append(&b, t, strlen(t)) != EMPQ_OK) {
            empq_buf_free(&b);
            *oom = 1;
            return NULL;
        }
    }
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

static void anthropic_parse_ok(const Empq__ModelSpec *m, const json_t *root, empq_provider_result *out)
{
    const json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "malformed reply: no content array");
        return;
    }
    const char *stop = jstr(root, "stop_reason");
    int refused = stop != NULL && strcmp(stop, "refusal") == 0;
    int any_text = 0, any_thinking = 0, oom = 0, rc = EMPQ_OK;
    out->gen.text = join_parts(content, "text", "text", 0, &any_text, &oom);
    if (out->gen.text == NULL && !oom && is_judge(m)) /* a judge's forced tool call: its input, as JSON text */
        out->gen.text = tool_input(content);
    char *thinking = join_parts(content, "thinking", "thinking", 0, &any_thinking, &oom);
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *ty = jstr(part, "type");
        any_thinking |= ty != NULL && strcmp(ty, "redacted_thinking") == 0;
    }
    if (keep_thinking(m) && has_text(thinking))
        out->gen.thinking = thinking;
    else
        free(thinking);
    if (refused && has_text(out->gen.text))
        out->gen.has_refusal = out->gen.refusal = 1;
    rc |= set_str(&out->gen.finish_reason, stop);
    rc |= set_str(&out->gen.model_reported, jstr(root, "model"));
    const json_t *usage = json_object_get(root, "usage");
    /* input_tokens leaves out the cache reads and writes: the three are the input */
    uint32_t in = 0, cread = 0, cwrite = 0;
    out->gen.has_tokens_in = juint(usage, "input_tokens", &in);
    int has_read = juint(usage, "cache_read_input_tokens", &cread);
    juint(usage, "cache_creation_input_tokens", &cwrite);
    uint64_t total = (uint64_t)in + cread + cwrite;
    out->gen.tokens_in = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
    out->gen.has_cached_tokens = has_read;
    out->gen.cached_tokens = cread;
    /* output_tokens counts the thinking tokens already */
    out->gen.has_tokens_out = juint(usage, "output_tokens", &out->gen.tokens_out);
    answer_verdict(out, oom ? EMPQ_ENOMEM : rc, stop != NULL && strcmp(stop, "max_tokens") == 0, any_thinking,
                   refused, NULL);
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

/* generationConfig.thinkingConfig and the top-level safetySettings. */
static int gemini_thinking_safety(json_t *o, json_t *gc, const Empq__GenParams *p)
{
    if (p == NULL)
        return 0;
    int bad = 0;
    if (p->has_thinking_budget || p->has_include_thoughts) {
        json_t *tc = json_object();
        if (tc != NULL && p->has_thinking_budget)
            bad |= json_object_set_new(tc, "thinkingBudget", json_integer(p->thinking_budget));
        if (tc != NULL && p->has_include_thoughts)
            bad |= json_object_set_new(tc, "includeThoughts", json_boolean(p->include_thoughts));
        bad |= json_object_set_new(gc, "thinkingConfig", tc);
    }
    if (p->n_safety_settings > 0) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < p->n_safety_settings; i++)
            bad |= json_array_append_new(a, json_pack("{s:s, s:s}", "category", p->safety_settings[i]->category,
                                                      "threshold", p->safety_settings[i]->threshold));
        bad |= json_object_set_new(o, "safetySettings", a);
    }
    return bad;
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
    if (!bad)
        bad |= gemini_thinking_safety(o, gc, m->params);
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
    static const char *const blocked[] = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION",
                                          "IMAGE_SAFETY", "LANGUAGE", "OTHER"};
    for (size_t i = 0; r != NULL && i < sizeof blocked / sizeof blocked[0]; i++)
        if (strcmp(r, blocked[i]) == 0)
            return 1;
    return 0;
}

/* Compact JSON of v into *dst (nothing when v is NULL). */
static int set_json(char **dst, const json_t *v)
{
    if (v == NULL)
        return EMPQ_OK;
    *dst = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return *dst != NULL ? EMPQ_OK : EMPQ_ENOMEM;
}

static void gemini_parse_ok(const Empq__ModelSpec *m, const json_t *root, empq_provider_result *out)
{
    int rc = set_str(&out->gen.model_reported, jstr(root, "modelVersion"));
    if (!has_text(out->gen.request_id))
        rc |= set_str(&out->gen.request_id, jstr(root, "responseId"));
    const json_t *usage = json_object_get(root, "usageMetadata");
    uint32_t cand = 0, thoughts = 0;
    out->gen.has_tokens_in = juint(usage, "promptTokenCount", &out->gen.tokens_in);
    int has_cand = juint(usage, "candidatesTokenCount", &cand);
    out->gen.has_reasoning_tokens = juint(usage, "thoughtsTokenCount", &thoughts);
    out->gen.reasoning_tokens = thoughts;
    /* thinking is billed as output: candidatesTokenCount leaves it out */
    out->gen.has_tokens_out = has_cand || out->gen.has_reasoning_tokens;
    out->gen.tokens_out = (uint64_t)cand + thoughts > UINT32_MAX ? UINT32_MAX : cand + thoughts;
    out->gen.has_cached_tokens = juint(usage, "cachedContentTokenCount", &out->gen.cached_tokens);

    const json_t *c0 = json_array_get(json_object_get(root, "candidates"), 0);
    const json_t *feedback = json_object_get(root, "promptFeedback");
    if (!json_is_object(c0)) {
        const char *block = jstr(feedback, "blockReason");
        if (block != NULL) {
            rc |= set_json(&out->gen.safety_ratings, feedback);
            set_verdict(out, EMPQ_PROVIDER_PERMANENT, "blocked:%s", block);
        } else {
            set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "malformed reply: no candidates[0]");
        }
        return;
    }
    const char *finish = jstr(c0, "finishReason");
    const json_t *parts = json_object_get(json_object_get(c0, "content"), "parts");
    int any_text = 0, any_thought = 0, oom = 0;
    out->gen.text = join_parts(parts, NULL, "text", 0, &any_text, &oom);
    char *thinking = join_parts(parts, NULL, "text", 1, &any_thought, &oom);
    if (keep_thinking(m) && has_text(thinking))
        out->gen.thinking = thinking;
    else
        free(thinking);
    rc |= set_str(&out->gen.finish_reason, finish);
    rc |= set_json(&out->gen.safety_ratings, json_object_get(c0, "safetyRatings"));
    answer_verdict(out, oom ? EMPQ_ENOMEM : rc, finish != NULL && strcmp(finish, "MAX_TOKENS") == 0,
                   any_thought || thoughts > 0, 0, gemini_blocked(finish) ? finish : NULL);
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

/* ==================== extra_body ==================== */

/* Adds what extra holds to body, recursively: an object meets an object and
 * merges, anything else that body has already is a conflict (path, at most
 * len bytes, names it). 0 merged, 1 conflict, -1 out of memory. */
static int merge_into(json_t *body, json_t *extra, char *path, size_t len)
{
    const char *k;
    json_t *v;
    json_object_foreach(extra, k, v) {
        json_t *have = json_object_get(body, k);
        size_t used = strlen(path);
        snprintf(path + used, len - used, "%s%s", used > 0 ? "." : "", k);
        if (have == NULL) {
            if (json_object_set(body, k, v) != 0)
                return -1;
        } else if (json_is_object(have) && json_is_object(v)) {
            int rc = merge_into(have, v, path, len);
            if (rc != 0)
                return rc;
        } else {
            return 1;
        }
        path[used] = '\0';
    }
    return 0;
}

static int merge_extra(const Empq__ModelSpec *m, json_t *body, empq_error *err)
{
    if (!has_text(m->extra_body))
        return EMPQ_OK;
    json_error_t jerr;
    json_t *extra = json_loads(m->extra_body, 0, &jerr);
    if (!json_is_object(extra)) {
        json_decref(extra);
        return empq_error_set(err, EMPQ_EINVAL, "model %s: extra_body is not a JSON object", m->alias);
    }
    char path[200] = "";
    int rc = merge_into(body, extra, path, sizeof path);
    json_decref(extra);
    if (rc < 0)
        return empq_error_set(err, EMPQ_ENOMEM, "model %s: out of memory merging extra_body", m->alias);
    if (rc > 0)
        return empq_error_set(err, EMPQ_EINVAL,
                              "%s': provider %s: empq sets this field (from the model's params or messages); set "
                              "it there, not in extra_body",
                              path, m->provider);
    return EMPQ_OK;
}

/* ==================== public entry points ==================== */

int empq_provider_check_extra(const Empq__ModelSpec *m, empq_error *err)
{
    char *body = NULL;
    /* a system message too, so its field counts as one empq sets */
    int rc = empq_provider_body(m, "system", "user", 0, &body, NULL, err);
    free(body);
    return rc;
}

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
    int rc = merge_extra(m, o, err);
    if (rc != EMPQ_OK) {
        json_decref(o);
        return rc;
    }
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
    out->model_fatal = 0;

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
        else if (set_str(&out->gen.request_id, reply->request_id) != EMPQ_OK)
            set_verdict(out, EMPQ_PROVIDER_RETRYABLE, "out of memory reading the reply");
        else
            a->parse_ok(m, root, out);
    } else {
        int blocked = 0;
        const char *msg = json_is_object(root) ? a->error_message(root, &blocked) : NULL;
        const char *fatal = fatal_error(root, reply->status);
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
        if (out->retry_after_ms == 0 && by_status == EMPQ_PROVIDER_RETRYABLE)
            google_retry_delay(root, &out->retry_after_ms);
        if (blocked && by_status == EMPQ_PROVIDER_PERMANENT)
            set_verdict(out, EMPQ_PROVIDER_PERMANENT, "blocked:content_policy: HTTP %ld: %s", reply->status,
                        msg != NULL ? clean : "");
        else if (fatal != NULL)
            set_verdict(out, EMPQ_PROVIDER_PERMANENT, "%s: HTTP %ld%s%s", fatal, reply->status,
                        msg != NULL && clean[0] != '\0' ? ": " : "", msg != NULL ? clean : "");
        else if (msg != NULL && clean[0] != '\0')
            set_verdict(out, by_status, "HTTP %ld: %s", reply->status, clean);
        else
            set_verdict(out, by_status, "HTTP %ld", reply->status);
        out->model_fatal = fatal != NULL && !blocked;
    }
    json_decref(root);
    empq_provider_redact(out->reason, api_key);
    /* a 2xx reply that is no answer keeps its usage and ids for the dead
     * letter and the cost; nothing of it is an answer */
    if (out->cls != EMPQ_PROVIDER_SUCCESS && (by_status != EMPQ_PROVIDER_SUCCESS || reply->truncated))
        drop_gen(out);
    if (out->cls != EMPQ_PROVIDER_SUCCESS) {
        free(out->gen.text);
        out->gen.text = NULL;
    }
    return EMPQ_OK;
}
