/* engine.h: the worker's request engine, independent of the event loop.
 *
 * The engine takes JobBatch messages, runs the pipeline of docs/internals.md
 * (run spec cached per run id, one HMGET for the prompts of a batch, the
 * human source answered from the dataset, one MGET of the cache for the
 * rest), hands cache misses to a transport as ready HTTP requests, reads the
 * transport's replies with the provider adapters, and gathers every finished
 * job until the loop calls worker__engine_flush once per turn: one results
 * pipeline to Redis, the dead letters, then one Outcomes message.
 *
 * The transport is a seam: the program plugs in libcurl multi (http.c); the
 * unit tests plug in a function that answers in process. Not thread safe;
 * one engine per loop. */
#ifndef EMPQ_WORKER_ENGINE_H
#define EMPQ_WORKER_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/store.h"
#include "empq/util.h"

#define WORKER_MAX_BODY (8u * 1024u * 1024u) /* a reply larger than this is cut */

typedef struct worker__engine worker__engine;
typedef struct worker__run worker__run;

/* One backend request in flight: filled by the engine, sent by the
 * transport, whose reply fields the transport fills before calling
 * worker__engine_complete. Reqs are pooled and reused: the transport may
 * keep its own handle in tp (it is kept across uses and passed to
 * transport.drop when the engine is freed). */
typedef struct worker__req {
    /* ---- request: set by the engine, read-only for the transport ---- */
    const char *url;
    const void *headers;         /* struct curl_slist * of the (run, model) */
    const char *body;
    size_t body_len;
    uint32_t timeout_ms;         /* total; the model's timeout_ms */
    const char *method;          /* "GET" or NULL for POST (batch mode's polls and downloads) */
    int upload;                  /* body is a JSONL file, sent as a multipart upload (purpose=batch) */
    /* ---- reply: set by the transport ---- */
    long status;                 /* 0: no HTTP reply */
    empq_buf resp;               /* the body, at most WORKER_MAX_BODY bytes */
    int truncated;               /* body cut or transfer broken */
    int too_large;               /* the body passed WORKER_MAX_BODY (resp holds the first bytes) */
    char retry_after[64];        /* Retry-After value, "" when none */
    char retry_after_ms[24];     /* retry-after-ms value, "" when none */
    char request_id[128];        /* x-request-id or request-id value, "" when none */
    char transport_error[256];   /* why there is no reply, "" otherwise */
    /* ---- the transport's own handle, kept across uses ---- */
    void *tp;
    void *tp_mime;               /* the transport's multipart form of an upload, or NULL */
    /* ---- engine bookkeeping ---- */
    worker__run *run;
    uint32_t job, prompt, model, sample, attempt;
    char cache_key[EMPQ_CACHE_KEY_HEX];
    uint64_t started_ms;         /* wall */
    uint64_t started_mono;
    char *body_owned;
    int in_use;
    int sent;                    /* on the transport (not waiting in the queue) */
    struct worker__wbatch *batch; /* batch mode: the batch this job waits in, or whose call this is */
    int ctl;                     /* a batch's own call (upload, create, poll, download), not a job */
    int in_batch;                /* a job in a provider batch whose record is durable (the broker was told BATCHED) */
    struct worker__req *next_free;
    struct worker__req *next_queued;
} worker__req;

/* How requests reach the backend. */
typedef struct worker__transport {
    void *ctx;
    /* Starts r. EMPQ_OK: the transport calls worker__engine_complete(r)
     * later (never from inside start). Otherwise r was not started and err
     * says why (the engine turns it into a retry). */
    int (*start)(void *ctx, worker__req *r, empq_error *err);
    /* Stops r without completing it (the engine hands the job back). */
    void (*cancel)(void *ctx, worker__req *r);
    /* Frees r->tp when the engine is freed; may be NULL. */
    void (*drop)(void *ctx, worker__req *r);
    /* 1 when r's request has not wholly left this process yet (still
     * connecting, or its body only partly sent): a provider cannot have acted
     * on it, so it can be withdrawn; 0 otherwise. May be NULL (never). */
    int (*unsent)(void *ctx, const worker__req *r);
} worker__transport;

typedef struct worker__options {
    const char *worker_id;   /* kept as a pointer: must outlive the engine */
    size_t max_runs;         /* run specs kept in memory (default 32) */
    int (*getenv_key)(const char *name, char **out); /* seam for tests; NULL: getenv */
    size_t max_requests;     /* requests on the transport at once; 0: no limit */
} worker__options;

