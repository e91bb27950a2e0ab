/* test_fakellm_openai.c: the OpenAI chat-completions format without HTTP:
 * the response's fields and types, token counts, max_tokens, stop, n, and
 * every 400 in the documented error shape; the refusal, empty and huge
 * modes; the key check; the server-raised errors (429 of a limit with its
 * wording and Retry-After, injected 429/500/503) and x-ratelimit-* headers;
 * and Azure OpenAI (api-version, api-key, deployment model, 429 shape); reasoning
 * (efforts, the budget, what a reasoning model refuses), the null, safety,
 * thinking-only and length-empty modes, and the quota error. */
#include <jansson.h>

#include "check.h"
#include "openai.h"
#include "style.h"

static const fakellm_openai_ctx ctx = {.created = 1700000000, .request_id = 7};

/* Runs one request; returns the parsed body (caller decrefs) and *status. */
static json_t *run(const char *body, unsigned *status)
{
    fakellm_reply r = {0};
    CHECK_INT(fakellm_openai_chat(body, strlen(body), &ctx, &r), EMPQ_OK);
    *status = r.status;
    CHECK_STR(r.content_type, "application/json");
    json_error_t jerr;
    json_t *doc = json_loadb(r.body.data, r.body.len, 0, &jerr);
    if (doc == NULL)
        fprintf(stderr, "not JSON: %s\n", r.body.data);
    CHECK(doc != NULL);
    if (r.status == 200)
        CHECK(r.model != NULL);
    else
        CHECK(r.model == NULL);
    fakellm_reply_clear(&r);
    return doc;
}

static void expect_error(const char *body, const char *param, const char *code)
{
    unsigned status = 0;
    json_t *doc = run(body, &status);
    CHECK_INT(status, 400);
    CHECK_INT(json_object_size(doc), 1);
    json_t *e = json_object_get(doc, "error");
    CHECK(json_is_object(e));
    CHECK_INT(json_object_size(e), 4);
    CHECK(json_is_string(json_object_get(e, "message")));
    CHECK_STR(json_string_value(json_object_get(e, "type")), "invalid_request_error");
    if (param == NULL)
        CHECK(json_is_null(json_object_get(e, "param")));
    else
        CHECK_STR(json_string_value(json_object_get(e, "param")), param);
    if (code == NULL)
        CHECK(json_is_null(json_object_get(e, "code")));
    else
        CHECK_STR(json_string_value(json_object_get(e, "code")), code);
    json_decref(doc);
}

static const char *content_of(json_t *doc, size_t i)
{
    json_t *ch = json_array_get(json_object_get(doc, "choices"), i);
    return json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
}

static const char *finish_of(json_t *doc, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(doc, "choices"), i), "finish_reason"));
}

static json_int_t usage(json_t *doc, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(doc, "usage"), k));
}

