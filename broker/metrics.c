/* metrics.c: Prometheus counters of the broker and their HTTP server. See
 * metrics.h; docs/operations.md lists every metric. */
#include "metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "empq/log.h"
#include "empq/util.h"

static const double bucket_le[BK_METRICS_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                      2.5,  5,     10,   30,  60,   120};
static const char *const bucket_str[BK_METRICS_BUCKETS] = {"0.01", "0.025", "0.05", "0.1", "0.25",
                                                           "0.5",  "1",     "2.5",  "5",   "10",
                                                           "30",   "60",    "120"};

typedef struct bk__mm {
    char *alias;
    uint64_t dispatched, completed, cache_hits, dead, retries, released, http_429, tokens;
    uint64_t buckets[BK_METRICS_BUCKETS]; /* non-cumulative counts per bucket */
    uint64_t lat_count;
    double lat_sum; /* seconds */
} bk__mm;

struct bk__metrics {
    bk__mm *models;
    size_t n_models, cap_models;
    size_t last; /* the model looked up last */
    uint64_t outcomes_unknown_model;
    /* HTTP: MHD's thread and the loop meet here */
    struct MHD_Daemon *httpd;
    unsigned http_port;
    void (*wake)(void);
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int pending; /* a scrape waits */
    int stopping;
    uint64_t gen;       /* texts published so far */
    char *text;
    size_t text_len;
};

int bk__metrics_new(bk__metrics **out)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return EMPQ_ENOMEM;
    pthread_mutex_init(&(*out)->mu, NULL);
    pthread_cond_init(&(*out)->cv, NULL);
    atomic_init(&(*out)->pending, 0);
    return EMPQ_OK;
}

void bk__metrics_free(bk__metrics **m)
{
    if (m == NULL || *m == NULL)
        return;
    if ((*m)->httpd != NULL) {
        pthread_mutex_lock(&(*m)->mu);
        (*m)->stopping = 1; /* a waiting scrape gives up now */
        pthread_cond_broadcast(&(*m)->cv);
        pthread_mutex_unlock(&(*m)->mu);
        MHD_stop_daemon((*m)->httpd);
    }
    pthread_mutex_destroy(&(*m)->mu);
    pthread_cond_destroy(&(*m)->cv);
    free((*m)->text);
    for (size_t i = 0; i < (*m)->n_models; i++)
        free((*m)->models[i].alias);
    free((*m)->models);
    free(*m);
    *m = NULL;
}

/* The counters of alias, added when new; NULL when out of memory. */
static bk__mm *model(bk__metrics *m, const char *alias)
{
    if (m->last < m->n_models && strcmp(m->models[m->last].alias, alias) == 0)
        return &m->models[m->last];
    for (size_t i = 0; i < m->n_models; i++)
        if (strcmp(m->models[i].alias, alias) == 0) {
            m->last = i;
            return &m->models[i];
        }
    if (m->n_models == m->cap_models) {
        size_t cap = m->cap_models ? 2 * m->cap_models : 8;
        bk__mm *v = realloc(m->models, cap * sizeof *v);
        if (v == NULL)
            return NULL;
        m->models = v;
        m->cap_models = cap;
    }
    bk__mm *x = &m->models[m->n_models];
    memset(x, 0, sizeof *x);
    x->alias = empq_strdup(alias);
    if (x->alias == NULL)
        return NULL;
    m->last = m->n_models++;
    return x;
}

void bk__metrics_dispatched(bk__metrics *m, const char *alias, size_t n)
{
    bk__mm *x = model(m, alias);
    if (x != NULL)
        x->dispatched += n;
}

