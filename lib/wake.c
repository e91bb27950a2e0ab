/* wake.c: the process's self-pipe for waking an event loop from a signal. */
#include "empq/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static volatile int wake_fds[2] = {-1, -1};

int empq_wake_open(empq_error *err)
{
    if (wake_fds[0] >= 0)
        return EMPQ_OK;
    int fds[2];
    if (pipe(fds) != 0)
        return empq_error_set(err, EMPQ_EIO, "wake pipe: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    wake_fds[1] = fds[1];
    wake_fds[0] = fds[0];
    return EMPQ_OK;
}

int empq_wake_fd(void) { return wake_fds[0]; }

void empq_wake(void)
{
    int saved = errno;
    int w = wake_fds[1];
    if (w >= 0) {
        ssize_t n = write(w, "x", 1);
        (void)n; /* a full pipe is already a wakeup */
    }
    errno = saved;
}

void empq_wake_drain(void)
{
    char buf[64];
    int r = wake_fds[0];
    if (r < 0)
        return;
    while (read(r, buf, sizeof buf) > 0)
        ;
}

void empq_wake_close(void)
{
    int r = wake_fds[0], w = wake_fds[1];
    wake_fds[0] = wake_fds[1] = -1;
    if (r >= 0)
        close(r);
    if (w >= 0)
        close(w);
}
