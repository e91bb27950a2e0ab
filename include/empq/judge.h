/* judge.h: LLM judges: the strict reading of a verdict and judge-ratings.csv.
 *
 * A judge run (docs/judge.md) is a normal run whose prompts are responses to
 * rate (Prompt.response, Prompt.source) and whose models have
 * ModelSpec.output = "judge". The worker sends each model's request in the
 * provider's JSON mode (lib/provider.c) and reads each reply through
 * empq_judge_check: a verdict is
 *
 *   a JSON object {"label": "Good"|"Okay"|"Bad", "reason": "..."}
 *     (only those two keys; reason optional, a string), or
 *   a bare label: Good, Okay or Bad alone (a final '.' allowed),
 *
 * labels matched without regard to case, surrounding whitespace ignored.
 * Anything else is never turned into a rating: an answer that names a label
 * outside the scale (JSON label "Excellent", a bare "4" or "Great") is
 * `judge_off_scale`, any other text `judge_unparseable`; both are retried and
 * end as dead letters with that reason after the model's max_attempts. */
#ifndef EMPQ_JUDGE_H
#define EMPQ_JUDGE_H

#include <stddef.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/provider.h"
#include "empq/store.h"
#include "empq/util.h"

/* The scale, numbered as the rating site numbers it (1 Bad, 2 Okay, 3 Good). */
#define EMPQ_JUDGE_BAD 1
#define EMPQ_JUDGE_OKAY 2
#define EMPQ_JUDGE_GOOD 3

/* The value of ModelSpec.output that makes a model a judge. */
#define EMPQ_JUDGE_OUTPUT "judge"

/* Longest reason kept from a verdict (bytes; longer ones are cut on a UTF-8
 * boundary). */
#define EMPQ_JUDGE_REASON_MAX 400

/* Why a verdict was refused. */
typedef enum empq_judge_fault {
    EMPQ_JUDGE_FAULT_NONE = 0,
    EMPQ_JUDGE_FAULT_UNPARSEABLE, /* "judge_unparseable" */
    EMPQ_JUDGE_FAULT_OFF_SCALE    /* "judge_off_scale" */
} empq_judge_fault;

/* "Good", "Okay", "Bad" for 3, 2, 1; NULL for anything else. */
const char *empq_judge_label_name(int label);

/* Constant name of a fault ("judge_unparseable"); "" for NONE. */
const char *empq_judge_fault_name(empq_judge_fault f);

/* 1 when m (may be NULL) is a judge (output "judge"), else 0. */
int empq_judge_is_judge(const Empq__ModelSpec *m);

/* Reads a verdict from text (may be NULL: unparseable). On EMPQ_OK *label
 * is 1..3 and, when reason is not NULL, reason[0..reason_len) holds the
 * verdict's reason ("" when none; cut to fit). On EMPQ_EPARSE *fault says
 * which kind and why[0..why_len) (may be NULL) reads
 * "judge_unparseable: <what>" or "judge_off_scale: label '<label>'", an
 * excerpt of the answer with control characters replaced. */
int empq_judge_parse(const char *text, int *label, char *reason, size_t reason_len,
                     empq_judge_fault *fault, char *why, size_t why_len);

/* The worker's hook after empq_provider_parse: when m is a judge and r is a
 * success whose text is not a verdict, r becomes RETRYABLE with the reason
 * from empq_judge_parse (the answer is then neither cached nor stored as a
 * result; after the last attempt it is a dead letter with that reason).
 * Anything else is left as it is. m and r may be NULL (nothing done). */
void empq_judge_check(const Empq__ModelSpec *m, empq_provider_result *r);

/* The header line of judge-ratings.csv, CRLF-terminated (docs/judge.md):
 * the judge's alias, the sample (1-based: the job's sample index + 1), item
 * (the dialogue id) and condition (the judged response's source) as
 * `empq analyze --judge` reads them (docs/analysis.md), the judge run's
 * prompt index, the dialogue's emotion and sentiment, the response's length
 * in words (as the style analysis counts them) and in characters, the label
 * (Good, Okay, Bad) and the judge's reason. */
#define EMPQ_JUDGE_CSV_HEADER                                                                          \
    "run_id,judge,sample,item,condition,prompt_id,emotion,sentiment,length,response_chars,label,reason\r\n"

/* Appends judge-ratings.csv for run (header and one row per result of a
 * judge model, in job order) to out. prompts[i] is the prompt of index i
 * (n_prompts of them; NULL when missing: the row's prompt fields are
 * empty); results in any order, duplicates by job written once. A stored
 * result whose text is not a verdict (not possible through the worker) is
 * left out and counted in *skipped. *rows (may be NULL) and *skipped (may
 * be NULL) receive the counts. Pure. Returns EMPQ_OK, EMPQ_EINVAL (a
 * result naming a model outside the spec) or EMPQ_ENOMEM. */
int empq_judge_csv_render(const Empq__Run *run, Empq__Prompt *const *prompts, size_t n_prompts,
                          Empq__Result *const *results, size_t n_results, empq_buf *out, size_t *rows,
                          size_t *skipped, empq_error *err);

/* 1 when run's spec has a judge model, else 0. run may be NULL. */
int empq_judge_is_judge_run(const Empq__Run *run);

/* Reads run_id's run, prompts and results from s and writes
 * judge-ratings.csv to path atomically. *rows (may be NULL) receives the
 * row count. Returns EMPQ_OK; EMPQ_ENOTFOUND (no such run), EMPQ_EINVAL
 * (the run has no judge model), EMPQ_ESTORE, EMPQ_EIO (err names the file),
 * EMPQ_ENOMEM. */
int empq_judge_write_csv(empq_store *s, const char *run_id, const char *path, size_t *rows,
                         empq_error *err);

#endif
