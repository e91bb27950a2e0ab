"""Independent references for the design-respecting figures and the judge
agreement of `empq analyze` (docs/analysis.md), with /usr/bin/python3:

- glm_cluster: statsmodels GLM(y, X, family=Binomial()).fit(cov_type="cluster",
  cov_kwds={"groups": g}) (python3-statsmodels);
- ordered_logit: statsmodels OrderedModel(y, X, distr="logit").fit(), cut-points
  from its threshold parameters;
- kappa: sklearn.metrics.cohen_kappa_score(a, b, weights=...) (python3-sklearn);
- alpha_ordinal: Krippendorff's alpha for ordinal data written from
  Krippendorff's definition (coincidences within units, the ordinal metric),
  as the krippendorff package is not in Debian;
- spearman: scipy.stats.spearmanr; icc1: the one-way ANOVA formula with numpy;
  holm / bh: statsmodels multipletests.

When statsmodels or sklearn is not installed (deploy/bootstrap.sh installs
them for the tests), FALLBACK says so and the same quantity is computed from
its textbook definition with numpy/scipy instead (a maximum-likelihood fit
by scipy.optimize with analytic gradients, the sandwich written out, the
kappa from its pairwise-disagreement form), so the check still runs and
still compares against code that shares nothing with empq's.
"""
import math

import numpy as np
from scipy import optimize, stats

FALLBACK = []

try:
    import statsmodels.api as sm
    from statsmodels.miscmodels.ordinal_model import OrderedModel
    from statsmodels.stats.multitest import multipletests
except ImportError:  # pragma: no cover - depends on the machine
    sm = None
    FALLBACK.append("statsmodels (python3-statsmodels) is absent: GLM, OrderedModel and multipletests "
                    "replaced by scipy.optimize fits and written-out formulas")
try:
    from sklearn.metrics import cohen_kappa_score
except ImportError:  # pragma: no cover
    cohen_kappa_score = None
    FALLBACK.append("sklearn (python3-sklearn) is absent: cohen_kappa_score replaced by the pairwise form")


def glm_cluster(y, X, groups):
    """(params, naive se, cluster se) of a logit of y on X with errors clustered by groups."""
    y = np.asarray(y, float)
    X = np.asarray(X, float)
    if sm is not None:
        naive = sm.GLM(y, X, family=sm.families.Binomial()).fit()
        clu = sm.GLM(y, X, family=sm.families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": np.asarray(groups)})
        return np.asarray(clu.params), np.asarray(naive.bse), np.asarray(clu.bse)

    def nll(b):
        eta = X @ b
        return -(y * eta - np.logaddexp(0, eta)).sum()

    def grad(b):
        p = 1 / (1 + np.exp(-(X @ b)))
        return -X.T @ (y - p)

    b = optimize.minimize(nll, np.zeros(X.shape[1]), jac=grad, method="BFGS",
                          options={"gtol": 1e-11, "maxiter": 10000}).x
    p = 1 / (1 + np.exp(-(X @ b)))
    H = (X * (p * (1 - p))[:, None]).T @ X
    Hi = np.linalg.inv(H)
    u = X * (y - p)[:, None]
    _, gi = np.unique(np.asarray(groups), return_inverse=True)
    S = np.zeros((gi.max() + 1, X.shape[1]))
    np.add.at(S, gi, u)
    G, n, k = S.shape[0], X.shape[0], X.shape[1]
    V = Hi @ (S.T @ S) @ Hi * G / (G - 1) * (n - 1) / (n - k)
    return b, np.sqrt(np.diag(Hi)), np.sqrt(np.diag(V))


def ordered_logit(y, X):
    """(betas, cut-points) of P(y <= j) = logistic(c_j - X b), y in 1..J."""
    y = np.asarray(y, int)
    X = np.asarray(X, float)
    J = y.max()
    if sm is not None:
        res = OrderedModel(y, X, distr="logit").fit(method="bfgs", disp=False, maxiter=5000, gtol=1e-11)
        k = X.shape[1]
        th = res.params[k:]
        cuts = np.cumsum(np.r_[th[0], np.exp(th[1:])])
        return np.asarray(res.params[:k]), cuts
    k = X.shape[1]
    F = stats.logistic.cdf

    def unpack(t):
        return t[:k], np.cumsum(np.r_[t[k], np.exp(t[k + 1:])])

    def nll(t):
        b, c = unpack(t)
        eta = X @ b
        cc = np.r_[-np.inf, c, np.inf]
        pr = F(cc[y] - eta) - F(cc[y - 1] - eta)
        return -np.log(pr).sum()

    q = np.cumsum(np.bincount(y, minlength=J + 1)[1:])[:-1] / len(y)
    c0 = np.log(q / (1 - q))
    t0 = np.r_[np.zeros(k), c0[0], np.log(np.diff(c0))]
    t = optimize.minimize(nll, t0, method="BFGS", options={"gtol": 1e-10, "maxiter": 10000}).x
    t = optimize.minimize(nll, t, method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-13, "maxiter": 20000}).x
    return unpack(t)


