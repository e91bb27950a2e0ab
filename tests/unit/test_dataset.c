/* test_dataset.c: the dataset module: the three file formats (fixtures in
 * tests/data/dataset_*), their errors and line numbers, the synthetic
 * generator, selection, and the JSONL round trip. With EMPQ_TEST_DATA set to
 * the shared data folder it also loads the real Welivita-Pu and
 * EmpatheticDialogues files; without it those checks are skipped with a
 * note and the rest still runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "empq/dataset.h"
#include "empq/util.h"

static char fixture_dir[1024];
static char tmp_dir[256];

static const char *fixture(const char *name)
{
    static char path[2048];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    return path;
}

static const char *tmp_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

/* Loads a fixture that must load; returns the dataset. */
static empq_dataset *load_ok(const char *name, const char *format)
{
    empq_dataset *ds = NULL;
    empq_error err = {0};
    int rc = empq_dataset_load(fixture(name), format, &ds, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "load %s: %s\n", name, err.msg);
    CHECK_INT(rc, EMPQ_OK);
    CHECK(ds != NULL);
    return ds;
}

/* Loads a fixture that must fail with code, the message containing
 * "<name>:<where>". */
static void load_fails(const char *name, const char *format, int code, const char *where)
{
    empq_dataset *ds = (empq_dataset *)&ds; /* must be reset to NULL */
    empq_error err = {0};
    int rc = empq_dataset_load(fixture(name), format, &ds, &err);
    fprintf(stderr, "   %s -> %s\n", name, err.msg);
    CHECK_INT(rc, code);
    CHECK(ds == NULL);
    char want[512];
    snprintf(want, sizeof want, "%s:%s", name, where);
    CHECK_CONTAINS(err.msg, want);
}

static void check_opt(const char *got, const char *want)
{
    if (want == NULL)
        CHECK(got == NULL);
    else
        CHECK_STR(got, want);
}

static void check_item(const empq_dialogue *d, const char *id, const char *emotion, const char *sentiment,
                       const char *situation, const char *prompt, const char *human, size_t line)
{
    CHECK_STR(d->id, id);
    CHECK_STR(d->emotion, emotion);
    check_opt(d->sentiment, sentiment);
    CHECK_STR(d->situation, situation);
    CHECK_STR(d->prompt, prompt);
    check_opt(d->human, human);
    CHECK_INT(d->line, line);
}

