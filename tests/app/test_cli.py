"""The `sieve` command in-process: ingest a folder, ask, re-ingest (dedup), bad files reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import iter_files, main


def test_ingest_folder_then_ask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Kettles\n\nThe kettle boils water in two minutes.\n")
    (docs / "sub" / "b.txt").write_text("Toasters brown bread. They have a lever.")
    (docs / "skip.bin").write_bytes(b"\x00\x01")
    data = str(tmp_path / "data")

    assert main(["ingest", str(docs), "--data-dir", data]) == 0
    assert "2 added, 0 already present, 0 failed" in capsys.readouterr().out
    assert main(["ingest", str(docs), "--data-dir", data]) == 0
    assert "0 added, 2 already present" in capsys.readouterr().out

    assert main(["ask", "How fast does the kettle boil water?", "--data-dir", data]) == 0
    out = capsys.readouterr().out
    assert "two minutes" in out and "[1] Kettles" in out


def test_bad_file_is_reported_and_others_still_ingested(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.txt").write_text("Good content lives here.")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    assert (
        main(
            [
                "ingest",
                str(tmp_path / "good.txt"),
                str(tmp_path / "bad.txt"),
                "--data-dir",
                str(tmp_path / "data"),
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "1 added" in captured.out and "bad.txt" in captured.err


def test_iter_files_globs_and_dedup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.md").write_text("x")
    (tmp_path / "y.pdf").write_bytes(b"%PDF")
    monkeypatch.chdir(tmp_path)
    assert [p.name for p in iter_files(["*.md", "x.md", "."])] == ["x.md", "y.pdf"]
