"""Fleet discovery: Slurm's nodes, GPU GRES by type, partitions, node states and topology,
mapped onto aicc's :class:`~aicc.fleet.arrays.FleetArrays`.

GRES type names (``gpu:h100:8``) become catalog accelerator types through a mapping. The default
(:data:`DEFAULT_GRES_MAP`) covers the usual names; a configured mapping
(``[engine] slurm_gres_map``) is consulted first, and a GRES type that already is a catalog name
maps to itself. Leaves and pods come from ``scontrol show topology`` (``topology/tree``): a
node's lowest switch is its leaf, that switch's parent its pod. Without a topology plugin each
partition is one leaf under one pod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from aicc.catalog import Catalog
from aicc.errors import ConfigError, EngineError
from aicc.fleet.arrays import NODE_DOWN, NODE_DRAIN, NODE_UP, FleetArrays, NodeInfo

from .runner import SlurmRunner, expand_hostlist, parse_kv_line

DEFAULT_GRES_MAP: dict[str, str] = {
    "h100": "h100-sxm-80g",
    "h100_sxm": "h100-sxm-80g",
    "h100-sxm": "h100-sxm-80g",
    "h100_80gb_hbm3": "h100-sxm-80g",
    "h200": "h200-141g",
    "h200_141gb": "h200-141g",
    "b200": "b200",
    "910b": "ascend-910b",
    "ascend910b": "ascend-910b",
    "910c": "ascend-910c",
    "ascend910c": "ascend-910c",
    "mlu370": "mlu370-x8",
    "mlu370_x8": "mlu370-x8",
}

_DOWN_FLAGS = {"DOWN", "FAIL", "FAILING", "NOT_RESPONDING", "NO_RESPOND", "POWERED_DOWN",
               "POWER_DOWN", "POWERING_DOWN", "REBOOT_ISSUED", "INVALID_REG", "FUTURE", "UNKNOWN",
               "ERROR", "INVAL"}
_DRAIN_FLAGS = {"DRAIN", "DRAINING", "DRAINED", "MAINTENANCE", "RESERVED"}
_GRES_ITEM = re.compile(r"^(?P<name>[^:(]+)(?::(?P<type>[^:(]+))?(?::(?P<count>\d+))(?:\(.*\))?$")


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """One Slurm node as discovered (before mapping to the catalog)."""

    name: str
    gres_type: str | None
    gpus: int
    partitions: tuple[str, ...]
    state: int
    state_text: str
    reason: str


def parse_gres(gres: str) -> list[tuple[str, str | None, int]]:
    """``gpu:h100:8(S:0-1),gpu:a100:2`` -> ``[(gpu, h100, 8), (gpu, a100, 2)]``."""
    out = []
    for item in re.split(r",(?![^()]*\))", gres or ""):
        item = item.strip()
        if not item or item in {"(null)", "N/A"}:
            continue
        m = _GRES_ITEM.match(item)
        if m:
            out.append((m["name"], m["type"], int(m["count"])))
    return out


def node_state(state: str, flags: list[str] | tuple[str, ...] = ()) -> int:
    """Slurm's state (``idle``, ``mixed+drain``, ``down*``…) as NODE_UP / NODE_DRAIN / NODE_DOWN."""
    words = {w.upper() for w in re.split(r"[+\s]", state.rstrip("*~#!%$@^-")) if w}
    words |= {f.upper() for f in flags}
    if state.endswith("*"):  # not responding
        words.add("NOT_RESPONDING")
    if words & _DOWN_FLAGS:
        return NODE_DOWN
    if words & _DRAIN_FLAGS:
        return NODE_DRAIN
    return NODE_UP


def gres_to_catalog(gres_type: str | None, catalog: Catalog,
                    gres_map: Mapping[str, str] | None = None) -> str:
    """The catalog accelerator type of a GRES type name (configured map, default map, itself)."""
    key = (gres_type or "").lower()
    for table in (gres_map or {}, DEFAULT_GRES_MAP):
        lowered = {k.lower(): v for k, v in table.items()}
        if key in lowered:
            name = lowered[key]
            catalog.index(name)  # UnknownAcceleratorType naming the bad target
            return name
    if key in catalog:
        return key
    raise ConfigError(
        f"Slurm GRES type {gres_type!r} maps to no accelerator type; add it to "
        f"[engine] slurm_gres_map (known types: {', '.join(catalog.names)})",
        field="engine.slurm_gres_map",
    )


