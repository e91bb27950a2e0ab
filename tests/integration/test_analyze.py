"""`empq analyze`: the real binary on the Welivita-Pu release against scipy,
the long layout with rater overlap on a demo run's responses (the fake
models' styles must come apart), and report.html in headless Chromium.

- test_welivita_vs_scipy: needs EMPQ_TEST_DATA (the shared data folder);
  checks the published shares (human 49.3% Good, GPT-4 plain 63.4%, GPT-4
  with the empathy prompt 64.75%, +31.3%) and that every statistic and
  p-value in tables/*.csv agrees with analyze_reference.py (csv +
  scipy.stats) to 6 significant digits. Needs /usr/bin/python3 with Debian's
  python3-scipy and python3-numpy.
- test_demo_style: `empq demo --prompts 200` (real redis-server, broker,
  workers, collector, fake LLM server), then ratings in the long layout
  made up from its responses (two raters per item), then `empq analyze
  --layout long --responses`: the style table separates the fake models on
  the cues they were built to differ in, and Krippendorff's alpha is
  computed.
  The demo's own ratings-long.csv (simulated raters with leniency and
  dialogue difficulty) goes through the design-respecting fits, checked
  against test_analyze_design's references (statsmodels GLM with clustered
  errors, OrderedModel).
- test_judge_report: `empq analyze --judge` on a generated long-layout file
  with a synthetic judge (judge_synth.py): the report's judge section, with
  its agreement tables and charts, for the browser check below.
- test_html_in_chromium: headless Chromium opens each report.html with no
  console error and takes a screenshot, kept in the test's output folder
  (EMPQ_TEST_OUT, default <EMPQ_BIN>/../test-output/test_analyze).

Each part skips, saying why, when what it needs is absent; the file exits
77 only when every part skipped.
"""

import csv
import glob
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

from empqtest import BIN, SOURCE_DIR, Skip, program

SKIP = 77
OUT = os.environ.get("EMPQ_TEST_OUT") or os.path.join(os.path.dirname(BIN), "test-output", "test_analyze")
REPORTS = []  # report.html files made by the tests above the Chromium one


