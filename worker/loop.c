/* loop.c: the worker's event loop (see loop.h).
 *
 * One turn: zmq_poll over the DEALER socket and libcurl's sockets, with the
 * timeout = min(libcurl's timer, the next heartbeat, the broker-silence
 * deadline, the grace deadline; 0 while outcomes wait); then libcurl is
 * driven, what finished is written to Redis and reported in one Outcomes
 * message, the engine's queued requests start in the freed slots, and every
 * broker message waiting is handled (batches start or queue requests; the
 * jobs they answer at once are flushed the next turn). */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "empq/curve.h"
#include "empq/log.h"
#include "empq/wake.h"
#include "empq/store.h"
#include "empq/wire.h"
#include "engine.h"
#include "http.h"

#define SILENT_BEATS 5

typedef struct loop {
    const worker__config *cfg;
    char id[256];
    char host[256];
    void *zctx;
    void *sock;
    uint32_t hb_ms;
    uint64_t last_send, last_recv;
    uint64_t last_hb;            /* last heartbeat sent */
    int welcomed;
    int stopping;
    uint64_t grace_at;
    worker__engine *engine;
    worker__http *http;
    zmq_pollitem_t *items;
    size_t cap_items;
    uint64_t reconnects;
} loop;

/* ==================== stop wakeup ==================== */

void worker__loop_wake(void) { empq_wake(); }

/* ==================== broker connection ==================== */

static int send_msg(loop *l, const Empq__WorkerMsg *m, const char *what)
{
    int rc = empq_wire_send(l->sock, &m->base, ZMQ_DONTWAIT);
    if (rc != EMPQ_OK) {
        EMPQ_WARN("event=send_failed what=%s broker=%s reason=\"%s\"", what, l->cfg->broker,
                  rc == EMPQ_ETIMEOUT ? "send queue full" : zmq_strerror(zmq_errno()));
        return rc;
    }
    l->last_send = empq_mono_ms();
    return EMPQ_OK;
}

static void send_hello(loop *l)
{
    Empq__Hello h = EMPQ__HELLO__INIT;
    h.worker_id = l->id;
    h.host = l->host;
    h.has_pid = 1;
    h.pid = (uint32_t)getpid();
    h.credit = l->cfg->credit + l->cfg->prefetch; /* jobs held: in flight and queued */
    h.n_models = l->cfg->n_models;
    h.models = l->cfg->models;
    Empq__WorkerMsg m = EMPQ__WORKER_MSG__INIT;
    m.body_case = EMPQ__WORKER_MSG__BODY_HELLO;
    m.hello = &h;
    send_msg(l, &m, "hello");
}

static void send_heartbeat(loop *l)
{
    Empq__Heartbeat hb = EMPQ__HEARTBEAT__INIT;
    hb.has_sent_ms = 1;
    hb.sent_ms = empq_now_ms();
    hb.n_unusable = worker__engine_unusable(l->engine, &hb.unusable); /* models it cannot call */
    l->last_hb = empq_mono_ms();
    Empq__WorkerMsg m = EMPQ__WORKER_MSG__INIT;
    m.body_case = EMPQ__WORKER_MSG__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    send_msg(l, &m, "heartbeat");
}

static void send_bye(loop *l, const char *reason)
{
    Empq__Bye b = EMPQ__BYE__INIT;
    b.reason = (char *)reason;
    Empq__WorkerMsg m = EMPQ__WORKER_MSG__INIT;
    m.body_case = EMPQ__WORKER_MSG__BODY_BYE;
    m.bye = &b;
    send_msg(l, &m, "bye");
}

