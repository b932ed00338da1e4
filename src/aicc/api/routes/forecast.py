"""``GET /v1/jobs/{id}/forecast``: when a pending job is predicted to start.

The live state (store → :class:`~aicc.service.snapshot.SnapshotBuilder`, the same snapshot the
control plane schedules from) is forked into the simulator (``aicc.sim.forecast``), which runs
the live policy on a virtual clock until the job starts. What arrives meanwhile is the
``arrivals`` model's: ``none`` (the default) lets nothing arrive; ``history`` submits the jobs
of the last ``window_days`` again, shifted by the window, in ``samples`` variants (the answer
is their median, with a p10–p90 range). Scoped like the jobs routes: a job the caller
cannot see is 404. A forecast whose client hangs up stops at its next scheduling cycle: it
would otherwise hold a worker thread for nobody.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from aicc.api.auth import CurrentPrincipal, Principal
from aicc.api.deps import path_id, tx
from aicc.api.errors import error_body
from aicc.api.schemas import ErrorOut, ForecastOut
from aicc.errors import Conflict
from aicc.scheduler.policy import Policy
from aicc.scheduler.snapshot import HoldReason, Snapshot, hold_message
from aicc.service.loop import configured_policy
from aicc.service.snapshot import SnapshotBuilder, dt, ts
from aicc.sim.forecast import (
    DEFAULT_SAMPLES,
    MAX_HORIZON_H,
    MAX_SAMPLES,
    MAX_WINDOW_DAYS,
    MIN_HORIZON_H,
    MIN_WINDOW_DAYS,
    Arrivals,
    forecast_start,
)
from aicc.sim.loop import Cancelled
from aicc.store.models import JobState
from aicc.workload import jobs as service
from aicc.workload.jobs import iso_time

router = APIRouter(prefix="/v1", tags=["jobs"])

# Forecast cycles are at least this far apart (simulated time): coarser than the live loop's
# interval, which moves a prediction by less than this and keeps the answer fast.
MIN_FORECAST_CYCLE_S = 30.0
# "none" stays the default: on the Philly replay the history model did not make fair-share
# forecasts more accurate and costs seconds per request (docs/simulation.md)
DEFAULT_ARRIVALS = "none"

ArrivalModel = Literal["none", "history"]
# how often a running forecast looks whether its client is still there (wall time)
DISCONNECT_POLL_S = 0.25
# the status logged for a forecast whose client went away (nobody reads it; as nginx's)
CLIENT_CLOSED = 499


# a forecast refused for want of a slot: when to ask again (seconds)
BUSY_RETRY_AFTER_S = 5


class ForecastGate:
    """At most ``workers`` forecasts simulate at once and as many more wait for a slot: a
    simulation holds a core while it runs, and forecasts beyond the cores would only slow
    each other and the rest of the API (submissions first) down. Past that, a forecast is
    refused at once with 503 ``busy``."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.limiter = anyio.CapacityLimiter(workers)
        self.admitted = 0  # simulating or waiting for a slot
        self._lock = threading.Lock()  # (admitted from the worker threads that read the store)

    def try_admit(self) -> bool:
        with self._lock:
            if self.admitted >= 2 * self.workers:
                return False
            self.admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.admitted -= 1

    @classmethod
    def of(cls, request: Request) -> ForecastGate:
        state = request.app.state
        gate = getattr(state, "forecast_gate", None)
        if gate is None:  # (one per application; the event loop's thread alone gets here)
            gate = state.forecast_gate = cls(int(state.settings.server.forecast_workers))
        return gate

    def busy(self) -> JSONResponse:
        return JSONResponse(error_body(
            "busy", f"{self.admitted} forecasts are being made or wait for one of the "
                    f"{self.workers} forecast workers (server.forecast_workers); try again in "
                    f"{BUSY_RETRY_AFTER_S} s"),
            status_code=503, headers={"Retry-After": str(BUSY_RETRY_AFTER_S)})


