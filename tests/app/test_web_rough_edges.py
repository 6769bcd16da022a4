"""Rough edges of the web UI that a new user hit, in headless Chromium: a failed upload stops
its progress bar and says why, ✕ asks before it deletes, a blank or over-long question is
refused in words (a long paste is never cut), the upload hint goes once there are documents,
file names show beside titles, sentences the token budget cut are told apart from pruned ones,
and answers read as prose (no hard line breaks, no citation badge inside a code span).

One server (test_web's fixture, its own data dir), a few small documents. Skipped like
test_web.py when chromium/chromedriver are missing, unless SIEVE_REQUIRE_BROWSER=1.

    .venv/bin/python -m pytest tests/app/test_web_rough_edges.py -v
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.app import test_web
from tests.app.stub_llm import StubServer
from tests.app.test_web import GUIDE, QUESTION, _no_console_errors, _screenshot, _wait

pytestmark = pytest.mark.slow
base_url = test_web.base_url  # a fresh server and data dir for this module
driver = test_web.driver

# Hard-wrapped like a text file: "It closes at six in the\nevening." is one sentence.
LIBRARY = """The library opens at nine in the morning. It closes at six in the
evening. Members can borrow ten books at a time. Loans last three weeks. Late returns
cost twenty cents per day. The reading room is on the second floor.
"""


def _post_json(base_url: str, title: str, text: str) -> None:
    """Add a document as JSON (its `source` is "json": no file name to show)."""
    body = json.dumps({"title": title, "text": text}).encode()
    request = urllib.request.Request(
        base_url + "/documents", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def _until(driver: Any, check: Any, what: str, timeout: float = 10) -> Any:
    """``check()``'s first truthy value; a list redrawn meanwhile (stale elements) is retried."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(lambda d: check(), what)


def _row(driver: Any, title: str) -> Any:
    rows = driver.find_elements("css selector", "#documents .document")
    found = [r for r in rows if r.find_element("css selector", ".doc-title").text == title]
    return found[0] if found else False


def _ask(driver: Any, question: str) -> Any:
    """Ask in the page as it is (options included); the finished answer's message."""
    done = len(driver.find_elements("css selector", ".message.done"))
    driver.find_element("css selector", "#question").send_keys(question + "\n")
    _until(
        driver,
        lambda: len(driver.find_elements("css selector", ".message.done")) > done,
        "no answer",
        timeout=30,
    )
    return driver.find_elements("css selector", ".message.done")[-1]


def test_uploads_hint_file_names_and_delete(driver: Any, base_url: str, tmp_path: Path) -> None:
    doc = tmp_path / "varna-guide.md"
    doc.write_text(GUIDE)
    bad = tmp_path / "notes.xyz"
    bad.write_text("not a format the server reads")
    driver.get(base_url + "/")
    _until(driver, lambda: "No documents" in _wait(driver, "#doc-summary").text, "not loaded")
    hint = driver.find_element("css selector", "#chat-hint")
    assert hint.is_displayed()

    _wait(driver, "#file-input").send_keys(f"{doc}\n{bad}")
    failed = _wait(driver, ".upload.failed")
    bar = failed.find_element("css selector", "progress")
    # stopped: a determinate, full bar (position is -1 while it is indeterminate, animated)
    assert driver.execute_script("return arguments[0].position", bar) == 1
    state = failed.find_element("css selector", ".upload-state").text
    assert state.startswith("Failed: ") and ("xyz" in state or "format" in state), state
    _until(driver, lambda: not hint.is_displayed(), "the upload hint stayed")

    guide = _until(driver, lambda: _row(driver, "Varna Harbour Guide"), "no guide row")
    assert guide.find_element("css selector", ".doc-source").text == "varna-guide.md"
    message = _ask(driver, QUESTION)  # the file name shows in the sources too
    assert message.find_element("css selector", ".source-file").text == "varna-guide.md"

    _post_json(base_url, "Scratch notes", "Nothing to see here. Really nothing at all.")
    driver.get(base_url + "/")
    scratch = _until(driver, lambda: _row(driver, "Scratch notes"), "no scratch row")
    assert not scratch.find_elements("css selector", ".doc-source")  # "json": no file name
    scratch.find_element("css selector", "button.danger").click()
    confirm = scratch.find_element("css selector", ".confirm")
    assert confirm.is_displayed() and "Delete this document?" in confirm.text
    _screenshot(driver, "ui-delete-confirm.png")
    scratch.find_element("css selector", ".confirm-cancel").click()
    assert not confirm.is_displayed()
    assert _row(driver, "Scratch notes") and _row(driver, "Varna Harbour Guide")
    scratch.find_element("css selector", "button.danger").click()
    scratch.find_element("css selector", ".confirm-delete").click()
    _until(driver, lambda: not _row(driver, "Scratch notes"), "not deleted")
    assert _until(driver, lambda: _row(driver, "Varna Harbour Guide"), "guide gone too")
    assert not driver.find_element("css selector", "#chat-hint").is_displayed()
    _no_console_errors(driver)


