"""Pooled proportions with the Freeman-Tukey double arcsine transform, as Stata's ``metaprop, ftt``.

Verified in ``metaprop.ado`` (Nyaga, Arbyn & Aerts 2014, Arch Public Health 72:39; SSC copy in
labordynamicsinstitute/ssc-mirror ``fmwww.bc.edu/repec/bocode/m/metaprop.ado``), programs
``iv_init``, ``iv`` and ``_disptab``:

* ``t_i = asin(sqrt(x/(n+1))) + asin(sqrt((x+1)/(n+1)))``, ``se_i = sqrt(1/(n+0.5))``;
* ``random`` = DerSimonian-Laird (Q around the inverse-variance estimate), but with fewer than
  3 studies ``metaprop`` silently falls back to the fixed-effect model
  (``if "`method'"=="Random" & ($S_8<2) local method "Fixed"``);
* Wald CI on the transformed scale; back-transform by Miller (1978, Am Stat 32:138) with
  ``n`` = the harmonic mean of the study sizes (``ameans``), set to 0 below the transform of
  0/n and to 1 above the transform of n/n;
* study CIs: Wilson score (``cimethod`` default ``score``), truncated to [0, 1];
* metaprop's z-test with ``ftt`` is ``|t - t(0/hmean)| / se`` (a test of p = 0).

metafor's ``escalc(measure="PFT")`` uses half of ``t`` (variance ``1/(4n+2)``), so its tau^2 is a
quarter of Stata's; Q, I^2 and the back-transformed estimate and CI are identical
(``transf.ipft.hm`` is the same Miller formula on metafor's scale).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from . import _validate
from .effects import EffectSizes
from .pooling import PooledEstimate, dersimonian_laird, inverse_variance_fixed


def freeman_tukey(x: ArrayLike, n: ArrayLike) -> EffectSizes:
    """Freeman-Tukey double arcsine ``t = asin(sqrt(x/(n+1))) + asin(sqrt((x+1)/(n+1)))``.

    Variance ``1/(n + 0.5)`` (Freeman & Tukey 1950, Ann Math Stat 21:607-611; Stata
    ``metaprop, ftt``). No continuity correction is needed for x = 0 or x = n. Equals twice
    metafor's ``escalc(measure="PFT")`` yi, with 4 times its vi. Hand-written (two lines):
    statsmodels has no double arcsine transform. ValueError naming the study for a missing or
    negative count, ``n <= 0`` and ``x > n`` (metafor's checks; like metafor, fractional
    counts are accepted, since the back-transform evaluates it at the harmonic mean of n).
    """
    x, n = _validate.vector("x", x), _validate.vector("n", n)
    _validate.same_length(x=x, n=n)
    for name, arr in (("x", x), ("n", n)):
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            i = _validate.first_bad(bad)
            raise ValueError(f"{name} of study {i} is {float(arr[i])!r}: counts must be given and not negative")
    if np.any(n <= 0):
        i = _validate.first_bad(n <= 0)
        raise ValueError(f"n of study {i} is {n[i]:g}: group sizes must be positive")
    _validate.events_within(x, n, "x", "n")
    t = np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1)))
    return EffectSizes(yi=t, vi=1 / (n + 0.5), kept=np.ones(t.shape, dtype=bool))


def _single_group(x: ArrayLike, n: ArrayLike, add: float) -> tuple[NDArray, NDArray]:
    """Checked events ``x`` of ``n`` with metafor's default zero-cell rule for one group.

    A study with ``x = 0`` or ``x = n`` gets ``add`` (1/2) added to its events and to its
    non-events (so ``n`` grows by ``2 * add``): ``escalc``'s ``add=1/2, to="only0"``.
    ValueError naming the study for missing, negative or fractional counts, ``n <= 0``,
    ``x > n`` and a non-positive ``add``.
    """
    checked = _validate.counts(x=x, n=n)
    x, n = checked["x"], checked["n"]
    if np.any(n <= 0):
        i = _validate.first_bad(n <= 0)
        raise ValueError(f"n of study {i} is {n[i]:g}: group sizes must be positive")
    _validate.events_within(x, n, "x", "n")
    if not (np.isfinite(add) and add > 0):
        raise ValueError(f"the value added to zero cells must be positive; got {add!r}")
    plus = np.where((x == 0) | (x == n), add, 0.0)
    return x + plus, n + 2 * plus


def raw_proportion(x: ArrayLike, n: ArrayLike, add: float = 0.5) -> EffectSizes:
    """Raw proportion ``yi = x/n`` with ``vi = yi (1 - yi) / n``.

    metafor's ``escalc(measure="PR")`` with its defaults: a study with ``x = 0`` or ``x = n``
    has 1/2 added to events and non-events first (see :func:`_single_group`), so its variance
    is positive. Back-transform: none (the identity).
    """
    x_, n_ = _single_group(x, n, add)
    yi = x_ / n_
    return EffectSizes(yi=yi, vi=yi * (1 - yi) / n_, kept=np.ones(yi.shape, dtype=bool))


def logit_proportion(x: ArrayLike, n: ArrayLike, add: float = 0.5) -> EffectSizes:
    """Logit of a proportion ``yi = log(x / (n - x))`` with ``vi = 1/x + 1/(n - x)``.

    metafor's ``escalc(measure="PLO")`` with its defaults (1/2 added to events and non-events
    of a study with ``x = 0`` or ``x = n``; see :func:`_single_group`). Back-transform:
    :func:`expit` (metafor's ``transf.ilogit``).
    """
    x_, n_ = _single_group(x, n, add)
    yi = np.log(x_ / (n_ - x_))
    return EffectSizes(yi=yi, vi=1 / x_ + 1 / (n_ - x_), kept=np.ones(yi.shape, dtype=bool))


def expit(t: ArrayLike) -> NDArray[np.float64]:
    """Inverse logit ``1 / (1 + exp(-t))`` (scipy.special.expit; metafor ``transf.ilogit``)."""
    from scipy.special import expit as _expit

    return np.asarray(_expit(np.asarray(t, float)), float)


def harmonic_mean(n: ArrayLike) -> float:
    """Harmonic mean ``k / sum(1/n_i)`` (Stata ``ameans`` r(mean_h); metafor ``transf.ipft.hm``)."""
    n = np.asarray(n, float)
    return float(n.size / np.sum(1 / n))


def miller_inverse(t: ArrayLike, n: float) -> NDArray[np.float64]:
    """Miller's inverse of the double arcsine: proportion from ``t`` for sample size ``n``.

    ``p = 1/2 [1 - sgn(cos t) sqrt(1 - (sin t + (sin t - 1/sin t)/n)^2)]``
    (Miller 1978, Am Stat 32:138), set to 0 when ``t`` is below the transform of 0/n and to 1
    above the transform of n/n, exactly as ``metaprop`` and metafor's ``transf.ipft.hm``
    (which applies it to ``2 * yi``) do.
    """
    t = np.atleast_1d(np.asarray(t, float))
    lo = float(freeman_tukey(0, n).yi[0])
    hi = float(freeman_tukey(n, n).yi[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sin(t)
        inner = 1 - (s + (s - 1 / s) / n) ** 2
        p = 0.5 * (1 - np.sign(np.cos(t)) * np.sqrt(np.clip(inner, 0, None)))
    p = np.where(t < lo, 0.0, np.where(t > hi, 1.0, p))
    return np.clip(p, 0.0, 1.0)


def wilson_ci(x: ArrayLike, n: ArrayLike, level: float = 0.95) -> tuple[NDArray, NDArray]:
    """Per-study Wilson score interval (statsmodels ``proportion_confint(method="wilson")``).

    Identical to ``metaprop``'s default ``cimethod(score)`` formula; clipped to [0, 1].
    """
    _validate.check_level(level)
    lo, hi = proportion_confint(np.asarray(x, float), np.asarray(n, float), alpha=1 - level, method="wilson")
    return np.clip(np.asarray(lo, float), 0, 1), np.clip(np.asarray(hi, float), 0, 1)


@dataclass(frozen=True)
class PooledProportion:
    """Back-transformed pooled proportion (0-1 scale) with the transformed-scale analysis."""

    proportion: float
    ci_lower: float
    ci_upper: float
    model: str  # "random" or "fixed" (metaprop's fallback when k < 3)
    harmonic_n: float
    z: float  # metaprop's test of p = 0 on the transformed scale
    p: float
    transformed: PooledEstimate  # Stata scale: estimate, se, tau2 (4x metafor's), Q, I2, weights

    def to_dict(self) -> dict:
        return asdict(self)


def pooled_proportion(x: ArrayLike, n: ArrayLike, level: float = 0.95, min_k_random: int = 3) -> PooledProportion:
    """Random-effects (DL) pooled proportion on the Freeman-Tukey scale, back-transformed.

    ``metaprop x n, random ftt`` (see module docstring). Pass ``min_k_random=1`` to keep the
    random-effects model for 1-2 studies (metafor's behaviour) instead of metaprop's fallback.
    """
    _validate.check_level(level)
    es = freeman_tukey(x, n)
    k = es.yi.size
    if k >= min_k_random:
        res, model = dersimonian_laird(es.yi, es.vi, level=level), "random"
    else:
        res, model = inverse_variance_fixed(es.yi, es.vi, level=level), "fixed"
    hm = harmonic_mean(n)
    est, lo, hi = miller_inverse([res.estimate, res.ci_lower, res.ci_upper], hm)
    t0 = float(freeman_tukey(0, hm).yi[0])
    z = max(res.estimate - t0, 0.0) / res.se
    return PooledProportion(
        proportion=float(est),
        ci_lower=float(lo),
        ci_upper=float(hi),
        model=model,
        harmonic_n=hm,
        z=float(z),
        p=float(2 * stats.norm.sf(z)),
        transformed=res,
    )
