"""Jobs in the store: submission (validated, idempotent, batched) and the life cycle.

``submit_jobs`` takes a batch of submissions and stores all the valid ones in the caller's
transaction; the API's group commit calls it with whatever arrived while the previous batch was
committing. ``transition`` is the only way a job changes state: it enforces
``store.models.TRANSITIONS`` and writes the audit row.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
)
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from aicc.errors import (
    AiccError,
    Conflict,
    InvalidInput,
    InvalidJobShape,
    InvalidTransition,
    UnknownAcceleratorType,
    UnknownGrant,
    UnknownJob,
    UnknownProject,
)
from aicc.store.models import (
    TRANSITIONS,
    AcceleratorTypeRow,
    Grant,
    GrantState,
    Job,
    JobClassName,
    JobEventRow,
    JobState,
    Node,
    Project,
    utcnow,
)
from aicc.tenancy.access import (
    Principal,
    require_known_project,
    require_project,
    visible_project_ids,
)

MAX_TIME_LIMIT_S = 30 * 86400.0
MAX_IDEMPOTENCY_KEY = 128
MAX_ID = 2**31 - 1  # ids are 32-bit integers in every store


class Gang(BaseModel):
    """``nodes`` × ``per_node`` accelerators; a job below one node is ``nodes=1, per_node=k``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    nodes: StrictInt = Field(1, ge=1, le=100_000, description="nodes in the gang")
    per_node: StrictInt = Field(ge=1, le=1024, description="accelerators on each node")


class JobSubmission(BaseModel):
    """What a user asks for. Every field is checked here or against the store."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    project_id: StrictInt = Field(ge=1, le=MAX_ID)
    accelerator_type: str = Field(min_length=1, max_length=48)
    gang: Gang
    time_limit_s: StrictFloat = Field(gt=0, le=MAX_TIME_LIMIT_S, allow_inf_nan=False)
    name: str = Field("", max_length=128)
    job_class: JobClassName = JobClassName.BATCH
    preemptible: StrictBool = False
    grant_id: StrictInt | None = Field(None, ge=1, le=MAX_ID)
    script: str | None = Field(None, max_length=65_536)
    runtime_s: StrictFloat | None = Field(
        None, gt=0, le=MAX_TIME_LIMIT_S, allow_inf_nan=False,
        description="how long the job really runs, in seconds: the digital twin and the "
        "simulator run it that long; real engines ignore it")

    @field_validator("name", "script", "accelerator_type")
    @classmethod
    def _no_nul(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v

    @field_validator("time_limit_s", "runtime_s")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    principal: Principal
    spec: JobSubmission
    idempotency_key: str | None = None


@dataclass(slots=True)
class SubmitResult:
    """One submission's outcome: the job in its public form (:func:`job_to_dict`), whether it
    was created now (False: an earlier submission with the same key), or the refusal."""

    job: dict[str, Any] | None
    created: bool = False
    error: AiccError | None = None

    @property
    def job_id(self) -> int | None:
        return None if self.job is None else int(self.job["id"])


class NodeShapes:
    """Node sizes by accelerator type and the known types, as stored, cached for ``ttl_s``
    (the fleet and the catalog change rarely; a submission must not scan the node table)."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._at = -math.inf
        self._shapes: dict[str, list[tuple[int, int]]] = {}
        self._types: frozenset[str] = frozenset()

    def _refresh(self, session: Session) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._at < self.ttl_s:
                return
        rows = session.execute(
            select(Node.accelerator_type, Node.accelerators, func.count())
            .group_by(Node.accelerator_type, Node.accelerators)).all()
        shapes: dict[str, list[tuple[int, int]]] = {}
        for t, size, count in rows:
            shapes.setdefault(t, []).append((int(size), int(count)))
        for v in shapes.values():
            v.sort(reverse=True)
        types = frozenset(session.scalars(select(AcceleratorTypeRow.name)))
        with self._lock:
            # An empty fleet is not cached: the service may be syncing it right now.
            self._shapes, self._types = shapes, types
            self._at = now if shapes else -math.inf

    def get(self, session: Session) -> dict[str, list[tuple[int, int]]]:
        """``type -> [(accelerators per node, node count)]``, largest nodes first."""
        self._refresh(session)
        return self._shapes

    def types(self, session: Session) -> frozenset[str]:
        self._refresh(session)
        return self._types

    def invalidate(self) -> None:
        with self._lock:
            self._at = -math.inf


