/* spec.c: the study spec (YAML, libyaml document API) -> RunSpec.
 *
 * The whole document is loaded first (yaml_parser_load), so every node has
 * its line for the error text. Then each mapping is checked against its
 * known keys (unknown and duplicate keys are errors) before its values are
 * read with typed getters that name the key path and the line. The RunSpec
 * is built with malloc'd fields, packed, and the caller receives the unpacked
 * copy, so it is always freed with empq__run_spec__free_unpacked(, NULL). */
#include "empq/spec.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <yaml.h>

#include "empq/provider.h"
#include "empq/template.h"
#include "empq/util.h"

#define PATH_MAX_LEN 256

typedef struct ctx {
    yaml_document_t *doc;
    const char *origin;
    empq_error *err;
} ctx;

/* ==================== errors ==================== */

static size_t line_of(const yaml_node_t *n)
{
    return n != NULL ? (size_t)n->start_mark.line + 1 : 1;
}

/* Sets err to "origin:LINE: <text>" and returns code. */
static int failc(ctx *c, const yaml_node_t *at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int failc(ctx *c, const yaml_node_t *at, int code, const char *fmt, ...)
{
    char text[EMPQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return empq_error_set(c->err, code, "%s:%zu: %s", c->origin, line_of(at), text);
}

#define fail(c, at, ...) failc((c), (at), EMPQ_ESPEC, __VA_ARGS__)
#define NOMEM(c, at) failc((c), (at), EMPQ_ENOMEM, "out of memory")

/* A short description of node n for "got ..." ("'abc'", "a list"). */
static const char *describe(const yaml_node_t *n, char *buf, size_t len)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE: {
        int cut = n->data.scalar.length > 40;
        snprintf(buf, len, "'%.*s%s'", cut ? 40 : (int)n->data.scalar.length,
                 (const char *)n->data.scalar.value, cut ? "..." : "");
        return buf;
    }
    default: return "nothing";
    }
}

/* ==================== nodes ==================== */

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* A plain "", "~" or "null": YAML's null, taken as "not given". */
static int is_null(const yaml_node_t *n)
{
    if (!is_plain(n))
        return 0;
    const char *v = sval(n);
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* dst (PATH_MAX_LEN bytes) = "parent.key", or "key" when parent is "";
 * a path too long is cut and ends in "...". */
static void join(char *dst, const char *parent, const char *key)
{
    int n = parent[0] == '\0' ? snprintf(dst, PATH_MAX_LEN, "%s", key)
                              : snprintf(dst, PATH_MAX_LEN, "%s.%s", parent, key);
    if (n >= PATH_MAX_LEN)
        memcpy(dst + PATH_MAX_LEN - 4, "...", 4);
}

/* "a, b, c" of the NULL-terminated list into buf (cut to len); returns buf. */
static const char *list_text(const char *const *list, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; list[i] != NULL && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", list[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return buf;
}

/* Checks that n is a mapping whose keys are strings from known (NULL
 * terminated), each at most once. path names n ("" for the top level). */
static int check_map(ctx *c, yaml_node_t *n, const char *path, const char *const *known)
{
    char got[64];
    if (n->type != YAML_MAPPING_NODE) {
        if (path[0] == '\0')
            return fail(c, n, "the spec must be a mapping of keys (name, dataset, ...), got %s",
                        describe(n, got, sizeof got));
        return fail(c, n, "key '%s' must be a mapping, got %s", path, describe(n, got, sizeof got));
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE)
            return fail(c, k != NULL ? k : n, "a key in '%s' is not a string", path[0] ? path : "the spec");
        char kp[PATH_MAX_LEN];
        join(kp, path, sval(k));
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], sval(k)) != 0)
            i++;
        if (known[i] == NULL) {
            char list[256];
            return fail(c, k, "key '%s' is not a known key (known here: %s)", kp, list_text(known, list, sizeof list));
        }
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 != NULL && k2->type == YAML_SCALAR_NODE && strcmp(sval(k2), sval(k)) == 0)
                return fail(c, k, "key '%s' appears twice (first at line %zu)", kp, line_of(k2));
        }
    }
    return EMPQ_OK;
}

/* The value of key in mapping map, or NULL when absent or null. */
static yaml_node_t *get(ctx *c, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k != NULL && k->type == YAML_SCALAR_NODE && strcmp(sval(k), key) == 0) {
            yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
            return v != NULL && !is_null(v) ? v : NULL;
        }
    }
    return NULL;
}

/* ==================== typed getters ==================== */
/* Each reads map[key]; path is the map's path. A null or absent value leaves
 * the output untouched and sets *present = 0 (or fails when required). */

static int get_string(ctx *c, yaml_node_t *map, const char *path, const char *key, int required, char **out)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, key);
    yaml_node_t *v = get(c, map, key);
    if (v == NULL) {
        if (required)
            return fail(c, map, "key '%s' is required", kp);
        return EMPQ_OK;
    }
    if (v->type != YAML_SCALAR_NODE)
        return fail(c, v, "key '%s' must be a string, got %s", kp, describe(v, got, sizeof got));
    if (strlen(sval(v)) != v->data.scalar.length)
        return fail(c, v, "key '%s' holds a NUL character", kp);
    if (required && v->data.scalar.length == 0)
        return fail(c, v, "key '%s' must not be empty", kp);
    char *s = empq_strdup(sval(v));
    if (s == NULL)
        return NOMEM(c, v);
    free(*out);
    *out = s;
    return EMPQ_OK;
}

static int get_bool(ctx *c, yaml_node_t *map, const char *path, const char *key, int *present, int *out)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, key);
    yaml_node_t *v = get(c, map, key);
    *present = v != NULL;
    if (v == NULL)
        return EMPQ_OK;
    if (is_plain(v)) {
        const char *s = sval(v);
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
            *out = 1;
            return EMPQ_OK;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
            *out = 0;
            return EMPQ_OK;
        }
    }
    return fail(c, v, "key '%s' must be true or false, got %s", kp, describe(v, got, sizeof got));
}

/* Common check of a number's node: a plain scalar. */
static int number_node(ctx *c, yaml_node_t *v, const char *kp, const char *kind)
{
    char got[64];
    if (v->type != YAML_SCALAR_NODE)
        return fail(c, v, "key '%s' must be %s, got %s", kp, kind, describe(v, got, sizeof got));
    if (!is_plain(v))
        return fail(c, v, "key '%s' must be %s, got the quoted string %s (write it without quotes)", kp, kind,
                    describe(v, got, sizeof got));
    return EMPQ_OK;
}

/* An integer in [min, max] (signed). */
static int get_int(ctx *c, yaml_node_t *map, const char *path, const char *key, int64_t min, int64_t max,
                   int *present, int64_t *out)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, key);
    yaml_node_t *v = get(c, map, key);
    *present = v != NULL;
    if (v == NULL)
        return EMPQ_OK;
    int rc = number_node(c, v, kp, "an integer");
    if (rc != EMPQ_OK)
        return rc;
    const char *s = sval(v);
    const char *d = s + (*s == '-' || *s == '+');
    int digits = *d != '\0';
    for (const char *q = d; *q != '\0'; q++)
        digits = digits && isdigit((unsigned char)*q);
    if (!digits)
        return fail(c, v, "key '%s' must be an integer, got %s", kp, describe(v, got, sizeof got));
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE || x < min || x > max) {
        if (min == INT64_MIN)
            return fail(c, v, "key '%s' must be a 64-bit integer, got %s", kp, describe(v, got, sizeof got));
        if (max == INT32_MAX || max == UINT32_MAX)
            return fail(c, v, "key '%s' must be an integer >= %" PRId64 ", got %s", kp, min,
                        describe(v, got, sizeof got));
        return fail(c, v, "key '%s' must be an integer from %" PRId64 " to %" PRId64 ", got %s", kp, min, max,
                    describe(v, got, sizeof got));
    }
    *out = (int64_t)x;
    return EMPQ_OK;
}

/* An unsigned 64-bit integer (seeds). */
static int get_u64(ctx *c, yaml_node_t *map, const char *path, const char *key, int *present, uint64_t *out)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, key);
    yaml_node_t *v = get(c, map, key);
    *present = v != NULL;
    if (v == NULL)
        return EMPQ_OK;
    int rc = number_node(c, v, kp, "an integer");
    if (rc != EMPQ_OK)
        return rc;
    const char *s = sval(v);
    const char *d = s + (*s == '+');
    int digits = *d != '\0';
    for (const char *q = d; *q != '\0'; q++)
        digits = digits && isdigit((unsigned char)*q);
    errno = 0;
    unsigned long long x = digits ? strtoull(d, NULL, 10) : 0;
    if (!digits || errno == ERANGE)
        return fail(c, v, "key '%s' must be an integer from 0 to %" PRIu64 ", got %s", kp, UINT64_MAX,
                    describe(v, got, sizeof got));
    *out = (uint64_t)x;
    return EMPQ_OK;
}

static int get_u32(ctx *c, yaml_node_t *map, const char *path, const char *key, uint32_t min,
                   protobuf_c_boolean *has, uint32_t *out)
{
    int present = 0;
    int64_t x = 0;
    int rc = get_int(c, map, path, key, min, UINT32_MAX, &present, &x);
    if (rc == EMPQ_OK && present) {
        *out = (uint32_t)x;
        if (has != NULL)
            *has = 1;
    }
    return rc;
}

