/* test_fakellm_batch.c: the batch store without sockets: the state machine
 * refuses every move it does not list, the OpenAI input checks name each
 * broken rule and its line, and batches of both providers run through the
 * store's timer to completed / expired / cancelled with the interactive
 * endpoint's answers, seeded failures and the bounds. */
#include <jansson.h>
#include <time.h>

#include "anthropic.h"
#include "batch_internal.h"
#include "check.h"
#include "openai.h"

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------ */
/* State machine                                                             */
/* ------------------------------------------------------------------------ */

static void test_transitions(void)
{
    /* allowed[from][to] */
    int allowed[FAKELLM_BATCH_STATE_COUNT][FAKELLM_BATCH_STATE_COUNT] = {{0}};
    allowed[FAKELLM_BATCH_VALIDATING][FAKELLM_BATCH_IN_PROGRESS] = 1;
    allowed[FAKELLM_BATCH_VALIDATING][FAKELLM_BATCH_FAILED] = 1;
    allowed[FAKELLM_BATCH_VALIDATING][FAKELLM_BATCH_CANCELLING] = 1;
    allowed[FAKELLM_BATCH_IN_PROGRESS][FAKELLM_BATCH_FINALIZING] = 1;
    allowed[FAKELLM_BATCH_IN_PROGRESS][FAKELLM_BATCH_EXPIRED] = 1;
    allowed[FAKELLM_BATCH_IN_PROGRESS][FAKELLM_BATCH_CANCELLING] = 1;
    allowed[FAKELLM_BATCH_FINALIZING][FAKELLM_BATCH_COMPLETED] = 1;
    allowed[FAKELLM_BATCH_CANCELLING][FAKELLM_BATCH_CANCELLED] = 1;
    int n_ok = 0;
    for (int from = 0; from < FAKELLM_BATCH_STATE_COUNT; from++) {
        for (int to = 0; to < FAKELLM_BATCH_STATE_COUNT; to++) {
            fakellm_batch_state s = (fakellm_batch_state)from;
            int rc = fakellm_batch_transition(&s, (fakellm_batch_state)to);
            if (allowed[from][to]) {
                CHECK_INT(rc, EMPQ_OK);
                CHECK_INT(s, to);
                n_ok++;
            } else {
                CHECK_INT(rc, EMPQ_ESTATE);
                CHECK_INT(s, from); /* unchanged */
            }
        }
    }
    CHECK_INT(n_ok, 8);
    CHECK_STR(fakellm_batch_state_name(FAKELLM_BATCH_IN_PROGRESS), "in_progress");
    CHECK_STR(fakellm_batch_state_name(FAKELLM_BATCH_CANCELLED), "cancelled");
    CHECK_STR(fakellm_batch_state_name(FAKELLM_BATCH_STATE_COUNT), "?");
    CHECK_STR(fakellm_batch_anthropic_status(FAKELLM_BATCH_VALIDATING), "in_progress");
    CHECK_STR(fakellm_batch_anthropic_status(FAKELLM_BATCH_FINALIZING), "in_progress");
    CHECK_STR(fakellm_batch_anthropic_status(FAKELLM_BATCH_CANCELLING), "canceling");
    CHECK_STR(fakellm_batch_anthropic_status(FAKELLM_BATCH_EXPIRED), "ended");
    CHECK(fakellm_batch_state_terminal(FAKELLM_BATCH_FAILED) && !fakellm_batch_state_terminal(FAKELLM_BATCH_CANCELLING));
}

/* ------------------------------------------------------------------------ */
/* OpenAI input lines                                                        */
/* ------------------------------------------------------------------------ */

#define LINE(id, model) "{\"custom_id\":\"" id "\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\"," \
    "\"body\":{\"model\":\"" model "\",\"messages\":[{\"role\":\"user\",\"content\":\"I feel lonely today\"}]}}"

/* The errors of a parse as "line:code" items joined by spaces. */
static void errors_text(const fakellm_batch_input *in, char *out, size_t cap)
{
    size_t used = 0, i;
    json_t *e;
    out[0] = '\0';
    json_array_foreach((json_t *)in->errors, i, e) {
        json_t *line = json_object_get(e, "line");
        used += (size_t)snprintf(out + used, cap - used, "%s%lld:%s", used ? " " : "",
                                 json_is_integer(line) ? (long long)json_integer_value(line) : 0LL,
                                 json_string_value(json_object_get(e, "code")));
        CHECK(json_is_string(json_object_get(e, "message")));
        if (used >= cap)
            break;
    }
}

static void parse(const char *text, size_t max, fakellm_batch_input *in, char *errs, size_t cap)
{
    CHECK_INT(fakellm_batch_parse_openai(text, strlen(text), "/v1/chat/completions", max, in), EMPQ_OK);
    errors_text(in, errs, cap);
}

