/* wake.h: the process's self-pipe, so a signal handler can wake an event
 * loop blocked in zmq_poll.
 *
 * Setting a stop flag from a handler is not enough: zmq_poll may be between
 * its own poll() calls when the signal lands (or restart after EINTR) and go
 * back to sleep. The handler also calls empq_wake(); the loop polls
 * empq_wake_fd() for POLLIN and calls empq_wake_drain() when it fires. One
 * pipe per process: the programs have one loop each. */
#ifndef EMPQ_WAKE_H
#define EMPQ_WAKE_H

#include "empq/error.h"

/* Creates the pipe (both ends non-blocking, close-on-exec). Returns EMPQ_OK,
 * or EMPQ_EIO with err naming the reason; calling it again while open is a
 * no-op returning EMPQ_OK. err may be NULL. */
int empq_wake_open(empq_error *err);

/* The read end to poll, or -1 when the pipe is not open. */
int empq_wake_fd(void);

/* Wakes the loop. Async-signal-safe, keeps errno; does nothing when the pipe
 * is not open. A full pipe is already a pending wakeup. */
void empq_wake(void);

/* Reads every pending wakeup byte. */
void empq_wake_drain(void);

/* Closes both ends; safe to call when not open. */
void empq_wake_close(void);

#endif
