/* analysis_report.c: report.md, report.html (inline CSS and SVG, no outside
 * assets, no script), report.json and tables/NAME.csv from a computed
 * empq_analysis; the cost of a run's responses at its spec's prices. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/util.h"
#include "empq/analysis.h"
#include "empq/batchwire.h"
#include "empq/log.h"
#include "empq/spec.h"

#define NF EMPQ_STYLE_N_FEATURES
#define EXTREMES 5

static const char *const rating_names[3] = {"Bad", "Okay", "Good"};

/* ==================== number formatting ==================== */

const char *empq_analysis_num(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NA");
    else if (isinf(v))
        snprintf(buf, len, "%s", v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, len, "%.10g", v);
    return buf;
}

/* share x 100 with up to two decimals, trailing zeros cut, then unit:
 * 0.493 -> "49.3%", 0.6475 -> "64.75%". sign: a '+' for positive values. */
static const char *pct_unit(double share, int sign, const char *unit, char *buf, size_t len)
{
    if (isnan(share)) {
        snprintf(buf, len, "n/a");
        return buf;
    }
    char t[64];
    snprintf(t, sizeof t, sign ? "%+.2f" : "%.2f", share * 100.0);
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == '0')
        n--;
    if (n > 0 && t[n - 1] == '.')
        n--;
    t[n] = '\0';
    if (strcmp(t, "-0") == 0 || strcmp(t, "+0") == 0)
        snprintf(t, sizeof t, "0");
    snprintf(buf, len, "%s%s", t, unit);
    return buf;
}

/* A share as a percentage: "49.3%". */
static const char *pct(double share, int sign, char *buf, size_t len) { return pct_unit(share, sign, "%", buf, len); }

/* A difference of two shares in percentage points: 0.141 -> "+14.1 pp". */
static const char *pts(double diff, char *buf, size_t len) { return pct_unit(diff, 1, " pp", buf, len); }

/* A Wilson interval as "47.1-51.5%" (an en dash), "n/a" when n was 0. */
static const char *ci(double lo, double hi, char *buf, size_t len)
{
    char l[32], h[32];
    if (isnan(lo) || isnan(hi))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "%s\xe2\x80\x93%s", pct_unit(lo, 0, "", l, sizeof l), pct(hi, 0, h, sizeof h));
    return buf;
}

/* Cells with fewer ratings than this are greyed in the heatmap: a share of
 * 5 ratings moves by 20 points with one rating. */
#define SMALL_N 20

/* A statistic or p-value for reading: 4 significant digits, "n/a" for NaN. */
static const char *rd(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "n/a");
    else if (v != 0 && fabs(v) < 1e-4)
        snprintf(buf, len, "%.3e", v);
    else
        snprintf(buf, len, "%.4g", v);
    return buf;
}

/* ==================== text output helpers ==================== */

/* Appends s escaped for HTML (& < > " '). */
static int html_esc(empq_buf *b, const char *s)
{
    int rc = EMPQ_OK;
    for (; *s && rc == EMPQ_OK; s++) {
        switch (*s) {
        case '&': rc = empq_buf_append(b, "&amp;", 5); break;
        case '<': rc = empq_buf_append(b, "&lt;", 4); break;
        case '>': rc = empq_buf_append(b, "&gt;", 4); break;
        case '"': rc = empq_buf_append(b, "&quot;", 6); break;
        case '\'': rc = empq_buf_append(b, "&#39;", 5); break;
        default: rc = empq_buf_append(b, s, 1);
        }
    }
    return rc;
}

/* Appends s escaped for a Markdown table cell (| and newlines). */
static int md_esc(empq_buf *b, const char *s)
{
    int rc = EMPQ_OK;
    for (; *s && rc == EMPQ_OK; s++) {
        if (*s == '|')
            rc = empq_buf_append(b, "\\|", 2);
        else if (*s == '\n' || *s == '\r')
            rc = empq_buf_append(b, " ", 1);
        else
            rc = empq_buf_append(b, s, 1);
    }
    return rc;
}

/* A document being written as Markdown or HTML; err latches the first
 * out-of-memory so the writers need not check every append. */
typedef struct doc {
    empq_buf *b;
    int html;
    int rc;
} doc;

static void put(doc *d, const char *s)
{
    if (d->rc == EMPQ_OK)
        d->rc = empq_buf_append(d->b, s, strlen(s));
}

static void putf(doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(doc *d, const char *fmt, ...)
{
    if (d->rc != EMPQ_OK)
        return;
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        d->rc = EMPQ_ENOMEM;
        return;
    }
    d->rc = empq_buf_append(d->b, tmp, (size_t)n);
}

/* Text from the data (names): escaped for the document's format. */
static void put_text(doc *d, const char *s)
{
    if (d->rc == EMPQ_OK)
        d->rc = d->html ? html_esc(d->b, s) : md_esc(d->b, s);
}

/* A name from the data (a file, a run) as code: `name` or <code>name</code>. */
static void put_code(doc *d, const char *s)
{
    put(d, d->html ? "<code>" : "`");
    put_text(d, s);
    put(d, d->html ? "</code>" : "`");
}

static void heading(doc *d, int level, const char *title, const char *id)
{
    if (d->html) {
        putf(d, "<h%d id=\"%s\">", level, id);
        put_text(d, title);
        putf(d, "</h%d>\n", level);
    } else {
        putf(d, "\n%.*s ", level, "######");
        put_text(d, title);
        put(d, "\n\n");
    }
}

static void para(doc *d, const char *text)
{
    put(d, d->html ? "<p>" : "");
    put_text(d, text);
    put(d, d->html ? "</p>\n" : "\n\n");
}

/* Tables: begin with the header cells, then rows; cells are plain text. */
static void table_row(doc *d, const char *const *cells, size_t n, int header)
{
    if (d->html) {
        put(d, "<tr>");
        for (size_t i = 0; i < n; i++) {
            put(d, header ? "<th>" : (i == 0 ? "<td class=\"l\">" : "<td>"));
            put_text(d, cells[i]);
            put(d, header ? "</th>" : "</td>");
        }
        put(d, "</tr>\n");
    } else {
        put(d, "|");
        for (size_t i = 0; i < n; i++) {
            put(d, " ");
            put_text(d, cells[i]);
            put(d, " |");
        }
        put(d, "\n");
        if (header) {
            put(d, "|");
            for (size_t i = 0; i < n; i++)
                put(d, i == 0 ? " --- |" : " ---: |");
            put(d, "\n");
        }
    }
}

static void table_begin(doc *d, const char *const *head, size_t n)
{
    if (d->html)
        put(d, "<table>\n<thead>");
    table_row(d, head, n, 1);
    if (d->html)
        put(d, "</thead>\n<tbody>\n");
}

static void table_end(doc *d)
{
    put(d, d->html ? "</tbody></table>\n" : "\n");
}

/* ==================== charts (inline SVG) ==================== */

static const char *const rating_colors[3] = {"#d9534f", "#f0ad4e", "#4a9c5d"};

/* Opens an <svg> of w x h of class cls (chart, small), titled title for
 * screen readers (id the title's id). */
static void svg_open(doc *d, const char *cls, int w, int h, const char *id, const char *title)
{
    putf(d, "<svg class=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" aria-labelledby=\"%s\">\n<title id=\"%s\">",
         cls, w, h, w, h, id, id);
    put_text(d, title);
    put(d, "</title>\n");
}

static void svg_stacked(doc *d, const empq_analysis *a)
{
    const int left = 220, width = 520, row = 34, top = 30;
    int h = top + (int)a->n_conds * row + 10;
    svg_open(d, "chart", left + width + 20, h, "t-stacked", "Share of Bad, Okay and Good ratings per condition");
    for (int v = 0; v < 3; v++) {
        int x = left + v * 110;
        putf(d, "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"16\" class=\"lg\">%s</text>\n",
             x, rating_colors[v], x + 16, rating_names[v]);
    }
    for (size_t c = 0; c < a->n_conds; c++) {
        int y = top + (int)c * row;
        put(d, "<text x=\"");
        putf(d, "%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">", left - 8, y + 18);
        put_text(d, a->labels[c]);
        put(d, "</text>\n");
        double x = left;
        for (int v = 0; v < 3; v++) {
            double share = a->cond[c].share[v];
            if (!(share > 0))
                continue;
            double w = share * width;
            putf(d, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"24\" fill=\"%s\"><title>%s: %.2f%%</title></rect>\n",
                 x, y, w, rating_colors[v], rating_names[v], share * 100);
            if (w > 44) {
                char p[32];
                putf(d, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" class=\"in\">%s</text>\n", x + w / 2,
                     y + 17, pct(share, 0, p, sizeof p));
            }
            x += w;
        }
    }
    put(d, "</svg>\n");
}

/* Share Good per condition on a 0-100% axis: a dot and its Wilson 95%
 * interval as a whisker. */
static void svg_good_ci(doc *d, const empq_analysis *a)
{
    const int left = 220, width = 520, row = 26, top = 34;
    int h = top + (int)a->n_conds * row + 24;
    svg_open(d, "chart", left + width + 40, h, "t-good-ci",
             "Share of Good ratings per condition with its Wilson 95% interval");
    putf(d, "<text x=\"%d\" y=\"16\" class=\"st\">Share Good, 95%% interval (Wilson)</text>\n", left);
    for (int t = 0; t <= 100; t += 25) { /* the axis: grid lines every 25% */
        double x = left + width * t / 100.0;
        putf(d, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#ddd\"/>"
                "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" class=\"lb\">%d%%</text>\n",
             x, top - 6, x, h - 20, x, h - 6, t);
    }
    for (size_t c = 0; c < a->n_conds; c++) {
        const empq_cond_stats *cs = &a->cond[c];
        int y = top + (int)c * row + 12;
        char p[32], q[48];
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">", left - 8, y + 4);
        put_text(d, a->labels[c]);
        put(d, "</text>\n");
        if (isnan(cs->share[2]))
            continue;
        double lo = left + width * cs->share_lo[2], hi = left + width * cs->share_hi[2],
               x = left + width * cs->share[2];
        putf(d, "<g><title>%s Good, 95%% CI %s, n=%zu</title>"
                "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333\" stroke-width=\"2\"/>"
                "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333\" stroke-width=\"2\"/>"
                "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333\" stroke-width=\"2\"/>"
                "<circle cx=\"%.2f\" cy=\"%d\" r=\"5\" fill=\"%s\"/></g>\n",
             pct(cs->share[2], 0, p, sizeof p), ci(cs->share_lo[2], cs->share_hi[2], q, sizeof q), cs->n,
             lo, y, hi, y, lo, y - 6, lo, y + 6, hi, y - 6, hi, y + 6, x, y, rating_colors[2]);
        putf(d, "<text x=\"%.2f\" y=\"%d\" class=\"lb\">%s (%s)</text>\n", hi + 8, y + 4, p, q);
    }
    put(d, "</svg>\n");
}

/* White (share 0) to dark green (share 1). */
static void heat_color(double v, char *buf, size_t len)
{
    if (isnan(v)) {
        snprintf(buf, len, "#eeeeee");
        return;
    }
    if (v < 0)
        v = 0;
    if (v > 1)
        v = 1;
    int r = (int)lround(247 + (0 - 247) * v), g = (int)lround(252 + (109 - 252) * v),
        b = (int)lround(245 + (44 - 245) * v);
    snprintf(buf, len, "#%02x%02x%02x", r, g, b);
}