static void test_parse_openai(void)
{
    fakellm_batch_input in;
    char errs[1024];

    parse(LINE("a", "fake-warm") "\r\n\n" LINE("b", "fake-warm") "\n" LINE("c", "fake-warm"), 100, &in, errs,
          sizeof(errs));
    CHECK(in.errors == NULL);
    CHECK_INT(in.n, 3);
    CHECK_STR(in.model, "fake-warm");
    CHECK_STR(in.lines[1].custom_id, "b");
    CHECK_CONTAINS(in.lines[2].body, "\"model\":\"fake-warm\"");
    CHECK(in.lines[2].body[0] == '{' && in.lines[2].body_len == strlen(in.lines[2].body));
    fakellm_batch_input_clear(&in);

    /* every rule, each on its own line */
    const char *bad =
        LINE("a", "fake-warm") "\n"                                                                   /* 1 ok */
        "{not json\n"                                                                                 /* 2 */
        "{\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"fake-warm\"}}\n" /* 3 */
        "{\"custom_id\":\"x\",\"method\":\"GET\",\"url\":\"/v1/chat/completions\",\"body\":{}}\n"     /* 4 */
        "{\"custom_id\":\"y\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{}}\n"          /* 5 */
        "{\"custom_id\":\"z\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{}}\n"    /* 6 */
        LINE("b", "fake-formal") "\n"                                                                 /* 7 */
        LINE("a", "fake-warm") "\n"                                                                   /* 8 */
        "[1,2]\n";                                                                                    /* 9 */
    parse(bad, 100, &in, errs, sizeof(errs));
    CHECK_STR(errs, "2:invalid_json_line 3:missing_required_parameter 4:invalid_method 5:mismatched_endpoint "
                    "6:missing_required_parameter 7:mismatched_model 8:duplicate_custom_id 9:invalid_json_line");
    json_t *dup = json_array_get((json_t *)in.errors, 6);
    CHECK_STR(json_string_value(json_object_get(dup, "param")), "custom_id");
    CHECK_CONTAINS(json_string_value(json_object_get(dup, "message")), "line 1");
    fakellm_batch_input_clear(&in);

    parse("\n  \n", 100, &in, errs, sizeof(errs));
    CHECK_STR(errs, "0:empty_file");
    fakellm_batch_input_clear(&in);

    parse(LINE("a", "m") "\n" LINE("b", "m") "\n" LINE("c", "m") "\n", 2, &in, errs, sizeof(errs));
    CHECK_STR(errs, "0:too_many_requests");
    CHECK_INT(in.n, 2);
    fakellm_batch_input_clear(&in);

    /* at most FAKELLM_BATCH_MAX_ERRORS listed */
    char many[2048] = "";
    for (int i = 0; i < 30; i++)
        strncat(many, "oops\n", sizeof(many) - strlen(many) - 1);
    parse(many, 100, &in, errs, sizeof(errs));
    CHECK_INT(json_array_size((json_t *)in.errors), FAKELLM_BATCH_MAX_ERRORS);
    fakellm_batch_input_clear(&in);
}

/* ------------------------------------------------------------------------ */
/* Store                                                                     */
/* ------------------------------------------------------------------------ */

static const char *no_query(const fakellm_batch_call *call, const char *name)
{
    (void)call;
    (void)name;
    return NULL;
}

/* Calls the store; returns the parsed JSON body (caller decrefs) and the status. */
static json_t *call(fakellm_batch_store *st, fakellm_batch_provider p, const char *method, const char *path,
                    const char *body, unsigned *status)
{
    static uint64_t rid;
    fakellm_batch_call c = {.method = method, .path = path, .body = body ? body : "",
                            .body_len = body ? strlen(body) : 0, .host = "127.0.0.1:1", .request_id = ++rid,
                            .query = no_query};
    fakellm_reply out = {0};
    CHECK_INT(p == FAKELLM_BATCH_OPENAI      ? fakellm_batch_openai(st, &c, &out)
              : p == FAKELLM_BATCH_ANTHROPIC ? fakellm_batch_anthropic(st, &c, &out)
                                             : fakellm_batch_gemini(st, &c, &out),
              EMPQ_OK);
    *status = out.status;
    json_t *j = json_loadb(out.body.data ? out.body.data : "", out.body.len, JSON_DECODE_ANY, NULL);
    if (j == NULL) /* JSONL: keep it as one string */
        j = json_stringn(out.body.data ? out.body.data : "", out.body.len);
    fakellm_reply_clear(&out);
    CHECK(j != NULL);
    return j;
}

static fakellm_batch_store *store(unsigned delay_ms, double fail_p, int expire, size_t max_objects)
{
    fakellm_batch_options o;
    fakellm_batch_options_init(&o);
    o.delay_ms = delay_ms;
    o.fail_p = fail_p;
    o.expire = expire;
    o.seed = 7;
    if (max_objects)
        o.max_objects = max_objects;
    fakellm_batch_store *st = NULL;
    empq_error err = {0};
    CHECK_INT(fakellm_batch_store_new(&o, &st, &err), EMPQ_OK);
    return st;
}

/* Adds an input file of n requests (custom ids r0..) as an upload would. */
static void add_input(fakellm_batch_store *st, size_t n, char *id, size_t cap)
{
    empq_buf b = {0};
    for (size_t i = 0; i < n; i++)
        CHECK_INT(empq_buf_printf(&b, "{\"custom_id\":\"r%zu\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\","
                                      "\"body\":{\"model\":\"fake-warm\",\"messages\":[{\"role\":\"user\","
                                      "\"content\":\"I lost my job %zu\"}]}}\n", i, i),
                  EMPQ_OK);
    pthread_mutex_lock(&st->mu);
    bb_file *f = fakellm_batch__add_file(st, "in.jsonl", "batch", b.data, b.len);
    CHECK(f != NULL);
    snprintf(id, cap, "%s", f->id);
    pthread_mutex_unlock(&st->mu);
}

