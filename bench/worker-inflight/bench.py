#!/usr/bin/env python3
"""One empq-worker holding 512 requests in flight against empq-fakellm at
200 ms latency (issue 3, point 3; DESIGN.md: under 16 MB resident).

Starts redis-server, empq-fakellm (--latency-ms 200), empq-broker, one
empq-worker (--credit 512) and the collector on free loopback ports (the
integration harness, tests/integration/empqtest.py), submits a study of
PROMPTS prompts x 4 fake models (no human source: every job is a backend
call), and records:
  - the worker's peak RSS (VmHWM in /proc/PID/status) after the run, and its
    RSS sampled every 50 ms during it, split in anonymous memory (its heap
    and stacks) and file pages (the shared libraries' code and data);
  - the most requests empq-fakellm held at once (/stats max_in_flight);
  - the wall time from submit to the run's responses.jsonl, against the
    ideal jobs x latency / in flight.

    EMPQ_BIN=build/bin python3 bench/worker-inflight/bench.py [--prompts 2000] [--credit 512]
"""

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

from empqtest import Cluster, demo_like_spec, read_jsonl  # noqa: E402

MODELS = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--credit", type=int, default=512)
    ap.add_argument("--latency-ms", type=int, default=200)
    ap.add_argument("--json", help="write the figures to this file too")
    ap.add_argument("--worker-env", action="append", default=[], metavar="K=V",
                    help="an environment variable for the worker (e.g. MALLOC_ARENA_MAX=1)")
    a = ap.parse_args()
    jobs = a.prompts * len(MODELS)
    wenv = dict(kv.split("=", 1) for kv in a.worker_env)
    with Cluster(workers=1, latency_ms=a.latency_ms, credit=a.credit, name="bench-inflight",
                 worker_env=wenv) as c:
        c.start()
        wpid = c.procs["worker-1"].pid
        time.sleep(0.3)
        rss_idle = status_kb(wpid, "VmRSS")
        text = demo_like_spec("inflight", a.prompts, seed=3, models=MODELS).replace(
            "  include: true", "  include: false")
        spec = c.write("study.yaml", text)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    samples.append((status_kb(wpid, "VmRSS"), status_kb(wpid, "RssAnon"),
                                    status_kb(wpid, "RssFile")))
                except OSError:
                    return
                time.sleep(0.05)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.monotonic()
        run = c.submit(spec)
        path = c.wait_responses(run, timeout=600)
        wall = time.monotonic() - t0
        stop.set()
        th.join()
        lines = read_jsonl(path)
        assert len(lines) == jobs, (len(lines), jobs)
        hwm = status_kb(wpid, "VmHWM")
        stats = c.fakellm_stats()
        in_flight = stats["max_in_flight"]
        ideal = jobs * a.latency_ms / 1000.0 / a.credit
        fig = {
            "jobs": jobs, "credit": a.credit, "latency_ms": a.latency_ms,
            "worker_vmhwm_kb": hwm, "worker_rss_idle_kb": rss_idle,
            "worker_rss_max_sampled_kb": max(x[0] for x in samples) if samples else 0,
            "worker_rss_anon_max_sampled_kb": max(x[1] for x in samples) if samples else 0,
            "worker_rss_file_max_sampled_kb": max(x[2] for x in samples) if samples else 0,
            "fakellm_max_in_flight": in_flight, "fakellm_requests": stats["requests"],
            "wall_s": round(wall, 3), "ideal_s": round(ideal, 3),
            "ideal_over_wall": round(ideal / wall, 3),
        }
        print(json.dumps(fig, indent=1))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(fig, f, indent=1)
                f.write("\n")


if __name__ == "__main__":
    main()
