/* stats.c: the statistics of the analysis report (see stats.h and
 * docs/analysis.md for the formulas). Distribution functions from GSL. */
#include "empq/stats.h"

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_permutation.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ==================== distributions ==================== */

double empq_stats_chi2_sf(double x, double df)
{
    if (isnan(x) || isnan(df) || df <= 0)
        return NAN;
    if (x <= 0)
        return 1.0;
    return gsl_cdf_chisq_Q(x, df);
}

double empq_stats_norm_sf(double z)
{
    if (isnan(z))
        return NAN;
    return gsl_cdf_ugaussian_Q(z);
}

/* ==================== Wilson score interval ==================== */

int empq_stats_wilson(size_t k, size_t n, double z, double *lo, double *hi)
{
    if (lo == NULL || hi == NULL || k > n || !(z > 0))
        return EMPQ_EINVAL;
    if (n == 0) {
        *lo = *hi = NAN;
        return EMPQ_OK;
    }
    /* (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n) */
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double centre = (p + z2 / (2 * nn)) / (1 + z2 / nn);
    double half = z / (1 + z2 / nn) * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    *lo = k == 0 ? 0.0 : fmax(0.0, centre - half);
    *hi = k == n ? 1.0 : fmin(1.0, centre + half);
    return EMPQ_OK;
}

/* ==================== chi-square on a contingency table ==================== */

int empq_stats_chi2_independence(const double *counts, size_t rows, size_t cols, empq_chi2_result *out,
                                 empq_error *err)
{
    if (counts == NULL || out == NULL || rows == 0 || cols == 0)
        return empq_error_set(err, EMPQ_EINVAL, "chi-square: empty table or NULL argument");
    for (size_t i = 0; i < rows * cols; i++) {
        if (!isfinite(counts[i]) || counts[i] < 0)
            return empq_error_set(err, EMPQ_EINVAL, "chi-square: cell (%zu, %zu) is %g, not a count",
                                  i / cols, i % cols, counts[i]);
    }
    double *rsum = calloc(rows, sizeof *rsum);
    double *csum = calloc(cols, sizeof *csum);
    if (rsum == NULL || csum == NULL) {
        free(rsum);
        free(csum);
        return empq_error_set(err, EMPQ_ENOMEM, "chi-square: out of memory");
    }
    double n = 0;
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            rsum[i] += counts[i * cols + j];
            csum[j] += counts[i * cols + j];
            n += counts[i * cols + j];
        }
    }
    size_t ru = 0, cu = 0;
    for (size_t i = 0; i < rows; i++)
        ru += rsum[i] > 0;
    for (size_t j = 0; j < cols; j++)
        cu += csum[j] > 0;
    memset(out, 0, sizeof *out);
    out->n = n;
    out->rows_used = ru;
    out->cols_used = cu;
    if (ru < 2 || cu < 2) {
        out->statistic = out->p = out->cramers_v = NAN;
        out->df = 0;
        free(rsum);
        free(csum);
        return EMPQ_OK;
    }
    double x2 = 0;
    for (size_t i = 0; i < rows; i++) {
        if (rsum[i] <= 0)
            continue;
        for (size_t j = 0; j < cols; j++) {
            if (csum[j] <= 0)
                continue;
            double e = rsum[i] * csum[j] / n;
            double d = counts[i * cols + j] - e;
            x2 += d * d / e;
        }
    }
    free(rsum);
    free(csum);
    out->statistic = x2;
    out->df = (int)((ru - 1) * (cu - 1));
    out->p = empq_stats_chi2_sf(x2, out->df);
    size_t k = ru < cu ? ru : cu;
    out->cramers_v = sqrt(x2 / (n * (double)(k - 1)));
    return EMPQ_OK;
}

/* ==================== ranks ==================== */

typedef struct rank_item {
    double v;
    size_t i;
} rank_item;

static int rank_cmp(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->v < y->v)
        return -1;
    if (x->v > y->v)
        return 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int empq_stats_rank(const double *x, size_t n, double *ranks, double *tie_sum)
{
    if (tie_sum != NULL)
        *tie_sum = 0;
    if (n == 0)
        return EMPQ_OK;
    if (x == NULL || ranks == NULL)
        return EMPQ_EINVAL;
    rank_item *it = malloc(n * sizeof *it);
    if (it == NULL)
        return EMPQ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            free(it);
            return EMPQ_EINVAL;
        }
        it[i].v = x[i];
        it[i].i = i;
    }
    qsort(it, n, sizeof *it, rank_cmp);
    double ts = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && it[b].v == it[a].v)
            b++;
        /* positions a..b-1 (0-based) hold ranks a+1..b: their mean */
        double r = ((double)a + 1 + (double)b) / 2.0;
        for (size_t k = a; k < b; k++)
            ranks[it[k].i] = r;
        double t = (double)(b - a);
        ts += t * t * t - t;
        a = b;
    }
    free(it);
    if (tie_sum != NULL)
        *tie_sum = ts;
    return EMPQ_OK;
}