static void svg_heatmap(doc *d, const empq_analysis *a)
{
    const int left = 130, cw = 150, rh = 20, top = 48;
    int w = left + (int)a->n_conds * cw + 10, h = top + (int)a->n_emotions * rh + 10;
    svg_open(d, "chart", w, h, "t-heat", "Share of Good ratings per emotion and condition");
    for (size_t c = 0; c < a->n_conds; c++) {
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"lb\">", left + (int)c * cw + cw / 2, top - 10);
        put_text(d, a->labels[c]);
        put(d, "</text>\n");
    }
    for (size_t e = 0; e < a->n_emotions; e++) {
        int y = top + (int)e * rh;
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">", left - 8, y + 14);
        put_text(d, a->emotions[e]);
        if (a->emotion_sentiment[e] != EMPQ_SENT_UNKNOWN)
            put(d, a->emotion_sentiment[e] == EMPQ_SENT_POSITIVE ? " (+)" : " (\xe2\x88\x92)");
        put(d, "</text>\n");
        for (size_t c = 0; c < a->n_conds; c++) {
            const empq_cell *cl = &a->emo[e * a->n_conds + c];
            char col[16], p[32], q[48];
            int small = cl->n < SMALL_N;
            if (small)
                snprintf(col, sizeof col, "#e4e4e4");
            else
                heat_color(cl->share_good, col, sizeof col);
            int x = left + (int)c * cw;
            putf(d, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\"><title>",
                 x, y, cw, rh, col);
            put_text(d, a->emotions[e]);
            put(d, ", ");
            put_text(d, a->labels[c]);
            putf(d, ": %s Good, 95%% CI %s (n=%zu%s)</title></rect>\n", pct(cl->share_good, 0, p, sizeof p),
                 ci(cl->good_lo, cl->good_hi, q, sizeof q), cl->n, small ? ", too few to read" : "");
            putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"%s\">%s <tspan class=\"n\">n=%zu</tspan>"
                    "</text>\n",
                 x + cw / 2, y + 14, small ? "small" : cl->share_good > 0.55 ? "in" : "cell",
                 pct(cl->share_good, 0, p, sizeof p), cl->n);
        }
    }
    put(d, "</svg>\n");
}

static const char *const source_colors[] = {"#5b6c7d", "#3b7dd8", "#d8853b", "#8b5bd8",
                                            "#3bb0a0", "#c94f7c", "#7d9b2f", "#a0522d"};

/* One small bar chart per style feature, a bar per source. */
static void svg_style(doc *d, const empq_analysis *a, int f)
{
    const int left = 150, width = 170, row = 20, top = 26;
    int h = top + (int)a->n_sources * row + 8;
    double max = 0;
    for (size_t s = 0; s < a->n_sources; s++) {
        double m = a->style[s * NF + (size_t)f].mean;
        if (m > max)
            max = m;
    }
    char id[32];
    snprintf(id, sizeof id, "t-style-%d", f);
    svg_open(d, "small", left + width + 60, h, id, empq_style_feature_title(f));
    putf(d, "<text x=\"4\" y=\"16\" class=\"st\">%s</text>\n", empq_style_feature_title(f));
    for (size_t s = 0; s < a->n_sources; s++) {
        int y = top + (int)s * row;
        double m = a->style[s * NF + (size_t)f].mean;
        double w = max > 0 && m > 0 ? m / max * width : 0;
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">", left - 6, y + 13);
        put_text(d, a->sources[s]);
        put(d, "</text>\n");
        putf(d, "<rect x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"15\" fill=\"%s\"/>\n", left, y + 1, w,
             source_colors[s % (sizeof source_colors / sizeof source_colors[0])]);
        char v[32];
        putf(d, "<text x=\"%.2f\" y=\"%d\" class=\"lb\">%s</text>\n", left + w + 4, y + 13, rd(m, v, sizeof v));
    }
    put(d, "</svg>\n");
}

/* ==================== cost ==================== */

double empq_cost_of(const Empq__ModelSpec *m, uint64_t input, uint64_t cached, uint64_t output)
{
    double in = 0, out = 0, cin = 0;
    empq_model_prices(m, &in, &out, &cin);
    if (cached > input)
        cached = input;
    return ((double)(input - cached) * in + (double)cached * cin + (double)output * out) / 1e6;
}

void empq_cost_free(empq_cost **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    empq_cost *c = *cp;
    for (size_t i = 0; i < c->n; i++)
        free(c->s[i].source);
    free(c->s);
    free(c->spec_name);
    free(c->responses_name);
    free(c->run_id);
    free(c);
    *cp = NULL;
}

/* Key k of line o as a count: *v 0 and *has 0 when absent or null; an
 * integer >= 0 sets both. EMPQ_EPARSE (err "path:line: ...") otherwise. */
static int cost_count(const json_t *o, const char *k, uint64_t *v, int *has, const char *path, size_t line,
                      empq_error *err)
{
    const json_t *x = json_object_get(o, k);
    *v = 0;
    *has = 0;
    if (x == NULL || json_is_null(x))
        return EMPQ_OK;
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: '%s' is not a non-negative integer or null", path, line, k);
    *v = (uint64_t)json_integer_value(x);
    *has = 1;
    return EMPQ_OK;
}

/* Adds one line of responses.jsonl (o, an object) to c. */
static int cost_line(empq_cost *c, const Empq__RunSpec *spec, const json_t *o, const char *path, size_t line,
                     empq_error *err)
{
    const json_t *src = json_object_get(o, "source"), *hit = json_object_get(o, "cache_hit");
    const json_t *resp = json_object_get(o, "response"), *run = json_object_get(o, "run_id");
    if (!json_is_string(src))
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: 'source' missing or not a string", path, line);
    if (!json_is_boolean(hit))
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: 'cache_hit' missing or not a boolean", path, line);
    if (c->run_id == NULL && json_is_string(run) && (c->run_id = empq_strdup(json_string_value(run))) == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    int m = empq_spec_model_index(spec, json_string_value(src));
    if (m < 0)
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: source '%s' is not a model of the spec %s", path, line,
                              json_string_value(src), c->spec_name != NULL ? c->spec_name : "");
    const Empq__ModelSpec *ms = spec->models[m];
    empq_cost_source *cs = NULL;
    for (size_t i = 0; i < c->n && cs == NULL; i++)
        if (strcmp(c->s[i].source, ms->alias) == 0)
            cs = &c->s[i];
    if (cs == NULL) /* the human source: no provider, no cost */
        return EMPQ_OK;
    uint64_t in, out, cached, reasoning;
    int has_in, has_out, has_cached, has_reasoning, rc;
    if ((rc = cost_count(o, "tokens_in", &in, &has_in, path, line, err)) != EMPQ_OK ||
        (rc = cost_count(o, "tokens_out", &out, &has_out, path, line, err)) != EMPQ_OK ||
        (rc = cost_count(o, "cached_tokens", &cached, &has_cached, path, line, err)) != EMPQ_OK ||
        (rc = cost_count(o, "reasoning_tokens", &reasoning, &has_reasoning, path, line, err)) != EMPQ_OK)
        return rc;
    if (json_is_true(hit)) {
        cs->cache_hits++;
    } else if (has_in || has_out) {
        cs->calls++;
        cs->tokens_in += in;
        cs->tokens_out += out;
        cs->tokens_cached += cached;
        cs->tokens_reasoning += reasoning;
        cs->cost += empq_cost_of(ms, in, cached, out);
    } else if (json_is_string(resp)) {
        cs->no_usage++;
    }
    return EMPQ_OK;
}

/* The sources of spec (its models but the human source) into c. */
static int cost_sources(empq_cost *c, const Empq__RunSpec *spec)
{
    c->s = calloc(spec->n_models > 0 ? spec->n_models : 1, sizeof *c->s);
    if (c->s == NULL)
        return EMPQ_ENOMEM;
    for (size_t i = 0; i < spec->n_models; i++) {
        const Empq__ModelSpec *m = spec->models[i];
        if (m->provider != NULL && strcmp(m->provider, "human") == 0)
            continue;
        empq_cost_source *cs = &c->s[c->n];
        if ((cs->source = empq_strdup(m->alias)) == NULL)
            return EMPQ_ENOMEM;
        c->n++;
        cs->batch = empq_batchwire_mode(m);
        cs->priced = m->prices != NULL;
        if (!cs->priced)
            continue;
        cs->list_in = m->prices->has_input_per_mtok ? m->prices->input_per_mtok : 0.0;
        cs->list_out = m->prices->has_output_per_mtok ? m->prices->output_per_mtok : 0.0;
        /* the prices as charged: what empq_cost_of charges per million tokens */
        cs->price_in = empq_cost_of(m, 1000000, 0, 0);
        cs->price_cached = empq_cost_of(m, 1000000, 1000000, 0);
        cs->price_out = empq_cost_of(m, 0, 0, 1000000);
    }
    return EMPQ_OK;
}

