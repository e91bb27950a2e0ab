/* test_batchwire.c: the batch APIs' exact request bytes and the readings of
 * batch objects, lists and result lines (OpenAI Batch API, Anthropic
 * Message Batches, Gemini Batch Mode with inline requests), in the formats
 * the providers document. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "empq/batchwire.h"

#define KEY "sk-test-SECRET-0123456789"
#define NOW 1700000000000ULL

static Empq__ModelSpec spec;
static Empq__ModelPrices prices;

static void reset_spec(const char *provider, const char *base_url)
{
    Empq__ModelSpec m = EMPQ__MODEL_SPEC__INIT;
    Empq__ModelPrices p = EMPQ__MODEL_PRICES__INIT;
    spec = m;
    prices = p;
    spec.alias = "b";
    spec.provider = (char *)provider;
    spec.base_url = (char *)base_url;
    spec.model = "gpt-4o-mini";
}

static void test_custom_ids(void)
{
    char id[EMPQ_BATCHWIRE_ID_MAX];
    CHECK_STR(empq_batchwire_custom_id(4294967295u, 7, id, sizeof id), "j4294967295-a7");
    uint32_t j = 0, a = 0;
    CHECK_INT(empq_batchwire_parse_custom_id(id, &j, &a), EMPQ_OK);
    CHECK(j == 4294967295u && a == 7);
    CHECK_INT(empq_batchwire_parse_custom_id("j4294967296-a1", &j, &a), EMPQ_EPARSE);
    CHECK_INT(empq_batchwire_parse_custom_id("j1-a", &j, &a), EMPQ_EPARSE);
    CHECK_INT(empq_batchwire_parse_custom_id("j1-a2x", &j, &a), EMPQ_EPARSE);
    CHECK_INT(empq_batchwire_parse_custom_id("request-1", &j, &a), EMPQ_EPARSE);
    CHECK_INT(empq_batchwire_parse_custom_id(NULL, &j, &a), EMPQ_EPARSE);
    CHECK(empq_batchwire_supported("openai") && empq_batchwire_supported("anthropic"));
    CHECK(empq_batchwire_supported("gemini") && !empq_batchwire_supported("openai-compatible"));
    CHECK(!empq_batchwire_supported(NULL));
}

static void test_endpoints(void)
{
    empq_http_request r = {0};
    empq_error err = {0};
    reset_spec("openai", "http://127.0.0.1:9/v1/");
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_UPLOAD, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1/files");
    CHECK_INT(r.n_headers, 1); /* multipart: the transport sets the type */
    CHECK_STR(r.headers[0], "Authorization: Bearer " KEY);
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_CREATE, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "http://127.0.0.1:9/v1/batches");
    CHECK_STR(r.headers[0], "Content-Type: application/json");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_GET, "batch_abc123", &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1/batches/batch_abc123");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_LIST, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "http://127.0.0.1:9/v1/batches?limit=100");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_CANCEL, "batch_abc123", &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1/batches/batch_abc123/cancel");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_RESULTS, "file-xyz", &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "http://127.0.0.1:9/v1/files/file-xyz/content");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_GET, "../x?y", &r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "needs an id");
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_GET, NULL, &r, &err), EMPQ_EINVAL);

    reset_spec("anthropic", NULL);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_CREATE, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "https://api.anthropic.com/v1/messages/batches");
    CHECK_INT(r.n_headers, 3);
    CHECK_STR(r.headers[1], "anthropic-version: 2023-06-01");
    CHECK_STR(r.headers[2], "x-api-key: " KEY);
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_RESULTS, "msgbatch_01", &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.url, "https://api.anthropic.com/v1/messages/batches/msgbatch_01/results");
    CHECK_INT(r.n_headers, 2);
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_UPLOAD, NULL, &r, &err), EMPQ_EINVAL);

    reset_spec("openai-compatible", "http://127.0.0.1:9/v1");
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_CREATE, NULL, &r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "provider openai-compatible has no batch mode");
}

