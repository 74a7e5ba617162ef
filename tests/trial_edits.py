"""Edits a reviewer makes to the data files of a project copy: add a fictional trial, remove
one. They work on whatever columns and trials the files hold (copying an existing trial's rows
as a template), so the tests using them do not encode today's data."""

from __future__ import annotations

import csv
from pathlib import Path

#: the files that hold rows per trial (data/README.md)
TRIAL_FILES = ("studies.csv", "pain_scores.csv", "binary_outcomes.csv", "risk_of_bias.csv")
EXTRACTED = "{label} trial report, Table 2 (fictional trial added by the tests)"


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, fields: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def add_fictional_trial(
    data_dir: Path, study_id: str = "zeta2021", label: str = "Zeta 2021", pain_shift: float = -1.5
) -> str:
    """Add an eighth (fictional) trial to every per-trial file of ``data_dir`` and return the id
    of the trial whose rows served as the template.

    The template is the first trial of studies.csv with pain scores. The new trial copies its
    study row, its pain rows (ketamine means moved by ``pain_shift``, so the pooled results
    change) and its risk-of-bias rows; it has no binary outcomes. Every copied row is
    labelled as extracted from the (fictional) trial report, none as reconstructed.
    """
    data_dir = Path(data_dir)
    source = EXTRACTED.format(label=label)
    fields, pain = read_rows(data_dir / "pain_scores.csv")
    with_pain = {r["study_id"] for r in pain}
    study_fields, studies = read_rows(data_dir / "studies.csv")
    template = next(r for r in studies if r["study_id"] in with_pain)
    new = dict(template, study_id=study_id, label=label, citation_key=study_id, source=source)
    new.update(first_author=label.split()[0], year=label.split()[-1])
    if "ref_number" in new:
        new["ref_number"] = str(max(int(r["ref_number"]) for r in studies) + 1)
    if "demographics_source" in new:
        new["demographics_source"] = source
    write_rows(data_dir / "studies.csv", study_fields, [*studies, new])
    added = []
    for row in pain:
        if row["study_id"] == template["study_id"]:
            copy = dict(row, study_id=study_id, source=source)
            if row["arm"] == "ketamine":
                copy["mean"] = f"{float(row['mean']) + pain_shift:.2f}"
            added.append(copy)
    write_rows(data_dir / "pain_scores.csv", fields, [*pain, *added])
    rob_fields, rob = read_rows(data_dir / "risk_of_bias.csv")
    copies = [dict(r, study_id=study_id, source=source) for r in rob if r["study_id"] == template["study_id"]]
    write_rows(data_dir / "risk_of_bias.csv", rob_fields, [*rob, *copies])
    shift_flow(data_dir, +1)
    return template["study_id"]


def shift_flow(data_dir: Path, trials: int) -> None:
    """The PRISMA flow of a review that gained (or lost) ``trials`` included trials: as many more
    records identified, screened and assessed in full (the validation checks that the flow ends
    in the trials of studies.csv)."""
    path = Path(data_dir) / "study_flow.csv"
    if not path.exists():
        return
    fields, rows = read_rows(path)
    for row in rows:
        if row["stage"] in ("records_identified", "records_screened", "fulltext_assessed", "included"):
            row["count"] = str(int(row["count"]) + trials)
    write_rows(path, fields, rows)


def remove_trial(data_dir: Path, study_id: str) -> None:
    """Remove every row of one trial from the per-trial files of ``data_dir`` (and from the flow)."""
    for name in TRIAL_FILES:
        path = Path(data_dir) / name
        fields, rows = read_rows(path)
        write_rows(path, fields, [r for r in rows if r["study_id"] != study_id])
    shift_flow(data_dir, -1)