def kappa(a, b, weights=None):
    if cohen_kappa_score is not None:
        return float(cohen_kappa_score(a, b, weights=weights))
    a = np.asarray(a)
    b = np.asarray(b)
    w = {None: lambda d: (d != 0) * 1.0, "linear": lambda d: np.abs(d) * 1.0, "quadratic": lambda d: d * d * 1.0}[weights]
    return float(1 - w(a - b).mean() / w(a[:, None] - b[None, :]).mean())


def alpha_ordinal(units):
    """Krippendorff's alpha, ordinal metric: units is a list of lists of values
    (the values one unit got); units with fewer than two values are left out."""
    units = [u for u in units if len(u) >= 2]
    cats = sorted({v for u in units for v in u})
    ix = {c: i for i, c in enumerate(cats)}
    K = len(cats)
    o = np.zeros((K, K))
    for u in units:
        m = len(u)
        for i in range(m):
            for j in range(m):
                if i != j:
                    o[ix[u[i]], ix[u[j]]] += 1.0 / (m - 1)
    nc = o.sum(axis=1)
    n = nc.sum()
    d = np.zeros((K, K))
    for c in range(K):
        for k in range(K):
            lo, hi = min(c, k), max(c, k)
            d[c, k] = (nc[lo:hi + 1].sum() - (nc[c] + nc[k]) / 2) ** 2
    do = (o * d).sum()
    de = (np.outer(nc, nc) * d).sum() / (n - 1)
    return float(1 - do / de)


def spearman(a, b):
    return float(stats.spearmanr(a, b).correlation)


def icc1(y, groups):
    y = np.asarray(y, float)
    g = np.asarray(groups)
    labs = np.unique(g)
    N, G = len(y), len(labs)
    means = {l: y[g == l].mean() for l in labs}
    ns = np.array([(g == l).sum() for l in labs])
    msb = sum(ns[i] * (means[l] - y.mean()) ** 2 for i, l in enumerate(labs)) / (G - 1)
    msw = sum(((y[g == l] - means[l]) ** 2).sum() for l in labs) / (N - G)
    n0 = (N - (ns ** 2).sum() / N) / (G - 1)
    return float((msb - msw) / (msb + (n0 - 1) * msw))


def adjust(p, method):
    p = np.asarray(p, float)
    if sm is not None:
        return multipletests(p, method={"holm": "holm", "bh": "fdr_bh"}[method])[1]
    m = len(p)
    o = np.argsort(p, kind="mergesort")
    ps = p[o]
    if method == "holm":
        adj = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * ps))
    else:
        adj = np.minimum(1, np.minimum.accumulate((m * ps / np.arange(1, m + 1))[::-1])[::-1])
    out = np.empty(m)
    out[o] = adj
    return out


def agree(what, got, want, sig=6):
    """got equals want to sig significant digits (both NaN counts as equal)."""
    g = float("nan") if got in ("NA", None) else float(got)
    w = float(want)
    if math.isnan(w) or math.isnan(g):
        assert math.isnan(w) and math.isnan(g), f"{what}: empq {got}, reference {want}"
        return
    if w == 0 or g == 0:
        assert abs(g - w) < 10 ** -(sig + 3), f"{what}: empq {got}, reference {want}"
        return
    rel = abs(g - w) / abs(w)
    assert rel <= 0.5 * 10 ** (1 - sig), f"{what}: empq {got}, reference {want!r} (relative difference {rel:.3g})"
