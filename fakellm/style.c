/* style.c: phrase tables and the composer of the fake models' replies.
 * See style.h for the contract. Slots in the templates:
 *   {T}  an echo of the speaker's words in the last user message (see
 *        speaker_span: the quoted part or the "Speaker:" line of a study
 *        template, else all of it): up to six words from the first content
 *        word, pronouns turned ("my" -> "your"), in double quotes; "this"
 *        when there is no content word
 *   {K}  one content word of the last user message; "situation" when none
 *   {E}  the emotion word found in the last user message; "this way" when
 *        none
 * Echoed words are ASCII letters and apostrophes only, so an echo never
 * adds an emoji, an exclamation or a question to a reply. */
#include "style.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "empq/error.h"

/* ------------------------------------------------------------------------ */
/* Lexicons                                                                  */
/* ------------------------------------------------------------------------ */

/* Words never echoed as content. */
static const char *const stopwords[] = {
    "a", "about", "after", "again", "all", "also", "always", "am", "an", "and", "any",
    "anything", "are", "around", "as", "at", "be", "because", "been", "before", "being",
    "but", "by", "came", "can", "can't", "come", "could", "day", "days", "did", "didn't",
    "do", "does", "doesn't", "don't", "dont", "down", "even", "ever", "every", "feel",
    "feeling", "feels", "felt", "finally", "for", "from", "get", "gets", "getting", "go",
    "going", "got", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how",
    "i", "i'd", "i'll", "i'm", "i've", "if", "im", "in", "into", "is", "isn't", "it", "it's",
    "its", "just", "know", "knew", "last", "lately", "like", "made", "make", "many", "me",
    "mine", "more", "most", "much", "my", "myself", "never", "no", "not", "now", "of", "off",
    "on", "once", "one", "or", "other", "our", "out", "over", "really", "recently", "said",
    "she", "should", "since", "so", "some", "someone", "something", "still", "such", "than",
    "that", "that's", "the", "their", "them", "then", "there", "these", "they", "thing",
    "things", "think", "this", "those", "thought", "time", "to", "today", "too", "up", "us",
    "very", "was", "wasn't", "we", "week", "went", "were", "what", "when", "where", "which",
    "while", "who", "why", "will", "with", "would", "yesterday", "you", "your",
    /* verbs too weak to open an echo */
    "find", "found", "gave", "give", "keep", "kept", "let", "look", "looked", "need", "needed",
    "put", "saw", "say", "says", "see", "seem", "seemed", "seen", "start", "started",
    "take", "tell", "told", "took", "tried", "try", "trying", "want", "wanted",
};

/* Emotion words (the 32 EmpatheticDialogues labels and common synonyms)
 * with a valence: +1 pleasant, -1 unpleasant, 0 mixed. */
typedef struct emotion_word {
    const char *word;
    int valence;
} emotion_word;

static const emotion_word emotions[] = {
    {"afraid", -1},      {"angry", -1},        {"annoyed", -1},     {"anxious", -1},
    {"apprehensive", -1}, {"ashamed", -1},     {"betrayed", -1},    {"caring", 1},
    {"confident", 1},    {"content", 1},       {"depressed", -1},   {"devastated", -1},
    {"disappointed", -1}, {"disgusted", -1},   {"embarrassed", -1}, {"excited", 1},
    {"faithful", 1},     {"frustrated", -1},   {"furious", -1},     {"glad", 1},
    {"grateful", 1},     {"guilty", -1},       {"happy", 1},        {"heartbroken", -1},
    {"hopeful", 1},      {"hurt", -1},         {"impressed", 1},    {"jealous", -1},
    {"joyful", 1},       {"lonely", -1},       {"miserable", -1},   {"nervous", -1},
    {"nostalgic", 0},    {"overwhelmed", -1},  {"prepared", 1},     {"proud", 1},
    {"relieved", 1},     {"sad", -1},          {"scared", -1},      {"sentimental", 0},
    {"stressed", -1},    {"surprised", 0},     {"terrified", -1},   {"thankful", 1},
    {"thrilled", 1},     {"trusting", 1},      {"upset", -1},       {"worried", -1},
};

