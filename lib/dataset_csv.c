/* dataset_csv.c: the two CSV dataset formats.
 *
 * welivita-pu is RFC 4180 and is parsed with libcsv in strict mode, fed one
 * physical line at a time so that every record, field and error can be
 * given its line number. empatheticdialogues has no quoting at all (a ','
 * inside text is written `_comma_`), so it is split on ',' here. */
#include <csv.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_int.h"
#include "empq/util.h"

/* ==================== welivita-pu (RFC 4180, libcsv) ==================== */

/* The columns a Welivita-Pu file must have, found by name in the header. */
enum { COL_ID, COL_EMOTION, COL_SENTIMENT, COL_SITUATION, COL_PROMPT, COL_HUMAN, N_COLS };
static const char *const wp_columns[N_COLS] = {"dialog_id", "emotion",      "sentiment",
                                               "situation", "speaker_uttr", "response_human"};

/* Parser state shared with libcsv's callbacks. */
typedef struct wp_state {
    const char *path;
    size_t line;       /* physical line being fed to libcsv */
    size_t rec_line;   /* line where the current record started */
    size_t field_line; /* line where the current field started */
    int in_record;     /* a record has started and not yet ended */
    empq_buf rec;      /* the current record's fields, each NUL-terminated */
    size_t *offs;      /* start of field i in rec.data */
    size_t n_fields, cap_fields;
    size_t n_header; /* fields in the header; 0 until the header is read */
    size_t col[N_COLS];
    empq_dataset *ds;
    size_t cap;
    int rc; /* first error; callbacks do nothing once it is set */
    empq_error *err;
} wp_state;

static const char *wp_field(const wp_state *st, size_t i)
{
    return st->rec.data + st->offs[i];
}

static int wp_header(wp_state *st)
{
    for (int c = 0; c < N_COLS; c++) {
        size_t i;
        for (i = 0; i < st->n_fields; i++) {
            if (strcmp(wp_field(st, i), wp_columns[c]) == 0)
                break;
        }
        if (i == st->n_fields)
            return empq_error_set(st->err, EMPQ_EPARSE, "%s:%zu: header has no column '%s'", st->path,
                                  st->rec_line, wp_columns[c]);
        st->col[c] = i;
    }
    st->n_header = st->n_fields;
    return EMPQ_OK;
}

/* Copies field c of the current record; NULL into *out when empty and
 * empty_is_null. */
static int wp_copy(wp_state *st, int c, int empty_is_null, char **out)
{
    const char *s = wp_field(st, st->col[c]);
    *out = NULL;
    if (s[0] == '\0' && empty_is_null)
        return EMPQ_OK;
    *out = empq_strdup(s);
    if (*out == NULL)
        return empq_error_set(st->err, EMPQ_ENOMEM, "%s:%zu: out of memory", st->path, st->rec_line);
    return EMPQ_OK;
}

static int wp_record(wp_state *st)
{
    if (st->n_header == 0)
        return wp_header(st);
    if (st->n_fields != st->n_header)
        return empq_error_set(st->err, EMPQ_EPARSE, "%s:%zu: expected %zu fields, found %zu", st->path,
                              st->rec_line, st->n_header, st->n_fields);
    const char *id = wp_field(st, st->col[COL_ID]);
    if (id[0] == '\0')
        return empq_error_set(st->err, EMPQ_EPARSE, "%s:%zu: empty dialog_id", st->path, st->rec_line);
    if (wp_field(st, st->col[COL_PROMPT])[0] == '\0')
        return empq_error_set(st->err, EMPQ_EPARSE, "%s:%zu: empty speaker_uttr", st->path,
                              st->rec_line);
    empq_dialogue d = {0};
    d.line = st->rec_line;
    const char *label = wp_field(st, st->col[COL_EMOTION]);
    int rc = empq_dataset__emotion(st->path, st->rec_line, label, strlen(label), &d.emotion, st->err);
    if (rc == EMPQ_OK)
        rc = wp_copy(st, COL_ID, 0, &d.id);
    if (rc == EMPQ_OK)
        rc = wp_copy(st, COL_SENTIMENT, 1, &d.sentiment);
    if (rc == EMPQ_OK)
        rc = wp_copy(st, COL_SITUATION, 0, &d.situation);
    if (rc == EMPQ_OK)
        rc = wp_copy(st, COL_PROMPT, 0, &d.prompt);
    if (rc == EMPQ_OK)
        rc = wp_copy(st, COL_HUMAN, 1, &d.human);
    if (rc == EMPQ_OK && empq_dataset__push(st->ds, &st->cap, &d) != EMPQ_OK)
        rc = empq_error_set(st->err, EMPQ_ENOMEM, "%s:%zu: out of memory", st->path, st->rec_line);
    empq_dataset__dialogue_clear(&d);
    return rc;
}

