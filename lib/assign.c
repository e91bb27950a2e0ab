/* assign.c: the rating plan (see include/empq/assign.h). Pure: no I/O. */
#include "empq/assign.h"
#include "empq/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stream constants: the emotion shuffle and each slot draw from their own
 * stream of the one seed, so adding a slot changes no other slot. */
#define STREAM_GROUPS 0x6a09e667f3bcc909ull
#define STREAM_SLOT 0xbb67ae8584caa73bull

void empq_assign_opts_default(empq_assign_opts *o)
{
    memset(o, 0, sizeof *o);
    o->items = 10;
    o->raters = 1;
    o->seed = 1;
}

void empq_assign_free(empq_assign_plan **pp)
{
    if (pp == NULL || *pp == NULL)
        return;
    empq_assign_plan *p = *pp;
    for (uint32_t i = 0; i < p->n_conditions && p->conditions != NULL; i++)
        free(p->conditions[i]);
    free(p->conditions);
    for (size_t i = 0; i < p->n_slots && p->slots != NULL; i++)
        free(p->slots[i].entries);
    free(p->slots);
    free(p->batch_off);
    free(p->batch_prompts);
    free(p);
    *pp = NULL;
}

/* ==================== building ==================== */

static const char *const *sort_emotions; /* qsort has no context argument */

/* By emotion label, then by prompt index (a stable, total order). */
static int by_emotion(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(sort_emotions[x], sort_emotions[y]);
    if (c != 0)
        return c;
    return x < y ? -1 : x > y;
}

