/* test_export.c: responses.jsonl formatting and order (pure; no Redis). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
              "\"finish_reason\":\"stop\",\"tokens_in\":42,\"tokens_out\":7,\"reasoning_tokens\":null,"
              "\"cached_tokens\":null,\"system_fingerprint\":null,\"request_id\":null,\"safety_ratings\":null,"
              "\"thinking\":null,\"latency_ms\":120,"
              "\"attempts\":1,\"cache_hit\":false,\"started_at\":\"2026-11-22T04:00:00.123Z\","
              "\"finished_at\":\"2026-11-22T04:00:00.243Z\",\"job\":1}\n");
    empq_buf_free(&b);
}

/* The reasoning-era fields: counts, ids, safety ratings as JSON, and the
 * thinking only for a model that keeps it. */
static void test_line_reasoning_fields(void)
{
    Empq__Result *r = mk_result(2, "Take care.", 0);
    gens[2].has_reasoning_tokens = 1;
    gens[2].reasoning_tokens = 256;
    gens[2].has_cached_tokens = 1;
    gens[2].cached_tokens = 12;
    gens[2].system_fingerprint = "fp_1";
    gens[2].request_id = "req_9";
    gens[2].safety_ratings = "[{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"probability\":\"LOW\"}]";
    gens[2].thinking = "They are scared.";
    empq_buf b = {0};
    empq_error err = {0};
    CHECK_INT(empq_export_line(&run, prompts[0], r, &b, &err), EMPQ_OK);
    CHECK_CONTAINS(b.data, "\"reasoning_tokens\":256,\"cached_tokens\":12,\"system_fingerprint\":\"fp_1\","
                           "\"request_id\":\"req_9\",\"safety_ratings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\","
                           "\"probability\":\"LOW\"}],\"thinking\":null,");
    b.len = 0;
    m_llama.has_keep_thinking = m_llama.keep_thinking = 1;
    CHECK_INT(empq_export_line(&run, prompts[0], r, &b, &err), EMPQ_OK);
    CHECK_CONTAINS(b.data, "\"thinking\":\"They are scared.\",");
    CHECK_CONTAINS(b.data, "\"response\":\"Take care.\"");
    m_llama.has_keep_thinking = m_llama.keep_thinking = 0;
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
    CHECK_INT(json_object_size(o), 27);
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

/* The line as a jansson object built and dumped whole (how lines were made
 * before the formatter set values in place): the formatter must give the
 * same bytes. Valid UTF-8 only (jstr-less). */
static char *reference_line(const Empq__Prompt *p, const Empq__Result *r)
{
    const Empq__ModelSpec *m = models[r->model];
    const Empq__Generation *g = r->gen;
    int human = strcmp(m->provider, "human") == 0;
    char t1[40], t2[40];
#define S(x) ((x) != NULL ? json_string(x) : json_null())
#define I(has, v) ((has) ? json_integer(v) : json_null())
    json_t *params = json_object();
    if (!human && m->params != NULL) {
        const Empq__GenParams *q = m->params;
        if (q->has_temperature)
            json_object_set_new(params, "temperature", json_real(q->temperature));
        if (q->has_top_p)
            json_object_set_new(params, "top_p", json_real(q->top_p));
        if (q->has_max_tokens)
            json_object_set_new(params, "max_tokens", json_integer(q->max_tokens));
        if (q->has_seed)
            json_object_set_new(params, "seed", json_integer(q->seed));
        if (q->n_stop > 0) {
            json_t *a = json_array();
            for (size_t i = 0; i < q->n_stop; i++)
                json_array_append_new(a, json_string(q->stop[i]));
            json_object_set_new(params, "stop", a);
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_string(run.id));
    json_object_set_new(o, "prompt_id", S(p != NULL ? p->id : NULL));
    json_object_set_new(o, "prompt_index", json_integer(r->prompt));
    json_object_set_new(o, "emotion", S(p != NULL ? p->emotion : NULL));
    json_object_set_new(o, "situation", S(p != NULL ? p->situation : NULL));
    json_object_set_new(o, "prompt", S(p != NULL ? p->prompt : NULL));
    json_object_set_new(o, "response", S(g != NULL ? g->text : NULL));
    json_object_set_new(o, "source", S(m->alias));
    json_object_set_new(o, "model", S(human ? NULL : m->model));
    json_object_set_new(o, "model_version", S(g != NULL ? g->model_reported : NULL));
    json_object_set_new(o, "sample", json_integer(r->has_sample ? r->sample : 0));
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "finish_reason", S(g != NULL ? g->finish_reason : NULL));
    json_object_set_new(o, "tokens_in", I(g != NULL && g->has_tokens_in, g != NULL ? g->tokens_in : 0));
    json_object_set_new(o, "tokens_out", I(g != NULL && g->has_tokens_out, g != NULL ? g->tokens_out : 0));
    json_object_set_new(o, "reasoning_tokens", I(g != NULL && g->has_reasoning_tokens, g != NULL ? g->reasoning_tokens : 0));
    json_object_set_new(o, "cached_tokens", I(g != NULL && g->has_cached_tokens, g != NULL ? g->cached_tokens : 0));
    json_object_set_new(o, "system_fingerprint", S(g != NULL ? g->system_fingerprint : NULL));
    json_object_set_new(o, "request_id", S(g != NULL ? g->request_id : NULL));
    json_t *sr = g != NULL && g->safety_ratings != NULL ? json_loads(g->safety_ratings, JSON_DECODE_ANY, NULL) : NULL;
    json_object_set_new(o, "safety_ratings", sr != NULL ? sr : json_null());
    json_object_set_new(o, "thinking", S(g != NULL ? g->thinking : NULL));
    json_object_set_new(o, "latency_ms", I(g != NULL && g->has_latency_ms, g != NULL ? g->latency_ms : 0));
    json_object_set_new(o, "attempts", I(r->has_attempts, r->attempts));
    json_object_set_new(o, "cache_hit", json_boolean(r->has_cache_hit && r->cache_hit));
    json_object_set_new(o, "started_at", r->has_started_ms ? json_string(empq_export_iso8601(r->started_ms, t1, sizeof t1)) : json_null());
    json_object_set_new(o, "finished_at", r->has_finished_ms ? json_string(empq_export_iso8601(r->finished_ms, t2, sizeof t2)) : json_null());
    json_object_set_new(o, "job", json_integer(r->job));
#undef S
#undef I
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(o);
    return s;
}

static void test_render_matches_whole_objects(void)
{
    /* Every field set, unset and varied, across prompts (the prefix is
     * reused within a prompt) and timestamps in one second and across
     * seconds, years past 9999 included. */
    static const uint64_t times[] = {1795320000123ull, 1795320000999ull, 1795320000000ull,
                                     1795319999001ull, 0ull, 253402300800007ull, 1795320001500ull};
    gp.has_top_p = 1;
    gp.top_p = 0.95;
    gp.has_seed = 1;
    gp.seed = -3;
    Empq__Result *rs[9];
    for (uint32_t job = 0; job < 9; job++) {
        Empq__Result *r = mk_result(job, job == 4 ? "" : "Line \"one\"\n\ttab \\ \xe2\x82\xac \x01", (int)(job % 2));
        Empq__Generation *g = &gens[job];
        if (job % 3 != 0) {
            g->model_reported = job % 2 ? "m-v1" : NULL;
            g->finish_reason = job == 5 ? NULL : "length";
            g->has_tokens_in = job != 7;
            g->tokens_in = job * 1000003u;
            g->has_tokens_out = 1;
            g->tokens_out = 0;
            g->has_latency_ms = job % 2;
            g->latency_ms = 4000000000u;
        }
        if (job == 8)
            r->gen = NULL;
        r->has_sample = job != 2;
        r->has_attempts = job != 3;
        r->attempts = job + 1;
        r->has_cache_hit = job != 1;
        r->has_started_ms = job != 6;
        r->started_ms = times[job % 7];
        r->has_finished_ms = 1;
        r->finished_ms = times[(job + 3) % 7];
        rs[job] = r;
    }
    empq_buf out = {0};
    empq_export_stats st = {0};
    empq_error err = {0};
    Empq__Prompt *ps[3] = {prompts[0], NULL, prompts[2]}; /* prompt 1 missing */
    CHECK_INT(empq_export_render(&run, ps, 3, rs, 9, NULL, 0, &out, NULL, &st, &err), EMPQ_OK);
    CHECK_INT(st.lines, 9);
    empq_buf want = {0};
    for (uint32_t job = 0; job < 9; job++) {
        char *s = reference_line(ps[job / 3], rs[job]);
        CHECK(s != NULL);
        empq_buf_append(&want, s, strlen(s));
        empq_buf_append(&want, "\n", 1);
        free(s);
    }
    CHECK_STR(out.data, want.data);
    empq_buf_free(&out);
    empq_buf_free(&want);
    rs[8]->gen = &gens[8];
    gp.has_top_p = 0;
    gp.has_seed = 0;
}

static void test_bad_utf8_prompt_and_dead(void)
{
    /* Invalid bytes in the prompt half, in the shared model text and in a
     * dead letter become U+FFFD; the other strings stay as they are. */
    Empq__Prompt p = prompts_v[1];
    p.situation = "bad \xc0\xaf here";
    p.prompt = "fine";
    Empq__Result *r = mk_result(4, "ok", 0);
    m_gpt.alias = "g\xffpt";
    empq_buf b = {0};
    empq_error err = {0};
    CHECK_INT(empq_export_line(&run, &p, r, &b, &err), EMPQ_OK);
    CHECK_CONTAINS(b.data, "\"prompt_index\":1,\"emotion\":\"joyful\",\"situation\":\"bad "
                           "\xef\xbf\xbd\xef\xbf\xbd here\",\"prompt\":\"fine\",\"response\":\"ok\","
                           "\"source\":\"g\xef\xbf\xbdpt\",\"model\":\"gpt-4o\"");
    empq_buf_free(&b);
    Empq__DeadLetter d = EMPQ__DEAD_LETTER__INIT;
    d.run_id = "r-1";
    d.job = 7;
    d.reason = "http 500";
    d.body_excerpt = "{\"error\":\"\xfe\"}";
    d.has_at_ms = 1;
    d.at_ms = 1795320000123ull;
    d.worker = "w1";
    CHECK_INT(empq_export_dead_line(&run, &p, &d, &b, &err), EMPQ_OK);
    CHECK_STR(b.data, "{\"run_id\":\"r-1\",\"job\":7,\"prompt_index\":2,\"prompt_id\":\"hit:3_conv:4\","
                      "\"source\":\"g\xef\xbf\xbdpt\",\"sample\":0,\"reason\":\"http 500\","
                      "\"last_status\":null,\"body_excerpt\":\"{\\\"error\\\":\\\"\xef\xbf\xbd\\\"}\","
                      "\"attempts\":null,\"at\":\"2026-11-22T04:00:00.123Z\",\"worker\":\"w1\","
                      "\"request_id\":null,\"finish_reason\":null,\"tokens_in\":null,\"tokens_out\":null,"
                      "\"reasoning_tokens\":null,\"safety_ratings\":null}\n");
    empq_buf_free(&b);
    m_gpt.alias = "gpt";
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
    RUN(test_line_reasoning_fields);
    RUN(test_line_human);
    RUN(test_line_bad_utf8_and_model);
    RUN(test_render_order);
    RUN(test_render_matches_whole_objects);
    RUN(test_bad_utf8_prompt_and_dead);
    RUN(test_samples);
    CHECK_DONE();
}
