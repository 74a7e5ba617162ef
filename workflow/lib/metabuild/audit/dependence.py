"""Which reported numbers depend on a data cell, a data row or a configuration entry.

Exact by construction where the workflow itself is exact:

* **analysis jobs** (rule ``run_analysis``): the workflow reruns an analysis when
  :func:`metabuild.analysis.dependency_digest` changes. A number depends on an edit when the
  digest of its analysis changes under that edit. Numbers of one subgroup (``dose.high.*``)
  use the digest of the analysis restricted to that subgroup (``where: {moderator: level}``),
  so a cell of a low-dose trial does not reach ``dose.high.estimate``.
* **descriptive jobs** (rule ``describe``): the rows are the job's recorded ``data_rows``; the
  columns are those the topic function reads, found by running it with each column removed
  (a column is read by a number when removing it fails the function or changes the number).
* **any other job**: every cell of its recorded ``data_rows`` (all columns).

Dependence is transitive: a job whose inputs include another job's output (Table 2's GRADE
numbers read the analysis results) depends on whatever that job depends on.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from metabuild import data as mdata
from metabuild.audit.common import read_raw

_TOKENS = itertools.count()

# ------------------------------------------------------------------------------------------------
# raw data (strings as written) that can be edited and typed like metabuild.data.load_dataset


@dataclass
class RawData:
    """The data files of one tree as string DataFrames (index i = file row i + 2)."""

    data_dir: Path
    raw: dict[str, pd.DataFrame]
    _typed: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    #: identity of this state of the data (caches key on it; ``id()`` may be reused)
    token: int = field(default_factory=lambda: next(_TOKENS), repr=False)

    @classmethod
    def load(cls, data_dir: str | Path) -> RawData:
        data_dir = Path(data_dir)
        raw = {}
        for name, filename in mdata.FILES.items():
            path = data_dir / filename
            if path.is_file():
                raw[name] = read_raw(path)
            else:
                schema = mdata.load_schema(name, data_dir / "schemas")
                raw[name] = pd.DataFrame({f["name"]: pd.Series(dtype=str) for f in schema["fields"]})
        return cls(data_dir=data_dir, raw=raw)

    @staticmethod
    def table_name(file: str) -> str:
        stem = Path(file).name.removesuffix(".csv")
        if stem not in mdata.FILES:
            raise KeyError(f"{file}: not one of the data files ({', '.join(mdata.FILES.values())})")
        return stem

    def frame(self, file: str) -> pd.DataFrame:
        return self.raw[self.table_name(file)]

    def _replace(self, name: str, frame: pd.DataFrame) -> RawData:
        typed = {k: v for k, v in self._typed.items() if k != name}
        return RawData(self.data_dir, {**self.raw, name: frame}, typed)

    def with_cell(self, file: str, row: int, column: str, value: str) -> RawData:
        name = self.table_name(file)
        frame = self.raw[name].copy()
        frame.loc[row - 2, column] = value
        return self._replace(name, frame)

    def without_rows(self, file: str, rows: Iterable[int]) -> RawData:
        name = self.table_name(file)
        frame = self.raw[name].drop(index=[r - 2 for r in rows]).reset_index(drop=True)
        return self._replace(name, frame)

    def without_study(self, study_id: str) -> RawData:
        out = self
        for name, frame in self.raw.items():
            if "study_id" in frame.columns:
                rows = [i + 2 for i in frame.index[frame["study_id"] == study_id]]
                if rows:
                    out = out.without_rows(name, rows)
        return out

    def schema(self, name: str) -> dict[str, Any]:
        return mdata.load_schema(name, self.data_dir / "schemas")

    def dataset(self) -> mdata.Dataset:
        for name, frame in self.raw.items():
            if name not in self._typed:
                self._typed[name] = mdata._typed(frame.mask(frame == ""), self.schema(name))
        files = {name: self.data_dir / f for name, f in mdata.FILES.items()}
        return mdata.Dataset(data_dir=self.data_dir, files=files, **self._typed)

    def sentinel(self, file: str, row: int, column: str) -> str:
        """A value of the column's type that differs from the current one."""
        name = self.table_name(file)
        current = str(self.raw[name].loc[row - 2, column])
        ftype = next((f.get("type", "string") for f in self.schema(name)["fields"] if f["name"] == column), "string")
        if ftype == "boolean":
            return "false" if current == "true" else "true"
        if ftype == "integer":
            return str(int(current) + 7919) if current else "7919"
        if ftype == "number":
            return repr(float(current) + 0.00123457) if current else "1.23457"
        return current + "_sentinel"


# ------------------------------------------------------------------------------------------------
# the dependence model of one build


def _spec_id(name: str, spec: Mapping[str, Any]) -> str:
    return name + ":" + json.dumps(spec, sort_keys=True, default=str)


