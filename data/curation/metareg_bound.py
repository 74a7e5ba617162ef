"""Sound bounds for the primary block's pooled values and meta-regression P values over boxes.

Used by ``reconstruct_pain.py --prove`` to decide, over EVERY 2-decimal data set, whether the
published meta-regression P values (dose .213, CRPS .079, adjunct .127) can be reproduced
together with the 28 pooled values of the primary block. The argument (output/metareg_proof.md):

- every pooled value and every meta-regression P depends on the data only through each
  trial's mean difference y_i (a multiple of 0.01: a difference of two 2-decimal means) and
  its variance v_i = sd_k^2/n_k + sd_c^2/n_c. Treating v_i as any real number in a range is
  a SUPERSET of every pair of 2-decimal SDs (any difference between the arms' SDs);
- a box of (y, v, tau) values is discarded only when an interval enclosure of some published
  quantity over the whole box lies outside its printed rounding interval (plus a slack of
  1e-9 that covers the floating-point difference between the pipeline's arithmetic and exact
  arithmetic). What is discarded holds no data set; what survives covers every data set.
- the meta-regression's REML tau2 is not a closed form: it enters as an extra box coordinate,
  and a box is kept only if the REML score can vanish in it (or tau2 = 0 and the score can be
  <= 0, which is when the pipeline returns 0). Every root of the score is covered, so whatever
  root the pipeline's solver returns is covered too.

Interval arithmetic is hand-written (vectorised over many boxes in numpy, outward rounding by
one ulp after each correctly rounded IEEE operation) because no interval library is installed
and one box at a time in Python (e.g. python-flint) would be far too slow for millions of boxes.
Monotonicity is used where it is proven in the docstrings (it gives tight enclosures):

- a weighted mean sum(w y)/sum(w) with w_i in [wl_i, wh_i] attains its extremes at a vertex
  of the weight box (it is linear-fractional in w); it increases in each y_i;
- Q(w) = sum w_i (y_i - ybar_w)^2 = min_c sum w_i (y_i - c)^2 is nondecreasing in each w_i
  (a minimum of nondecreasing functions), so for fixed y it lies in [Q(wl), Q(wh)].
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

Z975 = 1.959963984540054
SLACK = 1e-9  # added to every rounding interval: floating point of the pipeline vs exact arithmetic
REL = 1e-12  # relative widening of values computed in floating point by vertex/monotone formulas


def _dn(x):
    return np.nextafter(x, -np.inf)


def _up(x):
    return np.nextafter(x, np.inf)


class Iv:
    """Intervals [lo, hi] elementwise over numpy arrays (one entry per box)."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo, hi=None):
        self.lo = np.asarray(lo, float)
        self.hi = self.lo if hi is None else np.asarray(hi, float)

    def __add__(self, o):
        o = o if isinstance(o, Iv) else Iv(o)
        return Iv(_dn(self.lo + o.lo), _up(self.hi + o.hi))

    def __sub__(self, o):
        o = o if isinstance(o, Iv) else Iv(o)
        return Iv(_dn(self.lo - o.hi), _up(self.hi - o.lo))

    def __mul__(self, o):
        o = o if isinstance(o, Iv) else Iv(o)
        p = np.stack([self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi])
        return Iv(_dn(p.min(0)), _up(p.max(0)))

    def recip(self):
        """1/x for x > 0."""
        assert np.all(self.lo > 0)
        return Iv(_dn(1 / self.hi), _up(1 / self.lo))

    def __truediv__(self, o):
        o = o if isinstance(o, Iv) else Iv(o)
        return self * o.recip()

    def sqr(self):
        a, b = self.lo * self.lo, self.hi * self.hi
        lo = np.where((self.lo <= 0) & (self.hi >= 0), 0.0, np.minimum(a, b))
        return Iv(_dn(lo), _up(np.maximum(a, b)))

    def sqrt(self):
        return Iv(_dn(np.sqrt(np.maximum(self.lo, 0))), _up(np.sqrt(np.maximum(self.hi, 0))))

    def pos(self):
        """max(0, x)."""
        return Iv(np.maximum(self.lo, 0), np.maximum(self.hi, 0))

    def abs(self):
        lo = np.where((self.lo <= 0) & (self.hi >= 0), 0.0, np.minimum(np.abs(self.lo), np.abs(self.hi)))
        return Iv(lo, np.maximum(np.abs(self.lo), np.abs(self.hi)))


