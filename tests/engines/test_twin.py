"""The twin against the engine contract, plus what only the twin does (adopt, scheduled
failures, shape checks)."""

from __future__ import annotations

import pytest

from aicc.catalog import default_catalog
from aicc.clock import VirtualClock
from aicc.engines import make_engine
from aicc.engines.base import Engine, EventKind
from aicc.engines.twin import TwinEngine
from aicc.errors import ConfigError, UnknownNode
from aicc.fleet import build_fleet
from aicc.fleet.arrays import NODE_DOWN, NODE_UP, FleetArrays, NodeInfo
from engines.contract import EngineContract, EngineHarness, FleetRequest, order, spec


def small_fleet(req: FleetRequest) -> FleetArrays:
    nodes = [NodeInfo(f"tw-n{i}", req.accelerator_type, req.per_node * 4, f"leaf-{i // 2}",
                      "pod-0", "lab") for i in range(req.nodes + 1)]
    return FleetArrays.from_nodes(default_catalog(), nodes)


def twin_harness(req: FleetRequest) -> EngineHarness:
    clock = VirtualClock(1_000_000.0)
    engine = TwinEngine(small_fleet(req))
    return EngineHarness(engine=engine, now=clock.now, advance=clock.sleep,
                         fail_node=lambda node, now: engine.fail_node(node, now),
                         max_wait_s=3600.0, tick_s=0.5)


class TestTwinContract(EngineContract):
    @pytest.fixture
    def make_harness(self):
        return twin_harness


def test_twin_is_an_engine_and_is_built_by_name() -> None:
    engine = make_engine("twin", build_fleet("lab"))
    assert isinstance(engine, Engine)
    assert engine.fleet().n_accelerators == 256
    with pytest.raises(ConfigError):
        make_engine("nope", build_fleet("lab"))


def test_adopt_reestablishes_a_job_without_a_new_start_event() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))
    s = spec(1, "h100-sxm-80g", runtime=100.0, limit=200.0, per_node=8)
    assert engine.adopt(order(s, ["tw-n0"]), start_time=1000.0)
    assert engine.free()[0] == 0
    assert engine.poll(1050.0) == []
    [done] = engine.poll(1100.0)
    assert (done.kind, done.job_id, done.time) == (EventKind.FINISHED, 1, 1100.0)
    assert engine.free()[0] == 8


def test_adopt_of_a_job_past_its_end_finishes_at_its_true_end() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))
    engine.adopt(order(spec(1, "h100-sxm-80g", runtime=10.0), ["tw-n0"]), start_time=0.0)
    [done] = engine.poll(5000.0)
    assert done.time == 10.0


@pytest.mark.parametrize("stop", ["cancel", "preempt"])
def test_a_stop_after_an_unpolled_end_reports_the_end(stop: str) -> None:
    # a job that ended at 1100, not yet polled, is stopped at 1150: it finished at 1100 (the
    # ledger charges what it ran), it was not cancelled or preempted at 1150
    engine = TwinEngine(small_fleet(FleetRequest()))
    engine.start([order(spec(1, "h100-sxm-80g", runtime=100.0, limit=200.0), ["tw-n0"])],
                 1000.0)
    engine.poll(1000.0)  # its start
    getattr(engine, stop)([1], 1150.0)
    [done] = engine.poll(1150.0)
    assert (done.kind, done.job_id, done.time) == (EventKind.FINISHED, 1, 1100.0)
    # one stopped before its end is stopped then
    engine.start([order(spec(2, "h100-sxm-80g", runtime=100.0, limit=200.0), ["tw-n0"])],
                 2000.0)
    engine.poll(2000.0)
    getattr(engine, stop)([2], 2050.0)
    [done] = engine.poll(2050.0)
    assert (done.job_id, done.time) == (2, 2050.0) and done.kind is not EventKind.FINISHED


