/* site.c: the rating site (see site.h): routes, pages, HTTP statuses. */
#include "site.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "collector.h"
#include "empq/log.h"
#include "empq/ratings.h"
#include "empq/store.h"
#include "empq/util.h"
#include "mhd.h"

#define MAX_BODY 4096
#define MAX_BODY_FINISH (256 * 1024) /* the end-of-study answers: 20 x 2000 characters, URL-encoded */
#define FORM_MAX_FIELDS 48
#define CONNECTION_LIMIT 2000
#define IDLE_TIMEOUT_S 30
#define SITE_CSP                                                                                                       \
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "  \
    "frame-ancestors 'none'"

struct site {
    struct MHD_Daemon *daemon;
    empq_store *store; /* used by the one polling thread only */
    unsigned port;
    int store_down; /* the last store call failed: log once, and once when it works again */
    int req_failed; /* the request in progress hit a store failure */
};

/* Per request: the POST body so far. */
typedef struct req {
    empq_buf body;
    int too_large;
} req;

int site__escape(empq_buf *b, const char *s)
{
    int rc = EMPQ_OK;
    const char *run = s;
    for (const char *q = s; rc == EMPQ_OK; q++) {
        const char *rep = NULL;
        switch (*q) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        case '\0': break;
        default: continue;
        }
        if (q > run)
            rc = empq_buf_append(b, run, (size_t)(q - run));
        if (*q == '\0')
            break;
        if (rc == EMPQ_OK)
            rc = empq_buf_append(b, rep, strlen(rep));
        run = q + 1;
    }
    return rc;
}

/* ==================== responses ==================== */

