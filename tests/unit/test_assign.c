/* test_assign.c: the rating plan: sizes, every response in exactly one
 * slot, emotions spread over the batches, the same batches in every
 * condition, shuffled orders, attention checks, overlap, determinism. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "empq/assign.h"

#define N_EMO 32
static const char *const EMOTIONS[N_EMO] = {
    "afraid", "angry", "annoyed", "anticipating", "anxious", "apprehensive", "ashamed", "caring",
    "confident", "content", "devastated", "disappointed", "disgusted", "embarrassed", "excited",
    "faithful", "furious", "grateful", "guilty", "hopeful", "impressed", "jealous", "joyful",
    "lonely", "nostalgic", "prepared", "proud", "sad", "sentimental", "surprised", "terrified",
    "trusting"};
static const char *const CONDS[5] = {"human", "fake-warm", "fake-formal", "fake-brief",
                                     "fake-curious"};

/* n prompts with uneven emotion counts (57-68 per emotion for 2,000, like
 * the Welivita-Pu release), in a scrambled order. */
static const char **make_emotions(uint32_t n, uint64_t seed)
{
    const char **e = calloc(n, sizeof *e);
    empq_rng r;
    empq_rng_seed(&r, seed);
    for (uint32_t i = 0; i < n; i++)
        e[i] = EMOTIONS[(i + (uint32_t)empq_rng_below(&r, 3) * (i % 7 == 0)) % N_EMO];
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)empq_rng_below(&r, i);
        const char *t = e[i - 1];
        e[i - 1] = e[j];
        e[j] = t;
    }
    return e;
}

static int emotion_index(const char *e)
{
    for (int i = 0; i < N_EMO; i++)
        if (strcmp(EMOTIONS[i], e) == 0)
            return i;
    return -1;
}

static empq_assign_plan *build(const char **emo, uint32_t n, const empq_assign_opts *o)
{
    empq_assign_plan *p = NULL;
    empq_error err = {0};
    int rc = empq_assign_build(CONDS, 5, emo, n, NULL, o, &p, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "build: %s\n", err.msg);
    CHECK_INT(rc, EMPQ_OK);
    return p;
}

/* The seed studies' size: 2,000 prompts, 5 conditions, 10 items, 1 rater. */
static void test_seed_study_size(void)
{
    const uint32_t n = 2000;
    const char **emo = make_emotions(n, 3);
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    o.participants = 200;
    o.seed = 42;
    empq_assign_plan *p = build(emo, n, &o);
    CHECK_INT(p->n_batches, 200);
    CHECK_INT(p->n_slots, 1000);
    CHECK_INT(p->n_used, 2000);

    /* every (prompt, condition) in exactly one slot; 200 slots per condition */
    uint8_t *seen = calloc((size_t)n * 5, 1);
    int per_cond[5] = {0};
    for (size_t s = 0; s < p->n_slots; s++) {
        const empq_assign_slot *sl = &p->slots[s];
        CHECK_INT(sl->n, 10);
        per_cond[sl->condition]++;
        for (uint32_t i = 0; i < sl->n; i++) {
            int32_t e = sl->entries[i];
            CHECK(e >= 0 && (uint32_t)e < n);
            CHECK_INT(seen[(size_t)e * 5 + sl->condition], 0);
            seen[(size_t)e * 5 + sl->condition] = 1;
        }
    }
    for (size_t i = 0; i < (size_t)n * 5; i++)
        CHECK_INT(seen[i], 1);
    for (int c = 0; c < 5; c++)
        CHECK_INT(per_cond[c], 200);

    /* the same batches in every condition: slot (c, b) holds batch b's prompts */
    for (size_t s = 0; s < p->n_slots; s++) {
        const empq_assign_slot *sl = &p->slots[s];
        uint32_t nb = p->batch_off[sl->batch + 1] - p->batch_off[sl->batch];
        CHECK_INT(nb, sl->n);
        for (uint32_t i = 0; i < sl->n; i++) {
            int found = 0;
            for (uint32_t j = p->batch_off[sl->batch]; j < p->batch_off[sl->batch + 1]; j++)
                found |= p->batch_prompts[j] == (uint32_t)sl->entries[i];
            CHECK(found);
        }
    }

    /* emotions spread: each emotion's count per batch is floor or ceil of
     * its share, and each batch holds 10 different emotions */
    int count[N_EMO] = {0};
    for (uint32_t i = 0; i < n; i++)
        count[emotion_index(emo[i])]++;
    for (uint32_t b = 0; b < p->n_batches; b++) {
        int in[N_EMO] = {0}, distinct = 0;
        for (uint32_t j = p->batch_off[b]; j < p->batch_off[b + 1]; j++)
            in[emotion_index(emo[p->batch_prompts[j]])]++;
        for (int e = 0; e < N_EMO; e++) {
            int lo = count[e] / 200, hi = (count[e] + 199) / 200;
            CHECK(in[e] >= lo && in[e] <= hi);
            distinct += in[e] > 0;
        }
        CHECK_INT(distinct, 10);
    }

    /* orders are shuffled per slot: not all in ascending prompt order */
    size_t sorted = 0;
    for (size_t s = 0; s < p->n_slots; s++) {
        int asc = 1;
        for (uint32_t i = 1; i < p->slots[s].n; i++)
            asc &= p->slots[s].entries[i - 1] < p->slots[s].entries[i];
        sorted += (size_t)asc;
    }
    CHECK(sorted < 5);
    /* and differ between conditions for the same batch */
    CHECK(memcmp(p->slots[0].entries, p->slots[200].entries, 10 * sizeof(int32_t)) != 0);
    free(seen);
    empq_assign_free(&p);
    CHECK(p == NULL);
    free(emo);
}

