"""Provenance of a job's outputs: rule, job, script (git blob hash), parameters, input
files (SHA-256), the data rows used, software versions and the build time.

Recorded by each Snakemake script and carried into every registry number, so an auditor
can go from a printed number to the exact code, parameters and data rows behind it.
"""

from __future__ import annotations

import hashlib
import json
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


def _without_times(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_times(v) for k, v in data.items() if k != "built_at"}
    if isinstance(data, list):
        return [_without_times(v) for v in data]
    return data


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file. For the workflow's own JSON outputs the hash is of the content
    without its ``built_at`` fields (canonical JSON), so that the one field that is a time by
    design does not make every downstream hash, and so every document, differ between two
    otherwise identical builds."""
    path = Path(path)
    if path.suffix == ".json" and not str(path).startswith(("data/", "config/")):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            content = None
        if isinstance(content, dict):
            canonical = json.dumps(_without_times(content), sort_keys=True, ensure_ascii=False)
            return hashlib.sha256(canonical.encode()).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


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
    return {
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
        # A time by design: the only field that differs between two identical builds.
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
