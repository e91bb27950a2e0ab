/* console.h: the study console, served by empq-collector on its own listen
 * address (libmicrohttpd, one internal polling thread, its own Redis
 * connection and, when given, the broker's control endpoint).
 *
 * Read-only: GET and HEAD only, nothing in it changes any state (the one
 * thing it writes is its auth cookie). Access (docs/security.md, "The study
 * console"): bound to a loopback address it answers without a token unless
 * one is configured; bound to any other address it always needs one (read
 * from token_file, else generated at start), and every request must carry
 * it (Authorization: Bearer, the cookie set by a visit with ?token=..., or
 * ?token=). Tokens are compared in constant time. Without a token the Host
 * header must name a loopback host (a DNS-rebinding page cannot read it).
 *
 *   GET /                              runs: state, progress per source, rate,
 *                                      ETA, tokens, cost, dead reasons, workers
 *   GET /progress.json                 the runs' counts (the live refresh)
 *   GET /run/RUN                       emotion x source heat map, spec, files
 *   GET /run/RUN/responses?...         responses side by side (docs/operations.md)
 *   GET /run/RUN/dead                  dead letters and their `empq rerun` lines
 *   GET /run/RUN/raters                rating slots and participants
 *   GET /run/RUN/report                OUT/RUN/report/report.html when it exists
 *   GET /run/RUN/file/NAME             responses.jsonl, dead.jsonl of OUT/RUN
 *   GET /static/console.css, /static/console.js
 *
 * Every text from a dataset, a model or a spec is HTML-escaped. Redis is
 * read only through the store module's bulk calls: a page view is a constant
 * number of round trips, whatever the number of responses. */
#ifndef EMPQ_COLLECTOR_CONSOLE_H
#define EMPQ_COLLECTOR_CONSOLE_H

#include <stddef.h>

#include "empq/error.h"

typedef struct console__opts {
    const char *redis_url;  /* not NULL */
    const char *bind;       /* IPv4 or IPv6 address (default 127.0.0.1) */
    int port;               /* 0: any free port */
    const char *port_file;  /* may be NULL: the bound port is written there */
    const char *token_file; /* may be NULL: the token is the file's first line */
    int require_token;      /* nonzero: a token even on loopback (generated when no file) */
    const char *control;    /* broker control endpoint; NULL: counts from Redis only */
    const char *out_dir;    /* the collector's output folder (run files, reports) */
} console__opts;

typedef struct console console;

/* Reads or generates the token, opens its Redis connection and starts
 * listening. On EMPQ_OK *out is the caller's (console__stop). EMPQ_EINVAL
 * for a bad address or an unreadable / too short token file (err says
 * which), EMPQ_ESTORE when Redis is unreachable, EMPQ_EIO when the address
 * cannot be bound or the port file written. */
int console__start(console **out, const console__opts *o, empq_error *err);

/* The port it listens on. */
unsigned console__port(const console *c);

/* The token requests must carry, or NULL when none is needed (loopback,
 * no token configured). Owned by c. */
const char *console__token(const console *c);

/* Stops serving (waits for the request in progress), frees *c, sets it
 * NULL. c and *c may be NULL. */
void console__stop(console **c);

/* 1 when addr (an IPv4 or IPv6 literal) is a loopback address
 * (127.0.0.0/8, ::1, ::ffff:127.x.y.z), else 0. */
int console__is_loopback(const char *addr);

/* 1 when the two tokens are equal; the time taken depends on the length of
 * want only, not on where they differ. */
int console__token_equal(const char *want, const char *got);

#endif
