/* dataset.c: emotions, loading (format dispatch, JSONL), writing JSONL,
 * selection. The CSV formats are in dataset_csv.c, the synthetic generator
 * in dataset_synth.c. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dataset_int.h"
#include "empq/log.h"
#include "empq/util.h"

/* ==================== emotions ==================== */

static const char *const emotions[EMPQ_N_EMOTIONS] = {
    "afraid",    "angry",       "annoyed",    "anticipating", "anxious",   "apprehensive",
    "ashamed",   "caring",      "confident",  "content",      "devastated", "disappointed",
    "disgusted", "embarrassed", "excited",    "faithful",     "furious",   "grateful",
    "guilty",    "hopeful",     "impressed",  "jealous",      "joyful",    "lonely",
    "nostalgic", "prepared",    "proud",      "sad",          "sentimental", "surprised",
    "terrified", "trusting"};

/* Index of the label given as len bytes (case-insensitive), or -1. */
static int emotion_index_n(const char *label, size_t len)
{
    for (int i = 0; i < EMPQ_N_EMOTIONS; i++) {
        if (strlen(emotions[i]) == len && strncasecmp(emotions[i], label, len) == 0)
            return i;
    }
    return -1;
}

int empq_emotion_index(const char *label)
{
    if (label == NULL)
        return -1;
    return emotion_index_n(label, strlen(label));
}

const char *empq_emotion_name(int i)
{
    if (i < 0 || i >= EMPQ_N_EMOTIONS)
        return NULL;
    return emotions[i];
}

/* ==================== building a dataset ==================== */

char *empq_dataset__strndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

int empq_dataset__emotion(const char *path, size_t line, const char *label, size_t len, char **out,
                          empq_error *err)
{
    *out = NULL;
    int e = emotion_index_n(label, len);
    if (e < 0)
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: unknown emotion label '%.*s'", path, line,
                              (int)(len > 80 ? 80 : len), label);
    *out = empq_strdup(emotions[e]);
    if (*out == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
    return EMPQ_OK;
}

int empq_dataset__push(empq_dataset *ds, size_t *cap, empq_dialogue *d)
{
    if (ds->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        empq_dialogue *p = realloc(ds->items, ncap * sizeof *p);
        if (p == NULL)
            return EMPQ_ENOMEM;
        ds->items = p;
        *cap = ncap;
    }
    ds->items[ds->n++] = *d;
    memset(d, 0, sizeof *d);
    return EMPQ_OK;
}

void empq_dataset__dialogue_clear(empq_dialogue *d)
{
    if (d == NULL)
        return;
    free(d->id);
    free(d->emotion);
    free(d->sentiment);
    free(d->situation);
    free(d->prompt);
    free(d->human);
    memset(d, 0, sizeof *d);
}

void empq_dataset_free(empq_dataset **ds)
{
    if (ds == NULL || *ds == NULL)
        return;
    for (size_t i = 0; i < (*ds)->n; i++)
        empq_dataset__dialogue_clear(&(*ds)->items[i]);
    free((*ds)->items);
    free(*ds);
    *ds = NULL;
}

/* ==================== JSONL ==================== */

/* Copies the string member key of o into *out. Absent or null: *out NULL
 * (an error when required). */
static int jsonl_member(const char *path, size_t line, json_t *o, const char *key, int required,
                        char **out, empq_error *err)
{
    *out = NULL;
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: missing \"%s\"", path, line, key);
        return EMPQ_OK;
    }
    if (!json_is_string(v))
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: \"%s\" is not a string", path, line, key);
    *out = empq_dataset__strndup(json_string_value(v), json_string_length(v));
    if (*out == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
    return EMPQ_OK;
}