/* A finite number in [min, max]. */
static int get_double(ctx *c, yaml_node_t *map, const char *path, const char *key, double min, double max,
                      protobuf_c_boolean *has, double *out)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, key);
    yaml_node_t *v = get(c, map, key);
    if (v == NULL)
        return EMPQ_OK;
    int rc = number_node(c, v, kp, "a number");
    if (rc != EMPQ_OK)
        return rc;
    const char *s = sval(v);
    int ok = *s != '\0';
    for (const char *q = s; *q != '\0'; q++)
        ok = ok && (isdigit((unsigned char)*q) || strchr("+-.eE", *q) != NULL);
    char *end = NULL;
    double x = ok ? strtod(s, &end) : 0;
    if (!ok || end == NULL || *end != '\0' || !isfinite(x))
        return fail(c, v, "key '%s' must be a number, got %s", kp, describe(v, got, sizeof got));
    if (x < min || x > max) {
        if (max == DBL_MAX)
            return fail(c, v, "key '%s' must be >= %g, got %s", kp, min, describe(v, got, sizeof got));
        return fail(c, v, "key '%s' must be between %g and %g, got %s", kp, min, max, describe(v, got, sizeof got));
    }
    *out = x;
    *has = 1;
    return EMPQ_OK;
}

/* An enumerated string: one of choices (NULL terminated). */
static int get_choice(ctx *c, yaml_node_t *map, const char *path, const char *key, int required,
                      const char *const *choices, char **out)
{
    int rc = get_string(c, map, path, key, required, out);
    if (rc != EMPQ_OK || *out == NULL)
        return rc;
    for (size_t i = 0; choices[i] != NULL; i++)
        if (strcmp(choices[i], *out) == 0)
            return EMPQ_OK;
    char kp[PATH_MAX_LEN], list[256];
    join(kp, path, key);
    return fail(c, get(c, map, key), "key '%s' must be one of %s, got '%.40s'", kp,
                list_text(choices, list, sizeof list), *out);
}

/* ==================== ${VAR} ==================== */

static int var_start(int ch) { return isalpha(ch) || ch == '_'; }
static int var_char(int ch) { return isalnum(ch) || ch == '_'; }

/* Expands ${VAR} in s into out (NULL: check the syntax only). */
static int expand(const char *s, empq_buf *out, empq_error *err)
{
    const char *p = s;
    while (*p != '\0') {
        const char *lit = p;
        while (*p != '\0' && *p != '$')
            p++;
        if (out != NULL && p > lit && empq_buf_append(out, lit, (size_t)(p - lit)) != EMPQ_OK)
            return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
        if (*p == '\0')
            break;
        if (p[1] == '$' || p[1] != '{') { /* "$$" is "$"; a "$" before anything else is kept */
            if (out != NULL && empq_buf_append(out, "$", 1) != EMPQ_OK)
                return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
            p += p[1] == '$' ? 2 : 1;
            continue;
        }
        const char *name = p + 2;
        const char *end = name;
        while (var_char((unsigned char)*end))
            end++;
        if (*end != '}' || end == name || !var_start((unsigned char)*name)) {
            const char *close = strchr(name, '}');
            if (close == NULL)
                return empq_error_set(err, EMPQ_EPARSE, "'${' at character %zu is not closed by '}'",
                                      (size_t)(p - s) + 1);
            int n = close - name > 40 ? 40 : (int)(close - name);
            return empq_error_set(err, EMPQ_EPARSE,
                                  "'${%.*s}' at character %zu is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", n,
                                  name, (size_t)(p - s) + 1);
        }
        if (out != NULL) {
            char var[256];
            size_t n = (size_t)(end - name);
            if (n >= sizeof var)
                return empq_error_set(err, EMPQ_EPARSE, "variable name at character %zu is too long",
                                      (size_t)(p - s) + 1);
            memcpy(var, name, n);
            var[n] = '\0';
            const char *val = getenv(var);
            if (val == NULL)
                return empq_error_set(err, EMPQ_ENOTFOUND, "environment variable '%s' is not set", var);
            if (empq_buf_append(out, val, strlen(val)) != EMPQ_OK)
                return empq_error_set(err, EMPQ_ENOMEM, "out of memory");
        }
        p = end + 1;
    }
    return EMPQ_OK;
}

int empq_expand_env(const char *s, char **out, empq_error *err)
{
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "expand: NULL output");
    *out = NULL;
    if (s == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "expand: NULL string");
    empq_buf b = {0};
    int rc = expand(s, &b, err);
    if (rc == EMPQ_OK && b.data == NULL && empq_buf_append(&b, "", 0) != EMPQ_OK)
        rc = empq_error_set(err, EMPQ_ENOMEM, "out of memory");
    if (rc != EMPQ_OK) {
        empq_buf_free(&b);
        return rc;
    }
    *out = b.data;
    return EMPQ_OK;
}

/* ==================== sections ==================== */

static const char *const DATASET_FORMATS[] = {"synth", "jsonl", "welivita-pu", "empatheticdialogues", NULL};
static const char *const PROVIDERS[] = {"openai", "openai-compatible", "azure-openai", "gemini", "anthropic", NULL};

static int valid_alias(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return 0;
    return 1;
}

static int valid_var(const char *s)
{
    if (!var_start((unsigned char)*s))
        return 0;
    for (s++; *s != '\0'; s++)
        if (!var_char((unsigned char)*s))
            return 0;
    return 1;
}

