"""Provenance of a job's outputs: rule, job, script (git blob hash), parameters, input
files (SHA-256 of each file as it is on disk), the data rows used, software versions and,
when ``SOURCE_DATE_EPOCH`` is set, that build time (never the wall clock: two builds of the
same sources give the same bytes).

Recorded by each Snakemake script and carried into every registry number, so an auditor
can go from a printed number to the exact code, parameters and data rows behind it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

SOFTWARE = (
    "metabuild",
    "snakemake",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "matplotlib",
    "frictionless",
    "pypandoc_binary",
    "typst",
)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of the file's bytes, as ``sha256sum`` prints it: every recorded hash can be
    checked against the file on disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def build_time() -> str | None:
    """``SOURCE_DATE_EPOCH`` as an ISO 8601 UTC time, or None when it is not set (then no time
    is recorded: a wall-clock time would make two builds of the same sources differ)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(value)))
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"SOURCE_DATE_EPOCH={value!r} is not a time in seconds since 1970") from None


def git_blob_hash(path: str | Path) -> str:
    """The hash ``git hash-object`` gives the file (sha1 of ``blob <size>\\0<content>``),
    computed here so provenance needs no git binary."""
    content = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\x00" % len(content) + content).hexdigest()


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def job_provenance(
    snakemake: Any,
    data_rows: Mapping[str, Iterable[int]] | None = None,
    study_ids: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Provenance of the running Snakemake job.

    Rule ``r`` runs ``workflow/scripts/r.py``, declared as its input ``script`` (Snakemake's
    own ``script:`` directive would run a temporary copy, so ``__file__`` cannot name it).
    """
    script = Path(getattr(snakemake.input, "script", None) or f"workflow/scripts/{snakemake.rule}.py")
    inputs = sorted({str(p) for p in snakemake.input})
    wildcards = {k: v for k, v in snakemake.wildcards.items()}
    params = {k: v for k, v in snakemake.params.items()} if hasattr(snakemake.params, "items") else {}
    job = snakemake.rule + ("[" + ", ".join(f"{k}={v}" for k, v in wildcards.items()) + "]" if wildcards else "")
    record = {
        "rule": snakemake.rule,
        "job": job,
        "wildcards": wildcards,
        "script": {"path": str(script), "git_blob": git_blob_hash(script) if script.exists() else None},
        "params": _plain(params),
        "inputs": [{"path": p, "sha256": sha256_file(p)} for p in inputs if Path(p).is_file()],
        "outputs": [str(p) for p in snakemake.output],
        "data_rows": {k: sorted(int(r) for r in v) for k, v in (data_rows or {}).items()},
        "study_ids": sorted(study_ids or []),
        "software": software_versions(),
    }
    built_at = build_time()
    if built_at is not None:
        record["built_at"] = built_at
    return record
