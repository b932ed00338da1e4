"""The demo center: tenants in the three sectors, their grants and a steady synthetic workload.

``aicc serve --demo`` seeds this once (:func:`seed_demo` is idempotent: a restart finds the
center already there and resumes it) and then feeds :class:`DemoWorkload` arrivals to the
control plane on the accelerated clock.

The workload is a Poisson stream cut into fixed windows of clock time. Window ``k`` draws its
jobs from a generator seeded with ``(demo.seed, k)``, so the jobs of a window are the same
whatever the start time, the call pattern or the number of restarts, and each job carries an
idempotency key ``demo-<k>-<i>``: a window submitted twice stores its jobs once.

Arrival rates are sized from the fleet: for each accelerator type, the expected offered work
(accelerators × runtime) per hour matches ``load`` × its capacity, split between the sectors in
proportion to their entitlement. With ``load`` a little above 1 the scheduler keeps every type
mostly busy with a standing queue; once about ``queue_hours`` of a type's arrivals wait, its
batch and flexible users hold back (a balking queue), so each queue stands without growing for
ever.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aicc.config import Settings
from aicc.fleet.arrays import FleetArrays
from aicc.store.models import (
    Grant,
    Job,
    JobState,
    Membership,
    Organization,
    Project,
    Role,
    Sector,
    User,
)
from aicc.tenancy.access import Principal, load_principal
from aicc.workload.jobs import JobSubmission, NodeShapes, SubmitRequest, submit_jobs
from aicc.workload.synthetic import clipped_lognormal_mean

# --- the tenants ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoProject:
    name: str
    title: str
    weight: float = 1.0  # share of its sector's demand, relative to its siblings


@dataclass(frozen=True)
class DemoOrg:
    name: str
    sector: str
    region: str
    short: str  # user-name prefix
    projects: tuple[DemoProject, ...]


DEMO_ORGS: tuple[DemoOrg, ...] = (
    # industry
    DemoOrg("Arden Automotive", "industry", "Capital Region", "arden", (
        DemoProject("arden-adas-perception", "Driver-assistance perception models", 1.5),
        DemoProject("arden-crash-surrogates", "Neural surrogates for crash simulation"),
    )),
    DemoOrg("Helix Pharmaceuticals", "industry", "Eastern Valley", "helix", (
        DemoProject("helix-protein-design", "Protein structure and binder design", 1.5),
        DemoProject("helix-chem-llm", "Chemistry language model for synthesis planning"),
    )),
    DemoOrg("Meridian Industrial Bank", "industry", "Capital Region", "meridian", (
        DemoProject("meridian-risk-llm", "Credit-risk document understanding"),
        DemoProject("meridian-fraud-graph", "Graph models for payment fraud", 0.7),
    )),
    # research
    DemoOrg("University of Lakeshore", "research", "North Coast", "lakeshore", (
        DemoProject("lakeshore-open-llm", "Open multilingual language model", 1.5),
        DemoProject("lakeshore-vision", "Self-supervised vision for medical imaging"),
    )),
    DemoOrg("Highmoor Institute of Technology", "research", "Western Highlands", "highmoor", (
        DemoProject("highmoor-robotics", "Foundation models for robot manipulation"),
        DemoProject("highmoor-fusion-surrogates", "Plasma turbulence surrogates", 0.8),
    )),
    DemoOrg("National Laboratory for Materials", "research", "Eastern Valley", "nlm", (
        DemoProject("nlm-materials-gnn", "Graph networks for materials discovery"),
    )),
    DemoOrg("National Climate Research Laboratory", "research", "North Coast", "nclr", (
        DemoProject("nclr-earth-system", "Machine-learned earth-system emulator", 1.3),
    )),
    # public
    DemoOrg("National Weather Service", "public", "Capital Region", "weather", (
        DemoProject("weather-nowcasting", "Radar nowcasting for severe weather", 1.5),
        DemoProject("weather-global-ensemble", "Machine-learned global ensemble forecast", 2.0),
    )),
    DemoOrg("Public Health Agency", "public", "Capital Region", "health", (
        DemoProject("health-imaging-screening", "Screening models for national imaging programme"),
        DemoProject("health-epi-forecast", "Epidemic forecasting", 0.7),
    )),
    DemoOrg("National Statistics Office", "public", "Southern Plains", "stats", (
        DemoProject("stats-survey-coding", "Automatic coding of survey answers", 0.8),
    )),
    DemoOrg("Digital Government Service", "public", "Capital Region", "govdigital", (
        DemoProject("gov-citizen-assistant", "Public-service language assistant", 1.5),
    )),
)

# Grants cover this many days of each project's fair part of its sector's entitlement, so the
# demo runs for months of clock time before a budget runs dry.
GRANT_HORIZON_DAYS = 240
# Offered work as a fraction of each type's capacity: a little above 1, so that a queue stands
# while gangs and fragmentation leave some capacity idle (about 0.85-1.00 busy per type on the
# 2028 fleet, docs/demo.md); each queue is bounded by DemoWorkload.queue_hours.
DEFAULT_LOAD = 1.1
GRANT_VALID_DAYS = 365


@dataclass
class DemoCenter:
    """What :func:`seed_demo` did: ``created`` is False when the center was already there, and
    ``tokens`` (user name → bearer token) is only filled on the first seed (only hashes are
    stored)."""

    created: bool
    organizations: int
    projects: int
    users: int
    grants: int
    tokens: dict[str, str] = field(default_factory=dict)


def _now(now: datetime | float | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, datetime):
        return now.astimezone(UTC)
    return datetime.fromtimestamp(now, UTC)


def _issue_token(session: Session, user: User, name: str) -> str:
    from aicc.api.tokens import create_token

    return create_token(session=session, user_id=user.id, name=name)


def demo_user_names() -> list[str]:
    """The demo center's members, as :func:`seed_demo` names them."""
    out = []
    for org in DEMO_ORGS:
        out.append(f"{org.short}-admin")
        out += [f"{p.name}-{role}" for p in org.projects for role in ("lead", "dev")]
    return out


