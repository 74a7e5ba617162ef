"""Unit tests of metabuild.stats that need no R: hand-computed values, edge cases, the paper's
dose classes and sample sizes, and the statsmodels negative-tau^2 problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from metabuild.stats.bias import begg_test, egger_test
from metabuild.stats.effects import log_risk_ratio, mean_difference, zero_cell_corrected
from metabuild.stats.metareg import meta_regression, reml_tau2
from metabuild.stats.pooling import (
    cochran_q,
    dersimonian_laird,
    inverse_variance_fixed,
    mantel_haenszel_log_rr,
    rr_random_effects,
)
from metabuild.stats.power import sample_size_two_means
from metabuild.stats.proportions import (
    freeman_tukey,
    harmonic_mean,
    miller_inverse,
    pooled_proportion,
    wilson_ci,
)
from metabuild.stats.sensitivity import leave_one_out, leave_one_out_rr


# --- effects ---------------------------------------------------------------------------------
def test_mean_difference_by_hand():
    es = mean_difference([5], [2], [10], [3], [1], [20])
    assert es.yi[0] == 2 and es.vi[0] == pytest.approx(0.4 + 0.05)


def test_zero_cell_rule():
    a, n1, c, n2, kept = zero_cell_corrected([0, 3, 0, 5, 0], [10, 10, 10, 5, 0], [2, 4, 0, 5, 1], [10, 10, 10, 5, 8])
    assert list(kept) == [True, True, False, False, False]  # double zero, double all, empty arm
    assert (a[0], n1[0], c[0], n2[0]) == (0.5, 11, 2.5, 11)
    assert (a[1], n1[1]) == (3, 10)
    es = log_risk_ratio([0], [10], [2], [10])
    assert es.yi[0] == pytest.approx(math.log((0.5 / 11) / (2.5 / 11)))
    assert es.vi[0] == pytest.approx(1 / 0.5 - 1 / 11 + 1 / 2.5 - 1 / 11)


# --- pooling ---------------------------------------------------------------------------------
def test_dl_by_hand_heterogeneous():
    r = dersimonian_laird([0.0, 2.0], [1.0, 1.0])
    # Q = 2, C = 2 - 2/2 = 1, tau2 = 1, w* = 1/2 each
    assert (r.q, r.tau2, r.estimate, r.se, r.i2) == pytest.approx((2.0, 1.0, 1.0, 1.0, 50.0))
    assert r.p == pytest.approx(2 * stats.norm.sf(1.0))
    assert r.weights == pytest.approx((50.0, 50.0))


def test_dl_tau2_floored_when_q_below_df():
    r = dersimonian_laird([0.0, 1.0], [1.0, 1.0])  # Q = 0.5 < df = 1
    assert r.tau2 == 0 and r.i2 == 0
    assert r.estimate == pytest.approx(0.5) and r.se == pytest.approx(1 / math.sqrt(2))
    fe = inverse_variance_fixed([0.0, 1.0], [1.0, 1.0])
    assert (r.estimate, r.se) == pytest.approx((fe.estimate, fe.se))


def test_dl_single_study_is_the_study():
    r = dersimonian_laird([-1.5], [0.25])
    assert (r.estimate, r.se, r.tau2, r.q, r.df, r.i2, r.weights) == (-1.5, 0.5, 0.0, 0.0, 0, 0.0, (100.0,))
    assert math.isnan(r.q_p)


def test_dl_identical_studies():
    r = dersimonian_laird([1.0, 1.0, 1.0], [0.2, 0.2, 0.2])
    assert r.q == 0 and r.tau2 == 0 and r.i2 == 0 and r.q_p == pytest.approx(1.0)


def test_dl_rejects_bad_input():
    with pytest.raises(ValueError):
        dersimonian_laird([1.0, 2.0], [0.1, 0.0])
    with pytest.raises(ValueError):
        dersimonian_laird([], [])


def test_statsmodels_combine_effects_negative_tau2():
    """statsmodels 0.15 combine_effects(method_re="dl") still does not floor tau2 at 0: with
    Q < df it returns tau2 < 0 and a negative random-effects weight (why pooling.py is
    hand-written). If this test starts failing, statsmodels has fixed it: update
    docs/statistics.md."""
    from statsmodels.stats.meta_analysis import combine_effects

    y, v = np.array([0.10, 0.12, 0.11]), np.array([0.5, 0.6, 0.4])
    sm = combine_effects(y, v, method_re="dl")
    assert sm.tau2 < 0
    assert np.min(sm.weights_rel_re if hasattr(sm, "weights_rel_re") else sm.summary_frame()["w_re"][:3]) < 0
    assert dersimonian_laird(y, v).tau2 == 0


def test_mantel_haenszel_by_hand():
    # one table: RR_MH is the table's RR
    assert mantel_haenszel_log_rr([3], [10], [6], [12]) == pytest.approx(math.log((3 / 10) / (6 / 12)))


def test_rr_random_mh_vs_iv_and_single_study():
    d = dict(a=[5, 0, 8, 0], n1=[20, 15, 30, 10], c=[2, 3, 4, 0], n2=[20, 15, 30, 10])
    mh, iv = rr_random_effects(**d), rr_random_effects(**d, heterogeneity="iv")
    es = log_risk_ratio(**d)
    y, v = es.yi[es.kept], es.vi[es.kept]
    a_, n1_, c_, n2_, kept = zero_cell_corrected(**d)
    centre = mantel_haenszel_log_rr(a_[kept], n1_[kept], c_[kept], n2_[kept])
    assert mh.q == pytest.approx(cochran_q(y, v, centre)) and mh.q != pytest.approx(iv.q)
    assert mh.k == 3 and len(mh.weights) == 3
    one = rr_random_effects([4, 0], [20, 10], [1, 0], [21, 10])
    assert one.k == 1 and one.estimate == pytest.approx(math.log((4 / 20) / (1 / 21)))
    with pytest.raises(ValueError):
        rr_random_effects([0], [10], [0], [10])
    with pytest.raises(ValueError):
        rr_random_effects([1], [10], [1], [10], heterogeneity="xx")


# --- meta-regression -------------------------------------------------------------------------
def test_metareg_two_studies_one_per_level():
    m = meta_regression([-1.0, -2.0], [0.3, 0.4], [0, 1])
    assert m.df == 0 and m.tau2 == 0 and m.kh_factor == 1
    assert m.coef == pytest.approx((-1.0, -1.0))
    assert m.se[1] == pytest.approx(math.sqrt(0.7))
    assert math.isnan(m.moderator_p) and math.isnan(m.ci_lower[1])


def test_metareg_binary_moderator_with_tau2_zero_is_weighted_subgroup_difference():
    y, v, x = [-1.0, -1.1, -0.9, -1.05], [0.3, 0.4, 0.35, 0.5], [0, 0, 1, 1]
    m = meta_regression(y, v, x)
    assert m.tau2 == 0
    g0 = inverse_variance_fixed(y[:2], v[:2])
    g1 = inverse_variance_fixed(y[2:], v[2:])
    assert m.coef[1] == pytest.approx(g1.estimate - g0.estimate)
    assert m.se[1] == pytest.approx(math.hypot(g0.se, g1.se) * math.sqrt(m.kh_factor))


def test_reml_tau2_constant_only_positive():
    assert reml_tau2([0.0, 2.0, -1.0, 3.0], [0.1, 0.1, 0.1, 0.1], np.ones((4, 1))) > 0


def test_metareg_rejects_constant_moderator():
    with pytest.raises(ValueError):
        meta_regression([1.0, 2.0, 3.0], [0.1, 0.1, 0.1], [1, 1, 1])


# --- proportions -----------------------------------------------------------------------------
def test_freeman_tukey_and_miller():
    es = freeman_tukey([0, 5], [20, 20])
    assert es.yi[0] == pytest.approx(math.asin(math.sqrt(1 / 21)))
    assert es.vi == pytest.approx([1 / 20.5, 1 / 20.5])
    # back-transform: limits map to 0 and 1; interior close to x/n
    assert miller_inverse(freeman_tukey(0, 30).yi, 30)[0] == 0
    assert miller_inverse(freeman_tukey(30, 30).yi, 30)[0] == 1
    assert miller_inverse(freeman_tukey(12, 40).yi, 40)[0] == pytest.approx(0.3, abs=2e-3)
    assert miller_inverse([-0.5, 4.0], 30).tolist() == [0.0, 1.0]
    assert harmonic_mean([10, 40]) == pytest.approx(16.0)


def test_wilson_ci_is_metaprop_score_formula():
    x, n, z = np.array([0, 3, 20]), np.array([20, 25, 20]), stats.norm.ppf(0.975)
    p = x / n
    mid, half = p + z**2 / (2 * n), z * np.sqrt((p * (1 - p) + z**2 / (4 * n)) / n)
    lo, hi = wilson_ci(x, n)
    assert lo == pytest.approx(np.clip((mid - half) / (1 + z**2 / n), 0, 1))
    assert hi == pytest.approx(np.clip((mid + half) / (1 + z**2 / n), 0, 1))


def test_pooled_proportion_model_choice():
    assert pooled_proportion([1, 2], [10, 12]).model == "fixed"
    assert pooled_proportion([1, 2], [10, 12], min_k_random=1).model == "random"
    r = pooled_proportion([0, 0, 0], [10, 12, 15])
    assert r.proportion == 0 and r.ci_lower == 0 and 0 < r.ci_upper < 0.2


# --- bias ------------------------------------------------------------------------------------
def test_begg_stata_formula_by_hand():
    y, v = [0.1, 0.5, 0.9, 1.3], [0.1, 0.2, 0.3, 0.4]
    b = begg_test(y, v)
    assert b.score == 6  # all pairs concordant
    sd = math.sqrt(4 * 3 * 13 / 18)
    assert b.score_sd == pytest.approx(sd)
    assert b.p_cc == pytest.approx(2 * stats.norm.sf(5 / sd))
    assert b.tau_a == 1 and b.tau_b == 1
    assert b.p_metafor == pytest.approx(2 / 24)  # exact: 1 of 4! orderings at each extreme


def test_egger_by_hand():
    y, v = np.array([-1.0, -0.6, -1.4, -0.2, -1.1]), np.array([0.2, 0.1, 0.4, 0.05, 0.3])
    se = np.sqrt(v)
    X = np.column_stack([np.ones(5), 1 / se])
    beta, *_ = np.linalg.lstsq(X, y / se, rcond=None)
    e = egger_test(y, v)
    assert (e.bias, e.slope, e.df) == pytest.approx((beta[0], beta[1], 3))
    with pytest.raises(ValueError):
        egger_test(y[:2], v[:2])


# --- sensitivity -----------------------------------------------------------------------------
def test_leave_one_out_shapes():
    rows = leave_one_out([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    assert [r.k for r in rows] == [2, 2, 2]
    assert rows[2].estimate == pytest.approx(1.0)  # without study 3: studies 0 and 2
    rr = leave_one_out_rr([5, 0, 8], [20, 15, 30], [2, 3, 4], [20, 15, 30])
    assert len(rr) == 3 and rr[0].k == 2


# --- power -----------------------------------------------------------------------------------
def test_sample_size_paper_values():
    # Stata `power twomeans 0 1, sd(2) power(.9)` -> 86; `power twomeans 0 1.5, sd(2) power(.9)` -> 39
    one, one_half = sample_size_two_means(1.0, 2.0), sample_size_two_means(1.5, 2.0)
    assert (one.n_per_group, one_half.n_per_group) == (86, 39)
    assert (
        sample_size_two_means(1.0, 2.0, test="z").n_per_group,
        sample_size_two_means(1.5, 2.0, test="z").n_per_group,
    ) == (85, 38)


# --- dose ------------------------------------------------------------------------------------
TABLE1 = {  # study: (kwargs, expected mg, class)
    "amr": (dict(rate=0.22, rate_unit="mg/kg/h", hours_total=35), 539.0, "high"),
    "eichenberger": (dict(rate=0.4, rate_unit="mg/kg/h", hours_total=1), 28.0, "low"),
    "schwartzman": (dict(rate=0.35, rate_unit="mg/kg/h", hours_total=40, cap_mg_per_h=25), 980.0, "high"),
    "sigtermans": (dict(rate=0.32, rate_unit="mg/kg/h", hours_total=100), 2240.0, "high"),
    "noppers": (dict(rate=0.5, rate_unit="mg/kg"), 35.0, "low"),
    "mitchell": (dict(rate=0.6, rate_unit="mg/kg"), 42.0, "low"),
    "salas": (dict(rate=0.5, rate_unit="mg/kg/d", days=1), 35.0, "low"),
}


def _review_module():
    """The ketamine review's own module (config/config.yaml: review_module), where the dose lives."""
    from pathlib import Path

    from metabuild import review

    return review.module({"review_module": str(Path(__file__).resolve().parents[1] / "config" / "review_module.py")})


