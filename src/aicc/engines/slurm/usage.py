"""Usage read from ``sacct`` into aicc's ledger, exactly once.

Each Slurm run of an aicc job (requeued runs included, ``sacct -D``) belongs to the aicc attempt
whose recorded start is the latest at or before the run's (:func:`_attempt_of`; the k-th run
is attempt k where no start is recorded). Its ledger entry gets the same deterministic event id
the control plane gives the attempt (``job:<id>:attempt:<k>:usage``, see
:mod:`aicc.ledger.usage`) and is written with insert-or-ignore, so whichever path sees the end
first — the service from the engine's event, or this import from the accounting database —
writes it, and the other adds nothing. Re-running the import is always safe. Each run is charged
to the grant its attempt started on.

Accelerator counts are Slurm's own (the ``gres/gpu`` it allocated), times are Slurm's start and
end, so ``sacct``/``sreport`` and the ledger agree. A run that ended in ``NODE_FAIL`` is recorded
as ``lost`` time (never charged), as the control plane does.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicc.catalog import Catalog, default_catalog
from aicc.errors import InvalidInput
from aicc.ledger.usage import LOST, USAGE, TypeFacts, insert_ignore, job_entry
from aicc.store.models import Job, JobEventRow, JobState

from .runner import SlurmRunner

_SINCE = re.compile(r"^(now(-\d+(seconds|minutes|hours|days|weeks)?)?"
                    r"|\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?)$")
_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
          "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REQUEUED"}


def check_since(since: str) -> None:
    """Refuse what ``sacct -S`` would refuse (or misread), naming ``since``: the syntax, then
    the calendar (``2030-13-45`` has the shape of a date but is none)."""
    ok = _SINCE.match(since) is not None
    if ok and since[:1].isdigit():
        try:
            datetime.fromisoformat(since)
        except ValueError:
            ok = False
    if not ok:
        raise InvalidInput(f"since {since!r} is not a sacct time (now, now-7days, 2030-01-31, "
                           "2030-01-31T08:00)", field="since")


@dataclass(frozen=True, slots=True)
class SlurmRun:
    """One ended run of an aicc job, as the Slurm accounting database has it."""

    job_id: int  # aicc id
    attempt: int
    slurm_job_id: int
    account: str
    state: str
    gpus: int
    start: float
    end: float


def read_runs(runner: SlurmRunner, *, prefix: str = "aicc", since: str = "now-30days"
              ) -> list[SlurmRun]:
    """Every ended run of a job named ``<prefix>-<id>`` since ``since`` (sacct's -S syntax)."""
    check_since(since)
    name_re = re.compile(rf"^{re.escape(prefix)}-(\d+)$")
    doc = runner.json(["sacct", "-a", "-D", "-S", since, "-E", "now"])
    by_job: dict[int, list[dict[str, Any]]] = {}
    for rec in doc.get("jobs") or []:
        m = name_re.match(str(rec.get("name") or ""))
        if m is None:
            continue
        tm = rec.get("time") or {}
        if not tm.get("start"):
            continue  # never ran (cancelled while held)
        by_job.setdefault(int(m.group(1)), []).append(rec)
    runs: list[SlurmRun] = []
    for jid, recs in by_job.items():
        recs.sort(key=lambda r: (int(r["time"]["start"]), int(r["job_id"])))
        for k, rec in enumerate(recs, start=1):
            state = str((rec.get("state") or {}).get("current") or "").split()[0]
            if state not in _ENDED or not rec["time"].get("end"):
                continue
            gpus = sum(int(t.get("count") or 0)
                       for t in (rec.get("tres") or {}).get("allocated") or []
                       if t.get("type") == "gres" and t.get("name") == "gpu")
            runs.append(SlurmRun(jid, k, int(rec["job_id"]), str(rec.get("account") or ""),
                                 state, gpus, float(rec["time"]["start"]),
                                 float(rec["time"]["end"])))
    return sorted(runs, key=lambda r: (r.end, r.job_id, r.attempt))


# Slurm starts a run at or after the control loop records its start; its times are whole
# seconds.
_START_SLACK_S = 1.0


def _start_grants(session: Session, ids: set[int]) -> dict[int, tuple[list[float],
                                                                       list[int | None]]]:
    """Per job, its recorded starts (``running`` events) in time order: (times, grants)."""
    out: dict[int, tuple[list[float], list[int | None]]] = {}
    for jid, at, grant in session.execute(
            select(JobEventRow.job_id, JobEventRow.time, JobEventRow.grant_id)
            .where(JobEventRow.job_id.in_(ids), JobEventRow.kind == JobState.RUNNING.value)
            .order_by(JobEventRow.job_id, JobEventRow.time, JobEventRow.id)).all():
        times, grants = out.setdefault(int(jid), ([], []))
        times.append(at.timestamp())
        grants.append(grant)
    return out


def _attempt_of(job: Job, starts: tuple[list[float], list[int | None]] | None,
                run: SlurmRun) -> tuple[int, int | None]:
    """The aicc attempt a Slurm run belongs to and the grant it is charged to.

    The attempt is the latest start the control loop recorded at or before the run's own: by
    time, not by Slurm's count of runs, which can differ (a start stopped while still queued
    in Slurm leaves no run; a run Slurm requeued by itself is two runs of one attempt), so that
    the import writes the event id the loop writes for the same run. Without a recorded start
    before it, Slurm's count. The grant is the job's when it named one, else that start's (the
    job's where the start names none: recorded before starts named their grant)."""
    if not starts:
        return run.attempt, job.grant_id
    times, grants = starts
    k = bisect.bisect_right(times, run.start + _START_SLACK_S)
    if k == 0:
        return run.attempt, job.grant_id
    grant = grants[k - 1]
    return k, (job.grant_id if job.grant_named or grant is None else grant)


def import_usage(session: Session, runs: list[SlurmRun], catalog: Catalog | None = None
                 ) -> int:
    """Write a ledger entry for every run not yet charged; returns how many were new.

    Runs of jobs the database does not know (another instance's prefix, a deleted job) are
    skipped.
    """
    catalog = catalog or default_catalog()
    if not runs:
        return 0
    ids = {r.job_id for r in runs}
    jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)))}
    started = _start_grants(session, ids)
    rows = []
    for r in runs:
        job = jobs.get(r.job_id)
        if job is None or r.gpus <= 0:
            continue
        t = catalog.get(job.accelerator_type)
        attempt, grant = _attempt_of(job, started.get(job.id), r)
        rows.append(job_entry(
            job_id=job.id, attempt=attempt, kind=LOST if r.state == "NODE_FAIL" else USAGE,
            project_id=job.project_id, grant_id=grant,
            accelerator_type=job.accelerator_type, accelerators=r.gpus,
            start=datetime.fromtimestamp(r.start, UTC), end=datetime.fromtimestamp(r.end, UTC),
            facts=TypeFacts(tdp_w=t.tdp_w, price_weight=t.price_weight)))
    return insert_ignore(session, rows)
