"""Two renderings of one source: the submission documents (results/submission/) carry no
provenance (no comments, links or tooltips), have page numbers and line numbers, and clean figure
alt text; the audit documents (results/manuscript/) keep their provenance and link each number to its
entry in the provenance document (results/manuscript/provenance.html)."""

from __future__ import annotations

import re
import shutil
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
    # a journal article's reference carries its issue, never "Published online 2012:CD008943"
    plain = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))
    assert "Cochrane Database Syst Rev. 2012;(7):CD008943" in plain
    assert not re.search(r"Rev\. Published online", plain)
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
    """Pandoc sizes table grids for a 5.5-inch column; the submission DOCX's tables span the text
    width of their page: 6.5 inches (9,360 twips) in portrait, 9 inches (12,960 twips) on the
    landscape pages that config manuscript.submission.landscape asks for (Tables 1 and 2), and
    their columns are not all equal (widths from content)."""
    for document, landscape in (("paper", 2), ("supplement", 0)):
        body = _part(built_results / "submission" / f"{document}.docx", "word/document.xml")
        grids = [
            [int(w) for w in re.findall(r'<w:gridCol w:w="(\d+)"', grid)]
            for grid in re.findall(r"<w:tblGrid>(.*?)</w:tblGrid>", body, re.S)
        ]
        assert grids, document
        widths = sorted(sum(columns) for columns in grids)
        assert [w for w in widths if abs(w - 12960) <= 12] == widths[len(widths) - landscape :], widths
        assert all(abs(w - 9360) <= 12 for w in widths[: len(widths) - landscape]), widths
        if document == "paper":  # Tables 1 and 2
            assert all(len(set(columns)) > 1 for columns in grids)


def _sections(body: str) -> list[tuple[int, str]]:
    """(position, orientation) of each section's end in a DOCX body."""
    return [
        (m.start(), "landscape" if 'w:orient="landscape"' in m.group(0) else "portrait")
        for m in re.finditer(r"<w:sectPr\b.*?</w:sectPr>", body, re.S)
    ]


@pytest.mark.slow
def test_wide_tables_sit_on_landscape_pages_with_the_footer_and_line_numbers(built_results):
    body = _part(built_results / "submission" / "paper.docx", "word/document.xml")
    sections = _sections(body)
    assert [o for _, o in sections] == ["portrait", "landscape", "portrait", "landscape", "portrait"]
    for table in ("tbl-characteristics", "tbl-grade"):
        where = body.index(f'w:name="{table}"')
        before = [o for pos, o in sections if pos < where]
        after = [o for pos, o in sections if pos > where]
        # the table (with caption and notes) makes a landscape section of its own
        assert before[-1] == "portrait" and after[0] == "landscape", table
    for match in re.finditer(r"<w:sectPr\b.*?</w:sectPr>", body, re.S):
        assert "<w:footerReference" in match.group(0) and "<w:lnNumType" in match.group(0)


@pytest.mark.slow
def test_word_users_see_whole_header_words_in_tables(built_results, tmp_path):
    """LibreOffice lays the submission DOCX out as Word users see it: Tables 1 and 2 on landscape
    pages, no header word broken across lines, and no line number printed beside the page number."""
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) not installed: setup.sh installs libreoffice-writer")
    subprocess.run(
        [
            soffice,
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(built_results / "submission" / "paper.docx"),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    pdf = tmp_path / "paper.pdf"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")
    wide = [i for i, page in enumerate(pages) if "Inconsistency" in page or "Cumulative" in page]
    assert wide
    for i in wide:
        info = subprocess.run(
            ["pdfinfo", "-f", str(i + 1), "-l", str(i + 1), str(pdf)], capture_output=True, text=True, check=True
        ).stdout
        assert re.search(r"size:\s+792 x 612", info), info
    joined = "\n".join(pages[i] for i in wide)
    for word in ("Inconsistency", "Indirectness", "Imprecision", "Certainty", "Studies", "Ketamine", "Cumulative"):
        assert re.search(rf"\b{word}\b", joined), word
    # the page number once, centred: not also as a line number in the margin
    footers = [page.rstrip().splitlines()[-1].split() for page in pages[:5] if page.strip()]
    assert all(len(f) == 1 and f[0].isdigit() for f in footers), footers