/* ==================== Mann-Whitney U ==================== */

int empq_stats_mann_whitney(const double *x, size_t nx, const double *y, size_t ny, empq_mwu_result *out,
                            empq_error *err)
{
    if (x == NULL || y == NULL || out == NULL || nx == 0 || ny == 0)
        return empq_error_set(err, EMPQ_EINVAL, "Mann-Whitney: empty sample or NULL argument");
    size_t n = nx + ny;
    double *all = malloc(n * sizeof *all);
    double *rk = malloc(n * sizeof *rk);
    if (all == NULL || rk == NULL) {
        free(all);
        free(rk);
        return empq_error_set(err, EMPQ_ENOMEM, "Mann-Whitney: out of memory");
    }
    memcpy(all, x, nx * sizeof *all);
    memcpy(all + nx, y, ny * sizeof *all);
    double ties = 0;
    int rc = empq_stats_rank(all, n, rk, &ties);
    if (rc != EMPQ_OK) {
        free(all);
        free(rk);
        return empq_error_set(err, rc, "Mann-Whitney: %s", rc == EMPQ_EINVAL ? "a value is NaN" : "out of memory");
    }
    double r1 = 0;
    for (size_t i = 0; i < nx; i++)
        r1 += rk[i];
    free(all);
    free(rk);
    double n1 = (double)nx, n2 = (double)ny, nn = (double)n;
    double u1 = r1 - n1 * (n1 + 1) / 2;
    double u2 = n1 * n2 - u1;
    double mu = n1 * n2 / 2;
    double var = n1 * n2 / 12.0 * ((nn + 1) - (nn > 1 ? ties / (nn * (nn - 1)) : 0));
    out->u = u1;
    out->sigma = var > 0 ? sqrt(var) : 0;
    if (out->sigma <= 0) {
        out->z = NAN;
        out->p = 1.0;
        return EMPQ_OK;
    }
    double u = u1 > u2 ? u1 : u2;
    out->z = (u - mu - 0.5) / out->sigma;
    double p = 2.0 * empq_stats_norm_sf(out->z);
    out->p = p > 1.0 ? 1.0 : p;
    return EMPQ_OK;
}

/* ==================== Kruskal-Wallis H ==================== */

int empq_stats_kruskal(const double *const *groups, const size_t *n, size_t k, empq_kw_result *out,
                       empq_error *err)
{
    if (groups == NULL || n == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "Kruskal-Wallis: NULL argument");
    size_t total = 0, used = 0;
    for (size_t g = 0; g < k; g++) {
        if (n[g] > 0 && groups[g] == NULL)
            return empq_error_set(err, EMPQ_EINVAL, "Kruskal-Wallis: group %zu is NULL", g);
        total += n[g];
        used += n[g] > 0;
    }
    memset(out, 0, sizeof *out);
    out->groups_used = used;
    out->df = used > 0 ? (int)used - 1 : 0;
    out->h = out->p = NAN;
    if (used < 2)
        return EMPQ_OK;
    double *all = malloc(total * sizeof *all);
    double *rk = malloc(total * sizeof *rk);
    if (all == NULL || rk == NULL) {
        free(all);
        free(rk);
        return empq_error_set(err, EMPQ_ENOMEM, "Kruskal-Wallis: out of memory");
    }
    size_t pos = 0;
    for (size_t g = 0; g < k; g++) {
        if (n[g] > 0)
            memcpy(all + pos, groups[g], n[g] * sizeof *all);
        pos += n[g];
    }
    double ties = 0;
    int rc = empq_stats_rank(all, total, rk, &ties);
    if (rc != EMPQ_OK) {
        free(all);
        free(rk);
        return empq_error_set(err, rc, "Kruskal-Wallis: %s", rc == EMPQ_EINVAL ? "a value is NaN" : "out of memory");
    }
    double nn = (double)total, s = 0;
    pos = 0;
    for (size_t g = 0; g < k; g++) {
        double r = 0;
        for (size_t i = 0; i < n[g]; i++)
            r += rk[pos + i];
        if (n[g] > 0)
            s += r * r / (double)n[g];
        pos += n[g];
    }
    free(all);
    free(rk);
    double h = 12.0 / (nn * (nn + 1)) * s - 3 * (nn + 1);
    double corr = 1.0 - ties / (nn * nn * nn - nn);
    if (corr <= 0)
        return EMPQ_OK; /* all values equal: not testable */
    out->h = h / corr;
    out->p = empq_stats_chi2_sf(out->h, out->df);
    return EMPQ_OK;
}

/* ==================== Holm ==================== */

static int dbl_idx_cmp(const void *a, const void *b)
{
    return rank_cmp(a, b);
}

