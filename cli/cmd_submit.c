/* cmd_submit.c: `empq submit SPEC`: write a run to Redis, tell the broker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "empq/dataset.h"
#include "empq/export.h"
#include "empq/provider.h"
#include "empq/spec.h"
#include "empq/template.h"
#include "empq/store.h"
#include "empq/util.h"

#define MAX_PROMPTS 100000000ull

static void usage(FILE *f)
{
    fprintf(f, "usage: empq submit SPEC [--redis URL] [--broker ENDPOINT] [--prompts N]\n"
               "                   [--run-id ID] [--force]\n"
               "  SPEC             the study spec (YAML)\n"
               "  --redis URL      Redis (default $EMPQ_REDIS_URL or " CLI_DEFAULT_REDIS ")\n"
               "  --broker EP      broker control endpoint (default $EMPQ_BROKER_CONTROL or\n"
               "                   " CLI_DEFAULT_CONTROL ")\n"
               "  --prompts N      select N prompts instead of the spec's selection.prompts\n"
               "  --run-id ID      the run id (default r-YYYYMMDD-HHMMSS-xxxx)\n"
               "  --force          fresh generations: do not read the response cache\n"
               "  --dry-run[=K]    print the HTTP requests (method, URL, headers with the key\n"
               "                   shown as its variable, exact body) of the first K prompts\n"
               "                   (default 2) of each model; no call, nothing written\n"
               "Prints the run id on stdout.\n");
}

/* Loads the spec's dataset (or generates it). Prints the error. */
static int load_dataset(const Empq__RunSpec *spec, const char *spec_path, empq_dataset **ds)
{
    empq_error err = {0};
    const char *fmt = spec->dataset_format != NULL ? spec->dataset_format : "auto";
    int rc;
    if (strcmp(fmt, "synth") == 0) {
        rc = empq_dataset_synth(spec->has_synth_prompts ? spec->synth_prompts : 2000,
                                spec->has_synth_seed ? spec->synth_seed : 1, ds, &err);
    } else {
        if (spec->dataset_path == NULL || spec->dataset_path[0] == '\0') {
            cli__err("%s: dataset.path is required for format '%s'", spec_path, fmt);
            return CLI_USAGE;
        }
        rc = empq_dataset_load(spec->dataset_path, fmt, ds, &err);
    }
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg[0] != '\0' ? err.msg : empq_strerror(rc));
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* ==================== --dry-run ==================== */

/* Prints one request of model m for prompt p: a comment line, the method
 * and URL, the headers (the key shown as where it comes from), a blank line
 * and the exact body on one line. Returns an exit code. */
static int dry_run_one(const Empq__RunSpec *spec, const Empq__ModelSpec *m, const Empq__Prompt *p,
                       uint32_t sample)
{
    empq_error err = {0};
    char *sys = NULL, *user = NULL, *base = NULL, *key = NULL;
    empq_http_request req = {0};
    int code = CLI_OK;
    int rc = empq_template_render(spec->template_user, p, &user, &err);
    if (rc == EMPQ_OK && spec->template_system != NULL && spec->template_system[0] != '\0')
        rc = empq_template_render(spec->template_system, p, &sys, &err);
    if (rc == EMPQ_OK && m->base_url != NULL && empq_expand_env(m->base_url, &base, NULL) != EMPQ_OK)
        base = NULL; /* an unset variable: shown as written */
    if (rc == EMPQ_OK) {
        /* the key is never read: its header shows where it would come from */
        empq_buf kb = {0};
        if (m->api_key_env != NULL)
            rc = empq_buf_printf(&kb, "${%s}", m->api_key_env);
        else if (m->api_key_file != NULL)
            rc = empq_buf_printf(&kb, "<contents of %s>", m->api_key_file);
        key = kb.data;
        if (rc == EMPQ_OK)
            rc = empq_provider_request(m, base, sys, user, sample, key, &req, &err);
    }
    if (rc != EMPQ_OK) {
        cli__err("model %s, prompt %u: %s", m->alias, p->index, err.msg[0] != '\0' ? err.msg : empq_strerror(rc));
        code = CLI_USAGE;
    } else {
        printf("# model %s (%s), prompt %u (%s, %s), sample %u\n%s %s\n", m->alias, m->provider, p->index, p->id,
               p->emotion, sample, req.method, req.url);
        for (size_t i = 0; i < req.n_headers; i++)
            printf("%s\n", req.headers[i]);
        printf("\n%s\n\n", req.body);
    }
    empq_http_request_clear(&req);
    free(sys);
    free(user);
    free(base);
    free(key);
    return code;
}

