/* ratings.c: rating slots in Redis (Lua scripts: one atomic step each) and
 * the ratings export. See include/empq/ratings.h and docs/rating.md. */
#include "empq/ratings.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/export.h"
#include "empq/log.h"
#include "empq/util.h"

/* ==================== Lua ==================== */

/* Every script gets ARGV[1] = key prefix P, ARGV[2] = now (ms). The keys
 * are derived inside the script (slot keys depend on what is claimed), so
 * this needs a standalone Redis (or every key of a run on one node). */
#define LUA_PRELUDE                                                                              \
    "local P = ARGV[1]\n"                                                                        \
    "local now = tonumber(ARGV[2])\n"                                                            \
    "local function reclaim(limit)\n"                                                            \
    "  local exp = redis.call('ZRANGEBYSCORE', P..':active', '-inf', now, 'LIMIT', 0, limit)\n"  \
    "  for _, s in ipairs(exp) do\n"                                                             \
    "    local h = P..':slot:'..s\n"                                                             \
    "    local f = redis.call('HGETALL', h)\n"                                                   \
    "    local t = {}\n"                                                                         \
    "    for i = 1, #f, 2 do t[f[i]] = f[i + 1] end\n"                                           \
    "    redis.call('ZREM', P..':active', s)\n"                                                  \
    "    if t.cond and t.score then\n"                                                           \
    "    redis.call('RPUSH', P..':abandoned', cjson.encode({slot = tonumber(s), reclaimed_ms = now, fields = t}))\n" \
    "    redis.call('DEL', h)\n"                                                                 \
    "    if t.pid then redis.call('HSET', P..':who', t.pid, 'x'..s) end\n"                       \
    "    redis.call('HINCRBY', P..':fill', t.cond, -1)\n"                                        \
    "    redis.call('ZADD', P..':open:'..t.cond, t.score, s)\n"                                  \
    "    redis.call('HINCRBY', P..':stats', 'reclaimed', 1)\n"                                   \
    "    local answered = tonumber(t.next or '0') or 0\n"                                        \
    "    if answered > 0 then redis.call('HINCRBY', P..':stats', 'ratings', -answered) end\n"     \
    "    end\n"                                                                                  \
    "  end\n"                                                                                    \
    "  return #exp\n"                                                                            \
    "end\n"                                                                                      \
    "local timeout = tonumber(redis.call('HGET', P..':plan', 'timeout_ms') or '0')\n"

/* ARGV: P, now, pid, study, session, route, consented ('1' or '0') -> {outcome, slot} */
static const char claim_lua[] = LUA_PRELUDE
    "reclaim(256)\n"
    "local pid = ARGV[3]\n"
    "local cur = redis.call('HGET', P..':who', pid)\n"
    "if cur then\n"
    "  if string.sub(cur, 1, 1) == 'x' then return {'expired', string.sub(cur, 2)} end\n"
    "  return {'resumed', cur}\n"
    "end\n"
    "local nc = tonumber(redis.call('HGET', P..':plan', 'n_conditions') or '0')\n"
    "if nc == 0 then return {'no_plan', ''} end\n"
    "local best, bestf = nil, nil\n"
    "for c = 0, nc - 1 do\n"
    "  if redis.call('ZCARD', P..':open:'..c) > 0 then\n"
    "    local f = tonumber(redis.call('HGET', P..':fill', tostring(c)) or '0')\n"
    "    if best == nil or f < bestf then best, bestf = c, f end\n"
    "  end\n"
    "end\n"
    "if best == nil then return {'full', ''} end\n"
    "if redis.call('HGET', P..':plan', 'consent') == '1' and ARGV[7] ~= '1' then return {'no_consent', ''} end\n"
    "local z = redis.call('ZPOPMIN', P..':open:'..best)\n"
    "local s = z[1]\n"
    "local def = redis.call('HGET', P..':plan', 's:'..s)\n"
    "local _, words = string.gsub(def, '%S+', '')\n"
    "redis.call('HINCRBY', P..':fill', tostring(best), 1)\n"
    "redis.call('DEL', P..':slot:'..s)\n"
    "redis.call('HSET', P..':slot:'..s, 'pid', pid, 'study', ARGV[4], 'session', ARGV[5], 'route', ARGV[6],\n"
    "  'cond', tostring(best), 'score', z[2], 'n', tostring(words - 3), 'next', '0',\n"
    "  'state', 'active', 'started', '0', 'claimed', ARGV[2], 'seen', ARGV[2])\n"
    "if ARGV[7] == '1' then redis.call('HSET', P..':slot:'..s, 'consent_ms', ARGV[2]) end\n"
    "redis.call('ZADD', P..':active', now + timeout, s)\n"
    "redis.call('HSET', P..':who', pid, s)\n"
    "redis.call('HINCRBY', P..':stats', 'claimed', 1)\n"
    "return {'ok', s}\n";

/* ARGV: P, now, pid -> {outcome, slot, state, next, n, started, plan def, code, route} */
static const char view_lua[] = LUA_PRELUDE
    "reclaim(256)\n"
    "local cur = redis.call('HGET', P..':who', ARGV[3])\n"
    "if not cur then return {'unknown'} end\n"
    "if string.sub(cur, 1, 1) == 'x' then return {'expired', string.sub(cur, 2)} end\n"
    "local h = P..':slot:'..cur\n"
    "local st = redis.call('HMGET', h, 'state', 'next', 'n', 'started', 'route')\n"
    "if st[1] == 'active' or st[1] == 'questions' then\n"
    "  redis.call('HSET', h, 'seen', ARGV[2])\n"
    "  if st[4] == '1' then redis.call('HSETNX', h, 'shown:'..st[2], ARGV[2]) end\n"
    "  redis.call('ZADD', P..':active', 'XX', now + timeout, cur)\n"
    "end\n"
    "local def = redis.call('HGET', P..':plan', 's:'..cur) or ''\n"
    "local code = redis.call('HGET', P..':plan', 'code') or ''\n"
    "return {'ok', cur, st[1] or '', st[2] or '0', st[3] or '0', st[4] or '0', def, code, st[5] or ''}\n";

/* ARGV: P, now, pid -> outcome */
static const char start_lua[] = LUA_PRELUDE
    "reclaim(256)\n"
    "local cur = redis.call('HGET', P..':who', ARGV[3])\n"
    "if not cur then return 'unknown' end\n"
    "if string.sub(cur, 1, 1) == 'x' then return 'expired' end\n"
    "local h = P..':slot:'..cur\n"
    "if redis.call('HGET', h, 'state') ~= 'active' then return 'finished' end\n"
    "if redis.call('HGET', h, 'started') ~= '1' then\n"
    "  redis.call('HSET', h, 'started', '1', 'started_ms', ARGV[2])\n"
    "end\n"
    "redis.call('HSET', h, 'seen', ARGV[2])\n"
    "redis.call('ZADD', P..':active', 'XX', now + timeout, cur)\n"
    "return 'ok'\n";

/* ARGV: P, now, pid, slot, position, rating -> outcome */
static const char answer_lua[] = LUA_PRELUDE
    "reclaim(256)\n"
    "local cur = redis.call('HGET', P..':who', ARGV[3])\n"
    "if not cur then return 'unknown' end\n"
    "if string.sub(cur, 1, 1) == 'x' then return 'expired' end\n"
    "if cur ~= ARGV[4] then return 'not_yours' end\n"
    "local h = P..':slot:'..cur\n"
    "local st = redis.call('HMGET', h, 'state', 'next', 'n', 'started')\n"
    "local pos, nxt, n = tonumber(ARGV[5]), tonumber(st[2]), tonumber(st[3])\n"
    "if pos < nxt then\n"
    "  local prev = redis.call('HGET', h, 'a:'..ARGV[5])\n"
    "  if prev and string.sub(prev, 1, 1) == ARGV[6] then return 'duplicate' end\n"
    "  return 'stale'\n"
    "end\n"
    "if st[1] ~= 'active' then return 'finished' end\n"
    "if st[4] ~= '1' then return 'not_started' end\n"
    "if pos > nxt then return 'stale' end\n"
    "redis.call('HSET', h, 'a:'..ARGV[5], ARGV[6]..' '..ARGV[2], 'next', tostring(nxt + 1), 'seen', ARGV[2])\n"
    "redis.call('HINCRBY', P..':stats', 'ratings', 1)\n"
    "if nxt + 1 >= n and tonumber(redis.call('HGET', P..':plan', 'questions') or '0') > 0 then\n"
    "  redis.call('HSET', h, 'state', 'questions')\n"
    "  redis.call('ZADD', P..':active', 'XX', now + timeout, cur)\n"
    "elseif nxt + 1 >= n then\n"
    "  redis.call('HSET', h, 'state', 'done', 'done_ms', ARGV[2])\n"
    "  redis.call('ZREM', P..':active', cur)\n"
    "  redis.call('HINCRBY', P..':stats', 'done', 1)\n"
    "else\n"
    "  redis.call('ZADD', P..':active', 'XX', now + timeout, cur)\n"
    "end\n"
    "return 'ok'\n";

/* ARGV: P, now, pid, id1, value1, id2, value2, ... -> outcome. The
 * answers and the completion in one step. */
