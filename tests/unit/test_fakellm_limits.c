/* test_fakellm_limits.c: per-model limits and the sliding-window counters,
 * on a clock the test sets: the --limit syntax, rpm/tpm/concurrency
 * enforcement with the numbers a 429 names and its Retry-After, the maxima
 * over 60 s and 1 s windows (rejected requests still count as received),
 * remaining/reset for headers, reset, the JSON, the model cap, threads. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "limits.h"

static json_t *model_json(fakellm_limits *l, const char *model)
{
    empq_buf b = {0};
    CHECK_INT(fakellm_limits_json(l, &b), EMPQ_OK);
    json_t *doc = json_loads(b.data, JSON_PRESERVE_ORDER, NULL);
    CHECK(doc != NULL);
    empq_buf_free(&b);
    json_t *m = json_incref(json_object_get(doc, model));
    json_decref(doc);
    return m;
}

static json_int_t field(json_t *m, const char *k) { return json_integer_value(json_object_get(m, k)); }

static void test_parse(void)
{
    fakellm_limit lim;
    char *model = NULL;
    empq_error err = {0};
    CHECK_INT(fakellm_limit_parse("fake-warm:rpm=600,tpm=100000,concurrency=16", &model, &lim, &err), EMPQ_OK);
    CHECK_STR(model, "fake-warm");
    CHECK_INT(lim.rpm, 600);
    CHECK_INT(lim.tpm, 100000);
    CHECK_INT(lim.concurrency, 16);
    free(model);
    CHECK_INT(fakellm_limit_parse("ollama/llama3:8b:tpm=5", &model, &lim, &err), EMPQ_OK);
    CHECK_STR(model, "ollama/llama3:8b");
    CHECK_INT(lim.rpm, 0);
    CHECK_INT(lim.tpm, 5);
    free(model);
    CHECK_INT(fakellm_limit_parse("concurrency=2,rpm=1", NULL, &lim, &err), EMPQ_OK);
    CHECK_INT(lim.concurrency, 2);
    CHECK_INT(lim.rpm, 1);

    const char *bad_model[] = {"rpm=5", ":rpm=5", "m:", "m:rpm", "m:rpm=", "m:rpm=x", "m:rpm=-1", "m:foo=1",
                               "m:rpm=1,,tpm=2", "m:rpm=99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_model) / sizeof(bad_model[0]); i++) {
        model = (char *)"unchanged";
        CHECK_INT(fakellm_limit_parse(bad_model[i], &model, &lim, &err), EMPQ_EINVAL);
        CHECK(model == NULL);
        CHECK_CONTAINS(err.msg, "limit");
    }
    CHECK_INT(fakellm_limit_parse("", NULL, &lim, &err), EMPQ_EINVAL);
    CHECK_INT(fakellm_limit_parse("rpm=1;tpm=2", NULL, &lim, &err), EMPQ_EINVAL);
}

static void test_windows_without_limit(void)
{
    fakellm_limits *l = fakellm_limits_new();
    fakellm_admit a;
    fakellm_slot s;
    for (uint64_t t = 0; t < 5; t++) {
        CHECK_INT(fakellm_limits_begin(l, "m", 10, 1000 + t, &a, &s), EMPQ_OK);
        CHECK_INT(a.admitted, 1);
        CHECK_INT(a.has_limit, 0);
        fakellm_limits_end(l, &s);
    }
    /* (4, 1004+1000]: a 1 s window later holds one. */
    CHECK_INT(fakellm_limits_begin(l, "m", 7, 2004, &a, &s), EMPQ_OK);
    fakellm_limits_end(l, &s);
    /* A clock going back is taken as the last time. */
    CHECK_INT(fakellm_limits_begin(l, "m", 1, 5, &a, &s), EMPQ_OK);
    fakellm_limits_end(l, &s);
    json_t *m = model_json(l, "m");
    CHECK(json_is_null(json_object_get(m, "limit")));
    CHECK_INT(field(m, "requests"), 7);
    CHECK_INT(field(m, "limited"), 0);
    CHECK_INT(field(m, "tokens"), 58);
    CHECK_INT(field(m, "max_requests_1s"), 5);
    CHECK_INT(field(m, "max_tokens_1s"), 50);
    CHECK_INT(field(m, "max_requests_60s"), 7);
    CHECK_INT(field(m, "max_tokens_60s"), 58);
    CHECK_INT(field(m, "in_flight"), 0);
    CHECK_INT(field(m, "peak_concurrency"), 1);
    json_decref(m);

    /* The 60 s window is (t - 60 s, t]: at 61004 the events of 1000..1004 are out. */
    CHECK_INT(fakellm_limits_begin(l, "m", 0, 61004, &a, &s), EMPQ_OK);
    fakellm_limits_end(l, &s);
    /* 2004, 2004 (the clamped one), 61004 in the window: the max stays 7. */
    m = model_json(l, "m");
    CHECK_INT(field(m, "max_requests_60s"), 7);
    json_decref(m);
    /* Many events: the ring grows and keeps counting right. */
    for (uint64_t i = 0; i < 1000; i++) {
        CHECK_INT(fakellm_limits_begin(l, "m", 1, 100000 + i / 10, &a, &s), EMPQ_OK);
        fakellm_limits_end(l, &s);
    }
    m = model_json(l, "m");
    CHECK_INT(field(m, "max_requests_1s"), 1000);
    CHECK_INT(field(m, "max_tokens_1s"), 1000);
    CHECK_INT(field(m, "max_requests_60s"), 1001); /* with the one of 61004 */
    json_decref(m);
    fakellm_limits_free(&l);
    CHECK(l == NULL);
    fakellm_limits_free(&l);
    fakellm_limits_free(NULL);
}

