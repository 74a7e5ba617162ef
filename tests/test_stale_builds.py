"""No stale and no mixed build.

* A change of configuration reruns exactly the jobs that read the changed entry: a derived
  attribute's threshold reruns every analysis that groups or filters by that attribute (and
  what is downstream), a protocol anchor also the descriptive numbers that print it; nothing
  else. The expected jobs are worked out from the configuration, not from the workflow's
  digests.
* An analysis' result depends on no configuration entry outside
  :func:`metabuild.analysis.config_dependencies` (changing every other entry leaves it as it is).
* A job reads exactly the data the build was planned on: a data file edited after planning
  (before a job, or while it runs) stops the build with the file's name, and the job leaves no
  output.
"""

from __future__ import annotations

import copy
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_project

from metabuild import analysis, workflow_support
from metabuild.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))

TARGETS = [
    "results/numbers.json",
    "results/reports/reproduction.md",
    "results/tables/table1.md",
    "results/tables/table2_grade.md",
]

# Two analyses that filter (rather than group) by a derived attribute, added to the copy's
# configuration: a threshold change must reach them too.
EXTRA_ANALYSES = """analyses:
  older_only:
    outcome: pain
    timepoint: primary
    measure: MD
    method: DL
    title: "Pain in trials of older patients"
    where: {age_class: older}
  women_majority_only:
    outcome: pain
    timepoint: primary
    measure: MD
    method: DL
    title: "Pain in trials of mostly women"
    where: {sex_class: female_majority}
"""


def jobs_to_run(project: Path, targets: list[str] = TARGETS) -> dict[str, set[str]]:
    """rule -> set of wildcard strings, from a Snakemake dry run."""
    proc = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", *targets], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs: dict[str, set[str]] = {}
    rule = None
    for line in proc.stdout.splitlines():
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


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("stale") / "project")
    replace_once(project / "config" / "config.yaml", "\nanalyses:\n", "\n" + EXTRA_ANALYSES)
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", *TARGETS], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert jobs_to_run(project) == {}, "a fresh build must leave nothing to do"
    return project


def expected_jobs(before: dict, after: dict, attribute: str) -> dict[str, set[str]]:
    """The jobs a change of derived attribute ``attribute`` (and whatever protocol entry moved
    with it) must rerun, from the configuration: the analyses grouping or filtering by it, the
    descriptive topics whose settings changed, and their downstream among TARGETS."""
    analyses = {
        name
        for name, spec in after["analyses"].items()
        if spec.get("moderator") == attribute or attribute in (spec.get("where") or {})
    }
    topics = {
        topic
        for topic in workflow_support.descriptive_inputs(after)
        if workflow_support.descriptive_settings(topic, before) != workflow_support.descriptive_settings(topic, after)
    }
    grade = {o["analysis"] for o in after["grade"].values()}
    pain = {n for n in analyses if after["analyses"][n]["outcome"] == "pain"}
    expected = {
        "run_analysis": {f"analysis={a}" for a in analyses},
        "describe": {f"topic={t}" for t in topics},
        "table2_grade": {""} if analyses & grade else set(),
        "sensitivity_plausible": {""} if pain and after.get("sensitivity") else set(),
        "number_registry": {""},
        "reproduction_report": {""},
    }
    return {rule: jobs for rule, jobs in expected.items() if jobs}


def _config_change(project: Path, old: str, new: str, attribute: str) -> tuple[dict, dict]:
    path = project / "config" / "config.yaml"
    original = path.read_text(encoding="utf-8")
    before = yaml.safe_load(original)
    replace_once(path, old, new)
    after = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert before["derived_attributes"][attribute] != after["derived_attributes"][attribute]
    try:
        planned = jobs_to_run(project)
    finally:
        path.write_text(original, encoding="utf-8")
    return planned, expected_jobs(before, after, attribute)


@pytest.mark.slow
def test_age_threshold_change_reruns_the_analyses_using_age(built: Path):
    old = "    value: *age_threshold\n    levels: [older, younger]"
    planned, expected = _config_change(built, old, old.replace("*age_threshold", "0"), "age_class")
    assert expected["run_analysis"] == {"analysis=age", "analysis=older_only"}
    assert planned == expected
    assert jobs_to_run(built) == {}, "the original configuration is up to date again"


