"""Loading and validation of the extraction files in ``data/``.

Each ``data/<name>.csv`` has a Frictionless Table Schema in ``data/schemas/<name>.schema.json``.

* :func:`load_dataset` reads the files into typed pandas DataFrames. It is cheap (no frictionless,
  no checks beyond type conversion) so the Snakefile can call it at parse time.
* :func:`validate_dataset` checks everything and raises :class:`DataValidationError` listing every
  problem, one line each, as ``<file>, row <n>, column "<name>": <what is wrong> (expected <what>)``.

Row numbers are the row numbers a spreadsheet shows: the header is row 1 and the first data row is
row 2 (in a text editor this is the line number, unless a quoted cell spans several lines).
Every loaded DataFrame keeps this number in the column ``_row`` so provenance can cite file + row.

Validation happens in three layers:

1. file level (hand-written, because frictionless reports these poorly): missing file, a path that
   is a symbolic link or not a regular file (a data file must be a file inside data/, so a link
   cannot make the build read /etc/passwd), zero bytes, UTF-8 byte-order mark (rejected), bytes
   that are not UTF-8, a delimiter other than a comma, missing / unknown / misspelt / duplicated
   columns (any column order is accepted), a header without data rows, control characters in any
   cell (NUL, tab, line breaks, escape, bidirectional controls: see
   :func:`metabuild.escape.forbidden_character`), a cell longer than its column's ``maxLength``
   (or than :data:`MAX_NUMBER_CHARS` for a number), leading or trailing whitespace in any cell,
   and NaN/inf in number columns;
2. row level, by frictionless against the Table Schema: types, required values, enums, ranges,
   patterns (ids must match ``^[a-z][a-z0-9_]*$``: they become file names and registry keys),
   primary-key uniqueness, duplicate rows, blank rows, missing and extra cells;
3. cross-file (hand-written, only for files that passed 1 and 2): study ids exist in studies.csv,
   events <= n, n per arm <= the number randomised to that arm, both arms present for every
   time point and outcome (a binary outcome may have its intervention arm alone), exactly one
   primary time point per study and arm (the same for both
   arms), one time point per week and per pooling window in each study arm, the same weeks and
   window in both arms of a time point, and a risk-of-bias row for every study and domain.

Length caps (``maxLength`` in the schemas), so no text can blow up a table, a figure or a
message: ids 40 characters (they become file names and keys); a study label 60 (a forest-plot
column and a risk-of-bias column heading); a time point 30 and a printed value 30 (short cells);
Table 1 free text (population, regimen, arms) and footnotes or definitions 300 (about 2.5 times
the longest real cell); sources and curator's notes 1000 (provenance only).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from metabuild.escape import forbidden_character

__all__ = [
    "FILES",
    "ID_PATTERN",
    "Dataset",
    "DataValidationError",
    "Problem",
    "load_dataset",
    "load_schema",
    "validate_dataset",
    "validate_table",
]

#: table name -> file name, in dependency order (studies first).
FILES: dict[str, str] = {
    "studies": "studies.csv",
    "pain_scores": "pain_scores.csv",
    "binary_outcomes": "binary_outcomes.csv",
    "risk_of_bias": "risk_of_bias.csv",
    "study_flow": "study_flow.csv",
    "grade": "grade.csv",
    "published_values": "published_values.csv",
}

#: tables whose file may hold a header alone (the values a published version printed: none yet)
MAY_BE_EMPTY = frozenset({"published_values"})
_NO_ROWS = "file has a header but no data rows"

#: ids that become parts of file names or registry keys must match this.
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

ROW_COLUMN = "_row"
ROW_CONVENTION = "row numbers count the header as row 1, so the first data row is row 2"

_BOM = b"\xef\xbb\xbf"
#: longest cell a number or integer column accepts (a real number needs a few characters; a
#: 5000-digit integer would otherwise reach Python's int-conversion limit)
MAX_NUMBER_CHARS = 40
#: how much of a bad cell a message quotes
_QUOTE_CHARS = 60


def _arms(schemas: dict[str, dict]) -> tuple[str, str]:
    """(intervention, comparator): the ``arm`` field's enum of an outcome file's schema, in that
    order (the review's data schemas declare its arms; studies.csv has ``n_<arm>`` columns)."""
    for name in ("binary_outcomes", "pain_scores"):
        if name in schemas:
            enum = _fields(schemas[name]).get("arm", {}).get("constraints", {}).get("enum", [])
            if len(enum) == 2:
                return enum[0], enum[1]
    raise ValueError("data/schemas: the `arm` field of the outcome files must list the two arms (intervention first)")


# --------------------------------------------------------------------------------------------------
# problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data. ``row`` is the file row number (header = row 1) or None."""

    file: str
    row: int | None
    column: str | None
    message: str
    expected: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f', column "{self.column}"'
        text = f"{where}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class DataValidationError(Exception):
    """Raised by :func:`validate_dataset`; ``problems`` lists every :class:`Problem` found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"data validation failed with {n} problem{'s' if n != 1 else ''} ({ROW_CONVENTION}):"
        return "\n".join([head, *(str(p) for p in self.problems)])


# --------------------------------------------------------------------------------------------------
# schemas


def _default_schema_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "schemas"


def present(name: str, schema_dir: Path) -> bool:
    """Whether the review has table ``name``: every table but ``studies`` is optional, and a
    review has it when it has its schema (``data/schemas/<name>.schema.json``)."""
    return name == "studies" or (Path(schema_dir) / f"{name}.schema.json").exists()


def load_schema(name: str, schema_dir: Path) -> dict[str, Any]:
    """The Table Schema descriptor (a dict) of table ``name``."""
    return json.loads((Path(schema_dir) / f"{name}.schema.json").read_text(encoding="utf-8"))


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _show(cell: Any) -> str:
    """A cell as a message quotes it: at most :data:`_QUOTE_CHARS` characters, control
    characters as escapes (a message must not carry a NUL or a terminal escape)."""
    text = str(cell)
    shown = text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + f"… ({len(text)} characters)"
    return "".join(ch if forbidden_character(ch) is None else f"\\u{ord(ch):04x}" for ch in shown)


def _expected(f: dict[str, Any]) -> str:
    """What a valid value of field descriptor ``f`` looks like, as a phrase after 'expected'."""
    c = f.get("constraints", {})
    ftype = f.get("type", "string")
    if "enum" in c:
        return "one of: " + ", ".join(_fmt(v) for v in c["enum"])
    if ftype == "boolean":
        return " or ".join(f.get("trueValues", ["true"]) + f.get("falseValues", ["false"]))
    if "pattern" in c:
        if c["pattern"] == ID_PATTERN.pattern:
            return (
                f"a lower-case id matching {c['pattern']}: a letter, then letters, digits or underscores "
                "(ids become file names and keys)"
            )
        return f"text matching {c['pattern']}"
    noun = {"integer": "an integer", "number": "a number"}.get(ftype, "non-empty text")
    lo = next(((op, c[k]) for k, op in (("minimum", ">="), ("exclusiveMinimum", ">")) if k in c), None)
    hi = next(((op, c[k]) for k, op in (("maximum", "<="), ("exclusiveMaximum", "<")) if k in c), None)
    if lo and hi and lo[0] == ">=" and hi[0] == "<=":
        return f"{noun} from {_fmt(lo[1])} to {_fmt(hi[1])}"
    parts = [f"{b[0]} {_fmt(b[1])}" for b in (lo, hi) if b]
    return f"{noun} {' and '.join(parts)}" if parts else noun


# --------------------------------------------------------------------------------------------------
# file-level checks


def _display(path: Path) -> str:
    """Path as shown in messages: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:  # different drive on Windows
        return str(path)


def _encoding_problem(fname: str, raw: bytes, err: UnicodeDecodeError) -> Problem:
    row = raw.count(b"\n", 0, err.start) + 1
    line_start = raw.rfind(b"\n", 0, err.start) + 1
    line_end = raw.find(b"\n", err.start)
    line = raw[line_start : line_end if line_end >= 0 else len(raw)]
    header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")]), [])
    cells = next(csv.reader([line.decode("utf-8", "surrogateescape").rstrip("\r")]), [])
    column = None
    for i, cell in enumerate(cells):
        if any("\udc80" <= ch <= "\udcff" for ch in cell):
            column = header[i] if i < len(header) else None
            guess = cell.encode("utf-8", "surrogateescape").decode("cp1252", "replace")
            break
    else:
        guess = None
    bad = raw[err.start : err.start + 1].hex()
    msg = f"byte 0x{bad} is not valid UTF-8"
    if guess is not None:
        msg += f' (read as Windows-1252/Latin-1 the cell would be "{guess}")'
    return Problem(fname, row, column, msg, "UTF-8 text: re-save the file with UTF-8 encoding")


def _check_header(fname: str, header: list[str], fields: dict[str, dict]) -> list[Problem]:
    problems: list[Problem] = []
    expected = list(fields)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(fname, 1, name, "column appears more than once", "each column once"))
        seen.add(name)
    missing = [n for n in expected if n not in seen]
    extra = [n for n in dict.fromkeys(header) if n not in fields]
    for name in extra:
        if name.strip() in fields and name.strip() in missing:
            problems.append(Problem(fname, 1, name, "column name has leading/trailing whitespace", f'"{name.strip()}"'))
            missing.remove(name.strip())
            continue
        close = difflib.get_close_matches(name, missing, n=1, cutoff=0.6)
        if close:
            problems.append(
                Problem(fname, 1, name, f'misspelt column name: did you mean "{close[0]}"?', f'"{close[0]}"')
            )
            missing.remove(close[0])
        elif name == "":
            problems.append(Problem(fname, 1, None, "a column has an empty name", "a name for every column"))
        else:
            problems.append(
                Problem(
                    fname,
                    1,
                    name,
                    "unknown column",
                    f"only the columns of the schema ({', '.join(expected)})",
                )
            )
    for name in missing:
        problems.append(Problem(fname, 1, name, "column is missing from the header", f'a column named "{name}"'))
    return problems


