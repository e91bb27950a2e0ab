/* main.c: `empq`, the command line: dispatches to cli/cmd_*.c. */
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
               "  assign RUN         the rating plan: slots for the rating site, plan.csv/json\n"
               "  ratings export|status|reclaim RUN  the ratings the rating site collected\n"
               "  keygen --out DIR [--name N]  a CURVE keypair (N.key secret, N.pub public)\n"
               "global options (before COMMAND): --curve-secret FILE --curve-server-pub FILE\n"
               "environment: EMPQ_REDIS_URL, EMPQ_BROKER_CONTROL, EMPQ_CURVE_SECRET, EMPQ_CURVE_SERVER_PUB\n");
}

int main(int argc, char **argv)
{
    empq_log_init("empq", EMPQ_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    /* CURVE keys for the broker's control socket, read by cli__control */
    while (argc >= 3 && (strcmp(argv[1], "--curve-secret") == 0 || strcmp(argv[1], "--curve-server-pub") == 0)) {
        setenv(strcmp(argv[1], "--curve-secret") == 0 ? "EMPQ_CURVE_SECRET" : "EMPQ_CURVE_SERVER_PUB", argv[2], 1);
        argc -= 2;
        argv += 2;
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
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
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    cli__err("unknown command '%s'", cmd);
    usage(stderr);
    return CLI_USAGE;
}
