"""Start-time forecast: fork a live snapshot into the simulator and run it until a job starts.

Running jobs keep their nodes and end at their start plus their known runtime estimate, else
their time limit (users' limits are upper bounds, so forecasts lean late). Pending jobs keep
their submit times, priorities and grants, and run for their estimate or limit once started.

What arrives after ``now`` is the arrival model's (:class:`Arrivals`):

* ``none``: nothing arrives. Later submissions that would overtake the job (higher priority,
  backfill) are unknown, which makes forecasts lean early wherever the policy lets them pass.
* ``history``: the center's own recent past is its future. The jobs submitted in the last
  ``window_s`` seconds (a whole number of weeks keeps the weekly cycle) are submitted again,
  shifted by the window and repeated up to the horizon, with their projects, types, shapes,
  limits and, for jobs that ended, the runtimes they really had. Sample 0 is that plain
  replay; samples 1, 2, … are a block bootstrap of whole days of the window (seeded), so that
  the spread of the predicted starts over the samples says how much the answer depends on
  which past repeats. The forecast is the median over the samples, with a p10–p90 range.

The scheduler is the same :func:`aicc.scheduler.schedule` the service calls, so ordering,
reservations, backfill and preemption are the live ones. :func:`measure_error` replays a trace
and compares forecasts made at probe times with the starts that really happened, for each
arrival model on the same probes (``docs/simulation.md`` has the figures).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicc.errors import InvalidInput
from aicc.fleet.arrays import FleetArrays
from aicc.scheduler import HoldReason, schedule
from aicc.scheduler.policy import Policy, resolve
from aicc.scheduler.snapshot import Snapshot, Tenancy
from aicc.sim.jobs import SimJobs
from aicc.sim.loop import ST_DONE, ST_TIMEOUT, Fork, SimConfig, Simulator, simulate
from aicc.workload.trace import RowAccount

DEFAULT_HORIZON_S = 30 * 86400.0
ARRIVAL_MODELS = ("none", "history")
DEFAULT_WINDOW_S = 7 * 86400.0
DEFAULT_SAMPLES = 5
MAX_SAMPLES = 50
BLOCK_S = 86400.0  # the bootstrap's block: whole days keep the daily cycle
# ... given two days at least to draw from; a younger history is drawn by the hour (one day
# drawn from one would make every sample the same)
SHORT_BLOCK_S = 3600.0
MIN_SPAN_S = 3600.0  # less history than this is no model of the future (no arrivals)
# the bounds of a request (the API route and the command line check the same)
MIN_HORIZON_H, MAX_HORIZON_H = 0.01, 8760.0  # 36 s (about a cycle) to a year
MIN_WINDOW_DAYS, MAX_WINDOW_DAYS = 1.0, 90.0
# the most future submissions one forecast may generate over all its samples: a short window
# repeated over a long horizon would otherwise make millions of jobs to simulate per request.
# The demo center simulates about 600 of them a second on one core (6,463 in 10.4 s), so a
# request within this bound answers within about half a minute and holds one worker no longer.
MAX_FUTURE_JOBS = 20_000
RANGE_Q = (0.1, 0.9)


@dataclass(frozen=True)
class History:
    """Jobs submitted before the fork's time, the arrival model's material (any order).

    ``runtime`` is what a job ran for when it has ended, else its estimate, else its limit:
    what the live service knows. ``grant`` indexes the snapshot's grants (-1: none).
    ``since`` is the earliest submission the source holds: a center (or a replay) younger than
    the window replays the span it has rather than taking the missing days for idle ones."""

    submit: np.ndarray  # float64
    runtime: np.ndarray  # float64
    project: np.ndarray  # int32
    type_idx: np.ndarray  # int16
    nodes: np.ndarray  # int32
    per_node: np.ndarray  # int32
    time_limit: np.ndarray  # float64
    job_class: np.ndarray  # int8
    preemptible: np.ndarray  # bool
    expected_runtime: np.ndarray  # float64, -1 = unknown
    grant: np.ndarray  # int32
    since: float = -math.inf

    def __len__(self) -> int:
        return len(self.submit)

    @classmethod
    def empty(cls) -> History:
        f, i = np.zeros(0), np.zeros(0, dtype=np.int32)
        return cls(f, f, i, i.astype(np.int16), i, i, f, i.astype(np.int8), i.astype(bool), f, i)

    def take(self, rows: np.ndarray, submit: np.ndarray) -> History:
        """Rows ``rows`` submitted at ``submit`` instead."""
        return History(submit.astype(np.float64), self.runtime[rows], self.project[rows],
                       self.type_idx[rows], self.nodes[rows], self.per_node[rows],
                       self.time_limit[rows], self.job_class[rows], self.preemptible[rows],
                       self.expected_runtime[rows], self.grant[rows], self.since)


@dataclass(frozen=True)
class Arrivals:
    """The model of submissions after the fork's time (see the module docstring)."""

    model: str = "none"
    history: History | None = None
    window_s: float = DEFAULT_WINDOW_S
    samples: int = DEFAULT_SAMPLES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in ARRIVAL_MODELS:
            raise InvalidInput(f"arrivals: expected one of {', '.join(ARRIVAL_MODELS)}, got "
                               f"{self.model!r}", field="arrivals")
        if not (math.isfinite(self.window_s) and self.window_s > 0):
            raise InvalidInput("window: must be a positive number of seconds", field="window")
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise InvalidInput(f"samples: must be between 1 and {MAX_SAMPLES}", field="samples")

    @property
    def n_samples(self) -> int:
        """Nothing arriving is one future: one run."""
        return 1 if self.model == "none" else self.samples

    def span(self, now: float) -> float:
        """The past the model replays at ``now``: the window, or what the history holds when
        it is younger (0: too little, nothing arrives)."""
        h = self.history
        if self.model == "none" or h is None or not len(h):
            return 0.0
        span = min(self.window_s, now - h.since)
        return span if span >= MIN_SPAN_S else 0.0

    def budget_check(self, now: float, horizon_s: float,
                     limit: int | None = MAX_FUTURE_JOBS) -> None:
        """Refuse a request whose samples would generate more than ``limit`` submissions in
        all (estimated from the window's rate), naming what to lower; None: no limit."""
        h = self.history
        span = self.span(now)
        if limit is None or h is None or not span:
            return
        # the window's rate over the horizon (the bootstrap draws whole days of the window)
        rate = np.count_nonzero((h.submit >= now - span) & (h.submit < now)) / span
        per_sample = math.ceil(rate * horizon_s)
        if per_sample * self.samples > limit:
            # the longest horizon that fits, rounded down to a tenth of an hour: asked again,
            # it is taken
            fits_h = math.floor((limit // self.samples) / rate / 360.0) / 10.0
            raise InvalidInput(
                f"samples: the history model would submit about {per_sample:,} jobs per sample "
                f"over the horizon, {per_sample * self.samples:,} in all (at most "
                f"{limit:,}); lower horizon_hours (at most {fits_h:,.1f} with "
                f"{self.samples} samples) or the number of samples", field="samples")

    def future(self, k: int, now: float, horizon_s: float) -> History:
        """Sample ``k``'s submissions in ``[now, now + horizon_s]``, by submit time."""
        h = self.history
        span = self.span(now)
        if h is None or not span:  # (too little past to stand for the future)
            return History.empty()
        win = np.flatnonzero((h.submit >= now - span) & (h.submit < now))
        if not len(win):
            return History.empty()
        end = now + horizon_s
        if k == 0:  # the window again and again
            reps = math.ceil(horizon_s / span)
            rows = np.tile(win, reps)
            t = (h.submit[win][None, :] + span * np.arange(1, reps + 1)[:, None]).ravel()
        else:  # whole blocks of the window, drawn with replacement, time of day kept
            block = BLOCK_S if span >= 2 * BLOCK_S else SHORT_BLOCK_S
            n_src = max(1, int(span // block))
            # 0: the last block, (now - block, now); block a ends at now - a·block, included
            # (so a span of whole blocks keeps its first instant: a store's first burst)
            age = (np.ceil((now - h.submit[win]) / block) - 1).astype(np.int64)
            keep = age < n_src
            win, age = win[keep], age[keep]
            order = np.argsort(age, kind="stable")
            win, age = win[order], age[order]
            bounds = np.searchsorted(age, np.arange(n_src + 1))
            rng = np.random.default_rng([self.seed, k])
            src = rng.integers(0, n_src, math.ceil(horizon_s / block))
            parts = [win[bounds[a]:bounds[a + 1]] for a in src.tolist()]
            shift = [np.full(len(p), (i + a + 1) * block) for i, (p, a) in
                     enumerate(zip(parts, src.tolist(), strict=True))]
            rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            t = h.submit[rows] + (np.concatenate(shift) if shift else 0.0)
        ok = t <= end
        rows, t = rows[ok], t[ok]
        order = np.argsort(t, kind="stable")
        return h.take(rows[order], t[order])


NO_ARRIVALS = Arrivals()


@dataclass(frozen=True)
class Forecast:
    job_id: int
    now: float
    predicted_start: float | None  # median over the samples; None: not within the horizon
    horizon_s: float
    running: int
    pending: int
    cycles: int
    wall_s: float
    arrivals: str = "none"
    samples: int = 1
    start_low: float | None = None  # p10 over the samples (None: beyond the horizon)
    start_high: float | None = None  # p90
    window_s: float | None = None  # the past replayed (arrivals "history"; 0: too little)
    future_jobs: int = 0  # submissions sample 0 adds within the horizon
    # not started within the horizon: why it is held there (a HoldReason), in the first
    # sample that did not start it; None when it starts
    held_for: HoldReason | None = None

    @property
    def wait_s(self) -> float | None:
        return None if self.predicted_start is None else self.predicted_start - self.now

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "now": self.now, "predicted_start": self.predicted_start,
                "predicted_wait_s": self.wait_s, "predicted_start_low": self.start_low,
                "predicted_start_high": self.start_high, "horizon_s": self.horizon_s,
                "arrivals": self.arrivals, "samples": self.samples, "window_s": self.window_s,
                "future_jobs": self.future_jobs, "running_jobs": self.running,
                "pending_jobs": self.pending, "simulated_cycles": self.cycles,
                "wall_s": self.wall_s,
                "held_for": None if self.held_for is None else self.held_for.name.lower()}


@dataclass(frozen=True)
class Starts:
    """Predicted starts of a snapshot's pending jobs, one row per arrival sample (``inf``: not
    within the horizon)."""

    ids: np.ndarray  # the pending jobs' ids
    samples: np.ndarray  # [n_samples, n_pending]
    cycles: int
    future_jobs: int  # submissions sample 0 adds within the horizon
    wall_s: float = 0.0
    # [n_samples, n_pending] int8: why a job not started within the horizon is held there
    # (a HoldReason, from a cycle on the fork's last state); -1 where it started
    held: np.ndarray | None = None

    def quantile(self, q: float) -> np.ndarray:
        """Per job, a start some sample predicted (no interpolation: ``inf`` stays itself),
        so the median lies within the p10–p90 range by construction."""
        return np.quantile(self.samples, q, axis=0, method="inverted_cdf")

    @property
    def median(self) -> np.ndarray:
        return self.quantile(0.5)

    @property
    def low(self) -> np.ndarray:
        return self.quantile(RANGE_Q[0])

    @property
    def high(self) -> np.ndarray:
        return self.quantile(RANGE_Q[1])


def _opt(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _fork(snap: Snapshot, future: History | None = None,
          notices: dict[int, float] | None = None,
          named_grant: np.ndarray | None = None) -> tuple[SimJobs, Fork, np.ndarray]:
    """The snapshot as simulator rows: pending jobs first, then the future submissions (by
    submit time), then running ones, the order ``Simulator._load_fork`` requires; returns the
    rows' job ids too (-1 for future rows). ``notices``: running jobs already told to stop
    (job id → when their grace ends), which stop then in the fork too. ``named_grant``: per
    running row, the grant it named, as the pending table gives one (one past the grants: not
    active), or -1 where it named none: requeued in the fork, such a job is charged to the
    grant live when it restarts (None: each keeps the grant it runs on)."""
    P, R = snap.pending, snap.running
    F = future if future is not None else History.empty()
    now = snap.now

    def cat(a: np.ndarray, f: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate((a, f, b))

    est_p = np.where(P.expected_runtime_s >= 0, P.expected_runtime_s, P.time_limit_s)
    est_r = np.where(R.expected_runtime_s >= 0, R.expected_runtime_s, R.time_limit_s)
    remaining = np.maximum(1.0, R.start_time + est_r - now)
    n_pf = len(P) + len(F)
    # every pending row is in the queue at the snapshot's time, whatever its stamp says (a job
    # committed while the snapshot was read may be stamped a moment after it)
    jobs = SimJobs(
        submit=cat(np.minimum(P.submit_time, now), F.submit, R.submit_time).astype(np.float64),
        runtime=cat(np.maximum(est_p, 1.0), np.maximum(F.runtime, 1.0), remaining),
        project=cat(P.project, F.project, R.project).astype(np.int32),
        type_idx=cat(P.type_idx, F.type_idx, R.type_idx).astype(np.int16),
        nodes=cat(P.nodes, F.nodes, R.nodes).astype(np.int32),
        per_node=cat(P.per_node, F.per_node, R.per_node).astype(np.int32),
        time_limit=cat(P.time_limit_s, F.time_limit, R.time_limit_s).astype(np.float64),
        job_class=cat(P.job_class, F.job_class, R.job_class).astype(np.int8),
        preemptible=cat(P.preemptible, F.preemptible, R.preemptible).astype(bool),
        gpus_requested=cat(P.accelerators, F.nodes.astype(np.int64) * F.per_node,
                           R.accelerators).astype(np.int32),
        expected_runtime=cat(P.expected_runtime_s, F.expected_runtime,
                             R.expected_runtime_s).astype(np.float64),
        account=RowAccount(rows_read=n_pf + len(R)),
        grant=cat(P.grant, F.grant, R.grant if named_grant is None
                  else named_grant).astype(np.int32),
    )
    placement = [tuple(R.allocation(r)) for r in range(len(R))]
    fork = Fork(
        now=now, free=snap.free.astype(np.int32), running=np.arange(n_pf, n_pf + len(R)),
        placement=placement, start=R.start_time.astype(np.float64), remaining=remaining,
        usage=snap.usage_decayed_s, grants=snap.grants,
        lender=R.lender if len(R.lender) == len(R) else None,
        lending_balance_s=snap.lending_balance_s,
        stops=tuple((n_pf + r, float(notices[j])) for r, j in enumerate(R.id.tolist())
                    if notices and j in notices),
        running_grant=R.grant.astype(np.int32), down_returns=snap.down_returns,
    )
    ids = cat(P.id, np.full(len(F), -1), R.id).astype(np.int64)
    return jobs, fork, ids


def forecast_starts(snap: Snapshot, policy: Policy | str = "fairshare", *,
                    arrivals: Arrivals = NO_ARRIVALS, min_cycle_s: float = 60.0,
                    horizon_s: float = DEFAULT_HORIZON_S, job_id: int | None = None,
                    max_future_jobs: int | None = MAX_FUTURE_JOBS,
                    cancelled: Callable[[], bool] | None = None,
                    notices: dict[int, float] | None = None,
                    named_grant: np.ndarray | None = None) -> Starts:
    """One fork per arrival sample, each run until the pending jobs have started (only
    ``job_id`` when given: the other columns are then partial) or the horizon. A request
    whose samples would submit more than ``max_future_jobs`` is refused (None: offline
    measurements, which bound their own work). ``cancelled`` is asked before every
    scheduler call; when it answers True the forecast stops with
    :class:`~aicc.sim.loop.Cancelled`. ``notices`` and ``named_grant``: see :func:`_fork`."""
    w0 = time.perf_counter()
    if not (MIN_HORIZON_H * 3600.0 <= horizon_s <= MAX_HORIZON_H * 3600.0):
        raise InvalidInput(f"horizon_hours must be between {MIN_HORIZON_H:g} and "
                           f"{MAX_HORIZON_H:g}, got {horizon_s / 3600.0!r}",
                           field="horizon_hours")
    pol = resolve(policy)
    n_p = len(snap.pending)
    arrivals.budget_check(snap.now, horizon_s, max_future_jobs)
    out = np.full((arrivals.n_samples, n_p), np.inf)
    held = np.full((arrivals.n_samples, n_p), -1, dtype=np.int8)
    cycles = future_jobs = 0
    for k in range(arrivals.n_samples):
        future = arrivals.future(k, snap.now, horizon_s)
        if k == 0:
            future_jobs = len(future)
        jobs, fork, ids = _fork(snap, future, notices, named_grant)
        cfg = SimConfig(policy=pol, min_cycle_s=min_cycle_s, until_s=snap.now + horizon_s,
                        sample_s=horizon_s, power_available_w=snap.power_available_w)
        sim = Simulator(jobs, snap.fleet, snap.tenancy, cfg, fork=fork, cancelled=cancelled)
        watched = np.arange(n_p) if job_id is None else np.flatnonzero(ids[:n_p] == job_id)
        sim.stop_when_started(watched)
        sim.run()
        started = sim.first_start[:n_p]
        out[k] = np.where(started >= 0, started, np.inf)
        cycles += sim.cycles
        if (started[watched] < 0).any():  # why they still wait, at the end
            end = sim.snapshot()
            rows = end.pending.id
            mine = rows < n_p
            held[k, rows[mine]] = schedule(end, pol).reason[mine]
            # (one that would start now, past the last cycle the horizon allowed, is held by
            # nothing: no reason)
            held[k][held[k] == HoldReason.NONE] = -1
    return Starts(snap.pending.id.astype(np.int64), out, cycles, future_jobs,
                  time.perf_counter() - w0, held)


def forecast_all(snap: Snapshot, policy: Policy | str = "fairshare", *,
                 arrivals: Arrivals = NO_ARRIVALS, min_cycle_s: float = 60.0,
                 horizon_s: float = DEFAULT_HORIZON_S) -> tuple[dict[int, float | None], Starts]:
    """Predicted start (median over the arrival samples) of every pending job of ``snap``
    (None beyond the horizon), with the samples themselves."""
    st = forecast_starts(snap, policy, arrivals=arrivals, min_cycle_s=min_cycle_s,
                         horizon_s=horizon_s)
    return {int(i): _opt(s) for i, s in zip(st.ids.tolist(), st.median.tolist(),
                                            strict=True)}, st


def forecast_start(snap: Snapshot, job_id: int, policy: Policy | str = "fairshare", *,
                   arrivals: Arrivals = NO_ARRIVALS, min_cycle_s: float = 60.0,
                   horizon_s: float = DEFAULT_HORIZON_S,
                   max_future_jobs: int | None = MAX_FUTURE_JOBS,
                   cancelled: Callable[[], bool] | None = None,
                   notices: dict[int, float] | None = None,
                   named_grant: np.ndarray | None = None) -> Forecast:
    """When ``job_id`` (pending in ``snap``) is predicted to start. A running job's forecast
    is its real start."""
    w0 = time.perf_counter()
    # the past replayed: the window, or less for a younger history
    window = arrivals.span(snap.now) if arrivals.model != "none" else None
    run_rows = np.flatnonzero(snap.running.id == job_id)
    if len(run_rows):
        st = float(snap.running.start_time[run_rows[0]])
        return Forecast(job_id, snap.now, st, horizon_s, len(snap.running), len(snap.pending),
                        0, time.perf_counter() - w0, arrivals.model, 0, st, st, window)
    col = np.flatnonzero(snap.pending.id == job_id)
    if not len(col):
        raise KeyError(job_id)
    s = forecast_starts(snap, policy, arrivals=arrivals, min_cycle_s=min_cycle_s,
                        horizon_s=horizon_s, job_id=job_id, max_future_jobs=max_future_jobs,
                        cancelled=cancelled, notices=notices, named_grant=named_grant)
    c = int(col[0])
    median = _opt(s.median[c])
    held = None
    if median is None and s.held is not None:
        codes = s.held[:, c][s.held[:, c] >= 0]
        held = HoldReason(int(codes[0])) if len(codes) else None
    return Forecast(job_id, snap.now, median, horizon_s, len(snap.running),
                    len(snap.pending), s.cycles, time.perf_counter() - w0, arrivals.model,
                    arrivals.n_samples, _opt(s.low[c]), _opt(s.high[c]), window,
                    s.future_jobs, held)


def replay_history(jobs: SimJobs, sim: Simulator, at: float,
                   window_s: float = DEFAULT_WINDOW_S) -> History:
    """What the live service would know at ``at`` of a replay's jobs submitted in the window
    before it: jobs that finished ran their real runtime, timed-out ones their limit, the
    others are taken at their estimate or limit."""
    lo = int(np.searchsorted(jobs.submit, at - window_s, side="left"))
    hi = int(np.searchsorted(jobs.submit, at, side="left"))
    rows = np.arange(lo, hi)
    st = sim.state[rows]
    guess = np.where(jobs.expected_runtime[rows] >= 0, jobs.expected_runtime[rows],
                     jobs.time_limit[rows])
    runtime = np.where(st == ST_DONE, jobs.runtime[rows],
                       np.where(st == ST_TIMEOUT, jobs.time_limit[rows], guess))
    grant = jobs.grant[rows] if jobs.grant is not None else np.full(len(rows), -1)
    return History(jobs.submit[rows].astype(np.float64), runtime.astype(np.float64),
                   jobs.project[rows], jobs.type_idx[rows], jobs.nodes[rows],
                   jobs.per_node[rows], jobs.time_limit[rows], jobs.job_class[rows],
                   jobs.preemptible[rows], jobs.expected_runtime[rows],
                   grant.astype(np.int32), since=float(jobs.submit[0]) if len(jobs) else at)


@dataclass
class _Tally:
    """One arrival model's forecasts against the truth, over all probes."""

    errors: list[np.ndarray] = field(default_factory=list)
    waits: list[np.ndarray] = field(default_factory=list)
    inside: list[np.ndarray] = field(default_factory=list)
    width: list[np.ndarray] = field(default_factory=list)
    beyond: int = 0
    wall_s: float = 0.0
    latency_s: list[float] = field(default_factory=list)

    def add(self, st: Starts, real: np.ndarray, at: float) -> None:
        med, lo, hi = st.median, st.low, st.high
        ok = np.isfinite(med)
        self.beyond += int((~ok).sum())
        self.errors.append(med[ok] - real[ok])
        self.waits.append(real[ok] - at)
        self.inside.append((lo[ok] <= real[ok]) & (real[ok] <= hi[ok]))
        self.width.append(hi[ok] - lo[ok])

    def stats(self) -> dict[str, Any]:
        e = np.concatenate(self.errors) if self.errors else np.zeros(0)
        out: dict[str, Any] = {"forecasts": len(e), "beyond_horizon": self.beyond,
                               "wall_s": self.wall_s}
        if self.latency_s:
            out["latency_median_s"] = float(np.median(self.latency_s))
            out["latency_max_s"] = float(np.max(self.latency_s))
        if not len(e):
            return out
        w = np.maximum(np.concatenate(self.waits), 60.0)
        a = np.abs(e)
        return out | {
            "median_abs_error_s": float(np.median(a)),
            "p90_abs_error_s": float(np.percentile(a, 90)),
            "mean_error_s": float(e.mean()),
            "median_relative_error": float(np.median(a / w)),
            "within_1h": float((a <= 3600).mean()),
            "within_25pct_of_wait": float((a <= 0.25 * w).mean()),
            "within_range": float(np.concatenate(self.inside).mean()),
            "median_range_width_s": float(np.median(np.concatenate(self.width))),
        }


def measure_error(jobs: SimJobs, fleet: FleetArrays, tenancy: Tenancy,
                  policy: Policy | str = "fairshare", *, probes: int = 10,
                  min_cycle_s: float = 60.0, seed: int = 0,
                  models: Sequence[str] = ARRIVAL_MODELS, samples: int = DEFAULT_SAMPLES,
                  window_s: float = DEFAULT_WINDOW_S, latency: bool = True,
                  probe_until: float | None = None) -> dict[str, Any]:
    """Replay ``jobs`` (the truth, with real runtimes); at ``probes`` times spread over the
    submission span (up to ``probe_until`` when given), fork the replay's state as the live
    service would see it (limits, not runtimes; the window's history) and forecast every
    pending job under each arrival model in ``models``; compare with the replay's real
    starts. The models see the same probes and the same jobs. With ``probe_until`` the jobs
    submitted after it still run in the truth: a waiting job's real competitors keep
    arriving, as they do in a center, instead of stopping where the probed span ends. With
    ``latency``, each model also times one :func:`forecast_start` per probe, for the pending
    job submitted last (the one most jobs may overtake)."""
    cfg = SimConfig(policy=policy, min_cycle_s=min_cycle_s, seed=seed)
    truth = simulate(jobs, fleet, tenancy, cfg)
    t0 = float(jobs.submit[0])
    t1 = float(jobs.submit[-1]) if probe_until is None else probe_until
    tallies = {m: _Tally() for m in models}
    for k in range(probes):
        at = t0 + (t1 - t0) * (k + 1) / (probes + 1)
        sim = Simulator(jobs, fleet, tenancy, SimConfig(policy=policy, min_cycle_s=min_cycle_s,
                                                        seed=seed, until_s=at))
        sim.run()
        snap = sim.snapshot(at)
        if len(snap.pending) == 0:
            continue
        hist = replay_history(jobs, sim, at, window_s)
        last = int(snap.pending.id[np.argmax(snap.pending.submit_time)])
        for m, tally in tallies.items():
            # the live service does not know runtimes: running jobs end at their limits
            arr = Arrivals(m, hist, window_s, samples, seed)
            st = forecast_starts(snap, policy, arrivals=arr, min_cycle_s=min_cycle_s,
                                 max_future_jobs=None)
            tally.wall_s += st.wall_s
            tally.add(st, truth.first_start[st.ids], at)
            if latency:
                tally.latency_s.append(forecast_start(snap, last, policy, arrivals=arr,
                                                      min_cycle_s=min_cycle_s,
                                                      max_future_jobs=None).wall_s)
    return {"probes": probes, "policy": resolve(policy).name, "samples": samples,
            "window_s": window_s, "models": {m: t.stats() for m, t in tallies.items()}}
