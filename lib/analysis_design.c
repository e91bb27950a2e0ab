/* analysis_design.c: the figures that respect the study design (each
 * participant rates about ten dialogues of one condition): participant and
 * two-way bootstrap intervals, ICC of Good, logit and proportional-odds
 * fits with participant-clustered errors, per-emotion tests with Holm and
 * Benjamini-Hochberg, item-matched tests. Formulas: docs/analysis.md. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis_int.h"
#include "empq/stats.h"
#include "empq/util.h"

enum { N_BOOT = 2000 };
#define BOOT_SEED 14ULL

static int dcmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void x__percentile_ci(double *v, size_t n, double *lo, double *hi)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i]))
            v[m++] = v[i];
    }
    *lo = *hi = NAN;
    if (m == 0)
        return;
    qsort(v, m, sizeof *v, dcmp);
    /* linear interpolation between order statistics (numpy's default percentile) */
    double q[2] = {0.025, 0.975}, *o[2] = {lo, hi};
    for (int k = 0; k < 2; k++) {
        double h = q[k] * (double)(m - 1);
        size_t i = (size_t)floor(h);
        double f = h - (double)i;
        *o[k] = i + 1 < m ? v[i] + f * (v[i + 1] - v[i]) : v[m - 1];
    }
}

void x__analysis_design_free(empq_design **d)
{
    if (d == NULL || *d == NULL)
        return;
    free((*d)->emo);
    free((*d)->style_paired);
    free(*d);
    *d = NULL;
}

/* Shares of Good per condition under weights w (NULL: all 1), and their
 * differences / relative increases over the baseline, into the bootstrap
 * arrays at replication b. */
typedef struct boot_out {
    double *good, *diff, *inc, *bad, *okay; /* [c * n_boot + b] */
} boot_out;

static void boot_shares(const empq_ratings *r, const double *wpart, const double *witem, size_t nc, size_t base,
                        size_t n_boot, size_t b, boot_out *o)
{
    double num[EMPQ_ANALYSIS_MAX_CONDS] = {0}, den[EMPQ_ANALYSIS_MAX_CONDS] = {0};
    double nbad[EMPQ_ANALYSIS_MAX_CONDS] = {0}, nokay[EMPQ_ANALYSIS_MAX_CONDS] = {0};
    for (size_t i = 0; i < r->n; i++) {
        const empq_rating *x = &r->r[i];
        double w = wpart[x->participant] * (witem != NULL ? witem[x->item] : 1.0);
        num[x->cond] += w * (x->value == 3);
        nbad[x->cond] += w * (x->value == 1);
        nokay[x->cond] += w * (x->value == 2);
        den[x->cond] += w;
    }
    double pb = den[base] > 0 ? num[base] / den[base] : NAN;
    for (size_t c = 0; c < nc; c++) {
        double p = den[c] > 0 ? num[c] / den[c] : NAN;
        o->good[c * n_boot + b] = p;
        o->bad[c * n_boot + b] = den[c] > 0 ? nbad[c] / den[c] : NAN;
        o->okay[c * n_boot + b] = den[c] > 0 ? nokay[c] / den[c] : NAN;
        o->diff[c * n_boot + b] = p - pb;
        o->inc[c * n_boot + b] = pb > 0 ? (p - pb) / pb : NAN;
    }
}

/* The participant bootstrap (participants resampled within the condition
 * of their first rating) and, when witem_on, the two-way bootstrap that
 * also resamples dialogues (weights multiply: Owen's pigeonhole bootstrap). */
