/* console.c: the study console (see console.h): listener, access rule,
 * routes, and what the pages share. */
#include "console_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "collector.h"
#include "empq/curve.h"
#include "empq/log.h"
#include "empq/wire.h"
#include "mhd.h"
#include "site.h"

#define TOKEN_MIN 16
#define TOKEN_MAX 256
#define COOKIE "empq_console"
#define CONTROL_TIMEOUT_MS 1000
#define CONTROL_RETRY_MS 5000
/* the characters of a console path (run ids, file names) */
#define SAFE_PATH "/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
/* the pages' Content-Security-Policy; a report or run file sets its own */
#define CONSOLE_CSP                                                                                                    \
    "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; "                  \
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* ==================== access ==================== */

int console__is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return 0;
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

int console__token_equal(const char *want, const char *got)
{
    size_t wl = strlen(want), gl = got != NULL ? strlen(got) : 0;
    unsigned char diff = (unsigned char)(wl != gl);
    for (size_t i = 0; i < wl; i++) {
        unsigned char g = i < gl ? (unsigned char)got[i] : 0;
        diff |= (unsigned char)want[i] ^ g;
    }
    return diff == 0;
}

/* Host header names a loopback host: 127.x, [::1], localhost (with a port). */
static int host_is_local(const char *host)
{
    if (host == NULL)
        return 0;
    char h[128];
    if (host[0] == '[') {
        const char *end = strchr(host, ']');
        if (end == NULL || (size_t)(end - host - 1) >= sizeof h)
            return 0;
        memcpy(h, host + 1, (size_t)(end - host - 1));
        h[end - host - 1] = '\0';
    } else {
        size_t n = strcspn(host, ":");
        if (n >= sizeof h)
            return 0;
        memcpy(h, host, n);
        h[n] = '\0';
    }
    return strcmp(h, "localhost") == 0 || console__is_loopback(h);
}

/* The token of the request: Authorization: Bearer, the cookie, ?token=. */
static const char *request_token(struct MHD_Connection *conn, int *from_query)
{
    *from_query = 0;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
    if (ck != NULL)
        return ck;
    const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    if (q != NULL)
        *from_query = 1;
    return q;
}

static int read_token(const char *path, char **out, empq_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &text, &len, err);
    if (rc != EMPQ_OK)
        return empq_error_set(err, EMPQ_EINVAL, "console: cannot read the token file %s", path);
    size_t n = strcspn(text, "\r\n");
    text[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)text[i]) || text[i] == ';' || text[i] == ',') {
            free(text);
            return empq_error_set(err, EMPQ_EINVAL, "console: the token in %s has a space or a "
                                                    "character outside printable ASCII (or ; ,)", path);
        }
    if (n < TOKEN_MIN || n > TOKEN_MAX) {
        free(text);
        return empq_error_set(err, EMPQ_EINVAL, "console: the token in %s has %zu characters; "
                                                "it needs %d to %d", path, n, TOKEN_MIN, TOKEN_MAX);
    }
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        EMPQ_WARN("event=console_token_file_open path=%s mode=%03o hint=\"chmod 600: others on this host "
                  "can read the token\"",
                  path, (unsigned)(st.st_mode & 0777));
    *out = text;
    return EMPQ_OK;
}

static int new_token(char **out, empq_error *err)
{
    unsigned char raw[24];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return empq_error_set(err, EMPQ_EIO, "console: no random bytes for a token");
    char *t = malloc(2 * sizeof raw + 1);
    if (t == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "console: out of memory");
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(t + 2 * i, 3, "%02x", raw[i]);
    *out = t;
    return EMPQ_OK;
}

/* ==================== shared page parts ==================== */

void console__esc(empq_buf *b, const char *s) { site__escape(b, s != NULL ? s : ""); }

void console__url(empq_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p != '\0'; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            empq_buf_append(b, p, 1);
        else
            empq_buf_printf(b, "%%%02X", *p);
    }
}

