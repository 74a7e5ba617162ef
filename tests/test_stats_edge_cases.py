"""The statistics on odd input (issue 11): each check either refuses the input with a message
naming what is wrong, or returns NaN with the reason in ``note``; never a crash or a silent
number. Where metafor gives a value on a valid edge input, it is compared (tests/r_oracle.py;
all R work of this module runs in one Rscript process, fixture ``r``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from r_oracle import RAbsent, run_jobs

from metabuild import analysis
from metabuild.stats import bias, consistency, metareg, pooling, proportions, sensitivity
from metabuild.stats.bias import begg_test, egger_test
from metabuild.stats.effects import log_risk_ratio, mean_difference, zero_cell_corrected
from metabuild.stats.metareg import meta_regression, reml_tau2
from metabuild.stats.pooling import dersimonian_laird, inverse_variance_fixed, rr_random_effects
from metabuild.stats.sensitivity import leave_one_out, leave_one_out_rr

TOL = dict(rtol=1e-6, atol=1e-6)


# --- synthetic data sets (fixed seeds) -------------------------------------------------------
def _yv(k: int, seed: int) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 1.0, k)
    y = rng.normal(-1.0, 0.5, k) + rng.normal(0, np.sqrt(v))
    return list(y), list(v)


BIG = _yv(300, 11)  # beyond metafor's exact Kendall P (NaN in R from about k = 200)
MID = _yv(40, 14)  # for metafor's leave1out, which refits k times (about 90 ms per fit)
K49, K50 = _yv(49, 12), _yv(50, 13)
MOD300 = [float(i % 2) for i in range(300)]
_rng = np.random.default_rng(5)
HUGE_X = [float(i % 2) for i in range(40)]
HUGE_V = list(1e14 * _rng.uniform(0.1, 1.0, 40))
HUGE_Y = list(1e7 * (_rng.normal(size=40) + np.array(HUGE_X)))  # REML tau2 about 1e13-1e14
# leave-one-out of metan's rr random where omitting study 0 leaves no informative study
RR_ONE_INFORMATIVE = dict(a=[3, 0, 0], n1=[20, 10, 12], c=[1, 0, 0], n2=[21, 10, 12])


def _jobs() -> dict:
    jobs: dict = {
        "rank_big_normal": {"kind": "ranktest", "yi": BIG[0], "vi": BIG[1], "exact": False},
        "rank_k49": {"kind": "ranktest", "yi": K49[0], "vi": K49[1], "exact": True},
        "rank_k50": {"kind": "ranktest", "yi": K50[0], "vi": K50[1], "exact": False},
        "reg_big": {"kind": "regtest", "yi": BIG[0], "vi": BIG[1]},
        "rank_dominant": {"kind": "ranktest", "yi": [0.0, 1.0, 2.0, 1.5], "vi": [1e-20, 1.0, 2.0, 1.5]},
        "reg_equal_se": {"kind": "regtest", "yi": [1.0, 2.0, 3.0, 2.5], "vi": [0.2, 0.2, 0.2, 0.2]},
        "l1o_mid": {"kind": "leave1out", "yi": MID[0], "vi": MID[1]},
        "l1o_mid_ee": {"kind": "leave1out", "yi": MID[0], "vi": MID[1], "method": "EE"},
        "mr_big": {"kind": "metareg", "yi": BIG[0], "vi": BIG[1], "x": MOD300},
        # metafor's Fisher scoring does not converge on the raw scale: it fits y/1e7, v/1e14
        "mr_huge_rescaled": {
            "kind": "metareg",
            "yi": [y / 1e7 for y in HUGE_Y],
            "vi": [v / 1e14 for v in HUGE_V],
            "x": HUGE_X,
        },
        "esc_one_informative": {"kind": "rr", **RR_ONE_INFORMATIVE},
        "rr_events_above_n": {"kind": "rr", "a": [5, 12], "n1": [10, 10], "c": [2, 3], "n2": [10, 10]},
        "rr_negative": {"kind": "rr", "a": [-1, 2], "n1": [10, 10], "c": [2, 3], "n2": [10, 10]},
    }
    return jobs


@pytest.fixture(scope="module")
def r() -> dict:
    try:
        return run_jobs(_jobs())
    except RAbsent as e:
        pytest.skip(f"R/metafor absent: {e}")


def close(ours, theirs, **tol):
    np.testing.assert_allclose(
        np.atleast_1d(np.asarray(ours, float)), np.atleast_1d(np.asarray(theirs, float)), equal_nan=True, **(tol or TOL)
    )


# --- effect sizes: counts validated as metafor's escalc does ---------------------------------
@pytest.mark.parametrize(
    "counts, message",
    [
        (dict(a=[5, 12], n1=[10, 10], c=[2, 3], n2=[10, 10]), "study 1: a = 12 events exceed n1 = 10"),
        (dict(a=[5, 2], n1=[10, 10], c=[2, 11], n2=[10, 10]), "study 1: c = 11 events exceed n2 = 10"),
        (dict(a=[-1, 2], n1=[10, 10], c=[2, 3], n2=[10, 10]), "a of study 0 is -1: counts cannot be negative"),
        (dict(a=[1, 2], n1=[10, -10], c=[2, 3], n2=[10, 10]), "n1 of study 1 is -10"),
        (dict(a=[1.5, 2], n1=[10, 10], c=[2, 3], n2=[10, 10]), "a of study 0 is 1.5: counts must be whole"),
        (dict(a=[1, 2], n1=[10, 10], c=[2, math.nan], n2=[10, 10]), "c of study 1 is nan"),
        (dict(a=[1, 2], n1=[10, 10], c=[2], n2=[10, 10]), "c has 1"),
    ],
)
def test_rr_counts_refused_with_study_named(counts, message):
    for fn in (log_risk_ratio, zero_cell_corrected, rr_random_effects, leave_one_out_rr):
        with pytest.raises(ValueError, match=message):
            fn(**counts)


def test_metafor_refuses_the_same_counts(r):
    assert "larger than the corresponding group sizes" in r["rr_events_above_n"]["error"]
    assert "negative" in r["rr_negative"]["error"]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(sd1=[-1.0, 2.0]), "sd1 of study 0 is -1: standard deviations cannot be negative"),
        (dict(n2=[10, 0]), "n2 of study 1 is 0: group sizes must be positive"),
        (dict(m1=[math.nan, 4.0]), "m1 of study 0 is nan"),
    ],
)
def test_mean_difference_refuses_what_escalc_refuses(change, message):
    args = dict(m1=[3.0, 4.0], sd1=[1.0, 2.0], n1=[10, 12], m2=[5.0, 5.0], sd2=[1.5, 2.0], n2=[11, 12])
    args.update(change)
    with pytest.raises(ValueError, match=message):
        mean_difference(**args)


def test_freeman_tukey_refuses_events_above_n():
    with pytest.raises(ValueError, match="study 1: x = 11 events exceed n = 10"):
        proportions.freeman_tukey([1, 11], [10, 10])
    with pytest.raises(ValueError, match="x of study 0 is nan"):
        proportions.freeman_tukey([math.nan, 1], [10, 10])


# --- level ------------------------------------------------------------------------------------
Y3, V3 = [-1.0, -1.6, -0.4, -1.2], [0.2, 0.3, 0.25, 0.4]


@pytest.mark.parametrize(
    "call",
    [
        lambda lv: dersimonian_laird(Y3, V3, level=lv),
        lambda lv: inverse_variance_fixed(Y3, V3, level=lv),
        lambda lv: rr_random_effects([3, 4], [10, 10], [1, 2], [10, 10], level=lv),
        lambda lv: leave_one_out(Y3, V3, level=lv),
        lambda lv: leave_one_out_rr([3, 4], [10, 10], [1, 2], [10, 10], level=lv),
        lambda lv: egger_test(Y3, V3, level=lv),
        lambda lv: meta_regression(Y3, V3, [0, 0, 1, 1], level=lv),
        lambda lv: proportions.pooled_proportion([1, 2, 3], [10, 10, 10], level=lv),
        lambda lv: consistency.check_p("-0.5", "-1.2", "0.2", "P = .16", level=lv),
        lambda lv: consistency.se_z_p_from_ci(-0.5, -1.2, 0.2, level=lv),
    ],
)
@pytest.mark.parametrize("level", [95, 0.0, 1.0, math.nan])
def test_level_outside_zero_one_is_an_error(call, level):
    """level=95 used to give NaN CIs silently."""
    with pytest.raises(ValueError, match="level must be"):
        call(level)


# --- pooling ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "y, v, message",
    [
        ([1.0, math.nan], [0.1, 0.2], "yi of study 1 is nan"),
        ([1.0, 2.0], [0.1, math.inf], "vi of study 1 is inf"),
        ([1.0, 2.0], [-0.1, 0.2], "vi of study 0 is -0.1"),
        ([1.0, 2.0, 3.0], [0.1, 0.2], "yi has 3, vi has 2"),
    ],
)
def test_pooling_names_the_bad_study(y, v, message):
    for fn in (dersimonian_laird, inverse_variance_fixed, leave_one_out, begg_test, meta_regression):
        args = (y, v, [0, 1, 0][: len(y)]) if fn is meta_regression else (y, v)
        with pytest.raises(ValueError, match=message):
            fn(*args)


def test_dl_refuses_negative_q():
    with pytest.raises(ValueError, match="Q must be finite and not negative"):
        dersimonian_laird(Y3, V3, q=-1.0)


@pytest.mark.parametrize("y, v", [([0.0, 1.0, 3.0], [1e-20, 1.0, 2.0]), ([0.0, 1.0], [1e-16, 1.0])])
def test_dl_tau2_with_one_dominant_weight_is_exact(y, v):
    """sum w - sum w^2 / sum w cancelled to 0 when one variance was 1e16 times smaller: tau2
    NaN or inf (metafor, with the same subtraction, gives tau2 0.556 for the first case; the
    exact value is 7/6)."""
    from fractions import Fraction

    w = [1 / Fraction(x) for x in v]
    s = sum(w)
    centre = sum(wi * Fraction(yi) for wi, yi in zip(w, y, strict=True)) / s
    q = sum(wi * (Fraction(yi) - centre) ** 2 for wi, yi in zip(w, y, strict=True))
    exact = max(Fraction(0), (q - (len(y) - 1)) / (s - sum(wi * wi for wi in w) / s))
    res = dersimonian_laird(y, v)
    assert res.tau2 == pytest.approx(float(exact), rel=1e-12, abs=0 if exact else 1e-300)
    assert math.isfinite(res.estimate) and math.isfinite(res.se)
    assert leave_one_out(y + [2.0], v + [1.5])[-1].tau2 == res.tau2  # the same core in leave-one-out


def test_rr_random_effects_without_informative_study_says_why():
    with pytest.raises(ValueError, match="no informative study: every study has no events in both arms"):
        rr_random_effects([0, 0], [10, 5], [0, 0], [10, 5])


# --- Egger -----------------------------------------------------------------------------------
def test_egger_equal_standard_errors_is_nan_with_note(r):
    """sm.add_constant skipped the intercept for a constant 1/se and indexing raised IndexError."""
    e = egger_test([1.0, 2.0, 3.0, 2.5], [0.2, 0.2, 0.2, 0.2])
    assert e.note is not None and "standard errors are equal" in e.note
    assert all(math.isnan(x) for x in (e.bias, e.se_bias, e.t, e.p, e.ci_lower, e.ci_upper, e.slope))
    assert (e.k, e.df) == (4, 2)
    assert "full rank" in r["reg_equal_se"]["error"]  # metafor refuses the fit
    nearly = egger_test([1.0, 2.0, 3.0], [0.2, 0.2, 0.2 * (1 + 1e-9)])  # below lm's 1e-7 tolerance
    assert nearly.note is not None and math.isnan(nearly.p)


def test_egger_identical_effects_is_not_rounding_noise():
    """Identical effects gave bias ~5e-16 with a P of .34 computed from rounding noise."""
    e = egger_test([-0.7] * 5, [0.1, 0.2, 0.3, 0.7, 1.1])
    assert e.bias == 0.0 and e.se_bias == 0.0 and e.slope == pytest.approx(-0.7)
    assert math.isnan(e.t) and math.isnan(e.p) and math.isnan(e.ci_lower)
    assert "perfect fit" in e.note


def test_egger_ordinary_result_has_no_note():
    e = egger_test(Y3, V3)
    assert e.note is None and "note" not in e.to_dict() and math.isfinite(e.p)


def test_egger_large_k_matches_regtest(r):
    e, ref = egger_test(*BIG), r["reg_big"]
    close([e.t, e.p, e.slope], [ref["t"], ref["p"], ref["slope"]])
    assert e.df == ref["df"]


# --- Begg ------------------------------------------------------------------------------------
def _brute_force_score(x, y) -> float:
    x, y = np.asarray(x), np.asarray(y)
    i, j = np.triu_indices(x.size, 1)
    return float(np.sum(np.sign((x[i] - x[j]) * (y[i] - y[j]))))


@pytest.mark.parametrize(
    "y, v",
    [BIG, K50, ([-1.0, -2.0, -0.5, -1.5, -3.0, -0.2, -1.0], [0.2, 0.2, 0.4, 0.3, 0.6, 0.1, 0.2])],
)
def test_begg_score_from_kendalltau_equals_pair_sum(y, v):
    b = begg_test(y, v)
    assert b.score == _brute_force_score(v, bias._standardized(np.asarray(y), np.asarray(v)))


def test_begg_identical_effects_tau_undefined():
    """Five identical effects gave tau = 1 and P = .017 from the ranks of rounding noise."""
    b = begg_test([0.3] * 5, [0.1, 0.2, 0.3, 0.7, 1.1])
    assert b.score == 0 and math.isnan(b.tau_b) and math.isnan(b.p_metafor)
    assert "standardized effects are equal" in b.note
    assert b.p_cc == 1.0  # Stata's rule for S = 0
    same_v = begg_test([0.1, 0.5, 0.2], [0.3, 0.3, 0.3])
    assert math.isnan(same_v.tau_b) and "variances are equal" in same_v.note


def test_begg_with_one_dominant_weight_is_finite(r):
    """v_i - 1/sum w cancelled to 0 for a study with variance 1e-20: division by zero, t = inf."""
    y, v = [0.0, 1.0, 2.0, 1.5], [1e-20, 1.0, 2.0, 1.5]
    ts = bias._standardized(np.asarray(y), np.asarray(v))
    assert np.all(np.isfinite(ts))
    b = begg_test(y, v)
    close([b.tau_b, b.p_metafor], [r["rank_dominant"]["tau"], r["rank_dominant"]["p"]])


def test_begg_exact_p_only_below_50_studies(r):
    """metafor's ranktest asks for the exact P at any k (R gives NaN from about k = 200)."""
    b49, b50 = begg_test(*K49), begg_test(*K50)
    assert b49.p_metafor_exact and not b50.p_metafor_exact
    assert bias.BEGG_EXACT_MAX_K == 49
    close([b49.tau_b, b49.p_metafor], [r["rank_k49"]["tau"], r["rank_k49"]["p"]])
    close([b50.tau_b, b50.p_metafor], [r["rank_k50"]["tau"], r["rank_k50"]["p"]])
    forced = begg_test(*K50, exact=True)
    assert forced.p_metafor_exact and forced.p_metafor != b50.p_metafor


