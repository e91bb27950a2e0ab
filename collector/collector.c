/* collector.c: follow the results stream and export completed runs. */
#include "collector.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "empq/export.h"
#include "empq/judge.h"
#include "empq/log.h"
#include "empq/store.h"
#include "empq/util.h"

#define GROUP "collector"

/* One run the collector knows about. */
typedef struct track {
    char *id;
    uint64_t total;   /* jobs of the run */
    int exported;     /* responses.jsonl written for the run as it is now */
    uint64_t results_at_export; /* HLEN of the results when it was written */
    int dirty;        /* stream entries seen since the last check */
    int ignored;      /* unusable (unsafe id, unreadable Run): never exported */
    int judge;        /* a judge run: judge-ratings.csv is written before responses.jsonl */
} track;

struct collector {
    collector__opts o;
    char *out_dir;
    char *name;
    empq_store *store;
    empq_stream_entry *batch;
    track *runs;
    size_t n_runs, cap_runs;
    uint64_t next_rescan_ms;
    uint64_t next_trim_ms;
    uint64_t trimmed; /* stream entries deleted after every group acked them */
    uint64_t exported;
    int store_down; /* the last call failed: log recovery once */
};

void collector__opts_default(collector__opts *o)
{
    memset(o, 0, sizeof *o);
    const char *url = getenv("EMPQ_REDIS_URL");
    o->redis_url = url != NULL && url[0] != '\0' ? url : "redis://127.0.0.1:6379";
    o->out_dir = "runs";
    o->name = "collector-1";
    o->block_ms = 500;
    o->rescan_ms = 1000;
    o->batch = 1024;
    o->trim_ms = 5000;
}

