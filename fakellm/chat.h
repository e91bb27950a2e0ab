/* chat.h: the provider-neutral middle of every fake model route.
 *
 * Each front end (openai.c for OpenAI and Azure OpenAI, gemini.c,
 * anthropic.c) parses its provider's request body into a fakellm_chat,
 * asks fakellm_chat_answer for each choice, and writes the answer back in
 * its provider's response shape. So the words a model says, the token
 * counts, the max-tokens cut and the stop-sequence cut are the same whatever
 * the wire format, and only the shapes differ.
 *
 * Tokens are words (style.h): the prompt counts 3 + sum over messages of
 * (4 + words of content), the completion the words of the reply.
 *
 * What the server asks for (fakellm_ctx.mode), chosen by the fault flags:
 *   NORMAL   the styled reply
 *   REFUSAL  a refusal in the provider's shape (the text below)
 *   EMPTY    an empty reply text
 *   HUGE     the styled reply followed by a marker (FAKELLM_PAD_MARK) that
 *            fakellm_reply_mark_pad turns into a padding position, so the
 *            server can stream megabytes of filler inside the text without
 *            holding them in memory
 *   NUL      no reply text at all (OpenAI content null, Anthropic content [],
 *            Gemini a candidate without content)
 *   THINKING_ONLY  reasoning (c->reasoning tokens, FAKELLM_THINK_DEFAULT when
 *            the request asked for none) and no answer text, finish normal
 *   LENGTH_EMPTY   a length stop before any text: the reasoning used the
 *            whole budget (max_tokens, else the reasoning need)
 *   SAFETY   a safety block: no text (OpenAI content_filter, Anthropic
 *            refusal, Gemini SAFETY honouring safetySettings)
 *
 * Reasoning (OpenAI reasoning tokens, Anthropic thinking, Gemini thoughts):
 * a request whose c->reasoning is R > 0 spends R tokens before the answer,
 * inside the same budget: with max_tokens M > 0 and R >= M the answer is
 * empty, reasoning M, finish LENGTH; else the answer is cut at M - R words.
 * The thinking text shown (Anthropic thinking block, Gemini thought part) is a
 * short summary (fakellm_chat_thinking); the count is R whatever its length. */
#ifndef FAKELLM_CHAT_H
#define FAKELLM_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "reply.h"
#include "style.h"

#define FAKELLM_MAX_STOPS 5

/* The refusal sentence the fake models use. */
#define FAKELLM_REFUSAL_TEXT "I'm sorry, but I can't help with that request."

typedef enum fakellm_mode {
    FAKELLM_MODE_NORMAL = 0,
    FAKELLM_MODE_REFUSAL,
    FAKELLM_MODE_EMPTY,
    FAKELLM_MODE_HUGE,
    FAKELLM_MODE_NUL,
    FAKELLM_MODE_THINKING_ONLY,
    FAKELLM_MODE_LENGTH_EMPTY,
    FAKELLM_MODE_SAFETY
} fakellm_mode;

/* Reasoning tokens of the thinking-only and length-empty faults when the
 * request asked for no reasoning. */
#define FAKELLM_THINK_DEFAULT 256

/* Per-request values the server supplies, so replies are testable. */
typedef struct fakellm_ctx {
    uint64_t created;        /* Unix seconds ("created", ids) */
    uint64_t request_id;     /* unique per request; makes ids unique */
    fakellm_mode mode;       /* NORMAL unless a fault asks otherwise */
    const char *model;       /* Azure: the deployment's model name to report; else NULL */
    const char *path_model;  /* Gemini and Azure: the model named in the path; else NULL */
} fakellm_ctx;

/* A parsed request. Strings are borrowed from the parsed JSON, except the
 * contents joined from parts, which the chat owns. */
typedef struct fakellm_chat {
    const char *model;
    fakellm_msg *msgs;
    size_t n_msgs;
    char **owned;          /* contents built here, freed with the chat */
    size_t n_owned, cap_owned;
    long long max_tokens;  /* 0 = no limit */
    long long n;           /* choices, >= 1 */
    long long reasoning;   /* tokens spent reasoning before the answer; 0 = none */
    const char *stops[FAKELLM_MAX_STOPS];
    size_t n_stops;
    long long seed;        /* the request's seed (OpenAI seed, Gemini generationConfig.seed); 0 = none.
                              Only the fake judges use it (judge.h): samples differ in their noise */
} fakellm_chat;

/* Allocates room for n messages (and n owned texts) in c, which must be
 * zeroed. Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_chat_alloc(fakellm_chat *c, size_t n);

/* Appends one message (role and content borrowed or owned by c). */
void fakellm_chat_add(fakellm_chat *c, const char *role, const char *content);

/* Takes ownership of text (freed with c) and returns it. The caller must
 * have allocated room with fakellm_chat_alloc. */
const char *fakellm_chat_own(fakellm_chat *c, char *text);

/* Frees what c owns and zeroes it; c may be NULL. */
void fakellm_chat_free(fakellm_chat *c);

/* Prompt tokens: 3 + sum of (4 + words of content). */
uint64_t fakellm_chat_prompt_tokens(const fakellm_chat *c);

/* Why an answer ended. */
typedef enum fakellm_finish {
    FAKELLM_FINISH_STOP = 0, /* the reply ended */
    FAKELLM_FINISH_LENGTH,   /* cut at max_tokens words */
    FAKELLM_FINISH_STOP_SEQ, /* cut before a stop sequence */
    FAKELLM_FINISH_REFUSAL   /* the model refused (mode REFUSAL) */
} fakellm_finish;

/* One choice's answer. text is owned (free with fakellm_answer_clear). */
typedef struct fakellm_answer {
    char *text;
    uint64_t tokens;       /* words of text, without any huge padding */
    uint64_t reasoning;    /* reasoning tokens spent before the text */
    fakellm_finish finish;
    const char *stop_seq;  /* the stop sequence that cut it (borrowed), or NULL */
} fakellm_answer;

/* Answers choice `variant` of c in mode: NORMAL and HUGE give the styled
 * reply cut at the first stop sequence and then at max_tokens words (HUGE
 * appends FAKELLM_PAD_MARK after the cut), after c->reasoning tokens of
 * reasoning (see above); REFUSAL gives FAKELLM_REFUSAL_TEXT; EMPTY, NUL and
 * SAFETY give "" (finish STOP; the front end shapes them);
 * THINKING_ONLY and LENGTH_EMPTY give "" with reasoning. Returns EMPQ_OK or
 * EMPQ_ENOMEM. */
int fakellm_chat_answer(const fakellm_chat *c, unsigned variant, fakellm_mode mode, fakellm_answer *out);

/* A short deterministic summary of the reasoning of choice variant (the
 * text of an Anthropic thinking block or a Gemini thought part); owned by
 * the caller (free). NULL when out of memory. */
char *fakellm_chat_thinking(const fakellm_chat *c, unsigned variant);

/* Frees a's text and zeroes it; a may be NULL. */
void fakellm_answer_clear(fakellm_answer *a);

/* A 64-bit mixer (splitmix64 finaliser). */
uint64_t fakellm_mix64(uint64_t x);

/* Writes prefix followed by n base62 characters derived from seed into out
 * (cap bytes with the NUL). */
void fakellm_make_id(char *out, size_t cap, const char *prefix, size_t n, uint64_t seed);

/* The name of a JSON value's type for error messages ("an object", "a
 * string", ...); v may be NULL ("null"). Declared here for every front end. */
struct json_t;
const char *fakellm_json_type_name(const struct json_t *v);

#endif
