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
    /* bk__pace_stop, the one way a model stops: asked from now on, 0; the
     * first reason stays */
    CHECK_INT(bk__pace_stop(&p, "insufficient_quota: you exceeded your quota"), 1);
    CHECK(bk__pace_active(&p));
    CHECK_INT(bk__pace_allow(&p, 0, 20), 0);
    CHECK_INT(bk__pace_next(&p, 0, 20), UINT64_MAX);
    CHECK_INT(bk__pace_stop(&p, "max_cost"), 0);
    CHECK_STR(p.stop_reason, "insufficient_quota: you exceeded your quota");
    bk__pace q;
    bk__pace_init(&q, &s.m, NULL);
    CHECK_INT(bk__pace_stop(&q, NULL), 1);
    CHECK_STR(q.stop_reason, "stopped");
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
    CHECK_STR(p.stop_reason, "max_cost");
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

/* bk__pace_unusable: shown as soon as one worker reports; the model stops
 * once every serving worker has reported it for hold_ms without a break. */
static void test_unusable(void)
{
    spec s;
    spec_init(&s, 0, 0, 0, 0);
    bk__pace p;
    bk__pace_init(&p, &s.m, NULL);
    CHECK_INT(bk__pace_unusable(&p, 1, 2, "key variable K unset on w0", 1000, 5000), 0);
    CHECK_STR(p.unusable, "key variable K unset on w0");
    CHECK_INT(p.unusable_since, 0); /* not every worker: no clock */
    CHECK_INT(bk__pace_unusable(&p, 2, 2, "key variable K unset on w0", 2000, 5000), 0);
    CHECK_INT(p.unusable_since, 2000);
    CHECK_INT(bk__pace_unusable(&p, 2, 2, "key variable K unset on w0", 6999, 5000), 0);
    /* a worker that can call it joins: the clock starts again */
    CHECK_INT(bk__pace_unusable(&p, 2, 3, "key variable K unset on w0", 7000, 5000), 0);
    CHECK_INT(p.unusable_since, 0);
    CHECK_INT(bk__pace_unusable(&p, 2, 2, "key variable K unset on w0", 8000, 5000), 0);
    CHECK_INT(bk__pace_unusable(&p, 2, 2, "key variable K unset on w0", 12999, 5000), 0);
    CHECK(!p.stopped);
    CHECK_INT(bk__pace_unusable(&p, 2, 2, "key variable K unset on w0", 13000, 5000), 1);
    CHECK(p.stopped);
    CHECK_STR(p.stop_reason, "unusable: key variable K unset on w0");
    CHECK_INT(bk__pace_allow(&p, 0, 13001), 0);
    CHECK_INT(bk__pace_unusable(&p, 2, 2, "x", 20000, 5000), 0); /* stopped once */
    /* nobody reports: cleared */
    CHECK_INT(bk__pace_unusable(&p, 0, 2, NULL, 21000, 5000), 0);
    CHECK_STR(p.unusable, "");
    /* no serving worker at all never stops a model */
    bk__pace q;
    bk__pace_init(&q, &s.m, NULL);
    CHECK_INT(bk__pace_unusable(&q, 0, 0, NULL, 1000, 0), 0);
    CHECK(!q.stopped);
}

/* A scheduler with one run of two models (a, b) over 10 prompts and two
 * workers serving every model. */
typedef struct two {
    spec s[2];
    Empq__ModelSpec *pm[2];
    Empq__Run run;
    Empq__RunSpec rs;
    bk__run *r;
    unsigned w[2];
} two;

static bk__sched *sched_two(two *t, uint32_t unusable_ms)
{
    spec *s = t->s;
    Empq__ModelSpec **pm = t->pm;
    Empq__Run *run = &t->run;
    Empq__RunSpec *rs = &t->rs;
    bk__run **r = &t->r;
    unsigned *w = t->w;
    spec_init(&s[0], 0, 0, 0, 0);
    s[0].m.alias = (char *)"a";
    spec_init(&s[1], 0, 0, 0, 0);
    s[1].m.alias = (char *)"b";
    pm[0] = &s[0].m;
    pm[1] = &s[1].m;
    empq__run__init(run);
    empq__run_spec__init(rs);
    run->id = (char *)"r";
    run->spec = rs;
    run->n_prompts = 10;
    rs->name = (char *)"r";
    rs->n_models = 2;
    rs->models = pm;
    bk__sched_opts o;
    bk__sched_opts_default(&o);
    o.heartbeat_ms = 1000000;
    o.unusable_ms = unusable_ms;
    o.seed = 1;
    bk__sched *sc = NULL;
    CHECK_INT(bk__sched_new(&sc, &o), EMPQ_OK);
    empq_error err = {0};
    CHECK_INT(bk__sched_run_add(sc, run, r, &err), EMPQ_OK);
    for (int i = 0; i < 2; i++) {
        Empq__Hello h = EMPQ__HELLO__INIT;
        h.worker_id = (char *)(i ? "w1" : "w0");
        h.credit = 4;
        unsigned char id[2] = {'w', (unsigned char)('0' + i)};
        CHECK_INT(bk__sched_worker_hello(sc, id, 2, &h, 1000, &w[i], NULL), EMPQ_OK);
    }
    return sc;
}

/* An outcome with model_fatal stops its model at once for every worker;
 * leased jobs of it still finish; dead jobs are counted by reason. */
