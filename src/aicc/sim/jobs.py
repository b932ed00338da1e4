"""Turn a workload into the simulator's job arrays for one fleet.

Three decisions are made here, all documented in ``docs/simulation.md``:

* **Accelerator type.** A job's trace GPU model is substituted by a catalog type
  (``--substitute V100=h100-sxm-80g,*=b200``; ``*`` is the fallback). A job with no mapped model
  is dealt to the fleet's types in proportion to their capacity, with a seeded generator.
* **Gang shape.** ``g`` GPUs on nodes of ``c`` accelerators become ``ceil(g/c)`` nodes of
  ``ceil(g/nodes)`` each (12 GPUs on 8-GPU nodes: 2 × 6), ``c`` the type's largest node. A job
  needing more nodes than its type has that hold its per-node share can never start: it is
  counted as ``larger_than_fleet`` and left out.
* **Time limit.** Traces carry no limits; a job's limit is its runtime rounded up to the next
  whole hour, the granularity users typically ask for, so backfill sees realistic slack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aicc.errors import InvalidInput
from aicc.fleet.arrays import FleetArrays
from aicc.scheduler.placement import nodes_at_least, size_keys
from aicc.scheduler.snapshot import JobClass
from aicc.workload.trace import RowAccount, Workload

LIMIT_ROUND_S = 3600.0


@dataclass
class SimJobs:
    """One row per job, in submit order; ``id`` is the row number."""

    submit: np.ndarray  # float64
    runtime: np.ndarray  # float64
    project: np.ndarray  # int32
    type_idx: np.ndarray  # int16
    nodes: np.ndarray  # int32
    per_node: np.ndarray  # int32
    time_limit: np.ndarray  # float64
    job_class: np.ndarray  # int8
    preemptible: np.ndarray  # bool
    gpus_requested: np.ndarray  # int32 (the trace's count, before shaping)
    expected_runtime: np.ndarray  # float64, -1 = unknown
    account: RowAccount
    grant: np.ndarray | None = None  # int32 grant index per job (forks of live state)

    def __len__(self) -> int:
        return len(self.submit)

    @property
    def accelerators(self) -> np.ndarray:
        return self.nodes.astype(np.int64) * self.per_node


def parse_substitutions(text: str | None) -> dict[str, str]:
    """``V100=h100-sxm-80g,*=b200`` → {"V100": "h100-sxm-80g", "*": "b200"}."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in filter(None, (x.strip() for x in text.split(","))):
        k, sep, v = part.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise InvalidInput(f"--substitute: expected MODEL=TYPE, got {part!r}",
                               field="substitute")
        out[k.strip()] = v.strip()
    return out


def prepare(
    w: Workload,
    fleet: FleetArrays,
    tenant_project: np.ndarray,
    *,
    substitute: dict[str, str] | None = None,
    seed: int = 0,
) -> SimJobs:
    """Map a workload onto ``fleet`` (see the module docstring)."""
    type_idx, nodes, per_node, too_big = _shapes(w, fleet, substitute or {}, seed)
    g = w.gpus.astype(np.int64)
    account = w.account.copy()
    account.adjust("gang_rounded_up_to_node_shape", int((nodes * per_node != g).sum()))
    keep = ~too_big
    # through the account's reject, so these rows get example lines like every other reason
    account.reject("larger_than_fleet", too_big, w.lines)
    n = len(w)
    runtime = w.runtime_s
    limit = np.ceil(runtime / LIMIT_ROUND_S) * LIMIT_ROUND_S
    job_class = (w.job_class if w.job_class is not None
                 else np.full(n, int(JobClass.BATCH), dtype=np.int8))
    preemptible = w.preemptible if w.preemptible is not None else np.zeros(n, dtype=bool)
    k = np.flatnonzero(keep)
    account.simulated = len(k)
    return SimJobs(
        submit=w.submit_s[k].astype(np.float64),
        runtime=runtime[k].astype(np.float64),
        project=tenant_project[w.tenant[k]].astype(np.int32),
        type_idx=type_idx[k],
        nodes=nodes[k],
        per_node=per_node[k],
        time_limit=limit[k],
        job_class=job_class[k].astype(np.int8),
        preemptible=preemptible[k].astype(bool),
        gpus_requested=w.gpus[k].astype(np.int32),
        expected_runtime=np.full(len(k), -1.0),
        account=account,
    )


def fits(w: Workload, fleet: FleetArrays, *, substitute: dict[str, str] | None = None,
         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per job: whether :func:`prepare` keeps it (not ``larger_than_fleet``), and the
    accelerators it will hold there (nodes × per node: a gang rounded up to the node shape
    holds more than it asked). The same types are drawn, so the load of the jobs that will run
    is known before the run."""
    _, nodes, per_node, too_big = _shapes(w, fleet, substitute or {}, seed)
    return ~too_big, nodes.astype(np.int64) * per_node


def _shapes(w: Workload, fleet: FleetArrays, substitute: dict[str, str], seed: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per job: accelerator type, nodes, accelerators per node, and whether it is larger than
    the fleet's nodes of its type (see the module docstring)."""
    cat = fleet.catalog
    n = len(w)
    cap_by_type = np.bincount(fleet.type_idx, weights=fleet.capacity, minlength=len(cat))
    present = np.flatnonzero(cap_by_type > 0)
    if len(present) == 0:
        raise InvalidInput("the fleet has no accelerators", field="fleet")
    for model, tname in substitute.items():
        ti = cat.index(tname)
        if cap_by_type[ti] == 0:
            raise InvalidInput(f"--substitute {model}={tname}: the fleet has no {tname}",
                               field="substitute")
    type_idx = np.full(n, -1, dtype=np.int16)
    for mi, model in enumerate(w.models):
        target = substitute.get(model)
        if target is None and model in cat and cap_by_type[cat.index(model)] > 0:
            target = model
        if target is not None:
            type_idx[w.model == mi] = cat.index(target)
    unset = type_idx < 0
    if "*" in substitute:
        type_idx[unset] = cat.index(substitute["*"])
    elif unset.any():
        rng = np.random.default_rng(seed)
        p = cap_by_type[present] / cap_by_type[present].sum()
        type_idx[unset] = rng.choice(present, size=int(unset.sum()), p=p).astype(np.int16)
    # per-type node size: the largest (a type's nodes are homogeneous in every built-in phase)
    node_cap = np.zeros(len(cat), dtype=np.int32)
    np.maximum.at(node_cap, fleet.type_idx.astype(np.intp), fleet.capacity.astype(np.int32))
    c = node_cap[type_idx]
    g = w.gpus.astype(np.int64)
    nodes = np.maximum(1, -(-g // c)).astype(np.int32)
    per_node = (-(-g // nodes)).astype(np.int32)
    # a gang larger than the nodes of its type that hold its per-node share (all of them, but
    # for a type with nodes of several sizes)
    keys, base = size_keys(fleet.type_idx, fleet.capacity)
    too_big = nodes > nodes_at_least(keys, base, type_idx, per_node)
    return type_idx, nodes, per_node, too_big
