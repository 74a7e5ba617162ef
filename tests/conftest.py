"""Shared fixtures: a built copy of the project (for tests that read the finished documents)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Under CI (CI=true), setup.sh has installed every dependency the tests use (R with metafor and
# jsonlite, Chromium and chromedriver, poppler). A test that skips there for a missing dependency
# is a hidden failure: a green CI would mean nothing. Only these may skip under CI, because no
# registry reachable from these machines ships them (see README, "Rendering engines").
SKIPS_ALLOWED_UNDER_CI = ("needs_quarto",)


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and under_ci()):
        return
    if any(item.get_closest_marker(name) for name in SKIPS_ALLOWED_UNDER_CI):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} skipped under CI=true, where setup.sh installs every dependency the tests use: {reason}"
    )


def copy_project(dest: Path) -> Path:
    """Copy the project's tracked and untracked-but-not-ignored files (no results/, no .venv/)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def document_folder(folder: Path, qmd: str, bib: str) -> Path:
    """A document folder as render_document sees it: ``paper.qmd`` and ``refs.bib`` from the
    test, the project's filters, CSL, Typst partials, CSS and ``_quarto.yml`` (pointed at
    ``refs.bib``). Returns ``folder``."""
    manuscript = ROOT / "manuscript"
    folder.mkdir(parents=True)
    for sub in ("filters", "csl", "typst", "css"):
        shutil.copytree(manuscript / sub, folder / sub)
    quarto_yml = (manuscript / "_quarto.yml").read_text(encoding="utf-8")
    (folder / "_quarto.yml").write_text(quarto_yml.replace("references.bib", "refs.bib"), encoding="utf-8")
    (folder / "refs.bib").write_text(bib, encoding="utf-8")
    (folder / "paper.qmd").write_text(qmd, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def built_results(tmp_path_factory) -> Path:
    """The results/ folder of a complete build: the project's own when it is complete and up
    to date (as after `bash setup.sh`), otherwise a fresh build of a copy."""
    check = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--quiet", "all"], cwd=ROOT, capture_output=True, text=True
    )
    if (
        check.returncode == 0
        and "Nothing to be done" in (check.stdout + check.stderr)
        and (ROOT / "results" / "manuscript" / "paper.html").exists()
    ):
        return ROOT / "results"
    project = copy_project(tmp_path_factory.mktemp("built") / "project")
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=project, check=True, capture_output=True)
    return project / "results"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def headless_chromium(*extra_flags: str):
    """A headless Chromium driven by selenium (setup.sh installs chromium and chromium-driver);
    skips without them (a failure under CI, see above). The caller quits it."""
    import tempfile

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium or chromedriver is not installed (Debian: chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp(prefix='metabuild-chrome-')}",
        *extra_flags,
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module."""
    driver = headless_chromium()
    yield driver
    driver.quit()
