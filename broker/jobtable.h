/* jobtable.h: the jobs of one run and their states, without sockets or Redis.
 *
 * A run of n_prompts x n_models x samples jobs is one compact array of job
 * records (24 bytes each), indexed by the job index of docs/internals.md:
 *
 *     job = (prompt * n_models + model) * samples + sample
 *
 * States and the moves between them:
 *
 *     pending --lease--> leased --done--> done   (final)
 *        ^                  |  --dead--> dead   (final)
 *        +----requeue-------+  (retry with a not-before time, lease expiry,
 *                               worker loss, released untried)
 *     pending --done/dead--> done/dead  (an outcome that arrives after the
 *                                        job was requeued: Redis has it)
 *     leased|pending --batch--> batched --done/dead--> done/dead
 *                                  |  --requeue--> pending
 *                               (batch mode: the job is in a provider batch
 *                                whose record is durable in Redis; no worker
 *                                holds it, a long deadline guards it)
 *
 * Pending jobs sit either in their model's queue (ready now) or in the
 * delayed min-heap (ready at their not-before time, after a retry backoff).
 * A model's queue has two sections, each FIFO: first the jobs that came
 * back (a retry whose backoff passed, an expired lease, a lost worker, a
 * release), then the jobs never handed out, so a job given back is sent
 * again before any fresh one, not after the whole queue (one extra index
 * per model marks the end of the front section: still O(1) a move).
 * Leased jobs sit in their worker's lease list (so a lost worker's jobs are
 * requeued in O(its jobs)) and in the lease-expiry min-heap. The intrusive
 * Batched jobs sit only in the lease-expiry heap (their deadline is the
 * batch's guard, hours away) and count in no worker's credit. The intrusive
 * links live in the job records themselves; both heaps are indexed (a job
 * knows its heap slot), so every move is O(1) or O(log n) and nothing ever
 * scans the table. Counters per model and per run are kept as jobs move.
 *
 * Time is passed in by the caller (milliseconds on any monotonic clock), so
 * tests drive deadlines without sleeping. Worker slots are small integers
 * the caller assigns (0..BK_WORKER_MAX-1); the table does not know sockets.
 *
 * Internal to the broker program: names bk__jobtable_*. Not thread safe. */
#ifndef EMPQ_BROKER_JOBTABLE_H
#define EMPQ_BROKER_JOBTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"

/* A job's state. */
typedef enum bk__job_state {
    /* Waiting for a worker: in its model's queue, or delayed until its
     * not-before time after a retry. */
    BK_JOB_PENDING = 0,
    /* Handed to one worker until a deadline; ends in done, dead, or back to
     * pending (retry, expiry, worker loss, released). */
    BK_JOB_LEASED = 1,
    /* Its result is in Redis. Final: later outcomes are ignored. */
    BK_JOB_DONE = 2,
    /* Given up after its last attempt; the dead letter is in Redis. Final. */
    BK_JOB_DEAD = 3,
    /* In a provider batch (batch mode) until a deadline; ends in done, dead,
     * or back to pending (the batch ended without its answer, or expiry). */
    BK_JOB_BATCHED = 4
} bk__job_state;

/* Lower-case name of a state ("pending"); "unknown" for other values. */
const char *bk__job_state_str(int state);

/* Why a leased job went back to pending (for logs and counters). */
typedef enum bk__requeue_why {
    BK_REQUEUE_RETRY = 0,    /* the worker reported a retryable failure */
    BK_REQUEUE_EXPIRED = 1,  /* the lease deadline passed */
    BK_REQUEUE_LOST = 2,     /* the worker was given up */
    BK_REQUEUE_RELEASED = 3  /* the worker handed it back untried */
} bk__requeue_why;

#define BK_WORKER_NONE 0xFFFFu
#define BK_WORKER_MAX 0xFFFEu /* worker slots are 0..BK_WORKER_MAX-1 */
#define BK_JOB_NONE UINT32_MAX

