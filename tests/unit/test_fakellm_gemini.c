/* test_fakellm_gemini.c: the Gemini generateContent format without HTTP:
 * the request's fields (contents, systemInstruction, generationConfig,
 * safetySettings; camelCase and snake_case), the response's exact fields,
 * MAX_TOKENS and stop sequences, both safety-block shapes, the empty reply,
 * every error in the google.rpc.Status shape (key, JSON, unknown names,
 * ranges, roles), the server-raised 429/500/503, and the path parser;
 * thinkingConfig (thought parts, thoughtsTokenCount, MAX_TOKENS inside
 * thinking), the safety fault honouring safetySettings, the null and
 * thinking-only modes, and the per-day quota error. */
#include <jansson.h>

#include "check.h"
#include "gemini.h"
#include "style.h"

static const fakellm_ctx ctx = {.created = 1700000000, .request_id = 8};
static const fakellm_gemini_in in = {.model = "fake-warm"};

static json_t *run_in(const char *body, const fakellm_gemini_in *i, const fakellm_ctx *c, unsigned *status)
{
    fakellm_reply r = {0};
    CHECK_INT(fakellm_gemini_generate(body, strlen(body), i, c, &r), EMPQ_OK);
    *status = r.status;
    CHECK_STR(r.content_type, "application/json");
    json_t *doc = json_loadb(r.body.data, r.body.len, 0, NULL);
    if (doc == NULL)
        fprintf(stderr, "not JSON: %s\n", r.body.data);
    CHECK(doc != NULL);
    if (r.status == 200) {
        CHECK_STR(r.model, i->model);
        CHECK(r.tokens > 0);
    } else {
        CHECK(r.model == NULL);
    }
    fakellm_reply_clear(&r);
    return doc;
}

static json_t *run(const char *body, unsigned *status) { return run_in(body, &in, &ctx, status); }

static void keys_are(json_t *o, const char *const *keys, size_t n)
{
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(o, key, v) {
        CHECK(i < n);
        if (i < n)
            CHECK_STR(key, keys[i]);
        i++;
    }
    CHECK_INT(i, n);
}

static void expect_error(const char *body, unsigned want_status, const char *want_rpc, const char *want_msg)
{
    unsigned status = 0;
    json_t *doc = run(body, &status);
    CHECK_INT(status, want_status);
    static const char *const top[] = {"error"};
    keys_are(doc, top, 1);
    json_t *e = json_object_get(doc, "error");
    CHECK_INT(json_integer_value(json_object_get(e, "code")), want_status);
    CHECK_STR(json_string_value(json_object_get(e, "status")), want_rpc);
    CHECK_CONTAINS(json_string_value(json_object_get(e, "message")), want_msg);
    json_decref(doc);
}

static const char *text_of(json_t *doc, size_t i)
{
    json_t *c = json_array_get(json_object_get(doc, "candidates"), i);
    return json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(c, "content"), "parts"), 0),
                                             "text"));
}

static json_int_t usage(json_t *doc, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(doc, "usageMetadata"), k));
}

