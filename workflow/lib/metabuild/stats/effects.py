"""Study-level effect sizes, as Stata's ``metan`` computes them.

Every function is pure: arrays in, arrays out. Inputs are per-study vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _validate

_F = NDArray[np.float64]


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effects ``yi`` with sampling variances ``vi`` (metafor's names)."""

    yi: NDArray[np.float64]
    vi: NDArray[np.float64]
    #: studies kept (False where a study was dropped, e.g. no events in either arm)
    kept: NDArray[np.bool_]

    @property
    def sei(self) -> NDArray[np.float64]:
        return np.sqrt(self.vi)


def mean_difference(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> EffectSizes:
    """Raw (unstandardised) mean difference, group 1 minus group 2.

    ``yi = m1 - m2`` and ``vi = sd1^2/n1 + sd2^2/n2`` (the unbiased, heteroscedastic
    estimate). This is metafor's ``escalc(measure="MD")`` and Stata's
    ``metan n1 m1 sd1 n2 m2 sd2, nostandard`` (Harris et al. 2008, Stata Journal 8:3-28).

    Refused with a ValueError naming the study, as metafor's ``escalc`` refuses them: a
    negative SD, a group size <= 0, a missing or infinite mean, SD or size.
    """
    m1, sd1, n1, m2, sd2, n2 = _continuous(m1, sd1, n1, m2, sd2, n2)
    yi = m1 - m2
    vi = sd1**2 / n1 + sd2**2 / n2
    return EffectSizes(yi=yi, vi=vi, kept=np.ones(yi.shape, dtype=bool))


def _continuous(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> tuple[_F, _F, _F, _F, _F, _F]:
    """Means, SDs and sizes of two groups as float vectors, checked as metafor's ``escalc``."""
    named = {"m1": m1, "sd1": sd1, "n1": n1, "m2": m2, "sd2": sd2, "n2": n2}
    arrays = {name: _validate.vector(name, x) for name, x in named.items()}
    _validate.same_length(**arrays)
    for name, x in arrays.items():
        bad = ~np.isfinite(x)
        if bad.any():
            i = _validate.first_bad(bad)
            raise ValueError(f"{name} of study {i} is {float(x[i])!r}: must be a finite number")
    for name in ("sd1", "sd2"):
        bad = arrays[name] < 0
        if bad.any():
            i = _validate.first_bad(bad)
            raise ValueError(f"{name} of study {i} is {arrays[name][i]:g}: standard deviations cannot be negative")
    for name in ("n1", "n2"):
        bad = arrays[name] <= 0
        if bad.any():
            i = _validate.first_bad(bad)
            raise ValueError(f"{name} of study {i} is {arrays[name][i]:g}: group sizes must be positive")
    m1, sd1, n1, m2, sd2, n2 = arrays.values()
    return m1, sd1, n1, m2, sd2, n2


def zero_cell_corrected(
    a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike, cc: float = 0.5
) -> tuple[_F, _F, _F, _F, NDArray[np.bool_]]:
    """Stata ``metan``'s zero-cell rule for 2x2 tables (option ``cc(0.5)``, the default).

    A study with a zero cell (no events, or all patients with events, in either arm) gets
    ``cc`` added to all four cells (so each arm size grows by ``2*cc``). A study with no
    events in both arms, or events in every patient of both arms, carries no information
    on the relative risk and is dropped (``kept`` False); so is a study with an empty arm.
    Returns ``(a, n1, c, n2, kept)`` after correction; metafor's
    ``escalc(..., add=1/2, to="only0", drop00=TRUE)`` is the same rule.

    Verified against ``program define RR`` of ``metan.ado`` v3.04 (21Sep2010, the SSC version
    current for Stata 13; labordynamicsinstitute/ssc-mirror
    ``fmwww.bc.edu/repec/bocode/m/metan9.ado``): ``use=2`` (excluded) if ``r1==0 | r2==0`` or
    ``(a==0 & c==0) | (b==0 & d==0)``; ``cc`` added to a, b, c, d if any cell is 0.

    Counts are checked first (ValueError naming the study and the count): missing, negative
    or fractional counts, and events above the group size, are refused. metafor's ``escalc``
    refuses negative counts and events above the group size too, but accepts fractions.
    """
    checked = _validate.counts(a=a, n1=n1, c=c, n2=n2)
    a, n1, c, n2 = checked["a"], checked["n1"], checked["c"], checked["n2"]
    _validate.events_within(a, n1, "a", "n1")
    _validate.events_within(c, n2, "c", "n2")
    if not (np.isfinite(cc) and cc > 0):
        raise ValueError(f"the continuity correction cc must be positive; got {cc!r}")
    b, d = n1 - a, n2 - c
    both_none = (a == 0) & (c == 0)
    both_all = (b == 0) & (d == 0)
    kept = ~(both_none | both_all | (n1 == 0) | (n2 == 0))
    has_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    add = np.where(has_zero & kept, cc, 0.0)
    return a + add, n1 + 2 * add, c + add, n2 + 2 * add, kept


def log_risk_ratio(a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike, cc: float = 0.5) -> EffectSizes:
    """Log relative risk of group 1 (events ``a`` of ``n1``) versus group 2 (``c`` of ``n2``).

    ``yi = log((a/n1) / (c/n2))`` and ``vi = 1/a - 1/n1 + 1/c - 1/n2`` (the delta-method
    variance), after the zero-cell rule of :func:`zero_cell_corrected`. Matches metafor's
    ``escalc(measure="RR", add=1/2, to="only0", drop00=TRUE)`` and Stata's ``metan a b c d, rr``.
    Dropped studies carry NaN (``kept`` False). Invalid counts raise ValueError (see
    :func:`zero_cell_corrected`).
    """
    a_, n1_, c_, n2_, kept = zero_cell_corrected(a, n1, c, n2, cc)
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.where(kept, np.log((a_ / n1_) / (c_ / n2_)), np.nan)
        vi = np.where(kept, 1 / a_ - 1 / n1_ + 1 / c_ - 1 / n2_, np.nan)
    return EffectSizes(yi=yi, vi=vi, kept=kept)


def hedges_correction(m: ArrayLike) -> _F:
    """Exact small-sample bias correction of Cohen's d for ``m`` degrees of freedom.

    ``c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))`` (Hedges 1981, J Educ Stat 6:107-128,
    eq. 6e), computed on the log scale (``scipy.special.gammaln``) as metafor's ``.cmicalc``
    does; ``1 - 3/(4m - 1)`` is its usual approximation. Defined for ``m > 1`` (NaN otherwise).
    """
    from scipy.special import gammaln

    m = np.asarray(m, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))
    return np.where(m > 1, c, np.nan)


def standardized_mean_difference(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> EffectSizes:
    """Standardised mean difference with Hedges' exact small-sample correction (Hedges' g).

    With the pooled SD ``s = sqrt(((n1-1) sd1^2 + (n2-1) sd2^2) / (n1 + n2 - 2))``,
    ``d = (m1 - m2) / s`` and ``m = n1 + n2 - 2``::

        yi = c(m) d                                (c: :func:`hedges_correction`)
        vi = 1/n1 + 1/n2 + yi^2 / (2 (n1 + n2))    (large-sample variance)

    metafor's ``escalc(measure="SMD")`` with its default ``vtype="LS"`` (Hedges 1981; Hedges &
    Olkin 1985, Statistical Methods for Meta-Analysis, eq. 5.15 with ``g`` for ``d``).

    ValueError naming the study for what :func:`mean_difference` refuses, and for input with
    no SMD: fewer than 4 patients in all (``m <= 1``: metafor returns NA) or both SDs 0
    (a pooled SD of 0: metafor returns an infinite or NaN ``yi``).
    """
    m1, sd1, n1, m2, sd2, n2 = _continuous(m1, sd1, n1, m2, sd2, n2)
    m = n1 + n2 - 2
    bad = m <= 1
    if bad.any():
        i = _validate.first_bad(bad)
        raise ValueError(
            f"study {i}: n1 + n2 = {n1[i] + n2[i]:g}; a standardised mean difference needs at least 4 patients"
        )
    s = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / m)
    bad = s <= 0
    if bad.any():
        i = _validate.first_bad(bad)
        raise ValueError(f"study {i}: the pooled standard deviation is 0; a standardised mean difference is undefined")
    yi = hedges_correction(m) * (m1 - m2) / s
    vi = 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))
    return EffectSizes(yi=yi, vi=vi, kept=np.ones(yi.shape, dtype=bool))


