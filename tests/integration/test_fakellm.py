"""Black-box test of empq-fakellm over real HTTP.

Starts the real binary on a free port (--port 0 --port-file), then checks the
OpenAI chat-completions response shape field by field, determinism, that the
fake models' styles differ, the error shapes (400/401/404/413), /stats, and
that latency is served concurrently (suspend/resume, not one at a time).
Stdlib only. Every process started here is killed by pid in a finally block.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN = os.path.join(os.environ.get("EMPQ_BIN", "/work/main/build-fakellm/bin"), "empq-fakellm")
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, file=sys.stderr)


class Server:
    """One empq-fakellm process on a free port."""

    def __init__(self, *args):
        self.tmp = tempfile.TemporaryDirectory(prefix="fakellm-")
        self.port_file = os.path.join(self.tmp.name, "port")
        self.log = open(os.path.join(self.tmp.name, "log"), "w+")
        self.proc = subprocess.Popen(
            [BIN, "--port", "0", "--port-file", self.port_file, *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("empq-fakellm did not start: " + self.logs())
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())
        self.base = "http://127.0.0.1:%d" % self.port

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        """SIGTERM by pid; returns the exit status (kills after 5 s)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self.tmp.cleanup()
        return self.proc.returncode


def request(srv, method, path, body=None, headers=None, raw=None):
    """Returns (status, parsed JSON or None, raw bytes, headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(srv.base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        payload, status, hdrs = e.read(), e.code, e.headers
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = None
    return status, doc, payload, hdrs


def chat(srv, model, content, headers=None, **params):
    body = {"model": model, "messages": [{"role": "system", "content": "You are kind."},
                                         {"role": "user", "content": content}], **params}
    return request(srv, "POST", "/v1/chat/completions", body, headers)


PROMPT = "I felt so lonely when my wife was out of town for a week."


def check_shape(doc, model):
    check(isinstance(doc, dict), "completion is an object")
    check(list(doc.keys()) == ["id", "object", "created", "model", "system_fingerprint", "choices", "usage"],
          "completion keys in order: %r" % list(doc.keys()))
    check(isinstance(doc["id"], str) and re.fullmatch(r"chatcmpl-[0-9A-Za-z]{20,}", doc["id"]), "id chatcmpl-...")
    check(doc["object"] == "chat.completion", "object chat.completion")
    check(type(doc["created"]) is int and abs(doc["created"] - time.time()) < 120, "created is unix seconds")
    check(doc["model"] == model, "model echoed")
    check(isinstance(doc["system_fingerprint"], str) and doc["system_fingerprint"].startswith("fp_"),
          "system_fingerprint fp_...")
    check(isinstance(doc["choices"], list) and len(doc["choices"]) == 1, "one choice")
    ch = doc["choices"][0]
    check(list(ch.keys()) == ["index", "message", "logprobs", "finish_reason"], "choice keys %r" % list(ch.keys()))
    check(ch["index"] == 0 and ch["logprobs"] is None and ch["finish_reason"] == "stop", "choice values")
    check(list(ch["message"].keys()) == ["role", "content", "refusal"], "message keys")
    check(ch["message"]["refusal"] is None, "refusal null")
    check(ch["message"]["role"] == "assistant", "role assistant")
    check(isinstance(ch["message"]["content"], str) and ch["message"]["content"], "content non-empty string")
    u = doc["usage"]
    check(list(u.keys()) == ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                             "completion_tokens_details"], "usage keys")
    check(all(type(u[k]) is int and u[k] > 0 for k in ("prompt_tokens", "completion_tokens", "total_tokens")),
          "usage ints")
    check(u["completion_tokens_details"]["reasoning_tokens"] == 0, "no reasoning tokens")
    check(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], "total = prompt + completion")
    check(u["completion_tokens"] == len(ch["message"]["content"].split()), "completion tokens are words")


def check_error(status, doc, want_status, want_code=None, want_param=None, label=""):
    check(status == want_status, "%s: status %s, want %s" % (label, status, want_status))
    ok = (isinstance(doc, dict) and list(doc.keys()) == ["error"]
          and list(doc["error"].keys()) == ["message", "type", "param", "code"])
    check(ok, "%s: error shape %r" % (label, doc))
    if ok:
        e = doc["error"]
        check(isinstance(e["message"], str) and e["message"], label + ": message")
        check(e["type"] == "invalid_request_error", label + ": type")
        check(e["code"] == want_code, "%s: code %r want %r" % (label, e["code"], want_code))
        check(e["param"] == want_param, "%s: param %r want %r" % (label, e["param"], want_param))


def emojis(s):
    return sum(1 for c in s if ord(c) >= 0x1F300)


def test_basics():
    srv = Server()
    try:
        status, doc, raw, hdrs = chat(srv, "fake-warm", PROMPT)
        check(status == 200, "chat 200")
        check(hdrs.get("Content-Type") == "application/json", "content type json")
        check_shape(doc, "fake-warm")

        # Determinism: byte-identical content; ids differ per response.
        again = chat(srv, "fake-warm", PROMPT)[1]
        check(again["choices"][0]["message"]["content"] == doc["choices"][0]["message"]["content"],
              "same request, same content")
        check(again["id"] != doc["id"], "ids unique per response")
        check(again["usage"] == doc["usage"], "same usage")

        # Styles differ, and each is recognisable.
        replies = {m: chat(srv, m, PROMPT)[1]["choices"][0]["message"]["content"]
                   for m in ("fake-warm", "fake-formal", "fake-brief", "fake-curious", "other-model")}
        check(len(set(replies.values())) == 5, "five models, five replies")
        w, f, b, c, n = (replies[m] for m in ("fake-warm", "fake-formal", "fake-brief", "fake-curious", "other-model"))
        check(1 <= emojis(w) <= 3 and "!" in w, "warm: emojis and '!': " + w)
        check(emojis(f) == 0 and "!" not in f and ("I'm sorry to hear" in f or "I apologize" in f), "formal: " + f)
        check(len(b.split()) <= 12 and "?" not in b and emojis(b) == 0, "brief: " + b)
        check(2 <= c.count("?") <= 3 and "thank you for sharing" in c.lower(), "curious: " + c)
        check(emojis(n) == 0 and "!" not in n, "neutral: " + n)
        check(len(f.split()) > 3 * len(b.split()), "formal longer than brief")
        # The reply echoes the prompt's words.
        check("wife" in f, "formal echoes the prompt")
        # A different prompt, a different reply.
        other = chat(srv, "fake-warm", "My dog died last week.")[1]["choices"][0]["message"]["content"]
        check(other != w, "different prompt, different reply")

        # max_tokens cuts to that many words with finish_reason length.
        doc = chat(srv, "fake-formal", PROMPT, max_tokens=5)[1]
        check(doc["choices"][0]["finish_reason"] == "length", "max_tokens: finish length")
        check(doc["choices"][0]["message"]["content"] == " ".join(f.split()[:5]), "max_tokens: first 5 words")
        check(doc["usage"]["completion_tokens"] == 5, "max_tokens: 5 completion tokens")
        doc = chat(srv, "fake-brief", PROMPT, max_tokens=1000, temperature=0.7, top_p=1, seed=42, stop=None)[1]
        check(doc["choices"][0]["finish_reason"] == "stop", "large max_tokens: finish stop")
        check(doc["choices"][0]["message"]["content"] == b, "parameters do not change content")

        # Errors.
        st, doc, _, _ = request(srv, "POST", "/v1/chat/completions", raw=b"{not json")
        check_error(st, doc, 400, label="malformed json")
        st, doc, _, _ = request(srv, "POST", "/v1/chat/completions", {"model": "fake-warm"})
        check_error(st, doc, 400, "missing_required_parameter", "messages", "missing messages")
        st, doc, _, _ = request(srv, "POST", "/v1/chat/completions", {"model": "fake-warm", "messages": []})
        check_error(st, doc, 400, "empty_array", "messages", "empty messages")
        st, doc, _, _ = chat(srv, "fake-warm", PROMPT, temperature=3)
        check_error(st, doc, 400, "decimal_above_max_value", "temperature", "temperature 3")
        st, doc, _, _ = request(srv, "GET", "/v1/nothing-here")
        check_error(st, doc, 404, label="unknown path")
        check("/v1/nothing-here" in doc["error"]["message"], "404 names the path")
        st, doc, _, _ = request(srv, "GET", "/v1/chat/completions")
        check_error(st, doc, 404, label="wrong method")
        st, doc, _, _ = request(srv, "POST", "/v1/chat/completions", raw=b"x" * (1024 * 1024 + 10))
        check_error(st, doc, 413, "request_too_large", label="body over 1 MiB")

        # Stats: 10 completions (warm 4, formal 2, brief 2, curious 1, other 1) and 7 errors so far.
        st, stats, _, _ = request(srv, "GET", "/stats")
        check(st == 200, "stats 200")
        check(list(stats.keys()) == ["requests", "by_model", "errors", "in_flight", "max_in_flight", "hung",
                                     "faults", "models", "batches"],
              "stats keys %r" % list(stats.keys()))
        check(stats["faults"] == {k: 0 for k in ("429", "500", "503", "hang", "reset", "malformed", "truncated",
                                                  "huge", "refusal", "empty", "null", "thinking-only",
                                                  "length-empty", "safety", "quota", "stall")},
              "no faults: %r" % stats["faults"])
        check(stats["models"]["fake-warm"]["requests"] == 4 and stats["models"]["fake-warm"]["limit"] is None,
              "models: %r" % stats["models"].get("fake-warm"))
        check(stats["requests"] == 10, "stats requests %r" % stats["requests"])
        check(stats["by_model"] == {"fake-warm": 4, "fake-formal": 2, "fake-brief": 2, "fake-curious": 1,
                                    "other-model": 1}, "by_model %r" % stats["by_model"])
        check(stats["errors"] == 7, "stats errors %r" % stats["errors"])
        check(stats["in_flight"] == 0 and stats["max_in_flight"] >= 1, "in_flight gauge")
        st, stats, _, _ = request(srv, "POST", "/stats/reset", raw=b"")
        check(st == 200 and stats["requests"] == 0 and stats["by_model"] == {} and stats["errors"] == 0,
              "reset zeroes: %r" % stats)
        chat(srv, "fake-brief", PROMPT)
        stats = request(srv, "GET", "/stats")[1]
        check(stats["requests"] == 1 and stats["by_model"] == {"fake-brief": 1}, "counts after reset")

        check(srv.stop() == 0, "SIGTERM: exit 0")
    finally:
        srv.stop()


def test_auth():
    srv = Server("--require-key", "sk-test-123456789")
    try:
        st, doc, _, _ = chat(srv, "fake-warm", PROMPT)
        check_error(st, doc, 401, "invalid_api_key", label="no key")
        st, doc, _, _ = chat(srv, "fake-warm", PROMPT, headers={"Authorization": "Bearer sk-wrong-999999999"})
        check_error(st, doc, 401, "invalid_api_key", label="wrong key")
        check("sk-wrong" not in doc["error"]["message"], "wrong key not echoed in full")
        st, doc, _, _ = chat(srv, "fake-warm", PROMPT, headers={"Authorization": "sk-test-123456789"})
        check_error(st, doc, 401, "invalid_api_key", label="not bearer")
        st, doc, _, _ = chat(srv, "fake-warm", PROMPT, headers={"Authorization": "Bearer sk-test-123456789"})
        check(st == 200, "right key: 200")
        check_shape(doc, "fake-warm")
        check(request(srv, "GET", "/stats")[0] == 200, "stats needs no key")
    finally:
        srv.stop()


def test_flags():
    for args, what in ((["--port", "70000"], "port out of range"), (["--bogus"], "unknown flag"),
                       (["--latency-ms", "abc"], "non-numeric latency"), (["--port"], "missing value"),
                       (["--model-fault", "fake-a:bogus=0.5"], "unknown model fault kind"),
                       (["--model-fault", "fake-a:quota"], "model fault without P"),
                       (["--model-fault", "fake-a:quota=2"], "model fault P over 1"),
                       (["--model-fault", "fake-a:quota=0.6", "--model-fault", "fake-a:429=0.6"],
                        "model faults over 1"),
                       (["--fault-quota", "0.6", "--model-fault", "fake-a:null=0.6"], "global + model over 1")):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=10)
        check(p.returncode == 2, "%s: exit 2, got %d" % (what, p.returncode))
        first = p.stderr.split("\n", 1)[0]  # the one line of the error, then the usage
        check(first.startswith("empq-fakellm: ") and len(first) < 200, "%s: one clear message: %r" % (what, p.stderr))
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and "--latency-ms" in p.stdout, "--help")
    # A port already in use: a clear failure, not a hang.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        p = subprocess.run([BIN, "--port", str(s.getsockname()[1])], capture_output=True, text=True, timeout=10)
        check(p.returncode == 1 and "start_failed" in p.stderr, "port in use: exit 1 (%r)" % p.stderr)


def test_latency(n=200, latency_ms=200):
    srv = Server("--latency-ms", str(latency_ms))
    try:
        # Warm up one connection so process start-up is not measured.
        t0 = time.monotonic()
        st = chat(srv, "fake-warm", PROMPT)[0]
        one = time.monotonic() - t0
        check(st == 200 and one >= latency_ms / 1000.0, "one request waits the latency (%.3f s)" % one)
        request(srv, "POST", "/stats/reset", raw=b"")

        # n clients, each on its own connection, released together.
        body = json.dumps({"model": "fake-curious", "messages": [{"role": "user", "content": PROMPT}]})
        conns = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30) for _ in range(n)]
        for c in conns:
            c.connect()
        results = [None] * n
        gate = threading.Barrier(n + 1)

        def client(i):
            gate.wait()
            try:
                conns[i].request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
                r = conns[i].getresponse()
                results[i] = (r.status, r.read())
            except OSError as e:
                results[i] = (0, str(e).encode())

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        gate.wait()
        t0 = time.monotonic()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        for c in conns:
            c.close()

        ok = sum(1 for r in results if r and r[0] == 200)
        contents = {json.loads(r[1])["choices"][0]["message"]["content"] for r in results if r and r[0] == 200}
        print("latency: %d requests at %d ms in %.3f s" % (n, latency_ms, wall), file=sys.stderr)
        check(ok == n, "all %d answered 200 (%d)" % (n, ok))
        check(len(contents) == 1, "identical requests, identical content under load")
        check(wall >= latency_ms / 1000.0 * 0.95, "requests waited the latency (%.3f s)" % wall)
        check(wall < 2 * latency_ms / 1000.0, "%d concurrent requests not serialized: %.3f s" % (n, wall))
        stats = request(srv, "GET", "/stats")[1]
        check(stats["requests"] == n, "stats counted %r" % stats["requests"])
        check(stats["max_in_flight"] >= 150, "max_in_flight %r >= 150" % stats["max_in_flight"])
        check(stats["in_flight"] == 0, "nothing left in flight")
    finally:
        srv.stop()


def test_stop_while_waiting():
    """SIGTERM with delayed responses pending: they are sent, then exit 0."""
    srv = Server("--latency-ms", "30000")
    try:
        results = []

        def client():
            results.append(chat(srv, "fake-brief", PROMPT)[0])

        threads = [threading.Thread(target=client) for _ in range(5)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while request(srv, "GET", "/stats")[1]["in_flight"] < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = time.monotonic()
        code = srv.stop()
        for t in threads:
            t.join(timeout=10)
        check(code == 0, "exit 0 after drain")
        check(time.monotonic() - t0 < 5, "drain did not wait the 30 s latency")
        check(results == [200] * 5, "waiting requests answered at stop: %r" % results)
    finally:
        srv.stop()


def main():
    if not os.access(BIN, os.X_OK):
        print("SKIP: %s not built" % BIN, file=sys.stderr)
        return 77
    for t in (test_basics, test_auth, test_flags, test_latency, test_stop_while_waiting):
        print("--", t.__name__, file=sys.stderr)
        t()
    if FAILURES:
        print("%d failure(s)" % len(FAILURES), file=sys.stderr)
        return 1
    print("ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
