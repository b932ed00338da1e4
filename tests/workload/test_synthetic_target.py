"""A synthetic workload for a target load is a function of the target that grows with it: a
higher target gives the same jobs and more, and its offered load (the work submitted over the
stated days) follows the target."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from aicc.workload.synthetic import DAY, generate

TARGETS = (0.2, 0.25, 0.3, 0.5, 0.7, 1.0, 1.5, 2.5)


def _jobs(w) -> set[tuple]:
    return set(zip(w.submit_s.tolist(), w.runtime_s.tolist(), w.gpus.tolist(),
                   w.tenant.tolist(), strict=True))


def test_a_higher_target_gives_the_same_jobs_and_more():
    ws = [generate(days=3, accelerators=2048, load=t, seed=0, fit_load=True) for t in TARGETS]
    for lo, hi in pairwise(ws):
        assert len(lo) < len(hi)
        assert _jobs(lo) <= _jobs(hi)
        assert np.all(np.diff(hi.submit_s) >= 0)  # still in submit order
    for t, w in zip(TARGETS, ws, strict=True):
        assert w.offered_load(2048) == pytest.approx(t, rel=0.1), t  # to one job
        assert w.offered_load(2048) == pytest.approx(w.gpu_seconds / (3 * DAY * 2048))


def test_the_days_are_the_horizon_whatever_the_runtime_tail():
    # a job submitted near the end runs days past it: the load is the rate of work submitted
    w = generate(days=3, accelerators=2048, load=0.5, seed=2, fit_load=True)
    assert float((w.submit_s + w.runtime_s).max()) > 3 * DAY
    assert w.offered_load(2048) == pytest.approx(0.5, rel=0.05)
    # cut to its first jobs, the horizon ends at the last of them
    head = w.head(len(w) // 2)
    assert head.horizon_s == float(head.submit_s[-1])
    # compressed, the horizon shrinks with the submissions
    fast = w.compressed(2.0)
    assert fast.offered_load(2048) == pytest.approx(
        w.gpu_seconds / ((3 * DAY - w.submit_s[0]) / 2 * 2048))


def test_a_trace_keeps_its_window():
    w = generate(days=1, accelerators=256, load=0.5, seed=0)
    assert len(w) > 1
    w.horizon_s = None  # as a trace: over its window, runtime tail included
    assert w.offered_load(256) == pytest.approx(w.gpu_seconds / (w.window_s() * 256))
