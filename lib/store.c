/* store.c: every durable fact of empq, in Redis (hiredis 0.14). */
#include "empq/store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "empq/log.h"
#include "empq/util.h"

/* Records a chunk of results and, for each one that is new, its stream
 * entry: one call for the chunk, not one a result (a script call costs
 * Redis more than the HSETNX and XADD in it). KEYS[1] the stream; result k
 * (1-based): KEYS[k + 1] its run's results hash, ARGV[3k - 2] job,
 * ARGV[3k - 1] value, ARGV[3k] run. Returns per result 1 (new) or 0 (the
 * job had a result: nothing written). */
static const char result_script[] =
    "local out = {} "
    "for k = 1, #KEYS - 1 do "
    "local job = ARGV[3 * k - 2] "
    "if redis.call('HSETNX', KEYS[k + 1], job, ARGV[3 * k - 1]) == 1 then "
    "redis.call('XADD', KEYS[1], '*', 'run', ARGV[3 * k], 'job', job) out[k] = 1 "
    "else out[k] = 0 end end return out";

#define STREAM_KEY "empq:results"
#define BATCH_MAX 1024 /* results per chunk (one script call, one MSET) */

struct empq_store {
    redisContext *c;
    char host[256];
    int port;
    int db;
    char user[128];
    char password[256];
    char url_masked[512];
    int timeout_ms;
    char script_sha[48];
    int script_ok; /* the script is loaded in the server this connection reaches */
    char err[EMPQ_ERROR_MSG_MAX];
};

/* ==================== connection ==================== */

static int store_fail(empq_store *s, const char *what)
{
    const char *why = s->c != NULL && s->c->err ? s->c->errstr : "connection lost";
    snprintf(s->err, sizeof s->err, "Redis %s: %s: %s", s->url_masked, what, why);
    if (s->c != NULL && s->c->err) {
        redisFree(s->c);
        s->c = NULL;
    }
    return EMPQ_ESTORE;
}

/* url with its user:password@ part replaced by ***@, for errors. */
static const char *mask_url(char *buf, size_t len, const char *url)
{
    const char *host = strstr(url, "://");
    host = host != NULL ? host + 3 : url;
    const char *at = strrchr(host, '@');
    if (at == NULL)
        snprintf(buf, len, "%s", url);
    else
        snprintf(buf, len, "%.*s***@%s", (int)(host - url), url, at + 1);
    return buf;
}

static int parse_url(empq_store *s, const char *url, empq_error *err)
{
    char m[512];
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    s->port = 6379;
    s->db = 0;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            snprintf(s->user, sizeof s->user, "%.*s", (int)(colon - p), p);
            snprintf(s->password, sizeof s->password, "%.*s", (int)(at - colon - 1), colon + 1);
        } else {
            snprintf(s->password, sizeof s->password, "%.*s", (int)(at - p), p);
        }
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    const char *colon = strchr(p, ':');
    size_t hostlen = colon != NULL ? (size_t)(colon - p) : slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (hostlen == 0 || hostlen >= sizeof s->host)
        return empq_error_set(err, EMPQ_EINVAL, "bad Redis URL '%s': no host", mask_url(m, sizeof m, url));
    snprintf(s->host, sizeof s->host, "%.*s", (int)hostlen, p);
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || port <= 0 || port > 65535 || (*end != '\0' && *end != '/'))
            return empq_error_set(err, EMPQ_EINVAL, "bad Redis URL '%s': bad port",
                                  mask_url(m, sizeof m, url));
        s->port = (int)port;
    }
    if (slash != NULL && slash[1] != '\0') {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || db < 0)
            return empq_error_set(err, EMPQ_EINVAL, "bad Redis URL '%s': bad database",
                                  mask_url(m, sizeof m, url));
        s->db = (int)db;
    }
    if (s->password[0] == '\0') {
        const char *env = getenv("EMPQ_REDIS_PASSWORD");
        if (env != NULL)
            snprintf(s->password, sizeof s->password, "%s", env);
    }
    snprintf(s->url_masked, sizeof s->url_masked, "redis://%s%s:%d/%d",
             s->password[0] ? "***@" : "", s->host, s->port, s->db);
    return EMPQ_OK;
}

static int load_script(empq_store *s)
{
    redisReply *r = redisCommand(s->c, "SCRIPT LOAD %s", result_script);
    if (r == NULL)
        return store_fail(s, "SCRIPT LOAD");
    int ok = r->type == REDIS_REPLY_STRING;
    s->script_ok = ok;
    if (ok)
        snprintf(s->script_sha, sizeof s->script_sha, "%s", r->str);
    else
        snprintf(s->err, sizeof s->err, "Redis %s: SCRIPT LOAD: %s", s->url_masked,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok ? EMPQ_OK : EMPQ_ESTORE;
}

/* Connects (or reconnects) when there is no healthy connection. */
static int ensure(empq_store *s)
{
    /* A server that restarted has lost its scripts (NOSCRIPT), and one still
     * loading its append-only file refuses SCRIPT LOAD: load it again. */
    if (s->c != NULL && s->c->err == 0)
        return s->script_ok ? EMPQ_OK : load_script(s);
    if (s->c != NULL) {
        redisFree(s->c);
        s->c = NULL;
    }
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    s->c = redisConnectWithTimeout(s->host, s->port, tv);
    if (s->c == NULL) {
        snprintf(s->err, sizeof s->err, "Redis %s: out of memory", s->url_masked);
        return EMPQ_ENOMEM;
    }
    if (s->c->err)
        return store_fail(s, "cannot connect");
    struct timeval io = {30, 0};
    redisSetTimeout(s->c, io);
    if (s->password[0] != '\0') {
        redisReply *r = s->user[0] ? redisCommand(s->c, "AUTH %s %s", s->user, s->password)
                                   : redisCommand(s->c, "AUTH %s", s->password);
        if (r == NULL)
            return store_fail(s, "AUTH");
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad)
            snprintf(s->err, sizeof s->err, "Redis %s: authentication failed: %s", s->url_masked, r->str);
        freeReplyObject(r);
        if (bad) {
            redisFree(s->c);
            s->c = NULL;
            return EMPQ_ESTORE;
        }
    }
    if (s->db != 0) {
        redisReply *r = redisCommand(s->c, "SELECT %d", s->db);
        if (r == NULL)
            return store_fail(s, "SELECT");
        freeReplyObject(r);
    }
    return load_script(s);
}

