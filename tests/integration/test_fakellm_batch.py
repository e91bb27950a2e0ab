"""empq-fakellm's batch endpoints held to the providers' official SDKs and
OpenAI's published OpenAPI document.

The pinned `openai`, `@anthropic-ai/sdk` and `@google/genai` from npm (the
pins and the npm install of test_fakellm_sdks.py, into BUILD/fakellm-sdks)
run tests/integration/sdk/batch_openai.mjs, batch_anthropic.mjs and
batch_genai.mjs against two
empq-fakellm processes on free ports: A (--batch-delay-ms 1500: a batch is
seen in progress, and a cancel lands before its requests ran) and B
(--batch-delay-ms 200 --batch-fail 0.5: injected per-request failures).
The scripts only record what the SDKs returned; every check is here:

- Without the SDKs (plain HTTP, runs when npm cannot): bad --batch-* flags
  exit 2; the key and anthropic-version checks; uploads that are not
  multipart, not .jsonl or of an unknown purpose; the 413 beyond
  --batch-max-bytes in each provider's shape; --batch-expire (half
  answered, the rest batch_expired / expired); file deletion; the counters
  (batch answers are not counted as interactive requests) and their reset.

- OpenAI: files.create with a JSONL, batches.create, batches.retrieve until
  completed, files.content of the output and error files (one request of
  the file is invalid: a partial failure), files.retrieve and list,
  batches.list, batches.cancel, a batch failing validation, and the answers
  equal to chat.completions.create's for the same request.
- Anthropic: messages.batches.create, retrieve until ended, results() (the
  SDK follows results_url and decodes the JSONL), list, cancel, an errored
  request, injected failures, and the answers equal to messages.create's.
- Gemini: batches.create with inlined requests, batches.get until
  JOB_STATE_SUCCEEDED, the inlined responses as the SDK types them (its
  text getter, the error Status of an invalid request, the metadata back),
  batches.list, a cancel midway, injected INTERNAL errors, and the answers
  equal to models.generateContent's.
- The Batch and OpenAIFile objects the SDK received, and the list and error
  bodies fetched directly, validate against the `/batches` and `/files`
  schemas of ../shared/providers/openai-openapi-subset.json
  (python3-jsonschema). One relaxation, printed when used: a null value of
  a property that is not required and whose schema has no null is treated
  as absent (the document's own examples return those fields, e.g.
  output_file_id, as null, as the API does).
- /stats counts the batch and file calls per provider.

Skips (exit 77) with the reason when node or npm is missing, when npm cannot
reach the registry, or (the schema test only) when the OpenAPI document or
jsonschema is absent. """

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from empqtest import Skip, main
from test_fakellm_sdks import KEY, PINNED, SDK_SCRIPTS, FakeLLM, err, ok, sdk_modules

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
BATCH_STATUSES = ["validating", "in_progress", "finalizing", "completed"]


def openai_requests():
    prompts = ["I failed my driving test again.", "My best friend moved away.", "I got the job!",
               "I cannot sleep before my exam.", "My dog is sick."]
    reqs = [{"custom_id": f"job-{i}", "body": {"model": "fake-warm", "max_tokens": 120, "messages": [
        {"role": "system", "content": "Answer kindly."}, {"role": "user", "content": p}]}}
        for i, p in enumerate(prompts)]
    # a request the chat endpoint refuses: the batch's partial failure
    reqs.append({"custom_id": "job-bad", "body": {"model": "fake-warm", "temperature": 3,
                                                  "messages": [{"role": "user", "content": "hello"}]}})
    return reqs


def anthropic_requests():
    prompts = ["I failed my driving test again.", "My best friend moved away.", "I got the job!",
               "I cannot sleep before my exam.", "My dog is sick."]
    reqs = [{"custom_id": f"job-{i}", "params": {"model": "fake-curious", "max_tokens": 120,
                                                 "messages": [{"role": "user", "content": p}]}}
            for i, p in enumerate(prompts)]
    reqs.append({"custom_id": "job-bad", "params": {"model": "fake-curious", "max_tokens": 0,
                                                    "messages": [{"role": "user", "content": "hello"}]}})
    return reqs


