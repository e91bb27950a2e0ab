/* reqlog.h: --request-log PATH, the fake server's own record of the model
 * requests it received, for tests that must measure from the server's side
 * (when a job was sent again after its worker died), not from a log of the
 * programs under test.
 *
 * One JSON line per model request, written when the request has been read
 * and answered by its route (before the latency wait):
 *
 *   {"t_ms":1765054123456,"seq":12,"route":"openai.chat","model":"fake-warm",
 *    "status":200,"body_fnv1a":"9f0c3a...16 hex"}
 *
 * t_ms: wall clock (ms since the epoch); seq: the server's request number;
 * model: the reply's model (null unless a 200 completion); body_fnv1a:
 * FNV-1a 64 of the request body, which identifies a job (one prompt, one
 * model, one sample) across the times it is sent. Requests an injected hang
 * or reset fault holds or drops are not logged (the hook runs after them).
 * Each line is one write(2) on a file opened O_APPEND, so lines from several
 * polling threads never interleave.
 *
 * It is the server's fault hook (server.h), which it leaves unchanged. */
#ifndef FAKELLM_REQLOG_H
#define FAKELLM_REQLOG_H

#include "empq/error.h"
#include "server.h"

typedef struct fakellm_reqlog fakellm_reqlog;

/* Opens (creates or appends to) path. On EMPQ_OK *out is the caller's (close
 * with fakellm_reqlog_close). EMPQ_EIO with err naming the path, EMPQ_ENOMEM. */
int fakellm_reqlog_open(const char *path, fakellm_reqlog **out, empq_error *err);

/* Closes *l and sets it to NULL; l and *l may be NULL. */
void fakellm_reqlog_close(fakellm_reqlog **l);

/* The fault hook (fakellm_fault_fn) writing one line; user is the
 * fakellm_reqlog. Returns FAKELLM_ACT_RESPOND and changes nothing. A failed
 * write is logged once. */
fakellm_action fakellm_reqlog_hook(void *user, const fakellm_request *req, fakellm_reply *reply);

#endif