def check_shape(shapes: dict[str, list[tuple[int, int]]], accelerator_type: str, nodes: int,
                per_node: int) -> None:
    """Raise ``InvalidJobShape`` unless the fleet has ``nodes`` nodes of the type, each with at
    least ``per_node`` accelerators."""
    sizes = shapes.get(accelerator_type)
    if not sizes:
        raise InvalidJobShape(f"the fleet has no node of type {accelerator_type}",
                              field="accelerator_type")
    largest = sizes[0][0]
    if per_node > largest:
        raise InvalidJobShape(
            f"gang.per_node={per_node} exceeds the largest {accelerator_type} node "
            f"({largest} accelerators)", field="gang.per_node")
    fitting = sum(c for size, c in sizes if size >= per_node)
    if nodes > fitting:
        raise InvalidJobShape(
            f"gang.nodes={nodes} exceeds the {fitting} {accelerator_type} nodes with "
            f"{per_node} accelerators or more", field="gang.nodes")


def _check_key(key: str | None) -> None:
    if key is None:
        return
    # (ASCII: a header's bytes are read as Latin-1, so any other character arrives as the
    # bytes of some encoding, printable or not by chance)
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not (key.isascii() and key.isprintable()):
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            field="Idempotency-Key")


def submit_jobs(*, session: Session, requests: Sequence[SubmitRequest],
                now: datetime | None = None, shapes: NodeShapes | None = None
                ) -> list[SubmitResult]:
    """Validate and store a batch of submissions in the caller's transaction.

    Each result carries the stored job (``created`` False when an earlier submission with the
    same user and idempotency key is returned instead) or the error that refused it. The batch
    costs a constant number of statements: one lookup of known keys, one of grants, one
    multi-row insert of jobs and one of their events; fleet shapes come from a short cache.
    """
    now = now or utcnow()
    shapes = shapes or NodeShapes(ttl_s=0.0)
    shape_table = shapes.get(session)
    known_types = shapes.types(session)
    results: list[SubmitResult] = [SubmitResult(job=None) for _ in requests]
    keyed = {(r.principal.user_id, r.idempotency_key) for r in requests
             if r.idempotency_key is not None}
    existing: dict[tuple[int, str], dict[str, Any]] = {}
    if keyed:
        # Core, not ORM: this runs for every batch. The unique index on (submitted_by,
        # idempotency_key) serves the IN lists; pairs are then matched exactly.
        q = _known_keys_query()
        params = {"users": sorted({u for u, _ in keyed}), "keys": sorted({k for _, k in keyed})}
        for row in session.connection().execute(q, params).mappings():
            pair = (row["submitted_by"], row["idempotency_key"])
            if pair in keyed:
                existing[pair] = _row_to_dict(dict(row))
    # Projects a member or org_admin sees exist (they were loaded with the principal); only
    # ids given by a center admin need a look.
    unverified = {r.spec.project_id for r in requests
                  if r.spec.project_id not in r.principal.project_org}
    known_projects = (set(session.scalars(select(Project.id).where(Project.id.in_(unverified))))
                      if unverified else set())
    grant_ids = {r.spec.grant_id for r in requests if r.spec.grant_id is not None}
    grants = ({g.id: g for g in session.scalars(select(Grant).where(Grant.id.in_(grant_ids)))}
              if grant_ids else {})
    rows: list[dict[str, Any]] = []
    pending: dict[int, tuple[int, bool]] = {}  # request index -> (row index, created)
    batch_keys: dict[tuple[int, str], int] = {}
    for i, req in enumerate(requests):
        spec, principal, key = req.spec, req.principal, req.idempotency_key
        try:
            _check_key(key)
            require_project(principal, spec.project_id, field="project_id")
            if spec.project_id not in principal.project_org and (
                    spec.project_id not in known_projects):
                raise UnknownProject(f"no project with id {spec.project_id}",
                                     field="project_id")
            if key is not None:
                prior = existing.get((principal.user_id, key))
                if prior is not None:
                    _same_request(spec, prior)
                    results[i] = SubmitResult(job=prior, created=False)
                    continue
                twin = batch_keys.get((principal.user_id, key))
                if twin is not None:  # the same key twice in one batch: one job
                    _same_request(spec, rows[twin])
                    pending[i] = (twin, False)
                    continue
            if spec.accelerator_type not in known_types:
                raise UnknownAcceleratorType(
                    f"unknown accelerator type {spec.accelerator_type!r}",
                    field="accelerator_type")
            check_shape(shape_table, spec.accelerator_type, spec.gang.nodes, spec.gang.per_node)
            grant_id = _pick_grant(spec, grants, now)
        except AiccError as exc:
            results[i] = SubmitResult(job=None, error=exc)
            continue
        if key is not None:
            batch_keys[(principal.user_id, key)] = len(rows)
        pending[i] = (len(rows), True)
        rows.append({
            "name": spec.name, "project_id": spec.project_id, "grant_id": grant_id,
            "grant_named": grant_id is not None, "submitted_by": principal.user_id,
            "idempotency_key": key,
            "accelerator_type": spec.accelerator_type, "nodes": spec.gang.nodes,
            "per_node": spec.gang.per_node, "time_limit_s": spec.time_limit_s,
            "job_class": spec.job_class, "preemptible": spec.preemptible,
            "script": spec.script, "runtime_s": spec.runtime_s, "state": JobState.PENDING,
            "reason": "submitted", "submitted_at": now, "started_at": None, "ended_at": None,
            "placement": None, "engine_ref": None, "attempts": 0,
        })
    if not rows:
        return results
    ids = _insert_jobs(session, rows)  # on PostgreSQL, their "submitted" events too
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.execute(_SQLITE_INSERT_EVENTS, {"ids": json.dumps(list(ids)),
                                             "now": _stored_time(conn, now)})
    elif conn.dialect.name != "postgresql":
        conn.execute(_insert_statements()[1], [
            {"job_id": jid, "kind": "submitted", "time": now, "reason": ""} for jid in ids])
    dicts = []
    now_iso = iso_time(now)
    for jid, row in zip(ids, rows, strict=True):
        row["id"] = jid
        d = _row_to_dict(row, submitted_iso=now_iso)
        dicts.append(d)
    for i, (ri, created) in pending.items():
        results[i] = SubmitResult(job=dicts[ri], created=created)
    return results


