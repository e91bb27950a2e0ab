/* test_fakellm_style.c: the fake models' replies are deterministic and each
 * style has the measurable traits style.h promises, over a few hundred
 * prompts built from emotional-dialogue-like phrases. */
#include <ctype.h>
#include <stdint.h>
#include <strings.h>

#include "check.h"
#include "style.h"

/* ---- measures ------------------------------------------------------------ */

/* Code points at U+1F300 or above (the emoji blocks the styles use). */
static int count_emojis(const char *s)
{
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xf8) == 0xf0 && p[1] && p[2] && p[3]) {
            uint32_t cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
                          ((uint32_t)(p[2] & 0x3f) << 6) | (uint32_t)(p[3] & 0x3f);
            if (cp >= 0x1F300)
                n++;
            p += 3;
        }
    return n;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* Sentences: runs of '.', '!' and '?' (a trailing emoji does not add one). */
static int count_sentences(const char *s)
{
    int n = 0, in_term = 0;
    for (; *s; s++) {
        int t = *s == '.' || *s == '!' || *s == '?';
        if (t && !in_term)
            n++;
        in_term = t;
    }
    return n;
}

/* Whole-word, case-insensitive occurrences of any of words. */
static int count_words_of(const char *s, const char *const *words, size_t n_words)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        while (*p && !(isalpha((unsigned char)*p) || *p == '\''))
            p++;
        const char *start = p;
        while (*p && (isalpha((unsigned char)*p) || *p == '\''))
            p++;
        size_t len = (size_t)(p - start);
        for (size_t i = 0; i < n_words && len > 0; i++)
            if (strlen(words[i]) == len && strncasecmp(start, words[i], len) == 0)
                n++;
    }
    return n;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

/* ---- prompts ------------------------------------------------------------- */

static const char *const openers[] = {
    "My dog died last week and I feel so sad.",
    "I finally got the promotion at work, I am so proud!",
    "My sister forgot my birthday again.",
    "I was terrified when the car in front of me spun out on the ice.",
    "I lost my job yesterday and I don't know what to do.",
    "We are moving to a new city next month and I'm nervous.",
    "My best friend surprised me with concert tickets!",
    "I felt so lonely when my wife was out of town for a week.",
    "i",
    "",
    "Someone stole my bike from outside the library.",
    "I am grateful for my neighbours who helped during the storm.",
    "\xF0\x9F\x98\xA2 my cat is sick \xF0\x9F\x98\xA2",
    "I cheated on a test in school and still feel guilty about it.",
};
static const char *const tails[] = {
    "", " What should I do?", " It has been hard.", " I keep thinking about it!", " Anyway.",
    " Thanks for listening.", " My mom says it will pass.", " Work has been busy too.",
    " Honestly it is a lot.", " I remember when I was young.", " Not sure how to feel.",
    " The weather did not help.", " It happened on Sunday.", " My partner was there.",
    " I told nobody about it.", " We will see.", " Maybe tomorrow is better.",
    " It reminds me of my grandfather.", " People keep asking.", " That is all.",
};

#define N_PROMPTS (sizeof(openers) / sizeof(openers[0]) * sizeof(tails) / sizeof(tails[0]))

static void prompt_text(size_t i, char *buf, size_t len)
{
    size_t n_tails = sizeof(tails) / sizeof(tails[0]);
    snprintf(buf, len, "%s%s", openers[i / n_tails], tails[i % n_tails]);
}

static char *reply_for(const char *model, const char *user, unsigned variant)
{
    fakellm_msg msgs[2] = {{"system", "You are a supportive listener."}, {"user", user}};
    empq_buf b = {0};
    CHECK_INT(fakellm_style_reply(model, msgs, 2, variant, &b), EMPQ_OK);
    CHECK(b.data != NULL && b.len > 0);
    return b.data;
}

/* ---- tests --------------------------------------------------------------- */

static void test_model_styles(void)
{
    CHECK_INT(fakellm_style_for_model("fake-warm"), FAKELLM_STYLE_WARM);
    CHECK_INT(fakellm_style_for_model("fake-formal"), FAKELLM_STYLE_FORMAL);
    CHECK_INT(fakellm_style_for_model("fake-brief"), FAKELLM_STYLE_BRIEF);
    CHECK_INT(fakellm_style_for_model("fake-curious"), FAKELLM_STYLE_CURIOUS);
    CHECK_INT(fakellm_style_for_model("gpt-4o"), FAKELLM_STYLE_NEUTRAL);
    CHECK_INT(fakellm_style_for_model("fake-warm2"), FAKELLM_STYLE_NEUTRAL);
    CHECK_INT(fakellm_style_for_model(NULL), FAKELLM_STYLE_NEUTRAL);
    CHECK_STR(fakellm_style_name(FAKELLM_STYLE_CURIOUS), "curious");
    CHECK_STR(fakellm_style_name(FAKELLM_STYLE_NEUTRAL), "neutral");
}