static int same_opt(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Same texts, item by item (lines are not compared). */
static void check_same(const empq_dataset *a, const empq_dataset *b)
{
    CHECK_INT(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        CHECK_STR(a->items[i].id, b->items[i].id);
        CHECK_STR(a->items[i].emotion, b->items[i].emotion);
        CHECK(same_opt(a->items[i].sentiment, b->items[i].sentiment));
        CHECK_STR(a->items[i].situation, b->items[i].situation);
        CHECK_STR(a->items[i].prompt, b->items[i].prompt);
        CHECK(same_opt(a->items[i].human, b->items[i].human));
    }
}

static void emotion_counts(const empq_dataset *ds, const size_t *idx, size_t n, size_t counts[EMPQ_N_EMOTIONS])
{
    memset(counts, 0, EMPQ_N_EMOTIONS * sizeof counts[0]);
    for (size_t i = 0; i < n; i++) {
        int e = empq_emotion_index(ds->items[idx ? idx[i] : i].emotion);
        CHECK(e >= 0);
        counts[e]++;
    }
}

/* ==================== emotions ==================== */

static void test_emotions(void)
{
    CHECK_INT(EMPQ_N_EMOTIONS, 32);
    for (int i = 0; i < EMPQ_N_EMOTIONS; i++) {
        CHECK(empq_emotion_name(i) != NULL);
        CHECK_INT(empq_emotion_index(empq_emotion_name(i)), i);
        if (i > 0)
            CHECK(strcmp(empq_emotion_name(i - 1), empq_emotion_name(i)) < 0);
    }
    CHECK_STR(empq_emotion_name(0), "afraid");
    CHECK_STR(empq_emotion_name(31), "trusting");
    CHECK(empq_emotion_name(32) == NULL);
    CHECK(empq_emotion_name(-1) == NULL);
    CHECK_INT(empq_emotion_index("Sentimental"), empq_emotion_index("sentimental"));
    CHECK_INT(empq_emotion_index("bored"), -1);
    CHECK_INT(empq_emotion_index("afraid "), -1);
    CHECK_INT(empq_emotion_index(""), -1);
    CHECK_INT(empq_emotion_index(NULL), -1);
}

/* ==================== welivita-pu ==================== */

static void test_welivita_fixture(void)
{
    const char *formats[] = {NULL, "auto", "welivita-pu"};
    for (int f = 0; f < 3; f++) {
        empq_dataset *ds = load_ok("dataset_wp_small.csv", formats[f]);
        CHECK_INT(ds->n, 4);
        check_item(&ds->items[0], "hit:1_conv:2", "afraid", "negative", "I heard a noise at night",
                   " I heard a noise downstairs.", "Oh no, what was it?", 2);
        check_item(&ds->items[1], "hit:3_conv:4", "proud", "positive", "My son said \"thanks\", finally",
                   "He said \"thank you\"\r\nand meant it.", "That's great!", 3);
        /* line 5 is blank; upper-case label; empty sentiment and human */
        check_item(&ds->items[2], "hit:5_conv:6", "joyful", NULL, "", "Yay! \xF0\x9F\x8E\x89", NULL, 6);
        /* quoted id, quotes at the edges, no final line end */
        check_item(&ds->items[3], "hit:7_conv:8", "sad", "negative", "", "\" quoted start",
                   "ends with quote \"", 7);
        empq_dataset_free(&ds);
        CHECK(ds == NULL);
    }
    empq_dataset *ds = load_ok("dataset_wp_lf.csv", "welivita-pu");
    CHECK_INT(ds->n, 2);
    CHECK_STR(ds->items[1].prompt, "He said \"thank you\"\nand meant it.");
    CHECK_INT(ds->items[1].line, 3);
    empq_dataset_free(&ds);
}

static void test_welivita_errors(void)
{
    load_fails("dataset_wp_bad_fields.csv", NULL, EMPQ_EPARSE, "4: expected 9 fields, found 8");
    load_fails("dataset_wp_unterminated.csv", NULL, EMPQ_EPARSE, "3: unterminated quoted field");
    load_fails("dataset_wp_bad_emotion.csv", NULL, EMPQ_EPARSE, "3: unknown emotion label 'hungry'");
    load_fails("dataset_wp_missing_column.csv", "welivita-pu", EMPQ_EPARSE,
               "1: header has no column 'response_human'");
    load_fails("dataset_wp_stray_quote.csv", NULL, EMPQ_EPARSE, "3: malformed CSV");
    /* the wrong parser for the file */
    load_fails("dataset_ed_small.csv", "welivita-pu", EMPQ_EPARSE, "1: header has no column 'dialog_id'");
    load_fails("dataset_wp_small.csv", "empatheticdialogues", EMPQ_EPARSE, "1: not an EmpatheticDialogues header");
}

/* ==================== empatheticdialogues ==================== */

static void test_ed_fixture(void)
{
    const char *formats[] = {NULL, "empatheticdialogues"};
    for (int f = 0; f < 2; f++) {
        empq_dataset *ds = load_ok("dataset_ed_small.csv", formats[f]);
        CHECK_INT(ds->n, 3);
        check_item(&ds->items[0], "hit:0_conv:1", "sentimental", NULL, "I found old letters, from my dad.",
                   "I found my dad's old letters, all of them.", "That must have been \"special\", right?", 2);
        /* nine fields and stray selfeval text are tolerated */
        check_item(&ds->items[1], "hit:1_conv:3", "terrified", NULL, "A bear at camp.", " We saw a bear!",
                   "Yikes!", 5);
        /* after a blank line; no second turn */
        check_item(&ds->items[2], "hit:2_conv:5", "joyful", NULL, "Baby was born", "My niece was born,, finally",
                   NULL, 8);
        empq_dataset_free(&ds);
    }
    load_fails("dataset_ed_bad_fields.csv", NULL, EMPQ_EPARSE, "4: expected 8 or 9 fields, found 7");
    load_fails("dataset_ed_bad_emotion.csv", NULL, EMPQ_EPARSE, "3: unknown emotion label 'sleepy'");
}

/* ==================== jsonl ==================== */

static void test_jsonl_fixture(void)
{
    const char *formats[] = {NULL, "jsonl"};
    for (int f = 0; f < 2; f++) {
        empq_dataset *ds = load_ok("dataset_small.jsonl", formats[f]);
        CHECK_INT(ds->n, 3);
        check_item(&ds->items[0], "a1", "afraid", "negative", "Night", " I heard a noise.", "Oh no!", 1);
        check_item(&ds->items[1], "a2", "grateful", NULL, "", "Thanks \"friend\"\nsecond line", NULL, 3);
        check_item(&ds->items[2], "a3", "proud", NULL, "", "Caf\xC3\xA9 \xE2\x98\x95", NULL, 5);
        empq_dataset_free(&ds);
    }
    load_fails("dataset_bad_json.jsonl", NULL, EMPQ_EPARSE, "3: invalid JSON");
    load_fails("dataset_missing_prompt.jsonl", NULL, EMPQ_EPARSE, "2: missing \"prompt\"");
    load_fails("dataset_wrong_type.jsonl", NULL, EMPQ_EPARSE, "2: \"human\" is not a string");
    load_fails("dataset_bad_emotion.jsonl", "jsonl", EMPQ_EPARSE, "3: unknown emotion label 'bored'");
    load_fails("dataset_duplicate_id.jsonl", NULL, EMPQ_EPARSE, "3: duplicate id 'a1' (also on line 1)");
    load_fails("dataset_not_object.jsonl", NULL, EMPQ_EPARSE, "1: not a JSON object");
}

/* ==================== files and formats ==================== */

static void test_load_errors(void)
{
    load_fails("dataset_unknown_header.csv", NULL, EMPQ_EPARSE, "1: cannot detect the dataset format");
    load_fails("dataset_no_such_file.csv", NULL, EMPQ_ENOTFOUND, "");
    load_fails("dataset_wp_small.csv", "xlsx", EMPQ_EINVAL, "");
    empq_error err = {0};
    CHECK_INT(empq_dataset_load(fixture("dataset_wp_small.csv"), NULL, NULL, &err), EMPQ_EINVAL);
    empq_dataset_free(NULL); /* accepts NULL */
    empq_dataset *none = NULL;
    empq_dataset_free(&none);
}

/* ==================== text that is not UTF-8 ==================== */

/* Writes len bytes to the temporary file name; returns its path. */
static const char *write_tmp(const char *name, const char *data, size_t len)
{
    const char *path = tmp_path(name);
    empq_error err = {0};
    CHECK_INT(empq_write_file_atomic(path, data, len, &err), EMPQ_OK);
    return path;
}

/* Removes the files write_tmp wrote (names). */
static void remove_tmp(const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        unlink(tmp_path(names[i]));
}

/* Loads path (format may be NULL) and checks it fails with EMPQ_EPARSE and
 * a message naming "path:line:" and "byte column of the line". */
static void load_bad_text(const char *path, const char *format, size_t line, size_t column)
{
    empq_dataset *ds = (empq_dataset *)&ds; /* must be reset to NULL */
    empq_error err = {0};
    int rc = empq_dataset_load(path, format, &ds, &err);
    fprintf(stderr, "   %s\n", err.msg);
    CHECK_INT(rc, EMPQ_EPARSE);
    CHECK(ds == NULL);
    char want[700];
    snprintf(want, sizeof want, "%s:%zu: not valid UTF-8 at byte %zu of the line (bytes counted from 1", path,
             line, column);
    CHECK_CONTAINS(err.msg, want);
}

/* The kinds of bytes that are not UTF-8, each put where a human response
 * goes in every format; "ok" texts (the largest code points, a 4-byte
 * sequence) load byte for byte. */
static void test_invalid_utf8(void)
{
    static const struct {
        const char *what, *bytes;
    } bad[] = {
        {"xff xfe (the issue's bytes)", "\xff\xfe"},
        {"a stray continuation byte", "\x80"},
        {"overlong '/' (C0 AF)", "\xc0\xaf"},
        {"overlong 3-byte NUL (E0 80 80)", "\xe0\x80\x80"},
        {"overlong 4-byte (F0 80 80 AF)", "\xf0\x80\x80\xaf"},
        {"surrogate U+D800 (ED A0 80)", "\xed\xa0\x80"},
        {"surrogate U+DFFF (ED BF BF)", "\xed\xbf\xbf"},
        {"past U+10FFFF (F4 90 80 80)", "\xf4\x90\x80\x80"},
        {"F5 lead byte", "\xf5\x80\x80\x80"},
        {"a sequence cut by a quote", "\xe2\x82"},
        {"a lead byte then ASCII", "\xc3("},
    };
    /* "ab" + bad: the bad bytes start at this byte of the line. */
    const char *wp_head = "part_no,dialog_id,emotion,sentiment,plutchik,situation,speaker_uttr,response_human,"
                          "rating_human\n0,hit:1_conv:2,afraid,negative,fear,Night,A noise.,\"ok\",2\n";
    const char *wp_row = "0,hit:3_conv:4,proud,positive,joy,Son,He thanked me.,\"ab";
    const char *ed_head = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"
                          "hit:0_conv:1,1,sad,Lost it,1,I lost my keys.,5|5|5_2|2|5,\n";
    const char *ed_row = "hit:0_conv:1,2,sad,Lost it,0,ab";
    const char *jl_head = "{\"id\": \"a1\", \"emotion\": \"afraid\", \"prompt\": \"A noise.\"}\n";
    const char *jl_row = "{\"id\": \"a2\", \"emotion\": \"proud\", \"prompt\": \"Thanks.\", \"human\": \"ab";
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        fprintf(stderr, "  %s\n", bad[k].what);
        char text[1024];
        int n = snprintf(text, sizeof text, "%s%s%s\",2\n", wp_head, wp_row, bad[k].bytes);
        load_bad_text(write_tmp("utf8_bad.csv", text, (size_t)n), "welivita-pu", 3, strlen(wp_row) + 1);
        load_bad_text(write_tmp("utf8_bad.csv", text, (size_t)n), NULL, 3, strlen(wp_row) + 1);
        n = snprintf(text, sizeof text, "%s%s%s,5|5|5_2|2|5,\n", ed_head, ed_row, bad[k].bytes);
        load_bad_text(write_tmp("utf8_bad_ed.csv", text, (size_t)n), "empatheticdialogues", 3, strlen(ed_row) + 1);
        load_bad_text(write_tmp("utf8_bad_ed.csv", text, (size_t)n), NULL, 3, strlen(ed_row) + 1);
        n = snprintf(text, sizeof text, "%s%s%s\"}\n", jl_head, jl_row, bad[k].bytes);
        load_bad_text(write_tmp("utf8_bad.jsonl", text, (size_t)n), NULL, 2, strlen(jl_row) + 1);
        load_bad_text(write_tmp("utf8_bad.txt", text, (size_t)n), "jsonl", 2, strlen(jl_row) + 1);
    }
    /* a bad byte in a header (line 1, first byte) and in an id */
    load_bad_text(write_tmp("utf8_bad.csv", "\xffpart_no,x\n", 11), "welivita-pu", 1, 1);
    char text[1024];
    int n = snprintf(text, sizeof text, "%shit:\xfe_conv:1,1,sad,Lost it,1,I lost.,5,\n", ed_head);
    load_bad_text(write_tmp("utf8_bad_ed.csv", text, (size_t)n), NULL, 3, 5);
    /* a JSON escape of a lone surrogate is refused by the JSON reader */
    n = snprintf(text, sizeof text, "%s{\"id\": \"a2\", \"emotion\": \"sad\", \"prompt\": \"x\\udc00\"}\n", jl_head);
    empq_dataset *ds = NULL;
    empq_error err = {0};
    CHECK_INT(empq_dataset_load(write_tmp("utf8_esc.jsonl", text, (size_t)n), NULL, &ds, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "utf8_esc.jsonl:2: invalid JSON");

    /* valid UTF-8 at the edges loads byte for byte in every format: U+0080,
     * U+07FF, U+0800, U+FFFF (not a surrogate), U+10000, U+10FFFF, a BOM */
    const char *edge = "\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf";
    n = snprintf(text, sizeof text, "\xef\xbb\xbf%s%s%s\",2\n", wp_head, wp_row, edge);
    CHECK_INT(empq_dataset_load(write_tmp("utf8_edge.csv", text, (size_t)n), NULL, &ds, &err), EMPQ_OK);
    CHECK_INT(ds->n, 2);
    CHECK(strncmp(ds->items[1].human, "ab", 2) == 0);
    CHECK_STR(ds->items[1].human + 2, edge);
    empq_dataset_free(&ds);
    n = snprintf(text, sizeof text, "%s%s%s,5|5|5_2|2|5,\n", ed_head, ed_row, edge);
    CHECK_INT(empq_dataset_load(write_tmp("utf8_edge_ed.csv", text, (size_t)n), NULL, &ds, &err), EMPQ_OK);
    CHECK_INT(ds->n, 1);
    CHECK_STR(ds->items[0].human + 2, edge);
    empq_dataset_free(&ds);
    n = snprintf(text, sizeof text, "%s%s%s\"}\n", jl_head, jl_row, edge);
    CHECK_INT(empq_dataset_load(write_tmp("utf8_edge.jsonl", text, (size_t)n), NULL, &ds, &err), EMPQ_OK);
    CHECK_INT(ds->n, 2);
    CHECK_STR(ds->items[1].human + 2, edge);
    empq_dataset_free(&ds);
    static const char *const written[] = {"utf8_bad.csv", "utf8_bad_ed.csv", "utf8_bad.jsonl", "utf8_bad.txt",
                                          "utf8_esc.jsonl", "utf8_edge.csv", "utf8_edge_ed.csv",
                                          "utf8_edge.jsonl"};
    remove_tmp(written, sizeof written / sizeof written[0]);
}

/* A file with a header and no rows (or nothing at all) holds no dialogues:
 * an error naming the file, in every format. */
static void test_no_rows(void)
{
    static const struct {
        const char *name, *text;
    } files[] = {
        {"head.csv", "part_no,dialog_id,emotion,sentiment,plutchik,situation,speaker_uttr,response_human,"
                     "rating_human\n"},
        {"head_crlf.csv", "part_no,dialog_id,emotion,sentiment,plutchik,situation,speaker_uttr,"
                          "response_human,rating_human\r\n\r\n"},
        {"head_ed.csv", "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"},
        {"blank.jsonl", "\n  \n"},
        {"empty.jsonl", ""},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *path = write_tmp(files[i].name, files[i].text, strlen(files[i].text));
        empq_dataset *ds = (empq_dataset *)&ds;
        empq_error err = {0};
        CHECK_INT(empq_dataset_load(path, NULL, &ds, &err), EMPQ_EPARSE);
        fprintf(stderr, "   %s\n", err.msg);
        CHECK(ds == NULL);
        char want[600];
        snprintf(want, sizeof want, "%s: no dialogues in the file", path);
        CHECK_CONTAINS(err.msg, want);
        remove_tmp(&files[i].name, 1);
    }
}

/* ==================== synth ==================== */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t distinct_prompts(const empq_dataset *ds)
{
    char **v = malloc(ds->n * sizeof *v);
    CHECK(v != NULL);
    for (size_t i = 0; i < ds->n; i++)
        v[i] = ds->items[i].prompt;
    qsort(v, ds->n, sizeof *v, cmp_str);
    size_t d = ds->n > 0;
    for (size_t i = 1; i < ds->n; i++)
        d += strcmp(v[i - 1], v[i]) != 0;
    free(v);
    return d;
}

static void test_synth(void)
{
    empq_error err = {0};
    empq_dataset *a = NULL, *b = NULL, *c = NULL;
    CHECK_INT(empq_dataset_synth(2000, 42, &a, &err), EMPQ_OK);
    CHECK_INT(a->n, 2000);
    size_t counts[EMPQ_N_EMOTIONS];
    emotion_counts(a, NULL, a->n, counts);
    size_t n63 = 0;
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++) {
        CHECK(counts[e] == 62 || counts[e] == 63);
        n63 += counts[e] == 63;
    }
    CHECK_INT(n63, 2000 - 32 * 62);
    CHECK_STR(a->items[0].id, "synth-00001");
    CHECK_STR(a->items[1999].id, "synth-02000");
    for (size_t i = 0; i < a->n; i++) {
        const empq_dialogue *d = &a->items[i];
        CHECK(d->situation[0] != '\0' && d->prompt[0] != '\0' && d->human != NULL && d->human[0] != '\0');
        CHECK(d->sentiment != NULL);
        CHECK(strstr(d->prompt, "{p}") == NULL && strstr(d->human, "{p}") == NULL);
        CHECK_INT(d->line, 0);
    }
    CHECK(distinct_prompts(a) > 1000); /* varied texts */
    fprintf(stderr, "   synth[0]: %s | %s | %s\n", a->items[0].situation, a->items[0].prompt, a->items[0].human);

    CHECK_INT(empq_dataset_synth(2000, 42, &b, &err), EMPQ_OK);
    check_same(a, b); /* same seed, same dataset */
    CHECK_INT(empq_dataset_synth(2000, 43, &c, &err), EMPQ_OK);
    size_t differ = 0;
    for (size_t i = 0; i < a->n; i++)
        differ += strcmp(a->items[i].prompt, c->items[i].prompt) != 0;
    CHECK(differ > 1000); /* another seed, another dataset */
    empq_dataset_free(&a);
    empq_dataset_free(&b);
    empq_dataset_free(&c);

    CHECK_INT(empq_dataset_synth(0, 1, &a, &err), EMPQ_OK);
    CHECK_INT(a->n, 0);
    empq_dataset_free(&a);
    CHECK_INT(empq_dataset_synth(5, 1, &a, &err), EMPQ_OK);
    emotion_counts(a, NULL, a->n, counts);
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        CHECK(counts[e] <= 1);
    empq_dataset_free(&a);
}

