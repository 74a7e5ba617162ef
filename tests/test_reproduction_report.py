"""The reproduction report tells "the study set differs from the published article" apart from
"reconstructed inputs" and "unexplained", and the sensitivity analysis takes a trial its refit
does not know as extracted.

Unit tests on a small synthetic project, then builds of two copies of the project: one with
a fictional eighth trial added to the data files, one with a trial removed. Which trials the
article had is data (the Table 1 rows of data/published_values.csv), so these tests hold
whatever trials the data hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import copy_project
from trial_edits import add_fictional_trial, remove_trial

from metabuild import report
from metabuild.compare import comparison

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# ------------------------------------------------------------------------------------------------
# unit: classification on a synthetic project


def _published(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """published_values.csv rows (key, printed) at one location, as the report reads them (text)."""
    frame = pd.DataFrame(
        [
            {"key": k, "printed": p, "value": p, "kind": "count", "decimals": "2", "location": "Results", "note": ""}
            for k, p in rows
        ]
    )
    return frame.astype(str)


def _entry(value: float, published: pd.DataFrame, key: str, data_rows=None, inputs=(), output="") -> dict:
    row = published[published["key"] == key].iloc[0].to_dict()
    return {
        "value": value,
        "text": f"{value:.2f}",
        "kind": "estimate",
        "output": output,
        "published": [comparison(value, row)],
        "provenance": {"data_rows": data_rows or {}, "inputs": [{"path": p} for p in inputs]},
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A data directory with trials a, b (the article's) and c (added); b's rows reconstructed."""
    (tmp_path / "studies.csv").write_text(
        "study_id,label,source\na,Alpha 2001,Table 1\nb,Beta 2002,Table 1\nc,Gamma 2020,trial report\n",
        encoding="utf-8",
    )
    (tmp_path / "pain_scores.csv").write_text(
        "study_id,arm,sd,source\n"
        "a,ketamine,1,Figure 3\n"  # row 2
        "b,ketamine,1,reconstructed (a fit)\n"  # row 3
        "c,ketamine,1,trial report\n",  # row 4
        encoding="utf-8",
    )
    return tmp_path


PUBLISHED = _published(
    [
        ("table1.a.n_total", "40"),
        ("table1.b.n_total", "30"),
        ("studies.count", "2"),
        ("with_c.estimate", "1.00"),
        ("only_b.estimate", "2.00"),
        ("only_a.estimate", "3.00"),
        ("downstream.estimate", "4.00"),
        ("same.estimate", "5.00"),
    ]
)


def _registry() -> dict:
    p = PUBLISHED
    return {
        "numbers": {
            "with_c.estimate": _entry(1.5, p, "with_c.estimate", {"pain_scores.csv": [2, 4]}, output="r/with_c.json"),
            "only_b.estimate": _entry(2.5, p, "only_b.estimate", {"pain_scores.csv": [3]}),
            "only_a.estimate": _entry(3.5, p, "only_a.estimate", {"pain_scores.csv": [2]}),
            # computed from another job's result (as Table 2 reads the analyses): its trials count
            "downstream.estimate": _entry(4.5, p, "downstream.estimate", {"grade.csv": [2]}, ["r/with_c.json"]),
            "same.estimate": _entry(5.0, p, "same.estimate", {"pain_scores.csv": [2, 4]}),
        }
    }


def test_published_trials_are_the_table1_rows_and_must_agree_with_the_count():
    assert report.published_trials(PUBLISHED) == ["a", "b"]
    assert report.published_trials(_published([("primary.estimate", "1.00")])) is None
    wrong = PUBLISHED.copy()
    wrong.loc[wrong["key"] == "studies.count", "value"] = "3"
    with pytest.raises(
        ValueError, match=r"data/published_values.csv: .* name 2 trials \(a, b\) but studies.count is 3"
    ):
        report.published_trials(wrong)


def test_a_trial_added_to_the_data_is_named_as_the_reason(project: Path):
    result = report.reproduction_report(_registry(), PUBLISHED, project)
    status = {r["key"]: r for r in result.data["rows"]}
    assert status["with_c.estimate"]["status"] == "study set differs"
    assert "computed with c, which the published article did not include" in status["with_c.estimate"]["reason"]
    assert status["downstream.estimate"]["status"] == "study set differs"
    assert status["only_b.estimate"]["status"] == "reconstructed inputs"
    assert status["only_a.estimate"]["status"] == "unexplained"
    assert status["same.estimate"]["status"] == "match"  # a match stays a match, whatever its trials
    assert result.data["study_set"]["added"] == ["c"] and result.data["study_set"]["removed"] == []
    assert result.data["summary"]["study set differs"] == 2
    assert "Added since: Gamma 2020 (`c`)." in result.markdown
    assert "2 differ because the set of trials differs" in result.appendix