int empq_store_open(empq_store **out, const char *url, int timeout_ms, empq_error *err)
{
    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return empq_error_set(err, EMPQ_EINVAL, "no Redis URL given");
    empq_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    s->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    int rc = parse_url(s, url, err);
    if (rc != EMPQ_OK) {
        free(s);
        return rc;
    }
    rc = ensure(s);
    if (rc != EMPQ_OK) {
        empq_error_set(err, rc, "%s", s->err);
        empq_store_close(&s);
        return rc;
    }
    *out = s;
    return EMPQ_OK;
}

void empq_store_close(empq_store **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    if ((*sp)->c != NULL)
        redisFree((*sp)->c);
    free(*sp);
    *sp = NULL;
}

const char *empq_store_errstr(const empq_store *s) { return s != NULL ? s->err : "no store"; }
const char *empq_store_url(const empq_store *s) { return s != NULL ? s->url_masked : ""; }
void *empq_store_redis(empq_store *s) { return ensure(s) == EMPQ_OK ? s->c : NULL; }

/* Runs one command (argv form); on a broken connection reconnects and tries
 * once more. On EMPQ_OK *reply is the caller's (freeReplyObject). A Redis
 * error reply is returned as EMPQ_ESTORE with the text in s->err. */
static int command(empq_store *s, redisReply **reply, int argc, const char **argv, const size_t *lens)
{
    *reply = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = ensure(s);
        if (rc != EMPQ_OK)
            continue;
        redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
        if (r == NULL) {
            store_fail(s, argv[0]);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(s->err, sizeof s->err, "Redis %s: %s: %s", s->url_masked, argv[0], r->str);
            freeReplyObject(r);
            return EMPQ_ESTORE;
        }
        *reply = r;
        return EMPQ_OK;
    }
    return EMPQ_ESTORE;
}

/* A pipeline: commands appended, replies read in order. */
typedef struct pipe {
    empq_store *s;
    size_t queued;
    int broken;
} pipe_t;

static void pipe_append(pipe_t *p, int argc, const char **argv, const size_t *lens)
{
    if (p->broken)
        return;
    if (redisAppendCommandArgv(p->s->c, argc, argv, lens) != REDIS_OK) {
        p->broken = 1;
        return;
    }
    p->queued++;
}

/* Reads the next reply; NULL when the connection broke (s->err set). */
static redisReply *pipe_reply(pipe_t *p)
{
    if (p->broken || p->queued == 0)
        return NULL;
    void *r = NULL;
    if (redisGetReply(p->s->c, &r) != REDIS_OK) {
        p->broken = 1;
        store_fail(p->s, "pipeline");
        return NULL;
    }
    p->queued--;
    return r;
}

int empq_store_ping(empq_store *s)
{
    const char *argv[] = {"PING"};
    redisReply *r;
    int rc = command(s, &r, 1, argv, NULL);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

/* ==================== protobuf values ==================== */

static int pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *buf = malloc(*len ? *len : 1);
    if (*buf == NULL)
        return EMPQ_ENOMEM;
    protobuf_c_message_pack(m, *buf);
    return EMPQ_OK;
}

static void key_of(char *buf, size_t len, const char *run_id, const char *suffix)
{
    snprintf(buf, len, "empq:run:%s%s", run_id, suffix);
}

/* ==================== runs ==================== */

