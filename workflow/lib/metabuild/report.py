"""The reproduction report: every published value beside the reproduced one.

For each number the paper printed (``data/published_values.csv``): the reproduced value,
the difference, whether it matches within the printed rounding, and for every mismatch the
reason, in this order of precedence:

1. ``inconsistent in paper``: a statcheck-style check of the *published* numbers flags it
   (a P that does not follow from its CI, a CI not symmetric on its scale, a percentage not
   following from its counts, the same quantity printed with two values);
2. ``reconstructed inputs``: the data rows behind the number were reconstructed (their
   ``source`` says so), so the study-level inputs are not the authors' own;
3. ``unexplained``.

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
            for arm in ("ketamine", "control"):
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
    sums = {"studies.participants": "n_total", "studies.n_ketamine": "n_ketamine", "studies.n_control": "n_control"}
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


def _uses_reconstructed(entry: Mapping[str, Any], reconstructed: Mapping[str, set[int]]) -> bool:
    for file, rows in entry.get("provenance", {}).get("data_rows", {}).items():
        if reconstructed.get(file, set()) & set(rows):
            return True
    return False


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
        if get["q"] and get["df"] and get["i2"] and get["df"]["value"]:
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
            if matches:
                status, reason = "match", ""
            elif flags:
                status, reason = "inconsistent in paper", "; ".join(flags)
            elif _uses_reconstructed(entry, reconstructed) and entry["kind"] not in ("count", "constant"):
                status, reason = "reconstructed inputs", "computed from reconstructed study-level data"
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
    data = {"summary": summary, "rows": rows, "gate": gate, "sensitivity": sensitivity}
    sens = _sensitivity_markdown(sensitivity)
    return Report(data=data, markdown=_markdown(data) + sens, html=_html(data), appendix=_appendix(data) + sens)


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
        lines.append(f"| {_code(row['key'])} | {_cell(show(row['data']))} | {_cell(show(row['plausible']))} |")
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
        "| Published values | Match | Inconsistent in paper | Reconstructed inputs | Unexplained "
        "| Not reproduced | Extracted input |",
        "|--:|--:|--:|--:|--:|--:|--:|",
        f"| {s['published_values']} | {s['match']} | {s['inconsistent in paper']} | {s['reconstructed inputs']} "
        f"| {s['unexplained']} | {s['not reproduced']} | {s['extracted input']} |",
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
        f"{s['reconstructed inputs']} differ where the study-level inputs had to be reconstructed; "
        f"{s['unexplained']} are unexplained; {s['not reproduced']} have no counterpart in this build; and "
        f"{s['extracted input']} are study-level facts read from Table 1 into the data.",
        "",
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


def _html(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    head = "".join(
        f"<th>{escape.html(k)}</th>"
        for k in ["Key", "Where printed", "Printed", "Reproduced", "Difference", "Status", "Reason"]
    )
    body = "".join(
        f'<tr class="{r["status"].replace(" ", "-")}"><td><code>{escape.html(r["key"])}</code></td>'
        f"<td>{escape.html(str(r['location']))}</td><td>{escape.html(r['printed'])}</td>"
        f"<td>{escape.html(r['text'] or '')}</td><td>{escape.html(_fmt(r['difference']))}</td>"
        f"<td>{escape.html(r['status'])}</td><td>{escape.html(r['reason'])}</td></tr>"
        for r in data["rows"]
    )
    counts = "".join(f"<li>{escape.html(k)}: {v}</li>" for k, v in s.items())
    gate = "".join(f"<li><code>{escape.html(g['key'])}</code>: {escape.html(g['message'])}</li>" for g in data["gate"])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Reproduction report</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px}.match{background:#eef8ee}"
        ".unexplained{background:#fbeaea}.inconsistent-in-paper{background:#fff6dd}</style></head><body>"
        f"<h1>Reproduction report</h1><ul>{counts}</ul><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table><h2>Consistency gate</h2><ul>{gate}</ul></body></html>\n"
    )
