"""Start-time forecast: a fork of live state, checked by hand and against a replay."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.scheduler.snapshot import Grants, JobSpec, JobTable, Snapshot
from aicc.sim.forecast import forecast_all, forecast_start, measure_error
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import map_tenants

from .helpers import setup, workload


def _snapshot():
    fleet = custom_fleet(1, "h100-sxm-80g")
    tm = map_tenants(["t"], len(fleet.catalog))
    t = fleet.catalog.index("h100-sxm-80g")
    # A (id 10) runs 8 accelerators since t=0 with a 2 h limit; B (11, 8) and C (12, 4) wait
    running = JobTable.from_specs(
        [JobSpec(10, 0, t, 1, 8, 7200.0, submit_time=0.0, start_time=0.0)], [[(0, 8)]])
    pending = JobTable.from_specs([
        JobSpec(11, 0, t, 1, 8, 3600.0, submit_time=100.0),
        JobSpec(12, 0, t, 1, 4, 1800.0, submit_time=200.0),
    ])
    return Snapshot(now=1000.0, fleet=fleet, free=np.zeros(1, dtype=np.int16), running=running,
                    pending=pending, tenancy=tm.tenancy, grants=Grants.empty(),
                    usage_decayed_s=np.zeros(1))


def test_forecast_by_hand():
    snap = _snapshot()
    f = forecast_start(snap, 11, "fifo", min_cycle_s=0.0)
    # A ends at its limit (7200); B starts then and holds the node for its 1 h limit
    assert f.predicted_start == 7200.0 and f.wait_s == 6200.0
    starts, _ = forecast_all(snap, "fifo", min_cycle_s=0.0)
    assert starts == {11: 7200.0, 12: 7200.0 + 3600.0}
    assert forecast_start(snap, 10, "fifo").predicted_start == 0.0  # running: its real start
    with pytest.raises(KeyError):
        forecast_start(snap, 99, "fifo")


def test_forecast_beyond_horizon_is_none():
    f = forecast_start(_snapshot(), 12, "fifo", min_cycle_s=0.0, horizon_s=3600.0)
    assert f.predicted_start is None


def test_forecast_is_exact_when_limits_are_runtimes_and_nothing_arrives():
    rng = np.random.default_rng(3)
    n = 60
    runtime = rng.integers(1, 5, n) * 3600.0  # whole hours: the limit equals the runtime
    w = workload(np.zeros(n), runtime, rng.choice([1, 2, 4, 8], n))
    jobs, fleet, tm = setup(w, nodes=2)
    err = measure_error(jobs, fleet, tm.tenancy, "fifo", probes=3, min_cycle_s=0.0)
    assert err["forecasts"] > 0
    assert err["median_abs_error_s"] == 0.0 and err["p90_abs_error_s"] == 0.0


def test_forecast_error_on_a_replay_is_measured():
    rng = np.random.default_rng(4)
    n = 200
    w = workload(np.sort(rng.uniform(0, 40_000, n)), rng.lognormal(7, 1.2, n),
                 rng.choice([1, 2, 4, 8], n), [f"vc{k}" for k in rng.integers(0, 3, n)])
    jobs, fleet, tm = setup(w, nodes=2)
    err = measure_error(jobs, fleet, tm.tenancy, "fairshare", probes=3)
    assert err["forecasts"] > 0
    assert np.isfinite(err["median_abs_error_s"]) and 0 <= err["within_1h"] <= 1
