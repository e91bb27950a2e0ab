/* httpd.c: see httpd.h. */
#include "httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "empq/log.h"

int collector__listen_addr(struct sockaddr_storage *addr, const char *who, const char *bind, int port,
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
    char msg[400], q[500];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    EMPQ_WARN("event=%s error=%s", (const char *)cls, empq_log_quote(q, sizeof q, msg));
}
