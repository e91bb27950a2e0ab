/* test_batchwire_http.c: empq's batch formats (lib/batchwire.c) against
 * the real empq-fakellm program's batch endpoints over HTTP (libcurl, a
 * multipart upload): OpenAI file + batch, Anthropic message batch and Gemini
 * batch (inline requests) created from empq's own request bodies, polled to
 * the end, found again in the list by their key, results read back by
 * custom_id (the same text as the interactive endpoint gives), per-request
 * 500s, expiry and cancel. */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "empq/batchwire.h"
#include "empq/util.h"

extern char **environ;

#define KEY "sk-batch-test-0123456789"
#define N_REQ 12

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    return empq_buf_append(user, p, size * n) == EMPQ_OK ? size * n : 0;
}

/* Sends r (body r->body, or a multipart upload of file when file != NULL);
 * returns the status, the body in out (cleared first). */
static long send_req(const empq_http_request *r, const char *file, size_t file_len, empq_buf *out)
{
    empq_buf_free(out);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    for (size_t i = 0; i < r->n_headers; i++)
        h = curl_slist_append(h, r->headers[i]);
    curl_mime *mime = NULL;
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (file != NULL) {
        mime = curl_mime_init(c);
        curl_mimepart *p = curl_mime_addpart(mime);
        curl_mime_name(p, "purpose");
        curl_mime_data(p, "batch", CURL_ZERO_TERMINATED);
        p = curl_mime_addpart(mime);
        curl_mime_name(p, "file");
        curl_mime_filename(p, "empq-batch.jsonl");
        curl_mime_type(p, "application/jsonl");
        curl_mime_data(p, file, file_len);
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body != NULL ? r->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(r->body != NULL ? r->body_len : 0));
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_mime_free(mime);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* op on model m (id may be NULL); body (may be NULL) is sent as is. */
static long call(const Empq__ModelSpec *m, empq_batch_op op, const char *id, char *body, empq_buf *out)
{
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_batchwire_endpoint(m, NULL, KEY, op, id, &r, &err), EMPQ_OK);
    r.body = body;
    r.body_len = body != NULL ? strlen(body) : 0;
    long st = send_req(&r, NULL, 0, out);
    r.body = NULL;
    empq_http_request_clear(&r);
    free(body);
    return st;
}

/* A running empq-fakellm (build/bin, beside this test's build/tests). */
typedef struct fake {
    pid_t pid;
    unsigned port;
    char dir[64];
} fake;

