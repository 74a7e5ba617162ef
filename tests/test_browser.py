"""A real headless browser reads a number's provenance from the built HTML paper."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.needs_browser]


def test_number_shows_its_provenance_and_published_value(browser, built_results):
    from selenium.webdriver.common.by import By

    from metabuild.registry import read_registry

    registry = read_registry(built_results / "numbers.json")["numbers"]
    entry = registry["primary.estimate"]
    browser.get((built_results / "manuscript" / "paper.html").as_uri())
    spans = browser.find_elements(By.CSS_SELECTOR, 'span.num[data-key="primary.estimate"]')
    assert spans, "the primary estimate is not marked up as a registry number"
    span = spans[0]
    assert span.text == entry["text"]
    tooltip = span.get_attribute("title")
    assert entry["provenance"]["rule"] in tooltip
    assert entry["provenance"]["script"]["path"] in tooltip
    assert entry["published"][0]["printed"] in tooltip
    # following the link lands on the number's entry in the provenance document, in the section
    # of its job, which names the job's input files and hashes
    link = span.find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").endswith("provenance.html#prov-primary.estimate")
    link.click()
    assert browser.current_url.endswith("provenance.html#prov-primary.estimate")
    row = browser.find_element(By.ID, "prov-primary.estimate").find_element(By.XPATH, "./ancestor::tr")
    assert "primary.estimate" in row.text and entry["text"] in row.text
    section = row.find_element(By.XPATH, "./ancestor::section[1]")
    some_input = entry["provenance"]["inputs"][0]
    assert entry["job"] in section.text
    assert some_input["path"] in section.text and some_input["sha256"][:12] in section.text


def test_reproduction_report_filters_and_sorts_and_holds_the_markdown(browser, built_results):
    """The report's HTML holds what its Markdown holds (curation notes, sensitivity section) and
    an auditor can filter it by status and text and sort it by any column."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    report = json.loads((built_results / "reports" / "reproduction.json").read_text())
    browser.get((built_results / "reports" / "reproduction.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#report tbody tr")
    assert len(rows) == len(report["rows"])
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#report thead th")]
    assert "Curation note" in headers
    noted = next(r for r in report["rows"] if r.get("note"))
    assert noted["note"][:40] in browser.find_element(By.ID, "report").text
    assert "Sensitivity to the reconstruction" in browser.find_element(By.TAG_NAME, "body").text

    Select(browser.find_element(By.ID, "status")).select_by_value("inconsistent in paper")
    visible = [r for r in rows if r.is_displayed()]
    expected = sum(r["status"] == "inconsistent in paper" for r in report["rows"])
    assert len(visible) == expected > 0
    assert browser.find_element(By.ID, "count").text == f"{expected} of {len(rows)} rows"

    Select(browser.find_element(By.ID, "status")).select_by_value("")
    browser.find_element(By.ID, "search").send_keys("primary.estimate")
    assert all("primary.estimate" in r.text for r in rows if r.is_displayed())

    browser.find_element(By.ID, "search").clear()
    browser.find_element(By.ID, "search").send_keys(" ")  # input event with no filter left
    difference = headers.index("Difference")
    browser.find_elements(By.CSS_SELECTOR, "#report thead th")[difference].click()
    cells = [
        r.find_elements(By.TAG_NAME, "td")[difference].get_attribute("data-sort")
        for r in browser.find_elements(By.CSS_SELECTOR, "#report tbody tr")
    ]
    sorted_part = [float(c) for c in cells if c is not None]
    assert sorted_part == sorted(sorted_part) and len(sorted_part) > 10
