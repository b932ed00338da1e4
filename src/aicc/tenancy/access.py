"""Who may see what: the principal behind a request and the projects it may act on.

Roles: a center ``admin`` sees everything; an ``org_admin`` sees and acts on every project of the
organizations it administers; a ``member`` on the projects it belongs to. Anything else must look
as if it did not exist (callers raise ``Unknown*`` → 404), so that ids of other tenants leak
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.errors import PermissionDenied, UnknownOrganization, UnknownProject
from aicc.store.models import Membership, Project, Role, User


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    name: str
    is_admin: bool = False
    # Projects the principal may see and act on (as member, or through an administered org).
    project_ids: frozenset[int] = field(default_factory=frozenset)
    # Organizations the principal administers (org_admin).
    org_ids: frozenset[int] = field(default_factory=frozenset)
    # Organization of every visible project.
    project_org: dict[int, int] = field(default_factory=dict, hash=False, compare=False)

    @property
    def visible_org_ids(self) -> frozenset[int]:
        """Organizations the principal may read: administered ones and those of its projects."""
        return self.org_ids | frozenset(self.project_org.values())

    def can_see_project(self, project_id: int) -> bool:
        return self.is_admin or project_id in self.project_ids

    def administers_org(self, organization_id: int) -> bool:
        return self.is_admin or organization_id in self.org_ids

    def administers_project(self, project_id: int) -> bool:
        return self.is_admin or self.project_org.get(project_id, -1) in self.org_ids


def visible_project_ids(principal: Principal) -> frozenset[int] | None:
    """The projects a principal may see, or ``None`` for all (a center admin).

    Scope every query with it: ``if (ids := visible_project_ids(p)) is not None:
    q = q.where(Table.project_id.in_(ids))``.
    """
    return None if principal.is_admin else principal.project_ids


def visible_org_ids(principal: Principal) -> frozenset[int] | None:
    return None if principal.is_admin else principal.visible_org_ids


def require_project(principal: Principal, project_id: int, *, field: str = "project_id") -> None:
    """Raise ``UnknownProject`` (404) unless the principal may see the project."""
    if not principal.can_see_project(project_id):
        raise UnknownProject(f"no project with id {project_id}", field=field)


def require_known_project(session: Session, principal: Principal, project_id: int, *,
                          field: str = "project_id") -> None:
    """:func:`require_project`, and the project exists: a filter by a project id nobody has
    is 404, as one the principal may not see, never an empty page (an admin sees every id)."""
    require_project(principal, project_id, field=field)
    if principal.is_admin and session.get(Project, project_id) is None:
        raise UnknownProject(f"no project with id {project_id}", field=field)


def require_org(principal: Principal, organization_id: int, *,
                field: str = "organization_id") -> None:
    if principal.is_admin or organization_id in principal.visible_org_ids:
        return
    raise UnknownOrganization(f"no organization with id {organization_id}", field=field)


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise PermissionDenied(f"only a center admin may {action}")


def load_principal(*, session: Session, user: User) -> Principal:
    """Resolve a user's roles into the sets every request is scoped by."""
    if user.is_admin:
        return Principal(user_id=user.id, name=user.name, is_admin=True)
    rows = session.execute(
        select(Membership.role, Membership.project_id, Membership.organization_id)
        .where(Membership.user_id == user.id)).all()
    org_ids = frozenset(o for r, _, o in rows if r == Role.ORG_ADMIN and o is not None)
    member_pids = {p for r, p, _ in rows if r == Role.MEMBER and p is not None}
    q = select(Project.id, Project.organization_id).where(
        Project.id.in_(member_pids) | Project.organization_id.in_(org_ids))
    project_org = {pid: oid for pid, oid in session.execute(q).all()}
    return Principal(user_id=user.id, name=user.name, is_admin=False,
                     project_ids=frozenset(project_org), org_ids=org_ids,
                     project_org=project_org)
