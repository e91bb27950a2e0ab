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
#include "empq/endpoint.h"
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
    /* the handshake: a monitor of the DEALER reports refusals */
    void *mon;                              /* PAIR connected to the DEALER's monitor; NULL with no socket */
    uint64_t mon_seq;                       /* makes each monitor endpoint unique */
    char curve_pub[EMPQ_CURVE_KEY_LEN + 1]; /* this worker's public key, "" without CURVE */
    uint64_t refusals;                      /* refused handshakes since the last welcome */
    uint32_t backoff_ms;                    /* the wait before the next attempt after a refusal */
    uint64_t reconnect_at;                  /* with no socket: when to open one again */
} loop;

/* After a refused handshake the socket is closed and opened again after a
 * wait growing from REFUSED_WAIT_MS, doubling, to REFUSED_WAIT_MAX_MS; a
 * welcome resets it. */
#define REFUSED_WAIT_MS 500u
#define REFUSED_WAIT_MAX_MS 30000u

/* ==================== stop wakeup ==================== */

void worker__loop_wake(void) { empq_wake(); }

/* ==================== broker connection ==================== */

/* Sends m; a failure is logged under the rate limit (a full queue repeats
 * every turn until the broker is back). The heartbeat clock counts the
 * attempt either way, so a failing send is not retried in a busy loop. */
static int send_msg(loop *l, const Empq__WorkerMsg *m, const char *what)
{
    l->last_send = empq_mono_ms();
    int rc = l->sock != NULL ? empq_wire_send(l->sock, &m->base, ZMQ_DONTWAIT) : EMPQ_EWIRE;
    if (rc != EMPQ_OK) {
        char key[48];
        snprintf(key, sizeof key, "send_failed/%s", what);
        EMPQ_WARN_LIMITED(key, "event=send_failed what=%s broker=%s reason=\"%s\"", what, l->cfg->broker,
                          l->sock == NULL       ? "not connected (refused; waiting to try again)"
                          : rc == EMPQ_ETIMEOUT ? "send queue full"
                                                : zmq_strerror(zmq_errno()));
        return rc;
    }
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

/* Closes the DEALER and its monitor, if any. Messages the broker sent and
 * this worker has not read go with it. */
static void close_broker(loop *l, int linger_ms)
{
    if (l->mon != NULL) {
        zmq_close(l->mon);
        l->mon = NULL;
    }
    if (l->sock != NULL) {
        zmq_socket_monitor(l->sock, NULL, 0);
        zmq_setsockopt(l->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(l->sock);
        l->sock = NULL;
    }
    l->welcomed = 0;
}

/* Watches the handshakes of s: a PAIR socket gets the refusals. Without it
 * the worker still works; it only cannot tell a refusal from silence. */
static void monitor_broker(loop *l, void *s)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://empq-worker-monitor-%llu", (unsigned long long)++l->mon_seq);
    int events =
        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(s, ep, events) != 0) {
        EMPQ_WARN_LIMITED("monitor_failed", "event=monitor_failed reason=\"%s\"", zmq_strerror(zmq_errno()));
        return;
    }
    void *m = zmq_socket(l->zctx, ZMQ_PAIR);
    if (m == NULL || zmq_connect(m, ep) != 0) {
        EMPQ_WARN_LIMITED("monitor_failed", "event=monitor_failed reason=\"%s\"", zmq_strerror(zmq_errno()));
        if (m != NULL)
            zmq_close(m);
        zmq_socket_monitor(s, NULL, 0);
        return;
    }
    int zero = 0;
    zmq_setsockopt(m, ZMQ_LINGER, &zero, sizeof zero);
    l->mon = m;
}

