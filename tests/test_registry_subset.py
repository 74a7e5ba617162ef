"""The registry subset a rendering reads (metabuild.render.registry_subset, numbers.lua's metadata
numbers-subset): the numbers a document can cite with their activities' tooltip fields; the
filter falls back to the whole registry for a key or field the subset lacks, and no output
records the subset's temporary path."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pypandoc
import pytest
from conftest import document_folder

from metabuild.render import RenderError, registry_subset, render_document

REPO = Path(__file__).resolve().parents[1]
MANUSCRIPT = REPO / "manuscript"
FILTER = MANUSCRIPT / "filters" / "numbers.lua"


def _activity(rule: str) -> dict:
    return {
        "rule": rule,
        "script": {"path": f"workflow/scripts/{rule}.py", "git_blob": "0" * 40},
        "inputs": [{"path": "data/pain_scores.csv", "sha256": "ab" * 32}],
        "data_rows": {"pain_scores.csv": "2-9"},
        "study_ids": ["s1", "s2"],
        "source": f"results/analyses/{rule}.json",
    }


REGISTRY = {
    "schema": "metabuild-numbers/2",
    "activities": {"job_a": _activity("pool_a"), "job_b": _activity("pool_b"), "job_c": _activity("pool_c")},
    "numbers": {
        "a.estimate": {"value": -1.83, "text": "\u22121.83", "kind": "estimate", "activity": "job_a"},
        "a.k": {"value": 7, "text": "7", "kind": "count", "activity": "job_a"},
        "b.studies": {"value": ["t1", "t2"], "text": "One 2001, Two 2002", "kind": "studies", "activity": "job_b"},
        "trial.t1": {"value": "t1", "text": "One 2001", "attributes": {"citation_key": "one2001"}, "activity": "job_b"},
        "trial.t2": {"value": "t2", "text": "Two 2002", "attributes": {"citation_key": "two2002"}, "activity": "job_b"},
        "trial.t3": {"value": "t3", "text": "Three", "attributes": {"citation_key": "three"}, "activity": "job_b"},
        "c.unused": {"value": 1, "text": "1", "kind": "count", "activity": "job_c"},
    },
}

BODY = "Pain fell by [a.estimate]{.num} in [a.k]{.num} trials ([b.studies]{.num})."


def test_subset_holds_the_cited_numbers_their_trials_and_activities_tooltip_fields():
    subset = registry_subset(REGISTRY, ["Text [a.estimate]{.num}; trials [b.studies]{.cite}.", "| [a\\.k]{.num} |"])
    assert sorted(subset["numbers"]) == ["a.estimate", "a.k", "b.studies", "trial.t1", "trial.t2"]
    assert sorted(subset["activities"]) == ["job_a", "job_b"]
    assert subset["activity_fields"] == ["inputs", "rule", "script"]
    assert set(subset["activities"]["job_a"]) == {"inputs", "rule", "script"}
    assert subset["numbers"]["a.estimate"] == REGISTRY["numbers"]["a.estimate"]
    # a registry of another shape is read whole by the filter
    assert registry_subset({"numbers": REGISTRY["numbers"]}, [BODY]) is None


def _pandoc(tmp_path: Path, body: str, subset: dict | None, to: str = "html") -> subprocess.CompletedProcess:
    (tmp_path / "numbers.json").write_text(json.dumps(REGISTRY), encoding="utf-8")
    (tmp_path / "doc.md").write_text(body + "\n", encoding="utf-8")
    cmd = [pypandoc.get_pandoc_path(), "doc.md", "--lua-filter", str(FILTER), "-t", to]
    cmd += ["--metadata", "numbers-file=numbers.json"]
    if subset is not None:
        (tmp_path / "subset.json").write_text(json.dumps(subset), encoding="utf-8")
        cmd += ["--metadata", f"numbers-subset={tmp_path / 'subset.json'}"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)


def test_filter_reads_the_subset_and_falls_back_to_the_whole_registry(tmp_path):
    whole = _pandoc(tmp_path, BODY, None)
    assert whole.returncode == 0, whole.stderr
    assert "pool_a" in whole.stdout and "pain_scores.csv@abababababab" in whole.stdout
    # the subset is what the filter reads when it has the key: a text changed in it shows
    subset = registry_subset(REGISTRY, [BODY])
    subset["numbers"]["a.k"] = {**subset["numbers"]["a.k"], "text": "SEVEN"}
    out = _pandoc(tmp_path, BODY, subset)
    assert out.returncode == 0, out.stderr
    assert "SEVEN" in out.stdout
    # a key the subset lacks, or an activity field it does not hold: read from the whole registry
    lacking_key = registry_subset(REGISTRY, [BODY])
    del lacking_key["numbers"]["a.k"]
    lacking_field = registry_subset(REGISTRY, [BODY])
    lacking_field["activity_fields"] = ["rule"]
    lacking_field["activities"] = {a: {"rule": v["rule"]} for a, v in lacking_field["activities"].items()}
    for lacking in (lacking_key, lacking_field):
        out = _pandoc(tmp_path, BODY, lacking)
        assert out.returncode == 0, out.stderr
        assert out.stdout == whole.stdout
    # the same output as from the whole registry when the subset is complete
    out = _pandoc(tmp_path, BODY, registry_subset(REGISTRY, [BODY]))
    assert out.stdout == whole.stdout
    # a key in neither: the error names the whole registry
    out = _pandoc(tmp_path, "[no.such]{.num}", registry_subset(REGISTRY, [BODY]))
    assert out.returncode != 0
    assert "no.such" in out.stderr and "(numbers.json)" in out.stderr and "subset" not in out.stderr


QMD = """---
title: Subset
---

