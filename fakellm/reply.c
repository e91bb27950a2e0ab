/* reply.c: see reply.h. */
#include "reply.h"

#include <stdlib.h>
#include <string.h>

void fakellm_reply_clear(fakellm_reply *r)
{
    if (r == NULL)
        return;
    empq_buf_free(&r->body);
    free(r->model);
    memset(r, 0, sizeof(*r));
}

int fakellm_reply_set(fakellm_reply *r, unsigned status, const char *text, size_t len)
{
    empq_buf_free(&r->body);
    r->status = status;
    r->content_type = "application/json";
    return empq_buf_append(&r->body, text, len);
}
