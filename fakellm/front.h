/* front.h: what every provider front end offers the server besides its
 * request handler: its error bodies for the errors the server itself raises
 * (a --limit exceeded, injected 429/500/503) and its rate-limit headers.
 *
 * The front ends and their sources (what each one matches is cited in its
 * header):
 *   openai.h     OpenAI chat completions and Azure OpenAI
 *   gemini.h     Gemini generateContent
 *   anthropic.h  Anthropic Messages */
#ifndef FAKELLM_FRONT_H
#define FAKELLM_FRONT_H

#include "limits.h"
#include "reply.h"

/* An error the server raises on a model route. */
typedef enum fakellm_errkind {
    FAKELLM_ERR_LIMIT = 0, /* 429: a --limit was exceeded (admit says which) */
    FAKELLM_ERR_429,       /* 429: injected */
    FAKELLM_ERR_500,       /* 500: injected */
    FAKELLM_ERR_503,       /* overloaded: injected (503, or 529 for Anthropic) */
    FAKELLM_ERR_QUOTA      /* quota or billing exhausted: injected (OpenAI 429 insufficient_quota,
                              Anthropic 400 credit balance, Gemini 429 per-day QuotaFailure) */
} fakellm_errkind;

/* Replaces out's body and status with the error kind in the provider's
 * shape, and sets Retry-After (and the provider's retry headers) from
 * a->retry_after_ms for 429s. model names the model (may be NULL); a may be
 * NULL for 500/503. request_id makes the provider's request id. Returns
 * EMPQ_OK or EMPQ_ENOMEM. */
typedef int (*fakellm_error_fn)(fakellm_reply *out, fakellm_errkind kind, const char *model,
                                const fakellm_admit *a, uint64_t request_id);

/* Adds the provider's rate-limit headers for a model with a limit (a->has_limit)
 * to a successful reply. now_unix_ms is the wall clock (for RFC 3339 resets).
 * Returns EMPQ_OK or EMPQ_ENOMEM. */
typedef int (*fakellm_headers_fn)(fakellm_reply *out, const fakellm_admit *a, uint64_t now_unix_ms);

typedef struct fakellm_front {
    const char *name; /* "openai", "azure", "gemini", "anthropic" */
    fakellm_error_fn error;
    fakellm_headers_fn headers; /* may be NULL: the provider sends none */
} fakellm_front;

extern const fakellm_front fakellm_front_openai;
extern const fakellm_front fakellm_front_azure;
extern const fakellm_front fakellm_front_gemini;
extern const fakellm_front fakellm_front_anthropic;

/* Retry-After in whole seconds for ms (rounded up, at least 1). */
unsigned fakellm_retry_seconds(uint64_t ms);

/* Formats ms as OpenAI formats its x-ratelimit-reset-* values (a Go
 * duration: "0s", "12ms", "1.5s", "6m0s") into out. Returns out. */
char *fakellm_go_duration(char *out, size_t cap, uint64_t ms);

/* Formats a Unix time in ms as RFC 3339 UTC seconds ("2025-01-01T00:01:00Z"). */
char *fakellm_rfc3339(char *out, size_t cap, uint64_t unix_ms);

/* Matches path against prefix + one segment + suffix (the segment non-empty,
 * without '/', shorter than cap). Returns 1 and copies the segment into out
 * when it matches, else 0. */
int fakellm_path_segment(const char *path, const char *prefix, const char *suffix, char *out, size_t cap);

/* Serialises root compactly (keys in insertion order) into out's body with
 * status; steals root (decrefs it). Returns EMPQ_OK or EMPQ_ENOMEM (also when
 * root is NULL). */
struct json_t;
int fakellm_reply_json(fakellm_reply *out, unsigned status, struct json_t *root);

#endif
