/* curve.c: CURVE keys, socket setup and the allow-list ZAP handler. */
#include "empq/curve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "empq/log.h"
#include "empq/util.h"

#define ZAP_DOMAIN "empq"
#define ZAP_LOG_MS 1000

int empq_curve_available(void) { return zmq_has("curve") ? 1 : 0; }

static const char *env_or(const char *cur, const char *name)
{
    if (cur != NULL)
        return cur;
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

void empq_curve_opts_from_env(empq_curve_opts *o)
{
    o->secret_file = env_or(o->secret_file, "EMPQ_CURVE_SECRET");
    o->server_pub_file = env_or(o->server_pub_file, "EMPQ_CURVE_SERVER_PUB");
    o->allow = env_or(o->allow, "EMPQ_CURVE_ALLOW");
}

int empq_curve_enabled(const empq_curve_opts *o) { return o != NULL && o->secret_file != NULL; }

/* ==================== keys ==================== */

/* 1 when s (exactly EMPQ_CURVE_KEY_LEN characters) decodes as Z85. */
static int z85_ok(const char *s)
{
    uint8_t raw[32];
    char buf[EMPQ_CURVE_KEY_LEN + 1];
    memcpy(buf, s, EMPQ_CURVE_KEY_LEN);
    buf[EMPQ_CURVE_KEY_LEN] = '\0';
    return zmq_z85_decode(raw, buf) != NULL;
}

/* Parses one line: "" (blank or comment: *got 0) or a key word. */
static int parse_key_line(const char *line, char *key, int *got)
{
    *got = 0;
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line == '\0' || *line == '\n' || *line == '\r' || *line == '#')
        return EMPQ_OK;
    size_t n = strcspn(line, " \t\r\n");
    if (n != EMPQ_CURVE_KEY_LEN || !z85_ok(line))
        return EMPQ_EPARSE;
    memcpy(key, line, EMPQ_CURVE_KEY_LEN);
    key[EMPQ_CURVE_KEY_LEN] = '\0';
    *got = 1;
    return EMPQ_OK;
}

int empq_curve_read_key(const char *path, char *key, empq_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return empq_error_set(err, EMPQ_EIO, "CURVE key file %s: %s", path, strerror(errno));
    char line[256];
    size_t lineno = 0;
    int rc = EMPQ_EPARSE;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        int got = 0;
        if (parse_key_line(line, key, &got) != EMPQ_OK) {
            rc = empq_error_set(err, EMPQ_EPARSE, "CURVE key file %s:%zu: not a 40-character Z85 key", path,
                                lineno);
            break;
        }
        if (got) {
            rc = EMPQ_OK;
            break;
        }
    }
    fclose(f);
    if (rc == EMPQ_EPARSE && lineno == 0)
        empq_error_set(err, rc, "CURVE key file %s: empty", path);
    else if (rc == EMPQ_EPARSE && (err == NULL || err->msg[0] == '\0'))
        empq_error_set(err, rc, "CURVE key file %s: no key in it", path);
    if (rc != EMPQ_OK)
        memset(key, 0, EMPQ_CURVE_KEY_LEN + 1);
    return rc;
}

static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Creates path exclusively with mode and writes text. */
static int write_new(const char *path, mode_t mode, const char *text, empq_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return empq_error_set(err, errno == EEXIST ? EMPQ_EEXIST : EMPQ_EIO, "%s: %s", path, strerror(errno));
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int rc = empq_error_set(err, EMPQ_EIO, "%s: write: %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return rc;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int rc = empq_error_set(err, EMPQ_EIO, "%s: %s", path, strerror(errno));
        unlink(path);
        return rc;
    }
    return EMPQ_OK;
}

