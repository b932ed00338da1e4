"""The HTTP edge of the error tree: every error answers ``{"error": {"code", "message",
"field"}}`` with the status ``aicc.errors.HTTP_STATUS`` gives its class; request validation,
unknown routes and oversized bodies take the same shape. Nothing else maps errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aicc.errors import HTTP_STATUS, AiccError, lookup

log = logging.getLogger("aicc.api")

_HTTP_CODES = {401: "authentication_failed", 403: "permission_denied", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media"}


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def is_json_media(content_type: str | bytes | None) -> bool:
    """``application/json`` or ``application/*+json`` (parameters such as charset allowed)."""
    if content_type is None:
        return False
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


UNSUPPORTED_MEDIA = ("a request body must be JSON sent with Content-Type: application/json")


# An error answers in bounded size whatever the request sent: messages that quote a value
# are cut, and so is the list of problems (a request with thousands of unknown parameters).
MAX_MESSAGE = 500
MAX_PROBLEMS = 20


def _cut(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}… ({len(message):,} characters in all)"


def error_body(code: str, message: str, field: str | None = None, **extra: Any
               ) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": _cut(message),
                           "field": None if field is None else _cut(field)}
    err.update(extra)
    return {"error": err}


# Where FastAPI found an input: dropped from the field name, so that a query parameter, a path
# parameter, a header and a body field are named alike (``limit``, ``job_id``,
# ``Idempotency-Key``, ``gang.nodes``), as the domain errors name them.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or (str(loc[0]) if loc else "body")


async def _aicc_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AiccError)
    status, body = aicc_error_body(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _problem(e: Any) -> dict[str, str]:
    if e.get("type") == "json_invalid":  # the field is the body, whatever the loc holds
        loc = tuple(e.get("loc") or ())
        why = (e.get("ctx") or {}).get("error", "")
        if loc and isinstance(loc[-1], int):  # FastAPI: ("body", offset)
            message = f"malformed JSON at character {loc[-1]}: {why}".rstrip(": ")
        else:  # pydantic's own parser: the position is in its message
            message = str(e.get("msg", "malformed JSON"))
        return {"field": "body", "message": message, "type": "json_invalid"}
    return {"field": _cut(_loc_to_field(e.get("loc", ()))), "message": str(e.get("msg", "")),
            "type": str(e.get("type", ""))}


def validation_body(errors: Sequence[Any]) -> dict[str, Any]:
    """The error body for pydantic's (or FastAPI's) list of validation errors."""
    problems = [_problem(e) for e in errors[:MAX_PROBLEMS]]
    for p in problems:
        p["message"] = _cut(p["message"])
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    extra = {"problems_total": len(errors)} if len(errors) > MAX_PROBLEMS else {}
    return error_body("invalid_input", f"{first['field']}: {first['message']}", first["field"],
                      problems=problems, **extra)


def aicc_error_body(exc: AiccError) -> tuple[int, dict[str, Any]]:
    return lookup(HTTP_STATUS, exc), error_body(exc.code, exc.message, exc.field)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_body(exc.errors()), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":  # the router's: no such route
        path = request.url.path
        return JSONResponse(error_body("unknown_route", f"no route {request.method} "
                                       f"{_cut(path)}; the API's routes are listed at /docs",
                                       "path"), status_code=404)
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        # A body FastAPI could not parse (e.g. JSON nested past the parser's depth): bad input.
        return JSONResponse(error_body("invalid_input", "body: the JSON body cannot be parsed "
                                       "(malformed or nested too deeply)", "body"),
                            status_code=422)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


# The column of a unique constraint a write broke, as SQLite and PostgreSQL word it.
_UNIQUE_COLUMN = (re.compile(r"UNIQUE constraint failed: \w+\.(\w+)$"),
                  re.compile(r"duplicate key value violates unique constraint.*?"
                             r"Key \((\w+)\)=", re.DOTALL))


def unique_column(exc: Exception) -> str | None:
    """The one column whose unique constraint ``exc`` (an IntegrityError) broke, else None."""
    text = str(getattr(exc, "orig", exc))
    for pattern in _UNIQUE_COLUMN:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    # A race two requests lost at the database: the domain checks first, the constraint wins;
    # the answer names the field as the domain check would have.
    log.info("integrity error: %s", exc)
    column = unique_column(exc)
    if column is not None:
        return JSONResponse(error_body("conflict", f"{column}: another record already has "
                                       "this value", column), status_code=409)
    return JSONResponse(error_body("conflict", "the change conflicts with stored data"),
                        status_code=409)


async def _data_error(_: Request, exc: Exception) -> JSONResponse:
    log.info("data error: %s", exc)
    return JSONResponse(error_body("invalid_input", "a value cannot be stored (out of range "
                                   "or not representable)"), status_code=422)


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return JSONResponse(error_body("unavailable", "the database is busy or unreachable; retry"),
                        status_code=503, headers={"Retry-After": "1"})


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # Not logged here: Starlette raises the exception again once this answer is sent, and the
    # server logs it with its traceback (once).
    return JSONResponse(error_body("internal", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AiccError, _aicc_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(PoolTimeout, _unavailable)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before the application reads them
    (declared by Content-Length, or counted while a chunked body streams in)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        content_type = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._reply(send, 400, "bad_request", "malformed Content-Length")
                    return
            elif name == b"content-type":
                content_type = value
        # Bodies are JSON, as FastAPI parses them; anything else is 415 on every route, before
        # authorization, instead of a validation error about a body read as bytes.
        if (scope.get("method") in ("POST", "PUT", "PATCH") and declared != 0
                and content_type is not None and not is_json_media(content_type)):
            await self._reply(send, 415, "unsupported_media", UNSUPPORTED_MEDIA,
                              field="Content-Type")
            return
        if declared is not None:
            if declared > self.max_bytes:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, self.max_bytes)
        if body is None:
            await self._too_large(send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await self._reply(send, 413, "payload_too_large",
                          f"request body over {self.max_bytes} bytes")

    @staticmethod
    async def _reply(send: Send, status: int, code: str, message: str,
                     field: str = "body") -> None:
        import json

        body = json.dumps(error_body(code, message, field)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
