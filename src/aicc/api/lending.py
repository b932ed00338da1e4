"""``GET /v1/lending``: what each sector has lent each other one (scheduler rule 2).

Read-only: the balance the control plane keeps in the store (``lending_balances``), brought to
now on the center's clock, decayed with the live policy's fair-share half-life. The balance
owed to a lender raises its jobs' priority (docs/design/0001-scheduling.md, rule 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from sqlalchemy import select

from aicc.api.auth import CurrentPrincipal
from aicc.api.deps import center_now, tx
from aicc.scheduler.policy import resolve
from aicc.service.snapshot import read_lending
from aicc.store.models import Sector
from aicc.workload.jobs import iso_time

router = APIRouter(prefix="/v1", tags=["lending"])


@router.get("/lending")
def get_lending(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Accelerator-hours lent per lender–borrower pair and, per sector, lent, borrowed and the
    net owed to it (negative: it owes others), with the accelerators lent now. Every
    authenticated caller sees it, as it sees the sectors' entitlements."""
    policy = (getattr(request.app.state.control_plane, "policy", None)
              or resolve(request.app.state.settings.scheduler.policy))
    at = center_now(request)
    with tx(request) as s:
        sectors = s.execute(select(Sector.id, Sector.name).order_by(Sector.id)).all()
        ids = np.array([r[0] for r in sectors], dtype=np.int64)
        lending = read_lending(s, ids, at.timestamp(), policy.usage_half_life_s)
    names = [r[1] for r in sectors]
    bal_h, loans = lending.balance_s / 3600.0, lending.loans
    pairs = [{"lender": names[i], "borrower": names[j],
              "accelerator_hours": float(bal_h[i, j]), "accelerators_now": float(loans[i, j])}
             for i, j in zip(*np.nonzero((bal_h > 0) | (loans > 0)), strict=True)]
    lent, borrowed = bal_h.sum(axis=1), bal_h.sum(axis=0)
    return {
        "at": iso_time(at),
        "half_life_s": policy.usage_half_life_s,
        "pairs": pairs,
        "sectors": [{"sector": name, "lent_accelerator_hours": float(lent[k]),
                     "borrowed_accelerator_hours": float(borrowed[k]),
                     "owed_accelerator_hours": float(lent[k] - borrowed[k]),
                     "lent_now": float(loans[k].sum()), "borrowed_now": float(loans[:, k].sum())}
                    for k, name in enumerate(names)],
    }