def widen(lo, hi, scale):
    """Outward widening of a floating-point value range by REL relative to ``scale``."""
    e = REL * (np.abs(scale) + 1)
    return Iv(lo - e, hi + e)


def wmean(yl, yh, wl, wh):
    """Range of sum(w y)/sum(w) over w_i in [wl_i, wh_i] and y_i in [yl_i, yh_i] (arrays boxes x k):
    every vertex of the weight box with y at its upper (max) or lower (min) end."""
    k = yl.shape[1]
    best_hi = np.full(yl.shape[0], -np.inf)
    best_lo = np.full(yl.shape[0], np.inf)
    for pick in itertools.product((0, 1), repeat=k):
        m = np.array(pick, bool)
        w = np.where(m, wh, wl)
        sw = w.sum(1)
        best_hi = np.maximum(best_hi, (w * yh).sum(1) / sw)
        w2 = np.where(m, wl, wh)
        best_lo = np.minimum(best_lo, (w2 * yl).sum(1) / w2.sum(1))
    return widen(best_lo, best_hi, np.maximum(np.abs(yl).max(1), np.abs(yh).max(1)))


def q_stat(y, wl, wh):
    """Range of Q(w) = sum w (y - ybar_w)^2 for fixed y (boxes x k) and w in [wl, wh]: monotone."""

    def q(w):
        m = (w * y).sum(1) / w.sum(1)
        return (w * (y - m[:, None]) ** 2).sum(1)

    return widen(q(wl), q(wh), q(wh))


def q_stat_iv(yl, yh, wl, wh):
    """Q for interval y: sum_{i<j} w_i w_j (y_i - y_j)^2 / sum w (naive intervals; sound)."""
    k = yl.shape[1]
    num = Iv(np.zeros(len(yl)))
    for i, j in itertools.combinations(range(k), 2):
        dy = Iv(yl[:, i], yh[:, i]) - Iv(yl[:, j], yh[:, j])
        num = num + Iv(wl[:, i], wh[:, i]) * Iv(wl[:, j], wh[:, j]) * dy.sqr()
    den = Iv(wl.sum(1), wh.sum(1))
    den = Iv(_dn(den.lo) * (1 - 1e-15), _up(den.hi) * (1 + 1e-15))
    # also Q <= the value at the upper weights with y at any vertex is not monotone: keep naive
    return num / den