void bk__metrics_outcome(bk__metrics *m, const char *alias, const Empq__Outcome *o, bk__applied applied)
{
    bk__mm *x = model(m, alias);
    if (x == NULL)
        return;
    if (o->has_http_status && o->http_status == 429)
        x->http_429++;
    switch (o->kind) {
    case EMPQ__OUTCOME_KIND__OUTCOME_DONE:
        if (applied == BK_APPLIED) {
            x->completed++;
            if (o->has_cache_hit && o->cache_hit)
                x->cache_hits++;
        }
        if (o->has_tokens)
            x->tokens += o->tokens;
        if (o->has_latency_ms && !(o->has_cache_hit && o->cache_hit)) {
            double s = o->latency_ms / 1000.0;
            size_t b = 0;
            while (b < BK_METRICS_BUCKETS && s > bucket_le[b])
                b++;
            if (b < BK_METRICS_BUCKETS)
                x->buckets[b]++;
            x->lat_count++;
            x->lat_sum += s;
        }
        break;
    case EMPQ__OUTCOME_KIND__OUTCOME_RETRY:
        x->retries++;
        break;
    case EMPQ__OUTCOME_KIND__OUTCOME_DEAD:
        if (applied == BK_APPLIED)
            x->dead++;
        break;
    case EMPQ__OUTCOME_KIND__OUTCOME_BATCHED: break; /* in empq_jobs{state="batched"} */
    default:
        x->released++;
    }
}

const char *bk__metrics_escape(char *buf, size_t len, const char *v)
{
    size_t o = 0;
    for (; *v != '\0' && o + 1 < len; v++) {
        const char *rep = NULL;
        if (*v == '\\')
            rep = "\\\\";
        else if (*v == '"')
            rep = "\\\"";
        else if (*v == '\n')
            rep = "\\n";
        if (rep == NULL) {
            buf[o++] = *v;
        } else {
            if (o + 3 > len)
                break;
            buf[o++] = rep[0];
            buf[o++] = rep[1];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* ==================== rendering ==================== */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)k < b->cap - b->len) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

static void head(sbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef uint64_t (*mm_get)(const bk__mm *x);
#define GETTER(f) \
    static uint64_t get_##f(const bk__mm *x) { return x->f; }
GETTER(dispatched)
GETTER(completed)
GETTER(cache_hits)
GETTER(dead)
GETTER(retries)
GETTER(released)
GETTER(http_429)
GETTER(tokens)

static void per_model(sbuf *b, const bk__metrics *m, const char *name, const char *help, mm_get get)
{
    head(b, name, "counter", help);
    for (size_t i = 0; i < m->n_models; i++) {
        char a[256];
        put(b, "%s{model=\"%s\"} %llu\n", name, bk__metrics_escape(a, sizeof a, m->models[i].alias),
            (unsigned long long)get(&m->models[i]));
    }
}

/* The reason and value of a run's model for a gauge with a reason label;
 * NULL when the model has none. */
typedef const char *(*reason_get)(const bk__run *r, uint32_t k, unsigned *value);

static const char *stop_info(const bk__run *r, uint32_t k, unsigned *value)
{
    *value = 1;
    return r->pace[k].stopped ? r->pace[k].stop_reason : NULL;
}

static const char *unusable_info(const bk__run *r, uint32_t k, unsigned *value)
{
    *value = r->pace[k].unusable_workers;
    return r->pace[k].unusable[0] != '\0' ? r->pace[k].unusable : NULL;
}

/* A gauge labelled run, model and reason: one sample per model that has one. */
static void reason_family(sbuf *b, const bk__sched *s, const char *name, const char *help, reason_get get)
{
    head(b, name, "gauge", help);
    size_t nruns = s != NULL ? bk__sched_run_count(s) : 0;
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256], a[256], why[BK_PACE_REASON_MAX * 2];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; r->pace != NULL && k < r->n_models; k++) {
            unsigned v = 0;
            const char *reason = get(r, k, &v);
            if (reason != NULL)
                put(b, "%s{run=\"%s\",model=\"%s\",reason=\"%s\"} %u\n", name, rid,
                    bk__metrics_escape(a, sizeof a, r->aliases[k]), bk__metrics_escape(why, sizeof why, reason), v);
        }
    }
}

