"""The registry's normal form (metabuild.registry): each job's provenance stored once as an
activity, numbers referring to it by id, data rows as ranges; read only through read_registry."""

from __future__ import annotations

import html
import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from metabuild.__main__ import main
from metabuild.registry import (
    SCHEMA,
    RegistryError,
    build_registry,
    decode_rows,
    encode_rows,
    read_registry,
)

# ------------------------------------------------------------------------------------------------
# data rows as ranges


@pytest.mark.parametrize(
    ("rows", "text"),
    [
        ([], ""),
        ([7], "7"),
        ([2, 3, 4], "2-4"),
        ([2, 4], "2,4"),
        ([2, 3, 4, 7, 9, 10], "2-4,7,9-10"),
        ([0, 1, 3, 100000, 100001], "0-1,3,100000-100001"),
    ],
)
def test_rows_encode_as_ranges(rows, text):
    assert encode_rows(rows) == text
    assert decode_rows(text) == rows


def test_ranges_give_back_every_row_exactly():
    rng = random.Random(14)
    for _ in range(500):
        rows = sorted(rng.sample(range(2, 400), rng.randint(0, 150)))
        assert decode_rows(encode_rows(rows)) == rows


@pytest.mark.parametrize("rows", [[3, 2], [2, 2], [5, 7, 6]])
def test_rows_a_range_cannot_hold_are_refused(rows):
    with pytest.raises(ValueError, match="strictly increasing"):
        encode_rows(rows)


@pytest.mark.parametrize("text", ["5-3", "3,2", "2-4,4", "a", "2-", "1,,2", "-1"])
def test_malformed_ranges_are_refused(text):
    with pytest.raises(ValueError):
        decode_rows(text)


# ------------------------------------------------------------------------------------------------
# a small registry


def _small(tmp_path: Path) -> Path:
    prov = {
        "rule": "run_analysis",
        "job": "run_analysis[analysis=x]",
        "wildcards": {"analysis": "x"},
        "script": {"path": "workflow/scripts/run_analysis.py", "git_blob": "abc"},
        "params": {},
        "inputs": [{"path": "data/pain_scores.csv", "sha256": "0" * 64}],
        "outputs": ["results/analyses/x.json"],
        "data_rows": {"pain_scores.csv": [2, 3, 4, 9]},
        "study_ids": ["a", "b"],
        "software": {"python": "3"},
    }
    source = tmp_path / "x.json"
    numbers = {"x.estimate": {"value": -1.5, "kind": "estimate"}, "x.k": {"value": 2, "kind": "count"}}
    source.write_text(json.dumps({"numbers": numbers, "provenance": prov}), encoding="utf-8")
    published = tmp_path / "published.csv"
    published.write_text("key,printed,value,kind,decimals,location,note\n", encoding="utf-8")
    stored = build_registry([source], published)
    path = tmp_path / "results" / "numbers.json"
    path.parent.mkdir()
    path.write_text(json.dumps(stored), encoding="utf-8")
    return path


