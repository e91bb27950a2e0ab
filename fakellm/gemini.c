/* gemini.c: the Gemini generateContent format. See gemini.h. */
#include "gemini.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/error.h"
#include "style.h"

#define MAX_CANDIDATES 8
#define MAX_STOPS 5

static const char *const categories[] = {"HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
                                         "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT",
                                         "HARM_CATEGORY_CIVIC_INTEGRITY"};
static const char *const thresholds[] = {"HARM_BLOCK_THRESHOLD_UNSPECIFIED", "BLOCK_LOW_AND_ABOVE",
                                         "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF"};

/* The fields of GenerateContentRequest and GenerationConfig, camelCase and
 * snake_case pairs. */
static const char *const request_fields[] = {
    "contents", "contents", "tools", "tools", "toolConfig", "tool_config", "safetySettings", "safety_settings",
    "systemInstruction", "system_instruction", "generationConfig", "generation_config", "cachedContent",
    "cached_content", "model", "model"};
static const char *const config_fields[] = {
    "stopSequences", "stop_sequences", "responseMimeType", "response_mime_type", "responseSchema",
    "response_schema", "responseJsonSchema", "response_json_schema", "responseModalities", "response_modalities",
    "candidateCount", "candidate_count", "maxOutputTokens", "max_output_tokens", "temperature", "temperature",
    "topP", "top_p", "topK", "top_k", "seed", "seed", "presencePenalty", "presence_penalty", "frequencyPenalty",
    "frequency_penalty", "responseLogprobs", "response_logprobs", "logprobs", "logprobs", "thinkingConfig",
    "thinking_config", "speechConfig", "speech_config", "mediaResolution", "media_resolution",
    "enableEnhancedCivicAnswers", "enable_enhanced_civic_answers"};

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

int fakellm_gemini_error(fakellm_reply *out, unsigned status, const char *rpc_status, const char *message)
{
    return fakellm_reply_json(out, status,
                              json_pack("{s:{s:I,s:s,s:s}}", "error", "code", (json_int_t)status, "message", message,
                                        "status", rpc_status));
}

static int invalid(fakellm_reply *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int invalid(fakellm_reply *out, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fakellm_gemini_error(out, 400, "INVALID_ARGUMENT", msg);
}

static int key_invalid(fakellm_reply *out)
{
    static const char msg[] = "API key not valid. Please pass a valid API key.";
    return fakellm_reply_json(
        out, 400,
        json_pack("{s:{s:i,s:s,s:s,s:[{s:s,s:s,s:s,s:{s:s}},{s:s,s:s,s:s}]}}", "error", "code", 400, "message", msg,
                  "status", "INVALID_ARGUMENT", "details", "@type", "type.googleapis.com/google.rpc.ErrorInfo",
                  "reason", "API_KEY_INVALID", "domain", "googleapis.com", "metadata", "service",
                  "generativelanguage.googleapis.com", "@type", "type.googleapis.com/google.rpc.LocalizedMessage",
                  "locale", "en-US", "message", msg));
}

/* ------------------------------------------------------------------------ */
/* Request                                                                   */
/* ------------------------------------------------------------------------ */

/* The member named camel or snake (protobuf JSON accepts both). */
static json_t *field(json_t *o, const char *camel, const char *snake)
{
    json_t *v = json_object_get(o, camel);
    return v ? v : json_object_get(o, snake);
}

/* Refuses a member of o not in names (pairs). Returns 1 when all are known. */
static int known_fields(json_t *o, const char *const *names, size_t n, const char *where, fakellm_reply *out,
                        int *rc)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(key, names[i]) == 0)
                break;
        if (i == n) {
            if (where != NULL)
                *rc = invalid(out, "Invalid JSON payload received. Unknown name \"%.100s\" at '%s': Cannot find field.",
                              key, where);
            else
                *rc = invalid(out, "Invalid JSON payload received. Unknown name \"%.100s\": Cannot find field.", key);
            return 0;
        }
    }
    return 1;
}

/* The text of a Content's parts joined with newlines (non-text parts are
 * skipped). NULL after filling out with an error, or *rc EMPQ_ENOMEM. */
