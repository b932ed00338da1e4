"""What the portal shows, computed from the store: utilisation and queue by sector over the
last hours, running and pending counts, waits, and the top projects by usage.

The anonymous portal is the center's public dashboard: center-wide and per-sector figures, and
the top projects only by name, organization, sector and accelerator-hours (as national centers
publish their awarded projects' usage) — never a project's charge, energy or job count. Those
are shown to an authenticated caller for the projects it may see (all of them for an admin).

History is derived from the jobs table itself (each job's submit, start and end times), so the
plot needs no sampler and shows the same past after a restart. A job that was preempted and
requeued counts from its latest start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aicc.ledger.usage import USAGE
from aicc.store.models import (
    Job,
    JobState,
    LedgerEntry,
    Node,
    NodeState,
    Organization,
    Project,
    Sector,
)
from aicc.tenancy.access import Principal
from aicc.web.usage import UsageRow, usage_report
from aicc.workload.jobs import iso_time

WINDOW_H = 6.0
MIN_WINDOW_H = 0.5
POINTS = 121


@dataclass
class SectorNow:
    name: str
    running: int = 0
    pending: int = 0
    busy: int = 0  # accelerators held by running jobs
    pending_accelerators: int = 0
    mean_wait_s: float = 0.0  # mean time the pending jobs have waited so far
    recent_wait_s: float = 0.0  # mean wait of the jobs started in the last hour


@dataclass(frozen=True)
class PublicProject:
    """What the public dashboard shows of a project: who it is and how much it ran."""

    name: str
    organization: str
    sector: str
    accelerator_hours: float


@dataclass
class PortalData:
    now: datetime
    capacity: int  # accelerators in service (see portal_data)
    capacity_by_type: dict[str, int]
    out_of_service: int  # accelerators on nodes down, or drained and idle
    times: np.ndarray  # clock seconds
    busy: dict[str, np.ndarray]  # sector -> accelerators busy at each time
    queue: dict[str, np.ndarray]  # sector -> pending jobs at each time
    sectors: list[SectorNow]
    top_projects: list[PublicProject]
    busy_by_type: dict[str, int] = field(default_factory=dict)
    viewer: str | None = None  # the authenticated caller, None for the public page
    your_projects: list[UsageRow] = field(default_factory=list)  # the viewer's, in full

    @property
    def busy_now(self) -> int:
        return sum(s.busy for s in self.sectors)

    @property
    def utilisation(self) -> float:
        return self.busy_now / self.capacity if self.capacity else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": iso_time(self.now),
            "capacity": self.capacity,
            "capacity_by_type": self.capacity_by_type,
            "out_of_service": self.out_of_service,
            "busy": self.busy_now,
            "busy_by_type": self.busy_by_type,
            "utilisation": round(self.utilisation, 4),
            "sectors": [vars(s) for s in self.sectors],
            "series": {
                "times": [iso_time(datetime.fromtimestamp(t, UTC)) for t in self.times],
                "busy": {k: v.astype(int).tolist() for k, v in self.busy.items()},
                "queue": {k: v.astype(int).tolist() for k, v in self.queue.items()},
            },
            "top_projects": [vars(r) for r in self.top_projects],
            **({"viewer": self.viewer,
                "your_projects": [r.to_dict() for r in self.your_projects]}
               if self.viewer is not None else {}),
        }


def clock_now(session: Session, clock: Any = None) -> datetime:
    """The control plane's clock when there is one (the demo runs accelerated), else the latest
    moment the store knows of, else the wall."""
    if clock is not None:
        return datetime.fromtimestamp(clock.now(), UTC)
    latest = session.scalar(select(func.max(Job.submitted_at)))
    wall = datetime.now(UTC)
    return max(latest, wall) if latest is not None else wall


def _step_count(times: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                weights: np.ndarray) -> np.ndarray:
    """Sum of ``weights`` of the intervals ``[start, end)`` that contain each time."""
    if len(starts) == 0:
        return np.zeros(len(times))
    o_s = np.argsort(starts)
    o_e = np.argsort(ends)
    cum_s = np.concatenate([[0.0], np.cumsum(weights[o_s])])
    cum_e = np.concatenate([[0.0], np.cumsum(weights[o_e])])
    began = cum_s[np.searchsorted(starts[o_s], times, side="right")]
    ended = cum_e[np.searchsorted(ends[o_e], times, side="right")]
    return began - ended


def top_projects(session: Session, *, start: datetime, end: datetime, limit: int
                 ) -> list[PublicProject]:
    """The projects that used the most accelerator-hours in ``[start, end)`` (by the ledger's
    ``period_end``, as :func:`aicc.web.usage.usage_report`), with public facts only."""
    hours = func.sum(LedgerEntry.accelerator_seconds) / 3600.0
    rows = session.execute(
        select(Project.name, Organization.name, Sector.name, hours)
        .select_from(LedgerEntry)
        .join(Project, LedgerEntry.project_id == Project.id)
        .join(Organization, Project.organization_id == Organization.id)
        .join(Sector, Organization.sector_id == Sector.id)
        .where(LedgerEntry.kind == USAGE, LedgerEntry.period_end >= start,
               LedgerEntry.period_end < end)
        .group_by(Project.id, Project.name, Organization.name, Sector.name)
        .order_by(hours.desc(), Project.id).limit(limit)).all()
    return [PublicProject(r[0], r[1], r[2], float(r[3] or 0)) for r in rows]


def portal_data(session: Session, *, now: datetime, window_h: float = WINDOW_H,
                points: int = POINTS, top: int = 8, principal: Principal | None = None
                ) -> PortalData:
    """The portal's figures; ``principal`` (an authenticated caller) adds the full usage of
    the projects it may see."""
    t_now = now.timestamp()
    # The last ``window_h`` hours, or since the first submission if the center is younger.
    first = session.scalar(select(func.min(Job.submitted_at)))
    since = first.timestamp() if first is not None else t_now
    t0 = max(t_now - window_h * 3600.0, min(since, t_now - MIN_WINDOW_H * 3600.0))
    times = np.linspace(t0, t_now, points)
    sectors = list(session.scalars(select(Sector.name).order_by(Sector.id)))
    # Capacity is what is in service: healthy nodes not drained, and on drained nodes only the
    # accelerators their running jobs still hold (a drain stops new work, not running jobs).
    capacity_by_type = {t: int(n) for t, n in session.execute(
        select(Node.accelerator_type, func.sum(Node.accelerators))
        .where(Node.state != NodeState.DOWN, Node.drained.is_(False))
        .group_by(Node.accelerator_type)).all()}
    drained = set(session.scalars(
        select(Node.name).where(Node.state != NodeState.DOWN, Node.drained.is_(True))))
    out_of_service = int(session.scalar(
        select(func.coalesce(func.sum(Node.accelerators), 0))
        .where(or_(Node.state == NodeState.DOWN, Node.drained.is_(True)))) or 0)
    start_dt = datetime.fromtimestamp(t0, UTC)
    rows = session.execute(
        select(Sector.name, Job.state, Job.nodes * Job.per_node, Job.submitted_at,
               Job.started_at, Job.ended_at, Job.accelerator_type, Job.per_node,
               Job.placement)
        .join(Project, Job.project_id == Project.id)
        .join(Organization, Project.organization_id == Organization.id)
        .join(Sector, Organization.sector_id == Sector.id)
        .where(or_(Job.state.in_([JobState.PENDING, JobState.RUNNING]),
                   Job.ended_at >= start_dt))).all()
    inf = np.inf
    busy: dict[str, np.ndarray] = {}
    queue: dict[str, np.ndarray] = {}
    now_by: dict[str, SectorNow] = {s: SectorNow(s) for s in sectors}
    busy_by_type: dict[str, int] = {}
    by_sector: dict[str, list[Any]] = {s: [] for s in sectors}
    for r in rows:
        by_sector.setdefault(r[0], []).append(r)
        now_by.setdefault(r[0], SectorNow(r[0]))
    for name, rs in by_sector.items():
        n = len(rs)
        acc = np.fromiter((r[2] for r in rs), dtype=np.float64, count=n)
        sub = np.fromiter((r[3].timestamp() for r in rs), dtype=np.float64, count=n)
        st = np.fromiter((r[4].timestamp() if r[4] else inf for r in rs), np.float64, n)
        en = np.fromiter((r[5].timestamp() if r[5] else inf for r in rs), np.float64, n)
        # A requeued job (pending again after a preemption) is not holding anything now.
        pend = np.array([r[1] == JobState.PENDING for r in rs], dtype=bool)
        ran = np.isfinite(st) & ~pend
        busy[name] = _step_count(times, st[ran], en[ran], acc[ran])
        # Pending from submission until it started (or ended unstarted: cancelled, failed).
        left = np.where(ran, st, en)
        queue[name] = _step_count(times, sub, left, np.ones(n))
        s = now_by[name]
        for r in rs:
            if r[1] == JobState.RUNNING:
                s.running += 1
                s.busy += r[2]
                busy_by_type[r[6]] = busy_by_type.get(r[6], 0) + r[2]
                if drained and r[8]:
                    held = r[7] * sum(node in drained for node in r[8])
                    if held:  # in service until the job ends, so not out of it
                        capacity_by_type[r[6]] = capacity_by_type.get(r[6], 0) + held
                        out_of_service -= held
            elif r[1] == JobState.PENDING:
                s.pending += 1
                s.pending_accelerators += r[2]
        if pend.any():
            # Clamped: a clock that stepped back must not show negative waits.
            s.mean_wait_s = max(0.0, float(np.mean(t_now - sub[pend])))
        recent = ran & (st >= t_now - 3600.0)
        if recent.any():
            s.recent_wait_s = max(0.0, float(np.mean(st[recent] - sub[recent])))
    day = (now - timedelta(hours=24), now + timedelta(seconds=1))
    data = PortalData(now=now, capacity=sum(capacity_by_type.values()),
                      capacity_by_type=capacity_by_type, out_of_service=out_of_service,
                      times=times, busy=busy, queue=queue,
                      sectors=[now_by[k] for k in now_by],
                      top_projects=top_projects(session, start=day[0], end=day[1], limit=top),
                      busy_by_type=busy_by_type)
    if principal is not None:
        data.viewer = principal.name
        data.your_projects = usage_report(session=session, principal=principal,
                                          group_by="project", start=day[0], end=day[1],
                                          limit=50)
    return data
