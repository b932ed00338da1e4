"""Inputs outside bodies and odd values inside them: the Idempotency-Key header, times, nan and
infinity, query parameters a route does not take, and how every refusal names its field."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from aicc.api.errors import unique_column
from aicc.store.db import session_factory, transaction
from aicc.store.models import Project
from aicc.store.seed import seed_catalog, seed_default_sectors
from aicc.tenancy import service

from .conftest import World

JobBody = Callable[..., dict[str, Any]]
JSON = {"content-type": "application/json"}


def _error(r: Any) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    return r.json()["error"]


# --- Idempotency-Key ---------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
@pytest.mark.parametrize("key", ["k" * 129, "tab\there", "", "café".encode(), b"caf\xe9",
                                 "中".encode()],
                         ids=["too-long", "tab", "empty", "utf-8", "latin-1", "utf-8-cjk"])
def test_bad_idempotency_key_names_the_header(sqlite_world: World, job_body: JobBody,
                                              fast: bool, key: str | bytes) -> None:
    w = sqlite_world
    if not fast:
        w.client.app.fast_path = None  # type: ignore[attr-defined]
    r = w.client.post("/v1/jobs", headers=w.h("member_a1") | {"Idempotency-Key": key},
                      json=job_body(w.ids["p_a1"]))
    err = _error(r)
    assert err["field"] == "Idempotency-Key"
    assert "printable ASCII characters" in err["message"]
    assert w.client.get("/v1/jobs", headers=w.h("member_a1")).json()["items"] == []


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
def test_an_idempotency_key_sent_twice_is_refused(sqlite_world: World, job_body: JobBody,
                                                  fast: bool) -> None:
    # neither value is chosen silently: the job would be stored under a key the client may
    # not retry with
    w = sqlite_world
    if not fast:
        w.client.app.fast_path = None  # type: ignore[attr-defined]
    headers = [*w.h("member_a1").items(), ("Idempotency-Key", "k9"), ("Idempotency-Key", "k8")]
    err = _error(w.client.post("/v1/jobs", headers=headers, json=job_body(w.ids["p_a1"])))
    assert err["field"] == "Idempotency-Key" and "given 2 times" in err["message"]
    assert w.client.get("/v1/jobs", headers=w.h("member_a1")).json()["items"] == []


def test_idempotency_key_of_128_characters_is_fine(sqlite_world: World,
                                                   job_body: JobBody) -> None:
    w = sqlite_world
    h = w.h("member_a1") | {"Idempotency-Key": "k" * 128}
    assert w.client.post("/v1/jobs", headers=h, json=job_body(w.ids["p_a1"])).status_code == 201


# --- times ---------------------------------------------------------------------------------

BAD_TIMES: list[Any] = [1700000000, 1700000000.5, "1700000000", "2030-01-01T00:00:00",
                        "2030-01-01", "next tuesday", True, None]


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("value", BAD_TIMES, ids=[repr(v) for v in BAD_TIMES])
def test_grant_times_are_iso_strings_with_a_zone(sqlite_world: World, field: str,
                                                 value: Any) -> None:
    w = sqlite_world
    body = {"project_id": w.ids["p_a1"], "accelerator_type": "h100-sxm-80g",
            "accelerator_hours": 10, "start": "2030-01-01T00:00:00Z",
            "end": "2031-01-01T00:00:00+01:00"} | {field: value}
    err = _error(w.client.post("/v1/grants", headers=w.h("admin"), json=body))
    assert err["field"] == field
    if value is not None:
        assert "ISO 8601" in err["message"] and "time zone" in err["message"]


@pytest.mark.parametrize("value", [1700000000, "2030-01-01T00:00:00"])
def test_grant_patch_times_are_iso_strings_with_a_zone(sqlite_world: World, value: Any
                                                       ) -> None:
    w = sqlite_world
    gid = w.ids["grant_p_a1"]
    err = _error(w.client.patch(f"/v1/grants/{gid}", headers=w.h("admin"), json={"end": value}))
    assert err["field"] == "end" and "time zone" in err["message"]
    r = w.client.patch(f"/v1/grants/{gid}", headers=w.h("admin"),
                       json={"end": "2099-06-01T00:00:00+02:00"})
    assert r.status_code == 200 and r.json()["end"] == "2099-05-31T22:00:00Z", r.text


@pytest.mark.parametrize("value", ["1700000000", "2030-01-01T00:00:00", "2030-01-01"])
def test_usage_period_times_are_iso_with_a_zone(sqlite_world: World, value: str) -> None:
    w = sqlite_world
    for name in ("start", "end"):
        err = _error(w.client.get("/v1/usage", headers=w.h("admin"), params={name: value}))
        assert err["field"] == name and "time zone" in err["message"]
    r = w.client.get("/v1/usage", headers=w.h("admin"),
                     params={"start": "2030-01-01T00:00:00+01:00", "end": "2031-01-01T00:00Z"})
    assert r.status_code == 200 and r.json()["start"] == "2029-12-31T23:00:00Z", r.text


def test_no_request_model_takes_a_bare_datetime(sqlite_world: World) -> None:
    """Every time a route reads (body or query) goes through the zoned type: the OpenAPI
    document describes each as needing a time zone."""
    doc = sqlite_world.client.get("/openapi.json").json()
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("format") == "date-time":
                found.append(where)
                assert "time zone" in node.get("description", ""), where
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    for name, schema in doc["components"]["schemas"].items():
        if name.endswith(("In", "Patch")) or name == "JobSubmission":
            walk(schema, name)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in op.get("parameters", []):
                walk(p, f"{method} {path} {p['name']}")
    assert any("GrantIn" in f for f in found) and any("usage" in f for f in found)


# --- nan and infinity ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_forecast_horizon_must_be_finite(sqlite_world: World, job_body: JobBody,
                                         value: str) -> None:
    w = sqlite_world
    jid = w.client.post("/v1/jobs", headers=w.h("member_a1"),
                        json=job_body(w.ids["p_a1"])).json()["id"]
    err = _error(w.client.get(f"/v1/jobs/{jid}/forecast", headers=w.h("member_a1"),
                              params={"horizon_hours": value}))
    assert err["field"] == "horizon_hours" and "finite" in err["message"]


NON_FINITE_BODIES = [
    ("POST", "/v1/grants", '{"project_id": P, "accelerator_type": "h100-sxm-80g", '
     '"accelerator_hours": NaN, "start": "2030-01-01T00:00:00Z", '
     '"end": "2031-01-01T00:00:00Z"}', "accelerator_hours"),
    ("PATCH", "/v1/grants/G", '{"accelerator_hours": Infinity}', "accelerator_hours"),
    ("POST", "/v1/sectors", '{"name": "s-x", "lend_limit": NaN}', "lend_limit"),
    ("PATCH", "/v1/sectors/1", '{"shares": {"h100-sxm-80g": NaN}}', "shares.h100-sxm-80g"),
    ("POST", "/v1/organizations", '{"name": "o-x", "sector_id": 1, "weight": Infinity}',
     "weight"),
    ("PATCH", "/v1/projects/P", '{"weight": -Infinity}', "weight"),
    ("POST", "/v1/jobs", '{"project_id": P, "accelerator_type": "h100-sxm-80g", '
     '"gang": {"per_node": 8}, "time_limit_s": NaN}', "time_limit_s"),
]


@pytest.mark.parametrize(("method", "path", "raw", "field"), NON_FINITE_BODIES,
                         ids=[f"{m} {p} {f}" for m, p, _, f in NON_FINITE_BODIES])
def test_body_numbers_must_be_finite(sqlite_world: World, method: str, path: str, raw: str,
                                     field: str) -> None:
    w = sqlite_world
    fill = {"P": str(w.ids["p_a1"]), "G": str(w.ids["grant_p_a1"])}
    path = re.sub(r"\b[PG]\b", lambda m: fill[m.group()], path)
    raw = re.sub(r"\b[PG]\b", lambda m: fill[m.group()], raw)
    r = w.client.request(method, path, headers=w.h("admin") | JSON, content=raw)
    err = _error(r)
    assert err["field"] == field and "finite" in err["message"]


# --- query parameters a route does not take ------------------------------------------------


def test_unknown_query_parameter_is_422_listing_the_accepted(sqlite_world: World) -> None:
    w = sqlite_world
    err = _error(w.client.get("/v1/usage?by=sector", headers=w.h("admin")))
    assert err["field"] == "by"
    assert err["message"] == ("by: unknown query parameter; accepted: group_by, start, end, "
                              "accelerator_type")
    err = _error(w.client.get("/v1/jobs?limit=5&colour=red&size=2", headers=w.h("admin")))
    assert [p["field"] for p in err["problems"]] == ["colour", "size"]
    err = _error(w.client.get("/v1/users/me?x=1", headers=w.h("admin")))
    assert "takes no query parameters" in err["message"]
    assert w.client.get("/v1/usage?group_by=sector", headers=w.h("admin")).status_code == 200


def test_a_query_parameter_given_twice_is_422(sqlite_world: World) -> None:
    w = sqlite_world
    err = _error(w.client.get("/v1/jobs?limit=1&limit=2", headers=w.h("admin")))
    assert err["field"] == "limit" and err["message"] == "limit: given 2 times; give it once"
    assert w.client.get("/v1/jobs?limit=1", headers=w.h("admin")).status_code == 200


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "routed"])
def test_submission_takes_no_query_parameters(sqlite_world: World, job_body: JobBody,
                                              fast: bool) -> None:
    w = sqlite_world
    if not fast:
        w.client.app.fast_path = None  # type: ignore[attr-defined]
    r = w.client.post("/v1/jobs?dry_run=1", headers=w.h("member_a1"),
                      json=job_body(w.ids["p_a1"]))
    err = _error(r)
    assert err["field"] == "dry_run" and "takes no query parameters" in err["message"]
    assert w.client.get("/v1/jobs", headers=w.h("member_a1")).json()["items"] == []


def test_every_api_route_refuses_an_unknown_query_parameter(sqlite_world: World) -> None:
    """The mechanism is the application's, so no /v1 route (present or future) is left out."""
    w = sqlite_world
    paths = w.client.get("/openapi.json").json()["paths"]
    checked = 0
    for template, ops in paths.items():
        if not template.startswith("/v1/"):
            continue
        path = re.sub(r"\{[a-z_]+\}", "1", template)
        for method in ops:
            r = w.client.request(method, f"{path}?zz_unknown=1", headers=w.h("admin") | JSON,
                                 content="{}" if method in ("post", "patch") else None)
            assert r.status_code == 422, (method, template, r.text)
            assert r.json()["error"]["field"] == "zz_unknown", (method, template)
            checked += 1
    assert checked > 20
    err = _error(w.client.get("/v1/grants?zz_unknown=1", headers=w.h("admin")))
    assert err["message"].endswith("accepted: limit, after, project_id, accelerator_type, state")