int collector__safe_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 127 || id[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == ':' || ch == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

int collector__new(collector **out, const collector__opts *o, empq_error *err)
{
    *out = NULL;
    collector *c = calloc(1, sizeof *c);
    if (c == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    c->o = *o;
    if (c->o.batch == 0)
        c->o.batch = 1024;
    c->out_dir = empq_strdup(o->out_dir);
    c->name = empq_strdup(o->name);
    c->batch = calloc(c->o.batch, sizeof *c->batch);
    if (c->out_dir == NULL || c->name == NULL || c->batch == NULL) {
        collector__free(&c);
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    }
    int rc = empq_mkdirs(c->out_dir, err);
    if (rc != EMPQ_OK) {
        collector__free(&c);
        return rc;
    }
    rc = empq_store_open(&c->store, o->redis_url, 2000, err);
    if (rc != EMPQ_OK) {
        collector__free(&c);
        return rc;
    }
    rc = empq_store_stream_group(c->store, GROUP);
    if (rc != EMPQ_OK) {
        empq_error_set(err, rc, "%s", empq_store_errstr(c->store));
        collector__free(&c);
        return rc;
    }
    *out = c;
    return EMPQ_OK;
}

void collector__free(collector **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    collector *c = *cp;
    for (size_t i = 0; i < c->n_runs; i++)
        free(c->runs[i].id);
    free(c->runs);
    free(c->batch);
    free(c->out_dir);
    free(c->name);
    empq_store_close(&c->store);
    free(c);
    *cp = NULL;
}

uint64_t collector__exported(const collector *c) { return c->exported; }

uint64_t collector__trimmed(const collector *c) { return c->trimmed; }

/* ==================== runs ==================== */

static track *find_run(collector *c, const char *id)
{
    for (size_t i = 0; i < c->n_runs; i++)
        if (strcmp(c->runs[i].id, id) == 0)
            return &c->runs[i];
    return NULL;
}

/* OUT/<id>/responses.jsonl into buf. */
static void responses_path(const collector *c, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/responses.jsonl", c->out_dir, id);
}

/* Adds a run: reads its Run for the job total. A run whose responses.jsonl
 * exists already counts as exported (written by an earlier collector). On
 * EMPQ_ESTORE nothing is added; *t is NULL. */
static int add_run(collector *c, const char *id, track **t)
{
    *t = NULL;
    if (c->n_runs == c->cap_runs) {
        size_t cap = c->cap_runs != 0 ? c->cap_runs * 2 : 16;
        track *v = realloc(c->runs, cap * sizeof *v);
        if (v == NULL)
            return EMPQ_ENOMEM;
        c->runs = v;
        c->cap_runs = cap;
    }
    track n = {0};
    n.id = empq_strdup(id);
    if (n.id == NULL)
        return EMPQ_ENOMEM;
    char qid[160];
    if (!collector__safe_id(id)) {
        EMPQ_WARN("event=run_ignored run=%s reason=\"run id cannot be a folder name\"",
                  empq_log_quote(qid, sizeof qid, id));
        n.ignored = 1;
    } else {
        Empq__Run *run = NULL;
        int rc = empq_store_run_get(c->store, id, &run);
        if (rc == EMPQ_ESTORE) {
            free(n.id);
            return rc;
        }
        if (rc != EMPQ_OK) {
            EMPQ_WARN("event=run_ignored run=%s reason=%s", id,
                      empq_log_quote(qid, sizeof qid, empq_store_errstr(c->store)));
            n.ignored = 1;
        } else {
            n.total = empq_export_total_jobs(run);
            n.judge = empq_judge_is_judge_run(run);
            empq__run__free_unpacked(run, NULL);
            char path[512];
            struct stat sb;
            responses_path(c, id, path, sizeof path);
            n.exported = stat(path, &sb) == 0;
            /* The export writes dead.jsonl before responses.jsonl, so a
             * collector killed between the two left no responses.jsonl and
             * the run is written again. A run with dead letters but no
             * dead.jsonl beside its responses.jsonl (deleted, or written by
             * an older collector that wrote it last) is written again too. */
            if (n.exported) {
                uint64_t dead = 0;
                int rc2 = empq_store_counts(c->store, id, &n.results_at_export, &dead);
                if (rc2 != EMPQ_OK) {
                    free(n.id);
                    return rc2;
                }
                char dpath[512];
                snprintf(dpath, sizeof dpath, "%s/%s/dead.jsonl", c->out_dir, id);
                if (dead > 0 && stat(dpath, &sb) != 0) {
                    n.exported = 0;
                    n.dirty = 1;
                }
            }
        }
    }
    c->runs[c->n_runs] = n;
    *t = &c->runs[c->n_runs++];
    return EMPQ_OK;
}

/* Writes the run's files when every job is done or dead. Returns EMPQ_OK
 * (also when not complete yet), EMPQ_ESTORE or EMPQ_EIO (logged). */
static int check_run(collector *c, track *t, size_t *exported)
{
    if (t->ignored || (t->exported && !t->dirty))
        return EMPQ_OK;
    uint64_t results = 0, dead = 0;
    int rc = empq_store_counts(c->store, t->id, &results, &dead);
    if (rc != EMPQ_OK)
        return rc;
    if (results + dead < t->total)
        return EMPQ_OK;
    /* Stream entries read after the export of a complete run are the tail
     * of the same results; only more results than were written (dead jobs
     * rerun) call for writing the file again. */
    if (t->exported && results <= t->results_at_export)
        return EMPQ_OK;

    uint64_t t0 = empq_mono_ms();
    char dir[512], path[512];
    snprintf(dir, sizeof dir, "%s/%s", c->out_dir, t->id);
    responses_path(c, t->id, path, sizeof path);
    empq_error err = {0};
    char q[600];
    rc = empq_mkdirs(dir, &err);
    empq_export_stats st = {0};
    if (rc == EMPQ_OK && t->judge) {
        /* before responses.jsonl, so that a run counted as exported has it */
        char jpath[540];
        snprintf(jpath, sizeof jpath, "%s/judge-ratings.csv", dir);
        rc = empq_judge_write_csv(c->store, t->id, jpath, NULL, &err);
    }
    if (rc == EMPQ_OK)
        rc = empq_export_responses(c->store, t->id, path, &st, &err);
    if (rc != EMPQ_OK) {
        EMPQ_ERROR_LIMITED("export_failed", "event=export_failed run=%s error=%s", t->id,
                           empq_log_quote(q, sizeof q, err.msg));
        return rc;
    }
    t->exported = 1;
    t->results_at_export = results;
    t->dirty = 0;
    c->exported++;
    if (exported != NULL)
        (*exported)++;
    EMPQ_INFO("event=run_exported run=%s jobs=%" PRIu64 " lines=%zu dead=%zu missing=%zu "
              "cache_hits=%zu path=%s ms=%" PRIu64,
              t->id, t->total, st.lines, st.dead, st.missing, st.cache_hits,
              empq_log_quote(q, sizeof q, path), empq_mono_ms() - t0);
    return EMPQ_OK;
}

/* Adds runs not seen yet and checks every run not exported. */
static int rescan(collector *c, size_t *exported)
{
    char **ids = NULL;
    size_t n = 0;
    int rc = empq_store_run_list(c->store, &ids, &n);
    if (rc != EMPQ_OK)
        return rc;
    for (size_t i = 0; i < n && rc == EMPQ_OK; i++) {
        if (find_run(c, ids[i]) != NULL)
            continue;
        track *t;
        rc = add_run(c, ids[i], &t);
    }
    empq_store_free_strings(ids, n);
    for (size_t i = 0; i < c->n_runs && rc == EMPQ_OK; i++)
        rc = check_run(c, &c->runs[i], exported);
    return rc;
}

/* ==================== the loop ==================== */

static int step(collector *c, size_t *exported)
{
    int rc;
    uint64_t now = empq_mono_ms();
    if (now >= c->next_rescan_ms) {
        rc = rescan(c, exported);
        if (rc != EMPQ_OK)
            return rc;
        c->next_rescan_ms = now + (uint64_t)(c->o.rescan_ms > 0 ? c->o.rescan_ms : 1000);
    }
    if (c->o.trim_ms > 0 && now >= c->next_trim_ms) {
        /* The stream would grow forever: drop what every group has acked
         * (acks of earlier turns; this turn's batch goes next time). */
        uint64_t removed = 0;
        rc = empq_store_stream_trim(c->store, &removed);
        if (rc != EMPQ_OK)
            return rc;
        c->trimmed += removed;
        c->next_trim_ms = now + (uint64_t)c->o.trim_ms;
    }

    size_t n = 0;
    rc = empq_store_stream_read(c->store, GROUP, c->name, c->batch, c->o.batch, c->o.block_ms, &n);
    if (rc != EMPQ_OK || n == 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const char *id = c->batch[i].run_id;
        if (id[0] == '\0')
            continue; /* an entry deleted from the stream */
        track *t = find_run(c, id);
        if (t == NULL) {
            rc = add_run(c, id, &t);
            if (rc != EMPQ_OK)
                return rc;
        }
        t->dirty = 1;
    }
    for (size_t i = 0; i < c->n_runs; i++) {
        if (!c->runs[i].dirty)
            continue;
        rc = check_run(c, &c->runs[i], exported);
        if (rc != EMPQ_OK)
            return rc;
        c->runs[i].dirty = 0;
    }
    return empq_store_stream_ack(c->store, GROUP, c->batch, n);
}

int collector__step(collector *c, size_t *exported)
{
    if (exported != NULL)
        *exported = 0;
    int rc = step(c, exported);
    if (rc == EMPQ_ESTORE) {
        if (!c->store_down) {
            char q[600];
            EMPQ_WARN("event=store_down error=%s",
                      empq_log_quote(q, sizeof q, empq_store_errstr(c->store)));
        }
        c->store_down = 1;
    } else if (rc == EMPQ_OK && c->store_down) {
        EMPQ_INFO("event=store_up url=%s", empq_store_url(c->store));
        c->store_down = 0;
    }
    return rc;
}
