/* test_broker_pace.c: per-model limits, 429 slow-down and cost (bk__pace),
 * alone and through the scheduler's dispatch, with a fake clock: requests
 * and tokens per sliding minute, concurrency, the estimate corrected by
 * reported usage, the time a paced model may send again, AIMD on 429 with
 * Retry-After as a model-wide pause, recovery on successes, max_cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pace.h"
#include "sched.h"

typedef struct spec {
    Empq__ModelSpec m;
    Empq__ModelLimits l;
    Empq__ModelPrices p;
    Empq__GenParams g;
} spec;

static void spec_init(spec *s, uint32_t conc, uint32_t rpm, uint32_t tpm, int32_t max_tokens)
{
    empq__model_spec__init(&s->m);
    empq__model_limits__init(&s->l);
    empq__model_prices__init(&s->p);
    empq__gen_params__init(&s->g);
    s->m.alias = (char *)"gpt";
    s->m.provider = (char *)"openai";
    s->m.limits = &s->l;
    s->m.prices = &s->p;
    s->m.params = &s->g;
    s->l.has_max_concurrency = conc > 0;
    s->l.max_concurrency = conc;
    s->l.has_requests_per_minute = rpm > 0;
    s->l.requests_per_minute = rpm;
    s->l.has_tokens_per_minute = tpm > 0;
    s->l.tokens_per_minute = tpm;
    s->g.has_max_tokens = max_tokens > 0;
    s->g.max_tokens = max_tokens;
}

static Empq__Outcome done(uint32_t in, uint32_t out, int cache_hit)
{
    Empq__Outcome o = EMPQ__OUTCOME__INIT;
    o.run_id = (char *)"r";
    o.kind = EMPQ__OUTCOME_KIND__OUTCOME_DONE;
    o.has_tokens = !cache_hit;
    o.tokens = in + out;
    o.has_tokens_in = o.has_tokens_out = !cache_hit;
    o.tokens_in = in;
    o.tokens_out = out;
    o.has_cache_hit = 1;
    o.cache_hit = cache_hit;
    return o;
}

static Empq__Outcome limited(uint32_t retry_after_ms)
{
    Empq__Outcome o = EMPQ__OUTCOME__INIT;
    o.run_id = (char *)"r";
    o.kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
    o.has_http_status = 1;
    o.http_status = 429;
    o.has_retry_after_ms = retry_after_ms > 0;
    o.retry_after_ms = retry_after_ms;
    return o;
}

static void test_unlimited(void)
{
    spec s;
    spec_init(&s, 0, 0, 0, 0);
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    CHECK(!bk__pace_active(&p));
    CHECK_INT(bk__pace_allow(&p, 1000000, 5), BK_PACE_UNLIMITED);
    CHECK_INT(bk__pace_next(&p, 0, 5), UINT64_MAX);
}

static void test_rpm_window(void)
{
    spec s;
    spec_init(&s, 0, 10, 0, 0);
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL); /* slack 1000 ms */
    uint64_t t0 = 1000000;         /* bucket 1000 */
    CHECK_INT(bk__pace_allow(&p, 0, t0), 10);
    bk__pace_charge(&p, 4, t0);
    CHECK_INT(bk__pace_allow(&p, 4, t0 + 500), 6);
    bk__pace_charge(&p, 6, t0 + 1500); /* bucket 1001 */
    CHECK_INT(bk__pace_allow(&p, 0, t0 + 1600), 0);
    /* bucket 1000 counts until its end + 60 s + 1 s slack */
    uint64_t free4 = t0 + 1000 + 61000;
    CHECK_INT(bk__pace_next(&p, 0, t0 + 1600), free4);
    CHECK_INT(bk__pace_allow(&p, 0, free4 - 1), 0);
    CHECK_INT(bk__pace_allow(&p, 0, free4), 4);
    CHECK_INT(bk__pace_allow(&p, 0, free4 + 1000), 10);
    /* never more than 10 in any 60 s: charge at a steady pace and count */
    bk__pace q;
    bk__pace_init(&q, &s.m, NULL);
    uint64_t sent[400];
    size_t n = 0;
    for (uint64_t t = 0; t < 300000 && n < 400; t += 250) {
        uint32_t a = bk__pace_allow(&q, 0, t);
        if (a > 0) {
            bk__pace_charge(&q, 1, t);
            sent[n++] = t;
        }
    }
    CHECK(n >= 40); /* about 10 a minute over 5 minutes */
    for (size_t i = 10; i < n; i++)
        CHECK(sent[i] - sent[i - 10] >= 60000);
}

