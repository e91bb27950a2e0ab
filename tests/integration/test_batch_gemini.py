"""Gemini's batch mode end to end (issue 13): a small study with one fake
model, `provider: gemini`, `mode: batch`, through empq-fakellm's Gemini
batch endpoints (models/{model}:batchGenerateContent with inline requests,
batches/{id}, the inlined responses) gives the same responses.jsonl as the
same study run interactively (apart from timing fields), in a few batches,
not one call per job (the fake server's counters under batches.gemini);
per-request failures (the fake server's INTERNAL errors) and expired
batches are handled as on_failure says (dead at once with the provider's
reason, retried in later batches up to max_attempts, or sent again
interactively); a cancelled run cancels its open Gemini batch (the fake
server counts the cancel)."""

import json
import math
import os
import random
import signal
import subprocess
import time

from empqtest import Cluster, main, wait_until
from test_batch_mode import lines_without_timing as without_timing, read_jsonl

PROMPTS = 40
PER_BATCH = 15


def spec(mode, batch_extra="", model_extra=""):
    out = ["name: geminibatch", "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 7",
           "selection:", f"  prompts: {PROMPTS}", "  seed: 42", "  balance: emotion",
           "template:", "  system: You are a kind listener.",
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
           "human:", "  include: true", "models:",
           "  - alias: fake-gemini", "    provider: gemini", "    base_url: \"${EMPQ_FAKELLM_URL}/v1beta\"",
           "    model: fake-warm", "    params: {temperature: 0.7, max_tokens: 128}"]
    if model_extra:
        out.append("    " + model_extra)
    if mode == "batch":
        out += ["    mode: batch", f"    batch: {{max_requests: {PER_BATCH}, poll_ms: 100{batch_extra}}}"]
    return "\n".join(out) + "\n"


def run(mode, fakellm_args, text=None, timeout=90):
    """One study on a fresh cluster: (responses without timing fields, sorted;
    responses; dead letters; fakellm stats)."""
    with Cluster(workers=1, credit=200, fakellm_args=fakellm_args) as c:
        c.start()
        run_id = c.submit(c.write("s.yaml", text or spec(mode)))
        path = c.wait_responses(run_id, timeout=timeout)
        lines = read_jsonl(path)
        flat = without_timing(path)
        dead = read_jsonl(os.path.join(os.path.dirname(path), "dead.jsonl"))
        stats = c.fakellm_stats()
        c.check_alive()
        return flat, lines, dead, stats


def test_batch_equals_interactive():
    inter, _, _, istats = run("interactive", [])
    batch, lines, dead, bstats = run("batch", ["--batch-delay-ms", "300"])
    assert len(batch) == PROMPTS * 2 and not dead, (len(batch), dead[:2])
    diff = [(a, b) for a, b in zip(batch, inter) if a != b]
    assert not diff, f"{len(diff)} batch responses differ from interactive ones, e.g.:\n{diff[0][0]}\n{diff[0][1]}"
    g = bstats["batches"]["gemini"]
    least = math.ceil(PROMPTS / PER_BATCH)  # batches of at most 15 requests: 3 for 40 jobs, not 40 calls
    assert least <= g["batches_created"] <= 2 * least + 1, g
    assert g["requests_succeeded"] == PROMPTS and g["open"] == 0, g
    assert g["results_downloads"] == g["batches_created"], g  # each ended batch read once (its end shows its results)
    assert bstats.get("requests", 0) == 0, f"interactive calls in batch mode: {bstats.get('requests')}"
    assert bstats["batches"]["openai"]["batches_created"] == 0, bstats["batches"]["openai"]
    assert istats.get("requests") == PROMPTS, istats.get("requests")
    print(f"   gemini batch mode: {g['batches_created']} batches, {g['batch_gets']} gets; interactive run "
          f"{istats.get('requests')} requests", flush=True)


