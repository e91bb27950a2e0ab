/* cmd_analyze.c: `empq analyze --ratings FILE --out DIR`: the report
 * (report.html, report.md, tables/NAME.csv) from ratings and responses. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "empq/analysis.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq analyze --ratings FILE --out DIR [--layout welivita-pu|long]\n"
               "                    [--responses responses.jsonl] [--baseline NAME]\n"
               "  writes DIR/report.html, DIR/report.md and DIR/tables/*.csv\n"
               "  --ratings FILE    ratings CSV: a Welivita-Pu release file (one row per dialogue,\n"
               "                    rating_<condition> columns) or the rating site's long export\n"
               "  --layout L        welivita-pu (default) or long (participant, condition, batch,\n"
               "                    item, position, rating[, emotion, sentiment])\n"
               "  --responses F     responses.jsonl for the style section (default with the\n"
               "                    welivita-pu layout: the file's response_<condition> columns)\n"
               "  --baseline NAME   the reference condition (default human)\n"
               "  formulas: docs/analysis.md\n");
}

int cli__cmd_analyze(int argc, char **argv)
{
    const char *ratings = NULL, *out = NULL, *layout_s = "welivita-pu", *responses = NULL, *baseline = "human";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return CLI_OK;
        }
        const char **slot = strcmp(a, "--ratings") == 0     ? &ratings
                            : strcmp(a, "--out") == 0       ? &out
                            : strcmp(a, "--layout") == 0    ? &layout_s
                            : strcmp(a, "--responses") == 0 ? &responses
                            : strcmp(a, "--baseline") == 0  ? &baseline
                                                            : NULL;
        if (slot == NULL) {
            cli__err("analyze: unknown argument '%s'", a);
            usage(stderr);
            return CLI_USAGE;
        }
        if (i + 1 >= argc) {
            cli__err("analyze: %s needs a value", a);
            return CLI_USAGE;
        }
        *slot = argv[++i];
    }
    if (ratings == NULL || out == NULL) {
        cli__err("analyze: %s is required", ratings == NULL ? "--ratings FILE" : "--out DIR");
        usage(stderr);
        return CLI_USAGE;
    }
    empq_ratings_layout layout;
    if (empq_analysis_layout_parse(layout_s, &layout) != EMPQ_OK) {
        cli__err("analyze: --layout '%s': expected welivita-pu or long", layout_s);
        return CLI_USAGE;
    }

    empq_error err = {0};
    empq_ratings *r = NULL;
    empq_corpus *corpus = NULL;
    empq_analysis *a = NULL;
    int rc = empq_ratings_load(ratings, layout, &r, &err);
    if (rc != EMPQ_OK) {
        cli__err("analyze: %s", err.msg);
        return rc == EMPQ_ENOMEM ? CLI_FAIL : CLI_USAGE;
    }
    const char *responses_name = responses;
    if (responses != NULL) {
        rc = empq_corpus_load_jsonl(responses, &corpus, &err);
    } else if (layout == EMPQ_LAYOUT_WELIVITA_PU) {
        rc = empq_corpus_load_welivita(ratings, &corpus, &err);
        if (rc == EMPQ_ENOTFOUND) /* no response columns: no style section */
            rc = EMPQ_OK;
        responses_name = ratings;
    }
    if (rc != EMPQ_OK) {
        cli__err("analyze: %s", err.msg);
        empq_ratings_free(&r);
        return rc == EMPQ_ENOMEM ? CLI_FAIL : CLI_USAGE;
    }
    rc = empq_analysis_compute(r, corpus, baseline, layout == EMPQ_LAYOUT_WELIVITA_PU, &a, &err);
    if (rc == EMPQ_OK) {
        a->ratings_name = empq_strdup(ratings);
        a->responses_name = corpus != NULL ? empq_strdup(responses_name) : NULL;
        rc = empq_analysis_write(a, out, &err);
    }
    if (rc != EMPQ_OK)
        cli__err("analyze: %s", err.msg);
    else
        printf("%s/report.html, %s/report.md, %s/tables/: %zu ratings, %zu conditions, %zu responses\n", out, out,
               out, r->n, r->n_conds, corpus != NULL ? corpus->n : (size_t)0);
    int code = rc == EMPQ_OK ? CLI_OK : rc == EMPQ_EINVAL ? CLI_USAGE : CLI_FAIL;
    empq_analysis_free(&a);
    empq_corpus_free(&corpus);
    empq_ratings_free(&r);
    return code;
}
