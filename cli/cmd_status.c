/* cmd_status.c: `empq status [RUN] [--json] [--watch]`: the broker's view of
 * one run or all: per source and per emotion done, in flight, pending, dead;
 * the rate and an ETA. --watch repeats it: a redrawn screen with a progress
 * bar on a terminal, plain lines (or JSON lines) otherwise. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "empq/export.h"
#include "empq/util.h"

#define RATE_WINDOW 16 /* --watch: samples kept per run for the recent rate */

static void usage(FILE *f)
{
    fprintf(f, "usage: empq status [RUN] [--json] [--watch [SECONDS]] [--broker ENDPOINT]\n"
               "  RUN             a run id (default: every run the broker knows)\n"
               "  --json          one JSON object on stdout (with --watch: one per line)\n"
               "  --watch [S]     repeat every S seconds (default 1) until the run ends or Ctrl-C;\n"
               "                  a progress bar on a terminal, plain lines otherwise\n"
               "  --broker EP     broker control endpoint (default $EMPQ_BROKER_CONTROL or\n"
               "                  " CLI_DEFAULT_CONTROL ")\n"
               "Rate: finished jobs per second (recent window with --watch, else since the\n"
               "run's first dispatch); ETA: what is left at that rate.\n");
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

/* Recent finished counts of one run, for the rate under --watch. */
typedef struct rate_hist {
    char run[64];
    uint64_t t[RATE_WINDOW];
    uint64_t n[RATE_WINDOW];
    size_t len, head;
} rate_hist;

typedef struct rates {
    rate_hist *v;
    size_t n;
} rates;

static rate_hist *hist_of(rates *rs, const char *run)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].run, run) == 0)
            return &rs->v[i];
    rate_hist *v = realloc(rs->v, (rs->n + 1) * sizeof *v);
    if (v == NULL)
        return NULL;
    rs->v = v;
    rate_hist *h = &v[rs->n++];
    memset(h, 0, sizeof *h);
    snprintf(h->run, sizeof h->run, "%s", run);
    return h;
}

/* Finished jobs per second: over the recent samples when there are two,
 * else since the run's first dispatch. -1 when unknown. */
static double run_rate(const Empq__RunStatus *r, rate_hist *h, uint64_t now)
{
    uint64_t fin = (uint64_t)r->done + r->dead;
    if (h != NULL) {
        size_t slot = (h->head + h->len) % RATE_WINDOW;
        if (h->len == RATE_WINDOW) {
            h->head = (h->head + 1) % RATE_WINDOW;
            h->len--;
        }
        h->t[slot] = now;
        h->n[slot] = fin;
        h->len++;
        if (h->len >= 2) {
            uint64_t t0 = h->t[h->head], n0 = h->n[h->head];
            if (now > t0 && fin >= n0)
                return (double)(fin - n0) * 1000.0 / (double)(now - t0);
        }
    }
    if (!r->has_started_ms || r->started_ms == 0)
        return -1;
    uint64_t end = r->has_finished_ms && r->finished_ms > 0 ? r->finished_ms : now;
    if (end <= r->started_ms)
        return -1;
    return (double)fin * 1000.0 / (double)(end - r->started_ms);
}

static int finished(const Empq__RunStatus *r)
{
    return r->state == EMPQ__RUN_STATE__RUN_DONE || r->state == EMPQ__RUN_STATE__RUN_CANCELLED;
}

/* Pending jobs of stopped models: they will not run. */
static uint32_t stopped_pending(const Empq__RunStatus *r)
{
    uint32_t n = 0;
    for (size_t i = 0; i < r->n_models; i++)
        if (r->models[i]->has_stopped && r->models[i]->stopped)
            n += r->models[i]->pending;
    return n;
}

/* Seconds left at rate, -1 when unknown (or when only jobs of stopped
 * models are left), 0 when finished. */
