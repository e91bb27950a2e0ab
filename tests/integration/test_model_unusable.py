"""A model no worker can use stops by itself, with the reason (issue 12,
point 4), and the rest of the run completes.

A run of three sources: `good` (the fake server, no key), `nokey` (its
api_key_env names a variable no worker has) and `badurl` (its base_url names
an unset variable). `empq submit` warns about both (a warning: the submit goes
on). Each worker checks every source of the run when it loads it and reports
the ones it cannot call on its heartbeats; the broker shows the reason in
`empq status` (text and --json) and in the metrics within 5 s of the first
worker report, and stops the model once every live worker serving it has
reported it for the bound (10 s: docs/internals.md), measured here from the
last worker's first report. `good` finishes all its jobs (a share of them
answered 500 by the fake server with one attempt allowed: dead, counted by reason in status and metrics,
and counted again from Redis by a restarted broker); the stopped models' jobs
stay pending (like max_cost) and status says they will not run."""

import json
import os
import re
import signal
import time
import urllib.request
from datetime import datetime

from empqtest import Cluster, free_port, main, program, wait_until

PROMPTS = 40
BOUND_S = 10.0       # the broker's unusable_ms
SLACK_S = 1.25 + 2   # one heartbeat + one gathering, and margin for a loaded machine


def spec_text():
    return ("name: unusable\n"
            "dataset:\n  format: synth\n  prompts: %d\n  seed: 3\n"
            "selection:\n  prompts: %d\n  seed: 1\n  balance: none\n"
            "template:\n  user: \"{prompt}\"\n"
            "human:\n  include: false\nmodels:\n"
            "  - alias: good\n    provider: openai-compatible\n"
            "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"\n    model: fake-warm\n    max_attempts: 1\n"
            "  - alias: nokey\n    provider: openai-compatible\n"
            "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"\n    model: fake-formal\n"
            "    api_key_env: EMPQ_TEST_NO_SUCH_KEY\n    max_attempts: 50\n"
            "  - alias: badurl\n    provider: openai-compatible\n"
            "    base_url: \"${EMPQ_TEST_NO_SUCH_HOST}/v1\"\n    model: fake-brief\n    max_attempts: 50\n"
            ) % (PROMPTS, PROMPTS)


