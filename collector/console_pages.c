/* console_pages.c: the console's runs, run and dead-letter pages, and the
 * small JSON the runs page refreshes itself from. */
#include "console_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "empq/export.h"

static const char *state_name(int st)
{
    switch (st) {
    case EMPQ__RUN_STATE__RUN_ACTIVE: return "active";
    case EMPQ__RUN_STATE__RUN_PAUSED: return "paused";
    case EMPQ__RUN_STATE__RUN_DONE: return "done";
    case EMPQ__RUN_STATE__RUN_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

/* ==================== the runs' counts ==================== */

/* One run as the runs page shows it: Redis' counts, the broker's when it
 * knows the run. */
typedef struct run_view {
    const Empq__Run *run;
    const Empq__RunStatus *st; /* may be NULL */
    uint64_t total, done, dead;
    int state;
    double rate, eta; /* per second; seconds; -1 unknown */
} run_view;

typedef struct runs_data {
    empq_store_run_info *info;
    size_t n;
    Empq__ControlReply *status;  /* may be NULL */
    Empq__ControlReply *workers; /* may be NULL */
    run_view *v;
} runs_data;

static void runs_data_free(runs_data *d)
{
    empq_store_free_runs_overview(d->info, d->n);
    if (d->status != NULL)
        empq__control_reply__free_unpacked(d->status, NULL);
    if (d->workers != NULL)
        empq__control_reply__free_unpacked(d->workers, NULL);
    free(d->v);
}

static int newest_first(const void *a, const void *b)
{
    const run_view *x = a, *y = b;
    uint64_t cx = x->run->created_ms, cy = y->run->created_ms;
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return strcmp(x->run->id, y->run->id);
}

/* Two round trips to Redis (the overview), two control requests. */
static int runs_load(console *c, runs_data *d, int with_workers)
{
    memset(d, 0, sizeof *d);
    if (empq_store_runs_overview(c->store, &d->info, &d->n) != EMPQ_OK)
        return EMPQ_ESTORE;
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = EMPQ__CONTROL_REQUEST__BODY_STATUS;
    req.status = "";
    d->status = console__control(c, &req);
    if (with_workers && d->status != NULL) {
        Empq__ControlRequest wreq = EMPQ__CONTROL_REQUEST__INIT;
        wreq.body_case = EMPQ__CONTROL_REQUEST__BODY_WORKERS;
        wreq.workers = 1;
        d->workers = console__control(c, &wreq);
    }
    d->v = calloc(d->n ? d->n : 1, sizeof *d->v);
    if (d->v == NULL)
        return EMPQ_ENOMEM;
    uint64_t now = empq_now_ms();
    for (size_t i = 0; i < d->n; i++) {
        run_view *v = &d->v[i];
        v->run = d->info[i].run;
        v->total = empq_export_total_jobs(v->run);
        v->done = d->info[i].results;
        v->dead = d->info[i].dead;
        v->state = v->run->state;
        v->rate = v->eta = -1;
        for (size_t k = 0; d->status != NULL && k < d->status->n_runs; k++)
            if (strcmp(d->status->runs[k]->run_id, v->run->id) == 0)
                v->st = d->status->runs[k];
        if (v->st != NULL) {
            v->done = v->st->done;
            v->dead = v->st->dead;
            v->state = v->st->state;
            if (v->st->total > 0)
                v->total = v->st->total;
            uint64_t end = v->st->finished_ms > 0 ? v->st->finished_ms : now;
            if (v->st->started_ms > 0 && end > v->st->started_ms)
                v->rate = (double)(v->done + v->dead) * 1000.0 / (double)(end - v->st->started_ms);
            if (v->rate > 0 && v->state == EMPQ__RUN_STATE__RUN_ACTIVE && v->total > v->done + v->dead)
                v->eta = (double)(v->total - v->done - v->dead) / v->rate;
            else if (v->total <= v->done + v->dead)
                v->eta = 0;
        }
    }
    qsort(d->v, d->n, sizeof *d->v, newest_first);
    return EMPQ_OK;
}

static void bar(empq_buf *b, const char *id_run, const char *src, uint64_t done, uint64_t dead, uint64_t total)
{
    empq_buf_printf(b, "<div class=\"bar\" data-run=\"");
    console__esc(b, id_run);
    empq_buf_printf(b, "\" data-src=\"");
    console__esc(b, src);
    empq_buf_printf(b, "\"><progress max=\"%" PRIu64 "\" value=\"%" PRIu64 "\"></progress>"
                       "<span class=\"count\">%" PRIu64 " / %" PRIu64 "</span>"
                       "<span class=\"deadn\">%s%" PRIu64 " dead</span></div>",
                    total ? total : 1, done + dead, done + dead, total, "", dead);
}

static void fmt_secs(char *buf, size_t len, double s)
{
    if (s < 0)
        snprintf(buf, len, "-");
    else if (s < 90)
        snprintf(buf, len, "%.0f s", s);
    else if (s < 5400)
        snprintf(buf, len, "%.0f min", s / 60);
    else
        snprintf(buf, len, "%.1f h", s / 3600);
}

enum MHD_Result console__runs(console__req *r)
{
    runs_data d;
    int rc = runs_load(r->c, &d, 1);
    if (rc != EMPQ_OK) {
        runs_data_free(&d);
        return console__store_error(r);
    }
    empq_buf *b = &r->b;
    console__head(b, "Runs", NULL, NULL);
    empq_buf_printf(b, "<h1 id=\"title\">Runs</h1>\n<p class=\"hint\" id=\"source\">%s "
                       "<span id=\"updated\"></span></p>\n",
                    d.status != NULL        ? "Counts from the broker; bars refresh every second."
                    : r->c->control == NULL ? "No broker control endpoint (--broker-control): counts from "
                                              "Redis (results and dead letters) only."
                                            : "The broker does not answer on its control endpoint (asked "
                                              "again every 5 s): counts from Redis (results and dead "
                                              "letters) only.");
    if (d.n == 0)
        empq_buf_printf(b, "<p id=\"none\">No run yet. Submit one with <code>empq submit study.yaml</code>.</p>\n");
    for (size_t i = 0; i < d.n; i++) {
        const run_view *v = &d.v[i];
        char rate[32], eta[32];
        if (v->rate >= 0)
            snprintf(rate, sizeof rate, "%.1f/s", v->rate);
        else
            snprintf(rate, sizeof rate, "-");
        fmt_secs(eta, sizeof eta, v->eta);
        empq_buf_printf(b, "<section class=\"run\" id=\"run-");
        console__esc(b, v->run->id);
        empq_buf_printf(b, "\">\n<h2><a href=\"/run/");
        console__url(b, v->run->id);
        empq_buf_printf(b, "\">");
        console__esc(b, v->run->id);
        empq_buf_printf(b, "</a> <span class=\"name\">");
        console__esc(b, v->run->spec->name);
        empq_buf_printf(b, "</span> <span class=\"state %s\" data-run=\"", state_name(v->state));
        console__esc(b, v->run->id);
        empq_buf_printf(b, "\">%s</span></h2>\n", state_name(v->state));
        bar(b, v->run->id, "", v->done, v->dead, v->total);
        empq_buf_printf(b, "\n<p class=\"facts\"><span>rate <b class=\"rate\">%s</b></span> "
                           "<span>ETA <b class=\"eta\">%s</b></span>",
                        rate, eta);
        if (v->st != NULL)
            empq_buf_printf(b, " <span>cache hits <b>%u</b></span> <span>leased <b>%u</b></span>",
                            v->st->cache_hits, v->st->leased);
        if (v->run->parent != NULL && v->run->parent[0] != '\0') {
            empq_buf_printf(b, " <span>rerun of <a href=\"/run/");
            console__url(b, v->run->parent);
            empq_buf_printf(b, "\">");
            console__esc(b, v->run->parent);
            empq_buf_printf(b, "</a></span>");
        }
        empq_buf_printf(b, "</p>\n");
        if (v->st != NULL && v->st->n_models > 0) {
            empq_buf_printf(b, "<div class=\"scroll\"><table class=\"sources\">\n<thead><tr><th>source</th>"
                               "<th>progress</th><th>tokens in / out</th><th>cost / max</th>"
                               "<th>dead by reason</th></tr></thead>\n<tbody>\n");
            for (size_t m = 0; m < v->st->n_models; m++) {
                const Empq__ModelCounts *mc = v->st->models[m];
                double max_cost = 0;
                for (size_t k = 0; k < v->run->spec->n_models; k++)
                    if (strcmp(v->run->spec->models[k]->alias, mc->alias) == 0 &&
                        v->run->spec->models[k]->prices != NULL)
                        max_cost = v->run->spec->models[k]->prices->max_cost;
                empq_buf_printf(b, "<tr><th scope=\"row\">");
                console__esc(b, mc->alias);
                empq_buf_printf(b, "</th><td>");
                bar(b, v->run->id, mc->alias, mc->done, mc->dead,
                    (uint64_t)mc->done + mc->dead + mc->pending + mc->leased);
                empq_buf_printf(b, "</td><td class=\"num\">%" PRIu64 " / %" PRIu64 "</td><td class=\"num\">",
                                mc->tokens_in, mc->tokens_out);
                if (max_cost > 0)
                    empq_buf_printf(b, "%.4f / %.2f", mc->cost, max_cost);
                else
                    empq_buf_printf(b, "%.4f", mc->cost);
                if (mc->stopped) {
                    empq_buf_printf(b, " <span class=\"warn\">stopped: ");
                    console__esc(b, mc->stop_reason != NULL ? mc->stop_reason : "max_cost");
                    empq_buf_printf(b, "</span>");
                }
                empq_buf_printf(b, "</td><td>");
                for (size_t k = 0; k < mc->n_dead_reasons; k++) {
                    empq_buf_printf(b, "%s<span class=\"reason\">", k > 0 ? ", " : "");
                    console__esc(b, mc->dead_reasons[k]->reason);
                    empq_buf_printf(b, "</span> %u", mc->dead_reasons[k]->count);
                }
                empq_buf_printf(b, "</td></tr>\n");
            }
            empq_buf_printf(b, "</tbody></table></div>\n");
        }
        empq_buf_printf(b, "</section>\n");
    }
    if (d.workers != NULL) {
        empq_buf_printf(b, "<h2 id=\"workers\">Workers connected: %zu</h2>\n", d.workers->n_workers);
        if (d.workers->n_workers > 0) {
            empq_buf_printf(b, "<div class=\"scroll\"><table>\n<thead><tr><th>worker</th><th>host</th>"
                               "<th>credit</th><th>in flight</th><th>done</th><th>errors</th></tr></thead>\n<tbody>\n");
            for (size_t i = 0; i < d.workers->n_workers; i++) {
                const Empq__WorkerStatus *w = d.workers->workers[i];
                empq_buf_printf(b, "<tr><td>");
                console__esc(b, w->worker_id);
                empq_buf_printf(b, "</td><td>");
                console__esc(b, w->host);
                empq_buf_printf(b, "</td><td class=\"num\">%u</td><td class=\"num\">%u</td><td class=\"num\">%" PRIu64
                                   "</td><td class=\"num\">%" PRIu64 "</td></tr>\n",
                                w->credit, w->in_flight, w->done, w->errors);
            }
            empq_buf_printf(b, "</tbody></table></div>\n");
        }
    }
    console__tail(b);
    runs_data_free(&d);
    return console__send(r, MHD_HTTP_OK, "text/html; charset=utf-8");
}

static json_t *count_json(uint64_t done, uint64_t dead, uint64_t total)
{
    return json_pack("{s:I,s:I,s:I}", "done", (json_int_t)done, "dead", (json_int_t)dead, "total",
                     (json_int_t)total);
}

enum MHD_Result console__progress(console__req *r)
{
    runs_data d;
    if (runs_load(r->c, &d, 0) != EMPQ_OK) {
        runs_data_free(&d);
        empq_buf_printf(&r->b, "{\"error\":\"redis unavailable\"}\n");
        return console__send(r, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json");
    }
    json_t *o = json_object(), *runs = json_array();
    json_object_set_new(o, "at_ms", json_integer((json_int_t)empq_now_ms()));
    json_object_set_new(o, "broker", json_boolean(d.status != NULL));
    for (size_t i = 0; i < d.n; i++) {
        const run_view *v = &d.v[i];
        json_t *x = count_json(v->done, v->dead, v->total);
        char eta[32];
        fmt_secs(eta, sizeof eta, v->eta);
        json_object_set_new(x, "id", json_string(v->run->id));
        json_object_set_new(x, "state", json_string(state_name(v->state)));
        json_object_set_new(x, "rate", v->rate >= 0 ? json_real(v->rate) : json_null());
        json_object_set_new(x, "eta", json_string(eta));
        json_t *src = json_object();
        for (size_t m = 0; v->st != NULL && m < v->st->n_models; m++) {
            const Empq__ModelCounts *mc = v->st->models[m];
            json_object_set_new(src, mc->alias,
                                count_json(mc->done, mc->dead, (uint64_t)mc->done + mc->dead + mc->pending + mc->leased));
        }
        json_object_set_new(x, "sources", src);
        json_array_append_new(runs, x);
    }
    json_object_set_new(o, "runs", runs);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    runs_data_free(&d);
    if (s == NULL)
        return MHD_NO;
    empq_buf_append(&r->b, s, strlen(s));
    free(s);
    return console__send(r, MHD_HTTP_OK, "application/json");
}

/* ==================== a run ==================== */

/* Reads the run; on failure answers the request (*ret) and returns NULL. */
static Empq__Run *run_or_answer(console__req *r, const char *run_id, enum MHD_Result *ret)
{
    Empq__Run *run = NULL;
    int rc = empq_store_run_get(r->c->store, run_id, &run);
    if (rc == EMPQ_OK)
        return run;
    if (rc == EMPQ_ESTORE)
        *ret = console__store_error(r);
    else
        *ret = console__error(r, MHD_HTTP_NOT_FOUND, "No such run", "There is no run with this id in Redis.");
    return NULL;
}

/* The shade class of a share (0..10). */
static int shade(uint64_t part, uint64_t whole)
{
    return whole == 0 ? 0 : (int)((part * 10 + whole / 2) / whole);
}

enum MHD_Result console__run(console__req *r, const char *run_id)
{
    enum MHD_Result ret = MHD_NO;
    Empq__Run *run = run_or_answer(r, run_id, &ret);
    if (run == NULL)
        return ret;
    uint64_t total = empq_export_total_jobs(run);
    uint32_t nm = (uint32_t)run->spec->n_models, samples = empq_export_samples(run->spec);
    const console__prompts *pr = console__prompts_of(r->c, run_id);
    uint8_t *state = total > 0 ? malloc(total) : NULL;
    if (pr == NULL || (total > 0 && (state == NULL || empq_store_job_states(r->c->store, run_id, state, total) != EMPQ_OK))) {
        free(state);
        empq__run__free_unpacked(run, NULL);
        return console__store_error(r);
    }
    /* the rows: the emotions, sorted by name; then "all" */
    size_t ne = pr->n_emotions;
    const char *const *emo = pr->emotions;
    uint64_t *cnt = calloc((ne + 1) * (nm + 1) * 3, sizeof *cnt); /* [emotion][model][3]: done, dead, all */
    if (cnt == NULL) {
        free(state);
        empq__run__free_unpacked(run, NULL);
        return MHD_NO;
    }
    for (uint64_t job = 0; job < total; job++) {
        uint64_t p = job / ((uint64_t)nm * samples), m = (job / samples) % nm;
        if (p >= pr->n || pr->v[p] == NULL)
            continue;
        size_t e = pr->emo_of[p];
        uint64_t *cell = &cnt[(e * (nm + 1) + m) * 3], *row = &cnt[(e * (nm + 1) + nm) * 3];
        uint64_t *col = &cnt[(ne * (nm + 1) + m) * 3], *all = &cnt[(ne * (nm + 1) + nm) * 3];
        uint64_t *cells[] = {cell, row, col, all};
        for (int k = 0; k < 4; k++) {
            cells[k][0] += state[job] == EMPQ_STORE_JOB_DONE;
            cells[k][1] += state[job] == EMPQ_STORE_JOB_DEAD;
            cells[k][2]++;
        }
    }
    empq_buf *b = &r->b;
    console__head(b, run_id, run_id, "run");
    empq_buf_printf(b, "<h1 id=\"title\">");
    console__esc(b, run->spec->name);
    empq_buf_printf(b, " <span class=\"state %s\">%s</span></h1>\n<p class=\"facts\">%u prompts x %u sources"
                       "%s, %" PRIu64 " jobs; done <b id=\"done\">%" PRIu64 "</b>, dead <b id=\"dead\">%" PRIu64
                       "</b></p>\n",
                    state_name(run->state), state_name(run->state), run->n_prompts, nm,
                    samples > 1 ? " (several samples)" : "", total, cnt[(ne * (nm + 1) + nm) * 3],
                    cnt[(ne * (nm + 1) + nm) * 3 + 1]);
    empq_buf_printf(b, "<h2>Progress by emotion and source</h2>\n<p class=\"hint\">Share of jobs done in each "
                       "cell (darker: more done; red border: a dead job). Click a cell for its responses.</p>\n"
                       "<div class=\"scroll\"><table class=\"heat\" id=\"heat\">\n<thead><tr><th>emotion</th>");
    for (uint32_t m = 0; m < nm; m++) {
        empq_buf_printf(b, "<th>");
        console__esc(b, run->spec->models[m]->alias);
        empq_buf_printf(b, "</th>");
    }
    empq_buf_printf(b, "<th>all</th></tr></thead>\n<tbody>\n");
    for (size_t e = 0; e <= ne; e++) {
        empq_buf_printf(b, "<tr><th scope=\"row\">");
        console__esc(b, e < ne ? emo[e] : "all");
        empq_buf_printf(b, "</th>");
        for (uint32_t m = 0; m <= nm; m++) {
            const uint64_t *x = &cnt[(e * (nm + 1) + m) * 3];
            empq_buf_printf(b, "<td class=\"h%d%s\"><a href=\"/run/", shade(x[0], x[2]), x[1] > 0 ? " hasdead" : "");
            console__url(b, run_id);
            empq_buf_printf(b, "/responses?");
            if (e < ne) {
                empq_buf_printf(b, "emotion=");
                console__url(b, emo[e]);
                empq_buf_printf(b, "&amp;");
            }
            if (m < nm) {
                empq_buf_printf(b, "source=");
                console__url(b, run->spec->models[m]->alias);
            }
            empq_buf_printf(b, "\" title=\"%" PRIu64 " done, %" PRIu64 " dead of %" PRIu64 "\">%" PRIu64 "/%" PRIu64
                               "</a></td>",
                            x[0], x[1], x[2], x[0], x[2]);
        }
        empq_buf_printf(b, "</tr>\n");
    }
    empq_buf_printf(b, "</tbody></table></div>\n<h2>Files</h2>\n<ul id=\"files\">\n");
    static const char *const files[] = {"responses.jsonl", "dead.jsonl"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        empq_buf_printf(b, "<li><a href=\"/run/");
        console__url(b, run_id);
        empq_buf_printf(b, "/file/%s\">%s</a> (in ", files[i], files[i]);
        console__esc(b, r->c->out_dir);
        empq_buf_printf(b, "/");
        console__esc(b, run_id);
        empq_buf_printf(b, "/ once every job is finished)</li>\n");
    }
    empq_buf_printf(b, "<li><a href=\"/run/");
    console__url(b, run_id);
    empq_buf_printf(b, "/report\">report</a></li>\n</ul>\n<h2>Spec as submitted</h2>\n");
    if (run->spec->spec_path != NULL) {
        empq_buf_printf(b, "<p class=\"hint\">from <code>");
        console__esc(b, run->spec->spec_path);
        empq_buf_printf(b, "</code></p>\n");
    }
    empq_buf_printf(b, "<pre id=\"spec\">");
    console__esc(b, run->spec->spec_yaml != NULL ? run->spec->spec_yaml : "(the spec text was not stored)");
    empq_buf_printf(b, "</pre>\n");
    console__tail(b);
    free(cnt), free(state);
    empq__run__free_unpacked(run, NULL);
    return console__send(r, MHD_HTTP_OK, "text/html; charset=utf-8");
}

/* ==================== dead letters ==================== */

static int by_job(const void *a, const void *b)
{
    const Empq__DeadLetter *x = *(Empq__DeadLetter *const *)a, *y = *(Empq__DeadLetter *const *)b;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* A shell word: as is when safe, else in single quotes. */
static void shell_word(empq_buf *b, const char *s)
{
    if (s[0] != '\0' && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-/=@+") == strlen(s)) {
        console__esc(b, s);
        return;
    }
    empq_buf t = {0};
    empq_buf_append(&t, "'", 1);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\'')
            empq_buf_append(&t, "'\\''", 4);
        else
            empq_buf_append(&t, p, 1);
    }
    empq_buf_append(&t, "'", 2); /* with the NUL */
    console__esc(b, t.data);
    empq_buf_free(&t);
}

enum MHD_Result console__dead(console__req *r, const char *run_id)
{
    enum MHD_Result ret = MHD_NO;
    Empq__Run *run = run_or_answer(r, run_id, &ret);
    if (run == NULL)
        return ret;
    Empq__DeadLetter **dead = NULL;
    size_t nd = 0;
    const console__prompts *pr = console__prompts_of(r->c, run_id);
    if (pr == NULL || empq_store_finished_all(r->c->store, run_id, NULL, NULL, &dead, &nd) != EMPQ_OK) {
        empq__run__free_unpacked(run, NULL);
        return console__store_error(r);
    }
    qsort(dead, nd, sizeof *dead, by_job);
    uint32_t nm = (uint32_t)run->spec->n_models, samples = empq_export_samples(run->spec);
    empq_buf *b = &r->b;
    console__head(b, "Dead letters", run_id, "dead");
    empq_buf_printf(b, "<h1 id=\"title\">Dead letters: <span id=\"n-dead\">%zu</span></h1>\n", nd);
    if (nd > 0) {
        empq_buf_printf(b, "<p>Retry every one of them (their dead letters are deleted and the broker "
                           "requeues the jobs):</p>\n<pre class=\"cmd\" id=\"rerun-all\">empq rerun ");
        shell_word(b, run_id);
        empq_buf_printf(b, " --dead-only</pre>\n");
    } else {
        empq_buf_printf(b, "<p id=\"none\">No job of this run is dead.</p>\n");
    }
    if (nd > 0)
        empq_buf_printf(b, "<div class=\"scroll\"><table class=\"dead\" id=\"dead\">\n<thead><tr><th>job</th>"
                           "<th>prompt</th><th>source</th><th>reason</th><th>last status</th><th>attempts</th>"
                           "<th>excerpt</th><th>retry this one</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < nd; i++) {
        const Empq__DeadLetter *d = dead[i];
        uint32_t p = d->job / (nm * samples), m = (d->job / samples) % nm;
        const char *alias = m < nm ? run->spec->models[m]->alias : "?";
        const char *pid = p < pr->n && pr->v[p] != NULL ? pr->v[p]->id : "?";
        empq_buf_printf(b, "<tr><td class=\"num\">%u</td><td>", d->job);
        console__esc(b, pid);
        empq_buf_printf(b, "</td><td>");
        console__esc(b, alias);
        empq_buf_printf(b, "</td><td class=\"reason\">");
        console__esc(b, d->reason);
        empq_buf_printf(b, "</td><td class=\"num\">%d</td><td class=\"num\">%u</td><td><div class=\"excerpt\">",
                        d->last_status, d->attempts);
        console__esc(b, d->body_excerpt);
        empq_buf_printf(b, "</div></td><td><code class=\"cmd\">empq rerun ");
        shell_word(b, run_id);
        empq_buf_printf(b, " --dead-only --model ");
        shell_word(b, alias);
        empq_buf_printf(b, " --prompt ");
        shell_word(b, pid);
        empq_buf_printf(b, "</code></td></tr>\n");
    }
    if (nd > 0)
        empq_buf_printf(b, "</tbody></table></div>\n");
    console__tail(b);
    empq_store_free_dead(dead, nd);
    empq__run__free_unpacked(run, NULL);
    return console__send(r, MHD_HTTP_OK, "text/html; charset=utf-8");
}
