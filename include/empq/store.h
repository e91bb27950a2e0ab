/* store.h: every durable fact of empq, in Redis (hiredis).
 *
 * Keys (prefix "empq:"; see docs/internals.md for the whole schema):
 *   empq:runs                      SET    every run id
 *   empq:run:{id}                  STRING Run (protobuf)
 *   empq:run:{id}:prompts          HASH   prompt index -> Prompt
 *   empq:run:{id}:results          HASH   job index -> Result (first write wins)
 *   empq:run:{id}:dead             HASH   job index -> DeadLetter
 *   empq:cache:{sha256 hex}        STRING Generation (the response cache)
 *   empq:results                   STREAM one entry (run, job) per first result
 *
 * A store handle is one synchronous hiredis connection; it is not thread
 * safe. Bulk calls pipeline their commands: one round trip per call, not per
 * item. Every call returns EMPQ_OK or a negative EMPQ_E* code; the handle
 * keeps the text of the last error (empq_store_errstr). When the connection
 * breaks, the next call reconnects once before failing with EMPQ_ESTORE. */
#ifndef EMPQ_STORE_H
#define EMPQ_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"

typedef struct empq_store empq_store;

#define EMPQ_CACHE_KEY_HEX 65 /* 64 hex digits and NUL */

/* Opens a connection to url ("redis://[user:password@]host:port[/db]", or
 * "host:port"); the password may also come from EMPQ_REDIS_PASSWORD.
 * On success *out owns a handle to free with empq_store_close. On failure
 * *out is NULL, err names the URL and the reason, and EMPQ_ESTORE (or
 * EMPQ_EINVAL for a malformed URL) is returned. */
int empq_store_open(empq_store **out, const char *url, int timeout_ms, empq_error *err);

/* Closes and frees *s and sets it to NULL; s and *s may be NULL. */
void empq_store_close(empq_store **s);

/* Text of the last error on this handle; never NULL, owned by the handle. */
const char *empq_store_errstr(const empq_store *s);

/* The URL the handle was opened with (password masked); owned by the handle. */
const char *empq_store_url(const empq_store *s);

/* PING. Returns EMPQ_OK or EMPQ_ESTORE. */
int empq_store_ping(empq_store *s);

/* ---- runs -------------------------------------------------------------- */

/* Writes a new run: its prompts (n of them, prompts[i]->index == i), then the
 * Run value, then adds the id to empq:runs. Returns EMPQ_EEXIST when a run
 * with that id exists, EMPQ_ESTORE on Redis failure. */
int empq_store_run_create(empq_store *s, const Empq__Run *run, Empq__Prompt *const *prompts, size_t n);

/* Removes every key of run run_id (the Run value, its prompts, results,
 * dead letters and attempts) and its id from empq:runs: what a submit wrote
 * before the run was refused. A run that is not there is no error.
 * Returns EMPQ_OK or EMPQ_ESTORE. */
int empq_store_run_delete(empq_store *s, const char *run_id);

/* Reads a run. On EMPQ_OK *out is the caller's, freed with
 * empq__run__free_unpacked(*out, NULL). EMPQ_ENOTFOUND when no such run,
 * EMPQ_EPARSE when the stored value does not decode. */
int empq_store_run_get(empq_store *s, const char *run_id, Empq__Run **out);

/* Rewrites the run's state (read-modify-write of empq:run:{id}). */
int empq_store_run_set_state(empq_store *s, const char *run_id, Empq__RunState state);

/* Lists every run id. On EMPQ_OK *ids is an array of *n strings; free with
 * empq_store_free_strings(*ids, *n). */
int empq_store_run_list(empq_store *s, char ***ids, size_t *n);
void empq_store_free_strings(char **v, size_t n);

/* Reads n prompts of a run by index (one HMGET). out[i] receives the prompt
 * of idx[i] (caller frees each with empq__prompt__free_unpacked), or NULL
 * when missing. Returns EMPQ_OK even when some are missing. */
int empq_store_prompts_get(empq_store *s, const char *run_id, const uint32_t *idx, size_t n,
                           Empq__Prompt **out);

/* ---- the response cache ------------------------------------------------ */

