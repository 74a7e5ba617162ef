"""Snakemake's own tools tell the truth about this workflow.

* `snakemake --report` holds the paper's figures, tables and documents (each byte-identical to
  the built file, with its caption and category), and headless Chromium shows a forest plot in
  it; the screenshot is saved to results/checks/snakemake_report.png for a person to look at.
* After a job script is edited, `snakemake --list-changes code` lists exactly the outputs of
  that script's rule, `--summary` marks them, and `--rerun-triggers code` reruns only them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_project, headless_chromium

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SCREENSHOT = ROOT / "results" / "checks" / "snakemake_report.png"

pytestmark = pytest.mark.slow


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _script_variable(html: str, name: str) -> dict:
    """A JSON object the report's page defines as `var <name> = {...};` in <script id="<name>">."""
    match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert match, f"the report has no <script id={name!r}>"
    return json.loads(match.group(1))


def _decode(data_uri: str) -> bytes:
    header, _, payload = data_uri.partition(",")
    assert header.endswith(";base64"), header[:80]
    return base64.b64decode(payload)


@pytest.fixture(scope="module")
def report(built_results: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(report.html, the results folder it was made from)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    proc = subprocess.run([*SNAKEMAKE, "--report", str(path)], cwd=built_results.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path, built_results


def test_report_holds_every_figure_table_and_document(report):
    path, results = report
    html = path.read_text(encoding="utf-8")
    entries = _script_variable(html, "results")
    categories = _script_variable(html, "categories")
    config = yaml.safe_load((results.parent / "config" / "config.yaml").read_text())

    stems = [s["figure"] for s in config["analyses"].values() if s.get("figure")]
    figures = [f"results/figures/{s}.svg" for s in [*stems, "flow", "risk_of_bias", "leave_one_out"]]
    tables = [f"results/tables/{t}.csv" for t in ("table1", "table2_grade", "table_s2_adverse_proportions")]
    documents = [
        f"results/{folder}/{document}.{fmt}"
        for folder in ("manuscript", "submission")
        for document in config["manuscript"]["documents"]
        for fmt in ("pdf", "html")
        if fmt in config["manuscript"]["formats"]
    ] + ["results/reports/reproduction.html", "results/manuscript/provenance.html", "results/manuscript/provenance.pdf"]
    # paper and supplement, PDF and HTML, two renderings; the reproduction report; the provenance document
    assert len(documents) == 11
    assert set(entries) == {*figures, *tables, *documents}

    for name in [*figures, *tables, *documents]:
        embedded = _decode(entries[name]["data_uri"])
        built = (results.parent / name).read_bytes()
        assert _sha256(embedded) == _sha256(built), f"{name} in the report differs from the built file"
        assert entries[name]["caption"].strip(), f"{name} has no caption"

    filed = {name: (cat, sub) for cat, subs in categories.items() for sub, names in subs.items() for name in names}
    assert {filed[f][0] for f in figures} == {"Figures"}
    assert {filed[f"results/figures/{s}.svg"][1] for s in stems} == {"Forest plots"}
    assert {filed[t][0] for t in tables} == {"Tables"}
    assert {filed[d][0] for d in documents} == {"Documents"}
    assert filed["results/submission/paper.pdf"][1] == "Submission"
    assert filed["results/manuscript/paper.pdf"][1] == "Audit rendering"
    # a forest plot's caption names its figure and the analysis result it was drawn from
    primary = entries["results/figures/forest_primary.svg"]
    assert "forest_primary" in primary["caption"] and "results/analyses/primary.json" in primary["caption"]
    assert primary["labels"] == {"figure": "forest_primary", "analysis": "primary"}
    # the workflow description (workflow/report/workflow.rst) heads the report
    assert "Orhurhu" in html and "W3C PROV" in html


@pytest.mark.needs_browser
def test_chromium_shows_a_forest_plot_in_the_report(report):
    """Click through the report as a person would (Figures, Forest plots, the eye of
    forest_primary): the figure is displayed, decoded, and is not blank."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, _ = report
    driver = headless_chromium("--window-size=1400,1000")
    try:
        driver.get(path.as_uri())
        wait = WebDriverWait(driver, 30)

        def click_link(text: str) -> None:
            wait.until(lambda d: d.find_elements(By.XPATH, f"//a[normalize-space(.)='{text}']"))[0].click()

        click_link("Figures")
        click_link("Forest plots")
        row = wait.until(lambda d: d.find_elements(By.XPATH, "//tr[td[normalize-space(.)='forest_primary']]"))[0]
        row.find_element(By.CSS_SELECTOR, "a[iconname='eye']").click()
        expected = _sha256((report[1] / "figures" / "forest_primary.svg").read_bytes())

        def shown_figure(d):
            # the displayed figure, not the Snakemake logo (also an SVG image) in the side bar
            for img in d.find_elements(By.TAG_NAME, "img"):
                src = img.get_attribute("src") or ""
                if src.startswith("data:image/svg+xml") and _sha256(_decode(src)) == expected:
                    return img
            return None

        image = wait.until(shown_figure)
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
        time.sleep(0.5)  # let the page paint before the screenshot
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOT))
        box = image.rect
    finally:
        driver.quit()
    shot = Image.open(SCREENSHOT).convert("L")
    scale = shot.width / 1400
    left, top = int(box["x"] * scale), int(box["y"] * scale)
    region = shot.crop((left, top, min(shot.width, left + int(box["width"] * scale)), shot.height))
    dark = sum(region.histogram()[:128])  # pixels darker than mid-grey
    assert region.width > 300 and dark > 0.005 * region.width * region.height, "the figure's area is blank"


# --- the change listings ----------------------------------------------------------------------

FIGURE_TARGETS = ["results/figures/forest_primary.svg", "results/figures/forest_dose.svg", "results/figures/flow.svg"]


def _listing(project: Path, *args: str) -> list[str]:
    proc = subprocess.run([*SNAKEMAKE, *args, *FIGURE_TARGETS], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("results/")]


@pytest.fixture(scope="module")
def edited_script_project(tmp_path_factory) -> Path:
    """A copy of the project with two forest plots and the flow diagram built, then
    workflow/scripts/forest_plot.py edited (a comment added, the file's mtime kept)."""
    project = copy_project(tmp_path_factory.mktemp("listing") / "project")
    subprocess.run([*SNAKEMAKE, "--cores", "2", *FIGURE_TARGETS], cwd=project, check=True, capture_output=True)
    assert _listing(project, "--list-changes", "code") == [], "a fresh build lists no code change"
    script = project / "workflow" / "scripts" / "forest_plot.py"
    stat = script.stat()
    script.write_text(script.read_text() + "\n# an edit\n")
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # only the content tells
    return project


def test_list_changes_code_lists_the_outputs_of_an_edited_script(edited_script_project):
    listed = _listing(edited_script_project, "--list-changes", "code")
    expected = {f"results/figures/{s}.{e}" for s in ("forest_primary", "forest_dose") for e in ("svg", "png")}
    assert set(listed) == expected


def test_summary_marks_the_outputs_of_an_edited_script(edited_script_project):
    proc = subprocess.run(
        [*SNAKEMAKE, "--summary", *FIGURE_TARGETS], cwd=edited_script_project, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r.split("\t")[0]: r.split("\t") for r in proc.stdout.splitlines() if r.startswith("results/")}
    # the script's modification time was kept: only its content tells that the rule changed
    assert rows["results/figures/forest_primary.svg"][-2:] == ["rule implementation changed", "update pending"]
    assert rows["results/figures/flow.svg"][-2:] == ["ok", "no update"]


def test_code_trigger_alone_reruns_only_the_edited_scripts_jobs(edited_script_project):
    """With modification times ignored (`--rerun-triggers code`), the forest plots rerun
    because their script's content changed, and the flow diagram does not."""
    proc = subprocess.run(
        [*SNAKEMAKE, "-n", *FIGURE_TARGETS, "--rerun-triggers", "code"],
        cwd=edited_script_project,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = re.findall(r"^(?:local)?rule (\w+):", proc.stdout, re.M)
    assert sorted(jobs) == ["forest_plot", "forest_plot"], proc.stdout
    assert "Code has changed since last execution" in proc.stdout


# --- the RO-Crate of a build (snakemake-report-plugin-fairscape) -------------------------------


@pytest.fixture(scope="module")
def crate(report, tmp_path_factory) -> dict:
    _, results = report
    path = tmp_path_factory.mktemp("crate") / "ro-crate-metadata.json"
    proc = subprocess.run(
        [*SNAKEMAKE, "--reporter", "fairscape", "--report-fairscape-path", str(path)],
        cwd=results.parent,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(path.read_text())


def test_ro_crate_describes_every_job_with_its_script_inputs_and_outputs(crate, report):
    """The crate (RO-Crate 1.2, FAIRSCAPE EVI profile) holds the run, one computation per job
    with its rule, inputs (the job script among them) and outputs, and the data files as the
    run's inputs; each output's recorded size is the built file's."""
    _, results = report
    project = results.parent
    graph = {entity["@id"]: entity for entity in crate["@graph"]}
    descriptor = graph["ro-crate-metadata.json"]
    assert descriptor["conformsTo"]["@id"].startswith("https://w3id.org/ro/crate/1.")
    root = graph[descriptor["about"]["@id"]]
    assert "Dataset" in root["@type"]

    def typed(kind: str) -> list[dict]:
        return [e for e in graph.values() if f"https://w3id.org/EVI#{kind}" in e.get("@type", [])]

    def paths(refs: list[dict]) -> set[str]:
        return {graph[r["@id"]]["localPath"] for r in refs}

    software = {e["@id"]: e["name"] for e in typed("Software")}
    run = next(c for c in typed("Computation") if c.get("command") == "snakemake")
    assert {software[s["@id"]] for s in run["usedSoftware"]} == {"Snakefile", "Snakemake"}
    data_files = {f"data/{p.name}" for p in (project / "data").glob("*.csv")}
    assert data_files <= paths(run["usedDataset"])

    jobs = [c for c in typed("Computation") if c is not run]
    by_output = {path: job for job in jobs for path in paths(job["generated"])}
    for output in ["results/figures/forest_primary.svg", "results/tables/table1.csv", "results/numbers.json"]:
        assert output in by_output, f"{output} has no computation"
    forest = by_output["results/figures/forest_primary.svg"]
    assert [software[s["@id"]] for s in forest["usedSoftware"]] == ["forest_plot"]
    assert {"results/analyses/primary.json", "workflow/scripts/forest_plot.py"} <= paths(forest["usedDataset"])
    assert paths(forest["generated"]) == {"results/figures/forest_primary.svg", "results/figures/forest_primary.png"}
    # every file Snakemake made is in the crate, with the size it has on disk
    summary = subprocess.run([*SNAKEMAKE, "--summary"], cwd=project, capture_output=True, text=True, check=True)
    built = {row.split("\t")[0] for row in summary.stdout.splitlines() if row.startswith("results/")}
    assert len(built) > 50 and built == set(by_output)
    for dataset in typed("Dataset"):
        if dataset.get("generatedBy"):
            assert int(dataset["contentSize"]) == (project / dataset["localPath"]).stat().st_size