static int bootstrap(empq_analysis *a, const empq_ratings *r, int two_way, boot_out *o)
{
    size_t np = r->n_participants, ni = r->n_items, nc = a->n_conds;
    size_t *home = malloc((np ? np : 1) * sizeof *home);
    double *wp = calloc(np ? np : 1, sizeof *wp), *wi = calloc(ni ? ni : 1, sizeof *wi);
    size_t *members = malloc((np ? np : 1) * sizeof *members), start[EMPQ_ANALYSIS_MAX_CONDS + 1] = {0};
    if (home == NULL || wp == NULL || wi == NULL || members == NULL) {
        free(home);
        free(wp);
        free(wi);
        free(members);
        return EMPQ_ENOMEM;
    }
    for (size_t p = 0; p < np; p++)
        home[p] = SIZE_MAX;
    for (size_t i = 0; i < r->n; i++) {
        size_t p = (size_t)r->r[i].participant;
        if (home[p] == SIZE_MAX)
            home[p] = r->r[i].cond;
    }
    /* participants grouped by home condition */
    size_t cnt[EMPQ_ANALYSIS_MAX_CONDS] = {0};
    for (size_t p = 0; p < np; p++) {
        if (home[p] != SIZE_MAX) /* every rater has a rating; kept safe anyway */
            cnt[home[p]]++;
    }
    for (size_t c = 0; c < nc; c++)
        start[c + 1] = start[c] + cnt[c];
    size_t fill[EMPQ_ANALYSIS_MAX_CONDS];
    memcpy(fill, start, sizeof fill);
    for (size_t p = 0; p < np; p++) {
        if (home[p] != SIZE_MAX)
            members[fill[home[p]]++] = p;
    }
    empq_rng rng;
    empq_rng_seed(&rng, BOOT_SEED + (uint64_t)two_way);
    for (size_t b = 0; b < N_BOOT; b++) {
        memset(wp, 0, np * sizeof *wp);
        for (size_t c = 0; c < nc; c++) {
            size_t m = start[c + 1] - start[c];
            for (size_t k = 0; k < m; k++)
                wp[members[start[c] + empq_rng_below(&rng, m)]] += 1;
        }
        if (two_way) {
            memset(wi, 0, ni * sizeof *wi);
            for (size_t k = 0; k < ni; k++)
                wi[empq_rng_below(&rng, ni)] += 1;
        }
        boot_shares(r, wp, two_way ? wi : NULL, nc, a->baseline, N_BOOT, b, o);
    }
    free(home);
    free(wp);
    free(wi);
    free(members);
    return EMPQ_OK;
}

static double wald_p(double beta, double se)
{
    return se > 0 ? fmin(1.0, 2 * empq_stats_norm_sf(fabs(beta / se))) : NAN;
}

/* Logit of Good and the ordinal fit, participant-clustered. */
static int fits(empq_analysis *a, const empq_ratings *r, empq_design *d, empq_error *err)
{
    size_t nc = a->n_conds, n = r->n, k = nc; /* intercept + nc - 1 indicators */
    if (nc > EMPQ_STATS_MAX_PARAMS - 2) {
        snprintf(d->fit_note, sizeof d->fit_note, "more than %d conditions: no fit", EMPQ_STATS_MAX_PARAMS - 2);
        return EMPQ_OK;
    }
    double *x = calloc(n * k, sizeof *x), *xo = calloc(n * (k - 1 ? k - 1 : 1), sizeof *xo);
    int *good = malloc(n * sizeof *good), *val = malloc(n * sizeof *val);
    size_t *grp = malloc(n * sizeof *grp);
    if (x == NULL || xo == NULL || good == NULL || val == NULL || grp == NULL) {
        free(x);
        free(xo);
        free(good);
        free(val);
        free(grp);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const empq_rating *rt = &r->r[i];
        x[i * k] = 1;
        size_t col = 0;
        for (size_t c = 0; c < nc; c++) {
            if (c == a->baseline)
                continue;
            x[i * k + 1 + col] = rt->cond == c;
            if (k > 1)
                xo[i * (k - 1) + col] = rt->cond == c;
            col++;
        }
        good[i] = rt->value == 3;
        val[i] = rt->value;
        grp[i] = d->has_participants ? (size_t)rt->participant : 0;
    }
    empq_error ferr = {0};
    const size_t *g = d->has_participants ? grp : NULL;
    size_t ng = d->has_participants ? r->n_participants : 0;
    int rc = empq_stats_logit_fit(x, good, n, k, g, ng, &d->logit, &ferr);
    d->logit_ok = rc == EMPQ_OK;
    if (rc == EMPQ_ENOMEM)
        goto done;
    if (!d->logit_ok)
        snprintf(d->fit_note, sizeof d->fit_note, "logit of Good: %s", ferr.msg);
    if (k > 1) {
        rc = empq_stats_ordinal_fit(xo, val, n, k - 1, 3, g, ng, &d->ordinal, &ferr);
        d->ordinal_ok = rc == EMPQ_OK;
        if (rc == EMPQ_ENOMEM)
            goto done;
        if (!d->ordinal_ok)
            snprintf(d->fit_note, sizeof d->fit_note, "ordinal fit: %s", ferr.msg);
    }
    rc = EMPQ_OK;
    size_t col = 0;
    for (size_t c = 0; c < nc; c++) {
        empq_design_cond *dc = &d->cond[c];
        if (c == a->baseline)
            continue;
        if (d->logit_ok) {
            double bt = d->logit.beta[1 + col], se = d->logit.se[1 + col], sc = d->logit.se_cluster[1 + col];
            double s = isnan(sc) ? se : sc;
            dc->log_or = bt;
            dc->or = exp(bt);
            dc->or_lo = exp(bt - EMPQ_STATS_Z95 * s);
            dc->or_hi = exp(bt + EMPQ_STATS_Z95 * s);
            dc->se_naive = se;
            dc->se_cluster = sc;
            dc->p_naive = wald_p(bt, se);
            dc->p_cluster = wald_p(bt, sc);
        }
        if (d->ordinal_ok) {
            dc->ord_beta = d->ordinal.beta[col];
            dc->ord_se_naive = d->ordinal.se[col];
            dc->ord_se_cluster = d->ordinal.se_cluster[col];
            dc->ord_p_cluster = wald_p(dc->ord_beta, dc->ord_se_cluster);
        }
        col++;
    }
done:
    free(x);
    free(xo);
    free(good);
    free(val);
    free(grp);
    return rc == EMPQ_ENOMEM ? empq_error_set(err, rc, "analysis: out of memory") : EMPQ_OK;
}

