"""The exhaustive binary search of data/curation/reconstruct_binary.py is sound.

The curation output's proofs (``output/*_exhaustive*.md``: "no table gives the printed RR and
CI") rest on ``split_exhaustive``: a vectorised kernel that pools every table, and a pruning
bound (``estimate_floor``: the pooled log RR is at most the largest trial log RR) that excludes
tables without pooling them. Here, on small trial sets
whose every table can be pooled one by one, the kernel agrees with the project's statistics and
the pruned search finds exactly what brute force finds: the same number of tables within
rounding and the same closest table.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CURATION = ROOT / "data" / "curation"


@pytest.fixture(scope="module")
def rb():
    sys.path.insert(0, str(CURATION))
    try:
        spec = importlib.util.spec_from_file_location("reconstruct_binary", CURATION / "reconstruct_binary.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(CURATION))
    yield module
    sys.modules.pop("reconstruct_binary", None)


def small_trials(rb):
    """Three trials shaped like the psychotomimetic set (a fixed ketamine count, a free one, and
    Schwartzman's capped one): 11 x 169 x 44 = 81,796 tables, zero cells and dropped trials included."""
    return [
        rb.Trial("fixed", 10, 10, a=5),
        rb.Trial("free", 12, 12),
        rb.Trial("capped", 9, 10, a_max=3),
    ]


def all_tables(rb, trials):
    ra, rc = rb._ranges(trials)
    opts = [np.array([(a, c) for a in r_a for c in r_c], float) for r_a, r_c in zip(ra, rc, strict=True)]
    grids = np.meshgrid(*[np.arange(len(o)) for o in opts], indexing="ij")
    idx = [g.ravel() for g in grids]
    A = np.stack([o[i, 0] for o, i in zip(opts, idx, strict=True)], 1)
    C = np.stack([o[i, 1] for o, i in zip(opts, idx, strict=True)], 1)
    return A, C


def brute_force(rb, trials, het, targets):
    """Every table pooled by pool_batch: count within rounding, smallest largest scaled miss."""
    A, C = all_tables(rb, trials)
    N1 = np.broadcast_to(np.array([t.n1 for t in trials], float), A.shape)
    N2 = np.broadcast_to(np.array([t.n2 for t in trials], float), A.shape)
    with np.errstate(all="ignore"):
        res = rb.pool_batch(A, N1, C, N2, het)
        scaled = np.stack([(res[s] - v) / tol for s, v, tol in targets], 1)
    scaled = np.where(np.isfinite(scaled), scaled, 1e9)
    n_exact = int((np.abs(scaled) <= 1 + 1e-9).all(1).sum())
    return len(A), n_exact, float(np.abs(scaled).max(1).min())


def targets_around(rb, trials, het, a, c, rel):
    """Targets printed (2 decimals) from one real table, with a tolerance of ``rel`` times each
    value: wide enough that many tables qualify, so that a pruning that lost some would show."""
    p = rb.pool_project(
        np.array(a), np.array([t.n1 for t in trials]), np.array(c), np.array([t.n2 for t in trials]), het
    )
    out = []
    for stat, x in (("estimate", p.estimate), ("ci_lower", p.ci_lower), ("ci_upper", p.ci_upper)):
        printed = round(math.exp(x), 2)
        out.append((stat, printed, printed * rel))
    return out


@pytest.mark.parametrize("het", ["iv", "mh"])
def test_pool_batch_is_the_projects_pooling(rb, het):
    """The vectorised copy the searches use gives the project's pooled RR, CI, P and I2."""
    trials = small_trials(rb)
    A, C = all_tables(rb, trials)
    rng = np.random.default_rng(15)
    rows = rng.choice(len(A), 300, replace=False)
    n1 = np.array([t.n1 for t in trials])
    n2 = np.array([t.n2 for t in trials])
    with np.errstate(all="ignore"):
        res = rb.pool_batch(A[rows], np.tile(n1, (300, 1)), C[rows], np.tile(n2, (300, 1)), het)
    checked = 0
    for i, r in enumerate(rows):
        try:
            p = rb.pool_project(A[r].astype(int), n1, C[r].astype(int), n2, het)
        except ValueError:  # no informative trial: nothing to pool
            continue
        assert res["estimate"][i] == pytest.approx(math.exp(p.estimate), rel=1e-10)
        assert res["ci_lower"][i] == pytest.approx(math.exp(p.ci_lower), rel=1e-10)
        assert res["ci_upper"][i] == pytest.approx(math.exp(p.ci_upper), rel=1e-10)
        assert res["p"][i] == pytest.approx(p.p, rel=1e-8, abs=1e-14)
        assert res["i2"][i] == pytest.approx(p.i2, abs=1e-8)
        checked += 1
    assert checked > 250


@pytest.mark.parametrize("het", ["iv", "mh"])
@pytest.mark.parametrize("prune", [False, True])
def test_split_exhaustive_finds_what_brute_force_finds(rb, het, prune):
    """Pruned or not, split into an inner vector and an outer loop, the search counts the same
    tables within rounding as pooling every table, and its closest table is the closest of all."""
    trials = small_trials(rb)
    targets = targets_around(rb, trials, het, [5, 10, 2], [2, 4, 1], rel=0.1)
    n_all, n_exact, min_miss = brute_force(rb, trials, het, targets)
    assert n_exact > 50  # the test has tables to lose
    found = rb.split_exhaustive(trials, het, targets, inner_max=500, prune=prune)
    assert found.n_tables == n_all == 11 * 169 * 44
    assert found.n_exact == n_exact == len(found.exact)
    assert found.closest[0] == pytest.approx(min_miss, rel=1e-9)
    n1, n2 = np.array([t.n1 for t in trials]), np.array([t.n2 for t in trials])
    for a, c in found.exact[:: max(1, n_exact // 10)]:  # the tables it lists are within rounding
        p = rb.pool_project(a.astype(int), n1, c.astype(int), n2, het)
        got = {"estimate": p.estimate, "ci_lower": p.ci_lower, "ci_upper": p.ci_upper}
        assert all(abs(math.exp(got[s]) - v) <= tol * (1 + 1e-9) for s, v, tol in targets)
    if prune:
        assert found.n_pruned > 0  # the bound is exercised
    else:
        assert found.n_pruned == 0


@pytest.mark.parametrize("het", ["iv", "mh"])
def test_pruning_keeps_the_closest_table_when_none_is_within_rounding(rb, het):
    """With targets no table reaches (the printed CI narrowed), the pruned search still
    reports the brute-force closest table: tables are excluded only when they miss by more."""
    trials = small_trials(rb)
    targets = targets_around(rb, trials, het, [5, 10, 2], [2, 4, 1], rel=0.002)
    targets = [(s, v * (1.15 if s == "ci_lower" else 0.85 if s == "ci_upper" else 1.0), tol) for s, v, tol in targets]
    _, n_exact, min_miss = brute_force(rb, trials, het, targets)
    assert n_exact == 0 and min_miss > 1
    found = rb.split_exhaustive(trials, het, targets, inner_max=500, prune=True)
    assert found.n_exact == 0
    assert found.closest[0] == pytest.approx(min_miss, rel=1e-9)
    assert found.n_pruned > 0


@pytest.mark.parametrize("het", ["iv", "mh"])
@pytest.mark.parametrize(
    "rel, narrow, keep",
    [
        (0.002, 1.15, 1),  # no table within rounding, best miss 2+ targets: nothing may be pruned
        (0.005, 1.02, 1),  # the best table misses one target: pruned at sqrt(its squared miss)
        (0.02, 1.0, 5),  # the fifth best misses one target
        (0.01, 1.0, 3),  # one exact table, the others miss two targets
        (0.1, 1.0, 3),  # many exact tables: pruned at 1 rounding interval
    ],
)
def test_ranked_pruned_search_keeps_the_same_best_tables(rb, het, rel, narrow, keep):
    """``rank=True`` (what the routine search uses beyond 40 million tables) keeps the same best
    tables (fewest targets missed, then smallest squared miss) as the search without pruning."""
    trials = small_trials(rb)
    targets = targets_around(rb, trials, het, [5, 10, 2], [2, 4, 1], rel=rel)
    targets = [
        (s, v * (narrow if s == "ci_lower" else 1 / narrow if s == "ci_upper" else 1.0), t) for s, v, t in targets
    ]
    plain = rb.split_exhaustive(trials, het, targets, inner_max=500, keep_best=keep)
    ranked = rb.split_exhaustive(trials, het, targets, inner_max=500, keep_best=keep, prune=True, rank=True)
    assert [(n, pytest.approx(sq, rel=1e-12)) for n, sq, _, _ in ranked.best] == [(n, sq) for n, sq, _, _ in plain.best]
    for (_, _, a1, c1), (_, _, a2, c2) in zip(ranked.best, plain.best, strict=True):
        assert (a1 == a2).all() and (c1 == c2).all()
    assert ranked.n_exact == plain.n_exact
    # pruning starts once the last kept table misses at most one target (else nothing is pruned)
    assert (ranked.n_pruned > 0) == (plain.best[-1][0] <= 1)
    # seeded with the closest table of a pruned pass (as the routine search does): the same again
    first = rb.split_exhaustive(trials, het, targets, inner_max=500, prune=True)
    seeded = rb.split_exhaustive(
        trials, het, targets, inner_max=500, keep_best=keep, prune=True, rank=True, seed=first.closest[1:]
    )
    assert [(n, pytest.approx(sq, rel=1e-12)) for n, sq, _, _ in seeded.best] == [(n, sq) for n, sq, _, _ in plain.best]
    assert seeded.n_exact == plain.n_exact and seeded.n_pruned >= ranked.n_pruned
    assert seeded.closest[0] == pytest.approx(plain.closest[0], rel=1e-9)


@pytest.mark.parametrize("het", ["iv", "mh"])
def test_pruned_tables_are_exactly_those_below_the_floor(rb, het):
    """The pruning excludes exactly the tables whose every kept trial's log RR is below
    ``estimate_floor`` (no more, no fewer). The targets come from a table whose free trial is
    0/0 (dropped), the first outer step, so an exact table is found there and the bound is
    applied at 1 rounding interval from the second step on."""
    trials = small_trials(rb)
    targets = targets_around(rb, trials, het, [5, 0, 2], [2, 0, 1], rel=0.01)
    found = rb.split_exhaustive(trials, het, targets, inner_max=500, prune=True)
    assert found.closest[0] < 1
    cols = rb._combine([rb._trial_options(t, het) for t in trials])
    y_max = np.where(cols["keep"] > 0, cols["y"], -np.inf).max(1)
    first_step = (cols["a"][:, 1] == 0) & (cols["c"][:, 1] == 0)
    below = y_max < rb.estimate_floor(targets) - 1e-9
    assert found.n_pruned == int((below & ~first_step).sum()) > 1000


def test_estimate_floor_is_a_bound_on_random_tables(rb):
    """On random tables of the real psychotomimetic trial set, under both heterogeneity
    definitions: the pooled log RR never exceeds the largest trial log RR, and a table whose RR
    rounds to a printed value has a trial log RR at least ``estimate_floor`` of that value."""
    o = next(x for x in rb.OUTCOMES if x.name == "psychotomimetic")
    trials = o.trials + o.optional
    ra, rc = rb._ranges(trials)
    n1 = np.array([t.n1 for t in trials])
    n2 = np.array([t.n2 for t in trials])
    rng = np.random.default_rng(7)
    for het in ("iv", "mh"):
        for _ in range(300):
            a = np.array([int(rng.choice(r)) for r in ra])
            c = np.array([int(rng.choice(r)) for r in rc])
            p = rb.pool_project(a, n1, c, n2, het)
            es = rb.log_risk_ratio(a, n1, c, n2)
            y_max = float(es.yi[es.kept].max())
            assert p.estimate <= y_max + 1e-12
            printed = round(math.exp(p.estimate), 2)
            assert y_max >= rb.estimate_floor([("estimate", printed, 0.005)])
    # the bound is tight: one trial's pooled log RR is its own, within rounding of the floor
    for a, c in ((23, 4), (9, 1), (3, 1), (6, 1)):
        y = math.log((a / 30) / (c / 30))
        floor = rb.estimate_floor([("estimate", round(math.exp(y), 2), 0.005)])
        assert floor <= y < floor + 0.01 / math.exp(y)


def test_the_data_are_fitted_with_the_builds_heterogeneity(rb, tmp_path, monkeypatch):
    """reconstruct_binary.py refuses to write data fitted to another Q than the build's
    (config/config.yaml rr_heterogeneity), naming the analysis; the committed config agrees."""
    rb.check_config_heterogeneity(rb.HETEROGENEITY)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(
        "analyses:\n  headache: {outcome: headache, measure: RR, method: DL}\n", encoding="utf-8"
    )
    monkeypatch.setattr(rb, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match=r"analyses\.headache\.rr_heterogeneity is 'mh'"):
        rb.check_config_heterogeneity("iv")
    rb.check_config_heterogeneity("mh")
