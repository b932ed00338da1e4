"""Routes for sectors, organizations, projects, users, tokens and memberships.

Visibility first, then role: a tenant the caller cannot see answers 404; one it can see but may
not change answers 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.api.auth import CurrentPrincipal, invalidate
from aicc.api.deps import After, FilterId, Limit, path_id, tx
from aicc.api.schemas import (
    MembershipIn,
    MembershipOut,
    MembershipPatch,
    MeOut,
    OrganizationIn,
    OrganizationOut,
    OrganizationPatch,
    Page,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
    SectorIn,
    SectorOut,
    SectorPatch,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    page,
)
from aicc.api.tokens import create_token
from aicc.errors import NotFound, PermissionDenied, UnknownUser
from aicc.store.models import Membership, Project, Role
from aicc.tenancy import service
from aicc.tenancy.access import (
    Principal,
    require_admin,
    require_known_project,
    require_org,
    require_project,
    visible_org_ids,
    visible_project_ids,
)

router = APIRouter(prefix="/v1", tags=["tenancy"])


# --- sectors (public facts: any authenticated caller reads them) ---------------------------


@router.get("/sectors", response_model=Page[SectorOut])
def list_sectors(request: Request, principal: CurrentPrincipal) -> dict:
    with tx(request) as s:
        items = service.list_sectors(session=s)
        return {"items": [SectorOut.model_validate(i).model_dump(mode="json") for i in items],
                "next_after": None}


@router.get("/sectors/{sector_id}", response_model=SectorOut)
def get_sector(request: Request, principal: CurrentPrincipal, sector_id: int = path_id()
               ) -> SectorOut:
    with tx(request) as s:
        return SectorOut.model_validate(service.get_sector(session=s, sector_id=sector_id))


@router.post("/sectors", response_model=SectorOut, status_code=status.HTTP_201_CREATED)
def create_sector(request: Request, principal: CurrentPrincipal, body: SectorIn) -> SectorOut:
    require_admin(principal, "create sectors")
    with tx(request) as s:
        sector = service.create_sector(session=s, name=body.name, description=body.description,
                                       lend_limit=body.lend_limit, shares=body.shares)
        return SectorOut.model_validate(sector)


@router.patch("/sectors/{sector_id}", response_model=SectorOut)
def update_sector(request: Request, principal: CurrentPrincipal, body: SectorPatch,
                  sector_id: int = path_id()) -> SectorOut:
    require_admin(principal, "change sectors")
    with tx(request) as s:
        sector = service.update_sector(session=s, sector_id=sector_id,
                                       description=body.description,
                                       lend_limit=body.lend_limit, shares=body.shares)
        return SectorOut.model_validate(sector)


# --- organizations -------------------------------------------------------------------------


@router.get("/organizations", response_model=Page[OrganizationOut])
def list_organizations(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
                       after: After = 0, sector_id: FilterId = None) -> dict:
    with tx(request) as s:
        items = service.list_organizations(session=s, organization_ids=visible_org_ids(principal),
                                           sector_id=sector_id, limit=limit, after_id=after)
        return page(items, limit, OrganizationOut)


@router.get("/organizations/{organization_id}", response_model=OrganizationOut)
def get_organization(request: Request, principal: CurrentPrincipal,
                     organization_id: int = path_id()) -> OrganizationOut:
    require_org(principal, organization_id)
    with tx(request) as s:
        return OrganizationOut.model_validate(
            service.get_organization(session=s, organization_id=organization_id))


@router.post("/organizations", response_model=OrganizationOut,
             status_code=status.HTTP_201_CREATED)
def create_organization(request: Request, principal: CurrentPrincipal, body: OrganizationIn
                        ) -> OrganizationOut:
    require_admin(principal, "create organizations")
    with tx(request) as s:
        org = service.create_organization(session=s, name=body.name, sector_id=body.sector_id,
                                          region=body.region, weight=body.weight)
        return OrganizationOut.model_validate(org)


@router.patch("/organizations/{organization_id}", response_model=OrganizationOut)
def update_organization(request: Request, principal: CurrentPrincipal, body: OrganizationPatch,
                        organization_id: int = path_id()) -> OrganizationOut:
    require_org(principal, organization_id)
    if not principal.administers_org(organization_id):
        raise PermissionDenied("only an admin of the organization may change it")
    if not principal.is_admin and (body.sector_id is not None or body.weight is not None):
        raise PermissionDenied("only a center admin may change an organization's sector or "
                               "weight", field="sector_id" if body.sector_id else "weight")
    with tx(request) as s:
        org = service.update_organization(session=s, organization_id=organization_id,
                                          region=body.region, weight=body.weight,
                                          sector_id=body.sector_id)
        return OrganizationOut.model_validate(org)


# --- projects ------------------------------------------------------------------------------


@router.get("/projects", response_model=Page[ProjectOut])
def list_projects(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
                  after: After = 0, organization_id: FilterId = None) -> dict:
    with tx(request) as s:
        items = service.list_projects(session=s, project_ids=visible_project_ids(principal),
                                      organization_id=organization_id, limit=limit,
                                      after_id=after)
        return page(items, limit, ProjectOut)


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(request: Request, principal: CurrentPrincipal, project_id: int = path_id()
                ) -> ProjectOut:
    require_project(principal, project_id)
    with tx(request) as s:
        return ProjectOut.model_validate(service.get_project(session=s, project_id=project_id))


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create_project(request: Request, principal: CurrentPrincipal, body: ProjectIn
                   ) -> ProjectOut:
    require_org(principal, body.organization_id)
    if not principal.administers_org(body.organization_id):
        raise PermissionDenied("only an admin of the organization may create projects")
    with tx(request) as s:
        project = service.create_project(session=s, name=body.name,
                                         organization_id=body.organization_id,
                                         title=body.title, weight=body.weight)
        out = ProjectOut.model_validate(project)
    invalidate(request)
    return out


@router.patch("/projects/{project_id}", response_model=ProjectOut)
def update_project(request: Request, principal: CurrentPrincipal, body: ProjectPatch,
                   project_id: int = path_id()) -> ProjectOut:
    require_project(principal, project_id)
    if not principal.administers_project(project_id):
        raise PermissionDenied("only an admin of the project's organization may change it")
    with tx(request) as s:
        project = service.update_project(session=s, project_id=project_id, title=body.title,
                                         weight=body.weight)
        return ProjectOut.model_validate(project)


# --- users and tokens ----------------------------------------------------------------------


@router.get("/users/me", response_model=MeOut)
def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(user_id=principal.user_id, name=principal.name, is_admin=principal.is_admin,
                 project_ids=sorted(principal.project_ids), org_ids=sorted(principal.org_ids))


@router.get("/users", response_model=Page[UserOut])
def list_users(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
               after: After = 0) -> dict:
    require_admin(principal, "list users")
    with tx(request) as s:
        return page(service.list_users(session=s, limit=limit, after_id=after), limit, UserOut)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(request: Request, principal: CurrentPrincipal, body: UserIn) -> UserOut:
    require_admin(principal, "create users")
    with tx(request) as s:
        return UserOut.model_validate(service.create_user(session=s, name=body.name,
                                                          email=body.email,
                                                          is_admin=body.is_admin))


@router.post("/users/{user_id}/tokens", response_model=TokenOut,
             status_code=status.HTTP_201_CREATED)
def issue_token(request: Request, principal: CurrentPrincipal, body: TokenIn,
                user_id: int = path_id()) -> TokenOut:
    if user_id != principal.user_id:
        require_admin(principal, "issue tokens for other users")
    with tx(request) as s:
        token = create_token(session=s, user_id=user_id, name=body.name)
    return TokenOut(token=token, user_id=user_id)


# --- memberships ---------------------------------------------------------------------------


def _visible_membership(principal: Principal, m: Membership) -> bool:
    if principal.is_admin or m.user_id == principal.user_id:
        return True
    if m.project_id is not None:
        return m.project_id in principal.project_ids
    return m.organization_id in principal.org_ids


def _may_grant(principal: Principal, role: Role, project_id: int | None,
               organization_id: int | None) -> None:
    """404 for a scope the caller cannot see, 403 for one it sees but may not manage."""
    if principal.is_admin:
        return
    if project_id is not None:
        require_project(principal, project_id)
    if organization_id is not None:
        require_org(principal, organization_id)
    if role != Role.MEMBER:
        raise PermissionDenied("only a center admin may appoint organization admins",
                               field="role")
    if project_id is None or not principal.administers_project(project_id):
        raise PermissionDenied("only an admin of the project's organization may add members")


def _user_of_org(session: Session, principal: Principal, user_id: int,
                 project_id: int | None) -> None:
    """An organization admin adds only users already in the project's organization (a
    membership of the organization or of one of its projects); the center admin brings new
    users in. Anyone else answers exactly as an unknown id does, so ids cannot be probed."""
    org_id = principal.project_org.get(project_id) if project_id is not None else None
    in_org = org_id is not None and session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id,
            (Membership.organization_id == org_id) | Membership.project_id.in_(
                select(Project.id).where(Project.organization_id == org_id))).limit(1))
    if not in_org:
        raise UnknownUser(f"no user with id {user_id}", field="user_id")


@router.get("/memberships", response_model=Page[MembershipOut])
def list_memberships(request: Request, principal: CurrentPrincipal, limit: Limit = 100,
                     after: After = 0, user_id: FilterId = None,
                     project_id: FilterId = None) -> dict:
    with tx(request) as s:
        if principal.is_admin:
            pids, oids = None, None
        else:
            pids, oids = principal.project_ids, principal.org_ids
        if project_id is not None:
            require_known_project(s, principal, project_id)
            pids, oids = {project_id}, set()
        items = service.list_memberships(session=s, project_ids=pids, organization_ids=oids,
                                         user_id=user_id, limit=limit, after_id=after)
        return page(items, limit, MembershipOut)


@router.get("/memberships/{membership_id}", response_model=MembershipOut)
def get_membership(request: Request, principal: CurrentPrincipal,
                   membership_id: int = path_id()) -> MembershipOut:
    with tx(request) as s:
        m = service.get_membership(session=s, membership_id=membership_id)
        if not _visible_membership(principal, m):
            raise NotFound(f"no membership with id {membership_id}", field="membership_id")
        return MembershipOut.model_validate(m)


@router.post("/memberships", response_model=MembershipOut, status_code=status.HTTP_201_CREATED)
def create_membership(request: Request, principal: CurrentPrincipal, body: MembershipIn
                      ) -> MembershipOut:
    _may_grant(principal, body.role, body.project_id, body.organization_id)
    with tx(request) as s:
        if not principal.is_admin:
            _user_of_org(s, principal, body.user_id, body.project_id)
        m = service.create_membership(session=s, user_id=body.user_id, role=body.role,
                                      project_id=body.project_id,
                                      organization_id=body.organization_id)
        out = MembershipOut.model_validate(m)
    invalidate(request)
    return out


@router.patch("/memberships/{membership_id}", response_model=MembershipOut)
def update_membership(request: Request, principal: CurrentPrincipal, body: MembershipPatch,
                      membership_id: int = path_id()) -> MembershipOut:
    """Partial: what is not sent stays (see ``MembershipPatch``)."""
    with tx(request) as s:
        m = service.get_membership(session=s, membership_id=membership_id)
        if not _visible_membership(principal, m):
            raise NotFound(f"no membership with id {membership_id}", field="membership_id")
        _may_grant(principal, m.role, m.project_id, m.organization_id)
        role = body.role if body.role is not None else m.role
        if {"project_id", "organization_id"} & body.model_fields_set:
            project_id, organization_id = body.project_id, body.organization_id
        else:
            project_id, organization_id = m.project_id, m.organization_id
        _may_grant(principal, role, project_id, organization_id)
        m = service.update_membership(session=s, membership_id=membership_id, role=role,
                                      project_id=project_id, organization_id=organization_id)
        out = MembershipOut.model_validate(m)
    invalidate(request)
    return out