static fake *start(unsigned delay_ms, double fail_p, int expire)
{
    static fake f;
    char exe[4096], prog[4200], pf[128], delay[24], fail[24];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(prog, sizeof prog, "%s/../bin/empq-fakellm", exe);
    snprintf(f.dir, sizeof f.dir, "/tmp/empq-bw-XXXXXX");
    CHECK(mkdtemp(f.dir) != NULL);
    snprintf(pf, sizeof pf, "%s/port", f.dir);
    snprintf(delay, sizeof delay, "%u", delay_ms);
    snprintf(fail, sizeof fail, "%g", fail_p);
    char *argv[] = {prog, "--port", "0", "--port-file", pf, "--require-key", KEY, "--batch-delay-ms", delay,
                    "--batch-fail", fail, "--fault-seed", "7", expire ? "--batch-expire" : NULL, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    CHECK_INT(posix_spawn(&f.pid, prog, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    f.port = 0;
    for (int i = 0; i < 200 && f.port == 0; i++) { /* up to 10 s */
        FILE *fp = fopen(pf, "r");
        if (fp != NULL) {
            if (fscanf(fp, "%u", &f.port) != 1)
                f.port = 0;
            fclose(fp);
        }
        if (f.port == 0)
            nap_ms(50);
    }
    CHECK(f.port > 0);
    return &f;
}

static unsigned port_of(const fake *f) { return f->port; }

/* Stops the fake server by its pid and removes its folder. */
static void stop(fake **fp)
{
    fake *f = *fp;
    kill(f->pid, SIGTERM);
    int st = 0;
    waitpid(f->pid, &st, 0);
    char pf[128];
    snprintf(pf, sizeof pf, "%s/port", f->dir);
    unlink(pf);
    rmdir(f->dir);
    *fp = NULL;
}

static Empq__ModelSpec spec;
static Empq__GenParams params;
static char base[64];

static void model(const char *provider, unsigned port)
{
    Empq__ModelSpec m = EMPQ__MODEL_SPEC__INIT;
    Empq__GenParams p = EMPQ__GEN_PARAMS__INIT;
    spec = m;
    params = p;
    params.has_max_tokens = 1;
    params.max_tokens = 64;
    snprintf(base, sizeof base, "http://127.0.0.1:%u/v1", port);
    spec.alias = "b";
    spec.provider = (char *)provider;
    spec.base_url = base;
    spec.model = "fake-warm";
    spec.params = &params;
}

static void prompt(uint32_t job, char *out, size_t n) { snprintf(out, n, "I lost my keys, day %u.", job); }

/* The request line of job j (attempt 1). */
static char *line_of(uint32_t j)
{
    char user[64], cid[EMPQ_BATCHWIRE_ID_MAX], *body = NULL, *line = NULL;
    size_t blen = 0;
    empq_error err = {0};
    prompt(j, user, sizeof user);
    CHECK_INT(empq_provider_body(&spec, "Be kind.", user, 0, &body, &blen, &err), EMPQ_OK);
    CHECK_INT(empq_batchwire_line(&spec, empq_batchwire_custom_id(j, 1, cid, sizeof cid), body, blen, &line, NULL,
                                  &err),
              EMPQ_OK);
    free(body);
    return line;
}

/* The interactive answer of job j (the same server, the same body). */
static char *interactive_text(uint32_t j)
{
    char user[64];
    prompt(j, user, sizeof user);
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_provider_request(&spec, NULL, "Be kind.", user, 0, KEY, &r, &err), EMPQ_OK);
    empq_buf out = {0};
    empq_http_reply rep = {0};
    rep.status = send_req(&r, NULL, 0, &out);
    rep.body = out.data;
    rep.body_len = out.len;
    empq_provider_result res;
    empq_provider_parse(&spec, &rep, KEY, 0, &res);
    CHECK_INT(res.cls, EMPQ_PROVIDER_SUCCESS);
    char *t = res.gen.text != NULL ? empq_strdup(res.gen.text) : NULL;
    empq_provider_result_clear(&res);
    empq_buf_free(&out);
    empq_http_request_clear(&r);
    return t;
}

typedef struct tally {
    int seen[N_REQ];
    int ok, retry, perm, expired, cancelled, same_text;
} tally;

/* Reads every line of a result body into t, checking custom ids. */
static void read_results(const char *body, size_t len, tally *t, int compare)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            char cid[EMPQ_BATCHWIRE_ID_MAX];
            empq_provider_result r;
            empq_error err = {0};
            CHECK_INT(empq_batchwire_result(&spec, p, n, KEY, 0, cid, &r, &err), EMPQ_OK);
            uint32_t job = 0, attempt = 0;
            CHECK_INT(empq_batchwire_parse_custom_id(cid, &job, &attempt), EMPQ_OK);
            CHECK(job < N_REQ && attempt == 1);
            if (job < N_REQ)
                t->seen[job]++;
            if (r.cls == EMPQ_PROVIDER_SUCCESS) {
                t->ok++;
                if (compare) {
                    char *want = interactive_text(job);
                    t->same_text += want != NULL && r.gen.text != NULL && strcmp(want, r.gen.text) == 0;
                    free(want);
                }
            } else if (strcmp(r.reason, "batch_expired") == 0) {
                t->expired++;
            } else if (strcmp(r.reason, "batch_cancelled") == 0) {
                t->cancelled++;
            } else if (r.cls == EMPQ_PROVIDER_RETRYABLE) {
                t->retry++;
            } else {
                t->perm++;
            }
            empq_provider_result_clear(&r);
        }
        p += n + 1;
    }
}

/* Polls batch id until it leaves OPEN/CANCELLING (at most ~10 s). */
static empq_batch_info wait_end(const char *id)
{
    empq_batch_info b;
    memset(&b, 0, sizeof b);
    empq_buf out = {0};
    empq_error err = {0};
    for (int i = 0; i < 200; i++) {
        CHECK_INT(call(&spec, EMPQ_BATCH_OP_GET, id, NULL, &out), 200);
        CHECK_INT(empq_batchwire_parse_batch(&spec, out.data, out.len, &b, &err), EMPQ_OK);
        if (b.state != EMPQ_BATCH_OPEN && b.state != EMPQ_BATCH_CANCELLING)
            break;
        nap_ms(50);
    }
    empq_buf_free(&out);
    return b;
}

