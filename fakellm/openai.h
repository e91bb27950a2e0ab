/* openai.h: the OpenAI chat-completions wire format, and Azure OpenAI's.
 *
 * OpenAI (POST /v1/chat/completions, "Authorization: Bearer KEY").
 * Matched against the API reference, https://platform.openai.com/docs/api-reference/chat
 * (create: request; the chat completion object: response):
 *   request  {"model": str, "messages": [{"role": str, "content": str | [parts] | null}, ...],
 *             "temperature": 0..2, "top_p": 0..1, "max_tokens" | "max_completion_tokens": >= 1,
 *             "n": 1..128, "stop": str | [str] (at most 4), "seed": int, "stream": false, ...}
 *            Other fields are accepted and ignored, as the real API ignores what it
 *            does not act on here. stream=true is refused (400): no streaming yet.
 *   response {"id": "chatcmpl-...", "object": "chat.completion", "created": unix,
 *             "model": model, "system_fingerprint": "fp_...",
 *             "choices": [{"index": i, "message": {"role": "assistant", "content": str | null,
 *                          "refusal": str | null}, "logprobs": null,
 *                          "finish_reason": "stop" | "length"}],
 *             "usage": {"prompt_tokens": N, "completion_tokens": M, "total_tokens": N+M}}
 *   refusal  message.content null and message.refusal the refusal text, finish_reason
 *            "stop" (the structured-outputs refusal, https://platform.openai.com/docs/guides/structured-outputs#refusals;
 *            the field is choices[].message.refusal, as MacPaw/OpenAI#249 lists it)
 *   errors   {"error": {"message": str, "type": str, "param": str | null, "code": str | null}}
 *            400 invalid_request_error; 401 code invalid_api_key (message as the API words it);
 *            429 {"message": "Rate limit reached for MODEL in organization org-fakellm on
 *            requests per min (RPM): Limit 600, Used 600, Requested 1. Please try again in
 *            1.2s. Visit https://platform.openai.com/account/rate-limits to learn more.",
 *            "type": "requests" | "tokens", "param": null, "code": "rate_limit_exceeded"}
 *            (the wording of real replies quoted in openai/codex#10060, semanser/codel#72,
 *            ChatGPTNextWeb/NextChat#793) with Retry-After; 500 and 503 type server_error.
 *   headers  with a --limit: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
 *            x-ratelimit-reset-requests and the -tokens variants, resets as Go durations
 *            ("12ms", "6m0s"; https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers,
 *            values as in community.openai.com/t/1268905).
 *
 * Azure OpenAI (POST /openai/deployments/{deployment}/chat/completions?api-version=V,
 * "api-key: KEY"; https://learn.microsoft.com/azure/ai-services/openai/reference):
 *   the body and reply are OpenAI's; the body's "model" is optional and ignored, the
 *   deployment picks the model: the deployment's model name (--azure-deployment
 *   NAME=MODEL, else the deployment name) answers (its style) and is the reply's "model". A missing or malformed
 *   api-version answers 404 {"error": {"code": "404", "message": "Resource not found"}}
 *   as Azure does (MicrosoftDocs/azure-docs#114602; ThinkInAIXYZ/deepchat#262 quotes the
 *   body; learn.microsoft.com/answers/questions/1241073 for a malformed version). A bad
 *   key: 401 {"error": {"code": "401", "message": "Access denied due to invalid
 *   subscription key or wrong API endpoint. ..."}}. 429: {"error": {"code": "429",
 *   "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API
 *   version V have exceeded call rate limit ..."}} with retry-after and retry-after-ms.
 *   Success headers with a --limit: x-ratelimit-remaining-requests and -tokens.
 *
 * Tokens are words (chat.h). A reply longer than max_tokens words is cut with
 * finish_reason "length"; a stop string cuts it before the stop with "stop".
 *
 * Reasoning (docs/fakellm.md, "Reasoning models"): models named fake-reason* and
 * requests with reasoning_effort spend reasoning tokens (none/minimal 0, low 64,
 * medium 256, high 1024, xhigh 2048, max 4096) inside max_completion_tokens,
 * reported in usage.completion_tokens_details.reasoning_tokens; a fake-reason*
 * model refuses max_tokens, top_p and temperature != 1 as OpenAI's o-series and
 * GPT-5 do ("Unsupported value: 'temperature' does not support 0.01 with this
 * model. Only the default (1) value is supported.", code unsupported_value,
 * quoted in owndev/Open-WebUI-Functions#98 and holoviz/lumen#1087).
 * usage.prompt_tokens_details.cached_tokens counts the leading system/developer
 * messages; every 200 has an x-request-id header. */
#ifndef FAKELLM_OPENAI_H
#define FAKELLM_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "front.h"
#include "reply.h"

/* Models whose name starts with this reason before answering (openai.h). */
#define FAKELLM_REASONING_PREFIX "fake-reason"

/* 1 when model (may be NULL) is a reasoning model: its name starts with
 * FAKELLM_REASONING_PREFIX. */
int fakellm_openai_reasoning_model(const char *model);

/* The context of an OpenAI request (created, request_id, mode). */
typedef fakellm_ctx fakellm_openai_ctx;

/* Answers one chat-completions request body (len bytes, need not be
 * NUL-terminated). Fills out with a 200 completion (out->model and
 * out->tokens set) or a 400 error in the OpenAI shape. Returns EMPQ_OK when
 * out is filled, whatever its status; EMPQ_ENOMEM when it could not be (out
 * is then cleared). */
int fakellm_openai_chat(const char *body, size_t len, const fakellm_ctx *ctx, fakellm_reply *out);

/* Checks an Authorization header value (may be NULL) against require_key
 * (NULL: anything goes). Returns 1 when allowed; 0 after filling out with
 * the 401 the API gives (no key, or a wrong one named by its ends only);
 * *rc is EMPQ_ENOMEM when out could not be filled. */
int fakellm_openai_auth(const char *authorization, const char *require_key, fakellm_reply *out, int *rc);

/* Fills out with an OpenAI error body: status, message, type
 * "invalid_request_error" unless type is given, param and code (either may
 * be NULL: JSON null). Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_openai_error(fakellm_reply *out, unsigned status, const char *message, const char *type,
                         const char *param, const char *code);

/* An Azure request's path, query and headers. */
typedef struct fakellm_azure_in {
    const char *deployment;  /* from the path; never NULL */
    const char *api_version; /* ?api-version=, or NULL */
    const char *api_key;     /* the api-key header, or NULL */
    const char *require_key; /* --require-key, or NULL */
    const char *model;       /* the deployment's model name, or NULL (the deployment) */
} fakellm_azure_in;

/* Answers one Azure chat-completions request: 404 for a missing or malformed
 * api-version, 401 for a missing or wrong key, else as fakellm_openai_chat
 * with the deployment as the model. Returns as fakellm_openai_chat. */
int fakellm_azure_chat(const char *body, size_t len, const fakellm_azure_in *in, const fakellm_ctx *ctx,
                       fakellm_reply *out);

/* Fills out with an Azure error body {"error": {"code": code, "message": message}}. */
int fakellm_azure_error(fakellm_reply *out, unsigned status, const char *code, const char *message);

#endif
