"""Run one configured analysis on the extraction data.

An analysis specification (an entry of ``config/config.yaml``'s ``analyses``) names the
outcome, time point, measure, method, a study filter (``where``) and optionally a
``moderator``. :func:`run_analysis` turns it into a JSON-ready result dict holding the
per-study effects, the pooled estimate(s), the meta-regression, the numbers it contributes
to the registry, and the data rows it used (for provenance).
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from metabuild import review
from metabuild.registry import study_list
from metabuild.stats import effects

# Comparison operators a derived attribute may use (config never executes code: these
# names are looked up here, never evaluated).
_OPERATORS = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "in": lambda series, values: series.isin(values),
}

#: the prefix of a study attribute that names a risk-of-bias judgement (``risk_of_bias.<domain>``,
#: ``risk_of_bias.overall`` derived from the key domains)
RISK_OF_BIAS_PREFIX = "risk_of_bias."


def study_table(
    studies: pd.DataFrame, config: Mapping[str, Any], risk_of_bias: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The study table with the review's computed columns (config ``review_module``), derived
    attributes and, given the risk-of-bias table, one ``risk_of_bias.<domain>`` column per domain
    with ``risk_of_bias.overall`` derived from config ``risk_of_bias.key_domains``.

    Derived attributes (``config["derived_attributes"]``) compare one column with a value
    and map True/False to the configured level names. A study whose column is missing
    gets no level (NaN) and therefore enters no subgroup of that attribute.
    """
    table = review.add_computed_columns(studies.copy(), config)
    if risk_of_bias is not None:
        table = add_risk_of_bias(table, risk_of_bias, (config.get("risk_of_bias") or {}).get("key_domains", []))
    for name, rule in config.get("derived_attributes", {}).items():
        column = table[rule["column"]]
        result = _OPERATORS[rule["op"]](column, rule["value"])
        when_true, when_false = rule["levels"]
        table[name] = [
            None if pd.isna(c) else (when_true if r else when_false) for c, r in zip(column, result, strict=True)
        ]
    return table


def derive_overall(judgements: Mapping[str, str], key_domains: list[str]) -> str:
    """Overall risk of bias from the key domains (Cochrane): high if any is high, else
    unclear if any is unclear, else low."""
    levels = [judgements.get(d, "unclear") for d in key_domains]
    if "high" in levels:
        return "high"
    if "unclear" in levels:
        return "unclear"
    return "low"


def add_risk_of_bias(table: pd.DataFrame, rob: pd.DataFrame, key_domains: list[str]) -> pd.DataFrame:
    """``table`` with a ``risk_of_bias.<domain>`` column per domain of ``rob`` and
    ``risk_of_bias.overall`` derived from ``key_domains``."""
    judgements = rob[rob["domain"] != "overall"].pivot(index="study_id", columns="domain", values="judgement")
    for domain in judgements.columns:
        table[RISK_OF_BIAS_PREFIX + domain] = table["study_id"].map(judgements[domain])
    overall = {
        sid: derive_overall(dict(zip(g["domain"], g["judgement"], strict=True)), list(key_domains))
        for sid, g in rob.groupby("study_id")
    }
    table[RISK_OF_BIAS_PREFIX + "overall"] = table["study_id"].map(overall)
    return table


def attribute_columns(name: str, config: Mapping[str, Any]) -> list[str]:
    """Study-table columns that an attribute (raw, computed, derived or a risk-of-bias
    judgement) depends on."""
    derived = config.get("derived_attributes", {})
    if name in derived:
        return attribute_columns(derived[name]["column"], config)
    computed = review.computed_column_inputs(config)
    if name in computed:
        return list(computed[name])
    return [name]


def _filter_studies(table: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=table.index)
    for column, wanted in (where or {}).items():
        if column not in table.columns:
            raise KeyError(
                f"where: {column!r} is not a study attribute (a column of studies.csv, a computed or derived "
                "attribute, or risk_of_bias.<domain>)"
            )
        values = wanted if isinstance(wanted, list) else [wanted]
        mask &= table[column].isin(values)
    return table[mask]


def _uses_risk_of_bias(spec: Mapping[str, Any]) -> bool:
    attributes = list(spec.get("where") or {}) + ([spec["moderator"]] if spec.get("moderator") else [])
    return any(str(a).startswith(RISK_OF_BIAS_PREFIX) for a in attributes)