static void test_shape(void)
{
    unsigned status = 0;
    json_t *doc = run("{\"model\":\"fake-warm\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
                      "{\"role\":\"user\",\"content\":\"My dog died last week.\"}],\"temperature\":0.7,"
                      "\"top_p\":1,\"seed\":3,\"stop\":null,\"user\":\"x\",\"logit_bias\":{}}",
                      &status);
    CHECK_INT(status, 200);
    const char *keys[] = {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"};
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(doc, key, v) {
        CHECK(i < 7);
        CHECK_STR(key, keys[i]);
        i++;
    }
    CHECK_INT(i, 7);
    const char *id = json_string_value(json_object_get(doc, "id"));
    CHECK(strncmp(id, "chatcmpl-", 9) == 0 && strlen(id) == 38);
    CHECK_STR(json_string_value(json_object_get(doc, "object")), "chat.completion");
    CHECK(json_is_integer(json_object_get(doc, "created")));
    CHECK_INT(json_integer_value(json_object_get(doc, "created")), 1700000000);
    CHECK_STR(json_string_value(json_object_get(doc, "model")), "fake-warm");
    const char *fp = json_string_value(json_object_get(doc, "system_fingerprint"));
    CHECK(strncmp(fp, "fp_", 3) == 0 && strlen(fp) == 13);

    json_t *choices = json_object_get(doc, "choices");
    CHECK_INT(json_array_size(choices), 1);
    json_t *ch = json_array_get(choices, 0);
    CHECK_INT(json_object_size(ch), 4);
    CHECK_INT(json_integer_value(json_object_get(ch, "index")), 0);
    CHECK(json_is_null(json_object_get(ch, "logprobs")));
    CHECK_STR(finish_of(doc, 0), "stop");
    json_t *msg = json_object_get(ch, "message");
    CHECK_INT(json_object_size(msg), 3);
    CHECK_STR(json_string_value(json_object_get(msg, "role")), "assistant");
    CHECK(json_object_get(msg, "refusal") != NULL && json_is_null(json_object_get(msg, "refusal")));

    /* The content is the style module's reply for these messages. */
    fakellm_msg msgs[2] = {{"system", "Be kind."}, {"user", "My dog died last week."}};
    empq_buf want = {0};
    CHECK_INT(fakellm_style_reply("fake-warm", msgs, 2, 0, &want), EMPQ_OK);
    CHECK_STR(content_of(doc, 0), want.data);

    /* Tokens are words: 3 + (4 + 2) + (4 + 5). */
    CHECK_INT(usage(doc, "prompt_tokens"), 18);
    CHECK_INT(usage(doc, "completion_tokens"), (json_int_t)fakellm_count_words(want.data));
    CHECK_INT(usage(doc, "total_tokens"), usage(doc, "prompt_tokens") + usage(doc, "completion_tokens"));
    empq_buf_free(&want);
    json_decref(doc);
}

static void test_deterministic_and_ids(void)
{
    const char *body = "{\"model\":\"fake-formal\",\"messages\":[{\"role\":\"user\",\"content\":\"I lost my job.\"}]}";
    fakellm_openai_ctx other = {.created = 1700000001, .request_id = 8};
    fakellm_reply a = {0}, b = {0};
    CHECK_INT(fakellm_openai_chat(body, strlen(body), &ctx, &a), EMPQ_OK);
    CHECK_INT(fakellm_openai_chat(body, strlen(body), &other, &b), EMPQ_OK);
    json_t *da = json_loads(a.body.data, 0, NULL), *db = json_loads(b.body.data, 0, NULL);
    CHECK_STR(content_of(da, 0), content_of(db, 0));
    CHECK(strcmp(json_string_value(json_object_get(da, "id")), json_string_value(json_object_get(db, "id"))) != 0);
    CHECK_STR(json_string_value(json_object_get(da, "system_fingerprint")),
              json_string_value(json_object_get(db, "system_fingerprint")));
    json_decref(da);
    json_decref(db);
    fakellm_reply_clear(&a);
    fakellm_reply_clear(&b);
    /* Not NUL-terminated input: only len bytes are read. */
    char buf[256];
    size_t n = strlen(body);
    memcpy(buf, body, n);
    memset(buf + n, '}', 10);
    CHECK_INT(fakellm_openai_chat(buf, n, &ctx, &a), EMPQ_OK);
    CHECK_INT(a.status, 200);
    fakellm_reply_clear(&a);
}

static void test_max_tokens_stop_n(void)
{
    unsigned status = 0;
    json_t *full = run("{\"model\":\"fake-formal\",\"messages\":[{\"role\":\"user\",\"content\":\"My cat is ill.\"}]}",
                       &status);
    const char *text = content_of(full, 0);
    size_t words = fakellm_count_words(text);
    CHECK(words > 20);

    json_t *cut = run("{\"model\":\"fake-formal\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"My cat is ill.\"}]}",
                      &status);
    CHECK_INT(status, 200);
    CHECK_STR(finish_of(cut, 0), "length");
    CHECK_INT(usage(cut, "completion_tokens"), 4);
    char want[256];
    snprintf(want, sizeof(want), "%.*s", (int)fakellm_prefix_words(text, 4), text);
    CHECK_STR(content_of(cut, 0), want);
    json_decref(cut);

    /* max_completion_tokens is the newer name; exactly the length: "stop". */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"model\":\"fake-formal\",\"max_completion_tokens\":%zu,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"My cat is ill.\"}]}",
             words);
    cut = run(body, &status);
    CHECK_STR(finish_of(cut, 0), "stop");
    CHECK_STR(content_of(cut, 0), text);
    json_decref(cut);

    /* stop cuts before the first stop string. */
    json_t *st = run("{\"model\":\"fake-formal\",\"stop\":[\"zzz\",\"understand\"],\"messages\":[{\"role\":\"user\","
                     "\"content\":\"My cat is ill.\"}]}",
                     &status);
    CHECK_INT(status, 200);
    const char *s = content_of(st, 0);
    CHECK(strstr(s, "understand") == NULL);
    CHECK(strncmp(s, text, strlen(s)) == 0);
    CHECK_STR(finish_of(st, 0), "stop");
    json_decref(st);

    /* n choices, each indexed; the first is the n=1 reply. */
    json_t *many = run("{\"model\":\"fake-formal\",\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"My cat is ill.\"}]}",
                       &status);
    CHECK_INT(json_array_size(json_object_get(many, "choices")), 3);
    CHECK_STR(content_of(many, 0), text);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(json_object_get(many, "choices"), 2), "index")), 2);
    CHECK(strcmp(content_of(many, 1), text) != 0 || strcmp(content_of(many, 2), text) != 0);
    json_decref(many);
    json_decref(full);
}

