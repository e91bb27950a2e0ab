/* openai.c: the OpenAI chat-completions format. See openai.h. */
#include "openai.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/error.h"
#include "style.h"

#define MAX_CHOICES 128
#define MAX_STOPS 4

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

int fakellm_openai_error(fakellm_reply *out, unsigned status, const char *message, const char *type,
                         const char *param, const char *code)
{
    json_t *root = json_pack("{s:{s:o,s:s,s:o,s:o}}", "error", "message",
                             json_stringn(message, strlen(message)), "type",
                             type ? type : "invalid_request_error", "param", string_or_null(param),
                             "code", string_or_null(code));
    if (root == NULL)
        return EMPQ_ENOMEM;
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL)
        return EMPQ_ENOMEM;
    int rc = fakellm_reply_set(out, status, text, strlen(text));
    free(text);
    return rc;
}

/* A 400 invalid_request_error with a formatted message. */
static int bad_request(fakellm_reply *out, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad_request(fakellm_reply *out, const char *param, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fakellm_openai_error(out, 400, msg, NULL, param, code);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: break;
    }
    return "null";
}

/* ------------------------------------------------------------------------ */
/* Request                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct request {
    const char *model;
    fakellm_msg *msgs;
    size_t n_msgs;
    char **owned;      /* contents built from parts, freed with the request */
    size_t n_owned;
    long long max_tokens; /* 0 = no limit */
    long long n;
    const char *stops[MAX_STOPS];
    size_t n_stops;
} request;

static void request_free(request *r)
{
    for (size_t i = 0; i < r->n_owned; i++)
        free(r->owned[i]);
    free(r->owned);
    free(r->msgs);
}

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

/* Content as a string: a string, null (""), or an array of parts whose
 * "text" members are joined with newlines. Returns NULL on a wrong type
 * (*rc EMPQ_EPARSE) or out of memory (*rc EMPQ_ENOMEM). */
static const char *content_text(request *r, json_t *content, int *rc)
{
    if (content == NULL || json_is_null(content))
        return "";
    if (json_is_string(content))
        return json_string_value(content);
    if (!json_is_array(content)) {
        *rc = EMPQ_EPARSE;
        return NULL;
    }
    empq_buf b = {0};
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(text)) {
            empq_buf_free(&b);
            *rc = EMPQ_EPARSE;
            return NULL;
        }
        const char *t = json_string_value(text);
        if ((b.len > 0 && empq_buf_append(&b, "\n", 1) != EMPQ_OK) ||
            empq_buf_append(&b, t, strlen(t)) != EMPQ_OK) {
            empq_buf_free(&b);
            *rc = EMPQ_ENOMEM;
            return NULL;
        }
    }
    if (b.data == NULL)
        return "";
    r->owned[r->n_owned++] = b.data;
    return b.data;
}

/* Checks an optional number in [lo, hi]. Returns 1 when absent or valid,
 * 0 after filling out with the error. */
static int check_range(json_t *root, const char *name, double lo, double hi, fakellm_reply *out, int *rc)
{
    json_t *v = json_object_get(root, name);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_number(v)) {
        *rc = bad_request(out, name, "invalid_type", "Invalid type for '%s': expected a number, but got %s instead.",
                          name, json_type_name(v));
        return 0;
    }
    double x = json_number_value(v);
    if (x < lo) {
        *rc = bad_request(out, name, "decimal_below_min_value",
                          "Invalid '%s': decimal below minimum value. Expected a value >= %g, but got %g instead.",
                          name, lo, x);
        return 0;
    }
    if (x > hi) {
        *rc = bad_request(out, name, "decimal_above_max_value",
                          "Invalid '%s': decimal above maximum value. Expected a value <= %g, but got %g instead.",
                          name, hi, x);
        return 0;
    }
    return 1;
}

/* Reads an optional integer >= lo (and <= hi when hi > 0) into *val. */
static int get_int(json_t *root, const char *name, long long lo, long long hi, long long *val,
                   fakellm_reply *out, int *rc)
{
    json_t *v = json_object_get(root, name);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_integer(v)) {
        *rc = bad_request(out, name, "invalid_type", "Invalid type for '%s': expected an integer, but got %s instead.",
                          name, json_type_name(v));
        return 0;
    }
    long long x = (long long)json_integer_value(v);
    if (x < lo) {
        *rc = bad_request(out, name, "integer_below_min_value",
                          "Invalid '%s': integer below minimum value. Expected a value >= %lld, but got %lld instead.",
                          name, lo, x);
        return 0;
    }
    if (hi > 0 && x > hi) {
        *rc = bad_request(out, name, "integer_above_max_value",
                          "Invalid '%s': integer above maximum value. Expected a value <= %lld, but got %lld instead.",
                          name, hi, x);
        return 0;
    }
    *val = x;
    return 1;
}

