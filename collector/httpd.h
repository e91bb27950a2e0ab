/* httpd.h: what the collector's HTTP listeners (the rating site, the study
 * console) share around libmicrohttpd. */
#ifndef EMPQ_COLLECTOR_HTTPD_H
#define EMPQ_COLLECTOR_HTTPD_H

#include <stdarg.h>
#include <sys/socket.h>

#include "empq/error.h"

/* Fills *addr with the IPv4 or IPv6 literal bind and port (0-65535).
 * EMPQ_OK, or EMPQ_EINVAL with err naming what (who: "site", "console"). */
int collector__listen_addr(struct sockaddr_storage *addr, const char *who, const char *bind, int port,
                           empq_error *err);

/* A libmicrohttpd external logger: one WARN line, event=<cls> (a static
 * string such as "console_http"), the message quoted. */
void collector__mhd_log(void *cls, const char *fmt, va_list ap);

#endif
