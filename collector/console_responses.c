/* console_responses.c: the responses side by side: one row per prompt, the
 * human answer and each model's answer in columns, with filters and pages.
 *
 * Redis: without a content filter (finish reason, state, cache hit, text)
 * a page is one HMGET pipeline of its rows' jobs (the prompts are cached
 * after one HGETALL); with one, the run's results and dead letters are read
 * in one pipeline (two HGETALLs; kept until their counts change, checked
 * with two HLENs) and filtered here. Either way a constant number of round
 * trips per page view. */
#include "console_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "empq/analysis.h"
#include "empq/export.h"

#define PER_PAGE 50
#define PER_PAGE_MAX 200

typedef struct filters {
    const char *emotion, *source, *finish, *state, *cache, *q;
    long page, per;
    int source_idx; /* -1: every source */
} filters;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int is_human(const Empq__ModelSpec *m) { return m->provider != NULL && strcmp(m->provider, "human") == 0; }

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* The query string of f with page set to page (HTML-escaped for an href). */
static void query(empq_buf *b, const filters *f, long page)
{
    const char *names[] = {"emotion", "source", "finish", "state", "cache", "q"};
    const char *vals[] = {f->emotion, f->source, f->finish, f->state, f->cache, f->q};
    empq_buf_printf(b, "?page=%ld", page);
    if (f->per != PER_PAGE)
        empq_buf_printf(b, "&amp;per=%ld", f->per);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vals[i] != NULL) {
            empq_buf_printf(b, "&amp;%s=", names[i]);
            console__url(b, vals[i]);
        }
}

static void option(empq_buf *b, const char *value, const char *label, const char *cur)
{
    empq_buf_printf(b, "<option value=\"");
    console__esc(b, value);
    empq_buf_printf(b, "\"%s>", cur != NULL && strcmp(cur, value) == 0 ? " selected" : "");
    console__esc(b, label);
    empq_buf_printf(b, "</option>");
}

static void form(empq_buf *b, const filters *f, const Empq__Run *run, const console__prompts *pr)
{
    empq_buf_printf(b, "<form method=\"get\" class=\"filters\" id=\"filters\">\n<label>emotion <select name=\"emotion\">");
    option(b, "", "any", f->emotion);
    for (size_t e = 0; e < pr->n_emotions; e++)
        option(b, pr->emotions[e], pr->emotions[e], f->emotion);
    empq_buf_printf(b, "</select></label>\n<label>source <select name=\"source\">");
    option(b, "", "every source", f->source);
    for (size_t m = 0; m < run->spec->n_models; m++)
        option(b, run->spec->models[m]->alias, run->spec->models[m]->alias, f->source);
    empq_buf_printf(b, "</select></label>\n<label>state <select name=\"state\">");
    option(b, "", "any", f->state);
    option(b, "done", "done", f->state);
    option(b, "dead", "dead", f->state);
    option(b, "pending", "not finished", f->state);
    empq_buf_printf(b, "</select></label>\n<label>cache <select name=\"cache\">");
    option(b, "", "any", f->cache);
    option(b, "hit", "cache hit", f->cache);
    option(b, "miss", "fresh", f->cache);
    empq_buf_printf(b, "</select></label>\n<label>finish reason <input name=\"finish\" size=\"8\" value=\"");
    console__esc(b, f->finish);
    empq_buf_printf(b, "\" placeholder=\"stop, length\"></label>\n<label>text <input type=\"search\" name=\"q\" value=\"");
    console__esc(b, f->q);
    empq_buf_printf(b, "\" placeholder=\"words in prompt or answers\"></label>\n"
                       "<button type=\"submit\">Filter</button>\n</form>\n");
}

/* Does job (with its result / dead letter) pass the per-job filters? */
static int job_passes(const filters *f, const Empq__Result *res, const Empq__DeadLetter *dead)
{
    if (f->state != NULL) {
        const char *st = res != NULL ? "done" : dead != NULL ? "dead" : "pending";
        if (strcmp(st, f->state) != 0)
            return 0;
    }
    if (f->cache != NULL && (res == NULL || (res->cache_hit != 0) != (strcmp(f->cache, "hit") == 0)))
        return 0;
    if (f->finish != NULL &&
        (res == NULL || res->gen == NULL || res->gen->finish_reason == NULL || strcasecmp(res->gen->finish_reason, f->finish) != 0))
        return 0;
    return 1;
}

