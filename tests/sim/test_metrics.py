"""Fairness metrics: Jain's index and the delivered fair share, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.sim.jobs import prepare
from aicc.sim.loop import SimConfig, simulate
from aicc.sim.metrics import fair_share_delivered, fair_share_sums, jain, summarize
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import map_tenants

from .helpers import workload


def test_jain_bounds():
    assert jain(np.array([2.0, 2.0, 2.0])) == 1.0
    assert jain(np.array([3.0, 0.0, 0.0])) == pytest.approx(1 / 3)
    assert jain(np.array([1.0, np.nan])) == 1.0  # sectors that never wanted capacity are left out
    # undefined: nobody got anything, or no value at all
    assert jain(np.array([0.0, 0.0])) is None and jain(np.array([np.nan])) is None


def test_fair_share_is_demand_capped_and_split_by_entitlement():
    # 8 accelerators; sample 1: only industry wants (and holds) 8 → its fair share is 8.
    # sample 2: industry still holds 8, public waits for 8 → fair shares 8·0.3/0.8 = 3 and 5.
    # (one accelerator type: the last axis of the per-type series has one column)
    series = {"time": np.array([0.0, 60.0]), "type_capacity_up": np.array([[8], [8]]),
              "sector_type_busy": np.array([[[8.0], [0], [0]], [[8.0], [0], [0]]]),
              "sector_type_pending": np.array([[[0.0], [0], [0]], [[0.0], [0], [8.0]]])}
    busy, fair = fair_share_sums(series, np.array([[0.3], [0.2], [0.5]]))
    got, by_type = fair_share_delivered(busy, fair, np.array([8.0]))
    np.testing.assert_array_equal(got, by_type[:, 0])  # one type: the same figure
    assert got[0] == pytest.approx(16 / 11)
    assert np.isnan(got[1])
    assert got[2] == 0.0
    assert jain(got) == pytest.approx(0.5)


def test_fairness_tells_policies_apart():
    # industry fills the queue first; public arrives a minute later with as much work. Every
    # job runs in the end under both policies (equal delivered shares of all work), but FIFO
    # makes public wait behind industry while fair share gives it its entitlement at once.
    n = 40
    submit = [0.0] * n + [60.0] * n
    tenants = ["ind"] * n + ["pub"] * n
    w = workload(submit, [3600.0] * (2 * n), [8] * (2 * n), tenants)
    fleet = custom_fleet(4, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog),
                     mapping={"tenant": {"ind": {"sector": "industry"},
                                         "pub": {"sector": "public"}}})
    jobs = prepare(w, fleet, tm.tenant_project)
    out = {}
    for policy in ("fifo", "fairshare"):
        s = summarize(simulate(jobs, fleet, tm.tenancy, SimConfig(policy=policy)))
        assert s["states"] == {"finished": 2 * n}
        out[policy] = s["fairness"]["jain_sector_fair_share"]
    assert out["fairshare"] > 0.95
    assert out["fifo"] < 0.8