/* ICC of Good per condition, by participant. */
static int iccs(empq_analysis *a, const empq_ratings *r, empq_design *d)
{
    double *y = malloc(r->n * sizeof *y);
    size_t *g = malloc(r->n * sizeof *g);
    unsigned char *seen = calloc(r->n_participants ? r->n_participants : 1, 1);
    if (y == NULL || g == NULL || seen == NULL) {
        free(y);
        free(g);
        free(seen);
        return EMPQ_ENOMEM;
    }
    for (size_t c = 0; c < a->n_conds; c++) {
        size_t m = 0, parts = 0;
        memset(seen, 0, r->n_participants ? r->n_participants : 1);
        for (size_t i = 0; i < r->n; i++) {
            if (r->r[i].cond != c)
                continue;
            y[m] = r->r[i].value == 3;
            g[m] = (size_t)r->r[i].participant;
            if (!seen[g[m]]) {
                seen[g[m]] = 1;
                parts++;
            }
            m++;
        }
        d->cond[c].participants = parts;
        d->cond[c].icc_good = empq_stats_icc1(y, g, m, r->n_participants);
    }
    free(y);
    free(g);
    free(seen);
    return EMPQ_OK;
}

/* Item-matched comparisons: per dialogue the mean rating in each condition. */
static int paired(empq_analysis *a, const empq_ratings *r, empq_design *d)
{
    size_t ni = r->n_items, nc = a->n_conds;
    double *sum = calloc(ni * nc, sizeof *sum), *gsum = calloc(ni * nc, sizeof *gsum);
    size_t *cnt = calloc(ni * nc, sizeof *cnt);
    double *diff = malloc((ni ? ni : 1) * sizeof *diff);
    if (sum == NULL || gsum == NULL || cnt == NULL || diff == NULL) {
        free(sum);
        free(gsum);
        free(cnt);
        free(diff);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < r->n; i++) {
        const empq_rating *x = &r->r[i];
        sum[x->item * nc + x->cond] += x->value;
        gsum[x->item * nc + x->cond] += x->value == 3;
        cnt[x->item * nc + x->cond]++;
    }
    int rc = EMPQ_OK;
    size_t bs = a->baseline;
    for (size_t c = 0; c < nc && rc == EMPQ_OK; c++) {
        empq_design_cond *dc = &d->cond[c];
        dc->paired_mean_diff = dc->paired_good_diff = dc->paired_w = dc->paired_p = NAN;
        if (c == bs)
            continue;
        size_t m = 0;
        double gd = 0;
        for (size_t it = 0; it < ni; it++) {
            size_t kc = it * nc + c, kb = it * nc + bs;
            if (cnt[kc] == 0 || cnt[kb] == 0)
                continue;
            diff[m++] = sum[kc] / (double)cnt[kc] - sum[kb] / (double)cnt[kb];
            gd += gsum[kc] / (double)cnt[kc] - gsum[kb] / (double)cnt[kb];
        }
        dc->paired_n = m;
        if (m == 0)
            continue;
        dc->paired_mean_diff = empq_stats_mean(diff, m);
        dc->paired_good_diff = gd / (double)m;
        size_t used;
        rc = empq_stats_wilcoxon(diff, m, &dc->paired_w, &dc->paired_p, &used);
    }
    free(sum);
    free(gsum);
    free(cnt);
    free(diff);
    return rc;
}

