/* collector.h: the collector's core: follow the results stream, and write a
 * run's responses.jsonl once every one of its jobs is done or dead.
 *
 * The collector reads empq:results as consumer `name` of group "collector"
 * (entries it was given before a restart and never acked come first). For
 * each run it sees it keeps the job total (from the Run) and, after each
 * batch, compares HLEN of the run's results and dead hashes with it; when
 * results + dead == total it writes OUT/<run>/responses.jsonl (and
 * dead.jsonl when there are dead letters) and logs event=run_exported. The
 * batch is acked after that, so a crash before the export means the entries
 * are read again on restart. Dead letters do not go through the stream, so
 * runs not yet complete are also checked every rescan_ms, and the list of
 * runs is rescanned then too (a run whose jobs all died, a run completed
 * while the collector was down). A run is written once; it is written again
 * only when it has more results than at its export (dead jobs rerun). */
#ifndef EMPQ_COLLECTOR_H
#define EMPQ_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"

typedef struct collector__opts {
    const char *redis_url; /* not NULL */
    const char *out_dir;   /* not NULL; created when missing */
    const char *name;      /* consumer name in the group */
    int block_ms;          /* longest wait for new entries (so signals are seen) */
    int rescan_ms;         /* how often incomplete runs and the run list are checked */
    size_t batch;          /* entries read at once */
    int trim_ms;           /* how often acked entries are trimmed from the stream (0: never) */
} collector__opts;

/* Defaults: block 500 ms, rescan 1000 ms, batch 1024, trim 5000 ms, name "collector-1",
 * out_dir "runs", redis_url from EMPQ_REDIS_URL or redis://127.0.0.1:6379. */
void collector__opts_default(collector__opts *o);

typedef struct collector collector;

/* Connects to Redis and creates the consumer group. On EMPQ_OK *out is the
 * caller's (collector__free). EMPQ_ESTORE when Redis is unreachable, err
 * naming the URL; EMPQ_EIO when out_dir cannot be created. */
int collector__new(collector **out, const collector__opts *o, empq_error *err);

/* Frees *c and sets it NULL; c and *c may be NULL. */
void collector__free(collector **c);

/* One turn: (re)scans the runs when due, reads one batch from the stream
 * (blocking up to block_ms), exports the runs that became complete, acks.
 * Returns EMPQ_OK, or EMPQ_ESTORE / EMPQ_EIO (logged here; the caller waits
 * a moment and calls again). *exported (may be NULL) receives the number of
 * runs written in this turn. */
int collector__step(collector *c, size_t *exported);

/* Runs written since start. */
uint64_t collector__exported(const collector *c);

/* Stream entries trimmed since start: after acking a batch, at most every
 * trim_ms, the collector deletes the entries every consumer group has read
 * and acked (empq_store_stream_trim), so empq:results does not grow
 * forever; nothing a stopped collector has not acked is deleted. */
uint64_t collector__trimmed(const collector *c);

/* A run id is used as a folder name: 1-127 characters of [A-Za-z0-9._:-],
 * not starting with '.'. Returns 1 when id is safe. */
int collector__safe_id(const char *id);

#endif