static double run_eta(const Empq__RunStatus *r, double rate)
{
    uint32_t left = r->total > r->done + r->dead ? r->total - r->done - r->dead : 0;
    if (left == 0 || r->state == EMPQ__RUN_STATE__RUN_DONE)
        return 0;
    uint32_t stuck = stopped_pending(r);
    left = left > stuck ? left - stuck : 0;
    if (left == 0)
        return -1;
    if (rate <= 0 || r->state != EMPQ__RUN_STATE__RUN_ACTIVE)
        return -1;
    return left / rate;
}

static const char *fmt_secs(double s, char *buf, size_t len)
{
    if (s < 0) {
        snprintf(buf, len, "-");
    } else {
        unsigned long v = (unsigned long)ceil(s);
        if (v >= 3600)
            snprintf(buf, len, "%luh%02lum", v / 3600, v / 60 % 60);
        else if (v >= 60)
            snprintf(buf, len, "%lum%02lus", v / 60, v % 60);
        else
            snprintf(buf, len, "%lus", v);
    }
    return buf;
}

static json_t *run_json(const Empq__RunStatus *r, double rate, double eta)
{
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_string(r->run_id));
    json_object_set_new(o, "state", json_string(state_name(r->state)));
    json_object_set_new(o, "parent", r->parent != NULL ? json_string(r->parent) : json_null());
    json_object_set_new(o, "total", json_integer(r->total));
    json_object_set_new(o, "pending", json_integer(r->pending));
    json_object_set_new(o, "in_flight", json_integer(r->leased));
    json_object_set_new(o, "leased", json_integer(r->leased));
    json_object_set_new(o, "done", json_integer(r->done));
    json_object_set_new(o, "dead", json_integer(r->dead));
    json_object_set_new(o, "cache_hits", json_integer(r->cache_hits));
    json_object_set_new(o, "rate_per_s", rate >= 0 ? json_real(rate) : json_null());
    json_object_set_new(o, "eta_s", eta >= 0 ? json_real(eta) : json_null());
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
        json_object_set_new(mo, "in_flight", json_integer(m->leased));
        json_object_set_new(mo, "leased", json_integer(m->leased));
        json_object_set_new(mo, "done", json_integer(m->done));
        json_object_set_new(mo, "dead", json_integer(m->dead));
        json_object_set_new(mo, "cache_hits", json_integer(m->cache_hits));
        if (m->has_tokens_in || m->has_tokens_out) {
            json_object_set_new(mo, "tokens_in", json_integer((json_int_t)m->tokens_in));
            json_object_set_new(mo, "tokens_out", json_integer((json_int_t)m->tokens_out));
        }
        if (m->has_cost)
            json_object_set_new(mo, "cost", json_real(m->cost));
        if (m->has_stopped)
            json_object_set_new(mo, "stopped", json_boolean(m->stopped));
        if (m->has_rate_factor)
            json_object_set_new(mo, "rate_factor", json_real(m->rate_factor));
        if (m->has_rate_limited)
            json_object_set_new(mo, "rate_limited", json_integer(m->rate_limited));
        if (m->stop_reason != NULL)
            json_object_set_new(mo, "stop_reason", json_string(m->stop_reason));
        if (m->unusable_reason != NULL)
            json_object_set_new(mo, "unusable_reason", json_string(m->unusable_reason));
        json_t *dr = json_object();
        for (size_t k = 0; k < m->n_dead_reasons; k++)
            json_object_set_new(dr, m->dead_reasons[k]->reason, json_integer(m->dead_reasons[k]->count));
        json_object_set_new(mo, "dead_reasons", dr);
        json_array_append_new(models, mo);
    }
    json_object_set_new(o, "models", models);
    json_t *emos = json_array();
    for (size_t i = 0; i < r->n_emotions; i++) {
        const Empq__EmotionCounts *e = r->emotions[i];
        json_t *eo = json_object();
        json_object_set_new(eo, "emotion", json_string(e->emotion));
        json_object_set_new(eo, "pending", json_integer(e->pending));
        json_object_set_new(eo, "in_flight", json_integer(e->leased));
        json_object_set_new(eo, "done", json_integer(e->done));
        json_object_set_new(eo, "dead", json_integer(e->dead));
        json_array_append_new(emos, eo);
    }
    json_object_set_new(o, "emotions", emos);
    return o;
}

