/* reqlog.c: --request-log PATH. See reqlog.h. */
#include "reqlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "empq/log.h"
#include "empq/util.h"

struct fakellm_reqlog {
    int fd;
    atomic_int failed; /* a write failed (logged once) */
};

int fakellm_reqlog_open(const char *path, fakellm_reqlog **out, empq_error *err)
{
    *out = NULL;
    fakellm_reqlog *l = calloc(1, sizeof *l);
    if (l == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "request log: out of memory");
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        int e = errno;
        free(l);
        return empq_error_set(err, EMPQ_EIO, "request log %s: %s", path, strerror(e));
    }
    *out = l;
    return EMPQ_OK;
}

void fakellm_reqlog_close(fakellm_reqlog **lp)
{
    if (lp == NULL || *lp == NULL)
        return;
    close((*lp)->fd);
    free(*lp);
    *lp = NULL;
}

static uint64_t fnv1a64(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

fakellm_action fakellm_reqlog_hook(void *user, const fakellm_request *req, fakellm_reply *reply)
{
    fakellm_reqlog *l = user;
    char model[160] = "null";
    if (reply->model != NULL) {
        /* the model name comes from the request: keep it a JSON string */
        size_t o = 0;
        model[o++] = '"';
        for (const char *c = reply->model; *c != '\0' && o + 3 < sizeof model; c++)
            if ((unsigned char)*c >= 0x20 && *c != '"' && *c != '\\')
                model[o++] = *c;
        model[o++] = '"';
        model[o] = '\0';
    }
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"t_ms\":%llu,\"seq\":%llu,\"route\":\"%s\",\"model\":%s,\"status\":%u,"
                     "\"body_fnv1a\":\"%016llx\"}\n",
                     (unsigned long long)empq_now_ms(), (unsigned long long)req->seq,
                     req->route != NULL ? req->route : "", model, reply->status,
                     (unsigned long long)fnv1a64(req->body, req->body_len));
    if (n > 0 && (size_t)n < sizeof line && write(l->fd, line, (size_t)n) != n && !atomic_exchange(&l->failed, 1))
        EMPQ_ERROR("event=request_log_failed err=\"%s\"", strerror(errno));
    return FAKELLM_ACT_RESPOND;
}