def test_orders_beyond_capacity_or_type_are_rejected_per_order() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))  # 8 accelerators per node
    engine.start([order(spec(1, "h100-sxm-80g", per_node=6), ["tw-n0"]),
                  order(spec(2, "h100-sxm-80g", per_node=4), ["tw-n0"]),
                  order(spec(3, "ascend-910b"), ["tw-n1"]),
                  order(spec(4, "h100-sxm-80g", per_node=2), ["tw-n0"])], 0.0)
    ev = {e.job_id: e for e in engine.poll(0.0)}
    assert ev[1].kind == EventKind.STARTED and ev[4].kind == EventKind.STARTED
    assert ev[2].kind == EventKind.FAILED and "too few free" in ev[2].reason
    assert ev[3].kind == EventKind.FAILED and "has no ascend-910b" in ev[3].reason
    assert ev[2].extra["phase"] == "launch"
    assert engine.free()[0] == 0


def test_a_retried_start_is_ignored() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))
    o = order(spec(1, "h100-sxm-80g", per_node=4), ["tw-n0"])
    engine.start([o], 0.0)
    engine.start([o], 1.0)
    assert [e.kind for e in engine.poll(1.0)] == [EventKind.STARTED]
    assert engine.free()[0] == 4


def test_scheduled_failure_and_repair() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))
    engine.start([order(spec(1, "h100-sxm-80g", runtime=100.0, limit=200.0, per_node=2),
                        ["tw-n0"])], 0.0)
    engine.schedule_node_failure("tw-n0", at=40.0, repair_after_s=10.0)
    events = engine.poll(45.0)
    kinds = [(e.kind, e.job_id) for e in events]
    assert kinds == [(EventKind.STARTED, 1), (EventKind.NODE_DOWN, None), (EventKind.FAILED, 1)]
    assert events[2].lost_s == pytest.approx(2 * 40.0)
    assert engine.fleet().state[0] == NODE_DOWN and engine.free()[0] == 0
    [up] = engine.poll(60.0)
    assert up.kind == EventKind.NODE_UP and engine.fleet().state[0] == NODE_UP
    assert engine.free()[0] == 8
    with pytest.raises(UnknownNode):
        engine.fail_node("nope", 61.0)


def test_the_twin_holds_a_full_phase() -> None:
    engine = TwinEngine(build_fleet("2028"))
    assert engine.fleet().n_accelerators == 15_000


def test_a_failure_with_a_repair_time_says_when_the_node_returns() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))
    engine.schedule_node_failure("tw-n0", at=40.0, repair_after_s=10.0)
    engine.fail_node("tw-n1", 42.0, repair_after_s=100.0)
    engine.fail_node("tw-n2", 42.0)  # no repair time: down until repaired
    down = {e.node: e for e in engine.poll(45.0)}
    assert float(down["tw-n0"].extra["repair_at"]) == 50.0
    assert float(down["tw-n1"].extra["repair_at"]) == 142.0
    assert "repair_at" not in down["tw-n2"].extra
    assert [(e.node, e.time) for e in engine.poll(200.0)] == [("tw-n0", 50.0), ("tw-n1", 142.0)]
    assert engine.fleet().state[2] == NODE_DOWN


def test_a_restarted_twin_repairs_a_stored_failure_when_due() -> None:
    fleet = small_fleet(FleetRequest())
    fleet.state[0] = NODE_DOWN  # what the store says after the failure
    engine = TwinEngine(fleet)
    assert engine.free()[0] == 0
    engine.schedule_node_repair("tw-n0", at=3600.0)
    assert engine.poll(3599.0) == []
    [up] = engine.poll(1e9)
    assert (up.kind, up.node, up.time) == (EventKind.NODE_UP, "tw-n0", 3600.0)
    assert engine.free()[0] == 8
    with pytest.raises(UnknownNode):
        engine.schedule_node_repair("nope", 1.0)


def test_a_stale_repair_does_not_cut_a_later_failure_short() -> None:
    engine = TwinEngine(small_fleet(FleetRequest()))
    engine.fail_node("tw-n0", 0.0, repair_after_s=100.0)
    engine.repair_node("tw-n0", 10.0)  # repaired early by hand
    engine.fail_node("tw-n0", 20.0, repair_after_s=1000.0)
    events = engine.poll(500.0)
    assert [e.kind for e in events] == [EventKind.NODE_DOWN, EventKind.NODE_UP,
                                        EventKind.NODE_DOWN]
    assert engine.fleet().state[0] == NODE_DOWN  # the first repair (at 100) no longer applies
    [up] = engine.poll(2000.0)
    assert up.time == 1020.0
