"""The providers' official SDKs as real clients of empq-fakellm.

`openai`, `@anthropic-ai/sdk` and `@google/genai` from npm, pinned exactly
(PINNED below; installed by this test into BUILD/fakellm-sdks with npm, like
test_rating_browser installs playwright-core), each driven by a Node script
under tests/integration/sdk/ with the SDK's default settings (its own
authentication header, API version, path and retry policy) against
empq-fakellm on a free port. The scripts only record what the SDK returned
or raised (its error class, status and parsed fields) and what it sent (a
pass-through fetch notes every attempt's path and headers); every check is
here. Per SDK: a normal reply, a reasoning or thinking reply as the SDK
types it, a 429 with its retry header (the SDK's own retries, ending in its
RateLimitError, and a retry that succeeds), a 5xx or 529, a refusal or
safety block, the quota error, and the errors for a wrong key or version.

Skips (exit 77) with the reason when node or npm is missing, or when npm
cannot reach the registry to install the SDKs."""

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time

import empqtest
from empqtest import BIN, Skip, http_get_json, main, port_in_file, program, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_SCRIPTS = os.path.join(HERE, "sdk")
BUILD = os.path.dirname(BIN)
PINNED = {"openai": "7.60.0", "@anthropic-ai/sdk": "1.17.0", "@google/genai": "3.6.1"}
KEY = "sk-sdk-test-0123456789"
REFUSAL = "I'm sorry, but I can't help with that request."
# Model name -> the fault every request of it gets (--model-fault MODEL:KIND=1).
FAULTS = {
    "openai-rate": "429", "openai-5xx": "500", "openai-refusal": "refusal", "openai-safety": "safety",
    "openai-quota": "quota",
    "anthropic-rate": "429", "anthropic-overload": "503", "anthropic-refusal": "refusal",
    "anthropic-safety": "safety", "anthropic-quota": "quota",
    "gemini-rate": "429", "gemini-rate-retry": "429", "gemini-5xx": "503", "gemini-safety": "safety",
    "gemini-quota": "quota",
}


