/* analysis.h: the studies' tables and charts from the ratings.
 *
 * Three steps, each usable alone:
 *
 *   1. load: ratings (a Welivita-Pu release file, or the rating site's long
 *      export) into empq_ratings; response texts (responses.jsonl, or the
 *      response_<condition> columns of a Welivita-Pu file) into
 *      empq_corpus;
 *   2. compute: empq_analysis_compute fills an empq_analysis with every
 *      figure of the report (per condition, tests against the baseline,
 *      per emotion, per sentiment, rater agreement, style per source);
 *   3. write: empq_analysis_write puts report.md, report.html (one
 *      self-contained file, inline CSS and SVG) and tables/NAME.csv in a
 *      folder.
 *
 * Every figure's formula is in docs/analysis.md, with the input layouts. */
#ifndef EMPQ_ANALYSIS_H
#define EMPQ_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"
#include "empq/stats.h"
#include "empq/util.h"

/* ==================== inputs ==================== */

typedef enum empq_ratings_layout {
    /* one row per dialogue, a rating_<condition> column per condition
     * (values 1 = Bad, 2 = Okay, 3 = Good), emotion and sentiment columns */
    EMPQ_LAYOUT_WELIVITA_PU = 0,
    /* one row per rating: participant, condition, batch, item, position,
     * rating (1-3), optional emotion and sentiment */
    EMPQ_LAYOUT_LONG = 1
} empq_ratings_layout;

/* Parses "welivita-pu" or "long" into *out. Returns EMPQ_OK or EMPQ_EINVAL
 * (name NULL or unknown; *out untouched). */
int empq_analysis_layout_parse(const char *name, empq_ratings_layout *out);

/* Sentiment of an emotion or a rating: */
enum { EMPQ_SENT_NEGATIVE = 0, EMPQ_SENT_POSITIVE = 1, EMPQ_SENT_UNKNOWN = -1 };

/* One rating. Indices point into the arrays of its empq_ratings. */
typedef struct empq_rating {
    size_t cond;      /* condition index */
    size_t unit;      /* unit index: one (condition, item) pair, for agreement */
    int emotion;      /* emotion index, or -1 when unknown */
    int sentiment;    /* EMPQ_SENT_* */
    int value;        /* 1 = Bad, 2 = Okay, 3 = Good */
    size_t item;      /* item (dialogue) index into items[], the same in every condition */
    long participant; /* rater index, or -1 when the file names none (welivita-pu: the
                         annotator_<condition> column; long: participant) */
} empq_rating;

/* A set of ratings. All strings and arrays are owned by the struct. */
typedef struct empq_ratings {
    char **conds;        /* condition names, in column / first-seen order */
    size_t n_conds;
    char **emotions;     /* emotion labels, sorted (lower case as read) */
    size_t n_emotions;
    empq_rating *r;
    size_t n;
    size_t n_units;      /* distinct (condition, item) pairs */
    size_t n_participants; /* distinct raters (0 when the layout has none) */
    char **items;        /* item (dialogue) ids: dialog_id / item column ("row N" when absent) */
    size_t n_items;
    size_t n_simulated;  /* ratings from simulated raters: study_id "SIMULATED" in the long
                            layout (what `empq demo` writes); 0 for a Welivita-Pu file */
} empq_ratings;

/* Loads ratings from the CSV file at path (RFC 4180: quoted fields, ""
 * escapes, CRLF or LF, embedded newlines; columns found by name in the
 * header). Empty rating cells are skipped (a missing rating); any other
 * value outside 1..3 is an error.
 *
 * Returns EMPQ_OK with *out set (caller frees with empq_ratings_free);
 * EMPQ_ENOTFOUND / EMPQ_EIO when the file cannot be read; EMPQ_EPARSE with
 * err "path:line: what" for malformed CSV, a missing column (no rating_*
 * column, or one of participant/condition/item/rating for the long
 * layout), or a bad rating; EMPQ_ENOMEM. On failure *out is NULL. */
int empq_ratings_load(const char *path, empq_ratings_layout layout, empq_ratings **out, empq_error *err);

/* The same from a buffer (data, len bytes; need not be NUL-terminated);
 * name is used in error texts only. */
int empq_ratings_parse(const char *name, const char *data, size_t len, empq_ratings_layout layout,
                       empq_ratings **out, empq_error *err);

/* Frees *r and everything it owns and sets *r to NULL; r and *r may be NULL. */
void empq_ratings_free(empq_ratings **r);

