"""The second review, reviews/bcg (the BCG vaccine trials of Colditz 1994, metafor's dat.bcg),
built end to end by the same Snakefile (snakemake --directory reviews/bcg) in a copy of the
project; its numbers checked against metafor and against the values published for these data."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project
from r_oracle import RAbsent, run_jobs

ROOT = Path(__file__).resolve().parents[1]
BCG = ROOT / "reviews" / "bcg"

#: printed for these data: Colditz 1994 (Abstract) and metafor's documentation of dat.bcg
PUBLISHED = {
    "rr": 0.49,
    "ci": (0.34, 0.70),
    "i2_dl": 92.1,
    "slope_reml": -0.0291,
    "tau2_reml": 0.3132,
    "log_rr_reml": -0.7145,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("bcg") / "project")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", "reviews/bcg"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return project / "reviews" / "bcg" / "results"


def _numbers(results: Path) -> dict:
    return {k: v["value"] for k, v in json.loads((results / "numbers.json").read_text())["numbers"].items()}


def _trials() -> list[dict]:
    studies = {r["study_id"]: r for r in csv.DictReader((BCG / "data" / "studies.csv").open())}
    arms: dict[str, dict] = {}
    for r in csv.DictReader((BCG / "data" / "binary_outcomes.csv").open()):
        arms.setdefault(r["study_id"], {})[r["arm"]] = (int(r["events"]), int(r["n"]))
    return [
        {
            "id": sid,
            "ablat": float(s["ablat"]),
            "alloc": s["allocation"],
            **dict(zip(("a", "n1"), arms[sid]["vaccine"], strict=True)),
            **dict(zip(("c", "n2"), arms[sid]["control"], strict=True)),
        }
        for sid, s in studies.items()
    ]


@pytest.mark.slow
@pytest.mark.needs_r
def test_bcg_numbers_match_metafor_and_the_published_values(built):
    numbers = _numbers(built)
    trials = _trials()
    assert len(trials) == 13 and numbers["studies.count"] == 13
    counts = {k: [t[k] for t in trials] for k in ("a", "n1", "c", "n2")}
    try:
        es = run_jobs({"all": {"kind": "rr", **counts}})["all"]
        random_only = [i for i, t in enumerate(trials) if t["alloc"] == "random"]
        jobs = {
            "dl": {"kind": "dl", "yi": es["yi"], "vi": es["vi"]},
            "reg": {"kind": "metareg", "yi": es["yi"], "vi": es["vi"], "x": [t["ablat"] for t in trials]},
            "dl_random": {
                "kind": "dl",
                "yi": [es["yi"][i] for i in random_only],
                "vi": [es["vi"][i] for i in random_only],
            },
            "loo": {"kind": "leave1out", "yi": es["yi"], "vi": es["vi"]},
            "reml": {"kind": "rma", "yi": es["yi"], "vi": es["vi"], "method": "REML", "test": "z"},
        }
        r = run_jobs(jobs)
    except RAbsent as why:
        pytest.skip(f"R/metafor absent: {why}")
    dl, reg, dl_random, loo, reml = r["dl"], r["reg"], r["dl_random"], r["loo"], r["reml"]
    # against metafor: rma(yi, vi, method = "DL"), on the ratio scale
    assert numbers["overall.estimate"] == pytest.approx(math.exp(dl["estimate"]), rel=1e-9)
    assert numbers["overall.ci_lower"] == pytest.approx(math.exp(dl["ci_lower"]), rel=1e-9)
    assert numbers["overall.ci_upper"] == pytest.approx(math.exp(dl["ci_upper"]), rel=1e-9)
    assert numbers["overall.i2"] == pytest.approx(dl["i2"], rel=1e-9)
    assert numbers["overall.tau2"] == pytest.approx(dl["tau2"], rel=1e-9)
    assert numbers["overall.q"] == pytest.approx(dl["q"], rel=1e-9)
    assert numbers["overall.p"] == pytest.approx(dl["p"], rel=1e-6)
    # rma(yi, vi, mods = ~ ablat, method = "REML", test = "adhoc")
    assert numbers["latitude.metareg.slope"] == pytest.approx(reg["coef"][1], rel=1e-6)
    assert numbers["latitude.metareg.intercept"] == pytest.approx(reg["coef"][0], rel=1e-6)
    assert numbers["latitude.metareg.tau2"] == pytest.approx(reg["tau2"], rel=1e-5)
    assert numbers["latitude.metareg.p"] == pytest.approx(reg["p"][1], rel=1e-5)
    assert numbers["latitude.metareg.slope_ci_lower"] == pytest.approx(reg["ci_lower"][1], rel=1e-5)
    # the risk-of-bias filter (random allocation only) is metafor on those 7 trials
    assert numbers["randomised.k"] == len(random_only) == 7
    assert numbers["randomised.estimate"] == pytest.approx(math.exp(dl_random["estimate"]), rel=1e-9)
    assert numbers["overall.loo.min"] == pytest.approx(math.exp(min(loo["estimate"])), rel=1e-9)
    assert numbers["overall.loo.max"] == pytest.approx(math.exp(max(loo["estimate"])), rel=1e-9)
    # rma(yi, vi, method = "REML")
    assert math.log(numbers["overall_reml.estimate"]) == pytest.approx(reml["estimate"], rel=1e-6)
    assert numbers["overall_reml.tau2"] == pytest.approx(reml["tau2"], rel=1e-6)
    assert numbers["overall_reml.ci_upper"] == pytest.approx(math.exp(reml["ci_upper"]), rel=1e-6)
    assert numbers["overall_reml.i2"] == pytest.approx(reml["i2"], rel=1e-6)
    # against the published values, at their printed precision
    assert round(numbers["overall.estimate"], 2) == PUBLISHED["rr"]
    assert (round(numbers["overall.ci_lower"], 2), round(numbers["overall.ci_upper"], 2)) == PUBLISHED["ci"]
    assert round(numbers["overall.i2"], 1) == PUBLISHED["i2_dl"]
    assert round(numbers["latitude.metareg.slope"], 4) == PUBLISHED["slope_reml"]
    assert round(numbers["overall_reml.tau2"], 4) == PUBLISHED["tau2_reml"]
    assert round(math.log(numbers["overall_reml.estimate"]), 4) == PUBLISHED["log_rr_reml"]


@pytest.mark.slow
def test_bcg_registry_records_the_published_values_as_reproduced(built):
    registry = json.loads((built / "numbers.json").read_text())["numbers"]
    for key in ("overall.estimate", "overall.ci_lower", "overall.ci_upper", "overall.i2", "latitude.metareg.slope"):
        published = registry[key].get("published") or []
        assert published and all(p["matches"] for p in published), (key, published)


@pytest.mark.slow
def test_bcg_documents_are_built_from_the_registry(built):
    for fmt in ("html", "docx", "pdf"):
        assert (built / "manuscript" / f"paper.{fmt}").stat().st_size > 10_000
    for stem in ("forest_overall", "risk_of_bias", "leave_one_out"):
        assert (built / "figures" / f"{stem}.svg").exists()
    html = (built / "manuscript" / "paper.html").read_text(encoding="utf-8")
    registry = json.loads((built / "numbers.json").read_text())["numbers"]
    for key in ("overall.estimate", "overall.i2", "latitude.metareg.slope", "randomised.estimate"):
        assert f'data-key="{key}"' in html and registry[key]["text"] in html, key
    svg = (built / "figures" / "forest_overall.svg").read_text(encoding="utf-8")
    assert "BCG vaccine" in svg and "Favours vaccine" in svg and "ketamine" not in svg.lower()


def test_bcg_shares_the_flagships_rendering_support():
    """The review's copies of the filters, templates, style and provenance document are the
    flagship's (metabuild new copies the same files): a fix to one reaches the other."""
    from metabuild.scaffold import SUPPORT

    flagship = ROOT / "manuscript"
    copies = [p for pattern in SUPPORT for p in flagship.glob(pattern)]
    assert len(copies) >= 8
    for source in copies:
        copy = BCG / "manuscript" / source.relative_to(flagship)
        assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: copy it again"


@pytest.mark.slow
def test_bcg_has_its_provenance_document(built):
    listing = (built / "manuscript" / "provenance.html").read_text(encoding="utf-8")
    paper = (built / "manuscript" / "paper.html").read_text(encoding="utf-8")
    assert 'href="provenance.html#prov-overall.estimate"' in paper
    assert 'id="prov-overall.estimate"' in listing and "data/binary_outcomes.csv" in listing
