/* test_spec.c: the study spec: good specs land field by field in RunSpec,
 * bad specs fail naming the key path and the line, every file in studies/
 * loads. */
#include <dirent.h>
#include <stdlib.h>

#include "check.h"
#include "empq/spec.h"

/* A valid spec to vary; line numbers of each key are fixed below. */
#define BASE_HEAD \
    "name: t\n"                                  /* 1 */ \
    "dataset: {format: synth, prompts: 10}\n"    /* 2 */ \
    "template:\n"                                /* 3 */ \
    "  user: \"{prompt}\"\n"                     /* 4 */ \
    "models:\n"                                  /* 5 */ \
    "  - alias: a\n"                             /* 6 */ \
    "    provider: openai\n"                     /* 7 */ \
    "    base_url: http://127.0.0.1:1/v1\n"      /* 8 */ \
    "    model: m\n"                             /* 9 */

static const char *source_dir(void)
{
    return getenv("EMPQ_SOURCE_DIR");
}

static Empq__RunSpec *good(const char *yaml, const char *base_dir)
{
    Empq__RunSpec *rs = (Empq__RunSpec *)1;
    empq_error err = {0};
    int rc = empq_spec_parse(yaml, strlen(yaml), "t.yaml", base_dir, &rs, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    CHECK_INT(rc, EMPQ_OK);
    CHECK(rs != NULL);
    return rs;
}

static void bad_at(int line_of_test, const char *yaml, int code, const char *want)
{
    Empq__RunSpec *rs = (Empq__RunSpec *)1;
    empq_error err = {0};
    int rc = empq_spec_parse(yaml, strlen(yaml), "t.yaml", NULL, &rs, &err);
    if (rc != code || strstr(err.msg, want) == NULL)
        fprintf(stderr, "case at test line %d: rc %d, message: %s\n", line_of_test, rc, err.msg);
    CHECK_INT(rc, code);
    CHECK(rs == NULL);
    CHECK_CONTAINS(err.msg, want);
}
#define bad(yaml, code, want) bad_at(__LINE__, (yaml), (code), (want))

/* ==================== good specs ==================== */

static void test_minimal_defaults(void)
{
    Empq__RunSpec *rs = good(BASE_HEAD, NULL);
    CHECK_STR(rs->name, "t");
    CHECK_STR(rs->dataset_format, "synth");
    CHECK(rs->dataset_path == NULL);
    CHECK(rs->has_synth_prompts && rs->synth_prompts == 10);
    CHECK(rs->has_synth_seed && rs->synth_seed == 1);
    CHECK(rs->has_selection_count && rs->selection_count == 0);
    CHECK(rs->has_selection_seed && rs->selection_seed == 1);
    CHECK_STR(rs->selection_balance, "emotion");
    CHECK(rs->template_system == NULL);
    CHECK_STR(rs->template_user, "{prompt}");
    CHECK_STR(rs->spec_yaml, BASE_HEAD);
    CHECK(rs->spec_path == NULL);
    CHECK_INT(rs->n_models, 2);
    CHECK_STR(rs->models[0]->alias, "human");
    CHECK_STR(rs->models[0]->provider, "human");
    CHECK(rs->models[0]->base_url == NULL && rs->models[0]->model == NULL);
    CHECK_STR(rs->models[1]->alias, "a");
    CHECK_STR(rs->models[1]->provider, "openai");
    CHECK_STR(rs->models[1]->base_url, "http://127.0.0.1:1/v1");
    CHECK_STR(rs->models[1]->model, "m");
    CHECK(rs->models[1]->params == NULL && rs->models[1]->limits == NULL && rs->models[1]->prices == NULL);
    /* proto defaults */
    CHECK_INT(rs->models[1]->samples, 1);
    CHECK_INT(rs->models[1]->max_attempts, 5);
    CHECK_INT(rs->models[1]->timeout_ms, 120000);
    CHECK_INT(empq_spec_model_index(rs, "human"), 0);
    CHECK_INT(empq_spec_model_index(rs, "a"), 1);
    CHECK_INT(empq_spec_model_index(rs, "b"), -1);
    CHECK_INT(empq_spec_model_index(rs, NULL), -1);
    CHECK_INT(empq_spec_model_index(NULL, "a"), -1);
    empq__run_spec__free_unpacked(rs, NULL);
}

static void test_full_file(void)
{
    const char *src = source_dir();
    if (src == NULL) {
        fprintf(stderr, "   (EMPQ_SOURCE_DIR unset: file tests not run)\n");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/spec_full.yaml", src);
    Empq__RunSpec *rs = NULL;
    empq_error err = {0};
    int rc = empq_spec_load(path, &rs, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "%s\n", err.msg);
    CHECK_INT(rc, EMPQ_OK);
    CHECK_STR(rs->name, "full-spec");
    CHECK_STR(rs->spec_path, path);
    CHECK_CONTAINS(rs->spec_yaml, "# spec_full.yaml: every field");
    char want[1100];
    snprintf(want, sizeof want, "%s/tests/data/data/train-head.csv", src);
    CHECK_STR(rs->dataset_path, want);
    CHECK_STR(rs->dataset_format, "empatheticdialogues");
    CHECK(!rs->has_synth_prompts && !rs->has_synth_seed);
    CHECK_INT(rs->selection_count, 64);
    CHECK(rs->selection_seed == 12345678901ULL);
    CHECK_STR(rs->selection_balance, "none");
    CHECK_STR(rs->template_system, "You are {{kind}}.");
    CHECK_STR(rs->template_user, "Emotion: {emotion} ({sentiment})\nSituation: {situation}\nSpeaker ({id}): {prompt}\n");

    CHECK_INT(rs->n_models, 3);
    CHECK_STR(rs->models[0]->alias, "people");
    CHECK_STR(rs->models[0]->provider, "human");

    const Empq__ModelSpec *m = rs->models[1];
    CHECK_STR(m->alias, "gpt-4");
    CHECK_STR(m->provider, "azure-openai");
    CHECK_STR(m->base_url, "https://my-resource.openai.azure.com/openai/deployments/gpt4");
    CHECK_STR(m->model, "gpt-4-0613");
    CHECK(m->api_key_env == NULL);
    CHECK_STR(m->api_key_file, "/run/secrets/azure");
    CHECK_STR(m->api_version, "2024-02-01");
    CHECK(m->has_samples && m->samples == 3);
    CHECK(m->has_max_attempts && m->max_attempts == 7);
    CHECK(m->has_timeout_ms && m->timeout_ms == 30000);
    CHECK(m->params != NULL);
    CHECK(m->params->has_temperature && m->params->temperature == 1.5);
    CHECK(m->params->has_top_p && m->params->top_p == 0.25);
    CHECK(m->params->has_max_tokens && m->params->max_tokens == 100);
    CHECK(m->params->has_seed && m->params->seed == -42);
    CHECK_INT(m->params->n_stop, 2);
    CHECK_STR(m->params->stop[0], "\n\n");
    CHECK_STR(m->params->stop[1], "Speaker:");
    CHECK(m->limits != NULL);
    CHECK(m->limits->has_max_concurrency && m->limits->max_concurrency == 8);
    CHECK(m->limits->has_requests_per_minute && m->limits->requests_per_minute == 100);
    CHECK(m->limits->has_tokens_per_minute && m->limits->tokens_per_minute == 20000);
    CHECK(m->prices != NULL);
    CHECK(m->prices->has_input_per_mtok && m->prices->input_per_mtok == 30);
    CHECK(m->prices->has_output_per_mtok && m->prices->output_per_mtok == 60.5);
    CHECK(m->prices->has_max_cost && m->prices->max_cost == 12.25);

    m = rs->models[2];
    CHECK_STR(m->alias, "claude_3.haiku");
    CHECK_STR(m->provider, "anthropic");
    CHECK_STR(m->api_key_env, "ANTHROPIC_API_KEY");
    CHECK(m->api_version == NULL);
    CHECK(!m->has_samples && m->samples == 1);
    CHECK(m->params->has_temperature && m->params->temperature == 1.0);
    CHECK(!m->params->has_top_p && !m->params->has_max_tokens && !m->params->has_seed);
    CHECK_INT(m->params->n_stop, 1);
    CHECK_STR(m->params->stop[0], "END");
    CHECK(m->limits == NULL && m->prices == NULL);
    CHECK_INT(empq_spec_model_index(rs, "claude_3.haiku"), 2);
    empq__run_spec__free_unpacked(rs, NULL);
}

static void test_paths(void)
{
    const char *y = "name: p\ndataset: {format: jsonl, path: prompts/p.jsonl}\n"
                    "template: {user: x}\nmodels: [{alias: a, provider: openai, base_url: u, model: m}]\n";
    Empq__RunSpec *rs = good(y, "/srv/study");
    CHECK_STR(rs->dataset_path, "/srv/study/prompts/p.jsonl");
    empq__run_spec__free_unpacked(rs, NULL);
    rs = good(y, "/srv/study/");
    CHECK_STR(rs->dataset_path, "/srv/study/prompts/p.jsonl");
    empq__run_spec__free_unpacked(rs, NULL);
    rs = good(y, NULL);
    CHECK_STR(rs->dataset_path, "prompts/p.jsonl");
    empq__run_spec__free_unpacked(rs, NULL);
    rs = good(y, "/");
    CHECK_STR(rs->dataset_path, "/prompts/p.jsonl");
    empq__run_spec__free_unpacked(rs, NULL);

    const char *abs = "name: p\ndataset: {format: jsonl, path: /data/p.jsonl}\n"
                      "template: {user: x}\nmodels: [{alias: a, provider: openai, base_url: u, model: m}]\n";
    rs = good(abs, "/srv/study");
    CHECK_STR(rs->dataset_path, "/data/p.jsonl");
    empq__run_spec__free_unpacked(rs, NULL);

    /* ${VAR} in dataset.path is expanded at load; base_url is kept */
    setenv("EMPQ_TEST_SPEC_DIR", "/mnt/data", 1);
    setenv("EMPQ_TEST_SPEC_REL", "rel", 1);
    const char *env = "name: p\ndataset: {format: jsonl, path: '${EMPQ_TEST_SPEC_DIR}/a-$$1.csv'}\n"
                      "template: {user: x}\nmodels: [{alias: a, provider: openai, base_url: '${EMPQ_TEST_SPEC_URL}/v1', model: m}]\n";
    rs = good(env, "/srv/study");
    CHECK_STR(rs->dataset_path, "/mnt/data/a-$1.csv");
    CHECK_STR(rs->models[1]->base_url, "${EMPQ_TEST_SPEC_URL}/v1");
    empq__run_spec__free_unpacked(rs, NULL);
    const char *envrel = "name: p\ndataset: {format: jsonl, path: '${EMPQ_TEST_SPEC_REL}/a.csv'}\n"
                         "template: {user: x}\nmodels: [{alias: a, provider: openai, base_url: u, model: m}]\n";
    rs = good(envrel, "/srv/study");
    CHECK_STR(rs->dataset_path, "/srv/study/rel/a.csv");
    empq__run_spec__free_unpacked(rs, NULL);

    const char *src = source_dir();
    if (src != NULL) {
        char path[1024], want[1100];
        snprintf(path, sizeof path, "%s/tests/data/spec_relative.yaml", src);
        snprintf(want, sizeof want, "%s/tests/data/prompts/p.jsonl", src);
        empq_error err = {0};
        CHECK_INT(empq_spec_load(path, &rs, &err), EMPQ_OK);
        CHECK_STR(rs->dataset_path, want);
        CHECK_STR(rs->spec_path, path);
        empq__run_spec__free_unpacked(rs, NULL);
    }
}

static void test_human_and_order(void)
{
    Empq__RunSpec *rs = good(BASE_HEAD
                             "  - {alias: b, provider: gemini, base_url: u, model: g}\n"
                             "  - {alias: c, provider: openai-compatible, base_url: u, model: g}\n"
                             "human: {include: false}\n",
                             NULL);
    CHECK_INT(rs->n_models, 3);
    CHECK_STR(rs->models[0]->alias, "a");
    CHECK_STR(rs->models[1]->alias, "b");
    CHECK_STR(rs->models[2]->alias, "c");
    CHECK_INT(empq_spec_model_index(rs, "human"), -1);
    empq__run_spec__free_unpacked(rs, NULL);

    /* without human, its alias is free for a model */
    rs = good("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nhuman: {include: false}\n"
              "models: [{alias: human, provider: openai, base_url: u, model: m}]\n",
              NULL);
    CHECK_INT(rs->n_models, 1);
    CHECK_STR(rs->models[0]->provider, "openai");
    CHECK(rs->synth_prompts == 2000);
    empq__run_spec__free_unpacked(rs, NULL);

    rs = good(BASE_HEAD "human: {alias: dataset}\n", NULL);
    CHECK_INT(rs->n_models, 2);
    CHECK_STR(rs->models[0]->alias, "dataset");
    CHECK_STR(rs->models[0]->provider, "human");
    empq__run_spec__free_unpacked(rs, NULL);

    /* null values are "not given"; comments, anchors and aliases work */
    rs = good("name: t\n"
              "dataset: {format: synth, seed: 99}\n"
              "selection:\n"
              "template: {system: ~, user: '{prompt}'}\n"
              "models:\n"
              "  - alias: a\n"
              "    provider: openai\n"
              "    base_url: u\n"
              "    model: m\n"
              "    params: &p {temperature: 0.2, stop: [a, b]}\n"
              "    api_version: null\n"
              "  - alias: b   # a comment\n"
              "    provider: openai\n"
              "    base_url: u\n"
              "    model: m\n"
              "    params: *p\n",
              NULL);
    CHECK(rs->synth_seed == 99);
    CHECK(rs->template_system == NULL);
    CHECK(rs->models[1]->api_version == NULL);
    CHECK(rs->models[2]->params->temperature == 0.2);
    CHECK_INT(rs->models[2]->params->n_stop, 2);
    CHECK_STR(rs->selection_balance, "emotion");
    empq__run_spec__free_unpacked(rs, NULL);
}

/* ==================== bad specs ==================== */

static void test_unknown_keys(void)
{
    bad("name: t\nnmae: u\n", EMPQ_ESPEC, "t.yaml:2: key 'nmae' is not a known key");
    bad("name: t\ndataset: {format: synth, promtps: 3}\n", EMPQ_ESPEC,
        "t.yaml:2: key 'dataset.promtps' is not a known key (known here: format, path, prompts, seed)");
    bad("name: t\ndataset: {format: synth}\ntemplate:\n  user: x\n  sytem: y\n", EMPQ_ESPEC,
        "t.yaml:5: key 'template.sytem' is not a known key");
    bad(BASE_HEAD "    params:\n      temprature: 0.5\n", EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.temprature' is not a known key");
    bad(BASE_HEAD "  - alias: b\n    provider: openai\n    base_url: u\n    model: m\n"
                  "  - alias: c\n    provider: openai\n    base_url: u\n    model: m\n"
                  "    params: {temperature: 1}\n    limits:\n      rpm: 5\n",
        EMPQ_ESPEC, "t.yaml:20: key 'models[2].limits.rpm' is not a known key");
    bad(BASE_HEAD "    prices: {input: 1}\n", EMPQ_ESPEC, "t.yaml:10: key 'models[0].prices.input' is not a known key");
    bad(BASE_HEAD "    temperature: 0.3\n", EMPQ_ESPEC, "t.yaml:10: key 'models[0].temperature' is not a known key");
    bad(BASE_HEAD "human: {alias: h, show: true}\n", EMPQ_ESPEC, "t.yaml:10: key 'human.show' is not a known key");
    bad(BASE_HEAD "selection: {count: 5}\n", EMPQ_ESPEC, "t.yaml:10: key 'selection.count' is not a known key");
    bad("name: t\n? [a, b]\n: c\n", EMPQ_ESPEC, "t.yaml:2: a key in 'the spec' is not a string");
}

static void test_duplicate_keys(void)
{
    bad("name: t\nname: u\n", EMPQ_ESPEC, "t.yaml:2: key 'name' appears twice (first at line 1)");
    bad(BASE_HEAD "    model: m2\n", EMPQ_ESPEC, "t.yaml:10: key 'models[0].model' appears twice (first at line 9)");
    bad(BASE_HEAD "    params: {seed: 1, seed: 2}\n", EMPQ_ESPEC, "key 'models[0].params.seed' appears twice");
}

static void test_types(void)
{
    bad(BASE_HEAD "selection: {prompts: abc}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'selection.prompts' must be an integer, got 'abc'");
    bad(BASE_HEAD "selection: {prompts: 2.5}\n", EMPQ_ESPEC, "key 'selection.prompts' must be an integer, got '2.5'");
    bad(BASE_HEAD "selection: {prompts: -1}\n", EMPQ_ESPEC, "key 'selection.prompts' must be an integer >= 0, got '-1'");
    bad(BASE_HEAD "selection: {seed: -1}\n", EMPQ_ESPEC, "key 'selection.seed' must be an integer from 0 to");
    bad(BASE_HEAD "selection: {prompts: 99999999999}\n", EMPQ_ESPEC, "key 'selection.prompts' must be an integer >= 0");
    bad(BASE_HEAD "selection: {balance: emotions}\n", EMPQ_ESPEC,
        "key 'selection.balance' must be one of emotion, none, got 'emotions'");
    bad(BASE_HEAD "selection: [1]\n", EMPQ_ESPEC, "t.yaml:10: key 'selection' must be a mapping, got a list");
    bad(BASE_HEAD "    params: {temperature: abc}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[0].params.temperature' must be a number, got 'abc'");
    bad(BASE_HEAD "    params: {temperature: \"0.7\"}\n", EMPQ_ESPEC,
        "key 'models[0].params.temperature' must be a number, got the quoted string '0.7'");
    bad(BASE_HEAD "    params: {temperature: .nan}\n", EMPQ_ESPEC, "must be a number, got '.nan'");
    bad(BASE_HEAD "    params: {temperature: [1]}\n", EMPQ_ESPEC, "must be a number, got a list");
    bad(BASE_HEAD "    params: {max_tokens: 1e3}\n", EMPQ_ESPEC, "key 'models[0].params.max_tokens' must be an integer");
    bad(BASE_HEAD "    params: {seed: 99999999999999999999}\n", EMPQ_ESPEC, "must be a 64-bit integer");
    bad(BASE_HEAD "    params: {stop: {a: 1}}\n", EMPQ_ESPEC, "key 'models[0].params.stop' must be a string or a list of strings");
    bad(BASE_HEAD "    params: {stop: [a, '']}\n", EMPQ_ESPEC, "key 'models[0].params.stop[1]' must be a non-empty string");
    bad(BASE_HEAD "    params: {stop: [a, [b]]}\n", EMPQ_ESPEC, "key 'models[0].params.stop[1]' must be a non-empty string, got a list");
    bad(BASE_HEAD "    params: 0.7\n", EMPQ_ESPEC, "key 'models[0].params' must be a mapping, got '0.7'");
    bad(BASE_HEAD "    samples: two\n", EMPQ_ESPEC, "t.yaml:10: key 'models[0].samples' must be an integer, got 'two'");
    bad(BASE_HEAD "human: {include: yes}\n", EMPQ_ESPEC, "t.yaml:10: key 'human.include' must be true or false, got 'yes'");
    bad(BASE_HEAD "human: true\n", EMPQ_ESPEC, "key 'human' must be a mapping, got 'true'");
    bad("name: [a]\n", EMPQ_ESPEC, "t.yaml:1: key 'name' must be a string, got a list");
    bad("- a\n- b\n", EMPQ_ESPEC, "t.yaml:1: the spec must be a mapping");
    bad("just text\n", EMPQ_ESPEC, "the spec must be a mapping of keys");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels: {a: 1}\n", EMPQ_ESPEC,
        "t.yaml:4: key 'models' must be a list, got a mapping");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - gpt-4\n", EMPQ_ESPEC,
        "t.yaml:5: key 'models[0]' must be a mapping, got 'gpt-4'");
    bad(BASE_HEAD "    provider: gpt\n", EMPQ_ESPEC, "appears twice");
    bad("name: t\ndataset: {format: csv}\n", EMPQ_ESPEC,
        "t.yaml:2: key 'dataset.format' must be one of synth, jsonl, welivita-pu, empatheticdialogues, got 'csv'");
}

static void test_ranges(void)
{
    bad(BASE_HEAD "    params: {temperature: 2.5}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[0].params.temperature' must be between 0 and 2, got '2.5'");
    bad(BASE_HEAD "    params: {temperature: -0.1}\n", EMPQ_ESPEC, "must be between 0 and 2");
    bad(BASE_HEAD "  - {alias: c, provider: anthropic, base_url: u, model: m, params: {temperature: 1.5}}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[1].params.temperature' must be between 0 and 1, got '1.5'");
    bad(BASE_HEAD "    params: {top_p: 1.01}\n", EMPQ_ESPEC, "key 'models[0].params.top_p' must be between 0 and 1");
    bad(BASE_HEAD "    params: {max_tokens: 0}\n", EMPQ_ESPEC, "key 'models[0].params.max_tokens' must be an integer >= 1, got '0'");
    bad(BASE_HEAD "    samples: 0\n", EMPQ_ESPEC, "t.yaml:10: key 'models[0].samples' must be an integer >= 1, got '0'");
    bad(BASE_HEAD "    max_attempts: 0\n", EMPQ_ESPEC, "key 'models[0].max_attempts' must be an integer >= 1");
    bad(BASE_HEAD "    timeout_ms: 0\n", EMPQ_ESPEC, "key 'models[0].timeout_ms' must be an integer >= 1");
    bad(BASE_HEAD "    limits: {max_concurrency: 0}\n", EMPQ_ESPEC, "key 'models[0].limits.max_concurrency' must be an integer >= 1");
    bad(BASE_HEAD "    prices: {max_cost: -1}\n", EMPQ_ESPEC, "key 'models[0].prices.max_cost' must be >= 0, got '-1'");
    bad("name: t\ndataset: {format: synth, prompts: 0}\n", EMPQ_ESPEC, "key 'dataset.prompts' must be an integer >= 1");
}

/* The job count (prompts x sources x the largest samples) is bounded by
 * EMPQ_SPEC_MAX_JOBS in 64-bit arithmetic: the spec check names the samples
 * key and where the prompts come from, with their lines. */
static void test_job_count(void)
{
    /* the issue's case: 10 prompts x 2 sources x 10^9 samples = 2 x 10^10 */
    bad(BASE_HEAD "    samples: 1000000000\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[0].samples': 10 prompts (dataset.prompts, line 2) x 2 sources x 1000000000 "
        "samples = 20000000000 jobs, more than a run can hold (4294967294");
    /* selection.prompts fixes the prompts; the largest samples is of models[1] */
    bad("name: t\n"
        "dataset: {format: welivita-pu, path: /x.csv}\n"
        "selection:\n"
        "  prompts: 5000\n"
        "template: {user: \"{prompt}\"}\n"
        "models:\n"
        "  - {alias: a, provider: openai, base_url: u, model: m, samples: 2}\n"
        "  - {alias: b, provider: openai, base_url: u, model: m,\n"
        "     samples: 300000}\n",
        EMPQ_ESPEC,
        "t.yaml:9: key 'models[1].samples': 5000 prompts (selection.prompts, line 4) x 3 sources x 300000 "
        "samples = 4500000000 jobs");
    /* the largest uint32 everywhere: the product needs more than 64 bits */
    bad("name: t\n"
        "dataset: {format: synth, prompts: 4294967295}\n"
        "template: {user: \"{prompt}\"}\n"
        "models:\n"
        "  - {alias: a, provider: openai, base_url: u, model: m, samples: 4294967295}\n",
        EMPQ_ESPEC, "t.yaml:5: key 'models[0].samples': 4294967295 prompts (dataset.prompts, line 2) x 2 sources");
    /* at the bound exactly it passes: 1 prompt x 2 sources x 2147483647 */
    Empq__RunSpec *rs = good("name: t\n"
                             "dataset: {format: synth, prompts: 1}\n"
                             "template: {user: \"{prompt}\"}\n"
                             "models:\n"
                             "  - {alias: a, provider: openai, base_url: u, model: m, samples: 2147483647}\n",
                             NULL);
    empq_error err = {0};
    CHECK_INT(empq_spec_check_jobs(rs, 1, "t.yaml", &err), EMPQ_OK);
    /* the prompts the dataset gives, known after selection: 3 of them */
    CHECK_INT(empq_spec_check_jobs(rs, 3, "t.yaml", &err), EMPQ_ESPEC);
    CHECK_CONTAINS(err.msg, "t.yaml:5: key 'models[0].samples': 3 prompts (selected from the dataset) x 2 sources x "
                            "2147483647 samples = 12884901882 jobs, more than a run can hold (4294967294");
    CHECK_INT(empq_spec_check_jobs(NULL, 3, "t.yaml", &err), EMPQ_EINVAL);
    empq__run_spec__free_unpacked(rs, NULL);
    /* every source with 1 sample: the 'models' key is named */
    rs = good(BASE_HEAD, NULL);
    CHECK_INT(empq_spec_check_jobs(rs, 4294967294ull, "t.yaml", &err), EMPQ_ESPEC);
    CHECK_CONTAINS(err.msg, "t.yaml:6: key 'models': 4294967294 prompts (selected from the dataset) x 2 sources x 1 "
                            "samples = 8589934588 jobs");
    CHECK_INT(empq_spec_check_jobs(rs, 2147483647, "t.yaml", &err), EMPQ_OK);
    empq__run_spec__free_unpacked(rs, NULL);
}

static void test_required(void)
{
    bad("dataset: {format: synth}\n", EMPQ_ESPEC, "t.yaml:1: key 'name' is required");
    bad("name: ''\n", EMPQ_ESPEC, "t.yaml:1: key 'name' must not be empty");
    bad("name:\n", EMPQ_ESPEC, "t.yaml:1: key 'name' is required");
    bad("name: t\n", EMPQ_ESPEC, "t.yaml:1: key 'dataset' is required");
    bad("name: t\ndataset: {path: x}\n", EMPQ_ESPEC, "t.yaml:2: key 'dataset.format' is required");
    bad("name: t\ndataset:\n  format: jsonl\n", EMPQ_ESPEC, "t.yaml:3: key 'dataset.path' is required");
    bad("name: t\ndataset: {format: synth}\n", EMPQ_ESPEC, "t.yaml:1: key 'template' is required");
    bad("name: t\ndataset: {format: synth}\ntemplate:\n  system: x\n", EMPQ_ESPEC, "t.yaml:4: key 'template.user' is required");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\n", EMPQ_ESPEC, "t.yaml:1: key 'models' is required");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels: []\n", EMPQ_ESPEC,
        "t.yaml:4: key 'models' must list at least one model");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - alias: a\n    provider: openai\n    model: m\n",
        EMPQ_ESPEC, "t.yaml:5: key 'models[0].base_url' is required");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - {provider: openai, base_url: u, model: m}\n",
        EMPQ_ESPEC, "t.yaml:5: key 'models[0].alias' is required");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - {alias: a, base_url: u, model: m}\n",
        EMPQ_ESPEC, "key 'models[0].provider' is required");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - {alias: a, provider: openai, base_url: u}\n",
        EMPQ_ESPEC, "key 'models[0].model' is required");
}