int empq_cost_compute(const Empq__RunSpec *spec, const char *spec_name, const char *responses_path,
                      empq_cost **out, empq_error *err)
{
    if (spec == NULL || responses_path == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "cost: NULL argument");
    *out = NULL;
    FILE *f = fopen(responses_path, "r");
    if (f == NULL)
        return empq_error_set(err, errno == ENOENT ? EMPQ_ENOTFOUND : EMPQ_EIO, "%s: %s", responses_path,
                              strerror(errno));
    empq_cost *c = calloc(1, sizeof *c);
    int rc = c == NULL ? EMPQ_ENOMEM : EMPQ_OK;
    if (rc == EMPQ_OK) {
        c->spec_name = spec_name != NULL ? empq_strdup(spec_name) : NULL;
        c->responses_name = empq_strdup(responses_path);
        if ((spec_name != NULL && c->spec_name == NULL) || c->responses_name == NULL)
            rc = EMPQ_ENOMEM;
    }
    if (rc == EMPQ_OK)
        rc = cost_sources(c, spec);
    if (rc == EMPQ_ENOMEM)
        empq_error_set(err, rc, "%s: out of memory", responses_path);
    char *buf = NULL;
    size_t cap = 0, line = 0;
    ssize_t n;
    while (rc == EMPQ_OK && (n = getline(&buf, &cap, f)) >= 0) {
        line++;
        size_t a = 0;
        while (a < (size_t)n && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r' || buf[a] == '\n'))
            a++;
        if (a == (size_t)n) /* a blank line */
            continue;
        json_error_t je;
        json_t *o = json_loadb(buf, (size_t)n, 0, &je);
        if (o == NULL)
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: invalid JSON: %s", responses_path, line, je.text);
        else if (!json_is_object(o))
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: not a JSON object", responses_path, line);
        else
            rc = cost_line(c, spec, o, responses_path, line, err);
        json_decref(o);
    }
    if (rc == EMPQ_OK && ferror(f))
        rc = empq_error_set(err, EMPQ_EIO, "%s: read error", responses_path);
    free(buf);
    fclose(f);
    if (rc != EMPQ_OK) {
        empq_cost_free(&c);
        return rc;
    }
    for (size_t i = 0; i < c->n; i++)
        c->total += c->s[i].cost;
    *out = c;
    return EMPQ_OK;
}

/* "in 0.5, out 2" (and "cached in 0.1" when cached input has its own
 * price): the prices a source is charged at, per million tokens. */
static const char *cost_prices(const empq_cost_source *cs, char *buf, size_t len)
{
    if (!cs->priced)
        snprintf(buf, len, "no prices");
    else if (cs->price_cached != cs->price_in)
        snprintf(buf, len, "in %g, cached in %g, out %g", cs->price_in, cs->price_cached, cs->price_out);
    else
        snprintf(buf, len, "in %g, out %g", cs->price_in, cs->price_out);
    return buf;
}

static void render_cost(doc *d, const empq_analysis *a)
{
    const empq_cost *c = a->cost;
    char b[10][64];
    heading(d, 2, "Cost", "cost");
    put(d, d->html ? "<p>" : "");
    put(d, "What the responses of ");
    if (c->run_id != NULL) {
        put(d, "run ");
        put_text(d, c->run_id);
        put(d, " in ");
    }
    put_code(d, c->responses_name);
    put(d, " cost at the prices of the spec ");
    put_code(d, c->spec_name != NULL ? c->spec_name : "");
    put(d, ": each call that reached the provider, its input tokens at the input price (cached input at the "
           "cached price where the spec sets one) and its output tokens, reasoning and thinking included, at "
           "the output price, per million tokens. Responses served from the response cache cost nothing in "
           "this run: they are counted apart. Billed replies that were no answer (attempts that were retried, "
           "dead jobs) are not in responses.jsonl: empq status counts them too.");
    put(d, d->html ? "</p>\n" : "\n\n");
    size_t nb = 0;
    for (size_t i = 0; i < c->n; i++)
        nb += c->s[i].batch && c->s[i].priced;
    if (nb > 0) {
        put(d, d->html ? "<p>" : "");
        put(d, "Batch-mode sources are charged at the batch price (batch_input_per_mtok and "
               "batch_output_per_mtok, by default half the interactive price): ");
        size_t k = 0;
        for (size_t i = 0; i < c->n; i++) {
            const empq_cost_source *cs = &c->s[i];
            if (!cs->batch || !cs->priced)
                continue;
            put(d, k++ ? "; " : "");
            put_text(d, cs->source);
            putf(d, " at %g per million input tokens and %g per million output tokens (interactive: %g and %g)",
                 cs->price_in, cs->price_out, cs->list_in, cs->list_out);
        }
        put(d, ".");
        put(d, d->html ? "</p>\n" : "\n\n");
    }
    static const char *const head[] = {"source",     "mode",   "calls", "cache hits",
                                       "tokens in",  "cached", "tokens out", "reasoning",
                                       "price per million tokens", "cost"};
    table_begin(d, head, 10);
    uint64_t tin = 0, tout = 0, tc = 0, tr = 0;
    size_t calls = 0, hits = 0, no_usage = 0;
    for (size_t i = 0; i < c->n; i++) {
        const empq_cost_source *cs = &c->s[i];
        snprintf(b[0], sizeof b[0], "%zu", cs->calls);
        snprintf(b[1], sizeof b[1], "%zu", cs->cache_hits);
        snprintf(b[2], sizeof b[2], "%llu", (unsigned long long)cs->tokens_in);
        snprintf(b[3], sizeof b[3], "%llu", (unsigned long long)cs->tokens_cached);
        snprintf(b[4], sizeof b[4], "%llu", (unsigned long long)cs->tokens_out);
        snprintf(b[5], sizeof b[5], "%llu", (unsigned long long)cs->tokens_reasoning);
        snprintf(b[7], sizeof b[7], "%.4f", cs->cost);
        const char *row[10] = {cs->source, cs->batch ? "batch" : "interactive", b[0], b[1], b[2], b[3], b[4],
                               b[5], cost_prices(cs, b[6], sizeof b[6]), b[7]};
        table_row(d, row, 10, 0);
        calls += cs->calls, hits += cs->cache_hits, no_usage += cs->no_usage;
        tin += cs->tokens_in, tout += cs->tokens_out, tc += cs->tokens_cached, tr += cs->tokens_reasoning;
    }
    snprintf(b[0], sizeof b[0], "%zu", calls);
    snprintf(b[1], sizeof b[1], "%zu", hits);
    snprintf(b[2], sizeof b[2], "%llu", (unsigned long long)tin);
    snprintf(b[3], sizeof b[3], "%llu", (unsigned long long)tc);
    snprintf(b[4], sizeof b[4], "%llu", (unsigned long long)tout);
    snprintf(b[5], sizeof b[5], "%llu", (unsigned long long)tr);
    snprintf(b[7], sizeof b[7], "%.4f", c->total);
    const char *row[10] = {"total", "", b[0], b[1], b[2], b[3], b[4], b[5], "", b[7]};
    table_row(d, row, 10, 0);
    table_end(d);
    if (no_usage > 0) {
        put(d, d->html ? "<p class=\"note\">" : "");
        putf(d, "%zu responses not from the cache came without usage figures: they are not in the cost.",
             no_usage);
        put(d, d->html ? "</p>\n" : "\n\n");
    }
    para(d, "All prices are in the currency the spec's prices are written in. Full precision: report.json.");
}

/* report.json: {"cost": null} or the cost section as data. */
static int render_json(const empq_analysis *a, empq_buf *out)
{
    json_t *o = json_object(), *cost = json_null();
    const empq_cost *c = a->cost;
    if (c != NULL) {
        cost = json_object();
        json_object_set_new(cost, "run_id", c->run_id != NULL ? json_string(c->run_id) : json_null());
        json_object_set_new(cost, "spec", c->spec_name != NULL ? json_string(c->spec_name) : json_null());
        json_object_set_new(cost, "responses", json_string(c->responses_name));
        json_t *srcs = json_array();
        for (size_t i = 0; i < c->n; i++) {
            const empq_cost_source *cs = &c->s[i];
            json_t *x = json_object(), *pr = json_null();
            json_object_set_new(x, "source", json_string(cs->source));
            json_object_set_new(x, "mode", json_string(cs->batch ? "batch" : "interactive"));
            json_object_set_new(x, "calls", json_integer((json_int_t)cs->calls));
            json_object_set_new(x, "cache_hits", json_integer((json_int_t)cs->cache_hits));
            json_object_set_new(x, "no_usage", json_integer((json_int_t)cs->no_usage));
            json_object_set_new(x, "tokens_in", json_integer((json_int_t)cs->tokens_in));
            json_object_set_new(x, "tokens_cached", json_integer((json_int_t)cs->tokens_cached));
            json_object_set_new(x, "tokens_out", json_integer((json_int_t)cs->tokens_out));
            json_object_set_new(x, "tokens_reasoning", json_integer((json_int_t)cs->tokens_reasoning));
            if (cs->priced) {
                pr = json_object();
                json_object_set_new(pr, "input_per_mtok", json_real(cs->price_in));
                json_object_set_new(pr, "output_per_mtok", json_real(cs->price_out));
                json_object_set_new(pr, "cached_input_per_mtok", json_real(cs->price_cached));
            }
            json_object_set_new(x, "prices", pr);
            json_object_set_new(x, "cost", json_real(cs->cost));
            json_array_append_new(srcs, x);
        }
        json_object_set_new(cost, "sources", srcs);
        json_object_set_new(cost, "total", json_real(c->total));
    }
    json_object_set_new(o, "cost", cost);
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (s == NULL)
        return EMPQ_ENOMEM;
    int rc = empq_buf_append(out, s, strlen(s));
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "\n", 1);
    free(s);
    return rc;
}

/* ==================== the report ==================== */

static int cmp_diff_desc(const void *x, const void *y, const double *diff)
{
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    double a = diff[i], b = diff[j];
    if (isnan(a) != isnan(b))
        return isnan(a) ? 1 : -1;
    if (a > b)
        return -1;
    if (a < b)
        return 1;
    return i < j ? -1 : i > j;
}

/* qsort has no context argument: the order array is sorted by insertion,
 * which is fine for 32 emotions. */
static void sort_by_diff(size_t *idx, size_t n, const double *diff)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = idx[i], j = i;
        while (j > 0 && cmp_diff_desc(&v, &idx[j - 1], diff) < 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* diff[e] = share Good of condition c minus the baseline's, per emotion. */
static void emotion_diffs(const empq_analysis *a, size_t c, double *diff)
{
    for (size_t e = 0; e < a->n_emotions; e++) {
        const empq_cell *x = &a->emo[e * a->n_conds + c], *b = &a->emo[e * a->n_conds + a->baseline];
        diff[e] = x->n > 0 && b->n > 0 ? x->share_good - b->share_good : NAN;
    }
}

/* An interval of two numbers as "[lo, hi]" with rd(). */
static const char *rng2(double lo, double hi, char *buf, size_t len)
{
    char l[32], h[32];
    if (isnan(lo) || isnan(hi))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "[%s, %s]", rd(lo, l, sizeof l), rd(hi, h, sizeof h));
    return buf;
}

/* An interval of shares as "[+10.1 pp, +17.9 pp]" (unit " pp") or "[23%, 40%]". */
static const char *ci_unit(double lo, double hi, const char *unit, char *buf, size_t len)
{
    char l[32], h[32];
    int sign = strcmp(unit, " pp") == 0;
    if (isnan(lo) || isnan(hi))
        snprintf(buf, len, "n/a");
    else
        snprintf(buf, len, "[%s, %s]", pct_unit(lo, sign, unit, l, sizeof l), pct_unit(hi, sign, unit, h, sizeof h));
    return buf;
}

/* The section on uncertainty that respects the design (participants rate
 * several dialogues of one condition). */
