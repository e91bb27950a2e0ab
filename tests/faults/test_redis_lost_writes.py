"""Redis crashing (not restarting) can lose its last second of writes
(appendfsync everysec): results whose DONE already reached the broker. The
stand-in here deletes 20 results of finished jobs mid-run (HDEL). When the
broker's table says the run is finished it checks the counts in Redis, sees
20 missing (event=run_incomplete_in_redis), loads the run again so exactly
those jobs are pending, and they run again (from the cache: no backend
call). The run ends complete, with no duplicate."""

from faultlib import FaultCluster, JOBS, MODEL_JOBS, check_complete, main, say, study, time, wait_until

LOST = 20


def test_lost_results_are_redone():
    with FaultCluster("faults-lost-writes") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        c.wait_progress(run_id, 0.5)
        key = f"empq:run:{run_id}:results"
        jobs = [ln for ln in c.redis("HKEYS", key).splitlines() if ln.strip()][:LOST]
        jobs = [j.split(")", 1)[-1].strip().strip('"') for j in jobs]
        assert len(jobs) == LOST, jobs
        deleted = c.redis("HDEL", key, *jobs)
        say(f"deleted {deleted} results at {c.progress(run_id)}/{JOBS} jobs")
        # the redone jobs are served from the cache: their lines say cache_hit,
        # which check_complete counts as no call, so up to LOST "extra" there;
        # what matters is that the backend saw no job twice
        fig = check_complete(c, run_id, extra_allowed=LOST, t0=t0)
        assert fig["calls"] <= MODEL_JOBS, f"{fig['calls']} backend calls for {MODEL_JOBS} model jobs"
        wait_until("event=run_incomplete_in_redis", lambda: any(
            "event=run_incomplete_in_redis" in ln and f"missing={LOST}" in ln for ln in c.broker_log()), timeout=5)


if __name__ == "__main__":
    main(test_lost_results_are_redone)
