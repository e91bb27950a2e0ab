/* http.h: the worker's transport: libcurl multi driven by the worker's one
 * poll loop (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION; the sockets are handed
 * to zmq_poll as raw fds beside the broker's DEALER socket). One multi
 * handle, so connections are reused across requests; easy handles are kept
 * with the engine's pooled requests and reused too. */
#ifndef EMPQ_WORKER_HTTP_H
#define EMPQ_WORKER_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "engine.h"

typedef struct worker__http worker__http;

/* Creates the multi handle. max_conns bounds the connections per host and
 * the connection cache (give at least the credit). On EMPQ_OK *out is the
 * caller's, freed with worker__http_free (after the engine that uses it). */
int worker__http_new(worker__http **out, long max_conns, empq_error *err);

/* Frees *h and sets it to NULL; h and *h may be NULL. */
void worker__http_free(worker__http **h);

/* The engine that receives completions (set once, before any start). */
void worker__http_set_engine(worker__http *h, worker__engine *e);

/* The transport seam for worker__engine_new. */
worker__transport worker__http_transport(worker__http *h);

/* Sockets libcurl wants watched now. */
size_t worker__http_nfds(const worker__http *h);

/* Fills items[0..nfds) (raw fds, socket NULL) for zmq_poll. */
void worker__http_fill(const worker__http *h, zmq_pollitem_t *items);

/* Milliseconds until libcurl's next timeout from now_mono (0: due now), or
 * -1 when it has none. */
long worker__http_timeout(const worker__http *h, uint64_t now_mono);

/* After zmq_poll: drives libcurl on the ready sockets among items[0..n)
 * (the ones worker__http_fill gave), runs its timer when due, and hands
 * every finished transfer to the engine. */
void worker__http_act(worker__http *h, const zmq_pollitem_t *items, size_t n, uint64_t now_mono);

#endif