def _read_table(path: Path, fname: str, fields: dict[str, dict]) -> tuple[list[Problem], list[list[str]]]:
    """File-level checks. Returns (problems, rows including the header) — rows only if no problems."""
    if path.is_symlink():
        return [
            Problem(
                fname, None, None, "is a symbolic link (not read)", "a regular file inside the data folder, not a link"
            )
        ], []
    if path.exists() and not path.is_file():
        what = "a directory" if path.is_dir() else "not a regular file"
        return [Problem(fname, None, None, f"is {what}, not a file", f"a CSV file at {fname}")], []
    if not path.is_file():
        return [Problem(fname, None, None, "file is missing", f"a CSV file at {fname}")], []
    raw = path.read_bytes()
    if not raw:
        return [Problem(fname, None, None, "file is empty (0 bytes)", "a header row and data rows")], []
    if raw.startswith(_BOM):
        return [
            Problem(
                fname,
                1,
                None,
                "file starts with a UTF-8 byte-order mark (BOM)",
                "UTF-8 without BOM: e.g. Excel's 'CSV UTF-8' adds one, re-save as plain UTF-8",
            )
        ], []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return [_encoding_problem(fname, raw, err)], []
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0] if rows else []
    if len(header) <= 1 < len(fields):
        line = text.splitlines()[0] if text else ""
        for delim, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")):
            if delim in line:
                return [
                    Problem(
                        fname,
                        1,
                        None,
                        f"columns are separated by {label}, not commas",
                        "comma-separated values",
                    )
                ], []
    problems = _check_header(fname, header, fields)
    if problems:
        return problems, []
    if len(rows) < 2:
        return [Problem(fname, None, None, _NO_ROWS, "at least one data row")], []
    for i, cells in enumerate(rows[1:], start=2):
        for name, value in zip(header, cells, strict=False):
            bad = forbidden_character(value)
            cap = _max_length(fields[name])
            if bad is not None:
                problems.append(
                    Problem(
                        fname,
                        i,
                        name,
                        f'"{_show(value)}" contains the control character {bad[1]} at character {bad[0] + 1}',
                        "text without control characters, line breaks, tabs or bidirectional controls",
                    )
                )
            elif len(value) > cap:
                problems.append(
                    Problem(
                        fname,
                        i,
                        name,
                        f'"{_show(value)}" is {len(value)} characters long, more than the {cap} allowed',
                        f"at most {cap} characters",
                    )
                )
            elif value != value.strip():
                problems.append(
                    Problem(
                        fname,
                        i,
                        name,
                        f"{value!r} has leading/trailing whitespace",
                        f"{value.strip()!r} without surrounding spaces",
                    )
                )
            elif fields[name].get("type") == "number" and _is_non_finite(value):
                problems.append(Problem(fname, i, name, f'"{value}" is not a finite number', _expected(fields[name])))
    return problems, rows


