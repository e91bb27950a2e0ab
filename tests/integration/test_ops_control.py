#!/usr/bin/python3
"""empq pause / resume / cancel / workers / export mid-run / status --watch.

A run of 300 prompts x 1 fake model (50 ms per request, 1 worker of credit
4: ~80 jobs/s): paused in the middle, nothing more finishes beyond what was
in flight; resumed, it completes. Export in the middle says how many jobs
are missing; at the end that it is complete. A cancelled run stays
cancelled (resume refused). `empq workers` lists the worker."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Cluster, demo_like_spec, main, read_jsonl, wait_until  # noqa: E402


def status(c, run):
    return json.loads(c.cli(["status", run, "--json"]).stdout)["runs"][0]


def test_control():
    with Cluster(workers=1, latency_ms=50, credit=4, name="ops-control") as c:
        c.start()
        text = demo_like_spec("ctl", 300, models=("fake-warm",)).replace("  include: true", "  include: false")
        run = c.submit(c.write("study.yaml", text))
        wait_until("some jobs done", lambda: status(c, run)["done"] >= 20, timeout=20, interval=0.05)
        r = c.cli(["pause", run])
        assert "paused" in r.stderr, r.stderr
        time.sleep(0.3)  # what was in flight finishes
        st = status(c, run)
        assert st["state"] == "paused" and st["in_flight"] == 0, st
        done = st["done"]
        time.sleep(0.5)
        st = status(c, run)
        assert st["done"] == done and st["eta_s"] is None, st  # nothing dispatched while paused

        out = os.path.join(c.tmp, "mid.jsonl")
        r = c.cli(["export", run, "--out", out])
        assert f"missing {300 - done}" in r.stderr and "not finished" in r.stderr, r.stderr
        assert len(read_jsonl(out)) == done

        ws = json.loads(c.cli(["workers", "--json"]).stdout)["workers"]
        assert len(ws) == 1 and ws[0]["worker_id"] == "test-worker-1" and ws[0]["credit"] == 4, ws
        assert ws[0]["done"] == done and ws[0]["in_flight"] == 0 and ws[0]["models"] == [], ws
        assert "test-worker-1" in c.cli(["workers"]).stdout

        c.cli(["resume", run])
        r = c.cli(["status", run, "--watch", "0.2"], timeout=30)  # returns when the run is done
        assert r.stdout.count("run " + run) >= 2 and "  done  300/300" in r.stdout, r.stdout[-500:]
        r = c.cli(["export", run, "--out", out])
        assert "is complete" in r.stderr, r.stderr
        assert len(read_jsonl(out)) == 300
        r = c.cli(["pause", run], check=False)
        assert r.returncode == 1 and "done" in r.stderr, r.stderr

        run2 = c.submit(c.write("study2.yaml", text.replace("seed: 42", "seed: 43")), "--force")
        c.cli(["cancel", run2])
        st = status(c, run2)
        assert st["state"] == "cancelled", st
        r = c.cli(["resume", run2], check=False)
        assert r.returncode == 1 and "cancelled" in r.stderr, r.stderr
        r = c.cli(["pause"], check=False)
        assert r.returncode == 2, r.stderr
        r = c.cli(["cancel", "r-nope"], check=False)
        assert r.returncode == 1 and "r-nope" in r.stderr, r.stderr


if __name__ == "__main__":
    main(test_control)
