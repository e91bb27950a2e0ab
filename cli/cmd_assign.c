/* cmd_assign.c: `empq assign RUN`: the rating plan of a finished run:
 * plan.csv and plan.json, and the slots in Redis for the rating site. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "empq/analysis.h"
#include "empq/assign.h"
#include "empq/export.h"
#include "empq/ratings.h"
#include "empq/store.h"
#include "empq/util.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empq assign RUN [options]\n"
            "  every source of the run (human and each model) is a condition; the prompts are\n"
            "  cut into batches balanced over the emotions, the same batches in every condition\n"
            "  --participants-per-condition N  check: must equal batches x raters (default: derived)\n"
            "  --items N                 dialogues per participant (default 10)\n"
            "  --raters-per-item N       participants per (condition, batch) (default 1)\n"
            "  --seed S                  batches, orders and checks from this seed (default 1)\n"
            "  --human-subset N          plan only N prompts, drawn at random (--seed) stratified by\n"
            "                            emotion: the human subset that calibrates a judge's estimates\n"
            "                            (empq analyze --judge --estimate; docs/analysis.md)\n"
            "  --attention-checks P,...  0-based positions of instructed-response items\n"
            "  --completion-code CODE    shown at the end (Prolific completion code)\n"
            "  --timeout-min M           idle minutes before a slot goes back to the pool (default 30)\n"
            "  --timeout-s S             the same in seconds (tests)\n"
            "  --out DIR                 write DIR/plan.csv and DIR/plan.json (default runs/RUN)\n"
            "  --replace                 replace a stored plan nobody has started\n"
            "  --no-store                write the files only\n"
            "  --redis URL               Redis (default $EMPQ_REDIS_URL or " CLI_DEFAULT_REDIS ")\n");
}

static int parse_checks(const char *s, empq_assign_opts *o)
{
    o->n_checks = 0;
    const char *q = s;
    while (*q != '\0') {
        char num[24];
        size_t n = strcspn(q, ",");
        if (n == 0 || n >= sizeof num) {
            cli__err("assign: --attention-checks takes positions like 4,9; got '%s'", s);
            return CLI_USAGE;
        }
        memcpy(num, q, n);
        num[n] = '\0';
        uint64_t v;
        if (cli__parse_u64("--attention-checks", num, 1000, &v) != CLI_OK)
            return CLI_USAGE;
        if (o->n_checks == EMPQ_ASSIGN_MAX_CHECKS) {
            cli__err("assign: at most %d attention checks", EMPQ_ASSIGN_MAX_CHECKS);
            return CLI_USAGE;
        }
        o->checks[o->n_checks++] = (uint32_t)v;
        q += n;
        if (*q == ',')
            q++;
    }
    return CLI_OK;
}

static int write_file(const char *dir, const char *name, const empq_buf *b)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    empq_error err = {0};
    if (empq_write_file_atomic(path, b->data != NULL ? b->data : "", b->len, &err) != EMPQ_OK) {
        cli__err("assign: %s", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Keeps k of the usable prompts (stratified by emotion, seeded) usable. */
static int human_subset(const char *const *emotions, uint8_t *usable, uint32_t n, uint64_t k, uint64_t seed)
{
    int *strata = malloc((n ? n : 1) * sizeof *strata);
    uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
    unsigned char *chosen = malloc(n ? n : 1);
    uint32_t m = 0;
    int rc = strata != NULL && idx != NULL && chosen != NULL ? EMPQ_OK : EMPQ_ENOMEM;
    for (uint32_t i = 0; rc == EMPQ_OK && i < n; i++) {
        if (!usable[i])
            continue;
        uint32_t j = 0; /* the stratum: that of the first usable prompt with this emotion */
        while (j < m && strcmp(emotions[idx[j]], emotions[i]) != 0)
            j++;
        strata[m] = j < m ? strata[j] : (int)m;
        idx[m++] = i;
    }
    if (rc == EMPQ_OK)
        rc = empq_analysis_stratified_subset(strata, m, (size_t)k, seed, chosen);
    for (uint32_t j = 0; rc == EMPQ_OK && j < m; j++)
        usable[idx[j]] = chosen[j];
    if (rc == EMPQ_OK)
        fprintf(stderr, "empq: --human-subset: %u of %u usable prompts, stratified by emotion\n",
                (unsigned)(k < m ? k : m), m);
    else
        cli__err("assign: out of memory");
    free(strata);
    free(idx);
    free(chosen);
    return rc == EMPQ_OK ? CLI_OK : CLI_FAIL;
}

