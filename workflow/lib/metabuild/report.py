"""The reproduction report: every published value beside the reproduced one.

For each number the paper printed (``data/published_values.csv``): the reproduced value,
the difference, whether it matches within the printed rounding, and for every mismatch the
reason, in this order of precedence:

1. ``inconsistent in paper``: a statcheck-style check of the *published* numbers flags it
   (a P that does not follow from its CI, a CI not symmetric on its scale, a percentage not
   following from its counts, the same quantity printed with two values);
2. ``study set differs``: the number draws on a trial the published article did not include,
   or the article included a trial the data no longer hold (the trials are named, also in the
   reason of a value under 1.). The article's trials are those its Table 1 lists: the
   ``table1.<study_id>.*`` rows of ``data/published_values.csv`` (see :func:`published_trials`);
3. ``reconstructed inputs``: the data rows behind the number were reconstructed (their
   ``source`` says so), so the study-level inputs are not the authors' own;
4. ``unexplained``.

It also runs the consistency gate over the project's own numbers (CI/P/I2 agree, flow
counts add up); each failure is reported by key.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from metabuild import escape
from metabuild.stats import consistency

STATUS_ORDER = [
    "match",
    "inconsistent in paper",
    "study set differs",
    "reconstructed inputs",
    "unexplained",
    "not reproduced",
    "extracted input",
]


@dataclass
class Report:
    data: dict
    markdown: str
    html: str
    appendix: str = ""  # compact Markdown for the supplement's appendix
    differences: str = ""  # Markdown: only the values that differ, grouped by why


def _group_findings(published: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """Consistency findings on the published numbers, per (key, location)."""
    by_location: dict[str, dict[str, str]] = defaultdict(dict)
    for row in published.itertuples():
        by_location[row.location][row.key] = row.printed
    findings: dict[tuple[str, str], list[str]] = defaultdict(list)
    anywhere = {row.key: row.printed for row in published.itertuples()}
    for location, printed in by_location.items():
        prefixes = {k.rsplit(".", 1)[0] for k in printed}
        for prefix in prefixes:
            # heterogeneity P printed beside I2 = 0: Q <= df, so P >= P(chi2_df > df)
            q_p, i2, k = (printed.get(f"{prefix}.{x}") or anywhere.get(f"{prefix}.{x}") for x in ("q_p", "i2", "k"))
            if q_p and i2 and k and _number(i2) == 0 and _number(k) and _number(k) > 1 and _number(q_p) is not None:
                df = int(_number(k)) - 1
                floor = float(stats.chi2.sf(df, df))
                if _number(q_p) < floor:
                    findings[(f"{prefix}.q_p", location)].append(
                        f"I2 = {i2} means Q <= df = {df}, so the heterogeneity P is at least {floor:.2f}, not {q_p}"
                    )
        for prefix in prefixes:
            est, lo, hi = (printed.get(f"{prefix}.{s}") for s in ("estimate", "ci_lower", "ci_upper"))
            if est and lo and hi:
                ratio = (
                    not est.strip().replace("\u2212", "-").startswith("-")
                    and float(est.replace("\u2212", "-")) > 0
                    and float(lo.replace("\u2212", "-")) > 0
                )
                try:
                    for f in consistency.check_reported_estimate(est, lo, hi, printed.get(f"{prefix}.p"), ratio=ratio):
                        target = f"{prefix}.p" if f.kind == "p_value" else f"{prefix}.estimate"
                        findings[(target, location)].append(f.message)
                        if f.kind == "ci_asymmetry":
                            for s in ("ci_lower", "ci_upper"):
                                findings[(f"{prefix}.{s}", location)].append(f.message)
                except ValueError:
                    pass
            # the arms whose percentages this location prints (the registry names them percent_<arm>)
            arms = sorted(k.removeprefix(f"{prefix}.percent_") for k in printed if k.startswith(f"{prefix}.percent_"))
            for arm in arms:
                pct = printed.get(f"{prefix}.percent_{arm}")
                # the counts may be printed elsewhere in the paper (e.g. Table 2) than the percentage
                events, n = (
                    printed.get(f"{prefix}.{s}_{arm}") or anywhere.get(f"{prefix}.{s}_{arm}") for s in ("events", "n")
                )
                if pct and events and n:
                    f = consistency.check_percentage(int(float(events)), int(float(n)), pct)
                    if f:
                        findings[(f"{prefix}.percent_{arm}", location)].append(f.message)
    findings_tables = _table_findings(published, by_location)
    for k, v in findings_tables.items():
        findings[k].extend(v)
    # the same quantity printed with different values in different places
    for key, group in published.groupby("key"):
        values = set(group["printed"].str.strip())
        if len(values) > 1:
            for row in group.itertuples():
                others = ", ".join(
                    f"{r.printed} ({r.location})" for r in group.itertuples() if r.location != row.location
                )
                findings[(key, row.location)].append(f"the paper prints this quantity differently elsewhere: {others}")
    return findings


def _number(text: str) -> float | None:
    try:
        return float(str(text).replace("\u2212", "-").replace("%", "").strip())
    except ValueError:
        return None


def _table_findings(published: pd.DataFrame, by_location: Mapping[str, Mapping[str, str]]) -> dict:
    """Numbers in the text that do not follow from the paper's own tables or printed inputs."""
    findings: dict[tuple[str, str], list[str]] = defaultdict(list)
    table1 = defaultdict(dict)  # quantity -> study -> value, as printed in Table 1
    for row in published.itertuples():
        parts = row.key.split(".")
        if parts[0] == "table1" and len(parts) == 3 and _number(row.printed) is not None:
            table1[parts[2]][parts[1]] = _number(row.printed)
    # a duration Table 1 prints in minutes ("30 min") is one of its durations in hours
    for study, minutes in table1.get("minutes", {}).items():
        table1["hours_total"].setdefault(study, minutes / 60)
    # totals printed in the text against the sums of Table 1's columns (n_<arm> per arm)
    sums = {"studies.participants": "n_total"} | {
        k: k.removeprefix("studies.") for k in published["key"] if str(k).startswith("studies.n_")
    }
    summaries = {
        "regimen.hours_median": ("hours_total", "median"),
        "regimen.hours_min": ("hours_total", "min"),
        "regimen.hours_max": ("hours_total", "max"),
    }
    for row in published.itertuples():
        value = _number(row.printed)
        if value is None:
            continue
        if row.key in sums and len(table1[sums[row.key]]) >= 2:
            total = sum(table1[sums[row.key]].values())
            if abs(total - value) > 0.5:
                findings[(row.key, row.location)].append(
                    f"Table 1's {sums[row.key]} values sum to {total:g}, not {row.printed}"
                )
        if row.key in summaries and len(table1[summaries[row.key][0]]) >= 2:
            column, how = summaries[row.key]
            values = pd.Series(list(table1[column].values()))
            expected = getattr(values, how)()
            if abs(expected - value) > 1e-9:
                findings[(row.key, row.location)].append(
                    f"the {how} of Table 1's {column} values is {expected:g}, not {row.printed}"
                )
    # sample sizes that do not follow from the printed power-calculation inputs
    for location, printed in by_location.items():
        sd, alpha, beta = (
            _number(printed.get(f"sample_size.{k}", "")) for k in ("sd", "alpha_percent", "type2_percent")
        )
        if None in (sd, alpha, beta):
            continue
        from metabuild.stats.power import sample_size_two_means

        for key, difference in (("sample_size.n_small", 1.0), ("sample_size.n_large", 1.5)):
            if key in printed:
                n = sample_size_two_means(difference, sd, alpha / 100, 1 - beta / 100).n_per_group
                if _number(printed[key]) != n:
                    findings[(key, location)].append(
                        f"a {difference:g}-point difference with SD {sd:g}, alpha {alpha:g}% and power "
                        f"{100 - beta:g}% needs {n} per group (t test), not {printed[key]}"
                    )
    return findings