static void test_rpm(void)
{
    fakellm_limits *l = fakellm_limits_new();
    fakellm_limit lim = {.rpm = 3};
    CHECK_INT(fakellm_limits_set(l, "m", &lim), EMPQ_OK);
    fakellm_admit a;
    fakellm_slot s;
    uint64_t t0 = 5000;
    for (int i = 0; i < 3; i++) {
        CHECK_INT(fakellm_limits_begin(l, "m", 10, t0 + 100u * (unsigned)i, &a, &s), EMPQ_OK);
        CHECK_INT(a.admitted, 1);
        CHECK_INT(a.has_limit, 1);
        CHECK_INT(a.remaining_requests, 2 - i);
        CHECK_INT(a.reset_requests_ms, 60000);
        fakellm_limits_end(l, &s);
    }
    CHECK_INT(fakellm_limits_begin(l, "m", 10, t0 + 300, &a, &s), EMPQ_OK);
    CHECK_INT(a.admitted, 0);
    CHECK_STR(a.which, "requests");
    CHECK_INT(a.limit, 3);
    CHECK_INT(a.used, 3);
    CHECK_INT(a.requested, 1);
    CHECK_INT(a.retry_after_ms, 59700); /* when the one of t0 leaves */
    CHECK_INT(s.admitted, 0);
    fakellm_limits_end(l, &s);
    /* Rejected requests do not use the quota: at t0 + 60000 one slot is free. */
    CHECK_INT(fakellm_limits_begin(l, "m", 10, t0 + 59999, &a, &s), EMPQ_OK);
    CHECK_INT(a.admitted, 0);
    CHECK_INT(a.retry_after_ms, 1);
    fakellm_limits_end(l, &s);
    CHECK_INT(fakellm_limits_begin(l, "m", 10, t0 + 60000, &a, &s), EMPQ_OK);
    CHECK_INT(a.admitted, 1);
    CHECK_INT(a.remaining_requests, 0);
    fakellm_limits_end(l, &s);
    /* The counters show what the client sent: 4 in one minute > rpm 3. */
    json_t *m = model_json(l, "m");
    CHECK_INT(field(json_object_get(m, "limit"), "rpm"), 3);
    CHECK_INT(field(m, "requests"), 6);
    CHECK_INT(field(m, "limited"), 2);
    CHECK_INT(field(m, "tokens"), 40);
    CHECK_INT(field(m, "max_requests_60s"), 5);
    json_decref(m);
    fakellm_limits_free(&l);
}

