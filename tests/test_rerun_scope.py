"""After a one-cell data edit, Snakemake reruns exactly the jobs that depend on that cell.

A copy of the project is built (up to the registry, figures, tables and report; rendering is
left out to keep the test short), then one cell is edited and `snakemake -n` must list the
jobs that read the cell and their downstream, and nothing else. The expected set is worked
out independently of the workflow's digests: from the data rows each built analysis records
(results/analyses/*.json), and the edited row is one the primary analysis read, so the test
holds whatever trials the data hold.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_project

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
pytestmark = pytest.mark.slow

TARGETS = [
    "results/numbers.json",
    "results/reports/reproduction.md",
    "results/tables/table1.md",
    "results/tables/table2_grade.md",
    "results/tables/table_s2_adverse_proportions.md",
    "results/figures/forest_primary.svg",
    "results/figures/forest_dose.svg",
    "results/figures/forest_responders.svg",
    "results/figures/leave_one_out.svg",
    "results/figures/risk_of_bias.svg",
    "results/figures/flow.svg",
    "results/validation/report.json",
]


def jobs_to_run(project: Path) -> dict[str, set[str]]:
    """rule -> set of wildcard strings, from a Snakemake dry run."""
    proc = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", *TARGETS], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    jobs: dict[str, set[str]] = {}
    rule = None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
            jobs.setdefault(rule, set()).add("")
            continue
        m = re.match(r"^wildcards: (.*)$", line.strip())
        if m and rule:
            jobs[rule].discard("")
            jobs[rule].add(m.group(1))
    return jobs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not (ROOT / "data" / "pain_scores.csv").exists():
        pytest.skip("data/pain_scores.csv not present")
    project = copy_project(tmp_path_factory.mktemp("rerun") / "project")
    subprocess.run([*SNAKEMAKE, "--cores", "2", *TARGETS], cwd=project, check=True, capture_output=True)
    assert jobs_to_run(project) == {}, "a fresh build must leave nothing to do"
    return project


def test_one_cell_edit_reruns_exactly_its_dependants(built):
    config = yaml.safe_load((built / "config" / "config.yaml").read_text())
    used = {
        name: set(
            json.loads((built / "results" / "analyses" / f"{name}.json").read_text())["data_rows"].get(
                "pain_scores.csv", []
            )
        )
        for name in config["analyses"]
    }
    path = built / "data" / "pain_scores.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # the ketamine-arm SD of a row the primary analysis read, edited as a person would (as text)
    number = next(n for n in sorted(used["primary"]) if rows[n - 2]["arm"] == "ketamine")
    row = rows[number - 2]
    row["sd"] = f"{float(row['sd']) + 0.37:.2f}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    analyses = {name for name, read in used.items() if number in read}
    figures = {spec["figure"] for name, spec in config["analyses"].items() if name in analyses and spec.get("figure")}
    figures &= {Path(t).stem for t in TARGETS if "/figures/" in t}
    grade = {o["analysis"] for o in config["grade"].values()}
    pain = {n for n in analyses if config["analyses"][n]["outcome"] == "pain"}
    expected = {
        "run_analysis": {f"analysis={a}" for a in analyses},
        "forest_plot": {f"stem={f}" for f in figures},
        "leave_one_out_plot": {""} if "primary" in analyses else set(),
        "table2_grade": {""} if analyses & grade else set(),
        "number_registry": {""},
        "sensitivity_plausible": {""} if config.get("sensitivity") and pain else set(),
        "reproduction_report": {""},
        "validate_data": {""},
    }
    expected = {rule: jobs for rule, jobs in expected.items() if jobs}
    assert "primary" in analyses
    assert jobs_to_run(built) == expected, f"edited {row['study_id']}'s ketamine SD (pain_scores.csv row {number})"


def test_touching_a_data_file_without_changing_it_reruns_nothing(built):
    """Snakemake compares the checksums it recorded for small inputs, so a new mtime alone
    (a file saved unchanged) reruns nothing."""
    subprocess.run([*SNAKEMAKE, "--cores", "2", *TARGETS], cwd=built, check=True, capture_output=True)
    assert jobs_to_run(built) == {}
    path = built / "data" / "binary_outcomes.csv"
    path.write_bytes(path.read_bytes())  # new mtime, same content
    assert jobs_to_run(built) == {}
