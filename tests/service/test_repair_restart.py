"""A node down for a failure across a restart: `aicc serve` builds its twin from the store's
fleet, so the repair the previous twin had scheduled in memory must come from the store
(``nodes.repair_at``), or the node stays down for ever. Nodes taken out on purpose (drained) or
down with no repair due stay as they are."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from aicc.clock import VirtualClock
from aicc.engines.twin import TwinEngine
from aicc.fleet.arrays import NODE_DOWN
from aicc.service.serve import build_service
from aicc.store.db import transaction
from aicc.store.models import Node, NodeState
from service.test_serve import quiet, settings_for


def _nodes(factory) -> dict[str, Node]:
    with factory() as session:
        return {n.name: n for n in session.scalars(select(Node))}


def test_a_failed_node_is_repaired_on_time_after_a_restart(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    svc = build_service(s, say=quiet)
    twin = svc.engine
    assert isinstance(twin, TwinEngine)
    failed, broken, drained = twin.fleet().names[:3]
    t0 = svc.clock.now()
    twin.fail_node(failed, t0, repair_after_s=3600.0)
    twin.fail_node(broken, t0)  # no repair time: down until someone repairs it
    with transaction(svc.factory) as session:  # what POST /v1/nodes/{id}/drain stores
        session.scalar(select(Node).where(Node.name == drained)).drained = True
    svc.control_plane.run_cycle()
    svc.close()
    rows = _nodes(svc.factory)
    assert rows[failed].state == NodeState.DOWN and rows[broken].state == NodeState.DOWN
    assert rows[failed].repair_at is not None
    assert abs(rows[failed].repair_at.timestamp() - (t0 + 3600.0)) < 1e-3
    assert rows[broken].repair_at is None

    again = build_service(s, say=quiet)
    try:
        fleet = again.engine.fleet()
        index = fleet.node_index()
        assert fleet.state[index[failed]] == NODE_DOWN
        clock = VirtualClock(t0 + 3599.0)  # move the restarted center's time by hand
        again.control_plane.clock = clock
        again.control_plane.run_cycle()
        assert _nodes(again.factory)[failed].state == NodeState.DOWN  # not before its time
        clock.advance_to(t0 + 3600.0 + 86_400.0)
        again.control_plane.run_cycle()
        rows = _nodes(again.factory)
        assert rows[failed].state == NodeState.UP and rows[failed].repair_at is None
        assert abs(rows[failed].updated_at.timestamp() - (t0 + 3600.0)) < 1e-3  # up on time
        assert rows[broken].state == NodeState.DOWN
        assert rows[drained].state == NodeState.UP and rows[drained].drained
    finally:
        again.close()
