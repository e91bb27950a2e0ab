/* cachekey.h: the key of the response cache (empq:cache:{hex}).
 *
 * The key is the SHA-256 (lowercase hex) of the canonical JSON of the
 * request: jansson with sorted keys, compact, of
 *
 *   provider, base_url (as written in the spec, before ${VAR} expansion),
 *   model, api_version, messages ([{role: system, content}, {role: user,
 *   content}], the system message left out when NULL or empty), every
 *   generation parameter that is set (temperature, top_p, max_tokens, seed,
 *   stop, max_completion_tokens, reasoning_effort, system_role,
 *   thinking_budget, include_thoughts, safety_settings), extra_body (the
 *   parsed object) when set, the output kind when set ("judge": the request
 *   asks for a verdict in the provider's structured output,
 *   include/empq/judge.h), and sample.
 *
 * Unset values (NULL strings, parameters without their has_* flag, an empty
 * stop list) are absent from the JSON, not null. The run is not part of the
 * key, nor are the alias, limits, prices, timeouts or API key: a new run over
 * the same requests is served from the cache. See docs/internals.md. */
#ifndef EMPQ_CACHEKEY_H
#define EMPQ_CACHEKEY_H

#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"

#ifndef EMPQ_CACHE_KEY_HEX
#define EMPQ_CACHE_KEY_HEX 65 /* 64 hex digits and NUL (also in store.h) */
#endif

/* Computes the cache key of one request of model m (not NULL) with the
 * rendered system message (may be NULL or "": left out) and user message
 * (not NULL), for sample index sample. On EMPQ_OK out holds 64 lowercase hex
 * digits and a NUL. On failure out is "" and the code is EMPQ_EINVAL (NULL
 * argument, or a text that is not valid UTF-8, named in err) or EMPQ_ENOMEM. */
int empq_cachekey(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                  char out[EMPQ_CACHE_KEY_HEX], empq_error *err);

#endif
