/* batch_gemini.c: Gemini's Batch Mode (inline requests) over the batch store. See batch.h.
 *
 * Matched against the REST reference (ai.google.dev/api/batch-mode:
 * models.batchGenerateContent, batches.get, batches.list, batches.cancel,
 * batches.delete, GenerateContentBatch, InputConfig, InlinedRequests,
 * InlinedResponse, BatchStats, BatchState) and the SDKs' readers
 * (googleapis/python-genai batches.py, @google/genai: the batch is read off
 * the Operation's metadata, its results off metadata.output):
 *   create   POST /v1beta/models/{model}:batchGenerateContent
 *            {"batch": {"displayName": str (required), "inputConfig": {"requests":
 *            {"requests": [{"request": GenerateContentRequest, "metadata": {...}}, ...]}},
 *            "priority"?}} (field names lowerCamelCase or snake_case, as protobuf
 *            JSON takes; a create body over 20 MB is refused as the API does; a
 *            file input, inputConfig.fileName, is not served here). The requests
 *            are checked as each runs (one the generateContent endpoint refuses
 *            ends with its error), as the API does.
 *   batch    the long-running Operation {"name": "batches/{id}", "metadata":
 *            {"@type": "...GenerateContentBatch", "name", "model": "models/{model}",
 *            "displayName", "createTime", "updateTime", "endTime", "state":
 *            "BATCH_STATE_PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED" |
 *            "EXPIRED", "batchStats": {"requestCount", "successfulRequestCount",
 *            "failedRequestCount", "pendingRequestCount"} (int64: strings), "output":
 *            {"inlinedResponses": {"inlinedResponses": [...]}} once ended}, "done":
 *            true once ended, "response": the same output (type
 *            ...GenerateContentBatchOutput)}. Fields without a value are left out,
 *            as protobuf JSON does. A response is {"response":
 *            GenerateContentResponse, "metadata"} or {"error": google.rpc.Status
 *            {"code": gRPC code, "message"}, "metadata"}, in request order; the
 *            request's metadata comes back as it was sent.
 *   states   validating -> PENDING; in_progress, finalizing and cancelling (Gemini
 *            has no cancelling state: the cancel is asynchronous) -> RUNNING;
 *            completed -> SUCCEEDED; expired -> EXPIRED; cancelled -> CANCELLED.
 *            An expired or cancelled batch lists what was answered before its end;
 *            the rest has no response.
 *   list     GET /v1beta/batches?pageSize=1..1000 (50)&pageToken= -> {"operations":
 *            [...] (newest first, without their output), "nextPageToken"}
 *   cancel   POST /v1beta/batches/{id}:cancel -> {} (google.protobuf.Empty)
 *   delete   DELETE /v1beta/batches/{id} -> {} (an ended batch only)
 * Also under /v1/. Errors are generateContent's shape (gemini.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_internal.h"
#include "chat.h"
#include "empq/log.h"
#include "gemini.h"

#define ID_MAX 96
#define INLINE_MAX_BYTES (20u * 1024u * 1024u)
#define TYPE_PREFIX "type.googleapis.com/google.ai.generativelanguage.v1beta."

static int bad(fakellm_reply *out, unsigned status, const char *rpc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(fakellm_reply *out, unsigned status, const char *rpc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fakellm_gemini_error(out, status, rpc, msg);
}

/* The value of a protobuf JSON field under either of its names. */
static json_t *field(const json_t *o, const char *camel, const char *snake)
{
    json_t *v = json_object_get(o, camel);
    return v != NULL ? v : json_object_get(o, snake);
}

static const char *gemini_state(fakellm_batch_state s)
{
    switch (s) {
    case FAKELLM_BATCH_VALIDATING:
        return "BATCH_STATE_PENDING";
    case FAKELLM_BATCH_FAILED:
        return "BATCH_STATE_FAILED";
    case FAKELLM_BATCH_COMPLETED:
        return "BATCH_STATE_SUCCEEDED";
    case FAKELLM_BATCH_EXPIRED:
        return "BATCH_STATE_EXPIRED";
    case FAKELLM_BATCH_CANCELLED:
        return "BATCH_STATE_CANCELLED";
    default:
        return "BATCH_STATE_RUNNING";
    }
}

static int set_time(json_t *o, const char *k, uint64_t unix_ms)
{
    char t[48];
    return unix_ms == 0 ? 0 : json_object_set_new(o, k, json_string(fakellm_batch__rfc3339(t, sizeof(t), unix_ms)));
}

