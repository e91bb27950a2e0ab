/* cmd_analyze.c: `empq analyze --ratings FILE --out DIR`: the report
 * (report.html, report.md, report.json, tables/NAME.csv) from ratings and
 * responses, with the run's cost when --spec is given. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "empq/analysis.h"
#include "empq/spec.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq analyze --ratings FILE --out DIR [--layout welivita-pu|long]\n"
               "                    [--responses responses.jsonl] [--baseline NAME]\n"
               "                    [--spec study.yaml] [--judge FILE ...]\n"
               "  writes DIR/report.html, DIR/report.md, DIR/report.json and DIR/tables/*.csv\n"
               "  --ratings FILE    ratings CSV: a Welivita-Pu release file (one row per dialogue,\n"
               "                    rating_<condition> columns) or the rating site's long export\n"
               "  --layout L        welivita-pu (default) or long (participant, condition, batch,\n"
               "                    item, position, rating[, emotion, sentiment])\n"
               "  --responses F     responses.jsonl for the style section (default with the\n"
               "                    welivita-pu layout: the file's response_<condition> columns)\n"
               "  --baseline NAME   the reference condition (default human)\n"
               "  --spec FILE       the run's study.yaml, with --responses: a cost section (per source:\n"
               "                    mode, calls, tokens, the price charged, batch price for a batch\n"
               "                    model, and the cost) in the report and report.json\n"
               "  --judge FILE      judge labels CSV (item, condition, judge, label[, sample, emotion,\n"
               "                    sentiment, length|response]): agreement with the human ratings,\n"
               "                    biases and self-consistency in a judge section\n"
               "  --estimate COND   with --judge: prediction-powered estimates of COND's shares from\n"
               "                    its judge labels and the human ratings it has\n"
               "  --human-subset N  with --estimate: keep human labels for N of COND's responses only\n"
               "                    (stratified by emotion, seeded), as when planning a new model\n"
               "  --seed S          seed of that subset and of the judge bootstraps (default 14)\n"
               "  formulas: docs/analysis.md\n");
}

int cli__cmd_analyze(int argc, char **argv)
{
    enum { RATINGS = CLI_OPT, OUT, LAYOUT, RESPONSES, BASELINE, JUDGE, ESTIMATE, SUBSET, SEED, SPEC };
    static const struct option opts[] = {
        {"ratings", required_argument, NULL, RATINGS},   {"out", required_argument, NULL, OUT},
        {"layout", required_argument, NULL, LAYOUT},     {"responses", required_argument, NULL, RESPONSES},
        {"baseline", required_argument, NULL, BASELINE}, {"judge", required_argument, NULL, JUDGE},
        {"estimate", required_argument, NULL, ESTIMATE}, {"human-subset", required_argument, NULL, SUBSET},
        {"seed", required_argument, NULL, SEED},         {"spec", required_argument, NULL, SPEC},
        CLI_OPT_HELP_ENTRY,
        {0}};
    cli__args args = {.cmd = "analyze", .opts = opts, .usage = usage};
    const char *ratings = NULL, *out = NULL, *layout_s = "welivita-pu", *responses = NULL, *baseline = "human";
    const char *judge = NULL, *spec_path = NULL;
    empq_judge_opts jo = {.seed = 14};
    int c;
    while ((c = cli__getopt(&args, argc, argv)) > 0) {
        switch (c) {
        case RATINGS: ratings = optarg; break;
        case OUT: out = optarg; break;
        case LAYOUT: layout_s = optarg; break;
        case RESPONSES: responses = optarg; break;
        case BASELINE: baseline = optarg; break;
        case JUDGE: judge = optarg; break;
        case SPEC: spec_path = optarg; break;
        case ESTIMATE: jo.estimate_cond = optarg; break;
        case SUBSET:
        case SEED: {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (optarg[0] == '\0' || optarg[0] == '-' || *end != '\0' || (c == SUBSET && v == 0)) {
                cli__err("analyze: --%s '%s': expected a %s integer", c == SUBSET ? "human-subset" : "seed",
                         optarg, c == SUBSET ? "positive" : "non-negative");
                return CLI_USAGE;
            }
            if (c == SUBSET)
                jo.human_subset = (size_t)v;
            else
                jo.seed = v;
            break;
        }
        }
    }
    if (c == 0)
        return args.code;
    if (ratings == NULL || out == NULL) {
        cli__err("analyze: %s is required", ratings == NULL ? "--ratings FILE" : "--out DIR");
        usage(stderr);
        return CLI_USAGE;
    }
    if (judge == NULL && (jo.estimate_cond != NULL || jo.human_subset > 0)) {
        cli__err("analyze: --estimate and --human-subset need --judge FILE");
        return CLI_USAGE;
    }
    if (spec_path != NULL && responses == NULL) {
        cli__err("analyze: --spec needs --responses responses.jsonl (the cost is counted from its lines)");
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
    empq_judge_labels *jl = NULL;
    Empq__RunSpec *spec = NULL;
    empq_cost *cost = NULL;
    int rc = empq_ratings_load(ratings, layout, &r, &err);
    if (rc == EMPQ_OK && judge != NULL)
        rc = empq_judge_labels_load(judge, &jl, &err);
    if (rc == EMPQ_OK && spec_path != NULL) {
        rc = empq_spec_load(spec_path, &spec, &err);
        if (rc == EMPQ_OK)
            rc = empq_cost_compute(spec, spec_path, responses, &cost, &err);
        if (spec != NULL)
            empq__run_spec__free_unpacked(spec, NULL);
    }
    if (rc != EMPQ_OK) {
        cli__err("analyze: %s", err.msg);
        empq_ratings_free(&r);
        empq_judge_labels_free(&jl);
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
        empq_judge_labels_free(&jl);
        empq_cost_free(&cost);
        return rc == EMPQ_ENOMEM ? CLI_FAIL : CLI_USAGE;
    }
    rc = empq_analysis_compute(r, corpus, baseline, layout == EMPQ_LAYOUT_WELIVITA_PU, &a, &err);
    if (rc == EMPQ_OK) {
        a->ratings_name = empq_strdup(ratings);
        a->responses_name = corpus != NULL ? empq_strdup(responses_name) : NULL;
        a->cost = cost;
        if (jl != NULL)
            rc = empq_judge_compute(a, r, jl, &jo, judge, &err);
        if (rc == EMPQ_OK)
            rc = empq_analysis_write(a, out, &err);
    }
    if (rc != EMPQ_OK)
        cli__err("analyze: %s", err.msg);
    else if (cost != NULL)
        printf("%s/report.html, %s/report.md, %s/report.json, %s/tables/: %zu ratings, %zu conditions, "
               "%zu responses, cost %.4f\n",
               out, out, out, out, r->n, r->n_conds, corpus != NULL ? corpus->n : (size_t)0, cost->total);
    else
        printf("%s/report.html, %s/report.md, %s/report.json, %s/tables/: %zu ratings, %zu conditions, "
               "%zu responses\n",
               out, out, out, out, r->n, r->n_conds, corpus != NULL ? corpus->n : (size_t)0);
    int code = rc == EMPQ_OK ? CLI_OK : rc == EMPQ_EINVAL ? CLI_USAGE : CLI_FAIL;
    empq_analysis_free(&a);
    empq_corpus_free(&corpus);
    empq_ratings_free(&r);
    empq_judge_labels_free(&jl);
    empq_cost_free(&cost);
    return code;
}
