/* cmd_rerun.c: `empq rerun RUN [--emotion E]... [--model ALIAS]...
 * [--prompt ID]... [--dead-only] [--force]`: runs a subset of a run again.
 *
 * A subset rerun is a new child run (Run.parent = RUN): its spec is the
 * parent's with only the chosen models (the human source stays only when
 * chosen, or when no --model is given), its prompts the chosen subset of
 * the parent's prompts, renumbered 0..n-1 in the parent's order. Its cache
 * keys are the parent's (the key holds no run id), so it is served from the
 * cache unless --force. It has its own responses.jsonl, holding exactly the
 * subset.
 *
 * --dead-only requeues the run's dead jobs in place (in the subset the
 * other options choose): their dead letters are deleted (HDEL), then the
 * broker reloads the run from Redis (`requeue_dead`), which makes exactly
 * the jobs without a result or a dead letter pending again. See
 * docs/internals.md, "Reruns". */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "empq/store.h"
#include "empq/util.h"

#define RERUN_CHUNK 4096

static void usage(FILE *f)
{
    fprintf(f, "usage: empq rerun RUN [--emotion E]... [--model ALIAS]... [--prompt ID]...\n"
               "                  [--dead-only] [--force] [--run-id ID] [--redis URL] [--broker EP]\n"
               "  runs a subset of RUN again, as a new run (its id on stdout) whose parent is RUN:\n"
               "  --emotion E     prompts of emotion E (repeatable; default every emotion)\n"
               "  --model ALIAS   only source ALIAS (repeatable; 'human' is the human source;\n"
               "                  default every source of RUN)\n"
               "  --prompt ID     the prompt of dataset id ID (repeatable)\n"
               "  --force         fresh generations: do not read the response cache\n"
               "                  (default: served from the cache, zero backend calls)\n"
               "  --dead-only     instead: requeue RUN's dead jobs (in the subset) in place\n"
               "  --run-id ID     the new run's id (default r-YYYYMMDD-HHMMSS-xxxx)\n"
               "  --redis URL     Redis (default $EMPQ_REDIS_URL or " CLI_DEFAULT_REDIS ")\n"
               "  --broker EP     broker control endpoint (default $EMPQ_BROKER_CONTROL or\n"
               "                  " CLI_DEFAULT_CONTROL ")\n");
}

typedef struct strs {
    const char **v;
    size_t n;
} strs;

static int strs_add(strs *s, const char *v)
{
    const char **p = realloc(s->v, (s->n + 1) * sizeof *p);
    if (p == NULL)
        return -1;
    s->v = p;
    s->v[s->n++] = v;
    return 0;
}

static int strs_has(const strs *s, const char *v)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], v) == 0)
            return 1;
    return 0;
}

typedef struct rerun_opts {
    const char *run, *redis, *control, *run_id;
    strs emotions, models, prompts;
    int force, dead_only;
} rerun_opts;

/* Every prompt of run (n_prompts of them). Prints the error. */
static int read_prompts(empq_store *s, const Empq__Run *run, Empq__Prompt ***out)
{
    Empq__Prompt **ps = calloc(run->n_prompts ? run->n_prompts : 1, sizeof *ps);
    uint32_t *idx = calloc(RERUN_CHUNK, sizeof *idx);
    if (ps == NULL || idx == NULL) {
        free(ps);
        free(idx);
        cli__err("out of memory for %u prompts", run->n_prompts);
        return CLI_FAIL;
    }
    for (uint32_t base = 0; base < run->n_prompts; base += RERUN_CHUNK) {
        size_t n = run->n_prompts - base < RERUN_CHUNK ? run->n_prompts - base : RERUN_CHUNK;
        for (size_t i = 0; i < n; i++)
            idx[i] = base + (uint32_t)i;
        if (empq_store_prompts_get(s, run->id, idx, n, ps + base) != EMPQ_OK) {
            cli__err("run %s: reading prompts: %s", run->id, empq_store_errstr(s));
            for (uint32_t i = 0; i < base; i++)
                if (ps[i] != NULL)
                    empq__prompt__free_unpacked(ps[i], NULL);
            free(ps);
            free(idx);
            return CLI_SERVICE;
        }
    }
    free(idx);
    *out = ps;
    return CLI_OK;
}