/* Closes the DEALER (if any), opens a new one and says hello. */
static int connect_broker(loop *l, int linger_ms)
{
    if (l->sock != NULL) {
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(l->sock);
        l->sock = NULL;
    }
    void *s = zmq_socket(l->zctx, ZMQ_DEALER);
    if (s == NULL) {
        EMPQ_ERROR("event=zmq_socket_failed reason=\"%s\"", zmq_strerror(zmq_errno()));
        return EMPQ_EWIRE;
    }
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, l->id, strlen(l->id));
    /* while the broker is away ZeroMQ retries the TCP connection itself:
     * 100 ms doubling to 1 s, so a restarted broker is found within a second */
    int ivl = 100, ivl_max = 1000;
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    int64_t maxsz = 2 * (int64_t)EMPQ_WIRE_MAX_MSG; /* beyond it the broker is cut off and reconnected */
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsz, sizeof maxsz);
    empq_curve_opts co = {l->cfg->curve_secret, l->cfg->curve_server_pub, NULL};
    empq_error cerr = {0};
    if (empq_curve_client_setup(s, &co, &cerr) != EMPQ_OK) {
        EMPQ_ERROR("event=curve_setup_failed broker=%s reason=\"%s\"", l->cfg->broker, cerr.msg);
        zmq_close(s);
        return EMPQ_EINVAL;
    }
    if (zmq_connect(s, l->cfg->broker) != 0) {
        EMPQ_ERROR("event=connect_failed broker=%s reason=\"%s\"", l->cfg->broker, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return EMPQ_EWIRE;
    }
    l->sock = s;
    l->welcomed = 0;
    l->last_recv = empq_mono_ms();
    send_hello(l);
    return EMPQ_OK;
}

static void begin_stop(loop *l, const char *why)
{
    if (l->stopping)
        return;
    l->stopping = 1;
    l->grace_at = empq_mono_ms() + l->cfg->grace_ms;
    worker__engine_stop(l->engine);
    EMPQ_INFO("event=stopping reason=%s in_flight=%zu grace_ms=%u", why, worker__engine_in_flight(l->engine),
              l->cfg->grace_ms);
}

static void handle(loop *l, const Empq__BrokerMsg *m)
{
    switch (m->body_case) {
    case EMPQ__BROKER_MSG__BODY_WELCOME:
        if (m->welcome->has_heartbeat_ms && m->welcome->heartbeat_ms > 0)
            l->hb_ms = m->welcome->heartbeat_ms;
        if (!l->welcomed)
            EMPQ_INFO("event=welcome broker=%s heartbeat_ms=%u lease_ms=%u", l->cfg->broker, l->hb_ms,
                      m->welcome->lease_ms);
        l->welcomed = 1;
        break;
    case EMPQ__BROKER_MSG__BODY_JOBS:
        worker__engine_batch(l->engine, m->jobs);
        break;
    case EMPQ__BROKER_MSG__BODY_HEARTBEAT:
        break;
    case EMPQ__BROKER_MSG__BODY_SHUTDOWN:
        begin_stop(l, "broker_shutdown");
        break;
    case EMPQ__BROKER_MSG__BODY_REJECT:
        EMPQ_INFO("event=rejected broker=%s reason=\"%s\" action=hello", l->cfg->broker,
                  m->reject->reason != NULL ? m->reject->reason : "");
        send_hello(l);
        break;
    default:
        EMPQ_WARN("event=unknown_message broker=%s case=%d", l->cfg->broker, (int)m->body_case);
        break;
    }
}

/* Reads every message waiting on the DEALER. */
static void drain(loop *l)
{
    for (;;) {
        ProtobufCMessage *pm = NULL;
        empq_error err = {0};
        int rc = empq_wire_recv(l->sock, &empq__broker_msg__descriptor, &pm, ZMQ_DONTWAIT, &err);
        if (rc == EMPQ_ETIMEOUT)
            return;
        if (rc == EMPQ_EPARSE) {
            EMPQ_WARN("event=bad_message broker=%s reason=\"%s\"", l->cfg->broker, err.msg);
            l->last_recv = empq_mono_ms();
            continue;
        }
        if (rc != EMPQ_OK) {
            if (zmq_errno() != EINTR)
                EMPQ_WARN("event=recv_failed broker=%s reason=\"%s\"", l->cfg->broker, err.msg);
            return;
        }
        l->last_recv = empq_mono_ms();
        handle(l, (const Empq__BrokerMsg *)pm);
        protobuf_c_message_free_unpacked(pm, NULL);
    }
}

