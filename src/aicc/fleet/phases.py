"""Fleet phases (``phases.toml``): the capacity plans a center is built and simulated against."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aicc.catalog import Catalog, default_catalog
from aicc.errors import ConfigError
from aicc.fleet.arrays import FleetArrays, NodeInfo

# The largest node group and node a phase (or a custom ``NxTYPE@N`` fleet) may have: far above
# any real fleet (the 2030 phase has 6,250 nodes of 8), and within what the fleet arrays hold
# (per-node counts are int16) and what a list of nodes can be built for.
MAX_NODES_PER_GROUP = 100_000
MAX_ACCELERATORS_PER_NODE = 1_024


class NodeGroup(BaseModel):
    # strict: ``nodes = true`` or ``nodes = "2"`` in a file is a mistake, not 1 or 2 nodes
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    type: str
    nodes: int = Field(gt=0, le=MAX_NODES_PER_GROUP)
    accelerators_per_node: int = Field(8, gt=0, le=MAX_ACCELERATORS_PER_NODE)


class FleetPhase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    name: str
    description: str = ""
    site: str = "main-campus"
    nodes_per_leaf: int = Field(32, gt=0)
    leaves_per_pod: int = Field(8, gt=0)
    groups: tuple[NodeGroup, ...] = Field(min_length=1)  # a phase without nodes is no fleet

    @property
    def n_accelerators(self) -> int:
        return sum(g.nodes * g.accelerators_per_node for g in self.groups)


def parse_phases(text: str, catalog: Catalog | None = None) -> dict[str, FleetPhase]:
    catalog = catalog or default_catalog()
    doc = tomllib.loads(text)
    for key in doc:
        if key != "phase":
            raise ConfigError(f"{key}: unknown table or key; a fleet file holds [phase.NAME] "
                              "tables", field=key)
    raw = doc.get("phase", {})
    out: dict[str, FleetPhase] = {}
    for name, body in raw.items():
        if not isinstance(body, dict) or "name" in body:
            what = "a table" if not isinstance(body, dict) else "named by its table, not by name ="
            raise ConfigError(f"phase.{name}: a phase is {what}", field=f"phase.{name}")
        body = {**body, "name": name}
        if "groups" in body and not isinstance(body["groups"], list):
            raise ConfigError(f"phase.{name}.groups: an array of node groups, e.g. groups = "
                              '[{ type = "h100-sxm-80g", nodes = 16 }]',
                              field=f"phase.{name}.groups")
        if "groups" in body:  # a TOML array: the strict model takes tuples
            body["groups"] = tuple(body["groups"])
        try:
            ph = FleetPhase.model_validate(body)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(
                f"phase.{name}.{key}: {err['msg']}", field=f"phase.{name}.{key}"
            ) from None
        for g in ph.groups:
            catalog.index(g.type)
        out[name] = ph
    return out


@cache
def load_phases() -> dict[str, FleetPhase]:
    return parse_phases(resources.files("aicc.fleet").joinpath("phases.toml").read_text())


def phase(name: str) -> FleetPhase:
    phases = load_phases()
    if name not in phases:
        raise ConfigError(f"unknown fleet phase {name!r}; known: {', '.join(phases)}",
                          field="fleet_phase")
    return phases[name]


def node_infos(ph: FleetPhase) -> list[NodeInfo]:
    """Lay the groups out as named nodes under leaves and pods (a leaf never mixes types)."""
    nodes: list[NodeInfo] = []
    leaf_no = 0
    for g in ph.groups:
        for k in range(g.nodes):
            if k % ph.nodes_per_leaf == 0 and (k or nodes):
                leaf_no += 1
            pod_no = leaf_no // ph.leaves_per_pod
            nodes.append(NodeInfo(
                name=f"{ph.site}-p{pod_no:02d}-l{leaf_no:03d}-n{len(nodes):05d}",
                accelerator_type=g.type,
                accelerators=g.accelerators_per_node,
                leaf=f"leaf-{leaf_no:03d}",
                pod=f"pod-{pod_no:02d}",
                site=ph.site,
            ))
    return nodes


def build_fleet(ph: FleetPhase | str, catalog: Catalog | None = None) -> FleetArrays:
    if isinstance(ph, str):
        ph = phase(ph)
    return FleetArrays.from_nodes(catalog or default_catalog(), node_infos(ph))