def _max_length(f: dict[str, Any]) -> int:
    """Longest cell the field accepts: its schema's ``maxLength``, or
    :data:`MAX_NUMBER_CHARS` for numbers (and for any field without a cap)."""
    return int(f.get("constraints", {}).get("maxLength", MAX_NUMBER_CHARS))


def _is_non_finite(value: str) -> bool:
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False  # not a number at all: frictionless reports the type error


# --------------------------------------------------------------------------------------------------
# row-level checks (frictionless)

_CONSTRAINT_NOTE = re.compile(r'constraint "(\w+)"')


def _frictionless_problems(
    path: Path, fname: str, schema: dict[str, Any], skip_cells: set[tuple[int, str]]
) -> list[Problem]:
    from frictionless import Checklist, Resource, checks  # lazy: slow import

    fields = _fields(schema)
    resource = Resource.from_descriptor(
        {
            "$schema": "https://datapackage.org/profiles/2.0/dataresource.json",
            "name": path.stem,
            "path": path.name,
            "format": "csv",
            "encoding": "utf-8",
            "dialect": {"csv": {"delimiter": ","}},
            # columns may come in any order (the header itself was checked by _check_header)
            "schema": {**schema, "fieldsMatch": "equal"},
        },
        basepath=str(path.parent),
    )
    report = resource.validate(Checklist(checks=[checks.duplicate_row()]), limit_errors=10_000)
    problems: list[Problem] = []
    errors = [e for task in report.tasks for e in task.errors] + list(report.errors)
    # report each row or cell once: a duplicate or blank row also breaks the primary key, and a
    # missing cell also breaks "required"
    dup_rows = {e.row_number for e in errors if e.type in ("duplicate-row", "blank-row")}
    skip_cells = skip_cells | {(e.row_number, e.field_name) for e in errors if e.type == "missing-cell"}
    pk = schema.get("primaryKey", [])
    for e in errors:
        etype = e.type
        row = getattr(e, "row_number", None)
        col = getattr(e, "field_name", None) or None
        cell = getattr(e, "cell", None)
        if etype != "missing-cell" and row is not None and col is not None and (row, col) in skip_cells:
            continue  # already reported (whitespace, non-finite number, missing cell)
        f = fields.get(col or "", {})
        if etype == "type-error":
            noun = {"integer": "an integer", "number": "a number", "boolean": "a boolean"}.get(
                f.get("type"), f.get("type")
            )
            problems.append(Problem(fname, row, col, f'"{_show(cell)}" is not {noun}', _expected(f)))
        elif etype == "constraint-error":
            m = _CONSTRAINT_NOTE.search(e.note or "")
            kind = m.group(1) if m else ""
            c = f.get("constraints", {})
            msg = {
                "required": "value is missing",
                "minLength": "value is missing",
                "enum": f'"{_show(cell)}" is not an allowed value',
                "pattern": f'"{_show(cell)}" does not match {c.get("pattern")}',
                "minimum": f"{_show(cell)} is not >= {_fmt(c.get('minimum'))}",
                "maximum": f"{_show(cell)} is not <= {_fmt(c.get('maximum'))}",
                "exclusiveMinimum": f"{_show(cell)} is not > {_fmt(c.get('exclusiveMinimum'))}",
                "exclusiveMaximum": f"{_show(cell)} is not < {_fmt(c.get('exclusiveMaximum'))}",
                "maxLength": f"value is longer than {c.get('maxLength')} characters",
            }.get(kind, f'"{_show(cell)}" breaks constraint {kind}')
            problems.append(Problem(fname, row, col, msg, _expected(f)))
        elif etype == "primary-key":
            if row in dup_rows:
                continue
            other = re.search(r"position (\d+)", e.note or "")
            where = f" in row {other.group(1)}" if other else ""
            problems.append(
                Problem(
                    fname,
                    row,
                    None,
                    f"duplicate primary key ({', '.join(pk)}): same as{where}",
                    f"a unique combination of {', '.join(pk)}",
                )
            )
        elif etype == "duplicate-row":
            other = re.search(r'position "?(\d+)', e.note or "")
            where = f" {other.group(1)}" if other else " above"
            problems.append(Problem(fname, row, None, f"duplicate row: identical to row{where}", "unique rows"))
        elif etype == "missing-cell":
            problems.append(Problem(fname, row, col, "row has too few cells: value is missing", "one cell per column"))
        elif etype == "extra-cell":
            problems.append(
                Problem(
                    fname,
                    row,
                    None,
                    f'row has more cells than the header (extra "{_show(cell)}")',
                    "one cell per column",
                )
            )
        elif etype == "blank-row":
            problems.append(Problem(fname, row, None, "blank row", "no blank rows: delete it"))
        elif etype in {"unique-error"}:
            problems.append(Problem(fname, row, col, f'"{_show(cell)}" is not unique', "unique values"))
        else:
            problems.append(Problem(fname, row, col, f"{etype}: {e.note or e.message}", None))
    return problems


