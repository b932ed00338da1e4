"""Job submission, idempotency, validation, paging and cancel through the real app, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from aicc.allocation.grants import create_grant
from aicc.store.db import session_factory
from aicc.store.models import Grant, Job, JobEventRow, Project

from .conftest import World

JobBody = Callable[..., dict[str, Any]]


def _count(w: World, model: type) -> int:
    with session_factory(w.engine)() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_submit_stores_pending_job_with_grant_and_event(world: World, job_body: JobBody) -> None:
    pid = world.ids["p_a1"]
    r = world.client.post("/v1/jobs", headers=world.h("member_a1"),
                          json=job_body(pid, name="train", job_class="interactive"))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "pending"
    assert job["project_id"] == pid
    # no grant named: none stored until it starts (the control loop then charges it to the
    # project's grant live at that time); one named is stored and checked at once
    assert job["grant_id"] is None and job["grant_named"] is False
    named = world.client.post("/v1/jobs", headers=world.h("member_a1"), json=job_body(
        pid, grant_id=world.ids["grant_p_a1"])).json()
    assert named["grant_id"] == world.ids["grant_p_a1"] and named["grant_named"] is True
    assert job["gang"] == {"nodes": 1, "per_node": 8}
    assert job["submitted_by"] == world.ids["member_a1"]
    with session_factory(world.engine)() as s:
        stored = s.get(Job, job["id"])
        assert stored is not None and stored.state == "pending"
        kinds = s.scalars(select(JobEventRow.kind).where(JobEventRow.job_id == job["id"])).all()
        assert kinds == ["submitted"]
    got = world.client.get(f"/v1/jobs/{job['id']}", headers=world.h("member_a1")).json()
    assert got["id"] == job["id"] and got["name"] == "train"


def test_same_idempotency_key_yields_one_job(world: World, job_body: JobBody) -> None:
    h = world.h("member_a1") | {"Idempotency-Key": "retry-42"}
    body = job_body(world.ids["p_a1"])
    first = world.client.post("/v1/jobs", headers=h, json=body)
    second = world.client.post("/v1/jobs", headers=h, json=body)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert _count(world, Job) == 1
    # Concurrent retries with one fresh key also store one job.
    h2 = world.h("member_a1") | {"Idempotency-Key": "burst"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: world.client.post("/v1/jobs", headers=h2, json=body),
                                range(16)))
    assert {a.status_code for a in answers} <= {200, 201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert _count(world, Job) == 2
    # The key belongs to its user: another user with the same key gets its own job.
    h3 = world.h("org_admin_a") | {"Idempotency-Key": "retry-42"}
    other = world.client.post("/v1/jobs", headers=h3, json=body)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_a_retry_naming_a_grant_never_matches_a_job_that_named_none(
        world: World, job_body: JobBody) -> None:
    # the first request named no grant; the control loop later charged the job to one. A
    # retry under the same key that names that grant is a different request (409) before and
    # after the start alike; a retry naming none is the same request (200)
    h = world.h("member_a1") | {"Idempotency-Key": "grant-later"}
    pid, gid = world.ids["p_a1"], world.ids["grant_p_a1"]
    first = world.client.post("/v1/jobs", headers=h, json=job_body(pid)).json()
    for started in (False, True):
        if started:
            with session_factory(world.engine).begin() as s:
                s.get(Job, first["id"]).grant_id = gid  # as the loop charges it at its start
        r = world.client.post("/v1/jobs", headers=h, json=job_body(pid, grant_id=gid))
        assert r.status_code == 409 and r.json()["error"]["field"] == "Idempotency-Key"
        again = world.client.post("/v1/jobs", headers=h, json=job_body(pid))
        assert again.status_code == 200 and again.json()["id"] == first["id"]
        assert again.json()["grant_named"] is False
    assert again.json()["grant_id"] == gid


BAD_JOBS: list[tuple[str, dict[str, Any], int, str]] = [
    ("zero nodes", {"gang": {"nodes": 0, "per_node": 8}}, 422, "gang.nodes"),
    ("negative per_node", {"gang": {"nodes": 1, "per_node": -1}}, 422, "gang.per_node"),
    ("string count", {"gang": {"nodes": "many", "per_node": 8}}, 422, "gang.nodes"),
    ("fractional count", {"gang": {"nodes": 1.5, "per_node": 8}}, 422, "gang.nodes"),
    ("bigger than a node", {"gang": {"nodes": 1, "per_node": 9}}, 422, "gang.per_node"),
    ("more nodes than the fleet", {"gang": {"nodes": 17, "per_node": 8}}, 422, "gang.nodes"),
    ("zero time limit", {"time_limit_s": 0}, 422, "time_limit_s"),
    ("unknown class", {"job_class": "urgent"}, 422, "job_class"),
    ("unknown field", {"priority": 9}, 422, "priority"),
    ("unknown type", {"accelerator_type": "tpu-v9"}, 422, "accelerator_type"),
    ("type not in fleet", {"accelerator_type": "b200"}, 422, "accelerator_type"),
    ("huge project id", {"project_id": 2**40}, 422, "project_id"),
    ("missing gang", {"gang": None}, 422, "gang"),
    ("NUL in name", {"name": "a\x00b"}, 422, "name"),
]


@pytest.mark.parametrize(("case", "change", "status", "field"), BAD_JOBS,
                         ids=[c[0].replace(" ", "-") for c in BAD_JOBS])
def test_invalid_submission_is_4xx_naming_the_field(world: World, job_body: JobBody, case: str,
                                                    change: dict[str, Any], status: int,
                                                    field: str) -> None:
    body = job_body(world.ids["p_a1"]) | change
    r = world.client.post("/v1/jobs", headers=world.h("member_a1"), json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == field, err
    assert err["message"]
    assert _count(world, Job) == 0


def test_malformed_bodies_and_grants(world: World, job_body: JobBody) -> None:
    h = world.h("member_a1")
    r = world.client.post("/v1/jobs", headers=h | {"content-type": "application/json"},
                          content=b"{not json")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input"
    r = world.client.post("/v1/jobs", headers=h, json=[1, 2])
    assert r.status_code == 422
    raw = json.dumps(job_body(world.ids["p_a1"])).replace("3600", "NaN").encode()
    r = world.client.post("/v1/jobs", headers=h | {"content-type": "application/json"},
                          content=raw)
    assert r.status_code == 422, r.text
    # A grant of another tenant's project: 404, as if it did not exist.
    r = world.client.post("/v1/jobs", headers=h, json=job_body(
        world.ids["p_a1"], grant_id=world.ids["grant_p_b1"]))
    assert r.status_code == 404 and r.json()["error"]["field"] == "grant_id"
    # A grant still active whose period has ended can never serve the job: 422, not a job
    # that waits for ever.
    with session_factory(world.engine).begin() as s:
        ended = create_grant(session=s, project_id=world.ids["p_a1"],
                             accelerator_type="h100-sxm-80g", accelerator_hours=10,
                             start=datetime(2020, 1, 1, tzinfo=UTC),
                             end=datetime(2021, 1, 1, tzinfo=UTC)).id
    r = world.client.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"],
                                                               grant_id=ended))
    assert r.status_code == 422 and r.json()["error"]["field"] == "grant_id"
    assert r.json()["error"]["message"] == f"grant {ended} ended at 2021-01-01T00:00:00Z"
    r = world.client.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"]),
                          )
    assert r.status_code == 201
    r = world.client.post("/v1/jobs", headers=h | {"Idempotency-Key": "k" * 200},
                          json=job_body(world.ids["p_a1"]))
    assert r.status_code == 422
    assert _count(world, Job) == 1


def test_oversized_body_is_413_and_stores_nothing(world: World, job_body: JobBody) -> None:
    body = job_body(world.ids["p_a1"], script="x" * 2_000_000)
    r = world.client.post("/v1/jobs", headers=world.h("member_a1"), json=body)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks():
        yield b'{"project_id": 1, "script": "'
        for _ in range(300):
            yield b"y" * 4096
        yield b'"}'

    r = world.client.post("/v1/jobs", headers=world.h("member_a1"), content=chunks())
    assert r.status_code == 413
    assert _count(world, Job) == 0


def test_grant_validation(world: World) -> None:
    h = world.h("admin")
    base = {"project_id": world.ids["p_a1"], "accelerator_type": "h100-sxm-80g",
            "accelerator_hours": 100, "start": "2030-02-01T00:00:00Z",
            "end": "2030-03-01T00:00:00Z"}
    before = _count(world, Grant)
    for change, status, field in [
        ({"end": "2030-01-01T00:00:00Z"}, 422, "end"),
        ({"accelerator_hours": 0}, 422, "accelerator_hours"),
        ({"accelerator_hours": -5}, 422, "accelerator_hours"),
        ({"start": "not a date"}, 422, "start"),
        ({"start": "2030-02-01T00:00:00"}, 422, "start"),
        ({"accelerator_type": "nope"}, 422, "accelerator_type"),
        ({"start": "9999-12-31T23:00:00-14:00"}, 422, "start"),
        ({"note": "a\x00"}, 422, "note"),
        ({"project_id": 99999}, 404, "project_id"),
    ]:
        r = world.client.post("/v1/grants", headers=h, json=base | change)
        assert r.status_code == status, (change, r.text)
        assert r.json()["error"]["field"] == field, (change, r.text)
    assert _count(world, Grant) == before
    r = world.client.post("/v1/grants", headers=h, json=base)
    assert r.status_code == 201
    gid = r.json()["id"]
    r = world.client.patch(f"/v1/grants/{gid}", headers=h, json={"end": "2029-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "end"
    # null is not "leave it": it is refused, naming the field, where a 200 would change nothing
    for field in ("end", "state", "accelerator_hours", "note"):
        r = world.client.patch(f"/v1/grants/{gid}", headers=h, json={field: None})
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
        assert "must not be null" in r.json()["error"]["message"]
    got = world.client.get(f"/v1/grants/{gid}", headers=h).json()
    assert got["end"].startswith("2030-03-01")
    for path, body in ((f"/v1/sectors/{world.ids['sector_industry']}", {"lend_limit": None}),
                       (f"/v1/projects/{world.ids['p_a1']}", {"weight": None})):
        r = world.client.patch(path, headers=h, json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] in body, r.text


def test_list_filters_and_pages(world: World, job_body: JobBody) -> None:
    h = world.h("org_admin_a")
    ids = []
    for i in range(7):
        pid = world.ids["p_a1"] if i % 2 == 0 else world.ids["p_a2"]
        r = world.client.post("/v1/jobs", headers=h, json=job_body(pid, gang={"per_node": 1}))
        ids.append(r.json()["id"])
    seen, after = [], 0
    while True:
        page = world.client.get(f"/v1/jobs?limit=3&after={after}", headers=h).json()
        seen += [j["id"] for j in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == ids
    p2 = world.client.get(f"/v1/jobs?project_id={world.ids['p_a2']}", headers=h).json()
    assert [j["id"] for j in p2["items"]] == ids[1::2]
    world.client.post(f"/v1/jobs/{ids[0]}/cancel", headers=h, json={"reason": "no longer"})
    cancelled = world.client.get("/v1/jobs?state=cancelled", headers=h).json()["items"]
    assert [(j["id"], j["reason"]) for j in cancelled] == [(ids[0], "no longer")]
    r = world.client.get("/v1/jobs?limit=0", headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"
    r = world.client.get("/v1/jobs?state=sleeping", headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "state"


def test_cancel_twice_is_409(world: World, job_body: JobBody) -> None:
    h = world.h("member_a1")
    jid = world.client.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"])).json()["id"]
    r = world.client.post(f"/v1/jobs/{jid}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert r.json()["ended_at"] is not None
    r = world.client.post(f"/v1/jobs/{jid}/cancel", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    assert world.client.get("/v1/jobs/999999", headers=h).status_code == 404


def test_drain_and_undrain(world: World) -> None:
    h = world.h("admin")
    r = world.client.post("/v1/nodes/1/drain", headers=h, json={"reason": "fan"})
    assert r.status_code == 200 and r.json()["state"] == "drain"
    name = r.json()["name"]
    assert world.client.get(f"/v1/nodes/{name}", headers=h).json()["state_reason"] == "fan"
    drained = world.client.get("/v1/nodes?state=drain", headers=h).json()["items"]
    assert [n["name"] for n in drained] == [name]
    r = world.client.post(f"/v1/nodes/{name}/undrain", headers=h)
    assert r.json()["state"] == "up" and r.json()["drained"] is False
    assert world.client.get("/v1/nodes/nope", headers=h).status_code == 404


def test_a_drained_node_reads_down_while_down_and_drain_once_healthy(world: World) -> None:
    """The drain is kept apart from the node's health: the engine's down and up leave it on,
    and a node that is down may be drained for maintenance before it comes back."""
    from sqlalchemy import update

    from aicc.store.models import Node, NodeState

    h = world.h("admin")
    r = world.client.post("/v1/nodes/1/drain", headers=h, json={"reason": "fan"})
    assert (r.json()["state"], r.json()["drained"]) == ("drain", True)

    def health(state: NodeState, reason: str) -> None:  # what the engine's events store
        with world.engine.begin() as conn:
            conn.execute(update(Node).where(Node.id == 1).values(state=state,
                                                                  state_reason=reason))

    health(NodeState.DOWN, "not responding")
    node = world.client.get("/v1/nodes/1", headers=h).json()
    assert (node["state"], node["state_reason"], node["drained"]) == (
        "down", "not responding", True)
    assert [n["id"] for n in world.client.get("/v1/nodes?state=down",
                                              headers=h).json()["items"]] == [1]
    assert world.client.get("/v1/nodes?state=drain", headers=h).json()["items"] == []
    health(NodeState.UP, "")
    node = world.client.get("/v1/nodes/1", headers=h).json()
    assert (node["state"], node["state_reason"], node["drained"]) == ("drain", "fan", True)
    assert 1 not in [n["id"] for n in world.client.get("/v1/nodes?state=up",
                                                       headers=h).json()["items"]]

    world.client.post("/v1/nodes/1/undrain", headers=h)
    health(NodeState.DOWN, "not responding")
    r = world.client.post("/v1/nodes/1/drain", headers=h, json={"reason": "swap board"})
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["drained"], r.json()["drain_reason"]) == (
        "down", True, "swap board")


def test_tenancy_crud(world: World) -> None:
    h = world.h("admin")
    r = world.client.post("/v1/sectors", headers=h, json={"name": "defence",
                                                          "shares": {"h100-sxm-80g": 0.1}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "shares.h100-sxm-80g"
    r = world.client.post("/v1/sectors", headers=h, json={"name": "defence"})
    assert r.status_code == 201
    sid = r.json()["id"]
    r = world.client.patch(f"/v1/sectors/{world.ids['sector_industry']}", headers=h,
                           json={"shares": {"h100-sxm-80g": 0.25}})
    assert r.status_code == 200
    r = world.client.patch(f"/v1/sectors/{sid}", headers=h, json={"shares": {"h100-sxm-80g": 0.05}})
    assert r.status_code == 200
    r = world.client.post("/v1/organizations", headers=h,
                          json={"name": "acme", "sector_id": sid})
    assert r.status_code == 409 and r.json()["error"]["field"] == "name"
    r = world.client.post("/v1/organizations", headers=h,
                          json={"name": "bad name!", "sector_id": sid})
    assert r.status_code == 422 and r.json()["error"]["field"] == "name"
    r = world.client.post("/v1/organizations", headers=h,
                          json={"name": "ministry", "sector_id": 4242})
    assert r.status_code == 404 and r.json()["error"]["field"] == "sector_id"
    r = world.client.post("/v1/organizations", headers=h,
                          json={"name": "ministry", "sector_id": sid, "region": "capital"})
    assert r.status_code == 201
    oid = r.json()["id"]
    r = world.client.post("/v1/projects", headers=h, json={"name": "census", "organization_id": oid,
                                                          "weight": 0})
    assert r.status_code == 422 and r.json()["error"]["field"] == "weight"
    r = world.client.post("/v1/projects", headers=h, json={"name": "census",
                                                          "organization_id": oid})
    assert r.status_code == 201
    pid = r.json()["id"]
    r = world.client.post("/v1/users", headers=h, json={"name": "clerk"})
    uid = r.json()["id"]
    r = world.client.post("/v1/memberships", headers=h,
                          json={"user_id": uid, "role": "member", "organization_id": oid})
    assert r.status_code == 422
    r = world.client.post("/v1/memberships", headers=h,
                          json={"user_id": uid, "role": "member", "project_id": pid})
    assert r.status_code == 201
    mid = r.json()["id"]
    r = world.client.post("/v1/memberships", headers=h,
                          json={"user_id": uid, "role": "member", "project_id": pid})
    assert r.status_code == 409
    token = world.client.post(f"/v1/users/{uid}/tokens", headers=h, json={}).json()["token"]
    ch = {"Authorization": f"Bearer {token}"}
    assert [p["id"] for p in world.client.get("/v1/projects", headers=ch).json()["items"]] == [pid]
    r = world.client.patch(f"/v1/memberships/{mid}", headers=h,
                           json={"role": "org_admin", "organization_id": oid})
    assert r.status_code == 200 and r.json()["role"] == "org_admin"
    me = world.client.get("/v1/users/me", headers=ch).json()
    assert me["org_ids"] == [oid] and me["project_ids"] == [pid]
    with session_factory(world.engine)() as s:
        assert s.get(Project, pid) is not None


def test_health_docs_openapi(world: World) -> None:
    assert world.client.get("/healthz").json()["status"] == "ok"
    assert world.client.get("/docs").status_code == 200
    spec = world.client.get("/openapi.json").json()
    assert "/v1/jobs" in spec["paths"] and "/v1/grants/{grant_id}" in spec["paths"]
    # every /v1 operation documents the error shape it really answers, not FastAPI's own
    # validation schema; the forecast its answer and its 503 busy
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/v1"):
                assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}, (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    fc = spec["paths"]["/v1/jobs/{job_id}/forecast"]["get"]["responses"]
    assert fc["200"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/ForecastOut")
    assert {"404", "409", "503"} <= set(fc)
    r = world.client.get("/v1/nothing-here", headers=world.h("admin"))
    assert r.status_code == 404 and r.json()["error"] == {
        "code": "unknown_route", "field": "path",
        "message": "no route GET /v1/nothing-here; the API's routes are listed at /docs"}


def test_routed_submission_matches_fast_path(world: World, job_body: JobBody) -> None:
    from fastapi.testclient import TestClient

    from aicc.api.app import create_app

    app = create_app(world.client.app.state.settings,  # type: ignore[attr-defined]
                     session_factory=session_factory(world.engine), submit_fast_path=False)
    with TestClient(app) as c:
        h = world.h("member_a1") | {"Idempotency-Key": "routed"}
        first = c.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"]))
        again = c.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"]))
        assert (first.status_code, again.status_code) == (201, 200)
        assert first.json() == again.json()
        bad = c.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"], gang={"nodes": 0,
                                                                                 "per_node": 1}))
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "gang.nodes"
        foreign = c.post("/v1/jobs", headers=h, json=job_body(world.ids["p_b1"]))
        assert foreign.status_code == 404
    fast = world.client.post("/v1/jobs", headers=h, json=job_body(world.ids["p_a1"]))
    assert fast.status_code == 200 and fast.json() == first.json()
    assert _count(world, Job) == 1


def test_oversized_body_on_other_routes_is_413(world: World) -> None:
    r = world.client.patch(f"/v1/projects/{world.ids['p_a1']}", headers=world.h("admin"),
                           json={"title": "t" * 2_000_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    got = world.client.get(f"/v1/projects/{world.ids['p_a1']}", headers=world.h("admin"))
    assert got.json()["title"] == ""


def test_nul_characters_anywhere_are_4xx(world: World) -> None:
    h = world.h("admin")
    grant = {"project_id": world.ids["p_a1"], "accelerator_type": "h100\x00",
             "accelerator_hours": 1, "start": "2030-01-01T00:00:00Z",
             "end": "2030-02-01T00:00:00Z"}
    assert 400 <= world.client.post("/v1/grants", headers=h, json=grant).status_code < 500
    assert 400 <= world.client.get("/v1/nodes/x%00y", headers=h).status_code < 500
    r = world.client.get("/v1/jobs", headers=h, params={"accelerator_type": "a\x00"})
    assert 400 <= r.status_code < 500 or r.json()["items"] == []
