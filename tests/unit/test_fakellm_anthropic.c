/* test_fakellm_anthropic.c: the Anthropic Messages format without HTTP:
 * the headers (x-api-key, anthropic-version), the request's fields (model,
 * max_tokens, system, messages, stop_sequences, ranges, extra inputs), the
 * response's exact fields and stop reasons, the refusal and empty replies,
 * the error shape with request_id, the server-raised 429/500/529 and the
 * anthropic-ratelimit-* headers; the current SDK's version and Bearer key,
 * thinking (blocks, counts, the 400s), cache tokens, the fault modes and the
 * billing error. */
#include <jansson.h>

#include "anthropic.h"
#include "check.h"
#include "style.h"

static const fakellm_ctx ctx = {.created = 1700000000, .request_id = 5};
static const fakellm_anthropic_in in = {.version = "2023-06-01"};

static json_t *run_in(const char *body, const fakellm_anthropic_in *i, const fakellm_ctx *c, unsigned *status)
{
    fakellm_reply r = {0};
    CHECK_INT(fakellm_anthropic_messages(body, strlen(body), i, c, &r), EMPQ_OK);
    *status = r.status;
    json_t *doc = json_loadb(r.body.data, r.body.len, 0, NULL);
    if (doc == NULL)
        fprintf(stderr, "not JSON: %s\n", r.body.data);
    CHECK(doc != NULL);
    if (r.status != 200) {
        /* Every error carries the request id in the body and the header. */
        const char *rid = json_string_value(json_object_get(doc, "request_id"));
        CHECK(rid != NULL && strncmp(rid, "req_011C", 8) == 0);
        CHECK_STR(fakellm_reply_get_header(&r, "request-id"), rid);
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

static void expect_error_in(const char *body, const fakellm_anthropic_in *i, unsigned want_status,
                            const char *want_type, const char *want_msg)
{
    unsigned status = 0;
    json_t *doc = run_in(body, i, &ctx, &status);
    CHECK_INT(status, want_status);
    static const char *const top[] = {"type", "error", "request_id"};
    keys_are(doc, top, 3);
    CHECK_STR(json_string_value(json_object_get(doc, "type")), "error");
    json_t *e = json_object_get(doc, "error");
    static const char *const ek[] = {"type", "message"};
    keys_are(e, ek, 2);
    CHECK_STR(json_string_value(json_object_get(e, "type")), want_type);
    CHECK_CONTAINS(json_string_value(json_object_get(e, "message")), want_msg);
    json_decref(doc);
}

static void expect_error(const char *body, const char *want_msg)
{
    expect_error_in(body, &in, 400, "invalid_request_error", want_msg);
}

static const char *text_of(json_t *doc)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(doc, "content"), 0), "text"));
}

static json_int_t usage(json_t *doc, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(doc, "usage"), k));
}

#define USER "\"messages\":[{\"role\":\"user\",\"content\":\"My dog died last week.\"}]"

