"""Scheduling policy: every number the cycle uses, with its documented default.

The rules these numbers tune are written in docs/design/0001-scheduling.md; each field names the
rule it belongs to. Three presets exist (:data:`POLICIES`): ``fifo`` and ``multifactor`` are the
baselines of rule 10, ``fairshare`` is the center's policy.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aicc.errors import ConfigError

POLICIES = frozenset({"fifo", "multifactor", "fairshare"})

Ordering = Literal["fifo", "multifactor", "fairshare"]


class Policy(BaseModel):
    """One validated, immutable policy configuration (defaults are the center's policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Ordering = "fairshare"
    # rule 1/2: entitlement tiers and borrowing (fairshare only)
    entitlements: bool = True
    # rule 1: whether a sector's jobs may pass its first job that does not fit its room
    sector_queueing: Literal["best_effort", "strict"] = "best_effort"
    # rule 3: fair share with usage decay
    usage_half_life_s: float = Field(7 * 86400.0, gt=0)  # callers decay usage with this
    # weights of the priority score (rules 3, 4, 2, 10); each factor lies in [0, 1]
    weight_fairshare: float = Field(10_000.0, ge=0)
    weight_pacing: float = Field(5_000.0, ge=0)  # rule 4
    weight_lending: float = Field(2_000.0, ge=0)  # rule 2: repay lenders through priority
    weight_age: float = Field(1_000.0, ge=0)
    weight_size: float = Field(500.0, ge=0)  # multifactor: larger jobs favoured (Slurm default)
    weight_qos: float = Field(2_000.0, ge=0)  # multifactor: QOS by class
    age_max_s: float = Field(7 * 86400.0, gt=0)  # age factor saturates here (Slurm PriorityMaxAge)
    lending_scale_s: float = Field(3600.0 * 8 * 1000, gt=0)  # owed acc-s giving factor 0.5
    # rule 4: grant pacing
    require_grant: bool = False  # hold jobs without a grant (NO_GRANT)
    # rule 5: classes
    interactive_max_accelerators: int = Field(8, ge=1)
    interactive_max_time_s: float = Field(4 * 3600.0, gt=0)
    # rule 7: backfill
    backfill: bool = True
    reservations_per_type: int = Field(4, ge=0)  # blocked jobs per type that reserve capacity
    # rule 8: preemption
    preemption: bool = True
    min_runtime_s: float = Field(600.0, ge=0)  # a job is never preempted before this
    grace_s: float = Field(300.0, ge=0)  # time to checkpoint after the preemption notice
    # rule 9: power cap
    power_cap: bool = True

    @property
    def lends(self) -> bool:
        """Whether the cycle applies entitlements and lending (rules 1 and 2): the center's
        ordering with entitlements on; the baselines of rule 10 do not."""
        return self.name == "fairshare" and self.entitlements

    @classmethod
    def preset(cls, name: str) -> Policy:
        """The named preset; raises ConfigError naming the field for an unknown name."""
        if name not in POLICIES:
            raise ConfigError(
                f"unknown scheduling policy {name!r}; known: {', '.join(sorted(POLICIES))}",
                field="policy",
            )
        if name == "fifo":
            return cls(name="fifo", entitlements=False, backfill=False, preemption=False)
        if name == "multifactor":
            return cls(name="multifactor", entitlements=False, preemption=False)
        return cls()


@cache
def _preset(name: str) -> Policy:
    return Policy.preset(name)


def resolve(policy: Policy | str) -> Policy:
    """A policy from a preset name (built once: policies are immutable) or itself."""
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, str) or policy not in POLICIES:
        return Policy.preset(str(policy))  # raises ConfigError naming the field
    return _preset(policy)
