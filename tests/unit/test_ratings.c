/* test_ratings.c: rating slots against a real redis-server: claim (least
 * filled, resume, full), the answer rules (not started, not yours, stale,
 * duplicate, bad rating), pages, reclaim with a moved clock (no sleeping),
 * the plan refused twice, the export, and the read-only overview. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "empq/assign.h"
#include "empq/ratings.h"
#include "empq/store.h"
#include "realredis.h"

#define N_PROMPTS 20
#define N_MODELS 2
static const char *RUN = "r-test-ratings";

/* A finished run: 20 prompts, sources "human" and "m1", every result;
 * rating: the spec's rating section (may be NULL). */
static void make_run(empq_store *s, Empq__RatingSpec *rating)
{
    static const char *emo[4] = {"sad", "joyful", "afraid", "proud"};
    Empq__ModelSpec m0 = EMPQ__MODEL_SPEC__INIT, m1 = EMPQ__MODEL_SPEC__INIT;
    m0.alias = "human";
    m0.provider = "human";
    m1.alias = "m1";
    m1.provider = "openai";
    Empq__ModelSpec *models[2] = {&m0, &m1};
    Empq__RunSpec spec = EMPQ__RUN_SPEC__INIT;
    spec.name = "t";
    spec.n_models = 2;
    spec.models = models;
    spec.rating = rating;
    Empq__Run run = EMPQ__RUN__INIT;
    run.id = (char *)RUN;
    run.spec = &spec;
    run.n_prompts = N_PROMPTS;
    Empq__Prompt pr[N_PROMPTS], *pp[N_PROMPTS];
    char ids[N_PROMPTS][16], texts[N_PROMPTS][32];
    for (int i = 0; i < N_PROMPTS; i++) {
        empq__prompt__init(&pr[i]);
        pr[i].index = (uint32_t)i;
        snprintf(ids[i], sizeof ids[i], "d%d", i);
        snprintf(texts[i], sizeof texts[i], "speaker %d", i);
        pr[i].id = ids[i];
        pr[i].emotion = (char *)emo[i % 4];
        pr[i].sentiment = i % 4 == 1 || i % 4 == 3 ? "positive" : "negative";
        pr[i].situation = "a situation";
        pr[i].prompt = texts[i];
        pp[i] = &pr[i];
    }
    CHECK_INT(empq_store_run_create(s, &run, pp, N_PROMPTS), EMPQ_OK);
    Empq__Result res[N_PROMPTS * N_MODELS];
    Empq__Generation gen[N_PROMPTS * N_MODELS];
    empq_store_put puts[N_PROMPTS * N_MODELS];
    char resp[N_PROMPTS * N_MODELS][32];
    for (int j = 0; j < N_PROMPTS * N_MODELS; j++) {
        empq__result__init(&res[j]);
        empq__generation__init(&gen[j]);
        snprintf(resp[j], sizeof resp[j], "resp-%d-%d", j / N_MODELS, j % N_MODELS);
        gen[j].text = resp[j];
        res[j].run_id = (char *)RUN;
        res[j].job = (uint32_t)j;
        res[j].prompt = (uint32_t)(j / N_MODELS);
        res[j].model = (uint32_t)(j % N_MODELS);
        res[j].gen = &gen[j];
        puts[j].result = &res[j];
        puts[j].cache_key = NULL;
    }
    CHECK_INT(empq_store_results_put(s, puts, N_PROMPTS * N_MODELS, NULL), EMPQ_OK);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static empq_assign_plan *make_plan(void)
{
    const char *conds[2] = {"human", "m1"};
    const char *emo[N_PROMPTS];
    static const char *e4[4] = {"sad", "joyful", "afraid", "proud"};
    for (int i = 0; i < N_PROMPTS; i++)
        emo[i] = e4[i % 4];
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    o.checks[0] = 2; /* attention check at position 2 */
    o.n_checks = 1;
    empq_assign_plan *p = NULL;
    CHECK_INT(empq_assign_build(conds, 2, emo, N_PROMPTS, NULL, &o, &p, NULL), EMPQ_OK);
    CHECK_INT(p->n_slots, 4); /* 2 conditions x 2 batches */
    return p;
}

static int claim(empq_store *s, const char *pid, uint64_t now, uint32_t *slot)
{
    int outcome = -1;
    empq_error err = {0};
    CHECK_INT(empq_ratings_claim(s, RUN, pid, "study", "sess", EMPQ_RATINGS_PROLIFIC, now, &outcome, slot, &err), EMPQ_OK);
    return outcome;
}

static int answer(empq_store *s, const char *pid, uint32_t slot, uint32_t pos, int rating,
                  uint64_t now)
{
    int outcome = -1;
    empq_error err = {0};
    CHECK_INT(empq_ratings_answer(s, RUN, pid, slot, pos, rating, now, &outcome, &err), EMPQ_OK);
    return outcome;
}

int main(void)
{
    realredis r;
    realredis_start(&r);
    empq_store *s = NULL;
    empq_error err = {0};
    CHECK_INT(empq_store_open(&s, r.url, 2000, &err), EMPQ_OK);
    make_run(s, NULL);
    empq_assign_plan *plan = make_plan();
    empq_ratings_config cfg;
    empq_ratings_config_default(&cfg);
    cfg.timeout_ms = 1000;
    cfg.completion_code = "XYZ-1";

    /* no plan yet */
    uint32_t slot = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    CHECK_INT(claim(s, "p1", 1000, &slot), EMPQ_RATINGS_NO_PLAN);
    empq_ratings_config bad = cfg;
    bad.completion_code = "no spaces";
    CHECK_INT(empq_ratings_store_plan(s, RUN, plan, 2, 1, &bad, 0, &err), EMPQ_EINVAL);
    CHECK_INT(empq_ratings_store_plan(s, RUN, plan, 2, 1, &cfg, 0, &err), EMPQ_OK);
    CHECK_INT(empq_ratings_store_plan(s, RUN, plan, 2, 1, &cfg, 0, &err), EMPQ_EEXIST);
    CHECK_INT(empq_ratings_store_plan(s, RUN, plan, 2, 1, &cfg, 1, &err), EMPQ_OK);

    /* claims: least-filled condition first, resume, full */
    CHECK_INT(claim(s, "p1", 1000, &s1), EMPQ_RATINGS_OK);
    CHECK_INT(plan->slots[s1].condition, 0);
    CHECK_INT(claim(s, "p1", 1001, &slot), EMPQ_RATINGS_RESUMED);
    CHECK_INT(slot, s1);
    CHECK_INT(claim(s, "p2", 1000, &s2), EMPQ_RATINGS_OK);
    CHECK_INT(plan->slots[s2].condition, 1);
    CHECK_INT(claim(s, "p3", 1000, &s3), EMPQ_RATINGS_OK);
    CHECK_INT(plan->slots[s3].condition, 0);
    CHECK_INT(claim(s, "p4", 1000, &s4), EMPQ_RATINGS_OK);
    CHECK_INT(plan->slots[s4].condition, 1);
    CHECK(s1 != s2 && s1 != s3 && s1 != s4 && s2 != s3 && s2 != s4 && s3 != s4);
    CHECK_INT(claim(s, "p5", 1000, &slot), EMPQ_RATINGS_FULL);
    int outcome = 0;
    CHECK_INT(empq_ratings_claim(s, RUN, "bad id!", NULL, NULL, 0, 1000, &outcome, &slot, &err),
              EMPQ_EINVAL);
    /* the plan cannot be replaced once claimed */
    CHECK_INT(empq_ratings_store_plan(s, RUN, plan, 2, 1, &cfg, 1, &err), EMPQ_EEXIST);
    CHECK_CONTAINS(err.msg, "claimed");

    /* pages and answers */
    empq_ratings_page pg;
    CHECK_INT(empq_ratings_view(s, RUN, "p1", 1100, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_INSTRUCTIONS);
    CHECK_INT(pg.n, 11);
    empq_ratings_page_clear(&pg);
    CHECK_INT(answer(s, "p1", s1, 0, 3, 1100), EMPQ_RATINGS_NOT_STARTED);
    CHECK_INT(empq_ratings_start(s, RUN, "p1", 1100, &outcome, &err), EMPQ_OK);
    CHECK_INT(outcome, EMPQ_RATINGS_OK);
    CHECK_INT(empq_ratings_answer(s, RUN, "p1", s1, 0, 4, 1100, &outcome, &err), EMPQ_EINVAL);
    CHECK_INT(empq_ratings_answer(s, RUN, "p1", s1, 0, 0, 1100, &outcome, &err), EMPQ_EINVAL);
    CHECK_INT(answer(s, "p1", s2, 0, 3, 1100), EMPQ_RATINGS_NOT_YOURS);
    CHECK_INT(answer(s, "p1", s1, 1, 3, 1100), EMPQ_RATINGS_STALE);
    CHECK_INT(answer(s, "nobody", s1, 0, 3, 1100), EMPQ_RATINGS_UNKNOWN);
    CHECK_INT(empq_ratings_view(s, RUN, "p1", 1150, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_ITEM);
    CHECK_INT(pg.position, 0);
    CHECK_INT(pg.is_check, 0);
    int32_t e0 = plan->slots[s1].entries[0];
    char want[32];
    snprintf(want, sizeof want, "resp-%d-0", e0);
    CHECK_STR(pg.response, want);
    empq_ratings_page_clear(&pg);
    CHECK_INT(answer(s, "p1", s1, 0, 3, 1200), EMPQ_RATINGS_OK);
    CHECK_INT(answer(s, "p1", s1, 0, 3, 1200), EMPQ_RATINGS_DUPLICATE);
    CHECK_INT(answer(s, "p1", s1, 0, 2, 1200), EMPQ_RATINGS_STALE);
    CHECK_INT(answer(s, "p1", s1, 1, 1, 1300), EMPQ_RATINGS_OK);
    CHECK_INT(empq_ratings_view(s, RUN, "p1", 1400, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_ITEM);
    CHECK_INT(pg.is_check, 1);
    int expect = EMPQ_ASSIGN_CHECK_EXPECT(plan->slots[s1].entries[2]);
    CHECK_STR(pg.response, empq_assign_check_response(expect));
    empq_ratings_page_clear(&pg);
    CHECK_INT(answer(s, "p1", s1, 2, expect, 1500), EMPQ_RATINGS_OK);

    /* reclaim with a moved clock: p2, p3, p4 idle since 1000 (deadline
     * 2000); p1 active at 1500 (deadline 2500) */
    size_t n = 99;
    CHECK_INT(empq_ratings_reclaim(s, RUN, 1999, &n, &err), EMPQ_OK);
    CHECK_INT(n, 0);
    CHECK_INT(empq_ratings_start(s, RUN, "p3", 1999, &outcome, &err), EMPQ_OK); /* p3 active */
    CHECK_INT(answer(s, "p3", s3, 0, 2, 1999), EMPQ_RATINGS_OK);
    CHECK_INT(empq_ratings_reclaim(s, RUN, 2000, &n, &err), EMPQ_OK);
    CHECK_INT(n, 2); /* p2, p4 */
    CHECK_INT(claim(s, "p2", 2100, &slot), EMPQ_RATINGS_EXPIRED);
    CHECK_INT(slot, s2);
    CHECK_INT(answer(s, "p2", s2, 0, 3, 2100), EMPQ_RATINGS_EXPIRED);
    CHECK_INT(empq_ratings_view(s, RUN, "p2", 2100, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_EXPIRED);
    empq_ratings_page_clear(&pg);
    /* the freed slots go to new participants, condition 1 (least filled) */
    CHECK_INT(claim(s, "p6", 2100, &slot), EMPQ_RATINGS_OK);
    CHECK(slot == s2 || slot == s4);
    empq_ratings_counts cnt;
    CHECK_INT(empq_ratings_counts_get(s, RUN, 2100, &cnt, &err), EMPQ_OK);
    CHECK_INT(cnt.slots, 4);
    CHECK_INT(cnt.open, 1);
    CHECK_INT(cnt.active, 3);
    CHECK_INT(cnt.reclaimed, 2);
    CHECK_INT(cnt.ratings, 4); /* p1: 3, p3: 1 */

    /* p1 finishes (the clock moves in steps under the timeout) */
    for (uint32_t pos = 3; pos < 11; pos++)
        CHECK_INT(answer(s, "p1", s1, pos, 1 + (int)pos % 3, 2100 + pos * 100), EMPQ_RATINGS_OK);
    CHECK_INT(answer(s, "p1", s1, 11, 1, 3300), EMPQ_RATINGS_FINISHED);
    CHECK_INT(answer(s, "p1", s1, 10, 1 + 10 % 3, 3300), EMPQ_RATINGS_DUPLICATE);
    CHECK_INT(empq_ratings_view(s, RUN, "p1", 9999, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_DONE);
    CHECK_STR(pg.completion_code, "XYZ-1");
    empq_ratings_page_clear(&pg);
    CHECK_INT(empq_ratings_start(s, RUN, "p1", 9999, &outcome, &err), EMPQ_OK);
    CHECK_INT(outcome, EMPQ_RATINGS_FINISHED);

    /* the overview at 3300: p1 finished (condition 0); p1's answers
     * reclaimed p3 (0) and p6 (1) on the way, after p2 and p4 (1); only
     * p1's first answer has a shown time (viewed at 1150, answered 1200) */
    empq_ratings_overview ov;
    CHECK_INT(empq_ratings_overview_get(s, RUN, 3300, &ov, &err), EMPQ_OK);
    CHECK_INT(ov.n_conditions, 2);
    CHECK_STR(ov.cond[0].name, "human");
    CHECK_STR(ov.cond[1].name, "m1");
    CHECK_INT(ov.cond[0].slots, 2);
    CHECK_INT(ov.cond[0].claimed, 1);
    CHECK_INT(ov.cond[0].finished, 1);
    CHECK_INT(ov.cond[0].idle, 0);
    CHECK_INT(ov.cond[0].reclaimed, 1);
    CHECK_INT(ov.cond[0].checks, 1);
    CHECK_INT(ov.cond[0].checks_failed, 0);
    CHECK_INT(ov.cond[1].slots, 2);
    CHECK_INT(ov.cond[1].claimed, 0);
    CHECK_INT(ov.cond[1].reclaimed, 3);
    CHECK_INT(ov.n_participants, 5);
    int finished = 0, reclaimed = 0;
    for (size_t i = 0; i < ov.n_participants; i++) {
        if (ov.part[i].state == EMPQ_RATINGS_P_FINISHED) {
            CHECK_STR(ov.part[i].pid, "p1");
            CHECK_INT(ov.part[i].answered, 11);
            CHECK_INT(ov.part[i].checks_passed, 1);
            finished++;
        }
        reclaimed += ov.part[i].state == EMPQ_RATINGS_P_RECLAIMED;
    }
    CHECK_INT(finished, 1);
    CHECK_INT(reclaimed, 4);
    CHECK_INT(ov.n_timed, 1);
    CHECK(ov.median_ms == 50.0);
    CHECK_INT(ov.timeout_ms, 1000);
    empq_ratings_overview_clear(&ov);
    empq_ratings_overview_clear(&ov);
    empq_ratings_overview none;
    CHECK_INT(empq_ratings_overview_get(s, "r-none", 3300, &none, &err), EMPQ_ENOTFOUND);
    empq_ratings_overview_clear(NULL);

    /* the export: p1's ten ratings (the check is not a rating) */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/export", r.dir);
    empq_ratings_export_stats st;
    CHECK_INT(empq_ratings_export(s, RUN, dir, 0, &st, &err), EMPQ_OK);
    CHECK_INT(st.slots, 4);
    CHECK_INT(st.done, 1);
    CHECK_INT(st.ratings, 10);
    CHECK_INT(st.dialogues, 20);
    CHECK_INT(st.checks, 1);
    CHECK_INT(st.checks_failed, 0);
    char path[256], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/ratings-long.csv", dir);
    CHECK_INT(empq_read_file(path, &text, &len, &err), EMPQ_OK);
    CHECK(starts_with(text, "participant,condition,batch,item,position,rating,"));
    CHECK_CONTAINS(text, "p1,human,");
    CHECK(strstr(text, "p3,") == NULL); /* unfinished: left out */
    free(text);
    snprintf(path, sizeof path, "%s/ratings.csv", dir);
    CHECK_INT(empq_read_file(path, &text, &len, &err), EMPQ_OK);
    CHECK(starts_with(text, "part_no,annotator_human,annotator_m1,dialog_id,emotion,sentiment,"
                            "situation,speaker_uttr,response_human,response_m1,rating_human,"
                            "rating_m1\r\n"));
    free(text);
    /* p3 and p6 went idle while p1 finished: reclaimed too */
    CHECK_INT(empq_ratings_counts_get(s, RUN, 9999, &cnt, &err), EMPQ_OK);
    CHECK_INT(cnt.reclaimed, 4);
    CHECK_INT(cnt.done, 1);
    CHECK_INT(cnt.ratings, 11); /* p1's 10 and the check */
    CHECK_INT(claim(s, "p7", 9999, &slot), EMPQ_RATINGS_OK);
    CHECK_INT(empq_ratings_start(s, RUN, "p7", 9999, &outcome, &err), EMPQ_OK);
    CHECK_INT(empq_ratings_view(s, RUN, "p7", 9999, &pg, &err), EMPQ_OK);
    uint32_t pos7 = pg.position;
    empq_ratings_page_clear(&pg);
    CHECK_INT(answer(s, "p7", slot, pos7, 2, 9999), EMPQ_RATINGS_OK);
    CHECK_INT(empq_ratings_export(s, RUN, dir, 1, &st, &err), EMPQ_OK);
    CHECK_INT(st.ratings, 11); /* p7's one rating too */
    CHECK_INT(st.partial, 1);
    CHECK_INT(empq_ratings_export(s, "r-none", dir, 0, &st, &err), EMPQ_ENOTFOUND);

    /* p7, idle since 9999, past its deadline at 20000: the overview says
     * so and reclaims nothing (twice the same) */
    for (int twice = 0; twice < 2; twice++) {
        CHECK_INT(empq_ratings_overview_get(s, RUN, 20000, &ov, &err), EMPQ_OK);
        uint32_t c7 = plan->slots[slot].condition;
        CHECK_INT(ov.cond[c7].idle, 1);
        CHECK_INT(ov.cond[0].reclaimed + ov.cond[1].reclaimed, 4);
        int idle = 0;
        for (size_t i = 0; i < ov.n_participants; i++)
            if (ov.part[i].state == EMPQ_RATINGS_P_IDLE) {
                CHECK_STR(ov.part[i].pid, "p7");
                idle++;
            }
        CHECK_INT(idle, 1);
        empq_ratings_overview_clear(&ov);
    }

    /* a study with consent and end-of-study questions (a second run) */
    RUN = "r-test-ratings-q";
    Empq__RatingQuestion q0 = EMPQ__RATING_QUESTION__INIT, q1 = EMPQ__RATING_QUESTION__INIT;
    char *choices[] = {"young", "old"};
    q0.id = "age";
    q0.text = "Age?";
    q0.type = "choice";
    q0.n_choices = 2;
    q0.choices = choices;
    q0.has_required = q0.required = 1;
    q1.id = "note";
    q1.text = "Note?";
    q1.type = "text";
    q1.has_max_length = 1;
    q1.max_length = 5;
    Empq__RatingQuestion *qs[] = {&q0, &q1};
    Empq__RatingSpec rs = EMPQ__RATING_SPEC__INIT;
    rs.consent = "Do you agree?";
    rs.n_questions = 2;
    rs.questions = qs;
    make_run(s, &rs);
    Empq__RunSpec qspec = EMPQ__RUN_SPEC__INIT;
    qspec.rating = &rs;
    empq_ratings_config_from_spec(&cfg, &qspec);
    CHECK_INT(cfg.consent, 1);
    CHECK_INT(cfg.questions, 2);
    CHECK_INT(empq_ratings_store_plan(s, RUN, plan, 2, 1, &cfg, 0, &err), EMPQ_OK);
    CHECK_INT(claim(s, "q1", 1000, &slot), EMPQ_RATINGS_NO_CONSENT); /* nothing claimed */
    CHECK_INT(empq_ratings_counts_get(s, RUN, 1000, &cnt, &err), EMPQ_OK);
    CHECK_INT(cnt.claimed, 0);
    CHECK_INT(cnt.open, 4);
    CHECK_INT(empq_ratings_claim(s, RUN, "q1", NULL, NULL, EMPQ_RATINGS_CONSENTED, 1000, &outcome,
                                 &slot, &err), EMPQ_OK);
    CHECK_INT(outcome, EMPQ_RATINGS_OK);
    CHECK_INT(claim(s, "q1", 1000, &s1), EMPQ_RATINGS_RESUMED); /* resuming needs no consent again */
    const char *vals[2] = {"1", "ok"};
    CHECK_INT(empq_ratings_finish(s, RUN, "q1", &rs, vals, 1000, &outcome, &err), EMPQ_OK);
    CHECK_INT(outcome, EMPQ_RATINGS_NOT_DUE);
    CHECK_INT(empq_ratings_start(s, RUN, "q1", 1000, &outcome, &err), EMPQ_OK);
    for (uint32_t pos = 0; pos < plan->slots[slot].n; pos++) {
        int32_t e = plan->slots[slot].entries[pos];
        CHECK_INT(answer(s, "q1", slot, pos, EMPQ_ASSIGN_IS_CHECK(e) ? EMPQ_ASSIGN_CHECK_EXPECT(e) : 2,
                         1000 + pos), EMPQ_RATINGS_OK);
    }
    CHECK_INT(empq_ratings_view(s, RUN, "q1", 1100, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_QUESTIONS);
    CHECK_INT(pg.prolific, 0);
    empq_ratings_page_clear(&pg);
    CHECK_INT(empq_ratings_counts_get(s, RUN, 1100, &cnt, &err), EMPQ_OK);
    CHECK_INT(cnt.done, 0);
    /* malformed answers: refused, nothing stored */
    const char *bad1[2] = {NULL, "hi"}, *bad2[2] = {"2", NULL}, *bad3[2] = {"1", "toolong"},
               *bad4[2] = {"1", "a\xff"}, *bad5[2] = {"x", NULL}, *bad6[2] = {"0", "a\x01"},
               *bad7[2] = {"0", "\xed\xa0\x80"}; /* a surrogate */
    const char *const *bads[] = {bad1, bad2, bad3, bad4, bad5, bad6, bad7};
    const char *why[] = {"needs an answer", "choices", "at most 5", "not UTF-8", "choices",
                         "control", "not UTF-8"};
    for (size_t i = 0; i < 7; i++) {
        CHECK_INT(empq_ratings_finish(s, RUN, "q1", &rs, bads[i], 1100, &outcome, &err), EMPQ_EINVAL);
        CHECK_CONTAINS(err.msg, why[i]);
    }
    CHECK_INT(empq_ratings_counts_get(s, RUN, 1100, &cnt, &err), EMPQ_OK);
    CHECK_INT(cnt.done, 0);
    const char *good[2] = {"1", "ok \xc3\xa9!"}; /* 5 characters, 6 bytes */
    CHECK_INT(empq_ratings_finish(s, RUN, "q1", &rs, good, 1200, &outcome, &err), EMPQ_OK);
    CHECK_INT(outcome, EMPQ_RATINGS_OK);
    CHECK_INT(empq_ratings_finish(s, RUN, "q1", &rs, good, 1300, &outcome, &err), EMPQ_OK);
    CHECK_INT(outcome, EMPQ_RATINGS_FINISHED);
    CHECK_INT(empq_ratings_view(s, RUN, "q1", 1300, &pg, &err), EMPQ_OK);
    CHECK_INT(pg.kind, EMPQ_PAGE_DONE);
    empq_ratings_page_clear(&pg);
    CHECK_INT(empq_ratings_counts_get(s, RUN, 1300, &cnt, &err), EMPQ_OK);
    CHECK_INT(cnt.done, 1);
    CHECK_INT(empq_ratings_export(s, RUN, dir, 0, &st, &err), EMPQ_OK);
    snprintf(path, sizeof path, "%s/answers.csv", dir);
    CHECK_INT(empq_read_file(path, &text, &len, &err), EMPQ_OK);
    CHECK(starts_with(text, "participant,slot,condition,status,route,study_id,session_id,"
                            "consented_at,done_at,age,note\r\n"));
    CHECK_CONTAINS(text, ",done,link,,,");
    CHECK_CONTAINS(text, ",old,ok \xc3\xa9!\r\n");
    free(text);

    empq_assign_free(&plan);
    empq_store_close(&s);
    realredis_stop(&r);
    CHECK_DONE();
}