/* Counters of one model (or, summed, of a run). Kept incrementally. */
typedef struct bk__counts {
    uint32_t pending;    /* every pending job, ready or delayed */
    uint32_t ready;      /* pending jobs in the queue now (not delayed) */
    uint32_t leased;
    uint32_t batched;    /* in provider batches (batch mode) */
    uint32_t done;
    uint32_t dead;
    uint32_t cache_hits; /* done jobs whose outcome said cache_hit */
} bk__counts;

typedef struct bk__jobtable bk__jobtable;

/* Creates the table of a run with every job pending and ready, queued per
 * model in job index order. n_prompts * n_models * samples must be at least
 * 1 and below 2^32 - 1. On EMPQ_OK *out is the caller's (free with
 * bk__jobtable_free). EMPQ_EINVAL for bad sizes, EMPQ_ENOMEM; err (may be
 * NULL) says which. */
int bk__jobtable_new(bk__jobtable **out, uint32_t n_prompts, uint32_t n_models, uint32_t samples,
                     empq_error *err);

/* Frees *t and sets it to NULL; t and *t may be NULL. */
void bk__jobtable_free(bk__jobtable **t);

/* Sizes, as given to bk__jobtable_new. */
uint32_t bk__jobtable_total(const bk__jobtable *t);
uint32_t bk__jobtable_n_models(const bk__jobtable *t);
uint32_t bk__jobtable_samples(const bk__jobtable *t);

/* The (prompt, model, sample) of a job index (job < total). */
void bk__jobtable_split(const bk__jobtable *t, uint32_t job, uint32_t *prompt, uint32_t *model,
                        uint32_t *sample);

/* Bytes the table holds on the heap (records, queues, heaps, worker lists). */
size_t bk__jobtable_memory(const bk__jobtable *t);

/* ---- reading a job ------------------------------------------------------- */

/* State of a job; -1 (EMPQ_EINVAL) when job is out of range. */
int bk__jobtable_state(const bk__jobtable *t, uint32_t job);
/* Times the job was leased since the table was built, less the leases
 * bk__jobtable_uncount took back (saturates at 255). */
unsigned bk__jobtable_attempts(const bk__jobtable *t, uint32_t job);
/* The worker slot holding a leased job, BK_WORKER_NONE otherwise. */
unsigned bk__jobtable_worker(const bk__jobtable *t, uint32_t job);
/* A leased or batched job's deadline, a delayed pending job's not-before
 * time, else 0. */
uint64_t bk__jobtable_time(const bk__jobtable *t, uint32_t job);

/* ---- counters -------------------------------------------------------------- */

/* Counters of model m (m < n_models) or, with m == UINT32_MAX, of the run. */
bk__counts bk__jobtable_counts(const bk__jobtable *t, uint32_t m);
/* done + dead == total. */
int bk__jobtable_finished(const bk__jobtable *t);
/* Jobs leased to worker slot w in this run (0 for unknown slots). */
uint32_t bk__jobtable_worker_leased(const bk__jobtable *t, unsigned w);
/* Of those, the jobs of model m (0 for unknown slots or models). */
uint32_t bk__jobtable_worker_model_leased(const bk__jobtable *t, unsigned w, uint32_t m);

/* Caps how many jobs of model m may be leased at once (0: no cap), for the
 * model's max_concurrency. bk__jobtable_take respects it. */
void bk__jobtable_set_model_limit(bk__jobtable *t, uint32_t m, uint32_t max_leased);

/* ---- transitions: each refuses an invalid move with EMPQ_ESTATE ------------ */

/* pending -> leased(w, deadline), from the queue or the delayed heap; the
 * attempt count goes up by one. EMPQ_EINVAL for a bad job or slot,
 * EMPQ_ESTATE when the job is not pending. */
int bk__jobtable_lease(bk__jobtable *t, uint32_t job, unsigned w, uint64_t deadline);

/* leased|batched -> pending. The job is ready now when not_before <= now,
 * else it waits in the delayed heap. *was_worker (may be NULL) receives the
 * slot that held it (BK_WORKER_NONE for a batched job). EMPQ_ESTATE when the
 * job is neither leased nor batched. */
