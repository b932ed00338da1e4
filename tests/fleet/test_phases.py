import numpy as np
import pytest

from aicc.errors import ConfigError, UnknownAcceleratorType
from aicc.fleet import build_fleet, load_phases, phase
from aicc.fleet.phases import node_infos, parse_phases


@pytest.mark.parametrize(("name", "total"), [("2028", 15_000), ("2030", 50_000)])
def test_phases_have_their_published_size(name, total):
    fleet = build_fleet(name)
    assert fleet.n_accelerators == total
    assert phase(name).n_accelerators == total
    assert set(np.unique(fleet.capacity)) == {8}


def test_leaves_never_mix_types_and_respect_leaf_size():
    ph = phase("2028")
    fleet = build_fleet(ph)
    for leaf in np.unique(fleet.leaf):
        members = fleet.leaf == leaf
        assert len(np.unique(fleet.type_idx[members])) == 1
        assert members.sum() <= ph.nodes_per_leaf
    # every leaf belongs to exactly one pod
    for leaf in np.unique(fleet.leaf):
        assert len(np.unique(fleet.pod[fleet.leaf == leaf])) == 1


def test_node_names_are_unique():
    names = [n.name for n in node_infos(phase("2030"))]
    assert len(names) == len(set(names)) == 6_250


def test_unknown_phase_names_the_field():
    with pytest.raises(ConfigError) as exc:
        phase("2099")
    assert exc.value.field == "fleet_phase"
    assert "2028" in exc.value.message


def test_phase_with_unknown_type_is_rejected():
    with pytest.raises(UnknownAcceleratorType):
        parse_phases('[phase.x]\ngroups=[{type="tpu", nodes=2}]')


def test_phase_with_zero_nodes_is_rejected():
    with pytest.raises(ConfigError) as exc:
        parse_phases('[phase.x]\ngroups=[{type="b200", nodes=0}]')
    assert "groups" in exc.value.field


def test_lab_phase_is_small():
    assert "lab" in load_phases()
    assert build_fleet("lab").n_accelerators == 256
