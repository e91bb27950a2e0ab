/* test_wake.c: the self-pipe wakes a real zmq_poll from a signal handler. */
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <zmq.h>

#include "check.h"
#include "empq/wake.h"

static volatile sig_atomic_t stop;

static void on_alarm(int sig)
{
    (void)sig;
    stop = 1;
    empq_wake();
}

int main(void)
{
    empq_wake(); /* not open: does nothing */
    CHECK_INT(empq_wake_fd(), -1);
    CHECK_INT(empq_wake_open(NULL), EMPQ_OK);
    int fd = empq_wake_fd();
    CHECK(fd >= 0);
    CHECK_INT(empq_wake_open(NULL), EMPQ_OK); /* again: the same pipe */
    CHECK_INT(empq_wake_fd(), fd);

    /* a signal during a zmq_poll with no timeout ends the poll */
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
    zmq_pollitem_t item = {NULL, fd, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&item, 1, 5000); /* returns 1, or -1 (EINTR) when the signal cut it short */
    CHECK(stop);
    CHECK(rc == 1 || (rc == -1 && zmq_errno() == EINTR));
    /* either way the wakeup is pending for the loop's next poll */
    CHECK_INT(zmq_poll(&item, 1, 0), 1);
    CHECK(item.revents & ZMQ_POLLIN);

    /* drained: nothing pending until the next wakeup */
    empq_wake_drain();
    CHECK_INT(zmq_poll(&item, 1, 0), 0);
    for (int i = 0; i < 100000; i++) /* a full pipe stays a wakeup, never blocks */
        empq_wake();
    CHECK_INT(zmq_poll(&item, 1, 0), 1);
    empq_wake_drain();
    empq_wake_close();
    CHECK_INT(empq_wake_fd(), -1);
    empq_wake_close();
    CHECK_DONE();
}
