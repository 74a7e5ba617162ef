"""Every effect measure x pooling method (x Hartung-Knapp) against R's metafor (tests/r_oracle.py).

Effect measures (MD, SMD, RR, OR, RD, PR, PLO) are compared with ``escalc`` at its defaults on
metafor's own data sets (``dat.bcg``, ``dat.nielweise2007`` with zero cells,
``dat.normand1999``, ``dat.pritz1997``) and on small tables with zero, double-zero and all-event
cells; pooling (EE, DL, REML, PM; z-test and ``test="knha"``) with ``rma`` on every measure's
effects and on edge cases (k = 1, k = 2, tau^2 at 0, identical effects, all tables empty of
events). REML and PM run in R with ``control=list(threshold=1e-12, tol=1e-12)`` so that
metafor's iterations stop far below the tolerance used here. Two Rscript processes per run
(the data sets, then every comparison).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from r_oracle import RAbsent, run_jobs

from metabuild.stats import effects, measures, pooling, proportions

pytestmark = pytest.mark.needs_r
RTOL, ATOL = 1e-7, 1e-10  # relative 1e-7; absolute 1e-10 for values at 0 (tau2, I2)

DATASETS = {"bcg": "dat.bcg", "niel": "dat.nielweise2007", "normand": "dat.normand1999", "pritz": "dat.pritz1997"}

# small tables: a zero cell, a double zero, all events in both arms, a zero in the other arm
ZERO_TABLES = dict(a=[0, 0, 5, 10, 3], n1=[20, 15, 30, 10, 12], c=[3, 0, 8, 10, 0], n2=[20, 15, 30, 10, 11])
ALL_ZERO = dict(a=[0, 0, 0], n1=[20, 15, 30], c=[0, 0, 0], n2=[18, 15, 25])  # no event anywhere
SMALL_SMD = dict(
    m1=[1.0, 2.5, 0.3], sd1=[1.0, 2.0, 0.5], n1=[2, 3, 40], m2=[0.0, 1.0, 0.0], sd2=[1.2, 1.0, 0.4], n2=[2, 2, 35]
)
PROP_EDGES = dict(x=[0, 3, 12, 7], n=[15, 20, 12, 30])  # x = 0 and x = n get 1/2 added

METHODS = ("EE", "DL", "REML", "PM")
TESTS = ("z", "knha")
EDGE_YV = {
    "k1": ([-1.5], [0.2]),
    "k2": ([-1.0, -2.2], [0.3, 0.25]),
    "tau0": ([-1.0, -1.1, -0.9, -1.05], [0.3, 0.4, 0.35, 0.5]),  # Q < df: every estimator gives 0
    "identical": ([-1.0, -1.0, -1.0], [0.2, 0.3, 0.4]),  # Q = 0; Hartung-Knapp's factor 0
}


def _binary(d: dict) -> dict:
    """Python inputs (a, n1, c, n2) from a data set's columns."""
    if "tpos" in d:
        return dict(
            a=d["tpos"], n1=_floats(np.add(d["tpos"], d["tneg"])), c=d["cpos"], n2=_floats(np.add(d["cpos"], d["cneg"]))
        )
    return dict(a=d["ai"], n1=d["n1i"], c=d["ci"], n2=d["n2i"])


def _floats(x) -> list[float]:
    return [float(v) for v in x]


def _r_binary(t: dict) -> dict:
    return {"ai": _floats(t["a"]), "n1i": _floats(t["n1"]), "ci": _floats(t["c"]), "n2i": _floats(t["n2"])}


def _r_cont(t: dict) -> dict:
    return {k + "i": _floats(t[k]) for k in ("m1", "sd1", "n1", "m2", "sd2", "n2")}


