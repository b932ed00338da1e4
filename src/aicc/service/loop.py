"""The control-plane loop: store → snapshot → scheduler → engine → events → store and ledger.

One cycle (:meth:`ControlPlane.run_cycle`):

1. feed: callers' feeders run in their own transaction (the demo workload submits jobs here);
   grants whose period has ended are marked ``expired``;
2. poll the engine and apply its events in one transaction: job states, node states, the
   engine's start of each attempt, and a ledger entry for every attempt that ended (usage
   charged to the job's grant; time lost to a node failure recorded, never charged);
3. build a snapshot from the store (:mod:`aicc.service.snapshot`); keep the engine honest: a
   job the engine runs that the snapshot does not call running (the API cancelled it) is
   stopped, before this cycle starts anything on its nodes; call the pure scheduler;
4. record the decisions durably — a started job is ``running`` with its placement and start time
   *before* the engine hears of it, so a crash cannot lose it; the loans in force after the
   starts, when they changed, in the same transaction — then tell the engine, and stop the
   victims whose preemption grace has ended.

Start times: the decision stamps ``started_at`` (and the ``running`` audit row, which keeps it);
the engine's ``started`` event for the attempt in progress then moves ``started_at`` to the
engine's own start — Slurm launches a released job a second or two after the decision — never
earlier than the decision by the engine's time resolution or more (Slurm's whole seconds), and
a repeated event changes nothing. Ledger entries charge from
``started_at``, so they agree with the engine's accounting (``sacct``).

Restart safety: :meth:`ControlPlane.reconcile` runs before the first cycle. A job the store calls
running that the engine does not know is re-established when the engine can (the twin's
``adopt``: it keeps running to its original end) and requeued otherwise; a job the engine runs
that the store does not call running is cancelled; a job both run takes the engine's start
time by the same rule as a ``started`` event (one missed in the crash). Ledger event ids are
deterministic and written with insert-or-ignore, so replaying events after a crash never charges
twice. The scheduling state of a running attempt — the sector it borrows from, a preemption
notice's deadline — is written with the start or the notice and read back with every snapshot,
so a restarted control plane keeps lenders and original deadlines. So is the lending balance
between sectors (scheduler rule 2): the loans in force after a cycle's starts are written with
those starts, with the balance at that time, whenever they differ from the stored ones, and every
snapshot reads the balance back, brought to its time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import String, bindparam, cast, select, update
from sqlalchemy.orm import Session, sessionmaker

from aicc.allocation.grants import expire_ended
from aicc.clock import Clock
from aicc.config import Settings
from aicc.energy.power import fleet_power_w
from aicc.engines.base import Engine, EventKind, JobEvent, LaunchSpec, StartOrder
from aicc.errors import EngineError
from aicc.ledger.usage import LOST, USAGE, TypeFacts, insert_ignore, job_entry
from aicc.scheduler import HoldReason, Policy, schedule
from aicc.scheduler.policy import resolve
from aicc.scheduler.snapshot import Preempt, hold_message
from aicc.service.batch import Batch, JobRow, load_rows
from aicc.service.snapshot import SnapshotBuilder, StoreSnapshot, dt, ts, write_lending
from aicc.store.db import transaction
from aicc.store.models import (
    AcceleratorTypeRow,
    Job,
    JobState,
    LedgerEntry,
    Node,
    NodeState,
    Project,
)
from aicc.web.metrics import record_cycle
from aicc.workload.jobs import iso_time

log = logging.getLogger("aicc.service")
# failed writes of the same engine events before they are applied one by one
EVENT_RETRIES = 3

Feeder = Callable[[Session, float], object]


@dataclass
class CycleStats:
    """What the last cycle saw and did: read by /metrics, the portal and /v1/usage."""

    cycles: int = 0
    at: float = 0.0  # clock time of the last cycle
    duration_s: float = 0.0  # wall seconds the last cycle took
    schedule_s: float = 0.0  # wall seconds inside the scheduler
    pending: int = 0
    running: int = 0
    started: int = 0  # in the last cycle
    preempted: int = 0
    events: int = 0
    capacity_by_type: dict[str, int] = field(default_factory=dict)
    busy_by_type: dict[str, int] = field(default_factory=dict)
    busy_by_sector: dict[str, int] = field(default_factory=dict)
    pending_by_type: dict[str, int] = field(default_factory=dict)
    hold_reasons: dict[str, int] = field(default_factory=dict)
    nodes_down: int = 0
    power_w: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)  # events applied since start, by kind
    last_error: str = ""


def configured_policy(settings: Settings, policy: Policy | str | None = None) -> Policy:
    """The policy the live service runs: ``policy`` (else ``[scheduler] policy``); a named
    policy follows the configuration's ``require_grant`` and ``sector_queueing``, a Policy
    object is taken as given."""
    pol = resolve(policy if policy is not None else settings.scheduler.policy)
    sc = settings.scheduler
    if isinstance(policy, Policy):
        return pol
    return pol.model_copy(update={"require_grant": sc.require_grant,
                                  "sector_queueing": sc.sector_queueing})


class ControlPlane:
    """Runs cycles (on demand, or every ``cycle_interval_s`` wall seconds in a thread)."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session],
                 engine: Engine, clock: Clock, policy: Policy | str | None = None, *,
                 grid_intensity: float | None = None,
                 requeue_on_node_failure: bool = True,
                 feeders: Sequence[Feeder] = (), reason_interval_s: float = 30.0) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.engine = engine
        self.clock = clock
        self.policy = configured_policy(settings, policy)
        self.grid_intensity = (settings.energy.grid_intensity_kg_per_kwh
                               if grid_intensity is None else grid_intensity)
        self.requeue_on_node_failure = requeue_on_node_failure
        self.feeders: list[Feeder] = list(feeders)
        self.builder = SnapshotBuilder(half_life_s=self.policy.usage_half_life_s)
        self.builder.power_available_w = settings.energy.it_power_w
        self._facts: dict[str, TypeFacts] = {}
        # pending job ids (sorted) and the hold reason last written for each
        self._reasons: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0, np.int8))
        self._project_names: dict[int, str] = {}
        self._reasons_at = -float("inf")
        self._cycle_error = ""
        self._stopping: set[int] = set()  # victims this process told the engine to stop
        # engine events taken from the engine but not yet stored: an engine reports an event
        # once, so a failed write keeps them for the next cycle (applying them is idempotent)
        self._unapplied: list[JobEvent] = []
        self._event_failures = 0  # failed writes of _unapplied in a row
        self.reason_interval_s = reason_interval_s
        self._reconciled = False
        self._cycle_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._stats = CycleStats()
        self._totals: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- read-only accessors (thread-safe) ----------------------------------------------------

    def stats(self) -> CycleStats:
        """A copy of what the last cycle saw."""
        with self._stats_lock:
            s = self._stats
            return CycleStats(**{**s.__dict__, "totals": dict(s.totals)})

    def now(self) -> float:
        return self.clock.now()

    @property
    def running_thread(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the background thread ----------------------------------------------------------------

    def start(self, interval_s: float | None = None) -> None:
        """Run cycles every ``interval_s`` wall seconds (default scheduler.cycle_interval_s)."""
        if self.running_thread:
            return
        interval = interval_s or self.settings.scheduler.cycle_interval_s
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,),
                                        name="aicc-control-plane", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.run_cycle()
            except Exception as exc:  # keep the center running; the next cycle retries
                log.exception("control-plane cycle failed")
                with self._stats_lock:
                    self._stats.last_error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(max(0.0, interval - (time.monotonic() - t0)))

    # --- one cycle ----------------------------------------------------------------------------

    def run_cycle(self) -> CycleStats:
        with self._cycle_lock:
            t0 = time.perf_counter()
            now = self.clock.now()
            self._cycle_error = ""
            if not self._reconciled:
                self.reconcile(now)
            for feed in self.feeders:
                try:
                    with transaction(self.session_factory) as session:
                        feed(session, now)
                except Exception as exc:  # a feeder's failure must not stop scheduling
                    log.exception("feeder %r failed", feed)
                    self._cycle_error = f"feeder: {type(exc).__name__}: {exc}"
            with transaction(self.session_factory) as session:
                expired = expire_ended(session, dt(now))
            if expired:
                log.info("grants %s expired (their period ended)", expired)
            events = self._store_events([*self._unapplied, *self.engine.poll(now)])
            for ev in events:
                self._totals[ev.kind.value] = self._totals.get(ev.kind.value, 0) + 1
            with self.session_factory() as session:
                built = self.builder.build(session, now)
            # the snapshot counts a job cancelled through the API as gone: the engine stops it
            # before this cycle starts jobs on its nodes, and the starts come after the stop
            start_at = self._stop_strays(now, built)
            t1 = time.perf_counter()
            decisions = schedule(built.snapshot, self.policy)
            t2 = time.perf_counter()
            orders = self._record_starts(built, decisions.starts, start_at, decisions.loans)
            self._record_reasons(built, decisions.reason)
            if orders:
                self._start(orders, start_at)
            stopped = self.apply_preemptions(built, decisions.preempts, now)
            stats = self._update_stats(built, orders, stopped, events,
                                       decisions.reason, now, time.perf_counter() - t0, t2 - t1)
            record_cycle(stats.duration_s, started=stats.started, preempted=stats.preempted)
            return stats

    # --- events -> store and ledger -----------------------------------------------------------

    def _type_facts(self, session: Session) -> dict[str, TypeFacts]:
        if not self._facts:
            for name, tdp, weight in session.execute(
                    select(AcceleratorTypeRow.name, AcceleratorTypeRow.tdp_w,
                           AcceleratorTypeRow.price_weight)).all():
                self._facts[name] = TypeFacts(tdp_w=tdp, price_weight=weight)
        return self._facts

    def _entry(self, session: Session, job: JobRow, kind: str, end: float) -> dict | None:
        if job.started_at is None or job.attempts < 1:
            return None
        facts = self._type_facts(session).get(job.accelerator_type, TypeFacts(0.0, 1.0))
        start = job.started_at
        return job_entry(job_id=job.id, attempt=job.attempts, kind=kind,
                         project_id=job.project_id, grant_id=job.grant_id,
                         accelerator_type=job.accelerator_type,
                         accelerators=job.accelerators, start=start,
                         end=max(start, dt(end)), facts=facts,
                         grid_intensity=self.grid_intensity)

    def _project_name(self, session: Session, project_id: int) -> str:
        if project_id not in self._project_names:
            self._project_names = dict(session.execute(select(Project.id, Project.name)).all())
        return self._project_names.get(project_id, "")

    def _launch(self, session: Session, job: JobRow) -> LaunchSpec:
        return LaunchSpec(job_id=job.id, project=self._project_name(session, job.project_id),
                          accelerator_type=job.accelerator_type, nodes=job.nodes,
                          per_node=job.per_node, time_limit_s=job.time_limit_s,
                          preemptible=job.preemptible, runtime_s=self._runtime_left(session, job),
                          script=job.script)

    @staticmethod
    def _runtime_left(session: Session, job: JobRow) -> float | None:
        """The work a job's next run still has to do (``runtime_s``, for engines that model
        it): a preempted run checkpointed in its grace period (rule 8), so what it ran is
        done; a run lost to a node failure is not (booked as lost), so it starts again. The
        runs are read from the ledger, so a restart of the service forgets nothing."""
        if job.runtime_s is None or job.attempts <= 1:  # (the run being launched is counted)
            return job.runtime_s
        runs = session.execute(select(LedgerEntry.period_start, LedgerEntry.period_end).where(
            LedgerEntry.job_id == job.id, LedgerEntry.kind == USAGE)).all()
        done = sum(max(0.0, ts(b) - ts(a)) for a, b in runs)
        # (a run that did it all is still a run: an engine needs a positive runtime)
        return max(job.runtime_s - done, 1.0) if done else job.runtime_s

    def _store_events(self, events: list[JobEvent]) -> list[JobEvent]:
        """Apply ``events`` in one transaction; returns those stored. A failed write keeps them
        for the next cycle (an engine reports each event once). After ``EVENT_RETRIES`` failures
        in a row each is applied on its own, and one that still fails while the store answers is
        logged and dropped, so that one bad event cannot hold back the others or stop scheduling;
        while the store does not answer at all, every event is kept."""
        self._unapplied = events
        if not events:
            return events
        if self._event_failures < EVENT_RETRIES:
            try:
                with transaction(self.session_factory) as session:
                    self.apply_events(session, events)
            except Exception:
                self._event_failures += 1
                raise
        else:
            stored = []
            for ev in events:
                try:
                    with transaction(self.session_factory) as session:
                        self.apply_events(session, [ev])
                    stored.append(ev)
                except Exception as exc:
                    if not stored and not self._store_answers():
                        raise  # an outage, not a bad event: keep them all for the next cycle
                    log.exception("engine event dropped after %d failed writes: %s",
                                  EVENT_RETRIES, ev)
                    self._cycle_error = f"event dropped: {type(exc).__name__}: {exc}"[:512]
            events = stored
        self._unapplied = []
        self._event_failures = 0
        return events

    def _store_answers(self) -> bool:
        """Whether the store takes a write at all (a failed event write is then the event's)."""
        try:
            with transaction(self.session_factory) as session:
                session.execute(update(Job).where(Job.id == -1).values(reason=""))
        except Exception:
            return False
        return True

    def apply_events(self, session: Session, events: Sequence[JobEvent]) -> None:
        """Apply engine events to the store (the caller's transaction). Idempotent: an event
        replayed after a crash finds the job already moved on and the ledger row present."""
        jobs = load_rows(session, (e.job_id for e in events if e.job_id is not None))
        batch = Batch()
        ledger: list[dict] = []
        moved: dict[int, JobRow] = {}
        for ev in sorted(events, key=lambda e: e.time):
            if ev.kind in (EventKind.NODE_DOWN, EventKind.NODE_UP):
                self._apply_node(session, ev)
                continue
            job = jobs.get(ev.job_id) if ev.job_id is not None else None
            if job is None:
                continue
            if ev.kind == EventKind.STARTED:
                if engine_start(job, ev.time, self.engine.time_resolution_s):
                    moved[job.id] = job
                continue
            at = dt(ev.time)
            running = job.state == JobState.RUNNING
            if ev.kind == EventKind.FAILED and ev.extra.get("phase") == "launch":
                if running:
                    batch.move(job, JobState.PENDING, at, f"requeued: {ev.reason}")
                elif job.state == JobState.CANCELLED and job.started_at is not None:
                    # cancelled before the engine said it could not start it: the attempt
                    # ran for nothing, and says so (reconcile() charges a cancelled attempt
                    # that has no entry)
                    entry = self._entry(session, job, USAGE, ts(job.started_at))
                    if entry:
                        ledger.append(entry)
                continue
            if ev.kind == EventKind.FAILED and ev.extra.get("phase") == "node_failure":
                entry = self._entry(session, job, LOST, ev.time)
                if entry:
                    ledger.append(entry)
                if running:
                    if self.requeue_on_node_failure:
                        batch.move(job, JobState.PENDING, at, f"requeued after {ev.reason}")
                    else:
                        batch.move(job, JobState.FAILED, at, ev.reason)
                continue
            # finished, failed (its own fault), preempted, cancelled: charge what it used; one
            # cancelled through the API is charged up to its cancel (``ended_at``, as
            # reconcile() charges it after a restart), not up to the engine's stop a cycle
            # later, and never past what the engine ran (Slurm's whole seconds)
            if running or (job.state == JobState.CANCELLED and job.started_at is not None):
                end = ev.time if running or job.ended_at is None else min(
                    ev.time, ts(job.ended_at))
                entry = self._entry(session, job, USAGE, end)
                if entry:
                    ledger.append(entry)
            if not running:
                continue
            if ev.kind == EventKind.FINISHED:
                batch.move(job, JobState.FINISHED, at, "finished")
            elif ev.kind == EventKind.FAILED:
                batch.move(job, JobState.FAILED, at, ev.reason or "failed")
            elif ev.kind == EventKind.PREEMPTED:
                batch.move(job, JobState.PREEMPTED, at, ev.reason or "preempted")
                batch.move(job, JobState.PENDING, at, "requeued after preemption")
            elif ev.kind == EventKind.CANCELLED:
                batch.move(job, JobState.CANCELLED, at, ev.reason or "cancelled by the engine")
        write_starts(session, moved.values())  # before the moves: its guard is `running`
        batch.write(session)
        insert_ignore(session, ledger)

    def _apply_node(self, session: Session, ev: JobEvent) -> None:
        """The engine's word on a node's health. It never touches an operator's drain
        (``nodes.drained``): a drained node that goes down and comes back stays drained."""
        node = session.scalar(select(Node).where(Node.name == ev.node))
        if node is None:
            return
        if ev.kind == EventKind.NODE_DOWN:
            node.state, node.state_reason = NodeState.DOWN, ev.reason[:256]
            node.repair_at = repair_time(ev)
        elif node.state != NodeState.UP:
            node.state, node.state_reason = NodeState.UP, ev.reason[:256]
            node.repair_at = None
        else:
            return  # up already
        node.updated_at = dt(ev.time)

    # --- decisions -> store, then engine ------------------------------------------------------

    def _record_starts(self, built: StoreSnapshot, starts: Sequence, now: float,
                       loans: np.ndarray | None = None) -> list[StartOrder]:
        """Record the cycle's starts and, when they changed, the loans in force after them
        with the lending balance at ``now`` (rule 2), in one transaction."""
        lend = loans is not None and lending_changed(built.loans, loans)
        if not starts and not lend:
            return []
        names = built.fleet.names
        orders: list[StartOrder] = []
        with transaction(self.session_factory) as session:
            if lend:
                assert loans is not None
                bal = built.snapshot.lending_balance_s
                write_lending(session, built.sector_ids,
                              np.zeros_like(loans) if bal is None else bal, loans, now)
            jobs = load_rows(session, (s.job_id for s in starts))
            batch = Batch()
            at = dt(now)
            pend = built.snapshot.pending
            attach: list[dict] = []
            for s in starts:
                job = jobs.get(s.job_id)
                if job is None or job.state != JobState.PENDING:
                    continue  # cancelled since the snapshot
                if not job.grant_named:
                    # Named none: charge the grant the snapshot found live now (an earlier
                    # attempt's choice, if any, is made again).
                    row = int(np.searchsorted(pend.id, job.id))
                    gi = int(pend.grant[row]) if row < len(pend) and pend.id[row] == job.id \
                        else -1
                    gid = int(built.grant_ids[gi]) if 0 <= gi < len(built.grant_ids) else None
                    if gid != job.grant_id:
                        job.grant_id = gid
                        attach.append({"jid": job.id, "gid": gid})
                placement = [names[i] for i, _ in s.placement]
                batch.move(job, JobState.RUNNING, at, "running", placement)
                # The lender survives a restart (scheduler rule 8 preempts on its behalf).
                job.borrowed = bool(s.borrowed)
                job.lender_sector_id = (int(built.sector_ids[s.lender]) if s.lender >= 0
                                        else None)
                orders.append(StartOrder(spec=self._launch(session, job),
                                         nodes=tuple(placement),
                                         per_node=tuple(int(c) for _, c in s.placement)))
            batch.write(session)
            if attach:
                session.connection().execute(
                    update(Job).where(Job.id == bindparam("jid"), Job.grant_named.is_(False))
                    .values(grant_id=bindparam("gid"))
                    .execution_options(synchronize_session=False), attach)
        return orders

    def apply_preemptions(self, built: StoreSnapshot, preempts: Sequence[Preempt], now: float
                          ) -> int:
        """Give each victim notice, and stop it once its grace has elapsed (the time of the
        first notice counts: the scheduler repeats a victim every cycle until it stops). The
        notice's deadline and message are stored with it, so a restart keeps the original
        deadline. Returns how many jobs were told to stop."""
        running = set(built.snapshot.running.id.tolist())
        self._stopping &= running
        notices = {j: v for j, v in built.notices.items() if j in running}
        given = []
        for p in preempts:
            if p.job_id in running and p.job_id not in notices:
                stop_at = now + p.grace_s
                notices[p.job_id] = (stop_at, p.message)
                given.append({"jid": p.job_id, "at": dt(stop_at), "message": p.message[:256],
                              "reason": f"notice: {p.message} (stops at "
                                        f"{iso_time(dt(stop_at))})"[:512]})
        if given:
            # Guarded: a job that already has a notice keeps its first deadline.
            stmt = (update(Job).where(Job.id == bindparam("jid"),
                                      Job.state == JobState.RUNNING, Job.preempt_at.is_(None))
                    .values(reason=bindparam("reason"), preempt_at=bindparam("at"),
                            preempt_message=bindparam("message"))
                    .execution_options(synchronize_session=False))
            with transaction(self.session_factory) as session:
                session.connection().execute(stmt, given)
        due = sorted(j for j, (at, _) in notices.items() if at <= now and j not in self._stopping)
        for j in due:
            self._stopping.add(j)
            self.engine.preempt([j], now, reason=notices[j][1])
        return len(due)

    def _start(self, orders: list[StartOrder], now: float) -> None:
        """Tell the engine; if it refuses the whole batch, put the jobs back in the queue."""
        try:
            self.engine.start(orders, now)
        except EngineError as exc:
            log.warning("the engine refused %d starts: %s", len(orders), exc)
            with transaction(self.session_factory) as session:
                jobs = load_rows(session, (o.spec.job_id for o in orders))
                batch = Batch()
                for job in jobs.values():
                    if job.state == JobState.RUNNING:
                        batch.move(job, JobState.PENDING, dt(now),
                                   f"requeued: the engine refused it ({exc.message})")
                batch.write(session)
            self._cycle_error = f"EngineError: {exc.message}"

    def _record_reasons(self, built: StoreSnapshot, reason: np.ndarray) -> None:
        """Write each pending job's hold reason when it changed (not every cycle)."""
        pend = built.snapshot.pending
        held = np.flatnonzero(reason != HoldReason.NONE)
        ids, codes = pend.id[held], reason[held].astype(np.int8)
        prev_ids, prev_codes = self._reasons
        written = np.full(len(ids), -1, dtype=np.int8)  # code last written, -1 for none
        if len(prev_ids) and len(ids):
            pos = np.searchsorted(prev_ids, ids).clip(0, len(prev_ids) - 1)
            hit = prev_ids[pos] == ids
            written[hit] = prev_codes[pos[hit]]
        due = written != codes
        # New waiting jobs get their reason at once; changes for known ones are written at
        # most every reason_interval_s (wall), so a cycle never rewrites thousands of rows.
        wall = time.monotonic()
        if wall - self._reasons_at >= self.reason_interval_s:
            self._reasons_at = wall
        else:
            due &= written == -1
        self._reasons = (ids, np.where(due, codes, written))  # ids sorted, as the snapshot's
        rows = held[due]
        if not len(rows):
            return
        types = built.fleet.catalog.types
        texts: dict[tuple[int, int, int, int], str] = {}
        changed = []
        for r in rows.tolist():
            key = (int(reason[r]), int(pend.nodes[r]), int(pend.per_node[r]),
                   int(pend.type_idx[r]))
            text = texts.get(key)
            if text is None:
                text = texts[key] = hold_message(HoldReason(key[0]), key[1], key[2],
                                                 types[key[3]].name)[:512]
            changed.append({"jid": int(pend.id[r]), "reason": text})
        stmt = (update(Job).where(Job.id == bindparam("jid"), Job.state == JobState.PENDING)
                .values(reason=bindparam("reason"))
                .execution_options(synchronize_session=False))
        with transaction(self.session_factory) as session:
            session.connection().execute(stmt, changed)

    def _stop_strays(self, now: float, built: StoreSnapshot) -> float:
        """Stop the jobs the engine runs that the snapshot does not call running (a user
        cancelled them; the same read as the cycle's decisions, so none can slip between),
        stamped when the stop happens, not with the cycle's time: a cancel committed since
        the cycle began is stopped after it. Returns the time this cycle's starts take, never
        before that stop (the same accelerators are never charged to two jobs at once)."""
        running = set(built.snapshot.running.id.tolist())
        stray = [r.job_id for r in self.engine.running() if r.job_id not in running]
        if not stray:
            return now
        at = max(now, self.clock.now())
        try:
            self.engine.cancel(stray, at)
        except EngineError as exc:  # (a stop that fails must not stop scheduling)
            log.warning("could not stop jobs %s in the engine: %s", stray, exc)
            self._cycle_error = f"stop: {exc}"
        return at

    # --- restart ------------------------------------------------------------------------------

    def reconcile(self, now: float) -> dict[str, int]:
        """Make the engine and the store agree after a (re)start; returns what it did."""
        done = {"adopted": 0, "requeued": 0, "cancelled": 0, "charged": 0}
        engine_running = {r.job_id: r.start_time for r in self.engine.running()}
        adopt = getattr(self.engine, "adopt", None)
        with transaction(self.session_factory) as session:
            jobs = load_rows(session, where=Job.state == JobState.RUNNING)
            store_running = set(jobs)
            batch = Batch()
            ledger: list[dict] = []
            moved: list[JobRow] = []
            for job in jobs.values():
                if job.id in engine_running:
                    if engine_start(job, engine_running[job.id],
                                    self.engine.time_resolution_s):
                        moved.append(job)
                    continue
                nodes = tuple(job.placement or ())
                order = StartOrder(spec=self._launch(session, job), nodes=nodes,
                                   per_node=tuple([job.per_node] * len(nodes)))
                if (adopt is not None and job.started_at is not None
                        and adopt(order, ts(job.started_at))):
                    done["adopted"] += 1
                    continue
                entry = self._entry(session, job, LOST, now)
                if entry:
                    ledger.append(entry)
                batch.move(job, JobState.PENDING, dt(now),
                           "requeued: the engine lost it during a restart")
                done["requeued"] += 1
            # Running jobs cancelled through the API while no engine was there to stop them.
            unpaid = ~select(LedgerEntry.id).where(
                LedgerEntry.job_id == Job.id,
                LedgerEntry.event_id == "job:" + cast(Job.id, String) + ":attempt:"
                + cast(Job.attempts, String) + ":usage").exists()
            cancelled = load_rows(session, where=(Job.state == JobState.CANCELLED)
                                  & Job.started_at.is_not(None) & unpaid)
            for job in cancelled.values():
                if job.id in engine_running:
                    continue
                entry = self._entry(session, job, USAGE, ts(job.ended_at or dt(now)))
                if entry:
                    ledger.append(entry)
                    done["charged"] += 1
            write_starts(session, moved)
            batch.write(session)
            insert_ignore(session, ledger)
        stray = sorted(set(engine_running) - store_running)
        if stray:
            self.engine.cancel(stray, now)
            done["cancelled"] = len(stray)
        self._reconciled = True
        if any(done.values()):
            log.debug("reconciled with the engine: %s", done)
        return done

    # --- stats --------------------------------------------------------------------------------

    def _update_stats(self, built: StoreSnapshot, orders: list[StartOrder], preempted: int,
                      events: list[JobEvent], reason: np.ndarray, now: float, took: float,
                      sched: float) -> CycleStats:
        snap = built.snapshot
        fleet = snap.fleet
        cat = fleet.catalog
        n_types = len(cat)
        run = snap.running
        acc = run.accelerators
        busy_t = np.bincount(run.type_idx.astype(np.int64), weights=acc,
                             minlength=n_types).astype(np.float64)
        sector_names = snap.tenancy.sector_names
        busy_s = np.zeros(len(sector_names))
        if len(run) and len(sector_names):
            ok = run.project >= 0
            sec = snap.tenancy.project_sector[run.project[ok]]
            np.add.at(busy_s, sec, acc[ok])
        pend = snap.pending
        started = np.isin(pend.id, np.array([o.spec.job_id for o in orders], dtype=np.int64))
        if started.any():
            pacc = pend.accelerators[started]
            busy_t += np.bincount(pend.type_idx[started].astype(np.int64), weights=pacc,
                                  minlength=n_types)
            proj = pend.project[started]
            ok = proj >= 0
            if ok.any() and len(sector_names):
                np.add.at(busy_s, snap.tenancy.project_sector[proj[ok]], pacc[ok])
        busy_node = (fleet.capacity - snap.free).astype(np.int64)
        for o in orders:
            for name, c in zip(o.nodes, o.per_node, strict=True):
                i = self.builder.node_index().get(name)
                if i is not None:
                    busy_node[i] += c
        pend_t = np.bincount(pend.type_idx.astype(np.int64), minlength=n_types)
        held = reason[reason != HoldReason.NONE]
        hold = {HoldReason(int(c)).name.lower(): int(n)
                for c, n in zip(*np.unique(held, return_counts=True), strict=True)}
        cap = fleet.accelerators_by_type()
        stats = CycleStats(
            cycles=self._stats.cycles + 1, at=now, duration_s=took, schedule_s=sched,
            pending=len(pend) - len(orders), running=len(run) + len(orders),
            started=len(orders), preempted=preempted, events=len(events),
            capacity_by_type=cap,
            busy_by_type={t.name: int(busy_t[i]) for i, t in enumerate(cat) if t.name in cap},
            busy_by_sector={name: int(busy_s[i]) for i, name in enumerate(sector_names)},
            pending_by_type={t.name: int(pend_t[i]) for i, t in enumerate(cat) if pend_t[i]},
            hold_reasons=hold,
            nodes_down=int((fleet.state != 0).sum()),
            power_w=fleet_power_w(fleet, busy_node),
            totals=dict(self._totals),
            last_error=self._cycle_error,
        )
        with self._stats_lock:
            self._stats = stats
        return stats


