/* anthropic.c: the Anthropic Messages format. See anthropic.h. */
#include "anthropic.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/error.h"
#include "style.h"

#define MAX_STOPS FAKELLM_MAX_STOPS

/* The dated versions the API documents, and the one the current official
 * JS SDK (@anthropic-ai/sdk 1.17) sends. */
static const char *const versions[] = {"2023-06-01", "2023-01-01", "2026-10-21"};

#define MIN_THINKING_BUDGET 1024

static const char *const request_fields[] = {
    "model",   "messages",    "max_tokens", "system",  "temperature", "top_p",        "top_k",
    "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management"};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

static void request_id_text(char *out, size_t cap, uint64_t request_id)
{
    fakellm_make_id(out, cap, "req_011C", 22, fakellm_mix64(request_id ^ 0xa17f0000u));
}

int fakellm_anthropic_error(fakellm_reply *out, unsigned status, const char *type, const char *message,
                            uint64_t request_id)
{
    char rid[40];
    request_id_text(rid, sizeof(rid), request_id);
    int rc = fakellm_reply_json(out, status,
                                json_pack("{s:s,s:{s:s,s:s},s:s}", "type", "error", "error", "type", type, "message",
                                          message, "request_id", rid));
    if (rc == EMPQ_OK)
        rc = fakellm_reply_header(out, "request-id", "%s", rid);
    return rc;
}

static int invalid(fakellm_reply *out, uint64_t rid, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int invalid(fakellm_reply *out, uint64_t rid, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fakellm_anthropic_error(out, 400, "invalid_request_error", msg, rid);
}

/* ------------------------------------------------------------------------ */
/* Request                                                                   */
/* ------------------------------------------------------------------------ */

/* A string, or the text blocks of an array joined with newlines. NULL after
 * filling out with the error (or *rc EMPQ_ENOMEM). */
static const char *blocks_text(fakellm_chat *c, json_t *v, const char *where, uint64_t rid, fakellm_reply *out,
                               int *rc)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (!json_is_array(v)) {
        *rc = invalid(out, rid, "%s: Input should be a valid string or a valid list", where);
        return NULL;
    }
    empq_buf b = {0};
    size_t i;
    json_t *blk;
    json_array_foreach(v, i, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (type == NULL) {
            empq_buf_free(&b);
            *rc = invalid(out, rid, "%s.%zu.type: Field required", where, i);
            return NULL;
        }
        if (strcmp(type, "text") != 0)
            continue; /* images, tool results: nothing a fake model reads */
        json_t *text = json_object_get(blk, "text");
        if (!json_is_string(text)) {
            empq_buf_free(&b);
            *rc = invalid(out, rid, "%s.%zu.text: Field required", where, i);
            return NULL;
        }
        const char *t = json_string_value(text);
        if ((b.len > 0 && empq_buf_append(&b, "\n", 1) != EMPQ_OK) || empq_buf_append(&b, t, strlen(t)) != EMPQ_OK) {
            empq_buf_free(&b);
            *rc = EMPQ_ENOMEM;
            return NULL;
        }
    }
    if (b.data == NULL)
        return "";
    return fakellm_chat_own(c, b.data);
}

static int number_in(json_t *root, const char *name, double lo, double hi, uint64_t rid, fakellm_reply *out, int *rc)
{
    json_t *v = json_object_get(root, name);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_number(v)) {
        *rc = invalid(out, rid, "%s: Input should be a valid number", name);
        return 0;
    }
    double x = json_number_value(v);
    if (x < lo) {
        *rc = invalid(out, rid, "%s: Input should be greater than or equal to %g", name, lo);
        return 0;
    }
    if (x > hi) {
        *rc = invalid(out, rid, "%s: Input should be less than or equal to %g", name, hi);
        return 0;
    }
    return 1;
}

/* What a Messages request asks besides the chat. */
typedef struct extras {
    int thinking;        /* thinking enabled (or adaptive): c->reasoning tokens */
    uint64_t cache_read; /* input tokens read from the prompt cache */
} extras;

/* 1 when a system given as blocks marks one with cache_control. */
static int system_cached(json_t *sys)
{
    size_t i;
    json_t *blk;
    json_array_foreach(sys, i, blk) {
        json_t *cc = json_object_get(blk, "cache_control");
        if (cc != NULL && !json_is_null(cc))
            return 1;
    }
    return 0;
}

