"""``metabuild replay KEY``: rebuild the job behind one number in a clean copy of the project
and confirm that the value and the output files agree with the recorded ones.

The copy holds the project's source files (``git ls-files``, tracked and untracked-but-not-
ignored) and its data; no results. Snakemake builds only the job's recorded outputs (and
whatever they need). Output files are compared byte for byte and, for JSON outputs, also with
the build time (``provenance.built_at``, the one field meant to differ) left out. An audit
record is written to ``<results>/audit/replay-<key>.json``; the exit code is 1 on disagreement.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from metabuild.audit.common import AuditError, Project
from metabuild.provenance import sha256_file, software_versions

HELP = "rebuild the job behind one number in a clean copy and compare"

_SKIP = {".git", ".snakemake", "results", "__pycache__", ".venv", ".pytest_cache", ".ruff_cache"}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("key", help="registry key, e.g. primary.estimate")
    parser.add_argument("--results", default="results", help="results folder (default: results)")
    parser.add_argument("--cores", default="2", help="Snakemake --cores (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    return parser


def project_files(root: Path, data_dir: str = "data") -> list[str]:
    """Source files of the project (git-tracked and untracked-not-ignored) plus its data files."""
    files: set[str] = set()
    git = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
    )
    if git.returncode == 0:
        files |= {f for f in git.stdout.decode().split("\0") if f}
    else:
        for path in root.rglob("*"):
            rel = path.relative_to(root)
            if path.is_file() and not (set(rel.parts) & _SKIP):
                files.add(rel.as_posix())
    for path in (root / data_dir).rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            files.add(path.relative_to(root).as_posix())
    results_prefix = "results/"
    return sorted(f for f in files if not f.startswith(results_prefix) and (root / f).is_file())


def copy_project(root: Path, dest: Path, data_dir: str = "data") -> list[str]:
    files = project_files(root, data_dir)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return files


def content_sha256(path: Path) -> str | None:
    """SHA-256 of a JSON output without its build time; of the bytes for other files."""
    if not path.is_file():
        return None
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return sha256_file(path)
        if isinstance(data, dict) and isinstance(data.get("provenance"), dict):
            data["provenance"].pop("built_at", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return sha256_file(path)


def _value_from(output: Path, key: str) -> Any:
    data = json.loads(output.read_text(encoding="utf-8"))
    entry = data.get("numbers", {}).get(key)
    if entry is None:
        return None
    value = entry["value"]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def replay(project: Project, key: str, cores: str = "2", keep: bool = False) -> dict[str, Any]:
    from metabuild.audit.diff import run_snakemake

    entry = project.entry(key)
    prov = entry["provenance"]
    if project.root is None:
        raise AuditError(f"{project.results} is not inside a project tree: replay needs the sources")
    outputs = list(prov.get("outputs") or [entry["output"]])
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="metabuild-replay-"))
    try:
        copied = copy_project(project.root, tmp, project.config.get("data_dir", "data"))
        result = run_snakemake(tmp, targets=outputs, cores=cores, log=tmp / "replay.log")
        record: dict[str, Any] = {
            "key": key,
            "job": prov["job"],
            "rule": prov["rule"],
            "recorded_value": entry["value"],
            "recorded_text": entry.get("text"),
            "snakemake_returncode": result.returncode,
            "files_copied": len(copied),
        }
        if result.returncode != 0:
            record.update(
                replayed_value=None,
                value_equal=False,
                error="\n".join(result.stderr.strip().splitlines()[-20:]),
            )
        source = tmp / entry["output"]
        record["replayed_value"] = _value_from(source, key) if source.is_file() else None
        record["value_equal"] = result.returncode == 0 and record["replayed_value"] == entry["value"]
        if isinstance(record["replayed_value"], (int, float)) and isinstance(entry["value"], (int, float)):
            record["value_difference"] = record["replayed_value"] - entry["value"]
        outs = []
        for out in outputs:
            mine, theirs = project.path(out), tmp / out
            o = {
                "path": out,
                "recorded_sha256": sha256_file(mine) if mine.is_file() else None,
                "replayed_sha256": sha256_file(theirs) if theirs.is_file() else None,
                "recorded_content_sha256": content_sha256(mine),
                "replayed_content_sha256": content_sha256(theirs),
            }
            same_bytes = o["recorded_sha256"] == o["replayed_sha256"]
            o["bytes_equal"] = same_bytes and o["replayed_sha256"] is not None
            o["content_equal"] = (
                o["replayed_content_sha256"] is not None
                and o["recorded_content_sha256"] == o["replayed_content_sha256"]
            )
            outs.append(o)
        record["outputs"] = outs
        replayed_inputs = {}
        if source.is_file() and source.suffix == ".json":
            replayed_prov = json.loads(source.read_text(encoding="utf-8")).get("provenance", {})
            replayed_inputs = {i["path"]: i["sha256"] for i in replayed_prov.get("inputs", [])}
            record["replayed_script_git_blob"] = (replayed_prov.get("script") or {}).get("git_blob")
        record["recorded_script_git_blob"] = (prov.get("script") or {}).get("git_blob")
        record["inputs"] = [
            {
                "path": i["path"],
                "recorded_sha256": i["sha256"],
                "replayed_sha256": replayed_inputs.get(i["path"]),
                "equal": replayed_inputs.get(i["path"]) == i["sha256"],
            }
            for i in prov.get("inputs", [])
        ]
        record["agree"] = bool(record["value_equal"] and all(o["content_equal"] for o in outs))
        record["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        record["seconds"] = round(time.time() - started, 1)
        record["recorded_built_at"] = prov.get("built_at")
        record["software"] = software_versions()
        record["copy"] = str(tmp) if keep else None
        return record
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def verdict(record: dict[str, Any]) -> str:
    lines = []
    if record["agree"]:
        lines.append(
            f"REPRODUCED: {record['key']} = {record['replayed_value']!r} "
            f"(recorded {record['recorded_value']!r}); "
            f"{len(record['outputs'])} output file(s) agree"
        )
    else:
        lines.append(
            f"DISAGREES: {record['key']} recorded {record['recorded_value']!r}, replayed {record['replayed_value']!r}"
        )
        if record.get("error"):
            lines.append("  the replay build failed:\n    " + record["error"].replace("\n", "\n    "))
    for o in record["outputs"]:
        state = "bytes equal" if o["bytes_equal"] else "equal except build time" if o["content_equal"] else "DIFFERENT"
        lines.append(f"  output {o['path']}: {state}")
    changed = [i["path"] for i in record["inputs"] if not i["equal"]]
    if changed:
        lines.append("  inputs that differ from the recorded build (changed since): " + ", ".join(changed))
    if record.get("recorded_script_git_blob") != record.get("replayed_script_git_blob") and record.get(
        "replayed_script_git_blob"
    ):
        lines.append("  the script changed since the build")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    project = Project.open(args.results)
    print(f"replaying {args.key} in a clean copy of {project.root} ...", file=sys.stderr)
    record = replay(project, args.key, cores=args.cores, keep=args.keep)
    out = project.results / "audit" / f"replay-{args.key}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(verdict(record))
    print(f"audit record: {out}")
    return 0 if record["agree"] else 1
