/* server.h: the fake LLM server over libmicrohttpd.
 *
 * One MHD daemon with an internal polling thread (epoll, or poll where epoll
 * is missing) serves every connection; no thread per request. A response
 * that must wait (--latency-ms) is built at once, its connection suspended,
 * and its deadline put in one timer heap (timer.h); the timer thread resumes
 * the connection at the deadline and MHD sends the response. So thousands of
 * delayed requests are in flight at once at the cost of a heap slot each.
 *
 * Dispatch is a table of (method, path) -> route (server.c). Model routes
 * (today POST /v1/chat/completions; later Gemini generateContent, Anthropic
 * messages, Azure deployments) take the API key check, the latency and the
 * fault hook; control routes (/stats, /stats/reset, /healthz) take none.
 * Unknown paths get 404, bodies over max_body get 413, both in the OpenAI
 * error shape. */
#ifndef FAKELLM_SERVER_H
#define FAKELLM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"
#include "reply.h"
#include "stats.h"

/* What a route and the fault hook see of a request. All borrowed for the
 * duration of the call. */
typedef struct fakellm_request {
    const char *method;
    const char *path;       /* without the query string */
    const char *route;      /* the route's name ("openai.chat"), NULL if none */
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
    FAKELLM_ACT_RESET        /* close the connection without a response */
} fakellm_action;

/* The fault hook: called on model routes after the route filled reply (any
 * status) and set reply->delay_ms from the latency options. It may rewrite
 * the status, body, delay, and return FAKELLM_ACT_RESET to drop the
 * connection. Called on the server's thread: it must not block. */
typedef fakellm_action (*fakellm_fault_fn)(void *user, const fakellm_request *req, fakellm_reply *reply);

typedef struct fakellm_options {
    const char *host;          /* address to bind (numeric or name); default "127.0.0.1" */
    unsigned port;             /* 0 = any free port (see fakellm_server_port) */
    unsigned latency_ms;       /* added to every model-route response */
    unsigned jitter_ms;        /* latency varies uniformly in [L - J, L + J], at least 0 */
    const char *require_key;   /* when set, model routes need "Authorization: Bearer KEY" */
    unsigned connection_limit; /* connections held at once; default 4096 */
    unsigned threads;          /* MHD polling threads; default 1 */
    size_t max_body;           /* request body limit; default 1 MiB */
    fakellm_fault_fn fault;    /* may be NULL */
    void *fault_user;
} fakellm_options;

/* Fills o with the defaults above. */
void fakellm_options_init(fakellm_options *o);

typedef struct fakellm_server fakellm_server;

/* Binds and starts serving. The strings in o are copied. On EMPQ_OK *out
 * is the running server (stop with fakellm_server_stop). EMPQ_EINVAL (bad
 * host or option) or EMPQ_EIO (cannot bind or start threads) with err set. */
int fakellm_server_start(const fakellm_options *o, fakellm_server **out, empq_error *err);

/* The port the server listens on (the bound one when started with 0). */
unsigned fakellm_server_port(const fakellm_server *s);

/* The counters; owned by the server, valid until it is stopped. */
fakellm_stats *fakellm_server_stats(fakellm_server *s);

/* Stops accepting, sends every delayed response now, waits (up to 2 s) for
 * the requests in flight to finish, stops the daemon and frees everything.
 * *sp is set to NULL; sp and *sp may be NULL. */
void fakellm_server_stop(fakellm_server **sp);

#endif
