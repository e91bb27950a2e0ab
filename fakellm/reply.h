/* reply.h: what a route hands back to the HTTP layer.
 *
 * A route (OpenAI, Azure, Gemini, Anthropic, stats) fills a fakellm_reply;
 * the server's limits and injected faults, then the fault hook, may rewrite
 * it; server.c sends it after delay_ms. Provider-specific error bodies are
 * built by the provider's file (openai.c, gemini.c, anthropic.c), because
 * each provider shapes its errors differently.
 *
 * Besides a plain body a reply can be sent two broken ways (body_kind):
 *   TRUNCATED  Content-Length announces the whole body, about half of it is
 *              sent, then the connection is closed;
 *   PADDED     pad_len filler bytes (JSON-string safe: " lorem") are sent
 *              at offset pad_at inside the body, generated while sending,
 *              never held in memory (the huge-body fault). */
#ifndef FAKELLM_REPLY_H
#define FAKELLM_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "empq/util.h"

#define FAKELLM_REPLY_MAX_HEADERS 16

/* The marker a front end leaves in a reply text where padding goes; it is
 * JSON-encoded as \u0001 (see fakellm_reply_mark_pad). */
#define FAKELLM_PAD_MARK "\x01"

typedef enum fakellm_body_kind {
    FAKELLM_BODY_PLAIN = 0,
    FAKELLM_BODY_TRUNCATED,
    FAKELLM_BODY_PADDED
} fakellm_body_kind;

typedef struct fakellm_reply {
    unsigned status;          /* HTTP status; 0 until a route sets it */
    empq_buf body;            /* the body; owned */
    const char *content_type; /* a constant string, e.g. "application/json" */
    char *model;              /* the completion's model when status is 200 on a model
                                 route (counted in /stats by_model); owned; may be NULL */
    uint64_t tokens;          /* prompt + completion tokens of a 200 completion (limits) */
    unsigned delay_ms;        /* how long to hold the response before sending */
    char *headers[FAKELLM_REPLY_MAX_HEADERS]; /* extra headers, "Name: value"; owned */
    size_t n_headers;
    fakellm_body_kind body_kind;
    size_t pad_at, pad_len;   /* PADDED: where and how many filler bytes */
    int reset;                /* close the connection without any reply (a batch
                                 create whose answer is lost, batch.h) */
} fakellm_reply;

/* Frees what r owns and zeroes it; r may be NULL. */
void fakellm_reply_clear(fakellm_reply *r);

/* Replaces r's body with len bytes of text and sets status and a JSON
 * content type; headers, model and tokens are kept. Returns EMPQ_OK or
 * EMPQ_ENOMEM (r's body is then empty). */
int fakellm_reply_set(fakellm_reply *r, unsigned status, const char *text, size_t len);

/* Adds the header "name: value" (value printf-style). A header of the same
 * name (case-insensitive) is replaced. Returns EMPQ_OK, EMPQ_ENOMEM, or
 * EMPQ_EINVAL when FAKELLM_REPLY_MAX_HEADERS are already set. */
int fakellm_reply_header(fakellm_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The value of header name in r (case-insensitive), or NULL. Borrowed. */
const char *fakellm_reply_get_header(const fakellm_reply *r, const char *name);

/* Drops every extra header. */
void fakellm_reply_clear_headers(fakellm_reply *r);

/* Finds the JSON-encoded FAKELLM_PAD_MARK ("\u0001") in r's body, removes
 * it, and makes r PADDED with pad_len bytes there. Returns 1 when the mark
 * was found, 0 otherwise (r unchanged). */
int fakellm_reply_mark_pad(fakellm_reply *r, size_t pad_len);

/* Removes the JSON-encoded FAKELLM_PAD_MARK from r's body if present (a
 * huge reply turned into something else). */
void fakellm_reply_drop_pad_mark(fakellm_reply *r);

/* The total bytes r's body puts on the wire (body plus padding). */
size_t fakellm_reply_wire_len(const fakellm_reply *r);

/* Copies up to n bytes of r's wire body starting at pos into out (padding
 * generated on the fly). Returns the bytes copied. */
size_t fakellm_reply_wire_read(const fakellm_reply *r, size_t pos, char *out, size_t n);

#endif
