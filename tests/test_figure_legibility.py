"""No figure text under 7 pt at the width each document prints the figure (issue: documents a journal
accepts). For every figure a document includes, in every format: the smallest text of the SVG at its
natural size, times the scale at which the format prints it.

Print widths: PDF (Typst) US Letter with 2.1 cm side margins (manuscript/typst/typst-template.typ);
DOCX US Letter with 1-inch margins (metabuild.docx_reference, the submission template); HTML the body
column of manuscript/css/paper.css (46em at 1.05rem of 16 px). A figure narrower than the column
prints at its natural size; a wider one is scaled down to the column; panels of a multi-panel
figure share the column by layout-ncol (DOCX stacks them at full width).

Run as a script to print the table: python tests/test_figure_legibility.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIN_PT = 7.0
CM = 72 / 2.54
TEXT_WIDTH_PT = {
    "pdf": 612 - 2 * 2.1 * CM,  # Typst: us-letter, margin x 2.1 cm
    "docx": 6.5 * 72,  # Letter, 1-inch margins
    "html": 46 * 1.05 * 16 * 0.75,  # 46em of 1.05rem, in CSS pt (1 px = 0.75 pt)
}
PANEL_GUTTER_PT = {"pdf": 10.0, "docx": 0.0, "html": 12.0}

_FIGURE = re.compile(r"!\[.*?\]\(\.\./results/figures/(?P<stem>[a-z0-9_]+)\.svg\)")
_PANELS = re.compile(r"^::: \{#fig-[^}]*?layout-ncol=(\d+)[^}]*\}\n(.*?)^:::$", re.M | re.S)


def document_figures(qmd: Path) -> dict[str, int]:
    """figure stem -> panels per row it shares the column with (1 for a figure of its own)."""
    text = qmd.read_text(encoding="utf-8")
    figures = {m["stem"]: 1 for m in _FIGURE.finditer(text)}
    for block in _PANELS.finditer(text):
        for m in _FIGURE.finditer(block.group(2)):
            figures[m["stem"]] = int(block.group(1))
    return figures


def svg_geometry(svg: Path) -> tuple[float, float]:
    """(natural width in pt, smallest text size in pt). Text is drawn as glyph paths scaled by
    size / 100 (matplotlib's text-to-path units), so the sizes are read from those scales."""
    text = svg.read_text(encoding="utf-8")
    width = float(re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', text).group(1))
    sizes = [100 * float(s) for s in re.findall(r"scale\(([0-9.]+) -[0-9.]+\)", text)]
    assert sizes, f"{svg.name}: no text found"
    return width, min(sizes)


def legibility(figures_dir: Path) -> list[dict]:
    rows = []
    for qmd in sorted((ROOT / "manuscript").glob("*.qmd")):
        for stem, ncol in document_figures(qmd).items():
            natural, smallest = svg_geometry(figures_dir / f"{stem}.svg")
            for fmt, column in TEXT_WIDTH_PT.items():
                per_row = 1 if fmt == "docx" else ncol
                slot = (column - PANEL_GUTTER_PT[fmt] * (per_row - 1)) / per_row
                printed = min(natural, slot) if per_row == 1 else slot  # panels are set to their slot
                scale = printed / natural
                rows.append(
                    {"document": qmd.stem, "figure": stem, "format": fmt, "natural_pt": natural,
                     "printed_pt": printed, "smallest_pt": smallest, "smallest_printed_pt": smallest * scale}
                )  # fmt: skip
    return rows


def test_geometry_is_read_from_the_svg(tmp_path):
    svg = tmp_path / "x.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="504pt" height="100pt"><g transform="translate(1 2) '
        'scale(0.065 -0.065)"/><g transform="scale(0.08 -0.08)"/></svg>',
        encoding="utf-8",
    )
    assert svg_geometry(svg) == (504.0, 6.5)


def test_panels_are_found_with_their_layout(tmp_path):
    qmd = tmp_path / "x.qmd"
    qmd.write_text(
        "![a](../results/figures/one.svg){#fig-one}\n\n::: {#fig-p layout-ncol=2}\n"
        "![b](../results/figures/two.svg){#fig-two}\n\n![c](../results/figures/three.svg)\n\nCap.\n:::\n",
        encoding="utf-8",
    )
    assert document_figures(qmd) == {"one": 1, "two": 2, "three": 2}


@pytest.mark.slow
def test_no_figure_text_under_7_pt_at_print_size(built_results):
    rows = legibility(built_results / "figures")
    assert {r["format"] for r in rows} == {"pdf", "docx", "html"}
    assert len({r["figure"] for r in rows}) >= 15  # every figure of both documents
    small = [
        f"{r['document']}: {r['figure']} in {r['format']}: {r['smallest_printed_pt']:.2f} pt "
        f"(drawn {r['smallest_pt']:.1f} pt at {r['natural_pt']:.0f} pt wide, printed {r['printed_pt']:.0f} pt wide)"
        for r in rows
        if r["smallest_printed_pt"] < MIN_PT - 1e-6
    ]
    assert small == []


if __name__ == "__main__":  # the table, for a reader (and the session note)
    print(f"{'document':<11}{'figure':<24}{'fmt':<6}{'natural':>9}{'printed':>9}{'min font':>10}{'printed':>9}")
    for r in legibility(ROOT / "results" / "figures"):
        print(
            f"{r['document']:<11}{r['figure']:<24}{r['format']:<6}{r['natural_pt']:>9.0f}{r['printed_pt']:>9.0f}"
            f"{r['smallest_pt']:>10.1f}{r['smallest_printed_pt']:>9.2f}"
        )
