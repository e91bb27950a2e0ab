"""Graceful stop. SIGTERM to a worker: it takes no more jobs, finishes what
it holds (grace 10 s; the fake server answers in 100 ms), says bye, exits 0;
the broker requeues nothing it had to give up and no backend call is
repeated. SIGTERM to the broker: it stops dispatching, tells the workers to
shut down, exits 0; a new broker and new workers finish the run from Redis
with nothing lost and nothing asked twice."""

from faultlib import FaultCluster, JOBS, check_complete, main, os, say, signal, study, time


def worker_log(c, name):
    with open(os.path.join(c.logs, name + ".log"), errors="replace") as f:
        return f.read()


def test_sigterm_worker():
    with FaultCluster("faults-stop-worker") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        c.wait_progress(run_id, 0.3)
        t = time.monotonic()
        rc = c.stop("worker-1", sig=signal.SIGTERM, timeout=15)
        took = time.monotonic() - t
        say(f"worker-1 stopped in {took:.2f}s with status {rc}")
        assert rc == 0, f"worker exit status {rc}"
        assert took < 5, f"the worker took {took:.2f} s to stop (its requests take 0.1 s)"
        log = worker_log(c, "worker-1")
        assert "event=stopping reason=signal" in log, log[-2000:]
        assert "event=grace_over" not in log, "in-flight requests were handed back, not finished"
        c.start_worker(c.next_worker)  # keep three workers
        c.next_worker += 1
        check_complete(c, run_id, extra_allowed=0, t0=t0)
        blog = "\n".join(c.broker_log())
        assert "event=worker_bye worker=test-worker-1" in blog, "no bye from the stopped worker"
        assert "event=worker_lost worker=test-worker-1" not in blog, "the stopped worker was given up"
        # the collector stops on SIGTERM within one blocking read (500 ms)
        t = time.monotonic()
        rc = c.stop("collector", sig=signal.SIGTERM, timeout=5)
        took = time.monotonic() - t
        say(f"collector stopped in {took:.2f}s with status {rc}")
        assert rc == 0 and took < 2, (rc, took)


def test_sigterm_broker():
    with FaultCluster("faults-stop-broker") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        c.wait_progress(run_id, 0.3)
        t = time.monotonic()
        rc = c.stop("broker", sig=signal.SIGTERM, timeout=10)
        took = time.monotonic() - t
        say(f"broker stopped in {took:.2f}s with status {rc} at {c.progress(run_id)}/{JOBS} jobs")
        assert rc == 0, f"broker exit status {rc}"
        assert took < 2, f"the broker took {took:.2f} s to stop"
        # the broker told the workers to shut down: they finish what they hold and exit 0
        for name in c.live_workers():
            p = c.procs[name]
            p.wait(timeout=15)
            assert p.returncode == 0, f"{name} exit status {p.returncode}"
            assert "event=stopping reason=broker_shutdown" in worker_log(c, name)
            c.stop(name)
        held = c.progress(run_id)
        time.sleep(0.5)
        assert c.progress(run_id) == held, "results still arriving after every worker exited"
        c.start_broker()
        for _ in range(c.n_workers):
            c.start_worker(c.next_worker)
            c.next_worker += 1
        check_complete(c, run_id, extra_allowed=0, t0=t0)


if __name__ == "__main__":
    main(test_sigterm_worker, test_sigterm_broker)