static void test_tpm_estimate(void)
{
    spec s;
    spec_init(&s, 0, 0, 3000, 100);
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    uint64_t t0 = 2000000;
    CHECK_INT(bk__pace_estimate(&p), 1024 + 100);
    CHECK_INT(bk__pace_allow(&p, 0, t0), 2);
    bk__pace_charge(&p, 2, t0);
    CHECK_INT(bk__pace_allow(&p, 2, t0), 0);
    CHECK(bk__pace_next(&p, 2, t0) > t0);
    /* the reply reports 50 in, 80 out: the window is corrected, the
     * estimate becomes 50 + 25% + max_tokens */
    Empq__Outcome o = done(50, 80, 0);
    bk__pace_outcome(&p, &o, t0, 2, t0 + 300);
    CHECK_INT(p.win_tok, 1124 + 130);
    CHECK_INT(bk__pace_estimate(&p), 162);
    CHECK_INT(bk__pace_allow(&p, 1, t0 + 300), (3000 - 1254) / 162);
    CHECK_INT(p.tok_in, 50);
    CHECK_INT(p.tok_out, 80);
    /* a cache hit gives its place back */
    Empq__Outcome h = done(0, 0, 1);
    bk__pace_outcome(&p, &h, t0, 1, t0 + 400);
    CHECK_INT(p.win_req, 1);
    CHECK_INT(p.win_tok, 130);
    /* a request larger than the whole limit goes alone into an empty window */
    spec b;
    spec_init(&b, 0, 0, 100, 500);
    bk__pace q;
    bk__pace_init(&q, &b.m, NULL);
    CHECK_INT(bk__pace_allow(&q, 0, t0), 1);
    bk__pace_charge(&q, 1, t0);
    CHECK_INT(bk__pace_allow(&q, 0, t0), 0);
}

