"""Random-effects pooling by the DerSimonian-Laird method, as Stata's ``metan, random``.

Written by hand rather than taken from ``statsmodels.stats.meta_analysis.combine_effects``
because that function (statsmodels 0.14 and 0.15) does not floor the DL tau^2 at zero: when
Q < df it returns a negative tau^2 and random-effects weights that can be negative
(``tests/test_stats_unit.py::test_statsmodels_combine_effects_negative_tau2`` shows it), and
because Stata's ``metan, rr random`` computes Q around the Mantel-Haenszel estimate, which
statsmodels has no option for (see :func:`rr_random_effects`).
``tests/test_stats_metafor.py`` checks every output against metafor's ``rma(method="DL")``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from . import _validate


@dataclass(frozen=True)
class PooledEstimate:
    """Result of a random-effects meta-analysis (on the analysis scale, e.g. log RR).

    ``note`` is None for an ordinary result; where the analysis is undefined (e.g. a
    leave-one-out subset without an informative study) the numbers are NaN and ``note`` says
    why. ``to_dict`` leaves ``note`` out when it is None, so ordinary results keep their keys.
    """

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    z: float
    p: float
    q: float
    df: int
    q_p: float
    tau2: float
    i2: float  # percent, 0-100
    k: int
    weights: tuple[float, ...]  # percent, summing to 100, in input order (empty in leave-one-out rows)
    note: str | None = None
    h2: float = float("nan")  # H^2 as metafor reports it (see :func:`meta_analysis`)
    method: str = "DL"  # estimator of tau^2 (metafor's method): EE, DL, REML or PM
    test: str = "z"  # "z" (normal) or "knha" (Hartung-Knapp: t on df, z holds the t statistic)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["note"] is None:
            del d["note"]
        return d

    @classmethod
    def undefined(cls, note: str, k: int = 0) -> PooledEstimate:
        """All statistics NaN, with the reason in ``note``."""
        nan = float("nan")
        return cls(nan, nan, nan, nan, nan, nan, nan, max(k - 1, 0), nan, nan, nan, k, (), note)


def cochran_q(yi: ArrayLike, vi: ArrayLike, centre: float | None = None) -> float:
    """Cochran's heterogeneity statistic ``Q = sum w_i (y_i - centre)^2`` with ``w_i = 1/v_i``.

    ``centre`` defaults to the inverse-variance fixed-effect estimate
    ``sum w_i y_i / sum w_i`` (Cochran 1954, Biometrics 10:101-129); Stata's ``metan`` passes
    the Mantel-Haenszel estimate for ratio measures pooled with ``random``.
    """
    y, w = np.asarray(yi, float), 1 / np.asarray(vi, float)
    if centre is None:
        centre = float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w * (y - centre) ** 2))


def _dl_denominator(w: NDArray) -> float:
    """``sum w - sum w^2 / sum w`` (the DL denominator; ``tr P`` of the intercept-only model)."""
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    if w.size > 1 and not c > 1e-4 * np.sum(w):
        # one weight holds over 99.99 % of the total (naive c then keeps < 12 digits; at a
        # variance ratio of 1e16 it cancelled to 0 and tau2 was NaN or inf). Same quantity as
        # 2 sum_{i<j} w_i w_j / sum w, a sum of positive terms; kept as a fallback so ordinary
        # inputs keep their exact floating-point results.
        c = 2 * np.sum(w[1:] * np.cumsum(w)[:-1]) / np.sum(w)
    return c


def _dl_fit(y: NDArray, v: NDArray, q: float | None = None) -> tuple[float, float, float, float, NDArray]:
    """DerSimonian-Laird core on validated vectors: ``(mu, se, Q, tau2, random weights)``.

    Shared by :func:`dersimonian_laird` and the leave-one-out loop, so both do the same
    floating-point operations in the same order (leave-one-out rows equal full refits bit for bit).
    """
    k = y.size
    w = 1 / v
    q_value = cochran_q(y, v) if q is None else float(q)
    c = _dl_denominator(w)
    tau2 = float(max(0.0, (q_value - (k - 1)) / c)) if k > 1 else 0.0
    w_star = 1 / (v + tau2)
    mu = float(np.sum(w_star * y) / np.sum(w_star))
    se = float(1 / np.sqrt(np.sum(w_star)))
    return mu, se, q_value, tau2, w_star


def _fe_fit(y: NDArray, v: NDArray) -> tuple[float, float, float, float, NDArray]:
    """Inverse-variance fixed-effect core: ``(mu, se, Q, 0, weights)`` (see :func:`_dl_fit`)."""
    w = 1 / v
    mu = float(np.sum(w * y) / np.sum(w))
    se = float(1 / np.sqrt(np.sum(w)))
    q_value = float(np.sum(w * (y - mu) ** 2))
    return mu, se, q_value, 0.0, w


def _summaries(
    fits: list[tuple[float, float, float, float]],
    ks: list[int],
    crit: float,
    weights: list[NDArray | None],
    fixed: bool = False,
) -> list[PooledEstimate]:
    """CI, z-test, Q's P, I^2 and H^2 around fitted ``(mu, se, Q, tau2)``; ``weights`` None gives ``()``.

    ``H^2`` as metafor: ``Q / df`` for the fixed-effect model (``fixed``), ``1 / (1 - I^2)`` =
    ``max(1, Q / df)`` for DL (= ``tau^2 / s^2 + 1``, see :func:`meta_analysis`); 1 when ``k = 1``.

    Vectorised over fits (scipy's ``sf`` costs ~0.4 ms a call, which dominated a leave-one-out
    of 10,000 studies); the same elementwise operations as one fit at a time.
    """
    mu, se, q, _ = (np.array(col, dtype=float) for col in zip(*fits, strict=True))
    df = np.array(ks) - 1
    z = mu / se
    p = 2 * stats.norm.sf(np.abs(z))
    q_p = np.full(len(fits), np.nan)
    pos = df > 0
    if pos.any():
        q_p[pos] = stats.chi2.sf(q[pos], df[pos])
    out = []
    for j, ((mu_j, se_j, q_j, tau2_j), k, w) in enumerate(zip(fits, ks, weights, strict=True)):
        i2 = max(0.0, (q_j - (k - 1)) / q_j) * 100 if (k > 1 and q_j > 0) else 0.0
        if k == 1:
            h2 = 1.0
        elif fixed:
            h2 = q_j / (k - 1)
        else:
            h2 = max(1.0, q_j / (k - 1))
        out.append(
            PooledEstimate(
                estimate=mu_j,
                se=se_j,
                ci_lower=mu_j - crit * se_j,
                ci_upper=mu_j + crit * se_j,
                z=float(z[j]),
                p=float(p[j]),
                q=q_j,
                df=k - 1,
                q_p=float(q_p[j]),
                tau2=float(tau2_j),
                i2=float(i2),
                k=k,
                weights=() if w is None else tuple(float(x) for x in 100 * w / np.sum(w)),
                h2=float(h2),
                method="EE" if fixed else "DL",
            )
        )
    return out


def _summary(
    mu: float,
    se: float,
    q_value: float,
    tau2: float,
    k: int,
    crit: float,
    weights: NDArray | None,
    fixed: bool = False,
) -> PooledEstimate:
    """:func:`_summaries` of one fit."""
    return _summaries([(mu, se, q_value, tau2)], [k], crit, [weights], fixed)[0]


def z_crit(level: float) -> float:
    """``z_{1-alpha/2}`` for a two-sided ``level`` in (0, 1) (ValueError otherwise)."""
    return float(stats.norm.ppf(1 - (1 - _validate.check_level(level)) / 2))


def dersimonian_laird(yi: ArrayLike, vi: ArrayLike, q: float | None = None, level: float = 0.95) -> PooledEstimate:
    """DerSimonian-Laird random-effects meta-analysis.

    With fixed-effect weights ``w_i = 1/v_i`` and ``k`` studies::

        tau^2 = max(0, (Q - (k - 1)) / (sum w_i - sum w_i^2 / sum w_i))
        w*_i  = 1 / (v_i + tau^2)
        mu    = sum w*_i y_i / sum w*_i,      SE(mu) = 1 / sqrt(sum w*_i)
        CI    = mu -/+ z_{1-alpha/2} SE,      z = mu / SE,  P = 2 (1 - Phi(|z|))
        I^2   = max(0, (Q - (k - 1)) / Q) * 100   (Higgins & Thompson 2002)

    DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials
    1986;7:177-188. Same as metafor's ``rma(yi, vi, method="DL")`` (z-test) and Stata's
    ``metan ..., random``. ``q`` overrides the inverse-variance Q (pass the Q around the
    Mantel-Haenszel estimate to mimic ``metan ..., rr random``). Weights are percentages of
    ``sum w*_i``, as printed in forest plots. With ``k = 1`` the study itself is returned
    (tau^2 = 0, Q = 0, df = 0, I^2 = 0, Q's P undefined: NaN).

    ValueError (naming the study) for an empty input, vectors of different lengths, a
    non-finite ``yi``, a ``vi`` that is not finite and positive, a negative or non-finite ``q``
    and a ``level`` outside (0, 1).
    """
    crit = z_crit(level)
    y, v = _validate.effects_and_variances(yi, vi, what="a meta-analysis")
    if q is not None and not (np.isfinite(q) and q >= 0):
        raise ValueError(f"Q must be finite and not negative; got {q!r}")
    mu, se, q_value, tau2, w_star = _dl_fit(y, v, q)
    return _summary(mu, se, q_value, tau2, y.size, crit, w_star)


def mantel_haenszel_log_rr(a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike) -> float:
    """Mantel-Haenszel pooled log relative risk.

    ``RR_MH = sum(a_i n2_i / N_i) / sum(c_i n1_i / N_i)`` with ``N_i = n1_i + n2_i``
    (Greenland & Robins 1985, Biometrics 41:55-68), on the cell counts given (pass the
    zero-cell-corrected counts to follow Stata's ``metan``).
    """
    a, n1, c, n2 = (np.asarray(x, float) for x in (a, n1, c, n2))
    big_n = n1 + n2
    return float(np.log(np.sum(a * n2 / big_n) / np.sum(c * n1 / big_n)))


def inverse_variance_fixed(yi: ArrayLike, vi: ArrayLike, level: float = 0.95) -> PooledEstimate:
    """Inverse-variance fixed-effect (common-effect) meta-analysis.

    ``mu = sum w_i y_i / sum w_i`` with ``w_i = 1/v_i``, ``SE = 1/sqrt(sum w_i)``, Wald CI and
    z-test; Q, its P and I^2 as in :func:`dersimonian_laird`; ``tau2`` is 0. Same as metafor's
    ``rma(yi, vi, method="EE")`` (``"FE"`` in metafor < 3.0) and Stata's ``metan ..., fixedi``;
    ``metaprop`` uses it when a random-effects analysis has fewer than 3 studies.
    Written by hand (a few lines) so that it returns the same :class:`PooledEstimate` as DL.
    Inputs are checked as in :func:`dersimonian_laird`.
    """
    crit = z_crit(level)
    y, v = _validate.effects_and_variances(yi, vi, what="a meta-analysis")
    mu, se, q_value, tau2, w = _fe_fit(y, v)
    return _summary(mu, se, q_value, tau2, y.size, crit, w, fixed=True)


def rr_random_effects(
    a: ArrayLike,
    n1: ArrayLike,
    c: ArrayLike,
    n2: ArrayLike,
    heterogeneity: str = "mh",
    cc: float = 0.5,
    level: float = 0.95,
) -> PooledEstimate:
    """DerSimonian-Laird pooled log relative risk exactly as Stata's ``metan a b c d, rr random``.

    Steps (``metan.ado`` v3.04, ``program define RR`` and ``program define iv``):

    1. Zero-cell rule of :func:`~metabuild.stats.effects.zero_cell_corrected` (``cc`` added to
       all four cells of a study with a zero cell; double-zero / double-all / empty-arm studies
       dropped).
    2. Study log RRs ``y_i`` and variances ``v_i = 1/a - 1/n1 + 1/c - 1/n2`` on corrected cells.
    3. ``heterogeneity="mh"`` (metan's ``random``): the Mantel-Haenszel pooled log RR
       (Greenland & Robins 1985) is computed **on the corrected cells** and Cochran's
       ``Q = sum (y_i - log RR_MH)^2 / v_i``; ``heterogeneity="iv"`` (metan's ``randomi``): Q
       around the inverse-variance fixed-effect estimate (= metafor ``rma(method="DL")``).
    4. ``tau^2 = max(0, (Q - (k-1)) / (sum w - sum w^2 / sum w))`` with ``w = 1/v_i``; random
       weights ``1/(v_i + tau^2)``; z-based CI and test; ``I^2 = max(0, (Q - df)/Q)``.

    With one informative study metan switches ``D+L`` to ``M-H``, whose Greenland-Robins
    variance for one table equals ``v_1``, so the study itself is returned (as
    :func:`dersimonian_laird` does for ``k = 1``).

    metafor equivalent of ``"mh"``: ``rma.mh(..., add=c(1/2,1/2), to=c("only0","only0"),
    drop00=c(TRUE,TRUE))$QE`` is this Q; ``rma(yi, vi, tau2=<that tau^2>)`` gives the rest.
    Hand-written because no Python library offers a DL tau^2 computed from the M-H Q.
    Returns the log-scale :class:`PooledEstimate`; ``weights`` cover the kept studies only
    (in input order).

    ValueError for invalid counts (see :func:`~metabuild.stats.effects.zero_cell_corrected`:
    missing, negative, fractional, events above the group size), for an unknown
    ``heterogeneity``, a ``level`` outside (0, 1), and when no study is informative (all
    double-zero, double-all or empty-arm): there is nothing to pool.
    """
    from .effects import log_risk_ratio, zero_cell_corrected

    if heterogeneity not in ("mh", "iv"):
        raise ValueError('heterogeneity must be "mh" (metan random) or "iv" (metan randomi)')
    _validate.check_level(level)
    es = log_risk_ratio(a, n1, c, n2, cc)
    if not np.any(es.kept):
        raise ValueError(
            "no informative study: every study has no events in both arms, events in every patient "
            "of both arms, or an empty arm"
        )
    yi, vi = es.yi[es.kept], es.vi[es.kept]
    if heterogeneity == "iv" or yi.size == 1:
        return dersimonian_laird(yi, vi, level=level)
    a_, n1_, c_, n2_, kept = zero_cell_corrected(a, n1, c, n2, cc)
    mh = mantel_haenszel_log_rr(a_[kept], n1_[kept], c_[kept], n2_[kept])
    return dersimonian_laird(yi, vi, q=cochran_q(yi, vi, centre=mh), level=level)


#: pooling methods a configuration may name (metafor's ``method``; "FE" is its name for "EE"
#: before metafor 3.0) and the tests of the pooled estimate (metafor's ``test``)
METHODS = ("EE", "FE", "DL", "REML", "PM")
TESTS = ("z", "knha")


def generalised_q(tau2: float, yi: ArrayLike, vi: ArrayLike) -> float:
    """``Q(tau^2) = sum w_i (y_i - mu(tau^2))^2`` with ``w_i = 1/(v_i + tau^2)``, ``mu`` their
    weighted mean: Cochran's Q at ``tau^2 = 0``, decreasing in ``tau^2`` (metafor ``.QE.func``)."""
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


#: the bracket of a tau^2 root is widened by doubling up to this bound (as in metareg)
_TAU2_MAX = 1e300
_BRENT = dict(xtol=float(np.finfo(float).tiny), rtol=4 * float(np.finfo(float).eps), maxiter=2000)


def tau2_paule_mandel(yi: ArrayLike, vi: ArrayLike) -> float:
    """Paule-Mandel tau^2: the root of ``Q(tau^2) = k - 1`` (:func:`generalised_q`), 0 when
    ``Q(0) <= k - 1`` or ``k = 1``.

    Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand
    1982;87:377-385; Viechtbauer et al. 2015 (Res Synth Methods 6:195-205) for the
    profile formulation metafor's ``rma(method="PM")`` solves with ``uniroot``. Here scipy's
    ``brentq`` to a relative tolerance of 4 machine epsilons (metafor's default ``tol`` is
    ``eps^0.25``, about 1e-4; the tests pass ``control=list(tol=1e-12)``); the bracket's upper
    end starts at ``max(var(y), mean(v))`` and doubles until ``Q < k - 1`` (metafor stops at
    ``tau2.max = max(100, 10 mad(y)^2)``). RuntimeError past 1e300. Inputs as
    :func:`dersimonian_laird`.
    """
    from scipy import optimize

    y, v = _validate.effects_and_variances(yi, vi, what="a meta-analysis")
    target = y.size - 1
    if target == 0 or generalised_q(0.0, y, v) <= target:
        return 0.0
    hi = max(float(np.var(y)), float(np.mean(v)), float(np.finfo(float).tiny))
    while generalised_q(hi, y, v) > target:
        hi *= 2
        if hi > _TAU2_MAX:
            raise RuntimeError(f"Paule-Mandel tau2 did not bracket below {_TAU2_MAX:g}")
    return float(optimize.brentq(lambda t: generalised_q(t, y, v) - target, 0.0, hi, **_BRENT))


def tau2_reml(yi: ArrayLike, vi: ArrayLike) -> float:
    """Restricted maximum-likelihood tau^2 of the intercept-only model, truncated at 0.

    :func:`metabuild.stats.metareg.reml_tau2` with the design a column of ones: the root of
    the REML score ``sum w_i^2 (y_i - mu)^2 = sum w_i - sum w_i^2 / sum w_i`` with
    ``w_i = 1/(v_i + tau^2)`` by scipy's ``brentq`` (Viechtbauer 2005, J Educ Behav Stat
    30:261-293; metafor ``rma(method="REML")``, which iterates Fisher scoring to an absolute
    change of 1e-5 by default). 0 for ``k = 1``. Inputs as :func:`dersimonian_laird`.
    """
    from .metareg import reml_tau2

    y, v = _validate.effects_and_variances(yi, vi, what="a meta-analysis")
    return reml_tau2(y, v, np.ones((y.size, 1)))


def tau2_dersimonian_laird(yi: ArrayLike, vi: ArrayLike) -> float:
    """DerSimonian-Laird tau^2 ``max(0, (Q - (k-1)) / (sum w - sum w^2/sum w))`` (see
    :func:`dersimonian_laird`)."""
    y, v = _validate.effects_and_variances(yi, vi, what="a meta-analysis")
    return _dl_fit(y, v)[3]


def meta_analysis(
    yi: ArrayLike, vi: ArrayLike, method: str = "DL", test: str = "z", level: float = 0.95
) -> PooledEstimate:
    """Fixed- or random-effects meta-analysis as metafor's ``rma(yi, vi, method=, test=)``.

    ``method``: ``"EE"`` (or ``"FE"``) inverse-variance common effect (tau^2 = 0),
    ``"DL"`` DerSimonian-Laird, ``"REML"`` (:func:`tau2_reml`), ``"PM"`` Paule-Mandel
    (:func:`tau2_paule_mandel`). With ``w*_i = 1/(v_i + tau^2)``::

        mu = sum w*_i y_i / sum w*_i,   SE = 1 / sqrt(sum w*_i),   CI = mu -/+ z SE  (test "z")

    ``test="knha"`` (Hartung & Knapp 2001, Stat Med 20:3875-3889; Sidik & Jonkman 2002,
    Stat Med 21:3153-3159): ``SE_HK = SE sqrt(q)``, ``q = sum w*_i (y_i - mu)^2 / (k - 1)``
    (not truncated at 1: metafor's ``"knha"``, not its ``"adhoc"``; ``q = 0`` when the sum is
    below machine epsilon, as metafor), t statistic (held in ``z``), P and CI from the t
    distribution on ``k - 1`` df. With ``k = 1`` the z-test is used and ``test`` says so, as
    metafor does ("Setting argument test="z" since k=1").

    Heterogeneity as metafor reports it: Q with weights ``1/v_i`` and its chi^2 P on ``k - 1``
    df (NaN when ``k = 1``; metafor prints 1); for EE ``I^2 = max(0, (Q - df)/Q)`` and
    ``H^2 = Q/df``; for the random-effects methods, with the typical within-study variance
    ``s^2 = (k - 1) / (sum w - sum w^2/sum w)``, ``I^2 = tau^2 / (tau^2 + s^2)`` and
    ``H^2 = tau^2 / s^2 + 1`` (Higgins & Thompson 2002, Stat Med 21:1539-1558; for DL these
    equal the Q-based forms, which DL keeps). ``k = 1``: tau^2 = 0, I^2 = 0, H^2 = 1.

    ``method="DL"`` and ``"EE"`` with the z-test return exactly :func:`dersimonian_laird` and
    :func:`inverse_variance_fixed`. ValueError for an unknown method or test and for the
    inputs :func:`dersimonian_laird` refuses.
    """
    import dataclasses

    if method not in METHODS:
        raise ValueError(f"unknown pooling method {method!r}; one of {', '.join(METHODS)}")
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; one of {', '.join(TESTS)}")
    crit = z_crit(level)
    y, v = _validate.effects_and_variances(yi, vi, what="a meta-analysis")
    k = y.size
    method = "EE" if method == "FE" else method
    if k == 1:
        test = "z"
    if method == "EE":
        base = inverse_variance_fixed(y, v, level=level)
    elif method == "DL":
        base = dersimonian_laird(y, v, level=level)
    else:
        tau2 = tau2_reml(y, v) if method == "REML" else tau2_paule_mandel(y, v)
        w_star = 1 / (v + tau2)
        mu = float(np.sum(w_star * y) / np.sum(w_star))
        se = float(1 / np.sqrt(np.sum(w_star)))
        base = _summary(mu, se, cochran_q(y, v), tau2, k, crit, w_star)
        if k > 1:
            s2 = (k - 1) / _dl_denominator(1 / v)
            base = dataclasses.replace(base, i2=float(100 * tau2 / (s2 + tau2)), h2=float(tau2 / s2 + 1))
    base = dataclasses.replace(base, method=method, test=test)
    if test == "z":
        return base
    df = k - 1
    rss = float(np.sum((y - base.estimate) ** 2 / (v + base.tau2)))
    s2w = 0.0 if rss <= np.finfo(float).eps else rss / df
    se = base.se * float(np.sqrt(s2w))
    t_crit = float(stats.t.ppf(1 - (1 - level) / 2, df))
    with np.errstate(divide="ignore"):
        t_stat = float(np.divide(base.estimate, se))
    return dataclasses.replace(
        base,
        se=se,
        ci_lower=base.estimate - t_crit * se,
        ci_upper=base.estimate + t_crit * se,
        z=t_stat,
        p=float(2 * stats.t.sf(abs(t_stat), df)),
    )