static void test_semantic(void)
{
    /* aliases */
    bad(BASE_HEAD "  - {alias: a, provider: gemini, base_url: u, model: g}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[1].alias': 'a' is already the alias of models[0]");
    bad(BASE_HEAD "  - {alias: human, provider: gemini, base_url: u, model: g}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[1].alias': 'human' is the human source's alias");
    bad(BASE_HEAD "human: {alias: a}\n", EMPQ_ESPEC, "t.yaml:6: key 'models[0].alias': 'a' is the human source's alias");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - {alias: gpt 4, provider: openai, base_url: u, model: m}\n",
        EMPQ_ESPEC, "t.yaml:5: key 'models[0].alias' must be letters, digits, '.', '_' or '-', got 'gpt 4'");
    bad(BASE_HEAD "human: {alias: 'the humans'}\n", EMPQ_ESPEC, "key 'human.alias' must be letters, digits");
    bad(BASE_HEAD "  - {alias: b, provider: human, base_url: u, model: g}\n", EMPQ_ESPEC,
        "key 'models[1].provider' must be one of openai, openai-compatible, azure-openai, gemini, anthropic, got 'human'");

    /* keys */
    bad(BASE_HEAD "    api_key_env: sk-proj-abc123\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[0].api_key_env' must be the name of an environment variable");
    bad(BASE_HEAD "    api_key_env: K\n    api_key_file: /k\n", EMPQ_ESPEC, "t.yaml:11: key 'models[0].api_key_file': give api_key_env or api_key_file, not both");

    /* templates */
    bad("name: t\ndataset: {format: synth}\ntemplate:\n  user: 'Feeling {emotions}'\n", EMPQ_ESPEC,
        "t.yaml:4: key 'template.user': unknown placeholder '{emotions}' at character 9");
    bad("name: t\ndataset: {format: synth}\ntemplate:\n  system: 'a { b'\n  user: x\n", EMPQ_ESPEC,
        "t.yaml:4: key 'template.system': unmatched '{' at character 3");

    /* dataset */
    bad("name: t\ndataset:\n  format: synth\n  path: x.csv\n", EMPQ_ESPEC,
        "t.yaml:4: key 'dataset.path' is not used with format synth");
    bad("name: t\ndataset:\n  format: jsonl\n  path: x\n  seed: 3\n", EMPQ_ESPEC,
        "t.yaml:5: key 'dataset.seed' is used with format synth only");
    unsetenv("EMPQ_TEST_SPEC_UNSET");
    bad("name: t\ndataset:\n  format: jsonl\n  path: ${EMPQ_TEST_SPEC_UNSET}/x.csv\n", EMPQ_ESPEC,
        "t.yaml:4: key 'dataset.path': environment variable 'EMPQ_TEST_SPEC_UNSET' is not set");
    bad("name: t\ndataset:\n  format: jsonl\n  path: ${EMPQ_DATA/x.csv\n", EMPQ_ESPEC,
        "t.yaml:4: key 'dataset.path': '${' at character 1 is not closed by '}'");
    bad(BASE_HEAD "    base_url: ${1URL}/v1\n", EMPQ_ESPEC, "appears twice");
    bad("name: t\ndataset: {format: synth}\ntemplate: {user: x}\nmodels:\n  - alias: a\n    provider: openai\n"
        "    base_url: ${1URL}/v1\n    model: m\n",
        EMPQ_ESPEC, "t.yaml:7: key 'models[0].base_url': '${1URL}' at character 1 is not a variable name");
}