static int dry_run(const Empq__RunSpec *spec, Empq__Prompt *const *pp, size_t n, uint32_t k)
{
    int code = CLI_OK;
    for (size_t mi = 0; mi < spec->n_models && code == CLI_OK; mi++) {
        const Empq__ModelSpec *m = spec->models[mi];
        if (strcmp(m->provider, "human") == 0)
            continue;
        for (size_t i = 0; i < n && i < k && code == CLI_OK; i++)
            code = dry_run_one(spec, m, pp[i], 0);
    }
    return code;
}

/* Warns (on stderr; the submit goes on) about what this shell can tell a
 * worker started from it could not use: a model's api_key_env unset or
 * empty, a ${VAR} of its base_url unset. Workers elsewhere may have them;
 * a model no live worker can call is stopped by the broker
 * (docs/internals.md). */
static void warn_env(const Empq__RunSpec *spec, const char *spec_path)
{
    for (size_t i = 0; i < spec->n_models; i++) {
        const Empq__ModelSpec *m = spec->models[i];
        if (m->provider != NULL && strcmp(m->provider, "human") == 0)
            continue;
        const char *k = m->api_key_env;
        if (k != NULL && k[0] != '\0' && (getenv(k) == NULL || getenv(k)[0] == '\0'))
            fprintf(stderr, "empq: warning: %s: model %s: api_key_env %s is not set here; a worker without it "
                            "cannot call this model\n", spec_path, m->alias, k);
        if (m->base_url != NULL) {
            char *url = NULL;
            empq_error err = {0};
            if (empq_expand_env(m->base_url, &url, &err) == EMPQ_ENOTFOUND)
                fprintf(stderr, "empq: warning: %s: model %s: base_url: %s here; a worker without it cannot "
                                "call this model\n", spec_path, m->alias, err.msg);
            free(url);
        }
    }
}

/* Tells the broker about the run. Prints the error. Returns CLI_OK,
 * CLI_SERVICE (no answer: the run stays in Redis for the broker to find) or
 * CLI_FAIL (the broker answered and refused the run). */
static int notify_broker(const cli__submit_opts *o, const char *run_id)
{
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_SUBMIT;
    req.submit = (char *)run_id;
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    int timeout = o->timeout_ms > 0 ? o->timeout_ms : CLI_CONTROL_TIMEOUT_MS;
    int rc = cli__control(o->control, &req, timeout, &reply, &err);
    if (rc != EMPQ_OK) {
        cli__err("run %s is saved in Redis, but %s; the broker starts it when it runs "
                 "(or submit again with --run-id to retry)", run_id, err.msg);
        return CLI_SERVICE;
    }
    int ok = reply->ok;
    if (!ok)
        cli__err("the broker at %s refused run %s: %s", o->control, run_id,
                 reply->error != NULL ? reply->error : "no reason given");
    empq__control_reply__free_unpacked(reply, NULL);
    return ok ? CLI_OK : CLI_FAIL;
}

/* Removes the run this submit wrote (refused, or written in part), so a
 * refused submit leaves nothing in Redis. Prints what it could not do. */
static void unwrite_run(empq_store *store, const char *id)
{
    if (empq_store_run_delete(store, id) == EMPQ_OK)
        fprintf(stderr, "empq: run %s removed from %s (nothing of it is left)\n", id, empq_store_url(store));
    else
        cli__err("run %s could not be removed from Redis: %s", id, empq_store_errstr(store));
}