static void test_concurrency_and_429(void)
{
    spec s;
    spec_init(&s, 8, 0, 0, 0);
    bk__pace_opts po;
    bk__pace_opts_default(&po);
    po.decrease_share = 0; /* every episode halves */
    bk__pace p;
    bk__pace_init(&p, &s.m, &po);
    uint64_t t = 5000;
    CHECK_INT(bk__pace_allow(&p, 3, t), 5);
    CHECK_INT(bk__pace_allow(&p, 8, t), 0);
    CHECK_INT(bk__pace_next(&p, 8, t), UINT64_MAX); /* waits for outcomes, not time */
    /* a 429 with Retry-After 2 s: half the concurrency, a model-wide pause */
    Empq__Outcome o = limited(2000);
    CHECK_INT(bk__pace_outcome(&p, &o, t, 8, t + 100), 1);
    CHECK_INT(bk__pace_conc(&p), 4);
    CHECK_INT(bk__pace_allow(&p, 0, t + 200), 0);
    CHECK_INT(bk__pace_next(&p, 0, t + 200), t + 2100);
    /* another 429 of a request sent before the slow-down: same episode */
    CHECK_INT(bk__pace_outcome(&p, &o, t + 50, 7, t + 150), 0);
    CHECK_INT(bk__pace_conc(&p), 4);
    CHECK_INT(p.limited, 2);
    CHECK_INT(bk__pace_allow(&p, 0, t + 2100), 4);
    /* a 429 of a request sent after it halves again, down to the floor */
    for (int i = 0; i < 10; i++) {
        uint64_t now = t + 3000 + (uint64_t)i * 10;
        bk__pace_outcome(&p, &o, now - 1, 1, now);
    }
    CHECK(p.factor >= 1.0 / 16 - 1e-9 && p.factor <= 1.0 / 16 + 1e-9);
    CHECK_INT(bk__pace_conc(&p), 1);
    /* successes speed it up again, up to the spec's limit */
    Empq__Outcome d = done(10, 10, 0);
    for (int i = 0; i < 15; i++)
        bk__pace_outcome(&p, &d, t + 4000, 0, t + 10000);
    CHECK(bk__pace_conc(&p) >= 4);
    for (int i = 0; i < 100; i++)
        bk__pace_outcome(&p, &d, t + 4000, 0, t + 10000);
    CHECK_INT(bk__pace_conc(&p), 8);
    CHECK(p.factor == 1.0);
    /* a model without max_concurrency learns one from the 429 */
    spec u;
    spec_init(&u, 0, 0, 0, 0);
    bk__pace q;
    bk__pace_init(&q, &u.m, &po);
    Empq__Outcome z = limited(0);
    CHECK_INT(bk__pace_outcome(&q, &z, 10, 40, 20), 1);
    CHECK(bk__pace_active(&q));
    CHECK_INT(bk__pace_conc(&q), 20);
    CHECK_INT(bk__pace_allow(&q, 19, 30), 1); /* no Retry-After: no pause */
    for (int i = 0; i < 40; i++)
        bk__pace_outcome(&q, &d, 25, 0, 40);
    CHECK_INT(bk__pace_conc(&q), BK_PACE_UNLIMITED); /* recovered: the learned cap is forgotten */
    /* the rate limits scale with the factor */
    spec r;
    spec_init(&r, 0, 100, 0, 0);
    bk__pace_init(&q, &r.m, &po);
    bk__pace_outcome(&q, &z, 10, 0, 20);
    CHECK_INT(bk__pace_allow(&q, 0, 30), 50);
}

/* With the default share: stray 429s cost a pause each, not the rate; a
 * provider refusing most requests halves it. */
static void test_429_share(void)
{
    spec s;
    spec_init(&s, 16, 0, 0, 0);
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    Empq__Outcome d = done(10, 10, 0);
    Empq__Outcome z = limited(1000);
    uint64_t t = 100000;
    for (int round = 0; round < 20; round++) { /* 1 in 5 refused */
        for (int i = 0; i < 4; i++)
            bk__pace_outcome(&p, &d, t, 0, t + 10);
        CHECK_INT(bk__pace_outcome(&p, &z, t, 0, t + 10), 1); /* an episode: a pause */
        CHECK_INT(bk__pace_allow(&p, 0, t + 20), 0);
        t += 1100;
    }
    CHECK(p.factor == 1.0);
    CHECK_INT(bk__pace_conc(&p), 16);
    int halved = 0;
    for (int i = 0; i < 10; i++) { /* every reply refused */
        bk__pace_outcome(&p, &z, t, 0, t + 10);
        t += 1100;
        halved |= p.factor < 1.0;
    }
    CHECK(halved);
    CHECK(bk__pace_conc(&p) < 16);
}

/* A request that got no reply (timeout) may still run at the provider: it
 * holds its concurrency slot for the model's timeout_ms. */
