/* log.c: structured one-line logs on stderr. */
#include "empq/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "empq/util.h"

static const char *log_prog = "empq";
static empq_log_level log_min = EMPQ_LOG_INFO;
static FILE *log_out;               /* NULL: stderr */
static uint64_t (*log_clock)(void); /* NULL: empq_mono_ms */

static const char *level_name(empq_log_level l)
{
    switch (l) {
    case EMPQ_LOG_DEBUG: return "debug";
    case EMPQ_LOG_INFO: return "info";
    case EMPQ_LOG_WARN: return "warn";
    case EMPQ_LOG_ERROR: return "error";
    default: return "off";
    }
}

void empq_log_init(const char *prog, empq_log_level level)
{
    if (prog != NULL)
        log_prog = prog;
    log_min = level;
    const char *env = getenv("EMPQ_LOG_LEVEL");
    if (env == NULL)
        return;
    for (int l = EMPQ_LOG_DEBUG; l <= EMPQ_LOG_OFF; l++)
        if (strcasecmp(env, level_name((empq_log_level)l)) == 0)
            log_min = (empq_log_level)l;
}

int empq_log_enabled(empq_log_level level)
{
    return level >= log_min && level < EMPQ_LOG_OFF;
}

/* Drops the build-tree prefix so the location reads "broker/main.c:88". */
static const char *short_path(const char *file)
{
    static const char *const dirs[] = {"/lib/", "/broker/", "/worker/", "/collector/",
                                       "/cli/", "/fakellm/", "/tests/"};
    const char *best = NULL;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        const char *p = strstr(file, dirs[i]);
        if (p != NULL && (best == NULL || p > best))
            best = p;
    }
    return best != NULL ? best + 1 : file;
}

/* Writes one finished line. */
static void emit(empq_log_level level, const char *file, int line, const char *msg, uint64_t suppressed)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char more[40] = "";
    if (suppressed > 0)
        snprintf(more, sizeof more, " suppressed=%llu", (unsigned long long)suppressed);
    fprintf(log_out != NULL ? log_out : stderr, "ts=%s.%03ldZ level=%s prog=%s src=%s:%d %s%s\n", when,
            (long)(ts.tv_nsec / 1000000), level_name(level), log_prog, short_path(file), line, msg, more);
}

void empq_log_write(empq_log_level level, const char *file, int line, const char *fmt, ...)
{
    if (!empq_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, file, line, msg, 0);
}

/* ==================== repeating events ==================== */

typedef struct limit_slot {
    char key[96];        /* "" when free */
    uint64_t written_at; /* mono ms of the last line written */
    uint64_t suppressed; /* lines dropped since */
} limit_slot;

static pthread_mutex_t limit_mu = PTHREAD_MUTEX_INITIALIZER;
static limit_slot limits[EMPQ_LOG_KEYS];

/* The slot of key, or the free / least recently written one (cleared) when
 * key has none. Under limit_mu. */
static limit_slot *limit_slot_for(const char *key, int *fresh)
{
    limit_slot *oldest = &limits[0];
    for (size_t i = 0; i < EMPQ_LOG_KEYS; i++) {
        limit_slot *s = &limits[i];
        if (s->key[0] != '\0' && strncmp(s->key, key, sizeof s->key - 1) == 0) {
            *fresh = 0;
            return s;
        }
        if (oldest->key[0] != '\0' && (s->key[0] == '\0' || s->written_at < oldest->written_at))
            oldest = s;
    }
    snprintf(oldest->key, sizeof oldest->key, "%s", key);
    oldest->suppressed = 0;
    *fresh = 1;
    return oldest;
}

void empq_log_write_limited(empq_log_level level, const char *key, uint32_t interval_ms, const char *file, int line,
                            const char *fmt, ...)
{
    if (!empq_log_enabled(level))
        return;
    uint64_t now = log_clock != NULL ? log_clock() : empq_mono_ms();
    pthread_mutex_lock(&limit_mu);
    int fresh = 0;
    limit_slot *s = limit_slot_for(key != NULL ? key : "", &fresh);
    if (!fresh && now - s->written_at < interval_ms) {
        s->suppressed++;
        pthread_mutex_unlock(&limit_mu);
        return;
    }
    uint64_t suppressed = s->suppressed;
    s->suppressed = 0;
    s->written_at = now;
    pthread_mutex_unlock(&limit_mu);

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, file, line, msg, suppressed);
}

void empq_log_limits_reset(void)
{
    pthread_mutex_lock(&limit_mu);
    memset(limits, 0, sizeof limits);
    pthread_mutex_unlock(&limit_mu);
}

void empq_log_set_output(FILE *f) { log_out = f; }

void empq_log_set_clock(uint64_t (*mono_ms)(void)) { log_clock = mono_ms; }

const char *empq_log_quote(char *buf, size_t len, const char *s)
{
    if (len == 0)
        return buf;
    if (s == NULL)
        s = "";
    int plain = s[0] != '\0';
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            plain = 0;
    if (plain) {
        snprintf(buf, len, "%s", s);
        return buf;
    }
    size_t o = 0;
    buf[o++] = '"';
    for (const char *p = s; *p && o + 6 < len; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < 0x20) {
            buf[o++] = ' ';
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o + 6 >= len && len > 8) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
