/* test_fakellm_faults.c: the fault draw: names both ways, the same kind for
 * the same (seed, n), other seeds other sequences, each kind at its rate
 * over many draws, none when all probabilities are 0; a model's own table
 * added to the global one. */
#include <math.h>

#include "check.h"
#include "faults.h"

static void test_names(void)
{
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_NONE), "none");
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_429), "429");
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_EMPTY), "empty");
    CHECK_STR(fakellm_fault_name((fakellm_fault)99), "none");
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
        CHECK_INT(fakellm_fault_by_name(fakellm_fault_name((fakellm_fault)k)), k);
    CHECK_INT(fakellm_fault_by_name("none"), FAKELLM_FAULT_NONE);
    CHECK_INT(fakellm_fault_by_name("bogus"), FAKELLM_FAULT_NONE);
    CHECK_INT(fakellm_fault_by_name(NULL), FAKELLM_FAULT_NONE);
}

static void test_rates(void)
{
    double p[FAKELLM_FAULT_COUNT] = {0};
    p[FAKELLM_FAULT_429] = 0.2;
    p[FAKELLM_FAULT_500] = 0.03;
    p[FAKELLM_FAULT_503] = 0.02;
    p[FAKELLM_FAULT_HANG] = 0.01;
    p[FAKELLM_FAULT_RESET] = 0.01;
    p[FAKELLM_FAULT_MALFORMED] = 0.02;
    p[FAKELLM_FAULT_TRUNCATED] = 0.01;
    p[FAKELLM_FAULT_HUGE] = 0.001;
    p[FAKELLM_FAULT_REFUSAL] = 0.01;
    p[FAKELLM_FAULT_EMPTY] = 0.01;
    const unsigned n = 200000;
    unsigned count[FAKELLM_FAULT_COUNT] = {0}, same = 0;
    for (unsigned i = 1; i <= n; i++) {
        fakellm_fault f = fakellm_fault_pick(p, 42, i);
        CHECK_INT(fakellm_fault_pick(p, 42, i), f); /* pure */
        count[f]++;
        same += fakellm_fault_pick(p, 43, i) == f;
    }
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++) {
        double want = p[k] * n, sd = sqrt(n * p[k] * (1 - p[k]));
        if (fabs(count[k] - want) > 5 * sd)
            fprintf(stderr, "%s: %u, want %.0f +- %.0f\n", fakellm_fault_name((fakellm_fault)k), count[k], want, sd);
        CHECK(fabs(count[k] - want) <= 5 * sd);
    }
    CHECK(same < n); /* another seed, another sequence */

    double zero[FAKELLM_FAULT_COUNT] = {0};
    for (unsigned i = 1; i <= 1000; i++)
        CHECK_INT(fakellm_fault_pick(zero, 1, i), FAKELLM_FAULT_NONE);
    double all[FAKELLM_FAULT_COUNT] = {0};
    all[FAKELLM_FAULT_HANG] = 1.0;
    for (unsigned i = 1; i <= 1000; i++)
        CHECK_INT(fakellm_fault_pick(all, 1, i), FAKELLM_FAULT_HANG);
}

static void test_model_table(void)
{
    double g[FAKELLM_FAULT_COUNT] = {0}, out[FAKELLM_FAULT_COUNT];
    g[FAKELLM_FAULT_429] = 0.1;
    fakellm_model_faults m[2] = {{.model = "fake-a"}, {.model = "fake-b"}};
    m[1].p[FAKELLM_FAULT_QUOTA] = 1.0 - 0.1;
    /* Another model, or none: the global table only. */
    CHECK_INT(fakellm_fault_table(g, m, 2, "fake-c", out), 0);
    CHECK(out[FAKELLM_FAULT_429] == 0.1 && out[FAKELLM_FAULT_QUOTA] == 0);
    CHECK_INT(fakellm_fault_table(g, m, 2, NULL, out), 0);
    /* fake-b: the global 429 plus its own quota; every draw is one of the two. */
    CHECK_INT(fakellm_fault_table(g, m, 2, "fake-b", out), 1);
    CHECK(out[FAKELLM_FAULT_429] == 0.1 && fabs(out[FAKELLM_FAULT_QUOTA] - 0.9) < 1e-12);
    unsigned quota = 0, other = 0;
    for (unsigned i = 1; i <= 10000; i++) {
        fakellm_fault f = fakellm_fault_pick(out, 7, i);
        quota += f == FAKELLM_FAULT_QUOTA;
        other += f != FAKELLM_FAULT_QUOTA && f != FAKELLM_FAULT_429;
        /* the same (seed, n) number: a request the global table gives a 429 keeps it */
        if (fakellm_fault_pick(g, 7, i) == FAKELLM_FAULT_429)
            CHECK_INT(f, FAKELLM_FAULT_429);
    }
    CHECK_INT(other, 0);
    CHECK(quota > 8700 && quota < 9300);
    /* the new kinds' names, as in the flags and /stats */
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_NULL), "null");
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_THINKING_ONLY), "thinking-only");
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_LENGTH_EMPTY), "length-empty");
    CHECK_STR(fakellm_fault_name(FAKELLM_FAULT_SAFETY), "safety");
    CHECK_INT(fakellm_fault_by_name("quota"), FAKELLM_FAULT_QUOTA);
}

int main(void)
{
    RUN(test_names);
    RUN(test_rates);
    RUN(test_model_table);
    CHECK_DONE();
}
