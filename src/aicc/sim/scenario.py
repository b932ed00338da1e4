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
from aicc.fleet.phases import (
    MAX_ACCELERATORS_PER_NODE,
    MAX_NODES_PER_GROUP,
    build_fleet,
    load_phases,
    parse_phases,
)
from aicc.inputfiles import read_input_file
from aicc.scheduler.policy import Policy
from aicc.sim.jobs import fits, prepare
from aicc.sim.loop import FailureModel, SimConfig, SimResult, Simulator
from aicc.sim.metrics import describe_rows
from aicc.workload.tenants import TenantMapping, load_mapping_file, map_tenants
from aicc.workload.trace import Workload

_CUSTOM = re.compile(r"^(\d+)x([a-z0-9-]+)(?:@(\d+))?$")
# Bounds of ``NxTYPE@PER_NODE``: those of a phases file's node group (``aicc.fleet.phases``).
MAX_CUSTOM_NODES = MAX_NODES_PER_GROUP
MAX_CUSTOM_PER_NODE = MAX_ACCELERATORS_PER_NODE


def custom_fleet(nodes: int, type_name: str, per_node: int = 8, *,
                 nodes_per_leaf: int = 32) -> FleetArrays:
    """``nodes`` identical nodes of ``per_node`` accelerators (leaves of ``nodes_per_leaf``)."""
    cat = default_catalog()
    cat.index(type_name)
    if nodes <= 0 or per_node <= 0:
        raise InvalidInput("--fleet: a custom fleet needs at least one node and one "
                           "accelerator", field="fleet")
    if nodes > MAX_CUSTOM_NODES or per_node > MAX_CUSTOM_PER_NODE:
        raise InvalidInput(f"--fleet: a custom fleet has at most {MAX_CUSTOM_NODES:,} nodes of "
                           f"at most {MAX_CUSTOM_PER_NODE:,} accelerators, got {nodes:,} of "
                           f"{per_node:,}", field="fleet")
    infos = [NodeInfo(name=f"sim-n{i:05d}", accelerator_type=type_name, accelerators=per_node,
                      leaf=f"leaf-{i // nodes_per_leaf:03d}",
                      pod=f"pod-{i // (nodes_per_leaf * 8):02d}",
                      site="sim") for i in range(nodes)]
    return FleetArrays.from_nodes(cat, infos)


def phases_file(spec: str) -> tuple[Path, str | None] | None:
    """``file.toml`` → (the file, None); ``file.toml:PHASE`` → (the file, ``PHASE``); None for
    any other spec (a built-in phase, ``NxTYPE``)."""
    head, sep, name = spec.rpartition(":")
    if sep and head.endswith(".toml"):
        return Path(head), name.strip()
    return (Path(spec), None) if spec.endswith(".toml") else None


def parse_fleet(spec: str) -> FleetArrays:
    """A phase name (``2028``, ``2030``, ``lab``), ``NxTYPE[@PER_NODE]`` (e.g.
    ``64xh100-sxm-80g``), or a TOML file with ``[phase.NAME]`` tables: ``file.toml`` when it
    has one phase, ``file.toml:NAME`` for one of several (a file of several phases without a
    name is refused, listing them, rather than its first one being used)."""
    spec = spec.strip()
    if spec in load_phases():
        return build_fleet(spec)
    m = _CUSTOM.match(spec)
    if m:
        return custom_fleet(int(m.group(1)), m.group(2), int(m.group(3) or 8))
    named = phases_file(spec)
    if named is not None:
        p, chosen = named
        if chosen == "":
            raise InvalidInput(f"{spec}: no phase named after ':'; give {p}:PHASE or {p}",
                               field="fleet")
        phases = parse_phases(read_input_file(
            p, spec, "fleet", missing="file not found",
            folder="is a folder; give a phases TOML file").decode("utf-8"))
        if not phases:
            raise InvalidInput(f"{spec}: no [phase.NAME] table", field="fleet")
        if chosen is None:
            if len(phases) > 1:
                first = next(iter(phases))
                raise InvalidInput(
                    f"{spec}: the file has {len(phases)} phases ({', '.join(phases)}); choose "
                    f"one: --fleet {p}:{first}", field="fleet")
            return build_fleet(next(iter(phases.values())))
        if chosen not in phases:
            raise InvalidInput(f"{spec}: no phase {chosen!r} in {p}; its phases: "
                               f"{', '.join(phases)}", field="fleet")
        return build_fleet(phases[chosen])
    raise InvalidInput(f"unknown fleet {spec!r}: give a phase ({', '.join(load_phases())}), "
                       "NxTYPE such as 64xh100-sxm-80g, or a phases TOML file "
                       "(FILE.toml, or FILE.toml:PHASE for one of its phases)", field="fleet")