static void test_hash(void)
{
    fakellm_msg a[2] = {{"user", "ab"}, {"user", "c"}};
    fakellm_msg b[2] = {{"user", "a"}, {"user", "bc"}};
    fakellm_msg c[1] = {{"user", "abc"}};
    CHECK(fakellm_style_hash("m", a, 2) != fakellm_style_hash("m", b, 2));
    CHECK(fakellm_style_hash("m", a, 2) != fakellm_style_hash("m", c, 1));
    CHECK(fakellm_style_hash("m", a, 2) != fakellm_style_hash("n", a, 2));
    CHECK(fakellm_style_hash("m", a, 2) == fakellm_style_hash("m", a, 2));
    /* FNV-1a 64 of "" followed by the record separator: fixed forever, so
     * replies stay the same across releases. */
    CHECK(fakellm_style_hash(NULL, NULL, 0) == fakellm_style_hash("", NULL, 0));
    CHECK(fakellm_style_hash("", NULL, 0) == ((0xcbf29ce484222325ULL ^ 0x1e) * 0x100000001b3ULL));
}

static void test_deterministic(void)
{
    static const char *const models[] = {"fake-warm", "fake-formal", "fake-brief", "fake-curious", "gpt-x"};
    char prompt[256];
    for (size_t m = 0; m < 5; m++) {
        for (size_t i = 0; i < N_PROMPTS; i += 7) {
            prompt_text(i, prompt, sizeof(prompt));
            char *a = reply_for(models[m], prompt, 0), *b = reply_for(models[m], prompt, 0);
            CHECK_STR(a, b);
            free(a);
            free(b);
        }
    }
    /* Appending to a buffer that holds text gives the same reply after it. */
    fakellm_msg msg = {"user", "My dog died."};
    empq_buf one = {0}, two = {0};
    CHECK_INT(fakellm_style_reply("fake-warm", &msg, 1, 0, &one), EMPQ_OK);
    CHECK_INT(empq_buf_append(&two, "X", 1), EMPQ_OK);
    CHECK_INT(fakellm_style_reply("fake-warm", &msg, 1, 0, &two), EMPQ_OK);
    CHECK_STR(two.data + 1, one.data);
    empq_buf_free(&one);
    empq_buf_free(&two);
}

/* Replies vary with the prompt (the hash and the echo) and with variant. */
static void test_varies(void)
{
    static const char *const models[] = {"fake-warm", "fake-formal", "fake-brief", "fake-curious", "gpt-x"};
    char prompt[256];
    for (size_t m = 0; m < 5; m++) {
        char *seen[N_PROMPTS];
        size_t distinct = 0;
        for (size_t i = 0; i < N_PROMPTS; i++) {
            prompt_text(i, prompt, sizeof(prompt));
            char *r = reply_for(models[m], prompt, 0);
            size_t j;
            for (j = 0; j < distinct; j++)
                if (strcmp(seen[j], r) == 0)
                    break;
            if (j == distinct)
                seen[distinct++] = r;
            else
                free(r);
        }
        fprintf(stderr, "   %s: %zu distinct replies of %zu prompts\n", models[m], distinct, (size_t)N_PROMPTS);
        /* brief takes one keyword and one template: less variety. */
        CHECK(distinct * (m == 2 ? 3 : 2) > N_PROMPTS);
        for (size_t j = 0; j < distinct; j++)
            free(seen[j]);
    }
    int differ = 0;
    for (unsigned v = 1; v < 8; v++) {
        char *a = reply_for("fake-curious", "My dog died.", 0), *b = reply_for("fake-curious", "My dog died.", v);
        differ += strcmp(a, b) != 0;
        free(a);
        free(b);
    }
    CHECK(differ >= 5);
}

