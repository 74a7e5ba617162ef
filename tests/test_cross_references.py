"""The paper refers to the supplement's figures and tables by their numbers ("Supplemental Figure 3"):
[fig-id]{.xref document="supplement"} prints the number the supplement itself gives that figure, so a
figure moved or added in the supplement renumbers the paper's references on the next build."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metabuild.workflow_support import xref_documents

ROOT = Path(__file__).resolve().parents[1]


def _text(path: Path) -> str:
    raw = re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))
    return html.unescape(re.sub(r"\s+", " ", raw))


def _supplement_labels(supplement_html: Path) -> dict[str, str]:
    """The label the rendered supplement prints in each figure's and table's caption, by its id."""
    raw = supplement_html.read_text(encoding="utf-8")
    labels = {}
    for m in re.finditer(r'id="((?:fig|tbl)-[\w-]+)"(.*?)</(?:figure|div|table)>', raw, re.S):
        caption = re.search(r"<strong>(Supplemental (?:Figure|Table) \d+)\.</strong>", m.group(2))
        if caption:
            labels.setdefault(m.group(1), caption.group(1))
    return labels


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["manuscript", "submission"])
def test_paper_cites_the_supplements_own_figure_numbers(built_results, folder):
    labels = _supplement_labels(built_results / folder / "supplement.html")
    assert labels.get("fig-forest-dose") == "Supplemental Figure 1", labels
    assert labels.get("fig-leave-one-out") == "Supplemental Figure 10", labels
    paper = _text(built_results / folder / "paper.html")
    # each reference sits where the paper names the analysis, with the supplement's own number
    assert re.search(r"P = \.\d+; " + labels["fig-forest-dose"] + r"\)", paper)
    assert "(" + labels["fig-leave-one-out"] + ")" in paper
    assert "supplement (" + labels["tbl-adverse-proportions"] + ")" in paper
    assert "forest plot by dose" not in paper and "supplement, forest" not in paper


def test_the_paper_depends_on_the_documents_it_refers_to():
    assert xref_documents(ROOT / "manuscript" / "paper.qmd") == [str(ROOT / "manuscript" / "supplement.qmd")]
    assert xref_documents(ROOT / "manuscript" / "supplement.qmd") == []


def _render_html(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metabuild.render", "manuscript/paper.qmd", "out", "--to", "html"],
        cwd=project,
        capture_output=True,
        text=True,
    )


@pytest.mark.slow
def test_moving_a_supplement_figure_renumbers_the_paper_and_a_wrong_id_is_named(built_results, tmp_path):
    from conftest import copy_project

    project = copy_project(tmp_path / "project")
    shutil.copytree(built_results, project / "results")
    supplement = project / "manuscript" / "supplement.qmd"
    lines = supplement.read_text(encoding="utf-8").splitlines(keepends=True)
    loo = next(i for i, line in enumerate(lines) if "{#fig-leave-one-out}" in line)
    dose = next(i for i, line in enumerate(lines) if "{#fig-forest-dose}" in line)
    moved = lines.pop(loo)
    lines[dose:dose] = [moved, "\n"]
    supplement.write_text("".join(lines), encoding="utf-8")
    done = _render_html(project)
    assert done.returncode == 0, done.stderr[-2000:]
    paper = _text(project / "out" / "paper.html")
    assert "conclusion (Supplemental Figure 1)" in paper
    assert re.search(r"P = \.\d+; Supplemental Figure 2\)", paper)

    qmd = project / "manuscript" / "paper.qmd"
    qmd.write_text(qmd.read_text(encoding="utf-8").replace("[fig-forest-crps]", "[fig-forest-nope]"), encoding="utf-8")
    failed = _render_html(project)
    assert failed.returncode != 0
    assert 'fig-forest-nope]{.xref document="supplement"}: supplement.qmd has no figure or table' in failed.stderr
