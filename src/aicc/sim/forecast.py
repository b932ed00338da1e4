"""Start-time forecast: fork a live snapshot into the simulator and run it until a job starts.

Running jobs keep their nodes and end at their start plus their known runtime estimate, else
their time limit (users' limits are upper bounds, so forecasts lean late). Pending jobs keep
their submit times, priorities and grants, and run for their estimate or limit once started.
Nothing new arrives in the fork: later submissions that would overtake the job (higher
priority, backfill) are unknown, which makes forecasts lean early. The scheduler is the same
:func:`aicc.scheduler.schedule` the service calls, so ordering, reservations, backfill and
preemption are the live ones. :func:`measure_error` replays a trace and compares forecasts made
at probe times with the starts that really happened (``docs/simulation.md`` has the figures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicc.fleet.arrays import FleetArrays
from aicc.scheduler.policy import Policy, resolve
from aicc.scheduler.snapshot import Snapshot, Tenancy
from aicc.sim.jobs import SimJobs
from aicc.sim.loop import Fork, SimConfig, Simulator, simulate
from aicc.workload.trace import RowAccount

DEFAULT_HORIZON_S = 30 * 86400.0


@dataclass(frozen=True)
class Forecast:
    job_id: int
    now: float
    predicted_start: float | None  # None: not within the horizon
    horizon_s: float
    running: int
    pending: int
    cycles: int
    wall_s: float

    @property
    def wait_s(self) -> float | None:
        return None if self.predicted_start is None else self.predicted_start - self.now

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "now": self.now, "predicted_start": self.predicted_start,
                "predicted_wait_s": self.wait_s, "horizon_s": self.horizon_s,
                "running_jobs": self.running, "pending_jobs": self.pending,
                "simulated_cycles": self.cycles, "wall_s": self.wall_s}


def _fork(snap: Snapshot) -> tuple[SimJobs, Fork, np.ndarray]:
    """The snapshot as simulator rows: pending jobs first, then running ones; returns the rows'
    job ids too."""
    P, R = snap.pending, snap.running
    now = snap.now

    def cat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate((a, b))

    est_p = np.where(P.expected_runtime_s >= 0, P.expected_runtime_s, P.time_limit_s)
    est_r = np.where(R.expected_runtime_s >= 0, R.expected_runtime_s, R.time_limit_s)
    remaining = np.maximum(1.0, R.start_time + est_r - now)
    jobs = SimJobs(
        submit=cat(P.submit_time, R.submit_time).astype(np.float64),
        runtime=cat(np.maximum(est_p, 1.0), remaining),
        project=cat(P.project, R.project).astype(np.int32),
        type_idx=cat(P.type_idx, R.type_idx).astype(np.int16),
        nodes=cat(P.nodes, R.nodes).astype(np.int32),
        per_node=cat(P.per_node, R.per_node).astype(np.int32),
        time_limit=cat(P.time_limit_s, R.time_limit_s).astype(np.float64),
        job_class=cat(P.job_class, R.job_class).astype(np.int8),
        preemptible=cat(P.preemptible, R.preemptible).astype(bool),
        gpus_requested=cat(P.accelerators, R.accelerators).astype(np.int32),
        expected_runtime=cat(P.expected_runtime_s, R.expected_runtime_s).astype(np.float64),
        account=RowAccount(rows_read=len(P) + len(R)),
        grant=cat(P.grant, R.grant).astype(np.int32),
    )
    placement = [tuple(R.allocation(r)) for r in range(len(R))]
    fork = Fork(
        now=now, free=snap.free.astype(np.int32), running=np.arange(len(P), len(P) + len(R)),
        placement=placement, start=R.start_time.astype(np.float64), remaining=remaining,
        usage=snap.usage_decayed_s, grants=snap.grants,
        lender=R.lender if len(R.lender) == len(R) else None,
        lending_balance_s=snap.lending_balance_s,
    )
    return jobs, fork, cat(P.id, R.id).astype(np.int64)


def forecast_all(snap: Snapshot, policy: Policy | str = "fairshare", *,
                 min_cycle_s: float = 60.0, horizon_s: float = DEFAULT_HORIZON_S,
                 stop_at_job: int | None = None) -> tuple[dict[int, float | None], Simulator]:
    """Predicted start of every pending job of ``snap`` (None beyond the horizon)."""
    jobs, fork, ids = _fork(snap)
    cfg = SimConfig(policy=resolve(policy), min_cycle_s=min_cycle_s,
                    until_s=snap.now + horizon_s, sample_s=horizon_s)
    sim = Simulator(jobs, snap.fleet, snap.tenancy, cfg, fork=fork)
    if stop_at_job is not None:
        rows = np.flatnonzero(ids == stop_at_job)
        sim.stop_job = int(rows[0]) if len(rows) else -1
    sim.run()
    n_p = len(snap.pending)
    starts = sim.first_start[:n_p]
    return ({int(i): (float(s) if s >= 0 else None) for i, s in zip(ids[:n_p], starts,
                                                                   strict=True)}, sim)


def forecast_start(snap: Snapshot, job_id: int, policy: Policy | str = "fairshare", *,
                   min_cycle_s: float = 60.0, horizon_s: float = DEFAULT_HORIZON_S) -> Forecast:
    """When ``job_id`` (pending in ``snap``) is predicted to start. A running job's forecast
    is its real start."""
    w0 = time.perf_counter()
    run_rows = np.flatnonzero(snap.running.id == job_id)
    if len(run_rows):
        st = float(snap.running.start_time[run_rows[0]])
        return Forecast(job_id, snap.now, st, horizon_s, len(snap.running), len(snap.pending),
                        0, time.perf_counter() - w0)
    if not (snap.pending.id == job_id).any():
        raise KeyError(job_id)
    starts, sim = forecast_all(snap, policy, min_cycle_s=min_cycle_s, horizon_s=horizon_s,
                               stop_at_job=job_id)
    return Forecast(job_id, snap.now, starts[job_id], horizon_s, len(snap.running),
                    len(snap.pending), sim.cycles, time.perf_counter() - w0)


def measure_error(jobs: SimJobs, fleet: FleetArrays, tenancy: Tenancy,
                  policy: Policy | str = "fairshare", *, probes: int = 10,
                  min_cycle_s: float = 60.0, seed: int = 0) -> dict[str, Any]:
    """Replay ``jobs`` (the truth, with real runtimes); at ``probes`` times spread over the
    submission span, fork the replay's state as the live service would see it (limits, not
    runtimes) and forecast every pending job; compare with the replay's real starts."""
    cfg = SimConfig(policy=policy, min_cycle_s=min_cycle_s, seed=seed)
    truth = simulate(jobs, fleet, tenancy, cfg)
    t0, t1 = float(jobs.submit[0]), float(jobs.submit[-1])
    errors: list[float] = []
    waits: list[float] = []
    beyond = 0
    for k in range(probes):
        at = t0 + (t1 - t0) * (k + 1) / (probes + 1)
        sim = Simulator(jobs, fleet, tenancy, SimConfig(policy=policy, min_cycle_s=min_cycle_s,
                                                        seed=seed, until_s=at))
        sim.run()
        snap = sim.snapshot(at)
        if len(snap.pending) == 0:
            continue
        # the live service does not know runtimes: running jobs end at their limits
        predicted, _ = forecast_all(snap, policy, min_cycle_s=min_cycle_s)
        for j, p in predicted.items():
            real = float(truth.first_start[j])
            if p is None:
                beyond += 1
                continue
            errors.append(p - real)
            waits.append(real - at)
    e = np.asarray(errors)
    w = np.maximum(np.asarray(waits), 60.0)
    if len(e) == 0:
        return {"probes": probes, "forecasts": 0}
    return {
        "probes": probes,
        "forecasts": len(e),
        "beyond_horizon": beyond,
        "median_abs_error_s": float(np.median(np.abs(e))),
        "p90_abs_error_s": float(np.percentile(np.abs(e), 90)),
        "mean_error_s": float(e.mean()),
        "median_relative_error": float(np.median(np.abs(e) / w)),
        "within_1h": float((np.abs(e) <= 3600).mean()),
        "within_25pct_of_wait": float((np.abs(e) <= 0.25 * w).mean()),
    }
