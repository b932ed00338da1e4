"""Models and migrations agree, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, Table, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aicc.store.db import make_engine
from aicc.store.migrate import current, upgrade
from aicc.store.models import Base
from aicc.store.seed import seed_catalog
from conftest import fresh_postgres_database

T = datetime(2030, 1, 1, tzinfo=UTC)


def test_empty_database_upgrades_to_head_and_matches_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert current(engine) is not None
        tables = set(inspect(engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        upgrade(engine)  # idempotent
    finally:
        engine.dispose()


def _at_revision(engine: Engine, revision: str) -> dict[str, Table]:
    """The database at ``revision`` with the catalog seeded; its tables as that revision has
    them (the models describe head)."""
    upgrade(engine, revision)
    with Session(engine) as session, session.begin():
        seed_catalog(session)
    old = MetaData()
    old.reflect(engine)
    return dict(old.tables)


def _adder(conn: Connection, tables: dict[str, Table]) -> Callable[..., int]:
    """Insert one row into a table of ``tables``; returns its id."""
    def add(table: str, **row: object) -> int:
        t = tables[table]
        return conn.execute(insert(t).returning(t.c.id), row).scalar_one()
    return add


def _one_project(add: Callable[..., int]) -> int:
    """A sector, an organization of it and a project of that; returns the project's id."""
    sector = add("sectors", name="public", description="", lend_limit=1.0)
    org = add("organizations", name="agency", sector_id=sector, region="north", weight=1.0,
              created_at=T)
    return add("projects", name="climate", title="", organization_id=org, weight=1.0,
               created_at=T)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database of its own (the session's PostgreSQL one may be at head already)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with fresh_postgres_database("aicc_migrate") as url:
        yield url


def test_a_populated_database_upgrades_from_the_first_revision(unmigrated_url: str) -> None:
    """A center created by the first release keeps its jobs, their audit rows and ledger
    entries across every later migration (SQLite rebuilds a table to add a foreign key), and
    its foreign keys are enforced afterwards."""
    engine = make_engine(unmigrated_url)
    try:
        t = _at_revision(engine, "0001")
        with engine.begin() as conn:
            add = _adder(conn, t)
            project = _one_project(add)
            job = add("jobs", name="", project_id=project, accelerator_type="h100-sxm-80g",
                      nodes=1, per_node=8, time_limit_s=3600.0, job_class="batch",
                      preemptible=False, state="running", reason="", submitted_at=T,
                      started_at=T, attempts=1)
            add("job_events", job_id=job, kind="submitted", time=T, reason="")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT state, borrowed FROM jobs WHERE id = :j"),
                                {"j": job}).one() == ("running", None)
            assert conn.execute(text("SELECT count(*) FROM job_events WHERE job_id = :j"),
                                {"j": job}).scalar_one() == 1
        with pytest.raises(IntegrityError), engine.begin() as conn:  # still enforced
            conn.execute(insert(t["job_events"]), {"job_id": 999_999, "kind": "submitted",
                                                   "time": T, "reason": ""})
    finally:
        engine.dispose()


def test_stored_drains_become_drained_healthy_nodes(unmigrated_url: str) -> None:
    """Before 0004 a drain was a node state; after it, a node stored as 'drain' is healthy
    ('up') and drained, its reason kept as the drain's. Up and down nodes are not drained."""
    engine = make_engine(unmigrated_url)
    try:
        t = _at_revision(engine, "0003")
        with engine.begin() as conn:
            add = _adder(conn, t)
            site = add("sites", name="lab")
            pod = add("pods", name="p0", site_id=site)
            leaf = add("leaves", name="l0", pod_id=pod)
            for name, state, reason in (("n-up", "up", ""), ("n-drain", "drain", "fan"),
                                        ("n-down", "down", "not responding")):
                add("nodes", name=name, leaf_id=leaf, accelerator_type="h100-sxm-80g",
                    accelerators=8, state=state, state_reason=reason, updated_at=T)
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, state, state_reason, drained, drain_reason "
                                     "FROM nodes ORDER BY name")).all()
        assert [(n, s, r, bool(d), dr) for n, s, r, d, dr in rows] == [
            ("n-down", "down", "not responding", False, ""),
            ("n-drain", "up", "", True, "fan"),
            ("n-up", "up", "", False, ""),
        ]
    finally:
        engine.dispose()


