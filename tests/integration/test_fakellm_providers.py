"""Black-box test of empq-fakellm's provider formats, limits and faults.

Starts the real binary on free ports and speaks each provider's wire format
over real HTTP (http.client, one connection per request):

  * OpenAI, Azure OpenAI, Gemini and Anthropic: paths, auth headers, the
    success shape field by field, the error shapes (auth, version, 404);
  * per-model limits: a burst past rpm gets the provider's 429 with
    Retry-After, concurrency and tpm limits, rate-limit headers on success,
    and /stats showing what the client really sent (max in any 60 s / 1 s
    window, peak concurrency), so an excess is visible;
  * injected faults: with a fixed seed, every kind appears at about its
    rate, the client sees each as what it is (429/500/503 shapes, a hang
    past the timeout, a reset, a non-JSON 200, a short body, a huge body, a
    refusal, an empty text), and /stats counts exactly what was seen; the
    same seed gives the same faults.

Stdlib only. Every process started here is stopped by pid in a finally.
"""

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

BIN = os.path.join(os.environ.get("EMPQ_BIN", "/work/main/build-fakellm3/bin"), "empq-fakellm")
FAILURES = []
PROMPT = "I felt so lonely when my wife was out of town for a week."


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


class Server:
    """One empq-fakellm process on a free port."""

    def __init__(self, *args):
        self.tmp = tempfile.TemporaryDirectory(prefix="fakellm-prov-")
        self.port_file = os.path.join(self.tmp.name, "port")
        self.log = open(os.path.join(self.tmp.name, "log"), "w+")
        self.proc = subprocess.Popen([BIN, "--port", "0", "--port-file", self.port_file, *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("empq-fakellm did not start: " + self.logs())
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.port = int(f.read().strip())

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
        if not self.log.closed:
            self.log.close()
        self.tmp.cleanup()
        return self.proc.returncode

    def stats(self):
        return raw(self, "GET", "/stats").json()


class Reply:
    def __init__(self, status=0, headers=None, body=b"", error=None, length=None):
        self.status, self.headers, self.body, self.error, self.length = status, headers or {}, body, error, length

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name):
        return self.headers.get(name.lower())


def raw(srv, method, path, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection. error: None, 'timeout', 'reset' or 'truncated'."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        hmap = {k.lower(): v for k, v in r.getheaders()}
        try:
            payload = r.read()
        except http.client.IncompleteRead as e:
            return Reply(r.status, hmap, e.partial, "truncated", int(hmap.get("content-length", "0")))
        return Reply(r.status, hmap, payload, None, int(hmap.get("content-length", len(payload))))
    except (socket.timeout, TimeoutError):
        return Reply(error="timeout")
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.BadStatusLine):
        return Reply(error="reset")
    finally:
        conn.close()


# ---------------------------------------------------------------- providers

def openai(srv, model, prompt=PROMPT, key=None, timeout=10.0, **params):
    h = {"Authorization": "Bearer " + key} if key else {}
    body = {"model": model, "messages": [{"role": "system", "content": "You are kind."},
                                         {"role": "user", "content": prompt}], **params}
    return raw(srv, "POST", "/v1/chat/completions", body, h, timeout)


def azure(srv, deployment, prompt=PROMPT, key=None, version="2024-10-21", timeout=10.0, **params):
    h = {"api-key": key} if key else {}
    q = "?api-version=" + version if version else ""
    body = {"messages": [{"role": "system", "content": "You are kind."}, {"role": "user", "content": prompt}],
            **params}
    return raw(srv, "POST", "/openai/deployments/%s/chat/completions%s" % (deployment, q), body, h, timeout)


def gemini(srv, model, prompt=PROMPT, key=None, query_key=False, api="v1beta", timeout=10.0, config=None):
    h = {"x-goog-api-key": key} if key and not query_key else {}
    q = "?key=" + key if key and query_key else ""
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "systemInstruction": {"parts": [{"text": "You are kind."}]},
            "generationConfig": config or {"temperature": 0.7, "topP": 1, "maxOutputTokens": 1024},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}
    return raw(srv, "POST", "/%s/models/%s:generateContent%s" % (api, model, q), body, h, timeout)