static void render_design(doc *d, const empq_analysis *a)
{
    const empq_design *g = a->design;
    char b1[64], b2[64], b3[64], b4[64], b5[64], b6[64], b7[64], b8[64], b9[64], b10[64], b11[64];
    heading(d, 2, "Uncertainty that respects the design", "design");
    if (g == NULL)
        return;
    if (!g->has_participants) {
        para(d, "The ratings do not name their raters (no participant / annotator_<condition> column): no "
                "participant bootstrap, ICC or clustered errors; the fits below use naive errors only.");
    } else {
        put(d, d->html ? "<p>" : "");
        putf(d, "Each participant rates several dialogues of one condition, so ratings are not independent draws. "
                "Intervals here resample participants (within their condition; %zu seeded replications, 95%% "
                "percentile intervals); the two-way interval also resamples dialogues. ICC: the one-way intraclass "
                "correlation of Good within participants. Odds ratios from a logit of Good on condition, with "
                "participant-clustered (sandwich) standard errors beside the naive ones.",
             g->n_boot);
        put(d, d->html ? "</p>\n" : "\n\n");
    }
    static const char *const h[] = {"condition", "participants", "ICC (Good)", "Good", "Good 95% CI (participants)",
                                    "pp vs baseline [CI]", "relative [CI participants]", "relative [CI two-way]",
                                    "odds ratio [CI clustered]", "SE naive / clustered", "p naive / clustered"};
    table_begin(d, h, 11);
    for (size_t c = 0; c < a->n_conds; c++) {
        const empq_design_cond *x = &g->cond[c];
        const empq_cond_stats *cs = &a->cond[c];
        char parts[32], r1[96], r2[96], r3[96], r4[96], r5[96], r6[96];
        int base = c == a->baseline;
        snprintf(parts, sizeof parts, "%zu", x->participants);
        snprintf(r1, sizeof r1, "%s %s", pts(cs->good_diff, b1, sizeof b1),
                 ci_unit(x->diff_lo, x->diff_hi, " pp", b2, sizeof b2));
        snprintf(r2, sizeof r2, "%s %s", pct(cs->good_increase, 1, b3, sizeof b3),
                 ci_unit(x->inc_lo, x->inc_hi, "%", b4, sizeof b4));
        snprintf(r3, sizeof r3, "%s %s", pct(cs->good_increase, 1, b5, sizeof b5),
                 ci_unit(x->inc2_lo, x->inc2_hi, "%", b6, sizeof b6));
        snprintf(r4, sizeof r4, "%s %s", rd(x->or, b7, sizeof b7), rng2(x->or_lo, x->or_hi, b8, sizeof b8));
        snprintf(r5, sizeof r5, "%s / %s", rd(x->se_naive, b9, sizeof b9), rd(x->se_cluster, b10, sizeof b10));
        snprintf(r6, sizeof r6, "%s / ", rd(x->p_naive, b11, sizeof b11));
        size_t l6 = strlen(r6);
        rd(x->p_cluster, r6 + l6, sizeof r6 - l6);
        char sh[32], shci[48], icc[32];
        const char *row[11] = {a->labels[c],
                               parts,
                               rd(x->icc_good, icc, sizeof icc),
                               pct(cs->share[2], 0, sh, sizeof sh),
                               ci(x->good_lo, x->good_hi, shci, sizeof shci),
                               base ? "(baseline)" : r1,
                               base ? "(baseline)" : r2,
                               base ? "(baseline)" : r3,
                               base ? "(baseline)" : r4,
                               base ? "(baseline)" : r5,
                               base ? "(baseline)" : r6};
        table_row(d, row, 11, 0);
    }
    table_end(d);
    if (g->has_participants) {
        static const char *const hs[] = {"condition", "Bad [CI participants]", "Okay [CI participants]",
                                         "Good [CI participants]"};
        table_begin(d, hs, 4);
        for (size_t c = 0; c < a->n_conds; c++) {
            const empq_design_cond *x = &g->cond[c];
            const empq_cond_stats *cs = &a->cond[c];
            char c3[3][96];
            double lo[3] = {x->bad_lo, x->okay_lo, x->good_lo}, hi[3] = {x->bad_hi, x->okay_hi, x->good_hi};
            for (int v = 0; v < 3; v++)
                snprintf(c3[v], sizeof c3[v], "%s %s", pct(cs->share[v], 0, b1, sizeof b1),
                         ci_unit(lo[v], hi[v], "%", b2, sizeof b2));
            const char *row[4] = {a->labels[c], c3[0], c3[1], c3[2]};
            table_row(d, row, 4, 0);
        }
        table_end(d);
    }
    if (g->logit_ok && g->ordinal_ok) {
        para(d, "Ordinal model: a proportional-odds cumulative logit of the rating (Bad < Okay < Good), "
                "P(rating <= j) = logistic(c_j - b_condition), with participant-clustered errors: the documented "
                "approximation of a cumulative-link mixed model. b > 0: the condition shifts ratings up.");
        static const char *const ho[] = {"condition", "b (log cumulative odds)", "SE naive", "SE clustered",
                                         "95% CI (clustered)", "p (clustered)"};
        table_begin(d, ho, 6);
        for (size_t c = 0; c < a->n_conds; c++) {
            const empq_design_cond *x = &g->cond[c];
            if (c == a->baseline)
                continue;
            const char *row[6] = {a->labels[c],
                                  rd(x->ord_beta, b1, sizeof b1),
                                  rd(x->ord_se_naive, b2, sizeof b2),
                                  rd(x->ord_se_cluster, b3, sizeof b3),
                                  rng2(x->ord_beta - EMPQ_STATS_Z95 * x->ord_se_cluster,
                                       x->ord_beta + EMPQ_STATS_Z95 * x->ord_se_cluster, b4, sizeof b4),
                                  rd(x->ord_p_cluster, b5, sizeof b5)};
            table_row(d, row, 6, 0);
        }
        table_end(d);
    } else if (g->fit_note[0] != '\0') {
        put(d, d->html ? "<p>" : "");
        put(d, "No model fit: ");
        put_text(d, g->fit_note);
        put(d, d->html ? ".</p>\n" : ".\n\n");
    }
    /* item-matched */
    para(d, "Item-matched comparisons: the dialogues rated both in the condition and in the baseline; "
            "difference of the ratings per dialogue (mean over a dialogue's ratings), Wilcoxon signed-rank test "
            "(normal approximation, zeros dropped).");
    static const char *const hp[] = {"condition", "dialogues", "mean rating difference", "Good difference",
                                     "W", "p"};
    table_begin(d, hp, 6);
    for (size_t c = 0; c < a->n_conds; c++) {
        const empq_design_cond *x = &g->cond[c];
        if (c == a->baseline)
            continue;
        char n[32];
        snprintf(n, sizeof n, "%zu", x->paired_n);
        const char *row[6] = {a->labels[c], n, rd(x->paired_mean_diff, b1, sizeof b1),
                              pts(x->paired_good_diff, b2, sizeof b2), rd(x->paired_w, b3, sizeof b3),
                              rd(x->paired_p, b4, sizeof b4)};
        table_row(d, row, 6, 0);
    }
    table_end(d);
    /* style, item-matched */
    if (g->style_paired != NULL && a->n_sources > 1) {
        put(d, d->html ? "<p>" : "");
        put(d, "Style, item-matched: per dialogue, a source's response against the ");
        put_text(d, a->sources[g->style_base]);
        put(d, " response to the same dialogue; mean difference of each feature and the Wilcoxon signed-rank "
               "p-value (n: dialogues with both).");
        put(d, d->html ? "</p>\n" : "\n\n");
        const char *head[1 + 8];
        size_t cols[8], nc = 0;
        head[0] = "feature";
        for (size_t s2 = 0; s2 < a->n_sources && nc < 8; s2++) {
            if ((long)s2 == g->style_base)
                continue;
            cols[nc] = s2;
            head[1 + nc++] = a->sources[s2];
        }
        table_begin(d, head, 1 + nc);
        char cells[8][96];
        for (int f = 0; f < NF; f++) {
            const char *row[1 + 8];
            row[0] = empq_style_feature_title(f);
            for (size_t k = 0; k < nc; k++) {
                const struct empq_style_pair *sp = &g->style_paired[cols[k] * NF + (size_t)f];
                snprintf(cells[k], sizeof cells[k], "%+.4g (p %s, n %zu)", sp->mean_diff, rd(sp->p, b1, sizeof b1),
                         sp->n);
                row[1 + k] = cells[k];
            }
            table_row(d, row, 1 + nc, 0);
        }
        table_end(d);
    }
    /* per emotion */
    if (g->emo != NULL && a->n_pairs > 0) {
        put(d, d->html ? "<p>" : "");
        putf(d, "Per emotion, each condition against the baseline (chi-square, 2 x 3), n of both cells first; "
                "p-values adjusted over the %zu emotions of each condition by Holm (family-wise) and "
                "Benjamini-Hochberg (false discovery rate). An emotion is a finding only where the adjusted p is "
                "small; cells under %d ratings are marked *.",
             a->n_emotions, SMALL_N);
        put(d, d->html ? "</p>\n" : "\n\n");
        static const char *const he[] = {"emotion", "condition", "n (condition / baseline)", "Good (condition)",
                                         "Good (baseline)", "pp", "X\xc2\xb2", "p", "p (Holm)", "p (BH)"};
        table_begin(d, he, 10);
        for (size_t i = 0; i < a->n_pairs; i++) {
            size_t c = a->pair[i].cond;
            for (size_t e = 0; e < a->n_emotions; e++) {
                const empq_emo_test *t = &g->emo[e * a->n_conds + c];
                const empq_cell *x = &a->emo[e * a->n_conds + c], *y = &a->emo[e * a->n_conds + a->baseline];
                char n[64];
                snprintf(n, sizeof n, "%zu / %zu%s", t->n, t->n_base, t->n < SMALL_N || t->n_base < SMALL_N ? " *" : "");
                const char *row[10] = {a->emotions[e],
                                       a->labels[c],
                                       n,
                                       pct(x->share_good, 0, b1, sizeof b1),
                                       pct(y->share_good, 0, b2, sizeof b2),
                                       pts(x->share_good - y->share_good, b3, sizeof b3),
                                       rd(t->statistic, b4, sizeof b4),
                                       rd(t->p, b5, sizeof b5),
                                       rd(t->p_holm, b6, sizeof b6),
                                       rd(t->p_bh, b7, sizeof b7)};
                table_row(d, row, 10, 0);
            }
        }
        table_end(d);
    }
}

/* The 3 x 3 confusion matrix of a judge as a chart: rows the human label,
 * columns the judge's, shaded by the share of the row. */
static void svg_confusion(doc *d, const empq_judge_one *o, const empq_agree *g, size_t k)
{
    const int left = 110, top = 56, cell = 70;
    char id[48], title[256];
    snprintf(id, sizeof id, "t-judge-confusion-%zu", k);
    snprintf(title, sizeof title, "Confusion matrix of judge %s against the human ratings (%zu pairs)", o->name, g->n);
    svg_open(d, "chart judge-confusion", left + 3 * cell + 20, top + 3 * cell + 30, id, title);
    put(d, "<text x=\"10\" y=\"16\" class=\"st\">");
    put_text(d, o->name);
    put(d, ": human (rows) x judge (columns)</text>\n");
    for (int j = 0; j < 3; j++)
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"lb\">judge %s</text>\n",
             left + j * cell + cell / 2, top - 8, rating_names[j]);
    for (int h = 0; h < 3; h++) {
        size_t rowsum = g->confusion[h * 3] + g->confusion[h * 3 + 1] + g->confusion[h * 3 + 2];
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">human %s</text>\n", left - 6,
             top + h * cell + cell / 2 + 4, rating_names[h]);
        for (int j = 0; j < 3; j++) {
            size_t c = g->confusion[h * 3 + j];
            double share = rowsum ? (double)c / (double)rowsum : NAN;
            char col[16];
            heat_color(share, col, sizeof col);
            putf(d, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\">"
                    "<title>human %s, judge %s: %zu</title></rect>"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"%s\">%zu</text>\n",
                 left + j * cell, top + h * cell, cell, cell, col, rating_names[h], rating_names[j], c,
                 left + j * cell + cell / 2, top + h * cell + cell / 2 + 4, share > 0.5 ? "in" : "lb", c);
        }
    }
    put(d, "</svg>\n");
}

/* Judge minus human mean label per group of kind ("condition": per source;
 * "length": per response-length bin), with its bootstrap interval. */
static void svg_judge_bias(doc *d, const empq_judge_one *o, size_t k, const char *kind)
{
    const int left = 220, width = 400, row = 26, top = 40;
    size_t nr = 0;
    int by_source = strcmp(kind, "condition") == 0;
    for (size_t g = 0; g < o->n_ag; g++)
        nr += strcmp(o->ag[g].kind, kind) == 0;
    if (nr == 0)
        return;
    char id[48], title[256];
    snprintf(id, sizeof id, "t-judge-%s-%zu", by_source ? "bias" : "length", k);
    snprintf(title, sizeof title, "Judge %s minus human mean label per %s, with 95%% bootstrap intervals", o->name,
             by_source ? "source" : "response length");
    int h = top + (int)nr * row + 24;
    svg_open(d, "chart judge-bias", left + width + 120, h, id, title);
    put(d, "<text x=\"10\" y=\"16\" class=\"st\">");
    put_text(d, o->name);
    put(d, by_source ? ": judge minus human mean label (-1 to +1) per source</text>\n"
                     : ": judge minus human mean label (-1 to +1) per response length</text>\n");
    for (int t = -2; t <= 2; t++) { /* axis -1..+1 every 0.5 */
        double x = left + width * (t + 2) / 4.0;
        putf(d, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"%s\"/>"
                "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" class=\"lb\">%+.1f</text>\n",
             x, top - 6, x, h - 20, t == 0 ? "#888" : "#ddd", x, h - 6, t / 2.0);
    }
    size_t i = 0;
    for (size_t g = 0; g < o->n_ag; g++) {
        const empq_agree *x = &o->ag[g];
        if (strcmp(x->kind, kind) != 0)
            continue;
        int y = top + (int)i++ * row + 12;
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">", left - 8, y + 4);
        put_text(d, x->group);
        put(d, "</text>\n");
        double v = x->value[EMPQ_AGREE_BIAS], lo = x->lo[EMPQ_AGREE_BIAS], hi = x->hi[EMPQ_AGREE_BIAS];
        if (isnan(v))
            continue;
#define BX(u) (left + width * (fmax(-1, fmin(1, (u))) + 1) / 2.0)
        if (!isnan(lo))
            putf(d, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333\" stroke-width=\"2\"/>\n", BX(lo),
                 y, BX(hi), y);
        putf(d, "<circle cx=\"%.2f\" cy=\"%d\" r=\"5\" fill=\"%s\"><title>%+.3f</title></circle>"
                "<text x=\"%.2f\" y=\"%d\" class=\"lb\">%+.3f</text>\n",
             BX(v), y, v > 0 ? rating_colors[2] : rating_colors[0], v, BX(isnan(hi) ? v : hi) + 8, y + 4, v);
#undef BX
    }
    put(d, "</svg>\n");
}

/* The new model's share Good three ways, on a 0-100% axis. */
static void svg_judge_estimate(doc *d, const empq_judge *J, const empq_judge_one *o, size_t k)
{
    const int left = 220, width = 420, row = 28, top = 40;
    const empq_ppi_result *p = &o->est[2].ppi;
    double v[3][3] = {{p->ppi, p->ppi_lo, p->ppi_hi}, {p->judge, p->judge_lo, p->judge_hi},
                      {p->human, p->human_lo, p->human_hi}};
    static const char *const names[3] = {"prediction-powered", "judge only", "human subset only"};
    char id[48], title[256];
    snprintf(id, sizeof id, "t-judge-estimate-%zu", k);
    snprintf(title, sizeof title, "Share Good of %s estimated with judge %s: three 95%% intervals", J->estimate_cond,
             o->name);
    int h = top + 3 * row + 24;
    svg_open(d, "chart judge-estimate", left + width + 160, h, id, title);
    put(d, "<text x=\"10\" y=\"16\" class=\"st\">Share Good of ");
    put_text(d, J->estimate_cond);
    put(d, " (judge ");
    put_text(d, o->name);
    put(d, "), 95% intervals; dashed: the baseline</text>\n");
    for (int t = 0; t <= 100; t += 25) {
        double x = left + width * t / 100.0;
        putf(d, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#ddd\"/>"
                "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" class=\"lb\">%d%%</text>\n",
             x, top - 6, x, h - 20, x, h - 6, t);
    }
    double bx = left + width * J->base_share[2];
    putf(d, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n", bx,
         top - 6, bx, h - 20);
    for (int i = 0; i < 3; i++) {
        int y = top + i * row + 12;
        char a1[32], a2[48];
        putf(d, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lb\">%s</text>\n", left - 8, y + 4, names[i]);
        double lo = fmax(0, v[i][1]), hi = fmin(1, v[i][2]);
        putf(d, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333\" stroke-width=\"2\"/>"
                "<circle cx=\"%.2f\" cy=\"%d\" r=\"5\" fill=\"%s\"/>"
                "<text x=\"%.2f\" y=\"%d\" class=\"lb\">%s (%s)</text>\n",
             left + width * lo, y, left + width * hi, y, left + width * v[i][0], y, rating_colors[2],
             left + width * hi + 8, y + 4, pct(v[i][0], 0, a1, sizeof a1), ci(v[i][1], v[i][2], a2, sizeof a2));
    }
    put(d, "</svg>\n");
}

