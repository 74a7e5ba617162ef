"""Synthetic reviews for benchmarks and tests (project issue 6).

:func:`make_review` writes a complete, valid review into ``directory``:

* ``directory/data/``: the 7 extraction CSVs in the format of ``data/schemas/`` (copied to
  ``directory/data/schemas/``), and ``data/curation/output/plausible_fit.csv`` (the
  sensitivity rule's alternative pain data: here the same rows);
* ``directory/config/config.yaml``: the project's ``config/config.yaml`` with ``analyses``
  replaced by ``n_analyses`` generated entries (pain MD analyses with ``where`` filters and
  moderators over the derived attributes, binary RR analyses), and ``grade`` pointing at
  generated analyses. ``n_analyses=None`` keeps the project's own analyses (the data cover
  every outcome and time point they use).

The layout mirrors the repository, so a synthetic review can be laid over a copy of the
project (:func:`copy_project`) and built with plain ``snakemake``. Output depends only on the
arguments (``random.Random(seed)``; no clock, no hash randomisation).

The module also holds the helpers the benchmarks and tests share: :func:`copy_project`,
:func:`strip_built_at`, :data:`PROJECT`, :data:`SNAKEMAKE`.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SNAKEMAKE = str(VENV_BIN / "snakemake") if (VENV_BIN / "snakemake").exists() else "snakemake"

SURNAMES = [
    "Amr",
    "Bell",
    "Chen",
    "Dahl",
    "Eide",
    "Finch",
    "Gomez",
    "Hale",
    "Ito",
    "Jost",
    "Kim",
    "Lund",
    "Moss",
    "Noor",
    "Ortiz",
    "Park",
    "Quinn",
    "Rossi",
    "Sato",
    "Tran",
    "Ueda",
    "Vega",
    "Wolf",
    "Xu",
    "Young",
    "Zhou",
]
PAIN_TYPES = ["neuropathic", "mixed", "nociplastic", "nociceptive"]
BINARY_OUTCOMES = ["responder", "nausea", "vomiting", "psychotomimetic", "headache", "tiredness", "sedation"]
ROB_DOMAINS = [
    "random_sequence",
    "allocation_concealment",
    "blinding_participants",
    "blinding_outcome",
    "incomplete_outcome",
    "selective_reporting",
    "other_bias",
]
GRADE_DOMAINS = ["risk_of_bias", "inconsistency", "indirectness", "imprecision", "other"]
WINDOWS = [2, 4, 8, 12]
#: derived attributes of config/config.yaml usable as moderators / where filters, with their levels
MODERATORS = ["dose_class", "pain_class", "crps_status", "adjunct_status", "setting_class", "sex_class", "age_class"]


# ----------------------------------------------------------------------------------------- files
def _write_csv(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in header})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _schema_fields(schema_dir: Path, name: str) -> list[str]:
    return [f["name"] for f in json.loads((schema_dir / f"{name}.schema.json").read_text())["fields"]]


# ----------------------------------------------------------------------------------------- data
def _studies(rng: random.Random, n: int) -> list[dict[str, Any]]:
    width = max(3, len(str(n)))
    rows = []
    for i in range(n):
        year = 1995 + (i * 7 + rng.randrange(5)) % 28
        surname = SURNAMES[i % len(SURNAMES)]
        sid = f"{surname.lower()}{year}_{i:0{width}d}"
        n_k, n_c = rng.randint(12, 80), rng.randint(12, 80)
        # attributes cycle with the index so every subgroup level exists whenever n >= 4
        hours = [4.0, 10.0, 24.0, 48.0, 100.0][i % 5]
        rate = round(rng.uniform(0.1, 0.5), 2)
        female = None if i % 7 == 6 else round(rng.uniform(30, 95), 1)
        age = None if i % 11 == 10 else round(rng.uniform(30, 62), 1)
        rows.append(
            {
                "study_id": sid,
                "label": f"{surname} {year}{'' if n <= 26 else f' ({i + 1})'}",
                "first_author": surname,
                "year": year,
                "ref_number": i + 1,
                "citation_key": sid,
                "design": "crossover" if i % 4 == 3 else "parallel",
                "setting": "inpatient" if i % 2 == 0 else "outpatient",
                "population": "adults with chronic pain",
                "diagnosis": "synthetic diagnosis",
                "pain_type": PAIN_TYPES[i % 4],
                "crps": i % 3 == 0,
                "adjunct_analgesic": i % 5 in (1, 2),
                "cointervention": "none",
                "treatment_description": "ketamine infusion",
                "control_description": "saline infusion",
                "n_ketamine": n_k,
                "n_control": n_c,
                "ketamine_form": "s-ketamine" if i % 6 == 5 else "racemic",
                "rate_unit": "mg/kg/h",
                "rate_mean": rate,
                "rate_max": round(rate * 1.5, 2),
                "hours_total": hours,
                "days": max(1.0, hours / 8 // 1),
                "rate_cap_mg_per_h": None,
                "regimen_text": f"{rate} mg/kg/h for {hours:g} h",
                "condition": "chronic pain",
                "blinding_tested": False,
                "female_percent": female,
                "age_years": age,
                "age_statistic": None if age is None else "mean",
                "demographics_source": "synthetic",
                "source": "synthetic",
            }
        )
    return rows


def _pain_rows(rng: random.Random, studies: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(studies):
        effect = rng.gauss(-0.9, 0.8)
        points = [("day 3", 0.43, None)] + [(f"week {w}", float(w), w) for w in WINDOWS if w <= 4 or i % 3 != 2]
        primary = "day 3" if i % 2 == 0 else "week 2"
        for label, weeks, window in points:
            base = rng.uniform(4.5, 7.5)
            for arm, shift in (("ketamine", effect * (1 - weeks / 16)), ("control", 0.0)):
                randomised = s[f"n_{arm}"]
                rows.append(
                    {
                        "study_id": s["study_id"],
                        "arm": arm,
                        "timepoint": label,
                        "weeks": weeks,
                        "primary": label == primary,
                        "window_weeks": window,
                        "n": max(1, randomised - rng.randint(0, 3)),
                        "mean": round(min(10.0, max(0.0, base + shift + rng.gauss(0, 0.3))), 2),
                        "sd": round(rng.uniform(1.0, 2.8), 2),
                        "scale_original": "NRS 0-10",
                        "conversion": None,
                        "source": "synthetic",
                    }
                )
    return rows


def _binary_rows(rng: random.Random, studies: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for i, s in enumerate(studies):
        for j, outcome in enumerate(BINARY_OUTCOMES):
            if outcome not in ("responder", "nausea") and (i + j) % 3 == 0:
                continue  # not every trial reports every adverse effect
            risk = rng.uniform(0.05, 0.4)
            for arm, ratio in (("ketamine", rng.uniform(1.0, 2.5)), ("control", 1.0)):
                n = max(1, s[f"n_{arm}"] - rng.randint(0, 2))
                p = min(0.95, risk * ratio)
                rows.append(
                    {
                        "study_id": s["study_id"],
                        "outcome": outcome,
                        "arm": arm,
                        "events": sum(rng.random() < p for _ in range(n)),
                        "n": n,
                        "definition": ">=30% pain reduction" if outcome == "responder" else None,
                        "source": "synthetic",
                    }
                )
    return rows


def _overall(judgements: dict[str, str]) -> str:
    key = ROB_DOMAINS[:5]
    if any(judgements[d] == "high" for d in key):
        return "high"
    return "unclear" if any(judgements[d] == "unclear" for d in key) else "low"


def _rob_rows(rng: random.Random, studies: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for s in studies:
        judgements = {d: rng.choices(["low", "unclear", "high"], [6, 3, 1])[0] for d in ROB_DOMAINS}
        judgements["overall"] = _overall(judgements)
        rows += [
            {"study_id": s["study_id"], "domain": d, "judgement": j, "source": "synthetic"}
            for d, j in judgements.items()
        ]
    return rows


def _flow_rows(rng: random.Random, n: int) -> list[dict[str, Any]]:
    excluded_fulltext = rng.randint(5, 40) + n // 2
    assessed = n + excluded_fulltext
    screened = assessed + rng.randint(50, 500) + 2 * n
    identified = screened + rng.randint(10, 300)
    counts = {
        "records_identified": identified,
        "records_screened": screened,
        "excluded_screening": screened - assessed,
        "fulltext_excluded": excluded_fulltext,
    }
    return [{"stage": k, "count": v, "source": "synthetic"} for k, v in counts.items()]


# ----------------------------------------------------------------------------------------- config
def _analyses(rng: random.Random, m: int) -> dict[str, dict[str, Any]]:
    """``m`` analyses: first ``primary`` (leave-one-out + bias tests: the rules and the registry
    expect exactly one of each), then a mixture of pain MD (time point, ``where``, moderator)
    and binary RR analyses. About three in four have a forest plot."""
    analyses: dict[str, dict[str, Any]] = {
        "primary": {
            "outcome": "pain",
            "timepoint": "primary",
            "measure": "MD",
            "method": "DL",
            "title": "Pain at the primary time point",
            "figure": "forest_primary",
            "leave_one_out": True,
            "bias_tests": True,
        },
    }
    filters = [
        {},
        {"setting_class": "inpatient"},
        {"pain_type": ["neuropathic", "mixed"]},
        {"crps_status": "non_crps"},
        {"design": "parallel"},
        {"dose_class": "high"},
    ]
    for k in range(1, m):
        name = f"a{k:03d}"
        if k % 3 == 2:  # binary RR
            outcome = BINARY_OUTCOMES[k % len(BINARY_OUTCOMES)]
            spec: dict[str, Any] = {
                "outcome": outcome,
                "measure": "RR",
                "method": "DL",
                "title": f"{outcome.capitalize()} (synthetic {k})",
            }
            if outcome != "responder":
                spec["proportions"] = True
            if k % 4 == 0:
                spec["where"] = {"setting_class": ["inpatient", "outpatient"]}
        else:  # pain MD
            timepoint = ["primary", 2, 4, 8, 12][rng.randrange(5)]
            spec = {
                "outcome": "pain",
                "timepoint": timepoint,
                "measure": "MD",
                "method": "DL",
                "title": f"Pain at {timepoint} (synthetic {k})",
            }
            where = filters[k % len(filters)]
            if where:
                spec["where"] = dict(where)
            moderator = MODERATORS[k % len(MODERATORS)]
            if rng.random() < 0.7 and not set(where) & {moderator}:
                spec["moderator"] = moderator
        if k % 4 != 3:
            spec["figure"] = f"forest_{name}"
        analyses[name] = spec
    return analyses


def make_config(
    base: dict[str, Any], n_analyses: int | None, seed: int, data_dir: str = "data", results_dir: str = "results"
) -> dict[str, Any]:
    config = json.loads(json.dumps(base))  # deep copy; YAML anchors/merge keys already resolved
    config["data_dir"], config["results_dir"] = data_dir, results_dir
    if n_analyses is not None:
        rng = random.Random(f"{seed}-config")
        config["analyses"] = _analyses(rng, n_analyses)
        binary = next((n for n, s in config["analyses"].items() if s["measure"] == "RR"), None)
        config["grade"] = {"primary": {"analysis": "primary", "label": "Pain at the primary time point"}}
        if binary:
            config["grade"][binary] = {"analysis": binary, "label": config["analyses"][binary]["title"]}
    config.pop("defaults", None)  # only there for YAML anchors
    return config


def make_review(
    directory: str | Path,
    n_studies: int,
    n_analyses: int | None,
    seed: int,
    *,
    base_config: str | Path | None = None,
    data_dir: str = "data",
    results_dir: str = "results",
) -> dict[str, Path]:
    """Write a valid synthetic review under ``directory`` (see the module docstring).

    ``data_dir``/``results_dir`` are the values written into the config (relative to the
    directory Snakemake runs in). Returns ``{"data": ..., "config": ...}`` paths.
    """
    if n_studies < 4:
        raise ValueError("n_studies must be >= 4 (every subgroup level needs a study)")
    directory = Path(directory)
    rng = random.Random(seed)
    data = directory / "data"
    schemas = data / "schemas"
    if schemas.exists():
        shutil.rmtree(schemas)
    shutil.copytree(PROJECT / "data" / "schemas", schemas)
    studies = _studies(rng, n_studies)
    base = yaml.safe_load(Path(base_config or PROJECT / "config" / "config.yaml").read_text(encoding="utf-8"))
    config = make_config(base, n_analyses, seed, data_dir, results_dir)
    tables = {
        "studies": studies,
        "pain_scores": _pain_rows(rng, studies),
        "binary_outcomes": _binary_rows(rng, studies),
        "risk_of_bias": _rob_rows(rng, studies),
        "study_flow": _flow_rows(rng, n_studies),
        "grade": [
            {
                "outcome_id": o,
                "domain": d,
                "source": "synthetic",
                "judgement": ["not serious", "serious"][(i + j) % 4 == 0],
                "footnote": "a: synthetic concern" if (i + j) % 4 == 0 else None,
            }
            for i, o in enumerate(config["grade"])
            for j, d in enumerate(GRADE_DOMAINS)
        ],
        "published_values": [
            {
                "key": "studies.count",
                "printed": str(n_studies),
                "value": n_studies,
                "kind": "count",
                "decimals": 0,
                "location": "abstract",
            },
            {
                "key": "primary.estimate",
                "printed": "-0.88",
                "value": -0.88,
                "kind": "estimate",
                "decimals": 2,
                "location": "abstract",
            },
            {
                "key": "primary.estimate",
                "printed": "-0.88",
                "value": -0.88,
                "kind": "estimate",
                "decimals": 2,
                "location": "results",
            },
        ],
    }
    for name, rows in tables.items():
        _write_csv(data / f"{name}.csv", _schema_fields(schemas, name), rows)
    # the plausible-bounds alternative the sensitivity_plausible rule reads (a pain_scores.csv
    # with every SD >= 1: the synthetic SDs already are); its path is fixed in the rule
    _write_csv(
        directory / "data" / "curation" / "output" / "plausible_fit.csv",
        _schema_fields(schemas, "pain_scores"),
        tables["pain_scores"],
    )
    config_path = directory / "config" / "config.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        f"# synthetic review: {n_studies} studies, seed {seed}\n"
        + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8",
    )
    return {"data": data, "config": config_path}


# ----------------------------------------------------------------------------------------- helpers
def project_files(project: Path = PROJECT) -> list[str]:
    """Files of the project as git sees them (tracked + untracked, not ignored), without data/."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=project,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and not f.startswith("data/") and (project / f).is_file()]


