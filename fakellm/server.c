/* server.c: HTTP for the fake LLM server. See server.h.
 *
 * A request's life (one req_ctx per request, freed when MHD completes it):
 *   1. first call: match the route, count it in flight, note an oversized
 *      Content-Length;
 *   2. upload calls: collect the body (over max_body: discard, answer 413);
 *   3. final call (ST_NEW): the route builds the reply; on model routes the
 *      latency and the fault hook apply. With a delay the connection is
 *      suspended and its deadline added to the timer (ST_WAITING);
 *   4. the timer thread marks it ST_READY and resumes it; MHD calls us
 *      again and the reply is queued.
 * A hung request is scheduled like a delayed one, with a deadline a year
 * away; fakellm_server_stop flushes the timer, which resumes it. */
#include "server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "anthropic.h"
#include "empq/log.h"
#include "front.h"
#include "gemini.h"
#include "openai.h"
#include "timer.h"

#define DEFAULT_CONNECTION_LIMIT 4096
#define DEFAULT_MAX_BODY (1024u * 1024u)
#define LISTEN_BACKLOG 4096
#define IDLE_TIMEOUT_S 120
#define DRAIN_MS 2000
#define HANG_MS (365ull * 24 * 3600 * 1000) /* "never": resumed by stop */
#define WIRE_BLOCK (64u * 1024u)
#define MODEL_PATH_MAX 256

struct fakellm_server {
    struct MHD_Daemon *daemon;
    fakellm_timer *timer;
    fakellm_batch_store *batches; /* the batch endpoints (batch.h) */
    fakellm_stats *stats;
    fakellm_options opts; /* host and require_key point at the copies below */
    char *host;
    char *require_key;
    fakellm_limits *limits;
    fakellm_reqlog *reqlog;   /* --request-log; NULL: none */
    fakellm_azure_map *azure; /* copies */
    size_t n_azure;
    fakellm_model_faults *model_faults; /* copies */
    size_t n_model_faults;
    int any_fault;
    unsigned port;
    uint64_t jitter_seed;
    atomic_uint_fast64_t seq;
    atomic_uint_fast64_t model_seq; /* model requests only: the fault draw's n */
    atomic_int stopping;
};

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */
/* ------------------------------------------------------------------------ */

#define ROUTE_MODEL 1u  /* an LLM endpoint: key check, limits, faults, latency, fault hook */
#define ROUTE_PATTERN 2u /* path is matched by the route's match function */
#define ROUTE_BATCH 4u   /* a batch endpoint (batch.h): any method, key check only, batch body limit */

/* Fills out (any status). Returns EMPQ_OK, or EMPQ_ENOMEM when out could
 * not be filled (the caller answers 500). ctx is NULL on control routes. */
typedef int (*route_fn)(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx, fakellm_reply *out);

typedef struct route {
    const char *method;
    const char *path; /* exact path, or (ROUTE_PATTERN) a description */
    const char *name;
    unsigned flags;
    route_fn fn;
    int (*match)(const char *path); /* ROUTE_PATTERN: 1 when path is this route's */
    const fakellm_front *front;     /* ROUTE_MODEL: the provider's errors and headers */
} route;

const char *fakellm_request_header(const fakellm_request *req, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

static const char *query_arg(const fakellm_request *req, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static int route_openai_chat(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                             fakellm_reply *out)
{
    int rc = EMPQ_OK;
    if (!fakellm_openai_auth(fakellm_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION), s->require_key, out, &rc))
        return rc;
    return fakellm_openai_chat(req->body, req->body_len, ctx, out);
}

/* "/openai/deployments/{deployment}/chat/completions" -> deployment. */
static int azure_deployment(const char *path, char *out, size_t cap)
{
    return fakellm_path_segment(path, "/openai/deployments/", "/chat/completions", out, cap);
}

static int match_azure(const char *path)
{
    char d[MODEL_PATH_MAX];
    return azure_deployment(path, d, sizeof(d));
}

static int match_gemini(const char *path)
{
    char m[MODEL_PATH_MAX];
    return fakellm_gemini_path_model(path, m, sizeof(m));
}

static int route_azure_chat(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                            fakellm_reply *out)
{
    char deployment[MODEL_PATH_MAX];
    if (!azure_deployment(req->path, deployment, sizeof(deployment)))
        return fakellm_azure_error(out, 404, "404", "Resource not found");
    fakellm_azure_in in = {.deployment = deployment,
                           .api_version = query_arg(req, "api-version"),
                           .api_key = fakellm_request_header(req, "api-key"),
                           .require_key = s->require_key};
    for (size_t i = 0; i < s->n_azure; i++)
        if (strcmp(s->azure[i].deployment, deployment) == 0)
            in.model = s->azure[i].model;
    return fakellm_azure_chat(req->body, req->body_len, &in, ctx, out);
}

static int route_gemini(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx, fakellm_reply *out)
{
    char model[MODEL_PATH_MAX];
    if (!fakellm_gemini_path_model(req->path, model, sizeof(model)))
        return fakellm_gemini_error(out, 404, "NOT_FOUND", "Not found");
    const char *key = fakellm_request_header(req, "x-goog-api-key");
    fakellm_gemini_in in = {.model = model, .api_key = key ? key : query_arg(req, "key"),
                            .require_key = s->require_key};
    return fakellm_gemini_generate(req->body, req->body_len, &in, ctx, out);
}

static int route_anthropic(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                           fakellm_reply *out)
{
    fakellm_anthropic_in in = {.api_key = fakellm_request_header(req, "x-api-key"),
                               .authorization = fakellm_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION),
                               .version = fakellm_request_header(req, "anthropic-version"),
                               .require_key = s->require_key};
    return fakellm_anthropic_messages(req->body, req->body_len, &in, ctx, out);
}

