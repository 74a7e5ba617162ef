"""How each kind of number is printed (the journal's style: Anesth Analg / AMA).

One function decides the text of every number the manuscript shows, so the registry's
``text`` is the single place a reader's number comes from.
"""

from __future__ import annotations

import math

MINUS = "\u2212"

#: decimals printed per kind of number
DECIMALS = {
    "estimate": 2,
    "ratio": 2,
    "se": 2,
    "statistic": 2,
    "tau2": 2,
    "i2": 1,
    "percent": 1,
    "median": 1,
    "dose": 0,
    "mg_per_kg": 2,
    "count": 0,
    "integer": 0,
    "constant": None,
}


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    if text.startswith("-"):
        # -0.00 prints as 0.00
        text = text[1:] if float(text) == 0 else MINUS + text[1:]
    return text


def format_p(p: float) -> str:
    """P with its relation, no leading zero: ``= .029``, ``< .001`` (AMA style)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "not estimable"
    if p < 0.001:
        return "< .001"
    text = f"{p:.3f}"
    if text == "1.000":
        return "> .99"
    return "= " + text.lstrip("0")


def format_number(value: object, kind: str, decimals: int | None = None) -> str:
    """Text of a registry number of the given kind."""
    if kind == "p":
        return format_p(value)  # type: ignore[arg-type]
    if kind == "date":
        import datetime

        day = datetime.date.fromisoformat(str(value))
        return f"{day:%B} {day.day}, {day.year}"
    if kind == "percent_int":
        return f"{value:g}%"
    if kind == "p_threshold":
        return f"{value:g}".lstrip("0")
    if isinstance(value, str):
        return value
    if kind in ("count", "integer"):
        return str(int(round(float(value))))  # type: ignore[arg-type]
    places = decimals if decimals is not None else DECIMALS.get(kind, 2)
    if places is None:
        text = f"{value:g}"  # type: ignore[str-format]
        return MINUS + text[1:] if text.startswith("-") else text
    text = _fixed(float(value), places)  # type: ignore[arg-type]
    if kind in ("i2", "percent"):
        text += "%"
    return text
