/* main.c: empq-collector: follow the results stream, write responses.jsonl
 * for every run once all its jobs are done or dead. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "empq/log.h"
#include "empq/util.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empq-collector [--redis URL] [--out DIR] [--name NAME]\n"
            "  --redis URL   Redis (default $EMPQ_REDIS_URL or redis://127.0.0.1:6379)\n"
            "  --out DIR     write DIR/<run>/responses.jsonl (default ./runs)\n"
            "  --name NAME   consumer name in the group \"collector\" (default collector-1)\n");
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    empq_log_init("empq-collector", EMPQ_LOG_INFO);
    collector__opts o;
    collector__opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "--redis") == 0)
            dst = &o.redis_url;
        else if (strcmp(a, "--out") == 0)
            dst = &o.out_dir;
        else if (strcmp(a, "--name") == 0)
            dst = &o.name;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "empq-collector: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "empq-collector: %s needs a value\n", a);
            return 2;
        }
        *dst = argv[++i];
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Redis may come up after us: retry the connection until stopped. */
    collector *c = NULL;
    int warned = 0;
    while (!stop_flag) {
        empq_error err = {0};
        int rc = collector__new(&c, &o, &err);
        if (rc == EMPQ_OK)
            break;
        if (rc != EMPQ_ESTORE) {
            char q[600];
            EMPQ_ERROR("event=start_failed error=%s", empq_log_quote(q, sizeof q, err.msg));
            return 1;
        }
        if (!warned) {
            char q[600];
            EMPQ_WARN("event=store_down error=%s retry_ms=500", empq_log_quote(q, sizeof q, err.msg));
            warned = 1;
        }
        sleep_ms(500);
    }
    if (c == NULL)
        return 0;
    EMPQ_INFO("event=started redis=%s out=%s name=%s", o.redis_url, o.out_dir, o.name);

    while (!stop_flag) {
        int rc = collector__step(c, NULL);
        if (rc != EMPQ_OK)
            sleep_ms(500);
    }
    EMPQ_INFO("event=stopped runs_exported=%llu", (unsigned long long)collector__exported(c));
    collector__free(&c);
    return 0;
}
