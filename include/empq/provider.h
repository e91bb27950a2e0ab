/* provider.h: the LLM providers' wire formats, without any transport.
 *
 * An adapter turns (ModelSpec, rendered system and user messages, API key)
 * into an HTTP request (method, URL, "Name: value" headers, JSON body), and
 * an HTTP reply (status, a few headers, body) into a Generation plus a
 * classification: success, retryable or permanent. libcurl and sockets live
 * in the worker; this module only builds and reads bytes, so every format is
 * unit tested exactly.
 *
 * Providers (ModelSpec.provider):
 *   openai             POST {base_url}/chat/completions, Authorization: Bearer
 *                      (base_url defaults to https://api.openai.com/v1)
 *   openai-compatible  the same format; base_url required, key optional
 *                      (vLLM, TGI, llama.cpp, Ollama, empq-fakellm)
 *   azure-openai       POST {base_url}/openai/deployments/{model}/chat/completions
 *                      ?api-version={api_version or 2024-10-21}, api-key: KEY
 *   anthropic          POST {base_url}/messages (base_url defaults to
 *                      https://api.anthropic.com/v1), x-api-key: KEY,
 *                      anthropic-version: {api_version or 2023-06-01};
 *                      max_tokens defaults to 1024 (the API requires it);
 *                      no seed (the API has none)
 *   gemini             POST {base_url}/models/{model}:generateContent (base_url
 *                      defaults to https://generativelanguage.googleapis.com/v1beta),
 *                      x-goog-api-key: KEY; parameters in generationConfig
 *   human              no backend: never passed here.
 *
 * Refusals: a model that refuses in words (OpenAI message.refusal, Anthropic
 * stop_reason "refusal" with text) is a success with gen.refusal set: the
 * refusal is the study's data.
 *
 * What counts as an answer: a 2xx reply is a success only when it has
 * answer text. Thinking (Anthropic thinking blocks, Gemini parts with
 * thought: true, vLLM reasoning_content) is never part of the text; it is
 * kept in gen.thinking only with ModelSpec.keep_thinking. A reply without
 * text has a reason of its own, and keeps its usage and ids in gen (text
 * NULL) for the dead letter and the cost:
 *   blocked:REASON (finish_reason content_filter, Gemini blockReason or a
 *   SAFETY-like finish; a content-policy 400 is blocked:content_policy),
 *   refusal, reasoning_exhausted_budget (a length stop after reasoning),
 *   length_before_text: permanent; thinking_only and empty_reply: retryable
 *   (another sample may answer).
 *
 * Errors that hold for every job of a model (OpenAI insufficient_quota and
 * billing codes, Anthropic billing_error / permission_error and the "credit
 * balance is too low" 400, Google PERMISSION_DENIED and a per-day
 * QuotaFailure, HTTP 402, 403; not 401: another worker's key may work) are permanent with model_fatal set and a reason starting
 * with the error's name ("insufficient_quota: HTTP 429: ..."). Google's
 * RetryInfo.retryDelay in an error body counts like Retry-After.
 *
 * Generation parameters: only the ones set in ModelSpec.params are sent,
 * under the provider's names (docs/spec.md's table), then extra_body is
 * merged in (it never replaces a field set here).
 * The seed sent for sample s is params.seed + s, so the samples of one
 * prompt differ while each stays reproducible (sample 0 sends the seed as
 * written).
 *
 * Secrets: an API key appears in the request headers only. Reasons and
 * excerpts produced here never contain it (they are passed through
 * empq_provider_redact with the key). */
#ifndef EMPQ_PROVIDER_H
#define EMPQ_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"

#define EMPQ_HTTP_MAX_HEADERS 8
#define EMPQ_PROVIDER_REASON_MAX 200

/* An HTTP request to send. Every pointer is owned by the struct; free with
 * empq_http_request_clear. Zero-initialise before the first use. */
typedef struct empq_http_request {
    const char *method;                       /* "POST"; static, not freed */
    char *url;
    char *headers[EMPQ_HTTP_MAX_HEADERS];     /* "Name: value" */
    size_t n_headers;
    char *body;                               /* NUL-terminated JSON */
    size_t body_len;
} empq_http_request;

/* Frees what r holds and zeroes it; r may be NULL. */
void empq_http_request_clear(empq_http_request *r);

/* An HTTP reply as the transport received it. Nothing is owned. */
typedef struct empq_http_reply {
    long status;              /* HTTP status; 0 when no reply arrived */
    const char *body;         /* may be NULL when body_len == 0 */
    size_t body_len;
    const char *retry_after;  /* Retry-After header value, or NULL */
    const char *retry_after_ms; /* retry-after-ms header value (Azure/OpenAI), or NULL */
    int truncated;            /* the body was cut (transfer error) */
    int too_large;            /* the body passed the transport's size cap: cut there */
    const char *transport_error; /* when status == 0: why (curl text), or NULL */
    const char *request_id;   /* x-request-id (OpenAI, Azure) or request-id (Anthropic), or NULL */
} empq_http_reply;