int cli__cmd_assign(int argc, char **argv)
{
    const char *run_id = NULL, *out = NULL, *url = cli__default_redis(), *code = NULL;
    empq_assign_opts o;
    empq_assign_opts_default(&o);
    empq_ratings_config cfg;
    empq_ratings_config_default(&cfg);
    enum { REPLACE = CLI_OPT, NO_STORE, PARTICIPANTS, ITEMS, RATERS, SEED, CHECKS, CODE, TIMEOUT_MIN, TIMEOUT_S,
           OUT, REDIS, SUBSET };
    uint64_t subset = 0;
    static const struct option opts[] = {
        {"replace", no_argument, NULL, REPLACE},
        {"no-store", no_argument, NULL, NO_STORE},
        {"participants-per-condition", required_argument, NULL, PARTICIPANTS},
        {"items", required_argument, NULL, ITEMS},
        {"raters-per-item", required_argument, NULL, RATERS},
        {"seed", required_argument, NULL, SEED},
        {"attention-checks", required_argument, NULL, CHECKS},
        {"completion-code", required_argument, NULL, CODE},
        {"timeout-min", required_argument, NULL, TIMEOUT_MIN},
        {"timeout-s", required_argument, NULL, TIMEOUT_S},
        {"out", required_argument, NULL, OUT},
        {"redis", required_argument, NULL, REDIS},
        {"human-subset", required_argument, NULL, SUBSET},
        CLI_OPT_HELP_ENTRY,
        {0}};
    cli__args a = {.cmd = "assign", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one run at a time"};
    int replace = 0, store_it = 1, c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        uint64_t x = 0;
        switch (c) {
        case REPLACE: replace = 1; break;
        case NO_STORE: store_it = 0; break;
        case PARTICIPANTS:
            cli__opt_u64(&a, 10000000, &x);
            o.participants = (uint32_t)x;
            break;
        case ITEMS:
            cli__opt_u64(&a, 200, &x);
            o.items = (uint32_t)x;
            break;
        case RATERS:
            cli__opt_u64(&a, 1000, &x);
            o.raters = (uint32_t)x;
            break;
        case SEED: cli__opt_u64(&a, UINT64_MAX, &o.seed); break;
        case CHECKS: a.code = parse_checks(optarg, &o); break;
        case CODE: code = optarg; break;
        case TIMEOUT_MIN:
            cli__opt_u64(&a, 7 * 24 * 60, &x);
            cfg.timeout_ms = x * 60000u;
            break;
        case TIMEOUT_S:
            cli__opt_u64(&a, 7 * 24 * 3600, &x);
            cfg.timeout_ms = x * 1000u;
            break;
        case OUT: out = optarg; break;
        case REDIS: url = optarg; break;
        case SUBSET: cli__opt_u64(&a, 10000000, &subset); break;
        }
    }
    if (c == 0)
        return a.code;
    run_id = a.args[0];
    if (run_id == NULL) {
        cli__err("assign: which run? (empq assign RUN)");
        usage(stderr);
        return CLI_USAGE;
    }
    if (cfg.timeout_ms == 0) {
        cli__err("assign: the timeout must be at least 1 s");
        return CLI_USAGE;
    }
    cfg.completion_code = code;
    char outbuf[512];
    if (out == NULL) {
        snprintf(outbuf, sizeof outbuf, "runs/%s", run_id);
        out = outbuf;
    }

    empq_store *s = NULL;
    int opened = cli__store_open(url, 5000, &s);
    if (opened != CLI_OK)
        return opened;
    empq_error err = {0};
    int rc;
    int ret = CLI_OK;
    Empq__Run *run = NULL;
    Empq__Prompt **prompts = NULL;
    uint32_t *idx = NULL;
    Empq__Result **results = NULL;
    size_t n_results = 0;
    const char **emotions = NULL, **resp = NULL;
    uint8_t *usable = NULL;
    empq_assign_plan *plan = NULL;
    empq_buf csv = {0}, json = {0};
    const char *conds[EMPQ_ASSIGN_MAX_CONDITIONS];

    rc = empq_store_run_get(s, run_id, &run);
    if (rc != EMPQ_OK) {
        cli__err("assign: run %s: %s", run_id, empq_store_errstr(s));
        ret = rc == EMPQ_ESTORE ? CLI_SERVICE : CLI_FAIL;
        goto out;
    }
    uint32_t n = run->n_prompts, nc = (uint32_t)run->spec->n_models;
    uint32_t samples = empq_export_samples(run->spec);
    empq_ratings_config_from_spec(&cfg, run->spec); /* the spec's rating: consent, questions */
    if (nc == 0 || nc > EMPQ_ASSIGN_MAX_CONDITIONS) {
        cli__err("assign: run %s has %u sources; a plan takes 1 to %d", run_id, nc,
                 EMPQ_ASSIGN_MAX_CONDITIONS);
        ret = CLI_FAIL;
        goto out;
    }
    for (uint32_t c = 0; c < nc; c++)
        conds[c] = run->spec->models[c]->alias;
    prompts = calloc(n ? n : 1, sizeof *prompts);
    idx = calloc(n ? n : 1, sizeof *idx);
    emotions = calloc(n ? n : 1, sizeof *emotions);
    usable = calloc(n ? n : 1, 1);
    resp = calloc((size_t)n * nc + 1, sizeof *resp);
    if (prompts == NULL || idx == NULL || emotions == NULL || usable == NULL || resp == NULL) {
        cli__err("assign: out of memory");
        ret = CLI_FAIL;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    if ((rc = empq_store_prompts_get(s, run_id, idx, n, prompts)) != EMPQ_OK ||
        (rc = empq_store_results_all(s, run_id, &results, &n_results)) != EMPQ_OK) {
        cli__err("assign: run %s: %s", run_id, empq_store_errstr(s));
        ret = CLI_SERVICE;
        goto out;
    }
    /* a response without text is never rated: refuse the run, naming it
     * (results of an older worker, or a source whose answer is empty) */
    size_t n_empty = 0, first_empty = 0;
    for (size_t i = 0; i < n_results; i++) {
        const Empq__Result *r = results[i];
        if (r->gen == NULL || r->gen->text == NULL || r->gen->text[0] == '\0') {
            if (n_empty++ == 0)
                first_empty = i;
            continue;
        }
        if (r->prompt < n && r->model < nc && r->sample == 0)
            resp[(size_t)r->prompt * nc + r->model] = r->gen->text;
    }
    if (n_empty > 0) {
        const Empq__Result *r = results[first_empty];
        cli__err("assign: run %s has %zu response(s) with empty text, e.g. job %u (prompt %u, source %s, "
                 "sample %u); an empty answer is never rated: re-run those jobs (empq rerun) or leave the "
                 "source out, then assign again",
                 run_id, n_empty, r->job, r->prompt, r->model < nc ? conds[r->model] : "?", r->sample);
        ret = CLI_FAIL;
        goto out;
    }
    uint32_t missing_prompts = 0;
    for (uint32_t i = 0; i < n; i++) {
        emotions[i] = prompts[i] != NULL ? prompts[i]->emotion : "";
        usable[i] = prompts[i] != NULL;
        for (uint32_t c = 0; c < nc && usable[i]; c++)
            usable[i] = resp[(size_t)i * nc + c] != NULL;
        missing_prompts += usable[i] ? 0u : 1u;
    }
    if (missing_prompts > 0)
        fprintf(stderr, "empq: %u of %u prompts lack a response from some source (not finished, "
                        "or dead letters); they are left out of the plan\n", missing_prompts, n);
    if (subset > 0 && (ret = human_subset(emotions, usable, n, subset, o.seed)) != CLI_OK)
        goto out;
    rc = empq_assign_build(conds, nc, emotions, n, usable, &o, &plan, &err);
    if (rc != EMPQ_OK) {
        cli__err("assign: run %s: %s", run_id, err.msg);
        ret = rc == EMPQ_EINVAL ? CLI_USAGE : CLI_FAIL;
        goto out;
    }
    if (empq_assign_write_csv(plan, prompts, resp, &csv, &err) != EMPQ_OK ||
        empq_assign_write_json(plan, run_id, &json, &err) != EMPQ_OK) {
        cli__err("assign: %s", err.msg);
        ret = CLI_FAIL;
        goto out;
    }
    if (empq_mkdirs(out, &err) != EMPQ_OK) {
        cli__err("assign: %s", err.msg);
        ret = CLI_FAIL;
        goto out;
    }
    if ((ret = write_file(out, "plan.csv", &csv)) != CLI_OK ||
        (ret = write_file(out, "plan.json", &json)) != CLI_OK)
        goto out;
    if (store_it) {
        rc = empq_ratings_store_plan(s, run_id, plan, nc, samples, &cfg, replace, &err);
        if (rc != EMPQ_OK) {
            cli__err("assign: %s", err.msg);
            ret = rc == EMPQ_ESTORE ? CLI_SERVICE : rc == EMPQ_EINVAL ? CLI_USAGE : CLI_FAIL;
            goto out;
        }
    }
    fprintf(stderr,
            "empq: plan for run %s: %u conditions x %u batches x %u raters = %zu participants, "
            "%u dialogues each (+%zu checks), %u prompts; wrote %s/plan.csv and %s/plan.json%s\n",
            run_id, nc, plan->n_batches, plan->raters, plan->n_slots, plan->items, plan->n_checks,
            plan->n_used, out, out, store_it ? "; slots stored in Redis" : "");
out:
    empq_buf_free(&csv);
    empq_buf_free(&json);
    empq_assign_free(&plan);
    if (results != NULL)
        empq_store_free_results(results, n_results);
    for (uint32_t i = 0; prompts != NULL && run != NULL && i < run->n_prompts; i++)
        if (prompts[i] != NULL)
            empq__prompt__free_unpacked(prompts[i], NULL);
    free(prompts);
    free(idx);
    free((void *)emotions);
    free((void *)resp);
    free(usable);
    if (run != NULL)
        empq__run__free_unpacked(run, NULL);
    empq_store_close(&s);
    return ret;
}