# --------------------------------------------------------------------------------------------------
# cross-file checks


def _records(rows: list[list[str]]) -> list[dict[str, str]]:
    header = rows[0]
    out = []
    for i, cells in enumerate(rows[1:], start=2):
        rec = dict(zip(header, cells, strict=False))
        rec[ROW_COLUMN] = i  # type: ignore[assignment]
        out.append(rec)
    return out


def _cross_file(tables: dict[str, list[dict]], names: dict[str, str], schemas: dict[str, dict]) -> list[Problem]:
    problems: list[Problem] = []
    studies = tables.get("studies")
    by_id = {r["study_id"]: r for r in studies} if studies is not None else None
    studies_name = names["studies"]

    # study ids exist
    if by_id is not None:
        for t in ("pain_scores", "binary_outcomes", "risk_of_bias"):
            for r in tables.get(t) or []:
                if r["study_id"] not in by_id:
                    problems.append(
                        Problem(
                            names[t],
                            r[ROW_COLUMN],
                            "study_id",
                            f'unknown study "{r["study_id"]}"',
                            f"a study_id listed in {studies_name}",
                        )
                    )

    # events <= n
    for r in tables.get("binary_outcomes") or []:
        if int(r["events"]) > int(r["n"]):
            problems.append(
                Problem(
                    names["binary_outcomes"],
                    r[ROW_COLUMN],
                    "events",
                    f"{r['events']} events is more than n = {r['n']}",
                    "events <= n",
                )
            )

    # n per arm <= randomised n
    if by_id is not None:
        for t in ("pain_scores", "binary_outcomes"):
            for r in tables.get(t) or []:
                study = by_id.get(r["study_id"])
                if study is None:
                    continue
                ncol = f"n_{r['arm']}"
                if int(r["n"]) > int(study[ncol]):
                    problems.append(
                        Problem(
                            names[t],
                            r[ROW_COLUMN],
                            "n",
                            f"n = {r['n']} is more than the {study[ncol]} randomised to {r['arm']} "
                            f'({studies_name}, row {study[ROW_COLUMN]}, column "{ncol}")',
                            f'n <= {ncol} of study "{r["study_id"]}"',
                        )
                    )

    # both arms for each (study, timepoint) and (study, outcome); a binary outcome may have an
    # intervention row alone (an incidence a trial reports only under the intervention): it is
    # tabulated, and analyses comparing arms leave that study out
    intervention, comparator = _arms(schemas) if {"binary_outcomes", "pain_scores"} & schemas.keys() else ("", "")
    for t, what in (("pain_scores", "timepoint"), ("binary_outcomes", "outcome")):
        groups: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
        for r in tables.get(t) or []:
            groups[(r["study_id"], r[what])][r["arm"]] = r
        for (sid, key), arms in groups.items():
            for arm, other in ((intervention, comparator), (comparator, intervention)):
                if t == "binary_outcomes" and arm == intervention:
                    continue
                if arm in arms and other not in arms:
                    problems.append(
                        Problem(
                            names[t],
                            arms[arm][ROW_COLUMN],
                            "arm",
                            f'study "{sid}", {what} "{key}" has a {arm} row but no {other} row',
                            f"a {intervention} and a {comparator} row for each study and {what}",
                        )
                    )

    # exactly one primary time point per study and arm, the same for both arms
    pain = tables.get("pain_scores")
    if pain is not None:
        by_arm: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in pain:
            by_arm[(r["study_id"], r["arm"])].append(r)
        primary_tp: dict[str, dict[str, dict]] = defaultdict(dict)
        for (sid, arm), rs in by_arm.items():
            prim = [r for r in rs if r["primary"] == "true"]
            if not prim:
                problems.append(
                    Problem(
                        names["pain_scores"],
                        rs[0][ROW_COLUMN],
                        "primary",
                        f'study "{sid}", arm "{arm}" has no primary time point',
                        "exactly one row with primary = true per study and arm",
                    )
                )
            for r in prim[1:]:
                problems.append(
                    Problem(
                        names["pain_scores"],
                        r[ROW_COLUMN],
                        "primary",
                        f'study "{sid}", arm "{arm}" has a second primary time point '
                        f'(the first is "{prim[0]["timepoint"]}" in row {prim[0][ROW_COLUMN]})',
                        "exactly one row with primary = true per study and arm",
                    )
                )
            if len(prim) == 1:
                primary_tp[sid][arm] = prim[0]
        for sid, arms in primary_tp.items():
            k, c = arms.get(intervention), arms.get(comparator)
            if k and c and k["timepoint"] != c["timepoint"]:
                problems.append(
                    Problem(
                        names["pain_scores"],
                        c[ROW_COLUMN],
                        "primary",
                        f'study "{sid}": the primary time point of the {comparator} arm ("{c["timepoint"]}") '
                        f'differs from the {intervention} arm ("{k["timepoint"]}", row {k[ROW_COLUMN]})',
                        "the same primary time point in both arms",
                    )
                )

    if pain is not None:
        problems += _time_point_problems(pain, names["pain_scores"], (intervention, comparator))
    problems += _flow_against_studies(tables, names)

    # every study has every risk-of-bias domain
    rob = tables.get("risk_of_bias")
    if rob is not None and by_id is not None:
        domains = _fields(schemas["risk_of_bias"])["domain"]["constraints"]["enum"]
        have = {(r["study_id"], r["domain"]) for r in rob}
        for sid in by_id:
            for d in domains:
                if (sid, d) not in have:
                    problems.append(
                        Problem(
                            names["risk_of_bias"],
                            None,
                            "domain",
                            f'study "{sid}" has no row for domain "{d}"',
                            f"one row per study for each of: {', '.join(domains)}",
                        )
                    )
    return problems