#define WORKER__OPTIONS_INIT {"worker", 32, NULL, 0}

/* Creates an engine over store (borrowed, must outlive it) and transport
 * (copied). On EMPQ_OK *out is the caller's, freed with worker__engine_free. */
int worker__engine_new(worker__engine **out, const worker__options *opt, empq_store *store,
                       const worker__transport *tp, empq_error *err);

/* Cancels what is in flight (without outcomes), frees everything, sets *e
 * to NULL; e and *e may be NULL. */
void worker__engine_free(worker__engine **e);

/* Runs the pipeline for one batch (borrowed for the call). Jobs answered at
 * once (human, cache hits, errors) wait for the next flush; misses are
 * started on the transport, or, while max_requests are on it, queued ready
 * (body built) in arrival order, to start in the slots of finished requests
 * once their results are written (worker__engine_flush). Never fails as a whole: every job ends in an
 * outcome. While stopping, every job is RELEASED untried. */
void worker__engine_batch(worker__engine *e, const Empq__JobBatch *b);

/* Takes the transport's reply in r (see worker__req), classifies it and
 * queues the outcome; r goes back to the pool. */
void worker__engine_complete(worker__engine *e, worker__req *r);

/* Writes what finished since the last flush (one results pipeline, the dead
 * letters) and builds the Outcomes message; then starts queued requests in
 * the free slots, unless a Redis call failed: then the next flush hands the
 * queue back untried (RELEASED). Returns the number of outcomes;
 * when > 0, *out points to a message owned by the engine, valid until the
 * next call. A Redis failure turns the affected DONE/DEAD outcomes into
 * RETRY (nothing is lost) and is logged once. */
size_t worker__engine_flush(worker__engine *e, const Empq__Outcomes **out);

/* Forgets the requests still queued (never sent), without an outcome: the
 * broker has given their leases up (it rejected this worker, or was silent
 * past its give-up time) and another worker may hold them now. Requests on
 * the transport whose bytes have not all left yet (transport.unsent) are
 * withdrawn too; the rest are kept (a provider may be working on them).
 * Returns how many were dropped (counted in worker__stats.dropped). */
size_t worker__engine_drop_queued(worker__engine *e);

/* Stop taking jobs: later batches are RELEASED, and so are the requests
 * still queued (never sent) and the batch-mode groups not closed yet; the
 * provider batches past their durable record are left to it, for another
 * worker (or this one restarted) to take over. */
void worker__engine_stop(worker__engine *e);

/* Cancels every request in flight on the transport and queues a RELEASED
 * outcome for each (the end of a shutdown grace period). */
void worker__engine_release_all(worker__engine *e);

/* Requests held: on the transport or queued for it. */
size_t worker__engine_in_flight(const worker__engine *e);

/* Of those, the requests on the transport. */
size_t worker__engine_sent(const worker__engine *e);

/* Outcomes queued for the next flush. */
size_t worker__engine_pending(const worker__engine *e);

/* The models of the runs this engine holds that it cannot call at all
 * (key variable unset, base_url naming an unset variable, key file
 * unreadable, no endpoint): each source is checked when its run is loaded.
 * Returns how many; *out points to an array owned by the engine (the
 * strings point into its runs), valid until the next call or the next
 * batch. 0 and *out NULL when there are none (or out of memory). out may
 * be NULL: then it only counts. */
size_t worker__engine_unusable(worker__engine *e, Empq__ModelProblem ***out);

/* Batch mode (docs/internals.md, "Batch mode"): jobs of a model with
 * mode: batch wait in a group per (run, model) that is sent as one
 * provider batch when full or when no job came for a short linger; the
 * batch is then polled and its results read back into the normal outcomes.
 * worker__engine_tick runs the groups' and polls' timers (now_mono); call it
 * every loop turn. worker__engine_next_ms is how long until it has work (-1:
 * none). */
void worker__engine_tick(worker__engine *e, uint64_t now_mono);
long worker__engine_next_ms(const worker__engine *e, uint64_t now_mono);

/* Counters since start, for logs and tests. */
typedef struct worker__stats {
    uint64_t jobs, done, retry, dead, released, cache_hits, human, backend_calls, store_errors;
    uint64_t dropped; /* queued jobs forgotten when their leases were gone (drop_queued) */
    uint64_t batches_sent, batch_calls; /* batch mode: provider batches created; calls made for them */
    uint64_t batched;                   /* batch mode: BATCHED outcomes sent (jobs in durable batches) */
} worker__stats;
void worker__engine_stats(const worker__engine *e, worker__stats *out);

#endif