/* What a reply means for the job. */
typedef enum empq_provider_class {
    /* a generation: gen is filled (refusal set when the model refused in text) */
    EMPQ_PROVIDER_SUCCESS = 0,
    /* try again later: 408, 409, 429, 5xx, no reply, malformed or cut body */
    EMPQ_PROVIDER_RETRYABLE = 1,
    /* do not try again: 400, 401, 403, 404, 422 and other 4xx, redirects,
     * the provider blocked the content, a reply past the size cap
     * ("reply_too_large": the same request would get it again) */
    EMPQ_PROVIDER_PERMANENT = 2
} empq_provider_class;

/* Short constant name ("success", "retryable", "permanent"). */
const char *empq_provider_class_name(empq_provider_class c);

/* The reading of one reply. Strings in gen (text, finish_reason,
 * model_reported) are owned by the struct; free with
 * empq_provider_result_clear. latency_ms and created_ms are left to the
 * caller, who knows the times. */
typedef struct empq_provider_result {
    empq_provider_class cls;
    Empq__Generation gen;       /* initialised with EMPQ__GENERATION__INIT */
    uint32_t retry_after_ms;    /* > 0 when the provider asked for a delay */
    long status;                /* the HTTP status (0: no reply) */
    char reason[EMPQ_PROVIDER_REASON_MAX]; /* "" on success; never holds the key */
    /* PERMANENT for a cause that holds for every job of the model (quota,
     * billing, permission, key): Outcome.model_fatal */
    int model_fatal;
} empq_provider_result;

/* Frees the strings of r and re-initialises it; r may be NULL. */
void empq_provider_result_clear(empq_provider_result *r);

/* Returns 1 when provider has an adapter here, 0 otherwise (also for
 * "human", which needs none, and NULL). */
int empq_provider_supported(const char *provider);

/* Method, URL and headers for model m: the part of a request that is the
 * same for every prompt, so a caller builds it once per (run, model).
 * base_url is the expanded URL (the spec's ${VAR} already replaced), or NULL
 * to use m->base_url as written or the provider's default. api_key may be
 * NULL (no auth header). On EMPQ_OK out->url and out->headers are set and
 * out->body is NULL; out must be zeroed or cleared before the call.
 * EMPQ_EINVAL when the provider is unknown, not supported yet, or needs a
 * field that is missing (err says which). */
int empq_provider_endpoint(const Empq__ModelSpec *m, const char *base_url, const char *api_key,
                           empq_http_request *out, empq_error *err);

/* The JSON body for one request of model m: the rendered system message
 * (NULL or "" for none), the rendered user message, and the sample index.
 * On EMPQ_OK *body (NUL-terminated, caller frees) and *len (len may be
 * NULL). EMPQ_EINVAL for an unsupported provider or a NULL user message;
 * EMPQ_ENOMEM. */
int empq_provider_body(const Empq__ModelSpec *m, const char *system, const char *user,
                       uint32_t sample, char **body, size_t *len, empq_error *err);

/* Checks that m->extra_body (a JSON object; NULL or "" passes) sets no
 * field empq sets for m's provider, by building a sample body with a
 * system and a user message. EMPQ_OK; EMPQ_EINVAL with err's text starting
 * with the conflicting field's path and a quote ("generationConfig.topP':
 * provider gemini: empq sets this field ..."); EMPQ_ENOMEM. */
int empq_provider_check_extra(const Empq__ModelSpec *m, empq_error *err);

/* empq_provider_endpoint and empq_provider_body together. */
int empq_provider_request(const Empq__ModelSpec *m, const char *base_url, const char *system,
                          const char *user, uint32_t sample, const char *api_key,
                          empq_http_request *out, empq_error *err);

/* Reads a reply for model m into out (which it initialises; clear it after,
 * whatever the class). api_key (may be NULL) is removed from the reason.
 * now_ms is the wall clock, used to turn a Retry-After HTTP date into a
 * delay. Always returns EMPQ_OK except EMPQ_EINVAL for an unsupported
 * provider or NULL arguments; the verdict is out->cls. */
int empq_provider_parse(const Empq__ModelSpec *m, const empq_http_reply *reply, const char *api_key,
                        uint64_t now_ms, empq_provider_result *out);

/* Parses a Retry-After value: delay-seconds ("120", fractions accepted) or an
 * HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT", RFC 9110 IMF-fixdate) relative to
 * now_ms. On EMPQ_OK *ms is the delay in milliseconds (0 for a past date,
 * capped at one day). EMPQ_EPARSE when the value is neither. */
int empq_retry_after_parse(const char *value, uint64_t now_ms, uint32_t *ms);

/* Classifies an HTTP status alone: 2xx success, 408/409/425/429/5xx and 0
 * retryable, anything else permanent. */
empq_provider_class empq_provider_classify_status(long status);

/* Replaces every occurrence of key (when key is non-NULL and at least 4
 * characters) in the NUL-terminated s with "***", in place (s never grows). */
void empq_provider_redact(char *s, const char *key);

/* Copies at most outlen-1 bytes of body into out for a dead letter or a
 * log: control characters become spaces, a cut UTF-8 sequence at the end is
 * dropped, the key is redacted. Returns out. */
char *empq_provider_excerpt(const char *body, size_t len, const char *key, char *out, size_t outlen);

#endif
