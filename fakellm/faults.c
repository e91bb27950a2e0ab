/* faults.c: see faults.h. */
#include "faults.h"

#include <string.h>

#include "chat.h"

static const char *const names[FAKELLM_FAULT_COUNT] = {
    "none", "429", "500", "503", "hang", "reset", "malformed", "truncated", "huge", "refusal", "empty",
    "null", "thinking-only", "length-empty", "safety", "quota", "stall"};

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

int fakellm_fault_table(const double global[FAKELLM_FAULT_COUNT], const fakellm_model_faults *m, size_t n,
                        const char *model, double out[FAKELLM_FAULT_COUNT])
{
    memcpy(out, global, sizeof(double) * FAKELLM_FAULT_COUNT);
    for (size_t i = 0; model != NULL && i < n; i++) {
        if (strcmp(m[i].model, model) != 0)
            continue;
        for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
            out[k] += m[i].p[k];
        return 1;
    }
    return 0;
}
