"""What a review declares in its configuration (metabuild.review) instead of the library knowing
it: arms, continuous outcomes, its own module; analyses filtering and grouping on any study
attribute, risk-of-bias judgements included; one clear error naming the key when a piece is missing."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml

from metabuild import analysis, describe, review, workflow_support
from metabuild.data import load_dataset, validate_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
CONFIG["review_module"] = str(ROOT / "config" / "review_module.py")


@pytest.fixture(scope="module")
def data():
    return load_dataset(ROOT / "data")


def test_the_library_names_no_particular_review():
    found = []
    for folder in ("workflow/lib", "workflow/scripts", "workflow/rules"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".smk", ".json", ".yaml", ".qmd", ".csv", ".md"}:
                if re.search("ketamine", path.read_text(encoding="utf-8"), re.IGNORECASE):
                    found.append(str(path.relative_to(ROOT)))
    assert found == []


def test_exclude_trials_at_high_risk_of_bias_is_one_line_of_config(data):
    spec = {**CONFIG["analyses"]["primary"], "where": {"risk_of_bias.overall": ["low", "unclear"]}}
    spec.pop("leave_one_out"), spec.pop("bias_tests")
    result = analysis.run_analysis("low_risk", spec, data, CONFIG)
    table = describe.study_set_table(data, CONFIG)
    high = set(table.loc[table["risk_of_bias.overall"] == "high", "study_id"])
    everyone = set(analysis.run_analysis("primary", CONFIG["analyses"]["primary"], data, CONFIG)["study_ids"])
    assert high and high <= everyone  # the filter has something to remove
    assert set(result["study_ids"]) == everyone - high
    assert result["pooled"]["k"] == len(everyone - high)


def test_a_risk_of_bias_judgement_can_be_the_moderator(data):
    spec = {"outcome": "pain", "timepoint": "primary", "measure": "MD", "method": "DL"}
    result = analysis.run_analysis("by_detection", {**spec, "moderator": "risk_of_bias.blinding_outcome"}, data, CONFIG)
    levels = {s["level"] for s in result["subgroups"]}
    assert levels <= {"low", "unclear", "high"} and len(levels) == 2
    assert result["metareg"]["p"] is not None
    assert sum(s["pooled"]["k"] for s in result["subgroups"]) == result["pooled"]["k"]


def test_a_numeric_column_as_moderator_is_a_meta_regression(data):
    spec = {"outcome": "pain", "timepoint": "primary", "measure": "MD", "method": "DL", "moderator": "age_years"}
    result = analysis.run_analysis("by_age", spec, data, CONFIG)
    assert result["metareg"]["continuous"] and "subgroups" not in result
    assert result["numbers"]["by_age.metareg.slope"]["value"] == result["metareg"]["coef"][1]


def test_an_unknown_filter_attribute_names_the_config_key(data):
    bad = copy.deepcopy(CONFIG)
    bad["analyses"]["primary"]["where"] = {"risk_of_bias.no_such_domain": "high"}
    with pytest.raises(workflow_support.ConfigError, match=r"analyses\.primary\.where\.risk_of_bias\.no_such_domain"):
        workflow_support.check_config_against_data(bad, data)


def test_missing_arms_is_one_error_naming_the_key():
    bad = {k: v for k, v in CONFIG.items() if k != "arms"}
    with pytest.raises(workflow_support.ConfigError, match=r"config/config.yaml: arms: missing"):
        workflow_support.check_config(bad, ROOT)


def test_a_missing_review_module_is_one_error_naming_the_key():
    bad = {**CONFIG, "review_module": "config/no_such_module.py"}
    with pytest.raises(workflow_support.ConfigError, match=r"review_module: 'config/no_such_module.py' is not a file"):
        workflow_support.check_config(bad, ROOT)


def test_the_review_module_checks_what_it_needs():
    bad = copy.deepcopy(CONFIG)
    del bad["protocol"]["reference_weight_kg"]
    with pytest.raises(workflow_support.ConfigError, match=r"protocol\.reference_weight_kg\.value"):
        workflow_support.check_config(bad, ROOT)


def test_a_computed_column_without_the_module_names_the_derived_attribute(data):
    bad = {k: v for k, v in copy.deepcopy(CONFIG).items() if k != "review_module"}
    with pytest.raises(
        workflow_support.ConfigError, match=r"derived_attributes\.dose_class\.column.*cumulative_dose_mg"
    ):
        workflow_support.check_config_against_data(bad, data)


def test_an_undeclared_outcome_is_one_error_naming_the_key(data):
    bad = copy.deepcopy(CONFIG)
    del bad["outcomes"]
    with pytest.raises(workflow_support.ConfigError, match=r"analyses\.primary\.outcome: 'pain' is neither"):
        workflow_support.check_config_against_data(bad, data)


def test_tables_other_than_studies_are_optional(tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(ROOT / "data", data_dir, ignore=shutil.ignore_patterns("curation"))
    for name in ("pain_scores", "study_flow", "grade"):
        (data_dir / f"{name}.csv").unlink()
        (data_dir / "schemas" / f"{name}.schema.json").unlink()
    # the flow and the grade profile go with their files; the binary outcomes remain
    validate_dataset(data_dir)
    dataset = load_dataset(data_dir)
    assert dataset.pain_scores.empty and len(dataset.binary_outcomes) > 0
    assert workflow_support.present_data_files(str(data_dir)) == [
        "studies.csv",
        "binary_outcomes.csv",
        "risk_of_bias.csv",
        "published_values.csv",
    ]


def test_arms_come_from_the_configuration(data):
    renamed = {
        **CONFIG,
        "arms": {"intervention": {"id": "ketamine", "label": "Drug X"}, "comparator": CONFIG["arms"]["comparator"]},
    }
    result = analysis.run_analysis("nausea", CONFIG["analyses"]["nausea"], data, renamed)
    assert result["arms"][0] == {"id": "ketamine", "label": "Drug X"}
    assert result["favours"][0] == "Favours Drug X"
    assert review.arm_ids(renamed) == ("ketamine", "control")


def test_table1_columns_from_config_when_the_review_has_no_module(data):
    from metabuild.tables import characteristics_table, markdown_table

    config = {k: v for k, v in CONFIG.items() if k != "review_module"}
    config["table1"] = {"columns": {"Design": "design", "Setting": "setting", "Women (%)": "female_percent"}}
    assert workflow_support.table_inputs(config) == {
        "table1": {"studies.csv": ["study_id", "label", "citation_key", "design", "setting", "female_percent"]}
    }
    frame = characteristics_table(data.studies, config["table1"]["columns"])
    assert list(frame.columns) == ["Trial", "Design", "Setting", "Women (%)"]
    assert list(frame["Setting"]) == list(data.studies["setting"])
    assert "[@" + data.studies["citation_key"].iloc[0] + "]" in markdown_table(frame)
