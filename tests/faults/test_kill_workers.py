"""Fault (a): during the study, SIGKILL a random worker every few seconds and
start a new one. Exactly one result per job, no duplicate line, backend calls
beyond the jobs at most the jobs the killed workers held, and each dead
worker's jobs back in the queue within REQUEUE_MAX_S (default 10 s)."""

from faultlib import (FaultCluster, JOBS, REQUEUE_MAX_S, check_complete, main, os, random,
                      requeue_times, say, study, time, wait_until)

EVERY_S = float(os.environ.get("EMPQ_FAULT_KILL_EVERY_S", "2"))


def test_kill_workers():
    rng = random.Random(int(os.environ.get("EMPQ_FAULT_SEED", "4")))
    with FaultCluster("faults-workers") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        killed = []
        # kill until 90% is done, so the last kill still has work to requeue
        while c.progress(run_id) < JOBS * 0.9:
            time.sleep(EVERY_S * (0.5 + rng.random()))
            if c.progress(run_id) >= JOBS * 0.9:
                break
            wid, t = c.kill_worker(rng)
            killed.append((wid, t))
            say(f"SIGKILL {wid} at {c.progress(run_id)}/{JOBS} jobs")
        assert killed, "the run finished before the first kill: make it longer (EMPQ_FAULT_CREDIT)"
        figures = check_complete(c, run_id, extra_allowed=c.credit * len(killed), t0=t0)

        def all_lost():
            try:
                return requeue_times(c, killed)
            except AssertionError:
                return None

        wait_until("event=worker_lost for every killed worker", all_lost, timeout=REQUEUE_MAX_S + 5)
        times = requeue_times(c, killed)
        worst = max(d for _, d in times)
        say("death -> requeue: " + " ".join(f"{d:.2f}s" for _, d in times) + f" (max {worst:.2f}s, "
            f"bound {REQUEUE_MAX_S:.0f}s); extra calls {figures['extra']}")
        for wid, d in times:
            assert d <= REQUEUE_MAX_S, f"{wid}: jobs requeued {d:.2f} s after its death (bound {REQUEUE_MAX_S} s)"


if __name__ == "__main__":
    main(test_kill_workers)
