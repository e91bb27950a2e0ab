#!/usr/bin/env python3
"""DESIGN.md's headline targets ("Targets to design for") on one machine.

Starts redis-server, empq-fakellm, empq-broker, WORKERS empq-workers and the
collector on free loopback ports (the integration harness,
tests/integration/empqtest.py), submits a study of PROMPTS synthetic prompts
x 5 sources (the dataset's human answer plus 4 fake models; the human jobs go
through the broker and a worker like any other job but make no backend
call), and times it from `empq submit` to the run's responses.jsonl (polled
every 2 ms).

Scenarios (--scenario):
  zero     --latency-ms 0: end-to-end jobs/s (target >= 10,000 jobs/s).
  latency  --latency-ms 100 or 500, WORKERS x CREDIT in flight: wall time
           against the ideal backend_jobs x latency / (workers x credit);
           the human jobs count zero in the ideal (no backend call).
  cached   submits the study once to fill the cache (not timed), then
           submits it again RUNS times: every job a cache hit; checks that
           empq-fakellm's /stats request count did not move (target 0.25 s).
  big      like zero at a large size (e.g. --prompts 200000: 1,000,000
           jobs): broker RSS before submit, sampled every 50 ms, and VmHWM
           after; bytes a job = (peak RSS - RSS before) / jobs (target
           < 300 B/job) and jobs/s (target within 20% of the 10,000-job one).

Each run starts a fresh cluster (empty Redis, empty cache), except cached,
which reuses one cluster for its runs.

    EMPQ_BIN=build-bench/bin /usr/bin/python3 bench/throughput/bench.py \\
        --scenario zero --prompts 2000 --runs 3 --json bench/throughput/results-zero.json
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

from empqtest import Cluster, demo_like_spec, wait_until  # noqa: E402

MODELS = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")
SOURCES = len(MODELS) + 1  # the human answer is a source too


def status_kb(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM), 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields.get(field, "0 kB").split()[0])


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def all_cpu():
    """pid -> (name, cpu seconds) of every process on the machine."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                name = st[st.index("(") + 1:st.rindex(")")]
                rest = st.rsplit(")", 1)[1].split()
                out[int(d)] = (name, (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK"))
            except (OSError, ValueError):
                pass
    return out


def others(before, after, mine):
    """CPU seconds other processes (not the cluster, not this script) used
    between two all_cpu() snapshots, by name, the busiest first."""
    used = {}
    for pid, (name, cpu) in after.items():
        if pid in mine or pid == os.getpid():
            continue
        d = cpu - before.get(pid, (name, 0.0))[1]
        if d > 0.005:
            used[name] = used.get(name, 0.0) + d
    return {k: round(v, 2) for k, v in sorted(used.items(), key=lambda kv: -kv[1])[:6]}


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def count_lines(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def export_ms(c, run_id):
    """The collector's own time writing responses.jsonl (its log line)."""
    try:
        with open(os.path.join(c.logs, "collector.log"), errors="replace") as f:
            for line in f:
                if "event=run_exported" in line and f"run={run_id} " in line:
                    m = re.search(r" ms=(\d+)", line)
                    if m:
                        return int(m.group(1))
    except OSError:
        pass
    return None


class Sampler:
    """Samples the broker's VmRSS every 50 ms in a thread."""

    def __init__(self, pid):
        self.pid = pid
        self.max_kb = 0
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            try:
                self.max_kb = max(self.max_kb, status_kb(self.pid, "VmRSS"))
            except OSError:
                return
            time.sleep(0.05)

    def __enter__(self):
        self.th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.th.join()


class FakeSampler:
    """Polls empq-fakellm's /stats every 20 ms (latency scenario): when the
    first backend request came, when the last one was answered, and how
    many were in flight on average in between."""

    def __init__(self, c, backend, on):
        self.c = c
        self.backend = backend
        self.on = on
        self.samples = []  # (t, in_flight, requests)
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.t0 = None

    def loop(self):
        while not self.stop.is_set():
            try:
                st = self.c.fakellm_stats()
                self.samples.append((time.monotonic(), st["in_flight"], st["requests"]))
            except OSError:
                pass
            time.sleep(0.02)

    def __enter__(self):
        self.t0 = time.monotonic()
        if self.on:
            self.th.start()
        return self

    def __exit__(self, *exc):
        if self.on:
            self.stop.set()
            self.th.join()

    def summary(self, t0):
        """Times relative to t0 (the submit): first request seen, last reply
        seen, mean in flight over that span."""
        s = self.samples
        if not s:
            return {}
        first = next((x for x in s if x[1] > 0 or x[2] > 0), None)
        last = next((x for x in s if x[2] >= self.backend and x[1] == 0), None)
        if first is None or last is None:
            return {}
        span = [x for x in s if first[0] <= x[0] <= last[0]]
        mean = sum(x[1] for x in span) / len(span) if span else 0
        return {"backend_first_s": round(first[0] - t0, 3),
                "backend_last_s": round(last[0] - t0, 3),
                "backend_span_s": round(last[0] - first[0], 3),
                "mean_in_flight": round(mean, 1)}


def timed_run(c, spec, jobs, timeout, extra=()):
    """Submits spec (with extra arguments); returns (run_id, submit_s,
    wall_s, path of responses.jsonl)."""
    t0 = time.monotonic()
    run = c.submit(spec, *extra)
    t_sub = time.monotonic() - t0
    path_of = os.path.join(c.out, run, "responses.jsonl")

    def ready():
        return os.path.exists(path_of)

    wait_until(f"responses.jsonl of {run}", ready, timeout=timeout, interval=0.002,
               procs=list(c.procs.values()))
    wall = time.monotonic() - t0
    lines = count_lines(path_of)
    assert lines == jobs, (lines, jobs)
    return run, t_sub, wall, path_of


class Perf:
    """`perf record` on each program of the cluster (--perf DIR) while a
    timed run goes on: DIR/<program>.data, one file per process."""

    def __init__(self, c, out_dir, tag):
        self.procs = []
        if not out_dir:
            return
        os.makedirs(out_dir, exist_ok=True)
        for name, pid in pids(c).items():
            data = os.path.join(out_dir, f"{tag}-{name}.data")
            self.procs.append(subprocess.Popen(
                ["perf", "record", "-q", "-F", "1999", "--call-graph", "dwarf,16384",
                 "-o", data, "-p", str(pid)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # perf attaches

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def pids(c):
    return {n: p.pid for n, p in c.procs.items()}


def cpu_all(c):
    out = {}
    for n, pid in pids(c).items():
        try:
            out[n] = cpu_s(pid)
        except OSError:
            pass
    return out


def cpu_delta(a, b):
    return {n: round(b[n] - a.get(n, 0.0), 3) for n in b}


def run_fresh(a, jobs, rec):
    """zero, latency and big: one fresh cluster per run."""
    with Cluster(workers=a.workers, latency_ms=a.latency_ms, credit=a.credit,
                 name="bench-throughput") as c:
        c.start()
        time.sleep(0.5)
        bpid = c.procs["broker"].pid
        spec = c.write("study.yaml", demo_like_spec("throughput", a.prompts, seed=5,
                                                    models=MODELS))
        rss0 = status_kb(bpid, "VmRSS")
        hwm0 = status_kb(bpid, "VmHWM")
        c0 = cpu_all(c)
        o0 = all_cpu()
        fs = FakeSampler(c, a.prompts * len(MODELS), a.latency_ms > 0)
        with Perf(c, a.perf, f"{a.scenario}-{rec['i']}"), Sampler(bpid) as s, fs:
            run, t_sub, wall, path = timed_run(c, spec, jobs, a.timeout,
                                               ["--force"] if a.force else [])
        c1 = cpu_all(c)
        o1 = all_cpu()
        hwm = status_kb(bpid, "VmHWM")
        stats = c.fakellm_stats()
        rec.update({
            "run": run, "submit_s": round(t_sub, 3), "wall_s": round(wall, 3),
            "jobs_per_s": round(jobs / wall, 1), "collector_export_ms": export_ms(c, run),
            "fakellm_requests": stats.get("requests"),
            "fakellm_max_in_flight": stats.get("max_in_flight"),
            "broker_rss_before_kb": rss0, "broker_vmhwm_before_kb": hwm0,
            "broker_rss_max_sampled_kb": s.max_kb, "broker_vmhwm_after_kb": hwm,
            "broker_rss_after_kb": status_kb(bpid, "VmRSS"),
            "broker_bytes_per_job": round((max(hwm, s.max_kb) - rss0) * 1024 / jobs, 1),
            "cpu_s": cpu_delta(c0, c1),
            "other_processes_cpu_s": others(o0, o1, set(pids(c).values())),
        })
        if a.latency_ms > 0:
            backend = a.prompts * len(MODELS)
            inflight = a.workers * a.credit
            ideal = backend * a.latency_ms / 1000.0 / inflight
            ideal_all = jobs * a.latency_ms / 1000.0 / inflight
            rec.update({"in_flight": inflight, "backend_jobs": backend,
                        "ideal_s": round(ideal, 3), "wall_over_ideal": round(wall / ideal, 3),
                        "ideal_all_jobs_s": round(ideal_all, 3),
                        "wall_over_ideal_all_jobs": round(wall / ideal_all, 3)})
            rec.update(fs.summary(fs.t0))
            lat = []
            with open(path, encoding="utf-8") as f:
                for line in f:
                    o = json.loads(line)
                    if o.get("source") != "human" and o.get("latency_ms") is not None:
                        lat.append(o["latency_ms"])
            if lat:
                lat.sort()
                rec.update({"backend_latency_ms_median": lat[len(lat) // 2],
                            "backend_latency_ms_mean": round(sum(lat) / len(lat), 1),
                            "backend_latency_ms_p99": lat[int(len(lat) * 0.99)]})


def run_cached(a, jobs, records):
    with Cluster(workers=a.workers, latency_ms=a.latency_ms, credit=a.credit,
                 name="bench-throughput") as c:
        c.start()
        time.sleep(0.5)
        spec = c.write("study.yaml", demo_like_spec("throughput", a.prompts, seed=5,
                                                    models=MODELS))
        warm, _, warm_wall, _ = timed_run(c, spec, jobs, a.timeout)
        time.sleep(0.5)
        for i in range(a.runs):
            before = c.fakellm_stats()["requests"]
            with Perf(c, a.perf, f"{a.scenario}-{i + 1}"):
                c0 = cpu_all(c)
                o0 = all_cpu()
                run, t_sub, wall, path = timed_run(c, spec, jobs, a.timeout)
                c1 = cpu_all(c)
                o1 = all_cpu()
            after = c.fakellm_stats()["requests"]
            hits = 0
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if json.loads(line).get("cache_hit") is True:
                        hits += 1
            records.append({
                "i": i + 1, "uptime_before": uptime(), "warm_run": warm,
                "warm_wall_s": round(warm_wall, 3), "run": run, "submit_s": round(t_sub, 3),
                "wall_s": round(wall, 3), "jobs_per_s": round(jobs / wall, 1),
                "collector_export_ms": export_ms(c, run),
                "new_backend_calls": after - before, "cache_hit_lines": hits,
                "cpu_s": cpu_delta(c0, c1),
                "other_processes_cpu_s": others(o0, o1, set(pids(c).values()))})
            print(json.dumps(records[-1]), flush=True)
            time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=("zero", "latency", "cached", "big"), default="zero")
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--credit", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--force", action="store_true",
                    help="submit with --force: no cache read, every model job a backend call "
                         "(the synthetic dataset repeats past about 90,000 prompts)")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record every program during each timed run into DIR "
                         "(the figures are then not the benchmark's)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", help="write the figures to this file too")
    a = ap.parse_args()
    jobs = a.prompts * SOURCES
    records = []
    up_before = uptime()
    if a.scenario == "cached":
        run_cached(a, jobs, records)
    else:
        for i in range(a.runs):
            rec = {"i": i + 1, "uptime_before": uptime()}
            run_fresh(a, jobs, rec)
            records.append(rec)
            print(json.dumps(rec), flush=True)
    walls = [r["wall_s"] for r in records]
    med = statistics.median(walls)
    fig = {
        "scenario": a.scenario, "argv": sys.argv, "prompts": a.prompts, "jobs": jobs,
        "sources": SOURCES, "latency_ms": a.latency_ms, "workers": a.workers,
        "credit": a.credit, "force": a.force, "uptime_before": up_before, "uptime_after": uptime(),
        "median_wall_s": med, "median_jobs_per_s": round(jobs / med, 1), "runs": records,
    }
    if a.scenario in ("latency",) and records:
        fig["median_wall_over_ideal"] = statistics.median(r["wall_over_ideal"] for r in records)
    if a.scenario == "big" and records:
        fig["median_broker_bytes_per_job"] = statistics.median(
            r["broker_bytes_per_job"] for r in records)
    print(json.dumps({k: v for k, v in fig.items() if k != "runs"}, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            f.write(json.dumps(fig, indent=1) + "\n")


if __name__ == "__main__":
    main()
