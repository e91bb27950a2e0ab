/* wire.h: protobuf messages over ZeroMQ.
 *
 * One protobuf message per ZeroMQ frame. Workers use a DEALER socket
 * (WorkerMsg out, BrokerMsg in); the broker a ROUTER socket for workers and
 * a ROUTER socket for control (ControlRequest in, ControlReply out); the CLI
 * a REQ socket. ROUTER frames are [identity][payload]; REQ adds and ROUTER
 * keeps an empty delimiter frame: [identity][][payload].
 *
 * Every receive checks the size against EMPQ_WIRE_MAX_MSG and decodes with
 * protobuf-c; a frame that is too large or does not decode is dropped and
 * reported as EMPQ_EPARSE, never passed on. */
#ifndef EMPQ_WIRE_H
#define EMPQ_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/curve.h"
#include "empq/error.h"

#define EMPQ_WIRE_MAX_MSG (16u * 1024u * 1024u)
#define EMPQ_WIRE_MAX_IDENTITY 256

/* A peer's ROUTER identity. */
typedef struct empq_wire_peer {
    unsigned char id[EMPQ_WIRE_MAX_IDENTITY];
    size_t len;
    int delimited; /* the request carried an empty delimiter frame (REQ) */
} empq_wire_peer;

/* Packs msg and sends it as one frame (DEALER/REQ). flags: 0 or ZMQ_DONTWAIT.
 * Returns EMPQ_OK, EMPQ_ETIMEOUT when the send would block, EMPQ_EWIRE. */
int empq_wire_send(void *sock, const ProtobufCMessage *msg, int flags);

/* Sends msg to peer on a ROUTER socket: [identity]([])[payload]. */
int empq_wire_send_to(void *sock, const empq_wire_peer *peer, const ProtobufCMessage *msg, int flags);

/* Receives one message (DEALER/REQ: [payload], or [][payload]) and decodes it
 * with desc. flags: 0 (block) or ZMQ_DONTWAIT. On EMPQ_OK *out is the
 * caller's, freed with protobuf_c_message_free_unpacked(*out, NULL).
 * EMPQ_ETIMEOUT: nothing to read (DONTWAIT) or the socket's receive timeout
 * passed. EMPQ_EPARSE: a frame arrived but was oversized or did not decode
 * (it is consumed and dropped; err says why). EMPQ_EWIRE: socket error. */
int empq_wire_recv(void *sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                   int flags, empq_error *err);

/* Like empq_wire_recv on a ROUTER socket: also fills *peer. */
int empq_wire_recv_from(void *sock, empq_wire_peer *peer, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **out, int flags, empq_error *err);

/* One control round trip: connects a REQ socket to endpoint, sends req,
 * waits up to timeout_ms for the reply. On EMPQ_OK *reply is the caller's
 * (free with empq__control_reply__free_unpacked). EMPQ_ETIMEOUT when the
 * broker did not answer in time (err names the endpoint). */
int empq_wire_control(void *zctx, const char *endpoint, const Empq__ControlRequest *req,
                      int timeout_ms, Empq__ControlReply **reply, empq_error *err);

/* empq_wire_control over CURVE: curve (may be NULL or off: plain TCP) gives
 * the client's secret key file and the broker's public key file. A refused
 * key looks like a broker that does not answer: EMPQ_ETIMEOUT, and err then
 * says to check the keys. EMPQ_EINVAL for an unreadable or wrong key file. */
int empq_wire_control_curve(void *zctx, const char *endpoint, const empq_curve_opts *curve,
                            const Empq__ControlRequest *req, int timeout_ms, Empq__ControlReply **reply,
                            empq_error *err);

#endif