/* Joins base_dir and path unless path is absolute or base_dir NULL/""/".". */
static char *resolve(const char *base_dir, const char *path)
{
    if (path[0] == '/' || base_dir == NULL || base_dir[0] == '\0' || strcmp(base_dir, ".") == 0)
        return empq_strdup(path);
    size_t bl = strlen(base_dir);
    while (bl > 1 && base_dir[bl - 1] == '/')
        bl--;
    const char *rel = path;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    empq_buf b = {0};
    if (empq_buf_append(&b, base_dir, bl) != EMPQ_OK ||
        (base_dir[bl - 1] != '/' && empq_buf_append(&b, "/", 1) != EMPQ_OK) ||
        empq_buf_append(&b, rel, strlen(rel)) != EMPQ_OK) {
        empq_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static int parse_dataset(ctx *c, yaml_node_t *root, const char *base_dir, Empq__RunSpec *rs)
{
    static const char *const keys[] = {"format", "path", "prompts", "seed", NULL};
    yaml_node_t *d = get(c, root, "dataset");
    if (d == NULL)
        return fail(c, root, "key 'dataset' is required");
    int rc = check_map(c, d, "dataset", keys);
    if (rc == EMPQ_OK)
        rc = get_choice(c, d, "dataset", "format", 1, DATASET_FORMATS, &rs->dataset_format);
    if (rc != EMPQ_OK)
        return rc;
    int synth = strcmp(rs->dataset_format, "synth") == 0;
    if (synth) {
        if (get(c, d, "path") != NULL)
            return fail(c, get(c, d, "path"), "key 'dataset.path' is not used with format synth");
        int present = 0;
        int64_t n = 2000;
        rc = get_int(c, d, "dataset", "prompts", 1, UINT32_MAX, &present, &n);
        if (rc != EMPQ_OK)
            return rc;
        rs->has_synth_prompts = 1;
        rs->synth_prompts = (uint32_t)n;
        rs->has_synth_seed = 1;
        rs->synth_seed = 1;
        return get_u64(c, d, "dataset", "seed", &present, &rs->synth_seed);
    }
    for (const char *const *k = keys + 2; *k != NULL; k++)
        if (get(c, d, *k) != NULL)
            return fail(c, get(c, d, *k), "key 'dataset.%s' is used with format synth only", *k);
    char *raw = NULL;
    rc = get_string(c, d, "dataset", "path", 1, &raw);
    if (rc != EMPQ_OK)
        return rc;
    char *expanded = NULL;
    empq_error e = {0};
    rc = empq_expand_env(raw, &expanded, &e);
    free(raw);
    if (rc != EMPQ_OK)
        return failc(c, get(c, d, "path"), rc == EMPQ_ENOMEM ? EMPQ_ENOMEM : EMPQ_ESPEC, "key 'dataset.path': %s",
                     e.msg);
    rs->dataset_path = resolve(base_dir, expanded);
    free(expanded);
    return rs->dataset_path != NULL ? EMPQ_OK : NOMEM(c, d);
}

static int parse_selection(ctx *c, yaml_node_t *root, Empq__RunSpec *rs)
{
    static const char *const keys[] = {"prompts", "seed", "balance", NULL};
    static const char *const balances[] = {"emotion", "none", NULL};
    rs->has_selection_count = 1;
    rs->selection_count = 0;
    rs->has_selection_seed = 1;
    rs->selection_seed = 1;
    yaml_node_t *s = get(c, root, "selection");
    int rc = EMPQ_OK;
    if (s != NULL) {
        int present = 0;
        rc = check_map(c, s, "selection", keys);
        if (rc == EMPQ_OK)
            rc = get_u32(c, s, "selection", "prompts", 0, NULL, &rs->selection_count);
        if (rc == EMPQ_OK)
            rc = get_u64(c, s, "selection", "seed", &present, &rs->selection_seed);
        if (rc == EMPQ_OK)
            rc = get_choice(c, s, "selection", "balance", 0, balances, &rs->selection_balance);
    }
    if (rc == EMPQ_OK && rs->selection_balance == NULL) {
        rs->selection_balance = empq_strdup("emotion");
        if (rs->selection_balance == NULL)
            rc = NOMEM(c, root);
    }
    return rc;
}

/* Reads map[key] as a template and checks its placeholders. */
static int get_template(ctx *c, yaml_node_t *map, const char *key, int required, char **out)
{
    int rc = get_string(c, map, "template", key, required, out);
    if (rc != EMPQ_OK || *out == NULL)
        return rc;
    empq_error e = {0};
    rc = empq_template_check(*out, &e);
    if (rc != EMPQ_OK)
        return failc(c, get(c, map, key), rc, "key 'template.%s': %s", key, e.msg);
    return EMPQ_OK;
}

static int parse_template(ctx *c, yaml_node_t *root, Empq__RunSpec *rs)
{
    static const char *const keys[] = {"system", "user", NULL};
    yaml_node_t *t = get(c, root, "template");
    if (t == NULL)
        return fail(c, root, "key 'template' is required");
    int rc = check_map(c, t, "template", keys);
    if (rc == EMPQ_OK)
        rc = get_template(c, t, "system", 0, &rs->template_system);
    if (rc == EMPQ_OK)
        rc = get_template(c, t, "user", 1, &rs->template_user);
    return rc;
}

/* Appends m to rs->models (taking it). */
static int add_model(ctx *c, Empq__RunSpec *rs, Empq__ModelSpec *m, yaml_node_t *at)
{
    Empq__ModelSpec **v = realloc(rs->models, (rs->n_models + 1) * sizeof *v);
    if (v == NULL) {
        empq__model_spec__free_unpacked(m, NULL);
        return NOMEM(c, at);
    }
    rs->models = v;
    rs->models[rs->n_models++] = m;
    return EMPQ_OK;
}

static Empq__ModelSpec *new_model(void)
{
    Empq__ModelSpec *m = malloc(sizeof *m);
    if (m != NULL)
        empq__model_spec__init(m);
    return m;
}

static int parse_human(ctx *c, yaml_node_t *root, Empq__RunSpec *rs)
{
    static const char *const keys[] = {"include", "alias", NULL};
    yaml_node_t *h = get(c, root, "human");
    int include = 1;
    char *alias = NULL;
    int rc = EMPQ_OK;
    if (h != NULL) {
        int present = 0;
        rc = check_map(c, h, "human", keys);
        if (rc == EMPQ_OK)
            rc = get_bool(c, h, "human", "include", &present, &include);
        if (rc == EMPQ_OK)
            rc = get_string(c, h, "human", "alias", 0, &alias);
        if (rc == EMPQ_OK && alias != NULL && !valid_alias(alias))
            rc = fail(c, get(c, h, "alias"), "key 'human.alias' must be letters, digits, '.', '_' or '-', got '%.40s'",
                      alias);
    }
    if (rc != EMPQ_OK || !include) {
        free(alias);
        return rc;
    }
    Empq__ModelSpec *m = new_model();
    if (m == NULL) {
        free(alias);
        return NOMEM(c, root);
    }
    m->alias = alias != NULL ? alias : empq_strdup("human");
    m->provider = empq_strdup("human");
    if (m->alias == NULL || m->provider == NULL) {
        empq__model_spec__free_unpacked(m, NULL);
        return NOMEM(c, root);
    }
    return add_model(c, rs, m, root);
}

/* ==================== generation parameters ==================== */

/* Which params keys each provider takes, under the spec's names (the
 * provider's own names: docs/spec.md's table). A key outside its
 * provider's list is an error naming the key, its line and the provider. */
typedef struct provider_params {
    const char *provider;
    const char *const *keys;
    size_t max_stop;                 /* 0: no limit the provider documents */
    const char *const *efforts;      /* reasoning_effort values; NULL: not taken */
} provider_params;

static const char *const OPENAI_KEYS[] = {"temperature", "top_p", "max_tokens", "max_completion_tokens",
                                          "reasoning_effort", "system_role", "seed", "stop", NULL};
static const char *const ANTHROPIC_KEYS[] = {"temperature", "top_p", "max_tokens", "stop", "thinking", NULL};
static const char *const GEMINI_KEYS[] = {"temperature", "top_p", "max_tokens", "seed", "stop", "thinkingConfig",
                                          "safetySettings", NULL};
/* OpenAI's ReasoningEffort enum (openai-openapi); vLLM's protocol takes low, medium, high */
static const char *const OPENAI_EFFORTS[] = {"none", "minimal", "low", "medium", "high", "xhigh", "max", NULL};
static const char *const VLLM_EFFORTS[] = {"low", "medium", "high", NULL};

static const provider_params PROVIDER_PARAMS[] = {
    {"openai", OPENAI_KEYS, 4, OPENAI_EFFORTS},
    {"azure-openai", OPENAI_KEYS, 4, OPENAI_EFFORTS},
    {"openai-compatible", OPENAI_KEYS, 0, VLLM_EFFORTS},
    {"anthropic", ANTHROPIC_KEYS, 0, NULL},
    {"gemini", GEMINI_KEYS, 5, NULL},
};

static const provider_params *params_of(const char *provider)
{
    for (size_t i = 0; i < sizeof PROVIDER_PARAMS / sizeof PROVIDER_PARAMS[0]; i++)
        if (strcmp(PROVIDER_PARAMS[i].provider, provider) == 0)
            return &PROVIDER_PARAMS[i];
    return NULL;
}

static int in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

/* Gemini HarmCategory and HarmBlockThreshold values as the API names them
 * (ai.google.dev/api/generate-content#safetysetting). */
static const char *const GEMINI_CATEGORIES[] = {"HARM_CATEGORY_HARASSMENT", "HARM_CATEGORY_HATE_SPEECH",
                                                "HARM_CATEGORY_SEXUALLY_EXPLICIT", "HARM_CATEGORY_DANGEROUS_CONTENT",
                                                "HARM_CATEGORY_CIVIC_INTEGRITY", NULL};
static const char *const GEMINI_THRESHOLDS[] = {"HARM_BLOCK_THRESHOLD_UNSPECIFIED", "BLOCK_LOW_AND_ABOVE",
                                                "BLOCK_MEDIUM_AND_ABOVE", "BLOCK_ONLY_HIGH", "BLOCK_NONE", "OFF",
                                                NULL};

/* params.thinking (Anthropic): {type: enabled, budget_tokens: N}. */
static int parse_thinking(ctx *c, yaml_node_t *n, const char *path, Empq__GenParams *p)
{
    static const char *const keys[] = {"type", "budget_tokens", NULL};
    static const char *const types[] = {"enabled", "disabled", NULL};
    char kp[PATH_MAX_LEN];
    join(kp, path, "thinking");
    yaml_node_t *t = get(c, n, "thinking");
    if (t == NULL)
        return EMPQ_OK;
    char *type = NULL;
    int present = 0;
    int64_t budget = 0;
    int rc = check_map(c, t, kp, keys);
    if (rc == EMPQ_OK)
        rc = get_choice(c, t, kp, "type", 1, types, &type);
    if (rc == EMPQ_OK)
        rc = get_int(c, t, kp, "budget_tokens", 1024, INT32_MAX, &present, &budget);
    int enabled = type != NULL && strcmp(type, "enabled") == 0;
    free(type);
    if (rc != EMPQ_OK)
        return rc;
    if (enabled && !present)
        return fail(c, t, "key '%s.budget_tokens' is required when thinking is enabled (at least 1024)", kp);
    if (!enabled && present)
        return fail(c, get(c, t, "budget_tokens"), "key '%s.budget_tokens' is only taken with type enabled", kp);
    if (!enabled)
        return EMPQ_OK;
    p->has_thinking_budget = 1;
    p->thinking_budget = (int32_t)budget;
    /* Anthropic: budget_tokens must be below max_tokens; thinking does not
     * take a temperature, and top_p only from 0.95 to 1 */
    if (!p->has_max_tokens || p->max_tokens <= p->thinking_budget)
        return fail(c, t, "key '%s.budget_tokens' (%d) must be below params.max_tokens (%s%d): set max_tokens "
                          "above the budget, the answer's tokens come on top of it",
                    kp, p->thinking_budget, p->has_max_tokens ? "" : "default ",
                    p->has_max_tokens ? p->max_tokens : 1024);
    if (p->has_temperature)
        return fail(c, get(c, n, "temperature"), "key '%s': provider anthropic takes no temperature with "
                                                 "thinking enabled", path);
    if (p->has_top_p && p->top_p < 0.95)
        return fail(c, get(c, n, "top_p"), "key '%s.top_p': provider anthropic takes top_p from 0.95 to 1 with "
                                           "thinking enabled", path);
    return EMPQ_OK;
}

/* params.thinkingConfig (Gemini): {thinkingBudget: N, includeThoughts: bool}. */
static int parse_thinking_config(ctx *c, yaml_node_t *n, const char *path, Empq__GenParams *p)
{
    static const char *const keys[] = {"thinkingBudget", "includeThoughts", NULL};
    char kp[PATH_MAX_LEN];
    join(kp, path, "thinkingConfig");
    yaml_node_t *t = get(c, n, "thinkingConfig");
    if (t == NULL)
        return EMPQ_OK;
    int present = 0, inc = 0;
    int64_t budget = 0;
    int rc = check_map(c, t, kp, keys);
    if (rc == EMPQ_OK)
        rc = get_int(c, t, kp, "thinkingBudget", -1, INT32_MAX, &present, &budget);
    if (rc == EMPQ_OK && present) {
        p->has_thinking_budget = 1;
        p->thinking_budget = (int32_t)budget;
    }
    if (rc == EMPQ_OK)
        rc = get_bool(c, t, kp, "includeThoughts", &present, &inc);
    if (rc == EMPQ_OK && present) {
        p->has_include_thoughts = 1;
        p->include_thoughts = inc != 0;
    }
    return rc;
}

/* params.safetySettings (Gemini): a list of {category, threshold}. */
static int parse_safety(ctx *c, yaml_node_t *n, const char *path, Empq__GenParams *p)
{
    static const char *const keys[] = {"category", "threshold", NULL};
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, "safetySettings");
    yaml_node_t *l = get(c, n, "safetySettings");
    if (l == NULL)
        return EMPQ_OK;
    if (l->type != YAML_SEQUENCE_NODE)
        return fail(c, l, "key '%s' must be a list of {category, threshold}, got %s", kp,
                    describe(l, got, sizeof got));
    size_t count = (size_t)(l->data.sequence.items.top - l->data.sequence.items.start);
    p->safety_settings = calloc(count + 1, sizeof *p->safety_settings);
    if (p->safety_settings == NULL)
        return NOMEM(c, l);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *e = yaml_document_get_node(c->doc, l->data.sequence.items.start[i]);
        char ep[PATH_MAX_LEN];
        snprintf(ep, sizeof ep, "%s[%zu]", kp, i);
        Empq__SafetySetting *ss = malloc(sizeof *ss);
        if (ss == NULL)
            return NOMEM(c, l);
        empq__safety_setting__init(ss);
        p->safety_settings[p->n_safety_settings++] = ss;
        if (e == NULL)
            return fail(c, l, "key '%s' must be a mapping", ep);
        int rc = check_map(c, e, ep, keys);
        if (rc == EMPQ_OK)
            rc = get_choice(c, e, ep, "category", 1, GEMINI_CATEGORIES, &ss->category);
        if (rc == EMPQ_OK)
            rc = get_choice(c, e, ep, "threshold", 1, GEMINI_THRESHOLDS, &ss->threshold);
        if (rc != EMPQ_OK)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->safety_settings[j]->category, ss->category) == 0)
                return fail(c, get(c, e, "category"), "key '%s.category': %s is already set by %s[%zu]", ep,
                            ss->category, kp, j);
    }
    return EMPQ_OK;
}