def center_cycle_s(settings: Any, cp: Any) -> float:
    """The live cycle's interval in center time: ``cycle_interval_s`` is wall time, and an
    accelerated clock (the demo's) runs ``speed`` times faster."""
    speed = float(getattr(getattr(cp, "clock", None), "speed", 1.0))
    return float(settings.scheduler.cycle_interval_s) * speed


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else iso_time(dt(seconds))


@router.get("/jobs/{job_id}/forecast", responses={
    200: {"model": ForecastOut, "description": "the predicted start"},
    409: {"model": ErrorOut, "description": "the job has ended, or left the queue meanwhile"},
    503: {"model": ErrorOut, "description": "busy: every forecast worker is taken (Retry-After)"},
})
async def job_forecast(request: Request, principal: CurrentPrincipal, job_id: int = path_id(),
                       horizon_hours: Annotated[float, Query(
                           ge=MIN_HORIZON_H, le=MAX_HORIZON_H, allow_inf_nan=False,
                           description="how far to look ahead")] = 720.0,
                       arrivals: Annotated[ArrivalModel, Query(
                           description="future submissions: none, or history (the window's "
                                       "jobs again)")] = DEFAULT_ARRIVALS,
                       samples: Annotated[int, Query(
                           ge=1, le=MAX_SAMPLES, description="arrival samples (history)")
                                          ] = DEFAULT_SAMPLES,
                       window_days: Annotated[float, Query(
                           ge=MIN_WINDOW_DAYS, le=MAX_WINDOW_DAYS, allow_inf_nan=False,
                           description="the history's window")] = 7.0,
                       seed: Annotated[int, Query(
                           ge=0, le=2**31 - 1, description="the samples' generator")] = 0,
                       ) -> Any:
    """Predicted start of a pending job (a running job answers with its real start)."""
    gate = ForecastGate.of(request)
    admitted = threading.Event()

    def admit() -> bool:  # a pending job's forecast, once the job is found: a running job's
        if gate.try_admit():  # answer, a 404 or a 409 never wait for a slot
            admitted.set()
        return admitted.is_set()

    try:
        return await _forecast(request, principal, job_id, gate, admit, horizon_hours,
                               arrivals, samples, window_days, seed)
    except _Busy:
        return gate.busy()
    finally:
        if admitted.is_set():
            gate.leave()


class _Busy(Exception):
    """Every forecast slot is taken, and as many forecasts wait (ForecastGate)."""


async def _forecast(request: Request, principal: Principal, job_id: int, gate: ForecastGate,
                    admit: Callable[[], bool], horizon_hours: float, arrivals: str,
                    samples: int, window_days: float, seed: int) -> Any:
    settings = request.app.state.settings
    cp = request.app.state.control_plane
    policy = cp.policy if cp is not None else configured_policy(settings)
    now = cp.now() if cp is not None else time.time()
    window_s = window_days * 86400.0
    # the store is read in a worker thread (blocking I/O), and so is the simulation
    base, live = await run_in_threadpool(_live_state, request, principal, job_id, policy,
                                         now, arrivals, window_s, admit)
    if live is None:
        return base
    snapshot, history, notices, named_grant = live
    model = Arrivals(arrivals, history, window_s, samples, seed)
    gone = threading.Event()

    def run() -> Any:
        if gone.is_set():  # (the client left while this waited for a slot)
            raise Cancelled("the client went away before the forecast began")
        return forecast_start(snapshot, job_id, policy, arrivals=model,
                              min_cycle_s=max(center_cycle_s(settings, cp),
                                              MIN_FORECAST_CYCLE_S),
                              horizon_s=horizon_hours * 3600.0, cancelled=gone.is_set,
                              notices=notices, named_grant=named_grant)

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(DISCONNECT_POLL_S)
        gone.set()

    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            f = await anyio.to_thread.run_sync(run, limiter=gate.limiter)
        except Exception as exc:  # kept, and raised below: out of the task group it would
            error = exc  # come wrapped in an exception group, which no handler knows
        finally:
            tg.cancel_scope.cancel()
    if isinstance(error, KeyError):
        raise Conflict(f"job {job_id} left the queue while the forecast was made",
                       field="job_id") from None
    if isinstance(error, Cancelled):
        return Response(status_code=CLIENT_CLOSED)
    if error is not None:
        raise error  # an input error (a refused budget: 422) or a defect (500)
    if arrivals == "none":
        arrived = "nothing new arrives"
    elif not f.window_s:
        arrived = (f"nothing new arrives: the store holds too little history for the "
                   f"{window_days:g}-day window")
    elif f.window_s < window_s:
        arrived = (f"the {f.window_s / 3600.0:.1f} hours of submissions the store holds (less "
                   f"than the {window_days:g}-day window) arrive again ({f.samples} samples)")
    else:
        arrived = (f"the last {window_days:g} days' submissions arrive again "
                   f"({f.samples} samples)")
    return base | {
        "predicted_start": _iso(f.predicted_start),
        "predicted_wait_s": f.wait_s,
        "predicted_start_low": _iso(f.start_low),
        "predicted_start_high": _iso(f.start_high),
        "horizon_s": f.horizon_s,
        "arrivals": f.arrivals,
        "samples": f.samples,
        "window_s": f.window_s,
        "future_jobs": f.future_jobs,
        "running_jobs": f.running,
        "pending_jobs": f.pending,
        "wall_s": round(f.wall_s, 3),
        **_held(f.held_for, snapshot, job_id),
        "basis": f"simulation of the live queue; running jobs end at their time limits (or "
                 f"stop when their preemption notice ends); "
                 f"{arrived}",
    }


