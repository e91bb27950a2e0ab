/* batchrec.c: durable records of provider batches in Redis (batchrec.h). */
#include "empq/batchrec.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/util.h"

static const char *const STATE_NAMES[] = {"prepared", "uploaded", "submitted", "ended", "done"};
#define N_STATES (sizeof STATE_NAMES / sizeof STATE_NAMES[0])

const char *empq_batchrec_state_name(empq_batchrec_state s)
{
    return (size_t)s < N_STATES ? STATE_NAMES[s] : "unknown";
}

void empq_batchrec_clear(empq_batchrec *r)
{
    if (r == NULL)
        return;
    free(r->jobs);
    free(r->attempts);
    memset(r, 0, sizeof *r);
}

/* ==================== Redis calls ==================== */

/* Runs argv (argc strings) and returns the reply, or NULL with err set
 * (EMPQ_ESTORE) when Redis failed or answered an error. */
static redisReply *run_cmd(empq_store *s, int argc, const char **argv, empq_error *err)
{
    redisContext *c = empq_store_redis(s);
    if (c == NULL) {
        empq_error_set(err, EMPQ_ESTORE, "batch records: no Redis connection");
        return NULL;
    }
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL) {
        empq_error_set(err, EMPQ_ESTORE, "batch records: Redis: %s", c->errstr[0] != '\0' ? c->errstr : "no reply");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        empq_error_set(err, EMPQ_ESTORE, "batch records: Redis: %.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Runs a script answering an integer into *v (-2 for anything else). */
static int eval_int(empq_store *s, int argc, const char **argv, long long *v, empq_error *err)
{
    redisReply *r = run_cmd(s, argc, argv, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    *v = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
    freeReplyObject(r);
    return EMPQ_OK;
}

/* The Redis keys of one record. */
typedef struct rec_keys {
    char rec[EMPQ_BATCHREC_KEY_MAX + 16];
    char owner[EMPQ_BATCHREC_KEY_MAX + 24];
    char batched[EMPQ_BATCHREC_KEY_MAX + 24];
} rec_keys;

static void keys_of(const char *key, const char *run, rec_keys *k)
{
    snprintf(k->rec, sizeof k->rec, "empq:batch:%s", key);
    snprintf(k->owner, sizeof k->owner, "empq:batch:%s:owner", key);
    snprintf(k->batched, sizeof k->batched, "empq:run:%s:batched", run != NULL ? run : "");
}

#define OPEN_SET "empq:batches:open"

/* KEYS: record, batched, open, owner. ARGV: run, model, owner, ttl, key,
 * then job, attempt pairs. Returns the jobs taken as "job:attempt,...". */
static const char PREPARE_LUA[] =
    "local taken = {}\n"
    "for i = 6, #ARGV, 2 do\n"
    "  if redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[5]) == 1 then\n"
    "    taken[#taken + 1] = ARGV[i] .. ':' .. ARGV[i + 1]\n"
    "  end\n"
    "end\n"
    "if #taken == 0 then return '' end\n"
    "local jobs = table.concat(taken, ',')\n"
    "redis.call('HSET', KEYS[1], 'run', ARGV[1], 'model', ARGV[2], 'state', 'prepared', 'jobs', jobs,\n"
    "           'n', #taken)\n"
    "redis.call('SADD', KEYS[3], ARGV[5])\n"
    "redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])\n"
    "return jobs\n";

/* KEYS: record. ARGV: from, to, field ('' for none), value. */
static const char ADVANCE_LUA[] =
    "local cur = redis.call('HGET', KEYS[1], 'state')\n"
    "if not cur then return -1 end\n"
    "if cur ~= ARGV[1] then return 0 end\n"
    "if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end\n"
    "redis.call('HSET', KEYS[1], 'state', ARGV[2])\n"
    "return 1\n";

/* KEYS: owner. ARGV: owner, ttl. */
static const char CLAIM_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if (not cur) or cur == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* KEYS: record, open, owner, batched. ARGV: key. */
static const char FINISH_LUA[] =
    "local jobs = redis.call('HGET', KEYS[1], 'jobs')\n"
    "if not jobs then return -1 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'done')\n"
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "redis.call('DEL', KEYS[3])\n"
    "for j in string.gmatch(jobs, '(%d+):%d+') do\n"
    "  if redis.call('HGET', KEYS[4], j) == ARGV[1] then redis.call('HDEL', KEYS[4], j) end\n"
    "end\n"
    "return 1\n";

/* ==================== jobs text ==================== */

/* Reads "job:attempt,job:attempt" into out->jobs/attempts. */
static int parse_jobs(const char *s, empq_batchrec *out)
{
    size_t cap = 1;
    for (const char *p = s; *p != '\0'; p++)
        cap += *p == ',';
    out->jobs = calloc(cap, sizeof *out->jobs);
    out->attempts = calloc(cap, sizeof *out->attempts);
    if (out->jobs == NULL || out->attempts == NULL)
        return EMPQ_ENOMEM;
    out->n = 0;
    const char *p = s;
    while (*p != '\0') {
        char *end = NULL;
        unsigned long j = strtoul(p, &end, 10);
        if (end == p || *end != ':')
            return EMPQ_EPARSE;
        p = end + 1;
        unsigned long a = strtoul(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || j > UINT32_MAX || a > UINT32_MAX || out->n >= cap)
            return EMPQ_EPARSE;
        out->jobs[out->n] = (uint32_t)j;
        out->attempts[out->n] = (uint32_t)a;
        out->n++;
        p = *end == ',' ? end + 1 : end;
    }
    return EMPQ_OK;
}

/* ==================== operations ==================== */

int empq_batchrec_prepare(empq_store *s, const char *run, uint32_t model, const uint32_t *jobs,
                          const uint32_t *attempts, size_t n, const char *owner, uint32_t owner_ms,
                          empq_batchrec *out, empq_error *err)
{
    if (s == NULL || run == NULL || jobs == NULL || attempts == NULL || n == 0 || owner == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: prepare needs a run, jobs and an owner");
    memset(out, 0, sizeof *out);
    const char *incr[] = {"INCR", "empq:batch:seq"};
    redisReply *r = run_cmd(s, 2, incr, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    long long seq = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    snprintf(out->key, sizeof out->key, "%s:%" PRIu32 ":%lld", run, model, seq);
    snprintf(out->run, sizeof out->run, "%s", run);
    out->model = model;
    rec_keys k;
    keys_of(out->key, run, &k);

    size_t argc = 3 + 4 + 5 + 2 * n;
    const char **argv = calloc(argc, sizeof *argv);
    char *nums = calloc(2 * n + 2, 12);
    if (argv == NULL || nums == NULL) {
        free(argv);
        free(nums);
        return empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
    }
    char *model_s = nums, *ttl_s = nums + 12;
    snprintf(model_s, 12, "%" PRIu32, model);
    snprintf(ttl_s, 12, "%" PRIu32, owner_ms > 0 ? owner_ms : 1);
    size_t a = 0;
    argv[a++] = "EVAL";
    argv[a++] = PREPARE_LUA;
    argv[a++] = "4";
    argv[a++] = k.rec;
    argv[a++] = k.batched;
    argv[a++] = OPEN_SET;
    argv[a++] = k.owner;
    argv[a++] = run;
    argv[a++] = model_s;
    argv[a++] = owner;
    argv[a++] = ttl_s;
    argv[a++] = out->key;
    for (size_t i = 0; i < n; i++) {
        char *js = nums + 12 * (2 + 2 * i), *as = js + 12;
        snprintf(js, 12, "%" PRIu32, jobs[i]);
        snprintf(as, 12, "%" PRIu32, attempts[i]);
        argv[a++] = js;
        argv[a++] = as;
    }
    r = run_cmd(s, (int)argc, argv, err);
    free(argv);
    free(nums);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = EMPQ_OK;
    if (r->type != REDIS_REPLY_STRING)
        rc = empq_error_set(err, EMPQ_ESTORE, "batch records: unexpected reply to prepare");
    else if (r->len > 0 && parse_jobs(r->str, out) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
    freeReplyObject(r);
    if (rc != EMPQ_OK)
        empq_batchrec_clear(out);
    return rc;
}

int empq_batchrec_advance(empq_store *s, const char *key, empq_batchrec_state to, const char *field,
                          const char *value, empq_error *err)
{
    int same = field != NULL && strcmp(field, "created_ms") == 0;
    if (s == NULL || key == NULL || (size_t)to >= N_STATES || (!same && to == EMPQ_BATCHREC_PREPARED) ||
        (same && to > EMPQ_BATCHREC_UPLOADED))
        return empq_error_set(err, EMPQ_EINVAL, "batch records: no such move to %s",
                              empq_batchrec_state_name(to));
    empq_batchrec_state from = same ? to : (empq_batchrec_state)(to - 1);
    rec_keys k;
    keys_of(key, NULL, &k);
    const char *argv[] = {"EVAL", ADVANCE_LUA, "1", k.rec, STATE_NAMES[from], STATE_NAMES[to],
                          field != NULL ? field : "", value != NULL ? value : ""};
    long long v = -2;
    if (eval_int(s, 8, argv, &v, err) != EMPQ_OK)
        return EMPQ_ESTORE;
    if (v == -1)
        return empq_error_set(err, EMPQ_ENOTFOUND, "batch %s: no record", key);
    if (v == 0)
        return empq_error_set(err, EMPQ_ESTATE, "batch %s: not %s, cannot move to %s", key, STATE_NAMES[from],
                              STATE_NAMES[to]);
    return v == 1 ? EMPQ_OK : empq_error_set(err, EMPQ_ESTORE, "batch records: unexpected reply to advance");
}

int empq_batchrec_claim(empq_store *s, const char *key, const char *owner, uint32_t ttl_ms, empq_error *err)
{
    if (s == NULL || key == NULL || owner == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: claim needs a key and an owner");
    rec_keys k;
    keys_of(key, NULL, &k);
    char ttl[12];
    snprintf(ttl, sizeof ttl, "%" PRIu32, ttl_ms > 0 ? ttl_ms : 1);
    const char *argv[] = {"EVAL", CLAIM_LUA, "1", k.owner, owner, ttl};
    long long v = -2;
    if (eval_int(s, 6, argv, &v, err) != EMPQ_OK)
        return EMPQ_ESTORE;
    return v == 1;
}

int empq_batchrec_owner(empq_store *s, const char *key, char *owner, size_t len, empq_error *err)
{
    if (s == NULL || key == NULL || owner == NULL || len == 0)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: owner needs a key and a buffer");
    owner[0] = '\0';
    rec_keys k;
    keys_of(key, NULL, &k);
    const char *argv[] = {"GET", k.owner};
    redisReply *r = run_cmd(s, 2, argv, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    if (r->type == REDIS_REPLY_STRING)
        snprintf(owner, len, "%s", r->str);
    freeReplyObject(r);
    return EMPQ_OK;
}

int empq_batchrec_note(empq_store *s, const char *key, const char *status, uint32_t total, uint32_t succeeded,
                       uint32_t failed, uint64_t expires_ms, empq_error *err)
{
    if (s == NULL || key == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: note needs a key");
    rec_keys k;
    keys_of(key, NULL, &k);
    char t[12], ok[12], bad[12], ex[24];
    snprintf(t, sizeof t, "%" PRIu32, total);
    snprintf(ok, sizeof ok, "%" PRIu32, succeeded);
    snprintf(bad, sizeof bad, "%" PRIu32, failed);
    snprintf(ex, sizeof ex, "%" PRIu64, expires_ms);
    const char *argv[] = {"HSET", k.rec, "provider_status", status != NULL ? status : "", "total", t,
                          "succeeded", ok, "failed", bad, "expires_ms", ex};
    redisReply *r = run_cmd(s, 12, argv, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    freeReplyObject(r);
    return EMPQ_OK;
}

/* The value of field f in an HGETALL reply, or NULL. */
static const char *field_of(const redisReply *r, const char *f)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, f) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            return r->element[i + 1]->str;
    return NULL;
}

int empq_batchrec_load(empq_store *s, const char *key, empq_batchrec *out, empq_error *err)
{
    if (s == NULL || key == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: load needs a key");
    empq_batchrec_clear(out);
    rec_keys k;
    keys_of(key, NULL, &k);
    const char *argv[] = {"HGETALL", k.rec};
    redisReply *r = run_cmd(s, 2, argv, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = EMPQ_OK;
    const char *run = NULL, *model = NULL, *state = NULL, *jobs = NULL;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        rc = empq_error_set(err, EMPQ_ENOTFOUND, "batch %s: no record", key);
    } else {
        run = field_of(r, "run");
        model = field_of(r, "model");
        state = field_of(r, "state");
        jobs = field_of(r, "jobs");
        if (run == NULL || model == NULL || state == NULL || jobs == NULL)
            rc = empq_error_set(err, EMPQ_EPARSE, "batch %s: record without run, model, state or jobs", key);
    }
    if (rc == EMPQ_OK) {
        snprintf(out->key, sizeof out->key, "%s", key);
        snprintf(out->run, sizeof out->run, "%s", run);
        out->model = (uint32_t)strtoul(model, NULL, 10);
        size_t i = 0;
        while (i < N_STATES && strcmp(STATE_NAMES[i], state) != 0)
            i++;
        if (i == N_STATES)
            rc = empq_error_set(err, EMPQ_EPARSE, "batch %s: unknown state '%.20s'", key, state);
        out->state = (empq_batchrec_state)i;
        const char *fid = field_of(r, "file_id"), *bid = field_of(r, "batch_id"), *cms = field_of(r, "created_ms");
        snprintf(out->file_id, sizeof out->file_id, "%s", fid != NULL ? fid : "");
        snprintf(out->batch_id, sizeof out->batch_id, "%s", bid != NULL ? bid : "");
        out->created_ms = cms != NULL ? strtoull(cms, NULL, 10) : 0;
        const char *ps = field_of(r, "provider_status"), *t = field_of(r, "total"), *ok = field_of(r, "succeeded"),
                   *bad = field_of(r, "failed"), *ex = field_of(r, "expires_ms");
        snprintf(out->provider_status, sizeof out->provider_status, "%s", ps != NULL ? ps : "");
        out->total = t != NULL ? (uint32_t)strtoul(t, NULL, 10) : 0;
        out->succeeded = ok != NULL ? (uint32_t)strtoul(ok, NULL, 10) : 0;
        out->failed = bad != NULL ? (uint32_t)strtoul(bad, NULL, 10) : 0;
        out->expires_ms = ex != NULL ? strtoull(ex, NULL, 10) : 0;
        if (rc == EMPQ_OK && parse_jobs(jobs, out) != EMPQ_OK)
            rc = empq_error_set(err, EMPQ_EPARSE, "batch %s: jobs do not read", key);
    }
    freeReplyObject(r);
    if (rc != EMPQ_OK)
        empq_batchrec_clear(out);
    return rc;
}

int empq_batchrec_finish(empq_store *s, const char *key, empq_error *err)
{
    empq_batchrec rec = {0};
    int rc = empq_batchrec_load(s, key, &rec, err);
    if (rc != EMPQ_OK)
        return rc;
    rec_keys k;
    keys_of(key, rec.run, &k);
    empq_batchrec_clear(&rec);
    const char *argv[] = {"EVAL", FINISH_LUA, "4", k.rec, OPEN_SET, k.owner, k.batched, key};
    long long v = -2;
    if (eval_int(s, 8, argv, &v, err) != EMPQ_OK)
        return EMPQ_ESTORE;
    if (v == -1)
        return empq_error_set(err, EMPQ_ENOTFOUND, "batch %s: no record", key);
    return v == 1 ? EMPQ_OK : empq_error_set(err, EMPQ_ESTORE, "batch records: unexpected reply to finish");
}

/* The strings of an array reply, copied. */
static int copy_strings(const redisReply *r, char ***out, size_t *n, empq_error *err)
{
    *out = NULL;
    *n = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return empq_error_set(err, EMPQ_ESTORE, "batch records: unexpected reply");
    char **v = calloc(r->elements + 1, sizeof *v);
    if (v == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        v[k] = empq_strdup(r->element[i]->str);
        if (v[k] == NULL) {
            empq_store_free_strings(v, k);
            return empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
        }
        k++;
    }
    *out = v;
    *n = k;
    return EMPQ_OK;
}

int empq_batchrec_open_keys(empq_store *s, char ***keys, size_t *n, empq_error *err)
{
    if (s == NULL || keys == NULL || n == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: open_keys needs an output");
    const char *argv[] = {"SMEMBERS", OPEN_SET};
    redisReply *r = run_cmd(s, 2, argv, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = copy_strings(r, keys, n, err);
    freeReplyObject(r);
    return rc;
}

int empq_batchrec_run_jobs(empq_store *s, const char *run, uint32_t **jobs, size_t *n, empq_error *err)
{
    if (s == NULL || run == NULL || jobs == NULL || n == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "batch records: run_jobs needs a run and an output");
    *jobs = NULL;
    *n = 0;
    rec_keys k;
    keys_of("", run, &k);
    const char *argv[] = {"HKEYS", k.batched};
    redisReply *r = run_cmd(s, 2, argv, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return empq_error_set(err, EMPQ_ESTORE, "batch records: unexpected reply to HKEYS %s", k.batched);
    }
    uint32_t *v = calloc(r->elements + 1, sizeof *v);
    if (v == NULL) {
        freeReplyObject(r);
        return empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        char *end = NULL;
        unsigned long long job = strtoull(r->element[i]->str, &end, 10);
        if (end != r->element[i]->str && *end == '\0' && job < UINT32_MAX)
            v[m++] = (uint32_t)job;
    }
    freeReplyObject(r);
    *jobs = v;
    *n = m;
    return EMPQ_OK;
}

int empq_batchrec_taken_ids(empq_store *s, const char *except, char ***ids, size_t *n, empq_error *err)
{
    char **keys = NULL;
    size_t nk = 0;
    int rc = empq_batchrec_open_keys(s, &keys, &nk, err);
    if (rc != EMPQ_OK)
        return rc;
    char **v = calloc(nk + 1, sizeof *v);
    size_t k = 0;
    if (v == NULL)
        rc = empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
    for (size_t i = 0; rc == EMPQ_OK && i < nk; i++) {
        if (except != NULL && strcmp(keys[i], except) == 0)
            continue;
        rec_keys rk;
        keys_of(keys[i], NULL, &rk);
        const char *argv[] = {"HGET", rk.rec, "batch_id"};
        redisReply *r = run_cmd(s, 3, argv, err);
        if (r == NULL) {
            rc = EMPQ_ESTORE;
            break;
        }
        if (r->type == REDIS_REPLY_STRING && r->len > 0) {
            v[k] = empq_strdup(r->str);
            if (v[k] == NULL)
                rc = empq_error_set(err, EMPQ_ENOMEM, "batch records: out of memory");
            else
                k++;
        }
        freeReplyObject(r);
    }
    empq_store_free_strings(keys, nk);
    if (rc != EMPQ_OK) {
        empq_store_free_strings(v, k);
        return rc;
    }
    *ids = v;
    *n = k;
    return EMPQ_OK;
}