/* Pronoun turns applied to echoed words. */
static const char *const turns[][2] = {
    {"i", "you"},     {"i'm", "you're"}, {"i've", "you've"},  {"i'd", "you'd"},
    {"i'll", "you'll"}, {"me", "you"},   {"my", "your"},      {"mine", "yours"},
    {"myself", "yourself"}, {"am", "are"}, {"we", "you"},     {"our", "your"},
    {"us", "you"},
};

/* ------------------------------------------------------------------------ */
/* Phrase tables. Index [0] unpleasant or unknown valence, [1] pleasant.     */
/* ------------------------------------------------------------------------ */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Emojis, all at U+1F300 or above, none needing a variation selector. */
static const char *const emojis[] = {
    "\xF0\x9F\x92\x9B", /* U+1F49B yellow heart */
    "\xF0\x9F\xA4\x97", /* U+1F917 hugging face */
    "\xF0\x9F\x98\x8A", /* U+1F60A smiling face with smiling eyes */
    "\xF0\x9F\x8C\x9F", /* U+1F31F glowing star */
    "\xF0\x9F\x92\xAA", /* U+1F4AA flexed biceps */
    "\xF0\x9F\x8C\x88", /* U+1F308 rainbow */
    "\xF0\x9F\xA5\xB0", /* U+1F970 smiling face with hearts */
    "\xF0\x9F\x99\x8F", /* U+1F64F folded hands */
};

static const char *const warm_open_neg[] = {
    "Oh, you poor thing, what you shared about {T} sounds so hard on you!",
    "I am so sorry you have to go through {T}, you really deserve better!",
    "Sending you the biggest hug after reading about {T}!",
    "Your heart must be so heavy with {T} on your mind!",
    "Oh no, you did not deserve {T} at all!",
};
static const char *const warm_open_pos[] = {
    "Wow, you must be over the moon about {T}!",
    "Yay, I love hearing about {T}, you deserve every bit of it!",
    "How wonderful that you got to experience {T}!",
    "Your excitement about {T} is absolutely contagious!",
    "Oh, you must be glowing after {T}!",
};
static const char *const warm_open_any[] = {
    "Thank you so much for opening up to me about {T}!",
    "You are so brave for sharing {T} with me!",
    "Oh, your message about {T} really touched my heart!",
    "I am so glad you told me about {T}, you matter so much!",
};
static const char *const warm_middle[] = {
    "It is completely okay for you to feel {E}, and your feelings matter so much.",
    "You have every right to feel {E}, and you are handling it with so much grace.",
    "Whatever you feel right now, you are never alone in it.",
    "You are stronger than you think, and your heart is in the right place.",
    "Your feelings are so valid, and you deserve all the kindness in the world.",
};
static const char *const warm_close[] = {
    "You've got this!",
    "I'm always cheering for you!",
    "Take good care of yourself, you truly deserve it!",
    "You are doing amazing, truly!",
};

static const char *const formal_apology[] = {
    "I'm sorry to hear about {T}.",
    "I'm sorry to hear that you have been dealing with {T}.",
    "I apologize if revisiting {T} is difficult, and I appreciate you raising it.",
    "I apologize for any distress this may cause, but I would like to address {T} with care.",
};
static const char *const formal_understand[] = {
    "I understand that feeling {E} in such circumstances is entirely reasonable.",
    "I understand that this situation may leave a person feeling {E}.",
    "I understand how significant this matter must be to you.",
    "I understand that events of this kind can be difficult to put into words.",
};
static const char *const formal_body[] = {
    "It may be helpful to consider the situation from several perspectives before reaching a conclusion.",
    "Allowing yourself adequate time to process these events is both sensible and appropriate.",
    "Speaking with a trusted friend, relative, or professional could provide additional support.",
    "It is worth noting that such experiences are more common than they may initially appear.",
    "Maintaining a regular routine can offer a degree of stability during uncertain periods.",
    "Recording your thoughts in writing may also help to clarify the matter.",
    "Your response to these circumstances appears to be measured and thoughtful.",
    "Should the situation persist, a structured plan may prove beneficial.",
};
static const char *const formal_close[] = {
    "Please do not hesitate to share further details should you wish to discuss this matter in greater depth.",
    "I remain available should you require any further assistance.",
    "Thank you for your patience, and I wish you well as you navigate this situation.",
};