/* The step-down (Holm) or step-up (Benjamini-Hochberg) adjustment over the
 * non-NaN p-values, sorted ascending. */
static int p_adjust(const double *p, size_t m, double *adj, int bh)
{
    if (m == 0)
        return EMPQ_OK;
    if (p == NULL || adj == NULL)
        return EMPQ_EINVAL;
    rank_item *it = malloc(m * sizeof *it);
    if (it == NULL)
        return EMPQ_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (isnan(p[i]))
            continue;
        it[k].v = p[i];
        it[k].i = i;
        k++;
    }
    qsort(it, k, sizeof *it, dbl_idx_cmp);
    if (bh) {
        double run = 1.0;
        for (size_t j = k; j-- > 0;) {
            double v = (double)k * it[j].v / (double)(j + 1);
            if (v < run)
                run = v;
            it[j].v = run;
        }
    } else {
        double run = 0;
        for (size_t j = 0; j < k; j++) {
            double v = (double)(k - j) * it[j].v;
            if (v > 1.0)
                v = 1.0;
            if (v > run)
                run = v;
            it[j].v = run;
        }
    }
    for (size_t i = 0; i < m; i++) {
        if (isnan(p[i]))
            adj[i] = NAN;
    }
    for (size_t j = 0; j < k; j++)
        adj[it[j].i] = it[j].v;
    free(it);
    return EMPQ_OK;
}

int empq_stats_holm(const double *p, size_t m, double *adj)
{
    return p_adjust(p, m, adj, 0);
}

int empq_stats_bh(const double *p, size_t m, double *adj)
{
    return p_adjust(p, m, adj, 1);
}

/* ==================== Krippendorff's alpha (ordinal) ==================== */

typedef struct kobs {
    size_t unit;
    int value;
} kobs;

static int kobs_cmp(const void *a, const void *b)
{
    const kobs *x = a, *y = b;
    if (x->unit != y->unit)
        return x->unit < y->unit ? -1 : 1;
    return (x->value > y->value) - (x->value < y->value);
}

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int empq_stats_krippendorff_ordinal(const size_t *unit, const int *value, size_t n,
                                    empq_alpha_result *out, empq_error *err)
{
    if (out == NULL || (n > 0 && (unit == NULL || value == NULL)))
        return empq_error_set(err, EMPQ_EINVAL, "Krippendorff's alpha: NULL argument");
    memset(out, 0, sizeof *out);
    out->alpha = NAN;
    if (n == 0)
        return EMPQ_OK;
    kobs *o = malloc(n * sizeof *o);
    int *vals = malloc(n * sizeof *vals);
    if (o == NULL || vals == NULL) {
        free(o);
        free(vals);
        return empq_error_set(err, EMPQ_ENOMEM, "Krippendorff's alpha: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        o[i].unit = unit[i];
        o[i].value = value[i];
    }
    qsort(o, n, sizeof *o, kobs_cmp);

    /* distinct categories among pairable values */
    size_t nv = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && o[b].unit == o[a].unit)
            b++;
        out->units++;
        if (b - a >= 2) {
            out->pairable_units++;
            for (size_t i = a; i < b; i++)
                vals[nv++] = o[i].value;
        }
        a = b;
    }
    if (out->pairable_units == 0) {
        free(o);
        free(vals);
        return EMPQ_OK;
    }
    qsort(vals, nv, sizeof *vals, int_cmp);
    size_t kc = 0;
    for (size_t i = 0; i < nv; i++) {
        if (kc == 0 || vals[kc - 1] != vals[i])
            vals[kc++] = vals[i];
    }
    out->categories = kc;
    double *coin = calloc(kc * kc, sizeof *coin);
    double *nc = calloc(kc, sizeof *nc);
    size_t *cnt = calloc(kc, sizeof *cnt);
    if (coin == NULL || nc == NULL || cnt == NULL) {
        free(o);
        free(vals);
        free(coin);
        free(nc);
        free(cnt);
        return empq_error_set(err, EMPQ_ENOMEM, "Krippendorff's alpha: out of memory");
    }
    /* coincidence matrix: o_ck = sum_u (number of c-k pairs in u) / (m_u - 1) */
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && o[b].unit == o[a].unit)
            b++;
        size_t m = b - a;
        if (m >= 2) {
            memset(cnt, 0, kc * sizeof *cnt);
            for (size_t i = a; i < b; i++) {
                int *hit = bsearch(&o[i].value, vals, kc, sizeof *vals, int_cmp);
                cnt[hit - vals]++;
            }
            for (size_t c = 0; c < kc; c++) {
                for (size_t k = 0; k < kc; k++) {
                    double pairs = (double)cnt[c] * (double)(c == k ? cnt[k] - (cnt[k] > 0) : cnt[k]);
                    if (c == k && cnt[c] == 0)
                        pairs = 0;
                    coin[c * kc + k] += pairs / (double)(m - 1);
                }
            }
        }
        a = b;
    }
    double nn = 0;
    for (size_t c = 0; c < kc; c++) {
        for (size_t k = 0; k < kc; k++)
            nc[c] += coin[c * kc + k];
        nn += nc[c];
    }
    out->pairable_values = nn;
    /* ordinal metric: delta_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2 */
    double obs = 0, exp = 0;
    for (size_t c = 0; c < kc; c++) {
        for (size_t k = 0; k < kc; k++) {
            size_t lo = c < k ? c : k, hi = c < k ? k : c;
            double s = 0;
            for (size_t g = lo; g <= hi; g++)
                s += nc[g];
            s -= (nc[c] + nc[k]) / 2;
            double d2 = s * s;
            obs += coin[c * kc + k] * d2;
            exp += nc[c] * nc[k] * d2;
        }
    }
    free(o);
    free(vals);
    free(coin);
    free(nc);
    free(cnt);
    if (exp <= 0)
        return EMPQ_OK;
    out->alpha = 1.0 - (nn - 1) * obs / exp;
    return EMPQ_OK;
}

