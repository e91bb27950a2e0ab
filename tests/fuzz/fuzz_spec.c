/* fuzz_spec: the YAML study spec (empq_spec_parse takes a buffer). A spec
 * that parses is packed as the RunSpec protobuf the broker stores, and
 * each model's alias looked up again. */
#include <stdint.h>
#include <stdlib.h>

#include "empq/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Empq__RunSpec *spec = NULL;
    empq_error err = {0};
    int rc = empq_spec_parse((const char *)data, size, "fuzz.yaml", "/nonexistent", &spec, &err);
    if (rc != EMPQ_OK) {
        if (spec != NULL || err.msg[0] == '\0')
            abort();
        return 0;
    }
    size_t n = empq__run_spec__get_packed_size(spec);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf != NULL) {
        empq__run_spec__pack(spec, buf);
        free(buf);
    }
    for (size_t i = 0; i < spec->n_models; i++)
        if (empq_spec_model_index(spec, spec->models[i]->alias) < 0)
            abort();
    empq__run_spec__free_unpacked(spec, NULL);
    return 0;
}
