/* cliopt.h: the command-line conventions the five programs share: one
 * wording for a refused option, one exit code for a usage error, --help and
 * --version.
 *
 * Every usage error is one line on stderr, then the usage:
 *   PROG: [CMD: ]unknown option 'X'
 *   PROG: [CMD: ]option 'X' needs a value
 *   PROG: [CMD: ]unexpected argument 'X'
 * PROG is the program's name (never argv[0]'s path), CMD the subcommand of
 * `empq`; the exit code is EMPQ_CLIOPT_USAGE (2). */
#ifndef EMPQ_CLIOPT_H
#define EMPQ_CLIOPT_H

#include <getopt.h>
#include <stdio.h>

/* The exit code of a usage error, in every program. */
#define EMPQ_CLIOPT_USAGE 2

/* The vals of --help and --version, and the first val of a program's own long
 * options: above every char, so an error can tell a short option from a long
 * one. */
enum { EMPQ_CLIOPT_HELP = 0x100, EMPQ_CLIOPT_VERSION, EMPQ_CLIOPT_FIRST };
#define EMPQ_CLIOPT_HELP_ENTRY {"help", no_argument, NULL, EMPQ_CLIOPT_HELP}
#define EMPQ_CLIOPT_VERSION_ENTRY {"version", no_argument, NULL, EMPQ_CLIOPT_VERSION}

/* What a usage error is about. */
typedef enum empq_cliopt_kind {
    EMPQ_CLIOPT_UNKNOWN,    /* an option the program does not have */
    EMPQ_CLIOPT_MISSING,    /* an option that takes a value, given none */
    EMPQ_CLIOPT_UNEXPECTED, /* a positional argument the program does not take */
} empq_cliopt_kind;

/* The version ("0.1.0") and the git commit the build came from ("3f2a9c1",
 * "3f2a9c1-dirty", or "unknown" when not built from a git checkout). Static
 * strings. */
const char *empq_cliopt_version_string(void);
const char *empq_cliopt_commit(void);

/* Prints "PROG VERSION (commit COMMIT)" on stdout. Returns 0, the exit code. */
int empq_cliopt_print_version(const char *prog);

/* Prints the one line of a usage error on stderr (see above), then usage(f)
 * on stderr when usage is not NULL. prog and what must not be NULL; cmd may
 * be NULL. Returns EMPQ_CLIOPT_USAGE. */
int empq_cliopt_error(const char *prog, const char *cmd, empq_cliopt_kind kind, const char *what,
                      void (*usage)(FILE *f));

/* One program's (or subcommand's) options for empq_cliopt_next, made with
 * designated initialisers; the fields marked "own" start at 0. */
typedef struct empq_cliopt {
    const char *prog;          /* "empq-broker"; not NULL */
    const char *cmd;           /* "export", "dataset check" or NULL */
    const struct option *opts; /* ends with {0}; holds EMPQ_CLIOPT_HELP_ENTRY and, for a
                                  program, EMPQ_CLIOPT_VERSION_ENTRY */
    const char *shortopts;     /* getopt letters besides h ("b:r:"), NULL: none */
    void (*usage)(FILE *f);    /* stdout after -h/--help, stderr after a usage error */
    int max_args;              /* positional arguments taken (0: none) */
    const char *too_many;      /* when max_args is 1: the error for a second one, e.g.
                                  "one run at a time"; NULL: "unexpected argument" */
    const char *args[4];       /* out: the positional arguments, NULL past the last */
    int nargs;                 /* out: how many */
    int code;                  /* the exit code once empq_cliopt_next returned 0; the caller
                                  may set it (not 0) to stop at the next call */
    int index;                 /* own: the current long option in opts */
    int started;               /* own: getopt_long was set up */
} empq_cliopt;

/* getopt_long over argv (argv[0] is the program or command) with -h, --help,
 * --version when opts holds it, and the options of a; options and positional
 * arguments may come in any order. Returns the next option's val (optarg
 * holds its value); -1 when all are read (args set); 0 when the program
 * should exit with a->code: after --help or --version (0, printed on
 * stdout), after a usage error (printed, EMPQ_CLIOPT_USAGE), or with a code
 * the caller stored in a->code. max_args must be at most 4. */
int empq_cliopt_next(empq_cliopt *a, int argc, char **argv);

/* After getopt_long returned '?' or ':' (opterr 0, long option vals above
 * UCHAR_MAX): the refused option as typed ("--bogus", "--json=1"), or "-x" in
 * letter for a short one. The return points into argv or letter. */
const char *empq_cliopt_refused(char **argv, char letter[3]);

#endif
