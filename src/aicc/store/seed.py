"""Seed and synchronise reference data: the catalog, the default sectors, the fleet.

Every function is idempotent (safe on every start) and works inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.catalog import Catalog, default_catalog
from aicc.fleet.arrays import NODE_STATE_NAMES, FleetArrays, NodeInfo
from aicc.store.models import (
    AcceleratorTypeRow,
    Leaf,
    Node,
    NodeState,
    Pod,
    Sector,
    SectorEntitlement,
    Site,
    utcnow,
)

# The published default split of every accelerator type between the three sectors.
DEFAULT_SECTOR_SHARES: dict[str, float] = {"industry": 0.30, "research": 0.20, "public": 0.50}
DEFAULT_SECTOR_DESCRIPTIONS: dict[str, str] = {
    "industry": "companies, paying the full rate",
    "research": "universities and research institutes",
    "public": "public-sector agencies and open national programmes",
}


def seed_catalog(session: Session, catalog: Catalog | None = None) -> int:
    """Insert or update every accelerator type of ``catalog``; returns how many there are."""
    catalog = catalog or default_catalog()
    existing = {r.name: r for r in session.scalars(select(AcceleratorTypeRow))}
    for t in catalog:
        row = existing.get(t.name)
        if row is None:
            row = AcceleratorTypeRow(name=t.name)
            session.add(row)
        row.vendor, row.model = t.vendor, t.model
        row.memory_gb, row.peak_tflops = t.memory_gb, t.peak_tflops
        row.tdp_w, row.idle_w, row.price_weight = t.tdp_w, t.idle_w, t.price_weight
    session.flush()
    return len(catalog)


def seed_default_sectors(
    session: Session,
    shares: dict[str, float] | None = None,
    catalog: Catalog | None = None,
) -> list[Sector]:
    """Create the default sectors (industry 30%, research 20%, public 50%) with that share of
    every catalog type. Sectors or entitlements that already exist are left as they are."""
    shares = shares or DEFAULT_SECTOR_SHARES
    catalog = catalog or default_catalog()
    seed_catalog(session, catalog)
    out = []
    for name, share in shares.items():
        sector = session.scalar(select(Sector).where(Sector.name == name))
        if sector is None:
            sector = Sector(name=name, description=DEFAULT_SECTOR_DESCRIPTIONS.get(name, ""),
                            lend_limit=1.0)
            session.add(sector)
            session.flush()
        have = {e.accelerator_type for e in sector.entitlements}
        for t in catalog:
            if t.name not in have:
                sector.entitlements.append(
                    SectorEntitlement(accelerator_type=t.name, share=share))
        out.append(sector)
    session.flush()
    return out


def _as_node_infos(fleet: FleetArrays | Sequence[NodeInfo], site: str | None
                   ) -> tuple[list[NodeInfo], list[str] | None]:
    if isinstance(fleet, FleetArrays):
        site_name = site or "main-campus"
        infos = [
            NodeInfo(name=fleet.names[i],
                     accelerator_type=fleet.catalog.types[int(fleet.type_idx[i])].name,
                     accelerators=int(fleet.capacity[i]),
                     leaf=fleet.leaf_names[int(fleet.leaf[i])],
                     pod=fleet.pod_names[int(fleet.pod[i])],
                     site=site_name)
            for i in range(fleet.n_nodes)
        ]
        states = [NODE_STATE_NAMES[int(s)] for s in fleet.state]
        return infos, states
    infos = list(fleet)
    if site is not None:
        infos = [NodeInfo(n.name, n.accelerator_type, n.accelerators, n.leaf, n.pod, site)
                 for n in infos]
    return infos, None


def sync_fleet(
    session: Session,
    fleet: FleetArrays | Sequence[NodeInfo],
    site: str | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Write sites, pods, leaves and nodes so that the store holds ``fleet``.

    New nodes are inserted (state from ``FleetArrays.state``, else up; one the engine has
    drained is stored down, as the engine reports it); known nodes keep their stored state and
    drain (an operator's drain survives a restart) but take the new shape and topology.
    Nodes absent from ``fleet`` are left alone. Returns the number of nodes inserted.
    """
    infos, states = _as_node_infos(fleet, site)
    seed_catalog(session)
    now = now or utcnow()
    sites = {s.name: s for s in session.scalars(select(Site))}
    pods = {(p.site_id, p.name): p for p in session.scalars(select(Pod))}
    leaves = {(lf.pod_id, lf.name): lf for lf in session.scalars(select(Leaf))}
    nodes = {n.name: n for n in session.scalars(select(Node))}
    inserted = 0
    for i, info in enumerate(infos):
        s = sites.get(info.site)
        if s is None:
            s = sites[info.site] = Site(name=info.site)
            session.add(s)
            session.flush()
        p = pods.get((s.id, info.pod))
        if p is None:
            p = pods[(s.id, info.pod)] = Pod(name=info.pod, site_id=s.id)
            session.add(p)
            session.flush()
        lf = leaves.get((p.id, info.leaf))
        if lf is None:
            lf = leaves[(p.id, info.leaf)] = Leaf(name=info.leaf, pod_id=p.id)
            session.add(lf)
            session.flush()
        node = nodes.get(info.name)
        if node is None:
            state = NodeState(states[i]) if states else NodeState.UP
            # A node the engine has drained is out of service as far as it says (it reports
            # it down, and up once the engine lifts its drain); ``drained`` is for an aicc
            # operator's drain only.
            reason = "drained in the engine" if state == NodeState.DRAIN else ""
            if state == NodeState.DRAIN:
                state = NodeState.DOWN
            session.add(Node(name=info.name, leaf_id=lf.id,
                             accelerator_type=info.accelerator_type,
                             accelerators=info.accelerators, state=state, state_reason=reason,
                             drained=False, drain_reason="", updated_at=now))
            inserted += 1
        else:
            node.leaf_id = lf.id
            node.accelerator_type = info.accelerator_type
            node.accelerators = info.accelerators
    session.flush()
    return inserted
