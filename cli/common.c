/* common.c: helpers every `empq` command uses. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cli.h"
#include "empq/util.h"
#include "empq/wire.h"

void cli__err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("empq: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

const char *cli__default_redis(void)
{
    const char *v = getenv("EMPQ_REDIS_URL");
    return v != NULL && v[0] != '\0' ? v : CLI_DEFAULT_REDIS;
}

const char *cli__default_control(void)
{
    const char *v = getenv("EMPQ_BROKER_CONTROL");
    return v != NULL && v[0] != '\0' ? v : CLI_DEFAULT_CONTROL;
}

int cli__parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9') {
        cli__err("%s must be a whole number, got '%s'", opt, s != NULL ? s : "");
        return CLI_USAGE;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0') {
        cli__err("%s must be a whole number, got '%s'", opt, s);
        return CLI_USAGE;
    }
    if (v > max) {
        cli__err("%s must be at most %llu, got '%s'", opt, (unsigned long long)max, s);
        return CLI_USAGE;
    }
    *out = v;
    return CLI_OK;
}

int cli__getopt(cli__args *a, int argc, char **argv)
{
    a->prog = "empq";
    return empq_cliopt_next(a, argc, argv);
}

const char *cli__fmt_secs(double s, char *buf, size_t len)
{
    if (s < 0) {
        snprintf(buf, len, "-");
    } else {
        unsigned long v = (unsigned long)ceil(s);
        if (v >= 3600)
            snprintf(buf, len, "%luh%02lum", v / 3600, v / 60 % 60);
        else if (v >= 60)
            snprintf(buf, len, "%lum%02lus", v / 60, v % 60);
        else
            snprintf(buf, len, "%lus", v);
    }
    return buf;
}

void cli__opt_u64(cli__args *a, uint64_t max, uint64_t *out)
{
    char name[64];
    snprintf(name, sizeof name, "--%s", a->opts[a->index].name);
    a->code = cli__parse_u64(name, optarg, max, out);
}

void cli__run_id(char *buf, size_t len)
{
    uint64_t now = empq_now_ms();
    time_t sec = (time_t)(now / 1000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    unsigned short rnd = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(&rnd, sizeof rnd, 1, f) != 1) {
        empq_rng r;
        empq_rng_seed(&r, now ^ ((uint64_t)getpid() << 32) ^ empq_mono_ms());
        rnd = (unsigned short)empq_rng_next(&r);
    }
    if (f != NULL)
        fclose(f);
    snprintf(buf, len, "r-%04d%02d%02d-%02d%02d%02d-%04x", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)rnd);
}

int cli__store_open(const char *url, int timeout_ms, empq_store **out)
{
    empq_error err = {0};
    int rc = empq_store_open(out, url, timeout_ms, &err);
    if (rc == EMPQ_OK)
        return CLI_OK;
    *out = NULL;
    cli__err("cannot reach Redis: %s", err.msg);
    return rc == EMPQ_EINVAL ? CLI_USAGE : CLI_SERVICE;
}

int cli__control(const char *endpoint, const Empq__ControlRequest *req, int timeout_ms,
                 Empq__ControlReply **reply, empq_error *err)
{
    *reply = NULL;
    void *ctx = zmq_ctx_new();
    if (ctx == NULL)
        return empq_error_set(err, EMPQ_EWIRE, "cannot create a ZeroMQ context: %s",
                              zmq_strerror(errno));
    empq_curve_opts curve = EMPQ_CURVE_OPTS_INIT; /* EMPQ_CURVE_SECRET, EMPQ_CURVE_SERVER_PUB */
    empq_curve_opts_from_env(&curve);
    curve.allow = NULL;
    int rc = empq_wire_control_curve(ctx, endpoint, &curve, req, timeout_ms, reply, err);
    zmq_ctx_term(ctx);
    return rc;
}
