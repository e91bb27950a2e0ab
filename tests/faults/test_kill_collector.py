"""Fault (c): SIGKILL the collector during the study (twice) and start it
again. It resumes the results stream through its consumer group (entries
delivered but not acked are read again), and writes responses.jsonl once,
with exactly one line per job; no backend call is repeated. Afterwards the
results stream is trimmed down to its last entry."""

from faultlib import FaultCluster, JOBS, check_complete, main, os, say, signal, study, time, wait_until


def test_kill_collector():
    with FaultCluster("faults-collector") as c:
        c.start()
        run_id = c.submit(study(c))
        t0 = time.monotonic()
        for share in (0.25, 0.6):
            c.wait_progress(run_id, share)
            t = time.time()
            c.stop("collector", sig=signal.SIGKILL)
            c.kills.append(("collector", t, 0))
            say(f"SIGKILL collector at {c.progress(run_id)}/{JOBS} jobs")
            time.sleep(1.0)
            c.start_collector()
        check_complete(c, run_id, extra_allowed=0, t0=t0)
        # written once: one run_exported in all the collectors' logs
        with open(os.path.join(c.logs, "collector.log"), errors="replace") as f:
            exports = sum(1 for ln in f if "event=run_exported" in ln)
        assert exports == 1, f"run exported {exports} times"
        # the results stream does not grow forever: acked entries are trimmed
        wait_until("results stream trimmed", lambda: c.redis("XLEN", "empq:results").endswith(" 1"),
                   timeout=15, interval=0.2)


if __name__ == "__main__":
    main(test_kill_collector)