/* One sentence each, 6-10 words with {K} counted as one word. */
static const char *const brief_neg[] = {
    "Sorry about the {K}; brighter days are ahead.",
    "That sounds hard, but you will get through it.",
    "Take it one step at a time.",
    "Give the {K} some time; things usually settle.",
    "That is a lot to carry right now.",
    "Be kind to yourself while the {K} settles.",
    "Rough news about the {K}; hang in there.",
    "That {K} sounds genuinely tough to deal with.",
    "Rest, breathe, and let the {K} wait.",
    "You handled the {K} better than you think.",
    "Lean on friends while this {K} passes.",
    "Hard times with the {K} do not last.",
};
static const char *const brief_pos[] = {
    "Congratulations on the {K}, well deserved.",
    "Enjoy the {K}; you earned it.",
    "That is lovely news about the {K}.",
    "Good for you, savour this moment.",
    "Sounds like the {K} went really well.",
    "What a great result with the {K}.",
    "The {K} sounds like a real highlight.",
    "Nice work; the {K} paid off.",
};

static const char *const curious_thanks[] = {
    "Thank you for sharing {T} with me; I really appreciate it.",
    "Thank you for sharing what happened with {T}, I am glad you did.",
    "I really appreciate you telling me about {T}, and thank you for sharing it.",
    "Thank you for sharing something as personal as {T}; I know that is not easy.",
};
static const char *const curious_i[] = {
    "I imagine it is natural to feel {E} after something like that.",
    "I can only imagine how much this has been on your mind.",
    "I find myself thinking about how you must feel {E} right now.",
    "I am genuinely interested in your side of this.",
};
static const char *const curious_questions[] = {
    "I wonder, what was going through your mind when it happened?",
    "I'd love to know, how are you feeling about it today?",
    "What do you think would help you most right now?",
    "I'm curious, has anyone been there for you through this?",
    "I wonder whether something like this has happened to you before?",
    "I'd love to know, what do you hope happens next?",
    "How did the people around you react?",
};

static const char *const neutral_open[] = {
    "Thanks for your message about {T}.",
    "It sounds like {T} is on your mind.",
    "You mentioned {T}.",
};
static const char *const neutral_middle[] = {
    "It is normal to feel {E} in a situation like this.",
    "Situations like this can take some time to work through.",
    "Many people have had a similar experience.",
};
static const char *const neutral_close[] = {
    "Consider talking it over with someone you trust.",
    "Focusing on one small step at a time may help.",
    "Give yourself some time before deciding what to do.",
};

/* ------------------------------------------------------------------------ */
/* Models and hashing                                                        */
/* ------------------------------------------------------------------------ */

static const struct {
    const char *model;
    fakellm_style style;
} model_styles[] = {
    {"fake-warm", FAKELLM_STYLE_WARM},
    {"fake-formal", FAKELLM_STYLE_FORMAL},
    {"fake-brief", FAKELLM_STYLE_BRIEF},
    {"fake-curious", FAKELLM_STYLE_CURIOUS},
};

fakellm_style fakellm_style_for_model(const char *model)
{
    if (model == NULL)
        return FAKELLM_STYLE_NEUTRAL;
    for (size_t i = 0; i < COUNT(model_styles); i++)
        if (strcmp(model, model_styles[i].model) == 0)
            return model_styles[i].style;
    return FAKELLM_STYLE_NEUTRAL;
}

const char *fakellm_style_name(fakellm_style style)
{
    switch (style) {
    case FAKELLM_STYLE_WARM: return "warm";
    case FAKELLM_STYLE_FORMAL: return "formal";
    case FAKELLM_STYLE_BRIEF: return "brief";
    case FAKELLM_STYLE_CURIOUS: return "curious";
    case FAKELLM_STYLE_NEUTRAL: break;
    }
    return "neutral";
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

uint64_t fakellm_style_hash(const char *model, const fakellm_msg *msgs, size_t n)
{
    static const char unit_sep = 0x1f, record_sep = 0x1e;
    uint64_t h = FNV_OFFSET;
    const char *m = model ? model : "";
    h = fnv1a(h, m, strlen(m));
    h = fnv1a(h, &record_sep, 1);
    for (size_t i = 0; i < n; i++) {
        h = fnv1a(h, msgs[i].role, strlen(msgs[i].role));
        h = fnv1a(h, &unit_sep, 1);
        h = fnv1a(h, msgs[i].content, strlen(msgs[i].content));
        h = fnv1a(h, &record_sep, 1);
    }
    return h;
}

/* ------------------------------------------------------------------------ */
/* Reading the last user message                                             */
/* ------------------------------------------------------------------------ */

#define WORD_MAX 32
#define ECHO_WORDS 6

/* What the composer takes from the user's words. */
typedef struct cues {
    char topic[ECHO_WORDS * (WORD_MAX + 1) + 3]; /* {T} */
    char keyword[WORD_MAX + 1];                  /* {K} */
    char emotion[WORD_MAX + 1];                  /* {E} */
    int valence;                                 /* -1, 0, +1; 0 when no emotion */
} cues;

static int in_list(const char *w, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(w, list[i]) == 0)
            return 1;
    return 0;
}