/* The same seed gives byte-identical files; another seed another plan. */
static void test_deterministic(void)
{
    const uint32_t n = 640;
    const char **emo = make_emotions(n, 9);
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    o.seed = 7;
    o.checks[0] = 3;
    o.n_checks = 1;
    empq_buf j1 = {0}, j2 = {0}, j3 = {0}, c1 = {0}, c2 = {0};
    empq_assign_plan *a = build(emo, n, &o), *b = build(emo, n, &o);
    CHECK_INT(empq_assign_write_json(a, "r-1", &j1, NULL), EMPQ_OK);
    CHECK_INT(empq_assign_write_json(b, "r-1", &j2, NULL), EMPQ_OK);
    CHECK_INT(empq_assign_write_csv(a, NULL, NULL, &c1, NULL), EMPQ_OK);
    CHECK_INT(empq_assign_write_csv(b, NULL, NULL, &c2, NULL), EMPQ_OK);
    CHECK_INT(j1.len, j2.len);
    CHECK(memcmp(j1.data, j2.data, j1.len) == 0);
    CHECK_INT(c1.len, c2.len);
    CHECK(memcmp(c1.data, c2.data, c1.len) == 0);
    CHECK_CONTAINS(j1.data, "\"attention_checks\": [3]");
    CHECK_CONTAINS(c1.data, "slot,condition,batch,replica,position,kind,prompt_index,item,emotion,"
                            "expected,situation,prompt,response\r\n");
    o.seed = 8;
    empq_assign_plan *c = build(emo, n, &o);
    CHECK_INT(empq_assign_write_json(c, "r-1", &j3, NULL), EMPQ_OK);
    CHECK(j3.len != j1.len || memcmp(j1.data, j3.data, j1.len) != 0);
    empq_assign_free(&a);
    empq_assign_free(&b);
    empq_assign_free(&c);
    empq_buf_free(&j1);
    empq_buf_free(&j2);
    empq_buf_free(&j3);
    empq_buf_free(&c1);
    empq_buf_free(&c2);
    free(emo);
}

/* Attention checks sit at their positions, ask for 1..3, all three occur. */
static void test_checks(void)
{
    const uint32_t n = 200;
    const char **emo = make_emotions(n, 4);
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    o.checks[0] = 0;
    o.checks[1] = 6;
    o.checks[2] = 11;
    o.n_checks = 3;
    empq_assign_plan *p = build(emo, n, &o);
    int asked[4] = {0};
    for (size_t s = 0; s < p->n_slots; s++) {
        const empq_assign_slot *sl = &p->slots[s];
        CHECK_INT(sl->n, 13);
        for (uint32_t i = 0; i < sl->n; i++) {
            int is = i == 0 || i == 6 || i == 11;
            CHECK_INT(EMPQ_ASSIGN_IS_CHECK(sl->entries[i]), is);
            if (is) {
                int x = EMPQ_ASSIGN_CHECK_EXPECT(sl->entries[i]);
                CHECK(x >= 1 && x <= 3);
                asked[x]++;
            }
        }
    }
    CHECK(asked[1] > 0 && asked[2] > 0 && asked[3] > 0);
    CHECK_CONTAINS(empq_assign_check_response(2), "as Okay");
    empq_assign_free(&p);

    /* a position past the end is refused */
    o.checks[2] = 13;
    empq_assign_plan *q = NULL;
    empq_error err = {0};
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, NULL, &o, &q, &err), EMPQ_EINVAL);
    CHECK(q == NULL);
    CHECK_CONTAINS(err.msg, "past the end");
    free(emo);
}