/* Per emotion and condition: chi-square (2 x 3) against the baseline's
 * cell, Holm and BH over the emotions of each condition. */
static int emotion_tests(empq_analysis *a, empq_design *d)
{
    size_t ne = a->n_emotions, nc = a->n_conds;
    if (ne == 0)
        return EMPQ_OK;
    d->emo = calloc(ne * nc, sizeof *d->emo);
    double *p = malloc(ne * sizeof *p), *adj = malloc(ne * sizeof *adj);
    if (d->emo == NULL || p == NULL || adj == NULL) {
        free(p);
        free(adj);
        return EMPQ_ENOMEM;
    }
    int rc = EMPQ_OK;
    for (size_t c = 0; c < nc && rc == EMPQ_OK; c++) {
        for (size_t e = 0; e < ne; e++) {
            const empq_cell *x = &a->emo[e * nc + c], *y = &a->emo[e * nc + a->baseline];
            empq_emo_test *t = &d->emo[e * nc + c];
            t->n = x->n;
            t->n_base = y->n;
            t->statistic = t->p = t->p_holm = t->p_bh = NAN;
            p[e] = NAN;
            if (c == a->baseline)
                continue;
            double tab[6] = {(double)x->count[0], (double)x->count[1], (double)x->count[2],
                             (double)y->count[0], (double)y->count[1], (double)y->count[2]};
            empq_chi2_result cr;
            empq_error e2 = {0};
            if (empq_stats_chi2_independence(tab, 2, 3, &cr, &e2) == EMPQ_OK) {
                t->statistic = cr.statistic;
                t->p = p[e] = cr.p;
            }
        }
        if (c == a->baseline)
            continue;
        if ((rc = empq_stats_holm(p, ne, adj)) == EMPQ_OK) {
            for (size_t e = 0; e < ne; e++)
                d->emo[e * nc + c].p_holm = adj[e];
            rc = empq_stats_bh(p, ne, adj);
            for (size_t e = 0; e < ne && rc == EMPQ_OK; e++)
                d->emo[e * nc + c].p_bh = adj[e];
        }
    }
    free(p);
    free(adj);
    return rc;
}

