/* fuzz_dataset: the dataset loaders (lib/dataset.c, lib/dataset_csv.c).
 *
 * Built three times with FUZZ_DATASET_FORMAT = "welivita-pu",
 * "empatheticdialogues" or "jsonl". empq_dataset_load reads a path, so
 * each input is written to one memory file (memfd) and loaded through
 * /proc/self/fd/N: the real entry point, no copy of the parser. A loaded
 * dataset is checked (every dialogue has an id, an emotion among the 32
 * labels and a prompt) and selected from, as a study would. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "empq/dataset.h"

#ifndef FUZZ_DATASET_FORMAT
#define FUZZ_DATASET_FORMAT "jsonl"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("fuzz_dataset", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    empq_dataset *ds = NULL;
    empq_error err = {0};
    int rc = empq_dataset_load(path, FUZZ_DATASET_FORMAT, &ds, &err);
    if (rc != EMPQ_OK) {
        if (ds != NULL || err.msg[0] == '\0')
            abort(); /* a failure leaves *out NULL and says why */
        return 0;
    }
    for (size_t i = 0; i < ds->n; i++) {
        const empq_dialogue *d = &ds->items[i];
        if (d->id == NULL || d->prompt == NULL || d->situation == NULL ||
            empq_emotion_index(d->emotion) < 0)
            abort();
    }
    size_t *idx = NULL, n = 0;
    if (empq_dataset_select(ds, ds->n / 2, 42, 1, &idx, &n, &err) == EMPQ_OK)
        free(idx);
    empq_dataset_free(&ds);
    return 0;
}
