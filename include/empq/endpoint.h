/* endpoint.h: where a ZeroMQ endpoint or a listen address points: on this
 * machine (loopback) or beyond, and the name "localhost".
 *
 * Loopback is an IPv4 literal in 127.0.0.0/8, the name localhost, or ::1
 * (bare or in brackets); ipc:// and inproc:// endpoints never leave the
 * machine. ZeroMQ binds only to interfaces and IP literals ("tcp://localhost:
 * 5555" fails with "No such device"), so every endpoint empq binds or
 * connects goes through empq_endpoint_resolve, which maps localhost to
 * 127.0.0.1 (empq's tcp sockets are IPv4). */
#ifndef EMPQ_ENDPOINT_H
#define EMPQ_ENDPOINT_H

#include <stddef.h>

/* 1 when the len bytes at host name a loopback host (above), else 0. host
 * not NULL; no port. */
int empq_host_is_loopback(const char *host, size_t len);

/* 1 when the endpoint stays on this machine: ipc://, inproc://, or
 * tcp://HOST:PORT with HOST loopback; 0 otherwise (tcp://0.0.0.0:P,
 * an interface name, another transport, no port). ep not NULL. */
int empq_endpoint_is_loopback(const char *ep);

/* 1 when addr, a listen address HOST:PORT (the broker's --metrics), has a
 * loopback HOST; 0 otherwise. addr not NULL. */
int empq_listen_addr_is_loopback(const char *addr);

/* Writes ep into out (len bytes) with a tcp host "localhost" replaced by
 * 127.0.0.1; any other endpoint is copied unchanged. Returns out, or NULL
 * when it does not fit (out is then ""). */
const char *empq_endpoint_resolve(const char *ep, char *out, size_t len);

#endif