def test_pages_outside_the_api_keep_working(sqlite_world: World) -> None:
    c = sqlite_world.client
    assert c.get("/?refresh=1").status_code == 200
    assert c.get("/docs").status_code == 200
    assert c.get("/docs?v=2").status_code == 200
    spec = c.get("/openapi.json")
    assert spec.status_code == 200 and "/v1/usage" in spec.json()["paths"]
    assert c.get("/healthz?probe=lb").status_code == 200
    assert c.get("/metrics").status_code == 200
    html = c.get("/docs").text
    for asset in re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css|png))"', html):
        assert c.get(asset).status_code == 200, asset


# --- how query-parameter refusals name their field ----------------------------------------

QUERY_FIELDS = [
    ("/v1/jobs?limit=0", "limit"),
    ("/v1/jobs?state=sleeping", "state"),
    ("/v1/jobs?accelerator_type=zz", "accelerator_type"),
    ("/v1/jobs?project_id=x", "project_id"),
    ("/v1/grants?after=-1", "after"),
    ("/v1/grants?accelerator_type=zz", "accelerator_type"),
    ("/v1/nodes?state=gone", "state"),
    ("/v1/nodes?accelerator_type=zz", "accelerator_type"),
    ("/v1/organizations?sector_id=x", "sector_id"),
    ("/v1/memberships?user_id=x", "user_id"),
    ("/v1/usage?group_by=user", "group_by"),
    ("/v1/usage?accelerator_type=zz", "accelerator_type"),
    ("/v1/usage?start=yesterday", "start"),
    ("/v1/jobs/0", "job_id"),
    # ids as filters are bounded as in paths: beyond 64 bits the database would refuse them
    ("/v1/organizations?sector_id=9223372036854775808", "sector_id"),
    ("/v1/projects?organization_id=0", "organization_id"),
    ("/v1/memberships?user_id=-1", "user_id"),
    ("/v1/memberships?project_id=2147483648", "project_id"),
    ("/v1/grants?project_id=9223372036854775808", "project_id"),
    ("/v1/jobs?project_id=99999999999999999999", "project_id"),
]


