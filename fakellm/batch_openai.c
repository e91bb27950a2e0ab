/* batch_openai.c: OpenAI's Files and Batch API over the batch store. See batch.h.
 *
 * Matched against OpenAI's OpenAPI document (openai/openai-openapi; the
 * subset in ../shared/providers/openai-openapi-subset.json: /files,
 * /files/{file_id}, /files/{file_id}/content, /batches, /batches/{batch_id},
 * /batches/{batch_id}/cancel, schemas OpenAIFile, Batch, BatchError,
 * BatchRequestCounts, ListBatchesResponse, ListFilesResponse) and the Batch
 * guide's request input and output lines (platform.openai.com/docs/guides/batch):
 *   input line   {"custom_id": str, "method": "POST", "url": "/v1/chat/completions", "body": {...}}
 *   output line  {"id": "batch_req_...", "custom_id": str, "response": {"status_code": 200,
 *                 "request_id": str, "body": {chat completion}}, "error": null}
 *   error line   the same with the error status and body; a request that never ran:
 *                "response": null, "error": {"code": "batch_expired" | "batch_cancelled",
 *                "message": str} (BatchRequestOutput.error codes)
 * The batch object's null fields (output_file_id before the end, the *_at
 * times not reached, errors, metadata) are sent as null, as in the API's
 * examples. Only /v1/chat/completions batches are answered. */
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_internal.h"
#include "chat.h"
#include "empq/log.h"
#include "front.h"
#include "openai.h"

#define ID_MAX 96
#define FILE_TTL_S (30u * 86400u)
#define MAX_METADATA 16
#define CHAT_ENDPOINT "/v1/chat/completions"

static const char *const purposes[] = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"};
static const char *const endpoints[] = {"/v1/responses", "/v1/chat/completions", "/v1/embeddings",
                                        "/v1/completions", "/v1/moderations", "/v1/images/generations",
                                        "/v1/images/edits", "/v1/videos"};

