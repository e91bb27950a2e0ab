/* openai.h: the OpenAI chat-completions wire format.
 *
 * Request (POST /v1/chat/completions):
 *   {"model": str, "messages": [{"role": str, "content": str | [parts] | null}, ...],
 *    "temperature": 0..2, "top_p": 0..1, "max_tokens" | "max_completion_tokens": >= 1,
 *    "n": 1..128, "stop": str | [str], "seed": int, "stream": false, ...}
 * Other fields are accepted and ignored, as the real API ignores what it
 * does not act on here. stream=true is refused (400): no streaming yet.
 *
 * Response:
 *   {"id": "chatcmpl-...", "object": "chat.completion", "created": unix,
 *    "model": model, "system_fingerprint": "fp_...",
 *    "choices": [{"index": i, "message": {"role": "assistant", "content": str},
 *                 "logprobs": null, "finish_reason": "stop" | "length"}],
 *    "usage": {"prompt_tokens": N, "completion_tokens": M, "total_tokens": N+M}}
 *
 * Tokens are words (style.h): prompt_tokens = 3 + sum over messages of
 * (4 + words of content); completion_tokens = words of every choice. A reply
 * longer than max_tokens words is cut to max_tokens words with finish_reason
 * "length"; a stop string cuts it before the stop with "stop".
 *
 * Errors: {"error": {"message": str, "type": "invalid_request_error",
 *                    "param": str | null, "code": str | null}}. */
#ifndef FAKELLM_OPENAI_H
#define FAKELLM_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"

/* Per-request values the server supplies, so replies are testable. */
typedef struct fakellm_openai_ctx {
    uint64_t created;    /* Unix seconds for "created" */
    uint64_t request_id; /* unique per request; makes "id" unique */
} fakellm_openai_ctx;

/* Answers one chat-completions request body (len bytes, need not be
 * NUL-terminated). Fills out with a 200 completion (out->model set) or a 400
 * error in the OpenAI shape. Returns EMPQ_OK when out is filled, whatever
 * its status; EMPQ_ENOMEM when it could not be (out is then cleared). */
int fakellm_openai_chat(const char *body, size_t len, const fakellm_openai_ctx *ctx, fakellm_reply *out);

/* Fills out with an OpenAI error body: status, message (printf-style is the
 * caller's business), type "invalid_request_error" unless type is given,
 * param and code (either may be NULL: JSON null). Returns EMPQ_OK or
 * EMPQ_ENOMEM. */
int fakellm_openai_error(fakellm_reply *out, unsigned status, const char *message, const char *type,
                         const char *param, const char *code);

#endif