# Results

Pain fell by [a.estimate]{.num} in [a.k]{.num} trials [b.studies]{.cite}.

::: {#tbl-x .include file="../results/tables/t.md"}
Caption.
:::

# References
"""

BIB = """@article{one2001, author={One, A}, title={First}, journal={J}, year={2001}}
@article{two2002, author={Two, B}, title={Second}, journal={J}, year={2002}}
"""


@pytest.fixture()
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1561939200")
    document_folder(tmp_path / "doc", QMD, BIB)
    (tmp_path / "results" / "tables").mkdir(parents=True)
    # a number only the included table cites
    (tmp_path / "results" / "tables" / "t.md").write_text("| k | I |\n|---|---|\n| [a.k]{.num} | [c.unused]{.num} |\n")
    (tmp_path / "results" / "numbers.json").write_text(json.dumps(REGISTRY), encoding="utf-8")
    return tmp_path


def _render(project: Path, out: str, formats=("html", "docx")) -> dict[str, Path]:
    return render_document(
        project / "doc" / "paper.qmd", project / out, formats, project / "results" / "numbers.json", engine="pandoc"
    )


def test_rendering_through_the_subset_equals_rendering_from_the_whole_registry(project, monkeypatch):
    import metabuild.render as render

    written = []
    real = render._write_subset

    def spy(*args):
        path = real(*args)
        written.append(json.loads(path.read_text(encoding="utf-8")))
        return path

    monkeypatch.setattr(render, "_write_subset", spy)
    fast = _render(project, "fast")
    # the subset was used, and holds the included table's number, not the uncited trial
    assert written and "c.unused" in written[0]["numbers"] and "trial.t3" not in written[0]["numbers"]
    monkeypatch.setattr(render, "_write_subset", lambda *args: None)
    whole = _render(project, "whole")
    assert fast["html"].read_bytes() == whole["html"].read_bytes()
    assert fast["docx"].read_bytes() == whole["docx"].read_bytes()
    # the subset's temporary path is recorded nowhere (pandoc puts metadata in the DOCX's properties)
    with zipfile.ZipFile(fast["docx"]) as z:
        properties = z.read("docProps/custom.xml").decode("utf-8")
    assert 'name="numbers-file"' in properties and "numbers-subset" not in properties
    assert "numbers-subset" not in fast["html"].read_text(encoding="utf-8")


def test_a_key_in_no_file_fails_naming_the_registry(project):
    qmd = project / "doc" / "paper.qmd"
    qmd.write_text(QMD.replace("[a.k]{.num} trials", "[a.kk]{.num} trials"), encoding="utf-8")
    with pytest.raises(RenderError) as err:
        _render(project, "out", formats=("html",))
    assert "a.kk" in str(err.value) and "not in results/numbers.json" in str(err.value)
    assert "(../results/numbers.json)" in str(err.value) and "subset" not in str(err.value)
