"""The Slurm engine's parsers and mappings, on recorded Slurm 22.05 output (no cluster needed)."""

from __future__ import annotations

import pytest

from aicc.catalog import default_catalog
from aicc.engines.slurm.discovery import gres_to_catalog, node_state, parse_gres
from aicc.engines.slurm.engine import _failure_reason, _sacct_view, _squeue_view
from aicc.engines.slurm.runner import expand_hostlist, parse_kv_line
from aicc.errors import ConfigError, UnknownAcceleratorType
from aicc.fleet.arrays import NODE_DOWN, NODE_DRAIN, NODE_UP


@pytest.mark.parametrize(("expr", "want"), [
    ("n1", ["n1"]),
    ("n[1-3]", ["n1", "n2", "n3"]),
    ("n[1-2,7],gpu[08-10]", ["n1", "n2", "n7", "gpu08", "gpu09", "gpu10"]),
    ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
    ("", []),
    ("(null)", []),
])
def test_expand_hostlist(expr: str, want: list[str]) -> None:
    assert expand_hostlist(expr) == want


@pytest.mark.parametrize(("gres", "want"), [
    ("gpu:h100:8", [("gpu", "h100", 8)]),
    ("gpu:h100:8(S:0-1)", [("gpu", "h100", 8)]),
    ("gpu:4", [("gpu", None, 4)]),
    ("gpu:a100:2,gpu:h100:4(S:0)", [("gpu", "a100", 2), ("gpu", "h100", 4)]),
    ("(null)", []),
])
def test_parse_gres(gres: str, want: list) -> None:
    assert parse_gres(gres) == want


@pytest.mark.parametrize(("state", "flags", "want"), [
    ("idle", [], NODE_UP), ("mixed", [], NODE_UP), ("allocated", [], NODE_UP),
    ("idle", ["DRAIN"], NODE_DRAIN), ("mixed", ["DRAIN"], NODE_DRAIN),
    ("down", [], NODE_DOWN), ("idle", ["NOT_RESPONDING"], NODE_DOWN), ("idle*", [], NODE_DOWN),
    ("IDLE+DRAIN", [], NODE_DRAIN), ("future", [], NODE_DOWN),
])
def test_node_state(state: str, flags: list[str], want: int) -> None:
    assert node_state(state, flags) == want


def test_gres_types_map_to_catalog_types() -> None:
    cat = default_catalog()
    assert gres_to_catalog("h100", cat) == "h100-sxm-80g"
    assert gres_to_catalog("H200", cat) == "h200-141g"
    assert gres_to_catalog("b200", cat) == "b200"  # a catalog name maps to itself
    assert gres_to_catalog("h100", cat, {"h100": "h200-141g"}) == "h200-141g"  # config first
    with pytest.raises(ConfigError, match="slurm_gres_map"):
        gres_to_catalog("a100", cat)
    with pytest.raises(UnknownAcceleratorType):
        gres_to_catalog("h100", cat, {"h100": "no-such-type"})


def test_parse_kv_line_keeps_values_with_spaces() -> None:
    rec = parse_kv_line("NodeName=n1 Arch=x86_64 Gres=gpu:h100:8 OS=Linux 6.1 #1 SMP "
                        "RealMemory=128000 Partitions=gpu")
    assert rec["Gres"] == "gpu:h100:8" and rec["OS"] == "Linux 6.1 #1 SMP"
    assert rec["Partitions"] == "gpu"


def test_squeue_and_sacct_records_read_alike() -> None:
    # Shapes as Slurm 22.05 prints them (squeue --json: flat; sacct --json: nested).
    sq = {"job_state": "FAILED", "start_time": 100, "end_time": 103, "nodes": "n[1-2]",
          "restart_cnt": 0, "exit_code": 124 << 8, "state_reason": "NonZeroExitCode"}
    sa = {"state": {"current": "FAILED", "reason": "None"}, "time": {"start": 100, "end": 103},
          "nodes": "n[1-2]", "exit_code": {"status": "SUCCESS", "return_code": 0}}
    a, b = _squeue_view(sq), _sacct_view(sa)
    assert (a.state, a.start_time, a.end_time, a.nodes) == (b.state, b.start_time, b.end_time,
                                                             b.nodes)
    assert _failure_reason(a) == "time limit reached"
    assert _failure_reason(b) == "failed (exit code 0)"