/* Uploads N_REQ lines and creates an OpenAI batch with key; returns its id in id. */
static void openai_submit(const char *key, char *id, size_t idlen)
{
    empq_buf file = {0}, out = {0};
    for (uint32_t j = 0; j < N_REQ; j++) {
        char *l = line_of(j);
        CHECK_INT(empq_buf_append(&file, l, strlen(l)), EMPQ_OK);
        free(l);
    }
    empq_http_request r = {0};
    empq_error err = {0};
    CHECK_INT(empq_batchwire_endpoint(&spec, NULL, KEY, EMPQ_BATCH_OP_UPLOAD, NULL, &r, &err), EMPQ_OK);
    CHECK_INT(send_req(&r, file.data, file.len, &out), 200);
    empq_http_request_clear(&r);
    json_error_t je;
    json_t *f = json_loadb(out.data, out.len, 0, &je);
    const char *file_id = json_string_value(json_object_get(f, "id"));
    CHECK(file_id != NULL);
    char *body = NULL;
    CHECK_INT(empq_batchwire_create_body(&spec, file_id, key, NULL, NULL, 0, &body, NULL, &err), EMPQ_OK);
    json_decref(f);
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_CREATE, NULL, body, &out), 200);
    empq_batch_info b;
    CHECK_INT(empq_batchwire_parse_batch(&spec, out.data, out.len, &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_OPEN);
    CHECK_STR(b.empq_key, key);
    snprintf(id, idlen, "%s", b.id);
    empq_buf_free(&file);
    empq_buf_free(&out);
}

static void openai_download(const empq_batch_info *b, tally *t, int compare)
{
    empq_buf out = {0};
    if (b->output_file_id[0] != '\0') {
        CHECK_INT(call(&spec, EMPQ_BATCH_OP_RESULTS, b->output_file_id, NULL, &out), 200);
        read_results(out.data, out.len, t, compare);
    }
    if (b->error_file_id[0] != '\0') {
        CHECK_INT(call(&spec, EMPQ_BATCH_OP_RESULTS, b->error_file_id, NULL, &out), 200);
        read_results(out.data, out.len, t, 0);
    }
    empq_buf_free(&out);
}

static void check_each_once(const tally *t)
{
    for (int j = 0; j < N_REQ; j++)
        CHECK_INT(t->seen[j], 1);
}

static void test_openai(void)
{
    fake *s = start(300, 0.0, 0);
    model("openai", port_of(s));
    char id[128];
    openai_submit("r1:b:0", id, sizeof id);
    empq_batch_info b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    CHECK(b.total == N_REQ && b.done_ok == N_REQ);
    /* found again by its key, as after a lost confirmation */
    empq_buf out = {0};
    empq_error err = {0};
    empq_batch_info f;
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_LIST, NULL, NULL, &out), 200);
    CHECK_INT(empq_batchwire_find(&spec, out.data, out.len, "r1:b:0", 0, 0, NULL, 0, &f, NULL, &err), EMPQ_OK);
    CHECK_STR(f.id, id);
    CHECK_INT(empq_batchwire_find(&spec, out.data, out.len, "r1:b:1", 0, 0, NULL, 0, &f, NULL, &err),
              EMPQ_ENOTFOUND);
    empq_buf_free(&out);
    tally t;
    memset(&t, 0, sizeof t);
    openai_download(&b, &t, 1);
    check_each_once(&t);
    CHECK_INT(t.ok, N_REQ);
    CHECK_INT(t.same_text, N_REQ); /* the batch answer is the interactive one */
    stop(&s);
}

static void test_openai_failures(void)
{
    /* per-request 500s: retryable, each job once */
    fake *s = start(100, 0.4, 0);
    model("openai", port_of(s));
    char id[128];
    openai_submit("r2:b:0", id, sizeof id);
    empq_batch_info b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    tally t;
    memset(&t, 0, sizeof t);
    openai_download(&b, &t, 0);
    check_each_once(&t);
    CHECK(t.retry > 0 && t.ok > 0);
    CHECK_INT(t.ok + t.retry, N_REQ);
    CHECK_INT(t.ok, (int)b.done_ok);
    stop(&s);

    /* expiry: the rest batch_expired */
    s = start(200, 0.0, 1);
    model("openai", port_of(s));
    openai_submit("r3:b:0", id, sizeof id);
    b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_EXPIRED);
    memset(&t, 0, sizeof t);
    openai_download(&b, &t, 0);
    check_each_once(&t);
    CHECK(t.expired > 0 && t.ok > 0);
    CHECK_INT(t.ok + t.expired, N_REQ);
    stop(&s);

    /* cancel at once: cancelling, then cancelled, the rest batch_cancelled */
    s = start(3000, 0.0, 0);
    model("openai", port_of(s));
    openai_submit("r4:b:0", id, sizeof id);
    empq_buf out = {0};
    empq_error err = {0};
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_CANCEL, id, NULL, &out), 200);
    CHECK_INT(empq_batchwire_parse_batch(&spec, out.data, out.len, &b, &err), EMPQ_OK);
    CHECK(b.state == EMPQ_BATCH_CANCELLING || b.state == EMPQ_BATCH_CANCELLED);
    empq_buf_free(&out);
    b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_CANCELLED);
    memset(&t, 0, sizeof t);
    openai_download(&b, &t, 0);
    check_each_once(&t);
    CHECK(t.cancelled > 0);
    CHECK_INT(t.ok + t.cancelled, N_REQ);
    stop(&s);
}