def _outcome_rows(data: Any, spec: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str, pd.DataFrame]:
    """The data file and its rows holding the analysis' outcome (config ``outcomes``: a continuous
    outcome's file and window column; otherwise a binary outcome of binary_outcomes.csv)."""
    declared = review.outcome_spec(config, spec["outcome"])
    if declared["type"] == "continuous":
        file = declared["file"]
        rows = data.table(file.removesuffix(".csv"))
        if "outcome" in rows.columns:
            rows = rows[rows["outcome"] == spec["outcome"]]
        timepoint = spec.get("timepoint", "primary")
        if timepoint == "primary":
            rows = rows[rows["primary"].astype(bool)]
        else:
            rows = rows[rows[declared["window_column"]] == int(timepoint)]
        return file, rows
    rows = data.binary_outcomes
    return "binary_outcomes.csv", rows[rows["outcome"] == spec["outcome"]]


def _wide(rows: pd.DataFrame, value_columns: list[str], arms: tuple[str, str]) -> pd.DataFrame:
    """One row per study with ``<column>_<arm>`` columns (studies lacking an arm dropped)."""
    parts = []
    for arm in arms:
        part = rows[rows["arm"] == arm].set_index("study_id")[value_columns + ["_row"]]
        parts.append(part.add_suffix(f"_{arm}"))
    wide = pd.concat(parts, axis=1, join="inner")
    wide.attrs["arms"] = tuple(arms)
    return wide


def _arms(wide: pd.DataFrame) -> tuple[str, str]:
    """(intervention, comparator) arm ids of a wide table (:func:`_wide` records them)."""
    return wide.attrs["arms"]


def _measure(measure: str) -> Any:
    # imported here: scipy is slow to import, and the Snakefile imports this module to plan jobs
    from metabuild.stats.measures import measure as lookup

    return lookup(measure)


def _study_effects(wide: pd.DataFrame, measure: str) -> effects.EffectSizes:
    """Study effects of ``measure`` (metabuild.stats.measures.MEASURES: the one table of measures)."""
    m = _measure(measure)
    t, c = _arms(wide)
    if m.data == "continuous":
        columns = (f"mean_{t}", f"sd_{t}", f"n_{t}", f"mean_{c}", f"sd_{c}", f"n_{c}")
    elif m.data == "binary":
        columns = (f"events_{t}", f"n_{t}", f"events_{c}", f"n_{c}")
    else:
        raise ValueError(f"measure {measure!r} is a single-group measure; an analysis compares two arms")
    return m.effects(*(wide[col] for col in columns))