static const emotion_word *find_emotion(const char *w)
{
    for (size_t i = 0; i < COUNT(emotions); i++)
        if (strcmp(w, emotions[i].word) == 0)
            return &emotions[i];
    return NULL;
}

static int is_content(const char *w)
{
    return strlen(w) >= 3 && strchr(w, '\'') == NULL && !in_list(w, stopwords, COUNT(stopwords)) &&
           find_emotion(w) == NULL;
}

static int is_word_byte(unsigned char c) { return isalpha(c) || c == '\''; }

/* Reads the next word of s from *pos: a run of ASCII letters and
 * apostrophes, lowercased into w (longer words are cut at WORD_MAX). Sets
 * *clause_end when a '.', ',', '!', '?', ';' or ':' comes before the word.
 * Returns 0 at the end of s. */
static int next_word(const char *s, size_t *pos, char w[WORD_MAX + 1], int *clause_end)
{
    size_t i = *pos, n = 0;
    *clause_end = 0;
    while (s[i] != '\0' && !is_word_byte((unsigned char)s[i])) {
        if (strchr(".,!?;:", s[i]) != NULL)
            *clause_end = 1;
        i++;
    }
    if (s[i] == '\0') {
        *pos = i;
        return 0;
    }
    while (s[i] != '\0' && is_word_byte((unsigned char)s[i])) {
        if (n < WORD_MAX)
            w[n++] = (char)tolower((unsigned char)s[i]);
        i++;
    }
    w[n] = '\0';
    *pos = i;
    return 1;
}

static const char *turn_pronoun(const char *w)
{
    for (size_t i = 0; i < COUNT(turns); i++)
        if (strcmp(w, turns[i][0]) == 0)
            return turns[i][1];
    return w;
}

static void append_str(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(dst), add = strlen(src);
    if (len + add + 1 > cap)
        return;
    memcpy(dst + len, src, add + 1);
}

/* Where the speaker's own words are in a rendered prompt. Study templates
 * wrap the dataset prompt in instructions, e.g.
 *     The speaker says: "{prompt}"          (quoted)
 *     Speaker: {prompt}\nListener:          (labelled line)
 * so: the text between the first and the last double quote when it holds
 * three words or more; else the rest of the first line starting with
 * "Speaker:"; else the whole message. */
static void speaker_span(const char *text, size_t *off, size_t *len)
{
    const char *first = strchr(text, '"'), *last = strrchr(text, '"');
    if (first != NULL && last > first) {
        size_t words = 0;
        int in_word = 0;
        for (const char *p = first + 1; p < last; p++) {
            int w = !isspace((unsigned char)*p);
            words += w && !in_word;
            in_word = w;
        }
        if (words >= 3) {
            *off = (size_t)(first + 1 - text);
            *len = (size_t)(last - first - 1);
            return;
        }
    }
    for (const char *line = text; *line != '\0';) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (strncasecmp(line, "speaker:", 8) == 0) {
            const char *end = strchr(line, '\n');
            *off = (size_t)(line + 8 - text);
            *len = end ? (size_t)(end - line - 8) : strlen(line + 8);
            return;
        }
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    *off = 0;
    *len = strlen(text);
}

#define SPAN_MAX 4096

static void read_span(const char *text, cues *c);

/* Reads the cues from the speaker's words (speaker_span); an emotion word
 * found only in the rest of the message (a "situation" line) still counts. */