/* Reads "thinking" into c->reasoning and x->thinking. Returns 1, or 0 after
 * filling out with the API's 400. */
static int parse_thinking(json_t *root, fakellm_chat *c, extras *x, uint64_t rid, fakellm_reply *out, int *rc)
{
    json_t *th = json_object_get(root, "thinking");
    if (th == NULL || json_is_null(th))
        return 1;
    if (!json_is_object(th)) {
        *rc = invalid(out, rid, "thinking: Input should be a valid dictionary or object to extract fields from");
        return 0;
    }
    const char *type = json_string_value(json_object_get(th, "type"));
    if (type == NULL) {
        *rc = invalid(out, rid, "thinking.type: Field required");
        return 0;
    }
    if (strcmp(type, "disabled") == 0 || strcmp(type, "between_tools") == 0)
        return 1;
    if (strcmp(type, "adaptive") == 0) {
        x->thinking = 1;
        c->reasoning = FAKELLM_THINK_DEFAULT;
    } else if (strcmp(type, "enabled") == 0) {
        json_t *b = json_object_get(th, "budget_tokens");
        if (b == NULL) {
            *rc = invalid(out, rid, "thinking.enabled.budget_tokens: Field required");
            return 0;
        }
        if (!json_is_integer(b)) {
            *rc = invalid(out, rid, "thinking.enabled.budget_tokens: Input should be a valid integer");
            return 0;
        }
        if (json_integer_value(b) < MIN_THINKING_BUDGET) {
            *rc = invalid(out, rid, "thinking.enabled.budget_tokens: Input should be greater than or equal to %d",
                          MIN_THINKING_BUDGET);
            return 0;
        }
        if (json_integer_value(b) >= c->max_tokens) {
            *rc = invalid(out, rid,
                          "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                          "documentation at https://docs.claude.com/en/docs/build-with-claude/"
                          "extended-thinking#max-tokens-and-context-window-size");
            return 0;
        }
        x->thinking = 1;
        c->reasoning = (long long)json_integer_value(b);
    } else {
        *rc = invalid(out, rid,
                      "thinking: Input tag '%.40s' found using 'type' does not match any of the expected tags: "
                      "'enabled', 'disabled', 'adaptive', 'between_tools'",
                      type);
        return 0;
    }
    json_t *t = json_object_get(root, "temperature");
    if (json_is_number(t) && json_number_value(t) != 1.0) {
        *rc = invalid(out, rid,
                      "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation "
                      "at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility");
        return 0;
    }
    return 1;
}

