"""faultlib: the fault-injection suite's shared part (Python stdlib only).

A FaultCluster is the integration harness's Cluster (tests/integration/
empqtest.py: real redis-server, empq-fakellm, broker, workers, collector on
free loopback ports, cleanup by pid) with what killing and restarting needs:
Redis with append-only persistence (so a restart keeps everything), fixed
broker endpoints (a restarted broker binds the same ones), workers with new
ids after each kill, and the checks every scenario ends with.

Size: EMPQ_FULL=1 runs the issue's full study, 2,000 prompts x 5 sources
(the human + 4 fake models) = 10,000 jobs; otherwise EMPQ_FAULT_PROMPTS
(default 400, 2,000 jobs) so the suite stays short in CI. The fake server
answers after 100 ms (EMPQ_FAULT_LATENCY_MS). Workers hold EMPQ_FAULT_CREDIT
(default 8) jobs each, so the study lasts long enough for the faults:
3 workers x 8 in flight / 100 ms is about 240 model jobs a second.
"""

import calendar
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from empqtest import Cluster, Skip, demo_like_spec, free_port, main, read_jsonl, redis_server, wait_until, _live  # noqa: E402,F401

FULL = os.environ.get("EMPQ_FULL") == "1"
PROMPTS = 2000 if FULL else int(os.environ.get("EMPQ_FAULT_PROMPTS", "400"))
MODELS = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")
SOURCES = ("human",) + MODELS
JOBS = PROMPTS * len(SOURCES)
MODEL_JOBS = PROMPTS * len(MODELS)
LATENCY_MS = int(os.environ.get("EMPQ_FAULT_LATENCY_MS", "100"))
CREDIT = int(os.environ.get("EMPQ_FAULT_CREDIT", "8"))
WORKERS = int(os.environ.get("EMPQ_FAULT_WORKERS", "3"))
# the bound on "a dead worker's jobs are back in the queue" (issue: <= 10 s)
REQUEUE_MAX_S = float(os.environ.get("EMPQ_FAULT_REQUEUE_MAX_S", "10"))
# the whole run must finish within this (it fails, not hangs)
RUN_TIMEOUT_S = float(os.environ.get("EMPQ_FAULT_RUN_TIMEOUT_S", "600" if FULL else "240"))