def cumulative_dose_mg(*args, **kwargs):
    return _review_module().cumulative_dose_mg(*args, **kwargs)


def dose_class(*args, **kwargs):
    return _review_module().dose_class(*args, **kwargs)


@pytest.mark.parametrize("study", list(TABLE1))
def test_dose_classes_of_table1(study):
    kw, mg, cls = TABLE1[study]
    dose = cumulative_dose_mg(**kw)
    assert dose == pytest.approx(mg)
    assert dose_class(dose) == cls


def test_dose_cap_and_threshold():
    assert cumulative_dose_mg(1.0, "mg/kg/h", hours_total=10, cap_mg_per_h=25) == 250
    assert dose_class(400) == "high" and dose_class(399.99) == "low"
    with pytest.raises(ValueError):
        cumulative_dose_mg(1.0, "mg/kg/h")
    with pytest.raises(ValueError):
        cumulative_dose_mg(1.0, "mg/min")  # type: ignore[arg-type]


# --- effect measures and pooling methods declared in configuration (issue 13) -----------------
from metabuild.stats import effects as _effects  # noqa: E402
from metabuild.stats import measures as _measures  # noqa: E402
from metabuild.stats import pooling as _pooling  # noqa: E402
from metabuild.stats import proportions as _proportions  # noqa: E402


