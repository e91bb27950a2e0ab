/* test_cachekey.c: the response cache key is stable, and changes exactly
 * when the request changes. */
#include <stdlib.h>

#include "check.h"
#include "empq/cachekey.h"
#include "empq/spec.h"

/* The fixed request of the golden value. */
static char *stop_seqs[] = {"\n\n", "END"};

static void fixture(Empq__ModelSpec *m, Empq__GenParams *p)
{
    empq__gen_params__init(p);
    p->has_temperature = 1;
    p->temperature = 0.7;
    p->has_top_p = 1;
    p->top_p = 1.0;
    p->has_max_tokens = 1;
    p->max_tokens = 256;
    p->has_seed = 1;
    p->seed = 1;
    p->n_stop = 2;
    p->stop = stop_seqs;
    empq__model_spec__init(m);
    m->alias = "gpt-4";
    m->provider = "openai";
    m->base_url = "https://api.openai.com/v1";
    m->model = "gpt-4-0613";
    m->api_key_env = "OPENAI_API_KEY";
    m->params = p;
}

static const char *SYS = "You are a caring listener.";
static const char *USR = "Situation: I lost my job.\nSpeaker: I don't know what to do.";

static void key(const Empq__ModelSpec *m, const char *sys, const char *usr, uint32_t sample,
                char out[EMPQ_CACHE_KEY_HEX])
{
    empq_error err = {0};
    int rc = empq_cachekey(m, sys, usr, sample, out, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "cachekey: %s\n", err.msg);
    CHECK_INT(rc, EMPQ_OK);
    CHECK_INT(strlen(out), 64);
    for (int i = 0; i < 64; i++)
        CHECK(strchr("0123456789abcdef", out[i]) != NULL);
}

static void test_golden(void)
{
    Empq__ModelSpec m;
    Empq__GenParams p;
    fixture(&m, &p);
    char k[EMPQ_CACHE_KEY_HEX];
    key(&m, SYS, USR, 0, k);
    /* Computed once, and reproduced independently (Python hashlib) from the
     * canonical JSON below; a change here invalidates every cache in use, so
     * it must be deliberate:
     * {"base_url":"https://api.openai.com/v1","max_tokens":256,"messages":[{"content":"You are a caring
     * listener.","role":"system"},{"content":"Situation: I lost my job.\nSpeaker: I don't know what to
     * do.","role":"user"}],"model":"gpt-4-0613","provider":"openai","sample":0,"seed":1,
     * "stop":["\n\n","END"],"temperature":0.69999999999999996,"top_p":1.0}  (one line) */
    CHECK_STR(k, "1d91e6616acb3f087f9cd7cdedefa58ac5adf8a1946e066074e1db8ac31d131d");
    Empq__ModelSpec bare = EMPQ__MODEL_SPEC__INIT;
    bare.alias = "x";
    bare.provider = "openai-compatible";
    bare.base_url = "${EMPQ_FAKELLM_URL}/v1";
    bare.model = "fake-warm";
    key(&bare, NULL, "hello", 0, k);
    /* {"base_url":"${EMPQ_FAKELLM_URL}/v1","messages":[{"content":"hello","role":"user"}],
     *  "model":"fake-warm","provider":"openai-compatible","sample":0} */
    CHECK_STR(k, "ffd1c993a23bb5188f3027a78e98c17d62f083ffe70cc6add0d0bd62e51415d7");
}