def _grade_findings(published: pd.DataFrame, data_dir: Path) -> dict:
    """A printed GRADE certainty that does not follow from the printed judgements."""
    from metabuild.tables import certainty

    findings: dict[tuple[str, str], list[str]] = defaultdict(list)
    path = data_dir / "grade.csv"
    if not path.exists():
        return findings
    grade = pd.read_csv(path, dtype=str, keep_default_na=False)
    for row in published.itertuples():
        parts = row.key.split(".")
        if parts[0] == "grade" and parts[-1] == "certainty":
            judgements = grade[grade["outcome_id"] == parts[1]]
            if judgements.empty:
                continue
            derived = certainty(dict(zip(judgements["domain"], judgements["judgement"], strict=True)))
            if derived.lower() != str(row.printed).strip().lower():
                findings[(row.key, row.location)].append(
                    f"the judgements printed in the same row give {derived}, not {row.printed}"
                )
    return findings


def _reconstructed_rows(data_dir: Path) -> dict[str, set[int]]:
    rows: dict[str, set[int]] = {}
    for path in data_dir.glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "source" in frame:
            rows[path.name] = {i + 2 for i, s in enumerate(frame["source"]) if "reconstructed" in s.lower()}
    return rows


def published_trials(published: pd.DataFrame) -> list[str] | None:
    """The trials of the published article: the study ids of its Table 1 rows
    (``table1.<study_id>.<field>`` keys of ``data/published_values.csv``), sorted.

    Derived, not declared a second time in the configuration: published_values.csv is by
    definition what the article printed, and its Table 1 has one row per included trial, so
    the set is already data there and adding or removing a trial in the data never touches
    it. When the article's trial count (``studies.count``) is also recorded, the two must
    agree. None when no Table 1 row is recorded (the set is unknown).
    """
    keys = published["key"].astype(str).str.split(".")
    trials = sorted({parts[1] for parts in keys if len(parts) == 3 and parts[0] == "table1"})
    if not trials:
        return None
    counts = {
        float(value)
        for key, value in zip(published["key"], published.get("value", []), strict=False)
        if key == "studies.count" and _number(value) is not None
    }
    if counts and counts != {float(len(trials))}:
        printed = ", ".join(f"{c:g}" for c in sorted(counts))
        raise ValueError(
            f"data/published_values.csv: Table 1 rows (table1.<study_id>.*) name {len(trials)} trials "
            f"({', '.join(trials)}) but studies.count is {printed}"
        )
    return trials


