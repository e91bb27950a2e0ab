/* stats.h: the fake server's counters, served at GET /stats.
 *
 *   {"requests": n, "by_model": {"fake-warm": n, ...}, "errors": n,
 *    "in_flight": n, "max_in_flight": n, "hung": n,
 *    "faults": {"429": n, "500": n, "503": n, "hang": n, "reset": n, "malformed": n,
 *               "truncated": n, "huge": n, "refusal": n, "empty": n}}
 *
 * requests  completions answered with 200, all models
 * by_model  the same per model name, in first-seen order; after
 *           FAKELLM_STATS_MODELS distinct names the rest count under "(other)"
 * errors    responses with a status >= 400 on any path
 * in_flight model-path requests received and not yet completed (a gauge)
 * max_in_flight  the peak of in_flight since start or the last reset
 * hung      connections held by the hang fault now (a gauge)
 * faults    injected faults by kind (faults.h), every kind listed
 *
 * The server adds "models" (limits.h) to the object it serves.
 *
 * All functions are thread-safe (one mutex; the critical sections are a few
 * increments). */
#ifndef FAKELLM_STATS_H
#define FAKELLM_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "empq/util.h"
#include "faults.h"

#define FAKELLM_STATS_MODELS 256

typedef struct fakellm_stats fakellm_stats;

/* Returns a zeroed counter set, or NULL when out of memory. Free with
 * fakellm_stats_free. */
fakellm_stats *fakellm_stats_new(void);

/* Frees *sp and sets it to NULL; sp and *sp may be NULL. */
void fakellm_stats_free(fakellm_stats **sp);

/* A model-path request arrived / completed (in_flight up / down). */
void fakellm_stats_begin(fakellm_stats *s);
void fakellm_stats_end(fakellm_stats *s);

/* A completion for model (NULL counts as "") was answered with 200. */
void fakellm_stats_answered(fakellm_stats *s, const char *model);

/* A response with status >= 400 was sent. */
void fakellm_stats_error(fakellm_stats *s);

/* A fault of kind f was injected (FAKELLM_FAULT_NONE is ignored). */
void fakellm_stats_fault(fakellm_stats *s, fakellm_fault f);

/* A connection started (delta 1) or stopped (delta -1) being held by the
 * hang fault. */
void fakellm_stats_hung(fakellm_stats *s, int delta);

/* Zeroes requests, by_model, errors and faults; max_in_flight becomes the current
 * in_flight (the gauge itself is not reset: those requests are still open). */
void fakellm_stats_reset(fakellm_stats *s);

/* A snapshot of the plain counters (by_model is only in the JSON). */
typedef struct fakellm_stats_snapshot {
    uint64_t requests;
    uint64_t errors;
    uint64_t in_flight;
    uint64_t max_in_flight;
    uint64_t hung;
    uint64_t faults[FAKELLM_FAULT_COUNT];
} fakellm_stats_snapshot;
void fakellm_stats_get(fakellm_stats *s, fakellm_stats_snapshot *out);

/* Waits until in_flight is 0 or timeout_ms passed. Returns EMPQ_OK when it
 * is 0, EMPQ_ETIMEOUT otherwise. */
int fakellm_stats_wait_idle(fakellm_stats *s, uint64_t timeout_ms);

/* Appends the JSON object above to out. Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_stats_json(fakellm_stats *s, empq_buf *out);

#endif
