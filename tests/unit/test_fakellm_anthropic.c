/* test_fakellm_anthropic.c: the Anthropic Messages format without HTTP:
 * the headers (x-api-key, anthropic-version), the request's fields (model,
 * max_tokens, system, messages, stop_sequences, ranges, extra inputs), the
 * response's exact fields and stop reasons, the refusal and empty replies,
 * the error shape with request_id, the server-raised 429/500/529 and the
 * anthropic-ratelimit-* headers. */
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

int main(void)
{
    RUN(test_shape);
    RUN(test_modes);
    RUN(test_errors);
    RUN(test_server_errors);
    CHECK_DONE();
}
