/* test_fakellm_faults.c: the fault draw: names both ways, the same kind for
 * the same (seed, n), other seeds other sequences, each kind at its rate
 * over many draws, none when all probabilities are 0. */
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

int main(void)
{
    RUN(test_names);
    RUN(test_rates);
    CHECK_DONE();
}
