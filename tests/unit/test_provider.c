/* test_provider.c: the providers' exact request bytes and reply readings. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "empq/provider.h"

#define KEY "sk-test-SECRET-0123456789"
#define NOW 1700000000000ULL /* 2023-11-14T22:13:20Z */

static Empq__GenParams params;
static Empq__ModelSpec spec;
static char *stops[] = {"\n\n", "END"};

static void reset_spec(const char *provider, const char *base_url)
{
    Empq__GenParams p = EMPQ__GEN_PARAMS__INIT;
    Empq__ModelSpec m = EMPQ__MODEL_SPEC__INIT;
    params = p;
    spec = m;
    spec.alias = "gpt";
    spec.provider = (char *)provider;
    spec.base_url = (char *)base_url;
    spec.model = "gpt-4o-mini";
    spec.params = &params;
}

static void test_openai_request_exact(void)
{
    reset_spec("openai", NULL);
    params.has_temperature = 1;
    params.temperature = 0.7;
    params.has_max_tokens = 1;
    params.max_tokens = 256;
    params.has_seed = 1;
    params.seed = 42;
    params.n_stop = 2;
    params.stop = stops;
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_provider_request(&spec, NULL, "You are kind.", "I lost my dog \"Rex\".", 0, KEY, &r, &err),
              EMPQ_OK);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.url, "https://api.openai.com/v1/chat/completions");
    CHECK_INT(r.n_headers, 2);
    CHECK_STR(r.headers[0], "Content-Type: application/json");
    CHECK_STR(r.headers[1], "Authorization: Bearer " KEY);
    CHECK_STR(r.body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"You are kind.\"},"
                      "{\"role\":\"user\",\"content\":\"I lost my dog \\\"Rex\\\".\"}],\"temperature\":0.7,"
                      "\"max_tokens\":256,\"seed\":42,\"stop\":[\"\\n\\n\",\"END\"]}");
    CHECK_INT(r.body_len, strlen(r.body));
    empq_http_request_clear(&r);
    CHECK(r.url == NULL && r.n_headers == 0 && r.body == NULL);

    /* sample 3: seed + 3; top_p alone; no system message */
    reset_spec("openai", NULL);
    params.has_top_p = 1;
    params.top_p = 0.95;
    params.has_seed = 1;
    params.seed = 42;
    char *body = NULL;
    size_t len = 0;
    CHECK_INT(empq_provider_body(&spec, "", "hi", 3, &body, &len, &err), EMPQ_OK);
    CHECK_STR(body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    "\"top_p\":0.95,\"seed\":45}");
    free(body);

    /* no params at all: model and messages only */
    reset_spec("openai", NULL);
    spec.params = NULL;
    CHECK_INT(empq_provider_body(&spec, NULL, "hi", 0, &body, NULL, &err), EMPQ_OK);
    CHECK_STR(body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    free(body);
}

