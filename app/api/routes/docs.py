"""The API docs: Swagger UI at ``/docs``, ReDoc at ``/redoc``, the schema at ``/openapi.json``.

FastAPI's own pages load unpinned scripts from a CDN, without integrity checks, onto the origin
where the web UI keeps the API key, and show a blank page offline. Here the scripts come from
the installed ``fastapi-offline`` wheel (Swagger UI 5 and ReDoc 2; Apache-2.0 and MIT), served
under ``/docs/static/`` by exact name, so a request path never reaches the filesystem. The pages
carry a strict Content-Security-Policy: scripts only from this origin, plus the hash of the
inline start-up script that ``get_swagger_ui_html`` writes.

Access: with auth off everything is served. With auth on the schema needs a key (any API key
or the admin key) and the pages and their files answer 404, since a browser cannot send a
bearer key with them; ``SIEVE_PUBLIC_DOCS=true`` serves all of them without a key.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from app.api.access import get_principal
from app.api.deps import SettingsDep
from app.settings import Settings

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/static"

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# Same for the pages and their files. No 'unsafe-inline' or 'unsafe-eval' for scripts; the
# "try it out" requests go to this origin only.
_CSP = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self'{styles}; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP.format(scripts="", styles=""),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated (ETag): a package upgrade shows at once
}
# ReDoc styles itself with <style> elements it writes at run time (styled-components) and
# builds its search index in a worker started from a blob: URL.
_REDOC_CSP = _CSP.format(scripts="", styles=" 'unsafe-inline'") + "; worker-src blob:"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_OFF = "the API docs are off: auth is on and SIEVE_PUBLIC_DOCS is false (the schema needs a key)"


def _assets() -> dict[str, Path]:
    if not ASSETS_DIR.is_dir():
        return {}
    return {p.name: p for p in ASSETS_DIR.iterdir() if p.is_file() and p.suffix in _MEDIA_TYPES}


_ASSETS = _assets()


def _locked(settings: Settings) -> bool:
    return settings.auth and not settings.public_docs


async def pages_open(settings: SettingsDep) -> None:
    """The pages and their files: 404 while they are locked."""
    if _locked(settings):
        raise HTTPException(404, _OFF)


def schema_open(request: Request, settings: SettingsDep) -> None:
    """The schema: a valid key (401 without) while the docs are locked. A plain function: the
    key lookup reads SQLite, so FastAPI runs it on the thread pool."""
    if _locked(settings):
        get_principal(request)


router = APIRouter(tags=["docs"], include_in_schema=False)


@router.get("/openapi.json", dependencies=[Depends(schema_open)])
async def openapi(request: Request) -> JSONResponse:
    schema: dict[str, Any] = request.app.openapi()
    return JSONResponse(schema)


def _script_hashes(html: str) -> str:
    """CSP sources allowing exactly the inline scripts of ``html`` (the browser hashes each
    script's text as written, in UTF-8)."""
    return "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(html)
    )


@router.get("/docs", dependencies=[Depends(pages_open)])
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=None,
        # null: never send the schema's URL to swagger.io's online validator
        swagger_ui_parameters={**(request.app.swagger_ui_parameters or {}), "validatorUrl": None},
    )
    html = bytes(page.body).decode()
    csp = _CSP.format(scripts=_script_hashes(html), styles="")
    return HTMLResponse(html, headers={**_HEADERS, "Content-Security-Policy": csp})


@router.get("/redoc", dependencies=[Depends(pages_open)])
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    return HTMLResponse(page.body, headers={**_HEADERS, "Content-Security-Policy": _REDOC_CSP})


@router.get(ASSETS_URL + "/{name}", dependencies=[Depends(pages_open)])
async def asset(name: str) -> FileResponse:
    path = _ASSETS.get(name)
    if path is None:
        raise HTTPException(404, f"no docs file {name!r}")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)
