"""Issue 11, end to end against empq-fakellm: what counts as an answer,
model-fatal errors, and max_cost on thinking models.

test_no_answer_never_counted: per provider (openai, anthropic, gemini),
one model per reply shape without answer text (empty, null, thinking-only,
length-before-text, safety-blocked; empq-fakellm's --model-fault), beside
a model that answers. Every job of those models ends dead with its reason,
`empq status` counts them per reason, nothing empty reaches
responses.jsonl, the cache holds only the answering model's entries, and a
second run of the same spec calls those models again (the answering one
is served from the cache); `empq assign` refuses a run holding a response
with empty text.

test_quota_stops_model: insufficient_quota (OpenAI), the credit-balance
400 (Anthropic) and the per-day quota 429 (Gemini), each on one model: the
broker stops it at its first outcome for every worker (at most its
max_concurrency calls ever reach the provider, each job one attempt), the
other models finish, status names the reason.

test_max_cost_thinking: max_cost on a Gemini thinking model and on an
OpenAI reasoning model whose reasoning uses the whole budget (every reply
is reasoning_exhausted_budget): the spend counts the thinking tokens and
the replies that were no answer, the models stop near their budget, and
the old accounting (candidatesTokenCount only; done jobs only) would have
spent several times the budget."""

import json
import os
import subprocess
import time

from empqtest import Cluster, Skip, main, program, read_jsonl, wait_until

PROMPTS = 4

# provider, base_url suffix
PROVIDERS = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}

# fault kind -> expected dead reason per provider, and whether it is retried
EXPECT = {
    "empty": {"openai": "empty_reply", "anthropic": "empty_reply", "gemini": "empty_reply"},
    "null": {"openai": "empty_reply", "anthropic": "empty_reply", "gemini": "empty_reply"},
    "thinking-only": {"openai": "thinking_only", "anthropic": "thinking_only", "gemini": "thinking_only"},
    "length-empty": {"openai": "reasoning_exhausted_budget", "anthropic": "reasoning_exhausted_budget",
                     "gemini": "reasoning_exhausted_budget"},
    "safety": {"openai": "blocked:content_filter", "anthropic": "refusal", "gemini": "blocked:SAFETY"},
}
RETRIED = {"empty_reply", "thinking_only"}
MAX_ATTEMPTS = 2


def need_faults():
    r = subprocess.run([program("empq-fakellm"), "--help"], capture_output=True, text=True, timeout=10)
    if "--model-fault" not in r.stdout + r.stderr or "--fault-length-empty" not in r.stdout + r.stderr:
        raise Skip("this empq-fakellm has no --model-fault / reasoning faults")


def head(name):
    return ["name: " + name,
            "dataset:", "  format: synth", f"  prompts: {PROMPTS}", "  seed: 5",
            "selection:", f"  prompts: {PROMPTS}", "  seed: 42", "  balance: none",
            "template:", "  system: You are a kind listener.",
            "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
            "human:", "  include: false", "models:"]


def model(alias, provider, fake, params, extra=()):
    return [f"  - alias: {alias}", f"    provider: {provider}",
            f"    base_url: \"${{EMPQ_FAKELLM_URL}}{PROVIDERS.get(provider, '/v1')}\"",
            f"    model: {fake}", f"    params: {params}", f"    max_attempts: {MAX_ATTEMPTS}",
            "    timeout_ms: 5000"] + list(extra)


def status(c, run):
    st = json.loads(c.cli(["status", run, "--json"]).stdout)
    st = st["runs"][0] if "runs" in st else st
    return st, {m["source"]: m for m in st["models"]}


def received(c):
    """Requests empq-fakellm received, by model (answered or not)."""
    return {k: v.get("requests", 0) for k, v in c.fakellm_stats().get("models", {}).items()}


def pb_result(run, job, prompt, model, text):
    """A Result (proto/empq.proto) packed by hand: run_id, job, prompt,
    model, sample 0, gen {text}."""
    def varint(v):
        out = b""
        while True:
            b = v & 0x7F
            v >>= 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out

    def ld(field, data):
        return varint(field << 3 | 2) + varint(len(data)) + data

    gen = ld(1, text.encode())
    return (ld(1, run.encode()) + varint(2 << 3) + varint(job) + varint(3 << 3) + varint(prompt) +
            varint(4 << 3) + varint(model) + varint(5 << 3) + varint(0) + ld(6, gen))