def _same_request(spec: JobSubmission, job: dict[str, Any]) -> None:
    """Raise ``Conflict`` unless ``job`` (stored, or a row of this batch) is what ``spec`` asks
    for: an Idempotency-Key names one request, and a different body under it is a client bug,
    not a retry. A job that named no grant is given one when it starts: that one is not
    compared when the request named none, and never matches a request naming one."""
    gang = job.get("gang") or {"nodes": job["nodes"], "per_node": job["per_node"]}
    stored = (job["project_id"], job["accelerator_type"], gang["nodes"], gang["per_node"],
              float(job["time_limit_s"]), job["name"], JobClassName(job["job_class"]),
              bool(job["preemptible"]), job.get("script"), job["runtime_s"])
    asked = (spec.project_id, spec.accelerator_type, spec.gang.nodes, spec.gang.per_node,
             float(spec.time_limit_s), spec.name, JobClassName(spec.job_class),
             spec.preemptible, spec.script, spec.runtime_s)
    if stored != asked or (spec.grant_id is not None and (
            not job["grant_named"] or spec.grant_id != job["grant_id"])):
        raise Conflict("this Idempotency-Key was used for a different request; use a new key "
                       f"(the first is job {job.get('id', 'in this batch')})",
                       field="Idempotency-Key")


def _signature(row: Any) -> tuple[Any, ...]:
    return (row["submitted_by"], row["idempotency_key"], row["project_id"], row["nodes"],
            row["per_node"], row["accelerator_type"], row["name"], float(row["time_limit_s"]))


