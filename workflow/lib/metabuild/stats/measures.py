"""The effect measures a configuration may name, in one table (metafor's ``escalc`` names).

``MEASURES[name]`` says what data a measure reads (two groups' means, SDs and sizes; two
groups' events and sizes; one group's events and size), which function of
:mod:`~metabuild.stats.effects` or :mod:`~metabuild.stats.proportions` computes the study
effects ``yi`` and variances ``vi``, and how a pooled value returns to the reporting scale
(``exp`` for the log ratio measures, the inverse logit for ``PLO``; none otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from . import effects, proportions


@dataclass(frozen=True)
class Measure:
    """One effect measure: its data, its study-level function and its back-transform."""

    name: str
    #: "continuous": f(m1, sd1, n1, m2, sd2, n2); "binary": f(a, n1, c, n2); "proportion": f(x, n)
    data: Literal["continuous", "binary", "proportion"]
    effects: Callable[..., effects.EffectSizes]
    #: from the analysis scale to the reporting scale (None: the same scale)
    back_transform: Callable[[float], float] | None
    #: the value of no effect on the reporting scale (None for a single proportion)
    null: float | None
    description: str

    @property
    def ratio(self) -> bool:
        """True for the log ratio measures, pooled on the log scale and reported as ratios."""
        return self.back_transform is math.exp


def _expit(t: float) -> float:
    return float(proportions.expit([t])[0])


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("MD", "continuous", effects.mean_difference, None, 0.0, "mean difference"),
        Measure("SMD", "continuous", effects.standardized_mean_difference, None, 0.0, "Hedges' g"),
        Measure("RR", "binary", effects.log_risk_ratio, math.exp, 1.0, "risk ratio"),
        Measure("OR", "binary", effects.log_odds_ratio, math.exp, 1.0, "odds ratio"),
        Measure("RD", "binary", effects.risk_difference, None, 0.0, "risk difference"),
        Measure("PR", "proportion", proportions.raw_proportion, None, None, "raw proportion"),
        Measure("PLO", "proportion", proportions.logit_proportion, _expit, None, "logit proportion"),
    )
}


def measure(name: str) -> Measure:
    """The measure called ``name``; ValueError listing the known ones otherwise."""
    try:
        return MEASURES[name]
    except KeyError:
        raise ValueError(f"unknown effect measure {name!r}; one of {', '.join(MEASURES)}") from None
