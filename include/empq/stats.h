/* stats.h: the statistics of the analysis report.
 *
 * Small, self-contained functions over plain arrays: contingency-table
 * chi-square with Cramer's V, Mann-Whitney U, Kruskal-Wallis H, Holm's
 * step-down adjustment, average ranks, Krippendorff's alpha (ordinal), and
 * descriptive helpers. Distribution functions come from GSL. The formulas
 * are in docs/analysis.md; each test is written to give the same numbers as
 * the scipy.stats function named in its comment.
 *
 * "Not testable" results (a table with fewer than two non-empty rows or
 * columns, groups with no variance at all) are reported with NaN statistic
 * and p-value and EMPQ_OK, so a report can print "n/a"; only misuse of the
 * function (NULL arrays, empty inputs, negative counts) is an error. */
#ifndef EMPQ_STATS_H
#define EMPQ_STATS_H

#include <stddef.h>

#include "empq/error.h"

/* Upper tail of the chi-square distribution with df degrees of freedom,
 * P(X > x) (gsl_cdf_chisq_Q). NaN when x or df is NaN or df <= 0. */
double empq_stats_chi2_sf(double x, double df);

/* Upper tail of the standard normal distribution, P(Z > z)
 * (gsl_cdf_ugaussian_Q). */
double empq_stats_norm_sf(double z);

/* A chi-square test of independence on an r x c table of counts. */
typedef struct empq_chi2_result {
    double statistic; /* Pearson's X^2, no continuity correction */
    int df;           /* (rows_used - 1)(cols_used - 1) */
    double p;         /* chi2_sf(statistic, df) */
    double cramers_v; /* sqrt(X^2 / (n (min(rows_used, cols_used) - 1))) */
    double n;         /* total count */
    size_t rows_used; /* rows with a non-zero total */
    size_t cols_used; /* columns with a non-zero total */
} empq_chi2_result;

/* Pearson's chi-square test of independence on counts (rows x cols, row
 * major), as scipy.stats.chi2_contingency(table, correction=False) and
 * scipy.stats.contingency.association(table, method="cramer").
 *
 * Rows and columns whose total is zero are left out (they have expected
 * count zero and carry no information), and df counts only the rest. When
 * fewer than two rows or two columns remain, the table is not testable:
 * statistic, p and cramers_v are NaN, df 0, and the function still returns
 * EMPQ_OK. Returns EMPQ_EINVAL when counts or out is NULL, rows or cols is
 * 0, or a count is negative or not finite (err says which cell). */
int empq_stats_chi2_independence(const double *counts, size_t rows, size_t cols, empq_chi2_result *out,
                                 empq_error *err);

/* Average ranks (1-based; ties get the mean of the ranks they span) of the
 * n values x into ranks (n doubles, caller's array). When tie_sum is not
 * NULL it receives sum(t^3 - t) over the groups of t tied values. Returns
 * EMPQ_OK, EMPQ_EINVAL (NULL array, or a NaN value), or EMPQ_ENOMEM. n may
 * be 0. */
int empq_stats_rank(const double *x, size_t n, double *ranks, double *tie_sum);

/* A Mann-Whitney U test. */
typedef struct empq_mwu_result {
    double u;  /* U of the first sample: R1 - n1 (n1 + 1) / 2 */
    double z;  /* (max(U1, U2) - n1 n2 / 2 - 0.5) / sigma, NaN when sigma = 0 */
    double p;  /* two-sided, min(1, 2 * norm_sf(z)); 1 when sigma = 0 */
    double sigma; /* tie-corrected standard deviation of U */
} empq_mwu_result;

/* The two-sided Mann-Whitney U test of x (nx values) against y (ny
 * values), normal approximation with tie correction and continuity
 * correction, as scipy.stats.mannwhitneyu(x, y, alternative="two-sided",
 * method="asymptotic", use_continuity=True). When every value is tied the
 * variance is zero: z is NaN and p is 1 (as scipy gives). Returns EMPQ_OK;
 * EMPQ_EINVAL when an array or out is NULL, nx or ny is 0, or a value is
 * NaN; EMPQ_ENOMEM. */
int empq_stats_mann_whitney(const double *x, size_t nx, const double *y, size_t ny, empq_mwu_result *out,
                            empq_error *err);

/* A Kruskal-Wallis H test. */
typedef struct empq_kw_result {
    double h; /* tie-corrected H; NaN when every value is the same */
    int df;   /* groups used - 1 */
    double p; /* chi2_sf(h, df); NaN when h is NaN */
    size_t groups_used; /* groups with at least one value */
} empq_kw_result;

/* The Kruskal-Wallis H test over k groups (group i has n[i] values at
 * groups[i]), as scipy.stats.kruskal(*groups). Empty groups are left out;
 * when fewer than two groups remain or all values are equal, h and p are
 * NaN (scipy raises there) and the function returns EMPQ_OK. Returns
 * EMPQ_EINVAL for NULL arrays (groups[i] may be NULL only when n[i] is 0)
 * or a NaN value; EMPQ_ENOMEM. */
