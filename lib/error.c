/* error.c: error codes and the error detail buffer. */
#include "empq/error.h"

#include <stdio.h>
#include <string.h>

const char *empq_strerror(int code)
{
    switch (code) {
    case EMPQ_OK: return "ok";
    case EMPQ_EINVAL: return "invalid argument";
    case EMPQ_ENOMEM: return "out of memory";
    case EMPQ_EIO: return "I/O error";
    case EMPQ_EPARSE: return "parse error";
    case EMPQ_ENOTFOUND: return "not found";
    case EMPQ_ESTORE: return "store (Redis) error";
    case EMPQ_EWIRE: return "wire (ZeroMQ) error";
    case EMPQ_EHTTP: return "HTTP error";
    case EMPQ_ETIMEOUT: return "timed out";
    case EMPQ_ESTATE: return "invalid state transition";
    case EMPQ_EEXIST: return "already exists";
    case EMPQ_ERANGE: return "out of range";
    case EMPQ_ESPEC: return "study spec error";
    case EMPQ_ECANCELED: return "canceled";
    default: return "unknown error";
    }
}

int empq_error_set(empq_error *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int empq_error_prefix(empq_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return EMPQ_OK;
    char head[EMPQ_ERROR_MSG_MAX];
    char old[EMPQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s%s", head, old);
    return err->code;
}

void empq_error_clear(empq_error *err)
{
    if (err == NULL)
        return;
    err->code = EMPQ_OK;
    err->msg[0] = '\0';
}
