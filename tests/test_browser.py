"""The search page in a real headless Chromium against a real `qa serve`.

Needs Debian's chromium and chromium-driver (`make test` installs them). Without
them these tests are skipped, except under CI=true, where that is a failure.
Set QA_SCREENSHOTS=DIR to save the screenshots the README shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import http, start_server

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-test-token"
WAGNER = "when did Wagner arrive in Mali?"
HOSTILE = (
    "A hostile passage about the lighthouse keeper: <script>alert(1)</script> and "
    "<img src=x onerror=alert(2)> must show as text. The keeper's log lives at "
    "https://example.org/" + "a-very-long-unbroken-path-segment" * 8 + " for the record."
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromium-driver: `make test` installs them with apt")
        pytest.skip("chromium and chromium-driver are not installed (apt install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                 "--window-size=1280,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def served(seed_index, tmp_path_factory):
    """A server on a copy of the seed index, with one hostile document added over the API."""
    root = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root, {"QA_API_TOKEN": TOKEN})
    status, _ = http(f"{base}/api/documents/hostile", "PUT",
                     {"title": "<script>alert(3)</script> keeper", "text": HOSTILE, "source": "x" * 300}, TOKEN)
    assert status == 201
    yield base
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def page(browser, served):
    browser.set_window_size(1280, 900)
    browser.get(f"{served}/")
    return browser


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("QA_SCREENSHOTS")
    if folder:
        driver.save_screenshot(str(Path(folder) / name))


def ask(driver, question: str) -> None:
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(question, Keys.ENTER)


def wait_for_results(driver, question: str):
    WebDriverWait(driver, 30).until(lambda d: d.title.startswith(question) and d.find_elements(By.CSS_SELECTOR, ".result"))
    return driver.find_elements(By.CSS_SELECTOR, ".result")


def answer_text(driver) -> str:
    return driver.find_element(By.CSS_SELECTOR, ".result mark.answer").text


def assert_no_alert(driver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text


def test_enter_searches_without_a_reload_and_marks_the_answer(page):
    # focused on load (autofocus lands once the page has loaded, a moment later on a busy machine)
    WebDriverWait(page, 10).until(lambda d: d.switch_to.active_element.get_attribute("id") == "q")
    page.execute_script("window.sameDocument = true")
    ask(page, WAGNER)
    wait_for_results(page, WAGNER)
    assert page.execute_script("return window.sameDocument") is True  # no full reload
    assert parse_qs(urlparse(page.current_url).query)["q"] == [WAGNER]
    assert "December 2021" in answer_text(page)
    terms = {b.text.lower() for b in page.find_elements(By.CSS_SELECTOR, ".result b.term")}
    assert {"wagner", "mali"} <= terms
    screenshot(page, "search.png")


def test_the_source_selector_keeps_results_to_that_source(page):
    question = "what does the lighthouse keeper log say"
    ask(page, question)
    assert {e.text for e in wait_for_results(page, question)[0].find_elements(By.CSS_SELECTOR, ".where")} == {"x" * 300}
    Select(page.find_element(By.ID, "source")).select_by_value("cgtn.com")
    page.find_element(By.CSS_SELECTOR, "#search button").click()
    WebDriverWait(page, 30).until(lambda d: "source=cgtn.com" in d.current_url)
    results = wait_for_results(page, question)
    assert {e.text for e in page.find_elements(By.CSS_SELECTOR, ".result .where")} == {"cgtn.com"}
    assert len(results) == 5
    page.get(page.current_url)  # a shared link keeps the filter and shows it chosen
    assert Select(page.find_element(By.ID, "source")).first_selected_option.text == "cgtn.com"
    assert {e.text for e in page.find_elements(By.CSS_SELECTOR, ".result .where")} == {"cgtn.com"}


def test_a_shared_link_renders_the_same_results_without_javascript(page, served):
    ask(page, WAGNER)
    by_script = [r.text for r in wait_for_results(page, WAGNER)]
    page.get(page.current_url)  # what someone opening a shared link gets: rendered on the server
    assert [r.text for r in page.find_elements(By.CSS_SELECTOR, ".result")] == by_script


def test_the_back_button_returns_to_the_previous_answers(page):
    ask(page, WAGNER)
    wait_for_results(page, WAGNER)
    ask(page, "who led Wagner before the plane crash?")
    wait_for_results(page, "who led Wagner before the plane crash?")
    page.back()
    wait_for_results(page, WAGNER)
    assert page.find_element(By.ID, "q").get_attribute("value") == WAGNER
    assert "December 2021" in answer_text(page)


def test_the_document_link_opens_the_passage_in_view(page):
    page.set_window_size(375, 812)
    question = "who led Wagner before he died in a plane crash?"
    ask(page, question)
    results = wait_for_results(page, question)
    later = [r for r in results if "passage=0&" not in r.find_element(By.CSS_SELECTOR, "a.title").get_attribute("href")]
    passage = later[-1].find_element(By.CSS_SELECTOR, ".passage").text
    later[-1].find_element(By.CSS_SELECTOR, "a.title").click()
    WebDriverWait(page, 30).until(lambda d: "/documents/" in d.current_url)
    chosen = page.find_element(By.ID, "chosen")
    assert chosen.text == passage
    top, bottom, height, scrolled = page.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom, innerHeight, scrollY]", chosen)
    assert scrolled > 0 and top < height and bottom > 0  # scrolled down to it, and on screen
    assert page.switch_to.active_element == chosen
    screenshot(page, "document.png")
    page.find_element(By.CSS_SELECTOR, "a.back").click()
    wait_for_results(page, question)


def test_script_in_a_document_renders_as_text_and_runs_nothing(page, served):
    question = "what does the lighthouse keeper's passage say?"
    ask(page, question)
    wait_for_results(page, question)
    hostile = [r for r in page.find_elements(By.CSS_SELECTOR, ".result") if "lighthouse" in r.text]
    assert hostile and "<script>alert(1)</script>" in hostile[0].text
    assert "<img src=x onerror=alert(2)>" in hostile[0].text
    assert_no_alert(page)
    page.get(page.current_url)  # the server-rendered page
    assert "<script>alert(1)</script>" in page.find_element(By.ID, "answers").text
    assert_no_alert(page)
    page.get(f"{served}/documents/hostile?passage=0&q=%3Cscript%3Ealert(4)%3C/script%3E")
    assert "<script>alert(1)</script>" in page.find_element(By.ID, "chosen").text
    assert_no_alert(page)


@pytest.mark.parametrize("path", ["/?q=what+does+the+lighthouse+keeper+log+say", "/documents/hostile?passage=0"])
def test_a_phone_width_page_does_not_scroll_sideways(browser, served, path):
    browser.set_window_size(375, 812)
    browser.get(served + path)
    assert "a-very-long-unbroken-path-segment" in browser.find_element(By.TAG_NAME, "main").text
    wide, visible = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert wide <= visible


def test_a_slow_answer_shows_the_spinner_then_the_results(page):
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions",
                         {"offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        ask(page, WAGNER)
        spinner = page.find_element(By.ID, "spinner")
        WebDriverWait(page, 10, poll_frequency=0.05).until(lambda d: spinner.is_displayed())
        wait_for_results(page, WAGNER)
        assert not spinner.is_displayed()
    finally:
        page.execute_cdp_cmd("Network.emulateNetworkConditions",
                             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def test_bad_input_shows_the_servers_message(page):
    ask(page, "   ")
    WebDriverWait(page, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#answers .error"))
    assert "empty" in page.find_element(By.CSS_SELECTOR, "#answers .error").text


def test_a_server_that_went_away_gives_a_message(browser, seed_index, tmp_path):
    root = tmp_path / "index"
    shutil.copytree(seed_index, root)
    process, base = start_server(root)
    browser.get(f"{base}/")
    process.terminate()
    process.wait(timeout=30)
    ask(browser, WAGNER)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#answers .error"))
    assert "could not be reached" in browser.find_element(By.CSS_SELECTOR, "#answers .error").text


def test_the_keyboard_reaches_the_form_and_the_results(page):
    ask(page, WAGNER)
    wait_for_results(page, WAGNER)
    reached = []
    for _ in range(4):
        page.switch_to.active_element.send_keys(Keys.TAB)
        element = page.switch_to.active_element
        reached.append(f"{element.tag_name}.{element.get_attribute('class') or element.get_attribute('id')}")
    assert reached == ["select.mode", "select.source", "button.", "a.title"]
    labelled = page.execute_script(
        "return [...document.querySelectorAll('input, select')].every(e => e.labels.length || e.getAttribute('aria-label'))")
    assert labelled