static void test_ghosts(void)
{
    spec s;
    spec_init(&s, 2, 0, 0, 0);
    s.m.has_timeout_ms = 1;
    s.m.timeout_ms = 2000;
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    uint64_t t = 50000;
    CHECK_INT(bk__pace_allow(&p, 0, t), 2);
    Empq__Outcome o = EMPQ__OUTCOME__INIT;
    o.run_id = (char *)"r";
    o.kind = EMPQ__OUTCOME_KIND__OUTCOME_RETRY;
    o.reason = (char *)"timeout";
    bk__pace_outcome(&p, &o, t - 2000, 1, t);
    CHECK_INT(bk__pace_allow(&p, 1, t + 10), 0);     /* the ghost and the other lease */
    CHECK_INT(bk__pace_next(&p, 1, t + 10), t + 2000); /* when the ghost ends */
    CHECK_INT(bk__pace_allow(&p, 0, t + 10), 1);
    CHECK_INT(bk__pace_allow(&p, 1, t + 2000), 1);
    /* a reply with a status (a 500) frees its slot at once */
    Empq__Outcome e = o;
    e.has_http_status = 1;
    e.http_status = 500;
    bk__pace_outcome(&p, &e, t + 2000, 1, t + 2100);
    CHECK_INT(bk__pace_allow(&p, 0, t + 2100), 2);
    /* without a concurrency limit nothing is kept */
    spec u;
    spec_init(&u, 0, 0, 0, 0);
    bk__pace q;
    bk__pace_init(&q, &u.m, NULL);
    bk__pace_outcome(&q, &o, t - 10, 1, t);
    CHECK_INT(q.ghost_n, 0);
}

static void test_cost(void)
{
    spec s;
    spec_init(&s, 0, 0, 0, 100);
    s.p.has_input_per_mtok = s.p.has_output_per_mtok = s.p.has_max_cost = 1;
    s.p.input_per_mtok = 1000.0; /* $0.001 a token in */
    s.p.output_per_mtok = 2000.0;
    s.p.max_cost = 1.0;
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    CHECK(bk__pace_active(&p));
    /* one job is estimated at 1024 x 0.001 + 100 x 0.002 = 1.224 > 1: none fits */
    CHECK_INT(bk__pace_allow(&p, 1, 10), 0);
    CHECK(!p.stopped);
    /* a reply of 100 in, 50 out costs 0.2; the estimate becomes 0.3 */
    Empq__Outcome d = done(100, 50, 0);
    bk__pace_outcome(&p, &d, 5, 0, 10);
    CHECK(p.cost > 0.1999 && p.cost < 0.2001);
    CHECK_INT(bk__pace_allow(&p, 0, 20), 2); /* (1 - 0.2) / 0.3 */
    CHECK_INT(bk__pace_allow(&p, 1, 20), 1);
    for (int i = 0; i < 4; i++)
        bk__pace_outcome(&p, &d, 5, 0, 30);
    CHECK(p.cost >= 1.0 - 1e-9);
    CHECK(p.stopped);
    CHECK_INT(bk__pace_allow(&p, 0, 40), 0);
    CHECK_INT(bk__pace_next(&p, 0, 40), UINT64_MAX);
    CHECK_INT(p.tok_in, 500);
    CHECK_INT(p.tok_out, 250);
    /* cache hits cost nothing */
    Empq__Outcome h = done(0, 0, 1);
    bk__pace_outcome(&p, &h, 5, 0, 50);
    CHECK_INT(p.tok_in, 500);
}

/* Reasoning tokens are billed output (tokens_out carries them); a reply
 * that was no answer (DEAD or RETRY with usage) is charged too; cached
 * input at its own price. */
