/* cmd_status.c: `empq status [RUN] [--json] [--watch]`: the broker's view of
 * one run or all: per source and per emotion done, in flight, pending, dead;
 * per source its mode, the prices it is charged at and its cost, the run's
 * total cost; the rate and an ETA. --watch repeats it: a redrawn screen with a progress
 * bar on a terminal, plain lines (or JSON lines) otherwise. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "empq/export.h"
#include "empq/util.h"

#define RATE_WINDOW 16 /* --watch: samples kept per run for the recent rate */
#define EMOTIONS_FEW 8 /* --watch on a terminal: the slowest emotions shown without --emotions */

static void usage(FILE *f)
{
    fprintf(f, "usage: empq status [RUN] [--json] [--watch [SECONDS]] [--emotions] [--broker ENDPOINT]\n"
               "  RUN             a run id (default: every run the broker knows)\n"
               "  --json          one JSON object on stdout (with --watch: one per line)\n"
               "  --watch [S]     repeat every S seconds (default 1) until the run ends or Ctrl-C;\n"
               "                  on a terminal: one screen redrawn in place, fit to its size (the run,\n"
               "                  %% done and ETA on the first line); plain lines otherwise\n"
               "  --emotions      on that screen, every emotion (default: the slowest few)\n"
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

/* The prices model m's cost is counted at (per million tokens; its batch
 * prices in batch mode) as an object, or JSON null when it has none. */
static json_t *prices_json(const Empq__ModelCounts *m)
{
    if (!m->has_price_in_per_mtok && !m->has_price_out_per_mtok)
        return json_null();
    json_t *p = json_object();
    json_object_set_new(p, "input_per_mtok", json_real(m->price_in_per_mtok));
    json_object_set_new(p, "output_per_mtok", json_real(m->price_out_per_mtok));
    if (m->has_price_cached_in_per_mtok)
        json_object_set_new(p, "cached_input_per_mtok", json_real(m->price_cached_in_per_mtok));
    return p;
}

/* The run's cost: the sum of its sources' costs; *priced set when a
 * source has prices or a cost. */
static double run_cost(const Empq__RunStatus *r, int *priced)
{
    double sum = 0;
    *priced = 0;
    for (size_t i = 0; i < r->n_models; i++) {
        const Empq__ModelCounts *m = r->models[i];
        if (m->has_price_in_per_mtok || (m->has_cost && m->cost > 0))
            *priced = 1;
        if (m->has_cost)
            sum += m->cost;
    }
    return sum;
}

/* "batch price: in 0.5, out 2 per Mtok" (the mode and the prices model m is
 * charged at) into buf; "" when m has neither. Returns buf. */
static const char *fmt_price(const Empq__ModelCounts *m, char *buf, size_t len)
{
    buf[0] = '\0';
    if (m->has_price_in_per_mtok && m->has_price_cached_in_per_mtok)
        snprintf(buf, len, "%s price: in %g, cached in %g, out %g per Mtok", m->mode != NULL ? m->mode : "?",
                 m->price_in_per_mtok, m->price_cached_in_per_mtok, m->price_out_per_mtok);
    else if (m->has_price_in_per_mtok)
        snprintf(buf, len, "%s price: in %g, out %g per Mtok", m->mode != NULL ? m->mode : "?",
                 m->price_in_per_mtok, m->price_out_per_mtok);
    else if (m->mode != NULL)
        snprintf(buf, len, "%s, no prices", m->mode);
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
    json_object_set_new(o, "in_flight", json_integer((json_int_t)r->leased + r->batched));
    json_object_set_new(o, "leased", json_integer(r->leased));
    json_object_set_new(o, "batched", json_integer(r->batched)); /* batch mode: in open provider batches */
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
        json_object_set_new(mo, "in_flight", json_integer((json_int_t)m->leased + m->batched));
        json_object_set_new(mo, "leased", json_integer(m->leased));
        json_object_set_new(mo, "batched", json_integer(m->batched));
        json_object_set_new(mo, "done", json_integer(m->done));
        json_object_set_new(mo, "dead", json_integer(m->dead));
        json_object_set_new(mo, "cache_hits", json_integer(m->cache_hits));
        if (m->has_tokens_in || m->has_tokens_out) {
            json_object_set_new(mo, "tokens_in", json_integer((json_int_t)m->tokens_in));
            json_object_set_new(mo, "tokens_out", json_integer((json_int_t)m->tokens_out));
        }
        if (m->has_cost)
            json_object_set_new(mo, "cost", json_real(m->cost));
        json_object_set_new(mo, "mode", m->mode != NULL ? json_string(m->mode) : json_null());
        json_object_set_new(mo, "prices", prices_json(m));
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
    int priced = 0;
    double cost = run_cost(r, &priced);
    json_object_set_new(o, "cost", priced ? json_real(cost) : json_null());
    json_t *batches = json_array(); /* batch mode: the open provider batches */
    for (size_t i = 0; i < r->n_batches; i++) {
        const Empq__BatchStatus *x = r->batches[i];
        json_t *bo = json_object();
        json_object_set_new(bo, "key", json_string(x->key != NULL ? x->key : ""));
        json_object_set_new(bo, "source", x->model != NULL ? json_string(x->model) : json_null());
        json_object_set_new(bo, "state", json_string(x->state != NULL ? x->state : ""));
        json_object_set_new(bo, "provider_id", json_string(x->provider_id != NULL ? x->provider_id : ""));
        json_object_set_new(bo, "provider_status", json_string(x->provider_status != NULL ? x->provider_status : ""));
        json_object_set_new(bo, "requests", json_integer(x->requests));
        json_object_set_new(bo, "succeeded", json_integer(x->succeeded));
        json_object_set_new(bo, "failed", json_integer(x->failed));
        json_object_set_new(bo, "created_at", x->has_created_ms
                            ? json_string(empq_export_iso8601(x->created_ms, buf, sizeof buf)) : json_null());
        json_object_set_new(bo, "expires_at", x->has_expires_ms
                            ? json_string(empq_export_iso8601(x->expires_ms, buf, sizeof buf)) : json_null());
        json_array_append_new(batches, bo);
    }
    json_object_set_new(o, "batches", batches);
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

/* Percent finished (done or dead) of the run; 100 when it has no job. */
static double run_pct(const Empq__RunStatus *r)
{
    return r->total > 0 ? 100.0 * (r->done + r->dead) / r->total : 100.0;
}

/* "601.3/s", or "-" when the rate is unknown (negative). */
static const char *fmt_rate(double rate, char *buf, size_t len)
{
    if (rate >= 0)
        snprintf(buf, len, "%.1f/s", rate);
    else
        snprintf(buf, len, "-");
    return buf;
}

static void run_text(FILE *f, const Empq__RunStatus *r, double rate, double eta, int tty)
{
    double pct = run_pct(r);
    char rb[32], eb[32];
    fmt_rate(rate, rb, sizeof rb);
    char inb[48] = "";
    if (r->batched > 0)
        snprintf(inb, sizeof inb, " (%u in provider batches)", r->batched);
    fprintf(f, "run %s  %s  %u/%u done (%.1f%%)  in flight %u%s  pending %u  dead %u  cache hits %u  "
               "rate %s  ETA %s%s%s\n",
            r->run_id, state_name(r->state), r->done, r->total, pct, r->leased + r->batched,
            inb, r->pending, r->dead,
            r->cache_hits, rb, cli__fmt_secs(eta, eb, sizeof eb), r->parent != NULL ? "  rerun of " : "",
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
        fprintf(f, "  %-*s  %8u  %9u  %8u  %6u  %10u", w, m->alias, m->done, m->leased + m->batched, m->pending, m->dead,
                m->cache_hits);
        char pb[160];
        if (m->has_cost && (m->cost > 0 || m->has_price_in_per_mtok))
            fprintf(f, "  cost %.4f", m->cost);
        if (fmt_price(m, pb, sizeof pb)[0] != '\0')
            fprintf(f, "  %s", pb);
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
    int priced = 0;
    double cost = run_cost(r, &priced);
    if (priced)
        fprintf(f, "  total cost %.4f\n", cost);
    uint64_t now_ms = empq_now_ms();
    for (size_t i = 0; i < r->n_batches; i++) { /* batch mode: the open provider batches */
        const Empq__BatchStatus *x = r->batches[i];
        char ab[32], db[32];
        double age = x->has_created_ms && now_ms > x->created_ms ? (double)(now_ms - x->created_ms) / 1000.0 : -1;
        double left = x->has_expires_ms && x->expires_ms > now_ms ? (double)(x->expires_ms - now_ms) / 1000.0 : -1;
        fprintf(f, "  batch %s  %s  %s%s%s  %u/%u done, %u failed  age %s  deadline in %s\n",
                x->key != NULL ? x->key : "", x->model != NULL ? x->model : "?", x->state != NULL ? x->state : "",
                x->provider_status != NULL && x->provider_status[0] ? " " : "",
                x->provider_status != NULL ? x->provider_status : "", x->succeeded, x->requests, x->failed,
                age >= 0 ? cli__fmt_secs(age, ab, sizeof ab) : "-", left >= 0 ? cli__fmt_secs(left, db, sizeof db) : "-");
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

/* ==================== --watch on a terminal: one screen ==================== */

/* A frame of the watch screen: lines cut to the terminal's width, at most
 * its height, written over the last frame (no scrolling, so nothing piles
 * up in the scrollback). */
typedef struct screen {
    int w, h;       /* the terminal's size */
    char **line;    /* the frame's lines, cut to w columns */
    int n, cap;
    int dropped;    /* lines past h, not shown */
} screen;

/* Appends a line (printf), cut to the width; past the height it is counted
 * in dropped. */
static void scr_add(screen *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void scr_add(screen *sc, const char *fmt, ...)
{
    if (sc->n >= sc->h) {
        sc->dropped++;
        return;
    }
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf), cut = 0;
    int cols = 0;
    while (cut < len) { /* keep whole UTF-8 characters, at most w columns */
        size_t next = cut + 1;
        while (next < len && ((unsigned char)buf[next] & 0xC0) == 0x80)
            next++;
        if (cols + 1 > sc->w)
            break;
        cols++;
        cut = next;
    }
    buf[cut] = '\0';
    if (sc->n == sc->cap) {
        int cap = sc->cap ? sc->cap * 2 : 64;
        char **v = realloc(sc->line, (size_t)cap * sizeof *v);
        if (v == NULL)
            return;
        sc->line = v;
        sc->cap = cap;
    }
    char *copy = strdup(buf);
    if (copy != NULL)
        sc->line[sc->n++] = copy;
}

static int scr_left(const screen *sc) { return sc->h - sc->n; }

/* Empties the frame, for the next one. */
static void scr_clear(screen *sc)
{
    for (int i = 0; i < sc->n; i++)
        free(sc->line[i]);
    sc->n = 0;
    sc->dropped = 0;
}

/* Prints the frame as plain lines (after the watch, on the normal screen). */
static void scr_print(const screen *sc, FILE *f)
{
    for (int i = 0; i < sc->n; i++)
        fprintf(f, "%s\n", sc->line[i]);
}

/* Writes the frame from the top-left corner: each line then erase-to-end,
 * no newline after the last (a newline on the bottom row would scroll),
 * then erase below. */
static void scr_flush(const screen *sc, FILE *f)
{
    fputs("\033[H", f);
    for (int i = 0; i < sc->n; i++) {
        fputs(sc->line[i], f);
        fputs(i + 1 < sc->n ? "\033[K\r\n" : "\033[K", f);
    }
    fputs("\033[J", f);
}

/* Leaves the alternate screen of --watch, once (*on cleared), before an
 * error or the final frame is printed where it stays. */
static void screen_leave(int *on)
{
    if (*on) {
        fputs("\033[?25h\033[?1049l", stdout);
        fflush(stdout);
    }
    *on = 0;
}

/* The terminal's size; 80 x 24 when it cannot be read. */
static void term_size(int *w, int *h)
{
    struct winsize ws;
    *w = 80;
    *h = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *w = ws.ws_col;
        *h = ws.ws_row;
    }
}

static double emo_frac(const Empq__EmotionCounts *e)
{
    uint32_t all = e->pending + e->leased + e->done + e->dead;
    return all > 0 ? (double)(e->done + e->dead) / all : 1.0;
}

/* One run on the screen: the headline (run, %, ETA) first, a bar, the
 * counts, a line per source (and one under it for a stop reason, an
 * unusable model or dead jobs by reason), then the emotions in columns,
 * slowest first, as many as the lines left allow (all with --emotions);
 * reserve: lines kept for the runs after this one. */
static void run_screen(screen *sc, const Empq__RunStatus *r, double rate, double eta, int all_emotions,
                       int reserve)
{
    double pct = run_pct(r);
    char rb[32], eb[32];
    fmt_rate(rate, rb, sizeof rb);
    scr_add(sc, "run %s  %.1f%%  ETA %s  %u/%u  %s  %s%s%s", r->run_id, pct, cli__fmt_secs(eta, eb, sizeof eb),
            r->done + r->dead, r->total, rb, state_name(r->state), r->parent != NULL ? "  rerun of " : "",
            r->parent != NULL ? r->parent : "");
    if (scr_left(sc) <= reserve)
        return;
    char bar_s[512];
    int bw = sc->w - 10 < (int)sizeof bar_s - 1 ? sc->w - 10 : (int)sizeof bar_s - 1;
    if (bw > 100)
        bw = 100;
    if (bw > 0) {
        int fill = (int)(pct / 100.0 * bw + 0.5);
        for (int i = 0; i < bw; i++)
            bar_s[i] = i < fill ? '#' : '.';
        bar_s[bw] = '\0';
        scr_add(sc, "[%s] %5.1f%%", bar_s, pct);
    }
    if (scr_left(sc) <= reserve)
        return;
    scr_add(sc, "in flight %u  pending %u  dead %u  cache hits %u", r->leased + r->batched, r->pending, r->dead,
            r->cache_hits);
    /* the source column: the longest alias, but the counts always fit
     * (a longer alias is cut) */
    int w = 7;
    for (size_t i = 0; i < r->n_models; i++)
        if ((int)strlen(r->models[i]->alias) > w)
            w = (int)strlen(r->models[i]->alias);
    if (w > sc->w - 53)
        w = sc->w - 53 > 7 ? sc->w - 53 : 7;
    if (scr_left(sc) > reserve + 1)
        scr_add(sc, "  %-*s  %8s  %9s  %8s  %6s  %10s", w, "source", "done", "in flight", "pending", "dead",
                "cache hits");
    for (size_t i = 0; i < r->n_models && scr_left(sc) > reserve; i++) {
        const Empq__ModelCounts *m = r->models[i];
        char extra[160] = "";
        size_t k = 0;
        if (m->has_cost && m->cost > 0)
            k += (size_t)snprintf(extra + k, sizeof extra - k, "  cost %.4f%s", m->cost,
                                  m->mode != NULL && strcmp(m->mode, "batch") == 0 ? " (batch price)" : "");
        if (k < sizeof extra && m->has_rate_factor && m->rate_factor < 1.0)
            k += (size_t)snprintf(extra + k, sizeof extra - k, "  slowed to %.0f%%", 100.0 * m->rate_factor);
        if (k < sizeof extra && m->has_stopped && m->stopped)
            snprintf(extra + k, sizeof extra - k, "  STOPPED");
        scr_add(sc, "  %-*.*s  %8u  %9u  %8u  %6u  %10u%s", w, w, m->alias, m->done, m->leased + m->batched, m->pending,
                m->dead, m->cache_hits, extra);
        /* the room for why: one short line under the source, when there is a reason */
        char why[512] = "";
        k = 0;
        if (m->stop_reason != NULL && m->stop_reason[0] != '\0')
            k += (size_t)snprintf(why + k, sizeof why - k, "stopped: %s", m->stop_reason);
        else if (m->unusable_reason != NULL && m->unusable_reason[0] != '\0')
            k += (size_t)snprintf(why + k, sizeof why - k, "unusable: %s", m->unusable_reason);
        for (size_t j = 0; j < m->n_dead_reasons && k < sizeof why; j++)
            k += (size_t)snprintf(why + k, sizeof why - k, "%s%s %u", k > 0 ? (j == 0 ? "; dead: " : ", ") : "dead: ",
                                  m->dead_reasons[j]->reason, m->dead_reasons[j]->count);
        if (why[0] != '\0' && scr_left(sc) > reserve)
            scr_add(sc, "    \xe2\x86\xb3 %s", why);
    }
    if (r->n_emotions == 0 || scr_left(sc) <= reserve + 1)
        return;

    /* emotions: slowest (least finished) first, in as many columns as fit */
    size_t ne = r->n_emotions, *idx = malloc(ne * sizeof *idx);
    if (idx == NULL)
        return;
    int ew = 0;
    for (size_t i = 0; i < ne; i++) {
        idx[i] = i;
        if ((int)strlen(r->emotions[i]->emotion) > ew)
            ew = (int)strlen(r->emotions[i]->emotion);
    }
    for (size_t i = 1; i < ne; i++) { /* insertion sort, stable: 32 emotions */
        size_t v = idx[i], j = i;
        while (j > 0 && emo_frac(r->emotions[v]) < emo_frac(r->emotions[idx[j - 1]])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
    int cell = ew + 1 + 11 + 3; /* "name done/all" and a gap */
    int ncol = (sc->w - 2 + 3) / cell;
    if (ncol < 1)
        ncol = 1;
    /* the slowest few, or all with --emotions; then what the lines left hold
     * (less the title and a line for the note) */
    size_t shown = all_emotions || ne <= EMOTIONS_FEW ? ne : EMOTIONS_FEW;
    int room = scr_left(sc) - reserve - 1;
    if ((size_t)room * (size_t)ncol < shown)
        shown = room > 1 ? (size_t)(room - 1) * (size_t)ncol : 0;
    if (shown == 0) {
        free(idx);
        return;
    }
    scr_add(sc, "emotions, slowest first (%zu of %zu%s):", shown, ne,
            shown == ne ? "" : all_emotions ? "; a taller terminal shows more" : "; --emotions shows all");
    int rows = (int)((shown + (size_t)ncol - 1) / (size_t)ncol);
    for (int row = 0; row < rows; row++) {
        char buf[1024];
        size_t k = 0;
        buf[0] = '\0';
        for (int col = 0; col < ncol; col++) {
            size_t at = (size_t)col * (size_t)rows + (size_t)row; /* down the columns */
            if (at >= shown || k >= sizeof buf)
                break;
            const Empq__EmotionCounts *e = r->emotions[idx[at]];
            char cnt[32];
            snprintf(cnt, sizeof cnt, "%u/%u", e->done + e->dead, e->pending + e->leased + e->done + e->dead);
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%-*s %11s", col ? "   " : "  ", ew, e->emotion, cnt);
        }
        scr_add(sc, "%s", buf);
    }
    free(idx);
}

void cli__status_screen(FILE *f, const Empq__RunStatus *r, double rate, double eta, int width, int height,
                        int all_emotions)
{
    screen sc = {.w = width, .h = height};
    run_screen(&sc, r, rate, eta, all_emotions, 0);
    scr_print(&sc, f);
    scr_clear(&sc);
    free(sc.line);
}

static volatile sig_atomic_t stop_watch;
static void on_int(int sig)
{
    (void)sig;
    stop_watch = 1;
}

int cli__cmd_status(int argc, char **argv)
{
    enum { JSON = CLI_OPT, WATCH, BROKER, EMOTIONS };
    static const struct option opts[] = {
        {"json", no_argument, NULL, JSON},           {"watch", optional_argument, NULL, WATCH},
        {"broker", required_argument, NULL, BROKER}, {"emotions", no_argument, NULL, EMOTIONS},
        CLI_OPT_HELP_ENTRY,                          {0}};
    cli__args a = {.cmd = "status", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one run at a time"};
    const char *control = cli__default_control();
    int as_json = 0, watch = 0, all_emotions = 0, c;
    double every = 1.0;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case JSON: as_json = 1; break;
        case BROKER: control = optarg; break;
        case EMOTIONS: all_emotions = 1; break;
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
    const char *run = a.args[0];
    int tty = isatty(STDOUT_FILENO) && !as_json;
    if (watch) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_int;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    /* --watch on a terminal: one screen redrawn in place, on the alternate
     * screen (as top and less), so no frame stays in the scrollback; the
     * last frame is printed on the normal screen at the end */
    int screen_mode = tty && watch;
    screen sc = {0};
    if (screen_mode)
        fputs("\033[?1049h\033[?25l", stdout);
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
            screen_leave(&screen_mode);
            cli__err("%s", err.msg);
            code = CLI_SERVICE;
            break;
        }
        if (!reply->ok) {
            screen_leave(&screen_mode);
            cli__err("broker at %s: %s", control, reply->error != NULL ? reply->error : "request refused");
            empq__control_reply__free_unpacked(reply, NULL);
            code = CLI_FAIL; /* the broker answered: a refusal is not "unreachable" */
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
        } else if (screen_mode) {
            scr_clear(&sc);
            term_size(&sc.w, &sc.h);
            if (reply->n_runs == 0)
                scr_add(&sc, run != NULL ? "no such run" : "no runs");
            for (size_t i = 0; i < reply->n_runs; i++) {
                const Empq__RunStatus *r = reply->runs[i];
                double rate = run_rate(r, hist_of(&rs, r->run_id), now);
                run_screen(&sc, r, rate, run_eta(r, rate), all_emotions, 2 * (int)(reply->n_runs - 1 - i));
                all_finished &= finished(r);
            }
            int last = !watch || stop_watch || (run != NULL && all_finished) || (run != NULL && reply->n_runs == 0);
            if (last) { /* back to the normal screen, the final frame printed once */
                screen_leave(&screen_mode);
                scr_print(&sc, stdout);
            } else {
                scr_flush(&sc, stdout);
            }
        } else {
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
    if (screen_mode) { /* Ctrl-C: the last frame drawn, printed once where it stays */
        screen_leave(&screen_mode);
        scr_print(&sc, stdout);
    }
    scr_clear(&sc);
    free(sc.line);
    fflush(stdout);
    free(rs.v);
    return code;
}
