/* style.h: the fake models' replies.
 *
 * A reply is a pure function of (model name, messages, variant): the same
 * input gives byte-identical text on every machine. Each fake model has its
 * own recognisable style, so a style analysis downstream can tell them apart:
 *
 *   fake-warm     2-3 sentences, 1-3 emojis, exclamation marks, "you"/"your"
 *   fake-formal   5-7 sentences, no emoji, no '!', apologies, "I understand"
 *   fake-brief    one sentence of 6-12 words, no emoji, no question
 *   fake-curious  4-5 sentences with 2-3 questions, "I wonder", "I'd love to
 *                 know", "thank you for sharing"
 *   anything else a plain neutral style, 2-3 sentences
 *
 * Replies are composed from phrase tables (style.c) picked by an FNV-1a hash
 * of the model and every message, and echo a few words of the last user
 * message (with "my" turned into "your") and an emotion word when it has one.
 *
 * Provider-neutral: the OpenAI, and later Gemini and Anthropic, front ends
 * all turn their request into an array of fakellm_msg and call this. */
#ifndef FAKELLM_STYLE_H
#define FAKELLM_STYLE_H

#include <stddef.h>
#include <stdint.h>

#include "empq/util.h"

/* One message of a conversation. role and content are borrowed, never NULL
 * (use "" for an empty content). */
typedef struct fakellm_msg {
    const char *role;
    const char *content;
} fakellm_msg;

typedef enum fakellm_style {
    FAKELLM_STYLE_NEUTRAL = 0,
    FAKELLM_STYLE_WARM,
    FAKELLM_STYLE_FORMAL,
    FAKELLM_STYLE_BRIEF,
    FAKELLM_STYLE_CURIOUS
} fakellm_style;

/* The style a model name selects: the fake-* names above, otherwise
 * FAKELLM_STYLE_NEUTRAL. model may be NULL (neutral). */
fakellm_style fakellm_style_for_model(const char *model);

/* Constant name of a style ("warm"); never NULL, never freed. */
const char *fakellm_style_name(fakellm_style style);

/* FNV-1a 64 over the model and every (role, content), with separators, so
 * ("ab","c") and ("a","bc") differ. model may be NULL (hashed as ""); msgs
 * may be NULL when n == 0. */
uint64_t fakellm_style_hash(const char *model, const fakellm_msg *msgs, size_t n);

/* Appends the reply for (model, msgs) to out. variant selects another
 * equally deterministic reply (choice index for n > 1; 0 for the first).
 * Returns EMPQ_OK, or EMPQ_ENOMEM (out then holds a partial text; the
 * caller frees it either way with empq_buf_free). */
int fakellm_style_reply(const char *model, const fakellm_msg *msgs, size_t n, unsigned variant,
                        empq_buf *out);

/* Number of words (maximal runs of non-whitespace bytes) in s; s may be NULL
 * (0). The fake server counts one token per word. */
size_t fakellm_count_words(const char *s);

/* Byte length of the prefix of s that holds its first max_words words,
 * without the whitespace after the last one; strlen(s) when s has no more
 * than max_words words. s must not be NULL. */
size_t fakellm_prefix_words(const char *s, size_t max_words);

#endif
