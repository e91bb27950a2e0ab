/* ratings.h: rating slots in Redis: claim, answer, reclaim; and the export.
 *
 * A plan (include/empq/assign.h) stored for a run becomes a pool of slots.
 * A participant claims the open slot of the least-filled condition (fewest
 * slots claimed or done; ties to the lower condition index; within a
 * condition the lowest replica, then batch), answers its entries in order,
 * and is done. Every step is one Lua script, so it is atomic: a slot never
 * has two participants, a participant never holds two slots (arriving again
 * resumes the same slot). A slot idle longer than the timeout (no view, no
 * answer) goes back to the pool: its partial answers are archived, not
 * exported, and the participant who left it is told the session expired if
 * they come back (between subjects: they have seen one condition already).
 *
 * Keys (P = empq:run:{id}; docs/rating.md has the whole table):
 *   P:plan            HASH   n_conditions, n_models, samples, n_slots, items,
 *                            raters, batches, seed, checks, timeout_ms, code,
 *                            consent (1: claim needs consent), questions (count),
 *                            cond:{c} -> alias, s:{slot} -> "c b r e0 e1 ..."
 *   P:open:{c}        ZSET   open slots of condition c, score replica * B + batch
 *   P:fill            HASH   condition -> slots claimed or done
 *   P:active          ZSET   claimed, unfinished slots -> deadline (ms)
 *   P:slot:{slot}     HASH   pid, study, session, route, consent_ms, cond, score,
 *                            n, next, state (active|questions|done), started,
 *                            claimed, seen, done_ms, a:{pos} ->
 *                            "rating answered_ms", shown:{pos} -> ms,
 *                            q:{question id} -> the end-of-study answer
 *   P:who             HASH   participant -> slot, or "x{slot}" when it expired
 *   P:stats           HASH   claimed, done, reclaimed, ratings
 *   P:abandoned       LIST   JSON of each reclaimed slot's fields
 *
 * Every function takes `now_ms` (the caller's clock, so tests can move
 * time) where time matters. Functions return EMPQ_OK or a negative code;
 * what happened to the participant is an empq_ratings_outcome. */
#ifndef EMPQ_RATINGS_H
#define EMPQ_RATINGS_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/assign.h"
#include "empq/error.h"
#include "empq/store.h"

/* What a claim, start, view or answer did. */
typedef enum empq_ratings_outcome {
    EMPQ_RATINGS_OK = 0,       /* done as asked (claim: a new slot) */
    EMPQ_RATINGS_RESUMED,      /* claim: the participant already holds this slot */
    EMPQ_RATINGS_DUPLICATE,    /* answer: this position already has this rating (a resent form) */
    EMPQ_RATINGS_FULL,         /* claim: no open slot left */
    EMPQ_RATINGS_EXPIRED,      /* the participant's slot timed out and went back to the pool */
    EMPQ_RATINGS_UNKNOWN,      /* no such participant in this run */
    EMPQ_RATINGS_NOT_YOURS,    /* answer: the slot is not this participant's */
    EMPQ_RATINGS_STALE,        /* answer: not the position due now (an old form) */
    EMPQ_RATINGS_FINISHED,     /* answer: the participant has finished already */
    EMPQ_RATINGS_NOT_STARTED,  /* answer: the instructions were not confirmed yet */
    EMPQ_RATINGS_NO_PLAN,      /* the run has no plan */
    EMPQ_RATINGS_NO_CONSENT,   /* claim: the study asks for consent first; nothing was claimed */
    EMPQ_RATINGS_NOT_DUE       /* finish: the dialogues are not all rated yet */
} empq_ratings_outcome;

/* Short name of an outcome ("not_yours"); never NULL. */
const char *empq_ratings_outcome_name(int outcome);

/* Participant ids: 1-64 characters of [A-Za-z0-9_.-] (Prolific ids are
 * 24 hex digits). Returns 1 when id is one. */
int empq_ratings_valid_id(const char *id);

typedef struct empq_ratings_config {
    uint64_t timeout_ms;         /* idle time before a claimed slot is reclaimed (30 min) */
    const char *completion_code; /* shown at the end; NULL or "": none. [A-Za-z0-9_-], <= 64 */
    int consent;                 /* 1: a claim needs EMPQ_RATINGS_CONSENTED (spec rating.consent) */
    uint32_t questions;          /* end-of-study questions (spec rating.questions): 0 none */
} empq_ratings_config;

/* Sets consent and questions of c from a run's spec (rating section; spec
 * may be NULL, as may its rating section: no consent, no questions). */
void empq_ratings_config_from_spec(empq_ratings_config *c, const Empq__RunSpec *spec);

/* Defaults: timeout 30 minutes, no completion code, no consent step, no
 * questions. */
void empq_ratings_config_default(empq_ratings_config *c);

