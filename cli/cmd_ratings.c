/* cmd_ratings.c: `empq ratings export|status|reclaim RUN`: the ratings the
 * rating site collected. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "empq/ratings.h"
#include "empq/store.h"
#include "empq/util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empq ratings export RUN --out DIR [--include-partial]\n"
            "       empq ratings status RUN [--json]\n"
            "       empq ratings reclaim RUN\n"
            "  export   DIR/ratings.csv (Welivita-Pu layout: one row per dialogue, rating_<condition>,\n"
            "           1 = Bad, 2 = Okay, 3 = Good), DIR/ratings-long.csv (one row per rating:\n"
            "           `empq analyze --layout long`), DIR/participants.csv; finished sessions only\n"
            "           unless --include-partial\n"
            "  status   slots open, active, done; claims, reclaims, ratings\n"
            "  reclaim  put slots idle past the timeout back into the pool now\n"
            "  --redis URL   Redis (default $EMPQ_REDIS_URL or " CLI_DEFAULT_REDIS ")\n");
}

int cli__cmd_ratings(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "export") != 0 && strcmp(sub, "status") != 0 && strcmp(sub, "reclaim") != 0) {
        cli__err("ratings: unknown subcommand '%s'", sub);
        usage(stderr);
        return CLI_USAGE;
    }
    enum { PARTIAL = CLI_OPT, JSON, OUT, REDIS };
    static const struct option opts[] = {
        {"include-partial", no_argument, NULL, PARTIAL}, {"json", no_argument, NULL, JSON},
        {"out", required_argument, NULL, OUT},           {"redis", required_argument, NULL, REDIS},
        CLI_OPT_HELP_ENTRY,                              {0}};
    cli__args a = {.cmd = "ratings", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one run at a time"};
    const char *out = NULL, *url = cli__default_redis();
    int partial = 0, json = 0, c;
    while ((c = cli__getopt(&a, argc - 1, argv + 1)) > 0) { /* argv[1] is the subcommand */
        switch (c) {
        case PARTIAL: partial = 1; break;
        case JSON: json = 1; break;
        case OUT: out = optarg; break;
        case REDIS: url = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    const char *run = a.args[0];
    if (run == NULL || (strcmp(sub, "export") == 0 && out == NULL)) {
        cli__err("ratings %s: %s", sub, run == NULL ? "which run?" : "--out DIR is required");
        usage(stderr);
        return CLI_USAGE;
    }
    empq_store *s = NULL;
    int opened = cli__store_open(url, 5000, &s);
    if (opened != CLI_OK)
        return opened;
    empq_error err = {0};
    int rc;
    int ret = CLI_OK;
    if (strcmp(sub, "export") == 0) {
        empq_ratings_export_stats st;
        rc = empq_ratings_export(s, run, out, partial, &st, &err);
        if (rc == EMPQ_OK)
            fprintf(stderr,
                    "empq: wrote %s/ratings.csv (%zu dialogues), ratings-long.csv (%zu ratings), "
                    "participants.csv; slots %zu, finished %zu, unfinished %zu%s; attention checks "
                    "%zu, failed %zu\n",
                    out, st.dialogues, st.ratings, st.slots, st.done, st.partial,
                    partial ? " (included)" : " (left out)", st.checks, st.checks_failed);
    } else if (strcmp(sub, "reclaim") == 0) {
        size_t n = 0;
        rc = empq_ratings_reclaim(s, run, empq_now_ms(), &n, &err);
        if (rc == EMPQ_OK)
            printf("%zu\n", n);
    } else {
        empq_ratings_counts c;
        rc = empq_ratings_counts_get(s, run, empq_now_ms(), &c, &err);
        if (rc == EMPQ_OK && json)
            printf("{\"run\": \"%s\", \"slots\": %" PRIu64 ", \"open\": %" PRIu64
                   ", \"active\": %" PRIu64 ", \"done\": %" PRIu64 ", \"claimed\": %" PRIu64
                   ", \"reclaimed\": %" PRIu64 ", \"ratings\": %" PRIu64 "}\n",
                   run, c.slots, c.open, c.active, c.done, c.claimed, c.reclaimed, c.ratings);
        else if (rc == EMPQ_OK)
            printf("run %s: slots %" PRIu64 ": open %" PRIu64 ", active %" PRIu64 ", done %" PRIu64
                   "; claims %" PRIu64 ", reclaimed %" PRIu64 ", ratings %" PRIu64 "\n",
                   run, c.slots, c.open, c.active, c.done, c.claimed, c.reclaimed, c.ratings);
    }
    if (rc != EMPQ_OK) {
        cli__err("ratings %s: %s", sub, err.msg);
        ret = rc == EMPQ_ESTORE ? CLI_SERVICE : CLI_FAIL;
    }
    empq_store_close(&s);
    return ret;
}