def _time_point_problems(pain: list[dict], fname: str, arm_ids: tuple[str, str]) -> list[Problem]:
    """One time point per week and per pooling window in each study arm (an analysis of one
    window pools one row per arm), and the same weeks and window in both arms of a time point."""
    problems: list[Problem] = []
    first: dict[tuple[str, str, str, Any], dict] = {}
    for r in pain:
        for column, value in (("weeks", float(r["weeks"])), ("window_weeks", r["window_weeks"] or None)):
            if value is None:
                continue
            seen = first.setdefault((r["study_id"], r["arm"], column, value), r)
            if seen is not r:
                problems.append(
                    Problem(
                        fname,
                        r[ROW_COLUMN],
                        column,
                        f'study "{r["study_id"]}", arm "{r["arm"]}": {column} = {r[column]} is already the '
                        f'{column} of time point "{seen["timepoint"]}" (row {seen[ROW_COLUMN]})',
                        f"one time point per {column} value in each study arm",
                    )
                )
    arms: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for r in pain:
        arms[(r["study_id"], r["timepoint"])][r["arm"]] = r
    for (sid, timepoint), pair in arms.items():
        k, c = pair.get(arm_ids[0]), pair.get(arm_ids[1])
        if not (k and c):
            continue
        for column in ("weeks", "window_weeks"):
            kv, cv = k[column], c[column]
            same = (kv == cv) if column == "window_weeks" else float(kv) == float(cv)
            if not same:
                problems.append(
                    Problem(
                        fname,
                        c[ROW_COLUMN],
                        column,
                        f'study "{sid}", time point "{timepoint}": {column} is "{cv}" in the {arm_ids[1]} arm but '
                        f'"{kv}" in the {arm_ids[0]} arm (row {k[ROW_COLUMN]})',
                        f"the same {column} in both arms of a time point",
                    )
                )
    return problems


