"""Helpers the Snakefile calls while it builds the DAG (kept here so rules stay thin).

Configuration and data are checked before any job is scheduled: bad input stops the build
with one clear message per problem (naming the config key, or the data file, row and column)
and no output written or deleted.

* :func:`check_config_file` reads ``config/config.yaml`` as YAML *nodes* (nothing is built)
  before Snakemake loads it: Snakemake's loader would run a YTE template (``__use_yte__``:
  Python code in the config), expand an alias bomb, or fail with Python's int-conversion
  traceback on a 5000-digit number, none of them naming the key.
* :func:`check_config`: the checks the JSON schema cannot express (names safe as paths,
  references resolve, every path relative and inside the project, the results folder never a
  source folder, no text with control characters).
* :func:`check_config_against_data`: what needs the data (columns a filter or a derived
  attribute names exist; every analysis selects at least one study with data).

A no-op rebuild repeats none of the costly parts: :func:`validate_config` and
:func:`plan_build` (the data checks and the digests that are the jobs' params) keep their
results in ``.snakemake/metabuild/`` under the SHA-256 of everything they are computed from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from metabuild import review
from metabuild.escape import forbidden_character

# metabuild.analysis (numpy, pandas, the statistics) is imported by the functions that use it:
# a no-op rebuild reads the plan from its cache (:func:`plan_build`) and needs none of it.

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

#: descriptive-number topics of every review and the data cells each reads: file -> columns
#: (None: all); a review's own module adds topics (:func:`descriptive_inputs`)
DESCRIPTIVE_INPUTS: dict[str, dict[str, list[str] | None]] = {
    "studies": {"studies.csv": None},
    "flow": {"study_flow.csv": None, "studies.csv": ["study_id"]},
    "risk_of_bias": {"risk_of_bias.csv": None},
    "study_sets": {"studies.csv": None, "risk_of_bias.csv": None, "binary_outcomes.csv": ["study_id", "outcome"]},
    "sample_size": {},
    "protocol": {},
}

#: the data cells read by the jobs that are not analyses (figures); tables: :func:`table_inputs`
JOB_INPUTS: dict[str, dict[str, list[str] | None]] = {
    "risk_of_bias_plot": {"studies.csv": ["study_id", "label"], "risk_of_bias.csv": None},
}


def descriptive_inputs(config: Mapping[str, Any]) -> dict[str, dict[str, list[str] | None]]:
    """Every descriptive topic of the review (the library's, then its module's) -> cells read.
    A library topic whose settings the configuration does not give (``sample_size``) is left out."""
    present = set(present_data_files(config.get("data_dir", "data")))
    topics = {
        t: {file: columns for file, columns in cells.items() if file in present}
        for t, cells in DESCRIPTIVE_INPUTS.items()
        if (t != "sample_size" or "sample_size" in config) and (t != "flow" or "study_flow.csv" in present)
    }
    for name, (_, cells, _) in review.topics(config).items():
        topics[name] = dict(cells)
    return topics


def table_inputs(config: Mapping[str, Any]) -> dict[str, dict[str, list[str] | None]]:
    """Tables of study characteristics -> data cells read: the review module's tables, or
    ``table1`` from config ``table1.columns`` (header -> studies.csv column)."""
    tables = {name: dict(cells) for name, (_, cells, _) in review.tables(config).items()}
    if not tables and config.get("table1"):
        tables["table1"] = {"studies.csv": ["study_id", "label", "citation_key", *config["table1"]["columns"].values()]}
    return tables


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


CONFIG_FILE = "config/config.yaml"

#: top-level folders of the project that hold sources: the results folder may be none of them,
#: nor inside one (a build must never write over data, code or the manuscript)
SOURCE_FOLDERS = frozenset(
    {
        "benchmarks",
        "config",
        "data",
        "docs",
        "manuscript",
        "profiles",
        "tests",
        "workflow",
        ".ci",
        ".git",
        ".github",
        ".snakemake",
        ".venv",
    }
)

#: limits of the raw configuration file (the real one: 8.6 kB, 240 texts, the longest 62
#: characters, the largest integer 4 digits)
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_VALUES = 100_000  # values after alias expansion: an alias bomb reaches billions
MAX_CONFIG_TEXT = 10_000
MAX_CONFIG_INT_DIGITS = 30
#: longest text a configuration value may hold: titles, labels and level names are printed in
#: figures and tables (the longest real one has 62 characters)
MAX_LABEL_CHARS = 200

_YAML_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("map", "seq", "str", "int", "float", "bool", "null", "merge", "timestamp")
)


def _config_problem(where: str, message: str) -> str:
    return f"{CONFIG_FILE}: {where}: {message}" if where else f"{CONFIG_FILE}: {message}"


def check_config_file(path: str | Path = CONFIG_FILE) -> None:
    """Check the raw configuration file before Snakemake loads it; raise :class:`ConfigError`
    naming the key. Refused: a symbolic link or non-file, more than :data:`MAX_CONFIG_BYTES`,
    YTE templating (``__use_yte__``, which runs Python), tags other than YAML's plain ones
    (``!!python/...``), aliases expanding to more than :data:`MAX_CONFIG_VALUES` values,
    texts longer than :data:`MAX_CONFIG_TEXT` and integers of more than
    :data:`MAX_CONFIG_INT_DIGITS` digits. Only nodes are composed: nothing is constructed."""
    import yaml

    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ConfigError(f"{path}: must be a regular file (not a link or a folder)")
    if not path.is_file():
        raise ConfigError(f"{path}: the configuration file is missing")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size} bytes is more than the {MAX_CONFIG_BYTES} a configuration may have")
    try:
        # libyaml's loader when present: 2 ms instead of 40 for the real file, and it has its own
        # nesting limit
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=loader)
    except RecursionError:
        raise ConfigError(f"{path}: values are nested too deeply") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if root is None:
        raise ConfigError(f"{path}: the configuration file is empty")
    problems: list[str] = []
    try:
        _node_problems(root, "", [MAX_CONFIG_VALUES], problems)
    except _AliasBomb as bomb:
        problems.append(
            f"{bomb.where or '(top level)'}: aliases expand the configuration to more than "
            f"{MAX_CONFIG_VALUES} values (an alias bomb?)"
        )
    except RecursionError:
        problems.append("values are nested too deeply")
    if isinstance(root, yaml.MappingNode):
        for key, _ in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "__use_yte__":
                problems.append("__use_yte__: YTE templates run Python code; write plain YAML")
    if problems:
        raise ConfigError("invalid configuration file:\n  " + "\n  ".join(f"{path}: {p}" for p in problems[:20]))


#: the configuration as validated last (:func:`validate_config`), beside the plan's cache
VALIDATED_CONFIG = "config.json"


def validate_config(config: dict[str, Any], schema: str | Path, cache_dir: str = ".snakemake/metabuild") -> None:
    """Validate ``config`` against the JSON schema in ``schema`` with Snakemake's
    ``snakemake.utils.validate``, which raises naming the key and fills in the schema's
    defaults (``config`` is changed in place).

    That costs 0.08 s of CPU at every start, mostly importing jsonschema. So the validated
    configuration is kept in ``cache_dir/config.json`` under the SHA-256 of the configuration
    as loaded, the schema's bytes and the Snakemake and jsonschema versions; when these are the
    same, the defaults come from there. A configuration that would not come back from JSON as
    the same values (a date, a tuple) is validated every time."""
    from importlib import metadata

    from metabuild.io import write_text

    path = Path(cache_dir) / VALIDATED_CONFIG
    schema = Path(schema)
    digest = hashlib.sha256(b"metabuild validated config 1\0")
    digest.update(json.dumps(config, default=repr).encode() + b"\0")
    digest.update(schema.read_bytes() + b"\0")
    digest.update(f"{metadata.version('snakemake')}\0{metadata.version('jsonschema')}".encode())
    key = digest.hexdigest()
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and record.get("key") == key and isinstance(record.get("config"), dict):
        config.clear()
        config.update(record["config"])
        return
    from snakemake.utils import validate

    validate(config, str(schema))
    text = json.dumps({"key": key, "config": config}, default=repr, indent=1)
    if repr(json.loads(text)["config"]) == repr(config):
        write_text(path, text + "\n")


class _AliasBomb(Exception):
    def __init__(self, where: str):
        self.where = where


def _node_problems(node: Any, where: str, budget: list[int], problems: list[str]) -> None:
    """Walk the composed YAML nodes (an alias is the same node object again, so the walk
    counts the expanded size without building it) and collect problems as 'key: message'."""
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        raise _AliasBomb(where)
    label = where or "(top level)"
    if node.tag not in _YAML_TAGS:
        problems.append(f"{label}: the tag {node.tag!r} is not allowed (plain YAML values only)")
    elif isinstance(node, yaml.ScalarNode):
        if len(node.value) > MAX_CONFIG_TEXT:
            problems.append(f"{label}: a value of {len(node.value)} characters is longer than {MAX_CONFIG_TEXT}")
        elif node.tag.endswith(":int") and sum(ch.isdigit() for ch in node.value) > MAX_CONFIG_INT_DIGITS:
            problems.append(f"{label}: an integer of more than {MAX_CONFIG_INT_DIGITS} digits")
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_problems(item, f"{where}[{i}]", budget, problems)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            child = f"{where}.{name}" if where else str(name)
            _node_problems(key, child, budget, problems)
            _node_problems(value, child, budget, problems)


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            label = f"{where}.{k}" if where else str(k)
            yield label, str(k)
            yield from _strings(v, label)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def _path_problems(key: str, value: Any, project: Path) -> list[str]:
    """A configured path must be relative, without ``..``, and inside the project (also once
    symbolic links are resolved)."""
    if not isinstance(value, str) or not value:
        return [_config_problem(key, "must be a non-empty relative path")]
    pure = PurePosixPath(value)
    if pure.is_absolute() or value.startswith("~") or "\\" in value:
        return [_config_problem(key, f"{value!r} must be a path relative to the project folder")]
    if ".." in pure.parts:
        return [_config_problem(key, f"{value!r} must not contain '..'")]
    root = project.resolve()
    target = (project / value).resolve()
    if target != root and root not in target.parents:
        return [_config_problem(key, f"{value!r} leads outside the project folder (through a symbolic link)")]
    return []


def _under(inner: PurePosixPath, outer: PurePosixPath) -> bool:
    return inner == outer or outer in inner.parents


def check_config(config: Mapping[str, Any], project_dir: str | Path = ".") -> None:
    """Checks the JSON schema cannot express: names safe as paths, references resolve, paths
    confined to the project and the results folder never a source folder, texts without
    control characters and labels of at most :data:`MAX_LABEL_CHARS` characters."""
    problems = []
    project = Path(project_dir)
    derived = config.get("derived_attributes", {})
    for name, spec in config.get("analyses", {}).items():
        where = f"{CONFIG_FILE}: analyses.{name}"
        if not SAFE_NAME.match(name):
            problems.append(f"{where}: analysis name must match {SAFE_NAME.pattern} (it becomes a file name)")
        figure = spec.get("figure")
        if figure and not SAFE_NAME.match(figure):
            problems.append(f"{where}.figure: {figure!r} must match {SAFE_NAME.pattern}")
    for name in derived:
        if not SAFE_NAME.match(name):
            problems.append(f"{CONFIG_FILE}: derived_attributes.{name}: name must match {SAFE_NAME.pattern}")
    for name, outcome in config.get("grade", {}).items():
        if outcome["analysis"] not in config.get("analyses", {}):
            problems.append(f"{CONFIG_FILE}: grade.{name}.analysis: {outcome['analysis']!r} is not an analysis")
    problems += _confinement_problems(config, project)
    try:
        review.arms(config)
        module = review.module(config)
    except review.ReviewConfigError as error:
        problems.append(f"{CONFIG_FILE}: {str(error).removeprefix('config: ')}")
        module = None
    if module is not None and hasattr(module, "check_config"):  # what the review's own code needs
        problems += [_config_problem(*p) for p in module.check_config(config)]
    for where, text in _strings(config, ""):
        bad = forbidden_character(text)
        if bad is not None:
            message = f"contains the control character {bad[1]} at character {bad[0] + 1}"
            problems.append(_config_problem(where, message))
        elif len(text) > MAX_LABEL_CHARS and not where.endswith(".source"):
            problems.append(_config_problem(where, f"{len(text)} characters is more than {MAX_LABEL_CHARS}"))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _confinement_problems(config: Mapping[str, Any], project: Path) -> list[str]:
    problems = []
    paths = {"data_dir": config.get("data_dir"), "results_dir": config.get("results_dir")}
    sensitivity = config.get("sensitivity")
    if isinstance(sensitivity, Mapping) and "pain_scores" in sensitivity:
        paths["sensitivity.pain_scores"] = sensitivity["pain_scores"]
    bad = set()
    for key, value in paths.items():
        found = _path_problems(key, value, project)
        problems += found
        if found:
            bad.add(key)
    if bad & {"data_dir", "results_dir"}:
        return problems
    data = PurePosixPath(os.path.normpath(paths["data_dir"]))
    results = PurePosixPath(os.path.normpath(paths["results_dir"]))
    if not data.parts:  # "."
        problems.append(_config_problem("data_dir", "must be a folder inside the project, not the project itself"))
        return problems
    protected = SOURCE_FOLDERS | {data.parts[0]}
    if str(results) == ".":
        problems.append(_config_problem("results_dir", "must be a folder inside the project, not the project itself"))
    elif results.parts[0] in protected:
        problems.append(
            _config_problem(
                "results_dir",
                f"{paths['results_dir']!r} is inside the source folder {results.parts[0]!r}; "
                f"results go to their own folder (e.g. 'results'), never into {', '.join(sorted(protected))}",
            )
        )
    elif _under(data, results):
        problems.append(_config_problem("data_dir", f"{paths['data_dir']!r} is inside results_dir"))
    if "sensitivity.pain_scores" in paths and "sensitivity.pain_scores" not in bad:
        file = PurePosixPath(os.path.normpath(paths["sensitivity.pain_scores"]))
        if not _under(file, data) or file == data:
            problems.append(
                _config_problem("sensitivity.pain_scores", f"{str(file)!r} must be a CSV file inside data_dir ({data})")
            )
        else:
            problems += _regular_file_problems("sensitivity.pain_scores", project / file)
    return problems


def _regular_file_problems(key: str, path: Path) -> list[str]:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return [_config_problem(key, f"{str(path)!r} does not exist")]
    if stat.S_ISLNK(mode):
        return [_config_problem(key, f"{str(path)!r} is a symbolic link; it must be a regular file")]
    if not stat.S_ISREG(mode):
        return [_config_problem(key, f"{str(path)!r} is not a regular file")]
    return []


def check_config_against_data(config: Mapping[str, Any], dataset: Any) -> None:
    """What the configuration asks of the data, checked before any job runs: the columns a
    derived attribute or a ``where`` filter names exist in studies.csv (or are computed or
    derived), outcomes exist with the right measure, and every analysis selects at least one
    study with both arms. Raises :class:`ConfigError` naming the key."""
    from metabuild import analysis
    from metabuild import data as mdata

    problems = []
    columns = [c for c in dataset.studies.columns if c != mdata.ROW_COLUMN] + list(
        review.computed_column_inputs(config)
    )
    known = set(columns)
    for name, rule in config.get("derived_attributes", {}).items():
        if rule["column"] not in known:
            problems.append(
                _config_problem(
                    f"derived_attributes.{name}.column",
                    f"{rule['column']!r} is not a column of studies.csv (columns: {', '.join(columns)})",
                )
            )
        known.add(name)  # a later attribute may derive from this one
    binary = set(dataset.binary_outcomes["outcome"].dropna()) if "outcome" in dataset.binary_outcomes else set()
    continuous = review.continuous_outcomes(config)
    table = None
    if not problems:
        table = analysis.study_table(dataset.studies, config, dataset.risk_of_bias)
        known |= {c for c in table.columns if c.startswith(analysis.RISK_OF_BIAS_PREFIX)}
    for name, spec in config.get("analyses", {}).items():
        where = f"analyses.{name}"
        attributes = [*spec.get("where", {}), *([spec["moderator"]] if spec.get("moderator") else [])]
        unknown = [c for c in attributes if c not in known]
        for column in unknown:
            key = f"{where}.where.{column}" if column in spec.get("where", {}) else f"{where}.moderator"
            problems.append(
                _config_problem(
                    key,
                    f"{column!r} is not a column of studies.csv, a derived attribute nor risk_of_bias.<domain> "
                    f"(known: {', '.join(sorted(known))})",
                )
            )
        outcome, measure = spec["outcome"], spec["measure"]
        if outcome not in continuous and outcome not in binary:
            problems.append(
                _config_problem(
                    f"{where}.outcome",
                    f"{outcome!r} is neither a continuous outcome of config `outcomes` "
                    f"({', '.join(continuous) or 'none declared'}) nor an outcome of binary_outcomes.csv",
                )
            )
            continue
        wanted = ("MD", "SMD") if outcome in continuous else ("RR", "OR", "RD")
        if measure not in wanted:
            problems.append(
                _config_problem(f"{where}.measure", f"{outcome!r} is analysed as {' or '.join(wanted)}, not {measure}")
            )
            continue
        if unknown or table is None:
            continue
        _, outcome_file, rows, _ = analysis.analysis_rows(name, spec, dataset, config, table)
        by_study = rows.groupby("study_id")
        usable = by_study["arm"].nunique() == 2
        if measure == "RR":  # a study with no event in either arm has no risk ratio
            usable &= by_study["events"].sum() > 0
        if not usable.any():
            filters = spec.get("where", {})
            problems.append(
                _config_problem(
                    where,
                    f"selects no study with both arms (and, for a risk ratio, an event) in {outcome_file} "
                    f"for outcome {outcome!r}"
                    + (f" at time point {spec.get('timepoint')!r}" if outcome in continuous else "")
                    + (f" (where: {dict(filters)})" if filters else ""),
                )
            )
    domains = set(dataset.grade["domain"].dropna()) if config.get("grade") else set()
    for name in config.get("grade", {}):
        have = set(dataset.grade.loc[dataset.grade["outcome_id"] == name, "domain"])
        if not have or have != domains:
            missing = ", ".join(sorted(domains - have)) or "all"
            problems.append(
                _config_problem(f"grade.{name}", f"grade.csv has no judgement of {missing} for outcome_id {name!r}")
            )
    if problems:
        raise ConfigError("the configuration does not fit the data:\n  " + "\n  ".join(problems))


def present_data_files(data_dir: str) -> list[str]:
    """The data files of :data:`DATA_FILES` this review has (a table is present when its schema is)."""
    return [name for name in DATA_FILES if (Path(data_dir) / "schemas" / f"{Path(name).stem}.schema.json").exists()]


def data_files(data_dir: str) -> list[str]:
    return [f"{data_dir}/{name}" for name in present_data_files(data_dir)]


def schema_files(data_dir: str) -> list[str]:
    return [f"{data_dir}/schemas/{Path(name).stem}.schema.json" for name in present_data_files(data_dir)]


def outcome_file(spec: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> str:
    """The data file holding an analysis' outcome (config ``outcomes``; binary otherwise)."""
    return review.outcome_spec(config or {}, spec["outcome"])["file"]