static const char *batch_query(const fakellm_batch_call *call, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)call->conn, MHD_GET_ARGUMENT_KIND, name);
}

static fakellm_batch_call batch_call(const fakellm_request *req)
{
    return (fakellm_batch_call){.method = req->method,
                                .path = req->path,
                                .body = req->body,
                                .body_len = req->body_len,
                                .content_type = fakellm_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE),
                                .host = fakellm_request_header(req, MHD_HTTP_HEADER_HOST),
                                .request_id = req->seq,
                                .conn = req->conn,
                                .query = batch_query};
}

static int route_gemini_batch(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                              fakellm_reply *out);

static int route_openai_batch(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                              fakellm_reply *out)
{
    int rc = EMPQ_OK;
    /* /v1/batches is both OpenAI's and (under the Gemini SDKs' default
     * version) Gemini's: a Gemini key without a Bearer one says which */
    if (fakellm_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION) == NULL &&
        (fakellm_request_header(req, "x-goog-api-key") != NULL || query_arg(req, "key") != NULL))
        return route_gemini_batch(s, req, ctx, out);
    if (!fakellm_openai_auth(fakellm_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION), s->require_key, out, &rc))
        return rc;
    fakellm_batch_call call = batch_call(req);
    return fakellm_batch_openai(s->batches, &call, out);
}

static int route_anthropic_batch(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                                 fakellm_reply *out)
{
    int rc = EMPQ_OK;
    fakellm_anthropic_in in = {.api_key = fakellm_request_header(req, "x-api-key"),
                               .authorization = fakellm_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION),
                               .version = fakellm_request_header(req, "anthropic-version"),
                               .require_key = s->require_key};
    if (!fakellm_anthropic_check(&in, req->seq, out, &rc))
        return rc;
    fakellm_batch_call call = batch_call(req);
    return fakellm_batch_anthropic(s->batches, &call, out);
}

static int route_gemini_batch(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                              fakellm_reply *out)
{
    int rc = EMPQ_OK;
    const char *key = fakellm_request_header(req, "x-goog-api-key");
    if (!fakellm_gemini_auth(key ? key : query_arg(req, "key"), s->require_key, out, &rc))
        return rc;
    fakellm_batch_call call = batch_call(req);
    return fakellm_batch_gemini(s->batches, &call, out);
}

/* path is prefix, or prefix + "/" + more. */
static int under(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int match_openai_batch(const char *path) { return under(path, "/v1/files") || under(path, "/v1/batches"); }

static int match_anthropic_batch(const char *path) { return under(path, "/v1/messages/batches"); }

/* Appends ,"name": followed by the JSON object fill writes, before the closing brace of out. */
static int splice(empq_buf *out, const char *name, int rc, int (*fill)(void *, empq_buf *), void *arg)
{
    char key[40];
    if (rc != EMPQ_OK || out->len < 2)
        return rc;
    int n = snprintf(key, sizeof(key), ",\"%s\":", name);
    out->len--;
    rc = empq_buf_append(out, key, (size_t)n);
    if (rc == EMPQ_OK)
        rc = fill(arg, out);
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "}", 1);
    return rc;
}

static int fill_models(void *arg, empq_buf *out) { return fakellm_limits_json(arg, out); }

static int fill_batches(void *arg, empq_buf *out) { return fakellm_batch_stats_json(arg, out); }

static int route_stats(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx, fakellm_reply *out)
{
    empq_buf_free(&out->body);
    out->status = 200;
    out->content_type = "application/json";
    int rc = fakellm_stats_json(s->stats, &out->body);
    /* All are compact JSON objects: splice "models" and "batches" in before the last '}'. */
    rc = splice(&out->body, "models", rc, fill_models, s->limits);
    return splice(&out->body, "batches", rc, fill_batches, s->batches);
}