/* Looks up n cache keys (one MGET). out[i] is the Generation of keys[i]
 * (caller frees with empq__generation__free_unpacked) or NULL on a miss. */
int empq_store_cache_get(empq_store *s, const char *const *keys, size_t n, Empq__Generation **out);

/* ---- results and dead letters -------------------------------------------- */

/* One finished job to record. cache_key may be NULL (nothing cached, e.g. a
 * cache hit or the human source); gen is then stored in the result only. */
typedef struct empq_store_put {
    const Empq__Result *result;
    const char *cache_key; /* hex; the result's gen is written there too */
} empq_store_put;

/* Records n results in one pipeline. For each, atomically: HSETNX the result
 * under its job index and, only when it was new, XADD (run, job) to
 * empq:results; and SET the cache entry when cache_key is given. fresh[i]
 * (fresh may be NULL) is 1 when the result was new, 0 when the job already
 * had one (a re-delivery: nothing changed). */
int empq_store_results_put(empq_store *s, const empq_store_put *items, size_t n, int *fresh);

/* Records a dead letter (HSETNX: the first reason is kept). */
int empq_store_dead_put(empq_store *s, const Empq__DeadLetter *d);

/* Calls fn(job, value, len, arg) for every job index of the run that has a
 * result (results != 0) or a dead letter (results == 0), scanning in
 * batches; value is the stored message (a packed Result or DeadLetter),
 * valid during the call only. */
int empq_store_scan_finished(empq_store *s, const char *run_id, int results,
                             void (*fn)(uint32_t job, const uint8_t *value, size_t len, void *arg), void *arg);

/* HLEN of the run's results and dead hashes; either pointer may be NULL. */
int empq_store_counts(empq_store *s, const char *run_id, uint64_t *results, uint64_t *dead);

/* Reads every result of a run. On EMPQ_OK *out is an array of *n results
 * in no particular order (a job may appear twice while Redis rehashes: order
 * by job and drop repeats); free with empq_store_free_results(*out, *n),
 * which accepts NULL. On failure (EMPQ_ESTORE, EMPQ_ENOMEM) *out is NULL and
 * *n 0. An undecodable stored value is logged and skipped. */
int empq_store_results_all(empq_store *s, const char *run_id, Empq__Result ***out, size_t *n);
void empq_store_free_results(Empq__Result **v, size_t n);

/* Reads every dead letter of a run, like empq_store_results_all. */
int empq_store_dead_all(empq_store *s, const char *run_id, Empq__DeadLetter ***out, size_t *n);
void empq_store_free_dead(Empq__DeadLetter **v, size_t n);

/* ---- attempts that survive a broker restart ------------------------------ */

/* Adds one to the failed-attempt count of each of the n jobs (HINCRBY
 * empq:run:{id}:attempts JOB 1, one pipeline), so a restarted broker goes
 * on counting toward max_attempts. EMPQ_OK or EMPQ_ESTORE. */
int empq_store_attempts_add(empq_store *s, const char *run_id, const uint32_t *jobs, size_t n);

/* Calls fn(job, attempts, arg) for every job of the run with a recorded
 * failed attempt (HSCAN in batches). EMPQ_OK (also when there are none) or
 * EMPQ_ESTORE. */
int empq_store_attempts_scan(empq_store *s, const char *run_id,
                             void (*fn)(uint32_t job, uint32_t attempts, void *arg), void *arg);

/* Forgets every recorded attempt of the run (a rerun of its dead jobs
 * starts their count again). EMPQ_OK or EMPQ_ESTORE. */
int empq_store_attempts_clear(empq_store *s, const char *run_id);

/* ---- the results stream (collector) -------------------------------------- */

typedef struct empq_stream_entry {
    char id[48];      /* stream entry id */
    char run_id[128];
    uint32_t job;
} empq_stream_entry;

/* Creates the consumer group (MKSTREAM) if it does not exist yet. */
int empq_store_stream_group(empq_store *s, const char *group);

/* XREADGROUP up to max entries for consumer, blocking up to block_ms
 * (0: do not block). Entries first pending for this consumer (after a
 * restart) are returned before new ones. *n receives the count. */
