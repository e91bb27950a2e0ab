/* mhd.h: what the collector's two web servers, the rating site (site.c)
 * and the study console (console.c), share around libmicrohttpd: the
 * listen address, the daemon with its error log and port file, and the
 * headers every generated page carries. Messages begin with the server's
 * name ("site", "console"), which the caller passes in. */
#ifndef EMPQ_COLLECTOR_MHD_H
#define EMPQ_COLLECTOR_MHD_H

#include <microhttpd.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "empq/error.h"
#include "empq/util.h"

/* Fills *addr with the IPv4 or IPv6 literal bind and port (0-65535).
 * EMPQ_OK; EMPQ_EINVAL with err "WHO: port N is out of range" or
 * "WHO: 'BIND' is not an IP address" (host names are refused too). All of
 * addr, who, bind and err are not NULL. */
int collector__mhd_addr(struct sockaddr_storage *addr, const char *who, const char *bind, int port,
                        empq_error *err);

/* A libmicrohttpd external logger: one WARN line "event=<cls> error=<the
 * message, quoted>", rate-limited per event (EMPQ_LOG_REPEAT_MS). cls is
 * a static string such as "site_http", not NULL. */
void collector__mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* One listener; collector__mhd_opts_default fills the defaults. The
 * strings are read during collector__mhd_start only, except log_event,
 * which must outlive the daemon. */
typedef struct collector__mhd_opts {
    const char *who;                           /* "site", "console": begins each error message */
    const char *log_event;                     /* event= of libmicrohttpd's own lines, e.g. "site_http" */
    const char *bind;                          /* IPv4 or IPv6 literal (default "127.0.0.1") */
    int port;                                  /* 0-65535; 0 picks a free port */
    const char *port_file;                     /* NULL, or gets the bound port as "PORT\n" */
    unsigned connection_limit;                 /* default 200 */
    unsigned listen_backlog;                   /* 0 (default): libmicrohttpd's own */
    unsigned idle_timeout_s;                   /* default 30 */
    MHD_AccessHandlerCallback on_request;      /* not NULL */
    MHD_RequestCompletedCallback on_completed; /* NULL: none */
    void *cls;                                 /* passed to both callbacks */
} collector__mhd_opts;

/* Defaults above; who "http", log_event "http", no callbacks. */
void collector__mhd_opts_default(collector__mhd_opts *o);

/* Starts a daemon with its own polling thread (epoll where libmicrohttpd
 * has it, else poll) on o->bind and o->port, logging through
 * collector__mhd_log, and writes o->port_file when set.
 * EMPQ_OK: *out owns the daemon (stop it with collector__mhd_stop) and
 * *port is the port bound (the free one picked when o->port is 0).
 * On failure *out is NULL, nothing listens, and err says why:
 * EMPQ_EINVAL (address, as collector__mhd_addr), EMPQ_EIO "WHO: cannot
 * listen on BIND port N (in use?)", or the port file's error. */
int collector__mhd_start(struct MHD_Daemon **out, unsigned *port, const collector__mhd_opts *o, empq_error *err);

/* Stops the daemon (waits for its thread) and clears *d; NULL or *d NULL
 * does nothing. */
void collector__mhd_stop(struct MHD_Daemon **d);

/* A response holding b's bytes, with the headers every page of both
 * servers carries, in this order: Content-Type type, Cache-Control
 * no-store, X-Content-Type-Options nosniff, Referrer-Policy referrer,
 * X-Frame-Options DENY, Content-Security-Policy csp (all not NULL).
 * The bytes move to the response either way: b is left empty. NULL when
 * libmicrohttpd has no memory for it. The caller adds its own headers,
 * queues it and destroys its reference. */
struct MHD_Response *collector__mhd_page(empq_buf *b, const char *type, const char *referrer, const char *csp);

#endif