void console__head(empq_buf *b, const char *title, const char *run, const char *tab)
{
    empq_buf_printf(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    console__esc(b, title);
    empq_buf_printf(b, " - empq console</title>\n<link rel=\"stylesheet\" href=\"/static/console.css\">\n"
                       "</head>\n<body>\n<header><nav><a class=\"brand\" href=\"/\">empq console</a>");
    if (run != NULL) {
        static const char *const tabs[][2] = {{"run", ""},          {"responses", "/responses"},
                                              {"dead", "/dead"},    {"raters", "/raters"},
                                              {"report", "/report"}};
        empq_buf_printf(b, " <span class=\"sep\">/</span> <span class=\"runid\">");
        console__esc(b, run);
        empq_buf_printf(b, "</span>");
        for (size_t i = 0; i < sizeof tabs / sizeof tabs[0]; i++) {
            empq_buf_printf(b, " <a href=\"/run/");
            console__url(b, run);
            empq_buf_printf(b, "%s\"%s>%s</a>", tabs[i][1],
                            tab != NULL && strcmp(tab, tabs[i][0]) == 0 ? " aria-current=\"page\"" : "",
                            tabs[i][0]);
        }
    }
    empq_buf_printf(b, "</nav></header>\n<main>\n");
}

void console__tail(empq_buf *b)
{
    empq_buf_printf(b, "</main>\n<script src=\"/static/console.js\"></script>\n</body>\n</html>\n");
}

static enum MHD_Result send_with(console__req *r, unsigned status, const char *type, const char *csp,
                                 const char *cookie, const char *location)
{
    struct MHD_Response *resp = collector__mhd_page(&r->b, type, "no-referrer", csp != NULL ? csp : CONSOLE_CSP);
    if (resp == NULL)
        return MHD_NO;
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"empq console\"");
    if (cookie != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    if (r->timing[0] != '\0')
        MHD_add_response_header(resp, "Server-Timing", r->timing);
    if (location != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result console__send(console__req *r, unsigned status, const char *type)
{
    return send_with(r, status, type, NULL, NULL, NULL);
}

enum MHD_Result console__error(console__req *r, unsigned status, const char *title, const char *msg)
{
    empq_buf_free(&r->b);
    console__head(&r->b, title, NULL, NULL);
    empq_buf_printf(&r->b, "<div class=\"error\" role=\"alert\"><h1 id=\"title\">");
    console__esc(&r->b, title);
    empq_buf_printf(&r->b, "</h1>\n<p id=\"message\">");
    console__esc(&r->b, msg);
    empq_buf_printf(&r->b, "</p></div>\n");
    console__tail(&r->b);
    return console__send(r, status, "text/html; charset=utf-8");
}

enum MHD_Result console__store_error(console__req *r)
{
    char q[600];
    if (!r->c->store_down)
        EMPQ_ERROR("event=console_store_down error=%s", empq_log_quote(q, sizeof q, empq_store_errstr(r->c->store)));
    r->c->store_down = 1;
    r->c->req_failed = 1;
    return console__error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Redis unavailable",
                          "The console cannot read Redis just now; this page retries when reloaded.");
}

const char *console__arg(console__req *r, const char *name)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void prompts_clear(console__prompts *p)
{
    empq_store_free_prompts(p->v, p->n);
    free(p->emotions);
    free(p->emo_of);
    memset(p, 0, sizeof *p);
}

/* Fills p's sorted emotions and each prompt's index among them. */
static int index_emotions(console__prompts *p)
{
    p->emotions = calloc(p->n + 1, sizeof *p->emotions);
    p->emo_of = calloc(p->n + 1, sizeof *p->emo_of);
    if (p->emotions == NULL || p->emo_of == NULL)
        return EMPQ_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i] != NULL)
            p->emotions[k++] = p->v[i]->emotion;
    qsort(p->emotions, k, sizeof *p->emotions, by_name);
    size_t ne = 0;
    for (size_t i = 0; i < k; i++)
        if (ne == 0 || strcmp(p->emotions[ne - 1], p->emotions[i]) != 0)
            p->emotions[ne++] = p->emotions[i];
    p->n_emotions = ne;
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i] == NULL)
            continue;
        const char **at = bsearch(&p->v[i]->emotion, p->emotions, ne, sizeof *p->emotions, by_name);
        p->emo_of[i] = (uint32_t)(at - p->emotions);
    }
    return EMPQ_OK;
}