/* ==================== select ==================== */

/* A dataset with counts[i] items of emotion emotions[i]. */
static empq_dataset *make_ds(const char *const *emotions, const size_t *counts, size_t k)
{
    empq_dataset *ds = calloc(1, sizeof *ds);
    size_t n = 0;
    for (size_t i = 0; i < k; i++)
        n += counts[i];
    ds->items = calloc(n, sizeof *ds->items);
    CHECK(ds != NULL && ds->items != NULL);
    /* interleave the emotions so that dataset order is not emotion order */
    size_t left[16];
    memcpy(left, counts, k * sizeof *counts);
    while (ds->n < n) {
        for (size_t i = 0; i < k; i++) {
            if (left[i] == 0)
                continue;
            left[i]--;
            empq_dialogue *d = &ds->items[ds->n];
            char id[32];
            snprintf(id, sizeof id, "x%zu", ds->n);
            d->id = empq_strdup(id);
            d->emotion = empq_strdup(emotions[i]);
            d->situation = empq_strdup("");
            d->prompt = empq_strdup("p");
            d->line = ++ds->n;
        }
    }
    return ds;
}

static void check_ascending(const size_t *idx, size_t n, size_t limit)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(idx[i] < limit);
        if (i > 0)
            CHECK(idx[i - 1] < idx[i]);
    }
}