def two_by_two(
    a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike, add: float = 0.5, drop00: bool = False
) -> tuple[_F, _F, _F, _F, NDArray[np.bool_]]:
    """Checked 2x2 tables with metafor's default zero-cell rule: ``(a, n1, c, n2, kept)``.

    A study with a zero cell (``a``, ``n1 - a``, ``c`` or ``n2 - c``) gets ``add`` (1/2) added to
    all four cells, so each arm grows by ``2 * add``: metafor's ``escalc`` defaults
    ``add=1/2, to="only0", drop00=FALSE``. A study with no events in both arms, or events in
    every patient of both arms, is kept (corrected) unless ``drop00`` is True, when it is
    dropped (``kept`` False), as ``drop00=TRUE`` does. (:func:`zero_cell_corrected` is the
    Stata ``metan`` rule, which always drops them; the risk ratio keeps it.)

    ValueError naming the study for impossible input: counts missing, negative or fractional
    (see :func:`~metabuild.stats._validate.counts`), an arm with no patients, events above the
    group size, and a non-positive ``add``.
    """
    checked = _validate.counts(a=a, n1=n1, c=c, n2=n2)
    a, n1, c, n2 = checked["a"], checked["n1"], checked["c"], checked["n2"]
    for name, n in (("n1", n1), ("n2", n2)):
        bad = n <= 0
        if bad.any():
            i = _validate.first_bad(bad)
            raise ValueError(f"{name} of study {i} is {n[i]:g}: group sizes must be positive")
    _validate.events_within(a, n1, "a", "n1")
    _validate.events_within(c, n2, "c", "n2")
    if not (np.isfinite(add) and add > 0):
        raise ValueError(f"the value added to zero cells must be positive; got {add!r}")
    b, d = n1 - a, n2 - c
    kept = np.ones(a.shape, dtype=bool)
    if drop00:
        kept = ~(((a == 0) & (c == 0)) | ((b == 0) & (d == 0)))
    has_zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    plus = np.where(has_zero & kept, add, 0.0)
    return a + plus, n1 + 2 * plus, c + plus, n2 + 2 * plus, kept


