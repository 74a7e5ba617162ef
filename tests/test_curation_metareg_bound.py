"""The interval enclosures behind the meta-regression proof (data/curation/metareg_bound.py) hold.

The proof discards a box of (MD, variance, tau2) values only when an enclosure of a published
quantity over the whole box misses its rounding interval; so every enclosure must contain the
value the pipeline computes at every point of the box. Checked here against the pipeline's own
functions (metabuild.stats.pooling.dersimonian_laird, metabuild.stats.metareg.meta_regression)
at random points of random boxes; a wrong formula or a missed rounding direction fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "curation"))
import metareg_bound as mb  # noqa: E402

from metabuild.stats.metareg import meta_regression  # noqa: E402
from metabuild.stats.pooling import dersimonian_laird  # noqa: E402

RNG = np.random.default_rng(15)


def random_boxes(n: int, k: int, fixed_y: bool):
    yc = RNG.uniform(-3, 0.5, (n, k))
    yw = 0.0 if fixed_y else RNG.uniform(0, 0.3, (n, k))
    vc = np.exp(RNG.uniform(np.log(0.02), np.log(1.5), (n, k)))
    vw = vc * RNG.uniform(0, 0.3, (n, k))
    return yc - yw, yc + yw, vc, vc + vw


@pytest.mark.parametrize("fixed_y", [True, False])
@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_dl_enclosure_contains_the_pipeline_value_at_every_sampled_point(k, fixed_y):
    yl, yh, vl, vh = random_boxes(40, k, fixed_y)
    enc = mb.dl_box(yl, yh, vl, vh)
    for b in range(len(yl)):
        for _ in range(25):
            y = RNG.uniform(yl[b], yh[b])
            v = RNG.uniform(vl[b], vh[b])
            p = dersimonian_laird(y, v)
            for st in ("estimate", "ci_lower", "ci_upper", "i2"):
                x = float(getattr(p, st))
                assert enc[st].lo[b] - 1e-12 <= x <= enc[st].hi[b] + 1e-12, (k, st, b, x)


def test_dl_enclosure_is_tight_on_small_boxes():
    """A bound that is sound only because it is wide would prove nothing: on boxes 1e-6 wide
    the estimate's enclosure is narrower than 1e-4 (a printed value's rounding is 5e-3)."""
    yl, _, vl, _ = random_boxes(50, 6, True)
    enc = mb.dl_box(yl, yl, vl, vl * (1 + 1e-6))
    assert np.max(enc["estimate"].hi - enc["estimate"].lo) < 1e-4
    assert np.max(enc["i2"].hi - enc["i2"].lo) < 1e-2


@pytest.mark.parametrize("mod", [[1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0], [0, 0, 1, 1, 0, 1]])
def test_metareg_enclosure_contains_the_pipeline_tau2_root_and_t(mod):
    n_hit = 0
    for _ in range(150):
        y = RNG.uniform(-3, 0, 6)
        vl = np.exp(RNG.uniform(np.log(0.02), np.log(1.5), 6))
        vh = vl * (1 + RNG.uniform(0, 0.2, 6))
        v = RNG.uniform(vl, vh)
        fit = meta_regression(y, v, np.array(mod, float))
        tau2 = fit.tau2
        assert tau2 <= mb.tau2_upper(y, vh, mod)
        # a tau2 box around the pipeline's root, and one that stops short of it
        tl, th = max(0.0, tau2 * (1 - 1e-6) - 1e-9), tau2 * (1 + 1e-6) + 1e-9
        score, t = mb.metareg_box(y[None], vl[None], vh[None], np.array([tl]), np.array([th]), mod)
        root_ok = (score.lo[0] <= 0 <= score.hi[0]) or (tl == 0 and score.lo[0] <= 0)
        assert root_ok, (y, v, tau2, score.lo, score.hi)
        assert t.lo[0] - 1e-12 <= abs(fit.t[1]) <= t.hi[0] + 1e-12
        n_hit += tau2 > 0
    assert n_hit > 10  # the score-root branch (tau2 > 0) was exercised, not only tau2 = 0


def test_a_tau2_box_away_from_the_root_is_discarded():
    """The root test can fail: a thin v box and a tau2 box far above the REML root give a score
    interval that excludes 0."""
    y = np.array([-2.7, -1.3, -1.06, -1.8, -1.52, -1.34])
    v = np.array([0.104, 1.17, 0.59, 0.0287, 1.11, 0.197])
    mod = [1, 1, 0, 0, 0, 0]
    fit = meta_regression(y, v, np.array(mod, float))
    t0 = fit.tau2 + 0.5
    score, _ = mb.metareg_box(y[None], v[None], v[None] * (1 + 1e-9), np.array([t0]), np.array([t0 * 1.01]), mod)
    assert score.hi[0] < 0


def test_t_window_edges_print_as_the_target():
    a, b = mb.t_window(0.079, 0.0005, 4)
    assert 2 * stats.t.sf(a, 4) == pytest.approx(0.0795, abs=1e-8)
    assert 2 * stats.t.sf(b, 4) == pytest.approx(0.0785, abs=1e-8)


def test_the_cover_keeps_the_committed_data_set():
    """End to end: the committed primary-block data (data/pain_scores.csv, which reproduces the 28
    pooled values) must lie in a box that the cover keeps, with its MDs fixed and every variance
    searched over the whole 0-10 range; a cover that drops it would be unsound."""
    import reconstruct_pain as rp

    rows = [r for r in mb_rows() if r["primary"] == "true"]
    ket = {r["study_id"]: r for r in rows if r["arm"] == "ketamine"}
    ctl = {r["study_id"]: r for r in rows if r["arm"] == "control"}
    members, analyses = rp.BLOCKS[0]
    y, v = [], []
    for i in members:
        s = rp.SERIES[i]
        k, c = ket[s.study], ctl[s.study]
        y.append(round(float(k["mean"]) - float(c["mean"]), 2))
        v.append(float(k["sd"]) ** 2 / s.n1 + float(c["sd"]) ** 2 / s.n2)
    an = {a: (rp.ANALYSES[a][0], {st: (rp.TARGETS[(a, st)], rp.TOL[st]) for st in rp.STATS}) for a in analyses}
    prob = mb.Problem(an, [""] * 6, {})
    n1, n2 = rp.N1[:6], rp.N2[:6]
    K, Vl, Vh, _ = mb.cover_grid(
        prob,
        [(x, x) for x in y],
        1e-4 / np.maximum(n1, n2),
        25 / (n1 - 1) + 25 / (n2 - 1),
        rp.PROOF_STAGES,
        (0.05,),
        log=lambda m: None,
    )
    assert np.all(K == np.round(np.array(y) * 100).astype(int))
    inside = np.all((Vl <= np.array(v)) & (np.array(v) <= Vh), axis=1)
    assert inside.any()
    # and the cover is not everything: the boxes left are a small part of the variance range
    assert len(K) < 5000


def mb_rows():
    import csv

    with (Path(__file__).resolve().parents[1] / "data" / "pain_scores.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))