static enum MHD_Result send_buf(struct MHD_Connection *conn, unsigned status, empq_buf *b,
                                const char *type, const char *location)
{
    struct MHD_Response *r = collector__mhd_page(b, type, "same-origin", SITE_CSP);
    if (r == NULL)
        return MHD_NO;
    if (location != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "60");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void page_head(empq_buf *b, const char *title)
{
    empq_buf_printf(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                       "<title>");
    site__escape(b, title);
    empq_buf_printf(b, "</title>\n<link rel=\"stylesheet\" href=\"/static/site.css\">\n"
                       "</head>\n<body>\n<main>\n");
}

static void page_tail(empq_buf *b)
{
    empq_buf_printf(b, "</main>\n<script src=\"/static/keys.js\"></script>\n</body>\n</html>\n");
}

/* An error page: status, a title, one sentence (plain text), an optional
 * link back to the participant's page. */
static enum MHD_Result error_page(struct MHD_Connection *conn, unsigned status, const char *title,
                                  const char *msg, const char *back)
{
    empq_buf b = {0};
    page_head(&b, title);
    empq_buf_printf(&b, "<div class=\"error\" role=\"alert\">\n<h1 id=\"title\">");
    site__escape(&b, title);
    empq_buf_printf(&b, "</h1>\n<p id=\"message\">");
    site__escape(&b, msg);
    empq_buf_printf(&b, "</p>\n");
    if (back != NULL) {
        empq_buf_printf(&b, "<p><a class=\"button\" href=\"");
        site__escape(&b, back);
        empq_buf_printf(&b, "\">Continue where you left off</a></p>\n");
    }
    empq_buf_printf(&b, "</div>\n");
    page_tail(&b);
    return send_buf(conn, status, &b, "text/html; charset=utf-8", NULL);
}

static enum MHD_Result redirect(struct MHD_Connection *conn, const char *location)
{
    empq_buf b = {0};
    empq_buf_printf(&b, "See <a href=\"");
    site__escape(&b, location);
    empq_buf_printf(&b, "\">here</a>.\n");
    return send_buf(conn, MHD_HTTP_SEE_OTHER, &b, "text/html; charset=utf-8", location);
}

static enum MHD_Result store_error(site *s, struct MHD_Connection *conn, const empq_error *err)
{
    char q[600];
    if (!s->store_down)
        EMPQ_ERROR("event=site_store_down error=%s", empq_log_quote(q, sizeof q, err->msg));
    s->store_down = 1;
    s->req_failed = 1;
    return error_page(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Please try again",
                      "The study is briefly unavailable. Please reload this page in a minute; "
                      "your answers so far are saved.", NULL);
}

/* ==================== pages ==================== */

/* Plain text from the spec as paragraphs (a blank line between two), each
 * HTML-escaped; single line breaks are kept by the stylesheet. */
static void paragraphs(empq_buf *b, const char *text, const char *cls)
{
    const char *p = text;
    while (*p != '\0') {
        while (*p == '\n' || *p == '\r')
            p++;
        if (*p == '\0')
            break;
        const char *end = strstr(p, "\n\n");
        const char *crlf = strstr(p, "\r\n\r\n");
        if (crlf != NULL && (end == NULL || crlf < end))
            end = crlf;
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        empq_buf para = {0};
        if (empq_buf_append(&para, p, n) != EMPQ_OK) {
            empq_buf_free(&para);
            return;
        }
        empq_buf_printf(b, "<p class=\"%s\">", cls);
        site__escape(b, para.data);
        empq_buf_printf(b, "</p>\n");
        empq_buf_free(&para);
        p += n;
    }
}

static void duration_line(empq_buf *b, const Empq__RatingSpec *r)
{
    if (r != NULL && r->duration_minutes > 0)
        empq_buf_printf(b, "<p class=\"duration\" id=\"duration\">This study takes about "
                           "<strong>%u minute%s</strong>.</p>\n",
                        r->duration_minutes, r->duration_minutes == 1 ? "" : "s");
}

static void hidden_field(empq_buf *b, const char *name, const char *value)
{
    empq_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    site__escape(b, value != NULL ? value : "");
    empq_buf_printf(b, "\">\n");
}

/* The information and consent page, before any slot is claimed. */
static void consent_page(empq_buf *b, const char *run, const Empq__RatingSpec *r, const char *pid,
                         int prolific, const char *study, const char *session)
{
    page_head(b, "About this study");
    empq_buf_printf(b, "<h1 id=\"title\">About this study</h1>\n");
    duration_line(b, r);
    empq_buf_printf(b, "<section id=\"consent-text\" aria-label=\"information\">\n");
    paragraphs(b, r->consent, "consent");
    empq_buf_printf(b, "</section>\n<form method=\"post\" action=\"/study/");
    site__escape(b, run);
    empq_buf_printf(b, "/consent\">\n");
    hidden_field(b, "participant", pid);
    hidden_field(b, "route", prolific ? "prolific" : "link");
    hidden_field(b, "study", study);
    hidden_field(b, "session", session);
    empq_buf_printf(b, "<fieldset>\n<legend id=\"question\">Do you agree to take part?</legend>\n"
                       "<div class=\"pair\">\n"
                       "<button type=\"submit\" name=\"consent\" value=\"agree\" id=\"agree\">"
                       "I agree, start</button>\n"
                       "<button type=\"submit\" name=\"consent\" value=\"decline\" id=\"decline\" "
                       "class=\"secondary\">I do not agree</button>\n</div>\n</fieldset>\n</form>\n");
    page_tail(b);
}

static void declined_page(empq_buf *b, int prolific)
{
    page_head(b, "You have not joined the study");
    empq_buf_printf(b, "<h1 id=\"title\">You have not joined the study</h1>\n"
                       "<p id=\"message\">Thank you for considering it. Nothing about you was "
                       "recorded.</p>\n");
    if (prolific)
        empq_buf_printf(b, "<p>Please return the study on Prolific (the <em>Return</em> button), "
                           "so that your place goes to another participant.</p>\n");
    else
        empq_buf_printf(b, "<p>You can close this page now.</p>\n");
    page_tail(b);
}

/* The end-of-study questions (every dialogue rated). */
static void questions_page(empq_buf *b, const char *base, const Empq__RatingSpec *r,
                           const empq_ratings_page *pg)
{
    page_head(b, "A few last questions");
    empq_buf_printf(b, "<h1 id=\"title\">A few last questions</h1>\n"
                       "<p>You have rated all %u dialogues. Please answer these questions to "
                       "finish; questions without <span class=\"req\">*</span> may be left "
                       "blank.</p>\n<form method=\"post\" action=\"", pg->n);
    site__escape(b, base);
    empq_buf_printf(b, "/finish\">\n");
    for (size_t i = 0; r != NULL && i < r->n_questions; i++) {
        const Empq__RatingQuestion *q = r->questions[i];
        int choice = q->type != NULL && strcmp(q->type, "choice") == 0;
        if (choice) {
            empq_buf_printf(b, "<fieldset class=\"question\">\n<legend>");
            site__escape(b, q->text);
            empq_buf_printf(b, "%s</legend>\n", q->required ? " <span class=\"req\">*</span>" : "");
            for (size_t j = 0; j < q->n_choices; j++) {
                empq_buf_printf(b, "<label class=\"option\"><input type=\"radio\" name=\"q_");
                site__escape(b, q->id);
                empq_buf_printf(b, "\" value=\"%zu\"%s> ", j, q->required ? " required" : "");
                site__escape(b, q->choices[j]);
                empq_buf_printf(b, "</label>\n");
            }
            empq_buf_printf(b, "</fieldset>\n");
        } else {
            empq_buf_printf(b, "<div class=\"question\">\n<label for=\"q_");
            site__escape(b, q->id);
            empq_buf_printf(b, "\">");
            site__escape(b, q->text);
            empq_buf_printf(b, "%s</label>\n<textarea id=\"q_",
                            q->required ? " <span class=\"req\">*</span>" : "");
            site__escape(b, q->id);
            empq_buf_printf(b, "\" name=\"q_");
            site__escape(b, q->id);
            empq_buf_printf(b, "\" rows=\"4\" maxlength=\"%u\"%s></textarea>\n</div>\n",
                            q->has_max_length && q->max_length > 0 ? q->max_length : 500,
                            q->required ? " required" : "");
        }
    }
    empq_buf_printf(b, "<button type=\"submit\" id=\"finish\">Finish</button>\n</form>\n");
    page_tail(b);
}

static void instructions(empq_buf *b, const char *base, const empq_ratings_page *pg,
                         const Empq__RatingSpec *r)
{
    page_head(b, "Instructions");
    empq_buf_printf(b, "<h1 id=\"title\">Instructions</h1>\n");
    duration_line(b, r);
    empq_buf_printf(b,
        "<p>In this study you will read %u short dialogues, one at a time. In each, a speaker "
        "tells about something that happened to them and how they feel, and a listener "
        "responds. You will rate how <strong>empathetic</strong> the listener's response is.</p>\n"
        "<p>Empathy has three parts:</p>\n<dl>\n"
        "<dt>Cognitive empathy</dt><dd>understanding what the other person thinks and feels, "
        "and seeing the situation from their point of view.</dd>\n"
        "<dt>Affective empathy</dt><dd>sharing the other person's feelings: responding with "
        "emotions that fit what they feel.</dd>\n"
        "<dt>Compassionate empathy</dt><dd>caring about the other person and being moved to "
        "help: offering support, comfort or practical help.</dd>\n</dl>\n"
        "<p>For each dialogue, answer: <strong>how empathetic is this response, compared to "
        "how you would have responded?</strong> Choose <em>Good</em>, <em>Okay</em> or "
        "<em>Bad</em>. Some dialogues ask you for a particular answer: please read each one.</p>\n"
        "<p class=\"hint\">Keyboard: press 1 (Good), 2 (Okay) or 3 (Bad), or move to a button "
        "with Tab and press Enter. Your answers are saved as you go; if you reload the page you "
        "continue where you were.</p>\n"
        "<form method=\"post\" action=\"",
        pg->n);
    site__escape(b, base);
    /* no autofocus: on a phone it scrolls the page past the instructions' top */
    empq_buf_printf(b, "/start\">\n<button type=\"submit\" id=\"start\">Start</button>\n"
                       "</form>\n");
    page_tail(b);
}

static void item(empq_buf *b, const char *base, const empq_ratings_page *pg)
{
    char title[64];
    snprintf(title, sizeof title, "Dialogue %u of %u", pg->position + 1, pg->n);
    page_head(b, title);
    empq_buf_printf(b,
                    "<p class=\"progress\" id=\"progress\">Dialogue %u of %u</p>\n"
                    "<progress max=\"%u\" value=\"%u\" aria-label=\"progress\">%u of %u</progress>\n"
                    "<section aria-label=\"dialogue\">\n"
                    "<p class=\"meta\"><span class=\"label\">Emotion</span> <span id=\"emotion\">",
                    pg->position + 1, pg->n, pg->n, pg->position, pg->position, pg->n);
    site__escape(b, pg->emotion);
    empq_buf_printf(b, "</span></p>\n<p class=\"meta\"><span class=\"label\">Situation</span></p>\n"
                       "<p class=\"text\" id=\"situation\">");
    site__escape(b, pg->situation);
    empq_buf_printf(b, "</p>\n<div class=\"turn speaker\"><span class=\"who\">Speaker</span>"
                       "<p class=\"text\" id=\"prompt\">");
    site__escape(b, pg->prompt);
    empq_buf_printf(b, "</p></div>\n<div class=\"turn response\"><span class=\"who\">Response"
                       "</span><p class=\"text\" id=\"response\">");
    site__escape(b, pg->response);
    empq_buf_printf(b, "</p></div>\n</section>\n<form method=\"post\" action=\"");
    site__escape(b, base);
    empq_buf_printf(b,
                    "/answer\">\n<input type=\"hidden\" name=\"slot\" value=\"%u\">\n"
                    "<input type=\"hidden\" name=\"pos\" value=\"%u\">\n"
                    "<fieldset>\n<legend id=\"question\">How empathetic is this response, compared "
                    "to how you would have responded?</legend>\n<div class=\"choices\">\n"
                    "<button type=\"submit\" name=\"rating\" value=\"3\" data-key=\"1\" "
                    "id=\"good\">Good<kbd>1</kbd></button>\n"
                    "<button type=\"submit\" name=\"rating\" value=\"2\" data-key=\"2\" "
                    "id=\"okay\">Okay<kbd>2</kbd></button>\n"
                    "<button type=\"submit\" name=\"rating\" value=\"1\" data-key=\"3\" "
                    "id=\"bad\">Bad<kbd>3</kbd></button>\n"
                    "</div>\n</fieldset>\n</form>\n",
                    pg->slot, pg->position);
    page_tail(b);
}

static void done(empq_buf *b, const empq_ratings_page *pg)
{
    page_head(b, "Thank you");
    empq_buf_printf(b, "<h1 id=\"title\">Thank you</h1>\n<p>You have rated all %u dialogues. "
                       "Your answers are saved.</p>\n",
                    pg->n);
    int code = pg->completion_code != NULL && pg->completion_code[0] != '\0';
    if (code) {
        empq_buf_printf(b, "<p>Your completion code is</p>\n<p class=\"code\" id=\"code\">");
        site__escape(b, pg->completion_code);
        empq_buf_printf(b, "</p>\n");
    }
    if (code && pg->prolific) { /* came by Prolific's link: back there */
        empq_buf_printf(b, "<p><a class=\"button\" id=\"complete\" "
                           "href=\"https://app.prolific.com/submissions/complete?cc=");
        site__escape(b, pg->completion_code); /* [A-Za-z0-9_-]: nothing to URL-encode */
        empq_buf_printf(b, "\">Return to Prolific</a></p>\n");
    } else if (code) {
        empq_buf_printf(b, "<p id=\"keep\">Please keep this code: the researchers may ask for it. "
                           "You can close this page now.</p>\n");
    } else {
        empq_buf_printf(b, "<p>You can close this page now.</p>\n");
    }
    page_tail(b);
}

/* ==================== forms ==================== */

/* An application/x-www-form-urlencoded body, decoded. Every name appears
 * once: a form with a field twice is refused (which value was meant?). */
typedef struct form {
    size_t n;
    char *name[FORM_MAX_FIELDS];
    char *value[FORM_MAX_FIELDS];
} form;

static void form_free(form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->name[i]);
        free(f->value[i]);
    }
    f->n = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes n bytes of s ('+' is a space, %XX a byte) into a new string;
 * NULL for a bad escape, an encoded NUL or no memory. */