static int route_stats_reset(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx,
                             fakellm_reply *out)
{
    fakellm_stats_reset(s->stats);
    fakellm_limits_reset(s->limits);
    fakellm_batch_stats_reset(s->batches);
    return route_stats(s, req, ctx, out);
}

static int route_healthz(fakellm_server *s, const fakellm_request *req, const fakellm_ctx *ctx, fakellm_reply *out)
{
    static const char ok[] = "{\"ok\":true}";
    return fakellm_reply_set(out, 200, ok, sizeof(ok) - 1);
}

static const route routes[] = {
    {"POST", "/v1/chat/completions", "openai.chat", ROUTE_MODEL, route_openai_chat, NULL, &fakellm_front_openai},
    {"POST", "/openai/deployments/{deployment}/chat/completions", "azure.chat", ROUTE_MODEL | ROUTE_PATTERN,
     route_azure_chat, match_azure, &fakellm_front_azure},
    {"POST", "/v1beta/models/{model}:generateContent", "gemini.generate", ROUTE_MODEL | ROUTE_PATTERN, route_gemini,
     match_gemini, &fakellm_front_gemini},
    {"POST", "/v1/messages", "anthropic.messages", ROUTE_MODEL, route_anthropic, NULL, &fakellm_front_anthropic},
    {"*", "/v1/files, /v1/batches (batch.h)", "openai.batch", ROUTE_BATCH | ROUTE_PATTERN, route_openai_batch,
     match_openai_batch, &fakellm_front_openai},
    {"*", "/v1/messages/batches (batch.h)", "anthropic.batch", ROUTE_BATCH | ROUTE_PATTERN, route_anthropic_batch,
     match_anthropic_batch, &fakellm_front_anthropic},
    {"*", "/v1beta/batches, /v1beta/models/{model}:batchGenerateContent (batch.h)", "gemini.batch",
     ROUTE_BATCH | ROUTE_PATTERN, route_gemini_batch, fakellm_batch_gemini_match, &fakellm_front_gemini},
    {"GET", "/stats", "stats", 0, route_stats, NULL, NULL},
    {"POST", "/stats/reset", "stats.reset", 0, route_stats_reset, NULL, NULL},
    {"GET", "/healthz", "healthz", 0, route_healthz, NULL, NULL},
};

static const route *find_route(const char *method, const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(routes[i].method, "*") != 0 && strcmp(routes[i].method, method) != 0)
            continue;
        if ((routes[i].flags & ROUTE_PATTERN) ? routes[i].match(path) : strcmp(routes[i].path, path) == 0)
            return &routes[i];
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

enum { ST_NEW = 0, ST_WAITING, ST_READY };

typedef struct req_ctx {
    fakellm_server *srv;
    struct MHD_Connection *conn;
    const route *route;
    uint64_t seq;
    empq_buf body;
    size_t body_seen; /* bytes received, kept or not */
    int too_large;
    int counted;      /* in the in_flight gauge */
    int hung;         /* held by the hang fault (in the hung gauge) */
    int stall;        /* the stall fault: half the reply, then held */
    fakellm_slot slot; /* its model's place in the limits table */
    uint64_t arrived_ms; /* wall clock when the body had arrived (the request log) */
    int logged;          /* its line is in the request log */
    atomic_int state;
    fakellm_reply reply;
} req_ctx;

/* The body limit of a request on route r (NULL: none matched). */
static size_t body_limit(const fakellm_server *s, const route *r)
{
    return r != NULL && (r->flags & ROUTE_BATCH) != 0 ? s->opts.batch.max_bytes : s->opts.max_body;
}

static unsigned pick_delay(fakellm_server *s, uint64_t seq)
{
    unsigned l = s->opts.latency_ms, j = s->opts.jitter_ms;
    if (j == 0)
        return l;
    uint64_t r = fakellm_mix64(seq ^ s->jitter_seed) % (2ull * j + 1);
    long long d = (long long)l - (long long)j + (long long)r;
    return d < 0 ? 0u : (unsigned)d;
}

static void internal_error(fakellm_reply *r)
{
    static const char text[] =
        "{\"error\":{\"message\":\"The server had an error while processing your request.\","
        "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
    fakellm_reply_clear(r);
    if (fakellm_reply_set(r, 500, text, sizeof(text) - 1) != EMPQ_OK)
        r->status = 500; /* empty body: nothing else to do */
}

static fakellm_mode mode_for(fakellm_fault f)
{
    switch (f) {
    case FAKELLM_FAULT_REFUSAL: return FAKELLM_MODE_REFUSAL;
    case FAKELLM_FAULT_EMPTY: return FAKELLM_MODE_EMPTY;
    case FAKELLM_FAULT_HUGE: return FAKELLM_MODE_HUGE;
    case FAKELLM_FAULT_NULL: return FAKELLM_MODE_NUL;
    case FAKELLM_FAULT_THINKING_ONLY: return FAKELLM_MODE_THINKING_ONLY;
    case FAKELLM_FAULT_LENGTH_EMPTY: return FAKELLM_MODE_LENGTH_EMPTY;
    case FAKELLM_FAULT_SAFETY: return FAKELLM_MODE_SAFETY;
    default: return FAKELLM_MODE_NORMAL;
    }
}

