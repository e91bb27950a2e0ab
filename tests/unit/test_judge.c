/* test_judge.c: the strict reading of a judge's verdict (every accepted and
 * refused form, with its reason), the worker hook that turns a refused
 * verdict into a retry, judge-ratings.csv, and the JSON mode of the judge
 * requests (OpenAI json_schema, Gemini responseSchema) and their cache key. */
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "empq/cachekey.h"
#include "empq/judge.h"
#include "empq/provider.h"

static int parse(const char *text, int *label, char *reason, size_t rlen, empq_judge_fault *f, char *why,
                 size_t wlen)
{
    return empq_judge_parse(text, label, reason, rlen, f, why, wlen);
}

static void accepts(const char *text, int want, const char *want_reason)
{
    int label = -1;
    char reason[64], why[200];
    empq_judge_fault f = EMPQ_JUDGE_FAULT_OFF_SCALE;
    CHECK_INT(parse(text, &label, reason, sizeof reason, &f, why, sizeof why), EMPQ_OK);
    CHECK_INT(label, want);
    CHECK_INT(f, EMPQ_JUDGE_FAULT_NONE);
    CHECK_STR(reason, want_reason);
    CHECK_STR(why, "");
}

static void refuses(const char *text, empq_judge_fault want, const char *want_why)
{
    int label = -1;
    char why[200];
    empq_judge_fault f = EMPQ_JUDGE_FAULT_NONE;
    CHECK_INT(parse(text, &label, NULL, 0, &f, why, sizeof why), EMPQ_EPARSE);
    CHECK_INT(label, 0);
    CHECK_INT(f, want);
    CHECK_STR(why, want_why);
}

static void test_accepted(void)
{
    accepts("{\"label\":\"Good\",\"reason\":\"warm and specific\"}", EMPQ_JUDGE_GOOD, "warm and specific");
    accepts("  {\"reason\": \"flat\", \"label\": \"Bad\"}\n", EMPQ_JUDGE_BAD, "flat");
    accepts("{\"label\":\"okay\"}", EMPQ_JUDGE_OKAY, "");
    accepts("{\"label\":\" GOOD \",\"reason\":\"a\\nb\"}", EMPQ_JUDGE_GOOD, "a b");
    accepts("Okay", EMPQ_JUDGE_OKAY, "");
    accepts("good.", EMPQ_JUDGE_GOOD, "");
    accepts("\n Bad \n", EMPQ_JUDGE_BAD, "");
    /* a long reason is cut to the buffer, on a UTF-8 boundary */
    int label = 0;
    char reason[6];
    CHECK_INT(parse("{\"label\":\"Good\",\"reason\":\"abcd\xc3\xa9xyz\"}", &label, reason, sizeof reason, NULL, NULL,
                    0),
              EMPQ_OK);
    CHECK_STR(reason, "abcd");
}

