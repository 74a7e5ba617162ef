"""``metabuild diff OLD NEW``: every reported number whose printed text changed between two
builds, where the manuscript shows it, and why (the data cells, configuration entries and code
files upstream of it that changed); plus the figures, tables and documents that changed.

OLD and NEW are two build folders (a results folder holding numbers.json, or a project tree
holding results/numbers.json) or two git revisions of the project (each is exported with
``git archive`` and built with Snakemake; builds are kept per commit under --workdir and reused).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metabuild.audit.common import (
    AuditError,
    Project,
    flatten,
    pk_text,
    primary_key,
    read_raw,
    short,
)
from metabuild.audit.dependence import (
    Dependence,
    Edit,
    RawData,
    config_changes,
    missing,
    set_path,
)
from metabuild.provenance import sha256_file

HELP = "what changed between two builds or git revisions, and why"

#: output folders compared file by file (beside numbers.json)
OUTPUT_FOLDERS = ("figures", "tables", "manuscript", "reports")
#: source files of a project tree compared when both trees are at hand
SOURCE_GLOBS = ("Snakefile", "workflow/**/*", "manuscript/**/*", "config/**/*")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("old", help="old build folder or git revision")
    parser.add_argument("new", help="new build folder or git revision")
    parser.add_argument("--out", default=None, help="folder for diff.md, diff.html, diff.json (default: results/diff)")
    parser.add_argument(
        "--workdir",
        default=None,
        help="where revisions are exported and built "
        "(default: .snakemake/metabuild/builds; a finished build is reused)",
    )
    parser.add_argument("--cores", default="2", help="Snakemake --cores for revision builds (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    return parser


# ------------------------------------------------------------------------------------------------
# cell-level diff of the data files


def cell_diff(old: Any, new: Any, pk: list[str], file: str = "") -> dict[str, Any]:
    """Cell-level difference of two raw tables (string DataFrames) keyed by primary key ``pk``.

    Returns ``{"cells": [...], "added": [...], "removed": [...], "columns_added": [...],
    "columns_removed": [...], "duplicate_keys": [...]}``; rows carry their file row numbers
    (header = row 1) in the old and the new file."""

    def index(frame: Any) -> tuple[dict[tuple, int], list[tuple]]:
        seen: dict[tuple, int] = {}
        dups = []
        for i, rec in enumerate(frame[pk].itertuples(index=False, name=None)):
            if rec in seen:
                dups.append(rec)
                continue
            seen[rec] = i
        return seen, dups

    missing_pk = [c for c in pk if c not in old.columns or c not in new.columns]
    if missing_pk:
        raise AuditError(f"{file}: primary-key column(s) {', '.join(missing_pk)} missing in one version")
    old_ix, old_dups = index(old)
    new_ix, new_dups = index(new)
    common_cols = [c for c in old.columns if c in new.columns]
    cells, added, removed = [], [], []
    for key, i in old_ix.items():
        pkd = dict(zip(pk, key, strict=True))
        if key not in new_ix:
            removed.append({"file": file, "key": pkd, "old_row": i + 2, "cells": dict(old.iloc[i])})
            continue
        j = new_ix[key]
        for col in common_cols:
            a, b = str(old.iloc[i][col]), str(new.iloc[j][col])
            if a != b:
                cells.append(
                    {
                        "file": file,
                        "key": pkd,
                        "column": col,
                        "old": a,
                        "new": b,
                        "old_row": i + 2,
                        "new_row": j + 2,
                    }
                )
    for key, j in new_ix.items():
        if key not in old_ix:
            added.append(
                {
                    "file": file,
                    "key": dict(zip(pk, key, strict=True)),
                    "new_row": j + 2,
                    "cells": dict(new.iloc[j]),
                }
            )
    return {
        "cells": cells,
        "added": added,
        "removed": removed,
        "columns_added": [c for c in new.columns if c not in old.columns],
        "columns_removed": [c for c in old.columns if c not in new.columns],
        "duplicate_keys": [dict(zip(pk, k, strict=True)) for k in old_dups + new_dups],
    }


def data_diff(old_dir: Path, new_dir: Path) -> dict[str, dict[str, Any]]:
    """file name -> :func:`cell_diff` for every CSV in either data folder that differs."""
    names = sorted({p.name for d in (old_dir, new_dir) for p in Path(d).glob("*.csv")})
    out = {}
    for name in names:
        a, b = Path(old_dir) / name, Path(new_dir) / name
        if a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes():
            continue
        if not a.is_file() or not b.is_file():
            out[name] = {
                "cells": [],
                "added": [],
                "removed": [],
                "columns_added": [],
                "columns_removed": [],
                "duplicate_keys": [],
                "file": "added" if b.is_file() else "removed",
            }
            continue
        old, new = read_raw(a), read_raw(b)
        out[name] = cell_diff(old, new, primary_key(name, new_dir, old_dir, columns=new.columns), name)
    return out


# ------------------------------------------------------------------------------------------------
# attribution


def _cell_phrase(c: Mapping[str, Any]) -> str:
    return f"{c['file']} [{pk_text(c['key'])}] {c['column']}: {c['old']} → {c['new']}"


def _config_phrase(path: tuple[str, ...], a: Any, b: Any) -> str:
    def show(v: Any) -> str:
        return "(absent)" if missing(v) else short(json.dumps(v, ensure_ascii=False, default=str), 40)

    return f"config {'.'.join(path)}: {show(a)} → {show(b)}"


def attribute(
    old: Project, new: Project, changed: list[str], data: dict[str, dict], config: list[tuple]
) -> dict[str, list[str]]:
    """key -> causes (phrases) for the changed numbers ``changed``.

    A data cell or configuration entry is a cause of a number when the number's job reads it
    (see :mod:`metabuild.audit.dependence`) and applying that change alone (to the old tree, or
    reverting it in the new one) changes the number's value. When no single change does, the
    changes the job reads are all listed (their effect is joint)."""
    strong: dict[str, list[str]] = {k: [] for k in changed}
    weak: dict[str, list[str]] = {k: [] for k in changed}
    wanted = set(changed)

    def add(found: tuple[Mapping[str, str], Mapping[str, str]], phrase: str) -> None:
        for target, hits in zip((strong, weak), found, strict=True):
            for key in hits:
                if key in wanted and phrase not in target[key]:
                    target[key].append(phrase)

    def both(edit_old: Edit, edit_new: Edit, phrase: str) -> None:
        add(dep_old.affected_confirmed(edit_old), phrase)
        add(dep_new.affected_confirmed(edit_new), phrase)

    old_raw = RawData.load(old.data_dir) if old.data_dir and old.data_dir.is_dir() else None
    new_raw = RawData.load(new.data_dir) if new.data_dir and new.data_dir.is_dir() else None
    dep_old = Dependence(old.numbers, old.config, old_raw)
    dep_new = Dependence(new.numbers, new.config, new_raw)
    known = {f for f in data if f.removesuffix(".csv") in _files()}
    for file, d in data.items():
        if file not in known or old_raw is None or new_raw is None:
            continue
        for c in d["cells"]:
            both(
                Edit(
                    cells=[(file, c["old_row"], c["column"])],
                    data=old_raw.with_cell(file, c["old_row"], c["column"], c["new"]),
                ),
                Edit(
                    cells=[(file, c["new_row"], c["column"])],
                    data=new_raw.with_cell(file, c["new_row"], c["column"], c["old"]),
                ),
                _cell_phrase(c),
            )
        for r in d["removed"]:
            edit = Edit(cells=[(file, r["old_row"], None)], data=old_raw.without_rows(file, [r["old_row"]]))
            add(dep_old.affected_confirmed(edit), f"{file} [{pk_text(r['key'])}]: row removed")
        for r in d["added"]:
            edit = Edit(cells=[(file, r["new_row"], None)], data=new_raw.without_rows(file, [r["new_row"]]))
            add(dep_new.affected_confirmed(edit), f"{file} [{pk_text(r['key'])}]: row added")
        for col in d["columns_added"] + d["columns_removed"]:
            rows_of = {
                k: "reads the file"
                for k, e in {**old.numbers, **new.numbers}.items()
                if file in e["provenance"].get("data_rows", {})
            }
            add((rows_of, {}), f"{file}: column {col} {'added' if col in d['columns_added'] else 'removed'}")
    for path, a, b in config:
        both(
            Edit(cells=[], config=set_path(old.config, path, b), config_paths=[path]),
            Edit(cells=[], config=set_path(new.config, path, a), config_paths=[path]),
            _config_phrase(path, a, b),
        )
    causes = {}
    for key in changed:
        causes[key] = list(strong[key]) or list(weak[key])
        for phrase in code_causes(key, dep_old, dep_new):
            if phrase not in causes[key]:
                causes[key].append(phrase)
        if not causes[key]:
            causes[key].append(software_phrase(key, old, new) or "no recorded upstream change found")
    return causes


def _files() -> set[str]:
    from metabuild.data import FILES

    return set(FILES)


def _job_closure(dep: Dependence, job: str | None) -> list[str]:
    if job is None or job not in dep.jobs:
        return []
    seen, todo = [], [job]
    while todo:
        j = todo.pop()
        if j in seen:
            continue
        seen.append(j)
        todo += dep.upstream(j)
    return seen


def code_causes(key: str, dep_old: Dependence, dep_new: Dependence) -> list[str]:
    """Scripts and library modules (non-data, non-result inputs) whose hash changed, for the job
    of ``key`` and the jobs upstream of it."""
    job_old = dep_old.numbers.get(key, {}).get("provenance", {}).get("job")
    job_new = dep_new.numbers.get(key, {}).get("provenance", {}).get("job")
    phrases = []
    for job in dict.fromkeys(_job_closure(dep_new, job_new) + _job_closure(dep_old, job_old)):
        a, b = dep_old.jobs.get(job), dep_new.jobs.get(job)
        if a is None or b is None:
            continue
        sa, sb = a.get("script") or {}, b.get("script") or {}
        if sa.get("git_blob") != sb.get("git_blob"):
            phrases.append(
                f"code {sb.get('path') or sa.get('path')} (blob {str(sa.get('git_blob'))[:8]} → "
                f"{str(sb.get('git_blob'))[:8]})"
            )
        ia = {i["path"]: i["sha256"] for i in a.get("inputs", [])}
        ib = {i["path"]: i["sha256"] for i in b.get("inputs", [])}
        for path in sorted(set(ia) | set(ib)):
            if path in dep_new.producer or path in dep_old.producer or _is_data(path):
                continue
            if ia.get(path) != ib.get(path):
                phrases.append(
                    f"code {path}" + ("" if path in ia and path in ib else " (added)" if path in ib else " (removed)")
                )
    return phrases


def _is_data(path: str) -> bool:
    return path.endswith(".csv") or "/schemas/" in path


def software_phrase(key: str, old: Project, new: Project) -> str | None:
    a = old.numbers.get(key, {}).get("provenance", {}).get("software", {})
    b = new.numbers.get(key, {}).get("provenance", {}).get("software", {})
    diffs = [f"{k} {a.get(k)} → {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ("software " + ", ".join(diffs)) if diffs else None


# ------------------------------------------------------------------------------------------------
# outputs and sources


def producers(root: Path | None) -> dict[str, dict[str, Any]]:
    """output path -> {"rule", "inputs"} from ``snakemake --detailed-summary`` in ``root``
    (empty when Snakemake cannot plan the tree)."""
    if root is None or not (Path(root) / "Snakefile").is_file():
        return {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(root) / "workflow" / "lib"), env.get("PYTHONPATH", "")])
    try:
        result = subprocess.run(
            [*snakemake_command(), "--detailed-summary", "--cores", "1", "--nolock"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if result.returncode != 0:
        return {}
    out: dict[str, dict[str, Any]] = {}
    lines = [line for line in result.stdout.splitlines() if "\t" in line]
    if not lines:
        return {}
    header = lines[0].split("\t")
    try:
        i_out, i_rule, i_in = header.index("output_file"), header.index("rule"), header.index("input-file(s)")
    except ValueError:
        return {}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) <= max(i_out, i_rule, i_in):
            continue
        out[cells[i_out]] = {
            "rule": cells[i_rule],
            "inputs": [c for c in cells[i_in].split(",") if c and c != "-"],
        }
    return out


def _code_of(producer: Mapping[str, Any]) -> list[str]:
    """Code a job depends on: its script (workflow/scripts/<rule>.py, also an input of the
    rule) and library inputs, each once."""
    files = [f"workflow/scripts/{producer['rule']}.py"]
    files += [i for i in producer.get("inputs", []) if i.startswith("workflow/") or i == "Snakefile"]
    return list(dict.fromkeys(files))


def output_changes(
    old: Path,
    new: Path,
    old_root: Path | None = None,
    new_root: Path | None = None,
    sources: list[dict[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Figures, tables, documents and reports whose bytes differ (SHA-256); when both project
    trees are at hand, also those with the same bytes whose producing code changed."""
    changed_sources = {s["path"] for s in sources or []}
    made_by: dict[str, dict[str, Any]] = {}
    if changed_sources and new_root is not None:
        results_rel = (
            new.resolve().relative_to(new_root.resolve()).as_posix()
            if new.resolve().is_relative_to(new_root.resolve())
            else "results"
        )
        made_by = {k.removeprefix(results_rel + "/"): v for k, v in producers(new_root).items()}
    rows = []
    for folder in OUTPUT_FOLDERS:
        names = sorted(
            {
                p.relative_to(r).as_posix()
                for r in (old, new)
                for p in (r / folder).rglob("*")
                if p.is_file() and not p.name.startswith(".")
            }
        )
        for name in names:
            a, b = old / name, new / name
            ha = sha256_file(a) if a.is_file() else None
            hb = sha256_file(b) if b.is_file() else None
            code = [f for f in _code_of(made_by[name]) if f in changed_sources] if name in made_by else []
            if ha != hb:
                rows.append(
                    {
                        "path": name,
                        "old_sha256": ha,
                        "new_sha256": hb,
                        "code": code,
                        "change": "added" if ha is None else "removed" if hb is None else "changed",
                    }
                )
            elif code:
                rows.append(
                    {
                        "path": name,
                        "old_sha256": ha,
                        "new_sha256": hb,
                        "code": code,
                        "change": "code changed, same bytes",
                    }
                )
    return rows


