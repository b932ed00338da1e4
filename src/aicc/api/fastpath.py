"""The hot path of ``POST /v1/jobs`` as a lean ASGI handler in front of the router.

Submissions are the one call clients make thousands of times a second; routing and dependency
resolution cost more than the work itself. This handler does exactly what the documented route
(``api/jobs.py``) does — authenticate through the same principal cache, validate the same
``JobSubmission`` model, hand the submission to the same group commit, answer the same bodies —
without walking the routing table. Everything else falls through to the application.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from aicc.api.auth import authenticate
from aicc.api.errors import aicc_error_body, error_body, validation_body
from aicc.errors import AiccError
from aicc.workload.jobs import JobSubmission, SubmitRequest

log = logging.getLogger("aicc.api")
_JSON = [(b"content-type", b"application/json")]


class SubmitFastPath:
    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"] in ("/v1/jobs", "/v1/jobs/")):
            await self.app(scope, receive, send)
            return
        try:
            status, payload = await self._submit(scope, receive)
        except AiccError as exc:
            status, payload = aicc_error_body(exc)
        except ValidationError as exc:
            status, payload = 422, validation_body(exc.errors(include_url=False))
        except Exception:  # the same answer the application gives
            log.exception("unhandled error in job submission")
            status, payload = 500, error_body("internal", "internal server error")
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = [*_JSON, (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _submit(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        authorization = key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key":
                key = value.decode("latin-1")
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        principal = await authenticate(self.state, authorization)
        spec = JobSubmission.model_validate_json(b"".join(chunks))
        fut = self.state.committer.submit(SubmitRequest(principal, spec, key))
        job, created = await asyncio.wrap_future(fut)
        return (201 if created else 200), job
