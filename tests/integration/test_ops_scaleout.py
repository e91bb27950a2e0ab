#!/usr/bin/python3
"""Scale-out (must-show 1 of issue 7): workers join and leave during a run.

The fake LLM answers after 50 ms and each worker holds 8 jobs (credit 8),
so one worker finishes at most ~160 jobs/s and throughput is bounded by the
workers. A run of 1,600 prompts x 2 fake models (3,200 jobs) starts with 1
worker; 3 more join in the middle; then 2 are stopped (SIGTERM). The
finished-jobs rate, measured in windows from `empq status --json`, rises
with the added workers; the run completes with every job done exactly once
and none dead. Then a worker started with `--models fake-brief` alone takes
only fake-brief's jobs of a new run."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Cluster, demo_like_spec, main, program, read_jsonl, wait_until  # noqa: E402

PROMPTS = 1600
MODELS = ("fake-warm", "fake-brief")
WINDOW = 2.0


def status(c, run):
    return json.loads(c.cli(["status", run, "--json"]).stdout)["runs"][0]


def measure(c, run, seconds):
    """Finished jobs per second over about `seconds`, from status samples."""
    t0, s0 = time.monotonic(), status(c, run)
    n0 = s0["done"] + s0["dead"]
    time.sleep(seconds)
    t1, s1 = time.monotonic(), status(c, run)
    n1 = s1["done"] + s1["dead"]
    assert n1 < s1["total"], f"the run finished inside a window ({n1}/{s1['total']}): too few jobs"
    return (n1 - n0) / (t1 - t0)


def spec(c, name, prompts):
    text = demo_like_spec(name, prompts, models=MODELS).replace("  include: true", "  include: false")
    return c.write(name + ".yaml", text)


def test_scaleout():
    with Cluster(workers=0, latency_ms=50, credit=8, name="ops-scaleout") as c:
        c.start(workers=False)
        run = c.submit(spec(c, "scale", PROMPTS))
        total = PROMPTS * len(MODELS)
        c.start_worker(1)
        wait_until("the first jobs done", lambda: status(c, run)["done"] > 0, timeout=20, interval=0.05)
        r1 = measure(c, run, WINDOW)

        for i in (2, 3, 4):
            c.start_worker(i)
        wait_until("4 workers", lambda: len(json.loads(c.cli(["workers", "--json"]).stdout)["workers"]) == 4,
                   timeout=10, interval=0.05)
        time.sleep(0.3)
        r4 = measure(c, run, WINDOW)

        for i in (1, 2):
            c.stop(f"worker-{i}", sig=signal.SIGTERM)
        wait_until("2 workers", lambda: len(json.loads(c.cli(["workers", "--json"]).stdout)["workers"]) == 2,
                   timeout=10, interval=0.05)
        time.sleep(0.3)
        r2 = measure(c, run, 1.0)
        print(f"   finished jobs/s: 1 worker {r1:.0f}, 4 workers {r4:.0f}, 2 workers {r2:.0f} "
              f"(credit 8, 50 ms per request: at most 160/s per worker)", file=sys.stderr)
        assert r4 > 2.0 * r1, f"4 workers ran {r4:.0f}/s, 1 worker {r1:.0f}/s: no scale-out"
        assert r2 > 1.3 * r1, f"2 workers ran {r2:.0f}/s, 1 worker {r1:.0f}/s"
        assert r2 < r4, f"2 workers ran {r2:.0f}/s, 4 workers {r4:.0f}/s"

        lines = read_jsonl(c.wait_responses(run, timeout=60))
        st = status(c, run)
        assert st["state"] == "done" and st["done"] == total and st["dead"] == 0, st
        keys = [(l["prompt_index"], l["source"]) for l in lines]
        assert len(keys) == total and set(keys) == {(p, m) for p in range(PROMPTS) for m in MODELS}, \
            "responses.jsonl misses or repeats jobs"
        assert all(l["response"] for l in lines), "an empty response"
        calls = c.fakellm_stats()["requests"]
        assert calls >= total, calls
        print(f"   {total} jobs done, none lost, none dead; {calls} backend calls "
              f"({calls - total} asked again after the SIGTERMs)", file=sys.stderr)

        # a model filter: only fake-brief's jobs
        for i in (3, 4):
            c.stop(f"worker-{i}")
        n = 40
        run2 = c.submit(spec(c, "filter", n))
        c.spawn("worker-brief", [program("empq-worker"), "--redis", c.redis_url, "--broker", c.jobs_ep,
                                 "--id", "brief-only", "--credit", "8", "--models", "fake-brief"],
                env={"EMPQ_FAKELLM_URL": c.fake_url})
        wait_until("fake-brief done", lambda: {m["source"]: m for m in status(c, run2)["models"]}
                   ["fake-brief"]["done"] == n, timeout=20, interval=0.05)
        time.sleep(0.3)
        models = {m["source"]: m for m in status(c, run2)["models"]}
        assert models["fake-warm"]["done"] == 0 and models["fake-warm"]["in_flight"] == 0, models
        assert models["fake-warm"]["pending"] == n, models
        ws = json.loads(c.cli(["workers", "--json"]).stdout)["workers"]
        assert [(w["worker_id"], w["models"], w["done"]) for w in ws] == [("brief-only", ["fake-brief"], n)], ws
        c.start_worker(5)  # serves every model: the run completes
        lines = read_jsonl(c.wait_responses(run2, timeout=30))
        assert len(lines) == 2 * n
        c.check_alive()


if __name__ == "__main__":
    main(test_scaleout)
