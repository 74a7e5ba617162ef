"""``metabuild preview`` in a real headless browser: an edit to a data cell changes the number on
the open page by itself, the job workers stay the same processes across rebuilds, the built
file holds no preview script, and stopping the preview by PID leaves no process behind."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import copy_project

#: generous: the first build is a cold build, and the machine may be shared
BUILD_TIMEOUT = 900


def session_processes(session: int) -> dict[int, str]:
    """PID -> command of every process in a session (the preview is started as its leader, so
    this finds its descendants even when they have been orphaned)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        # fields: state ppid pgrp session ...; a zombie has been ended already
        if int(fields[3]) == session and fields[0] != b"Z":
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def edit_sd(project: Path, shift: float = 0.37) -> None:
    """Add ``shift`` to the SD of the first row of pain_scores.csv (a primary-timepoint row read
    by the primary analysis): the pooled results move a little and every claim stays true (the
    edit the build benchmark and tests/test_stale_builds.py make)."""
    path = project / "data" / "pain_scores.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    column = rows[0].index("sd")
    rows[1][column] = f"{float(rows[1][column]) + shift:.2f}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(
                f"the preview ended (exit {proc.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.needs_browser
def test_a_data_edit_reloads_the_page_with_the_new_number(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    project = copy_project(tmp_path / "project")
    log = tmp_path / "preview.log"
    env = dict(os.environ, PYTHONPATH=str(project / "workflow" / "lib"))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "metabuild", "preview", "--cores", "2", "--port", "0"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its session: every process it starts, orphaned or not
        )
    try:
        url = wait_for(
            lambda: (m := re.search(r"http://127\.0\.0\.1:\d+/\S+", log.read_text())) and m.group(0),
            120,
            "the preview's address",
            proc,
            log,
        )
        base = url.split("/manuscript/")[0]

        def state() -> dict:
            with urllib.request.urlopen(f"{base}/__preview__/state?page=/manuscript/paper.html", timeout=10) as r:
                return json.load(r)

        first = wait_for(
            lambda: (s := state())["rebuilds"] >= 1 and not s["building"] and s,
            BUILD_TIMEOUT,
            "the first build",
            proc,
            log,
        )
        assert first["error"] is None, first["error"]
        built = project / "results" / "manuscript" / "paper.html"
        assert "metabuild preview" not in built.read_text(encoding="utf-8"), (
            "the reload script went into the built file"
        )

        browser.get(url)
        shown = {
            s.get_attribute("data-key"): s.text for s in browser.find_elements(By.CSS_SELECTOR, "span.num[data-key]")
        }
        assert shown, "the page shows no registry numbers"
        before = json.loads((project / "results" / "numbers.json").read_text())["numbers"]
        assert before["primary.estimate"]["text"] == shown["primary.estimate"]
        workers_before = session_processes(proc.pid)
        # the preview, multiprocessing's forkserver and resource tracker, two workers
        assert len(workers_before) >= 5, workers_before
        browser.execute_script("window.metabuildTestMarker = 1;")  # gone once the page reloads

        edit_sd(project)

        def changed():
            try:
                now = {
                    s.get_attribute("data-key"): s.text
                    for s in browser.find_elements(By.CSS_SELECTOR, "span.num[data-key]")
                }
            except Exception:  # noqa: BLE001 - the page is reloading
                return None
            return {k: (shown.get(k), t) for k, t in now.items() if shown.get(k) != t} or None

        differences = WebDriverWait(browser, BUILD_TIMEOUT, poll_frequency=0.2).until(lambda _: changed())
        assert browser.execute_script("return window.metabuildTestMarker === undefined;"), "the page was not reloaded"
        # the primary analysis read the edited row: one of its printed numbers changed
        assert any(key.startswith("primary.") for key in differences), differences
        wait_for(
            lambda: not (s := state())["building"] and s["rebuilds"] >= 2 and s, BUILD_TIMEOUT, "the rebuild", proc, log
        )
        assert state()["error"] is None
        registry = json.loads((project / "results" / "numbers.json").read_text())["numbers"]
        # what changed on the page changed in the registry (spans with words print the value
        # in words, so compare the registry's values)
        for key in differences:
            assert registry[key]["value"] != before[key]["value"], key
        # the same worker processes served both builds (no new pool per build)
        assert session_processes(proc.pid) == workers_before
    finally:
        members = session_processes(proc.pid)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        returncode = proc.wait(timeout=120)
    assert returncode == 0, log.read_text()[-3000:]
    assert len(members) >= 5
    deadline = time.monotonic() + 10
    while (left := session_processes(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left after the preview stopped: {left}"
    assert not (project / ".snakemake" / "locks").exists() or not any((project / ".snakemake" / "locks").iterdir())


def test_the_server_adds_its_script_to_served_pages_only_and_serves_nothing_outside_results(tmp_path):
    """Without a build: the page is served with the reload script and the file's digest, the
    file on disk is untouched, the state endpoint answers, and no path leaves results/."""
    import hashlib
    import threading
    import urllib.error

    from metabuild.preview import STATE_PATH, Preview

    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "Snakefile").write_text("")
    (project / "config" / "config.yaml").write_text("results_dir: out\nmanuscript: {documents: [paper]}\n")
    page = project / "out" / "manuscript" / "paper.html"
    page.parent.mkdir(parents=True)
    original = "<html><body><p>The estimate is <span>1.5</span>.</p></body></html>"
    page.write_text(original)
    (project / "secret.txt").write_text("not served")
    preview = Preview(project, port=0)
    server = threading.Thread(target=preview._server.serve_forever, daemon=True)
    server.start()
    base = preview.url.split("/manuscript/")[0]
    try:
        with urllib.request.urlopen(f"{base}/") as response:  # redirected to the page
            served = response.read().decode()
            assert response.url.endswith("/manuscript/paper.html")
        digest = hashlib.sha256(original.encode()).hexdigest()
        assert served.startswith(original[: original.index("</body>")])
        assert "metabuild preview" in served and json.dumps(digest) in served
        assert served.endswith("</body></html>")
        assert page.read_text() == original
        with urllib.request.urlopen(f"{base}{STATE_PATH}?page=/manuscript/paper.html") as response:
            state = json.load(response)
        assert state["digest"] == digest and state["building"] is False and state["error"] is None
        page.write_text(original.replace("1.5", "1.6"))
        with urllib.request.urlopen(f"{base}{STATE_PATH}?page=/manuscript/paper.html") as response:
            assert json.load(response)["digest"] != digest
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/manuscript/../../secret.txt", "/missing.html"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path)
            assert refused.value.code == 404, path
            assert b"not built" not in refused.value.read() or path == "/missing.html"
        # a page not built yet waits for its file (digest null) and reloads when it appears
        with pytest.raises(urllib.error.HTTPError) as waiting:
            urllib.request.urlopen(f"{base}/manuscript/supplement.html")
        body = waiting.value.read().decode()
        assert "Not built yet" in body and "let digest = null;" in body
    finally:
        preview._server.shutdown()
        preview._server.server_close()