@dataclass
class Edit:
    """An edit of the data and/or the configuration, located in the base tree.

    ``cells`` lists ``(file, row, column)`` of the base data it touches (column None = the whole
    row); ``data`` is the edited data, ``config`` the edited configuration (None = unchanged)."""

    cells: list[tuple[str, int, str | None]]
    data: RawData | None = None
    config: dict[str, Any] | None = None
    config_paths: list[tuple[str, ...]] = field(default_factory=list)
    #: a what-if edit (impact): a cell of a moderator column may move its study to another
    #: subgroup, whatever value the probe used
    hypothetical: bool = False


class Dependence:
    """Dependence of the numbers of one registry on the data and configuration of one tree."""

    def __init__(self, numbers: Mapping[str, dict], config: Mapping[str, Any], raw: RawData | None):
        self.numbers = numbers
        self.config = dict(config)
        self.raw = raw
        self.jobs: dict[str, dict] = {}
        self.keys_by_job: dict[str, list[str]] = {}
        for key, entry in numbers.items():
            prov = entry["provenance"]
            self.jobs.setdefault(prov["job"], prov)
            self.keys_by_job.setdefault(prov["job"], []).append(key)
        self.producer = {out: job for job, prov in self.jobs.items() for out in prov.get("outputs", [])}
        self._digest_cache: dict[tuple[int, str, str], str] = {}
        self._columns_cache: dict[str, dict[str, dict[str, set[str]]]] = {}
        self._values_cache: dict[tuple, dict[str, Any] | None] = {}

    # -- upstream jobs ---------------------------------------------------------------------------

    def upstream(self, job: str) -> list[str]:
        """Jobs (that produced registry numbers) whose outputs this job read."""
        return [
            self.producer[i["path"]]
            for i in self.jobs[job].get("inputs", [])
            if i["path"] in self.producer and self.producer[i["path"]] != job
        ]

    # -- analysis jobs ---------------------------------------------------------------------------

    def analysis_spec(self, key: str, config: Mapping[str, Any] | None = None) -> tuple[str, dict] | None:
        """(analysis name, spec) whose digest decides ``key`` (subgroup-restricted for subgroup
        numbers); specs come from ``config`` when given, else from the recorded params."""
        prov = self.numbers[key]["provenance"]
        if prov["rule"] != "run_analysis":
            return None
        name = prov["wildcards"].get("analysis") or key.split(".")[0]
        if config is not None:
            spec = config.get("analyses", {}).get(name)
            if spec is None:
                return None
        else:
            spec = prov["params"].get("spec")
        spec = dict(spec)
        cfg = config if config is not None else self.config
        moderator = spec.get("moderator")
        parts = key.split(".")
        levels = cfg.get("derived_attributes", {}).get(moderator, {}).get("levels", []) if moderator else []
        if len(parts) == 3 and parts[0] == name and parts[1] in levels:
            spec.pop("moderator")
            spec["where"] = {**spec.get("where", {}), moderator: parts[1]}
        return name, spec

    def job_spec(self, job: str, config: Mapping[str, Any] | None = None) -> tuple[str, dict] | None:
        prov = self.jobs[job]
        if prov["rule"] != "run_analysis":
            return None
        name = prov["wildcards"]["analysis"]
        spec = (config or {}).get("analyses", {}).get(name) if config is not None else prov["params"].get("spec")
        return None if spec is None else (name, dict(spec))

    def digest(self, name: str, spec: Mapping[str, Any], raw: RawData, config: Mapping[str, Any]) -> str:
        from metabuild.analysis import dependency_digest

        config_key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
        cache_key = (raw.token, config_key, _spec_id(name, spec))
        if cache_key not in self._digest_cache:
            try:
                self._digest_cache[cache_key] = dependency_digest(name, spec, raw.dataset(), config)
            except Exception as error:  # an edit that breaks the analysis is a dependence too
                self._digest_cache[cache_key] = f"error: {type(error).__name__}: {error}"
        return self._digest_cache[cache_key]

    # -- descriptive jobs ------------------------------------------------------------------------

    def topic_function(self, topic: str | None) -> Any:
        """The function of a descriptive topic: the library's (metabuild.describe.TOPICS) or the
        review module's (config ``review_module``, relative to the project of the data)."""
        from metabuild import describe, review

        if topic in describe.TOPICS:
            return describe.TOPICS[topic]
        if not self.config.get("review_module") or self.raw is None:
            return None
        config = dict(self.config)
        config["review_module"] = str(Path(self.raw.data_dir).resolve().parent / config["review_module"])
        own = review.topics(config)
        return own[topic][0] if topic in own else None

    def columns_read(self, job: str) -> dict[str, dict[str, set[str]]]:
        """key -> file -> columns read, for a ``describe`` job (by removing each column in turn)."""
        if job in self._columns_cache:
            return self._columns_cache[job]

        prov = self.jobs[job]
        topic = prov["wildcards"].get("topic")
        settings = prov["params"].get("settings", {})
        keys = self.keys_by_job[job]
        result: dict[str, dict[str, set[str]]] = {k: {} for k in keys}
        function = self.topic_function(topic)
        if function is None or self.raw is None:
            self._columns_cache[job] = {}
            return {}
        dataset = self.raw.dataset()
        try:
            base, _ = function(dataset, settings)
        except Exception:
            self._columns_cache[job] = {}
            return {}
        for file in prov.get("data_rows", {}):
            name = RawData.table_name(file)
            table = dataset.table(name)
            for column in table.columns:
                if column == mdata.ROW_COLUMN:
                    continue
                probe = dataclasses.replace(dataset, **{name: table.drop(columns=[column])})
                try:
                    numbers, _ = function(probe, settings)
                except Exception:
                    numbers = None
                for key in keys:
                    if numbers is None or _same(numbers.get(key), base.get(key)) is False:
                        result[key].setdefault(file, set()).add(column)
        self._columns_cache[job] = result
        return result

    # -- the question ----------------------------------------------------------------------------

    def affected(self, edit: Edit) -> dict[str, str]:
        """Numbers affected by ``edit``: key -> how (one short phrase)."""
        config = self.config
        new_config = edit.config if edit.config is not None else config
        raw = self.raw
        new_raw = edit.data if edit.data is not None else raw
        hits: dict[str, str] = {}
        job_hit: dict[str, str] = {}
        for job, prov in self.jobs.items():
            rule = prov["rule"]
            for key in self.keys_by_job[job]:
                how = None
                if rule == "run_analysis" and raw is not None:
                    old = self.analysis_spec(key, config if edit.config is not None else None)
                    new = self.analysis_spec(key, new_config if edit.config is not None else None)
                    if old is None or new is None:
                        how = "analysis added or removed by the configuration" if old != new else None
                    elif self.digest(*old, raw, config) != self.digest(*new, new_raw, new_config):
                        how = "cells read by the analysis (dependency digest)"
                    elif edit.hypothetical and self._moves_subgroup(job, key, edit):
                        how = "moderator column: the study may move to another subgroup"
                elif rule == "describe":
                    how = self._describe_hit(job, key, edit)
                else:
                    how = self._rows_hit(prov, edit)
                if how is None and edit.config is not None:
                    how = self._params_hit(prov, edit)
                if how:
                    hits[key] = how
            if rule == "run_analysis" and raw is not None:
                old, new = (
                    self.job_spec(job, config if edit.config is not None else None),
                    self.job_spec(job, new_config if edit.config is not None else None),
                )
                if old != new and (old is None or new is None):
                    job_hit[job] = "analysis added or removed"
                elif old and self.digest(*old, raw, config) != self.digest(*new, new_raw, new_config):
                    job_hit[job] = "dependency digest"
            elif any(k in hits for k in self.keys_by_job[job]):
                job_hit[job] = "read"
        # transitive: jobs reading an affected job's output
        changed = True
        while changed:
            changed = False
            for job in self.jobs:
                if job in job_hit:
                    continue
                via = [u for u in self.upstream(job) if u in job_hit]
                if via:
                    job_hit[job] = "upstream"
                    changed = True
                    out = self.jobs[via[0]]["outputs"][0] if self.jobs[via[0]].get("outputs") else via[0]
                    for key in self.keys_by_job[job]:
                        hits.setdefault(key, f"via {out}")
        return hits

    # -- confirmation by recomputing (cheap for analyses and descriptive topics) ----------------

    def values(self, job: str, raw: RawData, config: Mapping[str, Any], from_config: bool) -> dict[str, Any] | None:
        """key -> value of the numbers ``job`` computes on ``raw`` (None: not recomputable here)."""
        prov = self.jobs[job]
        config_key = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
        cache_key = (job, raw.token, config_key, from_config)
        if cache_key in self._values_cache:
            return self._values_cache[cache_key]
        result: dict[str, Any] | None
        try:
            if prov["rule"] == "run_analysis":
                from metabuild.analysis import run_analysis

                found = self.job_spec(job, config if from_config else None)
                if found is None:
                    result = {}
                else:
                    numbers = run_analysis(*found, raw.dataset(), config)["numbers"]
                    result = {k: v["value"] for k, v in numbers.items()}
            elif prov["rule"] == "describe":
                from metabuild.workflow_support import descriptive_settings

                topic = prov["wildcards"].get("topic")
                settings = descriptive_settings(topic, config) if from_config else prov["params"].get("settings")
                numbers, _ = self.topic_function(topic)(raw.dataset(), settings)
                result = {k: v["value"] for k, v in numbers.items()}
            else:
                result = None
        except Exception as error:
            result = {"__error__": f"{type(error).__name__}: {error}"}
        self._values_cache[cache_key] = result
        return result

    def affected_confirmed(self, edit: Edit) -> tuple[dict[str, str], dict[str, str]]:
        """(strong, weak): numbers affected by ``edit`` whose value this edit alone changes (or
        that cannot be recomputed here), and numbers that read what the edit touches but keep
        their value under it alone (e.g. a study label, which the analysis digest covers)."""
        hits = self.affected(edit)
        strong, weak = {}, {}
        raw, new_raw = self.raw, edit.data if edit.data is not None else self.raw
        config = self.config
        new_config = edit.config if edit.config is not None else config
        from_config = edit.config is not None
        for key, how in hits.items():
            job = self.numbers[key]["provenance"]["job"]
            if raw is None or how.startswith("via "):
                strong[key] = how
                continue
            before = self.values(job, raw, config, from_config)
            after = self.values(job, new_raw, new_config, from_config)
            if before is None or after is None:
                strong[key] = how
            elif (
                json.dumps(before.get(key), default=str) != json.dumps(after.get(key), default=str)
                or "__error__" in before
                or "__error__" in after
            ):
                strong[key] = how
            else:
                weak[key] = how
        return strong, weak

    def _moves_subgroup(self, job: str, key: str, edit: Edit) -> bool:
        from metabuild.analysis import attribute_columns

        spec = self.jobs[job]["params"].get("spec", {})
        moderator = spec.get("moderator")
        if not moderator or self.analysis_spec(key) == self.job_spec(job):
            return False  # not a subgroup number
        columns = set(attribute_columns(moderator, self.config))
        studies = set(self.jobs[job].get("study_ids", []))
        frame = self.raw.frame("studies.csv") if self.raw is not None else None
        for file, row, column in edit.cells:
            if file != "studies.csv" or frame is None or not 0 <= row - 2 < len(frame):
                continue
            if (column is None or column in columns) and frame.loc[row - 2, "study_id"] in studies:
                return True
        return False

    def _describe_hit(self, job: str, key: str, edit: Edit) -> str | None:
        prov = self.jobs[job]
        if edit.config is not None:
            from metabuild.workflow_support import descriptive_settings

            topic = prov["wildcards"].get("topic")
            try:
                if descriptive_settings(topic, self.config) != descriptive_settings(topic, edit.config):
                    return "settings of the descriptive topic"
            except Exception:
                return "settings of the descriptive topic"
        read = self.columns_read(job).get(key)
        for file, row, column in edit.cells:
            rows = prov.get("data_rows", {}).get(file)
            if rows is None or row not in rows:
                continue
            if column is None or read is None or column in read.get(file, set()):
                return "row and column read by the descriptive topic"
        return None

    @staticmethod
    def _rows_hit(prov: Mapping[str, Any], edit: Edit) -> str | None:
        for file, row, _column in edit.cells:
            if row in prov.get("data_rows", {}).get(file, []):
                return "row read by the job (data_rows)"
        return None

    def _params_hit(self, prov: Mapping[str, Any], edit: Edit) -> str | None:
        """A configuration path under a subtree of the configuration the job's params hold."""
        if prov["rule"] in ("run_analysis", "describe"):
            return None  # decided exactly above
        prefixes = set()
        for value in prov.get("params", {}).values():
            for cfg in (self.config, edit.config or {}):
                prefixes |= set(_paths_of(cfg, value))
        for path in edit.config_paths:
            for prefix in prefixes:
                n = min(len(prefix), len(path))
                if prefix[:n] == path[:n]:
                    return "configuration in the job's params"
        return None


def _same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (JSON text of both)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _paths_of(config: Any, value: Any, prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    """Paths of ``config`` whose subtree equals ``value`` (only mappings and lists of size > 0)."""
    if isinstance(value, (dict, list)) and value and config == value:
        yield prefix
    if isinstance(config, Mapping):
        for k, v in config.items():
            yield from _paths_of(v, value, (*prefix, str(k)))


# ------------------------------------------------------------------------------------------------
# configuration edits


_MISSING = object()


def get_path(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def set_path(config: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with ``path`` set to ``value`` (deleted when value is missing)."""
    out = copy.deepcopy(dict(config))
    node = out
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is _MISSING:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = copy.deepcopy(value)
    return out


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[tuple[str, ...], Any, Any]]:
    """Changed leaves: (path, old value | MISSING, new value | MISSING); lists are leaves."""
    changes = []

    def walk(a: Any, b: Any, path: tuple[str, ...]) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in list(dict.fromkeys([*a.keys(), *b.keys()])):
                walk(a.get(k, _MISSING), b.get(k, _MISSING), (*path, str(k)))
        elif a != b:
            changes.append((path, a, b))

    walk(old, new, ())
    return changes


def missing(value: Any) -> bool:
    return value is _MISSING