def redis_cli(c, *args):
    port = c.redis_url.rsplit(":", 1)[1]
    r = subprocess.run(["redis-cli", "-p", port, "--raw"] + list(args), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_no_answer_never_counted():
    need_faults()
    faults, lines, want = [], head("no-answer"), {}
    for prov in PROVIDERS:
        for kind, reasons in EXPECT.items():
            fake = f"fake-{prov}-{kind}"
            alias = f"{prov}-{kind}"
            faults += ["--model-fault", f"{fake}:{kind}=1"]
            params = "{max_tokens: 2048, thinking: {type: enabled, budget_tokens: 1024}}" \
                if prov == "anthropic" else "{temperature: 0.7, max_tokens: 512}"
            lines += model(alias, prov, fake, params)
            want[alias] = reasons[prov]
    lines += model("good", "openai-compatible", "fake-warm", "{temperature: 0.7, max_tokens: 128}")
    spec = "\n".join(lines) + "\n"
    with Cluster(workers=2, latency_ms=2, name="noanswer", fakellm_args=faults) as c:
        c.start()
        path = c.write("study.yaml", spec)
        run = c.submit(path)
        out = c.wait_responses(run, timeout=90)
        st, m = status(c, run)
        assert st["state"] == "done", st
        for alias, reason in want.items():
            mc = m[alias]
            assert mc["done"] == 0 and mc["dead"] == PROMPTS, (alias, mc)
            assert mc.get("dead_reasons") == {reason: PROMPTS}, (alias, reason, mc.get("dead_reasons"))
        assert m["good"]["done"] == PROMPTS and m["good"]["dead"] == 0, m["good"]
        text = c.cli(["status", run]).stdout
        for reason in set(want.values()):
            assert f"{reason} {PROMPTS}" in text, (reason, text)

        # nothing empty reaches responses.jsonl; the dead letters say why
        resp = read_jsonl(out)
        assert {r["source"] for r in resp} == {"good"}, sorted({r["source"] for r in resp})
        assert all(r["response"] for r in resp), [r for r in resp if not r["response"]]
        dead = read_jsonl(os.path.join(os.path.dirname(out), "dead.jsonl"))
        assert len(dead) == len(want) * PROMPTS, len(dead)
        for d in dead:
            reason = want[d["source"]]
            assert d["reason"] == reason, d
            assert d["attempts"] == (MAX_ATTEMPTS if reason in RETRIED else 1), d
            assert d["last_status"] == 200, d
        gem = [d for d in dead if d["source"] == "gemini-safety"]
        assert all('"blocked": true' in json.dumps(d["safety_ratings"]) for d in gem), gem[0]
        budget = [d for d in dead if d["reason"] == "reasoning_exhausted_budget"]
        assert all(d["tokens_out"] and d["tokens_out"] > 0 for d in budget), budget[0]
        oa = [d for d in dead if d["source"].startswith("openai-")]
        assert all(d["request_id"] for d in oa), oa[0]

        # the cache holds the answering model's entries only
        keys = [k for k in redis_cli(c, "--scan", "--pattern", "empq:cache:*").split() if k]
        assert len(keys) == PROMPTS, (len(keys), keys[:5])

        # empq assign refuses a run holding a response with empty text (as an
        # older worker could have written it), naming it
        job = len(want)  # prompt 0, model "good" (the last of 16), sample 0: (0 * 16 + 15) * 1 + 0
        res = pb_result(run, job, 0, len(want), "")
        port = c.redis_url.rsplit(":", 1)[1]
        r = subprocess.run(["redis-cli", "-p", port, "-x", "HSET", f"empq:run:{run}:results", str(job)],
                           input=res, capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        r = c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan")], check=False)
        assert r.returncode != 0, r.stdout + r.stderr
        assert "empty text" in r.stderr and f"job {job}" in r.stderr and "source good" in r.stderr, r.stderr

        # a second run of the same requests calls the failing models again
        before = received(c)
        run2 = c.submit(path)
        c.wait_responses(run2, timeout=90)
        after = received(c)
        for alias, reason in want.items():
            fake = "fake-" + alias
            calls = PROMPTS * (MAX_ATTEMPTS if reason in RETRIED else 1)
            assert after.get(fake, 0) - before.get(fake, 0) == calls, (fake, before.get(fake), after.get(fake))
        assert after.get("fake-warm", 0) == before.get("fake-warm", 0), "the answers were not served from the cache"
        st2, m2 = status(c, run2)
        assert m2["good"]["cache_hits"] == PROMPTS, m2["good"]
        print(f"   {len(want)} models x {PROMPTS} prompts dead by reason, "
              f"{sorted(set(want.values()))}; rerun called them again", flush=True)


QUOTA = {"openai": "insufficient_quota", "anthropic": "credit_balance_too_low",
         "gemini": "daily_quota_exhausted"}
QUOTA_CONC = 3
QUOTA_PROMPTS = 40


def test_quota_stops_model():
    need_faults()
    lines = ["name: quota",
             "dataset:", "  format: synth", f"  prompts: {QUOTA_PROMPTS}", "  seed: 5",
             "selection:", f"  prompts: {QUOTA_PROMPTS}", "  seed: 42", "  balance: none",
             "template:", "  user: \"{prompt}\"", "human:", "  include: false", "models:"]
    faults = []
    for prov in QUOTA:
        fake = f"fake-quota-{prov}"
        faults += ["--model-fault", f"{fake}:quota=1"]
        lines += model(f"quota-{prov}", prov, fake, "{max_tokens: 64}",
                       [f"    limits: {{max_concurrency: {QUOTA_CONC}}}"])
    lines += model("warm", "openai-compatible", "fake-warm", "{max_tokens: 64}")
    lines += model("brief", "gemini", "fake-brief", "{max_tokens: 64}")
    with Cluster(workers=3, latency_ms=30, name="quota", fakellm_args=faults) as c:
        c.start()
        run = c.submit(c.write("study.yaml", "\n".join(lines) + "\n"))

        def settled():
            c.check_alive()
            st, m = status(c, run)
            return (m["warm"]["done"] == QUOTA_PROMPTS and m["brief"]["done"] == QUOTA_PROMPTS and
                    all(m[f"quota-{p}"].get("stopped") and m[f"quota-{p}"]["leased"] == 0 for p in QUOTA))

        wait_until("the good models done, the quota models stopped", settled, timeout=60, interval=0.2)
        time.sleep(0.5)
        st, m = status(c, run)
        calls = received(c)
        text = c.cli(["status", run]).stdout
        for prov, name in QUOTA.items():
            mc = m[f"quota-{prov}"]
            n = calls.get(f"fake-quota-{prov}", 0)
            # stopped at its first outcome: only what was in flight then reached the provider
            assert 1 <= n <= QUOTA_CONC, (prov, n, mc)
            assert mc["dead"] == n and mc["done"] == 0, (prov, n, mc)
            assert mc["pending"] == QUOTA_PROMPTS - n, mc
            assert mc["stop_reason"].startswith(name), mc
            assert mc.get("dead_reasons") == {name: n}, mc
            assert f"STOPPED ({name}" in text, text
        assert st["state"] != "done", st
        # each dead job burned one attempt
        d = os.path.join(c.tmp, "export.jsonl")
        c.cli(["export", run, "--out", d])
        dead = read_jsonl(os.path.join(c.tmp, "dead.jsonl"))
        assert dead and all(x["attempts"] == 1 for x in dead), dead
        print(f"   quota models stopped after {[calls.get('fake-quota-' + p, 0) for p in QUOTA]} calls; "
              f"the others finished", flush=True)


BUDGET = 6000.0  # price 1 per token (1,000,000 per million)
COST_PROMPTS = 60


def test_max_cost_thinking():
    need_faults()
    lines = ["name: cost-thinking",
             "dataset:", "  format: synth", f"  prompts: {COST_PROMPTS}", "  seed: 2",
             "selection:", f"  prompts: {COST_PROMPTS}", "  seed: 1", "  balance: none",
             "template:", "  system: You are a kind listener.",
             "  user: \"{situation}\\n\\nThe speaker says: {prompt}\"",
             "human:", "  include: false", "models:"]
    price = "    prices: {input_per_mtok: 1000000, output_per_mtok: 1000000, max_cost: %g}" % BUDGET
    # Gemini thinking: 512 thought tokens per reply, billed as output
    lines += model("gemini-think", "gemini", "fake-reason-g",
                   "{max_tokens: 1024, thinkingConfig: {thinkingBudget: 512}}", [price])
    # OpenAI reasoning: medium effort (256) above the 200 budget: every reply is
    # finish_reason length with no text, billed 200 output tokens
    lines += model("o-budget", "openai", "fake-reason-o",
                   "{max_completion_tokens: 200, reasoning_effort: medium}", [price])
    with Cluster(workers=2, latency_ms=5, name="costthink") as c:
        c.start()
        run = c.submit(c.write("study.yaml", "\n".join(lines) + "\n"))

        def settled():
            c.check_alive()
            st, m = status(c, run)
            return all(m[a].get("stopped") and m[a]["leased"] == 0 for a in ("gemini-think", "o-budget"))

        wait_until("both thinking models stopped by max_cost", settled, timeout=60, interval=0.2)
        st, m = status(c, run)
        out = os.path.join(c.tmp, "responses.jsonl")
        c.cli(["export", run, "--out", out])
        resp = read_jsonl(out)
        dead_path = os.path.join(c.tmp, "dead.jsonl")
        dead = read_jsonl(dead_path) if os.path.exists(dead_path) else []

        g = m["gemini-think"]
        gl = [r for r in resp if r["source"] == "gemini-think"]
        assert len(gl) == g["done"] > 0, (len(gl), g)
        assert all(r["reasoning_tokens"] == 512 for r in gl), gl[0]
        true_g = sum(r["tokens_in"] + r["tokens_out"] for r in gl)
        old_g = sum(r["tokens_in"] + r["tokens_out"] - r["reasoning_tokens"] for r in gl)
        assert abs(g["cost"] - true_g) < 1e-6, (g, true_g)
        assert BUDGET * 0.8 <= g["cost"] <= BUDGET * 1.15, g
        assert g["stop_reason"] == "max_cost", g
        # the old accounting saw old_g of the budget: it would have gone on,
        # and at its own stop have spent BUDGET x true/old
        assert old_g < BUDGET * 0.5, (old_g, BUDGET)
        overspend_g = BUDGET * true_g / old_g
        assert overspend_g > BUDGET * 2, overspend_g

        o = m["o-budget"]
        od = [d for d in dead if d["source"] == "o-budget"]
        assert o["done"] == 0 and o["dead"] == len(od) > 0, (o, len(od))
        assert all(d["reason"] == "reasoning_exhausted_budget" and d["tokens_out"] == 200 for d in od), od[0]
        true_o = sum(d["tokens_in"] + d["tokens_out"] for d in od)
        assert abs(o["cost"] - true_o) < 1e-6, (o, true_o)
        assert BUDGET * 0.8 <= o["cost"] <= BUDGET * 1.15, o
        # the old accounting counted done jobs only: 0 spent, never stopped,
        # every job called
        old_o_total = COST_PROMPTS * true_o / len(od)
        assert o["pending"] > 0 and old_o_total > BUDGET * 1.5, (o, old_o_total)
        # a restarted broker rebuilds the spend, the no-answer replies' included,
        # and sends neither model another job
        calls = received(c)
        c.restart_broker()
        time.sleep(1.0)
        st2, m2 = status(c, run)
        for a, before in (("gemini-think", g), ("o-budget", o)):
            assert abs(m2[a]["cost"] - before["cost"]) < 1e-6 and m2[a].get("stopped"), (a, before, m2[a])
        assert received(c) == calls, (calls, received(c))
        print(f"   gemini-think: {g['done']} done, cost {g['cost']:.0f} of {BUDGET:.0f} (old accounting "
              f"{old_g:.0f}, would have spent ~{overspend_g:.0f}); o-budget: {len(od)} dead "
              f"reasoning_exhausted_budget, cost {o['cost']:.0f} (old accounting 0, would have spent "
              f"~{old_o_total:.0f})", flush=True)


if __name__ == "__main__":
    main(test_no_answer_never_counted, test_quota_stops_model, test_max_cost_thinking)
