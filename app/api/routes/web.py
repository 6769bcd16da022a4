"""The browser UI at ``/``, its static files under ``/static/``, and the embeddable ``/widget.js``.

Plain HTML, CSS and ES modules shipped inside the package (``app/web/static``): no build step,
no CDN, nothing fetched from elsewhere. Only the files present at import time are served, looked
up by exact name, so a request path never reaches the filesystem.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# no-cache: the browser revalidates (ETag / Last-Modified), so an upgrade shows at once
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# The page itself: only our own scripts and styles, never framed by another site (it has
# delete buttons), no referrer leaks.
_PAGE_HEADERS = {
    **_HEADERS,
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["web"], include_in_schema=False)


def _files() -> dict[str, Path]:
    if not STATIC_DIR.is_dir():
        return {}
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in _MEDIA_TYPES}


_FILES = _files()


def _serve(name: str, headers: dict[str, str] = _HEADERS) -> FileResponse:
    path = _FILES.get(name)
    if path is None:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)


@router.get("/")
def index() -> FileResponse:
    """The single-page UI: upload, list and delete documents, ask with streamed answers."""
    return _serve("index.html", _PAGE_HEADERS)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    return _serve(name)


@router.get("/widget.js")
def widget() -> FileResponse:
    """One ``<script src=".../widget.js" async>`` tag adds a chat bubble to any page."""
    return _serve("widget.js")