/* hay holds needle, ASCII letters compared without case. */
static int has_text(const char *hay, const char *needle)
{
    if (hay == NULL)
        return 0;
    size_t n = strlen(needle);
    for (const char *h = hay; *h != '\0'; h++)
        if (strncasecmp(h, needle, n) == 0)
            return 1;
    return 0;
}

static void cell(empq_buf *b, const Empq__ModelSpec *m, const Empq__Prompt *p, const Empq__Result *res,
                 const Empq__DeadLetter *dead)
{
    empq_buf_printf(b, "<td class=\"resp\" data-source=\"");
    console__esc(b, m->alias);
    const char *text = res != NULL && res->gen != NULL ? res->gen->text : NULL;
    if (text == NULL && res != NULL && is_human(m) && p != NULL)
        text = p->human_response;
    if (res == NULL) {
        if (dead != NULL) {
            empq_buf_printf(b, "\"><p class=\"deadmsg\">dead: ");
            console__esc(b, dead->reason);
            empq_buf_printf(b, "</p><p class=\"meta\">status %d, %u attempts</p></td>", dead->last_status, dead->attempts);
        } else {
            empq_buf_printf(b, "\"><p class=\"pending\">not finished</p></td>");
        }
        return;
    }
    empq_style_counts sc;
    empq_style_count(text, &sc);
    empq_buf_printf(b, "\"><p class=\"text\">");
    console__esc(b, text);
    empq_buf_printf(b, "</p><p class=\"meta\"><span title=\"characters\">%zu ch</span> <span title=\"words\">%zu w</span> "
                       "<span title=\"emojis\">%zu emoji</span> <span title=\"exclamation marks\">%zu !</span>",
                    text != NULL ? utf8_len(text) : 0, sc.words, sc.emojis, sc.exclamations);
    if (res->gen != NULL && !is_human(m))
        empq_buf_printf(b, " <span title=\"latency\">%u ms</span> <span title=\"tokens in / out\">%u/%u tok</span>",
                        res->gen->latency_ms, res->gen->tokens_in, res->gen->tokens_out);
    empq_buf_printf(b, " <span title=\"attempts\">%u att</span>", res->attempts);
    if (res->cache_hit)
        empq_buf_printf(b, " <span class=\"hit\">cache</span>");
    if (res->gen != NULL && res->gen->finish_reason != NULL && res->gen->finish_reason[0] != '\0') {
        empq_buf_printf(b, " <span class=\"finish\">");
        console__esc(b, res->gen->finish_reason);
        empq_buf_printf(b, "</span>");
    }
    empq_buf_printf(b, "</p></td>");
}

