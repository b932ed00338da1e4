"""The control-plane loop on a lab center: life cycle, ledger, failures, restarts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from aicc.engines.base import EventKind, LaunchSpec, StartOrder
from aicc.engines.twin import TwinEngine
from aicc.errors import EngineError
from aicc.fleet import build_fleet
from aicc.ledger import event_id
from aicc.service.loop import EVENT_RETRIES, ControlPlane
from aicc.service.snapshot import dt, ts
from aicc.store.db import transaction
from aicc.store.models import (
    Job,
    JobEventRow,
    JobState,
    LedgerEntry,
    Node,
    NodeState,
    Sector,
    User,
)
from aicc.tenancy.access import load_principal
from aicc.workload.jobs import JobSubmission, cancel_job, submit_job
from service.conftest import T0, Center, add_project

H100_TDP_W = 700.0  # catalog figure, restated here on purpose


def job(center: Center, job_id: int) -> Job:
    with center.factory() as session:
        return session.get(Job, job_id)


def ledger(center: Center, job_id: int | None = None) -> list[LedgerEntry]:
    with center.factory() as session:
        q = select(LedgerEntry).order_by(LedgerEntry.id)
        if job_id is not None:
            q = q.where(LedgerEntry.job_id == job_id)
        return list(session.scalars(q))


def test_a_job_goes_pending_running_finished_and_is_charged_once(center: Center) -> None:
    jid = center.submit(per_node=8, runtime=1800.0)
    assert job(center, jid).state == JobState.PENDING
    cp = center.control_plane()
    center.clock.advance_to(T0 + 10)
    cp.run_cycle()
    j = job(center, jid)
    assert j.state == JobState.RUNNING and j.attempts == 1
    assert ts(j.started_at) == T0 + 10 and len(j.placement) == 1
    assert cp.stats().busy_by_type["h100-sxm-80g"] == 8
    assert cp.stats().busy_by_sector["research"] == 8
    center.run(cp, T0 + 1800)
    assert job(center, jid).state == JobState.RUNNING  # ends at T0 + 1810
    center.run(cp, T0 + 3600)
    j = job(center, jid)
    assert j.state == JobState.FINISHED and ts(j.ended_at) == T0 + 1810
    [entry] = ledger(center, jid)
    assert entry.event_id == f"job:{jid}:attempt:1:usage"
    assert entry.kind == "usage" and entry.grant_id == center.grant_id
    assert entry.accelerator_seconds == pytest.approx(8 * 1800)
    assert entry.energy_kwh == pytest.approx(8 * H100_TDP_W * 0.5 / 1000)
    assert entry.carbon_kg == pytest.approx(entry.energy_kwh * 0.5810)
    assert entry.charge == pytest.approx(8 * 0.5)  # H100 price weight 1.0
    with center.factory() as session:
        kinds = session.scalars(select(JobEventRow.kind).where(JobEventRow.job_id == jid)
                                .order_by(JobEventRow.id)).all()
    assert kinds == ["submitted", "running", "finished"]
    assert cp.stats().busy_by_type["h100-sxm-80g"] == 0


def test_replaying_events_never_charges_twice(center: Center) -> None:
    jid = center.submit(runtime=100.0)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    center.clock.advance_to(T0 + 200)
    events = engine.poll(center.clock.now())
    for _ in range(3):  # as if the process died after polling, before or after committing
        with transaction(center.factory) as session:
            cp.apply_events(session, events)
    assert len(ledger(center, jid)) == 1
    assert job(center, jid).state == JobState.FINISHED


def test_a_crash_between_recording_and_telling_the_engine_loses_nothing(center: Center
                                                                        ) -> None:
    """The store says running; a fresh process (new twin) re-establishes the job, which ends
    at its original end time and is charged exactly once."""
    jid = center.submit(runtime=1000.0)
    first = center.control_plane()
    first.run_cycle()
    assert job(center, jid).state == JobState.RUNNING
    # The process dies; a new one starts 300 s later with an empty twin.
    center.clock.advance_to(T0 + 300)
    engine = TwinEngine(build_fleet("lab"))
    second = center.control_plane(engine)
    second.run_cycle()
    assert [r.job_id for r in engine.running()] == [jid]
    center.run(second, T0 + 2000)
    j = job(center, jid)
    assert j.state == JobState.FINISHED and ts(j.ended_at) == T0 + 1000
    assert j.attempts == 1
    [entry] = ledger(center, jid)
    assert entry.accelerator_seconds == pytest.approx(8 * 1000)


def test_a_job_the_engine_cannot_take_back_is_requeued(center: Center) -> None:
    jid = center.submit(runtime=1000.0)
    center.control_plane().run_cycle()
    with transaction(center.factory) as session:  # its node vanished from the new fleet
        session.get(Job, jid).placement = ["no-such-node"]
    cp = center.control_plane()
    center.clock.advance_to(T0 + 100)
    done = cp.reconcile(center.clock.now())
    assert done["requeued"] == 1
    j = job(center, jid)
    assert j.state == JobState.PENDING and "restart" in j.reason
    [lost] = ledger(center, jid)
    assert lost.kind == "lost" and lost.charge == 0 and lost.grant_id is None
    center.run(cp, T0 + 2000)
    assert job(center, jid).state == JobState.FINISHED
    kinds = sorted(e.kind for e in ledger(center, jid))
    assert kinds == ["lost", "usage"]


def test_an_engine_job_unknown_to_the_store_is_cancelled(center: Center) -> None:
    engine = TwinEngine(build_fleet("lab"))
    node = engine.fleet().names[0]
    engine.start([StartOrder(LaunchSpec(424242, "x", "h100-sxm-80g", 1, 8, 3600.0),
                             (node,), (8,))], T0)
    cp = center.control_plane(engine)
    assert cp.reconcile(T0)["cancelled"] == 1
    assert engine.running() == []


def test_a_node_failure_records_lost_time_and_requeues(center: Center) -> None:
    jid = center.submit(runtime=1000.0)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    node = job(center, jid).placement[0]
    engine.schedule_node_failure(node, at=T0 + 400, repair_after_s=3600)
    center.run(cp, T0 + 420, step=20)
    j = job(center, jid)
    assert j.state in (JobState.PENDING, JobState.RUNNING)  # requeued, maybe restarted
    with center.factory() as session:
        n = session.scalar(select(Node).where(Node.name == node))
        assert n.state == NodeState.DOWN and "injected" in n.state_reason
    [lost] = ledger(center, jid)
    assert lost.kind == "lost" and lost.accelerator_seconds == pytest.approx(8 * 400)
    assert lost.event_id == event_id(jid, 1, "lost") and lost.charge == 0
    center.run(cp, T0 + 3000)
    j = job(center, jid)
    assert j.state == JobState.FINISHED and j.attempts == 2
    assert j.placement[0] != node
    usage = [e for e in ledger(center, jid) if e.kind == "usage"]
    assert [e.event_id for e in usage] == [event_id(jid, 2, "usage")]
    assert usage[0].accelerator_seconds == pytest.approx(8 * 1000)
    assert cp.stats().totals["node_down"] == 1


def test_cancelling_a_running_job_stops_it_and_charges_what_it_used(center: Center) -> None:
    jid = center.submit(runtime=5000.0, limit=7200.0)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    center.clock.advance_to(T0 + 600)
    with transaction(center.factory) as session:
        cancel_job(session=session, principal=center.principal(session), job_id=jid,
                   at=dt(T0 + 600))
    center.clock.advance_to(T0 + 650)  # the next cycle comes a while after the cancel
    cp.run_cycle()  # the loop sees a running engine job the store calls cancelled
    assert engine.running() == []
    center.run(cp, T0 + 700)
    assert job(center, jid).state == JobState.CANCELLED
    [entry] = ledger(center, jid)
    # charged up to the cancel, not up to the engine's stop 50 s later
    assert entry.kind == "usage" and entry.accelerator_seconds == pytest.approx(8 * 600)


def test_a_job_cancelled_through_the_api_frees_its_node_before_the_next_start(
        center: Center) -> None:
    # the lab fleet is full (16 nodes × 8); a 17th job waits. One running job is cancelled:
    # the next cycle stops it in the engine before it starts the waiting job on its node, so
    # the start does not fail to launch and come back for a second attempt
    ids = [center.submit(runtime=5000.0, limit=7200.0) for _ in range(17)]
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    assert [job(center, j).state for j in ids].count(JobState.RUNNING) == 16
    waiting = next(j for j in ids if job(center, j).state == JobState.PENDING)
    center.clock.advance_to(T0 + 600)
    with transaction(center.factory) as session:
        cancel_job(session=session, principal=center.principal(session), job_id=ids[0],
                   at=dt(T0 + 600))
    center.run(cp, T0 + 720)
    w = job(center, waiting)
    assert (w.state, w.attempts) == (JobState.RUNNING, 1), w.reason


class _RefusingTwin(TwinEngine):
    """A twin that cannot start anything: each order comes back failed at launch."""

    def start(self, orders, now: float) -> None:
        for order in orders:
            self._reject(order, now, "refused")


def test_a_cancelled_job_that_never_launched_is_charged_nothing(center: Center) -> None:
    # the loop records a start and tells the engine; the job is cancelled through the API
    # before the engine's refusal comes back. The attempt ran for nothing: its entry says 0,
    # and a restart's reconcile() does not charge it the time between start and cancel
    jid = center.submit(runtime=600.0)
    cp = center.control_plane(_RefusingTwin(build_fleet("lab")))
    cp.run_cycle()
    center.clock.advance_to(T0 + 3)
    with transaction(center.factory) as session:
        cancel_job(session=session, principal=center.principal(session), job_id=jid,
                   at=dt(T0 + 3))
    cp.run_cycle()
    [entry] = ledger(center, jid)
    assert (entry.kind, entry.accelerator_seconds, entry.charge) == ("usage", 0.0, 0.0)
    done = center.control_plane().reconcile(center.clock.now())
    assert done["charged"] == 0 and len(ledger(center, jid)) == 1


def test_a_cancel_during_a_cycle_is_charged_up_to_the_cancel(center: Center) -> None:
    # the cycle reads its time once, as it begins; a cancel committed after that (here by a
    # feeder, which runs inside the cycle, 0.25 s later) is stamped later. The engine's stop
    # is stamped when it happens, not with the cycle's time, so the charge reaches the cancel;
    # and a job the cycle starts on the freed node starts after the stop, not before it (the
    # same accelerators are never charged to two jobs at once)
    ids = [center.submit(runtime=5000.0, limit=7200.0) for _ in range(17)]
    jid = ids[0]
    done: list[int] = []

    def cancel_once(session, now: float) -> None:
        if center.clock.now() >= T0 + 600 and not done:
            center.clock.advance_to(T0 + 600.25)
            cancel_job(session=session, principal=center.principal(session), job_id=jid,
                       at=dt(center.clock.now()))
            done.append(jid)

    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine, feeders=[cancel_once])
    cp.run_cycle()
    waiting = next(j for j in ids if job(center, j).state == JobState.PENDING)
    center.clock.advance_to(T0 + 600)
    cp.run_cycle()
    center.run(cp, T0 + 700)
    [entry] = ledger(center, jid)
    assert entry.accelerator_seconds == pytest.approx(8 * 600.25)
    assert entry.period_end == job(center, jid).ended_at
    w = job(center, waiting)
    assert (w.state, w.attempts) == (JobState.RUNNING, 1)
    assert ts(w.started_at) == pytest.approx(T0 + 600.25)


def test_preemption_charges_the_attempt_and_requeues(center: Center) -> None:
    jid = center.submit(runtime=1000.0, preemptible=True)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    center.clock.advance_to(T0 + 250)
    engine.preempt([jid], center.clock.now(), reason="reclaimed")
    cp.run_cycle()
    center.run(cp, T0 + 2000)
    j = job(center, jid)
    assert j.state == JobState.FINISHED and j.attempts == 2
    got = [(e.event_id, round(e.accelerator_seconds)) for e in ledger(center, jid)]
    # the preempted run checkpointed (rule 8's grace): the second run does the 750 s left
    assert got == [(event_id(jid, 1, "usage"), 8 * 250), (event_id(jid, 2, "usage"), 8 * 750)]
    with center.factory() as session:
        kinds = session.scalars(select(JobEventRow.kind).where(JobEventRow.job_id == jid)
                                .order_by(JobEventRow.id)).all()
    assert kinds == ["submitted", "running", "preempted", "pending", "running", "finished"]


def test_a_runtime_beyond_the_limit_fails_and_is_charged(center: Center) -> None:
    jid = center.submit(runtime=5000.0, limit=600.0)
    cp = center.control_plane()
    center.run(cp, T0 + 1200)
    j = job(center, jid)
    assert j.state == JobState.FAILED and "time limit" in j.reason
    [entry] = ledger(center, jid)
    assert entry.accelerator_seconds == pytest.approx(8 * 600)


def test_waiting_jobs_carry_a_readable_reason(center: Center) -> None:
    ids = [center.submit(nodes=16, per_node=8, runtime=3000.0, limit=3600.0),
           center.submit(nodes=16, per_node=8, runtime=3000.0, limit=3600.0)]
    cp = center.control_plane()
    cp.run_cycle()
    assert job(center, ids[0]).state == JobState.RUNNING
    waiting = job(center, ids[1])
    assert waiting.state == JobState.PENDING
    assert "16x8" in waiting.reason and "h100-sxm-80g" in waiting.reason
    s = cp.stats()
    assert s.pending == 1 and s.running == 1 and s.hold_reasons == {"resources": 1}
    assert s.busy_by_type["h100-sxm-80g"] == 128 and s.capacity_by_type["h100-sxm-80g"] == 128
    center.run(cp, T0 + 7000)
    assert {job(center, i).state for i in ids} == {JobState.FINISHED}
    with center.factory() as session:
        assert session.scalar(select(func.count(LedgerEntry.id))) == 2


def test_the_background_thread_runs_cycles(center: Center) -> None:
    jid = center.submit(runtime=60.0)
    cp = center.control_plane()
    cp.start(interval_s=0.01)
    try:
        import time

        deadline = time.monotonic() + 10
        while job(center, jid).state == JobState.PENDING and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        cp.stop()
    assert job(center, jid).state == JobState.RUNNING
    assert cp.stats().cycles >= 1 and not cp.running_thread


class RefusingTwin(TwinEngine):
    """A twin whose start fails once, as a real engine does when its controller is down."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.refusals = 1

    def start(self, orders, now):  # type: ignore[override]
        if self.refusals:
            self.refusals -= 1
            raise EngineError("controller unreachable")
        super().start(orders, now)