static void test_yaml_errors(void)
{
    bad("name: t\ndataset: {format: synth\ntemplate: x\n", EMPQ_EPARSE, "t.yaml:3: YAML syntax error");
    bad("name: t\n  bad: indent\n", EMPQ_EPARSE, "t.yaml:2: YAML syntax error: mapping values are not allowed");
    bad("name: t\n\tdataset: x\n", EMPQ_EPARSE, "t.yaml:2: YAML syntax error");
    bad("name: \"unterminated\n", EMPQ_EPARSE, "YAML syntax error");
    bad("name: *nowhere\n", EMPQ_EPARSE, "YAML syntax error");
    bad("name: t\nx: \xff\n", EMPQ_EPARSE, "t.yaml:2: YAML syntax error: invalid leading UTF-8 octet");
    bad("", EMPQ_ESPEC, "t.yaml:1: the spec is empty");
    bad("# only a comment\n", EMPQ_ESPEC, "the spec is empty");
    bad(BASE_HEAD "---\nname: second\n", EMPQ_ESPEC, "t.yaml:10: a second YAML document");

    /* origin defaults; NULL arguments */
    Empq__RunSpec *rs = (Empq__RunSpec *)1;
    empq_error err = {0};
    CHECK_INT(empq_spec_parse("name: [", 7, NULL, NULL, &rs, &err), EMPQ_EPARSE);
    CHECK(rs == NULL);
    CHECK_CONTAINS(err.msg, "<spec>:");
    CHECK_CONTAINS(err.msg, "YAML syntax error: did not find expected node content");
    CHECK_INT(empq_spec_parse(NULL, 0, NULL, NULL, &rs, &err), EMPQ_EINVAL);
    CHECK_INT(empq_spec_parse("x", 1, NULL, NULL, NULL, &err), EMPQ_EINVAL);
    CHECK_INT(empq_spec_load("/nonexistent/spec.yaml", &rs, &err), EMPQ_ENOTFOUND);
    CHECK(rs == NULL);
    CHECK_CONTAINS(err.msg, "/nonexistent/spec.yaml");
    /* a length shorter than the text: only len bytes are read */
    const char *two = BASE_HEAD "nmae: x\n";
    rs = NULL;
    CHECK_INT(empq_spec_parse(two, strlen(BASE_HEAD), "t.yaml", NULL, &rs, &err), EMPQ_OK);
    CHECK_STR(rs->spec_yaml, BASE_HEAD);
    empq__run_spec__free_unpacked(rs, NULL);

    const char *src = source_dir();
    if (src != NULL) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/data/spec_bad_nested.yaml", src);
        CHECK_INT(empq_spec_load(path, &rs, &err), EMPQ_ESPEC);
        CHECK(rs == NULL);
        char want[1100];
        snprintf(want, sizeof want, "%s:11: key 'models[0].params.temprature' is not a known key", path);
        CHECK_CONTAINS(err.msg, want);
    }
}