def _trials_by_row(data_dir: Path) -> dict[str, list[str]]:
    """file name -> the study id of each row (index = row number - 2), for files with one."""
    out: dict[str, list[str]] = {}
    for path in data_dir.glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "study_id" in frame:
            out[path.name] = list(frame["study_id"])
    return out


def _number_trials(
    entry: Mapping[str, Any], trials_by_row: Mapping[str, list[str]], upstream: Mapping[str, set[str]]
) -> set[str]:
    """The trials a registry number draws on: those of the data rows it records, and those of
    the results it was computed from (Table 2's numbers read the analyses' results)."""
    provenance = entry.get("provenance", {})
    trials: set[str] = set()
    for file, rows in provenance.get("data_rows", {}).items():
        ids = trials_by_row.get(file)
        if ids is not None:
            trials |= {ids[r - 2] for r in rows if 0 <= r - 2 < len(ids)}
    for item in provenance.get("inputs", []):
        trials |= upstream.get(item.get("path", ""), set())
    return trials


def _trial_sets(numbers: Mapping[str, Any], data_dir: Path) -> dict[str, set[str]]:
    """key -> trials drawn on, for every registry number."""
    trials_by_row = _trials_by_row(data_dir)
    direct = {key: _number_trials(entry, trials_by_row, {}) for key, entry in numbers.items()}
    upstream: dict[str, set[str]] = defaultdict(set)
    for key, entry in numbers.items():
        upstream[entry.get("output", "")] |= direct[key]
    return {key: _number_trials(entry, trials_by_row, upstream) for key, entry in numbers.items()}