static json_t *openai_create(fakellm_batch_store *st, const char *file_id, unsigned *status)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"input_file_id\":\"%s\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\","
             "\"metadata\":{\"run\":\"t1\"}}", file_id);
    return call(st, FAKELLM_BATCH_OPENAI, "POST", "/v1/batches", body, status);
}

/* GETs an OpenAI batch until its status is want (or 5 s passed). */
static json_t *openai_wait(fakellm_batch_store *st, const char *id, const char *want)
{
    char path[128];
    unsigned status;
    snprintf(path, sizeof(path), "/v1/batches/%s", id);
    for (int i = 0; i < 500; i++) {
        json_t *b = call(st, FAKELLM_BATCH_OPENAI, "GET", path, NULL, &status);
        CHECK_INT(status, 200);
        if (strcmp(json_string_value(json_object_get(b, "status")), want) == 0)
            return b;
        json_decref(b);
        nap_ms(10);
    }
    CHECK(!"the batch never reached the wanted status");
    return NULL;
}

/* The content of an OpenAI file as a JSON array of its lines. */
static json_t *file_lines(fakellm_batch_store *st, const char *id)
{
    char path[128];
    unsigned status;
    snprintf(path, sizeof(path), "/v1/files/%s/content", id);
    json_t *text = call(st, FAKELLM_BATCH_OPENAI, "GET", path, NULL, &status);
    CHECK_INT(status, 200);
    json_t *lines = json_array();
    const char *p = json_is_string(text) ? json_string_value(text) : NULL;
    CHECK(p != NULL);
    while (*p) {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL); /* every line ends with a newline */
        json_t *l = json_loadb(p, (size_t)(nl - p), 0, NULL);
        CHECK(l != NULL);
        json_array_append_new(lines, l);
        p = nl + 1;
    }
    json_decref(text);
    return lines;
}

static long long count(json_t *b, const char *field)
{
    return (long long)json_integer_value(json_object_get(json_object_get(b, "request_counts"), field));
}

static void test_openai_completes(void)
{
    fakellm_batch_store *st = store(0, 0, 0, 0);
    char fid[64];
    unsigned status;
    add_input(st, 5, fid, sizeof(fid));
    json_t *b = openai_create(st, fid, &status);
    CHECK_INT(status, 200);
    CHECK_STR(json_string_value(json_object_get(b, "status")), "validating");
    CHECK_STR(json_string_value(json_object_get(json_object_get(b, "metadata"), "run")), "t1");
    CHECK(json_is_null(json_object_get(b, "output_file_id")));
    char id[64];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
    json_decref(b);
    b = openai_wait(st, id, "completed");
    CHECK_INT(count(b, "total"), 5);
    CHECK_INT(count(b, "completed"), 5);
    CHECK_INT(count(b, "failed"), 0);
    CHECK(json_is_null(json_object_get(b, "error_file_id")));
    CHECK(json_is_integer(json_object_get(b, "in_progress_at")) && json_is_integer(json_object_get(b, "finalizing_at")));
    CHECK(json_is_integer(json_object_get(b, "completed_at")) && json_is_null(json_object_get(b, "failed_at")));
    json_t *lines = file_lines(st, json_string_value(json_object_get(b, "output_file_id")));
    CHECK_INT(json_array_size(lines), 5);

    /* each answer is the interactive endpoint's (same words, same usage) */
    size_t i;
    json_t *l;
    long long in_tokens = 0;
    json_array_foreach(lines, i, l) {
        char custom[16], body[256];
        snprintf(custom, sizeof(custom), "r%zu", i);
        CHECK_STR(json_string_value(json_object_get(l, "custom_id")), custom);
        CHECK(json_is_null(json_object_get(l, "error")));
        json_t *resp = json_object_get(l, "response");
        CHECK_INT(json_integer_value(json_object_get(resp, "status_code")), 200);
        json_t *got = json_object_get(resp, "body");
        snprintf(body, sizeof(body),
                 "{\"model\":\"fake-warm\",\"messages\":[{\"role\":\"user\",\"content\":\"I lost my job %zu\"}]}", i);
        fakellm_reply rep = {0};
        fakellm_ctx ctx = {.created = 1, .request_id = 99};
        CHECK_INT(fakellm_openai_chat(body, strlen(body), &ctx, &rep), EMPQ_OK);
        json_t *want = json_loadb(rep.body.data, rep.body.len, 0, NULL);
        CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(got, "choices"), 0),
                                                                     "message"), "content")),
                  json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(want, "choices"), 0),
                                                                      "message"), "content")));
        CHECK(json_equal(json_object_get(got, "usage"), json_object_get(want, "usage")));
        in_tokens += json_integer_value(json_object_get(json_object_get(want, "usage"), "prompt_tokens"));
        json_decref(want);
        fakellm_reply_clear(&rep);
    }
    CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "usage"), "input_tokens")), in_tokens);
    json_decref(lines);

    /* a cancel after the end is refused; an unknown id is 404 */
    char path[128];
    snprintf(path, sizeof(path), "/v1/batches/%s/cancel", id);
    json_t *e = call(st, FAKELLM_BATCH_OPENAI, "POST", path, NULL, &status);
    CHECK_INT(status, 400);
    CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(e, "error"), "message")), "'completed'");
    json_decref(e);
    e = call(st, FAKELLM_BATCH_OPENAI, "GET", "/v1/batches/batch_nope", NULL, &status);
    CHECK_INT(status, 404);
    json_decref(e);
    json_decref(b);
    fakellm_batch_store_free(&st);
    CHECK(st == NULL);
}

