/* runinfo.c: each prompt's emotion and the parent of a loaded run. */
#include "runinfo.h"

#include <stdlib.h>
#include <string.h>

#include "empq/util.h"

#define RI_CHUNK 4096

void bk__runinfo_free(bk__runinfo **ri)
{
    if (ri == NULL || *ri == NULL)
        return;
    bk__runinfo *x = *ri;
    for (size_t i = 0; i < x->n_names; i++)
        free(x->names[i]);
    free(x->names);
    free(x->emotion);
    free(x->run_id);
    free(x->parent);
    free(x);
    *ri = NULL;
}

bk__runinfo *bk__runinfo_find(bk__runinfo *head, const char *run_id)
{
    for (bk__runinfo *x = head; x != NULL; x = x->next)
        if (strcmp(x->run_id, run_id) == 0)
            return x;
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Index of name in x->names (unsorted while loading), added when new. */
static int name_index(bk__runinfo *x, const char *name, size_t *cap)
{
    for (size_t i = 0; i < x->n_names; i++)
        if (strcmp(x->names[i], name) == 0)
            return (int)i;
    if (x->n_names >= UINT16_MAX - 1)
        return EMPQ_ERANGE;
    if (x->n_names == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        char **v = realloc(x->names, c * sizeof *v);
        if (v == NULL)
            return EMPQ_ENOMEM;
        x->names = v;
        *cap = c;
    }
    x->names[x->n_names] = empq_strdup(name);
    if (x->names[x->n_names] == NULL)
        return EMPQ_ENOMEM;
    return (int)x->n_names++;
}

int bk__runinfo_load(empq_store *s, const Empq__Run *run, bk__runinfo **out, empq_error *err)
{
    *out = NULL;
    bk__runinfo *x = calloc(1, sizeof *x);
    uint32_t *idx = calloc(RI_CHUNK, sizeof *idx);
    Empq__Prompt **ps = calloc(RI_CHUNK, sizeof *ps);
    int rc = EMPQ_OK;
    if (x == NULL || idx == NULL || ps == NULL)
        goto oom;
    x->run_id = empq_strdup(run->id);
    x->parent = run->parent != NULL && run->parent[0] != '\0' ? empq_strdup(run->parent) : NULL;
    x->n_prompts = run->n_prompts;
    x->emotion = malloc((run->n_prompts ? run->n_prompts : 1) * sizeof *x->emotion);
    if (x->run_id == NULL || x->emotion == NULL)
        goto oom;
    size_t cap = 0;
    for (uint32_t base = 0; base < run->n_prompts; base += RI_CHUNK) {
        size_t n = run->n_prompts - base < RI_CHUNK ? run->n_prompts - base : RI_CHUNK;
        for (size_t i = 0; i < n; i++)
            idx[i] = base + (uint32_t)i;
        rc = empq_store_prompts_get(s, run->id, idx, n, ps);
        if (rc != EMPQ_OK) {
            empq_error_set(err, rc, "run %s: reading prompts: %s", run->id, empq_store_errstr(s));
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            int k = -1;
            if (ps[i] != NULL && ps[i]->emotion != NULL)
                k = name_index(x, ps[i]->emotion, &cap);
            if (ps[i] != NULL)
                empq__prompt__free_unpacked(ps[i], NULL);
            ps[i] = NULL;
            if (k == EMPQ_ENOMEM)
                goto oom;
            if (k == EMPQ_ERANGE) {
                rc = empq_error_set(err, EMPQ_ERANGE, "run %s: more than 65534 emotions", run->id);
                goto fail;
            }
            x->emotion[base + i] = k < 0 ? UINT16_MAX : (uint16_t)k;
        }
    }
    /* sort the names and renumber */
    if (x->n_names > 0) {
        char **sorted = malloc(x->n_names * sizeof *sorted);
        uint16_t *map = malloc(x->n_names * sizeof *map);
        if (sorted == NULL || map == NULL) {
            free(sorted);
            free(map);
            goto oom;
        }
        memcpy(sorted, x->names, x->n_names * sizeof *sorted);
        qsort(sorted, x->n_names, sizeof *sorted, cmp_str);
        for (size_t i = 0; i < x->n_names; i++) { /* names are unique */
            char **hit = bsearch(&x->names[i], sorted, x->n_names, sizeof *sorted, cmp_str);
            map[i] = (uint16_t)(hit - sorted);
        }
        for (uint32_t p = 0; p < x->n_prompts; p++)
            if (x->emotion[p] != UINT16_MAX)
                x->emotion[p] = map[x->emotion[p]];
        free(x->names);
        x->names = sorted;
        free(map);
    }
    free(idx);
    free(ps);
    *out = x;
    return EMPQ_OK;
oom:
    rc = empq_error_set(err, EMPQ_ENOMEM, "run %s: out of memory for the emotion index", run->id);
fail:
    free(idx);
    free(ps);
    bk__runinfo_free(&x);
    return rc;
}

void bk__runinfo_counts(const bk__runinfo *ri, const bk__jobtable *t, bk__counts *out)
{
    memset(out, 0, (ri->n_names + 1) * sizeof *out);
    uint32_t per = bk__jobtable_n_models(t) * bk__jobtable_samples(t);
    uint32_t total = bk__jobtable_total(t);
    for (uint32_t p = 0, job = 0; p < ri->n_prompts && job < total; p++) {
        size_t e = ri->emotion[p] == UINT16_MAX ? ri->n_names : ri->emotion[p];
        bk__counts *c = &out[e];
        for (uint32_t k = 0; k < per && job < total; k++, job++) {
            switch (bk__jobtable_state(t, job)) {
            case BK_JOB_PENDING: c->pending++; break;
            case BK_JOB_LEASED: c->leased++; break;
            case BK_JOB_BATCHED: c->batched++; break;
            case BK_JOB_DONE: c->done++; break;
            case BK_JOB_DEAD: c->dead++; break;
            default: break;
            }
        }
    }
}