def study_set(published: pd.DataFrame, data_dir: Path) -> dict[str, Any] | None:
    """The published article's trials beside the data's: ``published``, ``data``, ``added``
    (in the data, not in the article) and ``removed`` (in the article, not in the data);
    None when the article's set is unknown."""
    article = published_trials(published)
    path = data_dir / "studies.csv"
    if article is None or not path.exists():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    present = sorted(set(frame["study_id"]))
    return {
        "published": article,
        "data": present,
        "added": sorted(set(present) - set(article)),
        "removed": sorted(set(article) - set(present)),
        "labels": dict(zip(frame["study_id"], frame.get("label", frame["study_id"]), strict=True)),
    }


def _study_set_reason(trials: set[str], differs: Mapping[str, Any] | None) -> str:
    """Why a number's study set differs from the article's ("" when it does not)."""
    if not differs or not trials:
        return ""
    added = sorted(trials & set(differs["added"]))
    parts = []
    if added:
        parts.append(f"computed with {', '.join(added)}, which the published article did not include")
    if differs["removed"]:
        parts.append(
            f"computed without {', '.join(differs['removed'])}, which the published article included "
            "and the data no longer hold"
        )
    return "; ".join(parts)


def _uses_reconstructed(entry: Mapping[str, Any], reconstructed: Mapping[str, set[int]]) -> bool:
    for file, rows in entry.get("provenance", {}).get("data_rows", {}).items():
        if reconstructed.get(file, set()) & set(rows):
            return True
    return False


def _i2_from_q(entry: Mapping[str, Any]) -> bool:
    """Whether an analysis's I2 is Higgins & Thompson's (Q - df)/Q: with the DerSimonian-Laird
    and fixed-effect fits. With REML or Paule-Mandel, I2 = tau2 / (tau2 + s2) from that tau2
    (as metafor's rma reports it), which Q does not determine."""
    spec = ((entry.get("provenance") or {}).get("params") or {}).get("spec") or {}
    return spec.get("method", "DL") in ("DL", "EE", "FE")


def self_consistency(registry: Mapping[str, Any]) -> list[dict]:
    """The consistency gate over the project's own printed numbers."""
    numbers = registry["numbers"]
    failures = []
    prefixes = {k.rsplit(".", 1)[0] for k in numbers if k.endswith(".estimate")}
    for prefix in sorted(prefixes):
        get = {s: numbers.get(f"{prefix}.{s}") for s in ("estimate", "ci_lower", "ci_upper", "p", "q", "df", "i2")}
        if all(get[s] for s in ("estimate", "ci_lower", "ci_upper")):
            ratio = get["estimate"]["kind"] == "ratio"
            texts = [get[s]["text"].replace("\u2212", "-") for s in ("estimate", "ci_lower", "ci_upper")]
            p_text = get["p"]["text"] if get["p"] else None
            try:
                for f in consistency.check_reported_estimate(*texts, p_text, ratio=ratio):
                    failures.append(
                        {
                            "key": f"{prefix}.{'p' if f.kind == 'p_value' else 'estimate'}",
                            "check": f.kind,
                            "message": f.message,
                        }
                    )
            except ValueError:
                pass
        if get["q"] and get["df"] and get["i2"] and get["df"]["value"] and _i2_from_q(get["i2"]):
            f = consistency.check_i2(get["q"]["text"], int(get["df"]["value"]), get["i2"]["text"])
            if f:
                failures.append({"key": f"{prefix}.i2", "check": "i2", "message": f.message})
    flow = {k.removeprefix("flow."): v["value"] for k, v in numbers.items() if k.startswith("flow.")}
    if flow:
        checks = [
            (
                "flow.duplicates_removed",
                flow.get("records_identified", 0) - flow.get("records_screened", 0),
                flow.get("duplicates_removed"),
            ),
            ("flow.included", flow.get("included_in_data"), flow.get("included")),
        ]
        for key, expected, actual in checks:
            if expected is not None and actual is not None and expected != actual:
                failures.append(
                    {"key": key, "check": "flow", "message": f"{key} is {actual} but the counts give {expected}"}
                )
    return failures