def _flow_against_studies(tables: dict[str, list[dict]], names: dict[str, str]) -> list[Problem]:
    """The PRISMA flow must end in the trials of the study table: the trials included are the
    full texts assessed (records screened minus those excluded at screening, unless reported)
    minus those excluded at full text, or a reported ``included`` stage. A new trial is a new
    record identified, screened, assessed and included: without those counts, the abstract's
    "of N records, k trials" would contradict the study table."""
    flow, studies = tables.get("study_flow"), tables.get("studies")
    if flow is None or studies is None:
        return []
    rows = {r["stage"]: r for r in flow}

    def count(stage: str) -> int | None:
        return int(rows[stage]["count"]) if stage in rows else None

    k = len(studies)
    if "included" in rows:
        stage, included, how = "included", count("included"), "reports"
    else:
        assessed = count("fulltext_assessed")
        if assessed is None and None not in (count("records_screened"), count("excluded_screening")):
            assessed = count("records_screened") - count("excluded_screening")
        if assessed is None or count("fulltext_excluded") is None:
            return []
        stage, included, how = "fulltext_excluded", assessed - count("fulltext_excluded"), "gives"
    if included == k:
        return []
    return [
        Problem(
            names["study_flow"],
            rows[stage][ROW_COLUMN],
            "count",
            f"the flow {how} {included} included trials, but {names['studies']} has {k}: "
            "adding or removing a trial changes the records identified, screened and assessed too",
            f"flow counts that end in the {k} trials of {names['studies']}",
        )
    ]


