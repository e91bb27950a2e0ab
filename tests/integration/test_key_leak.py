"""An API key never reaches Redis, the logs, responses.jsonl, dead.jsonl or
any error text (issue 3, point 4).

A run with four models whose keys the workers read: a distinctive secret
(sk-test-LEAKCHECK-<random>) for three models in three wire formats
(OpenAI-compatible Bearer and Anthropic x-api-key from the environment,
api_key_env; Gemini x-goog-api-key from a file, api_key_file) and a
different wrong key for the fourth, against
empq-fakellm requiring the secret, with some 500s and malformed bodies
injected, so successes, retries and dead letters (401) all occur. Workers log
at debug level. Then the secret (and the wrong key, and the distinctive
part of each alone) is searched for in: every Redis key and value (each key
DUMPed, and an RDB snapshot written without compression), every process
log, responses.jsonl, dead.jsonl, the dead letters' reasons and excerpts,
and the output of empq status and export. It must appear nowhere.
"""

import json
import os
import secrets
import subprocess

from empqtest import Cluster, Skip, main, program, read_jsonl

PROMPTS = 24


def spec_text(key_file):
    models = [("warm", "openai-compatible", "/v1", "fake-warm", "api_key_env: EMPQ_LEAK_KEY", ""),
              ("formal", "anthropic", "/v1", "fake-formal", "api_key_env: EMPQ_LEAK_KEY",
               "    api_version: \"2023-06-01\"\n"),
              ("brief", "gemini", "/v1beta", "fake-brief", f"api_key_file: \"{key_file}\"", ""),
              ("curious", "openai-compatible", "/v1", "fake-curious", "api_key_env: EMPQ_LEAK_WRONG", "")]
    out = ("name: key-leak\n"
           "dataset:\n  format: synth\n  prompts: %d\n  seed: 9\n"
           "selection:\n  prompts: %d\n  seed: 1\n  balance: none\n"
           "template:\n  system: You are a kind listener.\n"
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"\n"
           "human:\n  include: true\nmodels:\n") % (PROMPTS, PROMPTS)
    for alias, provider, suffix, model, key, extra in models:
        out += (f"  - alias: {alias}\n    provider: {provider}\n"
                f"    base_url: \"${{EMPQ_FAKELLM_URL}}{suffix}\"\n    model: {model}\n"
                f"    {key}\n{extra}"
                "    params: {temperature: 0.7, max_tokens: 64}\n"
                "    max_attempts: 3\n    timeout_ms: 5000\n")
    return out


def redis_cli(c, *args, raw=True):
    port = c.redis_url.rsplit(":", 1)[1]
    r = subprocess.run(["redis-cli", "-p", port] + (["--raw"] if raw else []) + list(args),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def need_fakellm_faults():
    """Skips when this empq-fakellm has no fault injection or provider routes yet."""
    r = subprocess.run([program("empq-fakellm"), "--help"], capture_output=True, text=True, timeout=10)
    if "--fault-429" not in r.stdout + r.stderr or "generateContent" not in r.stdout + r.stderr:
        raise Skip("empq-fakellm has no --fault-* flags or Gemini/Anthropic routes")


def test_key_never_leaks():
    need_fakellm_faults()
    secret = "sk-test-LEAKCHECK-" + secrets.token_hex(12)
    wrong = "sk-test-WRONGKEY-" + secrets.token_hex(12)
    needles = [secret.encode(), secret.split("-")[-1].encode(), wrong.encode(), wrong.split("-")[-1].encode(),
               b"LEAKCHECK", b"WRONGKEY"]
    env = {"EMPQ_LEAK_KEY": secret, "EMPQ_LEAK_WRONG": wrong, "EMPQ_LOG_LEVEL": "debug"}
    with Cluster(workers=2, name="keyleak", worker_env=env,
                 fakellm_args=["--require-key", secret, "--fault-500", "0.1", "--fault-malformed", "0.05",
                               "--fault-seed", "3"]) as c:
        c.start()
        key_file = c.write("gemini.key", secret + "\n")
        os.chmod(key_file, 0o600)
        run = c.submit(c.write("study.yaml", spec_text(key_file)))
        path = c.wait_responses(run, timeout=120)
        lines = read_jsonl(path)
        dead_path = os.path.join(os.path.dirname(path), "dead.jsonl")
        dead = read_jsonl(dead_path)
        sources = {r["source"] for r in lines}
        # the secret works in all three formats; the wrong key gets 401s
        assert {"human", "warm", "formal", "brief"} <= sources, sources
        assert any(d["source"] == "curious" and d["last_status"] == 401 for d in dead), dead[:3]
        assert all(d["reason"] for d in dead)

        found = []

        def search(what, data):
            for n in needles:
                if n in data:
                    found.append(f"{n.decode()} in {what}")

        # Redis: every key and value, DUMPed, and a snapshot, without compression
        redis_cli(c, "CONFIG", "SET", "rdbcompression", "no")
        keys = [k for k in redis_cli(c, "--scan").split(b"\n") if k]
        assert len(keys) > 5, keys
        for k in keys:
            search(f"redis key {k!r}", k)
            search(f"redis value of {k!r}", redis_cli(c, "DUMP", k.decode(), raw=True))
            t = redis_cli(c, "TYPE", k.decode()).strip()
            if t == b"hash":
                search(f"redis hash {k!r}", redis_cli(c, "HGETALL", k.decode()))
            elif t == b"stream":
                search(f"redis stream {k!r}", redis_cli(c, "XRANGE", k.decode(), "-", "+"))
            elif t == b"string":
                search(f"redis string {k!r}", redis_cli(c, "GET", k.decode()))
        redis_cli(c, "SAVE")
        rdb = os.path.join(c.tmp, "redis", "dump.rdb")
        with open(rdb, "rb") as f:
            data = f.read()
        assert len(data) > 1000, len(data)
        assert b"fake-warm" in data  # the snapshot is readable text where it should be
        search("dump.rdb", data)

        # command-line outputs and error texts
        st = c.cli(["status", run, "--json"])
        search("empq status", (st.stdout + st.stderr).encode())
        os.makedirs(os.path.join(c.tmp, "export"), exist_ok=True)
        ex = c.cli(["export", run, "--out", os.path.join(c.tmp, "export", "responses.jsonl")])
        search("empq export", (ex.stdout + ex.stderr).encode())
        for d in dead:
            search("a dead letter's reason/excerpt", json.dumps(d).encode())

        # every file the run wrote: logs (all processes), responses, dead letters, exports
        for root in (c.logs, c.out, os.path.join(c.tmp, "export")):
            for dirpath, _, files in os.walk(root):
                for name in files:
                    p = os.path.join(dirpath, name)
                    with open(p, "rb") as f:
                        search(p, f.read())
        c.failed = bool(found)
        assert not found, "the key leaked:\n  " + "\n  ".join(found)
        n_logs = sum(len(fs) for _, _, fs in os.walk(c.logs))
        print(f"   searched {len(keys)} Redis keys, dump.rdb ({len(data)} bytes), {n_logs} logs, "
              f"{len(lines)} responses, {len(dead)} dead letters: no trace of the key", flush=True)


if __name__ == "__main__":
    main(test_key_never_leaks)