/* The judge section: agreement, biases, self-consistency, estimates. */
static void render_judge(doc *d, const empq_analysis *a)
{
    const empq_judge *J = a->judge;
    char b[8][64];
    heading(d, 2, "Judge agreement", "judge");
    put(d, d->html ? "<p>" : "");
    putf(d, "Judge labels from ");
    put_code(d, J->source != NULL ? J->source : "(judge file)");
    putf(d, " against the human ratings of the same responses: one pair per human rating of a response the judge "
            "labelled (its lowest sample). Intervals: 95%% percentile bootstrap over dialogues (%zu seeded "
            "replications). Kappa: Cohen's, unweighted / linearly / quadratically weighted; alpha: "
            "Krippendorff's, ordinal; bias: judge minus human mean label on the 1-3 scale.",
         J->n_boot);
    put(d, d->html ? "</p>\n" : "\n\n");
    for (size_t k = 0; k < J->n_judges; k++) {
        const empq_judge_one *o = &J->j[k];
        char title[160], hid[32];
        snprintf(title, sizeof title, "Judge %s", o->name);
        snprintf(hid, sizeof hid, "judge-%zu", k);
        heading(d, 3, title, hid);
        if (o->n_ag == 0) {
            put(d, d->html ? "<p>" : "");
            putf(d, "%zu labels, none of a response with a human rating: no agreement figures.", o->n_labels);
            put(d, d->html ? "</p>\n" : "\n\n");
        } else {
            static const char *const h[] = {"group", "n", "dialogues", "exact", "kappa", "kappa (linear)",
                                            "kappa (quadratic)", "alpha (ordinal)", "Spearman rho", "bias"};
            table_begin(d, h, 10);
            for (size_t g = 0; g < o->n_ag; g++) {
                const empq_agree *x = &o->ag[g];
                char grp[160], n[32], nd[32], cells[7][96];
                snprintf(grp, sizeof grp, "%s%s%s", strcmp(x->kind, "all") == 0 ? "" : x->kind,
                         strcmp(x->kind, "all") == 0 ? "" : ": ", x->group);
                snprintf(n, sizeof n, "%zu", x->n);
                snprintf(nd, sizeof nd, "%zu", x->dialogues);
                const char *row[10] = {grp, n, nd};
                for (int s = 0; s < EMPQ_AGREE_N_STATS; s++) {
                    snprintf(cells[s], sizeof cells[s], "%s %s", rd(x->value[s], b[0], sizeof b[0]),
                             rng2(x->lo[s], x->hi[s], b[1], sizeof b[1]));
                    row[3 + s] = cells[s];
                }
                table_row(d, row, 10, 0);
            }
            table_end(d);
            const empq_agree *all = &o->ag[0];
            if (d->html) {
                svg_confusion(d, o, all, k);
                svg_judge_bias(d, o, k, "condition");
                svg_judge_bias(d, o, k, "length");
            } else {
                static const char *const hc[] = {"human \\ judge", "Bad", "Okay", "Good"};
                table_begin(d, hc, 4);
                for (int hh = 0; hh < 3; hh++) {
                    char c3[3][32];
                    for (int j = 0; j < 3; j++)
                        snprintf(c3[j], sizeof c3[j], "%zu", all->confusion[hh * 3 + j]);
                    const char *row[4] = {rating_names[hh], c3[0], c3[1], c3[2]};
                    table_row(d, row, 4, 0);
                }
                table_end(d);
            }
        }
        put(d, d->html ? "<p>" : "");
        if (o->self_n > 0)
            putf(d, "Self-consistency (sample 1 against sample 2 of the same response): %zu responses, exact "
                    "agreement %s, quadratic kappa %s.",
                 o->self_n, pct(o->self_exact, 0, b[0], sizeof b[0]), rd(o->self_kappa_q, b[1], sizeof b[1]));
        else
            put(d, "Self-consistency: not measured (one sample per response).");
        put(d, d->html ? "</p>\n" : "\n\n");
        if (!o->has_estimate)
            continue;
        put(d, d->html ? "<p>" : "");
        putf(d, "Estimates for ");
        put_text(d, J->estimate_cond);
        putf(d, ": %zu responses with human labels and %zu judged only; prediction-powered inference "
                "(Angelopoulos et al., Science 2023): theta = mean judge share on the unlabelled + mean (human - "
                "judge) on the labelled, valid however biased the judge is; beside it the judge alone and the "
                "human subset alone. Increase: relative to the baseline's share from the human ratings "
                "(delta-method interval).",
             o->est_n_human, o->est_n_judged);
        put(d, d->html ? "</p>\n" : "\n\n");
        static const char *const he[] = {"share", "prediction-powered [95% CI]", "judge only [95% CI]",
                                         "human subset only [95% CI]", "increase vs baseline (PPI) [95% CI]"};
        table_begin(d, he, 5);
        for (int v = 0; v < 3; v++) {
            const empq_judge_estimate *e = &o->est[v];
            char c4[4][128];
            snprintf(c4[0], sizeof c4[0], "%s %s", pct(e->ppi.ppi, 0, b[0], sizeof b[0]),
                     ci_unit(e->ppi.ppi_lo, e->ppi.ppi_hi, "%", b[1], sizeof b[1]));
            snprintf(c4[1], sizeof c4[1], "%s %s", pct(e->ppi.judge, 0, b[2], sizeof b[2]),
                     ci_unit(e->ppi.judge_lo, e->ppi.judge_hi, "%", b[3], sizeof b[3]));
            snprintf(c4[2], sizeof c4[2], "%s %s", pct(e->ppi.human, 0, b[4], sizeof b[4]),
                     ci_unit(e->ppi.human_lo, e->ppi.human_hi, "%", b[5], sizeof b[5]));
            snprintf(c4[3], sizeof c4[3], "%s %s", pct(e->inc[0], 1, b[6], sizeof b[6]),
                     ci_unit(e->inc_lo[0], e->inc_hi[0], "%", b[7], sizeof b[7]));
            const char *row[5] = {rating_names[v], c4[0], c4[1], c4[2], c4[3]};
            table_row(d, row, 5, 0);
        }
        table_end(d);
        if (d->html)
            svg_judge_estimate(d, J, o, k);
    }
}

