"""``metabuild ro-crate``: a Provenance Run Crate of a finished build (Workflow Run RO-Crate).

The crate (RO-Crate 1.1, written with ``rocrate``, the maintained ro-crate-py library) describes
one build of the project under the Workflow Run RO-Crate profiles (Process Run Crate, Workflow
Run Crate and Provenance Run Crate 0.5, https://w3id.org/ro/wfrun/provenance/0.5) and carries its
files:

* the workflow: ``Snakefile`` as the main ``ComputationalWorkflow`` (``programmingLanguage``
  Snakemake), its rules as tools (``SoftwareApplication``, ``hasPart``) and steps (``HowToStep``,
  ``step``), and the files of ``workflow/`` and ``config/``;
* each job that ran as a ``CreateAction``: its rule as ``instrument``, its input files as
  ``object`` and its outputs as ``result`` (each a ``File`` with ``sha256`` and ``contentSize``),
  its start and end times; a ``ControlAction`` links it to its step;
* the run: a ``CreateAction`` of the workflow (the files no job made as ``object``, the files no
  job read as ``result``) and the ``OrganizeAction`` of Snakemake that orchestrated it.

Where it comes from (nothing is derived again): *which jobs ran, and when*, from Snakemake's own
record of the build, read through its reporter interface (the same records ``snakemake
--report`` shows: rule, wildcards, inputs, outputs, start and end); *what each job read, with
which SHA-256*, from the job's own provenance where it recorded one: the number registry's
activities (:func:`metabuild.registry.read_registry`) and, for the jobs that made no numbers,
the provenance record their JSON output carries (``*.render.json``, ``*.claims.json``, ...).
Every SHA-256 a job recorded must still be the file's: a file changed since the build is refused
with one error naming it (rebuild first), so the crate never pairs a job with bytes it did not
read. The files no job recorded a hash for (the figures, tables and documents, and the inputs of
the jobs that record no provenance) are hashed as they are on disk.

Licence and authors come from ``ro_crate`` in ``config/config.yaml`` (``license``: an SPDX URL
or name; ``authors``: ``[{name, id?}]``), or ``--license``: Workflow RO-Crate requires a licence,
and this command does not choose one.

Validation: :func:`validate_crate` runs ``roc-validator`` (crs4's rocrate-validator 0.13) offline.
Its checks fetch the crate's JSON-LD context from https://w3id.org/ro/crate/1.1/context; in its
offline mode it reads it from its HTTP cache only (a miss is a REQUIRED issue, and the crate's
terms are then not expanded). This module fills a cache of its own beforehand with a local copy
of that context (:func:`context_document`, put there by ``setup.sh``), through a transport that
serves that one document and refuses every other URL: nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import io
import json
import mimetypes
import os
import subprocess
import sys
import tempfile
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from metabuild.provenance import sha256_file
from metabuild.registry import RegistryError, read_registry

HELP = "write a Workflow Run RO-Crate (Provenance Run Crate) of the finished build"

#: the profiles the crate conforms to (the versions roc-validator 0.13 checks)
PROFILES = {
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
}
#: roc-validator's identifier of the profile the crate is checked against
VALIDATOR_PROFILE = "provenance-run-crate-0.5"
SNAKEMAKE_ID = "https://snakemake.github.io"
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"
#: as the profiles' checks expect it: the IRI as a string
COMPLETED = "http://schema.org/CompletedActionStatus"
#: The RO-Crate version: Workflow Run RO-Crate 0.5 is defined on RO-Crate 1.1 (RO-Crate 1.3 maps
#: ComputationalWorkflow to another IRI, https://bioschemas.org/terms/ComputationalWorkflow, so a
#: 1.3 crate fails the 0.5 profiles' checks)
RO_CRATE_VERSION = "1.1"
CONTEXT_URL = f"https://w3id.org/ro/crate/{RO_CRATE_VERSION}/context"
#: terms the crate uses that the RO-Crate 1.1 context lacks (RO-Crate 1.3's maps it the same way)
EXTRA_TERMS = {"sha256": "http://schema.org/sha256"}
#: the project's own files the crate carries besides the jobs' inputs and outputs
SOURCE_FOLDERS = ("workflow", "config")
_TEXT_SUFFIXES = {".qmd", ".smk", ".lua", ".typ", ".csl", ".bib", ".rst", ".R", ".txt", ".cff", ".log", ""}
_MEDIA_TYPES = {".md": "text/markdown", ".yaml": "application/yaml", ".yml": "application/yaml", ".py": "text/x-python"}


class RunCrateError(ValueError):
    """A build this command cannot describe (not built, built from other files, no licence)."""


@dataclass
class JobRun:
    """One job of the build as Snakemake recorded it."""

    rule: str
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    start: float | None = None
    end: float | None = None

    @property
    def name(self) -> str:
        """The job as the provenance records name it: ``rule[key=value, ...]``."""
        if not self.wildcards:
            return self.rule
        return self.rule + "[" + ", ".join(f"{k}={v}" for k, v in self.wildcards.items()) + "]"


@dataclass
class Rule:
    name: str
    docstring: str | None
    script: str | None


@dataclass
class Build:
    """What Snakemake knows of a finished build: where, which rules, which jobs, and when."""

    workdir: Path
    basedir: Path
    snakefile: Path
    config: dict[str, Any]
    configfiles: list[Path]
    snakemake_version: str
    rules: dict[str, Rule] = field(default_factory=dict)
    jobs: list[JobRun] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# the build, as Snakemake recorded it


def _run_of(job: Any) -> JobRun:
    """A job of Snakemake's DAG as a :class:`JobRun` (times not yet known)."""
    return JobRun(
        rule=job.rule.name,
        wildcards={k: str(v) for k, v in job.wildcards_dict.items()},
        inputs=[str(f) for f in job.input],
        outputs=[str(f) for f in job.output],
    )


