"""Scenario knobs: fleets, load factor, accelerator substitution, gang shapes, limits."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.errors import InvalidInput, UnknownAcceleratorType
from aicc.sim.jobs import parse_substitutions, prepare
from aicc.sim.loop import SimConfig
from aicc.sim.metrics import summarize
from aicc.sim.scenario import (
    Scenario,
    apply_knobs,
    failure_model,
    load_factor_for,
    parse_fleet,
    run_scenario,
)
from aicc.workload.tenants import map_tenants
from aicc.workload.trace import RowAccount, build

from .helpers import workload


def test_parse_fleet_phase_custom_and_errors(tmp_path):
    assert parse_fleet("lab").n_accelerators == 256
    f = parse_fleet("10xb200@4")
    assert f.n_nodes == 10 and f.n_accelerators == 40
    assert f.accelerators_by_type() == {"b200": 40}
    toml = tmp_path / "f.toml"
    toml.write_text('[phase.mine]\ngroups = [{ type = "h200-141g", nodes = 3 }]\n')
    assert parse_fleet(str(toml)).accelerators_by_type() == {"h200-141g": 24}
    with pytest.raises(InvalidInput):
        parse_fleet("a big one")
    with pytest.raises(UnknownAcceleratorType):
        parse_fleet("4xv100")


def test_load_factor_reaches_the_target_offered_load():
    # 10 jobs × 8 GPUs × 100 s, submitted over 900 s, the last ending at 1000 s, on 16 GPUs
    w = workload(np.arange(10) * 100.0, [100.0] * 10, [8] * 10)
    fleet = parse_fleet("2xh100-sxm-80g")
    assert w.offered_load(16) == pytest.approx(8000 / (1000 * 16))
    f = load_factor_for(w, 16, 0.9)
    w2, used = apply_knobs(w, Scenario(fleet=fleet, config=SimConfig(), target_load=0.9))
    assert used == pytest.approx(f)
    assert w2.offered_load(16) == pytest.approx(0.9)
    # the window 8000 / (0.9 × 16) holds the compressed span plus the last job's 100 s
    assert w2.submit_s[-1] + 100.0 == pytest.approx(8000 / (0.9 * 16))
    assert w2.submit_s[-1] == pytest.approx(900 / f)
    with pytest.raises(InvalidInput):
        apply_knobs(w, Scenario(fleet=fleet, config=SimConfig(), load_factor=-1))


def test_offered_load_counts_the_runtime_tail():
    # one 8-GPU job of 10 h submitted at the end of a 1 h span: the work takes 11 h, not 1 h
    w = workload([0.0, 3600.0], [60.0, 36000.0], [8, 8])
    assert w.window_s() == pytest.approx(39600.0)
    assert w.offered_load(8) == pytest.approx(8 * (60 + 36000) / (8 * 39600.0))


def test_unreachable_target_load_is_refused_with_the_ceiling():
    # 2 jobs on 16 GPUs: even submitted together, 8 GPUs × 10 h over a 10 h window is 50 %
    w = workload([0.0, 3600.0], [36000.0, 36000.0], [8, 8])
    with pytest.raises(InvalidInput) as e:
        load_factor_for(w, 32, 0.8)
    assert e.value.field == "target_load" and "at most 50.0%" in e.value.message
    assert load_factor_for(w, 32, 0.49) > 1


@pytest.mark.parametrize("knob", [
    {"load_factor": float("nan")}, {"load_factor": float("inf")}, {"load_factor": 0.0},
    {"target_load": float("nan")}, {"target_load": -0.5}, {"target_load": 11.0},
    {"max_jobs": 0}])
def test_scenario_rejects_non_finite_and_out_of_range_knobs(knob):
    with pytest.raises(InvalidInput) as e:
        Scenario(fleet=parse_fleet("1xh100-sxm-80g"), config=SimConfig(), **knob)
    assert e.value.field == next(iter(knob))


def test_scenario_rejects_nan_cycle_and_failure_knobs():
    fleet = parse_fleet("1xh100-sxm-80g")
    with pytest.raises(InvalidInput) as e:
        Scenario(fleet=fleet, config=SimConfig(min_cycle_s=float("nan")))
    assert e.value.field == "min_cycle"
    for kwargs, field in [({"scale": float("nan")}, "failure_scale"),
                          ({"scale": -1.0}, "failure_scale"),
                          ({"repair_hours": float("nan")}, "repair_hours"),
                          ({"repair_hours": 0.0}, "repair_hours"),
                          ({"checkpoint_min": -5.0}, "checkpoint_min"),
                          ({"checkpoint_min": float("inf")}, "checkpoint_min"),
                          ({"on_failure": "zz"}, "on_failure")]:
        with pytest.raises(InvalidInput) as e:
            failure_model(**kwargs)
        assert e.value.field == field, kwargs
    fm = failure_model(scale=2.0, repair_hours=1.0, checkpoint_min=30.0, on_failure="fail")
    assert (fm.repair_s, fm.checkpoint_s, fm.on_failure) == (3600.0, 1800.0, "fail")


@pytest.mark.parametrize(("target", "low", "high"), [(0.5, 0.45, 0.55), (0.8, 0.68, 0.9)])
def test_target_load_is_achieved_on_a_small_fleet(target, low, high):
    # runtimes (12–28 h) long against the span once compressed: the tail decides the load
    n = 48
    w = workload(np.arange(n) * 86400.0, np.tile([12.0, 20.0, 28.0], n // 3) * 3600,
                 np.tile([1, 2, 4, 1], n // 4), [f"t{i % 3}" for i in range(n)])
    fleet = parse_fleet("4xh100-sxm-80g")
    r = run_scenario(w, Scenario(fleet=fleet, config=SimConfig(), target_load=target))
    assert r.extra["offered_load"] == pytest.approx(target)
    util = summarize(r)["fleet"]["utilisation_exact"]
    assert low <= util <= high


def test_substitution_shapes_and_limits():
    w = build("t", submit=np.array([0.0, 1.0, 2.0, 3.0]), runtime=np.array([10.0, 3601, 50, 7]),
              gpus=np.array([12.0, 1, 3, 2]), tenant_labels=np.array(["a"] * 4, dtype=object),
              lines=np.arange(4) + 2, account=RowAccount(),
              model_labels=np.array(["V100", "T4", "", "V100"], dtype=object))
    fleet = parse_fleet("lab")  # h100 and ascend-910b nodes of 8
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project,
                   substitute=parse_substitutions("V100=h100-sxm-80g,*=ascend-910b"))
    names = [fleet.catalog.types[t].name for t in jobs.type_idx]
    assert names == ["h100-sxm-80g", "ascend-910b", "ascend-910b", "h100-sxm-80g"]
    # 12 GPUs on 8-accelerator nodes: 2 nodes × 6
    assert (jobs.nodes[0], jobs.per_node[0]) == (2, 6)
    assert jobs.account.adjusted["gang_rounded_up_to_node_shape"] == 0
    assert jobs.time_limit.tolist() == [3600.0, 7200.0, 3600.0, 3600.0]
    with pytest.raises(InvalidInput):
        parse_substitutions("V100")
    with pytest.raises(InvalidInput, match="has no b200"):
        prepare(w, fleet, tm.tenant_project, substitute={"V100": "b200"})


def test_unmapped_jobs_are_dealt_by_capacity_with_the_seed():
    w = workload(np.arange(400.0), [10.0] * 400, [1] * 400)
    fleet = parse_fleet("lab")
    tm = map_tenants(w.tenants, len(fleet.catalog))
    a = prepare(w, fleet, tm.tenant_project, seed=1)
    b = prepare(w, fleet, tm.tenant_project, seed=1)
    assert np.array_equal(a.type_idx, b.type_idx)
    share = (a.type_idx == fleet.catalog.index("h100-sxm-80g")).mean()
    assert 0.4 < share < 0.6  # the lab fleet is half H100, half Ascend


def test_offered_load_counts_the_accelerators_a_job_holds():
    # 7 GPUs on nodes of 6 become a gang of 2 nodes × 4: each job holds 8 accelerators, and
    # the offered load (and the load a target solves for) is the work the fleet will hold
    w = workload(np.arange(10) * 100.0, [100.0] * 10, [7] * 10)
    fleet = parse_fleet("4xh100-sxm-80g@6")
    sc = Scenario(fleet=fleet, config=SimConfig(policy="fifo"))
    r = run_scenario(w, sc)
    assert (r.jobs.accelerators == 8).all()
    assert r.extra["offered_load"] == pytest.approx(8 * 100 * 10 / (1000 * 24))
    w2, _ = apply_knobs(w, Scenario(fleet=fleet, config=SimConfig(), target_load=0.5))
    assert 8 * 100 * 10 / (w2.window_s() * 24) == pytest.approx(0.5)
