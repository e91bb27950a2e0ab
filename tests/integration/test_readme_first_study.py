#!/usr/bin/python3
"""The README's "first study against a real endpoint" works as written
(issue 16, point 9): its first.yaml, taken from README.md byte for byte,
loads over an EmpatheticDialogues train.csv in ${EMPQ_DATA}, runs against
empq-fakellm standing in for the OpenAI-compatible server (LLM_BASE_URL
and LLM_API_KEY in the worker's environment, as the README exports them
before starting it), writes results/<run>/responses.jsonl (the
path the README shows for `empq-collector --out results`), and reports
the cost against the cap; and the same spec with a cap too small to last
is stopped by it."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Cluster, main, read_jsonl, wait_until  # noqa: E402

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
EMOTIONS = ("afraid", "angry", "annoyed", "anticipating", "anxious", "apprehensive", "ashamed", "caring",
            "confident", "content", "devastated", "disappointed", "disgusted", "embarrassed", "excited",
            "faithful", "furious", "grateful", "guilty", "hopeful", "impressed", "jealous", "joyful", "lonely",
            "nostalgic", "prepared", "proud", "sad", "sentimental", "surprised", "terrified", "trusting")


def readme_spec():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^cat > first\.yaml <<'YAML'\n(.*?)^YAML$", text, re.S | re.M)
    assert m, "README.md has no first.yaml here-document"
    return m.group(1)


def ed_csv(path, conversations=64):
    """An EmpatheticDialogues train.csv: the original layout (no quoting,
    _comma_ for a comma), two turns per conversation."""
    lines = ["conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags"]
    for i in range(conversations):
        emo = EMOTIONS[i % len(EMOTIONS)]
        sit = f"Situation {i} when I felt {emo}_comma_ really"
        lines.append(f"hit:{i}_conv:{2 * i},1,{emo},{sit},1,Something happened to me {i}.,5|5|5_2|2|5,")
        lines.append(f"hit:{i}_conv:{2 * i},2,{emo},{sit},0,Oh no_comma_ tell me more {i}.,5|5|5_2|2|5,")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


def status_json(c, run):
    r = c.cli(["status", run, "--json"])
    return json.loads(r.stdout)["runs"][0]


def test_first_study():
    spec = readme_spec()
    assert "max_cost: 1}" in spec and "${EMPQ_DATA}/empatheticdialogues/train.csv" in spec, spec
    with Cluster(workers=1, latency_ms=10, name="readme-first", worker_env={"LLM_API_KEY": "sk-test"}) as c:
        data = os.path.join(c.tmp, "empq-data")
        ed_csv(os.path.join(data, "empatheticdialogues", "train.csv"))
        c.out = os.path.join(c.tmp, "results")  # empq-collector --out results
        c.start(workers=False)
        env = {"EMPQ_DATA": data, "LLM_BASE_URL": c.fake_url + "/v1"}
        c.worker_env["LLM_BASE_URL"] = env["LLM_BASE_URL"]  # the worker expands ${LLM_BASE_URL}
        c.start_worker(1)
        path = c.write("first.yaml", spec)
        r = c.cli(["submit", path], env=env)
        run = r.stdout.strip().splitlines()[-1]
        lines = read_jsonl(c.wait_responses(run))
        assert len(lines) == 40, len(lines)  # 20 prompts x (human + my-model)
        assert {x["source"] for x in lines} == {"human", "my-model"}
        mine = [x for x in lines if x["source"] == "my-model"]
        assert all(x["model"] == "gpt-4o-mini" and x["response"] for x in mine), mine[0]
        st = status_json(c, run)
        model = next(m for m in st["models"] if m["source"] == "my-model")
        assert model["cost"] > 0 and not model.get("stopped"), model
        print(f"   README spec: {len(lines)} responses in results/{run}/, cost {model['cost']:.6f} of 1",
              file=sys.stderr)

        # the cap stops the model: the same spec, fresh generations, a cap of a few replies
        cap = 0.0004  # a reply costs about 0.00002; the first estimate (1024 in, 256 out) 0.0003
        capped = c.write("capped.yaml", spec.replace("max_cost: 1}", f"max_cost: {cap}}}")
                         .replace("max_concurrency: 4", "max_concurrency: 1"))
        r = c.cli(["submit", capped, "--force"], env=env)
        run2 = r.stdout.strip().splitlines()[-1]

        def stopped():
            m = next(m for m in status_json(c, run2)["models"] if m["source"] == "my-model")
            return m if m.get("stopped") else None
        m = wait_until("my-model stopped by max_cost", stopped, timeout=30, interval=0.1)
        assert 0 < m["done"] < 20 and m["pending"] > 0 and m["cost"] <= cap, m
        print(f"   capped at {cap}: stopped after {m['done']} of 20 replies, cost {m['cost']:.6f}", file=sys.stderr)
        c.cli(["cancel", run2])


if __name__ == "__main__":
    main(test_first_study)
