/* csvread.h: an RFC 4180 record reader (libcsv underneath) that knows the
 * physical line of every record and names the file and line in its errors.
 *
 * Input: comma separated; fields double-quoted where needed with "" for a
 * quote inside; CRLF, LF or a bare CR ends a record; quoted fields may hold
 * commas, quotes and line breaks (kept byte for byte). Spaces are part of
 * the text (nothing is trimmed). A UTF-8 byte order mark at the start is
 * skipped; blank lines (only CR and LF) between records are skipped. Lines
 * are counted by LF from 1, so a record's line is where its first byte is.
 *
 * Strict: a '"' inside an unquoted field, text after a closing quote and a
 * quote still open at the end of the input are errors, never guessed at.
 *
 *   empq_csvread *r = NULL;
 *   int rc = empq_csvread_open_buf("ratings.csv", data, len, &r, err);
 *   if (rc == EMPQ_OK)
 *       rc = empq_csvread_header(r, err);         // the first record
 *   long col = empq_csvread_col(r, "dialog_id");   // -1: no such column
 *   while (rc == EMPQ_OK && (rc = empq_csvread_next(r, err)) == 1)
 *       use(empq_csvread_line(r), empq_csvread_field(r, (size_t)col));
 *   empq_csvread_free(&r);                         // rc: 0 at the end, or < 0
 */
#ifndef EMPQ_CSVREAD_H
#define EMPQ_CSVREAD_H

#include <stddef.h>
#include <stdio.h>

#include "empq/error.h"

typedef struct empq_csvread empq_csvread;

/* Opens a reader over the len bytes at data (need not be NUL-terminated;
 * data may be NULL when len is 0). The reader does not copy data: it must
 * stay unchanged until the reader is freed. name (the file, in error texts)
 * is copied; NULL reads as "csv". Returns EMPQ_OK with *out (the caller
 * frees it with empq_csvread_free), EMPQ_EINVAL for a NULL out or data, or
 * EMPQ_ENOMEM; *out is NULL on failure. */
int empq_csvread_open_buf(const char *name, const char *data, size_t len, empq_csvread **out,
                          empq_error *err);

/* Opens a reader over f, read from where it stands to its end in blocks
 * (the whole input is never held). f stays the caller's: it is not closed,
 * and must stay open until the reader is freed. name as above. Returns like
 * empq_csvread_open_buf; a read error surfaces later, from
 * empq_csvread_next, as EMPQ_EIO. */
int empq_csvread_open_file(const char *name, FILE *f, empq_csvread **out, empq_error *err);

/* Reads the next record. Returns 1 with the record available through
 * empq_csvread_count, _field and _line (until the next call); 0 at the end
 * of the input; or a negative code with err "name:line: what":
 *   EMPQ_EPARSE "name:L: malformed CSV: '\"' inside an unquoted field
 *               (column C)", "name:L: text after a closing quote (malformed
 *               CSV, column C)" (L the line of the offending byte, C its byte
 *               column, from 1), or "name:L: unterminated quoted field (its
 *               closing quote is missing)" (L the line where that field
 *               starts);
 *   EMPQ_EIO    reading the FILE failed;
 *   EMPQ_ENOMEM.
 * After an error or the end every further call returns the same (with the
 * same err text). err may be NULL. */
int empq_csvread_next(empq_csvread *r, empq_error *err);

/* Reads the first record as the header: like empq_csvread_next, and the
 * record is also kept for empq_csvread_col and _header_field. Returns
 * EMPQ_OK; EMPQ_EPARSE "name:1: no header line" when the input holds no
 * record; EMPQ_EINVAL when a record was read already; or an error of
 * empq_csvread_next. */
int empq_csvread_header(empq_csvread *r, empq_error *err);

/* Fields in the current record (0 before the first). */
size_t empq_csvread_count(const empq_csvread *r);

/* Field i of the current record, NUL-terminated (a NUL byte inside a field
 * ends it early); "" when i >= the count. Owned by the reader, valid until
 * the next read. */
const char *empq_csvread_field(const empq_csvread *r, size_t i);

/* 1-based line where the current record starts (0 before the first). */
size_t empq_csvread_line(const empq_csvread *r);

/* Fields in the header (0 until empq_csvread_header succeeded). */
size_t empq_csvread_header_count(const empq_csvread *r);

/* Header field i; "" when i >= the header count. Owned by the reader, valid
 * until it is freed. */
const char *empq_csvread_header_field(const empq_csvread *r, size_t i);

/* Index of the first header field equal to name (byte for byte), or -1
 * when there is none (or no header). */
long empq_csvread_col(const empq_csvread *r, const char *name);

/* Frees the reader and sets *rp to NULL; rp and *rp may be NULL. */
void empq_csvread_free(empq_csvread **rp);

#endif
