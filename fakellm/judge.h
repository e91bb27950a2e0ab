/* judge.h: the fake judge models (fake-judge-*).
 *
 * A fake judge rates the response it is shown on the Good/Okay/Bad scale by
 * a fixed rule on the response's style, so what a judge run must find is
 * known in advance (docs/fakellm.md, "Judge models"):
 *
 *   the response: the text between the last "<response>" and the next
 *   "</response>" of the last user message (the whole message when it has
 *   no such tags);
 *   score = [words >= 15] + [words >= 30] + [a word starting with "you",
 *           any case] + [a '?'], 0..4 (words: runs of non-space bytes);
 *   fake-judge-lenient*  Good if score >= 2, Okay if 1, Bad if 0
 *   fake-judge-strict*   Good if score == 4, Okay if 2..3, Bad if <= 1
 *   other fake-judge-*   Good if score >= 3, Okay if 2, Bad if <= 1
 *
 * With noise P (fakellm_judge_set), a share P of the answers has its label
 * replaced by one of the two other labels, each with probability 1/2; the
 * draw is a pure function of (noise seed, model, messages, choice index,
 * the request's seed), so the same request always gets the same answer, and
 * the samples of a judge (the worker sends seed + sample when the spec sets
 * params.seed) draw apart. So the expected share of answers that follow the
 * rule is 1 - P, and two samples agree in 1 - 2P + 1.5P^2 of the responses.
 *
 * The answer is the JSON verdict {"label":"Good","reason":"score 3 of 4:
 * 31 words, 2 you-words, 1 question"}.
 *
 * Two judges that never give a valid verdict, for the strict reading:
 *   fake-judge-garbage   prose with no label ("judge_unparseable")
 *   fake-judge-offscale  {"label":"Excellent",...} ("judge_off_scale") */
#ifndef FAKELLM_JUDGE_H
#define FAKELLM_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "empq/util.h"
#include "style.h"

/* 1 when model (may be NULL) is a fake judge (its name starts with
 * "fake-judge"), else 0. */
int fakellm_judge_is_judge(const char *model);

/* Sets the noise P (0..1) and its seed for every later answer. Call before
 * the server starts (not thread-safe against answers in flight). */
void fakellm_judge_set(double noise, uint64_t seed);

/* The rule's label (1 Bad, 2 Okay, 3 Good) for a response text under judge
 * model, without noise; score (may be NULL) receives 0..4. */
int fakellm_judge_rule(const char *model, const char *response, int *score);

/* Appends the judge's answer for (model, msgs, variant, the request's seed:
 * 0 when it has none) to out. Returns EMPQ_OK or EMPQ_ENOMEM. */
int fakellm_judge_reply(const char *model, const fakellm_msg *msgs, size_t n, unsigned variant, long long seed,
                        empq_buf *out);

#endif