static void test_lines_and_create(void)
{
    empq_error err = {0};
    char *line = NULL, *body = NULL;
    size_t len = 0;
    const char *req = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    reset_spec("openai", NULL);
    CHECK_INT(empq_batchwire_line(&spec, "j3-a1", req, strlen(req), &line, &len, &err), EMPQ_OK);
    CHECK_STR(line, "{\"custom_id\":\"j3-a1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":"
                    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}\n");
    CHECK_INT(len, strlen(line));
    free(line);
    CHECK_INT(empq_batchwire_line(&spec, "bad id", req, strlen(req), &line, &len, &err), EMPQ_EINVAL);
    CHECK_INT(empq_batchwire_line(&spec, "j1-a1", "[1]", 3, &line, &len, &err), EMPQ_EINVAL);
    CHECK_INT(empq_batchwire_create_body(&spec, "file-abc", "r7:b:2", NULL, NULL, 0, &body, &len, &err), EMPQ_OK);
    CHECK_STR(body, "{\"input_file_id\":\"file-abc\",\"endpoint\":\"/v1/chat/completions\","
                    "\"completion_window\":\"24h\",\"metadata\":{\"empq_batch\":\"r7:b:2\"}}");
    free(body);

    reset_spec("anthropic", NULL);
    const char *areq = "{\"model\":\"claude\",\"max_tokens\":1024,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char *lines[2] = {NULL, NULL};
    CHECK_INT(empq_batchwire_line(&spec, "j0-a1", areq, strlen(areq), &lines[0], NULL, &err), EMPQ_OK);
    CHECK_INT(empq_batchwire_line(&spec, "j1-a1", areq, strlen(areq), &lines[1], NULL, &err), EMPQ_OK);
    CHECK_STR(lines[0], "{\"custom_id\":\"j0-a1\",\"params\":{\"model\":\"claude\",\"max_tokens\":1024,"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}");
    CHECK_INT(empq_batchwire_create_body(&spec, NULL, "k", NULL, lines, 2, &body, &len, &err), EMPQ_OK);
    CHECK_CONTAINS(body, "{\"requests\":[{\"custom_id\":\"j0-a1\",\"params\":");
    CHECK_CONTAINS(body, "},{\"custom_id\":\"j1-a1\",\"params\":");
    CHECK_INT(len, strlen(body));
    free(body);
    free(lines[0]);
    free(lines[1]);
    CHECK_INT(empq_batchwire_create_body(&spec, NULL, "k", NULL, NULL, 0, &body, &len, &err), EMPQ_EINVAL);
}

/* OpenAI's batch object, as its API reference shows it. */
static const char OPENAI_BATCH[] =
    "{\"id\":\"batch_abc123\",\"object\":\"batch\",\"endpoint\":\"/v1/chat/completions\",\"errors\":null,"
    "\"input_file_id\":\"file-abc123\",\"completion_window\":\"24h\",\"status\":\"completed\","
    "\"output_file_id\":\"file-cvaTdG\",\"error_file_id\":\"file-HOWS94\",\"created_at\":1711471533,"
    "\"in_progress_at\":1711471538,\"expires_at\":1711557933,\"finalizing_at\":1711493133,"
    "\"completed_at\":1711493163,\"failed_at\":null,\"expired_at\":null,\"cancelling_at\":null,"
    "\"cancelled_at\":null,\"request_counts\":{\"total\":100,\"completed\":95,\"failed\":5},"
    "\"metadata\":{\"empq_batch\":\"r1:m0:b3\"}}";

/* Anthropic's message batch object, as its API reference shows it. */
static const char ANTHROPIC_BATCH[] =
    "{\"id\":\"msgbatch_013Zva2CMHLNnXjNJJKqJ2EF\",\"type\":\"message_batch\",\"processing_status\":\"in_progress\","
    "\"request_counts\":{\"processing\":100,\"succeeded\":50,\"errored\":30,\"canceled\":10,\"expired\":10},"
    "\"ended_at\":null,\"created_at\":\"2024-08-20T18:37:24.100435Z\",\"expires_at\":\"2024-08-21T18:37:24.100435Z\","
    "\"cancel_initiated_at\":null,\"results_url\":null}";