int empq_stats_kruskal(const double *const *groups, const size_t *n, size_t k, empq_kw_result *out,
                       empq_error *err);

/* Holm's step-down adjustment of m p-values into adj (m doubles; may be
 * the same array as p): sort ascending, adj_(i) = max over j <= i of
 * min(1, (m - j + 1) p_(j)) (1-based), as statsmodels'
 * multipletests(method="holm"). NaN p-values are left out of the family
 * (m counts only the others) and stay NaN. Returns EMPQ_OK, EMPQ_EINVAL
 * (NULL array), EMPQ_ENOMEM. */
int empq_stats_holm(const double *p, size_t m, double *adj);

/* Krippendorff's alpha. */
typedef struct empq_alpha_result {
    double alpha;          /* 1 - D_o / D_e; NaN when not applicable */
    size_t units;          /* distinct units seen */
    size_t pairable_units; /* units with at least two values */
    double pairable_values; /* n: values in pairable units */
    size_t categories;     /* distinct values among the pairable ones */
} empq_alpha_result;

/* Krippendorff's alpha with the ordinal difference function over n
 * (unit, value) observations: value[i] is a rating (an ordered integer
 * category) that some rater gave to unit[i]. Only units with two or more
 * values count. alpha is NaN when no unit has two values, or when the
 * pairable values are all the same category (no expected disagreement).
 * Returns EMPQ_OK, EMPQ_EINVAL (NULL arrays with n > 0, NULL out), or
 * EMPQ_ENOMEM. */
int empq_stats_krippendorff_ordinal(const size_t *unit, const int *value, size_t n,
                                    empq_alpha_result *out, empq_error *err);

/* z of a two-sided 95% interval, the normal quantile 0.975. */
#define EMPQ_STATS_Z95 1.959963984540054

/* The Wilson score interval of a proportion: k successes in n trials, z the
 * normal quantile (EMPQ_STATS_Z95 for 95%). *lo and *hi (not NULL) get the
 * bounds, within [0, 1]; NaN both when n is 0. Returns EMPQ_OK, or
 * EMPQ_EINVAL when k > n, z is not positive or lo/hi is NULL. */
int empq_stats_wilson(size_t k, size_t n, double z, double *lo, double *hi);

/* Mean, sample standard deviation (n - 1 denominator) and median of n
 * values; NaN when not defined (n = 0; sd for n < 2). median needs a
 * scratch copy: it returns NaN when out of memory. */
double empq_stats_mean(const double *x, size_t n);
double empq_stats_sd(const double *x, size_t n);
double empq_stats_median(const double *x, size_t n);

/* ==================== design-respecting fits (issue 14) ==================== */

/* At most this many parameters in a fit. */
#define EMPQ_STATS_MAX_PARAMS 16

/* A maximum-likelihood fit with naive and participant-clustered errors. */
typedef struct empq_fit_result {
    size_t k;          /* parameters: the k columns of x, then (ordinal fit) the J - 1 cut-points */
    size_t n;          /* observations */
    size_t groups;     /* clusters (0 when no grouping was given) */
    int iterations;    /* Newton steps taken */
    double loglik;     /* log-likelihood at the estimate */
    double beta[EMPQ_STATS_MAX_PARAMS];       /* estimates */
    double se[EMPQ_STATS_MAX_PARAMS];         /* naive: sqrt diag of the inverse information */
    double se_cluster[EMPQ_STATS_MAX_PARAMS]; /* cluster-robust sandwich (NaN without groups) */
} empq_fit_result;

/* A logistic regression of y (0/1, n values) on x (n rows of k columns,
 * row major; include a column of ones for an intercept) by Newton-Raphson
 * (IRLS), with cluster-robust (sandwich) standard errors by group:
 *   V = G/(G-1) (n-1)/(n-k) H^-1 (sum_g s_g s_g') H^-1,
 * H = X'WX, s_g = sum over cluster g of x_i (y_i - p_i), as statsmodels'
 * GLM(y, x, family=Binomial()).fit(cov_type="cluster",
 * cov_kwds={"groups": group}). group (may be NULL: se_cluster NaN) holds
 * dense cluster indices below n_groups. Returns EMPQ_OK; EMPQ_EINVAL
 * (NULL arrays, k = 0 or > EMPQ_STATS_MAX_PARAMS, n <= k, y not 0/1, a
 * group index out of range); EMPQ_ERANGE when the fit does not converge in
 * 100 steps or the information matrix is singular (separation, a constant
 * column); EMPQ_ENOMEM. err says which. */
int empq_stats_logit_fit(const double *x, const int *y, size_t n, size_t k, const size_t *group, size_t n_groups,
                         empq_fit_result *out, empq_error *err);

