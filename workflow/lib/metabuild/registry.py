"""The number registry, ``results/numbers.json``: every number the manuscript shows, and the one
module that knows its layout.

The file is in a normal form (schema ``metabuild-numbers/2``), as W3C PROV is: each job that
computed numbers is stored once, as an *activity*, and each number refers to its activity by id.

.. code-block:: text

    {"schema": "metabuild-numbers/2",
     "activities": {"run_analysis[analysis=primary]": {        # id = the Snakemake job
         "rule": ..., "wildcards": {...}, "script": {"path", "git_blob"}, "params": {...},
         "inputs": [{"path", "sha256"}, ...], "outputs": [...], "software": {...},
         "data_rows": {"pain_scores.csv": "2-17,20,31-33"},    # file rows as ranges
         "study_ids": [...], "built_at": ...,                  # built_at only with SOURCE_DATE_EPOCH
         "source": "results/analyses/primary.json"},           # the file the numbers came from
       ...},
     "numbers": {"primary.estimate": {"value", "text", "kind", "activity",
                                      "attributes"?, "published"?}, ...}}

Every consumer reads it through :func:`read_registry` (or :func:`resolve` for a registry already
in memory), which returns the *resolved view*: ``{"schema", "activities", "numbers"}`` where each
number carries ``key``, ``job``, ``output`` and ``provenance`` (its job's full provenance as
:func:`metabuild.provenance.job_provenance` recorded it, data rows as lists). The numbers of one
job share one provenance object, so the view costs no more memory than the file. Values:
``value`` (full precision), ``text`` (as printed, by :mod:`metabuild.formatting`), ``kind``,
``published`` (what the paper printed, where, and whether the reproduced value matches within
the printed rounding).

A registry of schema 1 (the full provenance repeated in every number: builds made before the
normal form, such as a submitted revision) is read into the same view; a registry whose numbers
name an activity it does not hold, or whose rows are not ranges, is refused with one error naming
the file, the key and the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from metabuild.compare import comparison
from metabuild.formatting import format_number
from metabuild.io import read_json

SCHEMA = "metabuild-numbers/2"
#: schemas this module can name in an error, with what to do about them
OLD_SCHEMAS = {"metabuild-numbers/1"}

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class RegistryError(ValueError):
    """A registry this version cannot read: old layout, corrupt, or not a registry at all."""


# ------------------------------------------------------------------------------------------------
# data rows as ranges


def encode_rows(rows: Iterable[int]) -> str:
    """Strictly increasing row numbers as ranges: ``[2, 3, 4, 7, 9, 10]`` -> ``"2-4,7,9-10"``
    (``""`` for no rows). Raises ValueError for rows out of order or repeated, which a range
    could not give back."""
    parts: list[str] = []
    start = prev = None
    for row in rows:
        row = int(row)
        if prev is not None and row <= prev:
            raise ValueError(f"data rows must be strictly increasing to be stored as ranges: {prev} then {row}")
        if prev is not None and row == prev + 1:
            prev = row
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = row
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def decode_rows(text: str) -> list[int]:
    """The rows :func:`encode_rows` stored: ``"2-4,7"`` -> ``[2, 3, 4, 7]``. Raises ValueError for
    anything else (a reversed range, rows out of order, a word)."""
    if text == "":
        return []
    if not isinstance(text, str):
        raise ValueError(f"data rows must be a string of ranges such as '2-4,7', not {text!r}")
    rows: list[int] = []
    for part in text.split(","):
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"{part!r} in {text!r} is not a row or a range of rows (such as '7' or '2-4')")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first or (rows and first <= rows[-1]):
            raise ValueError(f"{part!r} in {text!r}: ranges must be increasing and must not overlap")
        rows.extend(range(first, last + 1))
    return rows


# ------------------------------------------------------------------------------------------------
# building (the number_registry job)


def study_list(ids: list[str], labels: Mapping[str, str]) -> dict[str, Any]:
    """A registry entry holding a list of trials: ``value`` their ids, ``text`` their labels
    (what a plain ``{.num}`` span prints; a ``{.cite}`` span prints their citations)."""
    return {"value": list(ids), "kind": "studies", "text": ", ".join(labels.get(i, i) for i in ids) or "none"}


def _activity(provenance: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A job's provenance as stored once in ``activities`` (its id, the job, is the key)."""
    if "source" in provenance:
        raise ValueError(f"{source}: provenance has a field 'source', which the registry uses itself")
    activity = {k: v for k, v in provenance.items() if k != "job"}
    try:
        activity["data_rows"] = {f: encode_rows(rows) for f, rows in provenance.get("data_rows", {}).items()}
    except ValueError as exc:
        raise ValueError(f"{source}: provenance data_rows: {exc}") from None
    activity["source"] = source
    return activity


