/* endpoint.c: loopback checks and the name localhost (see endpoint.h). */
#include "empq/endpoint.h"

#include <stdio.h>
#include <string.h>

int empq_host_is_loopback(const char *host, size_t len)
{
    if ((len == 9 && strncmp(host, "localhost", 9) == 0) || (len == 5 && strncmp(host, "[::1]", 5) == 0) ||
        (len == 3 && strncmp(host, "::1", 3) == 0))
        return 1;
    if (len < 7 || strncmp(host, "127.", 4) != 0)
        return 0;
    for (size_t i = 4; i < len; i++) /* an IPv4 literal, not a name like 127.example.com */
        if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.'))
            return 0;
    return 1;
}

int empq_endpoint_is_loopback(const char *ep)
{
    if (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0)
        return 1;
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    return empq_listen_addr_is_loopback(ep + 6);
}

int empq_listen_addr_is_loopback(const char *addr)
{
    const char *end = strrchr(addr, ':');
    if (end == NULL || end[1] == '\0')
        return 0;
    return empq_host_is_loopback(addr, (size_t)(end - addr));
}

const char *empq_endpoint_resolve(const char *ep, char *out, size_t len)
{
    static const char name[] = "tcp://localhost:";
    int n;
    if (strncmp(ep, name, sizeof name - 1) == 0)
        n = snprintf(out, len, "tcp://127.0.0.1:%s", ep + sizeof name - 1);
    else
        n = snprintf(out, len, "%s", ep);
    if (n < 0 || (size_t)n >= len) {
        if (len > 0)
            out[0] = '\0';
        return NULL;
    }
    return out;
}
