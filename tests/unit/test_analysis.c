/* test_analysis.c: the analysis module without real data: the style
 * counters on crafted strings (emojis, pronouns, sentences, UTF-8), the
 * ratings reader on crafted CSV (quotes, CRLF, embedded newlines, errors),
 * the figures of a small hand-computed study, and the written report. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "empq/analysis.h"
#include "empq/spec.h"
#include "empq/util.h"

#define CHECK_NEAR(a, b, tol) do { check__count++; double check__a = (a), check__b = (b); \
    if (!(fabs(check__a - check__b) <= (tol))) { \
        fprintf(stderr, "%s:%d: %s ~= %s failed: %.12g != %.12g\n", __FILE__, __LINE__, #a, #b, \
                check__a, check__b); exit(1); } } while (0)

static empq_style_counts count(const char *s)
{
    empq_style_counts c;
    empq_style_count(s, &c);
    return c;
}

static void test_words_and_sentences(void)
{
    empq_style_counts c = count("Hi there! How are you? I'm fine.");
    CHECK_INT(c.words, 7); /* hi there how are you i'm fine */
    CHECK_INT(c.sentences, 3);
    CHECK_INT(c.exclamations, 1);
    CHECK_INT(c.questions, 1);
    CHECK_INT(c.letters, 2 + 5 + 3 + 3 + 3 + 3 + 4);

    c = count("Wait... what?!? It costs 3.5 dollars");
    CHECK_INT(c.sentences, 3); /* "Wait", "what", "It costs 3.5 dollars" */
    CHECK_INT(c.words, 7);     /* 3.5 is two words: 3, 5 */
    CHECK_INT(c.questions, 2);
    CHECK_INT(c.exclamations, 1);

    c = count("");
    CHECK_INT(c.words, 0);
    CHECK_INT(c.sentences, 0);
    c = count(NULL);
    CHECK_INT(c.words, 0);
    c = count("  ?!  ");
    CHECK_INT(c.words, 0);
    CHECK_INT(c.sentences, 0);
    CHECK_INT(c.questions, 1);

    /* non-ASCII letters are word characters; punctuation blocks are not */
    c = count("Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 r\xc3\xa9sum\xc3\xa9\xe2\x80\xa6 ok");
    CHECK_INT(c.words, 4);
    CHECK_INT(c.sentences, 2); /* U+2026 ends a sentence */
    CHECK_INT(c.letters, 4 + 5 + 6 + 2);

    /* an apostrophe joins only inside a word; U+2019 as well */
    c = count("'quoted' don\xe2\x80\x99t it's");
    CHECK_INT(c.words, 3);

    /* invalid UTF-8 does not crash and does not make words */
    c = count("ab\xff\xfe cd \xe2\x82");
    CHECK_INT(c.words, 2);
}

static void test_pronouns_and_words(void)
{
    empq_style_counts c = count("I think my friend and me, myself: mine! I'm sure I've seen it. Iowa is big.");
    CHECK_INT(c.first_person, 7); /* I, my, me, myself, mine, I'm, I've; not Iowa */
    CHECK_INT(c.second_person, 0);

    c = count("You and YOUR dog; yours, yourself, yourselves. You're great, you'll see. Youth isn't you.");
    CHECK_INT(c.second_person, 8); /* not Youth */
    CHECK_INT(c.first_person, 0);

    c = count("I'm so sorry. I apologize, apologies, I apologised. Sorrow is not one.");
    CHECK_INT(c.apology, 4); /* sorry, apologize, apologies, apologised; not sorrow */

    c = count("Thanks! Thank you, I'm grateful and I appreciate it; gratitude, appreciated. Thanksgiving.");
    CHECK_INT(c.gratitude, 7); /* thanks, thank, grateful, appreciate, gratitude, appreciated, thanksgiving */
}

static void test_emojis(void)
{
    CHECK_INT(count("hello \xf0\x9f\x98\x80 world").emojis, 1);                          /* U+1F600 */
    CHECK_INT(count("\xf0\x9f\x98\x80\xf0\x9f\x98\x82\xf0\x9f\xa5\xb0").emojis, 3);      /* three faces */
    CHECK_INT(count("\xe2\x9d\xa4\xef\xb8\x8f love").emojis, 1);                          /* U+2764 U+FE0F */
    CHECK_INT(count("\xe2\x98\x80 sun").emojis, 1);                                       /* U+2600 */
    CHECK_INT(count("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd").emojis, 1);                       /* thumbs up + skin tone */
    /* family: man ZWJ woman ZWJ girl: one emoji */
    CHECK_INT(count("\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7").emojis, 1);
    /* two flags: FR (U+1F1EB U+1F1F7) and DE (U+1F1E9 U+1F1EA) */
    CHECK_INT(count("\xf0\x9f\x87\xab\xf0\x9f\x87\xb7\xf0\x9f\x87\xa9\xf0\x9f\x87\xaa").emojis, 2);
    CHECK_INT(count("\xf0\x9f\xab\xb6 hands").emojis, 1); /* U+1FAF6, the top of the range */
    /* not emojis: an em dash, a check-looking letter, a CJK character */
    CHECK_INT(count("a \xe2\x80\x94 b \xc3\xa7 \xe4\xb8\xad").emojis, 0);
    /* emojis are not words */
    empq_style_counts c = count("Great \xf0\x9f\x98\x8a!");
    CHECK_INT(c.words, 1);
    CHECK_INT(c.emojis, 1);
}

