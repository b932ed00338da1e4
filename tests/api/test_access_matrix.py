"""Route × role × own/foreign tenant: a member acts only on its projects, an org_admin on its
organization's, the center admin on everything; foreign ids answer 404, never 403."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aicc.store.db import make_engine

from .conftest import World, build_world

_seq = itertools.count(1)

# Who acts, on which tenant: member_a1 belongs to p_a1; org_admin_a administers org_a (p_a1 and
# p_a2); everything of org_b (p_b1) is foreign to both.
ACTORS = [
    ("member", "own", "member_a1", "p_a1", "org_a"),
    ("member", "foreign", "member_a1", "p_b1", "org_b"),
    ("org_admin", "own", "org_admin_a", "p_a2", "org_a"),
    ("org_admin", "foreign", "org_admin_a", "p_b1", "org_b"),
    ("admin", "any", "admin", "p_b1", "org_b"),
]


@pytest.fixture(scope="module")
def mworld(tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path) -> Iterator[World]:
    path = tmp_path_factory.mktemp("matrix") / "aicc.db"
    shutil.copyfile(_sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    w = build_world(engine)
    with w.client:
        yield w
    engine.dispose()


def _job(w: World, project: int) -> int:
    r = w.client.post("/v1/jobs", headers=w.h("admin"), json={
        "project_id": project, "accelerator_type": "h100-sxm-80g",
        "gang": {"nodes": 1, "per_node": 4}, "time_limit_s": 60})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _user(w: World) -> int:
    r = w.client.post("/v1/users", headers=w.h("admin"), json={"name": f"u{next(_seq)}"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _org_user(w: World) -> int:
    """A user already in organization acme (a member of its other project): the one kind an
    organization admin may add to its projects."""
    uid = _user(w)
    r = w.client.post("/v1/memberships", headers=w.h("admin"), json={
        "user_id": uid, "role": "member", "project_id": w.ids["p_a1"]})
    assert r.status_code == 201, r.text
    return uid


# name, method, path(world, project_id, org_id) -> (path, body); expected codes in ACTORS order
Case = tuple[str, str, Callable[[World, int, int], tuple[str, Any]], tuple[int, ...]]
CASES: list[Case] = [
    ("get project", "GET", lambda w, p, o: (f"/v1/projects/{p}", None),
     (200, 404, 200, 404, 200)),
    ("update project", "PATCH", lambda w, p, o: (f"/v1/projects/{p}", {"title": "t"}),
     (403, 404, 200, 404, 200)),
    ("get organization", "GET", lambda w, p, o: (f"/v1/organizations/{o}", None),
     (200, 404, 200, 404, 200)),
    ("update organization", "PATCH", lambda w, p, o: (f"/v1/organizations/{o}",
                                                       {"region": "east"}),
     (403, 404, 200, 404, 200)),
    ("create project", "POST", lambda w, p, o: ("/v1/projects", {
        "name": f"proj-{next(_seq)}", "organization_id": o}), (403, 404, 201, 404, 201)),
    ("create organization", "POST", lambda w, p, o: ("/v1/organizations", {
        "name": f"org-{next(_seq)}", "sector_id": w.ids["sector_industry"]}),
     (403, 403, 403, 403, 201)),
    ("create sector", "POST", lambda w, p, o: ("/v1/sectors", {"name": f"s{next(_seq)}"}),
     (403, 403, 403, 403, 201)),
    ("list grants of project", "GET", lambda w, p, o: (f"/v1/grants?project_id={p}", None),
     (200, 404, 200, 404, 200)),
    ("get grant", "GET", lambda w, p, o: (f"/v1/grants/{_grant(w, p)}", None),
     (200, 404, 200, 404, 200)),
    ("create grant", "POST", lambda w, p, o: ("/v1/grants", {
        "project_id": p, "accelerator_type": "h100-sxm-80g", "accelerator_hours": 10,
        "start": "2030-01-01T00:00:00Z", "end": "2030-02-01T00:00:00Z"}),
     (403, 404, 403, 404, 201)),
    ("update grant", "PATCH", lambda w, p, o: (f"/v1/grants/{_grant(w, p)}",
                                                {"accelerator_hours": 20000}),
     (403, 404, 403, 404, 200)),
    ("add member", "POST", lambda w, p, o: ("/v1/memberships", {
        "user_id": _org_user(w), "role": "member", "project_id": p}),
     (403, 404, 201, 404, 201)),
    ("appoint org admin", "POST", lambda w, p, o: ("/v1/memberships", {
        "user_id": _user(w), "role": "org_admin", "organization_id": o}),
     (403, 404, 403, 404, 201)),
    ("list memberships of project", "GET",
     lambda w, p, o: (f"/v1/memberships?project_id={p}", None), (200, 404, 200, 404, 200)),
    ("submit job", "POST", lambda w, p, o: ("/v1/jobs", {
        "project_id": p, "accelerator_type": "h100-sxm-80g", "gang": {"per_node": 1},
        "time_limit_s": 60}), (201, 404, 201, 404, 201)),
    ("get job", "GET", lambda w, p, o: (f"/v1/jobs/{_job(w, p)}", None),
     (200, 404, 200, 404, 200)),
    ("list jobs of project", "GET", lambda w, p, o: (f"/v1/jobs?project_id={p}", None),
     (200, 404, 200, 404, 200)),
    ("cancel job", "POST", lambda w, p, o: (f"/v1/jobs/{_job(w, p)}/cancel", {}),
     (200, 404, 200, 404, 200)),
    ("list nodes", "GET", lambda w, p, o: ("/v1/nodes", None), (200, 200, 200, 200, 200)),
    ("drain node", "POST", lambda w, p, o: ("/v1/nodes/1/drain", {"reason": "maintenance"}),
     (403, 403, 403, 403, 200)),
    ("undrain node", "POST", lambda w, p, o: ("/v1/nodes/1/undrain", None),
     (403, 403, 403, 403, 200)),
    ("list users", "GET", lambda w, p, o: ("/v1/users", None), (403, 403, 403, 403, 200)),
]


def _grant(w: World, project: int) -> int:
    key = {v: k for k, v in w.ids.items() if k.startswith("p_")}[project]
    return w.ids[f"grant_{key}"]


@pytest.mark.parametrize(("name", "method", "make", "expected"), CASES,
                         ids=[c[0].replace(" ", "-") for c in CASES])
def test_route_role_tenant(mworld: World, name: str, method: str,
                           make: Callable[[World, int, int], tuple[str, Any]],
                           expected: tuple[int, ...]) -> None:
    got = []
    for (_role, _tenant, who, pkey, okey) in ACTORS:
        path, body = make(mworld, mworld.ids[pkey], mworld.ids[okey])
        r = mworld.client.request(method, path, headers=mworld.h(who), json=body)
        got.append(r.status_code)
        if r.status_code >= 400:
            err = r.json()["error"]
            assert err["code"] and err["message"], r.text
    want = dict(zip([f"{a[0]}/{a[1]}" for a in ACTORS], expected, strict=True))
    have = dict(zip([f"{a[0]}/{a[1]}" for a in ACTORS], got, strict=True))
    assert have == want


def test_lists_show_only_visible_tenants(mworld: World) -> None:
    ids = mworld.ids

    def names(who: str, path: str) -> set[int]:
        r = mworld.client.get(path, headers=mworld.h(who))
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["items"]}

    assert names("member_a1", "/v1/projects") == {ids["p_a1"]}
    assert names("org_admin_a", "/v1/projects") >= {ids["p_a1"], ids["p_a2"]}
    assert ids["p_b1"] not in names("org_admin_a", "/v1/projects")
    assert ids["p_b1"] in names("admin", "/v1/projects")
    assert names("member_b1", "/v1/organizations") == {ids["org_b"]}
    assert names("member_a1", "/v1/grants") == {ids["grant_p_a1"]}
    b_job = _job(mworld, ids["p_b1"])
    assert b_job not in names("member_a1", "/v1/jobs?limit=1000")
    assert b_job in names("member_b1", "/v1/jobs?limit=1000")


def test_no_or_bad_token_is_401(mworld: World) -> None:
    for headers in ({}, {"Authorization": "Bearer short"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer " + "x" * 40}):
        r = mworld.client.get("/v1/projects", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["field"] == "authorization"
