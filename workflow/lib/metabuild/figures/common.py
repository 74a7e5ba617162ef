"""Shared machinery of the figures: style, deterministic saving, text measurement, number format.

Every figure is built on a bare :class:`matplotlib.figure.Figure` with an Agg canvas (no
pyplot, no global state) inside :func:`style`, and written by :func:`save_figure` as

* ``<stem>.svg``: vector, text converted to paths (no font needed to view it), for HTML/PDF;
* ``<stem>.png``: 300 dpi raster (RGB, as the figures are opaque), for DOCX.

Text from data (study labels, subgroup labels, titles) is drawn with ``parse_math=False``, so
a ``$`` in a label is a dollar sign, not mathtext; only the statistics lines the code writes
are mathtext. In the SVG the text becomes paths; matplotlib keeps it as an XML comment, which
it escapes (characters XML cannot hold are refused when the data are validated: see
:mod:`metabuild.escape`).

Both files are byte-identical across runs and machines with the same matplotlib/FreeType:
the SVG hash salt is fixed (it seeds the ids of clip paths etc.), the SVG ``<dc:date>`` and
the PNG ``Software`` text chunk are left out, and the only font used is DejaVu Sans, which
ships inside matplotlib (so no system font can be picked up instead).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import matplotlib.style
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath

from ..io import atomic_write

PNG_DPI = 300
FONT_FAMILY = "DejaVu Sans"
BASE_FONTSIZE = 8.0  # points; journal figures are read at 1:1 on a 7-inch column
MINUS = "\u2212"
NBSP = "\u00a0"  # a space no line wrap breaks at (wrap_text splits at " " only)

#: rcParams every figure is built and saved under.
RC: dict[str, object] = {
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY],
    "font.size": BASE_FONTSIZE,
    "mathtext.fontset": "dejavusans",
    "axes.unicode_minus": True,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "xtick.major.size": 3.0,
    "xtick.labelsize": BASE_FONTSIZE - 0.5,
    "lines.solid_capstyle": "butt",
    "svg.fonttype": "path",
    "svg.hashsalt": "metabuild",
    "svg.image_inline": True,
    "path.simplify": False,
    "text.usetex": False,
    "text.antialiased": True,
    "figure.dpi": 100,
    "savefig.dpi": PNG_DPI,
    "savefig.transparent": False,
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
    "savefig.bbox": None,
    "savefig.pad_inches": 0.0,
}

SVG_METADATA = {"Date": None, "Creator": None}
MAX_PNG_PIXELS = 12000

_TEXT2PATH = TextToPath()


_style_depth = 0


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context in which figures are built and saved: matplotlib's default style (so the
    caller's rcParams or matplotlibrc cannot leak in) plus :data:`RC`.

    Re-entering it inside itself does nothing: setting the style costs about 1.5 ms, and text
    measurement (called for every distinct string of a figure) enters it too."""
    global _style_depth
    if _style_depth:
        _style_depth += 1
        try:
            yield
        finally:
            _style_depth -= 1
        return
    with matplotlib.style.context("default"), matplotlib.rc_context(RC):
        _style_depth = 1
        try:
            yield
        finally:
            _style_depth = 0


def new_figure(width_in: float, height_in: float) -> Figure:
    """A white figure of the given size (inches) on an Agg canvas, outside pyplot."""
    fig = Figure(figsize=(width_in, height_in), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem.svg`` and ``stem.png`` (300 dpi) atomically; return both paths.

    Both are read by the documents: the HTML and PDF renderings embed the SVG, the DOCX the
    PNG (``manuscript/filters/numbers.lua``), and every figure appears in a document.

    ``stem`` is a path without suffix (a suffix, if any, is replaced). Each file is written
    to a temporary file in the target directory and moved into place with :func:`os.replace`,
    so a reader never sees a half-written figure.
    """
    stem = Path(stem)
    if stem.suffix in (".svg", ".png"):  # tolerate a stem given with a suffix
        stem = stem.with_suffix("")
    svg, png = stem.parent / f"{stem.name}.svg", stem.parent / f"{stem.name}.png"
    with style():
        save_svg(fig, svg)
        save_png(fig, png)
    return [svg, png]


def save_svg(fig: Figure, path: Path) -> None:
    """The vector figure, text as paths (called inside :func:`style`)."""
    atomic_write(path, lambda fh: fig.savefig(fh, format="svg", metadata=SVG_METADATA))


#: zlib level of the PNGs: 3 makes files as small as matplotlib's 6 (within 0.5%) in half the
#: time on these figures (flat colours and text); benchmarks/README.md has the measurement.
PNG_COMPRESS_LEVEL = 3


def png_dpi(fig: Figure) -> float:
    """300 dpi, except for very tall (a forest plot of hundreds of studies) or very wide
    figures, whose PNG is capped at MAX_PNG_PIXELS on each side: the SVG stays the
    full-resolution version. (Labels are capped at validation; this bounds the PNG whatever
    the text.)"""
    return min(PNG_DPI, MAX_PNG_PIXELS / fig.get_figheight(), MAX_PNG_PIXELS / fig.get_figwidth())


def agg_canvas_size(width_in: float, height_in: float, dpi: float) -> tuple[int, int]:
    """The pixels Agg draws for a figure of this size at this dpi.

    Matplotlib truncates size × dpi to whole pixels, but rounds up a size within 1e-8 pixel of
    the next integer (``FigureCanvasBase.get_width_height``), so that 2504 / 300 in × 300 dpi,
    which is 2503.9999999999995 in floating point, is 2504 pixels and not 2503."""
    return (int(width_in * dpi + 1e-8), int(height_in * dpi + 1e-8))


def save_png(fig: Figure, path: Path) -> None:
    """The raster figure for the DOCX (called inside :func:`style`).

    Drawn by Agg exactly as ``savefig(format="png")`` draws it, but written by Pillow as RGB
    when it is opaque (every figure here is on white: ``savefig.transparent`` is off), not
    RGBA: the same pixels, a quarter less data to compress, with :data:`PNG_COMPRESS_LEVEL`.
    The PNG's pHYs chunk says its dpi (Word sizes the picture by it); it has no text chunk."""
    dpi = png_dpi(fig)
    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=dpi)
    size = agg_canvas_size(fig.get_figwidth(), fig.get_figheight(), dpi)
    if size[0] * size[1] * 4 != raw.getbuffer().nbytes:
        raise RuntimeError(f"{path}: Agg drew {raw.getbuffer().nbytes} bytes, not {size[0]}x{size[1]} RGBA pixels")
    image = PIL.Image.frombuffer("RGBA", size, raw.getbuffer(), "raw", "RGBA", 0, 1)
    if image.getextrema()[3] == (255, 255):
        image = image.convert("RGB")
    atomic_write(path, lambda fh: image.save(fh, format="png", dpi=(dpi, dpi), compress_level=PNG_COMPRESS_LEVEL))


