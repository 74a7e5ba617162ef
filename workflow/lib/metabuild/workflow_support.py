"""Helpers the Snakefile calls while it builds the DAG (kept here so rules stay thin).

Data are validated before any job is scheduled: bad input stops the build with one clear
message per problem and no output written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from metabuild import analysis

#: pattern of every name that becomes part of a file path or a registry key
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

DATA_FILES = (
    "studies.csv",
    "pain_scores.csv",
    "binary_outcomes.csv",
    "risk_of_bias.csv",
    "study_flow.csv",
    "grade.csv",
    "published_values.csv",
)

#: descriptive-number topics and the data cells each reads: file -> columns (None: all)
DESCRIPTIVE_INPUTS: dict[str, dict[str, list[str] | None]] = {
    "studies": {
        "studies.csv": ["study_id", "n_ketamine", "n_control", "pain_type", "crps", "setting", "design", "age_years"],
        "pain_scores.csv": ["study_id", "primary"],
    },
    "flow": {"study_flow.csv": None, "studies.csv": ["study_id"]},
    "regimen": {
        "studies.csv": ["study_id", "rate_unit", "rate_mean", "rate_max", "hours_total", "days", "rate_cap_mg_per_h"]
    },
    "risk_of_bias": {"risk_of_bias.csv": None},
    "study_sets": {"studies.csv": None, "risk_of_bias.csv": None, "binary_outcomes.csv": ["study_id", "outcome"]},
    "sample_size": {},
    "protocol": {},
}

#: the data cells read by the jobs that are not analyses (tables, figures)
JOB_INPUTS: dict[str, dict[str, list[str] | None]] = {
    "table1": {"studies.csv": None, "pain_scores.csv": ["study_id", "timepoint", "primary"]},
    "risk_of_bias_plot": {"studies.csv": ["study_id", "label"], "risk_of_bias.csv": None},
}


def cells_digest(dataset: Any, cells: Mapping[str, list[str] | None]) -> str:
    """SHA-256 of the given columns of the given data files (a Snakemake param: the job
    reruns when one of these cells changes, not when another cell of the file does)."""
    digest = hashlib.sha256()
    for file, columns in sorted(cells.items()):
        frame = dataset.table(Path(file).stem).drop(columns=["_row"])
        if columns is not None:
            frame = frame[columns]
        digest.update(file.encode())
        digest.update(frame.to_csv(index=False).encode())
    return digest.hexdigest()


class ConfigError(ValueError):
    """A configuration problem, naming the key."""


def check_config(config: Mapping[str, Any]) -> None:
    """Checks the JSON schema cannot express: names safe as paths, references resolve."""
    problems = []
    derived = config.get("derived_attributes", {})
    for name, spec in config.get("analyses", {}).items():
        where = f"config/config.yaml: analyses.{name}"
        if not SAFE_NAME.match(name):
            problems.append(f"{where}: analysis name must match {SAFE_NAME.pattern} (it becomes a file name)")
        moderator = spec.get("moderator")
        if moderator and moderator not in derived:
            problems.append(
                f"{where}.moderator: {moderator!r} is not a derived attribute (known: {', '.join(sorted(derived))})"
            )
        figure = spec.get("figure")
        if figure and not SAFE_NAME.match(figure):
            problems.append(f"{where}.figure: {figure!r} must match {SAFE_NAME.pattern}")
    for name in derived:
        if not SAFE_NAME.match(name):
            problems.append(f"config/config.yaml: derived_attributes.{name}: name must match {SAFE_NAME.pattern}")
    for name, outcome in config.get("grade", {}).items():
        if outcome["analysis"] not in config.get("analyses", {}):
            problems.append(f"config/config.yaml: grade.{name}.analysis: {outcome['analysis']!r} is not an analysis")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def data_files(data_dir: str) -> list[str]:
    return [f"{data_dir}/{name}" for name in DATA_FILES]


def schema_files(data_dir: str) -> list[str]:
    return [f"{data_dir}/schemas/{Path(name).stem}.schema.json" for name in DATA_FILES]


def outcome_file(spec: Mapping[str, Any]) -> str:
    return "pain_scores.csv" if spec["outcome"] == "pain" else "binary_outcomes.csv"


def _fingerprint(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted([*data_dir.glob("*.csv"), *data_dir.glob("schemas/*.json")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_valid_dataset(data_dir: str, cache_dir: str = ".snakemake/metabuild") -> Any:
    """Validate ``data_dir`` (skipped when its files are byte-identical to the last valid
    state) and load it. Raises a ``WorkflowError`` listing every problem by file, row and
    column: the Snakefile stops before any job runs."""
    from metabuild import data

    directory = Path(data_dir)
    stamp = Path(cache_dir) / "validated.json"
    fingerprint = _fingerprint(directory)
    cached = stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint
    try:
        if not cached:
            data.validate_dataset(directory)
        dataset = data.load_dataset(directory)
    except data.DataValidationError as error:
        from snakemake.exceptions import WorkflowError

        raise WorkflowError(f"the data in {data_dir}/ are not valid; nothing was built.\n{error}") from None
    if not cached:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))
    return dataset


def analysis_digests(analyses: Mapping[str, Any], dataset: Any, config: Mapping[str, Any]) -> dict[str, str]:
    table = analysis.study_table(dataset.studies, config)  # once, not once per analysis
    return {name: analysis.dependency_digest(name, spec, dataset, config, table) for name, spec in analyses.items()}


#: environment variable carrying the planned data hashes from the Snakemake process that planned
#: the build to the job processes it starts (when jobs do not run in that process)
PLANNED_HASHES_VARIABLE = "METABUILD_PLANNED_DATA_SHA256"


class DataChangedError(RuntimeError):
    """A data file changed between planning the build and running (or finishing) a job."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_paths(data_dir: str) -> list[Path]:
    directory = Path(data_dir)
    # every CSV under data/ (the curation outputs too: the sensitivity job reads one) and the schemas
    return sorted([*directory.rglob("*.csv"), *directory.glob("schemas/*.json")])


