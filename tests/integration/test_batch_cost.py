"""The batch price in `empq status` and in the report (issue 13, point 5).

A run with one batch model (OpenAI Batch API format, interactive prices 2 /
8 per million tokens, no batch price: half, 1 / 4) and one interactive
reasoning model (3 / 12, cached input 0.5) through the real empq-fakellm.
`empq status` (--json and text) shows each source's mode, the prices it is
charged at and a cost equal to its tokens x those prices, and the run's
total; `empq analyze --spec` writes a cost section whose report.json
figures equal status's and a sum computed here from responses.jsonl x the
spec's prices, and report.md / report.html say the batch source is charged
at the batch price. A rerun served from the cache costs nothing: its
report counts the cache hits apart with a cost of 0. A responses.jsonl
with a source the spec does not have is refused, naming it."""

import csv
import json
import os

from empqtest import Cluster, main

PROMPTS = 30
BATCH = {"in": 1.0, "out": 4.0}                # half of 2 / 8: the default batch price
INTER = {"in": 3.0, "out": 12.0, "cached": 0.5}


def spec(name, models=("fake-gpt", "fake-think")):
    out = [f"name: {name}", "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 7",
           "selection:", f"  prompts: {PROMPTS}", "  seed: 42", "  balance: emotion",
           "template:", "  system: You are a kind listener who answers in a few warm sentences.",
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
           "human:", "  include: true", "models:"]
    if "fake-gpt" in models:
        out += ["  - alias: fake-gpt", "    provider: openai", "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"",
                "    model: fake-warm", "    params: {temperature: 0.7, max_tokens: 128}",
                "    mode: batch", "    batch: {max_requests: 100, poll_ms: 100}",
                "    prices: {input_per_mtok: 2, output_per_mtok: 8}"]
    if "fake-think" in models:
        out += ["  - alias: fake-think", "    provider: openai", "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"",
                "    model: fake-reason-mini", "    params: {max_completion_tokens: 512, reasoning_effort: low}",
                "    prices: {input_per_mtok: 3, output_per_mtok: 12, cached_input_per_mtok: 0.5}"]
    return "\n".join(out) + "\n"


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def expected_cost(lines):
    """Per source: calls, cache hits, tokens and cost, from the lines and the spec's prices."""
    out = {s: {"calls": 0, "cache_hits": 0, "in": 0, "out": 0, "cached": 0, "reasoning": 0, "cost": 0.0}
           for s in ("fake-gpt", "fake-think")}
    for x in lines:
        if x["source"] == "human":
            continue
        e = out[x["source"]]
        if x["cache_hit"]:
            e["cache_hits"] += 1
            continue
        t_in, t_out, cached = x["tokens_in"], x["tokens_out"], x.get("cached_tokens") or 0
        e["calls"] += 1
        e["in"] += t_in
        e["out"] += t_out
        e["cached"] += cached
        e["reasoning"] += x.get("reasoning_tokens") or 0
        if x["source"] == "fake-gpt":  # batch: every input token at the batch input price
            e["cost"] += (t_in * BATCH["in"] + t_out * BATCH["out"]) / 1e6
        else:
            e["cost"] += ((t_in - cached) * INTER["in"] + cached * INTER["cached"] + t_out * INTER["out"]) / 1e6
    return out