static char *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int h = i + 2 < n ? hexval(s[i + 1]) : -1, l = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                free(out);
                return NULL;
            }
            c = (char)(h * 16 + l);
            i += 2;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

/* Parses body into f. Returns NULL, or why the form is refused (a field
 * twice names it in dup, of dup_len bytes). */
static const char *form_parse(const char *body, form *f, char *dup, size_t dup_len)
{
    memset(f, 0, sizeof *f);
    const char *p = body;
    while (*p != '\0') {
        size_t seg = strcspn(p, "&");
        if (seg > 0) {
            const char *eq = memchr(p, '=', seg);
            size_t nl = eq != NULL ? (size_t)(eq - p) : seg;
            if (f->n == FORM_MAX_FIELDS)
                return "it has too many fields";
            char *name = form_decode(p, nl);
            char *value = eq != NULL ? form_decode(eq + 1, seg - nl - 1) : empq_strdup("");
            if (name == NULL || value == NULL) {
                free(name);
                free(value);
                return "it is not encoded properly";
            }
            f->name[f->n] = name;
            f->value[f->n++] = value;
            for (size_t i = 0; i + 1 < f->n; i++)
                if (strcmp(f->name[i], name) == 0) {
                    snprintf(dup, dup_len, "%.40s", name);
                    return "a field appears twice";
                }
        }
        p += seg;
        if (*p == '&')
            p++;
    }
    return NULL;
}

