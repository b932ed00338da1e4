"""Tenancy service: sectors, organizations, projects, users and memberships.

Functions take keyword arguments and work inside the caller's transaction (they flush, never
commit). Unknown ids raise the matching ``Unknown*`` error; duplicate names raise ``Conflict``;
every rule a value breaks raises ``InvalidInput`` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aicc.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    UnknownAcceleratorType,
    UnknownOrganization,
    UnknownProject,
    UnknownSector,
    UnknownUser,
)
from aicc.store.models import (
    AcceleratorTypeRow,
    Membership,
    Organization,
    Project,
    Role,
    Sector,
    SectorEntitlement,
    User,
)

_SHARE_EPS = 1e-9


# --- sectors -------------------------------------------------------------------------------


def get_sector(*, session: Session, sector_id: int) -> Sector:
    sector = session.get(Sector, sector_id)
    if sector is None:
        raise UnknownSector(f"no sector with id {sector_id}", field="sector_id")
    return sector


def list_sectors(*, session: Session) -> list[Sector]:
    return list(session.scalars(select(Sector).order_by(Sector.id)))


def _check_shares(session: Session, shares: dict[str, float], sector_id: int | None) -> None:
    known = set(session.scalars(select(AcceleratorTypeRow.name)))
    for type_name, share in shares.items():
        if type_name not in known:
            raise UnknownAcceleratorType(
                f"unknown accelerator type {type_name!r}", field=f"shares.{type_name}")
        if not 0.0 <= share <= 1.0:
            raise InvalidInput(f"share of {type_name} must be between 0 and 1",
                               field=f"shares.{type_name}")
        q = select(func.coalesce(func.sum(SectorEntitlement.share), 0.0)).where(
            SectorEntitlement.accelerator_type == type_name)
        if sector_id is not None:
            q = q.where(SectorEntitlement.sector_id != sector_id)
        others = float(session.scalar(q) or 0.0)
        if others + share > 1.0 + _SHARE_EPS:
            raise InvalidInput(
                f"shares of {type_name} over all sectors would be {others + share:.3f} (> 1)",
                field=f"shares.{type_name}")


def create_sector(*, session: Session, name: str, description: str = "",
                  lend_limit: float = 1.0, shares: dict[str, float] | None = None) -> Sector:
    if session.scalar(select(Sector.id).where(Sector.name == name)) is not None:
        raise Conflict(f"a sector named {name!r} exists", field="name")
    if not 0.0 <= lend_limit <= 1.0:
        raise InvalidInput("lend_limit must be between 0 and 1", field="lend_limit")
    shares = shares or {}
    _check_shares(session, shares, None)
    sector = Sector(name=name, description=description, lend_limit=lend_limit)
    sector.entitlements = [SectorEntitlement(accelerator_type=t, share=s)
                           for t, s in shares.items()]
    session.add(sector)
    session.flush()
    return sector


def update_sector(*, session: Session, sector_id: int, description: str | None = None,
                  lend_limit: float | None = None, shares: dict[str, float] | None = None
                  ) -> Sector:
    sector = get_sector(session=session, sector_id=sector_id)
    if lend_limit is not None:
        if not 0.0 <= lend_limit <= 1.0:
            raise InvalidInput("lend_limit must be between 0 and 1", field="lend_limit")
        sector.lend_limit = lend_limit
    if description is not None:
        sector.description = description
    if shares:
        _check_shares(session, shares, sector.id)
        current = {e.accelerator_type: e for e in sector.entitlements}
        for t, s in shares.items():
            if t in current:
                current[t].share = s
            else:
                sector.entitlements.append(SectorEntitlement(accelerator_type=t, share=s))
    session.flush()
    return sector


# --- organizations -------------------------------------------------------------------------


def get_organization(*, session: Session, organization_id: int) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise UnknownOrganization(f"no organization with id {organization_id}",
                                  field="organization_id")
    return org


def list_organizations(*, session: Session, organization_ids: Iterable[int] | None = None,
                       sector_id: int | None = None, limit: int = 100, after_id: int = 0
                       ) -> list[Organization]:
    q = select(Organization).where(Organization.id > after_id)
    if organization_ids is not None:
        q = q.where(Organization.id.in_(list(organization_ids)))
    if sector_id is not None:
        q = q.where(Organization.sector_id == sector_id)
    return list(session.scalars(q.order_by(Organization.id).limit(limit)))


def create_organization(*, session: Session, name: str, sector_id: int, region: str = "",
                        weight: float = 1.0) -> Organization:
    get_sector(session=session, sector_id=sector_id)
    if session.scalar(select(Organization.id).where(Organization.name == name)) is not None:
        raise Conflict(f"an organization named {name!r} exists", field="name")
    if weight <= 0:
        raise InvalidInput("weight must be positive", field="weight")
    org = Organization(name=name, sector_id=sector_id, region=region, weight=weight)
    session.add(org)
    session.flush()
    return org


def update_organization(*, session: Session, organization_id: int, region: str | None = None,
                        weight: float | None = None, sector_id: int | None = None
                        ) -> Organization:
    org = get_organization(session=session, organization_id=organization_id)
    if sector_id is not None:
        get_sector(session=session, sector_id=sector_id)
        org.sector_id = sector_id
    if region is not None:
        org.region = region
    if weight is not None:
        if weight <= 0:
            raise InvalidInput("weight must be positive", field="weight")
        org.weight = weight
    session.flush()
    session.refresh(org)
    return org


# --- projects ------------------------------------------------------------------------------


def get_project(*, session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise UnknownProject(f"no project with id {project_id}", field="project_id")
    return project


def list_projects(*, session: Session, project_ids: Iterable[int] | None = None,
                  organization_id: int | None = None, limit: int = 100, after_id: int = 0
                  ) -> list[Project]:
    q = select(Project).where(Project.id > after_id)
    if project_ids is not None:
        q = q.where(Project.id.in_(list(project_ids)))
    if organization_id is not None:
        q = q.where(Project.organization_id == organization_id)
    return list(session.scalars(q.order_by(Project.id).limit(limit)))


def create_project(*, session: Session, name: str, organization_id: int, title: str = "",
                   weight: float = 1.0) -> Project:
    get_organization(session=session, organization_id=organization_id)
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"a project named {name!r} exists", field="name")
    if weight <= 0:
        raise InvalidInput("weight must be positive", field="weight")
    project = Project(name=name, organization_id=organization_id, title=title, weight=weight)
    session.add(project)
    session.flush()
    return project


def update_project(*, session: Session, project_id: int, title: str | None = None,
                   weight: float | None = None) -> Project:
    project = get_project(session=session, project_id=project_id)
    if title is not None:
        project.title = title
    if weight is not None:
        if weight <= 0:
            raise InvalidInput("weight must be positive", field="weight")
        project.weight = weight
    session.flush()
    return project


# --- users and memberships -----------------------------------------------------------------


def get_user(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(f"no user with id {user_id}", field="user_id")
    return user


def get_user_by_name(*, session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUser(f"no user named {name!r}", field="user")
    return user


def list_users(*, session: Session, limit: int = 100, after_id: int = 0) -> list[User]:
    q = select(User).where(User.id > after_id).order_by(User.id).limit(limit)
    return list(session.scalars(q))


def create_user(*, session: Session, name: str, email: str = "", is_admin: bool = False) -> User:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} exists", field="name")
    user = User(name=name, email=email, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def get_membership(*, session: Session, membership_id: int) -> Membership:
    m = session.get(Membership, membership_id)
    if m is None:
        raise NotFound(f"no membership with id {membership_id}", field="membership_id")
    return m


def _check_scope(session: Session, role: Role, project_id: int | None,
                 organization_id: int | None) -> None:
    if role == Role.MEMBER:
        if project_id is None or organization_id is not None:
            raise InvalidInput("a member role needs project_id (and no organization_id)",
                               field="project_id")
        get_project(session=session, project_id=project_id)
    else:
        if organization_id is None or project_id is not None:
            raise InvalidInput("an org_admin role needs organization_id (and no project_id)",
                               field="organization_id")
        get_organization(session=session, organization_id=organization_id)


def _check_unique(session: Session, user_id: int, project_id: int | None,
                  organization_id: int | None, exclude: int | None = None) -> None:
    q = select(Membership.id).where(Membership.user_id == user_id)
    q = q.where(Membership.project_id.is_(None) if project_id is None
                else Membership.project_id == project_id)
    q = q.where(Membership.organization_id.is_(None) if organization_id is None
                else Membership.organization_id == organization_id)
    if exclude is not None:
        q = q.where(Membership.id != exclude)
    if session.scalar(q) is not None:
        raise Conflict("the user already holds a role there", field="user_id")


def create_membership(*, session: Session, user_id: int, role: Role | str,
                      project_id: int | None = None, organization_id: int | None = None
                      ) -> Membership:
    role = Role(role)
    get_user(session=session, user_id=user_id)
    _check_scope(session, role, project_id, organization_id)
    _check_unique(session, user_id, project_id, organization_id)
    m = Membership(user_id=user_id, role=role, project_id=project_id,
                   organization_id=organization_id)
    session.add(m)
    session.flush()
    return m


def update_membership(*, session: Session, membership_id: int, role: Role | str,
                      project_id: int | None = None, organization_id: int | None = None
                      ) -> Membership:
    """Move a membership to another role and scope (e.g. promote a member to org_admin)."""
    m = get_membership(session=session, membership_id=membership_id)
    role = Role(role)
    _check_scope(session, role, project_id, organization_id)
    _check_unique(session, m.user_id, project_id, organization_id, exclude=m.id)
    m.role, m.project_id, m.organization_id = role, project_id, organization_id
    session.flush()
    return m


def list_memberships(*, session: Session, project_ids: Iterable[int] | None = None,
                     organization_ids: Iterable[int] | None = None,
                     user_id: int | None = None, limit: int = 100, after_id: int = 0
                     ) -> list[Membership]:
    """Memberships, optionally only those whose scope is in the given projects or orgs."""
    q = select(Membership).where(Membership.id > after_id)
    if project_ids is not None or organization_ids is not None:
        pids = list(project_ids or [])
        oids = list(organization_ids or [])
        q = q.where(Membership.project_id.in_(pids) | Membership.organization_id.in_(oids))
    if user_id is not None:
        q = q.where(Membership.user_id == user_id)
    return list(session.scalars(q.order_by(Membership.id).limit(limit)))
