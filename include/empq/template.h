/* template.h: the study's prompt templates.
 *
 * A template is text with placeholders filled from one prompt of the
 * dataset:
 *
 *   {emotion}    the emotion label            (Prompt.emotion)
 *   {situation}  the situation the speaker wrote (Prompt.situation)
 *   {prompt}     the speaker's turn           (Prompt.prompt)
 *   {id}         the dataset's id of the prompt (Prompt.id)
 *   {sentiment}  positive / negative          (Prompt.sentiment)
 *   {response}   the response a judge rates   (Prompt.response; set in
 *                judge runs only, docs/judge.md; "" elsewhere)
 *
 * `{{` and `}}` stand for literal braces. Anything else in braces is an
 * error, and so is a lone `{` or `}`: a misspelt placeholder is caught when
 * the spec is loaded, not after 10,000 requests. */
#ifndef EMPQ_TEMPLATE_H
#define EMPQ_TEMPLATE_H

#include "empq.pb-c.h"
#include "empq/error.h"

/* Checks tmpl (NUL-terminated, not NULL). Returns EMPQ_OK, or EMPQ_ESPEC
 * with err naming the unknown placeholder or the unmatched brace and its
 * 1-based character position ("unknown placeholder '{emotions}' at
 * character 14 ..."). EMPQ_EINVAL when tmpl is NULL. */
int empq_template_check(const char *tmpl, empq_error *err);

/* Renders tmpl with the fields of p (not NULL); a NULL field renders as "".
 * On EMPQ_OK *out is a NUL-terminated string the caller frees with free().
 * On failure *out is NULL and the code is EMPQ_ESPEC (as in
 * empq_template_check), EMPQ_EINVAL (tmpl, p or out NULL) or EMPQ_ENOMEM. */
int empq_template_render(const char *tmpl, const Empq__Prompt *p, char **out, empq_error *err);

#endif
