"""The README's configuration table is generated from Settings and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings
from app.settings_doc import END, START, replace_block, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting_with_its_default() -> None:
    text = README.read_text()
    assert replace_block(text, settings_table()) == text, (
        "README settings table is stale: run python -m app.settings_doc --write README.md"
    )
    for name in Settings.model_fields:
        assert f"`SIEVE_{name.upper()}`" in text


def test_replace_block_needs_markers() -> None:
    assert replace_block(f"a\n{START}\nold\n{END}\nb", "new") == f"a\n{START}\nnew\n{END}\nb"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", "new")
