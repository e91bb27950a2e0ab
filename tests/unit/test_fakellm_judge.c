/* test_fakellm_judge.c: the fake judges follow the documented rule
 * (fakellm/judge.h), their noise flips the set share of labels to each of
 * the two other labels evenly, the answer is a pure function of the request,
 * and the garbage and off-scale judges never give a valid verdict. */
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "judge.h"

/* (This test reads the verdicts with jansson: the strict reader,
 * empq_judge_parse, is tested in test_judge.c, and the whole path, fake
 * judge to worker to dead letter, in tests/integration/test_judge.py; its
 * header cannot be included here, where <limits.h> would find
 * fakellm/limits.h.) */

/* The label of a {"label": L, "reason": R} answer (1 Bad, 2 Okay, 3 Good),
 * the reason copied; -1 for anything else. */
static int verdict(const char *text, char *reason, size_t rlen)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    const char *l = json_string_value(json_object_get(o, "label"));
    const char *r = json_string_value(json_object_get(o, "reason"));
    int v = l == NULL ? -1 : strcmp(l, "Bad") == 0 ? 1 : strcmp(l, "Okay") == 0 ? 2 : strcmp(l, "Good") == 0 ? 3 : -1;
    if (v > 0 && (json_object_size(o) != 2 || r == NULL))
        v = -1;
    if (v > 0 && reason != NULL)
        snprintf(reason, rlen, "%s", r);
    json_decref(o);
    return v;
}

static int answer_seeded(const char *model, const char *user, long long seed, char *reason, size_t rlen)
{
    fakellm_msg msgs[2] = {{"system", "You rate responses."}, {"user", user}};
    empq_buf b = {0};
    CHECK_INT(fakellm_judge_reply(model, msgs, 2, 0, seed, &b), EMPQ_OK);
    int label = verdict(b.data, reason, rlen);
    empq_buf_free(&b);
    return label;
}

static int answer(const char *model, const char *user, char *reason, size_t rlen)
{
    return answer_seeded(model, user, 0, reason, rlen);
}

static void test_rule(void)
{
    int score = -1;
    CHECK(fakellm_judge_is_judge("fake-judge-a"));
    CHECK(!fakellm_judge_is_judge("fake-warm"));
    CHECK(!fakellm_judge_is_judge(NULL));
    CHECK_INT(fakellm_judge_rule("fake-judge-a", "Ok.", &score), 1);
    CHECK_INT(score, 0);
    /* 15 words, "you", a question: 3 of 4 */
    const char *t = "Oh no, that must have been so scary for you, what did you do after that happened?";
    CHECK_INT(fakellm_judge_rule("fake-judge-a", t, &score), 3);
    CHECK_INT(score, 3);
    CHECK_INT(fakellm_judge_rule("fake-judge-strict", t, NULL), 2);
    CHECK_INT(fakellm_judge_rule("fake-judge-lenient", "You did it.", &score), 2);
    CHECK_INT(score, 1);
    /* leading punctuation does not hide "you" */
    CHECK_INT(fakellm_judge_rule("fake-judge-lenient", "\"Your turn\"", &score), 2);
    CHECK_INT(fakellm_judge_rule("fake-judge-a", "", &score), 1);
}

