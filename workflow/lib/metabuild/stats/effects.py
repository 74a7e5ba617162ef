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
    yi = m1 - m2
    vi = sd1**2 / n1 + sd2**2 / n2
    return EffectSizes(yi=yi, vi=vi, kept=np.ones(yi.shape, dtype=bool))


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