int empq_store_run_create(empq_store *s, const Empq__Run *run, Empq__Prompt *const *prompts, size_t n)
{
    char runkey[256], pkey[256];
    key_of(runkey, sizeof runkey, run->id, "");
    key_of(pkey, sizeof pkey, run->id, ":prompts");
    const char *ex[] = {"EXISTS", runkey};
    redisReply *r;
    int rc = command(s, &r, 2, ex, NULL);
    if (rc != EMPQ_OK)
        return rc;
    int exists = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    if (exists) {
        snprintf(s->err, sizeof s->err, "run %s already exists", run->id);
        return EMPQ_EEXIST;
    }
    /* Prompts in chunks of HSET with many fields: one round trip per chunk. */
    const size_t chunk = 512;
    for (size_t at = 0; at < n; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk;
        size_t argc = 2 + 2 * m;
        const char **argv = calloc(argc, sizeof *argv);
        size_t *lens = calloc(argc, sizeof *lens);
        char (*idx)[16] = calloc(m, sizeof *idx);
        uint8_t **bufs = calloc(m, sizeof *bufs);
        if (argv == NULL || lens == NULL || idx == NULL || bufs == NULL) {
            free(argv), free(lens), free(idx), free(bufs);
            return EMPQ_ENOMEM;
        }
        argv[0] = "HSET", lens[0] = 4;
        argv[1] = pkey, lens[1] = strlen(pkey);
        rc = EMPQ_OK;
        for (size_t i = 0; i < m && rc == EMPQ_OK; i++) {
            snprintf(idx[i], sizeof idx[i], "%u", prompts[at + i]->index);
            argv[2 + 2 * i] = idx[i], lens[2 + 2 * i] = strlen(idx[i]);
            rc = pack(&prompts[at + i]->base, &bufs[i], &lens[3 + 2 * i]);
            argv[3 + 2 * i] = (const char *)bufs[i];
        }
        if (rc == EMPQ_OK)
            rc = command(s, &r, (int)argc, argv, lens);
        if (rc == EMPQ_OK)
            freeReplyObject(r);
        for (size_t i = 0; i < m; i++)
            free(bufs[i]);
        free(argv), free(lens), free(idx), free(bufs);
        if (rc != EMPQ_OK)
            return rc;
    }
    uint8_t *buf;
    size_t len;
    if (pack(&run->base, &buf, &len) != EMPQ_OK)
        return EMPQ_ENOMEM;
    const char *set[] = {"SET", runkey, (const char *)buf};
    size_t setl[] = {3, strlen(runkey), len};
    rc = command(s, &r, 3, set, setl);
    free(buf);
    if (rc != EMPQ_OK)
        return rc;
    freeReplyObject(r);
    const char *add[] = {"SADD", "empq:runs", run->id};
    rc = command(s, &r, 3, add, NULL);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

int empq_store_run_delete(empq_store *s, const char *run_id)
{
    static const char *const suffixes[] = {"", ":prompts", ":results", ":dead", ":attempts"};
    enum { N_KEYS = sizeof suffixes / sizeof suffixes[0] };
    /* The reverse of empq_store_run_create: out of the list first, so no
     * reader finds an id without its run. */
    const char *rem[] = {"SREM", "empq:runs", run_id};
    redisReply *r;
    int rc = command(s, &r, 3, rem, NULL);
    if (rc != EMPQ_OK)
        return rc;
    freeReplyObject(r);
    char keys[N_KEYS][256];
    const char *del[1 + N_KEYS] = {"DEL"};
    for (size_t i = 0; i < N_KEYS; i++) {
        key_of(keys[i], sizeof keys[i], run_id, suffixes[i]);
        del[1 + i] = keys[i];
    }
    rc = command(s, &r, 1 + N_KEYS, del, NULL);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

int empq_store_run_get(empq_store *s, const char *run_id, Empq__Run **out)
{
    *out = NULL;
    char key[256];
    key_of(key, sizeof key, run_id, "");
    const char *argv[] = {"GET", key};
    redisReply *r;
    int rc = command(s, &r, 2, argv, NULL);
    if (rc != EMPQ_OK)
        return rc;
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        snprintf(s->err, sizeof s->err, "no run %s in Redis %s", run_id, s->url_masked);
        return EMPQ_ENOTFOUND;
    }
    *out = empq__run__unpack(NULL, r->len, (const uint8_t *)r->str);
    freeReplyObject(r);
    if (*out == NULL) {
        snprintf(s->err, sizeof s->err, "run %s: stored value does not decode", run_id);
        return EMPQ_EPARSE;
    }
    return EMPQ_OK;
}

int empq_store_run_set_state(empq_store *s, const char *run_id, Empq__RunState state)
{
    Empq__Run *run;
    int rc = empq_store_run_get(s, run_id, &run);
    if (rc != EMPQ_OK)
        return rc;
    run->has_state = 1;
    run->state = state;
    uint8_t *buf;
    size_t len;
    rc = pack(&run->base, &buf, &len);
    empq__run__free_unpacked(run, NULL);
    if (rc != EMPQ_OK)
        return rc;
    char key[256];
    key_of(key, sizeof key, run_id, "");
    const char *argv[] = {"SET", key, (const char *)buf};
    size_t lens[] = {3, strlen(key), len};
    redisReply *r;
    rc = command(s, &r, 3, argv, lens);
    free(buf);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

void empq_store_free_strings(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int empq_store_run_list(empq_store *s, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    const char *argv[] = {"SMEMBERS", "empq:runs"};
    redisReply *r;
    int rc = command(s, &r, 2, argv, NULL);
    if (rc != EMPQ_OK)
        return rc;
    char **v = calloc(r->elements + 1, sizeof *v);
    if (v == NULL) {
        freeReplyObject(r);
        return EMPQ_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        v[k] = empq_strdup(r->element[i]->str);
        if (v[k] == NULL) {
            empq_store_free_strings(v, k);
            freeReplyObject(r);
            return EMPQ_ENOMEM;
        }
        k++;
    }
    freeReplyObject(r);
    *ids = v;
    *n = k;
    return EMPQ_OK;
}

/* HMGET / MGET of many fields, in chunks; calls take(i, reply element). */
static int multi_get(empq_store *s, const char *cmd, const char *key, const char *const *fields, size_t n,
                     void (*take)(size_t i, const redisReply *e, void *arg), void *arg)
{
    const size_t chunk = 4096;
    size_t head = key != NULL ? 2 : 1;
    for (size_t at = 0; at < n; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk;
        const char **argv = calloc(head + m, sizeof *argv);
        if (argv == NULL)
            return EMPQ_ENOMEM;
        argv[0] = cmd;
        if (key != NULL)
            argv[1] = key;
        for (size_t i = 0; i < m; i++)
            argv[head + i] = fields[at + i];
        redisReply *r;
        int rc = command(s, &r, (int)(head + m), argv, NULL);
        free(argv);
        if (rc != EMPQ_OK)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != m) {
            freeReplyObject(r);
            snprintf(s->err, sizeof s->err, "Redis %s: %s: unexpected reply", s->url_masked, cmd);
            return EMPQ_ESTORE;
        }
        for (size_t i = 0; i < m; i++)
            take(at + i, r->element[i], arg);
        freeReplyObject(r);
    }
    return EMPQ_OK;
}

static void take_prompt(size_t i, const redisReply *e, void *arg)
{
    Empq__Prompt **out = arg;
    out[i] = e->type == REDIS_REPLY_STRING ? empq__prompt__unpack(NULL, e->len, (const uint8_t *)e->str)
                                           : NULL;
}

int empq_store_prompts_get(empq_store *s, const char *run_id, const uint32_t *idx, size_t n,
                           Empq__Prompt **out)
{
    char key[256];
    key_of(key, sizeof key, run_id, ":prompts");
    char (*names)[12] = calloc(n ? n : 1, sizeof *names);
    const char **fields = calloc(n ? n : 1, sizeof *fields);
    if (names == NULL || fields == NULL) {
        free(names), free(fields);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%u", idx[i]);
        fields[i] = names[i];
        out[i] = NULL;
    }
    int rc = multi_get(s, "HMGET", key, fields, n, take_prompt, out);
    free(names), free(fields);
    return rc;
}

/* ==================== cache ==================== */

static void take_generation(size_t i, const redisReply *e, void *arg)
{
    Empq__Generation **out = arg;
    out[i] = e->type == REDIS_REPLY_STRING
                 ? empq__generation__unpack(NULL, e->len, (const uint8_t *)e->str)
                 : NULL;
}

int empq_store_cache_get(empq_store *s, const char *const *keys, size_t n, Empq__Generation **out)
{
    char (*names)[80] = calloc(n ? n : 1, sizeof *names);
    const char **fields = calloc(n ? n : 1, sizeof *fields);
    if (names == NULL || fields == NULL) {
        free(names), free(fields);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "empq:cache:%s", keys[i]);
        fields[i] = names[i];
        out[i] = NULL;
    }
    int rc = multi_get(s, "MGET", NULL, fields, n, take_generation, out);
    free(names), free(fields);
    return rc;
}

/* ==================== results and dead letters ==================== */

/* Per-chunk scratch of results_chunk: the script's and MSET's arguments. */
typedef struct chunk_args {
    const char **argv; /* EVALSHA sha numkeys stream hkey... (job value run)... */
    size_t *lens;
    const char **mset; /* MSET (key value)... */
    size_t *mlens;
    char (*hkeys)[256];
    char (*jobs)[16];
    char (*ckeys)[96];
    uint8_t **bufs; /* packed values: 2 a result (result, generation) */
} chunk_args;

/* Appends one argument (str, len) to an argument vector of *n. */
static void arg_push(const char **v, size_t *lens, size_t *n, const char *str, size_t len)
{
    v[*n] = str;
    lens[*n] = len;
    (*n)++;
}

/* Frees what results_chunk allocated for n results; a may be partly filled. */
static void chunk_args_free(chunk_args *a, size_t n)
{
    if (a->bufs != NULL)
        for (size_t i = 0; i < 2 * n; i++)
            free(a->bufs[i]);
    free(a->argv), free(a->lens), free(a->mset), free(a->mlens);
    free(a->hkeys), free(a->jobs), free(a->ckeys), free(a->bufs);
}

/* One chunk of results_put: one EVALSHA of the result script for the n
 * results, then one MSET of their cache entries (when any), in one
 * pipeline; then the replies. */
static int results_chunk(empq_store *s, const empq_store_put *items, size_t n, int *fresh)
{
    int rc = ensure(s);
    if (rc != EMPQ_OK)
        return rc;
    char numkeys[16];
    snprintf(numkeys, sizeof numkeys, "%zu", n + 1);
    chunk_args a = {0};
    a.argv = malloc((4 + 4 * n) * sizeof *a.argv);
    a.lens = malloc((4 + 4 * n) * sizeof *a.lens);
    a.mset = malloc((1 + 2 * n) * sizeof *a.mset);
    a.mlens = malloc((1 + 2 * n) * sizeof *a.mlens);
    a.hkeys = malloc(n * sizeof *a.hkeys);
    a.jobs = malloc(n * sizeof *a.jobs);
    a.ckeys = malloc(n * sizeof *a.ckeys);
    a.bufs = calloc(2 * n, sizeof *a.bufs);
    if (a.argv == NULL || a.lens == NULL || a.mset == NULL || a.mlens == NULL || a.hkeys == NULL ||
        a.jobs == NULL || a.ckeys == NULL || a.bufs == NULL) {
        chunk_args_free(&a, n);
        return EMPQ_ENOMEM;
    }
    size_t argc = 0, mc = 0;
    arg_push(a.argv, a.lens, &argc, "EVALSHA", 7);
    arg_push(a.argv, a.lens, &argc, s->script_sha, strlen(s->script_sha));
    arg_push(a.argv, a.lens, &argc, numkeys, strlen(numkeys));
    arg_push(a.argv, a.lens, &argc, STREAM_KEY, strlen(STREAM_KEY));
    arg_push(a.mset, a.mlens, &mc, "MSET", 4);
    for (size_t i = 0; i < n; i++) {
        const Empq__Result *res = items[i].result;
        key_of(a.hkeys[i], sizeof a.hkeys[i], res->run_id, ":results");
        arg_push(a.argv, a.lens, &argc, a.hkeys[i], strlen(a.hkeys[i]));
    }
    for (size_t i = 0; i < n && rc == EMPQ_OK; i++) {
        const Empq__Result *res = items[i].result;
        snprintf(a.jobs[i], sizeof a.jobs[i], "%u", res->job);
        size_t rlen;
        rc = pack(&res->base, &a.bufs[2 * i], &rlen);
        if (rc != EMPQ_OK)
            break;
        arg_push(a.argv, a.lens, &argc, a.jobs[i], strlen(a.jobs[i]));
        arg_push(a.argv, a.lens, &argc, (const char *)a.bufs[2 * i], rlen);
        arg_push(a.argv, a.lens, &argc, res->run_id, strlen(res->run_id));
        if (items[i].cache_key != NULL && res->gen != NULL) {
            snprintf(a.ckeys[i], sizeof a.ckeys[i], "empq:cache:%s", items[i].cache_key);
            size_t glen;
            rc = pack(&res->gen->base, &a.bufs[2 * i + 1], &glen);
            if (rc != EMPQ_OK)
                break;
            arg_push(a.mset, a.mlens, &mc, a.ckeys[i], strlen(a.ckeys[i]));
            arg_push(a.mset, a.mlens, &mc, (const char *)a.bufs[2 * i + 1], glen);
        }
    }
    if (rc != EMPQ_OK) {
        chunk_args_free(&a, n);
        return rc;
    }
    pipe_t p = {s, 0, 0};
    pipe_append(&p, (int)argc, a.argv, a.lens);
    if (mc > 1)
        pipe_append(&p, (int)mc, a.mset, a.mlens);
    redisReply *r = pipe_reply(&p);
    if (r == NULL) {
        rc = EMPQ_ESTORE;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(s->err, sizeof s->err, "Redis %s: result write: %s", s->url_masked, r->str);
        if (strncmp(r->str, "NOSCRIPT", 8) == 0)
            s->script_ok = 0; /* the retry loads it again */
        rc = EMPQ_ESTORE;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(s->err, sizeof s->err, "Redis %s: result write: unexpected reply", s->url_masked);
        rc = EMPQ_ESTORE;
    } else if (fresh != NULL) {
        for (size_t i = 0; i < n; i++)
            fresh[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
    }
    if (r != NULL)
        freeReplyObject(r);
    /* The MSET's reply, and whatever is left, so the connection stays in step. */
    while ((r = pipe_reply(&p)) != NULL)
        freeReplyObject(r);
    if (p.broken)
        rc = store_fail(s, "pipeline");
    chunk_args_free(&a, n);
    return rc;
}

int empq_store_results_put(empq_store *s, const empq_store_put *items, size_t n, int *fresh)
{
    for (size_t at = 0; at < n; at += BATCH_MAX) {
        size_t m = n - at < BATCH_MAX ? n - at : BATCH_MAX;
        int rc = results_chunk(s, items + at, m, fresh != NULL ? fresh + at : NULL);
        /* One retry after a reconnect: every command in the chunk is idempotent. */
        if (rc == EMPQ_ESTORE)
            rc = results_chunk(s, items + at, m, fresh != NULL ? fresh + at : NULL);
        if (rc != EMPQ_OK)
            return rc;
    }
    return EMPQ_OK;
}

int empq_store_dead_put(empq_store *s, const Empq__DeadLetter *d)
{
    char key[256], job[16];
    key_of(key, sizeof key, d->run_id, ":dead");
    snprintf(job, sizeof job, "%u", d->job);
    uint8_t *buf;
    size_t len;
    if (pack(&d->base, &buf, &len) != EMPQ_OK)
        return EMPQ_ENOMEM;
    const char *argv[] = {"HSETNX", key, job, (const char *)buf};
    size_t lens[] = {6, strlen(key), strlen(job), len};
    redisReply *r;
    int rc = command(s, &r, 4, argv, lens);
    free(buf);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

int empq_store_scan_finished(empq_store *s, const char *run_id, int results,
                             void (*fn)(uint32_t job, const uint8_t *value, size_t len, void *arg), void *arg)
{
    char key[256];
    key_of(key, sizeof key, run_id, results ? ":results" : ":dead");
    char cursor[32] = "0";
    do {
        /* COUNT keeps each reply bounded. */
        const char *argv[] = {"HSCAN", key, cursor, "COUNT", "2000"};
        redisReply *r;
        int rc = command(s, &r, 5, argv, NULL);
        if (rc != EMPQ_OK)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            snprintf(s->err, sizeof s->err, "Redis %s: HSCAN: unexpected reply", s->url_masked);
            return EMPQ_ESTORE;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *items = r->element[1];
        for (size_t i = 0; i + 1 < items->elements; i += 2) {
            const redisReply *v = items->element[i + 1];
            fn((uint32_t)strtoul(items->element[i]->str, NULL, 10), (const uint8_t *)v->str,
               v->type == REDIS_REPLY_STRING ? v->len : 0, arg);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return EMPQ_OK;
}

int empq_store_counts(empq_store *s, const char *run_id, uint64_t *results, uint64_t *dead)
{
    for (int k = 0; k < 2; k++) {
        uint64_t *dst = k == 0 ? results : dead;
        if (dst == NULL)
            continue;
        char key[256];
        key_of(key, sizeof key, run_id, k == 0 ? ":results" : ":dead");
        const char *argv[] = {"HLEN", key};
        redisReply *r;
        int rc = command(s, &r, 2, argv, NULL);
        if (rc != EMPQ_OK)
            return rc;
        *dst = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
        freeReplyObject(r);
    }
    return EMPQ_OK;
}

/* Frees n decoded messages and the array; v may be NULL. */
static void free_messages(void **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(v[i], NULL);
    free(v);
}

/* Reads every value of the hash at key with HSCAN, decoding each as desc
 * (an undecodable value is logged and skipped). On EMPQ_OK *out is an array
 * of *n messages (free with free_messages); on failure *out is NULL, *n 0,
 * and nothing is left to free. HSCAN may return a field twice while Redis
 * rehashes: callers order by job index and drop repeats. */
static int hash_values(empq_store *s, const char *run_id, const char *suffix,
                       const ProtobufCMessageDescriptor *desc, void ***out, size_t *n)
{
    char key[256];
    key_of(key, sizeof key, run_id, suffix);
    *out = NULL;
    *n = 0;
    size_t got = 0, cap = 0;
    void **v = NULL;
    int rc = EMPQ_OK;
    char cursor[32] = "0";
    do {
        const char *argv[] = {"HSCAN", key, cursor, "COUNT", "1000"};
        redisReply *r;
        rc = command(s, &r, 5, argv, NULL);
        if (rc != EMPQ_OK)
            break;
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *items = r->element[1];
        for (size_t i = 0; i + 1 < items->elements && rc == EMPQ_OK; i += 2) {
            const redisReply *val = items->element[i + 1];
            ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, val->len, (const uint8_t *)val->str);
            if (m == NULL) {
                EMPQ_WARN_LIMITED("undecodable_value", "event=undecodable_value key=%s field=%s", key,
                                  items->element[i]->str);
                continue;
            }
            if (got == cap) {
                cap = cap ? cap * 2 : 1024;
                void **nv = realloc(v, cap * sizeof *v);
                if (nv == NULL) {
                    protobuf_c_message_free_unpacked(m, NULL);
                    rc = EMPQ_ENOMEM;
                    break;
                }
                v = nv;
            }
            v[got++] = m;
        }
        freeReplyObject(r);
    } while (rc == EMPQ_OK && strcmp(cursor, "0") != 0);
    if (rc != EMPQ_OK) {
        free_messages(v, got);
        return rc;
    }
    *out = v;
    *n = got;
    return EMPQ_OK;
}

int empq_store_results_all(empq_store *s, const char *run_id, Empq__Result ***out, size_t *n)
{
    return hash_values(s, run_id, ":results", &empq__result__descriptor, (void ***)out, n);
}

void empq_store_free_results(Empq__Result **v, size_t n) { free_messages((void **)v, n); }

int empq_store_dead_all(empq_store *s, const char *run_id, Empq__DeadLetter ***out, size_t *n)
{
    return hash_values(s, run_id, ":dead", &empq__dead_letter__descriptor, (void ***)out, n);
}

void empq_store_free_dead(Empq__DeadLetter **v, size_t n) { free_messages((void **)v, n); }

/* ==================== results stream ==================== */

int empq_store_stream_group(empq_store *s, const char *group)
{
    const char *argv[] = {"XGROUP", "CREATE", STREAM_KEY, group, "0", "MKSTREAM"};
    redisReply *r;
    int rc = command(s, &r, 6, argv, NULL);
    if (rc == EMPQ_OK) {
        freeReplyObject(r);
        return EMPQ_OK;
    }
    if (strstr(s->err, "BUSYGROUP") != NULL)
        return EMPQ_OK;
    return rc;
}

/* Parses an XREADGROUP reply into out; returns the count. */
static size_t parse_entries(const redisReply *r, empq_stream_entry *out, size_t max)
{
    size_t k = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *stream = r->element[s];
        if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2)
            continue;
        const redisReply *entries = stream->element[1];
        for (size_t e = 0; e < entries->elements && k < max; e++) {
            const redisReply *ent = entries->element[e];
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2)
                continue;
            empq_stream_entry *o = &out[k];
            memset(o, 0, sizeof *o);
            snprintf(o->id, sizeof o->id, "%s", ent->element[0]->str);
            const redisReply *f = ent->element[1];
            if (f->type != REDIS_REPLY_ARRAY) {
                k++; /* deleted entry: acked and skipped by the caller (run_id empty) */
                continue;
            }
            for (size_t j = 0; j + 1 < f->elements; j += 2) {
                if (strcmp(f->element[j]->str, "run") == 0)
                    snprintf(o->run_id, sizeof o->run_id, "%s", f->element[j + 1]->str);
                else if (strcmp(f->element[j]->str, "job") == 0)
                    o->job = (uint32_t)strtoul(f->element[j + 1]->str, NULL, 10);
            }
            k++;
        }
    }
    return k;
}

int empq_store_stream_read(empq_store *s, const char *group, const char *consumer,
                           empq_stream_entry *out, size_t max, int block_ms, size_t *n)
{
    *n = 0;
    char count[16], block[16];
    snprintf(count, sizeof count, "%zu", max);
    snprintf(block, sizeof block, "%d", block_ms);
    /* First what this consumer was given and never acked (after a restart). */
    const char *pend[] = {"XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", STREAM_KEY, "0"};
    redisReply *r;
    int rc = command(s, &r, 9, pend, NULL);
    if (rc != EMPQ_OK)
        return rc;
    *n = parse_entries(r, out, max);
    freeReplyObject(r);
    if (*n > 0)
        return EMPQ_OK;
    const char *fresh[] = {"XREADGROUP", "GROUP", group, consumer, "COUNT", count,
                           "BLOCK", block, "STREAMS", STREAM_KEY, ">"};
    int argc = 11;
    if (block_ms <= 0) {
        /* no BLOCK argument: drop the pair */
        fresh[6] = "STREAMS", fresh[7] = STREAM_KEY, fresh[8] = ">";
        argc = 9;
    }
    rc = command(s, &r, argc, fresh, NULL);
    if (rc != EMPQ_OK)
        return rc;
    *n = parse_entries(r, out, max);
    freeReplyObject(r);
    return EMPQ_OK;
}

int empq_store_stream_ack(empq_store *s, const char *group, const empq_stream_entry *e, size_t n)
{
    if (n == 0)
        return EMPQ_OK;
    const char **argv = calloc(n + 3, sizeof *argv);
    if (argv == NULL)
        return EMPQ_ENOMEM;
    argv[0] = "XACK", argv[1] = STREAM_KEY, argv[2] = group;
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = e[i].id;
    redisReply *r;
    int rc = command(s, &r, (int)(n + 3), argv, NULL);
    free(argv);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

/* The first id of the stream a group still needs: its oldest pending entry
 * (delivered, not acked), else the last id delivered to it (the entries
 * before it are read and acked). Writes "" when the group needs nothing
 * known (no delivery yet: it may still read from the start). */
static int group_floor(empq_store *s, const char *group, long long pending, const char *last, char *out,
                       size_t len)
{
    out[0] = '\0';
    if (pending <= 0) {
        if (strcmp(last, "0-0") != 0)
            snprintf(out, len, "%s", last);
        return EMPQ_OK;
    }
    const char *argv[] = {"XPENDING", STREAM_KEY, group};
    redisReply *r;
    int rc = command(s, &r, 3, argv, NULL);
    if (rc != EMPQ_OK)
        return rc;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(out, len, "%s", r->element[1]->str);
    freeReplyObject(r);
    return EMPQ_OK;
}

/* a < b for stream ids "ms-seq" */
static int id_less(const char *a, const char *b)
{
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    if (am != bm)
        return am < bm;
    const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
    return strtoull(ad != NULL ? ad + 1 : "0", NULL, 10) < strtoull(bd != NULL ? bd + 1 : "0", NULL, 10);
}

int empq_store_stream_trim(empq_store *s, uint64_t *removed)
{
    if (removed != NULL)
        *removed = 0;
    const char *argv[] = {"XINFO", "GROUPS", STREAM_KEY};
    redisReply *r;
    int rc = command(s, &r, 3, argv, NULL);
    if (rc != EMPQ_OK)
        return strstr(s->err, "no such key") != NULL ? EMPQ_OK : rc;
    char floor[48] = "";
    int have = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    for (size_t g = 0; have && g < r->elements && rc == EMPQ_OK; g++) {
        const redisReply *e = r->element[g];
        const char *name = NULL, *last = NULL;
        long long pending = -1;
        for (size_t k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2) {
            const redisReply *key = e->element[k], *val = e->element[k + 1];
            if (key->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(key->str, "name") == 0 && val->type == REDIS_REPLY_STRING)
                name = val->str;
            else if (strcmp(key->str, "last-delivered-id") == 0 && val->type == REDIS_REPLY_STRING)
                last = val->str;
            else if (strcmp(key->str, "pending") == 0 && val->type == REDIS_REPLY_INTEGER)
                pending = val->integer;
        }
        char f[48];
        if (name == NULL || last == NULL || pending < 0) {
            have = 0; /* a reply this code does not understand: trim nothing */
            break;
        }
        rc = group_floor(s, name, pending, last, f, sizeof f);
        if (rc == EMPQ_OK && f[0] == '\0')
            have = 0; /* a group that has read nothing yet needs everything */
        else if (rc == EMPQ_OK && (floor[0] == '\0' || id_less(f, floor)))
            snprintf(floor, sizeof floor, "%s", f);
    }
    freeReplyObject(r);
    if (rc != EMPQ_OK || !have || floor[0] == '\0')
        return rc;
    /* Exact MINID: entries below every group's floor are read and acked. */
    const char *trim[] = {"XTRIM", STREAM_KEY, "MINID", floor};
    rc = command(s, &r, 4, trim, NULL);
    if (rc != EMPQ_OK)
        return rc;
    if (removed != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        *removed = (uint64_t)r->integer;
    freeReplyObject(r);
    return EMPQ_OK;
}

/* ==================== attempts (broker restarts) ==================== */

int empq_store_attempts_add(empq_store *s, const char *run_id, const uint32_t *jobs, size_t n)
{
    if (n == 0)
        return EMPQ_OK;
    int rc = ensure(s);
    if (rc != EMPQ_OK)
        return rc;
    char key[256];
    key_of(key, sizeof key, run_id, ":attempts");
    pipe_t p = {s, 0, 0};
    for (size_t i = 0; i < n; i++) {
        char job[16];
        snprintf(job, sizeof job, "%u", jobs[i]);
        const char *argv[] = {"HINCRBY", key, job, "1"};
        pipe_append(&p, 4, argv, NULL);
    }
    redisReply *r;
    while ((r = pipe_reply(&p)) != NULL) {
        if (r->type == REDIS_REPLY_ERROR && rc == EMPQ_OK) {
            snprintf(s->err, sizeof s->err, "Redis %s: HINCRBY %s: %s", s->url_masked, key, r->str);
            rc = EMPQ_ESTORE;
        }
        freeReplyObject(r);
    }
    if (p.broken && rc == EMPQ_OK)
        rc = store_fail(s, "attempts pipeline");
    return rc;
}

int empq_store_attempts_scan(empq_store *s, const char *run_id,
                             void (*fn)(uint32_t job, uint32_t attempts, void *arg), void *arg)
{
    char key[256];
    key_of(key, sizeof key, run_id, ":attempts");
    char cursor[32] = "0";
    do {
        const char *argv[] = {"HSCAN", key, cursor, "COUNT", "2000"};
        redisReply *r;
        int rc = command(s, &r, 5, argv, NULL);
        if (rc != EMPQ_OK)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            snprintf(s->err, sizeof s->err, "Redis %s: HSCAN %s: unexpected reply", s->url_masked, key);
            return EMPQ_ESTORE;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *items = r->element[1];
        for (size_t i = 0; i + 1 < items->elements; i += 2)
            fn((uint32_t)strtoul(items->element[i]->str, NULL, 10),
               (uint32_t)strtoul(items->element[i + 1]->str, NULL, 10), arg);
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return EMPQ_OK;
}

int empq_store_attempts_clear(empq_store *s, const char *run_id)
{
    char key[256];
    key_of(key, sizeof key, run_id, ":attempts");
    const char *argv[] = {"DEL", key};
    redisReply *r;
    int rc = command(s, &r, 2, argv, NULL);
    if (rc == EMPQ_OK)
        freeReplyObject(r);
    return rc;
}

/* ==================== bulk reads (the console) ==================== */

/* Sends the k commands of cmds (argv arrays of argc[i] strings) in one
 * pipeline and reads the k replies into replies[] (the caller frees each
 * with freeReplyObject). On failure every reply is freed and NULL. */
static int pipe_all(empq_store *s, size_t k, const char *const *const *cmds, const int *argc,
                    redisReply **replies)
{
    for (size_t i = 0; i < k; i++)
        replies[i] = NULL;
    int rc = ensure(s);
    if (rc != EMPQ_OK)
        return rc;
    pipe_t p = {s, 0, 0};
    for (size_t i = 0; i < k; i++)
        pipe_append(&p, argc[i], (const char **)cmds[i], NULL);
    for (size_t i = 0; i < k; i++) {
        replies[i] = pipe_reply(&p);
        if (replies[i] == NULL) {
            rc = EMPQ_ESTORE;
            break;
        }
        if (replies[i]->type == REDIS_REPLY_ERROR && rc == EMPQ_OK) {
            snprintf(s->err, sizeof s->err, "Redis %s: %s: %s", s->url_masked, cmds[i][0], replies[i]->str);
            rc = EMPQ_ESTORE;
        }
    }
    if (p.broken && rc == EMPQ_OK)
        rc = store_fail(s, "pipeline");
    if (rc != EMPQ_OK)
        for (size_t i = 0; i < k; i++) {
            if (replies[i] != NULL)
                freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
    return rc;
}

int empq_store_jobs_get(empq_store *s, const char *run_id, const uint32_t *jobs, size_t n,
                        Empq__Result **results, Empq__DeadLetter **dead)
{
    for (size_t i = 0; i < n; i++)
        results[i] = NULL, dead[i] = NULL;
    if (n == 0)
        return EMPQ_OK;
    char rkey[256], dkey[256];
    key_of(rkey, sizeof rkey, run_id, ":results");
    key_of(dkey, sizeof dkey, run_id, ":dead");
    char (*names)[12] = calloc(n, sizeof *names);
    const char **ra = calloc(n + 2, sizeof *ra), **da = calloc(n + 2, sizeof *da);
    if (names == NULL || ra == NULL || da == NULL) {
        free(names), free(ra), free(da);
        return EMPQ_ENOMEM;
    }
    ra[0] = da[0] = "HMGET";
    ra[1] = rkey;
    da[1] = dkey;
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%u", jobs[i]);
        ra[i + 2] = da[i + 2] = names[i];
    }
    const char *const *cmds[2] = {ra, da};
    int argc[2] = {(int)(n + 2), (int)(n + 2)};
    redisReply *rep[2];
    int rc = pipe_all(s, 2, cmds, argc, rep);
    free(names), free(ra), free(da);
    if (rc != EMPQ_OK)
        return rc;
    for (int k = 0; k < 2; k++) {
        if (rep[k]->type == REDIS_REPLY_ARRAY && rep[k]->elements == n)
            for (size_t i = 0; i < n; i++) {
                const redisReply *e = rep[k]->element[i];
                if (e->type != REDIS_REPLY_STRING)
                    continue;
                if (k == 0)
                    results[i] = empq__result__unpack(NULL, e->len, (const uint8_t *)e->str);
                else
                    dead[i] = empq__dead_letter__unpack(NULL, e->len, (const uint8_t *)e->str);
            }
        freeReplyObject(rep[k]);
    }
    return EMPQ_OK;
}

int empq_store_prompts_all(empq_store *s, const char *run_id, Empq__Prompt ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char key[256];
    key_of(key, sizeof key, run_id, ":prompts");
    const char *argv[] = {"HGETALL", key};
    redisReply *r;
    int rc = command(s, &r, 2, argv, NULL);
    if (rc != EMPQ_OK)
        return rc;
    size_t cap = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        unsigned long idx = strtoul(r->element[i]->str, NULL, 10);
        if (idx < (1UL << 24) && idx + 1 > cap)
            cap = idx + 1;
    }
    Empq__Prompt **v = calloc(cap ? cap : 1, sizeof *v);
    if (v == NULL) {
        freeReplyObject(r);
        return EMPQ_ENOMEM;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        unsigned long idx = strtoul(r->element[i]->str, NULL, 10);
        const redisReply *val = r->element[i + 1];
        if (idx >= cap || v[idx] != NULL)
            continue;
        v[idx] = empq__prompt__unpack(NULL, val->len, (const uint8_t *)val->str);
        if (v[idx] == NULL)
            EMPQ_WARN("event=undecodable_value key=%s field=%lu", key, idx);
    }
    freeReplyObject(r);
    *out = v;
    *n = cap;
    return EMPQ_OK;
}

void empq_store_free_prompts(Empq__Prompt **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (v[i] != NULL)
            empq__prompt__free_unpacked(v[i], NULL);
    free(v);
}

int empq_store_job_states(empq_store *s, const char *run_id, uint8_t *state, size_t total)
{
    memset(state, 0, total);
    char rkey[256], dkey[256];
    key_of(rkey, sizeof rkey, run_id, ":results");
    key_of(dkey, sizeof dkey, run_id, ":dead");
    const char *ra[] = {"HKEYS", rkey}, *da[] = {"HKEYS", dkey};
    const char *const *cmds[2] = {ra, da};
    int argc[2] = {2, 2};
    redisReply *rep[2];
    int rc = pipe_all(s, 2, cmds, argc, rep);
    if (rc != EMPQ_OK)
        return rc;
    /* dead first, so a job with both (a dead job rerun to a result) counts done */
    for (int k = 1; k >= 0; k--) {
        for (size_t i = 0; rep[k]->type == REDIS_REPLY_ARRAY && i < rep[k]->elements; i++) {
            unsigned long job = strtoul(rep[k]->element[i]->str, NULL, 10);
            if (job < total)
                state[job] = k == 0 ? EMPQ_STORE_JOB_DONE : EMPQ_STORE_JOB_DEAD;
        }
        freeReplyObject(rep[k]);
    }
    return EMPQ_OK;
}

/* Decodes the values of an HGETALL reply as desc into a new array. */
static int decode_values(const redisReply *r, const ProtobufCMessageDescriptor *desc, void ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t m = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    void **v = calloc(m ? m : 1, sizeof *v);
    if (v == NULL)
        return EMPQ_ENOMEM;
    size_t got = 0;
    for (size_t i = 0; i < m; i++) {
        const redisReply *val = r->element[2 * i + 1];
        ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, val->len, (const uint8_t *)val->str);
        if (msg == NULL)
            EMPQ_WARN("event=undecodable_value field=%s", r->element[2 * i]->str);
        else
            v[got++] = msg;
    }
    *out = v;
    *n = got;
    return EMPQ_OK;
}

int empq_store_finished_all(empq_store *s, const char *run_id, Empq__Result ***res, size_t *nr,
                            Empq__DeadLetter ***dead, size_t *nd)
{
    if (res != NULL)
        *res = NULL, *nr = 0;
    *dead = NULL;
    *nd = 0;
    char rkey[256], dkey[256];
    key_of(rkey, sizeof rkey, run_id, ":results");
    key_of(dkey, sizeof dkey, run_id, ":dead");
    const char *ra[] = {"HGETALL", rkey}, *da[] = {"HGETALL", dkey};
    const char *const *cmds[2] = {da, ra};
    int argc[2] = {2, 2};
    redisReply *rep[2];
    size_t k = res != NULL ? 2 : 1;
    int rc = pipe_all(s, k, cmds, argc, rep);
    if (rc != EMPQ_OK)
        return rc;
    rc = decode_values(rep[0], &empq__dead_letter__descriptor, (void ***)dead, nd);
    if (rc == EMPQ_OK && res != NULL)
        rc = decode_values(rep[1], &empq__result__descriptor, (void ***)res, nr);
    for (size_t i = 0; i < k; i++)
        freeReplyObject(rep[i]);
    if (rc != EMPQ_OK) {
        empq_store_free_dead(*dead, *nd);
        *dead = NULL, *nd = 0;
    }
    return rc;
}

int empq_store_runs_overview(empq_store *s, empq_store_run_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char **ids = NULL;
    size_t m = 0;
    int rc = empq_store_run_list(s, &ids, &m);
    if (rc != EMPQ_OK)
        return rc;
    empq_store_run_info *v = calloc(m ? m : 1, sizeof *v);
    char (*keys)[3][256] = calloc(m ? m : 1, sizeof *keys);
    const char *(*argv)[2] = calloc(3 * (m ? m : 1), sizeof *argv);
    const char *const **cmds = calloc(3 * (m ? m : 1), sizeof *cmds);
    int *argc = calloc(3 * (m ? m : 1), sizeof *argc);
    redisReply **rep = calloc(3 * (m ? m : 1), sizeof *rep);
    if (v == NULL || keys == NULL || argv == NULL || cmds == NULL || argc == NULL || rep == NULL) {
        rc = EMPQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        static const char *const suffix[3] = {"", ":results", ":dead"};
        for (int k = 0; k < 3; k++) {
            key_of(keys[i][k], sizeof keys[i][k], ids[i], suffix[k]);
            argv[3 * i + k][0] = k == 0 ? "GET" : "HLEN";
            argv[3 * i + k][1] = keys[i][k];
            cmds[3 * i + k] = argv[3 * i + k];
            argc[3 * i + k] = 2;
        }
    }
    rc = pipe_all(s, 3 * m, cmds, argc, rep);
    if (rc != EMPQ_OK)
        goto out;
    size_t got = 0;
    for (size_t i = 0; i < m; i++) {
        redisReply *g = rep[3 * i];
        Empq__Run *run = g->type == REDIS_REPLY_STRING ? empq__run__unpack(NULL, g->len, (const uint8_t *)g->str) : NULL;
        if (run != NULL) {
            v[got].run = run;
            v[got].results = rep[3 * i + 1]->type == REDIS_REPLY_INTEGER ? (uint64_t)rep[3 * i + 1]->integer : 0;
            v[got].dead = rep[3 * i + 2]->type == REDIS_REPLY_INTEGER ? (uint64_t)rep[3 * i + 2]->integer : 0;
            got++;
        }
        for (int k = 0; k < 3; k++)
            freeReplyObject(rep[3 * i + k]);
    }
    *out = v;
    *n = got;
    v = NULL;
out:
    free(v), free(keys), free(argv), free(cmds), free(argc), free(rep);
    empq_store_free_strings(ids, m);
    return rc;
}

void empq_store_free_runs_overview(empq_store_run_info *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (v[i].run != NULL)
            empq__run__free_unpacked(v[i].run, NULL);
    free(v);
}