/* Checks every --emotion, --model and --prompt names something in the run. */
static int check_names(const rerun_opts *o, const Empq__Run *run, Empq__Prompt **ps)
{
    for (size_t i = 0; i < o->models.n; i++) {
        int found = 0;
        for (size_t m = 0; m < run->spec->n_models; m++)
            found |= strcmp(run->spec->models[m]->alias, o->models.v[i]) == 0;
        if (!found) {
            char list[1024] = "";
            size_t off = 0;
            for (size_t m = 0; m < run->spec->n_models && off < sizeof list; m++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", m ? ", " : "",
                                        run->spec->models[m]->alias);
            cli__err("rerun: run %s has no source '%s' (it has: %s)", run->id, o->models.v[i], list);
            return CLI_USAGE;
        }
    }
    for (size_t i = 0; i < o->emotions.n; i++) {
        int found = 0;
        for (uint32_t p = 0; p < run->n_prompts && !found; p++)
            found = ps[p] != NULL && strcmp(ps[p]->emotion, o->emotions.v[i]) == 0;
        if (!found) {
            cli__err("rerun: run %s has no prompt of emotion '%s'", run->id, o->emotions.v[i]);
            return CLI_USAGE;
        }
    }
    for (size_t i = 0; i < o->prompts.n; i++) {
        int found = 0;
        for (uint32_t p = 0; p < run->n_prompts && !found; p++)
            found = ps[p] != NULL && strcmp(ps[p]->id, o->prompts.v[i]) == 0;
        if (!found) {
            cli__err("rerun: run %s has no prompt of id '%s'", run->id, o->prompts.v[i]);
            return CLI_USAGE;
        }
    }
    return CLI_OK;
}

static int prompt_chosen(const rerun_opts *o, const Empq__Prompt *p)
{
    if (p == NULL)
        return 0;
    if (o->emotions.n > 0 && !strs_has(&o->emotions, p->emotion))
        return 0;
    if (o->prompts.n > 0 && !strs_has(&o->prompts, p->id))
        return 0;
    return 1;
}

static int model_chosen(const rerun_opts *o, const char *alias)
{
    return o->models.n == 0 || strs_has(&o->models, alias);
}

static int control_request(const char *control, Empq__ControlRequest *req, const char *what)
{
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    if (cli__control(control, req, CLI_CONTROL_TIMEOUT_MS, &reply, &err) != EMPQ_OK) {
        cli__err("%s, but %s; the broker picks it up when it starts", what, err.msg);
        return CLI_SERVICE;
    }
    int ok = reply->ok;
    if (!ok)
        cli__err("%s, but the broker refused it: %s", what, reply->error != NULL ? reply->error : "no reason");
    empq__control_reply__free_unpacked(reply, NULL);
    return ok ? CLI_OK : CLI_FAIL; /* the broker answered: a refusal is not "unreachable" */
}

/* --dead-only: HDEL the chosen dead letters, then requeue_dead. */
static int rerun_dead(const rerun_opts *o, empq_store *s, const Empq__Run *run, Empq__Prompt **ps)
{
    Empq__DeadLetter **dv = NULL;
    size_t nd = 0;
    if (empq_store_dead_all(s, run->id, &dv, &nd) != EMPQ_OK) {
        cli__err("run %s: reading dead letters: %s", run->id, empq_store_errstr(s));
        return CLI_SERVICE;
    }
    uint32_t samples = 1;
    for (size_t m = 0; m < run->spec->n_models; m++)
        if (run->spec->models[m]->has_samples && run->spec->models[m]->samples > samples)
            samples = run->spec->models[m]->samples;
    uint32_t n_models = (uint32_t)run->spec->n_models;
    char key[300];
    snprintf(key, sizeof key, "empq:run:%s:dead", run->id);
    redisContext *c = empq_store_redis(s);
    size_t chosen = 0;
    int code = CLI_OK;
    for (size_t i = 0; i < nd; i++) {
        uint32_t job = dv[i]->job;
        uint32_t prompt = job / samples / n_models, model = job / samples % n_models;
        if (prompt >= run->n_prompts || !prompt_chosen(o, ps[prompt]) ||
            !model_chosen(o, run->spec->models[model]->alias))
            continue;
        redisReply *r = redisCommand(c, "HDEL %s %u", key, job);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            cli__err("run %s: deleting dead letter of job %u: %s", run->id, job,
                     r != NULL ? r->str : c->errstr);
            if (r != NULL)
                freeReplyObject(r);
            code = CLI_SERVICE;
            break;
        }
        freeReplyObject(r);
        chosen++;
    }
    empq_store_free_dead(dv, nd);
    if (code != CLI_OK)
        return code;
    if (chosen == 0) {
        fprintf(stderr, "empq: run %s has no dead jobs in that subset (%zu dead in all); nothing to do\n",
                run->id, nd);
        return CLI_OK;
    }
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_REQUEUE_DEAD;
    req.requeue_dead = run->id;
    char what[200];
    snprintf(what, sizeof what, "%zu dead letters of run %s were deleted", chosen, run->id);
    code = control_request(o->control, &req, what);
    if (code == CLI_OK)
        fprintf(stderr, "empq: run %s: %zu dead jobs requeued (of %zu dead); `empq export %s` when it is done\n",
                run->id, chosen, nd, run->id);
    printf("%s\n", run->id);
    return code;
}

