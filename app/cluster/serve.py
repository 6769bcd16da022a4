"""``sieve serve --ray``: Sieve as a Ray Serve application.

Three deployments:

- ``SieveIngress`` (``--replicas``, stateless): the whole HTTP app of ``sieve serve`` — auth,
  request limits, retrieval over the collections, the sentence blend, the LLM call, the web UI.
  Every replica opens the same data dir: SQLite is the source of truth and serialises writes,
  and each replica reconciles its FAISS, BM25 and graph with SQLite when another one committed
  (as a server does after a ``sieve ingest`` beside it). API keys live in that SQLite file, so
  every replica honours the same keys.
- ``SievePruner`` (``--pruners``): the sentence model. ``@serve.batch`` gathers the requests of
  all ingress replicas; the model's own batcher then packs them into few forward passes. One
  GPU per replica when the cluster has GPUs.
- ``SieveEmbedder`` (``--embedders``): question, sentence and entity-name embeddings for the
  ingress replicas, batched the same way (each replica still loads the embedder for its
  tokenizer and for uploads).

Both model deployments scale on ongoing requests between 1 and their replica count. With
``--collection-replicas`` a fourth, ``SieveCollections``, holds the collections instead of the
HTTP replicas (app/cluster/spread.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from app.cluster import is_local, start_ray
from app.observability.metrics import MULTIPROC_ENV
from app.settings import Settings

if TYPE_CHECKING:
    from app.services import SharedParts
from pruner import PrunedContext

logger = logging.getLogger(__name__)

MODEL_CALL_TIMEOUT_S = 120.0  # a model replica that does not answer fails the question (5xx)
RETRY_PAUSE_S = 0.5
JOB_LEASE_S = 120.0  # a job untouched this long was left by a replica that died


def call_model(method: Any, *args: Any) -> Any:
    """``method.remote(*args).result()``, again while the replica that took it died (Serve
    restarts it or routes to another): a question never fails because a model replica was lost
    mid-request, only when none answers within MODEL_CALL_TIMEOUT_S."""
    from ray.exceptions import RayActorError

    deadline = time.monotonic() + MODEL_CALL_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        try:
            return method.remote(*args).result(timeout_s=max(left, 0.1))
        except RayActorError:  # died, or unavailable (ActorUnavailableError is one too)
            if time.monotonic() + RETRY_PAUSE_S >= deadline:
                raise
            time.sleep(RETRY_PAUSE_S)


@dataclass(frozen=True)
class RayServeOptions:
    address: str | None = None  # None: a local cluster of this machine's cores
    replicas: int = 2  # ingress (HTTP) replicas
    pruners: int = 1  # most pruner replicas (autoscaled from 1)
    embedders: int = 1  # most embedder replicas (autoscaled from 1)
    ingress_cpus: float = 0.5
    model_cpus: float = 0.5
    # > 0: the collections live on their own deployment of this many replicas (app/cluster/
    # spread.py), each keeping at most collections_per_replica open; 0: on every HTTP replica
    collection_replicas: int = 0
    collections_per_replica: int = 4

    def cpus_wanted(self) -> float:
        """The CPUs the deployments reserve with every replica up (the model deployments
        autoscaled to their most)."""
        replicas = self.replicas + self.collection_replicas
        return replicas * self.ingress_cpus + (self.pruners + self.embedders) * self.model_cpus

    def fitted(self, cpus: float) -> RayServeOptions:
        """These options with each replica's CPU reservation lowered, when needed, so that all of
        them fit in ``cpus`` (else Serve waits forever for room that a local cluster never gets;
        the replicas share the machine's cores either way)."""
        need = self.cpus_wanted()
        if need <= cpus:
            return self
        scale = cpus / need
        return dataclasses.replace(
            self,
            ingress_cpus=math.floor(self.ingress_cpus * scale * 1000) / 1000,
            model_cpus=math.floor(self.model_cpus * scale * 1000) / 1000,
        )


class RemotePruner:
    """The :class:`pruner.Pruner` protocol over the ``SievePruner`` deployment (called from the
    pipeline's worker threads, never from the event loop)."""

    def __init__(self, handle: Any, name: str, default_threshold: float) -> None:
        self.handle = handle
        self._name = name
        self._default_threshold = default_threshold

    @property
    def name(self) -> str:
        return self._name

    @property
    def default_threshold(self) -> float:
        return self._default_threshold

    def process(
        self,
        question: str,
        contexts: Sequence[Sequence[str]],
        threshold: float | None = None,
        always_select_title: bool = False,
    ) -> list[PrunedContext]:
        request = (question, [list(c) for c in contexts], threshold, always_select_title)
        result: list[PrunedContext] = call_model(self.handle.process, request)
        return result


class RemoteEncoder:
    """``encode(texts) -> (n, dim) float32`` over the ``SieveEmbedder`` deployment."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        vectors: np.ndarray = call_model(self.handle.encode, list(texts))
        return vectors


class PrunerReplica:
    """The sentence model, loaded once per replica."""

    def __init__(self, settings: Settings) -> None:
        from app.services import sentence_model

        self.model = sentence_model(settings)  # on a GPU when the replica was given one

    def info(self) -> tuple[str, float]:
        return self.model.name, self.model.default_threshold

    async def process(
        self, requests: list[tuple[str, list[list[str]], float | None, bool]]
    ) -> list[list[PrunedContext]]:
        """A batch of questions at once: each in a thread, so that the model's own batcher
        packs their windows into shared forward passes."""
        return list(
            await asyncio.gather(
                *(
                    asyncio.to_thread(self.model.process, q, c, t, always_select_title=a)
                    for q, c, t, a in requests
                )
            )
        )


class EmbedderReplica:
    def __init__(self, settings: Settings) -> None:
        from app.cli.common import embedder_for

        self.embedder = embedder_for(settings)

    async def encode(self, requests: list[list[str]]) -> list[np.ndarray]:
        """Several callers' texts in one encode call, split back per caller."""
        texts = [t for r in requests for t in r]
        matrix = await asyncio.to_thread(self.embedder.encode, texts)
        out, pos = [], 0
        for r in requests:
            out.append(matrix[pos : pos + len(r)])
            pos += len(r)
        return out


class ReplicaHeader:
    """Names the replica that answered in ``X-Sieve-Replica`` (which one to look at in the
    logs; the tests check that the replicas share their state)."""

    def __init__(self, app: Any, tag: str) -> None:
        self.app = app
        self.header = (b"x-sieve-replica", tag.encode("latin-1", "replace"))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, tagged)


