"""One simulation scenario from its knobs: workload, fleet, policy, load factor, substitution,
failures. The CLI, the benchmark and the tests all go through :func:`run_scenario`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from aicc.catalog import default_catalog
from aicc.errors import InvalidInput
from aicc.fleet.arrays import FleetArrays, NodeInfo
from aicc.fleet.phases import build_fleet, load_phases, parse_phases
from aicc.sim.jobs import prepare
from aicc.sim.loop import SimConfig, SimResult, Simulator
from aicc.workload.tenants import TenantMapping, load_mapping_file, map_tenants
from aicc.workload.trace import Workload

_CUSTOM = re.compile(r"^(\d+)x([a-z0-9-]+)(?:@(\d+))?$")


def custom_fleet(nodes: int, type_name: str, per_node: int = 8, *,
                 nodes_per_leaf: int = 32) -> FleetArrays:
    """``nodes`` identical nodes of ``per_node`` accelerators (leaves of ``nodes_per_leaf``)."""
    cat = default_catalog()
    cat.index(type_name)
    if nodes <= 0 or per_node <= 0:
        raise InvalidInput("a custom fleet needs at least one node and one accelerator",
                           field="fleet")
    infos = [NodeInfo(name=f"sim-n{i:05d}", accelerator_type=type_name, accelerators=per_node,
                      leaf=f"leaf-{i // nodes_per_leaf:03d}",
                      pod=f"pod-{i // (nodes_per_leaf * 8):02d}",
                      site="sim") for i in range(nodes)]
    return FleetArrays.from_nodes(cat, infos)


def parse_fleet(spec: str) -> FleetArrays:
    """A phase name (``2028``, ``2030``, ``lab``), ``NxTYPE[@PER_NODE]`` (e.g.
    ``64xh100-sxm-80g``), or a TOML file with ``[phase.NAME]`` tables (the first is used)."""
    spec = spec.strip()
    if spec in load_phases():
        return build_fleet(spec)
    m = _CUSTOM.match(spec)
    if m:
        return custom_fleet(int(m.group(1)), m.group(2), int(m.group(3) or 8))
    p = Path(spec)
    if p.suffix == ".toml" and p.exists():
        phases = parse_phases(p.read_text())
        if not phases:
            raise InvalidInput(f"{p}: no [phase.NAME] table", field="fleet")
        return build_fleet(next(iter(phases.values())))
    raise InvalidInput(f"unknown fleet {spec!r}: give a phase ({', '.join(load_phases())}), "
                       "NxTYPE such as 64xh100-sxm-80g, or a phases TOML file", field="fleet")


@dataclass(frozen=True)
class Scenario:
    fleet: FleetArrays
    config: SimConfig
    load_factor: float | None = None  # time compression; None = as recorded
    target_load: float | None = None  # pick the load factor that offers this load
    substitute: dict[str, str] | None = None
    tenant_map: str | Path | dict[str, object] | None = None
    max_jobs: int | None = None


def load_factor_for(w: Workload, accelerators: int, target: float) -> float:
    """The time compression that makes the offered load ``target`` of ``accelerators``."""
    if not 0 < target <= 10:
        raise InvalidInput("--target-load must be in (0, 10]", field="target_load")
    offered = w.offered_load(accelerators)
    if offered <= 0:
        raise InvalidInput("the workload offers no load", field="trace")
    return target / offered


def apply_knobs(w: Workload, sc: Scenario) -> tuple[Workload, float]:
    if sc.max_jobs is not None:
        w = w.head(sc.max_jobs)
    if len(w) == 0:
        raise InvalidInput("the workload has no valid jobs", field="trace")
    factor = 1.0
    if sc.target_load is not None:
        factor = load_factor_for(w, sc.fleet.n_accelerators, sc.target_load)
    elif sc.load_factor is not None:
        if sc.load_factor <= 0:
            raise InvalidInput("--load-factor must be positive", field="load_factor")
        factor = sc.load_factor
    if factor != 1.0:
        w = w.compressed(factor)
    return w, factor


def run_scenario(w: Workload, sc: Scenario, *,
                 progress: Callable[[float, int], None] | None = None) -> SimResult:
    w, factor = apply_knobs(w, sc)
    mapping = (sc.tenant_map if isinstance(sc.tenant_map, dict) or sc.tenant_map is None
               else load_mapping_file(sc.tenant_map))
    tm: TenantMapping = map_tenants(w.tenants, len(sc.fleet.catalog), mapping=mapping)
    jobs = prepare(w, sc.fleet, tm.tenant_project, substitute=sc.substitute, seed=sc.config.seed)
    if len(jobs) == 0:
        raise InvalidInput("no job of the workload fits the fleet", field="fleet")
    sim = Simulator(jobs, sc.fleet, tm.tenancy, sc.config, progress=progress)
    r = sim.run()
    r.extra.update({
        "workload": w.name,
        "load_factor": factor,
        "offered_load": float(w.offered_load(sc.fleet.n_accelerators)),
        "substitute": dict(sc.substitute or {}),
        "tenants": {t: list(v) for t, v in tm.table.items()},
    })
    return r


def with_policy(sc: Scenario, policy: str) -> Scenario:
    return replace(sc, config=replace(sc.config, policy=policy))


def total_gpu_hours(w: Workload) -> float:
    return float(np.dot(w.gpus, w.runtime_s) / 3600)