def test_smd_by_hand_exact_hedges_correction():
    es = _effects.standardized_mean_difference([5.0], [2.0], [4], [3.0], [2.0], [3])
    m = 5
    c = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    assert es.yi[0] == pytest.approx(c * 1.0, rel=1e-14)  # d = (5 - 3) / 2
    assert es.vi[0] == pytest.approx(1 / 4 + 1 / 3 + es.yi[0] ** 2 / 14, rel=1e-14)
    # the exact factor is not the usual approximation 1 - 3/(4m - 1) at small m
    assert abs(c - (1 - 3 / (4 * m - 1))) > 1e-3
    assert _effects.hedges_correction([1000.0])[0] == pytest.approx(1 - 3 / 3999, abs=1e-7)


def test_or_rd_by_hand_with_zero_cells():
    es = _effects.log_odds_ratio([0, 2], [10, 10], [3, 4], [10, 12])
    assert es.yi[0] == pytest.approx(math.log(0.5 * 7.5 / (10.5 * 3.5)))  # 1/2 added to all four cells
    assert es.vi[0] == pytest.approx(1 / 0.5 + 1 / 10.5 + 1 / 3.5 + 1 / 7.5)
    assert es.yi[1] == pytest.approx(math.log(2 * 8 / (8 * 4)))  # no zero: untouched
    rd = _effects.risk_difference([0, 0], [10, 10], [0, 5], [10, 10])
    assert rd.yi[0] == 0 and rd.kept.all()  # a double zero is kept (escalc's drop00=FALSE)
    assert rd.vi[0] == pytest.approx(2 * (0.5 / 11) * (10.5 / 11) / 11)
    assert rd.yi[1] == pytest.approx(0.5 / 11 - 5.5 / 11)
    dropped = _effects.log_odds_ratio([0, 1], [10, 10], [0, 2], [10, 10], drop00=True)
    assert list(dropped.kept) == [False, True] and math.isnan(dropped.yi[0])


