/* judge.c: the strict reading of a judge's verdict, and judge-ratings.csv. */
#include "empq/judge.h"

#include "empq/analysis.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

static const char *const LABELS[] = {NULL, "Bad", "Okay", "Good"};

const char *empq_judge_label_name(int label)
{
    return label >= EMPQ_JUDGE_BAD && label <= EMPQ_JUDGE_GOOD ? LABELS[label] : NULL;
}

const char *empq_judge_fault_name(empq_judge_fault f)
{
    switch (f) {
    case EMPQ_JUDGE_FAULT_UNPARSEABLE: return "judge_unparseable";
    case EMPQ_JUDGE_FAULT_OFF_SCALE: return "judge_off_scale";
    case EMPQ_JUDGE_FAULT_NONE: break;
    }
    return "";
}

int empq_judge_is_judge(const Empq__ModelSpec *m)
{
    return m != NULL && m->output != NULL && strcmp(m->output, EMPQ_JUDGE_OUTPUT) == 0;
}

int empq_judge_is_judge_run(const Empq__Run *run)
{
    if (run == NULL || run->spec == NULL)
        return 0;
    for (size_t i = 0; i < run->spec->n_models; i++)
        if (empq_judge_is_judge(run->spec->models[i]))
            return 1;
    return 0;
}

/* The label s[0..n) names (case-insensitive), or 0. */
static int label_of(const char *s, size_t n)
{
    for (int l = EMPQ_JUDGE_BAD; l <= EMPQ_JUDGE_GOOD; l++)
        if (strlen(LABELS[l]) == n && strncasecmp(LABELS[l], s, n) == 0)
            return l;
    return 0;
}

/* Copies at most len-1 bytes of s[0..n) into out, control characters as
 * spaces, a UTF-8 sequence cut at the end dropped. */
static void excerpt(const char *s, size_t n, char *out, size_t len)
{
    if (out == NULL || len == 0)
        return;
    size_t k = n < len - 1 ? n : len - 1;
    if (k < n) /* cut: step back to the start of a UTF-8 sequence */
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
    for (size_t i = 0; i < k; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7F ? ' ' : s[i];
    out[k] = '\0';
}

static int refuse(empq_judge_fault kind, empq_judge_fault *fault, char *why, size_t why_len, const char *what,
                  const char *s, size_t n)
{
    char ex[120];
    excerpt(s, n, ex, sizeof ex);
    if (fault != NULL)
        *fault = kind;
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s: %s '%s'", empq_judge_fault_name(kind), what, ex);
    return EMPQ_EPARSE;
}

/* A bare word: letters, digits, '+', '-', '/', at most 24 bytes: an answer
 * that tried to be a rating on another scale ("Excellent", "4", "5/10"). */
static int bare_word(const char *s, size_t n)
{
    if (n == 0 || n > 24)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("+-/", s[i]) == NULL)
            return 0;
    return 1;
}

static int parse_object(const char *s, size_t n, int *label, char *reason, size_t reason_len,
                        empq_judge_fault *fault, char *why, size_t why_len)
{
    json_error_t je;
    json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return refuse(EMPQ_JUDGE_FAULT_UNPARSEABLE, fault, why, why_len, "not a JSON object:", s, n);
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (strcmp(key, "label") != 0 && strcmp(key, "reason") != 0) {
            json_decref(o);
            return refuse(EMPQ_JUDGE_FAULT_UNPARSEABLE, fault, why, why_len, "unexpected key in", s, n);
        }
    }
    const json_t *jl = json_object_get(o, "label"), *jr = json_object_get(o, "reason");
    if (!json_is_string(jl) || (jr != NULL && !json_is_string(jr))) {
        json_decref(o);
        return refuse(EMPQ_JUDGE_FAULT_UNPARSEABLE, fault, why, why_len, "no string label (or a reason that is not a string) in",
                      s, n);
    }
    const char *ls = json_string_value(jl);
    size_t ln = json_string_length(jl);
    while (ln > 0 && isspace((unsigned char)*ls)) {
        ls++;
        ln--;
    }
    while (ln > 0 && isspace((unsigned char)ls[ln - 1]))
        ln--;
    int l = label_of(ls, ln);
    if (l == 0) {
        int rc = refuse(EMPQ_JUDGE_FAULT_OFF_SCALE, fault, why, why_len, "label", ls, ln);
        json_decref(o);
        return rc;
    }
    *label = l;
    if (reason != NULL && reason_len > 0) {
        if (jr != NULL)
            excerpt(json_string_value(jr), json_string_length(jr), reason, reason_len);
        else
            reason[0] = '\0';
    }
    json_decref(o);
    return EMPQ_OK;
}

