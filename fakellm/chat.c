/* chat.c: the provider-neutral request and answer. See chat.h. */
#include "chat.h"
#include "judge.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "empq/error.h"

int fakellm_chat_alloc(fakellm_chat *c, size_t n)
{
    c->msgs = calloc(n ? n : 1, sizeof(*c->msgs));
    c->owned = calloc(n ? n : 1, sizeof(*c->owned));
    c->cap_owned = n ? n : 1;
    c->n = 1;
    if (c->msgs == NULL || c->owned == NULL)
        return EMPQ_ENOMEM;
    return EMPQ_OK;
}

void fakellm_chat_add(fakellm_chat *c, const char *role, const char *content)
{
    c->msgs[c->n_msgs].role = role;
    c->msgs[c->n_msgs].content = content ? content : "";
    c->n_msgs++;
}

const char *fakellm_chat_own(fakellm_chat *c, char *text)
{
    if (c->n_owned < c->cap_owned)
        c->owned[c->n_owned++] = text;
    return text;
}

void fakellm_chat_free(fakellm_chat *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->msgs);
    memset(c, 0, sizeof(*c));
}

uint64_t fakellm_chat_prompt_tokens(const fakellm_chat *c)
{
    uint64_t t = 3;
    for (size_t i = 0; i < c->n_msgs; i++)
        t += 4 + fakellm_count_words(c->msgs[i].content);
    return t;
}

void fakellm_answer_clear(fakellm_answer *a)
{
    if (a == NULL)
        return;
    free(a->text);
    memset(a, 0, sizeof(*a));
}

/* The answers without model text: refusal, empty, null, safety, and the
 * two reasoning faults. */
static int answer_fixed(const fakellm_chat *c, fakellm_mode mode, fakellm_answer *out)
{
    uint64_t need = c->reasoning > 0 ? (uint64_t)c->reasoning : FAKELLM_THINK_DEFAULT;
    out->text = strdup(mode == FAKELLM_MODE_REFUSAL ? FAKELLM_REFUSAL_TEXT : "");
    if (out->text == NULL)
        return EMPQ_ENOMEM;
    out->tokens = fakellm_count_words(out->text);
    out->finish = mode == FAKELLM_MODE_REFUSAL ? FAKELLM_FINISH_REFUSAL : FAKELLM_FINISH_STOP;
    if (mode == FAKELLM_MODE_THINKING_ONLY) {
        out->reasoning = need;
    } else if (mode == FAKELLM_MODE_LENGTH_EMPTY) {
        out->reasoning = c->max_tokens > 0 ? (uint64_t)c->max_tokens : need;
        out->finish = FAKELLM_FINISH_LENGTH;
    }
    return EMPQ_OK;
}

int fakellm_chat_answer(const fakellm_chat *c, unsigned variant, fakellm_mode mode, fakellm_answer *out)
{
    memset(out, 0, sizeof(*out));
    if (mode != FAKELLM_MODE_NORMAL && mode != FAKELLM_MODE_HUGE)
        return answer_fixed(c, mode, out);
    long long budget = c->max_tokens;
    if (c->reasoning > 0) {
        out->reasoning = (uint64_t)c->reasoning;
        if (budget > 0 && c->reasoning >= budget) {
            /* The reasoning used the whole budget: no text. */
            out->reasoning = (uint64_t)budget;
            out->finish = FAKELLM_FINISH_LENGTH;
            out->text = strdup(mode == FAKELLM_MODE_HUGE ? FAKELLM_PAD_MARK : "");
            return out->text ? EMPQ_OK : EMPQ_ENOMEM;
        }
        if (budget > 0)
            budget -= c->reasoning;
    }
    empq_buf b = {0};
    int rc = fakellm_judge_is_judge(c->model) ? fakellm_judge_reply(c->model, c->msgs, c->n_msgs, variant, c->seed, &b)
                                              : fakellm_style_reply(c->model, c->msgs, c->n_msgs, variant, &b);
    if (rc != EMPQ_OK) {
        empq_buf_free(&b);
        return EMPQ_ENOMEM;
    }
    const char *text = b.data ? b.data : "";
    size_t len = strlen(text);
    /* The earliest stop sequence wins, as a real model stops at the first. */
    for (size_t i = 0; i < c->n_stops; i++) {
        if (c->stops[i][0] == '\0')
            continue;
        const char *p = strstr(text, c->stops[i]);
        if (p != NULL && (size_t)(p - text) < len) {
            len = (size_t)(p - text);
            out->finish = FAKELLM_FINISH_STOP_SEQ;
            out->stop_seq = c->stops[i];
        }
    }
    size_t mark = mode == FAKELLM_MODE_HUGE ? strlen(FAKELLM_PAD_MARK) : 0;
    out->text = malloc(len + mark + 1);
    if (out->text == NULL) {
        empq_buf_free(&b);
        return EMPQ_ENOMEM;
    }
    memcpy(out->text, text, len);
    out->text[len] = '\0';
    empq_buf_free(&b);
    if (budget > 0 && fakellm_count_words(out->text) > (size_t)budget) {
        out->text[fakellm_prefix_words(out->text, (size_t)budget)] = '\0';
        out->finish = FAKELLM_FINISH_LENGTH;
        out->stop_seq = NULL;
    }
    out->tokens = fakellm_count_words(out->text);
    if (mark > 0)
        memcpy(out->text + strlen(out->text), FAKELLM_PAD_MARK, mark + 1);
    return EMPQ_OK;
}

char *fakellm_chat_thinking(const fakellm_chat *c, unsigned variant)
{
    static const char *const moves[] = {"acknowledge the feeling first", "keep the reply short and warm",
                                        "ask one gentle question", "avoid giving orders"};
    empq_buf b = {0};
    const char *last = c->n_msgs > 0 ? c->msgs[c->n_msgs - 1].content : "";
    uint64_t h = fakellm_style_hash(c->model, c->msgs, c->n_msgs) ^ variant;
    size_t words = fakellm_count_words(last);
    if (empq_buf_printf(&b, "The user wrote %zu word%s. I should %s, then %s.", words, words == 1 ? "" : "s",
                        moves[h % 4], moves[(h % 4 + 1 + (h / 4) % 3) % 4]) != EMPQ_OK) {
        empq_buf_free(&b);
        return NULL;
    }
    return b.data;
}

uint64_t fakellm_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void fakellm_make_id(char *out, size_t cap, const char *prefix, size_t n, uint64_t seed)
{
    static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    size_t p = strlen(prefix);
    if (cap == 0)
        return;
    if (p >= cap)
        p = cap - 1;
    memcpy(out, prefix, p);
    uint64_t x = seed;
    size_t i;
    for (i = 0; i < n && p + i + 1 < cap; i++) {
        if (i % 10 == 0)
            x = fakellm_mix64(x + (uint64_t)i);
        out[p + i] = base62[x % 62];
        x /= 62;
    }
    out[p + i] = '\0';
}

const char *fakellm_json_type_name(const struct json_t *v)
{
    if (v == NULL)
        return "null";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: break;
    }
    return "null";
}