# The smallest load factor and target load taken: submissions a million times sparser are
# already beyond any study (and far below it a submission plus its runtime rounds back to the
# submission in float64, so every job would end where it starts).
MIN_LOAD_FACTOR = 1e-6
MIN_TARGET_LOAD = 1e-3


def check_load_factor(value: float) -> float:
    return check_number("--load-factor", value, low=MIN_LOAD_FACTOR, low_open=False, high=1e9)


def check_target_load(value: float) -> float:
    return check_number("--target-load", value, low=MIN_TARGET_LOAD, low_open=False, high=10.0)


def check_number(option: str, value: float, *, low: float | None = None,
                 high: float | None = None, low_open: bool = True) -> float:
    """``value`` as a finite float within the bounds, else :class:`InvalidInput` naming the
    option. NaN compares false with everything, so a plain ``<= 0`` check would let it through
    and the event loop would never reach its end."""
    field = option.lstrip("-").replace("-", "_")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{option} must be a number, got {value!r}", field=field) from None
    if not np.isfinite(v):
        raise InvalidInput(f"{option} must be a finite number, got {value!r}", field=field)
    if low is not None and (v <= low if low_open else v < low):
        word = "greater than" if low_open else "at least"
        raise InvalidInput(f"{option} must be {word} {low:g}, got {v:g}", field=field)
    if high is not None and v > high:
        raise InvalidInput(f"{option} must be at most {high:g}, got {v:g}", field=field)
    return v


ON_FAILURE = ("requeue", "fail")


def failure_model(*, scale: float = 1.0, repair_hours: float = 4.0, on_failure: str = "requeue",
                  checkpoint_min: float | None = None) -> FailureModel:
    """The failure knobs, validated: ``scale`` × the default (Llama 3) rate, repair time, what
    happens to an interrupted job, checkpoint interval (``None`` = never)."""
    scale = check_number("--failure-scale", scale, low=0.0, low_open=False, high=1e6)
    repair = check_number("--repair-hours", repair_hours, low=0.0, high=24 * 365.0)
    if on_failure not in ON_FAILURE:
        raise InvalidInput(f"--on-failure must be one of {', '.join(ON_FAILURE)}, "
                           f"got {on_failure!r}", field="on_failure")
    ckpt = (None if checkpoint_min is None
            else check_number("--checkpoint-min", checkpoint_min, low=0.0, high=525600.0))
    return FailureModel(rate_per_accelerator_s=FailureModel().rate_per_accelerator_s * scale,
                        repair_s=repair * 3600.0, on_failure=on_failure,
                        checkpoint_s=None if ckpt is None else ckpt * 60.0)


@dataclass(frozen=True)
class Scenario:
    fleet: FleetArrays
    config: SimConfig
    load_factor: float | None = None  # time compression; None = as recorded
    target_load: float | None = None  # pick the load factor that offers this load
    substitute: dict[str, str] | None = None
    tenant_map: str | Path | dict[str, object] | None = None
    max_jobs: int | None = None

    def __post_init__(self) -> None:
        """Reject what would make a run meaningless or endless, whoever built the scenario."""
        if self.load_factor is not None:
            check_load_factor(self.load_factor)
        if self.target_load is not None:
            check_target_load(self.target_load)
        if self.max_jobs is not None and self.max_jobs < 1:
            raise InvalidInput(f"--max-jobs must be at least 1, got {self.max_jobs}",
                               field="max_jobs")
        check_number("--min-cycle", self.config.min_cycle_s, low=0.0, low_open=False,
                     high=86400.0)
        fm = self.config.failures
        if fm is not None:
            check_number("--failure-scale", fm.rate_per_accelerator_s, low=0.0, low_open=False)
            check_number("--repair-hours", fm.repair_s, low=0.0)
            if fm.checkpoint_s is not None:
                check_number("--checkpoint-min", fm.checkpoint_s, low=0.0)