static const char *parts_text(fakellm_chat *c, json_t *content, const char *where, fakellm_reply *out, int *rc)
{
    json_t *parts = json_object_get(content, "parts");
    if (!json_is_array(parts) || json_array_size(parts) == 0) {
        *rc = invalid(out, "* GenerateContentRequest.%s.parts: contents.parts must not be empty.\n", where);
        return NULL;
    }
    empq_buf b = {0};
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part) {
        if (!json_is_object(part)) {
            empq_buf_free(&b);
            *rc = invalid(out, "Invalid value at '%s.parts[%zu]' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part), %s",
                          where, i, fakellm_json_type_name(part));
            return NULL;
        }
        json_t *text = json_object_get(part, "text");
        if (text == NULL)
            continue;
        if (!json_is_string(text)) {
            empq_buf_free(&b);
            *rc = invalid(out, "Invalid value at '%s.parts[%zu].text' (TYPE_STRING), %s", where, i,
                          fakellm_json_type_name(text));
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

static int number_in(json_t *cfg, const char *camel, const char *snake, double lo, double hi, fakellm_reply *out,
                     int *rc)
{
    json_t *v = field(cfg, camel, snake);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_number(v)) {
        *rc = invalid(out, "Invalid value at 'generation_config.%s' (TYPE_FLOAT), %s", snake, fakellm_json_type_name(v));
        return 0;
    }
    double x = json_number_value(v);
    if (x < lo || x > hi) {
        *rc = invalid(out, "* GenerateContentRequest.generation_config.%s: %s must be in the range [%g, %g].\n", snake,
                      snake, lo, hi);
        return 0;
    }
    return 1;
}

static int int_in(json_t *cfg, const char *camel, const char *snake, long long lo, long long hi, long long *val,
                  fakellm_reply *out, int *rc)
{
    json_t *v = field(cfg, camel, snake);
    if (v == NULL || json_is_null(v))
        return 1;
    if (!json_is_integer(v)) {
        *rc = invalid(out, "Invalid value at 'generation_config.%s' (TYPE_INT32), %s", snake, fakellm_json_type_name(v));
        return 0;
    }
    long long x = (long long)json_integer_value(v);
    if (x < lo || (hi > 0 && x > hi)) {
        *rc = invalid(out, "* GenerateContentRequest.generation_config.%s: %s must be in the range [%lld, %lld].\n",
                      snake, snake, lo, hi > 0 ? hi : 2147483647LL);
        return 0;
    }
    if (val != NULL)
        *val = x;
    return 1;
}

static int one_of(const char *v, const char *const *set, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        if (strcmp(v, set[i]) == 0)
            return 1;
    return 0;
}

static int parse_request(json_t *root, fakellm_chat *c, fakellm_reply *out, int *rc)
{
    char where[64];
    if (!json_is_object(root)) {
        *rc = invalid(out, "Invalid JSON payload received. Expected an object, got %s.", fakellm_json_type_name(root));
        return 0;
    }
    if (!known_fields(root, request_fields, sizeof(request_fields) / sizeof(request_fields[0]), NULL, out, rc))
        return 0;
    json_t *contents = json_object_get(root, "contents");
    if (contents != NULL && !json_is_array(contents)) {
        *rc = invalid(out, "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), %s",
                      fakellm_json_type_name(contents));
        return 0;
    }
    size_t n = json_array_size(contents);
    if (n == 0) {
        *rc = invalid(out, "* GenerateContentRequest.contents: contents is not specified\n");
        return 0;
    }
    if (fakellm_chat_alloc(c, n + 1) != EMPQ_OK) {
        *rc = EMPQ_ENOMEM;
        return 0;
    }
    json_t *sys = field(root, "systemInstruction", "system_instruction");
    if (sys != NULL && !json_is_null(sys)) {
        if (!json_is_object(sys)) {
            *rc = invalid(out, "Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), %s",
                          fakellm_json_type_name(sys));
            return 0;
        }
        const char *t = parts_text(c, sys, "system_instruction", out, rc);
        if (t == NULL)
            return 0;
        fakellm_chat_add(c, "system", t);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(contents, i);
        snprintf(where, sizeof(where), "contents[%zu]", i);
        if (!json_is_object(m)) {
            *rc = invalid(out, "Invalid value at '%s' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), %s",
                          where, fakellm_json_type_name(m));
            return 0;
        }
        json_t *role = json_object_get(m, "role");
        const char *r = json_is_string(role) ? json_string_value(role) : "user";
        if ((role != NULL && !json_is_string(role)) || (strcmp(r, "user") != 0 && strcmp(r, "model") != 0)) {
            *rc = invalid(out, "Please use a valid role: user, model.");
            return 0;
        }
        const char *t = parts_text(c, m, where, out, rc);
        if (t == NULL)
            return 0;
        fakellm_chat_add(c, strcmp(r, "model") == 0 ? "assistant" : "user", t);
    }

    json_t *safety = field(root, "safetySettings", "safety_settings");
    if (safety != NULL && !json_is_array(safety)) {
        *rc = invalid(out, "Invalid value at 'safety_settings' (type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting), %s",
                      fakellm_json_type_name(safety));
        return 0;
    }
    size_t i;
    json_t *s;
    json_array_foreach(safety, i, s) {
        const char *cat = json_string_value(json_object_get(s, "category"));
        const char *thr = json_string_value(json_object_get(s, "threshold"));
        if (!one_of(cat, categories, sizeof(categories) / sizeof(categories[0]))) {
            *rc = invalid(out, "Invalid value at 'safety_settings[%zu].category' (type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory), \"%.60s\"",
                          i, cat ? cat : "");
            return 0;
        }
        if (!one_of(thr, thresholds, sizeof(thresholds) / sizeof(thresholds[0]))) {
            *rc = invalid(out, "Invalid value at 'safety_settings[%zu].threshold' (type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting.HarmBlockThreshold), \"%.60s\"",
                          i, thr ? thr : "");
            return 0;
        }
    }

    c->n = 1;
    json_t *cfg = field(root, "generationConfig", "generation_config");
    if (cfg == NULL || json_is_null(cfg))
        return 1;
    if (!json_is_object(cfg)) {
        *rc = invalid(out, "Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), %s",
                      fakellm_json_type_name(cfg));
        return 0;
    }
    if (!known_fields(cfg, config_fields, sizeof(config_fields) / sizeof(config_fields[0]), "generation_config", out,
                      rc) ||
        !number_in(cfg, "temperature", "temperature", 0, 2, out, rc) || !number_in(cfg, "topP", "top_p", 0, 1, out, rc) ||
        !int_in(cfg, "topK", "top_k", 1, 0, NULL, out, rc) || !int_in(cfg, "seed", "seed", -2147483648LL, 0, NULL, out, rc) ||
        !int_in(cfg, "maxOutputTokens", "max_output_tokens", 1, 0, &c->max_tokens, out, rc) ||
        !int_in(cfg, "candidateCount", "candidate_count", 1, MAX_CANDIDATES, &c->n, out, rc))
        return 0;
    json_t *stops = field(cfg, "stopSequences", "stop_sequences");
    if (stops != NULL && !json_is_null(stops)) {
        if (!json_is_array(stops) || json_array_size(stops) > MAX_STOPS) {
            *rc = invalid(out, "* GenerateContentRequest.generation_config.stop_sequences: at most %d stop sequences, "
                               "each a string.\n", MAX_STOPS);
            return 0;
        }
        json_array_foreach(stops, i, s) {
            if (!json_is_string(s)) {
                *rc = invalid(out, "Invalid value at 'generation_config.stop_sequences[%zu]' (TYPE_STRING), %s", i,
                              fakellm_json_type_name(s));
                return 0;
            }
            c->stops[c->n_stops++] = json_string_value(s);
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Response                                                                  */
/* ------------------------------------------------------------------------ */

/* The four ratings of a harmless text; with block, the harassment one HIGH and blocked. */
static json_t *ratings(int block)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < 4; i++) {
        json_t *r = block && i == 0 ? json_pack("{s:s,s:s,s:b}", "category", categories[i], "probability", "HIGH",
                                                "blocked", 1)
                                    : json_pack("{s:s,s:s}", "category", categories[i], "probability", "NEGLIGIBLE");
        if (r == NULL || json_array_append_new(a, r) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static int build_response(const fakellm_chat *c, const fakellm_ctx *ctx, fakellm_reply *out)
{
    uint64_t prompt = fakellm_chat_prompt_tokens(c), completion = 0;
    char rid[32];
    int rc = EMPQ_OK;
    json_t *root = NULL;

    fakellm_make_id(rid, sizeof(rid), "", 22, fakellm_mix64(ctx->request_id ^ fakellm_mix64(ctx->created)));
    if (ctx->mode == FAKELLM_MODE_REFUSAL) {
        if (ctx->request_id % 2 == 0)
            root = json_pack("{s:[{s:s,s:i,s:o}],s:{s:I,s:I},s:s,s:s}", "candidates", "finishReason", "SAFETY",
                             "index", 0, "safetyRatings", ratings(1), "usageMetadata", "promptTokenCount",
                             (json_int_t)prompt, "totalTokenCount", (json_int_t)prompt, "modelVersion", c->model,
                             "responseId", rid);
        else
            root = json_pack("{s:{s:s,s:o},s:{s:I,s:I},s:s,s:s}", "promptFeedback", "blockReason", "SAFETY",
                             "safetyRatings", ratings(1), "usageMetadata", "promptTokenCount", (json_int_t)prompt,
                             "totalTokenCount", (json_int_t)prompt, "modelVersion", c->model, "responseId", rid);
        rc = fakellm_reply_json(out, 200, root);
    } else {
        json_t *cands = json_array();
        for (long long i = 0; cands != NULL && i < c->n && rc == EMPQ_OK; i++) {
            fakellm_answer a;
            rc = fakellm_chat_answer(c, (unsigned)i, ctx->mode, &a);
            if (rc != EMPQ_OK)
                break;
            completion += a.tokens;
            json_t *content = ctx->mode == FAKELLM_MODE_EMPTY
                                  ? json_pack("{s:s}", "role", "model")
                                  : json_pack("{s:[{s:s}],s:s}", "parts", "text", a.text, "role", "model");
            json_t *cand = json_pack("{s:o,s:s,s:I,s:o}", "content", content, "finishReason",
                                     a.finish == FAKELLM_FINISH_LENGTH ? "MAX_TOKENS" : "STOP", "index", (json_int_t)i,
                                     "safetyRatings", ratings(0));
            fakellm_answer_clear(&a);
            if (cand == NULL || json_array_append_new(cands, cand) != 0)
                rc = EMPQ_ENOMEM;
        }
        if (cands == NULL)
            rc = EMPQ_ENOMEM;
        if (rc != EMPQ_OK) {
            json_decref(cands);
            return rc;
        }
        root = json_pack("{s:o,s:{s:I,s:I,s:I},s:s,s:s}", "candidates", cands, "usageMetadata", "promptTokenCount",
                         (json_int_t)prompt, "candidatesTokenCount", (json_int_t)completion, "totalTokenCount",
                         (json_int_t)(prompt + completion), "modelVersion", c->model, "responseId", rid);
        rc = fakellm_reply_json(out, 200, root);
    }
    if (rc == EMPQ_OK) {
        out->tokens = prompt + completion;
        free(out->model);
        out->model = strdup(c->model);
        if (out->model == NULL)
            rc = EMPQ_ENOMEM;
    }
    return rc;
}

int fakellm_gemini_generate(const char *body, size_t len, const fakellm_gemini_in *in, const fakellm_ctx *ctx,
                            fakellm_reply *out)
{
    json_error_t jerr;
    fakellm_chat c = {0};
    int rc = EMPQ_OK;
    json_t *root = NULL;

    if (in->require_key != NULL && (in->api_key == NULL || in->api_key[0] == '\0')) {
        rc = fakellm_gemini_error(out, 403, "PERMISSION_DENIED",
                                  "Method doesn't allow unregistered callers (callers without established identity). "
                                  "Please use API Key or other form of API consumer identity to call this API.");
    } else if (in->require_key != NULL && strcmp(in->api_key, in->require_key) != 0) {
        rc = key_invalid(out);
    } else {
        root = json_loadb(body, len, 0, &jerr);
        if (root == NULL) {
            rc = invalid(out, "Invalid JSON payload received. %s at line %d column %d.", jerr.text, jerr.line,
                         jerr.column);
        } else if (parse_request(root, &c, out, &rc)) {
            c.model = in->model;
            rc = build_response(&c, ctx, out);
        }
    }
    fakellm_chat_free(&c);
    json_decref(root);
    if (rc != EMPQ_OK)
        fakellm_reply_clear(out);
    return rc;
}

int fakellm_gemini_path_model(const char *path, char *out, size_t cap)
{
    static const char *const prefixes[] = {"/v1beta/models/", "/v1/models/"};
    static const char suffix[] = ":generateContent";
    for (size_t i = 0; i < 2; i++) {
        size_t p = strlen(prefixes[i]);
        if (strncmp(path, prefixes[i], p) != 0)
            continue;
        const char *m = path + p;
        size_t n = strlen(m), s = sizeof(suffix) - 1;
        if (n <= s || strcmp(m + n - s, suffix) != 0 || n - s >= cap || memchr(m, '/', n - s) != NULL)
            return 0;
        memcpy(out, m, n - s);
        out[n - s] = '\0';
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Server-raised errors                                                      */
/* ------------------------------------------------------------------------ */

static int gemini_fault(fakellm_reply *out, fakellm_errkind kind, const char *model, const fakellm_admit *a,
                        uint64_t request_id)
{
    (void)model;
    (void)request_id;
    if (kind == FAKELLM_ERR_500)
        return fakellm_gemini_error(out, 500, "INTERNAL",
                                    "An internal error has occurred. Please retry or report in "
                                    "https://developers.generativeai.google/guide/troubleshooting");
    if (kind == FAKELLM_ERR_503)
        return fakellm_gemini_error(out, 503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
    uint64_t ms = a && a->retry_after_ms ? a->retry_after_ms : 1000;
    char delay[32];
    snprintf(delay, sizeof(delay), "%us", fakellm_retry_seconds(ms));
    int rc = fakellm_reply_json(
        out, 429,
        json_pack("{s:{s:i,s:s,s:s,s:[{s:s,s:s}]}}", "error", "code", 429, "message",
                  "Resource has been exhausted (e.g. check quota).", "status", "RESOURCE_EXHAUSTED", "details",
                  "@type", "type.googleapis.com/google.rpc.RetryInfo", "retryDelay", delay));
    if (rc == EMPQ_OK)
        rc = fakellm_reply_header(out, "Retry-After", "%u", fakellm_retry_seconds(ms));
    return rc;
}

const fakellm_front fakellm_front_gemini = {"gemini", gemini_fault, NULL};
