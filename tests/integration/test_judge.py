"""Judging as a run (docs/judge.md): `empq judge` over a Welivita-Pu ratings
file with two fake judges, through the real broker, workers, collector and
empq-fakellm.

- test_judge_run: the run completes, judge-ratings.csv holds one row per
  (response, judge) with the columns of docs/judge.md; each fake judge's
  labels follow its documented rule in 1 - P of the rows (P = --judge-noise),
  within 4.5 standard errors; a worker SIGKILLed mid-run loses nothing (every
  job has exactly one row, none dead, none missing); the same judge run
  submitted again is served from the cache: zero backend calls (fakellm
  /stats) and the same labels, and so is `empq rerun RUN --model J
  --emotion E` (a child judge run with its own judge-ratings.csv).
- test_judge_faults: fake-judge-garbage (prose) and fake-judge-offscale
  ("Excellent") never become ratings: every job ends as a dead letter whose
  reason starts with judge_unparseable / judge_off_scale, after max_attempts
  calls each, and judge-ratings.csv has no row.
- test_judge_providers: the verdicts come through OpenAI's
  response_format, Gemini's responseSchema and Anthropic's forced tool
  call, each label the fake judge's rule; an off-scale tool call ends dead.
- test_judge_responses_jsonl: a study run's responses.jsonl judged (item =
  prompt_id, condition = source), narrowed by --sources and --prompts.
- test_judge_refused: a rubric without {response}, a judge spec with the
  human source, `empq submit` of a judge spec, unknown --sources, a missing
  or malformed responses file: exit 2 naming what is wrong.
- test_judge_request_bodies: a judge served by a recording HTTP endpoint
  sees, in every request, exactly the rubric rendered from the dialogue's
  emotion, situation, speaker turn and the response (computed here), the
  JSON-mode response_format, and no rating.

Data: $EMPQ_TEST_DATA/welivita-pu-2024/dataset_and_ratings.csv when set: all
2,000 dialogues, 6,000 responses, 12,000 jobs (a few seconds; the time is
printed), or EMPQ_JUDGE_DIALOGUES of them; otherwise a generated file in the
same format (240 dialogues).
"""

import csv
import http.server
import json
import os
import random
import re
import signal
import threading
import time

from empqtest import SOURCE_DIR, Cluster, demo_like_spec, main, read_jsonl, wait_until
from test_outputs_schema import check_table

NOISE = 0.2
DIALOGUES = int(os.environ.get("EMPQ_JUDGE_DIALOGUES", "0"))  # 0: all

RUBRIC_USER = ("The speaker feels: {emotion}\\nSituation: {situation}\\n"
               "The speaker says: {prompt}\\nThe listener responds: <response>{response}</response>\\n"
               "Rate the response: Good, Okay or Bad.")


def rating_file(c):
    root = os.environ.get("EMPQ_TEST_DATA")
    if root:
        p = os.path.join(root, "welivita-pu-2024", "dataset_and_ratings.csv")
        if os.path.exists(p):
            return p
    # a generated file in the release's format: 3 sources, texts of varied style
    rng = random.Random(3)
    emotions = ["afraid", "proud", "sad", "joyful", "lonely", "grateful", "angry", "hopeful"]
    words = "that sounds really hard and I am glad it worked out in the end for all of them".split()
    path = os.path.join(c.tmp, "generated_ratings.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["part_no", "dialog_id", "emotion", "sentiment", "situation", "speaker_uttr",
                    "response_human", "response_chatgpt", "response_chatgpt_empathy",
                    "rating_human", "rating_chatgpt", "rating_chatgpt_empathy"])
        for i in range(240):
            texts = []
            for _ in range(3):
                t = " ".join(rng.choice(words) for _ in range(rng.randint(4, 40)))
                if rng.random() < 0.5:
                    t += ", you must feel proud"
                if rng.random() < 0.5:
                    t += ". How are you now?"
                texts.append(t)
            w.writerow([i // 10, f"hit:{i}_conv:{2 * i}", emotions[i % len(emotions)],
                        "negative" if i % 2 else "positive", f"Situation {i}, with \"quotes\"",
                        f"Speaker turn {i}."] + texts + [rng.randint(1, 3) for _ in range(3)])
    return path