def test_jobs_an_engine_refuses_go_back_to_the_queue(center: Center) -> None:
    jid = center.submit(runtime=100.0)
    cp = center.control_plane(RefusingTwin(build_fleet("lab")))
    cp.run_cycle()
    j = job(center, jid)
    assert j.state == JobState.PENDING and "controller unreachable" in j.reason
    assert cp.stats().last_error == "EngineError: controller unreachable"
    center.run(cp, T0 + 600)
    j = job(center, jid)
    assert j.state == JobState.FINISHED and j.attempts == 2
    assert [e.kind for e in ledger(center, jid)] == ["usage"]


def test_a_failing_feeder_does_not_stop_scheduling(center: Center) -> None:
    jid = center.submit(runtime=100.0)

    def broken(session, now):
        raise RuntimeError("workload file unreadable")

    cp = center.control_plane(feeders=[broken])
    cp.run_cycle()
    assert job(center, jid).state == JobState.RUNNING
    assert cp.stats().last_error == "feeder: RuntimeError: workload file unreadable"


def public_submitter(center: Center):
    """A public-sector project with an H100 grant; returns a function that submits for it."""
    with transaction(center.factory) as session:
        pid, _, uid = add_project(session, sector="public", organization="Harbor Authority",
                                  project="flood-model", user="bob")

    def submit(nodes: int, runtime: float) -> int:
        with transaction(center.factory) as session:
            spec = JobSubmission(project_id=pid, accelerator_type="h100-sxm-80g",
                                 gang={"nodes": nodes, "per_node": 8}, time_limit_s=7200.0,
                                 runtime_s=runtime)
            principal = load_principal(session=session, user=session.get(User, uid))
            j, _ = submit_job(session=session, principal=principal, spec=spec,
                              now=dt(center.clock.now()))
            return j.id

    return submit


