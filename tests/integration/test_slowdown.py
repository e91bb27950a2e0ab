"""A 429 slows a model down for every worker (issue 3, global limits).

The spec sets no limit; empq-fakellm holds the model to 4 requests at once
and answers more with 429 + Retry-After. Two workers with credit 16 each
ask for 32 at once. The broker learns from the 429s: it pauses the model
for every worker, halves its rate until the 429s stop being a large share
(event=model_slowdown with the concurrency it allows), and every job ends
done, with far fewer 429s than a client that only honoured Retry-After."""

import json
import os
import re
import subprocess

from empqtest import Cluster, Skip, main, program, read_jsonl

PROMPTS = 60


def spec_text():
    return ("name: slowdown\n"
            "dataset:\n  format: synth\n  prompts: %d\n  seed: 4\n"
            "selection:\n  prompts: %d\n  seed: 1\n  balance: none\n"
            "template:\n  system: You are a kind listener.\n"
            "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"\n"
            "human:\n  include: false\nmodels:\n"
            "  - alias: warm\n    provider: openai-compatible\n"
            "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"\n    model: fake-warm\n"
            "    params: {max_tokens: 64}\n    max_attempts: 20\n") % (PROMPTS, PROMPTS)


def test_slowdown():
    r = subprocess.run([program("empq-fakellm"), "--help"], capture_output=True, text=True, timeout=10)
    if "--limit" not in r.stdout + r.stderr:
        raise Skip("empq-fakellm has no --limit")
    with Cluster(workers=2, credit=16, latency_ms=100, name="slowdown",
                 fakellm_args=["--limit", "fake-warm:concurrency=4"]) as c:
        c.start()
        run = c.submit(c.write("study.yaml", spec_text()))
        path = c.wait_responses(run, timeout=120)
        lines = read_jsonl(path)
        assert len(lines) == PROMPTS, len(lines)
        with open(os.path.join(c.logs, "broker.log")) as f:
            log = f.read()
        conc = [int(x) for x in re.findall(r"event=model_slowdown .*?model=warm .*?concurrency=(\d+)", log) if int(x) > 0]
        assert conc, "no event=model_slowdown"
        assert min(conc) <= 8, conc  # learned from the 429s: at most half of the 32 asked for
        m = c.fakellm_stats()["models"]["fake-warm"]
        # A client that only waited out each Retry-After would send 32 a round
        # and get 28 refused for 4 answered: about 7 refusals a job (420 here).
        assert 0 < m["limited"] < 3 * PROMPTS, m
        st = json.loads(c.cli(["status", run, "--json"]).stdout)
        st = st["runs"][0] if "runs" in st else st
        w = st["models"][0]
        assert w["rate_limited"] == m["limited"], (w, m)
        print(f"   {m['requests']} requests, {m['limited']} refused with 429; the broker allowed "
              f"{max(conc)} down to {min(conc)} at once", flush=True)


if __name__ == "__main__":
    main(test_slowdown)