def ratings_for(lines, path):
    """Made-up long-layout ratings of the lines (the cost section does not use them)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["participant", "condition", "batch", "item", "position", "rating", "emotion"])
        for i, x in enumerate(lines):
            w.writerow([f"p{i % 7}", x["source"], i // 10, x["prompt_id"], i % 10, 1 + i % 3, x["emotion"]])


def close(a, b, what):
    assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), f"{what}: {a} != {b}"


def status(c, run):
    st = json.loads(c.cli(["status", run, "--json"]).stdout)["runs"][0]
    return st, {m["source"]: m for m in st["models"]}


def analyze(c, tag, lines, responses, spec_path):
    ratings = os.path.join(c.tmp, f"ratings-{tag}.csv")
    ratings_for(lines, ratings)
    out = os.path.join(c.tmp, f"report-{tag}")
    c.cli(["analyze", "--layout", "long", "--ratings", ratings, "--responses", responses, "--spec", spec_path,
           "--out", out])
    with open(os.path.join(out, "report.json")) as f:
        rj = json.load(f)["cost"]
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        md = f.read()
    with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
        html = f.read()
    return {s["source"]: s for s in rj["sources"]}, rj, md, html, ratings


def test_batch_cost_in_status_and_report():
    with Cluster(workers=1, credit=200, fakellm_args=["--batch-delay-ms", "100"]) as c:
        c.start()
        spec_path = c.write("cost.yaml", spec("cost"))
        run = c.submit(spec_path)
        responses = c.wait_responses(run, timeout=90)
        lines = read_jsonl(responses)
        assert len(lines) == PROMPTS * 3, len(lines)
        want = expected_cost(lines)
        g, t = want["fake-gpt"], want["fake-think"]
        assert g["calls"] == PROMPTS and t["calls"] == PROMPTS, want
        assert t["cached"] > 0 and t["reasoning"] > 0 and t["out"] > t["reasoning"], t  # both priced apart
        assert c.fakellm_stats()["batches"]["openai"]["requests_succeeded"] == PROMPTS

        # ---- empq status: mode, the prices charged, the cost, the total
        st, m = status(c, run)
        assert m["human"]["mode"] is None and m["human"]["prices"] is None, m["human"]
        assert m["fake-gpt"]["mode"] == "batch", m["fake-gpt"]
        assert m["fake-gpt"]["prices"] == {"input_per_mtok": 1.0, "output_per_mtok": 4.0}, m["fake-gpt"]
        assert m["fake-think"]["mode"] == "interactive", m["fake-think"]
        assert m["fake-think"]["prices"] == {"input_per_mtok": 3.0, "output_per_mtok": 12.0,
                                             "cached_input_per_mtok": 0.5}, m["fake-think"]
        for s in ("fake-gpt", "fake-think"):
            assert m[s]["tokens_in"] == want[s]["in"] and m[s]["tokens_out"] == want[s]["out"], (m[s], want[s])
            close(m[s]["cost"], want[s]["cost"], f"status cost of {s}")
        close(st["cost"], g["cost"] + t["cost"], "status total cost")
        text = c.cli(["status", run]).stdout
        assert "batch price: in 1, out 4 per Mtok" in text, text
        assert "interactive price: in 3, cached in 0.5, out 12 per Mtok" in text, text
        assert f"cost {g['cost']:.4f}" in text and f"cost {st['cost']:.4f}" in text, text

        # ---- empq analyze --spec: the same figures in report.json, the batch price said in md and html
        rs, rj, md, html, _ = analyze(c, "run", lines, responses, spec_path)
        assert set(rs) == {"fake-gpt", "fake-think"}, rs  # the human source costs nothing and is left out
        assert rj["run_id"] == run, rj
        assert rs["fake-gpt"]["mode"] == "batch" and rs["fake-think"]["mode"] == "interactive", rs
        assert rs["fake-gpt"]["prices"] == {"input_per_mtok": 1.0, "output_per_mtok": 4.0,
                                            "cached_input_per_mtok": 1.0}, rs["fake-gpt"]
        assert rs["fake-think"]["prices"] == {"input_per_mtok": 3.0, "output_per_mtok": 12.0,
                                              "cached_input_per_mtok": 0.5}, rs["fake-think"]
        for s in ("fake-gpt", "fake-think"):
            r, w = rs[s], want[s]
            assert (r["calls"], r["cache_hits"], r["tokens_in"], r["tokens_out"], r["tokens_cached"],
                    r["tokens_reasoning"]) == (w["calls"], 0, w["in"], w["out"], w["cached"], w["reasoning"]), (r, w)
            close(r["cost"], w["cost"], f"report cost of {s}")
            close(r["cost"], m[s]["cost"], f"report cost of {s} against status")
        close(rj["total"], st["cost"], "report total against status")
        sentence = ("Batch-mode sources are charged at the batch price (batch_input_per_mtok and "
                    "batch_output_per_mtok, by default half the interactive price): fake-gpt at 1 per million "
                    "input tokens and 4 per million output tokens (interactive: 2 and 8).")
        for doc in (md, html):
            assert sentence in doc, doc[-3000:]
            assert f"{rj['total']:.4f}" in doc and f"{g['cost']:.4f}" in doc and f"{t['cost']:.4f}" in doc
            assert "in 3, cached in 0.5, out 12" in doc and "in 1, out 4" in doc
            assert "cost nothing in this run" in doc

        # ---- a rerun from the cache: no call, no cost; the report counts the cache hits apart
        again = c.submit(c.write("again.yaml", spec("again")))
        responses2 = c.wait_responses(again, timeout=60)
        lines2 = read_jsonl(responses2)
        assert all(x["cache_hit"] for x in lines2 if x["source"] != "human"), lines2[:3]
        st2, m2 = status(c, again)
        assert st2["cost"] == 0.0 and m2["fake-gpt"]["mode"] == "batch", st2
        rs2, rj2, md2, _, ratings2 = analyze(c, "again", lines2, responses2, spec_path)
        for s in ("fake-gpt", "fake-think"):
            assert rs2[s]["calls"] == 0 and rs2[s]["cache_hits"] == PROMPTS and rs2[s]["cost"] == 0.0, rs2[s]
        assert rj2["total"] == 0.0, rj2

        # ---- a spec without one of the sources: refused, naming the source and the line
        other = c.write("other.yaml", spec("other", models=("fake-gpt",)))
        r = c.cli(["analyze", "--layout", "long", "--ratings", ratings2, "--responses", responses2, "--spec",
                   other, "--out", os.path.join(c.tmp, "report-other")], check=False)
        assert r.returncode != 0 and "source 'fake-think' is not a model of the spec" in r.stderr, r.stderr
        assert "responses.jsonl:3:" in r.stderr, r.stderr  # human, fake-gpt, then fake-think
        r = c.cli(["analyze", "--layout", "long", "--ratings", ratings2, "--spec", other, "--out",
                   os.path.join(c.tmp, "report-other")], check=False)
        assert r.returncode == 2 and "--spec needs --responses" in r.stderr, (r.returncode, r.stderr)
        print(f"   fake-gpt (batch) {g['calls']} calls, cost {g['cost']:.6f}; fake-think {t['calls']} calls, "
              f"cost {t['cost']:.6f} (cached {t['cached']}, reasoning {t['reasoning']} tokens); total "
              f"{st['cost']:.6f}; rerun: {rs2['fake-gpt']['cache_hits']} + {rs2['fake-think']['cache_hits']} "
              f"cache hits, cost 0", flush=True)
        c.check_alive()


if __name__ == "__main__":
    main(test_batch_cost_in_status_and_report)
