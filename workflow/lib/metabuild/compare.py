"""Compare a reproduced number with the value the paper printed, within printed rounding."""

from __future__ import annotations

import math
import re
from typing import Any

_RELATION = re.compile(r"^\s*(?:P\s*)?([<>≤≥=])\s*")


def parse_printed(printed: str) -> tuple[str, float | None]:
    """('<', 0.0001) for '< .0001'; ('=', -1.83) for '−1.83' or '48.5%'."""
    text = str(printed).strip().replace("\u2212", "-").replace("%", "").replace(",", "")
    relation = "="
    match = _RELATION.match(text)
    if match:
        relation = match.group(1)
        text = text[match.end() :]
    try:
        return relation, float(text)
    except ValueError:
        return relation, None


def within_rounding(reproduced: float, printed: str, decimals: int | None) -> bool | None:
    """Whether ``reproduced`` prints as ``printed`` (None when the printed text is not numeric).

    ``= x`` with ``d`` decimals matches when ``|reproduced - x| <= 0.5 * 10**-d`` (plus a
    tolerance for binary floating point); ``< x`` matches when ``reproduced < x``.
    """
    relation, value = parse_printed(printed)
    if isinstance(reproduced, str):
        # a word (e.g. a GRADE certainty): equal up to letter case
        return reproduced.strip().lower() == str(printed).strip().lower()
    if value is None or reproduced is None or (isinstance(reproduced, float) and math.isnan(reproduced)):
        return None
    if relation in "<≤":
        return reproduced < value or (relation == "≤" and reproduced <= value)
    if relation in ">≥":
        return reproduced > value or (relation == "≥" and reproduced >= value)
    if decimals is None:
        text = str(printed).split(".")
        decimals = len(re.sub(r"\D", "", text[1])) if len(text) > 1 else 0
    return abs(reproduced - value) <= 0.5 * 10 ** (-decimals) + 1e-9


def comparison(reproduced: Any, row: dict) -> dict:
    decimals = row.get("decimals")
    decimals = (
        None if decimals in (None, "") or (isinstance(decimals, float) and math.isnan(decimals)) else int(decimals)
    )
    match = within_rounding(reproduced, row["printed"], decimals)
    relation, value = parse_printed(row["printed"])
    difference = None if value is None or relation != "=" or reproduced is None else value - reproduced
    return {
        "printed": row["printed"],
        "location": row.get("location"),
        "value": value,
        "difference": difference,
        "matches": match,
    }