static void test_content_parts(void)
{
    unsigned status = 0;
    json_t *a = run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                    "\"My garden\"},{\"type\":\"text\",\"text\":\"flooded.\"}]}]}",
                    &status);
    CHECK_INT(status, 200);
    json_t *b = run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"My garden\\nflooded.\"}]}",
                    &status);
    CHECK_STR(content_of(a, 0), content_of(b, 0));
    json_decref(a);
    json_decref(b);
    /* null content (an assistant turn with tool calls) is accepted. */
    json_t *c = run("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"content\":null},{\"role\":\"user\","
                    "\"content\":\"hi\"}]}",
                    &status);
    CHECK_INT(status, 200);
    json_decref(c);
}

static void test_errors(void)
{
    expect_error("{not json", NULL, NULL);
    expect_error("", NULL, NULL);
    expect_error("[1,2]", NULL, NULL);
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model", "missing_required_parameter");
    expect_error("{\"model\":5,\"messages\":[]}", "model", "invalid_type");
    expect_error("{\"model\":\"m\"}", "messages", "missing_required_parameter");
    expect_error("{\"model\":\"m\",\"messages\":\"hi\"}", "messages", "invalid_type");
    expect_error("{\"model\":\"m\",\"messages\":[]}", "messages", "empty_array");
    expect_error("{\"model\":\"m\",\"messages\":[\"hi\"]}", "messages[0]", "invalid_type");
    expect_error("{\"model\":\"m\",\"messages\":[{\"content\":\"hi\"}]}", "messages[0].role",
                 "missing_required_parameter");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"robot\","
                 "\"content\":\"hi\"}]}",
                 "messages[1].role", "invalid_value");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content",
                 "invalid_type");
    expect_error("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
                 "messages[0].content", "invalid_type");
    const char *ok_msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char body[256];
#define BODY(extra) (snprintf(body, sizeof(body), "{\"model\":\"m\",%s,%s}", ok_msgs, extra), body)
    expect_error(BODY("\"temperature\":2.5"), "temperature", "decimal_above_max_value");
    expect_error(BODY("\"temperature\":-1"), "temperature", "decimal_below_min_value");
    expect_error(BODY("\"temperature\":\"hot\""), "temperature", "invalid_type");
    expect_error(BODY("\"top_p\":1.5"), "top_p", "decimal_above_max_value");
    expect_error(BODY("\"max_tokens\":0"), "max_tokens", "integer_below_min_value");
    expect_error(BODY("\"max_tokens\":1.5"), "max_tokens", "invalid_type");
    expect_error(BODY("\"n\":0"), "n", "integer_below_min_value");
    expect_error(BODY("\"n\":129"), "n", "integer_above_max_value");
    expect_error(BODY("\"stop\":5"), "stop", "invalid_type");
    expect_error(BODY("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), "stop", "array_above_max_length");
    expect_error(BODY("\"stop\":[\"a\",1]"), "stop", "invalid_type");
    expect_error(BODY("\"stream\":true"), "stream", "unsupported_value");
#undef BODY
    /* Valid edge values pass. */
    unsigned status = 0;
    json_t *doc = run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0,"
                      "\"top_p\":0,\"max_tokens\":1,\"n\":1,\"stop\":\"\",\"stream\":false}",
                      &status);
    CHECK_INT(status, 200);
    CHECK_INT(usage(doc, "completion_tokens"), 1);
    json_decref(doc);
}