/* No two synthetic dialogues are the same request: each would otherwise be
 * served from the other's cache entry on a first run. */
static void test_synth_unique(void)
{
    empq_dataset *ds = NULL;
    CHECK_INT(empq_dataset_synth(2000, 7, &ds, NULL), EMPQ_OK);
    for (size_t i = 0; i < ds->n; i++)
        for (size_t j = i + 1; j < ds->n; j++)
            if (strcmp(ds->items[i].prompt, ds->items[j].prompt) == 0)
                CHECK(strcmp(ds->items[i].situation, ds->items[j].situation) != 0);
    empq_dataset_free(&ds);
}

static void test_select_balanced(void)
{
    empq_error err = {0};
    empq_dataset *ds = NULL;
    CHECK_INT(empq_dataset_synth(2000, 5, &ds, &err), EMPQ_OK);
    size_t *idx = NULL, *idx2 = NULL, n = 0, n2 = 0, counts[EMPQ_N_EMOTIONS];

    CHECK_INT(empq_dataset_select(ds, 320, 7, 1, &idx, &n, &err), EMPQ_OK);
    CHECK_INT(n, 320);
    check_ascending(idx, n, ds->n);
    emotion_counts(ds, idx, n, counts);
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        CHECK_INT(counts[e], 10);
    /* deterministic */
    CHECK_INT(empq_dataset_select(ds, 320, 7, 1, &idx2, &n2, &err), EMPQ_OK);
    CHECK_INT(n2, n);
    CHECK(memcmp(idx, idx2, n * sizeof *idx) == 0);
    free(idx2);
    /* another seed draws other items */
    CHECK_INT(empq_dataset_select(ds, 320, 8, 1, &idx2, &n2, &err), EMPQ_OK);
    CHECK(memcmp(idx, idx2, n * sizeof *idx) != 0);
    free(idx2);
    free(idx);

    /* 330 = 32 x 10 + 10: ten emotions get one more */
    CHECK_INT(empq_dataset_select(ds, 330, 7, 1, &idx, &n, &err), EMPQ_OK);
    CHECK_INT(n, 330);
    check_ascending(idx, n, ds->n);
    emotion_counts(ds, idx, n, counts);
    size_t n11 = 0;
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++) {
        CHECK(counts[e] == 10 || counts[e] == 11);
        n11 += counts[e] == 11;
    }
    CHECK_INT(n11, 10);
    free(idx);

    /* n == 0 and n > available: everything, in order */
    size_t asks[2] = {0, 5000};
    for (int a = 0; a < 2; a++) {
        CHECK_INT(empq_dataset_select(ds, asks[a], 7, 1, &idx, &n, &err), EMPQ_OK);
        CHECK_INT(n, 2000);
        for (size_t i = 0; i < n; i++)
            CHECK_INT(idx[i], i);
        free(idx);
    }
    empq_dataset_free(&ds);
}

