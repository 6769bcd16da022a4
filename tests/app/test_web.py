"""The web UI and the embeddable widget, driven in Debian's headless Chromium via selenium.

The real app runs under uvicorn on a loopback port. Skipped when chromium/chromedriver are not
installed, unless SIEVE_REQUIRE_BROWSER=1. Screenshots go to $SIEVE_ARTIFACTS_DIR
(default tests/artifacts/).

    .venv/bin/python -m pytest tests/app/test_web.py -v
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.live_server import live_server
from tests.app.stub_llm import StubServer

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("SIEVE_ARTIFACTS_DIR") or Path(__file__).parents[1] / "artifacts")

# One chunk whose sentences the pruner splits: the height is kept, the rest is pruned. The
# markup sentence checks that document text is shown as text, never parsed as HTML.
GUIDE = """# Varna Harbour Guide

## Lighthouse
The Varna lighthouse stands 42 metres tall on the northern cape. Its lamp was converted to solar
power in 2009. The harbour bakery sells rye bread on Sundays. Visitors often photograph the
<img src=x onerror="window.__pwned=1"> sign painted on the old gate.

## Ferries
Ferries to Balchik leave every two hours from pier 3. Tickets are sold at the kiosk by the gate.
"""
QUESTION = "How tall is the Varna lighthouse?"

pytestmark = pytest.mark.slow


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install selenium)")
    if not missing:
        return
    reason = f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
    if os.environ.get("SIEVE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def chrome_options(profile: str, *extra: str) -> Any:
    """Headless Debian chromium with a throw-away profile, quiet and offline-friendly, its console
    logged (for the tests that check it); ``extra``: more command-line switches."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        *extra,
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@pytest.fixture(scope="module")
def base_url(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, stub_llm: StubServer
) -> Iterator[str]:
    """The real app on loopback (extractive answers; ``llm: openai`` asks the stub server),
    with CORS open for the widget page, which is served from another origin."""
    _require_browser()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web") / "data",
        llm_base_url=stub_llm.base_url,
        llm_backends="openai",
        cors_origins="*",
        _env_file=None,
    )
    with live_server(create_app(settings, embedder)) as url:
        yield url


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sieve-chromium-")
    options = chrome_options(profile)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.set_window_size(1280, 900)
    yield browser
    browser.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(driver: Any, css: str, timeout: float = 20, root: Any = None) -> Any:
    """The first element matching ``css`` (inside ``root`` if given), waiting for it."""
    from selenium.webdriver.support.ui import WebDriverWait

    def find(_: Any) -> Any:
        found = (root or driver).find_elements("css selector", css)
        return found[0] if found else False

    return WebDriverWait(driver, timeout).until(find, f"no {css!r} after {timeout}s")


def _no_console_errors(driver: Any) -> None:
    """No script errors (failed requests, such as an expected 415, are not counted)."""
    log = driver.get_log("browser")
    errors = [e for e in log if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not errors, errors


def _screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def test_upload_ask_stream_and_sources(driver: Any, base_url: str, tmp_path: Path) -> None:
    doc = tmp_path / "varna-guide.md"
    doc.write_text(GUIDE)
    bad = tmp_path / "notes.xyz"
    bad.write_text("not a format the server reads")
    driver.get(base_url + "/")
    _wait(driver, "#collection option[value='default']")
    assert driver.find_element("css selector", "#picker").is_displayed()
    assert not driver.find_element("css selector", "#key-form").is_displayed()  # auth is off
    _wait(driver, "#file-input").send_keys(f"{doc}\n{bad}")  # two files, one upload each
    _wait(driver, ".upload.ok")
    failed = _wait(driver, ".upload.failed .upload-state").text
    assert "xyz" in failed or "format" in failed, failed  # the server's `detail`
    title = _wait(driver, "#documents .doc-title")
    assert title.text == "Varna Harbour Guide"

    driver.find_element("css selector", "#question").send_keys(QUESTION)
    driver.find_element("css selector", "#ask-button").click()
    message = _wait(driver, ".message.done", timeout=30)
    answer = message.find_element("css selector", ".answer-text")
    assert "42 metres" in answer.text
    cite = answer.find_element("css selector", "a.cite")
    assert cite.text == "1" and cite.get_attribute("href").endswith("-src-1")
    source = message.find_element("css selector", ".source")
    assert source.get_attribute("id") == cite.get_attribute("href").rsplit("#", 1)[1]
    assert "42 metres" in source.find_element("css selector", ".kept").text
    pruned = [s.text for s in source.find_elements("css selector", ".pruned")]
    assert any("bakery" in s for s in pruned), pruned
    assert any('<img src=x onerror="window.__pwned=1">' in s for s in pruned), pruned
    assert driver.execute_script("return window.__pwned === undefined")
    assert "% pruned" in message.find_element("css selector", ".compression").text
    assert "total" in message.find_element("css selector", ".timings").text
    assert "Lighthouse" in source.find_element("css selector", ".where").text
    _no_console_errors(driver)
    _screenshot(driver, "ui-desktop.png")

    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
    )
    try:
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, f"page is {width}px wide on a 390px phone screen"
        driver.execute_script("window.scrollTo(0, 0)")
        _screenshot(driver, "ui-phone-top.png")
        driver.execute_script("arguments[0].scrollIntoView()", message)
        _screenshot(driver, "ui-phone-answer.png")
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    driver.find_element("css selector", "#documents button.danger").click()
    _wait(driver, "#documents .confirm-delete").click()  # ✕ asks first
    _wait(driver, "#doc-summary")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(
        lambda d: not d.find_elements("css selector", "#documents .document")
    )


