"""A worker that stops answering without its connection closing (SIGSTOP:
a hung process, a host cut off) is given up after 5 silent heartbeats and
its jobs requeued, within REQUEUE_MAX_S (default 10 s). When it comes back
(SIGCONT) it finishes what it held, its late outcomes are applied or
ignored, it says hello again, and the run ends with one result per job:
the worker that returned after being given up causes no double result."""

from faultlib import (FaultCluster, JOBS, REQUEUE_MAX_S, check_complete, main, os, requeue_times, say,
                      signal, study, time, wait_until)


def test_frozen_worker():
    with FaultCluster("faults-frozen") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        c.wait_progress(run_id, 0.25)
        p = c.procs["worker-1"]
        t = time.time()
        p.send_signal(signal.SIGSTOP)
        try:
            wait_until("event=worker_lost for the frozen worker",
                       lambda: any("event=worker_lost worker=test-worker-1" in ln for ln in c.broker_log()),
                       timeout=REQUEUE_MAX_S + 5)
            (wid, took), = requeue_times(c, [("test-worker-1", t)])
            say(f"frozen test-worker-1 given up {took:.2f}s after SIGSTOP (bound {REQUEUE_MAX_S:.0f}s)")
            assert took <= REQUEUE_MAX_S, f"requeued {took:.2f} s after the worker froze"
        finally:
            p.send_signal(signal.SIGCONT)
        check_complete(c, run_id, extra_allowed=c.credit, t0=t0)
        with open(os.path.join(c.logs, "broker.log"), errors="replace") as f:
            back = sum(1 for ln in f if "event=worker_hello worker=test-worker-1" in ln)
        assert back >= 2, "the frozen worker did not say hello again"
        c.check_alive()


if __name__ == "__main__":
    main(test_frozen_worker)
