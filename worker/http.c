/* http.c: libcurl multi as the worker's transport (see http.h). */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "empq/log.h"

#define NO_TIMER UINT64_MAX
#define CONNECT_TIMEOUT_MS 10000L
#define RECV_BUFFER 2048L

typedef struct watched {
    curl_socket_t fd;
    short events; /* ZMQ_POLLIN | ZMQ_POLLOUT */
} watched;

typedef struct ready {
    curl_socket_t fd;
    int mask;
} ready;

struct worker__http {
    CURLM *multi;
    worker__engine *engine;
    watched *fds;
    size_t n_fds, cap_fds;
    ready *rdy;
    size_t cap_rdy;
    uint64_t timer_at; /* monotonic ms, NO_TIMER when none */
};

/* ==================== libcurl callbacks ==================== */

static int grow(void **v, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap != 0 ? *cap : 64;
    while (c < need)
        c *= 2;
    void *p = realloc(*v, c * sz);
    if (p == NULL)
        return -1;
    *v = p;
    *cap = c;
    return 0;
}

/* socketp holds index + 1 of the socket's entry in h->fds. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    worker__http *h = userp;
    size_t idx = (size_t)(uintptr_t)socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (idx == 0 || idx > h->n_fds)
            return 0;
        size_t i = idx - 1;
        size_t last = h->n_fds - 1;
        if (i != last) {
            h->fds[i] = h->fds[last];
            curl_multi_assign(h->multi, h->fds[i].fd, (void *)(uintptr_t)(i + 1));
        }
        h->n_fds--;
        curl_multi_assign(h->multi, s, NULL);
        return 0;
    }
    if (idx == 0) {
        if (grow((void **)&h->fds, &h->cap_fds, h->n_fds + 1, sizeof *h->fds) != 0) {
            EMPQ_ERROR_LIMITED("oom/socket_table", "event=oom what=socket_table fds=%zu", h->n_fds);
            return -1;
        }
        idx = ++h->n_fds;
        h->fds[idx - 1].fd = s;
        curl_multi_assign(h->multi, s, (void *)(uintptr_t)idx);
    }
    short ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= ZMQ_POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= ZMQ_POLLOUT;
    h->fds[idx - 1].events = ev;
    return 0;
}

static uint64_t mono_now(void) { return empq_mono_ms(); }

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    worker__http *h = userp;
    (void)multi;
    h->timer_at = timeout_ms < 0 ? NO_TIMER : mono_now() + (uint64_t)timeout_ms;
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    worker__req *r = userdata;
    size_t n = size * nmemb;
    if (r->resp.len + n > WORKER_MAX_BODY) {
        r->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    if (empq_buf_append(&r->resp, ptr, n) != EMPQ_OK) {
        r->truncated = 1;
        return 0;
    }
    return n;
}

/* Copies a header's value (trimmed) when the line is "name: value". */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *userdata)
{
    worker__req *r = userdata;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue, say): forget the last one's */
        r->retry_after[0] = r->retry_after_ms[0] = r->request_id[0] = '\0';
        return n;
    }
    if (!header_value(line, n, "retry-after", r->retry_after, sizeof r->retry_after) &&
        !header_value(line, n, "retry-after-ms", r->retry_after_ms, sizeof r->retry_after_ms) &&
        !header_value(line, n, "x-request-id", r->request_id, sizeof r->request_id))
        header_value(line, n, "request-id", r->request_id, sizeof r->request_id);
    return n;
}

/* ==================== transport ==================== */