def source_changes(old_root: Path | None, new_root: Path | None) -> list[dict[str, str]]:
    if old_root is None or new_root is None:
        return []
    rows = []
    names = sorted(
        {
            p.relative_to(r).as_posix()
            for r in (old_root, new_root)
            for g in SOURCE_GLOBS
            for p in r.glob(g)
            if p.is_file() and "__pycache__" not in p.parts
        }
    )
    for name in names:
        a, b = old_root / name, new_root / name
        if a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes():
            continue
        rows.append(
            {
                "path": name,
                "change": "added" if not a.is_file() else "removed" if not b.is_file() else "changed",
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------
# the comparison


def compare(old: Project, new: Project) -> dict[str, Any]:
    a, b = old.numbers, new.numbers
    changed = sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k].get("text") != b[k].get("text"))
    same_text = sorted(
        k for k in set(a) & set(b) if a[k].get("text") == b[k].get("text") and a[k].get("value") != b[k].get("value")
    )
    data = {}
    if old.data_dir and new.data_dir and old.data_dir.is_dir() and new.data_dir.is_dir():
        data = data_diff(old.data_dir, new.data_dir)
    cfg = config_changes(old.config, new.config) if old.config or new.config else []
    causes = attribute(old, new, changed, data, cfg)
    sources = source_changes(old.root, new.root)
    uses_new, uses_old = new.uses, old.uses
    numbers = []
    for k in changed:
        numbers.append(
            {
                "key": k,
                "old": a[k]["text"] if k in a else None,
                "new": b[k]["text"] if k in b else None,
                "old_value": a[k].get("value") if k in a else None,
                "new_value": b[k].get("value") if k in b else None,
                "manuscript": uses_new.get(k) or uses_old.get(k, []),
                "causes": causes[k],
            }
        )
    return {
        "old": str(old.results),
        "new": str(new.results),
        "numbers": numbers,
        "value_only": same_text,
        "data": data,
        "config": [
            {"path": ".".join(p), "old": None if missing(x) else x, "new": None if missing(y) else y} for p, x, y in cfg
        ],
        "outputs": output_changes(old.results, new.results, old.root, new.root, sources),
        "sources": sources,
    }


