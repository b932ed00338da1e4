"""Database engines and sessions: SQLite (WAL) by default, PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from aicc.errors import ConfigError


def _shown(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL ("" for an in-memory database), None for another database or
    a URL that does not parse (:func:`make_engine` names that problem)."""
    try:
        u = make_url(url)
    except ArgumentError:
        return None
    if u.get_backend_name() != "sqlite":
        return None
    if u.database in (None, "", ":memory:"):
        return ""
    if str(u.query.get("uri", "")).lower() in ("true", "1"):  # file:PATH?mode=…, a URI
        if "mode=memory" in u.database or u.query.get("mode") == "memory":
            return ""
        path = u.database.removeprefix("file:").split("?", 1)[0]
        return "" if path in ("", ":memory:") else path
    return u.database


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; a SQLite file's directory is created here. Raises
    :class:`ConfigError` naming ``database_url`` for a URL or directory that cannot be used."""
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database_url: not a database URL: {exc}",
                          field="database_url") from None
    if u.get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path:
            parent = Path(path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
                if Path(path).exists() and not Path(path).is_file():
                    # a device or a folder: SQLite would fail on it, or write beside it
                    raise ConfigError(f"database_url: {path} is not a regular file",
                                      field="database_url")
            except OSError as exc:
                raise ConfigError(
                    f"database_url: cannot create the directory {parent} of {_shown(url)}: "
                    f"{exc.strerror or exc}", field="database_url") from None
        engine = _create(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if not (u.database or u.query.get("dbname") or u.query.get("service")
            or os.environ.get("PGDATABASE") or os.environ.get("PGSERVICE")):
        # (libpq would take the user's name: rarely the database meant)
        raise ConfigError(f"database_url: {_shown(url)} names no database; give "
                          "postgresql+psycopg://USER@HOST:PORT/DATABASE", field="database_url")
    if u.port is not None and not 1 <= u.port <= 65535:
        raise ConfigError(f"database_url: port {u.port} is out of range (1-65535)",
                          field="database_url")
    return _create(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _create(url: str, **kw: Any) -> Engine:
    """``create_engine``, its refusals (a driver not installed, a malformed URL) named as
    ``database_url`` errors (Settings checks the URL; an engine made from a bare URL too)."""
    try:
        return create_engine(url, **kw)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise ConfigError(f"database_url: cannot use {_shown(url)}: {exc}",
                          field="database_url") from None


def check_connection(engine: Engine) -> None:
    """Open one connection now, so that an unreachable or unusable database stops a command
    with one line naming ``database_url`` (exit 2) rather than a traceback mid-way."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        cause = str(exc.orig or exc).strip().splitlines()
        raise ConfigError(
            f"database_url: cannot connect to {_shown(engine.url.render_as_string(False))}: "
            f"{cause[0] if cause else type(exc).__name__}", field="database_url") from None


def open_database(url: str, *, pool_size: int = 10) -> Engine:
    """:func:`make_engine` plus :func:`check_connection`: what commands call at start-up."""
    engine = make_engine(url, pool_size=pool_size)
    try:
        check_connection(engine)
    except ConfigError:
        engine.dispose()
        raise
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session