static void test_batch_objects(void)
{
    empq_error err = {0};
    empq_batch_info b;
    reset_spec("openai", NULL);
    CHECK_INT(empq_batchwire_parse_batch(&spec, OPENAI_BATCH, strlen(OPENAI_BATCH), &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    CHECK_STR(empq_batchwire_state_name(b.state), "ended");
    CHECK_STR(b.id, "batch_abc123");
    CHECK_STR(b.status, "completed");
    CHECK(b.total == 100 && b.done_ok == 95 && b.done_failed == 5);
    CHECK_STR(b.output_file_id, "file-cvaTdG");
    CHECK_STR(b.error_file_id, "file-HOWS94");
    CHECK_STR(b.empq_key, "r1:m0:b3");
    CHECK(b.created_at == 1711471533 && b.expires_at == 1711557933);

    const char *failed = "{\"id\":\"batch_1\",\"object\":\"batch\",\"status\":\"failed\",\"errors\":{\"object\":\"list\","
                         "\"data\":[{\"code\":\"invalid_json_line\",\"message\":\"line 3 is not JSON\",\"line\":3}]}}";
    CHECK_INT(empq_batchwire_parse_batch(&spec, failed, strlen(failed), &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_FAILED);
    CHECK_STR(b.reason, "invalid_json_line: line 3 is not JSON");
    const char *odd = "{\"id\":\"batch_1\",\"object\":\"batch\",\"status\":\"paused\"}";
    CHECK_INT(empq_batchwire_parse_batch(&spec, odd, strlen(odd), &b, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "unknown status 'paused'");
    CHECK_INT(empq_batchwire_parse_batch(&spec, ANTHROPIC_BATCH, strlen(ANTHROPIC_BATCH), &b, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "not a batch object");

    reset_spec("anthropic", NULL);
    CHECK_INT(empq_batchwire_parse_batch(&spec, ANTHROPIC_BATCH, strlen(ANTHROPIC_BATCH), &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_OPEN);
    CHECK(b.total == 200 && b.done_ok == 50 && b.done_failed == 50);
    CHECK(b.created_at == 1724179044);
    CHECK(b.expires_at == 1724179044 + 86400);
    CHECK_STR(b.results_url, "");
}

static void test_find(void)
{
    empq_error err = {0};
    empq_batch_info b;
    int more = 0;
    reset_spec("openai", NULL);
    char list[4096];
    snprintf(list, sizeof list,
             "{\"object\":\"list\",\"data\":[{\"id\":\"batch_x\",\"object\":\"batch\",\"status\":\"in_progress\","
             "\"metadata\":{\"empq_batch\":\"other\"}},%s],\"first_id\":\"batch_x\",\"last_id\":\"batch_abc123\","
             "\"has_more\":true}",
             OPENAI_BATCH);
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), "r1:m0:b3", 0, 0, NULL, 0, &b, &more, &err), EMPQ_OK);
    CHECK_STR(b.id, "batch_abc123");
    CHECK(more == 1);
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), "r1:m0:b4", 0, 0, NULL, 0, &b, &more, &err),
              EMPQ_ENOTFOUND);

    reset_spec("anthropic", NULL);
    snprintf(list, sizeof list, "{\"data\":[%s],\"has_more\":false,\"first_id\":null,\"last_id\":null}",
             ANTHROPIC_BATCH);
    const char *taken[] = {"msgbatch_013Zva2CMHLNnXjNJJKqJ2EF"};
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), NULL, 1724179000, 200, NULL, 0, &b, &more, &err),
              EMPQ_OK);
    CHECK(more == 0);
    CHECK_STR(b.id, "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF");
    /* created before the submission began, another size, or already ours: not it */
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), NULL, 1724179045, 200, NULL, 0, &b, &more, &err),
              EMPQ_ENOTFOUND);
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), NULL, 0, 199, NULL, 0, &b, &more, &err), EMPQ_ENOTFOUND);
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), NULL, 0, 200, taken, 1, &b, &more, &err),
              EMPQ_ENOTFOUND);
    CHECK_INT(empq_batchwire_find(&spec, "[]", 2, NULL, 0, 200, NULL, 0, &b, &more, &err), EMPQ_EPARSE);
    /* two of the same size in the same second, newest first as listed: the
     * one created first (to the millisecond) is found, then the other once
     * the first is taken */
    snprintf(list, sizeof list,
             "{\"data\":[{\"id\":\"msgbatch_02\",\"type\":\"message_batch\",\"processing_status\":\"ended\","
             "\"request_counts\":{\"processing\":0,\"succeeded\":8},\"created_at\":\"2024-08-20T18:37:24.310Z\"},"
             "{\"id\":\"msgbatch_01\",\"type\":\"message_batch\",\"processing_status\":\"ended\","
             "\"request_counts\":{\"processing\":0,\"succeeded\":8},\"created_at\":\"2024-08-20T18:37:24.305Z\"}],"
             "\"has_more\":false}");
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), NULL, 1724179000, 8, NULL, 0, &b, &more, &err), EMPQ_OK);
    CHECK_STR(b.id, "msgbatch_01");
    const char *first[] = {"msgbatch_01"};
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), NULL, 1724179000, 8, first, 1, &b, &more, &err), EMPQ_OK);
    CHECK_STR(b.id, "msgbatch_02");
}

