"""Reliability of the build: an interrupted build resumes to the same outputs, and bad input
fails at parse time leaving results/ untouched.

Builds run in temporary copies of the project (``git ls-files``) holding a small synthetic
review (benchmarks/synthetic.py), up to every output short of the manuscript (whose numbers
need the real data). Each copy's jobs import the copy's own library (PYTHONPATH).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402

N_STUDIES, N_ANALYSES, SEED = 8, 6, 11


def _review_copy(dest: Path) -> Path:
    synthetic.copy_project(dest, data=None)
    synthetic.make_review(dest, N_STUDIES, N_ANALYSES, seed=SEED)
    return dest


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted build (shared by the tests of this module)."""
    dest = _review_copy(tmp_path_factory.mktemp("ref") / "project")
    proc = synthetic.run_snakemake(dest, *synthetic.non_render_targets(dest), timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return dest


# ------------------------------------------------------------------------------ interruption
def _incomplete_markers(copy: Path) -> list[Path]:
    return [p for p in (copy / ".snakemake" / "incomplete").rglob("*") if p.is_file()]


def _marked_outputs(copy: Path) -> list[str]:
    """Output paths that Snakemake's incomplete markers name (the marker's path is the
    url-safe base64 of the output path, split into "@"-prefixed parts when too long)."""
    root = copy / ".snakemake" / "incomplete"
    names = []
    for marker in _incomplete_markers(copy):
        encoded = "".join(part.removeprefix("@") for part in marker.relative_to(root).parts)
        names.append(base64.urlsafe_b64decode(encoded).decode())
    return names


@pytest.mark.slow
def test_interrupted_build_resumes_to_identical_outputs(reference, tmp_path):
    copy = _review_copy(tmp_path / "project")
    targets = synthetic.non_render_targets(copy)
    proc = subprocess.Popen(
        [synthetic.SNAKEMAKE, "--cores", "2", *targets],
        cwd=copy,
        env=synthetic.build_env(copy),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    analyses = copy / "results" / "analyses"
    deadline = time.monotonic() + 150
    try:
        # kill while jobs are running: >= 2 analyses written and Snakemake has jobs in flight
        while time.monotonic() < deadline and proc.poll() is None:
            done = len(list(analyses.glob("*.json"))) if analyses.exists() else 0
            if done >= 2 and _incomplete_markers(copy):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before it could be interrupted"
        in_flight = _incomplete_markers(copy)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: Snakemake and its jobs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert in_flight, "no job was running at the kill"
    assert not (copy / "results" / "numbers.json").exists()

    # Snakemake itself must notice the incomplete outputs (not re-invented here); a SIGKILLed
    # Snakemake also leaves its lock behind, which --unlock removes
    unlock = synthetic.run_snakemake(copy, "--unlock", *targets, timeout=120)
    assert unlock.returncode == 0, unlock.stdout[-2000:]
    check = synthetic.run_snakemake(copy, "-n", *targets, timeout=120)
    marked = _marked_outputs(copy)
    assert marked, "the killed jobs left no incomplete markers"
    if any((copy / name).exists() for name in marked):
        # an output written before the kill but not yet registered as complete: Snakemake
        # refuses to go on without --rerun-incomplete
        assert check.returncode != 0 and "incomplete" in check.stdout.lower(), check.stdout[-3000:]
    else:
        # the killed jobs wrote nothing (outputs are written atomically): they are just missing
        assert check.returncode == 0, check.stdout[-3000:]
        for name in marked:
            assert name in check.stdout, f"{name} (killed mid-job) is not planned again"
    resumed = synthetic.run_snakemake(copy, "--rerun-incomplete", *targets, timeout=170)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert not _incomplete_markers(copy)
    temporaries = [p.relative_to(copy).as_posix() for p in (copy / "results").rglob("*.tmp")]
    assert not temporaries, f"temporary files left by the killed jobs: {temporaries}"
    problems = synthetic.compare_outputs(copy / "results", reference / "results")
    assert not problems, "resumed build differs from an uninterrupted one:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------ bad input
def _corrupt_cell(copy: Path) -> tuple[Path, str, list[str]]:
    path = copy / "data" / "pain_scores.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[3].rstrip("\n").split(",")
    cells[header.index("sd")] = "abc"
    lines[3] = ",".join(cells) + "\n"
    return path, "".join(lines), ["pain_scores.csv", "row 4", '"sd"']


def _typo_key(copy: Path) -> tuple[Path, str, list[str]]:
    path = copy / "config" / "config.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "    leave_one_out: true", "    leave_one_out: true\n    moderater: dose_class", 1
    )
    return path, text, ["moderater"]


def _dangling_grade(copy: Path) -> tuple[Path, str, list[str]]:
    path = copy / "config" / "config.yaml"
    text = path.read_text(encoding="utf-8").replace("    analysis: primary", "    analysis: no_such_analysis", 1)
    return path, text, ["grade.primary.analysis", "no_such_analysis"]


def _bad_level(copy: Path) -> tuple[Path, str, list[str]]:
    path = copy / "config" / "config.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "    leave_one_out: true", "    leave_one_out: true\n    moderator: nope", 1
    )
    return path, text, ["moderator", "nope"]


BAD_INPUTS = {
    "bad_csv_cell": _corrupt_cell,
    "misspelt_config_key": _typo_key,
    "dangling_grade_reference": _dangling_grade,
    "unknown_moderator": _bad_level,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_leaves_results_untouched(reference, case):
    """On a fully built copy: break one input, the build fails before any job with a message
    naming file/row/column or the config key, and no file of results/ changes."""
    path, text, expected = BAD_INPUTS[case](reference)
    original = path.read_text(encoding="utf-8")
    before = synthetic.tree_snapshot(reference / "results")
    path.write_text(text, encoding="utf-8")
    try:
        proc = synthetic.run_snakemake(reference, *synthetic.non_render_targets(reference), timeout=120)
    finally:
        path.write_text(original, encoding="utf-8")
    assert proc.returncode != 0, proc.stdout[-2000:]
    for word in expected:
        assert word in proc.stdout, f"{word!r} not in the error message:\n{proc.stdout[-2000:]}"
    assert "Finished jobid" not in proc.stdout and "rule run_analysis:" not in proc.stdout
    assert synthetic.tree_snapshot(reference / "results") == before, "results/ changed"


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_creates_no_results(tmp_path, case):
    copy = _review_copy(tmp_path / "project")
    path, text, expected = BAD_INPUTS[case](copy)
    path.write_text(text, encoding="utf-8")
    proc = synthetic.run_snakemake(copy, timeout=120)
    assert proc.returncode != 0
    for word in expected:
        assert word in proc.stdout, f"{word!r} not in the error message:\n{proc.stdout[-2000:]}"
    assert not (copy / "results").exists(), "results/ created by a build with bad input"