/* Creates an Anthropic or Gemini batch of N_REQ requests (Gemini: named
 * key); returns its id and (created may be NULL) its creation time. */
static void lines_submit(const char *key, char *id, size_t idlen, int64_t *created)
{
    char *lines[N_REQ];
    for (uint32_t j = 0; j < N_REQ; j++)
        lines[j] = line_of(j);
    char *body = NULL;
    empq_error err = {0};
    CHECK_INT(empq_batchwire_create_body(&spec, NULL, key, NULL, lines, N_REQ, &body, NULL, &err), EMPQ_OK);
    for (uint32_t j = 0; j < N_REQ; j++)
        free(lines[j]);
    empq_buf out = {0};
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_CREATE, NULL, body, &out), 200);
    empq_batch_info b;
    CHECK_INT(empq_batchwire_parse_batch(&spec, out.data, out.len, &b, &err), EMPQ_OK);
    CHECK_INT(b.state, EMPQ_BATCH_OPEN);
    CHECK_INT(b.total, N_REQ);
    if (key != NULL)
        CHECK_STR(b.empq_key, key);
    snprintf(id, idlen, "%s", b.id);
    if (created != NULL)
        *created = b.created_at;
    empq_buf_free(&out);
}

static void anthropic_submit(char *id, size_t idlen, int64_t *created) { lines_submit(NULL, id, idlen, created); }

/* A batch on a server with this delay (expiring or cancelled at once),
 * ended; its results read into t, each job once. */
static void anthropic_ended(unsigned delay_ms, int expire, int cancel, tally *t)
{
    fake *s = start(delay_ms, 0.0, expire);
    model("anthropic", port_of(s));
    char id[128];
    int64_t created = 0;
    empq_buf out = {0};
    anthropic_submit(id, sizeof id, &created);
    if (cancel)
        CHECK_INT(call(&spec, EMPQ_BATCH_OP_CANCEL, id, NULL, &out), 200);
    empq_batch_info b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_RESULTS, id, NULL, &out), 200);
    memset(t, 0, sizeof *t);
    read_results(out.data, out.len, t, 0);
    check_each_once(t);
    empq_buf_free(&out);
    stop(&s);
}

static void test_anthropic(void)
{
    fake *s = start(300, 0.0, 0);
    model("anthropic", port_of(s));
    spec.model = "claude-fake";
    char id[128];
    int64_t created = 0;
    int64_t before = (int64_t)(empq_now_ms() / 1000) - 1;
    anthropic_submit(id, sizeof id, &created);
    CHECK(created >= before);
    /* found again with no metadata: created after the submission began, the same size */
    empq_buf out = {0};
    empq_error err = {0};
    empq_batch_info f;
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_LIST, NULL, NULL, &out), 200);
    CHECK_INT(empq_batchwire_find(&spec, out.data, out.len, NULL, before, N_REQ, NULL, 0, &f, NULL, &err), EMPQ_OK);
    CHECK_STR(f.id, id);
    const char *taken[] = {id};
    CHECK_INT(empq_batchwire_find(&spec, out.data, out.len, NULL, before, N_REQ, taken, 1, &f, NULL, &err),
              EMPQ_ENOTFOUND);
    empq_batch_info b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    CHECK(b.done_ok == N_REQ && b.total == N_REQ);
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_RESULTS, id, NULL, &out), 200);
    tally t;
    memset(&t, 0, sizeof t);
    read_results(out.data, out.len, &t, 1);
    check_each_once(&t);
    CHECK_INT(t.ok, N_REQ);
    CHECK_INT(t.same_text, N_REQ);
    empq_buf_free(&out);
    stop(&s);

    /* expiry and cancel: expired / canceled results */
    anthropic_ended(200, 1, 0, &t);
    CHECK(t.expired > 0);
    CHECK_INT(t.ok + t.expired, N_REQ);
    anthropic_ended(3000, 0, 1, &t);
    CHECK(t.cancelled > 0);
    CHECK_INT(t.ok + t.cancelled, N_REQ);
}

