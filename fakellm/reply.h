/* reply.h: what a route hands back to the HTTP layer.
 *
 * A route (OpenAI chat, stats, and later Gemini, Anthropic, Azure) fills a
 * fakellm_reply; the fault hook may then rewrite it; server.c sends it after
 * delay_ms. Provider-specific error bodies are built by the provider's file
 * (openai.c), because each provider shapes its errors differently. */
#ifndef FAKELLM_REPLY_H
#define FAKELLM_REPLY_H

#include "empq/util.h"

typedef struct fakellm_reply {
    unsigned status;          /* HTTP status; 0 until a route sets it */
    empq_buf body;            /* the body; owned */
    const char *content_type; /* a constant string, e.g. "application/json" */
    char *model;              /* the completion's model when status is 200 on a model
                                 route (counted in /stats by_model); owned; may be NULL */
    unsigned delay_ms;        /* how long to hold the response before sending */
} fakellm_reply;

/* Frees what r owns and zeroes it; r may be NULL. */
void fakellm_reply_clear(fakellm_reply *r);

/* Replaces r's body with len bytes of text and sets status and a JSON
 * content type. Returns EMPQ_OK or EMPQ_ENOMEM (r's body is then empty). */
int fakellm_reply_set(fakellm_reply *r, unsigned status, const char *text, size_t len);

#endif