def dl_box(yl, yh, vl, vh):
    """Interval enclosures of the DerSimonian-Laird estimate, CI bounds, I2 (percent) over boxes
    y_i in [yl, yh], v_i in [vl, vh] (arrays boxes x k), as metabuild.stats.pooling computes them:
    w = 1/v, Q = sum w (y - ybar_w)^2, tau2 = max(0, (Q - df) / (sum w - sum w^2 / sum w)),
    w* = 1/(v + tau2), mu = sum w* y / sum w*, se = (sum w*)^-1/2, CI mu -+ z se,
    I2 = max(0, (Q - df)/Q) * 100."""
    k = yl.shape[1]
    df = k - 1
    wl, wh = _dn(1 / vh), _up(1 / vl)
    # Q: the naive enclosure always; where the MDs are one point, intersected with the monotone one
    q = q_stat_iv(yl, yh, wl, wh)
    fixed = np.all(yl == yh, axis=1)
    if fixed.any():
        qm = q_stat(yl[fixed], wl[fixed], wh[fixed])
        q.lo[fixed] = np.maximum(q.lo[fixed], qm.lo)
        q.hi[fixed] = np.minimum(q.hi[fixed], qm.hi)
    # C = sum w - sum w^2/sum w = 2 sum_{i<j} w_i w_j / sum w
    num = Iv(np.zeros(len(yl)))
    for i, j in itertools.combinations(range(k), 2):
        num = num + Iv(wl[:, i], wh[:, i]) * Iv(wl[:, j], wh[:, j])
    c = num * Iv(2.0) / Iv(_dn(wl.sum(1)) * (1 - 1e-15), _up(wh.sum(1)) * (1 + 1e-15))
    tau2 = ((q - Iv(float(df))) / c).pos()
    wsl, wsh = _dn(1 / (vh + tau2.hi[:, None])), _up(1 / (vl + tau2.lo[:, None]))
    wsl, wsh = wsl * (1 - 1e-15), wsh * (1 + 1e-15)
    mu = wmean(yl, yh, wsl, wsh)
    se = Iv(wsl.sum(1) * (1 - 1e-14), wsh.sum(1) * (1 + 1e-14)).sqrt().recip()
    zse = se * Iv(Z975)
    i2 = q.pos()
    i2lo = np.where(i2.lo > 0, np.maximum(0, 1 - df / np.maximum(i2.lo, 1e-300)), 0.0) * 100
    i2hi = np.where(i2.hi > 0, np.maximum(0, 1 - df / np.maximum(i2.hi, 1e-300)), 0.0) * 100
    return {
        "estimate": mu,
        "ci_lower": mu - zse,
        "ci_upper": mu + zse,
        "i2": Iv(_dn(i2lo) - 1e-12, _up(i2hi) + 1e-12),
    }


def t_window(target: float, tol: float, df: int) -> tuple[float, float]:
    """|t| range whose two-sided t P (df) prints as ``target`` (|P - target| <= tol + SLACK),
    widened by 1e-9 relative for the accuracy of scipy's t quantile."""
    p_hi, p_lo = target + tol + SLACK, target - tol - SLACK
    t_lo = stats.t.isf(p_hi / 2, df)
    t_hi = stats.t.isf(p_lo / 2, df)
    return t_lo * (1 - 1e-9), t_hi * (1 + 1e-9)


def metareg_box(y, vl, vh, tl, th, group_a):
    """Enclosures over boxes (y fixed per box: boxes x k; v in [vl, vh]; REML tau2 in [tl, th]) of
    the REML score and of |t| of the moderator in the pipeline's binary-moderator meta-regression
    (metabuild.stats.metareg.meta_regression: WLS with w = 1/(v + tau2), Knapp-Hartung factor
    max(1, RSS/(k-2)), t on k - 2 df). With a 0/1 moderator the WLS slope is the difference of the
    two groups' weighted means, Var = (1/W_A + 1/W_B) * max(1, RSS/(k-2)), RSS = sum over groups of
    Q_G(w), and the REML score y'PPy - tr P = sum_G [sum_G w_i^2 r_i^2 - (W_G - sum_G w_i^2 / W_G)]
    with r_i the residual from the group's weighted mean (P's trace for a two-group design).
    Returns (score interval, |t| interval)."""
    k = y.shape[1]
    ga = np.array(group_a, bool)
    wl = _dn(1 / (vh + th[:, None])) * (1 - 1e-15)
    wh = _up(1 / (vl + tl[:, None])) * (1 + 1e-15)
    score = Iv(np.zeros(len(y)))
    means, ws, rss = [], [], Iv(np.zeros(len(y)))
    for g in (ga, ~ga):
        yg, wlg, whg = y[:, g], wl[:, g], wh[:, g]
        m = wmean(yg, yg, wlg, whg)
        W = Iv(wlg.sum(1) * (1 - 1e-14), whg.sum(1) * (1 + 1e-14))
        means.append(m)
        ws.append(W)
        rss = rss + q_stat(yg, wlg, whg)
        s = Iv(np.zeros(len(y)))
        sw2 = Iv(np.zeros(len(y)))
        for j in range(yg.shape[1]):
            w = Iv(wlg[:, j], whg[:, j])
            s = s + w.sqr() * (Iv(yg[:, j]) - m).sqr()
            sw2 = sw2 + w.sqr()
        score = score + s - (W - sw2 / W)
    b1 = (means[0] - means[1]).abs()
    kh = rss / Iv(float(k - 2))
    kh = Iv(np.maximum(kh.lo, 1.0), np.maximum(kh.hi, 1.0))
    var = (ws[0].recip() + ws[1].recip()) * kh
    t = b1 / var.sqrt()
    return score, t


