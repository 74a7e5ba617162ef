"""Unit tests of the pipeline's own pieces: number formatting, published-value comparison,
the analysis runner (against the statistics functions directly), configuration checks,
the number registry, and the dependency digests that drive Snakemake's reruns."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from metabuild import analysis, compare, formatting, registry, workflow_support
from metabuild.data import load_dataset
from metabuild.stats import effects, pooling

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.fixture(scope="module")
def real_data():
    if not (ROOT / "data" / "pain_scores.csv").exists():
        pytest.skip("data/pain_scores.csv not present yet")
    return load_dataset(ROOT / "data")


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.029, "= .029"), (0.0004, "< .001"), (0.2134, "= .213"), (0.9999, "> .99"), (0.001, "= .001")],
)
def test_format_p(p, text):
    assert formatting.format_p(p) == text


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (-1.834, "estimate", "\u22121.83"),
        (48.49, "i2", "48.5%"),
        (-0.001, "estimate", "0.00"),
        (2.4349, "ratio", "2.43"),
        (211, "count", "211"),
        (51.515, "percent", "51.5%"),
    ],
)
def test_format_number(value, kind, text):
    assert formatting.format_number(value, kind) == text


@pytest.mark.parametrize(
    ("reproduced", "printed", "decimals", "expected"),
    [
        (-1.834, "\u22121.83", 2, True),
        (-1.826, "\u22121.83", 2, True),
        (-1.824, "\u22121.83", 2, False),
        (0.00004, "< .0001", None, True),
        (0.0003, "< .0001", None, False),
        (48.46, "48.5%", 1, True),
        (45.9, "48.5%", 1, False),
    ],
)
def test_within_rounding(reproduced, printed, decimals, expected):
    assert compare.within_rounding(reproduced, printed, decimals) is expected


def test_primary_analysis_equals_direct_pooling(real_data):
    spec = CONFIG["analyses"]["primary"]
    result = analysis.run_analysis("primary", spec, real_data, CONFIG)
    rows = real_data.pain_scores[real_data.pain_scores["primary"].astype(bool)]
    k = rows[rows.arm == "ketamine"].set_index("study_id")
    c = rows[rows.arm == "control"].set_index("study_id").loc[k.index]
    es = effects.mean_difference(k["mean"], k["sd"], k["n"], c["mean"], c["sd"], c["n"])
    direct = pooling.dersimonian_laird(es.yi, es.vi)
    assert result["pooled"]["estimate"] == pytest.approx(direct.estimate, abs=1e-12)
    assert result["pooled"]["i2"] == pytest.approx(direct.i2, abs=1e-12)
    assert sorted(result["study_ids"]) == sorted(k.index)
    assert sum(s["weight"] for s in result["studies"]) == pytest.approx(100)
    # every registry number names its kind, and the subgroup P comes from meta-regression
    assert result["numbers"]["primary.estimate"]["kind"] == "estimate"


def test_subgroup_levels_follow_derived_attribute(real_data):
    result = analysis.run_analysis("dose", CONFIG["analyses"]["dose"], real_data, CONFIG)
    levels = {s["level"]: {x["study_id"] for x in s["studies"]} for s in result["subgroups"]}
    table = analysis.study_table(real_data.studies, CONFIG).set_index("study_id")
    for level, ids in levels.items():
        assert all(table.loc[i, "dose_class"] == level for i in ids)
    assert "dose.metareg.p" in result["numbers"]


def test_digest_changes_only_for_dependent_analyses(real_data):
    """Editing one pain cell moves the digest of exactly the analyses that read its row (as
    their results record); the row is one the primary analysis reads, whichever trial that is."""
    before = workflow_support.analysis_digests(CONFIG["analyses"], real_data, CONFIG)
    used = {
        name: set(analysis.run_analysis(name, spec, real_data, CONFIG)["data_rows"].get("pain_scores.csv", []))
        for name, spec in CONFIG["analyses"].items()
    }
    frame = real_data.pain_scores
    edited = min(used["primary"])
    changed = copy.deepcopy(real_data)
    row = changed.pain_scores.index[changed.pain_scores["_row"] == edited][0]
    changed.pain_scores.loc[row, "sd"] = frame.loc[row, "sd"] + 0.5
    after = workflow_support.analysis_digests(CONFIG["analyses"], changed, CONFIG)
    moved = {name for name in before if before[name] != after[name]}
    assert moved == {name for name, rows in used.items() if edited in rows}
    assert "primary" in moved and not moved & {n for n, s in CONFIG["analyses"].items() if s["outcome"] != "pain"}


def test_digest_of_moderator_column(real_data):
    """Editing a study's setting moves only the analyses that group or filter by an attribute
    resting on the setting column (from the configuration)."""
    before = workflow_support.analysis_digests(CONFIG["analyses"], real_data, CONFIG)
    study = analysis.run_analysis("setting", CONFIG["analyses"]["setting"], real_data, CONFIG)["study_ids"][0]
    changed = copy.deepcopy(real_data)
    at = changed.studies.index[changed.studies["study_id"] == study][0]
    changed.studies.loc[at, "setting"] = (
        "outpatient" if changed.studies.loc[at, "setting"] == "inpatient" else "inpatient"
    )
    after = workflow_support.analysis_digests(CONFIG["analyses"], changed, CONFIG)
    readers = {
        name
        for name, spec in CONFIG["analyses"].items()
        if any(
            "setting" in analysis.attribute_columns(a, CONFIG)
            for a in [*(spec.get("where") or {}), *filter(None, [spec.get("moderator")])]
        )
    }
    assert "setting" in readers
    assert {n for n in before if before[n] != after[n]} == readers


def test_config_check_rejects_unsafe_and_dangling_names(real_data):
    bad = copy.deepcopy(CONFIG)
    bad["analyses"]["../evil"] = bad["analyses"]["primary"]
    with pytest.raises(workflow_support.ConfigError) as error:
        workflow_support.check_config(bad)
    assert "analyses.../evil" in str(error.value)
    # a moderator may be any study attribute, so an unknown one is found against the data
    bad = copy.deepcopy(CONFIG)
    bad["analyses"]["primary"] = dict(bad["analyses"]["primary"], moderator="no_such_attribute")
    with pytest.raises(workflow_support.ConfigError) as error:
        workflow_support.check_config_against_data(bad, real_data)
    assert "analyses.primary.moderator" in str(error.value) and "no_such_attribute" in str(error.value)


def test_registry_formats_and_joins_published(tmp_path):
    source = tmp_path / "a.json"
    source.write_text(
        json.dumps(
            {
                "numbers": {"x.estimate": {"value": -1.8349, "kind": "estimate"}, "x.p": {"value": 2e-5, "kind": "p"}},
                "provenance": {"job": "run_analysis[analysis=x]", "rule": "run_analysis"},
            }
        )
    )
    published = tmp_path / "published.csv"
    published.write_text(
        "key,printed,value,kind,decimals,location,note\n"
        "x.estimate,\u22121.83,-1.83,estimate,2,Abstract,\n"
        "x.p,< .0001,,p,,Results,\n"
    )
    reg = registry.build_registry([source], published)
    entry = reg["numbers"]["x.estimate"]
    assert entry["text"] == "\u22121.83"
    assert entry["published"][0]["matches"] is True
    assert reg["numbers"]["x.p"]["text"] == "< .001"
    assert registry.resolve(reg)["numbers"]["x.estimate"]["provenance"]["rule"] == "run_analysis"


def test_registry_refuses_a_key_produced_twice(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(
            json.dumps({"numbers": {"x.k": {"value": 1, "kind": "count"}}, "provenance": {"job": name, "rule": name}})
        )
    (tmp_path / "p.csv").write_text("key,printed,value,kind,decimals,location,note\n")
    with pytest.raises(ValueError, match="produced twice"):
        registry.build_registry([tmp_path / "a.json", tmp_path / "b.json"], tmp_path / "p.csv")


def test_cumulative_dose_classes_match_paper(real_data):
    """The computed dose class of each of the article's trials is the one the article states
    (Results, Dose-Response); trials added to data/ later are not the article's to judge."""
    published = json.loads((ROOT / "tests" / "fixtures" / "published_article.json").read_text())["dose_class"]
    table = analysis.study_table(real_data.studies, CONFIG).set_index("study_id")
    computed = {sid: table.loc[sid, "dose_class"] for sid in published if sid in table.index}
    assert computed == {sid: cls for sid, cls in published.items() if sid in table.index}
    assert len(computed) >= 2  # the check is about something: the flagship's trials are there
    assert np.all(table["cumulative_dose_mg"] > 0)
