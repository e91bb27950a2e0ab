/* analysis_style.c: style counts of one response text (after Lee et al.
 * 2024): words, sentences, punctuation, emojis, pronouns, apology and
 * gratitude words. UTF-8 is decoded properly; the rules are in
 * docs/analysis.md. */
#include <stdint.h>
#include <string.h>

#include "empq/analysis.h"

/* ==================== UTF-8 ==================== */

/* Decodes one codepoint at s (NUL-terminated); sets *len to the bytes it
 * takes (>= 1). An invalid or truncated sequence is one byte of U+FFFD. */
static uint32_t utf8_next(const unsigned char *s, size_t *len)
{
    unsigned char c = s[0];
    *len = 1;
    if (c < 0x80)
        return c;
    int n;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0xFFFD;
    }
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0xFFFD;
    *len = (size_t)n + 1;
    return cp;
}

/* ==================== classes ==================== */

static int is_regional(uint32_t cp) { return cp >= 0x1F1E6 && cp <= 0x1F1FF; }

/* Emoji presentation codepoints of the main blocks. Skin-tone modifiers,
 * variation selectors and the zero-width joiner are not emojis by
 * themselves. */
static int is_emoji(uint32_t cp)
{
    if (cp >= 0x1F3FB && cp <= 0x1F3FF) /* skin tone modifiers */
        return 0;
    return (cp >= 0x1F300 && cp <= 0x1FAFF)    /* pictographs, emoticons, transport, supplemental */
           || (cp >= 0x2600 && cp <= 0x27BF)   /* miscellaneous symbols, dingbats */
           || (cp >= 0x1F000 && cp <= 0x1F02F) /* mahjong */
           || (cp >= 0x1F0A0 && cp <= 0x1F0FF) /* playing cards */
           || (cp >= 0x1F100 && cp <= 0x1F1FF) /* enclosed alphanumerics, regional indicators */
           || (cp >= 0x1F200 && cp <= 0x1F2FF) /* enclosed ideographic */
           || (cp >= 0x2B05 && cp <= 0x2B07) || (cp >= 0x2B1B && cp <= 0x2B1C) || cp == 0x2B50 ||
           cp == 0x2B55 || (cp >= 0x231A && cp <= 0x231B) || (cp >= 0x23E9 && cp <= 0x23FA) ||
           cp == 0x2934 || cp == 0x2935 || cp == 0x3030 || cp == 0x303D || cp == 0x3297 || cp == 0x3299;
}

static int is_apostrophe(uint32_t cp) { return cp == '\'' || cp == 0x2019; }

/* A codepoint that can be part of a word: ASCII letters and digits, and
 * non-ASCII codepoints outside the punctuation, symbol and emoji blocks. */
static int is_word_cp(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    if (cp < 0xC0 || cp == 0xD7 || cp == 0xF7)
        return 0;
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x2E00 && cp <= 0x2E7F) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF0F) ||
        cp == 0xFFFD || (cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0xE0000 && cp <= 0xE007F))
        return 0;
    return 1;
}

/* ==================== word lists ==================== */

static const char *const first_person[] = {"i", "me", "my", "mine", "myself"};
static const char *const second_person[] = {"you", "your", "yours", "yourself", "yourselves"};
static const char *const apology_prefix[] = {"sorry", "apolog"};
static const char *const gratitude_prefix[] = {"thank", "grateful", "gratitude", "appreciat"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int in_list(const char *w, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(list[i]) == len && memcmp(list[i], w, len) == 0)
            return 1;
    }
    return 0;
}

static int has_prefix(const char *w, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(list[i]);
        if (l <= len && memcmp(list[i], w, l) == 0)
            return 1;
    }
    return 0;
}

/* Classifies one finished word: w is its lower-cased ASCII form (non-ASCII
 * codepoints and apostrophes written as '\''), len bytes. */
static void classify_word(const char *w, size_t len, empq_style_counts *c)
{
    size_t stem = len;
    const char *ap = memchr(w, '\'', len);
    if (ap != NULL)
        stem = (size_t)(ap - w);
    if (in_list(w, stem, first_person, N_OF(first_person)))
        c->first_person++;
    else if (in_list(w, stem, second_person, N_OF(second_person)))
        c->second_person++;
    if (has_prefix(w, len, apology_prefix, N_OF(apology_prefix)))
        c->apology++;
    if (has_prefix(w, len, gratitude_prefix, N_OF(gratitude_prefix)))
        c->gratitude++;
}

/* ==================== counting ==================== */

#define WORD_MAX 64

