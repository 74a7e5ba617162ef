"""The curation scripts (data/curation/) work for a trial they have not seen.

They reconstruct the published article's trials. A trial added to the data since (a fictional
eighth here) keeps its rows exactly as entered, the scripts say so by name, and their outputs
for the article's trials do not change. A trial the data no longer hold is named, not a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project
from trial_edits import add_fictional_trial, read_rows, remove_trial, write_rows

ROOT = Path(__file__).resolve().parents[1]


def run(project: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(project / "workflow" / "lib"))
    proc = subprocess.run(
        [sys.executable, f"data/curation/{script}.py", *args], cwd=project, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = copy_project(tmp_path / "project")
    add_fictional_trial(project / "data", "zeta2021", "Zeta 2021")
    fields, rows = read_rows(project / "data" / "binary_outcomes.csv")
    template = rows[0]
    zeta = [
        dict(template, study_id="zeta2021", outcome="nausea", arm=arm, events=e, n="15", source="Zeta 2021 report")
        for arm, e in (("ketamine", "4"), ("control", "1"))
    ]
    write_rows(project / "data" / "binary_outcomes.csv", fields, [*rows, *zeta])
    return project


def _zeta(project: Path, name: str) -> list[dict]:
    return [r for r in read_rows(project / "data" / name)[1] if r["study_id"] == "zeta2021"]


def test_demographics_keeps_the_new_trial_as_entered(project: Path):
    before = (project / "data" / "studies.csv").read_text(encoding="utf-8")
    zeta = _zeta(project, "studies.csv")
    proc = run(project, "demographics")
    assert "zeta2021: not a trial of the published article; its age/sex columns are kept as entered" in proc.stdout
    assert _zeta(project, "studies.csv") == zeta
    assert (project / "data" / "studies.csv").read_text(encoding="utf-8") == before  # the others as committed


def test_demographics_names_a_trial_the_data_no_longer_hold(tmp_path: Path):
    project = copy_project(tmp_path / "project")
    gone = read_rows(project / "data" / "studies.csv")[1][0]["study_id"]
    remove_trial(project / "data", gone)
    proc = run(project, "demographics")
    assert f"{gone}: a trial of the published article that data/studies.csv no longer holds" in proc.stdout


def test_impossible_values_leave_the_new_trial_out_of_table_1_checks(project: Path):
    committed = (ROOT / "data" / "curation" / "output" / "impossible.md").read_text(encoding="utf-8")
    proc = run(project, "impossible")
    assert "zeta2021: not a trial of the published article (its Table 1); left out of the regimen check" in proc.stdout
    assert (project / "data" / "curation" / "output" / "impossible.md").read_text(encoding="utf-8") == committed


@pytest.mark.slow
def test_binary_reconstruction_keeps_the_new_trial_rows(project: Path):
    zeta = _zeta(project, "binary_outcomes.csv")
    committed = read_rows(ROOT / "data" / "binary_outcomes.csv")[1]
    proc = run(project, "reconstruct_binary")
    assert "binary_outcomes.csv: zeta2021 is not a trial this script reconstructs; its 2 rows are kept" in proc.stdout
    rows = read_rows(project / "data" / "binary_outcomes.csv")[1]
    assert rows == [*committed, *zeta]
