"""A build killed with ``kill -9`` leaves no process behind and resumes to the same outputs.

One copy of the project (``conftest.copy_project``, real data) is built from cold and its
Snakemake is killed with SIGKILL (Snakemake only, not its process group: as by the OOM killer
or ``kill -9 PID``) ten times, at seeded random delays after it starts (its start, the
forkserver's imports, the DAG) or after its first worker appears (jobs running, documents
rendering). Each start resumes the build the previous kill interrupted (when a start finishes
the build, the next one starts cold again). One second after each kill no process of that
copy may be alive (found by working directory or command line, not by name). Then the build
is resumed with the README's commands ("After an interruption") and its results/ (logs aside)
compared with a clean uninterrupted build of another copy: byte-identical but for the lines of
JSON files holding ``built_at``, the time a job ran, which differs between any two builds by
design (see test_determinism.py).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_project

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402

KILLS = 10
SEED = 11
EPOCH = "1561939200"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]


def _env(copy: Path) -> dict[str, str]:
    # the copy's jobs import the copy's library; documents get the same date in both builds
    return dict(os.environ, PYTHONPATH=str(copy / "workflow" / "lib"), SOURCE_DATE_EPOCH=EPOCH)


def _snakemake(copy: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=copy,
        env=_env(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def _processes_of(copy: Path) -> dict[int, tuple[int, str]]:
    """Living processes (not zombies) working in ``copy`` or naming it on their command line:
    PID -> (parent PID, command line)."""
    root = os.path.realpath(copy)
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile, or a zombie (no working directory)
            continue
        state, ppid = stat[stat.rindex(b")") + 2 :].split()[:2]
        if state != b"Z" and (cwd == root or cwd.startswith(root + os.sep) or root in command):
            found[int(entry.name)] = (int(ppid), command.strip())
    return found


def _kinds(processes: dict[int, tuple[int, str]]) -> list[str]:
    """What each process is: snakemake, forkserver, worker (forked by the forkserver, same
    command line), tracker (multiprocessing's resource tracker), or a program a job started."""
    kinds = []
    for ppid, command in processes.values():
        if "multiprocessing.forkserver" in command:
            kinds.append("worker" if "multiprocessing.forkserver" in processes.get(ppid, (0, ""))[1] else "forkserver")
        elif "resource_tracker" in command:
            kinds.append("tracker")
        elif "-m snakemake" in command:
            kinds.append("snakemake")
        elif command:
            kinds.append(command.split()[0].rsplit("/", 1)[-1])  # a program a job started (pandoc)
        else:
            kinds.append("exiting")  # its memory is gone already, its entry not yet
    return sorted(kinds)


def _kill_point(rng: random.Random) -> tuple[str, float]:
    """Where to kill: a third of the kills a random time after Snakemake starts (its start,
    the forkserver's imports, the DAG), the others a random time after the first worker
    appeared (jobs running). Anchored on what happens, so that a slow machine moves the kills
    with the build."""
    if rng.random() < 1 / 3:
        return "start", round(rng.uniform(0.1, 3.0), 2)
    return "jobs", round(rng.uniform(0.0, 5.0), 2)


def _kill_at(copy: Path, anchor: str, delay: float) -> dict | None:
    """Start Snakemake in ``copy`` and SIGKILL it ``delay`` s after ``anchor``: what was alive
    just before the kill, how soon after it none was, and what was alive 1 s after it. None
    when the build finished first."""
    build = subprocess.Popen(
        [*SNAKEMAKE, "--rerun-incomplete"],
        cwd=copy,
        env=_env(copy),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    while anchor == "jobs" and build.poll() is None and "worker" not in _kinds(_processes_of(copy)):
        assert time.monotonic() < started + 120, "no worker appeared in 120 s"
        time.sleep(0.05)
    try:
        build.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    if build.poll() is not None:
        assert build.returncode == 0, f"a start of the interrupted build failed (exit {build.returncode})"
        return None
    before = _processes_of(copy)
    os.kill(build.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    build.wait()
    gone_after = None
    while time.monotonic() < killed_at + 1.0:
        if not _processes_of(copy):
            gone_after = time.monotonic() - killed_at
            break
        time.sleep(0.01)
    time.sleep(max(0.0, killed_at + 1.0 - time.monotonic()))
    after = _processes_of(copy)
    for pid in after:  # a failure must not leave them running (they are this test's)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return {
        "when": f"{delay:.2f} s after {anchor}",
        "before": _kinds(before),
        "gone_after": gone_after,
        "after": [c for _, c in after.values()],
    }


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_no_process_and_resumes_to_identical_outputs(tmp_path):
    clean = copy_project(tmp_path / "clean")
    built = _snakemake(clean)
    assert built.returncode == 0, built.stdout[-3000:]

    copy = copy_project(tmp_path / "killed")
    rng = random.Random(SEED)
    kills: list[dict] = []
    starts = 0
    while len(kills) < KILLS:
        starts += 1
        assert starts <= 3 * KILLS, f"the build kept finishing before its kill: {kills}"
        # Snakemake leaves its lock behind when killed; removing it is what --unlock does (the
        # README's command is run below, for the last resume; here it would cost 10 starts)
        shutil.rmtree(copy / ".snakemake" / "locks", ignore_errors=True)
        record = _kill_at(copy, *_kill_point(rng))
        if record is None:  # the build finished: the next start is cold again
            shutil.rmtree(copy / "results")
            shutil.rmtree(copy / ".snakemake")
            continue
        kills.append(record)

    print(f"\n{'kill':<20} | {'alive just before the kill':<60} | none left after s | alive 1 s after")
    for k in kills:
        gone = f"{k['gone_after']:.3f}" if k["gone_after"] is not None else "-"
        print(f"{k['when']:<20} | {' '.join(k['before']):<60} | {gone:>17} | {len(k['after'])}")
    assert [k["after"] for k in kills] == [[] for _ in kills], "processes outlived a kill -9 of Snakemake"
    # the kills must have hit running jobs, not only Snakemake's start
    assert sum("worker" in k["before"] for k in kills) >= 3, kills

    # the README's resume after a kill: unlock, then build with --rerun-incomplete
    unlock = subprocess.run(
        [sys.executable, "-m", "snakemake", "--unlock"], cwd=copy, env=_env(copy), capture_output=True, text=True
    )
    assert unlock.returncode == 0 and "Unlocked" in unlock.stdout + unlock.stderr, unlock.stderr[-2000:]
    resumed = _snakemake(copy, "--rerun-incomplete")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert not _processes_of(copy)
    assert not [p for p in (copy / ".snakemake" / "incomplete").rglob("*") if p.is_file()]
    left = [p.relative_to(copy).as_posix() for p in (copy / "results").rglob("*.tmp")]
    assert not left, f"temporary files left by the killed jobs: {left}"

    for tree in (clean, copy):
        shutil.rmtree(tree / "results" / "logs")
    problems = synthetic.compare_outputs(copy / "results", clean / "results")
    assert not problems, "the resumed build differs from an uninterrupted one:\n" + "\n".join(problems)
    kinds = {p.suffix for p in (copy / "results").rglob("*") if p.is_file()}
    assert {".json", ".svg", ".png", ".md", ".html", ".docx", ".pdf"} <= kinds, kinds