static void test_select_water_filling(void)
{
    empq_error err = {0};
    size_t *idx = NULL, n = 0, counts[EMPQ_N_EMOTIONS];

    /* afraid 2, angry 5, sad 50, joyful 50; 40 wanted: share 10 each, the
     * short ones give all they have, the other two split 33 (16 + 17). */
    const char *emo1[] = {"afraid", "angry", "sad", "joyful"};
    size_t cnt1[] = {2, 5, 50, 50};
    empq_dataset *ds = make_ds(emo1, cnt1, 4);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        CHECK_INT(empq_dataset_select(ds, 40, seed, 1, &idx, &n, &err), EMPQ_OK);
        CHECK_INT(n, 40);
        check_ascending(idx, n, ds->n);
        emotion_counts(ds, idx, n, counts);
        CHECK_INT(counts[empq_emotion_index("afraid")], 2);
        CHECK_INT(counts[empq_emotion_index("angry")], 5);
        size_t s = counts[empq_emotion_index("sad")], j = counts[empq_emotion_index("joyful")];
        CHECK((s == 16 && j == 17) || (s == 17 && j == 16));
        free(idx);
    }
    empq_dataset_free(&ds);

    /* a cascade: afraid 2, angry 12, sad 100; 39 wanted: share 13; afraid
     * gives 2, then angry's share is 18 > 12, so it gives 12; sad gets 25. */
    const char *emo2[] = {"afraid", "angry", "sad"};
    size_t cnt2[] = {2, 12, 100};
    ds = make_ds(emo2, cnt2, 3);
    CHECK_INT(empq_dataset_select(ds, 39, 3, 1, &idx, &n, &err), EMPQ_OK);
    CHECK_INT(n, 39);
    emotion_counts(ds, idx, n, counts);
    CHECK_INT(counts[empq_emotion_index("afraid")], 2);
    CHECK_INT(counts[empq_emotion_index("angry")], 12);
    CHECK_INT(counts[empq_emotion_index("sad")], 25);
    free(idx);
    empq_dataset_free(&ds);

    /* an item whose emotion is not one of the 32 */
    const char *emo3[] = {"afraid", "bored"};
    size_t cnt3[] = {3, 3};
    ds = make_ds(emo3, cnt3, 2);
    idx = (size_t *)&idx;
    CHECK_INT(empq_dataset_select(ds, 2, 1, 1, &idx, &n, &err), EMPQ_EINVAL);
    CHECK(idx == NULL);
    CHECK_CONTAINS(err.msg, "bored");
    /* unbalanced selection does not look at the emotions */
    CHECK_INT(empq_dataset_select(ds, 2, 1, 0, &idx, &n, &err), EMPQ_OK);
    CHECK_INT(n, 2);
    free(idx);
    empq_dataset_free(&ds);

    /* an empty dataset */
    empq_dataset empty = {NULL, 0};
    CHECK_INT(empq_dataset_select(&empty, 10, 1, 1, &idx, &n, &err), EMPQ_OK);
    CHECK_INT(n, 0);
    CHECK(idx != NULL);
    free(idx);
}

