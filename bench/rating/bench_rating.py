#!/usr/bin/env python3
"""bench_rating: the rating site under a study's arrival (Python stdlib).

A demo-sized run (2,000 prompts x 5 sources through the real programs), its
plan (1,000 slots of 10 dialogues), the site in empq-collector; then N
simulated participants (default 1,000) arrive over ARRIVAL seconds (default
60) over HTTP, each with a think time per dialogue; a fraction (default a
tenth) abandons after 0-9 answers and never returns. After the idle timeout
their slots go back to the pool and new participants take them (as Prolific
re-opens returned places) until every slot is done. Then the export is
checked: every slot rated exactly once, none held by two participants, no
rating a finished participant gave lost, no abandoned answer exported.

    EMPQ_BIN=build/bin python3 bench/rating/bench_rating.py [--participants 1000]
        [--arrival-s 60] [--abandon 0.1] [--think-s 0.4] [--timeout-s 10] [--json FILE]

Figures are printed (and written to --json); bench/rating/README.md records
them."""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, HERE)

import loadgen  # noqa: E402
from empqtest import Cluster, demo_like_spec, port_in_file, program, read_jsonl, wait_until  # noqa: E402


def rss_kb(pid, field="VmHWM"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=1000)
    ap.add_argument("--arrival-s", type=float, default=60.0)
    ap.add_argument("--abandon", type=float, default=0.1)
    ap.add_argument("--think-s", type=float, default=0.4)
    ap.add_argument("--timeout-s", type=int, default=10)
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=300)
    ap.add_argument("--json")
    a = ap.parse_args()

    with Cluster(workers=2, name="bench-rating") as c:
        c.start(collector=False)
        pf = os.path.join(c.tmp, "site.port")
        c.spawn("collector", [program("empq-collector"), "--redis", c.redis_url, "--out", c.out,
                              "--site", "0", "--site-port-file", pf])

        site_port = wait_until("site port", lambda: port_in_file(pf), procs=[c.procs["collector"]])
        run = c.submit(c.write("study.yaml", demo_like_spec("bench-rating", a.prompts)))
        lines = read_jsonl(c.wait_responses(run, timeout=300))
        t0 = time.monotonic()
        c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan"), "--completion-code",
               "BENCH", "--timeout-s", str(a.timeout_s)])
        assign_s = time.monotonic() - t0
        st = json.loads(c.cli(["ratings", "status", run, "--json"]).stdout)
        n_slots = st["slots"]
        print(f"run {run}: {len(lines)} responses, {n_slots} slots (assign {assign_s:.2f} s)",
              file=sys.stderr)

        recs, lat, wall = loadgen.run_load("127.0.0.1", site_port, run, a.participants,
                                           a.arrival_s, a.abandon, think_s=a.think_s, seed=1,
                                           workers=a.workers)
        n_full = sum(1 for r in recs if r["status"] == "full")
        n_ab = sum(1 for r in recs if r["status"] == "abandoned")
        print(f"wave 1: {len(recs)} participants in {wall:.1f} s, {lat.total()} requests, "
              f"{n_ab} abandoned, {n_full} found it full", file=sys.stderr)

        # the abandoned slots come back after the idle timeout; new participants take them
        t1 = time.monotonic()
        waves = 0
        while True:
            st = json.loads(c.cli(["ratings", "status", run, "--json"]).stdout)
            if st["done"] == n_slots:
                break
            if st["open"] == 0:
                time.sleep(0.5)
                if time.monotonic() - t1 > a.timeout_s * 5 + 60:
                    raise AssertionError(f"slots never came back: {st}")
                continue
            waves += 1
            more, lat2, _ = loadgen.run_load("127.0.0.1", site_port, run, st["open"], 1.0, 0.0,
                                             think_s=a.think_s / 4, seed=100 + waves,
                                             prefix=f"w{waves}-", workers=a.workers)
            recs += more
            for k, v in lat2.by_kind.items():
                for x in v:
                    lat.add("refill-" + k, x)
        refill_s = time.monotonic() - t1
        collector_hwm = rss_kb(c.procs["collector"].pid)
        out = os.path.join(c.tmp, "ratings")
        t2 = time.monotonic()
        c.cli(["ratings", "export", run, "--out", out])
        export_s = time.monotonic() - t2
        fig = loadgen.verify(out, recs, n_slots, 10, code="BENCH")
        first = {k: v for k, v in lat.summary().items() if not k.startswith("refill-")}
        n_req_first = sum(v["n"] for v in first.values())
        res = {
            "participants_first_wave": a.participants, "arrival_s": a.arrival_s,
            "think_s": a.think_s, "abandon_fraction": a.abandon, "timeout_s": a.timeout_s,
            "slots": n_slots, "abandoned": n_ab, "found_full": n_full,
            "reclaimed": st["reclaimed"], "refill_waves": waves,
            "refill_participants": len(recs) - a.participants,
            "first_wave_wall_s": round(wall, 2), "first_wave_requests": n_req_first,
            "first_wave_req_per_s": round(n_req_first / wall, 1),
            "refill_s": round(refill_s, 2), "assign_s": round(assign_s, 2),
            "export_s": round(export_s, 2), "collector_peak_rss_kb": collector_hwm,
            "latency": lat.summary(), "verified": fig,
        }
        print(json.dumps(res, indent=1))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