def judge_spec(c, name, judges, max_attempts=3, base="${EMPQ_FAKELLM_URL}/v1", path=None, provider="openai-compatible"):
    lines = [f"name: {name}", "dataset:", "  format: welivita-pu", f"  path: {json.dumps(path)}",
             "selection:", "  prompts: 0", "  seed: 1", "template:",
             "  system: You rate how empathetic a listener's response is.",
             f"  user: \"{RUBRIC_USER}\"", "human:", "  include: false", "models:"]
    for j in judges:
        alias, model = j[0], j[1]
        prov, url = (j[2], j[3]) if len(j) > 2 else (provider, base)
        lines += [f"  - alias: {alias}", f"    provider: {prov}", f"    base_url: \"{url}\"",
                  f"    model: {model}", f"    max_attempts: {max_attempts}",
                  "    params: {temperature: 0, max_tokens: 200}", "    limits: {max_concurrency: 512}"]
    return c.write(name + ".yaml", "\n".join(lines) + "\n")


def judge(c, spec, *extra):
    r = c.cli(["judge", spec] + list(extra), timeout=300)
    return r.stdout.strip().splitlines()[-1]


def wait_run(c, run_id, timeout):
    c.wait_responses(run_id, timeout=timeout)
    path = os.path.join(c.out, run_id, "judge-ratings.csv")
    assert os.path.exists(path), "judge-ratings.csv is written before responses.jsonl"
    with open(os.path.join(SOURCE_DIR, "docs", "schemas", "judge-ratings.schema.json"), encoding="utf-8") as f:
        check_table(path, json.load(f))  # every cell against docs/schemas/judge-ratings.schema.json
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    dead_path = os.path.join(c.out, run_id, "dead.jsonl")
    dead = []
    if os.path.exists(dead_path):
        with open(dead_path, encoding="utf-8") as f:
            dead = [json.loads(x) for x in f if x.strip()]
    return rows, dead


def words_rule(model, text):
    """The fake judges' documented rule (fakellm/judge.h, docs/fakellm.md)."""
    ws = text.split()
    you = sum(1 for w in ws if re.sub(r"^[^A-Za-z]+", "", w)[:3].lower() == "you")
    score = (len(ws) >= 15) + (len(ws) >= 30) + (you >= 1) + ("?" in text)
    if model.startswith("fake-judge-lenient"):
        return "Good" if score >= 2 else "Okay" if score == 1 else "Bad"
    return "Good" if score >= 3 else "Okay" if score == 2 else "Bad"


def texts_of(path):
    with open(path, newline="", encoding="utf-8") as f:
        out = {}
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k.startswith("response_"):
                    out[(row["dialog_id"], k[9:])] = v
        return out


