#!/usr/bin/python3
"""What the study console costs (issue 15, "What it must show", point 3).

poll: `empq demo --prompts 2000 --latency-ms 0` (10,000 jobs, zero latency,
2 workers: the DESIGN.md throughput setup) run RUNS times in each of three
ways, interleaved: no console; console on (--console PORT) and idle; console
polled 10 times a second from before the run starts to its end, cycling
through the runs page (`/`: two broker control requests and the Redis
overview), `/progress.json` (what the runs page's script fetches) and the
run's page (`/run/RUN`: the heat map, HKEYS of the 10,000 jobs). Each demo
starts from a fresh folder (an empty Redis: no cache). The figure is the
demo's own jobs/s line (submit to responses.jsonl).

render: one pipeline (tests/integration/empqtest.py) runs a 2,000-prompt x 5
study (10,000 responses) with the console on; then the side-by-side page
of 50 prompts is fetched for pages 1..40 (each twice: the first view of the
run also reads its prompts once), and with a content filter (state + text:
the run's results read in one pipeline and filtered), reading the server's
own time from the Server-Timing header (render;dur=MS: from the request's
start to the page text, Redis included) and the client's wall time.

    EMPQ_BIN=build/bin /usr/bin/python3 bench/console/bench_console.py --part poll --runs 5 --json OUT.json
    EMPQ_BIN=build/bin /usr/bin/python3 bench/console/bench_console.py --part render --json OUT.json
"""

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from empqtest import BIN, Cluster, demo_like_spec, free_port, program, wait_port_file  # noqa: E402