static void test_tpm_and_concurrency(void)
{
    fakellm_limits *l = fakellm_limits_new();
    fakellm_limit lim = {.tpm = 100, .concurrency = 2};
    CHECK_INT(fakellm_limits_set(l, "m", &lim), EMPQ_OK);
    fakellm_admit a;
    fakellm_slot s1, s2, s3;
    CHECK_INT(fakellm_limits_begin(l, "m", 60, 1000, &a, &s1), EMPQ_OK);
    CHECK_INT(a.admitted, 1);
    CHECK_INT(a.remaining_tokens, 40);
    CHECK_INT(a.reset_tokens_ms, 60000);
    CHECK_INT(fakellm_limits_begin(l, "m", 60, 2000, &a, &s2), EMPQ_OK);
    CHECK_INT(a.admitted, 0);
    CHECK_STR(a.which, "tokens");
    CHECK_INT(a.limit, 100);
    CHECK_INT(a.used, 60);
    CHECK_INT(a.requested, 60);
    CHECK_INT(a.retry_after_ms, 59000);
    fakellm_limits_end(l, &s2);
    /* More than the whole tpm: never fits, retry in a minute. */
    CHECK_INT(fakellm_limits_begin(l, "m", 500, 2000, &a, &s2), EMPQ_OK);
    CHECK_INT(a.admitted, 0);
    CHECK_INT(a.retry_after_ms, 60000);
    fakellm_limits_end(l, &s2);
    /* A request with no completion (0 tokens) fits. */
    CHECK_INT(fakellm_limits_begin(l, "m", 0, 2000, &a, &s2), EMPQ_OK);
    CHECK_INT(a.admitted, 1);
    /* Two admitted open: the third is over the concurrency. */
    CHECK_INT(fakellm_limits_begin(l, "m", 0, 2001, &a, &s3), EMPQ_OK);
    CHECK_INT(a.admitted, 0);
    CHECK_STR(a.which, "concurrency");
    CHECK_INT(a.limit, 2);
    CHECK_INT(a.used, 2);
    CHECK_INT(a.retry_after_ms, 1000);
    json_t *m = model_json(l, "m");
    CHECK_INT(field(m, "in_flight"), 3);
    CHECK_INT(field(m, "peak_concurrency"), 3); /* received, rejected or not */
    json_decref(m);
    fakellm_limits_end(l, &s3);
    fakellm_limits_end(l, &s1);
    fakellm_limits_end(l, &s1); /* idempotent */
    CHECK_INT(s1.model, -1);
    CHECK_INT(fakellm_limits_begin(l, "m", 0, 2002, &a, &s3), EMPQ_OK);
    CHECK_INT(a.admitted, 1);
    fakellm_limits_end(l, &s3);
    fakellm_limits_end(l, &s2);

    /* Reset: maxima and counts zeroed, the limit and the quota kept. */
    fakellm_limits_reset(l);
    m = model_json(l, "m");
    CHECK_INT(field(m, "requests"), 0);
    CHECK_INT(field(m, "max_requests_60s"), 0);
    CHECK_INT(field(m, "peak_concurrency"), 0);
    CHECK_INT(field(json_object_get(m, "limit"), "tpm"), 100);
    json_decref(m);
    CHECK_INT(fakellm_limits_begin(l, "m", 60, 3000, &a, &s1), EMPQ_OK);
    CHECK_INT(a.admitted, 0); /* 60 of the quota still used until 61000 */
    fakellm_limits_end(l, &s1);
    fakellm_limits_free(&l);
}

