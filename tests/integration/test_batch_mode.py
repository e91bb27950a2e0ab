"""Batch mode end to end (issue 13): a study with two fake models in batch
mode (OpenAI Batch API and Anthropic Message Batches formats) through
empq-fakellm's batch endpoints gives the same responses.jsonl as the same
study run interactively (apart from timing fields), in a few batches, not
one call per job (the fake server's counters); a rerun is served from the
cache with zero calls."""

import json
import math
import os
import signal
import subprocess
import time
import urllib.request

from empqtest import SOURCE_DIR, Cluster, free_port, main, program, wait_until

PROMPTS = int(os.environ.get("EMPQ_BATCH_PROMPTS", "150"))  # EMPQ_BATCH_PROMPTS=2000: the demo's size
TIMING = ("latency_ms", "created_ms", "started_at", "finished_at", "cache_hit", "request_id", "run_id")


def spec(mode, extra=""):
    out = ["name: batchdemo", "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 7",
           "selection:", f"  prompts: {PROMPTS}", "  seed: 42", "  balance: emotion",
           "template:", "  system: You are a kind listener.",
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
           "human:", "  include: true", "models:"]
    for alias, provider, model in (("fake-gpt", "openai", "fake-warm"), ("fake-claude", "anthropic", "fake-brief")):
        out += [f"  - alias: {alias}", f"    provider: {provider}",
                "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", f"    model: {model}",
                "    params: {temperature: 0.7, max_tokens: 128}"]
        if mode == "batch":
            out += ["    mode: batch", "    batch: {max_requests: 100, poll_ms: 100" + extra + "}"]
    return "\n".join(out) + "\n"


def lines_without_timing(path):
    out = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            for k in TIMING:
                d.pop(k, None)
            out.append(json.dumps(d, sort_keys=True))
    return sorted(out)


