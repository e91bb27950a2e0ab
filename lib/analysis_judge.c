/* analysis_judge.c: a judge's labels against the human ratings: agreement
 * (exact, Cohen's kappa unweighted / linear / quadratic, Krippendorff's
 * ordinal alpha, Spearman's rho, the confusion matrix) with bootstrap
 * intervals over dialogues, breakdowns, biases (source, length),
 * self-consistency, and prediction-powered estimates for a new model.
 * Formulas: docs/analysis.md, "Judge agreement". */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "analysis_int.h"
#include "empq/csvread.h"
#include "empq/stats.h"
#include "empq/util.h"

/* ==================== the judge CSV ==================== */

void empq_judge_labels_free(empq_judge_labels **lp)
{
    if (lp == NULL || *lp == NULL)
        return;
    empq_judge_labels *l = *lp;
    for (size_t i = 0; i < l->n; i++) {
        free(l->l[i].item);
        free(l->l[i].cond);
        free(l->l[i].judge);
        free(l->l[i].emotion);
    }
    free(l->l);
    free(l);
    *lp = NULL;
}

/* "1".."3", "bad", "okay", "ok", "good" (any case, blanks around) -> 1..3; 0 otherwise. */
static int parse_label(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 1 && s[0] >= '1' && s[0] <= '3')
        return s[0] - '0';
    if (n == 3 && strncasecmp(s, "bad", 3) == 0)
        return 1;
    if ((n == 4 && strncasecmp(s, "okay", 4) == 0) || (n == 2 && strncasecmp(s, "ok", 2) == 0))
        return 2;
    if (n == 4 && strncasecmp(s, "good", 4) == 0)
        return 3;
    return 0;
}

static int label_key_cmp(const void *x, const void *y)
{
    const empq_judge_label *a = *(empq_judge_label *const *)x, *b = *(empq_judge_label *const *)y;
    int c = strcmp(a->judge, b->judge);
    if (c == 0)
        c = strcmp(a->cond, b->cond);
    if (c == 0)
        c = strcmp(a->item, b->item);
    if (c == 0)
        c = (a->sample > b->sample) - (a->sample < b->sample);
    return c;
}