/* Faults that still answer with a completion the client can count. */
static int answers_completion(fakellm_fault f)
{
    return f == FAKELLM_FAULT_NONE || mode_for(f) != FAKELLM_MODE_NORMAL;
}

/* Turns a 200 body into something that is not JSON: the closing brace
 * swapped for a proxy's HTML comment. */
static int make_malformed(fakellm_reply *r)
{
    static const char tail[] = "<!-- upstream connection reset -->";
    if (r->body.len > 0)
        r->body.len--;
    return empq_buf_append(&r->body, tail, sizeof(tail) - 1);
}

/* Applies the limits and the injected fault to a model route's reply.
 * Returns the action. */
static fakellm_action apply_limits_and_fault(req_ctx *c, fakellm_fault fault)
{
    fakellm_server *s = c->srv;
    fakellm_reply *r = &c->reply;
    const fakellm_front *front = c->route->front;
    fakellm_admit a;
    int rc = EMPQ_OK;

    if (r->status != 200 || r->model == NULL) {
        fakellm_reply_drop_pad_mark(r);
        return FAKELLM_ACT_RESPOND; /* a 4xx of the request itself: no limit, no fault */
    }
    uint64_t tokens = answers_completion(fault) ? r->tokens : 0;
    if (fakellm_limits_begin(s->limits, r->model, tokens, fakellm_timer_now_ms(), &a, &c->slot) != EMPQ_OK)
        EMPQ_WARN("event=limits_out_of_memory model=%s", r->model);
    if (!a.admitted) {
        /* The provider's 429, with its rate-limit headers as real 429s carry. */
        rc = front->error(r, FAKELLM_ERR_LIMIT, r->model, &a, c->seq);
        if (rc == EMPQ_OK && front->headers != NULL)
            rc = front->headers(r, &a, empq_now_ms());
        if (rc != EMPQ_OK)
            internal_error(r);
        return FAKELLM_ACT_RESPOND;
    }
    if (a.has_limit && front->headers != NULL)
        rc = front->headers(r, &a, empq_now_ms());
    fakellm_stats_fault(s->stats, fault);
    fakellm_action act = FAKELLM_ACT_RESPOND;
    switch (fault) {
    case FAKELLM_FAULT_429:
        a.retry_after_ms = 1000;
        rc = front->error(r, FAKELLM_ERR_429, r->model, &a, c->seq);
        break;
    case FAKELLM_FAULT_500:
        rc = front->error(r, FAKELLM_ERR_500, r->model, &a, c->seq);
        break;
    case FAKELLM_FAULT_503:
        rc = front->error(r, FAKELLM_ERR_503, r->model, &a, c->seq);
        break;
    case FAKELLM_FAULT_QUOTA:
        rc = front->error(r, FAKELLM_ERR_QUOTA, r->model, &a, c->seq);
        break;
    case FAKELLM_FAULT_HANG:
        act = FAKELLM_ACT_HANG;
        break;
    case FAKELLM_FAULT_RESET:
        act = FAKELLM_ACT_RESET;
        break;
    case FAKELLM_FAULT_MALFORMED:
        rc = make_malformed(r);
        break;
    case FAKELLM_FAULT_TRUNCATED:
        r->body_kind = FAKELLM_BODY_TRUNCATED;
        break;
    case FAKELLM_FAULT_STALL: /* sent like truncated, then held instead of closed (wire_read) */
        r->body_kind = FAKELLM_BODY_TRUNCATED;
        c->stall = 1;
        break;
    case FAKELLM_FAULT_HUGE:
        fakellm_reply_mark_pad(r, s->opts.huge_bytes);
        break;
    default:
        break;
    }
    if (fault != FAKELLM_FAULT_HUGE)
        fakellm_reply_drop_pad_mark(r);
    if (rc != EMPQ_OK)
        internal_error(r);
    return act;
}