const console__prompts *console__prompts_of(console *c, const char *run)
{
    console__prompts *lru = &c->prompts[0];
    for (size_t i = 0; i < CONSOLE__PROMPT_CACHE; i++) {
        console__prompts *p = &c->prompts[i];
        if (p->v != NULL && strcmp(p->run, run) == 0) {
            p->used = ++c->uses;
            return p;
        }
        if (p->used < lru->used)
            lru = p;
    }
    Empq__Prompt **v = NULL;
    size_t n = 0;
    if (empq_store_prompts_all(c->store, run, &v, &n) != EMPQ_OK)
        return NULL;
    if (n == 0) { /* not submitted yet: nothing to keep */
        empq_store_free_prompts(v, n);
        static const console__prompts none = {{0}, NULL, 0, NULL, 0, NULL, 0};
        return &none;
    }
    prompts_clear(lru);
    snprintf(lru->run, sizeof lru->run, "%s", run);
    lru->v = v;
    lru->n = n;
    lru->used = ++c->uses;
    if (index_emotions(lru) != EMPQ_OK) {
        prompts_clear(lru);
        return NULL;
    }
    return lru;
}

static void snapshot_clear(console__snapshot *sn)
{
    empq_store_free_results(sn->res, sn->nres);
    empq_store_free_dead(sn->dl, sn->ndl);
    memset(sn, 0, sizeof *sn);
}

const console__snapshot *console__finished_of(console *c, const char *run)
{
    console__snapshot *sn = &c->snap;
    uint64_t nr = 0, nd = 0;
    if (empq_store_counts(c->store, run, &nr, &nd) != EMPQ_OK)
        return NULL;
    if (strcmp(sn->run, run) == 0 && sn->results == nr && sn->dead == nd)
        return sn;
    snapshot_clear(sn);
    if (empq_store_finished_all(c->store, run, &sn->res, &sn->nres, &sn->dl, &sn->ndl) != EMPQ_OK)
        return NULL;
    snprintf(sn->run, sizeof sn->run, "%s", run);
    sn->results = nr;
    sn->dead = nd;
    return sn;
}

Empq__ControlReply *console__control(console *c, Empq__ControlRequest *req)
{
    uint64_t now = empq_mono_ms();
    if (c->control == NULL || now < c->control_retry)
        return NULL;
    empq_curve_opts curve = EMPQ_CURVE_OPTS_INIT;
    empq_curve_opts_from_env(&curve);
    curve.allow = NULL;
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    if (empq_wire_control_curve(c->zctx, c->control, &curve, req, CONTROL_TIMEOUT_MS, &reply, &err) != EMPQ_OK) {
        /* a broker that does not answer would hold every page for the
         * timeout: ask again only after a pause; pages show Redis' counts */
        char q[600];
        if (c->control_retry == 0)
            EMPQ_WARN("event=console_broker_down endpoint=%s error=%s retry_ms=%d", c->control,
                      empq_log_quote(q, sizeof q, err.msg), CONTROL_RETRY_MS);
        c->control_retry = empq_mono_ms() + CONTROL_RETRY_MS;
        return NULL;
    }
    if (c->control_retry != 0) {
        EMPQ_INFO("event=console_broker_up endpoint=%s", c->control);
        c->control_retry = 0;
    }
    if (!reply->ok) {
        empq__control_reply__free_unpacked(reply, NULL);
        return NULL;
    }
    return reply;
}

/* ==================== files ==================== */

/* Sends OUT/RUN/rel when it is a regular file: returns 1 and *ret; 0 when
 * there is no such file (nothing sent). */
static int send_file(console__req *r, const char *run, const char *rel, const char *type, const char *csp,
                     enum MHD_Result *ret)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", r->c->out_dir, run, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (resp == NULL) {
        close(fd);
        *ret = MHD_NO;
        return 1;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    *ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return 1;
}