int empq_judge_labels_parse(const char *name, const char *data, size_t len, empq_judge_labels **out,
                            empq_error *err)
{
    if (out == NULL || (data == NULL && len > 0))
        return empq_error_set(err, EMPQ_EINVAL, "judge labels: NULL argument");
    *out = NULL;
    if (name == NULL)
        name = "judge labels";
    empq_judge_labels *l = calloc(1, sizeof *l);
    if (l == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
    empq_csvread *c = NULL;
    size_t cap = 0;
    int rc = empq_csvread_open_buf(name, data, len, &c, err);
    if (rc == EMPQ_OK)
        rc = empq_csvread_header(c, err);
    static const char *const need[] = {"item", "condition", "judge", "label"};
    long col[4] = {-1, -1, -1, -1};
    for (size_t i = 0; i < 4 && rc >= 0; i++) {
        col[i] = empq_csvread_col(c, need[i]);
        if (col[i] < 0)
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:1: no '%s' column in the header (need item, condition, "
                                                  "judge, label)", name, need[i]);
    }
    long scol = -1, ecol = -1, secol = -1, lcol = -1, tcol = -1;
    size_t nh = 0;
    if (rc >= 0) {
        scol = empq_csvread_col(c, "sample");
        ecol = empq_csvread_col(c, "emotion");
        secol = empq_csvread_col(c, "sentiment");
        lcol = empq_csvread_col(c, "length");
        tcol = empq_csvread_col(c, "response");
        nh = empq_csvread_header_count(c);
    }
    while (rc >= 0 && (rc = empq_csvread_next(c, err)) == 1) {
        size_t line = empq_csvread_line(c);
        if (empq_csvread_count(c) != nh) {
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: %zu fields, the header has %zu", name, line,
                                empq_csvread_count(c), nh);
            break;
        }
        const char *f[4];
        for (int i = 0; i < 4; i++)
            f[i] = empq_csvread_field(c, (size_t)col[i]);
        for (int i = 0; i < 3 && rc >= 0; i++) {
            if (f[i][0] == '\0')
                rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: empty %s", name, line, need[i]);
        }
        if (rc < 0)
            break;
        empq_judge_label x = {.sample = 1, .length = -1, .sentiment = EMPQ_SENT_UNKNOWN};
        x.value = parse_label(f[3]);
        if (x.value == 0) {
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: label '%.40s' is not 1, 2, 3, Bad, Okay or Good", name,
                                line, f[3]);
            break;
        }
        if (scol >= 0 && empq_csvread_field(c, (size_t)scol)[0] != '\0') {
            const char *sv = empq_csvread_field(c, (size_t)scol);
            char *end;
            long v = strtol(sv, &end, 10);
            if (*end != '\0' || v < 1 || v > 1000000) {
                rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: sample '%.40s' is not a positive integer", name,
                                    line, sv);
                break;
            }
            x.sample = (int)v;
        }
        if (lcol >= 0 && empq_csvread_field(c, (size_t)lcol)[0] != '\0') {
            const char *sv = empq_csvread_field(c, (size_t)lcol);
            char *end;
            long v = strtol(sv, &end, 10);
            if (*end != '\0' || v < 0) {
                rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: length '%.40s' is not a word count", name, line,
                                    sv);
                break;
            }
            x.length = v;
        } else if (tcol >= 0) {
            empq_style_counts sc;
            empq_style_count(empq_csvread_field(c, (size_t)tcol), &sc);
            x.length = (long)sc.words;
        }
        if (secol >= 0) {
            const char *sv = empq_csvread_field(c, (size_t)secol);
            x.sentiment = strcasecmp(sv, "positive") == 0   ? EMPQ_SENT_POSITIVE
                          : strcasecmp(sv, "negative") == 0 ? EMPQ_SENT_NEGATIVE
                                                            : EMPQ_SENT_UNKNOWN;
        }
        x.item = empq_strdup(f[0]);
        x.cond = empq_strdup(f[1]);
        x.judge = empq_strdup(f[2]);
        if (ecol >= 0 && empq_csvread_field(c, (size_t)ecol)[0] != '\0')
            x.emotion = empq_strdup(empq_csvread_field(c, (size_t)ecol));
        if (l->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            empq_judge_label *nl = realloc(l->l, nc * sizeof *nl);
            if (nl == NULL) {
                free(x.item);
                free(x.cond);
                free(x.judge);
                free(x.emotion);
                rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
                break;
            }
            l->l = nl;
            cap = nc;
        }
        l->l[l->n++] = x;
        if (x.item == NULL || x.cond == NULL || x.judge == NULL) {
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
            break;
        }
    }
    empq_csvread_free(&c);
    if (rc >= 0 && l->n == 0)
        rc = empq_error_set(err, EMPQ_EPARSE, "%s: no judge labels", name);
    if (rc >= 0) {
        /* one label per (judge, condition, item, sample) */
        empq_judge_label **s = malloc(l->n * sizeof *s);
        if (s == NULL) {
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
        } else {
            for (size_t i = 0; i < l->n; i++)
                s[i] = &l->l[i];
            qsort(s, l->n, sizeof *s, label_key_cmp);
            for (size_t i = 1; i < l->n && rc >= 0; i++) {
                if (label_key_cmp(&s[i - 1], &s[i]) == 0)
                    rc = empq_error_set(err, EMPQ_EPARSE, "%s: two labels for judge %s, condition %s, item %s, "
                                                          "sample %d", name, s[i]->judge, s[i]->cond, s[i]->item,
                                        s[i]->sample);
            }
            free(s);
        }
    }
    if (rc < 0) {
        empq_judge_labels_free(&l);
        return rc;
    }
    *out = l;
    return EMPQ_OK;
}

