"""The portal (``/``, ``/portal/summary.json``) and Prometheus metrics (``/metrics``).

The page is rendered on the server (Jinja2, inline SVG) and refreshes itself. Without a token
it is the center's public dashboard (center-wide and per-sector figures; top projects by name,
organization, sector and accelerator-hours only). With a valid bearer token it adds the full
usage (energy, charge, jobs) of the projects the caller may see; a bad token answers 401.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from aicc.api.auth import authenticate
from aicc.store.db import transaction
from aicc.tenancy.access import Principal
from aicc.web import svg
from aicc.web.metrics import make_registry
from aicc.web.portal import PortalData, clock_now, portal_data

router = APIRouter(tags=["portal"])
REFRESH_S = 10


@cache
def _templates() -> Environment:
    env = Environment(loader=PackageLoader("aicc.web", "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["hours"] = lambda s: f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min"
    env.filters["num"] = lambda v: f"{v:,.0f}"
    return env


def _clock(request: Request) -> Any:
    cp = getattr(request.app.state, "control_plane", None)
    return getattr(cp, "clock", None)


def _load(request: Request, principal: Principal | None) -> PortalData:
    with transaction(request.app.state.session_factory) as session:
        return portal_data(session, now=clock_now(session, _clock(request)),
                           principal=principal)


async def _viewer(request: Request) -> Principal | None:
    """The caller when it sent an Authorization header (401 if that is not a valid token)."""
    header = request.headers.get("authorization")
    return None if header is None else await authenticate(request.app.state, header)


def render_portal(data: PortalData, *, refresh_s: int = REFRESH_S) -> str:
    names = [s.name for s in data.sectors]
    util_svg = svg.stacked_area(data.times, data.busy, total=data.capacity,
                                title="Accelerators busy by sector (% of the fleet)")
    queue_svg = svg.lines(data.times, data.queue, title="Jobs waiting, by sector", width=600,
                          height=240)
    return _templates().get_template("portal.html").render(
        d=data, util_svg=util_svg, queue_svg=queue_svg, legend=svg.legend(names),
        refresh_s=refresh_s)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def portal(request: Request) -> HTMLResponse:
    data = await run_in_threadpool(_load, request, await _viewer(request))
    return HTMLResponse(render_portal(data))


@router.get("/portal/summary.json")
async def portal_summary(request: Request) -> JSONResponse:
    """The numbers behind the portal page, for scripts and dashboards."""
    data = await run_in_threadpool(_load, request, await _viewer(request))
    return JSONResponse(data.to_dict())


def _registry(request: Request) -> CollectorRegistry:
    state = request.app.state
    reg = getattr(state, "metrics_registry", None)
    if reg is None:
        reg = state.metrics_registry = make_registry(
            state.session_factory, getattr(state, "control_plane", None))
    return reg


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, _registry(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
