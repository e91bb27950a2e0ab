"""A small study end to end through the real programs: submit, broker,
workers, fakellm, collector -> responses.jsonl; then the same study again as
a new run, served entirely from the cache."""

import json
import os
import signal
import time

from empqtest import Cluster, demo_like_spec, main, read_jsonl

PROMPTS = 96
MODELS = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")
SOURCES = ("human",) + MODELS
VOLATILE = {"run_id", "started_at", "finished_at", "latency_ms", "cache_hit", "attempts"}


def check_run(lines, run_id, dataset):
    assert len(lines) == PROMPTS * len(SOURCES), f"{len(lines)} lines, want {PROMPTS * len(SOURCES)}"
    # order: prompt index, then source in spec order (human first)
    want = [(p, s) for p in range(PROMPTS) for s in SOURCES]
    got = [(r["prompt_index"], r["source"]) for r in lines]
    assert got == want, f"order differs first at {next(i for i in range(len(got)) if got[i] != want[i])}"
    keys = list(lines[0].keys())
    assert keys[:8] == ["run_id", "prompt_id", "prompt_index", "emotion", "situation", "prompt",
                        "response", "source"], keys
    prompt_ids = set()
    for r in lines:
        assert r["run_id"] == run_id
        assert list(r.keys()) == keys, "every line has the same keys in the same order"
        assert isinstance(r["response"], str) and r["response"], r
        d = dataset[r["prompt_id"]]
        assert r["emotion"] == d["emotion"] and r["prompt"] == d["prompt"], r
        if r["source"] == "human":
            assert r["response"] == d["human"], (r["response"], d["human"])
            assert r["model"] is None
        else:
            assert r["model"] == r["source"], r
            assert r["params"] == {"temperature": 0.7, "max_tokens": 128}, r["params"]
            assert r["finished_at"].endswith("Z"), r
        prompt_ids.add(r["prompt_id"])
    assert len(prompt_ids) == PROMPTS
    # the selection is balanced over the 32 emotions: 3 prompts each
    per_emotion = {}
    for r in lines:
        if r["source"] == "human":
            per_emotion[r["emotion"]] = per_emotion.get(r["emotion"], 0) + 1
    assert len(per_emotion) == 32 and set(per_emotion.values()) == {3}, per_emotion


def strip(lines):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in lines]


def test_pipeline():
    with Cluster(workers=2) as c:
        c.start()
        spec = c.write("study.yaml", demo_like_spec("pipeline", PROMPTS, seed=11, models=MODELS))
        ds_path = os.path.join(c.tmp, "dataset.jsonl")
        c.cli(["dataset", "synth", "--prompts", str(PROMPTS), "--seed", "11", "--out", ds_path])
        dataset = {d["id"]: d for d in read_jsonl(ds_path)}
        assert len(dataset) == PROMPTS

        # first run: every model response from the backend
        run1 = c.submit(spec)
        path1 = c.wait_responses(run1)
        lines1 = read_jsonl(path1)
        check_run(lines1, run1, dataset)
        # Every model response is a backend call or a cache hit; hits in a
        # first run only come from prompts the dataset repeats word for word.
        calls = c.fakellm_stats()["requests"]
        hits = sum(1 for r in lines1 if r["cache_hit"])
        distinct = len({(d["situation"], d["prompt"]) for d in dataset.values()})
        assert calls + hits == PROMPTS * len(MODELS), (calls, hits)
        assert calls >= distinct * len(MODELS), (calls, distinct)
        if distinct == PROMPTS:
            assert calls == PROMPTS * len(MODELS) and hits == 0, (calls, hits)

        # status and export agree with the collector
        st = json.loads(c.cli(["status", run1, "--json"]).stdout)
        run = st["runs"][0]
        assert run["run_id"] == run1 and run["done"] == run["total"] == len(lines1), run
        out = os.path.join(c.tmp, "export.jsonl")
        c.cli(["export", run1, "--out", out])
        with open(out, "rb") as a, open(path1, "rb") as b:
            assert a.read() == b.read(), "empq export and the collector wrote different files"

        # second run of the same study: all from the cache
        run2 = c.submit(spec)
        assert run2 != run1
        lines2 = read_jsonl(c.wait_responses(run2))
        check_run(lines2, run2, dataset)
        assert c.fakellm_stats()["requests"] == calls, "the second run called the backend"
        model_lines = [r for r in lines2 if r["source"] != "human"]
        assert all(r["cache_hit"] for r in model_lines), "a model response was not a cache hit"
        assert strip(lines1) == strip(lines2), "the cached run differs from the first"


def test_collector_restart():
    """The collector killed mid-run (SIGKILL) and started again writes the
    run once complete; a run that completed while no collector ran is
    written when one starts."""
    # 128 backend calls of 50 ms, 16 in flight: about 0.4 s
    with Cluster(workers=2, latency_ms=50, credit=8) as c:
        c.start()
        spec = c.write("study.yaml", demo_like_spec("restart", 64, seed=5, models=MODELS[:2]))
        run1 = c.submit(spec)
        time.sleep(0.1)
        c.stop("collector", sig=signal.SIGKILL)
        assert not os.path.exists(os.path.join(c.out, run1, "responses.jsonl")), "run ended too soon"
        c.start_collector()
        lines = read_jsonl(c.wait_responses(run1))
        assert len(lines) == 64 * 3 and len({(r["prompt_index"], r["source"]) for r in lines}) == 64 * 3

        c.stop("collector")
        run2 = c.submit(spec)
        st = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = json.loads(c.cli(["status", run2, "--json"]).stdout)["runs"][0]
            if st["done"] + st["dead"] == st["total"]:
                break
            time.sleep(0.05)
        assert st["done"] == st["total"], st
        assert not os.path.exists(os.path.join(c.out, run2, "responses.jsonl"))
        c.start_collector()
        assert len(read_jsonl(c.wait_responses(run2))) == 64 * 3


def test_dead_letters():
    """A model the backend refuses (HTTP 401: permanent) ends in dead
    letters: the run still completes, responses.jsonl holds the other
    sources, dead.jsonl the refused jobs with their reason."""
    n = 32
    with Cluster(workers=1, fakellm_args=["--require-key", "sekret"],
                 worker_env={"EMPQ_TEST_KEY": "sekret"}) as c:
        c.start()
        text = demo_like_spec("dead", n, seed=3, models=("fake-warm", "fake-formal"))
        text = text.replace("    model: fake-warm\n", "    model: fake-warm\n    api_key_env: EMPQ_TEST_KEY\n")
        run = c.submit(c.write("study.yaml", text))
        path = c.wait_responses(run)
        lines = read_jsonl(path)
        assert [(r["prompt_index"], r["source"]) for r in lines] == \
            [(p, s) for p in range(n) for s in ("human", "fake-warm")], "wrong lines"
        dead = read_jsonl(os.path.join(os.path.dirname(path), "dead.jsonl"))
        assert [(d["prompt_index"], d["source"]) for d in dead] == [(p, "fake-formal") for p in range(n)]
        assert all(d["last_status"] == 401 and d["reason"] for d in dead), dead[0]
        assert "sekret" not in open(path).read() + json.dumps(dead), "the key leaked into an output"
        r = c.cli(["export", run, "--out", os.path.join(c.tmp, "x.jsonl")])
        assert "dead 32" in r.stderr, r.stderr


if __name__ == "__main__":
    main(test_pipeline, test_collector_restart, test_dead_letters)
