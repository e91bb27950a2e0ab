#!/usr/bin/python3
"""empq rerun: a subset of a run again (must-show 3 of issue 7).

A run of 64 synthetic prompts x (human + 2 fake models); then
`empq rerun RUN --emotion afraid --model fake-warm`: a child run of exactly
that subset, served from the cache (zero backend calls, by the fake LLM's
/stats); with --force exactly as many backend calls as `afraid` has prompts;
the child runs' responses.jsonl hold exactly that subset. Also --dead-only
on a run without dead jobs (nothing to do), and the status of a rerun
(parent, per-emotion counts)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Cluster, demo_like_spec, main, read_jsonl, wait_until  # noqa: E402

PROMPTS = 64


def status(c, run):
    r = c.cli(["status", run, "--json"])
    return json.loads(r.stdout)["runs"][0]


def wait_done(c, run, timeout=60):
    def done():
        c.check_alive()
        return status(c, run)["state"] == "done"
    wait_until(f"run {run} done", done, timeout=timeout, interval=0.1)


def test_rerun():
    with Cluster(workers=2, name="ops-rerun") as c:
        c.start()
        spec = c.write("study.yaml", demo_like_spec("rerun", PROMPTS, models=("fake-warm", "fake-brief")))
        run = c.submit(spec)
        wait_done(c, run)
        parent = read_jsonl(c.wait_responses(run))
        assert len(parent) == PROMPTS * 3, len(parent)
        afraid = sorted({r["prompt_id"] for r in parent if r["emotion"] == "afraid"})
        assert afraid, "the synthetic selection has no afraid prompt"
        st = status(c, run)
        emo = {e["emotion"]: e for e in st["emotions"]}
        assert emo["afraid"]["done"] == 3 * len(afraid), (emo["afraid"], len(afraid))
        assert sum(e["done"] for e in st["emotions"]) == PROMPTS * 3, st["emotions"]
        calls0 = c.fakellm_stats()["requests"]

        # from the cache: zero backend calls
        r = c.cli(["rerun", run, "--emotion", "afraid", "--model", "fake-warm"])
        child = r.stdout.strip().splitlines()[-1]
        assert child != run and child.startswith("r-"), r.stdout
        wait_done(c, child)
        st = status(c, child)
        assert st["parent"] == run, st
        assert st["total"] == len(afraid) and st["done"] == len(afraid), st
        assert st["cache_hits"] == len(afraid), st
        assert [m["source"] for m in st["models"]] == ["fake-warm"], st["models"]
        assert [e["emotion"] for e in st["emotions"]] == ["afraid"], st["emotions"]
        lines = read_jsonl(c.wait_responses(child))
        assert sorted(l["prompt_id"] for l in lines) == afraid, lines
        assert {l["source"] for l in lines} == {"fake-warm"} and {l["emotion"] for l in lines} == {"afraid"}
        assert c.fakellm_stats()["requests"] == calls0, "a rerun from the cache called the backend"
        # same texts as the parent's
        want = {l["prompt_id"]: l["response"] for l in parent if l["source"] == "fake-warm"}
        assert all(want[l["prompt_id"]] == l["response"] for l in lines)

        # --force: exactly one backend call per prompt of the subset
        r = c.cli(["rerun", run, "--emotion", "afraid", "--model", "fake-warm", "--force"])
        forced = r.stdout.strip().splitlines()[-1]
        wait_done(c, forced)
        st = status(c, forced)
        assert st["done"] == len(afraid) and st["cache_hits"] == 0, st
        calls = c.fakellm_stats()["requests"] - calls0
        assert calls == len(afraid), f"--force made {calls} backend calls, want {len(afraid)}"
        lines = read_jsonl(c.wait_responses(forced))
        assert sorted(l["prompt_id"] for l in lines) == afraid
        assert {l["source"] for l in lines} == {"fake-warm"}
        print(f"   afraid prompts {len(afraid)}: cache rerun 0 calls, forced rerun {calls} calls",
              file=sys.stderr)

        # --prompt and the human source; unknown names are refused
        r = c.cli(["rerun", run, "--prompt", afraid[0], "--model", "human", "--model", "fake-brief"])
        one = r.stdout.strip().splitlines()[-1]
        wait_done(c, one)
        lines = read_jsonl(c.wait_responses(one))
        assert sorted(l["source"] for l in lines) == ["fake-brief", "human"], lines
        assert c.fakellm_stats()["requests"] - calls0 == len(afraid)
        for bad in (["--emotion", "nope"], ["--model", "nope"], ["--prompt", "nope"]):
            r = c.cli(["rerun", run] + bad, check=False)
            assert r.returncode == 2 and "nope" in r.stderr, (bad, r.returncode, r.stderr)
        r = c.cli(["rerun", run, "--dead-only"], check=False)
        assert r.returncode == 0 and "no dead jobs" in r.stderr, r.stderr


def test_rerun_dead_only():
    """Dead jobs (HTTP 401: a wrong key for one model) requeued in place
    once the worker has the right key: the run completes with no dead job,
    and only the dead jobs were asked again."""
    n = 16
    with Cluster(workers=1, name="ops-dead", fakellm_args=["--require-key", "sekret"],
                 worker_env={"EMPQ_TEST_KEY": "sekret", "EMPQ_BRIEF_KEY": "wrong"}) as c:
        c.start()
        text = demo_like_spec("dead", n, seed=3, models=("fake-warm", "fake-brief"))
        text = text.replace("    model: fake-warm\n", "    model: fake-warm\n    api_key_env: EMPQ_TEST_KEY\n")
        text = text.replace("    model: fake-brief\n", "    model: fake-brief\n    api_key_env: EMPQ_BRIEF_KEY\n")
        run = c.submit(c.write("study.yaml", text))
        wait_done(c, run)
        st = status(c, run)
        assert st["dead"] == n and st["done"] == 2 * n, st
        assert {m["source"]: m["dead"] for m in st["models"]} == {"human": 0, "fake-warm": 0, "fake-brief": n}
        # the collector's files: dead.jsonl is in place once responses.jsonl is
        resp = c.wait_responses(run)
        dead_path = os.path.join(os.path.dirname(resp), "dead.jsonl")
        assert len(read_jsonl(resp)) == 2 * n
        dead = read_jsonl(dead_path)
        assert len(dead) == n and all(d["source"] == "fake-brief" and d["reason"] for d in dead), dead
        calls0 = c.fakellm_stats()["requests"]
        c.stop("worker-1")
        c.worker_env["EMPQ_BRIEF_KEY"] = "sekret"
        c.start_worker(1)
        r = c.cli(["rerun", run, "--dead-only", "--model", "fake-brief"])
        assert f"{n} dead jobs requeued" in r.stderr, r.stderr
        assert r.stdout.strip() == run
        wait_done(c, run)
        st = status(c, run)
        assert st["dead"] == 0 and st["done"] == 3 * n, st
        assert c.fakellm_stats()["requests"] - calls0 == n, "more than the dead jobs were asked again"
        # the collector writes the files again: every line, and no stale dead letter
        wait_until("responses.jsonl with the rerun jobs", lambda: len(read_jsonl(resp)) == 3 * n, timeout=30,
                   interval=0.1)
        assert read_jsonl(dead_path) == [], "dead.jsonl still lists jobs that are done"
        out = os.path.join(c.tmp, "again.jsonl")
        r = c.cli(["export", run, "--out", out])
        assert "is complete" in r.stderr, r.stderr
        assert len(read_jsonl(out)) == 3 * n


if __name__ == "__main__":
    main(test_rerun, test_rerun_dead_only)
