/* wire.c: protobuf messages over ZeroMQ, one message per frame. */
#include "empq/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "empq/endpoint.h"
#include "empq/log.h"

static int wire_errno(void)
{
    return errno == EAGAIN ? EMPQ_ETIMEOUT : EMPQ_EWIRE;
}

/* Packs msg into a zmq_msg_t without an extra copy. */
static void free_packed(void *data, void *hint)
{
    (void)hint;
    free(data);
}

static int send_packed(void *sock, const ProtobufCMessage *msg, int flags)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return EMPQ_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, buf, len, free_packed, NULL) != 0) {
        free(buf);
        return EMPQ_ENOMEM;
    }
    if (zmq_msg_send(&m, sock, flags) < 0) {
        int rc = wire_errno();
        zmq_msg_close(&m);
        return rc;
    }
    return EMPQ_OK;
}

int empq_wire_send(void *sock, const ProtobufCMessage *msg, int flags)
{
    return send_packed(sock, msg, flags);
}

int empq_wire_send_to(void *sock, const empq_wire_peer *peer, const ProtobufCMessage *msg, int flags)
{
    if (zmq_send(sock, peer->id, peer->len, ZMQ_SNDMORE | flags) < 0)
        return wire_errno();
    if (peer->delimited && zmq_send(sock, "", 0, ZMQ_SNDMORE | flags) < 0)
        return wire_errno();
    return send_packed(sock, msg, flags);
}

/* Reads the rest of a multipart message and drops it. */
static void drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
        sz = sizeof more;
    }
}

/* Receives frames until the payload: skips one empty delimiter frame.
 * Returns the payload message in *m (initialised) or an error. */
static int recv_payload(void *sock, zmq_msg_t *m, int flags, int *delimited, empq_error *err)
{
    zmq_msg_init(m);
    if (zmq_msg_recv(m, sock, flags) < 0) {
        int rc = wire_errno();
        zmq_msg_close(m);
        return rc == EMPQ_ETIMEOUT ? rc : empq_error_set(err, rc, "receive: %s", zmq_strerror(errno));
    }
    if (zmq_msg_size(m) == 0 && zmq_msg_more(m)) {
        if (delimited != NULL)
            *delimited = 1;
        zmq_msg_close(m);
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, 0) < 0) {
            zmq_msg_close(m);
            return empq_error_set(err, EMPQ_EWIRE, "receive: %s", zmq_strerror(errno));
        }
    }
    if (zmq_msg_more(m)) {
        zmq_msg_close(m);
        drain(sock);
        return empq_error_set(err, EMPQ_EPARSE, "message with unexpected extra frames dropped");
    }
    return EMPQ_OK;
}

static int decode(zmq_msg_t *m, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                  empq_error *err)
{
    size_t len = zmq_msg_size(m);
    if (len > EMPQ_WIRE_MAX_MSG) {
        zmq_msg_close(m);
        return empq_error_set(err, EMPQ_EPARSE, "%s message of %zu bytes dropped (limit %u)", desc->name, len,
                              EMPQ_WIRE_MAX_MSG);
    }
    *out = protobuf_c_message_unpack(desc, NULL, len, zmq_msg_data(m));
    zmq_msg_close(m);
    if (*out == NULL)
        return empq_error_set(err, EMPQ_EPARSE, "undecodable %s message of %zu bytes dropped", desc->name, len);
    return EMPQ_OK;
}

int empq_wire_recv(void *sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out, int flags,
                   empq_error *err)
{
    *out = NULL;
    zmq_msg_t m;
    int rc = recv_payload(sock, &m, flags, NULL, err);
    if (rc != EMPQ_OK)
        return rc;
    return decode(&m, desc, out, err);
}

int empq_wire_recv_from(void *sock, empq_wire_peer *peer, const ProtobufCMessageDescriptor *desc,
                        ProtobufCMessage **out, int flags, empq_error *err)
{
    *out = NULL;
    peer->len = 0;
    peer->delimited = 0;
    zmq_msg_t id;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, sock, flags) < 0) {
        int rc = wire_errno();
        zmq_msg_close(&id);
        return rc == EMPQ_ETIMEOUT ? rc : empq_error_set(err, rc, "receive: %s", zmq_strerror(errno));
    }
    size_t idlen = zmq_msg_size(&id);
    int more = zmq_msg_more(&id);
    if (idlen > sizeof peer->id || !more) {
        zmq_msg_close(&id);
        if (more)
            drain(sock);
        return empq_error_set(err, EMPQ_EPARSE, "message without a valid routing identity dropped");
    }
    memcpy(peer->id, zmq_msg_data(&id), idlen);
    peer->len = idlen;
    zmq_msg_close(&id);
    zmq_msg_t m;
    int rc = recv_payload(sock, &m, 0, &peer->delimited, err);
    if (rc != EMPQ_OK)
        return rc;
    return decode(&m, desc, out, err);
}

int empq_wire_control(void *zctx, const char *endpoint, const Empq__ControlRequest *req, int timeout_ms,
                      Empq__ControlReply **reply, empq_error *err)
{
    return empq_wire_control_curve(zctx, endpoint, NULL, req, timeout_ms, reply, err);
}

int empq_wire_control_curve(void *zctx, const char *endpoint, const empq_curve_opts *curve,
                            const Empq__ControlRequest *req, int timeout_ms, Empq__ControlReply **reply,
                            empq_error *err)
{
    *reply = NULL;
    void *sock = zmq_socket(zctx, ZMQ_REQ);
    if (sock == NULL)
        return empq_error_set(err, EMPQ_EWIRE, "cannot create socket: %s", zmq_strerror(errno));
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    int64_t maxsz = EMPQ_WIRE_MAX_MSG;
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxsz, sizeof maxsz);
    int rc = empq_curve_client_setup(sock, curve, err);
    if (rc != EMPQ_OK) {
        zmq_close(sock);
        return rc;
    }
    char ep[512]; /* localhost becomes 127.0.0.1, as the broker binds it */
    if (empq_endpoint_resolve(endpoint, ep, sizeof ep) == NULL || zmq_connect(sock, ep) != 0) {
        rc = empq_error_set(err, EMPQ_EINVAL, "broker control endpoint '%s': %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return rc;
    }
    rc = empq_wire_send(sock, &req->base, 0);
    if (rc == EMPQ_OK) {
        ProtobufCMessage *m = NULL;
        rc = empq_wire_recv(sock, &empq__control_reply__descriptor, &m, 0, err);
        if (rc == EMPQ_OK)
            *reply = (Empq__ControlReply *)m;
    }
    if (rc == EMPQ_ETIMEOUT)
        empq_error_set(err, rc, "broker at %s did not answer within %d ms (is empq-broker running?%s)", endpoint,
                       timeout_ms, empq_curve_enabled(curve) ? " is this key in its CURVE allow-list?" : "");
    else if (rc != EMPQ_OK && (err == NULL || err->msg[0] == '\0'))
        empq_error_set(err, rc, "broker at %s: %s", endpoint, empq_strerror(rc));
    zmq_close(sock);
    return rc;
}
