/* realredis.h: a real redis-server on a free port in a temp dir, for tests
 * of modules that talk to Redis. Started with fork/exec, stopped by pid. */
#ifndef EMPQ_REALREDIS_H
#define EMPQ_REALREDIS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct realredis {
    pid_t pid;
    int port;
    char dir[64];
    char url[64];
} realredis;

/* A TCP port free at the moment of asking. */
static int realredis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static int realredis_connectable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void realredis_stop(realredis *r);
static realredis *realredis__running;

/* A failing CHECK exits the test: stop the server by its pid then too. */
static void realredis__atexit(void)
{
    if (realredis__running != NULL)
        realredis_stop(realredis__running);
}

/* Starts redis-server; exits 77 (skip) when it is not installed. The server
 * is stopped by realredis_stop or, at the latest, when the test exits. */
static void realredis_start(realredis *r)
{
    realredis__running = r;
    atexit(realredis__atexit);
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: redis-server not installed\n");
        exit(77);
    }
    snprintf(r->dir, sizeof r->dir, "/tmp/empq-test-redis-XXXXXX");
    if (mkdtemp(r->dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    r->port = realredis_free_port();
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", r->dir,
               "--save", "", "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (realredis_connectable(r->port))
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "redis-server did not start on port %d\n", r->port);
    kill(r->pid, SIGKILL);
    exit(1);
}

static void realredis_stop(realredis *r)
{
    realredis__running = NULL;
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", r->dir);
}

#endif