def _cases(data: dict) -> dict[str, tuple[str, dict, dict, dict]]:
    """case -> (measure, python kwargs, R escalc args, python keyword options)."""
    bcg, niel = _binary(data["bcg"]), _binary(data["niel"])
    nd = data["normand"]
    normand = dict(m1=nd["m1i"], sd1=nd["sd1i"], n1=nd["n1i"], m2=nd["m2i"], sd2=nd["sd2i"], n2=nd["n2i"])
    pritz = dict(x=data["pritz"]["xi"], n=data["pritz"]["ni"])
    cases: dict[str, tuple[str, dict, dict, dict]] = {}
    for name, t in (("bcg", bcg), ("niel", niel), ("zeros", ZERO_TABLES), ("allzero", ALL_ZERO)):
        for m in ("OR", "RD"):
            cases[f"{name}_{m}"] = (m, t, _r_binary(t), {})
            cases[f"{name}_{m}_drop00"] = (m, t, {**_r_binary(t), "drop00": True}, {"drop00": True})
    for name, t in (("bcg", bcg), ("niel", niel), ("zeros", ZERO_TABLES)):
        # the risk ratio keeps Stata metan's rule: escalc's with drop00=TRUE
        cases[f"{name}_RR"] = ("RR", t, {**_r_binary(t), "drop00": True}, {})
    for name, t in (("normand", normand), ("small", SMALL_SMD)):
        cases[f"{name}_MD"] = ("MD", t, _r_cont(t), {})
        cases[f"{name}_SMD"] = ("SMD", t, _r_cont(t), {})
    for name, t in (("pritz", pritz), ("edges", PROP_EDGES)):
        for m in ("PR", "PLO"):
            cases[f"{name}_{m}"] = (m, t, {"xi": _floats(t["x"]), "ni": _floats(t["n"])}, {})
    return cases


def _effects(measure: str, kwargs: dict, options: dict) -> effects.EffectSizes:
    return measures.measure(measure).effects(**kwargs, **options)


@pytest.fixture(scope="module")
def r():
    try:
        data = run_jobs({k: {"kind": "data", "name": v} for k, v in DATASETS.items()})
    except RAbsent as e:
        pytest.skip(f"R/metafor absent: {e}")
    cases = _cases(data)
    jobs: dict[str, dict] = {}
    pooled_inputs: dict[str, tuple[list[float], list[float]]] = dict(EDGE_YV)
    for case, (measure, kwargs, r_args, options) in cases.items():
        jobs[f"es:{case}"] = {"kind": "escalc", "measure": measure, "args": r_args}
        es = _effects(measure, kwargs, options)
        pooled_inputs[case] = (_floats(es.yi[es.kept]), _floats(es.vi[es.kept]))
    for name, (yi, vi) in pooled_inputs.items():
        for method in METHODS:
            for test in TESTS:
                job = {"kind": "rma", "yi": yi, "vi": vi, "method": method, "test": test}
                jobs[f"rma:{name}:{method}:{test}"] = job
    return cases, pooled_inputs, run_jobs(jobs)


def _close(ours, theirs, what):
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=RTOL, atol=ATOL, err_msg=what)


CASE_NAMES = (
    [f"{d}_{m}{s}" for d in ("bcg", "niel", "zeros", "allzero") for m in ("OR", "RD") for s in ("", "_drop00")]
    + [f"{d}_RR" for d in ("bcg", "niel", "zeros")]
    + [f"{d}_{m}" for d in ("normand", "small") for m in ("MD", "SMD")]
    + [f"{d}_{m}" for d in ("pritz", "edges") for m in ("PR", "PLO")]
)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_effect_measure_matches_escalc(r, case):
    cases, _, res = r
    measure, kwargs, _, options = cases[case]
    theirs = res[f"es:{case}"]
    assert "error" not in theirs, theirs
    es = _effects(measure, kwargs, options)
    r_yi = np.atleast_1d(np.asarray(theirs["yi"], float))
    r_vi = np.atleast_1d(np.asarray(theirs["vi"], float))
    # a study metafor drops (drop00=TRUE) is NA there and not kept here
    np.testing.assert_array_equal(es.kept, ~np.isnan(r_yi))
    _close(es.yi[es.kept], r_yi[es.kept], f"{case} yi")
    _close(es.vi[es.kept], r_vi[es.kept], f"{case} vi")


# all tables double-zero and dropped (drop00): nothing to pool (test_nothing_to_pool)
POOL_NAMES = [*EDGE_YV, *(c for c in CASE_NAMES if not c.startswith("allzero_") or not c.endswith("_drop00"))]
STATS = ("estimate", "se", "ci_lower", "ci_upper", "z", "p", "q", "tau2", "i2", "h2")


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", POOL_NAMES)
def test_pooling_matches_rma(r, name, method, test):
    _, pooled_inputs, res = r
    yi, vi = pooled_inputs[name]
    theirs = res[f"rma:{name}:{method}:{test}"]
    assert "error" not in theirs, theirs
    ours = pooling.meta_analysis(yi, vi, method=method, test=test)
    k = len(yi)
    assert ours.k == theirs["k"] == k
    assert ours.method == method
    assert ours.test == theirs["test"]  # metafor too falls back to the z-test when k = 1
    for stat in STATS:
        if name == "identical" and test == "knha" and stat in ("z", "p"):
            continue  # SE 0: both give t = -inf and P = 0 (checked in test_knha_identical_effects)
        if name == "identical" and method == "EE" and stat == "i2":
            continue  # metafor's max(0, (Q - df)/Q) is NaN at Q = 0; here 0 (checked below)
        _close(getattr(ours, stat), theirs[stat], f"{name} {method} {test} {stat}")
    r_weights = np.atleast_1d(np.asarray(theirs["weights"], float))
    _close(ours.weights, 100 * r_weights / np.sum(r_weights), "weights")
    if k > 1:
        _close(ours.q_p, theirs["q_p"], "q_p")
    else:
        assert math.isnan(ours.q_p) and theirs["q_p"] == 1  # documented: undefined here, 1 in metafor
    if test == "knha" and k > 1:
        assert theirs["df"] == k - 1 == ours.df


