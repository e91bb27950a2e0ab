/* main.c: `empq`, the command line: dispatches to cli/cmd_*.c. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "empq/log.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq COMMAND [options]   (empq COMMAND --help for its options)\n"
               "  submit SPEC        write a run to Redis and start it on the broker\n"
               "  status [RUN] [--watch] [--json]   progress per run, source and emotion; rate, ETA\n"
               "  rerun RUN [--emotion E] [--model A] [--prompt ID] [--dead-only] [--force]\n"
               "                     run a subset again (from the cache unless --force)\n"
               "  cancel|pause|resume RUN   stop, hold or restart a run's dispatch\n"
               "  workers            the workers: host, credit, in flight, done, errors\n"
               "  export RUN --out FILE   write the run's responses.jsonl (at any time; says if incomplete)\n"
               "  dataset synth|check     make a synthetic dataset, or check a file\n"
               "  demo               a whole study on this machine, start to end\n"
               "  analyze --ratings FILE --out DIR   the report: tables and charts from ratings\n"
               "  judge SPEC         rate responses with LLM judges, as a run; judge export RUN\n"
               "                     --out FILE writes its judge-ratings.csv\n"
               "  assign RUN         the rating plan: slots for the rating site, plan.csv/json\n"
               "  ratings export|status|reclaim RUN  the ratings the rating site collected\n"
               "  keygen --out DIR [--name N]  a CURVE keypair (N.key secret, N.pub public)\n"
               "global options (before COMMAND): --curve-secret FILE --curve-server-pub FILE, --version\n"
               "environment: EMPQ_REDIS_URL, EMPQ_BROKER_CONTROL, EMPQ_CURVE_SECRET, EMPQ_CURVE_SERVER_PUB\n");
}

int main(int argc, char **argv)
{
    empq_log_init("empq", EMPQ_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    /* the global options, up to COMMAND ('+'): CURVE keys for the broker's
     * control socket, read by cli__control */
    enum { SECRET = CLI_OPT, SERVER_PUB };
    static const struct option opts[] = {{"curve-secret", required_argument, NULL, SECRET},
                                         {"curve-server-pub", required_argument, NULL, SERVER_PUB},
                                         CLI_OPT_HELP_ENTRY,
                                         EMPQ_CLIOPT_VERSION_ENTRY,
                                         {0}};
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, "+:h", opts, NULL);
        if (c == -1)
            break;
        if (c == SECRET || c == SERVER_PUB) {
            setenv(c == SECRET ? "EMPQ_CURVE_SECRET" : "EMPQ_CURVE_SERVER_PUB", optarg, 1);
            continue;
        }
        if (c == 'h' || c == CLI_OPT_HELP) {
            usage(stdout);
            return CLI_OK;
        }
        if (c == EMPQ_CLIOPT_VERSION)
            return empq_cliopt_print_version("empq");
        char letter[3];
        return empq_cliopt_error("empq", NULL, c == ':' ? EMPQ_CLIOPT_MISSING : EMPQ_CLIOPT_UNKNOWN,
                                 empq_cliopt_refused(argv, letter), usage);
    }
    if (optind >= argc) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[optind];
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"submit", cli__cmd_submit},   {"status", cli__cmd_status}, {"export", cli__cmd_export},
        {"dataset", cli__cmd_dataset}, {"demo", cli__cmd_demo},
        {"analyze", cli__cmd_analyze},
        {"assign", cli__cmd_assign},   {"ratings", cli__cmd_ratings},
        {"keygen", cli__cmd_keygen},
        {"rerun", cli__cmd_rerun},     {"cancel", cli__cmd_cancel}, {"pause", cli__cmd_pause},
        {"resume", cli__cmd_resume},   {"workers", cli__cmd_workers},
        {"judge", cli__cmd_judge},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - optind, argv + optind);
    cli__err("unknown command '%s'", cmd);
    usage(stderr);
    return CLI_USAGE;
}
