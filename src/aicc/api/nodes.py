"""Routes for nodes: everyone authenticated reads the fleet; only admins drain and undrain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.api.auth import CurrentPrincipal
from aicc.api.deps import After, Limit, center_now, known_accelerator_type, tx
from aicc.api.schemas import DrainIn, NodeOut, Page
from aicc.errors import UnknownNode
from aicc.store.models import Node, NodeState, node_view
from aicc.tenancy.access import require_admin
from aicc.workload.jobs import iso_time

router = APIRouter(prefix="/v1", tags=["fleet"])


def node_to_dict(node: Node) -> dict[str, Any]:
    """``state`` reads as before the drain had its own column (drain for a healthy drained
    node, down when down); ``drained`` says whether the operator's drain is on either way."""
    state = node_view(node.state, node.drained)
    reason = node.drain_reason if state == NodeState.DRAIN else node.state_reason
    return {"id": node.id, "name": node.name, "accelerator_type": node.accelerator_type,
            "accelerators": node.accelerators, "state": state.value, "state_reason": reason,
            "drained": bool(node.drained), "drain_reason": node.drain_reason,
            "leaf": node.leaf.name, "pod_id": node.leaf.pod_id,
            "updated_at": iso_time(node.updated_at)}


def _find(session: Session, ref: str) -> Node:
    """A node by id (ASCII digits: ``isdigit`` alone admits "²" or "٣") or by name."""
    node = None
    if ref.isascii() and ref.isdigit() and len(ref) < 10:
        node = session.get(Node, int(ref))
    if node is None:
        node = session.scalar(select(Node).where(Node.name == ref[:128]))
    if node is None:
        raise UnknownNode(f"no node {ref!r}", field="node")
    return node


@router.get("/nodes", response_model=Page[NodeOut])
def list_nodes(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
               after: After = 0, state: NodeState | None = None,
               accelerator_type: str | None = None) -> dict:
    with tx(request) as s:
        known_accelerator_type(s, accelerator_type)
        q = select(Node).where(Node.id > after)
        if state == NodeState.DOWN:
            q = q.where(Node.state == NodeState.DOWN)
        elif state is not None:
            q = q.where(Node.state != NodeState.DOWN,
                        Node.drained == (state == NodeState.DRAIN))
        if accelerator_type is not None:
            q = q.where(Node.accelerator_type == accelerator_type)
        items = list(s.scalars(q.order_by(Node.id).limit(limit)))
        return {"items": [node_to_dict(n) for n in items],
                "next_after": items[-1].id if len(items) == limit else None}


@router.get("/nodes/{node}", response_model=NodeOut)
def get_node(request: Request, principal: CurrentPrincipal, node: str) -> dict:
    with tx(request) as s:
        return node_to_dict(_find(s, node))


def _set_drain(request: Request, ref: str, drained: bool, reason: str) -> dict:
    """Sets the operator's drain only; the node's health is the engine's to report. A node
    that is down may be drained too: it then stays out of service once it is healthy again."""
    with tx(request) as s:
        node = _find(s, ref)
        node.drained, node.drain_reason = drained, reason[:256]
        node.updated_at = center_now(request)
        s.flush()
        return node_to_dict(node)


@router.post("/nodes/{node}/drain", response_model=NodeOut)
def drain_node(request: Request, principal: CurrentPrincipal, node: str, body: DrainIn
               ) -> dict:
    """Stop placing new work on the node; running jobs finish."""
    require_admin(principal, "drain nodes")
    return _set_drain(request, node, True, body.reason or f"drained by {principal.name}")


@router.post("/nodes/{node}/undrain", response_model=NodeOut)
def undrain_node(request: Request, principal: CurrentPrincipal, node: str) -> dict:
    require_admin(principal, "undrain nodes")
    return _set_drain(request, node, False, "")