/* params.stop: one string or a list of non-empty strings, at most max
 * (0: no limit). */
static int parse_stop(ctx *c, yaml_node_t *n, const char *path, const Empq__ModelSpec *m, size_t max,
                      Empq__GenParams *p)
{
    yaml_node_t *stop = get(c, n, "stop");
    if (stop == NULL)
        return EMPQ_OK;
    char kp[PATH_MAX_LEN], got[64];
    join(kp, path, "stop");
    yaml_node_item_t *first = NULL, *last = NULL;
    yaml_node_item_t one = 0;
    if (stop->type == YAML_SCALAR_NODE) { /* a single stop sequence */
        one = (yaml_node_item_t)(stop - c->doc->nodes.start) + 1;
        first = &one;
        last = &one + 1;
    } else if (stop->type == YAML_SEQUENCE_NODE) {
        first = stop->data.sequence.items.start;
        last = stop->data.sequence.items.top;
    } else {
        return fail(c, stop, "key '%s' must be a string or a list of strings, got %s", kp,
                    describe(stop, got, sizeof got));
    }
    if (max > 0 && (size_t)(last - first) > max)
        return fail(c, stop, "key '%s': provider %s takes at most %zu stop sequences, got %zu", kp, m->provider, max,
                    (size_t)(last - first));
    p->stop = calloc((size_t)(last - first) + 1, sizeof *p->stop);
    if (p->stop == NULL)
        return NOMEM(c, stop);
    for (yaml_node_item_t *it = first; it < last; it++) {
        yaml_node_t *s = yaml_document_get_node(c->doc, *it);
        size_t i = (size_t)(it - first);
        if (s == NULL || s->type != YAML_SCALAR_NODE || s->data.scalar.length == 0 ||
            strlen(sval(s)) != s->data.scalar.length)
            return fail(c, s != NULL ? s : stop, "key '%s[%zu]' must be a non-empty string, got %s", kp, i,
                        s != NULL ? describe(s, got, sizeof got) : "nothing");
        p->stop[i] = empq_strdup(sval(s));
        if (p->stop[i] == NULL)
            return NOMEM(c, s);
        p->n_stop = i + 1;
    }
    return EMPQ_OK;
}

/* Every key of params must be one the model's provider takes. */
static int check_provider_keys(ctx *c, yaml_node_t *n, const char *path, const Empq__ModelSpec *m,
                               const provider_params *pp)
{
    for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < n->data.mapping.pairs.top; q++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, q->key);
        if (k == NULL || k->type != YAML_SCALAR_NODE || in_list(pp->keys, sval(k)))
            continue;
        char kp[PATH_MAX_LEN], list[256];
        join(kp, path, sval(k));
        return fail(c, k, "key '%s': provider %s does not take this parameter (it takes: %s; see docs/spec.md)", kp,
                    m->provider, list_text(pp->keys, list, sizeof list));
    }
    return EMPQ_OK;
}

static int parse_params(ctx *c, yaml_node_t *mm, const char *mp, Empq__ModelSpec *m)
{
    static const char *const keys[] = {"temperature", "top_p", "max_tokens", "max_completion_tokens",
                                       "reasoning_effort", "system_role", "seed", "stop", "thinking",
                                       "thinkingConfig", "safetySettings", NULL};
    static const char *const roles[] = {"system", "developer", NULL};
    yaml_node_t *n = get(c, mm, "params");
    if (n == NULL)
        return EMPQ_OK;
    char path[PATH_MAX_LEN];
    join(path, mp, "params");
    int rc = check_map(c, n, path, keys);
    const provider_params *pp = params_of(m->provider);
    if (rc == EMPQ_OK && pp != NULL)
        rc = check_provider_keys(c, n, path, m, pp);
    if (rc != EMPQ_OK)
        return rc;
    Empq__GenParams *p = malloc(sizeof *p);
    if (p == NULL)
        return NOMEM(c, n);
    empq__gen_params__init(p);
    m->params = p;
    /* Anthropic takes temperature 0..1; the OpenAI-style APIs and Gemini 0..2. */
    double tmax = strcmp(m->provider, "anthropic") == 0 ? 1.0 : 2.0;
    int present = 0;
    int64_t x = 0;
    rc = get_double(c, n, path, "temperature", 0.0, tmax, &p->has_temperature, &p->temperature);
    if (rc == EMPQ_OK)
        rc = get_double(c, n, path, "top_p", 0.0, 1.0, &p->has_top_p, &p->top_p);
    if (rc == EMPQ_OK)
        rc = get_int(c, n, path, "max_tokens", 1, INT32_MAX, &present, &x);
    if (rc == EMPQ_OK && present) {
        p->has_max_tokens = 1;
        p->max_tokens = (int32_t)x;
    }
    if (rc == EMPQ_OK)
        rc = get_int(c, n, path, "max_completion_tokens", 1, INT32_MAX, &present, &x);
    if (rc == EMPQ_OK && present) {
        p->has_max_completion_tokens = 1;
        p->max_completion_tokens = (int32_t)x;
        if (p->has_max_tokens) {
            char kp[PATH_MAX_LEN];
            join(kp, path, "max_completion_tokens");
            return fail(c, get(c, n, "max_completion_tokens"),
                        "key '%s': give max_completion_tokens or the deprecated max_tokens, not both", kp);
        }
    }
    if (rc == EMPQ_OK && pp != NULL && pp->efforts != NULL)
        rc = get_choice(c, n, path, "reasoning_effort", 0, pp->efforts, &p->reasoning_effort);
    /* OpenAI and Azure: a model that takes reasoning_effort is a reasoning
     * model, and those refuse max_tokens ("not compatible with o-series
     * models"); vLLM takes both */
    if (rc == EMPQ_OK && p->reasoning_effort != NULL && p->has_max_tokens && pp != NULL && pp->max_stop == 4) {
        char kp[PATH_MAX_LEN];
        join(kp, path, "max_tokens");
        return fail(c, get(c, n, "max_tokens"),
                    "key '%s': provider %s: reasoning models (reasoning_effort is set) take max_completion_tokens, "
                    "not max_tokens",
                    kp, m->provider);
    }
    if (rc == EMPQ_OK)
        rc = get_choice(c, n, path, "system_role", 0, roles, &p->system_role);
    if (rc == EMPQ_OK)
        rc = get_int(c, n, path, "seed", INT64_MIN, INT64_MAX, &present, &p->seed);
    if (rc == EMPQ_OK && present)
        p->has_seed = 1;
    if (rc == EMPQ_OK)
        rc = parse_stop(c, n, path, m, pp != NULL ? pp->max_stop : 0, p);
    if (rc == EMPQ_OK)
        rc = parse_thinking(c, n, path, p);
    if (rc == EMPQ_OK)
        rc = parse_thinking_config(c, n, path, p);
    if (rc == EMPQ_OK)
        rc = parse_safety(c, n, path, p);
    return rc;
}

/* ==================== extra_body ==================== */

