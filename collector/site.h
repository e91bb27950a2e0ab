/* site.h: the rating site, served by empq-collector over HTTP
 * (libmicrohttpd, one internal polling thread, one Redis connection).
 *
 * Server-rendered HTML forms with POST/redirect/GET: no page needs
 * JavaScript (a small /static/keys.js adds the keys 1/2/3). Every text from
 * a dataset or a model is HTML-escaped. The slot logic lives in
 * lib/ratings.c; this file maps it onto pages and HTTP statuses:
 *
 *   GET  /study/RUN?PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..   arrive (or ?participant=ID):
 *        claim or resume a slot, 303 to the participant's page; when the
 *        run's spec has rating.consent and no slot is held: the consent
 *        page (nothing claimed)
 *   POST /study/RUN/consent         participant, route, study, session,
 *                                   consent=agree|decline: agree claims
 *   GET  /study/RUN/p/PID           the page due now: instructions, the next
 *                                   dialogue, the end-of-study questions, or
 *                                   the completion page (by route: Prolific's
 *                                   link only for who came by it)
 *   POST /study/RUN/p/PID/start     instructions read
 *   POST /study/RUN/p/PID/answer    slot=S&pos=N&rating=1|2|3 (or bad|okay|good)
 *   POST /study/RUN/p/PID/finish    q_<id>=... per question: answers + completion
 *   GET  /static/site.css, /static/keys.js, /healthz
 *
 * Errors are HTML pages with a 4xx status and a sentence saying what to do:
 * 400 bad input (rating outside Good/Okay/Bad, missing field, bad id, any
 * form field twice, a malformed answer to a question), 403
 * a slot that is not the participant's (or a cross-site form), 404 unknown
 * study or participant, 405 method, 409 a stale form (not the dialogue due
 * now), 410 a session that timed out, 413 a body too large, 503 no place
 * left. Nothing is stored by a request that gets a 4xx. See docs/rating.md. */
#ifndef EMPQ_COLLECTOR_SITE_H
#define EMPQ_COLLECTOR_SITE_H

#include <stddef.h>

#include "empq/error.h"
#include "empq/util.h"

typedef struct site__opts {
    const char *redis_url; /* not NULL */
    const char *bind;      /* IPv4 or IPv6 address (default 127.0.0.1) */
    int port;              /* 0: any free port (see site__port) */
    const char *port_file; /* may be NULL: the bound port is written there */
} site__opts;

typedef struct site site;

/* Opens its own Redis connection and starts listening. On EMPQ_OK *out is
 * the caller's (site__stop). EMPQ_ESTORE when Redis is unreachable,
 * EMPQ_EIO when the address cannot be bound or the port file written,
 * EMPQ_EINVAL for a bad bind address. */
int site__start(site **out, const site__opts *o, empq_error *err);

/* The port it listens on. */
unsigned site__port(const site *s);

/* Stops serving (waits for requests in progress), frees *s, sets it NULL.
 * s and *s may be NULL. */
void site__stop(site **s);

/* Appends s HTML-escaped (& < > " ') to b. Returns EMPQ_OK or EMPQ_ENOMEM. */
int site__escape(empq_buf *b, const char *s);

/* The static assets (collector/site_assets.c). */
extern const char site__css[];
extern const char site__keys_js[];

#endif
