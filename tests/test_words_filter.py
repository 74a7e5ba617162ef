"""The manuscript filter's words from data (manuscript/filters/numbers.lua), through real pandoc:
citation lists of registry trial lists (.cite), trials grouped by an attribute (.trials), counts
in words with their noun (.num .word noun=...), and claims kept as written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pypandoc
import pytest

ROOT = Path(__file__).resolve().parents[1]
FILTER = ROOT / "manuscript" / "filters" / "numbers.lua"


def _trial(sid: str, label: str, condition: str) -> dict:
    return {"value": sid, "text": label, "attributes": {"citation_key": f"key_{sid}", "condition": condition}}


REGISTRY = {
    "numbers": {
        "trial.a": _trial("a", "Alpha 2001", "phantom limb pain"),
        "trial.b": _trial("b", "Beta 2002", "CRPS type I"),
        "trial.c": _trial("c", "Gamma 2003", "phantom limb pain"),
        "trial.d": _trial("d", "Delta <b>2004</b>", "<script>alert(1)</script>"),
        "sets.x": {"value": ["a", "b", "c"], "text": "Alpha 2001, Beta 2002, Gamma 2003"},
        "sets.x.count": {"value": 3, "text": "3"},
        "sets.one.count": {"value": 1, "text": "1"},
        "sets.none": {"value": [], "text": "none"},
        "sets.none.count": {"value": 0, "text": "0"},
        "sets.evil": {"value": ["d"], "text": "Delta"},
        "big.count": {"value": 42, "text": "42"},
        "primary.p": {"value": 0.01, "text": "= .010"},
    }
}


def _render(tmp_path: Path, body: str, to: str = "native") -> subprocess.CompletedProcess:
    (tmp_path / "numbers.json").write_text(json.dumps(REGISTRY), encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("---\nnumbers-file: numbers.json\n---\n\n" + body + "\n", encoding="utf-8")
    return subprocess.run(
        [pypandoc.get_pandoc_path(), str(doc), "--lua-filter", str(FILTER), "-t", to],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def _native(tmp_path: Path, body: str) -> str:
    proc = _render(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_cite_span_becomes_one_citation_of_the_listed_trials(tmp_path):
    out = _native(tmp_path, "Trials [sets.x]{.cite} here.")
    assert out.count("Cite") == 1
    ids = [line.split('"')[1] for line in out.splitlines() if "citationId" in line]
    assert ids == ["key_a", "key_b", "key_c"]


def test_trials_span_groups_by_attribute_each_group_cited(tmp_path):
    out = _native(tmp_path, 'In [sets.x]{.trials by="condition"}.')
    plain = _render(tmp_path, 'In [sets.x]{.trials by="condition"}.', to="plain").stdout
    assert " ".join(plain.split()) == "In phantom limb pain [@key_a; @key_c] and CRPS type I [@key_b]."
    ids = [line.split('"')[1] for line in out.splitlines() if "citationId" in line]
    assert ids == ["key_a", "key_c", "key_b"]
    assert out.count("Cite") == 2


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        ('[sets.x.count]{.num .word noun="trial"}', "three trials"),
        ('[sets.one.count]{.num .word noun="trial"}', "one trial"),
        ('[sets.none.count]{.num .word noun="trial"}', "no trials"),
        ('[sets.x.count]{.num .word noun="study" plural="studies"}', "three studies"),
        ("[sets.x.count]{.num .word}", "three"),
        ('[big.count]{.num .word noun="trial"}', "42 trials"),
        ('[sets.one.count]{.num noun="trial"}', "1 trial"),
    ],
)
def test_counts_in_words_with_their_noun(tmp_path, span, expected):
    proc = _render(tmp_path, f"x {span} y", to="plain")
    assert proc.returncode == 0, proc.stderr
    assert f"x {expected} y" in proc.stdout


def test_claim_is_printed_as_written_and_marked_in_html(tmp_path):
    body = 'A [claim with [primary.p]{.num}]{.claim if="primary.p < 0.05"} end.'
    plain = _render(tmp_path, body, to="plain")
    assert "A claim with = .010 end." in plain.stdout
    html = _render(tmp_path, body, to="html").stdout
    assert 'class="claim"' in html and 'data-claim="primary.p &lt; 0.05"' in html


def test_text_from_data_stays_text(tmp_path):
    html = _render(tmp_path, '[sets.evil]{.trials by="condition"}', to="html").stdout
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[sets.none]{.cite}", "the registry lists no trial under sets.none"),
        ("[sets.x.count]{.cite}", "needs a registry key that lists trials"),
        ('[sets.x]{.trials by="colour"}', "has no attribute 'colour'"),
        ("[nope.studies]{.cite}", "registry key 'nope.studies' is not in"),
    ],
)
def test_bad_lists_fail_the_render_naming_the_key(tmp_path, body, message):
    proc = _render(tmp_path, body)
    assert proc.returncode != 0
    assert message in proc.stderr