char *bk__metrics_render(const bk__metrics *m, const bk__sched *s, const bk__metrics_broker *bk, size_t *len)
{
    sbuf b = {malloc(8192), 0, 8192, 0};
    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';
    static const char *const states[5] = {"pending", "leased", "batched", "done", "dead"};
    size_t nruns = s != NULL ? bk__sched_run_count(s) : 0;

    head(&b, "empq_jobs", "gauge", "Jobs of each loaded run by model and state.");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; k < r->n_models; k++) {
            bk__counts c = bk__jobtable_counts(r->table, k);
            uint32_t v[5] = {c.pending, c.leased, c.batched, c.done, c.dead};
            char a[256];
            bk__metrics_escape(a, sizeof a, r->aliases[k]);
            for (int st = 0; st < 5; st++)
                put(&b, "empq_jobs{run=\"%s\",model=\"%s\",state=\"%s\"} %u\n", rid, a, states[st], v[st]);
        }
    }
    head(&b, "empq_run_jobs", "gauge", "Jobs of each loaded run (prompts x models x samples).");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256];
        put(&b, "empq_run_jobs{run=\"%s\"} %u\n", bk__metrics_escape(rid, sizeof rid, r->id),
            bk__jobtable_total(r->table));
    }
    head(&b, "empq_run_active", "gauge", "1 when the run is dispatched (ACTIVE), else 0.");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256];
        put(&b, "empq_run_active{run=\"%s\"} %d\n", bk__metrics_escape(rid, sizeof rid, r->id),
            r->state == EMPQ__RUN_STATE__RUN_ACTIVE);
    }

    /* per run and model, kept by the pacing of issue 3 (pace.h) */
    head(&b, "empq_run_tokens_total", "counter", "Reported tokens of fresh generations per run, model and direction.");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256], a[256];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; r->pace != NULL && k < r->n_models; k++) {
            bk__metrics_escape(a, sizeof a, r->aliases[k]);
            put(&b, "empq_run_tokens_total{run=\"%s\",model=\"%s\",direction=\"in\"} %llu\n", rid, a,
                (unsigned long long)r->pace[k].tok_in);
            put(&b, "empq_run_tokens_total{run=\"%s\",model=\"%s\",direction=\"out\"} %llu\n", rid, a,
                (unsigned long long)r->pace[k].tok_out);
        }
    }
    head(&b, "empq_run_cost_total", "counter", "Estimated cost (spec prices) per run and model.");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256], a[256];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; r->pace != NULL && k < r->n_models; k++)
            put(&b, "empq_run_cost_total{run=\"%s\",model=\"%s\"} %.6f\n", rid,
                bk__metrics_escape(a, sizeof a, r->aliases[k]), r->pace[k].cost);
    }
    head(&b, "empq_model_stopped", "gauge", "1 when the model is no longer dispatched (max_cost or another stop: empq_model_stop_info).");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256], a[256];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; r->pace != NULL && k < r->n_models; k++)
            put(&b, "empq_model_stopped{run=\"%s\",model=\"%s\"} %d\n", rid,
                bk__metrics_escape(a, sizeof a, r->aliases[k]), r->pace[k].stopped ? 1 : 0);
    }
    reason_family(&b, s, "empq_model_stop_info",
                  "1 for each stopped model, with why (max_cost, a model-wide failure, unusable: ...).", stop_info);
    reason_family(&b, s, "empq_model_unusable_workers",
                  "Live workers serving the model that report they cannot call it, with one's reason.", unusable_info);
    head(&b, "empq_jobs_dead_by_reason", "gauge", "Dead jobs of each loaded run per model and reason (the reason up to its first ': ').");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256], a[256], why[BK_REASON_KEY_MAX * 2];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; r->dead_reasons != NULL && k < r->n_models; k++) {
            bk__metrics_escape(a, sizeof a, r->aliases[k]);
            for (uint32_t j = 0; j < r->dead_reasons[k].n; j++)
                put(&b, "empq_jobs_dead_by_reason{run=\"%s\",model=\"%s\",reason=\"%s\"} %u\n", rid, a,
                    bk__metrics_escape(why, sizeof why, r->dead_reasons[k].key[j]), r->dead_reasons[k].count[j]);
        }
    }
    head(&b, "empq_model_rate_factor", "gauge", "Share of the spec rate limits in use after 429 slow-downs (1: none).");
    for (size_t i = 0; i < nruns; i++) {
        const bk__run *r = bk__sched_run_at(s, i);
        char rid[256], a[256];
        bk__metrics_escape(rid, sizeof rid, r->id);
        for (uint32_t k = 0; r->pace != NULL && k < r->n_models; k++)
            put(&b, "empq_model_rate_factor{run=\"%s\",model=\"%s\"} %.6f\n", rid,
                bk__metrics_escape(a, sizeof a, r->aliases[k]), r->pace[k].factor);
    }

    per_model(&b, m, "empq_jobs_dispatched_total", "Jobs sent to workers (a retried job counts again).",
              get_dispatched);
    per_model(&b, m, "empq_jobs_completed_total", "Jobs that became done (result in Redis).", get_completed);
    per_model(&b, m, "empq_cache_hits_total", "Completed jobs served from the response cache.", get_cache_hits);
    per_model(&b, m, "empq_jobs_dead_total", "Jobs given up after their last attempt.", get_dead);
    per_model(&b, m, "empq_retries_total", "Retryable failures reported by workers.", get_retries);
    per_model(&b, m, "empq_released_total", "Jobs handed back untried by stopping workers.", get_released);
    per_model(&b, m, "empq_http_429_total", "Backend answers with HTTP 429 (rate limited).", get_http_429);
    per_model(&b, m, "empq_tokens_total", "Input plus output tokens of fresh generations.", get_tokens);

    head(&b, "empq_request_duration_seconds", "histogram",
         "Backend request latency of fresh generations, per model.");
    for (size_t i = 0; i < m->n_models; i++) {
        const bk__mm *x = &m->models[i];
        char a[256];
        bk__metrics_escape(a, sizeof a, x->alias);
        uint64_t cum = 0;
        for (size_t k = 0; k < BK_METRICS_BUCKETS; k++) {
            cum += x->buckets[k];
            put(&b, "empq_request_duration_seconds_bucket{model=\"%s\",le=\"%s\"} %llu\n", a, bucket_str[k],
                (unsigned long long)cum);
        }
        put(&b, "empq_request_duration_seconds_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", a,
            (unsigned long long)x->lat_count);
        put(&b, "empq_request_duration_seconds_sum{model=\"%s\"} %.6f\n", a, x->lat_sum);
        put(&b, "empq_request_duration_seconds_count{model=\"%s\"} %llu\n", a, (unsigned long long)x->lat_count);
    }

    unsigned span = s != NULL ? bk__sched_worker_span(s) : 0;
    unsigned nw = 0;
    uint64_t credit = 0, in_flight = 0;
    for (unsigned w = 0; w < span; w++) {
        const bk__worker *x = bk__sched_worker(s, w);
        if (x == NULL)
            continue;
        nw++;
        credit += x->credit;
        in_flight += bk__sched_in_flight(s, w);
    }
    head(&b, "empq_workers_connected", "gauge", "Workers registered with the broker.");
    put(&b, "empq_workers_connected %u\n", nw);
    head(&b, "empq_workers_credit", "gauge", "Sum of the registered workers' credit.");
    put(&b, "empq_workers_credit %llu\n", (unsigned long long)credit);
    head(&b, "empq_workers_in_flight", "gauge", "Jobs leased to workers now.");
    put(&b, "empq_workers_in_flight %llu\n", (unsigned long long)in_flight);
    head(&b, "empq_worker_in_flight", "gauge", "Jobs leased to each worker now.");
    for (unsigned w = 0; w < span; w++) {
        const bk__worker *x = bk__sched_worker(s, w);
        if (x == NULL)
            continue;
        char id[256], host[256];
        put(&b, "empq_worker_in_flight{worker=\"%s\",host=\"%s\"} %u\n",
            bk__metrics_escape(id, sizeof id, x->worker_id),
            bk__metrics_escape(host, sizeof host, x->host != NULL ? x->host : ""), bk__sched_in_flight(s, w));
    }

    head(&b, "empq_dispatched_total", "counter", "Jobs sent to workers, every model.");
    put(&b, "empq_dispatched_total %llu\n", (unsigned long long)(bk != NULL ? bk->dispatched : 0));
    head(&b, "empq_outcomes_total", "counter", "Outcomes received from workers.");
    put(&b, "empq_outcomes_total %llu\n", (unsigned long long)(bk != NULL ? bk->outcomes : 0));
    head(&b, "empq_bad_messages_total", "counter", "Malformed or oversized messages dropped.");
    put(&b, "empq_bad_messages_total %llu\n", (unsigned long long)(bk != NULL ? bk->bad_messages : 0));
    head(&b, "empq_curve_handshakes_total", "counter",
         "CURVE handshakes answered by the allow-list (result: allowed or refused).");
    put(&b, "empq_curve_handshakes_total{result=\"allowed\"} %llu\n",
        (unsigned long long)(bk != NULL ? bk->curve_allowed : 0));
    put(&b, "empq_curve_handshakes_total{result=\"refused\"} %llu\n",
        (unsigned long long)(bk != NULL ? bk->curve_refused : 0));
    head(&b, "empq_curve_allowed_keys", "gauge", "Keys on the CURVE allow-list (0: CURVE off).");
    put(&b, "empq_curve_allowed_keys %llu\n", (unsigned long long)(bk != NULL ? bk->curve_keys : 0));
    head(&b, "empq_broker_start_time_seconds", "gauge", "Unix time the broker started.");
    put(&b, "empq_broker_start_time_seconds %.3f\n", bk != NULL ? bk->started_ms / 1000.0 : 0.0);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len != NULL)
        *len = b.len;
    return b.p;
}

