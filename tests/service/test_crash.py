"""The real service as a subprocess: concurrent idempotent submissions, SIGKILL mid-flight
(twice: while submissions arrive, and while jobs run), restarts, and then every acknowledged job
is there, none is duplicated, and every job finishes with exactly one usage entry."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from aicc.allocation.grants import create_grant
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import Job, JobState, LedgerEntry, Sector
from aicc.store.seed import seed_default_sectors
from aicc.tenancy import service as tenancy
from conftest import fresh_postgres_database

ADMIN = "crash-test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
N_JOBS = 240
AICC = Path(sys.executable).with_name("aicc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, db_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "AICC_DATABASE_URL": db_url, "AICC_FLEET_PHASE": "lab",
                    "AICC_PORT": str(self.port), "AICC_CYCLE_INTERVAL_S": "0.1",
                    "AICC_CLOCK_SPEED": "300", "AICC_ADMIN_TOKEN": ADMIN,
                    "AICC_POLICY": "fifo", "AICC_CONFIG": ""}
        self.env.pop("AICC_CONFIG")
        self.log = tmp / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([str(AICC), "serve"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.log.parent)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail("the service did not come up:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def prepare(db_url: str) -> int:
    """A migrated store with one project and a large H100 grant; returns the project id."""
    db = make_engine(db_url)
    upgrade(db)
    now = datetime.now(UTC)
    with transaction(session_factory(db)) as session:
        seed_default_sectors(session)
        sector = session.scalar(select(Sector).where(Sector.name == "industry"))
        org = tenancy.create_organization(session=session, name="Arden", sector_id=sector.id)
        project = tenancy.create_project(session=session, name="arden-load",
                                         organization_id=org.id)
        create_grant(session=session, project_id=project.id, accelerator_type="h100-sxm-80g",
                     accelerator_hours=1e6, start=now - timedelta(days=1),
                     end=now + timedelta(days=3650))
        pid = project.id
    db.dispose()
    return pid


def body(project_id: int, i: int) -> dict:
    return {"project_id": project_id, "accelerator_type": "h100-sxm-80g",
            "gang": {"nodes": 1, "per_node": (1, 2, 4, 8)[i % 4]},
            "time_limit_s": 3600, "runtime_s": 20 + (i * 37) % 180, "name": f"load-{i}"}


def submit(client: httpx.Client, project_id: int, i: int) -> int | None:
    """The job id if the service acknowledged the submission, else None."""
    try:
        r = client.post("/v1/jobs", json=body(project_id, i),
                        headers={"Idempotency-Key": f"crash-{i}"})
    except httpx.HTTPError:
        return None
    if r.status_code in (200, 201):
        return int(r.json()["id"])
    assert r.status_code >= 500, r.text  # a refusal would be a bug in the test's bodies
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a database of its own on the test PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'aicc.db'}"
        return
    with fresh_postgres_database("aicc_crash") as url:
        yield url


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_mid_flight_loses_no_job_and_charges_once(tmp_path: Path, store_url: str
                                                          ) -> None:
    db_url = store_url
    project_id = prepare(db_url)
    server = Server(tmp_path, db_url)
    acked: dict[int, int] = {}
    lock = threading.Lock()
    try:
        # 1. Many concurrent submissions; SIGKILL once a third are acknowledged.
        server.start()
        killed = threading.Event()

        shared = httpx.Client(base_url=server.url, timeout=10, headers=AUTH,
                              limits=httpx.Limits(max_connections=16))

        def one(i: int) -> None:
            job_id = submit(shared, project_id, i)
            if job_id is not None:
                with lock:
                    acked[i] = job_id
                    if len(acked) >= N_JOBS // 3 and not killed.is_set():
                        killed.set()
                        server.kill()

        with shared, ThreadPoolExecutor(16) as pool:
            list(pool.map(one, range(N_JOBS)))
        assert killed.is_set() and 0 < len(acked) < N_JOBS

        # 2. Restart: every acknowledged job is there; resubmitting every key (as clients
        # retry) returns the same job for the acknowledged ones and never a second job.
        server.start()
        before = dict(acked)
        with httpx.Client(base_url=server.url, timeout=10, headers=AUTH) as client:
            for i, job_id in before.items():
                r = client.get(f"/v1/jobs/{job_id}")
                assert r.status_code == 200 and r.json()["name"] == f"load-{i}"
            with ThreadPoolExecutor(16) as pool:
                again = list(pool.map(lambda i: submit(client, project_id, i), range(N_JOBS)))
        for i, job_id in enumerate(again):
            assert job_id is not None
            if i in before:
                assert job_id == before[i], f"key crash-{i} now names another job"
            acked[i] = job_id

        # 3. Let jobs start, then SIGKILL again while they run.
        db = make_engine(db_url)
        factory = session_factory(db)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with factory() as s:
                if s.scalar(select(func.count(Job.id)).where(Job.state == JobState.RUNNING)):
                    break
            time.sleep(0.05)
        server.kill()
        with factory() as s:
            running_at_kill = s.scalar(select(func.count(Job.id))
                                       .where(Job.state == JobState.RUNNING))
        assert running_at_kill > 0

        # 4. Restart once more and wait until every job has ended.
        server.start()
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            with factory() as s:
                open_jobs = s.scalar(select(func.count(Job.id)).where(
                    Job.state.in_([JobState.PENDING, JobState.RUNNING])))
            if open_jobs == 0:
                break
            time.sleep(0.2)
        server.stop()

        with factory() as s:
            jobs = s.scalars(select(Job).order_by(Job.id)).all()
            entries = s.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        db.dispose()
    finally:
        server.stop()

    assert len(jobs) == N_JOBS, "a retried submission created a second job"
    assert sorted(j.idempotency_key for j in jobs) == sorted(f"crash-{i}" for i in range(N_JOBS))
    by_id = {j.id: j for j in jobs}
    assert set(acked.values()) == set(by_id)
    assert [j.id for j in jobs if j.state != JobState.FINISHED] == []
    assert len({e.event_id for e in entries}) == len(entries)
    usage: dict[int, list[LedgerEntry]] = {}
    for e in entries:
        assert e.kind == "usage"
        usage.setdefault(e.job_id, []).append(e)
    for j in jobs:
        [entry] = usage[j.id]
        assert entry.event_id == f"job:{j.id}:attempt:{j.attempts}:usage"
        assert entry.accelerator_seconds == pytest.approx(j.per_node * j.runtime_s, rel=1e-6)