def reproduction_report(
    registry: Mapping[str, Any],
    published: pd.DataFrame,
    data_dir: str | Path = "data",
    sensitivity: Mapping[str, Any] | None = None,
    waivers: Mapping[str, str] | None = None,
) -> Report:
    """The report; ``waivers`` (config ``consistency_waivers``: key -> reason) mark the
    consistency-gate failures the authors accept, which the report prints with their reason."""
    numbers = registry["numbers"]
    findings = _group_findings(published)
    for k, v in _grade_findings(published, Path(data_dir)).items():
        findings[k].extend(v)
    reconstructed = _reconstructed_rows(Path(data_dir))
    differs = study_set(published, Path(data_dir))
    trials_of = _trial_sets(numbers, Path(data_dir)) if differs and (differs["added"] or differs["removed"]) else {}
    rows = []
    for row in published.itertuples():
        entry = numbers.get(row.key)
        record = {
            "key": row.key,
            "location": row.location,
            "printed": row.printed,
            "kind": getattr(row, "kind", ""),
            "note": getattr(row, "note", ""),
        }
        flags = findings.get((row.key, row.location), [])
        if entry is None and row.key.startswith("table1."):
            record.update(
                reproduced=None,
                text=None,
                difference=None,
                status="extracted input",
                reason="a study-level fact read from this place into data/; not recomputed",
            )
        elif entry is None:
            record.update(
                reproduced=None,
                text=None,
                difference=None,
                status="not reproduced",
                reason="; ".join(flags) or "the pipeline computes no such number",
            )
        else:
            comparison = next((c for c in entry.get("published", []) if c["location"] == row.location), None)
            matches = comparison["matches"] if comparison else None
            record.update(
                reproduced=entry["value"],
                text=entry["text"],
                difference=comparison["difference"] if comparison else None,
            )
            set_reason = _study_set_reason(trials_of.get(row.key, set()), differs)
            if not matches and row.key.endswith(".n_high_risk"):
                # the rebuild counts the analysis' trials that the article's own Figure 2 (extracted
                # in risk_of_bias.csv) rates at high overall risk: a different printed count is the
                # article contradicting its figure
                flags.append(
                    f"the article's Figure 2 rates {entry['text']} of these trials at high overall risk of bias, "
                    f"not {row.printed}"
                )
            if matches:
                status, reason = "match", ""
            elif flags:
                # the paper's own contradiction stays the status; a changed trial set is named too
                status, reason = "inconsistent in paper", "; ".join([*flags, *filter(None, [set_reason])])
            elif set_reason:
                status, reason = "study set differs", set_reason
            elif _uses_reconstructed(entry, reconstructed) and entry["kind"] not in ("count", "constant"):
                status, reason = "reconstructed inputs", "computed from reconstructed study-level data"
            elif row.key.endswith(".n_nonoverlapping"):
                status = "reconstructed inputs"
                reason = "counted from the trials' CIs, which are reconstructed (the article only draws them)"
            else:
                status, reason = "unexplained", "no check explains the difference"
            record.update(status=status, reason=reason)
        rows.append(record)
    gate = self_consistency(registry)
    for failure in gate:
        if failure["key"] in (waivers or {}):
            failure["waived"] = waivers[failure["key"]]
    summary = {s: sum(r["status"] == s for r in rows) for s in STATUS_ORDER}
    summary["published_values"] = len(rows)
    summary["gate_failures"] = sum("waived" not in g for g in gate)
    summary["gate_waived"] = len(gate) - summary["gate_failures"]
    data = {"summary": summary, "rows": rows, "gate": gate, "sensitivity": sensitivity, "study_set": differs}
    sens = _sensitivity_markdown(sensitivity)
    return Report(
        data=data,
        markdown=_markdown(data) + sens,
        html=_html(data),
        appendix=_appendix(data) + sens,
        differences=_differences(data),
    )