enum MHD_Result console__responses(console__req *r, const char *run_id)
{
    uint64_t t0 = now_us();
    filters f = {console__arg(r, "emotion"), console__arg(r, "source"), console__arg(r, "finish"),
                 console__arg(r, "state"),   console__arg(r, "cache"),  console__arg(r, "q"),
                 1, PER_PAGE, -1};
    const char *pg = console__arg(r, "page"), *per = console__arg(r, "per");
    if (pg != NULL)
        f.page = strtol(pg, NULL, 10);
    if (per != NULL)
        f.per = strtol(per, NULL, 10);
    if (f.page < 1 || f.page > 10000000 || f.per < 1 || f.per > PER_PAGE_MAX)
        return console__error(r, MHD_HTTP_BAD_REQUEST, "Bad page",
                              "page is a number from 1, per a number from 1 to 200.");
    if ((f.state != NULL && strcmp(f.state, "done") != 0 && strcmp(f.state, "dead") != 0 &&
         strcmp(f.state, "pending") != 0) ||
        (f.cache != NULL && strcmp(f.cache, "hit") != 0 && strcmp(f.cache, "miss") != 0))
        return console__error(r, MHD_HTTP_BAD_REQUEST, "Bad filter",
                              "state is done, dead or pending; cache is hit or miss.");
    Empq__Run *run = NULL;
    int rc = empq_store_run_get(r->c->store, run_id, &run);
    if (rc == EMPQ_ESTORE)
        return console__store_error(r);
    if (rc != EMPQ_OK)
        return console__error(r, MHD_HTTP_NOT_FOUND, "No such run", "There is no run with this id in Redis.");
    uint32_t nm = (uint32_t)run->spec->n_models, samples = empq_export_samples(run->spec);
    if (f.source != NULL) {
        for (uint32_t m = 0; m < nm; m++)
            if (strcmp(run->spec->models[m]->alias, f.source) == 0)
                f.source_idx = (int)m;
        if (f.source_idx < 0) {
            empq__run__free_unpacked(run, NULL);
            return console__error(r, MHD_HTTP_BAD_REQUEST, "Unknown source", "This run has no source of that name.");
        }
    }
    uint32_t m0 = f.source_idx >= 0 ? (uint32_t)f.source_idx : 0, m1 = f.source_idx >= 0 ? m0 + 1 : nm;
    uint32_t ncol = m1 - m0;
    const console__prompts *pr = console__prompts_of(r->c, run_id);
    if (pr == NULL) {
        empq__run__free_unpacked(run, NULL);
        return console__store_error(r);
    }
    int content = f.finish != NULL || f.state != NULL || f.cache != NULL || f.q != NULL;
    uint64_t total = empq_export_total_jobs(run);
    const Empq__Result **res_of = NULL;
    const Empq__DeadLetter **dead_of = NULL;
    uint32_t *rows = calloc(pr->n + 1, sizeof *rows);
    size_t nrows = 0;
    if (rows == NULL)
        goto oom;
    if (content) {
        const console__snapshot *sn = console__finished_of(r->c, run_id);
        if (sn == NULL) {
            free(rows);
            empq__run__free_unpacked(run, NULL);
            return console__store_error(r);
        }
        res_of = calloc(total + 1, sizeof *res_of);
        dead_of = calloc(total + 1, sizeof *dead_of);
        if (res_of == NULL || dead_of == NULL)
            goto oom;
        for (size_t i = 0; i < sn->nres; i++)
            if (sn->res[i]->job < total)
                res_of[sn->res[i]->job] = sn->res[i];
        for (size_t i = 0; i < sn->ndl; i++)
            if (sn->dl[i]->job < total)
                dead_of[sn->dl[i]->job] = sn->dl[i];
    }
    for (uint32_t p = 0; p < pr->n; p++) {
        const Empq__Prompt *pp = pr->v[p];
        if (pp == NULL || (f.emotion != NULL && strcmp(pp->emotion, f.emotion) != 0))
            continue;
        if (content) {
            int jobs_ok = f.finish == NULL && f.state == NULL && f.cache == NULL;
            int text_ok = f.q == NULL || has_text(pp->situation, f.q) || has_text(pp->prompt, f.q) ||
                          has_text(pp->id, f.q);
            for (uint32_t m = m0; m < m1; m++) {
                uint64_t job = ((uint64_t)p * nm + m) * samples;
                const Empq__Result *x = job < total ? res_of[job] : NULL;
                if (!jobs_ok && job_passes(&f, x, job < total ? dead_of[job] : NULL))
                    jobs_ok = 1;
                if (!text_ok && x != NULL && x->gen != NULL && has_text(x->gen->text, f.q))
                    text_ok = 1;
                if (!text_ok && is_human(run->spec->models[m]) && has_text(pp->human_response, f.q))
                    text_ok = 1;
            }
            if (!jobs_ok || !text_ok)
                continue;
        }
        rows[nrows++] = p;
    }
    long pages = nrows == 0 ? 1 : (long)((nrows + (size_t)f.per - 1) / (size_t)f.per);
    if (f.page > pages)
        f.page = pages;
    size_t from = (size_t)(f.page - 1) * (size_t)f.per, to = from + (size_t)f.per < nrows ? from + (size_t)f.per : nrows;
    size_t nj = (to - from) * ncol;
    Empq__Result **pres = calloc(nj + 1, sizeof *pres);
    Empq__DeadLetter **pdead = calloc(nj + 1, sizeof *pdead);
    uint32_t *jobs = calloc(nj + 1, sizeof *jobs);
    if (pres == NULL || pdead == NULL || jobs == NULL) {
        free(pres), free(pdead), free(jobs);
        goto oom;
    }
    for (size_t i = from; i < to; i++)
        for (uint32_t m = m0; m < m1; m++)
            jobs[(i - from) * ncol + (m - m0)] = (uint32_t)(((uint64_t)rows[i] * nm + m) * samples);
    if (content) {
        for (size_t k = 0; k < nj; k++)
            pres[k] = jobs[k] < total ? (Empq__Result *)res_of[jobs[k]] : NULL,
            pdead[k] = jobs[k] < total ? (Empq__DeadLetter *)dead_of[jobs[k]] : NULL;
    } else if (empq_store_jobs_get(r->c->store, run_id, jobs, nj, pres, pdead) != EMPQ_OK) {
        free(pres), free(pdead), free(jobs), free(rows);
        empq__run__free_unpacked(run, NULL);
        return console__store_error(r);
    }