static void test_compatible_endpoint(void)
{
    reset_spec("openai-compatible", "http://127.0.0.1:8000/v1/");
    empq_http_request r = {0};
    empq_error err = {0};
    /* no key: no Authorization header; trailing slash of base_url dropped */
    CHECK_INT(empq_provider_endpoint(&spec, NULL, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "http://127.0.0.1:8000/v1/chat/completions");
    CHECK_INT(r.n_headers, 1);
    CHECK_STR(r.headers[0], "Content-Type: application/json");
    CHECK(r.body == NULL);
    empq_http_request_clear(&r);

    /* the expanded base_url given by the worker wins over the spec's text */
    reset_spec("openai-compatible", "${LLM_URL}");
    CHECK_INT(empq_provider_endpoint(&spec, "http://10.0.0.5:9000/v1", "k-1234", &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "http://10.0.0.5:9000/v1/chat/completions");
    CHECK_STR(r.headers[1], "Authorization: Bearer k-1234");
    empq_http_request_clear(&r);

    /* openai-compatible needs a base_url */
    reset_spec("openai-compatible", NULL);
    CHECK_INT(empq_provider_endpoint(&spec, NULL, NULL, &r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "base_url");
}

static void test_azure_endpoint(void)
{
    reset_spec("azure-openai", "https://res.openai.azure.com");
    spec.model = "my-deploy";
    spec.api_version = "2024-06-01";
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_provider_endpoint(&spec, NULL, "az-key-1", &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=2024-06-01");
    CHECK_STR(r.headers[1], "api-key: az-key-1");
    empq_http_request_clear(&r);
}

static void test_unsupported(void)
{
    empq_http_request r = {0};
    empq_error err = {0};
    reset_spec("human", NULL);
    CHECK(!empq_provider_supported("human"));
    CHECK_INT(empq_provider_endpoint(&spec, NULL, NULL, &r, &err), EMPQ_EINVAL);
    reset_spec("cohere", NULL);
    CHECK_INT(empq_provider_endpoint(&spec, NULL, NULL, &r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown provider cohere");
    CHECK(empq_provider_supported("openai"));
    CHECK(empq_provider_supported("openai-compatible"));
    CHECK(empq_provider_supported("anthropic"));
    CHECK(empq_provider_supported("gemini"));
    CHECK(empq_provider_supported("azure-openai"));
    CHECK(!empq_provider_supported(NULL));
}

static void test_anthropic(void)
{
    reset_spec("anthropic", NULL);
    spec.model = "claude-3-5-haiku-20241022";
    params.has_temperature = 1;
    params.temperature = 0.25;
    params.has_seed = 1;
    params.seed = 7; /* not sent: the API has no seed */
    params.n_stop = 1;
    params.stop = stops + 1;
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_provider_request(&spec, NULL, "Be warm.", "My cat died.", 0, KEY, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "https://api.anthropic.com/v1/messages");
    CHECK_INT(r.n_headers, 3);
    CHECK_STR(r.headers[0], "Content-Type: application/json");
    CHECK_STR(r.headers[1], "anthropic-version: 2023-06-01");
    CHECK_STR(r.headers[2], "x-api-key: " KEY);
    CHECK_STR(r.body, "{\"model\":\"claude-3-5-haiku-20241022\",\"max_tokens\":1024,\"system\":\"Be warm.\","
                      "\"messages\":[{\"role\":\"user\",\"content\":\"My cat died.\"}],\"temperature\":0.25,"
                      "\"stop_sequences\":[\"END\"]}");
    empq_http_request_clear(&r);

    empq_provider_result res;
    reset_spec("anthropic", NULL);
    const char *ok = "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-haiku-20241022\","
                     "\"content\":[{\"type\":\"text\",\"text\":\"I'm sorry \"},{\"type\":\"text\",\"text\":\"to hear.\"}],"
                     "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":20,\"output_tokens\":6}}";
    empq_http_reply rep = {.status = 200, .body = ok, .body_len = strlen(ok)};
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(res.gen.text, "I'm sorry to hear.");
    CHECK_STR(res.gen.finish_reason, "end_turn");
    CHECK_STR(res.gen.model_reported, "claude-3-5-haiku-20241022");
    CHECK_INT(res.gen.tokens_in, 20);
    CHECK_INT(res.gen.tokens_out, 6);
    empq_provider_result_clear(&res);

    const char *refusal = "{\"type\":\"message\",\"content\":[],\"stop_reason\":\"refusal\"}";
    rep.body = refusal;
    rep.body_len = strlen(refusal);
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(res.reason, "refusal");
    empq_provider_result_clear(&res);

    const char *over = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
    empq_http_reply r529 = {.status = 529, .body = over, .body_len = strlen(over), .retry_after = "3"};
    CHECK_INT(empq_provider_parse(&spec, &r529, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(res.reason, "HTTP 529: Overloaded");
    CHECK_INT(res.retry_after_ms, 3000);
    empq_provider_result_clear(&res);
}

static void test_gemini(void)
{
    reset_spec("gemini", NULL);
    spec.model = "gemini-1.5-flash";
    params.has_temperature = 1;
    params.temperature = 1.0;
    params.has_max_tokens = 1;
    params.max_tokens = 300;
    params.has_seed = 1;
    params.seed = 5;
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_provider_request(&spec, NULL, "Be warm.", "I got the job!", 1, KEY, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash:generateContent");
    CHECK_INT(r.n_headers, 2);
    CHECK_STR(r.headers[1], "x-goog-api-key: " KEY);
    CHECK_STR(r.body, "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be warm.\"}]},"
                      "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"I got the job!\"}]}],"
                      "\"generationConfig\":{\"temperature\":1.0,\"maxOutputTokens\":300,\"seed\":6}}");
    empq_http_request_clear(&r);
    /* no parameters: no generationConfig */
    spec.params = NULL;
    char *body = NULL;
    CHECK_INT(empq_provider_body(&spec, NULL, "hi", 0, &body, NULL, &err), EMPQ_OK);
    CHECK_STR(body, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}]}");
    free(body);

    empq_provider_result res;
    const char *ok = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Congratulations!\"}],\"role\":\"model\"},"
                     "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,"
                     "\"candidatesTokenCount\":2,\"totalTokenCount\":11},\"modelVersion\":\"gemini-1.5-flash-002\"}";
    empq_http_reply rep = {.status = 200, .body = ok, .body_len = strlen(ok)};
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(res.gen.text, "Congratulations!");
    CHECK_STR(res.gen.finish_reason, "STOP");
    CHECK_STR(res.gen.model_reported, "gemini-1.5-flash-002");
    CHECK_INT(res.gen.tokens_in, 9);
    CHECK_INT(res.gen.tokens_out, 2);
    empq_provider_result_clear(&res);

    const char *blocked = "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}";
    rep.body = blocked;
    rep.body_len = strlen(blocked);
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(res.reason, "blocked:SAFETY");
    empq_provider_result_clear(&res);

    const char *safety = "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0}]}";
    rep.body = safety;
    rep.body_len = strlen(safety);
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_PERMANENT);
    empq_provider_result_clear(&res);

    const char *e400 = "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
                       "\"status\":\"INVALID_ARGUMENT\"}}";
    empq_http_reply r400 = {.status = 400, .body = e400, .body_len = strlen(e400)};
    CHECK_INT(empq_provider_parse(&spec, &r400, KEY, NOW, &res), EMPQ_OK);
    CHECK_INT(res.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(res.reason, "HTTP 400: API key not valid. Please pass a valid API key.");
    empq_provider_result_clear(&res);
}

static void parse(const char *provider, long status, const char *body, empq_provider_result *out)
{
    reset_spec(provider, "http://x/v1");
    empq_http_reply rep = {0};
    rep.status = status;
    rep.body = body;
    rep.body_len = body != NULL ? strlen(body) : 0;
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, out), EMPQ_OK);
}

static void test_parse_success(void)
{
    empq_provider_result r;
    parse("openai", 200,
          "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,"
          "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
          "\"content\":\"I'm so sorry.\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
          "\"usage\":{\"prompt_tokens\":31,\"completion_tokens\":5,\"total_tokens\":36},"
          "\"system_fingerprint\":\"fp_1\"}",
          &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "I'm so sorry.");
    CHECK_STR(r.gen.finish_reason, "stop");
    CHECK_STR(r.gen.model_reported, "gpt-4o-mini-2024-07-18");
    CHECK(r.gen.has_tokens_in && r.gen.tokens_in == 31);
    CHECK(r.gen.has_tokens_out && r.gen.tokens_out == 5);
    CHECK(!r.gen.refusal);
    CHECK_STR(r.reason, "");
    CHECK_INT(r.status, 200);
    empq_provider_result_clear(&r);
    CHECK(r.gen.text == NULL);

    /* content null with finish_reason length: no answer, never a success */
    parse("openai-compatible", 200,
          "{\"model\":\"m\",\"choices\":[{\"message\":{\"content\":null},\"finish_reason\":\"length\"}]}", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "length_before_text");
    CHECK(r.gen.text == NULL);
    CHECK(!r.gen.has_tokens_in);
    empq_provider_result_clear(&r);
}

static void test_parse_refusal(void)
{
    empq_provider_result r;
    /* the model refused in text: a generation flagged as a refusal */
    parse("openai", 200,
          "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
          "\"refusal\":\"I can't help with that.\"},\"finish_reason\":\"stop\"}],"
          "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":7}}",
          &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK(r.gen.has_refusal && r.gen.refusal);
    CHECK_STR(r.gen.text, "I can't help with that.");
    empq_provider_result_clear(&r);

    /* the provider filtered the content away: permanent */
    parse("openai", 200,
          "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"content\":null},\"finish_reason\":\"content_filter\"}]}",
          &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "blocked:content_filter");
    CHECK(r.gen.text == NULL);
    empq_provider_result_clear(&r);

    /* a 400 content policy error: permanent, named as a refusal */
    parse("azure-openai", 400,
          "{\"error\":{\"message\":\"The response was filtered\",\"type\":null,\"param\":\"prompt\","
          "\"code\":\"content_filter\",\"status\":400}}",
          &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "blocked:content_policy: HTTP 400: The response was filtered");
    empq_provider_result_clear(&r);
}

static void test_parse_errors(void)
{
    empq_provider_result r;
    /* 429 with an error body and a Retry-After in seconds */
    reset_spec("openai", NULL);
    const char *body = "{\"error\":{\"message\":\"Rate limit reached for gpt-4o-mini\",\"type\":\"requests\","
                       "\"param\":null,\"code\":\"rate_limit_exceeded\"}}";
    empq_http_reply rep = {.status = 429, .body = body, .body_len = strlen(body), .retry_after = "20"};
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_INT(r.retry_after_ms, 20000);
    CHECK_STR(r.reason, "HTTP 429: Rate limit reached for gpt-4o-mini");
    empq_provider_result_clear(&r);

    /* retry-after-ms wins over Retry-After */
    rep.retry_after_ms = "1500";
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.retry_after_ms, 1500);
    empq_provider_result_clear(&r);

    /* 401 echoing the key: permanent, the key never in the reason */
    parse("openai", 401,
          "{\"error\":{\"message\":\"Incorrect API key provided: " KEY ". You can find your API key at "
          "https://platform.openai.com/account/api-keys.\",\"type\":\"invalid_request_error\",\"param\":null,"
          "\"code\":\"invalid_api_key\"}}",
          &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_CONTAINS(r.reason, "HTTP 401: Incorrect API key provided: ***.");
    CHECK(strstr(r.reason, "SECRET") == NULL);
    empq_provider_result_clear(&r);

    /* 503 with no body; 500 with an HTML body */
    parse("openai", 503, NULL, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "HTTP 503");
    empq_provider_result_clear(&r);
    parse("openai", 500, "<html>oops</html>", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "HTTP 500");
    empq_provider_result_clear(&r);

    /* compatible servers' error shapes */
    parse("openai-compatible", 404, "{\"detail\":\"Not Found\"}", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "HTTP 404: Not Found");
    empq_provider_result_clear(&r);
    parse("openai-compatible", 400, "{\"error\":\"model 'x' not found\"}", &r);
    CHECK_STR(r.reason, "HTTP 400: model 'x' not found");
    empq_provider_result_clear(&r);
}

static void test_parse_malformed(void)
{
    empq_provider_result r;
    parse("openai", 200, "{\"choices\":[{\"message\":{\"content\":\"cut", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_CONTAINS(r.reason, "malformed reply");
    CHECK(r.gen.text == NULL);
    empq_provider_result_clear(&r);
    parse("openai", 200, "", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_CONTAINS(r.reason, "empty body");
    empq_provider_result_clear(&r);
    parse("openai", 200, "[1,2]", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    empq_provider_result_clear(&r);
    parse("openai", 200, "{\"choices\":[]}", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_CONTAINS(r.reason, "no choices[0].message");
    empq_provider_result_clear(&r);
    parse("openai", 200, "{\"choices\":[{\"message\":{\"content\":42}}]}", &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    empq_provider_result_clear(&r);

    /* a complete-looking body flagged as cut by the transport */
    reset_spec("openai", NULL);
    const char *ok = "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}";
    empq_http_reply rep = {.status = 200, .body = ok, .body_len = strlen(ok), .truncated = 1};
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_CONTAINS(r.reason, "reply cut");
    empq_provider_result_clear(&r);

    /* a body past the transport's cap: permanent, whatever the status */
    empq_http_reply big = {.status = 200, .body = ok, .body_len = strlen(ok), .too_large = 1};
    CHECK_INT(empq_provider_parse(&spec, &big, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_CONTAINS(r.reason, "HTTP 200: reply_too_large (more than 41 bytes)");
    empq_provider_result_clear(&r);
    big.status = 503;
    CHECK_INT(empq_provider_parse(&spec, &big, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_CONTAINS(r.reason, "HTTP 503: reply_too_large");
    empq_provider_result_clear(&r);

    /* no reply at all */
    empq_http_reply none = {.status = 0, .transport_error = "Failed to connect to 127.0.0.1 port 9 after 0 ms"};
    CHECK_INT(empq_provider_parse(&spec, &none, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "no reply: Failed to connect to 127.0.0.1 port 9 after 0 ms");
    empq_provider_result_clear(&r);
}

static void test_classify(void)
{
    static const long retry[] = {0, 408, 409, 425, 429, 500, 502, 503, 504, 529};
    static const long perm[] = {301, 400, 401, 403, 404, 405, 413, 422};
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++)
        CHECK_INT(empq_provider_classify_status(retry[i]), EMPQ_PROVIDER_RETRYABLE);
    for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++)
        CHECK_INT(empq_provider_classify_status(perm[i]), EMPQ_PROVIDER_PERMANENT);
    CHECK_INT(empq_provider_classify_status(200), EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(empq_provider_class_name(EMPQ_PROVIDER_PERMANENT), "permanent");
}

static void test_retry_after(void)
{
    uint32_t ms = 0;
    CHECK_INT(empq_retry_after_parse("120", NOW, &ms), EMPQ_OK);
    CHECK_INT(ms, 120000);
    CHECK_INT(empq_retry_after_parse(" 1.5 ", NOW, &ms), EMPQ_OK);
    CHECK_INT(ms, 1500);
    CHECK_INT(empq_retry_after_parse("0", NOW, &ms), EMPQ_OK);
    CHECK_INT(ms, 0);
    /* NOW is Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK_INT(empq_retry_after_parse("Tue, 14 Nov 2023 22:13:50 GMT", NOW, &ms), EMPQ_OK);
    CHECK_INT(ms, 30000);
    CHECK_INT(empq_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", NOW, &ms), EMPQ_OK);
    CHECK_INT(ms, 0); /* in the past */
    CHECK_INT(empq_retry_after_parse("Fri, 29 Feb 2036 00:00:00 GMT", NOW, &ms), EMPQ_OK);
    CHECK_INT(ms, 24u * 3600u * 1000u); /* capped at a day */
    CHECK_INT(empq_retry_after_parse("soon", NOW, &ms), EMPQ_EPARSE);
    CHECK_INT(empq_retry_after_parse("-5", NOW, &ms), EMPQ_EPARSE);
    CHECK_INT(empq_retry_after_parse("Tue, 14 Foo 2023 22:13:50 GMT", NOW, &ms), EMPQ_EPARSE);
    CHECK_INT(empq_retry_after_parse("12abc", NOW, &ms), EMPQ_EPARSE);
}

static void test_redact_excerpt(void)
{
    char s[] = "key sk-abcdef in the middle and sk-abcdef again";
    empq_provider_redact(s, "sk-abcdef");
    CHECK_STR(s, "key *** in the middle and *** again");
    char t[] = "short ab";
    empq_provider_redact(t, "ab"); /* keys under 4 characters are left alone */
    CHECK_STR(t, "short ab");

    char out[16];
    /* the key crosses the end of the excerpt: still replaced as a whole */
    const char *body = "error: sk-abcdef-0123456789 bad";
    empq_provider_excerpt(body, strlen(body), "sk-abcdef-0123456789", out, sizeof out);
    CHECK_STR(out, "error: *** bad");
    CHECK(strstr(out, "sk-") == NULL);
    const char *b2 = "line1\nline2\ttab";
    empq_provider_excerpt(b2, strlen(b2), NULL, out, sizeof out);
    CHECK_STR(out, "line1 line2 tab");
    /* a cut UTF-8 sequence is dropped: "ab" + "é" (2 bytes) cut after 1 byte */
    const char *b3 = "abcdefghijklmn\xc3\xa9xyz";
    empq_provider_excerpt(b3, strlen(b3), NULL, out, sizeof out);
    CHECK_STR(out, "abcdefghijklmn");
    /* a body key prefix cut at the very end is not leaked */
    const char *b4 = "0123456789ab sk-abcdef-0123456789";
    empq_provider_excerpt(b4, strlen(b4), "sk-abcdef-0123456789", out, sizeof out);
    CHECK_STR(out, "0123456789ab ");
}


/* ==================== reasoning, thinking, safety ==================== */

static char *body_of(void)
{
    char *body = NULL;
    empq_error err = {0};
    CHECK_INT(empq_provider_body(&spec, "Be kind.", "hi", 0, &body, NULL, &err), EMPQ_OK);
    return body;
}

static void test_request_reasoning_params(void)
{
    /* OpenAI-format providers: max_completion_tokens, reasoning_effort, a developer message */
    const char *prov[] = {"openai", "azure-openai", "openai-compatible"};
    for (size_t i = 0; i < 3; i++) {
        reset_spec(prov[i], "http://x/v1");
        params.has_max_completion_tokens = 1;
        params.max_completion_tokens = 2048;
        params.reasoning_effort = "low";
        params.system_role = "developer";
        char *body = body_of();
        CHECK_STR(body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be kind.\"},"
                        "{\"role\":\"user\",\"content\":\"hi\"}],\"max_completion_tokens\":2048,"
                        "\"reasoning_effort\":\"low\"}");
        free(body);
    }
    /* the default role is system */
    reset_spec("openai", NULL);
    params.reasoning_effort = "high";
    char *body = body_of();
    CHECK_CONTAINS(body, "{\"role\":\"system\",\"content\":\"Be kind.\"}");
    free(body);

    /* Anthropic thinking */
    reset_spec("anthropic", NULL);
    spec.model = "claude-sonnet-4-5";
    params.has_max_tokens = 1;
    params.max_tokens = 3000;
    params.has_thinking_budget = 1;
    params.thinking_budget = 2048;
    body = body_of();
    CHECK_STR(body, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":3000,\"system\":\"Be kind.\","
                    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}");
    free(body);

    /* Gemini thinkingConfig and safetySettings */
    reset_spec("gemini", NULL);
    spec.model = "gemini-2.5-flash";
    params.has_thinking_budget = 1;
    params.thinking_budget = 0;
    params.has_include_thoughts = 1;
    params.include_thoughts = 1;
    Empq__SafetySetting s1 = EMPQ__SAFETY_SETTING__INIT, s2 = EMPQ__SAFETY_SETTING__INIT;
    s1.category = "HARM_CATEGORY_DANGEROUS_CONTENT";
    s1.threshold = "BLOCK_ONLY_HIGH";
    s2.category = "HARM_CATEGORY_HARASSMENT";
    s2.threshold = "OFF";
    Empq__SafetySetting *ss[] = {&s1, &s2};
    params.n_safety_settings = 2;
    params.safety_settings = ss;
    body = body_of();
    CHECK_STR(body, "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be kind.\"}]},"
                    "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                    "\"safetySettings\":[{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"threshold\":\"BLOCK_ONLY_HIGH\"},"
                    "{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"threshold\":\"OFF\"}],"
                    "\"generationConfig\":{\"thinkingConfig\":{\"thinkingBudget\":0,\"includeThoughts\":true}}}");
    free(body);
}

static void test_extra_body_merge(void)
{
    empq_error err = {0};
    reset_spec("openai-compatible", "http://x/v1");
    params.has_temperature = 1;
    params.temperature = 0.5;
    spec.extra_body = "{\"top_k\":40,\"chat_template_kwargs\":{\"enable_thinking\":false}}";
    char *body = body_of();
    CHECK_STR(body, "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\",\"content\":\"Be kind.\"},"
                    "{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":0.5,\"top_k\":40,"
                    "\"chat_template_kwargs\":{\"enable_thinking\":false}}");
    free(body);
    CHECK_INT(empq_provider_check_extra(&spec, &err), EMPQ_OK);
    /* an object merges into an object empq sets */
    reset_spec("gemini", NULL);
    params.has_temperature = 1;
    params.temperature = 0.5;
    spec.extra_body = "{\"generationConfig\":{\"responseMimeType\":\"text/plain\"}}";
    body = body_of();
    CHECK_CONTAINS(body, "\"generationConfig\":{\"temperature\":0.5,\"responseMimeType\":\"text/plain\"}");
    free(body);
    /* a field empq sets: refused, named */
    spec.extra_body = "{\"generationConfig\":{\"temperature\":1}}";
    CHECK_INT(empq_provider_check_extra(&spec, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "generationConfig.temperature': provider gemini: empq sets this field");
    reset_spec("openai", NULL);
    spec.extra_body = "{\"messages\":[]}";
    CHECK_INT(empq_provider_check_extra(&spec, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "messages'");
    /* the system message's field counts even for a prompt without one */
    reset_spec("anthropic", NULL);
    spec.extra_body = "{\"system\":\"x\"}";
    CHECK_INT(empq_provider_check_extra(&spec, &err), EMPQ_EINVAL);
    spec.extra_body = "[1]";
    CHECK_INT(empq_provider_check_extra(&spec, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "extra_body is not a JSON object");
}

static void parse_req(const char *provider, long status, const char *body, const char *request_id, int keep,
                      empq_provider_result *out)
{
    reset_spec(provider, "http://x/v1");
    spec.has_keep_thinking = keep;
    spec.keep_thinking = keep;
    empq_http_reply rep = {0};
    rep.status = status;
    rep.body = body;
    rep.body_len = body != NULL ? strlen(body) : 0;
    rep.request_id = request_id;
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, out), EMPQ_OK);
}

static void test_openai_reasoning_replies(void)
{
    empq_provider_result r;
    /* a reasoning model's answer: usage details, fingerprint, request id */
    parse_req("openai", 200,
              "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"model\":\"o3-2025-04-16\","
              "\"system_fingerprint\":\"fp_abc123\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
              "\"content\":\"That sounds hard.\",\"refusal\":null},\"finish_reason\":\"stop\"}],"
              "\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":300,\"total_tokens\":340,"
              "\"prompt_tokens_details\":{\"cached_tokens\":32,\"audio_tokens\":0},"
              "\"completion_tokens_details\":{\"reasoning_tokens\":256,\"audio_tokens\":0}}}",
              "req_0123", 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "That sounds hard.");
    CHECK_INT(r.gen.tokens_in, 40);
    CHECK_INT(r.gen.tokens_out, 300); /* reasoning included, as billed */
    CHECK(r.gen.has_reasoning_tokens && r.gen.reasoning_tokens == 256);
    CHECK(r.gen.has_cached_tokens && r.gen.cached_tokens == 32);
    CHECK_STR(r.gen.system_fingerprint, "fp_abc123");
    CHECK_STR(r.gen.request_id, "req_0123");
    CHECK(r.gen.thinking == NULL);
    empq_provider_result_clear(&r);

    /* the reasoning used the whole budget: a length stop with content "" */
    parse_req("openai", 200,
              "{\"model\":\"o3\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
              "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":64,"
              "\"completion_tokens_details\":{\"reasoning_tokens\":64}}}",
              "req_1", 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "reasoning_exhausted_budget");
    CHECK(r.gen.text == NULL);
    CHECK_INT(r.gen.tokens_out, 64); /* kept: billed all the same */
    CHECK_STR(r.gen.request_id, "req_1");
    CHECK_STR(r.gen.finish_reason, "length");
    CHECK(!r.model_fatal);
    empq_provider_result_clear(&r);

    /* content null, no refusal, normal stop: empty_reply, retried */
    parse_req("azure-openai", 200,
              "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
              "\"refusal\":null},\"finish_reason\":\"stop\"}]}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "empty_reply");
    CHECK(r.gen.text == NULL);
    empq_provider_result_clear(&r);
    /* "" the same */
    parse_req("openai", 200, "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}", NULL, 0, &r);
    CHECK_STR(r.reason, "empty_reply");
    empq_provider_result_clear(&r);

    /* vLLM's reasoning parser: reasoning_content is never the answer */
    parse_req("openai-compatible", 200,
              "{\"model\":\"gpt-oss\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hello.\","
              "\"reasoning_content\":\"The user greets.\"},\"finish_reason\":\"stop\"}]}",
              NULL, 1, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "Hello.");
    CHECK_STR(r.gen.thinking, "The user greets."); /* keep_thinking */
    empq_provider_result_clear(&r);
    parse_req("openai-compatible", 200,
              "{\"model\":\"gpt-oss\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,"
              "\"reasoning_content\":\"Thinking...\"},\"finish_reason\":\"stop\"}]}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "thinking_only");
    CHECK(r.gen.thinking == NULL && r.gen.text == NULL);
    empq_provider_result_clear(&r);
}

static void test_anthropic_thinking_replies(void)
{
    empq_provider_result r;
    const char *ok = "{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
                     "\"content\":[{\"type\":\"thinking\",\"thinking\":\"They feel alone.\",\"signature\":\"EqQB\"},"
                     "{\"type\":\"text\",\"text\":\"I'm here with you.\"}],\"stop_reason\":\"end_turn\","
                     "\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,"
                     "\"cache_read_input_tokens\":100,\"output_tokens\":350}}";
    parse_req("anthropic", 200, ok, "req_011CS", 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "I'm here with you.");
    CHECK(r.gen.thinking == NULL);
    CHECK_INT(r.gen.tokens_in, 120); /* input + cache reads + cache writes */
    CHECK(r.gen.has_cached_tokens && r.gen.cached_tokens == 100);
    CHECK_INT(r.gen.tokens_out, 350);
    CHECK_STR(r.gen.request_id, "req_011CS");
    empq_provider_result_clear(&r);
    parse_req("anthropic", 200, ok, NULL, 1, &r);
    CHECK_STR(r.gen.thinking, "They feel alone.");
    CHECK_STR(r.gen.text, "I'm here with you.");
    empq_provider_result_clear(&r);

    /* max_tokens reached inside the thinking: only a thinking block */
    parse_req("anthropic", 200,
              "{\"type\":\"message\",\"model\":\"claude-sonnet-4-5\",\"content\":[{\"type\":\"thinking\","
              "\"thinking\":\"Let me\",\"signature\":\"x\"}],\"stop_reason\":\"max_tokens\","
              "\"usage\":{\"input_tokens\":20,\"output_tokens\":2048}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "reasoning_exhausted_budget");
    CHECK_INT(r.gen.tokens_out, 2048);
    empq_provider_result_clear(&r);
    /* thinking only, end_turn */
    parse_req("anthropic", 200,
              "{\"type\":\"message\",\"content\":[{\"type\":\"redacted_thinking\",\"data\":\"abc\"}],"
              "\"stop_reason\":\"end_turn\"}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "thinking_only");
    empq_provider_result_clear(&r);
    /* content [] */
    parse_req("anthropic", 200, "{\"type\":\"message\",\"content\":[],\"stop_reason\":\"end_turn\"}", NULL, 0, &r);
    CHECK_STR(r.reason, "empty_reply");
    empq_provider_result_clear(&r);
    /* a text block with "" and a max_tokens stop, no thinking */
    parse_req("anthropic", 200,
              "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"\"}],\"stop_reason\":\"max_tokens\"}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "length_before_text");
    empq_provider_result_clear(&r);
}

static void test_gemini_thought_safety_replies(void)
{
    empq_provider_result r;
    const char *ok = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"**Weighing** the loss\",\"thought\":true},"
                     "{\"text\":\"I'm so sorry.\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0,"
                     "\"safetyRatings\":[{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"NEGLIGIBLE\"}]}],"
                     "\"usageMetadata\":{\"promptTokenCount\":12,\"candidatesTokenCount\":5,\"thoughtsTokenCount\":200,"
                     "\"cachedContentTokenCount\":8,\"totalTokenCount\":217},\"modelVersion\":\"gemini-2.5-flash\","
                     "\"responseId\":\"resp-77\"}";
    parse_req("gemini", 200, ok, NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "I'm so sorry."); /* the thought part is not the answer */
    CHECK(r.gen.thinking == NULL);
    CHECK_INT(r.gen.tokens_in, 12);
    CHECK_INT(r.gen.tokens_out, 205); /* thoughts are billed as output */
    CHECK(r.gen.has_reasoning_tokens && r.gen.reasoning_tokens == 200);
    CHECK(r.gen.has_cached_tokens && r.gen.cached_tokens == 8);
    CHECK_STR(r.gen.request_id, "resp-77");
    CHECK_STR(r.gen.model_reported, "gemini-2.5-flash");
    CHECK_STR(r.gen.safety_ratings, "[{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"NEGLIGIBLE\"}]");
    empq_provider_result_clear(&r);
    parse_req("gemini", 200, ok, NULL, 1, &r);
    CHECK_STR(r.gen.thinking, "**Weighing** the loss");
    empq_provider_result_clear(&r);

    /* thought parts only */
    parse_req("gemini", 200,
              "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\",\"thought\":true}],\"role\":\"model\"},"
              "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"thoughtsTokenCount\":9}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "thinking_only");
    CHECK_INT(r.gen.tokens_out, 9);
    empq_provider_result_clear(&r);
    /* MAX_TOKENS inside the thinking: no content at all */
    parse_req("gemini", 200,
              "{\"candidates\":[{\"content\":{\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\",\"index\":0}],"
              "\"usageMetadata\":{\"promptTokenCount\":3,\"totalTokenCount\":103,\"thoughtsTokenCount\":100}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "reasoning_exhausted_budget");
    empq_provider_result_clear(&r);
    /* a candidate without content, normal stop */
    parse_req("gemini", 200, "{\"candidates\":[{\"finishReason\":\"STOP\",\"index\":0}]}", NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "empty_reply");
    empq_provider_result_clear(&r);
    /* a safety block: its ratings kept for the dead letter */
    parse_req("gemini", 200,
              "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,\"safetyRatings\":[{\"category\":"
              "\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\",\"blocked\":true}]}],"
              "\"usageMetadata\":{\"promptTokenCount\":30,\"totalTokenCount\":30}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "blocked:SAFETY");
    CHECK_CONTAINS(r.gen.safety_ratings, "\"blocked\":true");
    CHECK_INT(r.gen.tokens_in, 30);
    empq_provider_result_clear(&r);
    /* the prompt blocked: promptFeedback kept */
    parse_req("gemini", 200,
              "{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\",\"safetyRatings\":[]}}", NULL, 0, &r);
    CHECK_STR(r.reason, "blocked:PROHIBITED_CONTENT");
    CHECK_CONTAINS(r.gen.safety_ratings, "PROHIBITED_CONTENT");
    empq_provider_result_clear(&r);
}

static void test_model_fatal_errors(void)
{
    empq_provider_result r;
    /* OpenAI insufficient_quota: a 429 that no retry fixes */
    parse_req("openai", 429,
              "{\"error\":{\"message\":\"You exceeded your current quota, please check your plan and billing "
              "details.\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"insufficient_quota\"}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK(r.model_fatal);
    CHECK_CONTAINS(r.reason, "insufficient_quota: HTTP 429: You exceeded your current quota");
    empq_provider_result_clear(&r);
    /* an ordinary 429 stays a retry */
    parse_req("openai", 429, "{\"error\":{\"message\":\"Rate limit\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK(!r.model_fatal);
    empq_provider_result_clear(&r);
    /* Anthropic billing and permission */
    parse_req("anthropic", 400,
              "{\"type\":\"error\",\"error\":{\"type\":\"billing_error\",\"message\":\"Your credit balance is too low\"}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK(r.model_fatal);
    CHECK_CONTAINS(r.reason, "billing_error: HTTP 400: Your credit balance is too low");
    empq_provider_result_clear(&r);
    parse_req("anthropic", 403,
              "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\",\"message\":\"no access\"}}", NULL, 0, &r);
    CHECK(r.model_fatal);
    CHECK_CONTAINS(r.reason, "permission_error: HTTP 403");
    empq_provider_result_clear(&r);
    /* Google PERMISSION_DENIED; a 401 is the worker's key: not the model's */
    parse_req("gemini", 403, "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":\"PERMISSION_DENIED\"}}", NULL,
              0, &r);
    CHECK(r.model_fatal);
    CHECK_CONTAINS(r.reason, "PERMISSION_DENIED: HTTP 403: denied");
    empq_provider_result_clear(&r);
    parse_req("openai-compatible", 401, NULL, NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK(!r.model_fatal);
    CHECK_STR(r.reason, "HTTP 401");
    empq_provider_result_clear(&r);
    parse_req("openai-compatible", 402, NULL, NULL, 0, &r);
    CHECK(r.model_fatal);
    CHECK_STR(r.reason, "payment_required: HTTP 402");
    empq_provider_result_clear(&r);
    /* Anthropic's empty prepaid balance: a 400 invalid_request_error */
    parse_req("anthropic", 400,
              "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Your credit "
              "balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase "
              "credits.\"}}",
              NULL, 0, &r);
    CHECK(r.model_fatal);
    CHECK_CONTAINS(r.reason, "credit_balance_too_low: HTTP 400: Your credit balance is too low");
    empq_provider_result_clear(&r);
    /* Google's daily quota: 429 with a per-day QuotaFailure (and a 12 h retryDelay) */
    parse_req("gemini", 429,
              "{\"error\":{\"code\":429,\"message\":\"You exceeded your current quota\",\"status\":"
              "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
              "\"violations\":[{\"quotaMetric\":\"generativelanguage.googleapis.com/generate_requests_per_model_per_day\","
              "\"quotaId\":\"GenerateRequestsPerDayPerProjectPerModel\"}]},{\"@type\":"
              "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"43200s\"}]}}",
              NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK(r.model_fatal);
    CHECK_CONTAINS(r.reason, "daily_quota_exhausted: HTTP 429");
    empq_provider_result_clear(&r);
    /* a content-policy 400 is the prompt's, not the model's */
    parse_req("azure-openai", 400, "{\"error\":{\"message\":\"filtered\",\"code\":\"content_filter\"}}", NULL, 0, &r);
    CHECK(!r.model_fatal);
    empq_provider_result_clear(&r);
}

static void test_google_retry_delay(void)
{
    empq_provider_result r;
    const char *body = "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":"
                       "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\","
                       "\"violations\":[]},{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                       "\"retryDelay\":\"7.5s\"}]}}";
    parse_req("gemini", 429, body, NULL, 0, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_INT(r.retry_after_ms, 7500);
    CHECK(!r.model_fatal);
    empq_provider_result_clear(&r);
    /* Retry-After wins when both are given */
    reset_spec("gemini", NULL);
    empq_http_reply rep = {.status = 429, .body = body, .body_len = strlen(body), .retry_after = "2"};
    CHECK_INT(empq_provider_parse(&spec, &rep, KEY, NOW, &r), EMPQ_OK);
    CHECK_INT(r.retry_after_ms, 2000);
    empq_provider_result_clear(&r);
    /* a malformed delay is ignored */
    parse_req("gemini", 429,
              "{\"error\":{\"details\":[{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"soon\"}]}}",
              NULL, 0, &r);
    CHECK_INT(r.retry_after_ms, 0);
    empq_provider_result_clear(&r);
}

int main(void)
{
    RUN(test_openai_request_exact);
    RUN(test_compatible_endpoint);
    RUN(test_azure_endpoint);
    RUN(test_unsupported);
    RUN(test_anthropic);
    RUN(test_gemini);
    RUN(test_parse_success);
    RUN(test_parse_refusal);
    RUN(test_parse_errors);
    RUN(test_parse_malformed);
    RUN(test_classify);
    RUN(test_retry_after);
    RUN(test_redact_excerpt);
    RUN(test_request_reasoning_params);
    RUN(test_extra_body_merge);
    RUN(test_openai_reasoning_replies);
    RUN(test_anthropic_thinking_replies);
    RUN(test_gemini_thought_safety_replies);
    RUN(test_model_fatal_errors);
    RUN(test_google_retry_delay);
    CHECK_DONE();
}
