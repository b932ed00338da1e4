"""A small center for control-plane tests: the lab fleet (256 accelerators) in a migrated
store, one project with a grant and a member, a twin engine and a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from aicc.allocation.grants import create_grant
from aicc.clock import VirtualClock
from aicc.config import Settings
from aicc.engines.twin import TwinEngine
from aicc.fleet import build_fleet
from aicc.service.loop import ControlPlane
from aicc.service.snapshot import dt
from aicc.store.db import session_factory, transaction
from aicc.store.models import Role, Sector, User
from aicc.store.seed import seed_default_sectors, sync_fleet
from aicc.tenancy import service as tenancy
from aicc.tenancy.access import Principal, load_principal
from aicc.workload.jobs import JobSubmission, submit_job

T0 = 1_900_000_000.0  # a fixed clock origin (2030-03-17)


@dataclass
class Center:
    factory: sessionmaker[Session]
    clock: VirtualClock
    settings: Settings
    project_id: int
    grant_id: int
    user_id: int

    def principal(self, session: Session) -> Principal:
        return load_principal(session=session, user=session.get(User, self.user_id))

    def submit(self, *, per_node: int = 8, nodes: int = 1, runtime: float | None = 600.0,
               limit: float = 3600.0, key: str | None = None, type_name: str = "h100-sxm-80g",
               preemptible: bool = False, grant_id: int | None = None) -> int:
        with transaction(self.factory) as session:
            spec = JobSubmission(project_id=self.project_id, accelerator_type=type_name,
                                 gang={"nodes": nodes, "per_node": per_node},
                                 time_limit_s=limit, runtime_s=runtime,
                                 preemptible=preemptible, grant_id=grant_id)
            job, _ = submit_job(session=session, principal=self.principal(session), spec=spec,
                                idempotency_key=key, now=dt(self.clock.now()))
            return job.id

    def control_plane(self, engine: TwinEngine | None = None, policy: str = "fifo",
                      **kw) -> ControlPlane:
        engine = engine or TwinEngine(build_fleet("lab"))
        return ControlPlane(self.settings, self.factory, engine, self.clock, policy, **kw)

    def run(self, cp: ControlPlane, until: float, step: float = 60.0) -> None:
        """Cycle every ``step`` seconds of clock time up to ``until``."""
        while self.clock.now() < until:
            self.clock.advance_to(min(until, self.clock.now() + step))
            cp.run_cycle()


def add_project(session: Session, *, sector: str, organization: str, project: str,
                user: str) -> tuple[int, int, int]:
    """An organization of ``sector`` with one project, a 10,000-hour H100 grant live around T0
    and one member; returns (project id, grant id, user id)."""
    sec = session.scalar(select(Sector).where(Sector.name == sector))
    org = tenancy.create_organization(session=session, name=organization, sector_id=sec.id)
    proj = tenancy.create_project(session=session, name=project, organization_id=org.id)
    member = tenancy.create_user(session=session, name=user)
    tenancy.create_membership(session=session, user_id=member.id, role=Role.MEMBER,
                              project_id=proj.id)
    grant = create_grant(session=session, project_id=proj.id, accelerator_type="h100-sxm-80g",
                         accelerator_hours=10_000, start=dt(T0) - timedelta(days=1),
                         end=dt(T0) + timedelta(days=90))
    return proj.id, grant.id, member.id


@pytest.fixture
def center(migrated_engine: Engine) -> Iterator[Center]:
    factory = session_factory(migrated_engine)
    clock = VirtualClock(T0)
    with transaction(factory) as session:
        seed_default_sectors(session)
        sync_fleet(session, build_fleet("lab"), site="lab")
        ids = add_project(session, sector="research", organization="Lakeshore",
                          project="open-llm", user="alice")
    settings = Settings(database_url=str(migrated_engine.url))
    yield Center(factory, clock, settings, *ids)
