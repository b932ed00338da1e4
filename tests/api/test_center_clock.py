"""The API stamps times on the center's clock (the control plane's), not the wall's: an
accelerated demo clock runs far from the wall, and submissions, cancels, grant selection and
drains must all follow it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from aicc.allocation.grants import create_grant
from aicc.api.app import create_app
from aicc.clock import AcceleratedClock
from aicc.config import Settings
from aicc.engines.twin import TwinEngine
from aicc.fleet import build_fleet
from aicc.service.loop import ControlPlane
from aicc.store.db import session_factory, transaction

from .conftest import ADMIN_TOKEN, World, build_world

CENTER_T0 = datetime(2031, 6, 1, tzinfo=UTC)


@pytest.fixture
def center(migrated_engine: Engine) -> Iterator[tuple[World, TestClient]]:
    """The world's store behind an app whose control plane runs a ×60 clock set in 2031."""
    w = build_world(migrated_engine)
    factory = session_factory(migrated_engine)
    settings = Settings(database_url=str(migrated_engine.url), admin_token=ADMIN_TOKEN)
    clock = AcceleratedClock(60.0, origin=CENTER_T0.timestamp())
    cp = ControlPlane(settings, factory, TwinEngine(build_fleet("lab")), clock, "fifo")
    app = create_app(settings, session_factory=factory, control_plane=cp)
    with TestClient(app) as client:
        yield w, client


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_submit_cancel_and_grant_follow_the_center_clock(
        center: tuple[World, TestClient], job_body: Callable[..., dict[str, Any]]) -> None:
    w, client = center
    pid = w.ids["p_a1"]
    # A grant valid only in center time, ending before the world's grant: it is the one chosen.
    with transaction(session_factory(w.engine)) as s:
        gid = create_grant(session=s, project_id=pid, accelerator_type="h100-sxm-80g",
                           accelerator_hours=100, start=datetime(2031, 1, 1, tzinfo=UTC),
                           end=datetime(2032, 1, 1, tzinfo=UTC)).id
    r = client.post("/v1/jobs", headers=w.h("member_a1"), json=job_body(pid))
    assert r.status_code == 201, r.text
    job = r.json()
    submitted = _t(job["submitted_at"])
    assert abs(submitted - CENTER_T0) < timedelta(hours=1)
    assert job["grant_id"] is None  # (chosen when it starts, on the center's clock)
    got = client.get(f"/v1/jobs/{job['id']}", headers=w.h("member_a1")).json()
    assert _t(got["submitted_at"]) == submitted
    # a cycle starts it on the grant live in center time that ends first
    client.app.state.control_plane.run_cycle()  # type: ignore[attr-defined]
    got = client.get(f"/v1/jobs/{job['id']}", headers=w.h("member_a1")).json()
    assert got["state"] == "running" and got["grant_id"] == gid, got
    other = client.post("/v1/jobs", headers=w.h("member_a1"), json=job_body(pid)).json()
    c = client.post(f"/v1/jobs/{other['id']}/cancel", headers=w.h("member_a1"))
    assert c.status_code == 200, c.text
    ended = _t(c.json()["ended_at"])
    assert submitted <= ended < CENTER_T0 + timedelta(hours=1)


def test_drain_is_stamped_in_center_time(center: tuple[World, TestClient]) -> None:
    w, client = center
    node = client.get("/v1/nodes?limit=1", headers=w.h("admin")).json()["items"][0]
    r = client.post(f"/v1/nodes/{node['id']}/drain", headers=w.h("admin"), json={})
    assert r.status_code == 200, r.text
    assert abs(_t(r.json()["updated_at"]) - CENTER_T0) < timedelta(hours=1)