/* ==================== ${VAR} ==================== */

static void expands(const char *in, const char *want)
{
    char *out = NULL;
    empq_error err = {0};
    int rc = empq_expand_env(in, &out, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "expand '%s': %s\n", in, err.msg);
    CHECK_INT(rc, EMPQ_OK);
    CHECK_STR(out, want);
    free(out);
}

static void test_expand_env(void)
{
    setenv("EMPQ_TEST_A", "http://127.0.0.1:8900", 1);
    setenv("EMPQ_TEST_EMPTY", "", 1);
    unsetenv("EMPQ_TEST_MISSING");
    expands("${EMPQ_TEST_A}/v1", "http://127.0.0.1:8900/v1");
    expands("x${EMPQ_TEST_A}${EMPQ_TEST_A}y", "xhttp://127.0.0.1:8900http://127.0.0.1:8900y");
    expands("${EMPQ_TEST_EMPTY}", "");
    expands("", "");
    expands("no vars", "no vars");
    expands("$$", "$");
    expands("$${EMPQ_TEST_A}", "${EMPQ_TEST_A}");
    expands("cost $5 and $", "cost $5 and $");
    expands("$$$$", "$$");

    char *out = (char *)"x";
    empq_error err = {0};
    CHECK_INT(empq_expand_env("a/${EMPQ_TEST_MISSING}/b", &out, &err), EMPQ_ENOTFOUND);
    CHECK(out == NULL);
    CHECK_CONTAINS(err.msg, "environment variable 'EMPQ_TEST_MISSING' is not set");
    CHECK_INT(empq_expand_env("ab${EMPQ_TEST_A", &out, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "'${' at character 3 is not closed by '}'");
    CHECK_INT(empq_expand_env("${}", &out, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "'${}' at character 1 is not a variable name");
    CHECK_INT(empq_expand_env("${A-B}", &out, &err), EMPQ_EPARSE);
    CHECK_INT(empq_expand_env(NULL, &out, &err), EMPQ_EINVAL);
}

/* ==================== studies/ ==================== */

static void test_studies(void)
{
    const char *src = source_dir();
    if (src == NULL) {
        fprintf(stderr, "   (EMPQ_SOURCE_DIR unset: studies/ not checked)\n");
        return;
    }
    setenv("EMPQ_DATA", "/data/empq", 1);
    setenv("EMPQ_FAKELLM_URL", "http://127.0.0.1:8900", 1);
    setenv("VLLM_LLAMA_URL", "http://gpu1:8000", 1);
    setenv("VLLM_MIXTRAL_URL", "http://gpu2:8000", 1);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/studies", src);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0, seen_demo = 0, seen_4llm = 0, seen_seed = 0;
    struct dirent *e;
    for (e = readdir(d); e != NULL; e = readdir(d)) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".yaml") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        Empq__RunSpec *rs = NULL;
        empq_error err = {0};
        int rc = empq_spec_load(path, &rs, &err);
        if (rc != EMPQ_OK)
            fprintf(stderr, "%s\n", err.msg);
        CHECK_INT(rc, EMPQ_OK);
        fprintf(stderr, "   %s: %s, %zu sources\n", e->d_name, rs->name, rs->n_models);
        n++;
        if (strcmp(e->d_name, "demo.yaml") == 0) {
            seen_demo = 1;
            CHECK_STR(rs->dataset_format, "synth");
            CHECK(rs->synth_prompts == 2000 && rs->synth_seed == 7);
            CHECK(rs->selection_count == 2000 && rs->selection_seed == 42);
            CHECK_STR(rs->selection_balance, "emotion");
            CHECK(rs->template_system != NULL);
            CHECK_CONTAINS(rs->template_user, "{situation}");
            CHECK_CONTAINS(rs->template_user, "{prompt}");
            CHECK_INT(rs->n_models, 5);
            CHECK_STR(rs->models[0]->provider, "human");
            const char *names[] = {"fake-warm", "fake-formal", "fake-brief", "fake-curious"};
            for (int i = 0; i < 4; i++) {
                const Empq__ModelSpec *m = rs->models[i + 1];
                CHECK_STR(m->alias, names[i]);
                CHECK_STR(m->model, names[i]);
                CHECK_STR(m->provider, "openai-compatible");
                CHECK_STR(m->base_url, "${EMPQ_FAKELLM_URL}/v1");
                CHECK(m->api_key_env == NULL && m->api_key_file == NULL);
                CHECK(m->params->has_temperature && m->params->temperature == 0.7);
                CHECK(m->params->has_max_tokens && m->params->max_tokens == 256);
            }
        } else if (strcmp(e->d_name, "empathy-4llm.yaml") == 0) {
            seen_4llm = 1;
            CHECK_STR(rs->dataset_format, "welivita-pu");
            CHECK_STR(rs->dataset_path, "/data/empq/welivita-pu-2024/dataset_and_ratings.csv");
            CHECK_INT(rs->selection_count, 2000);
            CHECK_INT(rs->n_models, 5);
            CHECK_INT(empq_spec_model_index(rs, "gpt-4"), 1);
            CHECK_INT(empq_spec_model_index(rs, "llama-2-70b-chat"), 2);
            CHECK_INT(empq_spec_model_index(rs, "mixtral-8x7b"), 3);
            CHECK_INT(empq_spec_model_index(rs, "gemini-pro"), 4);
            CHECK_STR(rs->models[1]->api_key_env, "OPENAI_API_KEY");
            CHECK_STR(rs->models[2]->base_url, "${VLLM_LLAMA_URL}/v1");
            CHECK_STR(rs->models[2]->model, "meta-llama/Llama-2-70b-chat-hf");
            CHECK_STR(rs->models[3]->model, "mistralai/Mixtral-8x7B-Instruct-v0.1");
            CHECK_STR(rs->models[4]->provider, "gemini");
            CHECK_STR(rs->models[4]->api_key_env, "GEMINI_API_KEY");
        } else if (strcmp(e->d_name, "welivita-pu-2024.yaml") == 0) {
            seen_seed = 1;
            CHECK_INT(rs->n_models, 2);
            CHECK_STR(rs->models[0]->alias, "human");
            CHECK_STR(rs->models[1]->alias, "gpt-4");
        }
        empq__run_spec__free_unpacked(rs, NULL);
    }
    closedir(d);
    CHECK(seen_demo && seen_4llm && seen_seed);
    CHECK(n >= 3);

    /* without its variables a study names the one missing */
    unsetenv("EMPQ_DATA");
    char path[2048];
    snprintf(path, sizeof path, "%s/empathy-4llm.yaml", dir);
    Empq__RunSpec *rs = NULL;
    empq_error err = {0};
    CHECK_INT(empq_spec_load(path, &rs, &err), EMPQ_ESPEC);
    CHECK_CONTAINS(err.msg, "key 'dataset.path': environment variable 'EMPQ_DATA' is not set");
}

