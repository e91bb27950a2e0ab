"""empqtest: the integration tests' harness (Python stdlib only).

Starts the real programs (redis-server, empq-fakellm, empq-broker,
empq-worker, empq-collector) as processes on free loopback ports in a
temporary folder, waits until each is ready, and stops every process it
started, by pid, at the end: on success, on failure (try/finally through the
context manager), on SIGTERM/SIGINT (turned into SystemExit) and at exit
(atexit). Every wait has a deadline; nothing here can hang a test.

    from empqtest import Cluster, main
    def test(c):                      # c: a started Cluster
        run_id = c.submit(spec_path)
        path = c.wait_responses(run_id)
    main(test)                        # exit 0 / 1 / 77 (skip)

Environment: EMPQ_BIN (the programs; default <repo>/build/bin),
EMPQ_SOURCE_DIR (the repo; default two folders up), EMPQ_TEST_KEEP=1 keeps
the temporary folder.
"""

import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

SOURCE_DIR = os.environ.get("EMPQ_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.path.abspath(os.environ.get("EMPQ_BIN") or os.path.join(SOURCE_DIR, "build", "bin"))

SKIP = 77

_live = {}  # pid -> Popen, every process started and not yet reaped


class Skip(Exception):
    """Raised to skip a test (exit 77) with a reason."""


def _kill_all():
    procs = list(_live.values())
    for p in procs:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.monotonic() + 5
    for p in procs:
        try:
            p.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _live.pop(p.pid, None)


atexit.register(_kill_all)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port nobody listens on now on 127.0.0.1, for a server started
    later. Chosen below the kernel's ephemeral range: a port from that range
    can be taken meanwhile by any outgoing connection (a worker's, a test's),
    and the server then fails to bind; below it, only another server choosing
    the same port at random could."""
    lo, _ = _ephemeral_range()
    top = lo - 1 if lo > 11000 else 65535
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(10000, top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def program(name):
    """Path of an empq program in EMPQ_BIN; fails clearly when missing."""
    p = os.path.join(BIN, name)
    if not os.access(p, os.X_OK):
        raise AssertionError(f"{p} is missing: build it first (EMPQ_BIN={BIN})")
    return p


def redis_server():
    p = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(p, os.X_OK):
        raise Skip("redis-server is not installed")
    return p


def wait_until(what, fn, timeout=15.0, interval=0.02, procs=()):
    """Calls fn until it returns a true value; raises after timeout seconds,
    or as soon as one of procs has exited."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: {p.args[0]} exited with status {p.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def wait_port_file(path, proc, what="port file"):
    """The port a program writes to path once it listens (waits for it)."""
    def port():
        try:
            with open(path) as f:
                v = f.read().strip()
            return int(v) if v.isdigit() and int(v) > 0 else 0
        except OSError:
            return 0

    return wait_until(what, port, procs=[proc])


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def port_in_file(path):
    """The port a program wrote to its --port-file, or 0 while it is not
    there yet (for wait_until)."""
    try:
        with open(path) as f:
            v = f.read().strip()
        return int(v) if v.isdigit() else 0
    except OSError:
        return 0


def http_get_json(url, timeout=5):
    req = urllib.request.Request(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


class Cluster:
    """Real processes on free ports in a temporary folder."""

    def __init__(self, workers=2, latency_ms=0, credit=None, name="empqtest", fakellm_args=(),
                 worker_env=None, broker_args=()):
        self.tmp = tempfile.mkdtemp(prefix=name + "-")
        self.logs = os.path.join(self.tmp, "logs")
        os.makedirs(self.logs)
        self.out = os.path.join(self.tmp, "runs")
        self.n_workers = workers
        self.latency_ms = latency_ms
        self.credit = credit
        self.fakellm_args = list(fakellm_args)
        self.broker_args = list(broker_args)
        self.worker_env = dict(worker_env or {})
        self.procs = {}  # name -> Popen
        self.redis_url = None
        self.fake_url = None
        self.jobs_ep = None
        self.control_ep = None
        self.failed = False

    # ---- processes -------------------------------------------------------

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.logs, name + ".log"), "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             env=e, cwd=self.tmp, start_new_session=True)
        log.close()
        _live[p.pid] = p
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM, timeout=5):
        """Stops one process by pid: sig, then SIGKILL after timeout."""
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        _live.pop(p.pid, None)
        return p.returncode

    def env(self):
        """Environment for the empq command line against this cluster."""
        e = dict(os.environ)
        e["EMPQ_REDIS_URL"] = self.redis_url or ""
        e["EMPQ_BROKER_CONTROL"] = self.control_ep or ""
        if self.fake_url:
            e["EMPQ_FAKELLM_URL"] = self.fake_url
        return e

    def start_redis(self):
        d = os.path.join(self.tmp, "redis")
        os.makedirs(d, exist_ok=True)

        def start():
            port = free_port()
            self.redis_url = f"redis://127.0.0.1:{port}"
            return self.spawn("redis", [redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                                        "--dir", d, "--save", "", "--appendonly", "no",
                                        "--daemonize", "no"])

        def ping():
            try:
                port = int(self.redis_url.rsplit(":", 1)[1])
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(64).startswith(b"+PONG")
            except OSError:
                return False

        self.bound_or_retry("redis", start, ping, "redis-server ready")

    def start_fakellm(self):
        pf = os.path.join(self.tmp, "fakellm.port")
        p = self.spawn("fakellm", [program("empq-fakellm"), "--port", "0", "--port-file", pf,
                                   "--latency-ms", str(self.latency_ms)] + self.fakellm_args)
        self.fake_url = f"http://127.0.0.1:{wait_port_file(pf, p, 'empq-fakellm port file')}"

    def bound_or_retry(self, name, start, ready, what):
        """Starts a server on ports chosen by free_port: start() spawns it
        as `name`, ready() says it answers. A port chosen free can be taken
        by another test's server before this one binds it: when the server
        exits saying so, it is started again on other ports (5 tries)."""
        for attempt in range(5):
            p = start()
            try:
                wait_until(what, ready, procs=[p], interval=0.1)
                return
            except AssertionError:
                with open(os.path.join(self.logs, name + ".log"), errors="replace") as f:
                    taken = "Address already in use" in f.read()
                if p.poll() is None or not taken or attempt == 4:
                    raise
                self.procs.pop(name, None)
                _live.pop(p.pid, None)

    def start_broker(self):
        def start():
            self.jobs_ep = f"tcp://127.0.0.1:{free_port()}"
            self.control_ep = f"tcp://127.0.0.1:{free_port()}"
            return self.spawn("broker", [program("empq-broker"), "--redis", self.redis_url,
                                         "--bind", self.jobs_ep, "--control", self.control_ep] + self.broker_args)

        def ping():
            r = self.cli(["status", "--json", "--broker", self.control_ep], timeout=5, check=False)
            return r.returncode == 0

        self.bound_or_retry("broker", start, ping, "empq-broker control")

    def restart_broker(self, name="broker2"):
        """Kills the broker (SIGKILL) and starts a new one as `name` on the
        same endpoints; returns once it answers and every worker is back."""
        self.stop("broker", sig=signal.SIGKILL)
        self.spawn(name, [program("empq-broker"), "--redis", self.redis_url, "--bind", self.jobs_ep,
                          "--control", self.control_ep])
        wait_until("the restarted broker", lambda: self.cli(["status", "--json"], check=False).returncode == 0,
                   timeout=20, interval=0.1)
        wait_until("the workers back",
                   lambda: len(json.loads(self.cli(["workers", "--json"]).stdout)["workers"]) == self.n_workers,
                   timeout=20, interval=0.2)

    def start_worker(self, i):
        argv = [program("empq-worker"), "--redis", self.redis_url, "--broker", self.jobs_ep,
                "--id", f"test-worker-{i}"]
        if self.credit:
            argv += ["--credit", str(self.credit)]
        env = {"EMPQ_FAKELLM_URL": self.fake_url}
        env.update(self.worker_env)
        return self.spawn(f"worker-{i}", argv, env=env)

    def start_collector(self):
        return self.spawn("collector", [program("empq-collector"), "--redis", self.redis_url,
                                        "--out", self.out, "--name", "collector-1"])

    def start(self, broker=True, workers=True, collector=True, fakellm=True):
        self.start_redis()
        if fakellm:
            self.start_fakellm()
        if broker:
            self.start_broker()
        if collector:
            self.start_collector()
        if workers:
            for i in range(1, self.n_workers + 1):
                self.start_worker(i)
        return self

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with status {p.returncode}; log:\n"
                                     + self.log_tail(name))

    def close(self):
        for name in [n for n in self.procs if n != "redis"] + ["redis"]:
            self.stop(name)
        if self.failed or os.environ.get("EMPQ_TEST_KEEP"):
            print(f"empqtest: kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not Skip:
            self.failed = True
            self.dump_logs()
        self.close()
        return False

    def log_tail(self, name, lines=30):
        try:
            with open(os.path.join(self.logs, name + ".log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)\n"

    def dump_logs(self):
        for f in sorted(os.listdir(self.logs)):
            name = f[:-4]
            sys.stderr.write(f"---- {name} (last lines) ----\n{self.log_tail(name)}")

    # ---- the command line --------------------------------------------------

    def cli(self, args, timeout=60, check=True, env=None):
        e = self.env()
        if env:
            e.update(env)
        r = subprocess.run([program("empq")] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, env=e, cwd=self.tmp)
        if check and r.returncode != 0:
            raise AssertionError(f"empq {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
        return r

    def submit(self, spec, *extra):
        r = self.cli(["submit", spec] + list(extra))
        run_id = r.stdout.strip().splitlines()[-1]
        assert run_id.startswith("r-") or "--run-id" in extra, r.stdout
        return run_id

    def wait_responses(self, run_id, timeout=60):
        path = os.path.join(self.out, run_id, "responses.jsonl")

        def ready():
            self.check_alive()
            return os.path.exists(path)

        wait_until(f"responses.jsonl of run {run_id}", ready, timeout=timeout, interval=0.05)
        return path

    def fakellm_stats(self):
        return http_get_json(self.fake_url + "/stats")

    def redis(self, *args):
        """One command to this cluster's Redis through redis-cli --raw: its
        output lines, empty ones left out."""
        port = self.redis_url.rsplit(":", 1)[1]
        r = subprocess.run(["redis-cli", "-p", port, "--raw"] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return [x for x in r.stdout.split("\n") if x]

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path


def demo_like_spec(name, prompts, seed=7, models=("fake-warm", "fake-formal", "fake-brief",
                                                   "fake-curious")):
    """A study spec over the synthetic dataset with fake models."""
    out = [f"name: {name}",
           "dataset:", "  format: synth", f"  prompts: {prompts}", f"  seed: {seed}",
           "selection:", f"  prompts: {prompts}", "  seed: 42", "  balance: emotion",
           "template:", "  system: You are a kind listener.",
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
           "human:", "  include: true", "models:"]
    for m in models:
        out += [f"  - alias: {m}", "    provider: openai-compatible",
                "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", f"    model: {m}",
                "    params: {temperature: 0.7, max_tokens: 128}"]
    return "\n".join(out) + "\n"


def main(*tests):
    """Runs each test function in order; exit status 0 ok, 1 failed, 77 skipped."""
    try:
        for t in tests:
            t0 = time.monotonic()
            print(f"-- {t.__name__}", file=sys.stderr, flush=True)
            t()
            print(f"   ok ({time.monotonic() - t0:.2f} s)", file=sys.stderr, flush=True)
    except Skip as e:
        print(f"SKIP: {e}", file=sys.stderr)
        _kill_all()
        sys.exit(SKIP)
    except BaseException:
        traceback.print_exc()
        _kill_all()
        sys.exit(1)
    _kill_all()
    print("ok", file=sys.stderr)
    sys.exit(0)
