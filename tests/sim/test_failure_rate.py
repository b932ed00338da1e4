"""Random node failures keep their rate for the whole run: after the only node went down and
came back, across quiet spells, and at the capacity in service after each repair."""

from __future__ import annotations

import numpy as np

from aicc.sim.loop import FailureModel, SimConfig, simulate

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