static void test_features(void)
{
    empq_style_counts c = count("You did it! You really did. \xf0\x9f\x8e\x89 Are you proud?");
    double f[EMPQ_STYLE_N_FEATURES];
    empq_style_features(&c, f);
    CHECK_NEAR(f[EMPQ_STYLE_WORDS], 9, 0);
    CHECK_NEAR(f[EMPQ_STYLE_SENTENCES], 3, 0);
    CHECK_NEAR(f[EMPQ_STYLE_WORDS_PER_SENTENCE], 3, 0);
    CHECK_NEAR(f[EMPQ_STYLE_EXCLAMATIONS], 100.0 / 9, 1e-12);
    CHECK_NEAR(f[EMPQ_STYLE_QUESTIONS], 100.0 / 9, 1e-12);
    CHECK_NEAR(f[EMPQ_STYLE_EMOJIS], 100.0 / 9, 1e-12);
    CHECK_NEAR(f[EMPQ_STYLE_SECOND_PERSON], 300.0 / 9, 1e-12);
    CHECK_NEAR(f[EMPQ_STYLE_HAS_QUESTION], 1, 0);
    /* equal ratios give the same double (ties stay ties) */
    empq_style_counts a = {.words = 14, .exclamations = 1}, b = {.words = 28, .exclamations = 2};
    double fa[EMPQ_STYLE_N_FEATURES], fb[EMPQ_STYLE_N_FEATURES];
    empq_style_features(&a, fa);
    empq_style_features(&b, fb);
    CHECK(fa[EMPQ_STYLE_EXCLAMATIONS] == fb[EMPQ_STYLE_EXCLAMATIONS]);
    empq_style_counts z = {0};
    empq_style_features(&z, f);
    for (int i = 0; i < EMPQ_STYLE_N_FEATURES; i++)
        CHECK_NEAR(f[i], 0, 0);
    CHECK_STR(empq_style_feature_name(EMPQ_STYLE_EMOJIS), "emojis_per_100w");
    CHECK(empq_style_feature_name(EMPQ_STYLE_N_FEATURES) == NULL);
    CHECK(empq_style_feature_title(-1) == NULL);
}

/* A Welivita-Pu-like file: quotes, "" escapes, an embedded CRLF, CRLF line
 * ends, an empty rating (skipped). */
static const char wp_csv[] =
    "part_no,dialog_id,emotion,sentiment,response_human,response_gpt,rating_human,rating_gpt\r\n"
    "0,d1,Joyful,positive,\"Nice, \"\"really\"\"!\",Wow!,1,3\r\n"
    "0,d2,sad,negative,\"line one\r\nline two?\",I'm sorry.,2,3\r\n"
    "1,d3,sad,negative,Oh no.,\"So sad \xf0\x9f\x98\xa2\",3,2\r\n"
    "1,d4,joyful,positive,Great!,Yay,3,\r\n";

static void test_ratings_welivita(void)
{
    empq_ratings *r = NULL;
    empq_error err = {0};
    CHECK_INT(empq_ratings_parse("t.csv", wp_csv, sizeof wp_csv - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err), EMPQ_OK);
    CHECK_INT(r->n_conds, 2);
    CHECK_STR(r->conds[0], "human");
    CHECK_STR(r->conds[1], "gpt");
    CHECK_INT(r->n, 7);
    CHECK_INT(r->n_emotions, 2);
    CHECK_STR(r->emotions[0], "joyful"); /* lower-cased, sorted */
    CHECK_STR(r->emotions[1], "sad");
    CHECK_INT(r->n_units, 7);
    CHECK_INT(r->r[0].value, 1);
    CHECK_INT(r->r[0].emotion, 0);
    CHECK_INT(r->r[0].sentiment, EMPQ_SENT_POSITIVE);
    CHECK_INT(r->r[3].cond, 1);
    CHECK_INT(r->r[3].sentiment, EMPQ_SENT_NEGATIVE);

    empq_analysis *a = NULL;
    CHECK_INT(empq_analysis_compute(r, NULL, "human", 1, &a, &err), EMPQ_OK);
    CHECK_INT(a->cond[0].n, 4);
    CHECK_INT(a->cond[1].n, 3);
    CHECK_NEAR(a->cond[0].share[2], 0.5, 1e-15);
    CHECK_NEAR(a->cond[1].share[2], 2.0 / 3, 1e-15);
    CHECK_NEAR(a->cond[1].good_increase, (2.0 / 3 - 0.5) / 0.5, 1e-15);
    CHECK(isnan(a->cond[0].good_increase));
    CHECK_NEAR(a->cond[0].mean, 9.0 / 4, 1e-15);
    CHECK_INT(a->n_pairs, 1);
    CHECK_INT(a->pair[0].cond, 1);
    CHECK_NEAR(a->pair[0].chi2_p_holm, a->pair[0].chi2.p, 0); /* one comparison: unchanged */
    CHECK_INT(a->emo[1 * 2 + 1].n, 2);                        /* sad x gpt */
    CHECK_NEAR(a->emo[1 * 2 + 1].share_good, 0.5, 1e-15);
    CHECK(isnan(a->alpha.alpha));
    empq_analysis_free(&a);
    CHECK(a == NULL);

    CHECK_INT(empq_analysis_compute(r, NULL, "nobody", 0, &a, &err), EMPQ_EINVAL);
    CHECK_CONTAINS(err.msg, "baseline 'nobody' is not a condition (conditions: human, gpt)");
    empq_ratings_free(&r);
    empq_ratings_free(&r); /* NULL is fine */
}

