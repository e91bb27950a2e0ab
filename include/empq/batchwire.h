/* batchwire.h: the providers' batch API formats, without any transport.
 *
 * Three providers have a batch mode in empq (docs/spec.md "Batch mode"):
 *
 *   openai     a JSONL input file of request lines
 *              {"custom_id": ID, "method": "POST", "url": "/v1/chat/completions", "body": {...}}
 *              uploaded as multipart to POST {base}/files (purpose=batch),
 *              then POST {base}/batches {"input_file_id", "endpoint",
 *              "completion_window", "metadata": {"empq_batch": KEY}};
 *              GET {base}/batches/{id}, GET {base}/batches?limit=100,
 *              POST {base}/batches/{id}/cancel; results in the output and
 *              error files, GET {base}/files/{file_id}/content, one line each
 *              {"id", "custom_id", "response": {"status_code", "request_id",
 *              "body"} or null, "error": {"code", "message"} or null}.
 *   anthropic  POST {base}/messages/batches {"requests": [{"custom_id": ID,
 *              "params": {...}}, ...]}; GET {base}/messages/batches/{id},
 *              GET {base}/messages/batches?limit=100,
 *              POST {base}/messages/batches/{id}/cancel; results at
 *              {base}/messages/batches/{id}/results, one line each
 *              {"custom_id", "result": {"type": "succeeded", "message"} |
 *              {"type": "errored", "error"} | {"type": "canceled"} |
 *              {"type": "expired"}}.
 *   gemini     POST {base}/models/{model}:batchGenerateContent
 *              {"batch": {"displayName": KEY, "inputConfig": {"requests":
 *              {"requests": [{"request": {...}, "metadata": {"key": ID}},
 *              ...]}}}} (inline requests); every call answers a
 *              long-running Operation {"name": "batches/{id}", "metadata":
 *              GenerateContentBatch {"displayName", "state":
 *              BATCH_STATE_PENDING | RUNNING | SUCCEEDED | FAILED |
 *              CANCELLED | EXPIRED, "batchStats", "createTime", "output"},
 *              "done", "error"}; GET {base}/batches/{id},
 *              GET {base}/batches?pageSize=100 ({"operations": [...],
 *              "nextPageToken"}), POST {base}/batches/{id}:cancel; the
 *              results come inline with the finished batch's GET:
 *              metadata.output.inlinedResponses.inlinedResponses, one
 *              {"response": GenerateContentResponse | "error": Status,
 *              "metadata": {"key": ID}} per request.
 *
 * The request bodies are the interactive ones (empq_provider_body), so a
 * batch answer and an interactive answer share one cache key and read into
 * the same Generation (empq_provider_parse reads the embedded replies). */
#ifndef EMPQ_BATCHWIRE_H
#define EMPQ_BATCHWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/provider.h"

/* A custom_id is "j{job}-a{attempt}": at most 64 characters of
 * [A-Za-z0-9_-] (Anthropic's rule), unique in its batch. */
#define EMPQ_BATCHWIRE_ID_MAX 65

/* A provider batch's state, as empq acts on it. */
typedef enum empq_batch_state {
    /* accepted, requests running (OpenAI validating, in_progress,
     * finalizing; Anthropic in_progress; Gemini PENDING, RUNNING): poll
     * again later */
    EMPQ_BATCH_OPEN = 0,
    /* a cancel was asked and is under way (cancelling / canceling) */
    EMPQ_BATCH_CANCELLING = 1,
    /* done: every request has a result to download (OpenAI completed,
     * Anthropic ended, Gemini SUCCEEDED; an ended Anthropic batch may hold
     * expired and canceled results) */
    EMPQ_BATCH_ENDED = 2,
    /* OpenAI and Gemini failed: the input was refused, no request ran
     * (reason set) */
    EMPQ_BATCH_FAILED = 3,
    /* OpenAI expired: the output file holds what finished, the error file
     * the rest (code batch_expired); Gemini EXPIRED: no results */
    EMPQ_BATCH_EXPIRED = 4,
    /* OpenAI cancelled: as expired, with code batch_cancelled; Gemini
     * CANCELLED: what finished before the cancel, if anything */
    EMPQ_BATCH_CANCELLED = 5
} empq_batch_state;

/* Short constant name ("open", "cancelling", "ended", "failed", "expired",
 * "cancelled"). */
const char *empq_batchwire_state_name(empq_batch_state s);

/* What a batch object says. Fixed-size strings: "" when absent. */
typedef struct empq_batch_info {
    empq_batch_state state;
    char id[128];             /* Gemini: without "batches/" */
    char status[32];          /* the provider's own status word */
    uint32_t total;           /* requests in the batch */
    uint32_t done_ok;         /* OpenAI completed; Anthropic succeeded; Gemini successfulRequestCount */
    uint32_t done_failed;     /* OpenAI failed; Anthropic errored+canceled+expired; Gemini failedRequestCount */
    char output_file_id[128]; /* OpenAI */
    char error_file_id[128];  /* OpenAI */
    char results_url[512];    /* Anthropic */
    char empq_key[128];       /* OpenAI metadata.empq_batch; Gemini displayName */
    int64_t created_at;       /* unix seconds (Anthropic's RFC 3339 read) */
    int64_t expires_at;       /* unix seconds; 0 when absent */
    char reason[EMPQ_PROVIDER_REASON_MAX]; /* FAILED: the provider's first error */
} empq_batch_info;