async def shared_models(settings: Settings, pruner: Any, embedder: Any) -> SharedParts:
    """The model deployments as the services' encoder and sentence model."""
    from app.services import SharedParts

    remote_pruner = None
    if settings.pruner != "similarity":
        name, threshold = await pruner.info.remote()
        remote_pruner = RemotePruner(pruner, name, threshold)
    return SharedParts(encode=RemoteEncoder(embedder), pruner=remote_pruner)


class IngressReplica:
    """Builds the HTTP app in the replica, with the model deployments' handles (and the
    collections deployment's, when the collections live there)."""

    def __init__(
        self, settings: Settings, pruner: Any, embedder: Any, collections: Any = None
    ) -> None:
        self.settings = settings
        self.pruner = pruner
        self.embedder = embedder
        self.collections = collections

    async def __serve_build_asgi_app__(self) -> Any:
        from ray import serve

        from app.main import create_app

        shared = await shared_models(self.settings, self.pruner, self.embedder)
        if self.collections is not None:
            from app.cluster.spread import RemoteSieve

            handle = self.collections
            shared = dataclasses.replace(
                shared,
                sieve=lambda s, c, p: RemoteSieve(s, c, p, handle),
                open_default=False,
            )
        app = create_app(self.settings, shared=shared)
        app.add_middleware(ReplicaHeader, tag=serve.get_replica_context().replica_tag)
        return app


def build_application(
    settings: Settings, options: RayServeOptions, gpus: int, metrics_dir: str | None = None
) -> Any:
    """The Serve application (deployments bound to their arguments), not yet running;
    ``metrics_dir``: where each node's HTTP replicas sum their metrics (default: a new folder
    under the temporary directory)."""
    from ray import serve

    def autoscaled(most: int) -> dict[str, Any]:
        return {"min_replicas": 1, "max_replicas": most, "target_ongoing_requests": 4}

    # the two model deployments share one GPU (half each) when the cluster has only one
    model_actor = {"num_cpus": options.model_cpus, "num_gpus": min(1.0, gpus / 2)}
    pruner = serve.deployment(
        name="SievePruner",
        autoscaling_config=autoscaled(options.pruners),
        ray_actor_options=model_actor,
    )(_with_batching(PrunerReplica, "process"))
    embedder = serve.deployment(
        name="SieveEmbedder",
        autoscaling_config=autoscaled(options.embedders),
        ray_actor_options=model_actor,
    )(_with_batching(EmbedderReplica, "encode"))
    # one folder per application start (stale values of an earlier run are never summed in)
    metrics_dir = metrics_dir or new_metrics_dir()
    ingress = serve.deployment(
        name="SieveIngress",
        num_replicas=options.replicas,
        ray_actor_options={
            "num_cpus": options.ingress_cpus,
            "runtime_env": {"env_vars": {MULTIPROC_ENV: metrics_dir}},
        },
    )(serve.ingress()(IngressReplica))
    models = (pruner.bind(settings), embedder.bind(settings))
    collections: Any = None
    if options.collection_replicas > 0:
        from app.cluster.spread import CollectionsReplica

        most = options.collections_per_replica
        deployment = serve.deployment(
            name="SieveCollections",
            num_replicas=options.collection_replicas,
            # each replica answers as many questions at once as one server would, plus a few
            # uploads and deletes; more wait in a bounded queue, past it: 503
            max_ongoing_requests=(settings.max_pending_asks or 16) + 4,
            max_queued_requests=4 * ((settings.max_pending_asks or 16) + 4),
            ray_actor_options={"num_cpus": options.ingress_cpus},
        )(_wrapped(CollectionsReplica, "open", serve.multiplexed(max_num_models_per_replica=most)))
        shares = per_replica(settings, options.collection_replicas)
        collections = deployment.bind(shares, *models, most)
    return ingress.bind(per_replica(settings, options.replicas), *models, collections)