/* ==================== descriptive ==================== */

double empq_stats_mean(const double *x, size_t n)
{
    if (x == NULL || n == 0)
        return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

double empq_stats_sd(const double *x, size_t n)
{
    if (x == NULL || n < 2)
        return NAN;
    double m = empq_stats_mean(x, n), s = 0;
    for (size_t i = 0; i < n; i++)
        s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (double)(n - 1));
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double empq_stats_median(const double *x, size_t n)
{
    if (x == NULL || n == 0)
        return NAN;
    double *c = malloc(n * sizeof *c);
    if (c == NULL)
        return NAN;
    memcpy(c, x, n * sizeof *c);
    qsort(c, n, sizeof *c, dbl_cmp);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

/* ==================== design-respecting fits ==================== */

/* Inverts the symmetric k x k matrix a (row major) into inv by LU (GSL).
 * Returns EMPQ_OK or EMPQ_ERANGE when a is singular. */
static int mat_inverse(const double *a, size_t k, double *inv)
{
    gsl_matrix *m = gsl_matrix_alloc(k, k), *mi = gsl_matrix_alloc(k, k);
    gsl_permutation *perm = gsl_permutation_alloc(k);
    int rc = EMPQ_ENOMEM;
    if (m != NULL && mi != NULL && perm != NULL) {
        for (size_t i = 0; i < k * k; i++)
            m->data[(i / k) * m->tda + i % k] = a[i];
        int sign;
        rc = EMPQ_ERANGE;
        if (gsl_linalg_LU_decomp(m, perm, &sign) == 0 && fabs(gsl_linalg_LU_det(m, sign)) > 1e-300 &&
            gsl_linalg_LU_invert(m, perm, mi) == 0) {
            rc = EMPQ_OK;
            for (size_t i = 0; i < k * k; i++) {
                inv[i] = mi->data[(i / k) * mi->tda + i % k];
                if (!isfinite(inv[i]))
                    rc = EMPQ_ERANGE;
            }
        }
    }
    gsl_permutation_free(perm);
    gsl_matrix_free(mi);
    gsl_matrix_free(m);
    return rc;
}

/* The naive and sandwich standard errors of a fit: hinv the inverse of the
 * information (k x k), score the per-observation scores (n x k). */
static int fit_errors(empq_fit_result *out, const double *hinv, const double *score, size_t n, size_t k,
                      const size_t *group, size_t n_groups)
{
    for (size_t j = 0; j < k; j++) {
        out->se[j] = sqrt(hinv[j * k + j]);
        out->se_cluster[j] = NAN;
    }
    out->groups = 0;
    if (group == NULL || n_groups < 2)
        return EMPQ_OK;
    double *sg = calloc(n_groups * k, sizeof *sg);
    double *meat = calloc(k * k, sizeof *meat);
    if (sg == NULL || meat == NULL) {
        free(sg);
        free(meat);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < k; j++)
            sg[group[i] * k + j] += score[i * k + j];
    }
    size_t used = 0;
    for (size_t g = 0; g < n_groups; g++) {
        for (size_t j = 0; j < k; j++) {
            for (size_t l = 0; l < k; l++)
                meat[j * k + l] += sg[g * k + j] * sg[g * k + l];
        }
    }
    /* clusters that hold an observation */
    unsigned char *seen = calloc(n_groups, 1);
    if (seen == NULL) {
        free(sg);
        free(meat);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!seen[group[i]]) {
            seen[group[i]] = 1;
            used++;
        }
    }
    free(seen);
    out->groups = used;
    double G = (double)used, corr = G / (G - 1.0) * ((double)n - 1.0) / ((double)n - (double)k);
    for (size_t j = 0; j < k; j++) {
        /* (H^-1 M H^-1)_jj */
        double v = 0;
        for (size_t a = 0; a < k; a++) {
            for (size_t b = 0; b < k; b++)
                v += hinv[j * k + a] * meat[a * k + b] * hinv[b * k + j];
        }
        out->se_cluster[j] = used >= 2 ? sqrt(v * corr) : NAN;
    }
    free(sg);
    free(meat);
    return EMPQ_OK;
}