def test_begg_large_k_normal_p_matches_metafor(r):
    b = begg_test(*BIG)
    assert not b.p_metafor_exact
    close([b.tau_b, b.p_metafor], [r["rank_big_normal"]["tau"], r["rank_big_normal"]["p"]])


# --- leave-one-out ---------------------------------------------------------------------------
def test_leave_one_out_rr_row_without_informative_study_is_nan_with_note(r):
    """One omission without an informative study aborted the whole leave-one-out."""
    rows = leave_one_out_rr(**RR_ONE_INFORMATIVE)
    assert rows[0].k == 0 and math.isnan(rows[0].estimate) and math.isnan(rows[0].p)
    assert rows[0].note == "no informative study remains without study 0: nothing to pool"
    ref = r["esc_one_informative"]  # the other rows: study 0 alone (studies 1, 2 are double-zero)
    for i in (1, 2):
        assert rows[i].note is None and rows[i].k == 1
        close([rows[i].estimate, rows[i].se], [ref["yi"][0], math.sqrt(ref["vi"][0])])
    assert _same(rows[1], rows[2])  # both: study 0 alone


def test_analysis_leave_one_out_keeps_going_without_an_informative_study():
    d = RR_ONE_INFORMATIVE
    wide = pd.DataFrame(
        {"label": list("ABC"), "events_ketamine": d["a"], "n_ketamine": d["n1"]}
        | {"events_control": d["c"], "n_control": d["n2"]},
        index=["s0", "s1", "s2"],
    )
    wide.attrs["arms"] = ("ketamine", "control")  # as analysis._wide records the review's arms
    rows = analysis._leave_one_out(wide, "RR", {})
    assert rows[0]["estimate"] is None and "no informative study" in rows[0]["note"]
    assert rows[1]["estimate"] == pytest.approx(math.exp(rows[1]["log_estimate"]))
    numbers = analysis.analysis_numbers(
        {
            "analysis": "x",
            "measure": "RR",
            "pooled": {},
            "studies": [],
            "leave_one_out": rows,
            "arms": [{"id": "ketamine"}, {"id": "control"}],
        },
    )
    assert numbers["x.loo.min"]["value"] == rows[1]["estimate"]


