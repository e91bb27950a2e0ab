/* server.h: the fake LLM server over libmicrohttpd.
 *
 * One MHD daemon with an internal polling thread (epoll, or poll where epoll
 * is missing) serves every connection; no thread per request. A response
 * that must wait (--latency-ms) is built at once, its connection suspended,
 * and its deadline put in one timer heap (timer.h); the timer thread resumes
 * the connection at the deadline and MHD sends the response. So thousands of
 * delayed requests are in flight at once at the cost of a heap slot each.
 *
 * Dispatch is a table of (method, path pattern) -> route (server.c). Model
 * routes speak a provider's format (openai.h, gemini.h, anthropic.h):
 *   POST /v1/chat/completions                               OpenAI
 *   POST /openai/deployments/{deployment}/chat/completions  Azure OpenAI
 *   POST /v1beta/models/{model}:generateContent (and /v1/)  Gemini
 *   POST /v1/messages                                       Anthropic
 * and take the key check, the per-model limits (limits.h), the injected
 * faults (faults.h), the latency and the fault hook, in that order; control
 * routes (/stats, /stats/reset, /healthz) take none. Unknown paths get 404,
 * bodies over max_body get 413, both in the OpenAI error shape.
 *
 * Batch routes (batch.h: OpenAI /v1/files and /v1/batches, Anthropic
 * /v1/messages/batches) take the provider's key check (and the Anthropic
 * version check) only: no limits, faults or latency; their body limit is
 * batch.max_bytes, a 413 in the provider's shape beyond it.
 *
 * A model request that parsed is counted against its model's limit; over
 * the limit it gets the provider's 429 with Retry-After and no fault. Else
 * the fault drawn for it (faults.h; from the global probabilities plus its
 * model's own) is applied: the route answers first, so the model is known,
 * and answers again in the fault's mode when the fault changes the reply. A hang holds the connection
 * suspended in the timer heap with no deadline worth waiting for: no thread,
 * no polling; fakellm_server_stop resumes it. The hung request leaves its
 * model's open count at once (the server cannot see the client give up). */
#ifndef FAKELLM_SERVER_H
#define FAKELLM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "empq/error.h"
#include "faults.h"
#include "limits.h"
#include "reply.h"
#include "reqlog.h"
#include "stats.h"

/* What a route and the fault hook see of a request. All borrowed for the
 * duration of the call. */
typedef struct fakellm_request {
    const char *method;
    const char *path;       /* without the query string */
    const char *route;      /* the route's name ("openai.chat", "azure.chat", "gemini.generate",
                               "anthropic.messages"), NULL if none */
    const char *body;       /* NUL-terminated; "" when empty */
    size_t body_len;
    uint64_t seq;           /* 1, 2, ... per request, unique in this process */
    void *conn;             /* private: the MHD connection */
} fakellm_request;

/* The value of a request header (case-insensitive name), or NULL when
 * absent. Borrowed: valid while the request is. */
const char *fakellm_request_header(const fakellm_request *req, const char *name);

/* What the HTTP layer does with a reply after the fault hook. */
typedef enum fakellm_action {
    FAKELLM_ACT_RESPOND = 0, /* send reply after reply->delay_ms */
    FAKELLM_ACT_RESET,       /* close the connection without a response */
    FAKELLM_ACT_HANG         /* hold the connection until the server stops, then send reply */
} fakellm_action;

/* The fault hook: called on model routes after the route filled reply (any
 * status), the limits and the injected faults applied, and reply->delay_ms
 * was set from the latency options. It may rewrite the status, body, delay,
 * and return FAKELLM_ACT_RESET to drop the connection or FAKELLM_ACT_HANG to
 * hold it. Called on the server's thread: it must not block. */
typedef fakellm_action (*fakellm_fault_fn)(void *user, const fakellm_request *req, fakellm_reply *reply);

/* One --limit (model NULL: --default-limit). */
typedef struct fakellm_limit_spec {
    const char *model;
    fakellm_limit limit;
} fakellm_limit_spec;

/* One --azure-deployment NAME=MODEL. */
typedef struct fakellm_azure_map {
    const char *deployment;
    const char *model;
} fakellm_azure_map;

typedef struct fakellm_options {
    const char *host;          /* address to bind (numeric or name); default "127.0.0.1" */
    unsigned port;             /* 0 = any free port (see fakellm_server_port) */
    unsigned latency_ms;       /* added to every model-route response */
    unsigned jitter_ms;        /* latency varies uniformly in [L - J, L + J], at least 0 */
    const char *require_key;   /* when set, model routes need this key, sent as each provider
                                  sends it (Authorization: Bearer, api-key, x-goog-api-key or
                                  ?key=, x-api-key) */
    unsigned connection_limit; /* connections held at once; default 4096 */
    unsigned threads;          /* MHD polling threads; default 1 */
    size_t max_body;           /* request body limit; default 1 MiB */
    fakellm_batch_options batch; /* the batch endpoints (batch.h); batch.max_bytes is also their body limit */
    fakellm_fault_fn fault;    /* may be NULL */
    void *fault_user;
    const fakellm_limit_spec *limits; /* n_limits entries, may be NULL */
    size_t n_limits;
    const fakellm_azure_map *azure;   /* n_azure entries, may be NULL */
    size_t n_azure;
    double fault_p[FAKELLM_FAULT_COUNT]; /* injected fault probabilities (faults.h); all 0 = none */
    uint64_t fault_seed;       /* the draw's seed */
    const fakellm_model_faults *model_faults; /* n_model_faults entries: one model's own faults */
    size_t n_model_faults;
    size_t huge_bytes;         /* padding of the huge fault; default FAKELLM_HUGE_BYTES */
    const char *request_log;   /* append a line per answered model request here (reqlog.h); NULL: none */
} fakellm_options;

/* Fills o with the defaults above. */
void fakellm_options_init(fakellm_options *o);

typedef struct fakellm_server fakellm_server;

/* Binds and starts serving. The strings and tables in o are copied. On EMPQ_OK *out
 * is the running server (stop with fakellm_server_stop). EMPQ_EINVAL (bad
 * host or option) or EMPQ_EIO (cannot bind or start threads) with err set. */
int fakellm_server_start(const fakellm_options *o, fakellm_server **out, empq_error *err);

/* The port the server listens on (the bound one when started with 0). */
unsigned fakellm_server_port(const fakellm_server *s);

/* The counters; owned by the server, valid until it is stopped. */
fakellm_stats *fakellm_server_stats(fakellm_server *s);

/* The per-model limits and counters; owned by the server, valid until it is
 * stopped. */
fakellm_limits *fakellm_server_limits(fakellm_server *s);

/* Stops accepting, sends every delayed (and hung) response now, waits (up to 2 s) for
 * the requests in flight to finish, stops the daemon and frees everything.
 * *sp is set to NULL; sp and *sp may be NULL. */
void fakellm_server_stop(fakellm_server **sp);

#endif