static void test_reply(void)
{
    fakellm_judge_set(0, 1);
    char reason[200];
    const char *t = "Oh no, that must have been so scary for you, what did you do after that happened?";
    char user[400];
    snprintf(user, sizeof user, "Speaker: I heard a noise.\nListener: <response>%s</response>\nRate it.", t);
    CHECK_INT(answer("fake-judge-a", user, reason, sizeof reason), 3);
    CHECK_STR(reason, "score 3 of 4: 17 words, 2 you-words, 1 question");
    /* the speaker's turn outside the tags is not judged */
    CHECK_INT(answer("fake-judge-a", "Are you ok? How are you? <response>Ok.</response>", reason, sizeof reason),
              1);
    /* without tags the whole message is judged */
    CHECK_INT(answer("fake-judge-lenient", "you?", NULL, 0), 3);
    CHECK_INT(answer("fake-judge-garbage", user, NULL, 0), -1);
    CHECK_INT(answer("fake-judge-offscale", user, NULL, 0), -1);
    fakellm_msg m = {"user", user};
    empq_buf b = {0};
    CHECK_INT(fakellm_judge_reply("fake-judge-offscale", &m, 1, 0, 0, &b), EMPQ_OK);
    CHECK_STR(b.data, "{\"label\":\"Excellent\",\"reason\":\"a five-star reply\"}");
    empq_buf_free(&b);
    CHECK_INT(fakellm_judge_reply("fake-judge-garbage", &m, 1, 0, 0, &b), EMPQ_OK);
    CHECK(strchr(b.data, '{') == NULL && strstr(b.data, "Good") == NULL && strstr(b.data, "Okay") == NULL &&
          strstr(b.data, "Bad") == NULL);
    empq_buf_free(&b);
}

static void test_noise(void)
{
    /* 20,000 distinct requests of score 2 (Okay): a share P flipped, half to
     * Bad and half to Good; within 5 standard errors */
    const double p = 0.3;
    const int n = 20000;
    fakellm_judge_set(p, 7);
    int count[4] = {0};
    char user[160];
    for (int i = 0; i < n; i++) {
        snprintf(user, sizeof user, "dialogue %d <response>That sounds hard, how are you holding up?</response>", i);
        int l = answer("fake-judge-a", user, NULL, 0);
        CHECK(l >= 1 && l <= 3);
        count[l]++;
    }
    double flipped = (double)(count[1] + count[3]) / n, se = 0.00324; /* sqrt(.3 * .7 / 20000) */
    fprintf(stderr, "   noise %.2f: flipped %.4f (Bad %d, Okay %d, Good %d)\n", p, flipped, count[1], count[2],
            count[3]);
    CHECK(flipped > p - 5 * se && flipped < p + 5 * se);
    CHECK(count[1] > n * p / 2 - 400 && count[1] < n * p / 2 + 400);
    /* the same request gets the same answer; another seed other flips */
    snprintf(user, sizeof user, "dialogue 1 <response>That sounds hard, how are you holding up?</response>");
    int first = answer("fake-judge-a", user, NULL, 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(answer("fake-judge-a", user, NULL, 0), first);
    int same = 0;
    fakellm_judge_set(p, 8);
    for (int i = 0; i < 2000; i++) {
        snprintf(user, sizeof user, "dialogue %d <response>That sounds hard, how are you holding up?</response>", i);
        int l8 = answer("fake-judge-a", user, NULL, 0);
        fakellm_judge_set(p, 7);
        same += answer("fake-judge-a", user, NULL, 0) == l8;
        fakellm_judge_set(p, 8);
    }
    CHECK(same < 2000 * 0.8); /* independent draws agree in about 1 - 2p + 1.5p^2 = 0.535 */
    /* two samples (request seeds 1 and 2) of one judge agree in about
     * 1 - 2p + 1.5p^2 of the responses */
    same = 0;
    for (int i = 0; i < n; i++) {
        snprintf(user, sizeof user, "dialogue %d <response>That sounds hard, how are you holding up?</response>", i);
        same += answer_seeded("fake-judge-a", user, 1, NULL, 0) == answer_seeded("fake-judge-a", user, 2, NULL, 0);
    }
    double agree = (double)same / n, want = 1 - 2 * p + 1.5 * p * p;
    fprintf(stderr, "   samples agree %.4f (expected %.4f)\n", agree, want);
    CHECK(agree > want - 0.02 && agree < want + 0.02);
    fakellm_judge_set(0, 1);
}

int main(void)
{
    RUN(test_rule);
    RUN(test_reply);
    RUN(test_noise);
    CHECK_DONE();
}
