"""Reconstruct the study-level 2x2 counts behind the responder and adverse-effect analyses.

The paper prints pooled relative risks (Results, Positive Response and Adverse Effects;
Figure 4 is a picture) and, for responders and nausea, the arm totals (Table 2). This script
searches ALL integer event counts (every trial, both arms) that are consistent with what the
paper states, pools each candidate with the project's statistics (log RR with Stata's 0.5
zero-cell rule, DerSimonian-Laird), and keeps the candidates that reproduce the published
RR and 95% CI within printed rounding; ties are broken by the documented rule of each
outcome (TIE_BREAK). It writes data/binary_outcomes.csv (reconstructed rows say so) and
data/curation/output/residuals_binary.md.

Heterogeneity definition (one switch, the same as the analyses' ``rr_heterogeneity`` in
config/config.yaml): HETEROGENEITY = "iv" computes Cochran's Q around the inverse-variance
fixed-effect estimate, as Stata's ``metan ..., rr randomi`` and metafor's ``rma(method="DL")``
do; "mh" around the Mantel-Haenszel pooled log RR (``metan ..., rr random``). Only "iv" gives
the printed headache P .475 with its RR and CI. Run with ``--heterogeneity mh`` to see the
other definition (output/residuals_binary_mh.md; the data file is not touched).

Run:  python data/curation/reconstruct_binary.py   (a few minutes; the psychotomimetic 6-trial set is
most of it)
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DATA,
    OUT,
    ROOT,
    check_value,
    fmt,
    md_table,
    merge_trial_rows,
    published_for,
    read_published,
    write_csv,
)

from metabuild.stats.effects import log_risk_ratio, zero_cell_corrected  # noqa: E402
from metabuild.stats.pooling import cochran_q, dersimonian_laird, mantel_haenszel_log_rr  # noqa: E402

SCRIPT = "data/curation/reconstruct_binary.py"
HETEROGENEITY = "iv"
Z975 = 1.959963984540054
PUBS = read_published()


@dataclass
class Trial:
    study: str
    n1: int
    n2: int
    a: int | None = None  # ketamine events if extracted (fixed), else searched
    c: int | None = None  # control events if extracted (fixed), else searched
    a_max: int | None = None  # upper bound on searched ketamine events
    a_source: str = ""
    n_source: str = "Table 1"


@dataclass
class Outcome:
    name: str
    definition: str
    trials: list[Trial]
    why: str  # why these trials
    totals: tuple[int | None, int | None] = (None, None)  # published events total (ketamine, control)
    optional: list[Trial] = field(default_factory=list)  # added (0, 1, then 2) only if no exact fit
    tie_break: str = ""


EICH_N = "10 vs 10 (crossover; the ketamine-alone and saline sessions; implied by Table 2 totals, data/README.md)"
OUTCOMES = [
    Outcome(
        "responder",
        "study-designated positive response (Salas >=30%, Eichenberger and Noppers >=50% pain reduction)",
        [
            Trial("salas2012", 11, 9, n_source="Table 1"),
            Trial("eichenberger2008", 10, 10, n_source=EICH_N),
            Trial("noppers2011", 12, 12, n_source="Table 1"),
        ],
        "Results ¶ Positive Response: refs 25, 26, 28; Table 2 row 2: 17/33 vs 6/31",
        totals=(17, 6),
        tie_break="pooled P within the rounding of the printed .029, then pooled Freeman-Tukey proportions closest to the printed 51.3% and 19.4%",
    ),
    Outcome(
        "nausea",
        "nausea reported during or after the infusion",
        [
            Trial("sigtermans2009", 30, 30, a=19, a_source="Table 1, row Sigtermans et al"),
            Trial("schwartzman2009", 9, 10, a_max=6),
            Trial("eichenberger2008", 10, 10, n_source=EICH_N),
        ],
        "Table 2 row 4: 3 trials, 49 vs 50 patients; the only 3-trial combination of Table 1 arm sizes "
        "giving 49/50 is Sigtermans 30/30 + Schwartzman 9/10 + Eichenberger 10/10",
        tie_break="fewest events not printed in Table 1 (Schwartzman's ketamine events capped at the 6 "
        "patients of its combined adverse-effect count)",
    ),
    Outcome(
        "psychotomimetic",
        "psychotomimetic effects (hallucinations, delusions, dysphoria, feeling 'high' or emotional)",
        [
            Trial("sigtermans2009", 30, 30, a=23, a_source="Table 1, row Sigtermans et al"),
            Trial("amr2010", 20, 20, a=3, a_source="Table 1, row Amr: short-duration delusions"),
            Trial(
                "eichenberger2008",
                10,
                10,
                a=5,
                a_source="Table 1, row Eichenberger et al: light visual "
                "hallucinations, hearing impairment, impairment of proprioception",
                n_source=EICH_N,
            ),
            Trial(
                "mitchell2002",
                18,
                17,
                a=6,
                a_source="Table 1, row Mitchell and Fallon: 'feeling more emotional than usual'",
            ),
        ],
        "Table 1 prints a psychotomimetic count for the ketamine arm of Sigtermans, Amr, Eichenberger and "
        "Mitchell; Noppers (quantities not noted) and Schwartzman (dysphoria within a combined count of 6) "
        "are added only if these cannot give the published RR and CI; trial set not printed - assumption",
        optional=[Trial("noppers2011", 12, 12), Trial("schwartzman2009", 9, 10, a_max=6)],
        tie_break="fewest trials added, then a pooled P within the rounding of the printed P, then fewest events not printed in Table 1",
    ),
    Outcome(
        "headache",
        "headache",
        [
            Trial("sigtermans2009", 30, 30, a=13, a_source="Table 1, row Sigtermans et al"),
            Trial("schwartzman2009", 9, 10, a_max=6),
        ],
        "Table 1 names headache for Sigtermans (13) and Schwartzman (within a combined count of 6); trials "
        "are added one at a time from the others (counts free) only if these cannot give the published RR "
        "and CI; the trial set is not printed - assumption",
        optional=[
            Trial("amr2010", 20, 20),
            Trial("eichenberger2008", 10, 10, n_source=EICH_N),
            Trial("noppers2011", 12, 12),
            Trial("mitchell2002", 18, 17),
        ],
        tie_break="fewest trials added, then a pooled P within the rounding of the printed P, then fewest events not printed in Table 1",
    ),
    Outcome(
        "tiredness",
        "tiredness / fatigue",
        [Trial("schwartzman2009", 9, 10, a_max=6)],
        "Table 1 names tiredness only for Schwartzman (within a combined count of 6); trials are added one "
        "at a time from the others (counts free) only if it cannot give the published RR and CI alone; the "
        "trial set is not printed - assumption",
        optional=[
            Trial("amr2010", 20, 20),
            Trial("eichenberger2008", 10, 10, n_source=EICH_N),
            Trial("noppers2011", 12, 12),
            Trial("mitchell2002", 18, 17),
            Trial("sigtermans2009", 30, 30),
        ],
        tie_break="fewest trials added, then a pooled P within the rounding of the printed P, then fewest events not printed in Table 1",
    ),
]
# Rows with a count printed in Table 1 but no pooled analysis: stored for completeness.
SINGLE_ARM = [
    (
        "sigtermans2009",
        "vomiting",
        "ketamine",
        14,
        30,
        "vomiting",
        "Table 1, row Sigtermans et al (ketamine arm; "
        "'reported by one study', Results ¶ Adverse Effects; control count not printed)",
    ),
    (
        "eichenberger2008",
        "sedation",
        "ketamine",
        3,
        10,
        "sedation (1 deep sedation requiring temporary stoppage + 2 sedation)",
        "Table 1, row Eichenberger et al (ketamine arm; control count not printed)",
    ),
]


# ---------------------------------------------------------------- pooling
def pool_project(a, n1, c, n2, het: str):
    """The project's statistics: log RR (0.5 zero-cell rule) + DerSimonian-Laird."""
    es = log_risk_ratio(a, n1, c, n2)
    k = es.kept
    q = None
    if het == "mh":
        a_, n1_, c_, n2_, _ = zero_cell_corrected(a, n1, c, n2)
        centre = mantel_haenszel_log_rr(a_[k], n1_[k], c_[k], n2_[k])
        q = cochran_q(es.yi[k], es.vi[k], centre=centre)
    return dersimonian_laird(es.yi[k], es.vi[k], q=q)


