/* cmd_judge.c: `empq judge SPEC`: rate responses with LLM judges, as a run
 * through the broker and workers; `empq judge export RUN --out FILE`:
 * judge-ratings.csv. docs/judge.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "empq/csvread.h"
#include "empq/dataset.h"
#include "empq/export.h"
#include "empq/judge.h"
#include "empq/spec.h"
#include "empq/store.h"
#include "empq/util.h"

#define MAX_PROMPTS 100000000ull
#define MAX_SOURCES 16

static void usage(FILE *f)
{
    fprintf(f, "usage: empq judge SPEC [--responses FILE] [--sources A,B,...] [--prompts N]\n"
               "                  [--redis URL] [--broker ENDPOINT] [--run-id ID] [--force]\n"
               "       empq judge export RUN --out FILE [--wait] [--redis URL]\n"
               "  SPEC             a judge spec: a study spec whose models are the judges and whose\n"
               "                   template is the rubric, showing the response as {response}\n"
               "                   (studies/judge-welivita-pu.yaml; docs/judge.md)\n"
               "  --responses FILE the responses to judge: a ratings file with texts (the Welivita-Pu\n"
               "                   release: each response_X column is source X) or a run's\n"
               "                   responses.jsonl (default: the spec's dataset.path)\n"
               "  --sources LIST   judge these sources only (default: all)\n"
               "  --prompts N      select N dialogues instead of the spec's selection.prompts\n"
               "  --run-id ID, --force, --redis URL, --broker EP   as for empq submit\n"
               "  export           write judge-ratings.csv of judge run RUN to FILE; --wait: once\n"
               "                   every job has finished (progress on stderr every 5 s)\n"
               "Prints the run id on stdout. The human ratings in the file are never read.\n");
}

/* The responses to judge, each with its dialogue. Strings owned here. */
typedef struct judged {
    empq_dialogue d; /* id, emotion, sentiment, situation, prompt (human, line unused) */
    char *response, *source;
} judged;

typedef struct judged_set {
    judged *v;
    size_t n, cap;
    const char *sources[MAX_SOURCES]; /* --sources, or none: all */
    size_t n_sources;
} judged_set;

static void set_free(judged_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        judged *j = &s->v[i];
        free(j->d.id);
        free(j->d.emotion);
        free(j->d.sentiment);
        free(j->d.situation);
        free(j->d.prompt);
        free(j->response);
        free(j->source);
    }
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int wanted(const judged_set *s, const char *source)
{
    if (s->n_sources == 0)
        return 1;
    for (size_t i = 0; i < s->n_sources; i++)
        if (strcmp(s->sources[i], source) == 0)
            return 1;
    return 0;
}

static char *dup_or_null(const char *s) { return s != NULL ? empq_strdup(s) : NULL; }

/* Adds a response (copied). Returns EMPQ_OK or EMPQ_ENOMEM. */
static int set_add(judged_set *s, const empq_dialogue *d, const char *response, const char *source)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        judged *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return EMPQ_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    judged *j = &s->v[s->n];
    memset(j, 0, sizeof *j);
    j->d.id = dup_or_null(d->id);
    j->d.emotion = dup_or_null(d->emotion);
    j->d.sentiment = dup_or_null(d->sentiment);
    j->d.situation = dup_or_null(d->situation);
    j->d.prompt = dup_or_null(d->prompt);
    j->response = empq_strdup(response);
    j->source = empq_strdup(source);
    s->n++;
    if (j->d.id == NULL || j->d.emotion == NULL || j->response == NULL || j->source == NULL ||
        j->d.prompt == NULL)
        return EMPQ_ENOMEM;
    return EMPQ_OK;
}

