"""Descriptive numbers of the paper (study counts, flow, regimens, risk of bias, sample
size, protocol constants). Each topic function takes the dataset and its settings and
returns ``(numbers, data_rows)``: registry numbers ``key -> {value, kind}`` and the data
rows they were computed from (``file -> [row, ...]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from metabuild.registry import study_list

Numbers = dict[str, dict[str, Any]]
Rows = dict[str, list[int]]


def number(value: Any, kind: str, decimals: int | None = None) -> dict[str, Any]:
    """A registry number: its value (numpy scalars as Python), kind and printed decimals."""
    entry: dict[str, Any] = {"value": value.item() if hasattr(value, "item") else value, "kind": kind}
    if decimals is not None:
        entry["decimals"] = decimals
    return entry


def rows_read(frame: pd.DataFrame) -> list[int]:
    """The data-file rows of ``frame`` (its ``_row`` column), for a topic's provenance."""
    return sorted(int(r) for r in frame["_row"])


def studies(data: Any, settings: Mapping[str, Any]) -> tuple[Numbers, Rows]:
    """Trial and participant counts. ``settings["arms"]`` names the two arms (the studies.csv
    columns ``n_<arm>``); trial-size and age summaries when the columns exist."""
    s = data.studies
    intervention, comparator = settings["arms"]
    arm_n = s[[f"n_{intervention}", f"n_{comparator}"]]
    # participants per trial: both arms of a parallel trial; in a crossover trial every patient
    # receives both treatments, so the larger arm count is the number of patients
    crossover = s["design"] == "crossover" if "design" in s else pd.Series(False, index=s.index)
    size = arm_n.sum(axis=1).where(~crossover, arm_n.max(axis=1))
    numbers = {
        "studies.count": number(len(s), "count"),
        "studies.participants": number(int(size.sum()), "count"),
        f"studies.n_{intervention}": number(int(arm_n.iloc[:, 0].sum()), "count"),
        f"studies.n_{comparator}": number(int(arm_n.iloc[:, 1].sum()), "count"),
        "studies.median_size": number(float(size.median()), "median", 0 if size.median() % 1 == 0 else 1),
        "studies.min_size": number(int(size.min()), "count"),
        "studies.max_size": number(int(size.max()), "count"),
    }
    if "design" in s:
        numbers["studies.count_crossover"] = number(int(crossover.sum()), "count")
    if "age_years" in s and s["age_years"].notna().any():
        age = s["age_years"].dropna()
        numbers |= {
            "studies.age_median": number(float(age.median()), "median", 0 if float(age.median()).is_integer() else 1),
            "studies.age_min": number(float(age.min()), "median", 1),
            "studies.age_max": number(float(age.max()), "median", 0 if float(age.max()).is_integer() else 1),
        }
    return numbers, {"studies.csv": rows_read(s)}


def flow(data: Any, settings: Mapping[str, Any]) -> tuple[Numbers, Rows]:
    """PRISMA counts: the stages reviewers report, and those that follow from them."""
    counts = {k: int(v) for k, v in zip(data.study_flow["stage"], data.study_flow["count"], strict=True)}
    derived = {}
    if {"records_identified", "records_screened"} <= counts.keys():
        derived["duplicates_removed"] = counts["records_identified"] - counts["records_screened"]
    if {"records_screened", "excluded_screening"} <= counts.keys():
        derived["fulltext_assessed"] = counts["records_screened"] - counts["excluded_screening"]
    if {"fulltext_assessed", "fulltext_excluded"} <= (counts.keys() | derived.keys()):
        assessed = derived.get("fulltext_assessed", counts.get("fulltext_assessed"))
        derived["included"] = assessed - counts["fulltext_excluded"]
    # a stage the reviewers reported that the counts also determine must agree: reported wins
    # here, and the consistency gate reports the disagreement
    derived = {k: v for k, v in derived.items() if k not in counts}
    numbers = {f"flow.{k}": number(int(v), "count") for k, v in {**counts, **derived}.items()}
    numbers["flow.included_in_data"] = number(len(data.studies), "count")
    return numbers, {"study_flow.csv": rows_read(data.study_flow), "studies.csv": rows_read(data.studies)}


def derive_overall(judgements: Mapping[str, str], key_domains: list[str]) -> str:
    """Overall risk of bias from the key domains (:func:`metabuild.analysis.derive_overall`)."""
    from metabuild.analysis import derive_overall as derive

    return derive(judgements, key_domains)


def risk_of_bias_rows(
    studies: pd.DataFrame, rob: pd.DataFrame, domains: Mapping[str, str], key_domains: list[str]
) -> list[dict[str, str]]:
    """Rows of the risk-of-bias grid (Figure 2): each study's judgement per domain, plus the
    overall judgement derived from the key domains, in the study table's order."""
    labels = dict(zip(studies["study_id"], studies["label"], strict=True))
    rows = [
        {"study_label": labels[r.study_id], "domain": r.domain, "judgement": r.judgement}
        for r in rob.itertuples()
        if r.domain in domains
    ]
    for study_id, group in rob.groupby("study_id", sort=False):
        judgements = dict(zip(group["domain"], group["judgement"], strict=True))
        rows.append(
            {"study_label": labels[study_id], "domain": "overall", "judgement": derive_overall(judgements, key_domains)}
        )
    order = {label: i for i, label in enumerate(studies["label"])}
    return sorted(rows, key=lambda r: order[r["study_label"]])


