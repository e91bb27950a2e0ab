"""Batch mode under SIGKILL (issue 13): a study with two fake batch models
(OpenAI and Anthropic formats); at a random moment while its batches are
being sent, polled or read back, SIGKILL the worker (then start it again),
the broker (restart) or the collector (restart). Each run: every job has
exactly one line, none is dead, the fake server answered each request once
(no batch sent twice: requests_succeeded equals the jobs), every batch
record in Redis is closed (every open batch was found again and read).
CI runs each kind once; EMPQ_FULL=1 runs ten rounds."""

import json
import os
import random
import signal
import subprocess
import time

from empqtest import Cluster, main, program, wait_until

PROMPTS = 120
ROUNDS = 10 if os.environ.get("EMPQ_FULL") else 1
DELAY_MS = 2000


def spec(name):
    out = [f"name: {name}", "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 7",
           "selection:", f"  prompts: {PROMPTS}", "  seed: 42", "  balance: emotion",
           "template:", "  system: You are a kind listener.",
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
           "human:", "  include: false", "models:"]
    for alias, provider, model in (("fake-gpt", "openai", "fake-warm"), ("fake-claude", "anthropic", "fake-brief")):
        out += [f"  - alias: {alias}", f"    provider: {provider}",
                "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", f"    model: {model}",
                "    params: {temperature: 0.7, max_tokens: 128}",
                "    mode: batch", "    batch: {max_requests: 50, poll_ms: 100}"]
    return "\n".join(out) + "\n"


def redis_cli(c, *args):
    port = c.redis_url.rsplit(":", 1)[1]
    r = subprocess.run(["redis-cli", "-p", port, "--raw"] + list(args), capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return [x for x in r.stdout.split("\n") if x]


def one_round(kind, rng, round_no):
    with Cluster(workers=1, credit=400, name=f"batchcrash-{kind}",
                 fakellm_args=["--batch-delay-ms", str(DELAY_MS)]) as c:
        c.start()
        run_id = c.submit(c.write("s.yaml", spec(f"crash-{kind}-{round_no}")))
        # a random moment: while the first batches are sent (0.1-0.5 s), polled, or read back
        at = rng.uniform(0.1, DELAY_MS / 1000.0 + 0.8)
        time.sleep(at)
        if kind == "worker":
            c.stop("worker-1", sig=signal.SIGKILL)
            c.start_worker(1)  # the same id: it takes its open batches over at once
        elif kind == "broker":
            c.restart_broker()
        else:
            c.stop("collector", sig=signal.SIGKILL)
            c.start_collector()
        path = c.wait_responses(run_id, timeout=110)
        with open(path) as f:
            lines = [json.loads(x) for x in f]
        keys = [(r["prompt_index"], r["source"]) for r in lines]
        assert len(keys) == len(set(keys)) == PROMPTS * 2, (len(keys), len(set(keys)))
        assert all(r["response"] for r in lines)
        assert not os.path.exists(os.path.join(os.path.dirname(path), "dead.jsonl"))
        st = c.fakellm_stats()["batches"]
        for p in ("openai", "anthropic"):
            assert st[p]["requests_succeeded"] == PROMPTS, (p, st[p])  # no request sent twice
            assert st[p]["open"] == 0, (p, st[p])
        assert st["openai"]["files_uploaded"] == st["openai"]["batches_created"], st["openai"]
        wait_until("every batch record closed", lambda: redis_cli(c, "SCARD", "empq:batches:open") == ["0"],
                   timeout=10)
        print(f"   {kind} SIGKILL at {at:.2f} s: {len(lines)} lines, batches openai "
              f"{st['openai']['batches_created']} anthropic {st['anthropic']['batches_created']}", flush=True)
        c.check_alive()


def test_batch_crash():
    rng = random.Random(int(os.environ.get("EMPQ_FAULT_SEED", "13")))
    for r in range(ROUNDS):
        for kind in ("worker", "broker", "collector"):
            one_round(kind, rng, r)


if __name__ == "__main__":
    main(test_batch_crash)