def _held(reason: HoldReason | None, snapshot: Snapshot, job_id: int) -> dict[str, Any]:
    """A job not started within the horizon: why it is still held there, as the job's own
    hold message would say it (``held_for`` a reason code, ``held_message`` its text)."""
    if reason is None:
        return {"held_for": None, "held_message": None}
    p = snapshot.pending
    r = int(np.flatnonzero(p.id == job_id)[0])
    return {"held_for": reason.name.lower(),
            "held_message": hold_message(reason, int(p.nodes[r]), int(p.per_node[r]),
                                         snapshot.fleet.catalog.names[int(p.type_idx[r])])}


def _live_state(request: Request, principal: Principal, job_id: int, policy: Policy, now: float,
                arrivals: str, window_s: float, admit: Callable[[], bool]
                ) -> tuple[dict, tuple[Any, Any, Any, Any] | None]:
    """The answer's common part and, for a pending job, the live snapshot, the history of
    arrivals, the running jobs under preemption notice and the grants the running jobs named
    (None: the answer is complete, a
    running job's real start). A pending job's forecast is admitted (``admit``) before the
    snapshot is read, else :class:`_Busy`."""
    with tx(request) as s:
        job = service.get_job(session=s, principal=principal, job_id=job_id)
        state = JobState(job.state)
        base = {"job_id": job_id, "state": state.value, "policy": policy.name,
                "sector_queueing": policy.sector_queueing,
                "require_grant": policy.require_grant, "now": _iso(now)}
        if state == JobState.RUNNING:
            start = ts(job.started_at)
            return base | {"predicted_start": _iso(start), "predicted_wait_s": 0.0,
                           "predicted_start_low": _iso(start),
                           "predicted_start_high": _iso(start), "basis": "running"}, None
        if state != JobState.PENDING:
            raise Conflict(f"job {job_id} is {state.value}; only pending and running jobs "
                           "have a start-time forecast", field="job_id")
        if not admit():
            raise _Busy
        builder = SnapshotBuilder(half_life_s=policy.usage_half_life_s)
        builder.power_available_w = request.app.state.settings.energy.it_power_w  # (rule 9)
        built = builder.build(s, now, attach_grants=False)  # (the fork resolves them)
        history = (builder.history(s, built, now, window_s) if arrivals == "history"
                   else None)
    return base, (built.snapshot, history, {j: at for j, (at, _) in built.notices.items()},
                  built.running_named_grant)