static void test_error_helper(void)
{
    fakellm_reply r = {0};
    CHECK_INT(fakellm_openai_error(&r, 401, "Bad \"key\"", NULL, NULL, "invalid_api_key"), EMPQ_OK);
    CHECK_INT(r.status, 401);
    CHECK_STR(r.body.data, "{\"error\":{\"message\":\"Bad \\\"key\\\"\",\"type\":\"invalid_request_error\","
                           "\"param\":null,\"code\":\"invalid_api_key\"}}");
    CHECK_INT(fakellm_openai_error(&r, 500, "boom", "server_error", "p", NULL), EMPQ_OK);
    CHECK_STR(r.body.data, "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":\"p\",\"code\":null}}");
    fakellm_reply_clear(&r);
    fakellm_reply_clear(NULL);
}

static json_t *parse_reply(const fakellm_reply *r)
{
    json_t *doc = json_loadb(r->body.data, r->body.len, 0, NULL);
    CHECK(doc != NULL);
    return doc;
}

static const char *chat_body =
    "{\"model\":\"fake-warm\",\"messages\":[{\"role\":\"user\",\"content\":\"My dog died last week.\"}]}";

static void test_modes(void)
{
    fakellm_ctx c = ctx;
    fakellm_reply r = {0};

    /* Refusal: content null, refusal set, finish stop. */
    c.mode = FAKELLM_MODE_REFUSAL;
    CHECK_INT(fakellm_openai_chat(chat_body, strlen(chat_body), &c, &r), EMPQ_OK);
    CHECK_INT(r.status, 200);
    json_t *doc = parse_reply(&r);
    json_t *msg = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message");
    CHECK(json_is_null(json_object_get(msg, "content")));
    CHECK_STR(json_string_value(json_object_get(msg, "refusal")), FAKELLM_REFUSAL_TEXT);
    CHECK_STR(finish_of(doc, 0), "stop");
    CHECK_INT(usage(doc, "completion_tokens"), (json_int_t)fakellm_count_words(FAKELLM_REFUSAL_TEXT));
    CHECK_INT(r.tokens, (uint64_t)usage(doc, "total_tokens"));
    json_decref(doc);

    /* Empty: content "", 0 completion tokens. */
    c.mode = FAKELLM_MODE_EMPTY;
    CHECK_INT(fakellm_openai_chat(chat_body, strlen(chat_body), &c, &r), EMPQ_OK);
    doc = parse_reply(&r);
    CHECK_STR(content_of(doc, 0), "");
    CHECK_INT(usage(doc, "completion_tokens"), 0);
    json_decref(doc);

    /* Huge: the marker sits at the end of the text; mark_pad turns it into
     * padding that is streamed as part of the content string. */
    c.mode = FAKELLM_MODE_NORMAL;
    CHECK_INT(fakellm_openai_chat(chat_body, strlen(chat_body), &c, &r), EMPQ_OK);
    doc = parse_reply(&r);
    char *normal = strdup(content_of(doc, 0));
    json_decref(doc);
    c.mode = FAKELLM_MODE_HUGE;
    CHECK_INT(fakellm_openai_chat(chat_body, strlen(chat_body), &c, &r), EMPQ_OK);
    CHECK_CONTAINS(r.body.data, "\\u0001");
    size_t plain_len = r.body.len;
    CHECK_INT(fakellm_reply_mark_pad(&r, 1000), 1);
    CHECK_INT(r.body_kind, FAKELLM_BODY_PADDED);
    CHECK_INT(r.body.len, plain_len - 6);
    CHECK_INT(fakellm_reply_wire_len(&r), r.body.len + 1000);
    size_t n = fakellm_reply_wire_len(&r);
    char *wire = malloc(n + 1);
    /* Read it back in odd-sized pieces, as MHD would. */
    size_t got = 0;
    while (got < n)
        got += fakellm_reply_wire_read(&r, got, wire + got, got + 77 < n ? 77 : n - got);
    wire[n] = '\0';
    doc = json_loads(wire, 0, NULL);
    CHECK(doc != NULL);
    const char *huge = content_of(doc, 0);
    CHECK_INT(strlen(huge), strlen(normal) + 1000);
    CHECK(strncmp(huge, normal, strlen(normal)) == 0);
    CHECK_INT(usage(doc, "completion_tokens"), (json_int_t)fakellm_count_words(normal));
    json_decref(doc);
    free(wire);
    free(normal);
    fakellm_reply_clear(&r);
}

