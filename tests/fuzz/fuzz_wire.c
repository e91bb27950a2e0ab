/* fuzz_wire: the protobuf messages that arrive from the network.
 *
 * Built three times (FUZZ_WIRE_MSG = 0, 1, 2): WorkerMsg (what the broker
 * reads from workers), BrokerMsg (what a worker reads from the broker),
 * ControlRequest (what the broker reads from the CLI). Each input is one
 * frame, decoded as lib/wire.c does (size cap EMPQ_WIRE_MAX_MSG, then
 * protobuf_c_message_unpack); a message that decodes is walked (packed
 * again: the packed size must match what pack writes) and freed.
 *
 * Not checked: that the repacked bytes decode again. protobuf-c 1.4.1
 * accepts (and keeps, as an unknown field) a field number 0 inside a nested
 * message, which it then refuses when reading its own output; empq never
 * repacks a received message, so that is no empq fault (tests/fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "empq.pb-c.h"
#include "empq/wire.h"

#ifndef FUZZ_WIRE_MSG
#define FUZZ_WIRE_MSG 0
#endif

#if FUZZ_WIRE_MSG == 0
#define FUZZ_DESC empq__worker_msg__descriptor
#elif FUZZ_WIRE_MSG == 1
#define FUZZ_DESC empq__broker_msg__descriptor
#else
#define FUZZ_DESC empq__control_request__descriptor
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > EMPQ_WIRE_MAX_MSG)
        return 0;
    ProtobufCMessage *m = protobuf_c_message_unpack(&FUZZ_DESC, NULL, size, data);
    if (m == NULL)
        return 0;
    /* A decoded message must be packable and decode again. */
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf != NULL) {
        size_t w = protobuf_c_message_pack(m, buf);
        if (w != n)
            abort();
        ProtobufCMessage *again = protobuf_c_message_unpack(&FUZZ_DESC, NULL, w, buf);
        if (again != NULL)
            protobuf_c_message_free_unpacked(again, NULL);
        free(buf);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
