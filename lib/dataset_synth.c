/* dataset_synth.c: synthetic dialogues for demos, tests and benchmarks.
 *
 * Each dialogue is assembled from phrase tables: a per-emotion event (what
 * happened, first person, with {p} standing for a person) and feeling, a
 * time, a person, an opener for the speaker's turn, and a listener reaction
 * (by sentiment) plus a follow-up question. Every choice comes from one
 * empq_rng seeded with the caller's seed, in a fixed order, so a (n, seed)
 * pair always gives the same texts. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_int.h"
#include "empq/util.h"

/* Per-emotion phrases, in the order of empq_emotion_name(). */
/* The tone of an emotion: its sentiment and the listener's reaction. */
enum { NEG = 0, POS = 1, SOFT = 2 /* negative sentiment, a gentle reaction */ };

typedef struct synth_emotion {
    int tone;              /* NEG, POS or SOFT */
    const char *events[3]; /* after "I ", no final period */
    const char *feels[2];  /* whole sentences */
} synth_emotion;

static const synth_emotion table[EMPQ_N_EMOTIONS] = {
    /* afraid */
    {NEG,
     {"heard someone trying the back door while {p} was away",
      "got lost on a hiking trail as it was getting dark",
      "had to drive home through a terrible storm"},
     {"My heart was pounding the whole time.", "I was too scared to even move."}},
    /* angry */
    {NEG,
     {"found out {p} had been lying to me for months", "got blamed at work for a mistake I did not make",
      "saw someone kick a dog in the park"},
     {"I was so mad I could barely speak.", "I am still fuming about it."}},
    /* annoyed */
    {NEG,
     {"had to listen to {p} chew with their mouth open through the whole dinner",
      "waited an hour on hold just to be hung up on",
      "found the dishes piled up in the sink again"},
     {"It drives me up the wall.", "Why is it always like this?"}},
    /* anticipating */
    {POS,
     {"booked a trip to see {p} next month", "sent in my application for my dream job",
      "started counting down the days to the concert"},
     {"I can hardly wait.", "I keep checking the calendar."}},
    /* anxious */
    {NEG,
     {"was told I have to give a big presentation to the whole company",
      "got a call asking me to come back in for more medical tests",
      "noticed {p} had not answered my calls all day"},
     {"I can't stop thinking about it.", "I have barely slept."}},
    /* apprehensive */
    {NEG,
     {"agreed to move across the country for a new job", "found out I have to meet {p}'s parents soon",
      "signed up for surgery on my knee"},
     {"I am not sure it was the right call.", "I keep second guessing myself."}},
    /* ashamed */
    {NEG,
     {"yelled at {p} over something really small", "forgot my own anniversary",
      "got caught copying {p}'s homework"},
     {"I still can't look at myself about it.", "I wish I could take it back."}},
    /* caring */
    {POS,
     {"spent the weekend looking after {p} while they had the flu",
      "made soup for my neighbor who just had surgery", "drove {p} to all of their appointments"},
     {"It felt good to be there for them.", "I would do it again in a heartbeat."}},
    /* confident */
    {POS,
     {"finished preparing for my driving test", "trained for months for the marathon",
      "practiced my pitch with {p} a dozen times"},
     {"I know I am going to do great.", "I feel like nothing can stop me."}},
    /* content */
    {POS,
     {"spent a quiet evening reading on the porch", "finally paid off my car",
      "had a lazy Sunday with {p} and nowhere to be"},
     {"Life feels pretty good right now.", "I would not change a thing."}},
    /* devastated */
    {NEG,
     {"lost my grandfather after a long illness", "found out {p} is moving overseas for good",
      "had to put my dog down"},
     {"I don't know how to get past it.", "It feels like my world fell apart."}},
    /* disappointed */
    {NEG,
     {"did not get the promotion I worked so hard for", "had {p} cancel our plans at the last minute",
      "watched my team lose the final in overtime"},
     {"I really thought this time would be different.", "I expected so much more."}},
    /* disgusted */
    {NEG,
     {"found a hair baked into my sandwich", "watched {p} leave trash all over the beach",
      "opened the fridge at work and found something growing"},
     {"It made my stomach turn.", "I almost threw up."}},
    /* embarrassed */
    {NEG,
     {"tripped and fell in front of the whole office", "called my teacher mom in front of the class",
      "waved back at someone who was waving at {p}"},
     {"My face turned bright red.", "I wanted the floor to swallow me."}},
    /* excited */
    {POS,
     {"got tickets to see my favorite band", "found out {p} is coming to visit",
      "found out I start my new job on Monday"},
     {"I can't sit still.", "I have been smiling all day."}},
    /* faithful */
    {POS,
     {"stayed by {p}'s side through the worst year of their life",
      "kept my promise to visit my grandmother every Sunday",
      "turned down a better offer to stay with my old team"},
     {"Loyalty means a lot to me.", "I would never let them down."}},
    /* furious */
    {NEG,
     {"came out to find someone had keyed my car", "learned {p} read my private messages",
      "got charged twice and the bank refused to fix it"},
     {"I have never been so angry.", "I was shaking with rage."}},
    /* grateful */
    {POS,
     {"had {p} help me move without even being asked", "got a surprise check from my aunt when money was tight",
      "had a stranger return my lost wallet"},
     {"I am so thankful.", "I don't know how to repay them."}},
    /* guilty */
    {NEG,
     {"ate the last piece of cake that {p} was saving", "skipped my friend's birthday party to stay home",
      "lied to my parents about where I was"},
     {"I feel terrible about it.", "It keeps eating at me."}},
    /* hopeful */
    {POS,
     {"had a second interview for a job I really want", "started a new treatment that might finally work",
      "made up with {p} after a long fight"},
     {"I think things are finally turning around.", "Fingers crossed."}},
    /* impressed */
    {POS,
     {"watched {p} finish their first marathon", "saw a street artist paint a portrait in ten minutes",
      "heard my little cousin play a whole piano concerto"},
     {"I was blown away.", "I could never do that."}},
    /* jealous */
    {NEG,
     {"saw {p} get the car I have always wanted", "watched my coworker get praised for my idea",
      "found out my best friend has a new best friend"},
     {"I know it's petty, but I can't help it.", "Why not me?"}},
    /* joyful */
    {POS,
     {"held my newborn niece for the first time", "danced all night at {p}'s wedding",
      "got the news that I passed all my exams"},
     {"I have never been happier.", "My heart is so full."}},
    /* lonely */
    {NEG,
     {"spent another weekend alone in my apartment", "moved to a new city where I don't know anyone",
      "had {p} forget to call on my birthday"},
     {"It gets really quiet around here.", "I miss having someone to talk to."}},
    /* nostalgic */
    {SOFT,
     {"found an old box of photos from high school", "drove past the house where I grew up",
      "heard the song {p} and I used to sing as kids"},
     {"It brought back so many memories.", "I miss those days."}},
    /* prepared */
    {POS,
     {"packed everything for the camping trip a week early", "studied every night for my final exam",
      "saved up an emergency fund after {p} lost their job"},
     {"I feel ready for anything.", "Nothing is going to catch me off guard."}},
    /* proud */
    {POS,
     {"watched {p} graduate from college", "finished building a bookshelf all by myself",
      "got promoted to manager"},
     {"All the hard work paid off.", "I could not stop smiling."}},
    /* sad */
    {NEG,
     {"had to say goodbye to {p} at the airport", "found out my favorite bakery closed for good",
      "watched my old dog struggle to climb the stairs"},
     {"I just feel down.", "I cried the whole way home."}},
    /* sentimental */
    {SOFT,
     {"found the letters {p} wrote me years ago", "rewatched my parents' wedding video",
      "came across my grandmother's old recipe cards"},
     {"It made me tear up.", "Some things you just hold on to."}},
    /* surprised */
    {POS,
     {"walked into a surprise party {p} threw for me", "ran into my childhood friend in another country",
      "won a raffle I had forgotten I entered"},
     {"I did not see that coming at all.", "I was speechless."}},
    /* terrified */
    {NEG,
     {"felt the whole house shake during an earthquake", "saw a bear right outside our tent",
      "had {p} rushed to the emergency room"},
     {"I have never been so scared.", "I was frozen in place."}},
    /* trusting */
    {POS,
     {"gave {p} the keys to my house while I was away", "let my teenager take the car for the weekend",
      "told {p} a secret I had never told anyone"},
     {"I know they won't let me down.", "They have never given me a reason to doubt them."}},
};