static int fit_check(const double *x, const int *y, size_t n, size_t k, size_t n_params, const size_t *group,
                     size_t n_groups, empq_fit_result *out, empq_error *err, const char *what)
{
    if (x == NULL || y == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "%s: NULL argument", what);
    if (n_params == 0 || n_params > EMPQ_STATS_MAX_PARAMS)
        return empq_error_set(err, EMPQ_EINVAL, "%s: %zu parameters (1..%d allowed)", what, n_params,
                              EMPQ_STATS_MAX_PARAMS);
    if (n <= n_params)
        return empq_error_set(err, EMPQ_EINVAL, "%s: %zu observations for %zu parameters", what, n, n_params);
    for (size_t i = 0; i < n * k; i++) {
        if (!isfinite(x[i]))
            return empq_error_set(err, EMPQ_EINVAL, "%s: x[%zu][%zu] is not finite", what, i / k, i % k);
    }
    if (group != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (group[i] >= n_groups)
                return empq_error_set(err, EMPQ_EINVAL, "%s: group[%zu] = %zu, not below %zu", what, i, group[i],
                                      n_groups);
        }
    }
    memset(out, 0, sizeof *out);
    out->k = n_params;
    out->n = n;
    return EMPQ_OK;
}

static double logistic(double z)
{
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

int empq_stats_logit_fit(const double *x, const int *y, size_t n, size_t k, const size_t *group, size_t n_groups,
                         empq_fit_result *out, empq_error *err)
{
    int rc = fit_check(x, y, n, k, k, group, n_groups, out, err, "logit fit");
    if (rc != EMPQ_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (y[i] != 0 && y[i] != 1)
            return empq_error_set(err, EMPQ_EINVAL, "logit fit: y[%zu] = %d is not 0 or 1", i, y[i]);
    }
    double h[EMPQ_STATS_MAX_PARAMS * EMPQ_STATS_MAX_PARAMS], hinv[EMPQ_STATS_MAX_PARAMS * EMPQ_STATS_MAX_PARAMS];
    double g[EMPQ_STATS_MAX_PARAMS];
    double *b = out->beta;
    int conv = 0;
    for (int it = 0; it < 100 && !conv; it++) {
        memset(h, 0, sizeof h);
        memset(g, 0, sizeof g);
        for (size_t i = 0; i < n; i++) {
            const double *xi = x + i * k;
            double eta = 0;
            for (size_t j = 0; j < k; j++)
                eta += xi[j] * b[j];
            double p = logistic(eta), w = p * (1 - p);
            for (size_t j = 0; j < k; j++) {
                g[j] += xi[j] * (y[i] - p);
                for (size_t l = 0; l < k; l++)
                    h[j * k + l] += w * xi[j] * xi[l];
            }
        }
        if ((rc = mat_inverse(h, k, hinv)) != EMPQ_OK)
            return empq_error_set(err, rc, "logit fit: singular information matrix (separation or a constant "
                                           "column)");
        double step = 0;
        for (size_t j = 0; j < k; j++) {
            double d = 0;
            for (size_t l = 0; l < k; l++)
                d += hinv[j * k + l] * g[l];
            b[j] += d;
            if (fabs(d) > step)
                step = fabs(d);
        }
        out->iterations = it + 1;
        if (step < 1e-11)
            conv = 1;
        if (fabs(b[0]) > 50)
            break;
    }
    if (!conv)
        return empq_error_set(err, EMPQ_ERANGE, "logit fit: no convergence in %d steps (separation?)",
                              out->iterations);
    /* information, scores and log-likelihood at the estimate */
    double *score = malloc(n * k * sizeof *score);
    if (score == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "logit fit: out of memory");
    memset(h, 0, sizeof h);
    out->loglik = 0;
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * k;
        double eta = 0;
        for (size_t j = 0; j < k; j++)
            eta += xi[j] * b[j];
        double p = logistic(eta), w = p * (1 - p);
        out->loglik += y[i] ? log(p) : log1p(-p);
        for (size_t j = 0; j < k; j++) {
            score[i * k + j] = xi[j] * (y[i] - p);
            for (size_t l = 0; l < k; l++)
                h[j * k + l] += w * xi[j] * xi[l];
        }
    }
    rc = mat_inverse(h, k, hinv);
    if (rc == EMPQ_OK)
        rc = fit_errors(out, hinv, score, n, k, group, n_groups);
    free(score);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "logit fit: %s", rc == EMPQ_ENOMEM ? "out of memory" : "singular information");
    return EMPQ_OK;
}

