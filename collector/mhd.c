/* mhd.c: see mhd.h. */
#include "mhd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "empq/log.h"

int collector__mhd_addr(struct sockaddr_storage *addr, const char *who, const char *bind, int port,
                        empq_error *err)
{
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
    if (port < 0 || port > 65535)
        return empq_error_set(err, EMPQ_EINVAL, "%s: port %d is out of range", who, port);
    if (inet_pton(AF_INET, bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
    } else {
        return empq_error_set(err, EMPQ_EINVAL, "%s: '%s' is not an IP address", who, bind);
    }
    return EMPQ_OK;
}

void collector__mhd_log(void *cls, const char *fmt, va_list ap)
{
    const char *event = cls;
    char msg[400], q[500];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    EMPQ_WARN_LIMITED(event, "event=%s error=%s", event, empq_log_quote(q, sizeof q, msg));
}

void collector__mhd_opts_default(collector__mhd_opts *o)
{
    memset(o, 0, sizeof *o);
    o->who = "http";
    o->log_event = "http";
    o->bind = "127.0.0.1";
    o->connection_limit = 200;
    o->idle_timeout_s = 30;
}

int collector__mhd_start(struct MHD_Daemon **out, unsigned *port, const collector__mhd_opts *o, empq_error *err)
{
    *out = NULL;
    struct sockaddr_storage addr;
    int rc = collector__mhd_addr(&addr, o->who, o->bind, o->port, err);
    if (rc != EMPQ_OK)
        return rc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[8];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)collector__mhd_log,
                                        (void *)o->log_event};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)o->connection_limit, NULL};
    if (o->listen_backlog > 0)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, (intptr_t)o->listen_backlog, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)o->idle_timeout_s, NULL};
    if (o->on_completed != NULL)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)o->on_completed, o->cls};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, o->on_request, o->cls,
                                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (d == NULL)
        return empq_error_set(err, EMPQ_EIO, "%s: cannot listen on %s port %d (in use?)", o->who, o->bind,
                              o->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info != NULL ? info->port : (unsigned)o->port;
    if (o->port_file != NULL) {
        char txt[16];
        int len = snprintf(txt, sizeof txt, "%u\n", bound);
        rc = empq_write_file_atomic(o->port_file, txt, (size_t)len, err);
        if (rc != EMPQ_OK) {
            MHD_stop_daemon(d);
            return rc;
        }
    }
    *out = d;
    *port = bound;
    return EMPQ_OK;
}

void collector__mhd_stop(struct MHD_Daemon **d)
{
    if (d == NULL || *d == NULL)
        return;
    MHD_stop_daemon(*d);
    *d = NULL;
}

struct MHD_Response *collector__mhd_page(empq_buf *b, const char *type, const char *referrer, const char *csp)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        empq_buf_free(b);
        return NULL;
    }
    b->data = NULL; /* owned by the response now */
    b->len = b->cap = 0;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", referrer);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    return r;
}
