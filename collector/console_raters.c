/* console_raters.c: the raters page: slots per condition and participants. */
#include "console_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/export.h"
#include "empq/log.h"
#include "empq/ratings.h"

static const char *pstate_name(int st)
{
    switch (st) {
    case EMPQ_RATINGS_P_FINISHED: return "finished";
    case EMPQ_RATINGS_P_IDLE: return "idle past the timeout";
    case EMPQ_RATINGS_P_RECLAIMED: return "left (slot reclaimed)";
    case EMPQ_RATINGS_P_QUESTIONS: return "answering the questions";
    default: return "rating";
    }
}

static int finished_first(const void *a, const void *b)
{
    const empq_ratings_participant *x = a, *y = b;
    int rx = x->state == EMPQ_RATINGS_P_FINISHED ? 0 : 1, ry = y->state == EMPQ_RATINGS_P_FINISHED ? 0 : 1;
    if (rx != ry)
        return rx - ry;
    return x->done_ms < y->done_ms ? 1 : x->done_ms > y->done_ms ? -1 : (int)x->slot - (int)y->slot;
}

enum MHD_Result console__raters(console__req *r, const char *run_id)
{
    empq_ratings_overview ov;
    empq_error err = {0};
    int rc = empq_ratings_overview_get(r->c->store, run_id, empq_now_ms(), &ov, &err);
    if (rc == EMPQ_ESTORE)
        return console__store_error(r);
    empq_buf *b = &r->b;
    console__head(b, "Raters", run_id, "raters");
    empq_buf_printf(b, "<h1 id=\"title\">Raters</h1>\n");
    if (rc != EMPQ_OK) {
        empq_buf_printf(b, "<p id=\"no-plan\">");
        console__esc(b, rc == EMPQ_ENOTFOUND ? "This run has no rating plan yet (empq assign)." : err.msg);
        empq_buf_printf(b, "</p>\n");
        console__tail(b);
        return console__send(r, rc == EMPQ_ENOTFOUND ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR,
                             "text/html; charset=utf-8");
    }
    char med[48];
    if (ov.n_timed > 0)
        snprintf(med, sizeof med, "%.1f s", ov.median_ms / 1000.0);
    else
        snprintf(med, sizeof med, "-");
    empq_buf_printf(b, "<p class=\"facts\">median time per dialogue <b id=\"median\">%s</b> (%zu answers timed, "
                       "shown to answered); a slot idle for %" PRIu64 " min goes back to the pool.</p>\n",
                    med, ov.n_timed, ov.timeout_ms / 60000);
    empq_buf_printf(b, "<div class=\"scroll\"><table id=\"conditions\">\n<thead><tr><th>condition</th><th>slots</th>"
                       "<th>claimed</th><th>finished</th><th>idle (abandoned)</th><th>reclaimed</th>"
                       "<th>attention checks failed</th></tr></thead>\n<tbody>\n");
    for (size_t c = 0; c < ov.n_conditions; c++) {
        const empq_ratings_condition *x = &ov.cond[c];
        empq_buf_printf(b, "<tr><th scope=\"row\">");
        console__esc(b, x->name);
        empq_buf_printf(b, "</th><td class=\"num\">%" PRIu64 "</td><td class=\"num\">%" PRIu64 "</td><td class=\"num\">%" PRIu64
                           "</td><td class=\"num\">%" PRIu64 "</td><td class=\"num\">%" PRIu64 "</td><td class=\"num\">%" PRIu64
                           " of %" PRIu64 "</td></tr>\n",
                        x->slots, x->claimed, x->finished, x->idle, x->reclaimed, x->checks_failed, x->checks);
    }
    empq_buf_printf(b, "</tbody></table></div>\n<h2>Participants</h2>\n");
    qsort(ov.part, ov.n_participants, sizeof *ov.part, finished_first);
    if (ov.n_participants == 0)
        empq_buf_printf(b, "<p id=\"no-participants\">No participant has arrived yet.</p>\n");
    else
        empq_buf_printf(b, "<div class=\"scroll\"><table id=\"participants\">\n<thead><tr><th>participant</th>"
                           "<th>condition</th><th>slot</th><th>state</th><th>answered</th><th>checks passed</th>"
                           "<th>finished or left</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < ov.n_participants; i++) {
        const empq_ratings_participant *p = &ov.part[i];
        char t[40];
        empq_buf_printf(b, "<tr class=\"p-%d\"><td><code>", p->state);
        console__esc(b, p->pid);
        empq_buf_printf(b, "</code></td><td>");
        console__esc(b, p->cond < ov.n_conditions ? ov.cond[p->cond].name : "?");
        empq_buf_printf(b, "</td><td class=\"num\">%u</td><td>%s</td><td class=\"num\">%u%s", p->slot,
                        pstate_name(p->state), p->answered, p->n > 0 ? " of " : "");
        if (p->n > 0)
            empq_buf_printf(b, "%u", p->n);
        empq_buf_printf(b, "</td><td class=\"num\">%u of %u</td><td>%s</td></tr>\n", p->checks_passed, p->checks,
                        p->done_ms > 0 ? empq_export_iso8601(p->done_ms, t, sizeof t) : "");
    }
    if (ov.n_participants > 0)
        empq_buf_printf(b, "</tbody></table></div>\n");
    console__tail(b);
    empq_ratings_overview_clear(&ov);
    return console__send(r, MHD_HTTP_OK, "text/html; charset=utf-8");
}
