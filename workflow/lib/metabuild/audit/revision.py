"""``metabuild revision OLD NEW``: the revision package a journal asks for.

OLD and NEW are two git revisions of the project or two build folders (as for ``metabuild
diff``, whose comparison and cause attribution this command reuses). Written to --out:

* ``<document>.tracked.docx`` - NEW's clean DOCX with Word tracked changes (``w:ins``/``w:del``)
  against OLD's clean DOCX; every tracked change that replaces a changed registry number carries
  a Word comment naming the number and its cause (data cells, configuration entries, code);
* ``<document>.visual-diff.html`` and ``.pdf`` - the same changes marked up for reading;
* ``response.md`` and ``response.docx`` - a response-to-reviewers skeleton: every changed printed
  number grouped by cause, then the text changes, each with room for a reviewer tag ([R2.3]);
* ``revision.json`` - the counts and groups behind the letter.

The clean DOCX is the submission build (``results/submission/<document>.docx``) when the build
has one, else the manuscript build with its Word comments removed (see :func:`clean_docx`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metabuild.audit import diff as audit_diff
from metabuild.audit.common import _SPAN, AuditError, Project, short

HELP = "revision package: tracked-changes DOCX, visual diff and response-to-reviewers skeleton"

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
#: revision elements whose content is new text (accept keeps it) / old text (reject keeps it)
INSERTED = ("ins", "moveTo")
DELETED = ("del", "moveFrom")
AUTHOR = "metabuild"
#: a changed number matches printed text only as a whole token (so "2" never matches in "12.5")
_TOKEN = r"(?<![\w.]){}(?![\w]|[.,]\d)"


def w(tag: str) -> str:
    return f"{{{W_NS}}}{tag}"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("old", help="old build folder or git revision (the submitted version)")
    parser.add_argument("new", help="new build folder or git revision (the revised version)")
    parser.add_argument("--document", default="paper", help="document to mark up (default: paper)")
    parser.add_argument("--out", default=None, help="output folder (default: results/revision)")
    parser.add_argument(
        "--workdir",
        default=None,
        help="where revisions are exported and built (default: .snakemake/metabuild/builds; reused)",
    )
    parser.add_argument("--cores", default="2", help="Snakemake --cores for revision builds (default 2)")
    return parser


# ------------------------------------------------------------------------------------------------
# the clean documents


def clean_docx(results: Path, document: str) -> Path:
    """The DOCX a journal receives: the submission build (no comments, no number links, no
    appendix) when present, else the manuscript build, whose Word comments
    :func:`strip_comments` removes before the comparison."""
    for folder in ("submission", "manuscript"):
        path = Path(results) / folder / f"{document}.docx"
        if path.is_file():
            return path
    raise AuditError(f"no {document}.docx in {results}/submission nor {results}/manuscript: build the documents")


def strip_comments(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` without Word comments (range marks, references and the comments
    part); returns the number of comments removed. A no-op copy for a submission DOCX."""
    import docx

    document = docx.Document(str(src))
    body = document.element.body
    marks = body.xpath(".//w:commentRangeStart | .//w:commentRangeEnd")
    removed = len(marks) // 2
    for element in marks:
        element.getparent().remove(element)
    for ref in body.xpath(".//w:commentReference"):
        run = ref.getparent()
        # a reference run holds the reference and at most its run properties
        if all(child.tag in (w("rPr"), w("commentReference")) for child in run):
            run.getparent().remove(run)
        else:
            run.remove(ref)
    for rid, rel in list(document.part.rels.items()):
        if "comments" in rel.reltype.rsplit("/", 1)[-1].lower():
            document.part.drop_rel(rid)
    document.save(str(dst))
    return removed


