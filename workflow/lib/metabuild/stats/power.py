"""Sample size for comparing two means (the paper's power calculation)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from statsmodels.stats.power import NormalIndPower, TTestIndPower


@dataclass(frozen=True)
class SampleSize:
    n_per_group: int  # rounded up
    n_exact: float
    effect_size: float  # Cohen's d = difference / sd
    test: str  # "t" or "z"

    def to_dict(self) -> dict:
        return asdict(self)


def sample_size_two_means(
    difference: float, sd: float, alpha: float = 0.05, power: float = 0.90, test: str = "t"
) -> SampleSize:
    """Patients per group to detect ``difference`` with common ``sd``, two-sided ``alpha``.

    ``test="t"``: two-sample t test, solved iteratively on the noncentral t
    (statsmodels ``TTestIndPower``), which is what Stata's ``power twomeans m1 m2, sd() power()``
    computes by default (``knownsds`` switches to z). ``test="z"``: the normal approximation
    ``n = 2 (z_{1-a/2} + z_{power})^2 / d^2`` (statsmodels ``NormalIndPower``; Stata's old
    ``sampsi``). Equal group sizes.
    """
    if difference <= 0 or sd <= 0:
        raise ValueError("difference and sd must be positive")
    d = difference / sd
    engine = {"t": TTestIndPower, "z": NormalIndPower}[test]()
    n = float(engine.solve_power(effect_size=d, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"))
    return SampleSize(n_per_group=math.ceil(n - 1e-9), n_exact=n, effect_size=d, test=test)
