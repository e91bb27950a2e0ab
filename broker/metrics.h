/* metrics.h: the broker's Prometheus metrics: counters fed by the event
 * loop, rendered in the Prometheus text format (version 0.0.4), and served
 * over HTTP by libmicrohttpd inside the broker's own zmq_poll loop (no
 * thread: MHD runs in epoll mode with external polling; its epoll fd is one
 * more zmq_poll item and MHD_run is called from the loop, so the handler
 * reads the broker's state without any lock).
 *
 * Internal to the broker program: names bk__metrics_*. Not thread safe. */
#ifndef EMPQ_BROKER_METRICS_H
#define EMPQ_BROKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "sched.h"

/* Upper bounds (seconds) of the request latency histogram's buckets. */
#define BK_METRICS_BUCKETS 13

typedef struct bk__metrics bk__metrics;

/* What the loop knows that the scheduler does not. */
typedef struct bk__metrics_broker {
    uint64_t dispatched;   /* jobs sent in batches */
    uint64_t outcomes;     /* outcomes received */
    uint64_t bad_messages; /* dropped malformed messages */
    uint64_t started_ms;   /* wall clock the broker started */
    /* CURVE handshakes its ZAP handler answered (all 0 when CURVE is off) */
    uint64_t curve_allowed, curve_refused;
    uint64_t curve_keys;   /* keys on the allow-list */
} bk__metrics_broker;

/* Creates empty counters. On EMPQ_OK *out is the caller's (bk__metrics_free);
 * EMPQ_ENOMEM otherwise. */
int bk__metrics_new(bk__metrics **out);

/* Stops the HTTP server if started, frees *m, sets it to NULL; m and *m
 * may be NULL. */
void bk__metrics_free(bk__metrics **m);

/* Counts n jobs of model alias dispatched. alias not NULL. */
void bk__metrics_dispatched(bk__metrics *m, const char *alias, size_t n);

/* Counts one outcome of model alias (not NULL) and what applying it did:
 * completed/dead only when applied moved the job; retries, 429s, tokens and
 * the latency histogram (o->latency_ms, DONE without cache hit) for every
 * outcome received. */
void bk__metrics_outcome(bk__metrics *m, const char *alias, const Empq__Outcome *o, bk__applied applied);

/* Renders every metric into a malloc'd NUL-terminated text; *len (may be
 * NULL) receives its length. Returns NULL when out of memory. The caller
 * frees. s may be NULL (no run or worker gauges). */
char *bk__metrics_render(const bk__metrics *m, const bk__sched *s, const bk__metrics_broker *b, size_t *len);

/* Starts the HTTP server on addr "HOST:PORT" (HOST an IPv4 literal or
 * localhost; PORT 0 picks one), serving GET /metrics from libmicrohttpd's own
 * thread. That thread never touches the broker's state: a scrape sets a
 * flag, calls wake() (async-signal-safe, e.g. bk__broker_wake) and waits up
 * to 2 s for the loop to publish a fresh text (bk__metrics_http_pending and
 * bk__metrics_http_publish), so what is served is exact as of the scrape.
 * Returns EMPQ_EINVAL for a malformed address, EMPQ_EIO when MHD cannot
 * listen; err says which. */
int bk__metrics_http_start(bk__metrics *m, const char *addr, void (*wake)(void), empq_error *err);

/* The port the server listens on (0 when not serving). */
unsigned bk__metrics_http_port(const bk__metrics *m);

/* Whether a scrape waits for a fresh text (one atomic read; 0 when not
 * serving). Called by the loop every turn. */
int bk__metrics_http_pending(bk__metrics *m);

/* Hands the waiting scrapes a text (malloc'd, NUL-terminated, taken over
 * here; NULL when rendering failed: they answer 500). */
void bk__metrics_http_publish(bk__metrics *m, char *text, size_t len);

/* Escapes a label value for the text format (\\, \", \n) into buf (len >=
 * 1); truncates. Returns buf. */
const char *bk__metrics_escape(char *buf, size_t len, const char *v);

#endif
