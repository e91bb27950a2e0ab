/* dataset_csv.c: the two CSV dataset formats.
 *
 * welivita-pu is RFC 4180 and is read with the record reader of csvread.h
 * (libcsv in strict mode), which gives every record and error its line
 * number. empatheticdialogues has no quoting at all (a ',' inside text is
 * written `_comma_`), so it is split on ',' here. */
#include <stdlib.h>
#include <string.h>

#include "dataset_int.h"
#include "empq/csvread.h"
#include "empq/util.h"

/* ==================== welivita-pu (RFC 4180) ==================== */

/* The columns a Welivita-Pu file must have, found by name in the header. */
enum { COL_ID, COL_EMOTION, COL_SENTIMENT, COL_SITUATION, COL_PROMPT, COL_HUMAN, N_COLS };
static const char *const wp_columns[N_COLS] = {"dialog_id", "emotion",      "sentiment",
                                               "situation", "speaker_uttr", "response_human"};

/* Copies field col of the current record; NULL into *out when empty and
 * empty_is_null. */
static int wp_copy(empq_csvread *r, const char *path, size_t col, int empty_is_null, char **out,
                   empq_error *err)
{
    const char *s = empq_csvread_field(r, col);
    *out = NULL;
    if (s[0] == '\0' && empty_is_null)
        return EMPQ_OK;
    *out = empq_strdup(s);
    if (*out == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, empq_csvread_line(r));
    return EMPQ_OK;
}

/* The current record (line: where it starts) as a dialogue appended to ds. */
static int wp_record(empq_csvread *r, const char *path, const size_t col[N_COLS], empq_dataset *ds,
                     size_t *cap, empq_error *err)
{
    size_t line = empq_csvread_line(r), n = empq_csvread_count(r), n_header = empq_csvread_header_count(r);
    if (n != n_header)
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: expected %zu fields, found %zu", path, line, n_header, n);
    if (empq_csvread_field(r, col[COL_ID])[0] == '\0')
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: empty dialog_id", path, line);
    if (empq_csvread_field(r, col[COL_PROMPT])[0] == '\0')
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: empty speaker_uttr", path, line);
    empq_dialogue d = {0};
    d.line = line;
    const char *label = empq_csvread_field(r, col[COL_EMOTION]);
    int rc = empq_dataset__emotion(path, line, label, strlen(label), &d.emotion, err);
    if (rc == EMPQ_OK)
        rc = wp_copy(r, path, col[COL_ID], 0, &d.id, err);
    if (rc == EMPQ_OK)
        rc = wp_copy(r, path, col[COL_SENTIMENT], 1, &d.sentiment, err);
    if (rc == EMPQ_OK)
        rc = wp_copy(r, path, col[COL_SITUATION], 0, &d.situation, err);
    if (rc == EMPQ_OK)
        rc = wp_copy(r, path, col[COL_PROMPT], 0, &d.prompt, err);
    if (rc == EMPQ_OK)
        rc = wp_copy(r, path, col[COL_HUMAN], 1, &d.human, err);
    if (rc == EMPQ_OK && empq_dataset__push(ds, cap, &d) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
    empq_dataset__dialogue_clear(&d);
    return rc;
}

int empq_dataset__parse_welivita(const char *path, const char *data, size_t len, empq_dataset *ds,
                                 empq_error *err)
{
    empq_csvread *r = NULL;
    int rc = empq_csvread_open_buf(path, data, len, &r, err);
    if (rc == EMPQ_OK)
        rc = empq_csvread_header(r, err);
    size_t col[N_COLS];
    for (int c = 0; c < N_COLS && rc == EMPQ_OK; c++) {
        long i = empq_csvread_col(r, wp_columns[c]);
        if (i < 0)
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: header has no column '%s'", path,
                                empq_csvread_line(r), wp_columns[c]);
        col[c] = (size_t)i;
    }
    size_t cap = ds->n;
    while (rc == EMPQ_OK && (rc = empq_csvread_next(r, err)) == 1)
        rc = wp_record(r, path, col, ds, &cap, err);
    empq_csvread_free(&r);
    return rc;
}

/* ==================== empatheticdialogues (no quoting) ==================== */

#define ED_MAX_FIELDS 9

/* ED's header, in order; the first six are the ones used. */
static const char *const ed_columns[8] = {"conv_id",     "utterance_idx", "context",  "prompt",
                                          "speaker_idx", "utterance",     "selfeval", "tags"};
enum { ED_CONV, ED_IDX, ED_CONTEXT, ED_PROMPT, ED_SPEAKER, ED_UTTER };

typedef struct ed_span {
    const char *s;
    size_t len;
} ed_span;

/* Splits line (len bytes) on ','. Returns the field count (which may be
 * more than max; only the first max spans are filled). */