static int bad(fakellm_reply *out, unsigned status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int bad(fakellm_reply *out, unsigned status, const char *param, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fakellm_openai_error(out, status, msg, NULL, param, code);
}

static json_t *time_or_null(uint64_t unix_ms) { return unix_ms ? json_integer((json_int_t)(unix_ms / 1000u)) : json_null(); }

static json_t *id_or_null(const char *id) { return id[0] ? json_string(id) : json_null(); }

/* ------------------------------------------------------------------------ */
/* Objects                                                                   */
/* ------------------------------------------------------------------------ */

static json_t *file_json(const bb_file *f)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "id", f->id, "object", "file", "bytes",
                          (json_int_t)f->len, "created_at", (json_int_t)f->created_s, "filename", f->filename,
                          "purpose", f->purpose, "status", "processed");
    if (o != NULL && strncmp(f->purpose, "batch", 5) == 0 &&
        json_object_set_new(o, "expires_at", json_integer((json_int_t)(f->created_s + FILE_TTL_S))) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *batch_json(const bb_batch *b)
{
    uint64_t in = 0, outt = 0, reason = 0;
    for (size_t i = 0; i < b->next && b->reqs != NULL; i++) {
        in += b->reqs[i].usage[0];
        outt += b->reqs[i].usage[1];
        reason += b->reqs[i].usage[2];
    }
    const uint64_t *at = b->at;
    json_t *o = json_object();
    int bad_set = o == NULL;
#define SET(k, v) bad_set |= o == NULL || json_object_set_new(o, k, v) != 0
    SET("id", json_string(b->id));
    SET("object", json_string("batch"));
    SET("endpoint", json_string(b->endpoint));
    if (b->model != NULL)
        SET("model", json_string(b->model));
    SET("errors", b->errors ? json_pack("{s:s,s:O}", "object", "list", "data", b->errors) : json_null());
    SET("input_file_id", json_string(b->input_file_id));
    SET("completion_window", json_string("24h"));
    SET("status", json_string(fakellm_batch_state_name(b->state)));
    SET("output_file_id", id_or_null(b->output_file_id));
    SET("error_file_id", id_or_null(b->error_file_id));
    SET("created_at", time_or_null(at[FAKELLM_BATCH_VALIDATING]));
    SET("in_progress_at", time_or_null(at[FAKELLM_BATCH_IN_PROGRESS]));
    SET("expires_at", time_or_null(b->expires_ms));
    SET("finalizing_at", time_or_null(at[FAKELLM_BATCH_FINALIZING]));
    SET("completed_at", time_or_null(at[FAKELLM_BATCH_COMPLETED]));
    SET("failed_at", time_or_null(at[FAKELLM_BATCH_FAILED]));
    SET("expired_at", time_or_null(at[FAKELLM_BATCH_EXPIRED]));
    SET("cancelling_at", time_or_null(at[FAKELLM_BATCH_CANCELLING]));
    SET("cancelled_at", time_or_null(at[FAKELLM_BATCH_CANCELLED]));
    SET("request_counts", json_pack("{s:I,s:I,s:I}", "total", (json_int_t)b->n, "completed",
                                    (json_int_t)b->counts[BB_SUCCEEDED], "failed", (json_int_t)b->counts[BB_FAILED]));
    SET("usage", json_pack("{s:I,s:{s:i},s:I,s:{s:I},s:I}", "input_tokens", (json_int_t)in, "input_tokens_details",
                           "cached_tokens", 0, "output_tokens", (json_int_t)outt, "output_tokens_details",
                           "reasoning_tokens", (json_int_t)reason, "total_tokens", (json_int_t)(in + outt)));
    SET("metadata", b->metadata ? json_incref(b->metadata) : json_null());
#undef SET
    if (bad_set) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A list object {"object": "list", "data", "first_id", "last_id", "has_more"}; steals data. */
static int list_reply(fakellm_reply *out, json_t *data, int has_more)
{
    size_t n = json_array_size(data);
    json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : NULL;
    json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : NULL;
    json_t *root = json_pack("{s:s,s:o,s:O,s:O,s:b}", "object", "list", "data", data, "first_id",
                             first ? first : json_null(), "last_id", last ? last : json_null(), "has_more", has_more);
    return fakellm_reply_json(out, 200, root);
}

/* Reads ?limit= into *limit (default def, lo..hi). Returns 1, or 0 after filling out. */
static int limit_arg(const fakellm_batch_call *call, long def, long lo, long hi, long *limit, fakellm_reply *out,
                     int *rc)
{
    const char *v = call->query ? call->query(call, "limit") : NULL;
    *limit = def;
    if (v == NULL)
        return 1;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0') {
        *rc = bad(out, 400, "limit", "invalid_type", "Invalid 'limit': expected an integer, but got '%.40s'.", v);
        return 0;
    }
    if (x < lo || x > hi) {
        *rc = bad(out, 400, "limit", x < lo ? "integer_below_min_value" : "integer_above_max_value",
                  "Invalid 'limit': expected a value between %ld and %ld, but got %ld instead.", lo, hi, x);
        return 0;
    }
    *limit = x;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

/* The multipart form of an upload. */
typedef struct form {
    empq_buf file;
    char *filename;
    empq_buf purpose;
    int has_file;
    int oom;
} form;

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size)
{
    form *f = cls;
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    (void)off;
    if (strcmp(key, "file") == 0) {
        f->has_file = 1;
        if (filename != NULL && f->filename == NULL && (f->filename = strdup(filename)) == NULL)
            f->oom = 1;
        if (size > 0 && empq_buf_append(&f->file, data, size) != EMPQ_OK)
            f->oom = 1;
    } else if (strcmp(key, "purpose") == 0 && f->purpose.len + size < 64) {
        if (size > 0 && empq_buf_append(&f->purpose, data, size) != EMPQ_OK)
            f->oom = 1;
    }
    return f->oom ? MHD_NO : MHD_YES;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int file_upload(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    form f = {0}; /* the body, so the file, is within --batch-max-bytes (server.c) */
    int rc = EMPQ_OK;
    const char *ct = call->content_type ? call->content_type : "";
    if (strncmp(ct, "multipart/form-data", 19) != 0 || call->conn == NULL)
        return bad(out, 400, NULL, NULL,
                   "Invalid Content-Type header (%.80s), expected multipart/form-data with the fields 'file' and "
                   "'purpose'.", ct[0] ? ct : "none");
    struct MHD_PostProcessor *pp =
        MHD_create_post_processor((struct MHD_Connection *)call->conn, 64 * 1024, form_field, &f);
    if (pp == NULL)
        return bad(out, 400, NULL, NULL, "Could not parse multipart form (no boundary in the Content-Type header).");
    enum MHD_Result ok = MHD_post_process(pp, call->body, call->body_len);
    MHD_destroy_post_processor(pp);
    const char *purpose = f.purpose.data ? f.purpose.data : NULL;
    size_t i;
    for (i = 0; purpose != NULL && i < sizeof(purposes) / sizeof(purposes[0]); i++)
        if (strcmp(purpose, purposes[i]) == 0)
            break;
    if (f.oom) {
        rc = EMPQ_ENOMEM;
    } else if (ok != MHD_YES) {
        rc = bad(out, 400, NULL, NULL, "Could not parse multipart form.");
    } else if (!f.has_file) {
        rc = bad(out, 400, "file", NULL, "Missing required parameter: 'file'.");
    } else if (purpose == NULL) {
        rc = bad(out, 400, "purpose", NULL, "Missing required parameter: 'purpose'.");
    } else if (i == sizeof(purposes) / sizeof(purposes[0])) {
        rc = bad(out, 400, "purpose", NULL,
                 "'%.40s' is not one of ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'] - "
                 "'purpose'", purpose);
    } else if (strcmp(purpose, "batch") == 0 && !ends_with(f.filename ? f.filename : "", ".jsonl")) {
        rc = bad(out, 400, "file", NULL, "Invalid file format for Batch API. Must be .jsonl");
    } else {
        pthread_mutex_lock(&st->mu);
        if (!fakellm_batch__fits(st, f.file.len)) {
            pthread_mutex_unlock(&st->mu);
            rc = bad(out, 400, "file", "storage_limit_exceeded",
                     "This server's batch store is full (at most %zu files and batches, %zu bytes; empq-fakellm "
                     "--batch-max-objects, --batch-max-bytes). Delete files to make room.",
                     st->o.max_objects, st->o.max_bytes);
        } else {
            size_t len = f.file.len;
            char *data = f.file.data ? f.file.data : calloc(1, 1);
            f.file = (empq_buf){0};
            bb_file *file = data ? fakellm_batch__add_file(st, f.filename, purpose, data, len) : NULL;
            json_t *o = file ? file_json(file) : NULL;
            if (file != NULL)
                fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_FILES_UPLOADED);
            pthread_mutex_unlock(&st->mu);
            rc = fakellm_reply_json(out, 200, o);
        }
    }
    empq_buf_free(&f.file);
    empq_buf_free(&f.purpose);
    free(f.filename);
    return rc;
}

static int no_file(fakellm_reply *out, const char *id)
{
    return bad(out, 404, "id", NULL, "No such File object: %s", id);
}

static int file_get(fakellm_batch_store *st, const char *id, int content, fakellm_reply *out)
{
    int rc;
    pthread_mutex_lock(&st->mu);
    bb_file *f = fakellm_batch__file(st, id);
    if (f == NULL) {
        rc = no_file(out, id);
    } else if (!content) {
        fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_FILE_GETS);
        rc = fakellm_reply_json(out, 200, file_json(f));
    } else {
        fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_FILE_DOWNLOADS);
        if (strcmp(f->purpose, "batch_output") == 0)
            fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_RESULTS_DOWNLOADS);
        rc = fakellm_reply_set(out, 200, f->data, f->len);
        out->content_type = "application/octet-stream";
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int file_delete(fakellm_batch_store *st, const char *id, fakellm_reply *out)
{
    int rc;
    pthread_mutex_lock(&st->mu);
    bb_file *f = fakellm_batch__file(st, id);
    if (f == NULL) {
        rc = no_file(out, id);
    } else {
        fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_DELETES);
        fakellm_batch__delete_file(st, f);
        rc = fakellm_reply_json(out, 200, json_pack("{s:s,s:s,s:b}", "id", id, "object", "file", "deleted", 1));
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int file_list(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    int rc = EMPQ_OK;
    long limit;
    const char *purpose = call->query(call, "purpose"), *after = call->query(call, "after");
    const char *order = call->query(call, "order");
    if (!limit_arg(call, 10000, 1, 10000, &limit, out, &rc))
        return rc;
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
        return bad(out, 400, "order", NULL, "Invalid 'order': expected 'asc' or 'desc', but got '%.20s'.", order);
    int asc = order != NULL && strcmp(order, "asc") == 0;
    json_t *data = json_array();
    int more = 0, seen_after = after == NULL;
    pthread_mutex_lock(&st->mu);
    fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_FILE_LISTS);
    for (size_t k = 0; k < st->n_files && data != NULL; k++) {
        const bb_file *f = st->files[asc ? k : st->n_files - 1 - k];
        if (!seen_after) {
            seen_after = strcmp(f->id, after) == 0;
            continue;
        }
        if (purpose != NULL && strcmp(f->purpose, purpose) != 0)
            continue;
        if ((long)json_array_size(data) == limit) {
            more = 1;
            break;
        }
        if (json_array_append_new(data, file_json(f)) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return data ? list_reply(out, data, more) : EMPQ_ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */
/* ------------------------------------------------------------------------ */

/* Checks the create body; returns 1 when good, else 0 after filling out. */
static int check_create(json_t *root, fakellm_reply *out, int *rc)
{
    static const char *const required[] = {"input_file_id", "endpoint", "completion_window"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(root, required[i]);
        if (v == NULL) {
            *rc = bad(out, 400, required[i], "missing_required_parameter", "Missing required parameter: '%s'.",
                      required[i]);
            return 0;
        }
        if (!json_is_string(v)) {
            *rc = bad(out, 400, required[i], "invalid_type",
                      "Invalid type for '%s': expected a string, but got %s instead.", required[i],
                      fakellm_json_type_name(v));
            return 0;
        }
    }
    const char *ep = json_string_value(json_object_get(root, "endpoint"));
    size_t k;
    for (k = 0; k < sizeof(endpoints) / sizeof(endpoints[0]); k++)
        if (strcmp(ep, endpoints[k]) == 0)
            break;
    if (k == sizeof(endpoints) / sizeof(endpoints[0])) {
        *rc = bad(out, 400, "endpoint", "invalid_value",
                  "Invalid value for 'endpoint': '%.80s'. Supported values are: '/v1/responses', "
                  "'/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/moderations', "
                  "'/v1/images/generations', '/v1/images/edits' and '/v1/videos'.", ep);
        return 0;
    }
    if (strcmp(ep, CHAT_ENDPOINT) != 0) {
        *rc = bad(out, 400, "endpoint", "invalid_value",
                  "empq-fakellm answers '/v1/chat/completions' batches only, not '%s'.", ep);
        return 0;
    }
    const char *win = json_string_value(json_object_get(root, "completion_window"));
    if (strcmp(win, "24h") != 0) {
        *rc = bad(out, 400, "completion_window", "invalid_value",
                  "Invalid value for 'completion_window': '%.40s'. Supported values are: '24h'.", win);
        return 0;
    }
    json_t *md = json_object_get(root, "metadata");
    if (md != NULL && !json_is_null(md)) {
        const char *key;
        json_t *v;
        if (!json_is_object(md) || json_object_size(md) > MAX_METADATA) {
            *rc = bad(out, 400, "metadata", "invalid_type",
                      "Invalid 'metadata': expected an object of at most %d string values.", MAX_METADATA);
            return 0;
        }
        json_object_foreach(md, key, v) {
            if (strlen(key) > 64 || !json_is_string(v) || json_string_length(v) > 512) {
                *rc = bad(out, 400, "metadata", "invalid_value",
                          "Invalid 'metadata': key '%.70s' (keys of at most 64 characters, string values of at "
                          "most 512).", key);
                return 0;
            }
        }
    }
    return 1;
}

static int batch_create(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    json_error_t jerr;
    int rc = EMPQ_OK;
    json_t *root = json_loadb(call->body, call->body_len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return bad(out, 400, NULL, NULL,
                   "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                   "your HTTP library correctly. The OpenAI API expects a JSON payload.)");
    }
    if (!check_create(root, out, &rc)) {
        json_decref(root);
        return rc;
    }
    const char *fid = json_string_value(json_object_get(root, "input_file_id"));
    fakellm_batch_input in = {0};
    pthread_mutex_lock(&st->mu);
    bb_file *f = fakellm_batch__file(st, fid);
    if (f == NULL) {
        rc = bad(out, 400, "input_file_id", "invalid_value", "Invalid 'input_file_id': no such File object: %.80s",
                 fid);
    } else if (strcmp(f->purpose, "batch") != 0) {
        rc = bad(out, 400, "input_file_id", "invalid_value",
                 "The input file %s was uploaded with purpose '%s'; a batch needs purpose 'batch'.", fid, f->purpose);
    } else if (!fakellm_batch__fits(st, 0)) {
        rc = bad(out, 400, NULL, "storage_limit_exceeded",
                 "This server's batch store is full (at most %zu files and batches; empq-fakellm "
                 "--batch-max-objects).", st->o.max_objects);
    } else if ((rc = fakellm_batch_parse_openai(f->data, f->len, CHAT_ENDPOINT, FAKELLM_BATCH_OPENAI_MAX_REQUESTS,
                                                &in)) == EMPQ_OK) {
        bb_batch *b = fakellm_batch__add_batch(st, FAKELLM_BATCH_OPENAI, in.errors ? 0 : in.n);
        if (b != NULL && ((b->input_file_id = strdup(fid)) == NULL || (b->endpoint = strdup(CHAT_ENDPOINT)) == NULL))
            fakellm_batch__delete(b); /* half made: never started, out of the listings */
        if (b == NULL || b->deleted) {
            rc = EMPQ_ENOMEM;
        } else {
            json_t *md = json_object_get(root, "metadata");
            b->metadata = md && json_is_object(md) ? json_incref(md) : NULL;
            b->model = in.model;
            in.model = NULL;
            b->errors = in.errors;
            in.errors = NULL;
            for (size_t i = 0; i < b->n; i++) {
                b->reqs[i].custom_id = in.lines[i].custom_id;
                b->reqs[i].body = in.lines[i].body;
                b->reqs[i].body_len = in.lines[i].body_len;
                in.lines[i].custom_id = in.lines[i].body = NULL;
            }
            fakellm_batch__start(b);
            rc = fakellm_reply_json(out, 200, batch_json(b));
            if (rc == EMPQ_OK)
                fakellm_batch__maybe_lose(b, out);
        }
    }
    pthread_mutex_unlock(&st->mu);
    fakellm_batch_input_clear(&in);
    json_decref(root);
    return rc;
}

static int no_batch(fakellm_reply *out, const char *id)
{
    return bad(out, 404, "batch_id", NULL, "No such Batch object: %s", id);
}

static int batch_get(fakellm_batch_store *st, const char *id, int cancel, fakellm_reply *out)
{
    int rc;
    pthread_mutex_lock(&st->mu);
    bb_batch *b = fakellm_batch__find(st, FAKELLM_BATCH_OPENAI, id);
    if (b == NULL) {
        rc = no_batch(out, id);
    } else {
        fakellm_batch__advance(b);
        fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, cancel ? BB_CANCELS : BB_BATCH_GETS);
        if (cancel && fakellm_batch__cancel(b) != EMPQ_OK && b->state != FAKELLM_BATCH_CANCELLING &&
            b->state != FAKELLM_BATCH_CANCELLED)
            rc = bad(out, 400, NULL, NULL, "Cannot cancel a batch with status '%s'.",
                     fakellm_batch_state_name(b->state));
        else
            rc = fakellm_reply_json(out, 200, batch_json(b));
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int batch_list(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    int rc = EMPQ_OK;
    long limit;
    const char *after = call->query(call, "after");
    if (!limit_arg(call, 20, 1, 100, &limit, out, &rc))
        return rc;
    json_t *data = json_array();
    int more = 0, seen_after = after == NULL;
    pthread_mutex_lock(&st->mu);
    fakellm_batch__count(st, FAKELLM_BATCH_OPENAI, BB_BATCH_LISTS);
    for (size_t k = st->n_batches; k > 0 && data != NULL; k--) {
        bb_batch *b = st->batches[k - 1];
        if (b->provider != FAKELLM_BATCH_OPENAI || b->deleted)
            continue;
        if (!seen_after) {
            seen_after = strcmp(b->id, after) == 0;
            continue;
        }
        if ((long)json_array_size(data) == limit) {
            more = 1;
            break;
        }
        fakellm_batch__advance(b);
        if (json_array_append_new(data, batch_json(b)) != 0) {
            json_decref(data);
            data = NULL;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return data ? list_reply(out, data, more) : EMPQ_ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* Running requests                                                          */
/* ------------------------------------------------------------------------ */

/* Sets r->result to the line {"id", "custom_id", "response", "error"}; steals response and error. */
static void set_line(bb_batch *b, bb_req *r, json_t *response, json_t *error)
{
    char id[48];
    fakellm_batch__new_id(b->st, id, sizeof(id), "batch_req_", 32);
    json_t *line = json_pack("{s:s,s:s,s:o,s:o}", "id", id, "custom_id", r->custom_id, "response",
                             response ? response : json_null(), "error", error ? error : json_null());
    r->result = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    r->result_len = r->result ? strlen(r->result) : 0;
    if (r->result == NULL)
        EMPQ_ERROR("event=batch_out_of_memory batch=%s custom_id=%s", b->id, r->custom_id);
    json_decref(line);
}

bb_outcome fakellm_batch__openai_run(bb_batch *b, bb_req *r, int fail, uint64_t request_id)
{
    fakellm_reply rep = {0};
    fakellm_ctx ctx = {.created = empq_now_ms() / 1000u, .request_id = request_id};
    int rc = fail ? fakellm_openai_error(&rep, 500,
                                         "The server had an error while processing your request. Sorry about that!",
                                         "server_error", NULL, NULL)
                  : fakellm_openai_chat(r->body, r->body_len, &ctx, &rep);
    json_t *body = rc == EMPQ_OK ? json_loadb(rep.body.data, rep.body.len, 0, NULL) : NULL;
    char rid[48];
    const char *hdr = fakellm_reply_get_header(&rep, "x-request-id");
    if (hdr == NULL) {
        fakellm_make_id(rid, sizeof(rid), "req_", 32, fakellm_mix64(request_id ^ 0x0a1e0000u));
        hdr = rid;
    }
    unsigned status = body ? rep.status : 500;
    if (status == 200) {
        json_t *u = json_object_get(body, "usage");
        r->usage[0] = (uint64_t)json_integer_value(json_object_get(u, "prompt_tokens"));
        r->usage[1] = (uint64_t)json_integer_value(json_object_get(u, "completion_tokens"));
        r->usage[2] = (uint64_t)json_integer_value(
            json_object_get(json_object_get(u, "completion_tokens_details"), "reasoning_tokens"));
    }
    json_t *resp = body ? json_pack("{s:i,s:s,s:o}", "status_code", (int)status, "request_id", hdr, "body", body)
                        : NULL;
    set_line(b, r, resp, NULL);
    fakellm_reply_clear(&rep);
    return status == 200 ? BB_SUCCEEDED : BB_FAILED;
}

void fakellm_batch__openai_unrun(bb_batch *b, bb_req *r, bb_outcome o, uint64_t request_id)
{
    (void)request_id;
    json_t *err = o == BB_EXPIRED
                      ? json_pack("{s:s,s:s}", "code", "batch_expired", "message",
                                  "This request could not be executed before the completion window expired.")
                      : json_pack("{s:s,s:s}", "code", "batch_cancelled", "message",
                                  "This request was not executed because the batch was cancelled.");
    set_line(b, r, NULL, err);
}

/* Adds the lines of b's requests with (want_ok) or without success as a
 * batch_output file; copies its id to id. */
static void write_file(bb_batch *b, int want_ok, const char *kind, char *id, size_t cap)
{
    empq_buf data = {0};
    size_t lines = 0;
    for (size_t i = 0; i < b->n; i++) {
        const bb_req *r = &b->reqs[i];
        if ((r->outcome == BB_SUCCEEDED) != want_ok || r->outcome == BB_PENDING || r->result == NULL)
            continue;
        if (empq_buf_append(&data, r->result, r->result_len) != EMPQ_OK || empq_buf_append(&data, "\n", 1) != EMPQ_OK) {
            EMPQ_ERROR("event=batch_out_of_memory batch=%s what=%s_file", b->id, kind);
            empq_buf_free(&data);
            return;
        }
        lines++;
    }
    if (lines == 0)
        return;
    char name[96];
    snprintf(name, sizeof(name), "%s_%s.jsonl", b->id, kind);
    size_t len = data.len;
    bb_file *f = fakellm_batch__add_file(b->st, name, "batch_output", data.data, len);
    if (f == NULL) {
        EMPQ_ERROR("event=batch_out_of_memory batch=%s what=%s_file", b->id, kind);
        return;
    }
    snprintf(id, cap, "%s", f->id);
}

void fakellm_batch__openai_finish(bb_batch *b)
{
    write_file(b, 1, "output", b->output_file_id, sizeof(b->output_file_id));
    write_file(b, 0, "error", b->error_file_id, sizeof(b->error_file_id));
    /* The lines live in the files now. */
    for (size_t i = 0; i < b->n; i++) {
        bb_req *r = &b->reqs[i];
        if (r->result != NULL)
            b->st->bytes -= r->result_len < b->st->bytes ? r->result_len : b->st->bytes;
        free(r->result);
        r->result = NULL;
    }
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

int fakellm_batch_openai(fakellm_batch_store *st, const fakellm_batch_call *call, fakellm_reply *out)
{
    char id[ID_MAX];
    const char *m = call->method, *p = call->path;
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0, del = strcmp(m, "DELETE") == 0;
    if (strcmp(p, "/v1/files") == 0 && post)
        return file_upload(st, call, out);
    if (strcmp(p, "/v1/files") == 0 && get)
        return file_list(st, call, out);
    if (fakellm_path_segment(p, "/v1/files/", "/content", id, sizeof(id)) && get)
        return file_get(st, id, 1, out);
    if (fakellm_path_segment(p, "/v1/files/", "", id, sizeof(id)) && (get || del))
        return get ? file_get(st, id, 0, out) : file_delete(st, id, out);
    if (strcmp(p, "/v1/batches") == 0 && post)
        return batch_create(st, call, out);
    if (strcmp(p, "/v1/batches") == 0 && get)
        return batch_list(st, call, out);
    if (fakellm_path_segment(p, "/v1/batches/", "/cancel", id, sizeof(id)) && post)
        return batch_get(st, id, 1, out);
    if (fakellm_path_segment(p, "/v1/batches/", "", id, sizeof(id)) && get)
        return batch_get(st, id, 0, out);
    return bad(out, 404, NULL, NULL, "Invalid URL (%s %.200s)", m, p);
}