def run_script(script, name, requests):
    """Runs the script against fakellms A and B; returns (report, stats A, stats B, base A)."""
    modules = sdk_modules()
    with FakeLLM("--batch-delay-ms", "1500") as a, \
            FakeLLM("--batch-delay-ms", "200", "--batch-fail", "0.5") as b:
        cfg = os.path.join(a.tmp, "cfg.json")
        with open(cfg, "w") as f:
            json.dump({"modules": modules, "base": a.base, "base_fail": b.base, "key": KEY,
                       "requests": requests}, f)
        t0 = time.monotonic()
        r = subprocess.run(["node", os.path.join(SDK_SCRIPTS, script), cfg], capture_output=True, text=True,
                           timeout=180)
        assert r.returncode == 0, f"{script} failed:\n{r.stderr[-3000:]}"
        rep = json.loads(r.stdout)
        print(f"   {name} {rep['sdk_version']}: {len(rep['cases'])} cases in {time.monotonic() - t0:.1f} s",
              flush=True)
        assert rep["sdk_version"] == PINNED[name], (rep["sdk_version"], PINNED[name])
        raw = {"batches": http(a.base + "/v1/batches?limit=5"), "files": http(a.base + "/v1/files?purpose=batch"),
               "missing": http(a.base + "/v1/batches/batch_missing")}
        return rep, a.stats()["batches"], b.stats()["batches"], a.base, raw


