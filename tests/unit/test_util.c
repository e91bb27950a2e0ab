/* test_util.c: buffers, CSV fields, files, the PRNG. */
#include <unistd.h>

#include "check.h"
#include "empq/util.h"

static void test_csv(void)
{
    empq_buf b = {0};
    CHECK_INT(empq_buf_csv_field(&b, "plain", 0), EMPQ_OK);
    CHECK_INT(empq_buf_csv_field(&b, " a, \"b\"", 0), EMPQ_OK);
    CHECK_INT(empq_buf_csv_field(&b, NULL, 0), EMPQ_OK);
    CHECK_INT(empq_buf_csv_field(&b, "two\r\nlines", 0), EMPQ_OK);
    CHECK_INT(empq_buf_csv_u64(&b, 18446744073709551615ull, 1), EMPQ_OK);
    CHECK_STR(b.data, "plain,\" a, \"\"b\"\"\",,\"two\r\nlines\",18446744073709551615\r\n");
    empq_buf_free(&b);
    CHECK(b.data == NULL);
    empq_buf_free(NULL);
}

static void test_files(void)
{
    char dir[] = "/tmp/empq-test-util-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], deep[128];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    empq_error err = {0};
    CHECK_INT(empq_mkdirs(deep, &err), EMPQ_OK);
    CHECK_INT(empq_write_file_atomic(path, "hello", 5, &err), EMPQ_OK);
    char *got;
    size_t len;
    CHECK_INT(empq_read_file(path, &got, &len, &err), EMPQ_OK);
    CHECK_INT(len, 5);
    CHECK_STR(got, "hello");
    free(got);
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK_INT(empq_read_file(path, &got, &len, &err), EMPQ_ENOTFOUND);
    CHECK_CONTAINS(err.msg, path);
    snprintf(path, sizeof path, "%s/nodir/x", dir);
    CHECK_INT(empq_write_file_atomic(path, "x", 1, &err), EMPQ_EIO);
    CHECK_CONTAINS(err.msg, "nodir");
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

static void test_rng(void)
{
    empq_rng a, b;
    empq_rng_seed(&a, 42);
    empq_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        CHECK(empq_rng_next(&a) == empq_rng_next(&b));
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++)
        seen[empq_rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++)
        CHECK(seen[i] > 800 && seen[i] < 1200);
}

/* Strict UTF-8: each kind of bad sequence, where it starts, and the edges
 * that are valid. */
static void test_utf8(void)
{
    static const struct {
        const char *s;
        size_t len, bad_at; /* bad_at == len: valid */
    } cases[] = {
        {"", 0, 0},
        {"plain ascii\n", 12, 12},
        {"a\0b", 3, 3},                               /* NUL is a character */
        {"\xc2\x80\xdf\xbf", 4, 4},                   /* U+0080, U+07FF */
        {"\xe0\xa0\x80\xef\xbf\xbf", 6, 6},           /* U+0800, U+FFFF */
        {"\xed\x9f\xbf\xee\x80\x80", 6, 6},           /* U+D7FF, U+E000 around the surrogates */
        {"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8, 8},   /* U+10000, U+10FFFF */
        {"ab\xff\xfe", 4, 2},                         /* the bytes */
        {"ab\x80", 3, 2},                             /* a stray continuation byte */
        {"\xc0\xaf", 2, 0},                           /* overlong '/' */
        {"x\xc1\xbf", 3, 1},                          /* overlong, C1 */
        {"\xe0\x9f\xbf", 3, 0},                       /* overlong 3-byte */
        {"\xf0\x8f\xbf\xbf", 4, 0},                   /* overlong 4-byte */
        {"\xed\xa0\x80", 3, 0},                       /* U+D800 */
        {"\xed\xbf\xbf", 3, 0},                       /* U+DFFF */
        {"\xf4\x90\x80\x80", 4, 0},                   /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},                   /* F5 lead */
        {"ok\xe2\x82", 4, 2},                         /* cut by the end */
        {"\xe2\x82\xac\xe2\x82(", 6, 3},              /* euro sign, then a cut one */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t got = empq_utf8_invalid_at(cases[i].s, cases[i].len);
        if (got != cases[i].bad_at)
            fprintf(stderr, "case %zu\n", i);
        CHECK_INT(got, cases[i].bad_at);
    }
    CHECK_INT(empq_utf8_invalid_at(NULL, 0), 0);
    CHECK_INT(empq_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    CHECK_INT(empq_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 3), 0); /* only 3 bytes may be read */
}

int main(void)
{
    RUN(test_csv);
    RUN(test_files);
    RUN(test_rng);
    RUN(test_utf8);
    CHECK_DONE();
}
