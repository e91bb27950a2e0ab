/* loop.h: the worker's one event loop: the broker's DEALER socket and
 * libcurl's sockets in one zmq_poll, heartbeats, reconnects, shutdown. */
#ifndef EMPQ_WORKER_LOOP_H
#define EMPQ_WORKER_LOOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct worker__config {
    const char *broker;       /* endpoint, "tcp://127.0.0.1:5555" */
    const char *redis_url;    /* "redis://127.0.0.1:6379" */
    uint32_t credit;          /* requests in flight at once */
    uint32_t prefetch;        /* jobs held beyond credit, ready to start */
    const char *id;           /* worker id (routing id); NULL: host-pid */
    char **models;            /* aliases served; n_models == 0: all */
    size_t n_models;
    uint32_t heartbeat_ms;    /* until the broker's welcome says otherwise */
    uint32_t grace_ms;        /* on SIGTERM: time to finish what is in flight */
    const char *curve_secret;     /* CURVE: own secret key file; NULL: CURVE off */
    const char *curve_server_pub; /* CURVE: the broker's public key file */
} worker__config;

#define WORKER__CONFIG_INIT \
    {"tcp://127.0.0.1:5555", "redis://127.0.0.1:6379", 64, 8, NULL, NULL, 0, 1000, 10000, NULL, NULL}

/* Runs the worker until *stop becomes nonzero (a signal) or the broker says
 * shutdown, then finishes what is in flight (up to grace_ms), hands back the
 * rest, says bye. Returns the process exit status: 0 after a clean stop, 1
 * when Redis is unreachable at start or setup fails (logged). */
int worker__loop_run(const worker__config *cfg, volatile sig_atomic_t *stop);

/* Wakes a running worker__loop_run at once (it then reads *stop). Async-
 * signal-safe: call it from the signal handler after setting *stop. A no-op
 * when no loop runs. */
void worker__loop_wake(void);

#endif
