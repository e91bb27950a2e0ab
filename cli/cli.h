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
#include "empq/cliopt.h"
#include "empq/dataset.h"
#include "empq/error.h"
#include "empq/store.h"

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
int cli__cmd_judge(int argc, char **argv);

/* Prints "empq: <formatted>\n" on stderr. */
void cli__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $EMPQ_REDIS_URL or the default; $EMPQ_BROKER_CONTROL or the default. */
const char *cli__default_redis(void);
const char *cli__default_control(void);

/* Parses a decimal count for option opt into *out (0..max). Prints the error
 * and returns CLI_USAGE when s is not one. */
int cli__parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out);

/* ---- options: empq_cliopt (include/empq/cliopt.h) with prog "empq" ---- */

enum { CLI_OPT_HELP = EMPQ_CLIOPT_HELP, CLI_OPT = EMPQ_CLIOPT_FIRST };
#define CLI_OPT_HELP_ENTRY EMPQ_CLIOPT_HELP_ENTRY

/* A command's options: an empq_cliopt made with designated initialisers
 * (cmd, opts, usage, and max_args/too_many when it takes a positional
 * argument); prog is set by cli__getopt. */
typedef empq_cliopt cli__args;

/* empq_cliopt_next with prog "empq": errors read "empq: CMD: ...". */
int cli__getopt(cli__args *a, int argc, char **argv);

/* cli__parse_u64 of optarg for the current option, by its long name. On an
 * error a->code is CLI_USAGE, so the next cli__getopt returns 0. */
void cli__opt_u64(cli__args *a, uint64_t max, uint64_t *out);

/* Seconds for a person: "42s", "3m05s", "2h10m"; "-" when s < 0 (unknown).
 * Returns buf. */
const char *cli__fmt_secs(double s, char *buf, size_t len);

/* The screen of `empq status --watch` for one run, width x height, as plain
 * lines on f: the headline (run, %, ETA) first, no line wider than width
 * (columns; UTF-8 kept whole), at most height lines; the slowest emotions
 * (all with all_emotions); under a source, a line for its stop reason,
 * unusable reason or dead jobs by reason. rate and eta: -1 when unknown. */
void cli__status_screen(FILE *f, const Empq__RunStatus *r, double rate, double eta, int width, int height,
                        int all_emotions);

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
 * dataset (too many jobs included: nothing is written), CLI_FAIL when the
 * broker answered and refused the run (what this call wrote is removed from
 * Redis again; run_id stays empty), CLI_SERVICE when Redis or the broker
 * could not be reached (the run id is set when the run reached Redis but
 * the broker did not answer: the broker loads it when it runs). The error
 * is printed. */
int cli__submit(const cli__submit_opts *o, char *run_id, size_t len, uint64_t *jobs);

/* Sets *p to a new prompt of the given index whose id, emotion, situation,
 * prompt and sentiment point into d (borrowed: d must outlive p); the
 * human response and the judged response are left unset. */
void cli__prompt_init(Empq__Prompt *p, uint32_t index, const empq_dialogue *d);

/* The second half of cli__submit, for a caller that built the prompts
 * itself (`empq judge`): writes the run of spec with the n prompts pp
 * (o->spec_path, o->prompts unused) to Redis and tells the broker. Returns
 * and prints like cli__submit. spec and pp stay the caller's. */
int cli__submit_run(const cli__submit_opts *o, Empq__RunSpec *spec, Empq__Prompt **pp, size_t n,
                    char *run_id, size_t len, uint64_t *jobs);

/* Opens Redis at url for a command. CLI_OK with *out the caller's
 * (empq_store_close); otherwise prints "cannot reach Redis: ..." and
 * returns CLI_USAGE (a malformed URL) or CLI_SERVICE, *out NULL. */
int cli__store_open(const char *url, int timeout_ms, empq_store **out);

/* One control round trip with its own ZeroMQ context. On EMPQ_OK *reply is
 * the caller's (empq__control_reply__free_unpacked). */
int cli__control(const char *endpoint, const Empq__ControlRequest *req, int timeout_ms,
                 Empq__ControlReply **reply, empq_error *err);

#endif
