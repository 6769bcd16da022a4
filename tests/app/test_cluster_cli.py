"""The Ray options of ``sieve serve`` and ``sieve ingest``: refused before anything starts
when they make no sense, and a clear install hint when Ray is missing (no cluster needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.cli import main
from app.cluster import INSTALL_HINT, RayMissingError, require_ray
from app.settings import Settings


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("Ray options are checked first.")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "--ray", "--server", "http://127.0.0.1:9"], "drop --server"),
        (["ingest", "--address", "auto"], "--address and --embedders go with --ray"),
        (["ingest", "--ray", "--embedders", "-1"], "--embedders must be >= 0"),
        (["ingest", "--ray", "--collection", "Bad Name"], "invalid collection name"),
    ],
)
def test_ingest_ray_options_are_checked_before_any_work(
    argv: list[str],
    message: str,
    docs: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*argv, str(docs)], settings) == 2
    assert message in capsys.readouterr().err
    assert not settings.db_path.exists()  # nothing was opened


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--address", "auto"], "--address go(es) with --ray"),
        (["serve", "--replicas", "3"], "--replicas go(es) with --ray"),
        (["serve", "--ray", "--replicas", "0"], "--replicas must be >= 1"),
        (["serve", "--ray", "--pruners", "0"], "--pruners must be >= 1"),
        (["serve", "--ray", "--collection-replicas", "-1"], "--collection-replicas must be >= 0"),
        (["serve", "--collections-per-replica", "2"], "--collections-per-replica go(es) with"),
    ],
)
def test_serve_ray_options_are_checked_before_any_work(
    argv: list[str], message: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv, settings) == 2
    assert message in capsys.readouterr().err


def test_a_missing_ray_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
    docs: Path,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(RayMissingError):
        require_ray()
    assert main(["ingest", "--ray", "--data-dir", str(settings.data_dir), str(docs)]) == 1
    assert INSTALL_HINT in capsys.readouterr().err


def test_each_http_replica_gets_its_share_of_the_rate_limit(settings: Settings) -> None:
    from app.cluster.serve import per_replica

    limited = settings.model_copy(update={"rate_limit_per_s": 9.0, "rate_limit_burst": 40})
    shared = per_replica(limited, 2)
    assert (shared.rate_limit_per_s, shared.rate_limit_burst) == (4.5, 20)
    assert per_replica(limited, 3).rate_limit_burst == 14
    off = settings.model_copy(update={"rate_limit_per_s": 0.0})
    assert per_replica(off, 4).rate_limit_per_s == 0.0  # no limit stays no limit
    assert shared.job_lease_s > 0 and settings.job_lease_s == 0  # the replicas share the jobs


class _FakeCollections:
    def __init__(self) -> None:
        self.closed: list[str] = []

    def get(self, name: str) -> object:
        return name

    def close_one(self, name: str, expected: object = None) -> None:
        self.closed.append(name)


def test_an_evicted_collection_closes_when_its_last_request_ends() -> None:
    """Spread collections: Serve evicts a collection while a request still uses it; it is
    closed after that request, once, and not when a newer opening of it took its place."""
    from app.cluster.spread import _Open

    collections, current = _FakeCollections(), {}
    busy = _Open(collections, "alpha", current)  # type: ignore[arg-type]
    busy.use()
    busy.__del__()  # evicted mid-request
    assert collections.closed == []
    busy.release()
    busy.__del__()  # the GC later: nothing more
    assert collections.closed == ["alpha"] and current == {}

    old = _Open(collections, "beta", current)  # type: ignore[arg-type]
    old.use()
    old.__del__()
    new = _Open(collections, "beta", current)  # type: ignore[arg-type]  # routed here again
    old.release()
    assert collections.closed == ["alpha"] and current == {"beta": new}  # the new one stays


class _Stream:
    """A Ray Serve streaming response as the HTTP replica sees it: async items, or the error
    the collection replica raised before its first item."""

    def __init__(self, items: list[object], error: Exception | None = None) -> None:
        self.items, self.error = list(items), error
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> object:
        if self.error is not None:
            raise self.error
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)


class _FakeHandle:
    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self.routed: list[str] = []

    def options(self, multiplexed_model_id: str, stream: bool = False) -> _FakeHandle:
        self.routed.append(multiplexed_model_id)
        return self

    @property
    def ask_stream(self) -> _FakeHandle:
        return self

    def remote(self, *_: object) -> _Stream:
        return self.stream


class _Admits:
    def exists(self, name: str) -> bool:
        return True

    def check(self, question: str, options: object) -> None:
        return None

    def admit(self) -> None:
        return None


def test_a_stream_the_collection_replica_refuses_is_refused_before_it_starts(
    settings: Settings,
) -> None:
    """Spread collections: the HTTP replica answers a stream only once the collection's replica
    admitted it, so its refusal (too many questions there) is raised before any response: a
    503, never a stream that starts and ends with an error."""
    pytest.importorskip("ray")
    import asyncio

    from app.cluster.spread import ADMITTED, RemoteSieve
    from app.pipeline import AskOptions, OverloadedError

    fakes = _Admits()
    options = AskOptions(3, 10, None, 500, "extractive", collection="alpha")

    async def open_stream(stream: _Stream) -> list[object]:
        handle = _FakeHandle(stream)
        remote = RemoteSieve(settings, fakes, fakes, handle)  # type: ignore[arg-type]
        events = await remote.ask_stream("Who?", options)
        assert handle.routed == ["alpha"]
        return [e async for e in events]

    busy = _Stream([], OverloadedError("3 questions are being answered"))
    with pytest.raises(OverloadedError, match="being answered"):
        asyncio.run(open_stream(busy))
    whole = _Stream([ADMITTED, "retrieval", "done"])
    assert asyncio.run(open_stream(whole)) == ["retrieval", "done"]
    assert not whole.cancelled
    odd = _Stream(["retrieval", "done"])  # a replica that never admits: refused, and cancelled
    with pytest.raises(RuntimeError, match="began a stream"):
        asyncio.run(open_stream(odd))
    assert odd.cancelled

    async def leave_after_one(stream: _Stream) -> None:
        remote = RemoteSieve(settings, fakes, fakes, _FakeHandle(stream))  # type: ignore[arg-type]
        events = await remote.ask_stream("Who?", options)
        async for _ in events:
            break  # the client went away
        await events.aclose()  # type: ignore[attr-defined]

    left = _Stream([ADMITTED, "retrieval", "context", "done"])
    asyncio.run(leave_after_one(left))
    assert left.cancelled  # the work on the collection's replica is cancelled


def test_a_local_cluster_fits_every_replica_on_its_cores() -> None:
    """`sieve serve --ray --collection-replicas 2` on two cores asked for 3 CPUs and Serve
    waited forever for the HTTP replicas: on a local cluster the reservations are scaled to
    fit."""
    from app.cluster.serve import RayServeOptions

    asked = RayServeOptions(replicas=2, collection_replicas=2)
    assert asked.cpus_wanted() == 3.0
    fitted = asked.fitted(2.0)
    assert fitted.cpus_wanted() <= 2.0 and fitted.replicas == 2
    assert fitted.collection_replicas == 2 and fitted.ingress_cpus > 0
    assert RayServeOptions().fitted(2.0) == RayServeOptions()  # the default fits as it is
    scaled = RayServeOptions(pruners=4, embedders=2)  # room for the autoscaled replicas too
    assert scaled.cpus_wanted() == 4.0 and scaled.fitted(2.0).cpus_wanted() <= 2.0
