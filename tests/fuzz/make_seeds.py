#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Run once (the outputs are committed); safe to run again. Protobuf seeds are
encoded here by hand (no protobuf Python module needed); CSV, JSONL and YAML
seeds come from tests/data/ and studies/, plus small crafted inputs."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "corpus")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_double(field, x):
    return varint(field << 3 | 1) + struct.pack("<d", x)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def copy(target, path):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(SRC, path), os.path.join(d, os.path.basename(path)))


# --- WorkerMsg ---------------------------------------------------------------
hello = f_bytes(1, "w-1") + f_bytes(2, "node7") + f_varint(3, 4242) + f_varint(4, 64) + \
    f_bytes(5, "gpt-4") + f_bytes(5, "mixtral")
outcome = lambda job, kind, extra=b"": f_bytes(1, "r-20260101-000000-abcd") + f_varint(2, job) + \
    f_varint(3, kind) + extra
outcomes = b"".join(f_bytes(1, o) for o in [
    outcome(0, 0, f_varint(7, 120) + f_varint(8, 1) + f_varint(9, 850) + f_varint(10, 40) + f_varint(11, 80)),
    outcome(1, 1, f_varint(4, 2000) + f_bytes(5, "429 rate limited") + f_varint(6, 429)),
    outcome(2, 2, f_bytes(5, "401 unauthorized") + f_varint(6, 401)),
    outcome(3, 3)])
write("fuzz_wire_worker", "hello", f_bytes(1, hello))
write("fuzz_wire_worker", "outcomes", f_bytes(2, outcomes))
write("fuzz_wire_worker", "heartbeat", f_bytes(3, f_varint(1, 1700000000000)))
write("fuzz_wire_worker", "bye", f_bytes(4, f_bytes(1, "SIGTERM")))

# --- BrokerMsg ---------------------------------------------------------------
jobs = f_bytes(1, "r-20260101-000000-abcd") + b"".join(
    f_bytes(2, f_varint(1, i) + f_varint(2, i // 5) + f_varint(3, i % 5) + f_varint(4, 0) + f_varint(5, 1))
    for i in range(6)) + f_varint(3, 1)
write("fuzz_wire_broker", "welcome", f_bytes(1, f_varint(1, 1000) + f_varint(2, 600000)))
write("fuzz_wire_broker", "jobs", f_bytes(2, jobs))
write("fuzz_wire_broker", "heartbeat", f_bytes(3, f_varint(1, 1)))
write("fuzz_wire_broker", "shutdown", f_bytes(4, f_bytes(1, "stopping")))
write("fuzz_wire_broker", "reject", f_bytes(5, b""))

# --- ControlRequest: a oneof (proto/empq.proto) -----------------------------------
RUN = "r-20260101-000000-abcd"
for field, kind in [(1, "submit"), (2, "status"), (3, "cancel"), (6, "pause"), (7, "resume"),
                    (8, "requeue_dead")]:
    write("fuzz_wire_control", kind, f_bytes(field, RUN))
write("fuzz_wire_control", "status_all", f_bytes(2, ""))
write("fuzz_wire_control", "ping", f_varint(4, 1))
write("fuzz_wire_control", "workers", f_varint(5, 1))

# --- datasets ------------------------------------------------------------------
for f in ["dataset_wp_small.csv", "dataset_wp_lf.csv", "dataset_wp_bad_emotion.csv",
          "dataset_wp_bad_fields.csv", "dataset_wp_missing_column.csv", "dataset_wp_stray_quote.csv",
          "dataset_wp_unterminated.csv"]:
    copy("fuzz_dataset_wp", "tests/data/" + f)
write("fuzz_dataset_wp", "bom_crlf.csv",
      "\ufeffpart_no,dialog_id,emotion,sentiment,situation,speaker_uttr,response_human\r\n"
      "1,d1,Joyful,positive,\"a \"\"quoted\"\"\r\nsituation\",hi,\r\n")
for f in ["dataset_ed_small.csv", "dataset_ed_bad_emotion.csv", "dataset_ed_bad_fields.csv"]:
    copy("fuzz_dataset_ed", "tests/data/" + f)
for f in ["dataset_small.jsonl", "dataset_bad_json.jsonl", "dataset_duplicate_id.jsonl",
          "dataset_missing_prompt.jsonl", "dataset_not_object.jsonl", "dataset_wrong_type.jsonl",
          "dataset_bad_emotion.jsonl"]:
    copy("fuzz_dataset_jsonl", "tests/data/" + f)
write("fuzz_dataset_jsonl", "unicode.jsonl",
      json.dumps({"id": "u\u00e9", "emotion": "TRUSTING", "prompt": "\u2603 \ud83d\ude00",
                  "situation": "", "human": None}) + "\n\n")

# --- spec ------------------------------------------------------------------------
for f in ["tests/data/spec_full.yaml", "tests/data/spec_bad_nested.yaml",
          "tests/data/spec_relative.yaml", "studies/demo.yaml", "studies/empathy-4llm.yaml",
          "studies/welivita-pu-2024.yaml"]:
    copy("fuzz_spec", f)

# --- provider replies: byte 0 status pick (0 = 200, 11 = 429, 12 = 500), byte 1 flags ----
openai_ok = json.dumps({"id": "c1", "model": "gpt-4-0613", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "That sounds hard."},
     "finish_reason": "stop"}], "usage": {"prompt_tokens": 20, "completion_tokens": 5}})