/* The value of field name, or NULL when the form has none. */
static const char *form_get(const form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0)
            return f->value[i];
    return NULL;
}

/* 1 when every field of f is one of names (NULL terminated). */
static int form_only(const form *f, const char *const *names)
{
    for (size_t i = 0; i < f->n; i++) {
        size_t j = 0;
        while (names[j] != NULL && strcmp(names[j], f->name[i]) != 0)
            j++;
        if (names[j] == NULL)
            return 0;
    }
    return 1;
}

/* ==================== handlers ==================== */

static const char *arg(struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The run's rating section (consent, duration, questions); NULL when the
 * run has none or cannot be read (*run is then NULL too). The caller frees
 * *run with empq__run__free_unpacked. */
static const Empq__RatingSpec *rating_spec(site *s, const char *run_id, Empq__Run **run)
{
    *run = NULL;
    if (empq_store_run_get(s->store, run_id, run) != EMPQ_OK) {
        *run = NULL;
        return NULL;
    }
    return (*run)->spec != NULL ? (*run)->spec->rating : NULL;
}

static enum MHD_Result expired_page(struct MHD_Connection *conn)
{
    return error_page(conn, MHD_HTTP_GONE, "Session expired",
                      "Your session was inactive for too long and your place was given to "
                      "another participant. Please return the study; thank you for your time.",
                      NULL);
}

/* What a claim's outcome shows: the participant's page, or why not. */
static enum MHD_Result claimed(struct MHD_Connection *conn, const char *run, const char *pid,
                               int outcome, uint32_t slot)
{
    char loc[300];
    snprintf(loc, sizeof loc, "/study/%s/p/%s", run, pid);
    switch (outcome) {
    case EMPQ_RATINGS_OK:
        EMPQ_INFO("event=slot_claimed run=%s participant=%s slot=%u", run, pid, slot);
        return redirect(conn, loc);
    case EMPQ_RATINGS_RESUMED:
        return redirect(conn, loc);
    case EMPQ_RATINGS_EXPIRED:
        return expired_page(conn);
    case EMPQ_RATINGS_FULL:
        EMPQ_WARN_LIMITED("study_full", "event=study_full run=%s participant=%s", run, pid);
        return error_page(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Study full",
                          "All places in this study are taken at the moment. Please return the "
                          "study, or try again in a few minutes.", NULL);
    default:
        return error_page(conn, MHD_HTTP_NOT_FOUND, "No such study",
                          "This study does not exist or is not open for ratings.", NULL);
    }
}

static enum MHD_Result arrive(site *s, struct MHD_Connection *conn, const char *run)
{
    const char *pid = arg(conn, "PROLIFIC_PID");
    unsigned flags = pid != NULL ? EMPQ_RATINGS_PROLIFIC : 0;
    if (pid == NULL)
        pid = arg(conn, "participant");
    if (pid == NULL)
        pid = arg(conn, "id");
    if (pid == NULL)
        return error_page(conn, MHD_HTTP_BAD_REQUEST, "Participant id missing",
                          "Please open this study from the link you were given (it carries your "
                          "participant id), or add ?participant=YOUR_ID to the address.", NULL);
    if (!empq_ratings_valid_id(pid))
        return error_page(conn, MHD_HTTP_BAD_REQUEST, "Participant id not valid",
                          "A participant id is 1 to 64 letters, digits, '_', '.' or '-'.", NULL);
    int outcome = 0;
    uint32_t slot = 0;
    empq_error err = {0};
    const char *study = arg(conn, "STUDY_ID"), *session = arg(conn, "SESSION_ID");
    int rc = empq_ratings_claim(s->store, run, pid, study, session, flags, empq_now_ms(), &outcome,
                                &slot, &err);
    if (rc != EMPQ_OK)
        return store_error(s, conn, &err);
    if (outcome != EMPQ_RATINGS_NO_CONSENT)
        return claimed(conn, run, pid, outcome, slot);
    /* the study asks for consent first: nothing is claimed until then */
    Empq__Run *r = NULL;
    const Empq__RatingSpec *rs = rating_spec(s, run, &r);
    enum MHD_Result ret;
    if (rs == NULL || rs->consent == NULL) {
        EMPQ_ERROR_LIMITED("site_page_error", "event=site_page_error run=%s participant=%s error=\"the plan asks for consent; "
                   "the run's spec has no rating.consent\"", run, pid);
        ret = error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Something went wrong",
                         "The study information cannot be shown. The researchers have been told; "
                         "please contact them through the study page.", NULL);
    } else {
        empq_buf b = {0};
        consent_page(&b, run, rs, pid, flags & EMPQ_RATINGS_PROLIFIC, study, session);
        ret = send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
    }
    if (r != NULL)
        empq__run__free_unpacked(r, NULL);
    return ret;
}