static void result(const char *line, int want_rc, char *cid, empq_provider_result *r)
{
    empq_error err = {0};
    CHECK_INT(empq_batchwire_result(&spec, line, strlen(line), KEY, NOW, cid, r, &err), want_rc);
}

static void test_openai_results(void)
{
    char cid[EMPQ_BATCHWIRE_ID_MAX];
    empq_provider_result r;
    reset_spec("openai", NULL);
    result("{\"id\":\"batch_req_123\",\"custom_id\":\"j5-a1\",\"response\":{\"status_code\":200,"
           "\"request_id\":\"req_123\",\"body\":{\"id\":\"chatcmpl-123\",\"object\":\"chat.completion\","
           "\"created\":1711652795,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
           "\"assistant\",\"content\":\"I'm sorry.\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
           "{\"prompt_tokens\":22,\"completion_tokens\":2,\"total_tokens\":24},\"system_fingerprint\":\"fp_123\"}},"
           "\"error\":null}",
           EMPQ_OK, cid, &r);
    CHECK_STR(cid, "j5-a1");
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "I'm sorry.");
    CHECK_STR(r.gen.request_id, "req_123");
    CHECK_INT(r.gen.tokens_in, 22);
    CHECK_INT(r.gen.tokens_out, 2);
    empq_provider_result_clear(&r);

    /* a request the API refused, inside the output file */
    result("{\"id\":\"batch_req_124\",\"custom_id\":\"j6-a1\",\"response\":{\"status_code\":400,\"request_id\":"
           "\"req_124\",\"body\":{\"error\":{\"message\":\"Invalid 'max_tokens'\",\"type\":"
           "\"invalid_request_error\",\"param\":\"max_tokens\",\"code\":null}}},\"error\":null}",
           EMPQ_OK, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_CONTAINS(r.reason, "HTTP 400: Invalid 'max_tokens'");
    empq_provider_result_clear(&r);

    /* the error file of an expired and of a cancelled batch */
    result("{\"id\":\"batch_req_125\",\"custom_id\":\"j7-a2\",\"response\":null,\"error\":{\"code\":"
           "\"batch_expired\",\"message\":\"This request could not be executed before the completion window "
           "expired.\"}}",
           EMPQ_OK, cid, &r);
    CHECK_STR(cid, "j7-a2");
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "batch_expired");
    empq_provider_result_clear(&r);
    result("{\"id\":\"batch_req_126\",\"custom_id\":\"j8-a1\",\"response\":null,\"error\":{\"code\":"
           "\"batch_cancelled\",\"message\":\"This request was cancelled.\"}}",
           EMPQ_OK, cid, &r);
    CHECK_STR(r.reason, "batch_cancelled");
    empq_provider_result_clear(&r);
    result("{\"id\":\"batch_req_127\",\"custom_id\":\"j9-a1\",\"response\":null,\"error\":{\"code\":"
           "\"server_error\",\"message\":\"key " KEY " failed\"}}",
           EMPQ_OK, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "batch_error: server_error: key *** failed");
    empq_provider_result_clear(&r);

    result("{\"id\":\"x\",\"custom_id\":\"bad id\",\"response\":null,\"error\":null}", EMPQ_EPARSE, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    result("{\"id\":\"x\",\"custom_id\":\"j1-a1\",\"response\":null,\"error\":null}", EMPQ_EPARSE, cid, &r);
    result("not json", EMPQ_EPARSE, cid, &r);
    empq_provider_result_clear(&r);
}