/* A YAML scalar as JSON: a plain null/true/false/number is typed (YAML 1.2
 * core schema), anything else (quoted included) is a string. */
static json_t *scalar_json(const yaml_node_t *v)
{
    const char *s = sval(v);
    if (is_plain(v)) {
        if (is_null(v))
            return json_null();
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
            return json_true();
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
            return json_false();
        char *end = NULL;
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (*s != '\0' && end != NULL && *end == '\0' && errno == 0)
            return json_integer((json_int_t)i);
        double d = strtod(s, &end);
        if (*s != '\0' && end != NULL && *end == '\0' && isfinite(d) && strpbrk(s, "xXnN") == NULL)
            return json_real(d);
    }
    return json_stringn(s, v->data.scalar.length);
}

/* Converts node v (at key path kp) to JSON; NULL with err set on failure. */
static json_t *yaml_json(ctx *c, yaml_node_t *v, const char *kp, int depth)
{
    if (depth > 32) {
        fail(c, v, "key '%s' nests too deep", kp);
        return NULL;
    }
    if (v->type == YAML_SCALAR_NODE) {
        json_t *j = scalar_json(v);
        if (j == NULL)
            fail(c, v, "key '%s' is not valid UTF-8 text", kp);
        return j;
    }
    if (v->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        size_t i = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start; a != NULL && it < v->data.sequence.items.top;
             it++, i++) {
            char ip[PATH_MAX_LEN];
            snprintf(ip, sizeof ip, "%s[%zu]", kp, i);
            yaml_node_t *e = yaml_document_get_node(c->doc, *it);
            json_t *j = e != NULL ? yaml_json(c, e, ip, depth + 1) : NULL;
            if (j == NULL || json_array_append_new(a, j) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        if (a == NULL)
            NOMEM(c, v);
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; o != NULL && p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *e = yaml_document_get_node(c->doc, p->value);
        if (k == NULL || k->type != YAML_SCALAR_NODE || e == NULL) {
            fail(c, k != NULL ? k : v, "a key in '%s' is not a string", kp);
            json_decref(o);
            return NULL;
        }
        char ip[PATH_MAX_LEN];
        join(ip, kp, sval(k));
        if (json_object_get(o, sval(k)) != NULL) {
            fail(c, k, "key '%s' appears twice", ip);
            json_decref(o);
            return NULL;
        }
        json_t *j = yaml_json(c, e, ip, depth + 1);
        if (j == NULL || json_object_set_new(o, sval(k), j) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    if (o == NULL)
        NOMEM(c, v);
    return o;
}

/* models[i].extra_body: a mapping merged into every request body, kept as
 * compact JSON with sorted keys; a field empq sets is an error (checked by
 * the provider module on a sample body). */
static int parse_extra_body(ctx *c, yaml_node_t *mm, const char *mp, Empq__ModelSpec *m)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, mp, "extra_body");
    yaml_node_t *v = get(c, mm, "extra_body");
    if (v == NULL)
        return EMPQ_OK;
    if (v->type != YAML_MAPPING_NODE)
        return fail(c, v, "key '%s' must be a mapping (a JSON object's fields), got %s", kp,
                    describe(v, got, sizeof got));
    json_t *o = yaml_json(c, v, kp, 0);
    if (o == NULL)
        return c->err != NULL && c->err->code != 0 ? c->err->code : EMPQ_ESPEC;
    m->extra_body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (m->extra_body == NULL)
        return NOMEM(c, v);
    empq_error e = {0};
    if (empq_provider_check_extra(m, &e) != EMPQ_OK)
        return fail(c, v, "key '%s.%s", kp, e.msg);
    return EMPQ_OK;
}

static int parse_limits(ctx *c, yaml_node_t *mm, const char *mp, Empq__ModelSpec *m)
{
    static const char *const keys[] = {"max_concurrency", "requests_per_minute", "tokens_per_minute", NULL};
    yaml_node_t *n = get(c, mm, "limits");
    if (n == NULL)
        return EMPQ_OK;
    char path[PATH_MAX_LEN];
    join(path, mp, "limits");
    int rc = check_map(c, n, path, keys);
    if (rc != EMPQ_OK)
        return rc;
    Empq__ModelLimits *l = malloc(sizeof *l);
    if (l == NULL)
        return NOMEM(c, n);
    empq__model_limits__init(l);
    m->limits = l;
    rc = get_u32(c, n, path, "max_concurrency", 1, &l->has_max_concurrency, &l->max_concurrency);
    if (rc == EMPQ_OK)
        rc = get_u32(c, n, path, "requests_per_minute", 1, &l->has_requests_per_minute, &l->requests_per_minute);
    if (rc == EMPQ_OK)
        rc = get_u32(c, n, path, "tokens_per_minute", 1, &l->has_tokens_per_minute, &l->tokens_per_minute);
    return rc;
}

static int parse_prices(ctx *c, yaml_node_t *mm, const char *mp, Empq__ModelSpec *m)
{
    static const char *const keys[] = {"input_per_mtok",       "output_per_mtok",       "cached_input_per_mtok",
                                       "max_cost",             "batch_input_per_mtok",  "batch_output_per_mtok",
                                       NULL};
    yaml_node_t *n = get(c, mm, "prices");
    if (n == NULL)
        return EMPQ_OK;
    char path[PATH_MAX_LEN];
    join(path, mp, "prices");
    int rc = check_map(c, n, path, keys);
    if (rc != EMPQ_OK)
        return rc;
    Empq__ModelPrices *p = malloc(sizeof *p);
    if (p == NULL)
        return NOMEM(c, n);
    empq__model_prices__init(p);
    m->prices = p;
    rc = get_double(c, n, path, "input_per_mtok", 0.0, DBL_MAX, &p->has_input_per_mtok, &p->input_per_mtok);
    if (rc == EMPQ_OK)
        rc = get_double(c, n, path, "output_per_mtok", 0.0, DBL_MAX, &p->has_output_per_mtok, &p->output_per_mtok);
    if (rc == EMPQ_OK)
        rc = get_double(c, n, path, "cached_input_per_mtok", 0.0, DBL_MAX, &p->has_cached_input_per_mtok,
                        &p->cached_input_per_mtok);
    if (rc == EMPQ_OK)
        rc = get_double(c, n, path, "max_cost", 0.0, DBL_MAX, &p->has_max_cost, &p->max_cost);
    if (rc == EMPQ_OK)
        rc = get_double(c, n, path, "batch_input_per_mtok", 0.0, DBL_MAX, &p->has_batch_input_per_mtok,
                        &p->batch_input_per_mtok);
    if (rc == EMPQ_OK)
        rc = get_double(c, n, path, "batch_output_per_mtok", 0.0, DBL_MAX, &p->has_batch_output_per_mtok,
                        &p->batch_output_per_mtok);
    return rc;
}

/* ==================== batch mode ==================== */

/* The providers' own batch limits (requests, bytes of one batch's request
 * lines): OpenAI Batch API 50,000 requests and a 200 MB input file;
 * Anthropic Message Batches 100,000 requests and 256 MB; Gemini Batch Mode
 * with inline requests (empq's way) a create request of at most 20 MB and
 * no documented count, held here to 100,000 as Anthropic's. */
typedef struct {
    const char *provider;
    uint32_t max_requests;
    uint64_t max_bytes;
} batch_limits;

static const batch_limits BATCH_LIMITS[] = {
    {"openai", 50000, 200ull * 1000 * 1000},
    {"anthropic", 100000, 256ull * 1000 * 1000},
    {"gemini", 100000, 20ull * 1000 * 1000},
};

static const batch_limits *batch_limits_of(const char *provider)
{
    for (size_t i = 0; i < sizeof BATCH_LIMITS / sizeof BATCH_LIMITS[0]; i++)
        if (strcmp(BATCH_LIMITS[i].provider, provider) == 0)
            return &BATCH_LIMITS[i];
    return NULL;
}

/* Reads models[i].mode and models[i].batch: mode batch needs a provider with
 * a batch API, batch: only with mode batch; the limits default to the
 * provider's and may not exceed them. */
static int parse_batch(ctx *c, yaml_node_t *mm, const char *mp, Empq__ModelSpec *m)
{
    static const char *const MODES[] = {"interactive", "batch", NULL};
    static const char *const ON_FAILURE[] = {"batch", "interactive", "dead", NULL};
    static const char *const WINDOWS[] = {"24h", NULL};
    static const char *const keys[] = {"completion_window", "max_requests", "max_bytes", "on_failure", "poll_ms",
                                       NULL};
    char kp[PATH_MAX_LEN];
    int rc = get_choice(c, mm, mp, "mode", 0, MODES, &m->mode);
    if (rc != EMPQ_OK)
        return rc;
    int batch = m->mode != NULL && strcmp(m->mode, "batch") == 0;
    const batch_limits *lim = batch_limits_of(m->provider);
    if (batch && lim == NULL) {
        join(kp, mp, "mode");
        return fail(c, get(c, mm, "mode"),
                    "key '%s': provider '%s' has no batch API in empq (batch mode: openai, anthropic or gemini)", kp,
                    m->provider);
    }
    yaml_node_t *n = get(c, mm, "batch");
    join(kp, mp, "batch");
    if (n != NULL && !batch)
        return fail(c, n, "key '%s' needs mode: batch in the same model", kp);
    if (!batch)
        return EMPQ_OK;
    Empq__BatchSpec *b = malloc(sizeof *b);
    if (b == NULL)
        return NOMEM(c, mm);
    empq__batch_spec__init(b);
    m->batch = b;
    b->has_max_requests = b->has_max_bytes = 1; /* kept through the pack/unpack */
    b->max_requests = lim->max_requests;
    b->max_bytes = lim->max_bytes;
    if (n == NULL)
        return EMPQ_OK;
    rc = check_map(c, n, kp, keys);
    char *window = NULL, *on_failure = NULL;
    if (rc == EMPQ_OK)
        rc = get_choice(c, n, kp, "completion_window", 0, WINDOWS, &window);
    free(window); /* the only window the providers offer; the default holds it */
    if (rc == EMPQ_OK)
        rc = get_choice(c, n, kp, "on_failure", 0, ON_FAILURE, &on_failure);
    if (rc == EMPQ_OK && on_failure != NULL) {
        b->on_failure = on_failure; /* the default is a static string: set only when given */
        on_failure = NULL;
    }
    free(on_failure);
    if (rc == EMPQ_OK)
        rc = get_u32(c, n, kp, "max_requests", 1, &b->has_max_requests, &b->max_requests);
    if (rc == EMPQ_OK && b->max_requests > lim->max_requests) {
        char k2[PATH_MAX_LEN];
        join(k2, kp, "max_requests");
        return fail(c, get(c, n, "max_requests"), "key '%s' must be at most %" PRIu32 " (the %s limit), got %" PRIu32,
                    k2, lim->max_requests, m->provider, b->max_requests);
    }
    int present = 0;
    uint64_t bytes = 0;
    if (rc == EMPQ_OK)
        rc = get_u64(c, n, kp, "max_bytes", &present, &bytes);
    if (rc == EMPQ_OK && present) {
        if (bytes < 1024 || bytes > lim->max_bytes) {
            char k2[PATH_MAX_LEN];
            join(k2, kp, "max_bytes");
            return fail(c, get(c, n, "max_bytes"),
                        "key '%s' must be from 1024 to %" PRIu64 " (the %s limit), got %" PRIu64, k2, lim->max_bytes,
                        m->provider, bytes);
        }
        b->has_max_bytes = 1;
        b->max_bytes = bytes;
    }
    if (rc == EMPQ_OK)
        rc = get_u32(c, n, kp, "poll_ms", 100, &b->has_poll_ms, &b->poll_ms);
    return rc;
}

/* Fills m from the mapping mm at path mp (models[i]). */
static int parse_model(ctx *c, yaml_node_t *mm, const char *mp, Empq__ModelSpec *m)
{
    static const char *const keys[] = {"alias", "provider", "base_url", "model", "api_key_env", "api_key_file",
                                       "api_version", "samples", "max_attempts", "timeout_ms", "params",
                                       "limits", "prices", "extra_body", "keep_thinking", "mode", "batch", NULL};
    char kp[PATH_MAX_LEN];
    int rc = check_map(c, mm, mp, keys);
    if (rc == EMPQ_OK)
        rc = get_string(c, mm, mp, "alias", 1, &m->alias);
    if (rc == EMPQ_OK && !valid_alias(m->alias)) {
        join(kp, mp, "alias");
        return fail(c, get(c, mm, "alias"), "key '%s' must be letters, digits, '.', '_' or '-', got '%.40s'", kp,
                    m->alias);
    }
    if (rc == EMPQ_OK)
        rc = get_choice(c, mm, mp, "provider", 1, PROVIDERS, &m->provider);
    if (rc == EMPQ_OK)
        rc = get_string(c, mm, mp, "base_url", 1, &m->base_url);
    if (rc == EMPQ_OK) {
        empq_error e = {0};
        if (expand(m->base_url, NULL, &e) != EMPQ_OK) {
            join(kp, mp, "base_url");
            return fail(c, get(c, mm, "base_url"), "key '%s': %s", kp, e.msg);
        }
    }
    if (rc == EMPQ_OK)
        rc = get_string(c, mm, mp, "model", 1, &m->model);
    if (rc == EMPQ_OK)
        rc = get_string(c, mm, mp, "api_key_env", 0, &m->api_key_env);
    if (rc == EMPQ_OK && m->api_key_env != NULL && !valid_var(m->api_key_env)) {
        join(kp, mp, "api_key_env");
        return fail(c, get(c, mm, "api_key_env"),
                    "key '%s' must be the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*), "
                    "not the key itself",
                    kp);
    }
    if (rc == EMPQ_OK)
        rc = get_string(c, mm, mp, "api_key_file", 0, &m->api_key_file);
    if (rc == EMPQ_OK && m->api_key_env != NULL && m->api_key_file != NULL) {
        join(kp, mp, "api_key_file");
        return fail(c, get(c, mm, "api_key_file"), "key '%s': give api_key_env or api_key_file, not both", kp);
    }
    if (rc == EMPQ_OK)
        rc = get_string(c, mm, mp, "api_version", 0, &m->api_version);
    if (rc == EMPQ_OK)
        rc = get_u32(c, mm, mp, "samples", 1, &m->has_samples, &m->samples);
    if (rc == EMPQ_OK)
        rc = get_u32(c, mm, mp, "max_attempts", 1, &m->has_max_attempts, &m->max_attempts);
    if (rc == EMPQ_OK)
        rc = get_u32(c, mm, mp, "timeout_ms", 1, &m->has_timeout_ms, &m->timeout_ms);
    if (rc == EMPQ_OK)
        rc = parse_params(c, mm, mp, m);
    if (rc == EMPQ_OK)
        rc = parse_limits(c, mm, mp, m);
    if (rc == EMPQ_OK)
        rc = parse_prices(c, mm, mp, m);
    if (rc == EMPQ_OK)
        rc = parse_extra_body(c, mm, mp, m);
    if (rc == EMPQ_OK)
        rc = parse_batch(c, mm, mp, m);
    if (rc == EMPQ_OK) {
        int present = 0, keep = 0;
        rc = get_bool(c, mm, mp, "keep_thinking", &present, &keep);
        m->has_keep_thinking = present;
        m->keep_thinking = keep != 0;
    }
    return rc;
}

static int parse_models(ctx *c, yaml_node_t *root, Empq__RunSpec *rs)
{
    char got[64];
    yaml_node_t *ms = get(c, root, "models");
    if (ms == NULL)
        return fail(c, root, "key 'models' is required");
    if (ms->type != YAML_SEQUENCE_NODE)
        return fail(c, ms, "key 'models' must be a list, got %s", describe(ms, got, sizeof got));
    yaml_node_item_t *first = ms->data.sequence.items.start;
    if (ms->data.sequence.items.top == first)
        return fail(c, ms, "key 'models' must list at least one model");
    size_t base = rs->n_models; /* the human source, when included */
    for (yaml_node_item_t *it = first; it < ms->data.sequence.items.top; it++) {
        char mp[PATH_MAX_LEN];
        snprintf(mp, sizeof mp, "models[%zu]", (size_t)(it - first));
        yaml_node_t *mm = yaml_document_get_node(c->doc, *it);
        if (mm == NULL || mm->type != YAML_MAPPING_NODE)
            return fail(c, mm != NULL ? mm : ms, "key '%s' must be a mapping, got %s", mp,
                        mm != NULL ? describe(mm, got, sizeof got) : "nothing");
        Empq__ModelSpec *m = new_model();
        if (m == NULL)
            return NOMEM(c, mm);
        int rc = add_model(c, rs, m, mm);
        if (rc == EMPQ_OK)
            rc = parse_model(c, mm, mp, m);
        if (rc != EMPQ_OK)
            return rc;
        for (size_t j = 0; j + 1 < rs->n_models; j++) {
            if (strcmp(rs->models[j]->alias, m->alias) != 0)
                continue;
            if (j < base)
                return fail(c, get(c, mm, "alias"),
                            "key '%s.alias': '%s' is the human source's alias (set human.alias to another name)",
                            mp, m->alias);
            return fail(c, get(c, mm, "alias"), "key '%s.alias': '%s' is already the alias of models[%zu]", mp,
                        m->alias, j - base);
        }
    }
    return EMPQ_OK;
}

/* ==================== rating: what participants see ==================== */

#define RATING_MAX_CONSENT 20000   /* bytes of consent text */
#define RATING_MAX_TEXT 1000       /* bytes of a question's text */
#define RATING_MAX_QUESTIONS 20
#define RATING_MAX_CHOICES 20
#define RATING_MAX_CHOICE_LEN 200  /* bytes of one choice */
#define RATING_MAX_ANSWER 2000     /* characters of a free-text answer (max_length) */

static const char *const QUESTION_TYPES[] = {"text", "choice", NULL};

/* A question id: 1-32 of [a-z0-9_], starting with a letter. */
static int valid_question_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || !islower((unsigned char)s[0]))
        return 0;
    for (; *s != '\0'; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

/* map[key] as a non-empty string of at most max bytes (required or not). */
static int get_text(ctx *c, yaml_node_t *map, const char *path, const char *key, int required, size_t max,
                    char **out)
{
    int rc = get_string(c, map, path, key, required, out);
    if (rc == EMPQ_OK && *out != NULL && strlen(*out) > max) {
        char kp[PATH_MAX_LEN];
        join(kp, path, key);
        return fail(c, get(c, map, key), "key '%s' is %zu bytes long, at most %zu", kp, strlen(*out), max);
    }
    return rc;
}

static int parse_choices(ctx *c, yaml_node_t *qm, const char *qp, Empq__RatingQuestion *q)
{
    char kp[PATH_MAX_LEN], got[64];
    join(kp, qp, "choices");
    yaml_node_t *l = get(c, qm, "choices");
    if (l == NULL)
        return fail(c, qm, "key '%s' is required with type choice", kp);
    if (l->type != YAML_SEQUENCE_NODE)
        return fail(c, l, "key '%s' must be a list of strings, got %s", kp, describe(l, got, sizeof got));
    size_t n = (size_t)(l->data.sequence.items.top - l->data.sequence.items.start);
    if (n < 2 || n > RATING_MAX_CHOICES)
        return fail(c, l, "key '%s' must list 2 to %d choices, got %zu", kp, RATING_MAX_CHOICES, n);
    q->choices = calloc(n, sizeof *q->choices);
    if (q->choices == NULL)
        return NOMEM(c, l);
    for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
        yaml_node_t *v = yaml_document_get_node(c->doc, *it);
        size_t i = (size_t)(it - l->data.sequence.items.start);
        if (v == NULL || v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0 ||
            strlen(sval(v)) != v->data.scalar.length)
            return fail(c, v != NULL ? v : l, "key '%s[%zu]' must be a non-empty string, got %s", kp, i,
                        v != NULL ? describe(v, got, sizeof got) : "nothing");
        if (v->data.scalar.length > RATING_MAX_CHOICE_LEN)
            return fail(c, v, "key '%s[%zu]' is %zu bytes long, at most %d", kp, i, v->data.scalar.length,
                        RATING_MAX_CHOICE_LEN);
        for (size_t j = 0; j < q->n_choices; j++)
            if (strcmp(q->choices[j], sval(v)) == 0)
                return fail(c, v, "key '%s[%zu]': '%.40s' is listed twice", kp, i, sval(v));
        if ((q->choices[q->n_choices] = empq_strdup(sval(v))) == NULL)
            return NOMEM(c, v);
        q->n_choices++;
    }
    return EMPQ_OK;
}