def log_times(path, pattern):
    """Wall times (s) of the log lines matching pattern."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            if re.search(pattern, line):
                ts = re.match(r"ts=(\S+)Z", line).group(1)
                out.append(datetime.fromisoformat(ts + "+00:00").timestamp())
    return out


def test_model_unusable():
    os.environ.pop("EMPQ_TEST_NO_SUCH_KEY", None)
    os.environ.pop("EMPQ_TEST_NO_SUCH_HOST", None)
    with Cluster(workers=2, latency_ms=20, name="unusable", fakellm_args=["--fault-500", "0.2"]) as c:
        c.start(broker=False, workers=False)
        # the broker with its metrics endpoint
        c.jobs_ep = f"tcp://127.0.0.1:{free_port()}"
        c.control_ep = f"tcp://127.0.0.1:{free_port()}"
        mport = free_port()
        argv = [program("empq-broker"), "--redis", c.redis_url, "--bind", c.jobs_ep, "--control",
                c.control_ep, "--metrics", f"127.0.0.1:{mport}"]
        c.spawn("broker", argv)
        wait_until("the broker", lambda: c.cli(["status", "--json"], check=False).returncode == 0,
                   timeout=20, interval=0.1)
        for i in (1, 2):
            c.start_worker(i)

        def metrics():
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
                return r.read().decode()

        r = c.cli(["submit", c.write("study.yaml", spec_text())])
        run = r.stdout.strip().splitlines()[-1]
        assert "warning" in r.stderr and "EMPQ_TEST_NO_SUCH_KEY" in r.stderr, r.stderr
        assert "EMPQ_TEST_NO_SUCH_HOST" in r.stderr, r.stderr

        def status():
            st = json.loads(c.cli(["status", run, "--json"]).stdout)["runs"][0]
            return st, {m["source"]: m for m in st["models"]}

        # the reason reaches status
        seen = {}
        stopped = {}
        t_end = time.time() + 60
        while time.time() < t_end and len(stopped) < 2:
            c.check_alive()
            st, m = status()
            now = time.time()
            for src in ("nokey", "badurl"):
                if src not in seen and m[src].get("unusable_reason"):
                    seen[src] = (now, m[src]["unusable_reason"])
                    # the metrics say it as soon as status does
                    assert re.search(r'empq_model_unusable_workers\{run="%s",model="%s",reason="[^"]+"\} [12]'
                                     % (run, src), metrics()), src
                if src not in stopped and m[src].get("stopped"):
                    stopped[src] = (now, m[src].get("stop_reason", ""))
            assert "unusable_reason" not in m["good"] and not m["good"].get("stopped"), m["good"]
            time.sleep(0.1)
        assert len(stopped) == 2, (seen, stopped)
        assert "EMPQ_TEST_NO_SUCH_KEY" in seen["nokey"][1], seen
        assert "EMPQ_TEST_NO_SUCH_HOST" in seen["badurl"][1], seen
        for src, var in (("nokey", "EMPQ_TEST_NO_SUCH_KEY"), ("badurl", "EMPQ_TEST_NO_SUCH_HOST")):
            reports = []
            for i in (1, 2):
                t = log_times(os.path.join(c.logs, f"worker-{i}.log"), rf"event=model_unusable .*model={src} ")
                assert t, f"worker-{i} did not find {src} unusable"
                reports.append(min(t))
            shown = seen[src][0] - min(reports)
            took = stopped[src][0] - max(reports)
            print(f"   {src}: shown {shown:.2f} s after the first worker report, stopped {took:.2f} s after "
                  f"the last worker's first report; {stopped[src][1]!r}", flush=True)
            assert shown <= 5.0, (src, shown)
            assert took <= BOUND_S + SLACK_S, (src, took)
            assert stopped[src][1].startswith("unusable: ") and var in stopped[src][1], stopped[src]

        ws = json.loads(c.cli(["workers", "--json"]).stdout)["workers"]
        assert len(ws) == 2 and all(sorted(u["model"] for u in w["unusable"]) == [1, 2] for w in ws), ws

        # the rest of the run completes; the stopped sources stay pending
        def good_done():
            c.check_alive()
            st, m = status()
            return m["good"]["done"] + m["good"]["dead"] == PROMPTS and m["nokey"]["leased"] == 0 \
                and m["badurl"]["leased"] == 0
        wait_until("good finished", good_done, timeout=60, interval=0.2)
        st, m = status()
        g = m["good"]
        assert g["dead"] > 0 and g["dead_reasons"] == {"HTTP 500": g["dead"]}, g
        assert st["state"] == "active" and st["eta_s"] is None, st
        for src in ("nokey", "badurl"):
            assert m[src]["pending"] + m[src]["dead"] + m[src]["done"] == PROMPTS and m[src]["pending"] > 0, m[src]
        text = c.cli(["status", run]).stdout
        assert "STOPPED (unusable: " in text and "will not run" in text, text
        assert f"dead: HTTP 500 {g['dead']}" in text, text
        mt = metrics()
        assert re.search(r'empq_model_stop_info\{run="%s",model="nokey",reason="unusable: [^"]*'
                         r'EMPQ_TEST_NO_SUCH_KEY[^"]*"\} 1' % run, mt), mt
        assert f'empq_jobs_dead_by_reason{{run="{run}",model="good",reason="HTTP 500"}} {g["dead"]}' in mt
        assert re.search(r'empq_model_unusable_workers\{run="%s",model="badurl",reason="[^"]*"\} 2' % run, mt), mt
        with open(os.path.join(c.logs, "broker.log")) as f:
            log = f.read()
        for src in ("nokey", "badurl"):
            assert len(re.findall(r"event=model_stopped .*model=%s " % src, log)) == 1, log[-3000:]
            assert len(re.findall(r"event=model_unusable .*model=%s " % src, log)) == 1, log[-3000:]

        # a restarted broker counts the dead reasons again from Redis
        c.stop("broker", sig=signal.SIGKILL)
        c.spawn("broker2", argv)
        wait_until("the restarted broker", lambda: c.cli(["status", "--json"], check=False).returncode == 0,
                   timeout=20, interval=0.1)
        st2, m2 = status()
        assert m2["good"]["dead_reasons"] == g["dead_reasons"], (g, m2["good"])
        print(f"   good: {g['done']} done, {g['dead']} dead {g['dead_reasons']}; after a broker restart the same",
              flush=True)


if __name__ == "__main__":
    main(test_model_unusable)
