/* test_csvread.c: the RFC 4180 record reader: fields, quotes, CRLF/LF/CR,
 * embedded line breaks, blank lines, the byte order mark, record lines,
 * header lookup, its errors (file, line, column) and that they stick; the
 * FILE reader across block boundaries and a read error; a round trip of
 * random records through the CSV writer of util.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "empq/csvread.h"
#include "empq/util.h"

/* Reads the next record, expecting it to start on line and to hold the n
 * fields of want. */
static void expect_record(empq_csvread *r, size_t line, size_t n, const char *const *want)
{
    empq_error err = {0};
    int rc = empq_csvread_next(r, &err);
    if (rc != 1)
        fprintf(stderr, "next: %d %s\n", rc, err.msg);
    CHECK_INT(rc, 1);
    CHECK_INT(empq_csvread_line(r), line);
    CHECK_INT(empq_csvread_count(r), n);
    for (size_t i = 0; i < n; i++)
        CHECK_STR(empq_csvread_field(r, i), want[i]);
    CHECK_STR(empq_csvread_field(r, n), ""); /* past the end */
}

static empq_csvread *open_str(const char *name, const char *s)
{
    empq_csvread *r = NULL;
    empq_error err = {0};
    CHECK_INT(empq_csvread_open_buf(name, s, strlen(s), &r, &err), EMPQ_OK);
    CHECK(r != NULL);
    return r;
}

/* Reads s to its end, expecting the error code and text (want_msg: the
 * whole message) after any good records. */
static void expect_error(const char *s, int code, const char *want_msg)
{
    empq_csvread *r = open_str("e.csv", s);
    empq_error err = {0};
    int rc;
    while ((rc = empq_csvread_next(r, &err)) == 1)
        ;
    CHECK_INT(rc, code);
    CHECK_STR(err.msg, want_msg);
    /* the error sticks, with its text */
    empq_error again = {0};
    CHECK_INT(empq_csvread_next(r, &again), code);
    CHECK_STR(again.msg, want_msg);
    CHECK_INT(empq_csvread_next(r, NULL), code);
    empq_csvread_free(&r);
}

static void test_records(void)
{
    const char *s = "a,b,c\r\n"
                    "\"x, y\",\"say \"\"hi\"\"\",\r\n"      /* comma, "" escape, empty last field */
                    "\"one\r\ntwo\",\"3\nfour\", sp \r\n"   /* CRLF and LF inside quotes, spaces kept */
                    "\r\n\n\r\n"                           /* blank lines */
                    "\"\",,\"\"\n"                         /* quoted and unquoted empties, LF */
                    "p,q\rr,s\r"                           /* bare CR ends a record */
                    "last,\"no\",end";                     /* no line end at the end */
    empq_csvread *r = open_str("t.csv", s);
    CHECK_INT(empq_csvread_count(r), 0);
    CHECK_INT(empq_csvread_line(r), 0);
    expect_record(r, 1, 3, (const char *[]){"a", "b", "c"});
    expect_record(r, 2, 3, (const char *[]){"x, y", "say \"hi\"", ""});
    expect_record(r, 3, 3, (const char *[]){"one\r\ntwo", "3\nfour", " sp "});
    expect_record(r, 9, 3, (const char *[]){"", "", ""});
    expect_record(r, 10, 2, (const char *[]){"p", "q"});
    expect_record(r, 10, 2, (const char *[]){"r", "s"});
    expect_record(r, 10, 3, (const char *[]){"last", "no", "end"});
    empq_error err = {0};
    CHECK_INT(empq_csvread_next(r, &err), 0);
    CHECK_INT(empq_csvread_count(r), 0);
    CHECK_INT(empq_csvread_next(r, &err), 0); /* the end sticks too */
    CHECK_INT(empq_csvread_header_count(r), 0);
    CHECK_INT(empq_csvread_col(r, "a"), -1); /* no header was read */
    empq_csvread_free(&r);
    CHECK(r == NULL);
    empq_csvread_free(&r);
    empq_csvread_free(NULL);

    /* a trailing comma at the very end is one more, empty, field */
    r = open_str("t.csv", "a,b,");
    expect_record(r, 1, 3, (const char *[]){"a", "b", ""});
    CHECK_INT(empq_csvread_next(r, NULL), 0);
    empq_csvread_free(&r);

    /* empty input; only a byte order mark; only blank lines */
    const char *empties[] = {"", "\xEF\xBB\xBF", "\r\n\n\r"};
    for (size_t i = 0; i < 3; i++) {
        r = open_str("t.csv", empties[i]);
        CHECK_INT(empq_csvread_next(r, NULL), 0);
        empq_csvread_free(&r);
    }
    CHECK_INT(empq_csvread_open_buf(NULL, NULL, 0, &r, NULL), EMPQ_OK);
    CHECK_INT(empq_csvread_next(r, NULL), 0);
    empq_csvread_free(&r);

    /* the byte order mark is skipped only at the start */
    r = open_str("t.csv", "\xEF\xBB\xBFid,x\n\xEF\xBB\xBFid,y\n");
    expect_record(r, 1, 2, (const char *[]){"id", "x"});
    expect_record(r, 2, 2, (const char *[]){"\xEF\xBB\xBFid", "y"});
    empq_csvread_free(&r);
}

