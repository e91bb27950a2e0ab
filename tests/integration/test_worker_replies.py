"""How the worker reads replies that never end or never fit, over real HTTP
from empq-fakellm's faults (docs/fakellm.md), each fault on every request:

  stall      200 headers and half the body, then nothing, held open:
             a timeout with its phase ("receiving"), not a cut reply
  hang       nothing at all: a timeout, phase "waiting_first_byte"
  huge       a 20 MB reply (the cap is 8 MB): reply_too_large, permanent:
             one request per job, never retried
  truncated  half the body, then the connection closed: a cut reply,
             retryable (tried max_attempts times)
"""

import os

from empqtest import Cluster, main, read_jsonl, wait_until

PROMPTS = 3
TIMEOUT_MS = 1500


def spec(max_attempts):
    return "\n".join([
        "name: replies",
        "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 3",
        "selection:", f"  prompts: {PROMPTS}", "  balance: none",
        "template:", "  user: \"{prompt}\"",
        "human:", "  include: false",
        "models:",
        "  - alias: fake-warm", "    provider: openai-compatible",
        "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", "    model: fake-warm",
        "    params: {max_tokens: 64}",
        f"    timeout_ms: {TIMEOUT_MS}", f"    max_attempts: {max_attempts}",
    ]) + "\n"


def run_with_fault(fault, max_attempts, extra=()):
    """Runs PROMPTS jobs with fault on every request; returns (dead lines,
    done lines, fakellm stats)."""
    args = [f"--fault-{fault}", "1", "--fault-seed", "1"] + list(extra)
    with Cluster(workers=1, name="replies-" + fault, fakellm_args=args) as c:
        c.start()
        run = c.submit(c.write("s.yaml", spec(max_attempts)))
        path = c.wait_responses(run, timeout=120)
        dead_path = os.path.join(os.path.dirname(path), "dead.jsonl")
        wait_until("dead.jsonl", lambda: os.path.exists(dead_path), timeout=30)
        return read_jsonl(dead_path), read_jsonl(path), c.fakellm_stats()


def test_stall_is_a_timeout():
    dead, done, stats = run_with_fault("stall", 1)
    assert done == [] and len(dead) == PROMPTS, (done, dead)
    for d in dead:
        assert f"timeout after {TIMEOUT_MS} ms (phase receiving, " in d["reason"], d
        assert "reply cut" not in d["reason"], d
    assert stats["faults"]["stall"] == PROMPTS, stats["faults"]


def test_hang_is_a_timeout():
    dead, done, stats = run_with_fault("hang", 1)
    assert done == [] and len(dead) == PROMPTS, (done, dead)
    for d in dead:
        assert f"timeout after {TIMEOUT_MS} ms (phase waiting_first_byte, 0 bytes received)" in d["reason"], d


def test_huge_is_too_large_and_permanent():
    dead, done, stats = run_with_fault("huge", 3, ["--huge-bytes", str(20 * 1000 * 1000)])
    assert done == [] and len(dead) == PROMPTS, (done, dead)
    for d in dead:
        assert "HTTP 200: reply_too_large (more than " in d["reason"], d
        assert d["attempts"] == 1, d
    # one request per job: a permanent failure is not sent again
    assert stats["faults"]["huge"] == PROMPTS, stats["faults"]


def test_truncated_is_cut_and_retried():
    dead, done, stats = run_with_fault("truncated", 2)
    assert done == [] and len(dead) == PROMPTS, (done, dead)
    for d in dead:
        assert "reply cut" in d["reason"], d
    assert stats["faults"]["truncated"] == 2 * PROMPTS, stats["faults"]


if __name__ == "__main__":
    main(test_stall_is_a_timeout, test_hang_is_a_timeout, test_huge_is_too_large_and_permanent,
         test_truncated_is_cut_and_retried)
