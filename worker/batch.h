/* batch.h: the durable records of provider batches (docs/internals.md,
 * "Batch mode"), in Redis, written before the provider hears of a batch.
 *
 * Keys:
 *   empq:batch:seq                 INCR: the sequence of batch keys
 *   empq:batch:{key}               HASH run, model, state, jobs, file_id,
 *                                  batch_id, created_ms, n
 *   empq:batch:{key}:owner         STRING the owning worker id, with a TTL
 *   empq:batches:open              SET keys of batches not done
 *   empq:run:{run}:batched         HASH job -> key: a job is in at most one
 *                                  open batch
 * A key is "{run}:{model}:{seq}". Every change is one Lua script, so a
 * crash leaves a record either before or after a step, never half-way.
 * States only move forward, one step at a time (worker__batch_advance). */
#ifndef EMPQ_WORKER_BATCH_H
#define EMPQ_WORKER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"
#include "empq/store.h"

#define WORKER_BATCH_KEY_MAX 160
#define WORKER_BATCH_ID_MAX 128

/* A record's state: each written before the next provider call. */
typedef enum worker__batch_state {
    /* the jobs are ours; nothing sent yet (or a create whose answer was lost) */
    WORKER_BATCH_PREPARED = 0,
    /* OpenAI: the input file is uploaded, file_id known */
    WORKER_BATCH_UPLOADED = 1,
    /* the provider's batch id is known */
    WORKER_BATCH_SUBMITTED = 2,
    /* the provider says it ended; results not all written yet */
    WORKER_BATCH_ENDED = 3,
    /* every job has its result, retry or dead letter; the record is closed */
    WORKER_BATCH_DONE = 4
} worker__batch_state;

/* "prepared", "uploaded", "submitted", "ended", "done". */
const char *worker__batch_state_name(worker__batch_state s);

/* A record as read back. jobs and attempts are owned (free with
 * worker__batch_rec_clear). */
typedef struct worker__batch_rec {
    char key[WORKER_BATCH_KEY_MAX];
    char run[WORKER_BATCH_KEY_MAX];
    uint32_t model;
    worker__batch_state state;
    char file_id[WORKER_BATCH_ID_MAX];
    char batch_id[WORKER_BATCH_ID_MAX];
    uint64_t created_ms;   /* wall clock written just before the create call; 0 before */
    uint32_t *jobs;        /* n jobs, with the attempt each was sent as */
    uint32_t *attempts;
    size_t n;
} worker__batch_rec;

/* Frees what r holds and zeroes it; r may be NULL. */
void worker__batch_rec_clear(worker__batch_rec *r);

/* Makes a record for the jobs (n > 0, with their attempts) of (run, model)
 * and makes owner (a worker id) its owner for owner_ms: atomically, each
 * job not already in an open batch is put in this one; the others are left
 * out. On EMPQ_OK *out holds the record with the jobs taken (out->n may be
 * 0: then no record was written and nothing needs doing). EMPQ_EINVAL
 * (NULL or empty arguments), EMPQ_ESTORE / EMPQ_ENOMEM with err set. */
int worker__batch_prepare(empq_store *s, const char *run, uint32_t model, const uint32_t *jobs,
                          const uint32_t *attempts, size_t n, const char *owner, uint32_t owner_ms,
                          worker__batch_rec *out, empq_error *err);

/* Moves record key from its current state to the next one, to, writing
 * field = value with it (field may be NULL: "file_id" with UPLOADED,
 * "batch_id" with SUBMITTED; "created_ms" may be written in PREPARED or
 * UPLOADED with to equal to the current state). EMPQ_OK; EMPQ_ESTATE when
 * the record is not in the state before to (nothing written);
 * EMPQ_ENOTFOUND when there is no record; EMPQ_ESTORE with err set. */
int worker__batch_advance(empq_store *s, const char *key, worker__batch_state to, const char *field,
                          const char *value, empq_error *err);

/* Takes or renews the ownership of record key for owner for ttl_ms: 1 when
 * owner holds it now, 0 when another worker does; negative EMPQ_ESTORE. */
int worker__batch_claim(empq_store *s, const char *key, const char *owner, uint32_t ttl_ms, empq_error *err);

/* The owner of record key into owner (len bytes; "" when the owner's time
 * has passed or there is none). EMPQ_OK; EMPQ_ESTORE with err set. */
int worker__batch_owner(empq_store *s, const char *key, char *owner, size_t len, empq_error *err);

/* Reads record key into out (cleared first). EMPQ_OK; EMPQ_ENOTFOUND;
 * EMPQ_EPARSE for a record that does not read; EMPQ_ESTORE with err set. */
int worker__batch_load(empq_store *s, const char *key, worker__batch_rec *out, empq_error *err);

/* Closes record key: state done, out of the open set, its jobs out of
 * their run's batched hash (only where they still name this key), the
 * owner key gone. Idempotent. EMPQ_OK; EMPQ_ENOTFOUND; EMPQ_ESTORE. */
int worker__batch_finish(empq_store *s, const char *key, empq_error *err);

/* The keys of the open records. On EMPQ_OK *keys (n strings; free with
 * empq_store_free_strings). EMPQ_ESTORE with err set. */
int worker__batch_open_keys(empq_store *s, char ***keys, size_t *n, empq_error *err);

/* The provider batch ids of the open records other than except (may be
 * NULL): what a search for a lost create must not take. On EMPQ_OK *ids (n
 * strings, free with empq_store_free_strings). EMPQ_ESTORE with err set. */
int worker__batch_taken_ids(empq_store *s, const char *except, char ***ids, size_t *n, empq_error *err);

#endif
