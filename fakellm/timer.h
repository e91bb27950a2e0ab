/* timer.h: one thread that fires callbacks at their deadlines.
 *
 * The fake server holds every delayed response in one min-heap of deadlines
 * instead of a thread (or a sleep) per request: the thread waits on a
 * condition variable until the earliest deadline (CLOCK_MONOTONIC) or until
 * an earlier one is added, fires what is due, and waits again. Thousands of
 * entries cost one heap slot each.
 *
 * Callbacks run on the timer thread, one at a time, in deadline order (equal
 * deadlines in the order they were added), with no lock held; they may call
 * fakellm_timer_add. */
#ifndef FAKELLM_TIMER_H
#define FAKELLM_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "empq/error.h"

typedef struct fakellm_timer fakellm_timer;

/* What fires: fn(item, user). */
typedef void (*fakellm_timer_fn)(void *item, void *user);

/* Milliseconds on the clock the timer uses (CLOCK_MONOTONIC). */
uint64_t fakellm_timer_now_ms(void);

/* Starts the timer thread. fn is called for every entry; user is passed
 * through. On EMPQ_OK *out is the timer (free with fakellm_timer_free);
 * EMPQ_ENOMEM or EMPQ_EIO (thread or clock setup failed) with err set. */
int fakellm_timer_new(fakellm_timer **out, fakellm_timer_fn fn, void *user, empq_error *err);

/* Schedules item (any pointer, not owned) to fire at deadline_ms on the
 * fakellm_timer_now_ms() clock; a deadline in the past fires at once.
 * Thread-safe. Returns EMPQ_OK, EMPQ_ENOMEM (the heap could not grow; the
 * item will not fire), or EMPQ_ECANCELED once the timer is stopping. */
int fakellm_timer_add(fakellm_timer *t, void *item, uint64_t deadline_ms);

/* Number of entries not yet fired. Thread-safe. */
size_t fakellm_timer_pending(fakellm_timer *t);

/* Fires every pending entry now, whatever its deadline (used to drain at
 * shutdown), and returns once they have all been called. Later adds still
 * work. Thread-safe; must not be called from a callback. */
void fakellm_timer_flush(fakellm_timer *t);

/* Stops and joins the thread and frees the timer; entries still pending are
 * dropped without firing (flush first to fire them). *tp is set to NULL once
 * the thread has stopped: a callback running meanwhile may still add through
 * it (refused: EMPQ_ECANCELED). tp and *tp may be NULL. Must not be called
 * from a callback. */
void fakellm_timer_free(fakellm_timer **tp);

#endif