/* A person as the speaker says it, and as the listener says it back. */
static const char *const people[][2] = {
    {"my sister", "your sister"},   {"my best friend", "your best friend"}, {"my neighbor", "your neighbor"},
    {"my boss", "your boss"},       {"my husband", "your husband"},         {"my wife", "your wife"},
    {"my roommate", "your roommate"}, {"my dad", "your dad"},               {"my mom", "your mom"},
    {"a coworker", "your coworker"}, {"my brother", "your brother"},       {"my grandmother", "your grandmother"}};
static const char *const times[] = {"last week",       "yesterday",        "a few days ago", "last night",
                                    "this morning",    "over the weekend", "a couple of months ago",
                                    "the other day"};
static const char *const openers_pos[] = {"", "Guess what! ", "I have some news. ", "So, ",
                                          "You won't believe this, but ", "Honestly, "};
static const char *const openers_neg[] = {"", "Ugh. ", "I need to get this off my chest. ", "So, ",
                                          "Can I tell you something? ", "Honestly, "};
static const char *const openers_soft[] = {"", "You know what? ", "Funny thing. ", "So, ",
                                           "Can I tell you something? ", "Honestly, "};
static const char *const reactions_pos[] = {"That's wonderful!", "Oh wow, good for you.",
                                            "That sounds amazing.", "I'm so happy for you!",
                                            "That's great to hear.", "How exciting!"};