def _arm_counts(wide: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """(events, n) of the intervention arm, then of the comparator, from a wide table."""
    t, c = _arms(wide)
    return wide[f"events_{t}"], wide[f"n_{t}"], wide[f"events_{c}"], wide[f"n_{c}"]


def _stata_rr(measure: str, spec: Mapping[str, Any]) -> bool:
    """RR pooled by DL with the z-test: Stata's ``metan, rr random`` (M-H Q), as the paper did."""
    return measure == "RR" and spec.get("method", "DL") == "DL" and spec.get("test", "z") == "z"


def _fit(wide: pd.DataFrame, measure: str, spec: Mapping[str, Any]) -> dict:
    """The fit (config ``method`` and ``test``; metabuild.stats.pooling.meta_analysis) of one set
    of studies as a dict; ratio measures are given on the ratio scale (``estimate``,
    ``ci_lower``, ``ci_upper``) with the log-scale values beside them (``log_*``)."""
    from metabuild.stats import pooling

    m = _measure(measure)
    if _stata_rr(measure, spec):
        result = pooling.rr_random_effects(
            *_arm_counts(wide),
            heterogeneity=spec.get("rr_heterogeneity", "mh"),
        ).to_dict()
    else:
        es = _study_effects(wide, measure)
        fit = pooling.meta_analysis(es.yi[es.kept], es.vi[es.kept], spec.get("method", "DL"), spec.get("test", "z"))
        result = fit.to_dict()
    if not m.ratio:
        return result
    for key in ("estimate", "ci_lower", "ci_upper"):
        result[f"log_{key}"] = result[key]
        result[key] = math.exp(result[key])
    result["log_se"] = result.pop("se")
    return result


def _pool(wide: pd.DataFrame, measure: str, spec: Mapping[str, Any]) -> tuple[dict, list[dict]]:
    """Pool one set of studies; returns (pooled dict, per-study dicts)."""
    es = _study_effects(wide, measure)
    kept = wide[es.kept]
    result = _fit(wide, measure, spec)
    studies = []
    weights = dict(zip(kept.index, result["weights"], strict=True))
    z = 1.959963984540054
    records = wide.drop(columns=[c for c in wide.columns if c.startswith("_row")]).to_dict("records")
    for study_id, row, y, v, keep in zip(wide.index, records, es.yi, es.vi, es.kept, strict=True):
        entry: dict[str, Any] = {"study_id": study_id}
        entry.update({col: _plain(value) for col, value in row.items()})
        if keep:
            lo, hi = y - z * math.sqrt(v), y + z * math.sqrt(v)
            entry.update(yi=float(y), vi=float(v), weight=weights[study_id])
            if _measure(measure).ratio:
                entry.update(estimate=math.exp(y), ci_lower=math.exp(lo), ci_upper=math.exp(hi))
            else:
                entry.update(estimate=float(y), ci_lower=lo, ci_upper=hi)
        else:
            entry.update(
                yi=None,
                vi=None,
                weight=0.0,
                estimate=None,
                ci_lower=None,
                ci_upper=None,
                note="no events in either arm: not estimable, dropped",
            )
        studies.append(entry)
    result.pop("weights")
    # trials whose own CI lies wholly on one side of the null of the measure (below: lower pain
    # or risk in the intervention arm; above: higher)
    null = _measure(measure).null
    result["n_lower"] = sum(1 for s in studies if s["ci_upper"] is not None and s["ci_upper"] < null)
    result["n_higher"] = sum(1 for s in studies if s["ci_lower"] is not None and s["ci_lower"] > null)
    t, c = _arms(wide)
    result[f"n_{t}"] = int(wide[f"n_{t}"].sum())
    result[f"n_{c}"] = int(wide[f"n_{c}"].sum())
    if _measure(measure).data == "binary":
        result[f"events_{t}"] = int(wide[f"events_{t}"].sum())
        result[f"events_{c}"] = int(wide[f"events_{c}"].sum())
        result[f"percent_{t}"] = 100 * result[f"events_{t}"] / result[f"n_{t}"]
        result[f"percent_{c}"] = 100 * result[f"events_{c}"] / result[f"n_{c}"]
        result["events_total"] = result[f"events_{t}"] + result[f"events_{c}"]
        result["n_total"] = result[f"n_{t}"] + result[f"n_{c}"]
    return result, studies


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def analysis_rows(
    name: str,
    spec: Mapping[str, Any],
    data: Any,
    config: Mapping[str, Any],
    table: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, str, pd.DataFrame, list[str]]:
    """(study table rows, outcome file, outcome rows, study columns used) of one analysis.

    ``table`` is :func:`study_table`'s result, when the caller already has it.
    """
    if table is None or (_uses_risk_of_bias(spec) and RISK_OF_BIAS_PREFIX + "overall" not in table.columns):
        table = study_table(data.studies, config, data.risk_of_bias if _uses_risk_of_bias(spec) else None)
    table = _filter_studies(table, spec.get("where", {}))
    outcome_file, rows = _outcome_rows(data, spec, config)
    rows = rows[rows["study_id"].isin(table["study_id"])]
    used_columns = ["study_id", "label"]
    for column in list(spec.get("where", {})) + ([spec["moderator"]] if spec.get("moderator") else []):
        used_columns += attribute_columns(column, config)
    return table, outcome_file, rows, used_columns


def config_dependencies(name: str, spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration an analysis' result depends on, besides ``data_dir``.

    Its own specification; the definition (column, operator, threshold, levels) of every
    derived attribute it filters (``where``) or groups (``moderator``) by, following an
    attribute defined on another; the labels of its moderator's levels (printed in its
    result); and the reference weight when an attribute rests on the cumulative dose.
    Every other configuration entry leaves the result unchanged (tests/test_stale_builds.py
    checks this by changing them).
    """
    derived = config.get("derived_attributes", {})
    attributes = list(spec.get("where") or {}) + ([spec["moderator"]] if spec.get("moderator") else [])
    definitions: dict[str, Any] = {}
    raw_columns: set[str] = set()
    for attribute in attributes:
        while attribute in derived and attribute not in definitions:
            definitions[attribute] = derived[attribute]
            attribute = derived[attribute]["column"]
        raw_columns.add(attribute)
    dependencies: dict[str, Any] = {"spec": dict(spec), "derived_attributes": definitions}
    moderator = spec.get("moderator")
    if moderator in derived:
        labels = config.get("level_labels", {})
        dependencies["level_labels"] = {level: labels.get(level) for level in derived[moderator]["levels"]}
    if raw_columns & set(review.computed_column_inputs(config)):  # a computed column's own settings
        dependencies.update(review.computed_settings(config) or {})
    if any(c.startswith(RISK_OF_BIAS_PREFIX) for c in raw_columns):  # the overall judgement's key domains
        dependencies["key_domains"] = list((config.get("risk_of_bias") or {}).get("key_domains", []))
    return dependencies


def dependency_digest(
    name: str,
    spec: Mapping[str, Any],
    data: Any,
    config: Mapping[str, Any],
    table: pd.DataFrame | None = None,
) -> str:
    """SHA-256 of exactly the data cells and configuration entries an analysis reads.

    The workflow passes it as a Snakemake ``param``: a job reruns when (and only when) a
    cell it depends on changes, not whenever its (shared) data file is touched, and when a
    configuration entry it depends on changes (:func:`config_dependencies`: a derived
    attribute's threshold, say), not when another analysis' entry does.
    """
    table, outcome_file, rows, used_columns = analysis_rows(name, spec, data, config, table)
    payload = {
        "studies": table[used_columns].astype(str).values.tolist(),
        "rows": rows.drop(columns=["_row"]).astype(str).values.tolist(),
        "config": config_dependencies(name, spec, config),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def run_analysis(name: str, spec: Mapping[str, Any], data: Any, config: Mapping[str, Any]) -> dict:
    """Run analysis ``name`` and return its JSON-ready result."""
    table, outcome_file, rows, used_columns = analysis_rows(name, spec, data, config)
    measure = spec["measure"]
    value_columns = ["n", "mean", "sd"] if _measure(measure).data == "continuous" else ["n", "events"]
    wide = _wide(rows, value_columns, review.arm_ids(config))
    labels = table.set_index("study_id")["label"]
    wide.insert(0, "label", labels.reindex(wide.index))
    if wide.empty:
        raise ValueError(f"analysis {name!r}: no study has data for outcome {spec['outcome']!r}")
    pooled, studies = _pool(wide, measure, spec)
    result: dict[str, Any] = {
        "analysis": name,
        "title": spec.get("title", name),
        "outcome": spec["outcome"],
        "timepoint": spec.get("timepoint"),
        "measure": measure,
        "method": spec.get("method", "DL"),
        "arms": [{"id": arm.id, "label": arm.label} for arm in review.arms(config)],
        "favours": list(review.favours(config)),
        "studies": studies,
        "pooled": pooled,
        "data_rows": {
            outcome_file: sorted(int(r) for r in rows["_row"]),
            "studies.csv": sorted(int(r) for r in table.loc[table["study_id"].isin(wide.index), "_row"]),
        },
        "study_ids": list(wide.index),
    }
    moderator = spec.get("moderator")
    if moderator:
        result.update(_subgroups(wide, table, moderator, measure, spec, config))
    if spec.get("leave_one_out"):
        result["leave_one_out"] = _leave_one_out(wide, measure, spec)
    if spec.get("bias_tests"):
        result["bias_tests"] = _bias_tests(studies)
    if spec.get("proportions"):
        result["proportions"] = _proportions(wide)
    result["numbers"] = analysis_numbers(result)
    return result


def _subgroups(wide, table, moderator, measure, spec, config) -> dict:
    from metabuild.stats.metareg import meta_regression

    level_of = table.set_index("study_id")[moderator].reindex(wide.index)
    rule = config.get("derived_attributes", {}).get(moderator)
    if rule is None and pd.api.types.is_numeric_dtype(level_of) and not pd.api.types.is_bool_dtype(level_of):
        return {"metareg": _continuous_metareg(wide, level_of, moderator, measure)}
    if rule is None:  # a categorical study attribute (a column, a risk-of-bias judgement): its levels as found
        rule = {"levels": [str(v) for v in sorted(level_of.dropna().astype(str).unique())]}
        level_of = level_of.map(lambda v: None if pd.isna(v) else str(v))
        if len(rule["levels"]) != 2:
            raise ValueError(
                f"moderator {moderator!r}: {len(rule['levels'])} levels among the studies with data "
                f"({', '.join(rule['levels'])}); a subgroup comparison needs two (declare a derived attribute)"
            )
    level_order = list(rule["levels"])
    labels = {level: level_label(level, rule, config) for level in rule["levels"]}
    subgroups = []
    for level in level_order:
        members = wide[level_of == level]
        if members.empty:
            continue
        pooled, studies = _pool(members, measure, spec)
        subgroups.append({"level": level, "label": labels.get(level, level), "pooled": pooled, "studies": studies})
    es = _study_effects(wide, measure)
    known = es.kept & level_of.notna().to_numpy()
    x = (level_of[known] == level_order[0]).astype(float).to_numpy()
    metareg: dict[str, Any] = {"moderator": moderator, "reference": level_order[1]}
    if len(np.unique(x)) == 2:
        fit = meta_regression(es.yi[known], es.vi[known], x)
        metareg.update(_plain_dict(fit))
        metareg["p"] = _plain(fit.moderator_p)
    else:
        metareg.update(p=None, note="moderator has a single level among studies with data")
    return {"subgroups": subgroups, "metareg": metareg}


def _continuous_metareg(wide: pd.DataFrame, values: pd.Series, moderator: str, measure: str) -> dict[str, Any]:
    """Random-effects meta-regression on a numeric study attribute (its slope per unit)."""
    from metabuild.stats.metareg import meta_regression

    es = _study_effects(wide, measure)
    known = es.kept & values.notna().to_numpy()
    fit = meta_regression(es.yi[known], es.vi[known], values[known].astype(float).to_numpy())
    out: dict[str, Any] = {"moderator": moderator, "continuous": True, **_plain_dict(fit)}
    out["p"] = _plain(fit.moderator_p)
    out["slope"], out["intercept"] = out["coef"][1], out["coef"][0]
    out["slope_ci_lower"], out["slope_ci_upper"] = out["ci_lower"][1], out["ci_upper"][1]
    return out


def level_label(level: str, rule: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The printed label of a subgroup level (config ``level_labels``), with ``{value}`` replaced
    by the derived attribute's threshold, so a changed threshold changes the label too."""
    label = str(config.get("level_labels", {}).get(level, level))
    value = rule.get("value")
    shown = f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
    return label.replace("{value}", shown)


def _plain_dict(obj: Any) -> dict:
    raw = obj.to_dict() if hasattr(obj, "to_dict") else dict(vars(obj))
    out = {}
    for k, v in raw.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = _plain(v) if not isinstance(v, list) else [_plain(x) for x in v]
    return out


def _leave_one_out(wide, measure, spec) -> list[dict]:
    """The pooled result without each study in turn (metabuild.stats.sensitivity: the same
    numbers as refitting each subset with :func:`_fit`, in O(k) per omission). A row whose
    subset has no informative study has None statistics and a ``note``."""
    from metabuild.stats import sensitivity

    if _stata_rr(measure, spec):
        fits = sensitivity.leave_one_out_rr(
            *_arm_counts(wide),
            heterogeneity=spec.get("rr_heterogeneity", "mh"),
        )
    else:
        from metabuild.stats.pooling import meta_analysis

        es = _study_effects(wide, measure)
        method, test = spec.get("method", "DL"), spec.get("test", "z")
        if method == "DL" and test == "z":
            fits = sensitivity.leave_one_out(es.yi[es.kept], es.vi[es.kept])
        else:
            pool = lambda y, v, level: meta_analysis(y, v, method, test, level)  # noqa: E731
            fits = sensitivity.leave_one_out(es.yi[es.kept], es.vi[es.kept], pool=pool)
        wide = wide[es.kept]
    rows = []
    for study_id, fit in zip(wide.index, fits, strict=True):
        pooled = fit.to_dict()
        pooled.pop("weights")
        if _measure(measure).ratio:  # as _fit: ratio scale, log-scale values beside
            for key in ("estimate", "ci_lower", "ci_upper"):
                pooled[f"log_{key}"] = pooled[key]
                pooled[key] = math.exp(pooled[key])
            pooled["log_se"] = pooled.pop("se")
        pooled = {key: _plain(value) for key, value in pooled.items()}
        rows.append({"omitted": study_id, "omitted_label": wide.loc[study_id, "label"], **pooled})
    return rows


def _bias_tests(studies: list[dict]) -> dict:
    from metabuild.stats import bias

    yi = np.array([s["yi"] for s in studies if s["yi"] is not None])
    vi = np.array([s["vi"] for s in studies if s["yi"] is not None])
    if yi.size < 3:
        return {"note": f"not computed: {yi.size} studies (the tests need at least 3)"}
    return {"begg": _plain_dict(bias.begg_test(yi, vi)), "egger": _plain_dict(bias.egger_test(yi, vi))}


def _proportions(wide) -> dict:
    from metabuild.stats import proportions

    out = {}
    for arm in _arms(wide):
        fit = proportions.pooled_proportion(wide[f"events_{arm}"].to_numpy(), wide[f"n_{arm}"].to_numpy())
        out[arm] = _plain_dict(fit)
    return out


#: statistics of a pooled result that become registry numbers, with their kind
POOLED_STATS = {
    "estimate": "estimate",
    "ci_lower": "estimate",
    "ci_upper": "estimate",
    "se": "se",
    "z": "statistic",
    "p": "p",
    "q": "statistic",
    "df": "count",
    "q_p": "p",
    "tau2": "tau2",
    "i2": "i2",
    "k": "count",
    "n_{intervention}": "count",
    "n_{comparator}": "count",
    "events_{intervention}": "count",
    "events_{comparator}": "count",
    "percent_{intervention}": "percent",
    "percent_{comparator}": "percent",
    "events_total": "count",
    "n_total": "count",
    "n_lower": "count",
    "n_higher": "count",
}


def analysis_numbers(result: Mapping[str, Any]) -> dict[str, dict]:
    """The registry numbers an analysis contributes: key -> {value, kind, measure}."""
    name, measure = result["analysis"], result["measure"]
    numbers: dict[str, dict] = {}
    intervention, comparator = (arm["id"] for arm in result["arms"])
    stats = {s.format(intervention=intervention, comparator=comparator): k for s, k in POOLED_STATS.items()}

    def add(prefix: str, pooled: Mapping[str, Any]) -> None:
        for stat, kind in stats.items():
            if stat in pooled and pooled[stat] is not None:
                k = "ratio" if (_measure(measure).ratio and kind == "estimate") else kind
                numbers[f"{prefix}.{stat}"] = {"value": pooled[stat], "kind": k}

    def trials(prefix: str, studies: list[Mapping[str, Any]]) -> None:
        # the trials a pooled estimate rests on (a not-estimable trial, dropped, is not one)
        pooled = [s for s in studies if s.get("estimate") is not None]
        numbers[f"{prefix}.studies"] = study_list(
            [s["study_id"] for s in pooled], {s["study_id"]: s["label"] for s in pooled}
        )

    add(name, result["pooled"])
    trials(name, result["studies"])
    for sub in result.get("subgroups", []):
        add(f"{name}.{sub['level']}", sub["pooled"])
        trials(f"{name}.{sub['level']}", sub["studies"])
    if isinstance(result.get("timepoint"), int):
        numbers[f"{name}.weeks"] = {"value": result["timepoint"], "kind": "count"}
    if result.get("metareg", {}).get("p") is not None:
        numbers[f"{name}.metareg.p"] = {"value": result["metareg"]["p"], "kind": "p"}
    if result.get("metareg", {}).get("continuous"):
        for stat in ("slope", "slope_ci_lower", "slope_ci_upper", "intercept"):
            numbers[f"{name}.metareg.{stat}"] = {"value": result["metareg"][stat], "kind": "estimate", "decimals": 4}
        numbers[f"{name}.metareg.tau2"] = {"value": result["metareg"]["tau2"], "kind": "tau2", "decimals": 4}
    for test in ("begg", "egger"):
        p = result.get("bias_tests", {}).get(test, {}).get("p_cc" if test == "begg" else "p")
        if p is not None:
            numbers[f"bias.{test}.p"] = {"value": p, "kind": "p"}
    for arm, fit in result.get("proportions", {}).items():
        for stat in ("proportion", "ci_lower", "ci_upper"):
            if fit.get(stat) is not None:
                numbers[f"{name}.proportion_{arm}.{stat}"] = {"value": 100 * fit[stat], "kind": "percent"}
    if "leave_one_out" in result:
        loo = [r for r in result["leave_one_out"] if r["estimate"] is not None]  # None: nothing left to pool
        ests = [r["estimate"] for r in loo]
        if loo:
            numbers[f"{name}.loo.min"] = {"value": min(ests), "kind": "estimate"}
            numbers[f"{name}.loo.max"] = {"value": max(ests), "kind": "estimate"}
            numbers[f"{name}.loo.max_p"] = {"value": max(r["p"] for r in loo), "kind": "p"}
    for entry in numbers.values():
        entry["measure"] = measure
    return numbers
