"""Validation of data/: a valid fixture passes; each bad-input class is reported with file, row, column.

Each case copies tests/fixtures/valid_data/ and the repository's data/schemas/ into a temporary
directory, breaks exactly one thing, and asserts that the specific problem is reported.
Row numbers follow the spreadsheet convention: header = row 1, first data row = row 2.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from metabuild.data import (
    FILES,
    DataValidationError,
    Problem,
    load_dataset,
    validate_dataset,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "valid_data"
SCHEMAS = REPO / "data" / "schemas"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(FIXTURE, d)
    shutil.copytree(SCHEMAS, d / "schemas")
    return d


# --------------------------------------------------------------------------------------------------
# helpers that break one thing


def _read(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _write(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def set_cell(file: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    """Set the cell at file row ``row`` (header = 1) of ``column``."""

    def mutate(d: Path) -> None:
        rows = _read(d / file)
        rows[row - 1][rows[0].index(column)] = value
        _write(d / file, rows)

    return mutate


def set_cells(*changes: tuple[str, int, str, str]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        for change in changes:
            set_cell(*change)(d)

    return mutate


def rename_column(file: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        rows[0][rows[0].index(old)] = new
        _write(d / file, rows)

    return mutate


def drop_column(file: str, column: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        i = rows[0].index(column)
        _write(d / file, [r[:i] + r[i + 1 :] for r in rows])

    return mutate


def add_column(file: str, column: str, value: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        _write(d / file, [rows[0] + [column]] + [r + [value] for r in rows[1:]])

    return mutate


def delete_row(file: str, row: int) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        del rows[row - 1]
        _write(d / file, rows)

    return mutate


def append_copy_of_row(file: str, row: int) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        _write(d / file, rows + [list(rows[row - 1])])

    return mutate


def add_cell(file: str, row: int, value: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        rows[row - 1].append(value)
        _write(d / file, rows)

    return mutate


def keep_header_only(file: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        _write(d / file, _read(d / file)[:1])

    return mutate


def write_bytes(file: str, content: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        path = d / file
        path.write_bytes(content(path.read_bytes()) if callable(content) else content)

    return mutate


def delete_file(file: str) -> Callable[[Path], None]:
    return lambda d: (d / file).unlink()


def latin1_cell(file: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    """Re-encode the whole file as Latin-1 after putting a non-ASCII ``value`` in one cell."""

    def mutate(d: Path) -> None:
        set_cell(file, row, column, value)(d)
        path = d / file
        path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))

    return mutate


def semicolons(file: str) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        rows = _read(d / file)
        buf = io.StringIO()
        csv.writer(buf, delimiter=";", lineterminator="\n").writerows(rows)
        (d / file).write_text(buf.getvalue(), encoding="utf-8")

    return mutate


# --------------------------------------------------------------------------------------------------
# the bad-input classes: (id, mutation, file, row, column, message contains, expected contains)

P, B, S, R = "pain_scores.csv", "binary_outcomes.csv", "studies.csv", "risk_of_bias.csv"
V, F = "published_values.csv", "study_flow.csv"
ID_EXPECTED = "a lower-case id matching ^[a-z][a-z0-9_]*$"

# fmt: off
CASES = [
    # file level
    ("missing_file", delete_file("published_values.csv"), "published_values.csv", None, None,
     "file is missing", "a CSV file"),
    ("zero_bytes", write_bytes("study_flow.csv", b""), "study_flow.csv", None, None,
     "file is empty (0 bytes)", "a header row"),
    ("header_only", keep_header_only("grade.csv"), "grade.csv", None, None,
     "file has a header but no data rows", "at least one data row"),
    ("latin1_encoding", latin1_cell(S, 3, "first_author", "Müller"), S, 3, "first_author",
     "byte 0xfc is not valid UTF-8", "UTF-8"),
    ("utf8_bom", write_bytes(P, lambda b: b"\xef\xbb\xbf" + b), P, 1, None,
     "byte-order mark (BOM)", "UTF-8 without BOM"),
    ("semicolon_delimiter", semicolons("study_flow.csv"), "study_flow.csv", 1, None,
     "columns are separated by semicolons, not commas", "comma-separated values"),
    ("missing_column", drop_column(P, "sd"), P, 1, "sd",
     "column is missing from the header", 'a column named "sd"'),
    ("misspelt_column", rename_column(B, "study_id", "studyid"), B, 1, "studyid",
     'misspelt column name: did you mean "study_id"?', '"study_id"'),
    ("extra_unknown_column", add_column(S, "comment", "x"), S, 1, "comment",
     "unknown column", "only the columns of the schema"),
    ("whitespace_in_id", set_cell(P, 4, "study_id", "alpha2010 "), P, 4, "study_id",
     "leading/trailing whitespace", "'alpha2010' without surrounding spaces"),
    ("whitespace_in_enum", set_cell(B, 3, "arm", " control"), B, 3, "arm",
     "leading/trailing whitespace", "'control' without surrounding spaces"),
    # row level (schema)
    ("text_in_numeric", set_cell(P, 3, "mean", "n/a"), P, 3, "mean",
     '"n/a" is not a number', "a number from 0 to 10"),
    ("text_in_integer", set_cell(S, 2, "year", "2010a"), S, 2, "year",
     '"2010a" is not an integer', "an integer from 1900 to 2100"),
    ("negative_sd", set_cell(P, 7, "sd", "-1.2"), P, 7, "sd",
     "-1.2 is not > 0", "a number > 0"),
    ("mean_above_10", set_cell(P, 5, "mean", "48"), P, 5, "mean",
     "48 is not <= 10", "a number from 0 to 10"),
    ("zero_n", set_cell(P, 2, "n", "0"), P, 2, "n",
     "0 is not >= 1", "an integer from 1 to 1000000"),
    ("negative_events", set_cell(B, 4, "events", "-1"), B, 4, "events",
     "-1 is not >= 0", "an integer from 0 to 1000000"),
    ("enum_arm_placebo", set_cell(B, 2, "arm", "placebo"), B, 2, "arm",
     '"placebo" is not an allowed value', "one of: ketamine, control"),
    ("rob_level_moderate", set_cell(R, 5, "judgement", "moderate"), R, 5, "judgement",
     '"moderate" is not an allowed value', "one of: low, unclear, high"),
    ("window_weeks_6", set_cell(P, 3, "window_weeks", "6"), P, 3, "window_weeks",
     '"6" is not an allowed value', "one of: 2, 4, 8, 12"),
    ("boolean_yes", set_cell(S, 2, "crps", "yes"), S, 2, "crps",
     '"yes" is not a boolean', "true or false"),
    ("missing_source", set_cell("study_flow.csv", 3, "source", ""), "study_flow.csv", 3, "source",
     "value is missing", "non-empty text"),
    ("missing_required_number", set_cell(S, 3, "hours_total", ""), S, 3, "hours_total",
     "value is missing", "a number > 0"),
    ("id_with_path_characters", set_cell(S, 2, "study_id", "../evil"), S, 2, "study_id",
     '"../evil" does not match ^[a-z][a-z0-9_]*$', ID_EXPECTED),
    ("id_with_slash", set_cell("study_flow.csv", 2, "stage", "a/b"), "study_flow.csv", 2, "stage",
     '"a/b" does not match', ID_EXPECTED),
    ("id_uppercase", set_cell("grade.csv", 2, "outcome_id", "Pain_primary"), "grade.csv", 2, "outcome_id",
     '"Pain_primary" does not match', ID_EXPECTED),
    ("registry_key_with_slash", set_cell("published_values.csv", 5, "key", "flow/screened"),
     "published_values.csv", 5, "key", '"flow/screened" does not match', "text matching"),
    ("duplicate_row", append_copy_of_row(P, 3), P, 8, None,
     "duplicate row: identical to row 3", "unique rows"),
    ("duplicate_primary_key", set_cells((R, 3, "domain", "random_sequence"), (R, 3, "judgement", "high")),
     R, 3, None, "duplicate primary key (study_id, domain): same as in row 2",
     "a unique combination of study_id, domain"),
    ("duplicate_key_location", set_cells((V, 3, "location", "abstract"), (V, 3, "decimals", "1")),
     V, 3, None, "duplicate primary key (key, location)", "a unique combination"),
    ("extra_cell_in_row", add_cell(P, 3, "oops"), P, 3, None,
     'row has more cells than the header (extra "oops")', "one cell per column"),
    ("too_few_cells", write_bytes(F, lambda b: b.replace(b"800,fixture figure 1", b"800")), F, 3, "source",
     "row has too few cells", "one cell per column"),
    ("blank_row", write_bytes(F, lambda b: b.replace(b"screened", b"\nscreened")), F, 3, None,
     "blank row", "no blank rows"),
    ("non_finite_number", set_cell(P, 2, "sd", "NaN"), P, 2, "sd",
     '"NaN" is not a finite number', "a number > 0"),
    # cross-file
    ("unknown_study_id", set_cells((B, 6, "study_id", "gamma2016"), (B, 7, "study_id", "gamma2016")), B, 6,
     "study_id", 'unknown study "gamma2016"', "a study_id listed in"),
    ("events_more_than_n", set_cell(B, 4, "events", "40"), B, 4, "events",
     "40 events is more than n = 30", "events <= n"),
    ("n_more_than_randomised", set_cell(P, 2, "n", "31"), P, 2, "n",
     "n = 31 is more than the 30 randomised to ketamine", 'n <= n_ketamine of study "alpha2010"'),
    ("binary_n_more_than_randomised", set_cell(B, 7, "n", "21"), B, 7, "n",
     "n = 21 is more than the 20 randomised to control", 'n <= n_control of study "beta2015"'),
    ("missing_arm_outcome", delete_row(B, 6), B, 6, "arm",
     'study "beta2015", outcome "nausea" has a control row but no ketamine row',
     "a ketamine and a control row for each study and outcome"),
    ("missing_arm_timepoint", delete_row(P, 3), P, 2, "arm",
     'study "alpha2010", timepoint "week 1" has a ketamine row but no control row',
     "a ketamine and a control row for each study and timepoint"),
    ("two_primary_time_points", set_cell(P, 2, "primary", "true"), P, 4, "primary",
     'study "alpha2010", arm "ketamine" has a second primary time point (the first is "week 1" in row 2)',
     "exactly one row with primary = true per study and arm"),
    ("no_primary_time_point", set_cell(P, 6, "primary", "false"), P, 6, "primary",
     'study "beta2015", arm "ketamine" has no primary time point', "exactly one row with primary = true"),
    ("primary_differs_between_arms", set_cells((P, 2, "primary", "true"), (P, 4, "primary", "false")),
     P, 5, "primary", 'the primary time point of the control arm ("week 4") differs',
     "the same primary time point"),
    ("missing_rob_domain", delete_row(R, 17), R, None, "domain",
     'study "beta2015" has no row for domain "overall"', "one row per study for each of"),
]


@pytest.mark.parametrize(
    "mutate, file, row, column, message, expected",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_is_reported(data_dir, mutate, file, row, column, message, expected):
    mutate(data_dir)
    with pytest.raises(DataValidationError) as info:
        validate_dataset(data_dir)
    problems = info.value.problems
    hits = [
        p
        for p in problems
        if Path(p.file).name == file and p.row == row and p.column == column and message in p.message
    ]
    assert hits, f"expected a problem {message!r} at {file}, row {row}, column {column}; got:\n{info.value}"
    assert expected in (hits[0].expected or ""), str(hits[0])
    # the message line names file, row and column as the user sees them
    line = str(hits[0])
    assert line.startswith(str(data_dir / file)) or file in line
    if row is not None:
        assert f", row {row}" in line
    if column is not None:
        assert f'column "{column}"' in line
    assert f"(expected {hits[0].expected})" in line


def test_columns_may_come_in_any_order(data_dir):
    rows = _read(data_dir / "grade.csv")
    _write(data_dir / "grade.csv", [r[::-1] for r in rows])
    validate_dataset(data_dir)
    assert load_dataset(data_dir).grade.columns[0] == "outcome_id"


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------------------------------
# valid data, loading, formatting


def test_valid_fixture_passes(data_dir):
    validate_dataset(data_dir)


def test_fixture_has_every_file():
    assert sorted(p.name for p in FIXTURE.glob("*.csv")) == sorted(FILES.values())
    assert sorted(p.name for p in SCHEMAS.glob("*.schema.json")) == sorted(f"{n}.schema.json" for n in FILES)


def test_one_line_per_problem_with_row_convention(data_dir):
    set_cell(P, 7, "sd", "-1.2")(data_dir)
    set_cell(B, 2, "arm", "placebo")(data_dir)
    with pytest.raises(DataValidationError) as info:
        validate_dataset(data_dir)
    lines = str(info.value).splitlines()
    assert "header as row 1" in lines[0]
    assert len(lines) == 1 + len(info.value.problems) == 3
    assert lines[1].endswith('pain_scores.csv, row 7, column "sd": -1.2 is not > 0 (expected a number > 0 and <= 10)')


def test_problem_str_without_row_or_column():
    assert str(Problem("data/x.csv", None, None, "file is missing", "a CSV file")) == (
        "data/x.csv: file is missing (expected a CSV file)"
    )


def test_whitespace_is_not_reported_twice(data_dir):
    set_cell(B, 3, "arm", " control")(data_dir)
    with pytest.raises(DataValidationError) as info:
        validate_dataset(data_dir)
    at_cell = [p for p in info.value.problems if p.row == 3 and p.column == "arm"]
    assert len(at_cell) == 1, info.value


def test_load_dataset_types_and_row_numbers(data_dir):
    ds = load_dataset(data_dir)
    pain = ds.pain_scores
    assert list(pain["_row"]) == [2, 3, 4, 5, 6, 7]
    assert str(pain["n"].dtype) == "Int64"
    assert pain["sd"].dtype == "float64"
    assert str(pain["primary"].dtype) == "boolean"
    assert pain.loc[pain["_row"] == 4, "timepoint"].item() == "week 4"
    assert pd.isna(ds.studies.loc[1, "rate_max"])
    assert pd.isna(ds.studies.loc[1, "age_statistic"])
    assert ds.studies["crps"].tolist() == [True, False]
    assert ds.cite("pain_scores", 4).endswith("pain_scores.csv, row 4")
    assert ds.table("risk_of_bias") is ds.risk_of_bias
    assert len(ds.risk_of_bias) == 16


def test_importing_data_module_does_not_import_frictionless():
    code = "import sys, metabuild.data; print('frictionless' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_repository_data_is_valid():
    data = REPO / "data"
    if not all((data / f).exists() for f in FILES.values()):
        pytest.skip("data/*.csv not written yet")
    validate_dataset(data)
