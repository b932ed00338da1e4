"""The control plane driving a real Slurm: aicc decides, Slurm runs; the store, the ledger and
``sacct`` agree, also across a restart of aicc."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from aicc.allocation.grants import create_grant
from aicc.clock import WallClock
from aicc.config import Settings
from aicc.engines.slurm import AccountManager, SlurmEngine, SlurmRunner, tree_from_store
from aicc.engines.slurm.discovery import list_nodes
from aicc.engines.slurm.usage import import_usage
from aicc.fleet.arrays import NODE_UP
from aicc.service.loop import ControlPlane
from aicc.service.snapshot import dt, ts
from aicc.store.db import make_engine, session_factory, transaction
from aicc.store.migrate import upgrade
from aicc.store.models import Job, JobEventRow, JobState, LedgerEntry, Role, User
from aicc.store.seed import seed_default_sectors, sync_fleet
from aicc.tenancy import service as tenancy
from aicc.tenancy.access import load_principal
from aicc.workload.jobs import JobSubmission, submit_job
from engines.sacct_wait import wait_for_runs

pytestmark = pytest.mark.slurm


@pytest.fixture
def world(tmp_path, slurm_conf: str, slurm_prefix: str) -> Iterator[dict]:
    db = make_engine(f"sqlite:///{tmp_path / 'aicc.db'}")
    upgrade(db)
    factory = session_factory(db)
    runner = SlurmRunner(slurm_conf, timeout_s=20)
    p = slurm_prefix
    engine = SlurmEngine(runner, prefix=p, poll_interval_s=0.2, parent_account=f"{p}root")
    now = time.time()
    with transaction(factory) as s:
        seed_default_sectors(s)
        sync_fleet(s, engine.fleet(), site="slurm")  # the store's fleet is Slurm's
        sector = tenancy.create_sector(session=s, name=f"{p}-research")
        org = tenancy.create_organization(session=s, name=f"{p}-uni", sector_id=sector.id)
        project = tenancy.create_project(session=s, name=f"{p}-llm", organization_id=org.id)
        user = tenancy.create_user(session=s, name=f"{p}alice")
        tenancy.create_membership(session=s, user_id=user.id, role=Role.MEMBER,
                                  project_id=project.id)
        grant = create_grant(session=s, project_id=project.id, accelerator_type="h100-sxm-80g",
                             accelerator_hours=100, start=dt(now) - timedelta(days=1),
                             end=dt(now) + timedelta(days=30))
        ids = {"project": project.id, "grant": grant.id, "user": user.id}
    with factory() as s:
        mine = [x for x in tree_from_store(s) if x.name == f"{p}-research"]
    AccountManager(runner, parent=f"{p}root").sync(mine)
    yield {"factory": factory, "runner": runner, "engine": engine, "prefix": p, **ids}
    engine.cancel_all()
    db.dispose()


def submit(w: dict, runtime: float, per_node: int = 2) -> int:
    with transaction(w["factory"]) as s:
        principal = load_principal(session=s, user=s.get(User, w["user"]))
        spec = JobSubmission(project_id=w["project"], accelerator_type="h100-sxm-80g",
                             gang={"nodes": 1, "per_node": per_node}, time_limit_s=120,
                             runtime_s=runtime)
        job, _ = submit_job(session=s, principal=principal, spec=spec, now=dt(time.time()))
        return job.id


def get(factory: sessionmaker[Session], job_id: int) -> Job:
    with factory() as s:
        return s.get(Job, job_id)


def cycle_until(cp: ControlPlane, ok: Callable[[], bool], limit_s: float = 40.0) -> None:
    t0 = time.monotonic()
    while not ok():
        assert time.monotonic() - t0 < limit_s, "the control plane did not get there in time"
        cp.run_cycle()
        time.sleep(0.2)


def test_the_control_plane_runs_jobs_on_slurm_and_charges_once(world: dict) -> None:
    factory, engine = world["factory"], world["engine"]
    jid = submit(world, runtime=2.0)
    cp = ControlPlane(Settings(), factory, engine, WallClock(), "fifo")
    cycle_until(cp, lambda: get(factory, jid).state == JobState.RUNNING)
    job = get(factory, jid)
    assert job.placement and job.placement[0] in {"n1", "n2", "n3", "n4"}
    squeue = {j["name"]: j for j in world["runner"].json(["squeue"])["jobs"]}
    rec = squeue[f"{world['prefix']}-{jid}"]
    assert rec["account"] == f"{world['prefix']}-llm"
    assert rec["required_nodes"] == job.placement[0]  # pinned where aicc placed it
    cycle_until(cp, lambda: get(factory, jid).state == JobState.FINISHED)
    job = get(factory, jid)
    with factory() as s:
        [entry] = s.scalars(select(LedgerEntry).where(LedgerEntry.job_id == jid)).all()
    assert entry.event_id == f"job:{jid}:attempt:1:usage" and entry.grant_id == world["grant"]
    # The sacct import sees the same attempt and adds nothing: charged exactly once.
    runs = wait_for_runs(world["runner"], world["prefix"])
    assert [(r.job_id, r.attempt, r.gpus) for r in runs] == [(jid, 1, 2)]
    # Start and end are Slurm's, so the charge is sacct's elapsed time × GPUs, exactly; the
    # decision, a launch delay earlier, stays in the job's audit trail.
    assert ts(job.started_at) == runs[0].start and ts(job.ended_at) == runs[0].end
    assert ts(entry.period_start) == runs[0].start and ts(entry.period_end) == runs[0].end
    assert entry.accelerator_seconds == runs[0].gpus * (runs[0].end - runs[0].start)
    with factory() as s:
        decided = s.scalar(select(JobEventRow.time).where(JobEventRow.job_id == jid,
                                                          JobEventRow.kind == "running"))
    # Slurm's whole second: a start within the decision's second reads as its beginning.
    assert ts(decided) < ts(job.started_at) + engine.time_resolution_s
    with transaction(factory) as s:
        assert import_usage(s, runs) == 0


def test_a_restarted_control_plane_keeps_slurms_running_job(world: dict) -> None:
    factory = world["factory"]
    jid = submit(world, runtime=4.0)
    cp = ControlPlane(Settings(), factory, world["engine"], WallClock(), "fifo")
    cycle_until(cp, lambda: get(factory, jid).state == JobState.RUNNING)
    cycle_until(cp, lambda: jid in {r.job_id for r in world["engine"].running()})
    started = get(factory, jid).started_at
    # aicc goes away; a new process builds a new engine and control plane.
    engine2 = SlurmEngine(world["runner"], prefix=world["prefix"], poll_interval_s=0.2,
                          parent_account=f"{world['prefix']}root")
    cp2 = ControlPlane(Settings(), factory, engine2, WallClock(), "fifo")
    done = cp2.reconcile(time.time())
    assert done["requeued"] == 0 and done["cancelled"] == 0
    assert get(factory, jid).state == JobState.RUNNING
    cycle_until(cp2, lambda: get(factory, jid).state == JobState.FINISHED)
    job = get(factory, jid)
    assert job.attempts == 1 and job.started_at == started
    with factory() as s:
        [entry] = s.scalars(select(LedgerEntry).where(LedgerEntry.job_id == jid)).all()
    [run] = wait_for_runs(world["runner"], world["prefix"])
    assert ts(job.started_at) == run.start and ts(job.ended_at) == run.end
    assert entry.accelerator_seconds == run.gpus * (run.end - run.start)


def test_serve_stores_slurms_fleet_and_retires_phase_nodes(tmp_path, slurm_conf: str) -> None:
    """``engine.kind = "slurm"``: the store's fleet is what Slurm reports; nodes of an earlier
    twin phase in the same database are marked down, so nothing is placed on them."""
    from aicc.config import load_settings
    from aicc.service.serve import build_service
    from aicc.service.snapshot import load_fleet
    from aicc.store.models import Node, NodeState

    url = f"sqlite:///{tmp_path / 'aicc.db'}"
    twin = build_service(load_settings(None, env={"AICC_DATABASE_URL": url,
                                                  "AICC_FLEET_PHASE": "lab"}), say=print)
    twin.close()
    said: list[str] = []
    svc = build_service(load_settings(None, env={"AICC_DATABASE_URL": url,
                                                 "AICC_ENGINE": "slurm",
                                                 "AICC_SLURM_CONF": slurm_conf}),
                        say=said.append)
    try:
        slurm_nodes = set(svc.engine.fleet().names)
        assert slurm_nodes
        with svc.factory() as s:
            nodes = {n.name: n for n in s.query(Node)}
            fleet, _ = load_fleet(s)
        up = {n for n, row in nodes.items() if row.state != NodeState.DOWN}
        assert up <= slurm_nodes
        assert all(nodes[n].state == NodeState.DOWN for n in set(nodes) - slurm_nodes)
        assert any("marked down" in line for line in said)
        assert fleet.n_nodes == len(nodes)
    finally:
        svc.close()


def test_a_restarted_control_plane_takes_node_states_from_slurm(world: dict) -> None:
    """While aicc was away a node Slurm had down came back: the first cycle of the new process
    brings it up in the store. A node the operator drained through the API stays drained."""
    from aicc.store.models import Node, NodeState

    factory = world["factory"]
    up = sorted(n.name for n in list_nodes(world["runner"]) if n.state == NODE_UP)
    assert len(up) >= 2, "the lab's nodes should be up"
    back, drained = up[0], up[1]
    with transaction(factory) as s:
        nodes = {n.name: n for n in s.scalars(select(Node).where(Node.name.in_([back, drained])))}
        nodes[back].state, nodes[back].state_reason = NodeState.DOWN, "Not responding"
        nodes[drained].drained, nodes[drained].drain_reason = True, "maintenance"
    with factory() as s:
        drained_at = s.scalar(select(Node.updated_at).where(Node.name == drained))
    engine2 = SlurmEngine(world["runner"], prefix=world["prefix"], poll_interval_s=0.2,
                          parent_account=f"{world['prefix']}root")
    cp2 = ControlPlane(Settings(), factory, engine2, WallClock(), "fifo")
    cp2.reconcile(time.time())
    cp2.run_cycle()
    with factory() as s:
        nodes = {n.name: n for n in s.scalars(select(Node).where(Node.name.in_([back, drained])))}
        assert nodes[back].state == NodeState.UP
        assert nodes[drained].state == NodeState.UP and nodes[drained].drained
        assert nodes[drained].drain_reason == "maintenance"
        assert nodes[drained].updated_at == drained_at


def test_serve_on_slurm_announces_the_discovered_fleet(tmp_path, slurm_conf: str,
                                                       slurm_prefix: str) -> None:
    """The banner names where the fleet comes from: Slurm's nodes, not a twin phase."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gpus = sum(n.gpus for n in list_nodes(SlurmRunner(slurm_conf)))
    env = {**os.environ, "AICC_DATABASE_URL": f"sqlite:///{tmp_path / 'aicc.db'}",
           "AICC_PORT": str(port), "AICC_ENGINE": "slurm", "AICC_SLURM_CONF": slurm_conf,
           "AICC_SLURM_JOB_PREFIX": slurm_prefix, "AICC_ADMIN_TOKEN": "a" * 32}
    env.pop("AICC_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-c", "from aicc.cli import main; main()", "serve"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    with proc:
        try:
            line = proc.stdout.readline()
        finally:
            proc.terminate()
            proc.wait(30)
    assert f"(engine slurm, fleet from slurm, {gpus:,} accelerators, clock x1)" in line, line


def test_a_job_cancelled_while_running_is_charged_what_sacct_reports(world: dict) -> None:
    """Cancelled through the API while it runs: the loop scancels it, and the charge is GPUs ×
    Slurm's elapsed time of the cancelled run, not a fraction of a second more."""
    from aicc.workload.jobs import cancel_job

    factory = world["factory"]
    jid = submit(world, runtime=60.0, per_node=3)
    cp = ControlPlane(Settings(), factory, world["engine"], WallClock(), "fifo")
    cycle_until(cp, lambda: get(factory, jid).state == JobState.RUNNING)
    name = f"{world['prefix']}-{jid}"

    def started_from_slurm() -> bool:  # running there, and its start applied to the store
        starts = [j["start_time"] for j in world["runner"].json(["squeue"])["jobs"]
                  if j["name"] == name and j["job_state"] == "RUNNING"]
        return bool(starts) and ts(get(factory, jid).started_at) == starts[0]
    cycle_until(cp, started_from_slurm)
    time.sleep(1.3)
    with transaction(factory) as s:
        principal = load_principal(session=s, user=s.get(User, world["user"]))
        cancel_job(session=s, principal=principal, job_id=jid)
    with factory() as s:
        def charged() -> bool:
            s.expire_all()
            return s.scalar(select(LedgerEntry).where(LedgerEntry.job_id == jid)) is not None
        cycle_until(cp, charged)
        [entry] = s.scalars(select(LedgerEntry).where(LedgerEntry.job_id == jid)).all()
    [run] = wait_for_runs(world["runner"], world["prefix"])
    assert run.state == "CANCELLED" and run.gpus == 3
    assert ts(entry.period_end) == run.end
    assert entry.accelerator_seconds == run.gpus * (run.end - run.start)