@pytest.mark.slow
def test_female_anchor_change_reruns_the_analyses_using_sex_and_the_protocol_numbers(built: Path):
    planned, expected = _config_change(built, "&female_threshold 60", "&female_threshold 40", "sex_class")
    assert expected["run_analysis"] == {"analysis=sex", "analysis=women_majority_only"}
    assert expected["describe"] == {"topic=protocol"}  # the Methods print the threshold
    assert planned == expected
    assert jobs_to_run(built) == {}


@pytest.mark.slow
def test_level_label_change_reruns_only_its_analysis(built: Path):
    """The labels of a moderator's levels are printed in its result (and its forest plot)."""
    path = built / "config" / "config.yaml"
    original = path.read_text(encoding="utf-8")
    config = yaml.safe_load(original)
    label = config["level_labels"]["older"]
    replace_once(path, f'older: "{label}"', 'older: "Older patients"')
    try:
        planned = jobs_to_run(built)
    finally:
        path.write_text(original, encoding="utf-8")
    users = {n for n, s in config["analyses"].items() if s.get("moderator") == "age_class"}
    assert planned["run_analysis"] == {f"analysis={a}" for a in users}


# ------------------------------------------------------------------------------------------------
# an analysis reads no configuration outside config_dependencies


@pytest.fixture(scope="module")
def real_data():
    return load_dataset(ROOT / "data")


def _perturbed_outside(name: str, config: dict) -> dict:
    """``config`` with every derived attribute, level label and protocol value that analysis
    ``name`` does not depend on (by config_dependencies) changed."""
    deps = analysis.config_dependencies(name, config["analyses"][name], config)
    changed = copy.deepcopy(config)
    for attribute, rule in changed["derived_attributes"].items():
        if attribute not in deps["derived_attributes"]:
            rule["levels"] = [f"{level}_changed" for level in rule["levels"]]
            if isinstance(rule["value"], (int, float)) and not isinstance(rule["value"], bool):
                rule["value"] = rule["value"] + 7
    kept = deps.get("level_labels", {})
    changed["level_labels"] = {k: (v if k in kept else f"{v} (changed)") for k, v in changed["level_labels"].items()}
    for key, entry in changed["protocol"].items():
        if isinstance(entry["value"], (int, float)) and not (
            key == "reference_weight_kg" and "reference_weight_kg" in deps
        ):
            entry["value"] = entry["value"] * 2 + 1
    for other, spec in changed["analyses"].items():
        if other != name:
            spec["title"] = "changed"
    return changed


@pytest.mark.parametrize("name", list(CONFIG["analyses"]))
def test_an_analysis_depends_on_no_configuration_outside_its_dependencies(name, real_data):
    spec = CONFIG["analyses"][name]
    result = analysis.run_analysis(name, spec, real_data, CONFIG)
    changed = _perturbed_outside(name, CONFIG)
    assert analysis.run_analysis(name, spec, real_data, changed) == result
    assert analysis.dependency_digest(name, spec, real_data, changed) == analysis.dependency_digest(
        name, spec, real_data, CONFIG
    )


def test_digest_moves_with_every_dependency(real_data):
    """And each entry config_dependencies names moves the digest (age: its threshold, its
    levels' labels; dose: the reference weight)."""
    base = {n: analysis.dependency_digest(n, s, real_data, CONFIG) for n, s in CONFIG["analyses"].items()}
    edits = {
        ("derived_attributes", "age_class", "value"): 0,
        ("level_labels", "older"): "Older",
        ("protocol", "reference_weight_kg", "value"): 80,
    }
    users = {
        ("derived_attributes", "age_class", "value"): "age_class",
        ("level_labels", "older"): "age_class",
        ("protocol", "reference_weight_kg", "value"): "dose_class",
    }
    for path, value in edits.items():
        changed = copy.deepcopy(CONFIG)
        target = changed
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        moved = {
            n for n, s in CONFIG["analyses"].items() if analysis.dependency_digest(n, s, real_data, changed) != base[n]
        }
        assert moved == {n for n, s in CONFIG["analyses"].items() if s.get("moderator") == users[path]}, path