int empq_judge_parse(const char *text, int *label, char *reason, size_t reason_len,
                     empq_judge_fault *fault, char *why, size_t why_len)
{
    int dummy = 0;
    if (label == NULL)
        label = &dummy;
    *label = 0;
    if (fault != NULL)
        *fault = EMPQ_JUDGE_FAULT_NONE;
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (reason != NULL && reason_len > 0)
        reason[0] = '\0';
    if (text == NULL)
        return refuse(EMPQ_JUDGE_FAULT_UNPARSEABLE, fault, why, why_len, "no answer text", "", 0);
    const char *s = text;
    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0)
        return refuse(EMPQ_JUDGE_FAULT_UNPARSEABLE, fault, why, why_len, "empty answer", "", 0);
    if (s[0] == '{')
        return parse_object(s, n, label, reason, reason_len, fault, why, why_len);
    size_t w = n > 1 && s[n - 1] == '.' ? n - 1 : n;
    int l = label_of(s, w);
    if (l != 0) {
        *label = l;
        return EMPQ_OK;
    }
    if (bare_word(s, w))
        return refuse(EMPQ_JUDGE_FAULT_OFF_SCALE, fault, why, why_len, "label", s, w);
    return refuse(EMPQ_JUDGE_FAULT_UNPARSEABLE, fault, why, why_len, "neither a label nor a JSON verdict:", s, n);
}

void empq_judge_check(const Empq__ModelSpec *m, empq_provider_result *r)
{
    if (r == NULL || !empq_judge_is_judge(m) || r->cls != EMPQ_PROVIDER_SUCCESS)
        return;
    int label = 0;
    empq_judge_fault f = EMPQ_JUDGE_FAULT_NONE;
    if (empq_judge_parse(r->gen.text, &label, NULL, 0, &f, r->reason, sizeof r->reason) == EMPQ_OK)
        return;
    r->cls = EMPQ_PROVIDER_RETRYABLE;
}

/* ==================== judge-ratings.csv ==================== */