# ------------------------------------------------------------------------------------------------
# rendering


def _md_escape(text: Any) -> str:
    return str(text if text is not None else "—").replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Mapping[str, Any]) -> str:
    out = ["# Changes in the reported results", ""]
    out.append(f"Compared `{report['old']}` (before) with `{report['new']}` (after).")
    out.append("")
    nums = report["numbers"]
    if nums:
        out += [
            f"{len(nums)} reported number(s) changed their printed text.",
            "",
            "| Number | Before | After | In the manuscript | Why |",
            "|---|---|---|---|---|",
        ]
        for n in nums:
            out.append(
                "| "
                + " | ".join(
                    [
                        f"`{n['key']}`",
                        _md_escape(n["old"]),
                        _md_escape(n["new"]),
                        _md_escape(", ".join(n["manuscript"]) or "not cited"),
                        _md_escape("; ".join(n["causes"])),
                    ]
                )
                + " |"
            )
    else:
        out.append("No reported number changed its printed text.")
    if report["value_only"]:
        out += [
            "",
            f"{len(report['value_only'])} number(s) changed only beyond the printed precision: "
            + ", ".join(f"`{k}`" for k in report["value_only"][:30])
            + (" …" if len(report["value_only"]) > 30 else ""),
        ]
    out += ["", "## Changed figures, tables and documents", ""]
    if report["outputs"]:
        out += ["| File | Change | SHA-256 before | SHA-256 after | Code changed |", "|---|---|---|---|---|"]
        for o in report["outputs"]:
            out.append(
                f"| `{o['path']}` | {o['change']} | {(o['old_sha256'] or '—')[:12]} | "
                f"{(o['new_sha256'] or '—')[:12]} | {_md_escape(', '.join(o.get('code', [])) or '—')} |"
            )
    else:
        out.append("None.")
    out += ["", "## Upstream changes", ""]
    cells = [c for d in report["data"].values() for c in d.get("cells", [])]
    rows = [(f, "added", r) for f, d in report["data"].items() for r in d.get("added", [])] + [
        (f, "removed", r) for f, d in report["data"].items() for r in d.get("removed", [])
    ]
    if cells or rows:
        out += [
            "Data cells:",
            "",
            "| File | Row (primary key) | Column | Before | After |",
            "|---|---|---|---|---|",
        ]
        for c in cells:
            out.append(
                f"| {c['file']} | {_md_escape(pk_text(c['key']))} | {c['column']} | {_md_escape(c['old'])} | "
                f"{_md_escape(c['new'])} |"
            )
        for f, how, r in rows:
            out.append(f"| {f} | {_md_escape(pk_text(r['key']))} | (row {how}) | | |")
        out.append("")
    for f, d in report["data"].items():
        for col in d.get("columns_added", []):
            out.append(f"- {f}: column `{col}` added")
        for col in d.get("columns_removed", []):
            out.append(f"- {f}: column `{col}` removed")
        if d.get("file"):
            out.append(f"- {f}: file {d['file']}")
    if report["config"]:
        out += ["Configuration (config/config.yaml):", ""]
        for c in report["config"]:
            out.append(
                f"- `{c['path']}`: {_md_escape(json.dumps(c['old'], ensure_ascii=False, default=str))} → "
                f"{_md_escape(json.dumps(c['new'], ensure_ascii=False, default=str))}"
            )
        out.append("")
    if report["sources"]:
        out += ["Code and manuscript sources:", ""]
        out += [f"- `{s['path']}` ({s['change']})" for s in report["sources"]]
        out.append("")
    if not (cells or rows or report["config"] or report["sources"]):
        out.append("No data, configuration or source change found (compared where both trees are at hand).")
    return "\n".join(out).rstrip() + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #bbb;padding:.25rem .5rem;
