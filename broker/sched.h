/* sched.h: the broker's runs, workers and dispatch decisions, without
 * sockets or Redis (broker.c does the I/O around it).
 *
 * A bk__sched holds the loaded runs (each with its job table) and the
 * registered workers (each in a small integer slot, the worker slot of the
 * job tables). It decides which jobs go to which worker (by free credit,
 * round robin over runs and over the models a worker serves), applies
 * outcomes, computes retry backoff, expires leases, gives up silent workers
 * and says when the next of those deadlines is, so the event loop can sleep
 * exactly until then. Times called `now` are monotonic milliseconds.
 *
 * Internal to the broker program: names bk__sched_*. Not thread safe. */
#ifndef EMPQ_BROKER_SCHED_H
#define EMPQ_BROKER_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/util.h"
#include "jobtable.h"
#include "pace.h"

/* A batched job's guard (batch mode): the providers end a batch within its
 * 24 h completion window and the worker reading it sends the outcome; a job
 * still batched this long after (its record lost in a Redis crash, say) is
 * pending again. */
#define BK_BATCHED_GUARD_MS (26ull * 3600ull * 1000ull)

#define BK_IDENT_MAX 256

/* Timing and pacing choices; bk__sched_opts_default fills the defaults. */
typedef struct bk__sched_opts {
    uint32_t heartbeat_ms;    /* beat period both ways (1000) */
    uint32_t miss_beats;      /* a worker silent this many periods is given up (5) */
    uint32_t lease_ms;        /* a job's lease (600000: ten minutes) */
    uint32_t backoff_base_ms; /* retry backoff: base of the exponential (1000) */
    uint32_t backoff_cap_ms;  /* and its cap (60000) */
    uint32_t max_batch;       /* jobs in one JobBatch at most (1024) */
    uint64_t seed;            /* backoff jitter PRNG seed */
    uint32_t unusable_ms;     /* a model every live worker serving it reports unusable this long stops (10000) */
    bk__pace_opts pace;       /* per-model limits, 429 slow-down, cost (pace.h) */
} bk__sched_opts;

void bk__sched_opts_default(bk__sched_opts *o);

#define BK_REASON_KEY_MAX 64 /* bytes of a dead reason kept as its key (with the NUL) */
#define BK_REASONS_MAX 16    /* distinct dead reasons counted per model; the rest count as "other" */

/* Dead jobs of one model by reason. The key of a reason is its text up to
 * the first ": " (so "HTTP 400: <the provider's message>" counts as
 * "HTTP 400"), at most BK_REASON_KEY_MAX - 1 bytes; past BK_REASONS_MAX
 * distinct keys, "other". */
typedef struct bk__reasons {
    char key[BK_REASONS_MAX + 1][BK_REASON_KEY_MAX];
    uint32_t count[BK_REASONS_MAX + 1];
    uint32_t n;             /* keys in use, "other" included */
} bk__reasons;

/* A loaded run. Owned by the scheduler; valid until bk__sched_free. */
typedef struct bk__run {
    char *id;
    Empq__RunState state;   /* as in Redis (the broker keeps them in step) */
    int force;
    uint32_t n_prompts;
    uint32_t n_models;
    uint32_t samples;       /* max over the models */
    char **aliases;         /* n_models model aliases, spec order */
    bk__jobtable *table;
    bk__pace *pace;         /* n_models: limits, 429 slow-down, cost and stop of each model */
    bk__reasons *dead_reasons; /* n_models: dead jobs by reason */
    uint32_t *window;       /* n_models: batch mode: jobs of the model a worker may hold while it fills
                               a batch (credit aside); 0 for an interactive model */
    uint32_t batch_models;  /* models with a window */
    uint8_t *source;        /* n_models: BK_SOURCE_* (for status: mode and prices) */
    uint32_t *orphans;      /* batched jobs in no open batch record at the last check, sorted */
    size_t n_orphans;
    uint64_t started_ms;    /* wall clock of the first dispatch, 0 before */
    uint64_t finished_ms;   /* wall clock when done + dead reached total */
    int finish_reported;    /* bk__sched_pop_finished returned it already */
} bk__run;

#define BK_SOURCE_HUMAN 0       /* the dataset's answer: no provider, no price */
#define BK_SOURCE_INTERACTIVE 1
#define BK_SOURCE_BATCH 2
#define BK_SOURCE_PRICED 4      /* flag: the spec gives the model prices */

