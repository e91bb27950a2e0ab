"""Start order does not matter: broker, workers and collector started while
Redis is not up yet wait for it (backoff 250 ms doubling to 5 s) and carry
on; the run then completes as usual."""

import socket

from faultlib import FaultCluster, free_port, JOBS, check_complete, main, os, say, study, time, wait_until


def test_redis_last():
    with FaultCluster("faults-start-order") as c:
        c.redis_port = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            c.redis_port = s.getsockname()[1]
        c.redis_url = f"redis://127.0.0.1:{c.redis_port}"
        c.start_fakellm()
        c.jobs_ep = "tcp://127.0.0.1:%d" % free_port()
        c.control_ep = "tcp://127.0.0.1:%d" % free_port()
        broker = c.spawn("broker", [c.program("empq-broker"), "--redis", c.redis_url,
                                    "--bind", c.jobs_ep, "--control", c.control_ep])
        c.start_collector()
        for i in range(1, c.n_workers + 1):
            c.start_worker(i)
        time.sleep(1.5)
        for name, p in c.procs.items():
            assert p.poll() is None, f"{name} exited ({p.returncode}) while Redis was down"
        t = time.monotonic()
        c.start_redis()
        wait_until("broker control", lambda: c.cli(["status", "--json"], timeout=5, check=False).returncode == 0,
                   timeout=15, procs=[broker])
        say(f"broker up {time.monotonic() - t:.2f}s after Redis")
        for name in ("broker", "worker-1"):
            def log():
                with open(os.path.join(c.logs, name + ".log"), errors="replace") as f:
                    return f.read()
            # the worker retries Redis on its own timer: its redis_up may come a moment after the broker's
            try:
                wait_until(f"{name}: redis_up", lambda: "event=redis_up" in log(), timeout=15)
            except Exception:
                raise AssertionError(name + ": no event=redis_up:\n" + log()[-1500:])
            assert "event=redis_unreachable" in log(), name + ":\n" + log()[-1500:]
        run_id = c.submit(study(c))
        check_complete(c, run_id, extra_allowed=0, t0=time.monotonic())


if __name__ == "__main__":
    main(test_redis_last)