def test_a_trial_removed_from_the_data_is_named_as_the_reason(project: Path):
    for name in ("studies.csv", "pain_scores.csv"):
        path = project / name
        path.write_text("".join(line for line in path.read_text().splitlines(True) if not line.startswith("b,")))
    registry = _registry()
    for key in ("only_b.estimate", "downstream.estimate"):
        del registry["numbers"][key]
    registry["numbers"]["with_c.estimate"]["provenance"]["data_rows"] = {"pain_scores.csv": [2]}  # a only
    result = report.reproduction_report(registry, PUBLISHED, project)
    status = {r["key"]: r for r in result.data["rows"]}
    assert result.data["study_set"]["removed"] == ["b"] and result.data["study_set"]["added"] == ["c"]
    assert status["with_c.estimate"]["status"] == "study set differs"
    assert "computed without b, which the published article included" in status["with_c.estimate"]["reason"]
    assert "No longer in the data: `b`." in result.markdown


def test_the_published_trials_in_the_data_change_nothing(project: Path):
    """With exactly the article's trials, no number is put down to the study set."""
    for name in ("studies.csv", "pain_scores.csv"):
        path = project / name
        path.write_text("".join(line for line in path.read_text().splitlines(True) if not line.startswith("c,")))
    registry = _registry()
    registry["numbers"]["with_c.estimate"]["provenance"]["data_rows"] = {"pain_scores.csv": [2]}
    result = report.reproduction_report(registry, PUBLISHED, project)
    assert result.data["summary"]["study set differs"] == 0
    assert {r["key"]: r["status"] for r in result.data["rows"]}["with_c.estimate"] == "unexplained"
    assert "Added since" not in result.markdown and "set of trials" not in result.appendix


def test_sensitivity_rows_take_the_refit_only_where_it_has_a_reconstructed_row():
    from metabuild.sensitivity import alternative_pain_scores

    data = pd.DataFrame(
        {
            "study_id": ["a", "a", "new", "new", "ext", "ext"],
            "arm": ["ketamine", "control"] * 3,
            "timepoint": ["1 wk"] * 6,
            "n": [10, 10, 12, 12, 8, 8],
            "mean": [3.0, 6.0, 2.0, 6.0, 4.0, 6.0],
            "sd": [0.5, 0.5, 0.7, 0.7, 2.0, 2.0],
            "source": ["reconstructed (fit)"] * 2 + ["trial report"] * 2 + ["trial report"] * 2,
            "_row": range(2, 8),
        }
    )
    refit = pd.DataFrame(
        {
            "study_id": ["a", "a", "ext", "ext", "gone", "gone"],
            "arm": ["ketamine", "control"] * 3,
            "timepoint": ["1 wk"] * 6,
            "n": [10, 10, 8, 8, 5, 5],
            "mean": [3.5, 6.0, 9.0, 9.0, 1.0, 1.0],
            "sd": [1.2, 1.3, 1.0, 1.0, 1.0, 1.0],
        }
    )
    rows, trials = alternative_pain_scores(data, refit)
    assert rows["sd"].tolist() == [1.2, 1.3, 0.7, 0.7, 2.0, 2.0]
    assert rows["mean"].tolist() == [3.5, 6.0, 2.0, 6.0, 4.0, 6.0]  # "ext" was extracted: kept
    assert rows["_row"].tolist() == list(range(2, 8))
    assert trials == {"replaced": ["a"], "as_extracted": ["ext", "new"], "unused": ["gone"], "min_sd_replaced": 1.2}


# ------------------------------------------------------------------------------------------------
# builds of project copies with a trial added and with a trial removed

TARGETS = ["results/reports/reproduction.json"]


def _build(project: Path) -> dict:
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", *TARGETS], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((project / "results" / "reports" / "reproduction.json").read_text())


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[Path, dict]:
    project = copy_project(tmp_path_factory.mktemp("baseline") / "project")
    return project, _build(project)


@pytest.fixture(scope="module")
def with_new_trial(tmp_path_factory) -> tuple[Path, dict]:
    project = copy_project(tmp_path_factory.mktemp("added") / "project")
    add_fictional_trial(project / "data", "zeta2021", "Zeta 2021")
    return project, _build(project)


def _changed(before: dict, after: dict) -> list[tuple[dict, dict]]:
    old = {(r["key"], r["location"]): r for r in before["rows"]}
    return [(old[(r["key"], r["location"])], r) for r in after["rows"] if old[(r["key"], r["location"])] != r]


