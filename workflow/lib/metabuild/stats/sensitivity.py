"""Leave-one-out sensitivity analysis (metafor ``leave1out``; the paper's "excluding studies
one-by-one"). Stata 13 has no built-in; ``metaninf`` (SSC) re-runs ``metan`` without each study.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .pooling import PooledEstimate, dersimonian_laird, rr_random_effects


def leave_one_out(
    yi: ArrayLike,
    vi: ArrayLike,
    pool: Callable[..., PooledEstimate] = dersimonian_laird,
    level: float = 0.95,
) -> list[PooledEstimate]:
    """``pool`` (default DerSimonian-Laird) re-run with study ``i`` omitted, for each ``i``.

    Element ``i`` of the list is the analysis without study ``i`` (input order), as the rows
    of metafor's ``leave1out(rma(yi, vi, method="DL"))`` (estimate, se, zval, pval, ci.lb,
    ci.ub, Q, Qp, tau2, I2). Needs ``k >= 2``. A plain loop: no library does it for DL.
    """
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    if y.size < 2:
        raise ValueError("leave-one-out needs at least 2 studies")
    keep = ~np.eye(y.size, dtype=bool)
    return [pool(y[m], v[m], level=level) for m in keep]


def leave_one_out_rr(
    a: ArrayLike, n1: ArrayLike, c: ArrayLike, n2: ArrayLike, heterogeneity: str = "mh", level: float = 0.95
) -> list[PooledEstimate]:
    """Leave-one-out of :func:`~metabuild.stats.pooling.rr_random_effects` (metan's rr random),
    recomputing the zero-cell rule, the M-H estimate and its Q on each subset. Element ``i``
    omits input study ``i``."""
    a, n1, c, n2 = (np.asarray(z, float) for z in (a, n1, c, n2))
    if a.size < 2:
        raise ValueError("leave-one-out needs at least 2 studies")
    keep = ~np.eye(a.size, dtype=bool)
    return [rr_random_effects(a[m], n1[m], c[m], n2[m], heterogeneity=heterogeneity, level=level) for m in keep]
