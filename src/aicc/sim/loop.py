"""The simulator's event loop: a heap of ``(time, priority, sequence, …)`` on a virtual clock.

Each scheduling cycle calls :func:`aicc.scheduler.schedule` unchanged, on a
:class:`~aicc.scheduler.snapshot.Snapshot` built from arrays kept up to date incrementally.
Cycles are triggered by events (arrivals, completions, failures, repairs, a fork's grants
beginning or ending) but never closer than
``min_cycle_s`` apart, so that arrivals between two cycles are batched into one.

Job completion is kept here, event-driven, rather than delegated to the twin engine: the engine
port has no "time of the next event" query, so driving it would mean polling at fixed steps,
and its per-job objects and node names cost more than the whole cycle at Philly scale. The twin
and this loop apply the same rules (runtime, time limit, node failure → lost work).

Priorities at equal times: a job ends, a node is repaired, a node fails, a borrowed run may
be preempted, a grant begins or ends, arrivals are admitted, the cycle runs, a preempted job
whose grace ends stops, then the metrics are sampled. A stop comes after the cycle, and the
next cycle is at least the minimum interval later: the live service stops a victim at the end
of a cycle, and its next cycle reuses the capacity. Ties beyond that are broken by the
sequence number, so the same seed always gives the same result.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from aicc.allocation.live import live_grants
from aicc.clock import VirtualClock
from aicc.errors import InvalidInput
from aicc.fleet.arrays import NODE_DOWN, NODE_UP, FleetArrays
from aicc.scheduler import Policy, decay_usage, schedule
from aicc.scheduler.lending import accumulate_lending, entitled, split_loans
from aicc.scheduler.placement import fleet_static
from aicc.scheduler.policy import resolve
from aicc.scheduler.snapshot import Grants, JobTable, Preempt, Snapshot, Start, Tenancy
from aicc.sim.jobs import SimJobs

# event priorities (lower first at equal times)
P_END, P_REPAIR, P_FAIL, P_WAKE, P_GRANT, P_ARRIVAL, P_CYCLE, P_STOP, P_SAMPLE = range(9)

# job states
ST_FUTURE, ST_PENDING, ST_RUNNING, ST_DONE, ST_FAILED, ST_TIMEOUT = range(6)
STATE_NAMES = ("unsubmitted", "pending", "running", "finished", "failed", "timeout")

# Llama 3 405B pre-training: 419 unexpected interruptions in 54 days on 16,384 GPUs.
LLAMA3_FAILURES_PER_GPU_S = 419 / (54 * 86400 * 16384)


@dataclass(frozen=True)
class FailureModel:
    """Node failures as a Poisson process over accelerators in service.

    ``on_failure``: ``requeue`` puts an interrupted job back in the queue (up to
    ``max_requeues`` times, then it fails), ``fail`` ends it. Work since the last checkpoint
    (every ``checkpoint_s``; ``None`` = no checkpoints) is lost and never charged."""

    rate_per_accelerator_s: float = LLAMA3_FAILURES_PER_GPU_S
    repair_s: float = 4 * 3600.0
    on_failure: str = "requeue"
    max_requeues: int = 3
    checkpoint_s: float | None = None
    # failures at fixed times, (time, node index), in addition to the random ones
    scheduled: tuple[tuple[float, int], ...] = ()

    def __post_init__(self) -> None:
        if self.rate_per_accelerator_s < 0:
            raise ValueError("failure rate must not be negative")
        if self.on_failure not in ("requeue", "fail"):
            raise ValueError("on_failure must be 'requeue' or 'fail'")
        if self.repair_s <= 0:
            raise ValueError("repair_s must be positive")


class Cancelled(Exception):
    """A run ended early because its ``cancelled`` callback said so."""


@dataclass(frozen=True)
class Fork:
    """Live state to continue from (the start-time forecast); see ``Simulator._load_fork`` for
    the order of the rows (pending, future submissions by submit time, running)."""

    now: float
    free: np.ndarray  # free accelerators per node at ``now``
    running: np.ndarray  # int64 rows of jobs running at ``now``
    placement: list[tuple[tuple[int, int], ...]]
    start: np.ndarray  # their start times
    remaining: np.ndarray  # their remaining seconds (from limits or estimates)
    usage: np.ndarray | None = None
    grants: Grants | None = None
    lender: np.ndarray | None = None  # lender sector per running row
    lending_balance_s: np.ndarray | None = None  # the live lending balance (rule 2)
    # running rows already given preemption notice: (row, when its grace ends)
    stops: tuple[tuple[int, float], ...] = ()
    # the grant each running row is charged to (its ``jobs.grant`` is -1 where that grant was
    # chosen at its start rather than named: chosen again if the fork requeues it)
    running_grant: np.ndarray | None = None
    # per node, down and expected back (rule 9; Snapshot.down_returns): a node the live service
    # knows is gone for good keeps no power back in the fork either
    down_returns: np.ndarray | None = None


MIN_SAMPLE_S = 1.0


@dataclass(frozen=True)
class SimConfig:
    policy: Policy | str = "fairshare"
    min_cycle_s: float = 60.0
    sample_s: float | None = None  # None: about 2,000 samples over the submission span
    failures: FailureModel | None = None
    seed: int = 0
    until_s: float = math.inf
    check_invariants: bool = False  # verify conservation after every cycle (tests)
    # accelerator power the site allows, W (rule 9; the live service's site_power_mw / pue)
    power_available_w: float = math.inf
    # stop this long after the first submission (or the fork's time), as at until_s
    span_s: float = math.inf

    def __post_init__(self) -> None:
        # a sample interval too small to move the clock (t + sample_s == t) would never end
        # (the minimum cycle interval is checked by the Scenario, naming --min-cycle)
        if self.sample_s is not None and not (math.isfinite(self.sample_s)
                                              and self.sample_s >= MIN_SAMPLE_S):
            raise InvalidInput(f"sample_s must be a finite number of seconds of at least "
                               f"{MIN_SAMPLE_S:g}, got {self.sample_s!r}", field="sample_s")
        if not (self.span_s > 0):  # (NaN too; inf: no limit)
            raise InvalidInput(f"span_s must be a positive number of seconds, got "
                               f"{self.span_s!r}", field="span_s")
        if not (self.power_available_w > 0):  # (NaN too; inf: no cap)
            raise InvalidInput(f"power_available_w must be a positive number of watts, got "
                               f"{self.power_available_w!r}", field="power_available_w")


@dataclass
class SimResult:
    """Everything the metrics and reports need; arrays are one row per job."""

    jobs: SimJobs
    fleet: FleetArrays
    tenancy: Tenancy
    policy: str
    state: np.ndarray
    first_start: np.ndarray
    end: np.ndarray
    preemptions: np.ndarray
    interruptions: np.ndarray
    lost_s: np.ndarray  # accelerator-seconds lost (not charged)
    charged_s: np.ndarray  # accelerator-seconds of useful work (charged)
    series: dict[str, np.ndarray]
    end_time: float
    cycles: int
    wall_s: float
    failures: int
    cycle_wall_s: float
    config: SimConfig
    cycles_skipped: int = 0  # cycles proven to start nothing (see Simulator._cycle)
    schedule_wall_s: float = 0.0  # wall time inside schedule() alone
    # [lender, borrower] accelerator-seconds lent, decayed (rule 2), at end_time; None when the
    # policy does not lend (the baselines)
    lending_balance_s: np.ndarray | None = None
    extra: dict[str, object] = field(default_factory=dict)
    # accelerator-seconds of the runs still going at end_time (a run stopped by ``until_s``):
    # work done but not charged yet (zeros when every run had ended); None: not recorded
    in_progress_s: np.ndarray | None = None
    node_failures: np.ndarray | None = None  # failures per node
    # stopped before its events ran out (``until_s``, ``span_s``, ``stop_when_started``), not
    # ended by having nothing left to do
    cut: bool = False

    @property
    def label(self) -> str:
        """The run's name in reports: its policy, with its fleet when fleets are compared."""
        return str(self.extra.get("label", self.policy))


