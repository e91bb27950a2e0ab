"""empq assign on a demo-sized run (2,000 prompts x 5 sources, through the
real programs): a plan for 1,000 participants over 5 conditions, 200 per
condition, 10 items each; every response in exactly one slot; the same
batches in every condition; the emotions of every batch spread; the same
plan (byte-identical files) from the same seed; the slots in Redis;
--human-subset N plans N prompts stratified by emotion."""

import csv
import json
import os

from empqtest import Cluster, demo_like_spec, main, read_jsonl

PROMPTS = 2000
MODELS = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")
SOURCES = ("human",) + MODELS


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_plan(dir_, lines):
    """The plan files against the run's responses."""
    with open(os.path.join(dir_, "plan.json"), encoding="utf-8") as f:
        plan = json.load(f)
    rows = read_csv(os.path.join(dir_, "plan.csv"))
    assert plan["conditions"] == list(SOURCES), plan["conditions"]
    assert plan["participants"] == 1000 and plan["participants_per_condition"] == 200, plan
    assert plan["batches"] == 200 and plan["items"] == 10 and plan["raters"] == 1
    assert len(plan["slots"]) == 1000

    resp = {(r["prompt_index"], r["source"]): r for r in lines}
    emotion = {r["prompt_index"]: r["emotion"] for r in lines}

    # 1,000 participants: 200 per condition, 10 items each
    per_cond = {}
    for s in plan["slots"]:
        per_cond[s["condition"]] = per_cond.get(s["condition"], 0) + 1
        assert len(s["entries"]) == 10, s
    assert per_cond == {c: 200 for c in SOURCES}, per_cond

    # every response in exactly one slot (plan.csv, one row per shown entry)
    assert len(rows) == PROMPTS * len(SOURCES), len(rows)
    seen = {}
    for r in rows:
        assert r["kind"] == "item", r
        key = (int(r["prompt_index"]), r["condition"])
        seen[key] = seen.get(key, 0) + 1
        src = resp[key]
        assert r["response"] == src["response"] and r["emotion"] == src["emotion"], r
        assert r["item"] == src["prompt_id"] and r["prompt"] == src["prompt"], r
    assert len(seen) == len(resp) and set(seen.values()) == {1}, "a response not in exactly one slot"

    # the same batches in every condition
    batches = [sorted(b) for b in plan["batch_prompts"]]
    for s in plan["slots"]:
        assert sorted(s["entries"]) == batches[s["batch"]], s

    # emotions spread: each batch spans 10 emotions; each emotion's count in
    # a batch is floor or ceil of its share over the 200 batches
    total = {}
    for p, e in emotion.items():
        total[e] = total.get(e, 0) + 1
    assert len(total) == 32
    for b in batches:
        count = {}
        for p in b:
            count[emotion[p]] = count.get(emotion[p], 0) + 1
        assert len(count) == 10, f"a batch spans only {len(count)} emotions"
        for e, n in total.items():
            assert n // 200 <= count.get(e, 0) <= -(-n // 200), (e, count.get(e, 0), n)
    # shuffled per participant: the orders differ
    orders = {tuple(s["entries"]) for s in plan["slots"]}
    assert len(orders) > 990, len(orders)
    return plan


