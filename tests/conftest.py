"""Shared fixtures: databases for every store test, on SQLite and on a real PostgreSQL.

- ``sqlite_url``: an empty SQLite file in the test's tmp dir.
- ``postgres_url``: a fresh database (``aicc_test_<random>``) on the server of
  ``AICC_TEST_POSTGRES_URL``, created once per test session and dropped at the end
  (``scripts/test.sh`` always sets the variable; run directly without it, those tests skip).
- ``db_url``: parametrised over both.
- ``migrated_engine``: an engine on a database at head; on PostgreSQL every table is emptied
  after the test, on SQLite each test gets a copy of a file migrated once per session.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from aicc.store.db import make_engine
from aicc.store.migrate import upgrade
from aicc.store.models import Base

PG_ENV = "AICC_TEST_POSTGRES_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aicc.db'}"


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A database of its own on the ``AICC_TEST_POSTGRES_URL`` server, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: run `make test` (scripts/test.sh starts PostgreSQL)")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database("aicc_test") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "aicc.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


_pg_migrated: set[str] = set()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def migrated_engine(db_url: str, tmp_path: Path, request: pytest.FixtureRequest
                    ) -> Iterator[Engine]:
    """An engine on a database at head, empty of rows (its URL: ``str(engine.url)``)."""
    if db_url.startswith("sqlite"):
        template = request.getfixturevalue("_sqlite_template")
        path = tmp_path / "migrated.db"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = make_engine(db_url, pool_size=5)
    if db_url not in _pg_migrated:
        upgrade(engine)
        _pg_migrated.add(db_url)
    try:
        yield engine
    finally:
        engine.dispose()
        cleaner = create_engine(db_url)
        _truncate_all(cleaner)
        cleaner.dispose()
