/* cmd_status.c: `empq status [RUN]`: the broker's view of one run or all. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "empq/export.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq status [RUN] [--json] [--broker ENDPOINT]\n"
               "  RUN             a run id (default: every run the broker knows)\n"
               "  --json          one JSON object on stdout\n"
               "  --broker EP     broker control endpoint (default $EMPQ_BROKER_CONTROL or\n"
               "                  " CLI_DEFAULT_CONTROL ")\n");
}

static const char *state_name(Empq__RunState s)
{
    switch (s) {
    case EMPQ__RUN_STATE__RUN_ACTIVE: return "active";
    case EMPQ__RUN_STATE__RUN_PAUSED: return "paused";
    case EMPQ__RUN_STATE__RUN_DONE: return "done";
    case EMPQ__RUN_STATE__RUN_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

static json_t *run_json(const Empq__RunStatus *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_string(r->run_id));
    json_object_set_new(o, "state", json_string(state_name(r->state)));
    json_object_set_new(o, "total", json_integer(r->total));
    json_object_set_new(o, "pending", json_integer(r->pending));
    json_object_set_new(o, "leased", json_integer(r->leased));
    json_object_set_new(o, "done", json_integer(r->done));
    json_object_set_new(o, "dead", json_integer(r->dead));
    json_object_set_new(o, "cache_hits", json_integer(r->cache_hits));
    char buf[40];
    json_object_set_new(o, "started_at", r->has_started_ms && r->started_ms > 0
                        ? json_string(empq_export_iso8601(r->started_ms, buf, sizeof buf))
                        : json_null());
    json_object_set_new(o, "finished_at", r->has_finished_ms && r->finished_ms > 0
                        ? json_string(empq_export_iso8601(r->finished_ms, buf, sizeof buf))
                        : json_null());
    json_t *models = json_array();
    for (size_t i = 0; i < r->n_models; i++) {
        const Empq__ModelCounts *m = r->models[i];
        json_t *mo = json_object();
        json_object_set_new(mo, "source", json_string(m->alias));
        json_object_set_new(mo, "pending", json_integer(m->pending));
        json_object_set_new(mo, "leased", json_integer(m->leased));
        json_object_set_new(mo, "done", json_integer(m->done));
        json_object_set_new(mo, "dead", json_integer(m->dead));
        json_object_set_new(mo, "cache_hits", json_integer(m->cache_hits));
        json_object_set_new(mo, "tokens_in", json_integer((json_int_t)m->tokens_in));
        json_object_set_new(mo, "tokens_out", json_integer((json_int_t)m->tokens_out));
        json_object_set_new(mo, "cost", json_real(m->cost));
        json_object_set_new(mo, "stopped", json_boolean(m->stopped));
        json_object_set_new(mo, "rate_factor", json_real(m->has_rate_factor ? m->rate_factor : 1.0));
        json_object_set_new(mo, "rate_limited", json_integer(m->rate_limited));
        json_array_append_new(models, mo);
    }
    json_object_set_new(o, "models", models);
    return o;
}

static void run_text(const Empq__RunStatus *r)
{
    double pct = r->total > 0 ? 100.0 * (r->done + r->dead) / r->total : 100.0;
    printf("run %s  %s  %u/%u done (%.1f%%)  pending %u  leased %u  dead %u  cache hits %u\n",
           r->run_id, state_name(r->state), r->done, r->total, pct, r->pending, r->leased, r->dead,
           r->cache_hits);
    size_t w = 6;
    for (size_t i = 0; i < r->n_models; i++)
        if (strlen(r->models[i]->alias) > w)
            w = strlen(r->models[i]->alias);
    for (size_t i = 0; i < r->n_models; i++) {
        const Empq__ModelCounts *m = r->models[i];
        printf("  %-*s  pending %6u  leased %5u  done %7u  dead %5u  cache hits %7u", (int)w,
               m->alias, m->pending, m->leased, m->done, m->dead, m->cache_hits);
        if (m->tokens_in > 0 || m->tokens_out > 0 || m->cost > 0)
            printf("  tokens %llu in %llu out  cost %.4f", (unsigned long long)m->tokens_in,
                   (unsigned long long)m->tokens_out, m->cost);
        if (m->has_rate_factor && m->rate_factor < 1.0)
            printf("  slowed to %.0f%% (%u 429s)", 100.0 * m->rate_factor, m->rate_limited);
        if (m->stopped)
            printf("  STOPPED: max_cost reached");
        printf("\n");
    }
}

int cli__cmd_status(int argc, char **argv)
{
    const char *run = NULL;
    const char *control = cli__default_control();
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return CLI_OK;
        } else if (strcmp(a, "--json") == 0) {
            as_json = 1;
        } else if (strcmp(a, "--broker") == 0) {
            if (i + 1 >= argc) {
                cli__err("status: --broker needs a value");
                return CLI_USAGE;
            }
            control = argv[++i];
        } else if (a[0] == '-') {
            cli__err("status: unknown option '%s'", a);
            usage(stderr);
            return CLI_USAGE;
        } else if (run != NULL) {
            cli__err("status: one run at a time (got '%s' and '%s')", run, a);
            return CLI_USAGE;
        } else {
            run = a;
        }
    }
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_STATUS;
    req.status = (char *)(run != NULL ? run : "");
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    int rc = cli__control(control, &req, CLI_CONTROL_TIMEOUT_MS, &reply, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg);
        return CLI_SERVICE;
    }
    if (!reply->ok) {
        cli__err("broker at %s: %s", control, reply->error != NULL ? reply->error : "request refused");
        empq__control_reply__free_unpacked(reply, NULL);
        return run != NULL ? CLI_FAIL : CLI_SERVICE;
    }
    if (as_json) {
        json_t *o = json_object();
        json_t *runs = json_array();
        for (size_t i = 0; i < reply->n_runs; i++)
            json_array_append_new(runs, run_json(reply->runs[i]));
        json_object_set_new(o, "runs", runs);
        char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else if (reply->n_runs == 0) {
        printf(run != NULL ? "no such run\n" : "no runs\n");
    } else {
        for (size_t i = 0; i < reply->n_runs; i++)
            run_text(reply->runs[i]);
    }
    int code = run != NULL && reply->n_runs == 0 ? CLI_FAIL : CLI_OK;
    empq__control_reply__free_unpacked(reply, NULL);
    return code;
}