static void test_cost_reasoning_cached(void)
{
    spec s;
    spec_init(&s, 0, 0, 0, 0);
    s.p.has_input_per_mtok = s.p.has_output_per_mtok = s.p.has_cached_input_per_mtok = 1;
    s.p.input_per_mtok = 1000.0;       /* 0.001 a token */
    s.p.cached_input_per_mtok = 100.0; /* 0.0001 a cached token */
    s.p.output_per_mtok = 2000.0;
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    /* 100 in (80 of them cached), 300 out of which reasoning 250 */
    Empq__Outcome d = done(100, 300, 0);
    d.has_tokens_cached = 1;
    d.tokens_cached = 80;
    bk__pace_outcome(&p, &d, 5, 0, 10);
    double want = 20 * 0.001 + 80 * 0.0001 + 300 * 0.002;
    CHECK(p.cost > want - 1e-9 && p.cost < want + 1e-9);
    /* a dead reply whose reasoning used the budget: 100 in, 512 out, billed */
    Empq__Outcome x = done(100, 512, 0);
    x.kind = EMPQ__OUTCOME_KIND__OUTCOME_DEAD;
    bk__pace_outcome(&p, &x, 5, 0, 20);
    want += 100 * 0.001 + 512 * 0.002;
    CHECK(p.cost > want - 1e-9 && p.cost < want + 1e-9);
    CHECK_INT(p.tok_out, 812);
    /* a dead outcome without usage (an HTTP error) costs nothing */
    Empq__Outcome e = done(0, 0, 0);
    e.kind = EMPQ__OUTCOME_KIND__OUTCOME_DEAD;
    e.has_tokens = e.has_tokens_in = e.has_tokens_out = 0;
    bk__pace_outcome(&p, &e, 5, 0, 30);
    CHECK(p.cost > want - 1e-9 && p.cost < want + 1e-9);
    /* max_completion_tokens is the completion estimate */
    spec t;
    spec_init(&t, 0, 0, 0, 0);
    t.m.params = &t.g;
    t.g.has_max_completion_tokens = 1;
    t.g.max_completion_tokens = 4096;
    bk__pace q;
    bk__pace_init(&q, &t.m, NULL);
    CHECK_INT(q.max_tokens, 4096);
}

/* A restarted broker rebuilds cost and the minute window from the results
 * in Redis: the budget spent before the restart still counts, and calls of
 * the last minute still hold their places. */
static void test_restore(void)
{
    spec s;
    spec_init(&s, 0, 10, 0, 100);
    s.p.has_input_per_mtok = s.p.has_output_per_mtok = s.p.has_max_cost = 1;
    s.p.input_per_mtok = 1000.0;
    s.p.output_per_mtok = 2000.0;
    s.p.max_cost = 1.0;
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    uint64_t now = 500000;
    bk__pace_restore(&p, 100, 50, 120000, now); /* two minutes ago: cost only */
    bk__pace_restore(&p, 100, 50, 30000, now);  /* half a minute ago: also the window */
    bk__pace_restore(&p, 100, 50, 1000, now);
    CHECK_INT(p.tok_in, 300);
    CHECK_INT(p.tok_out, 150);
    CHECK(p.cost > 0.5999 && p.cost < 0.6001);
    CHECK_INT(p.win_req, 2);
    CHECK_INT(p.win_tok, 300);
    CHECK(!p.stopped);
    /* the estimate learned from the restored usage: 125 + 100 tokens, 0.325;
     * (1 - 0.6) / 0.325 = 1 more job fits the budget */
    CHECK_INT(bk__pace_allow(&p, 0, now), 1);
    /* the call of 30 s ago leaves the window at its bucket's end + 61 s */
    uint64_t b30 = (now - 30000) / 1000 * 1000;
    bk__pace_charge(&p, 8, now);
    CHECK_INT(bk__pace_allow(&p, 0, now + 1), 0); /* 10 in the window: rpm 10 */
    CHECK_INT(bk__pace_next(&p, 0, now + 1), b30 + 1000 + 61000);
    /* a budget spent before the restart stops the model at once */
    bk__pace q;
    bk__pace_init(&q, &s.m, NULL);
    for (int i = 0; i < 5; i++)
        bk__pace_restore(&q, 100, 50, 300000, now);
    CHECK(q.stopped);
    CHECK_INT(bk__pace_allow(&q, 0, now), 0);
    /* a clock younger than the call (a machine booted since): cost only */
    bk__pace r;
    bk__pace_init(&r, &s.m, NULL);
    bk__pace_restore(&r, 10, 10, 5000, 2000);
    CHECK_INT(r.win_req, 0);
    CHECK_INT(r.tok_in, 10);
}

/* Through the scheduler: two workers, rpm and concurrency held across both;
 * next_deadline names the time the paced model may send again. */
