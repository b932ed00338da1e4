"""A drained node across a restart: `aicc serve` builds its twin from the store's fleet, drains
included. A drain stops new starts only; the jobs already on the node run to their end, and
after an undrain the node takes jobs again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aicc.engines.twin import TwinEngine
from aicc.fleet import build_fleet
from aicc.service.snapshot import load_fleet
from aicc.store.db import transaction
from aicc.store.models import Job, JobState, LedgerEntry, Node, NodeState
from service.conftest import T0, Center


def _set_node(center: Center, name: str, state: NodeState) -> None:
    with transaction(center.factory) as session:  # what POST /v1/nodes/{id}/drain stores
        node = session.scalar(select(Node).where(Node.name == name))
        node.drained = state == NodeState.DRAIN
        node.drain_reason = "maintenance" if node.drained else ""


def _restarted(center: Center):
    """A new process: a twin built from the store's fleet, as `aicc serve` builds it."""
    with center.factory() as session:
        fleet, _ = load_fleet(session)
    engine = TwinEngine(fleet)
    return engine, center.control_plane(engine)


def test_a_job_on_a_drained_node_survives_a_restart_and_the_node_returns_after_undrain(
        center: Center) -> None:
    jid = center.submit(runtime=1000.0)
    center.control_plane().run_cycle()
    with center.factory() as session:
        job = session.get(Job, jid)
        assert job.state == JobState.RUNNING
        [node] = job.placement
    _set_node(center, node, NodeState.DRAIN)
    center.clock.advance_to(T0 + 300)
    engine, cp = _restarted(center)
    assert cp.reconcile(center.clock.now())["requeued"] == 0
    assert [r.job_id for r in engine.running()] == [jid]
    center.run(cp, T0 + 1200)
    with center.factory() as session:
        job = session.get(Job, jid)
        assert (job.state, job.attempts) == (JobState.FINISHED, 1)
        [entry] = session.scalars(select(LedgerEntry).where(LedgerEntry.job_id == jid)).all()
        assert entry.kind == "usage" and entry.accelerator_seconds == pytest.approx(8 * 1000)

    # Restart once more while drained, then undrain: every H100 node, this one included,
    # takes a job (the lab fleet has 16 H100 nodes of 8).
    engine, cp = _restarted(center)
    _set_node(center, node, NodeState.UP)
    jobs = [center.submit(runtime=1000.0) for _ in range(16)]
    cp.run_cycle()
    with center.factory() as session:
        rows = session.scalars(select(Job).where(Job.id.in_(jobs))).all()
        assert {j.state for j in rows} == {JobState.RUNNING}, {j.reason for j in rows}
        assert any(j.placement == [node] for j in rows)


def test_a_drain_outlives_the_engine_reporting_the_node_down_and_up_again(
        center: Center) -> None:
    """The drain is the operator's, health is the engine's: a drained node that fails and is
    repaired comes back healthy but still drained, and takes no new job until undrained."""
    engine = TwinEngine(build_fleet("lab"))
    cp = center.control_plane(engine)
    h100 = [n for n, t in zip(engine.fleet().names, engine.fleet().type_idx, strict=True)
            if engine.fleet().catalog.types[int(t)].name == "h100-sxm-80g"]
    node = h100[0]
    _set_node(center, node, NodeState.DRAIN)
    engine.fail_node(node, center.clock.now(), repair_after_s=120.0)
    cp.run_cycle()
    with center.factory() as session:
        row = session.scalar(select(Node).where(Node.name == node))
        assert (row.state, row.drained) == (NodeState.DOWN, True)
    center.run(cp, T0 + 600)
    with center.factory() as session:
        row = session.scalar(select(Node).where(Node.name == node))
        assert (row.state, row.drained, row.drain_reason) == (NodeState.UP, True,
                                                               "maintenance")

    jobs = [center.submit(runtime=1000.0) for _ in range(len(h100))]
    cp.run_cycle()
    with center.factory() as session:
        rows = session.scalars(select(Job).where(Job.id.in_(jobs))).all()
        assert sorted(j.state for j in rows).count(JobState.PENDING) == 1
        assert all(node not in (j.placement or []) for j in rows)

    _set_node(center, node, NodeState.UP)  # undrain
    cp.run_cycle()
    with center.factory() as session:
        rows = session.scalars(select(Job).where(Job.id.in_(jobs))).all()
        assert {j.state for j in rows} == {JobState.RUNNING}, {j.reason for j in rows}
        assert any(j.placement == [node] for j in rows)
