/* limits.h: per-model rate limits and the counters that prove a client kept
 * to them.
 *
 * A limit (--limit MODEL:rpm=600,tpm=100000,concurrency=16, or
 * --default-limit rpm=...,... for every model without its own) holds at
 * most `concurrency` admitted requests of the model in flight, at most
 * `rpm` admitted requests and `tpm` admitted tokens in any sliding 60 s
 * window (t - 60 s, t]. 0 means no limit of that kind. A request over a
 * limit is rejected (the server answers 429 in the provider's shape with
 * Retry-After); rejected requests do not use the quota.
 *
 * Counters, per model, whether or not it has a limit: every request that
 * named the model counts as received, the moment it arrived, with the tokens
 * of the completion it was answered with (0 when it got no completion: a
 * 429, an injected fault). From them:
 *   peak_concurrency   the most received requests of the model open at once
 *   max_requests_60s   the most received requests in any sliding 60 s window
 *   max_requests_1s    ... in any sliding 1 s window
 *   max_tokens_60s     the most completion tokens in any sliding 60 s window
 *   max_tokens_1s      ... in any sliding 1 s window
 * So a test proves a client never exceeded a limit by comparing these with
 * the limit; the server's own enforcement does not hide an excess, because
 * a rejected request still counts as received.
 *
 * The maximum over all windows is attained by a window that ends at an
 * event, so each is updated when a request arrives: O(1) amortised, memory
 * one (time, tokens) pair per request of the last 60 s.
 *
 * Thread-safe (one mutex). Times are milliseconds on any monotonic clock
 * the caller chooses (the server uses fakellm_timer_now_ms); a time earlier
 * than one already seen is taken as that one. */
#ifndef FAKELLM_LIMITS_H
#define FAKELLM_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"
#include "empq/util.h"

#define FAKELLM_LIMITS_MODELS 256
#define FAKELLM_LIMITS_WINDOW_MS 60000u

typedef struct fakellm_limit {
    uint64_t rpm;         /* admitted requests per sliding minute; 0 = no limit */
    uint64_t tpm;         /* admitted tokens per sliding minute; 0 = no limit */
    uint64_t concurrency; /* admitted requests in flight; 0 = no limit */
} fakellm_limit;

/* Parses "rpm=600,tpm=100000,concurrency=16" (any subset, any order; also
 * "MODEL:..." when model is non-NULL: *model gets a malloc'd copy of the
 * part before the last ':'). Returns EMPQ_OK, EMPQ_EINVAL with err saying
 * what is wrong, or EMPQ_ENOMEM. */
int fakellm_limit_parse(const char *text, char **model, fakellm_limit *out, empq_error *err);

typedef struct fakellm_limits fakellm_limits;

/* Returns an empty table, or NULL when out of memory. */
fakellm_limits *fakellm_limits_new(void);

/* Frees *lp and sets it to NULL; lp and *lp may be NULL. */
void fakellm_limits_free(fakellm_limits **lp);

/* Sets the limit of model (NULL: the default for models without their own).
 * Returns EMPQ_OK, EMPQ_ENOMEM, or EMPQ_EINVAL when the table is full. */
int fakellm_limits_set(fakellm_limits *l, const char *model, const fakellm_limit *lim);

/* What fakellm_limits_begin decided, and the state for rate-limit headers. */
typedef struct fakellm_admit {
    int admitted;             /* 1: go on; 0: answer 429 */
    int has_limit;            /* the model has a limit (lim is it) */
    fakellm_limit lim;
    /* when rejected: which limit, and the numbers a provider's message names */
    const char *which;        /* "requests", "tokens" or "concurrency"; NULL when admitted */
    uint64_t limit, used, requested;
    uint64_t retry_after_ms;  /* when the request would fit (>= 1) */
    /* the window after this request (for x-ratelimit-* headers) */
    uint64_t remaining_requests, remaining_tokens;
    uint64_t reset_requests_ms, reset_tokens_ms; /* until the window is empty again */
} fakellm_admit;

/* A request's place in the table, for fakellm_limits_end. */
typedef struct fakellm_slot {
    int model;    /* index, -1 when none */
    int admitted; /* holds an admitted concurrency slot */
} fakellm_slot;

/* A request for model arrived at now_ms and would be answered with tokens
 * (prompt + completion; 0 when it gets no completion). Counts it as
 * received and open; when the model has a limit and the request fits,
 * admits it (it uses the quota and an admitted concurrency slot). Fills
 * *out and *slot (pass slot to fakellm_limits_end when the request is over).
 * Returns EMPQ_OK (see out->admitted), or EMPQ_ENOMEM (the request is then
 * admitted and not counted; *slot is empty). */
int fakellm_limits_begin(fakellm_limits *l, const char *model, uint64_t tokens, uint64_t now_ms,
                         fakellm_admit *out, fakellm_slot *slot);

/* The request on slot is over (or no longer held open by the client, as a
 * hang): it leaves the open counts. Idempotent: slot is emptied. */
void fakellm_limits_end(fakellm_limits *l, fakellm_slot *slot);

/* Zeroes the counters and maxima (limits, open requests and the admission
 * windows are kept: the quota is not given back). */
void fakellm_limits_reset(fakellm_limits *l);

/* Appends the "models" object of /stats to out as JSON text:
 *   {"MODEL": {"limit": {"rpm":..,"tpm":..,"concurrency":..} | null,
 *              "requests": n, "limited": n, "tokens": n,
 *              "in_flight": n, "peak_concurrency": n,
 *              "max_requests_60s": n, "max_requests_1s": n,
 *              "max_tokens_60s": n, "max_tokens_1s": n}, ...}
 * in first-seen order (models with a --limit are listed from the start).
 * Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_limits_json(fakellm_limits *l, empq_buf *out);

#endif
