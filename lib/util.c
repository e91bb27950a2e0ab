/* util.c: time, buffers, files, a deterministic PRNG. */
#include "empq/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ==================== time ==================== */

static uint64_t real_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t (*wall_source)(void) = real_wall_ms;
static uint64_t (*mono_source)(void) = real_mono_ms;

uint64_t empq_now_ms(void) { return wall_source(); }
uint64_t empq_mono_ms(void) { return mono_source(); }

void empq_time_set_source(uint64_t (*wall)(void), uint64_t (*mono)(void))
{
    wall_source = wall != NULL ? wall : real_wall_ms;
    mono_source = mono != NULL ? mono : real_mono_ms;
}

/* ==================== buffers ==================== */

int empq_buf_append(empq_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return EMPQ_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return EMPQ_OK;
}

int empq_buf_printf(empq_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return EMPQ_EINVAL;
    if ((size_t)n < sizeof small)
        return empq_buf_append(b, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        return EMPQ_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = empq_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

int empq_buf_csv(empq_buf *b, const char *s)
{
    if (s == NULL)
        s = "";
    if (strpbrk(s, ",\"\r\n") == NULL)
        return empq_buf_append(b, s, strlen(s));
    int rc = empq_buf_append(b, "\"", 1);
    for (; *s != '\0' && rc == EMPQ_OK; s++)
        rc = *s == '"' ? empq_buf_append(b, "\"\"", 2) : empq_buf_append(b, s, 1);
    return rc == EMPQ_OK ? empq_buf_append(b, "\"", 1) : rc;
}

int empq_buf_csv_field(empq_buf *b, const char *s, int last)
{
    int rc = empq_buf_csv(b, s);
    if (rc == EMPQ_OK)
        rc = last ? empq_buf_append(b, "\r\n", 2) : empq_buf_append(b, ",", 1);
    return rc;
}

int empq_buf_csv_u64(empq_buf *b, uint64_t v, int last)
{
    char t[32];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    return empq_buf_csv_field(b, t, last);
}

void empq_buf_free(empq_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ==================== files ==================== */

int empq_read_file(const char *path, char **out, size_t *len, empq_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return empq_error_set(err, errno == ENOENT ? EMPQ_ENOTFOUND : EMPQ_EIO, "%s: %s", path,
                              strerror(errno));
    empq_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (empq_buf_append(&b, chunk, got) != EMPQ_OK) {
            fclose(f);
            empq_buf_free(&b);
            return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        empq_buf_free(&b);
        return empq_error_set(err, EMPQ_EIO, "%s: read error", path);
    }
    if (b.data == NULL && empq_buf_append(&b, "", 0) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    *out = b.data;
    if (len != NULL)
        *len = b.len;
    return EMPQ_OK;
}

int empq_write_file_atomic(const char *path, const void *data, size_t len, empq_error *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (tmp == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int rc = empq_error_set(err, EMPQ_EIO, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int rc = empq_error_set(err, EMPQ_EIO, "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return rc;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int rc = empq_error_set(err, EMPQ_EIO, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        int rc = empq_error_set(err, EMPQ_EIO, "%s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return EMPQ_OK;
}

int empq_mkdirs(const char *path, empq_error *err)
{
    char *p = empq_strdup(path);
    if (p == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int rc = empq_error_set(err, EMPQ_EIO, "%s: %s", p, strerror(errno));
            free(p);
            return rc;
        }
        *s = '/';
    }
    int rc = EMPQ_OK;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = empq_error_set(err, EMPQ_EIO, "%s: %s", p, strerror(errno));
    free(p);
    return rc;
}

/* ==================== PRNG ==================== */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void empq_rng_seed(empq_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t empq_rng_next(empq_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t empq_rng_below(empq_rng *r, uint64_t bound)
{
    /* Rejection sampling: no modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
        x = empq_rng_next(r);
    } while (x >= limit);
    return x % bound;
}

char *empq_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* ==================== UTF-8 ==================== */

size_t empq_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte, 0xC0/0xC1 (always overlong) or 0xF5-0xFF */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t empq_utf8_invalid_at(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { /* the common case: ASCII */
            i++;
            continue;
        }
        size_t n = empq_utf8_seq(p + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}