openai_refusal = json.dumps({"model": "gpt-4o", "choices": [
    {"message": {"role": "assistant", "content": None, "refusal": "I can't help."},
     "finish_reason": "stop"}]})
openai_filter = json.dumps({"choices": [{"message": {"content": None}, "finish_reason": "content_filter"}]})
openai_err = json.dumps({"error": {"message": "Incorrect API key sk-fuzz-secret-key-0123456789",
                                   "type": "invalid_request_error", "code": "invalid_api_key"}})
anth_ok = json.dumps({"id": "m1", "type": "message", "model": "claude-3", "role": "assistant",
                      "content": [{"type": "text", "text": "I'm sorry."}], "stop_reason": "end_turn",
                      "usage": {"input_tokens": 10, "output_tokens": 4}})
anth_refusal = json.dumps({"type": "message", "content": [{"type": "text", "text": "No."}],
                           "stop_reason": "refusal"})
anth_err = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
gem_ok = json.dumps({"candidates": [{"content": {"parts": [{"text": "Oh no."}], "role": "model"},
                                     "finishReason": "STOP"}],
                     "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3},
                     "modelVersion": "gemini-pro"})
gem_block = json.dumps({"promptFeedback": {"blockReason": "SAFETY"}})
gem_safety = json.dumps({"candidates": [{"finishReason": "SAFETY"}]})
for t, bodies in [("fuzz_provider_openai", [openai_ok, openai_refusal, openai_filter, openai_err]),
                  ("fuzz_provider_azure", [openai_ok, openai_filter, openai_err]),
                  ("fuzz_provider_anthropic", [anth_ok, anth_refusal, anth_err]),
                  ("fuzz_provider_gemini", [gem_ok, gem_block, gem_safety, openai_err])]:
    for i, b in enumerate(bodies):
        write(t, f"ok{i}", bytes([0, 0]) + b.encode())
    write(t, "err401", bytes([5, 0]) + bodies[-1].encode())
    write(t, "r429_retry_after", bytes([11, 2]) + b"120\n" + bodies[-1].encode())
    write(t, "r503_date", bytes([14, 6]) + b"Wed, 21 Oct 2015 07:28:00 GMT\n1500\n")
    write(t, "truncated", bytes([0, 1]) + bodies[0].encode()[:40])
    write(t, "no_reply", bytes([15, 8]))

# --- ratings: byte 0 even = welivita-pu wide layout, odd = long layout ------------------
write("fuzz_ratings", "wide.csv", b"\x00" +
      b"part_no,dialog_id,emotion,sentiment,response_human,response_gpt,rating_human,rating_gpt\r\n"
      b"0,d1,afraid,negative,\"Oh, no\",\"That is \"\"scary\"\"\",3,2\r\n"
      b"1,d2,joyful,positive,Nice,Great!,1,\r\n")
write("fuzz_ratings", "long.csv", b"\x01" +
      b"participant,condition,batch,item,position,rating,emotion,sentiment\n"
      b"p1,human,b1,d1,1,3,afraid,negative\np1,gpt,b1,d2,2,1,joyful,positive\n"
      b"p2,human,b2,d1,1,2,afraid,negative\n")
write("fuzz_ratings", "bad.csv", b"\x00dialog_id,rating_a\n\"x,1\n")

# --- regression inputs: field number 0 inside a nested message (protobuf-c accepts
# it on unpack, refuses its own repacked bytes; found by the first runs) -----------
write("fuzz_wire_worker", "field0_nested", bytes([0x1a, 0x07, 0x08, 0x00, 0x80, 0x00, 0xff, 0xbc, 0x31]))
write("fuzz_wire_broker", "field0_nested", bytes([0x80, 0x00, 0x1a, 0x1a, 0x00, 0x1a, 0x00]))
write("fuzz_wire_control", "field0", bytes([0x82, 0x00, 0x00, 0x12, 0x00]))
# a rating_<condition> column twice (lib/analysis.c indexed past its conditions; fixed)
write("fuzz_ratings", "dup_condition.csv", b"\x00dialog_id,rating_human,rating_gpt,rating_human\r\n"
      b"d1,1,2,3\r\n")
