/* test_stats.c: lib/stats.c against hand-computed textbook values and the
 * edge cases (a zero row or column, all ties, n = 1, NaN handling). */
#include <math.h>

#include "check.h"
#include "empq/stats.h"
#include "empq/util.h"

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol) do { check__count++; double check__a = (a), check__b = (b); \
    double check__s = fabs(check__b) > 1 ? fabs(check__b) : 1; \
    if (!(fabs(check__a - check__b) <= (tol) * check__s)) { \
        fprintf(stderr, "%s:%d: %s ~= %s failed: %.12g != %.12g\n", __FILE__, __LINE__, #a, #b, \
                check__a, check__b); exit(1); } } while (0)

/* relative agreement, for small p-values */
#define CHECK_REL(a, b, tol) do { check__count++; double check__a = (a), check__b = (b); \
    if (!(fabs(check__a - check__b) <= (tol) * fabs(check__b))) { \
        fprintf(stderr, "%s:%d: %s ~= %s failed: %.12g != %.12g\n", __FILE__, __LINE__, #a, #b, \
                check__a, check__b); exit(1); } } while (0)

static void test_distributions(void)
{
    /* chi-square with 2 df is exponential: P(X > x) = exp(-x/2) */
    CHECK_REL(empq_stats_chi2_sf(7.2, 2), exp(-3.6), 1e-12);
    CHECK_REL(empq_stats_chi2_sf(200, 2), exp(-100), 1e-10);
    CHECK_NEAR(empq_stats_chi2_sf(3.841458820694124, 1), 0.05, 1e-12);
    CHECK_NEAR(empq_stats_chi2_sf(0, 3), 1.0, 0);
    CHECK(isnan(empq_stats_chi2_sf(1, 0)));
    CHECK(isnan(empq_stats_chi2_sf(NAN, 2)));
    CHECK_NEAR(empq_stats_norm_sf(0), 0.5, 1e-15);
    CHECK_NEAR(empq_stats_norm_sf(1.959963984540054), 0.025, 1e-12);
}

