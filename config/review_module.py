"""What only the ketamine review computes (declared in config/config.yaml as ``review_module``).

The metabuild library knows no particular review; this module is the flagship review's own:

* the cumulative ketamine dose of each trial for a reference patient (Methods: "Assuming a
  70-kg patient, we calculated the cumulative amount of ketamine from each infusion regimen by
  multiplying the amount of the assumed weight by the infusion rate ... and duration of
  infusion. Cumulative ketamine dose >= 400 mg was defined as high-dose"), a computed column
  of the study table (``cumulative_dose_mg``) that analyses filter and group on;
* the descriptive topics that only this paper reports (its regimens; its counts by pain type,
  CRPS and setting; the trials with a primary pain time point);
* Table 1, the characteristics of the included trials in the paper's layout.

The interface (see metabuild.review): ``COMPUTED_COLUMNS`` and ``computed_columns``,
``TOPICS`` and ``TABLES`` (name -> (function(data, settings), data cells read,
settings(config))).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from metabuild import escape
from metabuild.describe import number, rows_read

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


def _protocol(config: Mapping[str, Any], key: str) -> float:
    try:
        return float(config["protocol"][key]["value"])
    except KeyError:
        raise KeyError(f"config: protocol.{key}.value is needed by config/review_module.py") from None


def doses(studies: pd.DataFrame, weight_kg: float) -> list[float]:
    return [
        cumulative_dose_mg(
            rate=r.rate_mean,
            rate_unit=r.rate_unit,
            hours_total=r.hours_total,
            days=r.days,
            weight_kg=weight_kg,
            cap_mg_per_h=None if pd.isna(r.rate_cap_mg_per_h) else r.rate_cap_mg_per_h,
        )
        for r in studies.itertuples()
    ]


#: computed column -> the study-table columns it reads
COMPUTED_COLUMNS = {"cumulative_dose_mg": ["rate_unit", "rate_mean", "hours_total", "days", "rate_cap_mg_per_h"]}


def computed_settings(config: Mapping[str, Any]) -> dict[str, float]:
    """What the computed column depends on in the configuration (a changed weight reruns its analyses)."""
    _protocol(config, "reference_weight_kg")  # present, or the error naming the key
    return {"reference_weight_kg": config["protocol"]["reference_weight_kg"]["value"]}


def computed_columns(table: pd.DataFrame, settings: Mapping[str, Any]) -> dict[str, list[float]]:
    """The computed columns of the study table; ``settings`` is :func:`computed_settings`'s result."""
    return {"cumulative_dose_mg": doses(table, float(settings["reference_weight_kg"]))}


def regimen(data: Any, settings: Mapping[str, Any]) -> tuple[dict, dict]:
    s = data.studies
    hours_per_day = s["hours_total"] / s["days"]
    dose = pd.Series(doses(s, settings["reference_weight_kg"]))
    numbers = {
        "regimen.hours_median": number(float(s["hours_total"].median()), "median", 1),
        "regimen.hours_min": number(float(s["hours_total"].min()), "median", 1),
        "regimen.hours_max": number(float(s["hours_total"].max()), "median", 0),
        "regimen.hours_per_day_median": number(float(hours_per_day.median()), "median", 1),
        "regimen.days_median": number(float(s["days"].median()), "median", 0),
        "regimen.days_min": number(float(s["days"].min()), "median", 0),
        "regimen.days_max": number(float(s["days"].max()), "median", 0),
        "regimen.rate_max_median": number(float(s["rate_max"].median()), "mg_per_kg"),
        "regimen.rate_max_min": number(float(s["rate_max"].min()), "mg_per_kg"),
        "regimen.rate_max_max": number(float(s["rate_max"].max()), "mg_per_kg"),
        "regimen.dose_median_mg": number(float(dose.median()), "dose"),
        "regimen.dose_min_mg": number(float(dose.min()), "dose"),
        "regimen.dose_max_mg": number(float(dose.max()), "dose"),
        "regimen.count_high_dose": number(int((dose >= settings["high_dose_threshold_mg"]).sum()), "count"),
        "regimen.count_low_dose": number(int((dose < settings["high_dose_threshold_mg"]).sum()), "count"),
    }
    for sid, d in zip(s["study_id"], dose, strict=True):
        numbers[f"regimen.{sid}.dose_mg"] = number(float(d), "dose")
    return numbers, {"studies.csv": rows_read(s)}


def _regimen_settings(config: Mapping[str, Any]) -> dict[str, float]:
    return {k: _protocol(config, k) for k in ("reference_weight_kg", "high_dose_threshold_mg")}