def test_failures_and_expiry():
    """Per-request INTERNAL errors with on_failure dead: each failed job is
    dead at once, with the provider's message. Expired batches (the fake
    server answers the first half of each, Gemini lists no response for the
    rest): on_failure batch retries the expired jobs in new batches up to
    max_attempts (3), then they are dead as batch_expired; on_failure
    interactive sends each expired request again at once, alone."""
    _, lines, dead, st = run("batch", ["--batch-delay-ms", "200", "--batch-fail", "0.3"],
                             spec("batch", ", on_failure: dead"))
    g = st["batches"]["gemini"]
    model_lines = [r for r in lines if r["source"] == "fake-gemini"]
    assert dead and len(dead) == g["requests_failed"], (len(dead), g)
    assert len(model_lines) + len(dead) == PROMPTS, (len(model_lines), len(dead))
    assert all("Internal error encountered" in d["reason"] and d["attempts"] == 1 for d in dead), dead[:2]
    print(f"   INTERNAL, on_failure dead: {len(dead)} dead at once, {len(model_lines)} done", flush=True)

    _, lines, dead, st = run("batch", ["--batch-delay-ms", "200", "--batch-expire"],
                             spec("batch", model_extra="max_attempts: 3"))
    g = st["batches"]["gemini"]
    model_lines = [r for r in lines if r["source"] == "fake-gemini"]
    assert dead and all("batch_expired" in d["reason"] and d["attempts"] == 3 for d in dead), dead[:2]
    assert len(model_lines) + len(dead) == PROMPTS, (len(model_lines), len(dead))
    assert max(r["attempts"] for r in model_lines) > 1, "no job needed a second batch"
    assert g["requests_succeeded"] == len(model_lines) and st.get("requests", 0) == 0, (g, st.get("requests"))
    print(f"   expired, on_failure batch: {len(model_lines)} done (max attempts "
          f"{max(r['attempts'] for r in model_lines)}), {len(dead)} dead as batch_expired, "
          f"{g['batches_created']} batches", flush=True)

    _, lines, dead, st = run("batch", ["--batch-delay-ms", "200", "--batch-expire"],
                             spec("batch", ", on_failure: interactive"))
    g = st["batches"]["gemini"]
    assert not dead and len(lines) == PROMPTS * 2 and all(r["response"] for r in lines), (len(lines), dead[:2])
    # every job a batch left unanswered was asked once interactively
    assert st["requests"] == PROMPTS - g["requests_succeeded"] > 0, (st["requests"], g)
    print(f"   expired, on_failure interactive: {g['requests_succeeded']} answered in batches, "
          f"{st['requests']} interactively", flush=True)


def test_cancel_cancels_batch():
    """A run cancelled while its Gemini batches run: the worker sends
    batches/{id}:cancel for each (its answer is an empty object) and reads
    the batch on to its end (BATCH_STATE_CANCELLED)."""
    with Cluster(workers=1, credit=200, fakellm_args=["--batch-delay-ms", "20000"]) as c:
        c.start()
        run_id = c.submit(c.write("c.yaml", spec("batch")))
        wait_until("the batches open at the fake server",
                   lambda: c.fakellm_stats()["batches"]["gemini"]["open"] >= math.ceil(PROMPTS / PER_BATCH),
                   timeout=30)

        def status_batches():
            st = json.loads(c.cli(["status", run_id, "--json"]).stdout)
            st = st["runs"][0] if "runs" in st else st
            return st["batches"]

        wait_until("status shows the submitted batches",
                   lambda: len(status_batches()) == 3 and
                   all(b["state"] == "submitted" and b["provider_status"] for b in status_batches()),
                   timeout=20, interval=0.2)
        bs = status_batches()
        assert sum(b["requests"] for b in bs) == PROMPTS and all(b["provider_id"] for b in bs), bs
        assert all(b["provider_status"].startswith("BATCH_STATE_") for b in bs), bs
        c.cli(["cancel", run_id])

        def cancelled():
            g = c.fakellm_stats()["batches"]["gemini"]
            return g["cancels"] == g["batches_created"] and g["open"] == 0

        wait_until("the Gemini batches cancelled", cancelled, timeout=30)
        g = c.fakellm_stats()["batches"]["gemini"]
        wait_until("the cancelled batches read to their end",
                   lambda: c.fakellm_stats()["batches"]["gemini"]["results_downloads"] == g["batches_created"],
                   timeout=30)
        print(f"   {g['cancels']} cancels for {g['batches_created']} batches", flush=True)
        c.check_alive()


def open_records(c):
    """The number of batch records not closed, from Redis."""
    port = c.redis_url.rsplit(":", 1)[1]
    r = subprocess.run(["redis-cli", "-p", port, "--raw", "SCARD", "empq:batches:open"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip() or "0")


def test_worker_sigkill():
    rng = random.Random(int(os.environ.get("EMPQ_FAULT_SEED", "13")))
    for round_no in range(3):
        with Cluster(workers=1, credit=200, name="geminicrash", fakellm_args=["--batch-delay-ms", "1500"]) as c:
            c.start()
            run_id = c.submit(c.write("s.yaml", spec("batch").replace("name: geminibatch",
                                                                      f"name: crash{round_no}")))
            at = rng.uniform(0.05, 2.0)  # while the batches are created, polled or read back
            time.sleep(at)
            c.stop("worker-1", sig=signal.SIGKILL)
            c.start_worker(1)  # the same id: it takes its open batches over at once
            path = c.wait_responses(run_id, timeout=90)
            lines = read_jsonl(path)
            keys = [(r["prompt_index"], r["source"]) for r in lines]
            assert len(keys) == len(set(keys)) == PROMPTS * 2, (len(keys), len(set(keys)))
            assert all(r["response"] for r in lines) and not read_jsonl(os.path.join(os.path.dirname(path),
                                                                                       "dead.jsonl"))
            g = c.fakellm_stats()["batches"]["gemini"]
            assert g["requests_succeeded"] == PROMPTS and g["open"] == 0, g  # no batch created twice
            wait_until("every batch record closed", lambda: open_records(c) == 0, timeout=10)
            print(f"   worker SIGKILL at {at:.2f} s: {len(lines)} lines, {g['batches_created']} batches", flush=True)
            c.check_alive()


if __name__ == "__main__":
    main(test_batch_equals_interactive, test_failures_and_expiry, test_cancel_cancels_batch, test_worker_sigkill)