def lenders(center: Center, plane) -> dict[int, str]:
    """The scheduler's view of running jobs' lenders: job id -> lending sector ("" for none)."""
    with center.factory() as session:
        built = plane.builder.build(session, center.clock.now())
    run = built.snapshot.running
    names = built.snapshot.tenancy.sector_names
    assert len(run.lender) == len(run), "the running table's lenders are unknown"
    return {int(j): names[x] if x >= 0 else "" for j, x in zip(run.id, run.lender, strict=True)}


def test_a_restarted_control_plane_knows_which_sector_lent_a_running_job(center: Center
                                                                        ) -> None:
    """Research (20 % of 128 H100s) starts 96 accelerators: 70.4 borrowed, mostly from
    public. A new control plane over the same store and engine still names the lender."""
    jid = center.submit(nodes=12, runtime=1000.0)
    small = center.submit(nodes=1, runtime=1000.0)
    engine = TwinEngine(build_fleet("lab"))
    first = center.control_plane(engine, "fairshare")
    first.run_cycle()
    assert job(center, jid).state == job(center, small).state == JobState.RUNNING
    assert lenders(center, first) == {jid: "public", small: ""}
    del first  # the process dies; the engine keeps running the jobs
    center.clock.advance_to(T0 + 300)
    second = center.control_plane(engine, "fairshare")
    assert second.reconcile(center.clock.now())["requeued"] == 0
    assert lenders(center, second) == {jid: "public", small: ""}
    with center.factory() as session:
        public_id = session.scalar(select(Sector.id).where(Sector.name == "public"))
    j = job(center, jid)
    assert (j.borrowed, j.lender_sector_id) == (True, public_id)
    center.run(second, T0 + 1200)
    j = job(center, jid)
    assert j.state == JobState.FINISHED
    assert (j.borrowed, j.lender_sector_id) == (None, None)  # cleared when it left running


