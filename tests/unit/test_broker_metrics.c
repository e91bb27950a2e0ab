/* test_broker_metrics.c: the broker's Prometheus text (metrics.c) and the
 * per-emotion counts of a run (runinfo.c), without sockets or Redis. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "metrics.h"
#include "runinfo.h"
#include "sched.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_escape(void)
{
    char buf[64];
    CHECK_STR(bk__metrics_escape(buf, sizeof buf, "plain"), "plain");
    CHECK_STR(bk__metrics_escape(buf, sizeof buf, "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    char tiny[3];
    CHECK_STR(bk__metrics_escape(tiny, sizeof tiny, "a\"bc"), "a"); /* never half an escape */
}

static void test_render(void)
{
    bk__sched *s = NULL;
    CHECK_INT(bk__sched_new(&s, NULL), EMPQ_OK);
    Empq__Run run = EMPQ__RUN__INIT;
    Empq__RunSpec spec = EMPQ__RUN_SPEC__INIT;
    Empq__ModelSpec ms[2] = {EMPQ__MODEL_SPEC__INIT, EMPQ__MODEL_SPEC__INIT};
    Empq__ModelSpec *mp[2] = {&ms[0], &ms[1]};
    ms[0].alias = "human";
    ms[0].provider = "human";
    ms[1].alias = "we\"ird";
    ms[1].provider = "openai";
    spec.name = "t";
    spec.n_models = 2;
    spec.models = mp;
    run.id = "r-1";
    run.spec = &spec;
    run.n_prompts = 3;
    bk__run *r = NULL;
    CHECK_INT(bk__sched_run_add(s, &run, &r, NULL), EMPQ_OK);
    bk__jobtable_done(r->table, 0, 0, NULL);

    bk__metrics *m = NULL;
    CHECK_INT(bk__metrics_new(&m), EMPQ_OK);
    Empq__Outcome o = EMPQ__OUTCOME__INIT;
    o.run_id = "r-1";
    o.job = 1;
    o.kind = EMPQ__OUTCOME_KIND__OUTCOME_DONE;
    o.has_latency_ms = 1;
    o.latency_ms = 40; /* bucket 0.05 */
    o.has_tokens = 1;
    o.tokens = 7;
    bk__metrics_outcome(m, "we\"ird", &o, BK_APPLIED);
    o.latency_ms = 200000; /* beyond every finite bucket */
    bk__metrics_outcome(m, "we\"ird", &o, BK_IGNORED_FINAL); /* counted as a request, not as completed */
    o.kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
    o.has_http_status = 1;
    o.http_status = 429;
    o.has_latency_ms = 0;
    bk__metrics_outcome(m, "we\"ird", &o, BK_APPLIED);
    bk__metrics_dispatched(m, "human", 3);

    bk__metrics_broker b = {5, 6, 7, 1000, 11, 2, 3};
    size_t len = 0;
    char *text = bk__metrics_render(m, s, &b, &len);
    CHECK(text != NULL);
    CHECK_INT(strlen(text), len);
    CHECK_CONTAINS(text, "# TYPE empq_jobs gauge\n");
    CHECK_CONTAINS(text, "empq_jobs{run=\"r-1\",model=\"human\",state=\"done\"} 1\n");
    CHECK_CONTAINS(text, "empq_jobs{run=\"r-1\",model=\"we\\\"ird\",state=\"pending\"} 3\n");
    CHECK_CONTAINS(text, "empq_jobs_completed_total{model=\"we\\\"ird\"} 1\n");
    CHECK_CONTAINS(text, "empq_retries_total{model=\"we\\\"ird\"} 1\n");
    CHECK_CONTAINS(text, "empq_http_429_total{model=\"we\\\"ird\"} 1\n");
    CHECK_CONTAINS(text, "empq_tokens_total{model=\"we\\\"ird\"} 14\n");
    CHECK_CONTAINS(text, "empq_jobs_dispatched_total{model=\"human\"} 3\n");
    CHECK_CONTAINS(text, "empq_request_duration_seconds_bucket{model=\"we\\\"ird\",le=\"0.025\"} 0\n");
    CHECK_CONTAINS(text, "empq_request_duration_seconds_bucket{model=\"we\\\"ird\",le=\"0.05\"} 1\n");
    CHECK_CONTAINS(text, "empq_request_duration_seconds_bucket{model=\"we\\\"ird\",le=\"120\"} 1\n");
    CHECK_CONTAINS(text, "empq_request_duration_seconds_bucket{model=\"we\\\"ird\",le=\"+Inf\"} 2\n");
    CHECK_CONTAINS(text, "empq_request_duration_seconds_count{model=\"we\\\"ird\"} 2\n");
    CHECK_CONTAINS(text, "empq_request_duration_seconds_sum{model=\"we\\\"ird\"} 200.040000\n");
    CHECK_CONTAINS(text, "empq_dispatched_total 5\n");
    CHECK_CONTAINS(text, "empq_bad_messages_total 7\n");
    CHECK_CONTAINS(text, "empq_curve_handshakes_total{result=\"allowed\"} 11\n");
    CHECK_CONTAINS(text, "empq_curve_handshakes_total{result=\"refused\"} 2\n");
    CHECK_CONTAINS(text, "empq_curve_allowed_keys 3\n");
    CHECK_CONTAINS(text, "empq_workers_connected 0\n");
    CHECK(text[len - 1] == '\n');
    free(text);
    bk__metrics_free(&m);
    bk__metrics_free(&m); /* NULL is fine */
    bk__sched_free(&s);
}

/* Status per emotion walks the table once: 1,000,000 jobs must stay fast. */
static void test_emotion_counts(void)
{
    const uint32_t prompts = 200000, models = 5;
    bk__jobtable *t = NULL;
    CHECK_INT(bk__jobtable_new(&t, prompts, models, 1, NULL), EMPQ_OK);
    bk__runinfo ri;
    memset(&ri, 0, sizeof ri);
    char *names[3] = {"afraid", "joyful", "sad"};
    ri.names = names;
    ri.n_names = 3;
    ri.n_prompts = prompts;
    ri.emotion = malloc(prompts * sizeof *ri.emotion);
    for (uint32_t p = 0; p < prompts; p++)
        ri.emotion[p] = p % 4 == 3 ? UINT16_MAX : (uint16_t)(p % 4);
    /* prompt 0 (afraid): all done; prompt 1 (joyful): model 0 dead, model 1 leased */
    for (uint32_t m = 0; m < models; m++)
        bk__jobtable_done(t, m, 0, NULL);
    bk__jobtable_dead(t, models, NULL);
    bk__jobtable_lease(t, models + 1, 0, 1000);
    bk__counts c[4];
    double t0 = now_s();
    bk__runinfo_counts(&ri, t, c);
    double ms = (now_s() - t0) * 1000;
    fprintf(stderr, "   per-emotion counts of %u jobs: %.1f ms\n", prompts * models, ms);
    CHECK(ms < 200);
    CHECK_INT(c[0].done, models);
    CHECK_INT(c[0].pending, (prompts / 4 - 1) * models);
    CHECK_INT(c[1].dead, 1);
    CHECK_INT(c[1].leased, 1);
    CHECK_INT(c[1].pending, prompts / 4 * models - 2);
    CHECK_INT(c[2].pending, prompts / 4 * models);
    CHECK_INT(c[3].pending, prompts / 4 * models); /* no emotion */
    free(ri.emotion);
    bk__jobtable_free(&t);
}

int main(void)
{
    RUN(test_escape);
    RUN(test_render);
    RUN(test_emotion_counts);
    CHECK_DONE();
}
