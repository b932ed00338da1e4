"""The scheduling cycle (first-fit placeholder)."""

from __future__ import annotations

import numpy as np

from aicc.scheduler.policy import Policy, resolve
from aicc.scheduler.snapshot import Decisions, HoldReason, Snapshot, Start


def schedule(snapshot: Snapshot, policy: Policy | str = "fairshare") -> Decisions:
    resolve(policy)
    pend = snapshot.pending
    fleet = snapshot.fleet
    free = snapshot.free.astype(np.int32).copy()
    reason = np.full(len(pend), HoldReason.RESOURCES, dtype=np.int8)
    starts: list[Start] = []
    order = np.lexsort((pend.id, pend.submit_time))
    for r in order.tolist():
        t, n, k = int(pend.type_idx[r]), int(pend.nodes[r]), int(pend.per_node[r])
        of_type = fleet.type_idx == t
        if n > 1:
            cand = np.flatnonzero(of_type & (free == fleet.capacity) & (free >= k))
            if len(cand) < n:
                continue
            pick = cand[:n]
        else:
            cand = np.flatnonzero(of_type & (free >= k))
            if len(cand) == 0:
                continue
            pick = cand[:1]
        free[pick] -= k
        starts.append(Start(int(pend.id[r]), tuple((int(p), k) for p in pick)))
        reason[r] = HoldReason.NONE
    return Decisions(starts=starts, preempts=[], reason=reason, considered=len(pend))
