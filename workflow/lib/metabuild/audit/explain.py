"""``metabuild explain KEY``: the chain behind one reported number.

Value and printed text, the published value(s), the job and script (git blob hash, and whether
the file on disk still has it), the params, each input file (recorded SHA-256: ok / CHANGED /
missing), the data rows that fed it (read from the current files), software and build time,
and where the manuscript shows it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from metabuild.audit.common import Project, blob_status, file_status, flatten, read_raw, short

HELP = "show the provenance chain of one reported number"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("key", help="registry key, e.g. primary.estimate")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def explain(project: Project, key: str) -> dict[str, Any]:
    entry = project.entry(key)
    prov = entry.get("provenance", {})
    script = prov.get("script") or {}
    script_state, script_now = (
        blob_status(project.path(script["path"]), script.get("git_blob")) if script.get("path") else ("missing", None)
    )
    inputs = []
    status_by_name: dict[str, str] = {}
    for item in prov.get("inputs", []):
        state, now = file_status(project.path(item["path"]), item.get("sha256"))
        inputs.append({"path": item["path"], "sha256": item.get("sha256"), "status": state, "current_sha256": now})
        status_by_name[item["path"].rsplit("/", 1)[-1]] = state
    rows = []
    for name, numbers in prov.get("data_rows", {}).items():
        path = project.data_path(name)
        block: dict[str, Any] = {
            "file": name,
            "path": str(path) if path else None,
            "status": status_by_name.get(name, "not an input"),
            "rows": [],
        }
        if path is None or not path.is_file():
            block["status"] = "missing"
        else:
            frame = read_raw(path)
            for row in numbers:
                if 0 <= row - 2 < len(frame):
                    block["rows"].append({"row": row, "cells": dict(frame.iloc[row - 2])})
                else:
                    block["rows"].append({"row": row, "cells": None})
        rows.append(block)
    return {
        "key": key,
        "value": entry.get("value"),
        "text": entry.get("text"),
        "kind": entry.get("kind"),
        "published": entry.get("published", []),
        "rule": prov.get("rule"),
        "job": prov.get("job", entry.get("job")),
        "output": entry.get("output"),
        "script": {
            "path": script.get("path"),
            "git_blob": script.get("git_blob"),
            "status": script_state,
            "current_git_blob": script_now,
        },
        "params": prov.get("params", {}),
        "inputs": inputs,
        "data_rows": rows,
        "study_ids": prov.get("study_ids", []),
        "software": prov.get("software", {}),
        "built_at": prov.get("built_at"),
        "manuscript": project.uses.get(key, []),
        "results": str(project.results),
    }


def _match(p: dict) -> str:
    return {True: "match", False: "MISMATCH", None: "not comparable"}.get(p.get("matches"), str(p.get("matches")))


def format_text(info: dict[str, Any]) -> str:
    out = [f"{info['key']} = {info['value']!r}   printed: {info['text']}   ({info['kind']})"]
    if info["published"]:
        for p in info["published"]:
            out.append(f"  published: {p.get('printed')!s:>10}  at {p.get('location')}: {_match(p)}")
    else:
        out.append("  published: (not printed in the paper)")
    out.append(f"  manuscript: {', '.join(info['manuscript']) or '(no [key]{.num} span in manuscript/*.qmd)'}")
    out.append("")
    out.append(f"job      {info['job']}   (rule {info['rule']}) -> {info['output']}")
    s = info["script"]
    note = "" if s["status"] == "ok" else f"   now {s['current_git_blob']}" if s["current_git_blob"] else ""
    out.append(f"script   {s['path']}   git blob {s['git_blob']}   [{s['status']}]{note}")
    out.append("params")
    flat = flatten(info["params"])
    for k, v in flat.items():
        out.append(f"  {k}: {json.dumps(v, ensure_ascii=False, default=str)}")
    out.append("inputs   (recorded SHA-256 vs the file on disk)")
    for i in info["inputs"]:
        line = f"  {i['status']:<8} {i['sha256']}  {i['path']}"
        if i["status"] == "CHANGED":
            line += f"   (now {i['current_sha256']})"
        out.append(line)
    out.append("data rows   (row numbers count the header as row 1; cells read from the current file)")
    for block in info["data_rows"]:
        flag = ""
        if block["status"] == "CHANGED":
            flag = "   !! file CHANGED since the build: these rows may not be the ones used"
        elif block["status"] == "missing":
            flag = "   !! file missing"
        out.append(f"  {block['file']} ({len(block['rows'])} rows){flag}")
        for r in block["rows"]:
            if r["cells"] is None:
                out.append(f"    row {r['row']}: (no such row in the current file)")
            else:
                cells = ", ".join(f"{k}={short(v, 40)}" for k, v in r["cells"].items() if v != "")
                out.append(f"    row {r['row']}: {cells}")
    if info["study_ids"]:
        out.append(f"studies  {', '.join(info['study_ids'])}")
    out.append("software " + ", ".join(f"{k} {v}" for k, v in info["software"].items()))
    out.append(f"built at {info['built_at']}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    project = Project.open(args.results)
    info = explain(project, args.key)
    if args.json:
        print(json.dumps(info, indent=1, ensure_ascii=False, default=str))
    else:
        print(format_text(info))
    return 0
