"""Tests of metabuild.figures: files written, content, determinism, layout, input checks."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from metabuild.figures import forest_plot, leave_one_out_plot, prisma_flow, risk_of_bias_grid, save_figure
from metabuild.figures.common import PNG_DPI, fmt_ci, fmt_num, fmt_p, wrap_segments
from metabuild.figures.flow import build_prisma_flow
from metabuild.figures.forest import FIG_WIDTH, axis_ticks, build_forest, build_leave_one_out
from metabuild.figures.rob import build_risk_of_bias_grid

SVG_NS = "{http://www.w3.org/2000/svg}"


# --------------------------------------------------------------------------- sample inputs


def md_study(sid: str, label: str, mk, sk, nk, mc, sc, nc, w) -> dict:
    est = mk - mc
    se = math.sqrt(sk**2 / nk + sc**2 / nc)
    return {
        "study_id": sid, "label": label, "estimate": est, "ci_lower": est - 1.96 * se,
        "ci_upper": est + 1.96 * se, "weight": w, "n_ketamine": nk, "n_control": nc,
        "mean_ketamine": mk, "sd_ketamine": sk, "mean_control": mc, "sd_control": sc,
    }  # fmt: skip


STUDIES = [
    md_study("amr2010", "Amr 2010", 3.1, 0.5, 20, 5.2, 0.5, 20, 22.5),
    md_study("eichenberger2008", "Eichenberger 2008", 3.3, 2.5, 10, 4.6, 2.6, 20, 8.1),
    md_study("schwartzman2009", "Schwartzman 2009", 5.7, 1.9, 9, 6.6, 1.7, 10, 9.0),
    md_study("sigtermans2009", "Sigtermans 2009", 4.1, 1.2, 30, 6.5, 1.5, 30, 20.6),
    md_study("noppers2011", "Noppers 2011", 6.0, 1.9, 12, 6.5, 1.6, 12, 10.9),
    md_study("mitchell2002", "Mitchell 2002", 3.4, 0.8, 18, 5.2, 0.9, 17, 28.9),
]
POOLED = {"estimate": -1.83, "ci_lower": -2.35, "ci_upper": -1.31, "p": 4e-12, "z": -6.88, "q": 9.71,
          "df": 5, "q_p": 0.0836, "i2": 48.5, "tau2": 0.2012, "k": 6}  # fmt: skip
PRIMARY = {"analysis": "primary", "measure": "MD", "method": "DL", "studies": STUDIES, "pooled": POOLED}
RR = {
    "analysis": "nausea", "measure": "RR", "method": "DL",
    "studies": [
        {"study_id": "sigtermans2009", "label": "Sigtermans 2009", "estimate": 19.0, "ci_lower": 1.16,
         "ci_upper": 310.6, "weight": 14.2, "events_ketamine": 9, "n_ketamine": 30, "events_control": 0,
         "n_control": 30},
        {"study_id": "noppers2011", "label": "Noppers 2011", "estimate": 3.0, "ci_lower": 1.0,
         "ci_upper": 9.0, "weight": 40.1, "events_ketamine": 6, "n_ketamine": 12, "events_control": 2,
         "n_control": 12},
        {"study_id": "schwartzman2009", "label": "Schwartzman 2009", "estimate": 2.78, "ci_lower": 1.06,
         "ci_upper": 7.3, "weight": 45.7, "events_ketamine": 5, "n_ketamine": 9, "events_control": 2,
         "n_control": 10},
    ],
    "pooled": {"estimate": 3.52, "ci_lower": 1.74, "ci_upper": 7.14, "p": 0.00048, "z": 3.49, "q": 1.49,
               "df": 2, "q_p": 0.475, "i2": 0.0, "tau2": 0.0, "k": 3},
}  # fmt: skip
SUBGROUPS = {
    "analysis": "dose", "measure": "MD", "method": "DL", "pooled": POOLED, "metareg": {"p": 0.213},
    "subgroups": [
        {"level": "high", "label": "High dose (≥400 mg)", "studies": [STUDIES[0], STUDIES[3], STUDIES[5]],
         "pooled": {"estimate": -2.07, "ci_lower": -2.49, "ci_upper": -1.65, "p": 1e-20, "q": 2.8, "df": 2,
                    "q_p": 0.246, "i2": 28.6, "tau2": 0.04}},
        {"level": "low", "label": "Low dose (<400 mg)", "studies": [STUDIES[1], STUDIES[2], STUDIES[4]],
         "pooled": {"estimate": -1.30, "ci_lower": -2.01, "ci_upper": -0.59, "p": 0.0003, "q": 0.6, "df": 2,
                    "q_p": 0.74, "i2": 0.0, "tau2": 0.0}},
    ],
}  # fmt: skip
LOO = [
    {
        "omitted_label": s["label"],
        "estimate": -1.83 + d,
        "ci_lower": -2.45 + d,
        "ci_upper": -1.21 + d,
        "i2": 40.0 + i,
    }
    for i, (s, d) in enumerate(zip(STUDIES, [0.2, -0.1, -0.05, 0.15, -0.12, 0.18], strict=True))
]
DOMAINS = [
    ("random_sequence", "Random sequence generation (selection bias)"),
    ("allocation", "Allocation concealment (selection bias)"),
    ("blinding_participants", "Blinding of participants and personnel (performance bias)"),
    ("blinding_outcome", "Blinding of outcome assessment (detection bias)"),
    ("incomplete_outcome", "Incomplete outcome data (attrition bias)"),
    ("selective_reporting", "Selective reporting (reporting bias)"),
    ("other", "Other bias"),
    ("overall", "Overall bias"),
]
_GRID = {
    "Amr 2010": "??---?--", "Eichenberger 2008": "+++?????", "Salas 2012": "+++?????",
    "Schwartzman 2009": "+???+???", "Sigtermans 2009": "++-????-", "Noppers 2011": "++-????-",
    "Mitchell 2002": "++--?+?-",
}  # fmt: skip
ROB = [
    {"study_label": study, "domain": d, "judgement": {"+": "low", "?": "unclear", "-": "high"}[j]}
    for study, code in _GRID.items()
    for (d, _), j in zip(DOMAINS, code, strict=True)
]
FLOW = {"records_identified": 696, "duplicates_removed": 229, "records_screened": 467,
        "excluded_screening": 437, "fulltext_assessed": 30, "fulltext_excluded": 23,
        "included_qualitative": 7, "included_quantitative": 6}  # fmt: skip


# --------------------------------------------------------------------------- helpers


def svg_ids(path: Path) -> list[str]:
    root = ET.parse(path).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG_NS}svg"
    return [el.get("id") for el in root.iter() if el.get("id")]


def count_prefix(ids: list[str], prefix: str) -> int:
    return sum(1 for i in ids if i.startswith(prefix))


def texts(fig) -> list[matplotlib.text.Text]:
    out = list(fig.texts)
    for ax in fig.axes:
        out += list(ax.texts)
        if ax.axison:
            out += [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def assert_text_layout_clean(fig) -> None:
    """No two texts overlap and every text lies inside the figure (nothing clipped)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts(fig)]
    fb = fig.bbox
    for s, b in boxes:
        assert b.x0 >= fb.x0 - 0.5 and b.x1 <= fb.x1 + 0.5 and b.y0 >= fb.y0 - 0.5 and b.y1 <= fb.y1 + 0.5, (
            f"text {s!r} is clipped: {b} outside {fb}"
        )
    for (s1, b1), (s2, b2) in itertools.combinations(boxes, 2):
        shrunk1 = b1.padded(-0.5)
        assert not shrunk1.overlaps(b2.padded(-0.5)), f"texts overlap: {s1!r} and {s2!r}"