/* Stores plan p for run (n_models, samples: the run's, to find a
 * response's job index). EMPQ_EEXIST when the run has a plan and replace
 * is 0, or when replace is 1 but a slot was claimed already (err says so);
 * EMPQ_EINVAL for a bad completion code; EMPQ_ESTORE. */
int empq_ratings_store_plan(empq_store *s, const char *run_id, const empq_assign_plan *p,
                            uint32_t n_models, uint32_t samples, const empq_ratings_config *cfg,
                            int replace, empq_error *err);

/* Flags of a claim. */
#define EMPQ_RATINGS_PROLIFIC 1u  /* came by Prolific's link (PROLIFIC_PID): its completion page */
#define EMPQ_RATINGS_CONSENTED 2u /* agreed on the consent page */

/* Claims a slot for participant (valid id; study and session may be NULL;
 * flags: EMPQ_RATINGS_* above). *outcome: OK (new slot), RESUMED, FULL,
 * EXPIRED, NO_PLAN, or NO_CONSENT when the plan asks for consent, flags lack
 * EMPQ_RATINGS_CONSENTED and a slot is open (nothing is claimed then; RESUMED,
 * EXPIRED and FULL come first); *slot the slot for OK / RESUMED / EXPIRED.
 * Expired slots are reclaimed first. Returns EMPQ_OK (whatever the outcome),
 * EMPQ_EINVAL for an invalid id, EMPQ_ESTORE. */
int empq_ratings_claim(empq_store *s, const char *run_id, const char *participant,
                       const char *study, const char *session, unsigned flags, uint64_t now_ms,
                       int *outcome, uint32_t *slot, empq_error *err);

/* The participant has read the instructions. *outcome: OK (also when
 * started before), FINISHED, EXPIRED, UNKNOWN. */
int empq_ratings_start(empq_store *s, const char *run_id, const char *participant,
                       uint64_t now_ms, int *outcome, empq_error *err);

/* Saves a rating (1 Bad, 2 Okay, 3 Good; else EMPQ_EINVAL) of the entry
 * at position of slot. The last rating finishes the slot, or, when the plan
 * has questions, moves it to the questions (empq_ratings_finish). *outcome: OK, DUPLICATE (the same rating again:
 * nothing changes), NOT_YOURS, STALE (another position is due, or a
 * different rating for an answered position: nothing changes), FINISHED,
 * NOT_STARTED, EXPIRED, UNKNOWN. Returns EMPQ_OK whatever the outcome. */
int empq_ratings_answer(empq_store *s, const char *run_id, const char *participant,
                        uint32_t slot, uint32_t position, int rating, uint64_t now_ms,
                        int *outcome, empq_error *err);

/* Saves the end-of-study answers and finishes the slot, in one step.
 * values[i] answers spec->questions[i] (NULL or "": not answered): a
 * choice is its 0-based index in decimal, a free text at most max_length
 * characters of UTF-8 without control characters other than tab and line
 * breaks. EMPQ_EINVAL (err names the question, nothing stored) for a
 * missing required answer or a bad value. *outcome: OK, FINISHED (done
 * before: nothing changes), NOT_DUE (dialogues left), EXPIRED, UNKNOWN.
 * spec may be NULL (no questions). Returns EMPQ_OK whatever the outcome,
 * EMPQ_ESTORE. */
int empq_ratings_finish(empq_store *s, const char *run_id, const char *participant,
                        const Empq__RatingSpec *spec, const char *const *values, uint64_t now_ms,
                        int *outcome, empq_error *err);

/* What the participant sees now. Strings are owned by the page. */
typedef enum empq_ratings_page_kind {
    EMPQ_PAGE_INSTRUCTIONS = 0, /* claimed, not started */
    EMPQ_PAGE_ITEM,             /* rating entry `position` of `n` */
    EMPQ_PAGE_DONE,             /* finished: show the completion code */
    EMPQ_PAGE_EXPIRED,          /* timed out, slot reclaimed */
    EMPQ_PAGE_UNKNOWN,          /* no such participant (or no plan) */
    EMPQ_PAGE_QUESTIONS         /* every dialogue rated: the end-of-study questions */
} empq_ratings_page_kind;

typedef struct empq_ratings_page {
    int kind;
    uint32_t slot, position, n;
    int is_check;
    int prolific;                                  /* came by Prolific's link */
    char *emotion, *situation, *prompt, *response; /* ITEM only; never NULL then */
    char *completion_code;                         /* "" when none */
} empq_ratings_page;

/* Reads the participant's page; for an ITEM records when it was first shown
 * and (any page of an active slot) counts as activity for the timeout.
 * On EMPQ_OK *pg is filled (free its strings with empq_ratings_page_clear).
 * EMPQ_EPARSE when the stored plan or response does not decode,
 * EMPQ_ESTORE. */
