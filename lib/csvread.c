/* csvread.c: the RFC 4180 record reader (include/empq/csvread.h) over
 * libcsv in strict mode.
 *
 * libcsv is fed one chunk at a time, each ending at the first CR or LF (or
 * at the end of what is at hand). A record can end only at a CR or LF
 * outside quotes, so at most one record ends per chunk, at its last byte:
 * a record is handed out as soon as it ends, and the line (counted by LF)
 * and the byte column of every chunk are known for records and errors. */
#include "empq/csvread.h"

#include <csv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/util.h"

#define CSVREAD_BLOCK 65536 /* bytes read from a FILE at once */

/* A record: fields stored one after the other, each NUL-terminated. */
typedef struct csvread_rec {
    empq_buf buf;
    size_t *off; /* start of field i in buf.data */
    size_t n, cap;
} csvread_rec;

struct empq_csvread {
    char *name;
    struct csv_parser p;
    /* the input at hand: the whole buffer, or the last block read from f */
    const char *data;
    size_t len, pos;
    FILE *f;
    char *block;
    int at_bom; /* nothing consumed yet: a byte order mark may follow */
    /* positions */
    size_t line;       /* line of the next byte */
    size_t col;        /* bytes of that line already consumed */
    size_t rec_line;   /* line where the current record starts */
    size_t field_line; /* line where the current field starts */
    int in_record;     /* libcsv is inside a record */
    int rec_done;      /* the callbacks finished a record */
    int finished;      /* the input is used up (libcsv finished) */
    csvread_rec rec, hdr;
    size_t n_read; /* records handed out */
    int rc;        /* first error: every later call returns it */
    empq_error e;  /* its text */
};

/* ==================== records ==================== */

static int rec_push(csvread_rec *c, const void *data, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        size_t *o = realloc(c->off, cap * sizeof *o);
        if (o == NULL)
            return EMPQ_ENOMEM;
        c->off = o;
        c->cap = cap;
    }
    size_t at = c->buf.len;
    if ((len > 0 && empq_buf_append(&c->buf, data, len) != EMPQ_OK) || empq_buf_append(&c->buf, "", 1) != EMPQ_OK) {
        c->buf.len = at;
        return EMPQ_ENOMEM;
    }
    c->off[c->n++] = at;
    return EMPQ_OK;
}

static const char *rec_field(const csvread_rec *c, size_t i)
{
    return i < c->n ? c->buf.data + c->off[i] : "";
}

static void rec_free(csvread_rec *c)
{
    empq_buf_free(&c->buf);
    free(c->off);
    memset(c, 0, sizeof *c);
}

/* ==================== libcsv callbacks ==================== */