def _sensitivity_markdown(sensitivity: Mapping[str, Any] | None) -> str:
    """The pain analyses on the data files beside the plausible-bounds reconstruction."""
    if not sensitivity:
        return ""
    from metabuild.formatting import format_number, format_p

    def show(result: Mapping[str, Any]) -> str:
        if "estimate" not in result:
            return "P " + format_p(result["p"]) if result.get("p") is not None else ""
        return (
            f"{format_number(result['estimate'], 'estimate')} ({format_number(result['ci_lower'], 'estimate')} "
            f"to {format_number(result['ci_upper'], 'estimate')}); I² {format_number(result['i2'], 'i2')}"
        )

    lines = [
        "",
        "**Sensitivity to the reconstruction.** Reproducing the published pooled values needs one trial "
        f"SD of {format_number(sensitivity['min_sd_data'], 'estimate')} on the 0–10 scale, far below what pain "
        "scores show (as if a standard error had been extracted as an SD). Refitting the same published values "
        f"with every SD at least {format_number(sensitivity['min_sd_plausible'], 'estimate')} gives:",
        "",
        f"| Analysis | As reconstructed (data files) | {_cell(sensitivity.get('label', 'Alternative'))} |",
        "|:--|:--|:--|",
    ]
    for row in sensitivity["rows"]:
        lines.append(f"| {_cell(_code(row['key']))} | {_cell(show(row['data']))} | {_cell(show(row['plausible']))} |")
    extracted = sensitivity.get("trials", {}).get("as_extracted", [])
    if extracted:
        names = ", ".join(f"{_cell(t['label'])} ({_cell(_code(t['study_id']))})" for t in extracted)
        lines += ["", f"Trials the refit does not cover enter as extracted, with their data rows unchanged: {names}."]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}".replace("-", "\u2212")
    return str(value)


