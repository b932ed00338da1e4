"""The fleet as parallel numpy arrays, one row per node: the form every hot path works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aicc.catalog import Catalog

NODE_UP, NODE_DRAIN, NODE_DOWN = 0, 1, 2
NODE_STATE_NAMES = ("up", "drain", "down")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    accelerator_type: str
    accelerators: int
    leaf: str
    pod: str
    site: str


@dataclass
class FleetArrays:
    """Node ``i`` is ``names[i]``, with ``capacity[i]`` accelerators of type ``type_idx[i]``
    (an index into ``catalog``), under leaf ``leaf[i]`` and pod ``pod[i]`` (dense integer ids)."""

    catalog: Catalog
    names: list[str]
    type_idx: np.ndarray  # int16
    capacity: np.ndarray  # int16, accelerators per node
    leaf: np.ndarray  # int32
    pod: np.ndarray  # int32
    state: np.ndarray  # int8, NODE_UP / NODE_DRAIN / NODE_DOWN
    leaf_names: list[str]
    pod_names: list[str]

    @property
    def n_nodes(self) -> int:
        return len(self.names)

    @property
    def n_accelerators(self) -> int:
        return int(self.capacity.sum())

    def node_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def idle_w(self) -> np.ndarray:
        """Per-accelerator idle watts, by node."""
        table = np.array([t.idle_w for t in self.catalog], dtype=np.float64)
        return table[self.type_idx]

    def tdp_w(self) -> np.ndarray:
        table = np.array([t.tdp_w for t in self.catalog], dtype=np.float64)
        return table[self.type_idx]

    def accelerators_by_type(self) -> dict[str, int]:
        counts = np.bincount(self.type_idx, weights=self.capacity, minlength=len(self.catalog))
        return {t.name: int(c) for t, c in zip(self.catalog, counts, strict=True) if c}

    @classmethod
    def from_nodes(cls, catalog: Catalog, nodes: list[NodeInfo], states: list[int] | None = None
                   ) -> FleetArrays:
        leaf_ids: dict[str, int] = {}
        pod_ids: dict[str, int] = {}
        n = len(nodes)
        type_idx = np.empty(n, dtype=np.int16)
        capacity = np.empty(n, dtype=np.int16)
        leaf = np.empty(n, dtype=np.int32)
        pod = np.empty(n, dtype=np.int32)
        for i, node in enumerate(nodes):
            type_idx[i] = catalog.index(node.accelerator_type)
            capacity[i] = node.accelerators
            leaf[i] = leaf_ids.setdefault(node.leaf, len(leaf_ids))
            pod[i] = pod_ids.setdefault(node.pod, len(pod_ids))
        state = np.array(states if states is not None else [NODE_UP] * n, dtype=np.int8)
        return cls(catalog, [x.name for x in nodes], type_idx, capacity, leaf, pod, state,
                   list(leaf_ids), list(pod_ids))
