"""Tenancy sync into Slurm's account tree and usage from sacct into the ledger, on a real
localhost Slurm with slurmdbd on MariaDB."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from aicc.engines.base import EventKind
from aicc.engines.slurm import (
    AccountManager,
    OrgNode,
    ProjectNode,
    SectorNode,
    SlurmEngine,
    SlurmRunner,
    tree_from_store,
)
from aicc.engines.slurm.usage import import_usage, read_runs
from aicc.errors import Conflict, EngineError, InvalidInput
from aicc.store.db import make_engine
from aicc.store.migrate import upgrade
from aicc.store.models import Job, JobState, LedgerEntry, Role
from aicc.store.seed import seed_catalog
from aicc.tenancy import service as tenancy
from engines.contract import EngineHarness, collect, of, order, spec
from engines.sacct_wait import wait_for_runs

pytestmark = pytest.mark.slurm


@pytest.fixture
def runner(slurm_conf: str) -> SlurmRunner:
    return SlurmRunner(slurm_conf, timeout_s=20)


def tree(p: str, *, beta_org: str = "uni", with_gamma: bool = True) -> list[SectorNode]:
    uni_projects = [ProjectNode(f"{p}-alpha", (f"{p}alice", f"{p}bob"), 200)]
    acme_projects = [ProjectNode(f"{p}-gamma", (f"{p}carol",))] if with_gamma else []
    (uni_projects if beta_org == "uni" else acme_projects).append(ProjectNode(f"{p}-beta"))
    return [
        SectorNode(f"{p}-research", (OrgNode(f"{p}-uni", tuple(uni_projects)),)),
        SectorNode(f"{p}-industry", (OrgNode(f"{p}-acme", tuple(acme_projects)),)),
    ]


def test_sync_builds_the_hierarchy_once_and_follows_changes(runner: SlurmRunner,
                                                            slurm_prefix: str) -> None:
    p = slurm_prefix
    mgr = AccountManager(runner, parent=f"{p}root", submit_user="root")
    first = mgr.sync(tree(p))
    assert set(first.created_accounts) == {
        f"{p}-research", f"{p}-industry", f"{p}-uni", f"{p}-acme", f"{p}-alpha", f"{p}-beta",
        f"{p}-gamma"}
    parents, users = mgr.associations()
    assert parents[f"{p}-research"] == f"{p}root" and parents[f"{p}-uni"] == f"{p}-research"
    assert parents[f"{p}-alpha"] == f"{p}-uni" and parents[f"{p}-gamma"] == f"{p}-acme"
    assert {(f"{p}alice", f"{p}-alpha"), (f"{p}bob", f"{p}-alpha"), ("root", f"{p}-beta"),
            (f"{p}carol", f"{p}-gamma")} <= users
    fairshare = runner.run(["sacctmgr", "-n", "-P", "list", "associations",
                            f"account={p}-alpha", "format=Account,User,Fairshare"])
    assert f"{p}-alpha||200" in fairshare.splitlines()
    assert not mgr.sync(tree(p)).changed  # idempotent
    moved = mgr.sync(tree(p, beta_org="acme"))
    assert moved.moved_accounts == [f"{p}-beta"]
    assert mgr.associations()[0][f"{p}-beta"] == f"{p}-acme"
    kept = mgr.sync(tree(p, beta_org="acme", with_gamma=False))
    assert not kept.removed_accounts  # nothing is removed unless asked
    pruned = mgr.sync(tree(p, beta_org="acme", with_gamma=False), prune=True)
    assert pruned.removed_accounts == [f"{p}-gamma"]
    assert f"{p}carol@{p}-gamma" in pruned.removed_associations
    assert f"{p}-gamma" not in mgr.associations()[0]


def test_sync_refuses_names_slurm_cannot_hold(runner: SlurmRunner, slurm_prefix: str) -> None:
    mgr = AccountManager(runner, parent=f"{slurm_prefix}root", submit_user="root")
    same = f"{slurm_prefix}-same"
    with pytest.raises(Conflict, match="same Slurm account"):
        mgr.sync([SectorNode(same, (OrgNode(f"{slurm_prefix}-o", (ProjectNode(same),)),))])
    with pytest.raises(InvalidInput, match="cannot be a Slurm name"):
        mgr.sync([SectorNode("has space")])
    with pytest.raises(Conflict, match="collides"):
        mgr.sync([SectorNode("root")])
    # An account someone else made in Slurm is never taken over.
    runner.run(["sacctmgr", "-i", "add", "account", f"{slurm_prefix}-ext", "parent=root"])
    with pytest.raises(Conflict, match="outside"):
        mgr.sync([SectorNode(f"{slurm_prefix}-s", (OrgNode(f"{slurm_prefix}-ext"),))])


@pytest.fixture
def db(tmp_path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'aicc.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_tree_from_store_and_usage_from_sacct_enters_the_ledger_once(
        db: Engine, runner: SlurmRunner, slurm_prefix: str) -> None:
    p = slurm_prefix
    with Session(db) as s, s.begin():
        seed_catalog(s)
        sector = tenancy.create_sector(session=s, name=f"{p}-public")
        org = tenancy.create_organization(session=s, name=f"{p}-agency", sector_id=sector.id)
        project = tenancy.create_project(session=s, name=f"{p}-climate", organization_id=org.id,
                                         weight=1.5)
        user = tenancy.create_user(session=s, name=f"{p}dana")
        tenancy.create_membership(session=s, user_id=user.id, role=Role.MEMBER,
                                  project_id=project.id)
        job = Job(project_id=project.id, accelerator_type="h100-sxm-80g", nodes=1, per_node=2,
                  time_limit_s=60, state=JobState.RUNNING, attempts=1)
        s.add(job)
        s.flush()
        job_id, project_id = job.id, project.id
    with Session(db) as s:
        sectors = tree_from_store(s)
    [mine] = [x for x in sectors if x.name == f"{p}-public"]
    assert mine.organizations[0].projects[0] == ProjectNode(f"{p}-climate", (f"{p}dana",), 150)
    mgr = AccountManager(runner, parent=f"{p}root", submit_user="root")
    mgr.sync([mine])

    engine = SlurmEngine(runner, prefix=p, poll_interval_s=0.2, parent_account=f"{p}root")
    s1 = replace(spec(job_id, "h100-sxm-80g", runtime=2.0, per_node=2), project=f"{p}-climate")
    engine.start([order(s1, ["n2"])], time.time())
    h = EngineHarness(engine, time.time, time.sleep, max_wait_s=30, tick_s=0.25)
    events = collect(h, lambda ev: bool(of(ev, job_id, EventKind.FINISHED)), what="finish")
    [started] = of(events, job_id, EventKind.STARTED)
    [finished] = of(events, job_id, EventKind.FINISHED)

    runs = wait_for_runs(runner, p)
    [run] = runs
    # sacct speaks aicc's words: the job is charged to the project's account.
    acct = runner.run(["sacct", "-n", "-P", "-X", "-A", f"{p}-climate", "-o", "JobName,Account"])
    assert f"{p}-{job_id}|{p}-climate" in acct.splitlines()
    assert (run.job_id, run.attempt, run.account, run.gpus) == (job_id, 1, f"{p}-climate", 2)
    with Session(db) as s, s.begin():
        assert import_usage(s, runs) == 1
    with Session(db) as s, s.begin():
        assert import_usage(s, read_runs(runner, prefix=p)) == 0  # exactly once
    with Session(db) as s:
        [entry] = s.scalars(select(LedgerEntry)).all()
        assert entry.event_id == f"job:{job_id}:attempt:1:usage"
        assert entry.project_id == project_id
        assert entry.accelerator_seconds == pytest.approx(2 * (finished.time - started.time))
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_a_project_account_is_never_a_foreign_or_sector_account(runner: SlurmRunner,
                                                                slurm_prefix: str) -> None:
    """At first submit a project's account is created or reused only below the parent and only
    as a leaf: an account of another group (outside the parent) or a sector's of the same name
    is refused naming the project, and the submitting user is not added to it."""
    p = slurm_prefix
    mgr = AccountManager(runner, parent=f"{p}root", submit_user="root")
    mgr.sync(tree(p))
    foreign = f"{p}-foreign"
    runner.run(["sacctmgr", "-i", "add", "account", foreign, "parent=root"])
    try:
        for account, says in ((foreign, "outside"), (f"{p}-research", "sub-accounts"),
                              (f"{p}root", "outside"), ("root", "outside")):
            with pytest.raises(EngineError, match=says) as err:
                AccountManager(runner, parent=f"{p}root").ensure_project_account(account)
            assert err.value.field == "project.name"
        _, users = mgr.associations()
        assert not {u for (u, a) in users if a in {foreign, f"{p}-research"}}
        mgr.ensure_project_account(f"{p}-alpha")  # a synced project account is fine
        mgr.ensure_project_account(f"{p}-new")  # and a new one is created below the parent
        assert mgr.associations()[0][f"{p}-new"] == f"{p}root"
    finally:
        runner.run(["sacctmgr", "-i", "delete", "account", foreign])
