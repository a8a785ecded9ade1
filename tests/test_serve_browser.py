"""The classroom page in a real browser: headless Chromium driven by Selenium.

Starts the server on a free port in a thread (tiny models), loads the page, types a
prompt, and checks what a student would see: both columns filled, the trie subtree,
the attention heatmap drawn, a clicked word appended, a generation step, and a prompt
made of HTML shown as text with nothing run. A screenshot goes to the test's tmp_path.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package: without
them the test skips with one line, unless TTT_REQUIRE_ALL=1 (CI), where it fails.
"""
from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager

import pytest

from conftest import require_or_skip
from test_serve_api import gpt, ngram, ngram_file  # noqa: F401  (the tiny models, as fixtures)

ATTACK = "<img src=x onerror=alert(1)>"
WAIT = 30  # seconds a page may take to show something on a loaded machine


def browser_tools() -> tuple[str, str]:
    """(chromium, chromedriver) paths and selenium importable, or skip/fail with the reason."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        require_or_skip("selenium is not installed (pip install -e '.[test]')")
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        require_or_skip("chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    return browser, driver


@contextmanager
def serving(app):
    """`app` on 127.0.0.1 and a free port, served from a thread; yields its URL."""
    pytest.importorskip("uvicorn")
    import uvicorn

    from bench.serve.running import bind

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if uv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def server(ngram, gpt):  # noqa: F811
    from bench.serve import create_app

    with serving(create_app(ngram, gpt)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    chromium, chromedriver = browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1400",
                 # no calls home: on a closed network they fail, many at a time, and slow the start
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: condition(d), message=f"waiting for {what}")


def type_prompt(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "prompt")
    box.clear()
    box.send_keys(text)


def count(driver, css: str) -> int:
    return driver.execute_script("return document.querySelectorAll(arguments[0]).length", css)


def shown_for(driver, css: str) -> str | None:
    """The prompt whose answer a column shows (the page marks it), None before any."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e.dataset.prompt || null", css)


def texts(driver, css: str) -> list[str]:
    """The text of every element matching `css`, read in one go (the page redraws as answers come)."""
    return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)


def inked_pixels(driver) -> int:
    """Pixels of the attention canvas that are neither white nor transparent."""
    return driver.execute_script("""
        const c = document.getElementById('attention');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) n++;
        return n;""")


def test_the_page_in_a_real_browser(server, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(server + "?budget=16")  # the tiny model's 50,257-token vocabulary: spell out few words
    browser.execute_script("window.__alerted = false; window.alert = () => { window.__alerted = true; };")
    type_prompt(browser, "I want to")
    wait_for(browser, lambda d: shown_for(d, "#ngram-words") == shown_for(d, "#transformer-words") == "I want to", "both columns")
    assert count(browser, "#ngram-words li") == count(browser, "#transformer-words li") == 10
    assert texts(browser, "#ngram-words li button")[0] == "be"
    wait_for(browser, lambda d: "want" in texts(d, "#trie")[0], "the trie subtree")
    trie = browser.find_element(By.ID, "trie").text
    assert '"to": {' in trie and '"be": 8,' in trie  # {want: {to: {be: 8, know: 4}}}, counts included
    wait_for(browser, lambda d: inked_pixels(d) > 0, "the attention heatmap")
    pieces = texts(browser, "#pieces .piece")
    assert pieces[0] == "I" and "·want" in pieces  # BPE pieces with their spaces made visible
    ActionChains(browser).move_to_element(browser.find_element(By.ID, "attention")).perform()
    assert "looks at" in browser.find_element(By.ID, "attention-hover").text
    browser.save_screenshot(str(tmp_path / "classroom.png"))
    assert (tmp_path / "classroom.png").stat().st_size > 10_000

    browser.find_element(By.CSS_SELECTOR, "#ngram-words li button").click()  # "be" joins the prompt
    assert browser.find_element(By.ID, "prompt").get_property("value") == "I want to be"
    browser.find_element(By.ID, "step").click()
    wait_for(browser, lambda d: "".join(texts(d, "#ngram-story .added")).strip(), "a generated word")

    type_prompt(browser, ATTACK)
    wait_for(browser, lambda d: ATTACK.replace(" ", "·") == "".join(texts(d, "#pieces .piece")),
             "the attack's pieces shown as text")
    wait_for(browser, lambda d: d.execute_script("return document.getElementById('busy').hidden"), "the answers")
    browser.find_element(By.ID, "step").click()  # the stories show the prompt itself, whole
    wait_for(browser, lambda d: "".join(texts(d, "#transformer-story .added")), "a generated word after the attack")
    assert browser.find_elements(By.TAG_NAME, "img") == []  # no markup made from the prompt anywhere
    assert texts(browser, "#ngram-story")[0].startswith(ATTACK) and texts(browser, "#transformer-story")[0].startswith(ATTACK)
    assert browser.execute_script("return window.__alerted") is False
    browser.save_screenshot(str(tmp_path / "attack.png"))


def test_a_model_that_did_not_load_is_said_on_the_page(ngram, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    from bench.serve import create_app

    app = create_app(ngram, None, problems={"transformer": "no such folder: <b>nowhere</b>"})
    with serving(app) as url:
        browser.get(url)
        wait_for(browser, lambda d: not d.find_element(By.ID, "page-message").get_property("hidden"), "the page-level message")
        assert browser.find_element(By.ID, "page-message").text.startswith(
            "The transformer is unavailable: no such folder: <b>nowhere</b>")  # as text, not bold
        type_prompt(browser, "I want to")
        wait_for(browser, lambda d: shown_for(d, "#ngram-words") == "I want to", "the n-gram's column")
        assert texts(browser, "#ngram-words li button")[0] == "be" and count(browser, "#transformer-words li") == 0
        assert "unavailable" in browser.find_element(By.ID, "transformer-column").get_attribute("class")
