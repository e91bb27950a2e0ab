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
#define MAX_THINKING_BUDGET 32768
#define DYNAMIC_THINKING 256 /* thoughts of thinkingBudget -1 and of thinking models by default */
#define RATED 4              /* categories rated on every candidate (the first four) */

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
static const char *const thinking_fields[] = {"thinkingBudget", "thinking_budget", "includeThoughts",
                                              "include_thoughts", "thinkingLevel", "thinking_level"};
static const struct {
    const char *name;
    long long tokens;
} levels[] = {{"THINKING_LEVEL_UNSPECIFIED", DYNAMIC_THINKING}, {"MINIMAL", 0}, {"LOW", 64}, {"MEDIUM", 256},
              {"HIGH", 1024}};

/* What a request asks besides the chat. */
typedef struct extras {
    int include_thoughts;
    unsigned off; /* bit i: categories[i] set to BLOCK_NONE or OFF (never blocked) */
} extras;

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

/* Reads generationConfig.thinkingConfig (cfg may be NULL) into c->reasoning
 * and x. Returns 1, or 0 after filling out. */
static int parse_thinking(json_t *cfg, const char *model, fakellm_chat *c, extras *x, fakellm_reply *out, int *rc)
{
    json_t *tc = cfg ? field(cfg, "thinkingConfig", "thinking_config") : NULL;
    c->reasoning = strncmp(model, "fake-reason", 11) == 0 ? DYNAMIC_THINKING : 0;
    if (tc == NULL || json_is_null(tc))
        return 1;
    if (!json_is_object(tc)) {
        *rc = invalid(out, "Invalid value at 'generation_config.thinking_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig), %s",
                      fakellm_json_type_name(tc));
        return 0;
    }
    if (!known_fields(tc, thinking_fields, sizeof(thinking_fields) / sizeof(thinking_fields[0]),
                      "generation_config.thinking_config", out, rc))
        return 0;
    json_t *inc = field(tc, "includeThoughts", "include_thoughts");
    if (inc != NULL && !json_is_boolean(inc)) {
        *rc = invalid(out, "Invalid value at 'generation_config.thinking_config.include_thoughts' (TYPE_BOOL), %s",
                      fakellm_json_type_name(inc));
        return 0;
    }
    x->include_thoughts = json_is_true(inc);
    json_t *lvl = field(tc, "thinkingLevel", "thinking_level");
    if (lvl != NULL && !json_is_null(lvl)) {
        size_t i, n = sizeof(levels) / sizeof(levels[0]);
        for (i = 0; json_is_string(lvl) && i < n; i++)
            if (strcmp(json_string_value(lvl), levels[i].name) == 0)
                break;
        if (!json_is_string(lvl) || i == n) {
            *rc = invalid(out, "Invalid value at 'generation_config.thinking_config.thinking_level' (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), \"%.40s\"",
                          json_is_string(lvl) ? json_string_value(lvl) : "");
            return 0;
        }
        c->reasoning = levels[i].tokens;
    }
    json_t *b = field(tc, "thinkingBudget", "thinking_budget");
    if (b != NULL && !json_is_null(b)) {
        if (!json_is_integer(b)) {
            *rc = invalid(out, "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), %s",
                          fakellm_json_type_name(b));
            return 0;
        }
        long long v = (long long)json_integer_value(b);
        if (v < -1 || v > MAX_THINKING_BUDGET) {
            *rc = invalid(out, "The thinking budget %lld is invalid. Please choose a value between 0 and %d, or -1 "
                               "for a dynamic budget.",
                          v, MAX_THINKING_BUDGET);
            return 0;
        }
        c->reasoning = v == -1 ? DYNAMIC_THINKING : v;
    }
    return 1;
}

static int parse_request(json_t *root, const char *model, fakellm_chat *c, extras *x, fakellm_reply *out, int *rc)
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
        for (size_t k = 0; k < RATED; k++)
            if (strcmp(cat, categories[k]) == 0 && (strcmp(thr, "BLOCK_NONE") == 0 || strcmp(thr, "OFF") == 0))
                x->off |= 1u << k;
    }

    c->n = 1;
    json_t *cfg = field(root, "generationConfig", "generation_config");
    if (cfg == NULL || json_is_null(cfg))
        return parse_thinking(NULL, model, c, x, out, rc);
    if (!json_is_object(cfg)) {
        *rc = invalid(out, "Invalid value at 'generation_config' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig), %s",
                      fakellm_json_type_name(cfg));
        return 0;
    }
    if (!known_fields(cfg, config_fields, sizeof(config_fields) / sizeof(config_fields[0]), "generation_config", out,
                      rc) ||
        !number_in(cfg, "temperature", "temperature", 0, 2, out, rc) || !number_in(cfg, "topP", "top_p", 0, 1, out, rc) ||
        !int_in(cfg, "topK", "top_k", 1, 0, NULL, out, rc) || !int_in(cfg, "seed", "seed", -2147483648LL, 0, &c->seed, out, rc) ||
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
    return parse_thinking(cfg, model, c, x, out, rc);
}

