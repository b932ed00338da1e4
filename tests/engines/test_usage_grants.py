"""Which grant a run read back from the engine's accounting is charged to."""

from __future__ import annotations

from types import SimpleNamespace

from aicc.engines.slurm.usage import _run_grant


def _job(grant_id: int | None, named: bool) -> SimpleNamespace:
    return SimpleNamespace(grant_id=grant_id, grant_named=named)


def test_a_run_takes_the_grant_of_the_latest_start_recorded_before_it() -> None:
    # starts recorded at 100 (grant 1) and 500 (grant 2); the job names 2 now (its latest)
    starts = ([100.0, 500.0], [1, 2])
    job = _job(2, named=False)
    assert _run_grant(job, starts, 100.0) == 1
    assert _run_grant(job, starts, 499.5) == 2  # whole seconds: a start a moment before
    assert _run_grant(job, starts, 300.0) == 1
    assert _run_grant(job, starts, 900.0) == 2
    # a start the engine never ran (stopped while queued there) leaves no run: a run after it
    # is matched by time, not by count
    starts3 = ([100.0, 200.0, 500.0], [1, 3, 2])
    assert _run_grant(job, starts3, 520.0) == 2


def test_a_named_grant_or_an_unrecorded_start_falls_back_to_the_jobs_grant() -> None:
    assert _run_grant(_job(7, named=True), ([100.0], [1]), 150.0) == 7
    assert _run_grant(_job(7, named=False), None, 150.0) == 7
    assert _run_grant(_job(7, named=False), ([100.0], [None]), 150.0) == 7
    assert _run_grant(_job(7, named=False), ([100.0], [1]), 50.0) == 7  # before any start
