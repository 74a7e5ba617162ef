"""Shared helpers of the audit commands: the registry, the project tree, raw CSV rows,
primary keys, file status against recorded hashes and the manuscript's ``.num`` spans."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from metabuild.provenance import git_blob_hash, sha256_file
from metabuild.registry import RegistryError, read_registry


class AuditError(Exception):
    """A problem the user can fix (unknown key, missing registry, ...): printed without a traceback."""


# ------------------------------------------------------------------------------------------------
# project tree and registry


def find_results(path: str | Path) -> Path:
    """The results folder: ``path`` itself if it holds numbers.json, else ``path/results``."""
    path = Path(path)
    if (path / "numbers.json").is_file():
        return path
    if (path / "results" / "numbers.json").is_file():
        return path / "results"
    raise AuditError(
        f"no numbers.json in {path} (nor in {path / 'results'}): build the project first (snakemake --cores 4)"
    )


def project_root_of(results: Path) -> Path | None:
    """The project tree a results folder sits in (the parent holding config/ or data/), if any."""
    candidate = Path(results).resolve().parent
    if (candidate / "config" / "config.yaml").is_file() or (candidate / "data").is_dir():
        return candidate
    return None


@dataclass
class Project:
    """A built project: its results folder and (when present) the tree it was built from."""

    results: Path
    root: Path | None

    @classmethod
    def open(cls, results: str | Path = "results") -> Project:
        res = find_results(results)
        return cls(results=res, root=project_root_of(res))

    @cached_property
    def registry(self) -> dict[str, Any]:
        try:
            return read_registry(self.results / "numbers.json")
        except RegistryError as exc:
            raise AuditError(str(exc)) from None

    @property
    def numbers(self) -> dict[str, dict]:
        return self.registry["numbers"]

    @cached_property
    def config(self) -> dict[str, Any]:
        if self.root is None or not (self.root / "config" / "config.yaml").is_file():
            return {}
        import yaml

        return yaml.safe_load((self.root / "config" / "config.yaml").read_text(encoding="utf-8")) or {}

    @property
    def data_dir(self) -> Path | None:
        if self.root is None:
            return None
        return self.root / self.config.get("data_dir", "data")

    def path(self, recorded: str) -> Path:
        """A path recorded in provenance (relative to the project root) on this machine."""
        p = Path(recorded)
        if p.is_absolute() or self.root is None:
            return p
        return self.root / p

    def data_path(self, name: str) -> Path | None:
        """A data file named as in provenance ``data_rows`` (``pain_scores.csv``)."""
        return None if self.data_dir is None else self.data_dir / name

    def entry(self, key: str) -> dict:
        return lookup(self.numbers, key)

    @cached_property
    def uses(self) -> dict[str, list[str]]:
        return manuscript_uses(self.root) if self.root is not None else {}


def lookup(numbers: Mapping[str, dict], key: str) -> dict:
    if key in numbers:
        return numbers[key]
    close = difflib.get_close_matches(key, list(numbers), n=8, cutoff=0.6)
    prefix = [k for k in numbers if k.startswith(key.rstrip(".") + ".")][:8]
    hints = list(dict.fromkeys(close + prefix))
    message = f"unknown registry key {key!r}"
    message += ("; did you mean: " + ", ".join(hints)) if hints else f" ({len(numbers)} keys in the registry)"
    raise AuditError(message)


# ------------------------------------------------------------------------------------------------
# files and hashes


def file_status(path: Path, sha256: str | None) -> tuple[str, str | None]:
    """("ok" | "CHANGED" | "missing", current SHA-256)."""
    if not path.is_file():
        return "missing", None
    current = sha256_file(path)
    return ("ok" if sha256 is None or current == sha256 else "CHANGED"), current


def blob_status(path: Path, blob: str | None) -> tuple[str, str | None]:
    if not path.is_file():
        return "missing", None
    current = git_blob_hash(path)
    return ("ok" if blob is None or current == blob else "CHANGED"), current


def read_raw(path: Path) -> pd.DataFrame:
    """A CSV as strings, exactly as written (empty cell = ""); index i is file row i + 2."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def file_row(index: int) -> int:
    return int(index) + 2


def schema_for(name: str, *data_dirs: Path | None) -> dict[str, Any] | None:
    stem = Path(name).name.removesuffix(".csv")
    for d in data_dirs:
        if d is not None and (Path(d) / "schemas" / f"{stem}.schema.json").is_file():
            return json.loads((Path(d) / "schemas" / f"{stem}.schema.json").read_text(encoding="utf-8"))
    return None


def primary_key(name: str, *data_dirs: Path | None, columns: Iterable[str] = ()) -> list[str]:
    """The declared primary key of a data file (first column when no schema declares one)."""
    schema = schema_for(name, *data_dirs)
    if schema and schema.get("primaryKey"):
        pk = schema["primaryKey"]
        return [pk] if isinstance(pk, str) else list(pk)
    columns = list(columns)
    return columns[:1]


def pk_text(pk: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in pk.items())


# ------------------------------------------------------------------------------------------------
# manuscript spans

_SPAN = re.compile(r"\[([^\[\]\n]+)\]\{([^}\n]*)\}")


def manuscript_uses(root: Path | None, pattern: str = "manuscript/*.qmd") -> dict[str, list[str]]:
    """registry key -> ["manuscript/paper.qmd:12", ...] for every ``[key]{.num}`` span."""
    uses: dict[str, list[str]] = {}
    if root is None:
        return uses
    for qmd in sorted(Path(root).glob(pattern)):
        rel = qmd.relative_to(root).as_posix()
        for lineno, line in enumerate(qmd.read_text(encoding="utf-8").splitlines(), start=1):
            for match in _SPAN.finditer(line):
                if ".num" in match.group(2).split():
                    uses.setdefault(match.group(1).strip(), []).append(f"{rel}:{lineno}")
    return uses


# ------------------------------------------------------------------------------------------------
# misc


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": leaf} for nested mappings (lists are leaves)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def short(text: Any, width: int = 60) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"
