"""``GET /v1/jobs/{id}/forecast`` on the real application and store (lab fleet)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from aicc.fleet import build_fleet
from aicc.store.db import session_factory, transaction
from aicc.workload.jobs import transition
from api.conftest import World, build_world  # the API tests' small center


@pytest.fixture
def world(migrated_engine: Engine) -> Iterator[World]:
    w = build_world(migrated_engine)
    with w.client:
        yield w


def _submit(world: World, who: str, project: str, nodes: int, limit_s: int) -> int:
    r = world.client.post("/v1/jobs", headers=world.h(who), json={
        "project_id": world.ids[project], "accelerator_type": "h100-sxm-80g",
        "gang": {"nodes": nodes, "per_node": 8}, "time_limit_s": limit_s})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_forecast_of_a_queued_job_and_scoping(world: World) -> None:
    h100 = [n for n, t in zip(build_fleet("lab").names, build_fleet("lab").type_idx.tolist(),
                              strict=True) if t == build_fleet("lab").catalog.index("h100-sxm-80g")]
    first = _submit(world, "member_a1", "p_a1", len(h100), 3600)
    second = _submit(world, "member_a1", "p_a1", len(h100), 1800)
    started = datetime.now(UTC) - timedelta(minutes=10)
    with transaction(session_factory(world.engine)) as s:
        transition(session=s, job=first, to="running", at=started, placement=h100)
    # the whole H100 part is busy until the first job's limit: the second starts then
    r = world.client.get(f"/v1/jobs/{second}/forecast", headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    body = r.json()
    pred = datetime.fromisoformat(body["predicted_start"])
    expected = started + timedelta(seconds=3600)
    assert timedelta(0) <= pred - expected <= timedelta(seconds=31)
    assert body["state"] == "pending" and body["running_jobs"] == 1
    assert 0 < body["predicted_wait_s"] <= 3000 + 31
    # a running job answers with its real start
    r = world.client.get(f"/v1/jobs/{first}/forecast", headers=world.h("member_a1"))
    assert r.status_code == 200 and r.json()["basis"] == "running"
    # a job in another organization does not exist for this caller; nor does a missing one
    assert world.client.get(f"/v1/jobs/{second}/forecast",
                            headers=world.h("member_b1")).status_code == 404
    assert world.client.get("/v1/jobs/999999/forecast",
                            headers=world.h("member_a1")).status_code == 404
    assert world.client.get(f"/v1/jobs/{second}/forecast?horizon_hours=-1",
                            headers=world.h("member_a1")).status_code == 422
    # an ended job has no forecast
    world.client.post(f"/v1/jobs/{second}/cancel", headers=world.h("member_a1"), json={})
    r = world.client.get(f"/v1/jobs/{second}/forecast", headers=world.h("member_a1"))
    assert r.status_code == 409