/* Response texts by source, for the style section. */
typedef struct empq_corpus {
    char **sources;   /* source names, first-seen order */
    size_t n_sources;
    size_t *source;   /* source index of text i */
    char **text;      /* the response texts, byte-exact */
    char **item;      /* the dialogue of text i (prompt_id / dialog_id), NULL when unknown */
    size_t n;
} empq_corpus;

/* Loads responses.jsonl: one JSON object per line with at least the string
 * keys source and response (a null response, e.g. a failed job, is
 * skipped; blank lines are skipped). Returns EMPQ_OK with *out (caller
 * frees with empq_corpus_free); EMPQ_ENOTFOUND / EMPQ_EIO; EMPQ_EPARSE with
 * "path:line: what" for invalid JSON or a missing/wrongly typed key;
 * EMPQ_ENOMEM. */
int empq_corpus_load_jsonl(const char *path, empq_corpus **out, empq_error *err);

/* Loads the response_<condition> columns of a Welivita-Pu file (one text
 * per dialogue per condition that has a rating_<condition> column; empty
 * cells are skipped). Returns as empq_ratings_load; EMPQ_ENOTFOUND with
 * *out NULL when the file has no response_<condition> column. */
int empq_corpus_load_welivita(const char *path, empq_corpus **out, empq_error *err);

/* Frees *c and sets *c to NULL; c and *c may be NULL. */
void empq_corpus_free(empq_corpus **c);

/* ==================== style features ==================== */

/* Raw counts of one response text (UTF-8; an invalid byte counts as one
 * U+FFFD). See docs/analysis.md for the exact rules. */
typedef struct empq_style_counts {
    size_t words;        /* maximal runs of letters/digits (apostrophes inside) */
    size_t sentences;    /* segments with a word, ended by . ! ? ... or the end */
    size_t letters;      /* codepoints inside words (apostrophes included) */
    size_t exclamations; /* '!' */
    size_t questions;    /* '?' */
    size_t emojis;       /* emoji codepoints; a ZWJ sequence or a flag counts once */
    size_t first_person; /* i, me, my, mine, myself (and i'm, i've, ...) */
    size_t second_person; /* you, your, yours, yourself, yourselves (you're, ...) */
    size_t apology;      /* words starting sorry, apolog */
    size_t gratitude;    /* words starting thank, grateful, gratitude, appreciat */
} empq_style_counts;

/* Counts text (NUL-terminated; NULL counts as "") into *out. */
void empq_style_count(const char *text, empq_style_counts *out);

/* The per-response features, in this order. */
enum {
    EMPQ_STYLE_WORDS = 0,
    EMPQ_STYLE_SENTENCES,
    EMPQ_STYLE_WORDS_PER_SENTENCE,
    EMPQ_STYLE_EXCLAMATIONS,  /* per 100 words */
    EMPQ_STYLE_QUESTIONS,     /* per 100 words */
    EMPQ_STYLE_EMOJIS,        /* per 100 words */
    EMPQ_STYLE_FIRST_PERSON,  /* per 100 words */
    EMPQ_STYLE_SECOND_PERSON, /* per 100 words */
    EMPQ_STYLE_APOLOGY,       /* per 100 words */
    EMPQ_STYLE_GRATITUDE,     /* per 100 words */
    EMPQ_STYLE_WORD_LENGTH,   /* mean codepoints per word */
    EMPQ_STYLE_HAS_QUESTION,  /* 1 when the response has a '?', else 0 */
    EMPQ_STYLE_N_FEATURES
};

/* Fills f[EMPQ_STYLE_N_FEATURES] from c. Rates of a response with no word
 * are 0. */
void empq_style_features(const empq_style_counts *c, double *f);

/* The feature's column name ("exclamations_per_100w"), or NULL outside
 * 0..EMPQ_STYLE_N_FEATURES-1. Static. */
const char *empq_style_feature_name(int i);

/* A short human title ("exclamation marks / 100 words"), or NULL. Static. */
const char *empq_style_feature_title(int i);


/* At most this many conditions. */
#define EMPQ_ANALYSIS_MAX_CONDS 64

/* ==================== design-respecting figures ==================== */

/* Per condition. Bootstrap intervals are 95% percentile intervals; NaN
 * when the ratings name no participant. Comparisons with the baseline are
 * NaN for the baseline itself. */