static enum MHD_Result run_file(console__req *r, const char *run, const char *name)
{
    static const char *const allowed[] = {"responses.jsonl", "dead.jsonl"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    {
        enum MHD_Result ret;
        if (strcmp(name, allowed[i]) == 0 &&
            send_file(r, run, name, "application/x-ndjson; charset=utf-8", "default-src 'none'; sandbox", &ret))
            return ret;
    }
    return console__error(r, MHD_HTTP_NOT_FOUND, "No such file", "This run has no such file (yet).");
}

/* The report: written by `empq analyze --out OUT/RUN/report`. Its inline
 * styles are allowed; scripts are not. */
static enum MHD_Result report(console__req *r, const char *run)
{
    static const char *const where[] = {"report/report.html", "report.html"};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        enum MHD_Result ret;
        if (send_file(r, run, where[i], "text/html; charset=utf-8",
                      "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                      "base-uri 'none'; form-action 'none'; frame-ancestors 'none'", &ret))
            return ret;
    }
    empq_buf *b = &r->b;
    console__head(b, "Report", run, "report");
    empq_buf_printf(b, "<h1 id=\"title\">Report</h1>\n<p id=\"no-report\">This run has no report yet. "
                       "Write it with <code>empq analyze ");
    console__esc(b, run);
    empq_buf_printf(b, " --out ");
    console__esc(b, r->c->out_dir);
    empq_buf_printf(b, "/");
    console__esc(b, run);
    empq_buf_printf(b, "/report</code> (after <code>empq ratings export</code>).</p>\n");
    console__tail(b);
    return console__send(r, MHD_HTTP_NOT_FOUND, "text/html; charset=utf-8");
}

/* ==================== routes ==================== */

static enum MHD_Result unauthorized(console__req *r)
{
    return console__error(r, MHD_HTTP_UNAUTHORIZED, "Token needed",
                          "This console needs its access token: open the address printed by "
                          "empq-collector at start (it ends in ?token=...), or send the header "
                          "'Authorization: Bearer TOKEN'.");
}

static enum MHD_Result route(console__req *r, const char *url)
{
    if (strcmp(url, "/static/console.css") == 0) {
        empq_buf_append(&r->b, console__css, strlen(console__css));
        return console__send(r, MHD_HTTP_OK, "text/css; charset=utf-8");
    }
    if (strcmp(url, "/static/console.js") == 0) {
        empq_buf_append(&r->b, console__js, strlen(console__js));
        return console__send(r, MHD_HTTP_OK, "text/javascript; charset=utf-8");
    }
    if (strcmp(url, "/") == 0)
        return console__runs(r);
    if (strcmp(url, "/progress.json") == 0)
        return console__progress(r);
    if (strncmp(url, "/run/", 5) != 0)
        return console__error(r, MHD_HTTP_NOT_FOUND, "Page not found", "There is no such page.");
    char run[128];
    const char *p = url + 5;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= sizeof run)
        return console__error(r, MHD_HTTP_NOT_FOUND, "No such run", "A run id has 1 to 127 characters.");
    memcpy(run, p, n);
    run[n] = '\0';
    if (!collector__safe_id(run))
        return console__error(r, MHD_HTTP_NOT_FOUND, "No such run", "This is not a run id.");
    p += n;
    if (*p == '\0' || strcmp(p, "/") == 0)
        return console__run(r, run);
    if (strcmp(p, "/responses") == 0)
        return console__responses(r, run);
    if (strcmp(p, "/dead") == 0)
        return console__dead(r, run);
    if (strcmp(p, "/raters") == 0)
        return console__raters(r, run);
    if (strcmp(p, "/report") == 0)
        return report(r, run);
    if (strncmp(p, "/file/", 6) == 0)
        return run_file(r, run, p + 6);
    return console__error(r, MHD_HTTP_NOT_FOUND, "Page not found", "There is no such page.");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)con_cls;
    console *c = cls;
    console__req r = {c, conn, {0}, ""};
    if (*upload_size != 0) { /* a body is never read: answered below, once it is in */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return console__error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
                              "The console is read-only: GET only.");
    if (c->token != NULL) {
        int from_query = 0;
        const char *got = request_token(conn, &from_query);
        if (!console__token_equal(c->token, got))
            return unauthorized(&r);
        if (from_query) { /* keep the token out of the address bar and history */
            char cookie[TOKEN_MAX + 80];
            snprintf(cookie, sizeof cookie, COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", c->token);
            /* on to the same page, without its query; "//host" or a
             * backslash would leave this site: then to / */
            const char *to = url[0] == '/' && url[1] != '/' && strchr(url, '\\') == NULL &&
                                     strlen(url) < 512 && strspn(url, SAFE_PATH) == strlen(url)
                                 ? url
                                 : "/";
            empq_buf_printf(&r.b, "See <a href=\"");
            console__esc(&r.b, to);
            empq_buf_printf(&r.b, "\">here</a>.\n");
            return send_with(&r, MHD_HTTP_SEE_OTHER, "text/html; charset=utf-8", NULL, cookie, to);
        }
    } else if (!host_is_local(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))) {
        return console__error(&r, MHD_HTTP_FORBIDDEN, "Not a local address",
                              "Without a token the console answers only requests addressed to "
                              "localhost or 127.0.0.1.");
    }
    c->req_failed = 0;
    enum MHD_Result ret = route(&r, url);
    empq_buf_free(&r.b);
    if (c->store_down && !c->req_failed && strncmp(url, "/static/", 8) != 0) {
        EMPQ_INFO("event=console_store_up url=%s", empq_store_url(c->store));
        c->store_down = 0;
    }
    return ret;
}

