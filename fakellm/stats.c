/* stats.c: the fake server's counters. See stats.h. */
#include "stats.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "empq/error.h"

#define MODEL_NAME_MAX 256
#define OTHER "(other)"

typedef struct model_count {
    char *name;
    uint64_t n;
} model_count;

struct fakellm_stats {
    pthread_mutex_t mu;
    pthread_cond_t idle; /* CLOCK_MONOTONIC; signalled when in_flight hits 0 */
    uint64_t requests, errors, in_flight, max_in_flight, hung;
    uint64_t faults[FAKELLM_FAULT_COUNT];
    uint64_t other;      /* completions of models past the table */
    model_count models[FAKELLM_STATS_MODELS];
    size_t n_models;
};

fakellm_stats *fakellm_stats_new(void)
{
    pthread_condattr_t attr;
    fakellm_stats *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->idle, &attr);
    pthread_condattr_destroy(&attr);
    return s;
}

void fakellm_stats_free(fakellm_stats **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    fakellm_stats *s = *sp;
    *sp = NULL;
    for (size_t i = 0; i < s->n_models; i++)
        free(s->models[i].name);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void fakellm_stats_begin(fakellm_stats *s)
{
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    if (s->in_flight > s->max_in_flight)
        s->max_in_flight = s->in_flight;
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_end(fakellm_stats *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->in_flight > 0)
        s->in_flight--;
    if (s->in_flight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_answered(fakellm_stats *s, const char *model)
{
    const char *m = model ? model : "";
    size_t len = strlen(m), i;
    pthread_mutex_lock(&s->mu);
    s->requests++;
    for (i = 0; i < s->n_models; i++) {
        if (strcmp(s->models[i].name, m) == 0) {
            s->models[i].n++;
            break;
        }
    }
    if (i == s->n_models) {
        char *copy = NULL;
        if (s->n_models < FAKELLM_STATS_MODELS && len <= MODEL_NAME_MAX)
            copy = malloc(len + 1);
        if (copy != NULL) {
            memcpy(copy, m, len + 1);
            s->models[s->n_models].name = copy;
            s->models[s->n_models].n = 1;
            s->n_models++;
        } else {
            s->other++;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_error(fakellm_stats *s)
{
    pthread_mutex_lock(&s->mu);
    s->errors++;
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_fault(fakellm_stats *s, fakellm_fault f)
{
    if (f <= FAKELLM_FAULT_NONE || f >= FAKELLM_FAULT_COUNT)
        return;
    pthread_mutex_lock(&s->mu);
    s->faults[f]++;
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_hung(fakellm_stats *s, int delta)
{
    pthread_mutex_lock(&s->mu);
    if (delta > 0)
        s->hung++;
    else if (s->hung > 0)
        s->hung--;
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_reset(fakellm_stats *s)
{
    pthread_mutex_lock(&s->mu);
    memset(s->faults, 0, sizeof(s->faults));
    s->requests = 0;
    s->errors = 0;
    s->other = 0;
    s->max_in_flight = s->in_flight;
    for (size_t i = 0; i < s->n_models; i++)
        free(s->models[i].name);
    s->n_models = 0;
    pthread_mutex_unlock(&s->mu);
}

void fakellm_stats_get(fakellm_stats *s, fakellm_stats_snapshot *out)
{
    pthread_mutex_lock(&s->mu);
    out->requests = s->requests;
    out->errors = s->errors;
    out->in_flight = s->in_flight;
    out->max_in_flight = s->max_in_flight;
    out->hung = s->hung;
    memcpy(out->faults, s->faults, sizeof(out->faults));
    pthread_mutex_unlock(&s->mu);
}

int fakellm_stats_wait_idle(fakellm_stats *s, uint64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000u);
    ts.tv_nsec += (long)(timeout_ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->in_flight > 0 && rc == 0)
        rc = pthread_cond_timedwait(&s->idle, &s->mu, &ts);
    int idle = s->in_flight == 0;
    pthread_mutex_unlock(&s->mu);
    return idle ? EMPQ_OK : EMPQ_ETIMEOUT;
}

int fakellm_stats_json(fakellm_stats *s, empq_buf *out)
{
    int rc = EMPQ_ENOMEM;
    json_t *root = json_object(), *by_model = json_object(), *faults = json_object();
    char *text = NULL;

    pthread_mutex_lock(&s->mu);
    if (root == NULL || by_model == NULL || faults == NULL)
        goto unlock;
    for (int k = 1; k < FAKELLM_FAULT_COUNT; k++)
        if (json_object_set_new(faults, fakellm_fault_name((fakellm_fault)k), json_integer((json_int_t)s->faults[k])) != 0)
            goto unlock;
    for (size_t i = 0; i < s->n_models; i++)
        if (json_object_set_new(by_model, s->models[i].name, json_integer((json_int_t)s->models[i].n)) != 0)
            goto unlock;
    if (s->other > 0 && json_object_set_new(by_model, OTHER, json_integer((json_int_t)s->other)) != 0)
        goto unlock;
    if (json_object_set_new(root, "requests", json_integer((json_int_t)s->requests)) != 0 ||
        json_object_set(root, "by_model", by_model) != 0 ||
        json_object_set_new(root, "errors", json_integer((json_int_t)s->errors)) != 0 ||
        json_object_set_new(root, "in_flight", json_integer((json_int_t)s->in_flight)) != 0 ||
        json_object_set_new(root, "max_in_flight", json_integer((json_int_t)s->max_in_flight)) != 0 ||
        json_object_set_new(root, "hung", json_integer((json_int_t)s->hung)) != 0 ||
        json_object_set(root, "faults", faults) != 0)
        goto unlock;
    rc = EMPQ_OK;
unlock:
    pthread_mutex_unlock(&s->mu);
    if (rc == EMPQ_OK) {
        text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        rc = text ? empq_buf_append(out, text, strlen(text)) : EMPQ_ENOMEM;
    }
    free(text);
    json_decref(by_model);
    json_decref(faults);
    json_decref(root);
    return rc;
}
