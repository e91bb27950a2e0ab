/* runinfo.h: what the broker knows about a loaded run beyond the dispatch
 * core: each prompt's emotion (for status per emotion) and the run's parent
 * (a rerun's source run).
 *
 * The emotion index is read once, when the run is loaded (its prompts hash,
 * in HMGETs of 4096); status per emotion then walks the job table once
 * (O(jobs): a few milliseconds for 1,000,000 jobs), so the hot path of
 * dispatch and outcomes carries no extra counters.
 *
 * Internal to the broker program: names bk__runinfo_*. Not thread safe. */
#ifndef EMPQ_BROKER_RUNINFO_H
#define EMPQ_BROKER_RUNINFO_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/store.h"
#include "jobtable.h"

typedef struct bk__runinfo {
    struct bk__runinfo *next;
    char *run_id;
    char *parent;      /* NULL when the run is no rerun */
    uint32_t n_prompts;
    uint16_t *emotion; /* n_prompts indices into names; UINT16_MAX when unknown */
    char **names;      /* sorted emotion names */
    size_t n_names;
} bk__runinfo;

/* Reads the emotions of run's prompts from Redis. On EMPQ_OK *out is the
 * caller's (bk__runinfo_free). A prompt missing from Redis has no emotion
 * (it is counted under "?"). EMPQ_ESTORE when Redis fails, EMPQ_ENOMEM,
 * EMPQ_ERANGE beyond 65535 distinct emotions; err says which. */
int bk__runinfo_load(empq_store *s, const Empq__Run *run, bk__runinfo **out, empq_error *err);

/* Frees *ri (one record, not its list) and sets it NULL; ri, *ri may be NULL. */
void bk__runinfo_free(bk__runinfo **ri);

/* The record of run_id in the list head, or NULL. */
bk__runinfo *bk__runinfo_find(bk__runinfo *head, const char *run_id);

/* Counts the jobs of table t per emotion into out[0..n_names-1] (and
 * out[n_names] for prompts without one), walking the table once. t must be
 * the table of ri's run. out has n_names + 1 entries, zeroed here. */
void bk__runinfo_counts(const bk__runinfo *ri, const bk__jobtable *t, bk__counts *out);

#endif