def per_replica(settings: Settings, replicas: int) -> Settings:
    """The settings of one HTTP replica. Each limits every key to its share of
    ``SIEVE_RATE_LIMIT_PER_S`` (and of the burst): the proxy spreads requests over the replicas,
    so together they allow about what one server would (the buckets are not shared: a key whose
    requests all land on one replica is refused a little early). The replicas share the data
    dir's ingestion jobs (SIEVE_JOB_LEASE_S, unless set)."""
    update: dict[str, Any] = {"job_lease_s": settings.job_lease_s or JOB_LEASE_S}
    if settings.rate_limit_per_s > 0:
        update["rate_limit_per_s"] = settings.rate_limit_per_s / replicas
        update["rate_limit_burst"] = max(1, math.ceil(settings.rate_limit_burst / replicas))
    return settings.model_copy(update=update)


def new_metrics_dir() -> str:
    return os.path.join(tempfile.gettempdir(), f"sieve-metrics-{uuid.uuid4().hex[:12]}")


def _wrapped(cls: type, method: str, decorator: Any) -> type:
    """``cls`` with ``method`` wrapped in a Serve decorator (applied here, not in the class
    bodies, so that those import without Ray)."""
    return type(cls.__name__, (cls,), {method: decorator(getattr(cls, method))})


def _with_batching(cls: type, method: str) -> type:
    from ray import serve

    return _wrapped(cls, method, serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002))


def http_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """Ray Serve's HTTP proxy, closing idle keep-alive connections as ``sieve serve`` does.
    Its other guards (SIEVE_HEADER_TIMEOUT_S, SIEVE_MAX_CONNECTIONS) have no equivalent in
    Ray's proxy: off loopback, put a reverse proxy with those limits in front (README)."""
    return {"host": host, "port": port, "keep_alive_timeout_s": math.ceil(settings.keep_alive_s)}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@dataclass(frozen=True)
class Serving:
    """The application started by :func:`start_serving`; :meth:`wait` blocks until Ctrl-C or
    SIGTERM, then shuts Serve and Ray down."""

    url: str
    metrics_dir: str

    def wait(self) -> None:
        import ray
        from ray import serve

        signal.signal(signal.SIGTERM, _interrupt)  # `docker stop`, a supervisor: shut down cleanly
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            serve.shutdown()
            ray.shutdown()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)  # this node's copy


def start_serving(settings: Settings, host: str, port: int, options: RayServeOptions) -> Serving:
    """Deploy the application on the cluster (started or joined) and return once it answers."""
    ray = start_ray(options.address)
    from ray import serve

    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if is_local(options.address):  # nothing will join it
        fitted = options.fitted(cpus)
        if fitted != options:
            logger.info(
                "%g CPUs: each HTTP or collection replica reserves %g, each model replica %g",
                cpus,
                fitted.ingress_cpus,
                fitted.model_cpus,
            )
        options = fitted
    elif options.cpus_wanted() > cpus:
        logger.warning(
            "the deployments reserve up to %g CPUs, the cluster has %g: replicas wait for "
            "nodes to join (or lower --replicas, --collection-replicas, --pruners, --embedders)",
            options.cpus_wanted(),
            cpus,
        )
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    serve.start(http_options=http_options(settings, host, port))
    # Serve set its own logger up: keep it to warnings (its "new http_options will not be
    # applied" on run() is about a second start(); the options above are in force)
    logging.getLogger("ray.serve").setLevel(max(logging.getLogger().level, logging.WARNING))
    metrics_dir = new_metrics_dir()
    serve.run(
        build_application(settings, options, gpus, metrics_dir), name="sieve", route_prefix="/"
    )
    return Serving(f"http://{host}:{port}", metrics_dir)