def test_single_proportions_by_hand():
    pr = _proportions.raw_proportion([0, 3], [10, 12])
    assert pr.yi[0] == pytest.approx(0.5 / 11) and pr.vi[0] == pytest.approx((0.5 / 11) * (10.5 / 11) / 11)
    assert pr.yi[1] == 0.25 and pr.vi[1] == pytest.approx(0.25 * 0.75 / 12)
    plo = _proportions.logit_proportion([12, 3], [12, 12])
    assert plo.yi[0] == pytest.approx(math.log(12.5 / 0.5)) and plo.vi[0] == pytest.approx(1 / 12.5 + 1 / 0.5)
    assert plo.yi[1] == pytest.approx(math.log(3 / 9)) and plo.vi[1] == pytest.approx(1 / 3 + 1 / 9)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _effects.log_odds_ratio([12], [10], [1], [10]), "study 0: a = 12 events exceed n1 = 10"),
        (lambda: _effects.risk_difference([1, 0], [10, 0], [1, 0], [10, 5]), "n1 of study 1 is 0"),
        (lambda: _effects.log_odds_ratio([1], [10], [-1], [10]), "c of study 0 is -1"),
        (lambda: _effects.risk_difference([1.5], [10], [1], [10]), "whole numbers"),
        (lambda: _effects.log_odds_ratio([1], [10], [1], [10], add=0), "must be positive"),
        (lambda: _effects.standardized_mean_difference([1], [1], [2], [0], [1], [1]), "at least 4 patients"),
        (lambda: _effects.standardized_mean_difference([1], [0], [5], [0], [0], [5]), "pooled standard deviation"),
        (lambda: _effects.standardized_mean_difference([1], [-1], [5], [0], [1], [5]), "sd1 of study 0"),
        (lambda: _proportions.raw_proportion([4], [3]), "x = 4 events exceed n = 3"),
        (lambda: _proportions.logit_proportion([1], [0]), "n of study 0 is 0"),
        (lambda: _pooling.meta_analysis([1, 2], [1, 1], method="ML"), "unknown pooling method 'ML'"),
        (lambda: _pooling.meta_analysis([1, 2], [1, 1], test="t"), "unknown test 't'"),
        (lambda: _pooling.meta_analysis([1, 2], [1, 0], method="PM"), "vi of study 1"),
        (lambda: _measures.measure("HR"), "unknown effect measure 'HR'"),
    ],
)
def test_impossible_input_is_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_meta_analysis_dl_and_ee_are_the_existing_functions():
    y, v = [-0.9, -1.6, -0.2, -2.4, -1.1], [0.05, 0.30, 0.02, 0.55, 0.12]
    assert _pooling.meta_analysis(y, v, "DL") == dersimonian_laird(y, v)
    ee = _pooling.meta_analysis(y, v, "EE")
    assert ee == _pooling.meta_analysis(y, v, "FE")  # metafor's former name
    assert ee.to_dict() | {"method": "EE"} == inverse_variance_fixed(y, v).to_dict()
    assert ee.h2 == pytest.approx(ee.q / 4) and ee.tau2 == 0