static void test_shape(void)
{
    unsigned status = 0;
    json_t *doc = run("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"My dog died last week.\"}]}],"
                      "\"systemInstruction\":{\"parts\":[{\"text\":\"Be kind.\"}]},"
                      "\"generationConfig\":{\"temperature\":0.7,\"topP\":0.9,\"maxOutputTokens\":1000,"
                      "\"stopSequences\":[\"###\"],\"seed\":42},"
                      "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"BLOCK_NONE\"}]}",
                      &status);
    CHECK_INT(status, 200);
    static const char *const top[] = {"candidates", "usageMetadata", "modelVersion", "responseId"};
    keys_are(doc, top, 4);
    json_t *cands = json_object_get(doc, "candidates");
    CHECK_INT(json_array_size(cands), 1);
    json_t *c0 = json_array_get(cands, 0);
    static const char *const cand[] = {"content", "finishReason", "index", "safetyRatings"};
    keys_are(c0, cand, 4);
    json_t *content = json_object_get(c0, "content");
    static const char *const ck[] = {"parts", "role"};
    keys_are(content, ck, 2);
    CHECK_STR(json_string_value(json_object_get(content, "role")), "model");
    CHECK_INT(json_array_size(json_object_get(content, "parts")), 1);
    CHECK_STR(json_string_value(json_object_get(c0, "finishReason")), "STOP");
    CHECK_INT(json_integer_value(json_object_get(c0, "index")), 0);
    json_t *ratings = json_object_get(c0, "safetyRatings");
    CHECK_INT(json_array_size(ratings), 4);
    CHECK_STR(json_string_value(json_object_get(json_array_get(ratings, 0), "category")), "HARM_CATEGORY_HARASSMENT");
    CHECK_STR(json_string_value(json_object_get(json_array_get(ratings, 0), "probability")), "NEGLIGIBLE");
    CHECK_STR(json_string_value(json_object_get(doc, "modelVersion")), "fake-warm");
    CHECK(strlen(json_string_value(json_object_get(doc, "responseId"))) == 22);

    /* The text is the style reply for (system, user); tokens are words. */
    fakellm_msg msgs[2] = {{"system", "Be kind."}, {"user", "My dog died last week."}};
    empq_buf want = {0};
    CHECK_INT(fakellm_style_reply("fake-warm", msgs, 2, 0, &want), EMPQ_OK);
    CHECK_STR(text_of(doc, 0), want.data);
    static const char *const uk[] = {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"};
    keys_are(json_object_get(doc, "usageMetadata"), uk, 3);
    CHECK_INT(usage(doc, "promptTokenCount"), 18);
    CHECK_INT(usage(doc, "candidatesTokenCount"), (json_int_t)fakellm_count_words(want.data));
    CHECK_INT(usage(doc, "totalTokenCount"), usage(doc, "promptTokenCount") + usage(doc, "candidatesTokenCount"));
    json_decref(doc);

    /* snake_case names, a "model" turn, several parts joined, no role. */
    doc = run("{\"contents\":[{\"parts\":[{\"text\":\"My dog\"},{\"text\":\"died last week.\"}]},"
              "{\"role\":\"model\",\"parts\":[{\"text\":\"Oh no.\"}]},{\"role\":\"user\",\"parts\":[{\"text\":\"Yes.\"}]}],"
              "\"system_instruction\":{\"parts\":[{\"text\":\"Be kind.\"}]},"
              "\"generation_config\":{\"max_output_tokens\":3,\"candidate_count\":2}}",
              &status);
    CHECK_INT(status, 200);
    CHECK_INT(json_array_size(json_object_get(doc, "candidates")), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *c = json_array_get(json_object_get(doc, "candidates"), i);
        CHECK_STR(json_string_value(json_object_get(c, "finishReason")), "MAX_TOKENS");
        CHECK_INT(json_integer_value(json_object_get(c, "index")), (json_int_t)i);
        CHECK_INT(fakellm_count_words(text_of(doc, i)), 3);
    }
    CHECK_INT(usage(doc, "candidatesTokenCount"), 6);
    json_decref(doc);

    /* A stop sequence cuts before it, finishReason STOP. */
    const char *cut = want.data + strlen(want.data) / 2;
    char stop[8] = {0};
    memcpy(stop, cut, 3);
    char body[512];
    snprintf(body, sizeof(body),
             "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"My dog died last week.\"}]}],"
             "\"systemInstruction\":{\"parts\":[{\"text\":\"Be kind.\"}]},"
             "\"generationConfig\":{\"stopSequences\":[\"%s\"]}}",
             stop);
    doc = run(body, &status);
    CHECK_INT(status, 200);
    CHECK(strlen(text_of(doc, 0)) <= (size_t)(cut - want.data));
    CHECK(strstr(text_of(doc, 0), stop) == NULL);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(doc, "candidates"), 0), "finishReason")),
              "STOP");
    json_decref(doc);
    empq_buf_free(&want);
}