static void test_auth(void)
{
    fakellm_reply r = {0};
    int rc = EMPQ_OK;
    CHECK_INT(fakellm_openai_auth(NULL, NULL, &r, &rc), 1);
    CHECK_INT(fakellm_openai_auth("Bearer sk-test-123456789", "sk-test-123456789", &r, &rc), 1);
    CHECK_INT(fakellm_openai_auth(NULL, "sk-test-123456789", &r, &rc), 0);
    CHECK_INT(r.status, 401);
    CHECK_CONTAINS(r.body.data, "\"code\":\"invalid_api_key\"");
    CHECK_CONTAINS(r.body.data, "You didn't provide an API key");
    CHECK_INT(fakellm_openai_auth("Bearer sk-wrong-999999999", "sk-test-123456789", &r, &rc), 0);
    CHECK_CONTAINS(r.body.data, "Incorrect API key provided: sk-****9999.");
    CHECK(strstr(r.body.data, "sk-wrong") == NULL);
    CHECK_INT(rc, EMPQ_OK);
    fakellm_reply_clear(&r);
}

static void test_server_errors(void)
{
    fakellm_reply r = {0};
    fakellm_admit a = {.has_limit = 1, .lim = {.rpm = 600, .tpm = 100000}, .which = "requests", .limit = 600,
                       .used = 600, .requested = 1, .retry_after_ms = 1200};
    CHECK_INT(fakellm_front_openai.error(&r, FAKELLM_ERR_LIMIT, "fake-warm", &a, 9), EMPQ_OK);
    CHECK_INT(r.status, 429);
    CHECK_STR(r.body.data,
              "{\"error\":{\"message\":\"Rate limit reached for fake-warm in organization org-fakellm on requests "
              "per min (RPM): Limit 600, Used 600, Requested 1. Please try again in 1.2s. Visit "
              "https://platform.openai.com/account/rate-limits to learn more.\",\"type\":\"requests\","
              "\"param\":null,\"code\":\"rate_limit_exceeded\"}}");
    CHECK_STR(fakellm_reply_get_header(&r, "Retry-After"), "2");

    a.which = "tokens";
    a.limit = 100000;
    a.used = 99990;
    a.requested = 40;
    a.retry_after_ms = 61000;
    CHECK_INT(fakellm_front_openai.error(&r, FAKELLM_ERR_LIMIT, "fake-warm", &a, 9), EMPQ_OK);
    CHECK_CONTAINS(r.body.data, "on tokens per min (TPM): Limit 100000, Used 99990, Requested 40. Please try "
                                "again in 1m1s.");
    CHECK_CONTAINS(r.body.data, "\"type\":\"tokens\"");
    CHECK_STR(fakellm_reply_get_header(&r, "retry-after"), "61");

    CHECK_INT(fakellm_front_openai.error(&r, FAKELLM_ERR_500, "fake-warm", NULL, 9), EMPQ_OK);
    CHECK_INT(r.status, 500);
    CHECK_CONTAINS(r.body.data, "\"type\":\"server_error\"");
    CHECK_INT(fakellm_front_openai.error(&r, FAKELLM_ERR_503, "fake-warm", NULL, 9), EMPQ_OK);
    CHECK_INT(r.status, 503);
    CHECK_CONTAINS(r.body.data, "The engine is currently overloaded, please try again later.");
    fakellm_reply_clear(&r);

    /* Rate-limit headers, resets as Go durations. */
    fakellm_admit ok = {.admitted = 1, .has_limit = 1, .lim = {.rpm = 600, .tpm = 100000},
                        .remaining_requests = 599, .remaining_tokens = 99960, .reset_requests_ms = 60000,
                        .reset_tokens_ms = 12};
    CHECK_INT(fakellm_front_openai.headers(&r, &ok, 0), EMPQ_OK);
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-limit-requests"), "600");
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-remaining-requests"), "599");
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-reset-requests"), "1m0s");
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-limit-tokens"), "100000");
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-remaining-tokens"), "99960");
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-reset-tokens"), "12ms");
    fakellm_reply_clear(&r);
    /* Only rpm: no token headers. */
    ok.lim.tpm = 0;
    CHECK_INT(fakellm_front_openai.headers(&r, &ok, 0), EMPQ_OK);
    CHECK(fakellm_reply_get_header(&r, "x-ratelimit-limit-tokens") == NULL);
    CHECK_INT(r.n_headers, 3);
    fakellm_reply_clear(&r);

    char d[32];
    CHECK_STR(fakellm_go_duration(d, sizeof(d), 0), "0s");
    CHECK_STR(fakellm_go_duration(d, sizeof(d), 999), "999ms");
    CHECK_STR(fakellm_go_duration(d, sizeof(d), 1500), "1.5s");
    CHECK_STR(fakellm_go_duration(d, sizeof(d), 360000), "6m0s");
    CHECK_STR(fakellm_go_duration(d, sizeof(d), 61250), "1m1.25s");
    CHECK_INT(fakellm_retry_seconds(0), 1);
    CHECK_INT(fakellm_retry_seconds(1001), 2);
}

