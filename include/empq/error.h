/* error.h: the one error space of empq.
 *
 * Every function that can fail returns int: 0 (EMPQ_OK) on success, a
 * negative EMPQ_E* code on failure. Where the caller needs the detail, the
 * function also takes an empq_error *, a fixed buffer that receives a short
 * human-readable text naming what failed and where (file and line, key,
 * endpoint). libcurl, hiredis, ZeroMQ and parser errors are translated into
 * this space once, at the module that calls them. */
#ifndef EMPQ_ERROR_H
#define EMPQ_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum {
    EMPQ_OK = 0,
    EMPQ_EINVAL = -1,    /* bad argument or option */
    EMPQ_ENOMEM = -2,    /* out of memory */
    EMPQ_EIO = -3,       /* file or socket I/O failed */
    EMPQ_EPARSE = -4,    /* malformed input: dataset line, spec, message, reply */
    EMPQ_ENOTFOUND = -5, /* no such run, key, file or prompt */
    EMPQ_ESTORE = -6,    /* Redis failed or is unreachable */
    EMPQ_EWIRE = -7,     /* ZeroMQ failed, or the peer is unreachable */
    EMPQ_EHTTP = -8,     /* an HTTP exchange failed */
    EMPQ_ETIMEOUT = -9,  /* a deadline passed */
    EMPQ_ESTATE = -10,   /* an invalid state transition was refused */
    EMPQ_EEXIST = -11,   /* already exists */
    EMPQ_ERANGE = -12,   /* a value is out of its allowed range */
    EMPQ_ESPEC = -13,    /* the study spec is wrong */
    EMPQ_ECANCELED = -14 /* stopped on request (signal, cancel) */
};

#define EMPQ_ERROR_MSG_MAX 512

/* A detail buffer. code is the last code set; msg the text (never NULL-free,
 * always NUL-terminated). Zero-initialise, or use empq_error_clear(). */
typedef struct empq_error {
    int code;
    char msg[EMPQ_ERROR_MSG_MAX];
} empq_error;

/* Short constant name of a code ("parse error"); never NULL, never freed. */
const char *empq_strerror(int code);

/* Sets err (which may be NULL: then only the code is returned) to code and
 * the formatted text. Returns code, so a caller can write
 * `return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: ...", file, line);`. */
int empq_error_set(empq_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err's text with the formatted context ("spec.yaml: " + old text).
 * err may be NULL. Returns err->code (or EMPQ_OK when err is NULL). */
int empq_error_prefix(empq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Resets err to EMPQ_OK and an empty text. err may be NULL. */
void empq_error_clear(empq_error *err);

#endif
