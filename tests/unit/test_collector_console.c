/* test_collector_console.c: the study console's access rule: which
 * addresses are loopback, and the token comparison. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "console.h"

static void test_loopback(void)
{
    CHECK_INT(console__is_loopback("127.0.0.1"), 1);
    CHECK_INT(console__is_loopback("127.255.3.4"), 1); /* all of 127.0.0.0/8 */
    CHECK_INT(console__is_loopback("::1"), 1);
    CHECK_INT(console__is_loopback("::ffff:127.0.0.1"), 1);
    CHECK_INT(console__is_loopback("0.0.0.0"), 0);
    CHECK_INT(console__is_loopback("::"), 0);
    CHECK_INT(console__is_loopback("128.0.0.1"), 0);
    CHECK_INT(console__is_loopback("10.0.0.1"), 0);
    CHECK_INT(console__is_loopback("::ffff:10.0.0.1"), 0);
    CHECK_INT(console__is_loopback("localhost"), 0); /* not an address literal */
    CHECK_INT(console__is_loopback(""), 0);
}

static void test_token_equal(void)
{
    const char *t = "0123456789abcdef0123";
    CHECK_INT(console__token_equal(t, "0123456789abcdef0123"), 1);
    CHECK_INT(console__token_equal(t, "0123456789abcdef012"), 0);   /* a prefix */
    CHECK_INT(console__token_equal(t, "0123456789abcdef01234"), 0); /* longer */
    CHECK_INT(console__token_equal(t, "1123456789abcdef0123"), 0);
    CHECK_INT(console__token_equal(t, "0123456789abcdef0124"), 0);
    CHECK_INT(console__token_equal(t, ""), 0);
    CHECK_INT(console__token_equal(t, NULL), 0);
}

static void test_start_refused(void)
{
    console *c = (console *)1;
    empq_error err = {0};
    console__opts o = {0};
    o.redis_url = "redis://127.0.0.1:1";
    o.bind = "not-an-address";
    CHECK_INT(console__start(&c, &o, &err), EMPQ_EINVAL);
    CHECK(c == NULL);
    CHECK_CONTAINS(err.msg, "not-an-address");
    o.bind = "127.0.0.1";
    o.token_file = "/nonexistent/token";
    CHECK_INT(console__start(&c, &o, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "/nonexistent/token");
    char path[] = "/tmp/empq-console-token-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, "short\n", 6), 6);
    close(fd);
    o.token_file = path;
    CHECK_INT(console__start(&c, &o, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "5 characters");
    unlink(path);
    console__stop(&c);
    console__stop(NULL);
}

int main(void)
{
    RUN(test_loopback);
    RUN(test_token_equal);
    RUN(test_start_refused);
    CHECK_DONE();
}
