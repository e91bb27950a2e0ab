/* test_fakellm_server.c: the server in-process over real HTTP (libcurl):
 * routing, the fault hook seam (rewrite, reset, hang, delay), the latency
 * path, a clean stop with responses still waiting (and hung), the limits
 * and injected faults through HTTP (headers, truncated and padded bodies),
 * and option checks. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"
#include "empq/log.h"
#include "openai.h"
#include "server.h"
#include "timer.h"

typedef struct got {
    long status;
    CURLcode rc;
    empq_buf body;
    empq_buf headers;
    uint64_t ms;
} got;

static size_t on_header(char *p, size_t size, size_t n, void *user)
{
    got *g = user;
    return empq_buf_append(&g->headers, p, size * n) == EMPQ_OK ? size * n : 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    got *g = user;
    return empq_buf_append(&g->body, p, size * n) == EMPQ_OK ? size * n : 0;
}

static got post_t(unsigned port, const char *path, const char *body, const char *header, long timeout_ms);

static got post(unsigned port, const char *path, const char *body, const char *header)
{
    return post_t(port, path, body, header, 10000L);
}

static got post_t(unsigned port, const char *path, const char *body, const char *header, long timeout_ms)
{
    got g = {0};
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    CURL *c = curl_easy_init();
    if (c == NULL) {
        g.rc = CURLE_FAILED_INIT; /* no CHECK here: post runs on several threads */
        return g;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (header != NULL)
        h = curl_slist_append(h, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &g);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    uint64_t t0 = fakellm_timer_now_ms();
    g.rc = curl_easy_perform(c);
    g.ms = fakellm_timer_now_ms() - t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &g.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return g;
}

static const char *chat_body(const char *model)
{
    static _Thread_local char b[256];
    snprintf(b, sizeof(b), "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"My dog died.\"}]}", model);
    return b;
}

/* The hook: by model name in the body, and a header. */
/* The hook runs on the server thread: it records, the main thread CHECKs. */
static atomic_int hook_calls, hook_bad;
static fakellm_action hook(void *user, const fakellm_request *req, fakellm_reply *reply)
{
    atomic_fetch_add(&hook_calls, 1);
    if (req->route == NULL || strcmp(req->route, "openai.chat") != 0 || strcmp(req->method, "POST") != 0 ||
        req->seq == 0)
        atomic_fetch_add(&hook_bad, 1);
    if (strstr(req->body, "\"fault-503\"") != NULL) {
        fakellm_reply_clear(reply);
        if (fakellm_openai_error(reply, 503, "overloaded", "server_error", NULL, NULL) != EMPQ_OK)
            atomic_fetch_add(&hook_bad, 1);
    } else if (strstr(req->body, "\"fault-reset\"") != NULL) {
        return FAKELLM_ACT_RESET;
    } else if (strstr(req->body, "\"fault-slow\"") != NULL) {
        reply->delay_ms = 300;
    } else if (strstr(req->body, "\"fault-hang\"") != NULL) {
        return FAKELLM_ACT_HANG;
    }
    const char *x = fakellm_request_header(req, "X-Fast");
    if (x != NULL && strcmp(x, "yes") == 0)
        reply->delay_ms = 0;
    return FAKELLM_ACT_RESPOND;
}