def pool_batch(A, N1, C, N2, het: str):
    """Vectorised copy of pool_project over candidate rows (shape (m, k)); returns dict of arrays.
    Used for the exhaustive search only; the chosen candidate is re-pooled with pool_project."""
    A, N1, C, N2 = (np.asarray(x, float) for x in (A, N1, C, N2))
    zero = (A == 0) | (C == 0) | (A == N1) | (C == N2)
    drop = ((A == 0) & (C == 0)) | ((A == N1) & (C == N2))
    add = np.where(zero & ~drop, 0.5, 0.0)
    a, c, n1, n2 = A + add, C + add, N1 + 2 * add, N2 + 2 * add
    keep = ~drop
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(keep, np.log(a / n1) - np.log(c / n2), 0.0)
        v = np.where(keep, 1 / a - 1 / n1 + 1 / c - 1 / n2, np.inf)
    w = np.where(keep, 1 / v, 0.0)
    sw = w.sum(1)
    kk = keep.sum(1)
    if het == "mh":
        big = n1 + n2
        num = np.where(keep, a * n2 / big, 0).sum(1)
        den = np.where(keep, c * n1 / big, 0).sum(1)
        centre = np.log(num / den)
    else:
        centre = (w * y).sum(1) / sw
    q = (w * (y - centre[:, None]) ** 2).sum(1)
    df = kk - 1
    cc = sw - (w * w).sum(1) / sw
    tau2 = np.where(df > 0, np.maximum(0, (q - df) / cc), 0.0)
    ws = np.where(keep, 1 / (v + tau2[:, None]), 0.0)
    mu = (ws * y).sum(1) / ws.sum(1)
    se = ws.sum(1) ** -0.5
    i2 = np.where((df > 0) & (q > 0), np.maximum(0, (q - df) / np.where(q > 0, q, 1)) * 100, 0.0)
    from scipy.special import erfc

    return {
        "estimate": np.exp(mu),
        "ci_lower": np.exp(mu - Z975 * se),
        "ci_upper": np.exp(mu + Z975 * se),
        "i2": i2,
        "p": erfc(np.abs(mu / se) / math.sqrt(2)),
        "k": kk,
    }


