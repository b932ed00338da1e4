"""A small seeded center (lab fleet, demo tenants) in a fresh SQLite database, and a way to call
the real application over ASGI."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aicc.api.app import create_app
from aicc.clock import VirtualClock
from aicc.config import Settings
from aicc.fleet import build_fleet
from aicc.fleet.arrays import FleetArrays
from aicc.ledger.usage import TypeFacts, insert_ignore, job_entry
from aicc.service.demo import DemoWorkload, seed_demo
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import AcceleratorTypeRow, Job
from aicc.store.seed import sync_fleet
from aicc.workload.jobs import transition

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
NOW = datetime(2028, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Center:
    settings: Settings
    factory: sessionmaker[Session]
    fleet: FleetArrays
    tokens: dict[str, str]
    now: datetime

    def call(self, method: str, url: str, token: str | None = None, **kw: Any
             ) -> httpx.Response:
        # The portal reads the control plane's clock; here a virtual one, stopped at ``now``.
        plane = SimpleNamespace(clock=VirtualClock(self.now.timestamp()))
        app = create_app(self.settings, session_factory=self.factory, control_plane=plane)
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://aicc") as c:
                return await c.request(method, url, headers=headers, **kw)

        return asyncio.run(go())


def charge(session: Session, job: Job, attempt: int = 1) -> None:
    """Write the ledger entry of a finished job attempt (insert-or-ignore, as the ledger does)."""
    t = session.get(AcceleratorTypeRow, job.accelerator_type)
    assert t is not None and job.started_at and job.ended_at
    insert_ignore(session, [job_entry(
        job_id=job.id, attempt=attempt, kind="usage", project_id=job.project_id,
        grant_id=job.grant_id, accelerator_type=job.accelerator_type,
        accelerators=job.accelerators, start=job.started_at, end=job.ended_at,
        facts=TypeFacts(tdp_w=t.tdp_w, price_weight=t.price_weight))])


@pytest.fixture(scope="session")
def _center_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The demo center on the lab fleet with a few hours of its workload: some jobs finished
    (and charged), some running, the rest waiting. Built once; each test gets a copy."""
    path = tmp_path_factory.mktemp("center") / "aicc.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    factory = session_factory(engine)
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN)
    fleet = build_fleet("lab")
    with transaction(factory) as s:
        sync_fleet(s, fleet)
        demo = seed_demo(s, settings, fleet, now=NOW - timedelta(days=2))
        workload = DemoWorkload.from_store(s, settings, fleet, load=2.0)
        workload.submit_due(s, (NOW - timedelta(hours=4)).timestamp())
        workload.submit_due(s, (NOW - timedelta(hours=2)).timestamp())
        jobs = list(s.scalars(select(Job).order_by(Job.id)))
        for i, job in enumerate(jobs):
            if i % 3 == 2:
                continue  # still waiting
            start = job.submitted_at + timedelta(minutes=10)
            transition(session=s, job=job, to="running", at=start)
            if i % 3 == 0:
                transition(session=s, job=job, to="finished",
                           at=start + timedelta(minutes=20 * (1 + i % 5)))
                charge(s, job)
    engine.dispose()
    return path, demo.tokens


@pytest.fixture()
def center(_center_template: tuple[Path, dict[str, str]], tmp_path: Path) -> Center:
    template, tokens = _center_template
    path = tmp_path / "aicc.db"
    for suffix in ("", "-wal", "-shm"):
        src = template.with_name(template.name + suffix)
        if src.exists():
            shutil.copyfile(src, path.with_name(path.name + suffix))
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN)
    return Center(settings, session_factory(make_engine(url)), build_fleet("lab"), tokens, NOW)


@pytest.fixture()
def empty_center(tmp_path: Path) -> Center:
    """A migrated database with nothing in it."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return Center(Settings(database_url=url, admin_token=ADMIN_TOKEN), session_factory(engine),
                  build_fleet("lab"), {}, NOW)
