"""Routes for nodes: everyone authenticated reads the fleet; only admins drain and undrain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.api.auth import CurrentPrincipal
from aicc.api.deps import After, Limit, center_now, known_accelerator_type, tx
from aicc.api.schemas import DrainIn, NodeOut, Page
from aicc.errors import InvalidTransition, UnknownNode
from aicc.store.models import Node, NodeState
from aicc.tenancy.access import require_admin
from aicc.workload.jobs import iso_time

router = APIRouter(prefix="/v1", tags=["fleet"])


def node_to_dict(node: Node) -> dict[str, Any]:
    return {"id": node.id, "name": node.name, "accelerator_type": node.accelerator_type,
            "accelerators": node.accelerators, "state": NodeState(node.state).value,
            "state_reason": node.state_reason, "leaf": node.leaf.name, "pod_id": node.leaf.pod_id,
            "updated_at": iso_time(node.updated_at)}


def _find(session: Session, ref: str) -> Node:
    """A node by id (digits) or by name."""
    node = None
    if ref.isdigit() and len(ref) < 10:
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
        if state is not None:
            q = q.where(Node.state == state)
        if accelerator_type is not None:
            q = q.where(Node.accelerator_type == accelerator_type)
        items = list(s.scalars(q.order_by(Node.id).limit(limit)))
        return {"items": [node_to_dict(n) for n in items],
                "next_after": items[-1].id if len(items) == limit else None}


@router.get("/nodes/{node}", response_model=NodeOut)
def get_node(request: Request, principal: CurrentPrincipal, node: str) -> dict:
    with tx(request) as s:
        return node_to_dict(_find(s, node))


def _set_state(request: Request, ref: str, to: NodeState, reason: str) -> dict:
    with tx(request) as s:
        node = _find(s, ref)
        if node.state == NodeState.DOWN:
            raise InvalidTransition(f"node {node.name} is down; it comes back up when healthy",
                                    field="state")
        node.state, node.state_reason, node.updated_at = to, reason, center_now(request)
        s.flush()
        return node_to_dict(node)


@router.post("/nodes/{node}/drain", response_model=NodeOut)
def drain_node(request: Request, principal: CurrentPrincipal, node: str, body: DrainIn
               ) -> dict:
    """Stop placing new work on the node; running jobs finish."""
    require_admin(principal, "drain nodes")
    return _set_state(request, node, NodeState.DRAIN, body.reason or f"drained by "
                      f"{principal.name}")


@router.post("/nodes/{node}/undrain", response_model=NodeOut)
def undrain_node(request: Request, principal: CurrentPrincipal, node: str) -> dict:
    require_admin(principal, "undrain nodes")
    return _set_state(request, node, NodeState.UP, "")
