"""The audit commands (python -m metabuild explain | impact | diff | replay).

Unit tests run on a synthetic build: the fixture data (tests/fixtures/valid_data), three
analyses and one descriptive topic computed with the library and recorded with the same
provenance the Snakemake scripts write. Integration tests (slow) build a copy of the whole
project with Snakemake, change one data cell or one figure script, rebuild and diff.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from metabuild.__main__ import main
from metabuild.audit import diff as audit_diff
from metabuild.audit.common import AuditError, Project, manuscript_uses
from metabuild.audit.dependence import Dependence
from metabuild.audit.explain import explain, format_text
from metabuild.audit.impact import impact
from metabuild.audit.replay import content_sha256, copy_project, replay

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "valid_data"

# ------------------------------------------------------------------------------------------------
# a synthetic build


class _Attrs(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _FakeSnakemake:
    def __init__(self, rule, inputs, outputs, wildcards, params):
        self.rule, self.input, self.output = rule, list(inputs), list(outputs)
        self.wildcards, self.params = _Attrs(wildcards), _Attrs(params)


PAPER = """# Results

Pain fell by [primary.estimate]{.num} points
([primary.ci_lower]{.num} to [primary.ci_upper]{.num}) in [studies.count]{.num} trials.
High dose: [dose.high.estimate]{.num}; nausea [nausea.estimate]{.num}. [not a number]{.smallcaps}
"""


def make_tree(root: Path) -> Path:
    shutil.copytree(FIXTURE, root / "data")
    shutil.copytree(REPO / "data" / "schemas", root / "data" / "schemas")
    (root / "workflow" / "scripts").mkdir(parents=True)
    for script in ("run_analysis.py", "describe.py"):
        shutil.copy(REPO / "workflow" / "scripts" / script, root / "workflow" / "scripts" / script)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["analyses"] = {k: config["analyses"][k] for k in ("primary", "dose", "nausea")}
    (root / "config").mkdir()
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    if config.get("review_module"):  # the review's own module (its cumulative dose, ...)
        shutil.copy(REPO / config["review_module"], root / config["review_module"])
    (root / "manuscript").mkdir()
    (root / "manuscript" / "paper.qmd").write_text(PAPER, encoding="utf-8")
    return root


def build(root: Path) -> Path:
    """Compute and record results/numbers.json of the tree at ``root`` (as the workflow would)."""
    from metabuild import review
    from metabuild.analysis import dependency_digest, run_analysis
    from metabuild.data import load_dataset
    from metabuild.describe import TOPICS
    from metabuild.io import write_json
    from metabuild.provenance import job_provenance
    from metabuild.registry import build_registry
    from metabuild.workflow_support import descriptive_settings

    config = yaml.safe_load((root / "config" / "config.yaml").read_text(encoding="utf-8"))
    cwd = os.getcwd()
    os.chdir(root)
    try:
        dataset = load_dataset(Path("data"))
        sources = []
        for name, spec in config["analyses"].items():
            result = run_analysis(name, spec, dataset, config)
            out = f"results/analyses/{name}.json"
            outcome = "pain_scores.csv" if spec["outcome"] == "pain" else "binary_outcomes.csv"
            sm = _FakeSnakemake(
                "run_analysis",
                ["data/studies.csv", f"data/{outcome}"],
                [out],
                {"analysis": name},
                {"spec": spec, "digest": dependency_digest(name, spec, dataset, config)},
            )
            result["provenance"] = job_provenance(sm, data_rows=result["data_rows"], study_ids=result["study_ids"])
            write_json(out, result)
            sources.append(out)
        settings = descriptive_settings("studies", config)
        numbers, rows = TOPICS["studies"](dataset, settings)
        out = "results/descriptive/studies.json"
        sm = _FakeSnakemake(
            "describe",
            ["data/studies.csv", "data/pain_scores.csv"],
            [out],
            {"topic": "studies"},
            {"settings": settings},
        )
        write_json(out, {"topic": "studies", "numbers": numbers, "provenance": job_provenance(sm, data_rows=rows)})
        sources.append(out)
        # the review module's counts of trials by condition (studies.count_crps, ...)
        count, _cells, count_settings = review.topics(config)["trial_counts"]
        numbers, rows = count(dataset, count_settings(config))
        out = "results/descriptive/trial_counts.json"
        sm = _FakeSnakemake(
            "describe", ["data/studies.csv", "data/pain_scores.csv"], [out], {"topic": "trial_counts"}, {}
        )
        write_json(out, {"topic": "trial_counts", "numbers": numbers, "provenance": job_provenance(sm, data_rows=rows)})
        sources.append(out)
        write_json("results/numbers.json", build_registry(sources, "data/published_values.csv"))
    finally:
        os.chdir(cwd)
    return root / "results"


def set_cell(path: Path, row: int, column: str, value: str) -> str:
    """Set one cell (row numbers count the header as row 1); returns the old value."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    col = rows[0].index(column)
    old, rows[row - 1][col] = rows[row - 1][col], value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return old


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = make_tree(tmp_path_factory.mktemp("synthetic") / "project")
    build(root)
    return root


