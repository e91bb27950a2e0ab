/* export.c: a run's results as responses.jsonl and dead.jsonl.
 *
 * The formatting half (empq_export_line, _dead_line, _render) is pure so the
 * unit tests check it without Redis; empq_export_responses reads the run
 * from the store and writes the files. */
#include "empq/export.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Doubles as the spec wrote them: 15 significant digits print 0.7 as 0.7,
 * not 0.69999999999999996, and keep any value a person typed. */
#define DUMP_FLAGS (JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15))

#define PROMPT_CHUNK 1024

/* ==================== small JSON helpers ==================== */

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A JSON string of s (null when s is NULL); invalid UTF-8 bytes become
 * U+FFFD. Returns NULL only when out of memory. */
static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *v = json_string(s);
    if (v != NULL)
        return v;
    empq_buf b = {0};
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        size_t n = utf8_seq(p);
        int rc = n > 0 ? empq_buf_append(&b, p, n) : empq_buf_append(&b, "\xEF\xBF\xBD", 3);
        if (rc != EMPQ_OK) {
            empq_buf_free(&b);
            return NULL;
        }
        p += n > 0 ? n : 1;
    }
    v = json_stringn(b.data != NULL ? b.data : "", b.len);
    empq_buf_free(&b);
    return v;
}

static json_t *jint_opt(int has, long long v) { return has ? json_integer(v) : json_null(); }

/* Sets key to v, taking v's reference; a NULL v (out of memory) is
 * remembered in *bad. */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
    if (v == NULL || json_object_set_new(o, key, v) != 0)
        *bad = 1;
}

const char *empq_export_iso8601(uint64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000u);
    struct tm tm;
    if (len == 0)
        return buf;
    if (gmtime_r(&sec, &tm) == NULL) {
        buf[0] = '\0';
        return buf;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000u));
    return buf;
}

static json_t *jtime_opt(int has, uint64_t ms)
{
    char buf[40];
    return has ? json_string(empq_export_iso8601(ms, buf, sizeof buf)) : json_null();
}