def _fingerprint(data_dir: Path, extra: Mapping[str, str] | None = None) -> str:
    digest = hashlib.sha256()
    paths = sorted([*data_dir.glob("*.csv"), *data_dir.glob("schemas/*.json")])
    for path in paths + [Path(p) for p in sorted(extra or {})]:
        digest.update(str(path).encode() if path not in paths else path.name.encode())
        if path.is_symlink() or not path.is_file():
            # never followed nor read: validation reports it (and runs, as the stamp differs)
            digest.update(b"\0not a regular file\0")
            continue
        digest.update(path.read_bytes())
    return digest.hexdigest()


def extra_tables(config: Mapping[str, Any]) -> dict[str, str]:
    """Data files outside the data folder's fixed set that jobs read, with the table whose
    schema they follow: the sensitivity analysis' pain scores."""
    sensitivity = config.get("sensitivity") or {}
    return {sensitivity["pain_scores"]: "pain_scores"} if "pain_scores" in sensitivity else {}


def load_valid_dataset(
    data_dir: str, cache_dir: str = ".snakemake/metabuild", extra: Mapping[str, str] | None = None
) -> Any:
    """Validate ``data_dir`` and the ``extra`` files (path -> table whose schema they follow),
    skipped when all are byte-identical to the last valid state, and load the dataset. Raises
    a ``WorkflowError`` listing every problem by file, row and column: the Snakefile stops
    before any job runs."""
    from metabuild import data

    directory = Path(data_dir)
    stamp = Path(cache_dir) / "validated.json"
    fingerprint = _fingerprint(directory, extra)
    cached = stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint
    try:
        if not cached:
            data.validate_dataset(directory)
            for path, table in sorted((extra or {}).items()):
                data.validate_table(Path(path), table, directory / "schemas")
        dataset = data.load_dataset(directory)
    except data.DataValidationError as error:
        from snakemake.exceptions import WorkflowError

        raise WorkflowError(f"the data in {data_dir}/ are not valid; nothing was built.\n{error}") from None
    if not cached:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"fingerprint": fingerprint}))
    return dataset


