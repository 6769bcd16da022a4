"""The `sieve` command in-process: ingest (summary, bad and skipped files), ask (--show-context,
finding a running server), docs list and rm, eval (suite mapping, pass-through, errors). One
shared embedder; no benchmark data."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import ask, common, evaluate, iter_files, main
from app.settings import Settings
from index import Embedder
from tests.app.live_server import free_port


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> None:
    """In-process commands use the session's embedder instead of loading their own."""
    monkeypatch.setattr(common, "load_embedder", lambda *args: embedder)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Nothing listens on the configured port: `sieve ask` answers in-process, whatever else
    runs on this machine's port 8000."""
    return settings.model_copy(update={"port": free_port()})


def write_docs(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text(
        "# Kettles\n\nThe kettle boils water in two minutes. Kettles are sold in hardware"
        " shops across the country. The museum opens on Sundays.\n"
    )
    (folder / "sub" / "b.txt").write_text("Toasters brown bread. They have a lever.")
    (folder / "skip.bin").write_bytes(b"\x00\x01")
    return folder


def doc_ids(settings: Settings, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["docs", "list", "--json"], settings) == 0
    return [d["id"] for d in json.loads(capsys.readouterr().out)["documents"]]


# ---- ingest -------------------------------------------------------------------------------
def test_ingest_folder_then_ask(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = str(write_docs(tmp_path / "docs"))
    assert main(["ingest", docs], settings) == 0
    out = capsys.readouterr().out
    assert "2 added, 0 already present, 0 failed; 2 chunks in" in out and "chunks/s" in out
    skip = Path(docs) / "skip.bin"
    assert f"skipped 1 unsupported file: {skip} (supported: .docx .htm .html" in out
    assert main(["ingest", docs], settings) == 0
    assert "0 added, 2 already present" in capsys.readouterr().out

    assert main(["ask", "How fast does the kettle boil water?"], settings) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "two minutes" in out and "[1] Kettles" in out
    assert "context: " in out and "% pruned" in out and "timings (ms): embed " in out
    assert captured.err.startswith(f"{ask.LOADING_NOTE}\n")  # no server: say why it is slow


def test_bad_file_is_reported_and_others_still_ingested(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.txt").write_text("Good content lives here.")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa")
    assert main(["ingest", str(tmp_path)], settings) == 1
    captured = capsys.readouterr()
    assert "1 added, 0 already present, 1 failed; 1 chunks in" in captured.out
    assert "failed:" in captured.err and "bad.txt" in captured.err and "UTF-8" in captured.err
    assert "Traceback" not in captured.err


def test_files_are_committed_together_and_a_failing_one_alone_is_reported(
    tmp_path: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In-process, files share embedding calls and commits (a bulk load of small files is one
    encode call per batch, not per file); when a batch fails, each of its files is tried alone,
    so the good ones land and only the bad one is reported."""
    from app.sieve import Sieve

    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text(f"Fact number {i} is about lighthouse {i}.")
    real = Sieve.ingest
    calls: list[int] = []

    def ingest(self: Sieve, collection: str, documents: Any, *args: Any, **kw: Any) -> Any:
        calls.append(len(documents))
        if any("lighthouse 3" in doc.text for doc, _ in documents):
            raise RuntimeError("the index refused it")
        return real(self, collection, documents, *args, **kw)

    monkeypatch.setattr(Sieve, "ingest", ingest)
    assert main(["ingest", str(tmp_path)], settings) == 1
    captured = capsys.readouterr()
    assert "4 added, 0 already present, 1 failed" in captured.out
    assert "f3.txt: the index refused it" in captured.err
    assert calls == [5, 1, 1, 1, 1, 1]  # one commit for all, then each alone


def test_a_named_plain_text_file_is_ingested_but_folders_go_by_extension(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sieve ingest LICENSE` reads it (plain text that no extension names); a folder walk
    still takes only known extensions (no .git objects, no unnamed binaries)."""
    licence = tmp_path / "LICENSE"
    licence.write_text("The Orsk Licence\n\nYou may copy the ferry timetable freely.\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "COPYING").write_text("Also plain text, but found by a walk.")
    tool = tmp_path / "tool"  # a shell glob names binaries too: skipped, not failed
    tool.write_bytes(b"\x7fELF\x02\x01\x01\x00")
    assert main(["ingest", str(licence), str(tool), str(folder)], settings) == 0
    out = capsys.readouterr()
    assert "1 added, 0 already present, 0 failed" in out.out
    skipped = next(line for line in out.out.splitlines() if line.startswith("skipped"))
    assert skipped.startswith("skipped 2 unsupported files: ")
    assert str(folder / "COPYING") in skipped and str(tool) in skipped


def test_ingest_nothing_supported_is_an_error(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.bin").write_bytes(b"\x00")
    assert main(["ingest", str(tmp_path)], settings) == 1
    err = capsys.readouterr().err
    assert (
        "no supported files" in err and f"skipped 1 unsupported file: {tmp_path / 'x.bin'}" in err
    )


def test_ingest_lists_skipped_files_and_cuts_a_long_list(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.txt").write_text("The only supported file.")
    for name in ("b.png", "c.zip", "d.PNG", "e.bin", "f", "g.exe", "h.jpg"):
        (tmp_path / name).write_bytes(b"\x00")
    assert main(["ingest", str(tmp_path)], settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 added, 0 already present, 0 failed")
    shown = ", ".join(str(tmp_path / n) for n in ("b.png", "c.zip", "d.PNG", "e.bin", "f"))
    assert lines[1] == (
        f"skipped 7 unsupported files: {shown} and 2 more"
        " (supported: .docx .htm .html .markdown .md .pdf .text .txt)"
    )


def test_iter_files_globs_and_dedup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.md").write_text("x")
    (tmp_path / "y.pdf").write_bytes(b"%PDF")
    monkeypatch.chdir(tmp_path)
    assert [p.name for p in iter_files(["*.md", "x.md", "."])] == ["x.md", "y.pdf"]


# ---- ask ----------------------------------------------------------------------------------
def test_ask_show_context_marks_kept_and_pruned_sentences_in_a_pipe(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ingest", str(write_docs(tmp_path / "docs"))], settings)
    capsys.readouterr()
    question = ["ask", "How fast does the kettle boil water?", "--show-context"]
    assert main([*question, "--prune-threshold", "0.5"], settings) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # not a terminal: no colour, +/- marks instead
    lines = out.splitlines()
    kept = [line for line in lines if line.startswith("    + ")]
    pruned = [line for line in lines if line.startswith("    - ")]
    assert any("boils water in two minutes" in line for line in kept)
    assert any("museum opens on Sundays" in line for line in pruned)
    assert "kept /" in out and "pruned)" in out


def test_ask_on_an_empty_data_dir_says_what_to_do(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "Anything?"], settings) == 1
    assert "sieve ingest" in capsys.readouterr().err and not settings.data_dir.exists()


def test_ask_data_dir_never_looks_for_a_server(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A server may serve another data dir: --data-dir names the data to ask."""
    monkeypatch.setattr(ask, "running_server", lambda s: pytest.fail("probed a server"))
    assert main(["ask", "Anything?", "--data-dir", str(tmp_path / "d")], settings) == 1
    assert "sieve ingest" in capsys.readouterr().err


def test_ask_refuses_bad_options_as_the_api_does_before_loading_anything(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ask, "running_server", lambda s: pytest.fail("probed a server"))
    for flags, field in (
        (["--top-k", "0"], "top_k"),
        (["--prune-threshold", "1.5"], "prune_threshold"),
        (["--hops", "11"], "hops"),
        (["--collection", "Bad Name!"], "collection"),
    ):
        assert main(["ask", "Anything?", *flags], settings) == 1
        err = capsys.readouterr().err
        assert "bad options" in err and field in err


def test_ask_in_process_answers_with_every_api_option_and_its_errors(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The in-process ask takes the same options as POST /ask (its flags are made from the
    API's model) and reports the API's errors with their status."""
    main(["ingest", str(write_docs(tmp_path / "docs"))], settings)
    capsys.readouterr()
    flags = ["--top-k", "1", "--candidates", "5", "--max-context-tokens", "64", "--hops", "0"]
    flags += ["--prune-threshold", "0"]  # 0 is a value, not "unset": every sentence kept
    question = ["ask", "How fast does the kettle boil water?", "--json", "--explain"]
    assert main([*question, *flags, "--retrieval", "lexical"], settings) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["citations"]) == 1 and result["stats"]["hops"] == 0
    assert result["stats"]["retrieval"] == "lexical" and "explain" in result
    assert result["stats"]["tokens_after"] <= 64
    assert result["citations"][0]["pruned_sentences"] == 0
    assert main([*question, "--collection", "absent"], settings) == 1
    assert "error 404" in capsys.readouterr().err
    assert main([*question, "--llm", "nope"], settings) == 1
    assert "error 422" in capsys.readouterr().err


def healthz_answers(
    monkeypatch: pytest.MonkeyPatch, answer: httpx.Response | Exception
) -> list[dict[str, Any]]:
    """Stand-in for the GET /healthz probe; returns the calls it saw."""
    calls: list[dict[str, Any]] = []

    def get(url: str, **kwargs: Any) -> httpx.Response:
        calls.append({"url": url, **kwargs})
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(ask.httpx, "get", get)
    return calls


SIEVE_HEALTH = {"status": "ok", "auth": False, "llm": "extractive", "llm_backends": ["extractive"]}


@pytest.mark.parametrize(
    ("answer", "api_key", "found"),
    [
        (httpx.Response(200, json=SIEVE_HEALTH), "", True),
        (httpx.Response(200, json={**SIEVE_HEALTH, "auth": True}), "", False),  # would be 401
        (httpx.Response(200, json={**SIEVE_HEALTH, "auth": True}), "sieve_key", True),
        (httpx.Response(200, json={"status": "ok"}), "", False),  # another program's /healthz
        (httpx.Response(404, text="<html>not found</html>"), "", False),
        (httpx.ConnectError("refused"), "", False),
        (httpx.ReadTimeout("slow"), "", False),
    ],
)
def test_running_server_only_when_a_sieve_server_will_answer(
    monkeypatch: pytest.MonkeyPatch,
    answer: httpx.Response | Exception,
    api_key: str,
    found: bool,
) -> None:
    calls = healthz_answers(monkeypatch, answer)
    s = Settings(port=8123, api_key=api_key, _env_file=None)  # type: ignore[call-arg]
    assert ask.running_server(s) == ("http://127.0.0.1:8123" if found else None)
    assert calls == [{"url": "http://127.0.0.1:8123/healthz", "timeout": ask.PROBE_TIMEOUT_S}]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_local_url_reaches_a_wildcard_bind_on_loopback(host: str, url: str) -> None:
    assert ask.local_url(Settings(host=host, _env_file=None)) == url  # type: ignore[call-arg]


def test_render_uses_colour_only_when_asked() -> None:
    result = {
        "answer": "Two minutes [1].",
        "citations": [
            {
                "n": 1,
                "title": "Kettles",
                "chunk_id": 7,
                "score": 0.9,
                "retrievers": {"vector": {}},
                "kept_sentences": 1,
                "pruned_sentences": 1,
                "source": [
                    {"index": 0, "text": "Kept one.", "score": 0.9, "kept": True},
                    {"index": 1, "text": "Pruned one.", "score": 0.1, "kept": False},
                ],
            }
        ],
        "stats": {
            "tokens_before": 10,
            "tokens_after": 5,
            "compression": 0.5,
            "candidates": 3,
            "retrieval": "hybrid",
            "timings_ms": {"embed": 1.0, "prune": 2.0, "total": 4.0},
        },
    }
    plain = ask.render(result, show_context=True, colour=False)
    assert "    + 0.90  Kept one." in plain and "    - 0.10  Pruned one." in plain
    assert "context: 10 → 5 tokens (50% pruned) from 3 candidates (hybrid)" in plain
    assert "timings (ms): embed 1, prune 2; total 4" in plain
    coloured = "\n".join(ask.render(result, show_context=True, colour=True))
    assert f"{ask.KEPT}    + 0.90  Kept one.{ask.RESET}" in coloured
    assert f"{ask.PRUNED}    - 0.10  Pruned one.{ask.RESET}" in coloured
    assert "Pruned one" not in "\n".join(ask.render(result, show_context=False, colour=False))


def test_colour_needs_a_terminal_and_no_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert common.use_colour(Tty()) and not common.use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not common.use_colour(Tty())


# ---- docs ---------------------------------------------------------------------------------
def test_docs_list_text_json_and_paging(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["docs", "list"], settings) == 0  # no data dir yet: empty, and not created
    assert "no documents" in capsys.readouterr().out and not settings.data_dir.exists()
    main(["ingest", str(write_docs(tmp_path / "docs"))], settings)
    capsys.readouterr()

    assert main(["docs", "list"], settings) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "title", "format", "chunks", "created"]
    assert lines[1].split()[1:4] == ["Kettles", "md", "1"] and lines[2].split()[1:3] == ["b", "txt"]
    assert lines[-1] == "1-2 of 2 documents"

    assert main(["docs", "list", "--json", "--limit", "1", "--offset", "1"], settings) == 0
    page = json.loads(capsys.readouterr().out)
    assert page["total"] == 2 and [d["title"] for d in page["documents"]] == ["b"]
    assert main(["docs", "list", "--limit", "0"], settings) == 2
    assert "--limit must be in 1..1000" in capsys.readouterr().err


def test_docs_rm_is_all_or_nothing(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ingest", str(write_docs(tmp_path / "docs"))], settings)
    capsys.readouterr()
    ids = doc_ids(settings, capsys)

    assert main(["docs", "rm", ids[0], "no-such-id"], settings) == 1
    err = capsys.readouterr().err
    assert "no-such-id" in err and "nothing deleted" in err and "Traceback" not in err
    assert doc_ids(settings, capsys) == ids

    assert main(["docs", "rm", *ids, "--yes"], settings) == 0
    out = capsys.readouterr().out
    assert f"deleted {ids[0]}  Kettles" in out and "2 document(s) deleted" in out
    assert doc_ids(settings, capsys) == []


def test_docs_rm_asks_on_a_terminal(
    tmp_path: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "a.txt").write_text("Some text to delete.")
    main(["ingest", str(tmp_path / "a.txt")], settings)
    capsys.readouterr()
    ids = doc_ids(settings, capsys)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    prompts: list[str] = []
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or next(answers))
    assert main(["docs", "rm", *ids], settings) == 1
    assert "nothing deleted" in capsys.readouterr().err
    assert doc_ids(settings, capsys) == ids
    assert main(["docs", "rm", *ids], settings) == 0
    assert "1 document(s) deleted" in capsys.readouterr().out
    assert prompts == [f"delete {ids[0]}? [y/N] "] * 2 and doc_ids(settings, capsys) == []


# ---- eval ---------------------------------------------------------------------------------
def test_eval_unknown_suite_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--suite", "nope"]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_eval_outside_a_source_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(evaluate, "candidate_roots", lambda: [tmp_path])
    assert main(["eval", "--suite", "squad"]) == 2
    assert "source checkout" in capsys.readouterr().err


def test_eval_runs_the_suite_modules_with_extra_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in bench/ package: the real benchmarks take minutes and need the data sets."""
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "__init__.py").write_text("")
    for module in ("pruner_eval", "pruner_squad"):
        (bench / f"{module}.py").write_text(
            "import json, pathlib, sys\n"
            "out = pathlib.Path('bench/results')\n"
            "out.mkdir(exist_ok=True)\n"
            f"(out / '{module}.json').write_text(json.dumps(sys.argv[1:]))\n"
        )
    (bench / "graph_scale.py").write_text("import sys\nsys.exit('benchmark data not found')\n")
    monkeypatch.setattr(evaluate, "candidate_roots", lambda: [tmp_path])

    assert main(["eval", "--suite", "pruner", "--checkpoint", "x"]) == 0
    out = capsys.readouterr().out
    for module in ("pruner_eval", "pruner_squad"):
        result = bench / "results" / f"{module}.json"
        assert f"wrote {result}" in out
        assert json.loads(result.read_text()) == ["--checkpoint", "x"]
    assert main(["eval", "--suite", "graph"]) == 1  # the module's exit code, passed through
    assert "bench.graph_scale exited with code 1" in capsys.readouterr().err


def test_unknown_option_of_other_commands_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["docs", "list", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["doctor", "--help"]) == 0
    assert "One line per check" in capsys.readouterr().out
