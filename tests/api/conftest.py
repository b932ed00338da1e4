"""A small center behind the real application: two organizations in two sectors, three
projects, a user per role, the lab fleet, a grant per project."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from aicc.allocation.grants import create_grant
from aicc.api.app import create_app
from aicc.api.tokens import create_token
from aicc.config import Settings
from aicc.fleet import build_fleet
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.seed import seed_catalog, seed_default_sectors, sync_fleet
from aicc.tenancy import service

ADMIN_TOKEN = "admin-token-for-tests-0123456789"


@dataclass
class World:
    client: TestClient
    engine: Engine
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def build_world(engine: Engine) -> World:
    factory = session_factory(engine)
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {"admin": ADMIN_TOKEN}
    with transaction(factory) as s:
        seed_catalog(s)
        sectors = {x.name: x.id for x in seed_default_sectors(s)}
        sync_fleet(s, build_fleet("lab"), site="lab")
        org_a = service.create_organization(session=s, name="acme", sector_id=sectors["industry"],
                                            region="north")
        org_b = service.create_organization(session=s, name="uni", sector_id=sectors["research"],
                                            region="south")
        ids |= {"org_a": org_a.id, "org_b": org_b.id, "sector_industry": sectors["industry"]}
        for key, name, org in (("p_a1", "acme-llm", org_a), ("p_a2", "acme-vision", org_a),
                               ("p_b1", "uni-climate", org_b)):
            ids[key] = service.create_project(session=s, name=name, organization_id=org.id).id
        users = {
            "org_admin_a": ("org_admin", None, org_a.id),
            "member_a1": ("member", ids["p_a1"], None),
            "member_b1": ("member", ids["p_b1"], None),
        }
        for uname, (role, pid, oid) in users.items():
            u = service.create_user(session=s, name=uname.replace("_", "-"))
            service.create_membership(session=s, user_id=u.id, role=role, project_id=pid,
                                      organization_id=oid)
            tokens[uname] = create_token(session=s, user_id=u.id, name="tests")
            ids[uname] = u.id
        start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
        for key in ("p_a1", "p_a2", "p_b1"):
            g = create_grant(session=s, project_id=ids[key], accelerator_type="h100-sxm-80g",
                             accelerator_hours=10_000, start=start, end=end)
            ids[f"grant_{key}"] = g.id
    settings = Settings(database_url=str(engine.url), admin_token=ADMIN_TOKEN)
    app = create_app(settings, session_factory=factory)
    return World(client=TestClient(app), engine=engine, ids=ids, tokens=tokens)


@pytest.fixture
def world(migrated_engine: Engine) -> Iterator[World]:
    w = build_world(migrated_engine)
    with w.client:
        yield w


@pytest.fixture
def sqlite_world(tmp_path: Path, _sqlite_template: Path) -> Iterator[World]:
    """The same world on SQLite only (for the long role matrix)."""
    path = tmp_path / "world.db"
    shutil.copyfile(_sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    w = build_world(engine)
    with w.client:
        yield w
    engine.dispose()


@pytest.fixture
def job_body() -> Callable[..., dict[str, Any]]:
    def make(project_id: int, **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"project_id": project_id, "accelerator_type": "h100-sxm-80g",
                                "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 3600}
        body.update(over)
        return body
    return make
