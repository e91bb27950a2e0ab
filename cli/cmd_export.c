/* cmd_export.c: `empq export RUN --out FILE`: responses.jsonl from Redis. */
#include <stdio.h>

#include "cli.h"
#include "empq/export.h"
#include "empq/store.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq export RUN --out FILE [--redis URL]\n"
               "  writes FILE (responses.jsonl) and, when jobs died, dead.jsonl beside it; works\n"
               "  at any time: says whether the run is complete or how many jobs are missing\n"
               "  --redis URL   Redis (default $EMPQ_REDIS_URL or " CLI_DEFAULT_REDIS ")\n");
}

int cli__cmd_export(int argc, char **argv)
{
    enum { OUT = CLI_OPT, REDIS };
    static const struct option opts[] = {
        {"out", required_argument, NULL, OUT}, {"redis", required_argument, NULL, REDIS}, CLI_OPT_HELP_ENTRY, {0}};
    cli__args a = {.cmd = "export", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one run at a time"};
    const char *out = NULL, *url = cli__default_redis();
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case OUT: out = optarg; break;
        case REDIS: url = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    const char *run = a.args[0];
    if (run == NULL || out == NULL) {
        cli__err("export: %s", run == NULL ? "which run? (empq export RUN --out FILE)"
                                            : "--out FILE is required");
        usage(stderr);
        return CLI_USAGE;
    }
    empq_store *s = NULL;
    int opened = cli__store_open(url, 2000, &s);
    if (opened != CLI_OK)
        return opened;
    empq_error err = {0};
    int rc;
    empq_export_stats st = {0};
    rc = empq_export_responses(s, run, out, &st, &err);
    empq_store_close(&s);
    if (rc != EMPQ_OK) {
        cli__err("export: %s", err.msg);
        return rc == EMPQ_ENOTFOUND ? CLI_FAIL : rc == EMPQ_ESTORE ? CLI_SERVICE : CLI_FAIL;
    }
    fprintf(stderr, "empq: wrote %zu lines to %s (jobs %zu, cache hits %zu, dead %zu, missing %zu)\n",
            st.lines, out, st.total, st.cache_hits, st.dead, st.missing);
    if (st.missing > 0)
        fprintf(stderr, "empq: run %s is not finished: %zu jobs have no result yet (export again later)\n", run,
                st.missing);
    else
        fprintf(stderr, "empq: run %s is complete\n", run);
    return CLI_OK;
}