# --------------------------------------------------------------------------------------------------
# public API


def validate_dataset(data_dir: Path, schema_dir: Path | None = None) -> None:
    """Check every file of ``data_dir``; raise :class:`DataValidationError` listing all problems.

    ``schema_dir`` defaults to ``data_dir / "schemas"``.
    """
    data_dir = Path(data_dir)
    schema_dir = Path(schema_dir) if schema_dir is not None else _default_schema_dir(data_dir)
    problems: list[Problem] = []
    clean: dict[str, list[dict]] = {}
    names: dict[str, str] = {}
    schemas: dict[str, dict] = {}
    for name, filename in FILES.items():
        path = data_dir / filename
        fname = names[name] = _display(path)
        if not present(name, schema_dir):
            continue
        schema = schemas[name] = load_schema(name, schema_dir)
        file_problems, rows = _read_table(path, fname, _fields(schema))
        if name in MAY_BE_EMPTY and [p.message for p in file_problems] == [_NO_ROWS]:
            clean[name] = []  # a review nothing has been published about yet: a header alone is valid
            continue
        if not rows:  # unreadable: row-level checks would only repeat the same problem
            problems += file_problems
            continue
        skip = {(p.row, p.column) for p in file_problems}
        file_problems += _frictionless_problems(path, fname, schema, skip)
        problems += file_problems
        if not file_problems:
            clean[name] = _records(rows)
    problems += _cross_file(clean, names, schemas)
    if problems:
        raise DataValidationError(problems)