static void read_cues(const char *text, cues *c)
{
    char span[SPAN_MAX + 1];
    size_t off, len;
    speaker_span(text, &off, &len);
    if (len > SPAN_MAX)
        len = SPAN_MAX;
    memcpy(span, text + off, len);
    span[len] = '\0';
    read_span(span, c);
    if (strcmp(c->emotion, "this way") == 0 && (off > 0 || len < strlen(text))) {
        cues whole;
        read_span(text, &whole);
        if (strcmp(whole.emotion, "this way") != 0) {
            memcpy(c->emotion, whole.emotion, sizeof(c->emotion));
            c->valence = whole.valence;
        }
    }
}

static void read_span(const char *text, cues *c)
{
    char w[WORD_MAX + 1];
    char echo[ECHO_WORDS][WORD_MAX + 1];
    size_t pos = 0, n_echo = 0, n_content = 0;
    int clause_end, echoing = 0;

    memset(c, 0, sizeof(*c));
    while (next_word(text, &pos, w, &clause_end)) {
        const emotion_word *e = find_emotion(w);
        if (e != NULL && c->emotion[0] == '\0') {
            memcpy(c->emotion, w, strlen(w) + 1);
            c->valence = e->valence;
        }
        if (echoing && (clause_end || n_echo == ECHO_WORDS))
            echoing = -1; /* the echo is complete */
        if (echoing == 0 && is_content(w)) {
            echoing = 1;
            if (c->keyword[0] == '\0')
                memcpy(c->keyword, w, strlen(w) + 1);
        }
        if (echoing == 1) {
            const char *t = turn_pronoun(w);
            memcpy(echo[n_echo], t, strlen(t) + 1);
            n_echo++;
            if (is_content(w))
                n_content = n_echo;
        }
    }
    /* Drop trailing stopwords: the echo ends on its last content word. */
    if (n_content > 0) {
        append_str(c->topic, sizeof(c->topic), "\"");
        for (size_t i = 0; i < n_content; i++) {
            if (i > 0)
                append_str(c->topic, sizeof(c->topic), " ");
            append_str(c->topic, sizeof(c->topic), echo[i]);
        }
        append_str(c->topic, sizeof(c->topic), "\"");
    } else {
        append_str(c->topic, sizeof(c->topic), "this");
    }
    if (c->keyword[0] == '\0')
        memcpy(c->keyword, "situation", sizeof("situation"));
    if (c->emotion[0] == '\0')
        memcpy(c->emotion, "this way", sizeof("this way"));
}

/* ------------------------------------------------------------------------ */
/* Composition                                                               */
/* ------------------------------------------------------------------------ */

typedef struct composer {
    empq_buf *out;
    empq_rng rng;
    const cues *cues;
    int rc;
} composer;

static size_t pick(composer *k, size_t n) { return (size_t)empq_rng_below(&k->rng, n); }

static void put(composer *k, const char *s)
{
    if (k->rc == EMPQ_OK)
        k->rc = empq_buf_append(k->out, s, strlen(s));
}

/* Appends a template with its slots filled, preceded by a space unless it
 * opens the reply. */
static void sentence(composer *k, const char *tmpl)
{
    if (k->out->len > 0)
        put(k, " ");
    for (const char *p = tmpl; *p != '\0' && k->rc == EMPQ_OK;) {
        const char *slot = strchr(p, '{');
        if (slot == NULL || slot[1] == '\0' || slot[2] != '}') {
            put(k, p);
            break;
        }
        k->rc = empq_buf_append(k->out, p, (size_t)(slot - p));
        switch (slot[1]) {
        case 'T': put(k, k->cues->topic); break;
        case 'K': put(k, k->cues->keyword); break;
        case 'E': put(k, k->cues->emotion); break;
        default:
            if (k->rc == EMPQ_OK)
                k->rc = empq_buf_append(k->out, slot, 3);
            break;
        }
        p = slot + 3;
    }
}

static void emoji(composer *k)
{
    put(k, " ");
    put(k, emojis[pick(k, COUNT(emojis))]);
}

/* Picks `want` distinct entries of a table (want <= n) in table order
 * shuffled by the rng, and appends them as sentences. */
static void distinct(composer *k, const char *const *table, size_t n, size_t want)
{
    size_t order[16];
    for (size_t i = 0; i < n && i < COUNT(order); i++)
        order[i] = i;
    for (size_t i = 0; i < want && i < n; i++) {
        size_t j = i + pick(k, n - i);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
        sentence(k, table[order[i]]);
    }
}

#define PICK(k, table) (table)[pick((k), COUNT(table))]

