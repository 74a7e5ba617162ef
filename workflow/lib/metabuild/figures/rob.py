"""Risk-of-bias summary: a traffic-light grid (Cochrane robvis style) of study x domain.

Studies are columns and domains rows, as in the paper's Figure 2; the overall judgement
(domain id ``overall``, or the last domain when ``overall_domain`` says so) is set apart by a
gap and a rule. Each judgement is a coloured circle *and* a symbol, so the grid reads in grey
scale too: green "+" low, yellow "?" unclear, red "−" high.

SVG ids: ``rob-<study index>-<domain id>`` for every judgement drawn.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Circle, PathPatch, Rectangle
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from .common import MINUS, font, new_figure, save_figure, style, text_width, wrap_text

FS = 8.0
JUDGEMENTS = {
    # judgement: (fill colour, symbol, symbol colour, legend label)
    "low": ("#3b9c4f", "+", "white", "Low risk of bias"),
    "unclear": ("#f0c419", "?", "black", "Unclear risk of bias"),
    "high": ("#c4302b", MINUS, "white", "High risk of bias"),
}
ALIASES = {
    "some concerns": "unclear",
    "some_concerns": "unclear",
    "low risk": "low",
    "high risk": "high",
    "unclear risk": "unclear",
    "+": "low",
    "-": "high",
    "?": "unclear",
}

MARGIN = 0.08
ROW_H = 0.36  # inches; domain labels take up to two lines
RADIUS = 0.115
MAX_WIDTH = 7.0


def _wrap_domain(label: str) -> str:
    """``Random sequence generation (selection bias)`` -> two lines, broken before ``(``;
    a head still wider than 2.6 inches is word-wrapped."""
    if " (" in label:
        head, tail = label.split(" (", 1)
        return f"{wrap_text(head, 2.6, FS)}\n({tail}"
    return wrap_text(label, 2.6, FS)


def _wrap_study(label: str, max_w: float) -> str:
    """Break a study label before its last word (``Eichenberger\\n2008``) when it is too wide."""
    if text_width(label, FS, "bold") <= max_w or " " not in label:
        return label
    head, tail = label.rsplit(" ", 1)
    return f"{head}\n{tail}"


def _glyph(ax, ch: str, x: float, y: float, size: float, colour: str, gid: str | None = None) -> None:
    """Draw one character centred exactly (by its outline's bounding box) at (x, y) inches."""
    path = TextPath((0, 0), ch, size=size, prop=font(size, "bold"))
    ext = path.get_extents()
    cx, cy = (ext.x0 + ext.x1) / 2, (ext.y0 + ext.y1) / 2
    # points -> inches, and flip y because the grid's y axis runs downwards
    tr = Affine2D().translate(-cx, -cy).scale(1 / 72, -1 / 72).translate(x, y) + ax.transData
    ax.add_patch(PathPatch(path, transform=tr, facecolor=colour, edgecolor="none", gid=gid))


def _normalise(j: object) -> str:
    s = str(j).strip().lower()
    return ALIASES.get(s, s)


def build_risk_of_bias_grid(
    rows: list[dict],
    domains: list[tuple[str, str]],
    *,
    overall_domain: str = "overall",
) -> Figure:
    """The risk-of-bias grid as a Figure (see :func:`risk_of_bias_grid`)."""
    if not rows:
        raise ValueError("risk_of_bias_grid: no rows (need one judgement per study and domain)")
    if not domains:
        raise ValueError("risk_of_bias_grid: no domains given")
    domain_ids = [d for d, _ in domains]
    if len(set(domain_ids)) != len(domain_ids):
        raise ValueError(f"risk_of_bias_grid: duplicate domain ids in {domain_ids}")
    studies: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for r in rows:
        try:
            study, domain, judgement = str(r["study_label"]), str(r["domain"]), r["judgement"]
        except KeyError as e:
            raise ValueError(f"risk_of_bias_grid: row {r!r} lacks {e.args[0]!r}") from None
        if domain not in domain_ids:
            raise ValueError(f"risk_of_bias_grid: {study}: unknown domain {domain!r} (known: {domain_ids})")
        j = _normalise(judgement)
        if j not in JUDGEMENTS:
            raise ValueError(
                f"risk_of_bias_grid: {study} / {domain}: judgement {judgement!r} is not one of {sorted(JUDGEMENTS)}"
            )
        if (study, domain) in cells:
            raise ValueError(f"risk_of_bias_grid: two judgements for {study} / {domain}")
        cells[(study, domain)] = j
        if study not in studies:
            studies.append(study)

    # ---- geometry (inches)
    labels = [_wrap_domain(lbl) for _, lbl in domains]
    label_w = (
        max(
            text_width(line, FS, "bold" if did == overall_domain else "normal")
            for (did, _), lb in zip(domains, labels, strict=True)
            for line in lb.split("\n")
        )
        + 0.15
    )
    max_lines = max(lb.count("\n") + 1 for lb in labels)
    row_h = max(ROW_H, max_lines * FS * 1.2 / 72 + 0.1)
    col_w = 0.62
    wrapped = [_wrap_study(s, col_w - 0.06) for s in studies]
    col_w = max(col_w, max(max(text_width(line, FS, "bold") for line in s.split("\n")) for s in wrapped) + 0.1)
    wrapped = [_wrap_study(s, col_w - 0.06) for s in studies]  # unwrap what now fits
    rotate = MARGIN * 2 + label_w + col_w * len(studies) > MAX_WIDTH
    if rotate:  # many studies: narrow columns with vertical labels
        col_w = 0.34
        wrapped = list(studies)
        header_h = max(text_width(s, FS, "bold") for s in studies) + 0.15
    else:
        header_h = (0.34 if any("\n" in s for s in wrapped) else 0.22) + 0.08
    has_overall = overall_domain in domain_ids
    sep = 0.14 if has_overall else 0.0
    grid_w = col_w * len(studies)
    grid_h = row_h * len(domains) + sep
    legend_h = 0.42
    fig_w = max(MARGIN * 2 + label_w + grid_w, 4.2)
    fig_h = MARGIN + header_h + grid_h + legend_h
    x0, y0 = MARGIN + label_w, MARGIN + header_h  # top-left corner of the grid

    with style():
        fig = new_figure(fig_w, fig_h)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, fig_w)
        ax.set_ylim(fig_h, 0)
        ax.set_axis_off()

        def row_top(i: int) -> float:
            extra = sep if (has_overall and domain_ids[i] == overall_domain) else 0.0
            return y0 + i * row_h + extra

        # study headers
        for k, s in enumerate(wrapped):
            cx = x0 + (k + 0.5) * col_w
            if rotate:
                ax.text(
                    cx,
                    y0 - 0.08,
                    s,
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=FS,
                    fontweight="bold",
                    parse_math=False,
                )
            else:
                ax.text(
                    cx,
                    y0 - 0.07,
                    s,
                    ha="center",
                    va="bottom",
                    fontsize=FS,
                    fontweight="bold",
                    multialignment="center",
                    linespacing=1.1,
                    parse_math=False,
                )
        # cells
        for i, (did, _) in enumerate(domains):
            top = row_top(i)
            cy = top + row_h / 2
            is_overall = has_overall and did == overall_domain
            ax.text(
                MARGIN,
                cy,
                labels[i],
                ha="left",
                va="center",
                fontsize=FS,
                linespacing=1.15,
                fontweight="bold" if is_overall else "normal",
                parse_math=False,
            )
            for k, s in enumerate(studies):
                cx = x0 + (k + 0.5) * col_w
                ax.add_patch(
                    Rectangle((x0 + k * col_w, top), col_w, row_h, facecolor="none", edgecolor="#c8c8c8", lw=0.5)
                )
                j = cells.get((s, did))
                if j is None:
                    continue
                fill, sym, sym_col, _ = JUDGEMENTS[j]
                ax.add_patch(Circle((cx, cy), RADIUS, facecolor=fill, edgecolor="none", gid=f"rob-{k}-{did}"))
                _glyph(ax, sym, cx, cy, 10.0, sym_col)
        if has_overall:
            i = domain_ids.index(overall_domain)
            ax.plot([MARGIN, x0 + grid_w], [row_top(i) - sep / 2] * 2, color="black", lw=0.8)
        # legend, centred under the grid
        items = [(JUDGEMENTS[j], j) for j in ("low", "unclear", "high")]
        widths = [2 * RADIUS + 0.08 + text_width(lbl, FS) for (_, _, _, lbl), _ in items]
        gap = 0.3
        total = sum(widths) + gap * (len(items) - 1)
        lx = max(MARGIN, (fig_w - total) / 2)
        ly = y0 + grid_h + legend_h / 2 + 0.02
        for ((fill, sym, sym_col, lbl), j), w in zip(items, widths, strict=True):
            ax.add_patch(Circle((lx + RADIUS, ly), RADIUS * 0.85, facecolor=fill, edgecolor="none", gid=f"legend-{j}"))
            _glyph(ax, sym, lx + RADIUS, ly, 8.5, sym_col)
            ax.text(
                lx + 2 * RADIUS + 0.08,
                ly,
                lbl,
                ha="left",
                va="center_baseline",
                fontsize=FS,
                parse_math=False,
            )
            lx += w + gap
    return fig


def risk_of_bias_grid(
    rows: list[dict],
    stem: Path,
    domains: list[tuple[str, str]],
    *,
    overall_domain: str = "overall",
) -> list[Path]:
    """Draw the risk-of-bias traffic-light grid; write ``stem.svg`` and ``stem.png``.

    ``rows``: ``[{"study_label", "domain", "judgement"}]`` with judgement ``low``, ``unclear``
    or ``high``; studies appear as columns in the order of their first row. ``domains``:
    ``[(domain_id, label)]`` in display order; the domain ``overall_domain`` (if listed) is
    drawn bold, below a rule. A missing study/domain pair is left blank. Raises
    :class:`ValueError` for empty input, unknown domains or judgements, or duplicates.
    """
    fig = build_risk_of_bias_grid(rows, domains, overall_domain=overall_domain)
    return save_figure(fig, stem)