/* POST /study/RUN/consent: agree claims a slot, decline ends here. */
static enum MHD_Result consent(site *s, struct MHD_Connection *conn, const char *run, const form *f)
{
    static const char *const names[] = {"participant", "route", "study", "session", "consent", NULL};
    const char *pid = form_get(f, "participant"), *route = form_get(f, "route");
    const char *choice = form_get(f, "consent");
    if (!form_only(f, names) || pid == NULL || !empq_ratings_valid_id(pid) || route == NULL ||
        (strcmp(route, "prolific") != 0 && strcmp(route, "link") != 0) || choice == NULL ||
        (strcmp(choice, "agree") != 0 && strcmp(choice, "decline") != 0))
        return error_page(conn, MHD_HTTP_BAD_REQUEST, "Form not valid",
                          "This form is not the study's consent form; nothing was saved. Please "
                          "open the study from the link you were given.", NULL);
    int prolific = strcmp(route, "prolific") == 0;
    if (strcmp(choice, "decline") == 0) {
        EMPQ_INFO("event=consent_declined run=%s", run); /* no id: nothing about them is kept */
        empq_buf b = {0};
        declined_page(&b, prolific);
        return send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
    }
    int outcome = 0;
    uint32_t slot = 0;
    empq_error err = {0};
    unsigned flags = EMPQ_RATINGS_CONSENTED | (prolific ? EMPQ_RATINGS_PROLIFIC : 0);
    int rc = empq_ratings_claim(s->store, run, pid, form_get(f, "study"), form_get(f, "session"),
                                flags, empq_now_ms(), &outcome, &slot, &err);
    if (rc != EMPQ_OK)
        return store_error(s, conn, &err);
    return claimed(conn, run, pid, outcome, slot);
}

static enum MHD_Result show(site *s, struct MHD_Connection *conn, const char *run, const char *pid,
                            const char *base)
{
    empq_ratings_page pg;
    empq_error err = {0};
    int rc = empq_ratings_view(s->store, run, pid, empq_now_ms(), &pg, &err);
    if (rc == EMPQ_ESTORE)
        return store_error(s, conn, &err);
    Empq__Run *r = NULL;
    const Empq__RatingSpec *rs = NULL;
    if (rc == EMPQ_OK && (pg.kind == EMPQ_PAGE_INSTRUCTIONS || pg.kind == EMPQ_PAGE_QUESTIONS)) {
        rs = rating_spec(s, run, &r);
        if (pg.kind == EMPQ_PAGE_QUESTIONS && rs == NULL)
            rc = empq_error_set(&err, EMPQ_EPARSE, "run %s: the plan has questions, the run's spec none", run);
    }
    if (rc != EMPQ_OK) {
        char q[600];
        EMPQ_ERROR_LIMITED("site_page_error", "event=site_page_error run=%s participant=%s error=%s", run, pid,
                           empq_log_quote(q, sizeof q, err.msg));
        empq_ratings_page_clear(&pg);
        if (r != NULL)
            empq__run__free_unpacked(r, NULL);
        return error_page(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Something went wrong",
                          "This dialogue cannot be shown. The researchers have been told; "
                          "please contact them through the study page.", NULL);
    }
    empq_buf b = {0};
    enum MHD_Result ret;
    switch (pg.kind) {
    case EMPQ_PAGE_INSTRUCTIONS:
        instructions(&b, base, &pg, rs);
        ret = send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
        break;
    case EMPQ_PAGE_ITEM:
        item(&b, base, &pg);
        ret = send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
        break;
    case EMPQ_PAGE_QUESTIONS:
        questions_page(&b, base, rs, &pg);
        ret = send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
        break;
    case EMPQ_PAGE_DONE:
        done(&b, &pg);
        ret = send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
        break;
    case EMPQ_PAGE_EXPIRED:
        ret = expired_page(conn);
        break;
    default:
        ret = error_page(conn, MHD_HTTP_NOT_FOUND, "Participant not found",
                         "This study has no participant with this id. Please open the study from "
                         "the link you were given.", NULL);
        break;
    }
    empq_ratings_page_clear(&pg);
    if (r != NULL)
        empq__run__free_unpacked(r, NULL);
    return ret;
}