/* The operations of the batch APIs. */
typedef enum empq_batch_op {
    EMPQ_BATCH_OP_UPLOAD = 0, /* OpenAI POST /files (multipart; no content type set) */
    EMPQ_BATCH_OP_CREATE = 1, /* POST /batches, /messages/batches or models/{model}:batchGenerateContent (JSON) */
    EMPQ_BATCH_OP_GET = 2,    /* GET one batch (id) */
    EMPQ_BATCH_OP_LIST = 3,   /* GET the newest 100 batches */
    EMPQ_BATCH_OP_CANCEL = 4, /* POST .../{id}/cancel (Gemini batches/{id}:cancel) */
    EMPQ_BATCH_OP_RESULTS = 5 /* GET a result file (OpenAI: id is the file id) or the results (Anthropic: batch
                                 id); Gemini: GET of the batch (its id), which holds the inlined responses */
} empq_batch_op;

/* Returns 1 when provider (may be NULL) has a batch mode here, else 0. */
int empq_batchwire_supported(const char *provider);

/* Writes "j{job}-a{attempt}" into out (outlen >= EMPQ_BATCHWIRE_ID_MAX).
 * Returns out. */
char *empq_batchwire_custom_id(uint32_t job, uint32_t attempt, char *out, size_t outlen);

/* Reads a custom_id written by empq_batchwire_custom_id. EMPQ_OK with *job
 * and *attempt; EMPQ_EPARSE for anything else (s may be NULL). */
int empq_batchwire_parse_custom_id(const char *s, uint32_t *job, uint32_t *attempt);

/* The request for op on model m (supported provider): method, URL and the
 * provider's auth headers (as empq_provider_endpoint: base_url expanded or
 * NULL, api_key may be NULL). id is the batch id (GET, CANCEL, RESULTS for
 * Anthropic) or the file id (RESULTS for OpenAI); NULL otherwise. UPLOAD
 * carries no Content-Type header (the transport's multipart sets it).
 * out must be zeroed or cleared; body is NULL. EMPQ_EINVAL for a provider
 * without batch mode, a missing id, or an id that is not
 * [A-Za-z0-9_.-]; EMPQ_ENOMEM. */
int empq_batchwire_endpoint(const Empq__ModelSpec *m, const char *base_url, const char *api_key, empq_batch_op op,
                            const char *id, empq_http_request *out, empq_error *err);

/* One request of a batch for model m, from an interactive body (a JSON
 * object, body_len bytes, from empq_provider_body) and a custom_id.
 * OpenAI: one JSONL line with its "\n"; Anthropic: one {"custom_id",
 * "params"} object, Gemini one {"request", "metadata": {"key": custom_id}}
 * object, without a newline (an element of the create body's requests
 * array). On EMPQ_OK *line (caller frees) and *len. EMPQ_EINVAL
 * for a provider without batch mode, a body that is not a JSON object or a
 * custom_id that breaks the rule above; EMPQ_ENOMEM. */
int empq_batchwire_line(const Empq__ModelSpec *m, const char *custom_id, const char *body, size_t body_len,
                        char **line, size_t *len, empq_error *err);

/* The create body. OpenAI: input_file_id set, requests NULL:
 * {"input_file_id", "endpoint": "/v1/chat/completions",
 * "completion_window", "metadata": {"empq_batch": key}}. Anthropic:
 * requests = n lines from empq_batchwire_line, input_file_id NULL:
 * {"requests": [...]} (the API has no metadata; key is not sent). Gemini:
 * as Anthropic, with key: {"batch": {"displayName": key, "inputConfig":
 * {"requests": {"requests": [...]}}}} (no window: Gemini has none). window
 * NULL means "24h". On EMPQ_OK *body (caller frees) and *len. EMPQ_EINVAL
 * for a provider without batch mode or a missing argument; EMPQ_ENOMEM. */
int empq_batchwire_create_body(const Empq__ModelSpec *m, const char *input_file_id, const char *key,
                               const char *window, char *const *requests, size_t n, char **body, size_t *len,
                               empq_error *err);

/* The create body of empq_batchwire_create_body for Anthropic and Gemini,
 * cut around its requests: head, then the lines of empq_batchwire_line
 * joined by ",", then tail make the body (so a caller joins lines it holds
 * without parsing them again). On EMPQ_OK *head and *tail (caller frees
 * both). EMPQ_EINVAL for OpenAI (its requests go in a file), a provider
 * without batch mode, or Gemini without key; EMPQ_ENOMEM. */
int empq_batchwire_create_frame(const Empq__ModelSpec *m, const char *key, char **head, char **tail, empq_error *err);