static int cmp_job(const void *a, const void *b)
{
    const Empq__Result *x = *(Empq__Result *const *)a, *y = *(Empq__Result *const *)b;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* Characters (UTF-8 code points) of s; s may be NULL (0). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; s != NULL && *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int csv_row(empq_buf *b, const Empq__Run *run, const Empq__ModelSpec *m, const Empq__Result *r,
                   const Empq__Prompt *p, int label, const char *reason)
{
    int rc = empq_buf_csv_field(b, run->id, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, m->alias, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_u64(b, (uint64_t)(r->has_sample ? r->sample : 0) + 1, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, p != NULL ? p->id : NULL, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, p != NULL ? p->source : NULL, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_u64(b, r->prompt, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, p != NULL ? p->emotion : NULL, 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, p != NULL ? p->sentiment : NULL, 0);
    if (rc == EMPQ_OK && p != NULL && p->response != NULL) {
        empq_style_counts sc;
        empq_style_count(p->response, &sc);
        rc = empq_buf_csv_u64(b, sc.words, 0);
        if (rc == EMPQ_OK)
            rc = empq_buf_csv_u64(b, utf8_chars(p->response), 0);
    } else if (rc == EMPQ_OK) {
        rc = empq_buf_csv_field(b, NULL, 0);
        if (rc == EMPQ_OK)
            rc = empq_buf_csv_field(b, NULL, 0);
    }
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, empq_judge_label_name(label), 0);
    if (rc == EMPQ_OK)
        rc = empq_buf_csv_field(b, reason, 1);
    return rc;
}

int empq_judge_csv_render(const Empq__Run *run, Empq__Prompt *const *prompts, size_t n_prompts,
                          Empq__Result *const *results, size_t n_results, empq_buf *out, size_t *rows,
                          size_t *skipped, empq_error *err)
{
    size_t n_rows = 0, n_skip = 0;
    if (rows != NULL)
        *rows = 0;
    if (skipped != NULL)
        *skipped = 0;
    if (run == NULL || run->spec == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "judge: no run");
    Empq__Result **v = NULL;
    if (n_results > 0) {
        v = malloc(n_results * sizeof *v);
        if (v == NULL)
            return empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory for %zu results", n_results);
        memcpy(v, results, n_results * sizeof *v);
        qsort(v, n_results, sizeof *v, cmp_job);
    }
    int rc = empq_buf_append(out, EMPQ_JUDGE_CSV_HEADER, strlen(EMPQ_JUDGE_CSV_HEADER));
    for (size_t i = 0; rc == EMPQ_OK && i < n_results; i++) {
        const Empq__Result *r = v[i];
        if (i > 0 && v[i - 1]->job == r->job)
            continue; /* delivered twice: written once */
        if (r->model >= run->spec->n_models) {
            rc = empq_error_set(err, EMPQ_EINVAL, "judge: result of job %u names model %u of %zu", r->job,
                                r->model, run->spec->n_models);
            break;
        }
        const Empq__ModelSpec *m = run->spec->models[r->model];
        if (!empq_judge_is_judge(m))
            continue;
        int label = 0;
        char reason[EMPQ_JUDGE_REASON_MAX];
        if (empq_judge_parse(r->gen != NULL ? r->gen->text : NULL, &label, reason, sizeof reason, NULL, NULL, 0) !=
            EMPQ_OK) {
            n_skip++;
            continue;
        }
        const Empq__Prompt *p = r->prompt < n_prompts ? prompts[r->prompt] : NULL;
        rc = csv_row(out, run, m, r, p, label, reason);
        if (rc != EMPQ_OK)
            empq_error_set(err, rc, "judge: out of memory for judge-ratings.csv");
        n_rows++;
    }
    free(v);
    if (rows != NULL)
        *rows = n_rows;
    if (skipped != NULL)
        *skipped = n_skip;
    return rc;
}

int empq_judge_write_csv(empq_store *s, const char *run_id, const char *path, size_t *rows, empq_error *err)
{
    Empq__Run *run = NULL;
    Empq__Prompt **pv = NULL;
    uint32_t *idx = NULL;
    Empq__Result **res = NULL;
    size_t n_res = 0, n_rows = 0, skipped = 0;
    empq_buf b = {0};
    if (rows != NULL)
        *rows = 0;
    int rc = empq_store_run_get(s, run_id, &run);
    if (rc != EMPQ_OK) {
        empq_error_set(err, rc, "run %s: %s", run_id, rc == EMPQ_ENOTFOUND ? "no such run" : empq_store_errstr(s));
        goto done;
    }
    if (!empq_judge_is_judge_run(run)) {
        rc = empq_error_set(err, EMPQ_EINVAL, "run %s is not a judge run (no model with output judge)", run_id);
        goto done;
    }
    size_t n = run->n_prompts;
    pv = calloc(n > 0 ? n : 1, sizeof *pv);
    idx = malloc((n > 0 ? n : 1) * sizeof *idx);
    if (pv == NULL || idx == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "judge: out of memory for %zu prompts", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    rc = empq_store_prompts_get(s, run_id, idx, n, pv);
    if (rc == EMPQ_OK)
        rc = empq_store_results_all(s, run_id, &res, &n_res);
    if (rc != EMPQ_OK) {
        empq_error_set(err, rc, "run %s: reading from Redis: %s", run_id, empq_store_errstr(s));
        goto done;
    }
    rc = empq_judge_csv_render(run, pv, n, res, n_res, &b, &n_rows, &skipped, err);
    if (rc == EMPQ_OK)
        rc = empq_write_file_atomic(path, b.data, b.len, err);
    if (rc == EMPQ_OK && rows != NULL)
        *rows = n_rows;
done:
    empq_buf_free(&b);
    if (pv != NULL)
        for (size_t i = 0; i < run->n_prompts; i++)
            if (pv[i] != NULL)
                empq__prompt__free_unpacked(pv[i], NULL);
    free(pv);
    free(idx);
    empq_store_free_results(res, n_res);
    if (run != NULL)
        empq__run__free_unpacked(run, NULL);
    return rc;
}