void cli__prompt_init(Empq__Prompt *p, uint32_t index, const empq_dialogue *d)
{
    Empq__Prompt init = EMPQ__PROMPT__INIT;
    *p = init;
    p->index = index;
    p->id = d->id;
    p->emotion = d->emotion;
    p->situation = d->situation;
    p->prompt = d->prompt;
    p->sentiment = d->sentiment;
}

int cli__submit_run(const cli__submit_opts *o, Empq__RunSpec *spec, Empq__Prompt **pp, size_t n_idx,
                    char *run_id, size_t len, uint64_t *jobs)
{
    empq_store *store = NULL;
    if (len > 0)
        run_id[0] = '\0';
    int rc;
    int code = cli__store_open(o->redis_url, 2000, &store);
    if (code != CLI_OK)
        goto done;
    char id[64];
    if (o->run_id != NULL)
        snprintf(id, sizeof id, "%s", o->run_id);
    else
        cli__run_id(id, sizeof id);
    Empq__Run run = EMPQ__RUN__INIT;
    run.id = id;
    run.spec = spec;
    run.n_prompts = (uint32_t)n_idx;
    run.has_created_ms = 1;
    run.created_ms = empq_now_ms();
    run.has_state = 1;
    run.state = EMPQ__RUN_STATE__RUN_ACTIVE;
    run.has_force = 1;
    run.force = o->force != 0;
    rc = empq_store_run_create(store, &run, pp, n_idx);
    if (rc == EMPQ_EEXIST && o->run_id != NULL) {
        /* Resubmitting an existing run only tells the broker again. */
        fprintf(stderr, "empq: run %s exists in %s; asking the broker to load it again\n", id,
                empq_store_url(store));
    } else if (rc == EMPQ_EEXIST) {
        cli__err("run %s exists already in %s; try again", id, empq_store_url(store));
        code = CLI_FAIL;
        goto done;
    } else if (rc != EMPQ_OK) {
        cli__err("writing run %s: %s", id, empq_store_errstr(store));
        unwrite_run(store, id); /* some of its keys may be written */
        code = rc == EMPQ_ENOMEM ? CLI_FAIL : CLI_SERVICE;
        goto done;
    }
    int written = rc == EMPQ_OK; /* by this submit (not an existing run given again) */
    code = notify_broker(o, id);
    if (code == CLI_FAIL && written) {
        unwrite_run(store, id);
        goto done;
    }
    snprintf(run_id, len, "%s", id);
    if (jobs != NULL)
        *jobs = empq_export_total_jobs(&run);

done:
    empq_store_close(&store);
    return code;
}