def _same(row, refit) -> bool:
    """Equal field by field (NaN equal to NaN), ignoring the refit's weights."""
    a, b = row.to_dict(), refit.to_dict()
    b["weights"] = ()
    return a.keys() == b.keys() and all(a[f] == b[f] or (a[f] != a[f] and b[f] != b[f]) for f in a)


@pytest.mark.parametrize("pool", [dersimonian_laird, inverse_variance_fixed])
def test_leave_one_out_rows_equal_refits_bit_for_bit(pool):
    y, v = _yv(60, 21)
    v[7] = 1e-6  # one dominant study: where running-sum subtraction would lose digits
    rows = leave_one_out(y, v, pool=pool)
    for i in (0, 7, 59):
        assert _same(rows[i], pool(y[:i] + y[i + 1 :], v[:i] + v[i + 1 :]))


def test_leave_one_out_rr_rows_equal_refits_bit_for_bit():
    rng = np.random.default_rng(8)
    a = rng.integers(0, 15, 40)
    n1 = a + rng.integers(0, 15, 40)
    c = rng.integers(0, 15, 40)
    n2 = c + rng.integers(0, 15, 40)
    rows = leave_one_out_rr(a, n1, c, n2)
    for i in range(40):
        m = np.arange(40) != i
        assert _same(rows[i], rr_random_effects(a[m], n1[m], c[m], n2[m]))


