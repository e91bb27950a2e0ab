/* analysis.c: loading ratings and responses, and computing the report's
 * figures. Rendering is in analysis_report.c, style counting in
 * analysis_style.c. The CSV files are read with the record reader of
 * csvread.h, the one the dataset module reads the same format with. */
#include "empq/analysis.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "analysis_int.h"
#include "empq/csvread.h"
#include "empq/log.h"

/* ==================== small helpers ==================== */

/* A list of distinct strings, first-seen order, linear lookup (conditions,
 * sources, emotions: a handful each) or hashed (items). */
typedef struct strlist {
    char **s;
    size_t n, cap;
} strlist;

static long strlist_find(const strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->s[i], s) == 0)
            return (long)i;
    }
    return -1;
}

/* Index of s in l, adding it when new; -1 when out of memory. */
static long strlist_intern(strlist *l, const char *s)
{
    long i = strlist_find(l, s);
    if (i >= 0)
        return i;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **ns = realloc(l->s, nc * sizeof *ns);
        if (ns == NULL)
            return -1;
        l->s = ns;
        l->cap = nc;
    }
    char *d = empq_strdup(s);
    if (d == NULL)
        return -1;
    l->s[l->n] = d;
    return (long)l->n++;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    l->s = NULL;
    l->n = l->cap = 0;
}

/* A string -> index hash map (open addressing, FNV-1a), for units. */
typedef struct strmap {
    char **key;
    size_t *val;
    size_t cap, n;
} strmap;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static int strmap_grow(strmap *m)
{
    size_t nc = m->cap ? m->cap * 2 : 1024;
    char **nk = calloc(nc, sizeof *nk);
    size_t *nv = calloc(nc, sizeof *nv);
    if (nk == NULL || nv == NULL) {
        free(nk);
        free(nv);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->key[i] == NULL)
            continue;
        size_t j = fnv1a(m->key[i]) & (nc - 1);
        while (nk[j] != NULL)
            j = (j + 1) & (nc - 1);
        nk[j] = m->key[i];
        nv[j] = m->val[i];
    }
    free(m->key);
    free(m->val);
    m->key = nk;
    m->val = nv;
    m->cap = nc;
    return EMPQ_OK;
}

/* Sets *idx to the value of key, inserting key -> m->n when new. */
static int strmap_intern(strmap *m, const char *key, size_t *idx)
{
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m) != EMPQ_OK)
        return EMPQ_ENOMEM;
    size_t j = fnv1a(key) & (m->cap - 1);
    while (m->key[j] != NULL) {
        if (strcmp(m->key[j], key) == 0) {
            *idx = m->val[j];
            return EMPQ_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    char *d = empq_strdup(key);
    if (d == NULL)
        return EMPQ_ENOMEM;
    m->key[j] = d;
    m->val[j] = m->n;
    *idx = m->n++;
    return EMPQ_OK;
}

static void strmap_free(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->key[i]);
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

/* The sentiment of the 32 EmpatheticDialogues emotions, as labelled in the
 * Welivita-Pu release; used when a ratings file has no sentiment column. */
static const struct {
    const char *emotion;
    int sentiment;
} emotion_sentiment[] = {
    {"afraid", 0},       {"angry", 0},       {"annoyed", 0},   {"anticipating", 1}, {"anxious", 0},
    {"apprehensive", 0}, {"ashamed", 0},     {"caring", 1},    {"confident", 1},    {"content", 1},
    {"devastated", 0},   {"disappointed", 0}, {"disgusted", 0}, {"embarrassed", 0},  {"excited", 1},
    {"faithful", 1},     {"furious", 0},     {"grateful", 1},  {"guilty", 0},       {"hopeful", 1},
    {"impressed", 1},    {"jealous", 0},     {"joyful", 1},    {"lonely", 0},       {"nostalgic", 0},
    {"prepared", 1},     {"proud", 1},       {"sad", 0},       {"sentimental", 0},  {"surprised", 1},
    {"terrified", 0},    {"trusting", 1},
};

static int builtin_sentiment(const char *emotion)
{
    for (size_t i = 0; i < sizeof emotion_sentiment / sizeof emotion_sentiment[0]; i++) {
        if (strcasecmp(emotion_sentiment[i].emotion, emotion) == 0)
            return emotion_sentiment[i].sentiment;
    }
    return EMPQ_SENT_UNKNOWN;
}

static int parse_sentiment(const char *s)
{
    if (strcasecmp(s, "positive") == 0)
        return EMPQ_SENT_POSITIVE;
    if (strcasecmp(s, "negative") == 0)
        return EMPQ_SENT_NEGATIVE;
    return EMPQ_SENT_UNKNOWN;
}

/* Lower-cases s in place (ASCII) and trims surrounding blanks; returns s. */
static char *norm_label(char *s)
{
    size_t a = 0, b = strlen(s);
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    memmove(s, s + a, b - a);
    s[b - a] = '\0';
    for (char *p = s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    }
    return s;
}

/* ==================== ratings ==================== */

int empq_analysis_layout_parse(const char *name, empq_ratings_layout *out)
{
    if (name == NULL || out == NULL)
        return EMPQ_EINVAL;
    if (strcmp(name, "welivita-pu") == 0)
        *out = EMPQ_LAYOUT_WELIVITA_PU;
    else if (strcmp(name, "long") == 0)
        *out = EMPQ_LAYOUT_LONG;
    else
        return EMPQ_EINVAL;
    return EMPQ_OK;
}

void empq_ratings_free(empq_ratings **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    empq_ratings *r = *rp;
    for (size_t i = 0; i < r->n_conds; i++)
        free(r->conds[i]);
    free(r->conds);
    for (size_t i = 0; i < r->n_emotions; i++)
        free(r->emotions[i]);
    free(r->emotions);
    for (size_t i = 0; i < r->n_items; i++)
        free(r->items[i]);
    free(r->items);
    free(r->r);
    free(r);
    *rp = NULL;
}

typedef struct loader {
    const char *name;
    empq_ratings *r;
    size_t cap;
    strlist conds, emotions;
    strmap units, parts, items;
    empq_error *err;
} loader;

/* Parses a rating cell: 1..3 into *v (0 for an empty cell). */
static int parse_rating(loader *ld, size_t line, const char *col, const char *s, int *v)
{
    char tmp[32];
    size_t n = strlen(s);
    if (n >= sizeof tmp)
        n = sizeof tmp - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    norm_label(tmp);
    if (tmp[0] == '\0') {
        *v = 0;
        return EMPQ_OK;
    }
    if ((tmp[0] >= '1' && tmp[0] <= '3') && (tmp[1] == '\0' || strcmp(tmp + 1, ".0") == 0)) {
        *v = tmp[0] - '0';
        return EMPQ_OK;
    }
    return empq_error_set(ld->err, EMPQ_EPARSE, "%s:%zu: column %s: rating '%s' is not 1, 2 or 3", ld->name,
                          line, col, s);
}

static int push_rating(loader *ld, const empq_rating *x)
{
    empq_ratings *r = ld->r;
    if (r->n == ld->cap) {
        size_t nc = ld->cap ? ld->cap * 2 : 1024;
        empq_rating *nr = realloc(r->r, nc * sizeof *nr);
        if (nr == NULL)
            return empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name);
        r->r = nr;
        ld->cap = nc;
    }
    r->r[r->n++] = *x;
    return EMPQ_OK;
}

