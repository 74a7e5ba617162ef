"""The provenance document (results/manuscript/provenance.html and .pdf): every number the paper and
the supplement print, grouped by the job that computed it, each job's inputs (with hashes) once; the
audit renderings link each number to its entry."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from metabuild.provenance_document import keys_used, provenance_markdown, row_ranges

ROOT = Path(__file__).resolve().parents[1]


def test_row_ranges():
    assert row_ranges([2, 3, 4, 7, 9, 10]) == "2–4, 7, 9–10"
    assert row_ranges([5]) == "5" and row_ranges([]) == ""
    assert row_ranges([4, 2, 3, 3]) == "2–4"


def test_keys_used_follow_included_files(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "t.md").write_text("| a |\n|--|\n| [x.in_table]{.num} |\n", encoding="utf-8")
    qmd = tmp_path / "doc.qmd"
    qmd.write_text(
        "Text [x.first]{.num} and [x.set]{.cite}, [x.first]{.num} again, [x.unknown]{.num}.\n\n"
        '::: {#tbl-t .include file="tables/t.md"}\nCaption.\n:::\n',
        encoding="utf-8",
    )
    numbers = {k: {"text": "1"} for k in ("x.first", "x.set", "x.in_table")}
    assert keys_used(qmd, numbers) == ["x.first", "x.set", "x.in_table"]


def test_listing_groups_by_job_and_keeps_data_text_as_text():
    prov = {
        "inputs": [{"path": "data/a.csv", "sha256": "ab" * 32}],
        "outputs": ["results/j.json"],
        "data_rows": {"a.csv": [2, 3, 4]},
    }
    numbers = {
        "j.one": {"job": "job_a", "text": "<b>1</b>", "published": "1", "provenance": prov},
        "j.two": {"job": "job_a", "text": "*2*", "published": None, "provenance": prov},
    }
    text = provenance_markdown(numbers, {"paper": ["j.one", "j.two"], "supplement": ["j.two"]})
    assert text.count("data/a.csv") == 1  # the job's inputs once, not once per number
    assert "`abababababab`" in text and text.count("a\\.csv 2–4") == 1  # rows once per job
    assert "\\<b\\>1\\<\\/b\\>" in text and "\\*2\\*" in text  # escaped: text, never markup
    assert "not printed" in text and "| paper, supplement |" in text
    assert "{#prov-j.one}" in text


@pytest.mark.slow
def test_every_audit_link_reaches_its_entry(built_results):
    listing = (built_results / "manuscript" / "provenance.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'id="(prov-[^"]+)"', listing))
    for document in ("paper", "supplement"):
        page = (built_results / "manuscript" / f"{document}.html").read_text(encoding="utf-8")
        links = set(re.findall(r'href="provenance\.html#(prov-[^"]+)"', page))
        assert links, document
        assert links <= ids, sorted(links - ids)[:5]
    # a GRADE footnote's number comes from an included table, and is listed too
    assert "prov-primary.n_high_risk" in ids
    # each job's inputs are listed once: far fewer input rows than numbers
    assert listing.count("workflow/scripts/run_analysis.py") < len(ids) / 5
    pdf = built_results / "manuscript" / "provenance.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "primary.estimate" in text and "Provenance of the Reported Numbers" in text
