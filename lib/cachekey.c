/* cachekey.c: SHA-256 of the canonical JSON of a request (see cachekey.h). */
#include "empq/cachekey.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Sets obj[key] = v (stolen); returns 0, or -1 when v is NULL or the set
 * fails. */
static int put(json_t *obj, const char *key, json_t *v)
{
    if (v == NULL)
        return -1;
    return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

/* Sets obj[key] to the string s when s is not NULL. */
static int put_str(json_t *obj, const char *key, const char *s)
{
    if (s == NULL)
        return 0;
    return put(obj, key, json_string(s));
}

static json_t *message(const char *role, const char *content)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (put(o, "role", json_string(role)) != 0 || put(o, "content", json_string(content)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The parameters that came with reasoning models (added only when set, so
 * the keys of requests without them stay what they were). */
static int put_reasoning(json_t *o, const Empq__GenParams *p)
{
    if ((p->has_max_completion_tokens && put(o, "max_completion_tokens", json_integer(p->max_completion_tokens)) != 0) ||
        put_str(o, "reasoning_effort", p->reasoning_effort) != 0 || put_str(o, "system_role", p->system_role) != 0 ||
        (p->has_thinking_budget && put(o, "thinking_budget", json_integer(p->thinking_budget)) != 0) ||
        (p->has_include_thoughts && put(o, "include_thoughts", json_boolean(p->include_thoughts)) != 0))
        return -1;
    if (p->n_safety_settings == 0)
        return 0;
    json_t *a = json_array();
    if (put(o, "safety_settings", a) != 0)
        return -1;
    for (size_t i = 0; i < p->n_safety_settings; i++) {
        json_t *e = json_object();
        if (e == NULL || json_array_append_new(a, e) != 0 ||
            put_str(e, "category", p->safety_settings[i]->category) != 0 ||
            put_str(e, "threshold", p->safety_settings[i]->threshold) != 0)
            return -1;
    }
    return 0;
}

/* Builds the canonical request object; NULL when a text is not UTF-8 (*what
 * names it) or memory runs out. */
static json_t *request(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                       const char **what)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    *what = "provider, base_url, model or api_version";
    if (put_str(o, "provider", m->provider) != 0 || put_str(o, "base_url", m->base_url) != 0 ||
        put_str(o, "model", m->model) != 0 || put_str(o, "api_version", m->api_version) != 0)
        goto fail;

    json_t *msgs = json_array();
    if (put(o, "messages", msgs) != 0)
        goto fail;
    if (system != NULL && system[0] != '\0') {
        *what = "the system message";
        json_t *s = message("system", system);
        if (s == NULL || json_array_append_new(msgs, s) != 0)
            goto fail;
    }
    *what = "the user message";
    json_t *u = message("user", user);
    if (u == NULL || json_array_append_new(msgs, u) != 0)
        goto fail;

    const Empq__GenParams *p = m->params;
    if (p != NULL) {
        *what = "a stop sequence";
        if ((p->has_temperature && put(o, "temperature", json_real(p->temperature)) != 0) ||
            (p->has_top_p && put(o, "top_p", json_real(p->top_p)) != 0) ||
            (p->has_max_tokens && put(o, "max_tokens", json_integer(p->max_tokens)) != 0) ||
            (p->has_seed && put(o, "seed", json_integer(p->seed)) != 0))
            goto fail;
        if (p->n_stop > 0) {
            json_t *stop = json_array();
            if (put(o, "stop", stop) != 0)
                goto fail;
            for (size_t i = 0; i < p->n_stop; i++) {
                json_t *s = p->stop[i] != NULL ? json_string(p->stop[i]) : NULL;
                if (s == NULL || json_array_append_new(stop, s) != 0)
                    goto fail;
            }
        }
        *what = "a reasoning, thinking or safety parameter";
        if (put_reasoning(o, p) != 0)
            goto fail;
    }
    *what = "extra_body";
    if (m->extra_body != NULL && m->extra_body[0] != '\0') {
        json_error_t jerr;
        if (put(o, "extra_body", json_loads(m->extra_body, 0, &jerr)) != 0)
            goto fail;
    }
    *what = NULL;
    if (m->output != NULL && put(o, "output", json_string(m->output)) != 0)
        goto fail;
    if (put(o, "sample", json_integer(sample)) != 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

int empq_cachekey(const Empq__ModelSpec *m, const char *system, const char *user, uint32_t sample,
                  char out[EMPQ_CACHE_KEY_HEX], empq_error *err)
{
    if (out != NULL)
        out[0] = '\0';
    if (m == NULL || user == NULL || out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "cache key: NULL %s",
                              m == NULL ? "model" : user == NULL ? "user message" : "output");
    const char *what = NULL;
    json_t *req = request(m, system, user, sample, &what);
    if (req == NULL) {
        /* json_string() fails on invalid UTF-8 (or out of memory). */
        return empq_error_set(err, EMPQ_EINVAL, "cache key for model '%s': %s is not valid UTF-8",
                              m->alias != NULL ? m->alias : "?", what != NULL ? what : "a value");
    }
    char *text = json_dumps(req, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(req);
    if (text == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "cache key: out of memory");

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
    free(text);
    if (!ok || mdlen != 32)
        return empq_error_set(err, EMPQ_ENOMEM, "cache key: SHA-256 failed");
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return EMPQ_OK;
}