int empq_curve_keygen(const char *dir, const char *name, char *pub, empq_error *err)
{
    if (!empq_curve_available())
        return empq_error_set(err, EMPQ_EINVAL, "this libzmq has no CURVE support (built without libsodium)");
    if (!name_ok(name))
        return empq_error_set(err, EMPQ_EINVAL, "key name '%s': use 1..64 of A-Z a-z 0-9 . _ -", name);
    char kpath[4096], ppath[4096];
    snprintf(kpath, sizeof kpath, "%s/%s.key", dir, name);
    snprintf(ppath, sizeof ppath, "%s/%s.pub", dir, name);
    struct stat st;
    if (stat(dir, &st) != 0)
        return empq_error_set(err, EMPQ_EIO, "key folder %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return empq_error_set(err, EMPQ_EIO, "key folder %s: not a folder", dir);
    if (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0)
        return empq_error_set(err, EMPQ_EEXIST, "%s.key or %s.pub already exists in %s (not overwritten)", name,
                              name, dir);
    char pk[EMPQ_CURVE_KEY_LEN + 1], sk[EMPQ_CURVE_KEY_LEN + 1];
    if (zmq_curve_keypair(pk, sk) != 0)
        return empq_error_set(err, EMPQ_EINVAL, "zmq_curve_keypair: %s", zmq_strerror(errno));
    char text[256];
    snprintf(text, sizeof text, "# empq CURVE secret key '%s': keep private (mode 0600)\n%s\n", name, sk);
    memset(sk, 0, sizeof sk);
    int rc = write_new(kpath, 0600, text, err);
    memset(text, 0, sizeof text);
    if (rc != EMPQ_OK)
        return rc;
    snprintf(text, sizeof text, "# empq CURVE public key '%s'\n%s %s\n", name, pk, name);
    rc = write_new(ppath, 0644, text, err);
    if (rc != EMPQ_OK) {
        unlink(kpath);
        return rc;
    }
    if (pub != NULL)
        memcpy(pub, pk, sizeof pk);
    return EMPQ_OK;
}

/* ==================== socket setup ==================== */

/* Reads the secret key, warning once when others may read the file. */
static int read_secret(const char *path, char *sk, empq_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        EMPQ_WARN("event=curve_key_readable file=%s mode=%03o (others can read the secret key; chmod 600 it)", path,
                  (unsigned)(st.st_mode & 0777));
    return empq_curve_read_key(path, sk, err);
}

static int set_key(void *sock, int opt, const char *z85, const char *what, empq_error *err)
{
    if (zmq_setsockopt(sock, opt, z85, EMPQ_CURVE_KEY_LEN) != 0)
        return empq_error_set(err, EMPQ_EINVAL, "CURVE %s: %s", what, zmq_strerror(errno));
    return EMPQ_OK;
}

int empq_curve_server_setup(void *sock, const empq_curve_opts *o, empq_error *err)
{
    if (!empq_curve_enabled(o))
        return EMPQ_OK;
    if (!empq_curve_available())
        return empq_error_set(err, EMPQ_EINVAL, "CURVE keys given but this libzmq has no CURVE support");
    char sk[EMPQ_CURVE_KEY_LEN + 1];
    int rc = read_secret(o->secret_file, sk, err);
    int one = 1;
    if (rc == EMPQ_OK && zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0)
        rc = empq_error_set(err, EMPQ_EINVAL, "CURVE server: %s", zmq_strerror(errno));
    if (rc == EMPQ_OK)
        rc = set_key(sock, ZMQ_CURVE_SECRETKEY, sk, o->secret_file, err);
    if (rc == EMPQ_OK && zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0)
        rc = empq_error_set(err, EMPQ_EINVAL, "ZAP domain: %s", zmq_strerror(errno));
    memset(sk, 0, sizeof sk);
    return rc;
}

int empq_curve_client_setup(void *sock, const empq_curve_opts *o, empq_error *err)
{
    if (!empq_curve_enabled(o))
        return EMPQ_OK;
    if (!empq_curve_available())
        return empq_error_set(err, EMPQ_EINVAL, "CURVE keys given but this libzmq has no CURVE support");
    if (o->server_pub_file == NULL)
        return empq_error_set(err, EMPQ_EINVAL,
                              "CURVE secret key given without the broker's public key "
                              "(--curve-server-pub or EMPQ_CURVE_SERVER_PUB)");
    char sk[EMPQ_CURVE_KEY_LEN + 1], pk[EMPQ_CURVE_KEY_LEN + 1], spk[EMPQ_CURVE_KEY_LEN + 1];
    int rc = read_secret(o->secret_file, sk, err);
    if (rc == EMPQ_OK)
        rc = empq_curve_read_key(o->server_pub_file, spk, err);
    if (rc == EMPQ_OK && zmq_curve_public(pk, sk) != 0)
        rc = empq_error_set(err, EMPQ_EINVAL, "CURVE key file %s: not a secret key", o->secret_file);
    if (rc == EMPQ_OK)
        rc = set_key(sock, ZMQ_CURVE_SERVERKEY, spk, o->server_pub_file, err);
    if (rc == EMPQ_OK)
        rc = set_key(sock, ZMQ_CURVE_PUBLICKEY, pk, o->secret_file, err);
    if (rc == EMPQ_OK)
        rc = set_key(sock, ZMQ_CURVE_SECRETKEY, sk, o->secret_file, err);
    memset(sk, 0, sizeof sk);
    int ivl = 100, ivl_max = 5000;
    if (rc == EMPQ_OK) {
        zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    }
    return rc;
}

/* ==================== allow-list and ZAP ==================== */

struct empq_curve_zap {
    void *sock;
    uint8_t (*keys)[32];
    size_t n, cap;
    uint64_t allowed, refused;
};

static int add_key(empq_curve_zap *z, const char *z85, empq_error *err)
{
    uint8_t raw[32];
    char buf[EMPQ_CURVE_KEY_LEN + 1];
    memcpy(buf, z85, EMPQ_CURVE_KEY_LEN);
    buf[EMPQ_CURVE_KEY_LEN] = '\0';
    if (zmq_z85_decode(raw, buf) == NULL)
        return empq_error_set(err, EMPQ_EPARSE, "not a Z85 key");
    for (size_t i = 0; i < z->n; i++)
        if (memcmp(z->keys[i], raw, 32) == 0)
            return EMPQ_OK;
    if (z->n == z->cap) {
        size_t cap = z->cap ? z->cap * 2 : 16;
        uint8_t(*k)[32] = realloc(z->keys, cap * sizeof *k);
        if (k == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
        z->keys = k;
        z->cap = cap;
    }
    memcpy(z->keys[z->n++], raw, 32);
    return EMPQ_OK;
}

/* Every key of a list file (one per line). */
static int load_file(empq_curve_zap *z, const char *path, empq_error *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return empq_error_set(err, EMPQ_EIO, "CURVE allow-list %s: %s", path, strerror(errno));
    char line[512];
    size_t lineno = 0;
    int rc = EMPQ_OK;
    while (rc == EMPQ_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char key[EMPQ_CURVE_KEY_LEN + 1];
        int got = 0;
        rc = parse_key_line(line, key, &got);
        if (rc != EMPQ_OK)
            rc = empq_error_set(err, EMPQ_EPARSE, "CURVE allow-list %s:%zu: not a 40-character Z85 key", path,
                                lineno);
        else if (got)
            rc = add_key(z, key, err);
    }
    fclose(f);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int load_allow(empq_curve_zap *z, const char *allow, empq_error *err)
{
    struct stat st;
    if (stat(allow, &st) != 0)
        return empq_error_set(err, EMPQ_EIO, "CURVE allow-list %s: %s", allow, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return load_file(z, allow, err);
    DIR *d = opendir(allow);
    if (d == NULL)
        return empq_error_set(err, EMPQ_EIO, "CURVE allow-list folder %s: %s", allow, strerror(errno));
    int rc = EMPQ_OK;
    struct dirent *e;
    for (e = readdir(d); e != NULL && rc == EMPQ_OK; e = readdir(d)) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, ".pub"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", allow, e->d_name);
        char key[EMPQ_CURVE_KEY_LEN + 1];
        rc = empq_curve_read_key(path, key, err);
        if (rc == EMPQ_OK)
            rc = add_key(z, key, err);
    }
    closedir(d);
    return rc;
}

int empq_curve_zap_open(empq_curve_zap **out, void *zctx, const char *allow, empq_error *err)
{
    *out = NULL;
    if (allow == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "CURVE server without an allow-list (--curve-allow)");
    empq_curve_zap *z = calloc(1, sizeof *z);
    if (z == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    int rc = load_allow(z, allow, err);
    if (rc == EMPQ_OK && z->n == 0)
        rc = empq_error_set(err, EMPQ_EINVAL, "CURVE allow-list %s holds no key", allow);
    if (rc == EMPQ_OK) {
        z->sock = zmq_socket(zctx, ZMQ_REP);
        if (z->sock == NULL)
            rc = empq_error_set(err, EMPQ_EWIRE, "ZAP socket: %s", zmq_strerror(errno));
    }
    if (rc == EMPQ_OK) {
        int zero = 0;
        zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_bind(z->sock, EMPQ_CURVE_ZAP_ENDPOINT) != 0)
            rc = empq_error_set(err, EMPQ_EWIRE, "ZAP handler bind %s: %s", EMPQ_CURVE_ZAP_ENDPOINT,
                                zmq_strerror(errno));
    }
    if (rc != EMPQ_OK) {
        empq_curve_zap_close(&z);
        return rc;
    }
    *out = z;
    return EMPQ_OK;
}

void *empq_curve_zap_socket(const empq_curve_zap *z) { return z->sock; }

/* ZAP request: version, request id, domain, address, routing id, mechanism,
 * credentials (CURVE: the 32-byte client public key). */
#define ZAP_FRAMES 7

static void reply(void *sock, zmq_msg_t *reqid, const char *code, const char *text)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_msg_send(reqid, sock, ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, ZMQ_SNDMORE); /* user id */
    zmq_send(sock, "", 0, 0);           /* metadata */
}

static int key_allowed(const empq_curve_zap *z, const uint8_t *key)
{
    for (size_t i = 0; i < z->n; i++)
        if (memcmp(z->keys[i], key, 32) == 0)
            return 1;
    return 0;
}

static void log_refusal(empq_curve_zap *z, const uint8_t *key, const zmq_msg_t *addr)
{
    char z85[EMPQ_CURVE_KEY_LEN + 1] = "?";
    if (key != NULL)
        zmq_z85_encode(z85, key, 32);
    char ip[64];
    size_t n = zmq_msg_size((zmq_msg_t *)addr);
    n = n < sizeof ip - 1 ? n : sizeof ip - 1;
    memcpy(ip, zmq_msg_data((zmq_msg_t *)addr), n);
    ip[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (ip[i] < 0x20 || ip[i] > 0x7e || ip[i] == '"')
            ip[i] = '?';
    /* at most one line a second; the rest are counted (suppressed=N) */
    EMPQ_LOG_EVERY(EMPQ_LOG_WARN, "curve_refused", ZAP_LOG_MS,
                   "event=curve_refused key=%.8s... address=%s refused=%llu", z85, ip, (unsigned long long)z->refused);
}

/* Reads one request's frames; answers it. Returns 0 when nothing waited. */
static int handle_one(empq_curve_zap *z)
{
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < ZAP_FRAMES)
            f[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (n == 0)
        return 0;
    if (n >= 2) {
        int ok = n == ZAP_FRAMES && zmq_msg_size(&f[0]) == 3 && memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0;
        int curve = ok && zmq_msg_size(&f[5]) == 5 && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
                    zmq_msg_size(&f[6]) == 32;
        const uint8_t *key = curve ? zmq_msg_data(&f[6]) : NULL;
        if (curve && key_allowed(z, key)) {
            z->allowed++;
            reply(z->sock, &f[1], "200", "OK");
        } else {
            z->refused++;
            if (n >= 4)
                log_refusal(z, key, &f[3]);
            reply(z->sock, &f[1], "400", curve ? "key not allowed" : "CURVE required");
        }
    } else {
        /* a REP must answer before the next request: say no */
        zmq_msg_t empty;
        zmq_msg_init(&empty);
        reply(z->sock, &empty, "400", "malformed ZAP request");
        zmq_msg_close(&empty);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return 1;
}

size_t empq_curve_zap_handle(empq_curve_zap *z)
{
    size_t n = 0;
    while (n < 1024 && handle_one(z))
        n++;
    return n;
}

void empq_curve_zap_stats(const empq_curve_zap *z, uint64_t *allowed, uint64_t *refused, size_t *keys)
{
    if (allowed != NULL)
        *allowed = z->allowed;
    if (refused != NULL)
        *refused = z->refused;
    if (keys != NULL)
        *keys = z->n;
}

void empq_curve_zap_close(empq_curve_zap **zp)
{
    if (zp == NULL || *zp == NULL)
        return;
    empq_curve_zap *z = *zp;
    if (z->sock != NULL)
        zmq_close(z->sock);
    free(z->keys);
    free(z);
    *zp = NULL;
}
