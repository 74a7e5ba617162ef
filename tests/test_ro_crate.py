"""`python -m metabuild ro-crate`: a Provenance Run Crate of a finished build.

The crate of the session's build is checked by roc-validator (crs4's rocrate-validator) against
the Provenance Run Crate 0.5 profile, offline, with no REQUIRED-level issue (and a crate broken on
purpose is refused, so the check is not empty); then against the build itself: every data file
with its SHA-256, every job of the number registry as a CreateAction with the registry's inputs,
the paper's PDF as a result of its rendering job.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import copy_project

from metabuild.registry import read_registry
from metabuild.run_crate import Build, RunCrateError, crate_settings, validate_crate

pytestmark = pytest.mark.slow

LICENSE = "https://spdx.org/licenses/CC-BY-4.0"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _export(project: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "workflow" / "lib")}
    return subprocess.run(
        [sys.executable, "-m", "metabuild", "ro-crate", "--out", str(out), *extra],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture(scope="module")
def crate(built_results: Path, tmp_path_factory) -> tuple[Path, dict, Path]:
    """(crate folder, its metadata by @id, the built project)."""
    project = built_results.parent
    out = tmp_path_factory.mktemp("ro-crate") / "crate"
    proc = _export(project, out, "--license", LICENSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metadata = json.loads((out / "ro-crate-metadata.json").read_text(encoding="utf-8"))
    return out, {entity["@id"]: entity for entity in metadata["@graph"]}, project


def _ids(value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v["@id"] for v in values]


def _job_actions(graph: dict) -> dict[str, dict]:
    """Job name -> its CreateAction (the run's own CreateAction, #run, is not a job)."""
    return {e["name"]: e for e in graph.values() if e.get("@type") == "CreateAction" and e["@id"] != "#run"}


def test_crate_passes_roc_validator_offline(crate, monkeypatch):
    """No REQUIRED-level issue at the Provenance Run Crate 0.5 profile (and the profiles it
    extends), with every connection to a host other than 127.0.0.1 refused and recorded."""
    out, _, _ = crate
    attempts: list[object] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")):
            attempts.append(address)
            raise OSError(f"test: no network ({address})")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost", None):
            attempts.append(host)
            raise socket.gaierror(f"test: no network ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    issues = validate_crate(out, "REQUIRED")
    assert issues == [], "\n".join(f"{i.check} {i.entity}: {i.message}" for i in issues)
    assert attempts == [], f"the validator tried the network: {attempts}"


def test_validator_refuses_a_crate_broken_on_purpose(crate, tmp_path):
    """The same crate with one job's instrument removed has a REQUIRED issue naming that job:
    the validation above checked something."""
    out, graph, _ = crate
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    metadata = json.loads((broken / "ro-crate-metadata.json").read_text(encoding="utf-8"))
    target = "#job-run_analysis/analysis=primary"
    for entity in metadata["@graph"]:
        if entity["@id"] == target:
            del entity["instrument"]
    (broken / "ro-crate-metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    issues = validate_crate(broken, "REQUIRED")
    assert any(i.severity == "REQUIRED" and target in str(i.entity) for i in issues), issues


def test_every_data_file_is_in_the_crate_with_its_sha256(crate):
    out, graph, project = crate
    csvs = sorted((project / "data").glob("*.csv"))
    assert len(csvs) >= 5
    for path in csvs:
        rel = path.relative_to(project).as_posix()
        entity = graph.get(rel)
        assert entity is not None, f"{rel} is not in the crate"
        assert entity["@type"] == "File"
        assert entity["sha256"] == _sha256(path), rel
        assert entity["contentSize"] == str(path.stat().st_size)
        assert (out / rel).read_bytes() == path.read_bytes(), f"the crate's copy of {rel} differs"
    assert "./" in graph and all(
        _ids(graph["./"]["hasPart"]).count(p.relative_to(project).as_posix()) == 1 for p in csvs
    )


def test_every_job_of_the_registry_is_a_create_action_with_its_inputs(crate):
    """Each activity of results/numbers.json is a CreateAction of its rule whose object is
    exactly the activity's inputs, with the SHA-256 the job recorded, and whose result holds
    the file the numbers came from."""
    _, graph, project = crate
    registry = read_registry(project / "results" / "numbers.json")
    actions = _job_actions(graph)
    assert len(registry["activities"]) >= 20
    for job, activity in registry["activities"].items():
        action = actions.get(job)
        assert action is not None, f"registry job {job} is not a CreateAction of the crate"
        assert action["instrument"]["@id"] == f"#rule-{activity['rule']}"
        objects = {os.path.normpath(i): graph[i] for i in _ids(action["object"])}
        recorded = {os.path.normpath(i["path"]): i["sha256"] for i in activity["inputs"]}
        assert set(objects) == set(recorded), job
        for path, sha in recorded.items():
            assert objects[path]["sha256"] == sha, (job, path)
        source = next(n["output"] for n in registry["numbers"].values() if n["job"] == job)
        assert source in _ids(action["result"]), job
        assert action["startTime"] <= action["endTime"]


def test_the_paper_pdf_is_a_result_of_its_rendering_job(crate):
    _, graph, project = crate
    pdf = "results/manuscript/paper.pdf"
    makers = [a for a in _job_actions(graph).values() if pdf in _ids(a["result"])]
    assert [a["name"] for a in makers] == ["render_document[folder=manuscript, document=paper]"]
    action = makers[0]
    assert action["instrument"]["@id"] == "#rule-render_document"
    assert graph[pdf]["sha256"] == _sha256(project / pdf)
    assert graph[pdf]["encodingFormat"] == "application/pdf"
    # its inputs include the registry it printed numbers from and the manuscript's source
    assert {"results/numbers.json", "manuscript/paper.qmd"} <= set(_ids(action["object"]))
    assert pdf in _ids(graph["#run"]["result"])


def test_workflow_steps_and_orchestration(crate):
    """The Snakefile is the main workflow (Snakemake), each rule a tool and a step; each job is
    orchestrated by one ControlAction of its rule's step, all under Snakemake's OrganizeAction."""
    _, graph, _ = crate
    root = graph["./"]
    assert root["mainEntity"]["@id"] == "Snakefile"
    assert "https://w3id.org/ro/wfrun/provenance/0.5" in _ids(root["conformsTo"])
    workflow = graph["Snakefile"]
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"} <= set(workflow["@type"])
    assert graph[workflow["programmingLanguage"]["@id"]]["name"] == "Snakemake"
    tools = _ids(workflow["hasPart"])
    assert {"#rule-run_analysis", "#rule-render_document", "#rule-number_registry"} <= set(tools)
    actions = _job_actions(graph)
    controls = [e for e in graph.values() if e.get("@type") == "ControlAction"]
    assert sorted(c["object"]["@id"] for c in controls) == sorted(a["@id"] for a in actions.values())
    for control in controls:
        action = graph[control["object"]["@id"]]
        step = graph[control["instrument"]["@id"]]
        assert step["workExample"]["@id"] == action["instrument"]["@id"]
    organize = next(e for e in graph.values() if e.get("@type") == "OrganizeAction")
    assert organize["result"]["@id"] == "#run"
    assert graph[organize["instrument"]["@id"]]["name"] == "Snakemake"
    assert sorted(_ids(organize["object"])) == sorted(c["@id"] for c in controls)
    assert graph["./"]["license"]["@id"] == LICENSE


def test_zip_and_a_stale_build(built_results: Path, tmp_path):
    """A .zip crate holds the metadata and the files; after a file a job read changes, the export
    is refused with one error naming the file and the job that read it, and writes nothing."""
    source = built_results.parent
    project = copy_project(tmp_path / "project")
    shutil.copytree(source / "results", project / "results")
    shutil.copytree(source / ".snakemake" / "metadata", project / ".snakemake" / "metadata")
    zipped = tmp_path / "crate.zip"
    proc = _export(project, zipped, "--license", LICENSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(zipped) as archive:
        names = set(archive.namelist())
        assert {"ro-crate-metadata.json", "Snakefile", "data/studies.csv", "results/manuscript/paper.pdf"} <= names
        assert archive.read("data/studies.csv") == (project / "data" / "studies.csv").read_bytes()

    again = tmp_path / "again.zip"
    # a job script edited after the build: Snakemake would rerun its jobs
    script = project / "workflow" / "scripts" / "run_analysis.py"
    original = script.read_bytes()
    script.write_bytes(original + b"# edited after the build\n")
    proc = _export(project, again, "--license", LICENSE)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not up to date" in proc.stderr and "run_analysis[analysis=" in proc.stderr, proc.stderr
    assert "workflow/scripts/run_analysis.py" in proc.stderr and "rebuild" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not again.exists()
    script.write_bytes(original)

    # the manuscript edited, its modification time set before the build: Snakemake sees nothing,
    # the SHA-256 the jobs that read it recorded does
    qmd = project / "manuscript" / "paper.qmd"
    qmd.write_text(qmd.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    os.utime(qmd, (946684800, 946684800))  # 2000-01-01
    proc = _export(project, again, "--license", LICENSE)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "manuscript/paper.qmd changed since job " in proc.stderr and "rebuild" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not again.exists()


def test_licence_comes_from_the_configuration_or_is_asked_for():
    def build(config: dict) -> Build:
        return Build(Path("."), Path("."), Path("Snakefile"), config, [], "9")

    settings = crate_settings(build({"ro_crate": {"license": LICENSE, "authors": [{"name": "A. Author"}]}}))
    assert settings == {"license": LICENSE, "authors": [{"name": "A. Author"}]}
    assert crate_settings(build({"ro_crate": {"license": LICENSE}}), "MIT")["license"] == "MIT"
    with pytest.raises(RunCrateError, match="ro_crate.license"):
        crate_settings(build({}))
