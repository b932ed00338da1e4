"""Tenancy sync: aicc's sectors, organizations and projects as a Slurm account tree.

The tree in Slurm is ``root → <parent> (default "aicc") → sector → organization → project``;
members become Slurm users with an association to each of their projects, and the Unix user
aicc submits as gets one too (jobs run as that user and are charged to the project's account).
Then ``sacct -A <project>`` and ``sreport cluster AccountUtilizationByUser`` speak aicc's words.

Slurm account names are case-insensitive and share one name space, so names are lower-cased
and a name used at two levels (a sector and a project both called ``public``) is refused.
Only accounts below the parent are ever changed; :func:`sync_accounts` removes stale ones only
when asked (``prune=True``).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.errors import Conflict, EngineError, InvalidInput

from .runner import SlurmRunner

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def slurm_name(name: str, what: str) -> str:
    """The Slurm account or user name for an aicc name (validated: Slurm is strict here)."""
    out = name.strip().lower()
    if not _NAME.match(out):
        raise InvalidInput(f"{what} name {name!r} cannot be a Slurm name (letters, digits, "
                           "'_', '.', '-'; at most 64)", field=f"{what}.name")
    return out


@dataclass(frozen=True, slots=True)
class ProjectNode:
    name: str
    members: tuple[str, ...] = ()
    fairshare: int = 100


@dataclass(frozen=True, slots=True)
class OrgNode:
    name: str
    projects: tuple[ProjectNode, ...] = ()
    fairshare: int = 100


@dataclass(frozen=True, slots=True)
class SectorNode:
    name: str
    organizations: tuple[OrgNode, ...] = ()
    fairshare: int = 100


@dataclass
class SyncReport:
    created_accounts: list[str] = field(default_factory=list)
    moved_accounts: list[str] = field(default_factory=list)
    removed_accounts: list[str] = field(default_factory=list)
    added_associations: list[str] = field(default_factory=list)  # "user@account"
    removed_associations: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.created_accounts, self.moved_accounts, self.removed_accounts,
                    self.added_associations, self.removed_associations))


class AccountManager:
    """Reads and changes Slurm's account tree through ``sacctmgr``."""

    def __init__(self, runner: SlurmRunner, *, parent: str = "aicc",
                 submit_user: str | None = None) -> None:
        self.runner = runner
        self.parent = slurm_name(parent, "account")
        self.submit_user = submit_user or getpass.getuser()
        self._known: set[str] | None = None

    def _sacctmgr(self, *args: str) -> str:
        return self.runner.run(["sacctmgr", "-i", *args])

    def associations(self) -> tuple[dict[str, str], set[tuple[str, str]]]:
        """``(account -> parent, {(user, account)})`` as slurmdbd has them."""
        out = self.runner.run(["sacctmgr", "-n", "-P", "list", "associations",
                               "format=Account,ParentName,User"])
        parents: dict[str, str] = {}
        users: set[tuple[str, str]] = set()
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) < 3:
                continue
            account, parent, user = parts[0], parts[1], parts[2]
            if user:
                users.add((user, account))
            else:
                parents[account] = parent
        return parents, users

    def _ensure_parent(self, parents: dict[str, str]) -> None:
        if self.parent not in parents:
            self._sacctmgr("add", "account", self.parent, "parent=root",
                           "description=aicc tenants", "organization=aicc")
            parents[self.parent] = "root"

    def ensure_project_account(self, account: str) -> None:
        """Make sure ``account`` exists (under the parent) and the submitting user may use it."""
        if self._known is not None and account in self._known:
            return
        parents, users = self.associations()
        if account in parents or account == self.parent:
            self._refuse_foreign(account, parents)
        self._known = self._known or set()
        if (self.submit_user, account) in users:
            self._known.add(account)
            return
        self._ensure_parent(parents)
        if account not in parents:
            self._sacctmgr("add", "account", account, f"parent={self.parent}",
                           f"description=aicc project {account}", f"organization={account}")
        self._sacctmgr("add", "user", self.submit_user, f"account={account}")
        self._known.add(account)

    def _refuse_foreign(self, account: str, parents: dict[str, str]) -> None:
        """An existing account is a project's only if it sits below the parent and has no
        sub-accounts: never take over another group's account, nor charge a project's jobs to
        a sector or organization of the same name."""
        up, seen = parents.get(account), {account}
        while up and up != self.parent and up not in seen:
            seen.add(up)
            up = parents.get(up)
        if account == self.parent or up != self.parent:
            raise EngineError(f"project account {account!r} exists in Slurm outside "
                              f"{self.parent!r}; aicc does not take it over: rename the project",
                              field="project.name")
        if account in parents.values():
            raise EngineError(f"project account {account!r} is a sector or organization account "
                              "in Slurm (it has sub-accounts): rename the project",
                              field="project.name")

    def sync(self, sectors: Iterable[SectorNode], *, prune: bool = False) -> SyncReport:
        """Make Slurm's tree below the parent match ``sectors`` (idempotent)."""
        want_parent: dict[str, str] = {}
        want_share: dict[str, int] = {}
        want_users: set[tuple[str, str]] = set()
        level: dict[str, str] = {}

        def place(name: str, what: str, parent: str, share: int) -> str:
            acct = slurm_name(name, what)
            if acct in level:
                raise Conflict(f"{what} {name!r} and {level[acct]} {acct!r} would be the same "
                               "Slurm account", field=f"{what}.name")
            if acct in {"root", self.parent}:
                raise Conflict(f"{what} {name!r} collides with Slurm account {acct!r}",
                               field=f"{what}.name")
            level[acct] = what
            want_parent[acct] = parent
            want_share[acct] = max(1, int(share))
            return acct

        for s in sectors:
            sa = place(s.name, "sector", self.parent, s.fairshare)
            for o in s.organizations:
                oa = place(o.name, "organization", sa, o.fairshare)
                for p in o.projects:
                    pa = place(p.name, "project", oa, p.fairshare)
                    want_users.add((self.submit_user, pa))
                    for m in p.members:
                        want_users.add((slurm_name(m, "user"), pa))

        report = SyncReport()
        parents, users = self.associations()
        self._ensure_parent(parents)
        ours = _below(parents, self.parent)
        # Create top-down so every parent exists first; one sacctmgr call per parent.
        order = sorted(want_parent, key=lambda a: _depth(a, want_parent))
        for acct in order:
            parent = want_parent[acct]
            if acct not in parents:
                self._sacctmgr("add", "account", acct, f"parent={parent}",
                               f"fairshare={want_share[acct]}",
                               f"description=aicc {level[acct]} {acct}",
                               f"organization={acct}")
                parents[acct] = parent
                report.created_accounts.append(acct)
            elif acct in ours or parents[acct] == self.parent:
                if parents[acct] != parent:
                    self._sacctmgr("modify", "account", "where", f"name={acct}", "set",
                                   f"parent={parent}")
                    report.moved_accounts.append(acct)
            else:
                raise Conflict(f"Slurm account {acct!r} exists outside {self.parent!r} "
                               f"(under {parents[acct]!r}); aicc leaves it alone",
                               field=f"{level[acct]}.name")
        by_user: dict[str, list[str]] = {}
        for user, acct in sorted(want_users - users):
            by_user.setdefault(user, []).append(acct)
        for user, accts in by_user.items():
            self._sacctmgr("add", "user", user, f"account={','.join(accts)}")
            report.added_associations += [f"{user}@{a}" for a in accts]
        if prune:
            ours = _below(parents, self.parent)
            for user, acct in sorted(users - want_users):
                if acct in ours:
                    self._sacctmgr("delete", "user", "where", f"name={user}",
                                   f"account={acct}")
                    report.removed_associations.append(f"{user}@{acct}")
            stale = [a for a in ours if a not in want_parent]
            for acct in sorted(stale, key=lambda a: -_depth(a, parents)):
                try:
                    self._sacctmgr("delete", "account", "where", f"name={acct}")
                except EngineError as exc:  # still has running jobs: next sync
                    raise EngineError(f"could not remove Slurm account {acct}: {exc.message}",
                                      account=acct) from None
                report.removed_accounts.append(acct)
        self._known = None
        return report