static void test_modes(void)
{
    const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Help me.\"}]}]}";
    unsigned status = 0;
    fakellm_ctx c = ctx;

    /* Refusal, even request id: the candidate blocked with finishReason SAFETY. */
    c.mode = FAKELLM_MODE_REFUSAL;
    c.request_id = 10;
    json_t *doc = run_in(body, &in, &c, &status);
    CHECK_INT(status, 200);
    json_t *c0 = json_array_get(json_object_get(doc, "candidates"), 0);
    static const char *const blocked[] = {"finishReason", "index", "safetyRatings"};
    keys_are(c0, blocked, 3);
    CHECK_STR(json_string_value(json_object_get(c0, "finishReason")), "SAFETY");
    json_t *r0 = json_array_get(json_object_get(c0, "safetyRatings"), 0);
    CHECK_STR(json_string_value(json_object_get(r0, "probability")), "HIGH");
    CHECK(json_is_true(json_object_get(r0, "blocked")));
    CHECK(json_object_get(json_object_get(doc, "usageMetadata"), "candidatesTokenCount") == NULL);
    CHECK_INT(usage(doc, "totalTokenCount"), usage(doc, "promptTokenCount"));
    json_decref(doc);

    /* Refusal, odd request id: the prompt blocked, no candidates. */
    c.request_id = 11;
    doc = run_in(body, &in, &c, &status);
    CHECK_INT(status, 200);
    CHECK(json_object_get(doc, "candidates") == NULL);
    json_t *fb = json_object_get(doc, "promptFeedback");
    CHECK_STR(json_string_value(json_object_get(fb, "blockReason")), "SAFETY");
    CHECK_INT(json_array_size(json_object_get(fb, "safetyRatings")), 4);
    json_decref(doc);

    /* Empty: content without parts. */
    c.mode = FAKELLM_MODE_EMPTY;
    doc = run_in(body, &in, &c, &status);
    c0 = json_array_get(json_object_get(doc, "candidates"), 0);
    json_t *content = json_object_get(c0, "content");
    static const char *const role_only[] = {"role"};
    keys_are(content, role_only, 1);
    CHECK_STR(json_string_value(json_object_get(c0, "finishReason")), "STOP");
    CHECK_INT(usage(doc, "candidatesTokenCount"), 0);
    json_decref(doc);

    /* Huge: the pad marker inside the text. */
    c.mode = FAKELLM_MODE_HUGE;
    fakellm_reply r = {0};
    CHECK_INT(fakellm_gemini_generate(body, strlen(body), &in, &c, &r), EMPQ_OK);
    CHECK_INT(fakellm_reply_mark_pad(&r, 10), 1);
    fakellm_reply_clear(&r);
}