static int parse_u32(const char *s, uint32_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 9)
        return 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0')
        return 0;
    *out = (uint32_t)v;
    return 1;
}

static int parse_rating(const char *s)
{
    if (s == NULL)
        return 0;
    if (strcmp(s, "1") == 0 || strcasecmp(s, "bad") == 0)
        return 1;
    if (strcmp(s, "2") == 0 || strcasecmp(s, "okay") == 0)
        return 2;
    if (strcmp(s, "3") == 0 || strcasecmp(s, "good") == 0)
        return 3;
    return 0;
}

static enum MHD_Result outcome_page(site *s, struct MHD_Connection *conn, int outcome,
                                    const char *base)
{
    (void)s;
    switch (outcome) {
    case EMPQ_RATINGS_OK:
    case EMPQ_RATINGS_DUPLICATE:
        return redirect(conn, base);
    case EMPQ_RATINGS_NOT_YOURS:
        return error_page(conn, MHD_HTTP_FORBIDDEN, "Not your dialogue",
                          "This answer is for a dialogue that was given to another participant; "
                          "it was not saved.", base);
    case EMPQ_RATINGS_STALE:
        return error_page(conn, MHD_HTTP_CONFLICT, "Page out of date",
                          "This form is out of date (it was sent before, or another dialogue is "
                          "due now); it was not saved. Continue with the dialogue due now.", base);
    case EMPQ_RATINGS_FINISHED:
        return error_page(conn, MHD_HTTP_CONFLICT, "Already finished",
                          "You have rated every dialogue already; nothing more was saved.", base);
    case EMPQ_RATINGS_NOT_STARTED:
        return error_page(conn, MHD_HTTP_CONFLICT, "Please read the instructions first",
                          "The instructions come before the first dialogue; nothing was saved.",
                          base);
    case EMPQ_RATINGS_NOT_DUE:
        return error_page(conn, MHD_HTTP_CONFLICT, "Dialogues left",
                          "The last questions come after every dialogue is rated; nothing was "
                          "saved.", base);
    case EMPQ_RATINGS_EXPIRED:
        return error_page(conn, MHD_HTTP_GONE, "Session expired",
                          "Your session was inactive for too long and your place was given to "
                          "another participant; nothing was saved. Please return the study.",
                          NULL);
    default:
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Participant not found",
                          "This study has no participant with this id; nothing was saved.", NULL);
    }
}

/* POST .../finish: the end-of-study answers, q_<id> each. */
static enum MHD_Result finish(site *s, struct MHD_Connection *conn, const char *run,
                              const char *pid, const char *base, const form *f)
{
    Empq__Run *r = NULL;
    const Empq__RatingSpec *rs = rating_spec(s, run, &r);
    if (r == NULL) { /* the questions are unknown: finishing now would skip them */
        EMPQ_ERROR_LIMITED("site_page_error", "event=site_page_error run=%s participant=%s error=\"the run cannot be read\"",
                   run, pid);
        return error_page(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Please try again",
                          "The study is briefly unavailable; nothing was saved. Please send your "
                          "answers again in a minute.", base);
    }
    size_t nq = rs != NULL ? rs->n_questions : 0;
    const char *values[FORM_MAX_FIELDS] = {0};
    enum MHD_Result ret;
    for (size_t i = 0; i < f->n; i++) {
        size_t j = 0;
        while (j < nq && (strncmp(f->name[i], "q_", 2) != 0 || strcmp(f->name[i] + 2, rs->questions[j]->id) != 0))
            j++;
        if (j == nq || j >= FORM_MAX_FIELDS) {
            char msg[160];
            snprintf(msg, sizeof msg, "The field '%.40s' is not a question of this study; nothing "
                     "was saved.", f->name[i]);
            ret = error_page(conn, MHD_HTTP_BAD_REQUEST, "Form not valid", msg, base);
            goto out;
        }
        values[j] = f->value[i];
    }
    int outcome = 0;
    empq_error err = {0};
    int rc = empq_ratings_finish(s->store, run, pid, rs, values, empq_now_ms(), &outcome, &err);
    if (rc == EMPQ_ESTORE) {
        ret = store_error(s, conn, &err);
    } else if (rc != EMPQ_OK) {
        char msg[EMPQ_ERROR_MSG_MAX + 40];
        snprintf(msg, sizeof msg, "%s; nothing was saved.", err.msg);
        ret = error_page(conn, MHD_HTTP_BAD_REQUEST, "Answer not valid", msg, base);
    } else {
        if (outcome == EMPQ_RATINGS_OK)
            EMPQ_INFO("event=participant_done run=%s participant=%s questions=%zu", run, pid, nq);
        ret = outcome_page(s, conn, outcome == EMPQ_RATINGS_FINISHED ? EMPQ_RATINGS_OK : outcome, base);
    }
out:
    if (r != NULL)
        empq__run__free_unpacked(r, NULL);
    return ret;
}

