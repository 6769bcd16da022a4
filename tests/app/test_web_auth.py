"""The web UI and the widget against a server with API keys on (``SIEVE_AUTH=true``), in
headless Chromium: the key prompt, a refused key, upload and a streamed cited answer in the
key's collection, the key kept across a reload and forgotten, and a read key's 403.

The collection and keys are made through the admin API, as an operator would. Skipped like
test_web.py when chromium/chromedriver are missing (unless SIEVE_REQUIRE_BROWSER=1).

    .venv/bin/python -m pytest tests/app/test_web_auth.py -v
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app import test_web
from tests.app.live_server import live_server
from tests.app.test_web import (
    QUESTION,
    _no_console_errors,
    _require_browser,
    _screenshot,
    _wait,
    widget_answer,
)

pytestmark = pytest.mark.slow
driver = test_web.driver  # the headless Chromium fixture (a fresh one, so a fresh localStorage)

ADMIN_KEY = "a" * 30
COLLECTION = "harbour"
NOTES = """Varna Harbour Notes

The Varna lighthouse stands 42 metres tall on the northern cape. Its lamp was converted to solar
power in 2009. Ferries to Balchik leave every two hours from pier 3.
"""


@dataclass(frozen=True)
class Server:
    url: str
    write_key: str
    read_key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Server]:
    """The real app with keys on (CORS open for the widget page), one collection and a write
    and a read key for it, made with the admin key."""
    _require_browser()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web-auth") / "data",
        auth=True,
        admin_key=ADMIN_KEY,
        cors_origins="*",
        _env_file=None,
    )
    with live_server(create_app(settings, embedder)) as url:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=url, headers=admin) as client:
            client.post("/admin/collections", json={"name": COLLECTION}).raise_for_status()
            keys = [
                client.post(
                    "/admin/keys", json={"collections": [COLLECTION], "role": role, "name": role}
                )
                for role in ("write", "read")
            ]
        for response in keys:
            response.raise_for_status()
        yield Server(url, keys[0].json()["key"], keys[1].json()["key"])


def _enter_key(driver: Any, key: str) -> None:
    field = driver.find_element("css selector", "#api-key")
    field.clear()
    field.send_keys(key)
    driver.find_element("css selector", "#use-key").click()


def _add_notes(server: Server) -> None:
    """The notes, stored with the write key (a duplicate if a test uploaded them already)."""
    response = httpx.post(
        server.url + "/documents",
        json={"title": "Varna Harbour Notes", "text": NOTES, "collection": COLLECTION},
        headers={"Authorization": f"Bearer {server.write_key}"},
    )
    assert response.status_code == 201, response.text


def _picker(driver: Any) -> list[str]:
    options = driver.find_elements("css selector", "#collection option")
    return [o.get_attribute("value") for o in options]


def _stored_key(driver: Any) -> str | None:
    key: str | None = driver.execute_script("return localStorage.getItem('sieve.apiKey')")
    return key


def test_key_prompt_upload_and_streamed_answer(driver: Any, server: Server, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server.url + "/")
    assert _wait(driver, "#key-form:not([hidden])").is_displayed()
    assert "needs an API key" in _wait(driver, "#key-status").text
    assert "Enter an API key" in driver.find_element("css selector", "#doc-summary").text
    assert not driver.find_element("css selector", "#picker").is_displayed()  # nothing to pick

    # asking without a key: the 401 becomes a message that asks for one
    driver.find_element("css selector", "#question").send_keys(QUESTION + "\n")
    error = _wait(driver, ".message.failed .error")
    assert "needs an API key" in error.text
    _screenshot(driver, "ui-auth-no-key.png")

    _enter_key(driver, "sieve_000000000000_" + "A" * 43)  # well formed, never issued
    refused = _wait(driver, "#key-status.problem")
    WebDriverWait(driver, 10).until(lambda _: "refused" in refused.text)
    assert "key-form attention" in driver.find_element("css selector", "#key-form").get_attribute(
        "class"
    )

    _enter_key(driver, server.write_key)
    _wait(driver, f"#collection option[value='{COLLECTION}']")
    assert _picker(driver) == [COLLECTION]  # "default" exists, but not for this key
    assert _wait(driver, "#key-status").text == "Key accepted."
    assert _stored_key(driver) == server.write_key

    doc = tmp_path / "varna-notes.txt"
    doc.write_text(NOTES)
    _wait(driver, "#file-input").send_keys(str(doc))
    assert "added" in _wait(driver, ".upload.ok .upload-state").text
    assert "Varna" in _wait(driver, "#documents .doc-title").text

    question = driver.find_element("css selector", "#question")
    question.clear()  # a failed question stays in the box
    question.send_keys(QUESTION + "\n")
    message = _wait(driver, ".message.done", timeout=30)
    assert message.find_elements("css selector", ".retrieval")  # only the streamed path has it
    answer = message.find_element("css selector", ".answer-text")
    assert "42 metres" in answer.text
    assert answer.find_element("css selector", "a.cite").text == "1"
    kept = [k.text for k in message.find_elements("css selector", ".source .kept")]
    assert any("42 metres" in k for k in kept), kept
    _no_console_errors(driver)
    _screenshot(driver, "ui-auth.png")

    # the key and the collection survive a reload: the documents list without a prompt
    driver.refresh()
    assert "Varna" in _wait(driver, "#documents .doc-title").text
    assert driver.find_element("css selector", "#api-key").get_attribute("value") == (
        server.write_key
    )
    assert _picker(driver) == [COLLECTION]

    driver.find_element("css selector", "#forget-key").click()
    assert "forgotten" in _wait(driver, "#key-status").text
    assert _stored_key(driver) is None
    assert not driver.find_elements("css selector", "#documents .document")
    assert _picker(driver) == []


def test_read_key_may_not_upload(driver: Any, server: Server, tmp_path: Path) -> None:
    driver.get(server.url + "/")
    _enter_key(driver, server.read_key)
    _wait(driver, f"#collection option[value='{COLLECTION}']")
    doc = tmp_path / "more-notes.txt"
    doc.write_text("Another note about the harbour gate.\n")
    _wait(driver, "#file-input").send_keys(str(doc))
    state = _wait(driver, ".upload.failed .upload-state").text
    assert "Not allowed with this API key" in state and COLLECTION in state, state
    assert "problem" in driver.find_element("css selector", "#key-status").get_attribute("class")
    driver.find_element("css selector", "#forget-key").click()


def test_admin_key_picks_among_collections(driver: Any, server: Server) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(server.url + "/")
    _enter_key(driver, ADMIN_KEY)
    _wait(driver, f"#collection option[value='{COLLECTION}']")
    assert sorted(_picker(driver)) == ["default", COLLECTION]
    Select(driver.find_element("css selector", "#collection")).select_by_value("default")
    summary = driver.find_element("css selector", "#doc-summary")
    WebDriverWait(driver, 10).until(lambda _: summary.text == "No documents yet.")
    driver.refresh()  # the choice is remembered
    _wait(driver, "#collection option[value='default']")
    picker = Select(driver.find_element("css selector", "#collection"))
    assert picker.first_selected_option.text == "default"
    driver.find_element("css selector", "#forget-key").click()
    driver.execute_script("localStorage.clear()")


def test_widget_with_a_read_key(driver: Any, server: Server, tmp_path: Path) -> None:
    _add_notes(server)
    script = (
        f'<script src="{server.url}/widget.js" data-collection="{COLLECTION}" '
        f'data-key="{server.read_key}" async></script>'
    )
    with widget_answer(driver, tmp_path, "", f"<h1>Harbour FAQ</h1>{script}") as shadow:
        assert "42 metres" in shadow.find_element("css selector", ".a").text
        assert not shadow.find_elements("css selector", ".err")
        _no_console_errors(driver)
        _screenshot(driver, "widget-auth.png")
