"""The number registry, ``results/numbers.json``: every number the manuscript shows.

Each entry: ``value`` (full precision), ``text`` (as printed, by :mod:`metabuild.formatting`),
``kind``, ``provenance`` (the job that computed it: rule, script hash, params, inputs with
SHA-256, data rows, software, time) and ``published`` (what the paper printed, where, and
whether the reproduced value matches within the printed rounding).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from metabuild.compare import comparison
from metabuild.formatting import format_number
from metabuild.io import read_json

SCHEMA = "metabuild-numbers/1"


def study_list(ids: list[str], labels: Mapping[str, str]) -> dict[str, Any]:
    """A registry entry holding a list of trials: ``value`` their ids, ``text`` their labels
    (what a plain ``{.num}`` span prints; a ``{.cite}`` span prints their citations)."""
    return {"value": list(ids), "kind": "studies", "text": ", ".join(labels.get(i, i) for i in ids) or "none"}


def build_registry(source_files: Iterable[str | Path], published_csv: str | Path) -> dict[str, Any]:
    numbers: dict[str, dict] = {}
    for path in source_files:
        source = read_json(path)
        provenance = source["provenance"]
        job = provenance["job"]
        for key, entry in source.get("numbers", {}).items():
            if key in numbers:
                raise ValueError(f"registry key {key!r} is produced twice: by {numbers[key]['job']} and {job}")
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
                "job": job,
                "output": str(path),
                "provenance": provenance,
            }
    published = pd.read_csv(published_csv, dtype={"key": str, "printed": str}, keep_default_na=False)
    for row in published.to_dict("records"):
        entry = numbers.get(row["key"])
        if entry is None:
            continue
        entry.setdefault("published", []).append(comparison(entry["value"], row))
    for key, entry in numbers.items():
        entry["key"] = key
    return {"schema": SCHEMA, "numbers": dict(sorted(numbers.items()))}
