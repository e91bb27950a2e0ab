"""A job's attempts survive a broker restart. Every model request fails
(fakellm --fault-503 1), so each model job is tried max_attempts times and
dies. The broker is killed while jobs are between attempts and started
again: it reads the attempts recorded in Redis (empq:run:{id}:attempts,
HINCRBY on every RETRY), so no job gets a fresh max_attempts. Backend calls
are at most jobs x max_attempts plus the calls whose attempt no broker
recorded: those made before the kill whose RETRY was still unread in the
killed broker's socket (calls at the kill minus the attempts in Redis minus
the jobs already dead; under load that queue is long), and the requests in
flight at the kill (their RETRY reached no broker). Without durable attempts
a restart gives every job that had failed a new budget."""

import json

from faultlib import FaultCluster, demo_like_spec, main, os, say, signal, time, wait_until

PROMPTS = 40
MODELS = ("fake-warm", "fake-formal")
MAX_ATTEMPTS = 4


def re_numbers(out):
    """The values of a redis-cli --no-raw list reply ('1) "3"' lines)."""
    return [line.split(")", 1)[1].strip() for line in out.splitlines() if ")" in line]


def calls(c):
    st = c.fakellm_stats()
    return int(st["requests"]) + int(st["errors"])  # every request failed: counted as errors


def test_attempts_survive_restart():
    with FaultCluster("faults-attempts", workers=2, credit=16, fakellm_args=["--fault-503", "1"]) as c:
        c.start()
        spec = demo_like_spec("attempts", PROMPTS, seed=3, models=MODELS)
        spec = spec.replace("    params: {temperature: 0.7, max_tokens: 128}",
                            f"    max_attempts: {MAX_ATTEMPTS}\n    params: {{temperature: 0.7, max_tokens: 128}}")
        run_id = c.submit(c.write("study.yaml", spec))
        model_jobs = PROMPTS * len(MODELS)
        # kill once most jobs have failed once or twice
        wait_until("first failures", lambda: calls(c) >= model_jobs * 1.5, timeout=60)
        recorded = c.redis("HLEN", f"empq:run:{run_id}:attempts")
        in_flight = c.credit * len(c.live_workers())
        c.stop("broker", sig=signal.SIGKILL)
        calls_at_kill = calls(c)
        attempts_at_kill = sum(int(v.strip('"')) for v in re_numbers(c.redis("HVALS", f"empq:run:{run_id}:attempts")))
        dead_at_kill = int(c.redis("HLEN", f"empq:run:{run_id}:dead").split()[-1])
        unrecorded = max(0, calls_at_kill - attempts_at_kill - dead_at_kill)
        say(f"SIGKILL broker after {calls_at_kill} calls; attempts recorded for {recorded.split()[-1]} jobs")
        time.sleep(0.5)
        c.start_broker()
        path = c.wait_responses(run_id, timeout=120)
        dead_path = os.path.join(os.path.dirname(path), "dead.jsonl")
        # the collector writes responses.jsonl, then dead.jsonl
        wait_until("dead.jsonl", lambda: os.path.exists(dead_path), timeout=10)
        dead = [json.loads(x) for x in open(dead_path)]
        assert len(dead) == model_jobs, f"{len(dead)} dead letters, want {model_jobs}"
        n_calls = calls(c)
        bound = model_jobs * MAX_ATTEMPTS + unrecorded + in_flight
        say(f"backend calls {n_calls}; bound {bound} (jobs x max_attempts {model_jobs * MAX_ATTEMPTS} "
            f"+ {unrecorded} made before the kill and unrecorded + {in_flight} in flight); a fresh budget after "
            f"the restart would allow "
            f"{calls_at_kill + model_jobs * MAX_ATTEMPTS}")
        assert n_calls <= bound, f"{n_calls} backend calls: attempts restarted after the broker restart"


if __name__ == "__main__":
    main(test_attempts_survive_restart)
