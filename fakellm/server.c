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
 *      again and the reply is queued. */
#include "server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "empq/log.h"
#include "openai.h"
#include "timer.h"

#define DEFAULT_CONNECTION_LIMIT 4096
#define DEFAULT_MAX_BODY (1024u * 1024u)
#define LISTEN_BACKLOG 4096
#define IDLE_TIMEOUT_S 120
#define DRAIN_MS 2000

struct fakellm_server {
    struct MHD_Daemon *daemon;
    fakellm_timer *timer;
    fakellm_stats *stats;
    fakellm_options opts; /* host and require_key point at the copies below */
    char *host;
    char *require_key;
    unsigned port;
    uint64_t jitter_seed;
    atomic_uint_fast64_t seq;
    atomic_int stopping;
};

/* ------------------------------------------------------------------------ */
/* Routes                                                                    */
/* ------------------------------------------------------------------------ */

#define ROUTE_MODEL 1u /* an LLM endpoint: key check, latency, fault hook */

/* Fills out (any status). Returns EMPQ_OK, or EMPQ_ENOMEM when out could
 * not be filled (the caller answers 500). */
typedef int (*route_fn)(fakellm_server *s, const fakellm_request *req, fakellm_reply *out);

typedef struct route {
    const char *method;
    const char *path;
    const char *name;
    unsigned flags;
    route_fn fn;
} route;

const char *fakellm_request_header(const fakellm_request *req, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND, name);
}

/* Checks "Authorization: Bearer KEY" against --require-key. Returns 1 when
 * allowed; 0 after filling out with the 401. */
static int openai_key_ok(fakellm_server *s, const fakellm_request *req, fakellm_reply *out, int *rc)
{
    if (s->require_key == NULL)
        return 1;
    const char *auth = fakellm_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *key = NULL;
    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    if (key != NULL && strcmp(key, s->require_key) == 0)
        return 1;
    if (key == NULL || key[0] == '\0') {
        *rc = fakellm_openai_error(out, 401,
                                   "You didn't provide an API key. You need to provide your API key in an "
                                   "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                                   NULL, NULL, "invalid_api_key");
        return 0;
    }
    /* Name the key as the real API does: its ends, the middle hidden. */
    char msg[256], shown[16];
    size_t n = strlen(key);
    if (n > 8)
        snprintf(shown, sizeof(shown), "%.3s****%s", key, key + n - 4);
    else
        snprintf(shown, sizeof(shown), "****");
    snprintf(msg, sizeof(msg),
             "Incorrect API key provided: %s. You can find your API key at "
             "https://platform.openai.com/account/api-keys.",
             shown);
    *rc = fakellm_openai_error(out, 401, msg, NULL, NULL, "invalid_api_key");
    return 0;
}

static int route_openai_chat(fakellm_server *s, const fakellm_request *req, fakellm_reply *out)
{
    int rc = EMPQ_OK;
    if (!openai_key_ok(s, req, out, &rc))
        return rc;
    fakellm_openai_ctx ctx = {.created = empq_now_ms() / 1000u, .request_id = req->seq};
    return fakellm_openai_chat(req->body, req->body_len, &ctx, out);
}

static int route_stats(fakellm_server *s, const fakellm_request *req, fakellm_reply *out)
{
    empq_buf_free(&out->body);
    out->status = 200;
    out->content_type = "application/json";
    return fakellm_stats_json(s->stats, &out->body);
}

static int route_stats_reset(fakellm_server *s, const fakellm_request *req, fakellm_reply *out)
{
    fakellm_stats_reset(s->stats);
    return route_stats(s, req, out);
}

static int route_healthz(fakellm_server *s, const fakellm_request *req, fakellm_reply *out)
{
    static const char ok[] = "{\"ok\":true}";
    return fakellm_reply_set(out, 200, ok, sizeof(ok) - 1);
}

static const route routes[] = {
    {"POST", "/v1/chat/completions", "openai.chat", ROUTE_MODEL, route_openai_chat},
    {"GET", "/stats", "stats", 0, route_stats},
    {"POST", "/stats/reset", "stats.reset", 0, route_stats_reset},
    {"GET", "/healthz", "healthz", 0, route_healthz},
};

static const route *find_route(const char *method, const char *path)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(routes[i].method, method) == 0 && strcmp(routes[i].path, path) == 0)
            return &routes[i];
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
    atomic_int state;
    fakellm_reply reply;
} req_ctx;

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static unsigned pick_delay(fakellm_server *s, uint64_t seq)
{
    unsigned l = s->opts.latency_ms, j = s->opts.jitter_ms;
    if (j == 0)
        return l;
    uint64_t r = mix64(seq ^ s->jitter_seed) % (2ull * j + 1);
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
    int rc;

    if (c->too_large) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Request body too large: the limit is %zu bytes.", s->opts.max_body);
        rc = fakellm_openai_error(&c->reply, 413, msg, NULL, NULL, "request_too_large");
    } else if (c->route == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Invalid URL (%s %.200s)", method, url);
        rc = fakellm_openai_error(&c->reply, 404, msg, NULL, NULL, NULL);
    } else {
        rc = c->route->fn(s, &req, &c->reply);
    }
    if (rc != EMPQ_OK) {
        EMPQ_ERROR("event=reply_failed path=%s err=\"%s\"", c->route ? c->route->path : "-", empq_strerror(rc));
        internal_error(&c->reply);
    }
    if (c->route == NULL || (c->route->flags & ROUTE_MODEL) == 0)
        return FAKELLM_ACT_RESPOND;
    c->reply.delay_ms = pick_delay(s, c->seq);
    fakellm_action act = FAKELLM_ACT_RESPOND;
    if (s->opts.fault != NULL)
        act = s->opts.fault(s->opts.fault_user, &req, &c->reply);
    if (atomic_load(&s->stopping))
        c->reply.delay_ms = 0;
    return act;
}

