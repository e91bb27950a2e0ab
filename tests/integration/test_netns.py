"""A multi-host study on one machine: Redis, the broker, the collector, the
fake LLM server and four workers, each in its own network namespace, joined
by veth pairs to a bridge in a switch namespace (10.213.X.0/24, only inside
these namespaces: nothing is added to the host's own network).

With CURVE on and the broker bound to its namespace address (not loopback):
- three workers with allowed keys take jobs; a fourth, with a key that is
  not in the allow-list, gets no job (refused at the handshake);
- one worker's link is cut mid-run (ip link set eth0 down in its namespace):
  the broker logs worker_lost within ~10 s and requeues its jobs;
- the run completes: responses.jsonl complete, no duplicates.

Needs root (ip netns add) and iproute2; exits 77 saying why otherwise.
Every process is killed by pid, every namespace deleted (which removes the
veths and the bridge in it), on success, on failure and at exit.
"""

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from empqtest import Skip, demo_like_spec, main, program, read_jsonl, redis_server, wait_until

PID = os.getpid()
SUBNET = 200 + PID % 50  # 10.213.200-249.0/24: inside our namespaces only
PROMPTS = 40
MODELS = ("fake-warm", "fake-brief")
NODES = ("redis", "broker", "coll", "fake", "w1", "w2", "w3", "w4")
REDIS_PASS = "netns-redis-Pw"

_namespaces = []  # created, to delete
_procs = {}       # name -> Popen


def ns_name(node):
    return f"empq-{PID}-{node}"


def addr(node):
    return f"10.213.{SUBNET}.{10 + NODES.index(node)}"


def sh(*argv, check=True):
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def cleanup():
    for name, p in list(_procs.items()):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 5
    for name, p in list(_procs.items()):
        try:
            p.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
        _procs.pop(name, None)
    while _namespaces:
        ns = _namespaces.pop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


atexit.register(cleanup)


