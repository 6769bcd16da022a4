"""The API docs (/docs, /redoc, /openapi.json): assets from the installed fastapi-offline
package, never a CDN; a strict Content-Security-Policy; the schema keyed and the pages off with
auth on, unless SIEVE_PUBLIC_DOCS=true. Plus one test in headless Chromium (skipped without it,
as in test_web.py) that Swagger UI renders offline with no CSP violation.

    .venv/bin/python -m pytest tests/app/test_docs.py -v
"""

from __future__ import annotations

import base64
import hashlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.live_server import live_server
from tests.app.tenants import ADMIN_H, _bearer, _collection, _key, _settings
from tests.app.test_web import CHROMEDRIVER, _require_browser, _wait, chrome_options

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
    "redoc.standalone.js": "text/javascript",
}
URL = re.compile(r"https?://", re.IGNORECASE)
LINKS = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url:\s*'([^']+)'""")


def _csp(headers: Any) -> dict[str, list[str]]:
    """The Content-Security-Policy header as {directive: sources}."""
    policy: dict[str, list[str]] = {}
    for part in headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        policy[name] = sources
    return policy


def _sha256(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_load_only_local_assets(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not URL.search(r.text), URL.findall(r.text)  # nothing from another host
    links = [a or b for a, b in LINKS.findall(r.text)]
    assert "/openapi.json" in links and len(links) >= 3, links
    for link in links:
        assert link.startswith("/"), link
        assert client.get(link).status_code == 200, link


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_assets_come_from_the_package_with_their_types(client: TestClient, name: str) -> None:
    r = client.get(f"/docs/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == ASSETS[name]
    assert r.headers["x-content-type-options"] == "nosniff"
    policy = _csp(r.headers)
    assert policy["script-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    import fastapi_offline

    assert r.content == (Path(fastapi_offline.__file__).parent / "static" / name).read_bytes()


def test_swagger_page_csp_allows_only_its_own_inline_script(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    policy = _csp(r.headers)
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert len(inline) == 1 and "SwaggerUIBundle(" in inline[0]
    assert policy["script-src"] == ["'self'", _sha256(inline[0])]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert '"validatorUrl": null' in r.text  # the schema's URL is never sent to swagger.io


def test_redoc_page_csp(client: TestClient) -> None:
    r = client.get("/redoc")
    policy = _csp(r.headers)
    assert not re.search(r"<script>", r.text)  # only <script src=...>
    assert policy["script-src"] == ["'self'"]
    assert policy["worker-src"] == ["blob:"]  # its search index
    assert policy["connect-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/docs/static/core.py",
        "/docs/static/__init__.py",
        "/docs/static/..%2fcore.py",
        "/docs/static/%2e%2e%2f%2e%2e%2fmain.py",
        "/docs/static/../../app/main.py",
        "/docs/static/",
        "/docs/static/SWAGGER-UI.CSS",
    ],
)
def test_only_the_known_files_are_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert set(r.json()) == {"detail"}


def test_schema_is_the_apps(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    schema = r.json()
    assert schema == client.app.openapi()  # type: ignore[attr-defined]
    assert "/ask" in schema["paths"]
    assert not any(p.startswith(("/docs", "/redoc", "/openapi")) for p in schema["paths"])


@pytest.fixture
def locked(tmp_path: Path, embedder: Embedder) -> Iterator[TestClient]:
    """Auth on, SIEVE_PUBLIC_DOCS=false (the default)."""
    with TestClient(create_app(_settings(tmp_path), embedder)) as client:
        yield client


def test_with_auth_on_the_schema_needs_a_key(locked: TestClient) -> None:
    r = locked.get("/openapi.json")
    assert r.status_code == 401 and set(r.json()) == {"detail"}
    assert r.headers["www-authenticate"].startswith("Bearer")
    bad = locked.get("/openapi.json", headers=_bearer("sieve_000000000000_" + "A" * 43))
    assert bad.status_code == 401
    assert "/ask" in locked.get("/openapi.json", headers=ADMIN_H).json()["paths"]
    _collection(locked, "docs")
    reader = _bearer(_key(locked, ["docs"], "read")["key"])
    assert "/ask" in locked.get("/openapi.json", headers=reader).json()["paths"]


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/static/swagger-ui-bundle.js"])
def test_with_auth_on_the_pages_are_off(locked: TestClient, path: str) -> None:
    for headers in ({}, ADMIN_H):  # a browser cannot send the key; the admin gets 404 too
        r = locked.get(path, headers=headers)
        assert r.status_code == 404
        assert set(r.json()) == {"detail"} and "SIEVE_PUBLIC_DOCS" in r.json()["detail"]


def test_public_docs_opens_them_with_auth_on(tmp_path: Path, embedder: Embedder) -> None:
    with TestClient(create_app(_settings(tmp_path, public_docs=True), embedder)) as client:
        assert "/ask" in client.get("/openapi.json").json()["paths"]
        for path in ("/docs", "/redoc", "/docs/static/swagger-ui.css"):
            assert client.get(path).status_code == 200, path
        assert client.get("/documents").status_code == 401  # the API itself stays keyed


@pytest.mark.slow
def test_swagger_ui_renders_offline(tmp_path: Path, embedder: Embedder) -> None:
    """Headless Chromium that cannot resolve any host but loopback: the page renders its
    operations, "try it out" reaches the API, nothing is fetched from elsewhere, and the
    console has no error (a CSP violation is one)."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    options = chrome_options(
        tempfile.mkdtemp(dir=tmp_path, prefix="chromium-"),
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # offline but for us
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        with live_server(create_app(settings, embedder)) as base_url:
            driver.get(base_url + "/docs")
            health = _wait(driver, "#operations-health-healthz_healthz_get")
            assert len(driver.find_elements("css selector", ".opblock")) > 10
            health.find_element("css selector", ".opblock-summary").click()
            _wait(driver, ".try-out__btn", root=health).click()
            _wait(driver, ".execute", root=health).click()
            status = _wait(driver, ".live-responses-table tbody .response-col_status", root=health)
            assert status.text.split()[0] == "200", status.text
            fetched = driver.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
            )
            assert fetched and all(u.startswith(base_url + "/") for u in fetched), fetched
            log = driver.get_log("browser")
            errors = [e for e in log if e["level"] == "SEVERE"]
            assert not errors, errors
    finally:
        driver.quit()
