"""``metabuild impact``: before anything is rebuilt, which reported numbers depend on a study
or on one data cell (see :mod:`metabuild.audit.dependence` for how dependence is decided)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from metabuild.audit.common import AuditError, Project, file_status, pk_text, primary_key
from metabuild.audit.dependence import Dependence, Edit, RawData

HELP = "list the reported numbers that depend on a study or a data cell"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--study", metavar="STUDY_ID", help="every row of one study in every data file")
    what.add_argument(
        "--cell",
        metavar="FILE:ROW:COLUMN | FILE:KEY=VALUE,...:COLUMN",
        help="one cell, by file row number (header = row 1) or by primary key, "
        "e.g. pain_scores.csv:study_id=amr2010,arm=control,timepoint=week 4:sd",
    )
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def parse_cell(spec: str, raw: RawData, data_dir: Path | None = None) -> tuple[str, int, str, dict[str, str]]:
    """(file name, row number, column, primary key) of a ``--cell`` argument."""
    first, last = spec.find(":"), spec.rfind(":")
    if first < 0 or first == last:
        raise AuditError(f"--cell {spec!r}: expected FILE:ROW:COLUMN or FILE:KEY=VALUE,...:COLUMN")
    file, where, column = Path(spec[:first]).name, spec[first + 1 : last], spec[last + 1 :]
    if not file.endswith(".csv"):
        file += ".csv"
    try:
        frame = raw.frame(file)
    except KeyError as error:
        raise AuditError(str(error.args[0])) from None
    if column not in frame.columns:
        raise AuditError(f"{file} has no column {column!r} (columns: {', '.join(frame.columns)})")
    pk = primary_key(file, data_dir, columns=frame.columns)
    if where.strip().isdigit():
        row = int(where)
        if not 2 <= row < len(frame) + 2:
            raise AuditError(f"{file} has rows 2 to {len(frame) + 1} (row 1 is the header), not {row}")
    else:
        wanted = {}
        for part in where.split(","):
            if "=" not in part:
                raise AuditError(f"--cell {spec!r}: {part!r} is not KEY=VALUE")
            k, v = part.split("=", 1)
            if k.strip() not in frame.columns:
                raise AuditError(f"{file} has no column {k.strip()!r}")
            wanted[k.strip()] = v
        mask = None
        for k, v in wanted.items():
            m = frame[k] == v
            mask = m if mask is None else mask & m
        hits = list(frame.index[mask])
        if len(hits) != 1:
            raise AuditError(f"{file}: {len(hits)} rows match {pk_text(wanted)} (the primary key is {', '.join(pk)})")
        row = hits[0] + 2
    key = {k: str(frame.loc[row - 2, k]) for k in pk}
    return file, row, column, key


def impact(project: Project, *, study: str | None = None, cell: str | None = None) -> dict[str, Any]:
    if project.data_dir is None or not project.data_dir.is_dir():
        raise AuditError(f"no data folder next to {project.results}: impact needs the project tree")
    raw = RawData.load(project.data_dir)
    dep = Dependence(project.numbers, project.config, raw)
    if cell is not None:
        file, row, column, pk = parse_cell(cell, raw, project.data_dir)
        value = str(raw.frame(file).loc[row - 2, column])
        edit = Edit(
            cells=[(file, row, column)],
            data=raw.with_cell(file, row, column, raw.sentinel(file, row, column)),
            hypothetical=True,
        )
        target = {
            "kind": "cell",
            "file": file,
            "row": row,
            "primary_key": pk,
            "column": column,
            "value": value,
        }
        hits = dep.affected(edit)
    else:
        cells = []
        for name, frame in raw.raw.items():
            if "study_id" in frame.columns:
                cells += [(f"{name}.csv", i + 2, None) for i in frame.index[frame["study_id"] == study]]
        if not cells:
            known = sorted(set(raw.raw["studies"]["study_id"]))
            raise AuditError(f"no rows of study {study!r} in {project.data_dir} (studies: {', '.join(known)})")
        hits = dep.affected(Edit(cells=cells, data=raw.without_study(study)))
        # a study without data in an analysis does not change its numbers, whatever the digest says
        hits = {
            k: how
            for k, how in hits.items()
            if project.numbers[k]["provenance"]["rule"] != "run_analysis"
            or study in project.numbers[k]["provenance"].get("study_ids", [])
        }
        target = {
            "kind": "study",
            "study_id": study,
            "rows": {f: [r for ff, r, _ in cells if ff == f] for f in dict.fromkeys(c[0] for c in cells)},
        }
    stale = sorted(
        {
            i["path"]
            for e in project.numbers.values()
            for i in e["provenance"].get("inputs", [])
            if i["path"].startswith(f"{project.config.get('data_dir', 'data')}/")
            and file_status(project.path(i["path"]), i["sha256"])[0] != "ok"
        }
    )
    numbers = [
        {
            "key": k,
            "text": project.numbers[k]["text"],
            "job": project.numbers[k]["provenance"]["job"],
            "how": how,
            "manuscript": project.uses.get(k, []),
        }
        for k, how in sorted(hits.items())
    ]
    return {"target": target, "numbers": numbers, "stale_inputs": stale}


def format_text(info: dict[str, Any]) -> str:
    t = info["target"]
    if t["kind"] == "cell":
        head = f"{t['file']}, row {t['row']} [{pk_text(t['primary_key'])}], column {t['column']} (now {t['value']!r})"
    else:
        rows = "; ".join(f"{f} rows {', '.join(map(str, r))}" for f, r in t["rows"].items())
        head = f"study {t['study_id']} ({rows})"
    out = [head]
    jobs = sorted({n["job"] for n in info["numbers"]})
    out.append(f"{len(info['numbers'])} reported number(s) depend on it, from {len(jobs)} job(s):")
    width = max([len(n["key"]) for n in info["numbers"]] + [10])
    for n in info["numbers"]:
        where = ", ".join(n["manuscript"]) or "-"
        out.append(f"  {n['key']:<{width}}  {n['text']:>12}  {n['job']}  [{n['how']}]  used: {where}")
    if info["stale_inputs"]:
        out.append(
            "warning: these data files changed since the build, so the recorded rows may have "
            "moved (rebuild first): " + ", ".join(info["stale_inputs"])
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    project = Project.open(args.results)
    info = impact(project, study=args.study, cell=args.cell)
    print(json.dumps(info, indent=1, ensure_ascii=False) if args.json else format_text(info))
    return 0
