"""Small-study-effect tests as Stata's ``metabias`` (``begg`` and ``egger`` options).

Verified in ``metabias.ado`` (v2.1 Harbord/Harris 2009, re-released as v3.0 by Fisher 2020
with the ``begg``, ``ktau2`` and ``egger_harbord`` programs unchanged;
labordynamicsinstitute/ssc-mirror ``fmwww.bc.edu/repec/bocode/m/metabias.ado``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import statsmodels.api as sm
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from . import _validate

#: Begg's test uses the exact Kendall P (metafor's ``p_metafor``) below this many studies and
#: the normal approximation from it on: R's ``cor.test(method="kendall")`` default
#: (``exact = n < 50``). metafor's ``ranktest`` asks for the exact P at any k, which is slow
#: (scipy: 4.8 s at k = 1,000) and NaN in R from about k = 200; Stata's ``metabias`` never
#: computes it.
BEGG_EXACT_MAX_K = 49


@dataclass(frozen=True)
class BeggResult:
    k: int
    score: float  # Kendall's S = concordant - discordant pairs
    score_sd: float  # metabias' SD of S (Stata's tie correction)
    z: float  # S / sd
    p: float  # uncorrected normal P (metabias r(p_bias_ncc))
    z_cc: float  # (|S| - 1) / sd, continuity corrected (sign dropped)
    p_cc: float  # metabias' reported P (r(p_bias))
    tau_a: float
    tau_b: float  # = metafor ranktest()$tau
    p_metafor: float  # metafor ranktest(exact = k < 50)$pval: exact Kendall P when k < 50 and no ties
    p_metafor_exact: bool = False  # whether p_metafor is the exact P (else normal approximation)
    note: str | None = None  # why some statistics are NaN (None when all are defined)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["note"] is None:
            del d["note"]
        return d


def _standardized(yi: NDArray, vi: NDArray) -> NDArray:
    if np.ptp(yi) == 0:  # identical effects: exactly 0, not the rounding noise of y - mu_FE
        return np.zeros_like(yi)
    w = 1 / vi
    theta = np.sum(w * yi) / np.sum(w)
    v_star = vi - 1 / np.sum(w)
    close = v_star <= 1e-4 * vi
    if close.any():
        # a study holding > 99.99 % of the weight: v - 1/sum w cancels (to 0 at a variance
        # ratio of 1e16, giving an infinite t). It equals v_i * (sum_{j != i} w_j) / sum w, with
        # the other weights summed without subtraction (prefix + suffix sums).
        prefix = np.concatenate(([0.0], np.cumsum(w)[:-1]))
        suffix = np.concatenate((np.cumsum(w[::-1])[::-1][1:], [0.0]))
        v_star = np.where(close, vi * (prefix + suffix) / np.sum(w), v_star)
    return (yi - theta) / np.sqrt(v_star)


def _ties(x: NDArray) -> NDArray:
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def _kendall_score(x: NDArray, y: NDArray, xt2: float, yt2: float) -> float:
    """Kendall's ``S = sum_{i<j} sgn((x_i - x_j)(y_i - y_j))`` in O(k log k).

    scipy's ``kendalltau`` (tau-b, computed from merge-sort counts of concordant and discordant
    pairs) gives ``S = tau_b * sqrt((n0 - n1)(n0 - n2))`` with ``n0 = k(k-1)/2`` and
    ``n1``, ``n2`` the pairs tied in x and in y; S is an integer, so rounding removes the
    floating-point error (|S| < 5e7 at k = 10,000, far inside double precision). The direct
    sum over all pairs needs k(k-1)/2 terms (400 MB of indices at k = 10,000).
    """
    n0 = x.size * (x.size - 1) / 2
    denom = (n0 - xt2 / 2) * (n0 - yt2 / 2)
    if denom <= 0:  # every pair tied in x or in y: every sign is 0
        return 0.0
    tau_b = float(stats.kendalltau(x, y, method="asymptotic").statistic)
    return float(round(tau_b * np.sqrt(denom)))


def begg_test(yi: ArrayLike, vi: ArrayLike, exact: bool | None = None) -> BeggResult:
    """Begg & Mazumdar (1994, Biometrics 50:1088-1101) rank correlation test.

    Standardized effects ``t_i = (y_i - mu_FE) / sqrt(v_i - 1/sum w)`` (``w = 1/v``) are
    rank-correlated with ``v_i`` by Kendall's score ``S = sum_{i<j} sgn((v_i-v_j)(t_i-t_j))``.
    ``metabias, begg`` (program ``ktau2``) reports
    ``z_cc = (|S| - 1) / sd(S)``, ``P = 2 (1 - Phi(z_cc))`` (``P = 1`` when ``S = 0``) with
    ``sd(S)^2 = k(k-1)(2k+5)/18`` without ties. With ties ``ktau2`` computes
    ``[NN(2k+5) - (xt - yt) + xt3 yt3/(9 NN (k-2)) + xt2 yt2/(2 NN)] / 18``, ``NN = k(k-1)``,
    which is reproduced verbatim although it differs from Kendall's textbook correction
    (sign of ``yt``; the last two terms divided by 18). Stata's P is always the normal one.

    metafor's ``ranktest`` uses the same ``t_i`` and ``v_i`` but ``cor.test(method="kendall")``:
    ``tau`` is tau-b, and the P value is returned as ``p_metafor``: the exact Kendall P when
    there are no ties and ``k <= BEGG_EXACT_MAX_K`` (49; R's ``cor.test`` default
    ``exact = n < 50``), otherwise the normal approximation without continuity correction with
    the textbook tie correction, i.e. ``ranktest(yi, vi, exact = k < 50)``. (metafor's own
    default asks for the exact P at every k; R returns NaN for it from about k = 200.)
    ``exact=True``/``False`` forces either P (``True`` with ties: the normal P, as R).
    ``p_metafor_exact`` says which one was computed. S comes from scipy's O(k log k)
    ``kendalltau`` (see :func:`_kendall_score`); scipy gives the exact P.

    Undefined values: when every standardized effect is equal (identical effects: they are
    set to exactly 0, since ``y_i - mu_FE`` would otherwise be rounding noise whose ranks
    gave a spurious tau of 1 and P of .017 for five identical effects) or every
    variance is equal, all pairs are tied, ``S = 0`` and tau-b and metafor's P are NaN
    (R: "the standard deviation is zero"); ``note`` says so. Stata's formula still gives
    ``p_cc = 1`` for ``S = 0``, which is kept. ValueError for fewer than 2 studies and for
    invalid ``yi``/``vi`` (see :func:`~metabuild.stats.pooling.dersimonian_laird`).
    """
    y, v = _validate.effects_and_variances(yi, vi, min_k=2, what="Begg's test")
    k = y.size
    ts = _standardized(y, v)
    x = v
    nn = k * (k - 1)
    tx, ty = _ties(x), _ties(ts)
    xt, yt = np.sum(tx * (tx - 1) * (2 * tx + 5)), np.sum(ty * (ty - 1) * (2 * ty + 5))
    xt2, yt2 = np.sum(tx * (tx - 1)), np.sum(ty * (ty - 1))
    xt3, yt3 = np.sum(tx * (tx - 1) * (tx - 2)), np.sum(ty * (ty - 1) * (ty - 2))
    s = _kendall_score(x, ts, float(xt2), float(yt2))
    var = nn * (2 * k + 5)
    if tx.size or ty.size:
        var = var - (xt - yt) + (xt3 * yt3 / (9 * nn * (k - 2)) if k > 2 else 0.0) + xt2 * yt2 / (2 * nn)
    sd = float(np.sqrt(var / 18)) if var > 0 else float("nan")
    z = s / sd
    z_cc = (abs(s) - 1) / sd
    p = 1.0 if s == 0 else float(2 * stats.norm.sf(abs(s) / sd))
    p_cc = 1.0 if s == 0 else float(2 * stats.norm.sf(z_cc))
    tau_a = 2 * s / nn
    denom = np.sqrt((nn - xt2) * (nn - yt2))
    tau_b = float(2 * s / denom) if denom > 0 else float("nan")
    ties = bool(tx.size or ty.size)
    use_exact = (k <= BEGG_EXACT_MAX_K if exact is None else bool(exact)) and not ties
    note = None
    if not denom > 0:
        p_r = float("nan")
        which = "standardized effects" if ty.size == 1 and ty[0] == k else "variances"
        note = f"all {which} are equal: Kendall's tau-b and metafor's P are undefined"
    elif use_exact:
        p_r = float(stats.kendalltau(x, ts, method="exact").pvalue)
    else:
        t0 = nn / 2
        s_b = tau_b * np.sqrt((t0 - xt2 / 2) * (t0 - yt2 / 2))
        var_r = (
            (nn * (2 * k + 5) - xt - yt) / 18
            + xt2 * yt2 / (2 * nn)
            + (xt3 * yt3 / (9 * nn * (k - 2)) if k > 2 else 0.0)
        )
        p_r = float(2 * stats.norm.sf(abs(s_b) / np.sqrt(var_r))) if var_r > 0 else float("nan")
    return BeggResult(
        k=k,
        score=s,
        score_sd=sd,
        z=float(z),
        p=p,
        z_cc=float(z_cc),
        p_cc=p_cc,
        tau_a=float(tau_a),
        tau_b=tau_b,
        p_metafor=p_r,
        p_metafor_exact=use_exact,
        note=note,
    )


@dataclass(frozen=True)
class EggerResult:
    k: int
    bias: float  # intercept of y/se on 1/se
    se_bias: float
    t: float
    df: int
    p: float
    ci_lower: float
    ci_upper: float
    slope: float  # = metafor regtest()$est (limit estimate as se -> 0)
    note: str | None = None  # why some statistics are NaN (None when all are defined)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["note"] is None:
            del d["note"]
        return d


#: relative spread of the precisions ``1/se`` below which Egger's regression has no slope to
#: fit (R's ``lm``, which metafor's ``regtest`` calls, drops such a column at tolerance 1e-7).
EGGER_MIN_PRECISION_SPREAD = 1e-7


def egger_test(yi: ArrayLike, vi: ArrayLike, level: float = 0.95) -> EggerResult:
    """Egger et al. (1997, BMJ 315:629-634) regression test.

    OLS of the standard normal deviate ``y_i/se_i`` on precision ``1/se_i`` (statsmodels OLS);
    the intercept ("bias") is t-tested on ``k - 2`` df: ``metabias, egger`` (``regress y x``;
    ``p_bias = 2*ttail(df_r, |b0/se0|)``). Algebraically the same t as metafor's
    ``regtest(yi, vi, model="lm")`` (weighted ``lm(yi ~ sei, weights = 1/vi)``, test of sei).

    Undefined values are NaN with the reason in ``note``:

    * all standard errors equal (relative spread of ``1/se`` below 1e-7): precision is
      collinear with the intercept, so neither the bias nor the slope can be estimated; every
      statistic is NaN (metafor refuses: "Model matrix no longer of full rank"; Stata drops
      the variable). This used to raise an IndexError.
    * a perfect fit (all residuals zero up to rounding, e.g. identical effects): the residual
      variance is 0, so ``se_bias`` is 0 and ``t``, ``p`` and the CI are NaN; ``bias`` and
      ``slope`` are kept, with ``bias`` exactly 0 when all effects are equal (it used to be
      rounding noise with a meaningless P; R warns "essentially perfect fit").

    ValueError for fewer than 3 studies, invalid ``yi``/``vi`` and a ``level`` outside (0, 1).
    """
    _validate.check_level(level)
    y, v = _validate.effects_and_variances(yi, vi, min_k=3, what="Egger's test")
    k = y.size
    df = k - 2
    nan = float("nan")
    se = np.sqrt(v)
    precision = 1 / se
    if np.ptp(precision) <= EGGER_MIN_PRECISION_SPREAD * np.max(precision):
        return EggerResult(k, nan, nan, nan, df, nan, nan, nan, nan, "all standard errors are equal: no regression")
    snd = y / se
    # has_constant="add": add_constant otherwise skips the intercept when 1/se is constant
    fit = sm.OLS(snd, sm.add_constant(precision, has_constant="add")).fit()
    b0, s0, b1 = float(fit.params[0]), float(fit.bse[0]), float(fit.params[1])
    if float(fit.ssr) <= (1e-12 * float(np.linalg.norm(snd))) ** 2:
        if np.ptp(y) == 0:
            b0, b1 = 0.0, float(y[0])
        return EggerResult(k, b0, 0.0, nan, df, nan, nan, nan, b1, "perfect fit: residual variance 0, t undefined")
    crit = float(stats.t.ppf(1 - (1 - level) / 2, df))
    return EggerResult(
        k=k,
        bias=b0,
        se_bias=s0,
        t=b0 / s0,
        df=df,
        p=float(fit.pvalues[0]),
        ci_lower=b0 - crit * s0,
        ci_upper=b0 + crit * s0,
        slope=b1,
    )