/* Creates a Gemini batch of N_REQ inline requests named key; returns its id. */
static void gemini_submit(const char *key, char *id, size_t idlen) { lines_submit(key, id, idlen, NULL); }

/* The results of ended Gemini batch id (its own GET) read into t. */
static void gemini_results(const char *id, tally *t, int compare)
{
    empq_buf out = {0};
    empq_error err = {0};
    char *lines = NULL;
    size_t n = 0;
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_RESULTS, id, NULL, &out), 200);
    CHECK_INT(empq_batchwire_results_lines(&spec, out.data, out.len, &lines, &n, &err), EMPQ_OK);
    memset(t, 0, sizeof *t);
    if (lines != NULL)
        read_results(lines, n, t, compare);
    free(lines);
    empq_buf_free(&out);
}

static fake *gemini_server(unsigned delay_ms, double fail_p, int expire)
{
    fake *s = start(delay_ms, fail_p, expire);
    model("gemini", port_of(s));
    snprintf(base, sizeof base, "http://127.0.0.1:%u/v1beta", port_of(s));
    return s;
}

static void test_gemini(void)
{
    fake *s = gemini_server(300, 0.0, 0);
    char id[128];
    gemini_submit("r5:g:0", id, sizeof id);
    /* found again by its display name, as after a lost confirmation */
    empq_buf out = {0};
    empq_error err = {0};
    empq_batch_info f;
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_LIST, NULL, NULL, &out), 200);
    CHECK_INT(empq_batchwire_find(&spec, out.data, out.len, "r5:g:0", 0, 0, NULL, 0, &f, NULL, &err), EMPQ_OK);
    CHECK_STR(f.id, id);
    CHECK_INT(empq_batchwire_find(&spec, out.data, out.len, "r5:g:1", 0, 0, NULL, 0, &f, NULL, &err),
              EMPQ_ENOTFOUND);
    empq_batch_info b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    CHECK(b.total == N_REQ && b.done_ok == N_REQ);
    tally t;
    gemini_results(id, &t, 1);
    check_each_once(&t);
    CHECK_INT(t.ok, N_REQ);
    CHECK_INT(t.same_text, N_REQ); /* the batch answer is the interactive one */
    stop(&s);

    /* per-request INTERNAL errors: retryable, each job once */
    s = gemini_server(100, 0.4, 0);
    gemini_submit("r6:g:0", id, sizeof id);
    b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_ENDED);
    gemini_results(id, &t, 0);
    check_each_once(&t);
    CHECK(t.retry > 0 && t.ok > 0);
    CHECK_INT(t.ok + t.retry, N_REQ);
    CHECK_INT(t.ok, (int)b.done_ok);
    CHECK_INT(t.retry, (int)b.done_failed);
    stop(&s);

    /* expiry: EXPIRED; the answered half has a response, the rest none */
    s = gemini_server(200, 0.0, 1);
    gemini_submit("r7:g:0", id, sizeof id);
    b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_EXPIRED);
    gemini_results(id, &t, 0);
    CHECK_INT(t.ok, N_REQ / 2);
    CHECK_INT(t.retry + t.perm, 0);
    for (int j = 0; j < N_REQ; j++)
        CHECK(t.seen[j] == (j < N_REQ / 2));
    stop(&s);

    /* cancel: its answer is an empty object, then CANCELLED */
    s = gemini_server(3000, 0.0, 0);
    gemini_submit("r8:g:0", id, sizeof id);
    CHECK_INT(call(&spec, EMPQ_BATCH_OP_CANCEL, id, NULL, &out), 200);
    CHECK(out.data != NULL && strcmp(out.data, "{}") == 0);
    CHECK_INT(empq_batchwire_parse_batch(&spec, out.data, out.len, &f, &err), EMPQ_EPARSE);
    empq_buf_free(&out);
    b = wait_end(id);
    CHECK_INT(b.state, EMPQ_BATCH_CANCELLED);
    gemini_results(id, &t, 0);
    CHECK(t.ok < N_REQ);
    stop(&s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_openai);
    RUN(test_openai_failures);
    RUN(test_anthropic);
    RUN(test_gemini);
    curl_global_cleanup();
    CHECK_DONE();
}
