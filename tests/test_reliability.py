"""Reliability of the build: bad input fails at parse time leaving results/ untouched.
(A killed build: tests/test_interruption.py.)

Builds run in temporary copies of the project (``git ls-files``) holding a small synthetic
review (benchmarks/synthetic.py), up to every output short of the manuscript (whose numbers
need the real data). Each copy's jobs import the copy's own library (PYTHONPATH).
"""

from __future__ import annotations

import sys
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
