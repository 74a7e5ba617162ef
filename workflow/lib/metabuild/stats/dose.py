"""Cumulative ketamine dose for a reference patient, and the paper's high/low dose classes.

Methods: "Assuming a 70-kg patient, we calculated the cumulative amount of ketamine from each
infusion regimen by multiplying the amount of the assumed weight by the infusion rate ... and
duration of infusion. Cumulative ketamine dose >= 400 mg was defined as high-dose".
"""

from __future__ import annotations

from typing import Literal

RateUnit = Literal["mg/kg/h", "mg/kg", "mg/kg/d"]


def cumulative_dose_mg(
    rate: float,
    rate_unit: RateUnit,
    hours_total: float | None = None,
    days: float | None = None,
    weight_kg: float = 70.0,
    cap_mg_per_h: float | None = None,
) -> float:
    """Cumulative dose in mg for a patient of ``weight_kg``.

    * ``"mg/kg/h"``: ``min(rate * weight, cap_mg_per_h) * hours_total`` (the hourly amount is
      capped when the regimen caps it, e.g. "0.35 mg/kg/h, maximum 25 mg/h");
    * ``"mg/kg"``: a total dose over the infusion, ``rate * weight`` (duration irrelevant);
    * ``"mg/kg/d"``: ``rate * weight * days``.
    """
    if rate < 0 or weight_kg <= 0:
        raise ValueError("rate must be >= 0 and weight > 0")
    if rate_unit == "mg/kg/h":
        if hours_total is None:
            raise ValueError("mg/kg/h needs hours_total")
        per_h = rate * weight_kg
        if cap_mg_per_h is not None:
            per_h = min(per_h, cap_mg_per_h)
        return per_h * hours_total
    if rate_unit == "mg/kg":
        return rate * weight_kg
    if rate_unit == "mg/kg/d":
        if days is None:
            raise ValueError("mg/kg/d needs days")
        return rate * weight_kg * days
    raise ValueError(f"unknown rate unit {rate_unit!r}")


def dose_class(dose_mg: float, threshold_mg: float = 400.0) -> Literal["high", "low"]:
    """``"high"`` if ``dose_mg >= threshold_mg`` (the paper's >= 400 mg), else ``"low"``."""
    return "high" if dose_mg >= threshold_mg else "low"