# --- the lending balance -----------------------------------------------------------------------


def lending_changed(stored: np.ndarray | None, loans: np.ndarray) -> bool:
    """Whether the loans after a cycle differ from those the store holds (rule 2): the balance
    is rewritten only then, since the stored pairs give it at any later time."""
    if stored is None or stored.shape != loans.shape:
        return bool(loans.any())
    return not np.allclose(stored, loans, rtol=0.0, atol=1e-9)


# --- node repairs --------------------------------------------------------------------------------


def repair_time(ev: JobEvent) -> datetime | None:
    """When a ``node_down`` event says the node comes back (the twin's ``extra["repair_at"]``);
    None when no repair is due (a node that stays down until someone repairs it)."""
    raw = ev.extra.get("repair_at")
    if raw is None:
        return None
    try:
        at = float(raw)
    except (TypeError, ValueError):
        return None
    return dt(at) if math.isfinite(at) else None


# --- the engine's start of an attempt ----------------------------------------------------------


def engine_start(job: JobRow, at: float, resolution_s: float = 0.0) -> bool:
    """Take the engine's start time ``at`` for the running attempt of ``job``; True if it moved.

    The decision time is the earliest an attempt can start, so a start counts when it is later,
    or earlier by less than the engine's time resolution (Slurm's whole seconds: a job started
    in the second of its decision reports that second's beginning). A replayed event carries
    the time already stored; an earlier attempt's event predates this attempt's decision by more
    than that (it started, ran and ended before the job was decided again).
    """
    start = dt(at)
    if job.state != JobState.RUNNING or job.started_at is None or start == job.started_at:
        return False
    if start < job.started_at and ts(job.started_at) - at >= resolution_s:
        return False
    job.started_at = start
    return True


def write_starts(session: Session, jobs: Iterable[JobRow]) -> int:
    """Store the start times :func:`engine_start` moved (the caller's transaction). Guarded by
    state and attempt, so a job that moved on meanwhile (cancelled through the API, or decided
    again) is left alone instead of failing the transaction."""
    rows = [{"jid": j.id, "n": j.attempts, "start": j.started_at} for j in jobs]
    if not rows:
        return 0
    stmt = (update(Job).where(Job.id == bindparam("jid"), Job.state == JobState.RUNNING,
                              Job.attempts == bindparam("n"))
            .values(started_at=bindparam("start"))
            .execution_options(synchronize_session=False))
    session.connection().execute(stmt, rows)
    return len(rows)