/* Parses root into r. Returns 1 when r is complete; 0 when out holds the
 * error (or *rc is EMPQ_ENOMEM). */
static int parse_request(json_t *root, request *r, fakellm_reply *out, int *rc)
{
    char param[64];

    if (!json_is_object(root)) {
        *rc = bad_request(out, NULL, NULL, "Invalid type for request body: expected an object, but got %s instead.",
                          json_type_name(root));
        return 0;
    }
    json_t *model = json_object_get(root, "model");
    if (model == NULL || json_is_null(model)) {
        *rc = bad_request(out, "model", "missing_required_parameter", "you must provide a model parameter");
        return 0;
    }
    if (!json_is_string(model)) {
        *rc = bad_request(out, "model", "invalid_type", "Invalid type for 'model': expected a string, but got %s instead.",
                          json_type_name(model));
        return 0;
    }
    r->model = json_string_value(model);

    json_t *msgs = json_object_get(root, "messages");
    if (msgs == NULL) {
        *rc = bad_request(out, "messages", "missing_required_parameter", "Missing required parameter: 'messages'.");
        return 0;
    }
    if (!json_is_array(msgs)) {
        *rc = bad_request(out, "messages", "invalid_type",
                          "Invalid type for 'messages': expected an array, but got %s instead.", json_type_name(msgs));
        return 0;
    }
    size_t n = json_array_size(msgs);
    if (n == 0) {
        *rc = bad_request(out, "messages", "empty_array",
                          "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.");
        return 0;
    }
    r->msgs = calloc(n, sizeof(*r->msgs));
    r->owned = calloc(n, sizeof(*r->owned));
    if (r->msgs == NULL || r->owned == NULL) {
        *rc = EMPQ_ENOMEM;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m)) {
            snprintf(param, sizeof(param), "messages[%zu]", i);
            *rc = bad_request(out, param, "invalid_type", "Invalid type for '%s': expected an object, but got %s instead.",
                              param, json_type_name(m));
            return 0;
        }
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (role == NULL) {
            *rc = bad_request(out, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
            return 0;
        }
        size_t k = sizeof(roles) / sizeof(roles[0]);
        if (json_is_string(role))
            for (k = 0; k < sizeof(roles) / sizeof(roles[0]); k++)
                if (strcmp(json_string_value(role), roles[k]) == 0)
                    break;
        if (k == sizeof(roles) / sizeof(roles[0])) {
            *rc = bad_request(out, param, "invalid_value",
                              "Invalid value for '%s': supported values are 'system', 'developer', 'user', "
                              "'assistant', 'tool' and 'function'.",
                              param);
            return 0;
        }
        int crc = EMPQ_OK;
        const char *text = content_text(r, json_object_get(m, "content"), &crc);
        if (text == NULL) {
            if (crc == EMPQ_ENOMEM) {
                *rc = EMPQ_ENOMEM;
                return 0;
            }
            snprintf(param, sizeof(param), "messages[%zu].content", i);
            *rc = bad_request(out, param, "invalid_type",
                              "Invalid type for '%s': expected a string or an array of text parts.", param);
            return 0;
        }
        r->msgs[i].role = roles[k];
        r->msgs[i].content = text;
        r->n_msgs++;
    }

    if (!check_range(root, "temperature", 0, 2, out, rc) || !check_range(root, "top_p", 0, 1, out, rc))
        return 0;
    r->n = 1;
    if (!get_int(root, "n", 1, MAX_CHOICES, &r->n, out, rc) ||
        !get_int(root, "max_tokens", 1, 0, &r->max_tokens, out, rc) ||
        !get_int(root, "max_completion_tokens", 1, 0, &r->max_tokens, out, rc))
        return 0;

    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop)) {
        r->stops[r->n_stops++] = json_string_value(stop);
    } else if (json_is_array(stop)) {
        size_t i;
        json_t *s;
        if (json_array_size(stop) > MAX_STOPS) {
            *rc = bad_request(out, "stop", "invalid_value", "Invalid 'stop': expected at most %d strings, but got %zu.",
                              MAX_STOPS, json_array_size(stop));
            return 0;
        }
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s)) {
                *rc = bad_request(out, "stop", "invalid_type",
                                  "Invalid type for 'stop[%zu]': expected a string, but got %s instead.", i,
                                  json_type_name(s));
                return 0;
            }
            r->stops[r->n_stops++] = json_string_value(s);
        }
    } else if (stop != NULL && !json_is_null(stop)) {
        *rc = bad_request(out, "stop", "invalid_type",
                          "Invalid type for 'stop': expected a string or an array of strings, but got %s instead.",
                          json_type_name(stop));
        return 0;
    }

    json_t *stream = json_object_get(root, "stream");
    if (json_is_true(stream)) {
        *rc = bad_request(out, "stream", "unsupported_value", "empq-fakellm does not support stream=true yet.");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Response                                                                  */
/* ------------------------------------------------------------------------ */

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* "chatcmpl-" and 29 base62 characters, like the real ids. */
static void make_id(char out[40], uint64_t request_id, uint64_t created, uint64_t content_hash)
{
    uint64_t x = mix64(request_id ^ mix64(created) ^ content_hash);
    memcpy(out, "chatcmpl-", 9);
    for (int i = 0; i < 29; i++) {
        if (i % 10 == 0)
            x = mix64(x + (uint64_t)i);
        out[9 + i] = base62[x % 62];
        x /= 62;
    }
    out[38] = '\0';
}

/* Cuts text (length *len) before the first stop string; returns 1 if cut. */
static int apply_stops(const request *r, const char *text, size_t *len)
{
    int cut = 0;
    for (size_t i = 0; i < r->n_stops; i++) {
        if (r->stops[i][0] == '\0')
            continue;
        const char *p = strstr(text, r->stops[i]);
        if (p != NULL && (size_t)(p - text) < *len) {
            *len = (size_t)(p - text);
            cut = 1;
        }
    }
    return cut;
}

static json_t *make_choice(const request *r, size_t index, const char *text, uint64_t *completion_tokens)
{
    size_t len = strlen(text);
    const char *finish = "stop";
    apply_stops(r, text, &len);
    char *cut = strndup(text, len);
    if (cut == NULL)
        return NULL;
    if (r->max_tokens > 0 && fakellm_count_words(cut) > (size_t)r->max_tokens) {
        cut[fakellm_prefix_words(cut, (size_t)r->max_tokens)] = '\0';
        finish = "length";
    }
    *completion_tokens += fakellm_count_words(cut);
    json_t *choice = json_pack("{s:I,s:{s:s,s:s},s:n,s:s}", "index", (json_int_t)index, "message", "role",
                               "assistant", "content", cut, "logprobs", "finish_reason", finish);
    free(cut);
    return choice;
}

static int build_response(const request *r, const fakellm_openai_ctx *ctx, fakellm_reply *out)
{
    uint64_t prompt_tokens = 3, completion_tokens = 0;
    uint64_t h = fakellm_style_hash(r->model, r->msgs, r->n_msgs);
    char id[40], fingerprint[16];
    int rc = EMPQ_ENOMEM;
    empq_buf text = {0};
    json_t *choices = json_array(), *root = NULL;

    for (size_t i = 0; i < r->n_msgs; i++)
        prompt_tokens += 4 + fakellm_count_words(r->msgs[i].content);
    if (choices == NULL)
        goto done;
    for (long long i = 0; i < r->n; i++) {
        text.len = 0;
        if (fakellm_style_reply(r->model, r->msgs, r->n_msgs, (unsigned)i, &text) != EMPQ_OK ||
            json_array_append_new(choices, make_choice(r, (size_t)i, text.data ? text.data : "",
                                                       &completion_tokens)) != 0)
            goto done;
    }
    make_id(id, ctx->request_id, ctx->created, h);
    snprintf(fingerprint, sizeof(fingerprint), "fp_%010" PRIx64,
             (uint64_t)(fakellm_style_hash(r->model, NULL, 0) & 0xffffffffffULL));
    root = json_pack("{s:s,s:s,s:I,s:s,s:s,s:O,s:{s:I,s:I,s:I}}", "id", id, "object", "chat.completion",
                     "created", (json_int_t)ctx->created, "model", r->model, "system_fingerprint",
                     fingerprint, "choices", choices, "usage", "prompt_tokens", (json_int_t)prompt_tokens,
                     "completion_tokens", (json_int_t)completion_tokens, "total_tokens",
                     (json_int_t)(prompt_tokens + completion_tokens));
    if (root == NULL)
        goto done;
    char *body = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (body == NULL)
        goto done;
    rc = fakellm_reply_set(out, 200, body, strlen(body));
    free(body);
    if (rc == EMPQ_OK) {
        out->model = strdup(r->model);
        if (out->model == NULL)
            rc = EMPQ_ENOMEM;
    }
done:
    empq_buf_free(&text);
    json_decref(choices);
    json_decref(root);
    return rc;
}

int fakellm_openai_chat(const char *body, size_t len, const fakellm_openai_ctx *ctx, fakellm_reply *out)
{
    json_error_t jerr;
    request r = {0};
    int rc = EMPQ_OK;

    json_t *root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        rc = bad_request(out, NULL, NULL,
                         "We could not parse the JSON body of your request. (HINT: the body must be one JSON "
                         "object; the parser said: %s at line %d column %d.)",
                         jerr.text, jerr.line, jerr.column);
    } else if (parse_request(root, &r, out, &rc)) {
        rc = build_response(&r, ctx, out);
    }
    request_free(&r);
    json_decref(root);
    if (rc != EMPQ_OK)
        fakellm_reply_clear(out);
    return rc;
}
