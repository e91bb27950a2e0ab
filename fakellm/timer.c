/* timer.c: a min-heap of deadlines served by one thread. See timer.h. */
#include "timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    uint64_t deadline_ms;
    uint64_t seq; /* ties fire in the order added */
    void *item;
} entry;

struct fakellm_timer {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the thread waits here (CLOCK_MONOTONIC) */
    pthread_cond_t idle; /* flush waits here for the heap to empty */
    entry *heap;
    size_t len, cap;
    uint64_t next_seq;
    int stopping;
    int flushing; /* number of flush calls waiting */
    int firing;   /* the thread is inside a callback */
    fakellm_timer_fn fn;
    void *user;
    pthread_t thread;
};

uint64_t fakellm_timer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------------ */
/* Heap                                                                      */
/* ------------------------------------------------------------------------ */

static int before(const entry *a, const entry *b)
{
    if (a->deadline_ms != b->deadline_ms)
        return a->deadline_ms < b->deadline_ms;
    return a->seq < b->seq;
}

static void sift_up(entry *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&h[i], &h[parent]))
            break;
        entry tmp = h[i];
        h[i] = h[parent];
        h[parent] = tmp;
        i = parent;
    }
}

static void sift_down(entry *h, size_t len, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < len && before(&h[l], &h[m]))
            m = l;
        if (r < len && before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        entry tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static entry heap_pop(fakellm_timer *t)
{
    entry top = t->heap[0];
    t->len--;
    if (t->len > 0) {
        t->heap[0] = t->heap[t->len];
        sift_down(t->heap, t->len, 0);
    }
    return top;
}

/* ------------------------------------------------------------------------ */
/* Thread                                                                    */
/* ------------------------------------------------------------------------ */

static void *timer_main(void *arg)
{
    fakellm_timer *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stopping) {
        if (t->len == 0) {
            if (t->flushing)
                pthread_cond_broadcast(&t->idle);
            pthread_cond_wait(&t->wake, &t->mu);
            continue;
        }
        uint64_t now = fakellm_timer_now_ms();
        uint64_t due = t->heap[0].deadline_ms;
        if (due > now && !t->flushing) {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000u),
                                  .tv_nsec = (long)(due % 1000u) * 1000000L};
            pthread_cond_timedwait(&t->wake, &t->mu, &ts);
            continue;
        }
        entry e = heap_pop(t);
        t->firing = 1;
        pthread_mutex_unlock(&t->mu);
        t->fn(e.item, t->user);
        pthread_mutex_lock(&t->mu);
        t->firing = 0;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Public                                                                    */
/* ------------------------------------------------------------------------ */

int fakellm_timer_new(fakellm_timer **out, fakellm_timer_fn fn, void *user, empq_error *err)
{
    pthread_condattr_t attr;
    int rc;

    *out = NULL;
    fakellm_timer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "fakellm timer: out of memory");
    t->fn = fn;
    t->user = user;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->idle, NULL);
    pthread_condattr_init(&attr);
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&t->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        pthread_cond_destroy(&t->idle);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return empq_error_set(err, EMPQ_EIO, "fakellm timer: monotonic condition variable: %s",
                              strerror(rc));
    }
    rc = pthread_create(&t->thread, NULL, timer_main, t);
    if (rc != 0) {
        pthread_cond_destroy(&t->wake);
        pthread_cond_destroy(&t->idle);
        pthread_mutex_destroy(&t->mu);
        free(t);
        return empq_error_set(err, EMPQ_EIO, "fakellm timer: pthread_create: %s", strerror(rc));
    }
    *out = t;
    return EMPQ_OK;
}

int fakellm_timer_add(fakellm_timer *t, void *item, uint64_t deadline_ms)
{
    pthread_mutex_lock(&t->mu);
    if (t->stopping) {
        pthread_mutex_unlock(&t->mu);
        return EMPQ_ECANCELED;
    }
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        entry *h = realloc(t->heap, cap * sizeof(*h));
        if (h == NULL) {
            pthread_mutex_unlock(&t->mu);
            return EMPQ_ENOMEM;
        }
        t->heap = h;
        t->cap = cap;
    }
    t->heap[t->len] = (entry){.deadline_ms = deadline_ms, .seq = t->next_seq++, .item = item};
    sift_up(t->heap, t->len);
    t->len++;
    /* Wake the thread only when its next wait got shorter. */
    if (t->heap[0].item == item && t->heap[0].seq == t->next_seq - 1)
        pthread_cond_signal(&t->wake);
    pthread_mutex_unlock(&t->mu);
    return EMPQ_OK;
}

size_t fakellm_timer_pending(fakellm_timer *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->len;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void fakellm_timer_flush(fakellm_timer *t)
{
    pthread_mutex_lock(&t->mu);
    t->flushing++;
    pthread_cond_signal(&t->wake);
    while ((t->len > 0 || t->firing) && !t->stopping)
        pthread_cond_wait(&t->idle, &t->mu);
    t->flushing--;
    pthread_mutex_unlock(&t->mu);
}

void fakellm_timer_free(fakellm_timer **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    fakellm_timer *t = *tp;
    pthread_mutex_lock(&t->mu);
    t->stopping = 1;
    pthread_cond_signal(&t->wake);
    pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
    /* a callback running now may still reach the timer through *tp (to add
     * again, which stopping refuses): *tp goes once the thread is gone */
    pthread_join(t->thread, NULL);
    *tp = NULL;
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
    free(t->heap);
    free(t);
}