static int by_index(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void shuffle_u32(uint32_t *v, size_t n, empq_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)empq_rng_below(r, i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static int check_opts(const empq_assign_opts *o, uint32_t n_conditions, empq_error *err)
{
    if (o->items == 0)
        return empq_error_set(err, EMPQ_EINVAL, "items per participant must be at least 1");
    if (o->raters == 0)
        return empq_error_set(err, EMPQ_EINVAL, "raters per item must be at least 1");
    if (n_conditions == 0 || n_conditions > EMPQ_ASSIGN_MAX_CONDITIONS)
        return empq_error_set(err, EMPQ_EINVAL, "a plan needs 1 to %d conditions, got %" PRIu32,
                              EMPQ_ASSIGN_MAX_CONDITIONS, n_conditions);
    if (o->n_checks > EMPQ_ASSIGN_MAX_CHECKS)
        return empq_error_set(err, EMPQ_EINVAL, "at most %d attention checks", EMPQ_ASSIGN_MAX_CHECKS);
    for (size_t i = 1; i < o->n_checks; i++)
        if (o->checks[i] <= o->checks[i - 1])
            return empq_error_set(err, EMPQ_EINVAL,
                                  "attention-check positions must be different and ascending");
    return EMPQ_OK;
}

int empq_assign_build(const char *const *conditions, uint32_t n_conditions,
                      const char *const *emotions, uint32_t n_prompts, const uint8_t *usable,
                      const empq_assign_opts *o, empq_assign_plan **out, empq_error *err)
{
    *out = NULL;
    int rc = check_opts(o, n_conditions, err);
    if (rc != EMPQ_OK)
        return rc;
    uint32_t n_used = 0;
    for (uint32_t i = 0; i < n_prompts; i++)
        n_used += usable == NULL || usable[i] ? 1u : 0u;
    if (n_used == 0)
        return empq_error_set(err, EMPQ_EINVAL, "no prompt has a response from every condition");
    uint32_t n_batches = (n_used + o->items - 1) / o->items;
    uint64_t per_condition = (uint64_t)n_batches * o->raters;
    if (o->participants != 0 && o->participants != per_condition)
        return empq_error_set(err, EMPQ_EINVAL,
                              "%" PRIu32 " participants per condition do not fit: %" PRIu32
                              " prompts in batches of %" PRIu32 " make %" PRIu32
                              " batches, x %" PRIu32 " raters per item = %" PRIu64
                              " participants per condition",
                              o->participants, n_used, o->items, n_batches, o->raters,
                              per_condition);
    uint32_t min_batch = n_used / n_batches; /* sizes are min_batch or min_batch + 1 */
    for (size_t i = 0; i < o->n_checks; i++)
        if (o->checks[i] >= min_batch + o->n_checks)
            return empq_error_set(err, EMPQ_EINVAL,
                                  "attention-check position %" PRIu32
                                  " is past the end: a participant sees %zu entries (positions 0-%zu)",
                                  o->checks[i], (size_t)min_batch + o->n_checks,
                                  (size_t)min_batch + o->n_checks - 1);

    empq_assign_plan *p = calloc(1, sizeof *p);
    if (p == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "plan: out of memory");
    p->n_prompts = n_prompts;
    p->n_used = n_used;
    p->items = o->items;
    p->raters = o->raters;
    p->n_batches = n_batches;
    p->seed = o->seed;
    p->n_checks = o->n_checks;
    memcpy(p->checks, o->checks, sizeof p->checks);
    p->conditions = calloc(n_conditions, sizeof *p->conditions);
    p->batch_off = calloc((size_t)n_batches + 1, sizeof *p->batch_off);
    p->batch_prompts = calloc(n_used, sizeof *p->batch_prompts);
    p->n_slots = (size_t)n_conditions * n_batches * o->raters;
    p->slots = calloc(p->n_slots, sizeof *p->slots);
    uint32_t *order = calloc(n_used, sizeof *order);
    if (p->conditions == NULL || p->batch_off == NULL || p->batch_prompts == NULL ||
        p->slots == NULL || order == NULL)
        goto oom;
    p->n_conditions = n_conditions;
    for (uint32_t c = 0; c < n_conditions; c++)
        if ((p->conditions[c] = empq_strdup(conditions[c])) == NULL)
            goto oom;

    /* 1. group by emotion, shuffle within each group */
    uint32_t k = 0;
    for (uint32_t i = 0; i < n_prompts; i++)
        if (usable == NULL || usable[i])
            order[k++] = i;
    sort_emotions = emotions;
    qsort(order, n_used, sizeof *order, by_emotion);
    sort_emotions = NULL;
    empq_rng r;
    empq_rng_seed(&r, o->seed ^ STREAM_GROUPS);
    for (uint32_t a = 0; a < n_used;) {
        uint32_t b = a + 1;
        while (b < n_used && strcmp(emotions[order[a]], emotions[order[b]]) == 0)
            b++;
        shuffle_u32(order + a, b - a, &r);
        a = b;
    }

    /* 2. deal round robin: list position j -> batch j mod B */
    for (uint32_t b = 0; b < n_batches; b++)
        p->batch_off[b + 1] = p->batch_off[b] + (n_used - b + n_batches - 1) / n_batches;
    for (uint32_t b = 0; b < n_batches; b++) {
        uint32_t *dst = p->batch_prompts + p->batch_off[b];
        uint32_t n = 0;
        for (uint32_t j = b; j < n_used; j += n_batches)
            dst[n++] = order[j];
        qsort(dst, n, sizeof *dst, by_index);
    }

    /* 3. slots: each shows its batch in its own order, checks inserted */
    for (size_t s = 0; s < p->n_slots; s++) {
        empq_assign_slot *sl = &p->slots[s];
        sl->replica = (uint32_t)(s % o->raters);
        sl->batch = (uint32_t)((s / o->raters) % n_batches);
        sl->condition = (uint32_t)(s / ((size_t)o->raters * n_batches));
        uint32_t nb = p->batch_off[sl->batch + 1] - p->batch_off[sl->batch];
        sl->n = nb + (uint32_t)o->n_checks;
        sl->entries = calloc(sl->n, sizeof *sl->entries);
        if (sl->entries == NULL)
            goto oom;
        empq_rng_seed(&r, o->seed ^ (STREAM_SLOT * (uint64_t)(s + 1)));
        memcpy(order, p->batch_prompts + p->batch_off[sl->batch], nb * sizeof *order);
        shuffle_u32(order, nb, &r);
        uint32_t next = 0;
        size_t ci = 0;
        for (uint32_t pos = 0; pos < sl->n; pos++) {
            if (ci < o->n_checks && o->checks[ci] == pos) {
                sl->entries[pos] = -(int32_t)(1 + empq_rng_below(&r, 3));
                ci++;
            } else {
                sl->entries[pos] = (int32_t)order[next++];
            }
        }
    }
    free(order);
    *out = p;
    return EMPQ_OK;
oom:
    free(order);
    empq_assign_free(&p);
    return empq_error_set(err, EMPQ_ENOMEM, "plan: out of memory");
}

/* ==================== texts ==================== */

const char *empq_assign_rating_label(int rating)
{
    switch (rating) {
    case 1: return "Bad";
    case 2: return "Okay";
    case 3: return "Good";
    default: return "";
    }
}

const char *empq_assign_check_situation(void)
{
    return "This dialogue is an attention check.";
}

const char *empq_assign_check_prompt(void)
{
    return "Please read the response below carefully and do what it asks.";
}

const char *empq_assign_check_response(int expect)
{
    switch (expect) {
    case 1: return "This is an attention check: please rate this response as Bad.";
    case 2: return "This is an attention check: please rate this response as Okay.";
    case 3: return "This is an attention check: please rate this response as Good.";
    default: return "";
    }
}

/* ==================== files ==================== */

int empq_assign_write_csv(const empq_assign_plan *p, Empq__Prompt *const *prompts,
                          const char *const *responses, empq_buf *out, empq_error *err)
{
    static const char *const head[] = {"slot", "condition", "batch", "replica", "position",
                                       "kind", "prompt_index", "item", "emotion", "expected",
                                       "situation", "prompt", "response"};
    int rc = EMPQ_OK;
    size_t nh = sizeof head / sizeof head[0];
    for (size_t i = 0; i < nh && rc == EMPQ_OK; i++)
        rc = empq_buf_csv_field(out, head[i], i + 1 == nh);
    for (size_t s = 0; s < p->n_slots && rc == EMPQ_OK; s++) {
        const empq_assign_slot *sl = &p->slots[s];
        for (uint32_t pos = 0; pos < sl->n && rc == EMPQ_OK; pos++) {
            int32_t e = sl->entries[pos];
            rc = empq_buf_csv_u64(out, s, 0);
            if (rc == EMPQ_OK)
                rc = empq_buf_csv_field(out, p->conditions[sl->condition], 0);
            if (rc == EMPQ_OK)
                rc = empq_buf_csv_u64(out, sl->batch, 0);
            if (rc == EMPQ_OK)
                rc = empq_buf_csv_u64(out, sl->replica, 0);
            if (rc == EMPQ_OK)
                rc = empq_buf_csv_u64(out, pos, 0);
            if (rc != EMPQ_OK)
                break;
            if (EMPQ_ASSIGN_IS_CHECK(e)) {
                char item[64];
                snprintf(item, sizeof item, "check-%zu-%" PRIu32, s, pos);
                int x = EMPQ_ASSIGN_CHECK_EXPECT(e);
                rc = empq_buf_csv_field(out, "check", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, item, 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_u64(out, (uint64_t)x, 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, empq_assign_check_situation(), 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, empq_assign_check_prompt(), 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, empq_assign_check_response(x), 1);
            } else {
                const Empq__Prompt *pr = prompts != NULL ? prompts[e] : NULL;
                const char *resp =
                    responses != NULL ? responses[(size_t)e * p->n_conditions + sl->condition] : NULL;
                rc = empq_buf_csv_field(out, "item", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_u64(out, (uint64_t)e, 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, pr != NULL ? pr->id : "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, pr != NULL ? pr->emotion : "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, pr != NULL ? pr->situation : "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, pr != NULL ? pr->prompt : "", 0);
                if (rc == EMPQ_OK)
                    rc = empq_buf_csv_field(out, resp, 1);
            }
        }
    }
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "plan.csv: out of memory");
    return EMPQ_OK;
}

static int json_str(empq_buf *b, const char *s)
{
    int rc = empq_buf_append(b, "\"", 1);
    for (const unsigned char *q = (const unsigned char *)s; *q != '\0' && rc == EMPQ_OK; q++) {
        if (*q == '"' || *q == '\\')
            rc = empq_buf_printf(b, "\\%c", *q);
        else if (*q < 0x20)
            rc = empq_buf_printf(b, "\\u%04x", *q);
        else
            rc = empq_buf_append(b, q, 1);
    }
    if (rc == EMPQ_OK)
        rc = empq_buf_append(b, "\"", 1);
    return rc;
}

int empq_assign_write_json(const empq_assign_plan *p, const char *run, empq_buf *out,
                           empq_error *err)
{
    int rc = empq_buf_append(out, "{\"run\": ", 8);
    if (rc == EMPQ_OK)
        rc = run != NULL ? json_str(out, run) : empq_buf_append(out, "null", 4);
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, ",\n \"conditions\": [", 18);
    for (uint32_t c = 0; c < p->n_conditions && rc == EMPQ_OK; c++) {
        rc = c > 0 ? empq_buf_append(out, ", ", 2) : EMPQ_OK;
        if (rc == EMPQ_OK)
            rc = json_str(out, p->conditions[c]);
    }
    if (rc == EMPQ_OK)
        rc = empq_buf_printf(out,
                             "],\n \"items\": %" PRIu32 ", \"raters\": %" PRIu32 ", \"batches\": %" PRIu32
                             ", \"participants_per_condition\": %" PRIu64 ", \"participants\": %zu"
                             ", \"seed\": %" PRIu64 ", \"prompts\": %" PRIu32
                             ", \"prompts_used\": %" PRIu32 ",\n \"attention_checks\": [",
                             p->items, p->raters, p->n_batches, (uint64_t)p->n_batches * p->raters,
                             p->n_slots, p->seed, p->n_prompts, p->n_used);
    for (size_t i = 0; i < p->n_checks && rc == EMPQ_OK; i++)
        rc = empq_buf_printf(out, "%s%" PRIu32, i > 0 ? ", " : "", p->checks[i]);
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "],\n \"batch_prompts\": [", 22);
    for (uint32_t b = 0; b < p->n_batches && rc == EMPQ_OK; b++) {
        rc = empq_buf_append(out, b > 0 ? ",\n  [" : "\n  [", b > 0 ? 5 : 4);
        for (uint32_t i = p->batch_off[b]; i < p->batch_off[b + 1] && rc == EMPQ_OK; i++)
            rc = empq_buf_printf(out, "%s%" PRIu32, i > p->batch_off[b] ? ", " : "",
                                 p->batch_prompts[i]);
        if (rc == EMPQ_OK)
            rc = empq_buf_append(out, "]", 1);
    }
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "],\n \"slots\": [", 14);
    for (size_t s = 0; s < p->n_slots && rc == EMPQ_OK; s++) {
        const empq_assign_slot *sl = &p->slots[s];
        rc = empq_buf_printf(out,
                             "%s\n  {\"slot\": %zu, \"condition\": ", s > 0 ? "," : "", s);
        if (rc == EMPQ_OK)
            rc = json_str(out, p->conditions[sl->condition]);
        if (rc == EMPQ_OK)
            rc = empq_buf_printf(out, ", \"batch\": %" PRIu32 ", \"replica\": %" PRIu32
                                      ", \"entries\": [",
                                 sl->batch, sl->replica);
        for (uint32_t i = 0; i < sl->n && rc == EMPQ_OK; i++)
            rc = empq_buf_printf(out, "%s%" PRId32, i > 0 ? ", " : "", sl->entries[i]);
        if (rc == EMPQ_OK)
            rc = empq_buf_append(out, "]}", 2);
    }
    if (rc == EMPQ_OK)
        rc = empq_buf_append(out, "\n ]}\n", 5);
    if (rc != EMPQ_OK)
        return empq_error_set(err, rc, "plan.json: out of memory");
    return EMPQ_OK;
}
