"""What a review declares about itself: its two arms, its outcomes and its own module.

The library knows no particular review. A review's configuration names

* ``arms``: the intervention and comparator as the data name them (the ``arm`` column of the
  outcome files, the ``n_<arm>`` columns of studies.csv) with their printed labels and the
  forest plots' "favours" texts;
* ``outcomes`` (optional): continuous outcomes, each with its data file and the column that
  holds its pooling windows (``primary`` marks each study's primary time point); an outcome
  not declared there is a binary outcome of binary_outcomes.csv;
* ``review_module`` (optional): a Python file the review owns, for what only that review
  computes: columns computed from its study table (``COMPUTED_COLUMNS`` and
  ``computed_columns(table, config)``), descriptive topics (``TOPICS``: name -> (function,
  data cells read)) and tables (``TABLES``: name -> function(data, config) -> (frame, notes))).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


class ReviewConfigError(ValueError):
    """A configuration entry a review must declare is missing or wrong (the message names the key)."""


@dataclass(frozen=True)
class Arm:
    id: str
    label: str


def arms(config: Mapping[str, Any]) -> tuple[Arm, Arm]:
    """(intervention, comparator) as config ``arms`` declares them."""
    declared = config.get("arms")
    if not isinstance(declared, Mapping) or not {"intervention", "comparator"} <= set(declared):
        raise ReviewConfigError(
            "config: arms: missing; declare arms.intervention and arms.comparator, each with the id the data use "
            "(the `arm` column, the n_<id> columns of studies.csv) and a label"
        )
    out = []
    for role in ("intervention", "comparator"):
        entry = declared[role]
        if "id" not in entry:
            raise ReviewConfigError(f"config: arms.{role}.id: missing (the arm's name in the data)")
        out.append(Arm(str(entry["id"]), str(entry.get("label", entry["id"]))))
    return out[0], out[1]


def arm_ids(config: Mapping[str, Any]) -> tuple[str, str]:
    intervention, comparator = arms(config)
    return intervention.id, comparator.id


def favours(config: Mapping[str, Any]) -> tuple[str, str]:
    """The texts under a forest plot's axis (config ``arms.<role>.favours``; default "Favours <label>")."""
    declared = config.get("arms", {})
    intervention, comparator = arms(config)
    return (
        str(declared["intervention"].get("favours", f"Favours {intervention.label}")),
        str(declared["comparator"].get("favours", f"Favours {comparator.label}")),
    )


def outcome_spec(config: Mapping[str, Any], outcome: str) -> dict[str, Any]:
    """The declaration of ``outcome``: ``{"type": "continuous", "file": ..., "window_column": ...}``
    from config ``outcomes``, else a binary outcome of binary_outcomes.csv."""
    declared = (config.get("outcomes") or {}).get(outcome)
    if declared is None:
        return {"type": "binary", "file": "binary_outcomes.csv"}
    return {"type": "continuous", "window_column": "window_weeks", **dict(declared)}


def continuous_outcomes(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: outcome_spec(config, name) for name in (config.get("outcomes") or {})}


_MODULES: dict[str, ModuleType] = {}


def module(config: Mapping[str, Any]) -> ModuleType | None:
    """The review's own module (config ``review_module``, a path relative to the project), or None."""
    path = config.get("review_module")
    if not path:
        return None
    resolved = str(Path(path).resolve())
    if resolved not in _MODULES:
        if not Path(resolved).is_file():
            raise ReviewConfigError(f"config: review_module: {path!r} is not a file")
        name = f"metabuild_review_{abs(hash(resolved))}"
        spec = importlib.util.spec_from_file_location(name, resolved)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
        _MODULES[resolved] = loaded
    return _MODULES[resolved]


def computed_column_inputs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Columns the review module computes from the study table -> the study columns each reads."""
    mod = module(config)
    return dict(getattr(mod, "COMPUTED_COLUMNS", {})) if mod else {}


def computed_settings(config: Mapping[str, Any]) -> Any:
    """The configuration the computed columns depend on (the module's ``computed_settings(config)``)."""
    mod = module(config)
    return mod.computed_settings(config) if mod and hasattr(mod, "computed_settings") else None


def add_computed_columns(table: Any, config: Mapping[str, Any]) -> Any:
    """``table`` with the review module's computed columns added (unchanged without a module)."""
    mod = module(config)
    if mod is None or not hasattr(mod, "computed_columns"):
        return table
    # a job's settings carry the computed columns' settings, not the whole configuration
    settings = config["computed_settings"] if "computed_settings" in config else computed_settings(config)
    for name, values in mod.computed_columns(table, settings).items():
        table[name] = values
    return table


def topics(config: Mapping[str, Any]) -> dict[str, tuple[Any, dict[str, list[str] | None]]]:
    """Descriptive topics the review module adds: name -> (function(data, settings), cells read)."""
    mod = module(config)
    return dict(getattr(mod, "TOPICS", {})) if mod else {}


def tables(config: Mapping[str, Any]) -> dict[str, Any]:
    """Tables the review module makes: name -> function(data, config) -> (frame, notes)."""
    mod = module(config)
    return dict(getattr(mod, "TABLES", {})) if mod else {}


def result_arms(result: Mapping[str, Any]) -> list[dict[str, str]]:
    """The arms (``[{"id", "label"}, ...]``, intervention first) of an analysis result: as it
    records them, else read from its pooled counts (``n_<arm>``, written intervention first) for
    a result made before results recorded their arms."""
    if result.get("arms"):
        return [dict(arm) for arm in result["arms"]]
    studies = result.get("studies") or [s for sub in result.get("subgroups") or [] for s in sub.get("studies") or []]
    ids: list[str] = []
    for counts in (result.get("pooled") or {}, *(studies[:1])):
        ids = [k[2:] for k in counts if k.startswith("n_") and k not in ("n_total", "n_lower", "n_higher")]
        if len(ids) == 2:
            break
    if len(ids) != 2:
        raise ValueError(f"analysis {result.get('analysis', '?')!r}: its result names no arms (config `arms`)")
    return [{"id": i, "label": i.capitalize()} for i in ids]