def redline(old_docx: Path, new_docx: Path, author: str = AUTHOR, date: str | None = None) -> bytes:
    """NEW with Word tracked changes against OLD, by the Docxodus comparer (python-redlines).

    python-redlines was chosen over docx-trackdiff and docx-revisions: it is maintained (five
    releases), its Docxodus engine is the maintained successor of Open-XML-PowerTools'
    WmlComparer, and its companion wheel (python-redlines-docxodus) ships the self-contained
    .NET binary, so it installs from PyPI and runs offline without a .NET runtime.
    docx-trackdiff (pure Python, one release by one author) also passed our accept/reject
    check; docx-revisions only writes single revisions and has no comparer."""
    try:
        from python_redlines.engines import DocxodusEngine
    except ImportError as exc:
        raise AuditError("python-redlines is not installed: pip install -r requirements.txt") from exc
    stamp = date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        output, _stdout, _stderr = DocxodusEngine().run_redline(author, old_docx, new_docx, date_time=stamp)
    except subprocess.CalledProcessError as exc:
        raise AuditError(f"the DOCX comparison of {old_docx} and {new_docx} failed: {exc}") from exc
    return output


# ------------------------------------------------------------------------------------------------
# tracked changes and the numbers they replace


@dataclass
class Change:
    """Consecutive tracked revisions in one paragraph (a replacement is a deletion and an
    insertion side by side), with the paragraph's text before and after."""

    paragraph: Any
    elements: list[Any] = field(default_factory=list)
    old_span: tuple[int, int] | None = None
    new_span: tuple[int, int] | None = None
    old_view: str = ""
    new_view: str = ""
    where: str = ""
    keys: list[str] = field(default_factory=list)

    @property
    def old_text(self) -> str:
        return self.old_view[self.old_span[0] : self.old_span[1]] if self.old_span else ""

    @property
    def new_text(self) -> str:
        return self.new_view[self.new_span[0] : self.new_span[1]] if self.new_span else ""


def _revision_of(run: Any, paragraph: Any) -> Any | None:
    node = run.getparent()
    while node is not None and node is not paragraph:
        if node.tag in {w(t) for t in INSERTED + DELETED}:
            return node
        node = node.getparent()
    return None


def _run_text(run: Any) -> str:
    parts = []
    for child in run:
        if child.tag in (w("t"), w("delText")):
            parts.append(child.text or "")
        elif child.tag == w("tab"):
            parts.append("\t")
    return "".join(parts)


def _locations(body: Any) -> dict[Any, str]:
    """paragraph element -> "paragraph 12" / "table 2, row 3" (counted in the document body)."""
    out: dict[Any, str] = {}
    n_par = n_tab = 0
    for block in body:
        if block.tag == w("p"):
            n_par += 1
            out[block] = f"paragraph {n_par}"
        elif block.tag == w("tbl"):
            n_tab += 1
            for r, row in enumerate(block.iter(w("tr")), start=1):
                for p in row.iter(w("p")):
                    out[p] = f"table {n_tab}, row {r}"
    return out


def tracked_changes(body: Any) -> list[Change]:
    """Every group of adjacent tracked revisions in the document body, in reading order."""
    changes: list[Change] = []
    where = _locations(body)
    for paragraph in body.iter(w("p")):
        old_view, new_view = [], []
        o_len = n_len = 0
        current: Change | None = None
        groups: list[Change] = []
        for run in paragraph.iter(w("r")):
            if next(run.iterancestors(w("p"))) is not paragraph:
                continue  # a text box's paragraph inside a run: visited on its own
            text = _run_text(run)
            rev = _revision_of(run, paragraph)
            if rev is None:
                if text:
                    current = None
                old_view.append(text)
                new_view.append(text)
                o_len += len(text)
                n_len += len(text)
                continue
            if current is None:
                current = Change(paragraph=paragraph, where=where.get(paragraph, ""))
                groups.append(current)
            if not current.elements or current.elements[-1] is not rev:
                current.elements.append(rev)
            if rev.tag in {w(t) for t in DELETED}:
                start = current.old_span[0] if current.old_span else o_len
                old_view.append(text)
                o_len += len(text)
                current.old_span = (start, o_len)
            else:
                start = current.new_span[0] if current.new_span else n_len
                new_view.append(text)
                n_len += len(text)
                current.new_span = (start, n_len)
        for change in groups:
            change.old_view, change.new_view = "".join(old_view), "".join(new_view)
            changes.append(change)
    return changes


def _overlaps(view: str, text: str, span: tuple[int, int] | None) -> bool:
    if not text or span is None:
        return False
    for m in re.finditer(_TOKEN.format(re.escape(text)), view):
        if m.start() < span[1] and span[0] < m.end():
            return True
    return False