static void test_echo(void)
{
    char *r = reply_for("fake-formal", "My dog Rex died last week and I feel so sad.", 0);
    CHECK_CONTAINS(r, "\"dog rex died\"");
    free(r);
    r = reply_for("gpt-x", "I lost my job yesterday.", 0);
    CHECK_CONTAINS(r, "\"lost your job\"");
    free(r);
    /* Study templates: the speaker's words, not the instructions. */
    r = reply_for("fake-formal",
                  "The speaker's situation: I felt lonely while she was away.\n\n"
                  "The speaker says: \"My wife was out of town for a week.\"",
                  0);
    CHECK_CONTAINS(r, "\"wife was out of town\"");
    CHECK(strstr(r, "speaker") == NULL);
    free(r);
    r = reply_for("fake-formal",
                  "Continue this dialogue as the listener. Reply in one or two sentences.\n\n"
                  "Speaker: My dog died last week.\nListener:",
                  0);
    CHECK_CONTAINS(r, "\"dog died\"");
    free(r);
    /* The emotion may come from the situation line outside the quotes. */
    int lonely = 0;
    char msg[256];
    for (int i = 0; i < 40; i++) {
        snprintf(msg, sizeof(msg), "Situation: I felt lonely.\nThe speaker says: \"My wife left town %d days ago.\"", i);
        r = reply_for("fake-formal", msg, 0);
        lonely += strstr(r, "lonely") != NULL;
        free(r);
    }
    CHECK(lonely > 0);
    /* Too short a quote is not the speaker: "ok" below is ignored. */
    r = reply_for("fake-formal", "Dog \"ok\" garden flooded.", 0);
    CHECK_CONTAINS(r, "\"dog ok garden flooded\"");
    free(r);
    /* No content word: "this", no quotes. */
    r = reply_for("fake-formal", "I am.", 0);
    CHECK(strchr(r, '"') == NULL);
    free(r);
    /* Emoji, '!' and '?' of the user never reach the echo. */
    r = reply_for("fake-formal", "Why?! \xF0\x9F\x98\xA2 wedding! ruined?", 0);
    CHECK_INT(count_emojis(r), 0);
    CHECK_INT(count_char(r, '!'), 0);
    CHECK_INT(count_char(r, '?'), 0);
    free(r);
    /* The emotion word is echoed where a template takes it. */
    int with_emotion = 0;
    char prompt[128];
    for (int i = 0; i < 40; i++) {
        snprintf(prompt, sizeof(prompt), "I felt so lonely after the move %d.", i);
        r = reply_for("fake-formal", prompt, 0);
        with_emotion += strstr(r, "lonely") != NULL;
        free(r);
    }
    CHECK(with_emotion > 0);
}

static void test_style_traits(void)
{
    static const char *const second[] = {"you", "your", "you're", "you've", "yourself"};
    static const char *const plural[] = {"we", "us", "our", "ours", "ourselves"};
    static const char *const first[] = {"i", "i'm", "i'd", "i've", "me", "my", "myself"};
    char prompt[256];
    double warm_you = 0, formal_len = 0, brief_len = 0;

    for (size_t i = 0; i < N_PROMPTS; i++) {
        prompt_text(i, prompt, sizeof(prompt));

        char *w = reply_for("fake-warm", prompt, 0);
        int e = count_emojis(w), s = count_sentences(w);
        if (e < 1 || e > 3 || s < 2 || s > 3 || count_char(w, '!') < 1 || count_char(w, '?') != 0 ||
            count_words_of(w, second, 5) < 2) {
            fprintf(stderr, "warm reply off-style for \"%s\": %s\n", prompt, w);
            CHECK(0);
        }
        warm_you += count_words_of(w, second, 5);
        free(w);

        char *f = reply_for("fake-formal", prompt, 0);
        s = count_sentences(f);
        if (s < 5 || s > 7 || count_emojis(f) != 0 || count_char(f, '!') != 0 || count_char(f, '?') != 0 ||
            !(strstr(f, "I'm sorry to hear") || strstr(f, "I apologize")) || !strstr(f, "I understand") ||
            count_words_of(f, plural, 5) != 0) {
            fprintf(stderr, "formal reply off-style for \"%s\": %s\n", prompt, f);
            CHECK(0);
        }
        formal_len += (double)fakellm_count_words(f);
        free(f);

        char *b = reply_for("fake-brief", prompt, 0);
        size_t words = fakellm_count_words(b);
        if (count_sentences(b) != 1 || words < 6 || words > 12 || count_emojis(b) != 0 || count_char(b, '?') != 0) {
            fprintf(stderr, "brief reply off-style for \"%s\": %s\n", prompt, b);
            CHECK(0);
        }
        brief_len += (double)words;
        free(b);

        char *c = reply_for("fake-curious", prompt, 0);
        int q = count_char(c, '?');
        if (q < 2 || q > 3 || !contains_ci(c, "thank you for sharing") || count_emojis(c) != 0 ||
            count_words_of(c, first, 7) < 2) {
            fprintf(stderr, "curious reply off-style for \"%s\": %s\n", prompt, c);
            CHECK(0);
        }
        free(c);

        char *n = reply_for("some-model", prompt, 0);
        s = count_sentences(n);
        if (s < 2 || s > 3 || count_emojis(n) != 0 || count_char(n, '!') != 0 || count_char(n, '?') != 0) {
            fprintf(stderr, "neutral reply off-style for \"%s\": %s\n", prompt, n);
            CHECK(0);
        }
        free(n);
    }
    fprintf(stderr, "   warm you/your per reply %.1f, formal words %.1f, brief words %.1f\n",
            warm_you / (double)N_PROMPTS, formal_len / (double)N_PROMPTS, brief_len / (double)N_PROMPTS);
    CHECK(warm_you / (double)N_PROMPTS >= 3.0);
    CHECK(formal_len > 4 * brief_len);
}

