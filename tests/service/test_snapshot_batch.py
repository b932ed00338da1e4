"""Store → snapshot arrays, and batched job transitions with their guard."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from aicc.errors import Conflict, InvalidTransition
from aicc.ledger import insert_ignore
from aicc.service.batch import Batch, load_rows
from aicc.service.snapshot import SnapshotBuilder, dt
from aicc.store.db import transaction
from aicc.store.models import Job, JobEventRow, JobState
from service.conftest import T0, Center


def test_the_snapshot_reflects_the_store(center: Center) -> None:
    running = center.submit(nodes=2, per_node=8, runtime=1000.0)
    waiting = center.submit(per_node=4)
    other = center.submit(per_node=2, type_name="ascend-910b")
    cp = center.control_plane()
    with transaction(center.factory) as session:
        # (the control loop charges a start to the grant live then, and stores it)
        session.execute(update(Job).where(Job.id == running).values(grant_id=center.grant_id))
        job = load_rows(session, [running])[running]
        b = Batch()
        b.move(job, JobState.RUNNING, dt(T0), placement=["lab-p00-l000-n00000",
                                                          "lab-p00-l000-n00001"])
        b.write(session)
        insert_ignore(session, [{"event_id": "manual:1", "kind": "usage", "job_id": None,
                                 "project_id": center.project_id, "grant_id": center.grant_id,
                                 "accelerator_type": "h100-sxm-80g",
                                 "accelerator_seconds": 3600.0, "period_start": dt(T0 - 7200),
                                 "period_end": dt(T0 - 3600)}])
    builder = SnapshotBuilder(half_life_s=3600.0)
    with center.factory() as session:
        built = builder.build(session, T0 + 100)
    snap = built.snapshot
    assert snap.fleet.n_accelerators == 256
    assert snap.free[:2].tolist() == [0, 0] and int(snap.free.sum()) == 256 - 16
    assert snap.running.id.tolist() == [running]
    assert snap.running.allocation(0) == [(0, 8), (1, 8)]
    assert snap.running.start_time.tolist() == [T0]
    assert snap.pending.id.tolist() == [waiting, other]
    assert snap.pending.type_idx.tolist() == [snap.fleet.catalog.index("h100-sxm-80g"),
                                              snap.fleet.catalog.index("ascend-910b")]
    assert snap.pending.grant.tolist() == [0, -1]  # the project's only grant is for H100
    assert snap.tenancy.project_names == ["open-llm"]
    assert snap.tenancy.sector_names[snap.tenancy.project_sector[0]] == "research"
    # charged 3600 s + running 16 accelerators × 100 s
    assert snap.grants.used_s.tolist() == [pytest.approx(3600.0 + 1600.0)]
    # usage: 3600 s decayed over one half-life (it ended at T0 - 3600, now T0 + 100 ≈ 1.03
    # half-lives later) plus the running accrual
    expected = 3600.0 * 0.5 ** ((T0 + 100 - (T0 - 3600)) / 3600.0) + 1600.0
    assert snap.usage_decayed_s.tolist() == [pytest.approx(expected)]
    del cp


def test_a_batch_refuses_illegal_moves_and_concurrent_changes(center: Center) -> None:
    jid = center.submit()
    with transaction(center.factory) as session:
        job = load_rows(session, [jid])[jid]
        with pytest.raises(InvalidTransition):
            Batch().move(job, JobState.FINISHED, dt(T0))
    # Someone else cancels the job between our read and our write.
    with center.factory() as session:
        stale = load_rows(session, [jid])[jid]
    with transaction(center.factory) as session:
        session.get(Job, jid).state = JobState.CANCELLED
    batch = Batch()
    batch.move(stale, JobState.RUNNING, dt(T0), placement=["lab-p00-l000-n00000"])
    with pytest.raises(Conflict), transaction(center.factory) as session:
        batch.write(session)
    with center.factory() as session:
        assert session.get(Job, jid).state == JobState.CANCELLED
        kinds = session.scalars(select(JobEventRow.kind).where(JobEventRow.job_id == jid)).all()
    assert kinds == ["submitted"]


def test_a_batch_writes_the_same_fields_as_a_single_transition(center: Center) -> None:
    jid = center.submit()
    with transaction(center.factory) as session:
        job = load_rows(session, [jid])[jid]
        b = Batch()
        b.move(job, JobState.RUNNING, dt(T0), "running", ["lab-p00-l000-n00003"])
        b.move(job, JobState.PREEMPTED, dt(T0 + 60), "reclaimed")
        b.move(job, JobState.PENDING, dt(T0 + 60), "requeued")
        b.move(job, JobState.RUNNING, dt(T0 + 120), "running", ["lab-p00-l000-n00002"])
        assert b.write(session) == 1
    with center.factory() as session:
        j = session.get(Job, jid)
        events = session.execute(select(JobEventRow.kind, JobEventRow.time)
                                 .where(JobEventRow.job_id == jid)
                                 .order_by(JobEventRow.id)).all()
    assert (j.state, j.attempts, j.placement) == (JobState.RUNNING, 2, ["lab-p00-l000-n00002"])
    assert j.started_at == dt(T0 + 120) and j.ended_at is None
    assert [k for k, _ in events] == ["submitted", "running", "preempted", "pending", "running"]
    assert events[-1][1] - events[1][1] == timedelta(seconds=120)
    assert np.isclose(j.started_at.timestamp(), T0 + 120)