static void test_errors(void)
{
    expect_error("{not json", 400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    expect_error("{}", 400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified");
    expect_error("{\"contents\":[]}", 400, "INVALID_ARGUMENT", "contents is not specified");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],\"messages\":[]}", 400,
                 "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"messages\": Cannot find field.");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                 "\"generationConfig\":{\"max_tokens\":5}}",
                 400, "INVALID_ARGUMENT",
                 "Unknown name \"max_tokens\" at 'generation_config': Cannot find field.");
    expect_error("{\"contents\":[{\"role\":\"assistant\",\"parts\":[{\"text\":\"hi\"}]}]}", 400, "INVALID_ARGUMENT",
                 "Please use a valid role: user, model.");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[]}]}", 400, "INVALID_ARGUMENT",
                 "contents.parts must not be empty");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                 "\"generationConfig\":{\"temperature\":2.5}}",
                 400, "INVALID_ARGUMENT", "generation_config.temperature");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                 "\"generationConfig\":{\"maxOutputTokens\":0}}",
                 400, "INVALID_ARGUMENT", "max_output_tokens");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                 "\"generationConfig\":{\"stopSequences\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]}}",
                 400, "INVALID_ARGUMENT", "stop_sequences");
    expect_error("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                 "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_NICE\",\"threshold\":\"BLOCK_NONE\"}]}",
                 400, "INVALID_ARGUMENT", "Invalid value at 'safety_settings[0].category'");

    /* Keys. */
    const char *body = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}";
    unsigned status = 0;
    fakellm_gemini_in k = {.model = "fake-warm", .require_key = "AIzaTest123456"};
    json_t *doc = run_in(body, &k, &ctx, &status);
    CHECK_INT(status, 403);
    CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "error"), "status")), "PERMISSION_DENIED");
    json_decref(doc);
    k.api_key = "AIzaWrong";
    doc = run_in(body, &k, &ctx, &status);
    CHECK_INT(status, 400);
    json_t *e = json_object_get(doc, "error");
    CHECK_STR(json_string_value(json_object_get(e, "message")), "API key not valid. Please pass a valid API key.");
    CHECK_STR(json_string_value(json_object_get(e, "status")), "INVALID_ARGUMENT");
    json_t *d0 = json_array_get(json_object_get(e, "details"), 0);
    CHECK_STR(json_string_value(json_object_get(d0, "@type")), "type.googleapis.com/google.rpc.ErrorInfo");
    CHECK_STR(json_string_value(json_object_get(d0, "reason")), "API_KEY_INVALID");
    json_decref(doc);
    k.api_key = "AIzaTest123456";
    doc = run_in(body, &k, &ctx, &status);
    CHECK_INT(status, 200);
    json_decref(doc);
}

static void test_server_errors(void)
{
    fakellm_reply r = {0};
    fakellm_admit a = {.which = "requests", .limit = 10, .used = 10, .requested = 1, .retry_after_ms = 4500};
    CHECK_INT(fakellm_front_gemini.error(&r, FAKELLM_ERR_LIMIT, "fake-warm", &a, 1), EMPQ_OK);
    CHECK_INT(r.status, 429);
    CHECK_STR(r.body.data, "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota).\","
                           "\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":"
                           "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"5s\"}]}}");
    CHECK_STR(fakellm_reply_get_header(&r, "Retry-After"), "5");
    CHECK_INT(fakellm_front_gemini.error(&r, FAKELLM_ERR_500, "fake-warm", NULL, 1), EMPQ_OK);
    CHECK_INT(r.status, 500);
    CHECK_CONTAINS(r.body.data, "\"status\":\"INTERNAL\"");
    CHECK_INT(fakellm_front_gemini.error(&r, FAKELLM_ERR_503, "fake-warm", NULL, 1), EMPQ_OK);
    CHECK_INT(r.status, 503);
    CHECK_STR(r.body.data, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\","
                           "\"status\":\"UNAVAILABLE\"}}");
    CHECK(fakellm_front_gemini.headers == NULL);
    fakellm_reply_clear(&r);
}

static void test_path(void)
{
    char m[64];
    CHECK_INT(fakellm_gemini_path_model("/v1beta/models/gemini-2.0-flash:generateContent", m, sizeof(m)), 1);
    CHECK_STR(m, "gemini-2.0-flash");
    CHECK_INT(fakellm_gemini_path_model("/v1/models/fake-warm:generateContent", m, sizeof(m)), 1);
    CHECK_STR(m, "fake-warm");
    CHECK_INT(fakellm_gemini_path_model("/v1beta/models/:generateContent", m, sizeof(m)), 0);
    CHECK_INT(fakellm_gemini_path_model("/v1beta/models/x:streamGenerateContent", m, sizeof(m)), 0);
    CHECK_INT(fakellm_gemini_path_model("/v1beta/models/a/b:generateContent", m, sizeof(m)), 0);
    CHECK_INT(fakellm_gemini_path_model("/v2/models/x:generateContent", m, sizeof(m)), 0);
    CHECK_INT(fakellm_gemini_path_model("/v1beta/models/longer-than-sixteen:generateContent", m, 16), 0);
    CHECK_INT(fakellm_gemini_path_model("/v1beta/models/fits-in-16:generateContent", m, 16), 1);
}