static int parse_request(json_t *root, fakellm_chat *c, extras *x, uint64_t rid, fakellm_reply *out, int *rc)
{
    char where[64];
    if (!json_is_object(root)) {
        *rc = invalid(out, rid, "Input should be a valid dictionary");
        return 0;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        size_t i;
        for (i = 0; i < sizeof(request_fields) / sizeof(request_fields[0]); i++)
            if (strcmp(key, request_fields[i]) == 0)
                break;
        if (i == sizeof(request_fields) / sizeof(request_fields[0])) {
            *rc = invalid(out, rid, "%.100s: Extra inputs are not permitted", key);
            return 0;
        }
    }
    json_t *model = json_object_get(root, "model");
    if (model == NULL) {
        *rc = invalid(out, rid, "model: Field required");
        return 0;
    }
    if (!json_is_string(model)) {
        *rc = invalid(out, rid, "model: Input should be a valid string");
        return 0;
    }
    c->model = json_string_value(model);
    json_t *max = json_object_get(root, "max_tokens");
    if (max == NULL) {
        *rc = invalid(out, rid, "max_tokens: Field required");
        return 0;
    }
    if (!json_is_integer(max)) {
        *rc = invalid(out, rid, "max_tokens: Input should be a valid integer");
        return 0;
    }
    if (json_integer_value(max) < 1) {
        *rc = invalid(out, rid, "max_tokens: Input should be greater than or equal to 1");
        return 0;
    }
    json_t *msgs = json_object_get(root, "messages");
    if (msgs == NULL) {
        *rc = invalid(out, rid, "messages: Field required");
        return 0;
    }
    if (!json_is_array(msgs)) {
        *rc = invalid(out, rid, "messages: Input should be a valid list");
        return 0;
    }
    size_t n = json_array_size(msgs);
    if (n == 0) {
        *rc = invalid(out, rid, "messages: at least one message is required");
        return 0;
    }
    if (fakellm_chat_alloc(c, n + 1) != EMPQ_OK) {
        *rc = EMPQ_ENOMEM;
        return 0;
    }
    c->max_tokens = (long long)json_integer_value(max);
    json_t *sys = json_object_get(root, "system");
    if (sys != NULL && !json_is_null(sys)) {
        const char *t = blocks_text(c, sys, "system", rid, out, rc);
        if (t == NULL)
            return 0;
        fakellm_chat_add(c, "system", t);
        if (json_is_array(sys) && system_cached(sys))
            x->cache_read = 4 + fakellm_count_words(t);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!json_is_object(m) || role == NULL) {
            *rc = invalid(out, rid, "messages.%zu.role: Field required", i);
            return 0;
        }
        if (strcmp(role, "system") == 0) {
            *rc = invalid(out, rid,
                          "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` "
                          "parameter, not \"system\" as an input message role.");
            return 0;
        }
        if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
            *rc = invalid(out, rid, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
            return 0;
        }
        json_t *content = json_object_get(m, "content");
        snprintf(where, sizeof(where), "messages.%zu.content", i);
        if (content == NULL) {
            *rc = invalid(out, rid, "%s: Field required", where);
            return 0;
        }
        const char *t = blocks_text(c, content, where, rid, out, rc);
        if (t == NULL)
            return 0;
        fakellm_chat_add(c, role, t);
    }
    if (!number_in(root, "temperature", 0, 1, rid, out, rc) || !number_in(root, "top_p", 0, 1, rid, out, rc) ||
        !number_in(root, "top_k", 0, 1e9, rid, out, rc))
        return 0;
    json_t *stops = json_object_get(root, "stop_sequences");
    if (stops != NULL && !json_is_null(stops)) {
        size_t i;
        json_t *s;
        if (!json_is_array(stops)) {
            *rc = invalid(out, rid, "stop_sequences: Input should be a valid list");
            return 0;
        }
        json_array_foreach(stops, i, s) {
            if (!json_is_string(s)) {
                *rc = invalid(out, rid, "stop_sequences.%zu: Input should be a valid string", i);
                return 0;
            }
            if (c->n_stops < MAX_STOPS)
                c->stops[c->n_stops++] = json_string_value(s);
        }
    }
    if (!parse_thinking(root, c, x, rid, out, rc))
        return 0;
    if (json_is_true(json_object_get(root, "stream"))) {
        *rc = invalid(out, rid, "stream: empq-fakellm does not support streaming yet");
        return 0;
    }
    c->n = 1;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Response                                                                  */
/* ------------------------------------------------------------------------ */

/* The content blocks: a thinking block when the answer reasoned (thinking
 * enabled, or the thinking faults), then the text unless there is none. */