/* logistic density and its derivative, 0 at +-infinity */
static void ord_fns(double z, double *F, double *f, double *fp)
{
    if (isinf(z)) {
        *F = z > 0 ? 1 : 0;
        *f = *fp = 0;
        return;
    }
    *F = logistic(z);
    *f = *F * (1 - *F);
    *fp = *f * (1 - 2 * *F);
}

/* Log-likelihood of the proportional-odds model at theta (b then cuts);
 * with grad/hess/score non-NULL also their values (hess: the negative
 * Hessian, the observed information). -inf when the cuts are not
 * increasing. */
static double ord_eval(const double *x, const int *y, size_t n, size_t k, int J, const double *th, double *grad,
                       double *info, double *score)
{
    size_t P = k + (size_t)J - 1;
    const double *c = th + k;
    for (int j = 1; j < J - 1; j++) {
        if (!(c[j] > c[j - 1]))
            return -INFINITY;
    }
    if (grad != NULL) {
        memset(grad, 0, P * sizeof *grad);
        memset(info, 0, P * P * sizeof *info);
    }
    double ll = 0;
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * k;
        double eta = 0;
        for (size_t j = 0; j < k; j++)
            eta += xi[j] * th[j];
        int yj = y[i]; /* 1..J */
        double u = yj < J ? c[yj - 1] - eta : INFINITY, l = yj > 1 ? c[yj - 2] - eta : -INFINITY;
        double Fu, fu, fpu, Fl, fl, fpl;
        ord_fns(u, &Fu, &fu, &fpu);
        ord_fns(l, &Fl, &fl, &fpl);
        double A = Fu - Fl;
        if (!(A > 0))
            return -INFINITY;
        ll += log(A);
        if (grad == NULL)
            continue;
        /* gradient terms */
        double gu = fu / A, gl = -fl / A, gb = -(fu - fl) / A;
        double s[EMPQ_STATS_MAX_PARAMS] = {0};
        for (size_t j = 0; j < k; j++)
            s[j] = gb * xi[j];
        size_t iu = yj < J ? k + (size_t)yj - 1 : (size_t)-1, il = yj > 1 ? k + (size_t)yj - 2 : (size_t)-1;
        if (iu != (size_t)-1)
            s[iu] += gu;
        if (il != (size_t)-1)
            s[il] += gl;
        for (size_t j = 0; j < P; j++) {
            grad[j] += s[j];
            if (score != NULL)
                score[i * P + j] = s[j];
        }
        /* second derivatives of log A */
        double d = fu - fl;
        double huu = fpu / A - fu * fu / (A * A), hll = -fpl / A - fl * fl / (A * A), hul = fu * fl / (A * A);
        double hbb = (fpu - fpl) / A - d * d / (A * A);
        double hbu = -(fpu / A - fu * d / (A * A)), hbl = fpl / A - fl * d / (A * A);
        for (size_t j = 0; j < k; j++) {
            for (size_t m = 0; m < k; m++)
                info[j * P + m] -= hbb * xi[j] * xi[m];
            if (iu != (size_t)-1) {
                info[j * P + iu] -= hbu * xi[j];
                info[iu * P + j] -= hbu * xi[j];
            }
            if (il != (size_t)-1) {
                info[j * P + il] -= hbl * xi[j];
                info[il * P + j] -= hbl * xi[j];
            }
        }
        if (iu != (size_t)-1)
            info[iu * P + iu] -= huu;
        if (il != (size_t)-1)
            info[il * P + il] -= hll;
        if (iu != (size_t)-1 && il != (size_t)-1) {
            info[iu * P + il] -= hul;
            info[il * P + iu] -= hul;
        }
    }
    return ll;
}