static json_t *count_str(size_t n)
{
    char s[24];
    snprintf(s, sizeof(s), "%zu", n);
    return json_string(s);
}

/* The answered requests' responses, {"inlinedResponses": {"inlinedResponses": [...]}}. */
static json_t *output_json(const bb_batch *b)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < b->n; i++) {
        const bb_req *r = &b->reqs[i];
        json_t *one = r->result != NULL ? json_loadb(r->result, r->result_len, 0, NULL) : NULL;
        if (one != NULL && json_array_append_new(arr, one) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr != NULL ? json_pack("{s:{s:o}}", "inlinedResponses", "inlinedResponses", arr) : NULL;
}

/* The Operation of batch b; with_output adds the responses of an ended batch. */
static json_t *batch_json(const bb_batch *b, int with_output)
{
    char name[64];
    snprintf(name, sizeof(name), "batches/%s", b->id);
    uint64_t ended = 0, updated = 0;
    for (int s = 0; s < FAKELLM_BATCH_STATE_COUNT; s++) {
        if (b->at[s] > updated)
            updated = b->at[s];
        if (fakellm_batch_state_terminal((fakellm_batch_state)s) && b->at[s])
            ended = b->at[s];
    }
    json_t *md = json_pack("{s:s,s:s,s:s+,s:s,s:{s:o,s:o,s:o,s:o}}", "@type", TYPE_PREFIX "GenerateContentBatch",
                           "name", name, "model", "models/", b->model ? b->model : "", "displayName",
                           b->display_name ? b->display_name : "", "batchStats", "requestCount", count_str(b->n),
                           "successfulRequestCount", count_str(b->counts[BB_SUCCEEDED]), "failedRequestCount",
                           count_str(b->counts[BB_FAILED]), "pendingRequestCount", count_str(b->counts[BB_PENDING]));
    json_t *op = md != NULL ? json_pack("{s:s,s:o}", "name", name, "metadata", md) : NULL;
    if (op == NULL)
        return NULL;
    int bad_set = set_time(md, "createTime", b->at[FAKELLM_BATCH_VALIDATING]) | set_time(md, "updateTime", updated) |
                  set_time(md, "endTime", ended) |
                  json_object_set_new(md, "state", json_string(gemini_state(b->state)));
    if (ended) {
        bad_set |= json_object_set_new(op, "done", json_true());
        json_t *out = with_output ? output_json(b) : NULL;
        if (out != NULL) {
            json_t *resp = json_deep_copy(out);
            bad_set |= resp == NULL ||
                       json_object_set_new(resp, "@type", json_string(TYPE_PREFIX "GenerateContentBatchOutput")) ||
                       json_object_set_new(op, "response", resp);
            bad_set |= json_object_set_new(md, "output", out);
        } else if (with_output) {
            bad_set = 1;
        }
        if (b->state == FAKELLM_BATCH_FAILED)
            bad_set |= json_object_set_new(
                op, "error", json_pack("{s:i,s:s}", "code", 3, "message", "The batch's input could not be processed."));
    }
    if (bad_set) {
        json_decref(op);
        return NULL;
    }
    return op;
}

/* ------------------------------------------------------------------------ */
/* Create                                                                    */
/* ------------------------------------------------------------------------ */

/* Checks the create body; on success *reqs is the requests array and
 * *display the display name (both borrowed from root). Returns 1 when
 * good, else 0 after filling out. */
static int check_create(json_t *root, json_t **reqs, const char **display, fakellm_reply *out, int *rc)
{
    json_t *batch = json_object_get(root, "batch");
    if (!json_is_object(batch)) {
        *rc = bad(out, 400, "INVALID_ARGUMENT", "* BatchGenerateContentRequest.batch: batch is required");
        return 0;
    }
    json_t *name = field(batch, "displayName", "display_name");
    if (!json_is_string(name) || json_string_length(name) == 0) {
        *rc = bad(out, 400, "INVALID_ARGUMENT", "* GenerateContentBatch.display_name: display_name is required");
        return 0;
    }
    json_t *in = field(batch, "inputConfig", "input_config");
    if (json_is_object(in) && field(in, "fileName", "file_name") != NULL) {
        *rc = bad(out, 400, "INVALID_ARGUMENT",
                  "inputConfig.fileName: this server (empq-fakellm) serves inline requests only");
        return 0;
    }
    json_t *r = json_object_get(field(in, "requests", "requests"), "requests");
    if (!json_is_array(r) || json_array_size(r) == 0) {
        *rc = bad(out, 400, "INVALID_ARGUMENT",
                  "* GenerateContentBatch.input_config: input_config.requests.requests must hold at least one "
                  "request");
        return 0;
    }
    size_t i;
    json_t *one;
    json_array_foreach(r, i, one)
    {
        json_t *md = json_object_get(one, "metadata");
        if (!json_is_object(one) || !json_is_object(json_object_get(one, "request")) ||
            (md != NULL && !json_is_object(md))) {
            *rc = bad(out, 400, "INVALID_ARGUMENT",
                      "Invalid JSON payload received. inputConfig.requests.requests[%zu]: an InlinedRequest is "
                      "{\"request\": GenerateContentRequest, \"metadata\": object}",
                      i);
            return 0;
        }
    }
    *reqs = r;
    *display = json_string_value(name);
    return 1;
}

static int batch_create(fakellm_batch_store *st, const fakellm_batch_call *call, const char *model, fakellm_reply *out)
{
    if (call->body_len > INLINE_MAX_BYTES)
        return bad(out, 400, "INVALID_ARGUMENT", "Request payload size exceeds the limit: %u bytes.", INLINE_MAX_BYTES);
    json_error_t jerr;
    int rc = EMPQ_OK;
    json_t *root = json_loadb(call->body, call->body_len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return bad(out, 400, "INVALID_ARGUMENT", "Invalid JSON payload received. %s at line %d column %d.",
                   root ? "not an object" : jerr.text, jerr.line, jerr.column);
    }
    json_t *reqs = NULL;
    const char *display = NULL;
    if (!check_create(root, &reqs, &display, out, &rc)) {
        json_decref(root);
        return rc;
    }
    size_t n = json_array_size(reqs), bytes = 0;
    char **bodies = calloc(n, sizeof(*bodies)), **metas = calloc(n, sizeof(*metas));
    for (size_t i = 0; bodies != NULL && metas != NULL && rc == EMPQ_OK && i < n; i++) {
        json_t *one = json_array_get(reqs, i), *md = json_object_get(one, "metadata");
        bodies[i] = json_dumps(json_object_get(one, "request"), JSON_COMPACT | JSON_PRESERVE_ORDER);
        metas[i] = md != NULL ? json_dumps(md, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (bodies[i] == NULL || (md != NULL && metas[i] == NULL))
            rc = EMPQ_ENOMEM;
        else
            bytes += strlen(bodies[i]);
    }
    if (bodies == NULL || metas == NULL)
        rc = EMPQ_ENOMEM;
    pthread_mutex_lock(&st->mu);
    if (rc == EMPQ_OK && !fakellm_batch__fits(st, bytes)) {
        rc = bad(out, 429, "RESOURCE_EXHAUSTED",
                 "This server's batch store is full (at most %zu batches and files, %zu bytes; empq-fakellm "
                 "--batch-max-objects, --batch-max-bytes).",
                 st->o.max_objects, st->o.max_bytes);
    } else if (rc == EMPQ_OK) {
        bb_batch *b = fakellm_batch__add_batch(st, FAKELLM_BATCH_GEMINI, n);
        if (b == NULL || (b->model = strdup(model)) == NULL || (b->display_name = strdup(display)) == NULL) {
            rc = EMPQ_ENOMEM; /* b stays in the store (validating, no timer); freed with it */
        } else {
            for (size_t i = 0; i < n; i++) {
                b->reqs[i].custom_id = metas[i];
                b->reqs[i].body = bodies[i];
                b->reqs[i].body_len = strlen(bodies[i]);
                metas[i] = bodies[i] = NULL;
            }
            st->bytes += bytes;
            fakellm_batch__start(b);
            rc = fakellm_reply_json(out, 200, batch_json(b, 0));
            if (rc == EMPQ_OK)
                fakellm_batch__maybe_lose(b, out);
        }
    }
    pthread_mutex_unlock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        free(bodies != NULL ? bodies[i] : NULL);
        free(metas != NULL ? metas[i] : NULL);
    }
    free(bodies);
    free(metas);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* One batch, the list                                                       */
/* ------------------------------------------------------------------------ */

static int no_batch(fakellm_reply *out, const char *id)
{
    return bad(out, 404, "NOT_FOUND", "Requested entity was not found. (batches/%s)", id);
}

/* GET (what 0), cancel (1), delete (2) of one batch. */
static int batch_one(fakellm_batch_store *st, const char *id, int what, fakellm_reply *out)
{
    static const bb_counter counter[] = {BB_BATCH_GETS, BB_CANCELS, BB_DELETES};
    int rc;
    pthread_mutex_lock(&st->mu);
    bb_batch *b = fakellm_batch__find(st, FAKELLM_BATCH_GEMINI, id);
    if (b == NULL) {
        pthread_mutex_unlock(&st->mu);
        return no_batch(out, id);
    }
    fakellm_batch__advance(b);
    fakellm_batch__count(st, FAKELLM_BATCH_GEMINI, counter[what]);
    if (what == 1) {
        fakellm_batch__cancel(b); /* an ended batch stays as it is */
        rc = fakellm_reply_json(out, 200, json_object());
    } else if (what == 2 && !fakellm_batch_state_terminal(b->state)) {
        rc = bad(out, 400, "FAILED_PRECONDITION", "The batch batches/%s is still running; cancel it first.", id);
    } else if (what == 2) {
        fakellm_batch__delete(b);
        rc = fakellm_reply_json(out, 200, json_object());
    } else {
        if (fakellm_batch_state_terminal(b->state))
            fakellm_batch__count(st, FAKELLM_BATCH_GEMINI, BB_RESULTS_DOWNLOADS);
        rc = fakellm_reply_json(out, 200, batch_json(b, 1));
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int batch_list(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    const char *size = call->query(call, "pageSize"), *token = call->query(call, "pageToken");
    long limit = 50;
    if (size != NULL) {
        char *end = NULL;
        limit = strtol(size, &end, 10);
        if (end == size || *end != '\0' || limit < 1 || limit > 1000)
            return bad(out, 400, "INVALID_ARGUMENT", "pageSize must be from 1 to 1000, got '%.20s'", size);
    }
    json_t *ops = json_array();
    const char *next = NULL;
    char next_id[48] = "";
    pthread_mutex_lock(&st->mu);
    fakellm_batch__count(st, FAKELLM_BATCH_GEMINI, BB_BATCH_LISTS);
    int started = token == NULL || token[0] == '\0';
    long taken = 0;
    for (size_t k = st->n_batches; ops != NULL && k > 0; k--) {
        bb_batch *b = st->batches[k - 1];
        if (b->provider != FAKELLM_BATCH_GEMINI || b->deleted)
            continue;
        if (!started) { /* the token is the id of the first batch of its page */
            started = strcmp(b->id, token) == 0;
            if (!started)
                continue;
        }
        if (taken == limit) {
            snprintf(next_id, sizeof(next_id), "%s", b->id);
            next = next_id;
            break;
        }
        fakellm_batch__advance(b);
        if (json_array_append_new(ops, batch_json(b, 0)) != 0) {
            json_decref(ops);
            ops = NULL;
        }
        taken++;
    }
    pthread_mutex_unlock(&st->mu);
    if (ops == NULL)
        return EMPQ_ENOMEM;
    json_t *body = json_object();
    if (body == NULL || (json_array_size(ops) > 0 && json_object_set(body, "operations", ops) != 0) ||
        (next != NULL && json_object_set_new(body, "nextPageToken", json_string(next)) != 0)) {
        json_decref(body);
        json_decref(ops);
        return EMPQ_ENOMEM;
    }
    json_decref(ops);
    return fakellm_reply_json(out, 200, body);
}

/* ------------------------------------------------------------------------ */
/* Running requests                                                          */
/* ------------------------------------------------------------------------ */

/* The google.rpc.Code of a Status name ("INVALID_ARGUMENT" -> 3); 2 (UNKNOWN) if unknown. */
static int rpc_code(const char *status)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"};
    for (size_t i = 0; status != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], status) == 0)
            return (int)i;
    return 2;
}

/* Sets r->result to {"response" | "error": v, "metadata": the request's}; steals v. */
static void set_result(bb_batch *b, bb_req *r, const char *k, json_t *v)
{
    json_t *md = r->custom_id != NULL ? json_loads(r->custom_id, 0, NULL) : NULL;
    json_t *line = v != NULL ? json_pack("{s:o}", k, v) : NULL;
    if (line != NULL && md != NULL && json_object_set_new(line, "metadata", md) == 0)
        md = NULL;
    json_decref(md);
    r->result = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    r->result_len = r->result ? strlen(r->result) : 0;
    if (r->result == NULL)
        EMPQ_ERROR("event=batch_out_of_memory batch=%s", b->id);
    json_decref(line);
}

bb_outcome fakellm_batch__gemini_run(bb_batch *b, bb_req *r, int fail, uint64_t request_id)
{
    fakellm_reply rep = {0};
    fakellm_ctx ctx = {.created = empq_now_ms() / 1000u, .request_id = request_id};
    fakellm_gemini_in in = {.model = b->model ? b->model : ""};
    int rc = fail ? fakellm_gemini_error(&rep, 500, "INTERNAL", "Internal error encountered.")
                  : fakellm_gemini_generate(r->body, r->body_len, &in, &ctx, &rep);
    json_t *body = rc == EMPQ_OK ? json_loadb(rep.body.data, rep.body.len, 0, NULL) : NULL;
    int ok = body != NULL && rep.status == 200;
    if (ok) {
        set_result(b, r, "response", body);
    } else {
        /* the interactive error {"error": {"code": HTTP, "message", "status"}} as a Status */
        const json_t *e = json_object_get(body, "error");
        const char *msg = json_string_value(json_object_get(e, "message"));
        set_result(b, r, "error",
                   json_pack("{s:i,s:s}", "code", rpc_code(json_string_value(json_object_get(e, "status"))), "message",
                             msg ? msg : "Internal error encountered."));
        json_decref(body);
    }
    fakellm_reply_clear(&rep);
    return ok ? BB_SUCCEEDED : BB_FAILED;
}

void fakellm_batch__gemini_unrun(bb_batch *b, bb_req *r, bb_outcome o)
{
    (void)b;
    (void)o; /* Gemini reports no response for a request its batch's end left unanswered */
    r->result = NULL;
    r->result_len = 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

/* The part of path after "/v1beta/" or "/v1/", or NULL. */
static const char *after_version(const char *path)
{
    if (strncmp(path, "/v1beta/", 8) == 0)
        return path + 8;
    if (strncmp(path, "/v1/", 4) == 0)
        return path + 4;
    return NULL;
}

/* "models/{model}:batchGenerateContent" into model (cap bytes). */
static int create_model(const char *rest, char *model, size_t cap)
{
    static const char suffix[] = ":batchGenerateContent";
    size_t n = strlen(rest), s = sizeof(suffix) - 1;
    if (strncmp(rest, "models/", 7) != 0 || n <= 7 + s || strcmp(rest + n - s, suffix) != 0 || n - s - 7 >= cap ||
        memchr(rest + 7, '/', n - s - 7) != NULL)
        return 0;
    memcpy(model, rest + 7, n - s - 7);
    model[n - s - 7] = '\0';
    return 1;
}

int fakellm_batch_gemini_match(const char *path)
{
    char model[ID_MAX];
    const char *rest = after_version(path);
    return rest != NULL && (strcmp(rest, "batches") == 0 || strncmp(rest, "batches/", 8) == 0 ||
                            create_model(rest, model, sizeof(model)));
}

int fakellm_batch_gemini(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    char id[ID_MAX];
    const char *m = call->method, *rest = after_version(call->path);
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0, del = strcmp(m, "DELETE") == 0;
    if (rest != NULL && post && create_model(rest, id, sizeof(id)))
        return batch_create(st, call, id, out);
    if (rest != NULL && strcmp(rest, "batches") == 0 && get)
        return batch_list(st, call, out);
    if (rest != NULL && strncmp(rest, "batches/", 8) == 0) {
        const char *name = rest + 8, *colon = strchr(name, ':');
        size_t n = colon != NULL ? (size_t)(colon - name) : strlen(name);
        if (n > 0 && n < sizeof(id) && memchr(name, '/', n) == NULL) {
            memcpy(id, name, n);
            id[n] = '\0';
            if (colon != NULL && strcmp(colon, ":cancel") == 0 && post)
                return batch_one(st, id, 1, out);
            if (colon == NULL && (get || del))
                return batch_one(st, id, get ? 0 : 2, out);
        }
    }
    return bad(out, 404, "NOT_FOUND", "Not found: %s %.200s", m, call->path);
}