static void test_select_uniform(void)
{
    empq_error err = {0};
    empq_dataset *ds = NULL;
    CHECK_INT(empq_dataset_synth(500, 9, &ds, &err), EMPQ_OK);
    size_t *a = NULL, *b = NULL, na = 0, nb = 0;
    CHECK_INT(empq_dataset_select(ds, 100, 11, 0, &a, &na, &err), EMPQ_OK);
    CHECK_INT(na, 100);
    check_ascending(a, na, ds->n);
    CHECK_INT(empq_dataset_select(ds, 100, 11, 0, &b, &nb, &err), EMPQ_OK);
    CHECK(memcmp(a, b, na * sizeof *a) == 0);
    free(b);
    CHECK_INT(empq_dataset_select(ds, 100, 12, 0, &b, &nb, &err), EMPQ_OK);
    CHECK(memcmp(a, b, na * sizeof *a) != 0);
    free(b);
    /* spread over the whole dataset, not a prefix */
    CHECK(a[na - 1] > 250);
    free(a);
    empq_dataset_free(&ds);
}

/* ==================== JSONL round trip ==================== */

static void round_trip(const empq_dataset *ds, const char *name)
{
    empq_error err = {0};
    const char *path = tmp_path(name);
    CHECK_INT(empq_dataset_write_jsonl(ds, path, &err), EMPQ_OK);
    empq_dataset *back = NULL;
    if (empq_dataset_load(path, NULL, &back, &err) != EMPQ_OK)
        fprintf(stderr, "reload: %s\n", err.msg);
    CHECK(back != NULL);
    check_same(ds, back);
    for (size_t i = 0; i < back->n; i++)
        CHECK_INT(back->items[i].line, i + 1);
    empq_dataset_free(&back);
    unlink(path);
}