static int jsonl_record(const char *path, size_t line, const char *s, size_t n, empq_dataset *ds,
                        size_t *cap, empq_error *err)
{
    json_error_t jerr;
    json_t *o = json_loadb(s, n, 0, &jerr);
    if (o == NULL)
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: invalid JSON: %s (column %d)", path, line,
                              jerr.text, jerr.column);
    empq_dialogue d = {0};
    d.line = line;
    int rc = EMPQ_OK;
    if (!json_is_object(o))
        rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: not a JSON object", path, line);
    char *label = NULL;
    if (rc == EMPQ_OK)
        rc = jsonl_member(path, line, o, "id", 1, &d.id, err);
    if (rc == EMPQ_OK && d.id[0] == '\0')
        rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: empty \"id\"", path, line);
    if (rc == EMPQ_OK)
        rc = jsonl_member(path, line, o, "emotion", 1, &label, err);
    if (rc == EMPQ_OK)
        rc = empq_dataset__emotion(path, line, label, strlen(label), &d.emotion, err);
    if (rc == EMPQ_OK)
        rc = jsonl_member(path, line, o, "prompt", 1, &d.prompt, err);
    if (rc == EMPQ_OK)
        rc = jsonl_member(path, line, o, "situation", 0, &d.situation, err);
    if (rc == EMPQ_OK && d.situation == NULL) {
        d.situation = empq_strdup("");
        if (d.situation == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
    }
    if (rc == EMPQ_OK)
        rc = jsonl_member(path, line, o, "human", 0, &d.human, err);
    if (rc == EMPQ_OK)
        rc = jsonl_member(path, line, o, "sentiment", 0, &d.sentiment, err);
    if (rc == EMPQ_OK && empq_dataset__push(ds, cap, &d) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
    free(label);
    empq_dataset__dialogue_clear(&d);
    json_decref(o);
    return rc;
}

static int parse_jsonl(const char *path, const char *data, size_t len, empq_dataset *ds, empq_error *err)
{
    size_t cap = ds->n, line = 0, pos = 0;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : len;
        const char *s = data + pos;
        size_t n = end - pos;
        pos = nl != NULL ? end + 1 : len;
        line++;
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
            i++;
        if (i == n)
            continue; /* blank line */
        int rc = jsonl_record(path, line, s, n, ds, &cap, err);
        if (rc != EMPQ_OK)
            return rc;
    }
    return EMPQ_OK;
}