/* Builds c->reply for the final call. Returns the action to take. */
static fakellm_action prepare(req_ctx *c, const char *method, const char *url)
{
    fakellm_server *s = c->srv;
    fakellm_request req = {.method = method,
                           .path = url,
                           .route = c->route ? c->route->name : NULL,
                           .body = c->body.data ? c->body.data : "",
                           .body_len = c->body.len,
                           .seq = c->seq,
                           .conn = c->conn};
    int model_route = c->route != NULL && (c->route->flags & ROUTE_MODEL) != 0;
    fakellm_fault fault = FAKELLM_FAULT_NONE;
    fakellm_ctx ctx = {.created = empq_now_ms() / 1000u, .request_id = c->seq};
    uint64_t n = 0;
    int rc;

    if (model_route && !c->too_large && s->any_fault)
        n = atomic_fetch_add(&s->model_seq, 1) + 1;
    if (c->too_large) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Request body too large: the limit is %zu bytes.", body_limit(s, c->route));
        if (c->route != NULL && c->route->front == &fakellm_front_anthropic)
            rc = fakellm_anthropic_error(&c->reply, 413, "request_too_large", msg, c->seq);
        else
            rc = fakellm_openai_error(&c->reply, 413, msg, NULL, NULL, "request_too_large");
    } else if (c->route == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Invalid URL (%s %.200s)", method, url);
        rc = fakellm_openai_error(&c->reply, 404, msg, NULL, NULL, NULL);
    } else {
        rc = c->route->fn(s, &req, model_route ? &ctx : NULL, &c->reply);
        if (rc == EMPQ_OK && n > 0 && c->reply.status == 200 && c->reply.model != NULL) {
            /* The model is known now: draw from its table, and answer again
             * when the fault changes what the model says. */
            double p[FAKELLM_FAULT_COUNT];
            fakellm_fault_table(s->opts.fault_p, s->model_faults, s->n_model_faults, c->reply.model, p);
            fault = fakellm_fault_pick(p, s->opts.fault_seed, n);
            ctx.mode = mode_for(fault);
            if (ctx.mode != FAKELLM_MODE_NORMAL) {
                fakellm_reply_clear(&c->reply);
                rc = c->route->fn(s, &req, &ctx, &c->reply);
            }
        }
    }
    if (rc != EMPQ_OK) {
        EMPQ_ERROR("event=reply_failed path=%s err=\"%s\"", c->route ? c->route->path : "-", empq_strerror(rc));
        internal_error(&c->reply);
    }
    if (!model_route)
        return c->reply.reset ? FAKELLM_ACT_RESET : FAKELLM_ACT_RESPOND;
    fakellm_action act = c->too_large ? FAKELLM_ACT_RESPOND : apply_limits_and_fault(c, fault);
    c->reply.delay_ms = pick_delay(s, c->seq);
    if (s->opts.fault != NULL && act == FAKELLM_ACT_RESPOND)
        act = s->opts.fault(s->opts.fault_user, &req, &c->reply);
    if (atomic_load(&s->stopping))
        c->reply.delay_ms = 0;
    return act;
}

/* A response whose body is generated while sent (padded or truncated). */
typedef struct wire {
    fakellm_reply r;
    size_t send;     /* bytes to send before giving up (truncated) */
    req_ctx *stall;  /* the stall fault: its request, held after send bytes */
    int stalled;     /* held (and resumed only by the server's stop) */
} wire;

static ssize_t wire_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    wire *w = cls;
    if (pos >= w->send && w->stall != NULL && !w->stalled) {
        /* Hold the connection like a hang, from inside the reply: suspended
         * (returning 0 alone would be polled again at once) with a deadline
         * a year away, so the server's stop resumes it and it closes. */
        req_ctx *c = w->stall;
        fakellm_server *s = c->srv;
        w->stalled = 1;
        c->hung = 1;
        fakellm_stats_hung(s->stats, 1);
        atomic_store(&c->state, ST_WAITING);
        MHD_suspend_connection(c->conn);
        if (atomic_load(&s->stopping) ||
            fakellm_timer_add(s->timer, c, fakellm_timer_now_ms() + HANG_MS) != EMPQ_OK) {
            atomic_store(&c->state, ST_READY);
            MHD_resume_connection(c->conn);
        }
        return 0;
    }
    if (pos >= w->send)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* MHD closes the connection */
    size_t n = w->send - (size_t)pos < max ? w->send - (size_t)pos : max;
    return (ssize_t)fakellm_reply_wire_read(&w->r, (size_t)pos, buf, n);
}

static void wire_free(void *cls)
{
    wire *w = cls;
    fakellm_reply_clear(&w->r);
    free(w);
}

static struct MHD_Response *make_response(req_ctx *c)
{
    fakellm_reply *r = &c->reply;
    if (r->body_kind == FAKELLM_BODY_PLAIN) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(r->body.len, r->body.data, MHD_RESPMEM_MUST_FREE);
        if (resp != NULL)
            r->body = (empq_buf){0}; /* MHD frees it now */
        return resp;
    }
    wire *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    size_t total = fakellm_reply_wire_len(r);
    w->send = r->body_kind == FAKELLM_BODY_TRUNCATED ? total / 2 : total;
    w->stall = c->stall ? c : NULL;
    /* Move the body only; status, headers and model stay with r. */
    w->r.body = r->body;
    w->r.body_kind = r->body_kind;
    w->r.pad_at = r->pad_at;
    w->r.pad_len = r->pad_len;
    r->body = (empq_buf){0};
    struct MHD_Response *resp = MHD_create_response_from_callback(total, WIRE_BLOCK, wire_read, w, wire_free);
    if (resp == NULL)
        wire_free(w);
    return resp;
}