static void bar(FILE *f, const Empq__RunStatus *r, int width)
{
    double frac = r->total > 0 ? (double)(r->done + r->dead) / r->total : 1.0;
    int fill = (int)(frac * width + 0.5);
    fputc('[', f);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', f);
    fprintf(f, "] %5.1f%%\n", 100.0 * frac);
}

static void run_text(FILE *f, const Empq__RunStatus *r, double rate, double eta, int tty)
{
    double pct = r->total > 0 ? 100.0 * (r->done + r->dead) / r->total : 100.0;
    char rb[32], eb[32];
    if (rate >= 0)
        snprintf(rb, sizeof rb, "%.1f/s", rate);
    else
        snprintf(rb, sizeof rb, "-");
    fprintf(f, "run %s  %s  %u/%u done (%.1f%%)  in flight %u  pending %u  dead %u  cache hits %u  "
               "rate %s  ETA %s%s%s\n",
            r->run_id, state_name(r->state), r->done, r->total, pct, r->leased, r->pending, r->dead,
            r->cache_hits, rb, fmt_secs(eta, eb, sizeof eb), r->parent != NULL ? "  rerun of " : "",
            r->parent != NULL ? r->parent : "");
    if (tty)
        bar(f, r, 50);
    int w = 7;
    for (size_t i = 0; i < r->n_models; i++)
        if ((int)strlen(r->models[i]->alias) > w)
            w = (int)strlen(r->models[i]->alias);
    for (size_t i = 0; i < r->n_emotions; i++)
        if ((int)strlen(r->emotions[i]->emotion) > w)
            w = (int)strlen(r->emotions[i]->emotion);
    fprintf(f, "  %-*s  %8s  %9s  %8s  %6s  %10s\n", w, "source", "done", "in flight", "pending", "dead",
            "cache hits");
    for (size_t i = 0; i < r->n_models; i++) {
        const Empq__ModelCounts *m = r->models[i];
        fprintf(f, "  %-*s  %8u  %9u  %8u  %6u  %10u", w, m->alias, m->done, m->leased, m->pending, m->dead,
                m->cache_hits);
        if (m->has_cost && m->cost > 0)
            fprintf(f, "  cost %.4f", m->cost);
        if (m->has_rate_factor && m->rate_factor < 1.0)
            fprintf(f, "  slowed to %.0f%% (429s %u)", 100.0 * m->rate_factor, m->rate_limited);
        if (m->has_stopped && m->stopped)
            fprintf(f, "  STOPPED (%s)", m->stop_reason != NULL ? m->stop_reason : "max_cost");
        else if (m->unusable_reason != NULL)
            fprintf(f, "  UNUSABLE: %s", m->unusable_reason);
        fputc('\n', f);
        if (m->n_dead_reasons > 0) {
            fprintf(f, "  %-*s  dead:", w, "");
            for (size_t k = 0; k < m->n_dead_reasons; k++)
                fprintf(f, "%s %s %u", k ? "," : "", m->dead_reasons[k]->reason, m->dead_reasons[k]->count);
            fputc('\n', f);
        }
    }
    uint32_t stuck = stopped_pending(r);
    if (stuck > 0 && !finished(r))
        fprintf(f, "  %u pending jobs of stopped sources will not run: the run stays %s until cancelled "
                   "(rerun those sources in a new run)\n",
                stuck, state_name(r->state));
    if (r->n_emotions > 0) {
        fprintf(f, "  %-*s  %8s  %9s  %8s  %6s\n", w, "emotion", "done", "in flight", "pending", "dead");
        for (size_t i = 0; i < r->n_emotions; i++) {
            const Empq__EmotionCounts *e = r->emotions[i];
            fprintf(f, "  %-*s  %8u  %9u  %8u  %6u\n", w, e->emotion, e->done, e->leased, e->pending, e->dead);
        }
    }
}

static volatile sig_atomic_t stop_watch;
static void on_int(int sig)
{
    (void)sig;
    stop_watch = 1;
}