int empq_ratings_view(empq_store *s, const char *run_id, const char *participant,
                      uint64_t now_ms, empq_ratings_page *pg, empq_error *err);

/* Frees the page's strings and zeroes it; pg may be NULL. */
void empq_ratings_page_clear(empq_ratings_page *pg);

/* Reclaims the slots idle past their deadline at now_ms. *n (may be NULL)
 * receives how many. */
int empq_ratings_reclaim(empq_store *s, const char *run_id, uint64_t now_ms, size_t *n,
                         empq_error *err);

typedef struct empq_ratings_counts {
    uint64_t slots, open, active, done;
    uint64_t claimed, reclaimed, ratings; /* claims ever; slots reclaimed ever; answers held */
} empq_ratings_counts;

/* Counts after reclaiming what is due at now_ms. EMPQ_ENOTFOUND: no plan. */
int empq_ratings_counts_get(empq_store *s, const char *run_id, uint64_t now_ms,
                            empq_ratings_counts *c, empq_error *err);

typedef struct empq_ratings_export_stats {
    size_t slots, done, partial; /* slots; finished; started, unfinished (exported only with partial) */
    size_t ratings;              /* rows of ratings-long.csv */
    size_t dialogues;            /* rows of ratings.csv */
    size_t checks, checks_failed;
} empq_ratings_export_stats;

/* Writes DIR/ratings.csv (the Welivita-Pu layout: one row per dialogue, or
 * per (dialogue, replica) when raters > 1, with part_no, annotator_<c>,
 * dialog_id, emotion, sentiment, situation, speaker_uttr, response_<c>,
 * rating_<c>), DIR/ratings-long.csv (one row per rating; the `long` layout
 * of `empq analyze`), DIR/participants.csv (one row per claimed slot) and
 * DIR/answers.csv (one row per participant: route, consent time and the
 * end-of-study answers, a column per question of the run's spec).
 * Only finished slots unless include_partial. Attention checks are not
 * ratings: they are in participants.csv and in the long rows' columns
 * checks / checks_passed. Returns EMPQ_OK, EMPQ_ENOTFOUND (no run or no
 * plan), EMPQ_ESTORE, EMPQ_EIO (err names the file), EMPQ_ENOMEM. */
int empq_ratings_export(empq_store *s, const char *run_id, const char *dir, int include_partial,
                        empq_ratings_export_stats *st, empq_error *err);

/* ==================== overview (the study console) ==================== */

/* Where a participant is. */
typedef enum empq_ratings_pstate {
    EMPQ_RATINGS_P_ACTIVE = 0, /* claimed, rating */
    EMPQ_RATINGS_P_FINISHED,   /* every entry answered */
    EMPQ_RATINGS_P_IDLE,       /* past the timeout, not reclaimed yet (it is on the next claim) */
    EMPQ_RATINGS_P_RECLAIMED,  /* left: the slot went back to the pool */
    EMPQ_RATINGS_P_QUESTIONS   /* every dialogue rated, the end-of-study questions not sent yet */
} empq_ratings_pstate;

typedef struct empq_ratings_participant {
    char *pid; /* the participant id as given (a Prolific id) */
    uint32_t cond, slot;
    int state; /* empq_ratings_pstate */
    uint32_t answered, n, checks, checks_passed;
    uint64_t claimed_ms, done_ms; /* done_ms: finished, or reclaimed */
} empq_ratings_participant;

typedef struct empq_ratings_condition {
    char *name; /* the source rated in it */
    uint64_t slots, claimed, finished, idle, reclaimed, checks, checks_failed;
} empq_ratings_condition;

typedef struct empq_ratings_overview {
    size_t n_conditions;
    empq_ratings_condition *cond;
    size_t n_participants; /* holding a slot now, then those whose slot was reclaimed */
    empq_ratings_participant *part;
    double median_ms; /* shown to answered, over every rated entry (not checks); 0 when none */
    size_t n_timed;
    uint64_t timeout_ms;
} empq_ratings_overview;

/* Reads the run's rating slots without changing anything (no reclaim: a
 * slot past its deadline counts as idle): the plan fields and condition
 * names, every slot (one pipeline), the idle and the reclaimed ones. On
 * EMPQ_OK *ov is filled (free with empq_ratings_overview_clear).
 * EMPQ_ENOTFOUND: no plan; EMPQ_ESTORE, EMPQ_EPARSE, EMPQ_ENOMEM, err says. */
int empq_ratings_overview_get(empq_store *s, const char *run_id, uint64_t now_ms, empq_ratings_overview *ov,
                              empq_error *err);

/* Frees what ov holds and zeroes it; ov may be NULL. */
void empq_ratings_overview_clear(empq_ratings_overview *ov);

#endif