def validate_table(path: Path, name: str, schema_dir: Path) -> None:
    """Check one file that stands in for table ``name`` (e.g. the sensitivity analysis' own
    pain_scores file) at file and row level, and its time points; raise
    :class:`DataValidationError` listing every problem."""
    path = Path(path)
    schema = load_schema(name, Path(schema_dir))
    fname = _display(path)
    problems, rows = _read_table(path, fname, _fields(schema))
    if rows:
        problems += _frictionless_problems(path, fname, schema, {(p.row, p.column) for p in problems})
        if not problems and name == "pain_scores":
            problems += _time_point_problems(_records(rows), fname, _arms({name: schema}))
    if problems:
        raise DataValidationError(problems)


@dataclass
class Dataset:
    """Typed tables of ``data/``. Every DataFrame has a ``_row`` column: the file row (header = 1)."""

    data_dir: Path
    studies: pd.DataFrame
    pain_scores: pd.DataFrame
    binary_outcomes: pd.DataFrame
    risk_of_bias: pd.DataFrame
    study_flow: pd.DataFrame
    grade: pd.DataFrame
    published_values: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame:
        if name not in FILES:
            raise KeyError(f"unknown table {name!r}; tables: {', '.join(FILES)}")
        return getattr(self, name)

    def cite(self, name: str, row: int) -> str:
        """Provenance string for one record, e.g. ``data/pain_scores.csv, row 7``."""
        return f"{_display(self.files.get(name, self.data_dir / FILES[name]))}, row {int(row)}"


def _typed(df: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    out = {}
    for f in schema["fields"]:
        name, ftype = f["name"], f.get("type", "string")
        col = df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype="str")
        if ftype == "integer":
            out[name] = pd.to_numeric(col).astype("Int64")
        elif ftype == "number":
            out[name] = pd.to_numeric(col).astype("float64")
        elif ftype == "boolean":
            true, false = set(f.get("trueValues", ["true"])), set(f.get("falseValues", ["false"]))
            out[name] = col.map(lambda v, t=true, fa=false: True if v in t else False if v in fa else pd.NA).astype(
                "boolean"
            )
        else:
            out[name] = col.astype("str")
            out[name] = out[name].where(col.notna(), None)
    typed = pd.DataFrame(out, index=df.index)
    typed[ROW_COLUMN] = pd.Series(range(2, len(df) + 2), index=df.index, dtype="int64")
    return typed


def load_dataset(data_dir: Path, schema_dir: Path | None = None) -> Dataset:
    """Read all files of ``data_dir`` into typed DataFrames (no validation: call validate_dataset).

    Column dtypes follow the Table Schemas: integer -> ``Int64``, number -> ``float64``, boolean ->
    ``boolean``, string -> ``str`` (missing values are NA). ``_row`` is the file row number.
    """
    data_dir = Path(data_dir)
    schema_dir = Path(schema_dir) if schema_dir is not None else _default_schema_dir(data_dir)
    tables: dict[str, pd.DataFrame] = {}
    files: dict[str, Path] = {}
    for name, filename in FILES.items():
        path = files[name] = data_dir / filename
        if not present(name, schema_dir):  # a table this review does not have: empty
            tables[name] = pd.DataFrame(
                {"study_id": pd.Series([], dtype="str"), ROW_COLUMN: pd.Series([], dtype="int64")}
            )
            continue
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8", skip_blank_lines=False
        )
        tables[name] = _typed(raw, load_schema(name, schema_dir))
    return Dataset(data_dir=data_dir, files=files, **tables)
