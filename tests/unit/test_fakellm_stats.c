/* test_fakellm_stats.c: the /stats counters and their JSON, under threads. */
#include <jansson.h>
#include <pthread.h>

#include "check.h"
#include "stats.h"

static json_t *as_json(fakellm_stats *s)
{
    empq_buf b = {0};
    CHECK_INT(fakellm_stats_json(s, &b), EMPQ_OK);
    json_t *doc = json_loads(b.data, JSON_PRESERVE_ORDER, NULL);
    CHECK(doc != NULL);
    empq_buf_free(&b);
    return doc;
}

static json_int_t get(json_t *doc, const char *k) { return json_integer_value(json_object_get(doc, k)); }

static void test_counts(void)
{
    fakellm_stats *s = fakellm_stats_new();
    CHECK(s != NULL);
    empq_buf b = {0};
    CHECK_INT(fakellm_stats_json(s, &b), EMPQ_OK);
    CHECK_STR(b.data, "{\"requests\":0,\"by_model\":{},\"errors\":0,\"in_flight\":0,\"max_in_flight\":0,"
                      "\"hung\":0,\"faults\":{\"429\":0,\"500\":0,\"503\":0,\"hang\":0,\"reset\":0,"
                      "\"malformed\":0,\"truncated\":0,\"huge\":0,\"refusal\":0,\"empty\":0,\"null\":0,"
                      "\"thinking-only\":0,\"length-empty\":0,\"safety\":0,\"quota\":0,\"stall\":0}}");
    empq_buf_free(&b);

    fakellm_stats_begin(s);
    fakellm_stats_begin(s);
    fakellm_stats_begin(s);
    fakellm_stats_answered(s, "fake-warm");
    fakellm_stats_end(s);
    fakellm_stats_answered(s, "fake-brief");
    fakellm_stats_answered(s, "fake-warm");
    fakellm_stats_answered(s, "model \"quoted\"");
    fakellm_stats_answered(s, NULL);
    fakellm_stats_error(s);
    fakellm_stats_end(s);
    fakellm_stats_fault(s, FAKELLM_FAULT_429);
    fakellm_stats_fault(s, FAKELLM_FAULT_429);
    fakellm_stats_fault(s, FAKELLM_FAULT_EMPTY);
    fakellm_stats_fault(s, FAKELLM_FAULT_NONE); /* ignored */
    fakellm_stats_hung(s, 1);
    fakellm_stats_hung(s, 1);
    fakellm_stats_hung(s, -1);

    json_t *doc = as_json(s);
    CHECK_INT(get(doc, "hung"), 1);
    CHECK_INT(get(json_object_get(doc, "faults"), "429"), 2);
    CHECK_INT(get(json_object_get(doc, "faults"), "empty"), 1);
    CHECK_INT(get(json_object_get(doc, "faults"), "hang"), 0);
    CHECK_INT(get(doc, "requests"), 5);
    CHECK_INT(get(doc, "errors"), 1);
    CHECK_INT(get(doc, "in_flight"), 1);
    CHECK_INT(get(doc, "max_in_flight"), 3);
    json_t *bm = json_object_get(doc, "by_model");
    CHECK_INT(json_object_size(bm), 4);
    CHECK_INT(get(bm, "fake-warm"), 2);
    CHECK_INT(get(bm, "fake-brief"), 1);
    CHECK_INT(get(bm, "model \"quoted\""), 1);
    CHECK_INT(get(bm, ""), 1);
    json_decref(doc);

    fakellm_stats_snapshot snap;
    fakellm_stats_get(s, &snap);
    CHECK_INT(snap.requests, 5);
    CHECK_INT(snap.in_flight, 1);

    /* Reset: counters zero, the gauge stays, the peak drops to it. */
    fakellm_stats_reset(s);
    doc = as_json(s);
    CHECK_INT(get(doc, "requests"), 0);
    CHECK_INT(get(doc, "errors"), 0);
    CHECK_INT(json_object_size(json_object_get(doc, "by_model")), 0);
    CHECK_INT(get(json_object_get(doc, "faults"), "429"), 0);
    CHECK_INT(get(doc, "hung"), 1); /* a gauge: not reset */
    CHECK_INT(get(doc, "in_flight"), 1);
    CHECK_INT(get(doc, "max_in_flight"), 1);
    json_decref(doc);

    CHECK_INT(fakellm_stats_wait_idle(s, 20), EMPQ_ETIMEOUT);
    fakellm_stats_end(s);
    CHECK_INT(fakellm_stats_wait_idle(s, 20), EMPQ_OK);
    fakellm_stats_end(s); /* never below zero */
    fakellm_stats_get(s, &snap);
    CHECK_INT(snap.in_flight, 0);

    fakellm_stats_free(&s);
    CHECK(s == NULL);
    fakellm_stats_free(&s);
    fakellm_stats_free(NULL);
}

static void test_model_cap(void)
{
    fakellm_stats *s = fakellm_stats_new();
    char name[32];
    for (int i = 0; i < FAKELLM_STATS_MODELS + 10; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        fakellm_stats_answered(s, name);
    }
    json_t *doc = as_json(s);
    json_t *bm = json_object_get(doc, "by_model");
    CHECK_INT(json_object_size(bm), FAKELLM_STATS_MODELS + 1);
    CHECK_INT(get(bm, "(other)"), 10);
    CHECK_INT(get(doc, "requests"), FAKELLM_STATS_MODELS + 10);
    json_decref(doc);
    fakellm_stats_free(&s);
}

static void *hammer(void *arg)
{
    fakellm_stats *s = arg;
    for (int i = 0; i < 10000; i++) {
        fakellm_stats_begin(s);
        fakellm_stats_answered(s, i % 2 ? "a" : "b");
        fakellm_stats_end(s);
    }
    return NULL;
}

static void test_threads(void)
{
    fakellm_stats *s = fakellm_stats_new();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        CHECK_INT(pthread_create(&th[i], NULL, hammer, s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    json_t *doc = as_json(s);
    CHECK_INT(get(doc, "requests"), 40000);
    CHECK_INT(get(json_object_get(doc, "by_model"), "a"), 20000);
    CHECK_INT(get(doc, "in_flight"), 0);
    CHECK(get(doc, "max_in_flight") >= 1 && get(doc, "max_in_flight") <= 4);
    json_decref(doc);
    fakellm_stats_free(&s);
}

int main(void)
{
    RUN(test_counts);
    RUN(test_model_cap);
    RUN(test_threads);
    CHECK_DONE();
}