static void test_shape(void)
{
    unsigned status = 0;
    json_t *doc = run("{\"model\":\"fake-formal\",\"max_tokens\":1024,\"system\":\"Be kind.\"," USER
                      ",\"temperature\":0.7,\"top_p\":0.9,\"stop_sequences\":[\"###\"],\"metadata\":{\"user_id\":\"u\"}}",
                      &status);
    CHECK_INT(status, 200);
    static const char *const top[] = {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"};
    keys_are(doc, top, 8);
    const char *id = json_string_value(json_object_get(doc, "id"));
    CHECK(strncmp(id, "msg_01", 6) == 0 && strlen(id) == 28);
    CHECK_STR(json_string_value(json_object_get(doc, "type")), "message");
    CHECK_STR(json_string_value(json_object_get(doc, "role")), "assistant");
    CHECK_STR(json_string_value(json_object_get(doc, "model")), "fake-formal");
    json_t *content = json_object_get(doc, "content");
    CHECK_INT(json_array_size(content), 1);
    static const char *const block[] = {"type", "text"};
    keys_are(json_array_get(content, 0), block, 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(content, 0), "type")), "text");
    CHECK_STR(json_string_value(json_object_get(doc, "stop_reason")), "end_turn");
    CHECK(json_is_null(json_object_get(doc, "stop_sequence")));
    static const char *const uk[] = {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                                     "output_tokens"};
    keys_are(json_object_get(doc, "usage"), uk, 4);

    fakellm_msg msgs[2] = {{"system", "Be kind."}, {"user", "My dog died last week."}};
    empq_buf want = {0};
    CHECK_INT(fakellm_style_reply("fake-formal", msgs, 2, 0, &want), EMPQ_OK);
    CHECK_STR(text_of(doc), want.data);
    CHECK_INT(usage(doc, "input_tokens"), 18);
    CHECK_INT(usage(doc, "output_tokens"), (json_int_t)fakellm_count_words(want.data));
    json_decref(doc);

    /* max_tokens cuts: stop_reason max_tokens. */
    doc = run("{\"model\":\"fake-formal\",\"max_tokens\":4,\"system\":\"Be kind.\"," USER "}", &status);
    CHECK_STR(json_string_value(json_object_get(doc, "stop_reason")), "max_tokens");
    CHECK_INT(usage(doc, "output_tokens"), 4);
    CHECK_INT(fakellm_count_words(text_of(doc)), 4);
    json_decref(doc);

    /* A stop sequence: stop_reason stop_sequence, stop_sequence names it. */
    char stop[8] = {0}, body[512];
    memcpy(stop, want.data + 20, 3);
    snprintf(body, sizeof(body),
             "{\"model\":\"fake-formal\",\"max_tokens\":1024,\"system\":[{\"type\":\"text\",\"text\":\"Be kind.\"}],"
             "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"My dog died last week.\"}]}],"
             "\"stop_sequences\":[\"%s\"]}",
             stop);
    doc = run(body, &status);
    CHECK_INT(status, 200);
    CHECK_STR(json_string_value(json_object_get(doc, "stop_reason")), "stop_sequence");
    CHECK_STR(json_string_value(json_object_get(doc, "stop_sequence")), stop);
    CHECK(strlen(text_of(doc)) <= 20);
    json_decref(doc);
    empq_buf_free(&want);
}

static void test_modes(void)
{
    unsigned status = 0;
    fakellm_ctx c = ctx;
    const char *body = "{\"model\":\"fake-warm\",\"max_tokens\":100," USER "}";

    c.mode = FAKELLM_MODE_REFUSAL;
    json_t *doc = run_in(body, &in, &c, &status);
    CHECK_INT(status, 200);
    static const char *const top[] = {"id", "type", "role", "model", "content", "stop_reason", "stop_sequence",
                                      "stop_details", "usage"};
    keys_are(doc, top, 9);
    CHECK_STR(json_string_value(json_object_get(doc, "stop_reason")), "refusal");
    CHECK_STR(text_of(doc), FAKELLM_REFUSAL_TEXT);
    json_t *sd = json_object_get(doc, "stop_details");
    CHECK_STR(json_string_value(json_object_get(sd, "type")), "refusal");
    CHECK(json_is_null(json_object_get(sd, "category")));
    json_decref(doc);

    c.mode = FAKELLM_MODE_EMPTY;
    doc = run_in(body, &in, &c, &status);
    CHECK_INT(json_array_size(json_object_get(doc, "content")), 0);
    CHECK(json_is_array(json_object_get(doc, "content")));
    CHECK_STR(json_string_value(json_object_get(doc, "stop_reason")), "end_turn");
    CHECK_INT(usage(doc, "output_tokens"), 0);
    json_decref(doc);
}

static void test_errors(void)
{
    const char *ok = "{\"model\":\"fake-warm\",\"max_tokens\":100," USER "}";
    fakellm_anthropic_in h = {0};
    expect_error_in(ok, &h, 400, "invalid_request_error", "anthropic-version: header is required");
    h.version = "2022-01-01";
    expect_error_in(ok, &h, 400, "invalid_request_error", "anthropic-version");
    h.version = "2023-01-01";
    unsigned status = 0;
    json_decref(run_in(ok, &h, &ctx, &status));
    CHECK_INT(status, 200);

    h.require_key = "sk-ant-test-1234";
    expect_error_in(ok, &h, 401, "authentication_error", "x-api-key header is required");
    h.api_key = "sk-ant-wrong";
    expect_error_in(ok, &h, 401, "authentication_error", "invalid x-api-key");
    h.api_key = "sk-ant-test-1234";
    json_decref(run_in(ok, &h, &ctx, &status));
    CHECK_INT(status, 200);

    expect_error("{not json", "invalid JSON");
    expect_error("{\"max_tokens\":100," USER "}", "model: Field required");
    expect_error("{\"model\":\"fake-warm\"," USER "}", "max_tokens: Field required");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":0," USER "}",
                 "max_tokens: Input should be greater than or equal to 1");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":10}", "messages: Field required");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":10,\"messages\":[]}", "at least one message");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":10,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
                 "Unexpected role \"system\". The Messages API accepts a top-level `system` parameter");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":10," USER ",\"temperature\":1.5}",
                 "temperature: Input should be less than or equal to 1");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":10," USER ",\"max_completion_tokens\":5}",
                 "max_completion_tokens: Extra inputs are not permitted");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":10," USER ",\"stop_sequences\":\"x\"}",
                 "stop_sequences: Input should be a valid list");
}

