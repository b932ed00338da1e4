"""The pure policy core: fair-share tree, grant pacing, ordering, placement, backfill,
preemption, power cap. Rules: docs/design/0001-scheduling.md."""

from aicc.scheduler.cycle import schedule
from aicc.scheduler.fairshare import decay_usage
from aicc.scheduler.lending import accumulate_lending
from aicc.scheduler.placement import fragmentation
from aicc.scheduler.policy import POLICIES, Policy
from aicc.scheduler.snapshot import (
    Decisions,
    HoldReason,
    JobClass,
    JobSpec,
    JobTable,
    Preempt,
    Reservation,
    Snapshot,
    Start,
    explain,
    hold_messages,
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
    "Reservation",
    "Snapshot",
    "Start",
    "accumulate_lending",
    "decay_usage",
    "explain",
    "fragmentation",
    "hold_messages",
    "schedule",
]