# --------------------------------------------------------------------------- number formatting


def test_number_formatting():
    assert fmt_num(-1.834) == "\u22121.83"
    assert fmt_num(-0.001) == "0.00"  # no negative zero
    assert fmt_p(0.0004) == "< .001"
    assert fmt_p(0.2134) == "= .213"
    assert fmt_p(0.08) == "= .080"
    assert fmt_p(0.9999) == "> .999"
    assert fmt_ci(-1.83, -2.35, -1.31) == "\u22121.83 (\u22122.35, \u22121.31)"


def test_wrap_segments_fills_from_the_end():
    segs = ["Heterogeneity: $Q$ = 9.71, df = 5 ($P$ = .084)", "$I^2$ = 48.5%", r"$\tau^2$ = 0.20"]
    assert wrap_segments(segs, 100.0, math=True) == ["; ".join(segs)]
    lines = wrap_segments(segs, 2.5, size=6.5, math=True)
    assert lines == [segs[0] + ";", "$I^2$ = 48.5%; $\\tau^2$ = 0.20"]


def test_axis_ticks_cover_data_and_null():
    ticks, (lo, hi) = axis_ticks([-2.1, -0.5, -1.83, -2.35, -1.31], [-3.2, 0.9], log=False, null=0.0)
    assert lo <= -3.2 and hi >= 0.9 and 0.0 in ticks
    ticks, (lo, hi) = axis_ticks([3.0, 19.0, 1.74, 7.14], [1.0, 310.0], log=True, null=1.0)
    assert lo < 1.0 < hi and 1.0 in ticks  # the null line is not on the frame