def analysis_digests(analyses: Mapping[str, Any], dataset: Any, config: Mapping[str, Any]) -> dict[str, str]:
    from metabuild import analysis

    table = analysis.study_table(dataset.studies, config)  # once, not once per analysis
    return {name: analysis.dependency_digest(name, spec, dataset, config, table) for name, spec in analyses.items()}


# ------------------------------------------------------------------------- the build's plan
#: the plan's cache (:func:`plan_build`), beside the data validation's in ``cache_dir``
PLAN_CACHE = "plan.json"
#: changed whenever the plan's contents or their meaning change: an older cache is recomputed
PLAN_FORMAT = "metabuild plan 1"


@dataclass(frozen=True)
class BuildPlan:
    """What the Snakefile derives from the configuration and the data before the DAG is built:
    the digests that are Snakemake params, so that a job reruns when (and only when) a data
    cell or configuration entry it reads changes.

    ``analyses``: analysis -> :func:`metabuild.analysis.dependency_digest`; ``descriptive``:
    descriptive topic -> :func:`cells_digest` of the cells it reads (:func:`descriptive_inputs`);
    ``tables``: table of study characteristics -> :func:`cells_digest` (:func:`table_inputs`);
    ``jobs``: rule -> :func:`cells_digest` (:data:`JOB_INPUTS`)."""

    analyses: dict[str, str]
    descriptive: dict[str, str]
    tables: dict[str, str]
    jobs: dict[str, str]