/* ==================== rating: consent, duration, questions ==================== */

static void test_rating_section(void)
{
    Empq__RunSpec *rs = good(BASE_HEAD, NULL);
    CHECK(rs->rating == NULL);
    empq__run_spec__free_unpacked(rs, NULL);
    rs = good(BASE_HEAD
              "rating:\n"                                            /* 10 */
              "  consent: |\n"                                       /* 11 */
              "    You will rate dialogues.\n"                       /* 12 */
              "\n"                                                   /* 13 */
              "    You may stop at any time.\n"                      /* 14 */
              "  duration_minutes: 15\n"                             /* 15 */
              "  questions:\n"                                       /* 16 */
              "    - id: age\n"                                      /* 17 */
              "      text: Your age group?\n"                        /* 18 */
              "      type: choice\n"                                 /* 19 */
              "      choices: [18-29, 30-49, 50+, Prefer not to say]\n" /* 20 */
              "      required: true\n"                               /* 21 */
              "    - id: comments\n"                                 /* 22 */
              "      text: Anything to tell us?\n",                  /* 23 */
              NULL);
    CHECK(rs->rating != NULL);
    CHECK_STR(rs->rating->consent, "You will rate dialogues.\n\nYou may stop at any time.\n");
    CHECK_INT(rs->rating->duration_minutes, 15);
    CHECK_INT(rs->rating->n_questions, 2);
    CHECK_STR(rs->rating->questions[0]->id, "age");
    CHECK_STR(rs->rating->questions[0]->type, "choice");
    CHECK_INT(rs->rating->questions[0]->n_choices, 4);
    CHECK_STR(rs->rating->questions[0]->choices[3], "Prefer not to say");
    CHECK(rs->rating->questions[0]->required);
    CHECK_STR(rs->rating->questions[1]->type, "text");
    CHECK_INT(rs->rating->questions[1]->max_length, 500);
    CHECK(!rs->rating->questions[1]->required);
    empq__run_spec__free_unpacked(rs, NULL);

    bad(BASE_HEAD "rating:\n  consnet: x\n", EMPQ_ESPEC, "t.yaml:11: key 'rating.consnet' is not a known key");
    bad(BASE_HEAD "rating:\n  consent: \"\"\n", EMPQ_ESPEC, "t.yaml:11: key 'rating.consent' must not be empty");
    bad(BASE_HEAD "rating:\n  duration_minutes: 0\n", EMPQ_ESPEC, "t.yaml:11: key 'rating.duration_minutes'");
    bad(BASE_HEAD "rating:\n  duration_minutes: 601\n", EMPQ_ESPEC, "t.yaml:11: key 'rating.duration_minutes'");
    bad(BASE_HEAD "rating:\n  questions: x\n", EMPQ_ESPEC, "t.yaml:11: key 'rating.questions' must be a list");
    bad(BASE_HEAD "rating:\n  questions:\n    - id: Age\n      text: t\n", EMPQ_ESPEC,
        "t.yaml:12: key 'rating.questions[0].id' must be 1-32 of a-z 0-9 _");
    bad(BASE_HEAD "rating:\n  questions:\n    - id: a\n", EMPQ_ESPEC,
        "t.yaml:12: key 'rating.questions[0].text' is required");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t, type: scale}\n", EMPQ_ESPEC,
        "t.yaml:12: key 'rating.questions[0].type' must be one of text, choice");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t, type: choice}\n", EMPQ_ESPEC,
        "key 'rating.questions[0].choices' is required with type choice");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t, type: choice, choices: [x]}\n", EMPQ_ESPEC,
        "t.yaml:12: key 'rating.questions[0].choices' must list 2 to 20 choices");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t, type: choice, choices: [x, x]}\n", EMPQ_ESPEC,
        "key 'rating.questions[0].choices[1]': 'x' is listed twice");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t, choices: [x, y]}\n", EMPQ_ESPEC,
        "key 'rating.questions[0].choices' is used with type choice only");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t, max_length: 2001}\n", EMPQ_ESPEC,
        "key 'rating.questions[0].max_length' must be an integer from 1 to 2000");
    bad(BASE_HEAD "rating:\n  questions:\n    - {id: a, text: t}\n    - {id: a, text: u}\n", EMPQ_ESPEC,
        "t.yaml:13: key 'rating.questions[1].id': 'a' is already the id of rating.questions[0]");
}