/* A child run of the chosen subset. */
static int rerun_child(const rerun_opts *o, empq_store *s, const Empq__Run *run, Empq__Prompt **ps)
{
    size_t nm = 0, np = 0;
    Empq__ModelSpec **models = calloc(run->spec->n_models, sizeof *models);
    Empq__Prompt *pv = calloc(run->n_prompts ? run->n_prompts : 1, sizeof *pv);
    Empq__Prompt **pp = calloc(run->n_prompts ? run->n_prompts : 1, sizeof *pp);
    int code = CLI_OK;
    if (models == NULL || pv == NULL || pp == NULL) {
        cli__err("out of memory");
        code = CLI_FAIL;
        goto done;
    }
    for (size_t m = 0; m < run->spec->n_models; m++)
        if (model_chosen(o, run->spec->models[m]->alias))
            models[nm++] = run->spec->models[m];
    for (uint32_t p = 0; p < run->n_prompts; p++) {
        if (!prompt_chosen(o, ps[p]))
            continue;
        pv[np] = *ps[p];
        pv[np].index = (uint32_t)np;
        pp[np] = &pv[np];
        np++;
    }
    if (nm == 0 || np == 0) {
        cli__err("rerun: the subset of run %s is empty (%zu prompts, %zu sources)", run->id, np, nm);
        code = CLI_USAGE;
        goto done;
    }
    Empq__RunSpec spec = *run->spec; /* shallow: only the models differ */
    spec.n_models = nm;
    spec.models = models;
    char id[64];
    if (o->run_id != NULL)
        snprintf(id, sizeof id, "%s", o->run_id);
    else
        cli__run_id(id, sizeof id);
    Empq__Run child = EMPQ__RUN__INIT;
    child.id = id;
    child.spec = &spec;
    child.n_prompts = (uint32_t)np;
    child.has_created_ms = 1;
    child.created_ms = empq_now_ms();
    child.has_state = 1;
    child.state = EMPQ__RUN_STATE__RUN_ACTIVE;
    child.has_force = 1;
    child.force = o->force != 0;
    child.parent = run->id;
    int rc = empq_store_run_create(s, &child, pp, np);
    if (rc == EMPQ_EEXIST) {
        cli__err("rerun: run %s exists already%s", id, o->run_id != NULL ? "" : "; try again");
        code = CLI_FAIL;
        goto done;
    }
    if (rc != EMPQ_OK) {
        cli__err("writing run %s: %s", id, empq_store_errstr(s));
        code = CLI_SERVICE;
        goto done;
    }
    uint32_t samples = 1;
    for (size_t m = 0; m < nm; m++)
        if (models[m]->has_samples && models[m]->samples > samples)
            samples = models[m]->samples;
    fprintf(stderr, "empq: run %s re-runs %zu prompts x %zu sources of run %s: %llu jobs, %s\n", id, np, nm,
            run->id, (unsigned long long)np * nm * samples,
            o->force ? "fresh generations (--force)" : "served from the cache where it has them");
    printf("%s\n", id);
    fflush(stdout);
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_SUBMIT;
    req.submit = id;
    char what[160];
    snprintf(what, sizeof what, "run %s is saved in Redis", id);
    code = control_request(o->control, &req, what);
done:
    free(models);
    free(pv);
    free(pp);
    return code;
}

