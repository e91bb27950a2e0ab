/* test_log.c: the log line format, quoting, and the rate limit of
 * repeating events (first line at once, then one per interval per key with
 * suppressed=N), on a clock the test moves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "empq/log.h"

static uint64_t fake_now;
static uint64_t fake_clock(void) { return fake_now; }

static FILE *out;

/* Everything written since the last call, as one string (static). */
static const char *take(void)
{
    static char buf[65536];
    fflush(out);
    long n = ftell(out);
    CHECK(n >= 0 && (size_t)n < sizeof buf);
    rewind(out);
    size_t got = fread(buf, 1, (size_t)n, out);
    buf[got] = '\0';
    rewind(out);
    CHECK(ftruncate(fileno(out), 0) == 0);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_line_format(void)
{
    EMPQ_WARN("event=x a=%d", 1);
    const char *s = take();
    CHECK_CONTAINS(s, " level=warn prog=empq-test src=tests/unit/test_log.c:");
    CHECK_CONTAINS(s, " event=x a=1\n");
    CHECK(strncmp(s, "ts=", 3) == 0);
    EMPQ_DEBUG("event=hidden"); /* below the level */
    CHECK_STR(take(), "");
}

static void test_limited_first_then_interval(void)
{
    empq_log_limits_reset();
    fake_now = 1000;
    for (int i = 0; i < 1000; i++)
        EMPQ_WARN_LIMITED("send_failed/heartbeat", "event=send_failed what=heartbeat i=%d", i);
    const char *s = take();
    CHECK_INT(count_lines(s), 1); /* the first at once, 999 dropped */
    CHECK_CONTAINS(s, "event=send_failed what=heartbeat i=0\n");

    fake_now += EMPQ_LOG_REPEAT_MS - 1; /* not yet */
    EMPQ_WARN_LIMITED("send_failed/heartbeat", "event=send_failed what=heartbeat i=%d", 1000);
    CHECK_STR(take(), "");
    fake_now += 1; /* the interval has passed: one line with the count */
    EMPQ_WARN_LIMITED("send_failed/heartbeat", "event=send_failed what=heartbeat i=%d", 1001);
    s = take();
    CHECK_INT(count_lines(s), 1);
    CHECK_CONTAINS(s, "i=1001 suppressed=1000\n");

    /* a quiet interval later: the next line again at once, without a count */
    fake_now += 3 * EMPQ_LOG_REPEAT_MS;
    EMPQ_WARN_LIMITED("send_failed/heartbeat", "event=send_failed what=heartbeat i=%d", 1002);
    s = take();
    CHECK_CONTAINS(s, "i=1002\n");
    CHECK(strstr(s, "suppressed") == NULL);
}

static void test_limited_keys_apart(void)
{
    empq_log_limits_reset();
    fake_now = 50;
    for (int i = 0; i < 10; i++) {
        EMPQ_WARN_LIMITED("a", "event=a");
        EMPQ_ERROR_LIMITED("b", "event=b");
    }
    const char *s = take();
    CHECK_INT(count_lines(s), 2); /* one per key */
    CHECK_CONTAINS(s, "level=warn");
    CHECK_CONTAINS(s, "level=error");

    /* an explicit interval; 0 writes every line */
    for (int i = 0; i < 3; i++)
        EMPQ_LOG_EVERY(EMPQ_LOG_WARN, "c", 0, "event=c");
    CHECK_INT(count_lines(take()), 3);
    EMPQ_LOG_EVERY(EMPQ_LOG_WARN, "d", 1000, "event=d");
    fake_now += 999;
    EMPQ_LOG_EVERY(EMPQ_LOG_WARN, "d", 1000, "event=d");
    fake_now += 1;
    EMPQ_LOG_EVERY(EMPQ_LOG_WARN, "d", 1000, "event=d");
    s = take();
    CHECK_INT(count_lines(s), 2);
    CHECK_CONTAINS(s, "event=d suppressed=1\n");

    /* a level below the minimum is neither written nor counted */
    for (int i = 0; i < 5; i++)
        EMPQ_LOG_EVERY(EMPQ_LOG_DEBUG, "e", 1000, "event=e");
    CHECK_STR(take(), "");
}

static void test_limited_many_keys(void)
{
    empq_log_limits_reset();
    fake_now = 7;
    char key[32];
    /* more keys than slots: each new key is written at once, none is lost */
    for (int i = 0; i < 3 * EMPQ_LOG_KEYS; i++) {
        snprintf(key, sizeof key, "peer-%d", i);
        fake_now++;
        EMPQ_WARN_LIMITED(key, "event=bad peer=%d", i);
    }
    CHECK_INT(count_lines(take()), 3 * EMPQ_LOG_KEYS);
    /* the most recent keys are still held: repeats are limited */
    for (int i = 3 * EMPQ_LOG_KEYS - 10; i < 3 * EMPQ_LOG_KEYS; i++) {
        snprintf(key, sizeof key, "peer-%d", i);
        EMPQ_WARN_LIMITED(key, "event=bad peer=%d", i);
    }
    CHECK_STR(take(), "");
}

static void test_quote(void)
{
    char buf[32];
    CHECK_STR(empq_log_quote(buf, sizeof buf, "plain"), "plain");
    CHECK_STR(empq_log_quote(buf, sizeof buf, "a b"), "\"a b\"");
    CHECK_STR(empq_log_quote(buf, sizeof buf, ""), "\"\"");
}

int main(void)
{
    unsetenv("EMPQ_LOG_LEVEL");
    empq_log_init("empq-test", EMPQ_LOG_INFO);
    out = tmpfile();
    CHECK(out != NULL);
    empq_log_set_output(out);
    empq_log_set_clock(fake_clock);
    RUN(test_line_format);
    RUN(test_limited_first_then_interval);
    RUN(test_limited_keys_apart);
    RUN(test_limited_many_keys);
    RUN(test_quote);
    empq_log_set_output(NULL);
    empq_log_set_clock(NULL);
    fclose(out);
    CHECK_DONE();
}
