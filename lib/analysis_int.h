/* analysis_int.h: internals shared by lib/analysis*.c (not installed). */
#ifndef EMPQ_ANALYSIS_INT_H
#define EMPQ_ANALYSIS_INT_H

#include "empq/analysis.h"

/* Fills a->design from r (the participant-clustered figures of
 * docs/analysis.md); a's per-condition and per-emotion figures must be
 * computed. Returns EMPQ_OK or EMPQ_ENOMEM; a fit that does not converge
 * is not an error (design->fit_note says why it is missing). */
int x__analysis_design(empq_analysis *a, const empq_ratings *r, empq_error *err);

/* Fills a->design->style_paired from the corpus (after x__analysis_design
 * and the style section). Returns EMPQ_OK or EMPQ_ENOMEM. */
int x__analysis_style_paired(empq_analysis *a, const empq_corpus *cp, empq_error *err);

/* Frees *d and sets it to NULL; d and *d may be NULL. */
void x__analysis_design_free(empq_design **d);

/* The 95% percentile interval of the n values v (sorted in place) into
 * *lo, *hi; NaN both when no value is finite. */
void x__percentile_ci(double *v, size_t n, double *lo, double *hi);

/* Frees *j and sets it to NULL; j and *j may be NULL. */
void x__judge_free(empq_judge **j);

/* Every agreement statistic (EMPQ_AGREE_*) of the 3 x 3 table of counts
 * cm[human - 1][judge - 1] into v[EMPQ_AGREE_N_STATS]; NaN where not
 * defined (docs/analysis.md: each is a function of the table). */
void x__agree_from_confusion(const double *cm, double *v);

#endif
