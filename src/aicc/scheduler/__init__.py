"""The pure policy core: fair-share tree, grant pacing, ordering, placement, backfill,
preemption, power cap. Rules: docs/design/0001-scheduling.md."""

from aicc.scheduler.cycle import schedule
from aicc.scheduler.fairshare import decay_usage
from aicc.scheduler.policy import POLICIES, Policy
from aicc.scheduler.snapshot import (
    Decisions,
    HoldReason,
    JobClass,
    JobSpec,
    JobTable,
    Preempt,
    Snapshot,
    Start,
    explain,
)

__all__ = [
    "POLICIES",
    "Decisions",
    "HoldReason",
    "JobClass",
    "JobSpec",
    "JobTable",
    "Policy",
    "Preempt",
    "Snapshot",
    "Start",
    "decay_usage",
    "explain",
    "schedule",
]