/* The request log's line for c (once): replied_ms 0 and status 0 for a
 * model request whose reply was never queued (its client went away while
 * it waited, or a hang/reset fault held or dropped it). */
static void log_request(req_ctx *c, uint64_t replied_ms, unsigned status, const char *model)
{
    if (c->srv->reqlog == NULL || c->logged || c->arrived_ms == 0 || c->route == NULL ||
        (c->route->flags & ROUTE_MODEL) == 0)
        return;
    c->logged = 1;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    fakellm_reqlog_entry e = {c->arrived_ms, replied_ms, status, model, c->body.data, c->body.len,
                              MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
                              ci != NULL ? ci->client_addr : NULL};
    fakellm_reqlog_write(c->srv->reqlog, &e);
}

static enum MHD_Result send_reply(req_ctx *c)
{
    fakellm_reply *r = &c->reply;
    struct MHD_Response *resp = make_response(c);
    if (resp == NULL) {
        EMPQ_ERROR("event=response_failed status=%u", r->status);
        return MHD_NO;
    }
    if (r->content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    for (size_t i = 0; i < r->n_headers; i++) {
        char *colon = strchr(r->headers[i], ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        MHD_add_response_header(resp, r->headers[i], colon[1] == ' ' ? colon + 2 : colon + 1);
        *colon = ':';
    }
    /* The request leaves its model's open count as its reply is queued, not
     * when libmicrohttpd reports the connection's request complete: that
     * callback can run after the client has already sent its next request,
     * which would count one request twice against a concurrency limit.
     * (Idempotent: on_completed's call then does nothing.) */
    fakellm_limits_end(c->srv->limits, &c->slot);
    enum MHD_Result ret = MHD_queue_response(c->conn, r->status, resp);
    MHD_destroy_response(resp);
    if (r->status >= 400)
        fakellm_stats_error(c->srv->stats);
    else if (r->status == 200 && r->model != NULL)
        fakellm_stats_answered(c->srv->stats, r->model);
    log_request(c, empq_now_ms(), r->status, r->model);
    return ret;
}

static void on_deadline(void *item, void *user)
{
    req_ctx *c = item;
    struct MHD_Connection *conn = c->conn;
    atomic_store(&c->state, ST_READY);
    /* c may be freed by the MHD thread from here on. */
    MHD_resume_connection(conn);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    fakellm_server *s = cls;
    req_ctx *c = *con_cls;

    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            EMPQ_ERROR("event=out_of_memory what=request");
            return MHD_NO;
        }
        c->srv = s;
        c->conn = conn;
        c->seq = atomic_fetch_add(&s->seq, 1) + 1;
        c->slot.model = -1;
        c->route = find_route(method, url);
        if (c->route != NULL && (c->route->flags & ROUTE_MODEL) != 0) {
            fakellm_stats_begin(s->stats);
            c->counted = 1;
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > body_limit(s, c->route))
            c->too_large = 1;
        *con_cls = c;
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        c->body_seen += n;
        if (c->body_seen > body_limit(s, c->route))
            c->too_large = 1;
        if (c->too_large) {
            empq_buf_free(&c->body);
            return MHD_YES;
        }
        if (empq_buf_append(&c->body, upload_data, n) != EMPQ_OK) {
            EMPQ_ERROR("event=out_of_memory what=body bytes=%zu", c->body_seen);
            return MHD_NO;
        }
        return MHD_YES;
    }

