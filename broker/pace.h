/* pace.h: one model's global limits, 429 slow-down and cost, kept by the
 * broker for every worker together. No I/O, no clock of its own: the caller
 * passes monotonic milliseconds, so tests drive it with a fake clock.
 *
 * Limits (ModelLimits of the spec):
 *   - max_concurrency: leased jobs of the model at once;
 *   - requests_per_minute, tokens_per_minute: dispatches (and their
 *     estimated tokens) in a sliding minute. The window is kept in 1 s
 *     buckets; a bucket counts from its start until window + slack after its
 *     end, so a dispatch counts for at least 60 s + slack (slack covers the
 *     time between the broker's dispatch and the request's arrival at the
 *     provider). That is conservative: no 60 s window at the provider holds
 *     more than the limit.
 * Tokens of a dispatch are estimated before it goes: the largest prompt
 * usage reported so far plus a quarter (est_in_default before any report)
 * plus max_tokens
 * of the spec (or the largest completion reported, est_out_default before
 * any). When the outcome reports the real usage (DONE), or that the
 * provider refused the request (429: no tokens), the bucket of the dispatch
 * is corrected while it is still in the window.
 *
 * 429 slow-down: a 429 for a request dispatched after the last slow-down
 * starts an episode: the model is paused for every worker for its
 * Retry-After (capped at max_pause_ms), and, when 429s are at least
 * decrease_share of the model's recent replies (a moving average over the
 * last ~16), the model's rate factor is halved (AIMD, down to min_factor);
 * the factor scales all three limits (a model without any limit learns a
 * concurrency: the jobs leased when the 429 came). 429s of requests sent
 * before the episode began are part of it and change nothing. Every fresh
 * success adds `increase` to the factor, up to 1 (where a learned
 * concurrency is forgotten). So a provider that refuses most requests is
 * slowed down to what it takes, and a few stray 429s only cost pauses.
 *
 * Requests without a reply: a job that failed with no HTTP status (a timeout,
 * a broken connection) may still run at the provider after the worker gave
 * up on it, so it keeps holding a concurrency slot of its model for the
 * model's timeout_ms (at most ghost_max_ms) after its outcome ("ghosts").
 *
 * Cost: tokens in and out of fresh generations (not cache hits) and their
 * cost from ModelPrices (tokens out is the billed output, reasoning and
 * thinking included; a DEAD or RETRY outcome that carries usage, a reply
 * that was no answer, is charged too; Outcome.tokens_cached of the input
 * at cached_input_per_mtok when the spec gives it); with max_cost the model gets no dispatch that its
 * spent cost plus the estimated cost of its leased jobs and of the new job
 * would take past max_cost. When spent >= max_cost, or nothing is leased
 * and not even one more job fits, the model is stopped for good
 * (bk__pace_stop, reason "max_cost").
 *
 * Internal to the broker program: names bk__pace_*. Not thread safe. */
#ifndef EMPQ_BROKER_PACE_H
#define EMPQ_BROKER_PACE_H

#include <stdint.h>

#include "empq.pb-c.h"

#define BK_PACE_BUCKETS 64
#define BK_PACE_BUCKET_MS 1000u
#define BK_PACE_WINDOW_MS 60000u
#define BK_PACE_UNLIMITED UINT32_MAX
#define BK_PACE_GHOSTS 256
#define BK_PACE_REASON_MAX 256

typedef struct bk__pace_opts {
    uint32_t slack_ms;        /* a dispatch counts this long past the minute (1000; at most 2000) */
    double min_factor;        /* lowest 429 rate factor (1/16) */
    double increase;          /* factor added per fresh success (1/32) */
    uint32_t max_pause_ms;    /* longest model-wide pause a Retry-After asks for (60000) */
    double decrease_share;    /* 429 share of recent replies that halves the factor (0.3) */
    uint32_t est_in_default;  /* prompt tokens assumed before any usage is reported (1024) */
    uint32_t est_out_default; /* completion tokens assumed without max_tokens or a report (1024) */
    uint32_t ghost_max_ms;    /* longest a request without a reply holds its slot (30000) */
} bk__pace_opts;

void bk__pace_opts_default(bk__pace_opts *o);

typedef struct bk__pace_bucket {
    uint32_t req;  /* dispatches */
    uint32_t est;  /* the token estimate every dispatch of this bucket was charged */
    uint64_t tok;  /* tokens charged, corrected by reported usage */
} bk__pace_bucket;