/* The reader's first error: kept, and returned from now on. */
static int fail(empq_csvread *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(empq_csvread *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[EMPQ_ERROR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->rc = empq_error_set(&r->e, code, "%s", msg);
    return r->rc;
}

/* End of a field. data is not NUL-terminated (and may be NULL when len is
 * 0). */
static void on_field(void *data, size_t len, void *arg)
{
    empq_csvread *r = arg;
    if (r->rc != EMPQ_OK)
        return;
    if (rec_push(&r->rec, data, len) != EMPQ_OK) {
        fail(r, EMPQ_ENOMEM, "%s:%zu: out of memory", r->name, r->line);
        return;
    }
    r->field_line = r->line; /* the next one starts after the delimiter */
}

/* End of a record (c: its terminator, or -1 at the end of the input). */
static void on_record(int c, void *arg)
{
    empq_csvread *r = arg;
    (void)c;
    r->in_record = 0;
    r->rec_done = 1;
}

/* No trimming: leading and trailing spaces are part of the text. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

/* ==================== reading ==================== */

static int open_common(const char *name, empq_csvread **out, empq_error *err, empq_csvread **rp)
{
    *rp = NULL;
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "csvread: NULL argument");
    *out = NULL;
    empq_csvread *r = calloc(1, sizeof *r);
    if (r == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name != NULL ? name : "csv");
    r->name = empq_strdup(name != NULL ? name : "csv");
    if (r->name == NULL || csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free(r->name);
        free(r);
        return empq_error_set(err, EMPQ_ENOMEM, "%s: cannot start the CSV parser", name != NULL ? name : "csv");
    }
    csv_set_space_func(&r->p, no_space);
    r->line = 1;
    r->at_bom = 1;
    *rp = r;
    return EMPQ_OK;
}

int empq_csvread_open_buf(const char *name, const char *data, size_t len, empq_csvread **out, empq_error *err)
{
    if (data == NULL && len > 0)
        return empq_error_set(err, EMPQ_EINVAL, "csvread: NULL argument");
    empq_csvread *r;
    int rc = open_common(name, out, err, &r);
    if (rc != EMPQ_OK)
        return rc;
    r->data = data;
    r->len = len;
    *out = r;
    return EMPQ_OK;
}

int empq_csvread_open_file(const char *name, FILE *f, empq_csvread **out, empq_error *err)
{
    if (f == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "csvread: NULL argument");
    empq_csvread *r;
    int rc = open_common(name, out, err, &r);
    if (rc != EMPQ_OK)
        return rc;
    r->block = malloc(CSVREAD_BLOCK);
    if (r->block == NULL) {
        empq_csvread_free(&r);
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", name != NULL ? name : "csv");
    }
    r->f = f;
    r->data = r->block;
    *out = r;
    return EMPQ_OK;
}

/* Makes input available. Returns 1 when there is some, 0 at its end, or a
 * negative code. */
static int more_input(empq_csvread *r)
{
    if (r->pos == r->len && r->f != NULL) {
        /* fread fills the block unless the file ends or fails: a block of
         * fewer than 3 bytes is the whole input when it is the first */
        r->len = fread(r->block, 1, CSVREAD_BLOCK, r->f);
        r->pos = 0;
        if (r->len == 0 && ferror(r->f))
            return fail(r, EMPQ_EIO, "%s:%zu: read error", r->name, r->line);
    }
    if (r->at_bom && r->pos < r->len) {
        r->at_bom = 0;
        if (r->len - r->pos >= 3 && memcmp(r->data + r->pos, "\xEF\xBB\xBF", 3) == 0)
            r->pos += 3;
    }
    return r->pos < r->len;
}

/* Feeds libcsv the next chunk (up to and with the first CR or LF). Returns
 * EMPQ_OK or a negative code. */
static int feed(empq_csvread *r)
{
    const char *s = r->data + r->pos;
    size_t avail = r->len - r->pos, k = 0;
    while (k < avail && s[k] != '\n' && s[k] != '\r')
        k++;
    if (k < avail)
        k++; /* with its CR or LF */
    if (!r->in_record) {
        if (k == 1 && (s[0] == '\n' || s[0] == '\r')) { /* a blank line */
            r->pos++;
            r->col++;
            if (s[0] == '\n') {
                r->line++;
                r->col = 0;
            }
            return EMPQ_OK;
        }
        r->in_record = 1;
        r->rec_line = r->field_line = r->line;
        r->rec.n = 0;
        r->rec.buf.len = 0;
    }
    size_t got = csv_parse(&r->p, s, k, on_field, on_record, r);
    if (r->rc != EMPQ_OK)
        return r->rc;
    if (got < k) {
        /* In strict mode libcsv stops at a '"' inside an unquoted field, or
         * at anything but a delimiter, a quote or a line end after a closing
         * quote; s[got] is that byte. */
        int pe = csv_error(&r->p);
        if (pe == CSV_EPARSE && s[got] == '"')
            return fail(r, EMPQ_EPARSE, "%s:%zu: malformed CSV: '\"' inside an unquoted field (column %zu)", r->name,
                        r->line, r->col + got + 1);
        if (pe == CSV_EPARSE)
            return fail(r, EMPQ_EPARSE, "%s:%zu: text after a closing quote (malformed CSV, column %zu)", r->name,
                        r->line, r->col + got + 1);
        return fail(r, pe == CSV_ENOMEM || pe == CSV_ETOOBIG ? EMPQ_ENOMEM : EMPQ_EPARSE, "%s:%zu: %s", r->name,
                    r->line, csv_strerror(pe));
    }
    r->pos += k;
    r->col += k;
    if (s[k - 1] == '\n') {
        r->line++;
        r->col = 0;
    }
    return EMPQ_OK;
}

static int copy_error(const empq_csvread *r, empq_error *err)
{
    if (err != NULL)
        *err = r->e;
    return r->rc;
}

int empq_csvread_next(empq_csvread *r, empq_error *err)
{
    if (r == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "csvread: NULL argument");
    if (r->rc != EMPQ_OK)
        return copy_error(r, err);
    r->rec_done = 0;
    while (!r->finished) {
        int rc = more_input(r);
        if (rc < 0)
            return copy_error(r, err);
        if (rc == 0) {
            r->finished = 1;
            if (csv_fini(&r->p, on_field, on_record, r) != 0 && r->rc == EMPQ_OK)
                fail(r, EMPQ_EPARSE, "%s:%zu: unterminated quoted field (its closing quote is missing)", r->name,
                     r->field_line);
            if (r->rc != EMPQ_OK)
                return copy_error(r, err);
            break;
        }
        if (feed(r) != EMPQ_OK)
            return copy_error(r, err);
        if (r->rec_done)
            break;
    }
    if (!r->rec_done) {
        r->rec.n = 0;
        return 0;
    }
    r->n_read++;
    return 1;
}

int empq_csvread_header(empq_csvread *r, empq_error *err)
{
    if (r == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "csvread: NULL argument");
    if (r->n_read > 0 || r->hdr.n > 0)
        return empq_error_set(err, EMPQ_EINVAL, "%s: the header is the first record", r->name);
    int rc = empq_csvread_next(r, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return empq_error_set(err, EMPQ_EPARSE, "%s:1: no header line", r->name);
    for (size_t i = 0; i < r->rec.n; i++) {
        const char *s = rec_field(&r->rec, i);
        if (rec_push(&r->hdr, s, strlen(s)) != EMPQ_OK) {
            rec_free(&r->hdr);
            return empq_error_set(err, EMPQ_ENOMEM, "%s:%zu: out of memory", r->name, r->rec_line);
        }
    }
    return EMPQ_OK;
}

/* ==================== access ==================== */

size_t empq_csvread_count(const empq_csvread *r)
{
    return r != NULL ? r->rec.n : 0;
}

const char *empq_csvread_field(const empq_csvread *r, size_t i)
{
    return r != NULL ? rec_field(&r->rec, i) : "";
}

size_t empq_csvread_line(const empq_csvread *r)
{
    return r != NULL && r->n_read > 0 ? r->rec_line : 0;
}

size_t empq_csvread_header_count(const empq_csvread *r)
{
    return r != NULL ? r->hdr.n : 0;
}

const char *empq_csvread_header_field(const empq_csvread *r, size_t i)
{
    return r != NULL ? rec_field(&r->hdr, i) : "";
}

long empq_csvread_col(const empq_csvread *r, const char *name)
{
    if (r == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < r->hdr.n; i++) {
        if (strcmp(rec_field(&r->hdr, i), name) == 0)
            return (long)i;
    }
    return -1;
}

void empq_csvread_free(empq_csvread **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    empq_csvread *r = *rp;
    csv_free(&r->p);
    rec_free(&r->rec);
    rec_free(&r->hdr);
    free(r->block);
    free(r->name);
    free(r);
    *rp = NULL;
}