int empq_stats_ordinal_fit(const double *x, const int *y, size_t n, size_t k, int J, const size_t *group,
                           size_t n_groups, empq_fit_result *out, empq_error *err)
{
    if (J < 2)
        return empq_error_set(err, EMPQ_EINVAL, "ordinal fit: J = %d categories (at least 2)", J);
    size_t P = k + (size_t)J - 1;
    int rc = fit_check(x, y, n, k, P, group, n_groups, out, err, "ordinal fit");
    if (rc != EMPQ_OK)
        return rc;
    size_t cnt[EMPQ_STATS_MAX_PARAMS + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 1 || y[i] > J)
            return empq_error_set(err, EMPQ_EINVAL, "ordinal fit: y[%zu] = %d is not in 1..%d", i, y[i], J);
        cnt[y[i] - 1]++;
    }
    for (int j = 0; j < J; j++) {
        if (cnt[j] == 0)
            return empq_error_set(err, EMPQ_EINVAL, "ordinal fit: category %d never occurs", j + 1);
    }
    /* start: b = 0, cuts at the marginal cumulative logits */
    double *th = out->beta;
    size_t cum = 0;
    for (int j = 0; j < J - 1; j++) {
        cum += cnt[j];
        double q = (double)cum / (double)n;
        th[k + (size_t)j] = log(q / (1 - q));
    }
    double grad[EMPQ_STATS_MAX_PARAMS], info[EMPQ_STATS_MAX_PARAMS * EMPQ_STATS_MAX_PARAMS];
    double inv[EMPQ_STATS_MAX_PARAMS * EMPQ_STATS_MAX_PARAMS], trial[EMPQ_STATS_MAX_PARAMS];
    int conv = 0;
    double ll = ord_eval(x, y, n, k, J, th, grad, info, NULL);
    for (int it = 0; it < 100 && !conv; it++) {
        if ((rc = mat_inverse(info, P, inv)) != EMPQ_OK)
            return empq_error_set(err, rc, "ordinal fit: singular information matrix");
        double step[EMPQ_STATS_MAX_PARAMS], big = 0;
        for (size_t j = 0; j < P; j++) {
            step[j] = 0;
            for (size_t l = 0; l < P; l++)
                step[j] += inv[j * P + l] * grad[l];
            if (fabs(step[j]) > big)
                big = fabs(step[j]);
        }
        /* step halving keeps the cuts ordered and the likelihood rising */
        double t = 1, nll = -INFINITY;
        for (int h = 0; h < 40; h++, t /= 2) {
            for (size_t j = 0; j < P; j++)
                trial[j] = th[j] + t * step[j];
            nll = ord_eval(x, y, n, k, J, trial, NULL, NULL, NULL);
            if (nll >= ll - 1e-12 * fabs(ll))
                break;
        }
        memcpy(th, trial, P * sizeof *th);
        ll = ord_eval(x, y, n, k, J, th, grad, info, NULL);
        out->iterations = it + 1;
        if (big * t < 1e-11)
            conv = 1;
    }
    if (!conv)
        return empq_error_set(err, EMPQ_ERANGE, "ordinal fit: no convergence in %d steps", out->iterations);
    double *score = malloc(n * P * sizeof *score);
    if (score == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "ordinal fit: out of memory");
    out->loglik = ord_eval(x, y, n, k, J, th, grad, info, score);
    rc = mat_inverse(info, P, inv);
    if (rc == EMPQ_OK)
        rc = fit_errors(out, inv, score, n, P, group, n_groups);
    free(score);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "ordinal fit: %s", rc == EMPQ_ENOMEM ? "out of memory" : "singular information");
    return EMPQ_OK;
}

double empq_stats_icc1(const double *y, const size_t *group, size_t n, size_t n_groups)
{
    if (y == NULL || group == NULL || n == 0 || n_groups == 0)
        return NAN;
    double *sum = calloc(n_groups, sizeof *sum);
    size_t *cnt = calloc(n_groups, sizeof *cnt);
    if (sum == NULL || cnt == NULL) {
        free(sum);
        free(cnt);
        return NAN;
    }
    double tot = 0;
    for (size_t i = 0; i < n; i++) {
        if (group[i] >= n_groups) {
            free(sum);
            free(cnt);
            return NAN;
        }
        sum[group[i]] += y[i];
        cnt[group[i]]++;
        tot += y[i];
    }
    double N = (double)n, mean = tot / N, ssb = 0, ssw = 0, sq = 0;
    size_t G = 0;
    for (size_t g = 0; g < n_groups; g++) {
        if (cnt[g] == 0)
            continue;
        G++;
        double m = sum[g] / (double)cnt[g];
        ssb += (double)cnt[g] * (m - mean) * (m - mean);
        sq += (double)cnt[g] * (double)cnt[g];
    }
    for (size_t i = 0; i < n; i++) {
        double m = sum[group[i]] / (double)cnt[group[i]];
        ssw += (y[i] - m) * (y[i] - m);
    }
    free(sum);
    free(cnt);
    if (G < 2 || n <= G)
        return NAN;
    double msb = ssb / (double)(G - 1), msw = ssw / (N - (double)G);
    double n0 = (N - sq / N) / (double)(G - 1), den = msb + (n0 - 1) * msw;
    return den == 0 ? NAN : (msb - msw) / den;
}

