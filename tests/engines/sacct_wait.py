"""slurmdbd records a job's end a moment after slurmctld knows it, longer on a loaded machine;
tests that read ``sacct`` wait for the record rather than racing it."""

from __future__ import annotations

import time

from aicc.engines.slurm.runner import SlurmRunner
from aicc.engines.slurm.usage import SlurmRun, read_runs


def wait_for_runs(runner: SlurmRunner, prefix: str, *, count: int = 1,
                  timeout_s: float = 60.0) -> list[SlurmRun]:
    """The ended runs of jobs named ``<prefix>-*`` once ``count`` of them are in the database."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = read_runs(runner, prefix=prefix)
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)
