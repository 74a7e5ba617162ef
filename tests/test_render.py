"""Rendering: numbers from the registry, cross-references, citations, determinism, engines.

Each test builds a tiny project in a tmp dir (mini qmd + numbers.json + figure + table) that uses
the real filters, CSL and Typst template from manuscript/.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import document_folder

from metabuild.render import RenderError, render_document

REPO = Path(__file__).resolve().parents[1]
MANUSCRIPT = REPO / "manuscript"

# a 1x1 PNG and a tiny SVG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a7d6b1a30000000049454e44ae426082"
)
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60" viewBox="0 0 120 60">'
    '<rect x="10" y="10" width="100" height="40" fill="#336699"/></svg>'
)

NUMBERS = {
    "numbers": {
        "primary.estimate": {
            "value": -1.83,
            "text": "\u22121.83",
            "published": "-1.83",
            "rule": "pool_primary",
            "script": "workflow/scripts/pool.py",
            "inputs": [{"path": "data/pain_scores.csv", "sha256": "ab" * 32}],
        },
        "primary.p": {"value": 0.0001, "text": "< .001", "published": "< .0001", "rule": "pool_primary"},
        "studies.count": {"value": 7, "text": "7", "published": "7"},
    }
}

QMD = """---
title: Mini manuscript
abstract: |
  **Results:** Pain fell by [primary.estimate]{.num} points.
---

# Results

In [studies.count]{.num} trials, pain fell by [primary.estimate]{.num} points
(*P* [primary.p]{.num}) [@alpha2009; @beta2010]; see @fig-forest and @tbl-chars.
Again, as before [@alpha2009].

