/* test_cliopt.c: the shared command-line conventions: options, positional
 * arguments, the one wording of a refused option and exit code 2, --help
 * and --version. stderr is captured into a file to check the wording. */
#include <unistd.h>

#include "check.h"
#include "empq/cliopt.h"

static int usage_calls;
static void usage(FILE *f)
{
    usage_calls++;
    fputs("usage: prog [--name N] [--flag]\n", f);
}

enum { NAME = EMPQ_CLIOPT_FIRST, FLAG };
static const struct option opts[] = {
    EMPQ_CLIOPT_HELP_ENTRY, EMPQ_CLIOPT_VERSION_ENTRY, {"name", required_argument, NULL, NAME},
    {"flag", no_argument, NULL, FLAG}, {"broker", required_argument, NULL, 'b'}, {0}};

/* Runs the parser over argv (NULL-terminated, argv[0] first) with stderr
 * going to err (len bytes, NUL-terminated). Returns the last
 * empq_cliopt_next result; *a is the parser state. */
static int parse(empq_cliopt *a, char **argv, char *err, size_t len)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    CHECK(saved >= 0 && tmp != NULL);
    dup2(fileno(tmp), 2);
    int c;
    while ((c = empq_cliopt_next(a, argc, argv)) > 0)
        ;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, len - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return c;
}

static void test_options_and_args(void)
{
    char err[512];
    char *argv[] = {"prog", "one", "--name=x", "--flag", "two", "-b", "ep", NULL};
    empq_cliopt a = {.prog = "prog", .opts = opts, .shortopts = "b:", .usage = usage, .max_args = 2};
    CHECK_INT(parse(&a, argv, err, sizeof err), -1);
    CHECK_INT(a.code, 0);
    CHECK_INT(a.nargs, 2);
    CHECK_STR(a.args[0], "one");
    CHECK_STR(a.args[1], "two");
    CHECK_STR(err, "");
}

static void test_refused(void)
{
    static const struct {
        const char *args[4];
        const char *cmd;
        const char *line;
    } t[] = {
        {{"--bogus"}, NULL, "prog: unknown option '--bogus'\n"},
        {{"--flag=1"}, NULL, "prog: unknown option '--flag=1'\n"}, /* no value allowed */
        {{"-x"}, "sub", "prog: sub: unknown option '-x'\n"},
        {{"--name"}, NULL, "prog: option '--name' needs a value\n"},
        {{"--broker"}, NULL, "prog: option '--broker' needs a value\n"}, /* a long one whose val is 'b' */
        {{"-b"}, NULL, "prog: option '-b' needs a value\n"},
        {{"stray"}, "sub", "prog: sub: unexpected argument 'stray'\n"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *argv[6] = {"prog"};
        for (size_t k = 0; k < 4 && t[i].args[k] != NULL; k++)
            argv[1 + k] = (char *)t[i].args[k];
        empq_cliopt a = {.prog = "prog", .cmd = t[i].cmd, .opts = opts, .shortopts = "b:", .usage = usage};
        char err[512];
        usage_calls = 0;
        CHECK_INT(parse(&a, argv, err, sizeof err), 0);
        CHECK_INT(a.code, EMPQ_CLIOPT_USAGE);
        CHECK_INT(usage_calls, 1);
        CHECK(strncmp(err, t[i].line, strlen(t[i].line)) == 0);
        CHECK_CONTAINS(err, "usage: prog");
    }
    /* one positional taken, a second one named with the first */
    char *argv[] = {"prog", "r-1", "r-2", NULL};
    empq_cliopt a = {.prog = "empq", .cmd = "export", .opts = opts, .usage = usage, .max_args = 1,
                     .too_many = "one run at a time"};
    char err[512];
    CHECK_INT(parse(&a, argv, err, sizeof err), 0);
    CHECK_INT(a.code, EMPQ_CLIOPT_USAGE);
    CHECK_STR(err, "empq: export: one run at a time (got 'r-1' and 'r-2')\n");
    CHECK_INT(empq_cliopt_error("p", NULL, EMPQ_CLIOPT_UNKNOWN, "x", NULL), 2);
}

static void test_help_and_version(void)
{
    char err[512];
    char *h[] = {"prog", "--help", NULL};
    empq_cliopt a = {.prog = "prog", .opts = opts, .usage = usage};
    usage_calls = 0;
    CHECK_INT(parse(&a, h, err, sizeof err), 0);
    CHECK_INT(a.code, 0);
    CHECK_INT(usage_calls, 1);
    char *v[] = {"prog", "--version", NULL};
    empq_cliopt b = {.prog = "prog", .opts = opts, .usage = usage};
    CHECK_INT(parse(&b, v, err, sizeof err), 0);
    CHECK_INT(b.code, 0);
    CHECK(strlen(empq_cliopt_version_string()) >= 5 && strchr(empq_cliopt_version_string(), '.') != NULL);
    CHECK(empq_cliopt_commit()[0] != '\0');
}

int main(void)
{
    RUN(test_options_and_args);
    RUN(test_refused);
    RUN(test_help_and_version);
    CHECK_DONE();
}