def test_a_job_running_since_before_lenders_were_stored_leaves_them_unknown(center: Center
                                                                           ) -> None:
    jid = center.submit(runtime=1000.0)
    cp = center.control_plane(policy="fairshare")
    cp.run_cycle()
    with transaction(center.factory) as session:  # as after the upgrade that added the column
        session.get(Job, jid).borrowed = None
    with center.factory() as session:
        built = cp.builder.build(session, center.clock.now())
    assert len(built.snapshot.running) == 1
    assert built.snapshot.running.lender.tolist() == []  # the scheduler derives it from usage


def test_a_notice_keeps_its_deadline_across_a_restart(center: Center) -> None:
    """Public needs 48 of the 32 free H100s while research borrows 96 from it: after research's
    minimum runtime the scheduler gives notice with a grace of 300 s. The control plane is
    replaced midway through the grace; the job still stops at the first notice's deadline."""
    jid = center.submit(nodes=12, runtime=5000.0, limit=7200.0, preemptible=True)
    submit_public = public_submitter(center)
    engine = TwinEngine(build_fleet("lab"))
    first = center.control_plane(engine, "fairshare")
    first.run_cycle()
    public_job = submit_public(nodes=6, runtime=600.0)
    first.run_cycle()
    assert job(center, public_job).state == JobState.PENDING
    while job(center, jid).preempt_at is None:
        assert center.clock.now() < T0 + 1200, "no notice was given"
        center.run(first, center.clock.now() + 60)
    noticed_at = center.clock.now()
    j = job(center, jid)
    deadline = ts(j.preempt_at)
    assert deadline == noticed_at + 300.0 and j.preempt_message
    assert j.reason.startswith("notice: ")
    # Replaced 120 s into the grace, with the same engine.
    center.clock.advance_to(noticed_at + 120)
    del first
    second = center.control_plane(engine, "fairshare")
    second.run_cycle()  # the scheduler repeats the victim: the first notice counts
    assert ts(job(center, jid).preempt_at) == deadline
    center.run(second, deadline - 1, step=20)
    assert [r.job_id for r in engine.running()] == [jid]
    center.clock.advance_to(deadline)
    assert second.run_cycle().preempted == 1
    center.run(second, deadline + 60)
    j = job(center, jid)
    assert j.state == JobState.PENDING and j.preempt_at is None and j.borrowed is None
    [first_attempt] = [e for e in ledger(center, jid) if e.event_id == event_id(jid, 1, "usage")]
    assert first_attempt.accelerator_seconds == pytest.approx(96 * (deadline - T0))
    assert job(center, public_job).state == JobState.RUNNING


