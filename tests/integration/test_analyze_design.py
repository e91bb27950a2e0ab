"""`empq analyze`: the figures that respect the design, and the judge
agreement, against independent implementations (design_reference.py:
statsmodels GLM with participant-clustered errors and OrderedModel, sklearn's
cohen_kappa_score, Krippendorff's ordinal alpha from its definition, scipy's
spearmanr), to 6 significant digits.

- test_generated_design: a long-layout file with a known participant effect
  (3 conditions, 60 raters each, 10 dialogues per rater, random rater
  leniency on the logit scale): the logit fit (estimates, naive and clustered
  SEs), the ordinal fit, the ICC and the Holm / BH adjustments agree with the
  references; the clustered SE is larger than the naive one.
- test_null_rejection: 150 seeded files with no condition effect but a strong
  rater effect: the naive chi-square rejects at 5% far more often than 5%,
  the participant-clustered Wald test close to 5%.
- test_generated_judge: known answers (a judge equal to the human: every
  agreement 1; a constant judge: kappas 0) and a random judge checked against
  the references; `--estimate` (60 responses seen by the judges only) against
  the prediction-powered mean estimator written out with numpy; the refusals
  of bad judge files and options.
- test_welivita_design / test_welivita_judge: need EMPQ_TEST_DATA: the
  released file's figures (ICC of Good 0.10-0.12 in the GPT-4 conditions,
  clustered SEs about 25% larger, the +31.3% increase with a rater-bootstrap
  interval of about [23%, 40%]) and the fits against the references; a
  synthetic judge (judge_synth.py: human labels with seeded noise) against
  the references for every statistic, overall and per condition.
"""
import csv
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import design_reference as ref
import judge_synth
from empqtest import BIN, Skip, program

SKIP = 77
OUT = os.environ.get("EMPQ_TEST_OUT") or os.path.join(os.path.dirname(BIN), "test-output", "test_analyze_design")