def test_pm_and_reml_solve_their_equations():
    y = np.array([-0.9, -1.6, -0.2, -2.4, -1.1, -0.5])
    v = np.array([0.05, 0.30, 0.02, 0.55, 0.12, 0.04])
    pm = _pooling.tau2_paule_mandel(y, v)
    assert pm > 0 and _pooling.generalised_q(pm, y, v) == pytest.approx(y.size - 1, rel=1e-12)
    reml = _pooling.tau2_reml(y, v)
    w = 1 / (v + reml)
    mu = np.sum(w * y) / np.sum(w)
    score = np.sum(w**2 * (y - mu) ** 2) - (np.sum(w) - np.sum(w**2) / np.sum(w))
    assert reml > 0 and abs(score) < 1e-9 * np.sum(w)
    assert _pooling.tau2_dersimonian_laird(y, v) == dersimonian_laird(y, v).tau2


def test_knha_by_hand_and_single_study():
    y, v = np.array([-1.0, -2.2, -0.4]), np.array([0.3, 0.25, 0.2])
    z = _pooling.meta_analysis(y, v, "REML")
    hk = _pooling.meta_analysis(y, v, "REML", test="knha")
    q = np.sum((y - z.estimate) ** 2 / (v + z.tau2)) / 2
    assert hk.se == pytest.approx(z.se * math.sqrt(q), rel=1e-12) and hk.test == "knha"
    assert hk.ci_upper - hk.estimate == pytest.approx(stats.t.ppf(0.975, 2) * hk.se, rel=1e-12)
    assert hk.p == pytest.approx(2 * stats.t.sf(abs(hk.estimate / hk.se), 2), rel=1e-12)
    one = _pooling.meta_analysis([-1.0], [0.2], "PM", test="knha")
    assert one.test == "z" and one.se == pytest.approx(math.sqrt(0.2)) and one.h2 == 1 and one.i2 == 0