def test_small_registry_stores_the_job_once_and_resolves_it(tmp_path):
    path = _small(tmp_path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["schema"] == SCHEMA
    assert list(stored["activities"]) == ["run_analysis[analysis=x]"]
    assert stored["activities"]["run_analysis[analysis=x]"]["data_rows"] == {"pain_scores.csv": "2-4,9"}
    assert all("provenance" not in e for e in stored["numbers"].values())
    view = read_registry(path)
    entry = view["numbers"]["x.estimate"]
    assert entry["provenance"]["data_rows"] == {"pain_scores.csv": [2, 3, 4, 9]}
    assert entry["job"] == entry["provenance"]["job"] == "run_analysis[analysis=x]"
    assert entry["output"] == str(tmp_path / "x.json")
    assert entry["key"] == "x.estimate"
    # one object per job, however many numbers it made
    assert view["numbers"]["x.k"]["provenance"] is entry["provenance"]


def test_dangling_activity_is_one_clear_error(tmp_path, capsys):
    path = _small(tmp_path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored["numbers"]["x.k"]["activity"] = "run_analysis[analysis=gone]"
    path.write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(RegistryError) as error:
        read_registry(path)
    message = str(error.value)
    assert str(path) in message and "'x.k'" in message and "run_analysis[analysis=gone]" in message
    # the audit commands print it as one line, without a traceback
    assert main(["explain", "x.estimate", "--results", str(path.parent)]) == 2
    err = capsys.readouterr().err
    assert "run_analysis[analysis=gone]" in err and "Traceback" not in err


def test_old_layout_reads_into_the_same_view(tmp_path):
    """A build made before the normal form (a submitted revision) still reads: diff and revision
    compare across the change."""
    path = _small(tmp_path)
    view = read_registry(path)
    old = {"schema": "metabuild-numbers/1", "numbers": {k: dict(e) for k, e in view["numbers"].items()}}
    path.write_text(json.dumps(old), encoding="utf-8")
    again = read_registry(path)
    assert again["numbers"] == view["numbers"]
    old["numbers"]["x.estimate"].pop("provenance")
    path.write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"'x.estimate' of the old registry layout has no provenance"):
        read_registry(path)
    path.write_text(json.dumps({"schema": "metabuild-numbers/9", "numbers": {}}), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"schema 'metabuild-numbers/9'"):
        read_registry(path)


def test_corrupt_rows_and_json_are_clear_errors(tmp_path):
    path = _small(tmp_path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored["activities"]["run_analysis[analysis=x]"]["data_rows"]["pain_scores.csv"] = "4-2"
    path.write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"run_analysis\[analysis=x\].*data_rows.*'4-2'"):
        read_registry(path)
    path.write_text('{"schema": ', encoding="utf-8")
    with pytest.raises(RegistryError, match="not valid JSON"):
        read_registry(path)


# ------------------------------------------------------------------------------------------------
# the real build


def test_real_build_round_trips(built_results: Path):
    """Every number's full provenance, as the reader rebuilds it, is what schema 1 held: the
    provenance its job wrote into the file the number came from, with that file and its job."""
    root = built_results.parent
    view = read_registry(built_results / "numbers.json")
    stored = json.loads((built_results / "numbers.json").read_text(encoding="utf-8"))
    sources = {a["source"] for a in stored["activities"].values()}
    seen = set()
    for source in sorted(sources):
        data = json.loads((root / source).read_text(encoding="utf-8"))
        for key in data["numbers"]:
            entry = view["numbers"][key]
            assert entry["provenance"] == data["provenance"], key
            assert (entry["job"], entry["output"], entry["key"]) == (data["provenance"]["job"], source, key)
            seen.add(key)
    assert seen == set(view["numbers"])
    # stored once: no activity without a number, far fewer activities than numbers
    assert {e["activity"] for e in stored["numbers"].values()} == set(stored["activities"])
    assert len(stored["activities"]) * 5 < len(stored["numbers"])


def test_real_prov_sidecar_has_one_activity_per_job(built_results: Path):
    view = read_registry(built_results / "numbers.json")
    prov = json.loads((built_results / "numbers.prov.json").read_text(encoding="utf-8"))
    assert len(prov["activity"]) == len(view["activities"])
    assert len(prov["wasGeneratedBy"]) == len(view["numbers"])
    assert set(prov["entity"]) >= {f"num:{k}" for k in view["numbers"]}


def _summary(key: str, entry: dict) -> str:
    """The tooltip numbers.lua writes, from the reader's view."""
    prov = entry["provenance"]
    published = " | ".join(
        p["printed"] + (" (reproduced)" if p["matches"] else " (differs)")
        if p.get("matches") is not None
        else p["printed"]
        for p in entry.get("published", [])
    )
    inputs = ", ".join(f"{i['path']}@{i['sha256'][:12]}" for i in prov["inputs"])
    return (
        f"{key}: {entry['text']}; published: {published or 'not printed in the paper'}; rule: {prov['rule']}; "
        f"script: {prov['script']['path']}; inputs: {inputs}"
    )


def test_audit_tooltips_come_from_the_activities(built_results: Path):
    view = read_registry(built_results / "numbers.json")
    page = (built_results / "manuscript" / "paper.html").read_text(encoding="utf-8")
    spans = re.findall(r'<span class="num" data-key="([^"]+)" title="([^"]*)"', page)
    assert len(spans) > 50
    for key, title in spans:
        assert html.unescape(title) == _summary(key, view["numbers"][key]), key


def test_docx_comments_come_from_the_activities(built_results: Path):
    import zipfile
    from xml.etree import ElementTree

    view = read_registry(built_results / "numbers.json")
    with zipfile.ZipFile(built_results / "manuscript" / "paper.docx") as docx:
        root = ElementTree.fromstring(docx.read("word/comments.xml"))
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    comments = {"".join(t.text or "" for t in c.iter(f"{w}t")) for c in root.iter(f"{w}comment")}
    keys = {c.split(":", 1)[0] for c in comments}
    assert "primary.estimate" in keys and len(keys) > 50
    for key in keys:
        assert _summary(key, view["numbers"][key]) in comments, key


# ------------------------------------------------------------------------------------------------
# the manuscript filter (Lua: it cannot call read_registry, so it looks `activity` up itself)


def _pandoc_html(tmp_path: Path, registry: dict) -> subprocess.CompletedProcess:
    import pypandoc

    (tmp_path / "numbers.json").write_text(json.dumps(registry), encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("---\nnumbers-file: numbers.json\n---\n\nPain fell by [x.estimate]{.num}.\n", encoding="utf-8")
    filt = Path(__file__).resolve().parents[1] / "manuscript" / "filters" / "numbers.lua"
    return subprocess.run(
        [pypandoc.get_pandoc_path(), str(doc), "--lua-filter", str(filt), "-t", "html"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_filter_tooltip_comes_from_the_activity(tmp_path):
    stored = json.loads(_small(tmp_path).read_text(encoding="utf-8"))
    proc = _pandoc_html(tmp_path, stored)
    assert proc.returncode == 0, proc.stderr
    title = html.unescape(re.search(r'data-key="x.estimate"\s+title="([^"]*)"', proc.stdout).group(1))
    assert title == (
        "x.estimate: \u22121.50; published: not printed in the paper; rule: run_analysis; "
        f"script: workflow/scripts/run_analysis.py; inputs: data/pain_scores.csv@{'0' * 12}"
    )


def test_filter_refuses_a_dangling_activity_and_the_old_layout(tmp_path):
    stored = json.loads(_small(tmp_path).read_text(encoding="utf-8"))
    stored["numbers"]["x.estimate"]["activity"] = "gone"
    proc = _pandoc_html(tmp_path, stored)
    assert proc.returncode != 0 and "activity 'gone'" in proc.stderr
    proc = _pandoc_html(tmp_path, {"schema": "metabuild-numbers/1", "numbers": {}})
    assert proc.returncode != 0 and "old registry layout" in proc.stderr
