/* dataset_int.h: helpers shared by the dataset module's files (dataset.c,
 * dataset_csv.c, dataset_synth.c). Not a public header. */
#ifndef EMPQ_DATASET_INT_H
#define EMPQ_DATASET_INT_H

#include <stddef.h>

#include "empq/dataset.h"

/* Appends *d to ds (growing ds->items; *cap is its capacity) and takes
 * ownership of d's strings, zeroing *d. Returns EMPQ_OK, or EMPQ_ENOMEM
 * with *d untouched (the caller still owns its strings). */
int empq_dataset__push(empq_dataset *ds, size_t *cap, empq_dialogue *d);

/* Frees the strings of d and zeroes it; d may be NULL. */
void empq_dataset__dialogue_clear(empq_dialogue *d);

/* Sets *out to a new copy of the canonical lower-case label matching
 * label (len bytes, case-insensitive). Returns EMPQ_OK; EMPQ_EPARSE with err
 * "path:line: unknown emotion label '...'"; EMPQ_ENOMEM. */
int empq_dataset__emotion(const char *path, size_t line, const char *label, size_t len, char **out,
                          empq_error *err);

/* Copies len bytes of s into a new NUL-terminated string (NULL when out of
 * memory). */
char *empq_dataset__strndup(const char *s, size_t len);

/* Parsers: data (len bytes, NUL-terminated) is the whole file at path.
 * Each appends the dialogues to ds (which the caller frees on failure) and
 * returns EMPQ_OK, EMPQ_EPARSE with err "path:line: what", or EMPQ_ENOMEM. */
int empq_dataset__parse_welivita(const char *path, const char *data, size_t len, empq_dataset *ds,
                                 empq_error *err);
int empq_dataset__parse_ed(const char *path, const char *data, size_t len, empq_dataset *ds,
                           empq_error *err);

#endif
