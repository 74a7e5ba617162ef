"""No number and no list of included trials is typed by hand in the documents: prose, abstract,
captions and table footnotes get them from the registry (issue: words that follow the data)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted((ROOT / "manuscript").glob("*.qmd"))

# markup that carries no typed number: registry spans (their keys hold digits, e.g. week2.k),
# citations and cross-references, attributes, link and image targets, inline code
_REGISTRY_SPAN = re.compile(r"\[[^\[\]]*\]\{\.(?:num|cite|trials)\b[^{}]*\}")
_CLAIM_ATTRIBUTES = re.compile(r"\]\{\.claim\b[^{}]*\}")
_STRIP = [
    re.compile(r"`[^`]*`"),
    re.compile(r"\[-?@[^\]]*\]"),
    re.compile(r"-?@[\w:.-]+"),
    re.compile(r"\{[#.][^{}]*\}"),
    re.compile(r"\]\([^)]*\)"),
]
_NUMBER = re.compile(r"(?<![\w.])[-\u2212]?\d+(?:[.,]\d+)?%?")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a .qmd a reader sees as text, with registry markup removed: the body and the
    abstract (the front matter's other fields are bibliographic, not results)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    body_start = 0
    keep: set[int] = set()
    if lines and lines[0] == "---":
        end = lines.index("---", 1)
        body_start = end + 1
        in_abstract = False
        for no in range(1, end):
            line = lines[no]
            if re.match(r"^[A-Za-z-]+:", line):
                in_abstract = line.startswith("abstract:")
            elif in_abstract:
                keep.add(no)
    keep |= set(range(body_start, len(lines)))
    # remove nested registry spans from the inside out, over the whole text (spans wrap lines)
    joined = "\n".join(lines[i] if i in keep else "" for i in range(len(lines)))
    previous = None
    while previous != joined:
        previous = joined
        joined = _REGISTRY_SPAN.sub(lambda m: "N" + "\n" * m.group(0).count("\n"), joined)
    joined = _CLAIM_ATTRIBUTES.sub(lambda m: "]" + "\n" * m.group(0).count("\n"), joined)
    out = []
    for no, line in enumerate(joined.splitlines(), 1):
        if line.lstrip().startswith((":::", "<!--", "#|")):
            continue
        for pattern in _STRIP:
            line = pattern.sub(" ", line)
        out.append((no, line))
    return out


def typed_numbers(path: Path) -> list[str]:
    return [
        f"{path.name}:{no}: {m.group(0)!r} in {line.strip()[:80]!r}"
        for no, line in prose_lines(path)
        for m in _NUMBER.finditer(line)
    ]


def test_the_scanner_finds_a_typed_number(tmp_path):
    """The check below is about something: a number typed in prose or the abstract is found, and
    registry spans, citations and attributes are not mistaken for one."""
    qmd = tmp_path / "x.qmd"
    qmd.write_text(
        "---\ntitle: A 2019 title\nabstract: |\n  Of 696 records, [flow.k2]{.num} trials.\n---\n\n"
        'In [week2.k]{.num} trials [@amr2010] (@fig-x) [pain fell [week2.p]{.num}]{.claim if="week2.p < 0.05"}.\n'
        "At 4 weeks it did not.\n![cap [week4.k]{.num}](../results/figures/forest_week4.svg){#fig-w4}\n",
        encoding="utf-8",
    )
    found = typed_numbers(qmd)
    assert [f.split(":")[1] for f in found] == ["4", "8"], found
    assert "'696'" in found[0] and "'4'" in found[1]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_no_number_is_typed_in_the_documents(path):
    assert typed_numbers(path) == []


def _trial_keys() -> set[str]:
    with open(ROOT / "data" / "studies.csv", encoding="utf-8") as handle:
        return {row["citation_key"] for row in csv.DictReader(handle)}


def hand_typed_trial_lists(path: Path, trial_keys: set[str]) -> list[str]:
    """Citations naming two or more included trials by hand: such a list is defined by the data
    (a subgroup, a time point, the trials that reported X) and must come from the registry."""
    found = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for group in re.findall(r"\[([^\]]*@[^\]]*)\]", line):
            cited = set(re.findall(r"@([\w:.-]+)", group)) & trial_keys
            if len(cited) >= 2:
                found.append(f"{path.name}:{no}: {', '.join(sorted(cited))}")
    return found


def test_the_trial_list_scanner_finds_a_typed_list(tmp_path):
    qmd = tmp_path / "x.qmd"
    qmd.write_text("One [@amr2010]; two [@amr2010; @salas2012]; others [@amr2010; @cohen2018].\n", encoding="utf-8")
    assert hand_typed_trial_lists(qmd, {"amr2010", "salas2012"}) == ["x.qmd:1: amr2010, salas2012"]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_no_list_of_included_trials_is_typed(path):
    assert hand_typed_trial_lists(path, _trial_keys()) == []


def test_table_footnotes_type_no_number():
    """GRADE footnotes (data/grade.csv) are templates: every number is a {name} of the registry."""
    with open(ROOT / "data" / "grade.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    typed = [
        f"data/grade.csv row {i}: {m.group(0)!r}"
        for i, row in enumerate(rows, 2)
        for m in _NUMBER.finditer(re.sub(r"\{[^{}]*\}", " ", row["footnote"]).replace("I²", "I"))
    ]
    assert typed == []
    assert any("{" in row["footnote"] for row in rows)


def test_subgroup_labels_take_their_threshold_from_the_attribute():
    """Subgroup labels (config level_labels) print a threshold as {value}, never typed, so a
    changed threshold cannot leave a stale label beside subgroups built with the new one."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    typed = {level: label for level, label in config["level_labels"].items() if re.search(r"\d", label)}
    assert typed == {}
    from metabuild.analysis import level_label

    rule = dict(config["derived_attributes"]["age_class"], value=50)
    assert level_label("older", rule, config) == "Age >50 years"
