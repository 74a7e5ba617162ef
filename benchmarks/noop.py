"""The no-op rebuild beside Snakemake's own floor: CPU (user + sys) and wall medians.

    python benchmarks/noop.py [--repeats 7] [--copy DIR]

Measures, in a built copy of the project (made and built here unless ``--copy`` names one),
interleaved so that every variant sees the same load:

* ``snakemake --version``: Python, Snakemake's import and its command line;
* an empty Snakefile (one rule with no input): Snakemake's start, an empty DAG and its exit;
* ``snakemake --cores 2`` on the up-to-date build: the no-op;
* ``snakemake --cores 2 -n`` on the same build (no job would run: the workers never start).

CPU time is that of every process a run starts (the forkserver too, which outlives nothing
but may still be importing when Snakemake exits): this process is their subreaper and waits
for all of them. Wall time ends when Snakemake exits. Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402

_PR_SET_CHILD_SUBREAPER = 36
EMPTY_SNAKEFILE = 'rule all:\n    output:\n        "empty.txt"\n    shell:\n        "touch {output}"\n'


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reap_all() -> None:
    """Wait for every process left to this one (orphans come back to a subreaper)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds until ``cmd`` exits, CPU seconds of it and all its descendants, output)."""
    _reap_all()
    cpu0 = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    _reap_all()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall, _children_cpu() - cpu0, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--copy",
        action="append",
        default=[],
        metavar="[NAME=]DIR",
        help="a built copy of the project, measured as noop-NAME (repeatable: copies of two versions of the "
        "workflow are measured interleaved); default: make and build a copy of this checkout",
    )
    parser.add_argument("--no-dry", action="store_true", help="leave out `snakemake -n`")
    parser.add_argument("--json", type=Path, help="also write the figures to this file (for benchmarks/run.py)")
    args = parser.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    copies: dict[str, Path] = {}
    for i, entry in enumerate(args.copy):
        name, _, path = entry.rpartition("=")
        copies[name or str(i)] = Path(path).resolve()
    if not copies:
        copy = Path(tempfile.mkdtemp(prefix="metabuild-noop-")) / "project"
        synthetic.copy_project(copy)
        print(f"building {copy} ...", flush=True)
        built = synthetic.run_snakemake(copy, timeout=900)
        if built.returncode != 0:
            raise RuntimeError(f"the build of {copy} failed:\n{built.stdout[-3000:]}")
        copies["this"] = copy.resolve()
    first = next(iter(copies.values()))
    empty = first.parent / "empty-workflow"
    empty.mkdir(exist_ok=True)
    (empty / "Snakefile").write_text(EMPTY_SNAKEFILE)
    smk = synthetic.SNAKEMAKE
    variants = {"version": ([smk, "--version"], first), "empty": ([smk, "--cores", "2"], empty)}
    for name, copy in copies.items():
        variants[f"noop-{name}"] = ([smk, "--cores", "2"], copy)
        if not args.no_dry:
            variants[f"dry-{name}"] = ([smk, "--cores", "2", "-n"], copy)
    # warm the file cache and check that each no-op runs no job
    for label, (cmd, cwd) in variants.items():
        _, _, out = measure(cmd, cwd, synthetic.build_env(cwd))
        if label.startswith("noop") and "Nothing to be done" not in out:
            raise RuntimeError(f"{cwd} is not up to date:\n{out[-2000:]}")
    load0 = os.getloadavg()
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for label, (cmd, cwd) in variants.items():
            wall, cpu, _ = measure(cmd, cwd, synthetic.build_env(cwd))
            results[label].append((wall, cpu))
    load1 = os.getloadavg()
    where = ", ".join(f"{k}={v}" for k, v in copies.items())
    print(f"{where}: {args.repeats} interleaved repetitions; load average {load0[0]:.2f} -> {load1[0]:.2f}")
    figures = {"load": [load0[0], load1[0]], "repeats": args.repeats}
    for label, values in results.items():
        walls = [w for w, _ in values]
        cpus = [c for _, c in values]
        figures[label] = {
            "cpu_median": statistics.median(cpus),
            "wall_median": statistics.median(walls),
            "cpu": cpus,
            "wall": walls,
        }
        print(
            f"  {label:12s} CPU median {statistics.median(cpus):5.2f} s (min {min(cpus):.2f})   "
            f"wall median {statistics.median(walls):5.2f} s (min {min(walls):.2f})   "
            f"[{' '.join(f'{c:.2f}' for c in cpus)}]"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
