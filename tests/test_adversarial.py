"""Data and configuration written by an attacker or a careless user (issue 11).

Each case feeds one bad input and asserts the check that stops it: text from data reaches every
format as text (never markup or code), configured paths stay inside the project, data files are
regular files inside data/, configuration bombs are refused naming the key, and every failure
happens before any job runs, naming the data file, row and column (or the config key).

Most cases are unit tests of :mod:`metabuild.escape`, :func:`metabuild.data.validate_dataset`
and :mod:`metabuild.workflow_support`; the ``slow`` ones build a copy of the project.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import html.parser
import io
import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import synthetic  # noqa: E402

from metabuild import analysis, escape, provenance, report, tables  # noqa: E402
from metabuild import data as mdata  # noqa: E402
from metabuild import workflow_support as ws  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "valid_data"
SCHEMAS = ROOT / "data" / "schemas"


# ============================================================================ helpers
def _pandoc_json(markdown_text: str) -> dict:
    import pypandoc

    return json.loads(pypandoc.convert_text(markdown_text, "json", format="markdown"))


def _inline_types(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if "t" in node:
            found.add(node["t"])
        for value in node.values():
            _inline_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _inline_types(value, found)
    return found


def _stringify(node) -> str:
    if isinstance(node, dict):
        if node.get("t") == "Str":
            return node["c"]
        if node.get("t") == "Space":
            return " "
        return _stringify(node.get("c", []))
    if isinstance(node, list):
        return "".join(_stringify(x) for x in node)
    return ""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(FIXTURE, d)
    shutil.copytree(SCHEMAS, d / "schemas")
    return d


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _set(path: Path, row: int, column: str, value: str) -> None:
    rows = _rows(path)
    rows[row - 1][rows[0].index(column)] = value
    buf = io.StringIO()
    # every cell quoted, so a cell may hold a bare carriage return (csv quotes only "\n")
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _problems(data_dir: Path) -> list[mdata.Problem]:
    with pytest.raises(mdata.DataValidationError) as info:
        mdata.validate_dataset(data_dir)
    return info.value.problems


def _one(problems: list[mdata.Problem], file: str, row: int | None, column: str | None, text: str) -> mdata.Problem:
    hits = [
        p for p in problems if Path(p.file).name == file and p.row == row and p.column == column and text in p.message
    ]
    assert hits, f"no problem {text!r} at {file}, row {row}, column {column}; got:\n" + "\n".join(map(str, problems))
    return hits[0]


@pytest.fixture(scope="module")
def project_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def real_data():
    return mdata.load_dataset(ROOT / "data")


# ============================================================================ 1. escaping
#: text an attacker or a careless curator could put in a label, a regimen, a location
PAYLOADS = {
    "html_event": "Amr 2010 <b onmouseover=alert(1)>x</b>",
    "svg_onload": "<svg onload=alert(3)>",
    "img_tag": "<img src=x>",
    "typst_raw": '`#read("/config/config.yaml")`{=typst}',
    "typst_code": '#read("/config/config.yaml")',
    "html_raw_block": "```{=html}",
    "html_comment": "<!-- hidden -->",
    "link": "[click](javascript:alert(1))",
    "autolink": "<http://example.org/x>",
    "image": "![x](/etc/passwd)",
    "citation": "[@amr2010] and @amr2010",
    "num_span": "[primary.estimate]{.num}",
    "math": "$x^2$ and \\(y\\)",
    "emphasis": "**bold** _it_ ~sub~ ^sup^",
    "pipe": "a | b || c",
    "backslash": "C:\\path\\n and \\",
    "entity": "&amp; &#60;",
    "heading": "= heading",
    "list_dash": "- item",
    "list_number": "1. item",
    "term": "/ term: x",
    "footnote": "x[^1] ^[inline note]",
    "quotes_dashes": 'O\'Brien -- "x" ... ---',
    "all_ascii_punctuation": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
}


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_markdown_escape_reads_back_as_plain_text(payload):
    """pandoc reads the escaped text as Str and Space only (no element of any kind), and the
    text it reads is exactly the payload (the word joiner in front of a Typst line-start
    marker aside)."""
    doc = _pandoc_json(escape.markdown(payload) + "\n")
    (block,) = doc["blocks"]
    assert block["t"] == "Para"
    types = _inline_types(block["c"], set())
    assert types <= {"Str", "Space"}, f"{payload!r} became {types}"
    assert _stringify(block["c"]).removeprefix(escape.WORD_JOINER) == payload


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_markdown_table_cell_stays_text(payload):
    """In a pipe table (how Table 1 reaches pandoc) every cell is plain text: the table keeps
    its two columns whatever pipes the text holds."""
    import pandas as pd

    frame = pd.DataFrame([{"A": payload, "B": "end"}], dtype=object)
    doc = _pandoc_json(tables.markdown_table(frame))
    (table,) = doc["blocks"]
    assert table["t"] == "Table"
    body_rows = table["c"][4][0][3]
    (row,) = body_rows
    cells = row[1]
    assert len(cells) == 2
    types = {t for t in _inline_types(cells, set()) if not t.startswith("Align")}
    assert types <= {"Str", "Space", "Plain"}, types
    assert _stringify(cells[0]).removeprefix(escape.WORD_JOINER) == payload
    assert _stringify(cells[1]) == "end"


@pytest.mark.parametrize("start", ["= x", "== x", "- x", "+ x", "/ x: y", "12. x"], ids=lambda s: s.split()[0])
def test_typst_line_start_markers_get_a_word_joiner(start):
    """pandoc's Typst writer leaves these unescaped at the start of a table cell, where Typst
    would read a heading or a list; the escape puts an invisible word joiner in front."""
    assert escape.markdown(start).startswith(escape.WORD_JOINER)
    assert not escape.markdown("x " + start).startswith(escape.WORD_JOINER)
    assert not escape.markdown("-5").startswith(escape.WORD_JOINER)  # a negative number is no list


def test_typst_from_escaped_cell_is_literal():
    """The Typst pandoc writes from an escaped table of payloads compiles and its PDF shows
    each payload as text (and no heading or file content)."""
    import pandas as pd
    import pypandoc
    import typst

    payloads = [PAYLOADS["typst_raw"], PAYLOADS["heading"], PAYLOADS["list_dash"], PAYLOADS["math"]]
    frame = pd.DataFrame([{"Text": p} for p in payloads], dtype=object)
    source = pypandoc.convert_text(tables.markdown_table(frame), "typst", format="markdown")
    assert "#read(" not in source.replace("\\#read(", "")
    pdf = typst.compile(source.encode())
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    flat = "".join(text.replace(escape.WORD_JOINER, "").split())
    for p in payloads:
        assert "".join(p.split()) in flat, (p, text)


def test_markup_passes_and_data_inside_it_is_escaped():
    label = "Amr <b>2010</b>"
    cell = escape.Markup(f"{label} [@amr2010]", f"{escape.markdown(label)} {escape.citation('amr2010').markdown}")
    doc = _pandoc_json(escape.markdown(cell) + "\n")
    types = _inline_types(doc["blocks"], set())
    assert "Cite" in types and "RawInline" not in types
    assert str(cell) == "Amr <b>2010</b> [@amr2010]"  # the plain text (what a CSV cell holds)


@pytest.mark.parametrize("key", ["a]b", "x y", "a;b", "@a", "", "a{=typst}", "k`"], ids=repr)
def test_citation_key_refused(key):
    with pytest.raises(ValueError, match="citation key"):
        escape.citation(key)


def test_html_escape():
    assert escape.html('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert escape.html("a\x00b") == "a\ufffdb"


def test_table1_escapes_data_and_keeps_the_citation(real_data):
    studies = real_data.studies.copy()
    studies.loc[0, "label"] = PAYLOADS["html_event"]
    studies.loc[0, "treatment_description"] = PAYLOADS["typst_raw"]
    studies.loc[0, "regimen_text"] = PAYLOADS["svg_onload"]
    from types import SimpleNamespace

    from metabuild import review

    module = review.module({"review_module": "config/review_module.py"})
    data = SimpleNamespace(studies=studies, pain_scores=real_data.pain_scores)
    frame, _ = module.table1(data, {"reference_weight_kg": 70, "high_dose_threshold_mg": 200})
    doc = _pandoc_json(tables.markdown_table(frame))
    types = _inline_types(doc["blocks"], set())
    assert "Cite" in types  # the citation the code writes
    assert not types & {"RawInline", "RawBlock", "Span", "Link", "Code", "Math"}, types
    csv_text = frame.to_csv(index=False)
    assert PAYLOADS["html_event"] + " [@" in csv_text  # the CSV holds plain text, not escapes


def test_table2_footnote_and_label_escaped():
    import pandas as pd

    grade = pd.DataFrame(
        [
            {"outcome_id": "o", "domain": d, "judgement": "serious" if d == "imprecision" else "not serious",
             "footnote": "<script>alert(1)</script>" if d == "imprecision" else None}
            for d in ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "other")
        ]
    )  # fmt: skip
    pooled = {"k": 2, "n_ketamine": 10, "n_control": 10, "estimate": -1.0, "ci_lower": -2.0, "ci_upper": 0.0}
    results = {"a": {"measure": "MD", "pooled": pooled}}
    frame, notes, _ = tables.table2_grade(grade, results, {"o": {"analysis": "a", "label": "<i>Pain</i>"}})
    doc = _pandoc_json(tables.markdown_table(frame, notes))
    types = _inline_types(doc["blocks"], set())
    assert "Superscript" in types  # the footnote mark the code writes
    assert "RawInline" not in types and "RawBlock" not in types
    assert "<script>alert(1)</script>" in _stringify(doc["blocks"])


def test_report_appendix_escapes_location_and_keeps_keys_as_code():
    import pandas as pd

    published = pd.DataFrame(
        [{"key": "primary.estimate", "printed": "-1.2", "value": -1.2, "kind": "estimate", "decimals": 1,
          "location": "<img src=x onerror=alert(2)>", "note": "`code` [@cite]"}]
    )  # fmt: skip
    registry = {"numbers": {}}
    rep = report.reproduction_report(registry, published, data_dir=ROOT / "data")
    for text in (rep.appendix, rep.markdown):
        doc = _pandoc_json(text)
        types = _inline_types(doc["blocks"], set())
        assert "RawInline" not in types and "Cite" not in types, types
        assert "<img src=x onerror=alert(2)>" in _stringify(doc["blocks"])
    assert "&lt;img src=x onerror=alert(2)&gt;" in rep.html and "<img" not in rep.html


def test_report_key_with_backtick_is_not_code():
    cell = report._code("a`b")
    assert "`" not in cell.markdown.replace("\\`", "")


# ============================================================================ 2. validation of data
CONTROL = {
    "nul": "\x00",
    "tab": "\t",
    "line_feed": "\n",
    "carriage_return": "\r",
    "escape": "\x1b[31m",
    "delete": "\x7f",
    "c1_next_line": "\x85",
    "bidi_override": "\u202e",
    "line_separator": "\u2028",
}


@pytest.mark.parametrize("char", list(CONTROL.values()), ids=list(CONTROL))
def test_control_character_refused(data_dir, char):
    _set(data_dir / "studies.csv", 2, "label", f"Alpha{char}2010")
    problem = _one(_problems(data_dir), "studies.csv", 2, "label", "control character")
    assert "\x00" not in str(problem) and "\x1b" not in str(problem)


def test_control_character_in_number_column_refused(data_dir):
    _set(data_dir / "pain_scores.csv", 3, "sd", "1.7\x00")
    _one(_problems(data_dir), "pain_scores.csv", 3, "sd", "control character")


@pytest.mark.parametrize(
    ("file", "row", "column", "cap"),
    [
        ("studies.csv", 2, "label", 60),
        ("studies.csv", 3, "regimen_text", 300),
        ("pain_scores.csv", 2, "timepoint", 30),
        ("grade.csv", 2, "footnote", 300),
        ("published_values.csv", 2, "location", 120),
        ("studies.csv", 2, "source", 1000),
    ],
    ids=lambda v: str(v),
)
def test_text_longer_than_its_cap_refused(data_dir, file, row, column, cap):
    _set(data_dir / file, row, column, "x" * (cap + 1))
    problem = _one(_problems(data_dir), file, row, column, f"more than the {cap} allowed")
    assert problem.expected == f"at most {cap} characters"


def test_text_at_its_cap_accepted(data_dir):
    _set(data_dir / "studies.csv", 2, "label", "x" * 60)
    mdata.validate_dataset(data_dir)


def test_ten_kilobyte_label_message_is_short(data_dir):
    _set(data_dir / "studies.csv", 2, "label", "A" * 10_000)
    problem = _one(_problems(data_dir), "studies.csv", 2, "label", "10000 characters long")
    assert len(str(problem)) < 400


def test_five_thousand_digit_integer_refused(data_dir):
    _set(data_dir / "pain_scores.csv", 2, "n", "9" * 5000)
    problem = _one(_problems(data_dir), "pain_scores.csv", 2, "n", "5000 characters long")
    assert len(str(problem)) < 400


def test_huge_sd_refused(data_dir):
    _set(data_dir / "pain_scores.csv", 2, "sd", "1e308")
    _one(_problems(data_dir), "pain_scores.csv", 2, "sd", "is not <= 10")


def test_huge_n_refused(data_dir):
    _set(data_dir / "studies.csv", 2, "n_ketamine", "10000000000")
    _one(_problems(data_dir), "studies.csv", 2, "n_ketamine", "is not <= 1000000")


def test_same_week_under_two_timepoint_labels_refused(data_dir):
    # rows 2-3 are "week 1" (weeks 1, window 2); rows 4-5 "week 4": give week 4 the weeks of week 1
    _set(data_dir / "pain_scores.csv", 4, "weeks", "1")
    _set(data_dir / "pain_scores.csv", 5, "weeks", "1")
    problem = _one(_problems(data_dir), "pain_scores.csv", 4, "weeks", 'already the weeks of time point "week 1"')
    assert "row 2" in problem.message


def test_same_window_under_two_timepoint_labels_refused(data_dir):
    _set(data_dir / "pain_scores.csv", 4, "window_weeks", "2")
    _set(data_dir / "pain_scores.csv", 5, "window_weeks", "2")
    _one(_problems(data_dir), "pain_scores.csv", 4, "window_weeks", "already the window_weeks")


def test_weeks_differing_between_arms_refused(data_dir):
    _set(data_dir / "pain_scores.csv", 3, "weeks", "2")
    problem = _one(_problems(data_dir), "pain_scores.csv", 3, "weeks", "in the control arm")
    assert "row 2" in problem.message


@pytest.mark.parametrize("key", ["amr]2010", "amr 2010", "amr2010{=typst}", "-amr"], ids=repr)
def test_unsafe_citation_key_refused(data_dir, key):
    _set(data_dir / "studies.csv", 2, "citation_key", key)
    _one(_problems(data_dir), "studies.csv", 2, "citation_key", "does not match")


def test_symlinked_data_file_refused_and_not_read(data_dir, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("TOP-SECRET-LINE,x\n1,2\n", encoding="utf-8")
    (data_dir / "grade.csv").unlink()
    (data_dir / "grade.csv").symlink_to(secret)
    problems = _problems(data_dir)
    _one(problems, "grade.csv", None, None, "symbolic link")
    assert "TOP-SECRET" not in "\n".join(map(str, problems))


def test_directory_as_data_file_refused(data_dir):
    (data_dir / "study_flow.csv").unlink()
    (data_dir / "study_flow.csv").mkdir()
    _one(_problems(data_dir), "study_flow.csv", None, None, "is a directory")


def test_directory_as_data_file_fails_validation_not_fingerprint(data_dir, tmp_path):
    """The validation cache's fingerprint skips what is not a file (it used to raise
    IsADirectoryError); the build stops with the validation message."""
    from snakemake.exceptions import WorkflowError

    (data_dir / "study_flow.csv").unlink()
    (data_dir / "study_flow.csv").mkdir()
    with pytest.raises(WorkflowError, match="study_flow.csv: is a directory"):
        ws.load_valid_dataset(str(data_dir), cache_dir=str(tmp_path / "cache"))


# ============================================================================ 3. configuration
def _check(config: dict, project: Path = ROOT) -> str:
    with pytest.raises(ws.ConfigError) as info:
        ws.check_config(config, project)
    return str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("results_dir", "/srv/elsewhere"),
        ("results_dir", "manuscript"),
        ("results_dir", "data/out"),
        ("results_dir", "config"),
        ("results_dir", "workflow/out"),
        ("results_dir", "."),
        ("results_dir", "~/out"),
        ("data_dir", "/etc"),
        ("data_dir", "."),
        ("data_dir", "~/data"),
    ],
    ids=lambda v: str(v),
)
def test_unsafe_directory_refused(project_config, key, value):
    config = copy.deepcopy(project_config)
    config[key] = value
    assert f"config/config.yaml: {key}" in _check(config)


def test_results_dir_of_its_own_accepted(project_config):
    config = copy.deepcopy(project_config)
    config["results_dir"] = "out/build"
    ws.check_config(config, ROOT)


def test_data_dir_inside_results_refused(project_config):
    config = copy.deepcopy(project_config)
    config["results_dir"], config["data_dir"] = "build", "build/data"
    assert "data_dir" in _check(config)


def test_symlinked_dir_leading_outside_refused(project_config, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "out").symlink_to(tmp_path)
    config = copy.deepcopy(project_config)
    config["results_dir"] = "out/build"
    assert "results_dir" in _check(config, project) and "outside the project" in _check(config, project)


@pytest.mark.parametrize(
    "value", ["/etc/passwd", "config/config.yaml", "results/x.csv"], ids=["absolute", "outside_data", "results"]
)
def test_sensitivity_file_outside_data_refused(project_config, value):
    config = copy.deepcopy(project_config)
    config["sensitivity"]["pain_scores"] = value
    assert "sensitivity.pain_scores" in _check(config)


def test_sensitivity_file_symlink_refused(project_config, tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "fit.csv").symlink_to("/etc/passwd")
    config = copy.deepcopy(project_config)
    config["sensitivity"]["pain_scores"] = "data/fit.csv"
    assert "symbolic link" in _check(config, project)


def test_absolute_dirs_refused_by_schema(project_config):
    from snakemake.utils import validate

    config = copy.deepcopy(project_config)
    config["results_dir"] = "/srv/elsewhere"
    with pytest.raises(Exception, match="results_dir"):
        validate(config, str(ROOT / "config" / "schemas" / "config.schema.yaml"))


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("level_labels", "high"), "High\x00dose"),
        (("analyses", "primary", "title"), "Pain\x1b[2J"),
        (("grade", "primary", "label"), "x" * 201),
    ],
    ids=["nul_in_level_label", "escape_in_title", "long_grade_label"],
)
def test_config_text_refused(project_config, where, value):
    config = copy.deepcopy(project_config)
    node = config
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    assert ".".join(where) in _check(config)


def _write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]" for i in range(8)]
    + ["analyses: {bomb: {where: {x: *i}}}"]
)


def test_alias_bomb_refused_fast_naming_key(tmp_path):
    path = _write_config(tmp_path, ALIAS_BOMB)
    started = time.perf_counter()
    with pytest.raises(ws.ConfigError, match="alias bomb") as info:
        ws.check_config_file(path)
    assert time.perf_counter() - started < 5
    assert "aliases expand" in str(info.value)


def test_aliases_within_budget_accepted(tmp_path):
    """The real configuration uses anchors (defaults); small aliases are fine."""
    ws.check_config_file(_write_config(tmp_path, "d: &d {x: 1}\na: *d\nb: [*d, *d]\n"))
    ws.check_config_file(ROOT / "config" / "config.yaml")


def test_huge_integer_refused_naming_key(tmp_path):
    path = _write_config(tmp_path, "protocol:\n  weight:\n    value: " + "9" * 5000 + "\n")
    with pytest.raises(ws.ConfigError, match=r"protocol\.weight\.value: an integer of more than 30 digits"):
        ws.check_config_file(path)


def test_huge_text_refused_naming_key(tmp_path):
    path = _write_config(tmp_path, "analyses:\n  a:\n    title: " + "x" * 20_000 + "\n")
    with pytest.raises(ws.ConfigError, match=r"analyses\.a\.title: a value of 20000 characters"):
        ws.check_config_file(path)


def test_yte_template_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = _write_config(tmp_path, f"__use_yte__: true\na: ?__import__('os').system('touch {marker}')\n")
    with pytest.raises(ws.ConfigError, match="__use_yte__"):
        ws.check_config_file(path)
    assert not marker.exists()


def test_python_tag_refused_naming_key(tmp_path):
    path = _write_config(tmp_path, 'data_dir: !!python/object/apply:os.system ["true"]\n')
    with pytest.raises(ws.ConfigError, match="data_dir: the tag"):
        ws.check_config_file(path)


def test_deep_nesting_refused(tmp_path):
    path = _write_config(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ws.ConfigError, match="nest"):  # libyaml: "maximum nesting depth"
        ws.check_config_file(path)


def test_config_file_symlink_refused(tmp_path):
    link = tmp_path / "config.yaml"
    link.symlink_to(ROOT / "config" / "config.yaml")
    with pytest.raises(ws.ConfigError, match="regular file"):
        ws.check_config_file(link)


# ----------------------------------------------------------------- configuration against data
def _check_data(config: dict, dataset) -> str:
    with pytest.raises(ws.ConfigError) as info:
        ws.check_config_against_data(config, dataset)
    return str(info.value)


def test_real_config_fits_real_data(project_config, real_data):
    ws.check_config_against_data(project_config, real_data)


def test_derived_attribute_on_unknown_column(project_config, real_data):
    config = copy.deepcopy(project_config)
    config["derived_attributes"]["pain_class"]["column"] = "no_such_column"
    assert "derived_attributes.pain_class.column: 'no_such_column' is not a column" in _check_data(config, real_data)


def test_where_on_risk_of_bias_refused(project_config, real_data):
    config = copy.deepcopy(project_config)
    config["analyses"]["primary"]["where"] = {"risk_of_bias": "low"}
    assert "analyses.primary.where.risk_of_bias" in _check_data(config, real_data)


def test_where_selecting_no_study_refused(project_config, real_data):
    config = copy.deepcopy(project_config)
    config["analyses"]["primary"]["where"] = {"pain_type": "no_such_type"}
    message = _check_data(config, real_data)
    assert "analyses.primary: selects no study" in message and "no_such_type" in message


def test_timepoint_without_data_refused(project_config, real_data):
    config = copy.deepcopy(project_config)
    config["analyses"]["primary"]["timepoint"] = 99
    assert "analyses.primary: selects no study" in _check_data(config, real_data)


@pytest.mark.parametrize(("outcome", "measure"), [("pain", "RR"), ("nausea", "MD"), ("itching", "RR")])
def test_outcome_and_measure_must_fit(project_config, real_data, outcome, measure):
    config = copy.deepcopy(project_config)
    config["analyses"]["primary"].update(outcome=outcome, measure=measure)
    config["analyses"]["primary"].pop("timepoint", None)
    assert "analyses.primary." in _check_data(config, real_data)


def test_risk_ratio_without_any_event_refused(project_config, real_data):
    data = copy.copy(real_data)
    binary = real_data.binary_outcomes.copy()
    binary.loc[binary["outcome"] == "nausea", "events"] = 0
    data.binary_outcomes = binary
    message = _check_data(project_config, data)
    assert "analyses.nausea: selects no study" in message and "an event" in message


def test_grade_outcome_without_judgements_refused(project_config, real_data):
    config = copy.deepcopy(project_config)
    config["grade"]["no_such_outcome"] = {"analysis": "primary", "label": "x"}
    assert "grade.no_such_outcome: grade.csv has no judgement" in _check_data(config, real_data)


@pytest.mark.parametrize("value", ["seventy", None, -70, True], ids=repr)
def test_protocol_weight_must_be_a_positive_number(project_config, value):
    config = copy.deepcopy(project_config)
    config["protocol"]["reference_weight_kg"]["value"] = value
    assert "protocol.reference_weight_kg.value" in _check(config)


def test_invalid_sensitivity_file_stops_before_jobs(tmp_path):
    """The sensitivity analysis reads its own pain-scores file; it is validated with the data
    (it used to fail only in its job)."""
    from snakemake.exceptions import WorkflowError

    plausible = tmp_path / "plausible.csv"
    shutil.copy(ROOT / "data" / "curation" / "output" / "plausible_fit.csv", plausible)
    _set(plausible, 3, "sd", "1e308")
    with pytest.raises(WorkflowError, match=r'plausible\.csv, row 3, column "sd"'):
        ws.load_valid_dataset(
            str(ROOT / "data"), cache_dir=str(tmp_path / "cache"), extra={str(plausible): "pain_scores"}
        )


# ============================================================================ 4. figures
def _subgroup_result(real_data, project_config) -> dict:
    name = next(n for n, s in project_config["analyses"].items() if s.get("moderator"))
    return analysis.run_analysis(name, project_config["analyses"][name], real_data, project_config)


def test_dollar_signs_in_labels_are_not_mathtext(real_data, project_config, tmp_path):
    """A subgroup label ``$\\undefined$`` would fail matplotlib's mathtext parser (or render
    as math) in the compact forest plot; it is drawn as text."""
    from metabuild.figures.forest import forest_plot

    result = _subgroup_result(real_data, project_config)
    result["subgroups"][0]["label"] = r"$\undefinedcommand{x}$ cost"
    svg, png = forest_plot(result, tmp_path / "f", max_table_studies=1, title="$\\alpha$ title")
    assert svg.stat().st_size > 0 and png.stat().st_size > 0


def test_xml_special_text_keeps_svg_well_formed(real_data, project_config, tmp_path):
    import xml.etree.ElementTree as ET

    from metabuild.figures.forest import forest_plot

    result = _subgroup_result(real_data, project_config)
    result["subgroups"][0]["studies"][0]["label"] = "A --> <b>&amp; ]]> x"
    svg, _ = forest_plot(result, tmp_path / "f")
    ET.parse(svg)  # well-formed XML
    assert b"<b>" not in svg.read_bytes()


def test_png_width_capped(tmp_path):
    from PIL import Image

    from metabuild.figures.common import MAX_PNG_PIXELS, new_figure, save_figure

    fig = new_figure(120, 1)  # 120 inches: 36,000 px at 300 dpi
    _, png = save_figure(fig, tmp_path / "wide")
    with Image.open(png) as image:
        assert max(image.size) <= MAX_PNG_PIXELS


# ============================================================================ 5. provenance
def test_sha256_is_of_the_file_on_disk(tmp_path):
    path = tmp_path / "analysis.json"
    path.write_text('{"x": 1, "provenance": {"built_at": "2020-01-01T00:00:00Z"}}\n', encoding="utf-8")
    assert provenance.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_no_wall_clock_time_without_source_date_epoch(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert provenance.build_time() is None
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1561939200")
    assert provenance.build_time() == "2019-07-01T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        provenance.build_time()


# ============================================================================ 6. end to end
def _html_elements(path: Path) -> list[tuple[str, dict]]:
    found = []

    class Collect(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, dict(attrs)))

    Collect().feed(path.read_text(encoding="utf-8"))
    return found


def _html_text(path: Path) -> str:
    parts = []

    class Collect(html.parser.HTMLParser):
        def handle_data(self, data):
            parts.append(data)

    Collect(convert_charrefs=True).feed(path.read_text(encoding="utf-8"))
    return " ".join("".join(parts).split())  # pandoc wraps long lines


E2E = {
    "label": "Amr 2010 <b onmouseover=alert(1)>x</b>",
    "treatment_description": '`#read("/config/config.yaml")`{=typst}',
    "regimen_text": "<svg onload=alert(3)>",
    "population": "[primary.estimate]{.num} $x$ @amr2010",
}
LOCATION = "<img src=x onerror=alert(2)>"


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory):
    """A copy of the project whose studies.csv and published_values.csv hold markup, built
    completely (all documents, all formats)."""
    dest = synthetic.copy_project(tmp_path_factory.mktemp("hostile") / "project", data="real")
    studies = dest / "data" / "studies.csv"
    for column, value in E2E.items():
        _set(studies, 2, column, value)
    _set(dest / "data" / "published_values.csv", 2, "location", LOCATION)
    proc = synthetic.run_snakemake(dest, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return dest


@pytest.mark.slow
def test_e2e_html_shows_markup_as_text(hostile_build):
    paper = hostile_build / "results" / "manuscript" / "paper.html"
    elements = _html_elements(paper)
    assert not [t for t, a in elements if any(k.startswith("on") for k in a)], "an event-handler attribute"
    assert not [t for t, a in elements if t in ("svg", "img") and a.get("src") == "x"]
    text = _html_text(paper)
    for value in (E2E["label"], E2E["regimen_text"], E2E["treatment_description"]):
        assert value in text, value
    supplement = hostile_build / "results" / "manuscript" / "supplement.html"
    assert not [t for t, a in _html_elements(supplement) if t == "img" and a.get("src") == "x"]
    assert LOCATION in _html_text(supplement)


@pytest.mark.slow
def test_e2e_pdf_shows_typst_as_text_not_the_config(hostile_build):
    pdf = hostile_build / "results" / "manuscript" / "paper.pdf"
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = "".join(text.split())
    # the narrow Table 1 cell wraps the text after "/config/" (and pdftotext interleaves the
    # columns of a table row), so both halves are looked for
    assert '`#read("/config/' in flat and 'config.yaml")`{=typst}' in flat, text[:3000]
    config = (hostile_build / "config" / "config.yaml").read_text(encoding="utf-8")
    distinctive = next(line for line in config.splitlines() if line.startswith("# Protocol constants"))
    assert "".join(distinctive.split()) not in flat, "the config file reached the PDF"


@pytest.mark.slow
def test_e2e_docx_holds_the_literal_text(hostile_build):
    with zipfile.ZipFile(hostile_build / "results" / "manuscript" / "paper.docx") as docx:
        xml = docx.read("word/document.xml").decode("utf-8")
    assert "&lt;b onmouseover=alert(1)&gt;x&lt;/b&gt;" in xml


@pytest.mark.slow
def test_e2e_bad_data_after_a_good_build_keeps_outputs_and_names_the_cell(hostile_build):
    """SD = 1e308 used to pass validation, crash an analysis job and delete its previous
    output; now the build stops before any job, names file, row and column, and leaves every
    previous output as it was."""
    before = synthetic.tree_snapshot(hostile_build / "results")
    pain = hostile_build / "data" / "pain_scores.csv"
    original = pain.read_text(encoding="utf-8")
    _set(pain, 2, "sd", "1e308")
    try:
        proc = synthetic.run_snakemake(hostile_build, timeout=300)
    finally:
        pain.write_text(original, encoding="utf-8")
    assert proc.returncode != 0
    assert 'pain_scores.csv, row 2, column "sd": 1e+308 is not <= 10' in proc.stdout or (
        'pain_scores.csv, row 2, column "sd"' in proc.stdout and "<= 10" in proc.stdout
    ), proc.stdout[-3000:]
    assert synthetic.tree_snapshot(hostile_build / "results") == before


@pytest.fixture(scope="module")
def small_copy(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("adv") / "project"
    synthetic.copy_project(dest, data=None)
    synthetic.make_review(dest, 6, 4, seed=3)
    return dest


def _run_with_config(project: Path, edit) -> subprocess.CompletedProcess:
    config_file = project / "config" / "config.yaml"
    original = config_file.read_text(encoding="utf-8")
    config_file.write_text(edit(original), encoding="utf-8")
    before = synthetic.tree_snapshot(project)
    try:
        proc = synthetic.run_snakemake(project, timeout=180)
    finally:
        config_file.write_text(original, encoding="utf-8")
    after = synthetic.tree_snapshot(project)
    new = [p for p in set(after) - set(before) if not p.startswith(".snakemake/")]
    assert not new, f"files written by a build that should not start: {new}"
    return proc


@pytest.mark.slow
def test_e2e_alias_bomb_stops_snakemake_naming_key(small_copy):
    started = time.perf_counter()
    proc = _run_with_config(small_copy, lambda text: text + "\n" + ALIAS_BOMB.replace("analyses:", "bomb_analyses:"))
    assert proc.returncode != 0
    assert time.perf_counter() - started < 120
    assert "aliases expand" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("value", ["manuscript", "ABSOLUTE"], ids=["source_folder", "absolute"])
def test_e2e_results_dir_refused_before_any_write(small_copy, tmp_path, value):
    elsewhere = tmp_path / "elsewhere"
    target = str(elsewhere) if value == "ABSOLUTE" else value
    proc = _run_with_config(small_copy, lambda text: text.replace("results_dir: results", f"results_dir: {target}"))
    assert proc.returncode != 0
    assert "results_dir" in proc.stdout, proc.stdout[-2000:]
    assert not elsewhere.exists()


@pytest.mark.slow
def test_e2e_where_without_study_stops_before_jobs(small_copy):
    def edit(text: str) -> str:
        config = yaml.safe_load(text)
        config["analyses"]["primary"]["where"] = {"pain_type": "no_such_type"}
        return yaml.safe_dump(config, sort_keys=False)

    proc = _run_with_config(small_copy, edit)
    assert proc.returncode != 0
    assert "analyses.primary: selects no study" in proc.stdout, proc.stdout[-2000:]
    assert not (small_copy / "results").exists()
