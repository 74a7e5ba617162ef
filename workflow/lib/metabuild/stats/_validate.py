"""Input checks shared by the statistics (one place for each rule).

Each check raises :class:`ValueError` naming the argument, the study (0-based position in the
input) and the offending value, so that a caller can tell the author which row is wrong. The
rules follow metafor's ``escalc``/``rma`` checks where metafor has one; where metafor accepts
something meaningless (a non-integer event count, ``level=95``) the docstring says so.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

_F = NDArray[np.float64]


def check_level(level: float) -> float:
    """The confidence level as a fraction in (0, 1).

    metafor also reads ``level=95`` as 95 %; here a level outside (0, 1) is an error, because
    two conventions for one argument hide mistakes (``level=95`` used to give NaN CIs).
    """
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95; got {level!r}") from None
    if not (0.0 < value < 1.0):
        raise ValueError(f"level must be a fraction in (0, 1), e.g. 0.95 for 95%; got {level!r}")
    return value


def first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def vector(name: str, x: ArrayLike) -> _F:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a vector (one value per study); got shape {arr.shape}")
    return arr


def same_length(**vectors: _F) -> int:
    """The common length of the vectors; ValueError naming them when lengths differ."""
    lengths = {name: v.size for name, v in vectors.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} has {m}" for n, m in lengths.items())
        raise ValueError(f"one value per study is needed in each vector: {shown}")
    return next(iter(lengths.values()))


def effects_and_variances(yi: ArrayLike, vi: ArrayLike, min_k: int = 1, what: str = "this analysis") -> tuple[_F, _F]:
    """``(y, v)`` as float vectors: same length, at least ``min_k``, ``y`` finite, ``v`` finite
    and positive (metafor's ``rma`` drops NA and refuses non-positive ``vi`` in these models)."""
    y, v = vector("yi", yi), vector("vi", vi)
    k = same_length(yi=y, vi=v)
    if k < min_k:
        raise ValueError(f"{what} needs at least {min_k} studies; got {k}")
    bad = ~np.isfinite(y)
    if bad.any():
        i = first_bad(bad)
        raise ValueError(f"yi of study {i} is {float(y[i])!r}: effects must be finite")
    bad = ~np.isfinite(v) | (v <= 0)
    if bad.any():
        i = first_bad(bad)
        raise ValueError(f"vi of study {i} is {float(v[i])!r}: sampling variances must be finite and positive")
    return y, v


def counts(**named: ArrayLike) -> dict[str, _F]:
    """Event counts and group sizes as float vectors of one length: finite, whole, not negative.

    metafor's ``escalc`` refuses negative counts and (see :func:`events_within`) events above
    the group size, but accepts non-integer counts; a count of patients is a whole number, so
    a fraction here is a data error and is refused.
    """
    out = {name: vector(name, x) for name, x in named.items()}
    same_length(**out)
    for name, x in out.items():
        bad = ~np.isfinite(x)
        if bad.any():
            i = first_bad(bad)
            raise ValueError(f"{name} of study {i} is {float(x[i])!r}: counts must be given")
        bad = x < 0
        if bad.any():
            i = first_bad(bad)
            raise ValueError(f"{name} of study {i} is {x[i]:g}: counts cannot be negative")
        bad = x != np.round(x)
        if bad.any():
            i = first_bad(bad)
            raise ValueError(f"{name} of study {i} is {x[i]:g}: counts must be whole numbers")
    return out


def events_within(events: _F, n: _F, events_name: str, n_name: str) -> None:
    """ValueError when a study has more events than patients (metafor: "One or more event
    counts are larger than the corresponding group sizes")."""
    bad = events > n
    if bad.any():
        i = first_bad(bad)
        raise ValueError(f"study {i}: {events_name} = {events[i]:g} events exceed {n_name} = {n[i]:g} patients")


def finite_scalar(name: str, value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return x
