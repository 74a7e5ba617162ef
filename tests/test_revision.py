"""The revision package (``python -m metabuild revision OLD NEW``).

Fast tests compare two small DOCX made by pandoc; the slow test builds a copy of the project at
two git commits that differ by one data cell (OLD once, NEW once) and checks the whole package:
accepting every tracked change gives NEW's clean DOCX, rejecting every one gives OLD's, every
cited changed number sits in a commented change, LibreOffice opens the tracked DOCX.

Accept and reject are written here over the raw ``w:ins``/``w:del`` markup (lxml), independent of
the comparer that made the revisions.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("python_redlines")
docx = pytest.importorskip("docx")
from lxml import etree  # noqa: E402  (python-docx brings lxml)

from metabuild.__main__ import main  # noqa: E402
from metabuild.audit import diff as audit_diff  # noqa: E402
from metabuild.audit import revision  # noqa: E402
from metabuild.audit.replay import copy_project  # noqa: E402
from metabuild.render import _pandoc_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
W = revision.W_NS
NS = {"w": W}


def q(tag: str) -> str:
    return f"{{{W}}}{tag}"


# ------------------------------------------------------------------------------------------------
# accept / reject over the raw markup


def _unwrap(element) -> None:
    parent = element.getparent()
    index = parent.index(element)
    for child in list(element):
        parent.insert(index, child)
        index += 1
    parent.remove(element)


def resolve(body, accept: bool) -> None:
    """Accept (or reject) every tracked change of ``body`` in place."""
    keep, drop = (("ins", "moveTo"), ("del", "moveFrom")) if accept else (("del", "moveFrom"), ("ins", "moveTo"))
    # a paragraph whose mark was dropped joins the next one
    for p in list(body.iter(q("p"))):
        marks = [p.find(f"w:pPr/w:rPr/w:{t}", NS) for t in drop]
        if any(m is not None for m in marks):
            nxt = p.getnext()
            if nxt is not None and nxt.tag == q("p"):
                for child in [c for c in p if c.tag != q("pPr")]:
                    nxt.insert(1 if nxt.find("w:pPr", NS) is not None else 0, child)
                p.getparent().remove(p)
    for tag in drop:
        for element in list(body.iter(q(tag))):
            if element.getparent() is not None and element.getparent().tag != q("rPr"):
                element.getparent().remove(element)
    for tag in keep:
        for element in list(body.iter(q(tag))):
            if element.getparent() is not None and element.getparent().tag != q("rPr"):
                _unwrap(element)
    for text in list(body.iter(q("delText"))):
        text.tag = q("t")
    for change in ("rPrChange", "pPrChange", "sectPrChange", "tblPrChange", "trPrChange", "tcPrChange"):
        for element in list(body.iter(q(change))):
            element.getparent().remove(element)


def paragraphs(body) -> list[str]:
    """Non-empty paragraph texts of a body without tracked changes."""
    out = []
    for p in body.iter(q("p")):
        text = "".join(t.text or "" for t in p.iter(q("t")))
        if text.strip():
            out.append(text)
    return out


def body_of(path: Path):
    return docx.Document(str(path)).element.body


def resolved(path: Path, accept: bool) -> list[str]:
    body = copy.deepcopy(body_of(path))
    resolve(body, accept)
    assert body.find(".//w:ins", NS) is None and body.find(".//w:del", NS) is None
    return paragraphs(body)


def comments_of(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        if "word/comments.xml" not in z.namelist():
            return []
        root = etree.fromstring(z.read("word/comments.xml"))
    return ["\n".join("".join(t.text or "" for t in p.iter(q("t"))) for p in c.iter(q("p"))) for c in root]


# ------------------------------------------------------------------------------------------------
# small documents

OLD_MD = """# Results

Ketamine lowered pain (mean difference −1.83 points; CI −2.35 to −1.31) in 12.5% more patients.

Trials were pooled with a random-effects model.

| Outcome | Effect |
|---|---|
| Pain | −1.83 |

