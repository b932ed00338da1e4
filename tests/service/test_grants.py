"""Every accelerator-hour is charged to a grant: a job whose project holds no active grant for
its type waits with the reason "no active grant"; one submitted before its grant existed is
charged to the grant live when it starts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from aicc.allocation.grants import create_grant
from aicc.config import SchedulerConfig
from aicc.service.snapshot import dt
from aicc.store.db import transaction
from aicc.store.models import Job, JobState, LedgerEntry, Organization, Role
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
