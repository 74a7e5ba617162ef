"""Each curation script (data/curation/) writes exactly what is committed.

The reconstructed rows of data/*.csv and the printed outputs under data/curation/output/ must
be what the scripts make, byte for byte: a committed value no script gives (a hand edit, or a
script that drew different random numbers since) fails here, naming the file and the first row
that differs. The scripts run in a copy of the project, so the working tree is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project

ROOT = Path(__file__).resolve().parents[1]


def run(project: Path, script: str, *args: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(project / "workflow" / "lib"))
    proc = subprocess.run(
        [sys.executable, f"data/curation/{script}.py", *args], cwd=project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def assert_same(project: Path, *names: str) -> None:
    for name in names:
        committed = (ROOT / name).read_text(encoding="utf-8").splitlines()
        written = (project / name).read_text(encoding="utf-8").splitlines()
        for i, (a, b) in enumerate(zip(committed, written, strict=False), start=1):
            assert a == b, f"{name}, line {i}: committed\n  {a}\nbut the script writes\n  {b}"
        assert len(committed) == len(written), f"{name}: {len(committed)} lines committed, {len(written)} written"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


def test_demographics_writes_the_committed_data(project: Path):
    run(project, "demographics")
    assert_same(project, "data/studies.csv")


def test_impossible_writes_the_committed_output(project: Path):
    run(project, "impossible")
    assert_same(project, "data/curation/output/impossible.md")


@pytest.mark.slow
def test_reconstruct_pain_writes_the_committed_data(project: Path):
    run(project, "reconstruct_pain")
    assert_same(
        project,
        "data/pain_scores.csv",
        "data/curation/output/plausible_fit.csv",
        "data/curation/output/residuals_pain.md",
    )


@pytest.mark.slow
def test_reconstruct_binary_writes_the_committed_data(project: Path):
    run(project, "reconstruct_binary")
    assert_same(project, "data/binary_outcomes.csv", "data/curation/output/residuals_binary.md")