static void test_anthropic_results(void)
{
    char cid[EMPQ_BATCHWIRE_ID_MAX];
    empq_provider_result r;
    reset_spec("anthropic", NULL);
    result(
        "{\"custom_id\":\"j1-a1\",\"result\":{\"type\":\"succeeded\",\"message\":{\"id\":\"msg_"
        "014VwiXbi91y3JMjcpyGBHX5\","
        "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3-5-sonnet-20240620\",\"content\":[{\"type\":"
        "\"text\",\"text\":\"Hello again!\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":"
        "{\"input_tokens\":11,\"output_tokens\":36}}}}",
        EMPQ_OK, cid, &r);
    CHECK_STR(cid, "j1-a1");
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.gen.text, "Hello again!");
    CHECK_INT(r.gen.tokens_in, 11);
    CHECK_INT(r.gen.tokens_out, 36);
    empq_provider_result_clear(&r);

    result("{\"custom_id\":\"j2-a1\",\"result\":{\"type\":\"errored\",\"error\":{\"type\":\"error\",\"error\":"
           "{\"type\":\"invalid_request_error\",\"message\":\"max_tokens: Field required\"}}}}",
           EMPQ_OK, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_CONTAINS(r.reason, "max_tokens: Field required");
    empq_provider_result_clear(&r);
    result("{\"custom_id\":\"j3-a1\",\"result\":{\"type\":\"errored\",\"error\":{\"type\":\"error\",\"error\":"
           "{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}}",
           EMPQ_OK, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_CONTAINS(r.reason, "Overloaded");
    empq_provider_result_clear(&r);
    result("{\"custom_id\":\"j4-a1\",\"result\":{\"type\":\"expired\"}}", EMPQ_OK, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "batch_expired");
    empq_provider_result_clear(&r);
    result("{\"custom_id\":\"j5-a1\",\"result\":{\"type\":\"canceled\"}}", EMPQ_OK, cid, &r);
    CHECK_STR(r.reason, "batch_cancelled");
    empq_provider_result_clear(&r);
    result("{\"custom_id\":\"j5-a1\",\"result\":{\"type\":\"lost\"}}", EMPQ_EPARSE, cid, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    empq_provider_result_clear(&r);
}

/* ==================== Gemini ==================== */

/* A finished batch as GET batches/{id} answers it: the Operation, its
 * metadata the GenerateContentBatch with the inlined responses (int64
 * counts as strings, as proto JSON writes them). */
#define GEMINI_DONE                                                                                                    \
    "{\"name\":\"batches/123456abcd\",\"metadata\":{\"@type\":\"type.googleapis.com/google.ai.generativelanguage."     \
    "v1main.GenerateContentBatch\",\"model\":\"models/gemini-2.5-flash\",\"displayName\":\"r1:m0:b3\","                \
    "\"createTime\":\"2025-07-10T12:00:00.123456Z\",\"updateTime\":\"2025-07-10T12:05:00Z\",\"endTime\":"              \
    "\"2025-07-10T12:05:00Z\",\"batchStats\":{\"requestCount\":\"3\",\"successfulRequestCount\":\"2\","                \
    "\"failedRequestCount\":\"1\"},\"state\":\"BATCH_STATE_SUCCEEDED\",\"output\":{\"inlinedResponses\":"              \
    "{\"inlinedResponses\":[{\"response\":{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"That sounds "          \
    "hard.\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":"                         \
    "{\"promptTokenCount\":12,\"candidatesTokenCount\":4,\"totalTokenCount\":16},\"modelVersion\":"                    \
    "\"gemini-2.5-flash\",\"responseId\":\"r-1\"},\"metadata\":{\"key\":\"j1-a1\"}},{\"error\":{\"code\":3,"           \
    "\"message\":\"Request contains an invalid argument.\"},\"metadata\":{\"key\":\"j2-a1\"}},{\"response\":"          \
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Congratulations!\"}],\"role\":\"model\"},"                  \
    "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":2}},"              \
    "\"metadata\":{\"key\":\"j3-a2\"}}]}}},\"done\":true,\"response\":{\"@type\":\"type.googleapis.com/google."        \
    "ai.generativelanguage.v1main.GenerateContentBatchOutput\"}}"

static void test_gemini_endpoints(void)
{
    empq_http_request r = {0};
    empq_error err = {0};
    reset_spec("gemini", "http://127.0.0.1:9/v1beta");
    spec.model = "gemini-2.5-flash";
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_CREATE, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:batchGenerateContent");
    CHECK_INT(r.n_headers, 2);
    CHECK_STR(r.headers[0], "Content-Type: application/json");
    CHECK_STR(r.headers[1], "x-goog-api-key: " KEY);
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_GET, "123456abcd", &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1beta/batches/123456abcd");
    CHECK_INT(r.n_headers, 1);
    CHECK_STR(r.headers[0], "x-goog-api-key: " KEY);
    empq_http_request_clear(&r);
    /* the results are the finished batch's own GET */
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_RESULTS, "123456abcd", &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "GET");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1beta/batches/123456abcd");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_LIST, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "http://127.0.0.1:9/v1beta/batches?pageSize=100");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_CANCEL, "123456abcd", &r, &err), EMPQ_OK);
    CHECK_STR(r.method, "POST");
    CHECK_STR(r.url, "http://127.0.0.1:9/v1beta/batches/123456abcd:cancel");
    empq_http_request_clear(&r);
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_UPLOAD, NULL, &r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "gemini batches take no file upload");
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_GET, "batches/1", &r, &err), EMPQ_EINVAL);
    /* the default base and a "models/" name */
    reset_spec("gemini", NULL);
    spec.model = "models/gemini-2.5-pro";
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, NULL, EMPQ_BATCH_OP_CREATE, NULL, &r, &err), EMPQ_OK);
    CHECK_STR(r.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:batchGenerateContent");
    CHECK_INT(r.n_headers, 1);
    empq_http_request_clear(&r);
}

