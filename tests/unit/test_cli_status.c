/* test_cli_status.c: the screen of `empq status --watch` (cli/cmd_status.c)
 * for a run of 5 sources and 32 emotions at several terminal sizes: the
 * headline first, nothing wider or taller than the terminal, the slowest
 * emotions, the line under a source for its stop reason, unusable
 * reason and dead jobs by reason, and a batch source's cost said to be at
 * the batch price. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"

static const char *const emotions[32] = {
    "afraid",    "angry",       "annoyed",   "anticipating", "anxious",    "apprehensive", "ashamed",  "caring",
    "confident", "content",     "devastated", "disappointed", "disgusted", "embarrassed",  "excited",  "faithful",
    "furious",   "grateful",    "guilty",    "hopeful",      "impressed",  "jealous",      "joyful",   "lonely",
    "nostalgic", "prepared",    "proud",     "sad",          "sentimental", "surprised",   "terrified", "trusting"};

/* Renders into a string (caller frees). The buffer pointer lives on the
 * heap: with a local one, gcc 12 -O2 takes every pointer into the returned
 * text for a dangling pointer to that local (-Wdangling-pointer, a false
 * positive of open_memstream's out-parameter). */
static char *render(const Empq__RunStatus *r, int w, int h, int all)
{
    struct mem {
        char *buf;
        size_t len;
    } *m = calloc(1, sizeof *m);
    CHECK(m != NULL);
    FILE *f = open_memstream(&m->buf, &m->len);
    CHECK(f != NULL);
    cli__status_screen(f, r, 52.5, 95, w, h, all);
    fclose(f);
    char *out = m->buf;
    free(m);
    return out;
}

/* Columns of a line: UTF-8 continuation bytes take none. */
static int cols(const char *s, size_t n)
{
    int c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Checks the fit; returns the number of lines. */
static int check_fit(const char *text, int w, int h, const char *run)
{
    int n = 0;
    const char *p = text;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        CHECK(nl != NULL); /* every line ends */
        if (n == 0) {
            char head[128];
            snprintf(head, sizeof head, "run %s  ", run);
            CHECK(strncmp(p, head, strlen(head) < (size_t)w ? strlen(head) : (size_t)w) == 0);
        }
        if (cols(p, (size_t)(nl - p)) > w) {
            fprintf(stderr, "line wider than %d: %.*s\n", w, (int)(nl - p), p);
            CHECK(0);
        }
        n++;
        p = nl + 1;
    }
    CHECK(n >= 1 && n <= h);
    return n;
}

static void test_screen(void)
{
    Empq__RunStatus r = EMPQ__RUN_STATUS__INIT;
    r.run_id = "r-20261206-211221-346f";
    r.has_state = 1;
    r.state = EMPQ__RUN_STATE__RUN_ACTIVE;
    r.total = 10000;
    r.done = 5120;
    r.pending = 4752;
    r.leased = 128;

    Empq__ModelCounts m[5], *mp[5];
    Empq__ReasonCount rc1 = EMPQ__REASON_COUNT__INIT, rc2 = EMPQ__REASON_COUNT__INIT, *rcs[2] = {&rc1, &rc2};
    rc1.reason = "http_400";
    rc1.has_count = 1;
    rc1.count = 12;
    rc2.reason = "timeout";
    rc2.has_count = 1;
    rc2.count = 3;
    static const char *const alias[5] = {"human", "fake-warm", "fake-formal", "fake-brief",
                                         "a-model-with-a-rather-long-alias-name"};
    for (int i = 0; i < 5; i++) {
        empq__model_counts__init(&m[i]);
        m[i].alias = (char *)alias[i];
        m[i].done = 1000 + (uint32_t)i;
        m[i].pending = 900;
        mp[i] = &m[i];
    }
    m[1].stop_reason = "max_cost";
    m[1].has_stopped = 1;
    m[1].stopped = 1;
    m[2].unusable_reason = "key variable OPENAI_API_KEY unset on every worker \xe2\x80\x94 set it and restart";
    m[3].n_dead_reasons = 2;
    m[3].dead_reasons = rcs;
    m[3].mode = "batch"; /* a batch source's cost is at the batch price, and the screen says so */
    m[3].has_cost = 1;
    m[3].cost = 1.25;
    r.n_models = 5;
    r.models = mp;

    Empq__EmotionCounts e[32], *ep[32];
    for (int i = 0; i < 32; i++) {
        empq__emotion_counts__init(&e[i]);
        e[i].emotion = (char *)emotions[i];
        e[i].done = (uint32_t)(i == 7 ? 1 : 10 + i); /* caring is the slowest */
        e[i].pending = 50;
        ep[i] = &e[i];
    }
    r.n_emotions = 32;
    r.emotions = ep;

    static const int sizes[][2] = {{120, 40}, {80, 24}, {60, 12}, {30, 5}, {20, 1}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        char *t = render(&r, w, h, 0);
        check_fit(t, w, h, r.run_id);
        if (h >= 24) {
            CHECK_CONTAINS(t, "51.2%  ETA 1m35s  5120/10000  52.5/s  active");
            CHECK_CONTAINS(t, "stopped: max_cost");
            CHECK_CONTAINS(t, "unusable: key variable OPENAI_API_KEY unset");
            CHECK_CONTAINS(t, "dead: http_400 12, timeout 3");
            if (w >= 120) /* narrower, the line is cut before it */
                CHECK_CONTAINS(t, "cost 1.2500 (batch price)");
            CHECK_CONTAINS(t, "emotions, slowest first (8 of 32; --emotions shows all):");
            /* the slowest first: caring, then afraid (10 done) */
            const char *caring = strstr(t, "caring"), *afraid = strstr(t, "  afraid");
            CHECK(caring != NULL && afraid != NULL && caring < afraid);
            CHECK(strstr(t, "trusting") == NULL); /* one of the furthest along, collapsed */
        }
        free(t);
    }
    /* --emotions: all 32 at 120x40 */
    char *t = render(&r, 120, 40, 1);
    check_fit(t, 120, 40, r.run_id);
    CHECK_CONTAINS(t, "emotions, slowest first (32 of 32):");
    for (int i = 0; i < 32; i++)
        CHECK_CONTAINS(t, emotions[i]);
    free(t);
    /* --emotions in a small terminal: as many as fit, and it says so */
    t = render(&r, 80, 16, 1);
    check_fit(t, 80, 16, r.run_id);
    CHECK_CONTAINS(t, "; a taller terminal shows more):");
    free(t);
}

int main(void)
{
    RUN(test_screen);
    CHECK_DONE();
}