![A forest plot.](../results/figures/forest.svg){#fig-forest}

::: {#tbl-chars .include file="../results/tables/chars.md"}
Characteristics of the trials.
:::

# References {.unnumbered}

::: {#refs}
:::
"""

BIB = """@article{alpha2009, author={Alpha, Ann}, title={First trial}, journal={J Pain}, year={2009},
  volume={1}, pages={1--2}}
@article{beta2010, author={Beta, Bob}, title={Second trial}, journal={J Pain}, year={2010},
  volume={2}, pages={3--4}}
"""

TABLE = """| Trial | Patients |
|:--|--:|
| Alphatrial | 40 |
| Betatrial | 20 |
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """tmp/doc/{paper.qmd,_quarto.yml,refs.bib,filters,csl,typst,css} + tmp/results/..."""
    document_folder(tmp_path / "doc", QMD, BIB)
    res = tmp_path / "results"
    (res / "figures").mkdir(parents=True)
    (res / "tables").mkdir()
    (res / "figures" / "forest.svg").write_text(SVG, encoding="utf-8")
    (res / "figures" / "forest.png").write_bytes(PNG)
    (res / "tables" / "chars.md").write_text(TABLE, encoding="utf-8")
    (res / "numbers.json").write_text(json.dumps(NUMBERS), encoding="utf-8")
    return tmp_path


@pytest.fixture(autouse=True)
def _epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1561939200")


def _render(project: Path, outdir: str = "out", formats=("html", "docx", "pdf"), engine="pandoc", **options):
    return render_document(
        project / "doc" / "paper.qmd",
        project / outdir,
        formats,
        project / "results" / "numbers.json",
        engine=engine,
        **options,
    )


def _docx_text(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        xml = z.read("word/document.xml").decode("utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", xml))


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def test_numbers_substituted_in_all_formats(project):
    out = _render(project, provenance_href="provenance.html")
    page = out["html"].read_text(encoding="utf-8")
    assert "\u22121.83" in page and "&lt; .001" in page
    assert 'class="num"' in page and 'data-key="primary.estimate"' in page
    # each number links to its entry in the provenance document, and carries it as a tooltip
    assert 'href="provenance.html#prov-primary.estimate"' in page
    assert "pool_primary" in page
    assert "[primary.estimate]" not in page
    docx = _docx_text(out["docx"])
    assert "\u22121.83" in docx and "< .001" in docx
    with zipfile.ZipFile(out["docx"]) as z:
        comments = z.read("word/comments.xml").decode("utf-8")
    assert "primary.estimate" in comments and "pool_primary" in comments
    pdf = _pdf_text(out["pdf"])
    assert "\u22121.83" in pdf and "< .001" in pdf
    # the paper has no provenance appendix any more: it is a document of its own
    assert "Provenance of reported numbers".upper() not in pdf.upper()
    assert b"provenance.html#prov-primary.estimate" in out["pdf"].read_bytes()
    # without a provenance document, numbers keep their tooltip but link nowhere
    plain = _render(project, "out_plain", formats=("html",))["html"].read_text(encoding="utf-8")
    assert 'data-key="primary.estimate"' in plain and "#prov-" not in plain


def test_missing_key_names_the_key(project):
    qmd = project / "doc" / "paper.qmd"
    qmd.write_text(QMD.replace("[studies.count]{.num}", "[studies.no_such_key]{.num}"), encoding="utf-8")
    for fmt in ("html", "docx", "pdf"):
        with pytest.raises(RenderError) as err:
            _render(project, formats=(fmt,))
        msg = str(err.value)
        assert "studies.no_such_key" in msg and "not in results/numbers.json" in msg
        assert not (project / "out" / f"paper.{fmt}").exists(), "a failed render left output behind"
    assert not [p for p in (project / "out").iterdir()], "temporary files left behind"


# Bad manuscript and bibliography input: (file it breaks, old text, new text, words the error
# must contain). Each fails the render with a message naming the document or file and the
# line or key, and writes no output file.
BAD_MANUSCRIPT = {
    "citation_not_in_bibliography": (
        "paper.qmd",
        "[@alpha2009; @beta2010]",
        "[@alpha2009; @gamma2011]",
        ["gamma2011", "paper.qmd line(s) 10", "not in the bibliography", "refs.bib"],
    ),
    "reference_to_missing_figure": ("paper.qmd", "see @fig-forest", "see @fig-forrest", ["@fig-forrest"]),
    "unterminated_bibtex_entry": ("refs.bib", "pages={3--4}}", "pages={3--4}", ["refs.bib", "line"]),
    "missing_included_table": (
        "paper.qmd",
        'file="../results/tables/chars.md"',
        'file="../results/tables/charz.md"',
        ["charz.md"],
    ),
    "missing_figure_file": ("paper.qmd", "figures/forest.svg", "figures/forrest.svg", ["forrest"]),
    "unclosed_front_matter": (
        "paper.qmd",
        "title: Mini manuscript",
        "title: [Mini manuscript",
        ["paper.qmd line", "front matter"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_MANUSCRIPT))
@pytest.mark.parametrize("fmt", ["html", "docx", "pdf"])
def test_bad_manuscript_input_names_the_problem(project, case, fmt):
    name, old, new, words = BAD_MANUSCRIPT[case]
    path = project / "doc" / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RenderError) as err:
        _render(project, formats=(fmt,))
    for word in words:
        assert word in str(err.value), f"{word!r} not in: {err.value}"
    out = project / "out"
    assert not out.exists() or not list(out.iterdir()), "a failed render left output behind"


def test_crossrefs_resolved(project):
    out = _render(project)
    page = out["html"].read_text(encoding="utf-8")
    assert re.search(r'<a href="#fig-forest"[^>]*>Figure 1</a>', page)
    assert re.search(r'<a href="#tbl-chars"[^>]*>Table 1</a>', page)
    assert "Figure 1." in page and "Table 1." in page  # numbered captions
    assert "Alphatrial" in page  # the included table
    assert "@fig-forest" not in page and "???" not in page
    docx = _docx_text(out["docx"])
    assert "Figure 1" in docx and "Table 1" in docx and "Alphatrial" in docx
    pdf = _pdf_text(out["pdf"])
    assert "Figure 1" in pdf and "Table 1" in pdf and "Alphatrial" in pdf


def test_citations_numbered(project):
    out = _render(project, formats=("html", "pdf"))
    page = out["html"].read_text(encoding="utf-8")
    refs = _normalize(re.sub(r"<[^>]+>", " ", page[page.index('id="refs"') :]))
    assert "Alpha A. First trial." in refs and "Beta B. Second trial." in refs
    assert refs.index("Alpha A.") < refs.index("Beta B.")  # numbered in order of citation
    # the citation reads "1,2"; in the audit rendering each number links to its reference
    assert "1,2" in [re.sub(r"<[^>]+>", "", sup) for sup in re.findall(r"<sup>(.*?)</sup>", page)]
    assert 'href="#ref-' in page
    pdf = _pdf_text(out["pdf"])
    assert re.search(r"1\.\s*Alpha A\. First trial", pdf) and re.search(r"2\.\s*Beta B\.", pdf)


def test_byte_identical_rerender(project):
    a = _render(project, "out_a")
    b = _render(project, "out_b")
    for fmt in ("html", "docx", "pdf"):
        assert a[fmt].read_bytes() == b[fmt].read_bytes(), f"{fmt} differs between two renders"


def test_docx_uses_png_for_svg(project):
    out = _render(project, formats=("docx",))
    with zipfile.ZipFile(out["docx"]) as z:
        media = [n for n in z.namelist() if n.startswith("word/media/")]
    assert media and all(n.endswith(".png") for n in media)


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# Quarto gives each float caption an id of its own, "<float id>-caption-" + a fixed UUID
# (src/resources/filters/customnodes/floatreftarget.lua); the pandoc path has no such element.
QUARTO_GENERATED_ID = re.compile(r"-caption-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _ids(page: str, prefix: str) -> set[str]:
    return {i for i in re.findall(rf'id="({prefix}-[^"]+)"', page) if not QUARTO_GENERATED_ID.search(i)}


@pytest.mark.needs_quarto
def test_quarto_equivalence(project):
    if shutil.which("quarto") is None:
        pytest.skip("Quarto is not installed: the pandoc path is the only engine available here")
    doc_before = sorted(p.relative_to(project / "doc") for p in (project / "doc").rglob("*"))
    p = _render(project, "out_pandoc", engine="pandoc", provenance_href="provenance.html")
    q = _render(project, "out_quarto", engine="quarto", provenance_href="provenance.html")
    assert sorted(p.relative_to(project / "doc") for p in (project / "doc").rglob("*")) == doc_before, (
        "Quarto wrote into the document's folder"
    )
    pages = [out["html"].read_text("utf-8") for out in (p, q)]
    for page in pages:
        text = _normalize(re.sub(r"<[^>]+>", " ", html.unescape(page)))
        assert "\u22121.83" in text and "Alphatrial" in text
        assert "Figure 1." in text and "Table 1." in text and "Figure 1:" not in text
    spans = [re.findall(r'data-key="([^"]+)"', page) for page in pages]
    assert spans[0] == spans[1]
    links = [re.findall(r'href="provenance\.html#(prov-[^"]+)"', page) for page in pages]
    assert links[0] and links[0] == links[1]
    assert _ids(pages[0], "fig") == _ids(pages[1], "fig") and _ids(pages[0], "tbl") == _ids(pages[1], "tbl")
    for fmt, extract in (("docx", _docx_text), ("pdf", _pdf_text)):
        texts = [_normalize(extract(out[fmt])) for out in (p, q)]
        for text in texts:
            assert "\u22121.83" in text and "< .001" in text and "Alphatrial" in text and "Table 1" in text
        assert ("metabuild reproduction" in texts[1]) == ("metabuild reproduction" in texts[0])  # the template


def test_quarto_generated_ids_are_the_only_ones_ignored():
    page = (
        '<figure id="fig-forest"><figcaption id="fig-forest-caption-0ceaefa1-69ba-4598-a22c-09a6ac19f8ca">'
        '<div id="tbl-chars"><div id="tbl-chars-caption"></div>'
    )
    assert _ids(page, "fig") == {"fig-forest"}
    assert _ids(page, "tbl") == {"tbl-chars", "tbl-chars-caption"}


# --------------------------------------------------------------------------- no typed numbers
def strip_for_digit_check(text: str) -> str:
    """Remove everything of a .qmd where digits may legitimately appear."""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)  # YAML front matter
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks
    text = re.sub(r"`[^`]*`", "", text)  # inline code
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)  # comments
    text = re.sub(
        r"\[[A-Za-z0-9_.\-]+\]\{\.(?:num|cite|trials|xref)\b[^{}]*\}", "", text
    )  # registry spans, cross-references
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link / image targets
    text = re.sub(r"\{[^{}]*\}", "", text)  # attributes {#fig-x .include file=...}
    text = re.sub(r"@[A-Za-z][\w:.#$%&\-+?<>~/]*", "", text)  # citations and cross-refs
    text = re.sub(r"\^\d+\^", "", text)  # superscript markup in I^2^
    return text


def typed_numbers(text: str) -> list[str]:
    return re.findall(r"[^\s]*\d[^\s]*", strip_for_digit_check(text))


@pytest.mark.parametrize("name", ["paper.qmd", "supplement.qmd"])
def test_no_typed_numbers_in_manuscript(name):
    path = MANUSCRIPT / name
    assert path.is_file(), f"{path} is missing"
    found = typed_numbers(path.read_text(encoding="utf-8"))
    assert not found, f"numbers typed into {name} (use [key]{{.num}} spans): {found[:20]}"


def test_digit_check_catches_a_typed_number():
    assert typed_numbers("---\ntitle: x 2019\n---\nPain fell by 1.83 points [@a2009].\n") == ["1.83"]
    assert typed_numbers("Pain fell by [primary.estimate]{.num} points (@fig-flow; *I*^2^).\n") == []


def test_pandoc_lookup_is_safe_from_threads():
    # the formats of a document render side by side: each thread must get the same pandoc,
    # also when they all ask before pypandoc has finished its first search
    import threading

    import pypandoc

    from metabuild import render

    pypandoc.clean_pandocpath_cache()
    expected = pypandoc.get_pandoc_path()
    found, start = [], threading.Barrier(8)

    def ask():
        start.wait()
        found.append(render._pandoc_path())

    lookup = render._pandoc_lookup
    render._pandoc_lookup = pypandoc.get_pandoc_path  # pypandoc's own search, as when unbundled
    try:
        for _ in range(3):
            pypandoc.clean_pandocpath_cache()
            threads = [threading.Thread(target=ask) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        render._pandoc_lookup = lookup
    assert found == [expected] * 24


def test_the_bundled_pandoc_is_used():
    import pypandoc

    from metabuild import render

    assert Path(render._pandoc_path()).parent == Path(pypandoc.__file__).parent / "files"


def test_a_journals_typst_template_shapes_the_submission_pdf(project):
    """manuscript.submission.typst_template: the journal's pandoc Typst template replaces the
    project's for the PDF; a missing one is named."""
    template = project / "journal.typ"
    template.write_text("#set page(header: [Journal of Tests])\n$body$\n", encoding="utf-8")
    out = _render(project, "out_journal", formats=("pdf",), variant="submission", typst_template=template)
    text = _pdf_text(out["pdf"])
    assert "Journal of Tests" in text and "\u22121.83" in text
    assert "Journal of Tests" not in _pdf_text(_render(project, "out_own", formats=("pdf",))["pdf"])
    with pytest.raises(RenderError, match="journal-missing.typ does not exist"):
        _render(project, "out_missing", formats=("pdf",), typst_template=project / "journal-missing.typ")