static void render(doc *d, const empq_analysis *a)
{
    char b1[64], b2[64], b3[64], b4[64], b5[64], b6[64], b7[64], b8[64], b9[64];
    const char *base = a->labels[a->baseline];

    if (d->html) {
        put(d, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<link rel=\"icon\" href=\"data:,\">\n<title>empq analysis report</title>\n<style>\n"
               "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;"
               "max-width:1100px;padding:0 1em;color:#222;line-height:1.45}\n"
               "h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}\n"
               "table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}\n"
               "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}\n"
               "th{background:#f3f3f3}td.l{text-align:left}\n"
               "svg text{font-family:system-ui,sans-serif;font-size:12px;fill:#222}\n"
               "svg text.in{fill:#fff;font-weight:600}svg text.st{font-weight:600}\n"
               "svg text.small{fill:#888}svg tspan.n{font-size:10px;font-weight:400}\n"
               "svg.small{display:inline-block;margin:0 1em 1em 0;vertical-align:top}\n"
               ".note{color:#555;font-size:.9em}\n"
               ".simulated{background:#fff3cd;border:2px solid #b8860b;padding:.6em 1em;font-size:1.05em}\n"
               ".headline{font-size:1.05em;background:#f6f8fa;"
               "padding:.6em 1em;border-left:4px solid #4a9c5d}\n"
               "</style>\n</head>\n<body>\n<h1>empq analysis report</h1>\n");
    } else {
        put(d, "# empq analysis report\n\n");
    }

    /* simulated ratings: said before anything else */
    if (a->n_simulated > 0) {
        put(d, d->html ? "<p class=\"simulated\" role=\"alert\"><strong>SIMULATED DATA.</strong> "
                       : "> **SIMULATED DATA.** ");
        putf(d, "%zu of the %zu ratings come from simulated raters (study_id SIMULATED, written by empq demo), "
                "not from people. Every share, interval and p-value below describes the simulation only; "
                "it says nothing about how people rate these responses.",
             a->n_simulated, a->n_ratings);
        put(d, d->html ? "</p>\n" : "\n\n");
    }

    /* inputs */
    put(d, d->html ? "<p class=\"note\">" : "");
    putf(d, "%zu ratings in %zu conditions", a->n_ratings, a->n_conds);
    if (a->ratings_name != NULL) {
        put(d, " from ");
        put_code(d, a->ratings_name);
    }
    put(d, "; baseline: ");
    put_text(d, base);
    if (a->n_texts > 0) {
        putf(d, "; style from %zu responses", a->n_texts);
        if (a->responses_name != NULL) {
            put(d, " in ");
            put_code(d, a->responses_name);
        }
    }
    put(d, d->html ? ". Formulas: docs/analysis.md.</p>\n" : ". Formulas: docs/analysis.md.\n\n");

    /* headline */
    put(d, d->html ? "<p class=\"headline\">" : "**Share rated Good:** ");
    if (d->html)
        put(d, "<strong>Share rated Good:</strong> ");
    for (size_t c = 0; c < a->n_conds; c++) {
        const empq_cond_stats *cs = &a->cond[c];
        put(d, c ? "; " : "");
        put_text(d, a->labels[c]);
        putf(d, " %s (95%% CI %s)", pct(cs->share[2], 0, b1, sizeof b1),
             ci(cs->share_lo[2], cs->share_hi[2], b3, sizeof b3));
        if (c != a->baseline) {
            putf(d, ", %s, %s relative, vs ", pts(cs->good_diff, b2, sizeof b2),
                 pct(cs->good_increase, 1, b4, sizeof b4));
            put_text(d, base);
        }
    }
    put(d, d->html ? ".</p>\n" : ".\n\n");
    if (a->design != NULL && a->design->has_participants && a->n_pairs > 0) {
        /* the same increases with the raters resampled: what the design supports */
        put(d, d->html ? "<p class=\"headline\">" : "");
        put(d, d->html ? "<strong>With the raters resampled</strong> (each rates several dialogues): "
                       : "**With the raters resampled** (each rates several dialogues): ");
        for (size_t i = 0; i < a->n_pairs; i++) {
            size_t c = a->pair[i].cond;
            const empq_design_cond *x = &a->design->cond[c];
            put(d, i ? "; " : "");
            put_text(d, a->labels[c]);
            putf(d, " %s relative, 95%% CI %s, odds ratio %s", pct(a->cond[c].good_increase, 1, b1, sizeof b1),
                 ci_unit(x->inc_lo, x->inc_hi, "%", b2, sizeof b2), rd(x->or, b3, sizeof b3));
        }
        put(d, d->html ? ". See <a href=\"#design\">the design section</a>.</p>\n" : ". See the design section.\n\n");
    }
    para(d, "pp: percentage points, the difference of two shares (49% to 64% is +15 pp); relative: that "
            "difference divided by the baseline's share (+15 pp on 49% is +31% relative). 95% CI: Wilson score "
            "interval of the share.");

    /* ---- conditions ---- */
    heading(d, 2, "Ratings per condition", "conditions");
    static const char *const h1[] = {"condition", "n", "Bad", "Okay", "Good", "Good 95% CI", "mean (1-3)", "sd",
                                     "Good vs baseline (pp)", "Good vs baseline (relative)"};
    table_begin(d, h1, 10);
    for (size_t c = 0; c < a->n_conds; c++) {
        const empq_cond_stats *cs = &a->cond[c];
        char n[32];
        snprintf(n, sizeof n, "%zu", cs->n);
        const char *row[10] = {a->labels[c],
                               n,
                               pct(cs->share[0], 0, b1, sizeof b1),
                               pct(cs->share[1], 0, b2, sizeof b2),
                               pct(cs->share[2], 0, b3, sizeof b3),
                               ci(cs->share_lo[2], cs->share_hi[2], b9, sizeof b9),
                               rd(cs->mean, b4, sizeof b4),
                               rd(cs->sd, b5, sizeof b5),
                               c == a->baseline ? "(baseline)" : pts(cs->good_diff, b6, sizeof b6),
                               c == a->baseline ? "(baseline)" : pct(cs->good_increase, 1, b7, sizeof b7)};
        table_row(d, row, 10, 0);
    }
    table_end(d);
    if (d->html) {
        svg_stacked(d, a);
        svg_good_ci(d, a);
    }

    /* ---- tests ---- */
    heading(d, 2, "Tests", "tests");
    put(d, d->html ? "<p>" : "");
    putf(d, "Chi-square test of independence, conditions x ratings (%zu x 3): X\xc2\xb2 = %s, df = %d, p = %s, "
            "Cram\xc3\xa9r's V = %s.",
         a->overall.rows_used, rd(a->overall.statistic, b1, sizeof b1), a->overall.df,
         rd(a->overall.p, b2, sizeof b2), rd(a->overall.cramers_v, b3, sizeof b3));
    put(d, d->html ? "</p>\n" : "\n\n");
    if (a->n_pairs > 0) {
        para(d, "Each condition against the baseline: chi-square on the 2 x 3 table and a two-sided "
                "Mann-Whitney U test (normal approximation, tie and continuity corrections); p-values "
                "Holm-adjusted over the comparisons, separately for each test.");
        static const char *const h2[] = {"condition", "X\xc2\xb2", "df", "p", "p (Holm)", "Cram\xc3\xa9r's V",
                                         "U", "z", "p (MWU)", "p (MWU, Holm)"};
        table_begin(d, h2, 10);
        for (size_t i = 0; i < a->n_pairs; i++) {
            const empq_pair_stats *ps = &a->pair[i];
            char df[16];
            snprintf(df, sizeof df, "%d", ps->chi2.df);
            const char *row[10] = {a->labels[ps->cond],
                                   rd(ps->chi2.statistic, b1, sizeof b1),
                                   df,
                                   rd(ps->chi2.p, b2, sizeof b2),
                                   rd(ps->chi2_p_holm, b3, sizeof b3),
                                   rd(ps->chi2.cramers_v, b4, sizeof b4),
                                   rd(ps->mwu.u, b5, sizeof b5),
                                   rd(ps->mwu.z, b6, sizeof b6),
                                   rd(ps->mwu.p, b7, sizeof b7),
                                   rd(ps->mwu_p_holm, b8, sizeof b8)};
            table_row(d, row, 10, 0);
        }
        table_end(d);
    }

    render_design(d, a);

    /* ---- emotions ---- */
    heading(d, 2, "Per emotion", "emotions");
    if (a->n_emotions == 0) {
        para(d, "The ratings carry no emotion: no per-emotion figures.");
    } else {
        putf(d, d->html ? "<p>%s" : "%s",
             "Share of Good ratings per emotion and condition, with n, the ratings in the cell; (+) positive, "
             "(\xe2\x88\x92) negative emotions. ");
        putf(d, "A cell of fewer than %d ratings is %s: one rating moves its share by %d points or more, "
                "so read it as noise, not as a finding.",
             SMALL_N, d->html ? "greyed" : "marked *", 100 / SMALL_N);
        put(d, d->html ? "</p>\n" : "\n\n");
        if (d->html) {
            svg_heatmap(d, a);
        } else {
            const char *head[2 + EMPQ_ANALYSIS_MAX_CONDS];
            head[0] = "emotion";
            head[1] = "sentiment";
            for (size_t c = 0; c < a->n_conds; c++)
                head[2 + c] = a->labels[c];
            table_begin(d, head, 2 + a->n_conds);
            char cells[EMPQ_ANALYSIS_MAX_CONDS][64];
            for (size_t e = 0; e < a->n_emotions; e++) {
                const char *row[2 + EMPQ_ANALYSIS_MAX_CONDS];
                row[0] = a->emotions[e];
                row[1] = a->emotion_sentiment[e] == EMPQ_SENT_POSITIVE   ? "positive"
                         : a->emotion_sentiment[e] == EMPQ_SENT_NEGATIVE ? "negative"
                                                                         : "";
                for (size_t c = 0; c < a->n_conds; c++) {
                    const empq_cell *cl = &a->emo[e * a->n_conds + c];
                    snprintf(cells[c], sizeof cells[c], "%s (n=%zu)%s", pct(cl->share_good, 0, b1, sizeof b1), cl->n,
                             cl->n < SMALL_N ? " *" : "");
                    row[2 + c] = cells[c];
                }
                table_row(d, row, 2 + a->n_conds, 0);
            }
            table_end(d);
        }
        double diff[256];
        size_t idx[256];
        size_t ne = a->n_emotions < 256 ? a->n_emotions : 256;
        for (size_t i = 0; i < a->n_pairs; i++) {
            size_t c = a->pair[i].cond;
            emotion_diffs(a, c, diff);
            for (size_t e = 0; e < ne; e++)
                idx[e] = e;
            sort_by_diff(idx, ne, diff);
            size_t valid = 0;
            while (valid < ne && !isnan(diff[idx[valid]]))
                valid++;
            put(d, d->html ? "<p>" : "");
            put_text(d, a->labels[c]);
            put(d, " against ");
            put_text(d, base);
            put(d, ", largest gain in share Good: ");
            for (size_t k = 0; k < EXTREMES && k < valid; k++) {
                put(d, k ? ", " : "");
                put_text(d, a->emotions[idx[k]]);
                putf(d, " (%s, n %zu / %zu)", pts(diff[idx[k]], b1, sizeof b1), a->emo[idx[k] * a->n_conds + c].n,
                     a->emo[idx[k] * a->n_conds + a->baseline].n);
            }
            put(d, "; smallest gain or largest shortfall: ");
            for (size_t k = 0; k < EXTREMES && k < valid; k++) {
                size_t e = idx[valid - 1 - k];
                put(d, k ? ", " : "");
                put_text(d, a->emotions[e]);
                putf(d, " (%s, n %zu / %zu)", pts(diff[e], b1, sizeof b1), a->emo[e * a->n_conds + c].n,
                     a->emo[e * a->n_conds + a->baseline].n);
            }
            put(d, d->html ? ".</p>\n" : ".\n\n");
        }
    }

    /* ---- sentiment ---- */
    heading(d, 2, "Positive and negative emotions", "sentiment");
    if (!a->has_sentiment) {
        para(d, "The ratings carry no sentiment: not applicable.");
    } else {
        static const char *const h3[] = {"condition", "n (positive)", "Good (positive)", "mean (positive)",
                                         "n (negative)", "Good (negative)", "mean (negative)",
                                         "X\xc2\xb2 (positive vs negative)", "p", "Cram\xc3\xa9r's V"};
        table_begin(d, h3, 10);
        for (size_t c = 0; c < a->n_conds; c++) {
            const empq_cell *pos = &a->sent[EMPQ_SENT_POSITIVE * a->n_conds + c];
            const empq_cell *neg = &a->sent[EMPQ_SENT_NEGATIVE * a->n_conds + c];
            char np[32], nn[32];
            snprintf(np, sizeof np, "%zu", pos->n);
            snprintf(nn, sizeof nn, "%zu", neg->n);
            const char *row[10] = {a->labels[c],
                                   np,
                                   pct(pos->share_good, 0, b1, sizeof b1),
                                   rd(pos->mean, b2, sizeof b2),
                                   nn,
                                   pct(neg->share_good, 0, b3, sizeof b3),
                                   rd(neg->mean, b4, sizeof b4),
                                   rd(a->sent_test[c].statistic, b5, sizeof b5),
                                   rd(a->sent_test[c].p, b6, sizeof b6),
                                   rd(a->sent_test[c].cramers_v, b7, sizeof b7)};
            table_row(d, row, 10, 0);
        }
        table_end(d);
    }

    /* ---- agreement ---- */
    heading(d, 2, "Rater agreement", "agreement");
    put(d, d->html ? "<p>" : "");
    if (isnan(a->alpha.alpha)) {
        putf(d, "Krippendorff's alpha (ordinal): not applicable: %s (%zu units, %zu rated more than once).",
             a->alpha.pairable_units == 0 ? "every item has a single rating" : "no variation among the ratings",
             a->alpha.units, a->alpha.pairable_units);
    } else {
        putf(d, "Krippendorff's alpha (ordinal) = %s over %zu units rated more than once (%s pairable ratings).",
             rd(a->alpha.alpha, b1, sizeof b1), a->alpha.pairable_units, rd(a->alpha.pairable_values, b2, sizeof b2));
    }
    put(d, d->html ? "</p>\n" : "\n\n");

    /* ---- style ---- */
    heading(d, 2, "Style of the responses", "style");
    if (a->n_sources == 0) {
        para(d, "No response texts given (--responses): no style figures.");
    } else {
        para(d, "Mean per response (after Lee et al. 2024); H and p: Kruskal-Wallis test across the sources.");
        const char *head[3 + 8 + 1];
        size_t ns = a->n_sources <= 8 ? a->n_sources : 8;
        head[0] = "feature";
        for (size_t s = 0; s < ns; s++)
            head[1 + s] = a->sources[s];
        head[1 + ns] = "H";
        head[2 + ns] = "p";
        table_begin(d, head, 3 + ns);
        char cells[8][32];
        for (int f = 0; f < NF; f++) {
            const char *row[3 + 8];
            row[0] = empq_style_feature_title(f);
            for (size_t s = 0; s < ns; s++)
                row[1 + s] = rd(a->style[s * NF + (size_t)f].mean, cells[s], sizeof cells[s]);
            row[1 + ns] = rd(a->style_test[f].h, b8, sizeof b8);
            row[2 + ns] = rd(a->style_test[f].p, b9, sizeof b9);
            table_row(d, row, 3 + ns, 0);
        }
        table_end(d);
        if (a->n_sources > 8)
            para(d, "(More than 8 sources: the table shows the first 8; tables/style.csv has all.)");
        if (d->html) {
            put(d, "<div>\n");
            for (int f = 0; f < NF; f++)
                svg_style(d, a, f);
            put(d, "</div>\n");
        }
    }

    if (a->cost != NULL)
        render_cost(d, a);

    if (a->judge != NULL)
        render_judge(d, a);

    put(d, d->html ? "<p class=\"note\">Tables with full precision: tables/*.csv.</p>\n</body>\n</html>\n"
                   : "Tables with full precision: `tables/*.csv`.\n");
}

int empq_analysis_render_md(const empq_analysis *a, empq_buf *out)
{
    doc d = {.b = out, .html = 0};
    render(&d, a);
    return d.rc;
}

int empq_analysis_render_html(const empq_analysis *a, empq_buf *out)
{
    doc d = {.b = out, .html = 1};
    render(&d, a);
    return d.rc;
}

/* ==================== tables ==================== */

/* A CSV being built: cells appended with ',' between them. Every table
 * ends with the column simulated: 1 when any rating came from a simulated
 * rater (the report's notice), else 0, on every row, so a table read alone
 * still says so (a column, not a comment line: pandas and R read it with
 * their defaults). */
typedef struct csvb {
    empq_buf b;
    int first;
    int rc;
    int simulated;
} csvb;

static void cs_str(csvb *c, const char *s)
{
    if (c->rc != EMPQ_OK)
        return;
    if (!c->first)
        c->rc = empq_buf_append(&c->b, ",", 1);
    c->first = 0;
    if (c->rc == EMPQ_OK)
        c->rc = empq_buf_csv(&c->b, s);
}

static void cs_num(csvb *c, double v)
{
    char t[64];
    cs_str(c, empq_analysis_num(v, t, sizeof t));
}

static void cs_size(csvb *c, size_t v)
{
    char t[32];
    snprintf(t, sizeof t, "%zu", v);
    cs_str(c, t);
}

static void cs_row_end(csvb *c, const char *last)
{
    cs_str(c, last);
    if (c->rc == EMPQ_OK)
        c->rc = empq_buf_append(&c->b, "\r\n", 2);
    c->first = 1;
}

static void cs_end(csvb *c) { cs_row_end(c, c->simulated ? "1" : "0"); }

static void cs_header(csvb *c, const char *const *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cs_str(c, h[i]);
    cs_row_end(c, "simulated");
}