def analyze(*args):
    r = subprocess.run([program("empq"), "analyze", *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"empq analyze {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def read_table(out, name):
    with open(os.path.join(out, "tables", name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def num(s):
    return math.nan if s == "NA" else float(s)


def agree(what, got, want, sig=6):
    """got (a string from tables/*.csv) equals want to sig significant digits."""
    g = num(got) if isinstance(got, str) else float(got)
    w = float(want)
    if math.isnan(w) or math.isnan(g):
        assert math.isnan(w) and math.isnan(g), f"{what}: empq {got}, scipy {want}"
        return 0.0
    if w == 0 or g == 0:
        assert g == w, f"{what}: empq {got}, scipy {want}"
        return 0.0
    rel = abs(g - w) / abs(w)
    assert rel <= 0.5 * 10 ** (1 - sig), f"{what}: empq {got}, scipy {want!r} (relative difference {rel:.3g})"
    return rel


# ---------------------------------------------------------------- Welivita-Pu

def test_welivita_vs_scipy():
    data = os.environ.get("EMPQ_TEST_DATA")
    if not data:
        raise Skip("EMPQ_TEST_DATA is not set (point it at the shared data folder)")
    path = os.path.join(data, "welivita-pu-2024", "dataset_and_ratings.csv")
    if not os.path.exists(path):
        raise Skip(f"{path} is absent")
    try:
        from analyze_reference import reference
    except ImportError as e:
        raise Skip(f"the scipy reference needs python3-scipy and python3-numpy: {e}")

    out = os.path.join(OUT, "welivita-pu")
    shutil.rmtree(out, ignore_errors=True)
    analyze("--ratings", path, "--out", out)
    REPORTS.append(("welivita-pu", os.path.join(out, "report.html")))

    conds = {r["condition"]: r for r in read_table(out, "conditions.csv")}
    assert list(conds) == ["human", "chatgpt", "chatgpt_empathy"], list(conds)
    # the published figures
    assert round(float(conds["human"]["share_good"]) * 100, 2) == 49.3, conds["human"]
    assert round(float(conds["chatgpt"]["share_good"]) * 100, 2) == 63.4, conds["chatgpt"]
    assert round(float(conds["chatgpt_empathy"]["share_good"]) * 100, 2) == 64.75, conds["chatgpt_empathy"]
    assert round(float(conds["chatgpt_empathy"]["good_increase_vs_baseline"]) * 100, 1) == 31.3
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        md = f.read()
    for text in ("human 49.3%", "GPT-4 (plain prompt) 63.4%", "GPT-4 (empathy prompt) 64.75%", "+31.34%",
                 "+15.45 pp", "+31.34% relative", "Good vs baseline (pp)", "Good vs baseline (relative)"):
        assert text in md, f"report.md lacks '{text}'"
    # real people's ratings: no simulated-data notice anywhere, 0 in every table
    with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
        html = f.read()
    assert "SIMULATED" not in md and "SIMULATED" not in html, "a real ratings file's report says SIMULATED"
    for name in sorted(n for n in os.listdir(os.path.join(out, "tables")) if n.endswith(".csv")):
        assert all(r["simulated"] == "0" for r in read_table(out, name)), f"tables/{name}: simulated is not 0"
    # Wilson 95% intervals: scipy's binomtest(...).proportion_ci(method="wilson")
    from scipy.stats import binomtest

    def near(what, got, want):
        assert abs(float(got) - want) < 1e-9, f"{what}: empq {got}, scipy {want!r}"
    for c, r in conds.items():
        for v in ("bad", "okay", "good"):
            want = binomtest(int(r[f"n_{v}"]), int(r["n"])).proportion_ci(0.95, method="wilson")
            near(f"{c} share_{v} lo95", r[f"share_{v}_lo95"], want.low)
            near(f"{c} share_{v} hi95", r[f"share_{v}_hi95"], want.high)
    agree("chatgpt_empathy good_diff", conds["chatgpt_empathy"]["good_diff_vs_baseline"], 0.6475 - 0.493)
    for r in read_table(out, "emotions.csv"):
        want = binomtest(int(r["n_good"]), int(r["n"])).proportion_ci(0.95, method="wilson")
        near(f"{r['emotion']}/{r['condition']} lo95", r["share_good_lo95"], want.low)
        near(f"{r['emotion']}/{r['condition']} hi95", r["share_good_hi95"], want.high)
    assert "47.11\u201351.49%" in md, "report.md lacks human's interval 47.11-51.49%"
    assert "(n=62)" in md, "report.md's per-emotion table has no n"

    ref = reference(path, os.path.join(out, "tables", "style_values.csv"))
    worst = [0.0, ""]
    checked = 0

    def check(what, got, want):
        nonlocal checked
        rel = agree(what, got, want)
        checked += 1
        if rel > worst[0]:
            worst[0], worst[1] = rel, what

    for c, want in ref["conditions"].items():
        for k in ("share_bad", "share_okay", "share_good", "mean_rating", "sd_rating", "good_increase_vs_baseline"):
            check(f"conditions {c} {k}", conds[c][k], want[k])
        assert int(conds[c]["n"]) == want["n"]

    ov = read_table(out, "chi2_overall.csv")[0]
    for k in ("statistic", "p", "cramers_v"):
        check(f"overall chi2 {k}", ov[k], ref["overall"][k])
    assert int(ov["df"]) == ref["overall"]["df"]

    pw = {r["condition"]: r for r in read_table(out, "pairwise.csv")}
    assert set(pw) == set(ref["pairwise"]), (set(pw), set(ref["pairwise"]))
    for c, want in ref["pairwise"].items():
        for k in ("chi2", "chi2_p", "chi2_p_holm", "cramers_v", "mwu_u", "mwu_p", "mwu_p_holm"):
            check(f"pairwise {c} {k}", pw[c][k], want[k])
        assert int(pw[c]["chi2_df"]) == want["chi2_df"]

    st = {r["condition"]: r for r in read_table(out, "sentiment_tests.csv")}
    for c, want in ref["sentiment_tests"].items():
        for k in ("chi2", "p", "cramers_v"):
            check(f"sentiment {c} {k}", st[c][k], want[k])

    kw = {r["feature"]: r for r in read_table(out, "style_tests.csv")}
    assert set(kw) == set(ref["style_tests"]), (set(kw), set(ref["style_tests"]))
    for feat, want in ref["style_tests"].items():
        check(f"kruskal {feat} H", kw[feat]["kruskal_h"], want["kruskal_h"])
        check(f"kruskal {feat} p", kw[feat]["p"], want["p"])

    vals = read_table(out, "style_values.csv")
    assert len(vals) == len(ref["style_counts"]) == 6000, (len(vals), len(ref["style_counts"]))
    for i, (v, w) in enumerate(zip(vals, ref["style_counts"])):
        assert v["source"] == w["source"], (i, v["source"], w["source"])
        assert int(v["n_exclamations"]) == w["n_exclamations"], (i, v, w)
        assert int(v["n_questions"]) == w["n_questions"], (i, v, w)

    agr = read_table(out, "agreement.csv")[0]
    assert agr["alpha"] == "NA" and "not applicable" in agr["note"], agr
    print(f"   {checked} figures agree with scipy; largest relative difference {worst[0]:.3g} ({worst[1]})",
          file=sys.stderr)


# ---------------------------------------------------------------- demo, long layout

def test_demo_style():
    if shutil.which("redis-server") is None:
        raise Skip("redis-server is not installed")
    tmp = tempfile.mkdtemp(prefix="empqtest-analyze-")
    try:
        env = dict(os.environ)
        env.setdefault("EMPQ_STUDIES", os.path.join(SOURCE_DIR, "studies"))
        demo = os.path.join(tmp, "demo")
        r = subprocess.run([program("empq"), "demo", "--prompts", "200", "--out", demo], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=180, env=env)
        assert r.returncode == 0, f"empq demo exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        with open(os.path.join(demo, "responses.jsonl"), encoding="utf-8") as f:
            lines = [json.loads(x) for x in f if x.strip()]
        assert len(lines) == 1000, len(lines)
        # the demo's own report (SIMULATED raters), kept for the browser check below
        kept = os.path.join(OUT, "demo-simulated")
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(os.path.join(demo, "report"), kept)
        REPORTS.append(("demo-simulated", os.path.join(kept, "report.html")))
        # the simulated raters (leniency, dialogue difficulty): the design-respecting fits on the demo's
        # ratings-long.csv agree with the independent references (design_reference.py)
        import test_analyze_design as td
        long_csv = os.path.join(demo, "ratings", "ratings-long.csv")
        dout = os.path.join(OUT, "demo-ratings-long")
        shutil.rmtree(dout, ignore_errors=True)
        analyze("--layout", "long", "--ratings", long_csv, "--out", dout)
        dc, _ = td.check_fits(dout, td.long_rows(long_csv))
        assert sum(float(r["icc_good"]) > 0 for r in dc.values()) >= 3, dc  # raters differ in leniency

        # ratings in the long layout, two raters per item, made up from a hash
        ratings = os.path.join(tmp, "ratings.csv")
        with open(ratings, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["participant", "condition", "batch", "item", "position", "rating", "emotion"])
            for i, x in enumerate(lines):
                for k in range(2):
                    h = int(hashlib.sha256(f"{x['prompt_id']}|{x['source']}|{k}".encode()).hexdigest(), 16)
                    w.writerow([f"p{(i + k) % 37}", x["source"], i // 10, x["prompt_id"], i % 10, 1 + h % 3,
                                x["emotion"]])
        out = os.path.join(OUT, "demo")
        shutil.rmtree(out, ignore_errors=True)
        analyze("--layout", "long", "--ratings", ratings, "--responses", os.path.join(demo, "responses.jsonl"),
                "--out", out)
        REPORTS.append(("demo", os.path.join(out, "report.html")))

        m = {}
        for row in read_table(out, "style.csv"):
            m[(row["source"], row["feature"])] = float(row["mean"])

        def f(src, feat):
            return m[(src, feat)]

        models = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")
        others = lambda me: [s for s in models if s != me]
        # fake-warm: emojis, exclamation marks, "you"
        for s in others("fake-warm"):
            assert f("fake-warm", "emojis_per_100w") > 1 and f(s, "emojis_per_100w") == 0, (s, m)
            assert f("fake-warm", "exclamations_per_100w") > 2 * f(s, "exclamations_per_100w") + 1, (s, m)
            assert f("fake-warm", "second_person_per_100w") > f(s, "second_person_per_100w"), (s, m)
        # fake-formal: most sentences, apologies, no '!'
        for s in others("fake-formal"):
            assert f("fake-formal", "sentences") > f(s, "sentences") + 1, (s, m)
            assert f("fake-formal", "apology_per_100w") > f(s, "apology_per_100w"), (s, m)
        assert f("fake-formal", "exclamations_per_100w") == 0
        # fake-brief: one sentence, fewest words, no question
        for s in others("fake-brief"):
            assert f("fake-brief", "words") < f(s, "words"), (s, m)
        assert f("fake-brief", "sentences") == 1 and f("fake-brief", "has_question") == 0
        # fake-curious: the questions
        for s in others("fake-curious"):
            assert f("fake-curious", "questions_per_100w") > f(s, "questions_per_100w") + 2, (s, m)
        assert f("fake-curious", "has_question") == 1

        kw = {r["feature"]: r for r in read_table(out, "style_tests.csv")}
        for feat in ("words", "sentences", "exclamations_per_100w", "questions_per_100w", "emojis_per_100w",
                     "apology_per_100w"):
            assert num(kw[feat]["p"]) < 1e-10, (feat, kw[feat])

        agr = read_table(out, "agreement.csv")[0]
        alpha = num(agr["alpha"])
        assert -1 <= alpha <= 1 and int(agr["pairable_units"]) == 1000, agr  # random ratings: near 0
        assert abs(alpha) < 0.2, agr
        conds = [r["condition"] for r in read_table(out, "conditions.csv")]
        assert conds[0] == "human" and len(conds) == 5, conds
        emo = read_table(out, "emotions.csv")
        assert len(emo) == 32 * 5, len(emo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- judge section

def test_judge_report():
    import judge_synth
    import test_analyze_design as td
    tmp = tempfile.mkdtemp(prefix="empqtest-judge-report-")
    try:
        rows = td.simulate(5, n_part=20, distinct=True)
        ratings = os.path.join(tmp, "ratings.csv")
        td.write_long(ratings, rows)
        jrows = judge_synth.judge_rows([{**r, "rating": int(r["rating"]), "text": "words " * (5 + i % 50)}
                                        for i, r in enumerate(rows)],
                                       [("fake-lenient", 0.7, 0.5, 2), ("fake-noisy", 0.5, 0.0, 1)])
        judge = os.path.join(tmp, "judge.csv")
        judge_synth.write_csv(judge, jrows)
        out = os.path.join(OUT, "judge")
        shutil.rmtree(out, ignore_errors=True)
        analyze("--layout", "long", "--ratings", ratings, "--judge", judge, "--estimate", "m2", "--human-subset",
                "50", "--out", out)
        REPORTS.append(("judge", os.path.join(out, "report.html")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- Chromium

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def test_html_in_chromium():
    exe = next((p for p in CHROMIUM if os.access(p, os.X_OK)), None)
    if exe is None:
        raise Skip("chromium is not installed (apt-get install chromium)")
    if not REPORTS:
        raise Skip("no report.html was made (the tests above skipped)")
    for name, html in REPORTS:
        with open(html, encoding="utf-8") as f:
            text = f.read()
        assert "<svg" in text and "<script" not in text.lower(), html
        for attr in ("src=\"http", "href=\"http", "url(http", "@import"):
            assert attr not in text, f"{html} refers to an outside asset ({attr})"
        shot = os.path.join(OUT, f"report-{name}.png")
        if os.path.exists(shot):
            os.unlink(shot)
        profile = tempfile.mkdtemp(prefix="empqtest-chromium-")
        try:
            r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                                "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                                "--window-size=1200,2000", "file://" + os.path.abspath(html)],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        log = r.stdout + r.stderr
        console = [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
        assert not console, f"console messages for {html}:\n" + "\n".join(console)
        assert r.returncode == 0, f"chromium exited {r.returncode}:\n{log[-3000:]}"
        assert os.path.exists(shot) and os.path.getsize(shot) > 20000, f"no screenshot at {shot}:\n{log[-3000:]}"
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", shot
        if name == "judge":
            judge_dom(exe, html)
        print(f"   screenshot {shot} ({os.path.getsize(shot)} bytes)", file=sys.stderr)


def judge_dom(exe, html):
    """The judge section as the browser built it: its heading, the agreement
    tables and the charts (confusion matrix, bias, estimate) of each judge."""
    profile = tempfile.mkdtemp(prefix="empqtest-chromium-")
    try:
        r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--dump-dom",
                            "file://" + os.path.abspath(html)],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    dom = r.stdout
    assert r.returncode == 0 and "</html>" in dom, f"chromium --dump-dom exited {r.returncode}:\n{r.stderr[-2000:]}"
    sec = dom[dom.index('id="judge"'):]
    for k, judge in enumerate(("fake-lenient", "fake-noisy")):
        sub = sec[sec.index(f'id="judge-{k}"'):]
        assert judge in sub[:200], (judge, sub[:200])
        for needle in ("<table", "kappa (quadratic)", "alpha (ordinal)", "Spearman rho", f't-judge-confusion-{k}',
                       f't-judge-bias-{k}', f't-judge-length-{k}', f't-judge-estimate-{k}',
                       "prediction-powered"):
            assert needle in sub, f"the judge section of {judge} in the browser lacks {needle}"
    assert sec.count("<svg") >= 8 and sec.count("<rect") >= 18, "the judge charts are missing"
    print(f"   judge section in the browser: {sec.count('<table')} tables, {sec.count('<svg')} charts",
          file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    ran = 0
    for t in (test_welivita_vs_scipy, test_demo_style, test_judge_report, test_html_in_chromium):
        print(f"-- {t.__name__}", file=sys.stderr, flush=True)
        try:
            t()
            ran += 1
            print("   ok", file=sys.stderr, flush=True)
        except Skip as e:
            print(f"   SKIP: {e}", file=sys.stderr, flush=True)
    if ran == 0:
        print("SKIP: every part skipped", file=sys.stderr)
        sys.exit(SKIP)
    print("ok", file=sys.stderr)


if __name__ == "__main__":
    main()