def cached_plan(config: Mapping[str, Any], data_dir: str, cache_dir: str = ".snakemake/metabuild") -> BuildPlan | None:
    """The :class:`BuildPlan` that :func:`plan_build` computed and cached for this configuration,
    data, library and review module, all unchanged since; None when one of them changed (the
    build will then most likely run jobs)."""
    return _read_plan(Path(cache_dir) / PLAN_CACHE, _plan_key(config, data_dir, extra_tables(config)))


def plan_build(config: Mapping[str, Any], data_dir: str, cache_dir: str = ".snakemake/metabuild") -> BuildPlan:
    """The :class:`BuildPlan` of ``config`` and ``data_dir``, once the data are valid and fit the
    configuration (:func:`load_valid_dataset`, :func:`check_config_against_data`,
    :func:`check_study_sets`, which raise as documented there).

    Computing it loads every data file with pandas and selects every analysis' rows: 0.3 s of
    CPU, most of what the Snakefile itself cost a no-op rebuild. It is a function of the
    configuration, the bytes of the data files and schemas, the library's and the review
    module's source and the pandas and numpy versions (:func:`_plan_key`), so it is kept in
    ``cache_dir/plan.json`` under the SHA-256 of these (:func:`cached_plan`) and computed again,
    checks included, as soon as one of them differs. It is stored only when none of them changed
    while it was computed (an edit meanwhile must not be cached under the old bytes' key)."""
    extra = extra_tables(config)
    path = Path(cache_dir) / PLAN_CACHE
    key = _plan_key(config, data_dir, extra)
    cached = _read_plan(path, key)
    if cached is not None:
        return cached
    dataset = load_valid_dataset(data_dir, cache_dir=cache_dir, extra=extra)
    check_config_against_data(config, dataset)
    check_study_sets(config, dataset)
    plan = BuildPlan(
        analyses=analysis_digests(config.get("analyses", {}), dataset, config),
        descriptive={topic: cells_digest(dataset, cells) for topic, cells in descriptive_inputs(config).items()},
        tables={table: cells_digest(dataset, cells) for table, cells in table_inputs(config).items()},
        jobs={rule: cells_digest(dataset, cells) for rule, cells in JOB_INPUTS.items()},
    )
    if _plan_key(config, data_dir, extra) == key:
        from metabuild.io import write_text

        write_text(path, json.dumps({"key": key, "plan": dataclasses.asdict(plan)}, indent=1) + "\n")
    return plan