typedef struct empq_design_cond {
    size_t participants;             /* distinct raters of this condition */
    double icc_good;                 /* ICC(1) of Good (0/1) by participant */
    double good_lo, good_hi;         /* share Good: participant bootstrap */
    double good2_lo, good2_hi;       /* share Good: two-way participant x dialogue bootstrap */
    double bad_lo, bad_hi;           /* share Bad: participant bootstrap */
    double okay_lo, okay_hi;         /* share Okay: participant bootstrap */
    double diff_lo, diff_hi;         /* Good minus baseline's Good (pp / 100): participant bootstrap */
    double inc_lo, inc_hi;           /* relative increase over the baseline: participant bootstrap */
    double inc2_lo, inc2_hi;         /* relative increase: two-way bootstrap */
    /* logit of Good on condition (intercept + one indicator per other condition) */
    double log_or, or, or_lo, or_hi; /* log odds ratio vs baseline, odds ratio, 95% CI (clustered SE) */
    double se_naive, se_cluster;     /* of log_or */
    double p_naive, p_cluster;       /* two-sided Wald */
    /* proportional-odds cumulative logit of the rating on condition */
    double ord_beta, ord_se_naive, ord_se_cluster, ord_p_cluster;
    /* item-matched: the same dialogue rated in this condition and the baseline */
    size_t paired_n;                 /* dialogues rated in both */
    double paired_mean_diff;         /* mean over them of (rating here - rating in the baseline) */
    double paired_good_diff;         /* mean over them of (Good here - Good in the baseline) */
    double paired_w, paired_p;       /* Wilcoxon signed-rank of the rating differences */
} empq_design_cond;

/* One emotion x condition test against the baseline (chi-square, 2 x 3). */
typedef struct empq_emo_test {
    size_t n, n_base;                /* the cells' ratings */
    double statistic, p, p_holm, p_bh; /* adjusted over the emotions, per condition */
} empq_emo_test;

typedef struct empq_design {
    int has_participants;            /* every rating names its rater */
    size_t n_boot;                   /* bootstrap replications */
    unsigned long long seed;         /* of the bootstrap */
    empq_design_cond cond[EMPQ_ANALYSIS_MAX_CONDS];
    empq_fit_result logit;           /* beta: intercept, then the other conditions in order */
    empq_fit_result ordinal;         /* beta: the other conditions in order, then the 2 cut-points */
    int logit_ok, ordinal_ok;        /* the fits converged */
    char fit_note[256];              /* why a fit is missing */
    empq_emo_test *emo;              /* [e * n_conds + c]; NULL without emotions */
    /* style, item-matched against the baseline's texts of the same dialogue:
     * [s * EMPQ_STYLE_N_FEATURES + f] for each source s; NULL without a corpus
     * whose texts name their dialogue, or without a source named as the baseline */
    struct empq_style_pair {
        size_t n;                    /* dialogues with a text from s and from the baseline */
        double mean_diff;            /* mean of (feature of s - feature of the baseline's text) */
        double w, p;                 /* Wilcoxon signed-rank of the differences */
    } *style_paired;
    long style_base;                 /* the baseline's source index, -1 when none */
} empq_design;


/* ==================== judge agreement and estimates ==================== */

struct empq_analysis;

/* One judge label: a row of a judge-ratings CSV (docs/analysis.md, "Judge
 * ratings"): columns item, condition, judge, label (1-3 or Bad/Okay/Good),
 * optional sample (default 1), emotion, sentiment, length (words) or
 * response (text; its words are counted). */
typedef struct empq_judge_label {
    char *item, *cond, *judge;
    int sample;
    int value;      /* 1..3 */
    long length;    /* words, -1 when unknown */
    char *emotion;  /* may be NULL */
    int sentiment;  /* EMPQ_SENT_* */
} empq_judge_label;

typedef struct empq_judge_labels {
    empq_judge_label *l;
    size_t n;
} empq_judge_labels;

/* Loads a judge-ratings CSV. Returns EMPQ_OK with *out (free with
 * empq_judge_labels_free); EMPQ_ENOTFOUND / EMPQ_EIO; EMPQ_EPARSE with
 * "path:line: what" (a missing column, an empty item/condition/judge, a
 * label that is not 1-3 / Bad / Okay / Good, a sample that is not a
 * positive integer, a negative length, two labels for one (judge,
 * condition, item, sample)); EMPQ_ENOMEM. */
int empq_judge_labels_load(const char *path, empq_judge_labels **out, empq_error *err);
/* The same from len bytes of data (not kept); name is what messages call
 * the input. Returns as empq_judge_labels_load (no EMPQ_ENOTFOUND/EIO). */