class _Running:
    """Running jobs with their allocations in CSR form, in job id order; rows removed and
    added lazily (when the table is next needed)."""

    def __init__(self, n_jobs: int) -> None:
        self._mark = np.zeros(n_jobs, dtype=bool)  # scratch membership array for compaction
        self.ids = np.zeros(0, dtype=np.int64)
        self.ptr = np.zeros(1, dtype=np.int64)
        self.node = np.zeros(0, dtype=np.int32)
        self.count = np.zeros(0, dtype=np.int32)
        self.lender = np.zeros(0, dtype=np.int16)
        self._add: list[tuple[int, tuple[tuple[int, int], ...], int]] = []
        self._gone: set[int] = set()

    def add(self, job: int, placement: tuple[tuple[int, int], ...], lender: int) -> None:
        self._add.append((job, placement, lender))

    def remove(self, job: int) -> None:
        self._gone.add(job)

    def compact(self) -> None:
        if self._gone:
            gone = np.fromiter(self._gone, dtype=np.int64, count=len(self._gone))
            self._mark[gone] = True
            keep = ~self._mark[self.ids]
            self._mark[gone] = False
            counts = np.diff(self.ptr)
            keep_k = np.repeat(keep, counts)
            self.ids, self.lender = self.ids[keep], self.lender[keep]
            self.node, self.count = self.node[keep_k], self.count[keep_k]
            self.ptr = np.concatenate(([0], np.cumsum(counts[keep])))
            pending_gone = self._gone.difference(self.ids.tolist()) if self._add else set()
            self._gone = set()
            if pending_gone:  # started and stopped between two compactions
                self._add = [a for a in self._add if a[0] not in pending_gone]
        if self._add:
            ids = [a[0] for a in self._add]
            nodes = [n for a in self._add for n, _ in a[1]]
            counts = [c for a in self._add for _, c in a[1]]
            lens = [len(a[1]) for a in self._add]
            self.ids = np.concatenate((self.ids, np.array(ids, dtype=np.int64)))
            self.lender = np.concatenate((self.lender, np.array([a[2] for a in self._add],
                                                                dtype=np.int16)))
            self.node = np.concatenate((self.node, np.array(nodes, dtype=np.int32)))
            self.count = np.concatenate((self.count, np.array(counts, dtype=np.int32)))
            self.ptr = np.concatenate((self.ptr, self.ptr[-1] + np.cumsum(lens)))
            self._add = []
            if len(self.ids) > 1 and (self.ids[1:] < self.ids[:-1]).any():
                self._sort()

    def _sort(self) -> None:
        """Rows in job id order, as the live service reads its running jobs: where the
        scheduler breaks a tie by row order (preemption's victims, say), it then breaks it as
        it does live."""
        order = np.argsort(self.ids, kind="stable")
        counts = np.diff(self.ptr)[order]
        first = self.ptr[:-1][order]
        # each row's entries, gathered in the new row order
        ptr = np.concatenate(([0], np.cumsum(counts)))
        idx = np.repeat(first - ptr[:-1], counts) + np.arange(int(ptr[-1]))
        self.ids, self.lender = self.ids[order], self.lender[order]
        self.node, self.count, self.ptr = self.node[idx], self.count[idx], ptr