def _plan_key(config: Mapping[str, Any], data_dir: str, extra: Mapping[str, str]) -> str:
    """SHA-256 of everything a :class:`BuildPlan` is computed from: the configuration (its
    order too), the data files and schemas (:func:`_fingerprint`), every module of this library,
    the review's own module (config ``review_module``) and the Python files beside it, and the
    versions of Python, pandas and numpy (the digests print values with pandas)."""
    from importlib import metadata

    digest = hashlib.sha256(PLAN_FORMAT.encode() + b"\0")
    digest.update(json.dumps(config, default=repr).encode() + b"\0")
    digest.update(_fingerprint(Path(data_dir), extra).encode() + b"\0")
    library = Path(__file__).resolve().parent
    sources = [(path.relative_to(library).as_posix(), path) for path in sorted(library.rglob("*.py"))]
    if config.get("review_module"):
        # the module and the Python files beside it, which it may import
        module = Path(config["review_module"])
        beside = sorted(path for path in module.parent.glob("*.py") if path != module)
        sources += [("review_module", module), *((f"review_module/{path.name}", path) for path in beside)]
    for name, path in sources:
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"\0missing\0")
    versions = [sys.version, *(metadata.version(package) for package in ("pandas", "numpy"))]
    digest.update("\0".join(versions).encode())
    return digest.hexdigest()


