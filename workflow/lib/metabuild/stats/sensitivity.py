"""Leave-one-out sensitivity analysis (metafor ``leave1out``; the paper's "excluding studies
one-by-one"). Stata 13 has no built-in; ``metaninf`` (SSC) re-runs ``metan`` without each study.

Cost. Each omission re-sums the remaining ``k - 1`` studies (O(k) array work, O(k^2) in all)
instead of updating running totals by subtraction: subtraction (``sum w y - w_i y_i``, and
Q as ``sum w y^2 - (sum w y)^2 / sum w``) cancels catastrophically when one study dominates,
and the re-summed rows equal a full refit bit for bit (the registry's leave-one-out numbers do
not change with the algorithm). What is skipped is the per-omission overhead of a full refit:
input validation, the zero-cell rule, the per-study effects and the percentage weights (rows
carry ``weights == ()``; metafor's ``leave1out`` reports none either, and at k = 10,000 they
would be 10^8 floats). ``benchmarks/methods_scale.py`` measures it (k = 10,000: about 4 s
under load).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from . import _validate
from .pooling import (
    PooledEstimate,
    _dl_fit,
    _fe_fit,
    _summaries,
    dersimonian_laird,
    inverse_variance_fixed,
    z_crit,
)


def _without(i: int, k: int) -> np.ndarray:
    """Positions ``0..k-1`` except ``i`` (as an index array, so subsets keep input order)."""
    return np.concatenate((np.arange(i), np.arange(i + 1, k)))


def leave_one_out(
    yi: ArrayLike,
    vi: ArrayLike,
    pool: Callable[..., PooledEstimate] = dersimonian_laird,
    level: float = 0.95,
) -> list[PooledEstimate]:
    """``pool`` (default DerSimonian-Laird) re-run with study ``i`` omitted, for each ``i``.

    Element ``i`` of the list is the analysis without study ``i`` (input order), as the rows
    of metafor's ``leave1out(rma(yi, vi, method="DL"))`` (estimate, se, zval, pval, ci.lb,
    ci.ub, Q, Qp, tau2, I2). Needs ``k >= 2`` (ValueError otherwise, and for invalid ``yi``,
    ``vi`` or ``level`` as in :func:`~metabuild.stats.pooling.dersimonian_laird`).

    For ``pool`` = :func:`~metabuild.stats.pooling.dersimonian_laird` or
    :func:`~metabuild.stats.pooling.inverse_variance_fixed` the rows are computed with the
    same core arithmetic as those functions, without their per-call overhead, and carry no
    percentage weights (``weights == ()``); any other ``pool`` is called on each subset.
    """
    crit = z_crit(level)
    y, v = _validate.effects_and_variances(yi, vi, min_k=2, what="leave-one-out")
    k = y.size
    if pool is dersimonian_laird or pool is inverse_variance_fixed:
        fit = _dl_fit if pool is dersimonian_laird else _fe_fit
        fits = [fit(y[m], v[m])[:4] for m in (_without(i, k) for i in range(k))]
        return _summaries(fits, [k - 1] * k, crit, [None] * k, fixed=pool is inverse_variance_fixed)
    return [pool(y[m], v[m], level=level) for m in (_without(i, k) for i in range(k))]


def leave_one_out_rr(
    a: ArrayLike,
    n1: ArrayLike,
    c: ArrayLike,
    n2: ArrayLike,
    heterogeneity: str = "mh",
    level: float = 0.95,
    cc: float = 0.5,
) -> list[PooledEstimate]:
    """Leave-one-out of :func:`~metabuild.stats.pooling.rr_random_effects` (metan's rr random).

    Element ``i`` omits input study ``i`` and equals ``rr_random_effects`` on the other studies
    (the zero-cell rule is per study, so it is applied once; the M-H estimate, its Q and the DL
    fit are recomputed on each subset). Rows carry no percentage weights (``weights == ()``).

    When omitting study ``i`` leaves no informative study (the others are all double-zero,
    double-all or empty-arm), that row is :meth:`PooledEstimate.undefined`: NaN statistics,
    ``k = 0`` and ``note`` saying so, instead of an error that would abort the other rows.
    Omitting a study that was itself not informative gives the full analysis.
    ValueError for fewer than 2 studies and for invalid counts, ``heterogeneity`` or ``level``.
    """
    from .effects import log_risk_ratio, zero_cell_corrected

    if heterogeneity not in ("mh", "iv"):
        raise ValueError('heterogeneity must be "mh" (metan random) or "iv" (metan randomi)')
    crit = z_crit(level)
    es = log_risk_ratio(a, n1, c, n2, cc)
    k = es.yi.size
    if k < 2:
        raise ValueError(f"leave-one-out needs at least 2 studies; got {k}")
    a_, n1_, c_, n2_, kept = zero_cell_corrected(a, n1, c, n2, cc)
    # per-study terms, computed elementwise exactly as rr_random_effects computes them
    big_n = n1_ + n2_
    mh_num, mh_den = a_ * n2_ / big_n, c_ * n1_ / big_n
    w = 1 / es.vi
    kept_pos = np.flatnonzero(kept)
    fits: dict[int, tuple[tuple[float, float, float, float], int]] = {}  # row -> (fit, k)
    undefined: dict[int, PooledEstimate] = {}
    full_fit = None  # the fit without an uninformative study: all informative studies
    for i in range(k):
        if not kept[i] and full_fit is not None:
            fits[i] = full_fit
            continue
        sel = kept_pos[kept_pos != i]
        if sel.size == 0:
            undefined[i] = PooledEstimate.undefined(f"no informative study remains without study {i}: nothing to pool")
            continue
        y, v = es.yi[sel], es.vi[sel]
        q = None
        if heterogeneity == "mh" and sel.size > 1:
            mh = float(np.log(np.sum(mh_num[sel]) / np.sum(mh_den[sel])))
            q = float(np.sum(w[sel] * (y - mh) ** 2))
        fits[i] = (_dl_fit(y, v, q)[:4], int(sel.size))
        if not kept[i]:
            full_fit = fits[i]
    order = sorted(fits)
    done = _summaries([fits[i][0] for i in order], [fits[i][1] for i in order], crit, [None] * len(order))
    rows = dict(zip(order, done, strict=True)) | undefined
    return [rows[i] for i in range(k)]