# --------------------------------------------------------------------------- text measurement


def font(size: float = BASE_FONTSIZE, weight: str = "normal", style_: str = "normal") -> FontProperties:
    return FontProperties(family=FONT_FAMILY, size=size, weight=weight, style=style_)


@functools.lru_cache(maxsize=65536)  # a forest plot measures the same strings many times
def text_width(s: str, size: float = BASE_FONTSIZE, weight: str = "normal", math: bool = False) -> float:
    """Width of one line of text in inches (machine-independent: from the font's outlines).

    ``math=True`` measures it as mathtext (``$...$`` segments), as drawn with ``parse_math``."""
    if not s:
        return 0.0
    with style():
        w, _h, _d = _TEXT2PATH.get_text_width_height_descent(s, font(size, weight), ismath=math)
    return w / 72.0


def block_width(s: str, size: float = BASE_FONTSIZE, weight: str = "normal") -> float:
    """Width in inches of a possibly multi-line text (widest line)."""
    return max((text_width(line, size, weight) for line in s.split("\n")), default=0.0)


def wrap_text(s: str, max_width: float, size: float = BASE_FONTSIZE, weight: str = "normal", math: bool = False) -> str:
    """Greedy word wrap of ``s`` to lines no wider than ``max_width`` inches (a single word
    wider than that gets a line of its own). Existing newlines are kept. With ``math``, words
    are only broken outside ``$...$``."""
    out: list[str] = []
    for para in s.split("\n"):
        words: list[str] = []
        for w in para.split(" "):  # re-join words that sit inside one $...$ span
            if words and math and words[-1].count("$") % 2 == 1:
                words[-1] += " " + w
            else:
                words.append(w)
        line = ""
        for word in words:
            cand = f"{line} {word}" if line else word
            if line and text_width(cand, size, weight, math) > max_width:
                out.append(line)
                line = word
            else:
                line = cand
        out.append(line)
    return "\n".join(out)


def wrap_segments(
    segments: list[str], max_width: float, sep: str = "; ", size: float = BASE_FONTSIZE, math: bool = False
) -> list[str]:
    """Join ``segments`` with ``sep`` into as few lines as fit ``max_width`` inches.

    Lines are filled from the end, so a statistic line breaks as
    ``Heterogeneity: Q = 9.71, df = 5 (P = .084);`` / ``I² = 48.5%; τ² = 0.20`` rather than
    leaving a lone last item. A segment too wide on its own is word-wrapped."""
    lines: list[str] = []
    line = ""
    for seg in reversed(segments):
        cand = f"{seg}{sep}{line}" if line else seg
        if line and text_width(cand, size, math=math) > max_width:
            lines.insert(0, line)
            line = seg
        else:
            line = cand
    if line:
        lines.insert(0, line)
    lines = [ln + (sep.rstrip() if i < len(lines) - 1 else "") for i, ln in enumerate(lines)]
    out: list[str] = []
    for ln in lines:
        out.extend(wrap_text(ln, max_width, size, math=math).split("\n"))
    return out


# --------------------------------------------------------------------------- number formatting


def unicode_minus(s: str) -> str:
    return s.replace("-", MINUS)


def fmt_num(x: float, decimals: int = 2) -> str:
    """Fixed decimals with a typographic minus; ``-0.00`` is printed as ``0.00``."""
    if x is None or not math.isfinite(x):
        return "NA"
    s = f"{x:.{decimals}f}"
    if s.lstrip("-").strip("0.") == "":
        s = s.lstrip("-")
    return unicode_minus(s)


def fmt_p(p: float) -> str:
    """Journal style P value *with its relation*: ``< .001``, ``= .083``, ``> .999``."""
    if p is None or not math.isfinite(p):
        return "= NA"
    if p < 0.001:
        return "< .001"
    if p > 0.999:
        return "> .999"
    return "= " + f"{p:.3f}".lstrip("0")


def fmt_ci(est: float, lo: float, hi: float, decimals: int = 2) -> str:
    """``−1.83 (−2.35, −1.31)``."""
    return f"{fmt_num(est, decimals)} ({fmt_num(lo, decimals)}, {fmt_num(hi, decimals)})"


def fmt_tick(x: float) -> str:
    """Axis tick label: shortest plain representation (``0.1``, ``1``, ``−2``, ``2.5``)."""
    if abs(x - round(x)) < 1e-9:
        return unicode_minus(str(int(round(x))))
    return unicode_minus(f"{x:.6g}")
