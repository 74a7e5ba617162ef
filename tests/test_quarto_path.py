"""What Quarto does differently from plain pandoc, exercised without Quarto.

Read from Quarto's source (quarto-dev/quarto-cli, 1.6 to 1.10):
* it hands pandoc a temporary copy of the document in a ``quarto-session`` folder, so
  ``PANDOC_STATE.input_files`` names the copy; the real path is ``quarto.doc.input_file``
  (``src/resources/pandoc/datadir/init.lua``);
* it loads a user filter with ``loadfile`` in an environment whose ``error`` is Quarto's logger,
  which only prints (``filters/common/log.lua``, ``filters/common/wrapped-filter.lua``);
* its Typst output puts tables in figures of kind ``quarto-float-tbl`` and figures in kind
  ``quarto-float-fig``, numbered by Typst, and it uses the project's partials
  ``typst-template.typ`` / ``typst-show.typ`` in its own template;
* it compiles Typst with ``--root`` at the project folder, which refuses ``../results``; the
  workflow therefore has Quarto write the Typst source and compiles it as on the pandoc path.

The harness below does the first two: it runs the project's filters through a Lua wrapper that
loads each one the way Quarto does, on a copy of the document in another folder.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import document_folder
from test_render import BIB, NUMBERS, PNG, QMD, SVG, TABLE

from metabuild import render

REPO = Path(__file__).resolve().parents[1]
MANUSCRIPT = REPO / "manuscript"

# Loads the filter at FILTER as Quarto's makeWrappedLuaFilter does: `error` only prints (as
# Quarto's logger does), `quarto.doc.input_file` names the real document, the rest is _G.
HARNESS = """
local env = setmetatable({
  error = function(message) io.stderr:write("ERROR (only printed) " .. tostring(message) .. "\\n") end,
  quarto = { doc = { input_file = INPUT } },
}, { __index = _G })
local chunk = assert(loadfile(FILTER, "bt", env))
return chunk()
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


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def quarto_like(project: Path, to: str, filters=("numbers.lua", "callout.lua"), args=()) -> subprocess.CompletedProcess:
    """pandoc run the way Quarto runs it: on a copy of paper.qmd in a quarto-session folder
    (also the working directory), each filter loaded by the harness. No numbers-file is
    given: the filter's default (../results/numbers.json beside the document) must be found."""
    doc = project / "doc"
    session = project / "tmp" / "quarto-session1a2b3c"
    session.mkdir(parents=True, exist_ok=True)
    copy = session / "paper.quarto.md"
    shutil.copyfile(doc / "paper.qmd", copy)
    cmd = [render._pandoc_path(), copy.name, "--from", "markdown", "--to", to, "--standalone"]
    for name in filters:
        wrapper = session / f"wrapped-{name}"
        wrapper.write_text(
            f"local FILTER = {_lua_string(str(doc / 'filters' / name))}\n"
            f"local INPUT = {_lua_string(str(doc / 'paper.qmd'))}\n" + HARNESS,
            encoding="utf-8",
        )
        cmd += ["--lua-filter", str(wrapper)]
    cmd += list(args)
    return subprocess.run(cmd, cwd=session, capture_output=True, text=True)


def test_filters_read_tables_and_registry_beside_the_real_document(project):
    proc = quarto_like(project, "html")
    assert proc.returncode == 0, proc.stderr
    assert "Alphatrial" in proc.stdout  # the included table, ../results/tables/chars.md
    assert "\u22121.83" in proc.stdout and 'data-key="primary.estimate"' in proc.stdout  # the registry
    assert "ERROR" not in proc.stderr


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("[studies.count]{.num}", "[studies.no_such_key]{.num}", ["studies.no_such_key", "not in results/"]),
        ('file="../results/tables/chars.md"', 'file="../results/tables/charz.md"', ["cannot read included", "charz"]),
        ("title: Mini manuscript", "title: Mini manuscript\nnumbers-file: ../results/nothing.json", ["nothing.json"]),
    ],
    ids=["missing_key", "missing_table", "missing_registry"],
)
def test_a_filter_error_stops_a_quarto_render(project, old, new, words):
    qmd = project / "doc" / "paper.qmd"
    qmd.write_text(QMD.replace(old, new, 1), encoding="utf-8")
    proc = quarto_like(project, "html")
    assert proc.returncode != 0, "the render went on after the filter's error"
    failure = proc.stderr[proc.stderr.index("Error running filter") :] if "Error running filter" in proc.stderr else ""
    for word in words:
        assert word in failure, f"{word!r} is not the reason the render stopped:\n{proc.stderr}"
    assert "only printed" not in proc.stderr, "the filter's error went to Quarto's logger and was not raised"