def anthropic(srv, model, prompt=PROMPT, key=None, version="2023-06-01", timeout=10.0, **params):
    h = {}
    if key:
        h["x-api-key"] = key
    if version:
        h["anthropic-version"] = version
    body = {"model": model, "max_tokens": params.pop("max_tokens", 1024), "system": "You are kind.",
            "messages": [{"role": "user", "content": prompt}], **params}
    return raw(srv, "POST", "/v1/messages", body, h, timeout)


def text_of(provider, doc):
    """The reply text as a client reads it, or None when the shape has none."""
    try:
        if provider in ("openai", "azure"):
            return doc["choices"][0]["message"]["content"]
        if provider == "gemini":
            return "".join(p["text"] for p in doc["candidates"][0]["content"].get("parts", []))
        return "".join(b["text"] for b in doc["content"] if b["type"] == "text")
    except (KeyError, IndexError, TypeError):
        return None


def total_tokens(provider, doc):
    if provider in ("openai", "azure"):
        return doc["usage"]["total_tokens"]
    if provider == "gemini":
        return doc["usageMetadata"]["totalTokenCount"]
    return doc["usage"]["input_tokens"] + doc["usage"]["output_tokens"]


def is_refusal(provider, doc):
    if provider in ("openai", "azure"):
        m = doc["choices"][0]["message"]
        return m["content"] is None and isinstance(m.get("refusal"), str) and m["refusal"]
    if provider == "gemini":
        if "promptFeedback" in doc:
            return doc["promptFeedback"].get("blockReason") == "SAFETY" and "candidates" not in doc
        return doc["candidates"][0]["finishReason"] == "SAFETY" and "content" not in doc["candidates"][0]
    return doc["stop_reason"] == "refusal"


def error_shape_ok(provider, status, doc):
    """The provider's documented error envelope."""
    if not isinstance(doc, dict):
        return False
    if provider == "openai":
        return list(doc) == ["error"] and list(doc["error"]) == ["message", "type", "param", "code"]
    if provider == "azure":
        e = doc.get("error", {})
        return list(doc) == ["error"] and (list(e) in (["code", "message"], ["message", "type", "param", "code"]))
    if provider == "gemini":
        e = doc.get("error", {})
        return list(doc) == ["error"] and e.get("code") == status and isinstance(e.get("status"), str)
    return (list(doc) == ["type", "error", "request_id"] and doc["type"] == "error"
            and list(doc["error"]) == ["type", "message"] and doc["request_id"].startswith("req_"))


def keys(d):
    return list(d.keys())


# ------------------------------------------------------------------- tests

