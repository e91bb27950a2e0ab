/* assign.h: the rating plan: which participant slot rates which responses.
 *
 * The design of the seed studies (Welivita & Pu 2024): every source of
 * responses (the human baseline and each model) is a condition; the
 * prompts are cut into batches of `items` dialogues; the batches are the
 * same in every condition; each (condition, batch) is rated by `raters`
 * participants (1 in the seed studies: 200 batches x 5 conditions = 1,000
 * participants), each participant rating exactly one batch of one
 * condition (between subjects).
 *
 * How the batches are made (deterministic from the seed):
 *   1. the prompts are grouped by emotion, the emotions in order of first
 *      appearance in the run, the prompts of one emotion shuffled;
 *   2. this list is dealt round robin: the j-th prompt goes to batch
 *      j mod n_batches.
 * So each emotion's prompts spread evenly over the batches (every batch
 * holds floor(c_e / B) or ceil(c_e / B) of emotion e's c_e prompts), and a
 * batch holds `items` different emotions whenever no emotion has more
 * prompts than there are batches (true for 2,000 prompts over 32 emotions
 * in 200 batches). Batch sizes differ by at most one.
 *
 * Slots: slot = (condition * n_batches + batch) * raters + replica. The
 * order a slot shows its batch in is shuffled per slot from the seed.
 * Attention checks (instructed-response items) are inserted at the given
 * 0-based positions of the shown order; each asks for one answer (1 Bad,
 * 2 Okay, 3 Good), drawn per slot from the seed.
 *
 * This module is pure (no Redis, no files): lib/ratings.c stores a plan,
 * cli/cmd_assign.c writes its files. The same inputs and seed give the same
 * plan and byte-identical plan.csv / plan.json. */
#ifndef EMPQ_ASSIGN_H
#define EMPQ_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/util.h"

#define EMPQ_ASSIGN_MAX_CHECKS 16
#define EMPQ_ASSIGN_MAX_CONDITIONS 64

/* An entry of a slot's shown order: a prompt index (>= 0), or an attention
 * check asking for rating k (1..3), written -k. */
#define EMPQ_ASSIGN_IS_CHECK(e) ((e) < 0)
#define EMPQ_ASSIGN_CHECK_EXPECT(e) ((int)-(e))

typedef struct empq_assign_opts {
    uint32_t items;        /* dialogues per participant (10) */
    uint32_t raters;       /* participants per (condition, batch) (1) */
    uint32_t participants; /* per condition; 0: whatever items and raters give */
    uint64_t seed;         /* (1) */
    uint32_t checks[EMPQ_ASSIGN_MAX_CHECKS]; /* 0-based positions in the shown order, ascending */
    size_t n_checks;
} empq_assign_opts;

/* Defaults: items 10, raters 1, participants 0 (derived), seed 1, no checks. */
void empq_assign_opts_default(empq_assign_opts *o);

typedef struct empq_assign_slot {
    uint32_t condition; /* index into plan->conditions */
    uint32_t batch;
    uint32_t replica;   /* 0..raters-1 */
    uint32_t n;         /* entries shown: the batch's items + the checks */
    int32_t *entries;   /* shown order (see EMPQ_ASSIGN_IS_CHECK) */
} empq_assign_slot;

typedef struct empq_assign_plan {
    uint32_t n_conditions;
    char **conditions;        /* aliases, in spec order */
    uint32_t n_prompts;       /* prompts of the run */
    uint32_t n_used;          /* prompts in the plan (those with every condition's response) */
    uint32_t items, raters, n_batches;
    uint64_t seed;
    uint32_t checks[EMPQ_ASSIGN_MAX_CHECKS];
    size_t n_checks;
    uint32_t *batch_off;      /* [n_batches + 1]: batch b holds batch_prompts[batch_off[b] .. batch_off[b+1]) */
    uint32_t *batch_prompts;  /* [n_used] prompt indices, each batch in ascending order */
    size_t n_slots;           /* n_conditions * n_batches * raters */
    empq_assign_slot *slots;
} empq_assign_plan;

/* Builds a plan. conditions: n_conditions aliases (1..64); emotions:
 * n_prompts labels (prompt i's emotion; not NULL); usable (may be NULL:
 * all) marks the prompts that may go into the plan (e.g. those with a
 * response from every condition). When o->participants is not 0 it must
 * equal n_batches * raters, else EMPQ_EINVAL says what would fit.
 * On EMPQ_OK *out is the caller's (empq_assign_free). EMPQ_EINVAL (err
 * names the option) for items 0, raters 0, no usable prompt, a check
 * position past the end, or more than 64 conditions; EMPQ_ENOMEM. */
int empq_assign_build(const char *const *conditions, uint32_t n_conditions,
                      const char *const *emotions, uint32_t n_prompts, const uint8_t *usable,
                      const empq_assign_opts *o, empq_assign_plan **out, empq_error *err);

/* Frees *p and sets it to NULL; p and *p may be NULL. */
void empq_assign_free(empq_assign_plan **p);

/* The text of the attention check asking for rating expect (1..3): a
 * static string, never freed. situation/prompt/response of the item. */
const char *empq_assign_check_response(int expect);
const char *empq_assign_check_situation(void);
const char *empq_assign_check_prompt(void);

/* "Bad", "Okay", "Good" for 1..3; "" otherwise. */
const char *empq_assign_rating_label(int rating);

/* Appends plan.csv (RFC 4180, CRLF, header) to out: one row per shown
 * entry: slot, condition, batch, replica, position, kind (item|check),
 * prompt_index, item (prompt id, or "check-<slot>-<position>"), emotion,
 * expected (the asked rating of a check), situation, prompt, response.
 * prompts[i] is prompt i (may be NULL: its text columns are empty);
 * responses[i * n_conditions + c] the response of condition c to prompt
 * i (may be NULL or hold NULLs). Returns EMPQ_OK or EMPQ_ENOMEM. */
int empq_assign_write_csv(const empq_assign_plan *p, Empq__Prompt *const *prompts,
                          const char *const *responses, empq_buf *out, empq_error *err);

/* Appends plan.json to out: {"run":..., "conditions":[...], "items", "raters",
 * "batches", "participants_per_condition", "participants", "seed",
 * "attention_checks":[...], "prompts", "prompts_used", "batch_prompts":
 * [[prompt index...]...], "slots":[{"slot","condition","batch","replica",
 * "entries":[...]}...]} with entries as in empq_assign_slot, then a newline.
 * run may be NULL. Returns EMPQ_OK or EMPQ_ENOMEM. */
int empq_assign_write_json(const empq_assign_plan *p, const char *run, empq_buf *out,
                           empq_error *err);

#endif
