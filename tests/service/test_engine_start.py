"""The store keeps the engine's start of an attempt (not the decision), and the ledger charges
from it: on Slurm a released job starts a second or two after the decision."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from aicc.engines.base import EventKind, JobEvent, StartOrder
from aicc.engines.twin import TwinEngine
from aicc.fleet import build_fleet
from aicc.service.snapshot import ts
from aicc.store.db import transaction
from aicc.store.models import Job, JobEventRow, JobState, LedgerEntry
from service.conftest import T0, Center


class LaunchDelayTwin(TwinEngine):
    """The twin with a launch delay, as on Slurm: a job ordered at ``now`` starts ``delay_s``
    later, and its ``started`` event carries that time."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(build_fleet("lab"))
        self.delay_s = delay_s

    def start(self, orders: Sequence[StartOrder], now: float) -> None:
        super().start(orders, now + self.delay_s)


def job(center: Center, job_id: int) -> Job:
    with center.factory() as session:
        return session.get(Job, job_id)


def running_row_time(center: Center, job_id: int) -> float:
    """When the ``running`` audit row says the job was decided."""
    with center.factory() as session:
        return ts(session.scalar(select(JobEventRow.time).where(
            JobEventRow.job_id == job_id, JobEventRow.kind == JobState.RUNNING.value)))


def usage(center: Center, job_id: int) -> LedgerEntry:
    with center.factory() as session:
        [entry] = session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job_id)).all()
        return entry


def test_the_twin_starts_at_the_decision_so_nothing_moves(center: Center) -> None:
    jid = center.submit(per_node=8, runtime=600.0)
    cp = center.control_plane()
    center.clock.advance_to(T0 + 10)
    cp.run_cycle()
    center.clock.advance_to(T0 + 20)
    cp.run_cycle()  # applies the twin's started event (time T0 + 10)
    assert cp.stats().totals.get(EventKind.STARTED.value) == 1
    assert ts(job(center, jid).started_at) == T0 + 10 == running_row_time(center, jid)
    center.run(cp, T0 + 700)
    assert usage(center, jid).accelerator_seconds == 8 * 600


def test_a_later_engine_start_moves_started_at_and_the_charge(center: Center) -> None:
    jid = center.submit(per_node=8, runtime=600.0)
    cp = center.control_plane(LaunchDelayTwin(1.5))
    center.clock.advance_to(T0 + 10)
    cp.run_cycle()
    assert ts(job(center, jid).started_at) == T0 + 10  # the decision, until the engine says
    center.clock.advance_to(T0 + 20)
    cp.run_cycle()
    assert ts(job(center, jid).started_at) == T0 + 11.5
    # The decision stays in the audit trail.
    assert running_row_time(center, jid) == T0 + 10
    # The same event again (a replay after a crash) and one earlier than the stored start (an
    # earlier attempt's) change nothing.
    for t in (T0 + 11.5, T0 + 5):
        with transaction(center.factory) as session:
            cp.apply_events(session, [JobEvent(EventKind.STARTED, t, job_id=jid)])
        assert ts(job(center, jid).started_at) == T0 + 11.5
    center.run(cp, T0 + 700)
    j = job(center, jid)
    assert j.state == JobState.FINISHED and ts(j.ended_at) == T0 + 611.5
    entry = usage(center, jid)
    assert ts(entry.period_start) == T0 + 11.5
    assert entry.accelerator_seconds == 8 * 600  # the run, not the launch delay


def test_an_engine_start_is_never_earlier_than_the_decision(center: Center) -> None:
    jid = center.submit(per_node=8, runtime=600.0)
    cp = center.control_plane()
    center.clock.advance_to(T0 + 10)
    cp.run_cycle()
    with transaction(center.factory) as session:  # a clock a little behind the decision's
        cp.apply_events(session, [JobEvent(EventKind.STARTED, T0 + 9, job_id=jid)])
    assert ts(job(center, jid).started_at) == T0 + 10


def test_a_restart_takes_the_engines_start_of_a_job_it_keeps_running(center: Center) -> None:
    jid = center.submit(per_node=8, runtime=600.0)
    engine = LaunchDelayTwin(2.0)
    cp = center.control_plane(engine)
    center.clock.advance_to(T0 + 10)
    cp.run_cycle()
    # The process dies after polling the started event and before storing it.
    assert [e.kind for e in engine.poll(T0 + 15)] == [EventKind.STARTED]
    assert ts(job(center, jid).started_at) == T0 + 10
    cp2 = center.control_plane(engine)
    done = cp2.reconcile(T0 + 20)
    assert done == {"adopted": 0, "requeued": 0, "cancelled": 0, "charged": 0}
    assert ts(job(center, jid).started_at) == T0 + 12
    assert cp2.reconcile(T0 + 30) == done and ts(job(center, jid).started_at) == T0 + 12
    center.clock.advance_to(T0 + 20)
    center.run(cp2, T0 + 700)
    assert job(center, jid).state == JobState.FINISHED
    assert usage(center, jid).accelerator_seconds == 8 * 600


class WholeSecondTwin(TwinEngine):
    """The twin reporting times in whole seconds, as Slurm does."""

    time_resolution_s = 1.0


def test_a_start_in_the_second_of_the_decision_is_taken_at_the_engines_resolution(
        center: Center) -> None:
    jid = center.submit(per_node=8, runtime=600.0)
    cp = center.control_plane(WholeSecondTwin(build_fleet("lab")))
    center.clock.advance_to(T0 + 10.25)
    cp.run_cycle()
    assert ts(job(center, jid).started_at) == T0 + 10.25
    # Started in the decision's second, reported as that second: the engine's time is kept, so
    # the ledger agrees with the engine's accounting.
    with transaction(center.factory) as session:
        cp.apply_events(session, [JobEvent(EventKind.STARTED, T0 + 10, job_id=jid)])
    assert ts(job(center, jid).started_at) == T0 + 10
    # A whole resolution or more before the stored start is an earlier attempt's: ignored.
    with transaction(center.factory) as session:
        cp.apply_events(session, [JobEvent(EventKind.STARTED, T0 + 9, job_id=jid)])
    assert ts(job(center, jid).started_at) == T0 + 10
