"""analyze_reference: the figures of `empq analyze` recomputed with csv and
scipy.stats, used only inside tests/integration/test_analyze.py.

    ref = reference("dataset_and_ratings.csv", "out/tables/style_values.csv")

Ratings come straight from the Welivita-Pu CSV (rating_<condition>
columns, 1 = Bad, 2 = Okay, 3 = Good). The style tests take the
per-response feature values empq wrote (tables/style_values.csv): the
tokenisation is empq's own (docs/analysis.md), the test of difference is
checked here; the raw '!' and '?' counts are checked against the texts.

Needs numpy and scipy (Debian python3-numpy, python3-scipy): import errors
propagate so the caller can skip.
"""

import csv
import math
import sys

import numpy as np
from scipy import stats

RATINGS = (1, 2, 3)


def holm(pvalues):
    """Holm's step-down adjustment (statsmodels multipletests 'holm')."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(idx, key=lambda i: (pvalues[i], i))
    m = len(order)
    out = [math.nan] * len(pvalues)
    run = 0.0
    for j, i in enumerate(order):
        run = max(run, min(1.0, (m - j) * pvalues[i]))
        out[i] = run
    return out


def chi2(table):
    """Pearson chi-square without continuity correction, and Cramer's V."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return {"statistic": math.nan, "df": 0, "p": math.nan, "cramers_v": math.nan}
    stat, p, dof, _ = stats.chi2_contingency(t, correction=False)
    v = stats.contingency.association(t.astype(int), method="cramer", correction=False)
    return {"statistic": float(stat), "df": int(dof), "p": float(p), "cramers_v": float(v)}


def reference(csv_path, style_values_path=None, baseline="human"):
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    conds = [c[len("rating_"):] for c in rows[0].keys() if c.startswith("rating_")]
    ratings = {c: [int(r["rating_" + c]) for r in rows if r["rating_" + c].strip()] for c in conds}
    out = {"conditions": {}, "pairwise": {}, "sentiment_tests": {}, "style_tests": {}, "style_counts": []}

    base = ratings[baseline]
    p_good_base = base.count(3) / len(base)
    for c in conds:
        x = ratings[c]
        n = len(x)
        out["conditions"][c] = {
            "n": n,
            "share_bad": x.count(1) / n, "share_okay": x.count(2) / n, "share_good": x.count(3) / n,
            "mean_rating": float(np.mean(x)), "sd_rating": float(np.std(x, ddof=1)),
            "good_increase_vs_baseline": math.nan if c == baseline else (x.count(3) / n - p_good_base) / p_good_base,
        }

    table = [[ratings[c].count(v) for v in RATINGS] for c in conds]
    out["overall"] = chi2(table)

    others = [c for c in conds if c != baseline]
    for c in others:
        ch = chi2([[ratings[c].count(v) for v in RATINGS], [base.count(v) for v in RATINGS]])
        mw = stats.mannwhitneyu(ratings[c], base, alternative="two-sided", method="asymptotic",
                                use_continuity=True)
        out["pairwise"][c] = {"chi2": ch["statistic"], "chi2_df": ch["df"], "chi2_p": ch["p"],
                              "cramers_v": ch["cramers_v"], "mwu_u": float(mw.statistic),
                              "mwu_p": float(mw.pvalue)}
    for key, holm_key in (("chi2_p", "chi2_p_holm"), ("mwu_p", "mwu_p_holm")):
        adj = holm([out["pairwise"][c][key] for c in others])
        for c, a in zip(others, adj):
            out["pairwise"][c][holm_key] = a

    for c in conds:
        t = []
        for s in ("positive", "negative"):
            vals = [int(r["rating_" + c]) for r in rows if r["sentiment"] == s and r["rating_" + c].strip()]
            t.append([vals.count(v) for v in RATINGS])
        ch = chi2(t)
        out["sentiment_tests"][c] = {"chi2": ch["statistic"], "df": ch["df"], "p": ch["p"],
                                     "cramers_v": ch["cramers_v"]}

    if style_values_path:
        with open(style_values_path, newline="", encoding="utf-8") as f:
            vals = list(csv.DictReader(f))
        features = [k for k in vals[0].keys() if k not in ("index", "source", "simulated") and not k.startswith("n_")]
        sources = list(dict.fromkeys(v["source"] for v in vals))
        for feat in features:
            groups = [[float(v[feat]) for v in vals if v["source"] == s] for s in sources]
            try:
                h, p = stats.kruskal(*groups)
                out["style_tests"][feat] = {"kruskal_h": float(h), "p": float(p)}
            except ValueError:  # all numbers identical
                out["style_tests"][feat] = {"kruskal_h": math.nan, "p": math.nan}
        # the texts in empq's order: row by row, condition by condition
        texts = []
        for r in rows:
            for c in conds:
                t = r.get("response_" + c)
                if t:
                    texts.append((c, t))
        out["style_counts"] = [{"source": c, "n_exclamations": t.count("!"), "n_questions": t.count("?")}
                               for c, t in texts]
    return out


if __name__ == "__main__":
    import json
    print(json.dumps(reference(*sys.argv[1:]), indent=1, default=str))