static void test_default_and_json(void)
{
    fakellm_limits *l = fakellm_limits_new();
    fakellm_limit own = {.rpm = 5}, def = {.concurrency = 1};
    CHECK_INT(fakellm_limits_set(l, "own", &own), EMPQ_OK);
    CHECK_INT(fakellm_limits_set(l, NULL, &def), EMPQ_OK);
    fakellm_admit a;
    fakellm_slot s;
    CHECK_INT(fakellm_limits_begin(l, "other", 1, 10, &a, &s), EMPQ_OK);
    CHECK_INT(a.has_limit, 1);
    CHECK_INT(a.lim.concurrency, 1);
    fakellm_limits_end(l, &s);
    CHECK_INT(fakellm_limits_begin(l, "own", 1, 10, &a, &s), EMPQ_OK);
    CHECK_INT(a.lim.rpm, 5);
    CHECK_INT(a.lim.concurrency, 0);
    fakellm_limits_end(l, &s);

    empq_buf b = {0};
    CHECK_INT(fakellm_limits_json(l, &b), EMPQ_OK);
    CHECK_STR(b.data, "{\"own\":{\"limit\":{\"rpm\":5,\"tpm\":0,\"concurrency\":0},\"requests\":1,\"limited\":0,"
                      "\"tokens\":1,\"in_flight\":0,\"peak_concurrency\":1,\"max_requests_60s\":1,"
                      "\"max_requests_1s\":1,\"max_tokens_60s\":1,\"max_tokens_1s\":1},"
                      "\"other\":{\"limit\":{\"rpm\":0,\"tpm\":0,\"concurrency\":1},\"requests\":1,\"limited\":0,"
                      "\"tokens\":1,\"in_flight\":0,\"peak_concurrency\":1,\"max_requests_60s\":1,"
                      "\"max_requests_1s\":1,\"max_tokens_60s\":1,\"max_tokens_1s\":1}}");
    empq_buf_free(&b);

    /* Past the table's size, models share "(other)". */
    char name[32];
    for (int i = 0; i < FAKELLM_LIMITS_MODELS + 20; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        CHECK_INT(fakellm_limits_begin(l, name, 1, 20, &a, &s), EMPQ_OK);
        fakellm_limits_end(l, &s);
    }
    CHECK_INT(fakellm_limits_json(l, &b), EMPQ_OK);
    json_t *doc = json_loads(b.data, 0, NULL);
    CHECK_INT(json_object_size(doc), FAKELLM_LIMITS_MODELS);
    json_t *other = json_object_get(doc, "(other)");
    CHECK(other != NULL);
    CHECK_INT(field(other, "requests"), 23); /* m253 .. m275: 255 named entries, then "(other)" */
    json_decref(doc);
    empq_buf_free(&b);
    fakellm_limit x = {.rpm = 1};
    CHECK_INT(fakellm_limits_set(l, "yet-another", &x), EMPQ_EINVAL);
    fakellm_limits_free(&l);
}

typedef struct shared {
    fakellm_limits *l;
    atomic_int open, peak, admitted;
} shared;

static void *worker(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < 5000; i++) {
        fakellm_admit a;
        fakellm_slot s;
        fakellm_limits_begin(sh->l, "m", 1, 1000 + (uint64_t)i, &a, &s);
        if (a.admitted) {
            int now = atomic_fetch_add(&sh->open, 1) + 1;
            int p = atomic_load(&sh->peak);
            while (now > p && !atomic_compare_exchange_weak(&sh->peak, &p, now))
                ;
            atomic_fetch_add(&sh->admitted, 1);
            atomic_fetch_sub(&sh->open, 1);
        }
        fakellm_limits_end(sh->l, &s);
    }
    return NULL;
}

static void test_threads(void)
{
    shared sh = {.l = fakellm_limits_new()};
    fakellm_limit lim = {.concurrency = 2};
    fakellm_limits_set(sh.l, "m", &lim);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&th[i], NULL, worker, &sh), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(atomic_load(&sh.peak) <= 2);
    CHECK(atomic_load(&sh.admitted) > 0);
    json_t *m = model_json(sh.l, "m");
    CHECK_INT(field(m, "requests"), 20000);
    CHECK_INT(field(m, "requests") - field(m, "limited"), atomic_load(&sh.admitted));
    CHECK_INT(field(m, "in_flight"), 0);
    CHECK(field(m, "peak_concurrency") <= 4);
    json_decref(m);
    fakellm_limits_free(&sh.l);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_windows_without_limit);
    RUN(test_rpm);
    RUN(test_tpm_and_concurrency);
    RUN(test_default_and_json);
    RUN(test_threads);
    CHECK_DONE();
}
