"""Random node failures keep their rate for the whole run: after the only node went down and
came back, across quiet spells, and at the capacity in service after each repair."""

from __future__ import annotations

import numpy as np

from aicc.catalog import default_catalog
from aicc.fleet.arrays import FleetArrays, NodeInfo
from aicc.sim.jobs import prepare
from aicc.sim.loop import FailureModel, SimConfig, simulate
from aicc.sim.metrics import summarize
from aicc.workload.tenants import map_tenants

from .helpers import setup, workload


def _count(nodes: int, rate: float, repair_s: float, submit: np.ndarray, runtime: float,
           seed: int) -> tuple[int, float]:
    w = workload(submit, [runtime] * len(submit), [1] * len(submit))
    jobs, fleet, tm = setup(w, nodes=nodes)
    fm = FailureModel(rate_per_accelerator_s=rate, repair_s=repair_s, max_requeues=10**6)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", failures=fm, seed=seed))
    return r.failures, r.end_time


def test_failures_go_on_after_the_only_node_was_repaired():
    # one 8-accelerator node, jobs back to back for about 2e6 s: the expected count is
    # rate × 8 × time in service (repairs are short), about 100
    submit = np.arange(200) * 10_000.0
    counts = []
    for seed in range(3):
        n, end = _count(1, 6.25e-6, 60.0, submit, 9_000.0, seed)
        counts.append(n / (6.25e-6 * 8 * end))
    assert 0.8 < float(np.mean(counts)) < 1.2, counts


def test_failures_go_on_across_a_quiet_spell():
    # a burst, a week with nothing running or arriving, another burst: failures resume with
    # the second burst's work
    submit = np.r_[np.arange(50) * 2_000.0, 7 * 86_400.0 + np.arange(50) * 2_000.0]
    w = workload(submit, [1_500.0] * 100, [8] * 100)
    jobs, fleet, tm = setup(w, nodes=4)
    fm = FailureModel(rate_per_accelerator_s=2e-6, repair_s=60.0, max_requeues=10**6)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", failures=fm, seed=1,
                                                     sample_s=600.0))
    down = r.series["capacity_up"] < r.series["capacity_up"].max()
    t = r.series["time"]
    assert down[t > 7 * 86_400.0].any()  # nodes fail during the second burst too
    assert r.end_time < 7 * 86_400.0 + 50 * 2_000.0 + 86_400.0  # the run ends with its work


def test_failures_strike_nodes_in_proportion_to_their_accelerators():
    # one type on 4 nodes of 8 and 4 of 56: 7/8 of the accelerators are on the large nodes,
    # and so are 7/8 of the failures of a process over accelerators (not 1/2, as per node)
    infos = [NodeInfo(f"n{i}", "h100-sxm-80g", 8 if i < 4 else 56, "leaf-0", "pod-0", "sim")
             for i in range(8)]
    fleet = FleetArrays.from_nodes(default_catalog(), infos)
    w = workload(np.arange(400) * 1000.0, [900.0] * 400, [1] * 400)
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project)
    fm = FailureModel(rate_per_accelerator_s=5e-6, repair_s=10.0, max_requeues=10**6)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", failures=fm, seed=1))
    assert r.node_failures is not None and r.node_failures.sum() == r.failures > 200
    assert 0.82 < r.node_failures[4:].sum() / r.failures < 0.93
    assert summarize(r)["failures"]["node_failures_by_type"] == {"h100-sxm-80g": r.failures}