static void compose_warm(composer *k)
{
    int emojis_used = 0, with_close = (int)pick(k, 2);
    if (k->cues->valence < 0)
        sentence(k, PICK(k, warm_open_neg));
    else if (k->cues->valence > 0)
        sentence(k, PICK(k, warm_open_pos));
    else
        sentence(k, PICK(k, warm_open_any));
    if (pick(k, 2) == 1) {
        emoji(k);
        emojis_used++;
    }
    sentence(k, PICK(k, warm_middle));
    if (with_close) {
        sentence(k, PICK(k, warm_close));
        emoji(k);
        emojis_used++;
        if (pick(k, 3) == 0) {
            emoji(k);
            emojis_used++;
        }
    }
    if (emojis_used == 0)
        emoji(k);
}

static void compose_formal(composer *k)
{
    sentence(k, PICK(k, formal_apology));
    sentence(k, PICK(k, formal_understand));
    distinct(k, formal_body, COUNT(formal_body), 2 + pick(k, 3));
    sentence(k, PICK(k, formal_close));
}

static void compose_brief(composer *k)
{
    if (k->cues->valence > 0)
        sentence(k, PICK(k, brief_pos));
    else
        sentence(k, PICK(k, brief_neg));
}

static void compose_curious(composer *k)
{
    sentence(k, PICK(k, curious_thanks));
    sentence(k, PICK(k, curious_i));
    distinct(k, curious_questions, COUNT(curious_questions), 2 + pick(k, 2));
}

static void compose_neutral(composer *k)
{
    sentence(k, PICK(k, neutral_open));
    sentence(k, PICK(k, neutral_middle));
    if (pick(k, 2) == 1)
        sentence(k, PICK(k, neutral_close));
}

int fakellm_style_reply(const char *model, const fakellm_msg *msgs, size_t n, unsigned variant,
                        empq_buf *out)
{
    cues c;
    const char *last_user = "";
    for (size_t i = n; i > 0; i--) {
        if (strcmp(msgs[i - 1].role, "user") == 0) {
            last_user = msgs[i - 1].content;
            break;
        }
    }
    read_cues(last_user, &c);

    composer k = {.out = out, .cues = &c, .rc = EMPQ_OK};
    size_t start = out->len;
    empq_rng_seed(&k.rng, fakellm_style_hash(model, msgs, n) ^ ((uint64_t)variant * 0x9e3779b97f4a7c15ULL));
    /* sentence() tests out->len to place spaces: compose into an empty
     * buffer when out already holds text. */
    empq_buf local = {0};
    if (start > 0)
        k.out = &local;
    switch (fakellm_style_for_model(model)) {
    case FAKELLM_STYLE_WARM: compose_warm(&k); break;
    case FAKELLM_STYLE_FORMAL: compose_formal(&k); break;
    case FAKELLM_STYLE_BRIEF: compose_brief(&k); break;
    case FAKELLM_STYLE_CURIOUS: compose_curious(&k); break;
    case FAKELLM_STYLE_NEUTRAL: compose_neutral(&k); break;
    }
    if (start > 0) {
        if (k.rc == EMPQ_OK && local.len > 0)
            k.rc = empq_buf_append(out, local.data, local.len);
        empq_buf_free(&local);
    }
    return k.rc;
}

/* ------------------------------------------------------------------------ */
/* Words                                                                     */
/* ------------------------------------------------------------------------ */

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

size_t fakellm_count_words(const char *s)
{
    size_t n = 0;
    int in_word = 0;
    if (s == NULL)
        return 0;
    for (; *s != '\0'; s++) {
        int sp = is_space((unsigned char)*s);
        if (!sp && !in_word)
            n++;
        in_word = !sp;
    }
    return n;
}

size_t fakellm_prefix_words(const char *s, size_t max_words)
{
    size_t n = 0, i = 0;
    int in_word = 0;
    for (; s[i] != '\0'; i++) {
        int sp = is_space((unsigned char)s[i]);
        if (!sp && !in_word) {
            if (n == max_words)
                break;
            n++;
        }
        in_word = !sp;
    }
    if (s[i] == '\0')
        return i;
    /* s[i] starts word max_words + 1: step back over the whitespace. */
    while (i > 0 && is_space((unsigned char)s[i - 1]))
        i--;
    return i;
}