/* One model of one run. Plain data: zero it, then bk__pace_init. */
typedef struct bk__pace {
    bk__pace_opts o;
    /* from the spec (0: none) */
    uint32_t max_conc, rpm, tpm, max_tokens;
    double price_in, price_out, max_cost; /* per million tokens; max_cost 0: none */
    double price_cached;       /* cached input tokens (Outcome.tokens_cached); price_in unless the spec says */
    /* sliding window */
    bk__pace_bucket b[BK_PACE_BUCKETS];
    uint64_t head, tail;      /* newest bucket index seen; oldest counted */
    int started;
    uint64_t win_req, win_tok;
    /* requests without a reply, presumed running at the provider: expiry
     * times in a FIFO ring (every ghost lives ghost_ms, so they expire in
     * order) */
    uint64_t ghost[BK_PACE_GHOSTS];
    uint32_t ghost_head, ghost_n, ghost_ms;
    /* estimates */
    uint32_t seen_in, seen_out; /* largest reported usage */
    /* 429 slow-down */
    double factor;
    uint32_t learned_conc;
    uint64_t pause_until, epoch;
    uint32_t limited;          /* 429s counted */
    double share429;           /* moving average of 429 among replies */
    /* cost */
    uint64_t tok_in, tok_out;
    double cost;
    int stopped;               /* no more dispatch (bk__pace_stop): final */
    char stop_reason[BK_PACE_REASON_MAX]; /* why, set with stopped: "max_cost", "insufficient_quota", ... */
    int stop_logged;           /* the caller's: the stop was logged */
    /* workers that cannot call the model at all (Heartbeat.unusable) */
    char unusable[BK_PACE_REASON_MAX]; /* a reporting worker's reason; "" when none reports */
    uint32_t unusable_workers; /* live workers serving the model that report it */
    uint32_t serving_workers;  /* live workers serving the model */
    uint64_t unusable_since;   /* since when all of them (at least one) report it; 0: not all do */
} bk__pace;

/* Sets p from the model's spec (spec's limits and prices may be NULL; o may
 * be NULL for the defaults). Limits of 0 mean none. */
void bk__pace_init(bk__pace *p, const Empq__ModelSpec *spec, const bk__pace_opts *o);

/* Whether the model has any limit, price cap or pause that can hold back a
 * dispatch (a model without any is never asked). */
int bk__pace_active(const bk__pace *p);

/* Tokens one dispatch is charged now. */
uint32_t bk__pace_estimate(const bk__pace *p);

/* The effective concurrency cap (BK_PACE_UNLIMITED when none). */
uint32_t bk__pace_conc(const bk__pace *p);

/* How many jobs of the model may be dispatched at now with `leased` of them
 * leased (plus the ghosts still alive): 0 when paused, stopped or at a limit; BK_PACE_UNLIMITED when
 * nothing limits it. May stop the model (max_cost). */
uint32_t bk__pace_allow(bk__pace *p, uint32_t leased, uint64_t now);

/* Charges n dispatches at now (n x the estimate in tokens). */
void bk__pace_charge(bk__pace *p, uint32_t n, uint64_t now);

/* When bk__pace_allow may become nonzero by time alone (a pause ends, a
 * bucket leaves the window): a time > now, or UINT64_MAX when nothing
 * time-based holds the model back (it is free, stopped, or waits for
 * outcomes: concurrency, cost). */
uint64_t bk__pace_next(bk__pace *p, uint32_t leased, uint64_t now);

/* Stops the model for good: bk__pace_allow gives 0 from now on, for every
 * worker (jobs already leased finish as they finish). The one way a model
 * stops, for max_cost ("max_cost"), for an outcome whose failure holds for
 * every job of the model (Outcome.model_fatal: its reason) and for a model
 * every live worker reports unusable ("unusable: <worker's reason>").
 * reason (NULL: "stopped") is copied, cut to BK_PACE_REASON_MAX - 1 bytes.
 * Returns 1 when this call stopped the model, 0 when it was stopped
 * already (its first reason stays). */
int bk__pace_stop(bk__pace *p, const char *reason);

/* The model's unusable reports at now: `reporting` of the `serving` live
 * workers serving it say they cannot call it; reason (may be NULL) is one
 * of their reasons. Kept for status and metrics (p->unusable, cleared when
 * none reports). When every serving worker (at least one) has reported it
 * for hold_ms without a break, the model stops (bk__pace_stop with
 * "unusable: <reason>"). Returns 1 when this call stopped it. */
int bk__pace_unusable(bk__pace *p, uint32_t reporting, uint32_t serving, const char *reason, uint64_t now,
                      uint64_t hold_ms);

/* Prices `cached` of a call's input tokens (reported in its usage, before
 * that usage is spent) at cached_input_per_mtok instead of input_per_mtok.
 * Nothing when the two prices are the same. */
void bk__pace_cached(bk__pace *p, uint64_t cached);

/* A result found in Redis when the broker loads a run (after a restart):
 * its usage (in, out: tokens the provider reported) counts towards the
 * model's tokens and cost, as the outcome did for the broker that received
 * it, and stops the model when max_cost is reached. A call that ended
 * ago_ms before now is also charged to the minute window (one request,
 * in + out tokens) when it is still inside it, so a restarted broker does
 * not grant the provider's minute limits a second time. */
void bk__pace_restore(bk__pace *p, uint64_t in, uint64_t out, uint64_t ago_ms, uint64_t now);

/* Applies an outcome of this model: cost and usage (fresh DONE), the 429
 * share, window correction and 429 slow-down (dispatched: the job's dispatch time, 0 when
 * unknown; then neither is done). leased: jobs of the model leased now.
 * Returns 1 when this outcome was a 429 that began an episode (a pause or
 * a slow-down). */
int bk__pace_outcome(bk__pace *p, const Empq__Outcome *o, uint64_t dispatched, uint32_t leased, uint64_t now);

#endif