/* Closes the DEALER (if any), opens a new one and says hello. */
static int connect_broker(loop *l, int linger_ms)
{
    close_broker(l, linger_ms);
    l->reconnect_at = 0;
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
    if (l->cfg->curve_secret != NULL && l->curve_pub[0] == '\0') {
        size_t klen = sizeof l->curve_pub;
        if (zmq_getsockopt(s, ZMQ_CURVE_PUBLICKEY, l->curve_pub, &klen) != 0)
            l->curve_pub[0] = '\0';
    }
    monitor_broker(l, s);
    char ep[512];
    if (empq_endpoint_resolve(l->cfg->broker, ep, sizeof ep) == NULL || zmq_connect(s, ep) != 0) {
        EMPQ_ERROR("event=connect_failed broker=%s reason=\"%s\"", l->cfg->broker, zmq_strerror(zmq_errno()));
        l->sock = s;
        close_broker(l, 0);
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
        l->refusals = 0;
        l->backoff_ms = 0;
        break;
    case EMPQ__BROKER_MSG__BODY_JOBS:
        worker__engine_batch(l->engine, m->jobs);
        break;
    case EMPQ__BROKER_MSG__BODY_HEARTBEAT:
        break;
    case EMPQ__BROKER_MSG__BODY_SHUTDOWN:
        begin_stop(l, "broker_shutdown");
        break;
    case EMPQ__BROKER_MSG__BODY_REJECT: {
        /* Our hello is on its way (not welcomed since): this reject answers a
         * message sent before it (the broker rejects each one). Saying hello
         * again would make the broker take back the jobs it leases us after
         * the first hello while we run them (their outcomes then land on
         * requeued jobs: extra calls, attempts not counted). A lost hello is
         * caught by the silence check (broker_silent). */
        if (!l->welcomed)
            break;
        /* the broker does not know this worker (it gave it up, or restarted):
         * the leases it held are gone, so what is queued is not ours to start */
        size_t dropped = worker__engine_drop_queued(l->engine);
        EMPQ_INFO_LIMITED("rejected", "event=rejected broker=%s reason=\"%s\" dropped=%zu action=hello", l->cfg->broker,
                          m->reject->reason != NULL ? m->reject->reason : "", dropped);
        l->welcomed = 0;
        send_hello(l);
        break;
    }
    default:
        EMPQ_WARN_LIMITED("unknown_message", "event=unknown_message broker=%s case=%d", l->cfg->broker,
                          (int)m->body_case);
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
            EMPQ_WARN_LIMITED("bad_message", "event=bad_message broker=%s reason=\"%s\"", l->cfg->broker, err.msg);
            l->last_recv = empq_mono_ms();
            continue;
        }
        if (rc != EMPQ_OK) {
            if (zmq_errno() != EINTR)
                EMPQ_WARN_LIMITED("recv_failed", "event=recv_failed broker=%s reason=\"%s\"", l->cfg->broker, err.msg);
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

/* ==================== refused handshakes ==================== */

/* What to fix, for a handshake the broker refused. */
static const char *refusal_hint(const loop *l, uint16_t event, uint32_t value, char *buf, size_t len)
{
    const worker__config *c = l->cfg;
    if (c->curve_secret == NULL) {
        snprintf(buf, len,
                 "the broker requires CURVE and this worker has no key: make one with `empq keygen --out DIR "
                 "--name NAME`, start the worker with --curve-secret DIR/NAME.key --curve-server-pub broker.pub "
                 "(or EMPQ_CURVE_SECRET and EMPQ_CURVE_SERVER_PUB), and add DIR/NAME.pub to the broker's "
                 "allow-list (--curve-allow)");
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        snprintf(buf, len,
                 "this worker's CURVE key (public key %s, from --curve-secret %s) is not in the broker's "
                 "allow-list: add its .pub file to the folder or file the broker reads with --curve-allow "
                 "(EMPQ_CURVE_ALLOW) and restart the broker, or start the worker with a key that is listed",
                 l->curve_pub[0] != '\0' ? l->curve_pub : "?", c->curve_secret);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        snprintf(buf, len,
                 "this worker uses CURVE but the broker does not (started without --curve-secret): start both "
                 "with CURVE keys, or the worker without --curve-secret/EMPQ_CURVE_SECRET");
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        snprintf(buf, len,
                 "the CURVE handshake failed: is --curve-server-pub %s (EMPQ_CURVE_SERVER_PUB) the public key of "
                 "the broker's --curve-secret? is this worker's key (%s) in the broker's allow-list?",
                 c->curve_server_pub != NULL ? c->curve_server_pub : "?", l->curve_pub[0] != '\0' ? l->curve_pub : "?");
    } else {
        snprintf(buf, len,
                 "the broker closed the handshake: check that both sides use CURVE with matching keys "
                 "(--curve-server-pub is the broker's public key, this worker's key %s is in its allow-list)",
                 l->curve_pub[0] != '\0' ? l->curve_pub : "(none)");
    }
    return buf;
}

static const char *handshake_event_name(uint16_t event)
{
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        return "auth";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return "protocol";
    default:
        return "no_detail";
    }
}

/* Reads the monitor's events. A refused handshake closes the socket (libzmq
 * would retry at once) and sets when to try again: the wait doubles each
 * time up to REFUSED_WAIT_MAX_MS. The first refusal is logged at once with
 * what to fix, later ones under the rate limit. Returns 1 when refused. */
static int check_handshake(loop *l, uint64_t now)
{
    if (l->mon == NULL)
        return 0;
    int refused = 0;
    uint16_t event = 0;
    uint32_t value = 0;
    for (;;) {
        zmq_msg_t head;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, l->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            break;
        }
        if (zmq_msg_size(&head) >= 6) {
            const unsigned char *d = zmq_msg_data(&head);
            memcpy(&event, d, sizeof event);
            memcpy(&value, d + 2, sizeof value);
            refused = 1;
        }
        int more = zmq_msg_more(&head);
        zmq_msg_close(&head);
        while (more) { /* the endpoint frame */
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, l->mon, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&part);
                break;
            }
            more = zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
    }
    if (!refused)
        return 0;
    l->refusals++;
    l->backoff_ms = l->backoff_ms == 0                         ? REFUSED_WAIT_MS
                    : l->backoff_ms >= REFUSED_WAIT_MAX_MS / 2 ? REFUSED_WAIT_MAX_MS
                                                               : l->backoff_ms * 2;
    char hint[768], hq[800];
    refusal_hint(l, event, value, hint, sizeof hint);
    EMPQ_ERROR_LIMITED("curve_handshake_refused",
                       "event=curve_handshake_refused broker=%s failure=%s code=0x%x curve=%s refusals=%llu "
                       "retry_in_ms=%u hint=%s",
                       l->cfg->broker, handshake_event_name(event), value, l->cfg->curve_secret != NULL ? "on" : "off",
                       (unsigned long long)l->refusals, l->backoff_ms, empq_log_quote(hq, sizeof hq, hint));
    close_broker(l, 0);
    l->reconnect_at = now + l->backoff_ms;
    return 1;
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