def test_callouts_are_boxed_before_quarto_sees_them(project):
    qmd = project / "doc" / "paper.qmd"
    qmd.write_text(QMD.replace("# Results\n", '# Results\n\n::: {.callout-note title="Key Points"}\n- One.\n:::\n'))
    html = quarto_like(project, "html").stdout
    assert 'class="boxed"' in html and "<strong>Key Points</strong>" in html
    assert "callout" not in html  # Quarto would turn any callout class into its own callout
    typ = quarto_like(project, "typst").stdout
    assert "Key Points" in typ and "@preview" not in typ and "#block(width: 100%" in typ


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True).stdout


def test_typst_from_a_staged_copy_compiles_with_figures_outside_the_document_folder(project, tmp_path):
    """The Quarto PDF path: Typst source made from a copy of the document elsewhere, compiled by
    the project's Typst with a root that holds ../results (Quarto's own root, the document's
    folder, refuses it)."""
    template = project / "doc" / "typst" / "template.typ"
    # (Quarto resolves @fig-/@tbl- itself; here citeproc just leaves them unresolved)
    bib = str(project / "doc" / "refs.bib")
    proc = quarto_like(project, "typst", args=["--template", str(template), "--citeproc", "--bibliography", bib])
    assert proc.returncode == 0, proc.stderr
    assert 'image("../results/figures/forest.svg"' in proc.stdout
    docdir = project / "doc"
    source, root = render._rooted(proc.stdout, docdir)
    assert root == project.resolve() and 'image("/results/figures/forest.svg"' in source
    cfg = render.project_config(docdir / "paper.qmd")
    target = tmp_path / "out.pdf"
    render._compile_pdf(source, root, docdir / "paper.qmd", target, cfg)
    text = _pdf_text(target)
    assert "\u22121.83" in text and "Alphatrial" in text
    assert "A forest plot." in " ".join(text.split())  # the figure's caption, below the drawn SVG


# What Quarto's Typst output looks like around the body (its definitions partial aside): a table
# float numbered by Typst, of kind quarto-float-tbl, long enough to need a second page.
QUARTO_TABLE = """
#figure([
#table(columns: 2, [Trial], [Patients], {rows})
], caption: figure.caption(position: top, [Characteristics of the trials.]), kind: "quarto-float-tbl",
supplement: "Table")<tbl-chars>

See @tbl-chars.
"""


def _quarto_shaped_typst(doc: Path, body: str) -> str:
    """The project's partials in the order Quarto's template includes them, around ``body``
    (the variables as pandoc fills them)."""
    import re

    def fill(partial: str) -> str:
        text = (doc / "typst" / partial).read_text(encoding="utf-8")
        text = re.sub(r"\$if\((title)\)\$\n(.*?)\n\$endif\$", r"\2", text)  # keep the title
        text = text.replace("$title$", "Mini manuscript")
        text = re.sub(r"^\$.*\$\n", "", text, flags=re.M)  # drop the other conditionals
        return re.sub(r"^\s+\w[\w-]*: .*\$.*\n", "", text, flags=re.M)

    return fill("typst-template.typ") + "\n" + fill("typst-show.typ") + "\n" + body


def test_quarto_tables_get_the_project_table_rules(project, tmp_path):
    rows = ", ".join(f"[Trial {i:03d}], [{i}]" for i in range(1, 121))
    source = _quarto_shaped_typst(project / "doc", QUARTO_TABLE.replace("{rows}", rows))
    import typst

    target = tmp_path / "t.pdf"
    target.write_bytes(typst.compile(source.encode("utf-8"), ignore_system_fonts=True))
    text = _pdf_text(target)
    assert "Table 1. Characteristics of the trials." in " ".join(text.split())  # "Table 1.", not "Table 1:"
    assert "Trial 001" in text and "Trial 120" in text, "the table did not break across pages"
    assert "metabuild reproduction" in text  # the running head from the project's template
    assert "SYSTEMATIC REVIEW AND META-ANALYSIS" in text  # its title block


def test_workflow_quarto_path_stages_a_copy_and_writes_nothing_beside_the_document(project, tmp_path, monkeypatch):
    """render_document(engine="quarto") with a stand-in `quarto` that does what Quarto does to
    the folder it renders in (writes .quarto/, .gitignore and the output beside the document)
    and records its arguments: the document folder stays untouched."""
    log = tmp_path / "quarto-calls.txt"
    fake = tmp_path / "bin" / "quarto"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo 1.6.40; exit 0; fi\n'
        f'echo "$PWD $*" >> {log}\n'
        "mkdir -p .quarto && echo '/.quarto/' > .gitignore\n"
        'out=""; to=""; prev=""\n'
        'for a in "$@"; do case "$prev" in --output-dir) out="$a";; --to) to="$a";; esac; prev="$a"; done\n'
        'case "$to" in html) ext=html;; docx) ext=docx;; esac\n'
        'echo "<p>$(pwd)</p>" > "paper.$ext"; cp "paper.$ext" "$out/"\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    before = sorted(p.relative_to(project / "doc") for p in (project / "doc").rglob("*"))
    out = render.render_document(
        project / "doc" / "paper.qmd", project / "results" / "manuscript", ("html", "docx"), engine="auto"
    )
    after = sorted(p.relative_to(project / "doc") for p in (project / "doc").rglob("*"))
    assert before == after, "Quarto wrote into the document's folder"
    assert out["html"].is_file() and out["docx"].is_file()
    calls = log.read_text(encoding="utf-8").splitlines()
    assert len(calls) == 2 and all(str(project / "doc") not in c.split()[0] for c in calls)
    assert render.engine_info("auto") == {
        "engine": "quarto",
        "quarto": "1.6.40",
        "quarto_path": str(fake),
        **({"typst": render.engine_info("pandoc")["typst"]} if "typst" in render.engine_info("pandoc") else {}),
    }
    assert not list((project / "results" / "manuscript").glob("*.tmp")), "temporary folders left behind"