def read_build(workdir: str | Path, snakefile: str | Path | None = None) -> Build:
    """The jobs of the default target's DAG and their start and end times, from Snakemake's
    records of the build in ``workdir`` (its ``.snakemake/metadata``), through Snakemake's
    reporter interface: this module registers a reporter of its own and asks Snakemake's API for
    a report. Raises :class:`RunCrateError` when a job has no record (the build is not complete)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import DAGSettings, OutputSettings, ResourceSettings
    from snakemake_interface_common.exceptions import WorkflowError
    from snakemake_interface_report_plugins.registry import ReportPluginRegistry
    from snakemake_interface_report_plugins.reporter import ReporterBase

    workdir = Path(workdir).resolve()
    snakefile = Path(snakefile).resolve() if snakefile else workdir / "Snakefile"
    found: list[Build] = []
    missing: list[str] = []
    pending: list[tuple[Any, Any]] = []

    class Reporter(ReporterBase):
        def render(self) -> None:
            import snakemake

            workflow = self.dag.workflow
            build = Build(
                workdir=Path.cwd(),
                basedir=Path(workflow.basedir),
                snakefile=Path(workflow.main_snakefile),
                config=dict(workflow.config),
                configfiles=[Path(f) for f in workflow.configfiles],
                snakemake_version=snakemake.__version__,
            )
            recorded = {}
            for record in self.jobs:
                start = None if record.starttime in (None, sys.maxsize) else float(record.starttime)
                end = None if not record.endtime else float(record.endtime)
                recorded[id(record.job)] = (start, end)
            for level in self.dag.toposorted():
                for job in sorted(level, key=lambda j: (j.rule.name, str(j.wildcards_dict))):
                    if not job.output:
                        continue  # the target rule (`all`): no job of its own
                    run = _run_of(job)
                    if self.dag.needrun(job):
                        # Snakemake's own judgement: a job that would run now (its code, params
                        # or inputs changed, an output is missing) did not make the files on disk;
                        # in topological order, the first names the cause
                        pending.append((run.name, self.dag.reason(job)))
                    if id(job) not in recorded:
                        missing.append(run.name)
                        continue
                    run.start, run.end = recorded[id(job)]
                    build.jobs.append(run)
                    if job.rule.name not in build.rules:
                        script = job.input.get("script") if hasattr(job.input, "get") else None
                        build.rules[job.rule.name] = Rule(job.rule.name, job.rule.docstring, script and str(script))
            found.append(build)

    plugin = types.ModuleType("snakemake_report_plugin_metabuild_run_crate")
    plugin.Reporter = Reporter
    registry = ReportPluginRegistry()
    registry.register_plugin(plugin.__name__, plugin)
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=snakefile, workdir=workdir)
            workflow.dag(DAGSettings()).create_report(reporter="metabuild-run-crate")
    except WorkflowError as exc:
        raise RunCrateError(f"Snakemake cannot read the build in {workdir}: {exc}") from None
    if pending:
        job, reason = pending[0]
        raise RunCrateError(
            f"the build in {workdir} is not up to date: Snakemake would run {len(pending)} job(s) "
            f"(first: {job}, because: {reason}); rebuild first (snakemake --cores 2)"
        )
    if missing:
        raise RunCrateError(
            f"Snakemake has no record of {len(missing)} job(s) of the build in {workdir} "
            f"(first: {missing[0]}): build it first (snakemake --cores 2)"
        )
    return found[0]


# ------------------------------------------------------------------------------------------------
# what each job read, from its own provenance


def job_records(build: Build) -> dict[str, dict[str, Any]]:
    """Job name -> the provenance the job recorded (rule, inputs with SHA-256, software, ...):
    the registry's activities (read through :func:`metabuild.registry.read_registry`), then the
    ``provenance`` object of a job's JSON output, for the jobs that made no numbers. A job whose
    outputs carry no provenance (figures, tables, documents) has none."""
    results = build.workdir / build.config.get("results_dir", "results")
    records: dict[str, dict[str, Any]] = {}
    try:
        registry = read_registry(results / "numbers.json")
    except RegistryError as exc:
        raise RunCrateError(str(exc)) from None
    records.update(registry["activities"])
    for job in build.jobs:
        if job.name in records:
            continue
        for output in job.outputs:
            if not output.endswith(".json"):
                continue
            try:
                data = json.loads((build.workdir / output).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            provenance = data.get("provenance") if isinstance(data, Mapping) else None
            if isinstance(provenance, Mapping) and provenance.get("job") == job.name:
                records[job.name] = dict(provenance)
                break
    return records


# ------------------------------------------------------------------------------------------------
# the crate


@dataclass
class _Files:
    """The crate's File entities, by path relative to the working directory."""

    crate: Any
    build: Build
    recorded: dict[str, list[tuple[str, str]]]  # path -> [(sha256 a job recorded, that job), ...]
    entities: dict[str, Any] = field(default_factory=dict)

    def dest(self, path: str) -> str:
        """The file's path in the crate: relative to the Snakefile's folder (the workflow's root,
        which for a review built in its own folder is above the working directory)."""
        absolute = (self.build.workdir / path).resolve()
        try:
            return absolute.relative_to(self.build.basedir.resolve()).as_posix()
        except ValueError:
            raise RunCrateError(f"{path} is outside the workflow's folder {self.build.basedir}") from None

    def get(self, path: str) -> Any:
        path = os.path.normpath(path)
        if path in self.entities:
            return self.entities[path]
        source = self.build.workdir / path
        if not source.is_file():
            raise RunCrateError(f"{source} is missing: the build is not complete (snakemake --cores 2)")
        digest = sha256_file(source)
        for expected, job in self.recorded.get(path, []):
            if expected == digest:
                continue
            raise RunCrateError(
                f"{path} changed since job {job} read it (SHA-256 recorded {expected[:12]}..., now "
                f"{digest[:12]}...): the results are not of these files; rebuild (snakemake --cores 2)"
            )
        properties = {"name": Path(path).name, "sha256": digest, "contentSize": str(source.stat().st_size)}
        media_type = _media_type(source)
        if media_type:
            properties["encodingFormat"] = media_type
        entity = self.crate.add_file(source, dest_path=self.dest(path), properties=properties)
        self.entities[path] = entity
        return entity