@pytest.mark.parametrize(("url", "field"), QUERY_FIELDS, ids=[u for u, _ in QUERY_FIELDS])
def test_parameter_errors_name_the_bare_parameter(sqlite_world: World, url: str,
                                                  field: str) -> None:
    err = _error(sqlite_world.client.get(url, headers=sqlite_world.h("admin")))
    assert err["field"] == field


def test_grant_time_at_the_edge_of_the_calendar_is_422(sqlite_world: World) -> None:
    w = sqlite_world
    err = _error(w.client.patch(f"/v1/grants/{w.ids['grant_p_a1']}", headers=w.h("admin"),
                                json={"start": "0001-01-01T00:00:00+01:00"}))
    assert err["field"] == "start" and "out of range" in err["message"]


@pytest.mark.parametrize("raw", ['{"note": "x",}', '{"note": ', "[1, 2", "nope"])
def test_malformed_json_names_the_body(sqlite_world: World, raw: str) -> None:
    w = sqlite_world
    err = _error(w.client.patch(f"/v1/grants/{w.ids['grant_p_a1']}", headers=w.h("admin") | JSON,
                                content=raw))
    assert err["field"] == "body"
    assert err["message"].startswith("body: malformed JSON at character ")


@pytest.mark.parametrize("ref", ["\u00b2", "\u2460", "\u0663"], ids=["superscript-2",
                                                                  "circled-1", "arabic-3"])