static void test_chi2(void)
{
    empq_chi2_result r;
    empq_error err = {0};
    /* [[10,20],[20,10]]: every expected count is 15, X^2 = 4 * 25/15 */
    double t1[] = {10, 20, 20, 10};
    CHECK_INT(empq_stats_chi2_independence(t1, 2, 2, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.statistic, 20.0 / 3.0, 1e-12);
    CHECK_INT(r.df, 1);
    CHECK_NEAR(r.p, 0.009823274507519235, 1e-12);
    CHECK_NEAR(r.cramers_v, 1.0 / 3.0, 1e-12);
    CHECK_NEAR(r.n, 60, 0);

    /* a zero column is left out: the same as the 2 x 2 table */
    double t2[] = {10, 0, 20, 20, 0, 10};
    CHECK_INT(empq_stats_chi2_independence(t2, 2, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.statistic, 20.0 / 3.0, 1e-12);
    CHECK_INT(r.df, 1);
    CHECK_INT(r.cols_used, 2);

    /* 3 x 3 (scipy.stats.chi2_contingency, correction=False) */
    double t3[] = {12, 5, 9, 7, 14, 3, 4, 6, 10};
    CHECK_INT(empq_stats_chi2_independence(t3, 3, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.statistic, 13.11857251444208, 1e-12);
    CHECK_INT(r.df, 4);
    CHECK_NEAR(r.p, 0.010710727368809835, 1e-10);
    CHECK_NEAR(r.cramers_v, sqrt(13.11857251444208 / (70 * 2.0)), 1e-12);

    /* a zero row leaves one row: not testable, but not an error */
    double t4[] = {10, 20, 30, 0, 0, 0};
    CHECK_INT(empq_stats_chi2_independence(t4, 2, 3, &r, &err), EMPQ_OK);
    CHECK(isnan(r.statistic));
    CHECK(isnan(r.p));
    CHECK_INT(r.df, 0);
    CHECK_INT(r.rows_used, 1);

    /* independent table: X^2 = 0, p = 1 */
    double t5[] = {1, 2, 3, 2, 4, 6};
    CHECK_INT(empq_stats_chi2_independence(t5, 2, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.statistic, 0, 1e-12);
    CHECK_NEAR(r.p, 1, 1e-12);

    double bad[] = {1, -2, 3, 4};
    CHECK_INT(empq_stats_chi2_independence(bad, 2, 2, &r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "cell (0, 1)");
    CHECK_INT(empq_stats_chi2_independence(NULL, 2, 2, &r, &err), EMPQ_EINVAL);
}

static void test_rank(void)
{
    double x[] = {30, 10, 20, 20, 40};
    double rk[5], ties = -1;
    CHECK_INT(empq_stats_rank(x, 5, rk, &ties), EMPQ_OK);
    CHECK_NEAR(rk[0], 4, 0);
    CHECK_NEAR(rk[1], 1, 0);
    CHECK_NEAR(rk[2], 2.5, 0);
    CHECK_NEAR(rk[3], 2.5, 0);
    CHECK_NEAR(rk[4], 5, 0);
    CHECK_NEAR(ties, 6, 0); /* one pair: 2^3 - 2 */
    CHECK_INT(empq_stats_rank(NULL, 0, NULL, &ties), EMPQ_OK);
    double nan1[] = {1, NAN};
    CHECK_INT(empq_stats_rank(nan1, 2, rk, NULL), EMPQ_EINVAL);
}

static void test_mann_whitney(void)
{
    empq_mwu_result r;
    empq_error err = {0};
    /* complete separation, no ties: U1 = 0, sigma^2 = 9/12 * 7 */
    double x[] = {1, 2, 3}, y[] = {4, 5, 6};
    CHECK_INT(empq_stats_mann_whitney(x, 3, y, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.u, 0, 0);
    CHECK_NEAR(r.sigma, sqrt(5.25), 1e-12);
    CHECK_NEAR(r.z, 4.0 / sqrt(5.25), 1e-12);
    CHECK_NEAR(r.p, 0.08085559837005224, 1e-12);

    /* with ties (scipy.stats.mannwhitneyu, method="asymptotic") */
    double x2[] = {1, 2, 2, 3}, y2[] = {2, 3, 3, 5, 5};
    CHECK_INT(empq_stats_mann_whitney(x2, 4, y2, 5, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.u, 3, 1e-12);
    CHECK_NEAR(r.p, 0.09783166898477647, 1e-12);

    /* all ties: zero variance, p = 1 */
    double a[] = {2, 2}, b[] = {2, 2, 2};
    CHECK_INT(empq_stats_mann_whitney(a, 2, b, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.u, 3, 0);
    CHECK(isnan(r.z));
    CHECK_NEAR(r.p, 1, 0);

    /* n = 1 each */
    double one[] = {1}, two[] = {2};
    CHECK_INT(empq_stats_mann_whitney(one, 1, two, 1, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.u, 0, 0);
    CHECK_NEAR(r.p, 1, 1e-12);

    CHECK_INT(empq_stats_mann_whitney(one, 0, two, 1, &r, &err), EMPQ_EINVAL);
}

static void test_kruskal(void)
{
    empq_kw_result r;
    empq_error err = {0};
    /* ranks 1..9 in three blocks: H = 12/90 * (36 + 225 + 576)/3 - 30 = 7.2 */
    double g1[] = {1, 2, 3}, g2[] = {4, 5, 6}, g3[] = {7, 8, 9};
    const double *gs[] = {g1, g2, g3};
    size_t ns[] = {3, 3, 3};
    CHECK_INT(empq_stats_kruskal(gs, ns, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.h, 7.2, 1e-12);
    CHECK_INT(r.df, 2);
    CHECK_NEAR(r.p, exp(-3.6), 1e-12);

    /* with ties (scipy.stats.kruskal) */
    double h1[] = {1, 1, 2}, h2[] = {2, 3, 3}, h3[] = {3, 4};
    const double *hs[] = {h1, h2, h3};
    size_t hn[] = {3, 3, 2};
    CHECK_INT(empq_stats_kruskal(hs, hn, 3, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.h, 5.414529914529908, 1e-12);
    CHECK_NEAR(r.p, 0.06671903681479413, 1e-12);

    /* an empty group is left out */
    const double *es[] = {g1, NULL, g3};
    size_t en[] = {3, 0, 3};
    CHECK_INT(empq_stats_kruskal(es, en, 3, &r, &err), EMPQ_OK);
    CHECK_INT(r.groups_used, 2);
    CHECK_INT(r.df, 1);

    /* all values equal: not testable */
    double c1[] = {5, 5}, c2[] = {5};
    const double *cs[] = {c1, c2};
    size_t cn[] = {2, 1};
    CHECK_INT(empq_stats_kruskal(cs, cn, 2, &r, &err), EMPQ_OK);
    CHECK(isnan(r.h));
    CHECK(isnan(r.p));

    /* one group: not testable */
    CHECK_INT(empq_stats_kruskal(gs, ns, 1, &r, &err), EMPQ_OK);
    CHECK(isnan(r.h));
}

static void test_holm(void)
{
    double p[] = {0.01, 0.04, 0.03, 0.005}, adj[4];
    CHECK_INT(empq_stats_holm(p, 4, adj), EMPQ_OK);
    CHECK_NEAR(adj[0], 0.03, 1e-15);
    CHECK_NEAR(adj[1], 0.06, 1e-15); /* 1 x 0.04, raised to the running max */
    CHECK_NEAR(adj[2], 0.06, 1e-15);
    CHECK_NEAR(adj[3], 0.02, 1e-15);
    double q[] = {0.5, NAN, 0.6};
    CHECK_INT(empq_stats_holm(q, 3, q), EMPQ_OK); /* in place; NaN stays out */
    CHECK_NEAR(q[0], 1.0, 0);
    CHECK(isnan(q[1]));
    CHECK_NEAR(q[2], 1.0, 0);
    double one[] = {0.2};
    CHECK_INT(empq_stats_holm(one, 1, one), EMPQ_OK);
    CHECK_NEAR(one[0], 0.2, 0);
}

static void test_krippendorff(void)
{
    /* Krippendorff (2011), "Computing Krippendorff's alpha-reliability",
     * the 4 coders x 12 units example with missing values: alpha ordinal
     * = 0.815 (nominal 0.743, interval 0.849). '.' = missing (0 here). */
    static const int data[4][12] = {
        {1, 2, 3, 3, 2, 1, 4, 1, 2, 0, 0, 0},
        {1, 2, 3, 3, 2, 2, 4, 1, 2, 5, 0, 3},
        {0, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, 0},
        {1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, 0},
    };
    size_t unit[48];
    int value[48];
    size_t n = 0;
    for (size_t c = 0; c < 4; c++) {
        for (size_t u = 0; u < 12; u++) {
            if (data[c][u] == 0)
                continue;
            unit[n] = u;
            value[n] = data[c][u];
            n++;
        }
    }
    empq_alpha_result r;
    empq_error err = {0};
    CHECK_INT(empq_stats_krippendorff_ordinal(unit, value, n, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.alpha, 0.815, 0.0005);
    CHECK_INT(r.units, 12);
    CHECK_INT(r.pairable_units, 11); /* unit 12 has one value */
    CHECK_NEAR(r.pairable_values, 40, 1e-12);
    CHECK_INT(r.categories, 5);

    /* perfect agreement: 1 */
    size_t u2[] = {0, 0, 1, 1, 2, 2};
    int v2[] = {1, 1, 3, 3, 2, 2};
    CHECK_INT(empq_stats_krippendorff_ordinal(u2, v2, 6, &r, &err), EMPQ_OK);
    CHECK_NEAR(r.alpha, 1.0, 1e-12);

    /* one rating per unit: not applicable */
    size_t u3[] = {0, 1, 2};
    int v3[] = {1, 2, 3};
    CHECK_INT(empq_stats_krippendorff_ordinal(u3, v3, 3, &r, &err), EMPQ_OK);
    CHECK(isnan(r.alpha));
    CHECK_INT(r.pairable_units, 0);

    /* every value the same: no expected disagreement, not applicable */
    int v4[] = {2, 2, 2, 2, 2, 2};
    CHECK_INT(empq_stats_krippendorff_ordinal(u2, v4, 6, &r, &err), EMPQ_OK);
    CHECK(isnan(r.alpha));
}

static void test_descriptive(void)
{
    double x[] = {4, 1, 3, 2};
    CHECK_NEAR(empq_stats_mean(x, 4), 2.5, 0);
    CHECK_NEAR(empq_stats_sd(x, 4), sqrt(5.0 / 3.0), 1e-12);
    CHECK_NEAR(empq_stats_median(x, 4), 2.5, 0);
    CHECK_NEAR(empq_stats_median(x, 3), 3, 0);
    CHECK(isnan(empq_stats_mean(x, 0)));
    CHECK(isnan(empq_stats_sd(x, 1)));
}

/* Newcombe (1998), "Two-sided confidence intervals for the single
 * proportion", Statistics in Medicine 17:857-872, Table I, method 3 (score
 * interval without continuity correction), to the 4 decimals printed. */
static void test_wilson(void)
{
    static const struct {
        size_t k, n;
        double lo, hi;
    } t[] = {{81, 263, 0.2553, 0.3662}, {15, 148, 0.0624, 0.1605}, {0, 20, 0.0, 0.1611}, {1, 29, 0.0061, 0.1718}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double lo = -1, hi = -1;
        CHECK_INT(empq_stats_wilson(t[i].k, t[i].n, EMPQ_STATS_Z95, &lo, &hi), EMPQ_OK);
        CHECK_NEAR(lo, t[i].lo, 0.00005);
        CHECK_NEAR(hi, t[i].hi, 0.00005);
    }
    double lo, hi;
    /* all successes: the upper bound is 1 exactly, the lower one n/(n+z^2) */
    CHECK_INT(empq_stats_wilson(6, 6, EMPQ_STATS_Z95, &lo, &hi), EMPQ_OK);
    CHECK_NEAR(hi, 1.0, 0);
    CHECK_NEAR(lo, 6.0 / (6.0 + EMPQ_STATS_Z95 * EMPQ_STATS_Z95), 1e-12);
    /* symmetric about 1/2 for k = n/2 */
    CHECK_INT(empq_stats_wilson(50, 100, EMPQ_STATS_Z95, &lo, &hi), EMPQ_OK);
    CHECK_NEAR(lo + hi, 1.0, 1e-12);
    CHECK_INT(empq_stats_wilson(0, 0, EMPQ_STATS_Z95, &lo, &hi), EMPQ_OK);
    CHECK(isnan(lo) && isnan(hi));
    CHECK_INT(empq_stats_wilson(3, 2, EMPQ_STATS_Z95, &lo, &hi), EMPQ_EINVAL);
    CHECK_INT(empq_stats_wilson(1, 2, 0, &lo, &hi), EMPQ_EINVAL);
    CHECK_INT(empq_stats_wilson(1, 2, EMPQ_STATS_Z95, NULL, &hi), EMPQ_EINVAL);
}

static void test_kappa_spearman(void)
{
    /* expected: 1 - mean w(a_i - b_i) / mean over all (i, j) of w(a_i - b_j) */
    int a[] = {1, 2, 3, 1, 2, 3, 3, 2}, b[] = {1, 2, 3, 2, 3, 1, 3, 3};
    CHECK_NEAR(empq_stats_kappa(a, b, 8, 3, EMPQ_KAPPA_NONE), 0.23809523809523814, 1e-12);
    CHECK_NEAR(empq_stats_kappa(a, b, 8, 3, EMPQ_KAPPA_LINEAR), 0.2857142857142857, 1e-12);
    CHECK_NEAR(empq_stats_kappa(a, b, 8, 3, EMPQ_KAPPA_QUADRATIC), 1.0 / 3.0, 1e-12);
    CHECK_NEAR(empq_stats_kappa(a, a, 8, 3, EMPQ_KAPPA_QUADRATIC), 1.0, 1e-12);
    int c[] = {2, 2, 2};
    CHECK(isnan(empq_stats_kappa(c, c, 3, 3, EMPQ_KAPPA_NONE))); /* no expected disagreement */
    CHECK(isnan(empq_stats_kappa(a, b, 8, 2, EMPQ_KAPPA_NONE))); /* label 3 out of range */
    /* scipy.stats.spearmanr */
    double x[] = {1, 2, 2, 3, 3, 3, 1, 2}, y[] = {2, 2, 1, 3, 3, 2, 1, 3};
    CHECK_NEAR(empq_stats_spearman(x, y, 8), 0.5933333333333333, 1e-12);
    double k[] = {1, 1, 1};
    CHECK(isnan(empq_stats_spearman(k, y, 3)));
}

static void test_bh_wilcoxon_icc(void)
{
    /* statsmodels multipletests(method="fdr_bh") of [0.01, 0.04, 0.03, NaN, 0.2] */
    double p[] = {0.01, 0.04, 0.03, NAN, 0.2}, adj[5];
    CHECK_INT(empq_stats_bh(p, 5, adj), EMPQ_OK);
    CHECK_NEAR(adj[0], 0.04, 1e-15);
    CHECK_NEAR(adj[1], 0.04 * 4 / 3, 1e-15);
    CHECK_NEAR(adj[2], 0.04 * 4 / 3, 1e-15);
    CHECK(isnan(adj[3]));
    CHECK_NEAR(adj[4], 0.2, 1e-15);
    /* scipy.stats.wilcoxon(d, zero_method="wilcox", correction=False, method="approx") */
    double d[] = {1.5, -0.5, 2, 0, 2, -1, 3, 0.5, 2, -2, 1, 1}, st, pv;
    size_t used;
    CHECK_INT(empq_stats_wilcoxon(d, 12, &st, &pv, &used), EMPQ_OK);
    CHECK_NEAR(st, 14.0, 0);
    CHECK_NEAR(pv, 0.08876164265638718, 1e-12);
    CHECK_INT((int)used, 11);
    /* ICC(1): two groups of two, between-group variance only */
    double v[] = {1, 1, 0, 0};
    size_t g[] = {0, 0, 1, 1};
    CHECK_NEAR(empq_stats_icc1(v, g, 4, 2), 1.0, 1e-12);
    double w[] = {1, 0, 1, 0};
    /* MSB = 0, MSW = 0.5, n0 = 2: (0 - 0.5) / (0 + 0.5) = -1 */
    CHECK_NEAR(empq_stats_icc1(w, g, 4, 2), -1.0, 1e-12);
}

static void test_fits(void)
{
    empq_error err = {0};
    empq_fit_result f, o;
    /* logit on one binary covariate reproduces the two log odds exactly:
     * x = 0: 30 of 100, x = 1: 60 of 100 */
    double x[400];
    int y[200];
    size_t grp[200];
    double x1[200];
    int y12[200];
    for (int i = 0; i < 200; i++) {
        int one = i >= 100, k = i % 100;
        x[2 * i] = 1;
        x[2 * i + 1] = one;
        x1[i] = one;
        y[i] = one ? k < 60 : k < 30;
        y12[i] = y[i] + 1;
        grp[i] = (size_t)i / 5;
    }
    CHECK_INT(empq_stats_logit_fit(x, y, 200, 2, grp, 40, &f, &err), EMPQ_OK);
    CHECK_NEAR(f.beta[0], log(0.3 / 0.7), 1e-10);
    CHECK_NEAR(f.beta[1], log(0.6 / 0.4) - log(0.3 / 0.7), 1e-10);
    /* naive SE of a log odds ratio: sqrt(1/a + 1/b + 1/c + 1/d) */
    CHECK_NEAR(f.se[1], sqrt(1 / 30.0 + 1 / 70.0 + 1 / 60.0 + 1 / 40.0), 1e-10);
    CHECK_INT((int)f.groups, 40);
    CHECK(f.se_cluster[1] > 0);
    /* J = 2: the ordinal fit is the logit with P(Y <= 1) = F(c - b x) */
    CHECK_INT(empq_stats_ordinal_fit(x1, y12, 200, 1, 2, grp, 40, &o, &err), EMPQ_OK);
    CHECK_NEAR(o.beta[0], f.beta[1], 1e-9);
    CHECK_NEAR(o.beta[1], -f.beta[0], 1e-9);
    CHECK_NEAR(o.se[0], f.se[1], 1e-8);
    CHECK_NEAR(o.se_cluster[0], f.se_cluster[1], 1e-8);
    /* refusals */
    y[3] = 2;
    CHECK_INT(empq_stats_logit_fit(x, y, 200, 2, NULL, 0, &f, &err), EMPQ_EINVAL);
    y12[3] = 3;
    CHECK_INT(empq_stats_ordinal_fit(x1, y12, 200, 1, 4, NULL, 0, &o, &err), EMPQ_EINVAL); /* 4 never occurs */
    y12[3] = 0;
    CHECK_INT(empq_stats_ordinal_fit(x1, y12, 200, 1, 3, NULL, 0, &o, &err), EMPQ_EINVAL); /* out of 1..J */
    for (int i = 0; i < 200; i++)
        y[i] = i >= 100; /* complete separation */
    CHECK(empq_stats_logit_fit(x, y, 200, 2, NULL, 0, &f, &err) != EMPQ_OK);
}

/* Prediction-powered inference under a deliberately biased judge: the
 * nominal 95% interval covers the true share in 93-97% of 2,000 seeded
 * replications, the judge-only interval almost never does, and the
 * human-only interval is wider than the combined one. */
static void test_ppi_coverage(void)
{
    enum { REPS = 2000, NL = 200, NU = 2000 };
    const double truth = 0.40; /* P(human says Good) */
    static double y[NL], fl[NL], fu[NU];
    empq_rng r;
    empq_rng_seed(&r, 14);
    int cover_ppi = 0, cover_judge = 0;
    double w_ppi = 0, w_human = 0;
    for (int rep = 0; rep < REPS; rep++) {
        for (int i = 0; i < NL + NU; i++) {
            int good = empq_rng_below(&r, 1000000) < (uint64_t)(truth * 1000000);
            /* the judge: Good for 95% of the Good ones and 20% of the rest (biased up) */
            int judged = empq_rng_below(&r, 100) < (good ? 95u : 20u);
            if (i < NL) {
                y[i] = good;
                fl[i] = judged;
            } else {
                fu[i - NL] = judged;
            }
        }
        empq_ppi_result p;
        CHECK_INT(empq_stats_ppi_mean(y, fl, NL, fu, NU, EMPQ_STATS_Z95, &p), EMPQ_OK);
        cover_ppi += p.ppi_lo <= truth && truth <= p.ppi_hi;
        cover_judge += p.judge_lo <= truth && truth <= p.judge_hi;
        w_ppi += p.ppi_hi - p.ppi_lo;
        w_human += p.human_hi - p.human_lo;
    }
    double cov = (double)cover_ppi / REPS, covj = (double)cover_judge / REPS;
    fprintf(stderr, "ppi coverage %.4f, judge-only %.4f, mean width ppi %.4f human-only %.4f\n", cov, covj,
            w_ppi / REPS, w_human / REPS);
    CHECK(cov >= 0.93 && cov <= 0.97);
    CHECK(covj < 0.5);
    CHECK(w_human > w_ppi * 1.1);
}

int main(void)
{
    RUN(test_distributions);
    RUN(test_chi2);
    RUN(test_rank);
    RUN(test_mann_whitney);
    RUN(test_kruskal);
    RUN(test_holm);
    RUN(test_krippendorff);
    RUN(test_descriptive);
    RUN(test_wilson);
    RUN(test_kappa_spearman);
    RUN(test_bh_wilcoxon_icc);
    RUN(test_fits);
    RUN(test_ppi_coverage);
    CHECK_DONE();
}