int empq_judge_labels_load(const char *path, empq_judge_labels **out, empq_error *err)
{
    if (out == NULL || path == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "judge labels: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &data, &len, err);
    if (rc != EMPQ_OK)
        return rc;
    rc = empq_judge_labels_parse(path, data, len, out, err);
    free(data);
    return rc;
}

/* ==================== stratified subset ==================== */

typedef struct skey {
    int s;
    uint64_t k;
    size_t i;
} skey;

static int skey_cmp(const void *x, const void *y)
{
    const skey *a = x, *b = y;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    return (a->k > b->k) - (a->k < b->k);
}

int empq_analysis_stratified_subset(const int *strata, size_t n, size_t k, unsigned long long seed,
                                    unsigned char *chosen)
{
    if ((strata == NULL || chosen == NULL) && n > 0)
        return EMPQ_EINVAL;
    if (n == 0)
        return EMPQ_OK;
    if (k >= n) {
        memset(chosen, 1, n);
        return EMPQ_OK;
    }
    memset(chosen, 0, n);
    /* units sorted by stratum, in a seeded random order within each */
    skey *v = malloc(n * sizeof *v);
    size_t *first = malloc((n + 1) * sizeof *first), *quota = malloc(n * sizeof *quota);
    double *rem = malloc(n * sizeof *rem);
    if (v == NULL || first == NULL || quota == NULL || rem == NULL) {
        free(v);
        free(first);
        free(quota);
        free(rem);
        return EMPQ_ENOMEM;
    }
    empq_rng r;
    empq_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (skey){strata[i], empq_rng_next(&r), i};
    qsort(v, n, sizeof *v, skey_cmp);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || v[i].s != v[i - 1].s)
            first[ns++] = i;
    }
    first[ns] = n;
    /* proportional allocation, the rest to the largest remainders */
    size_t given = 0;
    for (size_t s = 0; s < ns; s++) {
        double exact = (double)k * (double)(first[s + 1] - first[s]) / (double)n;
        quota[s] = (size_t)floor(exact);
        rem[s] = exact - (double)quota[s];
        given += quota[s];
    }
    while (given < k) {
        size_t best = 0;
        for (size_t s = 1; s < ns; s++) {
            if (rem[s] > rem[best])
                best = s;
        }
        quota[best]++;
        rem[best] = -1;
        given++;
    }
    for (size_t s = 0; s < ns; s++) {
        for (size_t j = 0; j < quota[s] && first[s] + j < first[s + 1]; j++)
            chosen[v[first[s] + j].i] = 1;
    }
    free(v);
    free(first);
    free(quota);
    free(rem);
    return EMPQ_OK;
}

/* ==================== agreement from a confusion matrix ==================== */

static const char *const stat_names[EMPQ_AGREE_N_STATS] = {
    "exact_agreement", "kappa", "kappa_linear", "kappa_quadratic", "krippendorff_alpha_ordinal", "spearman_rho",
    "judge_minus_human_mean"};

const char *empq_agree_stat_name(int i)
{
    return i >= 0 && i < EMPQ_AGREE_N_STATS ? stat_names[i] : NULL;
}

/* Every statistic from the 3 x 3 counts cm[h][j] (h the human label, j the
 * judge's): each is a function of the table alone (docs/analysis.md). */
