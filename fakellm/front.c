/* front.c: helpers shared by the front ends. See front.h. */
#include "front.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "empq/error.h"

unsigned fakellm_retry_seconds(uint64_t ms)
{
    uint64_t s = (ms + 999) / 1000;
    if (s == 0)
        s = 1;
    return s > 86400 ? 86400u : (unsigned)s;
}

char *fakellm_go_duration(char *out, size_t cap, uint64_t ms)
{
    if (ms == 0) {
        snprintf(out, cap, "0s");
    } else if (ms < 1000) {
        snprintf(out, cap, "%" PRIu64 "ms", ms);
    } else {
        uint64_t m = ms / 60000, rest = ms % 60000;
        char sec[32];
        if (rest % 1000 == 0) {
            snprintf(sec, sizeof(sec), "%" PRIu64 "s", rest / 1000);
        } else {
            snprintf(sec, sizeof(sec), "%" PRIu64 ".%03" PRIu64, rest / 1000, rest % 1000);
            size_t n = strlen(sec);
            while (n > 0 && sec[n - 1] == '0')
                sec[--n] = '\0';
            snprintf(sec + n, sizeof(sec) - n, "s");
        }
        if (m > 0)
            snprintf(out, cap, "%" PRIu64 "m%s", m, sec);
        else
            snprintf(out, cap, "%s", sec);
    }
    return out;
}

char *fakellm_rfc3339(char *out, size_t cap, uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

int fakellm_path_segment(const char *path, const char *prefix, const char *suffix, char *out, size_t cap)
{
    size_t p = strlen(prefix), sx = strlen(suffix), n = strlen(path);
    if (strncmp(path, prefix, p) != 0 || n <= p + sx || strcmp(path + n - sx, suffix) != 0)
        return 0;
    size_t d = n - p - sx;
    if (d >= cap || memchr(path + p, '/', d) != NULL)
        return 0;
    memcpy(out, path + p, d);
    out[d] = '\0';
    return 1;
}

int fakellm_reply_json(fakellm_reply *out, unsigned status, struct json_t *root)
{
    if (root == NULL)
        return EMPQ_ENOMEM;
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL)
        return EMPQ_ENOMEM;
    int rc = fakellm_reply_set(out, status, text, strlen(text));
    free(text);
    return rc;
}
