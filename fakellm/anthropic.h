/* anthropic.h: the Anthropic Messages wire format.
 *
 * POST /v1/messages with "x-api-key: KEY" and "anthropic-version: 2023-06-01"
 * (required). Matched against https://docs.anthropic.com/en/api/messages (request
 * and response), /en/api/errors, /en/api/rate-limits (headers) and
 * /en/api/versioning:
 *
 *   request  {"model": str, "max_tokens": >= 1 (required),
 *             "messages": [{"role": "user" | "assistant", "content": str | [{"type": "text",
 *                           "text": str}, ...]}, ...],
 *             "system": str | [{"type": "text", "text": str}], "temperature": 0..1,
 *             "top_p": 0..1, "top_k": >= 0, "stop_sequences": [str], "metadata": {...}, ...}
 *            Unknown top-level fields are refused as the API does ("x: Extra inputs are
 *            not permitted"); a "system" role in messages is refused with the API's hint.
 *   response {"id": "msg_01...", "type": "message", "role": "assistant", "model": model,
 *             "content": [{"type": "text", "text": str}],
 *             "stop_reason": "end_turn" | "max_tokens" | "stop_sequence",
 *             "stop_sequence": str | null,
 *             "usage": {"input_tokens": N, "cache_creation_input_tokens": 0,
 *                       "cache_read_input_tokens": 0, "output_tokens": M}}
 *            (the example in /en/build-with-claude/handling-stop-reasons)
 *   refusal  stop_reason "refusal" with the refusal text and "stop_details": {"type":
 *            "refusal", "category": null, "explanation": null}
 *            (/en/test-and-evaluate/strengthen-guardrails/handle-streaming-refusals)
 *   empty    "content": [] with stop_reason "end_turn" (the empty end_turn reply the
 *            stop-reasons page describes)
 *   errors   {"type": "error", "error": {"type": T, "message": str}, "request_id": "req_..."}
 *            and a request-id header; T by status: 400 invalid_request_error,
 *            401 authentication_error, 404 not_found_error, 429 rate_limit_error,
 *            500 api_error, 529 overloaded_error. Messages as the API words them:
 *            "anthropic-version: header is required" (PipedreamHQ/pipedream#9697),
 *            "x-api-key header is required" (n8n-io/n8n#37930), "invalid x-api-key",
 *            "max_tokens: Field required", and for 429 "This request would exceed the
 *            rate limit for your organization ... of N requests per minute. ..."
 *            (the wording quoted in stackblitz/bolt.new#8589 and bhouston/mycoder#62).
 *   headers  with a --limit: anthropic-ratelimit-requests-limit, -remaining, -reset and
 *            anthropic-ratelimit-tokens-limit, -remaining, -reset (RFC 3339 times);
 *            retry-after (seconds) on 429.
 *
 * Also (docs/fakellm.md, "Reasoning models"): "anthropic-version: 2026-10-21" (the
 * one @anthropic-ai/sdk 1.17 sends) and "Authorization: Bearer KEY" (the SDK's
 * way of sending an API key) are accepted (a wrong Bearer key: 401
 * authentication_error "Invalid bearer token", the body quoted in
 * anthropics/claude-code#3624 and AndyMik90/Aperant#1223); an unknown version is 400
 * 'anthropic-version: "V" is not a valid version' (directus-labs/extensions#285).
 * thinking {"type": "enabled", "budget_tokens": N} (N >= 1024, < max_tokens)
 * thinks N tokens: a thinking block before the text, counted in output_tokens.
 * The quota fault: 400 invalid_request_error "Your credit balance is too low to
 * access the Anthropic API. Please go to Plans & Billing to upgrade or purchase
 * credits." (anthropics/claude-code#66314, anthropics/claude-quickstarts#229). */
#ifndef FAKELLM_ANTHROPIC_H
#define FAKELLM_ANTHROPIC_H

#include <stddef.h>

#include "chat.h"
#include "front.h"
#include "reply.h"

/* An Anthropic request's headers. */
typedef struct fakellm_anthropic_in {
    const char *api_key;     /* x-api-key, or NULL */
    const char *authorization; /* Authorization (the SDK sends "Bearer KEY"), or NULL */
    const char *version;     /* anthropic-version, or NULL */
    const char *require_key; /* --require-key, or NULL */
} fakellm_anthropic_in;

/* Answers one Messages request body. Fills out with a 200 (out->model and
 * out->tokens set) or an error in the Anthropic shape. Returns EMPQ_OK when
 * out is filled, whatever its status; EMPQ_ENOMEM when it could not be (out
 * is then cleared). */
int fakellm_anthropic_messages(const char *body, size_t len, const fakellm_anthropic_in *in, const fakellm_ctx *ctx,
                               fakellm_reply *out);

/* Checks a request's key (as --require-key asks) and anthropic-version
 * headers as the Messages endpoint does (the message batches endpoints too).
 * Returns 1 when they pass; 0 after filling out with the 401 or 400 (*rc is
 * EMPQ_ENOMEM when out could not be filled). */
int fakellm_anthropic_check(const fakellm_anthropic_in *in, uint64_t request_id, fakellm_reply *out, int *rc);

/* Fills out with {"type": "error", "error": {"type": type, "message": message},
 * "request_id": "req_..."} and the request-id header. Returns EMPQ_OK or
 * EMPQ_ENOMEM. */
int fakellm_anthropic_error(fakellm_reply *out, unsigned status, const char *type, const char *message,
                            uint64_t request_id);

#endif
