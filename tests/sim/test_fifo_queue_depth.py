"""FIFO replays hand the scheduler only the head of each type's queue: the same decisions as
the whole queue, on one type and on two, with failures that requeue jobs out of submit order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aicc.catalog import default_catalog
from aicc.fleet.arrays import FleetArrays, NodeInfo
from aicc.sim.jobs import prepare
from aicc.sim.loop import FailureModel, SimConfig, Simulator
from aicc.sim.scenario import custom_fleet
from aicc.workload.readers import read_trace
from aicc.workload.tenants import map_tenants

PHILLY = Path(__file__).resolve().parents[1] / "data" / "traces" / "philly-first3000.csv"


def _fleet(spec: list[tuple[str, int, int]]) -> FleetArrays:
    """Nodes per (type, count, accelerators per node)."""
    infos, i = [], 0
    for type_name, count, per_node in spec:
        for _ in range(count):
            infos.append(NodeInfo(f"n{i:03d}", type_name, per_node, f"leaf-{i // 8}", "pod-0",
                                  "sim"))
            i += 1
    return FleetArrays.from_nodes(default_catalog(), infos)


def _run(fleet: FleetArrays, failures: bool, depth: bool) -> tuple[Simulator, list[int]]:
    w = read_trace(PHILLY)
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project)
    fm = FailureModel(rate_per_accelerator_s=2e-6, repair_s=3600.0) if failures else None
    sim = Simulator(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", failures=fm, seed=3))
    sim._queue_depth = sim._queue_depth and depth
    shown: list[int] = []  # pending rows left out of each cycle's snapshot
    snapshot = sim.snapshot

    def spy(now=None, pend=None):
        shown.append(sim.n_pending - len(pend))
        return snapshot(now, pend)

    sim.snapshot = spy
    sim.run()
    return sim, shown


@pytest.mark.parametrize("failures", [False, True])
@pytest.mark.parametrize("spec", [
    [("h100-sxm-80g", 10, 8)],
    [("h100-sxm-80g", 6, 8), ("ascend-910b", 5, 8)],
], ids=["one-type", "two-types"])
def test_head_of_the_queue_decides_as_the_whole_queue(spec, failures):
    fleet = _fleet(spec)
    whole, _ = _run(fleet, failures, depth=False)
    head, left_out = _run(fleet, failures, depth=True)
    assert sum(left_out) > 0  # the queue was cut in some cycles
    for col in ("state", "first_start", "end", "preemptions", "interruptions", "lost_s"):
        np.testing.assert_array_equal(getattr(head, col), getattr(whole, col), err_msg=col)
    if failures:
        assert head.n_failures > 0 and head.interruptions.sum() > 0


def test_whole_queue_where_the_screen_needs_node_sizes():
    # a type with nodes of two sizes: the screen holds gangs by the nodes that hold their share
    fleet = _fleet([("h100-sxm-80g", 4, 8), ("h100-sxm-80g", 4, 4)])
    w = read_trace(PHILLY)
    tm = map_tenants(w.tenants, len(fleet.catalog))
    sim = Simulator(prepare(w, fleet, tm.tenant_project), fleet, tm.tenancy,
                    SimConfig(policy="fifo"))
    assert not sim._queue_depth
    assert Simulator(prepare(w, custom_fleet(4, "h100-sxm-80g"), tm.tenant_project),
                     custom_fleet(4, "h100-sxm-80g"), tm.tenancy,
                     SimConfig(policy="fifo"))._queue_depth


def test_a_fifo_policy_keeps_its_fast_paths_whatever_its_entitlements_flag():
    # entitlements act only under fair share (Policy.lends): FIFO with the flag left on is FIFO
    from aicc.scheduler import Policy

    w = read_trace(PHILLY)
    fleet = custom_fleet(4, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project)
    sim = Simulator(jobs, fleet, tm.tenancy,
                    SimConfig(policy=Policy(name="fifo", backfill=False, preemption=False)))
    assert sim._fifo and sim._queue_depth