static void test_server_errors(void)
{
    fakellm_reply r = {0};
    fakellm_admit a = {.which = "requests", .limit = 50, .used = 50, .requested = 1, .retry_after_ms = 30000};
    CHECK_INT(fakellm_front_anthropic.error(&r, FAKELLM_ERR_LIMIT, "fake-warm", &a, 77), EMPQ_OK);
    CHECK_INT(r.status, 429);
    json_t *doc = json_loads(r.body.data, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "error"), "type")), "rate_limit_error");
    CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(doc, "error"), "message")),
                   "This request would exceed the rate limit for your organization (fakellm) of 50 requests per "
                   "minute.");
    json_decref(doc);
    CHECK_STR(fakellm_reply_get_header(&r, "retry-after"), "30");
    CHECK(fakellm_reply_get_header(&r, "request-id") != NULL);

    CHECK_INT(fakellm_front_anthropic.error(&r, FAKELLM_ERR_500, "fake-warm", NULL, 77), EMPQ_OK);
    CHECK_INT(r.status, 500);
    CHECK_CONTAINS(r.body.data, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}");
    CHECK_INT(fakellm_front_anthropic.error(&r, FAKELLM_ERR_503, "fake-warm", NULL, 77), EMPQ_OK);
    CHECK_INT(r.status, 529);
    CHECK_CONTAINS(r.body.data, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}");
    fakellm_reply_clear(&r);

    fakellm_admit ok = {.admitted = 1, .has_limit = 1, .lim = {.rpm = 50, .tpm = 40000}, .remaining_requests = 49,
                        .remaining_tokens = 39000, .reset_requests_ms = 60000, .reset_tokens_ms = 60000};
    CHECK_INT(fakellm_front_anthropic.headers(&r, &ok, 1735689600000ull), EMPQ_OK); /* 2025-01-01T00:00:00Z */
    CHECK_STR(fakellm_reply_get_header(&r, "anthropic-ratelimit-requests-limit"), "50");
    CHECK_STR(fakellm_reply_get_header(&r, "anthropic-ratelimit-requests-remaining"), "49");
    CHECK_STR(fakellm_reply_get_header(&r, "anthropic-ratelimit-requests-reset"), "2025-01-01T00:01:00Z");
    CHECK_STR(fakellm_reply_get_header(&r, "anthropic-ratelimit-tokens-limit"), "40000");
    CHECK_STR(fakellm_reply_get_header(&r, "anthropic-ratelimit-tokens-remaining"), "39000");
    CHECK_STR(fakellm_reply_get_header(&r, "anthropic-ratelimit-tokens-reset"), "2025-01-01T00:01:00Z");
    fakellm_reply_clear(&r);
}