def test_an_old_quarto_is_refused_with_the_supported_range(project, tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "quarto"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 1.5.57\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    with pytest.raises(render.RenderError, match=r"Quarto 1\.5\.57 .* older than .* 1\.6"):
        render.render_document(project / "doc" / "paper.qmd", project / "out", ("html",), engine="quarto")
    assert not (project / "out").exists() or not list((project / "out").iterdir())
    # engine "auto" passes it over for the pandoc path, and says so
    assert render.engine_info("auto")["engine"] == "pandoc"
    out = render.render_document(project / "doc" / "paper.qmd", project / "out", ("html",), engine="auto")
    assert 'data-key="primary.estimate"' in out["html"].read_text(encoding="utf-8")


def test_panel_references_read_as_on_the_pandoc_path(project):
    """Quarto writes a reference to a panel as "Figure 4 (A)" (crossref/refs.lua, a Link of
    class quarto-xref); crossref.lua, after Quarto's rendering, makes it "Figure 4A"."""
    qmd = project / "doc" / "paper.qmd"
    qmd.write_text(
        "See [Figure\u00a04 (A)](#fig-adverse-nausea){.quarto-xref}, [Figure\u00a01](#fig-forest){.quarto-xref}"
        " and [Table\u00a02 (B)](#x) (a link of another kind).\n",
        encoding="utf-8",
    )
    proc = quarto_like(project, "html", filters=("crossref.lua",))
    assert proc.returncode == 0, proc.stderr
    text = re.sub(r"[ \n]+", " ", re.sub(r"<[^>]+>", "", proc.stdout))
    assert "See Figure\u00a04A, Figure\u00a01 and Table\u00a02 (B) (a link of another kind)." in text


# A figure with two panels as Quarto's Typst output calls it (customnodes/floatreftarget.lua):
# 1.6 passes subrefnumbering "1a", later releases do not; both pass subcapnumbering "(a)".
QUARTO_PANELS = """See @fig-one, @fig-adverse-nausea, @fig-adverse-headache and @fig-after.

#figure([#box(width: 40pt, height: 20pt, fill: gray)], caption: figure.caption(position: bottom, [One.]),
kind: "quarto-float-fig", supplement: "Figure")<fig-one>

#quarto_super(kind: "quarto-float-fig", caption: [Adverse effects.], label: <fig-adverse>, position: bottom,
supplement: "Figure", {options} subcapnumbering: "(a)", [
#grid(columns: 2, gutter: 2em,
  [#figure([#box(width: 40pt, height: 20pt, fill: red)], caption: figure.caption(position: bottom, [Nausea]),
   kind: "quarto-float-fig", supplement: "Figure")<fig-adverse-nausea>],
  [#figure([#box(width: 40pt, height: 20pt, fill: blue)], caption: figure.caption(position: bottom, [Headache]),
   kind: "quarto-float-fig", supplement: "Figure")<fig-adverse-headache>])
])

#figure([#box(width: 40pt, height: 20pt, fill: gray)], caption: figure.caption(position: bottom, [After.]),
kind: "quarto-float-fig", supplement: "Figure")<fig-after>
"""


@pytest.mark.parametrize("options", ['subrefnumbering: "1a",', ""], ids=["quarto-1.6", "quarto-1.7-on"])
def test_quarto_panels_are_labelled_as_on_the_pandoc_path(project, tmp_path, options):
    import typst

    source = _quarto_shaped_typst(project / "doc", QUARTO_PANELS.replace("{options}", options))
    target = tmp_path / "p.pdf"
    target.write_bytes(typst.compile(source.encode("utf-8"), ignore_system_fonts=True))
    text = " ".join(_pdf_text(target).split())
    assert "See Figure 1, Figure 2A, Figure 2B and Figure 3." in text  # not "Figure 2a"
    assert "A Nausea" in text and "B Headache" in text and "(a)" not in text
    assert "Figure 2. Adverse effects." in text and "Figure 3. After." in text  # panels are not figures