def planned_data_hashes(data_dir: str, main_process: bool = True) -> dict[str, str]:
    """SHA-256 of every data file (``data_dir/*.csv`` and its schemas) as the build is planned.

    The Snakefile calls this before it loads the dataset, so the DAG (and the per-job digests)
    rest on these bytes or on later ones; :func:`data_as_planned` then refuses a job whose
    data files no longer have them. The main Snakemake process records the hashes and hands
    them to the job processes it starts through the environment (a job process parses the
    Snakefile again, after the edit, and must not take the edited files as planned).
    """
    inherited = os.environ.get(PLANNED_HASHES_VARIABLE)
    if not main_process and inherited:
        return json.loads(inherited)
    hashes = {os.path.normpath(str(path)): _sha256(path) for path in _data_paths(data_dir)}
    if main_process:
        os.environ[PLANNED_HASHES_VARIABLE] = json.dumps(hashes)
    return hashes


def check_planned_data(planned: Mapping[str, str], paths: Iterable[Any], when: str = "") -> None:
    """Raise :class:`DataChangedError` naming each of ``paths`` (a job's inputs) that is a data
    file whose bytes differ from the planned ones (or that has gone). Paths that are not data
    files (scripts, results) are Snakemake's to track."""
    problems = []
    for path in paths:
        name = os.path.normpath(str(path))
        if name not in planned:
            continue
        now = _sha256(Path(name)) if Path(name).exists() else "(file missing)"
        if now != planned[name]:
            problems.append(
                f"{name} changed after the build was planned{when} (planned sha256 {planned[name]}, now {now}); "
                "rerun snakemake"
            )
    if problems:
        raise DataChangedError("\n".join(problems))


@contextmanager
def data_as_planned(planned: Mapping[str, str], paths: Iterable[Any]) -> Iterator[None]:
    """Run a job only on the data the DAG was planned on: its data inputs are checked before
    the job (a file edited since planning: the job does not start) and after it (a file edited
    while the job ran: the job fails, and Snakemake deletes its outputs). Either way the build
    stops with the file's name instead of mixing old and new data in one set of results."""
    paths = list(paths)
    check_planned_data(planned, paths)
    yield
    check_planned_data(planned, paths, when=", during this job")


def descriptive_settings(topic: str, config: Mapping[str, Any]) -> dict:
    """The configuration a descriptive topic reads (its Snakemake params)."""
    if topic == "sample_size":
        return dict(config["sample_size"])
    if topic == "protocol":
        return {k: dict(v) for k, v in config["protocol"].items()}
    if topic == "regimen":
        return {
            "reference_weight_kg": config["protocol"]["reference_weight_kg"]["value"],
            "high_dose_threshold_mg": config["protocol"]["high_dose_threshold_mg"]["value"],
        }
    if topic == "risk_of_bias":
        return {"key_domains": list(config["risk_of_bias"]["key_domains"])}
    if topic == "study_sets":
        return {
            "study_sets": {k: dict(v) for k, v in config.get("study_sets", {}).items()},
            "derived_attributes": {k: dict(v) for k, v in config.get("derived_attributes", {}).items()},
            "protocol": {"reference_weight_kg": dict(config["protocol"]["reference_weight_kg"])},
            "key_domains": list(config["risk_of_bias"]["key_domains"]),
        }
    return {}


def check_study_sets(config: Mapping[str, Any], dataset: Any) -> None:
    """Every attribute a study set filters on exists (a column, computed or derived attribute,
    or risk_of_bias.<domain>): checked before any job runs, naming the configuration key."""
    from metabuild import describe

    settings = descriptive_settings("study_sets", config)
    table = describe.study_set_table(dataset, settings)
    problems = [
        f"config/config.yaml: study_sets.{name}.where.{attribute}: {attribute!r} is not a study attribute "
        f"(a column of studies.csv, a derived attribute, or risk_of_bias.<domain>)"
        for name, spec in settings["study_sets"].items()
        for attribute in spec["where"]
        if attribute not in table.columns
    ]
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def manuscript_support_files() -> list[str]:
    """Files besides the .qmd that shape the rendered documents."""
    root = Path("manuscript")
    patterns = ["_quarto.yml", "*.bib", "csl/*.csl", "filters/*.lua", "templates/*", "typst/*", "css/*.css", "*.css"]
    return sorted(str(p) for pattern in patterns for p in root.glob(pattern))