/* Reads one batch object (the reply of CREATE, GET or CANCEL; Gemini: of
 * CREATE and GET, as its cancel answers an empty object) of model m's
 * provider into out. EMPQ_OK; EMPQ_EPARSE (err says what) when the body is
 * not a batch object or its status is unknown; EMPQ_EINVAL for a provider
 * without batch mode. */
int empq_batchwire_parse_batch(const Empq__ModelSpec *m, const char *body, size_t len, empq_batch_info *out,
                               empq_error *err);

/* Finds, in a LIST reply, the batch empq created for key: OpenAI by
 * metadata.empq_batch == key, Gemini by displayName == key; Anthropic (no metadata) by the first batch
 * created at or after created_after (unix seconds) with n_requests
 * requests whose id is not in taken (n_taken ids, may be NULL when 0):
 * of several, the one whose created_at (to the millisecond) is earliest,
 * wherever the list puts it.
 * EMPQ_OK with *out; EMPQ_ENOTFOUND when no batch matches; EMPQ_EPARSE for
 * a malformed list. *has_more (may be NULL) is set when the list says more
 * pages exist. */
int empq_batchwire_find(const Empq__ModelSpec *m, const char *body, size_t len, const char *key, int64_t created_after,
                        uint32_t n_requests, const char *const *taken, size_t n_taken, empq_batch_info *out,
                        int *has_more, empq_error *err);

/* The result lines of a RESULTS reply, for empq_batchwire_result: OpenAI
 * and Anthropic replies are the lines already (*lines NULL, *n_bytes 0:
 * read the body); a Gemini reply (the finished batch's Operation) gives one
 * line per inlined response, each with its "\n", in *lines (caller frees;
 * "" when the batch has no output, as an expired one). EMPQ_OK; EMPQ_EPARSE
 * (err says what) for a reply that is not a batch or whose results are in
 * a file; EMPQ_EINVAL for a provider without batch mode; EMPQ_ENOMEM. */
int empq_batchwire_results_lines(const Empq__ModelSpec *m, const char *body, size_t len, char **lines, size_t *n_bytes,
                                 empq_error *err);

/* 1 when m's provider gives a batch's results inline with the batch object
 * (Gemini: the GET that shows the end holds them, so that reply can be
 * read as the RESULTS reply), else 0; m may be NULL. */
int empq_batchwire_results_inline(const Empq__ModelSpec *m);

/* Initialises out (clear it after) as the result of a request that has no
 * result line in a batch that ended as info says: RETRYABLE, reason
 * "batch_expired" (EXPIRED), "batch_cancelled" (CANCELLED, CANCELLING) or
 * "batch_no_result" (otherwise, and when info is NULL). A Gemini batch that
 * expired has no results at all. */
void empq_batchwire_unanswered(const empq_batch_info *info, empq_provider_result *out);

/* Reads one line of a result file (OpenAI output or error file, Anthropic
 * results, a Gemini inlined response from empq_batchwire_results_lines,
 * its custom_id in metadata.key) into custom_id (EMPQ_BATCHWIRE_ID_MAX bytes) and out, which it
 * initialises (clear it after, whatever the class). A succeeded request
 * reads as the same reply would interactively (empq_provider_parse). An
 * expired or cancelled request is RETRYABLE with reason "batch_expired" or
 * "batch_cancelled" (the caller applies the spec's on_failure); an errored
 * one has the provider's reason and class (invalid requests PERMANENT, a
 * server error RETRYABLE; a Gemini error Status reads as the interactive
 * API's error of its code). EMPQ_OK; EMPQ_EPARSE (err says what) when the
 * line is not a result line or has no valid custom_id (out is then
 * PERMANENT); EMPQ_EINVAL for a provider without batch mode. */
int empq_batchwire_result(const Empq__ModelSpec *m, const char *line, size_t len, const char *api_key,
                          uint64_t now_ms, char *custom_id, empq_provider_result *out, empq_error *err);

/* Model m's batch prices per million tokens: prices.batch_input_per_mtok
 * and batch_output_per_mtok, each defaulting to half the interactive price
 * (0 when m has no prices). in and out must not be NULL. */
void empq_batchwire_prices(const Empq__ModelSpec *m, double *in, double *out);

/* Whether m runs in batch mode (mode: batch and a provider with a batch
 * API); m may be NULL. */
int empq_batchwire_mode(const Empq__ModelSpec *m);

/* The cost of a generation's usage at model m's batch prices
 * (prices.batch_*_per_mtok, default half the interactive prices; 0 when m
 * has no prices). */
double empq_batchwire_cost(const Empq__ModelSpec *m, uint64_t input_tokens, uint64_t output_tokens);

/* The prices per million tokens model m's usage is charged at: in batch
 * mode its batch prices (cached input at the batch input price), else
 * prices.input_per_mtok, output_per_mtok and cached_input_per_mtok (default
 * the input price); all 0 when m has no prices. What the broker's cost and
 * max_cost and the report's cost section both count at. */
void empq_model_prices(const Empq__ModelSpec *m, double *in, double *out, double *cached_in);

#endif