def load_factor_for(w: Workload, accelerators: int, target: float) -> float:
    """The time compression F that makes the offered load ``target`` of ``accelerators``.

    The offered load is GPU-seconds / (accelerators × window), the window running from the
    first submission to the last end with no waiting: ``max(submit / F + runtime)``. It shrinks
    as F grows but never below the longest runtime, so the load a workload can offer a fleet is
    bounded; a target at or above that bound is refused rather than silently missed."""
    target = check_target_load(target)
    if len(w) == 0 or w.gpu_seconds <= 0:
        raise InvalidInput("the workload offers no load", field="trace")
    need = w.gpu_seconds / (target * max(accelerators, 1))  # the window that gives the target
    longest = float(w.runtime_s.max())
    ceiling = w.gpu_seconds / (longest * max(accelerators, 1))
    if w.span_s <= 0 or need <= longest * (1 + 1e-9):
        raise InvalidInput(
            f"--target-load {target:g} is out of reach: {len(w):,} jobs on {accelerators:,} "
            f"accelerators offer at most {ceiling:.1%} (their GPU-hours over the longest "
            f"runtime, {longest / 3600:.1f} h, with every job submitted at once); use more "
            "jobs (--max-jobs), a smaller fleet or a lower target", field="target_load")
    # window(F) is continuous and decreasing in F: bisect on log F
    lo, hi = 1.0, 1.0
    while w.window_s(lo) < need:
        lo /= 2.0
    while w.window_s(hi) > need:
        hi *= 2.0
    for _ in range(200):
        mid = float(np.sqrt(lo * hi))
        if w.window_s(mid) > need:
            lo = mid
        else:
            hi = mid
        if hi / lo - 1 < 1e-12:
            break
    if hi < MIN_LOAD_FACTOR:
        raise InvalidInput(
            f"--target-load {target:g} is out of reach: {len(w):,} jobs on {accelerators:,} "
            f"accelerators would need their submissions {1 / hi:.3g} times sparser (at most "
            f"{1 / MIN_LOAD_FACTOR:g}); use a higher target or a larger fleet",
            field="target_load")
    return hi


def apply_knobs(w: Workload, sc: Scenario) -> tuple[Workload, float]:
    """The workload as it will be replayed on ``sc``'s fleet: cut to ``--max-jobs`` and
    compressed by the load factor, which a target load solves over the jobs that fit the fleet
    (those ``larger_than_fleet`` never run, so they offer it nothing)."""
    if sc.max_jobs is not None and len(w) > sc.max_jobs:
        w = w.head(sc.max_jobs)
        w.account = w.account.copy()  # the full workload's account is shared: keep it intact
        w.account.max_jobs = sc.max_jobs
        w.account.first_n_adjusted = w.read_adjustments()  # reading's, among the first N
    if len(w) == 0:
        raise InvalidInput(f"{w.source or w.name}: the workload has no valid jobs "
                           f"({describe_rows(w.account.to_dict())})", field="trace")
    fitting(w, sc)  # refuses a fleet that no job fits
    factor = 1.0
    if sc.target_load is not None:
        factor = load_factor_for(fitting(w, sc), sc.fleet.n_accelerators, sc.target_load)
    elif sc.load_factor is not None:
        factor = check_load_factor(sc.load_factor)
    if factor != 1.0:
        w = w.compressed(factor)
    return w, factor


def fitting(w: Workload, sc: Scenario) -> Workload:
    """The jobs of ``w`` that fit ``sc``'s fleet, each with the accelerators it will hold there
    as its ``gpus`` (the offered load is the work the fleet will hold); none is an input error
    naming the fleet."""
    keep, held = fits(w, sc.fleet, substitute=sc.substitute, seed=sc.config.seed)
    if keep.all():
        return replace(w, gpus=held.astype(np.int32))
    if not keep.any():
        raise InvalidInput(
            f"no job of the workload fits the fleet ({sc.fleet.n_accelerators:,} accelerators, "
            f"nodes of at most {int(sc.fleet.capacity.max(initial=0))}): the smallest asks "
            f"{int(w.gpus.min()):,} accelerators", field="fleet")
    idx = np.flatnonzero(keep)
    return replace(w.take(idx), gpus=held[idx].astype(np.int32))


def run_scenario(w: Workload, sc: Scenario, *,
                 progress: Callable[[float, int], None] | None = None) -> SimResult:
    w, factor = apply_knobs(w, sc)
    mapping = (sc.tenant_map if isinstance(sc.tenant_map, dict) or sc.tenant_map is None
               else load_mapping_file(sc.tenant_map))
    tm: TenantMapping = map_tenants(w.tenants, len(sc.fleet.catalog), mapping=mapping)
    jobs = prepare(w, sc.fleet, tm.tenant_project, substitute=sc.substitute, seed=sc.config.seed)
    sim = Simulator(jobs, sc.fleet, tm.tenancy, sc.config, progress=progress)
    r = sim.run()
    r.extra.update({
        "workload": w.name,
        "load_factor": factor,
        "offered_load": float(fitting(w, sc).offered_load(sc.fleet.n_accelerators)),
        "substitute": dict(sc.substitute or {}),
        "tenants": {t: list(v) for t, v in tm.table.items()},
    })
    return r


def with_policy(sc: Scenario, policy: str | Policy) -> Scenario:
    return replace(sc, config=replace(sc.config, policy=policy))


def total_gpu_hours(w: Workload) -> float:
    return float(np.dot(w.gpus, w.runtime_s) / 3600)
