"""GET /v1/usage: aggregation from the ledger, scoping by role, validation."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from aicc.store.models import Job, JobState, LedgerEntry, Organization, Project

from .conftest import ADMIN_TOKEN, charge


def _ledger_hours(center, key) -> dict[str, float]:
    """Accelerator-hours per group, summed here in Python from the raw ledger rows."""
    out: dict[str, float] = defaultdict(float)
    with center.factory() as s:
        for e in s.scalars(select(LedgerEntry)):
            p = s.get(Project, e.project_id)
            out[key(p)] += e.accelerator_seconds / 3600
    return dict(out)


@pytest.mark.parametrize("group_by,key", [
    ("project", lambda p: p.name),
    ("organization", lambda p: p.organization.name),
    ("sector", lambda p: p.organization.sector.name),
])
def test_admin_sees_every_group(center, group_by, key) -> None:
    r = center.call("GET", f"/v1/usage?group_by={group_by}", ADMIN_TOKEN)
    assert r.status_code == 200, r.text
    body = r.json()
    got = {row["name"]: row["accelerator_hours"] for row in body["rows"]}
    want = _ledger_hours(center, key)
    assert got.keys() == want.keys() and len(got) > 1
    for k in want:
        assert got[k] == pytest.approx(want[k])
    assert body["total_accelerator_hours"] == pytest.approx(sum(want.values()))
    hours = [row["accelerator_hours"] for row in body["rows"]]
    assert hours == sorted(hours, reverse=True)


def test_member_sees_only_its_projects(center) -> None:
    all_rows = center.call("GET", "/v1/usage", ADMIN_TOKEN).json()["rows"]
    project = all_rows[0]["name"]
    r = center.call("GET", "/v1/usage", center.tokens[f"{project}-lead"])
    assert r.status_code == 200
    assert [row["name"] for row in r.json()["rows"]] == [project]
    # By sector, a member's view holds only its own project's usage.
    by_sector = center.call("GET", "/v1/usage?group_by=sector",
                            center.tokens[f"{project}-lead"]).json()
    assert by_sector["total_accelerator_hours"] == pytest.approx(
        all_rows[0]["accelerator_hours"])


def test_org_admin_sees_its_organization(center) -> None:
    with center.factory() as s:
        org = s.scalar(select(Organization).where(Organization.name == "Arden Automotive"))
        mine = {p.name for p in s.scalars(select(Project).where(
            Project.organization_id == org.id))}
    rows = center.call("GET", "/v1/usage", center.tokens["arden-admin"]).json()["rows"]
    assert rows and {r["name"] for r in rows} <= mine
    orgs = center.call("GET", "/v1/usage?group_by=organization",
                       center.tokens["arden-admin"]).json()["rows"]
    assert [r["name"] for r in orgs] == ["Arden Automotive"]


def test_without_token_is_401(center) -> None:
    assert center.call("GET", "/v1/usage").status_code == 401


@pytest.mark.parametrize("query,field", [
    ("group_by=user", "group_by"),
    ("start=2028-03-01T00:00:00Z&end=2028-02-01T00:00:00Z", "end"),
    ("start=2028-03-01T00:00:00Z&end=2028-03-01T00:00:00Z", "end"),
    ("start=2028-03-01T00:00:00", "start"),
    ("start=yesterday", "start"),
    ("accelerator_type=tpu-v9", "accelerator_type"),
])
def test_bad_queries_are_422_naming_the_field(center, query, field) -> None:
    r = center.call("GET", f"/v1/usage?{query}", ADMIN_TOKEN)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_periods_split_usage_without_double_counting(center) -> None:
    with center.factory() as s:
        ends = sorted(e.period_end for e in s.scalars(select(LedgerEntry)))
    assert len(ends) >= 2
    lo, hi = ends[0], ends[-1] + timedelta(seconds=1)
    mid = ends[len(ends) // 2]

    def total(a, b) -> float:
        q = f"group_by=sector&start={a.isoformat()}&end={b.isoformat()}".replace("+", "%2B")
        r = center.call("GET", f"/v1/usage?{q}", ADMIN_TOKEN)
        assert r.status_code == 200, r.text
        return r.json()["total_accelerator_hours"]

    whole = total(lo, hi)
    assert whole == pytest.approx(sum(_ledger_hours(center, lambda p: "x").values()))
    first, second = total(lo, mid), total(mid, hi)
    assert first > 0 and second > 0
    assert first + second == pytest.approx(whole)


def test_accelerator_type_filter(center) -> None:
    with center.factory() as s:
        want = sum(e.accelerator_seconds for e in s.scalars(
            select(LedgerEntry).where(LedgerEntry.accelerator_type == "h100-sxm-80g"))) / 3600
    r = center.call("GET", "/v1/usage?group_by=sector&accelerator_type=h100-sxm-80g",
                    ADMIN_TOKEN)
    assert r.json()["total_accelerator_hours"] == pytest.approx(want)


def test_a_jobs_hours_appear_exactly_once(center) -> None:
    """Replaying the charge of a finished job (a retried write) changes nothing."""
    with center.factory() as s, s.begin():
        job = s.scalar(select(Job).where(Job.state == JobState.FINISHED).order_by(Job.id))
        hours = job.accelerators * (job.ended_at - job.started_at).total_seconds() / 3600
        project = job.project.name
    before = {r["name"]: r for r in center.call("GET", "/v1/usage", ADMIN_TOKEN).json()["rows"]}
    with center.factory() as s, s.begin():
        charge(s, s.get(Job, job.id))  # the same attempt again
    after = {r["name"]: r for r in center.call("GET", "/v1/usage", ADMIN_TOKEN).json()["rows"]}
    assert after == before
    with center.factory() as s:
        entries = list(s.scalars(select(LedgerEntry).where(LedgerEntry.job_id == job.id)))
    assert len(entries) == 1
    assert entries[0].accelerator_seconds / 3600 == pytest.approx(hours)
    assert before[project]["accelerator_hours"] >= hours