def match_numbers(changes: Iterable[Change], numbers: Iterable[Mapping[str, Any]], cited: Iterable[str] = ()) -> None:
    """Set ``change.keys``: the changed numbers (``diff.compare`` rows) whose old printed text
    the change deletes and whose new printed text it inserts, as whole tokens. A number only
    added or only removed needs its one side. When a cited number matches, uncited numbers that
    happen to print the same text are dropped; otherwise they stay (tables print registry
    numbers without a ``.num`` span)."""
    cited = set(cited)
    rows = [n for n in numbers if (n.get("old") or n.get("new")) and n.get("old") != n.get("new")]
    for change in changes:
        for n in rows:
            old, new = str(n.get("old") or ""), str(n.get("new") or "")
            hit_old = _overlaps(change.old_view, old, change.old_span)
            hit_new = _overlaps(change.new_view, new, change.new_span)
            if (old and new and hit_old and hit_new) or (not old and hit_new) or (not new and hit_old):
                change.keys.append(n["key"])
        if any(k in cited for k in change.keys):
            change.keys = [k for k in change.keys if k in cited]


def comment_text(change: Change, by_key: Mapping[str, Mapping[str, Any]], cited: set[str]) -> str:
    keys = sorted(change.keys, key=lambda k: (k not in cited, k))
    first = by_key[keys[0]]
    causes = list(dict.fromkeys(c for k in keys for c in by_key[k]["causes"]))
    lines = [f"{first['old'] or '(none)'} → {first['new'] or '(none)'}: " + ", ".join(keys)]
    lines += [f"Cause: {c}" for c in causes]
    return "\n".join(lines)


def annotate(docx_bytes: bytes, dst: Path, report: Mapping[str, Any], cited: set[str]) -> list[Change]:
    """Write the tracked-changes DOCX ``dst`` with a comment on every change that replaces a
    changed number; returns the changes (with the keys each replaces)."""
    import io

    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document(io.BytesIO(docx_bytes))
    body = document.element.body
    changes = tracked_changes(body)
    match_numbers(changes, report["numbers"], cited)
    by_key = {n["key"]: n for n in report["numbers"]}
    for change in changes:
        if not change.keys:
            continue
        comment = document.comments.add_comment(text=comment_text(change, by_key, cited), author=AUTHOR, initials="mb")
        cid = str(comment.comment_id)
        start, end = OxmlElement("w:commentRangeStart"), OxmlElement("w:commentRangeEnd")
        start.set(qn("w:id"), cid)
        end.set(qn("w:id"), cid)
        ref_run, ref = OxmlElement("w:r"), OxmlElement("w:commentReference")
        ref.set(qn("w:id"), cid)
        ref_run.append(ref)
        # the marks stand outside the revisions, so accepting or rejecting keeps the comment
        change.elements[0].addprevious(start)
        change.elements[-1].addnext(end)
        end.addnext(ref_run)
    document.save(str(dst))
    return changes


# ------------------------------------------------------------------------------------------------
# the visual diff (pandoc reads the tracked changes and comments of the DOCX)

_LUA = r"""
-- pass 1 takes each comment's text from where it starts; pass 2 prints it where it ends, so
-- the note follows the change it explains
local notes = {}
local function raw(s) return pandoc.RawInline('typst', s) end
local collect = {
  Span = function(el)
    if el.classes:includes('comment-start') then
      notes[el.attributes.id] = el.content
      return {}
    end
  end,
}
local mark = {
  Image = function(img)
    local alt = pandoc.utils.stringify(img.caption)
    return pandoc.Emph({pandoc.Str('[Figure' .. (alt ~= '' and (': ' .. alt) or '') .. ']')})
  end,
  Link = function(el)
    -- links inside the document point at bookmarks Typst may not have as labels
    if FORMAT == 'typst' and el.target:sub(1, 1) == '#' then return el.content end
  end,
  Span = function(el)
    local c = el.classes
    if c:includes('comment-end') then
      local note = notes[el.attributes.id]
      if note == nil then return {} end
      if FORMAT == 'typst' then
        return {raw('#text(size: 0.75em, fill: rgb("#5a4a00"))[ \\['), pandoc.Span(note), raw('\\]]')}
      end
      return pandoc.Span(note, {class = 'note'})
    end
    if FORMAT ~= 'typst' then return nil end
    if c:includes('insertion') then
      return {raw('#text(fill: rgb("#0a6b2e"))[#underline['), el, raw(']]')}
    elseif c:includes('deletion') then
      return {raw('#text(fill: rgb("#b00020"))[#strike['), el, raw(']]')}
    end
  end,
}
return {collect, mark}
"""