static void test_gemini_lines_and_create(void)
{
    empq_error err = {0};
    char *line = NULL, *body = NULL, *head = NULL, *tail = NULL;
    size_t len = 0;
    reset_spec("gemini", NULL);
    const char *req = "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],\"generationConfig\":"
                      "{\"maxOutputTokens\":100}}";
    CHECK_INT(empq_batchwire_line(&spec, "j7-a1", req, strlen(req), &line, &len, &err), EMPQ_OK);
    CHECK_STR(line, "{\"request\":{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
                    "\"generationConfig\":{\"maxOutputTokens\":100}},\"metadata\":{\"key\":\"j7-a1\"}}");
    CHECK(len == strlen(line));
    char *reqs[] = {line, line};
    CHECK_INT(empq_batchwire_create_body(&spec, NULL, "r1:m0:b3", NULL, reqs, 2, &body, &len, &err), EMPQ_OK);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"batch\":{\"displayName\":\"r1:m0:b3\",\"inputConfig\":{\"requests\":{\"requests\":[%s,%s]}}}}", line,
             line);
    CHECK_STR(body, want);
    /* the frame around the requests makes the same bytes */
    CHECK_INT(empq_batchwire_create_frame(&spec, "r1:m0:b3", &head, &tail, &err), EMPQ_OK);
    char joined[1024];
    snprintf(joined, sizeof joined, "%s%s,%s%s", head, line, line, tail);
    CHECK_STR(joined, want);
    free(head);
    free(tail);
    free(body);
    /* a key that needs escaping stays one JSON string */
    CHECK_INT(empq_batchwire_create_frame(&spec, "a\"]}}}}", &head, &tail, &err), EMPQ_OK);
    CHECK_STR(head, "{\"batch\":{\"displayName\":\"a\\\"]}}}}\",\"inputConfig\":{\"requests\":{\"requests\":[");
    CHECK_STR(tail, "]}}}}");
    free(head);
    free(tail);
    CHECK_INT(empq_batchwire_create_body(&spec, NULL, NULL, NULL, reqs, 2, &body, &len, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "its key");
    free(line);
    /* anthropic's frame; openai has none */
    reset_spec("anthropic", NULL);
    CHECK_INT(empq_batchwire_create_frame(&spec, NULL, &head, &tail, &err), EMPQ_OK);
    CHECK_STR(head, "{\"requests\":[");
    CHECK_STR(tail, "]}");
    free(head);
    free(tail);
    reset_spec("openai", NULL);
    CHECK_INT(empq_batchwire_create_frame(&spec, "k", &head, &tail, &err), EMPQ_EINVAL);
}

