"""A worker that stops answering without its connection closing (SIGSTOP:
a hung process, a host cut off) is given up after 5 silent heartbeats and
its jobs requeued, within REQUEUE_MAX_S (default 10 s). When it comes back
(SIGCONT) it finishes what it held, its late outcomes are applied or
ignored, it says hello again, and the run ends with one result per job:
the worker that returned after being given up causes no double result.

test_frozen_past_give_up: the worker stays stopped FREEZE_S (default 20 s),
long after the broker gave it up and other workers finished its jobs. When
it comes back it must not start any job it held and had not sent (the
queued ones, its prefetch): their leases are gone. Measured from the fake
server's own request log (--request-log): the frozen worker reaches the
server as "localhost" (its own EMPQ_FAKELLM_URL), the others as 127.0.0.1,
and no request from it that arrives after SIGCONT is for a job (the same
request body) another worker had already been answered for. Requests it had
on the wire before the freeze are not recalled (they arrived before it)."""

import json

from faultlib import (FaultCluster, JOBS, REQUEUE_MAX_S, check_complete, main, os, requeue_times, say,
                      signal, study, time, wait_until)
from empqtest import program

FREEZE_S = float(os.environ.get("EMPQ_FAULT_FREEZE_S", "20"))


def freeze_worker_1(c, hold_s=0.0):
    """Runs the fault study to a quarter, SIGSTOPs worker-1 until the broker
    gives it up (within REQUEUE_MAX_S) and hold_s seconds have passed, then
    SIGCONT. Returns (run id, monotonic start, SIGSTOP time, SIGCONT time)."""
    run_id = c.submit(study(c))
    t0 = time.monotonic()
    c.wait_progress(run_id, 0.25)
    p = c.procs["worker-1"]
    t_stop = time.time()
    p.send_signal(signal.SIGSTOP)
    try:
        wait_until("event=worker_lost for the frozen worker",
                   lambda: any("event=worker_lost worker=test-worker-1" in ln for ln in c.broker_log()),
                   timeout=REQUEUE_MAX_S + 5)
        (wid, took), = requeue_times(c, [("test-worker-1", t_stop)])
        say(f"frozen test-worker-1 given up {took:.2f}s after SIGSTOP (bound {REQUEUE_MAX_S:.0f}s)")
        assert took <= REQUEUE_MAX_S, f"requeued {took:.2f} s after the worker froze"
        time.sleep(max(0.0, hold_s - (time.time() - t_stop)))
    finally:
        t_cont = time.time()
        p.send_signal(signal.SIGCONT)
    return run_id, t0, t_stop, t_cont


def test_frozen_worker():
    with FaultCluster("faults-frozen") as c:
        c.start()
        run_id, t0, _, _ = freeze_worker_1(c)
        check_complete(c, run_id, extra_allowed=c.credit, t0=t0)
        with open(os.path.join(c.logs, "broker.log"), errors="replace") as f:
            back = sum(1 for ln in f if "event=worker_hello worker=test-worker-1" in ln)
        assert back >= 2, "the frozen worker did not say hello again"
        c.check_alive()


class FrozenCluster(FaultCluster):
    """worker-1 reaches the fake server as localhost (the others as
    127.0.0.1), so the server's request log tells its requests apart; it
    holds a full prefetch (as many queued as in flight)."""

    def start_worker(self, i):
        if i != 1:
            return super().start_worker(i)
        argv = [program("empq-worker"), "--redis", self.redis_url, "--broker", self.jobs_ep,
                "--id", "test-worker-1", "--credit", str(self.credit), "--prefetch", str(self.credit)]
        p = self.spawn("worker-1", argv, env={"EMPQ_FAKELLM_URL": self.fake_url.replace("127.0.0.1", "localhost")})
        self.worker_ids["worker-1"] = "test-worker-1"
        return p


def test_frozen_past_give_up():
    with FrozenCluster("faults-frozen-drop") as c:
        reqlog = os.path.join(c.tmp, "requests.jsonl")
        c.fakellm_args += ["--request-log", reqlog]
        c.start()
        run_id, t0, t_stop, t_cont = freeze_worker_1(c, FREEZE_S)
        wait_until("the frozen worker says hello again",
                   lambda: sum("event=worker_hello worker=test-worker-1" in ln for ln in c.broker_log()) >= 2,
                   timeout=15)
        time.sleep(2.0)  # what it would start after waking has left by now
        with open(reqlog) as f:
            reqs = [json.loads(ln) for ln in f if ln.strip()]
        frozen = [r for r in reqs if r["host"].startswith("localhost:")]
        others = [r for r in reqs if not r["host"].startswith("localhost:")]
        answered = {}  # body -> first time another worker got its 200
        for r in others:
            if r["status"] == 200:
                answered[r["body"]] = min(answered.get(r["body"], r["replied_ms"]), r["replied_ms"])
        before = [r for r in frozen if r["arrived_ms"] < t_stop * 1000]
        after = [r for r in frozen if r["arrived_ms"] >= t_cont * 1000 - 100]
        again = [r for r in after if r["body"] in answered and answered[r["body"]] <= r["arrived_ms"]]
        say(f"frozen {t_cont - t_stop:.1f}s; its requests: {len(before)} before SIGSTOP, {len(after)} after "
            f"SIGCONT, {len(again)} of them for jobs another worker had finished")
        assert before, "the request log shows no request from the frozen worker (host localhost)"
        assert not again, (f"the frozen worker POSTed {len(again)} jobs other workers had finished, e.g. "
                           f"{again[0]} (answered to another worker at {answered[again[0]['body']]})")
        with open(os.path.join(c.logs, "worker-1.log"), errors="replace") as f:
            lost = [ln for ln in f if "event=leases_lost" in ln]
        assert lost, "the frozen worker did not notice its leases were gone"
        say("worker-1: " + lost[0].split(" src=")[1].strip())
        # the backend calls beyond the jobs: only what it had on the wire
        check_complete(c, run_id, extra_allowed=c.credit, t0=t0)
        c.check_alive()


if __name__ == "__main__":
    main(test_frozen_worker, test_frozen_past_give_up)
