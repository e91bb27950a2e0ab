/* batch_anthropic.c: Anthropic's Message Batches over the batch store. See batch.h.
 *
 * Matched against the API reference (docs.anthropic.com/en/api/creating-message-batches,
 * retrieving-, listing-, canceling-, deleting-message-batches, retrieving-message-batch-results)
 * and the SDKs' types (anthropics/anthropic-sdk-python, resources/messages/batches:
 * MessageBatch, MessageBatchRequestCounts, MessageBatchIndividualResponse):
 *   create   {"requests": [{"custom_id": ^[a-zA-Z0-9_-]{1,64}$, "params": {Messages body}}, ...]}
 *            (1 to 100,000 requests; custom_ids unique). params are checked as each
 *            request runs (an invalid one ends "errored"), as the API checks them.
 *   batch    {"id": "msgbatch_01...", "type": "message_batch", "processing_status":
 *             "in_progress" | "canceling" | "ended", "request_counts": {"processing",
 *             "succeeded", "errored", "canceled", "expired"}, "ended_at", "created_at",
 *             "expires_at", "archived_at", "cancel_initiated_at", "results_url"}
 *            (times RFC 3339; results_url null until ended, then this server's
 *            /v1/messages/batches/{id}/results on the Host the client used)
 *   results  JSONL, one line per request: {"custom_id": str, "result": {"type":
 *            "succeeded", "message": {Message}} | {"type": "errored", "error":
 *            {"type": "error", "error": {...}}} | {"type": "canceled"} | {"type": "expired"}}
 *   list     {"data": [...], "has_more", "first_id", "last_id"}, newest first,
 *            ?limit=1..1000 (20), ?after_id=, ?before_id=
 * Errors are the Messages endpoint's shape (anthropic.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anthropic.h"
#include "batch_internal.h"
#include "chat.h"
#include "empq/log.h"
#include "front.h"

#define ID_MAX 96
#define CUSTOM_ID_MAX 64

static int bad(fakellm_reply *out, unsigned status, const char *type, uint64_t rid, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int bad(fakellm_reply *out, unsigned status, const char *type, uint64_t rid, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fakellm_anthropic_error(out, status, type, msg, rid);
}

static json_t *time_or_null(uint64_t unix_ms)
{
    char t[48];
    return unix_ms ? json_string(fakellm_batch__rfc3339(t, sizeof(t), unix_ms)) : json_null();
}

static json_t *batch_json(const bb_batch *b, const char *host)
{
    uint64_t ended = 0;
    for (int s = 0; s < FAKELLM_BATCH_STATE_COUNT; s++)
        if (fakellm_batch_state_terminal((fakellm_batch_state)s) && b->at[s])
            ended = b->at[s];
    json_t *url = json_null();
    if (ended) {
        char u[256];
        snprintf(u, sizeof(u), "http://%s/v1/messages/batches/%s/results", host ? host : "127.0.0.1", b->id);
        url = json_string(u);
    }
    return json_pack("{s:s,s:s,s:s,s:{s:I,s:I,s:I,s:I,s:I},s:o,s:o,s:o,s:n,s:o,s:o}", "id", b->id, "type",
                     "message_batch", "processing_status", fakellm_batch_anthropic_status(b->state), "request_counts",
                     "processing", (json_int_t)b->counts[BB_PENDING], "succeeded",
                     (json_int_t)b->counts[BB_SUCCEEDED], "errored", (json_int_t)b->counts[BB_FAILED], "canceled",
                     (json_int_t)b->counts[BB_CANCELLED], "expired", (json_int_t)b->counts[BB_EXPIRED], "ended_at",
                     time_or_null(ended), "created_at", time_or_null(b->at[FAKELLM_BATCH_VALIDATING]), "expires_at",
                     time_or_null(b->expires_ms), "archived_at", "cancel_initiated_at",
                     time_or_null(b->at[FAKELLM_BATCH_CANCELLING]), "results_url", url);
}

static int custom_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CUSTOM_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Checks the create body's requests; returns 1 when good, else 0 after filling out. */
static int check_requests(json_t *reqs, uint64_t rid, fakellm_reply *out, int *rc)
{
    if (reqs == NULL) {
        *rc = bad(out, 400, "invalid_request_error", rid, "requests: Field required");
        return 0;
    }
    if (!json_is_array(reqs)) {
        *rc = bad(out, 400, "invalid_request_error", rid, "requests: Input should be a valid list");
        return 0;
    }
    size_t n = json_array_size(reqs);
    if (n == 0 || n > FAKELLM_BATCH_ANTHROPIC_MAX_REQUESTS) {
        *rc = bad(out, 400, "invalid_request_error", rid,
                  "requests: List should have at %s %d item%s after validation, not %zu", n ? "most" : "least",
                  n ? FAKELLM_BATCH_ANTHROPIC_MAX_REQUESTS : 1, n ? "s" : "", n);
        return 0;
    }
    size_t i;
    json_t *r, *seen = json_object(); /* custom_id -> index: a hash table */
    if (seen == NULL) {
        *rc = EMPQ_ENOMEM;
        return 0;
    }
    json_array_foreach(reqs, i, r) {
        json_t *cid = json_object_get(r, "custom_id"), *params = json_object_get(r, "params");
        if (!json_is_object(r)) {
            *rc = bad(out, 400, "invalid_request_error", rid,
                      "requests.%zu: Input should be a valid dictionary or object to extract fields from", i);
            break;
        }
        if (cid == NULL || params == NULL) {
            *rc = bad(out, 400, "invalid_request_error", rid, "requests.%zu.%s: Field required", i,
                      cid == NULL ? "custom_id" : "params");
            break;
        }
        if (!json_is_string(cid) || !custom_id_ok(json_string_value(cid))) {
            *rc = bad(out, 400, "invalid_request_error", rid,
                      "requests.%zu.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i);
            break;
        }
        if (!json_is_object(params)) {
            *rc = bad(out, 400, "invalid_request_error", rid,
                      "requests.%zu.params: Input should be a valid dictionary or object to extract fields from", i);
            break;
        }
        json_t *prev = json_object_get(seen, json_string_value(cid));
        if (prev != NULL) {
            *rc = bad(out, 400, "invalid_request_error", rid,
                      "requests.%zu.custom_id: '%s' is also the custom_id of requests.%lld; custom_id values "
                      "must be unique within a Message Batch", i, json_string_value(cid),
                      (long long)json_integer_value(prev));
            break;
        }
        if (json_object_set_new(seen, json_string_value(cid), json_integer((json_int_t)i)) != 0) {
            *rc = EMPQ_ENOMEM;
            break;
        }
    }
    json_decref(seen);
    return i == json_array_size(reqs);
}

static int batch_create(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    json_error_t jerr;
    int rc = EMPQ_OK;
    uint64_t rid = call->request_id;
    json_t *root = json_loadb(call->body, call->body_len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return bad(out, 400, "invalid_request_error", rid,
                   "There was an issue with your request body: invalid JSON (%s at line %d column %d)",
                   root ? "not an object" : jerr.text, jerr.line, jerr.column);
    }
    json_t *reqs = json_object_get(root, "requests");
    if (!check_requests(reqs, rid, out, &rc)) {
        json_decref(root);
        return rc;
    }
    size_t n = json_array_size(reqs);
    char **bodies = calloc(n, sizeof(*bodies));
    size_t bytes = 0;
    for (size_t i = 0; bodies != NULL && i < n; i++) {
        bodies[i] = json_dumps(json_object_get(json_array_get(reqs, i), "params"), JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (bodies[i] == NULL)
            rc = EMPQ_ENOMEM;
        else
            bytes += strlen(bodies[i]);
    }
    if (bodies == NULL)
        rc = EMPQ_ENOMEM;
    pthread_mutex_lock(&st->mu);
    if (rc == EMPQ_OK && !fakellm_batch__fits(st, bytes)) {
        rc = bad(out, 413, "request_too_large", rid,
                 "This server's batch store is full (at most %zu batches and files, %zu bytes; empq-fakellm "
                 "--batch-max-objects, --batch-max-bytes).", st->o.max_objects, st->o.max_bytes);
    } else if (rc == EMPQ_OK) {
        bb_batch *b = fakellm_batch__add_batch(st, FAKELLM_BATCH_ANTHROPIC, n);
        if (b == NULL) {
            rc = EMPQ_ENOMEM;
        } else {
            for (size_t i = 0; i < n; i++) {
                b->reqs[i].custom_id = strdup(json_string_value(json_object_get(json_array_get(reqs, i), "custom_id")));
                b->reqs[i].body = bodies[i];
                b->reqs[i].body_len = strlen(bodies[i]);
                bodies[i] = NULL;
            }
            st->bytes += bytes;
            fakellm_batch__start(b);
            rc = fakellm_reply_json(out, 200, batch_json(b, call->host));
            if (rc == EMPQ_OK)
                fakellm_batch__maybe_lose(b, out);
        }
    }
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; bodies != NULL && i < n; i++)
        free(bodies[i]);
    free(bodies);
    json_decref(root);
    return rc;
}

static int no_batch(fakellm_reply *out, const char *id, uint64_t rid)
{
    return bad(out, 404, "not_found_error", rid, "Message Batch %s not found", id);
}

/* GET (what 0), cancel (1), results (2), delete (3) of one batch. */
static int batch_one(fakellm_batch_store *st, const fakellm_batch_call *call, const char *id, int what,
                     fakellm_reply *out)
{
    static const bb_counter counter[] = {BB_BATCH_GETS, BB_CANCELS, BB_RESULTS_DOWNLOADS, BB_DELETES};
    uint64_t rid = call->request_id;
    int rc;
    pthread_mutex_lock(&st->mu);
    bb_batch *b = fakellm_batch__find(st, FAKELLM_BATCH_ANTHROPIC, id);
    if (b == NULL) {
        pthread_mutex_unlock(&st->mu);
        return no_batch(out, id, rid);
    }
    fakellm_batch__advance(b);
    fakellm_batch__count(st, FAKELLM_BATCH_ANTHROPIC, counter[what]);
    int ended = fakellm_batch_state_terminal(b->state);
    if (what == 1) {
        fakellm_batch__cancel(b); /* an ended or canceling batch is answered as it is */
        rc = fakellm_reply_json(out, 200, batch_json(b, call->host));
    } else if (what == 2 && !ended) {
        rc = bad(out, 400, "invalid_request_error", rid,
                 "Message Batch %s has not ended yet: its results are available once processing_status is ended",
                 id);
    } else if (what == 2) {
        empq_buf body = {0};
        rc = EMPQ_OK;
        for (size_t i = 0; i < b->n && rc == EMPQ_OK; i++)
            if (b->reqs[i].result != NULL)
                rc = empq_buf_append(&body, b->reqs[i].result, b->reqs[i].result_len) == EMPQ_OK
                         ? empq_buf_append(&body, "\n", 1)
                         : EMPQ_ENOMEM;
        if (rc == EMPQ_OK)
            rc = fakellm_reply_set(out, 200, body.data ? body.data : "", body.len);
        out->content_type = "application/x-jsonl";
        empq_buf_free(&body);
    } else if (what == 3 && !ended) {
        rc = bad(out, 400, "invalid_request_error", rid,
                 "Message Batch %s cannot be deleted while it is processing; cancel it first", id);
    } else if (what == 3) {
        fakellm_batch__delete(b);
        rc = fakellm_reply_json(out, 200, json_pack("{s:s,s:s}", "id", id, "type", "message_batch_deleted"));
    } else {
        rc = fakellm_reply_json(out, 200, batch_json(b, call->host));
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int batch_list(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    uint64_t rid = call->request_id;
    const char *lim = call->query(call, "limit"), *after = call->query(call, "after_id");
    const char *before = call->query(call, "before_id");
    long limit = 20;
    if (lim != NULL) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (end == lim || *end != '\0' || limit < 1 || limit > 1000)
            return bad(out, 400, "invalid_request_error", rid,
                       "limit: Input should be an integer between 1 and 1000, not '%.20s'", lim);
    }
    /* Newest first: after_id pages towards older batches, before_id towards newer. */
    json_t *data = json_array();
    int more = 0;
    pthread_mutex_lock(&st->mu);
    fakellm_batch__count(st, FAKELLM_BATCH_ANTHROPIC, BB_BATCH_LISTS);
    size_t n = 0, lo = 0, hi = 0;
    bb_batch **v = calloc(st->n_batches ? st->n_batches : 1, sizeof(*v));
    for (size_t k = st->n_batches; v != NULL && k > 0; k--)
        if (st->batches[k - 1]->provider == FAKELLM_BATCH_ANTHROPIC && !st->batches[k - 1]->deleted)
            v[n++] = st->batches[k - 1];
    hi = n;
    for (size_t i = 0; i < n; i++) {
        if (after != NULL && strcmp(v[i]->id, after) == 0)
            lo = i + 1;
        if (before != NULL && strcmp(v[i]->id, before) == 0)
            hi = i;
    }
    size_t from = lo, to = hi;
    if (to > from && to - from > (size_t)limit) {
        more = 1;
        if (before != NULL && after == NULL)
            from = to - (size_t)limit;
        else
            to = from + (size_t)limit;
    }
    for (size_t i = from; data != NULL && v != NULL && i < to; i++) {
        fakellm_batch__advance(v[i]);
        if (json_array_append_new(data, batch_json(v[i], call->host)) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    pthread_mutex_unlock(&st->mu);
    if (v == NULL)
        json_decref(data);
    free(v);
    if (v == NULL || data == NULL)
        return EMPQ_ENOMEM;
    size_t cnt = json_array_size(data);
    json_t *first = cnt ? json_object_get(json_array_get(data, 0), "id") : NULL;
    json_t *last = cnt ? json_object_get(json_array_get(data, cnt - 1), "id") : NULL;
    return fakellm_reply_json(out, 200, json_pack("{s:o,s:b,s:O,s:O}", "data", data, "has_more", more, "first_id",
                                                  first ? first : json_null(), "last_id", last ? last : json_null()));
}

/* ------------------------------------------------------------------------ */
/* Running requests                                                          */
/* ------------------------------------------------------------------------ */

/* Sets r->result to {"custom_id", "result": result}; steals result. */
static void set_line(bb_batch *b, bb_req *r, json_t *result)
{
    json_t *line = result ? json_pack("{s:s,s:o}", "custom_id", r->custom_id, "result", result) : NULL;
    r->result = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    r->result_len = r->result ? strlen(r->result) : 0;
    if (r->result == NULL)
        EMPQ_ERROR("event=batch_out_of_memory batch=%s custom_id=%s", b->id, r->custom_id);
    json_decref(line);
}

bb_outcome fakellm_batch__anthropic_run(bb_batch *b, bb_req *r, int fail, uint64_t request_id)
{
    fakellm_reply rep = {0};
    fakellm_ctx ctx = {.created = empq_now_ms() / 1000u, .request_id = request_id};
    fakellm_anthropic_in in = {.version = "2023-06-01"};
    int rc = fail ? fakellm_anthropic_error(&rep, 500, "api_error", "Internal server error", request_id)
                  : fakellm_anthropic_messages(r->body, r->body_len, &in, &ctx, &rep);
    json_t *body = rc == EMPQ_OK ? json_loadb(rep.body.data, rep.body.len, 0, NULL) : NULL;
    int ok = body != NULL && rep.status == 200;
    json_t *result = body == NULL ? NULL
                     : ok ? json_pack("{s:s,s:o}", "type", "succeeded", "message", body)
                          : json_pack("{s:s,s:o}", "type", "errored", "error", body);
    set_line(b, r, result);
    fakellm_reply_clear(&rep);
    return ok ? BB_SUCCEEDED : BB_FAILED;
}

void fakellm_batch__anthropic_unrun(bb_batch *b, bb_req *r, bb_outcome o)
{
    set_line(b, r, json_pack("{s:s}", "type", o == BB_EXPIRED ? "expired" : "canceled"));
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

int fakellm_batch_anthropic(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    char id[ID_MAX];
    const char *m = call->method, *p = call->path;
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0, del = strcmp(m, "DELETE") == 0;
    if (strcmp(p, "/v1/messages/batches") == 0 && post)
        return batch_create(st, call, out);
    if (strcmp(p, "/v1/messages/batches") == 0 && get)
        return batch_list(st, call, out);
    if (fakellm_path_segment(p, "/v1/messages/batches/", "/cancel", id, sizeof(id)) && post)
        return batch_one(st, call, id, 1, out);
    if (fakellm_path_segment(p, "/v1/messages/batches/", "/results", id, sizeof(id)) && get)
        return batch_one(st, call, id, 2, out);
    if (fakellm_path_segment(p, "/v1/messages/batches/", "", id, sizeof(id)) && (get || del))
        return batch_one(st, call, id, get ? 0 : 3, out);
    return bad(out, 404, "not_found_error", call->request_id, "Not found: %s %.200s", m, p);
}