def test_formats():
    key = "sk-test-123456789"
    srv = Server("--require-key", key, "--azure-deployment", "my-warm=fake-warm", "--azure-deployment",
                 "my-gpt=gpt-4o-2024-08-06")
    try:
        # OpenAI.
        r = openai(srv, "fake-warm", key=key, seed=1, max_tokens=200)
        d = r.json()
        check(r.status == 200 and keys(d) == ["id", "object", "created", "model", "system_fingerprint", "choices",
                                              "usage"], "openai: shape %r %r" % (r.status, d))
        check(keys(d["choices"][0]["message"]) == ["role", "content", "refusal"], "openai: message keys")
        check(r.header("x-ratelimit-limit-requests") is None, "openai: no rate-limit headers without a limit")
        r = openai(srv, "fake-warm")
        check(r.status == 401 and error_shape_ok("openai", 401, r.json())
              and r.json()["error"]["code"] == "invalid_api_key", "openai: 401 without key")

        # Azure: path, api-version, api-key, reported model.
        r = azure(srv, "fake-warm", key=key)
        d = r.json()
        check(r.status == 200 and d["model"] == "fake-warm" and d["object"] == "chat.completion",
              "azure: 200 %r" % d)
        r = azure(srv, "my-gpt", key=key)
        check(r.status == 200 and r.json()["model"] == "gpt-4o-2024-08-06", "azure: mapped deployment model")
        r = azure(srv, "my-warm", key=key)
        check(r.status == 200 and r.json()["model"] == "fake-warm"
              and text_of("azure", r.json()) == text_of("azure", d), "azure: the deployment's model answers")
        r = azure(srv, "fake-warm", key=key, version=None)
        check(r.status == 404 and r.json() == {"error": {"code": "404", "message": "Resource not found"}},
              "azure: no api-version -> 404 %r" % r.body)
        r = azure(srv, "fake-warm", key=key, version="0301")
        check(r.status == 404, "azure: malformed api-version -> 404")
        r = azure(srv, "fake-warm", key="wrong-key-000")
        check(r.status == 401 and r.json()["error"]["code"] == "401"
              and "Access denied due to invalid subscription key" in r.json()["error"]["message"], "azure: 401")
        r = azure(srv, "fake-warm", key=key, prompt="x", messages="nope")
        check(r.status == 400 and error_shape_ok("openai", 400, r.json()), "azure: 400 in the OpenAI shape")

        # Gemini: header key, query key, v1, errors.
        r = gemini(srv, "fake-curious", key=key)
        d = r.json()
        check(r.status == 200 and keys(d) == ["candidates", "usageMetadata", "modelVersion", "responseId"],
              "gemini: keys %r" % (d,))
        c0 = d["candidates"][0]
        check(keys(c0) == ["content", "finishReason", "index", "safetyRatings"]
              and c0["content"]["role"] == "model" and c0["finishReason"] == "STOP" and c0["index"] == 0,
              "gemini: candidate %r" % c0)
        u = d["usageMetadata"]
        check(u["totalTokenCount"] == u["promptTokenCount"] + u["candidatesTokenCount"], "gemini: usage")
        check(d["modelVersion"] == "fake-curious", "gemini: modelVersion")
        check(gemini(srv, "fake-curious", key=key, query_key=True).status == 200, "gemini: ?key=")
        r2 = gemini(srv, "fake-curious", key=key, api="v1")
        check(r2.status == 200 and text_of("gemini", r2.json()) == text_of("gemini", d), "gemini: /v1 path")
        r = gemini(srv, "fake-curious")
        check(r.status == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED", "gemini: no key -> 403")
        r = gemini(srv, "fake-curious", key="AIzaWrongKey")
        e = r.json()["error"]
        check(r.status == 400 and e["status"] == "INVALID_ARGUMENT" and e["message"].startswith("API key not valid")
              and e["details"][0]["reason"] == "API_KEY_INVALID", "gemini: wrong key %r" % e)
        r = gemini(srv, "fake-curious", key=key, config={"max_tokens": 5})
        check(r.status == 400 and "Unknown name \"max_tokens\"" in r.json()["error"]["message"],
              "gemini: unknown generationConfig field refused")
        r = gemini(srv, "fake-curious", key=key, config={"maxOutputTokens": 3})
        check(r.status == 200 and r.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"
              and r.json()["usageMetadata"]["candidatesTokenCount"] == 3, "gemini: MAX_TOKENS")

        # Anthropic: version and key headers, shape, stop reasons.
        r = anthropic(srv, "fake-formal", key=key)
        d = r.json()
        check(r.status == 200 and keys(d) == ["id", "type", "role", "model", "content", "stop_reason",
                                              "stop_sequence", "usage"], "anthropic: keys %r" % (d,))
        check(d["id"].startswith("msg_01") and d["type"] == "message" and d["role"] == "assistant"
              and d["content"][0]["type"] == "text" and d["stop_reason"] == "end_turn"
              and d["stop_sequence"] is None, "anthropic: values")
        check(d["usage"]["output_tokens"] == len(d["content"][0]["text"].split()), "anthropic: output tokens")
        r = anthropic(srv, "fake-formal", key=key, max_tokens=4)
        check(r.json()["stop_reason"] == "max_tokens" and r.json()["usage"]["output_tokens"] == 4,
              "anthropic: max_tokens")
        r = anthropic(srv, "fake-formal", key=key, version=None)
        check(r.status == 400 and error_shape_ok("anthropic", 400, r.json())
              and r.json()["error"]["message"] == "anthropic-version: header is required",
              "anthropic: version required %r" % r.body)
        check(r.header("request-id") == r.json()["request_id"], "anthropic: request-id header")
        r = anthropic(srv, "fake-formal")
        check(r.status == 401 and r.json()["error"]["type"] == "authentication_error", "anthropic: 401")
        r = raw(srv, "POST", "/v1/messages", {"model": "fake-formal", "messages": [{"role": "user", "content": "x"}]},
                {"x-api-key": key, "anthropic-version": "2023-06-01"})
        check(r.status == 400 and r.json()["error"]["message"] == "max_tokens: Field required",
              "anthropic: max_tokens required")

        # The same words through every format (same model, same messages).
        o = text_of("openai", openai(srv, "fake-brief", key=key).json())
        a = text_of("anthropic", anthropic(srv, "fake-brief", key=key).json())
        g = text_of("gemini", gemini(srv, "fake-brief", key=key).json())
        check(o == a == g and o, "one model, one reply in every format: %r %r %r" % (o, a, g))

        st = srv.stats()
        check(set(st["models"]) >= {"fake-warm", "gpt-4o-2024-08-06", "fake-curious", "fake-formal", "fake-brief"},
              "stats: models by reported name %r" % list(st["models"]))
        check(srv.stop() == 0, "formats: exit 0")
    finally:
        srv.stop()


def test_limits():
    srv = Server("--limit", "fake-warm:rpm=5,tpm=100000", "--limit", "fake-brief:concurrency=2",
                 "--limit", "fake-formal:rpm=3", "--limit", "fake-curious:rpm=3",
                 "--limit", "fake-tpm:tpm=150", "--default-limit", "rpm=1000")
    try:
        # OpenAI: a burst of 8 past rpm=5.
        replies = [openai(srv, "fake-warm") for _ in range(8)]
        check([r.status for r in replies] == [200] * 5 + [429] * 3,
              "openai burst: %r" % [r.status for r in replies])
        rem = [int(r.header("x-ratelimit-remaining-requests")) for r in replies[:5]]
        check(rem == [4, 3, 2, 1, 0], "x-ratelimit-remaining-requests %r" % rem)
        check(all(r.header("x-ratelimit-limit-requests") == "5" and r.header("x-ratelimit-limit-tokens") == "100000"
                  and r.header("x-ratelimit-reset-requests").endswith("s") for r in replies[:5]),
              "x-ratelimit-* on success")
        r = replies[5]
        d = r.json()
        check(error_shape_ok("openai", 429, d) and d["error"]["type"] == "requests"
              and d["error"]["code"] == "rate_limit_exceeded" and d["error"]["param"] is None
              and d["error"]["message"].startswith("Rate limit reached for fake-warm in organization org-fakellm on "
                                                   "requests per min (RPM): Limit 5, Used 5, Requested 1."),
              "openai 429 body %r" % d)
        ra = r.header("Retry-After")
        check(ra is not None and ra.isdigit() and 1 <= int(ra) <= 60, "Retry-After seconds %r" % ra)
        check(r.header("x-ratelimit-remaining-requests") == "0", "the 429 carries x-ratelimit-* too")

        # Anthropic and Gemini bursts: their own 429 shapes.
        replies = [anthropic(srv, "fake-formal") for _ in range(5)]
        check([r.status for r in replies] == [200] * 3 + [429] * 2, "anthropic burst")
        d = replies[3].json()
        check(error_shape_ok("anthropic", 429, d) and d["error"]["type"] == "rate_limit_error"
              and "of 3 requests per minute" in d["error"]["message"], "anthropic 429 %r" % d)
        check(replies[3].header("retry-after").isdigit(), "anthropic retry-after")
        check(replies[0].header("anthropic-ratelimit-requests-limit") == "3"
              and replies[2].header("anthropic-ratelimit-requests-remaining") == "0"
              and replies[0].header("anthropic-ratelimit-requests-reset").endswith("Z"), "anthropic-ratelimit-*")
        replies = [gemini(srv, "fake-curious") for _ in range(4)]
        check([r.status for r in replies] == [200] * 3 + [429], "gemini burst")
        e = replies[3].json()["error"]
        check(e["code"] == 429 and e["status"] == "RESOURCE_EXHAUSTED"
              and e["details"][0]["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
              and replies[3].header("Retry-After").isdigit(), "gemini 429 %r" % e)

        # Concurrency: 4 at once against concurrency=2, on a server that holds each reply 400 ms.
        slow = Server("--latency-ms", "400", "--limit", "fake-brief:concurrency=2")
        try:
            with ThreadPoolExecutor(4) as ex:
                futs = [ex.submit(openai, slow, "fake-brief") for _ in range(4)]
                res = [f.result() for f in futs]
            codes = sorted(r.status for r in res)
            check(codes == [200, 200, 429, 429], "concurrency=2 with 4 at once: %r" % codes)
            bad = [r for r in res if r.status == 429]
            check(all("concurrent requests" in r.json()["error"]["message"] for r in bad), "concurrency 429 message")
            m = slow.stats()["models"]["fake-brief"]
            check(m["peak_concurrency"] == 4 and m["limited"] == 2 and m["in_flight"] == 0,
                  "peak_concurrency counts what arrived: %r" % m)
        finally:
            slow.stop()

        # tpm: tokens of admitted completions only.
        tok = []
        for _ in range(4):
            r = openai(srv, "fake-tpm")
            tok.append((r.status, r.json()["usage"]["total_tokens"] if r.status == 200 else r.json()["error"]["type"]))
        ok_tokens = sum(t for s, t in tok if s == 200)
        check(ok_tokens <= 150 and any(s == 429 and t == "tokens" for s, t in tok), "tpm: %r" % tok)

        st = srv.stats()["models"]
        w = st["fake-warm"]
        check(w["limit"] == {"rpm": 5, "tpm": 100000, "concurrency": 0}, "limit echoed %r" % w["limit"])
        check(w["requests"] == 8 and w["limited"] == 3, "fake-warm counts %r" % w)
        check(w["max_requests_60s"] == 8 and w["max_requests_1s"] >= 1, "the burst shows: %r" % w)
        check(w["max_requests_60s"] > w["limit"]["rpm"], "counters prove the client exceeded rpm")
        check(st["fake-formal"]["max_requests_60s"] == 5 and st["fake-curious"]["max_requests_60s"] == 4,
              "anthropic/gemini windows")
        check(st["fake-tpm"]["max_tokens_60s"] == ok_tokens and st["fake-tpm"]["tokens"] == ok_tokens,
              "tokens windows count admitted completions: %r vs %d" % (st["fake-tpm"], ok_tokens))
        # A model without its own limit gets the default.
        openai(srv, "some-other-model")
        check(srv.stats()["models"]["some-other-model"]["limit"] == {"rpm": 1000, "tpm": 0, "concurrency": 0},
              "default limit")
        reset = raw(srv, "POST", "/stats/reset", b"").json()
        check(reset["models"]["fake-warm"]["requests"] == 0, "reset zeroes model counters")
    finally:
        srv.stop()


PROVIDERS = ("openai", "azure", "gemini", "anthropic")


def call(srv, provider, i, timeout):
    model = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")[i % 4]
    prompt = "%s (%d)" % (PROMPT, i)
    if provider == "openai":
        return openai(srv, model, prompt, timeout=timeout)
    if provider == "azure":
        return azure(srv, model, prompt, timeout=timeout)
    if provider == "gemini":
        return gemini(srv, model, prompt, timeout=timeout)
    return anthropic(srv, model, prompt, timeout=timeout)


def classify(provider, r, huge_bytes):
    """What the client saw, named as the fault kinds are."""
    if r.error == "timeout":
        return "hang"
    if r.error == "reset":
        return "reset"
    if r.error == "truncated":
        return "truncated"
    if r.status == 429:
        return "429" if error_shape_ok(provider, 429, r.json()) and r.header("retry-after") else "bad429"
    if r.status == 500:
        return "500" if error_shape_ok(provider, 500, r.json()) else "bad500"
    if r.status in (503, 529):
        want = 529 if provider == "anthropic" else 503
        return "503" if r.status == want and error_shape_ok(provider, r.status, r.json()) else "bad503"
    if r.status != 200:
        return "status%d" % r.status
    if len(r.body) != r.length:
        return "badlength"
    doc = r.json()
    if doc is None:
        return "malformed"
    if len(r.body) > huge_bytes:
        t = text_of(provider, doc)
        return "huge" if t and len(t) > huge_bytes else "badhuge"
    if is_refusal(provider, doc):
        return "refusal"
    t = text_of(provider, doc)
    if t == "":
        return "empty"
    return "ok" if t else "notext"


FAULTS = {"429": 0.2, "500": 0.03, "503": 0.02, "hang": 0.01, "reset": 0.01, "malformed": 0.02, "truncated": 0.01,
          "huge": 0.004, "refusal": 0.01, "empty": 0.01}


def test_faults(n=2000):
    huge = 300000
    args = ["--fault-seed", "7", "--huge-bytes", str(huge)]
    for k, p in FAULTS.items():
        args += ["--fault-" + k, str(p)]
    srv = Server(*args)
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(48) as ex:
            res = list(ex.map(lambda i: (PROVIDERS[i % 4], classify(PROVIDERS[i % 4], call(srv, PROVIDERS[i % 4], i,
                                                                                           1.0), huge)),
                              range(n)))
        wall = time.monotonic() - t0
        seen = {}
        for prov, kind in res:
            seen[kind] = seen.get(kind, 0) + 1
        print("faults: %d requests in %.2f s: %r" % (n, wall, seen), file=sys.stderr)
        st = srv.stats()
        for kind, p in FAULTS.items():
            got = seen.get(kind, 0)
            check(got == st["faults"][kind], "%s: client saw %d, server counted %d" % (kind, got, st["faults"][kind]))
            sd = math.sqrt(n * p * (1 - p))
            check(abs(got - n * p) <= max(4 * sd, 3), "%s: %d of %d, want about %.0f" % (kind, got, n, n * p))
        odd = {k: v for k, v in seen.items() if k not in FAULTS and k != "ok"}
        check(not odd, "every reply is a clean success or one fault kind: %r" % odd)
        check(st["hung"] == st["faults"]["hang"], "hung gauge %r" % st["hung"])
        # Every provider saw faults in its own shape (each kind appears for each provider).
        for prov in PROVIDERS:
            kinds = {k for p, k in res if p == prov}
            check({"429", "500", "503", "malformed", "refusal"} <= kinds, "%s saw %r" % (prov, sorted(kinds)))
        # Stop with hung connections: they are let go, exit 0 quickly.
        t0 = time.monotonic()
        check(srv.stop() == 0, "exit 0 with hung connections")
        check(time.monotonic() - t0 < 4, "stop with hangs took %.2f s" % (time.monotonic() - t0))
    finally:
        srv.stop()


def sequence(seed, n=300):
    args = ["--fault-seed", str(seed)]
    for k in ("429", "500", "503", "reset", "malformed", "truncated", "refusal", "empty"):
        args += ["--fault-" + k, "0.05"]
    srv = Server(*args)
    try:
        return [classify(PROVIDERS[i % 4], call(srv, PROVIDERS[i % 4], i, 5.0), 10 ** 9) for i in range(n)]
    finally:
        srv.stop()


def test_determinism():
    a, b, c = sequence(11), sequence(11), sequence(12)
    check(a == b, "same seed, same faults in the same order")
    check(a != c, "another seed, other faults")
    check(len(set(a)) >= 8, "the kinds all appear: %r" % sorted(set(a)))


def test_flags():
    for args, what in ((["--fault-429", "1.5"], "probability over 1"), (["--fault-429", "x"], "not a number"),
                       (["--fault-429", "0.6", "--fault-500", "0.6"], "sum over 1"),
                       (["--fault-bogus", "0.1"], "unknown kind"), (["--limit", "rpm=5"], "limit without model"),
                       (["--limit", "m:rps=5"], "unknown limit key"), (["--default-limit", "m:rpm=5"], "default with model"),
                       (["--azure-deployment", "x"], "deployment without model"), (["--huge-bytes", "0"], "huge 0")):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=10)
        check(p.returncode == 2, "%s: exit 2, got %d (%r)" % (what, p.returncode, p.stderr))
        first = p.stderr.split("\n", 1)[0]
        check(first.startswith("empq-fakellm: ") and len(first) < 200, "%s: one clear first line: %r" % (what, p.stderr))
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and "--fault-hang" in p.stdout and "--limit" in p.stdout, "--help lists the new flags")


def main():
    if not os.access(BIN, os.X_OK):
        print("SKIP: %s not built" % BIN, file=sys.stderr)
        return 77
    for t in (test_formats, test_limits, test_faults, test_determinism, test_flags):
        print("--", t.__name__, file=sys.stderr)
        t0 = time.monotonic()
        t()
        print("   %.2f s" % (time.monotonic() - t0), file=sys.stderr)
    if FAILURES:
        print("%d failure(s)" % len(FAILURES), file=sys.stderr)
        return 1
    print("ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