@pytest.mark.parametrize("method, pool", [("DL", dersimonian_laird), ("EE", inverse_variance_fixed)])
def test_leave_one_out_fixed_and_dl_match_metafor(r, method, pool):
    rows, ref = leave_one_out(*MID, pool=pool), r["l1o_mid" if method == "DL" else "l1o_mid_ee"]
    fields = ("estimate", "se", "z", "p", "ci_lower", "ci_upper", "q", "q_p", "i2")
    for f in fields + (("tau2",) if method == "DL" else ()):  # metafor's EE rows have no tau2
        close([getattr(x, f) for x in rows], ref[f])


def test_leave_one_out_needs_two_studies():
    with pytest.raises(ValueError, match="at least 2 studies"):
        leave_one_out([1.0], [0.1])
    with pytest.raises(ValueError, match="at least 2 studies"):
        leave_one_out_rr([1], [10], [2], [10])


# --- meta-regression -------------------------------------------------------------------------
def _dense_score(tau2, y, v, X):  # the former O(k^2) formula, as the reference
    w = 1 / (v + tau2)
    P = np.diag(w) - (w[:, None] * X) @ np.linalg.inv(X.T @ (w[:, None] * X)) @ (X.T * w)
    Py = P @ y
    return 0.5 * (float(Py @ Py) - float(np.trace(P)))