/* A proportional-odds cumulative logit of the ordinal y (1..J, n values)
 * on x (n rows of k columns, no intercept column):
 *   P(Y <= j | x) = logistic(c_j - x'b), j = 1..J-1,
 * by Newton-Raphson with analytic derivatives. out->beta holds b (k
 * values) then c_1 < ... < c_{J-1}; the same point estimates as statsmodels'
 * OrderedModel(y, x, distr="logit").fit() (whose threshold parameters are
 * c_1, log(c_2 - c_1), ...). Standard errors: naive from the observed
 * information; clustered by the same sandwich as empq_stats_logit_fit
 * (the documented approximation of a cumulative-link mixed model).
 * Every category 1..J must occur. Returns as empq_stats_logit_fit. */
int empq_stats_ordinal_fit(const double *x, const int *y, size_t n, size_t k, int J, const size_t *group,
                           size_t n_groups, empq_fit_result *out, empq_error *err);

/* The one-way ANOVA intraclass correlation ICC(1) of y (n values) by group
 * (dense indices below n_groups), with unequal group sizes:
 *   ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW),
 *   n0 = (N - sum n_g^2 / N) / (G - 1),
 * over the groups that hold a value. NaN when fewer than two groups or
 * N <= G or MSB + (n0 - 1) MSW is 0. */
double empq_stats_icc1(const double *y, const size_t *group, size_t n, size_t n_groups);

/* Benjamini-Hochberg adjustment of m p-values into adj (may be p): sort
 * ascending, adj_(i) = min over j >= i of min(1, m p_(j) / j), as
 * statsmodels' multipletests(method="fdr_bh"). NaN p-values are left out
 * and stay NaN. Returns EMPQ_OK, EMPQ_EINVAL, EMPQ_ENOMEM. */
int empq_stats_bh(const double *p, size_t m, double *adj);

/* The Wilcoxon signed-rank test of the n paired differences d (zeros
 * dropped, average ranks of |d|, tie-corrected normal approximation
 * without continuity correction), as scipy.stats.wilcoxon(d,
 * zero_method="wilcox", correction=False, method="approx"). *stat gets
 * min(R+, R-), *p the two-sided p-value (NaN when no difference is
 * non-zero), *n_used the non-zero differences. Returns EMPQ_OK,
 * EMPQ_EINVAL (NULL, a NaN value), EMPQ_ENOMEM. */
int empq_stats_wilcoxon(const double *d, size_t n, double *stat, double *p, size_t *n_used);

/* ==================== agreement of two raters ==================== */

enum { EMPQ_KAPPA_NONE = 0, EMPQ_KAPPA_LINEAR = 1, EMPQ_KAPPA_QUADRATIC = 2 };

/* Cohen's kappa of the n label pairs (a[i], b[i]), labels 1..J (J <= 16):
 *   kappa = 1 - sum w_ij O_ij / sum w_ij E_ij,
 * O the observed proportions, E the product of the marginals, w_ij = 0/1
 * (none), |i - j| (linear) or (i - j)^2 (quadratic), as sklearn's
 * cohen_kappa_score(a, b, weights=None/"linear"/"quadratic"). NaN when n
 * is 0, a label is out of range, or sum w E is 0. */
double empq_stats_kappa(const int *a, const int *b, size_t n, int J, int weights);

/* Spearman's rho of x and y (n values): Pearson's correlation of the
 * average ranks, as scipy.stats.spearmanr. NaN when n < 2, a side is
 * constant, or out of memory. */
double empq_stats_spearman(const double *x, const double *y, size_t n);

/* ==================== prediction-powered inference ==================== */

/* A mean estimated three ways. */
typedef struct empq_ppi_result {
    double ppi, ppi_lo, ppi_hi;       /* prediction-powered estimate and interval */
    double ppi_se;
    double judge, judge_lo, judge_hi; /* mean of the predictions over all n + N (Wald) */
    double human, human_lo, human_hi; /* mean of the n labels alone (Wald) */
    double human_se;
    double rectifier;                 /* mean(y - f) over the labelled set */
} empq_ppi_result;

/* The prediction-powered mean (Angelopoulos et al., Science 382, 2023,
 * "Prediction-powered inference", the mean estimator):
 *   theta = mean(f_u) + mean(y - f_l),
 *   se^2  = var(f_u) / N + var(y - f_l) / n   (sample variances, n-1),
 * interval theta +- z se; y (n labels), f_l (the predictions on those n
 * items), f_u (the predictions on N other items). The judge-only figure
 * is the mean of the n + N predictions, the human-only figure the mean of
 * y, each with the Wald interval +- z sd / sqrt(count). Needs n >= 2,
 * N >= 2. Returns EMPQ_OK or EMPQ_EINVAL. */
int empq_stats_ppi_mean(const double *y, const double *f_l, size_t n, const double *f_u, size_t N, double z,
                        empq_ppi_result *out);

#endif