/* Counts one dead job of model m of r under reason (NULL or "": "unknown"). */
void bk__sched_count_dead(bk__run *r, uint32_t m, const char *reason);

/* A registered worker. */
typedef struct bk__worker {
    int used;
    unsigned char ident[BK_IDENT_MAX]; /* its ROUTER routing identity */
    size_t ident_len;
    char *worker_id;
    char *host;
    uint32_t pid;
    uint32_t credit;
    char **models;          /* aliases it serves; n_models 0 = every model */
    size_t n_models;
    uint64_t last_seen;     /* last message from it (mono ms) */
    uint64_t last_sent;     /* last message to it (mono ms); the I/O layer sets it */
    uint64_t done;          /* DONE outcomes it reported */
    uint64_t errors;        /* RETRY and DEAD outcomes it reported */
    size_t run_rr;          /* round robin over runs: the run index it got last */
    Empq__ModelProblem *unusable; /* models it said it cannot call, on its last heartbeat (owned copies) */
    size_t n_unusable;
} bk__worker;

typedef struct bk__sched bk__sched;

/* Creates a scheduler (o may be NULL for the defaults). On EMPQ_OK *out is
 * the caller's, freed with bk__sched_free. EMPQ_ENOMEM otherwise. */
int bk__sched_new(bk__sched **out, const bk__sched_opts *o);
/* Frees *s, its runs and workers, and sets *s to NULL; s, *s may be NULL. */
void bk__sched_free(bk__sched **s);
const bk__sched_opts *bk__sched_opts_of(const bk__sched *s);

/* ---- runs ------------------------------------------------------------------ */

/* Loads a run: builds its job table (every job pending) with total =
 * n_prompts * n_models * max samples, and model limits from the spec. The
 * caller then marks finished jobs with bk__jobtable_done/dead on run->table.
 * *out (may be NULL) receives the run, owned by the scheduler.
 * EMPQ_EEXIST (and *out the loaded run) when a run of that id is loaded,
 * EMPQ_EINVAL for a run without models or prompts, EMPQ_ENOMEM. */
int bk__sched_run_add(bk__sched *s, const Empq__Run *run, bk__run **out, empq_error *err);
/* Unloads the run of that id (its jobs and leases are forgotten; workers'
 * credit for them comes back). Returns EMPQ_OK or EMPQ_ENOTFOUND. */
int bk__sched_run_remove(bk__sched *s, const char *id);
/* The loaded run of that id, or NULL. */
bk__run *bk__sched_run_find(const bk__sched *s, const char *id);
size_t bk__sched_run_count(const bk__sched *s);
/* The i-th loaded run (load order), i < bk__sched_run_count. */
bk__run *bk__sched_run_at(const bk__sched *s, size_t i);

/* Returns a run that just finished (done + dead == total, state ACTIVE or
 * PAUSED) and that was not returned before, or NULL. The caller records
 * RUN_DONE (in Redis) and sets run->state. */
bk__run *bk__sched_pop_finished(bk__sched *s);

/* ---- workers ----------------------------------------------------------------- */

/* Registers the worker at this identity from its hello (or re-registers
 * it: a worker that says hello again has restarted, so the jobs it held are
 * requeued; *requeued, may be NULL, receives how many). On EMPQ_OK *slot is
 * its slot. EMPQ_ERANGE when every slot is taken, EMPQ_EINVAL for an empty
 * or oversized identity, EMPQ_ENOMEM. */
int bk__sched_worker_hello(bk__sched *s, const unsigned char *ident, size_t len, const Empq__Hello *h,
                           uint64_t now, unsigned *slot, size_t *requeued);
/* The slot of the worker at this identity, or EMPQ_ENOTFOUND. */
int bk__sched_worker_find(const bk__sched *s, const unsigned char *ident, size_t len);
/* The worker in slot w, or NULL when the slot is free. */
bk__worker *bk__sched_worker(const bk__sched *s, unsigned w);
/* One past the highest slot in use (iterate 0..n-1, skip NULL). */
unsigned bk__sched_worker_span(const bk__sched *s);
/* Forgets the worker in slot w and requeues every job leased to it in
 * every run. Returns how many were requeued. */