def http(url, body=None, headers=None, method=None, raw=False):
    """A request with the key (Bearer unless headers say otherwise): (status,
    parsed body, or the bytes when raw)."""
    h = {"Authorization": f"Bearer {KEY}"} if headers is None else headers
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h = dict(h, **{"Content-Type": "application/json"})
    req = urllib.request.Request(url, data=body, headers=h, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            data = r.read()
            return r.status, data if raw else json.loads(data)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def multipart(fields):
    """A multipart/form-data body of (name, filename or None, bytes): (body, content type)."""
    boundary = "----empqtest7d1f"
    parts = []
    for name, filename, data in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(base, data, filename="in.jsonl", purpose=b"batch"):
    body, ctype = multipart([("purpose", None, purpose), ("file", filename, data)])
    return http(base + "/v1/files", body, {"Authorization": f"Bearer {KEY}", "Content-Type": ctype})


def test_http_without_sdks():
    """Plain HTTP, no npm needed: flags, keys, bounds, expiry, the counters."""
    for args in (["--batch-fail", "2"], ["--batch-max-bytes", "0"], ["--batch-delay-ms", "x"]):
        p = subprocess.run([os.path.join(os.environ["EMPQ_BIN"], "empq-fakellm"), *args], capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 2 and args[0] in p.stderr, (args, p.returncode, p.stderr[:300])
    lines = "".join(json.dumps({"custom_id": r["custom_id"], "method": "POST", "url": "/v1/chat/completions",
                                "body": r["body"]}) + "\n" for r in openai_requests()[:4]).encode()
    with FakeLLM("--batch-delay-ms", "300", "--batch-expire", "--batch-max-bytes", "4000") as a:
        # keys and versions as on the interactive endpoints
        st, body = http(a.base + "/v1/batches", headers={})
        assert st == 401 and body["error"]["code"] == "invalid_api_key", body
        st, body = http(a.base + "/v1/messages/batches", headers={"x-api-key": KEY})
        assert st == 400 and body["error"]["message"] == "anthropic-version: header is required", body
        # uploads: not multipart, not .jsonl, over --batch-max-bytes (the provider's 413)
        st, body = http(a.base + "/v1/files", {"purpose": "batch"})
        assert st == 400 and "multipart/form-data" in body["error"]["message"], body
        st, body = upload(a.base, lines, "in.csv")
        assert st == 400 and body["error"]["message"] == "Invalid file format for Batch API. Must be .jsonl", body
        st, body = upload(a.base, lines, purpose=b"homework")
        assert st == 400 and body["error"]["param"] == "purpose", body
        st, body = upload(a.base, b"x" * 5000)
        assert st == 413 and body["error"]["code"] == "request_too_large", body
        big = {"requests": [{"custom_id": f"r{i}", "params": {"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "y" * 100}]}} for i in range(40)]}
        st, body = http(a.base + "/v1/messages/batches", big, {"x-api-key": KEY, "anthropic-version": "2023-06-01"})
        assert st == 413 and body["type"] == "error" and body["error"]["type"] == "request_too_large", body
        # --batch-expire: half answered, the rest batch_expired / expired
        st, f = upload(a.base, lines)
        assert st == 200 and f["object"] == "file" and f["bytes"] == len(lines), f
        st, b = http(a.base + "/v1/batches", {"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                              "completion_window": "24h"})
        assert st == 200 and b["expires_at"] - b["created_at"] <= 1, b
        ab = {"requests": [{"custom_id": f"r{i}", "params": {"model": "fake-warm", "max_tokens": 50, "messages": [
            {"role": "user", "content": "hello"}]}} for i in range(4)]}
        hdr = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        st, m = http(a.base + "/v1/messages/batches", ab, hdr)
        assert st == 200, m
        time.sleep(0.6)
        st, b = http(f"{a.base}/v1/batches/{b['id']}")
        assert b["status"] == "expired" and b["expired_at"] and b["request_counts"]["completed"] == 2, b
        st, data = http(f"{a.base}/v1/files/{b['error_file_id']}/content", raw=True)
        errs = [json.loads(x) for x in data.decode().splitlines()]
        assert [e["error"]["code"] for e in errs] == ["batch_expired"] * 2 and errs[0]["custom_id"] == "job-2", errs
        st, m = http(f"{a.base}/v1/messages/batches/{m['id']}", headers=hdr)
        assert m["processing_status"] == "ended" and m["request_counts"]["expired"] == 2, m
        st, data = http(f"{a.base}/v1/messages/batches/{m['id']}/results", headers=hdr, raw=True)
        types = [json.loads(x)["result"]["type"] for x in data.decode().splitlines()]
        assert types == ["succeeded", "succeeded", "expired", "expired"], types
        st, body = http(f"{a.base}/v1/files/{f['id']}", method="DELETE")
        assert st == 200 and body == {"id": f["id"], "object": "file", "deleted": True}, body
        st, body = http(f"{a.base}/v1/files/{f['id']}")
        assert st == 404 and body["error"]["message"] == f"No such File object: {f['id']}", body
        s = a.stats()
        oa, an = s["batches"]["openai"], s["batches"]["anthropic"]
        assert oa["files_uploaded"] == 1 and oa["batches_created"] == 1 and oa["requests_expired"] == 2, oa
        assert oa["requests_succeeded"] == 2 and oa["deletes"] == 1 and oa["results_downloads"] == 1, oa
        assert an["batches_created"] == 1 and an["requests_expired"] == 2 and an["results_downloads"] == 1, an
        assert s["requests"] == 0 and s["by_model"] == {}, s  # batch answers are not interactive calls
        st, r = http(a.base + "/stats/reset", b"")
        assert r["batches"]["openai"]["batches_created"] == 0, r["batches"]


def jsonl(text):
    assert text.endswith("\n"), text[-100:]
    return [json.loads(line) for line in text.splitlines()]


def in_order(seen, order):
    """seen is a subsequence of order (each status at most once, none out of order)."""
    idx = [order.index(s) for s in seen]
    return idx == sorted(set(idx))


# --------------------------------------------------------------------------
# OpenAI
# --------------------------------------------------------------------------

def check_openai(rep, sa, sb):
    reqs = openai_requests()
    good = {r["custom_id"] for r in reqs} - {"job-bad"}
    v = ok(rep, "batch")
    assert v["file"]["purpose"] == "batch" and v["file"]["bytes"] > 0 and v["file"]["filename"] == "requests.jsonl"
    assert v["created"]["status"] == "validating" and v["created"]["metadata"] == {"study": "demo", "part": "1"}
    assert v["created"]["request_counts"] == {"total": 6, "completed": 0, "failed": 0}, v["created"]
    assert "in_progress" in v["seen"] and v["seen"][-1] == "completed" and in_order(v["seen"], BATCH_STATUSES), \
        v["seen"]
    b = v["batch"]
    assert b["request_counts"] == {"total": 6, "completed": 5, "failed": 1}, b["request_counts"]
    assert b["model"] == "fake-warm" and b["input_file_id"] == v["file"]["id"] and b["endpoint"] == \
        "/v1/chat/completions"
    assert b["created_at"] <= b["in_progress_at"] <= b["finalizing_at"] <= b["completed_at"], b
    assert b["expires_at"] == b["created_at"] + 86400 and b["failed_at"] is None and b["cancelled_at"] is None
    out, errs = jsonl(v["output"]), jsonl(v["errors"])
    assert {line["custom_id"] for line in out} == good and len(out) == 5, out
    for line in out:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"].startswith("req_")
        assert line["response"]["body"]["object"] == "chat.completion", line
    assert [line["custom_id"] for line in errs] == ["job-bad"], errs
    bad = errs[0]["response"]
    assert bad["status_code"] == 400 and bad["body"]["error"]["param"] == "temperature", bad
    usage = b["usage"]
    assert usage["input_tokens"] == sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in out), usage
    assert usage["output_tokens"] == sum(line["response"]["body"]["usage"]["completion_tokens"] for line in out)
    assert v["output_file"]["purpose"] == "batch_output" and v["output_file"]["id"] == b["output_file_id"]
    assert v["file_retrieved"] == v["file"], (v["file_retrieved"], v["file"])
    assert v["file"]["id"] in [f["id"] for f in v["files_listed"]]
    assert {f["purpose"] for f in v["files_listed"]} == {"batch"}, v["files_listed"]
    assert b["id"] in [x["id"] for x in v["batches_listed"]]

    # the batch answer is the interactive answer (same words, same usage)
    inter = ok(rep, "interactive")
    first = next(line for line in out if line["custom_id"] == "job-0")["response"]["body"]
    assert first["choices"][0]["message"]["content"] == inter["choices"][0]["message"]["content"]
    assert first["usage"] == inter["usage"], (first["usage"], inter["usage"])

    # cancel midway (once a request was answered): cancelling, then cancelled; the
    # answered requests are in the output file, what did not run is batch_cancelled
    c = ok(rep, "cancel")
    assert c["before"]["status"] == "in_progress" and c["before"]["request_counts"]["completed"] >= 1, c["before"]
    assert c["cancelling"]["status"] == "cancelling" and c["cancelling"]["cancelling_at"], c["cancelling"]
    assert c["seen"][-1] == "cancelled" and c["batch"]["cancelled_at"], c["seen"]
    lines = jsonl(c["errors"])
    cancelled = [x for x in lines if x["error"] and x["error"]["code"] == "batch_cancelled"]
    assert len(cancelled) >= 1 and all(x["response"] is None for x in cancelled), lines
    rc = c["batch"]["request_counts"]
    assert rc["completed"] + rc["failed"] + len(cancelled) == 6, (rc, len(cancelled))
    assert rc["completed"] >= 1 and len(jsonl(c["output"])) == rc["completed"], (rc, c["output"])
    print(f"   openai cancel: {len(cancelled)} of 6 cancelled, {rc['completed']} completed", flush=True)

    # injected failures (server B): the provider's 500 lines in the error file
    f = ok(rep, "injected_failures")
    rc = f["batch"]["request_counts"]
    lines = jsonl(f["errors"])
    fails = [x for x in lines if x["response"]["status_code"] == 500]
    # every error line is an injected 500, or job-bad's own 400 when the draw spared it
    assert all(x in fails or (x["custom_id"] == "job-bad" and x["response"]["status_code"] == 400) for x in lines)
    assert rc["completed"] >= 1 and len(fails) >= 1 and rc["failed"] == len(lines) >= 2, (rc, len(fails))
    assert all(x["response"]["body"]["error"]["type"] == "server_error" for x in fails)
    print(f"   openai --batch-fail 0.5: {len(fails)} of 6 requests got the injected 500", flush=True)

    # validation failure, and refusals
    v = ok(rep, "invalid_file")
    assert v["seen"][-1] == "failed" and v["batch"]["failed_at"], v
    e = v["batch"]["errors"]["data"]
    assert e[0]["code"] == "duplicate_custom_id" and e[0]["line"] == 2, e
    e = err(rep, "not_jsonl", "BadRequestError", 400)
    assert "Must be .jsonl" in e["message"], e
    err(rep, "unknown_batch", "NotFoundError", 404)

    # the counters (server A): 3 uploads (the .txt one refused), 3 batches, 1 cancel
    oa = sa["openai"]
    assert oa["files_uploaded"] == 3 and oa["batches_created"] == 3 and oa["cancels"] == 1, oa
    assert oa["batch_lists"] == 2 and oa["file_lists"] == 2 and oa["file_gets"] == 2, oa  # + the raw lists
    assert oa["results_downloads"] >= 3 and oa["batch_gets"] >= 10 and oa["open"] == 0, oa
    assert oa["requests_succeeded"] == 5 + rc_completed(c) and oa["requests_cancelled"] == len(cancelled), oa
    assert sa["anthropic"]["batches_created"] == 0
    assert sb["openai"]["requests_failed"] == len(lines), sb


def rc_completed(c):
    return c["batch"]["request_counts"]["completed"]


def spec_path():
    cands = [os.environ.get("EMPQ_PROVIDER_SPECS", "")]
    if os.environ.get("EMPQ_TEST_DATA"):
        cands.append(os.path.join(os.path.dirname(os.environ["EMPQ_TEST_DATA"].rstrip("/")), "providers"))
    cands += [os.path.join(SOURCE, "..", "shared", "providers"), os.path.join(SOURCE, "..", "..", "shared", "providers")]
    for d in cands:
        p = os.path.join(d, "openai-openapi-subset.json")
        if d and os.path.isfile(p):
            return p
    raise Skip("../shared/providers/openai-openapi-subset.json is absent (set EMPQ_PROVIDER_SPECS to its folder)")


class Schemas:
    """Validates against the OpenAPI document's components (with $refs)."""

    def __init__(self, path):
        try:
            import jsonschema
        except ImportError:
            raise Skip("python3-jsonschema is not installed")
        self.js = jsonschema
        with open(path) as f:
            self.doc = json.load(f)
        self.relaxed = set()
        self.checked = 0

    def validator(self, schema):
        resolver = self.js.RefResolver("", self.doc)
        return self.js.Draft202012Validator(schema, resolver=resolver)

    def relax(self, obj, name):
        """Drops null values of optional properties whose schema has no null."""
        sch = self.doc["components"]["schemas"][name]
        props, required = sch.get("properties", {}), set(sch.get("required", []))
        out = {}
        for k, v in obj.items():
            if v is None and k not in required and k in props and not self.validator(props[k]).is_valid(None):
                self.relaxed.add(f"{name}.{k}")
                continue
            out[k] = v
        return out

    def check(self, obj, name):
        if name == "Batch":
            obj = self.relax(obj, name)
        elif name == "ListBatchesResponse":
            obj = dict(obj, data=[self.relax(b, "Batch") for b in obj["data"]])
        self.validator({"$ref": f"#/components/schemas/{name}"}).validate(obj)
        self.checked += 1


OPENAI = {}  # test_openai_sdk_batches' report and raw bodies, for test_openai_openapi


def test_openai_sdk_batches():
    rep, sa, sb, base, raw = run_script("batch_openai.mjs", "openai", openai_requests())
    OPENAI.update(rep=rep, raw=raw)
    check_openai(rep, sa, sb)
    # what the SDK sent: its own paths and auth
    sent = [s for s in rep["cases"]["batch"]["requests"] if s["path"].startswith("/v1/")]
    paths = [s["method"] + " " + s["path"].split("?")[0] for s in sent]
    assert paths[0] == "POST /v1/files" and paths[1] == "POST /v1/batches", paths
    assert all(s["headers"]["authorization"] == f"Bearer {KEY}" for s in sent)
    # (the SDK hands fetch a FormData body, fetch sets the multipart Content-Type; the server
    # refuses any other, so the upload's success shows the SDK's multipart form was read)


def test_openai_openapi():
    """The objects the SDK received, and the raw list and error bodies, against the OpenAPI document."""
    assert OPENAI, "test_openai_sdk_batches did not run"
    rep, raw = OPENAI["rep"], OPENAI["raw"]
    sc = Schemas(spec_path())
    v = ok(rep, "batch")
    c = ok(rep, "cancel")
    for b in [v["created"], v["batch"], c["cancelling"], c["batch"], ok(rep, "invalid_file")["batch"],
              ok(rep, "injected_failures")["batch"], *v["batches_listed"]]:
        sc.check(b, "Batch")
    for f in [v["file"], v["file_retrieved"], v["output_file"], *v["files_listed"]]:
        sc.check(f, "OpenAIFile")
    st, body = raw["batches"]
    assert st == 200 and len(body["data"]) == 3, body  # newest first: the 3 batches of server A
    assert body["data"][0]["id"] == ok(rep, "invalid_file")["batch"]["id"], body["data"][0]
    sc.check(body, "ListBatchesResponse")
    st, body = raw["files"]
    assert st == 200 and len(body["data"]) == 3, body
    sc.check(body, "ListFilesResponse")
    st, body = raw["missing"]
    assert st == 404, body
    sc.check(body, "ErrorResponse")
    print(f"   {sc.checked} objects valid against {os.path.basename(spec_path())}; null read as absent: "
          f"{sorted(sc.relaxed)}", flush=True)


# --------------------------------------------------------------------------
# Anthropic
# --------------------------------------------------------------------------

def test_anthropic_sdk_batches():
    reqs = anthropic_requests()
    rep, sa, sb, base, _ = run_script("batch_anthropic.mjs", "@anthropic-ai/sdk", reqs)
    v = ok(rep, "batch")
    cr = v["created"]
    assert cr["type"] == "message_batch" and cr["processing_status"] == "in_progress", cr
    assert cr["request_counts"] == {"processing": 6, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert cr["results_url"] is None and cr["ended_at"] is None and cr["archived_at"] is None, cr
    assert v["seen"] == ["in_progress", "ended"], v["seen"]
    b = v["batch"]
    assert b["request_counts"] == {"processing": 0, "succeeded": 5, "errored": 1, "canceled": 0, "expired": 0}, b
    assert b["results_url"] == f"{base}/v1/messages/batches/{b['id']}/results" and b["ended_at"], b
    res = {r["custom_id"]: r["result"] for r in v["results"]}
    assert set(res) == {r["custom_id"] for r in reqs}, res.keys()
    for cid, r in res.items():
        if cid == "job-bad":
            assert r["type"] == "errored" and r["error"]["type"] == "error", r
            assert r["error"]["error"]["type"] == "invalid_request_error", r
            assert "max_tokens" in r["error"]["error"]["message"], r
        else:
            assert r["type"] == "succeeded" and r["message"]["type"] == "message", r
            assert r["message"]["content"][0]["type"] == "text" and r["message"]["stop_reason"] == "end_turn", r
    assert b["id"] in [x["id"] for x in v["listed"]]
    sent = [s["method"] + " " + s["path"] for s in rep["cases"]["batch"]["requests"]]
    assert f"GET /v1/messages/batches/{b['id']}/results" in sent, sent  # results() followed results_url

    inter = ok(rep, "interactive")
    m = res["job-0"]["message"]
    assert m["content"] == inter["content"] and m["usage"] == inter["usage"], (m, inter)

    c = rep["cases"]["results_before_end"]  # raised by the SDK itself, no HTTP status
    assert not c["ok"] and c["error"]["class"] == "AnthropicError", c
    assert "No batch `results_url`" in c["error"]["message"], c

    c = ok(rep, "cancel")
    assert c["before"]["request_counts"]["succeeded"] >= 1, c["before"]
    assert c["canceling"]["processing_status"] == "canceling" and c["canceling"]["cancel_initiated_at"], c
    assert c["seen"][-1] == "ended", c["seen"]
    cnt = c["batch"]["request_counts"]
    canceled = [r for r in c["results"] if r["result"]["type"] == "canceled"]
    assert cnt["canceled"] == len(canceled) >= 1 and cnt["processing"] == 0, (cnt, c["results"])
    assert cnt["succeeded"] + cnt["errored"] + cnt["canceled"] == 6 and cnt["succeeded"] >= 1, cnt
    assert len([r for r in c["results"] if r["result"]["type"] == "succeeded"]) == cnt["succeeded"], c["results"]
    print(f"   anthropic cancel: {len(canceled)} of 6 canceled, {cnt['succeeded']} succeeded", flush=True)

    f = ok(rep, "injected_failures")
    errored = [r for r in f["results"] if r["result"]["type"] == "errored"]
    api = [r for r in errored if r["result"]["error"]["error"]["type"] == "api_error"]
    # every errored result is an injected api_error, or job-bad's own 400 when the draw spared it
    assert all(r in api or r["custom_id"] == "job-bad" for r in errored), errored
    cnt = f["batch"]["request_counts"]
    assert len(api) >= 1 and cnt["succeeded"] >= 1 and cnt["errored"] == len(errored) >= 2, (cnt, len(api))
    print(f"   anthropic --batch-fail 0.5: {len(api)} of 6 requests got the injected api_error", flush=True)

    e = err(rep, "duplicate_ids", "BadRequestError", 400)
    assert "custom_id" in e["message"], e
    err(rep, "unknown_batch", "NotFoundError", 404)

    an = sa["anthropic"]
    assert an["batches_created"] == 3 and an["cancels"] == 2 and an["batch_lists"] == 1, an
    assert an["results_downloads"] == 2 and an["open"] == 0, an
    assert an["requests_cancelled"] >= len(canceled), an
    assert sa["openai"]["batches_created"] == 0 and sb["anthropic"]["requests_failed"] == len(errored), sb


# --------------------------------------------------------------------------
# Gemini
# --------------------------------------------------------------------------

def gemini_requests():
    prompts = ["I failed my driving test again.", "My best friend moved away.", "I got the job!",
               "I cannot sleep before my exam.", "My dog is sick."]
    reqs = [{"contents": p, "config": {"maxOutputTokens": 120}, "metadata": {"key": f"job-{i}"}}
            for i, p in enumerate(prompts)]
    # a request generateContent refuses: its error Status in the batch
    reqs.append({"contents": "hello", "config": {"temperature": 5}, "metadata": {"key": "job-bad"}})
    return reqs


def test_genai_sdk_batches():
    reqs = gemini_requests()
    rep, sa, sb, base, _ = run_script("batch_genai.mjs", "@google/genai", reqs)
    v = ok(rep, "batch")
    cr = v["created"]
    assert cr["state"] == "JOB_STATE_PENDING" and cr["displayName"] == "sdk-batch", cr
    assert cr["name"].startswith("batches/") and cr["model"] == "models/fake-warm", cr
    order = ["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]
    assert v["seen"][-1] == "JOB_STATE_SUCCEEDED" and in_order(v["seen"], order), v["seen"]
    assert "JOB_STATE_RUNNING" in v["seen"], v["seen"]  # --batch-delay-ms 1500: seen running
    assert v["job"]["endTime"] and v["job"]["displayName"] == "sdk-batch", v["job"]
    res = v["responses"]
    assert [r["metadata"] for r in res] == [r["metadata"] for r in reqs], res  # request order, metadata back
    for r in res:
        if r["metadata"]["key"] == "job-bad":
            assert r["text"] is None and r["error"]["code"] == 3, r  # INVALID_ARGUMENT
            assert "temperature" in r["error"]["message"], r
        else:
            assert r["error"] is None and r["text"] and r["finish"] == "STOP", r
    assert cr["name"] in [x["name"] for x in v["listed"]], v["listed"]
    sent = [(s["method"], s["path"], s["headers"].get("x-goog-api-key")) for s in rep["cases"]["batch"]["requests"]]
    assert any(mth == "POST" and p.endswith("/models/fake-warm:batchGenerateContent") for mth, p, _ in sent), sent
    assert any(mth == "GET" and p.endswith("/" + cr["name"]) for mth, p, _ in sent), sent
    assert all(k == KEY for _, _, k in sent), sent

    inter = ok(rep, "interactive")
    assert res[0]["text"] == inter["text"] and res[0]["usage"] == inter["usage"], (res[0], inter)

    c = ok(rep, "cancel")
    assert c["seen"][-1] == "JOB_STATE_CANCELLED" and c["state"] == "JOB_STATE_CANCELLED", c
    answered = [r for r in c["responses"] if r["text"]]
    assert 1 <= len(c["responses"]) < 6 and len(answered) == len(c["responses"]), c["responses"]
    print(f"   gemini cancel: {6 - len(c['responses'])} of 6 left without a response", flush=True)

    f = ok(rep, "injected_failures")
    internal = [r for r in f["responses"] if r["error"] and r["error"]["code"] == 13]
    failed = [r for r in f["responses"] if r["error"]]
    assert all(r in internal or r["metadata"]["key"] == "job-bad" for r in failed), failed
    assert len(internal) >= 1 and len(failed) < 6 and len(f["responses"]) == 6, f["responses"]
    print(f"   gemini --batch-fail 0.5: {len(internal)} of 6 requests got the injected INTERNAL", flush=True)

    e = err(rep, "unknown_batch", "ApiError", 404)
    assert "not found" in e["message"].lower(), e

    g = sa["gemini"]
    assert g["batches_created"] == 2 and g["cancels"] == 1 and g["batch_lists"] == 1 and g["open"] == 0, g
    assert g["results_downloads"] >= 2 and g["requests_succeeded"] == 5 + len(answered), g
    assert sa["openai"]["batches_created"] == 0 and sa["anthropic"]["batches_created"] == 0, sa
    assert sb["gemini"]["requests_failed"] == len(failed), sb


if __name__ == "__main__":
    # the schema test last: its skip (no document, no jsonschema) ends the run
    main(test_http_without_sdks, test_openai_sdk_batches, test_anthropic_sdk_batches, test_genai_sdk_batches,
         test_openai_openapi)
