/* openai.c: the OpenAI chat-completions format and Azure OpenAI's. See openai.h. */
#include "openai.h"

#include <ctype.h>
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

/* reasoning_effort -> reasoning tokens spent (openai.h). */
static const struct {
    const char *name;
    long long tokens;
} efforts[] = {{"none", 0},     {"minimal", 0},   {"low", 64},  {"medium", 256},
               {"high", 1024},  {"xhigh", 2048},  {"max", 4096}};
#define DEFAULT_EFFORT_TOKENS 256

int fakellm_openai_reasoning_model(const char *model)
{
    return model != NULL && strncmp(model, FAKELLM_REASONING_PREFIX, strlen(FAKELLM_REASONING_PREFIX)) == 0;
}

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
    return fakellm_reply_json(out, status, root);
}

int fakellm_azure_error(fakellm_reply *out, unsigned status, const char *code, const char *message)
{
    return fakellm_reply_json(out, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
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

int fakellm_openai_auth(const char *auth, const char *require_key, fakellm_reply *out, int *rc)
{
    if (require_key == NULL)
        return 1;
    const char *key = NULL;
    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    if (key != NULL && strcmp(key, require_key) == 0)
        return 1;
    if (key == NULL || key[0] == '\0') {
        *rc = fakellm_openai_error(out, 401,
                                   "You didn't provide an API key. You need to provide your API key in an "
                                   "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                                   NULL, NULL, "invalid_api_key");
        return 0;
    }
    /* Name the key as the real API does: its ends, the middle hidden. */
    char msg[256], shown[16];
    size_t n = strlen(key);
    if (n > 8)
        snprintf(shown, sizeof(shown), "%.3s****%s", key, key + n - 4);
    else
        snprintf(shown, sizeof(shown), "****");
    snprintf(msg, sizeof(msg),
             "Incorrect API key provided: %s. You can find your API key at "
             "https://platform.openai.com/account/api-keys.",
             shown);
    *rc = fakellm_openai_error(out, 401, msg, NULL, NULL, "invalid_api_key");
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Request                                                                   */
/* ------------------------------------------------------------------------ */

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

/* Content as a string: a string, null (""), or an array of parts whose
 * "text" members are joined with newlines. Returns NULL on a wrong type
 * (*rc EMPQ_EPARSE) or out of memory (*rc EMPQ_ENOMEM). */
static const char *content_text(fakellm_chat *c, json_t *content, int *rc)
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
    return fakellm_chat_own(c, b.data);
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
                          name, fakellm_json_type_name(v));
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
                          name, fakellm_json_type_name(v));
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

/* Parses root into c. model_required: OpenAI needs "model"; Azure takes the
 * deployment instead. Returns 1 when c is complete; 0 when out holds the
 * error (or *rc is EMPQ_ENOMEM). */
/* Reads reasoning_effort into c->reasoning; a reasoning model reasons at
 * medium effort when none is given. Returns 1, or 0 after filling out. */
static int parse_effort(json_t *root, fakellm_chat *c, fakellm_reply *out, int *rc)
{
    json_t *v = json_object_get(root, "reasoning_effort");
    if (v == NULL || json_is_null(v)) {
        c->reasoning = fakellm_openai_reasoning_model(c->model) ? DEFAULT_EFFORT_TOKENS : 0;
        return 1;
    }
    for (size_t i = 0; json_is_string(v) && i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        if (strcmp(json_string_value(v), efforts[i].name) == 0) {
            c->reasoning = efforts[i].tokens;
            return 1;
        }
    }
    if (!json_is_string(v)) {
        *rc = bad_request(out, "reasoning_effort", "invalid_type",
                          "Invalid type for 'reasoning_effort': expected one of 'none', 'minimal', 'low', 'medium', "
                          "'high', 'xhigh' or 'max', but got %s instead.",
                          fakellm_json_type_name(v));
        return 0;
    }
    *rc = bad_request(out, "reasoning_effort", "invalid_value",
                      "Invalid value: '%.40s'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', "
                      "'xhigh' and 'max'.",
                      json_string_value(v));
    return 0;
}

/* What a reasoning model refuses: max_tokens, top_p, a temperature other than 1.
 * Returns 1 when the request is fine, 0 after filling out. */
static int reasoning_model_checks(json_t *root, const fakellm_chat *c, fakellm_reply *out, int *rc)
{
    if (!fakellm_openai_reasoning_model(c->model))
        return 1;
    json_t *mt = json_object_get(root, "max_tokens");
    if (mt != NULL && !json_is_null(mt)) {
        *rc = bad_request(out, "max_tokens", "unsupported_parameter",
                          "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                          "'max_completion_tokens' instead.");
        return 0;
    }
    json_t *tp = json_object_get(root, "top_p");
    if (tp != NULL && !json_is_null(tp)) {
        *rc = bad_request(out, "top_p", "unsupported_parameter",
                          "Unsupported parameter: 'top_p' is not supported with this model.");
        return 0;
    }
    json_t *t = json_object_get(root, "temperature");
    if (json_is_number(t) && json_number_value(t) != 1.0) {
        /* The value as the API prints it (a Python float: 0 -> "0.0"). */
        char num[40];
        snprintf(num, sizeof(num), "%g", json_number_value(t));
        if (strpbrk(num, ".en") == NULL && strlen(num) + 2 < sizeof(num))
            memcpy(num + strlen(num), ".0", 3);
        *rc = bad_request(out, "temperature", "unsupported_value",
                          "Unsupported value: 'temperature' does not support %s with this model. Only the default "
                          "(1) value is supported.",
                          num);
        return 0;
    }
    return 1;
}

static int parse_request(json_t *root, int model_required, const char *style_model, fakellm_chat *c,
                         fakellm_reply *out, int *rc)
{
    char param[64];

    if (!json_is_object(root)) {
        *rc = bad_request(out, NULL, NULL, "Invalid type for request body: expected an object, but got %s instead.",
                          fakellm_json_type_name(root));
        return 0;
    }
    json_t *model = json_object_get(root, "model");
    if (model_required && (model == NULL || json_is_null(model))) {
        *rc = bad_request(out, "model", "missing_required_parameter", "you must provide a model parameter");
        return 0;
    }
    if (model != NULL && !json_is_null(model) && !json_is_string(model)) {
        *rc = bad_request(out, "model", "invalid_type", "Invalid type for 'model': expected a string, but got %s instead.",
                          fakellm_json_type_name(model));
        return 0;
    }
    c->model = style_model != NULL ? style_model : json_string_value(model);
    if (json_is_integer(json_object_get(root, "seed")))
        c->seed = (long long)json_integer_value(json_object_get(root, "seed"));

    json_t *msgs = json_object_get(root, "messages");
    if (msgs == NULL) {
        *rc = bad_request(out, "messages", "missing_required_parameter", "Missing required parameter: 'messages'.");
        return 0;
    }
    if (!json_is_array(msgs)) {
        *rc = bad_request(out, "messages", "invalid_type",
                          "Invalid type for 'messages': expected an array, but got %s instead.",
                          fakellm_json_type_name(msgs));
        return 0;
    }
    size_t n = json_array_size(msgs);
    if (n == 0) {
        *rc = bad_request(out, "messages", "empty_array",
                          "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.");
        return 0;
    }
    if (fakellm_chat_alloc(c, n) != EMPQ_OK) {
        *rc = EMPQ_ENOMEM;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        if (!json_is_object(m)) {
            snprintf(param, sizeof(param), "messages[%zu]", i);
            *rc = bad_request(out, param, "invalid_type", "Invalid type for '%s': expected an object, but got %s instead.",
                              param, fakellm_json_type_name(m));
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
        const char *text = content_text(c, json_object_get(m, "content"), &crc);
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
        fakellm_chat_add(c, roles[k], text);
    }

    if (!check_range(root, "temperature", 0, 2, out, rc) || !check_range(root, "top_p", 0, 1, out, rc))
        return 0;
    c->n = 1;
    if (!parse_effort(root, c, out, rc) || !reasoning_model_checks(root, c, out, rc) ||
        !get_int(root, "n", 1, MAX_CHOICES, &c->n, out, rc) ||
        !get_int(root, "max_tokens", 1, 0, &c->max_tokens, out, rc) ||
        !get_int(root, "max_completion_tokens", 1, 0, &c->max_tokens, out, rc))
        return 0;

    json_t *stop = json_object_get(root, "stop");
    if (json_is_string(stop)) {
        c->stops[c->n_stops++] = json_string_value(stop);
    } else if (json_is_array(stop)) {
        size_t i;
        json_t *s;
        if (json_array_size(stop) > MAX_STOPS) {
            *rc = bad_request(out, "stop", "array_above_max_length",
                              "Invalid 'stop': array too long. Expected an array with maximum length %d, but got an "
                              "array with length %zu instead.",
                              MAX_STOPS, json_array_size(stop));
            return 0;
        }
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s)) {
                *rc = bad_request(out, "stop", "invalid_type",
                                  "Invalid type for 'stop[%zu]': expected a string, but got %s instead.", i,
                                  fakellm_json_type_name(s));
                return 0;
            }
            c->stops[c->n_stops++] = json_string_value(s);
        }
    } else if (stop != NULL && !json_is_null(stop)) {
        *rc = bad_request(out, "stop", "invalid_type",
                          "Invalid type for 'stop': expected a string or an array of strings, but got %s instead.",
                          fakellm_json_type_name(stop));
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

static json_t *make_choice(const fakellm_chat *c, size_t index, fakellm_mode mode, uint64_t *completion_tokens,
                           uint64_t *reasoning_tokens, int *rc)
{
    fakellm_answer a;
    *rc = fakellm_chat_answer(c, (unsigned)index, mode, &a);
    if (*rc != EMPQ_OK)
        return NULL;
    *completion_tokens += a.tokens + a.reasoning;
    *reasoning_tokens += a.reasoning;
    const char *finish = a.finish == FAKELLM_FINISH_LENGTH ? "length" : "stop";
    json_t *msg;
    if (mode == FAKELLM_MODE_SAFETY)
        finish = "content_filter";
    if (a.finish == FAKELLM_FINISH_REFUSAL)
        msg = json_pack("{s:s,s:n,s:s}", "role", "assistant", "content", "refusal", a.text);
    else if (mode == FAKELLM_MODE_NUL || mode == FAKELLM_MODE_SAFETY)
        msg = json_pack("{s:s,s:n,s:n}", "role", "assistant", "content", "refusal");
    else
        msg = json_pack("{s:s,s:s,s:n}", "role", "assistant", "content", a.text, "refusal");
    json_t *choice = msg ? json_pack("{s:I,s:o,s:n,s:s}", "index", (json_int_t)index, "message", msg, "logprobs",
                                     "finish_reason", finish)
                         : NULL;
    fakellm_answer_clear(&a);
    if (choice == NULL)
        *rc = EMPQ_ENOMEM;
    return choice;
}

/* The cached prompt tokens: the leading system and developer messages, the
 * prefix every request of a study repeats (openai.h). */
static uint64_t cached_prefix_tokens(const fakellm_chat *c)
{
    uint64_t t = 0;
    for (size_t i = 0; i < c->n_msgs; i++) {
        if (strcmp(c->msgs[i].role, "system") != 0 && strcmp(c->msgs[i].role, "developer") != 0)
            break;
        t += 4 + fakellm_count_words(c->msgs[i].content);
    }
    return t;
}

/* Builds the 200 completion. report_model is the "model" to report. */
static int build_response(const fakellm_chat *c, const char *report_model, const fakellm_ctx *ctx,
                          fakellm_reply *out)
{
    uint64_t prompt_tokens = fakellm_chat_prompt_tokens(c), completion_tokens = 0, reasoning_tokens = 0;
    uint64_t h = fakellm_style_hash(c->model, c->msgs, c->n_msgs);
    char id[40], fingerprint[16];
    int rc = EMPQ_OK;
    json_t *choices = json_array();

    if (choices == NULL)
        return EMPQ_ENOMEM;
    for (long long i = 0; i < c->n && rc == EMPQ_OK; i++) {
        json_t *choice = make_choice(c, (size_t)i, ctx->mode, &completion_tokens, &reasoning_tokens, &rc);
        if (choice != NULL && json_array_append_new(choices, choice) != 0)
            rc = EMPQ_ENOMEM;
    }
    if (rc != EMPQ_OK) {
        json_decref(choices);
        return rc;
    }
    /* "chatcmpl-" and 29 base62 characters, like the real ids. */
    fakellm_make_id(id, sizeof(id), "chatcmpl-", 29,
                    fakellm_mix64(ctx->request_id ^ fakellm_mix64(ctx->created) ^ h));
    snprintf(fingerprint, sizeof(fingerprint), "fp_%010" PRIx64,
             (uint64_t)(fakellm_style_hash(c->model, NULL, 0) & 0xffffffffffULL));
    json_t *root = json_pack(
        "{s:s,s:s,s:I,s:s,s:s,s:o,s:{s:I,s:I,s:I,s:{s:I,s:i},s:{s:I,s:i,s:i,s:i}}}", "id", id, "object",
        "chat.completion", "created", (json_int_t)ctx->created, "model", report_model, "system_fingerprint",
        fingerprint, "choices", choices, "usage", "prompt_tokens", (json_int_t)prompt_tokens, "completion_tokens",
        (json_int_t)completion_tokens, "total_tokens", (json_int_t)(prompt_tokens + completion_tokens),
        "prompt_tokens_details", "cached_tokens", (json_int_t)cached_prefix_tokens(c), "audio_tokens", 0,
        "completion_tokens_details", "reasoning_tokens", (json_int_t)reasoning_tokens, "audio_tokens", 0,
        "accepted_prediction_tokens", 0, "rejected_prediction_tokens", 0);
    rc = fakellm_reply_json(out, 200, root);
    if (rc == EMPQ_OK) {
        char rid[40];
        fakellm_make_id(rid, sizeof(rid), "req_", 32, fakellm_mix64(ctx->request_id ^ 0x0a1e0000u));
        rc = fakellm_reply_header(out, "x-request-id", "%s", rid);
    }
    if (rc == EMPQ_OK) {
        out->tokens = prompt_tokens + completion_tokens;
        free(out->model);
        out->model = strdup(report_model);
        if (out->model == NULL)
            rc = EMPQ_ENOMEM;
    }
    return rc;
}

static int chat_common(const char *body, size_t len, int model_required, const char *style_model,
                       const char *report_model, const fakellm_ctx *ctx, fakellm_reply *out)
{
    json_error_t jerr;
    fakellm_chat c = {0};
    int rc = EMPQ_OK;

    json_t *root = json_loadb(body, len, 0, &jerr);
    if (root == NULL) {
        rc = bad_request(out, NULL, NULL,
                         "We could not parse the JSON body of your request. (HINT: the body must be one JSON "
                         "object; the parser said: %s at line %d column %d.)",
                         jerr.text, jerr.line, jerr.column);
    } else if (parse_request(root, model_required, style_model, &c, out, &rc)) {
        rc = build_response(&c, report_model ? report_model : c.model, ctx, out);
    }
    fakellm_chat_free(&c);
    json_decref(root);
    if (rc != EMPQ_OK)
        fakellm_reply_clear(out);
    return rc;
}

int fakellm_openai_chat(const char *body, size_t len, const fakellm_ctx *ctx, fakellm_reply *out)
{
    return chat_common(body, len, 1, NULL, NULL, ctx, out);
}

/* ------------------------------------------------------------------------ */
/* Azure                                                                     */
/* ------------------------------------------------------------------------ */

/* YYYY-MM-DD or YYYY-MM-DD-preview. */
static int api_version_ok(const char *v)
{
    if (v == NULL || strlen(v) < 10)
        return 0;
    for (int i = 0; i < 10; i++) {
        int dash = i == 4 || i == 7;
        if (dash ? v[i] != '-' : !isdigit((unsigned char)v[i]))
            return 0;
    }
    return v[10] == '\0' || strcmp(v + 10, "-preview") == 0;
}

int fakellm_azure_chat(const char *body, size_t len, const fakellm_azure_in *in, const fakellm_ctx *ctx,
                       fakellm_reply *out)
{
    int rc;
    if (!api_version_ok(in->api_version)) {
        rc = fakellm_azure_error(out, 404, "404", "Resource not found");
    } else if (in->require_key != NULL && (in->api_key == NULL || strcmp(in->api_key, in->require_key) != 0)) {
        rc = fakellm_azure_error(out, 401, "401",
                                 "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
                                 "provide a valid key for an active subscription and use a correct regional API "
                                 "endpoint for your resource.");
    } else {
        const char *model = in->model ? in->model : in->deployment;
        return chat_common(body, len, 0, model, model, ctx, out);
    }
    if (rc != EMPQ_OK)
        fakellm_reply_clear(out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Server-raised errors and headers                                          */
/* ------------------------------------------------------------------------ */

static int retry_headers(fakellm_reply *out, const fakellm_admit *a, int with_ms)
{
    uint64_t ms = a && a->retry_after_ms ? a->retry_after_ms : 1000;
    int rc = fakellm_reply_header(out, "Retry-After", "%u", fakellm_retry_seconds(ms));
    if (rc == EMPQ_OK && with_ms)
        rc = fakellm_reply_header(out, "retry-after-ms", "%" PRIu64, ms);
    return rc;
}

static int openai_fault(fakellm_reply *out, fakellm_errkind kind, const char *model, const fakellm_admit *a,
                        uint64_t request_id)
{
    char msg[512], wait[32];
    int rc;
    (void)request_id;
    switch (kind) {
    case FAKELLM_ERR_500:
        return fakellm_openai_error(out, 500, "The server had an error while processing your request. Sorry about that!",
                                    "server_error", NULL, NULL);
    case FAKELLM_ERR_503:
        return fakellm_openai_error(out, 503, "The engine is currently overloaded, please try again later.",
                                    "server_error", NULL, NULL);
    case FAKELLM_ERR_QUOTA:
        return fakellm_openai_error(out, 429,
                                    "You exceeded your current quota, please check your plan and billing details. "
                                    "For more information on this error, read the docs: "
                                    "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                                    "insufficient_quota", NULL, "insufficient_quota");
    case FAKELLM_ERR_LIMIT:
    case FAKELLM_ERR_429:
        break;
    }
    uint64_t ms = a && a->retry_after_ms ? a->retry_after_ms : 1000;
    fakellm_go_duration(wait, sizeof(wait), ms);
    const char *which = a && a->which ? a->which : "requests";
    uint64_t limit = a ? a->limit : 0, used = a ? a->used : 0, requested = a && a->requested ? a->requested : 1;
    if (kind == FAKELLM_ERR_429 && limit == 0) {
        limit = a && a->has_limit && a->lim.rpm ? a->lim.rpm : 60;
        used = limit;
    }
    if (strcmp(which, "concurrency") == 0)
        snprintf(msg, sizeof(msg),
                 "Rate limit reached for %s in organization org-fakellm on concurrent requests: Limit %" PRIu64
                 ", Used %" PRIu64 ", Requested 1. Please try again in %s. Visit "
                 "https://platform.openai.com/account/rate-limits to learn more.",
                 model ? model : "this model", limit, used, wait);
    else
        snprintf(msg, sizeof(msg),
                 "Rate limit reached for %s in organization org-fakellm on %s per min (%s): Limit %" PRIu64
                 ", Used %" PRIu64 ", Requested %" PRIu64 ". Please try again in %s. Visit "
                 "https://platform.openai.com/account/rate-limits to learn more.",
                 model ? model : "this model", strcmp(which, "tokens") == 0 ? "tokens" : "requests",
                 strcmp(which, "tokens") == 0 ? "TPM" : "RPM", limit, used, requested, wait);
    rc = fakellm_openai_error(out, 429, msg, strcmp(which, "tokens") == 0 ? "tokens" : "requests", NULL,
                              "rate_limit_exceeded");
    return rc == EMPQ_OK ? retry_headers(out, a, 0) : rc;
}

static int openai_headers(fakellm_reply *out, const fakellm_admit *a, uint64_t now_unix_ms)
{
    char d[32];
    int rc = EMPQ_OK;
    (void)now_unix_ms;
    if (a->lim.rpm > 0) {
        rc |= fakellm_reply_header(out, "x-ratelimit-limit-requests", "%" PRIu64, a->lim.rpm);
        rc |= fakellm_reply_header(out, "x-ratelimit-remaining-requests", "%" PRIu64, a->remaining_requests);
        rc |= fakellm_reply_header(out, "x-ratelimit-reset-requests", "%s",
                                   fakellm_go_duration(d, sizeof(d), a->reset_requests_ms));
    }
    if (a->lim.tpm > 0) {
        rc |= fakellm_reply_header(out, "x-ratelimit-limit-tokens", "%" PRIu64, a->lim.tpm);
        rc |= fakellm_reply_header(out, "x-ratelimit-remaining-tokens", "%" PRIu64, a->remaining_tokens);
        rc |= fakellm_reply_header(out, "x-ratelimit-reset-tokens", "%s",
                                   fakellm_go_duration(d, sizeof(d), a->reset_tokens_ms));
    }
    return rc == EMPQ_OK ? EMPQ_OK : EMPQ_ENOMEM;
}

static int azure_fault(fakellm_reply *out, fakellm_errkind kind, const char *model, const fakellm_admit *a,
                       uint64_t request_id)
{
    char msg[512];
    if (kind == FAKELLM_ERR_500 || kind == FAKELLM_ERR_503 || kind == FAKELLM_ERR_QUOTA)
        return openai_fault(out, kind, model, a, request_id); /* Azure passes these through */
    uint64_t ms = a && a->retry_after_ms ? a->retry_after_ms : 1000;
    int tokens = a && a->which && strcmp(a->which, "tokens") == 0;
    snprintf(msg, sizeof(msg),
             "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
             "exceeded %s rate limit of your current OpenAI S0 pricing tier. Please retry after %u second%s. "
             "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default "
             "rate limit.",
             tokens ? "token" : "call", fakellm_retry_seconds(ms), fakellm_retry_seconds(ms) == 1 ? "" : "s");
    int rc = fakellm_azure_error(out, 429, "429", msg);
    return rc == EMPQ_OK ? retry_headers(out, a, 1) : rc;
}

static int azure_headers(fakellm_reply *out, const fakellm_admit *a, uint64_t now_unix_ms)
{
    int rc = EMPQ_OK;
    (void)now_unix_ms;
    if (a->lim.rpm > 0)
        rc |= fakellm_reply_header(out, "x-ratelimit-remaining-requests", "%" PRIu64, a->remaining_requests);
    if (a->lim.tpm > 0)
        rc |= fakellm_reply_header(out, "x-ratelimit-remaining-tokens", "%" PRIu64, a->remaining_tokens);
    return rc == EMPQ_OK ? EMPQ_OK : EMPQ_ENOMEM;
}

const fakellm_front fakellm_front_openai = {"openai", openai_fault, openai_headers};
const fakellm_front fakellm_front_azure = {"azure", azure_fault, azure_headers};
