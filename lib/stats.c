/* stats.c: the statistics of the analysis report (see stats.h and
 * docs/analysis.md for the formulas). Distribution functions from GSL. */
#include "empq/stats.h"

#include <gsl/gsl_cdf.h>
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

int empq_stats_holm(const double *p, size_t m, double *adj)
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
    double run = 0;
    for (size_t j = 0; j < k; j++) {
        double v = (double)(k - j) * it[j].v;
        if (v > 1.0)
            v = 1.0;
        if (v > run)
            run = v;
        it[j].v = run;
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