    empq_buf *b = &r->b;
    console__head(b, "Responses", run_id, "responses");
    empq_buf_printf(b, "<h1 id=\"title\">Responses side by side</h1>\n");
    form(b, &f, run, pr);
    empq_buf_printf(b, "<p class=\"hint\" id=\"count\"><b id=\"n-rows\">%zu</b> prompts match; page <b id=\"page\">%ld</b> "
                       "of <b id=\"pages\">%ld</b>.</p>\n",
                    nrows, f.page, pages);
    empq_buf_printf(b, "<div class=\"scroll\"><table class=\"side\" id=\"side\">\n<thead><tr><th>prompt</th>");
    for (uint32_t m = m0; m < m1; m++) {
        empq_buf_printf(b, "<th data-source=\"");
        console__esc(b, run->spec->models[m]->alias);
        empq_buf_printf(b, "\">");
        console__esc(b, run->spec->models[m]->alias);
        empq_buf_printf(b, "</th>");
    }
    empq_buf_printf(b, "</tr></thead>\n<tbody>\n");
    for (size_t i = from; i < to; i++) {
        const Empq__Prompt *pp = pr->v[rows[i]];
        empq_buf_printf(b, "<tr data-prompt=\"");
        console__esc(b, pp->id);
        empq_buf_printf(b, "\"><th scope=\"row\" class=\"prompt\"><span class=\"pid\">");
        console__esc(b, pp->id);
        empq_buf_printf(b, "</span> <span class=\"emotion\">");
        console__esc(b, pp->emotion);
        empq_buf_printf(b, "</span><p class=\"situation\">");
        console__esc(b, pp->situation);
        empq_buf_printf(b, "</p><p class=\"speaker\">");
        console__esc(b, pp->prompt);
        empq_buf_printf(b, "</p></th>");
        for (uint32_t m = m0; m < m1; m++) {
            size_t k = (i - from) * ncol + (m - m0);
            cell(b, run->spec->models[m], pp, pres[k], pdead[k]);
        }
        empq_buf_printf(b, "</tr>\n");
    }
    empq_buf_printf(b, "</tbody></table></div>\n<nav class=\"pages\">");
    if (f.page > 1) {
        empq_buf_printf(b, "<a id=\"prev\" href=\"");
        query(b, &f, f.page - 1);
        empq_buf_printf(b, "\">previous</a> ");
    }
    if (f.page < pages) {
        empq_buf_printf(b, "<a id=\"next\" href=\"");
        query(b, &f, f.page + 1);
        empq_buf_printf(b, "\">next</a>");
    }
    empq_buf_printf(b, "</nav>\n");
    uint64_t us = now_us() - t0;
    empq_buf_printf(b, "<p class=\"hint\" id=\"render\">rendered in %.1f ms</p>\n", (double)us / 1000.0);
    console__tail(b);
    snprintf(r->timing, sizeof r->timing, "render;dur=%.2f", (double)us / 1000.0);

    if (!content)
        for (size_t k = 0; k < nj; k++) {
            if (pres[k] != NULL)
                empq__result__free_unpacked(pres[k], NULL);
            if (pdead[k] != NULL)
                empq__dead_letter__free_unpacked(pdead[k], NULL);
        }
    free(pres), free(pdead), free(jobs), free(rows), free(res_of), free(dead_of);
    empq__run__free_unpacked(run, NULL);
    return console__send(r, MHD_HTTP_OK, "text/html; charset=utf-8");
oom:
    free(rows), free(res_of), free(dead_of);
    empq__run__free_unpacked(run, NULL);
    return MHD_NO;
}
