"""Every statistic of metabuild.stats against R's metafor (tests/r_oracle.py), to 1e-6.

All R work for this module runs in ONE Rscript process (module fixture ``r``). Skipped with a
clear message when R, metafor or jsonlite is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from r_oracle import RAbsent, run_jobs

from metabuild.stats.bias import begg_test, egger_test
from metabuild.stats.effects import log_risk_ratio, mean_difference
from metabuild.stats.metareg import meta_regression
from metabuild.stats.pooling import dersimonian_laird, inverse_variance_fixed, rr_random_effects
from metabuild.stats.proportions import freeman_tukey, pooled_proportion
from metabuild.stats.sensitivity import leave_one_out

pytestmark = pytest.mark.needs_r
TOL = dict(rtol=1e-6, atol=1e-6)

# --- data sets -------------------------------------------------------------------------------
MD6 = dict(  # realistic: pain 0-10, ketamine (1) vs control (2), six trials
    m1=[3.1, 4.0, 2.5, 5.2, 3.8, 4.4],
    sd1=[1.9, 2.2, 1.5, 2.4, 2.0, 1.7],
    n1=[30, 12, 10, 20, 9, 27],
    m2=[5.2, 5.5, 4.9, 6.0, 6.1, 5.9],
    sd2=[2.0, 2.1, 1.8, 2.3, 1.6, 1.9],
    n2=[30, 12, 10, 20, 10, 21],
)
_md = mean_difference(**MD6)
YV = {
    "md6": (list(_md.yi), list(_md.vi)),
    "k1": ([-1.5], [0.2]),
    "k2": ([-1.0, -2.2], [0.3, 0.25]),
    "tau0": ([-1.0, -1.1, -0.9, -1.05], [0.3, 0.4, 0.35, 0.5]),  # Q < df
    "identical": ([-1.0, -1.0, -1.0], [0.2, 0.2, 0.2]),  # Q = 0
    "unequal_n": ([-2.0, -1.2, -1.8, -1.1, -0.4], [1.6, 0.016, 0.7, 0.004, 0.9]),
    "ten": (
        [-0.9, -1.6, -0.2, -2.4, -1.1, -0.5, -1.9, -0.8, -3.0, -1.3],
        [0.05, 0.30, 0.02, 0.55, 0.12, 0.04, 0.41, 0.09, 0.80, 0.20],
    ),
    "ties": ([-1.0, -2.0, -0.5, -1.5, -3.0, -0.2], [0.2, 0.2, 0.4, 0.3, 0.6, 0.1]),
}
RR = {
    "rr_zero": dict(a=[5, 0, 8, 0], n1=[20, 15, 30, 10], c=[2, 3, 4, 0], n2=[20, 15, 30, 10]),
    "rr_het": dict(a=[12, 3, 20, 1, 9], n1=[30, 25, 60, 18, 40], c=[4, 6, 10, 0, 8], n2=[30, 24, 58, 20, 41]),
    "rr_k1": dict(a=[4, 0], n1=[20, 10], c=[1, 0], n2=[21, 10]),
}
METAREG = {
    "mr_md6": (*YV["md6"], [1, 1, 1, 0, 0, 0]),
    "mr_ten": (*YV["ten"], [0, 1, 0, 1, 1, 0, 1, 0, 1, 0]),
    "mr_tau0": (*YV["tau0"], [0, 0, 1, 1]),
    "mr_k3": ([-1.0, -1.4, -2.6], [0.3, 0.2, 0.4], [0, 0, 1]),
    "mr_unequal": (*YV["unequal_n"], [1, 0, 1, 0, 1]),
    # Knapp-Hartung factor q_KH > 1 (applied) and < 1 (truncated to 1), with tau2 > 0 and = 0
    "mr_kh_gt_tau": (
        [-1.23, -2.17, -1.1, -0.54, 0.43, -0.08, -1.58],
        [0.13, 0.32, 0.54, 0.28, 0.37, 0.06, 0.42],
        [0, 0, 0, 1, 1, 1, 1],
    ),
    "mr_kh_gt_tau0": (
        [-1.14, -0.67, -0.81, -0.95, 0.46, -0.72, -0.95],
        [0.09, 0.32, 0.17, 0.12, 0.33, 0.48, 0.21],
        [0, 0, 0, 1, 1, 1, 1],
    ),
    "mr_kh_lt_tau": (
        [-0.57, -0.38, -1.41, -1.26, -0.06, -0.1, -1.22],
        [0.14, 0.58, 0.33, 0.11, 0.39, 0.48, 0.39],
        [0, 0, 0, 1, 1, 1, 1],
    ),
    "mr_kh_lt_tau0": (
        [-0.54, -0.66, -0.81, -0.17, 0.19, -0.76, -0.35],
        [0.33, 0.57, 0.13, 0.57, 0.22, 0.28, 0.51],
        [0, 0, 0, 1, 1, 1, 1],
    ),
}
PROPS = {
    "p6": ([0, 3, 1, 5, 0, 7], [20, 25, 30, 40, 15, 33]),
    "p_all0": ([0, 0, 1], [12, 20, 30]),
    "p_high": ([18, 20, 25, 30], [20, 21, 30, 31]),
}


def _jobs() -> dict:
    jobs: dict = {"md_escalc": {"kind": "md", **MD6}}
    for name, (y, v) in YV.items():
        jobs[f"dl_{name}"] = {"kind": "dl", "yi": y, "vi": v}
        if len(y) >= 2:
            jobs[f"l1o_{name}"] = {"kind": "leave1out", "yi": y, "vi": v}
        if len(y) >= 3 and name != "identical":
            jobs[f"rank_{name}"] = {"kind": "ranktest", "yi": y, "vi": v}
            jobs[f"reg_{name}"] = {"kind": "regtest", "yi": y, "vi": v}
    for name, d in RR.items():
        jobs[f"esc_{name}"] = {"kind": "rr", **d}
        jobs[f"mh_{name}"] = {"kind": "rr_mh", **d}
    for name, (y, v, x) in METAREG.items():
        jobs[name] = {"kind": "metareg", "yi": y, "vi": v, "x": x}
    for name, (x, n) in PROPS.items():
        jobs[f"pft_{name}"] = {"kind": "pft", "x": x, "n": n, "method": "DL"}
    jobs["pft_k2_ee"] = {"kind": "pft", "x": [2, 5], "n": [20, 31], "method": "EE"}
    jobs["ee_md6"] = {"kind": "ee", "yi": YV["md6"][0], "vi": YV["md6"][1]}
    return jobs


@pytest.fixture(scope="module")
def r() -> dict:
    try:
        res = run_jobs(_jobs())
    except RAbsent as e:
        pytest.skip(f"R/metafor absent: {e}")
    errors = {k: v["error"] for k, v in res.items() if "error" in v}
    assert not errors, errors
    return res


def close(ours, theirs):
    np.testing.assert_allclose(
        np.atleast_1d(np.asarray(ours, float)),
        np.atleast_1d(np.asarray(theirs, float)),
        equal_nan=True,
        **TOL,
    )


def check_pooled(ours, ref, scale=1.0, tau_scale=1.0, weights=True):
    for f in ("estimate", "se", "ci_lower", "ci_upper"):
        close(getattr(ours, f), scale * np.asarray(ref[f]))
    for f in ("z", "p", "q", "i2"):
        close(getattr(ours, f), ref[f])
    close(ours.tau2, tau_scale * ref["tau2"])
    if ours.df > 0:
        close(ours.q_p, ref["q_p"])
    if weights:
        close(ours.weights, ref["weights"])


# --- effect sizes ----------------------------------------------------------------------------
def test_md_matches_escalc(r):
    close(_md.yi, r["md_escalc"]["yi"])
    close(_md.vi, r["md_escalc"]["vi"])


@pytest.mark.parametrize("name", list(RR))
def test_log_rr_zero_cell_rule_matches_escalc(r, name):
    es = log_risk_ratio(**RR[name])
    close(es.yi, r[f"esc_{name}"]["yi"])
    close(es.vi, r[f"esc_{name}"]["vi"])
    assert list(es.kept) == [not np.isnan(y) for y in np.atleast_1d(r[f"esc_{name}"]["yi"])]


# --- pooling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(YV))
def test_dersimonian_laird(r, name):
    y, v = YV[name]
    check_pooled(dersimonian_laird(y, v), r[f"dl_{name}"])


def test_fixed_effect(r):
    check_pooled(inverse_variance_fixed(*YV["md6"]), r["ee_md6"])


@pytest.mark.parametrize("name", list(RR))
def test_rr_random_iv_is_rma_dl(r, name):
    es = log_risk_ratio(**RR[name])
    ref_jobs = r[f"esc_{name}"]
    yi = np.atleast_1d(ref_jobs["yi"])
    ok = ~np.isnan(yi)
    ours = rr_random_effects(**RR[name], heterogeneity="iv")
    check_pooled(ours, _dl_py(es.yi[ok], es.vi[ok]))


def _dl_py(y, v):  # DL result as a dict, to compare rr_random_effects(iv) with plain DL
    d = dersimonian_laird(y, v).to_dict()
    return d


@pytest.mark.parametrize("name", list(RR))
def test_rr_random_mh_matches_metan_recipe_in_metafor(r, name):
    ours = rr_random_effects(**RR[name], heterogeneity="mh")
    check_pooled(ours, r[f"mh_{name}"])


# --- meta-regression -------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(METAREG))
def test_meta_regression_reml_adhoc(r, name):
    y, v, x = METAREG[name]
    ours, ref = meta_regression(y, v, x), r[name]
    close(ours.tau2, ref["tau2"])
    for f in ("coef", "se", "t", "p", "ci_lower", "ci_upper", "q_res", "q_res_p"):
        close(getattr(ours, f), ref[f])
    assert ours.df == ref["df"]


def test_metareg_cases_cover_kh_truncation():
    kh = {n: meta_regression(*METAREG[n]).kh_factor for n in METAREG}
    assert kh["mr_kh_gt_tau"] > 1 and kh["mr_kh_gt_tau0"] > 1
    assert kh["mr_kh_lt_tau"] == 1 and kh["mr_kh_lt_tau0"] == 1
    assert meta_regression(*METAREG["mr_kh_gt_tau"]).tau2 > 0


# --- proportions -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROPS))
def test_pooled_proportion_ft(r, name):
    x, n = PROPS[name]
    ref = r[f"pft_{name}"]
    es = freeman_tukey(x, n)
    close(es.yi, 2 * np.asarray(ref["yi"]))  # Stata's t is twice metafor's
    close(es.vi, 4 * np.asarray(ref["vi"]))
    res = pooled_proportion(x, n)
    assert res.model == "random"
    check_pooled(res.transformed, ref, scale=2.0, tau_scale=4.0)
    close(
        [res.proportion, res.ci_lower, res.ci_upper],
        [ref["proportion"], ref["prop_lower"], ref["prop_upper"]],
    )


def test_pooled_proportion_k2_falls_back_to_fixed_like_metaprop(r):
    res = pooled_proportion([2, 5], [20, 31])
    assert res.model == "fixed"
    ref = r["pft_k2_ee"]
    check_pooled(res.transformed, ref, scale=2.0, tau_scale=4.0)
    close(
        [res.proportion, res.ci_lower, res.ci_upper],
        [ref["proportion"], ref["prop_lower"], ref["prop_upper"]],
    )


# --- small-study effects ---------------------------------------------------------------------
RANK = [n for n in YV if len(YV[n][0]) >= 3 and n != "identical"]


@pytest.mark.parametrize("name", RANK)
def test_begg_tau_and_metafor_p(r, name):
    res, ref = begg_test(*YV[name]), r[f"rank_{name}"]
    close(res.tau_b, ref["tau"])
    close(res.p_metafor, ref["p"])


@pytest.mark.parametrize("name", RANK)
def test_egger_equals_regtest_lm(r, name):
    res, ref = egger_test(*YV[name]), r[f"reg_{name}"]
    close(res.t, ref["t"])
    close(res.p, ref["p"])
    close(res.slope, ref["slope"])
    assert res.df == ref["df"]


# --- leave-one-out ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in YV if len(YV[n][0]) >= 2])
def test_leave_one_out(r, name):
    rows, ref = leave_one_out(*YV[name]), r[f"l1o_{name}"]
    for f in ("estimate", "se", "z", "p", "ci_lower", "ci_upper", "q", "tau2", "i2"):
        close([getattr(x, f) for x in rows], ref[f])
    if all(x.df > 0 for x in rows):
        close([x.q_p for x in rows], ref["q_p"])