def reissue_tokens(session: Session) -> dict[str, str]:
    """A new token for each demo member in the store (user name → token): the way back to the
    center's members when the file of their first tokens is lost (the old ones stay valid)."""
    users = session.scalars(select(User).where(User.name.in_(demo_user_names()))).all()
    return {u.name: _issue_token(session, u, "demo") for u in sorted(users, key=lambda u: u.name)}


def _sector_shares(session: Session) -> dict[str, dict[str, float]]:
    """Sector name → accelerator type → entitlement share."""
    out: dict[str, dict[str, float]] = {}
    for sector in session.scalars(select(Sector)):
        out[sector.name] = {e.accelerator_type: e.share for e in sector.entitlements}
    return out


def seed_demo(session: Session, settings: Settings, fleet: FleetArrays,
              *, now: datetime | float | None = None,
              issue_token: Callable[[Session, User, str], str] | None = None) -> DemoCenter:
    """Create the demo tenants, projects, members (with tokens) and grants, unless present.

    Works inside the caller's transaction. The demo is recognised by its first organization:
    when it exists the center is left exactly as it is (a restart resumes the same center).
    Grants are sized from ``fleet`` (the accelerator types it has and their capacity).
    """
    from aicc.allocation.grants import create_grant
    from aicc.store.seed import seed_default_sectors
    from aicc.tenancy import service as tenancy

    issue = issue_token or _issue_token
    existing = session.scalar(select(Organization).where(Organization.name == DEMO_ORGS[0].name))
    if existing is not None:
        return DemoCenter(
            created=False,
            organizations=session.scalar(select(func.count(Organization.id))) or 0,
            projects=session.scalar(select(func.count(Project.id))) or 0,
            users=session.scalar(select(func.count(User.id))) or 0,
            grants=session.scalar(select(func.count(Grant.id))) or 0,
        )
    t0 = _now(now)
    seed_default_sectors(session)
    shares = _sector_shares(session)
    sectors = {s.name: s for s in session.scalars(select(Sector))}
    capacity = fleet.accelerators_by_type()
    weight_by_sector: dict[str, float] = {}
    for org in DEMO_ORGS:
        weight_by_sector[org.sector] = weight_by_sector.get(org.sector, 0.0) + sum(
            p.weight for p in org.projects)

    center = DemoCenter(created=True, organizations=0, projects=0, users=0, grants=0)
    for org in DEMO_ORGS:
        sector = sectors[org.sector]
        o = tenancy.create_organization(session=session, name=org.name, sector_id=sector.id,
                                        region=org.region)
        center.organizations += 1
        admin = tenancy.create_user(session=session, name=f"{org.short}-admin",
                                    email=f"admin@{org.short}.example")
        tenancy.create_membership(session=session, user_id=admin.id, role=Role.ORG_ADMIN,
                                  organization_id=o.id)
        center.tokens[admin.name] = issue(session, admin, "demo")
        center.users += 1
        for proj in org.projects:
            p = tenancy.create_project(session=session, name=proj.name, organization_id=o.id,
                                       title=proj.title, weight=proj.weight)
            center.projects += 1
            for role_name in ("lead", "dev"):
                u = tenancy.create_user(session=session, name=f"{proj.name}-{role_name}",
                                        email=f"{proj.name}-{role_name}@{org.short}.example")
                tenancy.create_membership(session=session, user_id=u.id, role=Role.MEMBER,
                                          project_id=p.id)
                center.tokens[u.name] = issue(session, u, "demo")
                center.users += 1
            fraction = proj.weight / weight_by_sector[org.sector]
            for type_name, cap in capacity.items():
                share = shares.get(org.sector, {}).get(type_name, 0.0)
                hours = share * cap * fraction * 24 * GRANT_HORIZON_DAYS
                if hours <= 0:
                    continue
                create_grant(session=session, project_id=p.id, accelerator_type=type_name,
                             accelerator_hours=round(hours, 1), start=t0 - timedelta(days=1),
                             end=t0 + timedelta(days=GRANT_VALID_DAYS),
                             note="demo allocation")
                center.grants += 1
    session.flush()
    return center