/* Each change to the request gives a different key. */
static void test_changes(void)
{
    Empq__ModelSpec m;
    Empq__GenParams p;
    fixture(&m, &p);
    char base[EMPQ_CACHE_KEY_HEX], k[EMPQ_CACHE_KEY_HEX];
    key(&m, SYS, USR, 0, base);

#define DIFFERS(stmt, undo) do { stmt; key(&m, SYS, USR, 0, k); CHECK(strcmp(k, base) != 0); undo; \
    key(&m, SYS, USR, 0, k); CHECK_STR(k, base); } while (0)
    DIFFERS(p.temperature = 0.71, p.temperature = 0.7);
    DIFFERS(p.has_temperature = 0, p.has_temperature = 1);
    DIFFERS(p.top_p = 0.9, p.top_p = 1.0);
    DIFFERS(p.has_top_p = 0, p.has_top_p = 1);
    DIFFERS(p.max_tokens = 257, p.max_tokens = 256);
    DIFFERS(p.has_max_tokens = 0, p.has_max_tokens = 1);
    DIFFERS(p.seed = 2, p.seed = 1);
    DIFFERS(p.has_seed = 0, p.has_seed = 1);
    DIFFERS(p.n_stop = 1, p.n_stop = 2);
    DIFFERS(p.n_stop = 0, p.n_stop = 2);
    DIFFERS(m.params = NULL, m.params = &p);
    DIFFERS(m.provider = "azure-openai", m.provider = "openai");
    DIFFERS(m.base_url = "https://api.openai.com/v1/", m.base_url = "https://api.openai.com/v1");
    DIFFERS(m.model = "gpt-4-0314", m.model = "gpt-4-0613");
    DIFFERS(m.api_version = "2024-02-01", m.api_version = NULL);
    /* the reasoning-era parameters and extra_body (the golden key above,
     * without them, is unchanged: old cache entries stay reachable) */
    DIFFERS((p.has_max_completion_tokens = 1, p.max_completion_tokens = 256), p.has_max_completion_tokens = 0);
    DIFFERS(p.reasoning_effort = "low", p.reasoning_effort = NULL);
    DIFFERS(p.system_role = "developer", p.system_role = NULL);
    DIFFERS((p.has_thinking_budget = 1, p.thinking_budget = 1024), p.has_thinking_budget = 0);
    DIFFERS(p.has_include_thoughts = 1, p.has_include_thoughts = 0);
    Empq__SafetySetting ss = EMPQ__SAFETY_SETTING__INIT;
    Empq__SafetySetting *ssv[] = {&ss};
    ss.category = "HARM_CATEGORY_HARASSMENT";
    ss.threshold = "OFF";
    DIFFERS((p.n_safety_settings = 1, p.safety_settings = ssv), p.n_safety_settings = 0);
    DIFFERS(m.extra_body = "{\"top_k\":40}", m.extra_body = NULL);
    char k1[EMPQ_CACHE_KEY_HEX], k2[EMPQ_CACHE_KEY_HEX];
    m.extra_body = "{\"top_k\":40}";
    key(&m, SYS, USR, 0, k1);
    m.extra_body = "{\"top_k\":41}";
    key(&m, SYS, USR, 0, k2);
    CHECK(strcmp(k1, k2) != 0);
    m.extra_body = NULL;
#undef DIFFERS

    char *swapped[] = {"END", "\n\n"};
    p.stop = swapped; /* stop order is part of the request */
    key(&m, SYS, USR, 0, k);
    CHECK(strcmp(k, base) != 0);
    p.stop = stop_seqs;

    key(&m, SYS, USR, 1, k);
    CHECK(strcmp(k, base) != 0);
    key(&m, "You are a caring listener!", USR, 0, k);
    CHECK(strcmp(k, base) != 0);
    key(&m, SYS, "Situation: I lost my job.", 0, k);
    CHECK(strcmp(k, base) != 0);
    key(&m, NULL, USR, 0, k);
    CHECK(strcmp(k, base) != 0);
    /* system and user are not interchangeable */
    char a[EMPQ_CACHE_KEY_HEX], b[EMPQ_CACHE_KEY_HEX];
    key(&m, "x", "y", 0, a);
    key(&m, "y", "x", 0, b);
    CHECK(strcmp(a, b) != 0);
}

