"""Job state changes in bulk, for the loop's hot path.

This is the batched form of :func:`aicc.workload.jobs.transition`: both apply the one
life-cycle rule, :func:`aicc.workload.jobs.advance`, and write one ``job_events`` audit row per
change. Per job it costs a tuple in one ``executemany`` instead
of an ORM flush, which is what lets a cycle start a thousand jobs in well under a second.

Every UPDATE is guarded by the state the job had when it was read: if anything else moved the
job meanwhile (a user's cancel), the write fails as a whole with :class:`Conflict` and the
transaction rolls back, to be retried by the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from aicc.errors import Conflict
from aicc.store.models import Job, JobEventRow, JobState
from aicc.workload.jobs import advance


@dataclass(slots=True)
class JobRow:
    """The columns of a job the loop needs, mutable while a batch is built."""

    id: int
    state: JobState
    started_at: datetime | None
    ended_at: datetime | None
    attempts: int
    placement: list[str] | None
    reason: str
    project_id: int
    grant_id: int | None
    accelerator_type: str
    nodes: int
    per_node: int
    time_limit_s: float
    runtime_s: float | None
    preemptible: bool
    script: str | None
    grant_named: bool
    read_state: JobState | None = None  # the state when read: the UPDATE's guard
    # The attempt's scheduling state, not read: every move clears it (``advance``) and the
    # loop sets the lender of a job it starts; the batch writes these with the move.
    borrowed: bool | None = None
    lender_sector_id: int | None = None
    preempt_at: datetime | None = None
    preempt_message: str | None = None

    @property
    def accelerators(self) -> int:
        return self.nodes * self.per_node


COLUMNS = (Job.id, Job.state, Job.started_at, Job.ended_at, Job.attempts, Job.placement,
           Job.reason, Job.project_id, Job.grant_id, Job.accelerator_type, Job.nodes,
           Job.per_node, Job.time_limit_s, Job.runtime_s, Job.preemptible, Job.script,
           Job.grant_named)


def load_rows(session: Session, ids=None, *, where=None) -> dict[int, JobRow]:
    """Jobs by id (``ids``) or by a condition, as :class:`JobRow` s."""
    q = select(*COLUMNS)
    if ids is not None:
        ids = sorted(set(ids))
        if not ids:
            return {}
        q = q.where(Job.id.in_(ids))
    if where is not None:
        q = q.where(where)
    out = {}
    for r in session.execute(q.order_by(Job.id)).all():
        row = JobRow(*r)
        row.state = JobState(row.state)
        row.read_state = row.state
        out[row.id] = row
    return out


class Batch:
    """Collects transitions, then writes them with :meth:`write` (the caller's transaction)."""

    def __init__(self) -> None:
        self._changed: dict[int, JobRow] = {}
        self._events: list[dict] = []

    def __len__(self) -> int:
        return len(self._changed)

    def move(self, job: JobRow, to: JobState, at: datetime, reason: str = "",
             placement: list[str] | None = None) -> None:
        self._events.append(advance(job, to, at, reason, placement))
        self._changed[job.id] = job

    def write(self, session: Session) -> int:
        if not self._changed:
            return 0
        params = [{"jid": j.id, "guard": j.read_state.value if j.read_state else j.state.value,
                   "state": j.state.value, "reason": j.reason, "started_at": j.started_at,
                   "ended_at": j.ended_at, "attempts": j.attempts, "placement": j.placement,
                   "borrowed": j.borrowed, "lender": j.lender_sector_id,
                   "preempt_at": j.preempt_at, "preempt_message": j.preempt_message}
                  for j in self._changed.values()]
        stmt = (update(Job)
                .where(Job.id == bindparam("jid"), Job.state == bindparam("guard"))
                .values(state=bindparam("state"), reason=bindparam("reason"),
                        started_at=bindparam("started_at"), ended_at=bindparam("ended_at"),
                        attempts=bindparam("attempts"), placement=bindparam("placement"),
                        borrowed=bindparam("borrowed"), lender_sector_id=bindparam("lender"),
                        preempt_at=bindparam("preempt_at"),
                        preempt_message=bindparam("preempt_message"))
                .execution_options(synchronize_session=False))
        conn = session.connection()
        result = conn.execute(stmt, params)
        if conn.dialect.supports_sane_multi_rowcount and result.rowcount != len(params):
            raise Conflict("jobs changed state while the cycle was writing; retrying",
                           field="state")
        conn.execute(insert(JobEventRow), self._events)
        n = len(params)
        for j in self._changed.values():
            j.read_state = j.state
        self._changed.clear()
        self._events.clear()
        return n