def test_a_preempted_job_gets_its_grace_before_it_is_stopped(center: Center) -> None:
    from aicc.scheduler import Preempt

    jid = center.submit(runtime=5000.0, limit=7200.0, preemptible=True)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()

    def notice(at: float, preempts: list[Preempt]) -> int:
        center.clock.advance_to(at)
        with center.factory() as session:
            built = cp.builder.build(session, at)
        return cp.apply_preemptions(built, preempts, at)

    victim = Preempt(jid, "capacity returned to public", grace_s=300.0)
    assert notice(T0 + 1000, [victim]) == 0
    assert "notice: capacity returned to public" in job(center, jid).reason
    assert notice(T0 + 1200, [victim]) == 0  # repeated: the first notice's time counts
    assert [r.job_id for r in engine.running()] == [jid]
    assert notice(T0 + 1300, []) == 1
    cp.run_cycle()
    j = job(center, jid)
    assert (j.state, j.attempts) == (JobState.RUNNING, 2)  # requeued, and restarted at once
    [first] = [e for e in ledger(center, jid) if e.event_id == event_id(jid, 1, "usage")]
    assert first.accelerator_seconds == pytest.approx(8 * 1300)


class _StoreFailsOnce(ControlPlane):
    """The database fails once, after the engine's events were taken but before they were
    committed (a lost connection, a lock timeout, a concurrent change of the same job)."""

    failed = False

    def apply_events(self, session, events) -> None:
        super().apply_events(session, events)
        if not self.failed:
            self.failed = True
            raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))