int console__start(console **out, const console__opts *o, empq_error *err)
{
    *out = NULL;
    struct sockaddr_storage addr;
    const char *bind = o->bind != NULL ? o->bind : "127.0.0.1";
    int rc = collector__mhd_addr(&addr, "console", bind, o->port, err); /* before Redis is asked */
    if (rc != EMPQ_OK)
        return rc;
    console *c = calloc(1, sizeof *c);
    if (c == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "console: out of memory");
    snprintf(c->bind, sizeof c->bind, "%s", bind);
    if (o->token_file != NULL)
        rc = read_token(o->token_file, &c->token, err);
    else if (o->require_token || !console__is_loopback(bind))
        rc = new_token(&c->token, err);
    c->out_dir = empq_strdup(o->out_dir != NULL ? o->out_dir : "runs");
    c->control = o->control != NULL ? empq_strdup(o->control) : NULL;
    if (rc == EMPQ_OK && (c->out_dir == NULL || (o->control != NULL && c->control == NULL)))
        rc = empq_error_set(err, EMPQ_ENOMEM, "console: out of memory");
    if (rc == EMPQ_OK && c->control != NULL && (c->zctx = zmq_ctx_new()) == NULL)
        rc = empq_error_set(err, EMPQ_EWIRE, "console: cannot create a ZeroMQ context");
    if (rc == EMPQ_OK)
        rc = empq_store_open(&c->store, o->redis_url, 2000, err);
    if (rc != EMPQ_OK) {
        console__stop(&c);
        return rc;
    }
    collector__mhd_opts mo;
    collector__mhd_opts_default(&mo);
    mo.who = "console";
    mo.log_event = "console_http";
    mo.bind = bind;
    mo.port = o->port;
    mo.port_file = o->port_file;
    mo.on_request = on_request;
    mo.cls = c;
    rc = collector__mhd_start(&c->daemon, &c->port, &mo, err);
    if (rc != EMPQ_OK) {
        console__stop(&c);
        return rc;
    }
    *out = c;
    return EMPQ_OK;
}

unsigned console__port(const console *c) { return c->port; }

const char *console__token(const console *c) { return c->token; }

void console__stop(console **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    console *c = *cp;
    collector__mhd_stop(&c->daemon);
    empq_store_close(&c->store);
    for (size_t i = 0; i < CONSOLE__PROMPT_CACHE; i++)
        prompts_clear(&c->prompts[i]);
    snapshot_clear(&c->snap);
    if (c->zctx != NULL)
        zmq_ctx_term(c->zctx);
    free(c->token);
    free(c->control);
    free(c->out_dir);
    free(c);
    *cp = NULL;
}
