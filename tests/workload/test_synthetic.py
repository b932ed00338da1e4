"""The synthetic sector workload: seeded, calibrated to the asked load, with daily and weekly
cycles."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.errors import InvalidInput
from aicc.workload.synthetic import DAY, DEFAULT_PROFILES, generate, sector_mapping
from aicc.workload.tenants import map_tenants
from aicc.workload.trace import MIN_RUNTIME_S


def test_same_seed_same_workload_and_other_seed_differs():
    a = generate(days=14, accelerators=2048, load=0.7, seed=1)
    b = generate(days=14, accelerators=2048, load=0.7, seed=1)
    c = generate(days=14, accelerators=2048, load=0.7, seed=2)
    assert np.array_equal(a.submit_s, b.submit_s) and np.array_equal(a.gpus, b.gpus)
    assert not np.array_equal(a.submit_s[:50], c.submit_s[:50])


def test_offered_load_and_sector_split_match_the_request():
    w = generate(days=120, accelerators=4096, load=0.7, seed=4)
    demand = w.gpus * w.runtime_s
    assert demand.sum() / (120 * DAY * 4096) == pytest.approx(0.7, rel=0.12)
    tm = map_tenants(w.tenants, 1, mapping=sector_mapping(w))
    sector = tm.project_sector[tm.tenant_project[w.tenant]]
    share = np.bincount(sector, weights=demand) / demand.sum()
    assert share == pytest.approx([0.3, 0.2, 0.5], abs=0.08)


def test_the_rates_assume_the_work_per_job_the_generator_draws():
    # the expected accelerator-seconds per job that sizes the rates is exact (the clipped
    # log-normal's mean): a large sample of the same draw agrees to sampling error, where a
    # coarse quadrature left out the tail and under-stated it by 4-8 %
    rng = np.random.default_rng(0)
    for name, p in DEFAULT_PROFILES.items():
        rt = np.clip(p.median_s * np.exp(p.sigma * rng.standard_normal(2_000_000)),
                     MIN_RUNTIME_S, p.cap_s)
        mean_size = float(np.dot(p.sizes, p.size_p))
        assert p.mean_acc_s() == pytest.approx(mean_size * rt.mean(), rel=0.01), name


def test_daily_and_weekly_cycles():
    w = generate(days=56, accelerators=8192, load=0.7, seed=2)
    hour = (w.submit_s % DAY) // 3600
    afternoon = ((hour >= 12) & (hour < 16)).sum()
    night = ((hour >= 0) & (hour < 4)).sum()
    assert afternoon > 1.5 * night
    weekend = (w.submit_s % (7 * DAY)) >= 5 * DAY
    assert weekend.sum() / 2 < 0.8 * (~weekend).sum() / 5


def test_rejects_bad_parameters():
    with pytest.raises(InvalidInput):
        generate(days=0, accelerators=8)
    with pytest.raises(InvalidInput):
        generate(days=1, accelerators=8, load=-1)


@pytest.mark.parametrize(("days", "load"), [(float("nan"), 0.7), (float("inf"), 0.7),
                                            (1.0, float("nan")), (1.0, float("inf"))])
def test_non_finite_days_or_load_are_refused(days, load):
    with pytest.raises(InvalidInput):
        generate(days=days, accelerators=64, load=load, seed=0)


def test_a_fitted_workload_offers_the_target_over_its_days():
    # the work submitted over the days is the target to about one job (~50-80 jobs on 256
    # accelerators over 2 days, one of which can move it by several percent)
    loads = []
    for seed in range(10):
        w = generate(days=2, accelerators=256, load=0.7, seed=seed, max_gpus=128,
                     fit_load=True)
        assert w.gpus.max() <= 128 and w.account.rows_read == len(w)
        assert w.horizon_s == 2 * DAY
        assert w.offered_load(256) == pytest.approx(w.gpu_seconds / (2 * DAY * 256))
        loads.append(w.offered_load(256))
    assert np.median(loads) == pytest.approx(0.7, abs=0.05)
    again = generate(days=2, accelerators=256, load=0.7, seed=3, max_gpus=128, fit_load=True)
    w = generate(days=2, accelerators=256, load=0.7, seed=3, max_gpus=128, fit_load=True)
    assert np.array_equal(again.submit_s, w.submit_s) and np.array_equal(again.gpus, w.gpus)


def test_max_gpus_merges_larger_gangs_into_the_largest_that_fits():
    w = generate(days=30, accelerators=256, load=0.7, seed=0, max_gpus=64)
    assert set(np.unique(w.gpus)) <= {1, 2, 4, 8, 16, 32, 64} and (w.gpus == 64).any()
    with pytest.raises(InvalidInput):
        generate(days=1, accelerators=8, max_gpus=0)