int cli__submit(const cli__submit_opts *o, char *run_id, size_t len, uint64_t *jobs)
{
    Empq__RunSpec *spec = NULL;
    empq_dataset *ds = NULL;
    size_t *idx = NULL, n_idx = 0;
    Empq__Prompt *pv = NULL;
    Empq__Prompt **pp = NULL;
    empq_error err = {0};
    int code;
    if (len > 0)
        run_id[0] = '\0';

    int rc = empq_spec_load(o->spec_path, &spec, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg[0] != '\0' ? err.msg : empq_strerror(rc));
        return CLI_USAGE;
    }
    if (spec->template_user != NULL && strstr(spec->template_user, "{response}") != NULL) {
        cli__err("%s: the template shows {response}: this is a judge spec; run it with empq judge", o->spec_path);
        empq__run_spec__free_unpacked(spec, NULL);
        return CLI_USAGE;
    }
    warn_env(spec, o->spec_path);
    if (o->prompts > 0) {
        spec->has_selection_count = 1;
        spec->selection_count = (uint32_t)o->prompts;
        /* a synthetic dataset grows to give that many */
        if (spec->dataset_format != NULL && strcmp(spec->dataset_format, "synth") == 0 &&
            (!spec->has_synth_prompts || spec->synth_prompts < o->prompts)) {
            spec->has_synth_prompts = 1;
            spec->synth_prompts = (uint32_t)o->prompts;
        }
    }
    code = load_dataset(spec, o->spec_path, &ds);
    if (code != CLI_OK)
        goto done;
    int balance = spec->selection_balance == NULL || strcmp(spec->selection_balance, "none") != 0;
    rc = empq_dataset_select(ds, spec->has_selection_count ? spec->selection_count : 0,
                             spec->has_selection_seed ? spec->selection_seed : 0, balance, &idx,
                             &n_idx, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s: selecting prompts: %s", o->spec_path, err.msg);
        code = CLI_USAGE;
        goto done;
    }
    if (n_idx == 0) {
        cli__err("%s: the dataset has no prompts to select", o->spec_path);
        code = CLI_USAGE;
        goto done;
    }
    rc = empq_spec_check_jobs(spec, n_idx, o->spec_path, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg);
        code = rc == EMPQ_ENOMEM ? CLI_FAIL : CLI_USAGE;
        goto done;
    }
    pv = calloc(n_idx, sizeof *pv);
    pp = calloc(n_idx, sizeof *pp);
    if (pv == NULL || pp == NULL) {
        cli__err("out of memory for %zu prompts", n_idx);
        code = CLI_FAIL;
        goto done;
    }
    for (size_t i = 0; i < n_idx; i++) {
        const empq_dialogue *d = &ds->items[idx[i]];
        cli__prompt_init(&pv[i], (uint32_t)i, d);
        pv[i].human_response = d->human;
        pp[i] = &pv[i];
    }
    if (o->dry_run > 0) {
        code = dry_run(spec, pp, n_idx, o->dry_run);
        goto done;
    }

    code = cli__submit_run(o, spec, pp, n_idx, run_id, len, jobs);

done:
    free(pv);
    free(pp);
    free(idx);
    empq_dataset_free(&ds);
    if (spec != NULL)
        empq__run_spec__free_unpacked(spec, NULL);
    return code;
}

/* A run id becomes a folder name in the collector's output. */
static int valid_run_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 60 || id[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", id[i]) == NULL)
            return 0;
    return 1;
}

int cli__cmd_submit(int argc, char **argv)
{
    enum { FORCE = CLI_OPT, REDIS, BROKER, PROMPTS, RUN_ID, DRY_RUN };
    static const struct option opts[] = {
        {"force", no_argument, NULL, FORCE},         {"redis", required_argument, NULL, REDIS},
        {"broker", required_argument, NULL, BROKER}, {"prompts", required_argument, NULL, PROMPTS},
        {"run-id", required_argument, NULL, RUN_ID}, {"dry-run", optional_argument, NULL, DRY_RUN},
        CLI_OPT_HELP_ENTRY,
        {0}};
    cli__args a = {.cmd = "submit", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one spec only"};
    cli__submit_opts o = {0};
    o.redis_url = cli__default_redis();
    o.control = cli__default_control();
    o.timeout_ms = CLI_CONTROL_TIMEOUT_MS;
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case FORCE: o.force = 1; break;
        case REDIS: o.redis_url = optarg; break;
        case BROKER: o.control = optarg; break;
        case PROMPTS: cli__opt_u64(&a, MAX_PROMPTS, &o.prompts); break;
        case RUN_ID: o.run_id = optarg; break;
        case DRY_RUN: {
            uint64_t k = 2;
            if (optarg != NULL)
                cli__opt_u64(&a, 1000, &k);
            o.dry_run = k > 0 ? (uint32_t)k : 2;
            break;
        }
        }
    }
    if (c == 0)
        return a.code;
    o.spec_path = a.args[0];
    if (o.spec_path == NULL) {
        cli__err("submit: which spec? (empq submit SPEC)");
        usage(stderr);
        return CLI_USAGE;
    }
    if (o.run_id != NULL && !valid_run_id(o.run_id)) {
        cli__err("submit: --run-id '%s' must be 1-60 characters of A-Z a-z 0-9 . _ : - "
                 "(not starting with '.')", o.run_id);
        return CLI_USAGE;
    }
    char id[64];
    int code = cli__submit(&o, id, sizeof id, NULL);
    if (id[0] != '\0' && o.dry_run == 0)
        printf("%s\n", id);
    return code;
}
