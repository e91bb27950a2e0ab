/* faults.h: injected faults, chosen by flag with set probabilities.
 *
 * Each model request (the n-th one the server received, n = 1, 2, ...)
 * draws one uniform number u from (seed, n) and takes the first kind whose
 * cumulative probability exceeds u, in the order of the enum below, or none.
 * So for a given --fault-seed the n-th request always gets the same fault,
 * whatever the timing, and a test is repeatable; over many requests each
 * kind appears at about its rate.
 *
 *   429        a rate-limit error in the provider's shape, with Retry-After
 *   500        an internal error in the provider's shape
 *   503        overloaded: 503 (OpenAI, Azure, Gemini UNAVAILABLE), 529 (Anthropic)
 *   hang       the connection is held without a response until shutdown
 *   reset      the connection is closed without a response
 *   malformed  200 with a body that is not JSON
 *   truncated  200 whose Content-Length announces more bytes than are sent
 *   huge       200 with a body of --huge-bytes (default 50 MB), generated as sent
 *   refusal    a refusal in the provider's shape
 *   empty      an empty reply text
 *   null       no reply text at all (OpenAI content null without refusal,
 *              Anthropic content [], Gemini a candidate without content)
 *   thinking-only  reasoning/thinking/thought only, finish normal, no text
 *   length-empty   a length stop before any text: the reasoning used the budget
 *   safety     a safety block (OpenAI content_filter, Anthropic refusal,
 *              Gemini SAFETY honouring the request's safetySettings)
 *   quota      the provider's quota/billing exhaustion error (OpenAI 429
 *              insufficient_quota, Anthropic 400 credit balance, Gemini 429
 *              RESOURCE_EXHAUSTED with a per-day QuotaFailure)
 *   stall      200 whose Content-Length announces the whole reply, half of it
 *              sent, then nothing more, the connection held open until shutdown
 * A model may have faults of its own (fakellm_model_faults: --model-fault
 * MODEL:KIND=P); its requests draw from the sum of the global and its own
 * probabilities, with the same (seed, n) number.
 * A request rejected by a --limit gets the 429 of the limit, not a fault. */
#ifndef FAKELLM_FAULTS_H
#define FAKELLM_FAULTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum fakellm_fault {
    FAKELLM_FAULT_NONE = 0,
    FAKELLM_FAULT_429,
    FAKELLM_FAULT_500,
    FAKELLM_FAULT_503,
    FAKELLM_FAULT_HANG,
    FAKELLM_FAULT_RESET,
    FAKELLM_FAULT_MALFORMED,
    FAKELLM_FAULT_TRUNCATED,
    FAKELLM_FAULT_HUGE,
    FAKELLM_FAULT_REFUSAL,
    FAKELLM_FAULT_EMPTY,
    FAKELLM_FAULT_NULL,
    FAKELLM_FAULT_THINKING_ONLY,
    FAKELLM_FAULT_LENGTH_EMPTY,
    FAKELLM_FAULT_SAFETY,
    FAKELLM_FAULT_QUOTA,
    FAKELLM_FAULT_STALL,
    FAKELLM_FAULT_COUNT
} fakellm_fault;

#define FAKELLM_HUGE_BYTES (50u * 1000u * 1000u)

/* One model's own fault probabilities (--model-fault MODEL:KIND=P). */
typedef struct fakellm_model_faults {
    const char *model;
    double p[FAKELLM_FAULT_COUNT];
} fakellm_model_faults;

/* Fills out with the probabilities a request for model draws from: global
 * plus the entry of m (n entries) named model, if any. model may be NULL
 * (global only). Returns 1 when model has an entry, else 0. Pure. */
int fakellm_fault_table(const double global[FAKELLM_FAULT_COUNT], const fakellm_model_faults *m, size_t n,
                        const char *model, double out[FAKELLM_FAULT_COUNT]);

/* The kind's name as in its flag and in /stats ("429", "hang", ...);
 * "none" for FAKELLM_FAULT_NONE. Constant, never NULL. */
const char *fakellm_fault_name(fakellm_fault f);

/* The kind named name ("429", "hang", ...), or FAKELLM_FAULT_NONE. */
fakellm_fault fakellm_fault_by_name(const char *name);

/* The kind for the n-th request: p[k] is the probability of kind k
 * (p[FAKELLM_FAULT_NONE] is ignored; the sum of the rest at most 1). Pure. */
fakellm_fault fakellm_fault_pick(const double p[FAKELLM_FAULT_COUNT], uint64_t seed, uint64_t n);

#endif
