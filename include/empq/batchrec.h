/* batchrec.h: the durable records of provider batches (docs/internals.md,
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
 * States only move forward, one step at a time (empq_batchrec_advance). */
#ifndef EMPQ_EMPQ_BATCHREC_H
#define EMPQ_EMPQ_BATCHREC_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"
#include "empq/store.h"

#define EMPQ_BATCHREC_KEY_MAX 160
#define EMPQ_BATCHREC_ID_MAX 128

/* A record's state: each written before the next provider call. */
typedef enum empq_batchrec_state {
    /* the jobs are ours; nothing sent yet (or a create whose answer was lost) */
    EMPQ_BATCHREC_PREPARED = 0,
    /* OpenAI: the input file is uploaded, file_id known */
    EMPQ_BATCHREC_UPLOADED = 1,
    /* the provider's batch id is known */
    EMPQ_BATCHREC_SUBMITTED = 2,
    /* the provider says it ended; results not all written yet */
    EMPQ_BATCHREC_ENDED = 3,
    /* every job has its result, retry or dead letter; the record is closed */
    EMPQ_BATCHREC_DONE = 4
} empq_batchrec_state;

/* "prepared", "uploaded", "submitted", "ended", "done". */
const char *empq_batchrec_state_name(empq_batchrec_state s);

/* A record as read back. jobs and attempts are owned (free with
 * empq_batchrec_clear). */
typedef struct empq_batchrec {
    char key[EMPQ_BATCHREC_KEY_MAX];
    char run[EMPQ_BATCHREC_KEY_MAX];
    uint32_t model;
    empq_batchrec_state state;
    char file_id[EMPQ_BATCHREC_ID_MAX];
    char batch_id[EMPQ_BATCHREC_ID_MAX];
    uint64_t created_ms;   /* wall clock written just before the create call; 0 before */
    char provider_status[32]; /* the provider's word at the last poll (empq_batchrec_note) */
    uint32_t total, succeeded, failed;
    uint64_t expires_ms;
    uint32_t *jobs;        /* n jobs, with the attempt each was sent as */
    uint32_t *attempts;
    size_t n;
} empq_batchrec;

/* Frees what r holds and zeroes it; r may be NULL. */
void empq_batchrec_clear(empq_batchrec *r);

/* Makes a record for the jobs (n > 0, with their attempts) of (run, model)
 * and makes owner (a worker id) its owner for owner_ms: atomically, each
 * job not already in an open batch is put in this one; the others are left
 * out. On EMPQ_OK *out holds the record with the jobs taken (out->n may be
 * 0: then no record was written and nothing needs doing). EMPQ_EINVAL
 * (NULL or empty arguments), EMPQ_ESTORE / EMPQ_ENOMEM with err set. */
int empq_batchrec_prepare(empq_store *s, const char *run, uint32_t model, const uint32_t *jobs,
                          const uint32_t *attempts, size_t n, const char *owner, uint32_t owner_ms,
                          empq_batchrec *out, empq_error *err);

/* Moves record key from its current state to the next one, to, writing
 * field = value with it (field may be NULL: "file_id" with UPLOADED,
 * "batch_id" with SUBMITTED; "created_ms" may be written in PREPARED or
 * UPLOADED with to equal to the current state). EMPQ_OK; EMPQ_ESTATE when
 * the record is not in the state before to (nothing written);
 * EMPQ_ENOTFOUND when there is no record; EMPQ_ESTORE with err set. */
int empq_batchrec_advance(empq_store *s, const char *key, empq_batchrec_state to, const char *field,
                          const char *value, empq_error *err);

/* Notes what the last poll of record key said (the provider's status word,
 * its request counts and deadline), for empq status. EMPQ_OK; EMPQ_ESTORE
 * with err set. */
int empq_batchrec_note(empq_store *s, const char *key, const char *status, uint32_t total, uint32_t succeeded,
                       uint32_t failed, uint64_t expires_ms, empq_error *err);

/* Takes or renews the ownership of record key for owner for ttl_ms: 1 when
 * owner holds it now, 0 when another worker does; negative EMPQ_ESTORE. */
int empq_batchrec_claim(empq_store *s, const char *key, const char *owner, uint32_t ttl_ms, empq_error *err);

/* The owner of record key into owner (len bytes; "" when the owner's time
 * has passed or there is none). EMPQ_OK; EMPQ_ESTORE with err set. */
int empq_batchrec_owner(empq_store *s, const char *key, char *owner, size_t len, empq_error *err);

/* Reads record key into out (cleared first). EMPQ_OK; EMPQ_ENOTFOUND;
 * EMPQ_EPARSE for a record that does not read; EMPQ_ESTORE with err set. */
int empq_batchrec_load(empq_store *s, const char *key, empq_batchrec *out, empq_error *err);

/* Closes record key: state done, out of the open set, its jobs out of
 * their run's batched hash (only where they still name this key), the
 * owner key gone. Idempotent. EMPQ_OK; EMPQ_ENOTFOUND; EMPQ_ESTORE. */
int empq_batchrec_finish(empq_store *s, const char *key, empq_error *err);

/* The keys of the open records. On EMPQ_OK *keys (n strings; free with
 * empq_store_free_strings). EMPQ_ESTORE with err set. */
int empq_batchrec_open_keys(empq_store *s, char ***keys, size_t *n, empq_error *err);

/* The jobs of run that are in an open record (the run's batched hash), for
 * a broker that starts. On EMPQ_OK *jobs (n of them; caller frees, NULL
 * when n is 0 may still be allocated). EMPQ_EINVAL; EMPQ_ESTORE, EMPQ_ENOMEM
 * with err set. */
int empq_batchrec_run_jobs(empq_store *s, const char *run, uint32_t **jobs, size_t *n, empq_error *err);

/* The provider batch ids of the open records other than except (may be
 * NULL): what a search for a lost create must not take. On EMPQ_OK *ids (n
 * strings, free with empq_store_free_strings). EMPQ_ESTORE with err set. */
int empq_batchrec_taken_ids(empq_store *s, const char *except, char ***ids, size_t *n, empq_error *err);

#endif