#define HEADER(c, ...) do { static const char *const h_[] = {__VA_ARGS__}; \
    cs_header(c, h_, sizeof h_ / sizeof h_[0]); } while (0)

static const char *sent_name(int s)
{
    return s == EMPQ_SENT_POSITIVE ? "positive" : s == EMPQ_SENT_NEGATIVE ? "negative" : "";
}

/* The schema file "NAME.schema.json" compiled in from docs/schemas/
 * (cmake/schemas.cmake), or NULL. */
const unsigned char *empq__schema_find(const char *name, size_t *len);

/* Writes dir/tables/NAME.schema.json (for NAME.csv) when docs/schemas/ has
 * one: the table's columns, types and meanings beside it. */
static int write_table_schema(const char *dir, const char *name, empq_error *err)
{
    char file[128];
    size_t n = strlen(name), len = 0;
    if (n < 4 || n - 4 + sizeof ".schema.json" > sizeof file)
        return EMPQ_OK;
    snprintf(file, sizeof file, "%.*s.schema.json", (int)(n - 4), name);
    const unsigned char *data = empq__schema_find(file, &len);
    if (data == NULL)
        return EMPQ_OK;
    empq_buf path = {0};
    if (empq_buf_printf(&path, "%s/tables/%s", dir, file) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "tables/%s: out of memory", file);
    int rc = empq_write_file_atomic(path.data, (const char *)data, len, err);
    empq_buf_free(&path);
    return rc;
}

static int write_table(const char *dir, const char *name, csvb *c, empq_error *err)
{
    if (c->rc != EMPQ_OK) {
        empq_buf_free(&c->b);
        return empq_error_set(err, EMPQ_ENOMEM, "tables/%s: out of memory", name);
    }
    empq_buf path = {0};
    int rc = empq_buf_printf(&path, "%s/tables/%s", dir, name);
    if (rc != EMPQ_OK) {
        empq_buf_free(&c->b);
        return empq_error_set(err, EMPQ_ENOMEM, "tables/%s: out of memory", name);
    }
    rc = empq_write_file_atomic(path.data, c->b.data ? c->b.data : "", c->b.len, err);
    empq_buf_free(&path);
    empq_buf_free(&c->b);
    c->first = 1;
    return rc == EMPQ_OK ? write_table_schema(dir, name, err) : rc;
}