def trial_counts(data: Any, settings: Mapping[str, Any]) -> tuple[dict, dict]:
    """The paper's counts of trials by pain type, CRPS and setting, and of trials with a primary
    pain time point (keys under ``studies.``, as the paper's other trial counts)."""
    s = data.studies
    pain = data.pain_scores
    with_primary = pain[pain["primary"].astype(bool)]["study_id"].unique()
    numbers = {
        "studies.count_neuropathic": number(int((s["pain_type"] == "neuropathic").sum()), "count"),
        "studies.count_mixed": number(int((s["pain_type"] == "mixed").sum()), "count"),
        "studies.count_nonneuropathic": number(int(s["pain_type"].isin(["nociplastic", "nociceptive"]).sum()), "count"),
        "studies.count_nociplastic": number(int((s["pain_type"] == "nociplastic").sum()), "count"),
        "studies.count_nociceptive": number(int((s["pain_type"] == "nociceptive").sum()), "count"),
        "studies.count_crps": number(int(s["crps"].astype(bool).sum()), "count"),
        "studies.count_inpatient": number(int((s["setting"] == "inpatient").sum()), "count"),
        "studies.count_outpatient": number(int((s["setting"] == "outpatient").sum()), "count"),
        "studies.count_primary_outcome": number(len(with_primary), "count"),
    }
    return numbers, {"studies.csv": rows_read(s), "pain_scores.csv": rows_read(pain[pain["primary"].astype(bool)])}


TOPICS = {
    "regimen": (
        regimen,
        {"studies.csv": ["study_id", "rate_unit", "rate_mean", "rate_max", "hours_total", "days", "rate_cap_mg_per_h"]},
        _regimen_settings,
    ),
    "trial_counts": (
        trial_counts,
        {"studies.csv": ["study_id", "pain_type", "crps", "setting"], "pain_scores.csv": ["study_id", "primary"]},
        lambda config: {},
    ),
}


def table1(data: Any, settings: Mapping[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """Characteristics of the included trials, with the cumulative dose computed."""
    studies, pain_scores = data.studies, data.pain_scores
    weight_kg, threshold_mg = settings["reference_weight_kg"], settings["high_dose_threshold_mg"]
    primary = pain_scores[pain_scores["primary"].astype(bool)].drop_duplicates("study_id")
    primary_at = dict(zip(primary["study_id"], primary["timepoint"], strict=True))
    rows = []
    for s, dose in zip(studies.itertuples(), doses(studies, weight_kg), strict=True):
        cite = escape.citation(s.citation_key)
        patients = max(s.n_ketamine, s.n_control) if s.design == "crossover" else s.n_ketamine + s.n_control
        rows.append(
            {
                "Trial": escape.Markup(f"{s.label} {cite}", f"{escape.markdown(s.label)} {cite.markdown}"),
                "Design; setting": f"{s.design.capitalize()} RCT; {s.setting}",
                # patients: both arms of a parallel trial; in a crossover every patient has both
                # treatments, so the larger arm (as the descriptive counts)
                "Population": f"{s.population} (n = {patients})",
                "Ketamine arm": f"{s.treatment_description} (n = {s.n_ketamine})",
                "Regimen": s.regimen_text,
                f"Cumulative dose, {weight_kg:g} kg": f"{dose:.0f} mg ({dose_class(dose, threshold_mg)})",
                "Control arm": f"{s.control_description} (n = {s.n_control})",
                "Primary time point": primary_at.get(s.study_id, "not pooled (no SD)"),
            }
        )
    note = (
        "Cumulative dose for a reference patient of the stated weight, computed from each regimen; "
        "high dose when at or above the protocol threshold."
    )
    # object columns: the Trial cells keep their Markup type (the citation stays a citation)
    return pd.DataFrame(rows, dtype=object), [note]


TABLES = {
    "table1": (
        table1,
        {"studies.csv": None, "pain_scores.csv": ["study_id", "timepoint", "primary"]},
        _regimen_settings,
    ),
}


def check_config(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for the configuration this module needs: the reference weight and the
    high-dose threshold, numbers above 0 (doses are computed from them)."""
    problems = []
    protocol = config.get("protocol", {})
    for key in ("reference_weight_kg", "high_dose_threshold_mg"):
        value = protocol.get(key, {}).get("value") if isinstance(protocol.get(key), Mapping) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
            problems.append(
                (f"protocol.{key}.value", f"{value!r} must be a number above 0 (doses are computed from it)")
            )
    return problems
