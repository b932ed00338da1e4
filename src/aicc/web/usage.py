"""Usage reports from the ledger: accelerator-hours, energy, carbon and charges, grouped by
project, organization or sector over a period, scoped to what the caller may see.

Only ``usage`` entries count (time lost to a node failure is recorded by the ledger but charged
to no one). An entry belongs to the period that holds its ``period_end`` (``start <= period_end
< end``), so adjacent periods never count the same entry twice and a job's usage shows up
exactly once however the periods are cut.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aicc.errors import InvalidInput, InvalidPeriod
from aicc.ledger.usage import USAGE
from aicc.store.models import AcceleratorTypeRow, LedgerEntry, Organization, Project, Sector
from aicc.tenancy.access import Principal, visible_project_ids

GroupBy = Literal["project", "organization", "sector"]
GROUP_BY: tuple[str, ...] = ("project", "organization", "sector")


@dataclass(frozen=True)
class UsageRow:
    id: int
    name: str
    sector: str
    accelerator_hours: float
    energy_kwh: float
    carbon_kg: float
    charge: float
    jobs: int
    entries: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_period(start: datetime | None, end: datetime | None) -> None:
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2028-01-01T00:00:00Z)",
                               field=name)
    if start is not None and end is not None and end <= start:
        raise InvalidPeriod("end must be after start", field="end")


def usage_report(*, session: Session, principal: Principal | None, group_by: str = "project",
                 start: datetime | None = None, end: datetime | None = None,
                 accelerator_type: str | None = None, limit: int | None = None
                 ) -> list[UsageRow]:
    """Ledger totals per group, largest first. ``principal`` None means the whole center (the
    portal's public totals); otherwise only the caller's visible projects count."""
    if group_by not in GROUP_BY:
        raise InvalidInput(f"group_by must be one of {', '.join(GROUP_BY)}", field="group_by")
    check_period(start, end)
    if accelerator_type is not None and session.get(AcceleratorTypeRow,
                                                    accelerator_type) is None:
        raise InvalidInput(f"unknown accelerator type {accelerator_type!r}",
                           field="accelerator_type")
    key_col, name_col = {
        "project": (Project.id, Project.name),
        "organization": (Organization.id, Organization.name),
        "sector": (Sector.id, Sector.name),
    }[group_by]
    hours = func.sum(LedgerEntry.accelerator_seconds) / 3600.0
    q = (select(key_col, name_col, func.min(Sector.name), hours,
                func.sum(LedgerEntry.energy_kwh), func.sum(LedgerEntry.carbon_kg),
                func.sum(LedgerEntry.charge), func.count(func.distinct(LedgerEntry.job_id)),
                func.count(LedgerEntry.id))
         .select_from(LedgerEntry)
         .join(Project, LedgerEntry.project_id == Project.id)
         .join(Organization, Project.organization_id == Organization.id)
         .join(Sector, Organization.sector_id == Sector.id)
         .where(LedgerEntry.kind == USAGE)
         .group_by(key_col, name_col)
         .order_by(hours.desc(), key_col))
    if principal is not None and (ids := visible_project_ids(principal)) is not None:
        q = q.where(LedgerEntry.project_id.in_(sorted(ids)))
    if start is not None:
        q = q.where(LedgerEntry.period_end >= start)
    if end is not None:
        q = q.where(LedgerEntry.period_end < end)
    if accelerator_type is not None:
        q = q.where(LedgerEntry.accelerator_type == accelerator_type)
    if limit is not None:
        q = q.limit(limit)
    return [UsageRow(id=int(r[0]), name=r[1], sector=r[2], accelerator_hours=float(r[3] or 0),
                     energy_kwh=float(r[4] or 0), carbon_kg=float(r[5] or 0),
                     charge=float(r[6] or 0), jobs=int(r[7] or 0), entries=int(r[8] or 0))
            for r in session.execute(q).all()]