static int tp_start(void *ctx, worker__req *r, empq_error *err)
{
    worker__http *h = ctx;
    CURL *c = r->tp;
    if (c == NULL) {
        c = curl_easy_init();
        if (c == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "curl_easy_init failed");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_PRIVATE, r);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->transport_error);
        curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "empq-worker/0.1");
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, RECV_BUFFER);
        curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 16384L); /* the minimum; default 64 KiB */
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        r->tp = c;
    }
    long total = (long)r->timeout_ms;
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)r->headers);
    curl_mime_free(r->tp_mime);
    r->tp_mime = NULL;
    curl_easy_setopt(c, CURLOPT_MIMEPOST, NULL);
    if (r->method != NULL && strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (r->upload) {
        /* OpenAI Files: multipart purpose=batch and the JSONL as file */
        curl_mime *mime = curl_mime_init(c);
        curl_mimepart *part = mime != NULL ? curl_mime_addpart(mime) : NULL;
        if (part != NULL) {
            curl_mime_name(part, "purpose");
            curl_mime_data(part, "batch", CURL_ZERO_TERMINATED);
            part = curl_mime_addpart(mime);
        }
        if (part == NULL) {
            curl_mime_free(mime);
            return empq_error_set(err, EMPQ_ENOMEM, "curl_mime: out of memory");
        }
        curl_mime_name(part, "file");
        curl_mime_filename(part, "empq-batch.jsonl");
        curl_mime_type(part, "application/jsonl");
        curl_mime_data(part, r->body, r->body_len);
        r->tp_mime = mime;
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    } else {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
    }
    /* A batch call that makes something (upload, create, cancel) goes on a
     * connection of its own: on a reused one that the server closes without
     * a reply, libcurl sends the request again by itself, and a create
     * whose answer was lost would make a second batch. */
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, (long)(r->ctl && r->method == NULL));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, total < CONNECT_TIMEOUT_MS ? total : CONNECT_TIMEOUT_MS);
    CURLMcode mc = curl_multi_add_handle(h->multi, c);
    if (mc != CURLM_OK)
        return empq_error_set(err, EMPQ_EHTTP, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    return EMPQ_OK;
}

static void tp_cancel(void *ctx, worker__req *r)
{
    worker__http *h = ctx;
    if (r->tp != NULL)
        curl_multi_remove_handle(h->multi, r->tp);
}

static void tp_drop(void *ctx, worker__req *r)
{
    (void)ctx;
    if (r->tp != NULL)
        curl_easy_cleanup(r->tp);
    r->tp = NULL;
    curl_mime_free(r->tp_mime);
    r->tp_mime = NULL;
}

static int tp_unsent(void *ctx, const worker__req *r)
{
    (void)ctx;
    if (r->tp == NULL)
        return 0;
    curl_off_t up = 0;
    curl_easy_getinfo(r->tp, CURLINFO_SIZE_UPLOAD_T, &up);
    return up < (curl_off_t)r->body_len;
}

worker__transport worker__http_transport(worker__http *h)
{
    worker__transport t = {h, tp_start, tp_cancel, tp_drop, tp_unsent};
    return t;
}

/* ==================== the handle ==================== */

int worker__http_new(worker__http **out, long max_conns, empq_error *err)
{
    *out = NULL;
    worker__http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "http: out of memory");
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        free(h);
        return empq_error_set(err, EMPQ_ENOMEM, "http: curl_multi_init failed");
    }
    h->timer_at = NO_TIMER;
    if (max_conns < 16)
        max_conns = 16;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_conns);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, max_conns);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    *out = h;
    return EMPQ_OK;
}

void worker__http_free(worker__http **hp)
{
    if (hp == NULL || *hp == NULL)
        return;
    worker__http *h = *hp;
    curl_multi_cleanup(h->multi);
    free(h->fds);
    free(h->rdy);
    free(h);
    *hp = NULL;
}

void worker__http_set_engine(worker__http *h, worker__engine *e) { h->engine = e; }

size_t worker__http_nfds(const worker__http *h) { return h->n_fds; }

void worker__http_fill(const worker__http *h, zmq_pollitem_t *items)
{
    for (size_t i = 0; i < h->n_fds; i++) {
        items[i].socket = NULL;
        items[i].fd = h->fds[i].fd;
        items[i].events = h->fds[i].events;
        items[i].revents = 0;
    }
}

long worker__http_timeout(const worker__http *h, uint64_t now_mono)
{
    if (h->timer_at == NO_TIMER)
        return -1;
    if (h->timer_at <= now_mono)
        return 0;
    uint64_t d = h->timer_at - now_mono;
    return d > 3600000u ? 3600000L : (long)d;
}

