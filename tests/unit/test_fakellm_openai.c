/* test_fakellm_openai.c: the OpenAI chat-completions format without HTTP:
 * the response's fields and types, token counts, max_tokens, stop, n, and
 * every 400 in the documented error shape. */
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
    CHECK_INT(json_object_size(msg), 2);
    CHECK_STR(json_string_value(json_object_get(msg, "role")), "assistant");

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
    expect_error(BODY("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), "stop", "invalid_value");
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

int main(void)
{
    RUN(test_shape);
    RUN(test_deterministic_and_ids);
    RUN(test_max_tokens_stop_n);
    RUN(test_content_parts);
    RUN(test_errors);
    RUN(test_error_helper);
    CHECK_DONE();
}