def ft_pooled_proportion(x, n) -> float:
    """Freeman-Tukey double arcsine, DL random effects, Miller back-transform with the harmonic
    mean n (Stata metaprop, as in Methods ¶ Data Analysis)."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    t = np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1)))
    v = 1 / (n + 0.5)
    p = dersimonian_laird(t, v)
    hm = len(n) / np.sum(1 / n)
    tt = p.estimate
    s = math.sin(tt)
    inner = 1 - (s + (s - 1 / s) / hm) ** 2
    return 0.5 * (1 - math.copysign(1, math.cos(tt)) * math.sqrt(max(inner, 0.0)))


# ---------------------------------------------------------------- search
MAX_EXHAUSTIVE = 6_000_000
# larger trial sets up to this many tables are searched exhaustively by split_exhaustive (about a
# minute per 40 million); beyond it by split_exhaustive with the proven pruning bound and ranking
# (the psychotomimetic 6-trial set, 1.7 billion tables: a few minutes)
MAX_SPLIT = 40_000_000


def published(outcome: str, stat: str, loc_prefix: str | None = None):
    key = {"responder": "responders"}.get(outcome, outcome) + "." + stat
    return published_for(PUBS, key, loc_prefix)


def _targets(o: Outcome):
    """The pooled values a candidate must reproduce: RR, CI bounds and I2 as printed. A printed
    '= x' P value is not among them but breaks ties (``p_miss``): with it as a requirement no
    headache table of 2 or 3 trials qualifies (output/headache_exhaustive.md)."""
    out = []
    for stat in ("estimate", "ci_lower", "ci_upper", "i2"):
        ps = published(o.name, stat)
        if ps:
            out.append((stat, ps[0].value, ps[0].tol))
    return out


def _targets_with_p(o: Outcome):
    """``_targets`` and the P value when printed as '= x' (for --prove)."""
    out = _targets(o)
    ps = [x for x in published(o.name, "p") if x.bound is None and x.value is not None]
    return out + ([("p", ps[0].value, ps[0].tol)] if ps else [])


def _max_miss(trials, a, c, het, targets) -> float:
    """A table's largest scaled miss over the targets (within rounding when <= 1)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = pool_batch(
            np.asarray(a, float)[None],
            np.array([[t.n1 for t in trials]], float),
            np.asarray(c, float)[None],
            np.array([[t.n2 for t in trials]], float),
            het,
        )
        miss = [abs((res[s][0] - v) / tol) for s, v, tol in targets]
    return float(max(m if np.isfinite(m) else 1e9 for m in miss))


def _score(trials, A, C, het, targets):
    N1 = np.broadcast_to(np.array([t.n1 for t in trials], float), A.shape)
    N2 = np.broadcast_to(np.array([t.n2 for t in trials], float), A.shape)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = pool_batch(A, N1, C, N2, het)
        scaled = np.stack([(res[s] - v) / tol for s, v, tol in targets], 1)
    scaled = np.where(np.isfinite(scaled), scaled, 1e9)
    return (np.abs(scaled) > 1 + 1e-9).sum(1), (scaled**2).sum(1)


def _ranges(trials):
    ra = [[t.a] if t.a is not None else range(0, (t.a_max if t.a_max is not None else t.n1) + 1) for t in trials]
    rc = [[t.c] if t.c is not None else range(0, t.n2 + 1) for t in trials]
    return ra, rc


def exhaustive(trials, o: Outcome, het, targets):
    """Every integer table (one batch per ketamine-arm vector); keeps the 200 best per batch."""
    ra, rc = _ranges(trials)
    C_all = np.array(list(itertools.product(*rc)), float)
    if o.totals[1] is not None:
        C_all = C_all[C_all.sum(1) == o.totals[1]]
    keep, n_all = [], 0
    for a_vec in itertools.product(*ra):
        if o.totals[0] is not None and sum(a_vec) != o.totals[0]:
            continue
        A = np.tile(np.array(a_vec, float), (len(C_all), 1))
        n_out, sq = _score(trials, A, C_all, het, targets)
        n_all += len(C_all)
        best = np.argsort(n_out * 1e12 + sq)[:200]
        keep.append((A[best], C_all[best], n_out[best], sq[best]))
    return (
        np.vstack([k[0] for k in keep]),
        np.vstack([k[1] for k in keep]),
        np.concatenate([k[2] for k in keep]),
        np.concatenate([k[3] for k in keep]),
        n_all,
    )


def p_miss(o: Outcome, trials, a, c, het) -> float:
    """Distance of the pooled P from a printed '= ' P value, in rounding units beyond tolerance
    (0 when within rounding or when the printed form is '<')."""
    ps = [x for x in published(o.name, "p") if x.bound is None and x.value is not None]
    if not ps:
        return 0.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        r = pool_batch(
            np.array([a], float),
            np.array([[t.n1 for t in trials]], float),
            np.array([c], float),
            np.array([[t.n2 for t in trials]], float),
            het,
        )
    return max(0.0, abs(r["p"][0] - ps[0].value) / ps[0].tol - 1)


def tiebreak(o: Outcome, trials, a, c) -> float:
    if o.name == "responder":
        pk = ft_pooled_proportion(a, [t.n1 for t in trials]) * 100
        pc = ft_pooled_proportion(c, [t.n2 for t in trials]) * 100
        return round(abs(pk - 51.3) + abs(pc - 19.4), 6)
    free = [j for j, t in enumerate(trials) if t.a is None]
    return float(a[free].sum() + c.sum())