static enum MHD_Result post(site *s, struct MHD_Connection *conn, const char *run, const char *pid,
                            const char *action, const char *base, const form *f)
{
    empq_error err = {0};
    int outcome = 0, rc;
    if (strcmp(action, "finish") == 0)
        return finish(s, conn, run, pid, base, f);
    if (strcmp(action, "start") == 0) {
        rc = empq_ratings_start(s->store, run, pid, empq_now_ms(), &outcome, &err);
        if (rc != EMPQ_OK)
            return store_error(s, conn, &err);
        if (outcome == EMPQ_RATINGS_FINISHED)
            outcome = EMPQ_RATINGS_OK; /* the page shows the code again */
        return outcome_page(s, conn, outcome, base);
    }
    uint32_t slot = 0, pos = 0;
    const char *rv = form_get(f, "rating");
    if (parse_rating(rv) == 0)
        return error_page(conn, MHD_HTTP_BAD_REQUEST, "Rating not valid",
                          "A rating is Good, Okay or Bad; nothing was saved. Please choose one of "
                          "the three buttons.", base);
    if (!parse_u32(form_get(f, "slot"), &slot) || !parse_u32(form_get(f, "pos"), &pos))
        return error_page(conn, MHD_HTTP_BAD_REQUEST, "Form not valid",
                          "The form is missing which dialogue it answers; nothing was saved.",
                          base);
    rc = empq_ratings_answer(s->store, run, pid, slot, pos, parse_rating(rv), empq_now_ms(),
                             &outcome, &err);
    if (rc == EMPQ_ESTORE)
        return store_error(s, conn, &err);
    if (rc != EMPQ_OK)
        return error_page(conn, MHD_HTTP_BAD_REQUEST, "Answer not valid", err.msg, base);
    return outcome_page(s, conn, outcome, base);
}

/* Parses a POST body; on a refusal sends the 400 page and returns 0. */
static int parse_post(struct MHD_Connection *conn, const char *body, form *f, const char *back,
                      enum MHD_Result *ret)
{
    char dup[48] = "";
    const char *why = form_parse(body, f, dup, sizeof dup);
    if (why == NULL)
        return 1;
    char msg[200];
    if (dup[0] != '\0')
        snprintf(msg, sizeof msg, "The form holds the field '%s' twice; nothing was saved. Please "
                 "use the page's own buttons.", dup);
    else
        snprintf(msg, sizeof msg, "The form cannot be read (%s); nothing was saved.", why);
    *ret = error_page(conn, MHD_HTTP_BAD_REQUEST, "Form not valid", msg, back);
    form_free(f);
    return 0;
}

/* A form from another site is refused (the Origin header, when sent, must
 * name this host). */
static int same_origin(struct MHD_Connection *conn)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (origin == NULL || strcmp(origin, "null") == 0)
        return origin == NULL;
    const char *o = strstr(origin, "://");
    return host != NULL && o != NULL && strcmp(o + 3, host) == 0;
}

/* A POST of one of the site's forms: from this site, every field once,
 * then handled (the consent form when pid is NULL). */
static enum MHD_Result form_post(site *s, struct MHD_Connection *conn, const char *run,
                                 const char *pid, const char *action, const char *base,
                                 const char *body)
{
    if (!same_origin(conn))
        return error_page(conn, MHD_HTTP_FORBIDDEN, "Form from another site",
                          "This form was not sent from the study's own page; nothing was saved.",
                          base);
    form f;
    enum MHD_Result ret;
    if (!parse_post(conn, body, &f, base, &ret))
        return ret;
    ret = pid == NULL ? consent(s, conn, run, &f) : post(s, conn, run, pid, action, base, &f);
    form_free(&f);
    return ret;
}

static enum MHD_Result route(site *s, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *body)
{
    int get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    if (get && strcmp(url, "/static/site.css") == 0) {
        empq_buf b = {0};
        empq_buf_append(&b, site__css, strlen(site__css));
        return send_buf(conn, MHD_HTTP_OK, &b, "text/css; charset=utf-8", NULL);
    }
    if (get && strcmp(url, "/static/keys.js") == 0) {
        empq_buf b = {0};
        empq_buf_append(&b, site__keys_js, strlen(site__keys_js));
        return send_buf(conn, MHD_HTTP_OK, &b, "text/javascript; charset=utf-8", NULL);
    }
    if (get && strcmp(url, "/healthz") == 0) {
        empq_buf b = {0};
        empq_buf_printf(&b, "ok\n");
        return send_buf(conn, MHD_HTTP_OK, &b, "text/plain; charset=utf-8", NULL);
    }
    if (get && strcmp(url, "/") == 0) {
        empq_buf b = {0};
        page_head(&b, "Rating study");
        empq_buf_printf(&b, "<h1 id=\"title\">Rating study</h1>\n<p>Please open the study from "
                            "the link you were given.</p>\n");
        page_tail(&b);
        return send_buf(conn, MHD_HTTP_OK, &b, "text/html; charset=utf-8", NULL);
    }
    if (strncmp(url, "/study/", 7) != 0)
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Page not found", "There is no such page.", NULL);
    if (!get && !is_post)
        return error_page(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
                          "This page takes GET and POST only.", NULL);