@pytest.fixture
def tree(synthetic: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic build (tests may edit it)."""
    return Path(shutil.copytree(synthetic, tmp_path / "project"))


# ------------------------------------------------------------------------------------------------
# cell-level diff


def test_cell_diff_is_keyed_by_primary_key_not_row_order():
    old = pd.DataFrame(
        {
            "study_id": ["a", "a", "b", "c"],
            "arm": ["k", "c", "k", "k"],
            "sd": ["1.0", "2.0", "3.0", "4.0"],
            "note": ["", "", "", "x"],
        }
    )
    # rows reordered, one cell changed, row c removed, row d added
    new = pd.DataFrame(
        {
            "study_id": ["b", "a", "a", "d"],
            "arm": ["k", "c", "k", "k"],
            "sd": ["3.0", "2.5", "1.0", "9.0"],
            "note": ["", "", "", ""],
        }
    )
    d = audit_diff.cell_diff(old, new, ["study_id", "arm"], "pain_scores.csv")
    assert d["cells"] == [
        {
            "file": "pain_scores.csv",
            "key": {"study_id": "a", "arm": "c"},
            "column": "sd",
            "old": "2.0",
            "new": "2.5",
            "old_row": 3,
            "new_row": 3,
        }
    ]
    assert [r["key"] for r in d["removed"]] == [{"study_id": "c", "arm": "k"}]
    assert [(r["key"], r["new_row"]) for r in d["added"]] == [({"study_id": "d", "arm": "k"}, 5)]
    assert d["columns_added"] == d["columns_removed"] == []


def test_cell_diff_reports_column_changes_and_duplicate_keys():
    old = pd.DataFrame({"k": ["a", "a"], "x": ["1", "2"]})
    new = pd.DataFrame({"k": ["a"], "y": ["1"]})
    d = audit_diff.cell_diff(old, new, ["k"])
    assert d["columns_added"] == ["y"] and d["columns_removed"] == ["x"]
    assert d["duplicate_keys"] == [{"k": "a"}]


def test_data_diff_uses_schema_primary_keys(tree: Path, tmp_path: Path):
    other = Path(shutil.copytree(tree / "data", tmp_path / "other"))
    set_cell(other / "pain_scores.csv", 4, "sd", "2.5")
    set_cell(other / "study_flow.csv", 3, "count", "801")
    d = audit_diff.data_diff(tree / "data", other)
    assert set(d) == {"pain_scores.csv", "study_flow.csv"}
    (cell,) = d["pain_scores.csv"]["cells"]
    assert cell["key"] == {"study_id": "alpha2010", "arm": "ketamine", "timepoint": "week 4"}
    assert (cell["column"], cell["old"], cell["new"]) == ("sd", "2.0", "2.5")
    assert d["study_flow.csv"]["cells"][0]["key"] == {"stage": "screened"}


# ------------------------------------------------------------------------------------------------
# explain


def test_explain_shows_hashes_rows_and_published(tree: Path):
    project = Project.open(tree / "results")
    info = explain(project, "primary.estimate")
    prov = project.numbers["primary.estimate"]["provenance"]
    text = format_text(info)
    assert prov["script"]["git_blob"] in text and "[ok]" in text
    for item in prov["inputs"]:
        assert item["sha256"] in text
    assert all(i["status"] == "ok" for i in info["inputs"])
    assert "published:      -0.88  at abstract" in text
    assert "manuscript/paper.qmd:3" in text
    assert "row 4: study_id=alpha2010, arm=ketamine, timepoint=week 4" in text
    assert "digest" in text and "spec.measure" in text and "built at" in text and "numpy" in text


def test_explain_flags_changed_files(tree: Path):
    set_cell(tree / "data" / "pain_scores.csv", 4, "sd", "2.5")
    (tree / "workflow" / "scripts" / "run_analysis.py").write_text("# edited\n", encoding="utf-8")
    info = explain(Project.open(tree / "results"), "primary.estimate")
    status = {i["path"]: i["status"] for i in info["inputs"]}
    assert status == {"data/pain_scores.csv": "CHANGED", "data/studies.csv": "ok"}
    assert info["script"]["status"] == "CHANGED"
    text = format_text(info)
    assert "CHANGED" in text and "file CHANGED since the build" in text
    assert "sd=2.5" in text  # rows are read from the current file
    (tree / "data" / "pain_scores.csv").unlink()
    assert "missing" in {i["status"] for i in explain(Project.open(tree / "results"), "primary.estimate")["inputs"]}


def test_explain_unknown_key_lists_close_matches(tree: Path):
    with pytest.raises(AuditError, match=r"primary\.estimate"):
        explain(Project.open(tree / "results"), "primary.estimat")


def test_cli_explain_json_and_error_exit(tree: Path, capsys):
    assert main(["explain", "primary.estimate", "--results", str(tree / "results"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "−1.31"
    assert main(["explain", "nope", "--results", str(tree / "results")]) == 2
    assert "unknown registry key" in capsys.readouterr().err


def test_manuscript_uses_finds_num_spans_only(tree: Path):
    uses = manuscript_uses(tree)
    assert uses["primary.estimate"] == ["manuscript/paper.qmd:3"]
    assert uses["primary.ci_upper"] == ["manuscript/paper.qmd:4"]
    assert "not a number" not in uses


# ------------------------------------------------------------------------------------------------
# impact


def _keys(info):
    return {n["key"] for n in info["numbers"]}


def test_impact_of_a_pain_cell_is_exact(tree: Path):
    project = Project.open(tree / "results")
    info = impact(project, cell="pain_scores.csv:4:sd")  # alpha2010 ketamine, primary time point
    keys = _keys(info)
    numbers = project.numbers
    assert {k for k in numbers if k.startswith("primary.")} <= keys
    assert {k for k in numbers if k.startswith("dose.high.")} <= keys
    # beta2015 is the only low-dose trial: its subgroup does not read alpha2010's cells
    assert not {k for k in keys if k.startswith(("dose.low.", "nausea.", "studies."))}
    by_key = impact(project, cell="data/pain_scores.csv:study_id=alpha2010,arm=ketamine,timepoint=week 4:sd")
    assert _keys(by_key) == keys
    assert by_key["target"]["row"] == 4
    used = {n["key"]: n["manuscript"] for n in info["numbers"]}
    assert used["primary.estimate"] == ["manuscript/paper.qmd:3"]


def test_impact_of_cells_no_number_reads(tree: Path):
    project = Project.open(tree / "results")
    assert _keys(impact(project, cell="pain_scores.csv:2:sd")) == set()  # week 1: not the primary time point
    # studies.count reads rows, not the SD column
    assert "studies.count" not in _keys(impact(project, cell="pain_scores.csv:4:sd"))
    assert "studies.count_crps" in _keys(impact(project, cell="studies.csv:2:crps"))


def test_impact_of_a_moderator_cell_reaches_every_subgroup(tree: Path):
    keys = _keys(impact(Project.open(tree / "results"), cell="studies.csv:2:hours_total"))
    assert any(k.startswith("dose.low.") for k in keys) and any(k.startswith("dose.high.") for k in keys)
    assert not any(k.startswith(("primary.", "nausea.")) for k in keys)


def test_impact_of_a_study(tree: Path):
    keys = _keys(impact(Project.open(tree / "results"), study="beta2015"))
    assert {"primary.estimate", "nausea.estimate", "dose.low.estimate", "studies.count"} <= keys
    assert not any(k.startswith("dose.high.") for k in keys)


def test_impact_rejects_bad_cells(tree: Path):
    project = Project.open(tree / "results")
    with pytest.raises(AuditError, match="no column"):
        impact(project, cell="pain_scores.csv:4:sdd")
    with pytest.raises(AuditError, match="rows 2 to"):
        impact(project, cell="pain_scores.csv:99:sd")
    with pytest.raises(AuditError, match="0 rows match"):
        impact(project, cell="pain_scores.csv:study_id=zeta:sd")


# ------------------------------------------------------------------------------------------------
# diff and attribution


def test_diff_attributes_each_number_to_the_cell_it_read(tree: Path, tmp_path: Path):
    new = Path(shutil.copytree(tree, tmp_path / "new"))
    set_cell(new / "data" / "pain_scores.csv", 4, "sd", "2.5")  # read by primary and dose (high)
    set_cell(new / "data" / "studies.csv", 3, "label", "Beta 2016")  # read (digest) but changes no value
    set_cell(new / "data" / "binary_outcomes.csv", 2, "events", "13")  # responders: not an analysis here
    build(new)
    report = audit_diff.compare(Project.open(tree / "results"), Project.open(new / "results"))
    everything = {n["key"]: n for n in report["numbers"]}
    # a trial's label is printed in the registry's trial lists (their text is the labels): the
    # label edit changes those entries, and only those, and is among their causes (a job that also
    # read the edited SD lists both: the diff cannot tell which cell moved a text)
    label_cause = "studies.csv [study_id=beta2015] label: Beta 2015 → Beta 2016"
    lists = {k for k in everything if k.startswith(("trial.", "sets.")) or k.endswith(".studies")}
    assert "dose.low.studies" in lists and "primary.studies" in lists
    assert all(label_cause in everything[k]["causes"] for k in lists), {k: everything[k]["causes"] for k in lists}
    listed = {k: n for k, n in everything.items() if k not in lists}
    assert "primary.estimate" in listed and "dose.high.se" in listed
    assert "dose.high.estimate" not in listed  # one trial: its SD moves the SE, not the estimate
    assert not any(k.startswith(("nausea.", "studies.", "dose.low.")) for k in listed)
    cause = "pain_scores.csv [study_id=alpha2010, arm=ketamine, timepoint=week 4] sd: 2.0 → 2.5"
    for n in listed.values():
        assert n["causes"] == [cause], n
    assert listed["primary.estimate"]["manuscript"] == ["manuscript/paper.qmd:3"]
    assert listed["primary.estimate"]["old"] == "−1.31" and listed["primary.estimate"]["new"] == "−1.33"
    markdown = audit_diff.to_markdown(report)
    assert "| `primary.estimate` | −1.31 | −1.33 | manuscript/paper.qmd:3 | " + cause + " |" in markdown
    assert "Beta 2015" in markdown  # the label change is still listed upstream
    assert "<td>" + cause.replace(">", "&gt;") in audit_diff.to_html(report)


def test_diff_attributes_configuration_entries(tree: Path, tmp_path: Path):
    new = Path(shutil.copytree(tree, tmp_path / "new"))
    path = new / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["derived_attributes"]["dose_class"]["value"] = 100000  # every trial becomes low dose
    config["level_labels"]["high"] = "High"  # read by nothing that prints a number
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    build(new)
    report = audit_diff.compare(Project.open(tree / "results"), Project.open(new / "results"))
    listed = {n["key"]: n for n in report["numbers"]}
    assert "dose.high.estimate" in listed and listed["dose.high.estimate"]["new"] is None
    assert "dose.low.estimate" in listed
    assert not any(k.startswith(("primary.", "nausea.", "studies.")) for k in listed)
    for n in listed.values():
        assert n["causes"] == ["config derived_attributes.dose_class.value: 400 → 100000"], n
    assert {c["path"] for c in report["config"]} == {
        "derived_attributes.dose_class.value",
        "level_labels.high",
    }


def test_code_causes_follow_script_and_library_hashes(tree: Path):
    old = Project.open(tree / "results")
    numbers = json.loads(json.dumps(old.numbers))
    for entry in numbers.values():
        prov = entry["provenance"]
        if prov["job"] == "run_analysis[analysis=primary]":
            prov["script"]["git_blob"] = "0" * 40
            prov["inputs"].append({"path": "workflow/lib/metabuild/stats/pooling.py", "sha256": "1" * 64})
    causes = audit_diff.code_causes(
        "primary.estimate", Dependence(old.numbers, old.config, None), Dependence(numbers, old.config, None)
    )
    assert causes[0].startswith("code workflow/scripts/run_analysis.py (blob ")
    assert causes[1] == "code workflow/lib/metabuild/stats/pooling.py (added)"
    assert (
        audit_diff.code_causes(
            "nausea.estimate",
            Dependence(old.numbers, old.config, None),
            Dependence(numbers, old.config, None),
        )
        == []
    )


def test_cli_diff_writes_markdown_and_html(tree: Path, tmp_path: Path, capsys):
    new = Path(shutil.copytree(tree, tmp_path / "new"))
    set_cell(new / "data" / "pain_scores.csv", 6, "mean", "3.0")
    build(new)
    out = tmp_path / "out"
    assert main(["diff", str(tree / "results"), str(new), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == (out / "diff.md").read_text(encoding="utf-8")
    assert "pain_scores.csv [study_id=beta2015, arm=ketamine, timepoint=day 1] mean: 3.5 → 3.0" in printed
    assert (out / "diff.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert json.loads((out / "diff.json").read_text(encoding="utf-8"))["numbers"]


def test_content_hash_ignores_build_time(tmp_path: Path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"x": 1, "provenance": {"built_at": "2020", "rule": "r"}}))
    b.write_text(json.dumps({"provenance": {"rule": "r", "built_at": "2021"}, "x": 1}))
    assert content_sha256(a) == content_sha256(b)
    b.write_text(json.dumps({"provenance": {"rule": "r", "built_at": "2021"}, "x": 2}))
    assert content_sha256(a) != content_sha256(b)


# ------------------------------------------------------------------------------------------------
# integration: the whole workflow (slow)


def _snakemake(root: Path, *targets: str) -> None:
    result = audit_diff.run_snakemake(root, list(targets), cores="2", log=root / ".test-build.log")
    assert result.returncode == 0, (root / ".test-build.log").read_text(encoding="utf-8")[-5000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One full build of a copy of the project (git-tracked files plus data), shared by the tests."""
    root = tmp_path_factory.mktemp("integration") / "base"
    root.mkdir()
    # METABUILD_AUDIT_SOURCE: build another project tree instead of this repository
    copy_project(Path(os.environ.get("METABUILD_AUDIT_SOURCE", REPO)), root)
    _snakemake(root)
    return root


def _variant(built: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(built, tmp_path / name, symlinks=True))


@pytest.mark.slow
def test_one_cell_change_lists_exactly_its_dependent_numbers(built: Path, tmp_path: Path):
    base = Project.open(built / "results")
    primary = json.loads((built / "results" / "analyses" / "primary.json").read_text(encoding="utf-8"))
    row = primary["provenance"]["data_rows"]["pain_scores.csv"][0]
    pain = pd.read_csv(built / "data" / "pain_scores.csv", dtype=str, keep_default_na=False)
    record = pain.iloc[row - 2]
    old_sd = record["sd"]
    # a modest edit: one that changes numbers but falsifies none of the paper's checked claims
    # (doubling the SD made I2 0.0%, and the build rightly stopped at "moderate heterogeneity")
    new_sd = f"{float(old_sd) * 1.3:.2f}"
    predicted = _keys(impact(base, cell=f"pain_scores.csv:{row}:sd"))

    variant = _variant(built, tmp_path, "cell")
    set_cell(variant / "data" / "pain_scores.csv", row, "sd", new_sd)
    _snakemake(variant)
    report = audit_diff.compare(base, Project.open(variant / "results"))

    listed = {n["key"]: n for n in report["numbers"]}
    assert "primary.estimate" in listed
    cause = (
        f"pain_scores.csv [study_id={record['study_id']}, arm={record['arm']}, "
        f"timepoint={record['timepoint']}] sd: {old_sd} → {new_sd}"
    )
    for n in listed.values():
        assert n["causes"] == [cause], n
    assert set(listed) <= predicted  # impact, before the rebuild, foresaw every change
    for key in listed:
        assert not key.startswith(("flow.", "studies.", "responders.", "nausea.", "regimen.", "protocol."))
    # every number whose printed text changed is listed, and nothing else
    new = Project.open(variant / "results").numbers
    assert set(listed) == {k for k in base.numbers if base.numbers[k]["text"] != new.get(k, {}).get("text")}
    assert [c["column"] for d in report["data"].values() for c in d["cells"]] == ["sd"]
    assert any(o["path"] == "figures/forest_primary.svg" for o in report["outputs"])


@pytest.mark.slow
def test_figure_script_change_lists_the_figure_and_no_number(built: Path, tmp_path: Path):
    variant = _variant(built, tmp_path, "figure")
    script = variant / "workflow" / "scripts" / "forest_plot.py"
    script.write_text(script.read_text(encoding="utf-8") + "# a comment\n", encoding="utf-8")
    _snakemake(variant)
    report = audit_diff.compare(Project.open(built / "results"), Project.open(variant / "results"))
    assert report["numbers"] == []
    assert {"path": "workflow/scripts/forest_plot.py", "change": "changed"} in report["sources"]
    figures = {o["path"]: o for o in report["outputs"] if o["path"].startswith("figures/forest_")}
    assert "figures/forest_primary.svg" in figures
    assert figures["figures/forest_primary.svg"]["code"] == ["workflow/scripts/forest_plot.py"]
    assert not any(o["path"].startswith("figures/flow") for o in report["outputs"])


@pytest.mark.slow
def test_replay_reproduces_the_primary_estimate(built: Path):
    record = replay(Project.open(built / "results"), "primary.estimate")
    assert record["agree"], record
    assert record["replayed_value"] == record["recorded_value"]
    assert all(i["equal"] for i in record["inputs"])


@pytest.mark.slow
def test_diff_of_two_git_revisions(built: Path, tmp_path: Path, monkeypatch, capsys):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(built, repo)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "before")
    old_sd = set_cell(repo / "data" / "study_flow.csv", 2, "count", "999999")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "after")
    workdir = tmp_path / "builds"
    # the old revision is the shared build: seed it so only the new revision is built
    seeded = workdir / git("rev-parse", "HEAD~1").strip()[:12]
    shutil.copytree(built, seeded, symlinks=True)
    (seeded / ".metabuild-built").write_text("seeded\n")
    monkeypatch.chdir(repo)
    assert main(["diff", "HEAD~1", "HEAD", "--workdir", str(workdir), "--out", str(tmp_path / "out")]) == 0
    markdown = capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "diff.json").read_text(encoding="utf-8"))
    assert report["numbers"], markdown
    assert all(n["key"].startswith("flow.") for n in report["numbers"])
    assert "study_flow.csv [stage=" in markdown and f"count: {old_sd} → 999999" in markdown