static void test_hook_and_routes(void)
{
    fakellm_options o;
    fakellm_options_init(&o);
    o.latency_ms = 100;
    o.fault = hook;
    fakellm_server *s = NULL;
    empq_error err = {0};
    CHECK_INT(fakellm_server_start(&o, &s, &err), EMPQ_OK);
    unsigned port = fakellm_server_port(s);
    CHECK(port > 0);

    got g = post(port, "/v1/chat/completions", chat_body("fake-warm"), NULL);
    CHECK_INT(g.rc, CURLE_OK);
    CHECK_INT(g.status, 200);
    CHECK_CONTAINS(g.body.data, "\"object\":\"chat.completion\"");
    CHECK(g.ms >= 95);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);

    g = post(port, "/v1/chat/completions", chat_body("fake-warm"), "X-Fast: yes");
    CHECK_INT(g.status, 200);
    CHECK(g.ms < 90);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);

    g = post(port, "/v1/chat/completions", chat_body("fault-slow"), NULL);
    CHECK_INT(g.status, 200);
    CHECK(g.ms >= 295);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);

    g = post(port, "/v1/chat/completions", chat_body("fault-503"), NULL);
    CHECK_INT(g.status, 503);
    CHECK_CONTAINS(g.body.data, "\"type\":\"server_error\"");
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);

    g = post(port, "/v1/chat/completions", chat_body("fault-reset"), NULL);
    CHECK(g.rc != CURLE_OK);
    CHECK_INT(g.status, 0);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);

    /* Control routes skip the hook and the latency. */
    int calls = atomic_load(&hook_calls);
    g = post(port, "/stats", NULL, NULL);
    CHECK_INT(g.status, 200);
    CHECK(g.ms < 90);
    CHECK_CONTAINS(g.body.data, "\"requests\":3,\"by_model\":{\"fake-warm\":2,\"fault-slow\":1},\"errors\":1");
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    g = post(port, "/healthz", NULL, NULL);
    CHECK_INT(g.status, 200);
    CHECK_STR(g.body.data, "{\"ok\":true}");
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    g = post(port, "/v2/nothing", "{}", NULL);
    CHECK_INT(g.status, 404);
    CHECK_CONTAINS(g.body.data, "Invalid URL (POST /v2/nothing)");
    CHECK(g.ms < 90);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    CHECK_INT(atomic_load(&hook_calls), calls);
    CHECK_INT(atomic_load(&hook_bad), 0);

    /* A hang: the client times out; the server holds it until stop. */
    g = post_t(port, "/v1/chat/completions", chat_body("fault-hang"), "X-Fast: yes", 300L);
    CHECK_INT(g.rc, CURLE_OPERATION_TIMEDOUT);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    fakellm_stats_snapshot snap;
    fakellm_stats_get(fakellm_server_stats(s), &snap);
    CHECK_INT(snap.hung, 1);

    uint64_t t0 = fakellm_timer_now_ms();
    fakellm_server_stop(&s);
    CHECK(fakellm_timer_now_ms() - t0 < 3000);
    CHECK(s == NULL);
    fakellm_server_stop(&s);
    fakellm_server_stop(NULL);
}

static const char *provider_body(int provider)
{
    switch (provider) {
    case 0: return chat_body("fake-warm");
    case 1: return "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"My dog died.\"}]}]}";
    default: return "{\"model\":\"fake-warm\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\","
                    "\"content\":\"My dog died.\"}]}";
    }
}

static const char *provider_path(int provider)
{
    static const char *const paths[] = {"/v1/chat/completions", "/v1beta/models/fake-warm:generateContent",
                                        "/v1/messages"};
    return paths[provider];
}

/* Limits through HTTP: each provider's 429 and headers. */
static void test_limits(void)
{
    fakellm_limit_spec lim[] = {{"fake-warm", {.rpm = 2}}};
    fakellm_options o;
    fakellm_options_init(&o);
    o.limits = lim;
    o.n_limits = 1;
    fakellm_server *s = NULL;
    CHECK_INT(fakellm_server_start(&o, &s, NULL), EMPQ_OK);
    unsigned port = fakellm_server_port(s);
    for (int p = 0; p < 3; p++) {
        const char *hdr = p == 2 ? "anthropic-version: 2023-06-01" : NULL;
        for (int i = 0; i < 3; i++) {
            got g = post(port, provider_path(p), provider_body(p), hdr);
            /* One shared quota: fake-warm through every format. */
            int ok = p == 0 && i < 2;
            CHECK_INT(g.status, ok ? 200 : 429);
            if (ok && p == 0)
                CHECK_CONTAINS(g.headers.data, "x-ratelimit-limit-requests: 2");
            if (!ok) {
                CHECK_CONTAINS(g.headers.data, p == 2 ? "retry-after: " : "Retry-After: ");
                CHECK_CONTAINS(g.body.data, p == 0 ? "\"code\":\"rate_limit_exceeded\""
                                           : p == 1 ? "\"status\":\"RESOURCE_EXHAUSTED\""
                                                    : "\"type\":\"rate_limit_error\"");
            }
            empq_buf_free(&g.body);
            empq_buf_free(&g.headers);
        }
    }
    got g = post(port, "/stats", NULL, NULL);
    CHECK_CONTAINS(g.body.data, "\"models\":{\"fake-warm\":{\"limit\":{\"rpm\":2,\"tpm\":0,\"concurrency\":0},"
                                "\"requests\":9,\"limited\":7,");
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    fakellm_server_stop(&s);
}