/* What is not part of the request does not change the key. */
static void test_unchanged(void)
{
    Empq__ModelSpec m;
    Empq__GenParams p;
    fixture(&m, &p);
    char base[EMPQ_CACHE_KEY_HEX], k[EMPQ_CACHE_KEY_HEX];
    key(&m, SYS, USR, 0, base);

    /* alias (run-specific naming), key source, limits, prices, timeouts */
    Empq__ModelLimits lim = EMPQ__MODEL_LIMITS__INIT;
    lim.has_max_concurrency = 1;
    lim.max_concurrency = 3;
    Empq__ModelPrices pr = EMPQ__MODEL_PRICES__INIT;
    pr.has_max_cost = 1;
    pr.max_cost = 10;
    m.alias = "another-alias";
    m.api_key_env = NULL;
    m.api_key_file = "/run/secrets/k";
    m.limits = &lim;
    m.prices = &pr;
    m.has_samples = 1;
    m.samples = 5;
    m.has_max_attempts = 1;
    m.max_attempts = 9;
    m.has_timeout_ms = 1;
    m.timeout_ms = 1000;
    key(&m, SYS, USR, 0, k);
    CHECK_STR(k, base);

    /* an unset parameter's stale value is ignored */
    Empq__GenParams q;
    Empq__ModelSpec m2;
    fixture(&m2, &q);
    q.has_seed = 0;
    q.seed = 1;
    char a[EMPQ_CACHE_KEY_HEX], b[EMPQ_CACHE_KEY_HEX];
    key(&m2, SYS, USR, 0, a);
    q.seed = 99;
    key(&m2, SYS, USR, 0, b);
    CHECK_STR(a, b);

    /* an empty system message is no system message */
    key(&m2, NULL, USR, 0, a);
    key(&m2, "", USR, 0, b);
    CHECK_STR(a, b);
}

static Empq__RunSpec *parse(const char *yaml)
{
    Empq__RunSpec *rs = NULL;
    empq_error err = {0};
    int rc = empq_spec_parse(yaml, strlen(yaml), "inline", NULL, &rs, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "spec: %s\n", err.msg);
    CHECK_INT(rc, EMPQ_OK);
    return rs;
}

/* Two runs (different name, dataset, selection, alias, order of keys in the
 * spec) over the same requests share their cache keys. */
static void test_across_runs(void)
{
    Empq__RunSpec *r1 = parse("name: first\n"
                              "dataset: {format: synth, prompts: 10, seed: 1}\n"
                              "template: {user: '{prompt}'}\n"
                              "models:\n"
                              "  - alias: a\n"
                              "    provider: openai-compatible\n"
                              "    base_url: ${EMPQ_FAKELLM_URL}/v1\n"
                              "    model: fake-warm\n"
                              "    params: {temperature: 0.7, max_tokens: 256, stop: [x]}\n");
    Empq__RunSpec *r2 = parse("name: second\n"
                              "dataset: {format: jsonl, path: /tmp/p.jsonl}\n"
                              "selection: {prompts: 5, seed: 9, balance: none}\n"
                              "human: {include: false}\n"
                              "template: {user: '{prompt}'}\n"
                              "models:\n"
                              "  - model: fake-warm\n"
                              "    params: {stop: [x], max_tokens: 256, temperature: 0.7}\n"
                              "    base_url: ${EMPQ_FAKELLM_URL}/v1\n"
                              "    provider: openai-compatible\n"
                              "    alias: b\n"
                              "    limits: {max_concurrency: 4}\n");
    char a[EMPQ_CACHE_KEY_HEX], b[EMPQ_CACHE_KEY_HEX];
    key(r1->models[1], NULL, "hello", 0, a);
    key(r2->models[0], NULL, "hello", 0, b);
    CHECK_STR(a, b);
    empq__run_spec__free_unpacked(r1, NULL);
    empq__run_spec__free_unpacked(r2, NULL);
}

static void test_errors(void)
{
    Empq__ModelSpec m;
    Empq__GenParams p;
    fixture(&m, &p);
    char k[EMPQ_CACHE_KEY_HEX] = "x";
    empq_error err = {0};
    CHECK_INT(empq_cachekey(NULL, SYS, USR, 0, k, &err), EMPQ_EINVAL);
    CHECK_STR(k, "");
    CHECK_INT(empq_cachekey(&m, SYS, NULL, 0, k, &err), EMPQ_EINVAL);
    CHECK_INT(empq_cachekey(&m, SYS, "bad \xff utf-8", 0, k, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "user message is not valid UTF-8");
    CHECK_INT(empq_cachekey(&m, "\xc3", USR, 0, k, NULL), EMPQ_EINVAL);
    /* valid UTF-8 beyond ASCII is fine */
    CHECK_INT(empq_cachekey(&m, SYS, "J'ai perdu mon travail \xe2\x80\x94 \xf0\x9f\x98\xa2", 0, k, &err), EMPQ_OK);
}

int main(void)
{
    RUN(test_golden);
    RUN(test_changes);
    RUN(test_unchanged);
    RUN(test_across_runs);
    RUN(test_errors);
    CHECK_DONE();
}