# ------------------------------------------------------------------------------------------------
# a job reads exactly the data the build was planned on


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_planned_data_check_names_the_file_and_both_hashes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(workflow_support.PLANNED_HASHES_VARIABLE, raising=False)
    (tmp_path / "data" / "schemas").mkdir(parents=True)
    data = tmp_path / "data" / "pain_scores.csv"
    data.write_text("study_id,sd\na,1.00\n")
    (tmp_path / "data" / "studies.csv").write_text("study_id\na\n")
    planned = workflow_support.planned_data_hashes("data")
    old = _sha(data)
    assert planned == {"data/pain_scores.csv": old, "data/studies.csv": _sha(tmp_path / "data" / "studies.csv")}
    workflow_support.check_planned_data(planned, ["data/pain_scores.csv", "workflow/scripts/x.py"])  # unchanged

    data.write_text("study_id,sd\na,1.37\n")
    new = _sha(data)
    with pytest.raises(workflow_support.DataChangedError) as error:
        workflow_support.check_planned_data(planned, ["data/studies.csv", "data/pain_scores.csv"])
    assert str(error.value) == (
        f"data/pain_scores.csv changed after the build was planned (planned sha256 {old}, now {new}); rerun snakemake"
    )
    # a job process (not the planning one) takes the planning process's hashes, not the edited file's
    assert workflow_support.planned_data_hashes("data", main_process=False) == planned


def test_an_edit_while_the_job_runs_fails_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(workflow_support.PLANNED_HASHES_VARIABLE, raising=False)
    (tmp_path / "data").mkdir()
    data = tmp_path / "data" / "studies.csv"
    data.write_text("study_id\na\n")
    planned = workflow_support.planned_data_hashes("data")
    ran = []
    with pytest.raises(workflow_support.DataChangedError, match=r"data/studies.csv changed .*during this job"):
        with workflow_support.data_as_planned(planned, ["data/studies.csv"]):
            ran.append(True)
            data.write_text("study_id\nb\n")
    assert ran == [True]
    with pytest.raises(workflow_support.DataChangedError, match="data/studies.csv changed after the build was planned"):
        with workflow_support.data_as_planned(planned, ["data/studies.csv"]):
            ran.append(True)  # never: the job does not start on edited data
    assert ran == [True]


EDIT_CELL = """
import csv as _csv

def _edit_sd(path="data/pain_scores.csv"):
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(_csv.reader(handle))
    column = rows[0].index("sd")
    rows[1][column] = f"{float(rows[1][column]) + 0.37:.2f}"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        _csv.writer(handle, lineterminator="\\n").writerows(rows)
"""


@pytest.mark.slow
def test_a_data_edit_after_planning_or_during_a_job_stops_the_build(tmp_path):
    project = copy_project(tmp_path / "project")
    target = "results/analyses/primary.json"
    data = project / "data" / "pain_scores.csv"
    snakefile = project / "Snakefile"
    original = snakefile.read_text(encoding="utf-8")

    # 1. the edit lands between planning and the first job (Snakemake's onstart hook runs then)
    planned = _sha(data)
    snakefile.write_text(original + EDIT_CELL + "\n\nonstart:\n    _edit_sd()\n", encoding="utf-8")
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", target], cwd=project, capture_output=True, text=True)
    now = _sha(data)
    assert planned != now
    assert proc.returncode != 0
    message = (
        f"data/pain_scores.csv changed after the build was planned (planned sha256 {planned}, now {now}); "
        "rerun snakemake"
    )
    assert message in proc.stdout + proc.stderr
    assert not (project / target).exists()
    snakefile.write_text(original, encoding="utf-8")

    # 2. the edit lands while the job runs (the job's own script makes it, so it is certain to)
    script = project / "workflow" / "scripts" / "run_analysis.py"
    script_text = script.read_text(encoding="utf-8")
    script.write_text(EDIT_CELL + "\n_edit_sd()\n" + script_text, encoding="utf-8")
    planned = _sha(data)
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", target], cwd=project, capture_output=True, text=True)
    now = _sha(data)
    assert proc.returncode != 0
    assert (
        f"data/pain_scores.csv changed after the build was planned, during this job (planned sha256 {planned}, "
        f"now {now}); rerun snakemake"
    ) in proc.stdout + proc.stderr
    assert not (project / target).exists(), "Snakemake deletes the outputs of the failed job"
    script.write_text(script_text, encoding="utf-8")

    # 3. planned again on the edited file, the build runs
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", target], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (project / target).exists()
