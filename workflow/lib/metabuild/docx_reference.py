"""The Word template (pandoc ``--reference-doc``) of the submission DOCX.

Journals ask for page numbers and continuous line numbers so that reviewers can point to a line.
Pandoc takes the page layout, headers and footers of its DOCX from a reference document, so the
submission build gives it one: a journal's own template when configured
(``manuscript.submission.reference_docx``), else pandoc's default; in either case with a centred
PAGE field in every section's footer and line numbering (``w:lnNumType``) in every section.

Built at render time from pandoc's own default (``pandoc --print-default-data-file
reference.docx``) with python-docx, rather than committed as a binary, so the template follows the
pinned pandoc and what it adds is readable here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Inches, Pt

#: children of w:sectPr that come after w:lnNumType in the schema's sequence (ECMA-376 17.6.17)
_AFTER_LINE_NUMBERS = ("w:pgNumType", "w:cols", "w:formProt", "w:vAlign", "w:noEndnote", "w:titlePg",
                       "w:textDirection", "w:bidi", "w:rtlGutter", "w:docGrid", "w:printerSettings",
                       "w:sectPrChange")  # fmt: skip


#: children of w:pPr that come before w:suppressLineNumbers in the schema's sequence (17.3.1.26)
_BEFORE_SUPPRESS_LINE_NUMBERS = ("w:pStyle", "w:keepNext", "w:keepLines", "w:pageBreakBefore", "w:framePr",
                                 "w:widowControl", "w:numPr")  # fmt: skip


def _line_numbers(sect_pr) -> None:
    element = sect_pr.find(qn("w:lnNumType"))
    if element is None:
        element = OxmlElement("w:lnNumType")
        following = [sect_pr.find(qn(tag)) for tag in _AFTER_LINE_NUMBERS]
        following = [f for f in following if f is not None]
        if following:
            following[0].addprevious(element)
        else:
            sect_pr.append(element)
    element.set(qn("w:countBy"), "1")
    element.set(qn("w:restart"), "continuous")
    element.set(qn("w:distance"), "340")  # about 0.6 cm from the text


def _page_number(paragraph) -> None:
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    field.append(run)
    paragraph._p.append(field)
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER


def submission_reference_docx(target: Path, base: Path | None = None, *, line_numbers: bool = True) -> Path:
    """Write the submission template to ``target`` (from ``base``, or pandoc's default) and return it."""
    target = Path(target)
    if base is not None:
        shutil.copyfile(base, target)
    else:
        from metabuild.render import _pandoc_path

        with open(target, "wb") as handle:
            subprocess.run([_pandoc_path(), "--print-default-data-file", "reference.docx"], stdout=handle, check=True)
    document = Document(str(target))
    for section in document.sections:
        if base is None:
            # pandoc's template leaves the page to Word's locale default: fix US Letter with 1-inch
            # margins, the 6.5-inch column the figures are drawn for (figures/forest.py FIG_WIDTH)
            section.page_width, section.page_height = Inches(8.5), Inches(11)
            section.left_margin = section.right_margin = Inches(1)
            section.top_margin = section.bottom_margin = Inches(1)
            section.header_distance = section.footer_distance = Inches(0.5)
            section.gutter = Inches(0)  # w:pgMar's header, footer and gutter are required attributes
        if line_numbers:
            _line_numbers(section._sectPr)
        footer = section.footer
        footer.is_linked_to_previous = False
        paragraph = footer.paragraphs[0] if footer.paragraphs else footer.add_paragraph()
        if "PAGE" not in paragraph._p.xml:
            _page_number(paragraph)
        if line_numbers:
            # Word never numbers footer lines, but LibreOffice does (it printed a second page
            # number in the margin): say so in the paragraph
            p_pr = paragraph._p.get_or_add_pPr()
            if p_pr.find(qn("w:suppressLineNumbers")) is None:
                before = [p_pr.find(qn(t)) for t in _BEFORE_SUPPRESS_LINE_NUMBERS]
                before = [e for e in before if e is not None]
                p_pr.insert(p_pr.index(before[-1]) + 1 if before else 0, OxmlElement("w:suppressLineNumbers"))
    if base is None:
        # table text a size smaller than the body, as journals set tables (the "Table" style is the
        # one pandoc gives every table)
        for style in document.styles:
            if style.name == "Table":
                style.font.size = Pt(9)
    document.save(str(target))
    _fix_zip_times(target)
    return target


def text_width_twips(reference: Path) -> int:
    """The text width (page width minus side margins) of the first section of ``reference``."""
    section = Document(str(reference)).sections[0]
    return int((section.page_width - section.left_margin - section.right_margin) / 635)  # EMU per twip


_GRID = re.compile(r"<w:tblGrid>(.*?)</w:tblGrid>", re.S)
_WIDTH = re.compile(r'(<w:(?:gridCol|tcW) w:w=")(\d+)(")')


_BODY_SECTION = re.compile(r"<w:sectPr\b.*?</w:sectPr>\s*</w:body>", re.S)
_PAGE_SIZE = re.compile(r"<w:pgSz\b[^>]*/>")
_PAGE_MARGINS = re.compile(r"<w:pgMar\b[^>]*/>")


def _attr(tag: str, name: str) -> int:
    return int(re.search(rf'w:{name}="(\d+)"', tag).group(1))


def _section_break(section: str) -> str:
    """A paragraph that ends a section with the properties ``section`` (a w:sectPr)."""
    return f"<w:p><w:pPr>{section}</w:pPr></w:p>"


def landscape_blocks(docx: Path, bookmarks: list[str]) -> list[str]:
    """Set each bookmarked block of ``docx`` (a table with its caption and notes: pandoc writes a
    Div's id as a bookmark around its content) on landscape pages, and widen its tables to the
    landscape text width. Returns the bookmarks not found.

    A GRADE evidence profile has eleven columns: on a portrait page Word has to break its header
    words mid-word. OOXML ends a section with the w:sectPr in its last paragraph, so the block gets
    a section break before it (the body's portrait properties) and one after it (the same with
    the page turned); the footer and line numbering carry over because the properties are copied."""
    with zipfile.ZipFile(docx) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    missing = []
    out = []
    for info, data in members:
        if info.filename == "word/document.xml":
            xml = data.decode("utf-8")
            body = _BODY_SECTION.search(xml)
            portrait = body.group(0)[: body.group(0).rindex("</w:sectPr>") + len("</w:sectPr>")] if body else ""
            size = _PAGE_SIZE.search(portrait) if portrait else None
            margins = _PAGE_MARGINS.search(portrait) if portrait else None
            for name in bookmarks:
                start = re.search(rf'<w:bookmarkStart w:id="(\d+)" w:name="{re.escape(name)}"\s*/>', xml)
                if not (start and size and margins):
                    missing.append(name)
                    continue
                end = xml.find(f'<w:bookmarkEnd w:id="{start.group(1)}"', start.end())
                end = xml.find(">", end) + 1
                width, height = _attr(size.group(0), "w"), _attr(size.group(0), "h")
                turned = portrait.replace(
                    size.group(0), f'<w:pgSz w:w="{height}" w:h="{width}" w:orient="landscape" />'
                )
                # no break before the block's first page: the landscape section starts a new page itself
                turned = re.sub(r"<w:type w:val=\"[^\"]*\"\s*/>", "", turned)
                text_width = height - _attr(margins.group(0), "left") - _attr(margins.group(0), "right")
                block = xml[start.start() : end]
                block = _fit_tables(block, text_width)
                xml = xml[: start.start()] + _section_break(portrait) + block + _section_break(turned) + xml[end:]
            data = xml.encode("utf-8")
        out.append((info, data))
    with zipfile.ZipFile(docx, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in out:
            target.writestr(info, data)
    return missing


def _fit_tables(xml: str, width_twips: int) -> str:
    """``xml`` with each table's grid and cell widths scaled so the table spans ``width_twips``."""
    pieces, last = [], 0
    for table in re.finditer(r"<w:tbl>.*?</w:tbl>", xml, re.S):
        grid = _GRID.search(table.group(0))
        total = sum(int(w) for w in re.findall(r'<w:gridCol w:w="(\d+)"', grid.group(1))) if grid else 0
        body = table.group(0)
        if total:
            factor = width_twips / total
            body = _WIDTH.sub(lambda m, f=factor: f"{m.group(1)}{round(int(m.group(2)) * f)}{m.group(3)}", body)
        pieces += [xml[last : table.start()], body]
        last = table.end()
    return "".join(pieces) + xml[last:]


def fit_tables_to_text_width(docx: Path, width_twips: int) -> None:
    """Scale every table's grid (and cell widths) of ``docx`` so the table spans the text width.

    Pandoc sizes a table's columns for a 5.5-inch column (7,920 twips) whatever the reference
    document's page; with a fixed table layout Word and LibreOffice then print a narrower table
    and break words that would fit. The columns keep their proportions (from the content:
    metabuild.tables.column_widths)."""
    with zipfile.ZipFile(docx) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    out = []
    for info, data in members:
        if info.filename == "word/document.xml":
            data = _fit_tables(data.decode("utf-8"), width_twips).encode("utf-8")
        out.append((info, data))
    with zipfile.ZipFile(docx, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in out:
            target.writestr(info, data)


def _fix_zip_times(path: Path) -> None:
    """Give every member the build's time (SOURCE_DATE_EPOCH): pandoc copies the template's
    footer part with its timestamp into the DOCX, and two builds must be byte-identical."""
    from metabuild.render import _epoch

    stamp = time.gmtime(max(_epoch(), 315532800))[:6]  # the zip format starts in 1980
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            out.writestr(fixed, data)