def test_knha_identical_effects(r):
    """Q = 0: metafor sets the Hartung-Knapp factor to 0, so SE 0 and a CI of zero width."""
    _, pooled_inputs, res = r
    for method in METHODS:
        ours = pooling.meta_analysis(*pooled_inputs["identical"], method=method, test="knha")
        theirs = res[f"rma:identical:{method}:knha"]
        assert ours.se == 0 == theirs["se"]
        assert ours.ci_lower == ours.ci_upper == ours.estimate == -1.0
        assert ours.z == -math.inf and ours.p == 0.0 == theirs["p"]


def test_identical_effects_ee_i2_is_zero(r):
    _, pooled_inputs, res = r
    ours = pooling.meta_analysis(*pooled_inputs["identical"], method="EE")
    assert ours.q == 0 and ours.i2 == 0.0 and ours.h2 == 0.0
    assert res["rma:identical:EE:z"]["h2"] == 0


def test_tau2_zero_for_every_estimator(r):
    _, pooled_inputs, res = r
    for method in ("DL", "REML", "PM"):
        assert pooling.meta_analysis(*pooled_inputs["tau0"], method=method).tau2 == 0.0
        assert res[f"rma:tau0:{method}:z"]["tau2"] == 0


def test_random_effects_estimators_differ_on_heterogeneous_data(r):
    """The comparison above could not pass with one estimator standing in for another."""
    _, pooled_inputs, _ = r
    tau2 = {m: pooling.meta_analysis(*pooled_inputs["bcg_RR"], method=m).tau2 for m in ("DL", "REML", "PM")}
    assert len({round(v, 6) for v in tau2.values()}) == 3 and min(tau2.values()) > 0


def test_bcg_published_values(r):
    """Colditz 1994 BCG trials, log RR, REML: metafor's documented result (rma(measure="RR",
    ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)): RR 0.4894 (0.3441 to 0.6962), tau^2 0.3132,
    I^2 92.22 %. The values printed in metafor's documentation, to their printed digits."""
    cases, _, _ = r
    es = _effects("RR", cases["bcg_RR"][1], {})
    fit = pooling.meta_analysis(es.yi, es.vi, method="REML")
    assert round(math.exp(fit.estimate), 4) == 0.4894
    assert (round(math.exp(fit.ci_lower), 4), round(math.exp(fit.ci_upper), 4)) == (0.3441, 0.6962)
    assert round(fit.tau2, 4) == 0.3132 and round(fit.i2, 2) == 92.22
    assert round(fit.h2, 2) == 12.86


def test_proportion_back_transform(r):
    """PLO pooled on the logit scale back-transforms by the inverse logit (metafor transf.ilogit)."""
    cases, _, _ = r
    es = _effects("PLO", cases["pritz_PLO"][1], {})
    fit = pooling.meta_analysis(es.yi, es.vi, method="REML")
    back = measures.measure("PLO").back_transform
    assert back(fit.estimate) == pytest.approx(1 / (1 + math.exp(-fit.estimate)), rel=1e-15)
    assert 0 < back(fit.ci_lower) < back(fit.estimate) < back(fit.ci_upper) < 1
    assert proportions.expit([0.0])[0] == 0.5


def test_nothing_to_pool(r):
    """Every table double-zero with drop00: no study is kept, and pooling refuses the empty input."""
    cases, _, res = r
    for m in ("OR", "RD"):
        es = _effects(m, cases[f"allzero_{m}_drop00"][1], {"drop00": True})
        assert not es.kept.any()
        assert np.isnan(np.asarray(res[f"es:allzero_{m}_drop00"]["yi"], float)).all()
        with pytest.raises(ValueError, match="at least 1 studies; got 0"):
            pooling.meta_analysis(es.yi[es.kept], es.vi[es.kept], method="REML")
