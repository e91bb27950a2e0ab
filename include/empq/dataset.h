/* dataset.h: the emotional-dialogue datasets a study draws its prompts from.
 *
 * Three file formats load into one in-memory form (empq_dataset):
 *
 *   welivita-pu          the Welivita & Pu (2024) release: RFC 4180 CSV
 *                        (CRLF or LF, quoted fields, "" escapes, embedded
 *                        newlines), columns found by name in the header.
 *   empatheticdialogues  the original EmpatheticDialogues CSV: no quoting,
 *                        split on ',' only, `_comma_` stands for ','; one
 *                        dialogue per run of rows with the same conv_id.
 *   jsonl                one JSON object per line (the format written by
 *                        empq_dataset_write_jsonl).
 *
 * Texts are kept byte for byte (leading spaces, stray chat text, quotes
 * after unescaping). A synthetic generator stands in for real data in demos
 * and benchmarks, and empq_dataset_select picks the study's prompts,
 * balanced over the emotions, deterministically from a seed. */
#ifndef EMPQ_DATASET_H
#define EMPQ_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"

/* The 32 EmpatheticDialogues emotion labels. */
#define EMPQ_N_EMOTIONS 32

/* One dialogue of a dataset. All strings are owned by the dataset. */
typedef struct empq_dialogue {
    char *id;        /* dialog_id (welivita-pu), conv_id (empatheticdialogues), "id" (jsonl) */
    char *emotion;   /* one of the 32 labels, lower case */
    char *sentiment; /* may be NULL (absent, or an empty CSV field) */
    char *situation; /* may be "" */
    char *prompt;    /* the speaker's first turn, byte-exact */
    char *human;     /* the listener's first turn (human baseline); may be NULL */
    size_t line;     /* 1-based line in the source file where the record starts; 0 for synth */
} empq_dialogue;

/* A loaded dataset: n dialogues in file order. Free with empq_dataset_free. */
typedef struct empq_dataset {
    empq_dialogue *items;
    size_t n;
} empq_dataset;

/* Loads the dataset at path. format is "welivita-pu", "empatheticdialogues",
 * "jsonl", or NULL / "auto" to detect it: a path ending in .jsonl is jsonl;
 * otherwise the first line decides (a CSV header starting with part_no is
 * welivita-pu, one starting with conv_id,utterance_idx is
 * empatheticdialogues).
 *
 * Returns EMPQ_OK with *out set (caller frees with empq_dataset_free);
 * EMPQ_ENOTFOUND or EMPQ_EIO when the file cannot be read; EMPQ_EINVAL for
 * an unknown format name; EMPQ_EPARSE when the format cannot be detected or
 * any record is malformed (wrong field count, unterminated quote, missing
 * column, unknown emotion label, invalid JSON, missing or wrongly typed
 * field, duplicate id), with err naming "path:line: what". On failure *out
 * is NULL. Emotion labels are matched case-insensitively and stored in
 * lower case. An empty CSV sentiment or human field becomes NULL. */
int empq_dataset_load(const char *path, const char *format, empq_dataset **out, empq_error *err);

/* Generates n synthetic dialogues over the 32 emotions: emotions go round
 * robin (in an order shuffled by the seed), so every emotion's count is
 * floor(n/32) or one more (n = 2000: 62 or 63 each). Situation, prompt and
 * human texts are built from per-emotion phrase tables; ids are
 * "synth-00001", "synth-00002", ...; line is 0. The same (n, seed) always
 * gives the same dataset, on every machine. n may be 0.
 * Returns EMPQ_OK with *out set (caller frees), or EMPQ_ENOMEM (*out NULL). */
int empq_dataset_synth(size_t n, uint64_t seed, empq_dataset **out, empq_error *err);

/* Writes ds to path as JSONL, one compact object per dialogue with the keys
 * id, emotion, sentiment (when not NULL), situation, prompt, human (when not
 * NULL), in that order, each line ending in '\n'. The file is replaced
 * atomically (empq_write_file_atomic). Returns EMPQ_OK; EMPQ_EINVAL when a
 * text is not valid UTF-8 (err names the item); EMPQ_EIO on a write error;
 * EMPQ_ENOMEM. Loading the file back gives the same dataset (line = the
 * 1-based index). */
int empq_dataset_write_jsonl(const empq_dataset *ds, const char *path, empq_error *err);

/* Picks n items of ds (n == 0 or n >= ds->n: all of them).
 *
 * balance != 0: balanced over the k emotions present: each emotion gets
 * floor(n/k) items or one more; an emotion with fewer items than its share
 * gives them all and its shortfall is spread over the others (water
 * filling). Which emotions get the extra item and which items are drawn is
 * decided by the PRNG seeded with seed. balance == 0: a seeded uniform
 * sample of n items.
 *
 * Returns EMPQ_OK with *idx (never NULL on success; caller frees) holding
 * *n_out indices in ascending (dataset) order (*n_out is min(n, ds->n), or
 * ds->n when n is 0); EMPQ_EINVAL when balancing meets an item whose
 * emotion is not one of the 32 labels, or an argument is NULL; EMPQ_ENOMEM.
 * On failure *idx is NULL. Deterministic for (dataset, n, seed, balance). */
int empq_dataset_select(const empq_dataset *ds, size_t n, uint64_t seed, int balance, size_t **idx,
                        size_t *n_out, empq_error *err);

/* Frees *ds and everything it owns, and sets *ds to NULL. ds and *ds may be
 * NULL. */
void empq_dataset_free(empq_dataset **ds);

/* Index 0..31 of an emotion label (case-insensitive, alphabetical order:
 * 0 = afraid ... 31 = trusting), or -1 when label is NULL or not one of the
 * 32 labels. */
int empq_emotion_index(const char *label);

/* The lower-case label of emotion i (static, never freed), or NULL when i
 * is outside 0..31. */
const char *empq_emotion_name(int i);

#endif
