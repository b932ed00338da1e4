"""Schema migrations through Alembic, configured in code (no alembic.ini to lose)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from aicc.errors import ConfigError


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("aicc.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def check_upgradable(engine: Engine, cfg: Config) -> None:
    """Refuse, naming ``database_url``, a database whose schema record this code does not know
    (written by a newer aicc) or that holds tables without one (not made by a migration):
    upgrading either would fail half-way or build over tables it did not make."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        at = MigrationContext.configure(conn).get_current_revision()
        tables = set(inspect(conn).get_table_names())
    known = {r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()}
    if at is not None and at not in known:
        raise ConfigError(f"database_url: the database is at schema {at}, which this aicc does "
                          "not know (a newer aicc made it?); run that aicc, or give another "
                          "database", field="database_url")
    if at is None and tables & AICC_TABLES:
        raise ConfigError("database_url: the database holds aicc tables "
                          f"({', '.join(sorted(tables & AICC_TABLES)[:3])}, …) but no schema "
                          "record (alembic_version), so its schema is unknown; give a database "
                          "made by `aicc db upgrade`, or an empty one", field="database_url")


# tables every aicc schema has: one of them without a schema record is not a new database
AICC_TABLES = frozenset({"accelerator_types", "sectors", "organizations", "projects", "jobs"})


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (idempotent).

    SQLite changes a table by building a new one and dropping the old, which its foreign keys
    forbid while other tables point at it; so they are off during the migration (SQLite only
    switches them outside a transaction) and every reference is checked before it commits.
    The migration runs in one explicit transaction: the sqlite3 module opens none before DDL,
    and a failed migration must leave the database as it was."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    check_upgradable(engine, cfg)
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration to {revision} left rows pointing nowhere: "
                                       f"{broken[:5]}")
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
