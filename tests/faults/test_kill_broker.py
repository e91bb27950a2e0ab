"""Fault (b): SIGKILL the broker during the study and start it again (twice,
at about 30% and 65%). The restarted broker reloads the run from Redis (jobs
with a result are done), the workers find it again on their own, and the run
ends with exactly one result per job. Backend calls beyond the jobs are at
most the jobs leased at the kills (those still in flight when the new broker
handed them out again)."""

from faultlib import FaultCluster, JOBS, check_complete, main, say, signal, study, time


def test_kill_broker():
    with FaultCluster("faults-broker") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        allowed = 0
        for share in (0.30, 0.65):
            c.wait_progress(run_id, share)
            st = c.status(run_id)
            leased = st["leased"] if st else c.credit * len(c.live_workers())
            # the broker may lease up to every worker's credit between the status and the kill
            in_flight = c.credit * len(c.live_workers())
            t = time.time()
            c.stop("broker", sig=signal.SIGKILL)
            c.kills.append(("broker", t, in_flight))
            allowed += in_flight
            say(f"SIGKILL broker at {c.progress(run_id)}/{JOBS} jobs, leased {leased}")
            time.sleep(1.0)
            c.start_broker()
            say(f"broker back after {time.time() - t:.2f}s")
        check_complete(c, run_id, extra_allowed=allowed, t0=t0)
        c.check_alive()


if __name__ == "__main__":
    main(test_kill_broker)
