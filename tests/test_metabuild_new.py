"""`python -m metabuild new DIR` scaffolds a review that builds its PDF, DOCX and HTML as soon as
its data validate (the build runs from the repository with --directory DIR)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV_LIB = str(ROOT / "workflow" / "lib")

STUDIES = """study_id,label,first_author,year,citation_key,n_treatment,n_control,source
alpha2001,Alpha 2001,Alpha,2001,alpha2001,100,100,test
beta2005,Beta 2005,Beta,2005,beta2005,80,82,test
gamma2010,Gamma 2010,Gamma,2010,gamma2010,150,148,test
"""
OUTCOMES = """study_id,outcome,arm,events,n,definition,source
alpha2001,event,treatment,10,100,,test
alpha2001,event,control,20,100,,test
beta2005,event,treatment,8,80,,test
beta2005,event,control,12,82,,test
gamma2010,event,treatment,30,150,,test
gamma2010,event,control,29,148,,test
"""
ROB = """study_id,domain,judgement,source
alpha2001,random_sequence,low,test
alpha2001,allocation_concealment,low,test
beta2005,random_sequence,high,test
beta2005,allocation_concealment,unclear,test
gamma2010,random_sequence,low,test
gamma2010,allocation_concealment,unclear,test
"""


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": ENV_LIB, "PATH": __import__("os").environ["PATH"], "HOME": str(Path.home())}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=1200, env=env)


def test_new_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    proc = _run("-m", "metabuild", "new", str(tmp_path / "x"))
    assert proc.returncode == 2 and "not an empty folder" in proc.stdout
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_new_review_builds_pdf_docx_html_once_its_data_validate(tmp_path):
    review = tmp_path / "myreview"
    proc = _run("-m", "metabuild", "new", str(review))
    assert proc.returncode == 0, proc.stderr
    for rel in (
        "config/config.yaml",
        "data/studies.csv",
        "data/schemas/studies.schema.json",
        "data/schemas/binary_outcomes.schema.json",
        "manuscript/paper.qmd",
        "manuscript/filters/numbers.lua",
        "README.md",
    ):
        assert (review / rel).is_file(), rel
    readme = (review / "README.md").read_text()
    assert f"--directory {review}" in readme and f"metabuild new {review}" in readme
    assert "[main.estimate]{.num}" in (review / "manuscript" / "paper.qmd").read_text()

    # the templates hold headers only: the build stops before any job, naming the file
    build = ("-m", "snakemake", "--cores", "2", "--directory", str(review))
    empty = _run(*build)
    assert empty.returncode != 0
    assert "studies.csv: file has a header but no data rows" in empty.stdout + empty.stderr
    assert not (review / "results" / "numbers.json").exists()

    (review / "data" / "studies.csv").write_text(STUDIES)
    (review / "data" / "binary_outcomes.csv").write_text(OUTCOMES)
    (review / "data" / "risk_of_bias.csv").write_text(ROB)
    done = _run(*build)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for fmt in ("html", "docx", "pdf"):
        assert (review / "results" / "manuscript" / f"paper.{fmt}").stat().st_size > 10_000, fmt
    numbers = json.loads((review / "results" / "numbers.json").read_text())["numbers"]
    assert numbers["studies.count"]["value"] == 3
    assert numbers["sets.high_risk_of_bias.count"]["value"] == 1
    assert numbers["low_risk.k"]["value"] == 2  # the where filter on risk_of_bias.overall
    # the pooled RR is DerSimonian-Laird on the log RRs (checked against metafor in test_stats_metafor)
    assert 0 < numbers["main.estimate"]["value"] < 1 and not math.isnan(numbers["main.i2"]["value"])
    html = (review / "results" / "manuscript" / "paper.html").read_text(encoding="utf-8")
    assert numbers["main.estimate"]["text"] in html and "Viechtbauer" in html