void x__agree_from_confusion(const double *cm, double *v)
{
    double n = 0, row[3] = {0}, col[3] = {0};
    for (int h = 0; h < 3; h++) {
        for (int j = 0; j < 3; j++) {
            n += cm[h * 3 + j];
            row[h] += cm[h * 3 + j];
            col[j] += cm[h * 3 + j];
        }
    }
    for (int s = 0; s < EMPQ_AGREE_N_STATS; s++)
        v[s] = NAN;
    if (n == 0)
        return;
    v[EMPQ_AGREE_EXACT] = (cm[0] + cm[4] + cm[8]) / n;
    /* kappas: 1 - sum w O / sum w E */
    for (int wt = 0; wt < 3; wt++) {
        double num = 0, den = 0;
        for (int h = 0; h < 3; h++) {
            for (int j = 0; j < 3; j++) {
                double w = wt == 1 ? fabs((double)(h - j)) : wt == 2 ? (double)(h - j) * (h - j) : (h != j);
                num += w * cm[h * 3 + j] / n;
                den += w * row[h] * col[j] / (n * n);
            }
        }
        v[EMPQ_AGREE_KAPPA + wt] = den > 0 ? 1 - num / den : NAN;
    }
    /* Krippendorff's ordinal alpha, two values per unit: the coincidence
     * matrix is cm + cm', n_c its margins, N = 2n values */
    double nc[3], N = 2 * n;
    for (int c = 0; c < 3; c++)
        nc[c] = row[c] + col[c];
    double dobs = 0, dexp = 0;
    for (int c = 0; c < 3; c++) {
        for (int k = 0; k < 3; k++) {
            int lo = c < k ? c : k, hi = c < k ? k : c;
            double s = 0;
            for (int g = lo; g <= hi; g++)
                s += nc[g];
            double delta = (s - (nc[c] + nc[k]) / 2) * (s - (nc[c] + nc[k]) / 2);
            dobs += (cm[c * 3 + k] + cm[k * 3 + c]) * delta;
            dexp += nc[c] * nc[k] * delta;
        }
    }
    v[EMPQ_AGREE_ALPHA] = dexp > 0 ? 1 - (N - 1) * dobs / dexp : NAN;
    /* Spearman: Pearson of the average ranks; the rank of label c is the
     * mean position of its block among the sorted labels */
    double rh[3], rj[3], ch = 0, cj = 0;
    for (int c = 0; c < 3; c++) {
        rh[c] = ch + (row[c] + 1) / 2;
        rj[c] = cj + (col[c] + 1) / 2;
        ch += row[c];
        cj += col[c];
    }
    double mr = (n + 1) / 2, sxy = 0, sxx = 0, syy = 0;
    for (int h = 0; h < 3; h++) {
        sxx += row[h] * (rh[h] - mr) * (rh[h] - mr);
        syy += col[h] * (rj[h] - mr) * (rj[h] - mr);
        for (int j = 0; j < 3; j++)
            sxy += cm[h * 3 + j] * (rh[h] - mr) * (rj[j] - mr);
    }
    v[EMPQ_AGREE_SPEARMAN] = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
    v[EMPQ_AGREE_BIAS] = (col[1] + 2 * col[2] - row[1] - 2 * row[2]) / n; /* labels 1..3: offsets cancel */
}

/* ==================== the judge analysis ==================== */

void x__judge_free(empq_judge **jp)
{
    if (jp == NULL || *jp == NULL)
        return;
    empq_judge *j = *jp;
    for (size_t i = 0; i < j->n_judges; i++) {
        empq_judge_one *o = &j->j[i];
        free(o->name);
        for (size_t g = 0; g < o->n_ag; g++)
            free(o->ag[g].group);
        free(o->ag);
    }
    free(j->j);
    free(j->source);
    free(j->estimate_cond);
    free(j);
    *jp = NULL;
}

static int name_cmp(const void *x, const void *y)
{
    return strcmp(**(char *const *const *)x, **(char *const *const *)y);
}

