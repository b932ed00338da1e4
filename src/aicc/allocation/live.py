"""Which grant a job submitted without one is charged to: its project's live grant for its type.

Pure arrays, no store: the live service resolves its queue with it every cycle
(``service/snapshot.py``), and the simulator its forked queue every simulated cycle, so that a
grant that begins later is found when it begins, in the forecast as in the service.
"""

from __future__ import annotations

import numpy as np

from aicc.scheduler.snapshot import Grants


def live_grants(project: np.ndarray, type_idx: np.ndarray, grants: Grants, now: float
                ) -> np.ndarray:
    """Per job, the index of its project's grant for its type live at ``now`` (one with
    balance left first, then the one that ends first), or -1 where there is none."""
    out = np.full(len(project), -1, dtype=np.int32)
    n_g = len(grants.total_s)
    if not len(project) or not n_g:
        return out
    live = np.flatnonzero((grants.start <= now) & (now < grants.end) & (grants.project >= 0)
                          & (grants.type_idx >= 0))
    if not len(live):
        return out
    n_types = int(max(grants.type_idx.max(), type_idx.max())) + 1
    key = grants.project[live].astype(np.int64) * n_types + grants.type_idx[live]
    spent = grants.used_s[live] >= grants.total_s[live]
    order = np.lexsort((grants.end[live], spent, key))  # by key, then balance, then end
    key, best = key[order], live[order]
    first = np.r_[True, key[1:] != key[:-1]]
    key, best = key[first], best[first]
    want = project.astype(np.int64) * n_types + type_idx
    pos = np.searchsorted(key, want).clip(0, len(key) - 1)
    hit = (key[pos] == want) & (project >= 0)
    out[hit] = best[pos[hit]]
    return out