def run_study(mode, credit):
    with Cluster(workers=2, credit=credit, fakellm_args=["--batch-delay-ms", "300"]) as c:
        c.start()
        run_id = c.submit(c.write("s.yaml", spec(mode)))
        path = c.wait_responses(run_id, timeout=120 + PROMPTS // 10)
        lines = lines_without_timing(path)
        stats = c.fakellm_stats()
        rerun = None
        if mode == "batch":
            # the same study again: every answer from the cache, no call at all
            before = stats
            again = c.submit(c.write("s2.yaml", spec(mode).replace("name: batchdemo", "name: again")))
            rerun = lines_without_timing(c.wait_responses(again, timeout=60))
            after = c.fakellm_stats()
            assert after["batches"] == before["batches"], (before["batches"], after["batches"])
            assert after.get("requests") == before.get("requests"), (before.get("requests"), after.get("requests"))
            # and interactively: the batch answers serve it too
            inter = c.submit(c.write("s3.yaml", spec("interactive").replace("name: batchdemo", "name: inter")))
            c.wait_responses(inter, timeout=60)
            last = c.fakellm_stats()
            assert last.get("requests") == before.get("requests"), (before.get("requests"), last.get("requests"))
        c.check_alive()
        return lines, stats, rerun


def test_batch_equals_interactive():
    inter, istats, _ = run_study("interactive", None)
    batch, bstats, rerun = run_study("batch", 300)
    assert len(batch) == PROMPTS * 3, len(batch)
    diff = [(a, b) for a, b in zip(batch, inter) if a != b]
    assert not diff, f"{len(diff)} batch responses differ from interactive ones, e.g.:\n{diff[0][0]}\n{diff[0][1]}"
    assert rerun is not None and len(rerun) == len(batch)
    oa, an = bstats["batches"]["openai"], bstats["batches"]["anthropic"]
    # batches of at most 100 requests (a few for 150 jobs per model, tens for the demo's 2,000), not
    # one call per job
    least = math.ceil(PROMPTS / 100)
    assert least <= oa["batches_created"] <= 2 * least + 2, oa
    assert least <= an["batches_created"] <= 2 * least + 2, an
    assert oa["files_uploaded"] == oa["batches_created"], oa
    assert oa["requests_succeeded"] == PROMPTS and an["requests_succeeded"] == PROMPTS, (oa, an)
    assert bstats.get("requests", 0) == 0, f"interactive calls in batch mode: {bstats.get('requests')}"
    print(f"   batch mode: openai {oa['batches_created']} batches, {oa['batch_gets']} polls; "
          f"anthropic {an['batches_created']} batches, {an['batch_gets']} polls; interactive run "
          f"{istats.get('requests')} requests")


def demo_spec(mode):
    """studies/demo.yaml (2,000 prompts, the human answer and four fake
    models: 10,000 responses) with fake-warm in OpenAI's format and
    fake-brief in Anthropic's, both in batch mode when mode is "batch"."""
    with open(os.path.join(SOURCE_DIR, "studies", "demo.yaml")) as f:
        text = f.read()
    batch = "\n    mode: batch\n    batch: {max_requests: 500, poll_ms: 100}" if mode == "batch" else ""
    for alias, provider in (("fake-warm", "openai"), ("fake-brief", "anthropic")):
        head = f"  - alias: {alias}\n    provider: openai-compatible\n"
        assert head in text, alias
        text = text.replace(head, f"  - alias: {alias}\n    provider: {provider}\n")
        params = f"    model: {alias}\n    params: {{temperature: 0.7, max_tokens: 256}}"
        assert params in text, alias
        text = text.replace(params, params + batch)
    return text


def test_demo_study_in_batch_mode():
    """The demo study (10,000 responses) with two of its fake models in
    batch mode (OpenAI's and Anthropic's formats) gives the same
    responses.jsonl as with all of them interactive, apart from timing
    fields, the two batch models in 4 + 4 batches of up to 500 requests
    instead of 4,000 requests."""
    out = {}
    for mode in ("interactive", "batch"):
        with Cluster(workers=2, fakellm_args=["--batch-delay-ms", "300"]) as c:
            c.start()
            t0 = time.monotonic()
            run_id = c.submit(c.write("demo.yaml", demo_spec(mode)))
            lines = lines_without_timing(c.wait_responses(run_id, timeout=300))
            out[mode] = (lines, c.fakellm_stats(), time.monotonic() - t0)
            c.check_alive()
    (inter, istats, it), (batch, bstats, bt) = out["interactive"], out["batch"]
    assert len(inter) == 10000 and len(batch) == 10000, (len(inter), len(batch))
    diff = [(a, b) for a, b in zip(batch, inter) if a != b]
    assert not diff, f"{len(diff)} lines differ, e.g.:\n{diff[0][0]}\n{diff[0][1]}"
    b = bstats["batches"]
    assert b["openai"]["batches_created"] == 4 and b["anthropic"]["batches_created"] == 4, b
    assert bstats["requests"] == 4000 and istats["requests"] == 8000, (bstats["requests"], istats["requests"])
    print(f"   10,000 identical lines; interactive: {istats['requests']} requests in {it:.1f} s; batch mode: "
          f"{bstats['requests']} interactive requests + {b['openai']['batches_created']} OpenAI and "
          f"{b['anthropic']['batches_created']} Anthropic batches ({b['openai']['files_uploaded']} files, "
          f"{b['openai']['batch_gets'] + b['anthropic']['batch_gets']} polls) in {bt:.1f} s", flush=True)


def submit_until_batched(c, name):
    """Submits the batch study; waits until every model job is in a batch.
    Returns the run id and a function reading its status (--json)."""
    run_id = c.submit(c.write(name, spec("batch")))

    def status():
        st = json.loads(c.cli(["status", run_id, "--json"]).stdout)
        return st["runs"][0] if "runs" in st else st

    wait_until("every model job in a batch", lambda: status().get("batched", 0) == 2 * PROMPTS, timeout=30,
               interval=0.2)
    return run_id, status


def metric(text, name, **labels):
    """The sum of the samples of metric name whose labels include labels."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        head, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def test_batched_jobs_leave_the_lease():
    """A job inside a provider batch is not leased: with the default credit
    (4) and a lease of 2 s, batches that take 6 s at the provider still hold
    whole groups of max_requests (the worker fills them credit aside), their
    jobs show as batched in status and the metrics while the batches run, a
    broker SIGKILLed and started again finds them batched, no lease expires,
    and every request reaches the provider once."""
    mport = free_port()
    with Cluster(workers=1, broker_args=["--lease-ms", "2000", "--metrics", f"127.0.0.1:{mport}"],
                 fakellm_args=["--batch-delay-ms", "6000"]) as c:
        c.start()
        run_id, status = submit_until_batched(c, "l.yaml")
        st = status()
        assert st["leased"] == 0 and st["pending"] == 0, st
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert metric(metrics, "empq_jobs", run=run_id, state="batched") == 2 * PROMPTS
        time.sleep(3)  # past the lease: nothing expires, nothing is sent again
        assert status().get("batched", 0) == 2 * PROMPTS
        # a broker that starts again finds them batched (from Redis), not pending
        c.stop("broker", sig=signal.SIGKILL)
        c.spawn("broker", [program("empq-broker"), "--redis", c.redis_url, "--bind", c.jobs_ep, "--control",
                           c.control_ep] + c.broker_args)
        wait_until("the new broker", lambda: c.cli(["status", "--json"], check=False).returncode == 0,
                   timeout=20, interval=0.1)
        st = status()
        assert st.get("batched", 0) == 2 * PROMPTS and st["pending"] == 0, st
        path = c.wait_responses(run_id, timeout=60)
        assert len(read_jsonl(path)) == PROMPTS * 3
        b = c.fakellm_stats()["batches"]
        least = math.ceil(PROMPTS / 100)
        for p in ("openai", "anthropic"):
            assert b[p]["batches_created"] == least, (p, b[p])  # whole groups of 100, not of 4
            assert b[p]["requests_succeeded"] == PROMPTS, (p, b[p])
        with open(os.path.join(c.logs, "broker.log")) as f:
            log = f.read()
        assert "event=lease_expired" not in log
        print(f"   credit 4, lease 2 s, batches of 6 s: {2 * PROMPTS} jobs batched, "
              f"{b['openai']['batches_created']} + {b['anthropic']['batches_created']} batches, no lease expired",
              flush=True)
        c.check_alive()


def redis_cli(c, *args):
    port = c.redis_url.rsplit(":", 1)[1].split("/")[0]
    r = subprocess.run(["redis-cli", "-p", port, "--raw"] + list(args), capture_output=True, text=True,
                       timeout=10, check=True)
    return r.stdout.split()


def test_orphan_batched_jobs():
    """A batched job whose batch record is gone (a Redis crash lost it, or
    its outcome was lost after the record closed) does not wait for the
    26 h guard: the broker sees it in no open record at two checks in a row
    (5 s apart) and makes it pending again, and a worker puts it in a new
    batch."""
    with Cluster(workers=1, fakellm_args=["--batch-delay-ms", "60000"]) as c:
        c.start()
        run_id, status = submit_until_batched(c, "o.yaml")
        c.stop("worker-1", sig=signal.SIGKILL)
        # the records go (as in a Redis crash that lost them)
        keys = redis_cli(c, "SMEMBERS", "empq:batches:open")
        assert keys, "no open batch record"
        for k in keys:
            redis_cli(c, "DEL", f"empq:batch:{k}", f"empq:batch:{k}:owner")
            redis_cli(c, "SREM", "empq:batches:open", k)
        redis_cli(c, "DEL", f"empq:run:{run_id}:batched")
        t0 = time.monotonic()
        wait_until("the orphans pending again", lambda: status().get("batched", 0) == 0, timeout=30, interval=0.2)
        took = time.monotonic() - t0
        assert took <= 15, took
        with open(os.path.join(c.logs, "broker.log")) as f:
            assert f"event=batched_jobs_requeued run={run_id} jobs={2 * PROMPTS}" in f.read()
        before = c.fakellm_stats()["batches"]
        c.start_worker(2)
        # a worker takes them again: into new batches (their answers were never read)
        wait_until("the jobs in new batches", lambda: status().get("batched", 0) == 2 * PROMPTS, timeout=30,
                   interval=0.2)
        after = c.fakellm_stats()["batches"]
        for p in ("openai", "anthropic"):
            assert after[p]["batches_created"] == 2 * before[p]["batches_created"], (p, before[p], after[p])
        print(f"   {2 * PROMPTS} batched jobs without a record pending again after {took:.1f} s", flush=True)
        c.check_alive()


def test_provider_away_and_batch_gone():
    """The provider goes away while batches run: status says so on each
    batch's line (unreachable, with the failed calls) and the worker keeps
    polling with backoff; it comes back without the batches (a restarted
    fake server: 404 on each): their jobs go into new batches and the study
    completes, every job once."""
    with Cluster(workers=1, fakellm_args=["--batch-delay-ms", "1000"]) as c:
        c.start()
        run_id, status = submit_until_batched(c, "g.yaml")
        port = c.fake_url.rsplit(":", 1)[1]
        c.stop("fakellm", sig=signal.SIGKILL)
        wait_until("status shows the provider away",
                   lambda: sum("unreachable" in (b.get("provider_status") or "") for b in status()["batches"]) >= 2,
                   timeout=30, interval=0.3)
        c.spawn("fakellm2", [program("empq-fakellm"), "--port", port, "--latency-ms", "0",
                             "--batch-delay-ms", "300"])
        path = c.wait_responses(run_id, timeout=90)
        lines = read_jsonl(path)
        assert len(lines) == PROMPTS * 3 and len({(r["prompt_id"], r["source"]) for r in lines}) == PROMPTS * 3
        assert not os.path.exists(os.path.join(os.path.dirname(path), "dead.jsonl"))
        with open(os.path.join(c.logs, "worker-1.log")) as f:
            gone = f.read().count("event=batch_gone")
        assert gone >= 2, gone
        b = c.fakellm_stats()["batches"]
        print(f"   provider away then back without its batches: {gone} batches gone, new ones "
              f"{b['openai']['batches_created']} + {b['anthropic']['batches_created']}", flush=True)
        c.check_alive()


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_failures_and_expiry():
    """Per-request 500s inside batches: with on_failure batch the jobs are
    retried in later batches until they succeed (max_attempts 12); with
    on_failure dead each failed one is dead at once with the provider's
    reason. Then expired batches (the fake server answers the first half of
    a batch, the rest expires): on_failure batch retries the expired half in
    new batches until max_attempts (3), then the job is dead as
    batch_expired; on_failure dead makes it dead at once."""
    for flags, why, attempts in ((["--batch-fail", "0.3"], "HTTP 500", 12),
                                 (["--batch-expire"], "batch_expired", 3)):
        with Cluster(workers=1, credit=400, fakellm_args=["--batch-delay-ms", "200"] + flags) as c:
            c.start()
            text = spec("batch").replace("    params: {temperature: 0.7, max_tokens: 128}",
                                         "    params: {temperature: 0.7, max_tokens: 128}\n"
                                         f"    max_attempts: {attempts}")
            # the Anthropic model makes a failed request dead at once
            parts = text.split("  - alias: fake-claude")
            text = parts[0] + "  - alias: fake-claude" + parts[1].replace("poll_ms: 100}",
                                                                            "poll_ms: 100, on_failure: dead}")
            run_id = c.submit(c.write("f.yaml", text))
            path = c.wait_responses(run_id, timeout=110)
            lines = read_jsonl(path)
            dead = read_jsonl(os.path.join(os.path.dirname(path), "dead.jsonl"))
            assert len(lines) + len(dead) == PROMPTS * 3, (len(lines), len(dead))
            assert all(why in d["reason"] for d in dead), dead[:2]
            gpt = [r for r in lines if r["source"] == "fake-gpt"]
            gpt_dead = [d for d in dead if d["source"] == "fake-gpt"]
            assert all(r["response"] for r in gpt)
            assert max(r["attempts"] for r in gpt) > 1, "no job needed a second batch"
            assert all(d["attempts"] == attempts for d in gpt_dead), gpt_dead[:2]
            if why == "HTTP 500":
                assert not gpt_dead, gpt_dead[:2]
            claude = [r for r in lines if r["source"] == "fake-claude"]
            claude_dead = [d for d in dead if d["source"] == "fake-claude"]
            assert claude_dead and all(d["attempts"] == 1 for d in claude_dead), claude_dead[:2]
            assert len(claude) + len(claude_dead) == PROMPTS, (len(claude), len(claude_dead))
            st = c.fakellm_stats()["batches"]
            print(f"   {why}: fake-gpt done {len(gpt)} (max attempts {max(r['attempts'] for r in gpt)}), "
                  f"dead {len(gpt_dead)}; fake-claude done {len(claude)}, dead {len(claude_dead)}; "
                  f"openai batches {st['openai']['batches_created']}, anthropic "
                  f"{st['anthropic']['batches_created']}")
            c.check_alive()


def test_on_failure_interactive():
    """on_failure: interactive: a request that failed inside a batch (the
    fake server's 500s) is sent at once as one interactive request; every job
    ends done, and the interactive calls are exactly the failed batch
    requests."""
    with Cluster(workers=1, credit=400, fakellm_args=["--batch-delay-ms", "200", "--batch-fail", "0.3"]) as c:
        c.start()
        run_id = c.submit(c.write("i.yaml", spec("batch", ", on_failure: interactive")))
        path = c.wait_responses(run_id, timeout=60)
        lines = read_jsonl(path)
        assert len(lines) == PROMPTS * 3 and all(r["response"] for r in lines), len(lines)
        assert not os.path.exists(os.path.join(os.path.dirname(path), "dead.jsonl"))
        st = c.fakellm_stats()
        failed = st["batches"]["openai"]["requests_failed"] + st["batches"]["anthropic"]["requests_failed"]
        assert failed > 0 and st["requests"] == failed, (failed, st["requests"])
        print(f"   {failed} failed batch requests, {st['requests']} interactive calls", flush=True)
        c.check_alive()


def test_cancel_cancels_batches():
    """empq status lists a run's open batches (state, provider status,
    counts, age, deadline); a run cancelled while its batches run: the
    worker sends the provider's cancel for each open batch (the fake server
    counts them)."""
    with Cluster(workers=1, credit=400, fakellm_args=["--batch-delay-ms", "20000"]) as c:
        c.start()
        run_id = c.submit(c.write("c.yaml", spec("batch")))

        def batches_open():
            st = c.fakellm_stats()["batches"]
            return st["openai"]["open"] >= 1 and st["anthropic"]["open"] >= 1

        wait_until("batches open at the fake server", batches_open, timeout=30)

        def status_batches():
            st = json.loads(c.cli(["status", run_id, "--json"]).stdout)
            st = st["runs"][0] if "runs" in st else st
            return st["batches"]

        # empq status shows each open batch: state, counts, age, deadline
        wait_until("status shows the submitted batches",
                   lambda: len(status_batches()) == 4 and
                   all(b["state"] == "submitted" and b["provider_status"] for b in status_batches()),
                   timeout=20, interval=0.2)
        bs = status_batches()
        assert sorted(b["source"] for b in bs) == ["fake-claude"] * 2 + ["fake-gpt"] * 2, bs
        assert sum(b["requests"] for b in bs) == PROMPTS * 2, bs
        assert all(b["provider_id"] and b["created_at"] and b["expires_at"] for b in bs), bs
        text = c.cli(["status", run_id]).stdout
        assert text.count("  batch ") == 4 and "deadline in" in text, text
        c.cli(["cancel", run_id])

        def cancelled():
            st = c.fakellm_stats()["batches"]
            return st["openai"]["cancels"] >= 1 and st["anthropic"]["cancels"] >= 1 and \
                st["openai"]["open"] == 0 and st["anthropic"]["open"] == 0

        wait_until("the batches cancelled", cancelled, timeout=30)
        st = c.fakellm_stats()["batches"]
        assert st["openai"]["cancels"] == st["openai"]["batches_created"], st["openai"]
        assert st["anthropic"]["cancels"] == st["anthropic"]["batches_created"], st["anthropic"]
        time.sleep(0.5)
        c.check_alive()


def test_batch_price_and_max_cost():
    """Cost at the batch price: fake-gpt has interactive prices of 1 per
    token and no batch price (half: 0.5 per token), fake-claude an explicit
    batch price (0.2 per token). empq status shows those costs; fake-gpt's
    max_cost, below what its whole share would cost at the batch price,
    stops it: the jobs past the budget are never leased, so never put in a
    batch, and what it spent stays within the budget."""
    budget = 1500.0
    text = spec("batch")
    parts = text.split("  - alias: fake-claude")
    text = (parts[0].rstrip("\n") + "\n    prices: {input_per_mtok: 1000000, output_per_mtok: 1000000, "
            f"max_cost: {budget}}}\n" + "  - alias: fake-claude" + parts[1].rstrip("\n") +
            "\n    prices: {input_per_mtok: 1000000, output_per_mtok: 1000000, batch_input_per_mtok: 200000, "
            "batch_output_per_mtok: 200000}\n")
    with Cluster(workers=1, credit=400, fakellm_args=["--batch-delay-ms", "100"]) as c:
        c.start()
        run = c.submit(c.write("cost.yaml", text))

        def status():
            st = json.loads(c.cli(["status", run, "--json"]).stdout)
            st = st["runs"][0] if "runs" in st else st
            return st, {m["source"]: m for m in st["models"]}

        def settled():
            c.check_alive()
            _, m = status()
            return m["fake-claude"]["done"] == PROMPTS and m["fake-gpt"].get("stopped") and \
                m["fake-gpt"]["leased"] == 0

        wait_until("fake-claude done and fake-gpt stopped", settled, timeout=90, interval=0.2)
        time.sleep(0.5)
        st, m = status()
        g, a = m["fake-gpt"], m["fake-claude"]
        assert abs(a["cost"] - 0.2 * (a["tokens_in"] + a["tokens_out"])) < 1e-6, a
        assert abs(g["cost"] - 0.5 * (g["tokens_in"] + g["tokens_out"])) < 1e-6, g
        whole = g["cost"] / max(g["done"], 1) * PROMPTS
        assert whole > budget, (whole, budget)  # the whole share would cost more than the budget
        assert budget * 0.5 <= g["cost"] <= budget * 1.05, g
        assert g["pending"] > 0 and g["done"] + g["pending"] == PROMPTS, g
        sent = c.fakellm_stats()["batches"]["openai"]["requests_succeeded"]
        assert sent == g["done"], (sent, g["done"])  # nothing past the budget went into a batch
        print(f"   fake-gpt: {g['done']} done, cost {g['cost']:.1f} of {budget:.0f} (whole share ~{whole:.0f}); "
              f"fake-claude cost {a['cost']:.1f} at 0.2 per token", flush=True)


if __name__ == "__main__":
    if os.environ.get("EMPQ_BATCH_ONLY"):
        main(globals()[os.environ["EMPQ_BATCH_ONLY"]])
    main(test_demo_study_in_batch_mode, test_batched_jobs_leave_the_lease, test_orphan_batched_jobs,
         test_provider_away_and_batch_gone, test_cancel_cancels_batches, test_batch_equals_interactive,
         test_batch_price_and_max_cost,
         test_on_failure_interactive, test_failures_and_expiry)