static int parse_question(ctx *c, yaml_node_t *qm, const char *qp, Empq__RatingQuestion *q)
{
    static const char *const keys[] = {"id", "text", "type", "choices", "required", "max_length", NULL};
    int rc = check_map(c, qm, qp, keys);
    if (rc == EMPQ_OK)
        rc = get_text(c, qm, qp, "id", 1, 32, &q->id);
    if (rc == EMPQ_OK && !valid_question_id(q->id))
        return fail(c, get(c, qm, "id"),
                    "key '%s.id' must be 1-32 of a-z 0-9 _ starting with a letter, got '%.40s'", qp, q->id);
    if (rc == EMPQ_OK)
        rc = get_text(c, qm, qp, "text", 1, RATING_MAX_TEXT, &q->text);
    if (rc == EMPQ_OK)
        rc = get_choice(c, qm, qp, "type", 0, QUESTION_TYPES, &q->type);
    if (rc == EMPQ_OK && q->type == NULL && (q->type = empq_strdup("text")) == NULL)
        rc = NOMEM(c, qm);
    int present = 0, req = 0;
    if (rc == EMPQ_OK)
        rc = get_bool(c, qm, qp, "required", &present, &req);
    if (rc != EMPQ_OK)
        return rc;
    q->has_required = 1;
    q->required = req != 0;
    if (strcmp(q->type, "choice") == 0) {
        if (get(c, qm, "max_length") != NULL)
            return fail(c, get(c, qm, "max_length"), "key '%s.max_length' is used with type text only", qp);
        return parse_choices(c, qm, qp, q);
    }
    if (get(c, qm, "choices") != NULL)
        return fail(c, get(c, qm, "choices"), "key '%s.choices' is used with type choice only", qp);
    q->has_max_length = 1;
    q->max_length = 500;
    int64_t ml = 500;
    rc = get_int(c, qm, qp, "max_length", 1, RATING_MAX_ANSWER, &present, &ml);
    q->max_length = (uint32_t)ml;
    return rc;
}

