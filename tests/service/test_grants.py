"""Every accelerator-hour is charged to a grant: a job whose project holds no active grant for
its type waits with the reason "no active grant"; one submitted before its grant existed is
charged to the grant live when it starts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from aicc.allocation.grants import create_grant, update_grant
from aicc.config import SchedulerConfig
from aicc.engines.slurm.usage import SlurmRun, import_usage
from aicc.engines.twin import TwinEngine
from aicc.fleet import build_fleet
from aicc.ledger import event_id
from aicc.service.snapshot import dt
from aicc.store.db import transaction
from aicc.store.models import (
    Grant,
    GrantState,
    Job,
    JobEventRow,
    JobState,
    LedgerEntry,
    Organization,
    Role,
)
from aicc.tenancy import service as tenancy
from service.conftest import T0, Center


def _grantless_project(center: Center) -> int:
    """A second project of the center's organization, with alice as member and no grant."""
    with transaction(center.factory) as session:
        org = session.scalar(select(Organization))
        project = tenancy.create_project(session=session, name="no-grant-yet",
                                         organization_id=org.id)
        tenancy.create_membership(session=session, user_id=center.user_id, role=Role.MEMBER,
                                  project_id=project.id)
        return project.id


def _job(center: Center, jid: int) -> Job:
    with center.factory() as session:
        return session.get(Job, jid)


def test_a_job_without_a_grant_is_held_and_runs_once_a_grant_exists(center: Center) -> None:
    center.project_id = _grantless_project(center)
    jid = center.submit(per_node=8, runtime=600.0)
    assert _job(center, jid).grant_id is None
    cp = center.control_plane()
    center.run(cp, T0 + 120)
    j = _job(center, jid)
    assert j.state == JobState.PENDING and j.attempts == 0
    assert "no active grant" in j.reason
    assert cp.stats().hold_reasons.get("no_grant") == 1

    with transaction(center.factory) as session:
        gid = create_grant(session=session, project_id=center.project_id,
                           accelerator_type="h100-sxm-80g", accelerator_hours=100,
                           start=dt(T0), end=dt(T0) + timedelta(days=30)).id
    center.run(cp, T0 + 3600)
    j = _job(center, jid)
    assert j.state == JobState.FINISHED and j.grant_id == gid
    with center.factory() as session:
        [entry] = session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == jid))
    assert entry.grant_id == gid and entry.charge > 0


def test_a_job_of_a_type_the_grant_does_not_cover_is_held(center: Center) -> None:
    jid = center.submit(per_node=4, type_name="ascend-910b")
    cp = center.control_plane()
    center.run(cp, T0 + 120)
    j = _job(center, jid)
    assert j.state == JobState.PENDING and "no active grant" in j.reason


def test_without_require_grant_a_grantless_job_runs_uncharged(center: Center) -> None:
    center.project_id = _grantless_project(center)
    center.settings = center.settings.model_copy(
        update={"scheduler": SchedulerConfig(require_grant=False)})
    jid = center.submit(per_node=8, runtime=60.0)
    cp = center.control_plane()
    center.run(cp, T0 + 600)
    j = _job(center, jid)
    assert j.state == JobState.FINISHED and j.grant_id is None


def test_a_job_naming_no_grant_is_never_held_by_a_spent_one_while_another_has_hours(
        center: Center) -> None:
    # the project holds two live H100 grants: A ends first but is spent, B has hours. A job that
    # names no grant runs, charged to B; it was never pinned to A at submission (it would have
    # been held "grant exhausted" for good)
    center.project_id = _grantless_project(center)
    with transaction(center.factory) as session:
        spent = create_grant(session=session, project_id=center.project_id,
                             accelerator_type="h100-sxm-80g", accelerator_hours=1,
                             start=dt(T0 - 86400), end=dt(T0) + timedelta(days=10)).id
        later = create_grant(session=session, project_id=center.project_id,
                             accelerator_type="h100-sxm-80g", accelerator_hours=100,
                             start=dt(T0 - 86400), end=dt(T0) + timedelta(days=30)).id
    first = center.submit(per_node=8, runtime=1800.0, grant_id=spent)  # spends A: 4 h of 1
    cp = center.control_plane()
    center.run(cp, T0 + 3600)
    assert _job(center, first).state == JobState.FINISHED
    jid = center.submit(per_node=8, runtime=600.0)
    assert _job(center, jid).grant_id is None
    center.run(cp, T0 + 7200)
    j = _job(center, jid)
    assert j.state == JobState.FINISHED and j.grant_id == later, (j.state, j.reason)


def _two_grants(center: Center, first_hours: float) -> tuple[int, int]:
    """A grantless project given two live H100 grants: one of ``first_hours`` that ends first,
    and one of 100 hours that ends later."""
    center.project_id = _grantless_project(center)
    with transaction(center.factory) as session:
        first = create_grant(session=session, project_id=center.project_id,
                             accelerator_type="h100-sxm-80g", accelerator_hours=first_hours,
                             start=dt(T0 - 86400), end=dt(T0) + timedelta(days=10)).id
        later = create_grant(session=session, project_id=center.project_id,
                             accelerator_type="h100-sxm-80g", accelerator_hours=100,
                             start=dt(T0 - 86400), end=dt(T0) + timedelta(days=30)).id
    return first, later


def _usage(center: Center, jid: int) -> list[tuple[str, int | None]]:
    """The job's usage entries as (event id, grant charged)."""
    with center.factory() as session:
        rows = session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == jid,
                                                         LedgerEntry.kind == "usage")
                               .order_by(LedgerEntry.id)).all()
        return [(e.event_id, e.grant_id) for e in rows]