static json_t *params_json(const Empq__GenParams *g)
{
    json_t *o = json_object();
    if (o == NULL || g == NULL)
        return o;
    int bad = 0;
    if (g->has_temperature)
        put(o, "temperature", json_real(g->temperature), &bad);
    if (g->has_top_p)
        put(o, "top_p", json_real(g->top_p), &bad);
    if (g->has_max_tokens)
        put(o, "max_tokens", json_integer(g->max_tokens), &bad);
    if (g->has_seed)
        put(o, "seed", json_integer(g->seed), &bad);
    if (g->n_stop > 0) {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < g->n_stop; i++) {
            json_t *s = jstr(g->stop[i]);
            if (s == NULL || json_array_append_new(a, s) != 0)
                bad = 1;
        }
        put(o, "stop", a, &bad);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends o as one compact line to out and drops o. */
static int emit(json_t *o, empq_buf *out, empq_error *err)
{
    char *s = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory formatting a line");
    int rc = empq_buf_append(out, s, strlen(s));
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "\n", 1);
    free(s);
    if (rc != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    return EMPQ_OK;
}

static int is_human(const Empq__ModelSpec *m)
{
    return m->provider != NULL && strcmp(m->provider, "human") == 0;
}

/* ==================== pure formatting ==================== */

uint32_t empq_export_samples(const Empq__RunSpec *spec)
{
    uint32_t s = 1;
    for (size_t i = 0; i < spec->n_models; i++)
        if (spec->models[i]->samples > s)
            s = spec->models[i]->samples;
    return s;
}

uint64_t empq_export_total_jobs(const Empq__Run *run)
{
    if (run->spec == NULL)
        return 0;
    return (uint64_t)run->n_prompts * run->spec->n_models * empq_export_samples(run->spec);
}

/* Dumps o compactly and drops o. NULL when out of memory. */
static char *dump(json_t *o)
{
    char *s = json_dumps(o, DUMP_FLAGS);
    json_decref(o);
    return s;
}

/* The prompt half of a line: `{"run_id":...,"prompt":...,` (open object,
 * trailing comma). Every source of a prompt shares it, so it is built once
 * per prompt. Caller frees. NULL when out of memory. */
static char *line_prefix(const Empq__Run *run, const Empq__Prompt *p, uint32_t prompt_index)
{
    int bad = 0;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    put(o, "run_id", jstr(run->id), &bad);
    put(o, "prompt_id", jstr(p != NULL ? p->id : NULL), &bad);
    put(o, "prompt_index", json_integer(prompt_index), &bad);
    put(o, "emotion", jstr(p != NULL ? p->emotion : NULL), &bad);
    put(o, "situation", jstr(p != NULL ? p->situation : NULL), &bad);
    put(o, "prompt", jstr(p != NULL ? p->prompt : NULL), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    char *s = dump(o);
    if (s != NULL)
        s[strlen(s) - 1] = ','; /* "...}" -> "...," */
    return s;
}

/* The result half: `"response":...,"job":N}` appended to out with the
 * prefix before it and '\n' after. */
static int line_with_prefix(const Empq__Run *run, const char *prefix, const Empq__Result *r,
                            empq_buf *out, empq_error *err)
{
    if (run->spec == NULL || r->model >= run->spec->n_models)
        return empq_error_set(err, EMPQ_EINVAL, "run %s job %u: model %u is not in the spec",
                              run->id, r->job, r->model);
    const Empq__ModelSpec *m = run->spec->models[r->model];
    const Empq__Generation *g = r->gen;
    int human = is_human(m);
    int bad = 0;
    json_t *o = json_object();
    if (o == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    put(o, "response", jstr(g != NULL ? g->text : NULL), &bad);
    put(o, "source", jstr(m->alias), &bad);
    put(o, "model", jstr(human ? NULL : m->model), &bad);
    put(o, "model_version", jstr(g != NULL ? g->model_reported : NULL), &bad);
    put(o, "sample", json_integer(r->has_sample ? r->sample : 0), &bad);
    put(o, "params", human ? json_object() : params_json(m->params), &bad);
    put(o, "finish_reason", jstr(g != NULL ? g->finish_reason : NULL), &bad);
    put(o, "tokens_in", jint_opt(g != NULL && g->has_tokens_in, g != NULL ? g->tokens_in : 0), &bad);
    put(o, "tokens_out", jint_opt(g != NULL && g->has_tokens_out, g != NULL ? g->tokens_out : 0),
        &bad);
    put(o, "latency_ms", jint_opt(g != NULL && g->has_latency_ms, g != NULL ? g->latency_ms : 0),
        &bad);
    put(o, "attempts", jint_opt(r->has_attempts, r->attempts), &bad);
    put(o, "cache_hit", json_boolean(r->has_cache_hit && r->cache_hit), &bad);
    put(o, "started_at", jtime_opt(r->has_started_ms, r->started_ms), &bad);
    put(o, "finished_at", jtime_opt(r->has_finished_ms, r->finished_ms), &bad);
    put(o, "job", json_integer(r->job), &bad);
    if (bad) {
        json_decref(o);
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    }
    char *s = dump(o);
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory formatting a line");
    int rc = empq_buf_append(out, prefix, strlen(prefix));
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, s + 1, strlen(s + 1)); /* drop the '{' */
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "\n", 1);
    free(s);
    if (rc != EMPQ_OK)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    return EMPQ_OK;
}

int empq_export_line(const Empq__Run *run, const Empq__Prompt *p, const Empq__Result *r,
                     empq_buf *out, empq_error *err)
{
    char *prefix = line_prefix(run, p, r->prompt);
    if (prefix == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    int rc = line_with_prefix(run, prefix, r, out, err);
    free(prefix);
    return rc;
}

int empq_export_dead_line(const Empq__Run *run, const Empq__Prompt *p, const Empq__DeadLetter *d,
                          empq_buf *out, empq_error *err)
{
    uint32_t n_models = run->spec != NULL ? (uint32_t)run->spec->n_models : 0;
    uint32_t samples = run->spec != NULL ? empq_export_samples(run->spec) : 1;
    uint32_t per_prompt = n_models * samples;
    int bad = 0;
    json_t *o = json_object();
    if (o == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    put(o, "run_id", jstr(run->id), &bad);
    put(o, "job", json_integer(d->job), &bad);
    if (per_prompt > 0) {
        uint32_t model = (d->job / samples) % n_models;
        put(o, "prompt_index", json_integer(d->job / per_prompt), &bad);
        put(o, "prompt_id", jstr(p != NULL ? p->id : NULL), &bad);
        put(o, "source", jstr(run->spec->models[model]->alias), &bad);
        put(o, "sample", json_integer(d->job % samples), &bad);
    }
    put(o, "reason", jstr(d->reason), &bad);
    put(o, "last_status", jint_opt(d->has_last_status, d->last_status), &bad);
    put(o, "body_excerpt", jstr(d->body_excerpt), &bad);
    put(o, "attempts", jint_opt(d->has_attempts, d->attempts), &bad);
    put(o, "at", jtime_opt(d->has_at_ms, d->at_ms), &bad);
    put(o, "worker", jstr(d->worker), &bad);
    if (bad) {
        json_decref(o);
        return empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
    }
    return emit(o, out, err);
}

int empq_export_render(const Empq__Run *run, Empq__Prompt *const *prompts, size_t n_prompts,
                       Empq__Result *const *results, size_t n_results,
                       Empq__DeadLetter *const *dead, size_t n_dead, empq_buf *responses,
                       empq_buf *dead_out, empq_export_stats *st, empq_error *err)
{
    empq_export_stats local = {0};
    if (st == NULL)
        st = &local;
    memset(st, 0, sizeof *st);
    uint64_t total = empq_export_total_jobs(run);
    if (run->spec == NULL || run->spec->n_models == 0)
        return empq_error_set(err, EMPQ_EINVAL, "run %s: the spec has no models", run->id);
    uint32_t per_prompt = (uint32_t)run->spec->n_models * empq_export_samples(run->spec);
    st->total = (size_t)total;

    /* Index results and dead letters by job: job order is output order. */
    const Empq__Result **by_job = calloc(total > 0 ? (size_t)total : 1, sizeof *by_job);
    const Empq__DeadLetter **dead_by_job = calloc(total > 0 ? (size_t)total : 1, sizeof *dead_by_job);
    if (by_job == NULL || dead_by_job == NULL) {
        free(by_job);
        free(dead_by_job);
        return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory for %" PRIu64 " jobs",
                              run->id, total);
    }
    for (size_t i = 0; i < n_results; i++)
        if (results[i] != NULL && results[i]->job < total && by_job[results[i]->job] == NULL)
            by_job[results[i]->job] = results[i];
    for (size_t i = 0; i < n_dead; i++)
        if (dead[i] != NULL && dead[i]->job < total && dead_by_job[dead[i]->job] == NULL)
            dead_by_job[dead[i]->job] = dead[i];

    int rc = EMPQ_OK;
    char *prefix = NULL;
    size_t prefix_of = SIZE_MAX;
    for (uint64_t job = 0; job < total && rc == EMPQ_OK; job++) {
        size_t pi = (size_t)(job / per_prompt);
        const Empq__Prompt *p = pi < n_prompts ? prompts[pi] : NULL;
        if (by_job[job] != NULL) {
            if (prefix_of != pi) {
                free(prefix);
                prefix = line_prefix(run, p, (uint32_t)pi);
                prefix_of = pi;
                if (prefix == NULL) {
                    rc = empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
                    break;
                }
            }
            rc = line_with_prefix(run, prefix, by_job[job], responses, err);
            st->lines++;
            if (by_job[job]->has_cache_hit && by_job[job]->cache_hit)
                st->cache_hits++;
        } else if (dead_by_job[job] != NULL) {
            st->dead++;
            if (dead_out != NULL)
                rc = empq_export_dead_line(run, p, dead_by_job[job], dead_out, err);
        } else {
            st->missing++;
        }
    }
    free(prefix);
    free(by_job);
    free(dead_by_job);
    return rc;
}

/* ==================== from the store ==================== */

/* Reads every prompt of the run in chunks (one HMGET each). */
static int read_prompts(empq_store *s, const Empq__Run *run, Empq__Prompt ***out, empq_error *err)
{
    size_t n = run->n_prompts;
    Empq__Prompt **v = calloc(n > 0 ? n : 1, sizeof *v);
    uint32_t *idx = malloc(PROMPT_CHUNK * sizeof *idx);
    if (v == NULL || idx == NULL) {
        free(v);
        free(idx);
        return empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory for %zu prompts", run->id, n);
    }
    for (size_t at = 0; at < n; at += PROMPT_CHUNK) {
        size_t k = n - at < PROMPT_CHUNK ? n - at : PROMPT_CHUNK;
        for (size_t i = 0; i < k; i++)
            idx[i] = (uint32_t)(at + i);
        int rc = empq_store_prompts_get(s, run->id, idx, k, v + at);
        if (rc != EMPQ_OK) {
            for (size_t i = 0; i < n; i++)
                if (v[i] != NULL)
                    empq__prompt__free_unpacked(v[i], NULL);
            free(v);
            free(idx);
            return empq_error_set(err, rc, "run %s: reading prompts: %s", run->id,
                                  empq_store_errstr(s));
        }
    }
    free(idx);
    *out = v;
    return EMPQ_OK;
}

/* The folder part of path ("." when none); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return empq_strdup(".");
    if (slash == path)
        return empq_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

int empq_export_responses(empq_store *s, const char *run_id, const char *path,
                          empq_export_stats *st, empq_error *err)
{
    Empq__Run *run = NULL;
    Empq__Prompt **prompts = NULL;
    Empq__Result **results = NULL;
    Empq__DeadLetter **dead = NULL;
    size_t n_results = 0, n_dead = 0;
    empq_buf out = {0}, dead_out = {0};
    empq_export_stats local = {0};
    char *dir = NULL, *dead_path = NULL;
    if (st == NULL)
        st = &local;

    int rc = empq_store_run_get(s, run_id, &run);
    if (rc == EMPQ_ENOTFOUND) {
        rc = empq_error_set(err, rc, "no run %s in %s", run_id, empq_store_url(s));
        goto done;
    }
    if (rc != EMPQ_OK) {
        rc = empq_error_set(err, rc, "run %s: %s", run_id, empq_store_errstr(s));
        goto done;
    }
    rc = read_prompts(s, run, &prompts, err);
    if (rc != EMPQ_OK)
        goto done;
    rc = empq_store_results_all(s, run_id, &results, &n_results);
    if (rc != EMPQ_OK) {
        rc = empq_error_set(err, rc, "run %s: reading results: %s", run_id, empq_store_errstr(s));
        goto done;
    }
    rc = empq_store_dead_all(s, run_id, &dead, &n_dead);
    if (rc != EMPQ_OK) {
        rc = empq_error_set(err, rc, "run %s: reading dead letters: %s", run_id,
                            empq_store_errstr(s));
        goto done;
    }
    rc = empq_export_render(run, prompts, run->n_prompts, results, n_results, dead, n_dead, &out,
                            &dead_out, st, err);
    if (rc != EMPQ_OK)
        goto done;
    dir = dir_of(path);
    if (dir == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
        goto done;
    }
    size_t dl = strlen(dir) + sizeof "/dead.jsonl";
    dead_path = malloc(dl);
    if (dead_path == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "export: out of memory");
        goto done;
    }
    snprintf(dead_path, dl, "%s/dead.jsonl", dir);
    /* dead.jsonl first, responses.jsonl last: whoever waits for
     * responses.jsonl (the collector after a restart, a user's script) finds
     * the dead letters of the same export beside it. A dead.jsonl of an
     * earlier export whose dead jobs have since been rerun is replaced (by
     * an empty file when none are dead now), never left stale. */
    struct stat sb;
    if (st->dead > 0 || stat(dead_path, &sb) == 0) {
        rc = empq_write_file_atomic(dead_path, dead_out.data != NULL ? dead_out.data : "",
                                    dead_out.len, err);
        if (rc != EMPQ_OK)
            goto done;
    }
    rc = empq_write_file_atomic(path, out.data != NULL ? out.data : "", out.len, err);

done:
    if (prompts != NULL && run != NULL)
        for (size_t i = 0; i < run->n_prompts; i++)
            if (prompts[i] != NULL)
                empq__prompt__free_unpacked(prompts[i], NULL);
    free(prompts);
    if (results != NULL)
        empq_store_free_results(results, n_results);
    if (dead != NULL)
        empq_store_free_dead(dead, n_dead);
    if (run != NULL)
        empq__run__free_unpacked(run, NULL);
    empq_buf_free(&out);
    empq_buf_free(&dead_out);
    free(dir);
    free(dead_path);
    return rc;
}
