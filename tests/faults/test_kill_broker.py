"""Fault (b): SIGKILL the broker during the study and start it again (twice,
at about 30% and 65%). The restarted broker reloads the run from Redis (jobs
with a result are done), the workers find it again on their own, and the run
ends with exactly one result per job. Backend calls beyond the jobs are at
most the jobs leased at the kills (those still in flight when the new broker
handed them out again)."""

from faultlib import (FaultCluster, JOBS, REQUEUE_MAX_S, check_complete, log_ts, main, say, signal, study, time,
                      wait_until)


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
            t_up = time.time()
            c.start_broker()
            # every worker finds the new broker on its own (its heartbeat is
            # rejected, it says hello again)
            n = len(c.live_workers())

            def hellos():
                got = {ln.split("worker=")[1].split()[0]: log_ts(ln) for ln in c.broker_log()
                       if "event=worker_hello" in ln and (log_ts(ln) or 0) >= t_up}
                return got if len(got) >= n else None

            got = wait_until("workers back with the new broker", hellos, timeout=REQUEUE_MAX_S + 5)
            last = max(got.values()) - t_up
            say(f"broker back after {t_up - t:.2f}s; all {n} workers with it {last:.2f}s after its start")
            assert last <= REQUEUE_MAX_S, f"workers took {last:.2f} s to find the new broker"
        check_complete(c, run_id, extra_allowed=allowed, t0=t0)
        c.check_alive()


if __name__ == "__main__":
    main(test_kill_broker)