@pytest.mark.slow
def test_a_new_trial_moves_values_to_study_set_differs_not_unexplained(baseline, with_new_trial):
    _, before = baseline
    _, after = with_new_trial
    assert after["study_set"]["added"] == ["zeta2021"] and after["study_set"]["removed"] == []
    changed = [(old, new) for old, new in _changed(before, after) if old["status"] != new["status"]]
    assert changed, "adding a trial with different pain scores must change some published comparisons"
    for old, new in changed:
        if new["status"] == "match":  # the new data happen to give the printed value: nothing to explain
            continue
        # every comparison the new trial changed says so: none is blamed on the reconstruction or
        # left unexplained
        assert new["status"] in {"study set differs", "inconsistent in paper"}, (old, new)
        assert "computed with zeta2021, which the published article did not include" in new["reason"], new
    assert after["summary"]["study set differs"] >= 1
    assert after["summary"]["unexplained"] <= before["summary"]["unexplained"]
    assert after["summary"]["reconstructed inputs"] <= before["summary"]["reconstructed inputs"]


@pytest.mark.slow
def test_sensitivity_includes_the_new_trial_as_extracted(with_new_trial):
    """The every-SD->=1 rerun pools the new trial from its data rows (before the fix it read
    only the refit's file, which lacks the trial, and so pooled the old trials alone)."""
    from metabuild.data import load_dataset
    from metabuild.stats.effects import mean_difference
    from metabuild.stats.pooling import dersimonian_laird

    project, after = with_new_trial
    sensitivity = json.loads((project / "results" / "reports" / "sensitivity_plausible.json").read_text())
    assert sensitivity["trials"]["as_extracted"] == [{"study_id": "zeta2021", "label": "Zeta 2021"}]
    assert "zeta2021" not in [t["study_id"] for t in sensitivity["trials"]["replaced"]]
    markdown = (project / "results" / "reports" / "reproduction.md").read_text()
    assert "Trials the refit does not cover enter as extracted, with their data rows unchanged: Zeta 2021" in markdown

    # the primary analysis on (refit rows of the refitted trials + the new trial's data rows),
    # pooled here directly
    data = load_dataset(project / "data").pain_scores
    refit = pd.read_csv(project / "data" / "curation" / "output" / "plausible_fit.csv", dtype={"timepoint": str})
    primary = data[data["primary"].astype(bool)]
    refit = refit.merge(primary[["study_id", "arm", "timepoint"]], on=["study_id", "arm", "timepoint"])
    rows = pd.concat([refit, primary[primary["study_id"] == "zeta2021"]])
    k = rows[rows["arm"] == "ketamine"].set_index("study_id").sort_index()
    c = rows[rows["arm"] == "control"].set_index("study_id").loc[k.index]
    assert "zeta2021" in k.index and len(k) == len(set(primary["study_id"]))
    es = mean_difference(k["mean"], k["sd"], k["n"], c["mean"], c["sd"], c["n"])
    expected = dersimonian_laird(np.asarray(es.yi), np.asarray(es.vi))
    primary_row = next(r for r in sensitivity["rows"] if r["key"] == "primary")
    assert primary_row["plausible"]["estimate"] == pytest.approx(expected.estimate, abs=1e-9)
    assert primary_row["plausible"]["i2"] == pytest.approx(expected.i2, abs=1e-9)


@pytest.mark.slow
def test_a_removed_trial_is_named_in_the_report(baseline, tmp_path):
    base_project, before = baseline
    primary = json.loads((base_project / "results" / "analyses" / "primary.json").read_text())
    gone = primary["study_ids"][-1]  # a trial of the primary analysis, whichever the data hold
    project = copy_project(tmp_path / "project")
    remove_trial(project / "data", gone)
    after = _build(project)
    assert after["study_set"]["removed"] == [gone] and after["study_set"]["added"] == []
    changed = [(old, new) for old, new in _changed(before, after) if old["status"] != new["status"]]
    assert changed
    for old, new in changed:
        assert new["status"] in {"study set differs", "inconsistent in paper", "match"}, (old, new)
        if new["status"] != "match":
            assert f"computed without {gone}, which the published article included" in new["reason"], new


def test_a_table1_duration_in_minutes_counts_among_the_hours():
    """Table 1 prints Noppers' infusion as '30 min': the check of the printed median duration
    must count it as 0.5 h, or it reports the median of the other rows (29.5 h in the paper,
    where the build's seven trials give 24 h)."""
    published = pd.DataFrame(
        [
            {"key": "table1.a.hours_total", "printed": "35", "location": "Table 1"},
            {"key": "table1.b.hours_total", "printed": "1", "location": "Table 1"},
            {"key": "table1.c.minutes", "printed": "30", "location": "Table 1"},
            {"key": "regimen.hours_median", "printed": "5", "location": "Results"},
        ]
    )
    findings = report._table_findings(published, {})
    assert findings[("regimen.hours_median", "Results")] == ["the median of Table 1's hours_total values is 1, not 5"]
