"""statcheck-like internal-consistency checks of numbers printed in a paper.

Idea of statcheck (Nuijten et al. 2016, Behav Res Methods 48:1205-1226): recompute a reported
P value from the other reported numbers, allowing for the rounding of every printed number,
and flag only what no rounding can explain. Here the "test statistic" is recovered from an
estimate and its (Wald, z-based) confidence interval:
``SE = (g(upper) - g(lower)) / (2 z_{1-a/2})``, ``z = g(estimate) / SE``, ``P = 2(1 - Phi(|z|))``,
with ``g = log`` for ratio measures (RR, OR) and the identity otherwise (Altman & Bland 2011,
BMJ 343:d2090). Hand-written: no Python library does this.

Printed numbers are given as strings so their precision is known ("-1.83" is +-0.005);
a float is taken as exact. Unicode minus signs and dashes are accepted.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from scipy import stats

from . import _validate

_MINUS = dict.fromkeys(map(ord, "\u2212\u2013\u2014\u2012\ufe63\uff0d"), "-")
_NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_P = re.compile(r"^\s*(?:[pP]\s*)?(<=|>=|\u2264|\u2265|<|>|=)?\s*(.+?)\s*$")
_EPS = 1e-12


@dataclass(frozen=True)
class PrintedNumber:
    """A number as printed; ``decimals`` None means exact (no rounding interval)."""

    value: float
    decimals: int | None
    text: str = ""

    @property
    def half_unit(self) -> float:
        return 0.0 if self.decimals is None else 0.5 * 10.0 ** (-self.decimals)

    @property
    def interval(self) -> tuple[float, float]:
        h = self.half_unit
        return self.value - h, self.value + h


@dataclass(frozen=True)
class PrintedP:
    relation: str  # "=", "<", ">", "<=", ">="
    value: float
    decimals: int | None
    text: str = ""

    @property
    def interval(self) -> tuple[float, float]:
        if self.relation in ("<", "<="):
            return 0.0, self.value
        if self.relation in (">", ">="):
            return self.value, 1.0
        h = 0.0 if self.decimals is None else 0.5 * 10.0 ** (-self.decimals)
        return max(0.0, self.value - h), min(1.0, self.value + h)


@dataclass(frozen=True)
class Finding:
    kind: str  # "p_value" | "ci_asymmetry" | "ci_order" | "ci_width" | "percentage" | "i2"
    expected: str
    printed: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def parse_number(text: str | float | int | PrintedNumber) -> PrintedNumber:
    """Parse a printed number: ``"-1.83"``, ``"\u22121.83"`` (unicode minus), ``".029"``,
    ``"48.5%"``, ``"1.2e-5"``. Floats/ints are exact."""
    if isinstance(text, PrintedNumber):
        return text
    if isinstance(text, (int, float)):
        return PrintedNumber(float(text), None, repr(text))
    s = text.translate(_MINUS).strip().rstrip("%").strip().replace(" ", "")
    if not _NUM.match(s):
        raise ValueError(f"not a number: {text!r}")
    mant = re.split(r"[eE]", s)[0]
    dec = len(mant.split(".")[1]) if "." in mant else 0
    if "e" in s.lower():
        dec = dec - int(re.split(r"[eE]", s)[1])
    return PrintedNumber(float(s), dec, text)


def parse_p(text: str | float | PrintedP) -> PrintedP:
    """Parse a printed P: ``"P < .00001"``, ``"P = .029"``, ``"p=0.03"``, ``"<.001"``,
    ``"P \u2264 .05"``, ``".04"``. A bare number means ``=``."""
    if isinstance(text, PrintedP):
        return text
    if isinstance(text, (int, float)):
        return PrintedP("=", float(text), None, repr(text))
    m = _P.match(text.translate(_MINUS))
    if not m:
        raise ValueError(f"not a P value: {text!r}")
    rel = {"\u2264": "<=", "\u2265": ">=", None: "="}.get(m.group(1), m.group(1))
    num = parse_number(m.group(2))
    return PrintedP(rel, num.value, num.decimals, text)


def _g(ratio: bool):
    return math.log if ratio else (lambda x: x)


def _g_interval(num: PrintedNumber, ratio: bool, what: str) -> tuple[float, float]:
    """The rounding interval of ``num`` on the analysis scale (log for ratios).

    A ratio printed as 0.00 may be anything in (0, 0.005): its log reaches -inf. A ratio whose
    whole interval is <= 0 cannot be a ratio: ValueError naming it.
    """
    lo, hi = num.interval
    if not ratio:
        return lo, hi
    if hi <= 0:
        raise ValueError(f"{what} {num.text or num.value!s} is not positive: a ratio and its CI must be > 0")
    return (math.log(lo) if lo > 0 else -math.inf), math.log(hi)


def _ci_problem(lower: PrintedNumber, upper: PrintedNumber) -> Finding | None:
    """A CI that no rounding can put in order (lower above upper) or give a positive width."""
    shown = f"{lower.text or lower.value} to {upper.text or upper.value}"
    if upper.interval[1] < lower.interval[0]:
        return Finding(
            "ci_order", "lower bound <= upper bound", shown, f"CI {shown}: the lower bound exceeds the upper"
        )
    if upper.interval[1] == lower.interval[0]:
        return Finding(
            "ci_width", "a CI of positive width", shown, f"CI {shown} has no width: no standard error follows from it"
        )
    return None


def se_z_p_from_ci(
    estimate: float, lower: float, upper: float, ratio: bool = False, level: float = 0.95
) -> tuple[float, float, float]:
    """``(SE, z, two-sided P)`` recovered from an estimate and its Wald CI (log scale if ratio).

    ValueError when they are undefined: a CI of zero or negative width, a ``level`` outside
    (0, 1), or (ratio) an estimate or bound that is not positive.
    """
    _validate.check_level(level)
    if ratio and min(estimate, lower, upper) <= 0:
        raise ValueError(f"a ratio and its CI must be positive: {estimate} ({lower} to {upper})")
    if not upper > lower:
        raise ValueError(f"the CI {lower} to {upper} has no positive width: no standard error follows")
    g = _g(ratio)
    crit = float(stats.norm.ppf(1 - (1 - level) / 2))
    se = (g(upper) - g(lower)) / (2 * crit)
    z = g(estimate) / se
    return se, z, float(2 * stats.norm.sf(abs(z)))


def p_range_from_ci(
    estimate: str | float | PrintedNumber,
    lower: str | float | PrintedNumber,
    upper: str | float | PrintedNumber,
    ratio: bool = False,
    level: float = 0.95,
) -> tuple[float, float]:
    """Smallest and largest two-sided P compatible with the printed (rounded) numbers.

    Worked on intervals: the estimate's distance from the null lies in ``[g_min, g_max]`` and
    the CI's width in ``[w_min, w_max]`` (``w_min = 0`` when the rounded bounds can meet; for a
    ratio bound printed as 0.00 ``w_max`` is infinite), so ``z`` lies in
    ``[g_min / (w_max / 2z*), g_max / (w_min / 2z*)]``. ValueError for a CI that no rounding
    puts in order or gives a width (see :func:`check_p`, which reports it as a finding instead)
    and for a ratio that is not positive.
    """
    _validate.check_level(level)
    e, lo, hi = (parse_number(x) for x in (estimate, lower, upper))
    problem = _ci_problem(lo, hi)
    if problem:
        raise ValueError(problem.message)
    crit = float(stats.norm.ppf(1 - (1 - level) / 2))
    ge = _g_interval(e, ratio, "estimate")
    gl = _g_interval(lo, ratio, "CI lower bound")
    gu = _g_interval(hi, ratio, "CI upper bound")
    g_min = 0.0 if ge[0] <= 0.0 <= ge[1] else min(abs(ge[0]), abs(ge[1]))
    g_max = max(abs(ge[0]), abs(ge[1]))
    w_min = max(gu[0] - gl[1], 0.0)
    w_max = gu[1] - gl[0]
    # w_max > 0 here (no CI problem); w_min may be 0 and w_max or g_max infinite
    z_max = 0.0 if g_max == 0 else (math.inf if w_min == 0 else g_max / (w_min / (2 * crit)))
    z_min = 0.0 if math.isinf(w_max) else g_min / (w_max / (2 * crit))
    return float(2 * stats.norm.sf(z_max)), float(2 * stats.norm.sf(z_min))


def check_p(
    estimate: str | float,
    lower: str | float,
    upper: str | float,
    printed_p: str | float,
    ratio: bool = False,
    level: float = 0.95,
) -> Finding | None:
    """Flag a printed P that no rounding of the estimate and CI can produce (None if fine).

    A CI that no rounding can order or give a width is itself returned as the finding
    (``kind`` ``"ci_order"`` or ``"ci_width"``): no P follows from it.
    """
    pp = parse_p(printed_p)
    problem = _ci_problem(parse_number(lower), parse_number(upper))
    if problem:
        return problem
    pmin, pmax = p_range_from_ci(estimate, lower, upper, ratio, level)
    a, b = pp.interval
    if pmax + _EPS < a or pmin - _EPS > b or (pp.relation == "<" and pmin >= pp.value):
        try:
            _, _, p = se_z_p_from_ci(*(parse_number(x).value for x in (estimate, lower, upper)), ratio, level)
            expected = f"{p:.3g} (compatible range {pmin:.3g} to {pmax:.3g})"
        except ValueError:  # e.g. a ratio bound printed as 0.00: only the range is defined
            expected = f"{pmin:.3g} to {pmax:.3g}"
        return Finding(
            "p_value",
            expected,
            str(printed_p),
            f"printed P {printed_p!s} does not follow from estimate {estimate} "
            f"and CI {lower} to {upper}{' (log scale)' if ratio else ''}",
        )
    return None


def check_ci_symmetry(
    estimate: str | float, lower: str | float, upper: str | float, ratio: bool = False
) -> Finding | None:
    """Flag a CI that is not symmetric about the estimate (on the log scale for ratios) beyond
    what the rounding of the three printed numbers allows.

    ``g(upper) + g(lower) - 2 g(estimate)`` is bounded over the rounding intervals (a ratio
    bound printed as 0.00 makes the lower end -inf, so only an estimate above the log-midpoint
    can be flagged). A CI that no rounding can order or give a width is returned as the
    finding (``"ci_order"``/``"ci_width"``). ValueError for a ratio that is not positive.
    """
    e, lo, hi = (parse_number(x) for x in (estimate, lower, upper))
    problem = _ci_problem(lo, hi)
    if problem:
        return problem
    ge = _g_interval(e, ratio, "estimate")
    gl = _g_interval(lo, ratio, "CI lower bound")
    gu = _g_interval(hi, ratio, "CI upper bound")
    smallest = gu[0] + gl[0] - 2 * ge[1]
    largest = gu[1] + gl[1] - 2 * ge[0]
    if smallest - _EPS > 0 or largest + _EPS < 0:
        g = _g(ratio)
        if ratio and lo.value <= 0:
            mid = f"below {math.exp((gu[1] + gl[1]) / 2):.4g} (centre of the CI on the log scale)"
        else:
            centre = math.exp((g(lo.value) + g(hi.value)) / 2) if ratio else (lo.value + hi.value) / 2
            mid = f"{centre:.4g} (centre of the CI{' on the log scale' if ratio else ''})"
        return Finding(
            "ci_asymmetry",
            mid,
            str(estimate),
            f"CI {lower} to {upper} is not symmetric about {estimate}{' on the log scale' if ratio else ''}",
        )
    return None


def check_percentage(count: int, total: int, printed_pct: str | float) -> Finding | None:
    """Flag a percentage that does not follow from its counts (e.g. 17/33 printed as 51.3%).

    A percentage printed for a total of 0 is flagged (no percentage follows from 0/0).
    ValueError for a negative count or total.
    """
    if count < 0 or total < 0:
        raise ValueError(f"counts cannot be negative: {count}/{total}")
    pct = parse_number(printed_pct)
    if total == 0:
        return Finding(
            "percentage",
            f"undefined ({count}/0)",
            str(printed_pct),
            f"{count}/0: no percentage follows from a total of 0, printed {printed_pct}",
        )
    expected = 100.0 * count / total
    a, b = pct.interval
    if expected < a - _EPS or expected > b + _EPS:
        shown = f"{expected:.{pct.decimals}f}" if pct.decimals is not None else f"{expected:.4g}"
        return Finding(
            "percentage", shown, str(printed_pct), f"{count}/{total} = {expected:.4f}%, printed {printed_pct}"
        )
    return None


def i2_from_q(q: float, df: int) -> float:
    """Higgins & Thompson (2002) ``I^2 = max(0, (Q - df)/Q) * 100``."""
    return max(0.0, (q - df) / q) * 100 if q > 0 else 0.0


def check_i2(q: str | float, df: int, printed_i2: str | float) -> Finding | None:
    """Flag an I^2 that does not follow from the printed Q and its df (allowing Q's rounding).

    ValueError for a negative ``df``.
    """
    if df < 0:
        raise ValueError(f"degrees of freedom cannot be negative: {df}")
    qn, i2 = parse_number(q), parse_number(printed_i2)
    q_lo, q_hi = qn.interval
    lo, hi = i2_from_q(max(q_lo, 0.0), df), i2_from_q(q_hi, df)
    a, b = i2.interval
    if hi + _EPS < a or lo - _EPS > b:
        return Finding(
            "i2",
            f"{i2_from_q(qn.value, df):.4g}",
            str(printed_i2),
            f"I2 {printed_i2} does not follow from Q = {q} on {df} df",
        )
    return None


def check_reported_estimate(
    estimate: str | float,
    lower: str | float,
    upper: str | float,
    printed_p: str | float | None = None,
    ratio: bool = False,
    level: float = 0.95,
) -> list[Finding]:
    """Run :func:`check_ci_symmetry` and (if a P is given) :func:`check_p`; return findings.

    A CI that no rounding can order or give a width gives that one finding only.
    """
    _validate.check_level(level)
    problem = _ci_problem(parse_number(lower), parse_number(upper))
    if problem:
        return [problem]
    out = [check_ci_symmetry(estimate, lower, upper, ratio)]
    if printed_p is not None:
        out.append(check_p(estimate, lower, upper, printed_p, ratio, level))
    return [f for f in out if f is not None]
