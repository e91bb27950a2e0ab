/* cliopt.c: the command-line conventions the five programs share. */
#include "empq/cliopt.h"

#include <limits.h>
#include <string.h>

/* EMPQ_VERSION comes from CMake (CMakeLists.txt), EMPQ_GIT_COMMIT from the
 * header cmake/gitcommit.cmake writes at every build: for this file only, so
 * a new commit recompiles nothing else. */
#ifdef EMPQ_COMMIT_H
#include EMPQ_COMMIT_H
#endif
#ifndef EMPQ_VERSION
#define EMPQ_VERSION "0.0.0"
#endif
#ifndef EMPQ_GIT_COMMIT
#define EMPQ_GIT_COMMIT "unknown"
#endif

const char *empq_cliopt_version_string(void) { return EMPQ_VERSION; }

const char *empq_cliopt_commit(void) { return EMPQ_GIT_COMMIT[0] != '\0' ? EMPQ_GIT_COMMIT : "unknown"; }

int empq_cliopt_print_version(const char *prog)
{
    printf("%s %s (commit %s)\n", prog, empq_cliopt_version_string(), empq_cliopt_commit());
    return 0;
}

int empq_cliopt_error(const char *prog, const char *cmd, empq_cliopt_kind kind, const char *what,
                      void (*usage)(FILE *f))
{
    fprintf(stderr, "%s: ", prog);
    if (cmd != NULL)
        fprintf(stderr, "%s: ", cmd);
    switch (kind) {
    case EMPQ_CLIOPT_UNKNOWN: fprintf(stderr, "unknown option '%s'\n", what); break;
    case EMPQ_CLIOPT_MISSING: fprintf(stderr, "option '%s' needs a value\n", what); break;
    case EMPQ_CLIOPT_UNEXPECTED: fprintf(stderr, "unexpected argument '%s'\n", what); break;
    }
    if (usage != NULL)
        usage(stderr);
    return EMPQ_CLIOPT_USAGE;
}

const char *empq_cliopt_refused(char **argv, char letter[3])
{
    if (optopt == 0 || optopt > UCHAR_MAX) /* a long option: consumed, optind is past it */
        return argv[optind - 1];
    letter[0] = '-'; /* a short one, maybe inside a group like -xy: only its letter is known */
    letter[1] = (char)optopt;
    letter[2] = '\0';
    return letter;
}

/* empq_cliopt_refused, also right for a long option whose val is a letter
 * (the worker's "--broker" is 'b'): glibc then sets optopt to that letter. */
static const char *refused_in(const empq_cliopt *a, char **argv, char letter[3])
{
    const char *prev = optind > 0 ? argv[optind - 1] : NULL;
    if (optopt > 0 && optopt <= UCHAR_MAX && prev != NULL && strncmp(prev, "--", 2) == 0) {
        size_t n = strcspn(prev + 2, "=");
        for (const struct option *o = a->opts; o != NULL && o->name != NULL; o++)
            if (o->val == optopt && strlen(o->name) == n && strncmp(o->name, prev + 2, n) == 0)
                return prev;
    }
    return empq_cliopt_refused(argv, letter);
}

int empq_cliopt_next(empq_cliopt *a, int argc, char **argv)
{
    if (a->code != 0)
        return 0;
    if (!a->started) {
        optind = 0; /* glibc: start over (empq's main read the global options) */
        opterr = 0; /* the errors are ours */
        a->started = 1;
        a->nargs = 0;
        memset(a->args, 0, sizeof a->args);
    }
    char letters[64] = ":h";
    if (a->shortopts != NULL && strlen(a->shortopts) < sizeof letters - 2)
        memcpy(letters + 2, a->shortopts, strlen(a->shortopts) + 1);
    int c = getopt_long(argc, argv, letters, a->opts, &a->index);
    if (c == 'h' || c == EMPQ_CLIOPT_HELP) {
        a->usage(stdout);
        return 0; /* a->code is 0 */
    }
    if (c == EMPQ_CLIOPT_VERSION) {
        empq_cliopt_print_version(a->prog);
        return 0;
    }
    if (c == '?' || c == ':') {
        char letter[3];
        a->code = empq_cliopt_error(a->prog, a->cmd, c == ':' ? EMPQ_CLIOPT_MISSING : EMPQ_CLIOPT_UNKNOWN,
                                    refused_in(a, argv, letter), a->usage);
        return 0;
    }
    if (c != -1)
        return c;
    for (int i = optind; i < argc; i++) { /* getopt_long moved them to the end */
        if (a->nargs < a->max_args && a->nargs < 4) {
            a->args[a->nargs++] = argv[i];
            continue;
        }
        if (a->max_args == 1 && a->too_many != NULL) {
            fprintf(stderr, "%s: ", a->prog);
            if (a->cmd != NULL)
                fprintf(stderr, "%s: ", a->cmd);
            fprintf(stderr, "%s (got '%s' and '%s')\n", a->too_many, a->args[0], argv[i]);
            a->code = EMPQ_CLIOPT_USAGE;
            return 0;
        }
        a->code = empq_cliopt_error(a->prog, a->cmd, EMPQ_CLIOPT_UNEXPECTED, argv[i], a->usage);
        return 0;
    }
    return -1;
}