int empq_judge_labels_parse(const char *name, const char *data, size_t len, empq_judge_labels **out,
                            empq_error *err);
/* Frees *l and sets it NULL; accepts NULL and *l NULL. */
void empq_judge_labels_free(empq_judge_labels **l);

/* The agreement statistics, in this order. */
enum {
    EMPQ_AGREE_EXACT = 0,       /* share of pairs with the same label */
    EMPQ_AGREE_KAPPA,           /* Cohen's kappa, unweighted */
    EMPQ_AGREE_KAPPA_LINEAR,    /* linearly weighted */
    EMPQ_AGREE_KAPPA_QUADRATIC, /* quadratically weighted */
    EMPQ_AGREE_ALPHA,           /* Krippendorff's alpha, ordinal, the two labels of each pair */
    EMPQ_AGREE_SPEARMAN,        /* Spearman's rho */
    EMPQ_AGREE_BIAS,            /* mean judge label minus mean human label (1-3 scale) */
    EMPQ_AGREE_N_STATS
};

/* The statistic's column name ("kappa_quadratic"), NULL outside the range. */
const char *empq_agree_stat_name(int i);

/* Agreement of one judge with the human ratings over a group of pairs (one
 * pair per human rating whose response the judge labelled, sample 1). */
typedef struct empq_agree {
    const char *kind;  /* "all", "condition", "emotion", "sentiment", "length" (static) */
    char *group;       /* the condition / emotion / sentiment / length bin; "all" */
    size_t n;          /* pairs */
    size_t dialogues;  /* distinct dialogues among them */
    double value[EMPQ_AGREE_N_STATS];
    double lo[EMPQ_AGREE_N_STATS], hi[EMPQ_AGREE_N_STATS]; /* bootstrap over dialogues, 95% percentile */
    size_t confusion[9]; /* [human - 1][judge - 1] */
} empq_agree;

/* Estimates of one category's share in the new model's condition. */
typedef struct empq_judge_estimate {
    empq_ppi_result ppi;     /* prediction-powered, judge-only, human-only */
    double inc[3], inc_lo[3], inc_hi[3]; /* relative increase over the baseline's share: ppi, judge, human */
} empq_judge_estimate;

typedef struct empq_judge_one {
    char *name;
    size_t n_labels;         /* rows of this judge */
    empq_agree *ag;          /* all, then per condition, sentiment, emotion, length bin */
    size_t n_ag;
    size_t self_n;           /* responses with two samples or more */
    double self_exact, self_kappa_q; /* sample 1 against sample 2 */
    int has_estimate;
    size_t est_n_human, est_n_judged; /* labelled responses, unlabelled ones */
    empq_judge_estimate est[3];       /* Bad, Okay, Good */
} empq_judge_one;

/* Options of empq_judge_compute. */
typedef struct empq_judge_opts {
    const char *estimate_cond; /* the new model's condition for the estimates; NULL: none */
    size_t human_subset;       /* keep human labels for only this many of its responses
                                  (stratified by emotion, seeded); 0: all there are */
    unsigned long long seed;   /* of the subset and the bootstraps */
    size_t n_boot;             /* bootstrap replications (0: 1000) */
} empq_judge_opts;

typedef struct empq_judge {
    char *source;            /* the judge CSV's name, for the report */
    size_t n_judges;
    empq_judge_one *j;
    char *estimate_cond;     /* NULL without estimates */
    double base_share[3], base_n; /* the baseline's shares, from the human ratings */
    size_t n_boot;
    unsigned long long seed;
} empq_judge;

/* Joins judge labels with the human ratings r (by condition and item) and
 * computes agreement, biases, self-consistency and, with
 * opts->estimate_cond, the prediction-powered estimates against the
 * baseline a->baseline of a (whose per-condition figures give the
 * baseline). Stores the result in a->judge (freed with a). Returns
 * EMPQ_OK; EMPQ_EINVAL when no judge label matches a human rating and
 * no estimate is asked, when estimate_cond names no judged condition, or
 * when fewer than 2 labelled or 2 unlabelled responses are left for the
 * estimate (err says which); EMPQ_ENOMEM. */
int empq_judge_compute(struct empq_analysis *a, const empq_ratings *r, const empq_judge_labels *jl,
                       const empq_judge_opts *opts, const char *source, empq_error *err);