def _markdown(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    lines = [
        "Each number the published paper prints, beside the value this build reproduces. "
        "A value matches when it rounds to the printed text.",
        "",
        *_study_set_lines(data.get("study_set")),
        "| Published values | Match | Inconsistent in paper | Study set differs | Reconstructed inputs "
        "| Unexplained | Not reproduced | Extracted input |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
        f"| {s['published_values']} | {s['match']} | {s['inconsistent in paper']} | {s['study set differs']} "
        f"| {s['reconstructed inputs']} | {s['unexplained']} | {s['not reproduced']} | {s['extracted input']} |",
        "",
        "| Key | Where printed | Printed | Reproduced | Difference | Status | Reason | Curator's note |",
        "|:--|:--|--:|--:|--:|:--|:--|:--|",
    ]
    for r in data["rows"]:
        cells = [
            _code(r["key"]),
            r["location"],
            r["printed"],
            r["text"] or "",
            _fmt(r["difference"]),
            r["status"],
            r["reason"],
            r.get("note") or "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", f"Consistency gate over this build's own numbers: {s['gate_failures']} failure(s)."]
    for g in data["gate"]:
        waived = f" Waived in config/config.yaml (consistency_waivers): {g['waived']}" if "waived" in g else ""
        lines.append(rf"- {_cell(_code(g['key']))} \({_cell(g['check'])}\): {_cell(g['message'] + '.' + waived)}")
    return "\n".join(lines) + "\n"


def _study_set_lines(differs: Mapping[str, Any] | None) -> list[str]:
    """A paragraph naming the trials added to or removed from the published article's set
    (nothing when the data hold exactly the article's trials)."""
    if not differs or not (differs["added"] or differs["removed"]):
        return []

    def named(ids: list[str]) -> str:
        return ", ".join(
            f"{_cell(differs['labels'][i])} ({_cell(_code(i))})" if i in differs["labels"] else _cell(_code(i))
            for i in ids
        )

    parts = [f"The data hold {len(differs['data'])} trials; the published article had {len(differs['published'])}."]
    if differs["added"]:
        parts.append(f"Added since: {named(differs['added'])}.")
    if differs["removed"]:
        parts.append(f"No longer in the data: {named(differs['removed'])}.")
    parts.append('A value that differs because of this is marked "study set differs".')
    return [" ".join(parts), ""]


def _cell(value: Any) -> str:
    """A Markdown table cell: text from data (a location, a printed value, a note) escaped
    by :func:`metabuild.escape.markdown`; :class:`~metabuild.escape.Markup` as it is."""
    return escape.markdown(value)


def _code(key: Any) -> escape.Markup:
    """A registry key as inline code. Keys match ``^[a-z0-9_][a-z0-9_.@]*$``
    (data/schemas/published_values.schema.json), so no backtick can end the code span; any
    other key is shown as escaped text."""
    key = str(key)
    if re.fullmatch(r"[a-z0-9_][a-z0-9_.@]*", key):
        return escape.Markup(key, f"`{key}`")
    return escape.Markup(key, escape.markdown(key))


def _appendix(data: Mapping[str, Any]) -> str:
    """The report in five columns, to fit a printed page; the HTML report has every detail."""
    s = data["summary"]
    lines = [
        f"Of {s['published_values']} values printed in the article, {s['match']} are reproduced within their "
        f"printed rounding; {s['inconsistent in paper']} contradict the article's own numbers; "
        + (f"{s['study set differs']} differ because the set of trials differs; " if s["study set differs"] else "")
        + f"{s['reconstructed inputs']} differ where the study-level inputs had to be reconstructed; "
        f"{s['unexplained']} are unexplained; {s['not reproduced']} have no counterpart in this build; and "
        f"{s['extracted input']} are study-level facts read from Table 1 into the data.",
        "",
        *_study_set_lines(data.get("study_set")),
        "| Key | Where printed | Printed | Reproduced | Status and reason |",
        "|:--|:--|--:|--:|:--|",
    ]
    for r in data["rows"]:
        if r["status"] == "extracted input":
            continue
        status = r["status"] + (f": {r['reason']}" if r["reason"] and r["status"] != "match" else "")
        cells = [_code(r["key"]), r["location"], r["printed"], r["text"] or "", status]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


#: why a printed value differs, in the order the differences table gives them
DIFFERENCE_HEADINGS = {
    "inconsistent in paper": "The article contradicts itself",
    "study set differs": "The set of trials differs from the article's",
    "reconstructed inputs": "Computed from reconstructed study-level values",
    "unexplained": "Not explained",
    "not reproduced": "Not computed by this rebuild",
}


def _differences(data: Mapping[str, Any]) -> str:
    """The printed values this rebuild does not reproduce, grouped by the reason, for the
    supplement's "Differences from the published article" (the full report is its appendix)."""
    lines = []
    for status, heading in DIFFERENCE_HEADINGS.items():
        rows = [r for r in data["rows"] if r["status"] == status]
        if not rows:
            continue
        lines += [
            f"**{_cell(heading)}** ({len(rows)})",
            "",
            "| Where printed | Printed | Rebuilt | Why |",
            # relative column widths (the dashes): the reason gets half the width
            "|:" + "-" * 28 + "|" + "-" * 9 + ":|" + "-" * 9 + ":|:" + "-" * 50 + "|",
        ]
        for r in rows:
            cells = [r["location"], r["printed"], r["text"] or "", r["reason"] or ""]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines) or "Every value the article prints is reproduced.\n"


#: sorting and filtering of the report's table in the browser: a self-contained page an auditor
#: opens offline (no library, no network), so a few lines of plain JavaScript
_TABLE_SCRIPT = """
const table = document.getElementById('report'), rows = Array.from(table.tBodies[0].rows);
const status = document.getElementById('status'), search = document.getElementById('search');
const count = document.getElementById('count');
function apply() {
  const want = status.value, text = search.value.toLowerCase();
  let shown = 0;
  for (const row of rows) {
    const ok = (!want || row.dataset.status === want) && (!text || row.textContent.toLowerCase().includes(text));
    row.hidden = !ok; shown += ok;
  }
  count.textContent = shown + ' of ' + rows.length + ' rows';
}
status.addEventListener('change', apply); search.addEventListener('input', apply);
table.tHead.querySelectorAll('th').forEach((th, i) => th.addEventListener('click', () => {
  const up = th.dataset.dir !== 'up'; th.dataset.dir = up ? 'up' : 'down';
  const key = r => { const t = r.cells[i].dataset.sort ?? r.cells[i].textContent.trim();
                     const n = parseFloat(t.replace('\\u2212', '-')); return isNaN(n) ? t : n; };
  rows.sort((a, b) => { const x = key(a), y = key(b);
    const c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return up ? c : -c; });
  rows.forEach(r => table.tBodies[0].appendChild(r));
}));
apply();
"""