static void test_jsonl_round_trip(void)
{
    empq_error err = {0};
    empq_dataset *ds = NULL;
    CHECK_INT(empq_dataset_synth(300, 3, &ds, &err), EMPQ_OK);
    round_trip(ds, "synth.jsonl");
    empq_dataset_free(&ds);

    ds = load_ok("dataset_wp_small.csv", NULL); /* CRLF inside a text, NULL fields */
    round_trip(ds, "wp.jsonl");
    /* the written form */
    CHECK_INT(empq_dataset_write_jsonl(ds, tmp_path("wp2.jsonl"), &err), EMPQ_OK);
    char *text = NULL;
    CHECK_INT(empq_read_file(tmp_path("wp2.jsonl"), &text, NULL, &err), EMPQ_OK);
    CHECK_CONTAINS(text, "{\"id\":\"hit:1_conv:2\",\"emotion\":\"afraid\",\"sentiment\":\"negative\","
                         "\"situation\":\"I heard a noise at night\",\"prompt\":\" I heard a noise downstairs.\","
                         "\"human\":\"Oh no, what was it?\"}\n");
    CHECK_CONTAINS(text, "{\"id\":\"hit:5_conv:6\",\"emotion\":\"joyful\",\"situation\":\"\",\"prompt\":");
    free(text);
    unlink(tmp_path("wp2.jsonl"));

    /* unwritable place */
    CHECK_INT(empq_dataset_write_jsonl(ds, "/nonexistent-dir/x.jsonl", &err), EMPQ_EIO);
    CHECK_CONTAINS(err.msg, "/nonexistent-dir/x.jsonl");
    /* not UTF-8: refused, naming the item */
    free(ds->items[1].prompt);
    ds->items[1].prompt = empq_strdup("bad \xFF byte");
    CHECK_INT(empq_dataset_write_jsonl(ds, tmp_path("bad.jsonl"), &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "hit:3_conv:4");
    CHECK(access(tmp_path("bad.jsonl"), F_OK) != 0);
    empq_dataset_free(&ds);

    ds = load_ok("dataset_small.jsonl", NULL);
    round_trip(ds, "small.jsonl");
    empq_dataset_free(&ds);
    ds = load_ok("dataset_ed_small.csv", NULL);
    round_trip(ds, "ed.jsonl");
    empq_dataset_free(&ds);
}

/* ==================== real data (EMPQ_TEST_DATA) ==================== */

static const empq_dialogue *find_id(const empq_dataset *ds, const char *id)
{
    for (size_t i = 0; i < ds->n; i++) {
        if (strcmp(ds->items[i].id, id) == 0)
            return &ds->items[i];
    }
    fprintf(stderr, "id %s not found\n", id);
    CHECK(0);
    return NULL;
}

static void test_real_welivita(const char *dir)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/welivita-pu-2024/dataset_and_ratings.csv", dir);
    empq_dataset *ds = NULL;
    empq_error err = {0};
    if (empq_dataset_load(path, NULL, &ds, &err) != EMPQ_OK)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(ds != NULL);
    CHECK_INT(ds->n, 2000);
    size_t counts[EMPQ_N_EMOTIONS];
    emotion_counts(ds, NULL, ds->n, counts);
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        CHECK(counts[e] >= 57 && counts[e] <= 68);
    check_item(&ds->items[0], "hit:9554_conv:19108", "prepared", "positive",
               "I am prepared to help my family financially whenever they need it ",
               "I am prepared to help my family financially whenever they need it",
               "That is really great.  You don't find too many people willing to help others financially.  "
               "Do you have a really good job?",
               2);
    /* a first turn that begins with a space and carries stray chat text */
    const empq_dialogue *d = find_id(ds, "hit:2179_conv:4359");
    CHECK_STR(d->prompt, " (Sorry yes daycares do have a way to log in- ask them so you can ensure she is safe) "
                         "I am losing weight again and it's been hard with my stress, age and after surgery. "
                         "I love feeling the new areas I am thin!");
    CHECK_STR(d->situation, " I am excited about losing weight. I can feel new areas that are thinner, which "
                            "excites me");
    CHECK_INT(d->line, 3);
    /* quotes inside the texts, after "" unescaping */
    d = find_id(ds, "hit:430_conv:861");
    CHECK_STR(d->emotion, "annoyed");
    CHECK_STR(d->prompt, "So when adults don't clean up after themselves in a business environment -- what is "
                         "that ?! Why do they think a \"mommy\" will come along to clean up after them?!");
    CHECK_CONTAINS(d->human, "LOL! This is perfect timing because I had the \" You are an adult not a child\" "
                             "conversation with my girlfriend");
    CHECK_INT(d->line, 55);
    d = find_id(ds, "hit:11760_conv:23521");
    CHECK_CONTAINS(d->human, "THe old phrase \"can't outrun the fork.\"");

    size_t *idx = NULL, n = 0;
    CHECK_INT(empq_dataset_select(ds, 320, 2024, 1, &idx, &n, &err), EMPQ_OK);
    emotion_counts(ds, idx, n, counts);
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        CHECK_INT(counts[e], 10);
    free(idx);
    empq_dataset_free(&ds);
}

