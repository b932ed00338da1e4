"""The FastAPI application: routers under /v1, OpenAPI at /openapi.json, docs at /docs."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

import aicc
from aicc.api import grants, jobs, nodes, tenancy
from aicc.api.auth import PrincipalCache
from aicc.api.deps import reject_unknown_query
from aicc.api.errors import BodyLimit, error_body, install_error_handlers
from aicc.api.fastpath import SubmitFastPath, is_submission
from aicc.api.schemas import ERROR_RESPONSES
from aicc.api.submitter import GroupCommitter
from aicc.api.tokens import ensure_admin
from aicc.clock import WallClock
from aicc.config import Settings
from aicc.store.db import make_engine, transaction
from aicc.store.db import session_factory as make_session_factory
from aicc.workload.jobs import NodeShapes

SWITCH_INTERVAL_S = 0.0005


class AiccApp(FastAPI):
    """FastAPI, with job submissions answered before the middleware stack and the router
    (``api/fastpath.py``); every other request takes the ordinary way."""

    fast_path: SubmitFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None and is_submission(scope):
            await self.fast_path(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _bootstrap(factory: sessionmaker[Session], settings: Settings) -> None:
    """The admin user and its configured token exist before the first request."""
    with transaction(factory) as session:
        ensure_admin(session=session, admin_token=settings.admin_token)


def create_app(settings: Settings, *, session_factory: sessionmaker[Session] | None = None,
               control_plane: Any = None, submit_fast_path: bool = True) -> FastAPI:
    """Build the application. The database must be migrated (``aicc db upgrade``).

    ``submit_fast_path`` serves ``POST /v1/jobs`` from the lean handler of ``api/fastpath.py``
    (same behaviour as the routed one, which serves it when False)."""
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.database_url))
    factory = session_factory
    shapes = NodeShapes(ttl_s=5.0)
    # One clock for every time the API stamps: the control plane's (center time, which a demo
    # runs accelerated), else the wall.
    clock = getattr(control_plane, "clock", None) or WallClock()
    committer = GroupCommitter(factory, shapes)
    committer.clock = clock

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_bootstrap, factory, settings)
        # The group-commit writer releases the GIL on every database call; with the default
        # 5 ms switch interval a busy event loop holds it back that long each time.
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        committer.start()
        try:
            yield
        finally:
            await run_in_threadpool(committer.stop)

    app = AiccApp(title="aicc", version=aicc.__version__,
                  description="Operations API of the national AI computing center: tenancy, "
                  "grants, fleet and jobs.", lifespan=lifespan,
                  # No OpenTelemetry: its per-request checks cost more than a submission.
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  docs_url=None, redoc_url=None,  # served offline by aicc.web.docs
                  # Every route, those of routers included later too: an undeclared query
                  # parameter of a /v1 route is 422 (api/deps.py).
                  dependencies=[Depends(reject_unknown_query)])
    app.state.settings = settings
    app.state.session_factory = factory
    app.state.control_plane = control_plane
    app.state.clock = clock
    app.state.principal_cache = PrincipalCache(ttl_s=2.0)
    app.state.node_shapes = shapes
    app.state.committer = committer
    install_error_handlers(app)
    if submit_fast_path:
        app.fast_path = SubmitFastPath(app.state, settings.server.max_body_bytes)
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_body_bytes)

    @app.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> JSONResponse:
        """Liveness and database reachability (no authentication)."""
        def ping() -> None:
            with factory() as s:
                s.execute(text("SELECT 1"))
        try:
            await run_in_threadpool(ping)
        except Exception as exc:  # the answer is the status, not a crash
            return JSONResponse(error_body("unavailable", f"database unreachable: "
                                           f"{type(exc).__name__}"), status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    # HEAD answers as GET does, without the body (load balancers probe with it).
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)

    app.include_router(tenancy.router, responses=ERROR_RESPONSES)
    app.include_router(grants.router, responses=ERROR_RESPONSES)
    app.include_router(nodes.router, responses=ERROR_RESPONSES)
    app.include_router(jobs.router, responses=ERROR_RESPONSES)

    # --- further routers: one include_router line each -------------------------------------
    # (Middleware added with app.add_middleware does not see POST /v1/jobs, which AiccApp
    # answers first; build with submit_fast_path=False where a middleware must.)
    # (usage, lending, forecast, /metrics, the portal at /)
    from aicc.api import lending, usage
    from aicc.web import docs as web_docs
    from aicc.web import routes as web_routes

    app.include_router(usage.router, responses=ERROR_RESPONSES)
    app.include_router(lending.router, responses=ERROR_RESPONSES)
    app.include_router(web_routes.router)
    app.include_router(web_docs.router)
    from aicc.api.routes import forecast

    app.include_router(forecast.router, responses=ERROR_RESPONSES)
    # --- end of further routers ------------------------------------------------------------
    return app


def app_from_env() -> FastAPI:
    """The application configured from ``aicc.toml`` and ``AICC_*`` variables, for
    ``uvicorn --factory aicc.api.app:app_from_env`` (e.g. with several ``--workers``)."""
    from aicc.config import load_settings

    return create_app(load_settings())
