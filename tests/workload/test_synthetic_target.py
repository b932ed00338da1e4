"""A synthetic workload for a target load is a function of the target that grows with it: a
higher target gives the same jobs and more, and its offered load (the work submitted over the
stated days) follows the target."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from aicc.errors import InvalidInput
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
        # to one job of each sector: 3 days of 2,048 accelerators at 0.2 is a few dozen jobs
        assert w.offered_load(2048) == pytest.approx(t, rel=0.2), t
        assert w.offered_load(2048) == pytest.approx(w.gpu_seconds / (3 * DAY * 2048))


def _sector_shares(w) -> dict[str, float]:
    sector = np.array([w.tenants[i].split("-org")[0] for i in w.tenant])
    work = w.gpus * w.runtime_s
    return {s: float(work[sector == s].sum() / work.sum())
            for s in ("industry", "research", "public")}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_sector_offers_its_share_of_the_target(seed: int) -> None:
    # sector by sector: a few jobs of one sector's heavy tail cannot fill the target on a
    # small fleet and leave another sector out (before, two days on the lab fleet, 256
    # accelerators, gave industry no job for seeds 0, 1 and 2)
    month = _sector_shares(generate(days=30, accelerators=256, load=0.7, seed=seed,
                                    max_gpus=128, fit_load=True))
    for sector, share in (("industry", 0.3), ("research", 0.2), ("public", 0.5)):
        assert month[sector] == pytest.approx(share, abs=0.03), (sector, month)
    two_days = generate(days=2, accelerators=256, load=0.7, seed=seed, max_gpus=128,
                        fit_load=True)
    sectors = {two_days.tenants[i].split("-org")[0] for i in two_days.tenant}
    assert sectors == {"industry", "research", "public"}


def test_the_days_are_the_horizon_whatever_the_runtime_tail():
    # a job submitted near the end runs days past it: the load is the rate of work submitted
    w = generate(days=3, accelerators=2048, load=0.5, seed=2, fit_load=True)
    assert float((w.submit_s + w.runtime_s).max()) > 3 * DAY
    assert w.offered_load(2048) == pytest.approx(0.5, rel=0.1)
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


@pytest.mark.parametrize("shares", [{"industry": 0.0, "research": 0.0, "public": 0.0},
                                    {"industry": -0.1, "research": 0.5, "public": 0.6},
                                    {"industry": float("nan"), "research": 0.5,
                                     "public": 0.5}])
def test_sector_shares_are_checked(shares: dict[str, float]) -> None:
    with pytest.raises(InvalidInput) as e:
        generate(days=1, accelerators=256, shares=shares, fit_load=True)
    assert e.value.field == "shares"
