/* broker.h: the broker's event loop: Redis, the worker ROUTER and the
 * control ROUTER around the dispatch core (sched.h).
 *
 * Internal to the broker program: names bk__broker_*. */
#ifndef EMPQ_BROKER_BROKER_H
#define EMPQ_BROKER_BROKER_H

#include <signal.h>
#include <stdint.h>

#include "empq/error.h"

typedef struct bk__broker_opts {
    const char *redis_url;   /* Redis URL (redis://127.0.0.1:6379) */
    const char *bind;        /* worker ROUTER endpoint (tcp://127.0.0.1:5555) */
    const char *control;     /* control ROUTER endpoint (tcp://127.0.0.1:5556) */
    uint32_t heartbeat_ms;   /* 1000 */
    uint32_t lease_ms;       /* 600000 */
    int insecure;            /* allow binding beyond loopback without CURVE */
    const char *curve_secret; /* CURVE secret key file; NULL: CURVE off */
    const char *curve_allow;  /* folder of .pub files or a file of client keys */
    const char *metrics;     /* HOST:PORT of the Prometheus endpoint; NULL: none */
} bk__broker_opts;

/* Fills the defaults above; redis_url from $EMPQ_REDIS_URL when set. */
void bk__broker_opts_default(bk__broker_opts *o);

/* Whether endpoint only listens on this machine (tcp on 127.0.0.0/8,
 * localhost or ::1; ipc; inproc). */
int bk__broker_endpoint_is_local(const char *endpoint);

/* Runs the broker until *stop becomes nonzero (set it from a signal
 * handler): connects to Redis, loads every ACTIVE or PAUSED run, binds both
 * sockets, then serves. On a stop it sends `shutdown` to every worker and
 * returns EMPQ_OK. Returns EMPQ_ESTORE when Redis is unreachable at start,
 * EMPQ_EWIRE when an endpoint cannot be bound, EMPQ_EINVAL for a non-local
 * endpoint without CURVE or insecure, or a bad CURVE key or allow-list; err names the URL or endpoint. The failure is
 * logged here, once. */
int bk__broker_run(const bk__broker_opts *o, volatile sig_atomic_t *stop, empq_error *err);

/* Wakes a running bk__broker_run so it sees *stop: call it from the signal
 * handler after setting *stop. Async-signal-safe; does nothing when no
 * broker runs. */
void bk__broker_wake(void);

#endif
