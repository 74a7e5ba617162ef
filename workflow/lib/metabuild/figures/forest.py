"""Forest plots (Stata/RevMan layout) and the leave-one-out sensitivity plot.

Pure drawing: an analysis result dict (the JSON that :mod:`metabuild.analysis` writes) in,
``<stem>.svg`` and ``<stem>.png`` out. Layout is computed in inches from the measured width
of every text, so columns never overlap and nothing is clipped whatever the labels.

Scales: difference measures (MD, SMD) are drawn on a linear axis with the null line at 0;
ratio measures (RR, OR, HR) on a log axis with the null line at 1, and their estimates and
CI limits must be given on the ratio scale (positive numbers).

The drawn elements carry SVG ids (``gid``) so tests and readers can find them:
``study-square-<i>``, ``study-ci-<i>``, ``arrow-left-<i>``/``arrow-right-<i>``,
``diamond-<name>``, ``null-line``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.path import Path as MplPath
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from .common import (
    NBSP,
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_tick,
    new_figure,
    save_figure,
    style,
    text_width,
    wrap_segments,
)

RATIO_MEASURES = {"RR", "OR", "HR", "IRR"}
MEASURE_NAMES = {
    "MD": "Mean difference",
    "SMD": "Standardized mean difference",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "HR": "Hazard ratio",
    "IRR": "Incidence rate ratio",
}
METHOD_LABELS = {
    "DL": "DerSimonian-Laird random effects",
    "REML": "Restricted maximum-likelihood random effects",
    "PM": "Paule-Mandel random effects",
    "FE": "Inverse-variance fixed effect",
    "IV": "Inverse-variance fixed effect",
    "MH": "Mantel-Haenszel fixed effect",
}

SQUARE_COLOUR = "#1f3b73"
SUBTOTAL_FILL = "#8c8c8c"
OVERALL_FILL = "#000000"
# Sizes at print size: the figure is drawn at the text width of the documents (FIG_WIDTH), so it
# prints 1:1 and no text falls under the 7 pt journals ask for (tests/test_figure_legibility.py).
FS = 7.0  # table text, points
SMALL = 7.0  # footnote-size text under diamonds

ROW_IN = 0.185  # height of one table row, inches
COL_GAP = 0.06  # space between text columns, inches
PLOT_GAP = 0.12  # space between the text columns and the plot, inches
MARGIN = 0.08  # figure margin, inches
FIG_WIDTH = 6.5  # target figure width, inches: the text width of a Letter page with 1-inch margins
# (the Word documents) and within the A4 PDF's 6.6-inch column
MIN_PLOT_W = 1.3  # the plot panel is never narrower than this, inches
MAX_SQUARE_PT = 9.0  # side of the largest study square, points
MIN_SQUARE_PT = 3.0
#: Above this many studies a forest plot drops its per-study table (see :func:`build_forest`).
MAX_TABLE_STUDIES = 150


# --------------------------------------------------------------------------- layout model


@dataclass
class Col:
    key: str
    header: str
    align: str = "right"  # "left" | "right"
    group: str | None = None  # spanner label above the header (an arm's label)
    width: float = 0.0
    x0: float = 0.0  # left edge, inches from the figure's left edge

    @property
    def x1(self) -> float:
        return self.x0 + self.width


@dataclass
class Row:
    kind: str  # "study" | "pooled" | "label" | "text" | "gap"
    cells: dict[str, str] = field(default_factory=dict)
    bold: bool = False
    est: float | None = None
    lo: float | None = None
    hi: float | None = None
    weight: float | None = None
    gid: str = ""
    fill: str = OVERALL_FILL
    text: str = ""  # "text" rows: one line spanning the left columns (mathtext allowed)
    height: float = 1.0  # in row units
    y: float = 0.0  # centre, row units from the top of the table body


def _num(d: dict, key: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int_text(v) -> str:
    if v is None:
        return ""
    try:
        return str(int(round(float(v))))
    except (TypeError, ValueError):
        return str(v)


# --------------------------------------------------------------------------- axis range


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks 1-2-5 per decade (or decades only when that gives too many) covering [lo, hi]."""
    k0, k1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    for mantissas in ((1, 2, 5), (1,), (1, 3)):
        cands = sorted(m * 10.0**k for k in range(k0, k1 + 1) for m in mantissas)
        below = [c for c in cands if c <= lo * (1 + 1e-9)]
        above = [c for c in cands if c >= hi * (1 - 1e-9)]
        t0, t1 = below[-1], above[0]
        ticks = [c for c in cands if t0 * (1 - 1e-9) <= c <= t1 * (1 + 1e-9)]
        if 3 <= len(ticks) <= 7 or (len(ticks) <= 7 and mantissas == (1,)):
            return [float(f"{t:.6g}") for t in ticks]
    # many decades: every other decade
    ticks = [10.0**k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    return ticks[:: max(1, len(ticks) // 6)] + ([ticks[-1]] if (len(ticks) - 1) % max(1, len(ticks) // 6) else [])


def axis_ticks(
    points: Sequence[float], ci_ends: Sequence[float], *, log: bool, null: float
) -> tuple[list[float], tuple[float, float]]:
    """Choose ticks and limits for the effect axis.

    The axis always shows the null value, every point estimate and every pooled CI (in
    ``points``). Study CI ends (``ci_ends``) are shown as long as they lie within one
    "core span" beyond the core range, so one very imprecise study (e.g. a zero cell) does not
    squash all the others; CIs running further get an arrow at the axis edge.
    """

    def tf(v: float) -> float:
        return math.log10(v) if log else v

    def inv(v: float) -> float:
        return 10.0**v if log else v

    core = [tf(v) for v in [*points, null] if v is not None and (v > 0 or not log)]
    c0, c1 = min(core), max(core)
    span = max(c1 - c0, 0.3 if log else 0.5)
    lo, hi = c0, c1
    for v in ci_ends:
        if v is None or (log and v <= 0):
            continue
        t = tf(v)
        lo, hi = min(lo, max(t, c0 - span)), max(hi, min(t, c1 + span))
    if log:
        ticks = _nice_log_ticks(inv(lo), inv(hi))
    else:
        ticks = [float(t) for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)]
        ticks = [round(t, 10) + 0.0 for t in ticks]
        # MaxNLocator may add one tick beyond each end; keep the innermost covering pair
        while len(ticks) > 2 and ticks[1] <= lo + 1e-12:
            ticks.pop(0)
        while len(ticks) > 2 and ticks[-2] >= hi - 1e-12:
            ticks.pop()
    # keep the null line off the frame: one more tick beyond it when it sits on an end
    if len(ticks) >= 2:
        if abs(ticks[0] - null) < 1e-12:
            ticks.insert(0, ticks[0] * ticks[0] / ticks[1] if log else ticks[0] - (ticks[1] - ticks[0]))
        if abs(ticks[-1] - null) < 1e-12:
            ticks.append(ticks[-1] * ticks[-1] / ticks[-2] if log else ticks[-1] + (ticks[-1] - ticks[-2]))
        ticks = [float(f"{t:.6g}") for t in ticks]
    return ticks, (ticks[0], ticks[-1])


# --------------------------------------------------------------------------- drawing engine


def _arrow_marker(direction: str) -> MplPath:
    """Triangle with its tip at the marker origin, pointing ``left`` or ``right``."""
    s = 1.0 if direction == "left" else -1.0
    return MplPath([(0, 0), (s, 0.42), (s, -0.42), (0, 0)], closed=True)


def _draw_table_forest(
    rows: list[Row],
    left: list[Col],
    right: list[Col],
    *,
    log: bool,
    null: float,
    xlabel: str,
    favours: tuple[str, str] | None,
    title: str | None,
    xlim: tuple[float, float] | None,
    ref_line: float | None = None,
    marker: str = "square",
) -> Figure:
    cols = left + right
    # ---- column widths from the measured text
    for c in cols:
        w = text_width(c.header, FS, weight="bold")
        for r in rows:
            # a subgroup label row has no other cell: it runs across the empty columns beside it
            # instead of widening the first column (and the figure) by its own length
            if r.kind == "label" and len(r.cells) == 1:
                continue
            if c.key in r.cells:
                w = max(w, text_width(r.cells[c.key], FS, weight="bold" if r.bold else "normal"))
        c.width = w
    # spanners must fit over their columns
    groups: dict[str, list[Col]] = {}
    for c in cols:
        if c.group:
            groups.setdefault(c.group, []).append(c)
    for g, gcols in groups.items():
        need = text_width(g, FS, weight="bold") - (sum(c.width for c in gcols) + COL_GAP * (len(gcols) - 1))
        if need > 0:
            for c in gcols:
                c.width += need / len(gcols)

    x = MARGIN
    for c in left:
        c.x0 = x
        x += c.width + COL_GAP
    left_end = x - COL_GAP
    right_w = sum(c.width for c in right) + COL_GAP * max(len(right) - 1, 0)
    plot_w = max(MIN_PLOT_W, FIG_WIDTH - 2 * MARGIN - (left_end - MARGIN) - right_w - 2 * PLOT_GAP)
    plot_x0 = left_end + PLOT_GAP
    x = plot_x0 + plot_w + PLOT_GAP
    for c in right:
        c.x0 = x
        x += c.width + COL_GAP
    fig_w = max(FIG_WIDTH, x - COL_GAP + MARGIN)

    # ---- text rows spanning the left columns: wrap to the space left of the plot
    text_w = plot_x0 - PLOT_GAP - MARGIN
    expanded: list[Row] = []
    for r in rows:
        if r.kind == "text":
            segs = r.text.split("\x1f")  # segments joined by the unit separator
            for line in wrap_segments(segs, text_w, size=SMALL, math=True):
                expanded.append(Row(kind="text", text=line, height=0.8))
        else:
            expanded.append(r)
    rows = expanded + [Row(kind="gap", height=0.35)]  # air between the last row and the axis

    # ---- vertical positions (row units from the top of the body)
    y = 0.0
    for r in rows:
        r.y = y + r.height / 2
        y += r.height
    body_units = y
    header_units = 2.0 if groups else 1.2
    title_in = 0.24 if title else 0.0
    top_in = MARGIN + title_in + header_units * ROW_IN + 0.06
    bottom_in = 0.52 + (0.16 if favours else 0.0)
    fig_h = top_in + body_units * ROW_IN + bottom_in
    fig = new_figure(fig_w, fig_h)

    ax = fig.add_axes((plot_x0 / fig_w, bottom_in / fig_h, plot_w / fig_w, body_units * ROW_IN / fig_h))
    ax.set_ylim(body_units, 0)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.yaxis.set_visible(False)
    ax.patch.set_visible(False)

    # ---- effect axis
    pts, ends = [], []
    for r in rows:
        if r.kind == "study":
            pts.append(r.est)
            ends += [r.lo, r.hi]
        elif r.kind == "pooled":
            pts += [r.est, r.lo, r.hi]
    if log:
        ax.set_xscale("log")
    if xlim is None:
        ticks, lims = axis_ticks([p for p in pts if p is not None], ends, log=log, null=null)
    else:
        lims = (float(xlim[0]), float(xlim[1]))
        if log:
            ticks = [t for t in _nice_log_ticks(*lims) if lims[0] <= t <= lims[1]]
        else:
            ticks = [t for t in MaxNLocator(nbins=6).tick_values(*lims) if lims[0] - 1e-9 <= t <= lims[1] + 1e-9]
    ax.set_xlim(*lims)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [fmt_tick(t) for t in ticks])
    ax.tick_params(axis="x", pad=2, labelsize=FS)

    # null line through the body; reference (overall estimate) line through the studies
    ax.axvline(null, color="black", lw=0.6, zorder=1, gid="null-line")
    if ref_line is not None:
        study_ys = [r.y for r in rows if r.kind in ("study", "pooled")]
        ax.vlines(
            ref_line,
            min(study_ys) - 0.5,
            max(study_ys) + 0.5,
            colors="#9a9a9a",
            lw=0.6,
            linestyles=(0, (3, 2)),
            zorder=1,
            gid="reference-line",
        )

    # ---- studies and diamonds
    wmax = max((r.weight for r in rows if r.kind == "study" and r.weight), default=None)
    lo_lim, hi_lim = lims

    def inside(v: float) -> bool:
        return lo_lim <= v <= hi_lim

    for r in rows:
        if r.kind == "study" and r.est is not None:
            if r.lo is not None and r.hi is not None:
                a, b = max(r.lo, lo_lim), min(r.hi, hi_lim)
                if a < b:
                    ax.add_line(Line2D([a, b], [r.y, r.y], color="black", lw=0.8, zorder=3, gid=f"study-ci-{r.gid}"))
                if r.lo < lo_lim:
                    ax.add_line(
                        Line2D(
                            [lo_lim],
                            [r.y],
                            marker=_arrow_marker("left"),
                            ms=7,
                            color="black",
                            lw=0,
                            zorder=4,
                            clip_on=False,
                            gid=f"arrow-left-{r.gid}",
                        )
                    )
                if r.hi > hi_lim:
                    ax.add_line(
                        Line2D(
                            [hi_lim],
                            [r.y],
                            marker=_arrow_marker("right"),
                            ms=7,
                            color="black",
                            lw=0,
                            zorder=4,
                            clip_on=False,
                            gid=f"arrow-right-{r.gid}",
                        )
                    )
            if inside(r.est):
                if marker == "square":
                    side = MAX_SQUARE_PT * math.sqrt(r.weight / wmax) if (r.weight and wmax) else MIN_SQUARE_PT
                    side = max(side, MIN_SQUARE_PT)
                    ax.add_line(
                        Line2D(
                            [r.est],
                            [r.y],
                            marker="s",
                            ms=side,
                            mew=0,
                            color=SQUARE_COLOUR,
                            lw=0,
                            zorder=2,
                            gid=f"study-square-{r.gid}",
                        )
                    )
                else:
                    ax.add_line(
                        Line2D(
                            [r.est],
                            [r.y],
                            marker="o",
                            ms=4.2,
                            mew=0,
                            color=SQUARE_COLOUR,
                            lw=0,
                            zorder=4,
                            gid=f"study-point-{r.gid}",
                        )
                    )
        elif r.kind == "pooled" and r.est is not None:
            half = 0.36 * r.height
            ax.add_patch(
                Polygon(
                    [(r.lo, r.y), (r.est, r.y - half), (r.hi, r.y), (r.est, r.y + half)],
                    closed=True,
                    facecolor=r.fill,
                    edgecolor="black",
                    lw=0.6,
                    zorder=3,
                    gid=f"diamond-{r.gid}",
                )
            )

    # ---- text: blended transform, x in inches from the figure's left edge, y in row units
    tr = blended_transform_factory(fig.dpi_scale_trans, ax.transData)

    def put(xpos, ypos, s, align, *, bold=False, size=FS, math_=False, va="center", gid=None):
        ax.text(
            xpos,
            ypos,
            s,
            transform=tr,
            ha=align,
            va=va,
            fontsize=size,
            fontweight="bold" if bold else "normal",
            parse_math=math_,
            clip_on=False,
            gid=gid,
        )

    for n, r in enumerate(rows):
        if r.kind == "text":
            put(
                left[0].x0,
                r.y,
                r.text,
                "left",
                size=SMALL,
                math_=True,
                va="center_baseline",
                gid=f"stat-text-{n}",
            )
            continue
        for c in cols:
            s = r.cells.get(c.key)
            if s:
                put(
                    c.x0 if c.align == "left" else c.x1,
                    r.y,
                    s,
                    c.align,
                    bold=r.bold,
                    va="center_baseline",
                    gid=f"cell-{c.key}-{r.gid}" if r.gid else None,
                )

    # ---- headers (above the body, negative row units)
    y_hdr = -0.5 - 0.15
    for c in cols:
        put(c.x0 if c.align == "left" else c.x1, y_hdr, c.header, c.align, bold=True, va="center_baseline")
    for g, gcols in groups.items():
        gx0, gx1 = gcols[0].x0, gcols[-1].x1
        put((gx0 + gx1) / 2, y_hdr - 1.0, g, "center", bold=True, va="center_baseline")
        ax.add_line(
            Line2D([gx0, gx1], [y_hdr - 0.55, y_hdr - 0.55], transform=tr, color="black", lw=0.5, clip_on=False)
        )
    rule_x1 = max(x - COL_GAP, plot_x0 + plot_w)
    ax.add_line(Line2D([MARGIN, rule_x1], [-0.08, -0.08], transform=tr, color="black", lw=0.6, clip_on=False))
    if title:
        fig.text(
            MARGIN / fig_w,
            1 - MARGIN / fig_h,
            title,
            ha="left",
            va="top",
            fontsize=FS + 1.5,
            fontweight="bold",
            parse_math=False,
        )

    # ---- under the axis: favours labels next to the null line, then the axis label
    frac = (
        (math.log10(null) - math.log10(lo_lim)) / (math.log10(hi_lim) - math.log10(lo_lim))
        if log
        else (null - lo_lim) / (hi_lim - lo_lim)
    )
    null_in = plot_x0 + frac * plot_w
    trb = fig.dpi_scale_trans
    y_fav = bottom_in - 0.31
    if favours:
        gap = 0.06
        fig.text(
            null_in - gap,
            y_fav,
            f"\u2190 {favours[0]}",
            transform=trb,
            ha="right",
            va="center_baseline",
            fontsize=SMALL,
            parse_math=False,
        )
        fig.text(
            null_in + gap,
            y_fav,
            f"{favours[1]} \u2192",
            transform=trb,
            ha="left",
            va="center_baseline",
            fontsize=SMALL,
            parse_math=False,
        )
    y_lab = y_fav - (0.17 if favours else 0.0)
    fig.text(
        plot_x0 + plot_w / 2,
        y_lab,
        xlabel,
        transform=trb,
        ha="center",
        va="center_baseline",
        fontsize=FS + 0.5,
        parse_math=False,
    )
    return fig


# --------------------------------------------------------------------------- forest plot


def _tied(text: str) -> str:
    """``text`` with no-break spaces outside ``$...$``, so that a wrapped statistic line never
    parts a value from its name (``df = 2 (P =`` / ``.235)``)."""
    pieces = text.split("$")
    return "$".join(p if i % 2 else p.replace(" ", NBSP) for i, p in enumerate(pieces))


def _stat_text(pooled: dict, *, log: bool) -> tuple[str, str]:
    """The heterogeneity line and the overall-effect line under a diamond (``\\x1f``
    separates segments that may be wrapped onto separate lines)."""
    q, df, q_p = _num(pooled, "q"), pooled.get("df"), _num(pooled, "q_p")
    i2, tau2 = _num(pooled, "i2"), _num(pooled, "tau2")
    segs = []
    if q is not None and df is not None:
        df_text = f"df = {int(df)}" + (f" ($P$ {fmt_p(q_p)})" if q_p is not None else "")
        segs.append(f"Heterogeneity: {_tied(f'$Q$ = {fmt_num(q)},')} {_tied(df_text)}")
    if i2 is not None:
        segs.append(_tied(f"$I^2$ = {fmt_num(i2, 1)}%"))
    if tau2 is not None:
        segs.append(_tied(rf"$\tau^2$ = {fmt_num(tau2, 2 if (tau2 == 0 or tau2 >= 0.01) else 3)}"))
    het_line = "\x1f".join(segs)
    z = _num(pooled, "z")
    if z is None:
        est, lo, hi = _num(pooled, "estimate"), _num(pooled, "ci_lower"), _num(pooled, "ci_upper")
        if None not in (est, lo, hi) and (not log or min(est, lo, hi) > 0):
            if log:
                est, lo, hi = math.log(est), math.log(lo), math.log(hi)
            se = (hi - lo) / (2 * 1.959963984540054)
            z = est / se if se > 0 else None
    parts = []
    if z is not None:
        parts.append(f"$z$ = {fmt_num(z)}")
    if _num(pooled, "p") is not None:
        parts.append(f"$P$ {fmt_p(_num(pooled, 'p'))}")
    eff_line = ""
    if parts:
        eff_line = "Test for overall effect: " + _tied(f"{parts[0]} ({parts[1]})" if len(parts) == 2 else parts[0])
    return het_line, eff_line


#: arm ids and labels when a result does not name its arms
DEFAULT_ARMS = ({"id": "treatment", "label": "Treatment"}, {"id": "control", "label": "Control"})


def _arms(result: dict) -> tuple[dict, dict]:
    """The result's arms (:func:`metabuild.review.result_arms`), or :data:`DEFAULT_ARMS`."""
    from metabuild.review import result_arms

    try:
        first, second = result_arms(result)
    except ValueError:
        return DEFAULT_ARMS
    return first, second


def _arm_ids(result: dict) -> tuple[str, str]:
    arms = _arms(result)
    return arms[0]["id"], arms[1]["id"]


def _favours(result: dict, favours: tuple[str, str] | None | bool) -> tuple[str, str] | None:
    """``favours`` as given, or the result's (its arms'), when left to the default (True)."""
    if favours is not True:
        return favours  # type: ignore[return-value]
    if result.get("favours"):
        return tuple(result["favours"])  # type: ignore[return-value]
    arms = _arms(result)
    return f"Favours {arms[0]['label'].lower()}", f"Favours {arms[1]['label'].lower()}"


def _study_row(s: dict, i: str, measure: str, arms: tuple[str, str] = ("treatment", "control")) -> Row:
    est, lo, hi = _num(s, "estimate"), _num(s, "ci_lower"), _num(s, "ci_upper")
    label = str(s.get("label") or s.get("study_label") or s.get("study_id") or f"Study {i}")
    cells = {"label": label}
    if measure in RATIO_MEASURES:
        for arm in arms:
            ev, n = s.get(f"events_{arm}"), s.get(f"n_{arm}")
            cells[f"ev_{arm}"] = f"{_int_text(ev)}/{_int_text(n)}" if ev is not None and n is not None else ""
    else:
        for arm in arms:
            m, sd = _num(s, f"mean_{arm}"), _num(s, f"sd_{arm}")
            cells[f"msd_{arm}"] = (
                f"{fmt_num(m)} ({fmt_num(sd)})"
                if m is not None and sd is not None
                else (fmt_num(m) if m is not None else "")
            )
            cells[f"n_{arm}"] = _int_text(s.get(f"n_{arm}"))
    w = _num(s, "weight")
    if est is None or lo is None or hi is None:
        cells["effect"] = "Not estimable"
        est = lo = hi = None
    else:
        if measure in RATIO_MEASURES and min(est, lo, hi) <= 0:
            raise ValueError(
                f"forest_plot: study {label!r}: {measure} estimate and CI must be on the ratio scale "
                f"(positive), got {est}, ({lo}, {hi})"
            )
        if not lo <= est <= hi:
            raise ValueError(f"forest_plot: study {label!r}: estimate {est} is outside its CI ({lo}, {hi})")
        cells["effect"] = fmt_ci(est, lo, hi)
    cells["weight"] = fmt_num(w, 1) if w is not None else ""
    return Row(kind="study", cells=cells, est=est, lo=lo, hi=hi, weight=w, gid=str(i))


def _pooled_row(
    pooled: dict,
    label: str,
    studies: list[dict],
    measure: str,
    gid: str,
    fill: str,
    weight: float | None,
    arms: tuple[str, str] = ("treatment", "control"),
) -> Row:
    est, lo, hi = _num(pooled, "estimate"), _num(pooled, "ci_lower"), _num(pooled, "ci_upper")
    if None in (est, lo, hi):
        raise ValueError(f"forest_plot: pooled result {label!r} lacks estimate/ci_lower/ci_upper")
    if measure in RATIO_MEASURES and min(est, lo, hi) <= 0:
        raise ValueError(
            f"forest_plot: pooled {measure} {label!r} must be on the ratio scale (positive), got {est}, ({lo}, {hi})"
        )
    cells = {
        "label": label,
        "effect": fmt_ci(est, lo, hi),
        "weight": fmt_num(weight, 1) if weight is not None else "",
    }
    if measure in RATIO_MEASURES:
        for arm in arms:
            evs = [s.get(f"events_{arm}") for s in studies]
            ns = [s.get(f"n_{arm}") for s in studies]
            if all(v is not None for v in evs + ns):
                cells[f"ev_{arm}"] = f"{_int_text(sum(map(float, evs)))}/{_int_text(sum(map(float, ns)))}"
    else:
        for arm in arms:
            ns = [s.get(f"n_{arm}") for s in studies]
            if all(v is not None for v in ns):
                cells[f"n_{arm}"] = _int_text(sum(map(float, ns)))
    return Row(kind="pooled", cells=cells, bold=True, est=est, lo=lo, hi=hi, gid=gid, fill=fill, height=1.1)


def _columns(measure: str, arms: tuple[dict, dict] = DEFAULT_ARMS) -> tuple[list[Col], list[Col]]:
    (t, t_label), (c, c_label) = ((a["id"], a["label"]) for a in arms)
    if measure in RATIO_MEASURES:
        left = [
            Col("label", "Study", "left"),
            Col(f"ev_{t}", "Events/N", "right", group=t_label),
            Col(f"ev_{c}", "Events/N", "right", group=c_label),
        ]
    else:
        left = [
            Col("label", "Study", "left"),
            Col(f"msd_{t}", "Mean (SD)", "right", group=t_label),
            Col(f"n_{t}", "N", "right", group=t_label),
            Col(f"msd_{c}", "Mean (SD)", "right", group=c_label),
            Col(f"n_{c}", "N", "right", group=c_label),
        ]
    right = [Col("effect", f"{measure} (95% CI)", "right"), Col("weight", "Weight (%)", "right")]
    return left, right


def build_forest(
    result: dict,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    favours: tuple[str, str] | None | bool = True,
    xlim: tuple[float, float] | None = None,
    max_table_studies: int = MAX_TABLE_STUDIES,
) -> Figure:
    """The forest plot of ``result`` as a :class:`~matplotlib.figure.Figure` (see :func:`forest_plot`)."""
    if not isinstance(result, dict):
        raise ValueError(f"forest_plot: result must be a dict, got {type(result).__name__}")
    name = result.get("analysis", "?")
    measure = str(result.get("measure", "MD")).upper()
    log = measure in RATIO_MEASURES
    favours = _favours(result, favours)
    arms = _arm_ids(result)
    subgroups = result.get("subgroups") or []
    if subgroups:
        if not any(sg.get("studies") for sg in subgroups):
            raise ValueError(f"forest_plot: analysis {name!r} has subgroups but none has any studies")
    elif not result.get("studies"):
        raise ValueError(f"forest_plot: analysis {name!r} has no studies to plot (empty 'studies')")
    if not isinstance(result.get("pooled"), dict):
        raise ValueError(f"forest_plot: analysis {name!r} has no 'pooled' result")

    n_studies = sum(len(sg.get("studies") or []) for sg in subgroups) if subgroups else len(result["studies"])
    if n_studies > max_table_studies:
        return _build_compact_forest(result, title=title, xlabel=xlabel, favours=favours, limit=max_table_studies)

    rows: list[Row] = []
    counter = 0

    def add_block(studies: list[dict]) -> None:
        nonlocal counter
        for s in studies:
            rows.append(_study_row(s, str(counter), measure, arms))
            counter += 1

    if subgroups:
        all_studies: list[dict] = []
        for j, sg in enumerate(subgroups):
            studies = sg.get("studies") or []
            if not studies:
                continue
            all_studies += studies
            label = str(sg.get("label") or sg.get("level") or f"Subgroup {j + 1}")
            rows.append(Row(kind="label", cells={"label": label}, bold=True))
            add_block(studies)
            ws = [_num(s, "weight") for s in studies]
            subtotal_w = sum(ws) if all(w is not None for w in ws) else None
            if isinstance(sg.get("pooled"), dict):
                rows.append(
                    _pooled_row(
                        sg["pooled"], "Subtotal", studies, measure, f"subgroup-{j}", SUBTOTAL_FILL, subtotal_w, arms
                    )
                )
                het, eff = _stat_text(sg["pooled"], log=log)
                rows += [Row(kind="text", text=t) for t in (het, eff) if t]
            rows.append(Row(kind="gap", height=0.5))
        rows.append(
            _pooled_row(result["pooled"], "Overall", all_studies, measure, "overall", OVERALL_FILL, 100.0, arms)
        )
    else:
        add_block(result["studies"])
        all_studies = result["studies"]
        rows.append(
            _pooled_row(result["pooled"], "Overall", all_studies, measure, "overall", OVERALL_FILL, 100.0, arms)
        )
    het, eff = _stat_text(result["pooled"], log=log)
    rows += [Row(kind="text", text=t) for t in (het, eff) if t]
    metareg = result.get("metareg")
    if subgroups and isinstance(metareg, dict) and _num(metareg, "p") is not None:
        rows.append(
            Row(
                kind="text",
                text=f"Test for subgroup differences (meta-regression): $P$ {fmt_p(metareg['p'])}",
            )
        )
    method = result.get("method")
    if method:
        rows.append(Row(kind="text", text=f"Pooling: {METHOD_LABELS.get(str(method).upper(), str(method))}"))

    left, right = _columns(measure, _arms(result))
    if xlabel is None:
        xlabel = MEASURE_NAMES.get(measure, measure) + (" (log scale)" if log else "")
    null = 1.0 if log else 0.0
    with style():
        return _draw_table_forest(
            rows,
            left,
            right,
            log=log,
            null=null,
            xlabel=xlabel,
            favours=favours,
            title=title,
            xlim=xlim,
            ref_line=_num(result["pooled"], "estimate"),
        )


def forest_plot(
    result: dict,
    stem: Path,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    favours: tuple[str, str] | None | bool = True,
    xlim: tuple[float, float] | None = None,
    max_table_studies: int = MAX_TABLE_STUDIES,
) -> list[Path]:
    """Draw the forest plot of an analysis result; write ``stem.svg`` and ``stem.png``.

    ``result`` is the analysis result dict (``measure`` "MD" or a ratio measure, ``studies``,
    ``pooled``; optional ``subgroups`` each with ``label``, ``studies``, ``pooled``, and
    ``metareg`` with the subgroup-difference ``p``). ``title`` is drawn above the table only
    when given (captions belong to the manuscript). ``favours`` labels the sides of the null
    line (left, right); ``None`` omits them. ``xlim`` overrides the automatic axis range.
    Raises :class:`ValueError` for a result without studies or pooled estimate.

    With more than ``max_table_studies`` studies the plot is compact: one thin line and dot
    per study (no table of per-study numbers, which would be hundreds of rows long and take
    seconds per hundred rows to draw), the pooled diamonds and the same statistics under
    them, and a note that says so. The study-level numbers stay in the analysis JSON.
    """
    fig = build_forest(
        result, title=title, xlabel=xlabel, favours=favours, xlim=xlim, max_table_studies=max_table_studies
    )
    return save_figure(fig, stem)


def _build_compact_forest(
    result: dict, *, title: str | None, xlabel: str | None, favours: tuple[str, str] | None, limit: int
) -> Figure:
    """Forest plot of many studies: per-study CIs as one line collection, no table."""
    measure = str(result.get("measure", "MD")).upper()
    log = measure in RATIO_MEASURES
    subgroups = [sg for sg in (result.get("subgroups") or []) if sg.get("studies")]
    if subgroups:
        blocks = [
            (str(sg.get("label") or sg.get("level") or f"Subgroup {j + 1}"), sg["studies"], sg.get("pooled"))
            for j, sg in enumerate(subgroups)
        ]
    else:
        blocks = [(None, result["studies"], None)]

    # Vertical layout in inches from the top of the plot body: (what, y centre, height).
    study_step = 0.012  # inches per study line
    labels: list[tuple[str, float]] = []
    diamonds: list[tuple[str, dict, float, float]] = []  # (name, pooled, y centre, height)
    segments, dots = [], []
    y = 0.0
    for label, studies, pooled in blocks:
        if label is not None:
            labels.append((label, y + 0.1))
            y += 0.2
        for i, st in enumerate(studies):
            est, lo, hi = _num(st, "estimate"), _num(st, "ci_lower"), _num(st, "ci_upper")
            if None not in (est, lo, hi):
                yy = y + (i + 0.5) * study_step
                segments.append([(lo, yy), (hi, yy)])
                dots.append((est, yy))
        y += len(studies) * study_step + 0.05
        if isinstance(pooled, dict):
            diamonds.append(("Subtotal", pooled, y + 0.11, 0.22))
            y += 0.27
    diamonds.append(("Overall", result["pooled"], y + 0.12, 0.24))
    body_h = y + 0.24

    het, eff = _stat_text(result["pooled"], log=log)
    notes = [t.replace("\x1f", ", ") for t in (het, eff) if t]
    method = result.get("method")
    if method:
        notes.append(f"Pooling: {METHOD_LABELS.get(str(method).upper(), str(method))}")
    notes.append(
        f"{len(dots)} studies drawn, each a line (95% CI) with a dot: above {limit} studies the plot has no "
        "per-study table; the analysis JSON holds every study's numbers."
    )
    top = 0.35 if title else 0.15
    axis_h, notes_h = 0.6, 0.17 * len(notes) + 0.1
    fig_h = top + body_h + axis_h + notes_h
    fig = new_figure(FIG_WIDTH, fig_h)
    left_w, right_pad = 2.3, 0.3

    def fig_y(inches_from_top: float) -> float:
        return 1 - inches_from_top / fig_h

    ax = fig.add_axes(
        (left_w / FIG_WIDTH, (axis_h + notes_h) / fig_h, (FIG_WIDTH - left_w - right_pad) / FIG_WIDTH, body_h / fig_h)
    )
    ax.set_ylim(body_h, 0)
    if log:
        ax.set_xscale("log")
    ax.add_collection(LineCollection(segments, colors=SQUARE_COLOUR, linewidths=0.35, gid="study-cis"))
    if dots:
        xs, ys = zip(*dots, strict=True)
        ax.plot(xs, ys, linestyle="none", marker="o", markersize=0.9, color=SQUARE_COLOUR, gid="study-dots")
    ends = [x for seg in segments for x, _ in seg]
    for name, pooled, yc, height in diamonds:
        est, lo, hi = _num(pooled, "estimate"), _num(pooled, "ci_lower"), _num(pooled, "ci_upper")
        ax.add_patch(
            Polygon(
                [(lo, yc), (est, yc - height * 0.4), (hi, yc), (est, yc + height * 0.4)],
                closed=True,
                facecolor=SUBTOTAL_FILL if name == "Subtotal" else OVERALL_FILL,
                edgecolor="none",
                gid=f"diamond-{name.lower()}",
            )
        )
        fig.text(
            MARGIN / FIG_WIDTH,
            fig_y(top + yc),
            f"{name}  {fmt_ci(est, lo, hi)}",
            fontsize=FS,
            weight="bold",
            va="center",
        )
        ends += [lo, hi]
    for label, yc in labels:
        fig.text(MARGIN / FIG_WIDTH, fig_y(top + yc), label, fontsize=FS, weight="bold", va="center", parse_math=False)
    null = 1.0 if log else 0.0
    ax.axvline(null, color="black", linewidth=0.6, gid="null-line")
    ax.axvline(_num(result["pooled"], "estimate"), color="black", linewidth=0.5, linestyle=(0, (3, 2)))
    lo_x, hi_x = min([*ends, null]), max([*ends, null])
    if log:
        ax.set_xlim(lo_x / 1.1, hi_x * 1.1)
    else:
        pad = 0.04 * ((hi_x - lo_x) or 1.0)
        ax.set_xlim(lo_x - pad, hi_x + pad)
    ax.yaxis.set_major_locator(NullLocator())
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel or MEASURE_NAMES.get(measure, measure) + (" (log scale)" if log else ""), fontsize=FS)
    ax.tick_params(axis="x", labelsize=FS - 0.5)
    if favours:
        y_fav = fig_y(top + body_h + axis_h - 0.08)
        fig.text(left_w / FIG_WIDTH, y_fav, f"\u2190 {favours[0]}", fontsize=SMALL, va="center")
        fig.text(
            (FIG_WIDTH - right_pad) / FIG_WIDTH, y_fav, f"{favours[1]} \u2192", fontsize=SMALL, ha="right", va="center"
        )
    if title:
        fig.text(MARGIN / FIG_WIDTH, fig_y(0.18), title, fontsize=FS + 1, weight="bold", va="center", parse_math=False)
    for j, note in enumerate(notes):
        fig.text(MARGIN / FIG_WIDTH, fig_y(top + body_h + axis_h + 0.17 * (j + 0.8)), note, fontsize=SMALL, va="center")
    return fig