def log_odds_ratio(
    a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike, add: float = 0.5, drop00: bool = False
) -> EffectSizes:
    """Log odds ratio of group 1 (``a`` events of ``n1``) versus group 2 (``c`` of ``n2``).

    With ``b = n1 - a`` and ``d = n2 - c`` after the zero-cell rule of :func:`two_by_two`
    (1/2 added to all four cells of a table with a zero cell; double-zero tables kept)::

        yi = log(a d / (b c)),    vi = 1/a + 1/b + 1/c + 1/d   (Woolf 1955)

    metafor's ``escalc(measure="OR")`` with its defaults. Dropped studies (``drop00=True``)
    carry NaN. ValueError for impossible counts (see :func:`two_by_two`).
    """
    a_, n1_, c_, n2_, kept = two_by_two(a, n1, c, n2, add, drop00)
    b_, d_ = n1_ - a_, n2_ - c_
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.where(kept, np.log(a_ * d_ / (b_ * c_)), np.nan)
        vi = np.where(kept, 1 / a_ + 1 / b_ + 1 / c_ + 1 / d_, np.nan)
    return EffectSizes(yi=yi, vi=vi, kept=kept)


def risk_difference(
    a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike, add: float = 0.5, drop00: bool = False
) -> EffectSizes:
    """Risk difference ``p1 - p2`` of group 1 (``a`` events of ``n1``) versus group 2 (``c`` of ``n2``).

    With ``p1 = a/n1`` and ``p2 = c/n2`` after the zero-cell rule of :func:`two_by_two`::

        yi = p1 - p2,    vi = p1 (1 - p1) / n1 + p2 (1 - p2) / n2

    metafor's ``escalc(measure="RD")`` with its defaults, which apply the zero-cell rule to the
    risk difference too (so that a table with a zero cell has a positive variance).
    ValueError for impossible counts (see :func:`two_by_two`).
    """
    a_, n1_, c_, n2_, kept = two_by_two(a, n1, c, n2, add, drop00)
    p1, p2 = a_ / n1_, c_ / n2_
    yi = np.where(kept, p1 - p2, np.nan)
    vi = np.where(kept, p1 * (1 - p1) / n1_ + p2 * (1 - p2) / n2_, np.nan)
    return EffectSizes(yi=yi, vi=vi, kept=kept)