def tau2_upper(y: np.ndarray, vmax: np.ndarray, group_a) -> float:
    """An upper bound for every root of the REML score (binary moderator, k trials): with
    w_i = 1/(v_i + tau2), sum w_i^2 r_i^2 <= S0/tau2^2 (S0 = sum of squares about the plain group
    means, since w_i <= 1/tau2 and the weighted mean minimises the weighted sum of squares) and
    sum_G (W_G - sum w^2/W_G) >= (k-2) min w >= (k-2)/(vmax + tau2); the score is negative when
    S0 (vmax + tau2) < (k-2) tau2^2."""
    ga = np.array(group_a, bool)
    s0 = float(sum(((y[g] - y[g].mean()) ** 2).sum() for g in (ga, ~ga)))
    k = len(y)
    vm = float(vmax.max())
    return (s0 + math.sqrt(s0 * s0 + 4 * (k - 2) * s0 * vm)) / (2 * (k - 2)) * (1 + 1e-9) + 1e-12


# ---------------------------------------------------------------- branch and bound
class Problem:
    """The primary block: k trials, analyses {name: (trial indices, {stat: (target, tol)})},
    each trial's described direction ("sig", "ns", "neg" or "" for none), and the aimed
    meta-regressions {name: (0/1 moderator over the k trials, target P, tol)}."""

    def __init__(self, analyses, signif, aims, grid=0.01):
        self.analyses = analyses
        self.signif = signif
        self.aims = aims
        self.grid = grid

    def keep_dl(self, Yl, Yh, Vl, Vh, assigned: set[int]) -> np.ndarray:
        """Boxes (rows) that may hold a point reproducing every analysis whose trials are all
        in ``assigned`` and every assigned trial's described direction."""
        ok = np.ones(len(Yl), bool)
        for idx, targets in self.analyses.values():
            if not set(idx) <= assigned:
                continue
            res = dl_box(Yl[:, idx], Yh[:, idx], Vl[:, idx], Vh[:, idx])
            for st, (t, tol) in targets.items():
                iv = res[st]
                ok &= (iv.hi >= t - tol - SLACK) & (iv.lo <= t + tol + SLACK)
        for i in assigned:
            sg = self.signif[i]
            if not sg:
                continue
            hi = Iv(Yl[:, i], Yh[:, i]) + Iv(Vl[:, i], Vh[:, i]).sqrt() * Iv(Z975)
            lo = Iv(Yl[:, i], Yh[:, i]) - Iv(Vl[:, i], Vh[:, i]).sqrt() * Iv(Z975)
            if sg == "sig":
                ok &= hi.lo < 0
            elif sg == "ns":
                ok &= (lo.lo < 0) & (hi.hi > 0)
            else:
                ok &= (Yl[:, i] < 0) & (hi.hi > 0)
        return ok

    def keep_aims(self, Y, Vl, Vh, Tl, Th, names) -> np.ndarray:
        ok = np.ones(len(Y), bool)
        for c, name in enumerate(names):
            mod, target, tol = self.aims[name]
            score, t = metareg_box(Y, Vl, Vh, Tl[:, c], Th[:, c], mod)
            root = ((score.lo <= 0) & (score.hi >= 0)) | ((Tl[:, c] == 0) & (score.lo <= 0))
            a, b = t_window(target, tol, len(mod) - 2)
            ok &= root & (t.hi >= a) & (t.lo <= b)
        return ok


