"""Two renderings of one source: the submission documents (results/submission/) carry no
provenance (no comments, links or tooltips), have page numbers and line numbers, and clean figure
alt text; the audit documents (results/manuscript/) keep their provenance and link each number to its
entry in the provenance document (results/manuscript/provenance.html)."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from metabuild.docx_reference import submission_reference_docx

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _part(docx: Path, name: str) -> str:
    with zipfile.ZipFile(docx) as z:
        return z.read(name).decode("utf-8") if name in z.namelist() else ""


def _pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", out).group(1))


@pytest.mark.slow
@pytest.mark.parametrize("document", ["paper", "supplement"])
def test_submission_docx_has_no_provenance_and_has_page_and_line_numbers(built_results, document):
    docx = built_results / "submission" / f"{document}.docx"
    body = _part(docx, "word/document.xml")
    assert "<w:comment " not in _part(docx, "word/comments.xml")
    assert "commentRangeStart" not in body and "Provenance of reported numbers" not in body
    assert re.search(r'<w:lnNumType [^>]*w:countBy="1"', body)
    footers = [n for n in zipfile.ZipFile(docx).namelist() if n.startswith("word/footer")]
    assert footers and any("PAGE" in _part(docx, n) for n in footers)
    # the audit rendering of the same document keeps a comment on its numbers
    assert "<w:comment " in _part(built_results / "manuscript" / f"{document}.docx", "word/comments.xml")


@pytest.mark.slow
def test_figure_alt_text_is_the_caption_not_provenance(built_results):
    for folder in ("submission", "manuscript"):
        body = _part(built_results / folder / "paper.docx", "word/document.xml")
        descriptions = re.findall(r'descr="([^"]*)"', body)
        assert any(d.startswith("Forest plot of the lowest pain score") for d in descriptions), folder
        assert not [d for d in descriptions if "published:" in d or "inputs:" in d], folder


@pytest.mark.slow
def test_submission_html_and_pdf_have_no_provenance(built_results):
    html = (built_results / "submission" / "paper.html").read_text(encoding="utf-8")
    assert 'class="num"' not in html and "#prov-" not in html and "data-claim" not in html
    assert "Provenance of reported numbers" not in html
    audit = (built_results / "manuscript" / "paper.html").read_text(encoding="utf-8")
    assert 'class="num"' in audit and 'href="provenance.html#prov-' in audit
    # citations link to their reference in the audit rendering (link-citations), not in the submission
    assert 'href="#ref-' in audit and 'href="#ref-' not in html
    # the same numbers, without their links
    assert "−1.83" in html and "−1.83" in audit
    sub_pdf, audit_pdf = built_results / "submission" / "paper.pdf", built_results / "manuscript" / "paper.pdf"
    text = subprocess.run(["pdftotext", str(sub_pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Provenance of reported numbers" not in text
    # the provenance is a document of its own, not an appendix: both renderings have the paper's length
    assert abs(_pages(sub_pdf) - _pages(audit_pdf)) <= 1
    assert (
        "Provenance of reported numbers"
        not in subprocess.run(["pdftotext", str(audit_pdf), "-"], capture_output=True, text=True, check=True).stdout
    )
    # line numbers: the first page's lines are numbered 1, 2, 3 ... in the margin
    first = subprocess.run(
        ["pdftotext", "-layout", "-f", "1", "-l", "1", str(sub_pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    numbered = [int(m) for m in re.findall(r"^\s*(\d+)\s{2,}\S", first, re.M)]
    assert numbered[:5] == [1, 2, 3, 4, 5], first[:400]


def test_reference_docx_numbers_lines_and_pages_and_is_reproducible(tmp_path):
    a = submission_reference_docx(tmp_path / "a.docx")
    b = submission_reference_docx(tmp_path / "b.docx")
    assert a.read_bytes() == b.read_bytes()
    body = _part(a, "word/document.xml")
    assert body.count("<w:lnNumType") == 1
    # the children of w:sectPr keep the schema's order (ECMA-376 17.6.17), or Word refuses the file
    order = ["headerReference", "footerReference", "footnotePr", "endnotePr", "type", "pgSz", "pgMar",
             "paperSrc", "pgBorders", "lnNumType", "pgNumType", "cols", "formProt", "vAlign", "noEndnote",
             "titlePg", "textDirection", "bidi", "rtlGutter", "docGrid"]  # fmt: skip
    sect = re.search(r"<w:sectPr>(.*?)</w:sectPr>", body, re.S).group(1)
    children = [t for t in re.findall(r"<w:(\w+)", sect) if t in order]
    assert "lnNumType" in children and children == sorted(children, key=order.index)
    without = submission_reference_docx(tmp_path / "c.docx", line_numbers=False)
    assert "<w:lnNumType" not in _part(without, "word/document.xml")
    assert any("PAGE" in _part(without, n) for n in zipfile.ZipFile(without).namelist() if "footer" in n)


@pytest.mark.slow
def test_submission_docx_tables_span_the_text_width_with_columns_from_content(built_results):
    """Pandoc sizes table grids for a 5.5-inch column; the submission DOCX's tables span its
    6.5-inch text width (9,360 twips), and their columns are not all equal (widths from content)."""
    body = _part(built_results / "submission" / "paper.docx", "word/document.xml")
    grids = [
        [int(w) for w in re.findall(r'<w:gridCol w:w="(\d+)"', grid)]
        for grid in re.findall(r"<w:tblGrid>(.*?)</w:tblGrid>", body, re.S)
    ]
    assert len(grids) >= 2  # Table 1 and Table 2
    for columns in grids:
        assert abs(sum(columns) - 9360) <= len(columns), columns
        assert len(set(columns)) > 1, columns
