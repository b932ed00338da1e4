"""The hot path of ``POST /v1/jobs`` as a lean ASGI handler in front of the application.

Submissions are the one call clients make thousands of times a second; routing and dependency
resolution cost more than the work itself. This handler does exactly what the documented route
(``api/jobs.py``) does — authenticate through the same principal cache, validate the same
``JobSubmission`` model, hand the submission to the same group commit, answer the same bodies —
without walking the routing table. Everything else falls through to the application.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Receive, Scope, Send

from aicc.api.auth import PrincipalCache, authenticate
from aicc.api.deps import single_header, unknown_query_errors
from aicc.api.errors import (
    UNSUPPORTED_MEDIA,
    aicc_error_body,
    error_body,
    is_json_media,
    read_body,
    validation_body,
)
from aicc.api.tokens import hash_token
from aicc.errors import AiccError
from aicc.tenancy.access import Principal
from aicc.workload.jobs import JobSubmission, SubmitRequest

log = logging.getLogger("aicc.api")
_JSON = [(b"content-type", b"application/json")]


def is_submission(scope: Scope) -> bool:
    return (scope["type"] == "http" and scope["method"] == "POST"
            and scope["path"] in ("/v1/jobs", "/v1/jobs/"))


class _TooLarge(Exception):
    pass


class _Unsupported(Exception):
    pass


class _UnknownQuery(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("unknown query parameters")
        self.errors = errors


def _encode(payload: Any) -> bytes:
    """Compact JSON in Rust (a third of the handler's time with ``json.dumps``); a value it
    cannot encode as UTF-8 (a lone surrogate) falls back to ``json.dumps``, which escapes it."""
    try:
        return to_json(payload)
    except PydanticSerializationError:
        return json.dumps(payload, separators=(",", ":")).encode()


class SubmitFastPath:
    """Serves ``POST /v1/jobs`` (see :func:`is_submission`) on its own, body limit included."""

    def __init__(self, state: Any, max_body_bytes: int, max_digests: int = 10_000) -> None:
        self.state = state
        self.max_body_bytes = max_body_bytes
        self.max_digests = max_digests
        # Authorization header → token hash, for headers that authenticated once. Only the
        # hashing and the format check are skipped: the principal still comes from the shared
        # cache (its expiry and invalidation hold), and a miss takes the full way.
        self._digests: dict[str, str] = {}

    async def _principal(self, authorization: str | None) -> Principal:
        if authorization is not None:
            digest = self._digests.get(authorization)
            if digest is not None:
                cache: PrincipalCache = self.state.principal_cache
                principal = cache.get(digest)
                if principal is not None:
                    return principal
        principal = await authenticate(self.state, authorization)
        if authorization is not None:  # authenticated: the header is well formed
            if len(self._digests) >= self.max_digests:
                self._digests.clear()
            self._digests[authorization] = hash_token(authorization.partition(" ")[2].strip())
        return principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, payload = await self._submit(scope, receive)
        except _TooLarge:
            status, payload = 413, error_body(
                "payload_too_large", f"request body over {self.max_body_bytes} bytes", "body")
        except _Unsupported:
            status, payload = 415, error_body("unsupported_media", UNSUPPORTED_MEDIA,
                                              "Content-Type")
        except AiccError as exc:
            status, payload = aicc_error_body(exc)
        except ValidationError as exc:
            status, payload = 422, validation_body(exc.errors(include_url=False))
        except _UnknownQuery as exc:
            status, payload = 422, validation_body(exc.errors)
        except (OperationalError, PoolTimeout):
            status, payload = 503, error_body("unavailable", "the database is busy or "
                                              "unreachable; retry")
        except Exception:  # the same answer the application gives
            log.exception("unhandled error in job submission")
            status, payload = 500, error_body("internal", "internal server error")
        body = _encode(payload) if status < 300 else json.dumps(
            payload, separators=(",", ":")).encode()
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _submit(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        authorization = content_type = None
        keys: list[str] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                keys.append(value.decode("latin-1"))
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length" and value.isdigit() and (
                    int(value) > self.max_body_bytes):
                raise _TooLarge
        body = await read_body(receive, self.max_body_bytes)
        if body is None:
            raise _TooLarge
        if content_type is not None and not is_json_media(content_type):
            raise _Unsupported  # as BodyLimit answers every other route
        if scope["query_string"]:  # the route declares none (api/deps.py refuses the rest)
            sent = [k for k, _ in parse_qsl(scope["query_string"].decode("latin-1"),
                                             keep_blank_values=True)]
            if sent:
                raise _UnknownQuery(unknown_query_errors(sent, ()))
        principal = await self._principal(authorization)
        spec = JobSubmission.model_validate_json(body)
        key = single_header("Idempotency-Key", keys)
        job, created = await self.state.committer.submit_async(
            SubmitRequest(principal, spec, key))
        return (201 if created else 200), job
