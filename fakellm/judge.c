/* judge.c: the fake judge models: a label from the response's style, with
 * seeded noise. */
#include "judge.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static double g_noise = 0.0;
static uint64_t g_seed = 1;

int fakellm_judge_is_judge(const char *model)
{
    return model != NULL && strncmp(model, "fake-judge", 10) == 0;
}

void fakellm_judge_set(double noise, uint64_t seed)
{
    g_noise = noise < 0 ? 0 : noise > 1 ? 1 : noise;
    g_seed = seed;
}

typedef struct features {
    size_t words, you, questions;
} features;

static features measure(const char *s, size_t n)
{
    features f = {0, 0, 0};
    size_t i = 0;
    while (i < n) {
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        if (i >= n)
            break;
        size_t w = i;
        while (i < n && !isspace((unsigned char)s[i]))
            i++;
        f.words++;
        /* a word starting with "you" once leading punctuation is skipped */
        while (w < i && !isalpha((unsigned char)s[w]))
            w++;
        if (i - w >= 3 && strncasecmp(s + w, "you", 3) == 0)
            f.you++;
    }
    for (i = 0; i < n; i++)
        f.questions += s[i] == '?';
    return f;
}

static int label_for(const char *model, int score)
{
    if (strncmp(model, "fake-judge-lenient", 18) == 0)
        return score >= 2 ? 3 : score == 1 ? 2 : 1;
    if (strncmp(model, "fake-judge-strict", 17) == 0)
        return score >= 4 ? 3 : score >= 2 ? 2 : 1;
    return score >= 3 ? 3 : score == 2 ? 2 : 1;
}

static int score_of(features f)
{
    return (f.words >= 15) + (f.words >= 30) + (f.you >= 1) + (f.questions >= 1);
}

int fakellm_judge_rule(const char *model, const char *response, int *score)
{
    features f = measure(response != NULL ? response : "", response != NULL ? strlen(response) : 0);
    int sc = score_of(f);
    if (score != NULL)
        *score = sc;
    return label_for(model != NULL ? model : "", sc);
}

/* The response shown to the judge: inside the last <response>...</response>
 * of text, or all of it. */
static void extract(const char *text, const char **s, size_t *n)
{
    const char *open = NULL;
    for (const char *p = strstr(text, "<response>"); p != NULL; p = strstr(p + 1, "<response>"))
        open = p;
    if (open != NULL) {
        const char *b = open + strlen("<response>");
        const char *e = strstr(b, "</response>");
        if (e != NULL) {
            *s = b;
            *n = (size_t)(e - b);
            return;
        }
    }
    *s = text;
    *n = strlen(text);
}

/* splitmix64: one well-mixed 64-bit value from x. */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

int fakellm_judge_reply(const char *model, const fakellm_msg *msgs, size_t n, unsigned variant, long long seed,
                        empq_buf *out)
{
    model = model != NULL ? model : "";
    if (strcmp(model, "fake-judge-garbage") == 0)
        return empq_buf_printf(out, "Honestly, this reply feels warm and thoughtful to me, though it could say "
                                    "a little more about the speaker.");
    if (strcmp(model, "fake-judge-offscale") == 0)
        return empq_buf_printf(out, "{\"label\":\"Excellent\",\"reason\":\"a five-star reply\"}");
    const char *user = "";
    for (size_t i = n; i > 0; i--)
        if (strcmp(msgs[i - 1].role, "user") == 0) {
            user = msgs[i - 1].content;
            break;
        }
    const char *s;
    size_t len;
    extract(user, &s, &len);
    features f = measure(s, len);
    int score = score_of(f);
    int label = label_for(model, score);
    uint64_t h = mix(fakellm_style_hash(model, msgs, n) ^ mix(g_seed) ^ mix((uint64_t)variant + 0x51) ^
                   mix((uint64_t)seed * 0x2545F4914F6CDD1Dull));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    int flipped = u < g_noise;
    if (flipped) /* one of the two other labels, by another bit of the draw */
        label = 1 + (label - 1 + 1 + (int)(mix(h) & 1)) % 3;
    static const char *const names[] = {"", "Bad", "Okay", "Good"};
    return empq_buf_printf(out,
                           "{\"label\":\"%s\",\"reason\":\"score %d of 4: %zu words, %zu you-words, %zu "
                           "question%s%s\"}",
                           names[label], score, f.words, f.you, f.questions, f.questions == 1 ? "" : "s",
                           flipped ? " (noise)" : "");
}