# --------------------------------------------------------------------------- leave-one-out


def build_leave_one_out(
    rows: list[dict],
    pooled: dict,
    *,
    measure: str = "MD",
    title: str | None = None,
    xlabel: str | None = None,
    favours: tuple[str, str] | None | bool = True,
    xlim: tuple[float, float] | None = None,
) -> Figure:
    """The leave-one-out plot as a Figure (see :func:`leave_one_out_plot`)."""
    favours = _favours({}, favours)
    if not rows:
        raise ValueError("leave_one_out_plot: no rows (need one pooled result per omitted study)")
    if not isinstance(pooled, dict):
        raise ValueError("leave_one_out_plot: 'pooled' must be the all-studies pooled result dict")
    measure = str(measure).upper()
    log = measure in RATIO_MEASURES
    table: list[Row] = []
    for i, r in enumerate(rows):
        est, lo, hi = _num(r, "estimate"), _num(r, "ci_lower"), _num(r, "ci_upper")
        label = str(r.get("omitted_label") or r.get("omitted") or f"Study {i + 1}")
        if None in (est, lo, hi):
            raise ValueError(f"leave_one_out_plot: row {label!r} lacks estimate/ci_lower/ci_upper")
        if log and min(est, lo, hi) <= 0:
            raise ValueError(f"leave_one_out_plot: row {label!r}: {measure} must be on the ratio scale (positive)")
        i2 = _num(r, "i2")
        table.append(
            Row(
                kind="study",
                cells={
                    "label": label,
                    "effect": fmt_ci(est, lo, hi),
                    "i2": fmt_num(i2, 1) if i2 is not None else "",
                },
                est=est,
                lo=lo,
                hi=hi,
                gid=str(i),
            )
        )
    p_est, p_lo, p_hi = _num(pooled, "estimate"), _num(pooled, "ci_lower"), _num(pooled, "ci_upper")
    if None in (p_est, p_lo, p_hi):
        raise ValueError("leave_one_out_plot: pooled result lacks estimate/ci_lower/ci_upper")
    i2 = _num(pooled, "i2")
    table.append(Row(kind="gap", height=0.3))
    table.append(
        Row(
            kind="pooled",
            cells={
                "label": "None omitted",
                "effect": fmt_ci(p_est, p_lo, p_hi),
                "i2": fmt_num(i2, 1) if i2 is not None else "",
            },
            bold=True,
            est=p_est,
            lo=p_lo,
            hi=p_hi,
            gid="overall",
            height=1.1,
        )
    )
    left = [Col("label", "Study omitted", "left")]
    right = [Col("effect", f"{measure} (95% CI)", "right"), Col("i2", "I² (%)", "right")]
    if xlabel is None:
        xlabel = "Pooled " + MEASURE_NAMES.get(measure, measure).lower() + (" (log scale)" if log else "")
    with style():
        return _draw_table_forest(
            table,
            left,
            right,
            log=log,
            null=1.0 if log else 0.0,
            xlabel=xlabel,
            favours=favours,
            title=title,
            xlim=xlim,
            ref_line=p_est,
            marker="point",
        )


def leave_one_out_plot(
    rows: list[dict],
    pooled: dict,
    stem: Path,
    *,
    measure: str = "MD",
    title: str | None = None,
    xlabel: str | None = None,
    favours: tuple[str, str] | None | bool = True,
    xlim: tuple[float, float] | None = None,
) -> list[Path]:
    """Sensitivity analysis plot: the pooled estimate with each study omitted in turn.

    ``rows``: ``[{"omitted_label", "estimate", "ci_lower", "ci_upper", "i2"}]`` (ratio scale
    for ratio measures); ``pooled``: the all-studies pooled result, drawn as the bottom
    diamond and as a dashed reference line. Writes ``stem.svg`` and ``stem.png``.
    """
    fig = build_leave_one_out(rows, pooled, measure=measure, title=title, xlabel=xlabel, favours=favours, xlim=xlim)
    return save_figure(fig, stem)


__all__ = ["axis_ticks", "build_forest", "build_leave_one_out", "forest_plot", "leave_one_out_plot"]