# --- the workload --------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A kind of job: its class, shape range and runtime distribution (log-normal, hours)."""

    name: str
    probability: float
    job_class: str
    preemptible: bool
    nodes: tuple[int, ...]  # choices of whole nodes (0: a sub-node job)
    sub_node: tuple[int, ...]  # choices of accelerators for a sub-node job
    median_h: float
    sigma: float
    limit_h: float


TEMPLATES: tuple[Template, ...] = (
    Template("interactive", 0.30, "interactive", False, (0,), (1, 2, 4, 8), 0.5, 0.6, 2.0),
    Template("batch-small", 0.38, "batch", False, (0,), (1, 2, 4, 8), 2.0, 0.8, 12.0),
    Template("batch-multi", 0.16, "batch", False, (2, 2, 4, 4, 8), (), 4.0, 0.7, 24.0),
    Template("batch-gang", 0.02, "batch", False, (16, 32, 32, 64), (), 8.0, 0.5, 48.0),
    Template("flexible", 0.14, "flexible", True, (1, 2, 4), (), 3.0, 0.7, 24.0),
)


MIN_RUNTIME_S = 120.0  # a job's runtime is clipped to [MIN_RUNTIME_S, RUNTIME_CAP × limit]
RUNTIME_CAP = 0.95


@dataclass(frozen=True)
class WorkloadProject:
    id: int
    name: str
    sector: str
    weight: float
    submitter_id: int


@dataclass(frozen=True)
class Arrival:
    """One job of the demo workload, before it is submitted."""

    key: str  # idempotency key, unique per window and position
    time: float  # clock seconds since the epoch
    project_id: int
    submitter_id: int
    accelerator_type: str
    nodes: int
    per_node: int
    time_limit_s: float
    runtime_s: float
    job_class: str
    preemptible: bool
    name: str

    @property
    def accelerators(self) -> int:
        return self.nodes * self.per_node