_CSS = """body{font-family:Georgia,serif;max-width:48rem;margin:2rem auto;line-height:1.5;padding:0 1rem}
.insertion{color:#0a6b2e;background:#e3f5e8;text-decoration:underline}
.deletion{color:#b00020;background:#fbe4e7;text-decoration:line-through}
.note{font:0.8em system-ui,sans-serif;background:#fff6c8;border:1px solid #e0c860;padding:0 .25em;
margin:0 .2em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.15rem .35rem}
.legend{font:0.9em system-ui,sans-serif;border:1px solid #ccc;padding:.5rem;margin-bottom:1.5rem}"""


def _pandoc(*args: str, stdin: str | None = None) -> str:
    from metabuild.render import _pandoc_path

    result = subprocess.run([_pandoc_path(), *args], input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise AuditError(f"pandoc {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def visual_diff(tracked: Path, html_out: Path, pdf_out: Path, title: str, work: Path) -> None:
    """HTML and PDF of the tracked-changes DOCX: insertions underlined in green, deletions
    struck through in red, the number comments inline (pandoc --track-changes=all; Typst PDF)."""
    import html

    import typst

    lua = work / "revision-marks.lua"
    lua.write_text(_LUA, encoding="utf-8")
    common = ["--track-changes=all", "--lua-filter", str(lua), "-f", "docx", str(tracked)]
    fragment = _pandoc(*common, "-t", "html5")
    legend = (
        "<p class='legend'>Changes from the submitted to the revised version: "
        "<span class='insertion'>inserted</span>, <span class='deletion'>deleted</span>, "
        "<span class='note'>why a number changed</span>.</p>"
    )
    html_out.write_text(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{legend}{fragment}</body></html>\n",
        encoding="utf-8",
    )
    meta = work / "meta.json"
    meta.write_text(json.dumps({"title": title}), encoding="utf-8")
    source = _pandoc(*common, "-t", "typst", "-s", "--metadata-file", str(meta))
    try:
        pdf_out.write_bytes(typst.compile(source.encode("utf-8"), root=str(work)))
    except Exception as exc:  # typst.TypstError and friends
        raise AuditError(f"typst failed to compile the visual diff of {tracked}:\n{exc}") from exc


# ------------------------------------------------------------------------------------------------
# the response letter


def cited_keys(project: Project, documents: Iterable[str] | None = None) -> dict[str, list[str]]:
    """key -> manuscript locations of every ``[key]{.num}`` span of the documents, and of the
    spans inside the checked claims (results/checks/<document>.claims.json)."""
    uses = {k: list(v) for k, v in project.uses.items()}
    for path in sorted((project.results / "checks").glob("*.claims.json")):
        if documents is not None and path.name.removesuffix(".claims.json") not in documents:
            continue
        for claim in json.loads(path.read_text(encoding="utf-8")).get("claims", []):
            for m in _SPAN.finditer(claim.get("text") or ""):
                if ".num" in m.group(2).split():
                    where = f"{claim.get('path')}:{claim.get('line')}"
                    if where not in uses.setdefault(m.group(1).strip(), []):
                        uses[m.group(1).strip()].append(where)
    return uses


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~^$@])")


def md(text: Any) -> str:
    """Text from data as literal Markdown text (pandoc's backslash escapes)."""
    return _MD_SPECIAL.sub(r"\\\1", "" if text is None else str(text)).replace("\n", " ")


def _kind(cause: str) -> str:
    for prefix, kind in (("config ", "configuration entry"), ("code ", "code"), ("software ", "software")):
        if cause.startswith(prefix):
            return kind
    return "no recorded upstream change" if cause.startswith("no recorded") else "data"