vertical-align:top;text-align:left}th{background:#f0f0f0}code{font-size:.9em}"""


def to_html(report: Mapping[str, Any]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Changes in the reported results</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Changes in the reported results</h1>",
        f"<p>Compared <code>{e(report['old'])}</code> (before) with <code>{e(report['new'])}</code> (after).</p>",
    ]
    if report["numbers"]:
        parts.append(
            "<table><thead><tr><th>Number</th><th>Before</th><th>After</th><th>In the manuscript</th>"
            "<th>Why</th></tr></thead><tbody>"
        )
        for n in report["numbers"]:
            parts.append(
                f"<tr><td><code>{e(n['key'])}</code></td><td>{e(str(n['old'] or '—'))}</td>"
                f"<td>{e(str(n['new'] or '—'))}</td>"
                f"<td>{'<br>'.join(map(e, n['manuscript'])) or 'not cited'}</td>"
                f"<td>{'<br>'.join(map(e, n['causes']))}</td></tr>"
            )
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No reported number changed its printed text.</p>")
    parts.append("<h2>Changed figures, tables and documents</h2>")
    if report["outputs"]:
        parts.append("<table><thead><tr><th>File</th><th>Change</th><th>Code changed</th></tr></thead><tbody>")
        parts += [
            f"<tr><td><code>{e(o['path'])}</code></td><td>{e(o['change'])}</td>"
            f"<td>{e(', '.join(o.get('code', [])) or '—')}</td></tr>"
            for o in report["outputs"]
        ]
        parts.append("</tbody></table>")
    else:
        parts.append("<p>None.</p>")
    cells = [c for d in report["data"].values() for c in d.get("cells", [])]
    parts.append("<h2>Upstream changes</h2>")
    if cells:
        parts.append(
            "<table><thead><tr><th>File</th><th>Row (primary key)</th><th>Column</th><th>Before</th>"
            "<th>After</th></tr></thead><tbody>"
        )
        parts += [
            f"<tr><td>{e(c['file'])}</td><td>{e(pk_text(c['key']))}</td><td>{e(c['column'])}</td>"
            f"<td>{e(c['old'])}</td><td>{e(c['new'])}</td></tr>"
            for c in cells
        ]
        parts.append("</tbody></table>")
    items = [
        f"{f} [{pk_text(r['key'])}]: row {how}"
        for f, d in report["data"].items()
        for how in ("added", "removed")
        for r in d.get(how, [])
    ]
    items += [
        f"config {c['path']}: {json.dumps(c['old'], default=str)} → {json.dumps(c['new'], default=str)}"
        for c in report["config"]
    ]
    items += [f"{s['path']} ({s['change']})" for s in report["sources"]]
    if items:
        parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------------
# git revisions


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise AuditError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def snakemake_command() -> list[str]:
    exe = Path(sys.executable).parent / "snakemake"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "snakemake"]


