"""The request and answer contract of the API: idempotency keys name one request, bodies are
strictly typed, times are ISO 8601 with ``Z``, submitted scripts come back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from aicc.store.db import session_factory
from aicc.store.models import Job

from .conftest import World

JobBody = Callable[..., dict[str, Any]]


def _jobs(w: World) -> int:
    with session_factory(w.engine)() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
def test_idempotency_key_with_another_body_is_409(world: World, job_body: JobBody,
                                                  fast: bool) -> None:
    if not fast:
        world.client.app.fast_path = None  # type: ignore[attr-defined]
    h = world.h("member_a1") | {"Idempotency-Key": "once"}
    body = job_body(world.ids["p_a1"], name="first")
    first = world.client.post("/v1/jobs", headers=h, json=body)
    assert first.status_code == 201, first.text
    again = world.client.post("/v1/jobs", headers=h, json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    for change in ({"name": "second"}, {"gang": {"nodes": 2, "per_node": 8}},
                   {"time_limit_s": 60}, {"preemptible": True}, {"script": "echo other"}):
        r = world.client.post("/v1/jobs", headers=h, json=body | change)
        assert r.status_code == 409, (change, r.text)
        assert r.json()["error"]["field"] == "Idempotency-Key"
    assert _jobs(world) == 1


STRICT: list[tuple[dict[str, Any], str]] = [
    ({"gang": {"nodes": True, "per_node": 8}}, "gang.nodes"),
    ({"gang": {"nodes": 1, "per_node": "8"}}, "gang.per_node"),
    ({"preemptible": "yes"}, "preemptible"),
    ({"preemptible": 1}, "preemptible"),
    ({"project_id": "13"}, "project_id"),
    ({"time_limit_s": "3600"}, "time_limit_s"),
    ({"grant_id": "1"}, "grant_id"),
    ({"runtime_s": 1e9}, "runtime_s"),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
@pytest.mark.parametrize(("change", "field"), STRICT, ids=[s[1] + str(i)
                                                          for i, s in enumerate(STRICT)])
def test_submission_types_are_strict(sqlite_world: World, job_body: JobBody, fast: bool,
                                     change: dict[str, Any], field: str) -> None:
    w = sqlite_world
    if not fast:
        w.client.app.fast_path = None  # type: ignore[attr-defined]
    r = w.client.post("/v1/jobs", headers=w.h("member_a1"),
                      json=job_body(w.ids["p_a1"]) | change)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert _jobs(w) == 0


def test_runtime_nan_is_named_not_finite(sqlite_world: World, job_body: JobBody) -> None:
    w = sqlite_world
    raw = ('{"project_id": PID, "accelerator_type": "h100-sxm-80g", "gang": {"per_node": 8}, '
           '"time_limit_s": 60, "runtime_s": NaN}').replace("PID", str(w.ids["p_a1"]))
    json_h = {"content-type": "application/json"}
    r = w.client.post("/v1/jobs", headers=w.h("member_a1") | json_h, content=raw)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "runtime_s" and "finite" in err["message"]


def test_other_bodies_are_strict(sqlite_world: World) -> None:
    w = sqlite_world
    h = w.h("admin")
    r = w.client.post("/v1/users", headers=h, json={"name": "zed", "is_admin": "yes"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "is_admin", r.text
    r = w.client.post("/v1/projects", headers=h,
                      json={"name": "p-x", "organization_id": str(w.ids["org_a"])})
    assert r.status_code == 422 and r.json()["error"]["field"] == "organization_id", r.text
    r = w.client.post("/v1/grants", headers=h, json={
        "project_id": w.ids["p_a1"], "accelerator_type": "h100-sxm-80g",
        "accelerator_hours": "10", "start": "2030-01-01T00:00:00Z",
        "end": "2031-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "accelerator_hours", r.text


def test_script_comes_back_and_times_end_in_z(sqlite_world: World, job_body: JobBody) -> None:
    w = sqlite_world
    h = w.h("member_a1")
    r = w.client.post("/v1/jobs", headers=h, json=job_body(w.ids["p_a1"], script="echo hi"))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["script"] == "echo hi"
    assert job["submitted_at"].endswith("Z")
    got = w.client.get(f"/v1/jobs/{job['id']}", headers=h).json()
    assert got["script"] == "echo hi" and got["submitted_at"] == job["submitted_at"]
    listed = w.client.get("/v1/jobs", headers=h).json()["items"][0]
    assert listed["submitted_at"] == job["submitted_at"]
    c = w.client.post(f"/v1/jobs/{job['id']}/cancel", headers=h).json()
    assert c["ended_at"].endswith("Z")
    node = w.client.get("/v1/nodes?limit=1", headers=h).json()["items"][0]
    assert node["updated_at"].endswith("Z")


def test_head_healthz_is_200(sqlite_world: World) -> None:
    r = sqlite_world.client.head("/healthz")
    assert r.status_code == 200


def test_unknown_accelerator_type_is_422_everywhere(sqlite_world: World,
                                                     job_body: JobBody) -> None:
    w = sqlite_world
    h = w.h("admin")
    answers = [
        w.client.post("/v1/jobs", headers=h, json=job_body(w.ids["p_a1"],
                                                           accelerator_type="zz")),
        w.client.post("/v1/grants", headers=h, json={
            "project_id": w.ids["p_a1"], "accelerator_type": "zz", "accelerator_hours": 1,
            "start": "2030-01-01T00:00:00Z", "end": "2031-01-01T00:00:00Z"}),
        w.client.get("/v1/usage?accelerator_type=zz", headers=h),
        w.client.get("/v1/jobs?accelerator_type=zz", headers=h),
        w.client.get("/v1/grants?accelerator_type=zz", headers=h),
        w.client.get("/v1/nodes?accelerator_type=zz", headers=h),
    ]
    for r in answers:
        assert r.status_code == 422, (r.request.url, r.text)
        assert r.json()["error"]["field"] == "accelerator_type"
    ok = w.client.get("/v1/jobs?accelerator_type=h100-sxm-80g", headers=h)
    assert ok.status_code == 200


def test_membership_patch_is_partial_and_keeps_its_user(sqlite_world: World) -> None:
    w = sqlite_world
    h = w.h("admin")
    mine = w.client.get(f"/v1/memberships?user_id={w.ids['member_a1']}", headers=h).json()
    mid = mine["items"][0]["id"]
    r = w.client.patch(f"/v1/memberships/{mid}", headers=h, json={"role": "member"})
    assert r.status_code == 200, r.text
    assert r.json()["project_id"] == w.ids["p_a1"] and r.json()["user_id"] == w.ids["member_a1"]
    r = w.client.patch(f"/v1/memberships/{mid}", headers=h,
                       json={"user_id": w.ids["member_b1"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "user_id", r.text
    r = w.client.patch(f"/v1/memberships/{mid}", headers=h,
                       json={"role": "org_admin", "organization_id": w.ids["org_a"]})
    assert r.status_code == 200 and r.json()["project_id"] is None, r.text


def test_grant_patch_names_the_field_sent_and_final_states_stay(sqlite_world: World) -> None:
    w = sqlite_world
    h = w.h("admin")
    gid = w.ids["grant_p_a1"]
    r = w.client.patch(f"/v1/grants/{gid}", headers=h, json={"start": "2200-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "start", r.text
    r = w.client.patch(f"/v1/grants/{gid}", headers=h, json={"end": "2000-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "end", r.text
    assert w.client.patch(f"/v1/grants/{gid}", headers=h,
                          json={"state": "suspended"}).status_code == 200
    assert w.client.patch(f"/v1/grants/{gid}", headers=h,
                          json={"state": "active"}).status_code == 200
    assert w.client.patch(f"/v1/grants/{gid}", headers=h,
                          json={"state": "revoked"}).status_code == 200
    for back in ("active", "suspended", "expired"):
        r = w.client.patch(f"/v1/grants/{gid}", headers=h, json={"state": back})
        assert r.status_code == 409 and r.json()["error"]["field"] == "state", r.text
    assert w.client.get(f"/v1/grants/{gid}", headers=h).json()["state"] == "revoked"


def test_org_admin_adds_only_users_of_its_organization(sqlite_world: World) -> None:
    w = sqlite_world
    h = w.h("org_admin_a")
    fresh = w.client.post("/v1/users", headers=w.h("admin"), json={"name": "newcomer"}).json()
    answers = {}
    for label, uid in (("foreign", w.ids["member_b1"]), ("unaffiliated", fresh["id"]),
                       ("unknown", 999_999)):
        r = w.client.post("/v1/memberships", headers=h, json={
            "user_id": uid, "role": "member", "project_id": w.ids["p_a2"]})
        answers[label] = (r.status_code, r.json()["error"]["code"], r.json()["error"]["field"],
                          r.json()["error"]["message"].replace(str(uid), "ID"))
    assert len(set(answers.values())) == 1, answers
    assert answers["unknown"][0] == 404
    r = w.client.post("/v1/memberships", headers=h, json={
        "user_id": w.ids["member_a1"], "role": "member", "project_id": w.ids["p_a2"]})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
def test_non_json_bodies_are_415_on_every_route(sqlite_world: World, job_body: JobBody,
                                                fast: bool) -> None:
    w = sqlite_world
    if not fast:
        w.client.app.fast_path = None  # type: ignore[attr-defined]
    form = {"content-type": "application/x-www-form-urlencoded"}
    for method, path, body in (
            ("POST", "/v1/jobs", job_body(w.ids["p_a1"])),
            ("POST", "/v1/users", {"name": "formy"}),
            ("PATCH", f"/v1/projects/{w.ids['p_a1']}", {"title": "t"})):
        for who in ("admin", None):  # the same answer before authorization
            headers = form | (w.h(who) if who else {})
            r = w.client.request(method, path, headers=headers, content=json.dumps(body))
            assert r.status_code == 415, (path, r.text)
            assert r.json()["error"]["field"] == "Content-Type"
        ok = w.client.request(method, path, headers=w.h("admin") | {
            "content-type": "application/json; charset=utf-8"}, content=json.dumps(body))
        assert ok.status_code < 300, (path, ok.text)
    assert _jobs(w) == 1


def test_deeply_nested_json_is_422_on_body(sqlite_world: World) -> None:
    w = sqlite_world
    deep = '{"name": ' + "[" * 50_000 + "]" * 50_000 + "}"
    r = w.client.post("/v1/users", headers=w.h("admin") | {"content-type": "application/json"},
                      content=deep)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == r.json()["error"] | {"code": "invalid_input", "field": "body"}


def test_every_answer_writes_times_with_z(sqlite_world: World) -> None:
    w = sqlite_world
    h = w.h("admin")
    grant = w.client.get(f"/v1/grants/{w.ids['grant_p_a1']}", headers=h).json()
    assert grant["start"].endswith("Z") and grant["created_at"].endswith("Z"), grant
    project = w.client.get(f"/v1/projects/{w.ids['p_a1']}", headers=h).json()
    assert project["created_at"].endswith("Z"), project
    usage = w.client.get("/v1/usage?start=2030-01-01T00:00:00%2B02:00&end=2031-01-01T00:00:00Z",
                         headers=h).json()
    assert usage["start"] == "2029-12-31T22:00:00Z" and usage["end"] == "2031-01-01T00:00:00Z"


def test_one_key_twice_in_one_batch_with_other_bodies(sqlite_world: World) -> None:
    """Two submissions with one key in the same group-commit batch: the second, if its body
    differs, is refused, and only the first is stored."""
    from aicc.errors import Conflict
    from aicc.store.db import transaction
    from aicc.tenancy.access import load_principal
    from aicc.tenancy.service import get_user
    from aicc.workload.jobs import Gang, JobSubmission, SubmitRequest, submit_jobs

    w = sqlite_world
    factory = session_factory(w.engine)

    def spec(name: str) -> JobSubmission:
        return JobSubmission(project_id=w.ids["p_a1"], accelerator_type="h100-sxm-80g",
                             gang=Gang(per_node=1), time_limit_s=60, name=name)

    with transaction(factory) as s:
        who = load_principal(session=s, user=get_user(session=s, user_id=w.ids["member_a1"]))
        res = submit_jobs(session=s, requests=[SubmitRequest(who, spec("a"), "k"),
                                               SubmitRequest(who, spec("a"), "k"),
                                               SubmitRequest(who, spec("b"), "k")])
    assert res[0].created and res[1].job_id == res[0].job_id and not res[1].created
    assert isinstance(res[2].error, Conflict) and res[2].error.field == "Idempotency-Key"
    assert _jobs(w) == 1
