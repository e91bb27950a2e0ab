/* reqlog.h: the fake server's request log (--request-log PATH), for tests
 * that must prove from the server's side which requests arrived, from
 * where and when: one JSON object per model request, written when its reply
 * is queued, or when its connection ends without one,
 *
 *   {"arrived_ms":1765000000123,"replied_ms":1765000000224,"status":200,
 *    "model":"fake-warm","body":"9f2c...","host":"127.0.0.1:8080","peer":"127.0.0.1:51234"}
 *
 * arrived_ms  wall-clock ms when the request's body had arrived
 * replied_ms  wall-clock ms when its reply was queued; null: none was
 * status      the HTTP status sent; 0: none (the client went away while the
 *             request waited, or the hang/reset fault held or dropped it)
 * model       the model of the reply (null when none: a refused request)
 * body        the first 16 hex digits of the SHA-256 of the request body:
 *             the same request (same job) gives the same value
 * host        the Host header the client sent ("" when none)
 * peer        the client's address and port
 *
 * Each line is flushed as written. Thread safe. */
#ifndef FAKELLM_REQLOG_H
#define FAKELLM_REQLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "empq/error.h"

typedef struct fakellm_reqlog fakellm_reqlog;

/* Opens path for appending. On EMPQ_OK *out is the caller's (close with
 * fakellm_reqlog_close). EMPQ_EIO with err naming the file otherwise. */
int fakellm_reqlog_open(fakellm_reqlog **out, const char *path, empq_error *err);

/* One request (replied_ms 0 and status 0: not answered); host, model and
 * peer may be NULL. */
typedef struct fakellm_reqlog_entry {
    uint64_t arrived_ms, replied_ms;
    unsigned status;
    const char *model;
    const void *body;
    size_t body_len;
    const char *host;
    const struct sockaddr *peer;
} fakellm_reqlog_entry;

/* Appends one line for e. A write error is logged once and ignored. */
void fakellm_reqlog_write(fakellm_reqlog *l, const fakellm_reqlog_entry *e);

/* Closes the file and frees *l; sets it NULL. Accepts NULL and *l NULL. */
void fakellm_reqlog_close(fakellm_reqlog **l);

#endif