static void test_azure(void)
{
    fakellm_reply r = {0};
    fakellm_azure_in in = {.deployment = "fake-warm", .api_version = "2024-10-21"};
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"My dog died last week.\"}]}";

    /* No model in the body: the deployment is the model. */
    CHECK_INT(fakellm_azure_chat(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
    CHECK_INT(r.status, 200);
    json_t *doc = parse_reply(&r);
    CHECK_STR(json_string_value(json_object_get(doc, "model")), "fake-warm");
    CHECK_STR(json_string_value(json_object_get(doc, "object")), "chat.completion");
    char *warm = strdup(content_of(doc, 0));
    json_decref(doc);

    /* A mapped deployment reports its model and answers in its style; the
     * body's model is ignored. */
    in.deployment = "my-warm";
    in.model = "fake-warm";
    CHECK_INT(fakellm_azure_chat(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
    doc = parse_reply(&r);
    CHECK_STR(json_string_value(json_object_get(doc, "model")), "fake-warm");
    CHECK_STR(content_of(doc, 0), warm);
    json_decref(doc);
    in.model = "gpt-4o-2024-08-06";
    const char *with_model = "{\"model\":\"something-else\",\"messages\":[{\"role\":\"user\",\"content\":\"My dog "
                             "died last week.\"}]}";
    CHECK_INT(fakellm_azure_chat(with_model, strlen(with_model), &in, &ctx, &r), EMPQ_OK);
    doc = parse_reply(&r);
    CHECK_STR(json_string_value(json_object_get(doc, "model")), "gpt-4o-2024-08-06");
    CHECK_STR(r.model, "gpt-4o-2024-08-06");
    CHECK(strcmp(content_of(doc, 0), warm) != 0); /* a neutral model */
    json_decref(doc);
    free(warm);

    /* api-version: missing or malformed -> 404 Resource not found. */
    const char *bad_versions[] = {NULL, "", "0301", "2024-10-21x", "2024-1-21"};
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
        in.api_version = bad_versions[i];
        CHECK_INT(fakellm_azure_chat(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
        CHECK_INT(r.status, 404);
        CHECK_STR(r.body.data, "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}");
    }
    in.api_version = "2025-01-01-preview";
    CHECK_INT(fakellm_azure_chat(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
    CHECK_INT(r.status, 200);

    /* api-key. */
    in.require_key = "azure-key-123";
    CHECK_INT(fakellm_azure_chat(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
    CHECK_INT(r.status, 401);
    CHECK_CONTAINS(r.body.data, "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid "
                                "subscription key or wrong API endpoint.");
    in.api_key = "azure-key-123";
    CHECK_INT(fakellm_azure_chat(body, strlen(body), &in, &ctx, &r), EMPQ_OK);
    CHECK_INT(r.status, 200);

    /* 400s keep the OpenAI shape. */
    CHECK_INT(fakellm_azure_chat("{}", 2, &in, &ctx, &r), EMPQ_OK);
    CHECK_INT(r.status, 400);
    CHECK_CONTAINS(r.body.data, "\"param\":\"messages\"");

    /* 429: Azure's own shape, retry-after and retry-after-ms. */
    fakellm_admit a = {.has_limit = 1, .lim = {.rpm = 60}, .which = "requests", .limit = 60, .used = 60,
                       .requested = 1, .retry_after_ms = 2500};
    CHECK_INT(fakellm_front_azure.error(&r, FAKELLM_ERR_LIMIT, "fake-warm", &a, 3), EMPQ_OK);
    CHECK_INT(r.status, 429);
    CHECK_CONTAINS(r.body.data, "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the ChatCompletions_Create "
                                "Operation under Azure OpenAI API version");
    CHECK_CONTAINS(r.body.data, "exceeded call rate limit");
    CHECK_CONTAINS(r.body.data, "Please retry after 3 seconds.");
    CHECK_STR(fakellm_reply_get_header(&r, "retry-after"), "3");
    CHECK_STR(fakellm_reply_get_header(&r, "retry-after-ms"), "2500");
    fakellm_reply_clear(&r);
    fakellm_admit ok = {.admitted = 1, .has_limit = 1, .lim = {.rpm = 60, .tpm = 1000}, .remaining_requests = 59,
                        .remaining_tokens = 900};
    CHECK_INT(fakellm_front_azure.headers(&r, &ok, 0), EMPQ_OK);
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-remaining-requests"), "59");
    CHECK_STR(fakellm_reply_get_header(&r, "x-ratelimit-remaining-tokens"), "900");
    CHECK_INT(r.n_headers, 2);
    fakellm_reply_clear(&r);
}

static json_int_t detail(json_t *doc, const char *obj, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(json_object_get(doc, "usage"), obj), k));
}

static void test_reasoning(void)
{
#define REASON(extra) "{\"model\":\"fake-reason-1\"" extra ",\"messages\":[{\"role\":\"developer\",\"content\":" \
                      "\"Be kind and brief.\"},{\"role\":\"user\",\"content\":\"My dog died last week.\"}]}"
    unsigned status = 0;
    /* A reasoning model at the default effort: 256 reasoning tokens before the answer. */
    json_t *doc = run(REASON(""), &status);
    CHECK_INT(status, 200);
    const char *text = content_of(doc, 0);
    CHECK(text != NULL && text[0] != '\0');
    CHECK_INT(detail(doc, "completion_tokens_details", "reasoning_tokens"), 256);
    CHECK_INT(usage(doc, "completion_tokens"), 256 + (json_int_t)fakellm_count_words(text));
    CHECK_INT(detail(doc, "prompt_tokens_details", "cached_tokens"), 4 + 4); /* the developer message */
    CHECK_STR(finish_of(doc, 0), "stop");
    json_decref(doc);
    /* Efforts, on any model. */
    static const struct {
        const char *effort;
        json_int_t tokens;
    } eff[] = {{"none", 0}, {"minimal", 0}, {"low", 64}, {"medium", 256}, {"high", 1024}, {"xhigh", 2048}, {"max", 4096}};
    for (size_t i = 0; i < sizeof(eff) / sizeof(eff[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"model\":\"fake-warm\",\"reasoning_effort\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                 eff[i].effort);
        doc = run(body, &status);
        CHECK_INT(status, 200);
        CHECK_INT(detail(doc, "completion_tokens_details", "reasoning_tokens"), eff[i].tokens);
        json_decref(doc);
    }
    /* The budget covers reasoning and answer: below the reasoning need, length with no text. */
    doc = run(REASON(",\"max_completion_tokens\":100"), &status);
    CHECK_STR(finish_of(doc, 0), "length");
    CHECK_STR(content_of(doc, 0), "");
    CHECK_INT(usage(doc, "completion_tokens"), 100);
    CHECK_INT(detail(doc, "completion_tokens_details", "reasoning_tokens"), 100);
    json_decref(doc);
    /* Above it: the answer is cut at budget - reasoning words. */
    doc = run(REASON(",\"reasoning_effort\":\"low\",\"max_completion_tokens\":67"), &status);
    CHECK_STR(finish_of(doc, 0), "length");
    CHECK_INT(fakellm_count_words(content_of(doc, 0)), 3);
    CHECK_INT(usage(doc, "completion_tokens"), 67);
    json_decref(doc);
    /* What a reasoning model refuses. */
    expect_error(REASON(",\"max_tokens\":100"), "max_tokens", "unsupported_parameter");
    expect_error(REASON(",\"temperature\":0.5"), "temperature", "unsupported_value");
    expect_error(REASON(",\"top_p\":1"), "top_p", "unsupported_parameter");
    doc = run(REASON(",\"temperature\":0"), &status);
    CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(doc, "error"), "message")),
                   "'temperature' does not support 0.0 with this model");
    json_decref(doc);
    expect_error(REASON(",\"reasoning_effort\":\"extreme\""), "reasoning_effort", "invalid_value");
    doc = run(REASON(",\"temperature\":1"), &status);
    CHECK_INT(status, 200);
    json_decref(doc);
    /* The fault modes: null, safety, thinking-only, length-empty. */
    fakellm_ctx c = ctx;
    fakellm_reply r = {0};
    const char *body = REASON(",\"max_completion_tokens\":500");
    static const struct {
        fakellm_mode mode;
        const char *finish, *content; /* content NULL: JSON null */
        json_int_t completion, reasoning;
    } modes[] = {{FAKELLM_MODE_NUL, "stop", NULL, 0, 0},
                 {FAKELLM_MODE_SAFETY, "content_filter", NULL, 0, 0},
                 {FAKELLM_MODE_THINKING_ONLY, "stop", "", 256, 256},
                 {FAKELLM_MODE_LENGTH_EMPTY, "length", "", 500, 500}};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        c.mode = modes[i].mode;
        CHECK_INT(fakellm_openai_chat(body, strlen(body), &c, &r), EMPQ_OK);
        CHECK(fakellm_reply_get_header(&r, "x-request-id") != NULL);
        doc = parse_reply(&r);
        json_t *msg = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message");
        CHECK(json_is_null(json_object_get(msg, "refusal")));
        if (modes[i].content == NULL)
            CHECK(json_is_null(json_object_get(msg, "content")));
        else
            CHECK_STR(content_of(doc, 0), modes[i].content);
        CHECK_STR(finish_of(doc, 0), modes[i].finish);
        CHECK_INT(usage(doc, "completion_tokens"), modes[i].completion);
        CHECK_INT(detail(doc, "completion_tokens_details", "reasoning_tokens"), modes[i].reasoning);
        json_decref(doc);
    }
    /* The quota error (OpenAI and Azure alike). */
    CHECK_INT(fakellm_front_openai.error(&r, FAKELLM_ERR_QUOTA, "fake-warm", NULL, 1), EMPQ_OK);
    CHECK_INT(r.status, 429);
    doc = parse_reply(&r);
    json_t *e = json_object_get(doc, "error");
    CHECK_STR(json_string_value(json_object_get(e, "type")), "insufficient_quota");
    CHECK_STR(json_string_value(json_object_get(e, "code")), "insufficient_quota");
    CHECK_CONTAINS(json_string_value(json_object_get(e, "message")), "You exceeded your current quota");
    json_decref(doc);
    CHECK_INT(fakellm_front_azure.error(&r, FAKELLM_ERR_QUOTA, "fake-warm", NULL, 1), EMPQ_OK);
    CHECK_INT(r.status, 429);
    fakellm_reply_clear(&r);
#undef REASON
}

int main(void)
{
    RUN(test_shape);
    RUN(test_deterministic_and_ids);
    RUN(test_max_tokens_stop_n);
    RUN(test_content_parts);
    RUN(test_errors);
    RUN(test_error_helper);
    RUN(test_modes);
    RUN(test_auth);
    RUN(test_server_errors);
    RUN(test_azure);
    RUN(test_reasoning);
    CHECK_DONE();
}