int empq_dataset_write_jsonl(const empq_dataset *ds, const char *path, empq_error *err)
{
    if (ds == NULL || path == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "empq_dataset_write_jsonl: NULL argument");
    empq_buf out = {0};
    int rc = EMPQ_OK;
    for (size_t i = 0; i < ds->n && rc == EMPQ_OK; i++) {
        const empq_dialogue *d = &ds->items[i];
        const char *keys[6] = {"id", "emotion", "sentiment", "situation", "prompt", "human"};
        const char *vals[6] = {d->id, d->emotion, d->sentiment, d->situation ? d->situation : "",
                               d->prompt, d->human};
        json_t *o = json_object();
        if (o == NULL) {
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
            break;
        }
        for (int k = 0; k < 6 && rc == EMPQ_OK; k++) {
            if (vals[k] == NULL) {
                if (k == 2 || k == 5) /* sentiment, human: optional */
                    continue;
                rc = empq_error_set(err, EMPQ_EINVAL, "%s: item %zu has no %s", path, i, keys[k]);
                break;
            }
            json_t *v = json_string(vals[k]);
            if (v == NULL) {
                rc = empq_error_set(err, EMPQ_EINVAL, "%s: item %zu ('%.80s'): %s is not valid UTF-8",
                                    path, i, d->id ? d->id : "", keys[k]);
                break;
            }
            if (json_object_set_new(o, keys[k], v) != 0)
                rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
        }
        char *text = rc == EMPQ_OK ? json_dumps(o, JSON_COMPACT) : NULL;
        if (rc == EMPQ_OK && text == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
        if (rc == EMPQ_OK &&
            (empq_buf_append(&out, text, strlen(text)) != EMPQ_OK || empq_buf_append(&out, "\n", 1) != EMPQ_OK))
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
        free(text);
        json_decref(o);
    }
    if (rc == EMPQ_OK)
        rc = empq_write_file_atomic(path, out.data ? out.data : "", out.len, err);
    empq_buf_free(&out);
    return rc;
}

/* ==================== loading ==================== */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int starts_with(const char *s, size_t len, const char *prefix)
{
    size_t m = strlen(prefix);
    return len >= m && memcmp(s, prefix, m) == 0;
}

/* Orders items by id, then line (a qsort comparator over item pointers). */
static int cmp_id_line(const void *a, const void *b)
{
    const empq_dialogue *x = *(const empq_dialogue *const *)a, *y = *(const empq_dialogue *const *)b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Fails on the first repeated id (by line), naming both lines. */
static int check_unique_ids(const char *path, const empq_dataset *ds, empq_error *err)
{
    if (ds->n < 2)
        return EMPQ_OK;
    const empq_dialogue **v = malloc(ds->n * sizeof *v);
    if (v == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < ds->n; i++)
        v[i] = &ds->items[i];
    qsort(v, ds->n, sizeof *v, cmp_id_line);
    const empq_dialogue *dup = NULL, *first = NULL;
    for (size_t i = 1; i < ds->n; i++) {
        if (strcmp(v[i - 1]->id, v[i]->id) == 0 && (dup == NULL || v[i]->line < dup->line)) {
            dup = v[i];
            first = v[i - 1];
        }
    }
    int rc = EMPQ_OK;
    if (dup != NULL)
        rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: duplicate id '%.80s' (also on line %zu)", path,
                            dup->line, dup->id, first->line);
    free(v);
    return rc;
}

/* Every format's text must be UTF-8 as it stands: the whole file is
 * checked before any parser sees it, so nothing downstream (cache keys,
 * request bodies, responses.jsonl) ever meets a byte it would refuse or
 * rewrite. Fails naming the line (counted by LF from 1) and the byte
 * column within it (from 1). */
static int check_utf8(const char *path, const char *data, size_t len, empq_error *err)
{
    size_t at = empq_utf8_invalid_at(data, len);
    if (at == len)
        return EMPQ_OK;
    size_t line = 1, line_start = 0;
    for (size_t i = 0; i < at; i++) {
        if (data[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    char bytes[16] = "";
    size_t shown = len - at < 4 ? len - at : 4, o = 0;
    for (size_t i = 0; i < shown; i++)
        o += (size_t)snprintf(bytes + o, sizeof bytes - o, "%s%02X", i > 0 ? " " : "",
                              (unsigned)(unsigned char)data[at + i]);
    return empq_error_set(err, EMPQ_EPARSE,
                          "%s:%zu: not valid UTF-8 at byte %zu of the line (bytes counted from 1; "
                          "there: %s); the dataset must be UTF-8",
                          path, line, at - line_start + 1, bytes);
}

int empq_dataset_load(const char *path, const char *format, empq_dataset **out, empq_error *err)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "empq_dataset_load: NULL argument");
    int auto_detect = format == NULL || strcmp(format, "auto") == 0;
    enum { F_WP, F_ED, F_JSONL } f = F_WP;
    if (auto_detect) {
        if (ends_with(path, ".jsonl"))
            f = F_JSONL;
    } else if (strcmp(format, "welivita-pu") == 0) {
        f = F_WP;
    } else if (strcmp(format, "empatheticdialogues") == 0) {
        f = F_ED;
    } else if (strcmp(format, "jsonl") == 0) {
        f = F_JSONL;
    } else {
        return empq_error_set(err, EMPQ_EINVAL,
                              "%s: unknown dataset format '%.60s' (welivita-pu, empatheticdialogues, "
                              "jsonl or auto)",
                              path, format);
    }

    char *data = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &data, &len, err);
    if (rc != EMPQ_OK)
        return rc;
    if (auto_detect && f != F_JSONL) {
        const char *s = data;
        size_t n = len;
        if (starts_with(s, n, "\xEF\xBB\xBF")) {
            s += 3;
            n -= 3;
        }
        if (starts_with(s, n, "part_no,") || starts_with(s, n, "\"part_no\","))
            f = F_WP;
        else if (starts_with(s, n, "conv_id,utterance_idx"))
            f = F_ED;
        else {
            free(data);
            return empq_error_set(err, EMPQ_EPARSE,
                                  "%s:1: cannot detect the dataset format (expected a header starting "
                                  "with part_no or conv_id,utterance_idx, or a .jsonl name)",
                                  path);
        }
    }

    rc = check_utf8(path, data, len, err);
    if (rc != EMPQ_OK) {
        free(data);
        return rc;
    }
    empq_dataset *ds = calloc(1, sizeof *ds);
    if (ds == NULL) {
        free(data);
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
    }
    if (f == F_WP)
        rc = empq_dataset__parse_welivita(path, data, len, ds, err);
    else if (f == F_ED)
        rc = empq_dataset__parse_ed(path, data, len, ds, err);
    else
        rc = parse_jsonl(path, data, len, ds, err);
    free(data);
    if (rc == EMPQ_OK && ds->n == 0)
        rc = empq_error_set(err, EMPQ_EPARSE, "%s: no dialogues in the file (a header with no rows, or no records)",
                            path);
    if (rc == EMPQ_OK)
        rc = check_unique_ids(path, ds, err);
    if (rc != EMPQ_OK) {
        empq_dataset_free(&ds);
        return rc;
    }
    static const char *const names[] = {"welivita-pu", "empatheticdialogues", "jsonl"};
    EMPQ_DEBUG("event=dataset_loaded path=%s format=%s items=%zu", path, names[f], ds->n);
    *out = ds;
    return EMPQ_OK;
}

/* ==================== selection ==================== */

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Moves a uniform random choice of k of the n values of v to v[0..k). */
static void partial_shuffle(size_t *v, size_t n, size_t k, empq_rng *rng)
{
    for (size_t i = 0; i < k && i + 1 < n; i++) {
        size_t j = i + (size_t)empq_rng_below(rng, n - i);
        size_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Per-emotion counts and quotas while balancing. */
typedef struct sel_group {
    int emotion;
    size_t avail;
    size_t quota;
} sel_group;

static int cmp_group_avail(const void *a, const void *b)
{
    const sel_group *x = a, *y = b;
    if (x->avail != y->avail)
        return x->avail < y->avail ? -1 : 1;
    return x->emotion - y->emotion;
}

static int cmp_group_emotion(const void *a, const void *b)
{
    return ((const sel_group *)a)->emotion - ((const sel_group *)b)->emotion;
}

/* Fills the balanced choice of n indices (n < ds->n) into out. */
static int select_balanced(const empq_dataset *ds, size_t n, empq_rng *rng, size_t *out, empq_error *err)
{
    /* Bucket the items by emotion: by_emo[start[e] .. start[e] + avail[e]). */
    size_t avail[EMPQ_N_EMOTIONS] = {0}, start[EMPQ_N_EMOTIONS], fill[EMPQ_N_EMOTIONS];
    unsigned char *emo = malloc(ds->n);
    size_t *by_emo = malloc(ds->n * sizeof *by_emo);
    if (emo == NULL || by_emo == NULL) {
        free(emo);
        free(by_emo);
        return empq_error_set(err, EMPQ_ENOMEM, "dataset selection: out of memory");
    }
    for (size_t i = 0; i < ds->n; i++) {
        int e = empq_emotion_index(ds->items[i].emotion);
        if (e < 0) {
            free(emo);
            free(by_emo);
            return empq_error_set(err, EMPQ_EINVAL, "dataset item %zu ('%.80s'): unknown emotion '%.80s'",
                                  i, ds->items[i].id ? ds->items[i].id : "",
                                  ds->items[i].emotion ? ds->items[i].emotion : "(null)");
        }
        emo[i] = (unsigned char)e;
        avail[e]++;
    }
    size_t at = 0;
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++) {
        start[e] = fill[e] = at;
        at += avail[e];
    }
    for (size_t i = 0; i < ds->n; i++)
        by_emo[fill[emo[i]]++] = i;
    free(emo);

    sel_group g[EMPQ_N_EMOTIONS];
    size_t k = 0;
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++) {
        if (avail[e] > 0)
            g[k++] = (sel_group){e, avail[e], 0};
    }

    /* Water filling: the scarcest emotions first; one that cannot fill its
     * share gives all it has and the rest share what is left. */
    qsort(g, k, sizeof *g, cmp_group_avail);
    size_t left = n, first_open = 0;
    while (first_open < k && g[first_open].avail <= left / (k - first_open)) {
        g[first_open].quota = g[first_open].avail;
        left -= g[first_open].avail;
        first_open++;
    }
    size_t open = k - first_open;
    if (open > 0) {
        /* Every open emotion has more than base items, so any can take one
         * more; the seeded PRNG picks which, from the open emotions listed
         * in emotion order. */
        qsort(g + first_open, open, sizeof *g, cmp_group_emotion);
        size_t base = left / open, extra = left % open;
        size_t order[EMPQ_N_EMOTIONS];
        for (size_t i = 0; i < open; i++) {
            order[i] = first_open + i;
            g[first_open + i].quota = base;
        }
        partial_shuffle(order, open, extra, rng);
        for (size_t i = 0; i < extra; i++)
            g[order[i]].quota++;
    }

    /* Draw each emotion's items, in emotion order. */
    qsort(g, k, sizeof *g, cmp_group_emotion);
    size_t got = 0;
    for (size_t gi = 0; gi < k; gi++) {
        size_t *pool = by_emo + start[g[gi].emotion];
        partial_shuffle(pool, g[gi].avail, g[gi].quota, rng);
        memcpy(out + got, pool, g[gi].quota * sizeof *pool);
        got += g[gi].quota;
    }
    free(by_emo);
    return EMPQ_OK;
}

int empq_dataset_select(const empq_dataset *ds, size_t n, uint64_t seed, int balance, size_t **idx,
                        size_t *n_out, empq_error *err)
{
    if (idx != NULL)
        *idx = NULL;
    if (n_out != NULL)
        *n_out = 0;
    if (ds == NULL || idx == NULL || n_out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "empq_dataset_select: NULL argument");
    if (n == 0 || n >= ds->n)
        n = ds->n;
    size_t *v = malloc((ds->n > 0 ? ds->n : 1) * sizeof *v);
    if (v == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "dataset selection: out of memory");
    empq_rng rng;
    empq_rng_seed(&rng, seed);
    int rc = EMPQ_OK;
    if (n == ds->n) {
        for (size_t i = 0; i < n; i++)
            v[i] = i;
    } else if (balance) {
        rc = select_balanced(ds, n, &rng, v, err);
    } else {
        for (size_t i = 0; i < ds->n; i++)
            v[i] = i;
        partial_shuffle(v, ds->n, n, &rng);
    }
    if (rc != EMPQ_OK) {
        free(v);
        return rc;
    }
    qsort(v, n, sizeof *v, cmp_size);
    *idx = v;
    *n_out = n;
    return EMPQ_OK;
}