static void test_real_ed(const char *dir)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/empatheticdialogues/train-head.csv", dir);
    empq_dataset *ds = NULL;
    empq_error err = {0};
    if (empq_dataset_load(path, NULL, &ds, &err) != EMPQ_OK)
        fprintf(stderr, "%s\n", err.msg);
    CHECK(ds != NULL);
    CHECK_INT(ds->n, 133);
    check_item(&ds->items[0], "hit:0_conv:1", "sentimental", NULL,
               "I remember going to the fireworks with my best friend. There was a lot of people, but it only "
               "felt like us in the world.",
               "I remember going to see the fireworks with my best friend. It was the first time we ever spent "
               "time alone together. Although there was a lot of people, we felt like the only people in the "
               "world.",
               "Was this a friend you were in love with, or just a best friend?", 2);
    size_t counts[EMPQ_N_EMOTIONS], present = 0;
    emotion_counts(ds, NULL, ds->n, counts);
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        present += counts[e] > 0;
    CHECK_INT(present, 32);
    for (size_t i = 0; i < ds->n; i++) {
        const empq_dialogue *d = &ds->items[i];
        CHECK(strstr(d->prompt, "_comma_") == NULL && strstr(d->situation, "_comma_") == NULL);
        CHECK(d->human == NULL || strstr(d->human, "_comma_") == NULL);
        if (i > 0)
            CHECK(d->line > ds->items[i - 1].line);
    }
    CHECK_STR(ds->items[ds->n - 1].id, "hit:74_conv:149");
    empq_dataset_free(&ds);
}

int main(void)
{
    const char *src = getenv("EMPQ_SOURCE_DIR");
    if (src != NULL) {
        snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/data", src);
    } else {
        /* __FILE__ is .../tests/unit/test_dataset.c */
        snprintf(fixture_dir, sizeof fixture_dir, "%s", __FILE__);
        char *slash = strrchr(fixture_dir, '/');
        if (slash != NULL)
            snprintf(slash, sizeof fixture_dir - (size_t)(slash - fixture_dir), "/../data");
        else
            snprintf(fixture_dir, sizeof fixture_dir, "../data");
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/empq-test-dataset-XXXXXX", tmp != NULL ? tmp : "/tmp");
    CHECK(mkdtemp(tmp_dir) != NULL);

    RUN(test_emotions);
    RUN(test_welivita_fixture);
    RUN(test_welivita_errors);
    RUN(test_ed_fixture);
    RUN(test_jsonl_fixture);
    RUN(test_load_errors);
    RUN(test_invalid_utf8);
    RUN(test_no_rows);
    RUN(test_synth);
    RUN(test_synth_unique);
    RUN(test_select_balanced);
    RUN(test_select_water_filling);
    RUN(test_select_uniform);
    RUN(test_jsonl_round_trip);

    const char *data = getenv("EMPQ_TEST_DATA");
    if (data != NULL && data[0] != '\0') {
        fprintf(stderr, "-- real data in %s\n", data);
        test_real_welivita(data);
        test_real_ed(data);
    } else {
        fprintf(stderr, "note: EMPQ_TEST_DATA is not set: real-data checks (Welivita-Pu, "
                        "EmpatheticDialogues) skipped; fixture checks ran\n");
    }
    rmdir(tmp_dir);
    CHECK_DONE();
}
