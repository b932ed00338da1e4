"""``GET /v1/jobs/{id}/forecast`` on the real application and store (lab fleet)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, update

from aicc.allocation.grants import create_grant, update_grant
from aicc.api.routes.forecast import center_cycle_s
from aicc.clock import AcceleratedClock, WallClock
from aicc.config import Settings
from aicc.fleet import build_fleet
from aicc.store.db import session_factory, transaction
from aicc.store.models import Job
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


def _age(world: World, job: int, submitted: datetime, ran: tuple[datetime, datetime] | None,
         placement: list[str]) -> None:
    """Move a job's submission into the past and, with ``ran``, let it run then and finish."""
    with transaction(session_factory(world.engine)) as s:
        s.execute(update(Job).where(Job.id == job).values(submitted_at=submitted))
        if ran is not None:
            transition(session=s, job=job, to="running", at=ran[0], placement=placement)
            transition(session=s, job=job, to="finished", at=ran[1])


def test_forecast_with_the_history_of_arrivals(world: World) -> None:
    fleet = build_fleet("lab")
    t = fleet.catalog.index("h100-sxm-80g")
    h100 = [n for n, ti in zip(fleet.names, fleet.type_idx.tolist(), strict=True) if ti == t]
    now = datetime.now(UTC)
    # yesterday the research tenant submitted a whole-H100 job every 20 minutes, each ran 25
    # minutes; one job two days ago makes the store older than the one-day window
    old = _submit(world, "member_b1", "p_b1", len(h100), 1800)
    _age(world, old, now - timedelta(days=2), (now - timedelta(days=2),
                                               now - timedelta(days=2) + timedelta(minutes=25)),
         h100)
    for k in range(1, 70):
        sub = now - timedelta(days=1) + timedelta(minutes=20 * k)
        if sub >= now - timedelta(hours=1):
            break
        j = _submit(world, "member_b1", "p_b1", len(h100), 1800)
        _age(world, j, sub, (sub, sub + timedelta(minutes=25)) if k % 2 == 0 else None, h100)
        if k % 2:  # every other one: cancelled in the queue, which used no capacity
            world.client.post(f"/v1/jobs/{j}/cancel", headers=world.h("member_b1"), json={})
    first = _submit(world, "member_a1", "p_a1", len(h100), 3600)
    second = _submit(world, "member_a1", "p_a1", len(h100), 1800)
    started = now - timedelta(minutes=10)
    with transaction(session_factory(world.engine)) as s:
        transition(session=s, job=first, to="running", at=started, placement=h100)
    url = f"/v1/jobs/{second}/forecast"
    r = world.client.get(url + "?arrivals=none", headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    none = r.json()
    assert none["arrivals"] == "none" and none["samples"] == 1 and none["future_jobs"] == 0
    assert none["predicted_start_low"] == none["predicted_start"] == none["predicted_start_high"]
    r = world.client.get(url + "?arrivals=history&window_days=1&samples=3&seed=4",
                         headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    hist = r.json()
    assert hist["arrivals"] == "history" and hist["samples"] == 3
    assert hist["window_s"] == 86400.0 and hist["future_jobs"] > 0
    # the research tenant's stream, lighter and within its sector's share, goes first
    p_none = datetime.fromisoformat(none["predicted_start"])
    p_hist = datetime.fromisoformat(hist["predicted_start"])
    lo, hi = (datetime.fromisoformat(hist[k]) for k in ("predicted_start_low",
                                                        "predicted_start_high"))
    assert p_hist > p_none and lo <= p_hist <= hi
    # the same request, the same answer
    again = world.client.get(url + "?arrivals=history&window_days=1&samples=3&seed=4",
                             headers=world.h("member_a1")).json()
    assert again["predicted_start"] == hist["predicted_start"]
    # the default lets nothing arrive; the history's default window is a week
    dflt = world.client.get(url, headers=world.h("member_a1")).json()
    assert dflt["arrivals"] == "none" and dflt["predicted_start"] == none["predicted_start"]
    week = world.client.get(url + "?arrivals=history", headers=world.h("member_a1")).json()
    # (the store is two days old: a week's window replays those two days, and says so)
    assert week["window_s"] == pytest.approx(2 * 86400.0, abs=60) and week["samples"] == 5
    assert "less than the 7-day window" in week["basis"]


@pytest.mark.parametrize(("query", "field"), [
    ("arrivals=poisson", "arrivals"), ("samples=0", "samples"), ("samples=51", "samples"),
    ("window_days=0", "window_days"), ("window_days=0.5", "window_days"),
    ("window_days=nan", "window_days"),
    ("seed=-1", "seed"), ("horizon_hours=1e-12", "horizon_hours"),
    ("horizon_hours=0", "horizon_hours")])
def test_forecast_parameters_are_checked(world: World, query: str, field: str) -> None:
    job = _submit(world, "member_a1", "p_a1", 1, 600)
    r = world.client.get(f"/v1/jobs/{job}/forecast?{query}", headers=world.h("member_a1"))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_a_forecast_over_the_budget_is_refused_naming_the_horizon_that_fits(
        world: World) -> None:
    # sixty submissions in the last seventy minutes: over the default 30 days, one sample of
    # that history would submit some 37,000 jobs, beyond the budget; the refusal is a 422 that
    # names the longest horizon that fits (an error raised in the forecast's worker thread)
    now = datetime.now(UTC)
    for i in range(60):
        job = _submit(world, "member_a1", "p_a1", 1, 600)
        _age(world, job, now - timedelta(minutes=70 - i), None, [])
    r = world.client.get(f"/v1/jobs/{job}/forecast?arrivals=history&samples=1",
                         headers=world.h("member_a1"))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "samples"
    assert re.search(r"lower horizon_hours \(at most [0-9,.]+ with 1 samples\)", err["message"])


def test_the_forecast_cycles_as_often_as_the_live_loop_in_center_time() -> None:
    # the live loop cycles every cycle_interval_s of wall time: on a clock 60 times faster,
    # every 300 s of center time, which is what the forecast must simulate
    settings = Settings(scheduler={"cycle_interval_s": 5.0})
    assert center_cycle_s(settings, SimpleNamespace(clock=AcceleratedClock(60.0))) == 300.0
    assert center_cycle_s(settings, SimpleNamespace(clock=WallClock())) == 5.0
    assert center_cycle_s(settings, None) == 5.0


def test_a_forecast_without_a_control_plane_runs_the_configured_policy(world: World) -> None:
    # No control plane is attached to this application: the forecast resolves the policy from
    # the configuration, require_grant (on by default) and sector_queueing included. A job on
    # a type its project holds no grant for is held by the live service (no_grant) for ever,
    # so its forecast must not start it, though the NPUs are idle.
    assert world.client.app.state.control_plane is None  # type: ignore[attr-defined]
    r = world.client.post("/v1/jobs", headers=world.h("member_a1"), json={
        "project_id": world.ids["p_a1"], "accelerator_type": "ascend-910b",
        "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 3600})
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    r = world.client.get(f"/v1/jobs/{job}/forecast?horizon_hours=2",
                         headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predicted_start"] is None, body
    assert body["require_grant"] is True and body["sector_queueing"] == "best_effort"
    # and it says why the job is still held at the horizon, as the job's own message would
    assert body["held_for"] == "no_grant", body
    assert body["held_message"] == "the project has no active grant for ascend-910b"


def test_a_job_held_by_the_site_power_cap_is_forecast_once_power_frees_up(world: World) -> None:
    # lab fleet: 16 H100 and 16 Ascend nodes of 8, idle draw 14,720 W. Half the H100s run a
    # job (+64 × 630 W: 55,040 W); the site allows 60,000 W of accelerator power
    # (0.072 MW / PUE 1.2), so the other half, idle, cannot take a second 64-accelerator job
    # (+40,320 W) before the first ends at its limit (rule 9), as the live loop holds it.
    fleet = build_fleet("lab")
    t = fleet.catalog.index("h100-sxm-80g")
    h100 = [n for n, ti in zip(fleet.names, fleet.type_idx.tolist(), strict=True) if ti == t]
    app = world.client.app
    app.state.settings = Settings(database_url=str(world.engine.url),  # type: ignore[attr-defined]
                                  energy={"site_power_mw": 0.072, "pue": 1.2})
    first = _submit(world, "member_a1", "p_a1", 8, 3600)
    second = _submit(world, "member_a1", "p_a1", 8, 1800)
    started = datetime.now(UTC) - timedelta(minutes=10)
    with transaction(session_factory(world.engine)) as s:
        transition(session=s, job=first, to="running", at=started, placement=h100[:8])
    r = world.client.get(f"/v1/jobs/{second}/forecast", headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    pred = datetime.fromisoformat(r.json()["predicted_start"])
    assert timedelta(0) <= pred - (started + timedelta(seconds=3600)) <= timedelta(seconds=31)
    # without the cap it starts at once
    app.state.settings = Settings(database_url=str(world.engine.url))  # type: ignore
    r = world.client.get(f"/v1/jobs/{second}/forecast", headers=world.h("member_a1"))
    assert r.json()["predicted_wait_s"] == 0.0, r.text


def test_a_grant_that_begins_later_is_found_when_it_begins(world: World) -> None:
    # require_grant (the default): a job on the NPUs, for which its project holds no grant, is
    # held (no_grant) until the grant created for them begins in two hours; the live service
    # gives it that grant then, and so must the forecast's fork (which resolves the grants of
    # jobs submitted without one at each of its cycles)
    r = world.client.post("/v1/jobs", headers=world.h("member_a1"), json={
        "project_id": world.ids["p_a1"], "accelerator_type": "ascend-910b",
        "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 3600})
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    begins = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    with transaction(session_factory(world.engine)) as s:
        create_grant(session=s, project_id=world.ids["p_a1"], accelerator_type="ascend-910b",
                     accelerator_hours=100, start=begins, end=begins + timedelta(days=30))
    r = world.client.get(f"/v1/jobs/{job}/forecast?horizon_hours=4",
                         headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predicted_start"] is not None, body
    pred = datetime.fromisoformat(body["predicted_start"])
    assert timedelta(0) <= pred - begins <= timedelta(seconds=31)
    assert body["held_for"] is None and body["held_message"] is None


def test_a_store_younger_than_the_window_replays_what_it_holds_and_says_so(
        world: World) -> None:
    # the store's first submission is three hours old: a one-day window replays those three
    # hours, and the answer's window_s and basis say so rather than claim a day
    now = datetime.now(UTC)
    for k in range(6):
        job = _submit(world, "member_b1", "p_b1", 1, 600)
        _age(world, job, now - timedelta(hours=3) + timedelta(minutes=30 * k), None, [])
    job = _submit(world, "member_a1", "p_a1", 1, 600)
    r = world.client.get(f"/v1/jobs/{job}/forecast?arrivals=history&window_days=1&samples=1",
                         headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert 3 * 3600 - 60 <= body["window_s"] <= 3 * 3600 + 60, body
    assert "less than the 1-day window" in body["basis"], body["basis"]


def test_a_full_gate_refuses_only_the_forecasts_that_would_simulate(world: World) -> None:
    # every slot taken and as many waiting: a pending job's forecast is 503 busy, but a
    # running job's answer, an unknown job (404) and an ended one (409) need no simulation
    from aicc.api.routes.forecast import ForecastGate

    fleet = build_fleet("lab")
    t = fleet.catalog.index("h100-sxm-80g")
    h100 = [n for n, ti in zip(fleet.names, fleet.type_idx.tolist(), strict=True) if ti == t]
    running = _submit(world, "member_a1", "p_a1", 2, 3600)
    with transaction(session_factory(world.engine)) as s:
        transition(session=s, job=running, to="running", at=datetime.now(UTC), placement=h100[:2])
    pending = _submit(world, "member_a1", "p_a1", 1, 600)
    ended = _submit(world, "member_a1", "p_a1", 1, 600)
    world.client.post(f"/v1/jobs/{ended}/cancel", headers=world.h("member_a1"), json={})
    gate = ForecastGate(1)
    gate.admitted = 2
    world.client.app.state.forecast_gate = gate  # type: ignore[attr-defined]
    h = world.h("member_a1")
    r = world.client.get(f"/v1/jobs/{pending}/forecast", headers=h)
    assert r.status_code == 503 and r.json()["error"]["code"] == "busy", r.text
    assert world.client.get(f"/v1/jobs/{running}/forecast", headers=h).json()["basis"] == (
        "running")
    assert world.client.get("/v1/jobs/999999/forecast", headers=h).status_code == 404
    assert world.client.get(f"/v1/jobs/{ended}/forecast", headers=h).status_code == 409
    assert gate.admitted == 2  # nothing admitted, nothing left behind
    gate.admitted = 0
    assert world.client.get(f"/v1/jobs/{pending}/forecast", headers=h).status_code == 200
    assert gate.admitted == 0


def test_a_job_that_would_start_just_past_the_horizon_is_held_by_nothing(world: World) -> None:
    # two 8-node H100 jobs end 10 s and 33 s from now; a 16-node job waits for both. With a
    # 36 s horizon and cycles 30 s apart, the fork's cycles (now, +30 s) find too few nodes and
    # the next (+60 s) is past the horizon: no start, and no hold reason either (the nodes are
    # free at the horizon), rather than "held: started"
    fleet = build_fleet("lab")
    t = fleet.catalog.index("h100-sxm-80g")
    h100 = [n for n, ti in zip(fleet.names, fleet.type_idx.tolist(), strict=True) if ti == t]
    now = datetime.now(UTC)
    for nodes, ends_in in ((h100[:8], 10), (h100[8:], 33)):
        j = _submit(world, "member_a1", "p_a1", 8, 3600)
        with transaction(session_factory(world.engine)) as s:
            transition(session=s, job=j, to="running", placement=nodes,
                       at=now - timedelta(seconds=3600 - ends_in))
    wide = _submit(world, "member_a1", "p_a1", 16, 3600)
    r = world.client.get(f"/v1/jobs/{wide}/forecast?horizon_hours=0.01",
                         headers=world.h("member_a1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["predicted_start"] is None, body
    assert body["held_for"] is None and body["held_message"] is None, body


def test_the_history_replays_jobs_without_the_grant_they_were_charged_to(world: World) -> None:
    # yesterday's job ran on a grant that has ended since: replayed, it is a new submission of
    # its project and type, which takes the grant live when it arrives (-1: the fork resolves
    # it), not the ended one, which would hold it for ever and hide its competition
    from aicc.service.snapshot import SnapshotBuilder

    now = datetime.now(UTC)
    with transaction(session_factory(world.engine)) as s:
        old = create_grant(session=s, project_id=world.ids["p_b1"],
                           accelerator_type="h100-sxm-80g", accelerator_hours=100,
                           start=now - timedelta(days=3), end=now + timedelta(hours=1)).id
    r = world.client.post("/v1/jobs", headers=world.h("member_b1"), json={
        "project_id": world.ids["p_b1"], "accelerator_type": "h100-sxm-80g", "grant_id": old,
        "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 3600})
    assert r.status_code == 201, r.text
    with transaction(session_factory(world.engine)) as s:  # the grant has ended since
        update_grant(session=s, grant_id=old, end=now - timedelta(hours=1))
    fleet = build_fleet("lab")
    _age(world, r.json()["id"], now - timedelta(days=1),
         (now - timedelta(days=1), now - timedelta(days=1) + timedelta(minutes=30)),
         [fleet.names[0]])
    builder = SnapshotBuilder()
    with transaction(session_factory(world.engine)) as s:
        built = builder.build(s, now.timestamp(), attach_grants=False)
        history = builder.history(s, built, now.timestamp(), 2 * 86400.0)
    assert len(history) == 1 and history.grant.tolist() == [-1]