/* Whether the broker has given this worker's leases up by now: it has not
 * heard from us, or we from it, for its give-up time (SILENT_BEATS beats;
 * half a beat early for our own silence, so a wake-up at the edge drops
 * rather than starts: the hello that follows makes the broker requeue
 * whatever it still held for us). */
static int leases_lost(const loop *l, uint64_t now)
{
    uint64_t give_up = (uint64_t)SILENT_BEATS * l->hb_ms;
    return now - l->last_send + l->hb_ms / 2 >= give_up || now - l->last_recv >= give_up;
}

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
        if (l->sock == NULL && now >= l->reconnect_at && connect_broker(l, 0) != EMPQ_OK)
            goto out;

        long timeout = worker__engine_pending(l->engine) > 0 ? 0 : worker__http_timeout(l->http, now);
        timeout = min_timeout(timeout, worker__engine_next_ms(l->engine, now)); /* batch mode's timers */
        if (l->sock != NULL) {
            if (l->welcomed)
                timeout = min_timeout(timeout, until(l->last_send + l->hb_ms, now));
            timeout = min_timeout(timeout, until(l->last_recv + (uint64_t)SILENT_BEATS * l->hb_ms, now));
        } else {
            timeout = min_timeout(timeout, until(l->reconnect_at, now));
        }
        if (l->stopping)
            timeout = min_timeout(timeout, until(l->grace_at, now));

        /* [wake pipe] [DEALER] [its monitor] [libcurl's sockets...] */
        size_t nfd = worker__http_nfds(l->http);
        if (nfd + 3 > l->cap_items) {
            size_t cap = (nfd + 3) * 2;
            zmq_pollitem_t *it = realloc(l->items, cap * sizeof *it);
            if (it == NULL) {
                EMPQ_ERROR("event=oom what=poll_items n=%zu", nfd + 3);
                goto out;
            }
            l->items = it;
            l->cap_items = cap;
        }
        size_t nz = 0;
        zmq_pollitem_t *wake_it = &l->items[nz++], *sock_it = NULL, *mon_it = NULL;
        *wake_it = (zmq_pollitem_t){NULL, empq_wake_fd(), ZMQ_POLLIN, 0};
        if (l->sock != NULL) {
            sock_it = &l->items[nz++];
            *sock_it = (zmq_pollitem_t){l->sock, 0, ZMQ_POLLIN, 0};
        }
        if (l->mon != NULL) {
            mon_it = &l->items[nz++];
            *mon_it = (zmq_pollitem_t){l->mon, 0, ZMQ_POLLIN, 0};
        }
        zmq_pollitem_t *http_its = l->items + nz;
        worker__http_fill(l->http, http_its);
        int rc = zmq_poll(l->items, (int)(nfd + nz), timeout);
        if (rc < 0 && zmq_errno() != EINTR) {
            EMPQ_ERROR("event=poll_failed reason=\"%s\"", zmq_strerror(zmq_errno()));
            goto out;
        }
        if (rc > 0 && (wake_it->revents & ZMQ_POLLIN))
            empq_wake_drain();
        now = empq_mono_ms();
        if (mon_it != NULL && rc > 0 && (mon_it->revents & ZMQ_POLLIN) && check_handshake(l, now))
            sock_it = NULL; /* closed: try again after the backoff */
        /* Before anything starts: when the broker has not heard from this
         * worker for (about) its give-up time, or this worker has not heard
         * from the broker that long (the process was stopped, the host
         * froze, the broker is gone), the broker has requeued the jobs this
         * worker held. Requests on the wire cannot be recalled; the queued
         * ones are dropped, and the stale messages go with the old socket
         * (a batch sent before the give-up must not start now). The new
         * hello makes the broker requeue whatever it still held for us. */
        if (l->sock != NULL && l->welcomed && !l->stopping && leases_lost(l, now)) {
            size_t dropped = worker__engine_drop_queued(l->engine);
            l->reconnects++;
            EMPQ_WARN_LIMITED("leases_lost",
                              "event=leases_lost broker=%s silent_ms=%llu unheard_ms=%llu give_up_ms=%llu "
                              "dropped=%zu in_flight=%zu action=reconnect",
                              cfg->broker, (unsigned long long)(now - l->last_recv),
                              (unsigned long long)(now - l->last_send), (unsigned long long)SILENT_BEATS * l->hb_ms,
                              dropped, worker__engine_sent(l->engine));
            if (connect_broker(l, 0) != EMPQ_OK)
                goto out;
            sock_it = NULL; /* what the old socket held is gone */
        }
        /* replies first, written and reported at once; their slots go to
         * queued requests, which leave before the broker's messages are
         * read; what a batch answers at once goes out next turn */
        worker__http_act(l->http, http_its, rc > 0 ? nfd : 0, empq_mono_ms());
        worker__engine_tick(l->engine, empq_mono_ms());
        flush(l);
        worker__http_act(l->http, http_its, 0, empq_mono_ms());
        if (sock_it != NULL && rc > 0 && (sock_it->revents & ZMQ_POLLIN)) {
            drain(l);
            worker__http_act(l->http, http_its, 0, empq_mono_ms());
        }

        now = empq_mono_ms();
        if (l->sock == NULL)
            continue;
        if (now - l->last_recv >= (uint64_t)SILENT_BEATS * l->hb_ms) {
            /* never welcomed, or the broker went quiet between turns */
            l->reconnects++;
            size_t dropped = worker__engine_drop_queued(l->engine);
            EMPQ_WARN_LIMITED("broker_silent",
                              "event=broker_silent broker=%s silent_ms=%llu dropped=%zu "
                              "action=reconnect%s",
                              cfg->broker, (unsigned long long)(now - l->last_recv), dropped,
                              cfg->curve_secret != NULL && !l->welcomed
                                  ? " hint=\"never welcomed: is this worker's CURVE key in the broker's allow-list?\""
                                  : "");
            if (connect_broker(l, 0) != EMPQ_OK)
                goto out;
        } else if (l->welcomed && (now - l->last_send >= l->hb_ms ||
                                   (now - l->last_hb >= l->hb_ms && worker__engine_unusable(l->engine, NULL) > 0))) {
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
                  "human=%llu backend_calls=%llu store_errors=%llu dropped=%llu reconnects=%llu",
                  l->id, (unsigned long long)st.jobs, (unsigned long long)st.done, (unsigned long long)st.retry,
                  (unsigned long long)st.dead, (unsigned long long)st.released, (unsigned long long)st.cache_hits,
                  (unsigned long long)st.human, (unsigned long long)st.backend_calls,
                  (unsigned long long)st.store_errors, (unsigned long long)st.dropped,
                  (unsigned long long)l->reconnects);
    }
    worker__engine_free(&l->engine);
    worker__http_free(&l->http);
    close_broker(l, 1000); /* let the bye and the last outcomes leave */
    if (l->zctx != NULL)
        zmq_ctx_term(l->zctx);
    free(l->items);
    empq_wake_close();
    empq_store_close(&store);
    return status;
}
