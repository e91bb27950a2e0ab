/* test_export.c: responses.jsonl formatting and order (pure; no Redis). */
#include <jansson.h>

#include "check.h"
#include "empq/export.h"

/* A run of 3 prompts x (human, gpt, llama) x 1 sample. */
static Empq__ModelSpec m_human = EMPQ__MODEL_SPEC__INIT;
static Empq__ModelSpec m_gpt = EMPQ__MODEL_SPEC__INIT;
static Empq__ModelSpec m_llama = EMPQ__MODEL_SPEC__INIT;
static Empq__GenParams gp = EMPQ__GEN_PARAMS__INIT;
static Empq__ModelSpec *models[3];
static char *stops[] = {"\n\n", "END"};
static Empq__RunSpec spec = EMPQ__RUN_SPEC__INIT;
static Empq__Run run = EMPQ__RUN__INIT;
static Empq__Prompt prompts_v[3];
static Empq__Prompt *prompts[3];

static void setup(void)
{
    m_human.alias = "human";
    m_human.provider = "human";
    m_gpt.alias = "gpt";
    m_gpt.provider = "openai";
    m_gpt.model = "gpt-4o";
    gp.has_temperature = 1;
    gp.temperature = 0.7;
    gp.has_max_tokens = 1;
    gp.max_tokens = 256;
    gp.n_stop = 2;
    gp.stop = stops;
    m_gpt.params = &gp;
    m_llama.alias = "llama";
    m_llama.provider = "openai-compatible";
    m_llama.model = "llama-3-8b";
    models[0] = &m_human;
    models[1] = &m_gpt;
    models[2] = &m_llama;
    spec.name = "t";
    spec.n_models = 3;
    spec.models = models;
    run.id = "r-1";
    run.spec = &spec;
    run.n_prompts = 3;
    static const char *emo[] = {"afraid", "joyful", "sad"};
    static const char *ids[] = {"hit:1_conv:2", "hit:3_conv:4", "hit:5_conv:6"};
    for (int i = 0; i < 3; i++) {
        Empq__Prompt init = EMPQ__PROMPT__INIT;
        prompts_v[i] = init;
        prompts_v[i].index = (uint32_t)i;
        prompts_v[i].id = (char *)ids[i];
        prompts_v[i].emotion = (char *)emo[i];
        prompts_v[i].situation = "I heard a noise";
        prompts_v[i].prompt = "Did you hear that? \xc3\xa9t\xc3\xa9 \"quoted\"";
        prompts_v[i].human_response = "Yes!";
        prompts[i] = &prompts_v[i];
    }
}

static Empq__Generation gens[9];
static Empq__Result res_v[9];

static Empq__Result *mk_result(uint32_t job, const char *text, int cache_hit)
{
    Empq__Generation g = EMPQ__GENERATION__INIT;
    Empq__Result r = EMPQ__RESULT__INIT;
    gens[job] = g;
    gens[job].text = (char *)text;
    res_v[job] = r;
    res_v[job].run_id = "r-1";
    res_v[job].job = job;
    res_v[job].prompt = job / 3;
    res_v[job].model = job % 3;
    res_v[job].has_sample = 1;
    res_v[job].gen = &gens[job];
    res_v[job].has_cache_hit = 1;
    res_v[job].cache_hit = cache_hit;
    res_v[job].has_attempts = 1;
    res_v[job].attempts = 1;
    return &res_v[job];
}

