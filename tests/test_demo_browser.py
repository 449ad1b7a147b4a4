"""The web demo (genrec app) driven in headless Chromium: type a title, pick items, press Recommend, read the
titles shown and the cold-start panel's answer.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and selenium; skips, saying
which is missing, elsewhere. Environment knobs, for the README's screenshot:
``GENREC_DEMO_MODEL`` (a pipeline folder instead of the tiny one), ``GENREC_DEMO_QUERY`` (what to type) and
``GENREC_DEMO_SCREENSHOT`` (where to save the page; default: the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="the serve extra (gradio) is not installed")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from genrec.pipeline import GenRecPipeline  # noqa: E402
from genrec.serving.demo import build_demo  # noqa: E402

from conftest import free_port  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


def test_demo_in_a_real_browser(browser, tiny_pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    pipe = GenRecPipeline.from_pretrained(os.environ.get("GENREC_DEMO_MODEL") or tiny_pipeline)
    catalog = pipe.tokenizer.catalog
    query = os.environ.get("GENREC_DEMO_QUERY") or catalog.describe(catalog.item_ids[0])["brand"]
    demo, port = build_demo(pipe), free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        browser.get(f"http://127.0.0.1:{port}")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#search textarea, #search input")).send_keys(query)
        browser.find_element(By.ID, "search-button").click()
        options = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#matches label") or False)
        assert all(query.lower().split()[0] in o.text.lower() for o in options)
        for option in options[:2]:
            option.click()
        browser.find_element(By.ID, "add-to-history").click()
        picked = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history tr.item") or False)
        history = [catalog.item_ids[catalog.row(r.get_attribute("data-item-id"))] for r in picked]
        assert len(history) == 2
        browser.find_element(By.ID, "recommend").click()
        rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#recommendations tr.item") or False)
        expected = pipe.recommend(history, k=10)
        assert [r.get_attribute("data-item-id") for r in rows] == [str(i) for i in expected.item_ids]
        titles = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows]
        shown = [" ".join(catalog.describe(i).get("title", "").split()) for i in expected.item_ids]  # as HTML shows it
        assert titles == shown
        shot = Path(os.environ.get("GENREC_DEMO_SCREENSHOT") or tmp_path / "demo.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        _cold_start_panel(browser, wait)
    finally:
        demo.close()


def _cold_start_panel(browser, wait):
    """Add an item like the first picked one; the panel says where it lands."""
    browser.find_element(By.CSS_SELECTOR, "#cold-start-panel .label-wrap").click()
    new_id = wait.until(lambda d: _shown(d, "#new-item-id textarea, #new-item-id input"))
    new_id.send_keys("brand-new-item")
    browser.find_element(By.CSS_SELECTOR, "#new-item-title textarea, #new-item-title input").send_keys("A new one")
    browser.find_element(By.ID, "add-item").click()
    answer = wait.until(lambda d: d.find_elements(By.ID, "cold-start") or False)[0].text
    assert answer.startswith("Added brand-new-item:") and ("rank" in answer or "not in the top" in answer)


def _shown(driver, css):
    """The element once the page shows it (an accordion's content exists before it opens)."""
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found and found[0].is_displayed() else False
