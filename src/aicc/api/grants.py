"""Routes for grants: tenants read their own; only the center admin creates or changes them
(grants come from approved applications)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from aicc.allocation import grants as service
from aicc.api.auth import CurrentPrincipal
from aicc.api.deps import After, FilterId, Limit, known_accelerator_type, path_id, tx
from aicc.api.schemas import GrantIn, GrantOut, GrantPatch, Page, page
from aicc.errors import UnknownGrant
from aicc.store.models import GrantState
from aicc.tenancy.access import (
    require_admin,
    require_known_project,
    require_project,
    visible_project_ids,
)

router = APIRouter(prefix="/v1", tags=["grants"])


@router.get("/grants", response_model=Page[GrantOut])
def list_grants(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
                after: After = 0, project_id: FilterId = None,
                accelerator_type: str | None = None, state: GrantState | None = None) -> dict:
    with tx(request) as s:
        if project_id is not None:
            require_known_project(s, principal, project_id)
        known_accelerator_type(s, accelerator_type)
        items = service.list_grants(session=s, project_ids=visible_project_ids(principal),
                                    project_id=project_id, accelerator_type=accelerator_type,
                                    state=state, limit=limit, after_id=after)
        return page(items, limit, GrantOut)


@router.get("/grants/{grant_id}", response_model=GrantOut)
def get_grant(request: Request, principal: CurrentPrincipal, grant_id: int = path_id()
              ) -> GrantOut:
    with tx(request) as s:
        grant = service.get_grant(session=s, grant_id=grant_id)
        if not principal.can_see_project(grant.project_id):
            raise UnknownGrant(f"no grant with id {grant_id}", field="grant_id")
        return GrantOut.model_validate(grant)


@router.post("/grants", response_model=GrantOut, status_code=status.HTTP_201_CREATED)
def create_grant(request: Request, principal: CurrentPrincipal, body: GrantIn) -> GrantOut:
    require_project(principal, body.project_id)
    require_admin(principal, "create grants")
    with tx(request) as s:
        grant = service.create_grant(session=s, project_id=body.project_id,
                                     accelerator_type=body.accelerator_type,
                                     accelerator_hours=body.accelerator_hours,
                                     start=body.start, end=body.end, note=body.note)
        return GrantOut.model_validate(grant)


@router.patch("/grants/{grant_id}", response_model=GrantOut)
def update_grant(request: Request, principal: CurrentPrincipal, body: GrantPatch,
                 grant_id: int = path_id()) -> GrantOut:
    with tx(request) as s:
        grant = service.get_grant(session=s, grant_id=grant_id)
        if not principal.can_see_project(grant.project_id):
            raise UnknownGrant(f"no grant with id {grant_id}", field="grant_id")
        require_admin(principal, "change grants")
        grant = service.update_grant(session=s, grant_id=grant_id,
                                     accelerator_hours=body.accelerator_hours, start=body.start,
                                     end=body.end, state=body.state, note=body.note)
        return GrantOut.model_validate(grant)
