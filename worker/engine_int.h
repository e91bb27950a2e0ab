/* engine_int.h: what worker/engine.c and worker/batch.c share, internal to
 * the worker's engine (engine.h is its interface). engine.c: runs, the
 * request pool, finished jobs and their flush, interactive requests;
 * batch.c: batch mode (docs/internals.md, "Batch mode"). */
#ifndef EMPQ_WORKER_ENGINE_INT_H
#define EMPQ_WORKER_ENGINE_INT_H

#include <curl/curl.h>

#include "engine.h"
#include "empq/provider.h"

#define STORE_RETRY_MS 1000u  /* delay asked for a job hit by a Redis failure */

/* ==================== types ==================== */

/* One source of a run, prepared once per run on this worker. */
typedef struct worker__wmodel {
    const Empq__ModelSpec *spec; /* points into the run */
    int human;
    int prepared;                /* prep_* below are valid */
    int prep_rc;                 /* EMPQ_OK, or why no request can be built */
    int prep_retryable;          /* the failure is this worker's (missing key) */
    char prep_err[EMPQ_ERROR_MSG_MAX];
    empq_http_request ep;        /* url and headers */
    struct curl_slist *headers;
    char *api_key;               /* never logged, never stored */
} worker__wmodel;

struct worker__run {
    char *id;
    Empq__Run *run;
    worker__wmodel *models;
    size_t n_models;
    unsigned refs;               /* reqs in flight + queued outcomes */
    uint64_t used;               /* tick of the last batch */
    worker__run *next;
};

/* A finished job waiting for the next flush. */
typedef struct worker__fin {
    worker__run *run;            /* holds a ref; NULL when the run is unknown */
    char *run_id_owned;          /* the run id when run is NULL */
    uint32_t job, prompt, model, sample, attempt;
    Empq__OutcomeKind kind;
    uint32_t retry_after_ms;
    int32_t http_status;
    int cache_hit;
    int write_cache;
    char cache_key[EMPQ_CACHE_KEY_HEX];
    uint64_t started_ms, finished_ms;
    Empq__Generation gen;        /* its strings are owned when gen_owned */
    int gen_owned;               /* backend replies and the human source */
    Empq__Generation *cached;    /* cache hits: the unpacked value gen copies */
    char *reason;                /* outcomes other than DONE; NULL otherwise */
    char *excerpt;               /* dead letters: a reply excerpt, or NULL */
    int local_failure;           /* RETRY for the worker's trouble (Outcome.local_failure) */
    int model_fatal;             /* DEAD for a cause of the whole model (Outcome.model_fatal) */
    int from_batch;              /* the job was in a provider batch (Outcome.from_batch) */
} worker__fin;

#define EXCERPT_MAX 256

/* Per-job scratch of one batch. */
typedef struct worker__jwork {
    const Empq__Job *job;
    uint32_t sample, attempt;
    size_t u;                    /* index of its prompt in the unique list */
    int active;                  /* still to be answered */
    char key[EMPQ_CACHE_KEY_HEX];
} worker__jwork;

struct worker__engine {
    worker__options opt;
    empq_store *store;
    worker__transport tp;
    int stopping;
    uint64_t tick;
    worker__run *runs;
    size_t n_runs;
    /* request pool */
    worker__req **reqs;
    size_t n_reqs, cap_reqs;
    worker__req *free_reqs;
    size_t in_flight;            /* reqs in use: sent or queued */
    size_t sent;                 /* of those, on the transport */
    worker__req *queue, *queue_tail; /* ready, waiting for max_requests */
    /* finished jobs: [0, flushed) went out in the last Outcomes */
    worker__fin *fins;
    size_t n_fins, cap_fins, flushed;
    /* flush scratch, reused */
    Empq__Result *results;
    empq_store_put *puts;
    size_t *put_fin;
    size_t cap_results;
    Empq__Outcome *outs;
    Empq__Outcome **out_ptrs;
    size_t cap_outs;
    Empq__Outcomes outcomes;
    /* batch scratch, reused */
    worker__jwork *jw;
    size_t cap_jw;
    uint32_t *uidx;
    Empq__Prompt **prompts;
    char **sys, **user;
    size_t cap_u;
    const char **keys;
    Empq__Generation **hits;
    size_t *key_job;
    size_t cap_keys;
    worker__stats stats;
    int store_down;              /* the last store call failed */
    uint64_t store_down_errors;  /* failures since it went down */
    struct worker__wbatch *batches; /* batch mode: groups collecting and batches running */
    uint64_t batch_scan_at;      /* mono: next look for open batches whose owner died */
    char **finish_keys;          /* batch records whose results are read: closed after the next flush */
    size_t n_finish, cap_finish;
    char batch_recent[32][128];  /* the last batch ids recorded here (a ring): never another record's find */
    unsigned batch_recent_next;
    /* worker__engine_unusable scratch, reused */
    Empq__ModelProblem *probs;
    Empq__ModelProblem **prob_ptrs;
    size_t cap_probs;
};