def test_measure_and_method_names_match_the_config_schema():
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[1] / "config" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(path.read_text())["$defs"]["analysis"]["properties"]
    two_group = {name for name, m in _measures.MEASURES.items() if m.data != "proportion"}
    assert set(schema["measure"]["enum"]) == two_group
    assert tuple(schema["method"]["enum"]) == _pooling.METHODS
    assert tuple(schema["test"]["enum"]) == _pooling.TESTS


def test_analysis_dispatch_uses_config_measure_method_and_test():
    """analysis._fit pools what the configuration names: OR by REML with Hartung-Knapp here."""
    import pandas as pd

    from metabuild import analysis

    wide = pd.DataFrame(
        {
            "events_ketamine": [4, 6, 3, 17, 0],
            "n_ketamine": [123, 306, 231, 13598, 40],
            "events_control": [11, 29, 11, 29, 2],
            "n_control": [139, 303, 220, 12867, 41],
        },
        index=["s1", "s2", "s3", "s4", "s5"],
    )
    wide.attrs["arms"] = ("ketamine", "control")  # as analysis._wide records the review's arms
    out = analysis._fit(wide, "OR", {"method": "REML", "test": "knha"})
    es = _effects.log_odds_ratio(wide["events_ketamine"], wide["n_ketamine"], wide["events_control"], wide["n_control"])
    fit = _pooling.meta_analysis(es.yi, es.vi, "REML", "knha")
    assert out["estimate"] == pytest.approx(math.exp(fit.estimate), rel=1e-15)
    assert out["log_ci_upper"] == fit.ci_upper and out["method"] == "REML" and out["test"] == "knha"
    # RR by DL with the z-test stays Stata metan's M-H Q; by PM it is metafor's rma(method="PM")
    stata = analysis._fit(wide, "RR", {"method": "DL"})
    assert stata["q"] == rr_random_effects(*(wide[c] for c in wide.columns)).q
    pm = analysis._fit(wide, "RR", {"method": "PM"})
    rr = log_risk_ratio(*(wide[c] for c in wide.columns))
    assert pm["tau2"] == _pooling.tau2_paule_mandel(rr.yi[rr.kept], rr.vi[rr.kept])
    with pytest.raises(ValueError, match="single-group measure"):
        analysis._study_effects(wide, "PLO")