def _add_guide(base_url: str) -> None:
    body = json.dumps({"title": "Varna Harbour Guide", "text": GUIDE, "format": "md"}).encode()
    request = urllib.request.Request(
        base_url + "/documents", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def test_sources_show_before_tokens_stream_in(
    driver: Any, base_url: str, stub_llm: StubServer
) -> None:
    """With a slow LLM the sources are on screen while the answer is still streaming."""
    from selenium.webdriver.support.ui import Select

    _add_guide(base_url)
    driver.get(base_url + "/")
    driver.find_element("css selector", ".options summary").click()
    Select(driver.find_element("css selector", "#opt-llm")).select_by_value("openai")
    saved = stub_llm.content, stub_llm.delay_s
    stub_llm.content, stub_llm.delay_s = "It is 42 metres tall [1]. Solar since 2009 [1].", 2.0
    try:
        driver.find_element("css selector", "#question").send_keys(QUESTION + "\n")
        _wait(driver, ".message:not(.done) .answer-text.streaming ~ .sources .source .kept")
        message = _wait(driver, ".message.done", timeout=30)
    finally:
        stub_llm.content, stub_llm.delay_s = saved
    answer = message.find_element("css selector", ".answer-text")
    assert answer.text.strip() == "It is 42 metres tall 1. Solar since 2009 1."
    assert len(answer.find_elements("css selector", "a.cite")) == 2
    _no_console_errors(driver)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def widget_answer(driver: Any, tmp_path: Path, head: str, body: str) -> Iterator[Any]:
    """Serve a host page (``head`` and ``body`` HTML, the widget's script tag in ``body``)
    from another origin, open the widget, ask QUESTION; yields the widget's shadow root once
    a cited answer is there."""
    (tmp_path / "index.html").write_text(
        '<!doctype html><html><head><title>Host page</title><link rel="icon" href="data:,">'
        f"{head}</head><body>{body}</body></html>"
    )
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    try:
        driver.get(f"http://127.0.0.1:{page.server_address[1]}/index.html")
        shadow = _wait(driver, "[data-sieve-widget]").shadow_root
        _wait(driver, ".bubble", root=shadow).click()
        panel = _wait(driver, ".panel.open", root=shadow)
        panel.find_element("css selector", "input").send_keys(QUESTION + "\n")
        cite = _wait(driver, ".a .cite", timeout=30, root=shadow)
        assert cite.text == "1"
        yield shadow
    finally:
        page.shutdown()
        page.server_close()


def test_widget_on_another_origin(driver: Any, base_url: str, tmp_path: Path) -> None:
    _add_guide(base_url)
    hostile_css = (
        "<style>* { color: red !important; font-size: 40px; } div { display: none; }</style>"
    )
    script = f'<script src="{base_url}/widget.js" data-collection="default" async></script>'
    with widget_answer(driver, tmp_path, hostile_css, f"<h1>Some shop</h1>{script}") as shadow:
        assert "42 metres" in shadow.find_element("css selector", ".a").text
        assert "Varna Harbour Guide" in _wait(driver, "ol li", root=shadow).text
        assert not shadow.find_elements("css selector", ".err")
        _no_console_errors(driver)
        _screenshot(driver, "widget.png")


def test_sources_show_the_hop_that_found_them(driver: Any, base_url: str) -> None:
    """A two-hop question: the director's passage, found by the second hop through the entity
    the film's passage names, says so on its source card."""
    from tests.app.test_hops import DOCS
    from tests.app.test_hops import QUESTION as TWO_HOP

    for title, text in DOCS:
        body = json.dumps({"title": title, "text": text}).encode()
        request = urllib.request.Request(
            base_url + "/documents", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 201
    driver.get(base_url + "/")
    _wait(driver, "#collection option[value='default']")
    driver.find_element("css selector", "#question").send_keys(TWO_HOP)
    driver.find_element("css selector", "#ask-button").click()
    message = _wait(driver, ".message.done", timeout=30)
    chip = _wait(driver, ".source .chip.hop", root=message)
    assert "via Marek Wilczynski" in chip.text and "from [" in chip.text, chip.text
    assert "more hop" in message.find_element("css selector", ".retrieval").text
    _no_console_errors(driver)
    _screenshot(driver, "ui-hops.png")