def run_snakemake(
    root: Path, targets: list[str] | None = None, cores: str = "2", log: Path | None = None
) -> subprocess.CompletedProcess:
    """Run Snakemake in ``root`` with that tree's own library first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "workflow" / "lib"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [*snakemake_command(), "--cores", str(cores), "--nolock", *(targets or [])]
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n{result.stdout}\n{result.stderr}", encoding="utf-8")
    return result


def build_revision(repo: Path, rev: str, workdir: Path, cores: str = "2") -> Path:
    """Export revision ``rev`` of ``repo`` into ``workdir/<commit>`` and build it (reused if built)."""
    sha = _git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    root = workdir / sha[:12]
    if (root / "results" / "numbers.json").is_file() and (root / ".metabuild-built").is_file():
        return root
    if not (root / "Snakefile").is_file():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha], capture_output=True)
        if archive.returncode != 0:
            raise AuditError(f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(root, filter="data")
    print(f"building {rev} ({sha[:12]}) in {root} ...", file=sys.stderr)
    result = run_snakemake(root, cores=cores, log=root / ".metabuild-build.log")
    if result.returncode != 0:
        raise AuditError(
            f"the build of {rev} failed; see {root / '.metabuild-build.log'}\n"
            + "\n".join(result.stderr.strip().splitlines()[-15:])
        )
    (root / ".metabuild-built").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
    return root


def open_side(spec: str, workdir: Path, cores: str) -> Project:
    path = Path(spec)
    if path.is_dir():
        return Project.open(path)
    repo = Path(_git(Path.cwd(), "rev-parse", "--show-toplevel"))
    return Project.open(build_revision(repo, spec, workdir, cores) / "results")


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or ".snakemake/metabuild/builds").resolve()
    old, new = open_side(args.old, workdir, args.cores), open_side(args.new, workdir, args.cores)
    report = compare(old, new)
    out = Path(args.out) if args.out else Path("results") / "diff"
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report)
    (out / "diff.md").write_text(markdown, encoding="utf-8")
    (out / "diff.html").write_text(to_html(report), encoding="utf-8")
    (out / "diff.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    print(json.dumps(report, indent=1, ensure_ascii=False, default=str) if args.json else markdown, end="")
    if not args.json:
        print(f"\n(written: {out / 'diff.md'}, {out / 'diff.html'}, {out / 'diff.json'})", file=sys.stderr)
    return 0


__all__ = ["cell_diff", "data_diff", "compare", "to_markdown", "to_html", "flatten"]