static void test_openai_create_errors(void)
{
    fakellm_batch_store *st = store(0, 0, 0, 0);
    unsigned status;
    const struct {
        const char *body, *param;
    } cases[] = {
        {"{\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}", "input_file_id"},
        {"{\"input_file_id\":\"file-x\",\"endpoint\":\"/v1/nope\",\"completion_window\":\"24h\"}", "endpoint"},
        {"{\"input_file_id\":\"file-x\",\"endpoint\":\"/v1/embeddings\",\"completion_window\":\"24h\"}", "endpoint"},
        {"{\"input_file_id\":\"file-x\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"48h\"}",
         "completion_window"},
        {"{\"input_file_id\":\"file-x\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\","
         "\"metadata\":{\"k\":1}}", "metadata"},
        {"{\"input_file_id\":\"file-x\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}",
         "input_file_id"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *e = call(st, FAKELLM_BATCH_OPENAI, "POST", "/v1/batches", cases[i].body, &status);
        CHECK_INT(status, 400);
        CHECK_STR(json_string_value(json_object_get(json_object_get(e, "error"), "param")), cases[i].param);
        CHECK_STR(json_string_value(json_object_get(json_object_get(e, "error"), "type")), "invalid_request_error");
        json_decref(e);
    }
    /* a file that breaks a rule: the batch is created, then fails with the errors */
    pthread_mutex_lock(&st->mu);
    char *data = strdup(LINE("a", "fake-warm") "\n" LINE("a", "fake-warm") "\n");
    bb_file *f = fakellm_batch__add_file(st, "in.jsonl", "batch", data, strlen(data));
    char fid[64];
    snprintf(fid, sizeof(fid), "%s", f->id);
    pthread_mutex_unlock(&st->mu);
    json_t *b = openai_create(st, fid, &status);
    CHECK_INT(status, 200);
    char id[64];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
    json_decref(b);
    b = openai_wait(st, id, "failed");
    json_t *errs = json_object_get(json_object_get(b, "errors"), "data");
    CHECK_INT(json_array_size(errs), 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(errs, 0), "code")), "duplicate_custom_id");
    CHECK_INT(json_integer_value(json_object_get(json_array_get(errs, 0), "line")), 2);
    CHECK_INT(count(b, "total"), 0);
    CHECK(json_is_integer(json_object_get(b, "failed_at")) && json_is_null(json_object_get(b, "in_progress_at")));
    json_decref(b);
    fakellm_batch_store_free(&st);
}

/* The custom ids of the error lines of a finished OpenAI batch, joined. */
static void failed_ids(fakellm_batch_store *st, json_t *b, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *ef = json_object_get(b, "error_file_id");
    if (json_is_null(ef))
        return;
    json_t *lines = file_lines(st, json_string_value(ef));
    size_t i, used = 0;
    json_t *l;
    json_array_foreach(lines, i, l) {
        json_t *resp = json_object_get(l, "response");
        CHECK_INT(json_integer_value(json_object_get(resp, "status_code")), 500);
        CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(resp, "body"), "error"), "type")),
                  "server_error");
        used += (size_t)snprintf(out + used, cap - used, "%s ", json_string_value(json_object_get(l, "custom_id")));
    }
    json_decref(lines);
}

static void test_openai_failures_seeded(void)
{
    char first[2048] = "", again[2048] = "";
    for (int round = 0; round < 2; round++) {
        fakellm_batch_store *st = store(0, 0.3, 0, 0);
        char fid[64], id[64];
        unsigned status;
        add_input(st, 60, fid, sizeof(fid));
        json_t *b = openai_create(st, fid, &status);
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
        json_decref(b);
        b = openai_wait(st, id, "completed");
        long long failed = count(b, "failed");
        CHECK(failed >= 6 && failed <= 30); /* 30 % of 60, loosely */
        CHECK_INT(count(b, "completed") + failed, 60);
        failed_ids(st, b, round ? again : first, sizeof(first));
        json_decref(b);
        fakellm_batch_store_free(&st);
    }
    CHECK(first[0] != '\0');
    CHECK_STR(again, first); /* the same seed fails the same requests */
}