int bk__jobtable_requeue(bk__jobtable *t, uint32_t job, uint64_t now, uint64_t not_before, unsigned *was_worker);

/* The job's last lease was not an attempt (handed back untried, or failed
 * for the worker's own trouble such as Redis being down): takes it back from
 * the count bk__jobtable_attempts gives, so the attempt numbers the workers
 * see and the backoff count only tries that reached the provider. EMPQ_OK;
 * EMPQ_EINVAL when job is out of range; EMPQ_ESTATE when the count is 0. */
int bk__jobtable_uncount(bk__jobtable *t, uint32_t job);

/* leased|pending -> batched until deadline (batch mode: the job is in a
 * provider batch); it leaves its worker's lease list. The attempt count is
 * unchanged. EMPQ_EINVAL for a bad job; EMPQ_ESTATE when the job is done,
 * dead or batched already; EMPQ_ENOMEM. */
int bk__jobtable_batch(bk__jobtable *t, uint32_t job, uint64_t deadline);

/* pending|leased|batched -> done; cache_hit counts it as a cache hit. *was_worker
 * (may be NULL) receives the slot that held the lease, BK_WORKER_NONE if
 * the job was pending. EMPQ_ESTATE when the job is already done or dead. */
int bk__jobtable_done(bk__jobtable *t, uint32_t job, int cache_hit, unsigned *was_worker);

/* pending|leased|batched -> dead, as bk__jobtable_done. */
int bk__jobtable_dead(bk__jobtable *t, uint32_t job, unsigned *was_worker);

/* ---- what the broker does with them ---------------------------------------- */

/* Leases up to max ready jobs to worker w with the given deadline, taking
 * one job from each served model in turn (serve[m] != 0; serve NULL: every
 * model), starting after the model this table served last, so every model
 * progresses. Skips models at their limit. Writes the job indices to jobs
 * and returns how many (0 when nothing is ready). */
size_t bk__jobtable_take(bk__jobtable *t, const uint8_t *serve, unsigned w, uint64_t deadline, uint32_t *jobs,
                         size_t max);

/* As bk__jobtable_take, and also takes at most quota[m] jobs of model m
 * (quota may be NULL: no quotas; UINT32_MAX: no quota for that model),
 * lowering quota[m] by one for each job taken. */
size_t bk__jobtable_take_quota(bk__jobtable *t, const uint8_t *serve, uint32_t *quota, unsigned w,
                               uint64_t deadline, uint32_t *jobs, size_t max);

/* Moves every delayed job whose not-before time is <= now to its model's
 * queue. Returns how many. */
size_t bk__jobtable_promote(bk__jobtable *t, uint64_t now);

/* Requeues (ready now) every leased or batched job whose deadline is <= now. If
 * expired is not NULL, the first max job indices are written there. Returns
 * how many expired in all. */
size_t bk__jobtable_expire(bk__jobtable *t, uint64_t now, uint32_t *expired, size_t max);

/* Requeues (ready now) every job leased to worker slot w. Returns how many. */
size_t bk__jobtable_release_worker(bk__jobtable *t, unsigned w);

/* The batched jobs: the first max written to out (may be NULL), in no
 * particular order. Returns how many there are. O(leased + batched). */
size_t bk__jobtable_batched_list(const bk__jobtable *t, uint32_t *out, size_t max);

/* The earliest lease (or batched) deadline, or UINT64_MAX when none. */
uint64_t bk__jobtable_next_expiry(const bk__jobtable *t);
/* The earliest not-before time of a delayed job, or UINT64_MAX. */
uint64_t bk__jobtable_next_ready(const bk__jobtable *t);

/* Checks every invariant (links, heaps, counters) by a full walk. For tests
 * only: O(total). Returns EMPQ_OK or EMPQ_ESTATE with err naming the fault. */
int bk__jobtable_check(const bk__jobtable *t, empq_error *err);

#endif