static json_t *content_blocks(const fakellm_chat *c, const fakellm_ctx *ctx, const fakellm_answer *a, int thinking)
{
    json_t *blocks = json_array();
    fakellm_mode m = ctx->mode;
    if (blocks == NULL)
        return NULL;
    if (a->reasoning > 0 && (thinking || m == FAKELLM_MODE_THINKING_ONLY || m == FAKELLM_MODE_LENGTH_EMPTY)) {
        char sig[120];
        char *text = fakellm_chat_thinking(c, 0);
        fakellm_make_id(sig, sizeof(sig), "Er", 96, fakellm_mix64(ctx->request_id ^ 0x519e0000u));
        json_t *blk = text ? json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", text, "signature", sig) : NULL;
        free(text);
        if (blk == NULL || json_array_append_new(blocks, blk) != 0) {
            json_decref(blocks);
            return NULL;
        }
    }
    int no_text = m == FAKELLM_MODE_EMPTY || m == FAKELLM_MODE_NUL || m == FAKELLM_MODE_SAFETY ||
                  m == FAKELLM_MODE_THINKING_ONLY || m == FAKELLM_MODE_LENGTH_EMPTY ||
                  (a->text[0] == '\0' && a->finish == FAKELLM_FINISH_LENGTH);
    if (!no_text && json_array_append_new(blocks, json_pack("{s:s,s:s}", "type", "text", "text", a->text)) != 0) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

static int build_response(const fakellm_chat *c, const extras *x, const fakellm_ctx *ctx, fakellm_reply *out)
{
    uint64_t input = fakellm_chat_prompt_tokens(c);
    char id[40];
    fakellm_answer a;
    int rc = fakellm_chat_answer(c, 0, ctx->mode, &a);
    if (rc != EMPQ_OK)
        return rc;
    fakellm_make_id(id, sizeof(id), "msg_01", 22,
                    fakellm_mix64(ctx->request_id ^ fakellm_mix64(ctx->created) ^
                                  fakellm_style_hash(c->model, c->msgs, c->n_msgs)));
    const char *stop = "end_turn";
    if (a.finish == FAKELLM_FINISH_LENGTH)
        stop = "max_tokens";
    else if (a.finish == FAKELLM_FINISH_STOP_SEQ)
        stop = "stop_sequence";
    else if (a.finish == FAKELLM_FINISH_REFUSAL || ctx->mode == FAKELLM_MODE_SAFETY)
        stop = "refusal";
    json_t *content = content_blocks(c, ctx, &a, x->thinking);
    json_t *root = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:o}", "id", id, "type", "message", "role", "assistant",
                             "model", c->model, "content", content, "stop_reason", stop, "stop_sequence",
                             a.stop_seq ? json_string(a.stop_seq) : json_null());
    if (root != NULL && strcmp(stop, "refusal") == 0 &&
        json_object_set_new(root, "stop_details",
                            json_pack("{s:s,s:n,s:n}", "type", "refusal", "category", "explanation")) != 0) {
        json_decref(root);
        root = NULL;
    }
    if (root != NULL && json_object_set_new(root, "usage",
                                            json_pack("{s:I,s:i,s:I,s:I}", "input_tokens",
                                                      (json_int_t)(input - x->cache_read),
                                                      "cache_creation_input_tokens", 0, "cache_read_input_tokens",
                                                      (json_int_t)x->cache_read, "output_tokens",
                                                      (json_int_t)(a.tokens + a.reasoning))) != 0) {
        json_decref(root);
        root = NULL;
    }
    rc = fakellm_reply_json(out, 200, root);
    if (rc == EMPQ_OK) {
        char rid[40];
        request_id_text(rid, sizeof(rid), ctx->request_id);
        rc = fakellm_reply_header(out, "request-id", "%s", rid);
    }
    if (rc == EMPQ_OK) {
        out->tokens = input + a.tokens + a.reasoning;
        free(out->model);
        out->model = strdup(c->model);
        if (out->model == NULL)
            rc = EMPQ_ENOMEM;
    }
    fakellm_answer_clear(&a);
    return rc;
}

int fakellm_anthropic_check(const fakellm_anthropic_in *in, uint64_t rid, fakellm_reply *out, int *rc)
{
    size_t i, nv = sizeof(versions) / sizeof(versions[0]);
    const char *bearer = in->authorization != NULL && strncmp(in->authorization, "Bearer ", 7) == 0
                             ? in->authorization + 7
                             : NULL;
    const char *key = in->api_key != NULL && in->api_key[0] != '\0' ? in->api_key : bearer;

    for (i = 0; in->version != NULL && i < nv; i++)
        if (strcmp(in->version, versions[i]) == 0)
            break;
    if (in->require_key != NULL && (key == NULL || key[0] == '\0'))
        *rc = fakellm_anthropic_error(out, 401, "authentication_error", "x-api-key header is required", rid);
    else if (in->require_key != NULL && strcmp(key, in->require_key) != 0)
        *rc = fakellm_anthropic_error(out, 401, "authentication_error",
                                      key == in->api_key ? "invalid x-api-key" : "Invalid bearer token", rid);
    else if (in->version == NULL || in->version[0] == '\0')
        *rc = invalid(out, rid, "anthropic-version: header is required");
    else if (i == nv)
        *rc = invalid(out, rid, "anthropic-version: \"%.40s\" is not a valid version", in->version);
    else
        return 1;
    return 0;
}

