/* test_stats.c: lib/stats.c against hand-computed textbook values and the
 * edge cases (a zero row or column, all ties, n = 1, NaN handling). */
#include <math.h>

#include "check.h"
#include "empq/stats.h"

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
    CHECK_DONE();
}