def _insert_jobs(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in one statement with RETURNING; their ids, in the rows' order.

    PostgreSQL and SQLite get one short, fixed statement over the whole batch (arrays through
    ``unnest``, a JSON array through ``json_each``), so the text is parsed once and a batch is
    one round trip; other dialects use SQLAlchemy's multi-row insert. RETURNING does not promise
    an order, so the ids are matched to the rows by content: sorted ids first (both stores
    number the rows of one statement in order), checked row by row; where that check fails, by
    content alone — rows with equal content are the same request of the same user, and either
    id answers either caller.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # One round trip less: the jobs' "submitted" events are inserted by the same statement.
        back = list(conn.execute(_PG_INSERT_JOBS_AND_EVENTS, _pg_arrays(rows)).mappings())
    elif conn.dialect.name == "sqlite":
        back = list(conn.execute(_SQLITE_INSERT_JOBS, _sqlite_params(conn, rows)).mappings())
    else:
        back = list(conn.execute(_insert_statements()[0], rows).mappings())
    back.sort(key=lambda r: r["id"])
    if len(back) == len(rows) and all(_signature(b) == _signature(r)
                                      for b, r in zip(back, rows, strict=True)):
        return [int(b["id"]) for b in back]
    by_content: dict[tuple[Any, ...], list[int]] = {}
    for b in back:
        by_content.setdefault(_signature(b), []).append(int(b["id"]))
    return [by_content[_signature(r)].pop(0) for r in rows]


@functools.cache
def _known_keys_query() -> Any:
    jobs = Job.__table__
    return select(*[jobs.c[f] for f in _FIELDS], jobs.c.idempotency_key).where(
        jobs.c.submitted_by.in_(bindparam("users", expanding=True)),
        jobs.c.idempotency_key.in_(bindparam("keys", expanding=True)))


@functools.cache
def _insert_statements() -> tuple[Any, Any]:
    cols = (Job.id, Job.submitted_by, Job.idempotency_key, Job.project_id, Job.nodes,
            Job.per_node, Job.accelerator_type, Job.name, Job.time_limit_s)
    return insert(Job.__table__).returning(*cols), insert(JobEventRow.__table__)


# PostgreSQL: one short, fixed statement over arrays, whatever the batch size (a multi-row
# VALUES list is a new, long SQL text for every size, which the driver parses every time).
_PG_COLUMNS = (("name", "text"), ("project_id", "int"), ("grant_id", "int"),
               ("grant_named", "bool"),
               ("submitted_by", "int"), ("idempotency_key", "text"),
               ("accelerator_type", "text"), ("nodes", "int"), ("per_node", "int"),
               ("time_limit_s", "float8"), ("job_class", "text"), ("preemptible", "bool"),
               ("script", "text"), ("runtime_s", "float8"), ("state", "text"),
               ("reason", "text"), ("submitted_at", "timestamptz"), ("attempts", "int"))
_PG_INSERT_JOBS = text(
    "INSERT INTO jobs (" + ", ".join(c for c, _ in _PG_COLUMNS) + ") SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in _PG_COLUMNS) + ") RETURNING id, "
    "submitted_by, idempotency_key, project_id, nodes, per_node, accelerator_type, name, "
    "time_limit_s")
# The jobs of a batch and their "submitted" events in one statement: the events' insert reads
# the ids the jobs' insert returns (both run in one snapshot; foreign keys are checked at the
# end of the statement).
_PG_INSERT_JOBS_AND_EVENTS = text(
    "WITH j AS (" + _PG_INSERT_JOBS.text + ", submitted_at), "
    "e AS (INSERT INTO job_events (job_id, kind, time, reason) "
    "SELECT id, 'submitted', submitted_at, '' FROM j) "
    "SELECT id, submitted_by, idempotency_key, project_id, nodes, per_node, accelerator_type, "
    "name, time_limit_s FROM j")


# SQLite: the same idea over one JSON array of rows (json_each keeps the array's order).
_SQLITE_INSERT_JOBS = text(
    "INSERT INTO jobs (" + ", ".join(c for c, _ in _PG_COLUMNS if c != "submitted_at")
    + ", submitted_at) SELECT "
    + ", ".join(f"json_extract(value, '$.{c}')" for c, _ in _PG_COLUMNS if c != "submitted_at")
    + ", :now FROM json_each(:rows) RETURNING id, submitted_by, idempotency_key, project_id, "
    "nodes, per_node, accelerator_type, name, time_limit_s")
_SQLITE_INSERT_EVENTS = text(
    "INSERT INTO job_events (job_id, kind, time, reason) "
    "SELECT value, 'submitted', :now, '' FROM json_each(:ids)")


def _stored_time(conn: Any, t: datetime) -> Any:
    """``t`` as the column type stores it on this connection's dialect."""
    proc = Job.__table__.c.submitted_at.type.bind_processor(conn.dialect)
    return proc(t) if proc else t


