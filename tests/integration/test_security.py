"""Security, end to end through the real programs:

- the broker refuses an endpoint beyond loopback without CURVE or --insecure;
- CURVE on loopback: keygen, an allowed worker and CLI get through, a worker
  and a CLI with keys not in the allow-list get nothing, the run completes;
- oversized and garbage messages sent to a running broker (raw ZMTP 3.0
  from Python, NULL mechanism) are dropped and counted, the broker keeps
  serving;
- Redis with a password (requirepass) and an ACL user: the programs connect
  with redis://user:pass@host and EMPQ_REDIS_PASSWORD, and no password ever
  appears in a log or an error.
"""

import os
import socket
import struct
import subprocess
import time
import urllib.request

from empqtest import (Cluster, demo_like_spec, free_port, main, program, read_jsonl, redis_server,
                      wait_until)

PROMPTS = 16
MODELS = ("fake-warm", "fake-brief")


def log_text(c, name):
    try:
        with open(os.path.join(c.logs, name + ".log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def run_study(c, name, prompts=PROMPTS):
    spec = c.write(name + ".yaml", demo_like_spec(name, prompts, models=MODELS))
    run_id = c.submit(spec)
    lines = read_jsonl(c.wait_responses(run_id, timeout=60))
    want = prompts * (1 + len(MODELS))
    assert len(lines) == want, f"{len(lines)} lines, want {want}"
    keys = [(r["prompt_id"], r["source"]) for r in lines]
    assert len(set(keys)) == len(keys), "duplicates in responses.jsonl"
    return run_id


# ---- 1. no public bind without CURVE or --insecure --------------------------

def test_refuses_public_bind():
    with Cluster(workers=0, name="empq-sec-bind") as c:
        c.start_redis()
        for bind, control in ((f"tcp://0.0.0.0:{free_port()}", f"tcp://127.0.0.1:{free_port()}"),
                              (f"tcp://127.0.0.1:{free_port()}", f"tcp://*:{free_port()}"),
                              (f"tcp://10.213.9.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}")):
            r = subprocess.run([program("empq-broker"), "--redis", c.redis_url, "--bind", bind,
                                "--control", control], capture_output=True, text=True, timeout=10,
                               env={k: v for k, v in os.environ.items() if not k.startswith("EMPQ_CURVE")})
            assert r.returncode != 0, f"broker accepted {bind} / {control}"
            assert "not on loopback" in r.stderr and "--insecure" in r.stderr, r.stderr
        # half a CURVE configuration is a usage error
        r = subprocess.run([program("empq-broker"), "--curve-secret", "/nonexistent"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 2 and "--curve-allow" in r.stderr, (r.returncode, r.stderr)


def test_localhost_and_metrics():
    """localhost is loopback wherever an endpoint is bound, connected or
    checked; a metrics address beyond loopback needs --insecure (or
    --metrics-public), like every endpoint without authentication."""
    with Cluster(workers=0, name="empq-sec-localhost") as c:
        c.start_redis()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPQ_CURVE")}
        for extra in ([], ["--curve-secret", "/nonexistent", "--curve-allow", "/nonexistent"]):
            r = subprocess.run([program("empq-broker"), "--redis", c.redis_url, "--bind",
                                f"tcp://127.0.0.1:{free_port()}", "--control", f"tcp://127.0.0.1:{free_port()}",
                                "--metrics", f"0.0.0.0:{free_port()}"] + extra,
                               capture_output=True, text=True, timeout=10, env=env)
            assert r.returncode == 2, (extra, r.returncode, r.stderr)
            assert "metrics address" in r.stderr and "not on loopback" in r.stderr and "--insecure" in r.stderr, \
                r.stderr
        # a broker on localhost only: bind, the CLI's connect, a worker's connect, metrics on localhost
        c.jobs_ep = f"tcp://localhost:{free_port()}"
        c.control_ep = f"tcp://localhost:{free_port()}"
        mport = free_port()
        p = c.spawn("broker", [program("empq-broker"), "--redis", c.redis_url, "--bind", c.jobs_ep,
                               "--control", c.control_ep, "--metrics", f"localhost:{mport}"], env=env)
        wait_until("empq-broker on localhost", lambda: c.cli(["status", "--json", "--broker", c.control_ep],
                                                              timeout=5, check=False).returncode == 0,
                   procs=[p], interval=0.1)
        blog = log_text(c, "broker")
        assert "event=insecure" not in blog and "event=broker_started" in blog, blog
        c.fake_url = "http://127.0.0.1:1"
        c.start_worker(1)
        wait_until("the worker on localhost is welcomed", lambda: "event=welcome" in log_text(c, "worker-1"),
                   procs=[p], timeout=15)
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            assert b"empq_" in r.read()
        assert c.stop("worker-1") == 0 and c.stop("broker") == 0
        # beyond loopback with the opt-in: served, and said so
        for optin in ("--insecure", "--metrics-public"):
            mport = free_port()
            c.control_ep = f"tcp://127.0.0.1:{free_port()}"
            p = c.spawn("broker-" + optin[2:], [program("empq-broker"), "--redis", c.redis_url,
                                                "--bind", f"tcp://127.0.0.1:{free_port()}", "--control",
                                                c.control_ep, "--metrics", f"0.0.0.0:{mport}", optin], env=env)
            wait_until("metrics beyond loopback with " + optin,
                       lambda: "event=metrics_listening" in log_text(c, "broker-" + optin[2:]), procs=[p])
            assert f"event=insecure endpoint=http://0.0.0.0:{mport}/metrics" in log_text(c, "broker-" + optin[2:])
            assert c.stop("broker-" + optin[2:]) == 0


# ---- 2. CURVE on loopback -------------------------------------------------------

class CurveCluster(Cluster):
    """A cluster whose broker, workers and CLI use CURVE keys from keys/."""

    def keygen(self, name, out=None):
        out = out or self.keys
        r = self.cli(["keygen", "--out", out, "--name", name])
        assert f"{name}.pub" in r.stdout, r.stdout
        return os.path.join(out, name + ".key"), os.path.join(out, name + ".pub")

    def setup_keys(self):
        self.keys = os.path.join(self.tmp, "keys")
        self.allow = os.path.join(self.tmp, "allow")
        self.foreign = os.path.join(self.tmp, "foreign")
        for d in (self.keys, self.allow, self.foreign):
            os.makedirs(d)
        self.keygen("broker")
        for n in ("worker-1", "worker-2", "cli"):
            _, pub = self.keygen(n)
            os.link(pub, os.path.join(self.allow, n + ".pub"))
        self.keygen("stranger", self.foreign)  # not in the allow-list
        self.cli_key = os.path.join(self.keys, "cli.key")

    def env(self):
        e = super().env()
        if getattr(self, "cli_key", None):
            e["EMPQ_CURVE_SECRET"] = self.cli_key
            e["EMPQ_CURVE_SERVER_PUB"] = os.path.join(self.keys, "broker.pub")
        return e

    def start_broker(self):
        self.jobs_ep = f"tcp://127.0.0.1:{free_port()}"
        self.control_ep = f"tcp://127.0.0.1:{free_port()}"
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        p = self.spawn("broker", [program("empq-broker"), "--redis", self.redis_url, "--bind", self.jobs_ep,
                                  "--control", self.control_ep, "--heartbeat-ms", "200",
                                  "--metrics", self.metrics_url.split("/")[2],
                                  "--curve-secret", os.path.join(self.keys, "broker.key"),
                                  "--curve-allow", self.allow])
        wait_until("empq-broker control (CURVE)",
                   lambda: self.cli(["status", "--json", "--broker", self.control_ep], timeout=5,
                                    check=False).returncode == 0, procs=[p], interval=0.1)

    def start_curve_worker(self, name, key):
        return self.spawn(name, [program("empq-worker"), "--redis", self.redis_url, "--broker", self.jobs_ep,
                                 "--id", name, "--heartbeat-ms", "200", "--curve-secret", key,
                                 "--curve-server-pub", os.path.join(self.keys, "broker.pub")],
                          env={"EMPQ_FAKELLM_URL": self.fake_url})


def test_curve_loopback():
    with CurveCluster(workers=0, name="empq-sec-curve") as c:
        c.cli_key = None
        c.setup_keys()
        st = os.stat(os.path.join(c.keys, "broker.key"))
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        r = c.cli(["keygen", "--out", c.keys, "--name", "broker"], check=False)
        assert r.returncode != 0 and "already exists" in r.stderr, r.stderr
        c.start(workers=False)
        assert "curve=on allowed_keys=3" in log_text(c, "broker"), log_text(c, "broker")
        # the stranger first: it must get nothing, even with the run waiting
        c.start_curve_worker("stranger", os.path.join(c.foreign, "stranger.key"))
        time.sleep(0.5)
        c.start_curve_worker("worker-1", os.path.join(c.keys, "worker-1.key"))
        run_study(c, "curve-loopback")
        c.check_alive()
        broker_log = log_text(c, "broker")
        assert "event=worker_hello worker=worker-1" in broker_log, broker_log
        assert "worker=stranger" not in broker_log, broker_log
        assert "event=curve_refused" in broker_log, broker_log
        # the refused key is logged by prefix only
        stranger_pub = open(os.path.join(c.foreign, "stranger.pub")).read().split()[-2]
        assert stranger_pub[:8] in broker_log and stranger_pub not in broker_log
        assert "event=welcome" not in log_text(c, "stranger"), log_text(c, "stranger")
        wait_until("the refused worker says why it waits", lambda: "allow-list" in log_text(c, "stranger"),
                   timeout=5)
        assert "event=welcome" in log_text(c, "worker-1")
        # /metrics counts the handshakes: the stranger's refused, the others' allowed
        with urllib.request.urlopen(c.metrics_url, timeout=10) as r:
            metrics = r.read().decode()
        got = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
               if line.startswith("empq_curve_")}
        assert got['empq_curve_handshakes_total{result="refused"}'] >= 1, got
        assert got['empq_curve_handshakes_total{result="allowed"}'] >= 2, got  # worker-1 and the CLI
        assert got["empq_curve_allowed_keys"] == 3, got
        # a CLI without a key, or with a foreign key, is not answered
        for extra in ({"EMPQ_CURVE_SECRET": "", "EMPQ_CURVE_SERVER_PUB": ""},
                      {"EMPQ_CURVE_SECRET": os.path.join(c.foreign, "stranger.key")}):
            r = c.cli(["status", "--json"], check=False, env=extra, timeout=30)
            assert r.returncode == 3, (extra, r.returncode, r.stderr)
            if extra.get("EMPQ_CURVE_SECRET"):
                assert "allow-list" in r.stderr, r.stderr
        # the CLI through the global options instead of the environment
        r = c.cli(["--curve-secret", c.cli_key, "--curve-server-pub", os.path.join(c.keys, "broker.pub"),
                   "status", "--json"], env={"EMPQ_CURVE_SECRET": "", "EMPQ_CURVE_SERVER_PUB": ""})
        assert r.returncode == 0
        c.stop("stranger")
        c.stop("worker-1")
        st = c.stop("broker")
        assert st == 0, st


# ---- 3. oversized and garbage messages ----------------------------------------

def zmtp_connect(ep, socket_type=b"DEALER", identity=b""):
    """A raw ZMTP 3.0 peer with the NULL mechanism; returns the socket after
    the READY exchange."""
    host, port = ep[len("tcp://"):].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
    s.sendall(greeting)
    got = b""
    while len(got) < 64:
        chunk = s.recv(64 - len(got))
        if not chunk:
            raise AssertionError("broker closed the connection during the greeting")
        got += chunk

    def prop(name, value):
        return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value

    body = b"\x05READY" + prop(b"Socket-Type", socket_type) + prop(b"Identity", identity)
    s.sendall(b"\x04" + bytes([len(body)]) + body)
    # the broker's READY
    hdr = s.recv(2)
    assert hdr and hdr[0] & 0x04, hdr
    size = hdr[1] if not hdr[0] & 0x02 else struct.unpack(">Q", hdr[1:] + s.recv(7))[0]
    left = size
    while left > 0:
        left -= len(s.recv(left))
    return s


def zmtp_frame(payload, more=False):
    flags = 0x01 if more else 0x00
    if len(payload) > 255:
        return bytes([flags | 0x02]) + struct.pack(">Q", len(payload)) + payload
    return bytes([flags, len(payload)]) + payload


def test_oversized_and_garbage():
    with Cluster(workers=1, name="empq-sec-bad") as c:
        c.start()
        # 1. protobuf garbage from a DEALER: dropped, counted
        s = zmtp_connect(c.jobs_ep, identity=b"garbage-1")
        for junk in (b"\xff\xff\xff\xff\xff", b"\x0a\x80\x80\x80\x80\x10", os.urandom(300)):
            s.sendall(zmtp_frame(junk))
        # 2. a frame above EMPQ_WIRE_MAX_MSG (16 MiB) but within the socket limit:
        #    read, dropped by the size check, counted (the broker logs one bad
        #    message a second and counts the rest: wait, so this one is logged)
        time.sleep(1.1)
        s.sendall(zmtp_frame(b"\x00" * (17 * 1024 * 1024)))
        # 3. a multipart message with an extra frame
        s.sendall(zmtp_frame(b"a", more=True) + zmtp_frame(b"b"))
        time.sleep(0.5)
        s.close()
        # 4. a frame header above ZMQ_MAXMSGSIZE: libzmq cuts the peer off
        s = zmtp_connect(c.jobs_ep, identity=b"garbage-2")
        s.sendall(bytes([0x02]) + struct.pack(">Q", 1 << 40) + b"x" * 1000)
        s.settimeout(5)
        try:
            closed = s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            closed = True
        assert closed, "the broker kept a peer announcing a 1 TiB frame"
        s.close()
        # 5. not ZMTP at all, on both sockets
        for ep in (c.jobs_ep, c.control_ep):
            host, port = ep[len("tcp://"):].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as g:
                g.sendall(os.urandom(4096))
                time.sleep(0.1)
        # 6. control garbage from a REQ peer: it gets an error answer
        s = zmtp_connect(c.control_ep, socket_type=b"REQ")
        s.sendall(zmtp_frame(b"", more=True) + zmtp_frame(b"\xff\xfe\xfd"))
        s.settimeout(5)
        reply = s.recv(4096)
        assert b"malformed" in reply, reply
        s.close()

        wait_until("oversized message logged", lambda: "bytes dropped" in log_text(c, "broker"), timeout=10)
        c.check_alive()
        # the broker still serves: a run completes and the counters say what was dropped
        run_study(c, "after-garbage")
        c.stop("worker-1")
        assert c.stop("broker") == 0
        log = log_text(c, "broker")
        line = [ln for ln in log.splitlines() if "event=broker_stopping" in ln][-1]
        bad = int(line.split("bad_messages=")[1].split()[0])
        assert bad >= 5, line


# ---- 4. Redis with a password and an ACL user --------------------------------

PASS_DEFAULT = "s3cret-default-Pw"
PASS_USER = "s3cret-alice-Pw"


class AuthCluster(Cluster):
    def start_redis(self):
        port = free_port()
        d = os.path.join(self.tmp, "redis")
        os.makedirs(d, exist_ok=True)
        p = self.spawn("redis", [redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                                 "--save", "", "--appendonly", "no", "--daemonize", "no",
                                 "--requirepass", PASS_DEFAULT,
                                 "--user", "alice", "on", ">" + PASS_USER, "~*", "&*", "+@all"])
        self.redis_port = port
        self.redis_url = f"redis://alice:{PASS_USER}@127.0.0.1:{port}"

        def ping():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(f"AUTH alice {PASS_USER}\r\nPING\r\n".encode())
                    time.sleep(0.05)
                    return b"+PONG" in s.recv(256)
            except OSError:
                return False

        wait_until("redis-server (auth) ready", ping, procs=[p])


def test_redis_password():
    with AuthCluster(workers=1, name="empq-sec-redis") as c:
        c.start()
        run_study(c, "redis-auth")
        plain = f"redis://127.0.0.1:{c.redis_port}"
        # the default user's password from the environment
        r = c.cli(["status", "--json"], env={"EMPQ_REDIS_URL": plain, "EMPQ_REDIS_PASSWORD": PASS_DEFAULT})
        assert r.returncode == 0, r.stderr
        # a worker with the default user and EMPQ_REDIS_PASSWORD takes jobs too
        w = c.spawn("worker-env", [program("empq-worker"), "--redis", plain, "--broker", c.jobs_ep,
                                   "--id", "worker-env"],
                    env={"EMPQ_FAKELLM_URL": c.fake_url, "EMPQ_REDIS_PASSWORD": PASS_DEFAULT})
        wait_until("worker-env started", lambda: "event=started" in log_text(c, "worker-env"), procs=[w])
        # wrong or missing passwords: refused with a clear error, never echoed (the
        # broker waits for Redis at start, so it says so once and keeps trying)
        cases = ((f"redis://alice:wrong-{PASS_USER}@127.0.0.1:{c.redis_port}", {}, "WRONGPASS"),
                 (f"redis://alice:{PASS_USER}@127.0.0.1:notaport", {}, "bad port"),
                 (plain, {"EMPQ_REDIS_PASSWORD": "wrong-" + PASS_DEFAULT}, "WRONGPASS"),
                 (plain, {"EMPQ_REDIS_PASSWORD": ""}, "NOAUTH"))
        for i, (url, env, want) in enumerate(cases):
            name = f"broker-bad-{i}"
            p = c.spawn(name, [program("empq-broker"), "--redis", url,
                               "--bind", f"tcp://127.0.0.1:{free_port()}",
                               "--control", f"tcp://127.0.0.1:{free_port()}"], env=env)
            wait_until(f"{name} says why", lambda: want in log_text(c, name) or p.poll() is not None,
                       timeout=15)
            c.stop(name)
            out = log_text(c, name)
            assert want in out and "Redis" in out, out
            assert PASS_USER not in out and PASS_DEFAULT not in out, out
        c.stop("worker-env")
        c.stop("worker-1")
        c.stop("collector")
        c.stop("broker")
        for f in os.listdir(c.logs):
            if f.startswith("redis"):
                continue
            text = log_text(c, f[:-4])
            assert PASS_USER not in text and PASS_DEFAULT not in text, f"password in {f}"
        assert ":***@" in log_text(c, "broker") or "***" in log_text(c, "broker"), log_text(c, "broker")


if __name__ == "__main__":
    main(test_refuses_public_bind, test_localhost_and_metrics, test_curve_loopback, test_oversized_and_garbage, test_redis_password)
