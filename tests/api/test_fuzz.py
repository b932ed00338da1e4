"""Arbitrary JSON against the write routes: always an answer below 500 in the one error shape,
and a refused request stores nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from aicc.store.db import session_factory
from aicc.store.models import Grant, Job

from .conftest import World

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)

JOB_FIELDS = ["project_id", "accelerator_type", "gang", "time_limit_s", "name", "job_class",
              "preemptible", "grant_id", "script", "runtime_s"]


def _count(w: World) -> tuple[int, int]:
    with session_factory(w.engine)() as s:
        return (int(s.scalar(select(func.count()).select_from(Job)) or 0),
                int(s.scalar(select(func.count()).select_from(Grant)) or 0))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(JOB_FIELDS), value=json_values, whole=st.booleans(),
       anything=json_values)
def test_job_submission_never_500(sqlite_world: World, field: str, value: Any, whole: bool,
                                  anything: Any) -> None:
    w = sqlite_world
    body: Any = {"project_id": w.ids["p_a1"], "accelerator_type": "h100-sxm-80g",
                 "gang": {"nodes": 1, "per_node": 8}, "time_limit_s": 60}
    body = anything if whole else body | {field: value}
    before = _count(w)
    r = w.client.post("/v1/jobs", headers=w.h("member_a1"), json=body)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        err = r.json()["error"]
        assert err["code"] and err["message"]
        assert _count(w) == before


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["project_id", "accelerator_type", "accelerator_hours", "start",
                              "end", "note"]), value=json_values)
def test_grant_creation_never_500(sqlite_world: World, field: str, value: Any) -> None:
    w = sqlite_world
    body = {"project_id": w.ids["p_a1"], "accelerator_type": "h100-sxm-80g",
            "accelerator_hours": 10, "start": "2030-01-01T00:00:00Z",
            "end": "2030-02-01T00:00:00Z"} | {field: value}
    before = _count(w)
    r = w.client.post("/v1/grants", headers=w.h("admin"), json=body)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["error"]["code"]
        assert _count(w) == before