size_t bk__sched_worker_remove(bk__sched *s, unsigned w);
/* Keeps what worker w's heartbeat says it cannot call (hb->unusable, the
 * first 256: replaces what it said before; none clears it). EMPQ_OK, EMPQ_ENOTFOUND
 * for a free slot, EMPQ_ENOMEM (the old report is kept). */
int bk__sched_worker_unusable(bk__sched *s, unsigned w, const Empq__Heartbeat *hb);
/* Jobs of interactive models leased to worker w over every run (what its
 * credit counts; batch-mode jobs filling its batches do not). */
uint32_t bk__sched_in_flight(const bk__sched *s, unsigned w);

/* ---- dispatch ---------------------------------------------------------------- */

/* Picks the next batch for worker w: up to min(free credit, max, max_batch)
 * ready jobs of one ACTIVE run (round robin over runs, then over the run's
 * models the worker serves), leased to w until now + lease_ms; and, credit
 * aside, jobs of the run's batch-mode models up to each one's window less
 * what w holds of it (so a worker fills whole provider batches whatever its
 * credit; their jobs leave the lease when the batch is durable). Writes the
 * job indices to jobs and the run to *run. Returns how many (0: nothing for
 * this worker now). The attempt of each job is bk__jobtable_attempts. */
size_t bk__sched_dispatch(bk__sched *s, unsigned w, uint64_t now, uint32_t *jobs, size_t max, bk__run **run);

/* Limits (pace.h): bk__sched_dispatch gives each model of a run at most
 * what bk__pace_allow grants and charges what it took; bk__sched_outcome
 * feeds every outcome to the model's pace (cost, usage, 429 slow-down),
 * stops the model at once on an outcome with model_fatal (its reason is
 * the stop reason) and logs event=model_slowdown, event=max_cost_reached
 * and event=model_stopped (once per model); bk__sched_tick gathers the
 * workers' unusable reports per model (bk__pace_unusable) and stops a
 * model every live worker serving it has reported for unusable_ms;
 * bk__sched_next_deadline includes the time a paced model with ready jobs
 * may send again. */

/* Whether an ACTIVE run has a ready job (a cheap O(runs) test). */
int bk__sched_has_ready(const bk__sched *s);

/* What applying one outcome did. */
typedef enum bk__applied {
    BK_APPLIED = 0,        /* the job moved */
    BK_IGNORED_FINAL,      /* the job was already done or dead */
    BK_IGNORED_STALE,      /* RETRY/RELEASED from a worker not holding the lease */
    BK_IGNORED_UNKNOWN_RUN,/* no loaded run of that id */
    BK_IGNORED_BAD_JOB,    /* job index out of range, or unknown kind */
    BK_APPLIED_N
} bk__applied;

const char *bk__applied_str(bk__applied a);

/* Applies one outcome reported by worker w (BK_WORKER_NONE: an unknown
 * worker, whose DONE and DEAD are still applied). DONE/DEAD: pending or
 * leased (to anyone) -> done/dead (a DEAD counted by its reason).
 * RETRY: leased to w -> pending after bk__sched_backoff_ms. RELEASED:
 * leased to w -> pending now. */
bk__applied bk__sched_outcome(bk__sched *s, unsigned w, const Empq__Outcome *o, uint64_t now);

/* Retry delay after the given attempt (1 = the first): full jitter, a
 * uniform draw in [0, min(cap, base * 2^(attempt-1))], but at least
 * retry_after_ms. */
uint64_t bk__sched_backoff_ms(bk__sched *s, unsigned attempt, uint32_t retry_after_ms);

/* ---- time --------------------------------------------------------------------- */

/* What one tick did. */
typedef struct bk__tick {
    size_t promoted;     /* delayed jobs now ready */
    size_t expired;      /* leases that ran out */
    size_t lost_workers; /* workers given up */
    size_t lost_jobs;    /* their leased jobs, requeued */
} bk__tick;

/* Does everything due at now: promotes delayed jobs, expires leases, gives
 * up workers silent for miss_beats x heartbeat_ms (logging event=worker_lost
 * with the count of requeued jobs). Fills *r (may be NULL). */
void bk__sched_tick(bk__sched *s, uint64_t now, bk__tick *r);

/* The earliest time something is due: a delayed job, a lease deadline, a
 * worker's silence limit or a heartbeat to send (last_sent +
 * heartbeat_ms). UINT64_MAX when nothing is. */
uint64_t bk__sched_next_deadline(const bk__sched *s);

#endif