/* The curious style asks with "I wonder" and "I'd love to know" often. */
static void test_curious_phrases(void)
{
    char prompt[256];
    int wonder = 0, love = 0;
    for (size_t i = 0; i < N_PROMPTS; i++) {
        prompt_text(i, prompt, sizeof(prompt));
        char *c = reply_for("fake-curious", prompt, 0);
        wonder += strstr(c, "I wonder") != NULL;
        love += strstr(c, "I'd love to know") != NULL;
        free(c);
    }
    CHECK(wonder * 3 > (int)N_PROMPTS);
    CHECK(love * 3 > (int)N_PROMPTS);
}

static void test_multi_turn(void)
{
    /* The echo comes from the last user message; earlier turns still change
     * the hash. */
    fakellm_msg a[3] = {{"user", "My dog died."}, {"assistant", "I'm sorry."}, {"user", "My garden flooded."}};
    fakellm_msg b[3] = {{"user", "My cat died."}, {"assistant", "I'm sorry."}, {"user", "My garden flooded."}};
    empq_buf x = {0}, y = {0};
    CHECK_INT(fakellm_style_reply("fake-formal", a, 3, 0, &x), EMPQ_OK);
    CHECK_INT(fakellm_style_reply("fake-formal", b, 3, 0, &y), EMPQ_OK);
    CHECK_CONTAINS(x.data, "garden flooded");
    CHECK(strstr(x.data, "dog") == NULL);
    CHECK(fakellm_style_hash("fake-formal", a, 3) != fakellm_style_hash("fake-formal", b, 3));
    empq_buf_free(&x);
    empq_buf_free(&y);
    /* No user message at all still answers. */
    fakellm_msg sys = {"system", "Be nice."};
    CHECK_INT(fakellm_style_reply("fake-warm", &sys, 1, 0, &x), EMPQ_OK);
    CHECK(x.len > 0);
    empq_buf_free(&x);
}

static void test_words(void)
{
    CHECK_INT(fakellm_count_words(NULL), 0);
    CHECK_INT(fakellm_count_words(""), 0);
    CHECK_INT(fakellm_count_words("   "), 0);
    CHECK_INT(fakellm_count_words("one"), 1);
    CHECK_INT(fakellm_count_words("  one two\tthree\n"), 3);
    CHECK_INT(fakellm_count_words("I'm fine! \xF0\x9F\x98\x8A"), 3);

    const char *s = "  one two\tthree  ";
    CHECK_INT(fakellm_prefix_words(s, 0), 0);
    CHECK_INT(fakellm_prefix_words(s, 1), 5);  /* "  one" */
    CHECK_INT(fakellm_prefix_words(s, 2), 9);  /* "  one two" */
    CHECK_INT(fakellm_prefix_words(s, 3), strlen(s));
    CHECK_INT(fakellm_prefix_words(s, 10), strlen(s));
    CHECK_INT(fakellm_prefix_words("", 3), 0);
}

int main(void)
{
    RUN(test_model_styles);
    RUN(test_hash);
    RUN(test_deterministic);
    RUN(test_varies);
    RUN(test_echo);
    RUN(test_style_traits);
    RUN(test_curious_phrases);
    RUN(test_multi_turn);
    RUN(test_words);
    CHECK_DONE();
}