def test_a_failed_sqlite_migration_leaves_the_database_as_it_was(tmp_path) -> None:
    """Rows pointing nowhere (written with foreign keys off) stop the upgrade, and everything it
    did before is rolled back: the revision, and no half-built table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0001")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("INSERT INTO job_events (job_id, kind, time, reason) "
                                 "VALUES (424242, 'submitted', '2030-01-01 00:00:00', '')")
            conn.commit()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        before = set(inspect(engine).get_table_names())
        with pytest.raises(RuntimeError, match="rows pointing nowhere"):
            upgrade(engine)
        assert current(engine) == "0001"
        assert set(inspect(engine).get_table_names()) == before
        assert "borrowed" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    finally:
        engine.dispose()


def test_a_populated_database_gains_an_empty_lending_balance(unmigrated_url: str) -> None:
    """0005 adds the lending balance between sectors: a center with sectors and running jobs
    keeps them and starts from no balance; a pair of known, distinct sectors is taken, one
    pointing at no sector or at itself is refused."""
    engine = make_engine(unmigrated_url)
    try:
        t = _at_revision(engine, "0004")
        with engine.begin() as conn:
            add = _adder(conn, t)
            industry = add("sectors", name="industry", description="", lend_limit=1.0)
            research = add("sectors", name="research", description="", lend_limit=0.5)
            org = add("organizations", name="lab", sector_id=research, region="",
                      weight=1.0, created_at=T)
            project = add("projects", name="llm", title="", organization_id=org, weight=1.0,
                          created_at=T)
            add("jobs", name="", project_id=project, accelerator_type="h100-sxm-80g", nodes=1,
                per_node=8, time_limit_s=3600.0, job_class="batch", preemptible=False,
                state="running", reason="", submitted_at=T, started_at=T, attempts=1,
                borrowed=True, lender_sector_id=industry)
        upgrade(engine)
        tables = MetaData()
        tables.reflect(engine)
        lending = tables.tables["lending_balances"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM lending_balances")).scalar_one() == 0
            assert conn.execute(text("SELECT lender_sector_id FROM jobs")).scalar_one() == industry
        with engine.begin() as conn:
            conn.execute(insert(lending), {"lender_sector_id": industry,
                                           "borrower_sector_id": research, "balance_s": 3600.0,
                                           "loan": 8.0, "at": T})
        for bad in ({"lender_sector_id": 999_999, "borrower_sector_id": research},
                    {"lender_sector_id": research, "borrower_sector_id": research}):
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(insert(lending), {**bad, "balance_s": 0.0, "loan": 0.0, "at": T})
    finally:
        engine.dispose()


def test_jobs_stored_with_a_grant_are_taken_as_having_named_it(unmigrated_url: str) -> None:
    """0006 records whether a job's grant was named; a job stored with a grant before it keeps
    that grant across requeues (as it was scheduled until then), one without has none named."""
    engine = make_engine(unmigrated_url)
    try:
        t = _at_revision(engine, "0005")
        with engine.begin() as conn:
            add = _adder(conn, t)
            project = _one_project(add)
            grant = add("grants", project_id=project, accelerator_type="h100-sxm-80g",
                        accelerator_hours=100.0, start=T, end=T.replace(year=2031),
                        state="active", note="", created_at=T)
            job = {"name": "", "project_id": project, "accelerator_type": "h100-sxm-80g",
                   "nodes": 1, "per_node": 8, "time_limit_s": 3600.0, "job_class": "batch",
                   "preemptible": False, "state": "pending", "reason": "", "submitted_at": T,
                   "attempts": 0}
            with_grant = add("jobs", **job, grant_id=grant)
            without = add("jobs", **job)
        upgrade(engine)
        with engine.connect() as conn:
            got = dict(conn.execute(text("SELECT id, grant_named FROM jobs")).all())
        assert got == {with_grant: True, without: False}
    finally:
        engine.dispose()