/* Emotion index (interned) of a cell, -1 for an empty one. */
static int intern_emotion(loader *ld, const char *cell, long *idx)
{
    char tmp[64];
    size_t n = strlen(cell);
    if (n >= sizeof tmp)
        n = sizeof tmp - 1;
    memcpy(tmp, cell, n);
    tmp[n] = '\0';
    norm_label(tmp);
    if (tmp[0] == '\0') {
        *idx = -1;
        return EMPQ_OK;
    }
    *idx = strlist_intern(&ld->emotions, tmp);
    return *idx < 0 ? empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name) : EMPQ_OK;
}

/* The unit of (cond, item) into x->unit, the item's index into x->item. */
static int unit_of(loader *ld, size_t cond, const char *item, empq_rating *x)
{
    size_t *unit = &x->unit;
    if (strmap_intern(&ld->items, item, &x->item) != EMPQ_OK)
        return empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name);
    empq_buf k = {0};
    if (empq_buf_printf(&k, "%zu\x1f%s", cond, item) != EMPQ_OK ||
        strmap_intern(&ld->units, k.data, unit) != EMPQ_OK) {
        empq_buf_free(&k);
        return empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name);
    }
    empq_buf_free(&k);
    return EMPQ_OK;
}

/* The rater index of a participant cell into *idx, -1 for an empty one. */
static int intern_participant(loader *ld, const char *cell, long *idx)
{
    *idx = -1;
    if (cell[0] == '\0')
        return EMPQ_OK;
    size_t pi;
    if (strmap_intern(&ld->parts, cell, &pi) != EMPQ_OK)
        return empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name);
    *idx = (long)pi;
    return EMPQ_OK;
}

