/* template.c: prompt templates ({emotion}, {situation}, {prompt}, {id},
 * {sentiment}, and {response} for judge rubrics; {{ and }} are literal
 * braces). One walk serves both the check
 * and the rendering, so they can never disagree. */
#include "empq/template.h"

#include <stdlib.h>
#include <string.h>

#include "empq/util.h"

#define KNOWN "{emotion} {situation} {prompt} {id} {sentiment} {response}"

/* The value of placeholder name[0..n) for p; *found = 0 when the name is not
 * a placeholder. p may be NULL (check only): the value is then "". */
static const char *field(const Empq__Prompt *p, const char *name, size_t n, int *found)
{
    static const char *const names[] = {"emotion", "situation", "prompt", "id", "sentiment", "response"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i]) != n || memcmp(names[i], name, n) != 0)
            continue;
        *found = 1;
        if (p == NULL)
            return "";
        const char *v = NULL;
        switch (i) {
        case 0: v = p->emotion; break;
        case 1: v = p->situation; break;
        case 2: v = p->prompt; break;
        case 3: v = p->id; break;
        case 4: v = p->sentiment; break;
        default: v = p->response; break;
        }
        return v != NULL ? v : "";
    }
    *found = 0;
    return NULL;
}

/* Walks tmpl; appends the rendering to out when out is not NULL. */
static int walk(const char *tmpl, const Empq__Prompt *p, empq_buf *out, empq_error *err)
{
    const char *s = tmpl;
    while (*s != '\0') {
        const char *lit = s;
        while (*s != '\0' && *s != '{' && *s != '}')
            s++;
        if (out != NULL && s > lit && empq_buf_append(out, lit, (size_t)(s - lit)) != EMPQ_OK)
            return empq_error_set(err, EMPQ_ENOMEM, "template: out of memory");
        if (*s == '\0')
            break;
        size_t pos = (size_t)(s - tmpl) + 1;
        if (s[0] == s[1]) { /* {{ or }} */
            if (out != NULL && empq_buf_append(out, s, 1) != EMPQ_OK)
                return empq_error_set(err, EMPQ_ENOMEM, "template: out of memory");
            s += 2;
            continue;
        }
        if (*s == '}')
            return empq_error_set(err, EMPQ_ESPEC,
                                  "unmatched '}' at character %zu (write '}}' for a literal brace)", pos);
        const char *name = s + 1;
        const char *end = name;
        while (*end != '\0' && *end != '}' && *end != '{')
            end++;
        if (*end != '}')
            return empq_error_set(err, EMPQ_ESPEC,
                                  "unmatched '{' at character %zu (write '{{' for a literal brace)", pos);
        int found = 0;
        const char *v = field(p, name, (size_t)(end - name), &found);
        if (!found) {
            int n = end - name > 60 ? 60 : (int)(end - name);
            return empq_error_set(err, EMPQ_ESPEC,
                                  "unknown placeholder '{%.*s%s}' at character %zu (known: " KNOWN
                                  "; write {{ and }} for literal braces)",
                                  n, name, end - name > 60 ? "..." : "", pos);
        }
        if (out != NULL && empq_buf_append(out, v, strlen(v)) != EMPQ_OK)
            return empq_error_set(err, EMPQ_ENOMEM, "template: out of memory");
        s = end + 1;
    }
    return EMPQ_OK;
}

int empq_template_check(const char *tmpl, empq_error *err)
{
    if (tmpl == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "template: NULL template");
    return walk(tmpl, NULL, NULL, err);
}

int empq_template_render(const char *tmpl, const Empq__Prompt *p, char **out, empq_error *err)
{
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "template: NULL output");
    *out = NULL;
    if (tmpl == NULL || p == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "template: NULL %s", tmpl == NULL ? "template" : "prompt");
    empq_buf b = {0};
    int rc = walk(tmpl, p, &b, err);
    if (rc == EMPQ_OK && b.data == NULL && empq_buf_append(&b, "", 0) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "template: out of memory");
    if (rc != EMPQ_OK) {
        empq_buf_free(&b);
        return rc;
    }
    *out = b.data;
    return EMPQ_OK;
}