static const char *const reactions_neg[] = {"Oh no, I'm so sorry to hear that.", "That sounds really hard.",
                                            "I'm sorry, that must have been awful.", "Oh man, that's rough.",
                                            "I can only imagine how that felt.", "That's terrible."};
static const char *const reactions_soft[] = {"That sounds really touching.", "Aw, that's bittersweet.",
                                             "Memories like that stay with you.", "I can see why that moved you.",
                                             "That must have brought a lot back.", "That's really sweet."};
static const char *const questions[] = {"How are you feeling about it now?", "What happened next?",
                                        "Did you talk to anyone about it?", "Has that happened before?",
                                        "What are you going to do now?", "How did {p} take it?",
                                        "Do you want to talk about it?", "Was {p} there with you?"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define PICK(rng, a) ((a)[empq_rng_below((rng), COUNT(a))])

/* Appends tmpl with every "{p}" replaced by person. */
static int put(empq_buf *b, const char *tmpl, const char *person)
{
    const char *s = tmpl;
    const char *hit;
    while ((hit = strstr(s, "{p}")) != NULL) {
        if (empq_buf_append(b, s, (size_t)(hit - s)) != EMPQ_OK ||
            empq_buf_append(b, person, strlen(person)) != EMPQ_OK)
            return EMPQ_ENOMEM;
        s = hit + 3;
    }
    return empq_buf_append(b, s, strlen(s));
}

/* A copy of b's text (b is reset), or NULL when out of memory. */
static char *take(empq_buf *b)
{
    char *s = empq_dataset__strndup(b->data ? b->data : "", b->len);
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
    return s;
}

/* Fills d with dialogue i (0-based) of emotion e. */
static int synth_one(size_t i, int e, empq_rng *rng, empq_buf *b, empq_dialogue *d)
{
    const synth_emotion *t = &table[e];
    const char *event = t->events[empq_rng_below(rng, 3)];
    const char *feel = t->feels[empq_rng_below(rng, 2)];
    size_t who = (size_t)empq_rng_below(rng, COUNT(people));
    const char *when = PICK(rng, times);
    const char *opener = t->tone == POS    ? PICK(rng, openers_pos)
                         : t->tone == SOFT ? PICK(rng, openers_soft)
                                           : PICK(rng, openers_neg);
    const char *reaction = t->tone == POS    ? PICK(rng, reactions_pos)
                           : t->tone == SOFT ? PICK(rng, reactions_soft)
                                             : PICK(rng, reactions_neg);
    const char *question = PICK(rng, questions);
    int with_feel = (int)empq_rng_below(rng, 2);
    char id[32];
    snprintf(id, sizeof id, "synth-%05zu", i + 1);

    /* situation: "Last week, I <event>. [<feel>]" */
    char head = (char)toupper((unsigned char)when[0]);
    int rc = empq_buf_append(b, &head, 1);
    rc = rc ? rc : empq_buf_append(b, when + 1, strlen(when + 1));
    rc = rc ? rc : empq_buf_append(b, ", I ", 4);
    rc = rc ? rc : put(b, event, people[who][0]);
    rc = rc ? rc : empq_buf_append(b, ".", 1);
    if (with_feel) {
        rc = rc ? rc : empq_buf_append(b, " ", 1);
        rc = rc ? rc : empq_buf_append(b, feel, strlen(feel));
    }
    if (rc != EMPQ_OK)
        return rc;
    d->situation = take(b);

    /* prompt: "<opener>I <event> <time>. <feel>" */
    rc = empq_buf_append(b, opener, strlen(opener));
    rc = rc ? rc : empq_buf_append(b, "I ", 2);
    rc = rc ? rc : put(b, event, people[who][0]);
    rc = rc ? rc : empq_buf_append(b, " ", 1);
    rc = rc ? rc : empq_buf_append(b, when, strlen(when));
    rc = rc ? rc : empq_buf_append(b, ". ", 2);
    rc = rc ? rc : empq_buf_append(b, feel, strlen(feel));
    if (rc != EMPQ_OK)
        return rc;
    d->prompt = take(b);

    /* human: "<reaction> <question>" */
    rc = empq_buf_append(b, reaction, strlen(reaction));
    rc = rc ? rc : empq_buf_append(b, " ", 1);
    rc = rc ? rc : put(b, question, people[who][1]);
    if (rc != EMPQ_OK)
        return rc;
    d->human = take(b);

    d->id = empq_strdup(id);
    d->emotion = empq_strdup(empq_emotion_name(e));
    d->sentiment = empq_strdup(t->tone == POS ? "positive" : "negative");
    d->line = 0;
    if (d->id == NULL || d->emotion == NULL || d->sentiment == NULL || d->situation == NULL ||
        d->prompt == NULL || d->human == NULL)
        return EMPQ_ENOMEM;
    return EMPQ_OK;
}

/* FNV-1a of the dialogue's situation and prompt; never 0 (0 marks a free slot). */
static uint64_t synth_hash(const empq_dialogue *d)
{
    uint64_t h = 14695981039346656037ull;
    for (const char *p = d->situation; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
    for (const char *p = d->prompt; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h != 0 ? h : 1;
}

/* Adds d to the open-addressing set; returns 1 when it was new, 0 when the
 * same (situation, prompt) was drawn before. */
static int synth_remember(uint64_t *seen, size_t slots, const empq_dialogue *d)
{
    uint64_t h = synth_hash(d);
    for (size_t i = (size_t)(h & (slots - 1));; i = (i + 1) & (slots - 1)) {
        if (seen[i] == h)
            return 0;
        if (seen[i] == 0) {
            seen[i] = h;
            return 1;
        }
    }
}

int empq_dataset_synth(size_t n, uint64_t seed, empq_dataset **out, empq_error *err)
{
    if (out == NULL)
        return empq_error_set(err, EMPQ_EINVAL, "empq_dataset_synth: NULL argument");
    *out = NULL;
    empq_dataset *ds = calloc(1, sizeof *ds);
    if (ds == NULL)
        return empq_error_set(err, EMPQ_ENOMEM, "synthetic dataset: out of memory");
    size_t cap = n;
    ds->items = calloc(n > 0 ? n : 1, sizeof *ds->items);
    if (ds->items == NULL) {
        free(ds);
        return empq_error_set(err, EMPQ_ENOMEM, "synthetic dataset: out of memory");
    }

    empq_rng rng;
    empq_rng_seed(&rng, seed);
    /* Round robin over the emotions in a seeded order. */
    int order[EMPQ_N_EMOTIONS];
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        order[e] = e;
    for (int e = EMPQ_N_EMOTIONS - 1; e > 0; e--) {
        int j = (int)empq_rng_below(&rng, (uint64_t)e + 1);
        int t = order[e];
        order[e] = order[j];
        order[j] = t;
    }

    /* A set of the (situation, prompt) pairs drawn so far, so that no two
     * dialogues are the same request (which would be one cache entry). The
     * phrase tables allow about 6,900 distinct dialogues per emotion; past
     * that repeats are accepted rather than drawn for ever. */
    size_t slots = 64;
    while (slots < 2 * n)
        slots *= 2;
    uint64_t *seen = calloc(slots, sizeof *seen);
    empq_buf b = {0};
    int rc = seen != NULL ? EMPQ_OK : EMPQ_ENOMEM;
    for (size_t i = 0; i < n && rc == EMPQ_OK; i++) {
        empq_dialogue d = {0};
        for (int attempt = 0; attempt < 64; attempt++) {
            empq_dataset__dialogue_clear(&d);
            memset(&d, 0, sizeof d);
            rc = synth_one(i, order[i % EMPQ_N_EMOTIONS], &rng, &b, &d);
            if (rc != EMPQ_OK || synth_remember(seen, slots, &d))
                break;
        }
        if (rc == EMPQ_OK)
            rc = empq_dataset__push(ds, &cap, &d); /* never grows: cap == n */
        empq_dataset__dialogue_clear(&d);
    }
    free(seen);
    empq_buf_free(&b);
    if (rc != EMPQ_OK) {
        empq_dataset_free(&ds);
        return empq_error_set(err, EMPQ_ENOMEM, "synthetic dataset: out of memory");
    }
    *out = ds;
    return EMPQ_OK;
}
