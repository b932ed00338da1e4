"""The engine port: an engine applies the scheduler's decisions and reports what really happened.

``twin`` (the built-in digital-twin fleet) and ``slurm`` implement it; one contract test suite
(``tests/engines/contract.py``) runs against every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from aicc.fleet.arrays import FleetArrays


class EventKind(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    PREEMPTED = "preempted"
    CANCELLED = "cancelled"
    NODE_DOWN = "node_down"
    NODE_UP = "node_up"


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What an engine needs to run one job (beyond where to run it)."""

    job_id: int
    project: str
    accelerator_type: str
    nodes: int
    per_node: int
    time_limit_s: float
    preemptible: bool = False
    # The digital twin runs the job for this long (from the workload), else its time limit.
    runtime_s: float | None = None
    # Real engines run this (a shell script or command); None = a placeholder sleep.
    script: str | None = None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class StartOrder:
    spec: LaunchSpec
    nodes: tuple[str, ...]  # node names
    per_node: tuple[int, ...]  # accelerators on each


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Something that happened to a job (or a node), with the engine's timestamp."""

    kind: EventKind
    time: float
    job_id: int | None = None
    node: str | None = None
    reason: str = ""
    # Accelerator-seconds lost to a failure (not charged), when the engine knows it.
    lost_s: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """An engine's view of a job it is running (for reconciliation after a restart)."""

    job_id: int
    nodes: tuple[str, ...]
    start_time: float


@runtime_checkable
class Engine(Protocol):
    name: str
    # How finely the engine's event times are given: Slurm reports whole seconds, so a job
    # started in the second of its decision reports a start up to this much before it.
    time_resolution_s: float

    def fleet(self) -> FleetArrays:
        """The nodes this engine runs on, with their current state."""
        ...

    def start(self, orders: Sequence[StartOrder], now: float) -> None:
        """Start jobs on the given nodes; the outcome is reported by :meth:`poll`."""
        ...

    def preempt(self, job_ids: Sequence[int], now: float, reason: str = "") -> None: ...

    def cancel(self, job_ids: Sequence[int], now: float) -> None: ...

    def poll(self, now: float) -> list[JobEvent]:
        """Events since the last poll, in time order."""
        ...

    def running(self) -> list[RunningJob]:
        """Jobs this engine believes are running now."""
        ...

    def close(self) -> None: ...