static void test_iso8601(void)
{
    char buf[40];
    CHECK_STR(empq_export_iso8601(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    CHECK_STR(empq_export_iso8601(1795320000123ull, buf, sizeof buf), "2026-11-22T04:00:00.123Z");
}

static void test_line_model(void)
{
    Empq__Result *r = mk_result(1, "I hear you.", 0);
    gens[1].finish_reason = "stop";
    gens[1].model_reported = "gpt-4o-2024-08-06";
    gens[1].has_tokens_in = 1;
    gens[1].tokens_in = 42;
    gens[1].has_tokens_out = 1;
    gens[1].tokens_out = 7;
    gens[1].has_latency_ms = 1;
    gens[1].latency_ms = 120;
    r->has_started_ms = 1;
    r->started_ms = 1795320000123ull;
    r->has_finished_ms = 1;
    r->finished_ms = 1795320000243ull;
    empq_buf b = {0};
    empq_error err = {0};
    CHECK_INT(empq_export_line(&run, prompts[0], r, &b, &err), EMPQ_OK);
    CHECK_STR(b.data,
              "{\"run_id\":\"r-1\",\"prompt_id\":\"hit:1_conv:2\",\"prompt_index\":0,"
              "\"emotion\":\"afraid\",\"situation\":\"I heard a noise\","
              "\"prompt\":\"Did you hear that? \xc3\xa9t\xc3\xa9 \\\"quoted\\\"\","
              "\"response\":\"I hear you.\",\"source\":\"gpt\",\"model\":\"gpt-4o\","
              "\"model_version\":\"gpt-4o-2024-08-06\",\"sample\":0,"
              "\"params\":{\"temperature\":0.7,\"max_tokens\":256,\"stop\":[\"\\n\\n\",\"END\"]},"
              "\"finish_reason\":\"stop\",\"tokens_in\":42,\"tokens_out\":7,\"latency_ms\":120,"
              "\"attempts\":1,\"cache_hit\":false,\"started_at\":\"2026-11-22T04:00:00.123Z\","
              "\"finished_at\":\"2026-11-22T04:00:00.243Z\",\"job\":1}\n");
    empq_buf_free(&b);
}

static void test_line_human(void)
{
    Empq__Result *r = mk_result(0, "Yes!", 0);
    empq_buf b = {0};
    empq_error err = {0};
    CHECK_INT(empq_export_line(&run, prompts[0], r, &b, &err), EMPQ_OK);
    json_error_t je;
    json_t *o = json_loads(b.data, 0, &je);
    CHECK(o != NULL);
    CHECK_STR(json_string_value(json_object_get(o, "source")), "human");
    CHECK(json_is_null(json_object_get(o, "model")));
    CHECK(json_is_null(json_object_get(o, "model_version")));
    CHECK(json_is_null(json_object_get(o, "tokens_in")));
    CHECK(json_is_null(json_object_get(o, "started_at")));
    CHECK_INT(json_object_size(json_object_get(o, "params")), 0);
    CHECK_STR(json_string_value(json_object_get(o, "response")), "Yes!");
    CHECK_INT(json_object_size(o), 21);
    json_decref(o);
    empq_buf_free(&b);
}

static void test_line_bad_utf8_and_model(void)
{
    Empq__Result *r = mk_result(2, "ok \xff\xfe end \xed\xa0\x80", 1);
    empq_buf b = {0};
    empq_error err = {0};
    CHECK_INT(empq_export_line(&run, prompts[0], r, &b, &err), EMPQ_OK);
    CHECK_CONTAINS(b.data, "\"response\":\"ok \xef\xbf\xbd\xef\xbf\xbd end \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    CHECK_CONTAINS(b.data, "\"cache_hit\":true");
    empq_buf_free(&b);
    r->model = 7;
    CHECK_INT(empq_export_line(&run, prompts[0], r, &b, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "model 7");
    empq_buf_free(&b);
}

static void test_render_order(void)
{
    /* Results given out of order, one duplicate, one dead, one missing. */
    Empq__Result *rs[9];
    size_t n = 0;
    uint32_t order[] = {8, 3, 0, 5, 1, 2, 6, 4};
    for (size_t i = 0; i < 8; i++) {
        if (order[i] == 4)
            continue; /* job 4 dead */
        if (order[i] == 6)
            continue; /* job 6 missing */
        rs[n++] = mk_result(order[i], "x", order[i] % 2);
    }
    rs[n++] = &res_v[3]; /* duplicate */
    Empq__DeadLetter d = EMPQ__DEAD_LETTER__INIT;
    d.run_id = "r-1";
    d.job = 4;
    d.reason = "http 400";
    d.has_last_status = 1;
    d.last_status = 400;
    Empq__DeadLetter *ds[1] = {&d};
    empq_buf out = {0}, dout = {0};
    empq_export_stats st = {0};
    empq_error err = {0};
    CHECK_INT(empq_export_render(&run, prompts, 3, rs, n, ds, 1, &out, &dout, &st, &err), EMPQ_OK);
    CHECK_INT(st.total, 9);
    CHECK_INT(st.lines, 6);
    CHECK_INT(st.dead, 1);
    CHECK_INT(st.missing, 2);
    /* lines in job order 0,1,2,3,5,8: jobs 6 and 7 are missing */
    size_t lines = 0;
    long last = -1;
    for (char *line = out.data; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        CHECK(nl != NULL);
        *nl = '\0';
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        CHECK(o != NULL);
        long job = (long)json_integer_value(json_object_get(o, "job"));
        CHECK(job > last);
        last = job;
        CHECK_INT(json_integer_value(json_object_get(o, "prompt_index")), job / 3);
        json_decref(o);
        lines++;
        line = nl + 1;
    }
    CHECK_INT(lines, st.lines);
    CHECK_CONTAINS(dout.data, "\"job\":4,\"prompt_index\":1,\"prompt_id\":\"hit:3_conv:4\","
                              "\"source\":\"gpt\",\"sample\":0,\"reason\":\"http 400\","
                              "\"last_status\":400");
    empq_buf_free(&out);
    empq_buf_free(&dout);
}

static void test_samples(void)
{
    CHECK_INT(empq_export_total_jobs(&run), 9);
    m_llama.samples = 3;
    CHECK_INT(empq_export_samples(&spec), 3);
    CHECK_INT(empq_export_total_jobs(&run), 27);
    m_llama.samples = 1;
}

int main(void)
{
    setup();
    RUN(test_iso8601);
    RUN(test_line_model);
    RUN(test_line_human);
    RUN(test_line_bad_utf8_and_model);
    RUN(test_render_order);
    RUN(test_samples);
    CHECK_DONE();
}
