/* reqlog.c: the fake server's request log (see reqlog.h). */
#include "reqlog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "empq/log.h"

struct fakellm_reqlog {
    FILE *f;
    pthread_mutex_t mu;
    int failed;
};

int fakellm_reqlog_open(fakellm_reqlog **out, const char *path, empq_error *err)
{
    *out = NULL;
    fakellm_reqlog *l = calloc(1, sizeof *l);
    if (l == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    l->f = fopen(path, "a");
    if (l->f == NULL) {
        free(l);
        return empq_error_set(err, EMPQ_EIO, "--request-log %s: cannot open: %s", path, strerror(errno));
    }
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return EMPQ_OK;
}

static void peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(buf, len, "%s:%u", ip, port);
}

void fakellm_reqlog_write(fakellm_reqlog *l, const fakellm_reqlog_entry *e)
{
    if (l == NULL)
        return;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    char hex[17] = "";
    if (EVP_Digest(e->body != NULL ? e->body : "", e->body != NULL ? e->body_len : 0, md, &md_len, EVP_sha256(),
                   NULL) == 1)
        for (unsigned i = 0; i < 8 && i < md_len; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    char peer[INET6_ADDRSTRLEN + 8];
    peer_text(e->peer, peer, sizeof peer);
    json_t *o = json_pack("{s:I,s:o,s:i,s:s?,s:s,s:s,s:s}", "arrived_ms", (json_int_t)e->arrived_ms, "replied_ms",
                          e->replied_ms != 0 ? json_integer((json_int_t)e->replied_ms) : json_null(), "status",
                          (int)e->status, "model", e->model, "body", hex, "host", e->host != NULL ? e->host : "",
                          "peer", peer);
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    pthread_mutex_lock(&l->mu);
    if (line == NULL || fprintf(l->f, "%s\n", line) < 0 || fflush(l->f) != 0) {
        if (!l->failed)
            EMPQ_ERROR("event=request_log_failed reason=\"%s\"", line == NULL ? "out of memory" : strerror(errno));
        l->failed = 1;
    }
    pthread_mutex_unlock(&l->mu);
    free(line);
}

void fakellm_reqlog_close(fakellm_reqlog **lp)
{
    if (lp == NULL || *lp == NULL)
        return;
    fakellm_reqlog *l = *lp;
    fclose(l->f);
    pthread_mutex_destroy(&l->mu);
    free(l);
    *lp = NULL;
}