def test_judge_run():
    with Cluster(workers=2, latency_ms=5, name="judge-run",
                 fakellm_args=["--judge-noise", str(NOISE), "--judge-seed", "5"]) as c:
        c.start()
        data = rating_file(c)
        judges = [("judge-a", "fake-judge-a"), ("judge-lenient", "fake-judge-lenient")]
        spec = judge_spec(c, "judge-run", judges, path=data)
        extra = ["--prompts", str(DIALOGUES)] if DIALOGUES else []
        t0 = time.monotonic()
        run_id = judge(c, spec, *extra)
        jobs_expected = None

        # SIGKILL a worker once a share of the jobs is answered; start another
        def some_done():
            return c.fakellm_stats()["requests"] >= 40
        wait_until("40 judge calls", some_done, timeout=120)
        c.stop("worker-1", sig=signal.SIGKILL)
        at_kill = c.fakellm_stats()["requests"]
        c.start_worker(3)
        rows, dead = wait_run(c, run_id, timeout=600)
        elapsed = time.monotonic() - t0
        texts = texts_of(data)
        n_resp = len({(r["item"], r["condition"]) for r in rows})
        jobs_expected = n_resp * len(judges)
        print(f"   judge run {run_id}: {n_resp} responses x {len(judges)} judges = {len(rows)} rows in "
              f"{elapsed:.1f} s (worker-1 SIGKILLed mid-run)", flush=True)
        if data.endswith("dataset_and_ratings.csv") and DIALOGUES == 0:
            assert n_resp == 6000, n_resp  # the released file: every response judged
        print(f"   worker-1 SIGKILLed after {at_kill} of {jobs_expected} judge calls", flush=True)
        assert at_kill < jobs_expected, "the kill came after the run's last call: not mid-run"
        assert not dead, f"dead letters: {dead[:3]}"
        assert len(rows) == jobs_expected, (len(rows), jobs_expected)
        keys = [(r["item"], r["condition"], r["judge"], r["sample"]) for r in rows]
        assert len(set(keys)) == len(keys), "a job has two rows"
        assert {r["sample"] for r in rows} == {"1"}
        assert list(rows[0].keys()) == ["run_id", "judge", "sample", "item", "condition", "prompt_id",
                                        "emotion", "sentiment", "length", "response_chars", "label", "reason"]
        models = dict(judges)
        for judge_alias, model in judges:
            mine = [r for r in rows if r["judge"] == judge_alias]
            assert len(mine) == n_resp
            follow = sum(1 for r in mine
                         if r["label"] == words_rule(model, texts[(r["item"], r["condition"])]))
            share = follow / len(mine)
            se = (NOISE * (1 - NOISE) / len(mine)) ** 0.5
            print(f"   {judge_alias}: {share:.4f} of labels follow the rule (expected {1 - NOISE}, "
                  f"se {se:.4f})", flush=True)
            assert abs(share - (1 - NOISE)) <= 4.5 * se, (judge_alias, share)
        for r in rows[:50]:
            assert r["label"] in ("Good", "Okay", "Bad")
            assert int(r["response_chars"]) == len(texts[(r["item"], r["condition"])])
            assert models[r["judge"]]
        labels = {(r["item"], r["condition"], r["judge"]): r["label"] for r in rows}

        # the killed worker's calls in flight are made again, nothing more (credit 64 + prefetch 8);
        # a request asked twice in the run (the same texts in two dialogues) is served from the cache
        before = c.fakellm_stats()["requests"]
        hits = sum(1 for x in read_jsonl(os.path.join(c.out, run_id, "responses.jsonl")) if x["cache_hit"])
        again = before - (jobs_expected - hits)
        print(f"   backend calls {before} for {jobs_expected} jobs ({hits} cache hits): {again} made again "
              f"after the kill", flush=True)
        assert 0 <= again <= 72, again

        # the same judge run again: every job from the cache, no backend call
        run2 = judge(c, spec, *extra)
        rows2, dead2 = wait_run(c, run2, timeout=300)
        after = c.fakellm_stats()["requests"]
        print(f"   again as run {run2}: {len(rows2)} rows, backend calls {after - before}", flush=True)
        assert after == before, f"{after - before} backend calls for a cached judge run"
        assert not dead2 and len(rows2) == len(rows)
        assert {(r["item"], r["condition"], r["judge"]): r["label"] for r in rows2} == labels

        # empq rerun of a judge run: a child judge run of the subset, from the cache
        emotion = rows[0]["emotion"]
        r = c.cli(["rerun", run_id, "--model", "judge-lenient", "--emotion", emotion])
        run3 = r.stdout.strip().splitlines()[-1]
        rows3, dead3 = wait_run(c, run3, timeout=120)
        want = {k: v for k, v in labels.items() if k[2] == "judge-lenient" and
                next(x for x in rows if (x["item"], x["condition"], x["judge"]) == k)["emotion"] == emotion}
        assert not dead3 and {(r["item"], r["condition"], r["judge"]): r["label"] for r in rows3} == want
        assert c.fakellm_stats()["requests"] == before, "the rerun called the backend"
        print(f"   empq rerun {run_id} --model judge-lenient --emotion {emotion}: run {run3}, {len(rows3)} rows "
              f"from the cache", flush=True)


def test_judge_faults():
    with Cluster(workers=1, name="judge-faults") as c:
        c.start()
        data = rating_file(c)
        spec = judge_spec(c, "judge-faults", [("garbage", "fake-judge-garbage"),
                                              ("offscale", "fake-judge-offscale")], max_attempts=2,
                          path=data)
        run_id = judge(c, spec, "--prompts", "5", "--sources", "human,chatgpt")
        rows, dead = wait_run(c, run_id, timeout=120)
        assert rows == [], f"a judge answer that is no verdict became a rating: {rows[:2]}"
        assert len(dead) == 5 * 2 * 2, len(dead)
        for d in dead:
            want = "judge_unparseable" if d["source"] == "garbage" else "judge_off_scale"
            assert d["reason"].startswith(want), d
            assert d["attempts"] == 2, d
        stats = c.fakellm_stats()
        assert stats["by_model"].get("fake-judge-garbage") == 20, stats
        assert stats["by_model"].get("fake-judge-offscale") == 20, stats
        print(f"   {len(dead)} dead letters, e.g. {dead[0]['reason']!r}", flush=True)


