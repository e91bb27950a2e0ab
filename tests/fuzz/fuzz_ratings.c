/* fuzz_ratings: the ratings CSV of lib/analysis.c (empq_ratings_parse takes
 * a buffer). Byte 0 picks the layout (even: welivita-pu wide, odd: long);
 * the rest is the CSV. Parsed ratings are checked: every index within its
 * array, every value 1..3. */
#include <stdint.h>
#include <stdlib.h>

#include "empq/analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    empq_ratings_layout layout = (data[0] & 1) ? EMPQ_LAYOUT_LONG : EMPQ_LAYOUT_WELIVITA_PU;
    /* Its own allocation without a terminating NUL, so a read past the end
     * is seen. */
    size_t n = size - 1;
    char *csv = malloc(n > 0 ? n : 1);
    if (csv == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        csv[i] = (char)data[i + 1];
    empq_ratings *r = NULL;
    empq_error err = {0};
    int rc = empq_ratings_parse("fuzz.csv", csv, n, layout, &r, &err);
    free(csv);
    if (rc != EMPQ_OK) {
        if (r != NULL || err.msg[0] == '\0')
            abort();
        return 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        const empq_rating *x = &r->r[i];
        if (x->cond >= r->n_conds || x->unit >= r->n_units || x->value < 1 || x->value > 3 ||
            x->emotion >= (int)r->n_emotions)
            abort();
    }
    empq_ratings_free(&r);
    return 0;
}