def test_assign_demo_size():
    with Cluster(workers=2) as c:
        c.start()
        spec = c.write("study.yaml", demo_like_spec("assign", PROMPTS, seed=7, models=MODELS))
        run = c.submit(spec)
        lines = read_jsonl(c.wait_responses(run, timeout=120))
        assert len(lines) == PROMPTS * len(SOURCES)

        d1, d2, d3 = (os.path.join(c.tmp, n) for n in ("plan1", "plan2", "plan3"))
        r = c.cli(["assign", run, "--participants-per-condition", "200", "--items", "10",
                   "--seed", "7", "--out", d1, "--completion-code", "C0DE42"])
        assert "1000 participants" in r.stderr, r.stderr
        check_plan(d1, lines)

        # same seed: byte-identical files (without touching the stored plan)
        c.cli(["assign", run, "--seed", "7", "--out", d2, "--no-store"])
        for name in ("plan.csv", "plan.json"):
            with open(os.path.join(d1, name), "rb") as a, open(os.path.join(d2, name), "rb") as b:
                assert a.read() == b.read(), f"{name} differs for the same seed"
        # another seed: another plan
        c.cli(["assign", run, "--seed", "8", "--out", d3, "--no-store"])
        with open(os.path.join(d1, "plan.json"), "rb") as a, open(os.path.join(d3, "plan.json"), "rb") as b:
            assert a.read() != b.read()

        # the slots are in Redis
        st = json.loads(c.cli(["ratings", "status", run, "--json"]).stdout)
        assert st["slots"] == 1000 and st["open"] == 1000 and st["active"] == 0, st

        # a second plan is refused unless --replace (nobody has started)
        r = c.cli(["assign", run, "--out", d3], check=False)
        assert r.returncode == 1 and "--replace" in r.stderr, r.stderr
        c.cli(["assign", run, "--seed", "7", "--out", d3, "--replace"])

        # attention checks and overlap
        d4 = os.path.join(c.tmp, "plan4")
        c.cli(["assign", run, "--raters-per-item", "2", "--attention-checks", "3,8",
               "--out", d4, "--no-store"])
        with open(os.path.join(d4, "plan.json"), encoding="utf-8") as f:
            p4 = json.load(f)
        assert p4["participants"] == 2000 and p4["attention_checks"] == [3, 8]
        for s in p4["slots"]:
            assert len(s["entries"]) == 12 and s["entries"][3] < 0 and s["entries"][8] < 0, s
        rows = read_csv(os.path.join(d4, "plan.csv"))
        checks = [r for r in rows if r["kind"] == "check"]
        assert len(checks) == 4000 and all(r["expected"] in ("1", "2", "3") for r in checks)
        label = {"1": "Bad", "2": "Okay", "3": "Good"}
        assert all(r["response"].endswith("as " + label[r["expected"]] + ".") for r in checks)

        # --human-subset: a plan over 200 prompts only, stratified by emotion (the human subset of
        # a judge's prediction-powered estimates), the same from the same seed
        d5 = os.path.join(c.tmp, "plan5")
        r = c.cli(["assign", run, "--human-subset", "200", "--seed", "3", "--out", d5, "--no-store"])
        assert "200 of 2000 usable prompts" in r.stderr, r.stderr
        with open(os.path.join(d5, "plan.json"), encoding="utf-8") as f:
            p5 = json.load(f)
        chosen = sorted(p for b in p5["batch_prompts"] for p in b)
        assert len(chosen) == 200 and len(set(chosen)) == 200 and p5["participants"] == 100, p5["batches"]
        emotion = {r["prompt_index"]: r["emotion"] for r in lines}
        total, got = {}, {}
        for p, e in emotion.items():
            total[e] = total.get(e, 0) + 1
        for p in chosen:
            got[emotion[p]] = got.get(emotion[p], 0) + 1
        for e, n in total.items():  # proportional allocation: floor or ceil of 200 n / 2000
            assert n * 200 // PROMPTS <= got.get(e, 0) <= -(-n * 200 // PROMPTS), (e, got.get(e, 0), n)
        d6 = os.path.join(c.tmp, "plan6")
        c.cli(["assign", run, "--human-subset", "200", "--seed", "3", "--out", d6, "--no-store"])
        with open(os.path.join(d5, "plan.csv"), "rb") as a, open(os.path.join(d6, "plan.csv"), "rb") as b:
            assert a.read() == b.read(), "--human-subset: not the same plan from the same seed"

        # wrong designs: clear errors, exit 2
        for args, msg in ((["--participants-per-condition", "150"], "do not fit"),
                          (["--items", "0"], "at least 1"),
                          (["--attention-checks", "10,x"], "whole number"),
                          (["--attention-checks", "11"], "past the end"),
                          (["--completion-code", "bad code!"], "completion code")):
            r = c.cli(["assign", run, "--out", d3, "--replace"] + args, check=False)
            assert r.returncode == 2 and msg in r.stderr, (args, r.returncode, r.stderr)
        r = c.cli(["assign", "r-nosuchrun", "--out", d3], check=False)
        assert r.returncode == 1 and "r-nosuchrun" in r.stderr, r.stderr


if __name__ == "__main__":
    main(test_assign_demo_size)
