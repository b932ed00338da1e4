"""Grants: accelerator-hours of one type for one project over [start, end).

Validated here, once, for every caller (API, CLI, demo seeding, simulator import).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aicc.errors import (
    InvalidInput,
    InvalidPeriod,
    InvalidTransition,
    UnknownAcceleratorType,
    UnknownGrant,
)
from aicc.store.models import AcceleratorTypeRow, Grant, GrantState
from aicc.tenancy.service import get_project
from aicc.workload.jobs import iso_time


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (e.g. 2028-01-01T00:00:00Z)", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field} is out of range", field=field) from None


def _check_period(start: datetime, end: datetime, blame: str = "end") -> None:
    """``blame`` names the field the caller sent (a change of ``start`` alone that passes the
    stored ``end`` is ``start``'s fault)."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise InvalidPeriod("end must be after start" if blame == "end"
                            else f"start must be before end ({iso_time(end)})", field=blame)


# Allowed changes of a grant's state: suspension is reversible; expiry and revocation are final.
GRANT_TRANSITIONS: dict[GrantState, frozenset[GrantState]] = {
    GrantState.ACTIVE: frozenset({GrantState.SUSPENDED, GrantState.EXPIRED, GrantState.REVOKED}),
    GrantState.SUSPENDED: frozenset({GrantState.ACTIVE, GrantState.EXPIRED, GrantState.REVOKED}),
    GrantState.EXPIRED: frozenset(),
    GrantState.REVOKED: frozenset(),
}


def _check_type(session: Session, accelerator_type: str) -> None:
    if session.get(AcceleratorTypeRow, accelerator_type) is None:
        known = ", ".join(session.scalars(select(AcceleratorTypeRow.name)))
        raise UnknownAcceleratorType(
            f"unknown accelerator type {accelerator_type!r}; known: {known}",
            field="accelerator_type")


def _check_hours(hours: float) -> None:
    if not hours > 0 or hours != hours or hours == float("inf"):
        raise InvalidInput("accelerator_hours must be a positive number",
                           field="accelerator_hours")


def get_grant(*, session: Session, grant_id: int) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise UnknownGrant(f"no grant with id {grant_id}", field="grant_id")
    return grant


def create_grant(*, session: Session, project_id: int, accelerator_type: str,
                 accelerator_hours: float, start: datetime, end: datetime, note: str = "",
                 state: GrantState | str = GrantState.ACTIVE) -> Grant:
    get_project(session=session, project_id=project_id)
    _check_type(session, accelerator_type)
    _check_hours(accelerator_hours)
    _check_period(start, end)
    grant = Grant(project_id=project_id, accelerator_type=accelerator_type,
                  accelerator_hours=accelerator_hours, start=start, end=end, note=note,
                  state=GrantState(state))
    session.add(grant)
    session.flush()
    return grant


def update_grant(*, session: Session, grant_id: int, accelerator_hours: float | None = None,
                 start: datetime | None = None, end: datetime | None = None,
                 state: GrantState | str | None = None, note: str | None = None) -> Grant:
    grant = get_grant(session=session, grant_id=grant_id)
    if accelerator_hours is not None:
        _check_hours(accelerator_hours)
    new_start = start if start is not None else grant.start
    new_end = end if end is not None else grant.end
    _check_period(new_start, new_end, blame="start" if end is None else "end")
    if state is not None:
        state = GrantState(state)
        if state != grant.state and state not in GRANT_TRANSITIONS[grant.state]:
            raise InvalidTransition(f"grant {grant.id} cannot go from {grant.state.value} to "
                                    f"{state.value}", field="state")
    if accelerator_hours is not None:
        grant.accelerator_hours = accelerator_hours
    grant.start, grant.end = new_start, new_end
    if state is not None:
        grant.state = GrantState(state)
    if note is not None:
        grant.note = note
    session.flush()
    return grant


def list_grants(*, session: Session, project_ids: Iterable[int] | None = None,
                project_id: int | None = None, accelerator_type: str | None = None,
                state: GrantState | str | None = None, limit: int = 100, after_id: int = 0
                ) -> list[Grant]:
    q = select(Grant).where(Grant.id > after_id)
    if project_ids is not None:
        q = q.where(Grant.project_id.in_(list(project_ids)))
    if project_id is not None:
        q = q.where(Grant.project_id == project_id)
    if accelerator_type is not None:
        q = q.where(Grant.accelerator_type == accelerator_type)
    if state is not None:
        q = q.where(Grant.state == GrantState(state))
    return list(session.scalars(q.order_by(Grant.id).limit(limit)))


def active_grant_for(*, session: Session, project_id: int, accelerator_type: str,
                     at: datetime) -> Grant | None:
    """The active grant of this project and type covering ``at`` that ends first, if any."""
    q = (select(Grant)
         .where(Grant.project_id == project_id, Grant.accelerator_type == accelerator_type,
                Grant.state == GrantState.ACTIVE, Grant.start <= at, Grant.end > at)
         .order_by(Grant.end, Grant.id).limit(1))
    return session.scalar(q)


def expire_ended(session: Session, now: datetime) -> list[int]:
    """Move every grant whose period has ended by ``now`` (active or suspended) to ``expired``,
    as the control loop does each cycle, so that its state says what the scheduler already
    does with it (it serves nothing past its end); returns their ids. Expiry is final: a grant
    is extended by moving its ``end`` before that passes."""
    live = (GrantState.ACTIVE, GrantState.SUSPENDED)
    ids = list(session.scalars(select(Grant.id).where(Grant.state.in_(live), Grant.end <= now)))
    if ids:
        session.execute(update(Grant).where(Grant.id.in_(ids), Grant.state.in_(live))
                        .values(state=GrantState.EXPIRED)
                        .execution_options(synchronize_session=False))
    return ids