static enum MHD_Result send_reply(req_ctx *c)
{
    fakellm_reply *r = &c->reply;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->body.len, r->body.data, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        EMPQ_ERROR("event=response_failed status=%u", r->status);
        return MHD_NO;
    }
    r->body = (empq_buf){0}; /* MHD frees it now */
    if (r->content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    enum MHD_Result ret = MHD_queue_response(c->conn, r->status, resp);
    MHD_destroy_response(resp);
    if (r->status >= 400)
        fakellm_stats_error(c->srv->stats);
    else if (r->status == 200 && r->model != NULL)
        fakellm_stats_answered(c->srv->stats, r->model);
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
        c->route = find_route(method, url);
        if (c->route != NULL && (c->route->flags & ROUTE_MODEL) != 0) {
            fakellm_stats_begin(s->stats);
            c->counted = 1;
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > s->opts.max_body)
            c->too_large = 1;
        *con_cls = c;
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        c->body_seen += n;
        if (c->body_seen > s->opts.max_body)
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
    case ST_NEW:
        if (prepare(c, method, url) == FAKELLM_ACT_RESET)
            return MHD_NO;
        if (c->reply.delay_ms == 0)
            return send_reply(c);
        atomic_store(&c->state, ST_WAITING);
        MHD_suspend_connection(conn);
        if (fakellm_timer_add(s->timer, c, fakellm_timer_now_ms() + c->reply.delay_ms) != EMPQ_OK) {
            /* No heap slot (or stopping): answer now instead. */
            atomic_store(&c->state, ST_READY);
            MHD_resume_connection(conn);
        }
        return MHD_YES;
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
    if (c->counted)
        fakellm_stats_end(s->stats);
    empq_buf_free(&c->body);
    fakellm_reply_clear(&c->reply);
    free(c);
}

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
    fakellm_stats_free(&s->stats);
    free(s->host);
    free(s->require_key);
    free(s);
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
    s->jitter_seed = mix64(empq_now_ms());
    s->stats = fakellm_stats_new();
    if (s->host == NULL || (o->require_key != NULL && s->require_key == NULL) || s->stats == NULL) {
        server_free(s);
        return empq_error_set(err, EMPQ_ENOMEM, "fakellm: out of memory");
    }
    rc = fakellm_timer_new(&s->timer, on_deadline, s, err);
    if (rc != EMPQ_OK) {
        server_free(s);
        return rc;
    }

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
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
