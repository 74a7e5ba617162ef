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
    p_metafor: float  # metafor ranktest()$pval (exact Kendall P without ties)

    def to_dict(self) -> dict:
        return asdict(self)


def _standardized(yi: NDArray, vi: NDArray) -> NDArray:
    w = 1 / vi
    theta = np.sum(w * yi) / np.sum(w)
    return (yi - theta) / np.sqrt(vi - 1 / np.sum(w))


def _ties(x: NDArray) -> NDArray:
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def begg_test(yi: ArrayLike, vi: ArrayLike) -> BeggResult:
    """Begg & Mazumdar (1994, Biometrics 50:1088-1101) rank correlation test.

    Standardized effects ``t_i = (y_i - mu_FE) / sqrt(v_i - 1/sum w)`` (``w = 1/v``) are
    rank-correlated with ``v_i`` by Kendall's score ``S = sum_{i<j} sgn((v_i-v_j)(t_i-t_j))``.
    ``metabias, begg`` (program ``ktau2``) reports
    ``z_cc = (|S| - 1) / sd(S)``, ``P = 2 (1 - Phi(z_cc))`` (``P = 1`` when ``S = 0``) with
    ``sd(S)^2 = k(k-1)(2k+5)/18`` without ties. With ties ``ktau2`` computes
    ``[NN(2k+5) - (xt - yt) + xt3 yt3/(9 NN (k-2)) + xt2 yt2/(2 NN)] / 18``, ``NN = k(k-1)``,
    which is reproduced verbatim although it differs from Kendall's textbook correction
    (sign of ``yt``; the last two terms divided by 18).

    metafor's ``ranktest`` uses the same ``t_i`` and ``v_i`` but ``cor.test(method="kendall")``:
    ``tau`` is tau-b and the P value is exact when there are no ties (R's ``exact=TRUE``) and
    otherwise normal without continuity correction using the textbook tie correction; both
    are returned (``tau_b``, ``p_metafor``). Hand-written because scipy's ``kendalltau`` does
    not expose S nor Stata's continuity correction; scipy gives the exact P.
    """
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    k = y.size
    if k < 2 or v.shape != y.shape:
        raise ValueError("need at least 2 studies")
    ts = _standardized(y, v)
    x = v
    i, j = np.triu_indices(k, 1)
    s = float(np.sum(np.sign((x[i] - x[j]) * (ts[i] - ts[j]))))
    nn = k * (k - 1)
    tx, ty = _ties(x), _ties(ts)
    xt, yt = np.sum(tx * (tx - 1) * (2 * tx + 5)), np.sum(ty * (ty - 1) * (2 * ty + 5))
    xt2, yt2 = np.sum(tx * (tx - 1)), np.sum(ty * (ty - 1))
    xt3, yt3 = np.sum(tx * (tx - 1) * (tx - 2)), np.sum(ty * (ty - 1) * (ty - 2))
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
    # metafor / R cor.test
    if not (tx.size or ty.size):
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

    def to_dict(self) -> dict:
        return asdict(self)


def egger_test(yi: ArrayLike, vi: ArrayLike, level: float = 0.95) -> EggerResult:
    """Egger et al. (1997, BMJ 315:629-634) regression test.

    OLS of the standard normal deviate ``y_i/se_i`` on precision ``1/se_i`` (statsmodels OLS);
    the intercept ("bias") is t-tested on ``k - 2`` df: ``metabias, egger`` (``regress y x``;
    ``p_bias = 2*ttail(df_r, |b0/se0|)``). Algebraically the same t as metafor's
    ``regtest(yi, vi, model="lm")`` (weighted ``lm(yi ~ sei, weights = 1/vi)``, test of sei).
    """
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    k = y.size
    if k < 3:
        raise ValueError("Egger's test needs at least 3 studies")
    se = np.sqrt(v)
    fit = sm.OLS(y / se, sm.add_constant(1 / se)).fit()
    b0, s0 = float(fit.params[0]), float(fit.bse[0])
    df = int(fit.df_resid)
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
        slope=float(fit.params[1]),
    )
