"""Which aicc attempt a run read back from the engine's accounting belongs to, and which grant
it is charged to."""

from __future__ import annotations

from types import SimpleNamespace

from aicc.engines.slurm.usage import SlurmRun, _attempt_of


def _job(grant_id: int | None, named: bool) -> SimpleNamespace:
    return SimpleNamespace(grant_id=grant_id, grant_named=named)


def _run(start: float, slurm_count: int = 1) -> SlurmRun:
    return SlurmRun(1, slurm_count, 100, "acct", "COMPLETED", 8, start, start + 60.0)


def test_a_run_belongs_to_the_latest_start_recorded_before_it() -> None:
    # starts recorded at 100 (grant 1) and 500 (grant 2); the job names 2 now (its latest)
    starts = ([100.0, 500.0], [1, 2])
    job = _job(2, named=False)
    assert _attempt_of(job, starts, _run(100.0)) == (1, 1)
    assert _attempt_of(job, starts, _run(499.5, 2)) == (2, 2)  # whole seconds: just before
    assert _attempt_of(job, starts, _run(300.0)) == (1, 1)
    assert _attempt_of(job, starts, _run(900.0, 2)) == (2, 2)


def test_a_start_that_left_no_run_does_not_shift_the_numbering() -> None:
    # the second start (200) was stopped while still queued in the engine: the engine's first
    # run is that job's first, its second run the third attempt, which the loop numbers 3
    starts = ([100.0, 200.0, 500.0], [1, 3, 2])
    job = _job(2, named=False)
    assert _attempt_of(job, starts, _run(101.0, 1)) == (1, 1)
    assert _attempt_of(job, starts, _run(520.0, 2)) == (3, 2)
    # a run the engine requeued by itself is a second run of the same attempt: the same id
    assert _attempt_of(job, starts, _run(130.0, 2)) == (1, 1)


def test_a_named_grant_or_an_unrecorded_start_falls_back_to_the_job() -> None:
    assert _attempt_of(_job(7, named=True), ([100.0], [1]), _run(150.0)) == (1, 7)
    assert _attempt_of(_job(7, named=False), None, _run(150.0, 2)) == (2, 7)
    assert _attempt_of(_job(7, named=False), ([100.0], [None]), _run(150.0)) == (1, 7)
    assert _attempt_of(_job(7, named=False), ([100.0], [1]), _run(50.0, 1)) == (1, 7)
