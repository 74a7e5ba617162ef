"""The build through the cluster profile (``profiles/slurm``) on a SLURM cluster the test starts.

A single-node cluster on 127.0.0.1 (``benchmarks/slurm_cluster.py``: munged, slurmctld and
slurmd from Debian's ``munge`` and ``slurm-wlm``, own ports, state and mount namespace, stopped
by PID at the end even when a test fails) builds a copy of the project with
``snakemake --profile profiles/slurm``. Every file of its ``results/`` must be byte-identical
to a local build of another copy (same SOURCE_DATE_EPOCH; the local build is deterministic,
``tests/test_determinism.py``). Also checked: the job groups cut the number of SLURM jobs, and
no job on the cluster starts the workers' forkserver (a cluster job runs its script in its
own Snakemake process).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import slurm_cluster  # noqa: E402
import synthetic  # noqa: E402

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 3600  # seconds; a build on the cluster takes minutes on a loaded 2-core machine


def _epoch() -> str:
    out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "1561939200"


EPOCH = _epoch()


def _needs() -> str | None:
    missing = slurm_cluster.missing_programs()
    if missing:
        return f"not installed: {', '.join(missing)} (Debian packages slurm-wlm and munge; setup.sh installs them)"
    if os.geteuid() != 0:
        return "starting SLURM's daemons and a mount namespace needs root"
    valid, why = synthetic.real_data_valid()
    if not valid:
        return f"data/ does not validate: {why[:200]}"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = _needs()
    if why:
        pytest.skip(why)
    # the context manager stops every daemon by PID, and kills what jobs left, however the
    # module's tests end (and if the start itself fails)
    with slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm")) as started:
        yield started


class ProcessWatch:
    """Samples the processes of the cluster's jobs (those in slurmd's mount namespace) while
    the build runs: which ran Snakemake, and whether any was a multiprocessing forkserver."""

    def __init__(self, cluster: slurm_cluster.Cluster) -> None:
        self.cluster = cluster
        self.snakemake: set[int] = set()
        self.forkservers: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.cluster.job_processes():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if "multiprocessing.forkserver" in cmdline:
                    self.forkservers.append(cmdline[:200])
                elif "-m snakemake" in cmdline:
                    self.snakemake.add(pid)
            self._stop.wait(0.2)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def builds(cluster, tmp_path_factory):
    """(local copy, SLURM copy, SLURM Snakemake output, process watch), both copies built."""
    local = synthetic.copy_project(tmp_path_factory.mktemp("local") / "project", data="real")
    proc = synthetic.run_snakemake(local, timeout=BUILD_TIMEOUT, SOURCE_DATE_EPOCH=EPOCH)
    assert proc.returncode == 0, proc.stdout[-3000:]

    remote = synthetic.copy_project(tmp_path_factory.mktemp("remote") / "project", data="real")
    env = cluster.env(synthetic.build_env(remote, SOURCE_DATE_EPOCH=EPOCH))
    with ProcessWatch(cluster) as watch:
        proc = subprocess.run(
            [synthetic.SNAKEMAKE, "--profile", "profiles/slurm"],
            cwd=remote,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    assert proc.returncode == 0, proc.stdout[-5000:] + "\n" + cluster.logs()
    return local, remote, proc.stdout, watch


def _byte_differences(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    problems = [f"only in one build: {f}" for f in sorted(files_a ^ files_b)]
    problems += [
        f"{f}: bytes differ" for f in sorted(files_a & files_b) if (a / f).read_bytes() != (b / f).read_bytes()
    ]
    return problems


def test_outputs_identical_to_local_build(builds):
    local, remote, _, _ = builds
    problems = _byte_differences(local / "results", remote / "results")
    assert not problems, "\n".join(problems)
    # the documents and the registry were really compared, not just an empty tree
    for rel in ("numbers.json", "manuscript/paper.pdf", "submission/supplement.docx", "figures/forest_primary.png"):
        assert (remote / "results" / rel).is_file(), rel


def _rule_jobs(snakemake_output: str) -> int:
    """The build's job count, from Snakemake's "Job stats" table (the line ``total N``)."""
    match = re.search(r"^total\s+(\d+)", snakemake_output, re.M)
    assert match, "no Job stats in Snakemake's output"
    return int(match.group(1))


def test_groups_cut_slurm_jobs(builds, cluster):
    """Each group runs as a few SLURM jobs, not one per rule job; the host submitted exactly
    the batch jobs slurmctld accepted (there is no accounting database to ask)."""
    _, _, output, _ = builds
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", output)
    accepted = cluster.submitted_batch_jobs()
    assert sorted(map(int, submitted)) == accepted
    jobs = _rule_jobs(output) - 1  # rule `all` runs on the host
    print(f"\nSLURM jobs: {len(accepted)} for {jobs} rule jobs")
    assert 4 <= len(accepted) <= 10, (len(accepted), jobs)
    assert len(accepted) * 4 < jobs


def test_cluster_jobs_run_scripts_in_process(builds):
    """Snakemake ran on the node (the jobs did run there), and no process there was the
    workers' forkserver: a cluster job runs its script in its own process."""
    _, _, _, watch = builds
    assert watch.snakemake, "no Snakemake process seen in a SLURM job"
    assert not watch.forkservers, watch.forkservers[:3]