/* 1 when index i is in the sorted selection sel[0..n). */
static int selected(const size_t *sel, size_t n, size_t i)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sel[mid] == i)
            return 1;
        if (sel[mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The Welivita-Pu release: the dialogues through the dataset loader (strict
 * UTF-8, fields checked), then each row's response_X columns. The
 * rating_X columns are never read. Prints the error. */
static int load_release(const char *path, const Empq__RunSpec *spec, judged_set *s)
{
    empq_dataset *ds = NULL;
    empq_error err = {0};
    size_t *sel = NULL, n_sel = 0;
    empq_csvread *r = NULL;
    FILE *f = NULL;
    int code = CLI_USAGE;
    int rc = empq_dataset_load(path, "welivita-pu", &ds, &err);
    if (rc == EMPQ_OK) {
        int balance = spec->selection_balance == NULL || strcmp(spec->selection_balance, "none") != 0;
        rc = empq_dataset_select(ds, spec->has_selection_count ? spec->selection_count : 0,
                                 spec->has_selection_seed ? spec->selection_seed : 0, balance, &sel, &n_sel, &err);
    }
    if (rc == EMPQ_OK && (f = fopen(path, "rb")) == NULL)
        rc = empq_error_set(&err, EMPQ_EIO, "%s: cannot open", path);
    if (rc == EMPQ_OK)
        rc = empq_csvread_open_file(path, f, &r, &err);
    if (rc == EMPQ_OK)
        rc = empq_csvread_header(r, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg);
        goto done;
    }
    long col[MAX_SOURCES];
    const char *name[MAX_SOURCES];
    size_t nc = 0;
    for (size_t i = 0; i < empq_csvread_header_count(r) && nc < MAX_SOURCES; i++) {
        const char *h = empq_csvread_header_field(r, i);
        if (strncmp(h, "response_", 9) == 0 && h[9] != '\0' && wanted(s, h + 9)) {
            col[nc] = (long)i;
            name[nc++] = h + 9;
        }
    }
    if (nc == 0) {
        cli__err("%s:1: no response_<source> column%s", path, s->n_sources > 0 ? " of the --sources asked" : "");
        goto done;
    }
    long idcol = empq_csvread_col(r, "dialog_id");
    size_t row = 0;
    while ((rc = empq_csvread_next(r, &err)) == 1) {
        if (row >= ds->n) {
            cli__err("%s:%zu: more rows than the dataset loader read", path, empq_csvread_line(r));
            goto done;
        }
        const empq_dialogue *d = &ds->items[row];
        if (idcol < 0 || strcmp(empq_csvread_field(r, (size_t)idcol), d->id) != 0) {
            cli__err("%s:%zu: dialog_id does not match the loaded dialogue '%s'", path, empq_csvread_line(r), d->id);
            goto done;
        }
        if (selected(sel, n_sel, row))
            for (size_t k = 0; k < nc; k++)
                if (set_add(s, d, empq_csvread_field(r, (size_t)col[k]), name[k]) != EMPQ_OK) {
                    cli__err("out of memory reading %s", path);
                    code = CLI_FAIL;
                    goto done;
                }
        row++;
    }
    if (rc < 0) {
        cli__err("%s", err.msg);
        goto done;
    }
    code = CLI_OK;
done:
    empq_csvread_free(&r);
    if (f != NULL)
        fclose(f);
    free(sel);
    empq_dataset_free(&ds);
    return code;
}

static const char *jget(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* A run's responses.jsonl: the prompts (by prompt_id, in file order) are
 * selected like a dataset's, then every line of a selected prompt is a
 * response to judge. Prints the error. */
static int load_responses(const char *path, const Empq__RunSpec *spec, judged_set *s)
{
    char *text = NULL;
    size_t len = 0;
    empq_error err = {0};
    json_t **lines = NULL;
    size_t n_lines = 0, *pidx = NULL, *sel = NULL, n_sel = 0;
    empq_dataset ds = {0};
    int code = CLI_USAGE;
    if (empq_read_file(path, &text, &len, &err) != EMPQ_OK) {
        cli__err("%s", err.msg);
        return CLI_USAGE;
    }
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    lines = calloc(cap, sizeof *lines);
    pidx = calloc(cap, sizeof *pidx);
    ds.items = calloc(cap, sizeof *ds.items);
    if (lines == NULL || pidx == NULL || ds.items == NULL) {
        cli__err("out of memory reading %s", path);
        code = CLI_FAIL;
        goto done;
    }
    size_t lineno = 0;
    for (char *p = text, *nl; p < text + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (nl == NULL)
            nl = text + len;
        *nl = '\0';
        lineno++;
        if (*p == '\0')
            continue;
        json_error_t je;
        json_t *o = json_loads(p, JSON_REJECT_DUPLICATES, &je);
        const char *fields[] = {"prompt_id", "emotion", "prompt", "response", "source"};
        for (size_t k = 0; o != NULL && k < sizeof fields / sizeof fields[0]; k++)
            if (jget(o, fields[k]) == NULL) {
                cli__err("%s:%zu: key '%s' is missing or not a string", path, lineno, fields[k]);
                json_decref(o);
                goto done;
            }
        if (o == NULL) {
            cli__err("%s:%zu: not a JSON object: %s", path, lineno, je.text);
            goto done;
        }
        lines[n_lines] = o;
        const char *id = jget(o, "prompt_id");
        size_t k = ds.n;
        if (ds.n > 0 && strcmp(ds.items[ds.n - 1].id, id) == 0)
            k = ds.n - 1; /* the file is ordered by prompt: its sources follow each other */
        if (k == ds.n) {
            empq_dialogue *d = &ds.items[ds.n++];
            d->id = (char *)id;
            d->emotion = (char *)jget(o, "emotion");
            d->situation = (char *)(jget(o, "situation") != NULL ? jget(o, "situation") : "");
            d->prompt = (char *)jget(o, "prompt");
            d->line = lineno;
        }
        pidx[n_lines++] = k;
    }
    if (ds.n == 0) {
        cli__err("%s: no responses in the file", path);
        goto done;
    }
    int balance = spec->selection_balance == NULL || strcmp(spec->selection_balance, "none") != 0;
    if (empq_dataset_select(&ds, spec->has_selection_count ? spec->selection_count : 0,
                            spec->has_selection_seed ? spec->selection_seed : 0, balance, &sel, &n_sel,
                            &err) != EMPQ_OK) {
        cli__err("%s: selecting prompts: %s", path, err.msg);
        goto done;
    }
    for (size_t i = 0; i < n_lines; i++) {
        const char *src = jget(lines[i], "source");
        if (!selected(sel, n_sel, pidx[i]) || !wanted(s, src))
            continue;
        /* a model's further samples are conditions of their own: ALIAS#N; the
         * human source (model null) repeats one text in every sample */
        json_int_t sample = json_integer_value(json_object_get(lines[i], "sample"));
        char named[200];
        if (sample > 0 && json_is_null(json_object_get(lines[i], "model")))
            continue;
        if (sample > 0) {
            snprintf(named, sizeof named, "%s#%lld", src, (long long)sample);
            src = named;
        }
        if (set_add(s, &ds.items[pidx[i]], jget(lines[i], "response"), src) != EMPQ_OK) {
            cli__err("out of memory reading %s", path);
            code = CLI_FAIL;
            goto done;
        }
    }
    code = CLI_OK;
done:
    for (size_t i = 0; i < n_lines; i++)
        json_decref(lines[i]);
    free(lines);
    free(pidx);
    free(ds.items);
    free(sel);
    free(text);
    return code;
}

/* Checks that spec is a judge spec and makes its models judges. */
static int judge_spec(const char *path, Empq__RunSpec *spec)
{
    if (spec->template_user == NULL || strstr(spec->template_user, "{response}") == NULL) {
        cli__err("%s: key 'template.user': a judge rubric must show the response ({response})", path);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < spec->n_models; i++) {
        Empq__ModelSpec *m = spec->models[i];
        if (strcmp(m->provider, "human") == 0) {
            cli__err("%s: key 'human': a judge spec has no human source (human.include: false)", path);
            return CLI_USAGE;
        }
        free(m->output);
        m->output = empq_strdup(EMPQ_JUDGE_OUTPUT);
        if (m->output == NULL) {
            cli__err("out of memory");
            return CLI_FAIL;
        }
    }
    if (spec->n_models == 0) {
        cli__err("%s: key 'models': no judge model", path);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Waits until every job of run_id has a result or a dead letter, printing
 * the progress on stderr every 5 s. Returns CLI_OK; CLI_FAIL when the run
 * is missing or was cancelled; CLI_SERVICE when Redis fails. Prints the
 * error. */
static int wait_finished(empq_store *s, const char *run_id)
{
    uint64_t t0 = empq_mono_ms(), last = t0;
    for (;;) {
        Empq__Run *run = NULL;
        int rc = empq_store_run_get(s, run_id, &run);
        if (rc != EMPQ_OK) {
            cli__err("judge export: run %s: %s", run_id,
                     rc == EMPQ_ENOTFOUND ? "no such run" : empq_store_errstr(s));
            return rc == EMPQ_ESTORE ? CLI_SERVICE : CLI_FAIL;
        }
        uint64_t total = empq_export_total_jobs(run), results = 0, dead = 0;
        int cancelled = run->has_state && run->state == EMPQ__RUN_STATE__RUN_CANCELLED;
        empq__run__free_unpacked(run, NULL);
        if (empq_store_counts(s, run_id, &results, &dead) != EMPQ_OK) {
            cli__err("judge export: run %s: %s", run_id, empq_store_errstr(s));
            return CLI_SERVICE;
        }
        if (results + dead >= total)
            return CLI_OK;
        if (cancelled) {
            cli__err("judge export: run %s was cancelled with %llu of %llu jobs finished", run_id,
                     (unsigned long long)(results + dead), (unsigned long long)total);
            return CLI_FAIL;
        }
        uint64_t now = empq_mono_ms();
        if (now - last >= 5000) {
            fprintf(stderr, "empq: run %s: %llu of %llu jobs finished (%llu dead), %.0f s\n", run_id,
                    (unsigned long long)(results + dead), (unsigned long long)total, (unsigned long long)dead,
                    (double)(now - t0) / 1000.0);
            last = now;
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int cmd_export(int argc, char **argv)
{
    enum { OUT = CLI_OPT, REDIS, WAIT };
    static const struct option opts[] = {{"out", required_argument, NULL, OUT},
                                         {"redis", required_argument, NULL, REDIS},
                                         {"wait", no_argument, NULL, WAIT},
                                         CLI_OPT_HELP_ENTRY,
                                         {0}};
    int wait = 0;
    cli__args a = {.cmd = "judge export", .opts = opts, .usage = usage, .max_args = 1,
                   .too_many = "one run at a time"};
    const char *out = NULL, *url = cli__default_redis();
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case OUT: out = optarg; break;
        case REDIS: url = optarg; break;
        case WAIT: wait = 1; break;
        }
    }
    if (c == 0)
        return a.code;
    if (a.args[0] == NULL || out == NULL) {
        cli__err("judge export: %s", a.args[0] == NULL ? "which run? (empq judge export RUN --out FILE)"
                                                        : "--out FILE is required");
        return CLI_USAGE;
    }
    empq_store *s = NULL;
    int opened = cli__store_open(url, 2000, &s);
    if (opened != CLI_OK)
        return opened;
    empq_error err = {0};
    int rc;
    if (wait) {
        int code = wait_finished(s, a.args[0]);
        if (code != CLI_OK) {
            empq_store_close(&s);
            return code;
        }
    }
    size_t rows = 0;
    rc = empq_judge_write_csv(s, a.args[0], out, &rows, &err);
    empq_store_close(&s);
    if (rc != EMPQ_OK) {
        cli__err("judge export: %s", err.msg);
        return rc == EMPQ_ESTORE ? CLI_SERVICE : CLI_FAIL;
    }
    fprintf(stderr, "empq: wrote %zu judge ratings to %s\n", rows, out);
    return CLI_OK;
}

int cli__cmd_judge(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    enum { FORCE = CLI_OPT, REDIS, BROKER, PROMPTS, RUN_ID, RESPONSES, SOURCES };
    static const struct option opts[] = {
        {"force", no_argument, NULL, FORCE},           {"redis", required_argument, NULL, REDIS},
        {"broker", required_argument, NULL, BROKER},   {"prompts", required_argument, NULL, PROMPTS},
        {"run-id", required_argument, NULL, RUN_ID},   {"responses", required_argument, NULL, RESPONSES},
        {"sources", required_argument, NULL, SOURCES}, CLI_OPT_HELP_ENTRY,
        {0}};
    cli__args a = {.cmd = "judge", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one spec only"};
    cli__submit_opts o = {0};
    o.redis_url = cli__default_redis();
    o.control = cli__default_control();
    o.timeout_ms = CLI_CONTROL_TIMEOUT_MS;
    const char *responses = NULL;
    char *sources = NULL;
    judged_set set = {0};
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case FORCE: o.force = 1; break;
        case REDIS: o.redis_url = optarg; break;
        case BROKER: o.control = optarg; break;
        case PROMPTS: cli__opt_u64(&a, MAX_PROMPTS, &o.prompts); break;
        case RUN_ID: o.run_id = optarg; break;
        case RESPONSES: responses = optarg; break;
        case SOURCES: sources = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    o.spec_path = a.args[0];
    if (o.spec_path == NULL) {
        cli__err("judge: which judge spec? (empq judge SPEC)");
        usage(stderr);
        return CLI_USAGE;
    }
    for (char *p = sources, *e; p != NULL && *p != '\0'; p = e != NULL ? e + 1 : NULL) {
        e = strchr(p, ',');
        if (e != NULL)
            *e = '\0';
        if (*p == '\0' || set.n_sources == MAX_SOURCES) {
            cli__err("judge: --sources: %s", *p == '\0' ? "an empty name" : "too many sources");
            return CLI_USAGE;
        }
        set.sources[set.n_sources++] = p;
    }
    Empq__RunSpec *spec = NULL;
    empq_error err = {0};
    int rc = empq_spec_load(o.spec_path, &spec, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg[0] != '\0' ? err.msg : empq_strerror(rc));
        return CLI_USAGE;
    }
    Empq__Prompt *pv = NULL;
    Empq__Prompt **pp = NULL;
    int code = judge_spec(o.spec_path, spec);
    if (code != CLI_OK)
        goto done;
    if (o.prompts > 0) {
        spec->has_selection_count = 1;
        spec->selection_count = (uint32_t)o.prompts;
    }
    const char *path = responses != NULL ? responses : spec->dataset_path;
    if (path == NULL) {
        cli__err("judge: which responses? (--responses FILE or the spec's dataset.path)");
        code = CLI_USAGE;
        goto done;
    }
    code = ends_with(path, ".jsonl") ? load_responses(path, spec, &set) : load_release(path, spec, &set);
    if (code != CLI_OK)
        goto done;
    if (set.n == 0) {
        cli__err("judge: %s: no responses to judge%s", path, set.n_sources > 0 ? " from the --sources given" : "");
        code = CLI_USAGE;
        goto done;
    }
    rc = empq_spec_check_jobs(spec, set.n, o.spec_path, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg);
        code = rc == EMPQ_ENOMEM ? CLI_FAIL : CLI_USAGE;
        goto done;
    }
    pv = calloc(set.n, sizeof *pv);
    pp = calloc(set.n, sizeof *pp);
    if (pv == NULL || pp == NULL) {
        cli__err("out of memory for %zu responses", set.n);
        code = CLI_FAIL;
        goto done;
    }
    for (size_t i = 0; i < set.n; i++) {
        const judged *j = &set.v[i];
        cli__prompt_init(&pv[i], (uint32_t)i, &j->d);
        pv[i].response = j->response;
        pv[i].source = j->source;
        pp[i] = &pv[i];
    }
    char id[64];
    uint64_t jobs = 0;
    code = cli__submit_run(&o, spec, pp, set.n, id, sizeof id, &jobs);
    if (id[0] != '\0') {
        printf("%s\n", id);
        fprintf(stderr, "empq: judge run %s: %zu responses x %zu judges = %llu jobs\n", id, set.n, spec->n_models,
                (unsigned long long)jobs);
    }
done:
    free(pv);
    free(pp);
    set_free(&set);
    empq__run_spec__free_unpacked(spec, NULL);
    return code;
}
