"""The reconstructed pain scores give the published meta-regression P values, and the Egger
variants the curation reports are computed as metafor computes them.

data/pain_scores.csv is written by data/curation/reconstruct_pain.py (test_curation_reproduces
checks it is what the script writes); here the data themselves are checked against an independent
implementation: metafor's rma (REML, Knapp-Hartung truncated at 1, Stata metareg's defaults) must
print the Results' P values .213 (dose), .079 (CRPS) and .127 (adjunct) from them.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from r_oracle import RAbsent, run_jobs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data" / "curation"))
import reconstruct_pain as rp  # noqa: E402

# moderator's first level (studies) and the P value the Results print
PRINTED = {
    "dose": ({"sigtermans2009", "schwartzman2009", "amr2010"}, 0.213),
    "crps": ({"sigtermans2009", "schwartzman2009"}, 0.079),
    "adjunct": ({"eichenberger2008", "amr2010", "mitchell2002"}, 0.127),
}


def primary_trials() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Studies, mean differences and their variances of the primary analysis, from the data."""
    rows = [
        r for r in csv.DictReader((ROOT / "data" / "pain_scores.csv").open(encoding="utf-8")) if r["primary"] == "true"
    ]
    arms = {(r["study_id"], r["arm"]): r for r in rows}
    studies = list(dict.fromkeys(r["study_id"] for r in rows))
    y, v = [], []
    for s in studies:
        k, c = arms[(s, "ketamine")], arms[(s, "control")]
        y.append(float(k["mean"]) - float(c["mean"]))
        v.append(float(k["sd"]) ** 2 / int(k["n"]) + float(c["sd"]) ** 2 / int(c["n"]))
    return studies, np.array(y), np.array(v)


def oracle(jobs: dict) -> dict:
    try:
        return run_jobs(jobs)
    except RAbsent as why:
        pytest.skip(f"R/metafor absent: {why}")


def test_metafor_prints_the_published_meta_regression_p_values_from_the_data():
    studies, y, v = primary_trials()
    assert len(studies) == 6
    jobs = {
        name: {"kind": "metareg", "yi": y.tolist(), "vi": v.tolist(), "x": [float(s in first) for s in studies]}
        for name, (first, _) in PRINTED.items()
    }
    got = oracle(jobs)
    for name, (_, printed) in PRINTED.items():
        p = got[name]["p"][1]
        assert abs(p - printed) <= 0.0005, f"{name}: metafor gives P {p:.4f}, the paper prints {printed:.3f}"


def test_the_curation_aims_at_the_same_moderators():
    # METAREG_AIMS holds series indices; they must name the studies the test above uses
    for key, (first, printed) in PRINTED.items():
        members, target = rp.METAREG_AIMS[f"{key}.metareg.p"]
        assert {rp.SERIES[i].study for i in members} == first and target == printed


def test_egger_variants_are_metafors_regtest():
    _, y, v = primary_trials()
    got = rp.egger_variants(y, v)
    base = {"kind": "regtest", "yi": y.tolist(), "vi": v.tolist()}
    r = oracle(
        {
            "lm": base,
            "rma": base | {"model": "rma"},
            "fe": base | {"model": "rma", "method": "EE"},
            "adhoc": base | {"model": "rma", "test": "adhoc"},
            "vi": base | {"model": "rma", "predictor": "vi"},
        }
    )
    names = list(got)
    assert got[names[0]] == pytest.approx(r["lm"]["p"], rel=1e-9)
    # the lm intercept's t, referred to the normal distribution
    assert got[names[1]] == pytest.approx(math.erfc(abs(r["lm"]["t"]) / math.sqrt(2)), rel=1e-9)
    # REML: metafor stops its iterations at a change in tau2 below 1e-5
    assert got[names[2]] == pytest.approx(r["rma"]["p"], rel=1e-4)
    assert got[names[3]] == pytest.approx(r["fe"]["p"], rel=1e-9)
    assert got[names[4]] == pytest.approx(r["adhoc"]["p"], rel=1e-4)
    assert got[names[5]] == pytest.approx(r["vi"]["p"], rel=1e-4)


@pytest.mark.parametrize("i", range(6))
def test_sd_pairs_are_the_nearest_arm_sds_with_the_smallest_difference_first(i: int):
    v = float(rp.SD_PRIOR**2 * (1 / rp.N1[i] + 1 / rp.N2[i]) * 1.0007)
    pairs = rp._sd_pairs(i, v)
    assert pairs, "no arm-SD pair near a typical variance"

    def var(a, dl):
        return (a / 100) ** 2 / rp.N1[i] + ((a + dl) / 100) ** 2 / rp.N2[i]

    assert all(abs(math.log(var(a, dl) / v)) < rp.ROUND_V_REL for a, dl in pairs)
    # brute force over every 2-decimal SD pair: the smallest arm difference first, then the nearest
    every = sorted(
        (abs(dl), abs(math.log(var(a, dl) / v)), a, dl)
        for a in range(5, 400)
        for dl in range(-rp.ROUND_MAX_DELTA, rp.ROUND_MAX_DELTA + 1)
        if a + dl > 0 and abs(math.log(var(a, dl) / v)) < rp.ROUND_V_REL
    )
    assert pairs == [(a, dl) for _, _, a, dl in every[: rp.ROUND_CANDIDATES]]


def committed_block1() -> np.ndarray:
    """MDs and log variances of the primary analysis' trials, in the curation's series order."""
    studies, y, v = primary_trials()
    order = [studies.index(s.study) for s in rp.SERIES[:6]]
    return np.r_[y[order], np.log(v[order])]


def test_the_committed_data_meet_every_value_the_rounding_aimed_at():
    # the 28 pooled values, each trial's described direction, and the dose, CRPS and adjunct P values
    margins = rp._block1_constraints(committed_block1(), rp.RELAX_AIMS)
    assert margins.min() >= 0, f"smallest margin {margins.min():.3f} rounding units"


def test_rounding_gives_nothing_where_the_relaxation_misses():
    # pain type .720 is out of the relaxation's reach: the rounding must not invent a data set for it
    x = committed_block1()
    assert rp._block1_constraints(x, ("pain_type.metareg.p",)).min() < 0
    assert rp.round_relaxation(x, aims=("pain_type.metareg.p",), max_solves=40) is None
