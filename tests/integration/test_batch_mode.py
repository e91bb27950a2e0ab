"""Batch mode end to end (issue 13): a study with two fake models in batch
mode (OpenAI Batch API and Anthropic Message Batches formats) through
empq-fakellm's batch endpoints gives the same responses.jsonl as the same
study run interactively (apart from timing fields), in a few batches, not
one call per job (the fake server's counters); a rerun is served from the
cache with zero calls."""

import json

from empqtest import Cluster, main

PROMPTS = 150
TIMING = ("latency_ms", "created_ms", "started_at", "finished_at", "cache_hit", "request_id", "run_id")


def spec(mode):
    out = ["name: batchdemo", "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 7",
           "selection:", f"  prompts: {PROMPTS}", "  seed: 42", "  balance: emotion",
           "template:", "  system: You are a kind listener.",
           "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
           "human:", "  include: true", "models:"]
    for alias, provider, model in (("fake-gpt", "openai", "fake-warm"), ("fake-claude", "anthropic", "fake-brief")):
        out += [f"  - alias: {alias}", f"    provider: {provider}",
                "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", f"    model: {model}",
                "    params: {temperature: 0.7, max_tokens: 128}"]
        if mode == "batch":
            out += ["    mode: batch", "    batch: {max_requests: 100, poll_ms: 100}"]
    return "\n".join(out) + "\n"


def lines_without_timing(path):
    out = []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            for k in TIMING:
                d.pop(k, None)
            out.append(json.dumps(d, sort_keys=True))
    return sorted(out)


def run_study(mode, credit):
    with Cluster(workers=2, credit=credit, fakellm_args=["--batch-delay-ms", "300"]) as c:
        c.start()
        run_id = c.submit(c.write("s.yaml", spec(mode)))
        path = c.wait_responses(run_id, timeout=120)
        lines = lines_without_timing(path)
        stats = c.fakellm_stats()
        rerun = None
        if mode == "batch":
            # the same study again: every answer from the cache, no call at all
            before = stats
            again = c.submit(c.write("s2.yaml", spec(mode).replace("name: batchdemo", "name: again")))
            rerun = lines_without_timing(c.wait_responses(again, timeout=60))
            after = c.fakellm_stats()
            assert after["batches"] == before["batches"], (before["batches"], after["batches"])
            assert after.get("requests") == before.get("requests"), (before.get("requests"), after.get("requests"))
            # and interactively: the batch answers serve it too
            inter = c.submit(c.write("s3.yaml", spec("interactive").replace("name: batchdemo", "name: inter")))
            c.wait_responses(inter, timeout=60)
            last = c.fakellm_stats()
            assert last.get("requests") == before.get("requests"), (before.get("requests"), last.get("requests"))
        c.check_alive()
        return lines, stats, rerun


def test_batch_equals_interactive():
    inter, istats, _ = run_study("interactive", None)
    batch, bstats, rerun = run_study("batch", 300)
    assert len(batch) == PROMPTS * 3, len(batch)
    diff = [(a, b) for a, b in zip(batch, inter) if a != b]
    assert not diff, f"{len(diff)} batch responses differ from interactive ones, e.g.:\n{diff[0][0]}\n{diff[0][1]}"
    assert rerun is not None and len(rerun) == len(batch)
    oa, an = bstats["batches"]["openai"], bstats["batches"]["anthropic"]
    # a few batches (100 requests at most each, 150 jobs per model), not one call per job
    assert 2 <= oa["batches_created"] <= 8, oa
    assert 2 <= an["batches_created"] <= 8, an
    assert oa["files_uploaded"] == oa["batches_created"], oa
    assert oa["requests_succeeded"] == PROMPTS and an["requests_succeeded"] == PROMPTS, (oa, an)
    assert bstats.get("requests", 0) == 0, f"interactive calls in batch mode: {bstats.get('requests')}"
    print(f"   batch mode: openai {oa['batches_created']} batches, {oa['batch_gets']} polls; "
          f"anthropic {an['batches_created']} batches, {an['batch_gets']} polls; interactive run "
          f"{istats.get('requests')} requests")


if __name__ == "__main__":
    main(test_batch_equals_interactive)
