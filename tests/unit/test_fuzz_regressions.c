/* test_fuzz_regressions: inputs the fuzz targets (tests/fuzz) found, run
 * through the real decoders in every build (no clang needed), so a fixed
 * finding stays fixed. tests/fuzz/README.md lists the findings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "empq.pb-c.h"
#include "empq/analysis.h"

/* fuzz_ratings: a header with the same rating_<condition> column twice
 * indexed past the condition list (lib/analysis.c load_welivita, SEGV). */
static void test_ratings_duplicate_condition(void)
{
    empq_ratings *r = NULL;
    empq_error err = {0};
    const char dup[] = "dialog_id,rating_human,rating_gpt,rating_human\r\nd1,1,2,3\r\n";
    CHECK_INT(empq_ratings_parse("dup.csv", dup, sizeof dup - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err),
              EMPQ_EPARSE);
    CHECK_CONTAINS(err.msg, "dup.csv:1: column 'rating_human' appears twice");
    CHECK(r == NULL);

    /* distinct conditions still load */
    const char ok[] = "dialog_id,rating_human,rating_gpt\nd1,1,2\n";
    CHECK_INT(empq_ratings_parse("ok.csv", ok, sizeof ok - 1, EMPQ_LAYOUT_WELIVITA_PU, &r, &err), EMPQ_OK);
    CHECK_INT(r->n_conds, 2);
    CHECK_INT(r->n, 2);
    empq_ratings_free(&r);
}

/* fuzz_wire_*: field number 0 inside a message; protobuf-c 1.4.1 accepts it
 * as an unknown field. Decoding and freeing must stay clean (ASan builds). */
static void test_wire_field_zero(void)
{
    static const uint8_t worker[] = {0x1a, 0x07, 0x08, 0x00, 0x80, 0x00, 0xff, 0xbc, 0x31};
    static const uint8_t broker[] = {0x80, 0x00, 0x1a, 0x1a, 0x00, 0x1a, 0x00};
    static const uint8_t control[] = {0x82, 0x00, 0x00, 0x12, 0x00};
    Empq__WorkerMsg *w = empq__worker_msg__unpack(NULL, sizeof worker, worker);
    if (w != NULL)
        empq__worker_msg__free_unpacked(w, NULL);
    Empq__BrokerMsg *b = empq__broker_msg__unpack(NULL, sizeof broker, broker);
    if (b != NULL)
        empq__broker_msg__free_unpacked(b, NULL);
    Empq__ControlRequest *c = empq__control_request__unpack(NULL, sizeof control, control);
    if (c != NULL)
        empq__control_request__free_unpacked(c, NULL);
    CHECK(1);
}

int main(void)
{
    RUN(test_ratings_duplicate_condition);
    RUN(test_wire_field_zero);
    CHECK_DONE();
}