def test_judge_providers():
    """The verdict through each provider's structured output, as empq-fakellm
    answers it: OpenAI response_format, Gemini responseSchema, Anthropic a
    forced tool call (the tool_use input read as the verdict); and an
    off-scale answer through the Anthropic tool still ends dead."""
    with Cluster(workers=1, name="judge-providers") as c:
        c.start()
        data = rating_file(c)
        fake = "${EMPQ_FAKELLM_URL}"
        judges = [("via-openai", "fake-judge-a", "openai-compatible", fake + "/v1"),
                  ("via-gemini", "fake-judge-a", "gemini", fake + "/v1beta"),
                  ("via-anthropic", "fake-judge-a", "anthropic", fake + "/v1"),
                  ("anthropic-offscale", "fake-judge-offscale", "anthropic", fake + "/v1")]
        spec = judge_spec(c, "judge-providers", judges, max_attempts=2, path=data)
        run_id = judge(c, spec, "--prompts", "8")
        rows, dead = wait_run(c, run_id, timeout=120)
        texts = texts_of(data)
        n = len({(r["item"], r["condition"]) for r in rows})
        assert n == 24, n
        for alias in ("via-openai", "via-gemini", "via-anthropic"):
            mine = [r for r in rows if r["judge"] == alias]
            assert len(mine) == n, (alias, len(mine))
            for r in mine:  # no noise here: every label is the rule's
                assert r["label"] == words_rule("fake-judge-a", texts[(r["item"], r["condition"])]), r
                assert r["reason"].startswith("score "), r
        assert not [r for r in rows if r["judge"] == "anthropic-offscale"]
        assert len(dead) == n and all(d["reason"] == "judge_off_scale: label 'Excellent'" for d in dead), dead[:2]
        print(f"   {len(rows)} verdicts through OpenAI, Gemini and Anthropic (tool call) formats; "
              f"{len(dead)} off-scale tool calls dead", flush=True)


def test_judge_responses_jsonl():
    """A study's own responses.jsonl judged: every line (prompt, source,
    sample) is a judged response; item is its prompt_id, condition its source
    (ALIAS#N for a model's sample N > 0; the human text once)."""
    with Cluster(workers=1, name="judge-jsonl") as c:
        c.start()
        text = demo_like_spec("judge-jsonl-study", 12, models=("fake-warm", "fake-brief"))
        text = text.replace("    model: fake-warm\n", "    model: fake-warm\n    samples: 2\n", 1)
        study = c.write("study.yaml", text)
        run_id = c.submit(study)
        lines = read_jsonl(c.wait_responses(run_id))
        assert any(x["sample"] == 1 for x in lines), "fake-warm's second sample"
        spec = judge_spec(c, "judge-jsonl", [("judge-a", "fake-judge-a")], path=rating_file(c))
        jrun = judge(c, spec, "--responses", os.path.join(c.out, run_id, "responses.jsonl"))
        rows, dead = wait_run(c, jrun, timeout=120)
        assert not dead and len(rows) == 12 * 5, len(rows)
        # the human text is the same in every sample: judged once
        judged = [x for x in lines if x["sample"] == 0 or x["model"] is not None]
        assert len(judged) == 12 * 5, len(judged)  # human, fake-warm x 2, fake-brief x 2 (samples are run-wide)
        text = {(x["prompt_id"], x["source"] + (f"#{x['sample']}" if x["sample"] else "")): x["response"]
                for x in judged}
        assert len(text) == len(judged)
        assert {(r["item"], r["condition"]) for r in rows} == set(text)
        for r in rows:
            assert r["label"] == words_rule("fake-judge-a", text[(r["item"], r["condition"])]), r
        # --sources and a selection of prompts (balanced over the emotions) narrow it
        jrun2 = judge(c, spec, "--responses", os.path.join(c.out, run_id, "responses.jsonl"), "--sources",
                      "human", "--prompts", "5")
        rows2, _ = wait_run(c, jrun2, timeout=120)
        assert len(rows2) == 5 and {r["condition"] for r in rows2} == {"human"}, rows2
        print(f"   {len(rows)} responses of study run {run_id} judged; --sources human --prompts 5: "
              f"{len(rows2)}", flush=True)


