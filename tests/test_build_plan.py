"""The caches that make a no-op rebuild cheap give what computing afresh gives, and are
computed afresh as soon as anything they depend on changes.

* :func:`workflow_support.plan_build` (the data checks and every job's digest params) is cached
  under the configuration, the data bytes, the library and the review module; the cached plan
  equals the computed one, and each of these inputs moves it out of the cache.
* :func:`workflow_support.validate_config` gives the configuration exactly as Snakemake's
  ``validate`` leaves it (defaults filled in), and still refuses a bad configuration.
* The job workers start while the Snakefile is read only when jobs are likely; otherwise at
  ``onstart``, which a no-op never reaches.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from metabuild import workflow_support as ws
from metabuild.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "workflow" / "lib"
SCHEMA = ROOT / "config" / "schemas" / "config.schema.yaml"


@pytest.fixture
def project(tmp_path, monkeypatch) -> dict:
    """The project's data and configuration in ``tmp_path`` (the working directory), and the
    configuration validated as the Snakefile validates it."""
    shutil.copytree(ROOT / "data", tmp_path / "data", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "config", tmp_path / "config", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load((tmp_path / ws.CONFIG_FILE).read_text(encoding="utf-8"))
    ws.validate_config(config, SCHEMA, cache_dir=str(tmp_path / "validation-cache"))
    return config


def _edit_cell(path: Path, column: str) -> None:
    """Add 1 to ``column`` in the first data row of the CSV ``path``."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[1].rstrip("\n").split(",")
    index = header.index(column)
    cells[index] = str(round(float(cells[index]) + 1, 6))
    lines[1] = ",".join(cells) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def test_the_cached_plan_is_the_computed_one(project):
    assert ws.cached_plan(project, "data") is None
    plan = ws.plan_build(project, "data")
    assert ws.cached_plan(project, "data") == plan
    assert ws.plan_build(project, "data") == plan
    # the same values as computing them the way the Snakefile did before the cache
    dataset = load_dataset(Path("data"))
    assert plan.analyses == ws.analysis_digests(project["analyses"], dataset, project)
    assert set(plan.analyses) == set(project["analyses"])
    assert plan.descriptive == {t: ws.cells_digest(dataset, c) for t, c in ws.descriptive_inputs(project).items()}
    assert plan.tables == {t: ws.cells_digest(dataset, c) for t, c in ws.table_inputs(project).items()}
    assert plan.jobs["risk_of_bias_plot"] == ws.cells_digest(dataset, ws.JOB_INPUTS["risk_of_bias_plot"])


def test_each_input_of_the_plan_moves_it_out_of_the_cache(project):
    plan = ws.plan_build(project, "data")
    # a data cell: recomputed, and the digests of the jobs that read it move
    _edit_cell(Path("data/pain_scores.csv"), "sd")
    assert ws.cached_plan(project, "data") is None
    edited = ws.plan_build(project, "data")
    assert edited.analyses != plan.analyses and edited.descriptive == plan.descriptive
    # a configuration entry an analysis reads
    changed = copy.deepcopy(project)
    changed["derived_attributes"]["age_class"]["value"] += 1
    assert ws.cached_plan(changed, "data") is None
    # the review's own module, and a data schema
    module = Path(project["review_module"])
    module.write_text(module.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert ws.cached_plan(project, "data") is None
    ws.plan_build(project, "data")
    Path(module.parent / "review_helpers.py").write_text("X = 1\n", encoding="utf-8")  # a module it may import
    assert ws.cached_plan(project, "data") is None
    ws.plan_build(project, "data")
    schema = Path("data/schemas/studies.schema.json")
    schema.write_text(schema.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert ws.cached_plan(project, "data") is None
    # touching a file without changing it keeps the plan
    ws.plan_build(project, "data")
    os.utime("data/studies.csv")
    assert ws.cached_plan(project, "data") is not None


def test_a_plan_is_not_cached_when_the_data_change_while_it_is_computed(project, monkeypatch):
    checks = ws.check_study_sets

    def edit_meanwhile(config, dataset):
        checks(config, dataset)
        _edit_cell(Path("data/pain_scores.csv"), "sd")

    monkeypatch.setattr(ws, "check_study_sets", edit_meanwhile)
    ws.plan_build(project, "data")
    assert not (Path(".snakemake/metabuild") / ws.PLAN_CACHE).exists()
    assert ws.cached_plan(project, "data") is None


def test_a_damaged_plan_cache_is_computed_again(project):
    plan = ws.plan_build(project, "data")
    path = Path(".snakemake/metabuild") / ws.PLAN_CACHE
    record = json.loads(path.read_text(encoding="utf-8"))
    record["plan"]["analyses"] = ["not", "a", "mapping"]
    path.write_text(json.dumps(record), encoding="utf-8")
    assert ws.cached_plan(project, "data") is None
    path.write_text("{not json", encoding="utf-8")
    assert ws.plan_build(project, "data") == plan


def test_invalid_data_are_refused_although_a_plan_was_cached(project):
    from snakemake.exceptions import WorkflowError

    ws.plan_build(project, "data")
    studies = Path("data/studies.csv")
    lines = studies.read_text(encoding="utf-8").splitlines(keepends=True)
    studies.write_text("".join([lines[0], lines[1], lines[1], *lines[2:]]), encoding="utf-8")  # a duplicate id
    with pytest.raises(WorkflowError, match="studies.csv"):
        ws.plan_build(project, "data")


def test_validated_configuration_from_the_cache_is_snakemake_s(tmp_path):
    from snakemake.utils import validate

    raw = yaml.safe_load((ROOT / ws.CONFIG_FILE).read_text(encoding="utf-8"))
    expected = copy.deepcopy(raw)
    validate(expected, str(SCHEMA))
    assert expected != raw  # the schema fills in defaults: the comparison below means something
    cache = str(tmp_path / "cache")
    first, second = copy.deepcopy(raw), copy.deepcopy(raw)
    ws.validate_config(first, SCHEMA, cache_dir=cache)
    assert (tmp_path / "cache" / ws.VALIDATED_CONFIG).exists()
    ws.validate_config(second, SCHEMA, cache_dir=cache)  # from the cache
    assert repr(first) == repr(second) == repr(expected)
    # a configuration the schema refuses is refused after a valid one was cached
    bad = copy.deepcopy(raw)
    bad["analyses"]["Bad Name"] = dict(bad["analyses"]["primary"])
    with pytest.raises(Exception, match="Bad Name"):
        ws.validate_config(bad, SCHEMA, cache_dir=cache)


def test_job_workers_start_at_onstart_when_not_early_and_not_for_a_no_op(tmp_path):
    """A real Snakemake, with the Snakefile's two calls: not started while the Snakefile is
    read (jobs unlikely), started at onstart when a job is to run, and not at all for a no-op."""
    (tmp_path / "Snakefile").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(LIBRARY)!r})\n"
        "from metabuild import workers\n"
        "print(f'early: {workers.start_early(workflow, likely_jobs=False)}', file=sys.stderr)\n"
        "onstart:\n"
        "    print(f'onstart: {workers.start_early(workflow)}', file=sys.stderr)\n"
        "rule all:\n"
        "    output: 'out.txt'\n"
        "    shell: 'echo ok > {output}'\n",
        encoding="utf-8",
    )
    env = dict(os.environ, PYTHONPATH=str(LIBRARY))
    seen = []
    for _ in range(2):  # a build, then a no-op
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "1", "--force-use-threads"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        seen.append(re.findall(r"(early|onstart): (\w+)", proc.stderr))
    assert seen == [[("early", "False"), ("onstart", "True")], [("early", "False")]]