def letter_groups(
    report: Mapping[str, Any], cited: Mapping[str, list[str]], changes: list[Change], document: str
) -> list[dict[str, Any]]:
    """Changed printed numbers grouped by their causes: cited numbers (with their manuscript
    locations) and numbers a tracked change of the DOCX replaces (tables)."""
    in_docx: dict[str, list[str]] = {}
    for change in changes:
        for key in change.keys:
            in_docx.setdefault(key, []).append(f"{document}.docx, {change.where}")
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for n in report["numbers"]:
        where = cited.get(n["key"], []) or list(dict.fromkeys(in_docx.get(n["key"], [])))
        if not where:
            continue
        causes = tuple(n["causes"])
        group = groups.setdefault(causes, {"causes": list(causes), "numbers": []})
        group["numbers"].append({**n, "where": where, "cited": n["key"] in cited})
    ordered = sorted(groups.values(), key=lambda g: -len(g["numbers"]))
    for g in ordered:
        g["numbers"].sort(key=lambda n: (not n["cited"], _line_key(n["where"][0])))
    return ordered


def locations(where: Iterable[str]) -> str:
    """ "manuscript/paper.qmd:292", "manuscript/paper.qmd:27" -> "paper.qmd:27, 292"."""
    lines: dict[str, list[str]] = {}
    for w_ in where:
        path, _, line = w_.rpartition(":")
        if not line.isdigit():
            path, line = w_, ""
        lines.setdefault(Path(path).name if line else path, []).append(line)
    return "; ".join(
        f"{p}:{', '.join(sorted(dict.fromkeys(ls), key=int))}" if all(ls) else p for p, ls in lines.items()
    )


def _line_key(where: str) -> tuple[str, int]:
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() else (where, 0)


def text_changes(changes: list[Change]) -> list[dict[str, str]]:
    """Tracked changes that replace no changed number, with a little context (a replaced
    figure is one too: its picture sits in the deleted and the inserted run)."""
    out = []
    for change in changes:
        if change.keys:
            continue
        span = change.new_span or change.old_span or (0, 0)
        view = change.new_view if change.new_span else change.old_view
        context = view[max(0, span[0] - 40) : span[1] + 40].strip()
        figure = ""
        for element in change.elements:
            for pr in element.iter("{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}docPr"):
                figure = figure or short(pr.get("descr") or pr.get("name") or "a figure", 80)
        out.append(
            {
                "where": change.where,
                "old": change.old_text,
                "new": change.new_text,
                "context": context,
                "figure": figure,
            }
        )
    return out


