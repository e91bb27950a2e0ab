/* util.h: small helpers every program needs: time, growing buffers, files. */
#ifndef EMPQ_UTIL_H
#define EMPQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"

/* Milliseconds: wall clock (Unix epoch) and monotonic. The time source can be
 * replaced in tests (empq_time_set_source); fn may be NULL to restore. */
uint64_t empq_now_ms(void);
uint64_t empq_mono_ms(void);
void empq_time_set_source(uint64_t (*wall)(void), uint64_t (*mono)(void));

/* A growing byte buffer, always NUL-terminated. Zero-initialise to start. */
typedef struct empq_buf {
    char *data;
    size_t len;
    size_t cap;
} empq_buf;

/* Appends; returns EMPQ_OK or EMPQ_ENOMEM (the buffer is left intact). */
int empq_buf_append(empq_buf *b, const void *p, size_t n);
int empq_buf_printf(empq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as one RFC 4180 CSV field: as it is, or double-quoted with ""
 * for a quote when it holds a comma, quote, CR or LF. s may be NULL (an
 * empty field). Returns EMPQ_OK or EMPQ_ENOMEM. */
int empq_buf_csv(empq_buf *b, const char *s);
/* empq_buf_csv, then "," or, when last is nonzero, the CRLF ending the row. */
int empq_buf_csv_field(empq_buf *b, const char *s, int last);
/* A decimal unsigned number as a CSV field, like empq_buf_csv_field. */
int empq_buf_csv_u64(empq_buf *b, uint64_t v, int last);
/* Frees the data and zeroes b; b may be NULL. */
void empq_buf_free(empq_buf *b);

/* Reads a whole file. On EMPQ_OK *out (NUL-terminated, caller frees) and
 * *len. EMPQ_ENOTFOUND or EMPQ_EIO with err naming the path. */
int empq_read_file(const char *path, char **out, size_t *len, empq_error *err);

/* Writes data to path atomically: a temporary file in the same folder,
 * fsync, rename. Returns EMPQ_OK or EMPQ_EIO with err naming the path. */
int empq_write_file_atomic(const char *path, const void *data, size_t len, empq_error *err);

/* mkdir -p. Returns EMPQ_OK or EMPQ_EIO. */
int empq_mkdirs(const char *path, empq_error *err);

/* A deterministic 64-bit PRNG (splitmix64 seeding xoshiro256**): the same
 * seed gives the same sequence on every machine. */
typedef struct empq_rng {
    uint64_t s[4];
} empq_rng;
void empq_rng_seed(empq_rng *r, uint64_t seed);
uint64_t empq_rng_next(empq_rng *r);
/* Uniform in [0, bound); bound > 0. */
uint64_t empq_rng_below(empq_rng *r, uint64_t bound);

/* strdup that returns NULL for NULL. */
char *empq_strdup(const char *s);

/* Length of the valid UTF-8 sequence at s, of which n >= 1 bytes may be
 * read: 1 to 4, or 0 when the bytes there are not one (a stray continuation
 * byte, 0xC0, 0xC1 or 0xF5-0xFF, an overlong form, a surrogate U+D800-DFFF,
 * a code point past U+10FFFF, or a sequence cut by the end). Strict UTF-8
 * (RFC 3629); a NUL byte is a valid sequence of 1. */
size_t empq_utf8_seq(const unsigned char *s, size_t n);

/* Offset of the first byte of s (len bytes; s may be NULL when len is 0)
 * where no valid UTF-8 sequence starts, or len when all of s is valid
 * UTF-8 (empq_utf8_seq's rules). */
size_t empq_utf8_invalid_at(const char *s, size_t len);

#endif