static void test_ratings_errors(void)
{
    empq_ratings *r = NULL;
    empq_error err = {0};
    const char bad_rating[] = "dialog_id,rating_a\nx,4\n";
    CHECK_INT(empq_ratings_parse("b.csv", bad_rating, sizeof bad_rating - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "b.csv:2: column rating_a: rating '4' is not 1, 2 or 3");
    CHECK(r == NULL);

    const char no_col[] = "dialog_id,emotion\nx,sad\n";
    CHECK_INT(empq_ratings_parse("c.csv", no_col, sizeof no_col - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "c.csv:1: no rating_<condition> column");

    const char unterminated[] = "dialog_id,rating_a\n\"x,1\n";
    CHECK_INT(empq_ratings_parse("d.csv", unterminated, sizeof unterminated - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "d.csv:2: unterminated quoted field");

    const char after_quote[] = "dialog_id,rating_a\n\"x\"y,1\n";
    CHECK_INT(empq_ratings_parse("e.csv", after_quote, sizeof after_quote - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "e.csv:2: text after a closing quote");

    const char fields[] = "dialog_id,rating_a\nx,1,extra\n";
    CHECK_INT(empq_ratings_parse("f.csv", fields, sizeof fields - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "f.csv:2: 3 fields, the header has 2");

    const char long_missing[] = "participant,condition,item\np1,a,i1\n";
    CHECK_INT(empq_ratings_parse("g.csv", long_missing, sizeof long_missing - 1, EMPQ_LAYOUT_LONG, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "g.csv:1: no 'rating' column");

    const char empty[] = "";
    CHECK_INT(empq_ratings_parse("h.csv", empty, 0, EMPQ_LAYOUT_LONG, &r, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "no header line");

    CHECK_INT(empq_ratings_load("/nonexistent/ratings.csv", EMPQ_LAYOUT_LONG, &r, &err), EMPQ_ENOTFOUND);

    empq_ratings_layout l;
    CHECK_INT(empq_analysis_layout_parse("long", &l), EMPQ_OK);
    CHECK_INT(l, EMPQ_LAYOUT_LONG);
    CHECK_INT(empq_analysis_layout_parse("wide", &l), EMPQ_EINVAL);
}

/* The long layout with two raters per item: Krippendorff's alpha applies.
 * Items i1..i4 of condition a: (1,1) (2,2) (3,3) (1,2): coincidences
 * o11 = 2, o22 = 2, o33 = 2, o12 = o21 = 1; n1 = 3, n2 = 3, n3 = 2, n = 8.
 * Ordinal deltas: d12 = (3+3 - 3)^2 = 9, d13 = (8 - 2.5)^2 = 30.25,
 * d23 = (5 - 2.5)^2 = 6.25. D_o = 2*9 = 18 (sum over c,k of o_ck d_ck);
 * D_e sum = 2 * (9*9 + 6*30.25 + 6*6.25) = 600; alpha = 1 - 7 * 18 / 600. */
static const char long_csv[] =
    "participant,condition,batch,item,position,rating,emotion\n"
    "p1,a,0,i1,0,1,sad\np2,a,0,i1,0,1,sad\n"
    "p1,a,0,i2,1,2,sad\np2,a,0,i2,1,2,sad\n"
    "p1,a,0,i3,2,3,joyful\np2,a,0,i3,2,3,joyful\n"
    "p1,a,0,i4,3,1,joyful\np2,a,0,i4,3,2,joyful\n"
    "p3,human,0,i1,0,2,sad\np3,human,0,i2,1,,sad\n";

static void test_long_layout(void)
{
    empq_ratings *r = NULL;
    empq_error err = {0};
    CHECK_INT(empq_ratings_parse("l.csv", long_csv, sizeof long_csv - 1, EMPQ_LAYOUT_LONG, &r, &err), EMPQ_OK);
    CHECK_INT(r->n, 9);
    CHECK_INT(r->n_conds, 2);
    CHECK_INT(r->n_participants, 3);
    CHECK_INT(r->n_units, 5);
    CHECK_INT(r->r[0].sentiment, EMPQ_SENT_NEGATIVE); /* from the built-in map */
    empq_analysis *a = NULL;
    CHECK_INT(empq_analysis_compute(r, NULL, NULL, 0, &a, &err), EMPQ_OK);
    CHECK_INT(a->baseline, 1);
    CHECK_INT(a->alpha.pairable_units, 4);
    CHECK_NEAR(a->alpha.alpha, 1 - 7.0 * 18 / 600, 1e-12);
    CHECK(a->has_sentiment);
    CHECK_INT(a->n_simulated, 0);
    empq_analysis_free(&a);
    empq_ratings_free(&r);

    /* the demo's export: study_id SIMULATED on 2 of 3 ratings; the report says so on top */
    static const char sim[] = "participant,condition,item,rating,study_id\r\n"
                              "s1,human,i1,3,SIMULATED\r\ns1,gpt,i2,2,SIMULATED\r\np1,human,i3,1,STUDY42\r\n";
    CHECK_INT(empq_ratings_parse("s.csv", sim, sizeof sim - 1, EMPQ_LAYOUT_LONG, &r, &err), EMPQ_OK);
    CHECK_INT(r->n_simulated, 2);
    CHECK_INT(empq_analysis_compute(r, NULL, NULL, 0, &a, &err), EMPQ_OK);
    CHECK_INT(a->n_simulated, 2);
    empq_buf md = {0}, html = {0};
    CHECK_INT(empq_analysis_render_md(a, &md), EMPQ_OK);
    CHECK_INT(empq_analysis_render_html(a, &html), EMPQ_OK);
    CHECK(strncmp(md.data, "# empq analysis report\n\n> **SIMULATED DATA.** 2 of the 3 ratings", 64) == 0);
    const char *h1 = strstr(html.data, "<h1>"), *notice = strstr(html.data, "SIMULATED DATA.");
    CHECK(h1 != NULL && notice != NULL && notice > h1 && strstr(h1 + 1, "<h2") > notice);
    empq_buf_free(&md);
    empq_buf_free(&html);
    empq_analysis_free(&a);
    empq_ratings_free(&r);
}

static void test_report(void)
{
    empq_ratings *r = NULL;
    empq_error err = {0};
    CHECK_INT(empq_ratings_parse("t.csv", wp_csv, sizeof wp_csv - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err), EMPQ_OK);
    /* the response_<condition> columns as a corpus, from a file */
    char dir[] = "/tmp/empq-test-analysis-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/in.csv", dir);
    CHECK_INT(empq_write_file_atomic(path, wp_csv, sizeof wp_csv - 1, &err), EMPQ_OK);
    empq_corpus *c = NULL;
    CHECK_INT(empq_corpus_load_welivita(path, &c, &err), EMPQ_OK);
    CHECK_INT(c->n_sources, 2);
    CHECK_INT(c->n, 8);
    CHECK_STR(c->text[0], "Nice, \"really\"!");
    CHECK_STR(c->text[2], "line one\r\nline two?");

    /* and a responses.jsonl: a null response is skipped */
    char jpath[256];
    snprintf(jpath, sizeof jpath, "%s/responses.jsonl", dir);
    const char jl[] = "{\"source\":\"human\",\"response\":\"Oh <no> & \\\"yes\\\"\"}\n\n"
                      "{\"source\":\"m1\",\"response\":null}\n{\"source\":\"m1\",\"response\":\"Hi!\"}\n";
    CHECK_INT(empq_write_file_atomic(jpath, jl, sizeof jl - 1, &err), EMPQ_OK);
    empq_corpus *cj = NULL;
    CHECK_INT(empq_corpus_load_jsonl(jpath, &cj, &err), EMPQ_OK);
    CHECK_INT(cj->n, 2);
    CHECK_INT(cj->n_sources, 2);
    empq_corpus_free(&cj);
    const char bad[] = "{\"source\":\"a\",\"response\":\"x\"}\n{\"response\":\"y\"}\n";
    CHECK_INT(empq_write_file_atomic(jpath, bad, sizeof bad - 1, &err), EMPQ_OK);
    CHECK_INT(empq_corpus_load_jsonl(jpath, &cj, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "responses.jsonl:2: 'source' missing");
    CHECK(cj == NULL);

    empq_analysis *a = NULL;
    CHECK_INT(empq_analysis_compute(r, c, "human", 1, &a, &err), EMPQ_OK);
    CHECK_INT(a->n_sources, 2);
    CHECK_INT(a->style[0 * EMPQ_STYLE_N_FEATURES + EMPQ_STYLE_WORDS].n, 4);
    CHECK_NEAR(a->style[1 * EMPQ_STYLE_N_FEATURES + EMPQ_STYLE_HAS_QUESTION].mean, 0, 0);
    CHECK_NEAR(a->style[0 * EMPQ_STYLE_N_FEATURES + EMPQ_STYLE_HAS_QUESTION].mean, 0.25, 1e-15);

    empq_buf md = {0}, html = {0};
    CHECK_INT(empq_analysis_render_md(a, &md), EMPQ_OK);
    /* 2 of 4 and 2 of 3 Good: Wilson 95% 15.00-85.00% and 20.77-93.85% */
    CHECK_CONTAINS(md.data, "human 50% (95% CI 15\xe2\x80\x93" "85%); gpt 66.67% (95% CI 20.77\xe2\x80\x93" "93.85%), "
                            "+16.67 pp, +33.33% relative, vs human.");
    CHECK(strstr(md.data, "SIMULATED") == NULL);
    CHECK_CONTAINS(md.data, "| condition | n | Bad |");
    CHECK_CONTAINS(md.data, "not applicable: every item has a single rating");
    CHECK_INT(empq_analysis_render_html(a, &html), EMPQ_OK);
    CHECK_CONTAINS(html.data, "<!DOCTYPE html>");
    CHECK_CONTAINS(html.data, "<svg class=\"chart\"");
    CHECK(strstr(html.data, "<script") == NULL);
    empq_buf_free(&md);
    empq_buf_free(&html);

    char out[256];
    snprintf(out, sizeof out, "%s/report", dir);
    CHECK_INT(empq_analysis_write(a, out, &err), EMPQ_OK);
    static const char *const files[] = {"report.md", "report.html", "report.json", "tables/conditions.csv",
                                        "tables/chi2_overall.csv", "tables/pairwise.csv", "tables/emotions.csv",
                                        "tables/emotion_extremes.csv", "tables/sentiment.csv",
                                        "tables/sentiment_tests.csv", "tables/agreement.csv", "tables/style.csv",
                                        "tables/style_tests.csv", "tables/style_values.csv"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        char *data = NULL;
        size_t len = 0;
        CHECK_INT(empq_read_file(p, &data, &len, &err), EMPQ_OK);
        CHECK(len > 0);
        if (i == 2) /* no --spec: no cost section */
            CHECK_CONTAINS(data, "\"cost\": null");
        if (i == 3) {
            CHECK_CONTAINS(data, "condition,label,n,n_bad,n_okay,n_good,share_bad");
            CHECK_CONTAINS(data, "gpt,gpt,3,0,1,2,0,0.3333333333,0.6666666667,2.666666667");
        }
        free(data);
        unlink(p);
    }
    snprintf(path, sizeof path, "%s/tables", out);
    rmdir(path);
    rmdir(out);
    snprintf(path, sizeof path, "%s/in.csv", dir);
    unlink(path);
    unlink(jpath);
    char cmd[300]; /* what is left: the tables' schemas, the design tables */
    snprintf(cmd, sizeof cmd, "rm -r '%s'", dir);
    CHECK_INT(system(cmd), 0);

    char nb[32];
    CHECK_STR(empq_analysis_num(NAN, nb, sizeof nb), "NA");
    CHECK_STR(empq_analysis_num(0.1234567890123, nb, sizeof nb), "0.123456789");
    CHECK_STR(empq_analysis_num(1.5e-30, nb, sizeof nb), "1.5e-30");

    empq_analysis_free(&a);
    empq_corpus_free(&c);
    empq_ratings_free(&r);
}

/* The cost section: empq_cost_of at the batch and interactive prices, the
 * sums of empq_cost_compute over a crafted responses.jsonl (the human
 * source, a cache hit, a line without usage, a dead job), its errors, and
 * the rendered section and report.json. */
static void test_cost(void)
{
    static const char yaml[] =
        "name: t\n"
        "dataset: {format: synth, prompts: 10}\n"
        "template:\n"
        "  user: \"{prompt}\"\n"
        "models:\n"
        "  - alias: bat\n"
        "    provider: openai\n"
        "    base_url: http://127.0.0.1:1/v1\n"
        "    model: m\n"
        "    mode: batch\n"
        "    prices: {input_per_mtok: 2, output_per_mtok: 8, cached_input_per_mtok: 1}\n"
        "  - alias: own\n"
        "    provider: anthropic\n"
        "    base_url: http://127.0.0.1:1/v1\n"
        "    model: m\n"
        "    mode: batch\n"
        "    prices: {input_per_mtok: 3, output_per_mtok: 15, batch_input_per_mtok: 1, batch_output_per_mtok: 5}\n"
        "  - alias: int\n"
        "    provider: openai\n"
        "    base_url: http://127.0.0.1:1/v1\n"
        "    model: m\n"
        "    prices: {input_per_mtok: 3, output_per_mtok: 12, cached_input_per_mtok: 0.5}\n"
        "  - alias: free\n"
        "    provider: openai\n"
        "    base_url: http://127.0.0.1:1/v1\n"
        "    model: m\n";
    Empq__RunSpec *spec = NULL;
    empq_error err = {0};
    CHECK_INT(empq_spec_parse(yaml, sizeof yaml - 1, "t.yaml", NULL, &spec, &err), EMPQ_OK);
    CHECK_STR(spec->models[0]->alias, "human");
    const Empq__ModelSpec *bat = spec->models[1], *own = spec->models[2], *in = spec->models[3];
    /* batch: half the interactive prices by default, cached input at the batch input price */
    CHECK_NEAR(empq_cost_of(bat, 1000000, 500000, 1000000), 1.0 + 4.0, 1e-12);
    CHECK_NEAR(empq_cost_of(own, 2000000, 0, 1000000), 2.0 + 5.0, 1e-12);
    /* interactive: cached input at its own price */
    CHECK_NEAR(empq_cost_of(in, 1000000, 400000, 1000000), 0.6 * 3 + 0.4 * 0.5 + 12, 1e-12);
    CHECK_NEAR(empq_cost_of(spec->models[4], 1000000, 0, 1000000), 0, 0);
    CHECK_NEAR(empq_cost_of(NULL, 1, 0, 1), 0, 0);

    char dir[] = "/tmp/empq-test-cost-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/responses.jsonl", dir);
    const char jl[] =
        "{\"run_id\":\"r-1\",\"source\":\"human\",\"response\":\"x\",\"tokens_in\":null,\"tokens_out\":null,"
        "\"cache_hit\":false}\n"
        "{\"run_id\":\"r-1\",\"source\":\"bat\",\"response\":\"x\",\"tokens_in\":1000,\"tokens_out\":500,"
        "\"cached_tokens\":200,\"reasoning_tokens\":null,\"cache_hit\":false}\n"
        "{\"run_id\":\"r-1\",\"source\":\"bat\",\"response\":\"x\",\"tokens_in\":1000,\"tokens_out\":500,"
        "\"cache_hit\":true}\n"
        "\n"
        "{\"run_id\":\"r-1\",\"source\":\"int\",\"response\":\"x\",\"tokens_in\":1000,\"tokens_out\":700,"
        "\"cached_tokens\":400,\"reasoning_tokens\":300,\"cache_hit\":false}\n"
        "{\"run_id\":\"r-1\",\"source\":\"int\",\"response\":\"x\",\"tokens_in\":null,\"tokens_out\":null,"
        "\"cache_hit\":false}\n"
        "{\"run_id\":\"r-1\",\"source\":\"int\",\"response\":null,\"tokens_in\":null,\"tokens_out\":null,"
        "\"cache_hit\":false}\n";
    CHECK_INT(empq_write_file_atomic(path, jl, sizeof jl - 1, &err), EMPQ_OK);
    empq_cost *c = NULL;
    CHECK_INT(empq_cost_compute(spec, "t.yaml", path, &c, &err), EMPQ_OK);
    CHECK_STR(c->run_id, "r-1");
    CHECK_INT(c->n, 4); /* the human source left out */
    const empq_cost_source *b = &c->s[0], *o = &c->s[1], *i = &c->s[2], *f = &c->s[3];
    CHECK_STR(b->source, "bat");
    CHECK(b->batch && b->priced && !i->batch && i->priced && !f->priced);
    CHECK_NEAR(b->price_in, 1, 0);
    CHECK_NEAR(b->price_out, 4, 0);
    CHECK_NEAR(b->price_cached, 1, 0);
    CHECK_NEAR(o->price_in, 1, 0);
    CHECK_NEAR(o->price_out, 5, 0);
    CHECK_NEAR(i->price_cached, 0.5, 0);
    CHECK_INT(b->calls, 1);
    CHECK_INT(b->cache_hits, 1);
    CHECK_INT(b->tokens_cached, 200);
    CHECK_NEAR(b->cost, (1000 * 1.0 + 500 * 4.0) / 1e6, 1e-15);
    CHECK_INT(i->calls, 1);
    CHECK_INT(i->no_usage, 1); /* the dead job (null response) is not counted */
    CHECK_INT(i->tokens_reasoning, 300);
    CHECK_NEAR(i->cost, (600 * 3.0 + 400 * 0.5 + 700 * 12.0) / 1e6, 1e-15);
    CHECK_NEAR(c->total, b->cost + i->cost, 1e-15);
    CHECK_INT(o->calls + f->calls, 0);

    /* the section: the batch price said, the table, report.json */
    empq_ratings *r = NULL;
    CHECK_INT(empq_ratings_parse("t.csv", wp_csv, sizeof wp_csv - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err), EMPQ_OK);
    empq_analysis *a = NULL;
    CHECK_INT(empq_analysis_compute(r, NULL, "human", 0, &a, &err), EMPQ_OK);
    a->cost = c;
    empq_buf md = {0};
    CHECK_INT(empq_analysis_render_md(a, &md), EMPQ_OK);
    CHECK_CONTAINS(md.data, "## Cost");
    CHECK_CONTAINS(md.data, "bat at 1 per million input tokens and 4 per million output tokens (interactive: 2 and 8); "
                            "own at 1 per million input tokens and 5 per million output tokens (interactive: 3 and 15).");
    CHECK_CONTAINS(md.data, "| bat | batch | 1 | 1 | 1000 | 200 | 500 | 0 | in 1, out 4 | 0.0030 |");
    CHECK_CONTAINS(md.data, "| int | interactive | 1 | 0 | 1000 | 400 | 700 | 300 | in 3, cached in 0.5, out 12 | 0.0104 |");
    CHECK_CONTAINS(md.data, "| free | interactive | 0 | 0 | 0 | 0 | 0 | 0 | no prices | 0.0000 |");
    CHECK_CONTAINS(md.data, "| total |  | 2 | 1 | 2000 | 600 | 1200 | 300 |  | 0.0134 |");
    CHECK_CONTAINS(md.data, "1 responses not from the cache came without usage figures");
    empq_buf_free(&md);
    char out[256], p[320];
    snprintf(out, sizeof out, "%s/report", dir);
    CHECK_INT(empq_analysis_write(a, out, &err), EMPQ_OK);
    snprintf(p, sizeof p, "%s/report.json", out);
    char *data = NULL;
    size_t len = 0;
    CHECK_INT(empq_read_file(p, &data, &len, &err), EMPQ_OK);
    CHECK_CONTAINS(data, "\"total\": 0.013399999999999999");
    CHECK_CONTAINS(data, "\"source\": \"bat\",\n        \"mode\": \"batch\"");
    free(data);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -r '%s/report'", dir);
    CHECK_INT(system(cmd), 0);
    empq_analysis_free(&a);
    empq_ratings_free(&r);
    empq_cost_free(&c);
    empq_cost_free(&c); /* NULL after the first */

    /* errors name the file and the line */
    const char bad1[] = "{\"source\":\"bat\",\"cache_hit\":false,\"tokens_in\":1,\"tokens_out\":1}\n"
                        "{\"source\":\"gone\",\"cache_hit\":false}\n";
    CHECK_INT(empq_write_file_atomic(path, bad1, sizeof bad1 - 1, &err), EMPQ_OK);
    CHECK_INT(empq_cost_compute(spec, "t.yaml", path, &c, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "responses.jsonl:2: source 'gone' is not a model of the spec t.yaml");
    CHECK(c == NULL);
    const char bad2[] = "{\"source\":\"bat\",\"cache_hit\":false,\"tokens_in\":-1}\n";
    CHECK_INT(empq_write_file_atomic(path, bad2, sizeof bad2 - 1, &err), EMPQ_OK);
    CHECK_INT(empq_cost_compute(spec, "t.yaml", path, &c, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "responses.jsonl:1: 'tokens_in' is not a non-negative integer or null");
    const char bad3[] = "{\"source\":\"bat\"}\n";
    CHECK_INT(empq_write_file_atomic(path, bad3, sizeof bad3 - 1, &err), EMPQ_OK);
    CHECK_INT(empq_cost_compute(spec, "t.yaml", path, &c, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "responses.jsonl:1: 'cache_hit' missing or not a boolean");
    const char bad4[] = "{\"source\":\n";
    CHECK_INT(empq_write_file_atomic(path, bad4, sizeof bad4 - 1, &err), EMPQ_OK);
    CHECK_INT(empq_cost_compute(spec, "t.yaml", path, &c, &err), EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "responses.jsonl:1: invalid JSON");
    unlink(path);
    CHECK_INT(empq_cost_compute(spec, "t.yaml", path, &c, &err), EMPQ_ENOTFOUND);
    CHECK_INT(empq_cost_compute(NULL, "t.yaml", path, &c, &err), EMPQ_EINVAL);
    rmdir(dir);
    empq__run_spec__free_unpacked(spec, NULL);
}

/* lib/analysis_judge.c computes every agreement statistic from the 3 x 3
 * table (x__agree_from_confusion, internal); here it must give what the
 * direct computations of lib/stats.c give on the pairs themselves. */
void x__agree_from_confusion(const double *cm, double *v);

static void test_agree_from_confusion(void)
{
    empq_rng r;
    empq_rng_seed(&r, 5);
    for (int rep = 0; rep < 40; rep++) {
        size_t n = 5 + (size_t)empq_rng_below(&r, 60);
        int a[64], b[64], vals[128];
        size_t units[128];
        double x[64], y[64], cm[9] = {0}, v[EMPQ_AGREE_N_STATS], sa = 0, sb = 0, same = 0;
        for (size_t i = 0; i < n; i++) {
            a[i] = 1 + (int)empq_rng_below(&r, 3);
            b[i] = empq_rng_below(&r, 3) == 0 ? 1 + (int)empq_rng_below(&r, 3) : a[i]; /* mostly agreeing */
            x[i] = a[i];
            y[i] = b[i];
            cm[(a[i] - 1) * 3 + b[i] - 1] += 1;
            units[2 * i] = units[2 * i + 1] = i;
            vals[2 * i] = a[i];
            vals[2 * i + 1] = b[i];
            sa += a[i];
            sb += b[i];
            same += a[i] == b[i];
        }
        x__agree_from_confusion(cm, v);
        CHECK_NEAR(v[EMPQ_AGREE_EXACT], same / (double)n, 1e-12);
        CHECK_NEAR(v[EMPQ_AGREE_BIAS], (sb - sa) / (double)n, 1e-12);
        static const int w[3] = {EMPQ_KAPPA_NONE, EMPQ_KAPPA_LINEAR, EMPQ_KAPPA_QUADRATIC};
        for (int k = 0; k < 3; k++) {
            double want = empq_stats_kappa(a, b, n, 3, w[k]);
            if (isnan(want))
                CHECK(isnan(v[EMPQ_AGREE_KAPPA + k]));
            else
                CHECK_NEAR(v[EMPQ_AGREE_KAPPA + k], want, 1e-12);
        }
        double rho = empq_stats_spearman(x, y, n);
        if (isnan(rho))
            CHECK(isnan(v[EMPQ_AGREE_SPEARMAN]));
        else
            CHECK_NEAR(v[EMPQ_AGREE_SPEARMAN], rho, 1e-12);
        empq_alpha_result al;
        empq_error err = {0};
        CHECK_INT(empq_stats_krippendorff_ordinal(units, vals, 2 * n, &al, &err), EMPQ_OK);
        if (isnan(al.alpha))
            CHECK(isnan(v[EMPQ_AGREE_ALPHA]));
        else
            CHECK_NEAR(v[EMPQ_AGREE_ALPHA], al.alpha, 1e-12);
    }
    double none[9] = {0}, v[EMPQ_AGREE_N_STATS];
    x__agree_from_confusion(none, v);
    for (int s = 0; s < EMPQ_AGREE_N_STATS; s++)
        CHECK(isnan(v[s]));
    CHECK_STR(empq_agree_stat_name(EMPQ_AGREE_KAPPA_QUADRATIC), "kappa_quadratic");
    CHECK(empq_agree_stat_name(EMPQ_AGREE_N_STATS) == NULL);
}

static void test_stratified_subset(void)
{
    /* 3 strata of 50, 30 and 20 units; 10 chosen: 5, 3, 2 */
    int st[100];
    unsigned char ch[100], ch2[100];
    for (int i = 0; i < 100; i++)
        st[i] = i % 10 < 5 ? 7 : i % 10 < 8 ? -1 : 3;
    CHECK_INT(empq_analysis_stratified_subset(st, 100, 10, 42, ch), EMPQ_OK);
    int got[3] = {0}, total = 0;
    for (int i = 0; i < 100; i++) {
        total += ch[i];
        if (ch[i])
            got[st[i] == 7 ? 0 : st[i] == -1 ? 1 : 2]++;
    }
    CHECK_INT(total, 10);
    CHECK_INT(got[0], 5);
    CHECK_INT(got[1], 3);
    CHECK_INT(got[2], 2);
    /* seeded: the same seed the same units, another seed other units */
    CHECK_INT(empq_analysis_stratified_subset(st, 100, 10, 42, ch2), EMPQ_OK);
    CHECK(memcmp(ch, ch2, sizeof ch) == 0);
    CHECK_INT(empq_analysis_stratified_subset(st, 100, 10, 43, ch2), EMPQ_OK);
    CHECK(memcmp(ch, ch2, sizeof ch) != 0);
    /* 7 of 3 strata of sizes 1, 1, 98: largest remainders */
    int s2[100];
    for (int i = 0; i < 100; i++)
        s2[i] = i == 0 ? 0 : i == 1 ? 1 : 2;
    CHECK_INT(empq_analysis_stratified_subset(s2, 100, 7, 1, ch), EMPQ_OK);
    total = 0;
    for (int i = 0; i < 100; i++)
        total += ch[i];
    CHECK_INT(total, 7);
    CHECK_INT(empq_analysis_stratified_subset(s2, 100, 200, 1, ch), EMPQ_OK); /* k > n: all */
    CHECK_INT(ch[0] + ch[99], 2);
    CHECK_INT(empq_analysis_stratified_subset(NULL, 3, 1, 1, ch), EMPQ_EINVAL);
}

static void test_judge_labels(void)
{
    empq_judge_labels *l = NULL;
    empq_error err = {0};
    static const char ok[] = "item,condition,judge,label,sample,response\r\n"
                             "i1,a,j1,Good,1,\"Oh, that is great!\"\r\n"
                             "i1,a,j1,okay,2,\r\n"
                             "i2,a,j1, 1 ,,four words are here\r\n";
    CHECK_INT(empq_judge_labels_parse("j.csv", ok, sizeof ok - 1, &l, &err), EMPQ_OK);
    CHECK_INT(l->n, 3);
    CHECK_INT(l->l[0].value, 3);
    CHECK_INT(l->l[0].length, 4);
    CHECK_INT(l->l[1].value, 2);
    CHECK_INT(l->l[1].sample, 2);
    CHECK_INT(l->l[2].value, 1);
    CHECK_INT(l->l[2].sample, 1);
    CHECK_INT(l->l[2].length, 4);
    empq_judge_labels_free(&l);
    CHECK(l == NULL);
    static const struct {
        const char *csv, *msg;
    } bad[] = {
        {"item,condition,label\ni1,a,1\n", "j.csv:1: no 'judge' column"},
        {"item,condition,judge,label\ni1,a,j,4\n", "j.csv:2: label '4' is not 1, 2, 3, Bad, Okay or Good"},
        {"item,condition,judge,label\ni1,a,j,good\n,a,j,bad\n", "j.csv:3: empty item"},
        {"item,condition,judge,label,sample\ni1,a,j,1,x\n", "j.csv:2: sample 'x' is not a positive integer"},
        {"item,condition,judge,label,length\ni1,a,j,1,-3\n", "j.csv:2: length '-3' is not a word count"},
        {"item,condition,judge,label\ni1,a,j,1\ni1,a,j,2\n", "two labels for judge j, condition a, item i1"},
        {"item,condition,judge,label\n", "j.csv: no judge labels"},
        {"item,condition,judge,label\ni1,a\n", "j.csv:2: 2 fields, the header has 4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(empq_judge_labels_parse("j.csv", bad[i].csv, strlen(bad[i].csv), &l, &err), EMPQ_EPARSE);
        CHECK(l == NULL);
        if (strstr(err.msg, bad[i].msg) == NULL) {
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err.msg, bad[i].msg);
            exit(1);
        }
    }
}

/* The design-respecting figures on the small long-layout study: the rater
 * and item indices, item-matched pairs, and a judge on it. */
static void test_design_and_judge(void)
{
    empq_ratings *r = NULL;
    empq_error err = {0};
    CHECK_INT(empq_ratings_parse("l.csv", long_csv, sizeof long_csv - 1, EMPQ_LAYOUT_LONG, &r, &err), EMPQ_OK);
    CHECK_INT(r->n_items, 4);
    CHECK_STR(r->items[r->r[0].item], "i1");
    CHECK_INT(r->r[0].participant, 0);
    CHECK_INT(r->r[8].participant, 2);
    CHECK(r->r[8].item == r->r[0].item); /* i1 in both conditions */
    empq_analysis *a = NULL;
    CHECK_INT(empq_analysis_compute(r, NULL, NULL, 0, &a, &err), EMPQ_OK);
    const empq_design *d = a->design;
    CHECK(d != NULL && d->has_participants);
    CHECK_INT(d->cond[0].participants, 2);
    CHECK_INT(d->cond[1].participants, 1);
    /* item-matched: only i1 is rated in both (a: 1, 1; human: 2): difference -1 */
    CHECK_INT(d->cond[0].paired_n, 1);
    CHECK_NEAR(d->cond[0].paired_mean_diff, -1.0, 1e-12);
    /* a judge that says Good for i3 and Bad otherwise, on condition a */
    static const char jc[] = "item,condition,judge,label\ni1,a,j,1\ni2,a,j,1\ni3,a,j,3\ni4,a,j,1\ni9,a,j,2\n";
    empq_judge_labels *jl = NULL;
    CHECK_INT(empq_judge_labels_parse("j.csv", jc, sizeof jc - 1, &jl, &err), EMPQ_OK);
    empq_judge_opts o = {.seed = 1, .n_boot = 50};
    CHECK_INT(empq_judge_compute(a, r, jl, &o, "j.csv", &err), EMPQ_OK);
    const empq_judge_one *j = &a->judge->j[0];
    CHECK_STR(j->name, "j");
    CHECK_INT(j->n_labels, 5);
    CHECK_STR(j->ag[0].kind, "all");
    CHECK_INT(j->ag[0].n, 8);         /* 8 human ratings of a: i1..i4 twice; i9 has none */
    CHECK_INT(j->ag[0].dialogues, 4);
    /* pairs (h, j): (1,1) x2, (2,1) x2, (3,3) x2, (1,1), (2,1): 5 of 8 the same */
    CHECK_NEAR(j->ag[0].value[EMPQ_AGREE_EXACT], 5.0 / 8, 1e-12);
    CHECK_INT(j->ag[0].confusion[0], 3);
    CHECK_INT(j->ag[0].confusion[3], 3);
    CHECK_INT(j->ag[0].confusion[8], 2);
    CHECK(j->ag[0].lo[EMPQ_AGREE_EXACT] <= 5.0 / 8 && 5.0 / 8 <= j->ag[0].hi[EMPQ_AGREE_EXACT]);
    CHECK_INT(j->self_n, 0);
    /* estimates: condition a has 4 labelled responses and 1 (i9) judged only: too few unlabelled */
    o.estimate_cond = "a";
    CHECK_INT(empq_judge_compute(a, r, jl, &o, "j.csv", &err), EMPQ_EINVAL);
    CHECK(strstr(err.msg, "4 responses with human labels and 1 without") != NULL);
    CHECK(a->judge == NULL);
    o.human_subset = 2; /* keep 2 human labels: 2 labelled, 3 judged only */
    CHECK_INT(empq_judge_compute(a, r, jl, &o, "j.csv", &err), EMPQ_OK);
    j = &a->judge->j[0];
    CHECK(j->has_estimate);
    CHECK_INT(j->est_n_human, 2);
    CHECK_INT(j->est_n_judged, 3);
    o.estimate_cond = "nope";
    CHECK_INT(empq_judge_compute(a, r, jl, &o, "j.csv", &err), EMPQ_EINVAL);
    empq_judge_labels_free(&jl);
    empq_analysis_free(&a);
    empq_ratings_free(&r);
}

int main(void)
{
    RUN(test_words_and_sentences);
    RUN(test_pronouns_and_words);
    RUN(test_emojis);
    RUN(test_features);
    RUN(test_ratings_welivita);
    RUN(test_ratings_errors);
    RUN(test_long_layout);
    RUN(test_report);
    RUN(test_cost);
    RUN(test_agree_from_confusion);
    RUN(test_stratified_subset);
    RUN(test_judge_labels);
    RUN(test_design_and_judge);
    CHECK_DONE();
}
