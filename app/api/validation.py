"""How a refused request body reads: one line, never echoing the input. A module of its own
(pydantic only) so the CLI can use it without the service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def describe_validation(errors: Sequence[Any]) -> str:
    """Pydantic errors as one readable line; the offending input is never echoed (it may not
    even be encodable, e.g. a lone surrogate)."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)