static void test_thinking_and_safety(void)
{
#define GBODY(cfg) "{\"contents\":[{\"parts\":[{\"text\":\"My dog died last week.\"}]}]" cfg "}"
    unsigned status = 0;
    /* thinkingBudget with includeThoughts: a thought part before the answer, counted apart. */
    json_t *doc = run(GBODY(",\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":300,"
                            "\"includeThoughts\":true}}"), &status);
    CHECK_INT(status, 200);
    json_t *parts = json_object_get(json_object_get(json_array_get(json_object_get(doc, "candidates"), 0), "content"),
                                    "parts");
    CHECK_INT(json_array_size(parts), 2);
    CHECK(json_is_true(json_object_get(json_array_get(parts, 0), "thought")));
    CHECK(json_object_get(json_array_get(parts, 1), "thought") == NULL);
    size_t words = fakellm_count_words(json_string_value(json_object_get(json_array_get(parts, 1), "text")));
    CHECK_INT(usage(doc, "thoughtsTokenCount"), 300);
    CHECK_INT(usage(doc, "candidatesTokenCount"), (json_int_t)words);
    CHECK_INT(usage(doc, "totalTokenCount"), usage(doc, "promptTokenCount") + (json_int_t)words + 300);
    json_decref(doc);
    /* Without includeThoughts: counted, not shown. A fake-reason* model thinks 256 by default. */
    fakellm_gemini_in reason = {.model = "fake-reason-g"};
    doc = run_in(GBODY(""), &reason, &ctx, &status);
    CHECK_INT(usage(doc, "thoughtsTokenCount"), 256);
    json_t *first = json_array_get(
        json_object_get(json_object_get(json_array_get(json_object_get(doc, "candidates"), 0), "content"), "parts"), 0);
    CHECK(first != NULL && json_object_get(first, "thought") == NULL);
    CHECK(text_of(doc, 0) != NULL && text_of(doc, 0)[0] != '\0');
    json_decref(doc);
    /* Thoughts inside maxOutputTokens: no text, MAX_TOKENS. */
    doc = run(GBODY(",\"generationConfig\":{\"maxOutputTokens\":100,\"thinkingConfig\":{\"thinkingBudget\":300}}"),
              &status);
    json_t *cand = json_array_get(json_object_get(doc, "candidates"), 0);
    CHECK_STR(json_string_value(json_object_get(cand, "finishReason")), "MAX_TOKENS");
    CHECK(json_object_get(json_object_get(cand, "content"), "parts") == NULL);
    CHECK_INT(usage(doc, "thoughtsTokenCount"), 100);
    json_decref(doc);
    /* No thinking, no thoughtsTokenCount (as the API omits it). */
    doc = run(GBODY(""), &status);
    CHECK(json_object_get(json_object_get(doc, "usageMetadata"), "thoughtsTokenCount") == NULL);
    json_decref(doc);
    expect_error(GBODY(",\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":-5}}"), 400,
                 "INVALID_ARGUMENT", "The thinking budget -5 is invalid");
    expect_error(GBODY(",\"generationConfig\":{\"thinkingConfig\":{\"budget\":5}}"), 400, "INVALID_ARGUMENT",
                 "Unknown name \"budget\" at 'generation_config.thinking_config'");

    /* The safety fault honours safetySettings. */
    fakellm_ctx c = ctx;
    c.mode = FAKELLM_MODE_SAFETY;
    doc = run_in(GBODY(""), &in, &c, &status);
    cand = json_array_get(json_object_get(doc, "candidates"), 0);
    CHECK_STR(json_string_value(json_object_get(cand, "finishReason")), "SAFETY");
    CHECK(json_object_get(cand, "content") == NULL);
    json_t *rt = json_array_get(json_object_get(cand, "safetyRatings"), 0);
    CHECK_STR(json_string_value(json_object_get(rt, "category")), "HARM_CATEGORY_HARASSMENT");
    CHECK(json_is_true(json_object_get(rt, "blocked")));
    json_decref(doc);
    doc = run_in(GBODY(",\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"OFF\"}]"),
                 &in, &c, &status);
    rt = json_array_get(json_object_get(json_array_get(json_object_get(doc, "candidates"), 0), "safetyRatings"), 1);
    CHECK_STR(json_string_value(json_object_get(rt, "category")), "HARM_CATEGORY_HATE_SPEECH");
    CHECK(json_is_true(json_object_get(rt, "blocked")));
    json_decref(doc);
    doc = run_in(GBODY(",\"safetySettings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"OFF\"},"
                       "{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"threshold\":\"BLOCK_NONE\"},"
                       "{\"category\":\"HARM_CATEGORY_SEXUALLY_EXPLICIT\",\"threshold\":\"BLOCK_NONE\"},"
                       "{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"threshold\":\"OFF\"}]"),
                 &in, &c, &status);
    cand = json_array_get(json_object_get(doc, "candidates"), 0);
    CHECK_STR(json_string_value(json_object_get(cand, "finishReason")), "STOP");
    CHECK(text_of(doc, 0) != NULL && text_of(doc, 0)[0] != '\0');
    json_decref(doc);

    /* null: a candidate without content; thinking-only with includeThoughts: only the thought part. */
    c.mode = FAKELLM_MODE_NUL;
    doc = run_in(GBODY(""), &in, &c, &status);
    cand = json_array_get(json_object_get(doc, "candidates"), 0);
    CHECK(json_object_get(cand, "content") == NULL);
    CHECK_STR(json_string_value(json_object_get(cand, "finishReason")), "STOP");
    json_decref(doc);
    c.mode = FAKELLM_MODE_THINKING_ONLY;
    doc = run_in(GBODY(",\"generationConfig\":{\"thinkingConfig\":{\"includeThoughts\":true}}"), &in, &c, &status);
    parts = json_object_get(json_object_get(json_array_get(json_object_get(doc, "candidates"), 0), "content"), "parts");
    CHECK_INT(json_array_size(parts), 1);
    CHECK(json_is_true(json_object_get(json_array_get(parts, 0), "thought")));
    CHECK_INT(usage(doc, "thoughtsTokenCount"), FAKELLM_THINK_DEFAULT);
    CHECK_INT(usage(doc, "candidatesTokenCount"), 0);
    json_decref(doc);

    /* The per-day quota error. */
    fakellm_reply r = {0};
    CHECK_INT(fakellm_front_gemini.error(&r, FAKELLM_ERR_QUOTA, "fake-warm", NULL, 1), EMPQ_OK);
    CHECK_INT(r.status, 429);
    CHECK_CONTAINS(r.body.data, "\"status\":\"RESOURCE_EXHAUSTED\"");
    CHECK_CONTAINS(r.body.data, "type.googleapis.com/google.rpc.QuotaFailure");
    CHECK_CONTAINS(r.body.data, "GenerateRequestsPerDayPerProjectPerModel");
    CHECK_CONTAINS(r.body.data, "\"retryDelay\":");
    fakellm_reply_clear(&r);
#undef GBODY
}

int main(void)
{
    RUN(test_shape);
    RUN(test_modes);
    RUN(test_errors);
    RUN(test_server_errors);
    RUN(test_path);
    RUN(test_thinking_and_safety);
    CHECK_DONE();
}