def risk_of_bias(data: Any, settings: Mapping[str, Any]) -> tuple[Numbers, Rows]:
    rob = data.risk_of_bias
    derived = {}
    for study_id, group in rob.groupby("study_id"):
        derived[study_id] = derive_overall(
            dict(zip(group["domain"], group["judgement"], strict=True)), settings["key_domains"]
        )
    levels = pd.Series(derived)
    numbers = {
        f"risk_of_bias.count_{lvl}": number(int((levels == lvl).sum()), "count") for lvl in ("high", "unclear", "low")
    }
    for domain, group in rob[rob["domain"] != "overall"].groupby("domain"):
        numbers[f"risk_of_bias.count_high_{domain}"] = number(int((group["judgement"] == "high").sum()), "count")
    published = rob[rob["domain"] == "overall"].set_index("study_id")["judgement"]
    disagreements = [sid for sid in derived if sid in published and published[sid] != derived[sid]]
    numbers["risk_of_bias.count_overall_disagreements"] = number(len(disagreements), "count")
    return numbers, {"risk_of_bias.csv": rows_read(rob)}


def sample_size(data: Any, settings: Mapping[str, Any]) -> tuple[Numbers, Rows]:
    from metabuild.stats.power import sample_size_two_means

    numbers = {
        "sample_size.sd": number(settings["sd"], "estimate", 1),
        "sample_size.alpha_percent": number(round(100 * settings["alpha"]), "percent_int"),
        "sample_size.power_percent": number(round(100 * settings["power"]), "percent_int"),
        "sample_size.type2_percent": number(round(100 * (1 - settings["power"])), "percent_int"),
    }
    for name, difference in settings["differences"].items():
        n = sample_size_two_means(
            difference=difference, sd=settings["sd"], alpha=settings["alpha"], power=settings["power"]
        ).n_per_group
        numbers[f"sample_size.diff_{name}"] = number(difference, "estimate", 1 if difference % 1 else 0)
        numbers[f"sample_size.n_{name}"] = number(int(n), "count")
    return numbers, {}


def protocol(data: Any, settings: Mapping[str, Any]) -> tuple[Numbers, Rows]:
    numbers = {}
    for key, entry in settings.items():
        numbers[f"protocol.{key}"] = number(entry["value"], entry.get("kind", "constant"))
        if "text" in entry:
            numbers[f"protocol.{key}"]["text"] = entry["text"]
    return numbers, {}


def study_set_table(data: Any, settings: Mapping[str, Any]) -> pd.DataFrame:
    """The study table a study set filters: study columns, computed and derived attributes
    and the risk-of-bias judgements (:func:`metabuild.analysis.study_table`)."""
    from metabuild.analysis import study_table

    return study_table(data.studies, settings, data.risk_of_bias)


def select_studies(table: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``table`` whose every ``where`` attribute has the value (or one of the
    values) asked for; an attribute the table lacks is a ``KeyError`` naming it."""
    mask = pd.Series(True, index=table.index)
    for attribute, wanted in where.items():
        if attribute not in table.columns:
            raise KeyError(attribute)
        values = wanted if isinstance(wanted, list) else [wanted]
        mask &= table[attribute].isin(values)
    return table[mask]


def study_sets(data: Any, settings: Mapping[str, Any]) -> tuple[Numbers, Rows]:
    """Every included trial as ``trial.<id>`` (its label, citation key and condition, which the
    manuscript's citation lists use) and every configured study set as ``sets.<name>`` (the
    trials' ids, in the study table's order) with ``sets.<name>.count``."""
    s = data.studies
    numbers: Numbers = {}
    for row in s.itertuples():
        numbers[f"trial.{row.study_id}"] = {
            "value": row.study_id,
            "kind": "study",
            "text": row.label,
            # the condition (a trial list by="condition" prints it) when the review records one
            "attributes": {
                "label": row.label,
                "citation_key": row.citation_key,
                **({"condition": row.condition} if "condition" in s else {}),
            },
        }
    labels = dict(zip(s["study_id"], s["label"], strict=True))
    numbers["sets.all"] = study_list([str(i) for i in s["study_id"]], labels)
    numbers["sets.all.count"] = number(len(s), "count")
    # the trials that reported each binary outcome (in either arm), in the study table's order
    binary = data.binary_outcomes
    for outcome in sorted(binary["outcome"].unique()) if "outcome" in binary else []:
        reported = set(binary.loc[binary["outcome"] == outcome, "study_id"])
        ids = [str(i) for i in s["study_id"] if i in reported]
        numbers[f"reported.{outcome}"] = study_list(ids, labels)
        numbers[f"reported.{outcome}.count"] = number(len(ids), "count")
    table = study_set_table(data, settings)
    for name, spec in settings["study_sets"].items():
        members = select_studies(table, spec["where"])
        ids = [str(i) for i in members["study_id"]]
        numbers[f"sets.{name}"] = study_list(ids, labels)
        numbers[f"sets.{name}.count"] = number(len(ids), "count")
    return numbers, {
        "studies.csv": rows_read(s),
        "risk_of_bias.csv": rows_read(data.risk_of_bias),
        "binary_outcomes.csv": rows_read(binary),
    }


TOPICS: dict[str, Callable[[Any, Mapping[str, Any]], tuple[Numbers, Rows]]] = {
    "studies": studies,
    "flow": flow,
    "risk_of_bias": risk_of_bias,
    "sample_size": sample_size,
    "protocol": protocol,
    "study_sets": study_sets,
}