# --------------------------------------------------------------------------- forest plots


def test_forest_md_files_and_content(tmp_path):
    paths = forest_plot(PRIMARY, tmp_path / "forest_primary")
    assert [p.name for p in paths] == ["forest_primary.svg", "forest_primary.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    ids = svg_ids(paths[0])
    assert count_prefix(ids, "study-square-") == 6
    assert count_prefix(ids, "study-ci-") == 6
    assert count_prefix(ids, "diamond-") == 1
    assert "null-line" in ids
    svg = paths[0].read_text()
    assert "<text" not in svg  # text converted to paths: no font needed to view
    assert "<dc:date>" not in svg
    with Image.open(paths[1]) as im:
        assert [round(d) for d in im.info["dpi"]] == [PNG_DPI, PNG_DPI]
        assert FIG_WIDTH * PNG_DPI - 5 <= im.size[0] <= (FIG_WIDTH + 0.2) * PNG_DPI  # the documents' text width
        assert "Software" not in im.info


def test_forest_weights_sum_to_100_and_numbers_are_journal_style():
    fig = build_forest(PRIMARY)
    ax = fig.axes[0]
    cells = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    weights = [float(v) for k, v in cells.items() if k.startswith("cell-weight-") and k[12:].isdigit()]
    assert len(weights) == 6
    assert sum(weights) == pytest.approx(100.0, abs=0.2)
    assert cells["cell-weight-overall"] == "100.0"
    assert cells["cell-effect-overall"] == "\u22121.83 (\u22122.35, \u22121.31)"
    stats = " ".join(v for k, v in cells.items() if k.startswith("stat-text-")).replace("\u00a0", " ")
    for piece in ["$Q$ = 9.71", "df = 5", "($P$ = .084)", "$I^2$ = 48.5%", r"$\tau^2$ = 0.20",
                  "$z$ = \u22126.88 ($P$ < .001)", "DerSimonian-Laird random effects"]:  # fmt: skip
        assert piece in stats
    assert ax.get_xscale() == "linear"
    assert_text_layout_clean(fig)


def test_forest_rr_uses_log_axis_and_event_columns(tmp_path):
    fig = build_forest(RR)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo < 1.0 < hi
    cells = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    assert cells["cell-ev_control-0"] == "0/30"  # the zero cell
    assert cells["cell-ev_ketamine-overall"] == "20/51"
    assert cells["cell-effect-overall"] == "3.52 (1.74, 7.14)"
    assert_text_layout_clean(fig)
    ids = svg_ids(forest_plot(RR, tmp_path / "rr")[0])
    assert count_prefix(ids, "study-square-") == 3


def test_forest_arrow_for_ci_off_the_axis(tmp_path):
    wide = dict(STUDIES[1], label="Wide 2000", estimate=-2.0, ci_lower=-40.0, ci_upper=36.0)
    res = dict(PRIMARY, studies=[*STUDIES, wide])
    ids = svg_ids(forest_plot(res, tmp_path / "wide")[0])
    assert "arrow-left-6" in ids and "arrow-right-6" in ids
    assert count_prefix(ids, "arrow-") == 2  # only the wide study
    lo, hi = build_forest(res).axes[0].get_xlim()
    assert lo > -40 and hi < 36  # the imprecise study does not squash the others
    # a fixed range clips the others too
    ids = svg_ids(forest_plot(PRIMARY, tmp_path / "fixed", xlim=(-3, 1))[0])
    assert "arrow-left-1" in ids  # Eichenberger: CI to -3.22


def test_forest_subgroups(tmp_path):
    fig = build_forest(SUBGROUPS)
    ax = fig.axes[0]
    cells = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    labels = [t.get_text() for t in ax.texts]
    assert "High dose (≥400 mg)" in labels and "Low dose (<400 mg)" in labels
    assert labels.count("Subtotal") == 2 and "Overall" in labels
    assert cells["cell-weight-subgroup-0"] == "72.0" and cells["cell-weight-subgroup-1"] == "28.0"
    # the line may wrap to the space left of the plot: its words, in order, across the lines
    assert "Test for subgroup differences (meta-regression): $P$ = .213" in " ".join(labels)
    assert_text_layout_clean(fig)
    ids = svg_ids(forest_plot(SUBGROUPS, tmp_path / "dose")[0])
    assert count_prefix(ids, "study-square-") == 6
    assert {"diamond-subgroup-0", "diamond-subgroup-1", "diamond-overall"} <= set(ids)


def test_forest_long_labels_stay_clear():
    long = [dict(s, label=f"{s['label']} (extended follow-up cohort)") for s in STUDIES]
    res = dict(PRIMARY, studies=long, title="A title", pooled=dict(POOLED, q=123.45, q_p=1e-9, tau2=12.3456))
    fig = build_forest(res)
    assert_text_layout_clean(fig)


def test_forest_bad_input():
    with pytest.raises(ValueError, match="no studies"):
        build_forest(dict(PRIMARY, studies=[]))
    with pytest.raises(ValueError, match="none has any studies"):
        build_forest(dict(SUBGROUPS, subgroups=[{"label": "x", "studies": []}]))
    with pytest.raises(ValueError, match="no 'pooled'"):
        build_forest({"analysis": "x", "measure": "MD", "studies": STUDIES})
    with pytest.raises(ValueError, match="ratio scale"):
        bad = dict(RR, studies=[dict(RR["studies"][0], estimate=-0.5, ci_lower=-1.0, ci_upper=0.2)])
        build_forest(bad)
    with pytest.raises(ValueError, match="outside its CI"):
        build_forest(dict(PRIMARY, studies=[dict(STUDIES[0], estimate=5.0)]))


def test_leave_one_out(tmp_path):
    paths = leave_one_out_plot(LOO, POOLED, tmp_path / "loo")
    ids = svg_ids(paths[0])
    assert count_prefix(ids, "study-point-") == 6
    assert "diamond-overall" in ids and "reference-line" in ids
    fig = build_leave_one_out(LOO, POOLED)
    assert_text_layout_clean(fig)
    with pytest.raises(ValueError, match="no rows"):
        build_leave_one_out([], POOLED)


# --------------------------------------------------------------------------- risk of bias, flow


def test_risk_of_bias_grid(tmp_path):
    paths = risk_of_bias_grid(ROB, tmp_path / "rob", DOMAINS)
    ids = svg_ids(paths[0])
    assert count_prefix(ids, "rob-") == 7 * 8
    assert "rob-0-overall" in ids and "rob-6-random_sequence" in ids
    assert {"legend-low", "legend-unclear", "legend-high"} <= set(ids)
    assert_text_layout_clean(build_risk_of_bias_grid(ROB, DOMAINS))
    with Image.open(paths[1]) as im:
        assert [round(d) for d in im.info["dpi"]] == [PNG_DPI, PNG_DPI]
        assert im.size[0] <= 7.05 * PNG_DPI


def test_risk_of_bias_bad_input():
    with pytest.raises(ValueError, match="no rows"):
        build_risk_of_bias_grid([], DOMAINS)
    with pytest.raises(ValueError, match="judgement 'maybe'"):
        build_risk_of_bias_grid([{"study_label": "A", "domain": "other", "judgement": "maybe"}], DOMAINS)
    with pytest.raises(ValueError, match="unknown domain"):
        build_risk_of_bias_grid([{"study_label": "A", "domain": "nope", "judgement": "low"}], DOMAINS)
    with pytest.raises(ValueError, match="two judgements"):
        build_risk_of_bias_grid(ROB + ROB[:1], DOMAINS)


def test_prisma_flow(tmp_path):
    paths = prisma_flow(FLOW, tmp_path / "flow")
    ids = svg_ids(paths[0])
    assert count_prefix(ids, "box-") == 8
    assert count_prefix(ids, "arrow-") == 7
    fig = build_prisma_flow(FLOW)
    assert_text_layout_clean(fig)
    # every text sits inside its box / band
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [p.get_window_extent(r) for p in ax.patches if (p.get_gid() or "").startswith(("box-", "phase-"))]
    for t in ax.texts:
        tb = t.get_window_extent(r)
        assert any(b.x0 <= tb.x0 and tb.x1 <= b.x1 and b.y0 <= tb.y0 and tb.y1 <= b.y1 for b in boxes), t.get_text()
    labels = " ".join(t.get_text() for t in ax.texts)
    for n in ("696", "229", "467", "437", "30", "23", "(n = 7)", "(n = 6)"):
        assert n in labels


def test_prisma_flow_reasons_and_checks():
    reasons = {"Perioperative setting": 10, "No primary outcome reported": 8, "Not randomized": 5}
    fig = build_prisma_flow(dict(FLOW, fulltext_exclusion_reasons=reasons))
    assert_text_layout_clean(fig)
    assert any("Not randomized (n = 5)" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="inconsistent counts"):
        build_prisma_flow(dict(FLOW, records_screened=500))
    build_prisma_flow(dict(FLOW, records_screened=500), check=False)
    with pytest.raises(ValueError, match="lack"):
        build_prisma_flow({"records_identified": 1})


# --------------------------------------------------------------------------- determinism, saving


def _render_all(out: Path) -> list[Path]:
    return [
        *forest_plot(PRIMARY, out / "md"),
        *forest_plot(RR, out / "rr"),
        *forest_plot(SUBGROUPS, out / "sub"),
        *leave_one_out_plot(LOO, POOLED, out / "loo"),
        *risk_of_bias_grid(ROB, out / "rob", DOMAINS),
        *prisma_flow(FLOW, out / "flow"),
    ]


def test_identical_bytes_across_runs_and_rcparams(tmp_path):
    a = _render_all(tmp_path / "a")
    with matplotlib.rc_context({"font.size": 20, "lines.linewidth": 5, "svg.hashsalt": None, "axes.edgecolor": "red"}):
        b = _render_all(tmp_path / "b")  # the caller's rcParams must not leak in
    for pa, pb in zip(a, b, strict=True):
        assert pa.read_bytes() == pb.read_bytes(), pa.name


def test_identical_bytes_in_a_fresh_process(tmp_path):
    """The SVG hash salt is fixed: another interpreter writes the same bytes."""
    forest_plot(PRIMARY, tmp_path / "here")
    code = (
        "import json, sys; from pathlib import Path; from metabuild.figures import forest_plot; "
        "forest_plot(json.loads(sys.argv[1]), Path(sys.argv[2]))"
    )
    import json

    subprocess.run([sys.executable, "-c", code, json.dumps(PRIMARY), str(tmp_path / "there")], check=True)
    for ext in (".svg", ".png"):
        assert (tmp_path / f"here{ext}").read_bytes() == (tmp_path / f"there{ext}").read_bytes()


def test_save_figure_is_atomic_and_readable(tmp_path):
    fig = build_forest(PRIMARY)
    paths = save_figure(fig, tmp_path / "sub" / "fig.svg")  # a suffix on the stem is tolerated
    assert [p.name for p in paths] == ["fig.svg", "fig.png"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["fig.png", "fig.svg"]  # no temp files
    assert all(p.stat().st_mode & 0o044 for p in paths)


def test_forest_of_many_studies_is_compact(tmp_path):
    from matplotlib.collections import LineCollection

    # at the limit: the full table; one study more: the compact plot
    assert count_prefix(svg_ids(forest_plot(PRIMARY, tmp_path / "table", max_table_studies=6)[0]), "study-square-") == 6
    svg, png = forest_plot(PRIMARY, tmp_path / "compact", max_table_studies=5)
    ids = svg_ids(svg)
    assert count_prefix(ids, "study-square-") == 0 and "study-cis" in ids and "diamond-overall" in ids
    fig = build_forest(PRIMARY, max_table_studies=5)
    (lines,) = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    segments = lines.get_segments()
    assert len(segments) == len(STUDIES)
    for seg, study in zip(segments, STUDIES, strict=True):  # each line spans its study's CI
        assert seg[0][0] == pytest.approx(study["ci_lower"]) and seg[1][0] == pytest.approx(study["ci_upper"])
    words = " ".join(t.get_text() for t in fig.texts)
    assert "Overall  −1.83 (−2.35, −1.31)" in words
    assert "6 studies drawn" in words and "above 5 studies" in words
    assert "\x1f" not in words
    assert Image.open(png).size[0] == round(FIG_WIDTH * PNG_DPI)  # drawn at the documents' text width


def test_compact_forest_keeps_subgroup_diamonds():
    fig = build_forest(SUBGROUPS, max_table_studies=2)
    labels = [t.get_text() for t in fig.texts]
    assert "High dose (≥400 mg)" in labels and "Low dose (<400 mg)" in labels
    assert sum(t.startswith("Subtotal") for t in labels) == 2 and any(t.startswith("Overall") for t in labels)
    gids = [p.get_gid() for p in fig.axes[0].patches]
    assert gids.count("diamond-subtotal") == 2 and gids.count("diamond-overall") == 1


@pytest.mark.parametrize("height_px", [2504, 2642, 2643, 110, 313])
def test_png_of_a_figure_whose_pixel_size_is_a_float_tick_short(tmp_path, height_px):
    """2504 / 300 in × 300 dpi is 2503.9999999999995 in floating point; Agg draws 2504 rows
    (matplotlib rounds up within 1e-8 pixel). The PNG writer must expect the same canvas, or a
    forest plot of that height fails (it did at 1,000 studies: 'Agg drew 20615400 bytes')."""
    import matplotlib.pyplot as plt

    from metabuild.figures.common import save_png

    fig = plt.figure(figsize=(6.5, height_px / PNG_DPI))
    try:
        save_png(fig, tmp_path / "f.png")
    finally:
        plt.close(fig)
    with Image.open(tmp_path / "f.png") as image:
        assert image.size == (int(6.5 * PNG_DPI), height_px)


@pytest.mark.parametrize("width_in", [1.2, 1.6, 2.0, 2.4, 3.0])
def test_statistic_lines_never_part_a_value_from_its_name(width_in):
    """The headache plot's short study labels left 2 in for the statistics, and the line broke
    as 'df = 2 (P =' / '.235);'. However narrow the column, a wrapped line neither ends nor
    starts inside 'name = value' and keeps its parentheses closed."""
    from metabuild.figures.forest import SMALL, _stat_text

    het, eff = _stat_text({"q": 2.89, "df": 2, "q_p": 0.235, "i2": 30.9, "tau2": 0.1, "z": 0.71, "p": 0.475}, log=True)
    for text in (het, eff):
        lines = wrap_segments(text.split("\x1f"), width_in, size=SMALL, math=True)
        for line in lines:
            assert not line.rstrip(";").rstrip().endswith(("=", "<", "(")), lines
            assert not line.startswith((".", "=", ")")), lines
            assert line.count("(") == line.count(")"), lines
        assert ("= .235" in " ".join(lines).replace("\u00a0", " ")) == (text is het)