static const char finish_lua[] = LUA_PRELUDE
    "reclaim(256)\n"
    "local cur = redis.call('HGET', P..':who', ARGV[3])\n"
    "if not cur then return 'unknown' end\n"
    "if string.sub(cur, 1, 1) == 'x' then return 'expired' end\n"
    "local h = P..':slot:'..cur\n"
    "local state = redis.call('HGET', h, 'state')\n"
    "if state == 'done' then return 'finished' end\n"
    "if state ~= 'questions' then return 'not_due' end\n"
    "for i = 4, #ARGV - 1, 2 do\n"
    "  if ARGV[i + 1] ~= '' then redis.call('HSET', h, 'q:'..ARGV[i], ARGV[i + 1]) end\n"
    "end\n"
    "redis.call('HSET', h, 'state', 'done', 'done_ms', ARGV[2], 'seen', ARGV[2])\n"
    "redis.call('ZREM', P..':active', cur)\n"
    "redis.call('HINCRBY', P..':stats', 'done', 1)\n"
    "return 'ok'\n";

/* ARGV: P, now -> number reclaimed */
static const char reclaim_lua[] = LUA_PRELUDE
    "local total = 0\n"
    "while true do\n"
    "  local n = reclaim(1000)\n"
    "  total = total + n\n"
    "  if n < 1000 then break end\n"
    "end\n"
    "return total\n";

/* ==================== Redis helpers ==================== */

/* One command, reconnecting once when the connection broke. NULL on
 * failure, err set. The caller frees the reply. */
static redisReply *rcmd(empq_store *s, int argc, const char **argv, const size_t *lens,
                        empq_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c = empq_store_redis(s);
        if (c != NULL && c->err == 0) {
            redisReply *r = redisCommandArgv(c, argc, argv, lens);
            if (r != NULL) {
                if (r->type == REDIS_REPLY_ERROR) {
                    empq_error_set(err, EMPQ_ESTORE, "redis %s %s: %s", empq_store_url(s), argv[0],
                                   r->str);
                    freeReplyObject(r);
                    return NULL;
                }
                return r;
            }
        }
        if (attempt == 0 && empq_store_ping(s) == EMPQ_OK)
            continue;
        break;
    }
    empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s), empq_store_errstr(s));
    return NULL;
}

static void prefix(char *buf, size_t len, const char *run_id)
{
    snprintf(buf, len, "empq:run:%s", run_id);
}

#define EVAL_MAX_EXTRA 64 /* finish: pid and 2 x the questions (at most 20) */

/* EVAL script with ARGV = P, now, extra... */
static redisReply *eval(empq_store *s, const char *script, const char *run_id, uint64_t now_ms,
                        const char *const *extra, int n_extra, empq_error *err)
{
    char p[200], now[32];
    prefix(p, sizeof p, run_id);
    snprintf(now, sizeof now, "%" PRIu64, now_ms);
    const char *argv[5 + EVAL_MAX_EXTRA] = {"EVAL", script, "0", p, now};
    int argc = 5;
    for (int i = 0; i < n_extra && i < EVAL_MAX_EXTRA; i++)
        argv[argc++] = extra[i] != NULL ? extra[i] : "";
    return rcmd(s, argc, argv, NULL, err);
}

static int outcome_of(const char *name)
{
    static const struct {
        const char *name;
        int v;
    } m[] = {{"ok", EMPQ_RATINGS_OK},           {"resumed", EMPQ_RATINGS_RESUMED},
             {"duplicate", EMPQ_RATINGS_DUPLICATE}, {"full", EMPQ_RATINGS_FULL},
             {"expired", EMPQ_RATINGS_EXPIRED},  {"unknown", EMPQ_RATINGS_UNKNOWN},
             {"not_yours", EMPQ_RATINGS_NOT_YOURS}, {"stale", EMPQ_RATINGS_STALE},
             {"finished", EMPQ_RATINGS_FINISHED}, {"not_started", EMPQ_RATINGS_NOT_STARTED},
             {"no_plan", EMPQ_RATINGS_NO_PLAN}, {"no_consent", EMPQ_RATINGS_NO_CONSENT},
             {"not_due", EMPQ_RATINGS_NOT_DUE}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(name, m[i].name) == 0)
            return m[i].v;
    return -1;
}

const char *empq_ratings_outcome_name(int outcome)
{
    static const char *const names[] = {"ok",      "resumed",   "duplicate", "full",
                                        "expired", "unknown",   "not_yours", "stale",
                                        "finished", "not_started", "no_plan", "no_consent",
                                        "not_due"};
    if (outcome < 0 || (size_t)outcome >= sizeof names / sizeof names[0])
        return "?";
    return names[outcome];
}

static int bad_reply(empq_error *err, const char *what)
{
    return empq_error_set(err, EMPQ_EPARSE, "ratings: unexpected reply to %s", what);
}

int empq_ratings_valid_id(const char *id)
{
    if (id == NULL)
        return 0;
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* Context ids (study, session) are kept when valid ids, else dropped. */
static const char *ctx_id(const char *v)
{
    return v != NULL && empq_ratings_valid_id(v) ? v : "";
}

void empq_ratings_config_default(empq_ratings_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 30u * 60u * 1000u;
}

void empq_ratings_config_from_spec(empq_ratings_config *c, const Empq__RunSpec *spec)
{
    const Empq__RatingSpec *r = spec != NULL ? spec->rating : NULL;
    c->consent = r != NULL && r->consent != NULL && r->consent[0] != '\0';
    c->questions = r != NULL ? (uint32_t)r->n_questions : 0;
}

/* ==================== the plan ==================== */

static int valid_code(const char *c)
{
    if (c == NULL || c[0] == '\0')
        return 1;
    size_t n = strlen(c);
    if (n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9') || c[i] == '_' || c[i] == '-'))
            return 0;
    return 1;
}

/* A pipeline of argv commands (each copied into owned strings). */
typedef struct cmdlist {
    char ***argv;
    int *argc;
    size_t n, cap;
    int oom;
} cmdlist;

static void cl_add(cmdlist *l, int argc, ...)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char ***a = realloc(l->argv, cap * sizeof *a);
        int *c = a != NULL ? realloc(l->argc, cap * sizeof *c) : NULL;
        if (a != NULL)
            l->argv = a;
        if (c == NULL) {
            l->oom = 1;
            return;
        }
        l->argc = c;
        l->cap = cap;
    }
    char **v = calloc((size_t)argc, sizeof *v);
    if (v == NULL) {
        l->oom = 1;
        return;
    }
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        if ((v[i] = empq_strdup(va_arg(ap, const char *))) == NULL)
            l->oom = 1;
    va_end(ap);
    l->argv[l->n] = v;
    l->argc[l->n++] = argc;
}

static void cl_free(cmdlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        for (int j = 0; j < l->argc[i]; j++)
            free(l->argv[i][j]);
        free(l->argv[i]);
    }
    free(l->argv);
    free(l->argc);
    memset(l, 0, sizeof *l);
}

/* Sends the list as one MULTI/EXEC transaction (one round trip). */
static int cl_exec(empq_store *s, cmdlist *l, empq_error *err)
{
    if (l->oom)
        return empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
    redisContext *c = empq_store_redis(s);
    if (c == NULL || c->err != 0) {
        if (empq_store_ping(s) != EMPQ_OK)
            return empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s),
                                  empq_store_errstr(s));
        c = empq_store_redis(s);
    }
    int bad = redisAppendCommand(c, "MULTI") != REDIS_OK;
    for (size_t i = 0; i < l->n && !bad; i++)
        bad = redisAppendCommandArgv(c, l->argc[i], (const char **)l->argv[i], NULL) != REDIS_OK;
    bad = bad || redisAppendCommand(c, "EXEC") != REDIS_OK;
    int rc = EMPQ_OK;
    for (size_t i = 0; i < l->n + 2 && !bad; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
            bad = 1;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR && rc == EMPQ_OK)
            rc = empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s), r->str);
        freeReplyObject(r);
    }
    if (bad)
        return empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s),
                              c->errstr[0] ? c->errstr : "connection lost");
    return rc;
}

