"""Fault (d): restart Redis (append-only, appendfsync everysec) during the
study, down for a second. Broker, workers and collector reconnect on their
own and the run ends with exactly one result per job. Backend calls beyond
the jobs are at most the jobs in flight at the restart (a reply that came
while Redis was down cannot be stored and is asked again)."""

from faultlib import FaultCluster, JOBS, check_complete, main, say, study, time


def test_restart_redis():
    with FaultCluster("faults-redis") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        c.wait_progress(run_id, 0.4)
        in_flight = c.credit * len(c.live_workers())
        before = c.progress(run_id)
        t = c.restart_redis(down_s=1.0)
        c.kills.append(("redis", t, in_flight))
        after = c.progress(run_id)
        say(f"redis restarted at {before}/{JOBS} jobs; {after} results after the restart")
        assert after >= before, f"results lost across the Redis restart: {before} -> {after}"
        check_complete(c, run_id, extra_allowed=in_flight, t0=t0)
        c.check_alive()


def test_redis_long_outage():
    """Redis away for 6 s (longer than 5 heartbeats): nothing exits, no job
    is given up (the RETRYs a store outage causes are outcomes, not silent
    leases, and not attempts), the run completes soon after Redis is back."""
    with FaultCluster("faults-redis-long") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        c.wait_progress(run_id, 0.4)
        in_flight = c.credit * len(c.live_workers())
        t = c.restart_redis(down_s=6.0)
        back = time.monotonic()
        c.kills.append(("redis", t, in_flight))
        c.check_alive()
        say(f"redis back after {time.time() - t:.1f}s at {c.progress(run_id)}/{JOBS} jobs")
        check_complete(c, run_id, extra_allowed=in_flight, t0=t0)
        # The jobs the outage failed are retried 1 s apart, not after a
        # backoff grown by each failed store call (Outcome.local_failure): the
        # run ends soon after Redis is back (before: about 30 s after).
        after = time.monotonic() - back
        say(f"run complete {after:.1f}s after Redis was back")
        assert after < 20, f"the run took {after:.1f}s to finish after Redis came back"
        assert not any("job_dead_no_outcome" in ln for ln in c.broker_log()), "a job given up"
        c.check_alive()


if __name__ == "__main__":
    main(test_restart_redis, test_redis_long_outage)