static void test_openai_expire_and_cancel(void)
{
    /* expire: the first half answered, the rest batch_expired */
    fakellm_batch_store *st = store(100, 0, 1, 0);
    char fid[64], id[64];
    unsigned status;
    add_input(st, 10, fid, sizeof(fid));
    json_t *b = openai_create(st, fid, &status);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
    json_decref(b);
    b = openai_wait(st, id, "expired");
    CHECK_INT(count(b, "completed"), 5);
    CHECK_INT(count(b, "failed"), 0);
    CHECK(json_is_integer(json_object_get(b, "expired_at")));
    json_t *lines = file_lines(st, json_string_value(json_object_get(b, "error_file_id")));
    CHECK_INT(json_array_size(lines), 5);
    json_t *l0 = json_array_get(lines, 0);
    CHECK(json_is_null(json_object_get(l0, "response")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(l0, "error"), "code")), "batch_expired");
    CHECK_STR(json_string_value(json_object_get(l0, "custom_id")), "r5");
    json_decref(lines);
    json_decref(b);
    fakellm_batch_store_free(&st);

    /* cancel: a long batch cancelled at once; nothing ran, all batch_cancelled */
    st = store(60000, 0, 0, 0);
    add_input(st, 4, fid, sizeof(fid));
    b = openai_create(st, fid, &status);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
    json_decref(b);
    b = openai_wait(st, id, "in_progress");
    json_decref(b);
    char path[128];
    snprintf(path, sizeof(path), "/v1/batches/%s/cancel", id);
    b = call(st, FAKELLM_BATCH_OPENAI, "POST", path, NULL, &status);
    CHECK_INT(status, 200);
    CHECK_STR(json_string_value(json_object_get(b, "status")), "cancelling");
    CHECK(json_is_integer(json_object_get(b, "cancelling_at")));
    json_decref(b);
    b = openai_wait(st, id, "cancelled");
    CHECK_INT(count(b, "completed"), 0);
    CHECK(json_is_null(json_object_get(b, "output_file_id")));
    lines = file_lines(st, json_string_value(json_object_get(b, "error_file_id")));
    CHECK_INT(json_array_size(lines), 4);
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_array_get(lines, 3), "error"), "code")),
              "batch_cancelled");
    json_decref(lines);
    json_decref(b);
    /* cancelling again answers it as it is */
    b = call(st, FAKELLM_BATCH_OPENAI, "POST", path, NULL, &status);
    CHECK_INT(status, 200);
    CHECK_STR(json_string_value(json_object_get(b, "status")), "cancelled");
    json_decref(b);
    empq_buf stats = {0};
    CHECK_INT(fakellm_batch_stats_json(st, &stats), EMPQ_OK);
    CHECK_CONTAINS(stats.data, "\"cancels\":2");
    CHECK_CONTAINS(stats.data, "\"requests_cancelled\":4");
    empq_buf_free(&stats);
    fakellm_batch_store_free(&st);
}

/* ------------------------------------------------------------------------ */
/* Anthropic                                                                 */
/* ------------------------------------------------------------------------ */

#define AREQ(id, extra) "{\"custom_id\":\"" id "\",\"params\":{\"model\":\"fake-warm\"," extra \
    "\"messages\":[{\"role\":\"user\",\"content\":\"My cat died\"}]}}"

static json_t *anthropic_wait_ended(fakellm_batch_store *st, const char *id)
{
    char path[128];
    unsigned status;
    snprintf(path, sizeof(path), "/v1/messages/batches/%s", id);
    for (int i = 0; i < 500; i++) {
        json_t *b = call(st, FAKELLM_BATCH_ANTHROPIC, "GET", path, NULL, &status);
        CHECK_INT(status, 200);
        if (strcmp(json_string_value(json_object_get(b, "processing_status")), "ended") == 0)
            return b;
        json_decref(b);
        nap_ms(10);
    }
    CHECK(!"the batch never ended");
    return NULL;
}