int empq_ratings_store_plan(empq_store *s, const char *run_id, const empq_assign_plan *p,
                            uint32_t n_models, uint32_t samples, const empq_ratings_config *cfg,
                            int replace, empq_error *err)
{
    if (!valid_code(cfg->completion_code))
        return empq_error_set(err, EMPQ_EINVAL,
                              "the completion code must be 1-64 characters of A-Z a-z 0-9 _ -");
    char P[200], k[260];
    prefix(P, sizeof P, run_id);
    snprintf(k, sizeof k, "%s:plan", P);
    const char *hex[] = {"HEXISTS", k, "n_conditions"};
    redisReply *r = rcmd(s, 3, hex, NULL, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int exists = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    if (exists && !replace)
        return empq_error_set(err, EMPQ_EEXIST,
                              "run %s has a rating plan already (use --replace before any "
                              "participant arrives)", run_id);
    char sk[260];
    snprintf(sk, sizeof sk, "%s:stats", P);
    const char *hg[] = {"HGET", sk, "claimed"};
    if ((r = rcmd(s, 3, hg, NULL, err)) == NULL)
        return EMPQ_ESTORE;
    long long claimed = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    if (claimed > 0)
        return empq_error_set(err, EMPQ_EEXIST,
                              "run %s: %lld participants have claimed slots of the plan; it "
                              "cannot be replaced", run_id, claimed);

    cmdlist l = {0};
    char buf[64], buf2[64];
    const char *suffixes[] = {":plan", ":fill", ":active", ":who", ":stats", ":abandoned"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(k, sizeof k, "%s%s", P, suffixes[i]);
        cl_add(&l, 2, "DEL", k);
    }
    for (uint32_t c = 0; c < EMPQ_ASSIGN_MAX_CONDITIONS; c++) {
        snprintf(k, sizeof k, "%s:open:%" PRIu32, P, c);
        cl_add(&l, 2, "DEL", k);
    }
    char pk[260];
    snprintf(pk, sizeof pk, "%s:plan", P);
    empq_buf def = {0};
    int rc = EMPQ_OK;
    for (size_t i = 0; i < p->n_slots && rc == EMPQ_OK; i++) {
        const empq_assign_slot *sl = &p->slots[i];
        def.len = 0;
        rc = empq_buf_printf(&def, "%" PRIu32 " %" PRIu32 " %" PRIu32, sl->condition, sl->batch,
                             sl->replica);
        for (uint32_t j = 0; j < sl->n && rc == EMPQ_OK; j++)
            rc = empq_buf_printf(&def, " %" PRId32, sl->entries[j]);
        if (rc != EMPQ_OK)
            break;
        snprintf(buf, sizeof buf, "s:%zu", i);
        cl_add(&l, 4, "HSET", pk, buf, def.data);
        snprintf(k, sizeof k, "%s:open:%" PRIu32, P, sl->condition);
        snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)sl->replica * p->n_batches + sl->batch);
        snprintf(buf2, sizeof buf2, "%zu", i);
        cl_add(&l, 4, "ZADD", k, buf, buf2);
    }
    for (uint32_t c = 0; c < p->n_conditions && rc == EMPQ_OK; c++) {
        snprintf(buf, sizeof buf, "cond:%" PRIu32, c);
        cl_add(&l, 4, "HSET", pk, buf, p->conditions[c]);
    }
    def.len = 0;
    for (size_t i = 0; i < p->n_checks && rc == EMPQ_OK; i++)
        rc = empq_buf_printf(&def, "%s%" PRIu32, i > 0 ? "," : "", p->checks[i]);
    if (rc == EMPQ_OK)
        rc = empq_buf_append(&def, "", 0);
    if (rc != EMPQ_OK) {
        empq_buf_free(&def);
        cl_free(&l);
        return empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
    }
    char v[8][32];
    snprintf(v[0], sizeof v[0], "%" PRIu32, n_models);
    snprintf(v[1], sizeof v[1], "%" PRIu32, samples > 0 ? samples : 1);
    snprintf(v[2], sizeof v[2], "%zu", p->n_slots);
    snprintf(v[3], sizeof v[3], "%" PRIu32, p->items);
    snprintf(v[4], sizeof v[4], "%" PRIu32, p->raters);
    snprintf(v[5], sizeof v[5], "%" PRIu32, p->n_batches);
    snprintf(v[6], sizeof v[6], "%" PRIu64, p->seed);
    snprintf(v[7], sizeof v[7], "%" PRIu64, cfg->timeout_ms);
    char nc[32];
    snprintf(nc, sizeof nc, "%" PRIu32, p->n_conditions);
    cl_add(&l, 20, "HSET", pk, "n_models", v[0], "samples", v[1], "n_slots", v[2], "items", v[3],
           "raters", v[4], "batches", v[5], "seed", v[6], "timeout_ms", v[7], "checks",
           def.data != NULL ? def.data : "");
    cl_add(&l, 4, "HSET", pk, "code", cfg->completion_code != NULL ? cfg->completion_code : "");
    char nq[16];
    snprintf(nq, sizeof nq, "%" PRIu32, cfg->questions);
    cl_add(&l, 6, "HSET", pk, "consent", cfg->consent ? "1" : "0", "questions", nq);
    /* last: the field that says the plan is there */
    cl_add(&l, 4, "HSET", pk, "n_conditions", nc);
    empq_buf_free(&def);
    rc = cl_exec(s, &l, err);
    cl_free(&l);
    return rc;
}

/* ==================== participants ==================== */

int empq_ratings_claim(empq_store *s, const char *run_id, const char *participant,
                       const char *study, const char *session, unsigned flags, uint64_t now_ms,
                       int *outcome, uint32_t *slot, empq_error *err)
{
    *outcome = EMPQ_RATINGS_NO_PLAN;
    *slot = 0;
    if (!empq_ratings_valid_id(participant))
        return empq_error_set(err, EMPQ_EINVAL,
                              "a participant id is 1-64 characters of A-Z a-z 0-9 _ . -");
    const char *extra[] = {participant, ctx_id(study), ctx_id(session),
                           (flags & EMPQ_RATINGS_PROLIFIC) ? "prolific" : "link",
                           (flags & EMPQ_RATINGS_CONSENTED) ? "1" : "0"};
    redisReply *r = eval(s, claim_lua, run_id, now_ms, extra, 5, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = EMPQ_OK;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        outcome_of(r->element[0]->str) < 0)
        rc = bad_reply(err, "claim");
    else {
        *outcome = outcome_of(r->element[0]->str);
        if (r->element[1]->type == REDIS_REPLY_STRING)
            *slot = (uint32_t)strtoul(r->element[1]->str, NULL, 10);
    }
    freeReplyObject(r);
    return rc;
}

/* Runs a script that answers with an outcome name. */
static int simple(empq_store *s, const char *script, const char *what, const char *run_id,
                  uint64_t now_ms, const char *const *extra, int n_extra, int *outcome,
                  empq_error *err)
{
    redisReply *r = eval(s, script, run_id, now_ms, extra, n_extra, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = EMPQ_OK;
    if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_STRING)
        rc = bad_reply(err, what);
    else if ((*outcome = outcome_of(r->str)) < 0)
        rc = bad_reply(err, what);
    freeReplyObject(r);
    return rc;
}

int empq_ratings_start(empq_store *s, const char *run_id, const char *participant,
                       uint64_t now_ms, int *outcome, empq_error *err)
{
    *outcome = EMPQ_RATINGS_UNKNOWN;
    if (!empq_ratings_valid_id(participant))
        return EMPQ_OK;
    const char *extra[] = {participant};
    return simple(s, start_lua, "start", run_id, now_ms, extra, 1, outcome, err);
}

int empq_ratings_answer(empq_store *s, const char *run_id, const char *participant,
                        uint32_t slot, uint32_t position, int rating, uint64_t now_ms,
                        int *outcome, empq_error *err)
{
    *outcome = EMPQ_RATINGS_UNKNOWN;
    if (rating < 1 || rating > 3)
        return empq_error_set(err, EMPQ_EINVAL, "a rating is 1 (Bad), 2 (Okay) or 3 (Good)");
    if (!empq_ratings_valid_id(participant))
        return EMPQ_OK;
    char sl[16], pos[16], rt[4];
    snprintf(sl, sizeof sl, "%" PRIu32, slot);
    snprintf(pos, sizeof pos, "%" PRIu32, position);
    snprintf(rt, sizeof rt, "%d", rating);
    const char *extra[] = {participant, sl, pos, rt};
    return simple(s, answer_lua, "answer", run_id, now_ms, extra, 4, outcome, err);
}

/* Code points in s when it is valid UTF-8 (no overlong forms, surrogates
 * or values past U+10FFFF) without control characters other than tab, CR
 * and LF; -1 otherwise. */
static long text_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p != '\0') {
        unsigned c = *p;
        uint32_t cp;
        int len;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                return -1;
            p++;
            n++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return -1;
        }
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp <= 0x9f))
            return -1;
        p += len;
        n++;
    }
    return n;
}

/* Checks values[i] against question q; *stored is what is kept (a
 * choice's text, the text itself, or "" for no answer). */
static int check_answer(const Empq__RatingQuestion *q, const char *v, const char **stored,
                        empq_error *err)
{
    *stored = "";
    if (v == NULL || v[0] == '\0') {
        if (q->required)
            return empq_error_set(err, EMPQ_EINVAL, "question '%s' needs an answer", q->id);
        return EMPQ_OK;
    }
    if (q->type != NULL && strcmp(q->type, "choice") == 0) {
        char *end = NULL;
        unsigned long i = v[0] >= '0' && v[0] <= '9' && strlen(v) <= 3 ? strtoul(v, &end, 10) : 0;
        if (end == NULL || *end != '\0' || i >= q->n_choices)
            return empq_error_set(err, EMPQ_EINVAL, "question '%s': the answer is not one of its %zu choices",
                                  q->id, q->n_choices);
        *stored = q->choices[i];
        return EMPQ_OK;
    }
    long n = text_chars(v);
    uint32_t max = q->has_max_length && q->max_length > 0 ? q->max_length : 500;
    if (n < 0)
        return empq_error_set(err, EMPQ_EINVAL,
                              "question '%s': the answer is not UTF-8 text (or holds control characters)",
                              q->id);
    if ((unsigned long)n > max)
        return empq_error_set(err, EMPQ_EINVAL, "question '%s': the answer is %ld characters long, at most %" PRIu32,
                              q->id, n, max);
    *stored = v;
    return EMPQ_OK;
}