/* ------------------------------------------------------------------------ */
/* Response                                                                  */
/* ------------------------------------------------------------------------ */

/* The four ratings of a harmless text; with block >= 0, categories[block]
 * HIGH and blocked. */
static json_t *ratings(int block)
{
    json_t *a = json_array();
    for (int i = 0; a != NULL && i < RATED; i++) {
        json_t *r = block == i ? json_pack("{s:s,s:s,s:b}", "category", categories[i], "probability", "HIGH",
                                                "blocked", 1)
                                    : json_pack("{s:s,s:s}", "category", categories[i], "probability", "NEGLIGIBLE");
        if (r == NULL || json_array_append_new(a, r) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The first rated category the request did not turn off, or -1. */
static int category_to_block(const extras *x)
{
    for (int k = 0; k < RATED; k++)
        if ((x->off & (1u << k)) == 0)
            return k;
    return -1;
}

/* A candidate's content: a thought part (includeThoughts and reasoning),
 * then the text unless there is none; {"role": "model"} without parts when
 * both are missing. NULL when out of memory. */
static json_t *candidate_content(const fakellm_chat *c, unsigned i, const fakellm_answer *a, fakellm_mode mode,
                                 const extras *x)
{
    json_t *parts = json_array();
    if (parts == NULL)
        return NULL;
    if (x->include_thoughts && a->reasoning > 0) {
        char *t = fakellm_chat_thinking(c, i);
        json_t *p = t ? json_pack("{s:s,s:b}", "text", t, "thought", 1) : NULL;
        free(t);
        if (p == NULL || json_array_append_new(parts, p) != 0) {
            json_decref(parts);
            return NULL;
        }
    }
    int text = mode != FAKELLM_MODE_EMPTY && mode != FAKELLM_MODE_THINKING_ONLY &&
               mode != FAKELLM_MODE_LENGTH_EMPTY && a->text[0] != '\0';
    if (text && json_array_append_new(parts, json_pack("{s:s}", "text", a->text)) != 0) {
        json_decref(parts);
        return NULL;
    }
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return json_pack("{s:s}", "role", "model");
    }
    return json_pack("{s:o,s:s}", "parts", parts, "role", "model");
}

/* Candidate i; adds its text and thought tokens. NULL when out of memory. */
static json_t *candidate(const fakellm_chat *c, const fakellm_ctx *ctx, const extras *x, unsigned i,
                         uint64_t *completion, uint64_t *thoughts, int *rc)
{
    fakellm_mode mode = ctx->mode;
    int block = mode == FAKELLM_MODE_SAFETY ? category_to_block(x) : -1;
    if (mode == FAKELLM_MODE_SAFETY && block < 0)
        mode = FAKELLM_MODE_NORMAL; /* every rated category is off: nothing to block */
    if (mode == FAKELLM_MODE_SAFETY)
        return json_pack("{s:s,s:I,s:o}", "finishReason", "SAFETY", "index", (json_int_t)i, "safetyRatings",
                         ratings(block));
    fakellm_answer a;
    *rc = fakellm_chat_answer(c, i, mode, &a);
    if (*rc != EMPQ_OK)
        return NULL;
    *completion += a.tokens;
    *thoughts += a.reasoning;
    const char *finish = a.finish == FAKELLM_FINISH_LENGTH ? "MAX_TOKENS" : "STOP";
    json_t *cand = mode == FAKELLM_MODE_NUL
                       ? json_pack("{s:s,s:I,s:o}", "finishReason", finish, "index", (json_int_t)i, "safetyRatings",
                                   ratings(-1))
                       : json_pack("{s:o,s:s,s:I,s:o}", "content", candidate_content(c, i, &a, mode, x),
                                   "finishReason", finish, "index", (json_int_t)i, "safetyRatings", ratings(-1));
    fakellm_answer_clear(&a);
    return cand;
}

static int build_response(const fakellm_chat *c, const extras *x, const fakellm_ctx *ctx, fakellm_reply *out)
{
    uint64_t prompt = fakellm_chat_prompt_tokens(c), completion = 0, thoughts = 0;
    char rid[32];
    int rc = EMPQ_OK;
    json_t *root = NULL;

    fakellm_make_id(rid, sizeof(rid), "", 22, fakellm_mix64(ctx->request_id ^ fakellm_mix64(ctx->created)));
    if (ctx->mode == FAKELLM_MODE_REFUSAL) {
        if (ctx->request_id % 2 == 0)
            root = json_pack("{s:[{s:s,s:i,s:o}],s:{s:I,s:I},s:s,s:s}", "candidates", "finishReason", "SAFETY",
                             "index", 0, "safetyRatings", ratings(0), "usageMetadata", "promptTokenCount",
                             (json_int_t)prompt, "totalTokenCount", (json_int_t)prompt, "modelVersion", c->model,
                             "responseId", rid);
        else
            root = json_pack("{s:{s:s,s:o},s:{s:I,s:I},s:s,s:s}", "promptFeedback", "blockReason", "SAFETY",
                             "safetyRatings", ratings(0), "usageMetadata", "promptTokenCount", (json_int_t)prompt,
                             "totalTokenCount", (json_int_t)prompt, "modelVersion", c->model, "responseId", rid);
        rc = fakellm_reply_json(out, 200, root);
    } else {
        json_t *cands = json_array();
        for (long long i = 0; cands != NULL && i < c->n && rc == EMPQ_OK; i++) {
            json_t *cand = candidate(c, ctx, x, (unsigned)i, &completion, &thoughts, &rc);
            if (rc == EMPQ_OK && (cand == NULL || json_array_append_new(cands, cand) != 0))
                rc = EMPQ_ENOMEM;
        }
        if (cands == NULL)
            rc = EMPQ_ENOMEM;
        if (rc != EMPQ_OK) {
            json_decref(cands);
            return rc;
        }
        json_t *usage = json_pack("{s:I,s:I,s:I}", "promptTokenCount", (json_int_t)prompt, "candidatesTokenCount",
                                  (json_int_t)completion, "totalTokenCount",
                                  (json_int_t)(prompt + completion + thoughts));
        if (usage != NULL && thoughts > 0 &&
            json_object_set_new(usage, "thoughtsTokenCount", json_integer((json_int_t)thoughts)) != 0) {
            json_decref(usage);
            usage = NULL;
        }
        root = json_pack("{s:o,s:o,s:s,s:s}", "candidates", cands, "usageMetadata", usage, "modelVersion", c->model,
                         "responseId", rid);
        rc = fakellm_reply_json(out, 200, root);
    }
    if (rc == EMPQ_OK) {
        out->tokens = prompt + completion + thoughts;
        free(out->model);
        out->model = strdup(c->model);
        if (out->model == NULL)
            rc = EMPQ_ENOMEM;
    }
    return rc;
}

int fakellm_gemini_auth(const char *api_key, const char *require_key, fakellm_reply *out, int *rc)
{
    if (require_key != NULL && (api_key == NULL || api_key[0] == '\0')) {
        *rc = fakellm_gemini_error(out, 403, "PERMISSION_DENIED",
                                   "Method doesn't allow unregistered callers (callers without established identity). "
                                   "Please use API Key or other form of API consumer identity to call this API.");
        return 0;
    }
    if (require_key != NULL && strcmp(api_key, require_key) != 0) {
        *rc = key_invalid(out);
        return 0;
    }
    return 1;
}

int fakellm_gemini_generate(const char *body, size_t len, const fakellm_gemini_in *in, const fakellm_ctx *ctx,
                            fakellm_reply *out)
{
    json_error_t jerr;
    fakellm_chat c = {0};
    extras x = {0};
    int rc = EMPQ_OK;
    json_t *root = NULL;

    if (fakellm_gemini_auth(in->api_key, in->require_key, out, &rc)) {
        root = json_loadb(body, len, 0, &jerr);
        if (root == NULL) {
            rc = invalid(out, "Invalid JSON payload received. %s at line %d column %d.", jerr.text, jerr.line,
                         jerr.column);
        } else if (parse_request(root, in->model, &c, &x, out, &rc)) {
            c.model = in->model;
            rc = build_response(&c, &x, ctx, out);
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

/* The per-day quota exhausted: 429 RESOURCE_EXHAUSTED with a QuotaFailure
 * naming a per-day quota, the Help link and a RetryInfo whose delay is short
 * although the quota resets at midnight, as in real bodies (gemini.h). */
static int quota_error(fakellm_reply *out, const char *model)
{
    return fakellm_reply_json(
        out, 429,
        json_pack("{s:{s:i,s:s,s:s,s:[{s:s,s:[{s:s,s:s,s:{s:s,s:s},s:s}]},{s:s,s:[{s:s,s:s}]},{s:s,s:s}]}}",
                  "error", "code", 429, "message",
                  "You exceeded your current quota, please check your plan and billing details. For more "
                  "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
                  "status", "RESOURCE_EXHAUSTED", "details", "@type", "type.googleapis.com/google.rpc.QuotaFailure",
                  "violations", "quotaMetric", "generativelanguage.googleapis.com/generate_content_requests",
                  "quotaId", "GenerateRequestsPerDayPerProjectPerModel", "quotaDimensions", "location", "global",
                  "model", model ? model : "", "quotaValue", "0", "@type", "type.googleapis.com/google.rpc.Help",
                  "links", "description", "Learn more about Gemini API quotas", "url",
                  "https://ai.google.dev/gemini-api/docs/rate-limits", "@type",
                  "type.googleapis.com/google.rpc.RetryInfo", "retryDelay", "36s"));
}

static int gemini_fault(fakellm_reply *out, fakellm_errkind kind, const char *model, const fakellm_admit *a,
                        uint64_t request_id)
{
    (void)request_id;
    if (kind == FAKELLM_ERR_500)
        return fakellm_gemini_error(out, 500, "INTERNAL",
                                    "An internal error has occurred. Please retry or report in "
                                    "https://developers.generativeai.google/guide/troubleshooting");
    if (kind == FAKELLM_ERR_503)
        return fakellm_gemini_error(out, 503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
    if (kind == FAKELLM_ERR_QUOTA)
        return quota_error(out, model);
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