def search(o: Outcome, het: str):
    """Trial sets: the named trials, then with 1, then 2 optional trials added; the first level with
    an exact candidate (every printed pooled value, the '= x' P value included) wins, else the
    closest candidate over all levels."""
    targets = _targets(o)
    tried, best = [], None
    for n_add in range(0, min(2, len(o.optional)) + 1):
        level = []
        for extra in itertools.combinations(o.optional, n_add):
            trials = o.trials + list(extra)
            ra, rc = _ranges(trials)
            size = math.prod(len(r) for r in ra) * math.prod(len(r) for r in rc)
            n_ok = 0
            if size <= MAX_EXHAUSTIVE or o.totals[0] is not None:
                A, C, n_out, sq, n_s = exhaustive(trials, o, het, targets)
                how = "exhaustive"
            elif size <= MAX_SPLIT:
                found = split_exhaustive(trials, het, targets, keep_best=50)
                n_s, n_ok, bests = found.n_tables, found.n_exact, found.best
                A = np.array([b[2] for b in bests])
                C = np.array([b[3] for b in bests])
                n_out = np.array([b[0] for b in bests])
                sq = np.array([b[1] for b in bests])
                how = "exhaustive (split_exhaustive)"
            else:  # every table still, the hopeless ones excluded by the proven bound (estimate_floor)
                # first the closest table (pruned at its largest miss), then the ranked pass seeded with it
                first = split_exhaustive(trials, het, targets, prune=True)
                found = split_exhaustive(
                    trials, het, targets, keep_best=1, prune=True, rank=True, seed=first.closest[1:]
                )
                n_s, n_ok = found.n_tables, found.n_exact
                A = np.array([b[2] for b in found.best] + [a for a, _ in found.exact])
                C = np.array([b[3] for b in found.best] + [c for _, c in found.exact])
                n_out, sq = _score(trials, A, C, het, targets)
                how = f"exhaustive (split_exhaustive; {found.n_pruned:,} excluded by the estimate bound)"
            n_within = n_ok if how.startswith("exhaustive (split") else int((n_out == 0).sum())
            tried.append((tuple(t.study for t in trials), how, n_s, n_within))
            level.append((trials, A, C, n_out, sq))
        exact = any((x[3] == 0).any() for x in level)
        for trials, A, C, n_out, sq in level:
            for i in range(len(A)):
                key = (
                    int(n_out[i]),
                    0.0 if n_out[i] == 0 else float(sq[i]),
                    round(p_miss(o, trials, A[i], C[i], het), 6),
                    tiebreak(o, trials, A[i], C[i]),
                    float(sq[i]),
                )
                if best is None or key < best[0]:
                    best = (key, trials, A[i].astype(int), C[i].astype(int))
        if exact:
            break
    return best, tried, targets


# ---------------------------------------------------------------- exhaustive search, split in two
def _trial_options(t: Trial, het: str) -> dict[str, np.ndarray]:
    """Every (ketamine events, control events) of one trial with its contributions to the pooled
    statistics: log RR ``y``, variance ``v`` (Stata's 0.5 zero-cell rule), kept flag, and the
    Mantel-Haenszel numerator/denominator terms (on the corrected counts, as ``pool_batch``)."""
    ra, rc = _ranges([t])
    a, c = (np.array(x, float).ravel() for x in np.meshgrid(ra[0], rc[0], indexing="ij"))
    n1, n2 = np.full_like(a, t.n1), np.full_like(a, t.n2)
    zero = (a == 0) | (c == 0) | (a == n1) | (c == n2)
    drop = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
    add = np.where(zero & ~drop, 0.5, 0.0)
    a_, c_, n1_, n2_ = a + add, c + add, n1 + 2 * add, n2 + 2 * add
    keep = ~drop
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(keep, np.log(a_ / n1_) - np.log(c_ / n2_), 0.0)
        v = np.where(keep, 1 / a_ - 1 / n1_ + 1 / c_ - 1 / n2_, np.inf)
    w = np.where(keep, 1 / v, 0.0)
    big = n1_ + n2_
    return {
        "a": a,
        "c": c,
        "y": y,
        "v": v,
        "w": w,
        "keep": keep.astype(float),
        "num": np.where(keep, a_ * n2_ / big, 0.0) if het == "mh" else np.zeros_like(a),
        "den": np.where(keep, c_ * n1_ / big, 0.0) if het == "mh" else np.zeros_like(a),
    }