/* Injected faults: truncated and padded bodies on the wire. */
static void test_broken_bodies(void)
{
    fakellm_options o;
    fakellm_options_init(&o);
    o.fault_p[FAKELLM_FAULT_TRUNCATED] = 1.0;
    fakellm_server *s = NULL;
    CHECK_INT(fakellm_server_start(&o, &s, NULL), EMPQ_OK);
    got g = post(fakellm_server_port(s), "/v1/chat/completions", chat_body("fake-warm"), NULL);
    CHECK_INT(g.rc, CURLE_PARTIAL_FILE);
    CHECK_INT(g.status, 200);
    CHECK(g.body.len > 10);
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    fakellm_stats_snapshot snap;
    fakellm_stats_get(fakellm_server_stats(s), &snap);
    CHECK_INT(snap.faults[FAKELLM_FAULT_TRUNCATED], 1);
    fakellm_server_stop(&s);

    fakellm_options_init(&o);
    o.fault_p[FAKELLM_FAULT_HUGE] = 1.0;
    o.huge_bytes = 3000000;
    CHECK_INT(fakellm_server_start(&o, &s, NULL), EMPQ_OK);
    g = post(fakellm_server_port(s), "/v1/messages", provider_body(2), "anthropic-version: 2023-06-01");
    CHECK_INT(g.rc, CURLE_OK);
    CHECK_INT(g.status, 200);
    CHECK(g.body.len > 3000000 && g.body.len < 3001000);
    CHECK_CONTAINS(g.body.data, "lorem ipsum dolor sit amet lorem");
    CHECK_CONTAINS(g.body.data, "\"stop_reason\":\"end_turn\"");
    empq_buf_free(&g.body);
    empq_buf_free(&g.headers);
    fakellm_server_stop(&s);
}

typedef struct waiter {
    unsigned port;
    got g;
} waiter;

static void *wait_long(void *arg)
{
    waiter *w = arg;
    w->g = post(w->port, "/v1/chat/completions", chat_body("fake-brief"), NULL);
    return NULL;
}

/* Stop with 10 responses held for 60 s: they are sent now, stop returns. */
static void test_stop_drains(void)
{
    fakellm_options o;
    fakellm_options_init(&o);
    o.latency_ms = 60000;
    fakellm_server *s = NULL;
    CHECK_INT(fakellm_server_start(&o, &s, NULL), EMPQ_OK);
    waiter w[10];
    pthread_t th[10];
    for (int i = 0; i < 10; i++) {
        w[i].port = fakellm_server_port(s);
        CHECK_INT(pthread_create(&th[i], NULL, wait_long, &w[i]), 0);
    }
    fakellm_stats_snapshot snap = {0};
    uint64_t end = fakellm_timer_now_ms() + 5000;
    while (snap.in_flight < 10 && fakellm_timer_now_ms() < end) {
        fakellm_stats_get(fakellm_server_stats(s), &snap);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    CHECK_INT(snap.in_flight, 10);
    uint64_t t0 = fakellm_timer_now_ms();
    fakellm_server_stop(&s);
    CHECK(fakellm_timer_now_ms() - t0 < 3000);
    for (int i = 0; i < 10; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(w[i].g.status, 200);
        empq_buf_free(&w[i].g.body);
        empq_buf_free(&w[i].g.headers);
    }
}

static void test_bad_options(void)
{
    fakellm_options o;
    fakellm_server *s = NULL;
    empq_error err = {0};
    fakellm_options_init(&o);
    o.host = "192.0.2.1"; /* TEST-NET-1: not an address of this host (no DNS asked) */
    CHECK_INT(fakellm_server_start(&o, &s, &err), EMPQ_EIO);
    CHECK_CONTAINS(err.msg, "192.0.2.1");
    CHECK(s == NULL);
    fakellm_options_init(&o);
    o.port = 70000;
    CHECK_INT(fakellm_server_start(&o, &s, &err), EMPQ_EINVAL);
    /* A taken port. */
    fakellm_server *first = NULL;
    fakellm_options_init(&o);
    CHECK_INT(fakellm_server_start(&o, &first, NULL), EMPQ_OK);
    o.port = fakellm_server_port(first);
    CHECK_INT(fakellm_server_start(&o, &s, &err), EMPQ_EIO);
    CHECK(s == NULL);
    fakellm_server_stop(&first);
    /* Fault probabilities. */
    fakellm_options_init(&o);
    o.fault_p[FAKELLM_FAULT_429] = 0.7;
    o.fault_p[FAKELLM_FAULT_500] = 0.7;
    CHECK_INT(fakellm_server_start(&o, &s, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "add up to");
    o.fault_p[FAKELLM_FAULT_500] = -0.1;
    CHECK_INT(fakellm_server_start(&o, &s, &err), EMPQ_EINVAL);
    CHECK(s == NULL);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    empq_log_init("test_fakellm_server", EMPQ_LOG_ERROR);
    RUN(test_hook_and_routes);
    RUN(test_stop_drains);
    RUN(test_bad_options);
    RUN(test_limits);
    RUN(test_broken_bodies);
    curl_global_cleanup();
    CHECK_DONE();
}
