/* reply.c: see reply.h. */
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "empq/error.h"

#define PAD_JSON "\\u0001"
static const char filler[] = " lorem ipsum dolor sit amet";

void fakellm_reply_clear(fakellm_reply *r)
{
    if (r == NULL)
        return;
    empq_buf_free(&r->body);
    free(r->model);
    fakellm_reply_clear_headers(r);
    memset(r, 0, sizeof(*r));
}

int fakellm_reply_set(fakellm_reply *r, unsigned status, const char *text, size_t len)
{
    empq_buf_free(&r->body);
    r->status = status;
    r->content_type = "application/json";
    r->body_kind = FAKELLM_BODY_PLAIN;
    r->pad_at = r->pad_len = 0;
    return empq_buf_append(&r->body, text, len);
}

void fakellm_reply_clear_headers(fakellm_reply *r)
{
    for (size_t i = 0; i < r->n_headers; i++)
        free(r->headers[i]);
    r->n_headers = 0;
}

static int header_is(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

int fakellm_reply_header(fakellm_reply *r, const char *name, const char *fmt, ...)
{
    empq_buf b = {0};
    va_list ap;
    char value[512];
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    if (empq_buf_printf(&b, "%s: %s", name, value) != EMPQ_OK) {
        empq_buf_free(&b);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < r->n_headers; i++) {
        if (header_is(r->headers[i], name)) {
            free(r->headers[i]);
            r->headers[i] = b.data;
            return EMPQ_OK;
        }
    }
    if (r->n_headers == FAKELLM_REPLY_MAX_HEADERS) {
        empq_buf_free(&b);
        return EMPQ_EINVAL;
    }
    r->headers[r->n_headers++] = b.data;
    return EMPQ_OK;
}

const char *fakellm_reply_get_header(const fakellm_reply *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        if (header_is(r->headers[i], name)) {
            const char *v = r->headers[i] + strlen(name) + 1;
            return *v == ' ' ? v + 1 : v;
        }
    }
    return NULL;
}

static char *find_mark(const fakellm_reply *r)
{
    if (r->body.data == NULL)
        return NULL;
    return strstr(r->body.data, PAD_JSON);
}

int fakellm_reply_mark_pad(fakellm_reply *r, size_t pad_len)
{
    char *m = find_mark(r);
    if (m == NULL)
        return 0;
    size_t n = strlen(PAD_JSON), at = (size_t)(m - r->body.data);
    memmove(m, m + n, r->body.len - at - n + 1);
    r->body.len -= n;
    r->body_kind = FAKELLM_BODY_PADDED;
    r->pad_at = at;
    r->pad_len = pad_len;
    return 1;
}

void fakellm_reply_drop_pad_mark(fakellm_reply *r)
{
    if (fakellm_reply_mark_pad(r, 0)) {
        r->body_kind = FAKELLM_BODY_PLAIN;
        r->pad_at = 0;
    }
}

size_t fakellm_reply_wire_len(const fakellm_reply *r)
{
    return r->body.len + (r->body_kind == FAKELLM_BODY_PADDED ? r->pad_len : 0);
}

size_t fakellm_reply_wire_read(const fakellm_reply *r, size_t pos, char *out, size_t n)
{
    size_t pad = r->body_kind == FAKELLM_BODY_PADDED ? r->pad_len : 0;
    size_t at = pad ? r->pad_at : r->body.len;
    size_t total = r->body.len + pad, done = 0;
    while (done < n && pos < total) {
        size_t chunk;
        if (pos < at) {
            chunk = at - pos;
            if (chunk > n - done)
                chunk = n - done;
            memcpy(out + done, r->body.data + pos, chunk);
        } else if (pos < at + pad) {
            size_t k = (pos - at) % (sizeof(filler) - 1);
            chunk = sizeof(filler) - 1 - k;
            if (chunk > at + pad - pos)
                chunk = at + pad - pos;
            if (chunk > n - done)
                chunk = n - done;
            memcpy(out + done, filler + k, chunk);
        } else {
            size_t b = pos - pad;
            chunk = r->body.len - b;
            if (chunk > n - done)
                chunk = n - done;
            memcpy(out + done, r->body.data + b, chunk);
        }
        done += chunk;
        pos += chunk;
    }
    return done;
}
