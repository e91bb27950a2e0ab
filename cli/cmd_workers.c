/* cmd_workers.c: `empq workers [--json]`: each registered worker's host,
 * credit, jobs in flight, done and errors, from the broker. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq workers [--json] [--broker ENDPOINT]\n"
               "  every worker registered with the broker: id, host, pid, credit, in flight,\n"
               "  done, errors (retries and dead), the models it serves (* = all)\n"
               "  --json         one JSON object on stdout\n"
               "  --broker EP    broker control endpoint (default $EMPQ_BROKER_CONTROL or " CLI_DEFAULT_CONTROL ")\n");
}

int cli__cmd_workers(int argc, char **argv)
{
    enum { JSON = CLI_OPT, BROKER };
    static const struct option opts[] = {
        {"json", no_argument, NULL, JSON}, {"broker", required_argument, NULL, BROKER}, CLI_OPT_HELP_ENTRY, {0}};
    cli__args a = {.cmd = "workers", .opts = opts, .usage = usage};
    const char *control = cli__default_control();
    int as_json = 0, c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case JSON: as_json = 1; break;
        case BROKER: control = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_WORKERS;
    req.workers = 1;
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    if (cli__control(control, &req, CLI_CONTROL_TIMEOUT_MS, &reply, &err) != EMPQ_OK) {
        cli__err("%s", err.msg);
        return CLI_SERVICE;
    }
    if (!reply->ok) {
        cli__err("broker at %s: %s", control, reply->error != NULL ? reply->error : "request refused");
        empq__control_reply__free_unpacked(reply, NULL);
        return CLI_FAIL; /* the broker answered: a refusal is not "unreachable" */
    }
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < reply->n_workers; i++) {
            const Empq__WorkerStatus *w = reply->workers[i];
            json_t *o = json_object();
            json_object_set_new(o, "worker_id", json_string(w->worker_id));
            json_object_set_new(o, "host", json_string(w->host != NULL ? w->host : ""));
            json_object_set_new(o, "pid", json_integer(w->pid));
            json_object_set_new(o, "credit", json_integer(w->credit));
            json_object_set_new(o, "in_flight", json_integer(w->in_flight));
            json_object_set_new(o, "done", json_integer((json_int_t)w->done));
            json_object_set_new(o, "errors", json_integer((json_int_t)w->errors));
            json_t *ms = json_array();
            for (size_t k = 0; k < w->n_models; k++)
                json_array_append_new(ms, json_string(w->models[k]));
            json_object_set_new(o, "models", ms);
            json_t *un = json_array(); /* the models it said it cannot call */
            for (size_t k = 0; k < w->n_unusable; k++)
                json_array_append_new(un, json_pack("{s:s,s:i,s:s}", "run_id", w->unusable[k]->run_id, "model",
                                                    (json_int_t)w->unusable[k]->model, "reason",
                                                    w->unusable[k]->reason != NULL ? w->unusable[k]->reason : ""));
            json_object_set_new(o, "unusable", un);
            json_array_append_new(arr, o);
        }
        json_t *top = json_pack("{s:o}", "workers", arr);
        char *s = json_dumps(top, JSON_PRESERVE_ORDER | JSON_INDENT(2));
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(top);
    } else if (reply->n_workers == 0) {
        printf("no workers\n");
    } else {
        int wid = 6, wh = 4;
        for (size_t i = 0; i < reply->n_workers; i++) {
            const Empq__WorkerStatus *w = reply->workers[i];
            if ((int)strlen(w->worker_id) > wid)
                wid = (int)strlen(w->worker_id);
            if (w->host != NULL && (int)strlen(w->host) > wh)
                wh = (int)strlen(w->host);
        }
        printf("%-*s  %-*s  %7s  %6s  %9s  %9s  %7s  %s\n", wid, "worker", wh, "host", "pid", "credit",
               "in flight", "done", "errors", "models");
        for (size_t i = 0; i < reply->n_workers; i++) {
            const Empq__WorkerStatus *w = reply->workers[i];
            printf("%-*s  %-*s  %7u  %6u  %9u  %9llu  %7llu  ", wid, w->worker_id, wh,
                   w->host != NULL ? w->host : "", w->pid, w->credit, w->in_flight, (unsigned long long)w->done,
                   (unsigned long long)w->errors);
            if (w->n_models == 0)
                printf("*");
            for (size_t k = 0; k < w->n_models; k++)
                printf("%s%s", k ? "," : "", w->models[k]);
            printf("\n");
        }
    }
    empq__control_reply__free_unpacked(reply, NULL);
    return CLI_OK;
}