static int parse_questions(ctx *c, yaml_node_t *r, Empq__RatingSpec *rt)
{
    char got[64];
    yaml_node_t *l = get(c, r, "questions");
    if (l == NULL)
        return EMPQ_OK;
    if (l->type != YAML_SEQUENCE_NODE)
        return fail(c, l, "key 'rating.questions' must be a list, got %s", describe(l, got, sizeof got));
    size_t n = (size_t)(l->data.sequence.items.top - l->data.sequence.items.start);
    if (n > RATING_MAX_QUESTIONS)
        return fail(c, l, "key 'rating.questions' lists %zu questions, at most %d", n, RATING_MAX_QUESTIONS);
    rt->questions = calloc(n > 0 ? n : 1, sizeof *rt->questions);
    if (rt->questions == NULL)
        return NOMEM(c, l);
    for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
        char qp[PATH_MAX_LEN];
        snprintf(qp, sizeof qp, "rating.questions[%zu]", rt->n_questions);
        yaml_node_t *qm = yaml_document_get_node(c->doc, *it);
        if (qm == NULL)
            return fail(c, l, "key '%s' must be a mapping, got nothing", qp);
        Empq__RatingQuestion *q = malloc(sizeof *q);
        if (q == NULL)
            return NOMEM(c, qm);
        empq__rating_question__init(q);
        rt->questions[rt->n_questions++] = q;
        int rc = parse_question(c, qm, qp, q);
        if (rc != EMPQ_OK)
            return rc;
        for (size_t j = 0; j + 1 < rt->n_questions; j++)
            if (strcmp(rt->questions[j]->id, q->id) == 0)
                return fail(c, get(c, qm, "id"), "key '%s.id': '%s' is already the id of rating.questions[%zu]",
                            qp, q->id, j);
    }
    return EMPQ_OK;
}

/* The `rating:` section (optional): consent text, duration, questions. */
static int parse_rating(ctx *c, yaml_node_t *root, Empq__RunSpec *rs)
{
    static const char *const keys[] = {"consent", "duration_minutes", "questions", NULL};
    yaml_node_t *r = get(c, root, "rating");
    if (r == NULL)
        return EMPQ_OK;
    int rc = check_map(c, r, "rating", keys);
    if (rc != EMPQ_OK)
        return rc;
    Empq__RatingSpec *rt = malloc(sizeof *rt);
    if (rt == NULL)
        return NOMEM(c, r);
    empq__rating_spec__init(rt);
    rs->rating = rt;
    rc = get_text(c, r, "rating", "consent", 0, RATING_MAX_CONSENT, &rt->consent);
    if (rc == EMPQ_OK && rt->consent != NULL && rt->consent[0] == '\0')
        return fail(c, get(c, r, "consent"), "key 'rating.consent' must not be empty (leave it out for no consent page)");
    if (rc == EMPQ_OK)
        rc = get_u32(c, r, "rating", "duration_minutes", 1, &rt->has_duration_minutes, &rt->duration_minutes);
    if (rc == EMPQ_OK && rt->duration_minutes > 600)
        return fail(c, get(c, r, "duration_minutes"), "key 'rating.duration_minutes' must be an integer from 1 to 600, got %u",
                    rt->duration_minutes);
    if (rc == EMPQ_OK)
        rc = parse_questions(c, r, rt);
    return rc;
}

/* ==================== entry points ==================== */

/* Sets err from a libyaml failure; text/len locate a reader error's line. */
static int yaml_failure(ctx *c, yaml_parser_t *ps, const char *text, size_t len)
{
    const char *problem = ps->problem != NULL ? ps->problem : "malformed YAML";
    if (ps->error == YAML_MEMORY_ERROR)
        return empq_error_set(c->err, EMPQ_ENOMEM, "%s: out of memory reading YAML", c->origin);
    if (ps->error == YAML_READER_ERROR) { /* bad encoding: libyaml gives a byte offset, not a mark */
        size_t line = 1;
        for (size_t i = 0; i < ps->problem_offset && i < len; i++)
            line += text[i] == '\n';
        return empq_error_set(c->err, EMPQ_EPARSE, "%s:%zu: YAML syntax error: %s at byte %zu", c->origin, line,
                              problem, ps->problem_offset);
    }
    if (ps->context != NULL)
        return empq_error_set(c->err, EMPQ_EPARSE, "%s:%zu: YAML syntax error: %s (%s at line %zu)", c->origin,
                              (size_t)ps->problem_mark.line + 1, problem, ps->context,
                              (size_t)ps->context_mark.line + 1);
    return empq_error_set(c->err, EMPQ_EPARSE, "%s:%zu: YAML syntax error: %s", c->origin,
                          (size_t)ps->problem_mark.line + 1, problem);
}

/* ==================== the job count ==================== */

/* Fails unless n_prompts x models x samples (the run's job count, the
 * largest samples of its models counting for every model, as the job index
 * of docs/internals.md) is at most EMPQ_SPEC_MAX_JOBS. root is the spec's
 * document; prompts_from says where n_prompts comes from (a key and its
 * line, or the dataset). The error names the key of the largest samples (or
 * 'models' when every model has 1) and its line, and the prompts' source. */
