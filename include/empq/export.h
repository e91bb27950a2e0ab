/* export.h: a run's results as responses.jsonl (and dead.jsonl).
 *
 * responses.jsonl holds one JSON object per line, one line per finished job
 * (prompt, source, sample), ordered by prompt index, then source order in
 * RunSpec.models, then sample: the job index order of docs/internals.md.
 * Every line has the same keys in the same order:
 *
 *   run_id, prompt_id, prompt_index, emotion, situation, prompt, response,
 *   source, model, model_version, sample, params, finish_reason, tokens_in,
 *   tokens_out, reasoning_tokens, cached_tokens, system_fingerprint,
 *   request_id, safety_ratings, thinking, latency_ms, attempts, cache_hit,
 *   started_at, finished_at, job
 *
 * `source` is the model's alias ("human" for the dataset's answer); `model`
 * the spec's model name (null for the human source); `model_version` the
 * version the provider reported (null when none); `params` an object of the
 * generation parameters the spec set; timestamps are ISO 8601 UTC with
 * milliseconds. A value the result does not carry is null, never left out.
 * tokens_out is the billed output (reasoning included; reasoning_tokens of
 * it), tokens_in the input (cached_tokens of it); request_id is the
 * provider's (x-request-id, request-id, Gemini responseId); safety_ratings
 * Gemini's candidate safetyRatings as JSON; thinking the thinking text,
 * only with the model's keep_thinking (never part of response).
 * Text is UTF-8 as is (no \u escapes); an invalid byte becomes U+FFFD.
 *
 * Jobs that ended as dead letters have no line in responses.jsonl; they go
 * to dead.jsonl beside it (same order; keys run_id, job, prompt_index,
 * prompt_id, source, sample, reason, last_status, body_excerpt, attempts,
 * at, worker, request_id, finish_reason, tokens_in, tokens_out,
 * reasoning_tokens, safety_ratings: what a reply without answer reported). Jobs with neither a result nor a dead letter are counted as
 * missing. */
#ifndef EMPQ_EXPORT_H
#define EMPQ_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/store.h"
#include "empq/util.h"

/* What an export wrote. Zero-initialise. */
typedef struct empq_export_stats {
    size_t total;   /* jobs of the run: prompts x sources x samples */
    size_t lines;   /* lines written to responses.jsonl */
    size_t missing; /* jobs with neither a result nor a dead letter yet */
    size_t dead;    /* dead letters (lines of dead.jsonl) */
    size_t cache_hits;
} empq_export_stats;

/* Samples per source of a run: the largest `samples` of its models (at
 * least 1). run may not be NULL. */
uint32_t empq_export_samples(const Empq__RunSpec *spec);

/* Total jobs of a run: n_prompts x n_models x samples. */
uint64_t empq_export_total_jobs(const Empq__Run *run);

/* Formats ms since the Unix epoch as "2026-11-22T03:57:22.123Z" into buf
 * (at least 25 bytes). Returns buf. */
const char *empq_export_iso8601(uint64_t ms, char *buf, size_t len);

/* Appends one responses.jsonl line (with its '\n') for result r of prompt p
 * in run to out. Pure: no I/O. Returns EMPQ_OK, EMPQ_EINVAL when r names a
 * model outside the spec, or EMPQ_ENOMEM (err says which). */
int empq_export_line(const Empq__Run *run, const Empq__Prompt *p, const Empq__Result *r,
                     empq_buf *out, empq_error *err);

/* Appends one dead.jsonl line for d (p may be NULL when the prompt is not
 * known) to out. Pure. Returns EMPQ_OK or EMPQ_ENOMEM. */
int empq_export_dead_line(const Empq__Run *run, const Empq__Prompt *p, const Empq__DeadLetter *d,
                          empq_buf *out, empq_error *err);

/* Builds both files' contents in memory from a run's parts, in job order.
 * prompts[i] is the prompt of index i (NULL when missing; its lines get
 * null prompt fields); results and dead in any order, duplicates by job
 * ignored (the first is kept), jobs outside the run ignored. Pure. responses and dead receive the text
 * (dead may be NULL: dead letters are then only counted). st may be NULL.
 * Returns EMPQ_OK, EMPQ_ENOMEM or EMPQ_EINVAL (err says which). */
int empq_export_render(const Empq__Run *run, Empq__Prompt *const *prompts, size_t n_prompts,
                       Empq__Result *const *results, size_t n_results,
                       Empq__DeadLetter *const *dead, size_t n_dead, empq_buf *responses,
                       empq_buf *dead_out, empq_export_stats *st, empq_error *err);

/* Reads run_id's run, prompts, results and dead letters from s and writes
 * dead.jsonl in path's folder when the run has dead letters (or replaces an
 * earlier one, empty when none are dead now), then path (responses.jsonl),
 * each atomically (a temporary file beside it, fsync, rename): when
 * responses.jsonl appears, its dead.jsonl is in place. The run is read in
 * job order a chunk of whole prompts (about 2,048 jobs) at a time, one
 * pipelined HMGET per hash, and each chunk's lines are written to the
 * temporary files before the next is read, so memory does not grow with the
 * run. A connection that breaks during the export is tried once more from
 * the start. st (may be NULL) receives the counts.
 * Returns EMPQ_OK (also when some jobs are still missing: see st->missing),
 * EMPQ_ENOTFOUND when no such run, EMPQ_ESTORE, EMPQ_EIO (err names the
 * file) or EMPQ_ENOMEM. */
int empq_export_responses(empq_store *s, const char *run_id, const char *path,
                          empq_export_stats *st, empq_error *err);

#endif