A note[with a comment]{.comment-start id="0" author="x" date="2026-01-01T00:00:00Z"}[]{.comment-end id="0"}.
"""

NEW_MD = (
    OLD_MD.replace("−1.83", "−1.82")
    .replace("−1.31", "−1.29")
    .replace("a random-effects", "the DerSimonian–Laird random-effects")
)

CAUSE = "pain_scores.csv [study_id=s1, arm=ketamine, timepoint=1 wk] mean: 4.70 → 4.90"
NUMBERS = [
    {"key": "primary.estimate", "old": "−1.83", "new": "−1.82", "causes": [CAUSE], "manuscript": []},
    {"key": "primary.ci_upper", "old": "−1.31", "new": "−1.29", "causes": [CAUSE], "manuscript": []},
    {"key": "adjunct.estimate", "old": "−1.83", "new": "−1.82", "causes": [CAUSE], "manuscript": []},
    {"key": "other.share", "old": "2", "new": "3", "causes": ["config x: 1 → 2"], "manuscript": []},
]


def _docx(markdown: str, path: Path) -> Path:
    subprocess.run([_pandoc_path(), "-f", "markdown", "-o", str(path)], input=markdown, text=True, check=True)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("small")
    old, new = _docx(OLD_MD, d / "old.docx"), _docx(NEW_MD, d / "new.docx")
    assert comments_of(old), "pandoc should have written the comment"
    old_clean, new_clean = d / "old.clean.docx", d / "new.clean.docx"
    assert revision.strip_comments(old, old_clean) == 1
    revision.strip_comments(new, new_clean)
    tracked = d / "tracked.docx"
    changes = revision.annotate(
        revision.redline(old_clean, new_clean), tracked, {"numbers": NUMBERS}, {"primary.estimate", "primary.ci_upper"}
    )
    return {"old": old_clean, "new": new_clean, "tracked": tracked, "changes": changes}


def test_strip_comments_removes_marks_references_and_part(small):
    assert comments_of(small["old"]) == []
    xml = etree.tostring(body_of(small["old"])).decode()
    assert "commentRangeStart" not in xml and "commentReference" not in xml
    assert "A note" in " ".join(paragraphs(body_of(small["old"])))


def test_accept_all_gives_new_and_reject_all_gives_old(small):
    tracked = small["tracked"]
    assert body_of(tracked).find(".//w:ins", NS) is not None
    assert resolved(tracked, accept=True) == paragraphs(body_of(small["new"]))
    assert resolved(tracked, accept=False) == paragraphs(body_of(small["old"]))
    assert resolved(tracked, accept=True) != resolved(tracked, accept=False)


def test_every_number_change_has_one_comment_with_its_cause(small):
    changes = small["changes"]
    numbered = [c for c in changes if c.keys]
    # the estimate in the text and in the table, and the CI bound; the cited key wins over the
    # uncited one printing the same text; "2" is no token of "12.5%"
    assert sorted(tuple(c.keys) for c in numbered) == [
        ("primary.ci_upper",),
        ("primary.estimate",),
        ("primary.estimate",),
    ]
    assert all("other.share" not in c.keys for c in changes)
    comments = comments_of(small["tracked"])
    assert len(comments) == len(numbered) == 3
    assert all(f"Cause: {CAUSE}" in c for c in comments)
    assert any(c.startswith("−1.83 → −1.82: primary.estimate") for c in comments)
    # the wording change is a text change, without a comment
    texts = revision.text_changes(changes)
    assert texts and all(not c.keys for c in changes if c not in numbered)
    assert any("DerSimonian" in t["new"] for t in texts)
    # comment marks stand outside the revisions
    body = body_of(small["tracked"])
    for mark in body.iter(q("commentRangeStart"), q("commentRangeEnd"), q("commentReference")):
        assert not any(a.tag in (q("ins"), q("del")) for a in mark.iterancestors())


def test_token_match_needs_whole_numbers():
    assert revision._overlaps("of 12.5% and 2 more", "2", (13, 14))
    assert not revision._overlaps("of 12.5% and 3 more", "2", (3, 7))
    assert not revision._overlaps("value 2.5", "2", (6, 9))


def test_markdown_escape_keeps_data_text_literal():
    text = "a <b>bold</b> *claim* [link](x) `code` | pipe _u_ #h $m$ @cite"
    plain = subprocess.run(
        [_pandoc_path(), "-f", "markdown", "-t", "plain", "--wrap=none"],
        input=revision.md(text),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert plain == text


def test_locations_are_grouped_by_file():
    where = ["manuscript/paper.qmd:292", "manuscript/supplement.qmd:4", "manuscript/paper.qmd:27"]
    assert revision.locations(where) == "paper.qmd:27, 292; supplement.qmd:4"
    assert revision.locations(["paper.docx, table 3, row 2"]) == "paper.docx, table 3, row 2"


def test_clean_docx_prefers_the_submission_build(tmp_path: Path):
    (tmp_path / "manuscript").mkdir()
    (tmp_path / "manuscript" / "paper.docx").write_bytes(b"m")
    assert revision.clean_docx(tmp_path, "paper") == tmp_path / "manuscript" / "paper.docx"
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "paper.docx").write_bytes(b"s")
    assert revision.clean_docx(tmp_path, "paper") == tmp_path / "submission" / "paper.docx"
    with pytest.raises(revision.AuditError, match="supplement.docx"):
        revision.clean_docx(tmp_path, "supplement")


# ------------------------------------------------------------------------------------------------
# the whole package between two commits (slow: builds the project twice)


def set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Change one cell of a CSV, leaving every other line byte for byte as it was."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    cells = next(csv.reader([lines[row - 1]]))
    cells[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lines[row - 1][len(lines[row - 1].rstrip("\r\n")) :]).writerow(cells)
    lines[row - 1] = buffer.getvalue()
    path.write_text("".join(lines), encoding="utf-8")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.mark.slow
def test_revision_package_of_a_one_cell_data_fix(tmp_path: Path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    copy_project(REPO, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "submitted")
    workdir = tmp_path / "builds"
    old_root = audit_diff.build_revision(repo, "HEAD", workdir)  # OLD, built once

    primary = json.loads((old_root / "results" / "analyses" / "primary.json").read_text(encoding="utf-8"))
    row = primary["provenance"]["data_rows"]["pain_scores.csv"][2]
    path = repo / "data" / "pain_scores.csv"
    record = pd.read_csv(path, dtype=str, keep_default_na=False).iloc[row - 2]
    new_mean = f"{float(record['mean']) + 0.2:.2f}"
    set_cell(path, row, "mean", new_mean)
    _git(repo, "commit", "-qam", "one-cell data fix")

    out = tmp_path / "package"
    monkeypatch.chdir(repo)
    assert main(["revision", "HEAD~1", "HEAD", "--workdir", str(workdir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert names == {
        "paper.tracked.docx",
        "paper.visual-diff.html",
        "paper.visual-diff.pdf",
        "response.md",
        "response.docx",
        "revision.json",
    }
    result = json.loads((out / "revision.json").read_text(encoding="utf-8"))
    s = result["summary"]
    new_root = workdir / _git(repo, "rev-parse", "HEAD")[:12]

    # accept-all gives the new clean DOCX's text, reject-all the old one's
    clean = {}
    for side, root in (("old", old_root), ("new", new_root)):
        clean[side] = tmp_path / f"{side}.docx"
        revision.strip_comments(revision.clean_docx(root / "results", "paper"), clean[side])
    tracked = out / "paper.tracked.docx"
    assert resolved(tracked, accept=True) == paragraphs(body_of(clean["new"]))
    assert resolved(tracked, accept=False) == paragraphs(body_of(clean["old"]))

    # every cited changed number is in a commented change, with the one cell as its cause
    cause = (
        f"pain_scores.csv [study_id={record['study_id']}, arm={record['arm']}, "
        f"timepoint={record['timepoint']}] mean: {record['mean']} → {new_mean}"
    )
    assert s["cited_changed"] > 0
    assert s["cited_changed_in_docx"] == s["cited_changed"]
    assert len(comments_of(tracked)) == s["changes_with_number"] > 0
    assert all(f"Cause: {cause}" in c for c in comments_of(tracked))
    assert s["revisions"] >= 2 * s["changes_with_number"]
    assert [g["causes"] for g in result["groups"]] == [[cause]]
    assert f"{s['revisions']} tracked revisions" in printed

    # the letter: the cause, then its numbers with location and old -> new; room for tags
    letter = (out / "response.md").read_text(encoding="utf-8")
    assert revision.md(cause) in letter and "\\[R" in letter
    primary_row = next(n for n in result["groups"][0]["numbers"] if n["key"] == "primary.estimate")
    assert f"| primary.estimate | {revision.md(revision.locations(primary_row['where']))} |" in letter
    assert primary_row["where"][0].startswith("manuscript/paper.qmd:")
    assert zipfile.ZipFile(out / "response.docx").testzip() is None

    # the visual diff marks the change both ways
    page = (out / "paper.visual-diff.html").read_text(encoding="utf-8")
    assert 'class="insertion"' in page and 'class="deletion"' in page
    assert (out / "paper.visual-diff.pdf").read_bytes().startswith(b"%PDF")

    # LibreOffice opens the tracked DOCX without error
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) not installed: setup.sh installs libreoffice-writer")
    converted = subprocess.run(
        [soffice, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path / "lo"), str(tracked)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert converted.returncode == 0, converted.stderr
    assert (tmp_path / "lo" / "paper.tracked.pdf").read_bytes().startswith(b"%PDF")