/* ==================== HTTP ==================== */

#define BK_METRICS_WAIT_MS 2000

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    bk__metrics *m = cls;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = m;
        return MHD_YES;
    }
    *upload_size = 0;
    struct MHD_Response *r = NULL;
    unsigned code = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "only GET\n";
        r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        static const char msg[] = "empq-broker: the metrics are at /metrics\n";
        r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_NOT_FOUND;
    } else {
        /* ask the loop for a fresh text and wait for it */
        char *copy = NULL;
        size_t len = 0;
        pthread_mutex_lock(&m->mu);
        uint64_t want = m->gen + 1;
        atomic_store(&m->pending, 1);
        pthread_mutex_unlock(&m->mu);
        if (m->wake != NULL)
            m->wake();
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += BK_METRICS_WAIT_MS / 1000;
        pthread_mutex_lock(&m->mu);
        while (m->gen < want && !m->stopping)
            if (pthread_cond_timedwait(&m->cv, &m->mu, &until) != 0)
                break;
        if (m->gen >= want && m->text != NULL) {
            copy = malloc(m->text_len + 1);
            if (copy != NULL) {
                memcpy(copy, m->text, m->text_len + 1);
                len = m->text_len;
            }
        }
        pthread_mutex_unlock(&m->mu);
        if (copy == NULL) {
            static const char msg[] = "the broker's loop did not answer in time\n";
            r = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
            code = MHD_HTTP_SERVICE_UNAVAILABLE;
        } else {
            r = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
            if (r == NULL)
                free(copy);
        }
    }
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain");
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