int empq_stats_wilcoxon(const double *d, size_t n, double *stat, double *p, size_t *n_used)
{
    if ((d == NULL && n > 0) || stat == NULL || p == NULL || n_used == NULL)
        return EMPQ_EINVAL;
    *stat = *p = NAN;
    *n_used = 0;
    double *a = calloc(n ? n : 1, sizeof *a), *rk = calloc(n ? n : 1, sizeof *rk);
    if (a == NULL || rk == NULL) {
        free(a);
        free(rk);
        return EMPQ_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(d[i])) {
            free(a);
            free(rk);
            return EMPQ_EINVAL;
        }
        if (d[i] != 0)
            a[m++] = fabs(d[i]);
    }
    double ties = 0;
    int rc = empq_stats_rank(a, m, rk, &ties);
    if (rc == EMPQ_OK && m > 0) {
        double rplus = 0, rminus = 0;
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (d[i] == 0)
                continue;
            if (d[i] > 0)
                rplus += rk[j];
            else
                rminus += rk[j];
            j++;
        }
        double M = (double)m, mn = M * (M + 1) / 4, var = M * (M + 1) * (2 * M + 1) / 24 - ties / 48;
        *stat = rplus < rminus ? rplus : rminus;
        *p = var > 0 ? fmin(1.0, 2 * empq_stats_norm_sf(fabs(*stat - mn) / sqrt(var))) : NAN;
        *n_used = m;
    }
    free(a);
    free(rk);
    return rc;
}

/* ==================== agreement ==================== */

double empq_stats_kappa(const int *a, const int *b, size_t n, int J, int weights)
{
    if (a == NULL || b == NULL || n == 0 || J < 1 || J > 16)
        return NAN;
    double o[16 * 16] = {0}, ra[16] = {0}, cb[16] = {0};
    for (size_t i = 0; i < n; i++) {
        if (a[i] < 1 || a[i] > J || b[i] < 1 || b[i] > J)
            return NAN;
        o[(a[i] - 1) * J + (b[i] - 1)] += 1;
        ra[a[i] - 1] += 1;
        cb[b[i] - 1] += 1;
    }
    double num = 0, den = 0, N = (double)n;
    for (int i = 0; i < J; i++) {
        for (int j = 0; j < J; j++) {
            double w = weights == EMPQ_KAPPA_LINEAR      ? fabs((double)(i - j))
                       : weights == EMPQ_KAPPA_QUADRATIC ? (double)(i - j) * (i - j)
                                                         : (i != j);
            num += w * o[i * J + j] / N;
            den += w * ra[i] * cb[j] / (N * N);
        }
    }
    return den == 0 ? NAN : 1 - num / den;
}

double empq_stats_spearman(const double *x, const double *y, size_t n)
{
    if (x == NULL || y == NULL || n < 2)
        return NAN;
    double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
    double r = NAN;
    if (rx != NULL && ry != NULL && empq_stats_rank(x, n, rx, NULL) == EMPQ_OK &&
        empq_stats_rank(y, n, ry, NULL) == EMPQ_OK) {
        double mx = empq_stats_mean(rx, n), my = empq_stats_mean(ry, n), sxy = 0, sxx = 0, syy = 0;
        for (size_t i = 0; i < n; i++) {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        if (sxx > 0 && syy > 0)
            r = sxy / sqrt(sxx * syy);
    }
    free(rx);
    free(ry);
    return r;
}

/* ==================== prediction-powered inference ==================== */

int empq_stats_ppi_mean(const double *y, const double *f_l, size_t n, const double *f_u, size_t N, double z,
                        empq_ppi_result *out)
{
    if (y == NULL || f_l == NULL || f_u == NULL || out == NULL || n < 2 || N < 2 || !(z > 0))
        return EMPQ_EINVAL;
    double *r = malloc(n * sizeof *r);
    if (r == NULL)
        return EMPQ_ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = y[i] - f_l[i];
    double mu = empq_stats_mean(f_u, N), su = empq_stats_sd(f_u, N);
    double mr = empq_stats_mean(r, n), sr = empq_stats_sd(r, n);
    free(r);
    out->rectifier = mr;
    out->ppi = mu + mr;
    out->ppi_se = sqrt(su * su / (double)N + sr * sr / (double)n);
    out->ppi_lo = out->ppi - z * out->ppi_se;
    out->ppi_hi = out->ppi + z * out->ppi_se;
    /* judge alone over every prediction */
    double sum = 0, ss = 0, T = (double)(n + N);
    for (size_t i = 0; i < n; i++)
        sum += f_l[i];
    for (size_t i = 0; i < N; i++)
        sum += f_u[i];
    double mj = sum / T;
    for (size_t i = 0; i < n; i++)
        ss += (f_l[i] - mj) * (f_l[i] - mj);
    for (size_t i = 0; i < N; i++)
        ss += (f_u[i] - mj) * (f_u[i] - mj);
    double sej = sqrt(ss / (T - 1) / T);
    out->judge = mj;
    out->judge_lo = mj - z * sej;
    out->judge_hi = mj + z * sej;
    out->human = empq_stats_mean(y, n);
    out->human_se = empq_stats_sd(y, n) / sqrt((double)n);
    out->human_lo = out->human - z * out->human_se;
    out->human_hi = out->human + z * out->human_se;
    return EMPQ_OK;
}
