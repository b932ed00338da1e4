"""The portal page and its JSON summary, rendered from a seeded center's real jobs and ledger."""

from __future__ import annotations

import re

import numpy as np
from sqlalchemy import func, select

from aicc.store.models import Job, JobState, LedgerEntry, Node, NodeState, Organization, Project
from aicc.web.portal import _step_count, portal_data
from web.conftest import ADMIN_TOKEN


def test_portal_shows_utilisation_plot_with_every_sector(center) -> None:
    r = center.call("GET", "/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<meta http-equiv="refresh"' in html
    plot = re.search(r'<section class="card" id="utilisation">(.*?)</section>', html, re.S)
    assert plot is not None
    svg = plot.group(1)
    assert "<svg" in svg
    for sector in ("industry", "research", "public"):
        assert f'data-series="{sector}"' in svg
    # No external resource: the page works without network.
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_portal_numbers_match_the_store(center) -> None:
    with center.factory() as s:
        running = s.scalar(select(func.count(Job.id)).where(Job.state == JobState.RUNNING))
        pending = s.scalar(select(func.count(Job.id)).where(Job.state == JobState.PENDING))
        busy = s.scalar(select(func.sum(Job.nodes * Job.per_node))
                        .where(Job.state == JobState.RUNNING))
        capacity = s.scalar(select(func.sum(Node.accelerators)))
        top = s.execute(select(LedgerEntry.project_id, func.sum(LedgerEntry.accelerator_seconds))
                        .group_by(LedgerEntry.project_id)).all()
    assert running and pending and top
    d = center.call("GET", "/portal/summary.json").json()
    assert d["capacity"] == capacity == 256
    assert d["busy"] == busy
    assert sum(s["running"] for s in d["sectors"]) == running
    assert sum(s["pending"] for s in d["sectors"]) == pending
    assert {s["name"] for s in d["sectors"]} == {"industry", "research", "public"}
    want_top = max(v for _, v in top) / 3600
    assert abs(d["top_projects"][0]["accelerator_hours"] - want_top) < 1e-6
    # The last sample of the series is "now": the running jobs' accelerators.
    assert sum(v[-1] for v in d["series"]["busy"].values()) == busy
    assert sum(v[-1] for v in d["series"]["queue"].values()) == pending
    # times in the one form of every answer: UTC with Z
    assert d["now"].endswith("Z") and all(t.endswith("Z") for t in d["series"]["times"])
    html = center.call("GET", "/").text
    assert f"{running:,}" in html and "Top projects by usage" in html


def test_portal_history_counts_jobs_in_their_intervals(center) -> None:
    with center.factory() as s:
        data = portal_data(s, now=center.now)
        jobs = list(s.scalars(select(Job).where(Job.started_at.is_not(None))))
    t = data.times[len(data.times) // 2]
    want = sum(j.accelerators for j in jobs
               if j.started_at.timestamp() <= t
               and (j.ended_at is None or t < j.ended_at.timestamp()))
    assert sum(v[len(data.times) // 2] for v in data.busy.values()) == want


def test_step_count_is_exact_at_interval_edges() -> None:
    times = np.array([0.0, 1.0, 2.0, 3.0])
    got = _step_count(times, np.array([1.0, 0.0]), np.array([3.0, np.inf]), np.array([5.0, 2.0]))
    assert got.tolist() == [2.0, 7.0, 7.0, 2.0]


def test_empty_center_renders(empty_center) -> None:
    r = empty_center.call("GET", "/")
    assert r.status_code == 200
    assert "No usage recorded yet" in r.text and "<svg" in r.text


PUBLIC_PROJECT_KEYS = {"name", "organization", "sector", "accelerator_hours"}


def test_the_anonymous_portal_shows_no_charge_or_energy_per_project(center) -> None:
    d = center.call("GET", "/portal/summary.json").json()
    assert d["top_projects"]
    for row in d["top_projects"]:
        assert set(row) == PUBLIC_PROJECT_KEYS
    assert "your_projects" not in d and "viewer" not in d
    with center.factory() as s:
        org = s.execute(select(Organization.name).join(Project).where(
            Project.name == d["top_projects"][0]["name"])).scalar_one()
    assert d["top_projects"][0]["organization"] == org
    html = center.call("GET", "/").text
    top = re.search(r'<section class="card" id="top-projects">(.*?)</section>', html, re.S)
    assert top is not None and d["top_projects"][0]["name"] in top.group(1)
    for word in ("charge", "energy", "kWh"):
        assert word not in html
    assert 'id="your-projects"' not in html


def test_a_token_adds_the_callers_projects_in_full(center) -> None:
    public = center.call("GET", "/portal/summary.json").json()["top_projects"]
    project = public[0]["name"]
    token = center.tokens[f"{project}-lead"]
    d = center.call("GET", "/portal/summary.json", token).json()
    assert d["viewer"] == f"{project}-lead"
    [mine] = d["your_projects"]
    assert mine["name"] == project and mine["charge"] > 0 and mine["energy_kwh"] > 0
    assert mine["accelerator_hours"] == public[0]["accelerator_hours"]
    assert d["top_projects"] == public  # the public part is the same for everyone
    html = center.call("GET", "/", token).text
    assert 'id="your-projects"' in html and "charge" in html
    # the page shows what the JSON holds, carbon included (docs/portal.md)
    assert "<th>carbon kg</th>" in html and f"{mine['carbon_kg']:,.1f}" in html
    admin = center.call("GET", "/portal/summary.json", ADMIN_TOKEN).json()
    assert len(admin["your_projects"]) >= len(public)
    assert center.call("GET", "/portal/summary.json", "not-a-valid-token-at-all").status_code \
        == 401


def test_capacity_is_what_is_in_service(center) -> None:
    """A drained node leaves the capacity but for what its running jobs still hold, and a node
    down leaves it whole; both are counted as out of service."""
    with center.factory() as s:
        job = s.scalars(select(Job).where(Job.state == JobState.RUNNING)
                        .order_by(Job.id)).first()
        assert job is not None
        nodes = s.scalars(select(Node).where(Node.accelerator_type == job.accelerator_type)
                          .order_by(Node.id)).all()
        assert len(nodes) >= job.nodes + 2
        job.placement = [n.name for n in nodes[:job.nodes]]
        s.flush()
        before = portal_data(s, now=center.now)
        assert before.out_of_service == 0
        held, idle, down = nodes[0], nodes[job.nodes], nodes[job.nodes + 1]
        held.drained = True
        idle.drained = True
        down.state = NodeState.DOWN
        s.flush()
        after = portal_data(s, now=center.now)
        gone = held.accelerators - job.per_node + idle.accelerators + down.accelerators
        typ = job.accelerator_type
        s.rollback()
    assert after.capacity == before.capacity - gone
    assert after.capacity_by_type[typ] == before.capacity_by_type[typ] - gone
    # what the job holds on the drained node is in service, not out of it: nothing twice
    assert after.out_of_service == gone
    assert after.capacity + after.out_of_service == before.capacity
    assert after.busy_now == before.busy_now
    d = center.call("GET", "/portal/summary.json").json()
    assert d["out_of_service"] == 0 and d["capacity"] == before.capacity