def test_a_requeued_job_that_named_no_grant_is_charged_to_the_grant_live_at_its_restart(
        center: Center) -> None:
    # the job starts on grant A (balance left, ends first) and spends it (8 × 600 s > 1 h);
    # preempted, it returns to the queue. It used to keep A and wait "grant exhausted" for
    # good; now its grant is chosen again at the restart: B, which has hours
    first, later = _two_grants(center, first_hours=1)
    jid = center.submit(per_node=8, runtime=1200.0, preemptible=True)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    j = _job(center, jid)
    assert (j.state, j.grant_id, j.grant_named) == (JobState.RUNNING, first, False)
    center.clock.advance_to(T0 + 600)
    engine.preempt([jid], center.clock.now(), reason="reclaimed")
    center.run(cp, T0 + 3600)
    j = _job(center, jid)
    assert (j.state, j.attempts, j.grant_id) == (JobState.FINISHED, 2, later), j.reason
    want = [(event_id(jid, 1, "usage"), first), (event_id(jid, 2, "usage"), later)]
    assert _usage(center, jid) == want
    with center.factory() as session:  # each start's event names its grant
        starts = session.execute(select(JobEventRow.time, JobEventRow.grant_id).where(
            JobEventRow.job_id == jid, JobEventRow.kind == "running")
            .order_by(JobEventRow.id)).all()
    assert [g for _, g in starts] == [first, later]

    # Usage read back from an engine's accounting (sacct) after the loop missed both writes
    # charges each run to the grant of its own start, not the job's latest; the engine starts
    # a run a moment after the loop records it.
    with transaction(center.factory) as session:
        session.execute(delete(LedgerEntry).where(LedgerEntry.job_id == jid))
        runs = [SlurmRun(jid, k, 100 + k, "acct", "COMPLETED", 8, at.timestamp() + 0.4,
                         at.timestamp() + 60.0) for k, (at, _) in enumerate(starts, start=1)]
        assert import_usage(session, runs) == 2  # (counted on PostgreSQL too)
        assert import_usage(session, runs) == 0  # exactly once
    assert _usage(center, jid) == want


def test_a_named_grant_stays_the_jobs_when_it_is_requeued(center: Center) -> None:
    # the same, but the job named A: it stays A's, and waits while A has no hours left
    first, _ = _two_grants(center, first_hours=1)
    jid = center.submit(per_node=8, runtime=1200.0, preemptible=True, grant_id=first)
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    cp.run_cycle()
    center.clock.advance_to(T0 + 600)
    engine.preempt([jid], center.clock.now(), reason="reclaimed")
    center.run(cp, T0 + 3600)
    j = _job(center, jid)
    assert (j.state, j.grant_id, j.grant_named) == (JobState.PENDING, first, True)
    assert "exhausted" in j.reason
    assert _usage(center, jid) == [(event_id(jid, 1, "usage"), first)]


def test_a_job_naming_a_suspended_grant_waits_for_it(center: Center) -> None:
    # the project's other grant has hours, but the job named the suspended one: it waits
    # (grant_inactive) rather than run on the other and be charged to the suspended one;
    # it runs, charged to its grant, once that is active again. So it is without a required
    # grant too.
    center.settings = center.settings.model_copy(
        update={"scheduler": SchedulerConfig(require_grant=False)})
    first, _ = _two_grants(center, first_hours=50)
    jid = center.submit(per_node=8, runtime=600.0, grant_id=first)
    with transaction(center.factory) as session:
        update_grant(session=session, grant_id=first, state=GrantState.SUSPENDED)
    cp = center.control_plane()
    center.run(cp, T0 + 600)
    j = _job(center, jid)
    assert (j.state, j.attempts) == (JobState.PENDING, 0)
    assert j.reason.startswith("the grant the job named for h100-sxm-80g is not in force")
    assert cp.stats().hold_reasons.get("grant_inactive") == 1
    with transaction(center.factory) as session:
        update_grant(session=session, grant_id=first, state=GrantState.ACTIVE)
    center.run(cp, T0 + 2400)
    j = _job(center, jid)
    assert (j.state, j.grant_id) == (JobState.FINISHED, first)
    assert _usage(center, jid) == [(event_id(jid, 1, "usage"), first)]


def test_grants_whose_period_ended_are_expired_by_the_loop(center: Center) -> None:
    # two grants end at T0 + 600, one active and one suspended; a third runs on. Past their
    # end the loop marks both expired (final), and a job that named one waits for it for good
    center.project_id = _grantless_project(center)
    with transaction(center.factory) as session:
        ids = [create_grant(session=session, project_id=center.project_id,
                            accelerator_type="h100-sxm-80g", accelerator_hours=100,
                            start=dt(T0 - 86400), end=dt(T0 + end)).id
               for end in (600, 600, 86400)]
        update_grant(session=session, grant_id=ids[1], state=GrantState.SUSPENDED)
    cp = center.control_plane()
    center.run(cp, T0 + 540)
    jid = center.submit(per_node=8, runtime=60.0, grant_id=ids[0])

    def states() -> list[GrantState]:
        with center.factory() as session:
            return [session.get(Grant, g).state for g in ids]

    assert states() == [GrantState.ACTIVE, GrantState.SUSPENDED, GrantState.ACTIVE]
    center.clock.advance_to(T0 + 600)  # the job's first cycle comes at the grant's end
    cp.run_cycle()
    assert states() == [GrantState.EXPIRED, GrantState.EXPIRED, GrantState.ACTIVE]
    center.run(cp, T0 + 1200)
    j = _job(center, jid)
    assert (j.state, j.attempts) == (JobState.PENDING, 0) and "not in force" in j.reason