/* A request that ran into its timeout: says where it stood (never
 * connected, connected but the request not sent, sent and no byte back, a
 * reply begun), so a stall can be told apart from a slow backend. Sets
 * r's reply to "no reply" with transport_error "timeout after N ms (phase
 * P, B bytes received)": a reply that began and then stalled or trickled
 * past the deadline is a timeout, not a cut reply. */
static void on_timeout(CURL *c, worker__req *r)
{
    curl_off_t connect_us = 0, pre_us = 0, first_us = 0, total_us = 0, up = 0, down = 0;
    long conns = 0, lport = 0;
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME_T, &pre_us);
    curl_easy_getinfo(c, CURLINFO_STARTTRANSFER_TIME_T, &first_us);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(c, CURLINFO_LOCAL_PORT, &lport);
    /* a reused connection reports no connect time: go by bytes */
    const char *phase = down > 0 || first_us > 0         ? "receiving"
                        : up >= (curl_off_t)r->body_len ? "waiting_first_byte"
                        : lport != 0 || pre_us > 0       ? "sending"
                                                         : "connecting";
    EMPQ_WARN_LIMITED("request_timeout",
                      "event=request_timeout job=%u attempt=%u url=%s timeout_ms=%u phase=%s connection=%s "
                      "local_port=%ld sent=%lld received=%lld connect_ms=%lld first_byte_ms=%lld total_ms=%lld",
                      r->job, r->attempt, r->url, r->timeout_ms, phase, conns > 0 ? "new" : "reused", lport,
                      (long long)up, (long long)down, (long long)(connect_us / 1000), (long long)(first_us / 1000),
                      (long long)(total_us / 1000));
    snprintf(r->transport_error, sizeof r->transport_error, "timeout after %u ms (phase %s, %lld bytes received)",
             r->timeout_ms, phase, (long long)down);
    r->status = 0;
    r->truncated = 0;
}

/* Hands every finished transfer to the engine. */
static void reap(worker__http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *c = m->easy_handle;
        CURLcode code = m->data.result;
        worker__req *r = NULL;
        curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&r);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(h->multi, c);
        if (r == NULL)
            continue;
        r->status = status;
        if (code == CURLE_OPERATION_TIMEDOUT)
            on_timeout(c, r);
        else if (code != CURLE_OK && status != 0 && !r->too_large)
            r->truncated = 1; /* a reply began but did not complete */
        if (code != CURLE_OK) {
            if (r->transport_error[0] == '\0')
                snprintf(r->transport_error, sizeof r->transport_error, "%s", curl_easy_strerror(code));
        } else {
            r->transport_error[0] = '\0';
        }
        if (h->engine != NULL)
            worker__engine_complete(h->engine, r);
    }
}

void worker__http_act(worker__http *h, const zmq_pollitem_t *items, size_t n, uint64_t now_mono)
{
    int running = 0;
    /* copy first: socket_action changes the socket table */
    if (grow((void **)&h->rdy, &h->cap_rdy, n, sizeof *h->rdy) == 0) {
        size_t nr = 0;
        for (size_t i = 0; i < n; i++) {
            if (items[i].revents == 0)
                continue;
            int mask = 0;
            if (items[i].revents & ZMQ_POLLIN)
                mask |= CURL_CSELECT_IN;
            if (items[i].revents & ZMQ_POLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (items[i].revents & ZMQ_POLLERR)
                mask |= CURL_CSELECT_ERR;
            h->rdy[nr].fd = items[i].fd;
            h->rdy[nr].mask = mask;
            nr++;
        }
        for (size_t i = 0; i < nr; i++)
            curl_multi_socket_action(h->multi, h->rdy[i].fd, h->rdy[i].mask, &running);
    }
    if (h->timer_at != NO_TIMER && h->timer_at <= now_mono) {
        h->timer_at = NO_TIMER;
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    reap(h);
}
