"""Store services on SQLite and PostgreSQL: seeding, fleet sync, job life cycle, constraints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from aicc.errors import InvalidPeriod, InvalidTransition, UnknownProject
from aicc.fleet import build_fleet
from aicc.fleet.phases import node_infos, phase
from aicc.store.db import session_factory, transaction
from aicc.store.models import (
    TRANSITIONS,
    AcceleratorTypeRow,
    Job,
    JobEventRow,
    JobState,
    LedgerEntry,
    Node,
    NodeState,
    Sector,
)
from aicc.store.seed import seed_catalog, seed_default_sectors, sync_fleet
from aicc.tenancy import service
from aicc.tenancy.access import Principal, load_principal
from aicc.workload.jobs import Gang, JobSubmission, submit_job, transition

T0 = datetime(2028, 1, 1, tzinfo=UTC)


def _tenant(engine: Engine) -> tuple[int, Principal]:
    with transaction(session_factory(engine)) as s:
        sectors = {x.name: x.id for x in seed_default_sectors(s)}
        sync_fleet(s, build_fleet("lab"), site="lab")
        org = service.create_organization(session=s, name="lab-org",
                                          sector_id=sectors["research"])
        project = service.create_project(session=s, name="p", organization_id=org.id)
        user = service.create_user(session=s, name="u")
        service.create_membership(session=s, user_id=user.id, role="member",
                                  project_id=project.id)
        return project.id, load_principal(session=s, user=user)


def test_seed_is_idempotent_with_default_shares(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    for _ in range(2):
        with transaction(factory) as s:
            seed_catalog(s)
            seed_default_sectors(s)
    with factory() as s:
        n_types = s.scalar(select(func.count()).select_from(AcceleratorTypeRow))
        assert n_types and n_types >= 6
        shares = {sec.name: {e.share for e in sec.entitlements}
                  for sec in s.scalars(select(Sector))}
    assert shares == {"industry": {0.3}, "research": {0.2}, "public": {0.5}}


def test_sync_fleet_keeps_operator_state(migrated_engine: Engine) -> None:
    factory = session_factory(migrated_engine)
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        assert sync_fleet(s, fleet, site="lab") == fleet.n_nodes
    with transaction(factory) as s:
        node = s.scalar(select(Node).order_by(Node.id).limit(1))
        assert node is not None
        node.drained = True
    with transaction(factory) as s:
        assert sync_fleet(s, node_infos(phase("lab"))) == 0
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Node)) == fleet.n_nodes
        states = s.scalars(select(Node.state).order_by(Node.id)).all()
        drained = s.scalars(select(Node.drained).order_by(Node.id)).all()
        assert set(states) == {NodeState.UP}
        assert drained[0] and not any(drained[1:])
        assert s.scalar(select(func.sum(Node.accelerators))) == fleet.n_accelerators


def test_job_life_cycle_follows_transitions(migrated_engine: Engine) -> None:
    pid, principal = _tenant(migrated_engine)
    factory = session_factory(migrated_engine)
    spec = JobSubmission(project_id=pid, accelerator_type="ascend-910b",
                         gang=Gang(nodes=2, per_node=8), time_limit_s=600)
    with transaction(factory) as s:
        job, created = submit_job(session=s, principal=principal, spec=spec,
                                  idempotency_key="a", now=T0)
        assert created
        jid = job.id
    with transaction(factory) as s:
        again, created = submit_job(session=s, principal=principal.user_id, spec=spec,
                                    idempotency_key="a", now=T0)
        assert not created and again.id == jid
    path = [JobState.RUNNING, JobState.PREEMPTED, JobState.PENDING, JobState.RUNNING,
            JobState.FINISHED]
    for k, state in enumerate(path, start=1):
        with transaction(factory) as s:
            transition(session=s, job=jid, to=state, at=T0 + timedelta(minutes=k),
                       reason=state.value, placement=["n1", "n2"])
    with factory() as s:
        job = s.get(Job, jid)
        assert job is not None
        assert job.state == JobState.FINISHED and job.attempts == 2
        assert job.started_at == T0 + timedelta(minutes=4)
        assert job.ended_at == T0 + timedelta(minutes=5)
        kinds = s.scalars(select(JobEventRow.kind).where(JobEventRow.job_id == jid)
                          .order_by(JobEventRow.id)).all()
        assert kinds == ["submitted", *[p.value for p in path]]
    for bad in JobState:
        if bad in TRANSITIONS[JobState.FINISHED]:
            continue
        with pytest.raises(InvalidTransition), transaction(factory) as s:
            transition(session=s, job=jid, to=bad, at=T0 + timedelta(hours=1))
    with factory() as s:
        assert s.get(Job, jid).state == JobState.FINISHED  # type: ignore[union-attr]


def test_foreign_project_and_bad_period_refused(migrated_engine: Engine) -> None:
    pid, principal = _tenant(migrated_engine)
    from aicc.allocation.grants import create_grant

    stranger = Principal(user_id=principal.user_id, name="x")
    spec = JobSubmission(project_id=pid, accelerator_type="h100-sxm-80g",
                         gang=Gang(per_node=2), time_limit_s=60)
    with pytest.raises(UnknownProject), transaction(session_factory(migrated_engine)) as s:
        submit_job(session=s, principal=stranger, spec=spec)
    with pytest.raises(InvalidPeriod), transaction(session_factory(migrated_engine)) as s:
        create_grant(session=s, project_id=pid, accelerator_type="h100-sxm-80g",
                     accelerator_hours=5, start=T0, end=T0 - timedelta(days=1))


def test_ledger_event_id_is_unique(migrated_engine: Engine) -> None:
    pid, _ = _tenant(migrated_engine)
    factory = session_factory(migrated_engine)

    def entry() -> LedgerEntry:
        return LedgerEntry(event_id="job-1-final", project_id=pid,
                           accelerator_type="h100-sxm-80g", accelerator_seconds=3600.0,
                           period_start=T0, period_end=T0 + timedelta(hours=1))

    with transaction(factory) as s:
        s.add(entry())
    with pytest.raises(IntegrityError), transaction(factory) as s:
        s.add(entry())
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_batch_maps_every_result_to_its_request(migrated_engine: Engine) -> None:
    """One batch with valid, refused, duplicate-key and replayed submissions: each caller gets
    its own answer, and the stored rows are exactly the valid distinct ones."""
    from aicc.errors import InvalidJobShape, UnknownAcceleratorType
    from aicc.workload.jobs import SubmitRequest, submit_jobs

    pid, member = _tenant(migrated_engine)
    factory = session_factory(migrated_engine)
    with transaction(factory) as s:
        admin_user = service.create_user(session=s, name="root", is_admin=True)
        admin = load_principal(session=s, user=admin_user)

    def spec(per_node: int, name: str = "", t: str = "h100-sxm-80g") -> JobSubmission:
        return JobSubmission(project_id=pid, accelerator_type=t, gang=Gang(per_node=per_node),
                             time_limit_s=60, name=name)

    with transaction(factory) as s:
        (first, _), = [submit_job(session=s, principal=member, spec=spec(1, "old"),
                                  idempotency_key="old")]
        first_id = first.id
    batch = [
        SubmitRequest(member, spec(2, "a"), "k1"),
        SubmitRequest(member, spec(9, "too-big"), "k2"),
        SubmitRequest(admin, spec(2, "a"), "k1"),  # same key, other user: its own job
        SubmitRequest(member, spec(2, "a"), "k1"),  # same user and key in one batch
        SubmitRequest(member, spec(1, "old"), "old"),  # a replay of an earlier submission
        SubmitRequest(member, spec(1, "x", t="tpu"), None),
        SubmitRequest(member, spec(3, "b"), None),
        SubmitRequest(member, spec(3, "b"), None),  # same content, no key: two jobs
    ]
    with transaction(factory) as s:
        res = submit_jobs(session=s, requests=batch, now=T0)
    assert [r.created for r in res] == [True, False, True, False, False, False, True, True]
    assert isinstance(res[1].error, InvalidJobShape)
    assert isinstance(res[5].error, UnknownAcceleratorType)
    assert res[3].job_id == res[0].job_id != res[2].job_id
    assert res[4].job_id == first_id and res[4].job["name"] == "old"  # type: ignore[index]
    assert res[6].job_id != res[7].job_id
    assert res[2].job["submitted_by"] == admin.user_id  # type: ignore[index]
    with factory() as s:
        stored = {j.id: (j.submitted_by, j.idempotency_key, j.per_node, j.name)
                  for j in s.scalars(select(Job))}
    assert stored == {
        first_id: (member.user_id, "old", 1, "old"),
        res[0].job_id: (member.user_id, "k1", 2, "a"),
        res[2].job_id: (admin.user_id, "k1", 2, "a"),
        res[6].job_id: (member.user_id, None, 3, "b"),
        res[7].job_id: (member.user_id, None, 3, "b"),
    }
    for r in res:
        if r.job is not None:
            assert stored[r.job_id][3] == r.job["name"]  # type: ignore[index]
