/* faults.c: see faults.h. */
#include "faults.h"

#include <string.h>

#include "chat.h"

static const char *const names[FAKELLM_FAULT_COUNT] = {
    "none", "429", "500", "503", "hang", "reset", "malformed", "truncated", "huge", "refusal", "empty", "stall"};

const char *fakellm_fault_name(fakellm_fault f)
{
    return (unsigned)f < FAKELLM_FAULT_COUNT ? names[f] : "none";
}

fakellm_fault fakellm_fault_by_name(const char *name)
{
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
        if (name != NULL && strcmp(name, names[k]) == 0)
            return (fakellm_fault)k;
    return FAKELLM_FAULT_NONE;
}

fakellm_fault fakellm_fault_pick(const double p[FAKELLM_FAULT_COUNT], uint64_t seed, uint64_t n)
{
    /* 53 random bits -> [0, 1). */
    double u = (double)(fakellm_mix64(fakellm_mix64(seed) ^ n) >> 11) * (1.0 / 9007199254740992.0);
    double acc = 0;
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++) {
        acc += p[k];
        if (p[k] > 0 && u < acc)
            return (fakellm_fault)k;
    }
    return FAKELLM_FAULT_NONE;
}
