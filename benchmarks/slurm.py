"""The build on a SLURM cluster beside the local build: wall time and SLURM jobs.

    .venv/bin/python benchmarks/slurm.py [--workdir DIR] [--profile profiles/slurm]

Starts a single-node SLURM cluster on 127.0.0.1 (``slurm_cluster.py``; needs root and Debian's
``slurm-wlm`` and ``munge``), builds one fresh copy of the project locally
(``snakemake --cores 2``) and another through the cluster profile, and prints both wall times,
the number of SLURM jobs submitted, the number of rule jobs and the load average before and
after. Prints figures; asserts nothing about speed (``tests/test_slurm.py`` checks the outputs).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slurm_cluster  # noqa: E402
import synthetic  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _byte_differences(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    both = files_a & files_b
    return sorted(files_a ^ files_b) + sorted(f for f in both if (a / f).read_bytes() != (b / f).read_bytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where the copies and the cluster live (kept)")
    parser.add_argument("--profile", default="profiles/slurm")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    missing = slurm_cluster.missing_programs()
    if missing:
        sys.exit(f"not installed: {', '.join(missing)} (see setup.sh)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="slurm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    epoch = str(int(time.time()))
    print(f"work directory: {work}\nload average at start: {_load()} ({os.cpu_count()} CPUs)")

    local = synthetic.copy_project(work / "local", data="real")
    start = time.monotonic()
    proc = synthetic.run_snakemake(local, timeout=args.timeout, SOURCE_DATE_EPOCH=epoch)
    local_s = time.monotonic() - start
    (work / "local.log").write_text(proc.stdout)
    if proc.returncode:
        sys.exit(f"local build failed: see {work / 'local.log'}")
    print(f"local build (snakemake --cores 2): {local_s:.1f} s; load average {_load()}")

    remote = synthetic.copy_project(work / "slurm", data="real")
    with slurm_cluster.Cluster(work / "cluster") as cluster:
        env = cluster.env(synthetic.build_env(remote, SOURCE_DATE_EPOCH=epoch))
        start = time.monotonic()
        proc = subprocess.run(
            [synthetic.SNAKEMAKE, "--profile", args.profile],
            cwd=remote,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=args.timeout,
        )
        slurm_s = time.monotonic() - start
        batch_jobs = cluster.submitted_batch_jobs()
    (work / "slurm.log").write_text(proc.stdout)
    if proc.returncode:
        sys.exit(f"SLURM build failed: see {work / 'slurm.log'}")
    total = re.search(r"^total\s+(\d+)", proc.stdout, re.M)
    rule_jobs = int(total.group(1)) - 1 if total else -1  # rule `all` runs on the host
    print(
        f"SLURM build (snakemake --profile {args.profile}): {slurm_s:.1f} s = {slurm_s / local_s:.1f} x local; "
        f"{len(batch_jobs)} SLURM jobs for {rule_jobs} rule jobs; load average {_load()}"
    )
    differ = _byte_differences(local / "results", remote / "results")
    print("outputs: " + ("byte-identical" if not differ else f"{len(differ)} files differ, e.g. {differ[:3]}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