static int write_tables(const empq_analysis *a, const char *dir, empq_error *err)
{
    csvb c = {.first = 1, .simulated = a->n_simulated > 0};
    size_t k = a->n_conds;
    const char *bname = a->conds[a->baseline];
    int rc;

    HEADER(&c, "condition", "label", "n", "n_bad", "n_okay", "n_good", "share_bad", "share_okay", "share_good",
           "mean_rating", "sd_rating", "good_increase_vs_baseline", "is_baseline", "share_bad_lo95", "share_bad_hi95",
           "share_okay_lo95", "share_okay_hi95", "share_good_lo95", "share_good_hi95", "good_diff_vs_baseline");
    for (size_t i = 0; i < k; i++) {
        const empq_cond_stats *cs = &a->cond[i];
        cs_str(&c, a->conds[i]);
        cs_str(&c, a->labels[i]);
        cs_size(&c, cs->n);
        for (int v = 0; v < 3; v++)
            cs_size(&c, cs->count[v]);
        for (int v = 0; v < 3; v++)
            cs_num(&c, cs->share[v]);
        cs_num(&c, cs->mean);
        cs_num(&c, cs->sd);
        cs_num(&c, cs->good_increase);
        cs_str(&c, i == a->baseline ? "1" : "0");
        for (int v = 0; v < 3; v++) {
            cs_num(&c, cs->share_lo[v]);
            cs_num(&c, cs->share_hi[v]);
        }
        cs_num(&c, cs->good_diff);
        cs_end(&c);
    }
    if ((rc = write_table(dir, "conditions.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "test", "rows", "cols", "statistic", "df", "p", "cramers_v", "n");
    cs_str(&c, "chi2_conditions_x_rating");
    cs_size(&c, a->overall.rows_used);
    cs_size(&c, a->overall.cols_used);
    cs_num(&c, a->overall.statistic);
    cs_size(&c, (size_t)a->overall.df);
    cs_num(&c, a->overall.p);
    cs_num(&c, a->overall.cramers_v);
    cs_num(&c, a->overall.n);
    cs_end(&c);
    if ((rc = write_table(dir, "chi2_overall.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "condition", "baseline", "n", "n_baseline", "chi2", "chi2_df", "chi2_p", "chi2_p_holm", "cramers_v",
           "mwu_u", "mwu_z", "mwu_p", "mwu_p_holm");
    for (size_t i = 0; i < a->n_pairs; i++) {
        const empq_pair_stats *ps = &a->pair[i];
        cs_str(&c, a->conds[ps->cond]);
        cs_str(&c, bname);
        cs_size(&c, a->cond[ps->cond].n);
        cs_size(&c, a->cond[a->baseline].n);
        cs_num(&c, ps->chi2.statistic);
        cs_size(&c, (size_t)ps->chi2.df);
        cs_num(&c, ps->chi2.p);
        cs_num(&c, ps->chi2_p_holm);
        cs_num(&c, ps->chi2.cramers_v);
        cs_num(&c, ps->mwu.u);
        cs_num(&c, ps->mwu.z);
        cs_num(&c, ps->mwu.p);
        cs_num(&c, ps->mwu_p_holm);
        cs_end(&c);
    }
    if ((rc = write_table(dir, "pairwise.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "emotion", "sentiment", "condition", "n", "n_bad", "n_okay", "n_good", "share_good", "mean_rating",
           "diff_share_good_vs_baseline", "share_good_lo95", "share_good_hi95");
    for (size_t e = 0; e < a->n_emotions; e++) {
        const empq_cell *bc = &a->emo[e * k + a->baseline];
        for (size_t i = 0; i < k; i++) {
            const empq_cell *cl = &a->emo[e * k + i];
            cs_str(&c, a->emotions[e]);
            cs_str(&c, sent_name(a->emotion_sentiment[e]));
            cs_str(&c, a->conds[i]);
            cs_size(&c, cl->n);
            for (int v = 0; v < 3; v++)
                cs_size(&c, cl->count[v]);
            cs_num(&c, cl->share_good);
            cs_num(&c, cl->mean);
            cs_num(&c, i == a->baseline ? NAN : cl->share_good - bc->share_good);
            cs_num(&c, cl->good_lo);
            cs_num(&c, cl->good_hi);
            cs_end(&c);
        }
    }
    if ((rc = write_table(dir, "emotions.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "condition", "direction", "rank", "emotion", "share_good", "share_good_baseline", "diff");
    double diff[256];
    size_t idx[256];
    size_t ne = a->n_emotions < 256 ? a->n_emotions : 256;
    for (size_t i = 0; i < a->n_pairs; i++) {
        size_t cc = a->pair[i].cond;
        emotion_diffs(a, cc, diff);
        for (size_t e = 0; e < ne; e++)
            idx[e] = e;
        sort_by_diff(idx, ne, diff);
        size_t valid = 0;
        while (valid < ne && !isnan(diff[idx[valid]]))
            valid++;
        for (int dir_ = 0; dir_ < 2; dir_++) {
            for (size_t r = 0; r < EXTREMES && r < valid; r++) {
                size_t e = dir_ == 0 ? idx[r] : idx[valid - 1 - r];
                cs_str(&c, a->conds[cc]);
                cs_str(&c, dir_ == 0 ? "top" : "bottom");
                cs_size(&c, r + 1);
                cs_str(&c, a->emotions[e]);
                cs_num(&c, a->emo[e * k + cc].share_good);
                cs_num(&c, a->emo[e * k + a->baseline].share_good);
                cs_num(&c, diff[e]);
                cs_end(&c);
            }
        }
    }
    if ((rc = write_table(dir, "emotion_extremes.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "sentiment", "condition", "n", "n_bad", "n_okay", "n_good", "share_good", "mean_rating",
           "share_good_lo95", "share_good_hi95");
    for (int s = 1; s >= 0 && a->has_sentiment; s--) {
        for (size_t i = 0; i < k; i++) {
            const empq_cell *cl = &a->sent[(size_t)s * k + i];
            cs_str(&c, sent_name(s));
            cs_str(&c, a->conds[i]);
            cs_size(&c, cl->n);
            for (int v = 0; v < 3; v++)
                cs_size(&c, cl->count[v]);
            cs_num(&c, cl->share_good);
            cs_num(&c, cl->mean);
            cs_num(&c, cl->good_lo);
            cs_num(&c, cl->good_hi);
            cs_end(&c);
        }
    }
    if ((rc = write_table(dir, "sentiment.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "condition", "chi2", "df", "p", "cramers_v", "n");
    for (size_t i = 0; i < k && a->has_sentiment; i++) {
        cs_str(&c, a->conds[i]);
        cs_num(&c, a->sent_test[i].statistic);
        cs_size(&c, (size_t)a->sent_test[i].df);
        cs_num(&c, a->sent_test[i].p);
        cs_num(&c, a->sent_test[i].cramers_v);
        cs_num(&c, a->sent_test[i].n);
        cs_end(&c);
    }
    if ((rc = write_table(dir, "sentiment_tests.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "measure", "alpha", "units", "pairable_units", "pairable_values", "categories", "note");
    cs_str(&c, "krippendorff_alpha_ordinal");
    cs_num(&c, a->alpha.alpha);
    cs_size(&c, a->alpha.units);
    cs_size(&c, a->alpha.pairable_units);
    cs_num(&c, a->alpha.pairable_values);
    cs_size(&c, a->alpha.categories);
    cs_str(&c, !isnan(a->alpha.alpha)           ? ""
               : a->alpha.pairable_units == 0 ? "not applicable: every item has a single rating"
                                              : "not applicable: no variation among the ratings");
    cs_end(&c);
    if ((rc = write_table(dir, "agreement.csv", &c, err)) != EMPQ_OK)
        return rc;

    if (a->n_sources == 0)
        return EMPQ_OK;
    HEADER(&c, "source", "feature", "n", "mean", "sd", "median");
    for (size_t s = 0; s < a->n_sources; s++) {
        for (int f = 0; f < NF; f++) {
            const empq_style_cell *sc = &a->style[s * NF + (size_t)f];
            cs_str(&c, a->sources[s]);
            cs_str(&c, empq_style_feature_name(f));
            cs_size(&c, sc->n);
            cs_num(&c, sc->mean);
            cs_num(&c, sc->sd);
            cs_num(&c, sc->median);
            cs_end(&c);
        }
    }
    if ((rc = write_table(dir, "style.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "feature", "kruskal_h", "df", "p", "groups");
    for (int f = 0; f < NF; f++) {
        cs_str(&c, empq_style_feature_name(f));
        cs_num(&c, a->style_test[f].h);
        cs_size(&c, (size_t)a->style_test[f].df);
        cs_num(&c, a->style_test[f].p);
        cs_size(&c, a->style_test[f].groups_used);
        cs_end(&c);
    }
    if ((rc = write_table(dir, "style_tests.csv", &c, err)) != EMPQ_OK)
        return rc;

    /* one row per response: raw counts, then the features */
    cs_str(&c, "index");
    cs_str(&c, "source");
    static const char *const counts[] = {"n_words", "n_sentences", "n_letters", "n_exclamations", "n_questions",
                                         "n_emojis", "n_first_person", "n_second_person", "n_apology",
                                         "n_gratitude"};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        cs_str(&c, counts[i]);
    for (int f = 0; f < NF; f++)
        cs_str(&c, empq_style_feature_name(f));
    cs_row_end(&c, "simulated");
    for (size_t t = 0; t < a->n_texts; t++) {
        const empq_style_counts *sc = &a->text_counts[t];
        cs_size(&c, t);
        cs_str(&c, a->sources[a->text_source[t]]);
        size_t v[] = {sc->words,  sc->sentences,    sc->letters,       sc->exclamations, sc->questions,
                      sc->emojis, sc->first_person, sc->second_person, sc->apology,      sc->gratitude};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            cs_size(&c, v[i]);
        for (int f = 0; f < NF; f++) { /* full precision: the values are re-tested */
            char num[40];
            snprintf(num, sizeof num, "%.17g", a->text_features[t * NF + (size_t)f]);
            cs_str(&c, num);
        }
        cs_end(&c);
    }
    return write_table(dir, "style_values.csv", &c, err);
}

static void cs_full(csvb *c, double v)
{
    char t[40];
    if (isnan(v))
        snprintf(t, sizeof t, "NA");
    else
        snprintf(t, sizeof t, "%.17g", v);
    cs_str(c, t);
}

static void cs_fit(csvb *c, const char *model, const empq_fit_result *f, size_t j, const char *param)
{
    cs_str(c, model);
    cs_str(c, param);
    cs_full(c, f->beta[j]);
    cs_full(c, f->se[j]);
    cs_full(c, f->se_cluster[j]);
    cs_size(c, f->n);
    cs_size(c, f->groups);
    cs_full(c, f->loglik);
    cs_end(c);
}

/* tables/design_conditions.csv, design_fits.csv, emotion_tests.csv */
static int write_design_tables(const empq_analysis *a, const char *dir, empq_error *err)
{
    const empq_design *g = a->design;
    if (g == NULL)
        return EMPQ_OK;
    csvb c = {.first = 1, .simulated = a->n_simulated > 0};
    int rc;
    HEADER(&c, "condition", "label", "is_baseline", "participants", "icc_good", "share_good", "good_boot_lo95",
           "good_boot_hi95", "good_boot2_lo95", "good_boot2_hi95", "good_diff_vs_baseline", "diff_boot_lo95",
           "diff_boot_hi95", "good_increase_vs_baseline", "increase_boot_lo95", "increase_boot_hi95",
           "increase_boot2_lo95", "increase_boot2_hi95", "log_odds_ratio", "odds_ratio", "odds_ratio_lo95",
           "odds_ratio_hi95", "se_naive", "se_cluster", "se_ratio", "p_naive", "p_cluster", "ordinal_beta",
           "ordinal_se_naive", "ordinal_se_cluster", "ordinal_p_cluster", "paired_dialogues",
           "paired_mean_rating_diff", "paired_good_diff", "paired_wilcoxon", "paired_p", "share_bad",
           "bad_boot_lo95", "bad_boot_hi95", "share_okay", "okay_boot_lo95", "okay_boot_hi95");
    for (size_t i = 0; i < a->n_conds; i++) {
        const empq_design_cond *x = &g->cond[i];
        const empq_cond_stats *cs = &a->cond[i];
        cs_str(&c, a->conds[i]);
        cs_str(&c, a->labels[i]);
        cs_str(&c, i == a->baseline ? "1" : "0");
        cs_size(&c, x->participants);
        double v[] = {x->icc_good, cs->share[2], x->good_lo, x->good_hi, x->good2_lo, x->good2_hi, cs->good_diff,
                      x->diff_lo, x->diff_hi, cs->good_increase, x->inc_lo, x->inc_hi, x->inc2_lo, x->inc2_hi,
                      x->log_or, x->or, x->or_lo, x->or_hi, x->se_naive, x->se_cluster, x->se_cluster / x->se_naive,
                      x->p_naive, x->p_cluster, x->ord_beta, x->ord_se_naive, x->ord_se_cluster, x->ord_p_cluster};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            cs_full(&c, v[k]);
        cs_size(&c, x->paired_n);
        cs_full(&c, x->paired_mean_diff);
        cs_full(&c, x->paired_good_diff);
        cs_full(&c, x->paired_w);
        cs_full(&c, x->paired_p);
        double sh[] = {cs->share[0], x->bad_lo, x->bad_hi, cs->share[1], x->okay_lo, x->okay_hi};
        for (size_t k = 0; k < sizeof sh / sizeof sh[0]; k++)
            cs_full(&c, sh[k]);
        cs_end(&c);
    }
    if ((rc = write_table(dir, "design_conditions.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "model", "parameter", "estimate", "se_naive", "se_cluster", "n", "groups", "loglik");
    char name[160];
    if (g->logit_ok) {
        cs_fit(&c, "logit_good", &g->logit, 0, "intercept");
        size_t col = 1;
        for (size_t i = 0; i < a->n_conds; i++) {
            if (i == a->baseline)
                continue;
            snprintf(name, sizeof name, "condition:%s", a->conds[i]);
            cs_fit(&c, "logit_good", &g->logit, col++, name);
        }
    }
    if (g->ordinal_ok) {
        size_t col = 0;
        for (size_t i = 0; i < a->n_conds; i++) {
            if (i == a->baseline)
                continue;
            snprintf(name, sizeof name, "condition:%s", a->conds[i]);
            cs_fit(&c, "ordinal_logit", &g->ordinal, col++, name);
        }
        cs_fit(&c, "ordinal_logit", &g->ordinal, col, "cut:1|2");
        cs_fit(&c, "ordinal_logit", &g->ordinal, col + 1, "cut:2|3");
    }
    if ((rc = write_table(dir, "design_fits.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "emotion", "condition", "n", "n_baseline", "share_good", "share_good_baseline", "good_diff", "chi2",
           "p", "p_holm", "p_bh");
    for (size_t i = 0; g->emo != NULL && i < a->n_pairs; i++) {
        size_t cc = a->pair[i].cond;
        for (size_t e = 0; e < a->n_emotions; e++) {
            const empq_emo_test *t = &g->emo[e * a->n_conds + cc];
            const empq_cell *x = &a->emo[e * a->n_conds + cc], *y = &a->emo[e * a->n_conds + a->baseline];
            cs_str(&c, a->emotions[e]);
            cs_str(&c, a->conds[cc]);
            cs_size(&c, t->n);
            cs_size(&c, t->n_base);
            double v[] = {x->share_good, y->share_good, x->share_good - y->share_good, t->statistic, t->p,
                          t->p_holm, t->p_bh};
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
                cs_full(&c, v[k]);
            cs_end(&c);
        }
    }
    if ((rc = write_table(dir, "emotion_tests.csv", &c, err)) != EMPQ_OK)
        return rc;

    HEADER(&c, "source", "baseline", "feature", "dialogues", "mean_diff", "wilcoxon", "p");
    for (size_t s = 0; g->style_paired != NULL && s < a->n_sources; s++) {
        if ((long)s == g->style_base)
            continue;
        for (int f = 0; f < NF; f++) {
            const struct empq_style_pair *sp = &g->style_paired[s * NF + (size_t)f];
            cs_str(&c, a->sources[s]);
            cs_str(&c, a->sources[g->style_base]);
            cs_str(&c, empq_style_feature_name(f));
            cs_size(&c, sp->n);
            cs_full(&c, sp->mean_diff);
            cs_full(&c, sp->w);
            cs_full(&c, sp->p);
            cs_end(&c);
        }
    }
    return write_table(dir, "style_paired.csv", &c, err);
}

/* tables/judge_agreement.csv, judge_confusion.csv, judge_self.csv, judge_estimates.csv */
static int write_judge_tables(const empq_analysis *a, const char *dir, empq_error *err)
{
    const empq_judge *J = a->judge;
    if (J == NULL)
        return EMPQ_OK;
    csvb c = {.first = 1, .simulated = a->n_simulated > 0};
    int rc;
    HEADER(&c, "judge", "breakdown", "group", "n", "dialogues", "statistic", "value", "lo95", "hi95");
    for (size_t k = 0; k < J->n_judges; k++) {
        for (size_t g = 0; g < J->j[k].n_ag; g++) {
            const empq_agree *x = &J->j[k].ag[g];
            for (int s = 0; s < EMPQ_AGREE_N_STATS; s++) {
                cs_str(&c, J->j[k].name);
                cs_str(&c, x->kind);
                cs_str(&c, x->group);
                cs_size(&c, x->n);
                cs_size(&c, x->dialogues);
                cs_str(&c, empq_agree_stat_name(s));
                cs_full(&c, x->value[s]);
                cs_full(&c, x->lo[s]);
                cs_full(&c, x->hi[s]);
                cs_end(&c);
            }
        }
    }
    if ((rc = write_table(dir, "judge_agreement.csv", &c, err)) != EMPQ_OK)
        return rc;
    HEADER(&c, "judge", "breakdown", "group", "human", "judge_label", "count");
    for (size_t k = 0; k < J->n_judges; k++) {
        for (size_t g = 0; g < J->j[k].n_ag; g++) {
            const empq_agree *x = &J->j[k].ag[g];
            for (int t = 0; t < 9; t++) {
                cs_str(&c, J->j[k].name);
                cs_str(&c, x->kind);
                cs_str(&c, x->group);
                cs_str(&c, rating_names[t / 3]);
                cs_str(&c, rating_names[t % 3]);
                cs_size(&c, x->confusion[t]);
                cs_end(&c);
            }
        }
    }
    if ((rc = write_table(dir, "judge_confusion.csv", &c, err)) != EMPQ_OK)
        return rc;
    HEADER(&c, "judge", "labels", "responses_with_two_samples", "exact_agreement", "kappa_quadratic");
    for (size_t k = 0; k < J->n_judges; k++) {
        cs_str(&c, J->j[k].name);
        cs_size(&c, J->j[k].n_labels);
        cs_size(&c, J->j[k].self_n);
        cs_full(&c, J->j[k].self_n ? J->j[k].self_exact : NAN);
        cs_full(&c, J->j[k].self_n ? J->j[k].self_kappa_q : NAN);
        cs_end(&c);
    }
    if ((rc = write_table(dir, "judge_self.csv", &c, err)) != EMPQ_OK)
        return rc;
    HEADER(&c, "judge", "condition", "share", "method", "estimate", "lo95", "hi95", "n_human", "n_judged_only",
           "baseline_share", "increase", "increase_lo95", "increase_hi95");
    static const char *const methods[3] = {"ppi", "judge_only", "human_only"};
    for (size_t k = 0; k < J->n_judges; k++) {
        const empq_judge_one *o = &J->j[k];
        for (int v = 0; o->has_estimate && v < 3; v++) {
            const empq_judge_estimate *e = &o->est[v];
            double est[3][3] = {{e->ppi.ppi, e->ppi.ppi_lo, e->ppi.ppi_hi},
                                {e->ppi.judge, e->ppi.judge_lo, e->ppi.judge_hi},
                                {e->ppi.human, e->ppi.human_lo, e->ppi.human_hi}};
            for (int m = 0; m < 3; m++) {
                cs_str(&c, o->name);
                cs_str(&c, J->estimate_cond);
                cs_str(&c, rating_names[v]);
                cs_str(&c, methods[m]);
                for (int q = 0; q < 3; q++)
                    cs_full(&c, est[m][q]);
                cs_size(&c, o->est_n_human);
                cs_size(&c, o->est_n_judged);
                cs_full(&c, J->base_share[v]);
                cs_full(&c, e->inc[m]);
                cs_full(&c, e->inc_lo[m]);
                cs_full(&c, e->inc_hi[m]);
                cs_end(&c);
            }
        }
    }
    return write_table(dir, "judge_estimates.csv", &c, err);
}

int empq_analysis_write(const empq_analysis *a, const char *dir, empq_error *err)
{
    if (a == NULL || dir == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "analysis: NULL argument");
    empq_buf path = {0};
    int rc = empq_buf_printf(&path, "%s/tables", dir);
    if (rc != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    rc = empq_mkdirs(path.data, err);
    empq_buf_free(&path);
    if (rc != EMPQ_OK)
        return rc;
    if ((rc = write_tables(a, dir, err)) != EMPQ_OK || (rc = write_design_tables(a, dir, err)) != EMPQ_OK ||
        (rc = write_judge_tables(a, dir, err)) != EMPQ_OK)
        return rc;
    static const char *const names[3] = {"report.md", "report.html", "report.json"};
    for (int h = 0; h < 3; h++) {
        empq_buf doc_ = {0};
        rc = h == 2 ? render_json(a, &doc_) : h ? empq_analysis_render_html(a, &doc_) : empq_analysis_render_md(a, &doc_);
        if (rc == EMPQ_OK)
            rc = empq_buf_printf(&path, "%s/%s", dir, names[h]);
        if (rc != EMPQ_OK) {
            empq_buf_free(&doc_);
            empq_buf_free(&path);
            return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", names[h]);
        }
        rc = empq_write_file_atomic(path.data, doc_.data, doc_.len, err);
        empq_buf_free(&doc_);
        empq_buf_free(&path);
        if (rc != EMPQ_OK)
            return rc;
    }
    return EMPQ_OK;
}