static void test_anthropic(void)
{
    fakellm_batch_store *st = store(0, 0, 0, 0);
    unsigned status;
    json_t *b = call(st, FAKELLM_BATCH_ANTHROPIC, "POST", "/v1/messages/batches",
                     "{\"requests\":[" AREQ("ok-1", "\"max_tokens\":200,") "," AREQ("bad_2", "") "]}", &status);
    CHECK_INT(status, 200);
    CHECK_STR(json_string_value(json_object_get(b, "type")), "message_batch");
    CHECK_STR(json_string_value(json_object_get(b, "processing_status")), "in_progress");
    CHECK(json_is_null(json_object_get(b, "results_url")));
    CHECK_INT(json_integer_value(json_object_get(json_object_get(b, "request_counts"), "processing")), 2);
    char id[64], path[160];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
    CHECK(strncmp(id, "msgbatch_", 9) == 0);
    json_decref(b);
    b = anthropic_wait_ended(st, id);
    json_t *rc = json_object_get(b, "request_counts");
    CHECK_INT(json_integer_value(json_object_get(rc, "succeeded")), 1);
    CHECK_INT(json_integer_value(json_object_get(rc, "errored")), 1); /* no max_tokens: the Messages 400 */
    snprintf(path, sizeof(path), "http://127.0.0.1:1/v1/messages/batches/%s/results", id);
    CHECK_STR(json_string_value(json_object_get(b, "results_url")), path);
    CHECK(json_is_string(json_object_get(b, "ended_at")));
    json_decref(b);
    snprintf(path, sizeof(path), "/v1/messages/batches/%s/results", id);
    json_t *text = call(st, FAKELLM_BATCH_ANTHROPIC, "GET", path, NULL, &status);
    CHECK_INT(status, 200);
    const char *t = json_string_value(text);
    const char *nl = strchr(t, '\n');
    json_t *l1 = json_loadb(t, (size_t)(nl - t), 0, NULL), *l2 = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
    CHECK(l1 != NULL && l2 != NULL);
    CHECK_STR(json_string_value(json_object_get(l1, "custom_id")), "ok-1");
    CHECK_STR(json_string_value(json_object_get(json_object_get(l1, "result"), "type")), "succeeded");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(l1, "result"), "message"), "type")),
              "message");
    json_t *err = json_object_get(json_object_get(l2, "result"), "error");
    CHECK_STR(json_string_value(json_object_get(json_object_get(l2, "result"), "type")), "errored");
    CHECK_STR(json_string_value(json_object_get(err, "type")), "error");
    CHECK_STR(json_string_value(json_object_get(json_object_get(err, "error"), "message")), "max_tokens: Field required");
    json_decref(l1);
    json_decref(l2);
    json_decref(text);

    /* the create checks */
    const struct {
        const char *body, *msg;
    } cases[] = {
        {"{}", "requests: Field required"},
        {"{\"requests\":[]}", "requests: List should have at least 1 item"},
        {"{\"requests\":[{\"params\":{}}]}", "requests.0.custom_id: Field required"},
        {"{\"requests\":[{\"custom_id\":\"a b\",\"params\":{}}]}", "String should match pattern"},
        {"{\"requests\":[{\"custom_id\":\"a\",\"params\":{}},{\"custom_id\":\"a\",\"params\":{}}]}",
         "requests.1.custom_id: 'a' is also the custom_id of requests.0"},
        {"{\"requests\":[{\"custom_id\":\"a\",\"params\":[]}]}", "requests.0.params: Input should be a valid dictionary"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *e = call(st, FAKELLM_BATCH_ANTHROPIC, "POST", "/v1/messages/batches", cases[i].body, &status);
        CHECK_INT(status, 400);
        CHECK_STR(json_string_value(json_object_get(e, "type")), "error");
        CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(e, "error"), "message")), cases[i].msg);
        json_decref(e);
    }
    json_t *e = call(st, FAKELLM_BATCH_ANTHROPIC, "GET", "/v1/messages/batches/msgbatch_nope", NULL, &status);
    CHECK_INT(status, 404);
    CHECK_STR(json_string_value(json_object_get(json_object_get(e, "error"), "type")), "not_found_error");
    json_decref(e);
    /* delete an ended batch: gone */
    snprintf(path, sizeof(path), "/v1/messages/batches/%s", id);
    e = call(st, FAKELLM_BATCH_ANTHROPIC, "DELETE", path, NULL, &status);
    CHECK_INT(status, 200);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "message_batch_deleted");
    json_decref(e);
    e = call(st, FAKELLM_BATCH_ANTHROPIC, "GET", path, NULL, &status);
    CHECK_INT(status, 404);
    json_decref(e);
    fakellm_batch_store_free(&st);

    /* cancel and expire */
    for (int expire = 0; expire < 2; expire++) {
        st = store(expire ? 50 : 60000, 0, expire, 0);
        b = call(st, FAKELLM_BATCH_ANTHROPIC, "POST", "/v1/messages/batches",
                 "{\"requests\":[" AREQ("a", "\"max_tokens\":9,") "," AREQ("b", "\"max_tokens\":9,") "]}", &status);
        CHECK_INT(status, 200);
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
        json_decref(b);
        if (!expire) {
            snprintf(path, sizeof(path), "/v1/messages/batches/%s/cancel", id);
            b = call(st, FAKELLM_BATCH_ANTHROPIC, "POST", path, NULL, &status);
            CHECK_INT(status, 200);
            CHECK_STR(json_string_value(json_object_get(b, "processing_status")), "canceling");
            CHECK(json_is_string(json_object_get(b, "cancel_initiated_at")));
            json_decref(b);
        }
        b = anthropic_wait_ended(st, id);
        rc = json_object_get(b, "request_counts");
        CHECK_INT(json_integer_value(json_object_get(rc, expire ? "expired" : "canceled")), expire ? 1 : 2);
        CHECK_INT(json_integer_value(json_object_get(rc, "succeeded")), expire ? 1 : 0);
        json_decref(b);
        snprintf(path, sizeof(path), "/v1/messages/batches/%s/results", id);
        text = call(st, FAKELLM_BATCH_ANTHROPIC, "GET", path, NULL, &status);
        CHECK_CONTAINS(json_string_value(text), expire ? "{\"custom_id\":\"b\",\"result\":{\"type\":\"expired\"}}"
                                                       : "{\"custom_id\":\"b\",\"result\":{\"type\":\"canceled\"}}");
        json_decref(text);
        fakellm_batch_store_free(&st);
    }
}