def sdk_modules():
    """The folder whose node_modules holds the pinned SDKs (installed there
    by npm when missing or of another version). Raises Skip."""
    if shutil.which("node") is None:
        raise Skip("node is not installed (apt-get install nodejs npm)")
    npm = shutil.which("npm")
    d = os.path.join(BUILD, "fakellm-sdks")

    def installed():
        for name, version in PINNED.items():
            try:
                with open(os.path.join(d, "node_modules", name, "package.json")) as f:
                    if json.load(f).get("version") != version:
                        return False
            except (OSError, ValueError):
                return False
        return True

    if installed():
        return d
    if npm is None:
        raise Skip("the SDKs are not installed and npm is missing")
    os.makedirs(d, exist_ok=True)
    # one install at a time: the tests that use the SDKs run in parallel
    with open(os.path.join(d, ".install-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():  # another test installed them while this one waited
            return d
        with open(os.path.join(d, "package.json"), "w") as f:
            json.dump({"private": True, "dependencies": PINNED}, f)
        try:
            # few fetch retries: an unreachable registry is a skip in seconds, not minutes
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1",
                                "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=5000"], cwd=d,
                               capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise Skip("npm install of the SDKs took over 300 s (offline?)")
        if r.returncode != 0 or not installed():
            raise Skip(f"npm cannot install {PINNED} (offline?): {r.stderr.strip()[-300:]}")
    return d


class FakeLLM:
    """One empq-fakellm on a free port, stopped by pid."""

    def __init__(self, *args):
        self.tmp = tempfile.mkdtemp(prefix="fakellm-sdk-")
        pf = os.path.join(self.tmp, "port")
        self.log = os.path.join(self.tmp, "fakellm.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([program("empq-fakellm"), "--port", "0", "--port-file", pf,
                                          "--require-key", KEY, *args],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        empqtest._live[self.proc.pid] = self.proc
        port = wait_until("fakellm port", lambda: port_in_file(pf), procs=[self.proc])
        self.base = f"http://127.0.0.1:{port}"

    def stats(self):
        return http_get_json(self.base + "/stats")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        empqtest._live.pop(self.proc.pid, None)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_sdk(script, name):
    """Runs tests/integration/sdk/SCRIPT against two fresh fakellms (one with
    every fault model, one allowing one request in flight so that a second
    concurrent one gets a 429 and a retry succeeds). Returns (report, stats
    of the first server)."""
    modules = sdk_modules()
    faults = [a for m, k in FAULTS.items() for a in ("--model-fault", f"{m}:{k}=1")]
    with FakeLLM(*faults) as srv, FakeLLM("--latency-ms", "400",
                                          "--limit", "fake-warm:concurrency=1") as limited:
        cfg = os.path.join(srv.tmp, "cfg.json")
        with open(cfg, "w") as f:
            json.dump({"modules": modules, "base": srv.base, "base_limited": limited.base, "key": KEY}, f)
        t0 = time.monotonic()
        r = subprocess.run(["node", os.path.join(SDK_SCRIPTS, script), cfg], capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0, f"{script} failed:\n{r.stderr[-3000:]}"
        rep = json.loads(r.stdout)
        print(f"   {name} {rep['sdk_version']} on node {rep['node']}: {len(rep['cases'])} cases in "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        assert rep["sdk_version"] == PINNED[name], (rep["sdk_version"], PINNED[name])
        lim = limited.stats()["models"]["fake-warm"]
        assert lim["limited"] >= 1, lim  # the concurrent request was refused with a 429
        return rep, srv.stats()


def ok(rep, case):
    c = rep["cases"][case]
    assert c["ok"], f"{case}: the SDK raised {c.get('error')}"
    return c["value"]


def err(rep, case, cls, status):
    c = rep["cases"][case]
    assert not c["ok"], f"{case}: expected the SDK's {cls}, got a value {json.dumps(c['value'])[:300]}"
    e = c["error"]
    assert e["class"] == cls and e["status"] == status, f"{case}: {e}"
    return e


def attempts(rep, case):
    return len(rep["cases"][case]["requests"])


def words(s):
    return len(s.split())


def test_openai():
    rep, stats = run_sdk("openai.mjs", "openai")
    # a normal reply, the audit fields, what the SDK sent
    v = ok(rep, "normal")
    comp = v["completion"]
    msg = comp["choices"][0]["message"]
    assert isinstance(msg["content"], str) and msg["content"] and msg["refusal"] is None, msg
    assert comp["choices"][0]["finish_reason"] == "stop"
    assert comp["system_fingerprint"].startswith("fp_") and v["request_id_header"].startswith("req_"), v
    u = comp["usage"]
    assert u["completion_tokens"] == words(msg["content"]) and u["completion_tokens_details"]["reasoning_tokens"] == 0
    assert u["prompt_tokens_details"]["cached_tokens"] == 4 + 4, u  # the developer message: 4 + its 4 words
    sent = rep["cases"]["normal"]["requests"][0]
    assert sent["path"] == "/v1/chat/completions" and sent["headers"]["authorization"] == f"Bearer {KEY}", sent

    # reasoning: tokens by effort, and the budget used up before any text
    c = ok(rep, "reasoning")
    text = c["choices"][0]["message"]["content"]
    assert c["usage"]["completion_tokens_details"]["reasoning_tokens"] == 1024, c["usage"]
    assert c["usage"]["completion_tokens"] == 1024 + words(text) and c["choices"][0]["finish_reason"] == "stop"
    c = ok(rep, "reasoning_budget_used")
    assert c["choices"][0]["finish_reason"] == "length" and c["choices"][0]["message"]["content"] == "", c
    assert c["usage"]["completion_tokens"] == 100 == c["usage"]["completion_tokens_details"]["reasoning_tokens"]
    e = err(rep, "reasoning_max_tokens", "BadRequestError", 400)
    assert e["param"] == "max_tokens" and e["code"] == "unsupported_parameter", e
    assert "Use 'max_completion_tokens' instead" in e["message"], e

    # 429: the SDK retries after Retry-After (1 s) twice, then raises its RateLimitError
    e = err(rep, "rate_limited", "RateLimitError", 429)
    assert e["code"] == "rate_limit_exceeded" and e["headers"]["retry-after"] == "1", e
    assert attempts(rep, "rate_limited") == 3 == stats["models"]["openai-rate"]["requests"]
    assert [r["headers"]["x-stainless-retry-count"] for r in rep["cases"]["rate_limited"]["requests"]] == \
        ["0", "1", "2"]
    assert rep["cases"]["rate_limited"]["ms"] >= 1800, rep["cases"]["rate_limited"]["ms"]
    assert ok(rep, "rate_limited_then_ok") == ["stop", "stop"]
    assert attempts(rep, "rate_limited_then_ok") == 3  # one of the two retried once, then answered

    # 5xx: retried, then the SDK's InternalServerError
    err(rep, "server_error", "InternalServerError", 500)
    assert attempts(rep, "server_error") == 3 == stats["models"]["openai-5xx"]["requests"]

    # a refusal, a content filter
    m = ok(rep, "refusal")["choices"][0]["message"]
    assert m["content"] is None and m["refusal"] == REFUSAL, m
    c = ok(rep, "content_filter")["choices"][0]
    assert c["finish_reason"] == "content_filter" and c["message"]["content"] is None, c

    # quota: a RateLimitError whose code says insufficient_quota
    e = err(rep, "quota", "RateLimitError", 429)
    assert e["code"] == "insufficient_quota" and e["type"] == "insufficient_quota", e
    assert "exceeded your current quota" in e["message"], e
    e = err(rep, "wrong_key", "AuthenticationError", 401)
    assert e["code"] == "invalid_api_key" and "Incorrect API key provided" in e["message"], e


def test_anthropic():
    rep, stats = run_sdk("anthropic.mjs", "@anthropic-ai/sdk")
    # the SDK's own version and Bearer auth are accepted
    sent = rep["cases"]["normal"]["requests"][0]
    assert sent["path"] == "/v1/messages" and sent["headers"]["authorization"] == f"Bearer {KEY}", sent
    assert "x-api-key" not in sent["headers"], sent
    version = sent["headers"]["anthropic-version"]
    assert version not in ("2023-06-01", "2023-01-01"), f"the SDK sends {version}: update the test's premise"
    v = ok(rep, "normal")
    msg = v["message"]
    assert [b["type"] for b in msg["content"]] == ["text"] and msg["content"][0]["text"], msg
    assert msg["stop_reason"] == "end_turn" and msg["usage"]["output_tokens"] == words(msg["content"][0]["text"])
    assert v["request_id_header"].startswith("req_"), v

    # thinking blocks as the SDK types them
    m = ok(rep, "thinking")
    assert [b["type"] for b in m["content"]] == ["thinking", "text"], m["content"]
    think, text = m["content"]
    assert think["thinking"] and think["signature"], think
    assert m["usage"]["output_tokens"] == 1024 + words(text["text"]), m["usage"]
    e = err(rep, "thinking_small_budget", "BadRequestError", 400)
    assert "budget_tokens: Input should be greater than or equal to 1024" in e["message"], e
    e = err(rep, "thinking_budget_over_max", "BadRequestError", 400)
    assert "`max_tokens` must be greater than `thinking.budget_tokens`" in e["message"], e

    # 429 with retry-after: the SDK's retries, then its RateLimitError; and a retry that succeeds
    e = err(rep, "rate_limited", "RateLimitError", 429)
    assert e["type"] == "rate_limit_error" and e["headers"]["retry-after"] == "1", e
    assert attempts(rep, "rate_limited") == 3 == stats["models"]["anthropic-rate"]["requests"]
    assert rep["cases"]["rate_limited"]["ms"] >= 1800, rep["cases"]["rate_limited"]["ms"]
    assert ok(rep, "rate_limited_then_ok") == ["end_turn", "end_turn"]
    assert attempts(rep, "rate_limited_then_ok") == 3

    # 529: the SDK's OverloadedError after its retries
    e = err(rep, "overloaded", "OverloadedError", 529)
    assert e["type"] == "overloaded_error", e
    assert attempts(rep, "overloaded") == 3 == stats["models"]["anthropic-overload"]["requests"]

    # refusals
    m = ok(rep, "refusal")
    assert m["stop_reason"] == "refusal" and m["content"][0]["text"] == REFUSAL, m
    m = ok(rep, "safety")
    assert m["stop_reason"] == "refusal" and m["content"] == [] and m["stop_details"]["type"] == "refusal", m

    # quota (billing): a 400 the SDK does not retry
    e = err(rep, "quota", "BadRequestError", 400)
    assert "credit balance is too low" in e["message"], e
    assert attempts(rep, "quota") == 1
    e = err(rep, "wrong_key", "AuthenticationError", 401)
    assert e["type"] == "authentication_error", e
    e = err(rep, "wrong_version", "BadRequestError", 400)
    assert 'anthropic-version: "2023-10-01" is not a valid version' in e["message"], e


def test_gemini():
    rep, stats = run_sdk("genai.mjs", "@google/genai")
    v = ok(rep, "normal")
    sent = rep["cases"]["normal"]["requests"][0]
    assert sent["path"] == "/v1/models/fake-warm:generateContent", sent  # 3.6.1's default API version
    assert sent["headers"]["x-goog-api-key"] == KEY and "authorization" not in sent["headers"], sent
    cand = v["candidates"][0]
    assert v["text"] and cand["finishReason"] == "STOP" and cand["content"]["parts"][0]["text"] == v["text"], v
    assert v["responseId"] and v["modelVersion"] == "fake-warm", v
    assert len(cand["safetyRatings"]) == 4 and not any(r.get("blocked") for r in cand["safetyRatings"]), cand
    assert v["usageMetadata"]["candidatesTokenCount"] == words(v["text"]), v["usageMetadata"]
    assert ok(rep, "v1beta")["text"]
    assert rep["cases"]["v1beta"]["requests"][0]["path"] == "/v1beta/models/fake-warm:generateContent"

    # thought parts: typed by the SDK, left out of its text
    v = ok(rep, "thinking")
    parts = v["candidates"][0]["content"]["parts"]
    assert parts[0].get("thought") is True and parts[0]["text"], parts
    assert v["text"] == parts[1]["text"] and "thought" not in parts[1], v
    um = v["usageMetadata"]
    assert um["thoughtsTokenCount"] == 512, um
    assert um["totalTokenCount"] == um["promptTokenCount"] + um["candidatesTokenCount"] + 512, um
    v = ok(rep, "thinking_max_tokens")
    assert v["text"] is None and v["candidates"][0]["finishReason"] == "MAX_TOKENS", v
    assert v["usageMetadata"]["thoughtsTokenCount"] == 100, v["usageMetadata"]

    # 429: the SDK raises ApiError 429 at once by default (it retries only
    # with retryOptions); its own retry, when asked, tries 3 times
    e = err(rep, "rate_limited", "ApiError", 429)
    assert "google.rpc.RetryInfo" in e["message"] and '"retryDelay":"1s"' in e["message"], e
    assert attempts(rep, "rate_limited") == 1 == stats["models"]["gemini-rate"]["requests"]
    err(rep, "rate_limited_sdk_retry", "ApiError", 429)
    assert attempts(rep, "rate_limited_sdk_retry") == 3 == stats["models"]["gemini-rate-retry"]["requests"]
    assert ok(rep, "rate_limited_then_ok_sdk_retry") == ["STOP", "STOP"]
    assert attempts(rep, "rate_limited_then_ok_sdk_retry") == 3
    e = err(rep, "unavailable", "ApiError", 503)
    assert "UNAVAILABLE" in e["message"], e

    # safety: blocked by default, answered when the request turns the categories off
    v = ok(rep, "safety_default")
    cand = v["candidates"][0]
    assert v["text"] is None and cand["finishReason"] == "SAFETY" and "content" not in cand, v
    assert [r["category"] for r in cand["safetyRatings"] if r.get("blocked")] == ["HARM_CATEGORY_HARASSMENT"], cand
    v = ok(rep, "safety_block_none")
    assert v["text"] and v["candidates"][0]["finishReason"] == "STOP", v
    e = err(rep, "safety_unknown_category", "ApiError", 400)
    assert "safety_settings[0].category" in e["message"] and "HARM_CATEGORY_KINDNESS" in e["message"], e

    # quota: 429 with a per-day QuotaFailure
    e = err(rep, "quota", "ApiError", 429)
    assert "google.rpc.QuotaFailure" in e["message"] and "PerDay" in e["message"], e
    e = err(rep, "wrong_key", "ApiError", 400)
    assert "API key not valid" in e["message"], e


if __name__ == "__main__":
    main(test_openai, test_anthropic, test_gemini)