def _below(parents: dict[str, str], top: str) -> set[str]:
    """Every account whose chain of parents reaches ``top``."""
    out: set[str] = set()
    for acct in parents:
        seen, cur = 0, parents.get(acct)
        while cur and seen < 64:
            if cur == top:
                out.add(acct)
                break
            cur, seen = parents.get(cur), seen + 1
    return out


def _depth(acct: str, parents: dict[str, str]) -> int:
    d, cur = 0, parents.get(acct)
    while cur in parents and d < 64:
        d, cur = d + 1, parents.get(cur)
    return d


def tree_from_store(session: Session) -> list[SectorNode]:
    """The tenancy tree from the database (weights become Slurm fair-share values)."""
    from aicc.store.models import Membership, Organization, Project, Role, Sector, User

    members: dict[int, list[str]] = {}
    rows = session.execute(
        select(Membership.project_id, User.name).join(User, User.id == Membership.user_id)
        .where(Membership.role == Role.MEMBER)
    )
    for project_id, user in rows:
        members.setdefault(project_id, []).append(user)
    projects: dict[int, list[ProjectNode]] = {}
    for p in session.scalars(select(Project).order_by(Project.id)):
        projects.setdefault(p.organization_id, []).append(ProjectNode(
            p.name, tuple(sorted(members.get(p.id, []))), round(p.weight * 100)))
    orgs: dict[int, list[OrgNode]] = {}
    for o in session.scalars(select(Organization).order_by(Organization.id)):
        orgs.setdefault(o.sector_id, []).append(
            OrgNode(o.name, tuple(projects.get(o.id, [])), round(o.weight * 100)))
    return [SectorNode(s.name, tuple(orgs.get(s.id, [])))
            for s in session.scalars(select(Sector).order_by(Sector.id))]