def test_judge_refused():
    """empq judge and empq submit refuse what does not fit, before anything is
    written, with a line naming the file and what is wrong (exit 2)."""
    with Cluster(workers=0, name="judge-refused") as c:
        c.start(broker=False, workers=False, collector=False, fakellm=False)
        data = rating_file(c)
        good = judge_spec(c, "judge-ok", [("judge-a", "fake-judge-a")], path=data)
        with open(good, encoding="utf-8") as f:
            text = f.read()
        cases = [
            ("no-response.yaml", text.replace("<response>{response}</response>", "(none)"),
             ["judge"], "a judge rubric must show the response ({response})"),
            ("with-human.yaml", text.replace("  include: false", "  include: true"),
             ["judge"], "a judge spec has no human source"),
            ("judge-ok.yaml", text, ["submit"], "this is a judge spec; run it with empq judge"),
            ("judge-ok.yaml", text, ["judge", "--sources", "nobody"], "no response_<source> column of the --sources"),
            ("judge-ok.yaml", text, ["judge", "--responses", os.path.join(c.tmp, "missing.jsonl")], "missing.jsonl"),
        ]
        bad_jsonl = c.write("bad.jsonl", '{"prompt_id": "p1", "emotion": "sad", "prompt": "x", "source": "human"}\n')
        cases.append(("judge-ok.yaml", text, ["judge", "--responses", bad_jsonl],
                      "bad.jsonl:1: key 'response' is missing or not a string"))
        for name, body, cmd, want in cases:
            path = c.write(name, body)
            args = [cmd[0], path] + cmd[1:]
            r = c.cli(args, check=False, timeout=30)
            assert r.returncode == 2 and want in r.stderr, (args, r.returncode, r.stderr)
        print(f"   {len(cases)} refusals, exit 2, each naming what is wrong", flush=True)


class Recorder(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        Recorder.bodies.append(body)
        reply = {"id": "rec", "object": "chat.completion", "created": 0, "model": "recorder",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant",
                                          "content": "{\"label\":\"Okay\",\"reason\":\"recorded\"}"}}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        out = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def test_judge_request_bodies():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        with Cluster(workers=1, name="judge-bodies") as c:
            c.start()
            data = rating_file(c)
            spec = judge_spec(c, "judge-bodies", [("rec", "recorder")],
                              base=f"http://127.0.0.1:{srv.server_address[1]}/v1", path=data)
            run_id = judge(c, spec, "--prompts", "12")
            rows, dead = wait_run(c, run_id, timeout=120)
            assert not dead and len(rows) == 36, (len(rows), dead[:2])
            with open(data, newline="", encoding="utf-8") as f:
                dialogues = {r["dialog_id"]: r for r in csv.DictReader(f)}
            expected = set()
            for r in rows:
                d = dialogues[r["item"]]
                expected.add(RUBRIC_USER.replace("\\n", "\n").format(
                    emotion=d["emotion"], situation=d["situation"], prompt=d["speaker_uttr"],
                    response=d["response_" + r["condition"]]))
            seen = set()
            for b in Recorder.bodies:
                body = json.loads(b)
                assert set(body) == {"model", "messages", "temperature", "max_tokens", "response_format"}, body
                assert body["response_format"]["type"] == "json_schema"
                assert body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == \
                    ["Good", "Okay", "Bad"]
                assert [m["role"] for m in body["messages"]] == ["system", "user"]
                assert "rating_" not in b.decode().lower()
                seen.add(body["messages"][1]["content"])
            assert seen == expected, f"{len(seen ^ expected)} request texts differ from the rubric"
            print(f"   {len(Recorder.bodies)} request bodies: the rubric with the response and nothing else",
                  flush=True)
    finally:
        srv.shutdown()


if __name__ == "__main__":
    main(test_judge_refused, test_judge_faults, test_judge_providers, test_judge_request_bodies,
         test_judge_responses_jsonl, test_judge_run)