static void test_header(void)
{
    empq_csvread *r = open_str("h.csv", "\n\xEF\xBB\xBF" "dialog_id,emotion,rating_a,emotion\r\nd1,sad,3,x\r\n");
    empq_error err = {0};
    CHECK_INT(empq_csvread_header(r, &err), EMPQ_OK);
    CHECK_INT(empq_csvread_line(r), 2); /* after a blank line; the mark is not at the start */
    CHECK_INT(empq_csvread_header_count(r), 4);
    CHECK_INT(empq_csvread_count(r), 4); /* the header is the current record too */
    CHECK_STR(empq_csvread_header_field(r, 0), "\xEF\xBB\xBF" "dialog_id");
    CHECK_STR(empq_csvread_header_field(r, 2), "rating_a");
    CHECK_STR(empq_csvread_header_field(r, 4), "");
    CHECK_INT(empq_csvread_col(r, "emotion"), 1); /* the first of two */
    CHECK_INT(empq_csvread_col(r, "rating_a"), 2);
    CHECK_INT(empq_csvread_col(r, "Emotion"), -1);
    CHECK_INT(empq_csvread_col(r, ""), -1);
    CHECK_INT(empq_csvread_col(r, NULL), -1);
    expect_record(r, 3, 4, (const char *[]){"d1", "sad", "3", "x"});
    /* the header outlives the records */
    CHECK_STR(empq_csvread_header_field(r, 3), "emotion");
    CHECK_INT(empq_csvread_header(r, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "h.csv: the header is the first record");
    CHECK_INT(empq_csvread_next(r, &err), 0);
    empq_csvread_free(&r);

    r = open_str("none.csv", "\r\n\r\n");
    CHECK_INT(empq_csvread_header(r, &err), EMPQ_EPARSE);
    CHECK_STR(err.msg, "none.csv:1: no header line");
    empq_csvread_free(&r);

    r = open_str("bad.csv", "a,\"b\n");
    CHECK_INT(empq_csvread_header(r, &err), EMPQ_EPARSE);
    CHECK_STR(err.msg, "bad.csv:1: unterminated quoted field (its closing quote is missing)");
    CHECK_INT(empq_csvread_header_count(r), 0);
    empq_csvread_free(&r);

    /* NULL handles and arguments */
    CHECK_INT(empq_csvread_header(NULL, &err), EMPQ_EINVAL);
    CHECK_INT(empq_csvread_next(NULL, &err), EMPQ_EINVAL);
    CHECK_INT(empq_csvread_count(NULL), 0);
    CHECK_INT(empq_csvread_line(NULL), 0);
    CHECK_STR(empq_csvread_field(NULL, 0), "");
    CHECK_INT(empq_csvread_col(NULL, "a"), -1);
    CHECK_INT(empq_csvread_open_buf("x", "a", 1, NULL, &err), EMPQ_EINVAL);
    CHECK_INT(empq_csvread_open_buf("x", NULL, 1, &r, &err), EMPQ_EINVAL);
    CHECK(r == NULL);
    CHECK_INT(empq_csvread_open_file("x", NULL, &r, &err), EMPQ_EINVAL);
}

static void test_errors(void)
{
    /* an open quote: the line where its field starts */
    expect_error("a,b\n1,\"two\nthree,4\n", EMPQ_EPARSE,
                 "e.csv:2: unterminated quoted field (its closing quote is missing)");
    expect_error("a,b\n\"x\ny\",\"z\n\n", EMPQ_EPARSE,
                 "e.csv:3: unterminated quoted field (its closing quote is missing)");
    expect_error("\"", EMPQ_EPARSE, "e.csv:1: unterminated quoted field (its closing quote is missing)");
    /* a quote inside an unquoted field; line and byte column of the quote */
    expect_error("a,b\r\n1,say \"hi\"\r\n", EMPQ_EPARSE,
                 "e.csv:2: malformed CSV: '\"' inside an unquoted field (column 7)");
    expect_error("a,b\n1, \"x\"\n", EMPQ_EPARSE, "e.csv:2: malformed CSV: '\"' inside an unquoted field (column 4)");
    /* text after a closing quote, also after a line break inside the field */
    expect_error("a,b\n\"x\"y,1\n", EMPQ_EPARSE, "e.csv:2: text after a closing quote (malformed CSV, column 4)");
    expect_error("a,b\n1,\"x\ny\" \n", EMPQ_EPARSE, "e.csv:3: text after a closing quote (malformed CSV, column 3)");
    /* columns count from the start of the line, also after a bare CR */
    expect_error("a\rb,\"c\"d\n", EMPQ_EPARSE, "e.csv:1: text after a closing quote (malformed CSV, column 8)");
    /* the first error stops the reader; the records before it were read */
    empq_csvread *r = open_str("e.csv", "a\n\"b\"c\nd\n");
    expect_record(r, 1, 1, (const char *[]){"a"});
    empq_error err = {0};
    CHECK_INT(empq_csvread_next(r, &err), EMPQ_EPARSE);
    CHECK_INT(empq_csvread_next(r, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "e.csv:2: text after a closing quote");
    empq_csvread_free(&r);
}

/* ==================== FILE input ==================== */

/* count records "k,<k spaces and text>,\"quoted\r\nk\"" written to f and
 * to b, so that records straddle the reader's 64 KiB blocks. */
static void write_big(FILE *f, empq_buf *b, size_t count)
{
    CHECK_INT(empq_buf_printf(b, "\xEF\xBB\xBFn,pad,q\r\n"), EMPQ_OK);
    for (size_t k = 0; k < count; k++) {
        CHECK_INT(empq_buf_printf(b, "%zu,%*s,\"quo\"\"ted\r\n%zu\"\r\n", k, (int)(k % 700), "x", k), EMPQ_OK);
        if (k % 50 == 0)
            CHECK_INT(empq_buf_append(b, "\r\n", 2), EMPQ_OK); /* a blank line now and then */
    }
    CHECK(fwrite(b->data, 1, b->len, f) == b->len);
    CHECK(fflush(f) == 0);
    rewind(f);
}

static void check_big(empq_csvread *r, size_t count)
{
    empq_error err = {0};
    CHECK_INT(empq_csvread_header(r, &err), EMPQ_OK);
    CHECK_INT(empq_csvread_col(r, "q"), 2);
    size_t line = 2;
    char want[64];
    for (size_t k = 0; k < count; k++) {
        int rc = empq_csvread_next(r, &err);
        if (rc != 1)
            fprintf(stderr, "record %zu: %d %s\n", k, rc, err.msg);
        CHECK_INT(rc, 1);
        CHECK_INT(empq_csvread_line(r), line);
        CHECK_INT(empq_csvread_count(r), 3);
        snprintf(want, sizeof want, "%zu", k);
        CHECK_STR(empq_csvread_field(r, 0), want);
        CHECK_INT(strlen(empq_csvread_field(r, 1)), k % 700 > 1 ? k % 700 : 1);
        snprintf(want, sizeof want, "quo\"ted\r\n%zu", k);
        CHECK_STR(empq_csvread_field(r, 2), want);
        line += 2 + (k % 50 == 0);
    }
    CHECK_INT(empq_csvread_next(r, &err), 0);
}

static void test_file(void)
{
    const size_t count = 1000; /* about 320 KB: five 64 KiB blocks */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    empq_buf b = {0};
    write_big(f, &b, count);
    CHECK(b.len > 4 * 65536);
    empq_csvread *r = NULL;
    empq_error err = {0};
    CHECK_INT(empq_csvread_open_file("big.csv", f, &r, &err), EMPQ_OK);
    check_big(r, count);
    empq_csvread_free(&r);
    CHECK(fgetc(f) == EOF); /* read to its end, and still open */
    CHECK_INT(empq_csvread_open_buf("big.csv", b.data, b.len, &r, &err), EMPQ_OK);
    check_big(r, count);
    empq_csvread_free(&r);
    fclose(f);

    /* an error in a later block names its line */
    f = tmpfile();
    CHECK(f != NULL);
    b.len = 0;
    for (size_t k = 0; k < 20000; k++)
        CHECK_INT(empq_buf_append(&b, "abc,def\n", 8), EMPQ_OK);
    CHECK_INT(empq_buf_append(&b, "x,\"y\n", 5), EMPQ_OK);
    CHECK(fwrite(b.data, 1, b.len, f) == b.len);
    rewind(f);
    CHECK_INT(empq_csvread_open_file(NULL, f, &r, &err), EMPQ_OK);
    int rc;
    size_t n = 0;
    while ((rc = empq_csvread_next(r, &err)) == 1)
        n++;
    CHECK_INT(n, 20000);
    CHECK_INT(rc, EMPQ_EPARSE);
    CHECK_STR(err.msg, "csv:20001: unterminated quoted field (its closing quote is missing)");
    empq_csvread_free(&r);
    fclose(f);
    empq_buf_free(&b);

    /* a read error (a folder opens, but cannot be read) */
    f = fopen("/", "r");
    CHECK(f != NULL);
    CHECK_INT(empq_csvread_open_file("/", f, &r, &err), EMPQ_OK);
    CHECK_INT(empq_csvread_next(r, &err), EMPQ_EIO);
    CHECK_STR(err.msg, "/:1: read error");
    CHECK_INT(empq_csvread_next(r, &err), EMPQ_EIO);
    empq_csvread_free(&r);
    fclose(f);
}

/* ==================== round trip ==================== */

/* Random records (2-5 fields of text with commas, quotes, CR, LF, spaces)
 * written with empq_buf_csv_field read back field for field, each on the
 * line where the writer put it. */
static void test_round_trip(void)
{
    static const char alphabet[] = "ab ,\"\r\n\t\xC3\xA9x";
    empq_rng rng;
    empq_rng_seed(&rng, 4180);
    enum { ROWS = 400, MAXF = 5 };
    char *want[ROWS][MAXF];
    size_t nf[ROWS], line[ROWS], cur = 1;
    empq_buf b = {0};
    for (size_t i = 0; i < ROWS; i++) {
        nf[i] = 2 + (size_t)empq_rng_below(&rng, MAXF - 1);
        line[i] = cur;
        for (size_t j = 0; j < nf[i]; j++) {
            size_t len = (size_t)empq_rng_below(&rng, 12);
            char *s = malloc(len + 1);
            CHECK(s != NULL);
            for (size_t k = 0; k < len; k++)
                s[k] = alphabet[empq_rng_below(&rng, sizeof alphabet - 1)];
            s[len] = '\0';
            want[i][j] = s;
            size_t at = b.len;
            CHECK_INT(empq_buf_csv_field(&b, s, j + 1 == nf[i]), EMPQ_OK);
            for (size_t k = at; k < b.len; k++)
                cur += b.data[k] == '\n';
        }
    }
    empq_csvread *r = NULL;
    CHECK_INT(empq_csvread_open_buf("rt.csv", b.data, b.len, &r, NULL), EMPQ_OK);
    for (size_t i = 0; i < ROWS; i++) {
        expect_record(r, line[i], nf[i], (const char *const *)want[i]);
        for (size_t j = 0; j < nf[i]; j++)
            free(want[i][j]);
    }
    CHECK_INT(empq_csvread_next(r, NULL), 0);
    empq_csvread_free(&r);
    empq_buf_free(&b);
}

int main(void)
{
    RUN(test_records);
    RUN(test_header);
    RUN(test_errors);
    RUN(test_file);
    RUN(test_round_trip);
    CHECK_DONE();
}