def setup_network():
    if os.geteuid() != 0:
        raise Skip("needs root for ip netns (run as root)")
    if shutil.which("ip") is None:
        raise Skip("iproute2 (ip) is not installed")
    sw = ns_name("sw")
    r = subprocess.run(["ip", "netns", "add", sw], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise Skip(f"ip netns add is not permitted here: {r.stderr.strip()}")
    _namespaces.append(sw)
    sh("ip", "-n", sw, "link", "set", "lo", "up")
    sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", sw, "link", "set", "br0", "up")
    for i, node in enumerate(NODES):
        ns = ns_name(node)
        sh("ip", "netns", "add", ns)
        _namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # both ends are created straight inside the namespaces: the host's
        # own namespace never holds them
        sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{i}", "netns", sw)
        sh("ip", "-n", sw, "link", "set", f"p{i}", "master", "br0")
        sh("ip", "-n", sw, "link", "set", f"p{i}", "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr(node)}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


class Net:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="empq-netns-")
        self.logs = os.path.join(self.tmp, "logs")
        os.makedirs(self.logs)
        self.keys = os.path.join(self.tmp, "keys")
        self.allow = os.path.join(self.tmp, "allow")
        self.foreign = os.path.join(self.tmp, "foreign")
        for d in (self.keys, self.allow, self.foreign):
            os.makedirs(d)
        self.redis_url = f"redis://:{REDIS_PASS}@{addr('redis')}:6379"
        self.jobs_ep = f"tcp://{addr('broker')}:5555"
        self.control_ep = f"tcp://{addr('broker')}:5556"
        self.fake_url = f"http://{addr('fake')}:8080"
        self.failed = False

    def spawn(self, name, node, argv, env=None):
        log = open(os.path.join(self.logs, name + ".log"), "ab")
        e = {k: v for k, v in os.environ.items() if not k.startswith("EMPQ_")}
        e.update(env or {})
        p = subprocess.Popen(["ip", "netns", "exec", ns_name(node)] + argv, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, env=e, cwd=self.tmp, start_new_session=True)
        log.close()
        _procs[name] = p  # ip netns exec execs the program: same pid
        return p

    def stop(self, name, timeout=10):
        p = _procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        return p.returncode

    def log(self, name):
        try:
            with open(os.path.join(self.logs, name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def dump(self):
        for f in sorted(os.listdir(self.logs)):
            lines = self.log(f[:-4]).splitlines()[-25:]
            sys.stderr.write(f"---- {f[:-4]} ----\n" + "\n".join(lines) + "\n")

    def cli(self, args, check=True, timeout=60):
        """empq in the broker's namespace, with the CLI's allowed key."""
        env = dict(os.environ)
        env.update({"EMPQ_REDIS_URL": self.redis_url, "EMPQ_BROKER_CONTROL": self.control_ep,
                    "EMPQ_CURVE_SECRET": os.path.join(self.keys, "cli.key"),
                    "EMPQ_CURVE_SERVER_PUB": os.path.join(self.keys, "broker.pub"),
                    "EMPQ_FAKELLM_URL": self.fake_url})
        r = subprocess.run(["ip", "netns", "exec", ns_name("broker"), program("empq")] + list(args),
                           capture_output=True, text=True, timeout=timeout, env=env, cwd=self.tmp)
        if check and r.returncode != 0:
            raise AssertionError(f"empq {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return r

    def check_alive(self, *names):
        for n in names:
            p = _procs.get(n)
            if p is not None and p.poll() is not None:
                raise AssertionError(f"{n} exited with status {p.returncode}:\n{self.log(n)[-3000:]}")


def keygen(out, name):
    r = subprocess.run([program("empq"), "keygen", "--out", out, "--name", name], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return os.path.join(out, name + ".key")


def start_all(n):
    keygen(n.keys, "broker")
    for name in ("w1", "w2", "w3", "cli"):
        keygen(n.keys, name)
        os.link(os.path.join(n.keys, name + ".pub"), os.path.join(n.allow, name + ".pub"))
    keygen(n.foreign, "w4")  # a key the broker was never told about

    rd = os.path.join(n.tmp, "redis")
    os.makedirs(rd)
    n.spawn("redis", "redis", [redis_server(), "--bind", addr("redis"), "--port", "6379", "--dir", rd,
                               "--save", "", "--appendonly", "no", "--requirepass", REDIS_PASS])
    n.spawn("fakellm", "fake", [program("empq-fakellm"), "--host", addr("fake"), "--port", "8080",
                                "--latency-ms", "300"])
    wait_until("redis in its namespace", lambda: subprocess.run(
        ["ip", "netns", "exec", ns_name("broker"), "redis-cli", "-h", addr("redis"), "--no-auth-warning",
         "-a", REDIS_PASS, "ping"], capture_output=True, text=True).stdout.strip() == "PONG",
        procs=[_procs["redis"]], interval=0.1)
    bp = n.spawn("broker", "broker", [program("empq-broker"), "--redis", n.redis_url, "--bind", n.jobs_ep,
                                      "--control", n.control_ep, "--heartbeat-ms", "500",
                                      "--curve-secret", os.path.join(n.keys, "broker.key"),
                                      "--curve-allow", n.allow])
    wait_until("broker control over CURVE", lambda: n.cli(["status", "--json"], check=False,
                                                          timeout=10).returncode == 0,
               procs=[bp], timeout=20, interval=0.2)
    assert "curve=on allowed_keys=4" in n.log("broker"), n.log("broker")
    n.spawn("collector", "coll", [program("empq-collector"), "--redis", n.redis_url,
                                  "--out", os.path.join(n.tmp, "runs")])
    pub = os.path.join(n.keys, "broker.pub")
    for w in ("w1", "w2", "w3"):
        n.spawn(w, w, [program("empq-worker"), "--redis", n.redis_url, "--broker", n.jobs_ep, "--id", w,
                       "--credit", "2", "--heartbeat-ms", "500", "--curve-secret",
                       os.path.join(n.keys, w + ".key"), "--curve-server-pub", pub],
                env={"EMPQ_FAKELLM_URL": n.fake_url})
    n.spawn("w4", "w4", [program("empq-worker"), "--redis", n.redis_url, "--broker", n.jobs_ep, "--id", "w4",
                         "--credit", "2", "--heartbeat-ms", "500"],
            env={"EMPQ_FAKELLM_URL": n.fake_url, "EMPQ_CURVE_SECRET": os.path.join(n.foreign, "w4.key"),
                 "EMPQ_CURVE_SERVER_PUB": pub})
    for w in ("w1", "w2", "w3"):
        wait_until(f"{w} welcomed", lambda w=w: "event=welcome" in n.log(w), procs=[_procs[w]], timeout=20)


def test_netns():
    setup_network()
    n = Net()
    try:
        start_all(n)
        spec = os.path.join(n.tmp, "study.yaml")
        with open(spec, "w") as f:
            f.write(demo_like_spec("netns", PROMPTS, models=MODELS))
        run_id = n.cli(["submit", spec]).stdout.strip().splitlines()[-1]
        assert run_id.startswith("r-"), run_id

        # cut w2's link once it holds jobs
        wait_until("w2 working", lambda: "event=run_loaded" in n.log("w2"), timeout=20)
        time.sleep(0.5)
        sh("ip", "-n", ns_name("w2"), "link", "set", "eth0", "down")
        cut_at = time.monotonic()
        wait_until("broker gives w2 up", lambda: "event=worker_lost worker=w2" in n.log("broker"),
                   timeout=15, interval=0.1)
        lost_after = time.monotonic() - cut_at
        assert lost_after <= 10.5, f"worker_lost after {lost_after:.1f} s"
        line = [ln for ln in n.log("broker").splitlines() if "event=worker_lost worker=w2" in ln][0]
        print(f"   cut w2: {line.split('event=')[1]} after {lost_after:.1f} s", file=sys.stderr)

        path = os.path.join(n.tmp, "runs", run_id, "responses.jsonl")
        wait_until("responses.jsonl", lambda: (n.check_alive("broker", "collector", "w1", "w3"),
                                               os.path.exists(path))[1], timeout=90, interval=0.1)
        lines = read_jsonl(path)
        want = PROMPTS * (1 + len(MODELS))
        keys = [(r["prompt_id"], r["source"]) for r in lines]
        assert len(keys) == want, f"{len(keys)} lines, want {want}"
        assert len(set(keys)) == want, "duplicates in responses.jsonl"
        assert all(isinstance(r["response"], str) and r["response"] for r in lines)

        # the stranger got nothing: refused at the handshake, never said hello
        blog = n.log("broker")
        assert "event=curve_refused" in blog, blog
        assert "worker=w4" not in blog, blog
        assert "event=welcome" not in n.log("w4"), n.log("w4")
        st = json.loads(n.cli(["status", "--json"]).stdout)
        assert "w4" not in json.dumps(st), st
        r = n.cli(["workers"], check=False)
        if r.returncode == 0:  # `empq workers` where the build has it
            assert "w4" not in r.stdout and "w1" in r.stdout, r.stdout
        n.check_alive("w4")
        assert n.stop("w4") == 0
        exit_line = [ln for ln in n.log("w4").splitlines() if "event=exit" in ln][-1]
        assert " jobs=0 " in exit_line and "backend_calls=0" in exit_line, exit_line
        done = 0
        for w in ("w1", "w3"):
            assert n.stop(w) == 0
            ln = [x for x in n.log(w).splitlines() if "event=exit" in x][-1]
            done += int(ln.split(" done=")[1].split()[0])
        print(f"   w1+w3 done={done} of {want}", file=sys.stderr)
        assert n.stop("broker") == 0
    except BaseException:
        n.failed = True
        n.dump()
        raise
    finally:
        cleanup()
        left = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                .stdout.split() if ns.startswith(f"empq-{PID}-")]
        if n.failed or os.environ.get("EMPQ_TEST_KEEP"):
            print(f"test_netns: kept {n.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(n.tmp, ignore_errors=True)
        assert not left, f"namespaces left behind: {left}"


if __name__ == "__main__":
    main(test_netns)