static void test_sched_model_fatal(void)
{
    static two tw;
    bk__sched *sc = sched_two(&tw, 10000);
    bk__run *r = tw.r;
    unsigned *w = tw.w;
    uint32_t jobs[16];
    bk__run *got;
    CHECK_INT(bk__sched_dispatch(sc, w[0], 1000, jobs, 16, &got), 4); /* 0 1 2 3: a b a b */
    Empq__Outcome d = EMPQ__OUTCOME__INIT;
    d.run_id = (char *)"r";
    d.job = 1;
    d.kind = EMPQ__OUTCOME_KIND__OUTCOME_DEAD;
    d.reason = (char *)"insufficient_quota: You exceeded your current quota";
    d.has_model_fatal = d.model_fatal = 1;
    CHECK_INT(bk__sched_outcome(sc, w[0], &d, 1001), BK_APPLIED);
    CHECK(r->pace[1].stopped);
    CHECK_STR(r->pace[1].stop_reason, "insufficient_quota: You exceeded your current quota");
    CHECK(!r->pace[0].stopped);
    /* worker 1 gets only model a from now on */
    size_t n = bk__sched_dispatch(sc, w[1], 1002, jobs, 16, &got);
    CHECK_INT(n, 4);
    for (size_t i = 0; i < n; i++)
        CHECK_INT(jobs[i] % 2, 0);
    /* the leased job 3 of b still finishes */
    Empq__Outcome ok = done(1, 1, 0);
    ok.job = 3;
    CHECK_INT(bk__sched_outcome(sc, w[0], &ok, 1003), BK_APPLIED);
    CHECK_INT(bk__jobtable_counts(r->table, 1).done, 1);
    CHECK_INT(bk__jobtable_counts(r->table, 1).leased, 0);
    CHECK_INT(bk__jobtable_counts(r->table, 1).pending, 8);
    /* dead reasons, keyed up to the first ": " */
    CHECK_INT(r->dead_reasons[1].n, 1);
    CHECK_STR(r->dead_reasons[1].key[0], "insufficient_quota");
    CHECK_INT(r->dead_reasons[1].count[0], 1);
    for (int i = 0; i < 40; i++) {
        char why[32];
        snprintf(why, sizeof why, "reason %d: x", i % 20);
        bk__sched_count_dead(r, 0, why);
    }
    bk__sched_count_dead(r, 0, NULL);
    CHECK_INT(r->dead_reasons[0].n, BK_REASONS_MAX + 1);
    CHECK_STR(r->dead_reasons[0].key[0], "reason 0");
    CHECK_STR(r->dead_reasons[0].key[BK_REASONS_MAX], "other");
    CHECK_INT(r->dead_reasons[0].count[0], 2);
    CHECK_INT(r->dead_reasons[0].count[BK_REASONS_MAX], 40 - 2 * BK_REASONS_MAX + 1);
    bk__sched_free(&sc);
}

/* Heartbeat reports of an unusable model: shown at the next gathering,
 * the model stops once every live worker serving it has reported it for
 * unusable_ms, a worker that leaves takes its report with it. */
static void test_sched_unusable(void)
{
    static two tw;
    bk__sched *sc = sched_two(&tw, 3000);
    bk__run *r = tw.r;
    unsigned *w = tw.w;
    Empq__ModelProblem mp = EMPQ__MODEL_PROBLEM__INIT;
    mp.run_id = (char *)"r";
    mp.model = 1;
    mp.reason = (char *)"model b: API key variable B_KEY is not set on worker w0";
    Empq__ModelProblem *mpp[1] = {&mp};
    Empq__Heartbeat hb = EMPQ__HEARTBEAT__INIT;
    hb.n_unusable = 1;
    hb.unusable = mpp;
    CHECK_INT(bk__sched_worker_unusable(sc, w[0], &hb), EMPQ_OK);
    bk__tick t;
    bk__sched_tick(sc, 1000, &t);
    CHECK_STR(r->pace[1].unusable, "model b: API key variable B_KEY is not set on worker w0");
    CHECK_INT(r->pace[1].unusable_workers, 1);
    CHECK_INT(r->pace[1].serving_workers, 2);
    CHECK_STR(r->pace[0].unusable, "");
    bk__sched_tick(sc, 9000, &t);
    CHECK(!r->pace[1].stopped); /* worker 1 can call it */
    /* worker 1 reports it too: 3 s later the model stops */
    CHECK_INT(bk__sched_worker_unusable(sc, w[1], &hb), EMPQ_OK);
    bk__sched_tick(sc, 10000, &t);
    bk__sched_tick(sc, 12999, &t);
    CHECK(!r->pace[1].stopped);
    bk__sched_tick(sc, 13300, &t); /* the next gathering (every 250 ms) after the 3 s */
    CHECK(r->pace[1].stopped);
    CHECK_STR(r->pace[1].stop_reason, "unusable: model b: API key variable B_KEY is not set on worker w0");
    uint32_t jobs[16];
    bk__run *got;
    size_t n = bk__sched_dispatch(sc, w[0], 13301, jobs, 16, &got);
    CHECK_INT(n, 4);
    for (size_t i = 0; i < n; i++)
        CHECK_INT(jobs[i] % 2, 0);
    /* a heartbeat without reports clears the worker's; a removed worker's go with it */
    Empq__Heartbeat none = EMPQ__HEARTBEAT__INIT;
    CHECK_INT(bk__sched_worker_unusable(sc, w[0], &none), EMPQ_OK);
    bk__sched_worker_remove(sc, w[1]);
    bk__sched_tick(sc, 14000, &t);
    CHECK_STR(r->pace[1].unusable, "");
    CHECK(r->pace[1].stopped); /* a stop is final */
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
    RUN(test_unusable);
    RUN(test_sched_model_fatal);
    RUN(test_sched_unusable);
    CHECK_DONE();
}