class DemoWorkload:
    """A deterministic arrival stream for a fleet and a set of projects (see module notes)."""

    window_s = 60.0
    backlog_s = 4 * 3600.0  # the first call also submits this much earlier work: a warm start
    max_catch_up_s = 3 * 3600.0  # after a long stop, older windows are skipped, not flooded
    queue_hours = 2.0  # users hold back batch work once this many hours of arrivals wait

    def __init__(self, seed: int, fleet: FleetArrays, projects: Sequence[WorkloadProject],
                 *, load: float = DEFAULT_LOAD, sector_shares: dict[str, float] | None = None
                 ) -> None:
        if not projects:
            raise ValueError("the demo workload needs at least one project")
        self.seed = int(seed)
        self.load = load
        self._cursor: float | None = None  # clock time up to which arrivals were submitted
        self._principals: dict[int, Principal] = {}
        self._shapes = NodeShapes(ttl_s=300.0)
        caps = fleet.accelerators_by_type()
        self.types = sorted(caps)
        self.capacity = np.array([caps[t] for t in self.types], dtype=np.float64)
        # Largest gang per type: half the nodes of that type, so every job can be placed.
        nodes_of = {t: 0 for t in self.types}
        per_node_of: dict[str, int] = {}
        for i in range(fleet.n_nodes):
            t = fleet.catalog.types[int(fleet.type_idx[i])].name
            nodes_of[t] += 1
            per_node_of[t] = max(per_node_of.get(t, 0), int(fleet.capacity[i]))
        self.max_nodes = {t: max(1, nodes_of[t] // 2) for t in self.types}
        self.per_node = per_node_of
        self.projects = list(projects)
        shares = sector_shares or {}
        pw = np.array([p.weight * shares.get(p.sector, 1.0) /
                       sum(q.weight for q in projects if q.sector == p.sector)
                       for p in projects], dtype=np.float64)
        self.project_p = pw / pw.sum()
        self.template_p = np.array([t.probability for t in TEMPLATES])
        self.template_p /= self.template_p.sum()
        # Offered work per job by type, the generator's exact expectation: a sample would make
        # the rates depend on the seed (a few 64-node gangs more or less in 4,000 jobs put one
        # type at 0.7 × its capacity and another at 1.2).
        mean_work = np.array([self._mean_work(t) for t in self.types])
        # Jobs per second of each type so that offered work = load × capacity.
        self.rate_by_type = self.load * self.capacity / np.maximum(mean_work, 1.0)
        self.rate = float(self.rate_by_type.sum())
        self.type_p = self.rate_by_type / self.rate

    def _mean_work(self, t: str) -> float:
        """Expected accelerator-seconds of one job of type ``t`` as :meth:`_draw` makes it: per
        template, the mean shape (shapes are drawn uniformly among the choices) times the mean
        of the clipped log-normal runtime (shape and runtime are independent)."""
        full = self.per_node[t]
        out = 0.0
        for tp, p in zip(TEMPLATES, self.template_p.tolist(), strict=True):
            if tp.nodes == (0,):
                acc = float(np.mean([c for c in tp.sub_node if c <= full] or [full]))
            else:
                acc = float(np.mean([min(c, self.max_nodes[t]) for c in tp.nodes])) * full
            out += p * acc * clipped_lognormal_mean(tp.median_h * 3600.0, tp.sigma,
                                                     MIN_RUNTIME_S, RUNTIME_CAP * tp.limit_h
                                                     * 3600.0)
        return out
    @classmethod
    def from_store(cls, session: Session, settings: Settings, fleet: FleetArrays,
                   *, load: float = DEFAULT_LOAD) -> DemoWorkload:
        """The workload over the demo projects found in the store (after :func:`seed_demo`)."""
        names = [p.name for org in DEMO_ORGS for p in org.projects]
        rows = session.execute(
            select(Project.id, Project.name, Project.weight, Sector.name)
            .join(Organization, Project.organization_id == Organization.id)
            .join(Sector, Organization.sector_id == Sector.id)
            .where(Project.name.in_(names)).order_by(Project.id)).all()
        members = {}
        for m in session.scalars(select(Membership).where(Membership.role == Role.MEMBER)
                                 .order_by(Membership.id)):
            members.setdefault(m.project_id, m.user_id)
        projects = [WorkloadProject(id=r[0], name=r[1], weight=r[2], sector=r[3],
                                    submitter_id=members[r[0]])
                    for r in rows if r[0] in members]
        sector_share = {name: float(np.mean(list(v.values()))) if v else 0.0
                        for name, v in _sector_shares(session).items()}
        return cls(settings.demo.seed, fleet, projects, load=load, sector_shares=sector_share)

    # -- generation (pure) ----------------------------------------------------------------

    def _draw(self, rng: np.random.Generator, n: int, prefix: str, t0: float, span: float
              ) -> list[Arrival]:
        times = np.sort(t0 + rng.random(n) * span)
        proj = rng.choice(len(self.projects), size=n, p=self.project_p)
        typ = rng.choice(len(self.types), size=n, p=self.type_p)
        tmpl = rng.choice(len(TEMPLATES), size=n, p=self.template_p)
        u_shape = rng.random(n)
        z = rng.standard_normal(n)
        out = []
        for i in range(n):
            tp = TEMPLATES[int(tmpl[i])]
            t = self.types[int(typ[i])]
            full = self.per_node[t]
            choices = tp.nodes
            if choices == (0,):
                sub = [c for c in tp.sub_node if c <= full] or [full]
                nodes, per_node = 1, sub[int(u_shape[i] * len(sub))]
            else:
                nodes = min(choices[int(u_shape[i] * len(choices))], self.max_nodes[t])
                per_node = full
            limit = tp.limit_h * 3600.0
            runtime = tp.median_h * 3600.0 * math.exp(tp.sigma * float(z[i]))
            runtime = float(min(max(runtime, MIN_RUNTIME_S), RUNTIME_CAP * limit))
            p = self.projects[int(proj[i])]
            out.append(Arrival(
                key=f"demo-{prefix}-{i}", time=float(times[i]), project_id=p.id,
                submitter_id=p.submitter_id, accelerator_type=t, nodes=nodes,
                per_node=per_node, time_limit_s=limit, runtime_s=round(runtime, 1),
                job_class=tp.job_class, preemptible=tp.preemptible,
                name=f"{p.name}-{tp.name}"))
        return out

    def window(self, k: int) -> list[Arrival]:
        """The jobs arriving in window ``k`` (clock time ``[k·W, (k+1)·W)``)."""
        rng = np.random.default_rng([self.seed, k])
        n = int(rng.poisson(self.rate * self.window_s))
        return self._draw(rng, n, str(k), k * self.window_s, self.window_s)

    def arrivals(self, start: float, end: float) -> list[Arrival]:
        """Every job arriving in ``(start, end]``, in time order."""
        if end <= start:
            return []
        out: list[Arrival] = []
        for k in range(int(start // self.window_s), int(end // self.window_s) + 1):
            out.extend(a for a in self.window(k) if start < a.time <= end)
        return out

    # -- submission -----------------------------------------------------------------------

    def resume_point(self, session: Session) -> float | None:
        """Clock time of the latest demo submission in the store (None before the first)."""
        last = session.scalar(select(func.max(Job.submitted_at))
                              .where(Job.idempotency_key.like("demo-%")))
        return None if last is None else last.timestamp()

    def due(self, session: Session, now: float) -> list[Arrival]:
        """The arrivals not yet submitted up to ``now`` (a warm backlog on the very first call;
        at most ``max_catch_up_s`` of missed work after a long stop)."""
        last = self._cursor
        if last is None:
            last = self.resume_point(session)
            last = now - self.backlog_s if last is None else max(last,
                                                                  now - self.max_catch_up_s)
        self._cursor = max(last, now)
        return self.arrivals(last, now)

    def submit_due(self, session: Session, now: float) -> int:
        """Submit the arrivals due at clock time ``now``; returns how many jobs were stored.

        Runs inside the caller's transaction, through the same batched submission path as the
        API (validation, idempotency by key)."""

        due = self.due(session, now)
        if not due:
            return 0
        waiting = dict(session.execute(
            select(Job.accelerator_type, func.count(Job.id))
            .where(Job.state == JobState.PENDING).group_by(Job.accelerator_type)).all())
        full = {t for t, r in zip(self.types, self.rate_by_type.tolist(), strict=True)
                if waiting.get(t, 0) >= self.queue_hours * r * 3600}
        if full:
            # A long queue for a type: its batch and flexible users wait for a better moment
            # (a balking queue); interactive sessions still arrive. Keeps the demo's queue
            # bounded, type by type: a long H100 queue holds back no work for idle NPUs.
            due = [a for a in due if a.job_class == "interactive"
                   or a.accelerator_type not in full]
        for uid in {a.submitter_id for a in due} - set(self._principals):
            self._principals[uid] = load_principal(session=session,
                                                   user=session.get(User, uid))
        # one batch per window, stamped with the window's last arrival: a warm start's or a
        # catch-up's hours of arrivals keep their times (the forecast's history model replays
        # them as they came, not as one burst at the first instant)
        created = 0
        for _, group in itertools.groupby(due, key=lambda a: int(a.time // self.window_s)):
            batch = list(group)
            requests = [SubmitRequest(
                principal=self._principals[a.submitter_id],
                spec=JobSubmission(project_id=a.project_id, accelerator_type=a.accelerator_type,
                                   gang={"nodes": a.nodes, "per_node": a.per_node},
                                   time_limit_s=a.time_limit_s, name=a.name,
                                   job_class=a.job_class, preemptible=a.preemptible,
                                   runtime_s=a.runtime_s),
                idempotency_key=a.key) for a in batch]
            results = submit_jobs(session=session, requests=requests,
                                  now=_now(min(batch[-1].time, now)), shapes=self._shapes)
            created += sum(1 for r in results if r.created)
        return created
