/* test_fakellm_timer.c: the deadline heap fires in order, on time, from one
 * thread, under concurrent adds; flush fires everything at once; free drops
 * what is left. */
#include <pthread.h>
#include <time.h>

#include "check.h"
#include "timer.h"

#define MAX_FIRED 20000

typedef struct record {
    pthread_mutex_t mu;
    size_t n;
    uintptr_t items[MAX_FIRED];
    uint64_t at[MAX_FIRED];
    pthread_t thread;
    int other_thread; /* a callback ran on a second thread */
} record;

static void on_fire(void *item, void *user)
{
    record *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n == 0)
        r->thread = pthread_self();
    else if (!pthread_equal(r->thread, pthread_self()))
        r->other_thread = 1;
    if (r->n < MAX_FIRED) {
        r->items[r->n] = (uintptr_t)item;
        r->at[r->n] = fakellm_timer_now_ms();
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

static size_t fired(record *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void wait_fired(record *r, size_t n, uint64_t timeout_ms)
{
    uint64_t end = fakellm_timer_now_ms() + timeout_ms;
    while (fired(r) < n && fakellm_timer_now_ms() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static record *record_new(void)
{
    record *r = calloc(1, sizeof(*r));
    CHECK(r != NULL);
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static void test_order_and_time(void)
{
    record *r = record_new();
    fakellm_timer *t = NULL;
    empq_error err = {0};
    CHECK_INT(fakellm_timer_new(&t, on_fire, r, &err), EMPQ_OK);
    uint64_t now = fakellm_timer_now_ms();
    /* Added out of order; items name their expected position. */
    CHECK_INT(fakellm_timer_add(t, (void *)3, now + 90), EMPQ_OK);
    CHECK_INT(fakellm_timer_add(t, (void *)1, now + 30), EMPQ_OK);
    CHECK_INT(fakellm_timer_add(t, (void *)4, now + 90), EMPQ_OK); /* tie: after 3 */
    CHECK_INT(fakellm_timer_add(t, (void *)2, now + 60), EMPQ_OK);
    CHECK_INT(fakellm_timer_add(t, (void *)0, now - 5), EMPQ_OK);  /* past: at once */
    wait_fired(r, 5, 2000);
    CHECK_INT(fired(r), 5);
    for (size_t i = 0; i < 5; i++)
        CHECK_INT(r->items[i], i);
    CHECK(r->at[0] <= now + 20);
    CHECK(r->at[1] >= now + 30 && r->at[1] <= now + 80);
    CHECK(r->at[2] >= now + 60);
    CHECK(r->at[3] >= now + 90 && r->at[3] <= now + 140);
    CHECK_INT(fakellm_timer_pending(t), 0);
    CHECK(!r->other_thread);
    fakellm_timer_free(&t);
    CHECK(t == NULL);
    fakellm_timer_free(&t);
    fakellm_timer_free(NULL);
    free(r);
}

/* An earlier deadline added while the thread waits for a later one fires
 * at its own time, not the later one's. */
static void test_earlier_wakes(void)
{
    record *r = record_new();
    fakellm_timer *t = NULL;
    CHECK_INT(fakellm_timer_new(&t, on_fire, r, NULL), EMPQ_OK);
    uint64_t now = fakellm_timer_now_ms();
    CHECK_INT(fakellm_timer_add(t, (void *)2, now + 5000), EMPQ_OK);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    CHECK_INT(fakellm_timer_add(t, (void *)1, now + 50), EMPQ_OK);
    wait_fired(r, 1, 2000);
    CHECK_INT(fired(r), 1);
    CHECK_INT(r->items[0], 1);
    CHECK(r->at[0] < now + 500);
    CHECK_INT(fakellm_timer_pending(t), 1);
    /* free drops the pending one without firing it. */
    fakellm_timer_free(&t);
    CHECK_INT(fired(r), 1);
    free(r);
}

static void test_flush(void)
{
    record *r = record_new();
    fakellm_timer *t = NULL;
    CHECK_INT(fakellm_timer_new(&t, on_fire, r, NULL), EMPQ_OK);
    uint64_t now = fakellm_timer_now_ms();
    for (uintptr_t i = 1; i <= 1000; i++)
        CHECK_INT(fakellm_timer_add(t, (void *)i, now + 60000 + i), EMPQ_OK);
    CHECK_INT(fakellm_timer_pending(t), 1000);
    fakellm_timer_flush(t);
    CHECK_INT(fired(r), 1000);
    CHECK(fakellm_timer_now_ms() - now < 2000);
    for (size_t i = 0; i < 1000; i++)
        CHECK_INT(r->items[i], i + 1);
    fakellm_timer_flush(t); /* empty: returns at once */
    /* Adds still work after a flush. */
    CHECK_INT(fakellm_timer_add(t, (void *)7, fakellm_timer_now_ms()), EMPQ_OK);
    wait_fired(r, 1001, 2000);
    CHECK_INT(fired(r), 1001);
    fakellm_timer_free(&t);
    free(r);
}

typedef struct adder {
    fakellm_timer *t;
    uintptr_t base;
    int failed; /* checked by the main thread: check.h's counter is not atomic */
} adder;

static void *add_many(void *arg)
{
    adder *a = arg;
    uint64_t now = fakellm_timer_now_ms();
    for (uintptr_t i = 0; i < 4000; i++)
        if (fakellm_timer_add(a->t, (void *)(a->base + i), now + (i * 7919) % 100) != EMPQ_OK)
            a->failed++;
    return NULL;
}

/* 4 threads x 4000 entries within 100 ms: all fire once, in deadline order
 * per fire time (the heap keeps order), from the one timer thread. */
static void test_concurrent_adds(void)
{
    record *r = record_new();
    fakellm_timer *t = NULL;
    CHECK_INT(fakellm_timer_new(&t, on_fire, r, NULL), EMPQ_OK);
    pthread_t th[4];
    adder a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (adder){t, (uintptr_t)(i + 1) * 100000, 0};
        CHECK_INT(pthread_create(&th[i], NULL, add_many, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(a[i].failed, 0);
    }
    wait_fired(r, 16000, 5000);
    CHECK_INT(fired(r), 16000);
    CHECK(!r->other_thread);
    static unsigned char seen[5][4000];
    for (size_t i = 0; i < 16000; i++) {
        uintptr_t it = r->items[i];
        size_t who = it / 100000, k = it % 100000;
        CHECK(who >= 1 && who <= 4 && k < 4000);
        CHECK_INT(seen[who][k], 0);
        seen[who][k] = 1;
        if (i > 0)
            CHECK(r->at[i] >= r->at[i - 1]);
    }
    fakellm_timer_free(&t);
    free(r);
}

int main(void)
{
    RUN(test_order_and_time);
    RUN(test_earlier_wakes);
    RUN(test_flush);
    RUN(test_concurrent_adds);
    CHECK_DONE();
}
