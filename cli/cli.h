/* cli.h: the `empq` command line: one file per command (cmd_*.c), shared
 * helpers in common.c.
 *
 * Exit codes: 0 ok; 1 the command ran and found a problem (a dataset that
 * does not load, an export with missing jobs); 2 bad usage or bad input
 * (unknown option, a spec or dataset that is wrong); 3 a service is
 * unreachable or failed (Redis, the broker). Every error is one line on
 * stderr, "empq: <what and where>". */
#ifndef EMPQ_CLI_H
#define EMPQ_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "empq.pb-c.h"
#include "empq/error.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_SERVICE = 3 };

#define CLI_DEFAULT_REDIS "redis://127.0.0.1:6379"
#define CLI_DEFAULT_CONTROL "tcp://127.0.0.1:5556"
#define CLI_CONTROL_TIMEOUT_MS 3000

/* The commands: argv[0] is the command name. Each returns an exit code. */
int cli__cmd_submit(int argc, char **argv);
int cli__cmd_status(int argc, char **argv);
int cli__cmd_export(int argc, char **argv);
int cli__cmd_dataset(int argc, char **argv);
int cli__cmd_demo(int argc, char **argv);
int cli__cmd_analyze(int argc, char **argv);
int cli__cmd_assign(int argc, char **argv);
int cli__cmd_ratings(int argc, char **argv);
int cli__cmd_keygen(int argc, char **argv);
int cli__cmd_rerun(int argc, char **argv);
int cli__cmd_cancel(int argc, char **argv);
int cli__cmd_pause(int argc, char **argv);
int cli__cmd_resume(int argc, char **argv);
int cli__cmd_workers(int argc, char **argv);

/* Prints "empq: <formatted>\n" on stderr. */
void cli__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $EMPQ_REDIS_URL or the default; $EMPQ_BROKER_CONTROL or the default. */
const char *cli__default_redis(void);
const char *cli__default_control(void);

/* Parses a decimal count for option opt into *out (0..max). Prints the error
 * and returns CLI_USAGE when s is not one. */
int cli__parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out);

/* ---- options: getopt_long with the commands' shared wording ---- */

/* The val of --help, and the first val of a command's own long options: above
 * every char, so an error can tell a short option from a long one. */
enum { CLI_OPT_HELP = 0x100, CLI_OPT };
#define CLI_OPT_HELP_ENTRY {"help", no_argument, NULL, CLI_OPT_HELP}

/* How a command names an unknown option: "unknown option 'X'" (a missing
 * value is "X needs a value"), "unknown argument 'X'" (likewise), or
 * "unknown option or missing value 'X'" for both. */
enum { CLI_ARGS_OPTION, CLI_ARGS_ARGUMENT, CLI_ARGS_EITHER };

/* One command's options for cli__getopt, made with designated initialisers:
 * cmd, opts, usage and when needed style and one; the rest start at 0. */
typedef struct cli__args {
    const char *cmd;           /* "export", "dataset check": errors read "empq: CMD: ..." */
    const struct option *opts; /* ends with {0}, holds CLI_OPT_HELP_ENTRY; vals CLI_OPT and up */
    void (*usage)(FILE *f);    /* stdout after -h/--help, stderr after an unknown option */
    int style;                 /* CLI_ARGS_* */
    const char *one;           /* takes one positional argument: the error for a second one,
                                  "one run at a time"; NULL: none */
    const char *arg;           /* out: the positional argument, NULL when none was given */
    int code;                  /* the exit code once cli__getopt returned 0; a case of the
                                  caller's switch sets it (not CLI_OK) to stop there */
    int index;                 /* cli__getopt's own: the current long option in opts */
    int started;               /* cli__getopt's own: getopt_long was set up */
} cli__args;

/* getopt_long over argv (argv[0] is the command) with -h, --help and the long
 * options of a->opts; options and the positional argument may come in any
 * order. Returns the next option's val, optarg holding its value; -1 when all
 * are read (a->arg set); 0 when the command should exit with a->code: after
 * --help (CLI_OK, the usage printed), a usage error (printed, CLI_USAGE) or a
 * code the caller stored in a->code. */
int cli__getopt(cli__args *a, int argc, char **argv);

/* After getopt_long returned '?' or ':' (opterr 0, long option vals above
 * UCHAR_MAX): the refused option as typed ("--bogus", "--json=1"), or "-x" in
 * letter for a short one. */
const char *cli__refused(char **argv, char letter[3]);

/* cli__parse_u64 of optarg for the current option, by its long name. On an
 * error a->code is CLI_USAGE, so the next cli__getopt returns 0. */
void cli__opt_u64(cli__args *a, uint64_t max, uint64_t *out);

/* A new run id "r-YYYYMMDD-HHMMSS-xxxx" (UTC, 4 random hex digits). */
void cli__run_id(char *buf, size_t len);

/* What `empq submit` does, for the command and for the demo. */
typedef struct cli__submit_opts {
    const char *spec_path;  /* not NULL */
    const char *redis_url;  /* not NULL */
    const char *control;    /* broker control endpoint, not NULL */
    uint64_t prompts;       /* 0: the spec's selection */
    const char *run_id;     /* NULL: a new id */
    int force;              /* fresh generations, do not read the cache */
    int timeout_ms;         /* broker answer deadline */
    uint32_t dry_run;       /* > 0: print the requests of this many prompts per model, write nothing */
} cli__submit_opts;

/* Loads the spec and dataset, selects, writes the run to Redis and tells the
 * broker (with o->dry_run: prints the requests instead, touches nothing). On success run_id (len >= 64) holds the run id and *jobs (may be
 * NULL) the job total. Returns an exit code: CLI_USAGE for a wrong spec or
 * dataset, CLI_SERVICE when Redis or the broker failed (the run id is set
 * when the run reached Redis but the broker did not answer). The error is
 * printed. */
int cli__submit(const cli__submit_opts *o, char *run_id, size_t len, uint64_t *jobs);

/* One control round trip with its own ZeroMQ context. On EMPQ_OK *reply is
 * the caller's (empq__control_reply__free_unpacked). */
int cli__control(const char *endpoint, const Empq__ControlRequest *req, int timeout_ms,
                 Empq__ControlReply **reply, empq_error *err);

#endif
