/* batch_internal.h: what batch.c, batch_openai.c and batch_anthropic.c share
 * of the store (batch.h). Every function here is called with the store's
 * mutex held. */
#ifndef FAKELLM_BATCH_INTERNAL_H
#define FAKELLM_BATCH_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "batch.h"
#include "timer.h"

/* A request's outcome. */
typedef enum bb_outcome {
    BB_PENDING = 0,
    BB_SUCCEEDED,
    BB_FAILED, /* ran and got an error (OpenAI "failed", Anthropic "errored") */
    BB_EXPIRED,
    BB_CANCELLED,
    BB_OUTCOMES
} bb_outcome;

typedef struct bb_req {
    char *custom_id;  /* Gemini: the request's metadata object (compact JSON), or NULL */
    char *body;       /* the request body (compact JSON) until answered, then NULL */
    size_t body_len;
    char *result;     /* the result line without newline, once answered (NULL when out of memory) */
    size_t result_len;
    bb_outcome outcome;
    uint64_t usage[3];  /* OpenAI: prompt, completion and reasoning tokens of a 200 answer */
} bb_req;

typedef struct bb_file {
    char id[40];
    char *filename;
    char purpose[24];
    char *data;
    size_t len;
    uint64_t created_s;
} bb_file;

/* The counters of one provider (batch.h, fakellm_batch_stats_json). */
typedef enum bb_counter {
    BB_FILES_UPLOADED = 0,
    BB_FILE_GETS,
    BB_FILE_LISTS,
    BB_FILE_DOWNLOADS,
    BB_DELETES,
    BB_BATCHES_CREATED,
    BB_BATCH_GETS,
    BB_BATCH_LISTS,
    BB_CANCELS,
    BB_RESULTS_DOWNLOADS,
    BB_REQ_SUCCEEDED,
    BB_REQ_FAILED,
    BB_REQ_EXPIRED,
    BB_REQ_CANCELLED,
    BB_CREATES_LOST,
    BB_COUNTERS
} bb_counter;

typedef struct bb_batch {
    fakellm_batch_store *st;
    fakellm_batch_provider provider;
    char id[48];
    uint64_t seq;              /* 1, 2, ... in creation order (the failure draw) */
    fakellm_batch_state state;
    uint64_t at[FAKELLM_BATCH_STATE_COUNT]; /* Unix ms each state was entered; 0 = not yet */
    uint64_t expires_ms;       /* Unix ms */
    uint64_t start_mono;       /* fakellm_timer_now_ms() when it went in_progress */
    char *input_file_id, *endpoint, *model; /* OpenAI (model also Gemini); may be NULL */
    char *display_name;        /* Gemini */
    json_t *metadata;          /* OpenAI; NULL = null */
    json_t *errors;            /* OpenAI validation errors (a list of BatchError), or NULL */
    bb_req *reqs;
    size_t n, next;            /* requests; the first not yet answered */
    size_t counts[BB_OUTCOMES];
    char output_file_id[40], error_file_id[40];
    int deleted;               /* Anthropic DELETE: hidden, data freed */
} bb_batch;

struct fakellm_batch_store {
    pthread_mutex_t mu;
    fakellm_batch_options o;
    fakellm_timer *timer;
    bb_file **files;           /* upload order */
    size_t n_files, cap_files;
    bb_batch **batches;        /* creation order; never freed before the store (timer entries point here) */
    size_t n_batches, cap_batches;
    size_t objects;            /* files plus batches not deleted */
    size_t bytes;              /* bytes kept (batch.h, max_bytes) */
    uint64_t next_id;          /* ids and request ids */
    uint64_t counters[FAKELLM_BATCH_PROVIDERS][BB_COUNTERS];
    unsigned creates[FAKELLM_BATCH_PROVIDERS]; /* creates so far (not reset by /stats/reset) */
};

/* Counts one call. */
void fakellm_batch__count(fakellm_batch_store *st, fakellm_batch_provider p, bb_counter c);

/* 1 when one more object of `bytes` bytes fits the store's bounds. */
int fakellm_batch__fits(const fakellm_batch_store *st, size_t bytes);

/* A fresh id: prefix and n base62 characters. */
void fakellm_batch__new_id(fakellm_batch_store *st, char *out, size_t cap, const char *prefix, size_t n);

/* Adds a file (takes data, copies filename); returns it, or NULL when out of memory (data freed). */
bb_file *fakellm_batch__add_file(fakellm_batch_store *st, const char *filename, const char *purpose, char *data,
                                 size_t len);

/* The file with this id, or NULL. */
bb_file *fakellm_batch__file(fakellm_batch_store *st, const char *id);

/* Removes and frees a file. */
void fakellm_batch__delete_file(fakellm_batch_store *st, bb_file *f);

/* A new batch of provider p with n zeroed requests, added to the store in
 * state validating. Returns it, or NULL when out of memory. The caller fills
 * the requests, then calls fakellm_batch__start. */
bb_batch *fakellm_batch__add_batch(fakellm_batch_store *st, fakellm_batch_provider p, size_t n);

/* Called by a create that made batch b and put its answer in out: for the
 * o.lose_create creates of b's provider after the first o.lose_after, the
 * answer is lost instead
 * (out becomes a reset or a gateway's error page, batch.h) and counted. */
void fakellm_batch__maybe_lose(bb_batch *b, fakellm_reply *out);

/* Schedules the first turn of a filled batch (validating -> in_progress or failed). */
void fakellm_batch__start(bb_batch *b);

/* The batch of provider p with this id (not deleted), or NULL. */
bb_batch *fakellm_batch__find(fakellm_batch_store *st, fakellm_batch_provider p, const char *id);

/* Brings b up to date with the clock (answers the requests due). */
void fakellm_batch__advance(bb_batch *b);

/* Asks b to cancel: answers what is due, moves it to cancelling and
 * schedules the end. Returns EMPQ_OK, or EMPQ_ESTATE when b has ended or is
 * already cancelling (nothing changed). */
int fakellm_batch__cancel(bb_batch *b);

/* Frees b's requests and results and marks it deleted. */
void fakellm_batch__delete(bb_batch *b);

/* The provider parts, in batch_openai.c, batch_anthropic.c and batch_gemini.c. */

/* Answers request r of b (its body) by the interactive endpoint's function,
 * or with the provider's 500 when fail: sets r->result (NULL when out of
 * memory) and returns BB_SUCCEEDED or BB_FAILED. */
bb_outcome fakellm_batch__openai_run(bb_batch *b, bb_req *r, int fail, uint64_t request_id);
bb_outcome fakellm_batch__anthropic_run(bb_batch *b, bb_req *r, int fail, uint64_t request_id);
bb_outcome fakellm_batch__gemini_run(bb_batch *b, bb_req *r, int fail, uint64_t request_id);

/* Sets r->result for a request that did not run (o is BB_EXPIRED or
 * BB_CANCELLED). */
void fakellm_batch__openai_unrun(bb_batch *b, bb_req *r, bb_outcome o, uint64_t request_id);
void fakellm_batch__anthropic_unrun(bb_batch *b, bb_req *r, bb_outcome o);
void fakellm_batch__gemini_unrun(bb_batch *b, bb_req *r, bb_outcome o);

/* Writes b's output and error files (OpenAI), as it ends. */
void fakellm_batch__openai_finish(bb_batch *b);

/* Unix ms as RFC 3339 with milliseconds ("2026-12-06T21:30:52.123Z"). */
char *fakellm_batch__rfc3339(char *out, size_t cap, uint64_t unix_ms);

#endif