void empq_style_count(const char *text, empq_style_counts *out)
{
    memset(out, 0, sizeof *out);
    if (text == NULL)
        return;
    const unsigned char *s = (const unsigned char *)text;
    char w[WORD_MAX];
    size_t wlen = 0;          /* bytes kept of the current word (cut at WORD_MAX) */
    size_t wcp = 0;           /* codepoints of the current word */
    int in_word = 0;
    int seg_has_word = 0;     /* the current sentence segment holds a word */
    int in_term = 0;          /* inside a run of sentence terminators */
    int after_zwj = 0;        /* the previous codepoint was U+200D */
    int open_flag = 0;        /* one regional indicator seen, waiting for its pair */
    uint32_t prev = 0;

    size_t i = 0;
    for (;;) {
        size_t n;
        uint32_t cp = s[i] ? utf8_next(s + i, &n) : 0;
        if (cp == 0)
            n = 0;

        /* words: an apostrophe joins only when a word codepoint follows */
        int join_ap = 0;
        if (in_word && is_apostrophe(cp)) {
            size_t n2;
            uint32_t nx = s[i + n] ? utf8_next(s + i + n, &n2) : 0;
            join_ap = is_word_cp(nx);
        }
        if (cp != 0 && (is_word_cp(cp) || join_ap)) {
            if (!in_word) {
                in_word = 1;
                wlen = wcp = 0;
            }
            char ch = '\'';
            if (cp < 0x80 && !is_apostrophe(cp))
                ch = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            else if (!is_apostrophe(cp))
                ch = '#';
            if (wlen < WORD_MAX)
                w[wlen++] = ch;
            wcp++;
        } else if (in_word) {
            in_word = 0;
            out->words++;
            out->letters += wcp;
            seg_has_word = 1;
            classify_word(w, wlen, out);
        }
        if (cp == 0)
            break;

        /* sentences: a run of . ! ? U+2026 ends a segment; a '.' between
         * two digits (3.5) does not */
        int term = cp == '!' || cp == '?' || cp == 0x2026 || cp == 0x203C || cp == 0x2049;
        if (cp == '.') {
            int digit_before = prev >= '0' && prev <= '9';
            int digit_after = s[i + 1] >= '0' && s[i + 1] <= '9';
            term = !(digit_before && digit_after);
        }
        if (term) {
            if (!in_term && seg_has_word) {
                out->sentences++;
                seg_has_word = 0;
            }
            in_term = 1;
        } else {
            in_term = 0;
        }

        if (cp == '!')
            out->exclamations++;
        if (cp == '?')
            out->questions++;

        /* emojis: a ZWJ sequence counts once, a pair of regional indicators
         * (a flag) counts once */
        if (is_regional(cp)) {
            if (!open_flag && !after_zwj)
                out->emojis++;
            open_flag = !open_flag;
        } else {
            open_flag = 0;
            if (is_emoji(cp) && !after_zwj)
                out->emojis++;
        }
        if (cp != 0xFE0F && !(cp >= 0x1F3FB && cp <= 0x1F3FF))
            after_zwj = cp == 0x200D;

        prev = cp;
        i += n;
    }
    if (seg_has_word)
        out->sentences++;
}

void empq_style_features(const empq_style_counts *c, double *f)
{
    /* each rate is one correctly rounded division of exact integers, so
     * equal ratios (1/14, 2/28) give the same double and tie in the tests */
    double w = (double)c->words;
#define PER100(n) (w > 0 ? (double)(n) * 100.0 / w : 0.0)
    f[EMPQ_STYLE_WORDS] = w;
    f[EMPQ_STYLE_SENTENCES] = (double)c->sentences;
    f[EMPQ_STYLE_WORDS_PER_SENTENCE] = c->sentences > 0 ? w / (double)c->sentences : 0;
    f[EMPQ_STYLE_EXCLAMATIONS] = PER100(c->exclamations);
    f[EMPQ_STYLE_QUESTIONS] = PER100(c->questions);
    f[EMPQ_STYLE_EMOJIS] = PER100(c->emojis);
    f[EMPQ_STYLE_FIRST_PERSON] = PER100(c->first_person);
    f[EMPQ_STYLE_SECOND_PERSON] = PER100(c->second_person);
    f[EMPQ_STYLE_APOLOGY] = PER100(c->apology);
    f[EMPQ_STYLE_GRATITUDE] = PER100(c->gratitude);
    f[EMPQ_STYLE_WORD_LENGTH] = w > 0 ? (double)c->letters / w : 0;
    f[EMPQ_STYLE_HAS_QUESTION] = c->questions > 0 ? 1.0 : 0.0;
#undef PER100
}

static const char *const feature_names[EMPQ_STYLE_N_FEATURES] = {
    "words",
    "sentences",
    "words_per_sentence",
    "exclamations_per_100w",
    "questions_per_100w",
    "emojis_per_100w",
    "first_person_per_100w",
    "second_person_per_100w",
    "apology_per_100w",
    "gratitude_per_100w",
    "mean_word_length",
    "has_question",
};

static const char *const feature_titles[EMPQ_STYLE_N_FEATURES] = {
    "words per response",
    "sentences per response",
    "words per sentence",
    "exclamation marks / 100 words",
    "question marks / 100 words",
    "emojis / 100 words",
    "first-person pronouns / 100 words",
    "second-person pronouns / 100 words",
    "apology words / 100 words",
    "gratitude words / 100 words",
    "mean word length (characters)",
    "share of responses with a question",
};

const char *empq_style_feature_name(int i)
{
    return i >= 0 && i < EMPQ_STYLE_N_FEATURES ? feature_names[i] : NULL;
}

const char *empq_style_feature_title(int i)
{
    return i >= 0 && i < EMPQ_STYLE_N_FEATURES ? feature_titles[i] : NULL;
}