static void test_gemini_batches(void)
{
    empq_error err = {0};
    empq_batch_info b;
    int more = 0;
    reset_spec("gemini", NULL);
    CHECK_INT(empq_batchwire_parse_batch(&spec, GEMINI_DONE, strlen(GEMINI_DONE), &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    CHECK_STR(b.id, "123456abcd");
    CHECK_STR(b.status, "BATCH_STATE_SUCCEEDED");
    CHECK(b.total == 3 && b.done_ok == 2 && b.done_failed == 1);
    CHECK_STR(b.empq_key, "r1:m0:b3");
    CHECK(b.created_at == 1752148800);
    /* the create reply: pending, no stats yet; the SDK's JOB_STATE_ names too */
    const char *pending = "{\"name\":\"batches/x1\",\"metadata\":{\"displayName\":\"k\",\"state\":"
                          "\"BATCH_STATE_PENDING\"}}";
    CHECK_INT(empq_batchwire_parse_batch(&spec, pending, strlen(pending), &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_OPEN);
    CHECK(b.total == 0);
    static const struct {
        const char *state;
        empq_batch_state want;
    } states[] = {{"BATCH_STATE_RUNNING", EMPQ_BATCH_OPEN},        {"JOB_STATE_RUNNING", EMPQ_BATCH_OPEN},
                  {"BATCH_STATE_CANCELLED", EMPQ_BATCH_CANCELLED}, {"BATCH_STATE_EXPIRED", EMPQ_BATCH_EXPIRED},
                  {"JOB_STATE_SUCCEEDED", EMPQ_BATCH_ENDED},       {"BATCH_STATE_FAILED", EMPQ_BATCH_FAILED}};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        char o[512];
        snprintf(o, sizeof o,
                 "{\"name\":\"batches/x1\",\"metadata\":{\"state\":\"%s\",\"batchStats\":{\"requestCount\":7}},"
                 "\"done\":true,\"error\":{\"code\":3,\"message\":\"bad input\",\"status\":\"INVALID_ARGUMENT\"}}",
                 states[i].state);
        CHECK_INT(empq_batchwire_parse_batch(&spec, o, strlen(o), &b, &err), EMPQ_OK);
        CHECK_INT(b.state, states[i].want);
        CHECK(b.total == 7);
        if (b.state == EMPQ_BATCH_FAILED)
            CHECK_STR(b.reason, "INVALID_ARGUMENT: bad input");
    }
    const char *odd = "{\"name\":\"batches/x1\",\"metadata\":{\"state\":\"BATCH_STATE_PAUSED\"}}";
    CHECK_INT(empq_batchwire_parse_batch(&spec, odd, strlen(odd), &b, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "unknown state 'BATCH_STATE_PAUSED'");
    const char *other = "{\"name\":\"operations/x1\",\"metadata\":{\"state\":\"BATCH_STATE_RUNNING\"}}";
    CHECK_INT(empq_batchwire_parse_batch(&spec, other, strlen(other), &b, &err), EMPQ_EPARSE);
    CHECK_INT(empq_batchwire_parse_batch(&spec, "{}", 2, &b, &err), EMPQ_EPARSE);

    /* a lost create found again by its displayName */
    char list[8192];
    snprintf(list, sizeof list, "{\"operations\":[%s,%s],\"nextPageToken\":\"tok2\"}", pending, GEMINI_DONE);
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), "r1:m0:b3", 0, 0, NULL, 0, &b, &more, &err), EMPQ_OK);
    CHECK_STR(b.id, "123456abcd");
    CHECK(more == 1);
    CHECK_INT(empq_batchwire_find(&spec, list, strlen(list), "r1:m0:b9", 0, 0, NULL, 0, &b, &more, &err),
              EMPQ_ENOTFOUND);
    /* no batches: proto JSON leaves the empty list out */
    CHECK_INT(empq_batchwire_find(&spec, "{}", 2, "r1:m0:b3", 0, 0, NULL, 0, &b, &more, &err), EMPQ_ENOTFOUND);
    CHECK(more == 0);
    CHECK_INT(empq_batchwire_find(&spec, "{\"operations\":{}}", 17, "k", 0, 0, NULL, 0, &b, &more, &err), EMPQ_EPARSE);
}