static void test_sdk_auth_and_thinking(void)
{
    unsigned status = 0;
    /* What @anthropic-ai/sdk 1.17 sends: its version and Authorization: Bearer. */
    fakellm_anthropic_in sdk = {.version = "2026-10-21", .authorization = "Bearer sk-ant-1", .require_key = "sk-ant-1"};
    json_t *doc = run_in("{\"model\":\"fake-warm\",\"max_tokens\":50," USER "}", &sdk, &ctx, &status);
    CHECK_INT(status, 200);
    json_decref(doc);
    sdk.authorization = "Bearer sk-ant-2";
    expect_error_in("{\"model\":\"fake-warm\",\"max_tokens\":50," USER "}", &sdk, 401, "authentication_error",
                    "Invalid bearer token");
    sdk.authorization = NULL;
    expect_error_in("{\"model\":\"fake-warm\",\"max_tokens\":50," USER "}", &sdk, 401, "authentication_error",
                    "x-api-key header is required");
    fakellm_anthropic_in old = {.version = "2023-10-01"};
    expect_error_in("{\"model\":\"fake-warm\",\"max_tokens\":50," USER "}", &old, 400, "invalid_request_error",
                    "anthropic-version: \"2023-10-01\" is not a valid version");

    /* Thinking: exactly budget_tokens, a thinking block before the text, both in output_tokens. */
    fakellm_reply r = {0};
    const char *body = "{\"model\":\"fake-warm\",\"max_tokens\":1100,\"thinking\":{\"type\":\"enabled\","
                       "\"budget_tokens\":1024},\"system\":[{\"type\":\"text\",\"text\":\"Be kind.\","
                       "\"cache_control\":{\"type\":\"ephemeral\"}}]," USER "}";
    CHECK_INT(fakellm_anthropic_messages(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
    CHECK_INT(r.status, 200);
    CHECK(fakellm_reply_get_header(&r, "request-id") != NULL);
    doc = json_loadb(r.body.data, r.body.len, 0, NULL);
    json_t *content = json_object_get(doc, "content");
    CHECK_INT(json_array_size(content), 2);
    json_t *think = json_array_get(content, 0), *text = json_array_get(content, 1);
    static const char *const tk[] = {"type", "thinking", "signature"};
    keys_are(think, tk, 3);
    CHECK_STR(json_string_value(json_object_get(think, "type")), "thinking");
    CHECK(strlen(json_string_value(json_object_get(think, "signature"))) > 20);
    CHECK_STR(json_string_value(json_object_get(text, "type")), "text");
    size_t words = fakellm_count_words(json_string_value(json_object_get(text, "text")));
    CHECK(words > 0 && words <= 1100 - 1024);
    CHECK_INT(usage(doc, "output_tokens"), 1024 + (json_int_t)words);
    CHECK_INT(usage(doc, "cache_read_input_tokens"), 4 + 2); /* the cached system prompt */
    CHECK_INT(usage(doc, "input_tokens") + usage(doc, "cache_read_input_tokens"), 3 + 6 + 4 + 5);
    CHECK_INT(r.tokens, (uint64_t)(usage(doc, "input_tokens") + usage(doc, "cache_read_input_tokens") +
                                   usage(doc, "output_tokens")));
    json_decref(doc);

    /* The fault modes; max_tokens reached inside thinking (length-empty): only the thinking block. */
    static const struct {
        fakellm_mode mode;
        const char *stop;
        size_t blocks; /* 1: the thinking block alone */
        json_int_t output;
    } modes[] = {{FAKELLM_MODE_LENGTH_EMPTY, "max_tokens", 1, 1100},
                 {FAKELLM_MODE_THINKING_ONLY, "end_turn", 1, 1024},
                 {FAKELLM_MODE_SAFETY, "refusal", 0, 0},
                 {FAKELLM_MODE_NUL, "end_turn", 0, 0}};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        fakellm_ctx c = ctx;
        c.mode = modes[i].mode;
        CHECK_INT(fakellm_anthropic_messages(body, strlen(body), &in, &c, &r), EMPQ_OK);
        doc = json_loadb(r.body.data, r.body.len, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(doc, "stop_reason")), modes[i].stop);
        CHECK_INT(json_array_size(json_object_get(doc, "content")), modes[i].blocks);
        if (modes[i].blocks == 1)
            CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(doc, "content"), 0), "type")),
                      "thinking");
        CHECK_INT(usage(doc, "output_tokens"), modes[i].output);
        json_decref(doc);
    }
    fakellm_reply_clear(&r);

    /* The API's 400s for thinking. */
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":2000,\"thinking\":{\"type\":\"enabled\","
                 "\"budget_tokens\":1000}," USER "}",
                 "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":1024,\"thinking\":{\"type\":\"enabled\","
                 "\"budget_tokens\":1024}," USER "}",
                 "`max_tokens` must be greater than `thinking.budget_tokens`");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":2000,\"temperature\":0.5,\"thinking\":{\"type\":"
                 "\"enabled\",\"budget_tokens\":1024}," USER "}",
                 "`temperature` may only be set to 1 when thinking is enabled");
    expect_error("{\"model\":\"fake-warm\",\"max_tokens\":2000,\"thinking\":{\"type\":\"deep\"}," USER "}",
                 "does not match any of the expected tags");

    /* The billing error. */
    CHECK_INT(fakellm_front_anthropic.error(&r, FAKELLM_ERR_QUOTA, "fake-warm", NULL, 3), EMPQ_OK);
    CHECK_INT(r.status, 400);
    CHECK_CONTAINS(r.body.data, "Your credit balance is too low to access the Anthropic API.");
    fakellm_reply_clear(&r);
}

int main(void)
{
    RUN(test_shape);
    RUN(test_modes);
    RUN(test_errors);
    RUN(test_server_errors);
    RUN(test_sdk_auth_and_thinking);
    CHECK_DONE();
}
