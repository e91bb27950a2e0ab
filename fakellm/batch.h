/* batch.h: the providers' batch APIs in empq-fakellm (docs/fakellm.md, "Batches").
 *
 * One in-memory store (a test double: bounded, lost at exit) holds the
 * uploaded files and the batches of the three providers:
 *   OpenAI     (batch_openai.c)    POST/GET /v1/files, GET /v1/files/{id},
 *              GET /v1/files/{id}/content, DELETE /v1/files/{id},
 *              POST/GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel
 *   Anthropic  (batch_anthropic.c) POST/GET /v1/messages/batches,
 *              GET /v1/messages/batches/{id}, POST /v1/messages/batches/{id}/cancel,
 *              GET /v1/messages/batches/{id}/results, DELETE /v1/messages/batches/{id}
 *   Gemini     (batch_gemini.c)    POST /v1beta/models/{model}:batchGenerateContent,
 *              GET /v1beta/batches, GET and DELETE /v1beta/batches/{id},
 *              POST /v1beta/batches/{id}:cancel (also under /v1/)
 *
 * A batch's life is the OpenAI status machine (fakellm_batch_state); the
 * Anthropic processing_status is read off it (in_progress | canceling |
 * ended), and so is the Gemini BATCH_STATE_* (batch_gemini.c). Created "validating", it moves at once (on the timer) to
 * in_progress, or to failed when its input file broke a rule. While
 * in_progress it works through its requests evenly over --batch-delay-ms:
 * request i of n is answered once (i + 1) / n of the delay has passed (seen
 * on every read of the batch, so the counts grow), and at the delay's end
 * (one entry in the store's timer heap per batch: no thread or sleep per
 * batch) it finalizes and completes. With --batch-expire it works through
 * only the first half of its requests and expires at the delay's end: the
 * rest are expired. A cancel answers what is due, moves to cancelling, and
 * on the timer's next turn to cancelled: the requests not yet answered are
 * cancelled. Each request is answered by the interactive endpoint's own
 * function (fakellm_openai_chat, fakellm_anthropic_messages,
 * fakellm_gemini_generate), so a batch
 * answer has the same words and usage as the interactive answer; a share
 * --batch-fail of them (seeded draw per batch and line) fails with the
 * provider's 500 instead. With --batch-lose-create N the first N creates of
 * each provider (after the first --batch-lose-after M) make their batch (it runs and is listed like any other) but
 * their answer is lost: the connection is closed without a reply, or a
 * gateway's 500, 502 or 504 comes instead (--batch-lose-as), as when a proxy
 * gives up on a create the provider did carry out.
 *
 * Every function is thread-safe (one mutex: the HTTP threads and the timer
 * thread share the store). */
#ifndef FAKELLM_BATCH_H
#define FAKELLM_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"
#include "empq/util.h"
#include "reply.h"

/* ------------------------------------------------------------------------ */
/* State machine                                                             */
/* ------------------------------------------------------------------------ */

typedef enum fakellm_batch_state {
    /* created; its input is being checked */
    FAKELLM_BATCH_VALIDATING = 0,
    /* the input broke a rule (errors say which); nothing ran */
    FAKELLM_BATCH_FAILED,
    /* requests are being answered */
    FAKELLM_BATCH_IN_PROGRESS,
    /* every request ran; the output files are being written */
    FAKELLM_BATCH_FINALIZING,
    /* done: results available */
    FAKELLM_BATCH_COMPLETED,
    /* the window ended first: requests not run are expired */
    FAKELLM_BATCH_EXPIRED,
    /* a cancel was asked; requests not run are being cancelled */
    FAKELLM_BATCH_CANCELLING,
    /* cancelled: partial results available */
    FAKELLM_BATCH_CANCELLED,
    FAKELLM_BATCH_STATE_COUNT
} fakellm_batch_state;

/* The OpenAI status string ("validating", ...; "?" when out of range). */
const char *fakellm_batch_state_name(fakellm_batch_state s);

/* The Anthropic processing_status: "in_progress" (validating, in_progress,
 * finalizing), "canceling" (cancelling), "ended" (the terminal states). */
const char *fakellm_batch_anthropic_status(fakellm_batch_state s);

/* 1 for failed, completed, expired and cancelled. */
int fakellm_batch_state_terminal(fakellm_batch_state s);

/* Moves *s to `to` when the machine allows it:
 *   validating  -> in_progress | failed | cancelling
 *   in_progress -> finalizing | expired | cancelling
 *   finalizing  -> completed
 *   cancelling  -> cancelled
 * Returns EMPQ_OK, or EMPQ_ESTATE (*s unchanged) for any other move. */
int fakellm_batch_transition(fakellm_batch_state *s, fakellm_batch_state to);

/* ------------------------------------------------------------------------ */
/* OpenAI input lines                                                        */
/* ------------------------------------------------------------------------ */

/* The Batch API's limit on requests per input file. */
#define FAKELLM_BATCH_OPENAI_MAX_REQUESTS 50000
/* The Message Batches API's limit on requests per batch. */
#define FAKELLM_BATCH_ANTHROPIC_MAX_REQUESTS 100000
/* Errors listed in a failed batch's "errors" at most. */
#define FAKELLM_BATCH_MAX_ERRORS 10

/* One request of an OpenAI input file. Strings owned by the parse. */
typedef struct fakellm_batch_line {
    char *custom_id;
    char *body; /* the "body" object, compact JSON */
    size_t body_len;
} fakellm_batch_line;