int empq_store_stream_read(empq_store *s, const char *group, const char *consumer,
                           empq_stream_entry *out, size_t max, int block_ms, size_t *n);

/* XACK the given entries. */
int empq_store_stream_ack(empq_store *s, const char *group, const empq_stream_entry *e, size_t n);

/* Deletes the stream entries every consumer group has read and acked: those
 * below the smallest, over all groups, of the group's oldest pending entry
 * (or, with none pending, its last delivered id). Trims nothing while any
 * group has read nothing yet, or when there is no group (no collector ever
 * ran), so an entry a collector that is down still needs is never removed.
 * *removed (may be NULL) receives the number deleted. EMPQ_OK (also when the
 * stream does not exist), EMPQ_ESTORE with empq_store_errstr. */
int empq_store_stream_trim(empq_store *s, uint64_t *removed);

/* ---- bulk reads (the study console) --------------------------------------
 * Each call below is a constant number of round trips, whatever the number
 * of jobs or prompts it reads. */

/* The results and dead letters of n jobs of a run in one pipeline (HMGET on
 * the results hash and on the dead hash: one round trip). results[i] and
 * dead[i] receive the decoded value of jobs[i] (caller frees with
 * empq__result__free_unpacked / empq__dead_letter__free_unpacked) or NULL.
 * EMPQ_OK (also when some or all are missing), EMPQ_ENOMEM, EMPQ_ESTORE. */
int empq_store_jobs_get(empq_store *s, const char *run_id, const uint32_t *jobs, size_t n,
                        Empq__Result **results, Empq__DeadLetter **dead);

/* Every prompt of a run (one HGETALL). On EMPQ_OK *out is an array of *n
 * entries indexed by prompt index (NULL where missing or undecodable; *n is
 * the highest index + 1), freed with empq_store_free_prompts, which accepts
 * NULL. On failure *out is NULL and *n 0. */
int empq_store_prompts_all(empq_store *s, const char *run_id, Empq__Prompt ***out, size_t *n);
void empq_store_free_prompts(Empq__Prompt **v, size_t n);

/* The state of every job of a run, from HKEYS of its results and dead
 * hashes (one pipeline): state[job] (total entries, the caller's) becomes
 * 0 (neither: pending or leased), EMPQ_STORE_JOB_DONE or
 * EMPQ_STORE_JOB_DEAD (done wins over dead: a dead job rerun). Job indexes
 * >= total are ignored. EMPQ_OK or EMPQ_ESTORE. */
#define EMPQ_STORE_JOB_DONE 1
#define EMPQ_STORE_JOB_DEAD 2
int empq_store_job_states(empq_store *s, const char *run_id, uint8_t *state, size_t total);

/* Every result and every dead letter of a run: HGETALL of both hashes in one
 * pipeline (one round trip; empq_store_results_all scans in batches
 * instead). Arrays in no order, freed with empq_store_free_results and
 * empq_store_free_dead; undecodable values are logged and skipped. res and
 * nr may be NULL: the dead letters only (one HGETALL). On failure
 * (EMPQ_ESTORE, EMPQ_ENOMEM) the arrays are NULL and the counts 0. */
int empq_store_finished_all(empq_store *s, const char *run_id, Empq__Result ***res, size_t *nr,
                            Empq__DeadLetter ***dead, size_t *nd);

/* Every run with its result and dead counts: SMEMBERS empq:runs, then one
 * pipeline of GET + HLEN + HLEN per run (two round trips in all). On EMPQ_OK
 * *out is an array of *n (runs whose value does not decode are left out),
 * freed with empq_store_free_runs_overview (accepts NULL). */
typedef struct empq_store_run_info {
    Empq__Run *run;   /* owned by the array */
    uint64_t results; /* HLEN of the results hash */
    uint64_t dead;    /* HLEN of the dead hash */
} empq_store_run_info;
int empq_store_runs_overview(empq_store *s, empq_store_run_info **out, size_t *n);
void empq_store_free_runs_overview(empq_store_run_info *v, size_t n);

/* ---- escape hatch ------------------------------------------------------ */

/* The underlying hiredis context (redisContext *), for commands this module
 * does not wrap yet. Owned by the handle. */
void *empq_store_redis(empq_store *s);

#endif
