"""The configuration reference in the README, generated from :class:`Settings`.

``python -m app.settings_doc`` prints the table; ``--write README.md`` replaces the block
between the ``settings:start`` / ``settings:end`` markers. A test keeps README and code in step,
so every setting is documented with its real default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from app.settings import Settings

START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value.as_posix() if value.is_absolute() else './' + value.as_posix()}`"
    if isinstance(value, list | tuple):
        return f"`{','.join(map(str, value))}`" if value else "empty"
    return f"`{value}`" if value != "" else "empty"


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `SIEVE_{name.upper()}` | {_default(field)} | {meaning} |")
    return "\n".join(rows)


def replace_block(text: str, table: str) -> str:
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"markers {START} … {END} not found")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="update the block in this markdown file")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(replace_block(args.write.read_text(), settings_table()))
    else:
        sys.stdout.write(settings_table() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
