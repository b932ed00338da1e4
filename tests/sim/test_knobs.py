"""Scenario knobs: fleets, load factor, accelerator substitution, gang shapes, limits."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.errors import InvalidInput, UnknownAcceleratorType
from aicc.sim.jobs import parse_substitutions, prepare
from aicc.sim.loop import SimConfig
from aicc.sim.scenario import Scenario, apply_knobs, load_factor_for, parse_fleet
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
    # 10 jobs × 8 GPUs × 100 s over a 900 s span on 16 GPUs: offered load 8000/(900×16)
    w = workload(np.arange(10) * 100.0, [100.0] * 10, [8] * 10)
    fleet = parse_fleet("2xh100-sxm-80g")
    assert w.offered_load(16) == pytest.approx(8000 / (900 * 16))
    f = load_factor_for(w, 16, 0.9)
    w2, used = apply_knobs(w, Scenario(fleet=fleet, config=SimConfig(), target_load=0.9))
    assert used == pytest.approx(f)
    assert w2.offered_load(16) == pytest.approx(0.9)
    assert w2.submit_s[-1] == pytest.approx(900 / f)
    with pytest.raises(InvalidInput):
        apply_knobs(w, Scenario(fleet=fleet, config=SimConfig(), load_factor=-1))


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