    switch (atomic_load(&c->state)) {
    case ST_NEW: {
        c->arrived_ms = empq_now_ms();
        fakellm_action act = prepare(c, method, url);
        uint64_t wait = c->reply.delay_ms;
        if (act == FAKELLM_ACT_RESET)
            return MHD_NO;
        if (act == FAKELLM_ACT_HANG) {
            /* The client will give up; the server cannot see it while the
             * connection is suspended, so the request leaves its model's
             * open count now. */
            fakellm_limits_end(s->limits, &c->slot);
            fakellm_stats_hung(s->stats, 1);
            c->hung = 1;
            wait = atomic_load(&s->stopping) ? 0 : HANG_MS;
        }
        if (wait == 0)
            return send_reply(c);
        atomic_store(&c->state, ST_WAITING);
        MHD_suspend_connection(conn);
        if (fakellm_timer_add(s->timer, c, fakellm_timer_now_ms() + wait) != EMPQ_OK) {
            /* No heap slot (or stopping): answer now instead. */
            atomic_store(&c->state, ST_READY);
            MHD_resume_connection(conn);
        }
        return MHD_YES;
    }
    case ST_WAITING:
        /* Called again before the deadline: hold on. */
        MHD_suspend_connection(conn);
        return MHD_YES;
    default:
        return send_reply(c);
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    fakellm_server *s = cls;
    req_ctx *c = *con_cls;
    if (c == NULL)
        return;
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        EMPQ_DEBUG("event=request_ended seq=%llu code=%d", (unsigned long long)c->seq, (int)toe);
    log_request(c, 0, 0, NULL);
    fakellm_limits_end(s->limits, &c->slot);
    if (c->hung)
        fakellm_stats_hung(s->stats, -1);
    if (c->counted)
        fakellm_stats_end(s->stats);
    empq_buf_free(&c->body);
    fakellm_reply_clear(&c->reply);
    free(c);
}

/* fmt comes from libmicrohttpd: a printf format for ap. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], quoted[600];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    EMPQ_WARN("event=mhd msg=%s", empq_log_quote(quoted, sizeof(quoted), msg));
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                 */
/* ------------------------------------------------------------------------ */

void fakellm_options_init(fakellm_options *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->connection_limit = DEFAULT_CONNECTION_LIMIT;
    o->threads = 1;
    o->max_body = DEFAULT_MAX_BODY;
    fakellm_batch_options_init(&o->batch);
}

static int resolve(const char *host, unsigned port, struct sockaddr_storage *addr, empq_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char service[16];
    snprintf(service, sizeof(service), "%u", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0 || res == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "fakellm: cannot resolve host %s: %s", host, gai_strerror(rc));
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return EMPQ_OK;
}

static void server_free(fakellm_server *s)
{
    fakellm_timer_free(&s->timer);
    fakellm_batch_store_free(&s->batches);
    fakellm_stats_free(&s->stats);
    fakellm_limits_free(&s->limits);
    fakellm_reqlog_close(&s->reqlog);
    for (size_t i = 0; i < s->n_azure; i++) {
        free((char *)s->azure[i].deployment);
        free((char *)s->azure[i].model);
    }
    free(s->azure);
    for (size_t i = 0; i < s->n_model_faults; i++)
        free((char *)s->model_faults[i].model);
    free(s->model_faults);
    free(s->host);
    free(s->require_key);
    free(s);
}

/* Copies the limits, the Azure table and the fault settings of o into s. */
static int copy_tables(fakellm_server *s, const fakellm_options *o, empq_error *err)
{
    double sum = 0;
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++) {
        double p = o->fault_p[k];
        if (!(p >= 0 && p <= 1))
            return empq_error_set(err, EMPQ_EINVAL, "fakellm: fault %s probability %g not in [0, 1]",
                                  fakellm_fault_name((fakellm_fault)k), p);
        sum += p;
        if (p > 0)
            s->any_fault = 1;
    }
    if (sum > 1.0 + 1e-9)
        return empq_error_set(err, EMPQ_EINVAL, "fakellm: the fault probabilities add up to %g, more than 1", sum);
    if (o->n_model_faults > 0) {
        s->model_faults = calloc(o->n_model_faults, sizeof(*s->model_faults));
        if (s->model_faults == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    }
    for (size_t i = 0; i < o->n_model_faults; i++) {
        double p[FAKELLM_FAULT_COUNT], msum = 0;
        fakellm_fault_table(o->fault_p, o->model_faults + i, 1, o->model_faults[i].model, p);
        for (int k = 1; k < FAKELLM_FAULT_COUNT; k++) {
            if (!(o->model_faults[i].p[k] >= 0 && o->model_faults[i].p[k] <= 1))
                return empq_error_set(err, EMPQ_EINVAL, "fakellm: model %s fault %s probability %g not in [0, 1]",
                                      o->model_faults[i].model, fakellm_fault_name((fakellm_fault)k),
                                      o->model_faults[i].p[k]);
            msum += p[k];
            if (p[k] > 0)
                s->any_fault = 1;
        }
        if (msum > 1.0 + 1e-9)
            return empq_error_set(err, EMPQ_EINVAL,
                                  "fakellm: the fault probabilities of model %s (its own plus the global ones) add "
                                  "up to %g, more than 1", o->model_faults[i].model, msum);
        s->model_faults[i] = o->model_faults[i];
        s->model_faults[i].model = empq_strdup(o->model_faults[i].model);
        s->n_model_faults++;
        if (s->model_faults[i].model == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    }
    if (s->opts.huge_bytes == 0)
        s->opts.huge_bytes = FAKELLM_HUGE_BYTES;
    s->limits = fakellm_limits_new();
    if (s->limits == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    for (size_t i = 0; i < o->n_limits; i++) {
        int rc = fakellm_limits_set(s->limits, o->limits[i].model, &o->limits[i].limit);
        if (rc != EMPQ_OK)
            return empq_error_set(err, rc, "fakellm: cannot set the limit of %s (too many models, or a name over "
                                  "256 bytes)", o->limits[i].model ? o->limits[i].model : "the default");
    }
    if (o->n_azure > 0) {
        s->azure = calloc(o->n_azure, sizeof(*s->azure));
        if (s->azure == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
        for (size_t i = 0; i < o->n_azure; i++) {
            s->azure[i].deployment = empq_strdup(o->azure[i].deployment);
            s->azure[i].model = empq_strdup(o->azure[i].model);
            s->n_azure++;
            if (s->azure[i].deployment == NULL || s->azure[i].model == NULL)
                return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
        }
    }
    s->opts.limits = NULL;
    s->opts.n_limits = 0;
    s->opts.azure = NULL;
    s->opts.n_azure = 0;
    s->opts.model_faults = NULL;
    s->opts.n_model_faults = 0;
    return EMPQ_OK;
}

int fakellm_server_start(const fakellm_options *o, fakellm_server **out, empq_error *err)
{
    struct sockaddr_storage addr;
    int rc;

    *out = NULL;
    if (o->port > 65535)
        return empq_error_set(err, EMPQ_EINVAL, "fakellm: port %u out of range", o->port);
    if (o->threads == 0 || o->threads > 64)
        return empq_error_set(err, EMPQ_EINVAL, "fakellm: threads %u not in 1..64", o->threads);
    rc = resolve(o->host ? o->host : "127.0.0.1", o->port, &addr, err);
    if (rc != EMPQ_OK)
        return rc;

    fakellm_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    s->opts = *o;
    s->host = empq_strdup(o->host ? o->host : "127.0.0.1");
    s->require_key = empq_strdup(o->require_key);
    s->opts.host = s->host;
    s->opts.require_key = s->require_key;
    if (s->opts.max_body == 0)
        s->opts.max_body = DEFAULT_MAX_BODY;
    if (s->opts.connection_limit == 0)
        s->opts.connection_limit = DEFAULT_CONNECTION_LIMIT;
    s->jitter_seed = fakellm_mix64(empq_now_ms());
    s->stats = fakellm_stats_new();
    if (s->host == NULL || (o->require_key != NULL && s->require_key == NULL) || s->stats == NULL) {
        server_free(s);
        return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    }
    rc = copy_tables(s, o, err);
    if (rc == EMPQ_OK && o->request_log != NULL)
        rc = fakellm_reqlog_open(&s->reqlog, o->request_log, err);
    s->opts.request_log = NULL; /* not kept: the file is open */
    if (rc == EMPQ_OK)
        rc = fakellm_timer_new(&s->timer, on_deadline, s, err);
    if (rc == EMPQ_OK)
        rc = fakellm_batch_store_new(&s->opts.batch, &s->batches, err);
    if (rc != EMPQ_OK) {
        server_free(s);
        return rc;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* poll(), not epoll: with libmicrohttpd 0.9.75's edge-triggered epoll a
     * keep-alive connection whose next request arrived while the previous
     * reply was being sent was sometimes never read again (seen as demo runs
     * stalled until the clients' 120 s timeout, the requests sitting in the
     * server's receive queue). poll() is level-triggered. */
    flags |= MHD_USE_POLL;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->opts.connection_limit, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned int)LISTEN_BACKLOG, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        s->opts.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (unsigned int)s->opts.threads,
        MHD_OPTION_END);
    if (s->daemon == NULL) {
        rc = empq_error_set(err, EMPQ_EIO, "fakellm: cannot listen on %s port %u (in use, or no permission?)",
                            s->host, o->port);
        server_free(s);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : o->port;
    *out = s;
    return EMPQ_OK;
}

unsigned fakellm_server_port(const fakellm_server *s) { return s->port; }

fakellm_stats *fakellm_server_stats(fakellm_server *s) { return s->stats; }

fakellm_limits *fakellm_server_limits(fakellm_server *s) { return s->limits; }

void fakellm_server_stop(fakellm_server **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    fakellm_server *s = *sp;
    *sp = NULL;
    atomic_store(&s->stopping, 1);
    MHD_socket listen_fd = MHD_quiesce_daemon(s->daemon);
    fakellm_timer_flush(s->timer);
    if (fakellm_stats_wait_idle(s->stats, DRAIN_MS) != EMPQ_OK) {
        fakellm_stats_snapshot snap;
        fakellm_stats_get(s->stats, &snap);
        EMPQ_WARN("event=drain_timeout in_flight=%llu", (unsigned long long)snap.in_flight);
    }
    /* A request that raced the first flush may have just been scheduled. */
    fakellm_timer_flush(s->timer);
    MHD_stop_daemon(s->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    server_free(s);
}
