/* gemini.h: the Gemini API generateContent wire format.
 *
 * POST /v1beta/models/{model}:generateContent (also /v1/...), key in the
 * "x-goog-api-key" header or the "key" query parameter. Matched against the
 * REST reference, https://ai.google.dev/api/generate-content (models.generateContent,
 * GenerateContentRequest, GenerateContentResponse, Candidate, UsageMetadata) and
 * https://ai.google.dev/api/generate-content#v1beta.GenerationConfig:
 *
 *   request  {"contents": [{"role": "user" | "model", "parts": [{"text": str}, ...]}, ...],
 *             "systemInstruction": {"parts": [{"text": str}]},
 *             "generationConfig": {"temperature": 0..2, "topP": 0..1, "topK": int,
 *                                  "maxOutputTokens": >= 1, "stopSequences": [str] (<= 5),
 *                                  "candidateCount": 1..8, "seed": int, ...},
 *             "safetySettings": [{"category": "HARM_CATEGORY_...", "threshold": "BLOCK_..."}], ...}
 *            Field names in lowerCamelCase or snake_case, as protobuf JSON accepts.
 *            Unknown fields are refused, as the real API does: 400
 *            'Invalid JSON payload received. Unknown name "x": Cannot find field.'
 *   response {"candidates": [{"content": {"parts": [{"text": str}], "role": "model"},
 *                             "finishReason": "STOP" | "MAX_TOKENS", "index": 0,
 *                             "safetyRatings": [{"category": "HARM_CATEGORY_...",
 *                                                "probability": "NEGLIGIBLE"}, x4]}],
 *             "usageMetadata": {"promptTokenCount": N, "candidatesTokenCount": M,
 *                               "totalTokenCount": N+M},
 *             "modelVersion": model, "responseId": str}
 *            A stop sequence ends the text with finishReason "STOP" (Gemini has no
 *            separate reason for it).
 *   refusal  a safety block, in one of the two shapes the API uses (alternating by
 *            request): the candidate without content, finishReason "SAFETY" and one
 *            rating {"probability": "HIGH", "blocked": true} (a real reply quoted in
 *            CherryHQ/cherry-studio#664); or no candidates and
 *            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [...]}
 *            (GenerateContentResponse.promptFeedback). usageMetadata then counts the
 *            prompt only.
 *   empty    the candidate's content without parts: {"role": "model"}, finishReason "STOP".
 *   errors   google.rpc.Status as JSON: {"error": {"code": 400, "message": str,
 *            "status": "INVALID_ARGUMENT"}} (https://ai.google.dev/gemini-api/docs/troubleshooting);
 *            a wrong key: 400 "API key not valid. Please pass a valid API key." with the
 *            ErrorInfo reason API_KEY_INVALID detail (the body quoted in
 *            cequence-io/openai-scala-client#109); no key: 403 PERMISSION_DENIED;
 *            429 RESOURCE_EXHAUSTED "Resource has been exhausted (e.g. check quota)."
 *            (continuedev/continue#10729) with a google.rpc.RetryInfo detail and
 *            Retry-After; 500 INTERNAL; 503 UNAVAILABLE "The model is overloaded. Please
 *            try again later.". The API sends no rate-limit headers.
 *
 * Also (docs/fakellm.md, "Reasoning models"): generationConfig.thinkingConfig
 * {thinkingBudget, includeThoughts, thinkingLevel}: thoughts counted in
 * usageMetadata.thoughtsTokenCount and inside maxOutputTokens, shown as parts
 * with "thought": true; safetySettings honoured by the safety fault. The
 * quota fault: 429 RESOURCE_EXHAUSTED "You exceeded your current quota, ..."
 * with a QuotaFailure violation quotaId GenerateRequestsPerDayPerProjectPerModel,
 * a Help link and RetryInfo retryDelay "36s" (the shape of real daily-quota
 * bodies quoted in diegosouzapw/OmniRoute#9504 and RooCodeInc/Roo-Code#3883: a
 * per-day quota says so in quotaId, not in a long retryDelay). */
#ifndef FAKELLM_GEMINI_H
#define FAKELLM_GEMINI_H

#include <stddef.h>

#include "chat.h"
#include "front.h"
#include "reply.h"

/* A Gemini request's path and key. */
typedef struct fakellm_gemini_in {
    const char *model;       /* from the path; never NULL */
    const char *api_key;     /* x-goog-api-key, else ?key=, else NULL */
    const char *require_key; /* --require-key, or NULL */
} fakellm_gemini_in;

/* Answers one generateContent request body. Fills out with a 200 (out->model
 * and out->tokens set) or an error in the Gemini shape. Returns EMPQ_OK when
 * out is filled, whatever its status; EMPQ_ENOMEM when it could not be (out
 * is then cleared). */
int fakellm_gemini_generate(const char *body, size_t len, const fakellm_gemini_in *in, const fakellm_ctx *ctx,
                            fakellm_reply *out);

/* The key check of every Gemini endpoint: with require_key set, no api_key
 * is the API's 403 PERMISSION_DENIED and another key its 400
 * API_KEY_INVALID. Returns 1 when the key passes; 0 after filling out (*rc
 * EMPQ_OK, or EMPQ_ENOMEM when out could not be filled). */
int fakellm_gemini_auth(const char *api_key, const char *require_key, fakellm_reply *out, int *rc);

/* Fills out with {"error": {"code": status, "message": message, "status": rpc_status}}.
 * Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_gemini_error(fakellm_reply *out, unsigned status, const char *rpc_status, const char *message);

/* Extracts MODEL from "/v1beta/models/MODEL:generateContent" or
 * "/v1/models/MODEL:generateContent" into out (cap bytes). Returns 1 when
 * path has that shape, 0 otherwise. */
int fakellm_gemini_path_model(const char *path, char *out, size_t cap);

#endif