def response_markdown(
    summary: Mapping[str, Any], groups: list[dict[str, Any]], texts: list[dict[str, str]], uncited: int
) -> str:
    out = [
        "# Response to the reviewers",
        "",
        f"Manuscript: {md(summary['document'])}. Submitted version: {md(summary['old'])}; "
        f"revised version: {md(summary['new'])}.",
        "",
        "Reviewer comments are quoted before each change; tag each change with the comment it "
        "answers, e.g. \\[R2.3\\]. Locations of cited numbers are lines of the manuscript source; "
        f"the tracked-changes document `{md(summary['tracked'])}` carries a comment on every "
        "changed number.",
        "",
        f"## Changed numbers ({summary['printed_changed']} number(s), {len(groups)} cause(s))",
        "",
    ]
    if not groups:
        out += ["No printed number changed.", ""]
    for i, g in enumerate(groups, start=1):
        out += [f"### Change {i}", "", "Reviewer: \\[R\\_.\\_\\] (quote the comment)", "", "Response: ", ""]
        out += ["Cause:", ""]
        out += [f"- {_kind(c)}: {md(c)}" for c in g["causes"]]
        out += ["", f"Numbers ({len(g['numbers'])}):", ""]
        out += ["| Number | Location | Before | After |", "|---|---|---|---|"]
        for n in g["numbers"]:
            out.append(
                f"| {md(n['key'])} | {md(locations(n['where']))} | {md(n['old'] or '—')} | {md(n['new'] or '—')} |"
            )
        out.append("")
    out += [f"## Text changes ({len(texts)})", ""]
    if not texts:
        out += ["No other tracked change.", ""]
    for i, t in enumerate(texts, start=1):
        what = [f"deleted «{md(t['old'])}»" if t["old"] else "", f"inserted «{md(t['new'])}»" if t["new"] else ""]
        what.append(f"figure replaced: «{md(t['figure'])}»" if t.get("figure") else "")
        context = f" (in «…{md(t['context'])}…»)" if t["context"] else ""
        out += [f"{i}. \\[R\\_.\\_\\] {md(t['where'])}: {', '.join(x for x in what if x)}{context}", ""]
    if uncited:
        out += [
            f"{uncited} further registry number(s) changed that the documents do not print "
            "(see `python -m metabuild diff`).",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------
# the command


def _label(project: Project, spec: str | None) -> str:
    where = project.root.name if project.root else str(project.results)
    return where if spec is None or spec == where else f"{spec} ({where})"


def package(
    old: Project, new: Project, out: Path, document: str = "paper", labels: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Write the revision package of ``document`` to ``out`` (all files, or none on error);
    ``labels`` name OLD and NEW in the letter (the revisions as given on the command line)."""
    report = audit_diff.compare(old, new)
    cited = cited_keys(new) or {}
    for key, where in cited_keys(old).items():
        cited.setdefault(key, where)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".revision-", dir=out.parent))
    try:
        old_clean, new_clean = work / f"{document}.old.docx", work / f"{document}.new.docx"
        strip_comments(clean_docx(old.results, document), old_clean)
        strip_comments(clean_docx(new.results, document), new_clean)
        stage = work / "package"
        stage.mkdir()
        tracked = stage / f"{document}.tracked.docx"
        changes = annotate(redline(old_clean, new_clean), tracked, report, set(cited))
        groups = letter_groups(report, cited, changes, document)
        texts = text_changes(changes)
        printed = {n["key"] for g in groups for n in g["numbers"]}
        summary = {
            "document": document,
            "old": _label(old, labels[0] if labels else None),
            "new": _label(new, labels[1] if labels else None),
            "old_docx": str(clean_docx(old.results, document)),
            "new_docx": str(clean_docx(new.results, document)),
            "tracked": tracked.name,
            "revisions": sum(len(c.elements) for c in changes),
            "changes": len(changes),
            "changes_with_number": sum(1 for c in changes if c.keys),
            "changed_numbers": len(report["numbers"]),
            "printed_changed": len(printed),
            "cited_changed": sum(1 for n in report["numbers"] if n["key"] in cited),
            "cited_changed_in_docx": len(printed & {k for c in changes for k in c.keys} & set(cited)),
            "text_changes": len(texts),
        }
        visual_diff(
            tracked,
            stage / f"{document}.visual-diff.html",
            stage / f"{document}.visual-diff.pdf",
            f"{document}: changes since the submitted version",
            work,
        )
        letter = response_markdown(summary, groups, texts, len(report["numbers"]) - len(printed))
        (stage / "response.md").write_text(letter, encoding="utf-8")
        _pandoc("-f", "markdown", "-t", "docx", "-o", str(stage / "response.docx"), stdin=letter)
        (stage / "revision.json").write_text(
            json.dumps({"summary": summary, "groups": groups, "text_changes": texts}, indent=1, ensure_ascii=False)
            + "\n",
            encoding="utf-8",
        )
        out.mkdir(parents=True, exist_ok=True)
        for f in stage.iterdir():
            os.replace(f, out / f.name)
        return {"summary": summary, "groups": groups, "text_changes": texts}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or ".snakemake/metabuild/builds").resolve()
    old = audit_diff.open_side(args.old, workdir, args.cores)
    new = audit_diff.open_side(args.new, workdir, args.cores)
    out = Path(args.out) if args.out else Path("results") / "revision"
    result = package(old, new, out, args.document, (args.old, args.new))
    s = result["summary"]
    print(
        f"{s['revisions']} tracked revisions in {s['changes']} changes "
        f"({s['changes_with_number']} replace a changed number, {s['text_changes']} text changes); "
        f"{s['printed_changed']} changed printed numbers ({s['cited_changed']} cited, "
        f"{s['cited_changed_in_docx']} of them found in {s['document']}.docx) "
        f"in {len(result['groups'])} cause group(s); "
        f"{s['changed_numbers']} registry numbers changed in all"
    )
    print(f"written to {out}: " + ", ".join(sorted(p.name for p in out.iterdir())), file=sys.stderr)
    return 0


__all__ = ["clean_docx", "strip_comments", "redline", "tracked_changes", "match_numbers", "package"]