static int check_job_count(ctx *c, yaml_node_t *root, const Empq__RunSpec *rs, uint64_t n_prompts,
                           const char *prompts_from)
{
    uint64_t samples = 1;
    size_t at = rs->n_models; /* the model with the largest samples */
    for (size_t i = 0; i < rs->n_models; i++) {
        if (rs->models[i]->has_samples && rs->models[i]->samples > samples) {
            samples = rs->models[i]->samples;
            at = i;
        }
    }
    /* at most 2^32 x 2^32 x (a list far below 2^32 long) would overflow:
     * divide instead of multiplying */
    uint64_t per_prompt = (uint64_t)rs->n_models * samples;
    if (n_prompts == 0 || per_prompt == 0 || n_prompts <= EMPQ_SPEC_MAX_JOBS / per_prompt)
        return EMPQ_OK;
    yaml_node_t *ms = get(c, root, "models"), *where = ms;
    char key[PATH_MAX_LEN] = "models";
    if (at < rs->n_models && ms != NULL && ms->type == YAML_SEQUENCE_NODE) {
        size_t listed = (size_t)(ms->data.sequence.items.top - ms->data.sequence.items.start);
        size_t base = rs->n_models - listed; /* the human source comes first */
        yaml_node_t *mm = yaml_document_get_node(c->doc, ms->data.sequence.items.start[at - base]);
        if (at >= base && mm != NULL && mm->type == YAML_MAPPING_NODE && get(c, mm, "samples") != NULL) {
            where = get(c, mm, "samples");
            snprintf(key, sizeof key, "models[%zu].samples", at - base);
        }
    }
    char total[32];
    if (n_prompts <= UINT64_MAX / per_prompt)
        snprintf(total, sizeof total, "%" PRIu64, n_prompts * per_prompt);
    else
        snprintf(total, sizeof total, "more than 2^64");
    return fail(c, where,
                "key '%s': %" PRIu64 " prompts (%s) x %zu sources x %" PRIu64 " samples = %s jobs, "
                "more than a run can hold (%llu: the job index is 32-bit; docs/spec.md)",
                key, n_prompts, prompts_from, rs->n_models, samples, total, (unsigned long long)EMPQ_SPEC_MAX_JOBS);
}

/* The job-count check of a spec being parsed, with the prompts the spec
 * itself fixes (selection.prompts, or a synthetic dataset's size) or, when
 * the dataset decides, at least 1. */
static int check_spec_jobs(ctx *c, yaml_node_t *root, const Empq__RunSpec *rs)
{
    char from[PATH_MAX_LEN + 32];
    uint64_t n = 1;
    snprintf(from, sizeof from, "at least 1: the dataset decides");
    yaml_node_t *sel = get(c, root, "selection"), *ds = get(c, root, "dataset");
    if (rs->has_synth_prompts && (rs->selection_count == 0 || rs->synth_prompts < rs->selection_count)) {
        n = rs->synth_prompts;
        snprintf(from, sizeof from, "dataset.prompts, line %zu", line_of(ds != NULL ? get(c, ds, "prompts") : NULL));
    } else if (rs->selection_count > 0) {
        n = rs->selection_count;
        snprintf(from, sizeof from, "selection.prompts, line %zu",
                 line_of(sel != NULL ? get(c, sel, "prompts") : NULL));
    }
    return check_job_count(c, root, rs, n, from);
}

int empq_spec_check_jobs(const Empq__RunSpec *spec, uint64_t n_prompts, const char *origin, empq_error *err)
{
    if (spec == NULL || spec->spec_yaml == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "empq_spec_check_jobs: NULL spec or spec text");
    yaml_parser_t ps;
    yaml_document_t doc;
    ctx c = {&doc, origin != NULL ? origin : "<spec>", err};
    if (!yaml_parser_initialize(&ps))
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", c.origin);
    size_t len = strlen(spec->spec_yaml);
    yaml_parser_set_input_string(&ps, (const unsigned char *)spec->spec_yaml, len);
    int rc;
    if (!yaml_parser_load(&ps, &doc)) {
        rc = yaml_failure(&c, &ps, spec->spec_yaml, len);
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        char from[64];
        snprintf(from, sizeof from, "selected from the dataset");
        if (root == NULL || root->type != YAML_MAPPING_NODE)
            rc = empq_error_set(err, EMPQ_ESPEC, "%s:1: the spec is empty", c.origin);
        else
            rc = check_job_count(&c, root, spec, n_prompts, from);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&ps);
    return rc;
}

/* Builds the RunSpec from the loaded document into rs (malloc'd fields). */
static int build(ctx *c, const char *base_dir, Empq__RunSpec *rs)
{
    static const char *const keys[] = {"name", "dataset", "selection", "template", "human", "models", "rating", NULL};
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (root == NULL || is_null(root))
        return empq_error_set(c->err, EMPQ_ESPEC, "%s:1: the spec is empty", c->origin);
    int rc = check_map(c, root, "", keys);
    if (rc == EMPQ_OK)
        rc = get_string(c, root, "", "name", 1, &rs->name);
    if (rc == EMPQ_OK)
        rc = parse_dataset(c, root, base_dir, rs);
    if (rc == EMPQ_OK)
        rc = parse_selection(c, root, rs);
    if (rc == EMPQ_OK)
        rc = parse_template(c, root, rs);
    if (rc == EMPQ_OK)
        rc = parse_human(c, root, rs);
    if (rc == EMPQ_OK)
        rc = parse_models(c, root, rs);
    if (rc == EMPQ_OK)
        rc = parse_rating(c, root, rs);
    if (rc == EMPQ_OK)
        rc = check_spec_jobs(c, root, rs);
    return rc;
}

/* Packs rs and returns the unpacked copy in *out. */
static int repack(ctx *c, const Empq__RunSpec *rs, Empq__RunSpec **out)
{
    size_t n = empq__run_spec__get_packed_size(rs);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return empq_error_set(c->err, EMPQ_ENOMEM, "%s: out of memory", c->origin);
    empq__run_spec__pack(rs, buf);
    *out = empq__run_spec__unpack(NULL, n, buf);
    free(buf);
    if (*out == NULL)
        return empq_error_set(c->err, EMPQ_ENOMEM, "%s: out of memory (RunSpec unpack)", c->origin);
    return EMPQ_OK;
}

static int parse(const char *text, size_t len, const char *origin, const char *base_dir, const char *spec_path,
                 Empq__RunSpec **out, empq_error *err)
{
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "spec: NULL output");
    *out = NULL;
    if (text == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "spec: NULL text");
    yaml_parser_t ps;
    yaml_document_t doc;
    ctx c = {&doc, origin != NULL ? origin : "<spec>", err};
    if (!yaml_parser_initialize(&ps))
        return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", c.origin);
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    if (!yaml_parser_load(&ps, &doc)) {
        int rc = yaml_failure(&c, &ps, text, len);
        yaml_parser_delete(&ps);
        return rc;
    }

    Empq__RunSpec *rs = malloc(sizeof *rs);
    int rc = EMPQ_OK;
    if (rs == NULL) {
        rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", c.origin);
    } else {
        empq__run_spec__init(rs);
        rc = build(&c, base_dir, rs);
    }
    if (rc == EMPQ_OK) { /* one document only */
        yaml_document_t next;
        if (!yaml_parser_load(&ps, &next)) {
            rc = yaml_failure(&c, &ps, text, len);
        } else {
            yaml_node_t *r = yaml_document_get_root_node(&next);
            if (r != NULL)
                rc = empq_error_set(err, EMPQ_ESPEC, "%s:%zu: a second YAML document ('---'); a spec is one document",
                                    c.origin, (size_t)next.start_mark.line + 1);
            yaml_document_delete(&next);
        }
    }
    if (rc == EMPQ_OK) {
        rs->spec_yaml = malloc(len + 1);
        rs->spec_path = spec_path != NULL ? empq_strdup(spec_path) : NULL;
        if (rs->spec_yaml == NULL || (spec_path != NULL && rs->spec_path == NULL)) {
            rc = empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", c.origin);
        } else {
            memcpy(rs->spec_yaml, text, len);
            rs->spec_yaml[len] = '\0';
            rc = repack(&c, rs, out);
        }
    }
    if (rs != NULL)
        empq__run_spec__free_unpacked(rs, NULL); /* every field is malloc'd: the default allocator frees it */
    yaml_document_delete(&doc);
    yaml_parser_delete(&ps);
    return rc;
}

int empq_spec_parse(const char *text, size_t len, const char *origin, const char *base_dir,
                    Empq__RunSpec **out, empq_error *err)
{
    return parse(text, len, origin, base_dir, NULL, out, err);
}

int empq_spec_load(const char *path, Empq__RunSpec **out, empq_error *err)
{
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "spec: NULL output");
    *out = NULL;
    if (path == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "spec: NULL path");
    char *text = NULL;
    size_t len = 0;
    int rc = empq_read_file(path, &text, &len, err);
    if (rc != EMPQ_OK)
        return rc;
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (slash != NULL) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir == NULL) {
            free(text);
            return empq_error_set(err, EMPQ_ENOMEM, "%s: out of memory", path);
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    rc = parse(text, len, path, dir, path, out, err);
    free(dir);
    free(text);
    return rc;
}

int empq_spec_model_index(const Empq__RunSpec *spec, const char *alias)
{
    if (spec == NULL || alias == NULL)
        return -1;
    for (size_t i = 0; i < spec->n_models; i++)
        if (spec->models[i]->alias != NULL && strcmp(spec->models[i]->alias, alias) == 0)
            return (int)i;
    return -1;
}
