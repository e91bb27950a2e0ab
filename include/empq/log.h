/* log.h: structured logs, one line per event on stderr.
 *
 *   ts=2026-11-22T03:57:22.123Z level=info prog=empq-broker src=broker/main.c:88 event=run_loaded run=r-... jobs=10000
 *
 * The message is free text after the fixed fields; by convention it is a
 * sequence of key=value pairs starting with event=NAME, and values that may
 * hold spaces are quoted with empq_log_quote(). Log once, where the failure
 * is known, then return the code upward. */
#ifndef EMPQ_LOG_H
#define EMPQ_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum empq_log_level {
    EMPQ_LOG_DEBUG = 0,
    EMPQ_LOG_INFO = 1,
    EMPQ_LOG_WARN = 2,
    EMPQ_LOG_ERROR = 3,
    EMPQ_LOG_OFF = 4
} empq_log_level;

/* Sets the program name shown in every line (the pointer is kept: pass a
 * string literal) and the lowest level written. The environment variable
 * EMPQ_LOG_LEVEL (debug|info|warn|error|off) overrides level when set. */
void empq_log_init(const char *prog, empq_log_level level);

/* Returns nonzero when a line of this level would be written. */
int empq_log_enabled(empq_log_level level);

/* Writes one line. Use the macros below, which add the source location. */
void empq_log_write(empq_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes s into buf (size len) as a log value: unchanged when it has no
 * space, quote, '=' or control character, otherwise double-quoted with \" \\
 * \n escapes; cut with "..." when too long. Returns buf. */
const char *empq_log_quote(char *buf, size_t len, const char *s);

/* ==================== repeating events ====================
 *
 * A line that can repeat in a loop (a send that keeps failing, a peer that
 * keeps sending garbage, a dependency that stays down) goes through the rate
 * limit: the first line of a key is written at once, then at most one line
 * per interval; the lines dropped in between are counted and the next line
 * written for that key ends with suppressed=N (N > 0 only). The key names
 * the series: the event, plus what tells one series from another when both
 * matter ("send_failed/heartbeat"); it is copied. Up to EMPQ_LOG_KEYS keys
 * are tracked at once; a new key beyond them takes the slot written least
 * recently (its pending count is then lost). Thread safe. */

#define EMPQ_LOG_REPEAT_MS 10000u /* the default interval of the macros below */
#define EMPQ_LOG_KEYS 64

/* Writes one line of the repeating event key under its rate limit (above).
 * key not NULL; interval_ms 0 writes every line. Use the macros. */
void empq_log_write_limited(empq_log_level level, const char *key, uint32_t interval_ms, const char *file, int line,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Forgets every key's state (tests). */
void empq_log_limits_reset(void);

/* Test seams. empq_log_set_output: lines go to f (NULL: stderr); f must
 * outlive its use. empq_log_set_clock: the monotonic milliseconds the rate
 * limit reads (NULL: empq_mono_ms). Neither is thread safe against
 * concurrent logging: set them before. */
void empq_log_set_output(FILE *f);
void empq_log_set_clock(uint64_t (*mono_ms)(void));

#define EMPQ_LOG_EVERY(level, key, interval_ms, ...)                                                                   \
    do {                                                                                                               \
        if (empq_log_enabled(level))                                                                                   \
            empq_log_write_limited(level, key, interval_ms, __FILE__, __LINE__, __VA_ARGS__);                          \
    } while (0)
#define EMPQ_INFO_LIMITED(key, ...) EMPQ_LOG_EVERY(EMPQ_LOG_INFO, key, EMPQ_LOG_REPEAT_MS, __VA_ARGS__)
#define EMPQ_WARN_LIMITED(key, ...) EMPQ_LOG_EVERY(EMPQ_LOG_WARN, key, EMPQ_LOG_REPEAT_MS, __VA_ARGS__)
#define EMPQ_ERROR_LIMITED(key, ...) EMPQ_LOG_EVERY(EMPQ_LOG_ERROR, key, EMPQ_LOG_REPEAT_MS, __VA_ARGS__)

#define EMPQ_DEBUG(...) \
    do { if (empq_log_enabled(EMPQ_LOG_DEBUG)) empq_log_write(EMPQ_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__); } while (0)
#define EMPQ_INFO(...) empq_log_write(EMPQ_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define EMPQ_WARN(...) empq_log_write(EMPQ_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define EMPQ_ERROR(...) empq_log_write(EMPQ_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