def _markdown_html(markdown: str) -> str:
    """Markdown the report wrote (its sensitivity section, the trial set) as an HTML fragment, by
    the project's pandoc: the HTML holds what the Markdown holds, from one source."""
    import subprocess

    from metabuild.render import _pandoc_path

    if not markdown.strip():
        return ""
    command = [_pandoc_path(), "--from", "markdown", "--to", "html5"]
    return subprocess.run(command, input=markdown, capture_output=True, text=True, check=True).stdout


def _html(data: Mapping[str, Any]) -> str:
    """The full report as one self-contained HTML page: every column of the Markdown report (the
    curation note included), the trial set, the sensitivity section and the consistency gate; the
    table sorts by any column (click its header) and filters by status and by text."""
    s = data["summary"]
    columns = ["Key", "Where printed", "Printed", "Reproduced", "Difference", "Status", "Reason", "Curation note"]
    head = "".join(f'<th title="click to sort">{escape.html(k)}</th>' for k in columns)

    def difference(r: Mapping[str, Any]) -> str:
        if r["difference"] is None:
            return "<td></td>"
        return f'<td data-sort="{abs(float(r["difference"]))}">{escape.html(_fmt(r["difference"]))}</td>'

    body = "".join(
        f'<tr class="{r["status"].replace(" ", "-")}" data-status="{escape.html(r["status"])}">'
        f"<td><code>{escape.html(r['key'])}</code></td>"
        f"<td>{escape.html(str(r['location']))}</td><td>{escape.html(r['printed'])}</td>"
        f"<td>{escape.html(r['text'] or '')}</td>{difference(r)}"
        f"<td>{escape.html(r['status'])}</td><td>{escape.html(r['reason'])}</td>"
        f"<td>{escape.html(r.get('note') or '')}</td></tr>"
        for r in data["rows"]
    )
    statuses = "".join(
        f'<option value="{escape.html(k)}">{escape.html(k)} ({v})</option>' for k, v in s.items() if k in STATUS_ORDER
    )
    counts = "".join(f"<li>{escape.html(k)}: {v}</li>" for k, v in s.items())
    gate = "".join(
        f"<li><code>{escape.html(g['key'])}</code> ({escape.html(g['check'])}): {escape.html(g['message'])}"
        + (f" <em>Waived: {escape.html(g['waived'])}</em>" if "waived" in g else "")
        + "</li>"
        for g in data["gate"]
    )
    extra = _markdown_html(
        "\n".join(_study_set_lines(data.get("study_set"))) + _sensitivity_markdown(data["sensitivity"])
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reproduction report</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}th{cursor:pointer;background:#f4f4f4}"
        ".match{background:#eef8ee}.unexplained{background:#fbeaea}.inconsistent-in-paper{background:#fff6dd}"
        ".study-set-differs{background:#eaf1fb}.controls{margin:1em 0}</style></head><body>"
        f"<h1>Reproduction report</h1><ul>{counts}</ul>"
        '<div class="controls"><label>Status <select id="status"><option value="">all</option>'
        f'{statuses}</select></label> <label>Find <input id="search" type="search"></label> '
        '<span id="count"></span></div>'
        f'<table id="report"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"{extra}<h2>Consistency gate</h2><ul>{gate}</ul><script>{_TABLE_SCRIPT}</script></body></html>\n"
    )
