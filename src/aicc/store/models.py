"""SQLAlchemy 2 models: the database is the source of truth for tenancy, grants, jobs and the
ledger. Every schema change comes with an Alembic revision (``store/migrations``); a test
checks that models and migrations agree."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, also on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


class NodeState(enum.StrEnum):
    """A node as the API and the scheduler see it. The store keeps two things apart: health
    (``nodes.state``: up or down, what the engine reports) and the operator's drain
    (``nodes.drained``), so that an engine's down-then-up does not lift a drain. ``DRAIN`` is
    the view of a healthy drained node (``node_view``); it is never stored."""

    UP = "up"
    DRAIN = "drain"
    DOWN = "down"


def node_view(state: NodeState | str, drained: bool) -> NodeState:
    """What a node is for scheduling: down when unhealthy, drain when an operator took it out
    (and it is healthy), else up."""
    health = NodeState(state)
    if health == NodeState.DOWN:
        return NodeState.DOWN
    return NodeState.DRAIN if drained or health == NodeState.DRAIN else NodeState.UP


class Role(enum.StrEnum):
    ORG_ADMIN = "org_admin"
    MEMBER = "member"


class GrantState(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    REVOKED = "revoked"


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.PREEMPTED}
)

# The job life cycle: which state may follow which (preempted jobs may be requeued as pending).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {JobState.FINISHED, JobState.FAILED, JobState.CANCELLED, JobState.PREEMPTED,
         JobState.PENDING}
    ),
    JobState.FINISHED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.PREEMPTED: frozenset({JobState.PENDING}),
}


class JobClassName(enum.StrEnum):
    INTERACTIVE = "interactive"
    BATCH = "batch"
    FLEXIBLE = "flexible"


def _enum(e: type[enum.Enum], name: str) -> Enum:
    return Enum(e, name=name, native_enum=False, values_callable=lambda x: [m.value for m in x],
                validate_strings=True, length=16)


# --- catalog and fleet ---------------------------------------------------------------------


class AcceleratorTypeRow(Base):
    __tablename__ = "accelerator_types"
    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    memory_gb: Mapped[float] = mapped_column(Float)
    peak_tflops: Mapped[float] = mapped_column(Float)
    tdp_w: Mapped[float] = mapped_column(Float)
    idle_w: Mapped[float] = mapped_column(Float)
    price_weight: Mapped[float] = mapped_column(Float)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Pod(Base):
    __tablename__ = "pods"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_pods_site_name"),)


class Leaf(Base):
    __tablename__ = "leaves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    pod_id: Mapped[int] = mapped_column(ForeignKey("pods.id"))
    __table_args__ = (UniqueConstraint("pod_id", "name", name="uq_leaves_pod_name"),)


class Node(Base):
    __tablename__ = "nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    leaf_id: Mapped[int] = mapped_column(ForeignKey("leaves.id"), index=True)
    accelerator_type: Mapped[str] = mapped_column(ForeignKey("accelerator_types.name"))
    accelerators: Mapped[int] = mapped_column(Integer)
    # Health, as the engine reports it: up or down (never drain, see NodeState).
    state: Mapped[NodeState] = mapped_column(_enum(NodeState, "node_state"),
                                             default=NodeState.UP)
    state_reason: Mapped[str] = mapped_column(String(256), default="")
    # The operator's drain, apart from health: it outlives the node going down and up again.
    drained: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    drain_reason: Mapped[str] = mapped_column(String(256), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When a node down for a failure comes back (the twin's repair time, counted from the
    # failure); NULL when no repair is due. Kept here so a restarted twin repairs it on time.
    repair_at: Mapped[datetime | None] = mapped_column(default=None)
    leaf: Mapped[Leaf] = relationship(lazy="joined")
    __table_args__ = (CheckConstraint("accelerators > 0", name="accelerators_positive"),)


# --- tenancy -------------------------------------------------------------------------------


class Sector(Base):
    __tablename__ = "sectors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    # Fraction of this sector's entitlement that may be lent out when idle.
    lend_limit: Mapped[float] = mapped_column(Float, default=1.0)
    entitlements: Mapped[list[SectorEntitlement]] = relationship(
        back_populates="sector", cascade="all, delete-orphan", lazy="selectin"
    )


class SectorEntitlement(Base):
    __tablename__ = "sector_entitlements"
    sector_id: Mapped[int] = mapped_column(ForeignKey("sectors.id"), primary_key=True)
    accelerator_type: Mapped[str] = mapped_column(
        ForeignKey("accelerator_types.name"), primary_key=True
    )
    share: Mapped[float] = mapped_column(Float)
    sector: Mapped[Sector] = relationship(back_populates="entitlements")
    __table_args__ = (CheckConstraint("share >= 0 AND share <= 1", name="share_range"),)


class LendingBalance(Base):
    """What one sector has lent another (rule 2 of docs/design/0001-scheduling.md): the
    balance in accelerator-seconds, decayed with the fair-share usage half-life, as of ``at``,
    and the accelerators lent from ``at`` on. The balance at a later time follows from these
    alone (``aicc.scheduler.lending.accumulate_lending``), so the control plane writes a row
    only when the loans change, in the transaction of the cycle's decisions. A pair never lent
    between has no row."""

    __tablename__ = "lending_balances"
    lender_sector_id: Mapped[int] = mapped_column(ForeignKey("sectors.id"), primary_key=True)
    borrower_sector_id: Mapped[int] = mapped_column(ForeignKey("sectors.id"), primary_key=True)
    balance_s: Mapped[float] = mapped_column(Float, default=0.0)
    loan: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column()
    __table_args__ = (
        CheckConstraint("balance_s >= 0", name="balance_nonnegative"),
        CheckConstraint("loan >= 0", name="loan_nonnegative"),
        CheckConstraint("lender_sector_id <> borrower_sector_id", name="two_sectors"),
    )


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    sector_id: Mapped[int] = mapped_column(ForeignKey("sectors.id"), index=True)
    region: Mapped[str] = mapped_column(String(64), default="")
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sector: Mapped[Sector] = relationship(lazy="joined")
    __table_args__ = (CheckConstraint("weight > 0", name="weight_positive"),)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    title: Mapped[str] = mapped_column(String(256), default="")
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    organization: Mapped[Organization] = relationship(lazy="joined")
    __table_args__ = (CheckConstraint("weight > 0", name="weight_positive"),)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    email: Mapped[str] = mapped_column(String(256), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """A role of a user: ``member`` of a project, or ``org_admin`` of an organization."""

    __tablename__ = "memberships"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"),
                                                        index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user: Mapped[User] = relationship(lazy="joined")
    __table_args__ = (
        CheckConstraint(
            "(role = 'member' AND project_id IS NOT NULL AND organization_id IS NULL) OR "
            "(role = 'org_admin' AND organization_id IS NOT NULL AND project_id IS NULL)",
            name="scope_matches_role",
        ),
        UniqueConstraint("user_id", "project_id", "organization_id", name="uq_memberships_scope"),
    )


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    user: Mapped[User] = relationship(lazy="joined")


# --- allocation ----------------------------------------------------------------------------


class Grant(Base):
    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    accelerator_type: Mapped[str] = mapped_column(ForeignKey("accelerator_types.name"))
    accelerator_hours: Mapped[float] = mapped_column(Float)
    start: Mapped[datetime] = mapped_column()
    end: Mapped[datetime] = mapped_column()
    state: Mapped[GrantState] = mapped_column(_enum(GrantState, "grant_state"),
                                              default=GrantState.ACTIVE)
    note: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    project: Mapped[Project] = relationship(lazy="joined")
    __table_args__ = (
        CheckConstraint("accelerator_hours > 0", name="hours_positive"),
        CheckConstraint('"end" > start', name="end_after_start"),
    )


# --- jobs ----------------------------------------------------------------------------------


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), index=True)
    # Whether the submission named ``grant_id``. A named grant is the job's for good; one the
    # control loop chose (a job naming none is charged to its project's live grant when it
    # starts) is chosen again if the job returns to the queue (preempted, its node failed).
    grant_named: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    accelerator_type: Mapped[str] = mapped_column(ForeignKey("accelerator_types.name"))
    nodes: Mapped[int] = mapped_column(Integer)
    per_node: Mapped[int] = mapped_column(Integer)
    time_limit_s: Mapped[float] = mapped_column(Float)
    job_class: Mapped[JobClassName] = mapped_column(_enum(JobClassName, "job_class"),
                                                    default=JobClassName.BATCH)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False)
    script: Mapped[str | None] = mapped_column(Text, default=None)
    # The twin runs a job for its actual runtime when the workload carries one.
    runtime_s: Mapped[float | None] = mapped_column(Float, default=None)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"),
                                            default=JobState.PENDING, index=True)
    reason: Mapped[str] = mapped_column(String(512), default="")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    placement: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    engine_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Scheduling state of the running attempt, kept here so that it survives a restart of the
    # control plane; every move out of ``running`` clears it (aicc.workload.jobs.advance).
    # ``borrowed``: None = not recorded (the lender is unknown), else whether the attempt runs
    # on borrowed capacity; ``lender_sector_id``: the sector that lent it (None: not borrowed,
    # or lent by the unentitled pool). See docs/design/0001-scheduling.md, rules 2 and 8.
    borrowed: Mapped[bool | None] = mapped_column(Boolean, default=None)
    lender_sector_id: Mapped[int | None] = mapped_column(ForeignKey("sectors.id"),
                                                         default=None)
    # A preemption notice: when the job is stopped (first notice + grace) and why.
    preempt_at: Mapped[datetime | None] = mapped_column(default=None)
    preempt_message: Mapped[str | None] = mapped_column(String(256), default=None)
    project: Mapped[Project] = relationship(lazy="joined")
    __table_args__ = (
        UniqueConstraint("submitted_by", "idempotency_key", name="uq_jobs_idempotency"),
        CheckConstraint("nodes > 0", name="nodes_positive"),
        CheckConstraint("per_node > 0", name="per_node_positive"),
        CheckConstraint("time_limit_s > 0", name="time_limit_positive"),
        Index("ix_jobs_project_state", "project_id", "state"),
    )

    @property
    def accelerators(self) -> int:
        return self.nodes * self.per_node


class JobEventRow(Base):
    """The audit trail of a job's life cycle."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(String(512), default="")
    # On ``running`` events: the grant the attempt started on, which is what it is charged to
    # (a job naming no grant may start each attempt on another; see Job.grant_named).
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), default=None)


# --- ledger --------------------------------------------------------------------------------


class LedgerEntry(Base):
    """Append-only usage. ``event_id`` is unique: a retried write can never charge twice."""

    __tablename__ = "ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="usage")  # usage | lost
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), index=True)
    accelerator_type: Mapped[str] = mapped_column(ForeignKey("accelerator_types.name"))
    accelerator_seconds: Mapped[float] = mapped_column(Float)
    energy_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    carbon_kg: Mapped[float] = mapped_column(Float, default=0.0)
    charge: Mapped[float] = mapped_column(Float, default=0.0)
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column(index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    __table_args__ = (
        CheckConstraint("accelerator_seconds >= 0", name="seconds_nonnegative"),
    )