def test_events_whose_write_failed_are_applied_by_the_next_cycle(center: Center) -> None:
    jid = center.submit(runtime=100.0)
    engine = TwinEngine(build_fleet("lab"))
    cp = _StoreFailsOnce(center.settings, center.factory, engine, center.clock, "fifo")
    cp.run_cycle()
    assert job(center, jid).state == JobState.RUNNING
    center.clock.advance_to(T0 + 200)
    with pytest.raises(OperationalError):
        cp.run_cycle()  # the engine reported the finish; storing it failed
    assert job(center, jid).state == JobState.RUNNING and ledger(center, jid) == []
    assert engine.poll(center.clock.now()) == []  # the engine reports an event only once
    cp.run_cycle()
    assert job(center, jid).state == JobState.FINISHED
    [entry] = ledger(center, jid)
    assert entry.accelerator_seconds == pytest.approx(8 * 100.0)
    cp.run_cycle()
    assert len(ledger(center, jid)) == 1


class _PoisonedEvent(ControlPlane):
    """Every write that includes one job's events fails (say a reason the database refuses)."""

    poisoned = -1

    def apply_events(self, session, events) -> None:
        super().apply_events(session, events)
        if any(e.job_id == self.poisoned for e in events):
            raise OperationalError("UPDATE jobs", {}, Exception("invalid byte sequence"))


def test_an_event_that_never_stores_is_dropped_and_the_rest_go_on(center: Center) -> None:
    bad, good = center.submit(runtime=100.0), center.submit(runtime=100.0)
    engine = TwinEngine(build_fleet("lab"))
    cp = _PoisonedEvent(center.settings, center.factory, engine, center.clock, "fifo")
    cp.poisoned = bad
    cp.run_cycle()
    center.clock.advance_to(T0 + 200)
    later = center.submit(runtime=100.0)
    for _ in range(EVENT_RETRIES):  # the batch is kept and tried whole again
        with pytest.raises(OperationalError):
            cp.run_cycle()
        assert job(center, good).state == JobState.RUNNING
    cp.run_cycle()  # then one by one: the good event is stored, the bad one dropped
    assert job(center, good).state == JobState.FINISHED and len(ledger(center, good)) == 1
    assert job(center, bad).state == JobState.RUNNING and ledger(center, bad) == []
    assert cp.stats().last_error.startswith("event dropped: OperationalError")
    assert job(center, later).state == JobState.RUNNING  # scheduling goes on
    cp.run_cycle()
    assert cp._unapplied == []


class _StoreDown(ControlPlane):
    """A store that takes no write at all while ``down`` (a database outage)."""

    down = False

    def apply_events(self, session, events) -> None:
        if self.down:
            raise OperationalError("UPDATE jobs", {}, Exception("connection refused"))
        super().apply_events(session, events)

    def _store_answers(self) -> bool:
        return not self.down and super()._store_answers()


def test_an_outage_longer_than_the_retries_loses_no_event(center: Center) -> None:
    jid = center.submit(runtime=100.0)
    engine = TwinEngine(build_fleet("lab"))
    cp = _StoreDown(center.settings, center.factory, engine, center.clock, "fifo")
    cp.run_cycle()
    center.clock.advance_to(T0 + 200)
    cp.down = True
    for _ in range(EVENT_RETRIES + 3):  # whole, then one by one: nothing is dropped
        with pytest.raises(OperationalError):
            cp.run_cycle()
    assert [(e.kind, e.job_id) for e in cp._unapplied] == [
        (EventKind.STARTED, jid), (EventKind.FINISHED, jid)]
    cp.down = False
    cp.run_cycle()
    assert job(center, jid).state == JobState.FINISHED and len(ledger(center, jid)) == 1
    assert cp.stats().last_error == ""