/* libcsv: end of a field. data is not NUL-terminated (and is NULL for an
 * empty field before libcsv has allocated its buffer). */
static void wp_on_field(void *data, size_t len, void *arg)
{
    wp_state *st = arg;
    if (st->rc != EMPQ_OK)
        return;
    if (!st->in_record) { /* a record that began after a bare CR on this line */
        st->in_record = 1;
        st->rec_line = st->line;
    }
    if (st->n_fields == st->cap_fields) {
        size_t cap = st->cap_fields ? st->cap_fields * 2 : 32;
        size_t *p = realloc(st->offs, cap * sizeof *p);
        if (p == NULL) {
            st->rc = empq_error_set(st->err, EMPQ_ENOMEM, "%s:%zu: out of memory", st->path, st->line);
            return;
        }
        st->offs = p;
        st->cap_fields = cap;
    }
    st->offs[st->n_fields++] = st->rec.len;
    if ((len > 0 && empq_buf_append(&st->rec, data, len) != EMPQ_OK) ||
        empq_buf_append(&st->rec, "", 1) != EMPQ_OK) {
        st->rc = empq_error_set(st->err, EMPQ_ENOMEM, "%s:%zu: out of memory", st->path, st->line);
        return;
    }
    /* The next field starts right after the delimiter, on this line. */
    st->field_line = st->line;
}

/* libcsv: end of a record. */
static void wp_on_record(int c, void *arg)
{
    wp_state *st = arg;
    (void)c;
    if (st->rc != EMPQ_OK)
        return;
    st->rc = wp_record(st);
    st->n_fields = 0;
    st->rec.len = 0;
    st->in_record = 0;
    st->field_line = st->line;
}

/* No trimming: leading and trailing spaces are part of the text. */
static int wp_no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static int blank_line(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            return 0;
    }
    return 1;
}

int empq_dataset__parse_welivita(const char *path, const char *data, size_t len, empq_dataset *ds,
                                 empq_error *err)
{
    wp_state st = {.path = path, .ds = ds, .cap = ds->n, .err = err};
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: cannot start the CSV parser", path);
    csv_set_space_func(&p, wp_no_space);

    size_t pos = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
        pos = 3;
    while (pos < len && st.rc == EMPQ_OK) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;
        st.line++;
        if (!st.in_record && blank_line(data + pos, end - pos)) {
            pos = end;
            continue;
        }
        if (!st.in_record) {
            st.in_record = 1;
            st.rec_line = st.field_line = st.line;
        }
        size_t got = csv_parse(&p, data + pos, end - pos, wp_on_field, wp_on_record, &st);
        if (st.rc == EMPQ_OK && got < end - pos) {
            /* In strict mode libcsv stops at a '"' inside an unquoted field,
             * or at anything but a delimiter or line end after a closing
             * quote. */
            if (csv_error(&p) == CSV_EPARSE && data[pos + got] == '"')
                st.rc = empq_error_set(err, EMPQ_EPARSE,
                                       "%s:%zu: malformed CSV: '\"' inside an unquoted field (column %zu)",
                                       path, st.line, got + 1);
            else if (csv_error(&p) == CSV_EPARSE)
                st.rc = empq_error_set(err, EMPQ_EPARSE,
                                       "%s:%zu: malformed CSV: text after a closing quote (column %zu)",
                                       path, st.line, got + 1);
            else
                st.rc = empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: %s", path, st.line,
                                       csv_strerror(csv_error(&p)));
        }
        pos = end;
    }
    if (st.rc == EMPQ_OK && csv_fini(&p, wp_on_field, wp_on_record, &st) != 0)
        st.rc = empq_error_set(err, EMPQ_EPARSE,
                               "%s:%zu: unterminated quoted field (its closing quote is missing)", path,
                               st.field_line);
    if (st.rc == EMPQ_OK && st.n_header == 0)
        st.rc = empq_error_set(err, EMPQ_EPARSE, "%s:1: no header line", path);
    csv_free(&p);
    empq_buf_free(&st.rec);
    free(st.offs);
    return st.rc;
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
