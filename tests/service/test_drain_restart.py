"""A drained node across a restart: `aicc serve` builds its twin from the store's fleet, drains
included. A drain stops new starts only; the jobs already on the node run to their end, and
after an undrain the node takes jobs again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from aicc.engines.twin import TwinEngine
from aicc.service.snapshot import load_fleet
from aicc.store.db import transaction
from aicc.store.models import Job, JobState, LedgerEntry, Node, NodeState
from service.conftest import T0, Center


def _set_node(center: Center, name: str, state: NodeState) -> None:
    with transaction(center.factory) as session:  # what POST /v1/nodes/{id}/drain stores
        node = session.scalar(select(Node).where(Node.name == name))
        node.state, node.state_reason = state, "maintenance" if state == NodeState.DRAIN else ""


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