static size_t ed_split(const char *line, size_t len, ed_span *f, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || line[i] == ',') {
            if (n < max)
                f[n] = (ed_span){line + start, i - start};
            n++;
            start = i + 1;
        }
    }
    return n;
}

/* A new string with every `_comma_` of the span replaced by ','. */
static char *ed_decode(ed_span f)
{
    static const char tok[] = "_comma_";
    const size_t tl = sizeof tok - 1;
    char *out = malloc(f.len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < f.len;) {
        if (f.len - i >= tl && memcmp(f.s + i, tok, tl) == 0) {
            out[o++] = ',';
            i += tl;
        } else {
            out[o++] = f.s[i++];
        }
    }
    out[o] = '\0';
    return out;
}

static int ed_span_eq(ed_span f, const char *s)
{
    return f.len == strlen(s) && memcmp(f.s, s, f.len) == 0;
}

/* Ends the conversation in *d: appends it to ds, or fails when it has no
 * first turn. */
static int ed_finish(const char *path, empq_dialogue *d, empq_dataset *ds, size_t *cap, empq_error *err)
{
    if (d->id == NULL)
        return EMPQ_OK;
    if (d->prompt == NULL)
        return empq_error_set(err, EMPQ_EPARSE, "%s:%zu: conversation '%.80s' has no utterance_idx 1",
                              path, d->line, d->id);
    if (empq_dataset__push(ds, cap, d) != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, d->line);
    return EMPQ_OK;
}

int empq_dataset__parse_ed(const char *path, const char *data, size_t len, empq_dataset *ds,
                           empq_error *err)
{
    size_t cap = ds->n, line = 0, pos = 0;
    int rc = EMPQ_OK, header = 0;
    empq_dialogue d = {0};
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len && rc == EMPQ_OK) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) : len;
        const char *s = data + pos;
        size_t n = end - pos;
        pos = nl != NULL ? end + 1 : len;
        line++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        ed_span f[ED_MAX_FIELDS];
        size_t nf = ed_split(s, n, f, ED_MAX_FIELDS);
        if (nf != 8 && nf != 9) {
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: expected 8 or 9 fields, found %zu", path,
                                line, nf);
            break;
        }
        if (!header) {
            for (size_t i = 0; i < 8; i++) {
                if (!ed_span_eq(f[i], ed_columns[i])) {
                    rc = empq_error_set(err, EMPQ_EPARSE,
                                        "%s:%zu: not an EmpatheticDialogues header (column %zu is not '%s')",
                                        path, line, i + 1, ed_columns[i]);
                    break;
                }
            }
            header = 1;
            continue;
        }
        if (f[ED_CONV].len == 0) {
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: empty conv_id", path, line);
            break;
        }
        char idx_text[24];
        unsigned long idx = 0;
        int idx_ok = f[ED_IDX].len > 0 && f[ED_IDX].len < sizeof idx_text;
        if (idx_ok) {
            memcpy(idx_text, f[ED_IDX].s, f[ED_IDX].len);
            idx_text[f[ED_IDX].len] = '\0';
            char *e = NULL;
            idx = strtoul(idx_text, &e, 10);
            idx_ok = *e == '\0' && idx >= 1 && idx_text[0] >= '0' && idx_text[0] <= '9';
        }
        if (!idx_ok) {
            rc = empq_error_set(err, EMPQ_EPARSE, "%s:%zu: bad utterance_idx '%.*s'", path, line,
                                (int)(f[ED_IDX].len > 40 ? 40 : f[ED_IDX].len), f[ED_IDX].s);
            break;
        }
        if (d.id == NULL || !ed_span_eq(f[ED_CONV], d.id)) {
            /* A new conversation starts on this line. */
            rc = ed_finish(path, &d, ds, &cap, err);
            empq_dataset__dialogue_clear(&d);
            if (rc != EMPQ_OK)
                break;
            d.line = line;
            rc = empq_dataset__emotion(path, line, f[ED_CONTEXT].s, f[ED_CONTEXT].len, &d.emotion, err);
            if (rc != EMPQ_OK)
                break;
            d.id = empq_dataset__strndup(f[ED_CONV].s, f[ED_CONV].len);
            d.situation = ed_decode(f[ED_PROMPT]);
            if (d.id == NULL || d.situation == NULL) {
                rc = empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
                break;
            }
        }
        char **turn = idx == 1 ? &d.prompt : idx == 2 ? &d.human : NULL;
        if (turn != NULL && *turn == NULL) { /* a repeated turn keeps the first */
            *turn = ed_decode(f[ED_UTTER]);
            if (*turn == NULL) {
                rc = empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", path, line);
                break;
            }
        }
    }
    if (rc == EMPQ_OK && !header)
        rc = empq_error_set(err, EMPQ_EPARSE, "%s:1: no header line", path);
    if (rc == EMPQ_OK)
        rc = ed_finish(path, &d, ds, &cap, err);
    empq_dataset__dialogue_clear(&d);
    return rc;
}