def analyze(*args, check=True):
    r = subprocess.run([program("empq"), "analyze", *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"empq analyze {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def table(out, name):
    with open(os.path.join(out, "tables", name), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def long_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_long(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["participant", "condition", "batch", "item", "position", "rating", "emotion"])
        for r in rows:
            w.writerow([r["participant"], r["condition"], r["batch"], r["item"], r["position"], r["rating"],
                        r["emotion"]])


def simulate(seed, n_part=60, effect=(0.0, 0.5, 0.7), sd_rater=1.0, items=10, n_items=200, distinct=False):
    """Ratings in the long layout: rater p of condition c rates `items`
    dialogues; latent = effect[c] + u_p + e_i + logistic noise; cut at -1, 0.6."""
    rng = random.Random(seed)
    diff = [rng.gauss(0, 0.5) for _ in range(n_items)]
    emotions = ["sad", "joyful", "afraid", "proud"]
    rows = []
    for c, eff in enumerate(effect):
        for p in range(n_part):
            u = rng.gauss(0, sd_rater)
            batch = p % (n_items // items) if distinct else rng.randrange(n_items // items)
            for k in range(items):
                it = batch * items + k
                z = eff + u + diff[it] + math.log(1 / rng.random() - 1) * -1
                v = 1 if z < -1 else 2 if z < 0.6 else 3
                rows.append({"participant": f"c{c}p{p}", "condition": ["human", "m1", "m2"][c][: 5],
                             "batch": batch, "item": f"d{it}", "position": k, "rating": v,
                             "emotion": emotions[it % 4]})
    return rows


def check_fits(out, rows, base="human"):
    """tables/design_fits.csv against the references on the same ratings."""
    conds = []
    for r in rows:
        if r["condition"] not in conds:
            conds.append(r["condition"])
    others = [c for c in conds if c != base]
    y = np.array([int(r["rating"]) for r in rows])
    D = np.array([[1.0 * (r["condition"] == c) for c in others] for r in rows])
    X = np.c_[np.ones(len(rows)), D]
    g = [r["participant"] for r in rows]
    b, se, sec = ref.glm_cluster((y == 3) * 1.0, X, g)
    fits = {(f["model"], f["parameter"]): f for f in table(out, "design_fits.csv")}
    names = ["intercept"] + [f"condition:{c}" for c in others]
    for i, nm in enumerate(names):
        f = fits[("logit_good", nm)]
        ref.agree(f"logit {nm} estimate", f["estimate"], b[i])
        ref.agree(f"logit {nm} naive SE", f["se_naive"], se[i])
        ref.agree(f"logit {nm} clustered SE", f["se_cluster"], sec[i])
    ob, cuts = ref.ordered_logit(y, D)
    for i, c in enumerate(others):
        ref.agree(f"ordinal condition:{c}", fits[("ordinal_logit", f"condition:{c}")]["estimate"], ob[i])
    ref.agree("ordinal cut 1|2", fits[("ordinal_logit", "cut:1|2")]["estimate"], cuts[0])
    ref.agree("ordinal cut 2|3", fits[("ordinal_logit", "cut:2|3")]["estimate"], cuts[1])
    # ICC of Good per condition
    dc = {r["condition"]: r for r in table(out, "design_conditions.csv")}
    for c in conds:
        sub = [r for r in rows if r["condition"] == c]
        ref.agree(f"ICC {c}", dc[c]["icc_good"], ref.icc1([int(r["rating"]) == 3 for r in sub],
                                                          [r["participant"] for r in sub]))
    return dc, fits


def test_generated_design():
    tmp = tempfile.mkdtemp(prefix="empqtest-design-")
    try:
        rows = simulate(14)
        path = os.path.join(tmp, "gen.csv")
        write_long(path, rows)
        out = os.path.join(OUT, "generated")
        shutil.rmtree(out, ignore_errors=True)
        analyze("--layout", "long", "--ratings", path, "--out", out)
        dc, fits = check_fits(out, rows)
        for c in ("m1", "m2"):
            ratio = float(dc[c]["se_ratio"])
            assert ratio > 1.2, (c, ratio)  # a rater sd of 1 on the logit scale: clearly clustered
            assert 0.05 < float(dc[c]["icc_good"]) < 0.4, dc[c]
            lo, hi = float(dc[c]["increase_boot_lo95"]), float(dc[c]["increase_boot_hi95"])
            assert lo < float(dc[c]["good_increase_vs_baseline"]) < hi, dc[c]
        # per-emotion adjustments against multipletests
        emo = table(out, "emotion_tests.csv")
        for c in ("m1", "m2"):
            sub = [e for e in emo if e["condition"] == c]
            p = [float(e["p"]) for e in sub]
            for e, h, b in zip(sub, ref.adjust(p, "holm"), ref.adjust(p, "bh")):
                ref.agree(f"Holm {c} {e['emotion']}", e["p_holm"], h)
                ref.agree(f"BH {c} {e['emotion']}", e["p_bh"], b)
        print(f"   generated: se ratio {dc['m1']['se_ratio'][:6]}, {dc['m2']['se_ratio'][:6]}; "
              f"ICC {dc['human']['icc_good'][:6]}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_null_rejection():
    """No condition effect, a strong rater effect: how often p < 0.05."""
    tmp = tempfile.mkdtemp(prefix="empqtest-null-")
    reps, chi2, naive, clustered = 150, 0, 0, 0
    try:
        for s in range(reps):
            rows = simulate(1000 + s, n_part=30, effect=(0.0, 0.0), sd_rater=1.5)
            path = os.path.join(tmp, "null.csv")
            write_long(path, rows)
            out = os.path.join(tmp, "out")
            analyze("--layout", "long", "--ratings", path, "--out", out)
            chi2 += float(table(out, "pairwise.csv")[0]["chi2_p"]) < 0.05  # today's chi-square, 2 x 3
            dc = [r for r in table(out, "design_conditions.csv") if r["is_baseline"] == "0"][0]
            naive += float(dc["p_naive"]) < 0.05
            clustered += float(dc["p_cluster"]) < 0.05
        rx, rn, rc = chi2 / reps, naive / reps, clustered / reps
        print(f"   null rejection at 5%: chi-square {rx:.3f}, naive logit {rn:.3f}, participant-clustered logit "
              f"{rc:.3f} ({reps} seeded files, 30 raters x 10 dialogues per condition, rater sd 1.5)", file=sys.stderr)
        assert rx > 0.15, f"the naive chi-square should be overconfident here: rejection rate {rx}"
        assert rn > 0.15, f"the naive logit should be overconfident here: rejection rate {rn}"
        assert rc < 0.10, f"the clustered test should hold its level: rejection rate {rc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def judge_checks(out, pairs_by_group, judge):
    """judge_agreement.csv rows of judge against the references; pairs_by_group:
    {(breakdown, group): [(human, judge_label), ...]}."""
    got = {}
    for r in table(out, "judge_agreement.csv"):
        if r["judge"] == judge:
            got[(r["breakdown"], r["group"], r["statistic"])] = r
    for (kind, group), pairs in pairs_by_group.items():
        h = np.array([p[0] for p in pairs])
        j = np.array([p[1] for p in pairs])
        want = {"exact_agreement": float((h == j).mean()),
                "kappa": ref.kappa(h, j), "kappa_linear": ref.kappa(h, j, "linear"),
                "kappa_quadratic": ref.kappa(h, j, "quadratic"),
                "krippendorff_alpha_ordinal": ref.alpha_ordinal([[a, b] for a, b in pairs]),
                "spearman_rho": ref.spearman(h, j), "judge_minus_human_mean": float(j.mean() - h.mean())}
        for stat, w in want.items():
            row = got[(kind, group, stat)]
            assert int(row["n"]) == len(pairs), (kind, group, row["n"], len(pairs))
            ref.agree(f"{judge} {kind} {group} {stat}", row["value"], w)
    return got


def test_generated_judge():
    tmp = tempfile.mkdtemp(prefix="empqtest-judge-")
    try:
        rows = simulate(7, n_part=20, distinct=True)  # one rating per (condition, dialogue)
        path = os.path.join(tmp, "gen.csv")
        write_long(path, rows)
        rng = random.Random(3)
        jrows = []
        for r in rows:
            h = int(r["rating"])
            for name, lab in (("same", h), ("always-good", 3), ("noisy", h if rng.random() < 0.6 else rng.choice([1, 2, 3]))):
                jrows.append({"item": r["item"], "condition": r["condition"], "judge": name, "sample": 1,
                              "label": ["Bad", "Okay", "Good"][lab - 1] if name == "noisy" else lab,
                              "emotion": r["emotion"], "sentiment": "", "length": 5 + (h * 7) % 40})
        # 60 responses of m2 that only the judges saw (no human rating): the unlabelled set of --estimate
        extra = {}
        for k in range(60):
            for name in ("same", "always-good", "noisy"):
                lab = 3 if name == "always-good" else rng.choice([1, 2, 3])
                extra[(name, f"x{k}")] = lab
                jrows.append({"item": f"x{k}", "condition": "m2", "judge": name, "sample": 1, "label": lab,
                              "emotion": "sad", "sentiment": "", "length": 12})
        jpath = os.path.join(tmp, "judge.csv")
        judge_synth.write_csv(jpath, jrows)
        out = os.path.join(OUT, "generated-judge")
        shutil.rmtree(out, ignore_errors=True)
        analyze("--layout", "long", "--ratings", path, "--judge", jpath, "--out", out)
        # the judge tables conform to their schemas (docs/schemas/, docs/outputs.md)
        from test_outputs_schema import SCHEMAS, check_table
        for name in ("judge_agreement", "judge_confusion", "judge_self", "design_conditions", "design_fits",
                     "emotion_tests"):
            with open(os.path.join(SCHEMAS, name + ".schema.json"), encoding="utf-8") as f:
                assert check_table(os.path.join(out, "tables", name + ".csv"), json.load(f)) > 0, name
        got = {(r["judge"], r["breakdown"], r["group"], r["statistic"]): r for r in table(out, "judge_agreement.csv")}
        # known answers
        for stat in ("exact_agreement", "kappa", "kappa_linear", "kappa_quadratic", "krippendorff_alpha_ordinal",
                     "spearman_rho"):
            assert float(got[("same", "all", "all", stat)]["value"]) == 1.0, got[("same", "all", "all", stat)]
        for stat in ("kappa", "kappa_linear", "kappa_quadratic"):
            assert float(got[("always-good", "all", "all", stat)]["value"]) == 0.0, stat
        assert got[("always-good", "all", "all", "spearman_rho")]["value"] == "NA"
        share_good = np.mean([int(r["rating"]) == 3 for r in rows])
        ref.agree("constant judge exact agreement", got[("always-good", "all", "all", "exact_agreement")]["value"],
                  share_good)
        # the noisy judge against the references, overall and per condition
        lab = {(x["condition"], x["item"]): x["label"] for x in jrows if x["judge"] == "noisy"}
        lab = {k: {"Bad": 1, "Okay": 2, "Good": 3}.get(v, v) for k, v in lab.items()}
        groups = {("all", "all"): []}
        for r in rows:
            p = (int(r["rating"]), lab[(r["condition"], r["item"])])
            groups[("all", "all")].append(p)
            groups.setdefault(("condition", r["condition"]), []).append(p)
            groups.setdefault(("emotion", r["emotion"]), []).append(p)
        judge_checks(out, groups, "noisy")
        conf = [r for r in table(out, "judge_confusion.csv") if r["judge"] == "noisy" and r["breakdown"] == "all"]
        allp = groups[("all", "all")]
        for r in conf:
            hv = ["Bad", "Okay", "Good"].index(r["human"]) + 1
            jv = ["Bad", "Okay", "Good"].index(r["judge_label"]) + 1
            assert int(r["count"]) == sum(1 for p in allp if p == (hv, jv)), r
        # prediction-powered estimates of m2 against the mean estimator written out with numpy
        out2 = os.path.join(OUT, "generated-estimate")
        shutil.rmtree(out2, ignore_errors=True)
        analyze("--layout", "long", "--ratings", path, "--judge", jpath, "--estimate", "m2", "--out", out2)
        est = {(r["judge"], r["share"], r["method"]): r for r in table(out2, "judge_estimates.csv")}
        human = [r for r in rows if r["condition"] == "m2"]
        lab_of = {}
        for x in jrows:
            if x["condition"] == "m2":
                v = x["label"]
                lab_of[(x["judge"], x["item"])] = {"Bad": 1, "Okay": 2, "Good": 3}.get(v, v)
        hb = [int(r["rating"]) for r in rows if r["condition"] == "human"]
        for name in ("same", "always-good", "noisy"):
            for v, share in ((1, "Bad"), (2, "Okay"), (3, "Good")):
                y = np.array([int(r["rating"]) == v for r in human], float)
                fl = np.array([lab_of[(name, r["item"])] == v for r in human], float)
                fu = np.array([extra[(name, f"x{k}")] == v for k in range(60)], float)
                theta = fu.mean() + (y - fl).mean()
                se = math.sqrt(fu.var(ddof=1) / len(fu) + (y - fl).var(ddof=1) / len(y))
                r = est[(name, share, "ppi")]
                assert int(r["n_human"]) == len(y) == 200 and int(r["n_judged_only"]) == 60, r
                ref.agree(f"PPI {name} {share}", r["estimate"], theta)
                if se > 0:
                    ref.agree(f"PPI {name} {share} lo", r["lo95"], theta - 1.959963984540054 * se)
                    ref.agree(f"PPI {name} {share} hi", r["hi95"], theta + 1.959963984540054 * se)
                fall = np.r_[fl, fu]
                ref.agree(f"judge-only {name} {share}", est[(name, share, "judge_only")]["estimate"], fall.mean())
                ref.agree(f"human-only {name} {share}", est[(name, share, "human_only")]["estimate"], y.mean())
                pb = np.mean(np.array(hb) == v)
                ref.agree(f"increase {name} {share}", r["increase"], theta / pb - 1)

        # wrong options: a clear error, exit 2
        for args, words in ((["--estimate", "m1"], "need --judge"),
                            (["--judge", jpath, "--estimate", "nope"], "--estimate nope"),
                            (["--judge", jpath, "--estimate", "m1", "--human-subset", "0"], "--human-subset '0'"),
                            (["--judge", jpath, "--seed", "-1"], "--seed '-1'"),
                            (["--judge", os.path.join(tmp, "absent.csv")], "absent.csv")):
            r = analyze("--layout", "long", "--ratings", path, "--out", os.path.join(tmp, "x"), *args, check=False)
            assert r.returncode == 2 and words in r.stderr, (args, r.returncode, r.stderr)
        # bad judge files: a clear error naming file and line
        bad = os.path.join(tmp, "bad.csv")
        for body, words in (("item,condition,judge,label\nd1,human,j,Great\n", "bad.csv:2: label 'Great'"),
                            ("item,condition,judge\nd1,human,j\n", "no 'label' column"),
                            ("item,condition,judge,label,sample\nd1,human,j,1,0\n", "sample '0'"),
                            ("item,condition,judge,label\nd1,human,j,1\nd1,human,j,2\n", "two labels")):
            with open(bad, "w") as f:
                f.write(body)
            r = analyze("--layout", "long", "--ratings", path, "--judge", bad, "--out", os.path.join(tmp, "x"),
                        check=False)
            assert r.returncode == 2 and words in r.stderr, (body, r.returncode, r.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def welivita():
    data = os.environ.get("EMPQ_TEST_DATA")
    if not data:
        raise Skip("EMPQ_TEST_DATA is not set (point it at the shared data folder)")
    path = os.path.join(data, "welivita-pu-2024", "dataset_and_ratings.csv")
    if not os.path.exists(path):
        raise Skip(f"{path} is absent")
    return path


def test_welivita_design():
    path = welivita()
    out = os.path.join(OUT, "welivita-pu")
    shutil.rmtree(out, ignore_errors=True)
    analyze("--ratings", path, "--out", out)
    rows = judge_synth.welivita_rows(path)  # the raters: annotator_<condition>
    dc, fits = check_fits(out, rows)
    for c in ("chatgpt", "chatgpt_empathy"):
        icc, ratio = float(dc[c]["icc_good"]), float(dc[c]["se_ratio"])
        assert 0.10 <= icc <= 0.12, (c, icc)
        assert 1.23 <= ratio <= 1.28, (c, ratio)
        assert int(dc[c]["participants"]) == 200, dc[c]
    e = dc["chatgpt_empathy"]
    assert round(float(e["good_increase_vs_baseline"]) * 100, 1) == 31.3, e
    lo, hi = float(e["increase_boot_lo95"]), float(e["increase_boot_hi95"])
    assert 0.21 <= lo <= 0.25 and 0.38 <= hi <= 0.42, (lo, hi)
    # item-matched: scipy's Wilcoxon on the per-dialogue differences
    from scipy.stats import wilcoxon
    by = {}
    for r in rows:
        by.setdefault(r["item"], {})[r["condition"]] = int(r["rating"])
    for c in ("chatgpt", "chatgpt_empathy"):
        d = [v[c] - v["human"] for v in by.values()]
        w = wilcoxon(d, zero_method="wilcox", correction=False, method="approx")
        ref.agree(f"paired W {c}", dc[c]["paired_wilcoxon"], w.statistic)
        ref.agree(f"paired p {c}", dc[c]["paired_p"], w.pvalue)
    # style, item-matched: the per-text features of style_values.csv (file order: row by row, the
    # conditions in column order) paired by dialogue, against scipy's Wilcoxon
    vals = table(out, "style_values.csv")
    assert len(vals) == 6000 and [v["source"] for v in vals[:3]] == ["human", "chatgpt", "chatgpt_empathy"]
    sp = {(r["source"], r["feature"]): r for r in table(out, "style_paired.csv")}
    for k, c in ((1, "chatgpt"), (2, "chatgpt_empathy")):
        for feat in ("words", "questions_per_100w", "second_person_per_100w", "has_question"):
            d = [float(vals[3 * i + k][feat]) - float(vals[3 * i][feat]) for i in range(2000)]
            w = wilcoxon(d, zero_method="wilcox", correction=False, method="approx")
            r = sp[(c, feat)]
            assert r["baseline"] == "human" and int(r["dialogues"]) == 2000, r
            ref.agree(f"style paired {c} {feat} mean", r["mean_diff"], float(np.mean(d)))
            ref.agree(f"style paired {c} {feat} W", r["wilcoxon"], w.statistic)
            ref.agree(f"style paired {c} {feat} p", r["p"], w.pvalue)
    print("   Welivita-Pu: ICC of Good %s / %s, SE ratio %s / %s, +31.3%% increase, rater-bootstrap [%.1f%%, %.1f%%],"
          " two-way [%.1f%%, %.1f%%]" % (dc["chatgpt"]["icc_good"][:6], e["icc_good"][:6], dc["chatgpt"]["se_ratio"][:6],
                                          e["se_ratio"][:6], lo * 100, hi * 100,
                                          float(e["increase_boot2_lo95"]) * 100, float(e["increase_boot2_hi95"]) * 100),
          file=sys.stderr)


def test_welivita_judge():
    path = welivita()
    tmp = tempfile.mkdtemp(prefix="empqtest-wjudge-")
    try:
        rows = judge_synth.welivita_rows(path)
        judges = [("fake-lenient", 0.7, 0.5, 2), ("fake-noisy", 0.5, 0.0, 1)]
        jpath = os.path.join(tmp, "judge.csv")
        judge_synth.write_csv(jpath, judge_synth.judge_rows(rows, judges))
        out = os.path.join(OUT, "welivita-judge")
        shutil.rmtree(out, ignore_errors=True)
        analyze("--ratings", path, "--judge", jpath, "--estimate", "chatgpt_empathy", "--human-subset", "200",
                "--out", out)
        for name, keep, up, _ in judges:
            groups = {("all", "all"): []}
            for x in rows:
                p = (x["rating"], judge_synth.judge_label(name, keep, up, x["item"], x["condition"], 1, x["rating"]))
                groups[("all", "all")].append(p)
                groups.setdefault(("condition", x["condition"]), []).append(p)
                groups.setdefault(("sentiment", x["sentiment"]), []).append(p)
            judge_checks(out, groups, name)
        from test_outputs_schema import SCHEMAS, check_table
        with open(os.path.join(SCHEMAS, "judge_estimates.schema.json"), encoding="utf-8") as f:
            assert check_table(os.path.join(out, "tables", "judge_estimates.csv"), json.load(f)) == 18
        est = {(r["judge"], r["share"], r["method"]): r for r in table(out, "judge_estimates.csv")}
        for name, *_ in judges:
            r = est[(name, "Good", "ppi")]
            assert int(r["n_human"]) == 200 and int(r["n_judged_only"]) == 1800, r
            assert float(r["lo95"]) < float(r["estimate"]) < float(r["hi95"]), r
        self_ = {r["judge"]: r for r in table(out, "judge_self.csv")}
        assert int(self_["fake-lenient"]["responses_with_two_samples"]) == 6000, self_
        with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
            html = f.read()
        for needle in ('id="judge"', "t-judge-confusion-0", "t-judge-bias-0", "t-judge-estimate-0", "kappa (quadratic)"):
            assert needle in html, f"report.html lacks {needle}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    if ref.FALLBACK:
        for f in ref.FALLBACK:
            print(f"NOTE: {f}", file=sys.stderr)
    ran = 0
    for t in (test_generated_design, test_generated_judge, test_null_rejection, test_welivita_design,
              test_welivita_judge):
        print(f"-- {t.__name__}", file=sys.stderr, flush=True)
        try:
            t()
            ran += 1
            print("   ok", file=sys.stderr, flush=True)
        except Skip as e:
            print(f"   SKIP: {e}", file=sys.stderr, flush=True)
    if ran == 0:
        sys.exit(SKIP)
    print("ok", file=sys.stderr)


if __name__ == "__main__":
    main()
