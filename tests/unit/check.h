/* check.h: the unit tests' assertions. Each prints both values and the
 * location on failure and ends the test process with status 1. A test that
 * cannot run here (missing data) exits 77, which CTest reports as skipped. */
#ifndef EMPQ_CHECK_H
#define EMPQ_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check__count;

#define CHECK(cond) do { check__count++; if (!(cond)) { \
    fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); exit(1); } } while (0)

#define CHECK_INT(a, b) do { check__count++; long long check__a = (long long)(a), check__b = (long long)(b); \
    if (check__a != check__b) { fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", \
        __FILE__, __LINE__, #a, #b, check__a, check__b); exit(1); } } while (0)

#define CHECK_STR(a, b) do { check__count++; const char *check__a = (a), *check__b = (b); \
    if (check__a == NULL || check__b == NULL || strcmp(check__a, check__b) != 0) { \
        fprintf(stderr, "%s:%d: %s == %s failed:\n  got:      \"%s\"\n  expected: \"%s\"\n", __FILE__, __LINE__, \
            #a, #b, check__a ? check__a : "(null)", check__b ? check__b : "(null)"); exit(1); } } while (0)

/* Checks that haystack contains needle. */
#define CHECK_CONTAINS(hay, needle) do { check__count++; const char *check__h = (hay), *check__n = (needle); \
    if (check__h == NULL || strstr(check__h, check__n) == NULL) { \
        fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
            check__h ? check__h : "(null)", check__n); exit(1); } } while (0)

#define RUN(test) do { fprintf(stderr, "-- %s\n", #test); test(); } while (0)

#define CHECK_DONE() do { fprintf(stderr, "ok: %d checks\n", check__count); return 0; } while (0)

#define SKIP(...) do { fprintf(stderr, "SKIP: "); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); exit(77); } while (0)

#endif