def _read_plan(path: Path, key: str) -> BuildPlan | None:
    """The plan cached in ``path`` under ``key``; None when there is none, another key, or
    anything but the plan's own shape (then it is computed again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("plan"), dict):
        return None
    fields = [field.name for field in dataclasses.fields(BuildPlan)]
    plan = record["plan"]
    if sorted(plan) != sorted(fields):
        return None
    for name in fields:
        value = plan[name]
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return None
    return BuildPlan(**{name: plan[name] for name in fields})


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
    if topic in review.topics(config):
        return review.topics(config)[topic][2](config)
    if topic == "studies":
        return {"arms": list(review.arm_ids(config))}
    if topic == "risk_of_bias":
        return {"key_domains": list(config["risk_of_bias"]["key_domains"])}
    if topic == "study_sets":
        sets = {k: dict(v) for k, v in config.get("study_sets", {}).items()}
        # only the derived attributes a set filters on (and those they derive from): a threshold
        # no set uses must not rerun this job
        derived = config.get("derived_attributes", {})
        used, pending = set(), [a for spec in sets.values() for a in spec["where"]]
        while pending:
            name = pending.pop()
            if name in derived and name not in used:
                used.add(name)
                pending.append(derived[name]["column"])
        return {
            "study_sets": sets,
            "derived_attributes": {k: dict(v) for k, v in derived.items() if k in used},
            "review_module": config.get("review_module"),
            "computed_settings": review.computed_settings(config),
            "risk_of_bias": {"key_domains": list(config["risk_of_bias"]["key_domains"])},
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


#: a cross-document reference in a manuscript: [fig-x]{.xref document="supplement"}
_XREF_DOCUMENT = re.compile(r"\{[^{}]*\.xref\b[^{}]*\bdocument=\"([A-Za-z0-9_-]+)\"[^{}]*\}")


def xref_documents(qmd: str | Path) -> list[str]:
    """The other manuscripts a .qmd refers to with ``.xref`` spans (as ``manuscript/<name>.qmd``):
    the rendering prints their figure and table numbers, so it depends on them."""
    path = Path(qmd)
    if not path.is_file():
        return []
    names = sorted(set(_XREF_DOCUMENT.findall(path.read_text(encoding="utf-8"))) - {path.stem})
    return [str(path.with_name(f"{name}.qmd")) for name in names]


#: the inputs of a rule that are code it runs: its job script, the library modules it imports and
#: the review's own module (config review_module)
CODE_INPUTS = ("script", "code", "review_code")


def record_job_code_in_rules(rules: Iterable[Any]) -> list[str]:
    """Append the SHA-256 of each rule's job script and library modules to the code Snakemake
    records for the rule (``rule.run_func_src``); returns the names of the rules changed.

    Snakemake takes a ``run:`` rule's code to be the text of its ``run:`` block: here one line,
    ``run_job(...)``, the same for every rule, which hands the script to the worker pool. So
    after a script is edited, ``--list-changes code`` printed nothing, ``--rerun-triggers code``
    reran nothing and ``--summary`` blamed only modification times. With the hashes in the
    recorded code those tools see an edit to the script or to a library module it imports,
    by content: saving a file unchanged lists nothing. Snakemake's code check for ``script:``
    rules compares modification times instead. Called once all rules are defined (Snakefile).
    """
    changed = []
    for rule in rules:
        if not hasattr(rule, "run_func_src"):
            # the attribute Snakemake 9 reads a run: rule's code from; without it the
            # tools would again be blind to script edits, so say so rather than go on silently
            raise RuntimeError(
                f"rule {rule.name}: this Snakemake has no Rule.run_func_src; "
                "metabuild.workflow_support.record_job_code_in_rules needs updating"
            )
        if rule.run_func_src is None:  # no run: block (rule all)
            continue
        paths = [
            str(path)
            for name, value in rule.input.items()
            if name in CODE_INPUTS
            for path in ([value] if isinstance(value, str) else value)
            if isinstance(path, str)
        ]
        if not paths:
            continue
        lines = [
            f"# {path} sha256:{_sha256(Path(path)) if Path(path).is_file() else '(missing)'}\n"
            for path in sorted(set(paths))
        ]
        rule.run_func_src = rule.run_func_src + "".join(lines)
        changed.append(rule.name)
    return changed


def table_settings(table: str, config: Mapping[str, Any]) -> Any:
    """The configuration a table of study characteristics reads (its Snakemake params)."""
    own = review.tables(config)
    if table in own:
        return own[table][2](config)
    return dict(config.get("table1") or {})