int cli__cmd_rerun(int argc, char **argv)
{
    rerun_opts o;
    memset(&o, 0, sizeof o);
    o.redis = cli__default_redis();
    o.control = cli__default_control();
    enum { FORCE = CLI_OPT, DEAD_ONLY, EMOTION, MODEL, PROMPT, RUN_ID, REDIS, BROKER };
    static const struct option opts[] = {
        {"force", no_argument, NULL, FORCE},           {"dead-only", no_argument, NULL, DEAD_ONLY},
        {"emotion", required_argument, NULL, EMOTION}, {"model", required_argument, NULL, MODEL},
        {"prompt", required_argument, NULL, PROMPT},   {"run-id", required_argument, NULL, RUN_ID},
        {"redis", required_argument, NULL, REDIS},     {"broker", required_argument, NULL, BROKER},
        CLI_OPT_HELP_ENTRY,                            {0}};
    cli__args a = {.cmd = "rerun", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one run at a time"};
    int code = CLI_OK, c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        int bad = 0;
        switch (c) {
        case FORCE: o.force = 1; break;
        case DEAD_ONLY: o.dead_only = 1; break;
        case EMOTION: bad = strs_add(&o.emotions, optarg); break;
        case MODEL: bad = strs_add(&o.models, optarg); break;
        case PROMPT: bad = strs_add(&o.prompts, optarg); break;
        case RUN_ID: o.run_id = optarg; break;
        case REDIS: o.redis = optarg; break;
        case BROKER: o.control = optarg; break;
        }
        if (bad) {
            cli__err("out of memory");
            a.code = CLI_FAIL;
        }
    }
    if (c == 0) {
        code = a.code;
        goto out;
    }
    o.run = a.args[0];
    if (o.run == NULL) {
        cli__err("rerun: which run? (empq rerun RUN ...)");
        usage(stderr);
        code = CLI_USAGE;
        goto out;
    }
    if (o.run_id != NULL) { /* it becomes a folder name in the collector's output */
        size_t n = strlen(o.run_id);
        int ok = n > 0 && n <= 60 && o.run_id[0] != '.';
        for (size_t k = 0; ok && k < n; k++)
            ok = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", o.run_id[k]) != NULL;
        if (!ok) {
            cli__err("rerun: --run-id '%s' must be 1-60 characters of A-Z a-z 0-9 . _ : - (not starting with '.')",
                     o.run_id);
            code = CLI_USAGE;
            goto out;
        }
    }
    if (o.dead_only && o.run_id != NULL) {
        cli__err("rerun: --dead-only requeues in place; --run-id does not apply");
        code = CLI_USAGE;
        goto out;
    }
    empq_store *s = NULL;
    int rc;
    code = cli__store_open(o.redis, 2000, &s);
    if (code != CLI_OK)
        goto out;
    Empq__Run *run = NULL;
    rc = empq_store_run_get(s, o.run, &run);
    if (rc != EMPQ_OK) {
        if (rc == EMPQ_ENOTFOUND)
            cli__err("rerun: no run %s in %s", o.run, empq_store_url(s));
        else
            cli__err("rerun: run %s: %s", o.run, empq_store_errstr(s));
        code = rc == EMPQ_ENOTFOUND ? CLI_FAIL : CLI_SERVICE;
        empq_store_close(&s);
        goto out;
    }
    Empq__Prompt **ps = NULL;
    code = read_prompts(s, run, &ps);
    if (code == CLI_OK)
        code = check_names(&o, run, ps);
    if (code == CLI_OK)
        code = o.dead_only ? rerun_dead(&o, s, run, ps) : rerun_child(&o, s, run, ps);
    if (ps != NULL) {
        for (uint32_t p = 0; p < run->n_prompts; p++)
            if (ps[p] != NULL)
                empq__prompt__free_unpacked(ps[p], NULL);
        free(ps);
    }
    empq__run__free_unpacked(run, NULL);
    empq_store_close(&s);
out:
    free(o.emotions.v);
    free(o.models.v);
    free(o.prompts.v);
    return code;
}