def _media_type(path: Path) -> str | None:
    if path.suffix in _MEDIA_TYPES:
        return _MEDIA_TYPES[path.suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        return guessed
    return "text/plain" if path.suffix in _TEXT_SUFFIXES else None


def _one(entities: list[Any]) -> Any:
    """A list of entities, or its only entity (RO-Crate: no singleton arrays)."""
    return entities[0] if len(entities) == 1 else entities


def _time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")


def _fragment(prefix: str, name: str) -> str:
    return f"#{prefix}-" + quote(name.replace("[", "/").replace("]", "").replace(", ", "/"), safe="/=-_.")


def _workflow_version(root: Path) -> str | None:
    """``git describe --always --dirty`` of the project, when it is a git checkout."""
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=root, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _title(build: Build) -> str | None:
    """The title of the first manuscript document (its YAML front matter), if any."""
    documents = (build.config.get("manuscript") or {}).get("documents") or []
    if not documents:
        return None
    path = build.workdir / "manuscript" / f"{documents[0]}.qmd"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    if not text.startswith("---"):
        return None
    import yaml

    try:
        front = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return None
    title = front.get("title") if isinstance(front, Mapping) else None
    return str(title) if title else None


def crate_settings(build: Build, license: str | None = None) -> dict[str, Any]:
    """Licence and authors: ``ro_crate`` in the configuration, the licence overridden by
    ``license``. Raises :class:`RunCrateError` when there is no licence."""
    settings = build.config.get("ro_crate") or {}
    chosen = license or settings.get("license")
    if not chosen:
        raise RunCrateError(
            "the crate needs a licence (Workflow RO-Crate requires one): set ro_crate.license in "
            "config/config.yaml (an SPDX URL such as https://spdx.org/licenses/CC-BY-4.0) or pass --license"
        )
    return {"license": str(chosen), "authors": list(settings.get("authors") or [])}


def _source_files(build: Build) -> list[str]:
    """The project's own files the crate carries: the workflow and its configuration (beside the
    jobs' inputs and outputs), and every file of the data folder."""
    workdir = build.workdir
    folders = [build.basedir / name for name in SOURCE_FOLDERS]
    folders.append(workdir / build.config.get("data_dir", "data"))
    folders.extend(f.parent for f in build.configfiles)
    files: set[str] = {os.path.relpath(f, workdir) for f in build.configfiles}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            parts = path.relative_to(folder).parts
            if not path.is_file() or "__pycache__" in parts or any(p.startswith(".") for p in parts):
                continue
            files.add(os.path.relpath(path, workdir))
    return sorted(files)


def build_crate(build: Build, license: str | None = None) -> Any:
    """The Provenance Run Crate of ``build`` (a ``rocrate.rocrate.ROCrate``, not yet written)."""
    from rocrate.model.computationalworkflow import ComputationalWorkflow
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    class Workflow(ComputationalWorkflow):
        # Provenance Run Crate: a workflow that lists its steps is also a HowTo
        TYPES = [*ComputationalWorkflow.TYPES, "HowTo"]

    settings = crate_settings(build, license)
    records = job_records(build)
    recorded: dict[str, list[tuple[str, str]]] = {}
    for job, record in records.items():
        for item in record.get("inputs") or []:
            recorded.setdefault(os.path.normpath(item["path"]), []).append((item["sha256"], job))

    crate = ROCrate(version=RO_CRATE_VERSION)
    crate.metadata.extra_terms.update(EXTRA_TERMS)
    files = _Files(crate, build, recorded)
    title = _title(build)
    crate.name = f"Build of {title}" if title else f"Build of {build.basedir.name}"
    crate.description = (
        "One build of this project by Snakemake: the workflow, every job it ran (the files each read "
        "and made, with their SHA-256) and the files themselves, as a Provenance Run Crate."
    )
    if settings["license"].startswith(("https://", "http://")):
        crate.license = crate.add(
            ContextEntity(
                crate,
                settings["license"],
                properties={"@type": "CreativeWork", "name": settings["license"].rstrip("/").rsplit("/", 1)[-1]},
            )
        )
    else:
        crate.license = settings["license"]
    authors = []
    for author in settings["authors"]:
        person_id = author.get("id") or _fragment("person", author["name"])
        authors.append(
            crate.add(ContextEntity(crate, person_id, properties={"@type": "Person", "name": author["name"]}))
        )
    if authors:
        crate.creator = _one(authors)

    # the workflow
    workflow_path = os.path.relpath(build.snakefile, build.workdir)
    workflow = crate.add_workflow(
        build.snakefile,
        dest_path=files.dest(workflow_path),
        main=True,
        lang="snakemake",
        cls=Workflow,
        properties={
            "name": f"Snakemake workflow: {title}" if title else "Snakemake workflow",
            "sha256": sha256_file(build.snakefile),
            "encodingFormat": "text/plain",
            "conformsTo": {"@id": BIOSCHEMAS_WORKFLOW},
        },
    )
    files.entities[os.path.normpath(workflow_path)] = workflow
    crate.add(
        ContextEntity(
            crate,
            BIOSCHEMAS_WORKFLOW,
            properties={"@type": "CreativeWork", "name": "Bioschemas ComputationalWorkflow profile", "version": "1.0"},
        )
    )
    version = _workflow_version(build.basedir)
    if version:
        workflow["version"] = version
    for path in _source_files(build):
        files.get(path)
    readme = build.basedir / "README.md"
    if readme.is_file():
        entity = files.get(os.path.relpath(readme, build.workdir))
        entity["about"] = crate.root_dataset

    engine = crate.add(
        ContextEntity(
            crate,
            SNAKEMAKE_ID,
            properties={
                "@type": "SoftwareApplication",
                "name": "Snakemake",
                "url": SNAKEMAKE_ID,
                "softwareVersion": build.snakemake_version,
            },
        )
    )
    tools, steps = {}, {}
    for position, rule in enumerate(build.rules.values()):
        tool_properties: dict[str, Any] = {"@type": "SoftwareApplication", "name": rule.name}
        if rule.docstring:
            tool_properties["description"] = rule.docstring
        tool = crate.add(ContextEntity(crate, _fragment("rule", rule.name), properties=tool_properties))
        if rule.script:
            tool["hasPart"] = files.get(rule.script)
        tools[rule.name] = tool
        steps[rule.name] = crate.add(
            ContextEntity(
                crate,
                _fragment("step", rule.name),
                properties={
                    "@type": "HowToStep",
                    "name": rule.name,
                    "position": str(position),
                    "workExample": {"@id": tool.id},
                },
            )
        )
    workflow["hasPart"] = list(tools.values())
    workflow["step"] = list(steps.values())

    # the jobs
    actions, controls = [], []
    read, made = set(), set()
    for job in build.jobs:
        # what the job read: its own record where it made one (the same files as Snakemake's
        # inputs, but for folders), else Snakemake's
        record = records.get(job.name)
        read_paths = [i["path"] for i in record["inputs"]] if record and record.get("inputs") else job.inputs
        inputs = [files.get(p) for p in dict.fromkeys(os.path.normpath(p) for p in read_paths)]
        outputs = [files.get(p) for p in dict.fromkeys(os.path.normpath(p) for p in job.outputs)]
        read.update(os.path.normpath(p) for p in read_paths)
        made.update(os.path.normpath(p) for p in job.outputs)
        properties: dict[str, Any] = {
            "@type": "CreateAction",
            "name": job.name,
            "description": f"Snakemake job of rule {job.rule}"
            + (" (" + ", ".join(f"{k}={v}" for k, v in job.wildcards.items()) + ")" if job.wildcards else ""),
            "instrument": {"@id": tools[job.rule].id},
            "actionStatus": COMPLETED,
        }
        if _time(job.start):
            properties["startTime"] = _time(job.start)
        if _time(job.end):
            properties["endTime"] = _time(job.end)
        action = crate.add(ContextEntity(crate, _fragment("job", job.name), properties=properties))
        action["object"] = _one(inputs)
        action["result"] = _one(outputs)
        if authors:
            action["agent"] = _one(authors)
        actions.append(action)
        controls.append(
            crate.add(
                ContextEntity(
                    crate,
                    _fragment("control", job.name),
                    properties={
                        "@type": "ControlAction",
                        "name": f"orchestrate {job.name}",
                        "instrument": {"@id": steps[job.rule].id},
                        "object": {"@id": action.id},
                        "actionStatus": COMPLETED,
                    },
                )
            )
        )

    # the run
    starts = [j.start for j in build.jobs if j.start is not None]
    ends = [j.end for j in build.jobs if j.end is not None]
    run_properties: dict[str, Any] = {
        "@type": "CreateAction",
        "name": f"Run of {workflow['name']}",
        "description": "The build: the files no job made as its object, the files no job read as its result.",
        "instrument": {"@id": workflow.id},
        "actionStatus": COMPLETED,
    }
    if starts:
        run_properties["startTime"] = _time(min(starts))
    if ends:
        run_properties["endTime"] = _time(max(ends))
    run = crate.add(ContextEntity(crate, "#run", properties=run_properties))
    run["object"] = _one([files.get(p) for p in sorted(read - made)])
    run["result"] = _one([files.get(p) for p in sorted(made - read)])
    if authors:
        run["agent"] = _one(authors)
    crate.add(
        ContextEntity(
            crate,
            "#organize",
            properties={
                "@type": "OrganizeAction",
                "name": "Snakemake's orchestration of the run",
                "instrument": {"@id": engine.id},
                "result": {"@id": run.id},
                "object": _one([{"@id": c.id} for c in controls]),
                **({"startTime": run_properties["startTime"]} if starts else {}),
                **({"endTime": run_properties["endTime"]} if ends else {}),
            },
        )
    )
    crate.root_dataset["mentions"] = [run, *actions]

    # the profiles (Workflow RO-Crate's was added with the main workflow)
    for profile_id, label in PROFILES.items():
        profile = crate.get(profile_id) or crate.add(
            ContextEntity(
                crate,
                profile_id,
                properties={"@type": "CreativeWork", "name": label, "version": profile_id.rsplit("/", 1)[-1]},
            )
        )
        crate.root_dataset.append_to("conformsTo", profile)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    published = _time(float(epoch)) if epoch.isdigit() else _time(max(ends)) if ends else None
    if published:
        crate.datePublished = published
    return crate


def write_crate(crate: Any, out: str | Path) -> Path:
    """Write ``crate`` with its files to ``out``: a zip file when it ends in ``.zip``, else a
    folder (replaced whole). Nothing is left half-written: the crate is made beside ``out`` and
    moved into place."""
    import shutil

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        if out.suffix == ".zip":
            staged = Path(tmp) / out.name
            crate.write_zip(staged)
            os.replace(staged, out)
        else:
            staged = Path(tmp) / "crate"
            crate.write(staged)
            if out.exists():
                shutil.rmtree(out)
            os.replace(staged, out)
    return out


# ------------------------------------------------------------------------------------------------
# validation, offline


def context_document() -> Path:
    """The RO-Crate 1.1 JSON-LD context on this machine (``METABUILD_RO_CRATE_CONTEXT``, else where
    ``setup.sh`` puts it: ``<venv>/share/metabuild/ro-crate-1.1-context.jsonld``). Raises
    :class:`RunCrateError` when it is missing or is not that context."""
    override = os.environ.get("METABUILD_RO_CRATE_CONTEXT", "").strip()
    path = Path(override) if override else Path(sys.prefix) / "share" / "metabuild" / "ro-crate-1.1-context.jsonld"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RunCrateError(
            f"no RO-Crate 1.1 JSON-LD context at {path}: roc-validator needs it and this machine cannot fetch it "
            "(run `bash setup.sh --no-build`, which takes it from the rocrate 0.10.0 wheel, or set "
            "METABUILD_RO_CRATE_CONTEXT to a copy of https://w3id.org/ro/crate/1.1/context)"
        ) from None
    if not isinstance(document, Mapping) or document.get("@id") != CONTEXT_URL or "@context" not in document:
        raise RunCrateError(f"{path} is not the RO-Crate 1.1 JSON-LD context ({CONTEXT_URL})")
    return path


def _seed_context_cache(cache: Path, documents: Mapping[str, bytes]) -> None:
    """Put ``documents`` (URL -> bytes) into a requests-cache database as if they had been fetched
    from their URLs: roc-validator's offline mode reads contexts from this cache only. The
    session's only transport serves these documents: nothing is fetched from the network."""
    import requests
    import requests_cache
    import urllib3
    from requests.adapters import HTTPAdapter

    class Local(HTTPAdapter):
        def send(self, request, **kwargs):
            if request.url not in documents:
                raise requests.ConnectionError(f"offline: {request.url} is not served")
            raw = urllib3.HTTPResponse(
                body=io.BytesIO(documents[request.url]),
                headers={"Content-Type": "application/ld+json"},
                status=200,
                preload_content=False,
                request_url=request.url,
            )
            return self.build_response(request, raw)

    session = requests_cache.CachedSession(
        cache_name=str(cache), backend="sqlite", expire_after=-1, allowable_methods=("GET",), allowable_codes=(200,)
    )
    try:
        session.mount("https://", Local())
        session.mount("http://", Local())
        for url in documents:
            session.get(url, headers={"Accept": "application/ld+json, application/json"}).raise_for_status()
    finally:
        session.close()


@dataclass
class Issue:
    severity: str
    check: str
    message: str
    entity: str | None


def validate_crate(path: str | Path, severity: str = "REQUIRED", profile: str = VALIDATOR_PROFILE) -> list[Issue]:
    """roc-validator's issues with the crate at ``path`` (folder or zip), checked against
    ``profile`` (and the profiles it extends) at ``severity`` (``REQUIRED``, ``RECOMMENDED`` or
    ``OPTIONAL``: that level and above), offline."""
    from rocrate_validator import models, services

    with tempfile.TemporaryDirectory(prefix="metabuild-roc-cache-") as tmp:
        cache = Path(tmp) / "http_cache"
        _seed_context_cache(cache, {CONTEXT_URL: context_document().read_bytes()})
        settings = services.ValidationSettings(
            rocrate_uri=str(Path(path).resolve()),
            profile_identifier=profile,
            requirement_severity=models.Severity[severity],
            offline=True,
            cache_path=cache,
        )
        result = services.validate(settings)
        return [
            Issue(
                severity=issue.severity.name,
                check=issue.check.identifier,
                message=str(issue.message),
                entity=getattr(issue, "violatingEntity", None),
            )
            for issue in result.get_issues()
        ]


# ------------------------------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--out",
        default=None,
        help="the crate: a folder, or a zip file when it ends in .zip (default: <results>/ro-crate.zip)",
    )
    parser.add_argument("--directory", default=".", help="the built project (default: the current folder)")
    parser.add_argument("--snakefile", default=None, help="the workflow (default: the Snakefile of --directory)")
    parser.add_argument("--license", default=None, help="the crate's licence (default: ro_crate.license in config)")
    parser.add_argument(
        "--validate",
        choices=["REQUIRED", "RECOMMENDED", "OPTIONAL"],
        nargs="?",
        const="REQUIRED",
        default=None,
        help=f"then check it with roc-validator, offline, against {VALIDATOR_PROFILE} at this level "
        "(default REQUIRED); exit 1 when it finds an issue",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        build = read_build(args.directory, args.snakefile)
        crate = build_crate(build, license=args.license)
        out = (
            Path(args.out) if args.out else build.workdir / build.config.get("results_dir", "results") / "ro-crate.zip"
        )
        write_crate(crate, out)
    except RunCrateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {len(build.jobs)} jobs, {len(build.rules)} rules")
    if args.validate is None:
        return 0
    issues = validate_crate(out, args.validate)
    for issue in issues:
        print(f"{issue.severity} {issue.check} {issue.entity or ''}: {issue.message}")
    print(f"roc-validator {VALIDATOR_PROFILE} at {args.validate}: {len(issues)} issue(s)")
    return 1 if issues else 0
