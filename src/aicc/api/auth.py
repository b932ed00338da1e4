"""Authentication (bearer tokens) and the principal every router scopes its queries by.

``current_principal`` is the dependency; ``visible_project_ids`` / ``require_project`` (from
``aicc.tenancy.access``) scope queries so that another tenant's ids answer 404. Resolved
principals are cached for a few seconds per token; writes that change roles call
``invalidate(app)``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from aicc.api.tokens import check_token_format, ensure_admin, hash_token, user_for_token
from aicc.errors import AuthenticationFailed
from aicc.store.db import transaction
from aicc.tenancy.access import (
    Principal,
    load_principal,
    require_admin,
    require_org,
    require_project,
    visible_org_ids,
    visible_project_ids,
)

__all__ = [
    "CurrentPrincipal",
    "Principal",
    "PrincipalCache",
    "authenticate",
    "current_principal",
    "invalidate",
    "require_admin",
    "require_org",
    "require_project",
    "visible_org_ids",
    "visible_project_ids",
]


class PrincipalCache:
    """token hash → (principal, expiry). Small, thread-safe, short-lived."""

    def __init__(self, ttl_s: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Principal, float]] = {}
        # Lookups under way, by token hash (touched only from the event loop).
        self.inflight: dict[str, asyncio.Future[Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        with self._lock:
            hit = self._entries.get(digest)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (principal, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _bearer(header: str | None) -> str:
    if not header:
        raise AuthenticationFailed("missing Authorization: Bearer <token> header",
                                   field="authorization")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("malformed Authorization header: expected 'Bearer <token>'",
                                   field="authorization")
    token = token.strip()
    check_token_format(token)
    return token


def _resolve(factory: sessionmaker[Session], token: str, admin_token: str | None) -> Principal:
    with transaction(factory) as session:
        if admin_token is not None and token == admin_token:
            # The configured admin token always works, even on a database seeded elsewhere.
            ensure_admin(session=session, admin_token=admin_token)
        user = user_for_token(session=session, token=token)
        return load_principal(session=session, user=user)


async def current_principal(request: Request) -> Principal:
    """The authenticated caller (401 for a missing, malformed or unknown token)."""
    return await authenticate(request.app.state, request.headers.get("authorization"))


async def authenticate(state: Any, authorization: str | None) -> Principal:
    """Resolve an ``Authorization`` header value against the app's state (cache, then store)."""
    token = _bearer(authorization)
    digest = hash_token(token)
    cache: PrincipalCache = state.principal_cache
    principal = cache.get(digest)
    if principal is not None:
        return principal
    # One lookup per token at a time: when an entry expires under load, the requests that
    # arrive meanwhile wait for that lookup instead of each querying the store.
    inflight: dict[str, asyncio.Future[Principal]] = cache.inflight
    pending = inflight.get(digest)
    if pending is not None:
        return await asyncio.shield(pending)
    fut: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
    inflight[digest] = fut
    try:
        principal = await run_in_threadpool(_resolve, state.session_factory, token,
                                            state.settings.admin_token)
        cache.put(digest, principal)
        fut.set_result(principal)
        return principal
    except BaseException as exc:
        fut.set_exception(exc)
        fut.exception()  # retrieved: waiters re-raise it, nobody else needs to
        raise
    finally:
        inflight.pop(digest, None)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def invalidate(request: Request) -> None:
    """Forget cached principals after a change of roles, projects or tokens."""
    request.app.state.principal_cache.clear()
