"""The live control plane follows ``scheduler.sector_queueing`` (rule 1) for a named policy."""

from __future__ import annotations

from aicc.config import SchedulerConfig
from aicc.scheduler import Policy

from .conftest import Center


def test_a_named_policy_follows_the_configured_sector_queueing(center: Center) -> None:
    assert center.control_plane(policy="fairshare").policy.sector_queueing == "best_effort"
    center.settings = center.settings.model_copy(
        update={"scheduler": SchedulerConfig(sector_queueing="strict")})
    cp = center.control_plane(policy="fairshare")
    assert cp.policy.sector_queueing == "strict" and cp.policy.name == "fairshare"
    given = Policy(sector_queueing="best_effort")  # a Policy object is taken as given
    assert center.control_plane(policy=given).policy is given