/* Item index by name (bsearch over sorted, pointers into base), -1 when absent. */
static long item_find(char *const **sorted, size_t n, char *const *base, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(*sorted[mid], name);
        if (c == 0)
            return (long)(sorted[mid] - base);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static long cond_find(const empq_ratings *r, const char *name)
{
    for (size_t c = 0; c < r->n_conds; c++) {
        if (strcmp(r->conds[c], name) == 0)
            return (long)c;
    }
    return -1;
}

/* One pair: a human rating and the judge's label of the same response. */
typedef struct jpair {
    size_t item;
    int h, j;
    size_t cond;
    int emotion, sentiment;
    long length;
} jpair;

/* The length bins (words). */
static const long len_edges[] = {15, 30, 60};
static const char *const len_names[] = {"0-15 words", "16-30 words", "31-60 words", "61+ words"};

static int len_bin(long w)
{
    int b = 0;
    while (b < 3 && w > len_edges[b])
        b++;
    return b;
}

/* Fills g from the pairs for which sel(pair) is true, with the bootstrap
 * over the dialogues among them. */
static int agree_group(empq_agree *g, const jpair *p, size_t np, const unsigned char *sel, size_t n_items,
                       size_t n_boot, uint64_t seed)
{
    double *icm = calloc(n_items * 9, sizeof *icm);
    size_t *items = malloc((n_items ? n_items : 1) * sizeof *items);
    double *boot = malloc(n_boot * EMPQ_AGREE_N_STATS * sizeof *boot), *tmp = malloc(n_boot * sizeof *tmp);
    if (icm == NULL || items == NULL || boot == NULL || tmp == NULL) {
        free(icm);
        free(items);
        free(boot);
        free(tmp);
        return EMPQ_ENOMEM;
    }
    double cm[9] = {0};
    size_t m = 0;
    for (size_t i = 0; i < np; i++) {
        if (!sel[i])
            continue;
        size_t k = (size_t)(p[i].h - 1) * 3 + (size_t)(p[i].j - 1);
        double *ic = icm + p[i].item * 9;
        int fresh = 1;
        for (int t = 0; t < 9; t++)
            fresh = fresh && ic[t] == 0;
        if (fresh)
            items[m++] = p[i].item;
        ic[k] += 1;
        cm[k] += 1;
        g->n++;
    }
    g->dialogues = m;
    for (int t = 0; t < 9; t++)
        g->confusion[t] = (size_t)cm[t];
    x__agree_from_confusion(cm, g->value);
    empq_rng r;
    empq_rng_seed(&r, seed);
    for (size_t b = 0; b < n_boot; b++) {
        double bc[9] = {0};
        for (size_t k = 0; k < m; k++) {
            const double *ic = icm + items[empq_rng_below(&r, m ? m : 1)] * 9;
            for (int t = 0; t < 9; t++)
                bc[t] += ic[t];
        }
        x__agree_from_confusion(bc, boot + b * EMPQ_AGREE_N_STATS);
    }
    for (int s = 0; s < EMPQ_AGREE_N_STATS; s++) {
        g->lo[s] = g->hi[s] = NAN;
        if (m < 2)
            continue;
        for (size_t b = 0; b < n_boot; b++)
            tmp[b] = boot[b * EMPQ_AGREE_N_STATS + s];
        x__percentile_ci(tmp, n_boot, &g->lo[s], &g->hi[s]);
    }
    free(icm);
    free(items);
    free(boot);
    free(tmp);
    return EMPQ_OK;
}

/* Appends a group to o->ag; the name is copied. */
static empq_agree *ag_push(empq_judge_one *o, size_t *cap, const char *kind, const char *group)
{
    if (o->n_ag == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        empq_agree *na = realloc(o->ag, nc * sizeof *na);
        if (na == NULL)
            return NULL;
        o->ag = na;
        *cap = nc;
    }
    empq_agree *g = &o->ag[o->n_ag];
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->group = empq_strdup(group);
    if (g->group == NULL)
        return NULL;
    o->n_ag++;
    return g;
}

/* Per judge: its labels by (condition, item) in dense arrays. */
typedef struct jtab {
    int *v1, *v2;   /* label of the lowest sample / the next one; 0 none */
    int *s1;        /* the lowest sample number */
    long *len;      /* words, -1 unknown */
} jtab;

static int estimate(empq_judge *J, empq_judge_one *o, const empq_ratings *r, const empq_judge_labels *jl,
                    const empq_judge_opts *opts, char *const **sorted, empq_error *err);

int empq_judge_compute(empq_analysis *a, const empq_ratings *r, const empq_judge_labels *jl,
                       const empq_judge_opts *opts, const char *source, empq_error *err)
{
    if (a == NULL || r == NULL || jl == NULL || opts == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "judge: NULL argument");
    empq_judge *J = calloc(1, sizeof *J);
    if (J == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
    x__judge_free(&a->judge);
    a->judge = J;
    J->n_boot = opts->n_boot ? opts->n_boot : 1000;
    J->seed = opts->seed;
    J->source = empq_strdup(source);
    size_t nc = r->n_conds, ni = r->n_items, cells = nc * ni;
    /* judges, first-seen order */
    char **names = malloc(jl->n * sizeof *names);
    char *const **sorted = malloc((ni ? ni : 1) * sizeof *sorted);
    jtab t = {calloc(cells ? cells : 1, sizeof(int)), calloc(cells ? cells : 1, sizeof(int)),
              calloc(cells ? cells : 1, sizeof(int)), malloc((cells ? cells : 1) * sizeof(long))};
    jpair *p = malloc((r->n ? r->n : 1) * sizeof *p);
    unsigned char *sel = malloc(r->n ? r->n : 1);
    int rc = EMPQ_OK;
    if (names == NULL || sorted == NULL || t.v1 == NULL || t.v2 == NULL || t.s1 == NULL || t.len == NULL ||
        p == NULL || sel == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
        goto done;
    }
    for (size_t i = 0; i < ni; i++)
        sorted[i] = &r->items[i];
    qsort(sorted, ni, sizeof *sorted, name_cmp);
    size_t nj = 0;
    for (size_t i = 0; i < jl->n; i++) {
        size_t k = 0;
        while (k < nj && strcmp(names[k], jl->l[i].judge) != 0)
            k++;
        if (k == nj)
            names[nj++] = jl->l[i].judge;
    }
    J->j = calloc(nj, sizeof *J->j);
    if (J->j == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
        goto done;
    }
    J->n_judges = nj;
    size_t matched_all = 0;
    for (size_t k = 0; k < nj && rc == EMPQ_OK; k++) {
        empq_judge_one *o = &J->j[k];
        o->name = empq_strdup(names[k]);
        memset(t.v1, 0, cells * sizeof(int));
        memset(t.v2, 0, cells * sizeof(int));
        memset(t.s1, 0, cells * sizeof(int));
        for (size_t c = 0; c < cells; c++)
            t.len[c] = -1;
        int has_len = 0;
        for (size_t i = 0; i < jl->n; i++) {
            const empq_judge_label *x = &jl->l[i];
            if (strcmp(x->judge, names[k]) != 0)
                continue;
            o->n_labels++;
            long ci = cond_find(r, x->cond), it = ci >= 0 ? item_find(sorted, ni, r->items, x->item) : -1;
            if (it < 0)
                continue;
            size_t cell = (size_t)ci * ni + (size_t)it;
            if (x->length >= 0) {
                t.len[cell] = x->length;
                has_len = 1;
            }
            if (t.v1[cell] == 0 || x->sample < t.s1[cell]) {
                t.v2[cell] = t.v1[cell];
                t.v1[cell] = x->value;
                t.s1[cell] = x->sample;
            } else if (t.v2[cell] == 0) {
                t.v2[cell] = x->value;
            }
        }
        /* pairs */
        size_t np = 0;
        for (size_t i = 0; i < r->n; i++) {
            const empq_rating *h = &r->r[i];
            size_t cell = h->cond * ni + h->item;
            if (t.v1[cell] == 0)
                continue;
            p[np++] = (jpair){h->item, h->value, t.v1[cell], h->cond, h->emotion, h->sentiment, t.len[cell]};
        }
        matched_all += np;
        /* self-consistency: sample 1 against sample 2 */
        double sc[9] = {0};
        for (size_t c = 0; c < cells; c++) {
            if (t.v1[c] != 0 && t.v2[c] != 0) {
                sc[(t.v1[c] - 1) * 3 + (t.v2[c] - 1)] += 1;
                o->self_n++;
            }
        }
        double sv[EMPQ_AGREE_N_STATS];
        x__agree_from_confusion(sc, sv);
        o->self_exact = sv[EMPQ_AGREE_EXACT];
        o->self_kappa_q = sv[EMPQ_AGREE_KAPPA_QUADRATIC];
        if (np == 0)
            continue;
        /* groups */
        size_t cap = 0;
        uint64_t seed = opts->seed ^ (0x9e3779b97f4a7c15ULL * (k + 1));
        empq_agree *g;
        memset(sel, 1, np);
        if ((g = ag_push(o, &cap, "all", "all")) == NULL ||
            agree_group(g, p, np, sel, ni, J->n_boot, seed) != EMPQ_OK) {
            rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
            break;
        }
        for (int kind = 0; kind < 4 && rc == EMPQ_OK; kind++) {
            size_t ng = kind == 0 ? nc : kind == 1 ? 2 : kind == 2 ? r->n_emotions : (has_len ? 4 : 0);
            for (size_t gi = 0; gi < ng && rc == EMPQ_OK; gi++) {
                size_t any = 0;
                for (size_t i = 0; i < np; i++) {
                    sel[i] = kind == 0   ? p[i].cond == gi
                             : kind == 1 ? p[i].sentiment == (int)gi
                             : kind == 2 ? p[i].emotion == (int)gi
                                         : p[i].length >= 0 && len_bin(p[i].length) == (int)gi;
                    any += sel[i];
                }
                if (any == 0)
                    continue;
                static const char *const kinds[] = {"condition", "sentiment", "emotion", "length"};
                const char *gname = kind == 0   ? r->conds[gi]
                                    : kind == 1 ? (gi == EMPQ_SENT_POSITIVE ? "positive" : "negative")
                                    : kind == 2 ? r->emotions[gi]
                                                : len_names[gi];
                if ((g = ag_push(o, &cap, kinds[kind], gname)) == NULL ||
                    agree_group(g, p, np, sel, ni, J->n_boot, seed + 1 + (uint64_t)kind * 1000 + gi) != EMPQ_OK)
                    rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
            }
        }
    }
    if (rc == EMPQ_OK && opts->estimate_cond != NULL) {
        J->estimate_cond = empq_strdup(opts->estimate_cond);
        for (int v = 0; v < 3; v++)
            J->base_share[v] = a->cond[a->baseline].share[v];
        J->base_n = (double)a->cond[a->baseline].n;
        for (size_t k = 0; k < nj && rc == EMPQ_OK; k++)
            rc = estimate(J, &J->j[k], r, jl, opts, sorted, err);
    } else if (rc == EMPQ_OK && matched_all == 0) {
        rc = empq_error_set(err, EMPQ_EINVAL, "judge: no judge label matches a human rating (same condition and "
                                              "item); the conditions rated are %s%s", r->conds[0],
                            r->n_conds > 1 ? ", ..." : "");
    }
done:
    free(names);
    free(sorted);
    free(t.v1);
    free(t.v2);
    free(t.s1);
    free(t.len);
    free(p);
    free(sel);
    if (rc != EMPQ_OK)
        x__judge_free(&a->judge);
    return rc;
}

/* The relative increase theta / p_b - 1 and its delta-method interval. */
static void increase(double theta, double se, double pb, double nb, double *inc, double *lo, double *hi)
{
    double vb = pb * (1 - pb) / nb;
    *inc = theta / pb - 1;
    double s = sqrt(se * se / (pb * pb) + theta * theta * vb / (pb * pb * pb * pb));
    *lo = *inc - EMPQ_STATS_Z95 * s;
    *hi = *inc + EMPQ_STATS_Z95 * s;
}

static int estimate(empq_judge *J, empq_judge_one *o, const empq_ratings *r, const empq_judge_labels *jl,
                    const empq_judge_opts *opts, char *const **sorted, empq_error *err)
{
    const char *cond = opts->estimate_cond;
    long ci = cond_find(r, cond);
    /* the judged responses: lowest sample per item */
    size_t n = 0;
    for (size_t i = 0; i < jl->n; i++)
        n += strcmp(jl->l[i].judge, o->name) == 0 && strcmp(jl->l[i].cond, cond) == 0;
    if (n == 0)
        return empq_error_set(err, EMPQ_EINVAL, "judge: --estimate %s: judge %s labelled no response of it", cond,
                              o->name);
    const empq_judge_label **rows = malloc(n * sizeof *rows);
    double *hy = malloc(n * 3 * sizeof *hy);
    int *lab = malloc(n * sizeof *lab), *strata = malloc(n * sizeof *strata);
    unsigned char *keep = malloc(n);
    double *y = malloc(n * sizeof *y), *fl = malloc(n * sizeof *fl), *fu = malloc(n * sizeof *fu);
    int rc = EMPQ_OK;
    if (rows == NULL || hy == NULL || lab == NULL || strata == NULL || keep == NULL || y == NULL || fl == NULL ||
        fu == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
        goto done;
    }
    /* the judge's rows of cond sorted by (item, sample): the first of each item is its lowest sample */
    size_t m = 0, nr = 0;
    for (size_t i = 0; i < jl->n; i++) {
        const empq_judge_label *x = &jl->l[i];
        if (strcmp(x->judge, o->name) == 0 && strcmp(x->cond, cond) == 0)
            rows[nr++] = x;
    }
    qsort(rows, nr, sizeof *rows, label_key_cmp); /* judge and condition are the same for all */
    for (size_t i = 0; i < nr; i++) {
        if (m == 0 || strcmp(rows[m - 1]->item, rows[i]->item) != 0)
            rows[m++] = rows[i];
    }
    /* human labels: per item, the share of its ratings in each category */
    double *hc = calloc((r->n_items ? r->n_items : 1) * 3, sizeof *hc);
    int *hemo = malloc((r->n_items ? r->n_items : 1) * sizeof *hemo);
    if (hc == NULL || hemo == NULL) {
        free(hc);
        free(hemo);
        rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
        goto done;
    }
    for (size_t i = 0; ci >= 0 && i < r->n; i++) {
        if (r->r[i].cond == (size_t)ci) {
            hc[r->r[i].item * 3 + (size_t)r->r[i].value - 1] += 1;
            hemo[r->r[i].item] = r->r[i].emotion;
        }
    }
    size_t labelled = 0;
    for (size_t k = 0; k < m; k++) {
        long it = ci >= 0 ? item_find(sorted, r->n_items, r->items, rows[k]->item) : -1;
        const double *cnt = it >= 0 ? hc + (size_t)it * 3 : NULL;
        double tot = cnt != NULL ? cnt[0] + cnt[1] + cnt[2] : 0;
        strata[k] = tot > 0 ? hemo[it] : -1;
        lab[k] = tot > 0;
        labelled += lab[k];
        for (int v = 0; v < 3; v++)
            hy[k * 3 + v] = tot > 0 ? cnt[v] / tot : NAN;
    }
    free(hc);
    free(hemo);
    /* keep only a subset of the human labels when asked */
    memset(keep, 1, m);
    if (opts->human_subset > 0 && opts->human_subset < labelled) {
        size_t *idx = malloc(labelled * sizeof *idx);
        int *st = malloc(labelled * sizeof *st);
        unsigned char *ch = malloc(labelled);
        if (idx == NULL || st == NULL || ch == NULL) {
            free(idx);
            free(st);
            free(ch);
            rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory");
            goto done;
        }
        size_t q = 0;
        for (size_t k = 0; k < m; k++) {
            if (lab[k]) {
                idx[q] = k;
                st[q++] = strata[k];
            }
        }
        rc = empq_analysis_stratified_subset(st, q, opts->human_subset, opts->seed, ch);
        for (size_t z = 0; z < q; z++)
            keep[idx[z]] = ch[z];
        free(idx);
        free(st);
        free(ch);
        if (rc != EMPQ_OK) {
            rc = empq_error_set(err, rc, "judge: out of memory");
            goto done;
        }
    }
    for (int v = 0; v < 3 && rc == EMPQ_OK; v++) {
        size_t nl = 0, nu = 0;
        for (size_t k = 0; k < m; k++) {
            double f = rows[k]->value == v + 1;
            if (lab[k] && keep[k]) {
                y[nl] = hy[k * 3 + v];
                fl[nl++] = f;
            } else {
                fu[nu++] = f;
            }
        }
        o->est_n_human = nl;
        o->est_n_judged = nu;
        empq_judge_estimate *e = &o->est[v];
        if (empq_stats_ppi_mean(y, fl, nl, fu, nu, EMPQ_STATS_Z95, &e->ppi) != EMPQ_OK) {
            rc = empq_error_set(err, EMPQ_EINVAL, "judge: --estimate %s, judge %s: %zu responses with human "
                                                  "labels and %zu without; each needs at least 2 (use "
                                                  "--human-subset N to keep labels for N responses only)",
                                cond, o->name, nl, nu);
            break;
        }
        double pb = J->base_share[v], nb = J->base_n;
        increase(e->ppi.ppi, e->ppi.ppi_se, pb, nb, &e->inc[0], &e->inc_lo[0], &e->inc_hi[0]);
        increase(e->ppi.judge, (e->ppi.judge_hi - e->ppi.judge) / EMPQ_STATS_Z95, pb, nb, &e->inc[1],
                 &e->inc_lo[1], &e->inc_hi[1]);
        increase(e->ppi.human, e->ppi.human_se, pb, nb, &e->inc[2], &e->inc_lo[2], &e->inc_hi[2]);
    }
    o->has_estimate = rc == EMPQ_OK;
done:
    free(rows);
    free(hy);
    free(lab);
    free(strata);
    free(keep);
    free(y);
    free(fl);
    free(fu);
    return rc;
}
