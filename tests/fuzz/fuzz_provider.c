/* fuzz_provider: a provider's reply parser (empq_provider_parse).
 *
 * Built once per adapter with FUZZ_PROVIDER = "openai", "azure-openai",
 * "anthropic", "gemini" ("openai-compatible" shares the OpenAI reader).
 * Input layout: byte 0 picks the HTTP status (a table of the statuses that
 * matter, or any 100..599), byte 1 its flags (truncated, a Retry-After and
 * a retry-after-ms header taken from the next bytes up to '\n'), the rest
 * is the body. The verdict must be one of the three classes, a success must
 * carry text or a refusal, and the reason must never hold the key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "empq/provider.h"

#ifndef FUZZ_PROVIDER
#define FUZZ_PROVIDER "openai"
#endif

#define KEY "sk-fuzz-secret-key-0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 200, 200, 200, 400, 401, 403, 404, 408, 409,
                                422, 429, 500, 502, 503, 0,   301, 201, 204, 529};

/* Copies the bytes up to '\n' (at most 63) into out; advances *p. */
static void take_line(const uint8_t **p, size_t *left, char *out)
{
    size_t i = 0;
    while (*left > 0 && **p != '\n' && i < 63) {
        out[i++] = (char)**p;
        (*p)++;
        (*left)--;
    }
    if (*left > 0 && **p == '\n') {
        (*p)++;
        (*left)--;
    }
    out[i] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    Empq__ModelSpec m = EMPQ__MODEL_SPEC__INIT;
    m.alias = "fuzz";
    m.provider = FUZZ_PROVIDER;
    m.model = "fuzz-model";
    m.base_url = "http://127.0.0.1:1/v1";

    const uint8_t *p = data + 2;
    size_t left = size - 2;
    empq_http_reply r;
    memset(&r, 0, sizeof r);
    unsigned pick = data[0];
    r.status = pick < 200 ? statuses[pick % (sizeof statuses / sizeof statuses[0])]
                          : 100 + (long)(pick - 200) * 8;
    unsigned flags = data[1];
    char ra[64], ram[64];
    if (flags & 1)
        r.truncated = 1;
    if (flags & 2) {
        take_line(&p, &left, ra);
        r.retry_after = ra;
    }
    if (flags & 4) {
        take_line(&p, &left, ram);
        r.retry_after_ms = ram;
    }
    if (r.status == 0 && (flags & 8))
        r.transport_error = "Connection reset by peer (" KEY ")";
    /* The body as the transport hands it over: its own allocation, so ASan
     * sees any read past its end. */
    char *body = NULL;
    if (left > 0) {
        body = malloc(left);
        if (body == NULL)
            return 0;
        memcpy(body, p, left);
    }
    r.body = body;
    r.body_len = left;

    empq_provider_result out;
    int rc = empq_provider_parse(&m, &r, KEY, 1700000000000ull, &out);
    if (rc != EMPQ_OK)
        abort();
    if (out.cls != EMPQ_PROVIDER_SUCCESS && out.cls != EMPQ_PROVIDER_RETRYABLE &&
        out.cls != EMPQ_PROVIDER_PERMANENT)
        abort();
    if (out.cls == EMPQ_PROVIDER_SUCCESS && out.gen.text == NULL)
        abort();
    if (memchr(out.reason, '\0', sizeof out.reason) == NULL || strstr(out.reason, KEY) != NULL)
        abort();
    char excerpt[256];
    empq_provider_excerpt(body, left, KEY, excerpt, sizeof excerpt);
    if (strstr(excerpt, KEY) != NULL)
        abort();
    empq_provider_result_clear(&out);
    free(body);
    return 0;
}
