"""Usage records: one append-only entry per job attempt, written exactly once.

Every entry has a deterministic ``event_id`` (``job:<id>:attempt:<n>:<kind>``) under a unique
constraint, and is written with insert-or-ignore (``ON CONFLICT DO NOTHING``, on SQLite and on
PostgreSQL): replaying an event after a crash, or two writers racing, can never charge twice.

Kinds:
- ``usage``: accelerator-time a job really used (finished, failed of its own accord, preempted,
  cancelled while running); charged to the job's grant.
- ``lost``: accelerator-time destroyed by a node failure; recorded (with its energy) but never
  charged and never counted against a grant.

The charge is in H100-hour equivalents: accelerator-hours × the type's ``price_weight`` (the
price book turns that into money per sector).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from aicc.energy.power import DEFAULT_GRID_INTENSITY_KG_PER_KWH, carbon_kg, job_energy_kwh
from aicc.errors import InvalidInput
from aicc.store.models import LedgerEntry, utcnow

USAGE, LOST = "usage", "lost"
KINDS = (USAGE, LOST)


def event_id(job_id: int, attempt: int, kind: str) -> str:
    """The one id an attempt's entry of ``kind`` can have."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown ledger kind {kind!r}", field="kind")
    return f"job:{job_id}:attempt:{attempt}:{kind}"


@dataclass(frozen=True, slots=True)
class TypeFacts:
    """What the ledger needs from the catalog for one accelerator type."""

    tdp_w: float
    price_weight: float


_INSERT_CHUNK = 1000  # rows per statement (13 parameters each)


def insert_ignore(session: Session, rows: list[dict]) -> int:
    """Insert ledger rows, skipping any whose ``event_id`` exists; returns how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    if dialect not in ("postgresql", "sqlite"):
        raise InvalidInput(f"unsupported database dialect {dialect}", field="database_url")
    # In chunks (one statement's parameters are bounded: PostgreSQL takes at most 65,535), each
    # counted from RETURNING (through the ORM session PostgreSQL's rowcount reads -1).
    new = 0
    for k in range(0, len(rows), _INSERT_CHUNK):
        stmt = (ins(LedgerEntry).values(rows[k:k + _INSERT_CHUNK])
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(LedgerEntry.event_id))
        new += len(session.execute(stmt).all())
    return new


def job_entry(*, job_id: int, attempt: int, kind: str, project_id: int, grant_id: int | None,
              accelerator_type: str, accelerators: int, start: datetime, end: datetime,
              facts: TypeFacts,
              grid_intensity: float = DEFAULT_GRID_INTENSITY_KG_PER_KWH) -> dict:
    """The ledger row for one attempt of a job over ``[start, end]``."""
    seconds = max(0.0, (end - start).total_seconds())
    acc_s = accelerators * seconds
    energy = job_energy_kwh(accelerators, facts.tdp_w, seconds)
    return {
        "event_id": event_id(job_id, attempt, kind),
        "kind": kind,
        "job_id": job_id,
        "project_id": project_id,
        "grant_id": grant_id if kind == USAGE else None,
        "accelerator_type": accelerator_type,
        "accelerator_seconds": acc_s,
        "energy_kwh": energy,
        "carbon_kg": carbon_kg(energy, grid_intensity),
        "charge": acc_s / 3600.0 * facts.price_weight if kind == USAGE else 0.0,
        "period_start": start,
        "period_end": max(start, end),
        "recorded_at": utcnow(),
    }


def used_seconds_by_grant(session: Session) -> dict[int, float]:
    """Accelerator-seconds charged to each grant so far."""
    rows = session.execute(
        select(LedgerEntry.grant_id, func.sum(LedgerEntry.accelerator_seconds))
        .where(LedgerEntry.kind == USAGE, LedgerEntry.grant_id.is_not(None))
        .group_by(LedgerEntry.grant_id)).all()
    return {int(g): float(s or 0.0) for g, s in rows}