int cli__cmd_status(int argc, char **argv)
{
    enum { JSON = CLI_OPT, WATCH, BROKER };
    static const struct option opts[] = {
        {"json", no_argument, NULL, JSON},           {"watch", optional_argument, NULL, WATCH},
        {"broker", required_argument, NULL, BROKER}, CLI_OPT_HELP_ENTRY,
        {0}};
    cli__args a = {.cmd = "status", .opts = opts, .usage = usage, .one = "one run at a time"};
    const char *control = cli__default_control();
    int as_json = 0, watch = 0, c;
    double every = 1.0;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case JSON: as_json = 1; break;
        case BROKER: control = optarg; break;
        case WATCH: {
            watch = 1;
            /* the seconds: --watch=S, or the next argument when it starts with a digit */
            const char *secs = optarg;
            if (secs == NULL && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
                secs = argv[optind++];
            if (secs != NULL) {
                char *end = NULL;
                every = strtod(secs, &end);
                if (*end != '\0' || every < 0.05 || every > 3600) {
                    cli__err("status: --watch wants seconds in 0.05..3600, got '%s'", secs);
                    a.code = CLI_USAGE;
                }
            }
            break;
        }
        }
    }
    if (c == 0)
        return a.code;
    const char *run = a.arg;
    int tty = isatty(STDOUT_FILENO) && !as_json;
    if (watch) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_int;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    rates rs = {NULL, 0};
    int code = CLI_OK;
    for (int turn = 0;; turn++) {
        Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
        req.body_case = EMPQ__CONTROL_REQUEST__BODY_STATUS;
        req.status = (char *)(run != NULL ? run : "");
        Empq__ControlReply *reply = NULL;
        empq_error err = {0};
        int rc = cli__control(control, &req, CLI_CONTROL_TIMEOUT_MS, &reply, &err);
        if (rc != EMPQ_OK) {
            cli__err("%s", err.msg);
            code = CLI_SERVICE;
            break;
        }
        if (!reply->ok) {
            cli__err("broker at %s: %s", control, reply->error != NULL ? reply->error : "request refused");
            empq__control_reply__free_unpacked(reply, NULL);
            code = run != NULL ? CLI_FAIL : CLI_SERVICE;
            break;
        }
        uint64_t now = empq_now_ms();
        int all_finished = reply->n_runs > 0;
        if (as_json) {
            json_t *o = json_object();
            json_t *runs = json_array();
            for (size_t i = 0; i < reply->n_runs; i++) {
                const Empq__RunStatus *r = reply->runs[i];
                double rate = run_rate(r, watch ? hist_of(&rs, r->run_id) : NULL, now);
                json_array_append_new(runs, run_json(r, rate, run_eta(r, rate)));
                all_finished &= finished(r);
            }
            json_object_set_new(o, "runs", runs);
            char *s = json_dumps(o, JSON_PRESERVE_ORDER | (watch ? JSON_COMPACT : JSON_INDENT(2)));
            if (s != NULL)
                printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            if (tty && watch)
                fputs("\033[H\033[J", stdout); /* redraw from the top */
            if (reply->n_runs == 0)
                printf(run != NULL ? "no such run\n" : "no runs\n");
            for (size_t i = 0; i < reply->n_runs; i++) {
                const Empq__RunStatus *r = reply->runs[i];
                double rate = run_rate(r, watch ? hist_of(&rs, r->run_id) : NULL, now);
                run_text(stdout, r, rate, run_eta(r, rate), tty);
                all_finished &= finished(r);
            }
        }
        fflush(stdout);
        if (run != NULL && reply->n_runs == 0)
            code = CLI_FAIL;
        empq__control_reply__free_unpacked(reply, NULL);
        if (!watch || stop_watch || (run != NULL && all_finished) || code != CLI_OK)
            break;
        struct timespec ts = {(time_t)every, (long)((every - (double)(time_t)every) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && !stop_watch)
            ;
        if (stop_watch)
            break;
    }
    free(rs.v);
    return code;
}
