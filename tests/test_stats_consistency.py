"""statcheck-like consistency checks (metabuild.stats.consistency)."""

from __future__ import annotations

import math

import pytest

from metabuild.stats.consistency import (
    check_ci_symmetry,
    check_i2,
    check_p,
    check_percentage,
    check_reported_estimate,
    parse_number,
    parse_p,
    se_z_p_from_ci,
)


@pytest.mark.parametrize(
    "text, value, decimals",
    [
        ("\u22121.83", -1.83, 2),
        ("-1.83", -1.83, 2),
        ("\u20132.35", -2.35, 2),
        (".029", 0.029, 3),
        ("48.5%", 48.5, 1),
        ("17", 17.0, 0),
        ("1.2e-5", 1.2e-5, 6),
        (" 0.50 ", 0.5, 2),
    ],
)
def test_parse_number(text, value, decimals):
    n = parse_number(text)
    assert n.value == pytest.approx(value) and n.decimals == decimals


@pytest.mark.parametrize(
    "text, rel, value, decimals",
    [
        ("P < .00001", "<", 1e-5, 5),
        ("P = .029", "=", 0.029, 3),
        ("p=0.03", "=", 0.03, 2),
        ("<.001", "<", 0.001, 3),
        ("P \u2264 .05", "<=", 0.05, 2),
        (".04", "=", 0.04, 2),
        ("P > .99", ">", 0.99, 2),
    ],
)
def test_parse_p(text, rel, value, decimals):
    p = parse_p(text)
    assert (p.relation, p.value, p.decimals) == (rel, pytest.approx(value), decimals)


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        parse_number("abc")


def test_se_z_p_from_ci():
    se, z, p = se_z_p_from_ci(1.5, 1.1, 2.05, ratio=True)
    assert se == pytest.approx((math.log(2.05) - math.log(1.1)) / 3.919927969)
    assert z == pytest.approx(math.log(1.5) / se)
    assert p == pytest.approx(0.0107, abs=5e-4)


def test_papers_primary_result_is_consistent():
    # "mean difference, -1.83 points; 95% CI, -2.35 to -1.31 points; P < .0001"
    assert check_reported_estimate("\u22121.83", "\u22122.35", "\u22121.31", "P < .0001") == []


def test_p_mismatch_flagged():
    f = check_p("-0.50", "-1.20", "0.20", "P = .03")  # true P about .16
    assert f is not None and f.kind == "p_value" and "0.16" in f.expected
    assert check_p("-0.50", "-1.20", "0.20", "P = .16") is None
    assert check_p("1.50", "1.10", "2.05", "P = .01", ratio=True) is None
    assert check_p("1.50", "1.10", "2.05", "P = .001", ratio=True) is not None
    assert check_p("-1.83", "-2.35", "-1.31", "P = .02") is not None
    assert check_p("0.10", "-0.50", "0.70", "P < .05") is not None


def test_p_rounding_tolerated():
    # estimate/CI rounding moves P across .05: both .04 and .06 can be right
    se, z, p = se_z_p_from_ci(0.40, 0.00, 0.80)
    assert p == pytest.approx(0.05, abs=1e-3)
    assert check_p("0.40", "0.00", "0.80", "P = .04") is None
    assert check_p("0.40", "0.00", "0.80", "P = .06") is None


def test_ci_symmetry():
    assert check_ci_symmetry("-1.83", "-2.35", "-1.31") is None
    f = check_ci_symmetry("-1.83", "-2.60", "-1.31")
    assert f is not None and f.kind == "ci_asymmetry"
    assert check_ci_symmetry("1.50", "1.10", "2.05", ratio=True) is None  # symmetric on log scale
    assert check_ci_symmetry("1.50", "1.00", "2.00", ratio=False) is None  # 1.5 is the midpoint
    assert check_ci_symmetry("1.50", "1.00", "2.00", ratio=True) is not None  # log midpoint is 1.41


def test_percentage():
    f = check_percentage(17, 33, "51.3%")
    assert f is not None and f.kind == "percentage" and f.expected == "51.5"
    assert check_percentage(17, 33, "51.5%") is None
    assert check_percentage(17, 33, "52%") is None
    assert check_percentage(1, 3, "33.33") is None


def test_i2():
    assert check_i2("9.71", 5, "48.5%") is None
    assert check_i2("9.71", 5, "60%") is not None
    assert check_i2("3.0", 5, "0%") is None
    f = check_i2(20.0, 4, "70%")
    assert f is not None and f.expected == "80"


def test_gate_checks_i2_from_q_only_where_i2_is_computed_from_q():
    """The gate's I2-from-Q check holds for DerSimonian-Laird fits; an REML fit's I2 comes from
    its own tau2 (metafor's rma), so the same Q and I2 are not a failure there."""
    from metabuild.report import self_consistency

    def entries(prefix: str, method: str) -> dict:
        prov = {"params": {"spec": {"method": method}}}
        values = {
            "estimate": ("0.49", 0.49, "ratio"),
            "q": ("152.23", 152.23, "statistic"),
            "df": ("12", 12, "count"),
            "i2": ("95.0%", 95.0, "i2"),
        }
        return {
            f"{prefix}.{s}": {"text": t, "value": v, "kind": k, "provenance": prov} for s, (t, v, k) in values.items()
        }

    registry = {"numbers": {**entries("dl", "DL"), **entries("reml", "REML")}}
    assert [f["key"] for f in self_consistency(registry)] == ["dl.i2"]