static int load_welivita(loader *ld, empq_csvread *c)
{
    /* rating_<condition> columns in header order */
    long rcol[EMPQ_ANALYSIS_MAX_CONDS];
    size_t nr = 0;
    size_t n_header = empq_csvread_header_count(c);
    for (size_t i = 0; i < n_header; i++) {
        const char *h = empq_csvread_header_field(c, i);
        if (strncmp(h, "rating_", 7) == 0 && h[7] != '\0') {
            if (nr == EMPQ_ANALYSIS_MAX_CONDS)
                return empq_error_set(ld->err, EMPQ_EPARSE, "%s:1: more than %d rating_* columns", ld->name,
                                      EMPQ_ANALYSIS_MAX_CONDS);
            long ci = strlist_intern(&ld->conds, h + 7);
            if (ci < 0)
                return empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name);
            /* a second rating_X column would index past the conditions */
            if ((size_t)ci != nr)
                return empq_error_set(ld->err, EMPQ_EPARSE, "%s:1: column '%.80s' appears twice", ld->name, h);
            rcol[nr++] = (long)i;
        }
    }
    if (nr == 0)
        return empq_error_set(ld->err, EMPQ_EPARSE, "%s:1: no rating_<condition> column in the header", ld->name);
    long ecol = empq_csvread_col(c, "emotion"), scol = empq_csvread_col(c, "sentiment");
    long icol = empq_csvread_col(c, "dialog_id");
    long acol[EMPQ_ANALYSIS_MAX_CONDS]; /* annotator_<condition>: the rater of that column */
    for (size_t k = 0; k < nr; k++) {
        char an[96];
        snprintf(an, sizeof an, "annotator_%s", ld->conds.s[k]);
        acol[k] = empq_csvread_col(c, an);
    }
    int rc;
    size_t row = 0;
    while ((rc = empq_csvread_next(c, ld->err)) == 1) {
        row++;
        size_t line = empq_csvread_line(c), n = empq_csvread_count(c);
        if (n != n_header)
            return empq_error_set(ld->err, EMPQ_EPARSE, "%s:%zu: %zu fields, the header has %zu", ld->name, line,
                                  n, n_header);
        long emo = -1;
        if (ecol >= 0 && (rc = intern_emotion(ld, empq_csvread_field(c, (size_t)ecol), &emo)) != EMPQ_OK)
            return rc;
        int sent = EMPQ_SENT_UNKNOWN;
        if (scol >= 0)
            sent = parse_sentiment(empq_csvread_field(c, (size_t)scol));
        if (sent == EMPQ_SENT_UNKNOWN && emo >= 0)
            sent = builtin_sentiment(ld->emotions.s[emo]);
        char rowid[32];
        const char *item = icol >= 0 ? empq_csvread_field(c, (size_t)icol) : NULL;
        if (item == NULL || item[0] == '\0') {
            snprintf(rowid, sizeof rowid, "row %zu", row);
            item = rowid;
        }
        for (size_t k = 0; k < nr; k++) {
            int v;
            char colname[96];
            snprintf(colname, sizeof colname, "rating_%s", ld->conds.s[k]);
            if ((rc = parse_rating(ld, line, colname, empq_csvread_field(c, (size_t)rcol[k]), &v)) != EMPQ_OK)
                return rc;
            if (v == 0)
                continue;
            empq_rating x = {.cond = k, .emotion = (int)emo, .sentiment = sent, .value = v, .participant = -1};
            if ((rc = intern_participant(ld, acol[k] >= 0 ? empq_csvread_field(c, (size_t)acol[k]) : "",
                                         &x.participant)) != EMPQ_OK ||
                (rc = unit_of(ld, k, item, &x)) != EMPQ_OK || (rc = push_rating(ld, &x)) != EMPQ_OK)
                return rc;
        }
    }
    return rc;
}

static int load_long(loader *ld, empq_csvread *c)
{
    static const char *const need[] = {"participant", "condition", "item", "rating"};
    long col[4];
    for (size_t i = 0; i < 4; i++) {
        col[i] = empq_csvread_col(c, need[i]);
        if (col[i] < 0)
            return empq_error_set(ld->err, EMPQ_EPARSE, "%s:1: no '%s' column in the header", ld->name, need[i]);
    }
    long ecol = empq_csvread_col(c, "emotion"), scol = empq_csvread_col(c, "sentiment");
    long study = empq_csvread_col(c, "study_id"); /* "SIMULATED": a rating empq demo made up */
    size_t n_header = empq_csvread_header_count(c);
    int rc;
    while ((rc = empq_csvread_next(c, ld->err)) == 1) {
        size_t line = empq_csvread_line(c), n = empq_csvread_count(c);
        if (n != n_header)
            return empq_error_set(ld->err, EMPQ_EPARSE, "%s:%zu: %zu fields, the header has %zu", ld->name, line,
                                  n, n_header);
        int v;
        if ((rc = parse_rating(ld, line, "rating", empq_csvread_field(c, (size_t)col[3]), &v)) != EMPQ_OK)
            return rc;
        if (v == 0)
            continue;
        if (study >= 0 && strcmp(empq_csvread_field(c, (size_t)study), "SIMULATED") == 0)
            ld->r->n_simulated++;
        const char *cond = empq_csvread_field(c, (size_t)col[1]);
        if (cond[0] == '\0')
            return empq_error_set(ld->err, EMPQ_EPARSE, "%s:%zu: empty condition", ld->name, line);
        long ci = strlist_find(&ld->conds, cond);
        if (ci < 0) {
            if (ld->conds.n == EMPQ_ANALYSIS_MAX_CONDS)
                return empq_error_set(ld->err, EMPQ_EPARSE, "%s:%zu: more than %d conditions", ld->name, line,
                                      EMPQ_ANALYSIS_MAX_CONDS);
            ci = strlist_intern(&ld->conds, cond);
            if (ci < 0)
                return empq_error_set(ld->err, EMPQ_ENOMEM, "%s: out of memory", ld->name);
        }
        long part = -1;
        if ((rc = intern_participant(ld, empq_csvread_field(c, (size_t)col[0]), &part)) != EMPQ_OK)
            return rc;
        long emo = -1;
        if (ecol >= 0 && (rc = intern_emotion(ld, empq_csvread_field(c, (size_t)ecol), &emo)) != EMPQ_OK)
            return rc;
        int sent = EMPQ_SENT_UNKNOWN;
        if (scol >= 0)
            sent = parse_sentiment(empq_csvread_field(c, (size_t)scol));
        if (sent == EMPQ_SENT_UNKNOWN && emo >= 0)
            sent = builtin_sentiment(ld->emotions.s[emo]);
        empq_rating x = {.cond = (size_t)ci, .emotion = (int)emo, .sentiment = sent, .value = v, .participant = part};
        if ((rc = unit_of(ld, (size_t)ci, empq_csvread_field(c, (size_t)col[2]), &x)) != EMPQ_OK ||
            (rc = push_rating(ld, &x)) != EMPQ_OK)
            return rc;
    }
    return rc;
}

