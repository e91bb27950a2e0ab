/* test_template.c: placeholders, literal braces, NULL fields, errors. */
#include <stdlib.h>

#include "check.h"
#include "empq/template.h"

static Empq__Prompt sample_prompt(void)
{
    Empq__Prompt p = EMPQ__PROMPT__INIT;
    p.index = 3;
    p.id = "hit:0_conv:1";
    p.emotion = "sentimental";
    p.situation = "I remember going to the fireworks with my best friend.";
    p.prompt = "I remember going to see the fireworks with my best friend.";
    p.sentiment = "positive";
    return p;
}

static void render_ok(const char *tmpl, const Empq__Prompt *p, const char *want)
{
    char *out = NULL;
    empq_error err = {0};
    int rc = empq_template_render(tmpl, p, &out, &err);
    if (rc != EMPQ_OK)
        fprintf(stderr, "render '%s': %s\n", tmpl, err.msg);
    CHECK_INT(rc, EMPQ_OK);
    CHECK_STR(out, want);
    free(out);
}

static void test_placeholders(void)
{
    Empq__Prompt p = sample_prompt();
    render_ok("Emotion: {emotion}. Situation: {situation}\nSpeaker: {prompt}", &p,
              "Emotion: sentimental. Situation: I remember going to the fireworks with my best friend.\n"
              "Speaker: I remember going to see the fireworks with my best friend.");
    render_ok("{id}/{sentiment}", &p, "hit:0_conv:1/positive");
    render_ok("{emotion}{emotion}", &p, "sentimentalsentimental");
    render_ok("no placeholders at all", &p, "no placeholders at all");
    render_ok("", &p, "");
    CHECK_INT(empq_template_check("{emotion} {situation} {prompt} {id} {sentiment}", NULL), EMPQ_OK);
}

static void test_braces(void)
{
    Empq__Prompt p = sample_prompt();
    render_ok("{{emotion}}", &p, "{emotion}");
    render_ok("{{{emotion}}}", &p, "{sentimental}");
    render_ok("JSON: {{\"reply\": \"...\"}} for {id}", &p, "JSON: {\"reply\": \"...\"} for hit:0_conv:1");
    render_ok("}}{{", &p, "}{");
}

static void test_null_fields(void)
{
    Empq__Prompt p = EMPQ__PROMPT__INIT;
    p.prompt = "Hello";
    render_ok("[{emotion}|{situation}|{prompt}|{id}|{sentiment}]", &p, "[||Hello||]");
}

static void bad(const char *tmpl, const char *want)
{
    empq_error err = {0};
    CHECK_INT(empq_template_check(tmpl, &err), EMPQ_ESPEC);
    CHECK_CONTAINS(err.msg, want);
    Empq__Prompt p = sample_prompt();
    char *out = (char *)"untouched";
    empq_error err2 = {0};
    CHECK_INT(empq_template_render(tmpl, &p, &out, &err2), EMPQ_ESPEC);
    CHECK(out == NULL);
    CHECK_STR(err2.msg, err.msg);
}

static void test_errors(void)
{
    bad("Hi {emotions}", "unknown placeholder '{emotions}' at character 4");
    bad("{Emotion}", "unknown placeholder '{Emotion}'");
    bad("{ emotion }", "unknown placeholder '{ emotion }'");
    bad("{}", "unknown placeholder '{}'");
    bad("a { b", "unmatched '{' at character 3");
    bad("a {emotion", "unmatched '{' at character 3");
    bad("{situation {emotion}", "unmatched '{' at character 1");
    bad("x } y", "unmatched '}' at character 3");
    bad("{emotion}}", "unmatched '}' at character 10");
    empq_error err = {0};
    CHECK_INT(empq_template_check(NULL, &err), EMPQ_EINVAL);
    char *out = NULL;
    CHECK_INT(empq_template_render("x", NULL, &out, &err), EMPQ_EINVAL);
    CHECK(out == NULL);
    /* a NULL err is allowed */
    CHECK_INT(empq_template_check("{nope}", NULL), EMPQ_ESPEC);
}

int main(void)
{
    RUN(test_placeholders);
    RUN(test_braces);
    RUN(test_null_fields);
    RUN(test_errors);
    CHECK_DONE();
}
