"""A reviewer adds a trial: it reaches every count, trial list, citation, table, footnote, figure
and the flow diagram by itself, and a sentence the new data falsify stops the build.

The fictional trial (zeta2021) is added to a copy of the project exactly as data/README.md
("Adding a trial") tells a review author to: every data file, the flow counts, references.bib.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project

pytestmark = pytest.mark.slow

TRIAL = "zeta2021"
EPOCH = "1700000000"


def _append_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in header})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(out.getvalue())


def _set_cells(path: Path, match: dict[str, str], values: dict[str, str]) -> None:
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    hits = 0
    for row in rows:
        if all(row[k] == v for k, v in match.items()):
            row.update(values)
            hits += 1
    assert hits, (path, match)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


SOURCE = "fictional trial for tests/test_living_review.py"


def add_fictional_trial(project: Path) -> None:
    """Add zeta2021 to every data file, the flow and the bibliography (data/README.md's steps)."""
    data = project / "data"
    _append_rows(
        data / "studies.csv",
        [
            {
                "study_id": TRIAL,
                "label": "Zeta 2021",
                "first_author": "Zeta",
                "year": "2021",
                "ref_number": "99",
                "citation_key": TRIAL,
                "design": "parallel",
                "setting": "outpatient",
                "population": "50 adults with painful diabetic neuropathy",
                "diagnosis": "Painful diabetic neuropathy",
                "pain_type": "neuropathic",
                "crps": "false",
                "adjunct_analgesic": "false",
                "cointervention": "None",
                "treatment_description": "Ketamine infusion",
                "control_description": "Normal saline",
                "n_ketamine": "25",
                "n_control": "25",
                "ketamine_form": "racemic",
                "rate_unit": "mg/kg/h",
                "rate_mean": "0.5",
                "rate_max": "0.5",
                "hours_total": "20",
                "days": "5",
                "regimen_text": "4 h daily for 5 days; 0.5 mg/kg/h",
                "condition": "diabetic neuropathy",
                "responder_threshold_percent": "30",
                "blinding_tested": "false",
                "female_percent": "45",
                "age_years": "61",
                "age_statistic": "mean",
                "demographics_source": SOURCE,
                "source": SOURCE,
            }
        ],
    )
    pain = []
    for arm, mean in (("ketamine", "4.60"), ("control", "6.00")):
        pain.append(
            {"study_id": TRIAL, "arm": arm, "timepoint": "2 wk", "weeks": "2", "primary": "true",
             "window_weeks": "2", "n": "25", "mean": mean, "sd": "2.00", "scale_original": "NRS 0-10",
             "source": SOURCE}
        )  # fmt: skip
    for arm in ("ketamine", "control"):
        pain.append(
            {"study_id": TRIAL, "arm": arm, "timepoint": "4 wk", "weeks": "4", "primary": "false",
             "window_weeks": "4", "n": "25", "mean": "5.80" if arm == "ketamine" else "6.00", "sd": "2.00",
             "scale_original": "NRS 0-10", "source": SOURCE}
        )  # fmt: skip
    _append_rows(data / "pain_scores.csv", pain)
    binary = [
        ("responder", "ketamine", 10), ("responder", "control", 4),
        ("nausea", "ketamine", 6), ("nausea", "control", 2),
    ]  # fmt: skip
    _append_rows(
        data / "binary_outcomes.csv",
        [
            {"study_id": TRIAL, "outcome": o, "arm": a, "events": str(e), "n": "25", "definition": "as reported",
             "source": SOURCE}
            for o, a, e in binary
        ],
    )  # fmt: skip
    domains = {
        "random_sequence": "low",
        "allocation_concealment": "low",
        "blinding_participants": "low",
        "blinding_outcome": "high",
        "incomplete_outcome": "low",
        "selective_reporting": "low",
        "other_bias": "low",
        "overall": "high",
    }
    _append_rows(
        data / "risk_of_bias.csv",
        [{"study_id": TRIAL, "domain": d, "judgement": j, "source": SOURCE} for d, j in domains.items()],
    )
    # one more record identified, screened, assessed in full and included
    flow = {r["stage"]: int(r["count"]) for r in csv.DictReader(open(data / "study_flow.csv", encoding="utf-8"))}
    for stage in ("records_identified", "records_screened"):
        _set_cells(data / "study_flow.csv", {"stage": stage}, {"count": str(flow[stage] + 1)})
    bib = project / "manuscript" / "references.bib"
    bib.write_text(
        bib.read_text(encoding="utf-8") + "\n@article{zeta2021,\n  author = {Zeta, Anna and Eta, Bo},\n"
        "  title = {A fictional randomized trial of ketamine infusions in painful diabetic neuropathy},\n"
        "  journal = {Journal of Test Fixtures},\n  year = {2021},\n  volume = {1},\n  pages = {1--10}\n}\n",
        encoding="utf-8",
    )


def snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def with_new_trial(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("living") / "project")
    add_fictional_trial(project)
    proc = snakemake(project)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return project


def _numbers(project: Path) -> dict:
    return json.loads((project / "results" / "numbers.json").read_text(encoding="utf-8"))["numbers"]


def _pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def test_counts_and_trial_lists_take_the_new_trial(with_new_trial):
    n = _numbers(with_new_trial)
    assert n["studies.count"]["value"] == 8
    assert n["flow.included"]["value"] == 8
    for key in (
        "sets.all", "primary.studies", "dose.high.studies", "pain_type.neuropathic_mixed.studies",
        "crps.non_crps.studies", "adjunct.without.studies", "week2.studies", "week4.studies",
        "responders.studies", "nausea.studies", "sets.neuropathic", "sets.responder_threshold_low",
        "sets.detection_bias_high", "sets.high_risk_of_bias",
    ):  # fmt: skip
        assert TRIAL in n[key]["value"], key
    for key in ("week8.studies", "week12.studies", "dose.low.studies", "sets.blinding_tested", "sets.crossover"):
        assert TRIAL not in n[key]["value"], key
    assert n["sets.detection_bias_high.count"]["value"] == 3
    assert n["responders.n_total"]["value"] == 64 + 50


def test_the_paper_says_so_in_every_passage(with_new_trial):
    text = _pdf_text(with_new_trial / "results" / "manuscript" / "paper.pdf")
    for passage in (
        "Of 697 records, 8 trials with 268 patients were included",
        "The remaining 8 randomized trials",
        "in 3 trials: spinal cord injury",
        "and diabetic neuropathy",
        "Detection bias was high in three trials",
        "two used a reduction of at least 30%",
        "This review of 8 randomized trials",
    ):
        assert passage in text, passage
    # the new trial is cited (its reference is listed) and its condition named in the three
    # passages that list conditions (participants, type of pain, discussion)
    assert "A fictional randomized trial of ketamine infusions" in text
    assert text.count("diabetic neuropathy") >= 3


def test_tables_footnotes_and_figures_take_the_new_trial(with_new_trial):
    results = with_new_trial / "results"
    assert "Zeta 2021" in (results / "tables" / "table1.md").read_text(encoding="utf-8")
    with open(results / "tables" / "table2_grade.csv", encoding="utf-8") as handle:
        grade = list(csv.DictReader(handle))  # rows in config order: primary, responders, week2, nausea
    assert [row["Studies"] for row in grade] == ["7", "4", "4", "4"]  # each + zeta2021
    html = (results / "manuscript" / "paper.html").read_text(encoding="utf-8")
    plain = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "only 114 patients with" in plain  # GRADE footnote e, from the registry
    for stem in ("forest_primary", "forest_dose", "forest_week2", "forest_week4", "forest_responders", "forest_nausea"):
        assert "Zeta 2021" in (results / "figures" / f"{stem}.svg").read_text(encoding="utf-8"), stem
    for stem in ("forest_week8", "forest_week12"):
        assert "Zeta 2021" not in (results / "figures" / f"{stem}.svg").read_text(encoding="utf-8"), stem
    # the SVG draws text as paths, each line of text preceded by a comment holding it
    lines = re.findall(r"<!-- (.*?) -->", (results / "figures" / "flow.svg").read_text(encoding="utf-8"))
    after = {lines[i]: lines[i + 1] for i in range(len(lines) - 1)}
    assert after["Studies included in qualitative synthesis"] == "(n = 8)"
    assert after["searching and other sources"] == "(n = 697)"
    assert after["Full-text articles assessed for eligibility"] == "(n = 31)"


def test_a_claim_the_new_data_falsify_stops_the_build(with_new_trial):
    """A precise four-week effect (MD -1.1, SD 0.8) makes the pooled four-week difference
    significant, so "still present at two weeks but not later" is no longer true."""
    pain = with_new_trial / "data" / "pain_scores.csv"
    _set_cells(pain, {"study_id": TRIAL, "timepoint": "4 wk", "arm": "ketamine"}, {"mean": "4.90", "sd": "0.80"})
    _set_cells(pain, {"study_id": TRIAL, "timepoint": "4 wk", "arm": "control"}, {"sd": "0.80"})
    before = (with_new_trial / "results" / "manuscript" / "paper.pdf").read_bytes()
    proc = snakemake(with_new_trial)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r"manuscript/paper\.qmd:\d+: the claim \"still present at", out), out[-4000:]
    assert "week4.p >= protocol.alpha" in out and "week4.p = " in out
    # the documents were not rebuilt with a false sentence
    assert (with_new_trial / "results" / "manuscript" / "paper.pdf").read_bytes() == before
