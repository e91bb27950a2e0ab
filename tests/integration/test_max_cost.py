"""max_cost stops dispatching a model (issue 3, cost): a run of two models
where one has prices and a small budget. That model takes jobs until its
cost reaches the budget, then stops: its other jobs stay pending, the run
does not finish, empq status says so (stopped, tokens, cost) and the broker
logs event=max_cost_reached once. The other model finishes all its jobs.

Then the broker is killed (SIGKILL) and started again on the same
endpoints: it rebuilds every model's tokens and cost from the results in
Redis, so the stopped model stays stopped (not one more call to it) and
status shows the same tokens and cost as before."""

import json
import os
import time

from empqtest import Cluster, main, wait_until

PROMPTS = 60
BUDGET = 3000.0  # with a price of 1 per token (1,000,000 per million)


def spec_text():
    return ("name: max-cost\n"
            "dataset:\n  format: synth\n  prompts: %d\n  seed: 2\n"
            "selection:\n  prompts: %d\n  seed: 1\n  balance: none\n"
            "template:\n  system: You are a kind listener.\n"
            "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"\n"
            "human:\n  include: false\nmodels:\n"
            "  - alias: cheap\n    provider: openai-compatible\n"
            "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"\n    model: fake-warm\n"
            "    params: {max_tokens: 64}\n"
            "  - alias: pricey\n    provider: openai-compatible\n"
            "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"\n    model: fake-formal\n"
            "    params: {max_tokens: 64}\n"
            "    prices: {input_per_mtok: 1000000, output_per_mtok: 1000000, max_cost: %g}\n"
            ) % (PROMPTS, PROMPTS, BUDGET)


def test_max_cost():
    with Cluster(workers=2, latency_ms=5, name="maxcost") as c:
        c.start()
        run = c.submit(c.write("study.yaml", spec_text()))

        def status():
            st = json.loads(c.cli(["status", run, "--json"]).stdout)
            st = st["runs"][0] if "runs" in st else st
            return st, {m["source"]: m for m in st["models"]}

        def settled():
            c.check_alive()
            st, m = status()
            return m["cheap"]["done"] == PROMPTS and m["pricey"].get("stopped") and m["pricey"]["leased"] == 0

        wait_until("cheap finished and pricey stopped", settled, timeout=60, interval=0.2)
        time.sleep(0.5)
        st, m = status()
        p = m["pricey"]
        assert st["state"] != "done" and st["pending"] == p["pending"] > 0, st
        assert p["done"] > 0 and p["done"] + p["pending"] + p["dead"] == PROMPTS, p
        assert p["tokens_in"] > 0 and p["tokens_out"] > 0, p
        assert abs(p["cost"] - (p["tokens_in"] + p["tokens_out"])) < 1e-6, p  # 1 per token
        assert p["cost"] >= BUDGET * 0.8, p       # it did spend its budget
        assert p["cost"] <= BUDGET * 1.05, p      # and barely past it (the estimate guards it)
        assert not m["cheap"].get("stopped"), m["cheap"]
        text = c.cli(["status", run]).stdout
        assert "STOPPED (max_cost)" in text, text
        with open(os.path.join(c.logs, "broker.log")) as f:
            log = f.read()
        assert log.count("event=max_cost_reached") == 1, log[-2000:]
        assert "model=pricey" in log
        print(f"   pricey: {p['done']} done, {p['pending']} pending, cost {p['cost']:.0f} of {BUDGET:.0f}",
              flush=True)

        # a restarted broker keeps the budget spent
        calls = c.fakellm_stats()["by_model"].get("fake-formal", 0)
        c.restart_broker()
        time.sleep(1.0)  # the workers ask for jobs: none of pricey's may go
        st2, m2 = status()
        p2 = m2["pricey"]
        assert p2.get("stopped") and p2["leased"] == 0 and p2["pending"] == p["pending"], p2
        for k in ("tokens_in", "tokens_out", "done"):
            assert p2[k] == p[k], (k, p, p2)
            assert m2["cheap"][k] == m["cheap"][k], (k, m["cheap"], m2["cheap"])
        assert abs(p2["cost"] - p["cost"]) < 1e-6, (p, p2)
        assert c.fakellm_stats()["by_model"].get("fake-formal", 0) == calls, "the restarted broker sent more"
        with open(os.path.join(c.logs, "broker2.log")) as f:
            log2 = f.read()
        assert log2.count("event=max_cost_reached") == 1 and "model=pricey" in log2, log2[-2000:]
        print(f"   after a broker restart: cost {p2['cost']:.0f}, stopped, no call to pricey", flush=True)


if __name__ == "__main__":
    main(test_max_cost)
