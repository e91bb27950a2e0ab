"""A job whose leases keep ending without an outcome (a request that kills
every worker taking it, or one that hangs past its lease) is not handed out
forever: once its attempt would pass max_attempts + 3 the broker writes its
dead letter ("given up by the broker ... without an outcome") and marks it
dead, and the run completes. Here every model request hangs (fakellm
--fault-hang 1) and leases last 300 ms (broker --lease-ms 300)."""

import json

from faultlib import FaultCluster, demo_like_spec, main, os, say, signal, time, wait_until

PROMPTS = 20
MAX_ATTEMPTS = 2


def test_no_outcome_gives_up():
    with FaultCluster("faults-no-outcome", workers=2, credit=64, fakellm_args=["--fault-hang", "1"]) as c:
        c.broker_args = ("--lease-ms", "300")
        c.start()
        spec = demo_like_spec("no-outcome", PROMPTS, seed=3, models=("fake-warm",))
        spec = spec.replace("    params: {temperature: 0.7, max_tokens: 128}",
                            f"    max_attempts: {MAX_ATTEMPTS}\n    params: {{temperature: 0.7, max_tokens: 128}}")
        t0 = time.monotonic()
        run_id = c.submit(c.write("study.yaml", spec))
        path = c.wait_responses(run_id, timeout=60)
        took = time.monotonic() - t0
        lines = [json.loads(x) for x in open(path) if x.strip()]
        dead_path = os.path.join(os.path.dirname(path), "dead.jsonl")
        # the collector writes dead.jsonl first: it is there with responses.jsonl
        assert os.path.exists(dead_path), dead_path
        dead = [json.loads(x) for x in open(dead_path) if x.strip()]
        say(f"run over in {took:.1f}s: {len(lines)} lines, {len(dead)} dead; first reason: "
            f"{dead[0].get('reason') if dead else None}")
        assert len(dead) == PROMPTS, f"{len(dead)} dead letters, want {PROMPTS}"
        assert all("without an outcome" in (d.get("reason") or "") for d in dead), dead[0]
        # at least max_attempts + 3 leases (more when one was answered, e.g. a
        # RETRY from a connection the fake server dropped)
        assert all(d.get("attempts", 0) >= MAX_ATTEMPTS + 3 for d in dead), [d.get("attempts") for d in dead]
        # a collector killed between writing dead.jsonl and responses.jsonl:
        # the next one finds no responses.jsonl and writes the run again
        c.stop("collector", sig=signal.SIGKILL)
        os.unlink(path)
        c.start_collector()
        wait_until("responses.jsonl written again", lambda: os.path.exists(path), timeout=15)
        assert [json.loads(x) for x in open(path) if x.strip()] == lines
        assert [json.loads(x) for x in open(dead_path) if x.strip()] == dead
        # a dead.jsonl deleted beside its responses.jsonl is written again too
        c.stop("collector", sig=signal.SIGKILL)
        os.unlink(dead_path)
        c.start_collector()
        wait_until("dead.jsonl written again", lambda: os.path.exists(dead_path), timeout=15)
        assert [json.loads(x) for x in open(dead_path) if x.strip()] == dead


if __name__ == "__main__":
    main(test_no_outcome_gives_up)