def _sqlite_params(conn: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    now = {r["submitted_at"] for r in rows}
    assert len(now) == 1, "one batch, one submission time"
    cols = [c for c, _ in _PG_COLUMNS if c != "submitted_at"]
    payload = [{c: (r[c].value if c in ("job_class", "state") else r[c]) for c in cols}
               for r in rows]
    return {"rows": json.dumps(payload), "now": _stored_time(conn, now.pop())}


def _pg_arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for col, _ in _PG_COLUMNS:
        values = [r[col] for r in rows]
        if col in ("job_class", "state"):
            values = [v.value for v in values]
        out[col] = values
    return out


def _pick_grant(spec: JobSubmission, grants: dict[int, Grant], now: datetime) -> int | None:
    """The grant a job names, checked. A job that names none is stored without one: the
    control loop charges it to its project's grant for its type live when it starts (one with
    balance left first; ``aicc.allocation.live``), looked for again every cycle while it
    waits, so that a grant used up or ended meanwhile never holds it while another has hours."""
    if spec.grant_id is None:
        return None
    grant = grants.get(spec.grant_id)
    if grant is None or grant.project_id != spec.project_id:
        raise UnknownGrant(f"no grant with id {spec.grant_id} for this project",
                           field="grant_id")
    if grant.accelerator_type != spec.accelerator_type:
        raise InvalidInput(f"grant {grant.id} is for {grant.accelerator_type}, not "
                           f"{spec.accelerator_type}", field="grant_id")
    if grant.state != GrantState.ACTIVE:
        raise InvalidInput(f"grant {grant.id} is {grant.state.value}", field="grant_id")
    if grant.end <= now:  # (one that begins later is taken: the job waits for it)
        raise InvalidInput(f"grant {grant.id} ended at {iso_time(grant.end)}",
                           field="grant_id")
    return grant.id


def submit_job(*, session: Session, principal: Principal | int, spec: JobSubmission,
               idempotency_key: str | None = None, now: datetime | None = None,
               shapes: NodeShapes | None = None) -> tuple[Job, bool]:
    """Store one submission; returns ``(job, created)``. Raises the error that refused it.
    ``principal`` may be a user id (its roles are then loaded from the store)."""
    if isinstance(principal, int):
        from aicc.tenancy.access import load_principal
        from aicc.tenancy.service import get_user

        principal = load_principal(session=session,
                                   user=get_user(session=session, user_id=principal))
    (res,) = submit_jobs(session=session, requests=[SubmitRequest(principal, spec,
                                                                  idempotency_key)],
                         now=now, shapes=shapes)
    if res.error is not None:
        raise res.error
    job = session.get(Job, res.job_id)
    assert job is not None
    return job, res.created


# --- reading -------------------------------------------------------------------------------


def get_job(*, session: Session, principal: Principal, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or not principal.can_see_project(job.project_id):
        raise UnknownJob(f"no job with id {job_id}", field="job_id")
    return job


def list_jobs(*, session: Session, principal: Principal, project_id: int | None = None,
              state: JobState | str | None = None, accelerator_type: str | None = None,
              job_class: JobClassName | str | None = None, limit: int = 100,
              after_id: int = 0) -> list[Job]:
    """Jobs the principal may see, oldest first, ``limit`` after ``after_id`` (keyset paging)."""
    q = select(Job).where(Job.id > after_id)
    ids = visible_project_ids(principal)
    if ids is not None:
        q = q.where(Job.project_id.in_(ids))
    if project_id is not None:
        require_known_project(session, principal, project_id)
        q = q.where(Job.project_id == project_id)
    if state is not None:
        q = q.where(Job.state == JobState(state))
    if accelerator_type is not None:
        q = q.where(Job.accelerator_type == accelerator_type)
    if job_class is not None:
        q = q.where(Job.job_class == JobClassName(job_class))
    return list(session.scalars(q.order_by(Job.id).limit(limit)))


# --- life cycle ----------------------------------------------------------------------------


def transition(*, session: Session, job: Job | int, to: JobState | str, at: datetime,
               reason: str = "", placement: list[str] | None = None,
               engine_ref: str | None = None) -> Job:
    """Move ``job`` to ``to`` at ``at`` if the life cycle allows it, and record the event.

    Entering ``running`` stamps ``started_at`` and counts an attempt; a terminal state stamps
    ``ended_at``; going back to ``pending`` (requeue after preemption) clears both. Every move
    clears the attempt's scheduling state (lender, preemption notice): whoever starts a job
    records its lender after this call.
    """
    if isinstance(job, int):
        found = session.get(Job, job)
        if found is None:
            raise UnknownJob(f"no job with id {job}", field="job_id")
        job = found
    to = JobState(to)
    if at.tzinfo is None:
        raise InvalidInput("transition time needs a time zone", field="at")
    event = advance(job, to, at, reason, placement)
    if to == JobState.RUNNING and engine_ref is not None:
        job.engine_ref = engine_ref
    session.add(JobEventRow(**event))
    session.flush()
    return job


def advance(job: Any, to: JobState, at: datetime, reason: str = "",
            placement: list[str] | None = None) -> dict[str, Any]:
    """The life-cycle rule, on anything with a job's columns (an ORM ``Job`` or the loop's
    bulk rows): check ``TRANSITIONS``, stamp the times, and return the audit event's columns.

    Entering ``running`` stamps ``started_at``, counts an attempt and records on its event the
    grant it starts on (set ``grant_id`` before the call); a terminal state stamps
    ``ended_at``; going back to ``pending`` (requeue after preemption) clears both. Every move
    clears the attempt's scheduling state (lender, preemption notice): whoever starts a job
    records its lender after this call.
    """
    if to not in TRANSITIONS[job.state]:
        raise InvalidTransition(f"job {job.id} cannot go from {job.state.value} to {to.value}",
                                field="state", job_id=job.id)
    job.state = to
    job.reason = reason[:512]
    job.borrowed = job.lender_sector_id = None
    job.preempt_at = job.preempt_message = None
    if to == JobState.RUNNING:
        job.started_at, job.ended_at = at, None
        job.attempts += 1
        if placement is not None:
            job.placement = list(placement)
    elif to == JobState.PENDING:
        job.started_at = job.ended_at = None
        job.placement = None
    else:
        job.ended_at = at
    return {"job_id": job.id, "kind": to.value, "time": at, "reason": reason[:512],
            "grant_id": job.grant_id if to == JobState.RUNNING else None}


def cancel_job(*, session: Session, principal: Principal, job_id: int,
               at: datetime | None = None, reason: str = "") -> Job:
    """Cancel a pending or running job the principal may see (a running one is stopped by the
    service loop, which sees it cancelled with a start and no end on the engine side)."""
    job = get_job(session=session, principal=principal, job_id=job_id)
    return transition(session=session, job=job, to=JobState.CANCELLED, at=at or utcnow(),
                      reason=reason or f"cancelled by {principal.name}")


_FIELDS = ("id", "name", "project_id", "grant_id", "grant_named", "submitted_by",
           "accelerator_type", "nodes", "per_node", "time_limit_s", "job_class", "preemptible",
           "runtime_s", "script", "state", "reason", "submitted_at", "started_at", "ended_at",
           "placement", "attempts")


def iso_time(t: datetime | None) -> str | None:
    """ISO 8601 in UTC with ``Z``, the one form every answer of the API uses."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.replace(tzinfo=None).isoformat() + "Z"


def _row_to_dict(row: dict[str, Any], submitted_iso: str | None = None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "project_id": row["project_id"],
        "grant_id": row["grant_id"],
        "grant_named": bool(row["grant_named"]),
        "submitted_by": row["submitted_by"],
        "accelerator_type": row["accelerator_type"],
        "gang": {"nodes": row["nodes"], "per_node": row["per_node"]},
        "accelerators": row["nodes"] * row["per_node"],
        "time_limit_s": row["time_limit_s"],
        "job_class": JobClassName(row["job_class"]).value,
        "preemptible": row["preemptible"],
        "runtime_s": row["runtime_s"],
        "script": row["script"],
        "state": JobState(row["state"]).value,
        "reason": row["reason"],
        "submitted_at": submitted_iso or iso_time(row["submitted_at"]),
        "started_at": iso_time(row["started_at"]),
        "ended_at": iso_time(row["ended_at"]),
        "placement": row["placement"],
        "attempts": row["attempts"],
    }


def job_to_dict(job: Job) -> dict[str, Any]:
    """The public JSON form of a job (the API's and the CLI's)."""
    return _row_to_dict({f: getattr(job, f) for f in _FIELDS})