/* ==================== generation parameters per provider ==================== */

/* A spec of one model of provider prov (line 7) with params (line 10 on)
 * and model-level keys after them. */
static char *one_model(const char *prov, const char *params, const char *more)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "name: t\n"                               /* 1 */
             "dataset: {format: synth, prompts: 10}\n" /* 2 */
             "template:\n"                             /* 3 */
             "  user: \"{prompt}\"\n"                  /* 4 */
             "models:\n"                               /* 5 */
             "  - alias: a\n"                          /* 6 */
             "    provider: %s\n"                      /* 7 */
             "    base_url: http://127.0.0.1:1/v1\n"   /* 8 */
             "    model: m\n"                          /* 9 */
             "    params:\n"                           /* 10 */
             "%s%s",
             prov, params, more != NULL ? more : "");
    return buf;
}

static const Empq__ModelSpec *model_a(const Empq__RunSpec *rs)
{
    int i = empq_spec_model_index(rs, "a");
    CHECK(i >= 0);
    return rs->models[i];
}

static void test_openai_reasoning_params(void)
{
    const char *prov[] = {"openai", "azure-openai", "openai-compatible"};
    for (size_t i = 0; i < 3; i++) {
        Empq__RunSpec *rs = good(one_model(prov[i],
                                           "      max_completion_tokens: 4096\n"
                                           "      reasoning_effort: high\n"
                                           "      system_role: developer\n",
                                           NULL),
                                 NULL);
        const Empq__GenParams *p = model_a(rs)->params;
        CHECK(p->has_max_completion_tokens && p->max_completion_tokens == 4096);
        CHECK_STR(p->reasoning_effort, "high");
        CHECK_STR(p->system_role, "developer");
        CHECK(!p->has_max_tokens);
        empq__run_spec__free_unpacked(rs, NULL);
    }
    /* OpenAI's enum has minimal and xhigh; vLLM's protocol low..high */
    Empq__RunSpec *rs = good(one_model("openai", "      reasoning_effort: minimal\n", NULL), NULL);
    empq__run_spec__free_unpacked(rs, NULL);
    bad(one_model("openai-compatible", "      reasoning_effort: minimal\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.reasoning_effort' must be one of low, medium, high, got 'minimal'");
    bad(one_model("openai", "      reasoning_effort: extreme\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.reasoning_effort' must be one of none, minimal, low, medium, high");
    bad(one_model("openai", "      system_role: assistant\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.system_role' must be one of system, developer");
    bad(one_model("openai", "      max_tokens: 10\n      max_completion_tokens: 100\n", NULL), EMPQ_ESPEC,
        "t.yaml:12: key 'models[0].params.max_completion_tokens': give max_completion_tokens or the deprecated "
        "max_tokens, not both");
    bad(one_model("azure-openai", "      max_tokens: 100\n      reasoning_effort: low\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.max_tokens': provider azure-openai: reasoning models (reasoning_effort is "
        "set) take max_completion_tokens, not max_tokens");
    rs = good(one_model("openai-compatible", "      max_tokens: 100\n      reasoning_effort: low\n", NULL), NULL);
    empq__run_spec__free_unpacked(rs, NULL);
    bad(one_model("openai", "      max_completion_tokens: 0\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.max_completion_tokens' must be an integer >= 1");
}

static void test_stop_limits(void)
{
    /* OpenAI and Azure: at most 4; Gemini: at most 5; vLLM and Anthropic: no documented limit */
    const char *five = "      stop: [a, b, c, d, e]\n";
    bad(one_model("openai", five, NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.stop': provider openai takes at most 4 stop sequences, got 5");
    bad(one_model("azure-openai", five, NULL), EMPQ_ESPEC, "provider azure-openai takes at most 4 stop sequences");
    Empq__RunSpec *rs = good(one_model("gemini", five, NULL), NULL);
    CHECK_INT(model_a(rs)->params->n_stop, 5);
    empq__run_spec__free_unpacked(rs, NULL);
    bad(one_model("gemini", "      stop: [a, b, c, d, e, f]\n", NULL), EMPQ_ESPEC,
        "provider gemini takes at most 5 stop sequences, got 6");
    rs = good(one_model("openai-compatible", "      stop: [a, b, c, d, e, f]\n", NULL), NULL);
    empq__run_spec__free_unpacked(rs, NULL);
    rs = good(one_model("openai", "      stop: [a, b, c, d]\n", NULL), NULL);
    CHECK_INT(model_a(rs)->params->n_stop, 4);
    empq__run_spec__free_unpacked(rs, NULL);
}

static void test_parameter_not_taken(void)
{
    /* each provider refuses what it does not take, naming key, line and provider */
    bad(one_model("anthropic", "      max_tokens: 100\n      seed: 1\n", NULL), EMPQ_ESPEC,
        "t.yaml:12: key 'models[0].params.seed': provider anthropic does not take this parameter (it takes: "
        "temperature, top_p, max_tokens, stop, thinking");
    bad(one_model("anthropic", "      reasoning_effort: low\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.reasoning_effort': provider anthropic does not take this parameter");
    bad(one_model("gemini", "      max_completion_tokens: 10\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.max_completion_tokens': provider gemini does not take this parameter");
    bad(one_model("gemini", "      system_role: developer\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.system_role': provider gemini does not take this parameter");
    bad(one_model("openai", "      thinking: {type: enabled, budget_tokens: 2048}\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.thinking': provider openai does not take this parameter");
    bad(one_model("openai-compatible", "      thinkingConfig: {thinkingBudget: 10}\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.thinkingConfig': provider openai-compatible does not take this parameter");
    bad(one_model("anthropic", "      safetySettings: []\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.safetySettings': provider anthropic does not take this parameter");
    /* a key no provider knows stays an unknown key */
    bad(one_model("openai", "      max_output_tokens: 10\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.max_output_tokens' is not a known key");
}

static void test_anthropic_thinking(void)
{
    Empq__RunSpec *rs = good(one_model("anthropic",
                                       "      max_tokens: 3000\n"
                                       "      thinking: {type: enabled, budget_tokens: 2048}\n",
                                       "    keep_thinking: true\n"),
                             NULL);
    const Empq__ModelSpec *m = model_a(rs);
    CHECK(m->params->has_thinking_budget && m->params->thinking_budget == 2048);
    CHECK(m->has_keep_thinking && m->keep_thinking);
    empq__run_spec__free_unpacked(rs, NULL);
    rs = good(one_model("anthropic", "      thinking: {type: disabled}\n", NULL), NULL);
    CHECK(!model_a(rs)->params->has_thinking_budget);
    empq__run_spec__free_unpacked(rs, NULL);
    bad(one_model("anthropic", "      max_tokens: 3000\n      thinking: {type: enabled, budget_tokens: 512}\n", NULL),
        EMPQ_ESPEC, "t.yaml:12: key 'models[0].params.thinking.budget_tokens' must be an integer >= 1024, got '512'");
    bad(one_model("anthropic", "      thinking: {type: enabled, budget_tokens: 2048}\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.thinking.budget_tokens' (2048) must be below params.max_tokens (default 1024)");
    bad(one_model("anthropic", "      max_tokens: 2048\n      thinking: {type: enabled, budget_tokens: 2048}\n", NULL),
        EMPQ_ESPEC, "must be below params.max_tokens (2048)");
    bad(one_model("anthropic", "      max_tokens: 4000\n      temperature: 0.5\n"
                               "      thinking: {type: enabled, budget_tokens: 2048}\n", NULL),
        EMPQ_ESPEC, "t.yaml:12: key 'models[0].params': provider anthropic takes no temperature with thinking enabled");
    bad(one_model("anthropic", "      max_tokens: 4000\n      top_p: 0.5\n"
                               "      thinking: {type: enabled, budget_tokens: 2048}\n", NULL),
        EMPQ_ESPEC, "top_p from 0.95 to 1 with thinking enabled");
    bad(one_model("anthropic", "      thinking: {type: enabled}\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.thinking.budget_tokens' is required when thinking is enabled");
    bad(one_model("anthropic", "      thinking: {type: on, budget_tokens: 2048}\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.thinking.type' must be one of enabled, disabled, got 'on'");
    bad(one_model("anthropic", "      thinking: {type: enabled, budget: 2048}\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.thinking.budget' is not a known key");
}

static void test_gemini_thinking_safety(void)
{
    Empq__RunSpec *rs = good(one_model("gemini",
                                       "      thinkingConfig: {thinkingBudget: -1, includeThoughts: true}\n"
                                       "      safetySettings:\n"
                                       "        - {category: HARM_CATEGORY_DANGEROUS_CONTENT, threshold: BLOCK_NONE}\n"
                                       "        - {category: HARM_CATEGORY_HARASSMENT, threshold: OFF}\n",
                                       NULL),
                             NULL);
    const Empq__GenParams *p = model_a(rs)->params;
    CHECK(p->has_thinking_budget && p->thinking_budget == -1);
    CHECK(p->has_include_thoughts && p->include_thoughts);
    CHECK_INT(p->n_safety_settings, 2);
    CHECK_STR(p->safety_settings[0]->category, "HARM_CATEGORY_DANGEROUS_CONTENT");
    CHECK_STR(p->safety_settings[0]->threshold, "BLOCK_NONE");
    CHECK_STR(p->safety_settings[1]->threshold, "OFF");
    empq__run_spec__free_unpacked(rs, NULL);
    bad(one_model("gemini", "      thinkingConfig: {thinkingBudget: -2}\n", NULL), EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].params.thinkingConfig.thinkingBudget' must be an integer >= -1");
    bad(one_model("gemini", "      thinkingConfig: {includeThoughts: yes}\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.thinkingConfig.includeThoughts' must be true or false");
    bad(one_model("gemini", "      safetySettings:\n        - {category: HARM_CATEGORY_SELF_HARM, threshold: OFF}\n",
                  NULL),
        EMPQ_ESPEC, "t.yaml:12: key 'models[0].params.safetySettings[0].category' must be one of HARM_CATEGORY_HARASSMENT");
    bad(one_model("gemini",
                  "      safetySettings:\n        - {category: HARM_CATEGORY_HARASSMENT, threshold: BLOCK_SOME}\n",
                  NULL),
        EMPQ_ESPEC, "key 'models[0].params.safetySettings[0].threshold' must be one of HARM_BLOCK_THRESHOLD_UNSPECIFIED");
    bad(one_model("gemini",
                  "      safetySettings:\n"
                  "        - {category: HARM_CATEGORY_HARASSMENT, threshold: OFF}\n"
                  "        - {category: HARM_CATEGORY_HARASSMENT, threshold: BLOCK_NONE}\n",
                  NULL),
        EMPQ_ESPEC, "t.yaml:13: key 'models[0].params.safetySettings[1].category': HARM_CATEGORY_HARASSMENT is already set");
    bad(one_model("gemini", "      safetySettings: {category: HARM_CATEGORY_HARASSMENT}\n", NULL), EMPQ_ESPEC,
        "key 'models[0].params.safetySettings' must be a list of {category, threshold}");
}

static void test_extra_body(void)
{
    Empq__RunSpec *rs = good(one_model("openai-compatible", "      temperature: 0.5\n",
                                       "    extra_body:\n"
                                       "      top_k: 40\n"
                                       "      repetition_penalty: 1.05\n"
                                       "      chat_template_kwargs: {enable_thinking: false}\n"
                                       "      guided_choice: [\"yes\", 'no']\n"
                                       "      note: '12'\n"),
                             NULL);
    CHECK_STR(model_a(rs)->extra_body, "{\"chat_template_kwargs\":{\"enable_thinking\":false},"
                                       "\"guided_choice\":[\"yes\",\"no\"],\"note\":\"12\","
                                       "\"repetition_penalty\":1.05,\"top_k\":40}");
    empq__run_spec__free_unpacked(rs, NULL);
    /* Gemini: a generationConfig field empq does not set merges in */
    rs = good(one_model("gemini", "      temperature: 0.5\n",
                        "    extra_body: {generationConfig: {responseMimeType: text/plain}}\n"),
              NULL);
    empq__run_spec__free_unpacked(rs, NULL);
    /* a field empq sets: an error naming it */
    bad(one_model("openai", "      temperature: 0.5\n", "    extra_body: {temperature: 0.9}\n"), EMPQ_ESPEC,
        "t.yaml:12: key 'models[0].extra_body.temperature': provider openai: empq sets this field");
    bad(one_model("openai", "      temperature: 0.5\n", "    extra_body: {messages: []}\n"), EMPQ_ESPEC,
        "key 'models[0].extra_body.messages': provider openai: empq sets this field");
    bad(one_model("gemini", "      temperature: 0.5\n", "    extra_body: {generationConfig: {temperature: 1}}\n"),
        EMPQ_ESPEC, "key 'models[0].extra_body.generationConfig.temperature': provider gemini: empq sets this field");
    bad(one_model("anthropic", "      temperature: 0.5\n", "    extra_body: {system: x}\n"), EMPQ_ESPEC,
        "key 'models[0].extra_body.system': provider anthropic: empq sets this field");
    bad(one_model("openai", "      temperature: 0.5\n", "    extra_body: [1, 2]\n"), EMPQ_ESPEC,
        "t.yaml:12: key 'models[0].extra_body' must be a mapping");
    bad(one_model("openai", "      temperature: 0.5\n", "    keep_thinking: maybe\n"), EMPQ_ESPEC,
        "t.yaml:12: key 'models[0].keep_thinking' must be true or false");
}

static void test_cached_price(void)
{
    Empq__RunSpec *rs = good(one_model("openai", "      temperature: 0.5\n",
                                       "    prices: {input_per_mtok: 1.25, cached_input_per_mtok: 0.125}\n"),
                             NULL);
    const Empq__ModelPrices *pr = model_a(rs)->prices;
    CHECK(pr->has_cached_input_per_mtok && pr->cached_input_per_mtok == 0.125);
    empq__run_spec__free_unpacked(rs, NULL);
    bad(one_model("openai", "      temperature: 0.5\n", "    prices: {cached_input_per_mtok: -1}\n"), EMPQ_ESPEC,
        "key 'models[0].prices.cached_input_per_mtok' must be >= 0");
}

/* mode: batch and its batch: section; batch prices. */
static void test_batch_mode(void)
{
    Empq__RunSpec *rs = good(BASE_HEAD "    mode: batch\n"
                                       "    batch: {max_requests: 500, max_bytes: 1000000, on_failure: interactive}\n"
                                       "    prices: {input_per_mtok: 2, batch_input_per_mtok: 1, batch_output_per_mtok: 4}\n",
                             NULL);
    const Empq__ModelSpec *m = rs->models[rs->n_models - 1];
    CHECK_STR(m->mode, "batch");
    CHECK(m->batch != NULL);
    CHECK_INT(m->batch->max_requests, 500);
    CHECK(m->batch->max_bytes == 1000000);
    CHECK_STR(m->batch->on_failure, "interactive");
    CHECK_STR(m->batch->completion_window, "24h");
    CHECK_INT(m->batch->poll_ms, 30000);
    CHECK(m->prices->has_batch_input_per_mtok && m->prices->batch_input_per_mtok == 1);
    CHECK(m->prices->has_batch_output_per_mtok && m->prices->batch_output_per_mtok == 4);
    empq__run_spec__free_unpacked(rs, NULL);

    /* mode batch alone: the provider's limits, on_failure batch */
    rs = good("name: t\ndataset: {format: synth, prompts: 10}\ntemplate: {user: x}\nmodels:\n"
              "  - {alias: c, provider: anthropic, base_url: u, model: m, mode: batch}\n",
              NULL);
    m = rs->models[rs->n_models - 1];
    CHECK(m->batch != NULL);
    CHECK_INT(m->batch->max_requests, 100000);
    CHECK(m->batch->max_bytes == 256ull * 1000 * 1000);
    CHECK_STR(m->batch->on_failure, "batch");
    empq__run_spec__free_unpacked(rs, NULL);

    rs = good(BASE_HEAD "    mode: interactive\n", NULL);
    CHECK_STR(rs->models[rs->n_models - 1]->mode, "interactive");
    CHECK(rs->models[rs->n_models - 1]->batch == NULL);
    empq__run_spec__free_unpacked(rs, NULL);

    bad(BASE_HEAD "    mode: bulk\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[0].mode' must be one of interactive, batch, got 'bulk'");
    bad(BASE_HEAD "    batch: {max_requests: 5}\n", EMPQ_ESPEC,
        "t.yaml:10: key 'models[0].batch' needs mode: batch in the same model");
    bad(BASE_HEAD "    mode: batch\n    batch: {max_requests: 50001}\n", EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].batch.max_requests' must be at most 50000 (the openai limit), got 50001");
    bad(BASE_HEAD "    mode: batch\n    batch: {max_requests: 0}\n", EMPQ_ESPEC,
        "key 'models[0].batch.max_requests' must be an integer >= 1");
    bad(BASE_HEAD "    mode: batch\n    batch: {max_bytes: 10}\n", EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].batch.max_bytes' must be from 1024 to 200000000");
    bad(BASE_HEAD "    mode: batch\n    batch: {completion_window: 1h}\n", EMPQ_ESPEC,
        "key 'models[0].batch.completion_window' must be one of 24h, got '1h'");
    bad(BASE_HEAD "    mode: batch\n    batch: {on_failure: retry}\n", EMPQ_ESPEC,
        "key 'models[0].batch.on_failure' must be one of batch, interactive, dead, got 'retry'");
    bad(BASE_HEAD "    mode: batch\n    batch: {size: 5}\n", EMPQ_ESPEC,
        "t.yaml:11: key 'models[0].batch.size' is not a known key");
    bad(BASE_HEAD "    mode: batch\n    prices: {batch_input_per_mtok: -1}\n", EMPQ_ESPEC,
        "key 'models[0].prices.batch_input_per_mtok' must be >= 0");
    bad("name: t\ndataset: {format: synth, prompts: 10}\ntemplate: {user: x}\nmodels:\n"
        "  - {alias: v, provider: openai-compatible, base_url: u, model: m, mode: batch}\n",
        EMPQ_ESPEC, "t.yaml:5: key 'models[0].mode': provider 'openai-compatible' has no batch API in empq");

    /* Gemini: inline requests, a create request of at most 20 MB */
    rs = good("name: t\ndataset: {format: synth, prompts: 10}\ntemplate: {user: x}\nmodels:\n"
              "  - {alias: g, provider: gemini, base_url: u, model: m, mode: batch}\n",
              NULL);
    m = rs->models[rs->n_models - 1];
    CHECK(m->batch != NULL);
    CHECK_INT(m->batch->max_requests, 100000);
    CHECK(m->batch->max_bytes == 20ull * 1000 * 1000);
    empq__run_spec__free_unpacked(rs, NULL);
    bad("name: t\ndataset: {format: synth, prompts: 10}\ntemplate: {user: x}\nmodels:\n"
        "  - {alias: g, provider: gemini, base_url: u, model: m, mode: batch, batch: {max_bytes: 20000001}}\n",
        EMPQ_ESPEC, "key 'models[0].batch.max_bytes' must be from 1024 to 20000000 (the gemini limit)");
}

int main(void)
{
    RUN(test_minimal_defaults);
    RUN(test_full_file);
    RUN(test_paths);
    RUN(test_human_and_order);
    RUN(test_unknown_keys);
    RUN(test_duplicate_keys);
    RUN(test_types);
    RUN(test_ranges);
    RUN(test_job_count);
    RUN(test_required);
    RUN(test_semantic);
    RUN(test_yaml_errors);
    RUN(test_expand_env);
    RUN(test_studies);
    RUN(test_rating_section);
    RUN(test_openai_reasoning_params);
    RUN(test_stop_limits);
    RUN(test_parameter_not_taken);
    RUN(test_anthropic_thinking);
    RUN(test_gemini_thinking_safety);
    RUN(test_extra_body);
    RUN(test_cached_price);
    RUN(test_batch_mode);
    CHECK_DONE();
}
