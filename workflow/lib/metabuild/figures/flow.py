"""PRISMA 2009-style flow diagram of study selection.

Boxes are sized to their (wrapped) text, so nothing is clipped; the phases (Identification,
Screening, Eligibility, Included) are labelled in a band on the left. Counts are checked for
arithmetic consistency (identified − duplicates = screened, and so on) unless ``check=False``.

SVG ids: ``box-<name>`` for every box, ``arrow-<from>-<to>`` for every arrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .common import new_figure, save_figure, style, text_width, wrap_text

FS = 8.0
LINE_IN = FS * 1.25 / 72  # line height, inches
PAD = 0.09  # inner padding of boxes, inches
MAIN_W = 2.7  # widest main-column box, inches
SIDE_W = 2.35  # widest side box, inches
V_GAP = 0.34  # vertical space between main boxes (holds the arrow), inches
H_GAP = 0.45  # space between main column and side boxes, inches
BAND_W = 0.26  # phase label band, inches
MARGIN = 0.08

REQUIRED = (
    "records_identified",
    "duplicates_removed",
    "records_screened",
    "excluded_screening",
    "fulltext_assessed",
    "fulltext_excluded",
    "included_qualitative",
    "included_quantitative",
)
PHASE_FILL = "#dbe6f1"


@dataclass
class Box:
    name: str
    title: str  # centred
    items: list[str]  # left-aligned list under the title (exclusion reasons)
    max_w: float
    w: float = 0.0
    h: float = 0.0
    x: float = 0.0  # left
    y: float = 0.0  # top (y grows downwards)
    title_wrapped: str = ""
    items_wrapped: list[str] | None = None

    def measure(self) -> None:
        self.title_wrapped = wrap_text(self.title, self.max_w - 2 * PAD, FS)
        self.items_wrapped = [wrap_text(it, self.max_w - 2 * PAD - 0.1, FS).replace("\n", "\n  ") for it in self.items]
        lines = self.title_wrapped.split("\n") + [ln for it in self.items_wrapped for ln in it.split("\n")]
        self.w = max(text_width(ln, FS) for ln in lines) + 2 * PAD
        n = len(lines) + (0.4 if self.items else 0.0)
        self.h = n * LINE_IN + 2 * PAD

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def _n(v: int) -> str:
    return f"{int(v):,}"


def _reasons(v: object) -> list[str]:
    """Exclusion reasons as display lines: a string (one per line), a list of strings or
    ``[reason, n]`` pairs, or a mapping reason -> n."""
    if v is None or v == "":
        return []
    if isinstance(v, str):
        return [ln.strip() for ln in v.splitlines() if ln.strip()]
    if isinstance(v, Mapping):
        return [f"{k} (n = {_n(n)})" for k, n in v.items()]
    out = []
    for it in v:  # type: ignore[union-attr]
        if isinstance(it, (list, tuple)) and len(it) == 2:
            out.append(f"{it[0]} (n = {_n(it[1])})")
        elif isinstance(it, Mapping) and "reason" in it:
            out.append(f"{it['reason']} (n = {_n(it['n'])})" if it.get("n") is not None else str(it["reason"]))
        else:
            out.append(str(it))
    return out


def _check(c: dict[str, int]) -> None:
    rules = [
        (
            "records_identified - duplicates_removed == records_screened",
            c["records_identified"] - c["duplicates_removed"] == c["records_screened"],
        ),
        (
            "records_screened - excluded_screening == fulltext_assessed",
            c["records_screened"] - c["excluded_screening"] == c["fulltext_assessed"],
        ),
        (
            "fulltext_assessed - fulltext_excluded == included_qualitative",
            c["fulltext_assessed"] - c["fulltext_excluded"] == c["included_qualitative"],
        ),
        (
            "included_quantitative <= included_qualitative",
            c["included_quantitative"] <= c["included_qualitative"],
        ),
    ]
    bad = [r for r, ok in rules if not ok]
    if bad:
        raise ValueError("prisma_flow: inconsistent counts: " + "; ".join(bad) + f" (counts: {c})")


def build_prisma_flow(counts: dict, *, check: bool = True) -> Figure:
    """The PRISMA flow diagram as a Figure (see :func:`prisma_flow`)."""
    missing = [k for k in REQUIRED if counts.get(k) is None]
    if missing:
        raise ValueError(f"prisma_flow: counts lack {missing}")
    c: dict[str, int] = {}
    for k in REQUIRED:
        try:
            v = int(counts[k])
        except (TypeError, ValueError):
            raise ValueError(f"prisma_flow: {k} must be a whole number, got {counts[k]!r}") from None
        if v < 0 or v != float(counts[k]):
            raise ValueError(f"prisma_flow: {k} must be a non-negative whole number, got {counts[k]!r}")
        c[k] = v
    if check:
        _check(c)
    ft_reasons = _reasons(counts.get("fulltext_exclusion_reasons", counts.get("exclusion_reasons")))
    sc_reasons = _reasons(counts.get("screening_exclusion_reasons"))

    main = [
        Box(
            "identified",
            f"Records identified through database searching and other sources\n(n = {_n(c['records_identified'])})",
            [],
            MAIN_W,
        ),
        Box(
            "screened",
            f"Records screened after duplicates removed\n(n = {_n(c['records_screened'])})",
            [],
            MAIN_W,
        ),
        Box(
            "fulltext",
            f"Full-text articles assessed for eligibility\n(n = {_n(c['fulltext_assessed'])})",
            [],
            MAIN_W,
        ),
        Box(
            "qualitative",
            f"Studies included in qualitative synthesis\n(n = {_n(c['included_qualitative'])})",
            [],
            MAIN_W,
        ),
        Box(
            "quantitative",
            f"Studies included in quantitative synthesis (meta-analysis)\n(n = {_n(c['included_quantitative'])})",
            [],
            MAIN_W,
        ),
    ]
    side = {
        "identified": Box("duplicates", f"Duplicates removed\n(n = {_n(c['duplicates_removed'])})", [], SIDE_W),
        "screened": Box(
            "excluded_screening", f"Records excluded\n(n = {_n(c['excluded_screening'])})", sc_reasons, SIDE_W
        ),
        "fulltext": Box(
            "excluded_fulltext",
            f"Full-text articles excluded{', with reasons' if ft_reasons else ''}\n(n = {_n(c['fulltext_excluded'])})",
            ft_reasons,
            SIDE_W,
        ),
    }
    for b in [*main, *side.values()]:
        b.measure()
    main_w = max(b.w for b in main)
    for b in main:
        b.w = main_w  # one width for the main column: a clean vertical spine
    side_w = max(b.w for b in side.values())
    for b in side.values():
        b.w = side_w

    # ---- vertical placement. Rows: identification (box + the gap holding "duplicates"),
    # screening, eligibility (box beside its side box), included (two boxes).
    def need(label: str) -> float:  # height a phase band needs for its rotated label
        return text_width(label, FS, "bold") + 0.16

    x_main = MARGIN + BAND_W + 0.14
    x_side = x_main + main_w + H_GAP
    ident, screened, fulltext, qual, quant = main
    dup = side["identified"]
    y = MARGIN
    bands: list[tuple[str, float, float]] = []
    # identification: the first box, then an arrow gap tall enough for the duplicates box
    gap1 = max(V_GAP, dup.h + 0.2)
    top = y
    ident.x, ident.y = x_main, y + max(0.0, (need("Identification") - ident.h - gap1) / 2)
    dup.x, dup.y = x_side, ident.y + ident.h + gap1 / 2 - dup.h / 2
    y = ident.y + ident.h + gap1
    bands.append(("Identification", top, y - 0.08))
    for b, label in ((screened, "Screening"), (fulltext, "Eligibility")):
        sb = side[b.name]
        h_row = max(b.h, sb.h, need(label))
        b.x, b.y = x_main, y + (h_row - b.h) / 2
        sb.x, sb.y = x_side, y + (h_row - sb.h) / 2
        bands.append((label, y, y + h_row))
        y += h_row + V_GAP
    h_inc = max(qual.h + V_GAP + quant.h, need("Included"))
    qual.x, qual.y = x_main, y + (h_inc - (qual.h + V_GAP + quant.h)) / 2
    quant.x, quant.y = x_main, qual.y + qual.h + V_GAP
    bands.append(("Included", y, y + h_inc))
    y += h_inc
    fig_w = x_side + side_w + MARGIN
    fig_h = y + MARGIN

    with style():
        fig = new_figure(fig_w, fig_h)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, fig_w)
        ax.set_ylim(fig_h, 0)
        ax.set_axis_off()

        def draw_box(b: Box) -> None:
            ax.add_patch(
                FancyBboxPatch(
                    (b.x, b.y),
                    b.w,
                    b.h,
                    boxstyle="square,pad=0",
                    facecolor="white",
                    edgecolor="black",
                    lw=0.8,
                    gid=f"box-{b.name}",
                )
            )
            ty = b.y + PAD
            ax.text(
                b.cx,
                ty,
                b.title_wrapped,
                ha="center",
                va="top",
                fontsize=FS,
                linespacing=1.25,
                multialignment="center",
                parse_math=False,
            )
            if b.items:
                ty += (len(b.title_wrapped.split("\n")) + 0.4) * LINE_IN
                text = "\n".join(f"\u2022 {it}" for it in b.items_wrapped or [])
                ax.text(b.x + PAD, ty, text, ha="left", va="top", fontsize=FS, linespacing=1.25, parse_math=False)

        def arrow(x0: float, y0: float, x1: float, y1: float, gid: str) -> None:
            ax.add_patch(
                FancyArrowPatch(
                    (x0, y0),
                    (x1, y1),
                    arrowstyle="-|>,head_length=5,head_width=2.6",
                    mutation_scale=1,
                    lw=0.8,
                    color="black",
                    shrinkA=0,
                    shrinkB=0,
                    gid=gid,
                )
            )

        for b in [*main, *side.values()]:
            draw_box(b)
        for a, b in zip(main, main[1:], strict=False):
            arrow(a.cx, a.y + a.h, b.cx, b.y, f"arrow-{a.name}-{b.name}")
        # duplicates: branch off the first arrow
        arrow(main[0].cx, dup.cy, dup.x, dup.cy, "arrow-identified-duplicates")
        for name in ("screened", "fulltext"):
            b, sb = next(m for m in main if m.name == name), side[name]
            arrow(
                b.x + b.w,
                sb.cy if b.y <= sb.cy <= b.y + b.h else b.cy,
                sb.x,
                sb.cy if b.y <= sb.cy <= b.y + b.h else b.cy,
                f"arrow-{name}-{sb.name}",
            )

        # phase bands on the left
        for label, top, bot in bands:
            ax.add_patch(
                FancyBboxPatch(
                    (MARGIN, top),
                    BAND_W,
                    bot - top,
                    boxstyle="round,pad=0,rounding_size=0.05",
                    facecolor=PHASE_FILL,
                    edgecolor="none",
                    gid=f"phase-{label.lower()}",
                )
            )
            ax.text(
                MARGIN + BAND_W / 2,
                (top + bot) / 2,
                label,
                rotation=90,
                ha="center",
                va="center",
                fontsize=FS,
                fontweight="bold",
                parse_math=False,
            )
    return fig


def prisma_flow(counts: dict, stem: Path, *, check: bool = True) -> list[Path]:
    """Draw the PRISMA 2009 flow diagram; write ``stem.svg`` and ``stem.png``.

    ``counts``: ``records_identified, duplicates_removed, records_screened,
    excluded_screening, fulltext_assessed, fulltext_excluded, included_qualitative,
    included_quantitative`` (whole numbers), optionally ``fulltext_exclusion_reasons`` and
    ``screening_exclusion_reasons`` (text with one reason a line, a list of strings or of
    ``[reason, n]`` pairs, or a mapping reason -> n). With ``check`` (default) the counts must
    add up; otherwise a :class:`ValueError` names the failing relation.
    """
    fig = build_prisma_flow(counts, check=check)
    return save_figure(fig, stem)