def test_reml_score_without_k_by_k_matrix_equals_dense_formula():
    y, v = map(np.asarray, _yv(30, 4))
    X = np.column_stack([np.ones(30), np.arange(30) % 3, np.arange(30) % 2])
    for tau2 in (0.0, 0.01, 0.3, 5.0):
        assert metareg._reml_score(tau2, y, v, X) == pytest.approx(_dense_score(tau2, y, v, X), rel=1e-10)


def test_reml_tau2_brackets_above_1e12(r):
    """The bracket gave up at 1e12 ("REML tau2 did not bracket")."""
    fit, ref = meta_regression(HUGE_Y, HUGE_V, HUGE_X), r["mr_huge_rescaled"]
    assert fit.tau2 > 1e12
    close(fit.tau2, 1e14 * ref["tau2"], rtol=1e-6, atol=0)
    close(fit.coef, 1e7 * np.asarray(ref["coef"]), rtol=1e-6, atol=0)
    close(fit.p, ref["p"])


def test_reml_tau2_bracket_doubles_past_1e12():
    """With equal v the REML tau2 is RSS/(k - p) - v: here 1.5 c^2, above the start of the
    bracket (c^2), so the bracket doubles; at c = 1e7 it used to stop at 1e12 with an error."""
    X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    for c in (1.0, 1e7, 1e40):
        y, v = c * np.array([1.0, -1.0, -1.0, 1.0]), np.full(4, 0.5 * c**2)
        assert reml_tau2(y, v, X) == pytest.approx(1.5 * c**2, rel=1e-12)


