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

int main(void)
{
    RUN(test_csv);
    RUN(test_files);
    RUN(test_rng);
    CHECK_DONE();
}