static void test_bounds(void)
{
    fakellm_batch_store *st = store(0, 0, 0, 2); /* two objects at most */
    unsigned status;
    json_t *b = call(st, FAKELLM_BATCH_ANTHROPIC, "POST", "/v1/messages/batches",
                     "{\"requests\":[" AREQ("a", "\"max_tokens\":9,") "]}", &status);
    CHECK_INT(status, 200);
    json_decref(b);
    char fid[64];
    add_input(st, 1, fid, sizeof(fid)); /* the second object */
    b = openai_create(st, fid, &status);
    CHECK_INT(status, 400);
    CHECK_STR(json_string_value(json_object_get(json_object_get(b, "error"), "code")), "storage_limit_exceeded");
    json_decref(b);
    b = call(st, FAKELLM_BATCH_ANTHROPIC, "POST", "/v1/messages/batches",
             "{\"requests\":[" AREQ("a", "\"max_tokens\":9,") "]}", &status);
    CHECK_INT(status, 413);
    CHECK_STR(json_string_value(json_object_get(json_object_get(b, "error"), "type")), "request_too_large");
    json_decref(b);
    fakellm_batch_store_free(&st);

    fakellm_batch_options o;
    fakellm_batch_options_init(&o);
    o.fail_p = 1.5;
    empq_error err = {0};
    CHECK_INT(fakellm_batch_store_new(&o, &st, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "--batch-fail");
    fakellm_batch_store_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* Gemini                                                                    */
/* ------------------------------------------------------------------------ */

#define GREQ(key, extra)                                                                                               \
    "{\"request\":{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"My cat died\"}]}]" extra "},"               \
    "\"metadata\":{\"key\":\"" key "\"}}"
#define GCREATE(name, reqs)                                                                                            \
    "{\"batch\":{\"displayName\":\"" name "\",\"inputConfig\":{\"requests\":{\"requests\":[" reqs "]}}}}"

static const char *gstate(json_t *op)
{
    return json_string_value(json_object_get(json_object_get(op, "metadata"), "state"));
}

static long long gcount(json_t *op, const char *k)
{
    const char *v =
        json_string_value(json_object_get(json_object_get(json_object_get(op, "metadata"), "batchStats"), k));
    return v != NULL ? atoll(v) : -1;
}

/* Creates a batch; returns its id (without "batches/") in id. */
static void gemini_create(fakellm_batch_store *st, const char *body, char *id, size_t cap)
{
    unsigned status;
    json_t *op = call(st, FAKELLM_BATCH_GEMINI, "POST", "/v1beta/models/fake-warm:batchGenerateContent", body, &status);
    CHECK_INT(status, 200);
    const char *name = json_string_value(json_object_get(op, "name"));
    CHECK(name != NULL && strncmp(name, "batches/", 8) == 0);
    snprintf(id, cap, "%s", name != NULL ? name + 8 : "");
    json_decref(op);
}

static json_t *gemini_wait(fakellm_batch_store *st, const char *id, const char *want)
{
    char path[128];
    unsigned status;
    snprintf(path, sizeof(path), "/v1beta/batches/%s", id);
    for (int i = 0; i < 500; i++) {
        json_t *op = call(st, FAKELLM_BATCH_GEMINI, "GET", path, NULL, &status);
        CHECK_INT(status, 200);
        if (strcmp(gstate(op), want) == 0)
            return op;
        json_decref(op);
        nap_ms(10);
    }
    CHECK(!"gemini batch did not reach its state");
    return json_object();
}

static json_t *gemini_responses(json_t *op)
{
    return json_object_get(
        json_object_get(json_object_get(json_object_get(op, "metadata"), "output"), "inlinedResponses"),
        "inlinedResponses");
}

static void test_gemini(void)
{
    fakellm_batch_store *st = store(0, 0, 0, 0);
    unsigned status;
    json_t *op = call(
        st, FAKELLM_BATCH_GEMINI, "POST", "/v1beta/models/fake-warm:batchGenerateContent",
        GCREATE("empq-k1", GREQ("j1-a1", ) "," GREQ("j2-a1", ",\"generationConfig\":{\"temperature\":5}")), &status);
    CHECK_INT(status, 200);
    CHECK_STR(gstate(op), "BATCH_STATE_PENDING");
    json_t *md = json_object_get(op, "metadata");
    CHECK_STR(json_string_value(json_object_get(md, "displayName")), "empq-k1");
    CHECK_STR(json_string_value(json_object_get(md, "model")), "models/fake-warm");
    CHECK_INT(gcount(op, "requestCount"), 2);
    CHECK_INT(gcount(op, "pendingRequestCount"), 2);
    CHECK(json_object_get(op, "done") == NULL && json_object_get(md, "output") == NULL);
    char id[64], path[160];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(op, "name")) + 8);
    json_decref(op);
    op = gemini_wait(st, id, "BATCH_STATE_SUCCEEDED");
    CHECK(json_is_true(json_object_get(op, "done")));
    CHECK_INT(gcount(op, "successfulRequestCount"), 1);
    CHECK_INT(gcount(op, "failedRequestCount"), 1);
    json_t *rs = gemini_responses(op);
    CHECK_INT(json_array_size(rs), 2);
    json_t *r0 = json_array_get(rs, 0), *r1 = json_array_get(rs, 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(r0, "metadata"), "key")), "j1-a1");
    CHECK(json_is_array(json_object_get(json_object_get(r0, "response"), "candidates")));
    /* the generateContent 400 as a Status: INVALID_ARGUMENT is code 3 */
    CHECK_INT(json_integer_value(json_object_get(json_object_get(r1, "error"), "code")), 3);
    CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(r1, "error"), "message")), "temperature");
    CHECK_STR(json_string_value(json_object_get(json_object_get(r1, "metadata"), "key")), "j2-a1");
    /* the Operation's response holds the same output */
    CHECK(json_equal(
        json_object_get(json_object_get(json_object_get(op, "response"), "inlinedResponses"), "inlinedResponses"), rs));
    json_decref(op);

    /* errors */
    static const struct {
        const char *body, *want;
    } bad_creates[] = {
        {"{}", "batch is required"},
        {"{\"batch\":{\"inputConfig\":{\"requests\":{\"requests\":[" GREQ("a", ) "]}}}}", "display_name is required"},
        {GCREATE("k", ), "at least one request"},
        {"{\"batch\":{\"displayName\":\"k\",\"inputConfig\":{\"fileName\":\"files/x\"}}}", "inline requests only"},
        {GCREATE("k", "{\"metadata\":{}}"), "InlinedRequest"},
        {"[1]", "Invalid JSON payload"},
    };
    for (size_t i = 0; i < sizeof(bad_creates) / sizeof(bad_creates[0]); i++) {
        json_t *e = call(st, FAKELLM_BATCH_GEMINI, "POST", "/v1beta/models/fake-warm:batchGenerateContent",
                         bad_creates[i].body, &status);
        CHECK_INT(status, 400);
        CHECK_STR(json_string_value(json_object_get(json_object_get(e, "error"), "status")), "INVALID_ARGUMENT");
        CHECK_CONTAINS(json_string_value(json_object_get(json_object_get(e, "error"), "message")), bad_creates[i].want);
        json_decref(e);
    }
    json_t *e = call(st, FAKELLM_BATCH_GEMINI, "GET", "/v1beta/batches/nope", NULL, &status);
    CHECK_INT(status, 404);
    json_decref(e);

    /* list: newest first, paged by token; the empty list left out */
    char id2[64], id3[64];
    gemini_create(st, GCREATE("empq-k2", GREQ("j3-a1", )), id2, sizeof(id2));
    gemini_create(st, GCREATE("empq-k3", GREQ("j4-a1", )), id3, sizeof(id3));
    json_t *l = call(st, FAKELLM_BATCH_GEMINI, "GET", "/v1/batches", NULL, &status);
    CHECK_INT(status, 200);
    CHECK_INT(json_array_size(json_object_get(l, "operations")), 3);
    CHECK(json_object_get(l, "nextPageToken") == NULL);
    snprintf(path, sizeof(path), "batches/%s", id3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(l, "operations"), 0), "name")), path);
    /* the list leaves the responses out */
    CHECK(json_object_get(json_object_get(json_array_get(json_object_get(l, "operations"), 2), "metadata"), "output") ==
          NULL);
    json_decref(l);

    /* delete: an ended batch only */
    snprintf(path, sizeof(path), "/v1beta/batches/%s", id);
    e = call(st, FAKELLM_BATCH_GEMINI, "DELETE", path, NULL, &status);
    CHECK_INT(status, 200);
    json_decref(e);
    e = call(st, FAKELLM_BATCH_GEMINI, "GET", path, NULL, &status);
    CHECK_INT(status, 404);
    json_decref(e);
    empq_buf stats = {0};
    CHECK_INT(fakellm_batch_stats_json(st, &stats), EMPQ_OK);
    CHECK_CONTAINS(stats.data, "\"gemini\":{\"files_uploaded\":0");
    CHECK_CONTAINS(stats.data, "\"batches_created\":3,\"batch_gets\"");
    CHECK_CONTAINS(stats.data, "\"requests_failed\":1");
    empq_buf_free(&stats);
    fakellm_batch_store_free(&st);

    /* cancel of a long batch: CANCELLED, nothing answered, no responses */
    st = store(60000, 0, 0, 0);
    gemini_create(st, GCREATE("empq-k4", GREQ("j5-a1", ) "," GREQ("j6-a1", )), id, sizeof(id));
    op = gemini_wait(st, id, "BATCH_STATE_RUNNING");
    json_decref(op);
    snprintf(path, sizeof(path), "/v1beta/batches/%s:cancel", id);
    e = call(st, FAKELLM_BATCH_GEMINI, "POST", path, NULL, &status);
    CHECK_INT(status, 200);
    CHECK(json_is_object(e) && json_object_size(e) == 0); /* google.protobuf.Empty */
    json_decref(e);
    op = gemini_wait(st, id, "BATCH_STATE_CANCELLED");
    CHECK_INT(json_array_size(gemini_responses(op)), 0);
    CHECK_INT(gcount(op, "successfulRequestCount"), 0);
    json_decref(op);
    snprintf(path, sizeof(path), "/v1beta/batches/%s", id);
    e = call(st, FAKELLM_BATCH_GEMINI, "DELETE", path, NULL, &status);
    CHECK_INT(status, 200);
    json_decref(e);
    fakellm_batch_store_free(&st);

    /* expiry: half answered, EXPIRED, the answered half listed */
    st = store(100, 0, 1, 0);
    gemini_create(st, GCREATE("empq-k5", GREQ("a", ) "," GREQ("b", ) "," GREQ("c", ) "," GREQ("d", )), id, sizeof(id));
    op = gemini_wait(st, id, "BATCH_STATE_EXPIRED");
    CHECK_INT(json_array_size(gemini_responses(op)), 2);
    CHECK_INT(gcount(op, "successfulRequestCount"), 2);
    json_decref(op);
    fakellm_batch_store_free(&st);

    /* injected failures: INTERNAL (13) */
    st = store(0, 1.0, 0, 0);
    gemini_create(st, GCREATE("empq-k6", GREQ("a", )), id, sizeof(id));
    op = gemini_wait(st, id, "BATCH_STATE_SUCCEEDED");
    CHECK_INT(
        json_integer_value(json_object_get(json_object_get(json_array_get(gemini_responses(op), 0), "error"), "code")),
        13);
    json_decref(op);
    fakellm_batch_store_free(&st);
}

int main(void)
{
    RUN(test_transitions);
    RUN(test_parse_openai);
    RUN(test_openai_completes);
    RUN(test_openai_create_errors);
    RUN(test_openai_failures_seeded);
    RUN(test_openai_expire_and_cancel);
    RUN(test_anthropic);
    RUN(test_gemini);
    RUN(test_bounds);
    CHECK_DONE();
}
