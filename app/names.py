"""Collection names: the pattern every request field and the store check them against. A module
of its own (no imports) so that request models and the CLI can use it without the indexes."""

from __future__ import annotations

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DEFAULT_COLLECTION_NAME = "default"  # index.DEFAULT_COLLECTION; a test holds them equal