/* Overlap: r raters per item; every (prompt, condition) in exactly r slots. */
static void test_overlap(void)
{
    const uint32_t n = 300;
    const char **emo = make_emotions(n, 5);
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    o.raters = 3;
    o.participants = 90;
    empq_assign_plan *p = build(emo, n, &o);
    CHECK_INT(p->n_slots, 5 * 30 * 3);
    uint8_t *seen = calloc((size_t)n * 5, 1);
    for (size_t s = 0; s < p->n_slots; s++)
        for (uint32_t i = 0; i < p->slots[s].n; i++)
            seen[(size_t)p->slots[s].entries[i] * 5 + p->slots[s].condition]++;
    for (size_t i = 0; i < (size_t)n * 5; i++)
        CHECK_INT(seen[i], 3);
    free(seen);
    empq_assign_free(&p);
    free(emo);
}

/* Uneven sizes, unusable prompts and wrong options. */
static void test_edges(void)
{
    const uint32_t n = 105;
    const char **emo = make_emotions(n, 6);
    uint8_t usable[105];
    for (uint32_t i = 0; i < n; i++)
        usable[i] = i % 21 != 0; /* 5 prompts without every response */
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    empq_assign_plan *p = NULL;
    empq_error err = {0};
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, usable, &o, &p, &err), EMPQ_OK);
    CHECK_INT(p->n_used, 100);
    CHECK_INT(p->n_batches, 10);
    for (size_t s = 0; s < p->n_slots; s++)
        for (uint32_t i = 0; i < p->slots[s].n; i++)
            CHECK(p->slots[s].entries[i] % 21 != 0);
    empq_assign_free(&p);

    o.items = 8; /* 105 prompts in 14 batches of 7 or 8 */
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, NULL, &o, &p, &err), EMPQ_OK);
    CHECK_INT(p->n_batches, 14);
    for (uint32_t b = 0; b < p->n_batches; b++) {
        uint32_t sz = p->batch_off[b + 1] - p->batch_off[b];
        CHECK(sz == 7 || sz == 8);
    }
    CHECK_INT(p->batch_off[14], 105);
    empq_assign_free(&p);

    o.items = 10;
    o.participants = 200;
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, NULL, &o, &p, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "do not fit");
    o.participants = 0;
    o.items = 0;
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, NULL, &o, &p, &err), EMPQ_EINVAL);
    o.items = 10;
    o.raters = 0;
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, NULL, &o, &p, &err), EMPQ_EINVAL);
    o.raters = 1;
    memset(usable, 0, sizeof usable);
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, usable, &o, &p, &err), EMPQ_EINVAL);
    CHECK_INT(empq_assign_build(CONDS, 0, emo, n, NULL, &o, &p, &err), EMPQ_EINVAL);
    o.checks[0] = 4;
    o.checks[1] = 4;
    o.n_checks = 2;
    CHECK_INT(empq_assign_build(CONDS, 5, emo, n, NULL, &o, &p, &err), EMPQ_EINVAL);
    CHECK(p == NULL);
    empq_assign_free(NULL);
    empq_assign_free(&p);
    free(emo);
}

/* Text in plan.csv is quoted per RFC 4180. */
static void test_csv_quoting(void)
{
    const char *emo[2] = {"sad", "joyful"};
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    o.items = 2;
    empq_assign_plan *p = NULL;
    CHECK_INT(empq_assign_build(CONDS, 1, emo, 2, NULL, &o, &p, NULL), EMPQ_OK);
    Empq__Prompt a = EMPQ__PROMPT__INIT, b = EMPQ__PROMPT__INIT;
    a.id = "hit:1_conv:2";
    a.emotion = "sad";
    a.situation = "a, b";
    a.prompt = "He said \"no\"";
    b.id = "x";
    b.emotion = "joyful";
    b.prompt = "line1\nline2";
    Empq__Prompt *ps[2] = {&a, &b};
    const char *resp[2] = {"<script>alert(1)</script>", NULL};
    empq_buf out = {0};
    CHECK_INT(empq_assign_write_csv(p, ps, resp, &out, NULL), EMPQ_OK);
    CHECK_CONTAINS(out.data, "\"a, b\",\"He said \"\"no\"\"\",<script>alert(1)</script>\r\n");
    CHECK_CONTAINS(out.data, "\"line1\nline2\",\r\n");
    empq_buf_free(&out);
    empq_assign_free(&p);
}

int main(void)
{
    RUN(test_seed_study_size);
    RUN(test_deterministic);
    RUN(test_checks);
    RUN(test_overlap);
    RUN(test_edges);
    RUN(test_csv_quoting);
    CHECK_DONE();
}