def _combine(opts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """All combinations of several trials' options (outer product), as per-trial columns."""
    grids = np.meshgrid(*[np.arange(len(o["a"])) for o in opts], indexing="ij")
    idx = [g.ravel() for g in grids]
    return {key: np.stack([o[key][i] for o, i in zip(opts, idx, strict=True)], 1) for key in opts[0]}


def estimate_floor(targets, scale: float = 1.0) -> float:
    """The smallest pooled log RR of a table within ``scale`` rounding intervals of the printed RR:
    ``ln(RR - scale tol)`` (-inf when the RR is not a target or ``RR - scale tol <= 0``).

    The random-effects pooled log RR ``sum w_i y_i / sum w_i``, ``w_i = 1/(v_i + tau^2) > 0``, is a
    weighted mean of the kept trials' log RRs whatever ``tau^2`` is (and the Mantel-Haenszel Q
    changes only ``tau^2``), so it is at most the largest ``y_i``: a table whose every kept trial
    has ``y_i`` below this floor misses the RR by more than ``scale`` rounding intervals (the
    pruning bound of ``split_exhaustive``). Within rounding is ``|x - printed| <= tol (1 + 1e-9)``,
    as everywhere here."""
    t = {s: (v, tol * scale * (1 + 1e-9)) for s, v, tol in targets}
    if "estimate" not in t or t["estimate"][0] - t["estimate"][1] <= 0:
        return -math.inf
    return math.log(t["estimate"][0] - t["estimate"][1])


def _log_windows(targets, scale: float) -> list[tuple[str, float, float]]:
    """Log-scale windows of the RR and CI targets at ``scale`` rounding intervals (a little wider,
    1e-12, so that exp/log rounding cannot exclude a table the exact check would keep)."""
    out = []
    for s, v, tol in targets:
        if s in ("estimate", "ci_lower", "ci_upper"):
            d = tol * scale * (1 + 1e-9)
            out.append((s, math.log(v - d) - 1e-12 if v - d > 0 else -math.inf, math.log(v + d) + 1e-12))
    return out


@dataclass
class Exhaustive:
    """What ``split_exhaustive`` found: tables (``n_tables``, pruned ones included), ``n_pruned``
    excluded by the estimate bound without pooling, ``n_exact`` within rounding on every target,
    the ``best`` tables (fewest targets missed, then smallest squared scaled miss:
    ``(n_out, sq, a, c)``; not kept when pruning without ``rank``) and the ``closest`` table by its largest scaled
    miss (``(max_miss, a, c)``; a table is within rounding when max_miss <= 1)."""

    n_tables: int
    n_pruned: int
    n_exact: int
    best: list
    closest: tuple
    exact: list = field(default_factory=list)  # (a, c) of the first 1000 tables within rounding


def _stat(name: str, mu, se, q, df):
    """One pooled statistic of the vectorised kernel (as ``pool_batch``): ``name`` is a target."""
    if name == "estimate":
        return np.exp(mu)
    if name == "ci_lower":
        return np.exp(mu - Z975 * se)
    if name == "ci_upper":
        return np.exp(mu + Z975 * se)
    if name == "i2":
        return np.where((df > 0) & (q > 0), np.maximum(0, (q - df) / np.where(q > 0, q, 1)) * 100, 0.0)
    if name == "p":
        return 2 * _norm_sf(np.abs(mu / se))
    raise ValueError(f"unknown target {name!r}")


def _unique_tables(rows: list) -> list:
    """``rows`` ``(n_out, sq, a, c)`` without repeats of a table (a seed is met again in the pass)."""
    out = []
    for row in rows:
        if not any((row[2] == o[2]).all() and (row[3] == o[3]).all() for o in out):
            out.append(row)
    return out


def split_exhaustive(
    trials, het, targets, inner_max=300_000, keep_best=5, prune=False, rank=False, seed=None
) -> Exhaustive:
    """Every integer table of ``trials`` (no sampling), pooled exactly as ``pool_batch``.

    The trials are split into an inner group, whose combinations are held as vectors, and an
    outer group looped over one combination at a time; the fixed-effect and Mantel-Haenszel
    sums are additive over trials, so each outer step adds its constants to the inner vectors,
    and the random-effects step is computed per trial.

    ``prune=True`` (for the existence proof, ``--prove``), with ``M = max(1, largest scaled miss
    of the closest table so far)``: the inner combinations are sorted by their largest log RR,
    and for each outer step the tables whose every kept trial has a log RR below
    ``estimate_floor(targets, M)`` are counted without pooling (each misses the RR by more than
    ``M`` rounding intervals); of the pooled tables, only those whose log RR and log CI bounds lie
    within ``M`` rounding intervals are scored exactly. So ``n_exact`` and ``closest`` are those of
    all tables; ``best`` is not kept. With ``rank=True`` as well, ``best`` is kept and ``M`` is
    raised so that no excluded table could enter it: an excluded table misses a target by more
    than ``M``, so it misses at least one target and its squared scaled miss exceeds ``M^2``; once
    ``best`` is full and its last table misses at most one target, ``M = max(1, sqrt(its squared
    miss))`` excludes only tables ranked after it (before that, ``M`` is infinite: no pruning).
    ``seed`` (a table ``(a, c)`` of these trials, e.g. the ``closest`` of a pruned pass) starts
    ``best`` and ``closest`` with it, so that the ranked pruning applies from the first step.
    ``tests/test_curation_binary_search.py`` checks the kernel against ``pool_project`` and the
    pruned search against brute force.
    """
    opts = [_trial_options(t, het) for t in trials]
    order = sorted(range(len(trials)), key=lambda j: len(opts[j]["a"]))
    inner, size = [], 1
    for j in order:
        if size * len(opts[j]["a"]) > inner_max and inner:
            break
        inner.append(j)
        size *= len(opts[j]["a"])
    outer = [j for j in range(len(trials)) if j not in inner]
    inn = _combine([opts[j] for j in inner])
    out = _combine([opts[j] for j in outer]) if outer else None
    n_outer = len(out["a"]) if outer else 1
    if prune:  # inner combinations by their largest log RR (kept trials only)
        ymax_i = np.where(inn["keep"] > 0, inn["y"], -np.inf).max(1)
        srt = np.argsort(ymax_i, kind="stable")
        inn = {key: val[srt] for key, val in inn.items()}
        ymax_i = ymax_i[srt]
    s1_i, sy_i, syy_i, s2_i = (
        inn["w"].sum(1),
        (inn["w"] * inn["y"]).sum(1),
        (inn["w"] * inn["y"] ** 2).sum(1),
        (inn["w"] ** 2).sum(1),
    )
    num_i, den_i, k_i = inn["num"].sum(1), inn["den"].sum(1), inn["keep"].sum(1)
    v_in, y_in = inn["v"], inn["y"]  # v = inf for a dropped trial: its random-effects weight is 0
    names = [s for s, _, _ in targets]
    vals = [v for _, v, _ in targets]
    tols = [tol for _, _, tol in targets]
    n_tables, n_pruned, n_exact, best, exact = 0, 0, 0, [], []
    closest = (math.inf, None, None)
    if seed is not None:
        a0, c0 = (np.asarray(x, float) for x in seed)
        n0, sq0 = _score(trials, a0[None], c0[None], het, targets)
        closest = (_max_miss(trials, a0, c0, het, targets), a0, c0)
        best = [(int(n0[0]), float(sq0[0]), a0, c0)]

    def table(r, b):
        a_vec, c_vec = np.empty(len(trials)), np.empty(len(trials))
        a_vec[inner], c_vec[inner] = inn["a"][b], inn["c"][b]
        if outer:
            a_vec[outer], c_vec[outer] = out["a"][r], out["c"][r]
        return a_vec, c_vec

    for r in range(n_outer):
        if outer:
            w_o, y_o, v_o, keep_o = out["w"][r], out["y"][r], out["v"][r], out["keep"][r]
            c1, cy, cyy, c2 = w_o.sum(), (w_o * y_o).sum(), (w_o * y_o**2).sum(), (w_o**2).sum()
            cnum, cden, ck = out["num"][r].sum(), out["den"][r].sum(), keep_o.sum()
            ymax_o = max((y for y, k in zip(y_o, keep_o, strict=True) if k > 0), default=-math.inf)
        else:
            w_o = y_o = v_o = np.zeros(0)
            c1 = cy = cyy = c2 = cnum = cden = ck = 0.0
            ymax_o = -math.inf
        n_tables += len(s1_i)
        start = 0
        if prune:
            scale = max(1.0, closest[0])
            if rank:
                full = len(best) == keep_best
                wn, wsq = (best[-1][0], best[-1][1]) if full else (math.inf, math.inf)
                scale = max(scale, math.inf if wn > 1 else 1.0 if wn == 0 else math.sqrt(wsq))
            floor = estimate_floor(targets, scale) - 1e-9  # margin for the rounding of the weighted mean
            if ymax_o < floor:
                start = int(np.searchsorted(ymax_i, floor, side="left"))
            n_pruned += start
            if start == len(s1_i):
                continue
        sl = slice(start, None)
        with np.errstate(all="ignore"):
            s1 = s1_i[sl] + c1
            sy = sy_i[sl] + cy
            syy = syy_i[sl] + cyy
            s2 = s2_i[sl] + c2
            kk = k_i[sl] + ck
            centre = np.log((num_i[sl] + cnum) / (den_i[sl] + cden)) if het == "mh" else sy / s1
            q = syy - 2 * centre * sy + centre**2 * s1
            df = kk - 1
            tau2 = np.where(df > 0, np.maximum(0.0, (q - df) / (s1 - s2 / s1)), 0.0)
            ws_i = 1 / (v_in[sl] + tau2[:, None])
            sw = ws_i.sum(1)
            swy = (ws_i * y_in[sl]).sum(1)
            for j in range(len(w_o)):
                if np.isfinite(v_o[j]):
                    wj = 1 / (v_o[j] + tau2)
                    sw = sw + wj
                    swy = swy + wj * y_o[j]
            mu = swy / sw
            se = sw**-0.5
            idx = None
            if prune:  # exact scores only for tables within M rounding intervals on the log scale
                ok = np.ones(len(mu), bool)
                for s, lo, hi in _log_windows(targets, scale):
                    x = mu if s == "estimate" else mu - Z975 * se if s == "ci_lower" else mu + Z975 * se
                    ok &= (x >= lo) & (x <= hi)
                idx = np.flatnonzero(ok)
                if idx.size == 0:
                    continue
                mu, se, q, df = mu[idx], se[idx], q[idx], df[idx]
            scaled = np.stack(
                [(_stat(s, mu, se, q, df) - val) / tol for s, val, tol in zip(names, vals, tols, strict=True)], 1
            )
        scaled = np.where(np.isfinite(scaled), scaled, 1e9)
        absd = np.abs(scaled)
        n_out = (absd > 1 + 1e-9).sum(1)
        n_exact += int((n_out == 0).sum())
        for b in np.flatnonzero(n_out == 0)[: max(0, 1000 - len(exact))]:
            exact.append(table(r, start + (int(b) if idx is None else int(idx[b]))))
        mx = absd.max(1)
        b = int(np.argmin(mx))
        pos = start + (b if idx is None else int(idx[b]))
        if mx[b] < closest[0]:
            closest = (float(mx[b]), *table(r, pos))
        if prune and not rank:
            continue
        sq = (scaled**2).sum(1)
        if len(best) == keep_best:
            wn, wsq = best[-1][0], best[-1][1]
            cand = np.flatnonzero((n_out < wn) | ((n_out == wn) & (sq <= wsq)))
        else:
            cand = np.arange(len(n_out))
        if cand.size:
            top = cand[np.lexsort((sq[cand], n_out[cand]))[:keep_best]]
            for b in top:
                best.append((int(n_out[b]), float(sq[b]), *table(r, start + (b if idx is None else int(idx[b])))))
            best = _unique_tables(sorted(best, key=lambda x: (x[0], x[1])))[:keep_best]
    return Exhaustive(n_tables, n_pruned, n_exact, best, closest, exact)


def _norm_sf(z):
    from scipy.special import erfc

    return 0.5 * erfc(z / math.sqrt(2))


def _p_bound_note(o: Outcome, targets) -> str:
    """A printed '< x' P value as a constraint: implied by RR and CI within rounding when the
    largest P such a table can have, ``2(1 - Phi(ln(RR_lo) / SE_max))``, is below x."""
    ps = [x for x in published(o.name, "p") if x.bound is not None]
    t = {s: (v, tol * (1 + 1e-9)) for s, v, tol in targets}
    if not ps or not {"estimate", "ci_lower", "ci_upper"} <= set(t):
        return ""
    (est, te), (lo, tl), (hi, tu) = t["estimate"], t["ci_lower"], t["ci_upper"]
    se_max = (math.log(hi + tu) - math.log(lo - tl)) / (2 * Z975)
    p_max = 2 * _norm_sf(abs(math.log(est - te)) / se_max)
    op, x = ps[0].bound
    implied = op == "<" and p_max < x
    return (
        f"The printed P {ps[0].printed} is {'implied' if implied else 'NOT implied'} by RR and CI within "
        f"rounding: such a table has SE <= {se_max:.5f} and |ln RR| >= {abs(math.log(est - te)):.5f}, so "
        f"P <= {p_max:.2g}."
    )


def prove_unreachable(name: str, het: str, max_tables: float = math.inf) -> str:
    """Exhaustive search over every trial set and count assignment the paper allows for one
    outcome (the named trials with their extracted counts, plus any subset of the optional
    trials); writes output/<name>_exhaustive.md (``_exhaustive_<het>.md`` for the heterogeneity
    definition the data do not use) and returns its text. No sampling: every integer table is
    pooled or excluded by the proven estimate bound (``split_exhaustive(prune=True)``)."""
    o = next(x for x in OUTCOMES if x.name == name)
    targets = _targets_with_p(o)
    het_text = {
        "iv": "Q around the inverse-variance estimate, Stata metan randomi",
        "mh": "Q around the Mantel-Haenszel estimate, Stata metan random",
    }[het]
    lines = [
        f"# Exhaustive search: {name}",
        "",
        f"Generated by `{SCRIPT} --prove {name}"
        + (f" --heterogeneity {het}" if het != HETEROGENEITY else "")
        + f"` (DerSimonian-Laird; heterogeneity: {het_text}). Every trial set the paper allows "
        f"({o.why}) and every integer count not printed in Table 1 (control events 0..n; ketamine events "
        "0..n, or 0..6 for Schwartzman's combined count of 6); the counts Table 1 prints are held fixed. "
        "Targets, each within half a unit of its last printed decimal: "
        + ", ".join(f"{s} {v:g}" for s, v, _ in targets)
        + ". "
        + _p_bound_note(o, targets),
        "",
        "No table is sampled. A table is either pooled exactly as the build pools it, or excluded without "
        "pooling by a proven bound: the pooled log RR is a weighted mean of the kept trials' log RRs with "
        "positive weights 1/(v_i + tau^2), whatever tau^2 is, so it is at most the largest of them; a table "
        f"whose every trial has RR below {math.exp(estimate_floor(targets)):.4f} (the printed RR less its "
        "rounding) cannot give the printed RR (`estimate_floor`). The bound is applied with the largest miss "
        "of the closest table found so far (at least 1 rounding interval) in place of 1, so the closest table "
        "below is the closest of all tables.",
        "",
        "| trial set | tables | pooled | excluded by the bound | within rounding on every target "
        "| closest table (ketamine/control events) | its RR (95% CI) | its largest miss (rounding intervals) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total, total_pruned, total_exact = 0, 0, 0
    for n_add in range(len(o.optional) + 1):
        for extra in itertools.combinations(o.optional, n_add):
            trials = o.trials + list(extra)
            ra, rc = _ranges(trials)
            size = math.prod(len(r) for r in ra) * math.prod(len(r) for r in rc)
            if size > max_tables:
                lines.append(
                    f"| {', '.join(t.study for t in trials)} | {size:,} | not searched (over --prove-max) | | | | | |"
                )
                continue
            found = split_exhaustive(trials, het, targets, prune=True)
            total += found.n_tables
            total_pruned += found.n_pruned
            total_exact += found.n_exact
            miss, a, c = found.closest
            p = pool_project(
                a.astype(int), np.array([t.n1 for t in trials]), c.astype(int), np.array([t.n2 for t in trials]), het
            )
            table = ", ".join(f"{t.study} {int(a[j])}/{int(c[j])}" for j, t in enumerate(trials))
            lines.append(
                f"| {', '.join(t.study for t in trials)} | {found.n_tables:,} | "
                f"{found.n_tables - found.n_pruned:,} | {found.n_pruned:,} | {found.n_exact} | {table} | "
                f"{math.exp(p.estimate):.2f} ({math.exp(p.ci_lower):.2f}-{math.exp(p.ci_upper):.2f}) | "
                f"{miss:.3f} |"
            )
            print(lines[-1], flush=True)
    lines += [
        "",
        f"In all: {total:,} tables ({total - total_pruned:,} pooled, {total_pruned:,} excluded by the bound), "
        f"{total_exact} within rounding on every target.",
        "",
    ]
    text = "\n".join(lines)
    suffix = "" if het == HETEROGENEITY else f"_{het}"
    (OUT / f"{name}_exhaustive{suffix}.md").write_text(text, encoding="utf-8")
    return text


def check_config_heterogeneity(het: str) -> None:
    """The data must be fitted with the heterogeneity the build pools with: every analysis of
    config/config.yaml on an outcome this script reconstructs must have ``rr_heterogeneity``
    (schema default "mh") equal to ``het``; else one error naming the analysis and the key."""
    import yaml

    path = ROOT / "config" / "config.yaml"
    analyses = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("analyses", {})
    names = {o.name for o in OUTCOMES}
    for name, spec in analyses.items():
        setting = spec.get("rr_heterogeneity", "mh")
        if spec.get("outcome") in names and spec.get("measure") == "RR" and setting != het:
            sys.exit(
                f"{path}: analyses.{name}.rr_heterogeneity is {setting!r}, but {SCRIPT} fits the data with "
                f"HETEROGENEITY = {het!r}: make them agree (the data would be fitted to another pooling)"
            )


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heterogeneity", choices=("mh", "iv"), default=HETEROGENEITY)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--prove", metavar="OUTCOME", help="exhaustive search over every allowed table (slow)")
    ap.add_argument("--prove-max", type=float, default=math.inf, help="skip trial sets with more tables")
    args = ap.parse_args()
    het = args.heterogeneity
    if het == HETEROGENEITY and not args.no_write:
        check_config_heterogeneity(het)  # before the search: the data file is written only if they agree
    if args.prove:
        prove_unreachable(args.prove, het, args.prove_max)
        return
    lines = [
        "# Residuals: responders and adverse effects",
        "",
        f"Generated by `{SCRIPT}` (heterogeneity: "
        f"{'Q around the Mantel-Haenszel estimate, as Stata metan' if het == 'mh' else 'inverse-variance Q'}).",
        "Residual = published - reproduced; tolerance = half a unit of the last printed decimal.",
        "Percentages are pooled Freeman-Tukey proportions (Stata metaprop); the raw totals are in the note.",
        "",
    ]
    rows_out, tally = [], {}
    for o in OUTCOMES:
        (key, trials, a, c), tried, targets = search(o, het)
        n1 = np.array([t.n1 for t in trials])
        n2 = np.array([t.n2 for t in trials])
        p = pool_project(a, n1, c, n2, het)
        block = [
            f"## {o.name}",
            "",
            f"Why these trials: {o.why}.",
            "",
            "Trial sets searched (method, candidates, candidates within rounding on RR and both CI bounds"
            + (" and I2" if any(t[0] == "i2" for t in targets) else "")
            + "):",
            "",
        ]
        block += [f"- {', '.join(st)}: {how}, {n_s}, {n_ok}" for st, how, n_s, n_ok in tried]
        block += [
            "",
            f"Chosen: {'exact' if key[0] == 0 else 'closest - no candidate reproduces every value'}; "
            f"tie-break: {o.tie_break}.",
            "",
        ]
        trows = [
            [t.study, f"{a[j]}/{t.n1}", f"{c[j]}/{t.n2}", "extracted (Table 1)" if t.a is not None else "reconstructed"]
            for j, t in enumerate(trials)
        ]
        block += [md_table(["study", "ketamine events/n", "control events/n", "ketamine events"], trows), ""]
        rep = {
            "estimate": math.exp(p.estimate),
            "ci_lower": math.exp(p.ci_lower),
            "ci_upper": math.exp(p.ci_upper),
            "i2": p.i2,
            "p": p.p,
            "k": p.k,
            "events_ketamine": a.sum(),
            "events_control": c.sum(),
            "n_ketamine": n1.sum(),
            "n_control": n2.sum(),
            "percent_ketamine": 100 * ft_pooled_proportion(a, n1),
            "percent_control": 100 * ft_pooled_proportion(c, n2),
        }
        prow = []
        key0 = {"responder": "responders"}.get(o.name, o.name)
        tally.setdefault(o.name, [0, 0])
        for stat in rep:
            for pub in published_for(PUBS, f"{key0}.{stat}"):
                r, ok = check_value(pub, float(rep[stat]))
                if stat in ("estimate", "ci_lower", "ci_upper", "i2", "p") and pub.location.startswith("Results"):
                    tally[o.name][0] += ok
                    tally[o.name][1] += 1
                note = ""
                if stat.startswith("percent"):
                    raw = 100 * (a.sum() / n1.sum() if stat.endswith("ketamine") else c.sum() / n2.sum())
                    note = f"raw {raw:.2f}%"
                prow.append(
                    [
                        f"`{pub.key}`",
                        pub.location,
                        pub.printed,
                        fmt(float(rep[stat]), 4),
                        fmt(r, 4) if r is not None else "",
                        "yes" if ok else "**no**",
                        note,
                    ]
                )
        block += [
            md_table(
                ["key", "location", "printed", "reproduced", "published - reproduced", "within rounding", "note"], prow
            ),
            "",
        ]
        print("\n".join(block))
        lines += block
        for j, t in enumerate(trials):
            for arm, ev, n, extracted in (
                ("ketamine", a[j], t.n1, t.a is not None),
                ("control", c[j], t.n2, t.c is not None),
            ):
                src = (
                    t.a_source
                    if extracted
                    else f"reconstructed (integer search matching the published RR and CI, {SCRIPT})"
                )
                rows_out.append(
                    {
                        "study_id": t.study,
                        "outcome": o.name,
                        "arm": arm,
                        "events": int(ev),
                        "n": int(n),
                        "definition": o.definition,
                        "source": f"{src}; n: {t.n_source}",
                    }
                )
    summary = [
        f"- {o}: {ok}/{n} of the values printed in Results ¶ Positive Response / Adverse Effects "
        "(RR, CI bounds, P, I2) within printed rounding"
        for o, (ok, n) in tally.items()
    ]
    lines += ["## Summary", ""] + summary + [""]
    print("\n".join(summary))
    for study, outcome, arm, ev, n, definition, src in SINGLE_ARM:
        rows_out.append(
            {
                "study_id": study,
                "outcome": outcome,
                "arm": arm,
                "events": ev,
                "n": n,
                "definition": definition,
                "source": src,
            }
        )
    if not args.no_write:
        if het == HETEROGENEITY:
            # trials the script does not reconstruct (added since) keep their extracted rows
            known = {t.study for o in OUTCOMES for t in [*o.trials, *o.optional]} | {r[0] for r in SINGLE_ARM}
            write_csv(
                DATA / "binary_outcomes.csv",
                ["study_id", "outcome", "arm", "events", "n", "definition", "source"],
                merge_trial_rows(DATA / "binary_outcomes.csv", rows_out, known),
            )
            (OUT / "residuals_binary.md").write_text("\n".join(lines), encoding="utf-8")
            print("wrote data/binary_outcomes.csv, data/curation/output/residuals_binary.md")
        else:  # the other heterogeneity definition: comparison only, the data file is not touched
            (OUT / f"residuals_binary_{het}.md").write_text("\n".join(lines), encoding="utf-8")
            print(f"wrote data/curation/output/residuals_binary_{het}.md (data file unchanged)")


if __name__ == "__main__":
    main()
