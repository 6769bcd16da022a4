"""`sieve ... --server URL` against a real uvicorn server on loopback: ingest, docs list and
rm, ask; `sieve ask` finding the server on the configured port by itself; and a server that is
not there (a clear error, no traceback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.cli import ask, main
from app.main import create_app
from app.settings import Settings
from index import Embedder
from tests.app.live_server import free_port, live_server


@pytest.fixture
def server(settings: Settings, embedder: Embedder) -> Iterator[str]:
    with live_server(create_app(settings, embedder)) as url:
        yield url


def test_commands_against_a_live_server(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.md").write_text("# Kettles\n\nThe kettle boils water in two minutes.\n")
    (tmp_path / "b.txt").write_text("Toasters brown bread. They have a lever.")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    assert main(["ingest", str(tmp_path), "--server", server]) == 1
    captured = capsys.readouterr()
    assert "2 added, 0 already present, 1 failed" in captured.out
    assert "bad.txt: server answered 4" in captured.err and "UTF-8" in captured.err

    assert main(["docs", "list", "--server", server]) == 0
    out = capsys.readouterr().out
    assert "Kettles" in out and out.splitlines()[-1] == "1-2 of 2 documents"
    assert main(["docs", "list", "--json", "--server", server]) == 0
    ids = [d["id"] for d in json.loads(capsys.readouterr().out)["documents"]]

    question = ["ask", "How fast does the kettle boil?", "--show-context", "--server", server]
    assert main(question) == 0
    out = capsys.readouterr().out
    assert "two minutes" in out and "    + " in out and "timings (ms):" in out

    assert main(["docs", "rm", ids[0], "nope", "--server", server]) == 1
    err = capsys.readouterr().err
    assert "404" in err and "nope" in err and "nothing deleted" in err
    assert main(["docs", "rm", *ids, "--server", server]) == 0
    assert "2 document(s) deleted" in capsys.readouterr().out
    assert main(["docs", "list", "--server", server]) == 0
    assert "no documents" in capsys.readouterr().out


def test_ask_uses_the_server_on_the_configured_port(
    server: str,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a.md").write_text("# Kettles\n\nThe kettle boils water in two minutes.\n")
    assert main(["ingest", str(tmp_path), "--server", server]) == 0
    capsys.readouterr()
    monkeypatch.setattr(ask, "_ask_local", lambda *a: pytest.fail("loaded the models in-process"))
    configured = settings.model_copy(update={"port": urlsplit(server).port})
    assert main(["ask", "How fast does the kettle boil?"], configured) == 0
    captured = capsys.readouterr()
    assert "two minutes" in captured.out and "[1] Kettles" in captured.out
    assert ask.LOADING_NOTE not in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        ["docs", "list"],
        ["docs", "rm", "x", "--yes"],
        ["ask", "Anything?"],
        ["ingest", "{file}"],
    ],
)
def test_unreachable_server_is_a_clear_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.txt").write_text("text")
    url = f"http://127.0.0.1:{free_port()}"
    argv = [a.replace("{file}", str(tmp_path / "a.txt")) for a in argv]
    assert main([*argv, "--server", url]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach the server at {url}" in err and "Traceback" not in err
