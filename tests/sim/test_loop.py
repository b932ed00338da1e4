"""The event loop: hand-checked timings, conservation, determinism, failures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aicc.errors import InvalidInput
from aicc.fleet import build_fleet
from aicc.fleet.phases import FleetPhase, NodeGroup
from aicc.sim.jobs import prepare
from aicc.sim.loop import (
    ST_DONE,
    ST_FAILED,
    FailureModel,
    SimConfig,
    simulate,
)
from aicc.sim.metrics import job_frame, summarize
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import map_tenants

from .helpers import setup, workload


def _two_jobs(min_cycle_s: float):
    # one node of 8 accelerators; A (8 GPUs, 100 s) at t=0, B (8 GPUs, 50 s) at t=10
    w = workload([0, 10], [100, 50], [8, 8])
    jobs, fleet, tm = setup(w)
    return simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=min_cycle_s))


def test_two_jobs_on_one_node_by_hand():
    r = _two_jobs(min_cycle_s=0.0)
    f = job_frame(r)
    # A starts at 0 and ends at 100; B waits for A: starts 100, ends 150
    assert f["wait_s"].tolist() == [0.0, 90.0]
    assert f["jct_s"].tolist() == [100.0, 140.0]
    assert f["bounded_slowdown"].tolist() == [1.0, 140.0 / 50.0]
    assert r.state.tolist() == [ST_DONE, ST_DONE]
    s = summarize(r)
    assert s["fleet"]["makespan_s"] == 150.0
    assert s["jobs_metrics"]["wait_s"]["mean"] == 45.0


def test_min_cycle_interval_batches_events():
    # cycles at 0, then B's arrival asks for one at >= 60 (nothing fits), A's end at 100 asks
    # for one at >= 60 + 60 = 120: B starts at 120.
    r = _two_jobs(min_cycle_s=60.0)
    f = job_frame(r)
    assert f["wait_s"].tolist() == [0.0, 110.0]
    assert f["jct_s"].tolist() == [100.0, 160.0]


def _philly_like(n=300, seed=1):
    rng = np.random.default_rng(seed)
    submit = np.sort(rng.uniform(0, 20_000, n))
    runtime = rng.lognormal(6, 1.5, n)
    gpus = rng.choice([1, 1, 1, 2, 4, 8, 16], n)
    tenants = [f"vc{k}" for k in rng.integers(0, 5, n)]
    return workload(submit, runtime, gpus, tenants)


@pytest.mark.parametrize("policy", ["fifo", "multifactor", "fairshare"])
def test_conservation_every_job_ends_once_and_capacity_holds(policy):
    w = _philly_like()
    jobs, fleet, tm = setup(w, nodes=4)
    r = simulate(jobs, fleet, tm.tenancy,
                 SimConfig(policy=policy, check_invariants=True, sample_s=50.0))
    assert (r.state == ST_DONE).all()
    assert (r.end >= r.first_start).all() and (r.first_start >= jobs.submit).all()
    # each job charged exactly its work once: no failures, no lost work
    np.testing.assert_allclose(r.charged_s, jobs.runtime * jobs.accelerators)
    assert (r.series["busy"] <= r.series["capacity_up"]).all()
    assert r.series["busy"].max() > 0


def test_same_seed_same_result_with_failures():
    w = _philly_like(n=150)
    jobs, fleet, tm = setup(w, nodes=4)
    cfg = SimConfig(policy="fifo", seed=5,
                    failures=FailureModel(rate_per_accelerator_s=2e-5, repair_s=600.0))
    a = summarize(simulate(jobs, fleet, tm.tenancy, cfg))
    b = summarize(simulate(jobs, fleet, tm.tenancy, cfg))
    for k in ("run",):
        a.pop(k), b.pop(k)
    assert a == b
    assert a["failures"]["node_failures"] > 0
    c = summarize(simulate(jobs, fleet, tm.tenancy,
                           SimConfig(policy="fifo", seed=6, failures=cfg.failures)))
    assert c["failures"] != a["failures"]


def _one_job_with_failure(**fm):
    w = workload([0], [1000], [8])
    jobs, fleet, tm = setup(w)
    model = FailureModel(rate_per_accelerator_s=0.0, repair_s=100.0, scheduled=((300.0, 0),),
                         **fm)
    return simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=0.0,
                                                       failures=model))


def test_failure_requeues_and_loses_work_since_start():
    r = _one_job_with_failure()
    # fails at 300 (8 × 300 lost), node back at 400, reruns 1000 s: ends 1400
    assert r.lost_s[0] == 8 * 300.0
    assert r.charged_s[0] == 8 * 1000.0
    assert r.end[0] == 1400.0 and r.state[0] == ST_DONE
    assert r.interruptions[0] == 1 and r.failures == 1
    assert summarize(r)["failures"]["lost_acc_h"] == pytest.approx(8 * 300 / 3600)


def test_failure_with_checkpoints_loses_only_since_last_checkpoint():
    r = _one_job_with_failure(checkpoint_s=200.0)
    # checkpoint at 200 saved; 100 s × 8 lost; 800 s left after the repair at 400
    assert r.lost_s[0] == 8 * 100.0
    assert r.charged_s[0] == 8 * 1000.0
    assert r.end[0] == 1200.0


def test_failure_policy_fail_ends_the_job():
    r = _one_job_with_failure(on_failure="fail")
    assert r.state[0] == ST_FAILED and r.end[0] == 300.0
    assert r.lost_s[0] == 8 * 300.0 and r.charged_s[0] == 0.0


def test_a_voided_end_does_not_end_the_run():
    # the job's end at 1000 s was voided by its failure at 300 s: the run's last event is the
    # repair at 400 s, and the run's time (its final sample, the lending balance's decay)
    # stops there
    r = _one_job_with_failure(on_failure="fail")
    assert r.end_time == 400.0
    assert r.series["time"].max() == 400.0


def test_a_stopped_run_counts_the_work_under_way():
    # one node; A (8 GPUs, 1000 s) at 0 and B (8 GPUs, 1000 s) at 0: stopped at 1500 s, A has
    # finished, B has run 500 s of its 1000
    w = workload([0, 0], [1000, 1000], [8, 8])
    jobs, fleet, tm = setup(w)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=0.0,
                                                    until_s=1500.0))
    assert r.end_time == 1500.0
    assert r.in_progress_s is not None and r.in_progress_s.tolist() == [0.0, 8 * 500.0]
    s = summarize(r)
    # the makespan runs to the stop, and the fleet was busy all of it
    assert s["fleet"]["makespan_s"] == 1500.0
    assert s["fleet"]["utilisation_exact"] == pytest.approx(1.0)
    assert s["failures"]["in_progress_acc_h"] == pytest.approx(8 * 500 / 3600)
    assert s["jobs_metrics"]["jct_s"]["mean"] == 1000.0  # only A finished


def test_jct_and_slowdown_leave_out_jobs_cut_short():
    # A fails at 300 s of its 1000 (on_failure=fail); B, submitted at 0 behind it, finishes.
    # A's 300 s would be a JCT shorter than its runtime and a slowdown of 1, the best there is
    w = workload([0, 0], [1000, 100], [8, 8])
    jobs, fleet, tm = setup(w)
    fm = FailureModel(rate_per_accelerator_s=0.0, repair_s=100.0, scheduled=((300.0, 0),),
                      on_failure="fail")
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=0.0,
                                                    failures=fm))
    assert r.state.tolist() == [ST_FAILED, ST_DONE]
    f = job_frame(r)
    assert np.isnan(f["jct_s"][0]) and np.isnan(f["bounded_slowdown"][0])
    assert f["end_s"][0] == 300.0 and f["wait_s"][0] == 0.0  # still recorded
    # B starts after the repair at 400 s and runs 100 s
    assert f["jct_s"][1] == 500.0 and f["bounded_slowdown"][1] == 5.0
    m = summarize(r)["jobs_metrics"]
    assert m["jct_s"]["mean"] == 500.0 and m["bounded_slowdown"]["mean"] == 5.0


def test_job_larger_than_fleet_is_counted_not_dropped():
    w = workload([0, 5], [10, 10], [8, 64])
    jobs, _, _ = setup(w, nodes=2)
    assert len(jobs) == 1
    assert jobs.account.invalid["larger_than_fleet"] == 1


def test_gang_larger_than_the_nodes_that_hold_its_share_is_counted():
    # H100 as one 8-GPU node and four 4-GPU nodes: 16 GPUs are shaped 2 × 8 (the largest node),
    # which no two nodes hold; under FIFO it used to block the type for ever
    ph = FleetPhase(name="mixed", site="lab", nodes_per_leaf=4, leaves_per_pod=2,
                    groups=(NodeGroup(type="h100-sxm-80g", nodes=1),
                            NodeGroup(type="h100-sxm-80g", nodes=4, accelerators_per_node=4)))
    fleet = build_fleet(ph)
    w = workload([0, 10, 20], [3600, 3600, 3600], [16, 4, 8])
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project)
    assert jobs.account.invalid["larger_than_fleet"] == 1 and len(jobs) == 2
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo"))
    assert r.state.tolist() == [ST_DONE, ST_DONE]


def test_two_sectors_wanting_the_whole_fleet_both_finish():
    # each sector's job needs all 16 nodes: beyond its entitlement and beyond its half of the
    # idle capacity. Both used to wait for ever on an idle fleet; now one runs, then the other.
    w = workload([0, 0], [3600, 3600], [128, 128], ["a", "b"])
    fleet = custom_fleet(16, "h100-sxm-80g")
    tm = map_tenants(w.tenants, len(fleet.catalog),
                     mapping={"tenant": {"a": {"sector": "industry"},
                                         "b": {"sector": "research"}}})
    jobs = prepare(w, fleet, tm.tenant_project)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fairshare", min_cycle_s=60.0))
    assert r.state.tolist() == [ST_DONE, ST_DONE]
    assert sorted(r.first_start.tolist()) == [0.0, 3600.0]


def test_series_goes_on_while_jobs_wait_for_an_empty_fleet():
    # four 8-GPU jobs of an hour fill the fleet; four more wait. At 3600 s all four end at once:
    # the fleet is empty for an instant before the next cycle. The samples used to stop there.
    w = workload([0.0] * 8, [3600.0] * 8, [8] * 8)
    jobs, fleet, tm = setup(w, nodes=4)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", sample_s=60.0))
    t = r.series["time"]
    assert r.end.max() == 7200.0
    assert np.all(np.diff(t[:-1]) == 60.0) and t[-2] >= 7140.0
    assert r.series["busy"][t == 3660.0].tolist() == [32]


def test_the_cycle_of_an_instant_runs_before_its_sample():
    # a job submitted at the first sample's time has started when that sample is taken
    w = workload([0.0, 50.0], [100.0, 100.0], [1, 2])
    jobs, fleet, tm = setup(w, nodes=1)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", sample_s=50.0, min_cycle_s=10.0))
    assert r.series["time"][0] == 0.0
    assert (r.series["busy"][0], r.series["pending"][0]) == (1, 0)
    assert r.series["time"][1] == 50.0 and r.series["busy"][1] == 3


def test_series_samples_each_instant_once():
    # one 100 s job of one accelerator on one 8-accelerator node, grid every 60 s: the samples
    # are at 0, 60 and 120 (busy 1, 1, 0), the last grid sample is the run's end, and it is
    # not taken twice (a repeated zero would pull the means down)
    w = workload([0], [100], [1])
    jobs, fleet, tm = setup(w)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=0.0,
                                                    sample_s=60.0))
    assert r.series["time"].tolist() == [0.0, 60.0, 120.0]
    assert r.series["busy"].tolist() == [1, 1, 0]
    s = summarize(r)
    assert s["fleet"]["utilisation_mean"] == pytest.approx(2 / 3 / 8)
    t = r.series["time"]
    assert (np.diff(t) > 0).all()


def test_a_run_stopped_early_keeps_its_end_sample():
    # stopped between grid samples, the run still records its state at the stop
    w = workload([0], [1000], [8])
    jobs, fleet, tm = setup(w)
    r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=0.0,
                                                    sample_s=60.0, until_s=90.0))
    assert r.series["time"].tolist() == [0.0, 60.0, 90.0]
    assert r.series["busy"].tolist() == [8, 8, 8]


def test_a_power_cap_holds_a_start_until_power_frees_up():
    # two 8-accelerator jobs on two idle H100 nodes (idle draw 16 × 70 W = 1,120 W; a job adds
    # 8 × 630 W): 8,000 W lets one run at a time (rule 9), so the second starts when the first
    # ends; uncapped both start at once
    w = workload([0, 0], [100, 100], [8, 8])
    jobs, fleet, tm = setup(w, nodes=2)
    for cap, second in ((8000.0, 100.0), (math.inf, 0.0)):
        r = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fifo", min_cycle_s=0.0,
                                                        power_available_w=cap))
        assert sorted(r.first_start.tolist()) == [0.0, second]


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_a_power_cap_must_be_positive(bad):
    with pytest.raises(InvalidInput) as e:
        SimConfig(power_available_w=bad)
    assert e.value.field == "power_available_w"
