"""Fair share with usage decay across sector → organization → project (rule 3 of
docs/design/0001-scheduling.md), and grant pacing (rule 4)."""

from __future__ import annotations

import numpy as np


def decay_usage(usage_s: np.ndarray | float, elapsed_s: float, half_life_s: float
                ) -> np.ndarray | float:
    """Usage after ``elapsed_s`` of exponential decay with ``half_life_s`` (rule 3).

    Callers keep decayed usage per project and call this between cycles, adding what ran."""
    if half_life_s <= 0:
        raise ValueError("half_life_s must be positive")
    if elapsed_s < 0:
        raise ValueError("elapsed_s must not be negative")
    return usage_s * 0.5 ** (elapsed_s / half_life_s)