static int emo_sort_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int empq_ratings_parse(const char *name, const char *data, size_t len, empq_ratings_layout layout,
                       empq_ratings **out, empq_error *err)
{
    if (out == NULL || (data == NULL && len > 0))
        return empq_error_set(err, EMPQ_EINVAL, "ratings: NULL argument");
    *out = NULL;
    if (name == NULL)
        name = "ratings";
    loader ld = {.name = name, .err = err};
    ld.r = calloc(1, sizeof *ld.r);
    if (ld.r == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
    empq_csvread *c = NULL;
    int rc = empq_csvread_open_buf(name, data, len, &c, err);
    if (rc == EMPQ_OK)
        rc = empq_csvread_header(c, err);
    if (rc == EMPQ_OK)
        rc = layout == EMPQ_LAYOUT_WELIVITA_PU ? load_welivita(&ld, c) : load_long(&ld, c);
    empq_csvread_free(&c);
    empq_ratings *r = ld.r;
    r->n_units = ld.units.n;
    r->n_participants = ld.parts.n;
    /* item names by index; the map's keys move into r->items */
    r->items = calloc(ld.items.n ? ld.items.n : 1, sizeof *r->items);
    if (r->items == NULL && rc == EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
    for (size_t j = 0; r->items != NULL && j < ld.items.cap; j++) {
        if (ld.items.key[j] != NULL) {
            r->items[ld.items.val[j]] = ld.items.key[j];
            ld.items.key[j] = NULL;
        }
    }
    if (r->items != NULL)
        r->n_items = ld.items.n;
    strmap_free(&ld.items);
    strmap_free(&ld.units);
    strmap_free(&ld.parts);
    if (rc == EMPQ_OK && r->n == 0)
        rc = empq_error_set(err, EMPQ_EPARSE, "%s: no ratings", name);
    r->conds = ld.conds.s;
    r->n_conds = ld.conds.n;
    if (rc != EMPQ_OK) {
        strlist_free(&ld.emotions);
        empq_ratings_free(&r);
        return rc;
    }
    /* emotions sorted; remap the ratings' indices */
    size_t ne = ld.emotions.n;
    if (ne > 0) {
        char **sorted = malloc(ne * sizeof *sorted);
        int *map = malloc(ne * sizeof *map);
        if (sorted == NULL || map == NULL) {
            free(sorted);
            free(map);
            strlist_free(&ld.emotions);
            empq_ratings_free(&r);
            return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name);
        }
        memcpy(sorted, ld.emotions.s, ne * sizeof *sorted);
        qsort(sorted, ne, sizeof *sorted, emo_sort_cmp);
        for (size_t i = 0; i < ne; i++) {
            for (size_t j = 0; j < ne; j++) {
                if (sorted[j] == ld.emotions.s[i])
                    map[i] = (int)j;
            }
        }
        for (size_t i = 0; i < r->n; i++) {
            if (r->r[i].emotion >= 0)
                r->r[i].emotion = map[r->r[i].emotion];
        }
        free(map);
        free(ld.emotions.s);
        r->emotions = sorted;
        r->n_emotions = ne;
    }
    *out = r;
    return EMPQ_OK;
}

int empq_ratings_load(const char *path, empq_ratings_layout layout, empq_ratings **out, empq_error *err)
{
    if (out == NULL || path == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "ratings: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &data, &len, err);
    if (rc != EMPQ_OK)
        return rc;
    rc = empq_ratings_parse(path, data, len, layout, out, err);
    free(data);
    return rc;
}

/* ==================== response texts ==================== */

void empq_corpus_free(empq_corpus **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    empq_corpus *c = *cp;
    for (size_t i = 0; i < c->n_sources; i++)
        free(c->sources[i]);
    free(c->sources);
    for (size_t i = 0; i < c->n; i++) {
        free(c->text[i]);
        if (c->item != NULL)
            free(c->item[i]);
    }
    free(c->text);
    free(c->item);
    free(c->source);
    free(c);
    *cp = NULL;
}

typedef struct corpus_builder {
    empq_corpus *c;
    strlist src;
    size_t cap;
} corpus_builder;

/* Adds text of source (item: its dialogue, may be NULL). */
static int corpus_add(corpus_builder *b, const char *source, const char *text, const char *item)
{
    empq_corpus *c = b->c;
    long si = strlist_intern(&b->src, source);
    if (si < 0)
        return EMPQ_ENOMEM;
    if (c->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        char **nt = realloc(c->text, nc * sizeof *nt);
        if (nt == NULL)
            return EMPQ_ENOMEM;
        c->text = nt;
        size_t *ns = realloc(c->source, nc * sizeof *ns);
        if (ns == NULL)
            return EMPQ_ENOMEM;
        c->source = ns;
        char **ni = realloc(c->item, nc * sizeof *ni);
        if (ni == NULL)
            return EMPQ_ENOMEM;
        c->item = ni;
        b->cap = nc;
    }
    char *d = empq_strdup(text), *it = empq_strdup(item);
    if (d == NULL || (item != NULL && it == NULL)) {
        free(d);
        free(it);
        return EMPQ_ENOMEM;
    }
    c->item[c->n] = it;
    c->text[c->n] = d;
    c->source[c->n] = (size_t)si;
    c->n++;
    return EMPQ_OK;
}

/* Hands the builder's sources to its corpus; returns the corpus. */
static empq_corpus *corpus_finish(corpus_builder *b)
{
    b->c->sources = b->src.s;
    b->c->n_sources = b->src.n;
    memset(&b->src, 0, sizeof b->src);
    return b->c;
}

int empq_corpus_load_jsonl(const char *path, empq_corpus **out, empq_error *err)
{
    if (path == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "responses: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &data, &len, err);
    if (rc != EMPQ_OK)
        return rc;
    corpus_builder b = {0};
    b.c = calloc(1, sizeof *b.c);
    if (b.c == NULL) {
        free(data);
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    }
    size_t pos = 0, line = 0;
    while (rc == EMPQ_OK && pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : len;
        line++;
        size_t a = pos;
        while (a < end && (data[a] == ' ' || data[a] == '\t' || data[a] == '\r'))
            a++;
        if (a < end) {
            json_error_t je;
            json_t *o = json_loadb(data + pos, end - pos, 0, &je);
            if (o == NULL) {
                rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: invalid JSON: %s", path, line, je.text);
            } else if (!json_is_object(o)) {
                rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: not a JSON object", path, line);
            } else {
                json_t *s = json_object_get(o, "source"), *t = json_object_get(o, "response");
                if (!json_is_string(s))
                    rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: 'source' missing or not a string", path, line);
                else if (t != NULL && !json_is_null(t) && !json_is_string(t))
                    rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: 'response' is not a string", path, line);
                else if (t == NULL)
                    rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: 'response' missing", path, line);
                else if (json_is_string(t) && corpus_add(&b, json_string_value(s), json_string_value(t),
                                                         json_string_value(json_object_get(o, "prompt_id"))) != EMPQ_OK)
                    rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
            }
            json_decref(o);
        }
        pos = end + 1;
    }
    free(data);
    empq_corpus *c = corpus_finish(&b);
    if (rc != EMPQ_OK) {
        empq_corpus_free(&c);
        return rc;
    }
    *out = c;
    return EMPQ_OK;
}

int empq_corpus_load_welivita(const char *path, empq_corpus **out, empq_error *err)
{
    if (path == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "responses: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &data, &len, err);
    if (rc != EMPQ_OK)
        return rc;
    corpus_builder b = {0};
    b.c = calloc(1, sizeof *b.c);
    if (b.c == NULL) {
        free(data);
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    }
    long tcol[EMPQ_ANALYSIS_MAX_CONDS], icol = -1;
    char *tname[EMPQ_ANALYSIS_MAX_CONDS];
    size_t nt = 0, n_header = 0;
    empq_csvread *c = NULL;
    rc = empq_csvread_open_buf(path, data, len, &c, err);
    if (rc == EMPQ_OK)
        rc = empq_csvread_header(c, err);
    if (rc == EMPQ_OK) {
        n_header = empq_csvread_header_count(c);
        for (size_t i = 0; i < n_header && nt < EMPQ_ANALYSIS_MAX_CONDS; i++) {
            const char *h = empq_csvread_header_field(c, i);
            if (strncmp(h, "rating_", 7) != 0 || h[7] == '\0')
                continue;
            char want[256];
            snprintf(want, sizeof want, "response_%s", h + 7);
            long t = empq_csvread_col(c, want);
            if (t < 0)
                continue;
            tcol[nt] = t;
            tname[nt] = empq_strdup(h + 7);
            if (tname[nt] == NULL) {
                rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
                break;
            }
            nt++;
        }
        if (rc == EMPQ_OK && nt == 0)
            rc = empq_error_set(err, EMPQ_ENOTFOUND, "%s: no response_<condition> column", path);
        icol = empq_csvread_col(c, "dialog_id");
    }
    while (rc == EMPQ_OK && (rc = empq_csvread_next(c, err)) == 1) {
        rc = EMPQ_OK;
        size_t n = empq_csvread_count(c);
        if (n != n_header) {
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: %zu fields, the header has %zu", path,
                                empq_csvread_line(c), n, n_header);
            break;
        }
        for (size_t k = 0; k < nt && rc == EMPQ_OK; k++) {
            const char *t = empq_csvread_field(c, (size_t)tcol[k]);
            if (t[0] != '\0' && corpus_add(&b, tname[k], t, icol >= 0 ? empq_csvread_field(c, (size_t)icol) : NULL) !=
                                     EMPQ_OK)
                rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
        }
    }
    for (size_t k = 0; k < nt; k++)
        free(tname[k]);
    empq_csvread_free(&c);
    free(data);
    empq_corpus *cp = corpus_finish(&b);
    if (rc != EMPQ_OK) {
        empq_corpus_free(&cp);
        return rc;
    }
    *out = cp;
    return EMPQ_OK;
}

/* ==================== computing ==================== */

void empq_analysis_free(empq_analysis **ap)
{
    if (ap == NULL || *ap == NULL)
        return;
    empq_analysis *a = *ap;
    for (size_t i = 0; i < a->n_conds; i++) {
        free(a->conds[i]);
        free(a->labels[i]);
    }
    free(a->conds);
    free(a->labels);
    free(a->cond);
    free(a->pair);
    for (size_t i = 0; i < a->n_emotions; i++)
        free(a->emotions[i]);
    free(a->emotions);
    free(a->emotion_sentiment);
    free(a->emo);
    free(a->sent_test);
    for (size_t i = 0; i < a->n_sources; i++)
        free(a->sources[i]);
    free(a->sources);
    free(a->text_source);
    free(a->text_features);
    free(a->text_counts);
    free(a->style);
    x__analysis_design_free(&a->design);
    x__judge_free(&a->judge);
    free(a->ratings_name);
    free(a->responses_name);
    free(a);
    *ap = NULL;
}

static const char *welivita_label(const char *name)
{
    if (strcmp(name, "human") == 0)
        return "human";
    if (strcmp(name, "chatgpt") == 0)
        return "GPT-4 (plain prompt)";
    if (strcmp(name, "chatgpt_empathy") == 0)
        return "GPT-4 (empathy prompt)";
    return name;
}

static void cell_finish(empq_cell *c)
{
    if (c->n == 0) {
        c->share_good = c->mean = c->good_lo = c->good_hi = NAN;
        return;
    }
    c->share_good = (double)c->count[2] / (double)c->n;
    empq_stats_wilson(c->count[2], c->n, EMPQ_STATS_Z95, &c->good_lo, &c->good_hi);
    c->mean = ((double)c->count[0] + 2.0 * (double)c->count[1] + 3.0 * (double)c->count[2]) / (double)c->n;
}

static int compute_ratings(empq_analysis *a, const empq_ratings *r, empq_error *err)
{
    size_t k = a->n_conds;
    /* per condition */
    for (size_t i = 0; i < r->n; i++) {
        empq_cond_stats *cs = &a->cond[r->r[i].cond];
        cs->n++;
        cs->count[r->r[i].value - 1]++;
    }
    for (size_t c = 0; c < k; c++) {
        empq_cond_stats *cs = &a->cond[c];
        if (cs->n == 0) {
            for (int v = 0; v < 3; v++)
                cs->share[v] = cs->share_lo[v] = cs->share_hi[v] = NAN;
            cs->mean = cs->sd = NAN;
            continue;
        }
        double n = (double)cs->n, s = 0, s2 = 0;
        for (int v = 0; v < 3; v++) {
            cs->share[v] = (double)cs->count[v] / n;
            empq_stats_wilson(cs->count[v], cs->n, EMPQ_STATS_Z95, &cs->share_lo[v], &cs->share_hi[v]);
            s += (double)(v + 1) * (double)cs->count[v];
        }
        cs->mean = s / n;
        for (int v = 0; v < 3; v++)
            s2 += (double)cs->count[v] * ((double)(v + 1) - cs->mean) * ((double)(v + 1) - cs->mean);
        cs->sd = cs->n > 1 ? sqrt(s2 / (n - 1)) : NAN;
    }
    double base_good = a->cond[a->baseline].share[2];
    for (size_t c = 0; c < k; c++) {
        a->cond[c].good_increase =
            c == a->baseline || !(base_good > 0) ? NAN : (a->cond[c].share[2] - base_good) / base_good;
        a->cond[c].good_diff = c == a->baseline ? NAN : a->cond[c].share[2] - base_good;
    }

    /* chi-square over all conditions */
    double table[EMPQ_ANALYSIS_MAX_CONDS * 3];
    for (size_t c = 0; c < k; c++) {
        for (int v = 0; v < 3; v++)
            table[c * 3 + (size_t)v] = (double)a->cond[c].count[v];
    }
    int rc = empq_stats_chi2_independence(table, k, 3, &a->overall, err);
    if (rc != EMPQ_OK)
        return rc;

    /* each condition against the baseline */
    a->n_pairs = k - 1;
    a->pair = calloc(k, sizeof *a->pair);
    if (a->pair == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    double *bx = malloc(a->cond[a->baseline].n * sizeof *bx);
    double *cx = malloc(r->n * sizeof *cx);
    if (bx == NULL || cx == NULL) {
        free(bx);
        free(cx);
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    size_t nb = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->r[i].cond == a->baseline)
            bx[nb++] = r->r[i].value;
    }
    double pchi[EMPQ_ANALYSIS_MAX_CONDS], pmwu[EMPQ_ANALYSIS_MAX_CONDS];
    size_t j = 0;
    for (size_t c = 0; c < k && rc == EMPQ_OK; c++) {
        if (c == a->baseline)
            continue;
        empq_pair_stats *ps = &a->pair[j];
        ps->cond = c;
        double t2[6];
        for (int v = 0; v < 3; v++) {
            t2[v] = (double)a->cond[c].count[v];
            t2[3 + v] = (double)a->cond[a->baseline].count[v];
        }
        rc = empq_stats_chi2_independence(t2, 2, 3, &ps->chi2, err);
        size_t nc = 0;
        for (size_t i = 0; i < r->n; i++) {
            if (r->r[i].cond == c)
                cx[nc++] = r->r[i].value;
        }
        if (rc == EMPQ_OK && nc > 0 && nb > 0) {
            rc = empq_stats_mann_whitney(cx, nc, bx, nb, &ps->mwu, err);
        } else if (rc == EMPQ_OK) {
            ps->mwu.u = ps->mwu.z = ps->mwu.p = ps->mwu.sigma = NAN;
        }
        pchi[j] = ps->chi2.p;
        pmwu[j] = ps->mwu.p;
        j++;
    }
    free(bx);
    free(cx);
    if (rc != EMPQ_OK)
        return rc;
    if (empq_stats_holm(pchi, a->n_pairs, pchi) != EMPQ_OK || empq_stats_holm(pmwu, a->n_pairs, pmwu) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    for (size_t i = 0; i < a->n_pairs; i++) {
        a->pair[i].chi2_p_holm = pchi[i];
        a->pair[i].mwu_p_holm = pmwu[i];
    }

    /* per emotion */
    a->n_emotions = r->n_emotions;
    if (a->n_emotions > 0) {
        a->emotions = calloc(a->n_emotions, sizeof *a->emotions);
        a->emotion_sentiment = calloc(a->n_emotions, sizeof *a->emotion_sentiment);
        a->emo = calloc(a->n_emotions * k, sizeof *a->emo);
        if (a->emotions == NULL || a->emotion_sentiment == NULL || a->emo == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
        for (size_t e = 0; e < a->n_emotions; e++) {
            a->emotions[e] = empq_strdup(r->emotions[e]);
            if (a->emotions[e] == NULL)
                return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
            a->emotion_sentiment[e] = builtin_sentiment(r->emotions[e]);
        }
        for (size_t i = 0; i < r->n; i++) {
            const empq_rating *x = &r->r[i];
            if (x->emotion < 0)
                continue;
            empq_cell *cl = &a->emo[(size_t)x->emotion * k + x->cond];
            cl->n++;
            cl->count[x->value - 1]++;
            if (x->sentiment != EMPQ_SENT_UNKNOWN)
                a->emotion_sentiment[x->emotion] = x->sentiment;
        }
        for (size_t i = 0; i < a->n_emotions * k; i++)
            cell_finish(&a->emo[i]);
    }

    /* per sentiment, and a sentiment x rating test within each condition */
    for (size_t i = 0; i < r->n; i++) {
        const empq_rating *x = &r->r[i];
        if (x->sentiment == EMPQ_SENT_UNKNOWN)
            continue;
        a->has_sentiment = 1;
        empq_cell *cl = &a->sent[(size_t)x->sentiment * k + x->cond];
        cl->n++;
        cl->count[x->value - 1]++;
    }
    for (size_t i = 0; i < 2 * k; i++)
        cell_finish(&a->sent[i]);
    a->sent_test = calloc(k, sizeof *a->sent_test);
    if (a->sent_test == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    for (size_t c = 0; c < k && a->has_sentiment; c++) {
        double t2[6];
        for (int v = 0; v < 3; v++) {
            t2[v] = (double)a->sent[EMPQ_SENT_POSITIVE * k + c].count[v];
            t2[3 + v] = (double)a->sent[EMPQ_SENT_NEGATIVE * k + c].count[v];
        }
        if ((rc = empq_stats_chi2_independence(t2, 2, 3, &a->sent_test[c], err)) != EMPQ_OK)
            return rc;
    }

    /* agreement over units rated more than once */
    size_t *unit = malloc(r->n * sizeof *unit);
    int *val = malloc(r->n * sizeof *val);
    if (unit == NULL || val == NULL) {
        free(unit);
        free(val);
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    for (size_t i = 0; i < r->n; i++) {
        unit[i] = r->r[i].unit;
        val[i] = r->r[i].value;
    }
    rc = empq_stats_krippendorff_ordinal(unit, val, r->n, &a->alpha, err);
    free(unit);
    free(val);
    return rc;
}

static int compute_style(empq_analysis *a, const empq_corpus *cp, empq_error *err)
{
    size_t ns = cp->n_sources, nf = EMPQ_STYLE_N_FEATURES;
    a->n_sources = ns;
    a->n_texts = cp->n;
    a->sources = calloc(ns ? ns : 1, sizeof *a->sources);
    a->text_source = malloc((cp->n ? cp->n : 1) * sizeof *a->text_source);
    a->text_features = malloc((cp->n ? cp->n : 1) * nf * sizeof *a->text_features);
    a->text_counts = malloc((cp->n ? cp->n : 1) * sizeof *a->text_counts);
    a->style = calloc((ns ? ns : 1) * nf, sizeof *a->style);
    if (a->sources == NULL || a->text_source == NULL || a->text_features == NULL || a->text_counts == NULL ||
        a->style == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    for (size_t s = 0; s < ns; s++) {
        a->sources[s] = empq_strdup(cp->sources[s]);
        if (a->sources[s] == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    for (size_t i = 0; i < cp->n; i++) {
        a->text_source[i] = cp->source[i];
        empq_style_count(cp->text[i], &a->text_counts[i]);
        empq_style_features(&a->text_counts[i], a->text_features + i * nf);
    }
    /* per source and feature: a column of values, then the tests */
    size_t *cnt = calloc(ns ? ns : 1, sizeof *cnt);
    double **col = calloc(ns ? ns : 1, sizeof *col);
    if (cnt == NULL || col == NULL) {
        free(cnt);
        free(col);
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    int rc = EMPQ_OK;
    for (size_t i = 0; i < cp->n; i++)
        cnt[cp->source[i]]++;
    for (size_t s = 0; s < ns && rc == EMPQ_OK; s++) {
        col[s] = malloc((cnt[s] ? cnt[s] : 1) * sizeof **col);
        if (col[s] == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    size_t *fl = calloc(ns ? ns : 1, sizeof *fl);
    if (rc == EMPQ_OK && fl == NULL)
        rc = empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    for (size_t f = 0; f < nf && rc == EMPQ_OK; f++) {
        memset(fl, 0, (ns ? ns : 1) * sizeof *fl);
        for (size_t i = 0; i < cp->n; i++) {
            size_t s = cp->source[i];
            col[s][fl[s]++] = a->text_features[i * nf + f];
        }
        for (size_t s = 0; s < ns; s++) {
            empq_style_cell *sc = &a->style[s * nf + f];
            sc->n = cnt[s];
            sc->mean = empq_stats_mean(col[s], cnt[s]);
            sc->sd = empq_stats_sd(col[s], cnt[s]);
            sc->median = empq_stats_median(col[s], cnt[s]);
        }
        rc = empq_stats_kruskal((const double *const *)col, cnt, ns, &a->style_test[f], err);
    }
    for (size_t s = 0; s < ns; s++)
        free(col[s]);
    free(col);
    free(cnt);
    free(fl);
    return rc;
}

int empq_analysis_compute(const empq_ratings *r, const empq_corpus *corpus, const char *baseline,
                          int welivita_labels, empq_analysis **out, empq_error *err)
{
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "analysis: NULL argument");
    *out = NULL;
    if (r == NULL || r->n == 0 || r->n_conds == 0)
        return empq_error_set(err, EMPQ_EINVAL, "analysis: no ratings");
    if (r->n_conds > EMPQ_ANALYSIS_MAX_CONDS)
        return empq_error_set(err, EMPQ_EINVAL, "analysis: %zu conditions, at most %d", r->n_conds,
                              EMPQ_ANALYSIS_MAX_CONDS);
    if (baseline == NULL)
        baseline = "human";
    long b = -1;
    for (size_t c = 0; c < r->n_conds; c++) {
        if (strcmp(r->conds[c], baseline) == 0)
            b = (long)c;
    }
    if (b < 0) {
        empq_buf names = {0};
        for (size_t c = 0; c < r->n_conds; c++)
            empq_buf_printf(&names, "%s%s", c ? ", " : "", r->conds[c]);
        int rc = empq_error_set(err, EMPQ_EINVAL, "analysis: baseline '%s' is not a condition (conditions: %s)",
                                baseline, names.data ? names.data : "");
        empq_buf_free(&names);
        return rc;
    }
    empq_analysis *a = calloc(1, sizeof *a);
    if (a == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    int rc = EMPQ_OK;
    a->n_conds = r->n_conds;
    a->baseline = (size_t)b;
    a->n_ratings = r->n;
    a->n_simulated = r->n_simulated;
    a->conds = calloc(r->n_conds, sizeof *a->conds);
    a->labels = calloc(r->n_conds, sizeof *a->labels);
    a->cond = calloc(r->n_conds, sizeof *a->cond);
    if (a->conds == NULL || a->labels == NULL || a->cond == NULL) {
        a->n_conds = 0;
        rc = empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    for (size_t c = 0; c < a->n_conds && rc == EMPQ_OK; c++) {
        a->conds[c] = empq_strdup(r->conds[c]);
        a->labels[c] = empq_strdup(welivita_labels ? welivita_label(r->conds[c]) : r->conds[c]);
        if (a->conds[c] == NULL || a->labels[c] == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "analysis: out of memory");
    }
    if (rc == EMPQ_OK)
        rc = compute_ratings(a, r, err);
    if (rc == EMPQ_OK && corpus != NULL)
        rc = compute_style(a, corpus, err);
    if (rc == EMPQ_OK)
        rc = x__analysis_design(a, r, err);
    if (rc == EMPQ_OK && corpus != NULL)
        rc = x__analysis_style_paired(a, corpus, err);
    if (rc != EMPQ_OK) {
        empq_analysis_free(&a);
        return rc;
    }
    *out = a;
    return EMPQ_OK;
}