def test_a_node_reference_of_non_ascii_digits_is_a_name(sqlite_world: World, ref: str) -> None:
    """``str.isdigit`` holds for these, but they are not ids: an unknown node (404), never a
    server error nor the node whose id the digit stands for."""
    w = sqlite_world
    for method, path in (("GET", f"/v1/nodes/{ref}"), ("POST", f"/v1/nodes/{ref}/drain")):
        r = w.client.request(method, path, headers=w.h("admin"),
                             json={} if method == "POST" else None)
        assert r.status_code == 404, r.text
        assert r.json()["error"]["field"] == "node"
    assert w.client.get("/v1/nodes/3", headers=w.h("admin")).json()["drained"] is False


@pytest.mark.parametrize("who", ["admin", "member_a1"])
@pytest.mark.parametrize("route", ["/v1/jobs", "/v1/grants", "/v1/memberships"])
def test_a_filter_by_a_project_nobody_has_is_404_for_everyone(sqlite_world: World, who: str,
                                                              route: str) -> None:
    """An admin sees every project id: one that does not exist is not found, as it is for a
    member, rather than an empty page that reads as "no jobs yet"."""
    w = sqlite_world
    r = w.client.get(f"{route}?project_id=999999", headers=w.h(who))
    assert r.status_code == 404, r.text
    assert r.json()["error"]["field"] == "project_id"
    assert w.client.get(f"{route}?project_id={w.ids['p_a1']}", headers=w.h(who)).status_code == 200


def test_an_error_answer_is_bounded_whatever_the_request_sent(sqlite_world: World) -> None:
    w = sqlite_world
    many = "&".join(f"p{k}=1" for k in range(3000))
    r = w.client.get(f"/v1/jobs?{many}", headers=w.h("admin"))
    err = _error(r)
    assert len(err["problems"]) == 20 and err["problems_total"] == 3000
    assert len(r.content) < 20_000
    long = "x" * 60_000
    for url, status in ((f"/v1/jobs?accelerator_type={long}", 422), (f"/v1/nodes/{long}", 404)):
        r = w.client.get(url, headers=w.h("admin"))
        assert r.status_code == status, r.text
        assert len(r.content) < 2_000 and "60,0" in r.json()["error"]["message"]


def test_an_error_field_is_bounded_too(sqlite_world: World) -> None:
    # the field of an unknown type's share names the key the request sent: cut like a message
    w = sqlite_world
    r = w.client.post("/v1/sectors", headers=w.h("admin"),
                      json={"name": "sx", "shares": {"k" * 100_000: 0.1}})
    assert r.status_code == 422 and len(r.content) < 2_000, r.status_code
    assert r.json()["error"]["field"].startswith("shares.kkk")


def test_a_unique_constraint_lost_in_a_race_names_its_field(migrated_engine: Engine) -> None:
    # two requests that both passed the domain's duplicate check: the database refuses the
    # second, and the 409 names the column as the domain's check would
    factory = session_factory(migrated_engine)
    with transaction(factory) as s:
        seed_catalog(s)
        sector = seed_default_sectors(s)[0]
        org = service.create_organization(session=s, name="o", sector_id=sector.id)
        service.create_project(session=s, name="twin", organization_id=org.id)
        oid = org.id
    with pytest.raises(IntegrityError) as info, transaction(factory) as s:
        s.add(Project(name="twin", organization_id=oid))
        s.flush()
    assert unique_column(info.value) == "name"
