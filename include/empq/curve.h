/* curve.h: CURVE encryption and authentication on empq's ZeroMQ sockets.
 *
 * Keys are Z85 text (40 characters), one per file: NAME.key holds the secret
 * key (mode 0600), NAME.pub the public key. The broker is the CURVE server
 * on both of its ROUTER sockets and answers ZAP requests
 * (inproc://zeromq.zap.01) from its own event loop: a client whose public key
 * is not in the allow-list (a folder of .pub files, or one file with a key
 * per line) is refused, counted and logged with a key prefix only. Workers
 * and the CLI are CURVE clients: their own secret key and the broker's
 * public key. See docs/security.md. */
#ifndef EMPQ_CURVE_H
#define EMPQ_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"

#define EMPQ_CURVE_KEY_LEN 40 /* Z85 characters of a 32-byte key */
#define EMPQ_CURVE_ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* Where the keys are. secret_file NULL: CURVE off (plain TCP). */
typedef struct empq_curve_opts {
    const char *secret_file;     /* this side's secret key file */
    const char *server_pub_file; /* clients: the broker's public key file */
    const char *allow;           /* server: folder of .pub files or a file of keys */
} empq_curve_opts;

#define EMPQ_CURVE_OPTS_INIT {NULL, NULL, NULL}

/* 1 when this libzmq supports CURVE (built with libsodium), else 0. */
int empq_curve_available(void);

/* Fills the NULL fields of o from EMPQ_CURVE_SECRET, EMPQ_CURVE_SERVER_PUB
 * and EMPQ_CURVE_ALLOW (empty variables count as unset): the clients'
 * variables (workers, CLI; the broker reads EMPQ_BROKER_CURVE_SECRET
 * itself). o not NULL; the strings stay the environment's. */
void empq_curve_opts_from_env(empq_curve_opts *o);

/* 1 when o asks for CURVE (o not NULL and a secret file is set), else 0. */
int empq_curve_enabled(const empq_curve_opts *o);

/* Writes a new keypair as dir/name.key (secret, created with mode 0600) and
 * dir/name.pub. dir must exist; name is [A-Za-z0-9._-], 1..64 characters.
 * pub (may be NULL, else >= 41 bytes) receives the public key. Returns
 * EMPQ_OK, EMPQ_EEXIST when either file exists (nothing is overwritten),
 * EMPQ_EINVAL for a bad name or when CURVE is unavailable, EMPQ_EIO. */
int empq_curve_keygen(const char *dir, const char *name, char *pub, empq_error *err);

/* Reads the first key of path (the first line that is not empty or a #
 * comment; its first word) into key (>= 41 bytes, NUL-terminated). Returns
 * EMPQ_OK, EMPQ_EIO when the file cannot be read, EMPQ_EPARSE when no valid
 * Z85 key is there (err names the file, never the key). */
int empq_curve_read_key(const char *path, char *key, empq_error *err);

/* Makes sock (a ROUTER, before bind) a CURVE server with o->secret_file and
 * ZAP domain "empq". A no-op returning EMPQ_OK when CURVE is off. Returns
 * EMPQ_EINVAL when CURVE is unavailable or the key is wrong (err says which
 * file), EMPQ_EIO when the file cannot be read. */
int empq_curve_server_setup(void *sock, const empq_curve_opts *o, empq_error *err);

/* Makes sock (before connect) a CURVE client: own secret key from
 * o->secret_file (the public key is derived from it) and the server key
 * from o->server_pub_file (required when CURVE is on). Also sets a growing
 * reconnect interval (100 ms up to 5 s), so a refused client backs off.
 * A no-op returning EMPQ_OK when CURVE is off. Errors as for
 * empq_curve_server_setup. */
int empq_curve_client_setup(void *sock, const empq_curve_opts *o, empq_error *err);

/* ==================== the allow-list and its ZAP handler ==================== */

typedef struct empq_curve_zap empq_curve_zap;

/* Loads the allow-list (allow: a folder, whose *.pub files each give one
 * key, or a file with one key per line; # comments and blank lines skipped)
 * and binds a REP socket on EMPQ_CURVE_ZAP_ENDPOINT in zctx. Call before
 * the CURVE server sockets bind, and poll empq_curve_zap_socket() for
 * ZMQ_POLLIN in the same thread that owns it. On EMPQ_OK *out is the
 * caller's (empq_curve_zap_close, before zmq_ctx_term). Returns EMPQ_EIO or
 * EMPQ_EPARSE for an unreadable or malformed list (err names the file and
 * line), EMPQ_EINVAL for an empty one, EMPQ_EWIRE when the bind fails. */
int empq_curve_zap_open(empq_curve_zap **out, void *zctx, const char *allow, empq_error *err);

/* The REP socket to poll. z not NULL. */
void *empq_curve_zap_socket(const empq_curve_zap *z);

/* Answers every ZAP request waiting (never blocks): 200 for an allowed
 * CURVE key, 400 otherwise; each refusal is counted and logged
 * (event=curve_refused, key prefix and peer address; at most one line a
 * second, the rest counted in the next line). Malformed requests are
 * dropped. Returns how many requests were answered. */
size_t empq_curve_zap_handle(empq_curve_zap *z);

/* Counters since open. Any out pointer may be NULL. */
void empq_curve_zap_stats(const empq_curve_zap *z, uint64_t *allowed, uint64_t *refused, size_t *keys);

/* Closes the socket and frees z; sets *z NULL. Accepts NULL and *z NULL. */
void empq_curve_zap_close(empq_curve_zap **z);

#endif