static void test_gemini_results(void)
{
    empq_error err = {0};
    char *lines = NULL, cid[EMPQ_BATCHWIRE_ID_MAX];
    size_t n = 0;
    empq_provider_result r;
    reset_spec("gemini", NULL);
    spec.model = "gemini-2.5-flash";
    CHECK_INT(empq_batchwire_results_lines(&spec, GEMINI_DONE, strlen(GEMINI_DONE), &lines, &n, &err), EMPQ_OK);
    CHECK(lines != NULL && n == strlen(lines));
    /* one line per inlined response, in order */
    const char *p = lines;
    const char *want_cid[] = {"j1-a1", "j2-a1", "j3-a2"};
    for (int i = 0; i < 3; i++) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL);
        if (nl == NULL)
            break;
        CHECK_INT(empq_batchwire_result(&spec, p, (size_t)(nl - p), KEY, NOW, cid, &r, &err), EMPQ_OK);
        CHECK_STR(cid, want_cid[i]);
        if (i == 0) {
            CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
            CHECK_STR(r.gen.text, "That sounds hard.");
            CHECK_INT(r.gen.tokens_in, 12);
            CHECK_INT(r.gen.tokens_out, 4);
        } else if (i == 1) {
            /* INVALID_ARGUMENT: the interactive 400, not retried */
            CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
            CHECK_CONTAINS(r.reason, "invalid argument");
        } else {
            CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
            CHECK_STR(r.gen.text, "Congratulations!");
        }
        empq_provider_result_clear(&r);
        p = nl + 1;
    }
    CHECK(*p == '\0');
    free(lines);

    /* INTERNAL and UNAVAILABLE pass later: retryable */
    const char *internal = "{\"error\":{\"code\":13,\"message\":\"Internal error encountered.\"},\"metadata\":"
                           "{\"key\":\"j4-a1\"}}";
    CHECK_INT(empq_batchwire_result(&spec, internal, strlen(internal), KEY, NOW, cid, &r, &err), EMPQ_OK);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_CONTAINS(r.reason, "Internal error encountered.");
    empq_provider_result_clear(&r);
    const char *nokey = "{\"response\":{\"candidates\":[]},\"metadata\":{}}";
    CHECK_INT(empq_batchwire_result(&spec, nokey, strlen(nokey), KEY, NOW, cid, &r, &err), EMPQ_EPARSE);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    empq_provider_result_clear(&r);
    const char *neither = "{\"metadata\":{\"key\":\"j5-a1\"}}";
    CHECK_INT(empq_batchwire_result(&spec, neither, strlen(neither), KEY, NOW, cid, &r, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "neither response nor error");
    empq_provider_result_clear(&r);

    /* a running or expired batch has no output: no lines */
    const char *expired = "{\"name\":\"batches/x1\",\"metadata\":{\"state\":\"BATCH_STATE_EXPIRED\"},\"done\":true}";
    CHECK_INT(empq_batchwire_results_lines(&spec, expired, strlen(expired), &lines, &n, &err), EMPQ_OK);
    CHECK(lines != NULL && n == 0);
    free(lines);
    const char *file = "{\"name\":\"batches/x1\",\"metadata\":{\"output\":{\"responsesFile\":\"files/abc\"}}}";
    CHECK_INT(empq_batchwire_results_lines(&spec, file, strlen(file), &lines, &n, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "responses file");
    /* the other providers' result bodies are their lines already */
    reset_spec("anthropic", NULL);
    CHECK_INT(empq_batchwire_results_lines(&spec, "x\n", 2, &lines, &n, &err), EMPQ_OK);
    CHECK(lines == NULL && n == 0);

    CHECK(!empq_batchwire_results_inline(&spec) && !empq_batchwire_results_inline(NULL));
    spec.provider = "gemini";
    CHECK(empq_batchwire_results_inline(&spec));

    /* a request left without result: retried as its batch's end says */
    empq_batch_info info;
    memset(&info, 0, sizeof info);
    info.state = EMPQ_BATCH_EXPIRED;
    empq_batchwire_unanswered(&info, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "batch_expired");
    empq_provider_result_clear(&r);
    info.state = EMPQ_BATCH_CANCELLED;
    empq_batchwire_unanswered(&info, &r);
    CHECK_STR(r.reason, "batch_cancelled");
    empq_provider_result_clear(&r);
    empq_batchwire_unanswered(NULL, &r);
    CHECK_STR(r.reason, "batch_no_result");
    empq_provider_result_clear(&r);
}

static void test_cost(void)
{
    reset_spec("openai", NULL);
    CHECK(empq_batchwire_cost(&spec, 1000000, 1000000) == 0.0);
    spec.prices = &prices;
    prices.has_input_per_mtok = prices.has_output_per_mtok = 1;
    prices.input_per_mtok = 2.0;
    prices.output_per_mtok = 8.0;
    CHECK(empq_batchwire_cost(&spec, 1000000, 500000) == 1.0 + 2.0); /* half price by default */
    prices.has_batch_input_per_mtok = prices.has_batch_output_per_mtok = 1;
    prices.batch_input_per_mtok = 0.5;
    prices.batch_output_per_mtok = 3.0;
    CHECK(empq_batchwire_cost(&spec, 2000000, 1000000) == 1.0 + 3.0);
    double in = -1, out = -1;
    empq_batchwire_prices(&spec, &in, &out);
    CHECK(in == 0.5 && out == 3.0);
    CHECK(!empq_batchwire_mode(&spec));
    spec.mode = "batch";
    CHECK(empq_batchwire_mode(&spec));
    spec.provider = "gemini";
    CHECK(empq_batchwire_mode(&spec));
    spec.provider = "openai-compatible";
    CHECK(!empq_batchwire_mode(&spec));
    CHECK(!empq_batchwire_mode(NULL));
}

int main(void)
{
    RUN(test_custom_ids);
    RUN(test_endpoints);
    RUN(test_lines_and_create);
    RUN(test_batch_objects);
    RUN(test_find);
    RUN(test_openai_results);
    RUN(test_anthropic_results);
    RUN(test_gemini_endpoints);
    RUN(test_gemini_lines_and_create);
    RUN(test_gemini_batches);
    RUN(test_gemini_results);
    RUN(test_cost);
    CHECK_DONE();
}
