"""Service start-up: admin token, restart and reset, the resumable clock, the demo, and a job
submitted through the API running to its end on the accelerated clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aicc.allocation.grants import create_grant
from aicc.clock import AcceleratedClock, WallClock
from aicc.config import Settings, load_settings
from aicc.errors import ConfigError
from aicc.service.serve import ADMIN_TOKEN_FILE, build_service, make_clock, var_dir
from aicc.store.db import open_database, session_factory, transaction
from aicc.store.models import Job, JobState, LedgerEntry, Node, Organization, Sector
from aicc.tenancy import service as tenancy


def settings_for(tmp_path: Path, **env: str) -> Settings:
    base = {"AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'aicc.db'}",
            "AICC_FLEET_PHASE": "lab", "AICC_CYCLE_INTERVAL_S": "0.05"}
    return load_settings(None, env={**base, **env})


def quiet(_: str) -> None:
    pass


def test_the_admin_token_is_generated_once_and_reused(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    first = build_service(s, say=quiet)
    first.close()
    path = var_dir(s) / ADMIN_TOKEN_FILE
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    second = build_service(s, say=quiet)
    second.close()
    assert first.admin_token == second.admin_token == path.read_text().strip()
    configured = build_service(settings_for(tmp_path, AICC_ADMIN_TOKEN="x" * 20), say=quiet)
    configured.close()
    assert configured.admin_token == "x" * 20 and configured.admin_token_source == "configuration"
    path.write_text("short\n")
    with pytest.raises(ConfigError):
        build_service(s, say=quiet)
    for bad in (b"\xff\xfe not text\n", None):  # not UTF-8; a folder in its place
        path.unlink()
        if bad is None:
            path.mkdir()
        else:
            path.write_bytes(bad)
        with pytest.raises(ConfigError, match="holds no valid token"):
            build_service(s, say=quiet)


def test_restart_resumes_the_center_and_reset_empties_it(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    svc = build_service(s, say=quiet)
    with transaction(svc.factory) as session:
        sector = session.scalar(select(Sector).where(Sector.name == "public"))
        tenancy.create_organization(session=session, name="Agency", sector_id=sector.id)
    assert svc.engine.fleet().n_accelerators == 256
    svc.close()
    again = build_service(s, say=quiet)
    with again.factory() as session:
        assert session.scalar(select(func.count(Organization.id))) == 1
        assert session.scalar(select(func.count(Node.id))) == 32  # synced, not duplicated
    again.close()
    said: list[str] = []
    fresh = build_service(s, reset=True, say=said.append)
    with fresh.factory() as session:
        assert session.scalar(select(func.count(Organization.id))) == 0
        assert session.scalar(select(func.count(Node.id))) == 32
    fresh.close()
    assert "aicc: database reset" in said


def test_the_clock_is_wall_time_unless_accelerated() -> None:
    assert isinstance(make_clock(Settings(), demo=False, resume_at=None), WallClock)
    demo = make_clock(Settings(), demo=True, resume_at=None)
    assert isinstance(demo, AcceleratedClock) and demo.speed == 60.0
    explicit = load_settings(None, env={"AICC_CLOCK_SPEED": "500"})
    fast = make_clock(explicit, demo=False, resume_at=None)
    assert isinstance(fast, AcceleratedClock) and fast.speed == 500.0
    ahead = time.time() + 86400
    resumed = make_clock(Settings(), demo=True, resume_at=ahead)
    assert resumed.now() >= ahead  # never behind what the store has already seen


def test_the_demo_is_seeded_once_and_feeds_jobs(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    said: list[str] = []
    svc = build_service(s, demo=True, say=said.append)
    assert svc.demo_tokens_file is not None and svc.demo_tokens_file.exists()
    assert any("demo center created" in line for line in said)
    svc.control_plane.run_cycle()
    stats = svc.control_plane.stats()
    assert stats.running > 0 and sum(stats.busy_by_type.values()) > 0
    svc.close()
    said.clear()
    again = build_service(s, demo=True, say=said.append)
    assert any("demo center resumed" in line for line in said)
    again.close()


def test_the_demo_members_tokens_are_never_lost(tmp_path: Path) -> None:
    import json

    from aicc.api.tokens import hash_token
    from aicc.store.models import ApiToken

    s = settings_for(tmp_path)
    path = var_dir(s) / "demo-tokens.json"
    path.mkdir(parents=True)  # cannot be written: the center is not stored either
    with pytest.raises(ConfigError, match=r"demo-tokens\.json is not a regular file"):
        build_service(s, demo=True, say=quiet)
    path.rmdir()
    staged = path.with_name(path.name + ".new")
    staged.mkdir()  # the file written beside it cannot be: nothing of the center is stored
    with pytest.raises(ConfigError, match=r"cannot write .*\.new.*demo center was not stored"):
        build_service(s, demo=True, say=quiet)
    staged.rmdir()
    db = open_database(s.database_url)
    with session_factory(db)() as session:
        assert session.scalar(select(func.count(Organization.id))) == 0
    db.dispose()
    svc = build_service(s, demo=True, say=quiet)
    first = json.loads(path.read_text())
    with svc.factory() as session:
        assert session.scalar(select(func.count(Organization.id))) > 0
    svc.close()
    path.unlink()  # lost: a restart issues new ones and says so
    said: list[str] = []
    again = build_service(s, demo=True, say=said.append)
    new = json.loads(path.read_text())
    assert any("new ones written there" in line for line in said), said
    assert sorted(new) == sorted(first) and set(new.values()).isdisjoint(first.values())
    with again.factory() as session:
        stored = set(session.scalars(select(ApiToken.token_hash)))
    assert {hash_token(t) for t in [*first.values(), *new.values()]} <= stored
    again.close()


def test_a_job_submitted_through_the_api_runs_to_its_end_and_is_charged_once(
    tmp_path: Path,
) -> None:
    from aicc.api.app import create_app

    s = settings_for(tmp_path, AICC_CLOCK_SPEED="2000", AICC_ADMIN_TOKEN="a" * 24)
    svc = build_service(s, say=quiet)
    now = datetime.now(UTC)
    with transaction(svc.factory) as session:
        sector = session.scalar(select(Sector).where(Sector.name == "research"))
        org = tenancy.create_organization(session=session, name="Uni", sector_id=sector.id)
        project = tenancy.create_project(session=session, name="p", organization_id=org.id)
        grant = create_grant(session=session, project_id=project.id,
                             accelerator_type="ascend-910b", accelerator_hours=100,
                             start=now - timedelta(days=1), end=now + timedelta(days=3650))
        pid, gid = project.id, grant.id
    app = create_app(svc.settings, session_factory=svc.factory,
                     control_plane=svc.control_plane)
    svc.control_plane.start()
    try:
        with TestClient(app) as client:
            headers = {"Authorization": "Bearer " + "a" * 24, "Idempotency-Key": "one"}
            body = {"project_id": pid, "accelerator_type": "ascend-910b",
                    "gang": {"nodes": 2, "per_node": 8}, "time_limit_s": 7200,
                    "runtime_s": 3600}
            r = client.post("/v1/jobs", json=body, headers=headers)
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            assert r.json()["state"] == "pending"
            seen = {"pending"}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and "finished" not in seen:
                seen.add(client.get(f"/v1/jobs/{job_id}", headers=headers).json()["state"])
                time.sleep(0.01)
            assert client.post("/v1/jobs", json=body, headers=headers).json()["id"] == job_id
    finally:
        svc.close()
    assert seen == {"pending", "running", "finished"}
    with svc.factory() as session:
        job = session.get(Job, job_id)
        entries = session.scalars(select(LedgerEntry)).all()
    assert job.state == JobState.FINISHED
    assert (job.ended_at - job.started_at).total_seconds() == pytest.approx(3600)
    [entry] = entries
    assert entry.grant_id == gid and entry.job_id == job_id
    assert entry.accelerator_seconds / 3600 == pytest.approx(16.0)  # 16 accelerator-hours


def test_nodes_absent_from_the_engine_are_marked_down_and_return(tmp_path: Path) -> None:
    from aicc.fleet import build_fleet
    from aicc.service.serve import ABSENT_REASON, retire_absent_nodes
    from aicc.service.snapshot import SnapshotBuilder
    from aicc.store.models import NodeState

    svc = build_service(settings_for(tmp_path), say=quiet)
    svc.close()
    names = build_fleet("lab").names
    keep = set(names[:4])
    with transaction(svc.factory) as s:
        assert retire_absent_nodes(s, keep) == len(names) - 4
    with svc.factory() as s:
        rows = {n.name: n for n in s.scalars(select(Node))}
    assert {n for n, r in rows.items() if r.state == NodeState.UP} == keep
    assert all(rows[n].state_reason == ABSENT_REASON for n in set(names) - keep)
    # rule 9 keeps power back for a node down for a repair, not for one gone for good
    with transaction(svc.factory) as s:
        s.scalar(select(Node).where(Node.name == names[0])).state = NodeState.DOWN
    with svc.factory() as s:
        built = SnapshotBuilder().build(s, 1e9)
    back = dict(zip(built.fleet.names, built.snapshot.down_returns.tolist(), strict=True))
    assert back[names[0]] and not any(back[n] for n in set(names) - keep)
    with transaction(svc.factory) as s:
        s.scalar(select(Node).where(Node.name == names[0])).state = NodeState.UP
        assert retire_absent_nodes(s, set(names)) == 0
    with svc.factory() as s:
        assert all(n.state == NodeState.UP for n in s.scalars(select(Node)))


def test_the_site_power_cap_reaches_the_scheduler(tmp_path: Path) -> None:
    capped = build_service(settings_for(tmp_path, AICC_SITE_POWER_MW="0.12", AICC_PUE="1.2"),
                           say=quiet)
    try:
        with capped.factory() as s:
            built = capped.control_plane.builder.build(s, time.time())
        assert built.snapshot.power_available_w == pytest.approx(100_000.0)
    finally:
        capped.close()
    free = build_service(settings_for(tmp_path / "nocap"), say=quiet)
    try:
        with free.factory() as s:
            built = free.control_plane.builder.build(s, time.time())
        assert built.snapshot.power_available_w == float("inf")
    finally:
        free.close()
