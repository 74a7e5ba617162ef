"""The provenance document: for every number the manuscripts print, where it came from.

It is a document of its own (``results/manuscript/provenance.html`` and ``.pdf``), not an
appendix of the paper: the paper's audit rendering links each number to its entry here. Numbers
are grouped by the job that computed them, so each job's rule, script and inputs (with their
SHA-256) and the data rows it read are listed once, followed by its numbers: the value shown and
the value printed in the original article.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from metabuild.escape import markdown

#: a registry span of a manuscript: [key]{.num ...}, [key]{.cite}, [key]{.trials ...}
_SPAN = re.compile(r"\[([A-Za-z0-9_.\-]+)\]\{\.(?:num|cite|trials)\b[^{}]*\}")
#: a Div that includes a generated file: ::: {#tbl-x .include file="../results/tables/t.md"}
_INCLUDE = re.compile(r'\{[^{}]*\.include\b[^{}]*\bfile="([^"]+)"[^{}]*\}')


def keys_used(qmd: str | Path, numbers: Mapping[str, Any]) -> list[str]:
    """The registry keys a manuscript prints, in order of first use: its spans and those of the
    files it includes (tables, reports), as ``manuscript/filters/numbers.lua`` meets them."""
    path = Path(qmd)
    found: dict[str, None] = {}

    def scan(text: str, origin: Path, depth: int = 0) -> None:
        for m in re.finditer(f"{_SPAN.pattern}|{_INCLUDE.pattern}", text):
            if m.group(1):
                found.setdefault(m.group(1), None)
            elif depth < 3:
                included = (origin.parent / m.group(2)).resolve()
                if included.is_file():
                    scan(included.read_text(encoding="utf-8"), included, depth + 1)

    scan(path.read_text(encoding="utf-8"), path)
    return [k for k in found if k in numbers]


def row_ranges(rows: Iterable[int]) -> str:
    """Row numbers as ranges: [2, 3, 4, 7] -> "2–4, 7"."""
    runs: list[list[int]] = []
    for row in sorted(set(int(r) for r in rows)):
        if runs and row == runs[-1][1] + 1:
            runs[-1][1] = row
        else:
            runs.append([row, row])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)


def _printed(value: Any) -> str:
    if value is None:
        return "not printed"
    if isinstance(value, Mapping):
        for name in ("printed", "text", "value"):
            if value.get(name) is not None:
                return str(value[name])
        return "not printed"
    if isinstance(value, list):  # the article prints it in several places: each text once
        return " | ".join(dict.fromkeys(_printed(v) for v in value)) or "not printed"
    return str(value)


def _cell(text: str) -> str:
    return markdown(text) if text else " "


def provenance_markdown(numbers: Mapping[str, Mapping[str, Any]], used: Mapping[str, Sequence[str]]) -> str:
    """The provenance document's body (pandoc Markdown) for the keys each document uses.

    ``used`` maps a document's name ("paper") to its keys in order. Every value from the
    registry is escaped (:func:`metabuild.escape.markdown`): it is text, never markup."""
    where: dict[str, list[str]] = {}
    for document, keys in used.items():
        for key in keys:
            where.setdefault(key, []).append(document)
    jobs: dict[str, list[str]] = {}
    for key in where:
        jobs.setdefault(str(numbers[key].get("job") or "registry"), []).append(key)

    lines: list[str] = []
    for job in sorted(jobs):
        keys = jobs[job]
        prov = numbers[keys[0]].get("provenance") or {}
        lines += [f"## {markdown(job)}", ""]
        outputs = [o for o in (prov.get("outputs") or [numbers[keys[0]].get("output")]) if o]
        if outputs:
            lines += ["Output: " + ", ".join(f"`{o}`" for o in outputs) + ".", ""]
        rows = prov.get("data_rows") or {}
        data = "; ".join(f"{markdown(name)} {row_ranges(r)}" for name, r in sorted(rows.items()) if r)
        if data:
            lines += [f"Data rows read (the header is row 1): {data}.", ""]
        inputs = prov.get("inputs") or []
        if inputs:
            lines += ["| Input | SHA-256 (first 12) |", "|:--|:--|"]
            lines += [f"| `{i['path']}` | `{str(i.get('sha256', ''))[:12]}` |" for i in inputs]
            lines.append("")
        lines += ["| Number | Shown | Published | In |", "|:--|:--|:--|:--|"]
        for key in keys:
            entry = numbers[key]
            shown = entry.get("text")
            lines.append(
                f"| [{markdown(key)}]{{#prov-{key}}} | {_cell(str(shown) if shown is not None else '')}"
                f" | {_cell(_printed(entry.get('published')))} | {', '.join(where[key])} |"
            )
        lines.append("")
    return "\n".join(lines)