static void test_sched(void)
{
    Empq__Run run = EMPQ__RUN__INIT;
    Empq__RunSpec rs = EMPQ__RUN_SPEC__INIT;
    spec s[2];
    spec_init(&s[0], 0, 0, 0, 0);
    s[0].m.alias = (char *)"human";
    s[0].m.provider = (char *)"human";
    spec_init(&s[1], 3, 5, 0, 0);
    Empq__ModelSpec *pm[2] = {&s[0].m, &s[1].m};
    run.id = (char *)"r";
    run.spec = &rs;
    run.n_prompts = 20;
    rs.name = (char *)"r";
    rs.n_models = 2;
    rs.models = pm;
    bk__sched_opts o;
    bk__sched_opts_default(&o);
    o.lease_ms = 100000;
    o.heartbeat_ms = 1000000;
    o.seed = 1;
    bk__sched *sc = NULL;
    CHECK_INT(bk__sched_new(&sc, &o), EMPQ_OK);
    empq_error err = {0};
    bk__run *r = NULL;
    CHECK_INT(bk__sched_run_add(sc, &run, &r, &err), EMPQ_OK);
    unsigned w[2];
    for (int i = 0; i < 2; i++) {
        Empq__Hello h = EMPQ__HELLO__INIT;
        h.worker_id = (char *)(i ? "w1" : "w0");
        h.credit = 100;
        unsigned char id[2] = {'w', (unsigned char)('0' + i)};
        CHECK_INT(bk__sched_worker_hello(sc, id, 2, &h, 1000, &w[i], NULL), EMPQ_OK);
    }
    uint32_t jobs[100];
    bk__run *got;
    uint64_t now = 1000;
    size_t n0 = bk__sched_dispatch(sc, w[0], now, jobs, 100, &got);
    size_t gpt = 0;
    for (size_t i = 0; i < n0; i++)
        gpt += jobs[i] % 2 == 1;
    size_t n1 = bk__sched_dispatch(sc, w[1], now, jobs, 100, &got);
    for (size_t i = 0; i < n1; i++)
        gpt += jobs[i] % 2 == 1;
    CHECK_INT(gpt, 3);                 /* concurrency 3 over both workers */
    CHECK_INT(n0 + n1, 20 + 3);        /* every human job, 3 of gpt */
    /* finish the three gpt jobs: 2 more fit the rpm of 5 */
    for (uint32_t j = 1; j < 40; j += 2) {
        if (bk__jobtable_state(r->table, j) != BK_JOB_LEASED)
            continue;
        Empq__Outcome d = done(10, 10, 0);
        d.job = j;
        CHECK_INT(bk__sched_outcome(sc, bk__jobtable_worker(r->table, j), &d, now + 10), BK_APPLIED);
    }
    size_t more = bk__sched_dispatch(sc, w[0], now + 20, jobs, 100, &got);
    CHECK_INT(more, 2);
    for (size_t i = 0; i < more; i++) {
        Empq__Outcome d = done(10, 10, 0);
        d.job = jobs[i];
        bk__sched_outcome(sc, w[0], &d, now + 30);
    }
    CHECK_INT(bk__sched_dispatch(sc, w[1], now + 40, jobs, 100, &got), 0);
    /* the loop sleeps until the first bucket leaves the minute */
    CHECK_INT(bk__sched_next_deadline(sc), 2000 + 61000);
    CHECK_INT(bk__sched_dispatch(sc, w[1], 62999, jobs, 100, &got), 0);
    CHECK_INT(bk__sched_dispatch(sc, w[1], 63000, jobs, 100, &got), 3);
    CHECK_INT(r->pace[1].tok_in, 50);
    CHECK_INT(r->pace[0].tok_in, 0);
    bk__sched_free(&sc);
}

int main(void)
{
    RUN(test_unlimited);
    RUN(test_rpm_window);
    RUN(test_tpm_estimate);
    RUN(test_concurrency_and_429);
    RUN(test_429_share);
    RUN(test_ghosts);
    RUN(test_cost);
    RUN(test_cost_reasoning_cached);
    RUN(test_restore);
    RUN(test_sched);
    CHECK_DONE();
}
