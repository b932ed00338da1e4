"""The lending balance in the simulator (rule 2, docs/design/0001-scheduling.md): loans are
integrated piecewise between the events that change them, and the balance owed to a lender
raises its jobs' priority."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.scheduler import Policy
from aicc.scheduler.lending import accumulate_lending
from aicc.sim.jobs import prepare
from aicc.sim.loop import ST_DONE, SimConfig, simulate
from aicc.sim.metrics import summarize
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import map_tenants

from .helpers import workload

HOUR = 3600.0
HALF = Policy().usage_half_life_s
IND, RES = 0, 1


def _run(submit, runtime, gpus, tenants, policy: Policy | str = "fairshare", **cfg):
    """Two sectors entitled to half of 4 nodes × 8 H100 each: tenant "i" is industry, "r"
    research."""
    w = workload(submit, runtime, gpus, tenants)
    fleet = custom_fleet(4, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog), shares={"industry": 0.5, "research": 0.5},
                     mapping={"tenant": {"i": {"sector": "industry"},
                                         "r": {"sector": "research"}}})
    jobs = prepare(w, fleet, tm.tenant_project)
    return simulate(jobs, fleet, tm.tenancy, SimConfig(policy=policy, min_cycle_s=60.0,
                                                       check_invariants=True, **cfg))


def _contention(policy: Policy):
    # research fills the fleet for 10 h (16 of its 32 accelerators lent by industry); then a
    # research job and, later, an industry job each want the whole fleet
    return _run([0, 0, 0, 0, 100, 200], [10 * HOUR] * 4 + [HOUR, HOUR], [8, 8, 8, 8, 32, 32],
                ["r", "r", "r", "r", "r", "i"], policy)


def test_a_borrowing_sector_owes_its_lender_and_the_lender_goes_first():
    # fair share off, so that only age and the balance order the two whole-fleet jobs
    pol = Policy(weight_fairshare=0.0, lending_scale_s=HOUR)
    r = _contention(pol)
    assert (r.state == ST_DONE).all()
    bal = r.lending_balance_s
    # industry lent 16 accelerators for 10 h, research 16 to industry's job for 1 h, then
    # industry 16 to research's for 1 h
    to_res, to_ind = np.array([[0.0, 16.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [16.0, 0.0]])
    owed = accumulate_lending(None, to_res, 10 * HOUR, HALF)
    owed = accumulate_lending(owed, to_ind, HOUR, HALF)
    owed = accumulate_lending(owed, to_res, HOUR, HALF)
    assert bal == pytest.approx(owed, rel=1e-9)
    assert bal[IND, RES] > bal[RES, IND] > 0
    # the lender's job, submitted later, starts first when the loans end
    assert r.first_start[5] == 10 * HOUR < r.first_start[4] == 11 * HOUR
    # without the balance's weight the older research job would have gone first
    r0 = _contention(pol.model_copy(update={"weight_lending": 0.0}))
    assert r0.first_start[4] == 10 * HOUR < r0.first_start[5]
    s = summarize(r)["sectors"]
    assert s["industry"]["owed_acc_h"] == pytest.approx((bal[IND, RES] - bal[RES, IND]) / HOUR)
    assert s["research"]["owed_acc_h"] == pytest.approx(-s["industry"]["owed_acc_h"])
    assert s["industry"]["lent_acc_h"] == pytest.approx(bal[IND, RES] / HOUR)
    assert s["industry"]["borrowed_acc_h"] == pytest.approx(bal[RES, IND] / HOUR)


def test_the_balance_counts_a_loan_only_while_it_runs_cycles_or_not():
    # research borrows 16 for one hour; nothing waits for ten days (no cycle runs), then one
    # small industry job: the loan weighs one hour, decayed over the days that followed
    r = _run([0, 0, 0, 0, 10 * 86400.0], [HOUR] * 4 + [60.0], [8, 8, 8, 8, 1],
             ["r", "r", "r", "r", "i"])
    want = accumulate_lending(None, np.array([[0.0, 16.0], [0.0, 0.0]]), HOUR, HALF)
    want = accumulate_lending(want, None, r.end_time - HOUR, HALF)
    assert r.end_time > 10 * 86400.0
    assert r.lending_balance_s == pytest.approx(want, rel=1e-9)
    summary = summarize(r)
    assert summary["lending"] == [{"lender": "industry", "borrower": "research",
                                   "acc_h": pytest.approx(want[IND, RES] / HOUR)}]


def test_a_job_borrowing_part_of_its_size_owes_only_the_excess():
    # research runs 8 + 8 + 4: 4 above its 16, whatever the last job's size
    r = _run([0, 0, 0], [HOUR, HOUR, HOUR], [8, 8, 4], ["r", "r", "r"])
    want = accumulate_lending(None, np.array([[0.0, 4.0], [0.0, 0.0]]), HOUR, HALF)
    assert r.lending_balance_s == pytest.approx(want, rel=1e-9)


def test_baselines_keep_no_balance():
    r = _contention(Policy.preset("multifactor"))
    assert r.lending_balance_s is None
    s = summarize(r)
    assert s["lending"] is None and "owed_acc_h" not in s["sectors"]["industry"]


@pytest.mark.parametrize("t_a", [1000.0, 1000.1, 2047.7])
def test_a_borrowed_run_is_preemptible_at_its_minimum_runtime_whatever_the_rounding(t_a):
    # industry borrows the whole node at t_a; a public job within its entitlement arrives 100 s
    # later and takes it back once the run has lasted min_runtime_s (600 s): a cycle is due
    # then, even where t_a + 600 - t_a rounds below 600 in floating point
    w = workload([0.0, t_a, t_a + 100.0], [1.0, 5000.0, 100.0], [1, 8, 4],
                 tenants=["ind", "ind", "pub"])
    fleet = custom_fleet(1, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog), mapping={"tenant": {
        "ind": {"sector": "industry"}, "pub": {"sector": "public"}}})
    jobs = prepare(w, fleet, tm.tenant_project)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fairshare", min_cycle_s=60.0))
    assert r.preemptions.tolist() == [0, 1, 0]
    # notice at t_a + 600 (rounded up to the first instant the test holds), stop after the
    # 300 s grace, the public job at the next cycle
    assert r.first_start[2] == pytest.approx(t_a + 600.0 + 300.0 + 60.0)