/* Chooses k of n units at random (seeded), stratified by strata[i] (any
 * int; proportional allocation, largest remainders, ties by seeded order):
 * chosen[i] = 1 for the chosen. k > n chooses all. Returns EMPQ_OK,
 * EMPQ_EINVAL (NULL), EMPQ_ENOMEM. */
int empq_analysis_stratified_subset(const int *strata, size_t n, size_t k, unsigned long long seed,
                                    unsigned char *chosen);

/* ==================== cost ==================== */

/* What one model of a run cost, from the run's responses.jsonl and its spec
 * (docs/analysis.md, "Cost"). Tokens are summed over the calls; cached
 * input is part of tokens_in, reasoning part of tokens_out (billed as
 * output). */
typedef struct empq_cost_source {
    char *source;         /* the model's alias */
    int batch;            /* mode: batch: charged at the batch prices */
    int priced;           /* the spec gives the model prices */
    double price_in, price_out, price_cached; /* per million tokens, as charged: the batch prices in batch
                                                 mode; price_cached is price_in unless the spec sets
                                                 cached_input_per_mtok (interactive mode) */
    double list_in, list_out; /* the interactive prices (input_per_mtok, output_per_mtok) */
    size_t calls;         /* lines not served from the cache that carry usage: calls that reached the
                             provider */
    size_t cache_hits;    /* lines served from the response cache: no cost in this run */
    size_t no_usage;      /* answered lines not from the cache without usage (not counted in the cost) */
    uint64_t tokens_in, tokens_cached, tokens_out, tokens_reasoning;
    double cost;          /* sum over the calls of empq_cost_of */
} empq_cost_source;

/* The cost of a run. All strings and arrays are owned by the struct. */
typedef struct empq_cost {
    char *spec_name;      /* the spec file, as given */
    char *responses_name; /* the responses.jsonl, as given */
    char *run_id;         /* the run_id of the first line that has one; may be NULL */
    empq_cost_source *s;  /* the spec's models in spec order, the human source left out */
    size_t n;
    double total;         /* sum of the sources' costs */
} empq_cost;

/* The cost of one call of model m with these usage figures (cached is part
 * of input, reasoning part of output) at the prices empq_model_prices
 * gives, the same the broker counts at: in batch mode the batch prices
 * (cached input at the batch input price), else input at input_per_mtok,
 * of which cached at cached_input_per_mtok when the spec sets it, and
 * output at output_per_mtok. 0 when m is NULL or has no prices. */
double empq_cost_of(const Empq__ModelSpec *m, uint64_t input, uint64_t cached, uint64_t output);

/* Reads the responses.jsonl at responses_path and prices every line of a
 * model of spec (not NULL) that was not served from the cache with
 * empq_cost_of; lines of the human source are skipped. spec_name is the
 * spec's name for the report (may be NULL).
 * Returns EMPQ_OK with *out (free with empq_cost_free); EMPQ_ENOTFOUND /
 * EMPQ_EIO when the file cannot be read; EMPQ_EPARSE with "path:line:
 * what" for invalid JSON, a missing or wrongly typed source / cache_hit /
 * token key, or a source that is no model of the spec; EMPQ_EINVAL for a
 * NULL argument; EMPQ_ENOMEM. On failure *out is NULL. */
int empq_cost_compute(const Empq__RunSpec *spec, const char *spec_name, const char *responses_path,
                      empq_cost **out, empq_error *err);

/* Frees *c and sets *c to NULL; c and *c may be NULL. */
void empq_cost_free(empq_cost **c);

/* ==================== the analysis ==================== */

/* Per condition. share and mean are NaN when n is 0. */
typedef struct empq_cond_stats {
    size_t n;
    size_t count[3];    /* Bad, Okay, Good */
    double share[3];
    double share_lo[3], share_hi[3]; /* Wilson 95% interval of each share; NaN when n is 0 */
    double mean;        /* mean rating, 1..3 */
    double sd;          /* sample standard deviation of the rating */
    double good_diff;   /* share_good - share_good_baseline (absolute: x100 = percentage points);
                           NaN for the baseline */
    double good_increase; /* (share_good - share_good_baseline) / share_good_baseline (relative);
                             NaN for the baseline */
} empq_cond_stats;

/* One condition against the baseline. */
typedef struct empq_pair_stats {
    size_t cond;
    empq_chi2_result chi2; /* 2 x 3 table: this condition, baseline */
    double chi2_p_holm;
    empq_mwu_result mwu;   /* this condition's ratings (x) vs the baseline's (y) */
    double mwu_p_holm;
} empq_pair_stats;