def catalog_to_gres(accelerator_type: str, observed: Mapping[str, str],
                    gres_map: Mapping[str, str] | None = None) -> str | None:
    """The GRES type to request for a catalog type: the one seen on the nodes, else the map's."""
    if accelerator_type in observed:
        return observed[accelerator_type]
    for table in (gres_map or {}, DEFAULT_GRES_MAP):
        for k, v in table.items():
            if v == accelerator_type:
                return k
    return None


def list_nodes(runner: SlurmRunner, partition: str | None = None) -> list[SlurmNode]:
    """Every node with GPUs from ``sinfo --json`` (optionally only those in ``partition``)."""
    doc = runner.json(["sinfo"])
    nodes = []
    for raw in doc.get("nodes") or []:
        parts = tuple(raw.get("partitions") or ())
        if partition and partition not in parts:
            continue
        gpus = [g for g in parse_gres(raw.get("gres") or "") if g[0] == "gpu"]
        if not gpus:
            continue
        _, gtype, count = gpus[0]
        state_text = str(raw.get("state") or "unknown")
        flags = list(raw.get("state_flags") or [])
        nodes.append(SlurmNode(
            name=raw["name"], gres_type=gtype, gpus=count, partitions=parts,
            state=node_state(state_text, flags),
            state_text="+".join([state_text, *flags]).lower(), reason=raw.get("reason") or "",
        ))
    return nodes


def read_topology(runner: SlurmRunner) -> tuple[dict[str, str], dict[str, str]]:
    """``(node -> leaf switch, leaf switch -> its parent)`` from ``scontrol show topology``."""
    try:
        text = runner.run(["scontrol", "show", "topology"])
    except EngineError:  # no topology plugin configured: not an error
        return {}, {}
    node_leaf: dict[str, str] = {}
    parent: dict[str, str] = {}
    for line in text.splitlines():
        rec = parse_kv_line(line)
        name = rec.get("SwitchName")
        if not name:
            continue
        if rec.get("Level", "0") == "0":
            for n in expand_hostlist(rec.get("Nodes", "")):
                node_leaf.setdefault(n, name)
        for child in expand_hostlist(rec.get("Switches", "")):
            parent[child] = name
    return node_leaf, parent


def discover(runner: SlurmRunner, catalog: Catalog, *, partition: str | None = None,
             gres_map: Mapping[str, str] | None = None, site: str = "slurm",
             ) -> tuple[FleetArrays, dict[str, str]]:
    """The Slurm fleet as FleetArrays, and the GRES type seen for each catalog type."""
    nodes = list_nodes(runner, partition)
    if not nodes:
        _no_nodes(runner, partition)
    node_leaf, parent = read_topology(runner)
    infos, states = [], []
    observed: dict[str, str] = {}
    for n in sorted(nodes, key=lambda x: _natural(x.name)):
        acc = gres_to_catalog(n.gres_type, catalog, gres_map)
        if n.gres_type:
            observed.setdefault(acc, n.gres_type)
        leaf = node_leaf.get(n.name) or f"partition-{n.partitions[0] if n.partitions else 'none'}"
        pod = parent.get(leaf, "pod-0")
        infos.append(NodeInfo(name=n.name, accelerator_type=acc, accelerators=n.gpus,
                              leaf=leaf, pod=pod, site=site))
        states.append(n.state)
    return FleetArrays.from_nodes(catalog, infos, states), observed


def _no_nodes(runner: SlurmRunner, partition: str | None) -> NoReturn:
    """No GPU node to schedule: a mistyped partition would otherwise serve an empty fleet (and
    mark every stored node down), so name the setting and what Slurm has."""
    parts = sorted({p for raw in runner.json(["sinfo"]).get("nodes") or []
                    for p in raw.get("partitions") or ()})
    if partition and partition not in parts:
        raise ConfigError(f"engine.slurm_partition: Slurm has no partition {partition!r}; it has "
                          f"{', '.join(parts) or 'none'}", field="engine.slurm_partition")
    where = f"partition {partition!r}" if partition else "the cluster"
    raise ConfigError(f"engine.slurm_partition: no node of {where} has a gpu GRES "
                      "(Gres=gpu:<type>:<n> in slurm.conf)", field="engine.slurm_partition")


def _natural(name: str) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


__all__ = ["DEFAULT_GRES_MAP", "NODE_DOWN", "NODE_DRAIN", "NODE_UP", "SlurmNode", "catalog_to_gres",
           "discover", "gres_to_catalog", "list_nodes", "node_state", "parse_gres",
           "read_topology"]