int x__analysis_design(empq_analysis *a, const empq_ratings *r, empq_error *err)
{
    empq_design *d = calloc(1, sizeof *d);
    if (d == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    a->design = d;
    d->style_base = -1;
    d->n_boot = N_BOOT;
    d->seed = BOOT_SEED;
    d->has_participants = r->n_participants > 1;
    for (size_t i = 0; i < r->n && d->has_participants; i++)
        d->has_participants = r->r[i].participant >= 0;
    size_t nc = a->n_conds;
    for (size_t c = 0; c < nc; c++) {
        empq_design_cond *dc = &d->cond[c];
        double *f[] = {&dc->icc_good, &dc->good_lo, &dc->good_hi, &dc->good2_lo, &dc->good2_hi, &dc->diff_lo,
                       &dc->diff_hi, &dc->inc_lo, &dc->inc_hi, &dc->inc2_lo, &dc->inc2_hi, &dc->log_or, &dc->or,
                       &dc->or_lo, &dc->or_hi, &dc->se_naive, &dc->se_cluster, &dc->p_naive, &dc->p_cluster,
                       &dc->ord_beta, &dc->ord_se_naive, &dc->ord_se_cluster, &dc->ord_p_cluster, &dc->bad_lo,
                       &dc->bad_hi, &dc->okay_lo, &dc->okay_hi};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
            *f[k] = NAN;
    }
    int rc = fits(a, r, d, err);
    if (rc == EMPQ_OK && (rc = paired(a, r, d)) != EMPQ_OK)
        rc = empq_error_set(err, rc, "analysis: out of memory");
    if (rc == EMPQ_OK && (rc = emotion_tests(a, d)) != EMPQ_OK)
        rc = empq_error_set(err, rc, "analysis: out of memory");
    if (rc != EMPQ_OK || !d->has_participants)
        return rc;
    if ((rc = iccs(a, r, d)) != EMPQ_OK)
        return empq_error_set(err, rc, "analysis: out of memory");
    boot_out o[2];
    double *buf = malloc(2 * 5 * nc * N_BOOT * sizeof *buf);
    if (buf == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    for (int t = 0; t < 2; t++) {
        o[t].good = buf + (size_t)(5 * t) * nc * N_BOOT;
        o[t].diff = o[t].good + nc * N_BOOT;
        o[t].inc = o[t].diff + nc * N_BOOT;
        o[t].bad = o[t].inc + nc * N_BOOT;
        o[t].okay = o[t].bad + nc * N_BOOT;
        if ((rc = bootstrap(a, r, t, &o[t])) != EMPQ_OK) {
            free(buf);
            return empq_error_set(err, rc, "analysis: out of memory");
        }
    }
    for (size_t c = 0; c < nc; c++) {
        empq_design_cond *dc = &d->cond[c];
        x__percentile_ci(o[0].good + c * N_BOOT, N_BOOT, &dc->good_lo, &dc->good_hi);
        x__percentile_ci(o[1].good + c * N_BOOT, N_BOOT, &dc->good2_lo, &dc->good2_hi);
        x__percentile_ci(o[0].bad + c * N_BOOT, N_BOOT, &dc->bad_lo, &dc->bad_hi);
        x__percentile_ci(o[0].okay + c * N_BOOT, N_BOOT, &dc->okay_lo, &dc->okay_hi);
        if (c == a->baseline)
            continue;
        x__percentile_ci(o[0].diff + c * N_BOOT, N_BOOT, &dc->diff_lo, &dc->diff_hi);
        x__percentile_ci(o[0].inc + c * N_BOOT, N_BOOT, &dc->inc_lo, &dc->inc_hi);
        x__percentile_ci(o[1].inc + c * N_BOOT, N_BOOT, &dc->inc2_lo, &dc->inc2_hi);
    }
    free(buf);
    return EMPQ_OK;
}

/* A baseline text by its dialogue. */
typedef struct item_text {
    const char *item;
    size_t text;
} item_text;

static int item_cmp(const void *x, const void *y)
{
    const item_text *a = x, *b = y;
    int c = strcmp(a->item, b->item);
    return c != 0 ? c : (a->text > b->text) - (a->text < b->text);
}

/* The baseline's (first) text of item, or SIZE_MAX: bsearch over the sorted ones. */
static size_t base_text(const item_text *v, size_t m, const char *item)
{
    size_t lo = 0, hi = m;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v[mid].item, item);
        if (c == 0) {
            while (mid > 0 && strcmp(v[mid - 1].item, item) == 0)
                mid--; /* the first of several samples */
            return v[mid].text;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

int x__analysis_style_paired(empq_analysis *a, const empq_corpus *cp, empq_error *err)
{
    empq_design *d = a->design;
    if (d == NULL || cp->n == 0 || cp->item == NULL)
        return EMPQ_OK;
    long b = -1;
    for (size_t s = 0; s < cp->n_sources; s++) {
        if (strcmp(cp->sources[s], a->conds[a->baseline]) == 0)
            b = (long)s;
    }
    if (b < 0)
        return EMPQ_OK;
    const size_t nf = EMPQ_STYLE_N_FEATURES;
    item_text *idx = malloc(cp->n * sizeof *idx);
    size_t m = 0;
    double *diff = malloc(cp->n * nf * sizeof *diff);
    d->style_paired = calloc(cp->n_sources * nf, sizeof *d->style_paired);
    if (idx == NULL || diff == NULL || d->style_paired == NULL) {
        free(idx);
        free(diff);
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    for (size_t i = 0; i < cp->n; i++) {
        if (cp->source[i] == (size_t)b && cp->item[i] != NULL)
            idx[m++] = (item_text){cp->item[i], i};
    }
    qsort(idx, m, sizeof *idx, item_cmp);
    d->style_base = b;
    int rc = EMPQ_OK;
    for (size_t s = 0; s < cp->n_sources && rc == EMPQ_OK; s++) {
        size_t k = 0;
        for (size_t i = 0; i < cp->n && s != (size_t)b; i++) {
            size_t j;
            if (cp->source[i] != s || cp->item[i] == NULL || (j = base_text(idx, m, cp->item[i])) == SIZE_MAX)
                continue;
            for (size_t f = 0; f < nf; f++)
                diff[f * cp->n + k] = a->text_features[i * nf + f] - a->text_features[j * nf + f];
            k++;
        }
        for (size_t f = 0; f < nf && rc == EMPQ_OK; f++) {
            struct empq_style_pair *sp = &d->style_paired[s * nf + f];
            size_t used;
            sp->n = k;
            sp->mean_diff = k ? empq_stats_mean(diff + f * cp->n, k) : NAN;
            rc = empq_stats_wilcoxon(diff + f * cp->n, k, &sp->w, &sp->p, &used);
        }
    }
    free(idx);
    free(diff);
    return rc == EMPQ_OK ? EMPQ_OK : empq_error_set(err, rc, "analysis: out of memory");
}