def build_registry(source_files: Iterable[str | Path], published_csv: str | Path) -> dict[str, Any]:
    """The registry, in its normal form (what ``results/numbers.json`` holds), from the jobs'
    outputs (each ``{"numbers": {...}, "provenance": {...}}``) and the published values."""
    numbers: dict[str, dict] = {}
    activities: dict[str, dict] = {}
    for path in source_files:
        source = read_json(path)
        provenance = source["provenance"]
        job = provenance["job"]
        if job in activities:
            raise ValueError(f"job {job!r} has numbers in two files: {activities[job]['source']} and {path}")
        activities[job] = _activity(provenance, str(path))
        for key, entry in source.get("numbers", {}).items():
            if key in numbers:
                raise ValueError(f"registry key {key!r} is produced twice: by {numbers[key]['activity']} and {job}")
            value = entry["value"]
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            numbers[key] = {
                "value": value,
                "text": entry.get("text")
                or (
                    format_number(value, entry["kind"], entry.get("decimals")) if value is not None else "not estimable"
                ),
                "kind": entry["kind"],
                **({"attributes": entry["attributes"]} if "attributes" in entry else {}),
                "activity": job,
            }
    published = pd.read_csv(published_csv, dtype={"key": str, "printed": str}, keep_default_na=False)
    for row in published.to_dict("records"):
        entry = numbers.get(row["key"])
        if entry is None:
            continue
        entry.setdefault("published", []).append(comparison(entry["value"], row))
    return {"schema": SCHEMA, "activities": dict(sorted(activities.items())), "numbers": dict(sorted(numbers.items()))}


# ------------------------------------------------------------------------------------------------
# reading (every consumer)


def resolve(data: Any, where: str = "the registry") -> dict[str, Any]:
    """The resolved view of a registry in its normal form (see the module's docstring); ``where``
    names it in errors. Raises :class:`RegistryError` for a corrupt registry or an unknown schema."""
    if not isinstance(data, Mapping) or not isinstance(data.get("numbers"), Mapping):
        raise RegistryError(f"{where} is not a number registry: it has no 'numbers' mapping")
    schema = data.get("schema")
    if schema in OLD_SCHEMAS or (schema is None and "activities" not in data):
        # a build made before the normal form (a submitted revision, say): each number holds its
        # job's full provenance, so its activities are read back from the numbers themselves
        data = _normal_form_of_schema_1(data, where)
    elif schema != SCHEMA:
        raise RegistryError(f"{where} has schema {schema!r}; this version reads {SCHEMA}")
    raw_activities = data.get("activities")
    if not isinstance(raw_activities, Mapping):
        raise RegistryError(f"{where} has no 'activities' mapping")
    activities: dict[str, dict] = {}
    outputs: dict[str, str] = {}
    for job, stored in raw_activities.items():
        if not isinstance(stored, Mapping):
            raise RegistryError(f"{where}: activity {job!r} is not an object")
        provenance = {k: v for k, v in stored.items() if k != "source"}
        provenance["job"] = job
        rows = stored.get("data_rows", {})
        if not isinstance(rows, Mapping):
            raise RegistryError(f"{where}: activity {job!r}: 'data_rows' is not a mapping of file -> ranges")
        try:
            provenance["data_rows"] = {f: decode_rows(r) for f, r in rows.items()}
        except ValueError as exc:
            raise RegistryError(f"{where}: activity {job!r}: data_rows: {exc}") from None
        activities[job] = provenance
        outputs[job] = stored.get("source")
    numbers: dict[str, dict] = {}
    for key, stored in data["numbers"].items():
        job = stored.get("activity") if isinstance(stored, Mapping) else None
        if job not in activities:
            raise RegistryError(
                f"{where}: number {key!r} refers to activity {job!r}, which the registry does not hold "
                f"(a corrupt or hand-edited registry; rebuild it: snakemake --cores 2 results/numbers.json)"
            )
        entry = {k: v for k, v in stored.items() if k != "activity"}
        entry.update(key=key, job=job, output=outputs[job], provenance=activities[job])
        numbers[key] = entry
    return {"schema": schema, "activities": activities, "numbers": numbers}


def _normal_form_of_schema_1(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A registry of schema 1 (the provenance repeated in every number) in the normal form."""
    activities: dict[str, dict] = {}
    numbers: dict[str, dict] = {}
    for key, entry in data["numbers"].items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("provenance"), Mapping):
            raise RegistryError(f"{where}: number {key!r} of the old registry layout has no provenance")
        provenance = entry["provenance"]
        job = str(entry.get("job") or provenance.get("job") or key)
        if job not in activities:
            rows = provenance.get("data_rows") or {}
            activities[job] = {
                **{k: v for k, v in provenance.items() if k not in ("job", "data_rows")},
                "data_rows": {f: encode_rows(sorted(set(r))) for f, r in rows.items()},
                "source": entry.get("output"),
            }
        numbers[key] = {
            **{k: v for k, v in entry.items() if k not in ("provenance", "job", "output", "key")},
            "activity": job,
        }
    return {"schema": SCHEMA, "activities": activities, "numbers": numbers}


def read_registry(path: str | Path) -> dict[str, Any]:
    """``results/numbers.json`` as its resolved view (see the module's docstring): the one way to
    read the registry. Raises :class:`RegistryError` naming the file when it cannot."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"no number registry at {path}: build it first (snakemake --cores 2 {path})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path} is not valid JSON ({exc}); rebuild it") from None
    return resolve(data, str(path))


def full_entries(registry: Mapping[str, Any]) -> dict[str, dict]:
    """key -> each number with its full provenance copied in, as registry schema 1 stored it
    (for comparisons with an old registry and for size measurements; consumers use the view)."""
    return {key: {**entry, "provenance": dict(entry["provenance"])} for key, entry in registry["numbers"].items()}