    /* /study/RUN[/p/PID[/ACTION]] */
    char run[128], pid[80], action[16];
    const char *p = url + 7;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= sizeof run)
        return error_page(conn, MHD_HTTP_NOT_FOUND, "No such study", "There is no such study.", NULL);
    memcpy(run, p, n);
    run[n] = '\0';
    if (!collector__safe_id(run))
        return error_page(conn, MHD_HTTP_NOT_FOUND, "No such study", "There is no such study.", NULL);
    p += n;
    if (*p == '\0' || strcmp(p, "/") == 0) {
        if (!get)
            return error_page(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
                              "Open this address with a link.", NULL);
        return arrive(s, conn, run);
    }
    if (strcmp(p, "/consent") == 0) {
        if (!is_post)
            return error_page(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
                              "Open the study with the link you were given.", NULL);
        return form_post(s, conn, run, NULL, NULL, NULL, body);
    }
    if (strncmp(p, "/p/", 3) != 0)
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Page not found", "There is no such page.", NULL);
    p += 3;
    n = strcspn(p, "/");
    if (n == 0 || n >= sizeof pid)
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Participant not found",
                          "This participant id is not valid.", NULL);
    memcpy(pid, p, n);
    pid[n] = '\0';
    if (!empq_ratings_valid_id(pid))
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Participant not found",
                          "This participant id is not valid.", NULL);
    p += n;
    char base[300];
    snprintf(base, sizeof base, "/study/%s/p/%s", run, pid);
    if (*p == '\0') {
        if (!get)
            return error_page(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
                              "This page takes GET only.", base);
        return show(s, conn, run, pid, base);
    }
    if (p[0] != '/' || strlen(p + 1) >= sizeof action)
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Page not found", "There is no such page.", base);
    snprintf(action, sizeof action, "%s", p + 1);
    if (strcmp(action, "start") != 0 && strcmp(action, "answer") != 0 && strcmp(action, "finish") != 0)
        return error_page(conn, MHD_HTTP_NOT_FOUND, "Page not found", "There is no such page.", base);
    if (!is_post)
        return redirect(conn, base); /* a reload of a form address: back to the page */
    return form_post(s, conn, run, pid, action, base, body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    site *s = cls;
    req *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        size_t max = strlen(url) > 7 && strcmp(url + strlen(url) - 7, "/finish") == 0 ? MAX_BODY_FINISH
                                                                                      : MAX_BODY;
        if (r->body.len + *upload_size > max)
            r->too_large = 1;
        else if (empq_buf_append(&r->body, upload, *upload_size) != EMPQ_OK)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return error_page(conn, 413, "Form too large",
                          "The form sent is too large; nothing was saved.", NULL);
    s->req_failed = 0;
    enum MHD_Result ret = route(s, conn, url, method, r->body.data != NULL ? r->body.data : "");
    if (s->store_down && !s->req_failed && strncmp(url, "/study/", 7) == 0) {
        EMPQ_INFO("event=site_store_up url=%s", empq_store_url(s->store));
        s->store_down = 0;
    }
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req *r = *con_cls;
    if (r != NULL) {
        empq_buf_free(&r->body);
        free(r);
        *con_cls = NULL;
    }
}

int site__start(site **out, const site__opts *o, empq_error *err)
{
    *out = NULL;
    collector__mhd_opts mo;
    collector__mhd_opts_default(&mo);
    mo.who = "site";
    mo.log_event = "site_http";
    if (o->bind != NULL)
        mo.bind = o->bind;
    mo.port = o->port;
    mo.port_file = o->port_file;
    mo.connection_limit = CONNECTION_LIMIT;
    mo.listen_backlog = 1024;
    mo.idle_timeout_s = IDLE_TIMEOUT_S;
    mo.on_request = on_request;
    mo.on_completed = on_completed;
    struct sockaddr_storage addr; /* a bad address fails before Redis is asked */
    int rc = collector__mhd_addr(&addr, mo.who, mo.bind, mo.port, err);
    if (rc != EMPQ_OK)
        return rc;
    site *s = calloc(1, sizeof *s);
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "site: out of memory");
    rc = empq_store_open(&s->store, o->redis_url, 2000, err);
    if (rc == EMPQ_OK) {
        mo.cls = s;
        rc = collector__mhd_start(&s->daemon, &s->port, &mo, err);
    }
    if (rc != EMPQ_OK) {
        site__stop(&s);
        return rc;
    }
    *out = s;
    return EMPQ_OK;
}

unsigned site__port(const site *s) { return s->port; }

void site__stop(site **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    site *s = *sp;
    collector__mhd_stop(&s->daemon);
    empq_store_close(&s->store);
    free(s);
    *sp = NULL;
}