def copy_project(dest: str | Path, data: str | Path | None = "real", project: Path = PROJECT) -> Path:
    """Copy the project (git ls-files) to ``dest``; ``data``: ``"real"`` copies data/,
    a directory copies that directory's CSVs plus data/schemas, ``None`` copies no data."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in project_files(project):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / rel, target)
    if data == "real":
        shutil.copytree(
            project / "data", dest / "data", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".*")
        )
    elif data is not None:
        (dest / "data").mkdir(exist_ok=True)
        for csv_file in Path(data).glob("*.csv"):
            shutil.copy2(csv_file, dest / "data" / csv_file.name)
        shutil.copytree(project / "data" / "schemas", dest / "data" / "schemas", dirs_exist_ok=True)
    return dest


def strip_built_at(value: Any) -> Any:
    """``value`` (parsed JSON) without ``built_at`` fields: the only fields that are times."""
    if isinstance(value, dict):
        return {k: strip_built_at(v) for k, v in value.items() if k != "built_at"}
    if isinstance(value, list):
        return [strip_built_at(v) for v in value]
    return value


def real_data_valid(project: Path = PROJECT) -> tuple[bool, str]:
    """Whether the project's data/ validates (the colleague's files may be unfinished)."""
    sys.path.insert(0, str(project / "workflow" / "lib"))
    from metabuild import data as mdata

    try:
        mdata.validate_dataset(project / "data")
    except mdata.DataValidationError as error:
        return False, str(error).splitlines()[0] + " " + "; ".join(str(error).splitlines()[1:4])
    except Exception as error:  # noqa: BLE001 - a missing schema or file, reported as such
        return False, f"{type(error).__name__}: {error}"
    return True, "valid"


def build_env(copy: str | Path, **extra: str) -> dict[str, str]:
    """Environment for a build of ``copy``: its jobs import the copy's library (the editable
    install of metabuild would otherwise point them at the original checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(copy) / "workflow" / "lib") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def run_snakemake(copy: str | Path, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """``snakemake --cores 2 ARGS`` in ``copy``; stdout+stderr in ``.stdout``."""
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args],
        cwd=copy,
        env=build_env(copy, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def non_render_targets(copy: str | Path) -> list[str]:
    """Every output of the build short of the manuscript (whose numbers need real data):
    numbers.json, the reproduction report, all tables and all figures."""
    config = yaml.safe_load((Path(copy) / "config" / "config.yaml").read_text(encoding="utf-8"))
    res = config["results_dir"]
    stems = [s["figure"] for s in config["analyses"].values() if s.get("figure")]
    stems += ["flow", "risk_of_bias", "leave_one_out"]
    return (
        [f"{res}/numbers.json", f"{res}/reports/reproduction.md"]
        + [f"{res}/tables/{t}.md" for t in ("table1", "table2_grade", "table_s2_adverse_proportions")]
        + [f"{res}/figures/{s}.{e}" for s in stems for e in ("svg", "png")]
    )


def tree_snapshot(root: str | Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file under ``root``."""
    root = Path(root)
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def json_differences(a: Any, b: Any, path: str = "$") -> list[str]:
    """JSON paths where two parsed documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += json_differences(a.get(key), b.get(key), f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in json_differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def compare_outputs(a: str | Path, b: str | Path) -> list[str]:
    """Differences between two results trees other than ``built_at`` fields.

    JSON files are compared parsed with ``built_at`` removed, and their raw bytes may differ
    only on lines holding ``built_at``; every other file must be byte-identical."""
    a, b = Path(a), Path(b)
    files_a = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    problems = [f"only in {a}: {f}" for f in sorted(files_a - files_b)]
    problems += [f"only in {b}: {f}" for f in sorted(files_b - files_a)]
    for rel in sorted(files_a & files_b):
        raw_a, raw_b = (a / rel).read_bytes(), (b / rel).read_bytes()
        if raw_a == raw_b:
            continue
        if rel.endswith(".json"):
            paths = json_differences(strip_built_at(json.loads(raw_a)), strip_built_at(json.loads(raw_b)))
            if paths:
                problems.append(f"{rel}: differs beyond built_at at {len(paths)} place(s), e.g. {paths[:3]}")
                continue
            lines_a, lines_b = raw_a.splitlines(), raw_b.splitlines()
            if len(lines_a) != len(lines_b) or any(
                x != y and not (b'"built_at"' in x and b'"built_at"' in y)
                for x, y in zip(lines_a, lines_b, strict=True)
            ):
                problems.append(f"{rel}: raw bytes differ on lines without built_at")
        else:
            problems.append(f"{rel}: bytes differ ({len(raw_a)} vs {len(raw_b)} bytes)")
    return problems


if __name__ == "__main__":  # python benchmarks/synthetic.py DIR N M SEED
    out = make_review(
        sys.argv[1], int(sys.argv[2]), None if sys.argv[3] == "project" else int(sys.argv[3]), int(sys.argv[4])
    )
    print(out)