int fakellm_anthropic_messages(const char *body, size_t len, const fakellm_anthropic_in *in, const fakellm_ctx *ctx,
                               fakellm_reply *out)
{
    json_error_t jerr;
    fakellm_chat c = {0};
    int rc = EMPQ_OK;
    json_t *root = NULL;
    uint64_t rid = ctx->request_id;
    extras x = {0};

    if (fakellm_anthropic_check(in, rid, out, &rc)) {
        root = json_loadb(body, len, 0, &jerr);
        if (root == NULL)
            rc = invalid(out, rid, "There was an issue with your request body: invalid JSON (%s at line %d column %d)",
                         jerr.text, jerr.line, jerr.column);
        else if (parse_request(root, &c, &x, rid, out, &rc))
            rc = build_response(&c, &x, ctx, out);
    }
    fakellm_chat_free(&c);
    json_decref(root);
    if (rc != EMPQ_OK)
        fakellm_reply_clear(out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Server-raised errors and headers                                          */
/* ------------------------------------------------------------------------ */

static int anthropic_fault(fakellm_reply *out, fakellm_errkind kind, const char *model, const fakellm_admit *a,
                           uint64_t request_id)
{
    char msg[600];
    (void)model;
    if (kind == FAKELLM_ERR_500)
        return fakellm_anthropic_error(out, 500, "api_error", "Internal server error", request_id);
    if (kind == FAKELLM_ERR_503)
        return fakellm_anthropic_error(out, 529, "overloaded_error", "Overloaded", request_id);
    if (kind == FAKELLM_ERR_QUOTA)
        return fakellm_anthropic_error(out, 400, "invalid_request_error",
                                       "Your credit balance is too low to access the Anthropic API. Please go to "
                                       "Plans & Billing to upgrade or purchase credits.",
                                       request_id);
    const char *which = a && a->which ? a->which : "requests";
    uint64_t limit = a && a->limit ? a->limit : (a && a->has_limit && a->lim.rpm ? a->lim.rpm : 50);
    if (strcmp(which, "concurrency") == 0)
        snprintf(msg, sizeof(msg),
                 "This request would exceed your organization's concurrency limit of %" PRIu64 " requests. For "
                 "details, refer to: https://docs.anthropic.com/en/api/rate-limits. Please try again later.",
                 limit);
    else
        snprintf(msg, sizeof(msg),
                 "This request would exceed the rate limit for your organization (fakellm) of %" PRIu64
                 " %s per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see "
                 "the response headers for current usage. Please reduce the prompt length or the maximum tokens "
                 "requested, or try again later. You may also contact sales at "
                 "https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.",
                 limit, strcmp(which, "tokens") == 0 ? "input tokens" : "requests");
    int rc = fakellm_anthropic_error(out, 429, "rate_limit_error", msg, request_id);
    if (rc == EMPQ_OK)
        rc = fakellm_reply_header(out, "retry-after", "%u",
                                  fakellm_retry_seconds(a && a->retry_after_ms ? a->retry_after_ms : 1000));
    return rc;
}

static int anthropic_headers(fakellm_reply *out, const fakellm_admit *a, uint64_t now_unix_ms)
{
    char t[40];
    int rc = EMPQ_OK;
    if (a->lim.rpm > 0) {
        rc |= fakellm_reply_header(out, "anthropic-ratelimit-requests-limit", "%" PRIu64, a->lim.rpm);
        rc |= fakellm_reply_header(out, "anthropic-ratelimit-requests-remaining", "%" PRIu64, a->remaining_requests);
        rc |= fakellm_reply_header(out, "anthropic-ratelimit-requests-reset", "%s",
                                   fakellm_rfc3339(t, sizeof(t), now_unix_ms + a->reset_requests_ms));
    }
    if (a->lim.tpm > 0) {
        rc |= fakellm_reply_header(out, "anthropic-ratelimit-tokens-limit", "%" PRIu64, a->lim.tpm);
        rc |= fakellm_reply_header(out, "anthropic-ratelimit-tokens-remaining", "%" PRIu64, a->remaining_tokens);
        rc |= fakellm_reply_header(out, "anthropic-ratelimit-tokens-reset", "%s",
                                   fakellm_rfc3339(t, sizeof(t), now_unix_ms + a->reset_tokens_ms));
    }
    return rc == EMPQ_OK ? EMPQ_OK : EMPQ_ENOMEM;
}

const fakellm_front fakellm_front_anthropic = {"anthropic", anthropic_fault, anthropic_headers};