int bk__metrics_http_start(bk__metrics *m, const char *addr, void (*wake)(void), empq_error *err)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0')
        return empq_error_set(err, EMPQ_EINVAL, "--metrics %s: want HOST:PORT (e.g. 127.0.0.1:9100)", addr);
    char host[64];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return empq_error_set(err, EMPQ_EINVAL, "--metrics %s: host too long", addr);
    memcpy(host, addr, hl);
    host[hl] = '\0';
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535)
        return empq_error_set(err, EMPQ_EINVAL, "--metrics %s: bad port", addr);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return empq_error_set(err, EMPQ_EINVAL, "--metrics %s: HOST must be an IPv4 address", addr);
    m->wake = wake;
    m->httpd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
                                answer, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)10, MHD_OPTION_END);
    if (m->httpd == NULL)
        return empq_error_set(err, EMPQ_EIO, "--metrics %s: cannot listen there (in use?)", addr);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(m->httpd, MHD_DAEMON_INFO_BIND_PORT);
    m->http_port = pi != NULL ? pi->port : (unsigned)port;
    return EMPQ_OK;
}

unsigned bk__metrics_http_port(const bk__metrics *m) { return m != NULL && m->httpd != NULL ? m->http_port : 0; }

int bk__metrics_http_pending(bk__metrics *m) { return m != NULL && atomic_load(&m->pending) != 0; }

void bk__metrics_http_publish(bk__metrics *m, char *text, size_t len)
{
    pthread_mutex_lock(&m->mu);
    free(m->text);
    m->text = text;
    m->text_len = text != NULL ? len : 0;
    m->gen++;
    atomic_store(&m->pending, 0);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}