def _snap(lo: np.ndarray, hi: np.ndarray, g: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer grid indices (multiples of g) inside [lo, hi]."""
    return np.ceil(lo / g - 1e-9).astype(np.int64), np.floor(hi / g + 1e-9).astype(np.int64)


def _branch_and_bound(boxes: dict, keep, widths, split, chunk: int = 20_000, max_open: int = 20_000_000):
    """Generic vectorised branch and bound, depth first in chunks (memory stays bounded).

    ``boxes``: dict of arrays with one row per box. ``keep(b)``: mask of boxes that may hold a
    feasible point (False only when proven empty). ``widths(b)``: (n, d) widths in resolution units.
    ``split(b, j)``: two dicts, box halves along coordinate j per row. Returns (the surviving boxes
    at resolution - every width <= 1 - and the number of box evaluations)."""
    stack = [boxes]
    done = []
    n_eval = 0
    while stack:
        # merge the most recent open arrays up to ``chunk`` boxes (halving makes many small arrays)
        parts, n = [], 0
        while stack and n < chunk:
            parts.append(stack.pop())
            n += len(next(iter(parts[-1].values())))
        b = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if n > 2 * chunk:
            stack += [{k: v[i : i + chunk] for k, v in b.items()} for i in range(0, n, chunk)]
            continue
        ok = keep(b)
        n_eval += n
        b = {k: v[ok] for k, v in b.items()}
        if not ok.any():
            continue
        w = widths(b)
        j = w.argmax(1)
        res = w[np.arange(len(w)), j] <= 1
        if res.any():
            done.append({k: v[res] for k, v in b.items()})
        if (~res).any():
            b = {k: v[~res] for k, v in b.items()}
            stack += list(split(b, j[~res]))
        if sum(len(next(iter(x.values()))) for x in stack) > max_open:
            raise RuntimeError(f"more than {max_open} open boxes")
    if not done:
        return {k: v[:0] for k, v in boxes.items()}, n_eval
    return {k: np.concatenate([d[k] for d in done]) for k in boxes}, n_eval


def _split_rows(arrs: dict, j: np.ndarray, how: dict) -> tuple[dict, dict]:
    """Halve each row's box along coordinate j (over the concatenated columns of the arrays named
    in ``how``: name -> "int" (integer grid range, with partner "<name>_hi"), "geo" (geometric
    midpoint, partner "<name>_hi") or "mid")."""
    a = {k: v.copy() for k, v in arrs.items()}
    b = {k: v.copy() for k, v in arrs.items()}
    r = np.arange(len(j))
    off = 0
    for name, kind in how.items():
        lo, hi = arrs[name], arrs[name + "_hi"]
        d = lo.shape[1]
        sel = (j >= off) & (j < off + d)
        rr, jj = r[sel], j[sel] - off
        if kind == "int":
            mid = (lo[rr, jj] + hi[rr, jj]) // 2
            a[name + "_hi"][rr, jj] = mid
            b[name][rr, jj] = mid + 1
        else:
            mid = np.sqrt(lo[rr, jj] * hi[rr, jj]) if kind == "geo" else 0.5 * (lo[rr, jj] + hi[rr, jj])
            a[name + "_hi"][rr, jj] = mid
            b[name][rr, jj] = mid
        off += d
    return a, b


def _bnb(prob: Problem, Kl, Kh, Vl, Vh, assigned: set[int], v_rel: float, max_boxes: int):
    """Branch and bound until every surviving box has one MD grid point per assigned trial and
    variance ranges no wider than v_rel relative. Returns the surviving boxes (K, Vl, Vh) and the
    number of box evaluations."""
    k = Kl.shape[1]
    g = prob.grid
    on = np.isin(np.arange(k), sorted(assigned))

    def keep(b):
        return prob.keep_dl(b["K"] * g, b["K_hi"] * g, b["V"], b["V_hi"], assigned)

    def widths(b):
        # MD ranges in grid steps (x2: resolved only at one grid point), variances in units of
        # v_rel on the log scale; the widest is split (MDs first made both never pruned: every MD of
        # [-10, 10] has SOME variance that fits while the variance range is wide)
        wy = np.where(on, (b["K_hi"] - b["K"]).astype(float), 0.0) * 2
        wv = np.where(on, np.log(b["V_hi"] / b["V"]) / v_rel, 0.0)
        return np.concatenate([wy, wv], 1)

    out, n_eval = _branch_and_bound(
        {"K": Kl, "K_hi": Kh, "V": Vl, "V_hi": Vh},
        keep,
        widths,
        lambda b, j: _split_rows(b, j, {"K": "int", "V": "geo"}),
        max_open=max_boxes,
    )
    return out["K"], out["V"], out["V_hi"], n_eval


def cover_grid(prob: Problem, Y0, Vl0, Vh0, stages, v_rel=(1e-2,), max_boxes=4_000_000, log=print):
    """Every grid MD vector (multiples of prob.grid) for which some variances in the box reproduce
    every pooled value: staged branch and bound (trials added in ``stages``, each stage refined to
    the relative variance resolution v_rel[stage] or the last entry). Y0: the MD range per trial;
    Vl0/Vh0 the variance range. Returns (K, Vl, Vh, n_eval): rows = surviving boxes (MDs as grid
    integers), an OUTER cover of the data sets that reproduce the pooled values."""
    k = len(Vl0)
    Kl = np.zeros((1, k), np.int64)
    Kh = np.zeros((1, k), np.int64)
    Vl = np.array([Vl0], float)
    Vh = np.array([Vh0], float)
    assigned: set[int] = set()
    n_eval = 0
    for s, stage in enumerate(stages):
        for i in stage:
            a, b = _snap(np.array([Y0[i][0]]), np.array([Y0[i][1]]), prob.grid)
            Kl[:, i], Kh[:, i] = a[0], b[0]
        assigned |= set(stage)
        Kl, Vl, Vh, n = _bnb(prob, Kl, Kh, Vl, Vh, assigned, v_rel[min(s, len(v_rel) - 1)], max_boxes)
        Kh = Kl.copy()
        n_eval += n
        cols = sorted(assigned)
        n_y = len({tuple(r) for r in Kl[:, cols]})
        log(f"  stage {stage}: {len(Kl)} boxes, {n_y} MD vectors, {n_eval} box evaluations")
    return Kl, Vl, Vh, n_eval


def prove_aims(prob: Problem, K, Vl, Vh, names, v_rel=1e-7, max_boxes=20_000_000, log=print):
    """Branch and bound over the boxes of :func:`cover_grid` (MDs fixed at their grid point) with
    the REML tau2 of each aimed meta-regression as an extra coordinate, keeping a box only if every
    pooled value, every aimed P and every REML score root condition can hold in it.

    Returns (undecided boxes as (K, Vl, Vh, Tl, Th), n_eval). No undecided box: no data set in the
    cover reproduces the pooled values and the aimed P values together (a proof); undecided boxes
    are narrower than v_rel (relative) in every variance and tau2 and must be examined."""
    g = prob.grid
    k = K.shape[1]
    assigned = set(range(k))
    Y = K * g
    Th = np.array([[tau2_upper(Y[b], Vh[b], prob.aims[nm][0]) for nm in names] for b in range(len(K))])
    Th = Th.reshape(len(K), len(names))

    def keep(b):
        y = b["K"] * g
        return prob.keep_dl(y, y, b["V"], b["V_hi"], assigned) & prob.keep_aims(
            y, b["V"], b["V_hi"], b["T"], b["T_hi"], names
        )

    def widths(b):
        wv = (b["V_hi"] - b["V"]) / (v_rel * b["V"])
        wt = (b["T_hi"] - b["T"]) / (v_rel * np.maximum(b["T_hi"], 1e-6))
        return np.concatenate([wv, wt], 1)

    out, n_eval = _branch_and_bound(
        {"K": K, "V": Vl.copy(), "V_hi": Vh.copy(), "T": np.zeros_like(Th), "T_hi": Th},
        keep,
        widths,
        lambda b, j: _split_rows(b, j, {"V": "geo", "T": "mid"}),
        max_open=max_boxes,
    )
    return (out["K"], out["V"], out["V_hi"], out["T"], out["T_hi"]), n_eval