class Simulator:
    """One run of ``jobs`` on ``fleet`` under ``config``; call :meth:`run` once."""

    def __init__(self, jobs: SimJobs, fleet: FleetArrays, tenancy: Tenancy,
                 config: SimConfig | None = None, *,
                 progress: Callable[[float, int], None] | None = None,
                 fork: Fork | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        self.cfg = config or SimConfig()
        self.policy = resolve(self.cfg.policy)
        self.jobs = jobs
        self.tenancy = tenancy
        # a private copy of the fleet: failures change node states
        self.fleet = FleetArrays(fleet.catalog, fleet.names, fleet.type_idx, fleet.capacity,
                                 fleet.leaf, fleet.pod, fleet.state.copy(), fleet.leaf_names,
                                 fleet.pod_names)
        self.clock = VirtualClock(0.0)
        self.progress = progress
        # asked before each scheduler call; True ends the run with Cancelled (a forecast whose
        # client has gone)
        self.cancelled = cancelled
        # A run on borrowed capacity may be preempted once it has run the policy's minimum
        # (rule 8): a cycle is due then even if nothing else happens, as the live service's
        # cycles come whatever happens
        self._wake = False  # set once the policy is known to preempt (see _init_lending)
        n = len(jobs)
        self.n = n
        self.cap = fleet.capacity.astype(np.int32)
        self.free = np.where(self.fleet.state == NODE_UP, self.cap, 0).astype(np.int32)
        self.acc = jobs.accelerators
        self.state = np.full(n, ST_FUTURE, dtype=np.int8)
        self.first_start = np.full(n, -1.0)
        self.start = np.full(n, -1.0)
        # when the current run's ``remaining`` was counted from: its start, or for a run the
        # fork found going, the fork's time (its remaining time is counted from then)
        self.counted_from = np.full(n, -1.0)
        self.end = np.full(n, -1.0)
        self.remaining = jobs.runtime.copy()
        self.preemptions = np.zeros(n, dtype=np.int32)
        self.interruptions = np.zeros(n, dtype=np.int32)
        self.lost_s = np.zeros(n)
        self.charged_s = np.zeros(n)
        self.run_seq = np.zeros(n, dtype=np.int64)
        self.stopping = np.zeros(n, dtype=bool)
        self.limited = np.zeros(n, dtype=bool)  # current run ends at its time limit
        self.placement: list[tuple[tuple[int, int], ...] | None] = [None] * n
        self.running = _Running(n)
        self._neg1 = np.full(n, -1.0)
        self._grant = np.full(n, -1, dtype=np.int32)
        # the grant each job is charged to: the one it named, or for one that named none (-1
        # in jobs.grant) its project's live grant, resolved again at every cycle while it
        # waits (a requeued job too), as the live service resolves its queue
        # (aicc.allocation.live)
        self.grant_of = None if jobs.grant is None else jobs.grant.astype(np.int32).copy()
        self._ptr0 = np.zeros(n + 1, dtype=np.int64)
        self.n_running = 0
        self.pending_parts: list[np.ndarray] = []
        self.n_pending = 0
        self.n_projects = len(tenancy.project_names)
        self.proj_busy = np.zeros(self.n_projects)
        # Fair-share usage and grant use as the live service keeps them (its ledger): a run is
        # recorded when it ends or is preempted (a run lost to a node failure is not: the
        # ledger books it as lost), decayed from then on; a running job adds what it has run
        # so far, undecayed (see snapshot())
        self.usage = np.zeros(self.n_projects)  # recorded runs, decayed to last_usage_t
        self.grant_base = np.zeros(0)  # grant use before the run (a fork's, recorded runs)
        self.grant_used = np.zeros(0)  # grant use recorded during the run
        self.project_sector = tenancy.project_sector
        # nodes grouped by type, for per-type free capacity (see _may_act)
        n_t = len(fleet.catalog)
        srt = np.argsort(fleet.type_idx, kind="stable")
        bounds = np.searchsorted(fleet.type_idx[srt], np.arange(n_t))
        has = np.bincount(fleet.type_idx, minlength=n_t) > 0
        self._by_type = (srt, bounds, has)
        self._submit_sorted = bool(n == 0 or (np.diff(jobs.submit) >= 0).all())
        pol = self.policy
        # FIFO order without backfill (entitlements act only under fair share: Policy.lends),
        # nor a power cap (a job it holds would let a later, smaller one start)
        self._fifo = (pol.name == "fifo" and not pol.backfill and not pol.require_grant
                      and jobs.grant is None and (math.isinf(self.cfg.power_available_w)
                                                  or not pol.power_cap))
        # every node of a type has one size: the screen's shape check is then _shape_ok's
        cap_of = [self.cap[fleet.type_idx == t] for t in range(n_t)]
        self._queue_depth = self._fifo and all(len(c) == 0 or (c == c[0]).all() for c in cap_of)
        self._ok_key: bytes | None = None
        self._ok: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0),
                                                               np.zeros(0, dtype=bool))
        self._head = 0  # see _first_kept
        # FIFO on one type: the state generation at which the queue's head was found unable to
        # start (see _may_start); every change of free capacity or of the head advances _gen
        self._gen = 0
        self._held_gen = -1
        self.heap: list[tuple] = []
        self.seq = 0
        self.ap = 0  # next arrival
        self.n_arrive = n  # rows that arrive (a fork's running rows, last, do not)
        self.want_cycle = False
        self.cycle_pending = False
        self.last_cycle = -math.inf
        self.last_usage_t = 0.0
        self.cycles = 0
        self.skipped = 0
        self.sched_wall = 0.0
        self.cycle_wall = 0.0
        self.n_failures = 0
        self.node_failures = np.zeros(fleet.n_nodes, dtype=np.int64)
        # the random failure chain: only the event carrying the current token is live (a change
        # of the capacity in service draws the next failure anew: the process is memoryless)
        self._fail_token = 0
        self._fail_armed = False
        self.rng = np.random.default_rng(self.cfg.seed)
        self.samples: dict[str, list] = {k: [] for k in (
            "time", "busy", "capacity_up", "pending", "fragmentation", "power_w")}
        self.sector_busy: list[np.ndarray] = []
        self.sector_pending: list[np.ndarray] = []
        self.type_busy: list[np.ndarray] = []
        self.grants = Grants.empty()
        self.down_returns: np.ndarray | None = None  # (rule 9; a fork's, see Fork)
        self._init_lending()
        self._watch: np.ndarray | None = None  # see stop_when_started
        self._watch_left = 0
        self.stopped = False
        self.arrival = jobs.submit
        self.t_start: float | None = None
        if fork is not None:
            self._load_fork(fork)

    def stop_when_started(self, rows: np.ndarray) -> None:
        """End the run once every one of ``rows`` has started (at the end of the cycle that
        starts the last): the start-time forecast needs nothing later, and with future arrivals
        in the fork the run would otherwise go on to the horizon."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        self._watch = np.zeros(self.n, dtype=bool)
        self._watch[rows] = True
        self._watch_left = int((self.first_start[rows] < 0).sum())
        self.stopped = self._watch_left == 0

    # --- heap -------------------------------------------------------------------------------
    def _push(self, t: float, prio: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, prio, self.seq, a, b))

    # --- state changes ----------------------------------------------------------------------
    def _load_fork(self, fork: Fork) -> None:
        """Live state at ``fork.now``: rows ``fork.running`` already run (since ``fork.start``,
        on ``fork.placement``) with ``fork.remaining`` seconds left; all other rows are pending
        jobs, present from ``fork.now`` on (their submit times are kept for the scheduler), or
        future submissions (submit after ``fork.now``) that arrive at their submit times. Rows:
        pending ones first, then future ones by submit time, running ones last, so that the
        arrival pointer walks a sorted prefix."""
        self.t_start = fork.now
        self.clock = VirtualClock(fork.now)
        self.last_usage_t = fork.now
        if fork.usage is not None:
            self.usage = fork.usage.astype(np.float64).copy()
        if fork.grants is not None:
            self.grants = fork.grants
            self.grant_base = np.asarray(fork.grants.used_s, dtype=np.float64).copy()
            self.grant_used = np.zeros(len(self.grant_base))
        self.lend_t = fork.now
        if fork.lending_balance_s is not None and self.lends:
            self.lending = np.array(fork.lending_balance_s, dtype=np.float64)
            self._owed = bool(self.lending.any())
        self.free = np.where(self.fleet.state == NODE_UP, fork.free, 0).astype(np.int32)
        self.down_returns = fork.down_returns
        if fork.running_grant is not None and self.grant_of is not None:
            self.grant_of[fork.running] = fork.running_grant
        self._forked: list[int] = []
        for r, placement, st, rem in zip(fork.running.tolist(), fork.placement,
                                         fork.start.tolist(), fork.remaining.tolist(),
                                         strict=True):
            self.state[r] = ST_PENDING
            self.n_pending += 1
            self.remaining[r] = max(rem, 1.0)
            lender = int(fork.lender[len(self._forked)]) if fork.lender is not None else -1
            self._forked.append(r)
            self._start(Start(int(r), tuple(placement), lender=lender), fork.now, forked=True)
            self.start[r] = self.first_start[r] = st
            if self._wake and lender >= 0 and self._preemptible_at(st) > fork.now:
                self._push(self._preemptible_at(st), P_WAKE, r, int(self.run_seq[r]))
        for r, at in fork.stops:  # victims under notice stop when their grace ends (rule 8)
            if self.state[r] == ST_RUNNING:
                self.stopping[r] = True
                self._push(max(float(at), fork.now), P_STOP, int(r), int(self.run_seq[r]))
        # the live usage and grant use count the running jobs' time so far, which the
        # snapshot adds again from their starts
        acc_p, acc_g = self._accrued(fork.now)
        self.usage = np.maximum(self.usage - acc_p, 0.0)
        if len(self.grant_base):
            self.grant_base = np.maximum(self.grant_base - acc_g, 0.0)
        arrival = np.maximum(self.jobs.submit, fork.now)
        arrival[fork.running] = np.inf  # already here: never arrive again
        self.n_arrive = int(np.isfinite(arrival).sum())
        head = arrival[: self.n_arrive]
        if not np.isfinite(head).all() or (np.diff(head) < 0).any():
            raise ValueError("a fork lists its pending rows first, then future ones by submit "
                             "time, then its running rows")
        self.arrival = arrival

    def _start(self, s: Start, now: float, forked: bool = False) -> None:
        j = s.job_id
        if self.state[j] != ST_PENDING:
            raise RuntimeError(f"job {j} started while {STATE_NAMES[self.state[j]]}")
        total = 0
        free = self.free
        for node, cnt in s.placement:
            total += cnt
            if forked:  # live state: its free array already accounts for this job
                continue
            if self.fleet.state[node] != NODE_UP:
                raise RuntimeError(f"job {j} placed on node {node} which is not up")
            free[node] -= cnt
            if free[node] < 0:
                raise RuntimeError(f"node {node} over capacity after starting job {j}")
        if self._watch is not None and self._watch[j] and self.first_start[j] < 0:
            self._watch_left -= 1
            self.stopped = self._watch_left <= 0
        if total != self.acc[j] and not forked:
            raise RuntimeError(f"job {j} placed on {total} accelerators, asked {self.acc[j]}")
        if self.lends:
            self._lend_use(j, s.lender, now, 1)
        self.state[j] = ST_RUNNING
        self._gen += 1
        self.n_pending -= 1
        self.n_running += 1
        if not self._fail_armed and self.cfg.failures is not None:
            self._schedule_failure(now)  # work resumed after a quiet spell
        self.start[j] = now
        self.counted_from[j] = now
        if self.first_start[j] < 0:
            self.first_start[j] = now
        self.placement[j] = s.placement
        self.running.add(j, s.placement, s.lender)
        self.proj_busy[self.jobs.project[j]] += total
        self.run_seq[j] += 1
        if self._wake and (s.borrowed or s.lender >= 0) and not forked:
            self._push(self._preemptible_at(now), P_WAKE, j, int(self.run_seq[j]))
        rem, limit = self.remaining[j], self.jobs.time_limit[j]
        if forked:  # a live job: its remaining time already accounts for its limit
            limit = rem
        self.limited[j] = rem > limit
        self._push(now + min(rem, limit), P_END, j, int(self.run_seq[j]))

    def _release(self, j: int, now: float) -> None:
        if self.lends:
            self._lend_use(j, self.lender_of[j], now, -1)
        for node, cnt in self.placement[j] or ():
            if self.fleet.state[node] == NODE_UP:
                self.free[node] += cnt
        self.placement[j] = None
        self._gen += 1
        self.running.remove(j)
        self.proj_busy[self.jobs.project[j]] -= self.acc[j]
        self.n_running -= 1
        self.run_seq[j] += 1  # invalidates the pending end event
        self.stopping[j] = False

    def _requeue(self, j: int) -> None:
        self.state[j] = ST_PENDING
        self._gen += 1
        self._head = min(self._head, j)
        self.n_pending += 1
        self.pending_parts.append(np.array([j], dtype=np.int64))
        self.want_cycle = True

    def _interrupt(self, j: int, now: float, checkpointed: bool) -> float:
        """Stop job j's current run; returns the accelerator-seconds lost."""
        elapsed = now - self.counted_from[j]
        ck = self.cfg.failures.checkpoint_s if self.cfg.failures else None
        if checkpointed:
            saved = elapsed
        elif ck:
            saved = math.floor(elapsed / ck) * ck
        else:
            saved = 0.0
        saved = min(saved, self.remaining[j])
        lost = (elapsed - saved) * self.acc[j]
        self.remaining[j] -= saved
        self.charged_s[j] += saved * self.acc[j]
        self.lost_s[j] += lost
        self._release(j, now)
        return lost

    # --- the lending balance (rule 2) -------------------------------------------------------
    def _init_lending(self) -> None:
        """The lending balance (rule 2) is integrated piecewise, event by event. The loans
        change only when the running table or the capacity in service does: at a cycle's
        starts, and at ends, stops, failures and repairs; between two such events they are
        constant. Before each such change :meth:`_lend_settle` brings the balance to the
        event's time under the loans in force (a change within a type where no sector is above
        its entitlement, before or after, changes no loan and settles nothing). After it the
        loans are stale and are worked out again, with the scheduler's split on the
        simulator's own use per sector, only once time has passed; while no sector is above
        its entitlement they are zero. A cycle's decisions give the loans in force after its
        starts (:attr:`Decisions.loans`). Cycles play no other part: a skipped one
        (:meth:`_may_act`) changes nothing, and the snapshot settles the balance to its
        time, so every interval is counted once whatever the cycles do."""
        self.lends = self.policy.lends
        self._wake = bool(self.lends and self.policy.preemption)
        n_s, n_t = len(self.tenancy.sector_names), len(self.fleet.catalog)
        self.lending = np.zeros((n_s, n_s))  # [lender, borrower] accelerator-seconds, decayed
        self.lend_t = 0.0  # the time self.lending is at
        self._no_loans = np.zeros((n_s, n_s))
        self._no_loans.flags.writeable = False
        self.loans = self._no_loans  # in force since lend_t (unless stale); never written to
        self._loans_stale = False
        self._loans_zero = True
        self._owed = False  # some balance not yet decayed to nothing
        if not self.lends:
            return
        self.lender_of = [-1] * self.n
        self._job_sector = self.project_sector[self.jobs.project].tolist()
        self._job_type = self.jobs.type_idx.tolist()
        self._use = [[0.0] * n_t for _ in range(n_s)]  # [s][t] accelerators in use
        self._over = [0] * n_t  # per type: sectors using more than their entitlement of it
        self._named = [[[0.0] * n_t for _ in range(n_s)] for _ in range(n_s)]  # [b][l][t]
        self._lend_capacity()

    def _lend_capacity(self) -> None:
        """Entitled capacity from the nodes in service, as the scheduler computes it."""
        type_cap = fleet_static(self.fleet).type_cap
        cap, lend_cap = entitled(self.tenancy, type_cap)
        self._type_cap, self._ent, self._lend_cap = (type_cap.tolist(), cap.tolist(),
                                                     lend_cap.tolist())
        self._over = [sum(self._use[s][t] > c[t] for s, c in enumerate(self._ent))
                      for t in range(len(type_cap))]
        self._lend_dirty()

    def _lend_use(self, j: int, lender: int, now: float, sign: int) -> None:
        """Job ``j`` starts (``sign`` 1) or stops (-1) at ``now``, borrowing from ``lender``.
        While no sector is above its entitlement of the job's type, before or after, the
        type lends nothing and the loans do not change: the balance need not be settled."""
        a = float(self.acc[j]) * sign
        s, t = self._job_sector[j], self._job_type[j]
        row, c = self._use[s], self._ent[s][t]
        was, after = row[t] > c, row[t] + a
        moves = self._over[t] or after > c
        if moves:
            self._lend_settle(now)
        row[t] = after
        self._over[t] += (after > c) - was
        if lender >= 0:
            self._named[s][lender][t] += a
        self.lender_of[j] = lender if sign > 0 else -1
        if moves:
            self._lend_dirty()

    def _lend_dirty(self) -> None:
        """After a change: the loans are zero while no sector is above its entitlement (the
        split lends nothing then), else to be worked out again."""
        if any(self._over):
            self._loans_stale = True
        else:
            self._loans_stale, self._loans_zero = False, True
            self.loans = self._no_loans

    def _lend_split(self) -> np.ndarray:
        """The loans of the current running table: the scheduler's split (rule 2)."""
        return np.array(split_loans(self._named, self._use, self._ent, self._type_cap,
                                    self._lend_cap).pairs)

    def _lend_set(self, loans: np.ndarray) -> None:
        """The loans in force from now on (the balance is at now: the cycle settled it)."""
        self.loans = loans
        self._loans_stale, self._loans_zero = False, not loans.any()

    def _lend_settle(self, now: float) -> None:
        """The balance at ``now``, under the loans in force since :attr:`lend_t`."""
        dt = now - self.lend_t
        if dt <= 0:
            return
        if self._loans_stale:
            self._lend_set(self._lend_split())
        if not self._loans_zero:
            self.lending = accumulate_lending(self.lending, self.loans, dt,
                                              self.policy.usage_half_life_s)
            self._owed = True
        elif self._owed:
            self.lending *= decay_usage(1.0, dt, self.policy.usage_half_life_s)
        self.lend_t = now

    def lending_at(self, now: float) -> np.ndarray | None:
        """The lending balance at ``now`` (a copy; None while nothing was ever lent)."""
        if not self.lends:
            return None
        self._lend_settle(now)
        return self.lending.copy() if self._owed else None

    # --- events -----------------------------------------------------------------------------
    def _on_end(self, t: float, j: int, seq: int) -> None:
        if self.run_seq[j] != seq or self.state[j] != ST_RUNNING:
            return  # a stale end: the run was preempted or interrupted
        ran = t - self.start[j]
        self.charged_s[j] += ran * self.acc[j]
        self._record(j, t)
        timed_out = bool(self.limited[j])
        self.remaining[j] = max(0.0, self.remaining[j] - ran) if timed_out else 0.0
        self._release(j, t)
        self.state[j] = ST_TIMEOUT if timed_out else ST_DONE
        self.end[j] = t
        if self.n_pending:
            self.want_cycle = True

    def _preemptible_at(self, start: float) -> float:
        """The first time ``t`` at which a run started at ``start`` has run the policy's minimum
        as the scheduler tests it, ``t - start >= min_runtime_s`` in floating point (``start +
        min_runtime_s`` can round below it)."""
        t = start + self.policy.min_runtime_s
        while t - start < self.policy.min_runtime_s:
            t = math.nextafter(t, math.inf)
        return t

    def _void(self, ev: tuple) -> bool:
        """Whether a queued event no longer stands: an end or a stop of a run that was since
        preempted or interrupted (or a wake-up for it), or a random failure drawn before the
        last redraw."""
        prio = ev[1]
        if prio in (P_END, P_STOP, P_WAKE):
            j = ev[3]
            return bool(self.run_seq[j] != ev[4] or self.state[j] != ST_RUNNING)
        return prio == P_FAIL and ev[3] == 0 and not self._fail_live(ev[4])

    def _on_fail(self, t: float, node: int = -1, token: int = 0) -> None:
        fm = self.cfg.failures
        assert fm is not None
        up = np.flatnonzero(self.fleet.state == NODE_UP)
        scheduled = node >= 0
        if scheduled and self.fleet.state[node] != NODE_UP:
            return
        if not scheduled and not self._fail_live(token):
            return
        if len(up):
            if not scheduled:  # the process runs over accelerators: a node as likely as
                # its share of them (with one node size, as likely as any other node)
                size = self.cap[up]
                node = int(up[self.rng.integers(len(up))] if (size == size[0]).all() else
                           self.rng.choice(up, p=size / size.sum()))
            self.n_failures += 1
            self.node_failures[node] += 1
            if self.lends:
                self._lend_settle(t)
            self.running.compact()
            k = np.flatnonzero(self.running.node == node)
            rows = np.unique(np.searchsorted(self.running.ptr, k, side="right") - 1)
            victims = self.running.ids[rows].tolist()
            self.fleet.state[node] = NODE_DOWN
            self.free[node] = 0
            self._gen += 1
            for j in victims:
                self._interrupt(j, t, checkpointed=False)
                self.interruptions[j] += 1
                if fm.on_failure == "requeue" and self.interruptions[j] <= fm.max_requeues:
                    self._requeue(j)
                else:
                    self.state[j] = ST_FAILED
                    self.end[j] = t
            if self.lends:
                self._lend_capacity()
            self._push(t + fm.repair_s, P_REPAIR, node)
        if not scheduled or len(up):
            self._schedule_failure(t)  # at the rate of the capacity now in service

    def _schedule_failure(self, t: float) -> None:
        """Draw the next random failure from ``t`` at the rate of the capacity in service, and
        void any earlier draw. Failures are drawn while jobs run or are still to arrive; a start
        after a quiet spell (nothing running, nothing left to arrive) or a repair after every
        node went down draws again."""
        fm = self.cfg.failures
        self._fail_token += 1
        self._fail_armed = False
        if fm is None or fm.rate_per_accelerator_s <= 0 or not self._work_left():
            return
        up_acc = float(self.cap[self.fleet.state == NODE_UP].sum())
        if up_acc <= 0:
            return
        self._fail_armed = True
        self._push(t + float(self.rng.exponential(1.0 / (fm.rate_per_accelerator_s * up_acc))),
                   P_FAIL, 0, self._fail_token)

    def _fail_live(self, token: int) -> bool:
        """Whether a random failure event still stands: its draw is the current one and work
        remains (else the chain waits for the next start)."""
        if token != self._fail_token:
            return False
        if not self._work_left():
            self._fail_token += 1
            self._fail_armed = False
            return False
        return True


    def _on_repair(self, t: float, node: int) -> None:
        if self.lends:
            self._lend_settle(t)
        self.fleet.state[node] = NODE_UP
        self.free[node] = self.cap[node]
        self._gen += 1
        if self.lends:
            self._lend_capacity()
        if self.cfg.failures is not None:
            self._schedule_failure(t)  # more capacity in service: a higher rate
        if self.n_pending:
            self.want_cycle = True

    def _on_stop(self, t: float, j: int, seq: int) -> None:
        if self.run_seq[j] != seq or self.state[j] != ST_RUNNING:
            return
        self._record(j, t)
        self._interrupt(j, t, checkpointed=True)
        self.preemptions[j] += 1
        self._requeue(j)

    def n_ended(self) -> int:
        """Jobs that have ended (finished, failed or timed out): the run's progress."""
        return int(np.count_nonzero(self.state >= ST_DONE))

    def _work_left(self) -> bool:
        return self.ap < self.n_arrive or self.n_running > 0

    # --- the cycle --------------------------------------------------------------------------
    def _pending_ids(self) -> np.ndarray:
        """Pending rows in job id order, as the live service reads its queue (a requeued job
        takes its place among the others, not the end: the scheduler's ties follow rows)."""
        if len(self.pending_parts) != 1:
            ids = (np.concatenate(self.pending_parts) if self.pending_parts
                   else np.zeros(0, dtype=np.int64))
            if len(ids) > 1 and (ids[1:] < ids[:-1]).any():
                ids = np.sort(ids)
            self.pending_parts = [ids]
        ids = self.pending_parts[0]
        ids = ids[self.state[ids] == ST_PENDING]
        self.pending_parts = [ids]
        return ids

    def _table(self, ids: np.ndarray, running: bool) -> JobTable:
        J = self.jobs
        t = JobTable(
            id=ids, project=J.project[ids], type_idx=J.type_idx[ids], nodes=J.nodes[ids],
            per_node=J.per_node[ids], time_limit_s=J.time_limit[ids],
            job_class=J.job_class[ids], preemptible=J.preemptible[ids],
            submit_time=J.submit[ids],
            grant=self._grant[: len(ids)] if self.grant_of is None else self.grant_of[ids],
            start_time=self.start[ids] if running else self._neg1[: len(ids)],
            expected_runtime_s=J.expected_runtime[ids],
        )
        if running:
            t.alloc_ptr, t.alloc_node, t.alloc_count = (self.running.ptr, self.running.node,
                                                        self.running.count)
            t.lender = self.running.lender
        else:
            t.alloc_ptr = self._ptr0[: len(ids) + 1]
        return t

    def _advance_usage(self, now: float) -> None:
        dt = now - self.last_usage_t
        if dt > 0:
            self.usage = decay_usage(self.usage, dt, self.policy.usage_half_life_s)
            self.last_usage_t = now

    def _record(self, j: int, now: float) -> None:
        """Book the run of job ``j`` that ends (or is preempted) at ``now``, as the live
        service's ledger does: its accelerator-seconds into its project's usage and its
        grant's use."""
        used = (now - self.start[j]) * self.acc[j]
        self._advance_usage(now)
        self.usage[self.jobs.project[j]] += used
        g = -1 if self.grant_of is None else int(self.grant_of[j])
        if 0 <= g < len(self.grant_used):
            self.grant_used[g] += used

    def _accrued(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Accelerator-seconds the running jobs have run so far, per project and per grant."""
        self.running.compact()
        ids = self.running.ids
        ran = (now - self.start[ids]) * self.acc[ids]
        per_p = np.bincount(self.jobs.project[ids], weights=ran, minlength=self.n_projects)
        n_g = len(self.grant_base)
        if not n_g or self.grant_of is None:
            return per_p, np.zeros(n_g)
        g = self.grant_of[ids]
        ok = (g >= 0) & (g < n_g)
        return per_p, np.bincount(g[ok], weights=ran[ok], minlength=n_g)

    def _cycle(self, now: float) -> None:
        self.want_cycle = False
        self.last_cycle = now
        if self.n_pending == 0:
            return
        w0 = time.perf_counter()
        self._advance_usage(now)  # (the lending balance is settled by events: _init_lending)
        if self._held_gen == self._gen:  # FIFO's head still cannot start (see _may_start)
            self.skipped += 1
            self.cycle_wall += time.perf_counter() - w0
            return
        pend = self._pending_ids()
        if not self._may_act(pend, now):
            # schedule() would return no start and no preemption (see _may_act): the call is
            # skipped (counted)
            self.skipped += 1
            self.cycle_wall += time.perf_counter() - w0
            return
        if self.cancelled is not None and self.cancelled():
            raise Cancelled(f"the simulation was cancelled at t={now:.0f} s")
        snap = self.snapshot(now, self._fifo_queue(pend) if self._queue_depth else pend)
        w1 = time.perf_counter()
        dec = schedule(snap, self.policy)
        self.sched_wall += time.perf_counter() - w1
        self.cycles += 1
        for p in dec.preempts:
            self._preempt(p, now)
        for s in dec.starts:
            self._start(s, now)
        if self.lends and dec.loans is not None:
            self._lend_set(dec.loans)
        if dec.starts:  # keep only waiting jobs: a requeued job must never appear twice
            self.pending_parts = [pend[self.state[pend] == ST_PENDING]]
        self.cycle_wall += time.perf_counter() - w0
        if self.cfg.check_invariants:
            self.check()

    def snapshot(self, now: float | None = None, pend: np.ndarray | None = None) -> Snapshot:
        """The scheduler's view of the simulated state (job ids are row numbers)."""
        now = self.clock.now() if now is None else now
        pend = self._pending_ids() if pend is None else pend
        self._advance_usage(now)
        acc_p, acc_g = self._accrued(now)  # (compacts the running table)
        usage = self.usage + acc_p
        grants = self.grants
        if len(self.grant_base):
            grants = replace(grants, used_s=self.grant_base + self.grant_used + acc_g)
        if self.grant_of is not None:
            # A waiting job asks for the grant it named (a requeued one too, whatever it ran
            # on: a named grant no longer active holds it), else for its project's grant live
            # now; a run keeps the grant its cycle found, as the live service stores it.
            g = self.jobs.grant[pend]
            named = g >= 0
            self.grant_of[pend[named]] = g[named]
            loose = pend[~named]
            if len(loose) and len(grants.total_s):
                self.grant_of[loose] = live_grants(self.jobs.project[loose],
                                                   self.jobs.type_idx[loose], grants, now)
        return Snapshot(
            now=now, fleet=self.fleet, free=self.free.astype(np.int16),
            running=self._table(self.running.ids, True), pending=self._table(pend, False),
            tenancy=self.tenancy, grants=grants, usage_decayed_s=usage,
            power_available_w=self.cfg.power_available_w,
            lending_balance_s=self.lending_at(now), down_returns=self.down_returns,
        )

    def _may_act(self, pend: np.ndarray, now: float) -> bool:
        """False only when schedule() provably decides nothing for these pending rows.

        A start needs a job whose shape fits the free capacity now (rule 6): a one-node job a
        node of its type in service with as many free accelerators, a gang as many wholly free
        nodes of its type. Without backfill and under FIFO order (rule 10) a type's first job
        in submit order that cannot start blocks the type, so only those heads count. A
        preemption (rule 8) needs a running job on capacity lent by a sector (the lender
        column) that ran at least the policy's minimum runtime and a pending job within its
        sector's entitlement (see :meth:`_may_preempt`)."""
        if not len(pend):
            return False
        pol = self.policy
        up = self.fleet.state == NODE_UP
        # the start test first: it is the cheaper one, and usually true where preemption is on
        return self._may_start(pend, up) or bool(
            pol.preemption and pol.lends and self._may_preempt(pend, now, up))

    def _may_start(self, pend: np.ndarray, up: np.ndarray) -> bool:
        """Necessary for a start (rules 6 and 10): see :meth:`_may_act`."""
        J = self.jobs
        free = np.where(up, self.free, 0)
        srt, bounds, has = self._by_type
        n_t = len(has)
        maxfree = np.zeros(n_t, dtype=np.int64)
        maxfree[has] = np.maximum.reduceat(free[srt], bounds[has])
        whole = np.bincount(self.fleet.type_idx[up & (free == self.cap)], minlength=n_t)
        if self._fifo:
            # the head of each type: earliest submit among jobs the screen keeps (rule 6 shape)
            maxcap, n_up, okj = self._shape_ok(up)
            if self._submit_sorted:  # rows in submit order: the head is the first row kept
                head = self._first_kept(okj)
                if head < 0:
                    return False
                s0 = J.submit[head] if has.sum() == 1 else None
                if s0 is not None:
                    lo = int(np.searchsorted(J.submit, s0, side="left"))
                    hi = int(np.searchsorted(J.submit, s0, side="right"))
                    rows = np.arange(lo, hi)
                    pend = rows[(self.state[rows] == ST_PENDING) & okj[rows]]
                    t = J.type_idx[pend].astype(np.int64)
                    fits = np.where(J.nodes[pend] == 1, J.per_node[pend] <= maxfree[t],
                                    J.nodes[pend] <= whole[t])
                    if fits.any():
                        return True
                    # until free capacity or the head changes, arrivals (all later in submit
                    # order) leave the head where it is: their cycles start nothing either
                    self._held_gen = self._gen
                    return False
            t = J.type_idx[pend]
            n, k = J.nodes[pend], J.per_node[pend]
            ok = (n >= 1) & (k >= 1) & (k <= maxcap[t]) & (n <= n_up[t])
            sub = np.where(ok, J.submit[pend], np.inf)
            if has.sum() == 1:
                heads = np.flatnonzero(sub == sub.min())
            else:
                first = np.full(n_t, np.inf)
                np.minimum.at(first, t, sub)
                heads = np.flatnonzero(ok & (sub == first[t]))
            pend = pend[heads]
        t = J.type_idx[pend].astype(np.int64)
        n, k = J.nodes[pend], J.per_node[pend]
        fits = np.where(n == 1, k <= maxfree[t], n <= whole[t])
        return bool(fits.any())

    def _fifo_queue(self, pend: np.ndarray) -> np.ndarray:
        """The part of the FIFO queue that decides the cycle: per type, as many of the first rows
        the screen keeps as the type has free accelerators, in queue order (``pend`` itself
        when that order is not the key's).

        Without backfill, entitlements or grants (rule 10) a type's starts are its rows before
        its first row that cannot start, and each takes at least one free accelerator of the
        type: all of them lie among the type's first ``free`` kept rows, and later rows change
        nothing. The decisions are those of the whole queue (Slurm's ``default_queue_depth``
        bounds its main scheduler likewise, without that guarantee).
        """
        if not (self._submit_sorted and len(pend) > 1):
            return pend  # (rows in id order are then in submit order, the key's)
        up = self.fleet.state == NODE_UP
        okj = self._shape_ok(up)[2]
        head = self._first_kept(okj)
        if head < 0:
            return pend[:0]
        n_t = len(self.fleet.catalog)
        need = np.bincount(self.fleet.type_idx[up], weights=self.free[up],
                           minlength=n_t).astype(np.int64)
        i = int(np.searchsorted(pend, head))  # rows before the head are all held
        size = int(need.sum()) * 2 + 64
        want = np.flatnonzero(need > 0).tolist()
        while True:
            seg = pend[i:i + size]
            ok = okj[seg]
            done = i + size >= len(pend)
            if n_t == 1:
                idx = np.flatnonzero(ok)
                if done or len(idx) >= need[0]:
                    return seg[idx[:need[0]]]
            else:
                t = self.jobs.type_idx[seg]
                keep = np.zeros(len(seg), dtype=bool)
                short = False
                for ty in want:
                    mine = ok & (t == ty)
                    rank = np.cumsum(mine)
                    keep |= mine & (rank <= need[ty])
                    short |= len(rank) == 0 or rank[-1] < need[ty]
                if done or not short:
                    return seg[keep]
            size *= 4

    def _shape_ok(self, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Largest node and node count in service per type, and per job whether its shape fits
        them (the screen's rule 6 check). Rebuilt only when the nodes in service change."""
        key = up.tobytes()
        if self._ok_key != key:
            J = self.jobs
            n_t = len(self.fleet.catalog)
            ti = self.fleet.type_idx[up]
            n_up = np.bincount(ti, minlength=n_t)
            maxcap = np.zeros(n_t, dtype=np.int64)
            np.maximum.at(maxcap, ti, self.cap[up])
            t = J.type_idx
            ok = ((J.nodes >= 1) & (J.per_node >= 1) & (J.per_node <= maxcap[t])
                  & (J.nodes <= n_up[t]))
            self._ok = (maxcap, n_up, ok)
            self._ok_key = key
            self._head = 0  # jobs passed over may fit now
        return self._ok

    def _first_kept(self, ok: np.ndarray) -> int:
        """The lowest pending row whose shape fits (``ok``), or -1. A pointer moves past rows
        that are not such; it moves back for a requeued row (:meth:`_requeue`) and to 0 when
        the nodes in service change (:meth:`_shape_ok`). Rows not yet arrived are never
        pending, except a fork's running rows, last, once requeued."""
        st, h, end, step = self.state, self._head, self.ap, 64
        while h < end:
            hi = min(end, h + step)
            seg = (st[h:hi] == ST_PENDING) & ok[h:hi]
            i = int(seg.argmax())
            if seg[i]:
                self._head = h + i
                return h + i
            h, step = hi, step * 2
        self._head = h
        if self.n_arrive < self.n:  # a fork's running rows, requeued
            tail = np.flatnonzero((st[self.n_arrive:] == ST_PENDING) & ok[self.n_arrive:])
            if len(tail):
                return self.n_arrive + int(tail[0])
        return -1

    def _may_preempt(self, pend: np.ndarray, now: float, up: np.ndarray) -> bool:
        """Necessary for rule 8: a running job on lent capacity past the minimum runtime, and
        a pending job within its sector's entitlement at cycle start (tier A, rule 1)."""
        self.running.compact()
        ids = self.running.ids
        lent = self.running.lender >= 0
        if not (lent.any()
                and ((now - self.start[ids[lent]]) >= self.policy.min_runtime_s).any()):
            return False
        J, ten = self.jobs, self.tenancy
        n_t = len(self.fleet.catalog)
        type_cap = np.bincount(self.fleet.type_idx[up], weights=self.cap[up], minlength=n_t)
        cap = np.asarray(ten.entitlement, dtype=np.float64) * type_cap[None, :]
        n_s = cap.shape[0]
        key = self.project_sector[J.project[ids]].astype(np.int64) * n_t + J.type_idx[ids]
        used = np.bincount(key, weights=self.acc[ids].astype(np.float64),
                           minlength=n_s * n_t).reshape(n_s, n_t)
        room = cap - used
        sec = self.project_sector[J.project[pend]]
        return bool((self.acc[pend] <= room[sec, J.type_idx[pend]] + 1e-6).any())

    def _preempt(self, p: Preempt, now: float) -> None:
        j = p.job_id
        if self.state[j] != ST_RUNNING or self.stopping[j]:
            return
        self.stopping[j] = True
        self._push(now + max(0.0, p.grace_s), P_STOP, j, int(self.run_seq[j]))

    def check(self) -> None:
        """Conservation: free + allocated = capacity on every node in service."""
        self.running.compact()
        used = np.zeros(len(self.cap), dtype=np.int64)
        np.add.at(used, self.running.node, self.running.count)
        up = self.fleet.state == NODE_UP
        if (self.free < 0).any():
            raise AssertionError("negative free accelerators")
        if not np.array_equal((self.free + used)[up], self.cap[up]):
            raise AssertionError("free + allocated != capacity on a node in service")
        if used[~up].any():
            raise AssertionError("allocation on a node out of service")
        if self.lends and not self._loans_stale and not np.allclose(
                self.loans, self._lend_split(), rtol=1e-9, atol=1e-9):
            raise AssertionError("the loans in force differ from the running table's")

    # --- sampling ---------------------------------------------------------------------------
    def _sample(self, t: float) -> None:
        up = self.fleet.state == NODE_UP
        cap_up = int(self.cap[up].sum())
        free_up = self.free[up]
        busy = cap_up - int(free_up.sum())
        part = (free_up > 0) & (free_up < self.cap[up])
        tot_free = int(free_up.sum())
        s = self.samples
        s["time"].append(t)
        s["busy"].append(busy)
        s["capacity_up"].append(cap_up)
        s["pending"].append(self.n_pending)
        s["fragmentation"].append(float(free_up[part].sum()) / tot_free if tot_free else 0.0)
        n_sec = len(self.tenancy.sector_names)
        n_t = len(self.fleet.catalog)
        J = self.jobs
        self.sector_busy.append(np.bincount(self.project_sector, weights=self.proj_busy,
                                            minlength=n_sec))
        # also per sector and type (bins s·n_t + t), for the fair share of each type
        if self.n_pending:
            pend = self._pending_ids()
            sec = self.project_sector[J.project[pend]]
            self.sector_pending.append(np.bincount(sec, weights=self.acc[pend],
                                                   minlength=n_sec))
            st_pend = np.bincount(sec.astype(np.int64) * n_t + J.type_idx[pend],
                                  weights=self.acc[pend], minlength=n_sec * n_t)
        else:
            self.sector_pending.append(np.zeros(n_sec))
            st_pend = np.zeros(n_sec * n_t)
        self.running.compact()
        ids = self.running.ids
        self.type_busy.append(np.bincount(J.type_idx[ids], weights=self.acc[ids],
                                          minlength=n_t))
        # the accelerators' draw as the scheduler reckons it (rule 9): busy at TDP, idle at
        # idle power, on every node not down
        st = fleet_static(self.fleet)
        node_busy = np.minimum(np.bincount(self.running.node, weights=self.running.count,
                                           minlength=len(self.cap)), st.cap64)
        s["power_w"].append(float((node_busy * st.tdp_node
                                   + (st.cap64 - node_busy) * st.idle_node)[st.live].sum()))
        key = self.project_sector[J.project[ids]].astype(np.int64) * n_t + J.type_idx[ids]
        s.setdefault("sector_type_busy", []).append(
            np.bincount(key, weights=self.acc[ids], minlength=n_sec * n_t).reshape(n_sec, n_t))
        s.setdefault("sector_type_pending", []).append(st_pend.reshape(n_sec, n_t))
        s.setdefault("type_capacity_up", []).append(
            np.bincount(self.fleet.type_idx[up], weights=self.cap[up], minlength=n_t))

    # --- main loop --------------------------------------------------------------------------
    def run(self) -> SimResult:
        w0 = time.perf_counter()
        J = self.jobs
        submit = self.arrival
        n = self.n
        until = self.cfg.until_s
        sample_s = self.cfg.sample_s
        if sample_s is None:
            span = float(submit[-1] - submit[0]) if n else 3600.0
            sample_s = max(60.0, span / 2000.0)
        t0 = float(submit[0]) if n else 0.0
        if self.t_start is not None:  # a fork starts at the live state's time
            t0 = self.t_start
            sample_s = self.cfg.sample_s or 3600.0
        until = min(until, t0 + self.cfg.span_s)
        self._push(t0, P_SAMPLE)
        self._schedule_failure(t0)
        if self.cfg.failures is not None:
            for ft, node in self.cfg.failures.scheduled:
                self._push(float(ft), P_FAIL, int(node) + 1)
        if self.grant_of is not None:
            # a grant that begins or ends changes what the jobs submitted without one are
            # charged to, and whether a job held for its grant may start: a cycle then, as the
            # live loop's next one
            g = self.grants
            for at in np.unique(np.concatenate((g.start, g.end))):
                if t0 < at <= until:
                    self._push(float(at), P_GRANT)
        if self.n_pending:
            self.want_cycle = True
            self._push(t0, P_CYCLE)
            self.cycle_pending = True
        heap = self.heap
        pop = heapq.heappop
        next_progress = 0.0
        t = t0
        while True:
            t_arr = submit[self.ap] if self.ap < self.n_arrive else math.inf
            while heap and self._void(heap[0]):
                pop(heap)  # a void event must not move the clock (nor end the run's time)
            t_evt = heap[0][0] if heap else math.inf
            t = t_arr if t_arr < t_evt else t_evt
            if t == math.inf or t > until or self.stopped:
                break
            self.clock.advance_to(t)
            while heap and heap[0][0] <= t and heap[0][1] < P_ARRIVAL:
                _, prio, _, a, b = pop(heap)
                if prio == P_END:
                    self._on_end(t, a, b)
                elif prio == P_REPAIR:
                    self._on_repair(t, a)
                elif prio == P_FAIL:
                    self._on_fail(t, a - 1, b)
                elif prio == P_GRANT:
                    self.want_cycle = self.want_cycle or self.n_pending > 0
                elif self.n_pending and self.run_seq[a] == b:  # P_WAKE: a borrowed run may
                    self.want_cycle = True  # now be preempted (if it still runs)
            if t_arr <= t:
                hi = int(np.searchsorted(submit, t, side="right"))
                ids = np.arange(self.ap, hi, dtype=np.int64)
                self.state[self.ap:hi] = ST_PENDING
                self.pending_parts.append(ids)
                self.n_pending += hi - self.ap
                self.ap = hi
                self.want_cycle = True
            # a cycle due now runs before the samples of this instant
            if self.want_cycle and not self.cycle_pending:
                if t >= self.last_cycle + self.cfg.min_cycle_s:
                    self._cycle(t)
                else:
                    self._push(self.last_cycle + self.cfg.min_cycle_s, P_CYCLE)
                    self.cycle_pending = True
            # then the preempted jobs whose grace ends now stop (after the cycle, as the live
            # service stops a victim after its cycle's decisions: the capacity goes to the
            # next cycle), and the samples are taken
            while heap and heap[0][0] <= t and heap[0][1] > P_ARRIVAL:
                _, prio, _, a, b = pop(heap)
                if prio == P_CYCLE:
                    self.cycle_pending = False
                    if self.want_cycle:
                        self._cycle(t)
                elif prio == P_STOP:
                    self._on_stop(t, a, b)
                    if self.want_cycle and not self.cycle_pending:
                        # (live, a stop ends a cycle: the next one sees it)
                        self._push(t + self.cfg.min_cycle_s, P_CYCLE)
                        self.cycle_pending = True
                elif prio == P_SAMPLE:
                    self._sample(t)
                    # pending jobs keep the series going while a cycle is due or events
                    # remain (the fleet may be empty for an instant between an end and a start)
                    if self._work_left() or (self.n_pending and (heap or self.want_cycle)):
                        self._push(t + sample_s, P_SAMPLE)
            if self.progress is not None and t >= next_progress:
                self.progress(t, self.n_ended())
                next_progress = t + 86400.0
        # the run's end: its last event, or the time it was stopped at (``until_s``)
        cut = self.stopped or t != math.inf
        end_time = (float(self.clock.now()) if t == math.inf or self.stopped
                    else max(min(t, until), float(self.clock.now())))
        if self.progress is not None:
            self.progress(end_time, self.n_ended())
        lending = self.lending_at(end_time) if self.lends else None
        if not self.samples["time"] or self.samples["time"][-1] < end_time:
            # (a grid sample at the end instant already shows its state: samples come last
            # at an instant, and one instant is sampled once)
            self._sample(end_time)
        # work of the runs still going at the end, not yet charged (a stopped run)
        self.running.compact()
        going = self.running.ids
        in_progress = np.zeros(n)
        in_progress[going] = (end_time - self.start[going]) * self.acc[going]
        # per sample: time, fleet totals; sector_busy and sector_pending [sample, sector];
        # type_busy and type_capacity_up [sample, type]; sector_type_busy and
        # sector_type_pending [sample, sector, type]
        series = {k: np.asarray(v) for k, v in self.samples.items()}
        series["sector_busy"] = np.array(self.sector_busy)
        series["sector_pending"] = np.array(self.sector_pending)
        series["type_busy"] = np.array(self.type_busy)
        return SimResult(
            jobs=J, fleet=self.fleet, tenancy=self.tenancy, policy=self.policy.name,
            state=self.state, first_start=self.first_start, end=self.end,
            preemptions=self.preemptions, interruptions=self.interruptions,
            lost_s=self.lost_s, charged_s=self.charged_s, series=series,
            end_time=end_time, cycles=self.cycles, in_progress_s=in_progress,
            node_failures=self.node_failures,
            wall_s=time.perf_counter() - w0, failures=self.n_failures,
            cycle_wall_s=self.cycle_wall, config=self.cfg, cycles_skipped=self.skipped,
            schedule_wall_s=self.sched_wall,
            lending_balance_s=(np.zeros((len(self.tenancy.sector_names),) * 2)
                               if self.lends and lending is None else lending),
            cut=cut,
        )


def simulate(jobs: SimJobs, fleet: FleetArrays, tenancy: Tenancy,
             config: SimConfig | None = None, **kw) -> SimResult:
    """Run one simulation (see :class:`Simulator`)."""
    return Simulator(jobs, fleet, tenancy, config, **kw).run()