/* ---- engine.c, for batch.c ---------------------------------------------- */

/* Grows *v (elements of size sz) to hold at least need; 0 ok, -1 ENOMEM. */
int worker__grow(void **v, size_t *cap, size_t need, size_t sz);
/* Counts a Redis failure; logs when the trouble starts, not per call. */
void worker__store_failed(worker__engine *e, const char *op, const char *why);
/* A request from the pool, counted in flight; NULL on ENOMEM. */
worker__req *worker__req_get(worker__engine *e);
/* Gives r back to the pool (drops its run reference, its body). */
void worker__req_recycle(worker__engine *e, worker__req *r);
/* Queues a job that did not reach the backend: RETRY below max_attempts or
 * when retryable is 2 (a local failure, not an attempt), DEAD otherwise. */
void worker__fin_fail(worker__engine *e, worker__run *run, const char *run_id, const Empq__Job *j,
                      uint32_t max_attempts, int retryable, uint32_t retry_ms, const char *reason);
/* Queues a RELEASED outcome (handed back untried). */
void worker__fin_released(worker__engine *e, worker__run *run, const char *run_id, uint32_t job, const char *why);
/* Queues a BATCHED outcome for job request r (batch mode: its batch's
 * record is durable). */
void worker__fin_batched(worker__engine *e, const worker__req *r);
/* Marks the outcomes queued since the queue held `before` (e's n_fins then)
 * as a batch's (Outcome.from_batch). */
void worker__fin_mark_batch(worker__engine *e, size_t before);
/* The job a request answers, as the broker sent it. */
Empq__Job worker__job_of(const worker__req *r);
/* The outcome of job request r from its read reply pres (taken); r goes back
 * to the pool. fail_dead: a retryable failure is dead at once. */
void worker__complete_read(worker__engine *e, worker__req *r, empq_provider_result *pres, const char *raw,
                           size_t raw_len, int fail_dead);
/* Starts the ready request r, or queues it while max_requests are sent. */
void worker__dispatch(worker__engine *e, worker__req *r);
/* The run with this id, from memory or Redis; NULL with *rc and why set. */
worker__run *worker__run_get(worker__engine *e, const char *id, int *rc, char *why, size_t whylen);
/* Prepares model wm of run once (endpoint, key); logs a failure once. */
void worker__wmodel_ready(worker__engine *e, const worker__run *run, worker__wmodel *wm);
/* qsort/bsearch order of uint32_t. */
int worker__cmp_u32(const void *a, const void *b);

/* ---- batch.c, for engine.c ---------------------------------------------- */

/* Whether m runs in batch mode here (mode: batch, a provider with one). */
int worker__batch_model(const Empq__ModelSpec *m);
/* Puts the ready request r (a cache miss of a batch model) in its group. */
void worker__batch_add(worker__engine *e, worker__req *r);
/* A batch's own call (r->ctl) came back. */
void worker__batch_call_done(worker__engine *e, worker__req *r);
/* Closes the batch records whose results went out in the flush that just
 * ended (their results are in Redis now), or keeps them for the next one
 * when that flush could not send everything. */
void worker__batch_finish_flushed(worker__engine *e);
/* Frees batch b (its job requests are the caller's to recycle). */
void worker__batch_free(worker__engine *e, struct worker__wbatch *b);
/* Batches (only those still collecting when collecting_only) hand their
 * jobs back; see batch.c. */
void worker__batch_release(worker__engine *e, int collecting_only, int outcome, const char *why);

#endif