/* One cell of a (group x condition) table. */
typedef struct empq_cell {
    size_t n;
    size_t count[3];
    double share_good; /* NaN when n is 0 */
    double good_lo, good_hi; /* Wilson 95% interval of share_good; NaN when n is 0 */
    double mean;       /* NaN when n is 0 */
} empq_cell;

/* Style of one source on one feature. */
typedef struct empq_style_cell {
    size_t n;
    double mean, sd, median;
} empq_style_cell;

typedef struct empq_analysis {
    /* conditions (copied names; label is a display name) */
    size_t n_conds;
    char **conds;
    char **labels;
    size_t baseline;
    empq_cond_stats *cond; /* [n_conds] */
    size_t n_ratings;
    size_t n_simulated; /* of them from simulated raters: the report then says so on top of every
                           file (report.md, report.html) and in the simulated column of every table */

    empq_chi2_result overall; /* conditions x 3 */

    size_t n_pairs;        /* n_conds - 1 */
    empq_pair_stats *pair; /* every condition but the baseline, in order */

    /* per emotion: cell[e * n_conds + c]; 0 emotions when none are known */
    size_t n_emotions;
    char **emotions;
    int *emotion_sentiment; /* EMPQ_SENT_* per emotion (from the data, else the built-in map) */
    empq_cell *emo;

    /* per sentiment: sent[s * n_conds + c], s = EMPQ_SENT_NEGATIVE, _POSITIVE */
    int has_sentiment;
    empq_cell sent[2 * 64];
    empq_chi2_result *sent_test; /* [n_conds]: 2 sentiments x 3 ratings within the condition */

    /* rater agreement over units with more than one rating */
    empq_alpha_result alpha;

    /* style (n_sources 0 when there is no corpus) */
    size_t n_sources;
    char **sources;
    size_t n_texts;
    size_t *text_source;   /* [n_texts] */
    double *text_features; /* [n_texts * EMPQ_STYLE_N_FEATURES] */
    empq_style_counts *text_counts; /* [n_texts] */
    empq_style_cell *style; /* [s * EMPQ_STYLE_N_FEATURES + f] */
    empq_kw_result style_test[EMPQ_STYLE_N_FEATURES];

    empq_design *design; /* participant-clustered figures (docs/analysis.md); NULL when not computed */
    empq_judge *judge; /* judge agreement and estimates; NULL without --judge */

    const empq_cost *cost; /* the cost section (report.json's "cost"); NULL: none. Borrowed: the
                              caller keeps it alive until the report is written and frees it */

    char *ratings_name; /* shown in the report; may be NULL */
    char *responses_name;
} empq_analysis;


/* Computes every figure. baseline names the reference condition (NULL:
 * "human"). corpus may be NULL (no style section). labels: when
 * welivita_labels is nonzero, the Welivita-Pu names human / chatgpt /
 * chatgpt_empathy are shown as "human", "GPT-4 (plain prompt)", "GPT-4
 * (empathy prompt)".
 *
 * Returns EMPQ_OK with *out (caller frees with empq_analysis_free);
 * EMPQ_EINVAL when r is NULL or holds no rating, the baseline is not a
 * condition, or there are more than EMPQ_ANALYSIS_MAX_CONDS conditions;
 * EMPQ_ENOMEM. */
int empq_analysis_compute(const empq_ratings *r, const empq_corpus *corpus, const char *baseline,
                          int welivita_labels, empq_analysis **out, empq_error *err);

/* Frees *a and sets *a to NULL; a and *a may be NULL. */
void empq_analysis_free(empq_analysis **a);

/* Renders the report as Markdown / self-contained HTML into out (appended).
 * Returns EMPQ_OK or EMPQ_ENOMEM. */
int empq_analysis_render_md(const empq_analysis *a, empq_buf *out);
int empq_analysis_render_html(const empq_analysis *a, empq_buf *out);

/* Writes dir/report.md, dir/report.html, dir/report.json (the cost section
 * as data: {"cost": null} when a->cost is NULL) and dir/tables/NAME.csv
 * (creating the folders; each file replaced atomically). Returns EMPQ_OK, EMPQ_EIO (err
 * names the path) or EMPQ_ENOMEM. */
int empq_analysis_write(const empq_analysis *a, const char *dir, empq_error *err);

/* Formats a number for the tables: "%.10g", "NA" for NaN, "inf"/"-inf".
 * Returns buf (at least 32 bytes). */
const char *empq_analysis_num(double v, char *buf, size_t len);

#endif
