"""Who is calling, and which collection a request may touch: one dependency for every route.

With ``SIEVE_AUTH=true`` every request but the public ones (the web UI's files and /healthz)
carries ``Authorization: Bearer <key>``: the admin key (``SIEVE_ADMIN_KEY``:
collections, keys, metrics, every collection) or an API key from ``/admin/keys`` (read or
write on its collections). No key or an unknown/revoked one → 401; a collection outside the
key's scope → 403; past the key's rate → 429 with ``Retry-After``. With auth off (local use,
loopback only) every caller is the local operator.

The order of checks avoids leaking what exists: a key asking for a collection it may not see
gets 403 whether or not that collection exists; a document id of another collection is
"not found".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from fastapi import Depends, Request

from app.auth import ApiKey, KeyStore, RateLimiter, bearer_token, check_admin
from app.collections import check_name
from app.services import Services
from index import DEFAULT_COLLECTION, UnknownCollectionError


class UnauthorizedError(PermissionError):
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="sieve"'}


class ForbiddenError(PermissionError):
    pass


class RateLimitedError(RuntimeError):
    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"rate limit exceeded; retry in {self.retry_after_s} s")


class AmbiguousCollectionError(ValueError):
    """The key covers several collections and the request named none."""


@dataclass(frozen=True)
class Principal:
    kind: Literal["local", "admin", "key"]
    key: ApiKey | None = None

    @property
    def name(self) -> str:
        """For logs and rate limiting: never the secret."""
        return self.key.id if self.key else self.kind

    def can(self, collection: str, write: bool) -> bool:
        if self.key is None:
            return True  # the admin, or the local operator with auth off
        return self.key.can_write(collection) if write else self.key.can_read(collection)

    def collection(self, requested: str | None, write: bool = False) -> str:
        """The collection a request works on: the one it names, else the key's only one (the
        default collection for the admin and the local operator). Raises 403 outside scope."""
        if requested is None:
            if self.key is None:
                requested = DEFAULT_COLLECTION
            elif len(self.key.collections) == 1:
                requested = self.key.collections[0]
            else:
                raise AmbiguousCollectionError(
                    "this key covers several collections; name one with the collection field: "
                    + ", ".join(self.key.collections)
                )
        check_name(requested)
        if not self.can(requested, write):
            right = "write" if write else "read"
            raise ForbiddenError(f"this key may not {right} collection {requested!r}")
        return requested

    @property
    def admin(self) -> bool:
        return self.kind in ("admin", "local")


class Gatekeeper:
    """Authenticates requests and applies the per-key rate limit (built once per app)."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.enabled = settings.auth
        self.admin_key = settings.admin_key
        self.keys = KeyStore(settings.db_path)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)

    def close(self) -> None:
        self.keys.close()

    def principal(self, authorization: str | None) -> Principal:
        if not self.enabled:
            return Principal("local")
        token = bearer_token(authorization)
        if token is None:
            raise UnauthorizedError("missing API key: send Authorization: Bearer <key>")
        if check_admin(token, self.admin_key):
            found = Principal("admin")
        else:
            key = self.keys.authenticate(token)
            if key is None:
                raise UnauthorizedError("invalid or revoked API key")
            found = Principal("key", key)
        wait = self.limiter.check(found.name)
        if wait > 0:
            raise RateLimitedError(wait)
        return found


def get_gatekeeper(request: Request) -> Gatekeeper:
    gate: Gatekeeper = request.app.state.gatekeeper
    return gate


PRINCIPAL_STATE = "sieve_principal"  # set by AuthFirstMiddleware for requests with a body


def get_principal(request: Request) -> Principal:
    """The caller (cached per request by FastAPI, so routes may ask for it again). A request
    with a body was authenticated (and rate-limited) before its body was read."""
    found = getattr(request.state, PRINCIPAL_STATE, None)
    principal = (
        found
        if isinstance(found, Principal)
        else get_gatekeeper(request).principal(request.headers.get("authorization"))
    )
    request.state.principal = principal.name  # the access log names the key, not the secret
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise ForbiddenError("this needs the admin key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def readable(services: Services, principal: Principal, requested: str | None) -> str:
    """A collection the caller may read, that exists (404 after the scope check)."""
    name = principal.collection(requested)
    if not services.collections.exists(name):
        raise UnknownCollectionError(name)
    return name


def writable(services: Services, principal: Principal, requested: str | None) -> str:
    """A collection the caller may write to. With auth off an upload creates it."""
    name = principal.collection(requested, write=True)
    if not services.collections.exists(name):
        if principal.kind != "local":
            raise UnknownCollectionError(name)
        services.collections.create(name)
    return name