/* Writes what finished this turn and reports it. */
static void flush(loop *l)
{
    const Empq__Outcomes *oc = NULL;
    if (worker__engine_flush(l->engine, &oc) == 0)
        return;
    Empq__WorkerMsg m = EMPQ__WORKER_MSG__INIT;
    m.body_case = EMPQ__WORKER_MSG__BODY_OUTCOMES;
    m.outcomes = (Empq__Outcomes *)oc;
    send_msg(l, &m, "outcomes");
}

/* ==================== the loop ==================== */

static long min_timeout(long a, long b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static long until(uint64_t at, uint64_t now) { return at > now ? (long)(at - now) : 0; }

int worker__loop_run(const worker__config *cfg, volatile sig_atomic_t *stop)
{
    loop L = {0};
    loop *l = &L;
    l->cfg = cfg;
    l->hb_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    if (gethostname(l->host, sizeof l->host - 1) != 0)
        snprintf(l->host, sizeof l->host, "unknown");
    if (cfg->id != NULL)
        snprintf(l->id, sizeof l->id, "%s", cfg->id);
    else
        snprintf(l->id, sizeof l->id, "%s-%ld", l->host, (long)getpid());

    int status = 1;
    empq_error err = {0};
    empq_store *store = NULL;
    /* Redis may come up after us (a machine starting, Redis restarting):
     * try again with backoff, 250 ms doubling to 5 s, until stopped. A bad
     * URL is not worth waiting for. */
    for (uint32_t wait_ms = 250, tries = 1;; tries++) {
        int rc = empq_store_open(&store, cfg->redis_url, 2000, &err);
        if (rc == EMPQ_OK) {
            if (tries > 1)
                EMPQ_INFO("event=redis_up url=%s tries=%u", empq_store_url(store), tries);
            break;
        }
        if (rc != EMPQ_ESTORE) {
            EMPQ_ERROR("event=redis_unusable reason=\"%s\"", err.msg);
            return 1;
        }
        if (tries == 1) /* err names the URL with its password masked */
            EMPQ_WARN("event=redis_unreachable reason=\"%s\" action=retry", err.msg);
        if (*stop)
            return 0;
        struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a signal cuts it short */
        wait_ms = wait_ms * 2 > 5000 ? 5000 : wait_ms * 2;
    }
    if (worker__http_new(&l->http, (long)cfg->credit + 16, &err) != EMPQ_OK) {
        EMPQ_ERROR("event=setup_failed what=http reason=\"%s\"", err.msg);
        goto out;
    }
    worker__options opt = WORKER__OPTIONS_INIT;
    opt.worker_id = l->id;
    opt.max_requests = cfg->credit;
    worker__transport tp = worker__http_transport(l->http);
    if (worker__engine_new(&l->engine, &opt, store, &tp, &err) != EMPQ_OK) {
        EMPQ_ERROR("event=setup_failed what=engine reason=\"%s\"", err.msg);
        goto out;
    }
    worker__http_set_engine(l->http, l->engine);
    empq_error werr = {0};
    if (empq_wake_open(&werr) != EMPQ_OK) {
        EMPQ_ERROR("event=setup_failed what=wake_pipe reason=\"%s\"", werr.msg);
        goto out;
    }
    l->zctx = zmq_ctx_new();
    if (l->zctx == NULL || connect_broker(l, 0) != EMPQ_OK)
        goto out;
    EMPQ_INFO("event=started id=%s broker=%s redis=%s credit=%u prefetch=%u heartbeat_ms=%u", l->id,
              cfg->broker, empq_store_url(store), cfg->credit, cfg->prefetch, l->hb_ms);

    for (;;) {
        uint64_t now = empq_mono_ms();
        if (*stop && !l->stopping)
            begin_stop(l, "signal");
        if (l->stopping) {
            if (worker__engine_in_flight(l->engine) > 0 && now >= l->grace_at) {
                EMPQ_WARN("event=grace_over released=%zu", worker__engine_in_flight(l->engine));
                worker__engine_release_all(l->engine);
            }
            if (worker__engine_in_flight(l->engine) == 0) {
                flush(l);
                break;
            }
        }

        long timeout = worker__engine_pending(l->engine) > 0 ? 0 : worker__http_timeout(l->http, now);
        timeout = min_timeout(timeout, until(l->last_send + l->hb_ms, now));
        timeout = min_timeout(timeout, until(l->last_recv + (uint64_t)SILENT_BEATS * l->hb_ms, now));
        if (l->stopping)
            timeout = min_timeout(timeout, until(l->grace_at, now));

        size_t nfd = worker__http_nfds(l->http);
        if (nfd + 2 > l->cap_items) {
            size_t cap = (nfd + 2) * 2;
            zmq_pollitem_t *it = realloc(l->items, cap * sizeof *it);
            if (it == NULL) {
                EMPQ_ERROR("event=oom what=poll_items n=%zu", nfd + 2);
                goto out;
            }
            l->items = it;
            l->cap_items = cap;
        }
        l->items[0].socket = l->sock;
        l->items[0].fd = 0;
        l->items[0].events = ZMQ_POLLIN;
        l->items[0].revents = 0;
        l->items[1].socket = NULL;
        l->items[1].fd = empq_wake_fd();
        l->items[1].events = ZMQ_POLLIN;
        l->items[1].revents = 0;
        worker__http_fill(l->http, l->items + 2);
        int rc = zmq_poll(l->items, (int)(nfd + 2), timeout);
        if (rc < 0 && zmq_errno() != EINTR) {
            EMPQ_ERROR("event=poll_failed reason=\"%s\"", zmq_strerror(zmq_errno()));
            goto out;
        }
        if (rc > 0 && (l->items[1].revents & ZMQ_POLLIN))
            empq_wake_drain();
        /* replies first, written and reported at once; their slots go to
         * queued requests, which leave before the broker's messages are
         * read; what a batch answers at once goes out next turn */
        worker__http_act(l->http, l->items + 2, rc > 0 ? nfd : 0, empq_mono_ms());
        flush(l);
        worker__http_act(l->http, l->items + 2, 0, empq_mono_ms());
        if (rc > 0 && (l->items[0].revents & ZMQ_POLLIN)) {
            drain(l);
            worker__http_act(l->http, l->items + 2, 0, empq_mono_ms());
        }

        now = empq_mono_ms();
        if (now - l->last_recv >= (uint64_t)SILENT_BEATS * l->hb_ms) {
            l->reconnects++;
            EMPQ_WARN("event=broker_silent broker=%s silent_ms=%llu action=reconnect%s", cfg->broker,
                      (unsigned long long)(now - l->last_recv),
                      cfg->curve_secret != NULL && !l->welcomed
                          ? " hint=\"never welcomed: is this worker's CURVE key in the broker's allow-list?\""
                          : "");
            if (connect_broker(l, 0) != EMPQ_OK)
                goto out;
        } else if (now - l->last_send >= l->hb_ms ||
                   (now - l->last_hb >= l->hb_ms && worker__engine_unusable(l->engine, NULL) > 0)) {
            send_heartbeat(l); /* also while busy when a model is unusable: the broker counts on the report */
        }
    }
    send_bye(l, *stop ? "signal" : "shutdown");
    status = 0;

out:
    if (l->engine != NULL) {
        worker__stats st;
        worker__engine_stats(l->engine, &st);
        EMPQ_INFO("event=exit id=%s jobs=%llu done=%llu retry=%llu dead=%llu released=%llu cache_hits=%llu "
                  "human=%llu backend_calls=%llu store_errors=%llu reconnects=%llu",
                  l->id, (unsigned long long)st.jobs, (unsigned long long)st.done, (unsigned long long)st.retry,
                  (unsigned long long)st.dead, (unsigned long long)st.released, (unsigned long long)st.cache_hits,
                  (unsigned long long)st.human, (unsigned long long)st.backend_calls,
                  (unsigned long long)st.store_errors, (unsigned long long)l->reconnects);
    }
    worker__engine_free(&l->engine);
    worker__http_free(&l->http);
    if (l->sock != NULL) {
        int linger = 1000; /* let the bye and the last outcomes leave */
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(l->sock);
    }
    if (l->zctx != NULL)
        zmq_ctx_term(l->zctx);
    free(l->items);
    empq_wake_close();
    empq_store_close(&store);
    return status;
}