static void test_refused(void)
{
    refuses("{\"label\":\"Excellent\",\"reason\":\"five stars\"}", EMPQ_JUDGE_FAULT_OFF_SCALE,
            "judge_off_scale: label 'Excellent'");
    refuses("{\"label\":\"4\"}", EMPQ_JUDGE_FAULT_OFF_SCALE, "judge_off_scale: label '4'");
    refuses("Great", EMPQ_JUDGE_FAULT_OFF_SCALE, "judge_off_scale: label 'Great'");
    refuses("7/10", EMPQ_JUDGE_FAULT_OFF_SCALE, "judge_off_scale: label '7/10'");
    refuses("The response is Good.", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: neither a label nor a JSON verdict: 'The response is Good.'");
    refuses("Good\nBad", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: neither a label nor a JSON verdict: 'Good Bad'");
    refuses("{\"label\":\"Good\"", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: not a JSON object: '{\"label\":\"Good\"'");
    refuses("{\"label\":3}", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: no string label (or a reason that is not a string) in '{\"label\":3}'");
    refuses("{\"label\":\"Good\",\"reason\":1}", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: no string label (or a reason that is not a string) in "
            "'{\"label\":\"Good\",\"reason\":1}'");
    refuses("{\"label\":\"Good\",\"score\":3}", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: unexpected key in '{\"label\":\"Good\",\"score\":3}'");
    refuses("{\"label\":\"Good\",\"label\":\"Bad\"}", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: not a JSON object: '{\"label\":\"Good\",\"label\":\"Bad\"}'");
    refuses("", EMPQ_JUDGE_FAULT_UNPARSEABLE, "judge_unparseable: empty answer ''");
    refuses(NULL, EMPQ_JUDGE_FAULT_UNPARSEABLE, "judge_unparseable: no answer text ''");
    refuses("```json\n{\"label\":\"Good\"}\n```", EMPQ_JUDGE_FAULT_UNPARSEABLE,
            "judge_unparseable: neither a label nor a JSON verdict: '```json {\"label\":\"Good\"} ```'");
    CHECK_STR(empq_judge_fault_name(EMPQ_JUDGE_FAULT_NONE), "");
    CHECK(empq_judge_label_name(0) == NULL);
    CHECK_STR(empq_judge_label_name(EMPQ_JUDGE_OKAY), "Okay");
}

static void test_check_hook(void)
{
    Empq__ModelSpec m = EMPQ__MODEL_SPEC__INIT;
    m.alias = "j";
    m.provider = "openai";
    empq_provider_result r;
    memset(&r, 0, sizeof r);
    r.cls = EMPQ_PROVIDER_SUCCESS;
    r.gen.text = "Excellent";
    /* not a judge: nothing changes */
    empq_judge_check(&m, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(r.reason, "");
    m.output = "judge";
    CHECK(empq_judge_is_judge(&m));
    empq_judge_check(&m, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_RETRYABLE);
    CHECK_STR(r.reason, "judge_off_scale: label 'Excellent'");
    memset(&r, 0, sizeof r);
    r.gen.text = "{\"label\":\"Bad\",\"reason\":\"cold\"}";
    empq_judge_check(&m, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_SUCCESS);
    /* a failure stays what it is */
    memset(&r, 0, sizeof r);
    r.cls = EMPQ_PROVIDER_PERMANENT;
    snprintf(r.reason, sizeof r.reason, "http 401");
    empq_judge_check(&m, &r);
    CHECK_INT(r.cls, EMPQ_PROVIDER_PERMANENT);
    CHECK_STR(r.reason, "http 401");
    empq_judge_check(NULL, NULL);
}

static void test_csv(void)
{
    Empq__ModelSpec j = EMPQ__MODEL_SPEC__INIT, k = EMPQ__MODEL_SPEC__INIT;
    j.alias = "judge-a";
    j.provider = "openai-compatible";
    j.output = "judge";
    k.alias = "writer";
    k.provider = "openai-compatible";
    Empq__ModelSpec *models[] = {&j, &k};
    Empq__RunSpec spec = EMPQ__RUN_SPEC__INIT;
    spec.name = "t";
    spec.n_models = 2;
    spec.models = models;
    Empq__Run run = EMPQ__RUN__INIT;
    run.id = "r-1";
    run.spec = &spec;
    run.n_prompts = 2;
    CHECK(empq_judge_is_judge_run(&run));
    Empq__Prompt p0 = EMPQ__PROMPT__INIT, p1 = EMPQ__PROMPT__INIT;
    p0.id = "hit:1_conv:2";
    p0.emotion = "afraid";
    p0.sentiment = "negative";
    p0.response = "Oh no, \"what\" was it?";
    p0.source = "human";
    p1.index = 1;
    p1.id = "hit:3_conv:4";
    p1.emotion = "proud";
    p1.response = "Caf\xc3\xa9 time!";
    p1.source = "chatgpt";
    Empq__Prompt *prompts[] = {&p0, &p1};
    Empq__Generation g0 = EMPQ__GENERATION__INIT, g1 = EMPQ__GENERATION__INIT, g2 = EMPQ__GENERATION__INIT;
    g0.text = "{\"label\":\"Good\",\"reason\":\"asks, cares\"}";
    g1.text = "Okay";
    g2.text = "free text of the non-judge model";
    Empq__Result r0 = EMPQ__RESULT__INIT, r1 = EMPQ__RESULT__INIT, r2 = EMPQ__RESULT__INIT;
    r0.job = 0, r0.prompt = 0, r0.model = 0, r0.gen = &g0;
    r1.job = 2, r1.prompt = 1, r1.model = 0, r1.gen = &g1, r1.has_sample = 1, r1.sample = 0;
    r2.job = 1, r2.prompt = 0, r2.model = 1, r2.gen = &g2;
    Empq__Result *results[] = {&r1, &r2, &r0, &r1}; /* any order, a duplicate */
    empq_buf b = {0};
    size_t rows = 9, skipped = 9;
    empq_error err = {0};
    CHECK_INT(empq_judge_csv_render(&run, prompts, 2, results, 4, &b, &rows, &skipped, &err), EMPQ_OK);
    CHECK_INT(rows, 2);
    CHECK_INT(skipped, 0);
    CHECK_STR(b.data, EMPQ_JUDGE_CSV_HEADER
              "r-1,judge-a,1,hit:1_conv:2,human,0,afraid,negative,5,21,Good,\"asks, cares\"\r\n"
              "r-1,judge-a,1,hit:3_conv:4,chatgpt,1,proud,,2,10,Okay,\r\n");
    empq_buf_free(&b);
    /* a stored text that is no verdict is left out and counted */
    g1.text = "Perfect";
    CHECK_INT(empq_judge_csv_render(&run, prompts, 2, results, 4, &b, &rows, &skipped, &err), EMPQ_OK);
    CHECK_INT(rows, 1);
    CHECK_INT(skipped, 1);
    empq_buf_free(&b);
    r0.model = 5;
    CHECK_INT(empq_judge_csv_render(&run, prompts, 2, results, 4, &b, &rows, &skipped, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "names model 5 of 2");
    empq_buf_free(&b);
}

static json_t *body_of(const Empq__ModelSpec *m)
{
    char *body = NULL;
    empq_error err = {0};
    CHECK_INT(empq_provider_body(m, "sys", "rate <response>hi</response>", 0, &body, NULL, &err), EMPQ_OK);
    json_error_t je;
    json_t *o = json_loads(body, 0, &je);
    CHECK(o != NULL);
    free(body);
    return o;
}

static void test_json_mode(void)
{
    Empq__ModelSpec m = EMPQ__MODEL_SPEC__INIT;
    m.alias = "j";
    m.provider = "openai";
    m.model = "gpt-4o";
    json_t *o = body_of(&m);
    CHECK(json_object_get(o, "response_format") == NULL);
    json_decref(o);
    m.output = "judge";
    o = body_of(&m);
    json_t *rf = json_object_get(o, "response_format");
    CHECK_STR(json_string_value(json_object_get(rf, "type")), "json_schema");
    json_t *js = json_object_get(rf, "json_schema");
    CHECK_STR(json_string_value(json_object_get(js, "name")), "judge_verdict");
    CHECK(json_is_true(json_object_get(js, "strict")));
    json_t *schema = json_object_get(js, "schema");
    CHECK(json_is_false(json_object_get(schema, "additionalProperties")));
    char *s = json_dumps(json_object_get(schema, "properties"), JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(s, "{\"label\":{\"enum\":[\"Good\",\"Okay\",\"Bad\"],\"type\":\"string\"},\"reason\":{\"type\":\"string\"}}");
    free(s);
    json_decref(o);

    m.provider = "gemini";
    m.model = "gemini-2.0-flash";
    o = body_of(&m);
    json_t *gc = json_object_get(o, "generationConfig");
    CHECK_STR(json_string_value(json_object_get(gc, "responseMimeType")), "application/json");
    s = json_dumps(json_object_get(gc, "responseSchema"), JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(s, "{\"properties\":{\"label\":{\"enum\":[\"Good\",\"Okay\",\"Bad\"],\"type\":\"STRING\"},"
                 "\"reason\":{\"type\":\"STRING\"}},\"required\":[\"label\",\"reason\"],\"type\":\"OBJECT\"}");
    free(s);
    json_decref(o);

    /* Anthropic: a forced call of the verdict tool; its input is the text read */
    m.provider = "anthropic";
    m.model = "claude-sonnet-4-5";
    m.output = "judge";
    o = body_of(&m);
    s = json_dumps(json_object_get(o, "tool_choice"), JSON_SORT_KEYS | JSON_COMPACT);
    CHECK_STR(s, "{\"name\":\"judge_verdict\",\"type\":\"tool\"}");
    free(s);
    json_t *tool = json_array_get(json_object_get(o, "tools"), 0);
    CHECK_STR(json_string_value(json_object_get(tool, "name")), "judge_verdict");
    CHECK(json_is_object(json_object_get(json_object_get(json_object_get(tool, "input_schema"), "properties"),
                                         "label")));
    json_decref(o);
    const char *reply = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
                        "\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"judge_verdict\","
                        "\"input\":{\"label\":\"Okay\",\"reason\":\"kind but generic\"}}],"
                        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":50,\"output_tokens\":20}}";
    empq_http_reply rep = {.status = 200, .body = reply, .body_len = strlen(reply)};
    empq_provider_result pr;
    CHECK_INT(empq_provider_parse(&m, &rep, NULL, 0, &pr), EMPQ_OK);
    CHECK_INT(pr.cls, EMPQ_PROVIDER_SUCCESS);
    CHECK_STR(pr.gen.text, "{\"label\":\"Okay\",\"reason\":\"kind but generic\"}");
    empq_judge_check(&m, &pr);
    CHECK_INT(pr.cls, EMPQ_PROVIDER_SUCCESS);
    empq_provider_result_clear(&pr);
    m.provider = "gemini";
    m.model = "gemini-2.0-flash";

    /* the cache key tells a judge request from the same text asked freely */
    char k1[EMPQ_CACHE_KEY_HEX], k2[EMPQ_CACHE_KEY_HEX];
    CHECK_INT(empq_cachekey(&m, "sys", "u", 0, k1, NULL), EMPQ_OK);
    m.output = NULL;
    CHECK_INT(empq_cachekey(&m, "sys", "u", 0, k2, NULL), EMPQ_OK);
    CHECK(strcmp(k1, k2) != 0);
}

int main(void)
{
    RUN(test_accepted);
    RUN(test_refused);
    RUN(test_check_hook);
    RUN(test_csv);
    RUN(test_json_mode);
    CHECK_DONE();
}