_TS = re.compile(r"^ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def log_ts(line):
    """Wall-clock seconds of a log line's ts= field, or None."""
    m = _TS.match(line)
    if not m:
        return None
    return calendar.timegm(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")) + int(m.group(1)[20:23]) / 1000.0


def say(msg):
    print("   " + msg, file=sys.stderr, flush=True)


class FaultCluster(Cluster):
    """Cluster with durable Redis and restartable parts."""

    def __init__(self, name, workers=WORKERS, credit=CREDIT, **kw):
        super().__init__(workers=workers, latency_ms=LATENCY_MS, credit=credit, name=name, **kw)
        self.redis_port = None
        self.next_worker = workers + 1
        self.kills = []      # (what, wall time, jobs in flight at the kill)
        self.worker_ids = {}  # process name -> worker id

    # ---- Redis: append-only, restartable on the same port and folder -------

    def start_redis(self):
        if not shutil.which("redis-cli"):
            raise Skip("redis-cli is not installed (package redis-tools)")
        if self.redis_port is None:
            self.redis_port = free_port()
        d = os.path.join(self.tmp, "redis")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(os.environ.get("EMPQ_SOURCE_DIR", os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "..", "..")), "deploy", "redis.conf")
        argv = [redis_server()]
        if os.path.exists(conf):
            argv.append(conf)  # the shipped config: appendonly yes, appendfsync everysec
        argv += ["--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", d,
                 "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                 "--daemonize", "no", "--logfile", ""]
        p = self.spawn("redis", argv)
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        port = self.redis_port

        def ping():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith(b"+PONG")
            except OSError:
                return False

        wait_until("redis-server ready", ping, procs=[p], timeout=30)

    def redis(self, *args):
        """One Redis command through redis-cli; returns its raw output."""
        r = subprocess.run(["redis-cli", "-p", str(self.redis_port), "--no-raw"] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip()

    def restart_redis(self, down_s=1.0):
        """SIGTERM (Redis writes its AOF and exits), down_s seconds down, start again."""
        t = time.time()
        self.stop("redis", sig=signal.SIGTERM, timeout=20)
        time.sleep(down_s)
        self.start_redis()
        return t

    # ---- broker: same endpoints after a restart ----------------------------

    broker_args = ()

    def start_broker(self, args=None):
        args = self.broker_args if args is None else args
        if self.jobs_ep is None:
            self.jobs_ep = f"tcp://127.0.0.1:{free_port()}"
            self.control_ep = f"tcp://127.0.0.1:{free_port()}"
        p = self.spawn("broker", [self.program("empq-broker"), "--redis", self.redis_url,
                                  "--bind", self.jobs_ep, "--control", self.control_ep] + list(args))

        def ping():
            r = self.cli(["status", "--json", "--broker", self.control_ep], timeout=5, check=False)
            return r.returncode == 0

        wait_until("empq-broker control", ping, procs=[p], interval=0.1, timeout=30)

    def program(self, name):
        from empqtest import program
        return program(name)

    # ---- workers: a new id for every process -------------------------------

    def start_worker(self, i):
        p = super().start_worker(i)
        self.worker_ids[f"worker-{i}"] = f"test-worker-{i}"
        return p

    def live_workers(self):
        return sorted(n for n, p in self.procs.items() if n.startswith("worker-") and p.poll() is None)

    def kill_worker(self, rng):
        """SIGKILL one live worker at random, start a new one; returns (id, kill time)."""
        name = rng.choice(self.live_workers())
        wid = self.worker_ids[name]
        t = time.time()
        self.stop(name, sig=signal.SIGKILL)
        self.kills.append(("worker " + wid, t, self.credit))
        self.start_worker(self.next_worker)
        self.next_worker += 1
        return wid, t

    # ---- progress ----------------------------------------------------------

    def status(self, run_id):
        r = self.cli(["status", run_id, "--json"], timeout=10, check=False)
        if r.returncode != 0:
            return None
        try:
            v = json.loads(r.stdout)
        except ValueError:
            return None
        if isinstance(v, dict) and "runs" in v:
            v = next((x for x in v["runs"] if x.get("run_id") == run_id), None)
        return v

    def progress(self, run_id):
        """Jobs with a result or a dead letter, from Redis (works with no broker)."""
        try:
            res = int(self.redis("HLEN", f"empq:run:{run_id}:results").split()[-1])
            dead = int(self.redis("HLEN", f"empq:run:{run_id}:dead").split()[-1])
            return res + dead
        except (ValueError, IndexError, subprocess.TimeoutExpired):
            return -1

    def wait_progress(self, run_id, share, timeout=RUN_TIMEOUT_S):
        want = int(JOBS * share)
        wait_until(f"run {run_id} at {want} of {JOBS} jobs",
                   lambda: self.progress(run_id) >= want, timeout=timeout, interval=0.05)

    def in_flight(self):
        """Model requests the fake server holds now."""
        try:
            return int(self.fakellm_stats().get("in_flight", 0))
        except Exception:  # noqa: BLE001 - a best-effort figure
            return 0

    def backend_calls(self):
        return int(self.fakellm_stats()["requests"])

    def broker_log(self):
        with open(os.path.join(self.logs, "broker.log"), errors="replace") as f:
            return f.read().splitlines()


def study(c):
    """Writes the fault study's spec; returns its path."""
    return c.write("study.yaml", demo_like_spec("faults", PROMPTS, seed=5, models=MODELS))


def check_complete(c, run_id, extra_allowed, t0):
    """The end checks of every scenario: responses.jsonl has exactly JOBS
    lines, one per (prompt, source), no line twice, no dead letter; the
    backend calls beyond the model jobs not served from the cache are at most
    extra_allowed (the jobs in flight at the kills). Returns the figures."""
    path = c.wait_responses(run_id, timeout=RUN_TIMEOUT_S)
    elapsed = time.monotonic() - t0
    with open(path, encoding="utf-8") as f:
        raw = [ln for ln in f.read().splitlines() if ln.strip()]
    assert len(raw) == JOBS, f"{len(raw)} lines in responses.jsonl, want {JOBS}"
    assert len(set(raw)) == len(raw), f"{len(raw) - len(set(raw))} duplicate lines"
    lines = [json.loads(x) for x in raw]
    keys = [(r["prompt_index"], r["source"]) for r in lines]
    assert len(set(keys)) == JOBS, f"{JOBS - len(set(keys))} (prompt, source) pairs twice"
    assert set(keys) == {(p, s) for p in range(PROMPTS) for s in SOURCES}, "a (prompt, source) is missing"
    assert all(r["response"] for r in lines), "an empty response"
    dead_path = os.path.join(os.path.dirname(path), "dead.jsonl")
    assert not os.path.exists(dead_path) or not read_jsonl(dead_path), "dead letters: " + dead_path
    hits = sum(1 for r in lines if r["source"] != "human" and r["cache_hit"])
    calls = c.backend_calls()
    extra = calls - (MODEL_JOBS - hits)
    say(f"jobs={JOBS} lines={len(raw)} backend_calls={calls} cache_hits={hits} extra_calls={extra} "
        f"allowed={extra_allowed} kills={len(c.kills)} elapsed={elapsed:.1f}s")
    assert extra >= 0, f"fewer backend calls ({calls}) than model jobs not cached ({MODEL_JOBS - hits})"
    assert extra <= extra_allowed, f"{extra} backend calls beyond the jobs, more than the {extra_allowed} in flight"
    return {"calls": calls, "hits": hits, "extra": extra, "elapsed": elapsed}


def requeue_times(c, kills):
    """For each (worker id, kill time): seconds from the SIGKILL to the
    broker's event=worker_lost for that worker (its jobs requeued)."""
    lost = {}
    for line in c.broker_log():
        if "event=worker_lost" not in line:
            continue
        m = re.search(r"worker=(\S+)", line)
        ts = log_ts(line)
        if m and ts is not None and m.group(1) not in lost:
            lost[m.group(1)] = ts
    out = []
    for wid, t in kills:
        assert wid in lost, f"the broker never logged event=worker_lost for {wid}"
        out.append((wid, lost[wid] - t))
    return out


__all__ = ["FaultCluster", "demo_like_spec", "study", "check_complete", "requeue_times", "main", "say", "random",
           "PROMPTS", "JOBS", "MODEL_JOBS", "REQUEUE_MAX_S", "RUN_TIMEOUT_S", "FULL", "Skip",
           "wait_until", "signal", "time", "os", "log_ts"]
