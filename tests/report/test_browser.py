"""report.html in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by selenium) opens
the report of a tiny run, a compare and a search (and the demo run's, when it is here): no console errors, no
network request, every plot drawn, the answer filters work, a screenshot saved, and the page loads in under 2 s.

Skips when there is no chromium (`make browser-test` installs it). Screenshots go to $REPORT_SCREENSHOTS (default:
the test's temporary folder)."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from tests.report.conftest import DIRECTORIES

from tunesmith.report import write_report

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
DEMO_RUN = Path(__file__).resolve().parents[2] / "runs" / "ner-finance-lora"
MAX_LOAD_SECONDS, MAX_DEMO_BYTES = 2.0, 5 * 2**20

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="no chromium / chromedriver binary (apt-get install chromium chromium-driver)"
)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install .[report])")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def requests_made(driver, page_url: str) -> list[str]:
    """Every URL the page asked for, other than itself (Chrome's DevTools network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return [u for u in urls if u != page_url and not u.startswith("data:")]


DRAWN = """
return Array.from(document.querySelectorAll('figure.plot')).map(function (f) {
  var svg = f.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  var marks = svg ? svg.querySelectorAll('polyline, rect, circle').length : 0;
  return {kind: f.dataset.plot, empty: f.classList.contains('empty'), width: box.width, height: box.height,
          marks: marks};
});
"""


def open_report(driver, path: Path, screenshots: Path) -> dict:
    driver.get_log("browser"), driver.get_log("performance")  # start both logs empty
    url = path.resolve().as_uri()
    started = time.perf_counter()
    driver.get(url)
    wall = time.perf_counter() - started
    loaded = driver.execute_script("return performance.getEntriesByType('navigation')[0].duration") / 1000
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    plots = driver.execute_script(DRAWN)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(height, 12000))
    screenshots.mkdir(parents=True, exist_ok=True)
    shot = screenshots / f"{path.parent.name}.png"
    driver.save_screenshot(str(shot))
    driver.set_window_size(1400, 900)
    return {
        "errors": errors,
        "requests": requests_made(driver, url),
        "plots": plots,
        "wall": wall,
        "load": loaded,
        "shot": shot,
    }


def check_page(seen: dict) -> None:
    assert seen["errors"] == []
    assert seen["requests"] == []
    assert seen["plots"], "no plot on the page"
    for plot in seen["plots"]:
        assert not plot["empty"], f"plot {plot['kind']} drew nothing"
        assert plot["width"] > 100 and plot["height"] > 50 and plot["marks"] > 0, plot
    assert seen["load"] < MAX_LOAD_SECONDS and seen["shot"].stat().st_size > 10_000


@pytest.fixture
def screenshots(tmp_path) -> Path:
    return Path(os.environ.get("REPORT_SCREENSHOTS") or tmp_path)


@pytest.mark.parametrize("kind", ["sft", "compare", "search"])
def test_the_report_opens_without_errors_or_requests_and_draws_every_plot(kind, browser, outputs, screenshots):
    page = write_report(outputs / DIRECTORIES[kind])
    seen = open_report(browser, page, screenshots / kind)
    check_page(seen)
    expected = {
        "sft": {"loss", "lr", "speed", "grad_norm", "metric", "slices", "forgetting-text", "forgetting-mmlu", "export"},
        "compare": {"train-loss", "eval-loss", "trainable", "time", "memory", "drift"},
        "search": {"history", "importances", "trial-curves", "lr-range"},
    }[kind]
    assert expected <= {p["kind"] for p in seen["plots"]}


def test_the_answer_filters_show_only_the_flagged_rows(browser, outputs):
    from selenium.webdriver.common.by import By

    page = write_report(outputs / "sft")
    browser.get(page.resolve().as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, ".answers tbody tr")
    flagged = [r for r in rows if "invalid" in r.get_attribute("data-flags").split()]
    browser.find_element(By.CSS_SELECTOR, 'button[data-filter="invalid"]').click()
    visible = [r for r in rows if r.is_displayed()]
    assert visible == flagged and len(flagged) == 2
    assert browser.find_element(By.CSS_SELECTOR, ".answers .shown").text == "2"
    search = browser.find_element(By.CSS_SELECTOR, ".answers input")
    browser.find_element(By.CSS_SELECTOR, 'button[data-filter="all"]').click()
    search.send_keys("Bank103")
    assert [r.find_element(By.CSS_SELECTOR, "td").text.split()[0] for r in rows if r.is_displayed()] == ["test.jsonl:4"]


@pytest.mark.skipif(not (DEMO_RUN / "run.yaml").is_file(), reason="no demo run in runs/ner-finance-lora (make demo)")
def test_the_demo_run_s_report_is_small_and_quick(browser, tmp_path, screenshots):
    demo = shutil.copytree(
        DEMO_RUN,
        tmp_path / "ner-finance-lora",
        ignore=shutil.ignore_patterns("*.gguf", "*.safetensors", "checkpoints", "merged"),
    )
    page = write_report(demo)
    seen = open_report(browser, page, screenshots / "demo")
    check_page(seen)
    assert page.stat().st_size < MAX_DEMO_BYTES
    print(
        f"demo report: {page.stat().st_size:,} bytes; load {seen['load']:.3f} s (wall {seen['wall']:.3f} s); "
        f"{len(seen['plots'])} plots; screenshot {seen['shot']}"
    )