/* An OpenAI input file, parsed and checked. */
typedef struct fakellm_batch_input {
    fakellm_batch_line *lines;
    size_t n;
    char *model;  /* the one model of the file (NULL when no line named one) */
    void *errors; /* json_t *: the list of BatchError objects {code, message, param, line}, or NULL when valid */
} fakellm_batch_input;

/* Parses and checks an OpenAI batch input file (JSONL, len bytes) for a
 * batch on endpoint, as the Batch API's validation does: each non-empty
 * line a JSON object {"custom_id": non-empty string, "method": "POST",
 * "url": endpoint, "body": object with "model"}, custom_ids unique, one
 * model per file, at least one and at most max_requests lines. Every broken
 * rule is listed in in->errors (up to FAKELLM_BATCH_MAX_ERRORS, with its
 * 1-based line). Returns EMPQ_OK (in filled, valid or not: check errors) or
 * EMPQ_ENOMEM. Free in with fakellm_batch_input_clear. */
int fakellm_batch_parse_openai(const char *data, size_t len, const char *endpoint, size_t max_requests,
                               fakellm_batch_input *in);

/* Frees what in owns and zeroes it; in may be NULL. */
void fakellm_batch_input_clear(fakellm_batch_input *in);

/* ------------------------------------------------------------------------ */
/* The store                                                                 */
/* ------------------------------------------------------------------------ */

typedef enum fakellm_batch_provider {
    FAKELLM_BATCH_OPENAI = 0,
    FAKELLM_BATCH_ANTHROPIC,
    FAKELLM_BATCH_GEMINI,
    FAKELLM_BATCH_PROVIDERS
} fakellm_batch_provider;

typedef struct fakellm_batch_options {
    unsigned delay_ms;  /* how long a batch stays in_progress; default 0 (done at the first timer turn) */
    double fail_p;      /* share of requests that fail with the provider's 500; default 0 */
    int expire;         /* batches expire at the delay's end, half their requests unanswered */
    uint64_t seed;      /* the failure draw's seed */
    size_t max_objects; /* files plus batches kept; default 10000 */
    size_t max_bytes;   /* bytes of files, Anthropic requests and results kept; default 512 MiB */
    unsigned lose_create; /* lose_create batch creates of each provider, after the first lose_after,
                             make their batch but their answer is lost (lose_status); default 0 */
    unsigned lose_after;
    unsigned lose_status; /* how: 0 = the connection is closed without a reply, else a
                             gateway's 500, 502 or 504 page; default 504 */
} fakellm_batch_options;

/* Fills o with the defaults above. */
void fakellm_batch_options_init(fakellm_batch_options *o);

typedef struct fakellm_batch_store fakellm_batch_store;

/* Creates a store and starts its timer thread. On EMPQ_OK *out is the store
 * (free with fakellm_batch_store_free); EMPQ_EINVAL (fail_p not in [0, 1]),
 * EMPQ_ENOMEM or EMPQ_EIO with err set. */
int fakellm_batch_store_new(const fakellm_batch_options *o, fakellm_batch_store **out, empq_error *err);

/* Stops the timer (batches still running stay as they are) and frees
 * everything. *sp is set to NULL; sp and *sp may be NULL. */
void fakellm_batch_store_free(fakellm_batch_store **sp);

/* The counters per provider, as JSON appended to out:
 *   {"openai": {"files_uploaded", "file_gets", "file_lists", "file_downloads",
 *               "deletes", "batches_created", "batch_gets", "batch_lists",
 *               "cancels", "results_downloads", "requests_succeeded", "requests_failed",
 *               "requests_expired", "requests_cancelled", "creates_lost", "open"},
 *    "anthropic": {the same}, "gemini": {the same}}
 * ("file_*" stay 0 for Anthropic; "deletes" counts OpenAI file and
 * Anthropic and Gemini batch deletions; "results_downloads" counts OpenAI
 * downloads of a batch's output or error file, Anthropic results calls and
 * Gemini gets of an ended batch (its responses come with it);
 * "creates_lost" counts the creates whose answer --batch-lose-create lost,
 * their batches counted in "batches_created";
 * "open" is the batches not yet ended, a gauge). Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_batch_stats_json(fakellm_batch_store *st, empq_buf *out);

/* Zeroes the counters (not the gauge "open"; the stored objects stay). */
void fakellm_batch_stats_reset(fakellm_batch_store *st);

/* What a batch route needs of its request. All borrowed for the call. */
typedef struct fakellm_batch_call {
    const char *method;
    const char *path;         /* without the query string */
    const char *body;         /* NUL-terminated */
    size_t body_len;
    const char *content_type; /* the Content-Type header, or NULL */
    const char *host;         /* the Host header, or NULL (Anthropic results_url) */
    uint64_t request_id;      /* unique per request */
    void *conn;               /* the MHD connection (multipart parsing), or NULL */
    /* query arguments by name (NULL when absent) */
    const char *(*query)(const struct fakellm_batch_call *call, const char *name);
    const void *query_user;
} fakellm_batch_call;

/* Answers one OpenAI files or batches request (the caller checked the key).
 * Fills out with the object, list, content or the API's error. Returns
 * EMPQ_OK when out is filled, whatever its status; EMPQ_ENOMEM otherwise. */
int fakellm_batch_openai(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out);

/* Answers one Anthropic message-batches request (the caller checked the key
 * and version). Returns as fakellm_batch_openai. */
int fakellm_batch_anthropic(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out);

/* Answers one Gemini batch request (the caller checked the key). Returns
 * as fakellm_batch_openai. */
int fakellm_batch_gemini(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out);

/* 1 when path is a Gemini batch path (batch_gemini.c), else 0. */
int fakellm_batch_gemini_match(const char *path);

#endif