def test_blank_and_overlong_questions_are_refused_in_words(driver: Any, base_url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.get(base_url + "/")
    _wait(driver, "#collection option[value='default']")
    box = driver.find_element("css selector", "#question")
    note = driver.find_element("css selector", "#question-message")
    count = driver.find_element("css selector", "#question-count")
    driver.find_element("css selector", "#ask-button").click()
    assert note.text == "Type a question first."
    box.send_keys("   \n")  # only spaces, then Enter
    assert note.text == "Type a question first."
    assert not driver.find_elements("css selector", ".message")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    assert note.text == "" and not count.is_displayed()

    pasted = "Is the lighthouse taller than the harbour crane? " * 84  # 4,116 characters
    box.click()
    driver.execute_cdp_cmd("Input.insertText", {"text": pasted})  # as a paste
    assert box.get_property("value") == pasted  # kept whole, not cut at the limit
    length = len(pasted.strip())
    assert count.is_displayed() and count.text == f"{length:,} / 4,000"
    assert f"up to 4,000 characters; shorten it by {length - 4000:,}" in note.text
    _screenshot(driver, "ui-question-too-long.png")
    driver.find_element("css selector", "#ask-button").click()
    assert not driver.find_elements("css selector", ".message")  # not sent
    box.send_keys(Keys.BACKSPACE * (len(pasted) - 4000))
    assert note.text == "" and count.text == "4,000 / 4,000"
    _no_console_errors(driver)


def test_budget_cut_sentences_are_marked_apart_from_pruned(driver: Any, base_url: str) -> None:
    _post_json(base_url, "Collection rules", LIBRARY)
    driver.get(base_url + "/")
    _wait(driver, "#collection option[value='default']")
    driver.find_element("css selector", ".options summary").click()
    driver.find_element("css selector", "#opt-budget").send_keys("20")
    message = _ask(driver, "When does the library open and close?")
    source = message.find_element("css selector", ".source")
    assert source.find_element("css selector", ".source-title").text.startswith("Collection rules")
    over = source.find_elements("css selector", ".passage .over-budget")
    pruned = source.find_elements("css selector", ".passage .pruned")
    assert any("It closes at six" in s.text for s in over), [s.text for s in over]
    assert pruned and not any("closes" in s.text for s in pruned)
    assert "token budget" in over[0].get_attribute("title")
    assert f"{len(pruned)} pruned, {len(over)} over budget" in source.text
    compression = message.find_element("css selector", ".compression").text
    assert "% pruned" in compression and "% over budget" in compression, compression
    _no_console_errors(driver)
    driver.execute_script("arguments[0].scrollIntoView()", message)
    _screenshot(driver, "ui-budget-cut.png")


def test_answers_read_as_prose(driver: Any, base_url: str, stub_llm: StubServer) -> None:
    from selenium.webdriver.support.ui import Select

    _post_json(base_url, "Collection rules", LIBRARY)  # a duplicate if the test above ran
    driver.get(base_url + "/")
    _wait(driver, "#collection option[value='default']")
    answer = _ask(driver, "When does the library close?").find_element(
        "css selector", ".answer-text"
    )
    text = driver.execute_script("return arguments[0].innerText", answer)
    assert "six in the evening" in text and "\n" not in text.strip(), repr(text)
    assert answer.find_elements("css selector", "a.cite")

    driver.find_element("css selector", ".options summary").click()
    Select(driver.find_element("css selector", "#opt-llm")).select_by_value("openai")
    saved = stub_llm.content
    stub_llm.content = (
        "Build it with `make\nserve [1]` first, then\nopen the page [1].\n\n"
        "It closes at six\nin the evening [1]."
    )
    try:
        answer = _ask(driver, "When does the library close?").find_element(
            "css selector", ".answer-text"
        )
    finally:
        stub_llm.content = saved
    paragraphs = answer.find_elements("css selector", "p")
    texts = [driver.execute_script("return arguments[0].innerText", p) for p in paragraphs]
    assert len(texts) == 2 and not any("\n" in t.strip() for t in texts), texts
    assert "then open the page" in texts[0] and "six in the evening" in texts[1]
    code = answer.find_element("css selector", "code")
    assert code.text == "make serve"  # the badge left the code span, the line break too
    assert not answer.find_elements("css selector", "code a.cite")
    after = driver.execute_script("return arguments[0].nextElementSibling", code)
    assert after.get_attribute("class") == "cite" and after.text == "1"
    assert len(answer.find_elements("css selector", "a.cite")) == 3
    _no_console_errors(driver)
    driver.execute_script("arguments[0].scrollIntoView()", answer)
    _screenshot(driver, "ui-prose-answer.png")