def get(port, path, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body, r


class Poller(threading.Thread):
    """GETs console pages 10 times a second until stopped."""

    def __init__(self, port, hz=10):
        super().__init__(daemon=True)
        self.port, self.period = port, 1.0 / hz
        self.stop = False
        self.ok = self.failed = 0
        self.lat = []
        self.run_id = None

    def run(self):  # noqa: C901 (a loop)
        i = 0
        nxt = time.monotonic()
        while not self.stop:
            paths = ["/", "/progress.json"] + ([f"/run/{self.run_id}"] if self.run_id else [])
            path = paths[i % len(paths)]
            i += 1
            t0 = time.monotonic()
            try:
                st, body, _ = get(self.port, path, timeout=2)
                if st == 200:
                    self.ok += 1
                    self.lat.append((time.monotonic() - t0) * 1000)
                    if path == "/progress.json" and self.run_id is None:
                        runs = json.loads(body).get("runs", [])
                        if runs:
                            self.run_id = runs[0]["id"]
                else:
                    self.failed += 1
            except OSError:
                self.failed += 1  # not listening yet, or stopped
            nxt += self.period
            time.sleep(max(0.0, nxt - time.monotonic()))


class CpuSampler(threading.Thread):
    """Every 50 ms, the CPU seconds (user + system) each program the demo
    started has used so far (redis-server, empq-fakellm, empq-broker, the
    workers, empq-collector); keeps the last reading of each."""

    def __init__(self, parent):
        super().__init__(daemon=True)
        self.parent, self.stop, self.cpu = parent, False, {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self):
        while not self.stop:
            try:
                with open(f"/proc/{self.parent}/task/{self.parent}/children") as f:
                    pids = f.read().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        head, tail = f.read().rsplit(")", 1)
                    name = head.split("(", 1)[1]
                    v = tail.split()
                    self.cpu[f"{name}:{pid}"] = (int(v[11]) + int(v[12])) / self.tick
                except (OSError, ValueError, IndexError):
                    pass
            time.sleep(0.05)

    def by_program(self):
        out = {}
        for k, v in self.cpu.items():
            name = k.split(":")[0]
            out[name] = round(out.get(name, 0) + v, 2)
        return out


def demo(mode, prompts):
    """One demo; returns its jobs/s, the collector's CPU seconds and the
    poller's counts."""
    out = tempfile.mkdtemp(prefix="empq-bench-console-")
    args = [program("empq"), "demo", "--prompts", str(prompts), "--latency-ms", "0", "--out", out]
    poller = None
    if mode != "none":
        port = free_port()
        args += ["--console", str(port)]
        if mode == "polled":
            poller = Poller(port)
            poller.start()
    sampler = None
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        sampler = CpuSampler(proc.pid)
        sampler.start()
        stdout, stderr = proc.communicate(timeout=600)
        r = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
    finally:
        if sampler:
            sampler.stop = True
            sampler.join()
        if poller:
            poller.stop = True
            poller.join()
        shutil.rmtree(out, ignore_errors=True)
    # the demo's last progress line is the final one (every job finished)
    lines = [x for x in re.finditer(r"(\S+) jobs done \([\d.]+%\).*?([\d,]+) jobs/s, ([\d.]+) s", r.stderr)]
    m = lines[-1] if lines else None
    if m is not None and m.group(1).split("/")[0] != m.group(1).split("/")[1]:
        m = None
    if r.returncode != 0 or m is None:
        raise SystemExit(f"demo failed ({r.returncode}):\n{r.stderr[-2000:]}")
    rec = {"mode": mode, "jobs_per_s": int(m.group(2).replace(",", "")), "wall_s": float(m.group(3)),
           "cpu_s": sampler.by_program(), "cluster_cpu_s": round(sum(sampler.cpu.values()), 2),
           "load1": os.getloadavg()[0],
           "line": m.group(0)}
    if poller:
        rec.update(polls_ok=poller.ok, polls_failed=poller.failed,
                   poll_ms_median=round(statistics.median(poller.lat), 2) if poller.lat else None,
                   poll_ms_max=round(max(poller.lat), 2) if poller.lat else None)
    return rec


def part_poll(runs, prompts):
    recs = []
    for i in range(runs):
        for mode in ("none", "idle", "polled"):
            rec = demo(mode, prompts)
            rec["round"] = i + 1
            print(json.dumps(rec), flush=True)
            recs.append(rec)
    summary = {"load1_after": os.getloadavg()[0]}
    for mode in ("none", "idle", "polled"):
        v = [r["jobs_per_s"] for r in recs if r["mode"] == mode]
        summary[mode] = {"median_jobs_per_s": statistics.median(v), "min": min(v), "max": max(v),
                         "cluster_cpu_s_median": statistics.median(r["cluster_cpu_s"] for r in recs if r["mode"] == mode),
                         "collector_cpu_s_median": statistics.median(r["cpu_s"].get("empq-collector", 0)
                                                                     for r in recs if r["mode"] == mode)}
    base = summary["none"]["median_jobs_per_s"]
    for mode in ("idle", "polled"):
        summary[mode]["vs_none"] = round(summary[mode]["median_jobs_per_s"] / base, 4)
    print(json.dumps(summary, indent=1))
    return {"runs": recs, "summary": summary}


def timing(r):
    m = re.match(r"render;dur=([\d.]+)", r.getheader("Server-Timing") or "")
    return float(m.group(1)) if m else None


def part_render(prompts):
    with Cluster(workers=2, credit=256, name="empq-bench-console") as c:
        c.start(collector=False)
        pf = os.path.join(c.tmp, "console.port")
        c.spawn("collector", [program("empq-collector"), "--redis", c.redis_url, "--out", c.out,
                              "--console", "127.0.0.1:0", "--console-port-file", pf,
                              "--broker-control", c.control_ep])
        port = wait_port_file(pf, c.procs["collector"], "console port file")
        run = c.submit(c.write("study.yaml", demo_like_spec("bench-console", prompts)))
        c.wait_responses(run, timeout=300)
        res = {}
        for name, q in [("page_of_50", "per=50&page={p}"),
                        ("page_of_50_filtered", "per=50&page={p}&state=done&q=you")]:
            server, client = [], []
            for rep in range(2):
                for p in range(1, 41):
                    t0 = time.monotonic()
                    st, body, r = get(port, f"/run/{run}/responses?" + q.format(p=p))
                    client.append((time.monotonic() - t0) * 1000)
                    assert st == 200 and body.count(b"<tr data-prompt=") == 50, (st, p)
                    server.append(timing(r))
            first = server[0]
            s = sorted(server)
            res[name] = {"views": len(server), "first_view_ms": first,
                         "server_ms_median": statistics.median(server),
                         "server_ms_p95": s[int(0.95 * (len(s) - 1))], "server_ms_max": s[-1],
                         "client_ms_median": round(statistics.median(client), 2),
                         "client_ms_max": round(max(client), 2),
                         "bytes": len(body)}
            print(name, json.dumps(res[name]), flush=True)
        res["responses"] = prompts * 5
        # CPU per view of the pages the poll cycles through, by program:
        # a quiet measure of what 10 views a second cost
        def cpu(pid):
            with open(f"/proc/{pid}/stat") as f:
                v = f.read().rsplit(")", 1)[1].split()
            return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")

        procs = {n: c.procs[n].pid for n in ("collector", "redis", "broker")}
        res["cpu_ms_per_view"] = {}
        for path in ("/", "/progress.json", f"/run/{run}"):
            n = 300
            before = {k: cpu(v) for k, v in procs.items()}
            t0 = time.monotonic()
            for _ in range(n):
                st, _, _ = get(port, path)
                assert st == 200
            wall = time.monotonic() - t0
            after = {k: cpu(v) for k, v in procs.items()}
            per = {k: round((after[k] - before[k]) * 1000 / n, 3) for k in procs}
            per["wall_ms"] = round(wall * 1000 / n, 3)
            name = "/run/RUN" if path.startswith("/run/") else path
            res["cpu_ms_per_view"][name] = per
            print("cpu per view", name, json.dumps(per), flush=True)
        cyc = res["cpu_ms_per_view"]
        per_s = sum(sum(v for k, v in cyc[p].items() if k != "wall_ms") for p in cyc) / 3 * 10
        res["cpu_ms_per_s_at_10_views_per_s"] = round(per_s, 2)
        print("cpu ms per second at 10 views a second (the poll's cycle):", res["cpu_ms_per_s_at_10_views_per_s"])
        return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("poll", "render", "all"), default="all")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=2000)
    ap.add_argument("--json")
    a = ap.parse_args()
    out = {"bin": BIN, "prompts": a.prompts, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load1_before": os.getloadavg()[0]}
    if a.part in ("poll", "all"):
        out["poll"] = part_poll(a.runs, a.prompts)
    if a.part in ("render", "all"):
        out["render"] = part_render(a.prompts)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