def test_reml_tau2_relative_accuracy_below_1e_13():
    """REML tau2 scales as c^2 when y scales by c and v by c^2. The absolute Brent tolerance
    (1e-15) was 1.4 % off at tau2 ~ 1e-16 (metafor's absolute threshold also loses it)."""
    rng = np.random.default_rng(2)
    y, v = rng.normal(size=6), rng.uniform(0.1, 1.0, 6)
    X = np.column_stack([np.ones(6), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    base = reml_tau2(y, v, X)
    assert base > 0.1
    for c in (1e-6, 1e-7, 1e-8, 1e-10, 1e-15):
        assert reml_tau2(c * y, c**2 * v, X) == pytest.approx(c**2 * base, rel=1e-12, abs=0)


def test_meta_regression_large_k_matches_metafor(r):
    fit, ref = meta_regression(*BIG, MOD300), r["mr_big"]
    close(fit.tau2, ref["tau2"])
    for f in ("coef", "se", "t", "p", "ci_lower", "ci_upper", "q_res"):
        close(getattr(fit, f), ref[f])


def test_meta_regression_refuses_missing_moderator():
    with pytest.raises(ValueError, match="moderator of study 2 is missing"):
        meta_regression(Y3, V3, [0, 1, math.nan, 1])
    with pytest.raises(ValueError, match="one row per study"):
        meta_regression(Y3, V3, [0, 1, 1])


# --- consistency checks ----------------------------------------------------------------------
def test_ratio_ci_printed_with_lower_bound_zero():
    """A ratio CI printed as 0.00 to ... crashed with "math domain error"."""
    assert consistency.check_reported_estimate("0.06", "0.00", "1.50", "P = .10", ratio=True) == []
    f = consistency.check_ci_symmetry("1.50", "0.00", "2.00", ratio=True)  # log-midpoint below 0.11
    assert f is not None and f.kind == "ci_asymmetry" and f.expected.startswith("below 0.1")
    assert consistency.check_p("50.0", "0.00", "60.0", "P = .90", ratio=True) is None  # P >= .10 fits
    p = consistency.check_p("1000", "0.00", "1001", "P < .001", ratio=True)  # P >= .027 here
    assert p is not None and p.kind == "p_value" and p.expected.startswith("0.02")
    with pytest.raises(ValueError, match="is not positive: a ratio"):
        consistency.check_ci_symmetry("1.5", "-0.10", "2.0", ratio=True)


@pytest.mark.parametrize("fn", [consistency.check_p, consistency.check_ci_symmetry])
def test_reversed_ci_is_a_finding(fn):
    args = ("1.5", "2.0", "1.0", "P = .03") if fn is consistency.check_p else ("1.5", "2.0", "1.0")
    f = fn(*args)
    assert f is not None and f.kind == "ci_order" and "lower bound exceeds the upper" in f.message
    assert [x.kind for x in consistency.check_reported_estimate("1.5", "2.0", "1.0", "P = .03")] == ["ci_order"]
    assert consistency.check_ci_symmetry("1.55", "1.5", "1.6") is None  # rounding can explain 1.5 < 1.55


def test_zero_width_ci_is_a_finding():
    f = consistency.check_p(1.5, 1.5, 1.5, "P = .03")
    assert f is not None and f.kind == "ci_width"
    assert consistency.check_reported_estimate(1.5, 1.5, 1.5) == [f]
    with pytest.raises(ValueError, match="no positive width"):
        consistency.se_z_p_from_ci(1.5, 1.5, 1.5)
    with pytest.raises(ValueError, match="lower bound exceeds"):
        consistency.p_range_from_ci(1.5, 2.0, 1.0)


def test_percentage_of_zero_total():
    f = consistency.check_percentage(0, 0, "0%")
    assert f is not None and f.kind == "percentage" and f.expected == "undefined (0/0)"
    with pytest.raises(ValueError, match="counts cannot be negative"):
        consistency.check_percentage(-1, 10, "10%")


def test_i2_negative_df_is_an_error():
    with pytest.raises(ValueError, match="degrees of freedom cannot be negative"):
        consistency.check_i2("3.0", -1, "0%")


def test_pooled_estimate_undefined_has_reason():
    u = pooling.PooledEstimate.undefined("why")
    assert u.to_dict()["note"] == "why" and math.isnan(u.estimate) and u.k == 0
    assert "note" not in dersimonian_laird(Y3, V3).to_dict()
    assert sensitivity.leave_one_out(Y3, V3)[0].weights == ()