int empq_ratings_finish(empq_store *s, const char *run_id, const char *participant,
                        const Empq__RatingSpec *spec, const char *const *values, uint64_t now_ms,
                        int *outcome, empq_error *err)
{
    *outcome = EMPQ_RATINGS_UNKNOWN;
    size_t nq = spec != NULL ? spec->n_questions : 0;
    if (nq * 2 + 1 > EVAL_MAX_EXTRA)
        return empq_error_set(err, EMPQ_EINVAL, "at most %d questions", (EVAL_MAX_EXTRA - 1) / 2);
    if (!empq_ratings_valid_id(participant))
        return EMPQ_OK;
    const char *extra[EVAL_MAX_EXTRA] = {participant};
    for (size_t i = 0; i < nq; i++) {
        int rc = check_answer(spec->questions[i], values != NULL ? values[i] : NULL, &extra[2 + 2 * i], err);
        if (rc != EMPQ_OK)
            return rc;
        extra[1 + 2 * i] = spec->questions[i]->id;
    }
    return simple(s, finish_lua, "finish", run_id, now_ms, extra, (int)(1 + 2 * nq), outcome, err);
}

int empq_ratings_reclaim(empq_store *s, const char *run_id, uint64_t now_ms, size_t *n,
                         empq_error *err)
{
    redisReply *r = eval(s, reclaim_lua, run_id, now_ms, NULL, 0, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = r->type == REDIS_REPLY_INTEGER ? EMPQ_OK : bad_reply(err, "reclaim");
    if (n != NULL)
        *n = r->type == REDIS_REPLY_INTEGER ? (size_t)r->integer : 0;
    freeReplyObject(r);
    return rc;
}

/* ==================== pages ==================== */

void empq_ratings_page_clear(empq_ratings_page *pg)
{
    if (pg == NULL)
        return;
    free(pg->emotion);
    free(pg->situation);
    free(pg->prompt);
    free(pg->response);
    free(pg->completion_code);
    memset(pg, 0, sizeof *pg);
}

/* Parses a slot definition "c b r e0 e1 ..." into its fields; entries
 * (may be NULL) receives up to max entries. Returns the entry count, or -1. */
static long parse_def(const char *def, uint32_t *cond, uint32_t *batch, uint32_t *replica,
                      int32_t *entries, size_t max)
{
    const char *q = def;
    char *end = NULL;
    long head[3];
    for (int i = 0; i < 3; i++) {
        head[i] = strtol(q, &end, 10);
        if (end == q || head[i] < 0)
            return -1;
        q = end;
    }
    *cond = (uint32_t)head[0];
    *batch = (uint32_t)head[1];
    *replica = (uint32_t)head[2];
    long n = 0;
    for (;;) {
        while (*q == ' ')
            q++;
        if (*q == '\0')
            break;
        long e = strtol(q, &end, 10);
        if (end == q || e < -3)
            return -1;
        if (entries != NULL && (size_t)n < max)
            entries[n] = (int32_t)e;
        n++;
        q = end;
    }
    return n;
}

/* Reads plan fields (HMGET) into vals (caller frees the reply). */
static redisReply *plan_fields(empq_store *s, const char *run_id, const char *const *fields,
                               int n, empq_error *err)
{
    char k[260];
    snprintf(k, sizeof k, "empq:run:%s:plan", run_id);
    const char *argv[16] = {"HMGET", k};
    for (int i = 0; i < n && i < 14; i++)
        argv[2 + i] = fields[i];
    redisReply *r = rcmd(s, 2 + n, argv, NULL, err);
    if (r != NULL && (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n)) {
        freeReplyObject(r);
        bad_reply(err, "HMGET plan");
        return NULL;
    }
    return r;
}

/* A prompt and the response of condition cond to it (sample 0). */
static int load_item(empq_store *s, const char *run_id, uint32_t prompt, uint32_t cond,
                     empq_ratings_page *pg, empq_error *err)
{
    const char *f[] = {"n_models", "samples"};
    redisReply *r = plan_fields(s, run_id, f, 2, err);
    if (r == NULL)
        return err->code != 0 ? err->code : EMPQ_ESTORE;
    uint64_t n_models = r->element[0]->type == REDIS_REPLY_STRING ? strtoull(r->element[0]->str, NULL, 10) : 0;
    uint64_t samples = r->element[1]->type == REDIS_REPLY_STRING ? strtoull(r->element[1]->str, NULL, 10) : 1;
    freeReplyObject(r);
    if (n_models == 0 || samples == 0)
        return empq_error_set(err, EMPQ_EPARSE, "run %s: the plan has no model count", run_id);
    uint64_t job = ((uint64_t)prompt * n_models + cond) * samples;
    char pk[260], rk[260], pi[24], ji[24];
    snprintf(pk, sizeof pk, "empq:run:%s:prompts", run_id);
    snprintf(rk, sizeof rk, "empq:run:%s:results", run_id);
    snprintf(pi, sizeof pi, "%" PRIu32, prompt);
    snprintf(ji, sizeof ji, "%" PRIu64, job);
    const char *a1[] = {"HGET", pk, pi};
    const char *a2[] = {"HGET", rk, ji};
    redisReply *rp = rcmd(s, 3, a1, NULL, err);
    if (rp == NULL)
        return EMPQ_ESTORE;
    redisReply *rr = rcmd(s, 3, a2, NULL, err);
    if (rr == NULL) {
        freeReplyObject(rp);
        return EMPQ_ESTORE;
    }
    int rc = EMPQ_OK;
    Empq__Prompt *p = NULL;
    Empq__Result *res = NULL;
    if (rp->type == REDIS_REPLY_STRING)
        p = empq__prompt__unpack(NULL, rp->len, (const uint8_t *)rp->str);
    if (rr->type == REDIS_REPLY_STRING)
        res = empq__result__unpack(NULL, rr->len, (const uint8_t *)rr->str);
    if (p == NULL || res == NULL)
        rc = empq_error_set(err, EMPQ_EPARSE, "run %s: prompt %" PRIu32 " or its response (job %" PRIu64 ") is missing or does not decode",
                            run_id, prompt, job);
    else {
        pg->emotion = empq_strdup(p->emotion);
        pg->situation = empq_strdup(p->situation != NULL ? p->situation : "");
        pg->prompt = empq_strdup(p->prompt);
        pg->response = empq_strdup(res->gen != NULL && res->gen->text != NULL ? res->gen->text : "");
        if (pg->emotion == NULL || pg->situation == NULL || pg->prompt == NULL || pg->response == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
    }
    if (p != NULL)
        empq__prompt__free_unpacked(p, NULL);
    if (res != NULL)
        empq__result__free_unpacked(res, NULL);
    freeReplyObject(rp);
    freeReplyObject(rr);
    return rc;
}

int empq_ratings_view(empq_store *s, const char *run_id, const char *participant,
                      uint64_t now_ms, empq_ratings_page *pg, empq_error *err)
{
    memset(pg, 0, sizeof *pg);
    pg->kind = EMPQ_PAGE_UNKNOWN;
    if (!empq_ratings_valid_id(participant))
        return EMPQ_OK;
    const char *extra[] = {participant};
    redisReply *r = eval(s, view_lua, run_id, now_ms, extra, 1, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    int rc = EMPQ_OK;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING) {
        rc = bad_reply(err, "view");
        goto out;
    }
    const char *o = r->element[0]->str;
    if (strcmp(o, "unknown") == 0)
        goto out;
    if (strcmp(o, "expired") == 0) {
        pg->kind = EMPQ_PAGE_EXPIRED;
        if (r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING)
            pg->slot = (uint32_t)strtoul(r->element[1]->str, NULL, 10);
        goto out;
    }
    if (r->elements != 9) {
        rc = bad_reply(err, "view");
        goto out;
    }
    for (size_t i = 1; i < 9; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            rc = bad_reply(err, "view");
            goto out;
        }
    pg->slot = (uint32_t)strtoul(r->element[1]->str, NULL, 10);
    const char *state = r->element[2]->str;
    pg->position = (uint32_t)strtoul(r->element[3]->str, NULL, 10);
    pg->n = (uint32_t)strtoul(r->element[4]->str, NULL, 10);
    int started = strcmp(r->element[5]->str, "1") == 0;
    pg->prolific = strcmp(r->element[8]->str, "prolific") == 0;
    pg->completion_code = empq_strdup(r->element[7]->str);
    if (pg->completion_code == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
        goto out;
    }
    if (strcmp(state, "done") == 0) {
        pg->kind = EMPQ_PAGE_DONE;
        goto out;
    }
    if (strcmp(state, "questions") == 0) {
        pg->kind = EMPQ_PAGE_QUESTIONS;
        goto out;
    }
    if (!started) {
        pg->kind = EMPQ_PAGE_INSTRUCTIONS;
        goto out;
    }
    uint32_t cond, batch, replica;
    int32_t entries[256];
    long n = parse_def(r->element[6]->str, &cond, &batch, &replica, entries, 256);
    if (n < 0 || n > 256 || pg->position >= (uint32_t)n) {
        rc = empq_error_set(err, EMPQ_EPARSE, "run %s: slot %" PRIu32 " has a bad plan entry",
                            run_id, pg->slot);
        goto out;
    }
    pg->kind = EMPQ_PAGE_ITEM;
    int32_t e = entries[pg->position];
    if (EMPQ_ASSIGN_IS_CHECK(e)) {
        pg->is_check = 1;
        pg->emotion = empq_strdup("attention check");
        pg->situation = empq_strdup(empq_assign_check_situation());
        pg->prompt = empq_strdup(empq_assign_check_prompt());
        pg->response = empq_strdup(empq_assign_check_response(EMPQ_ASSIGN_CHECK_EXPECT(e)));
        if (pg->emotion == NULL || pg->situation == NULL || pg->prompt == NULL || pg->response == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
    } else {
        rc = load_item(s, run_id, (uint32_t)e, cond, pg, err);
    }
out:
    freeReplyObject(r);
    if (rc != EMPQ_OK)
        empq_ratings_page_clear(pg);
    return rc;
}

/* ==================== counts ==================== */

int empq_ratings_counts_get(empq_store *s, const char *run_id, uint64_t now_ms,
                            empq_ratings_counts *c, empq_error *err)
{
    memset(c, 0, sizeof *c);
    int rc = empq_ratings_reclaim(s, run_id, now_ms, NULL, err);
    if (rc != EMPQ_OK)
        return rc;
    const char *f[] = {"n_slots", "n_conditions"};
    redisReply *r = plan_fields(s, run_id, f, 2, err);
    if (r == NULL)
        return EMPQ_ESTORE;
    if (r->element[1]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return empq_error_set(err, EMPQ_ENOTFOUND, "run %s has no rating plan (empq assign)", run_id);
    }
    c->slots = strtoull(r->element[0]->str, NULL, 10);
    uint64_t nc = strtoull(r->element[1]->str, NULL, 10);
    freeReplyObject(r);
    for (uint64_t i = 0; i < nc; i++) {
        char k[260];
        snprintf(k, sizeof k, "empq:run:%s:open:%" PRIu64, run_id, i);
        const char *a[] = {"ZCARD", k};
        if ((r = rcmd(s, 2, a, NULL, err)) == NULL)
            return EMPQ_ESTORE;
        c->open += r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
        freeReplyObject(r);
    }
    char k[260];
    snprintf(k, sizeof k, "empq:run:%s:active", run_id);
    const char *a[] = {"ZCARD", k};
    if ((r = rcmd(s, 2, a, NULL, err)) == NULL)
        return EMPQ_ESTORE;
    c->active = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
    freeReplyObject(r);
    snprintf(k, sizeof k, "empq:run:%s:stats", run_id);
    const char *b[] = {"HMGET", k, "done", "claimed", "reclaimed", "ratings"};
    if ((r = rcmd(s, 6, b, NULL, err)) == NULL)
        return EMPQ_ESTORE;
    uint64_t *dst[] = {&c->done, &c->claimed, &c->reclaimed, &c->ratings};
    for (size_t i = 0; i < 4 && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            *dst[i] = strtoull(r->element[i]->str, NULL, 10);
    freeReplyObject(r);
    return EMPQ_OK;
}

/* ==================== export ==================== */

typedef struct xslot {
    int present;    /* claimed (active or done) */
    int done;
    uint32_t cond, batch, replica;
    uint32_t n, next;
    int32_t *entries;
    int *rating;            /* [n], 0 = none */
    uint64_t *answered, *shown;
    char *pid, *study, *session, *route;
    uint64_t claimed, started, done_ms, consent_ms;
    uint32_t checks, checks_passed;
    int in_questions;       /* every dialogue rated, the questions not sent */
    char **answers;         /* [questions of the spec]: the end-of-study answers, NULL: none */
} xslot;

static int csvt(empq_buf *b, uint64_t ms, int last)
{
    char t[40];
    if (ms == 0)
        return empq_buf_csv_field(b, "", last);
    return empq_buf_csv_field(b, empq_export_iso8601(ms, t, sizeof t), last);
}

static const char *slot_status(const xslot *x)
{
    return x->done ? "done" : x->in_questions ? "questions" : "active";
}

/* answers.csv: one row per participant exported (finished; with partial,
 * every claimed slot): how they came, when they agreed, their answers. */
static int answers_csv(empq_buf *b, const xslot *xs, size_t n_slots, char *const *cond,
                       const Empq__RatingSpec *qs, int include_partial)
{
    static const char *const head[] = {"participant", "slot", "condition", "status", "route",
                                       "study_id", "session_id", "consented_at", "done_at"};
    size_t nq = qs != NULL ? qs->n_questions : 0;
    int rc = EMPQ_OK;
    for (size_t i = 0; i < sizeof head / sizeof head[0] && rc == EMPQ_OK; i++)
        rc = empq_buf_csv_field(b, head[i], nq == 0 && i + 1 == sizeof head / sizeof head[0]);
    for (size_t j = 0; j < nq && rc == EMPQ_OK; j++)
        rc = empq_buf_csv_field(b, qs->questions[j]->id, j + 1 == nq);
    for (size_t i = 0; i < n_slots && rc == EMPQ_OK; i++) {
        const xslot *x = &xs[i];
        if (!x->present || (!x->done && !include_partial))
            continue;
        rc = empq_buf_csv_field(b, x->pid, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(b, i, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(b, cond[x->cond], 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(b, slot_status(x), 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(b, x->route != NULL ? x->route : "", 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(b, x->study != NULL ? x->study : "", 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(b, x->session != NULL ? x->session : "", 0);
        if (rc == EMPQ_OK) rc = csvt(b, x->consent_ms, 0);
        if (rc == EMPQ_OK) rc = csvt(b, x->done_ms, nq == 0);
        for (size_t j = 0; j < nq && rc == EMPQ_OK; j++)
            rc = empq_buf_csv_field(b, x->answers != NULL && x->answers[j] != NULL ? x->answers[j] : "",
                                    j + 1 == nq);
    }
    return rc;
}

static void xslot_free(xslot *x, size_t nq)
{
    for (size_t i = 0; x->answers != NULL && i < nq; i++)
        free(x->answers[i]);
    free(x->answers);
    free(x->route);
    free(x->entries);
    free(x->rating);
    free(x->answered);
    free(x->shown);
    free(x->pid);
    free(x->study);
    free(x->session);
}

/* Fills x from the slot's HGETALL reply; q: the run's questions (may be NULL). */
static int fill_slot(xslot *x, const redisReply *r, const Empq__RatingSpec *q)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return EMPQ_OK;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = r->element[i]->str, *v = r->element[i + 1]->str;
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "pid") == 0)
            x->pid = empq_strdup(v);
        else if (strcmp(k, "study") == 0)
            x->study = empq_strdup(v);
        else if (strcmp(k, "session") == 0)
            x->session = empq_strdup(v);
        else if (strcmp(k, "route") == 0)
            x->route = empq_strdup(v);
        else if (strcmp(k, "consent_ms") == 0)
            x->consent_ms = strtoull(v, NULL, 10);
        else if (strncmp(k, "q:", 2) == 0 && q != NULL && x->answers != NULL) {
            for (size_t j = 0; j < q->n_questions; j++)
                if (strcmp(q->questions[j]->id, k + 2) == 0 && x->answers[j] == NULL)
                    x->answers[j] = empq_strdup(v);
        } else if (strcmp(k, "state") == 0) {
            x->done = strcmp(v, "done") == 0;
            x->in_questions = strcmp(v, "questions") == 0;
        }
        else if (strcmp(k, "next") == 0)
            x->next = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(k, "claimed") == 0)
            x->claimed = strtoull(v, NULL, 10);
        else if (strcmp(k, "started_ms") == 0)
            x->started = strtoull(v, NULL, 10);
        else if (strcmp(k, "done_ms") == 0)
            x->done_ms = strtoull(v, NULL, 10);
        else if (strncmp(k, "a:", 2) == 0 || strncmp(k, "shown:", 6) == 0) {
            int ans = k[0] == 'a';
            unsigned long pos = strtoul(k + (ans ? 2 : 6), NULL, 10);
            if (pos >= x->n)
                continue;
            if (ans) {
                char *end = NULL;
                long rt = strtol(v, &end, 10);
                x->rating[pos] = rt >= 1 && rt <= 3 ? (int)rt : 0;
                x->answered[pos] = strtoull(end, NULL, 10);
            } else {
                x->shown[pos] = strtoull(v, NULL, 10);
            }
        }
    }
    x->present = x->pid != NULL;
    return EMPQ_OK;
}

static int write_out(const char *dir, const char *name, const empq_buf *b, empq_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return empq_write_file_atomic(path, b->data != NULL ? b->data : "", b->len, err);
}

/* Reads the n_slots slots of a run into xs (zeroed by the caller): the
 * plan definition and state of each (with the answers to the questions of
 * qs, which may be NULL), one pipeline of HGET + HGETALL per slot (one
 * round trip). A slot outside the plan's conditions, batches or
 * replicas is left not present. EMPQ_OK, EMPQ_ESTORE, EMPQ_EPARSE (a slot
 * definition does not decode), EMPQ_ENOMEM; err says which. */
static int read_slots(empq_store *s, const char *run_id, xslot *xs, size_t n_slots, uint32_t nc,
                      uint32_t n_batches, uint32_t raters, const Empq__RatingSpec *qs, empq_error *err)
{
    int rc = EMPQ_OK;
    redisContext *ctx = empq_store_redis(s);
    if (ctx == NULL || ctx->err != 0) {
        rc = empq_store_ping(s) == EMPQ_OK ? EMPQ_OK : EMPQ_ESTORE;
        ctx = empq_store_redis(s);
        if (rc != EMPQ_OK)
            return empq_error_set(err, rc, "redis %s: %s", empq_store_url(s), empq_store_errstr(s));
    }
    char pk[260];
    snprintf(pk, sizeof pk, "empq:run:%s:plan", run_id);
    for (size_t i = 0; i < n_slots; i++) {
        char fld[32], sk[300];
        snprintf(fld, sizeof fld, "s:%zu", i);
        snprintf(sk, sizeof sk, "empq:run:%s:slot:%zu", run_id, i);
        redisAppendCommand(ctx, "HGET %s %s", pk, fld);
        redisAppendCommand(ctx, "HGETALL %s", sk);
    }
    for (size_t i = 0; i < n_slots; i++) {
        redisReply *d = NULL, *h = NULL;
        if (redisGetReply(ctx, (void **)&d) != REDIS_OK || redisGetReply(ctx, (void **)&h) != REDIS_OK) {
            if (d != NULL)
                freeReplyObject(d);
            return empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s), ctx->errstr);
        }
        xslot *x = &xs[i];
        long n = d->type == REDIS_REPLY_STRING ? parse_def(d->str, &x->cond, &x->batch, &x->replica, NULL, 0) : -1;
        if (n >= 0) {
            x->n = (uint32_t)n;
            x->entries = calloc((size_t)n + 1, sizeof *x->entries);
            x->rating = calloc((size_t)n + 1, sizeof *x->rating);
            x->answered = calloc((size_t)n + 1, sizeof *x->answered);
            x->shown = calloc((size_t)n + 1, sizeof *x->shown);
            x->answers = calloc((qs != NULL ? qs->n_questions : 0) + 1, sizeof *x->answers);
            if (x->entries == NULL || x->rating == NULL || x->answered == NULL || x->shown == NULL ||
                x->answers == NULL)
                rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
            else
                parse_def(d->str, &x->cond, &x->batch, &x->replica, x->entries, (size_t)n);
            if (rc == EMPQ_OK)
                fill_slot(x, h, qs);
        } else if (rc == EMPQ_OK) {
            rc = empq_error_set(err, EMPQ_EPARSE, "run %s: slot %zu of the plan does not decode", run_id, i);
        }
        if (x->cond >= nc || x->batch >= n_batches || x->replica >= raters)
            x->present = 0;
        freeReplyObject(d);
        freeReplyObject(h);
    }
    return rc;
}

/* Attention checks answered and passed by slot x. */
static void count_checks(xslot *x)
{
    x->checks = x->checks_passed = 0;
    for (uint32_t p = 0; p < x->n; p++)
        if (EMPQ_ASSIGN_IS_CHECK(x->entries[p]) && x->rating[p] != 0) {
            x->checks++;
            x->checks_passed += x->rating[p] == EMPQ_ASSIGN_CHECK_EXPECT(x->entries[p]);
        }
}

int empq_ratings_export(empq_store *s, const char *run_id, const char *dir, int include_partial,
                        empq_ratings_export_stats *st, empq_error *err)
{
    empq_ratings_export_stats dummy;
    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);
    Empq__Run *run = NULL;
    int rc = empq_store_run_get(s, run_id, &run);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "run %s: %s", run_id, empq_store_errstr(s));
    const char *f[] = {"n_conditions", "n_slots", "batches", "raters", "n_models", "samples"};
    redisReply *r = plan_fields(s, run_id, f, 6, err);
    if (r == NULL) {
        empq__run__free_unpacked(run, NULL);
        return EMPQ_ESTORE;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        empq__run__free_unpacked(run, NULL);
        return empq_error_set(err, EMPQ_ENOTFOUND, "run %s has no rating plan (empq assign)", run_id);
    }
    uint64_t v[6] = {0};
    for (int i = 0; i < 6; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_STRING ? strtoull(r->element[i]->str, NULL, 10) : 0;
    freeReplyObject(r);
    uint32_t nc = (uint32_t)v[0], n_batches = (uint32_t)v[2], raters = (uint32_t)v[3];
    size_t n_slots = (size_t)v[1];
    uint64_t n_models = v[4], samples = v[5] ? v[5] : 1;
    const Empq__RatingSpec *qs = run->spec->rating;
    size_t nq = qs != NULL ? qs->n_questions : 0;
    char **cond = calloc(nc, sizeof *cond);
    xslot *xs = calloc(n_slots ? n_slots : 1, sizeof *xs);
    Empq__Prompt **prompts = calloc(run->n_prompts ? run->n_prompts : 1, sizeof *prompts);
    uint32_t *pidx = calloc(run->n_prompts ? run->n_prompts : 1, sizeof *pidx);
    Empq__Result **results = NULL;
    size_t n_results = 0;
    const char **resp = NULL;
    empq_buf wide = {0}, lng = {0}, parts = {0}, ans = {0};
    if (cond == NULL || xs == NULL || prompts == NULL || pidx == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "ratings export: out of memory");
        goto out;
    }
    for (uint32_t c = 0; c < nc && rc == EMPQ_OK; c++) {
        char fld[32];
        snprintf(fld, sizeof fld, "cond:%" PRIu32, c);
        const char *ff[] = {fld};
        if ((r = plan_fields(s, run_id, ff, 1, err)) == NULL) {
            rc = EMPQ_ESTORE;
            break;
        }
        cond[c] = empq_strdup(r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "?");
        freeReplyObject(r);
        if (cond[c] == NULL)
            rc = empq_error_set(err, EMPQ_ENOMEM, "ratings export: out of memory");
    }
    if (rc != EMPQ_OK)
        goto out;

    /* the slots: plan definitions and states, one pipeline */
    if ((rc = read_slots(s, run_id, xs, n_slots, nc, n_batches, raters, qs, err)) != EMPQ_OK)
        goto out;

    /* prompts and responses */
    for (uint32_t i = 0; i < run->n_prompts; i++)
        pidx[i] = i;
    if ((rc = empq_store_prompts_get(s, run_id, pidx, run->n_prompts, prompts)) != EMPQ_OK ||
        (rc = empq_store_results_all(s, run_id, &results, &n_results)) != EMPQ_OK) {
        empq_error_set(err, rc, "run %s: %s", run_id, empq_store_errstr(s));
        goto out;
    }
    resp = calloc((size_t)run->n_prompts * nc + 1, sizeof *resp);
    if (resp == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "ratings export: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_results; i++) {
        const Empq__Result *x = results[i];
        if (x->prompt < run->n_prompts && x->model < nc && x->sample == 0 && x->gen != NULL &&
            (uint64_t)x->job == ((uint64_t)x->prompt * n_models + x->model) * samples)
            resp[(size_t)x->prompt * nc + x->model] = x->gen->text;
    }

    /* attention checks per slot */
    for (size_t i = 0; i < n_slots; i++) {
        xslot *x = &xs[i];
        st->slots++;
        if (!x->present)
            continue;
        count_checks(x);
        if (x->done)
            st->done++;
        else
            st->partial++;
        st->checks += x->checks;
        st->checks_failed += x->checks - x->checks_passed;
    }

    /* ratings-long.csv */
    static const char *const lh[] = {"participant", "condition", "batch", "item", "position",
                                     "rating", "rating_label", "emotion", "sentiment",
                                     "prompt_index", "slot", "replica", "shown_at", "answered_at",
                                     "response_ms", "checks", "checks_passed", "status",
                                     "study_id", "session_id"};
    size_t nlh = sizeof lh / sizeof lh[0];
    for (size_t i = 0; i < nlh && rc == EMPQ_OK; i++)
        rc = empq_buf_csv_field(&lng, lh[i], i + 1 == nlh);
    for (size_t i = 0; i < n_slots && rc == EMPQ_OK; i++) {
        const xslot *x = &xs[i];
        if (!x->present || (!x->done && !include_partial))
            continue;
        for (uint32_t p = 0; p < x->n && rc == EMPQ_OK; p++) {
            int32_t e = x->entries[p];
            if (EMPQ_ASSIGN_IS_CHECK(e) || x->rating[p] == 0 || (uint32_t)e >= run->n_prompts)
                continue;
            const Empq__Prompt *pr = prompts[e];
            st->ratings++;
            rc = empq_buf_csv_field(&lng, x->pid, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, cond[x->cond], 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, x->batch, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, pr != NULL ? pr->id : "", 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, p, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, (uint64_t)x->rating[p], 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, empq_assign_rating_label(x->rating[p]), 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, pr != NULL ? pr->emotion : "", 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, pr != NULL ? pr->sentiment : "", 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, (uint64_t)e, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, i, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, x->replica, 0);
            if (rc == EMPQ_OK) rc = csvt(&lng, x->shown[p], 0);
            if (rc == EMPQ_OK) rc = csvt(&lng, x->answered[p], 0);
            if (rc == EMPQ_OK) {
                if (x->shown[p] != 0 && x->answered[p] >= x->shown[p])
                    rc = empq_buf_csv_u64(&lng, x->answered[p] - x->shown[p], 0);
                else
                    rc = empq_buf_csv_field(&lng, "", 0);
            }
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, x->checks, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&lng, x->checks_passed, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, x->done ? "done" : "active", 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, x->study, 0);
            if (rc == EMPQ_OK) rc = empq_buf_csv_field(&lng, x->session, 1);
        }
    }

    /* ratings.csv: the Welivita-Pu layout */
    rc = rc == EMPQ_OK ? empq_buf_csv_field(&wide, "part_no", 0) : rc;
    for (uint32_t c = 0; c < nc && rc == EMPQ_OK; c++) {
        char h[160];
        snprintf(h, sizeof h, "annotator_%s", cond[c]);
        rc = empq_buf_csv_field(&wide, h, 0);
    }
    if (rc == EMPQ_OK && raters > 1)
        rc = empq_buf_csv_field(&wide, "replica", 0);
    const char *mid[] = {"dialog_id", "emotion", "sentiment", "situation", "speaker_uttr"};
    for (size_t i = 0; i < 5 && rc == EMPQ_OK; i++)
        rc = empq_buf_csv_field(&wide, mid[i], 0);
    for (int part = 0; part < 2; part++)
        for (uint32_t c = 0; c < nc && rc == EMPQ_OK; c++) {
            char h[160];
            snprintf(h, sizeof h, "%s_%s", part == 0 ? "response" : "rating", cond[c]);
            rc = empq_buf_csv_field(&wide, h, part == 1 && c + 1 == nc);
        }
    /* rows: batch, replica, then the batch's prompts by index */
    uint32_t *bp = calloc(run->n_prompts ? run->n_prompts : 1, sizeof *bp);
    if (bp == NULL && rc == EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "ratings export: out of memory");
    for (uint32_t b = 0; b < n_batches && rc == EMPQ_OK; b++) {
        for (uint32_t k = 0; k < raters && rc == EMPQ_OK; k++) {
            const xslot *row[EMPQ_ASSIGN_MAX_CONDITIONS] = {0};
            for (uint32_t c = 0; c < nc; c++) {
                size_t si = ((size_t)c * n_batches + b) * raters + k;
                if (si < n_slots && xs[si].present && (xs[si].done || include_partial))
                    row[c] = &xs[si];
            }
            /* the batch's prompts: from the slot of condition 0 (the same in every condition) */
            size_t si0 = (size_t)b * raters + k;
            const xslot *x0 = si0 < n_slots ? &xs[si0] : NULL;
            size_t nb = 0;
            for (uint32_t p = 0; x0 != NULL && p < x0->n; p++)
                if (!EMPQ_ASSIGN_IS_CHECK(x0->entries[p]) && (uint32_t)x0->entries[p] < run->n_prompts)
                    bp[nb++] = (uint32_t)x0->entries[p];
            for (size_t a = 1; a < nb; a++) /* insertion sort: batches are small */
                for (size_t z = a; z > 0 && bp[z - 1] > bp[z]; z--) {
                    uint32_t t = bp[z];
                    bp[z] = bp[z - 1];
                    bp[z - 1] = t;
                }
            for (size_t q = 0; q < nb && rc == EMPQ_OK; q++) {
                uint32_t pi = bp[q];
                const Empq__Prompt *pr = prompts[pi];
                st->dialogues++;
                rc = empq_buf_csv_u64(&wide, b, 0);
                for (uint32_t c = 0; c < nc && rc == EMPQ_OK; c++)
                    rc = empq_buf_csv_field(&wide, row[c] != NULL ? row[c]->pid : "", 0);
                if (rc == EMPQ_OK && raters > 1)
                    rc = empq_buf_csv_u64(&wide, k, 0);
                if (rc == EMPQ_OK) rc = empq_buf_csv_field(&wide, pr != NULL ? pr->id : "", 0);
                if (rc == EMPQ_OK) rc = empq_buf_csv_field(&wide, pr != NULL ? pr->emotion : "", 0);
                if (rc == EMPQ_OK) rc = empq_buf_csv_field(&wide, pr != NULL ? pr->sentiment : "", 0);
                if (rc == EMPQ_OK) rc = empq_buf_csv_field(&wide, pr != NULL ? pr->situation : "", 0);
                if (rc == EMPQ_OK) rc = empq_buf_csv_field(&wide, pr != NULL ? pr->prompt : "", 0);
                for (uint32_t c = 0; c < nc && rc == EMPQ_OK; c++)
                    rc = empq_buf_csv_field(&wide, resp[(size_t)pi * nc + c], 0);
                for (uint32_t c = 0; c < nc && rc == EMPQ_OK; c++) {
                    int rt = 0;
                    const xslot *x = row[c];
                    for (uint32_t p = 0; x != NULL && p < x->n; p++)
                        if (x->entries[p] == (int32_t)pi)
                            rt = x->rating[p];
                    if (rt != 0)
                        rc = empq_buf_csv_u64(&wide, (uint64_t)rt, c + 1 == nc);
                    else
                        rc = empq_buf_csv_field(&wide, "", c + 1 == nc);
                }
            }
        }
    }
    free(bp);

    /* participants.csv */
    static const char *const ph[] = {"slot", "condition", "batch", "replica", "participant",
                                     "study_id", "session_id", "status", "answered", "entries",
                                     "checks", "checks_passed", "claimed_at", "started_at",
                                     "done_at", "duration_s"};
    size_t nph = sizeof ph / sizeof ph[0];
    for (size_t i = 0; i < nph && rc == EMPQ_OK; i++)
        rc = empq_buf_csv_field(&parts, ph[i], i + 1 == nph);
    for (size_t i = 0; i < n_slots && rc == EMPQ_OK; i++) {
        const xslot *x = &xs[i];
        if (!x->present)
            continue;
        rc = empq_buf_csv_u64(&parts, i, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(&parts, cond[x->cond], 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&parts, x->batch, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&parts, x->replica, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(&parts, x->pid, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(&parts, x->study, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(&parts, x->session, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_field(&parts, slot_status(x), 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&parts, x->next, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&parts, x->n, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&parts, x->checks, 0);
        if (rc == EMPQ_OK) rc = empq_buf_csv_u64(&parts, x->checks_passed, 0);
        if (rc == EMPQ_OK) rc = csvt(&parts, x->claimed, 0);
        if (rc == EMPQ_OK) rc = csvt(&parts, x->started, 0);
        if (rc == EMPQ_OK) rc = csvt(&parts, x->done_ms, 0);
        if (rc == EMPQ_OK) {
            if (x->done && x->done_ms >= x->claimed) {
                char t[32];
                snprintf(t, sizeof t, "%.3f", (double)(x->done_ms - x->claimed) / 1000.0);
                rc = empq_buf_csv_field(&parts, t, 1);
            } else {
                rc = empq_buf_csv_field(&parts, "", 1);
            }
        }
    }
    if (rc == EMPQ_OK)
        rc = answers_csv(&ans, xs, n_slots, cond, qs, include_partial);
    if (rc == EMPQ_ENOMEM)
        empq_error_set(err, rc, "ratings export: out of memory");
    if (rc == EMPQ_OK)
        rc = empq_mkdirs(dir, err);
    if (rc == EMPQ_OK)
        rc = write_out(dir, "ratings.csv", &wide, err);
    if (rc == EMPQ_OK)
        rc = write_out(dir, "ratings-long.csv", &lng, err);
    if (rc == EMPQ_OK)
        rc = write_out(dir, "participants.csv", &parts, err);
    if (rc == EMPQ_OK)
        rc = write_out(dir, "answers.csv", &ans, err);
out:
    for (uint32_t c = 0; c < nc && cond != NULL; c++)
        free(cond[c]);
    free(cond);
    for (size_t i = 0; i < n_slots && xs != NULL; i++)
        xslot_free(&xs[i], nq);
    free(xs);
    for (uint32_t i = 0; prompts != NULL && i < run->n_prompts; i++)
        if (prompts[i] != NULL)
            empq__prompt__free_unpacked(prompts[i], NULL);
    free(prompts);
    free(pidx);
    free((void *)resp);
    if (results != NULL)
        empq_store_free_results(results, n_results);
    empq_buf_free(&wide);
    empq_buf_free(&lng);
    empq_buf_free(&parts);
    empq_buf_free(&ans);
    empq__run__free_unpacked(run, NULL);
    return rc;
}

/* ==================== overview (read-only) ==================== */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds the reclaimed slots of P:abandoned (JSON of their fields) to ov. */
static void add_abandoned(empq_ratings_overview *ov, const redisReply *list, size_t *np)
{
    for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++) {
        json_t *j = json_loadb(list->element[i]->str, list->element[i]->len, 0, NULL);
        json_t *f = j != NULL ? json_object_get(j, "fields") : NULL;
        const char *cond = f != NULL ? json_string_value(json_object_get(f, "cond")) : NULL;
        const char *pid = f != NULL ? json_string_value(json_object_get(f, "pid")) : NULL;
        unsigned long c = cond != NULL ? strtoul(cond, NULL, 10) : ULONG_MAX;
        if (c < ov->n_conditions) {
            ov->cond[c].reclaimed++;
            empq_ratings_participant *p = &ov->part[(*np)++];
            p->pid = empq_strdup(pid != NULL ? pid : "?");
            p->cond = (uint32_t)c;
            p->slot = (uint32_t)json_integer_value(json_object_get(j, "slot"));
            p->state = EMPQ_RATINGS_P_RECLAIMED;
            const char *nx = json_string_value(json_object_get(f, "next"));
            p->answered = nx != NULL ? (uint32_t)strtoul(nx, NULL, 10) : 0;
            const char *cl = json_string_value(json_object_get(f, "claimed"));
            p->claimed_ms = cl != NULL ? strtoull(cl, NULL, 10) : 0;
            p->done_ms = (uint64_t)json_integer_value(json_object_get(j, "reclaimed_ms"));
        }
        json_decref(j);
    }
}

int empq_ratings_overview_get(empq_store *s, const char *run_id, uint64_t now_ms, empq_ratings_overview *ov,
                              empq_error *err)
{
    memset(ov, 0, sizeof *ov);
    const char *f[] = {"n_conditions", "n_slots", "batches", "raters", "timeout_ms"};
    redisReply *r = plan_fields(s, run_id, f, 5, err);
    if (r == NULL)
        return err->code != 0 ? err->code : EMPQ_ESTORE;
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return empq_error_set(err, EMPQ_ENOTFOUND, "run %s has no rating plan (empq assign)", run_id);
    }
    uint64_t v[5] = {0};
    for (int i = 0; i < 5; i++)
        v[i] = r->element[i]->type == REDIS_REPLY_STRING ? strtoull(r->element[i]->str, NULL, 10) : 0;
    freeReplyObject(r);
    uint32_t nc = (uint32_t)v[0];
    size_t n_slots = (size_t)v[1];
    ov->timeout_ms = v[4];
    int rc = EMPQ_OK;
    xslot *xs = calloc(n_slots ? n_slots : 1, sizeof *xs);
    uint64_t *times = NULL;
    size_t nt = 0;
    redisReply *extra = NULL;
    ov->cond = calloc(nc ? nc : 1, sizeof *ov->cond);
    if (xs == NULL || ov->cond == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
        goto out;
    }
    ov->n_conditions = nc;
    /* condition names, the idle slots and the reclaimed ones: one pipeline */
    {
        char pk[260], ak[260], lk[260], nowbuf[24];
        snprintf(pk, sizeof pk, "empq:run:%s:plan", run_id);
        snprintf(ak, sizeof ak, "empq:run:%s:active", run_id);
        snprintf(lk, sizeof lk, "empq:run:%s:abandoned", run_id);
        snprintf(nowbuf, sizeof nowbuf, "%" PRIu64, now_ms);
        redisContext *ctx = empq_store_redis(s);
        if (ctx == NULL) {
            rc = empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s), empq_store_errstr(s));
            goto out;
        }
        const char **argv = calloc((size_t)nc + 2, sizeof *argv);
        char (*names)[24] = calloc((size_t)nc + 1, sizeof *names);
        if (argv == NULL || names == NULL) {
            free(argv), free(names);
            rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
            goto out;
        }
        argv[0] = "HMGET";
        argv[1] = pk;
        for (uint32_t c = 0; c < nc; c++) {
            snprintf(names[c], sizeof names[c], "cond:%" PRIu32, c);
            argv[2 + c] = names[c];
        }
        redisAppendCommandArgv(ctx, (int)nc + 2, argv, NULL);
        redisAppendCommand(ctx, "ZRANGEBYSCORE %s -inf %s", ak, nowbuf);
        redisAppendCommand(ctx, "LRANGE %s 0 -1", lk);
        free(argv), free(names);
        redisReply *rep[3] = {NULL, NULL, NULL};
        for (int k = 0; k < 3; k++)
            if (redisGetReply(ctx, (void **)&rep[k]) != REDIS_OK) {
                for (int j = 0; j < k; j++)
                    freeReplyObject(rep[j]);
                rc = empq_error_set(err, EMPQ_ESTORE, "redis %s: %s", empq_store_url(s), ctx->errstr);
                goto out;
            }
        for (uint32_t c = 0; c < nc; c++)
            ov->cond[c].name = empq_strdup(rep[0]->type == REDIS_REPLY_ARRAY && c < rep[0]->elements &&
                                                   rep[0]->element[c]->type == REDIS_REPLY_STRING
                                               ? rep[0]->element[c]->str
                                               : "?");
        freeReplyObject(rep[0]);
        extra = rep[1]; /* idle past their deadline, not yet reclaimed */
        rc = read_slots(s, run_id, xs, n_slots, nc, (uint32_t)v[2], (uint32_t)v[3], NULL, err);
        if (rc != EMPQ_OK) {
            freeReplyObject(rep[2]);
            goto out;
        }
        size_t nab = rep[2]->type == REDIS_REPLY_ARRAY ? rep[2]->elements : 0;
        ov->part = calloc(n_slots + nab + 1, sizeof *ov->part);
        times = calloc(n_slots * 1 + 1, sizeof *times);
        if (ov->part == NULL || times == NULL) {
            freeReplyObject(rep[2]);
            rc = empq_error_set(err, EMPQ_ENOMEM, "ratings: out of memory");
            goto out;
        }
        add_abandoned(ov, rep[2], &ov->n_participants);
        freeReplyObject(rep[2]);
    }
    size_t tcap = n_slots + 1;
    for (size_t i = 0; i < n_slots; i++) {
        xslot *x = &xs[i];
        if (x->cond < nc)
            ov->cond[x->cond].slots++;
        if (!x->present)
            continue;
        count_checks(x);
        empq_ratings_condition *c = &ov->cond[x->cond];
        c->claimed++;
        c->checks += x->checks;
        c->checks_failed += x->checks - x->checks_passed;
        int idle = 0;
        for (size_t k = 0; extra->type == REDIS_REPLY_ARRAY && k < extra->elements; k++)
            idle |= strtoull(extra->element[k]->str, NULL, 10) == i;
        empq_ratings_participant *p = &ov->part[ov->n_participants++];
        p->pid = empq_strdup(x->pid);
        p->cond = x->cond;
        p->slot = (uint32_t)i;
        p->state = x->done           ? EMPQ_RATINGS_P_FINISHED
                   : idle              ? EMPQ_RATINGS_P_IDLE
                   : x->in_questions   ? EMPQ_RATINGS_P_QUESTIONS
                                       : EMPQ_RATINGS_P_ACTIVE;
        p->answered = x->done ? x->n : x->next;
        p->n = x->n;
        p->checks = x->checks;
        p->checks_passed = x->checks_passed;
        p->claimed_ms = x->claimed;
        p->done_ms = x->done_ms;
        c->finished += x->done != 0;
        c->idle += p->state == EMPQ_RATINGS_P_IDLE;
        /* time per dialogue: shown to answered, for the rated entries (not checks) */
        for (uint32_t k = 0; k < x->n; k++)
            if (!EMPQ_ASSIGN_IS_CHECK(x->entries[k]) && x->rating[k] != 0 && x->shown[k] != 0 &&
                x->answered[k] >= x->shown[k]) {
                if (nt == tcap) {
                    uint64_t *nv = realloc(times, 2 * tcap * sizeof *times);
                    if (nv == NULL)
                        break;
                    times = nv;
                    tcap *= 2;
                }
                times[nt++] = x->answered[k] - x->shown[k];
            }
    }
    if (nt > 0) {
        qsort(times, nt, sizeof *times, cmp_u64);
        ov->median_ms = nt % 2 ? (double)times[nt / 2] : ((double)times[nt / 2 - 1] + (double)times[nt / 2]) / 2.0;
    }
    ov->n_timed = nt;
out:
    if (extra != NULL)
        freeReplyObject(extra);
    for (size_t i = 0; xs != NULL && i < n_slots; i++)
        xslot_free(&xs[i], 0);
    free(xs);
    free(times);
    if (rc != EMPQ_OK)
        empq_ratings_overview_clear(ov);
    return rc;
}

void empq_ratings_overview_clear(empq_ratings_overview *ov)
{
    if (ov == NULL)
        return;
    for (size_t i = 0; ov->cond != NULL && i < ov->n_conditions; i++)
        free(ov->cond[i].name);
    for (size_t i = 0; ov->part != NULL && i < ov->n_participants; i++)
        free(ov->part[i].pid);
    free(ov->cond);
    free(ov->part);
    memset(ov, 0, sizeof *ov);
}
