"""Entitlements, borrowing and the lending ledger (rules 1 and 2, docs/design/0001-scheduling.md).

All quantities are accelerators per (sector, type), except the ledger (accelerator-seconds per
lender–borrower pair of sectors)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aicc.scheduler.snapshot import JobTable, Tenancy


@dataclass
class Entitlements:
    """Per (sector, type) state of one cycle; the walk updates ``used``/``lendable``/``quota``."""

    cap: np.ndarray  # float64 [S, T] entitled accelerators
    used: np.ndarray  # float64 [S, T] accelerators in use by the sector's jobs
    lendable: np.ndarray  # float64 [S, T] still lendable by each sector
    pool: np.ndarray  # float64 [T] unentitled capacity still lendable
    quota: np.ndarray  # float64 [S, T] what each sector may still borrow in this cycle
    lent: np.ndarray  # float64 [S, T] lent by each sector to others' running jobs
    lend_cap: np.ndarray  # float64 [S, T] the most each sector lends (lend limit × entitled)


def sector_use(running: JobTable, project_sector: np.ndarray, n_sectors: int, n_types: int
               ) -> np.ndarray:
    """Accelerators in use per (sector, type) by the running table."""
    if len(running) == 0:
        return np.zeros((n_sectors, n_types))
    key = project_sector[running.project].astype(np.int64) * n_types + running.type_idx
    return np.bincount(key, weights=running.accelerators.astype(np.float64),
                       minlength=n_sectors * n_types).reshape(n_sectors, n_types)


def lent_out(running: JobTable, used: np.ndarray, cap: np.ndarray, type_cap: np.ndarray,
             project_sector: np.ndarray, lend_cap: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Accelerators currently lent by each sector [S, T] and by the pool [T].

    What a sector borrows is its use above its entitlement (its *excess*), whatever its jobs
    were told when they started: a job that borrowed part of its accelerators, or whose sector
    has since come back under its entitlement, lends no more than that. With a ``lender``
    column each borrowing sector's excess is first split among the lenders its jobs name, in
    proportion to their accelerators. What no named lender explains (all of it without the
    column) is charged to the pool, up to the pool's capacity, then to sectors in proportion
    to what they may still lend: their idle entitlement, within ``lend_cap`` (their lend limit ×
    entitlement, when given) (rule 2)."""
    n_s, n_t = cap.shape
    over = np.maximum(used - cap, 0.0)  # [S, T]
    excess = over.sum(axis=0)  # [T]
    idle = np.maximum(cap - used, 0.0)
    lent = np.zeros((n_s, n_t))
    if len(running) and len(running.lender) == len(running):
        has = running.lender >= 0
        b = project_sector[running.project[has]].astype(np.int64)
        key = (b * n_s + running.lender[has]) * n_t + running.type_idx[has]
        named = np.bincount(key, weights=running.accelerators[has].astype(np.float64),
                            minlength=n_s * n_s * n_t
                            ).astype(np.float64).reshape(n_s, n_s, n_t)  # [b, lender, t]
        tot = named.sum(axis=1)  # [b, t]
        scale = np.divide(over, tot, out=np.ones_like(tot), where=tot > over)
        lent = np.minimum((named * scale[:, None, :]).sum(axis=0), idle)
    rest = np.maximum(excess - lent.sum(axis=0), 0.0)
    from_pool = np.minimum(rest, np.maximum(type_cap - cap.sum(axis=0), 0.0))
    rest = rest - from_pool
    may = idle if lend_cap is None else np.minimum(idle, lend_cap)
    room = np.maximum(may - lent, 0.0)
    room_tot = room.sum(axis=0)
    frac = np.divide(room, room_tot, out=np.zeros_like(room), where=room_tot > 0)
    return lent + np.minimum(frac * rest, room), from_pool


def water_fill(total: np.ndarray, weight: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Split ``total[t]`` among rows in proportion to ``weight[s, t]``, capped by
    ``demand[s, t]``, handing what capped rows leave to the others (rule 2).

    On Python floats: the matrix is sectors × types, a few dozen numbers at most, where each
    numpy call would cost more than the arithmetic. Rounds go on while some row wants more and
    some column has capacity left, over all columns together."""
    d = np.asarray(demand, dtype=np.float64)
    n_s, n_t = d.shape
    dem = d.T.tolist()  # per type, per sector
    wt = np.maximum(np.asarray(weight, dtype=np.float64), 0.0).T.tolist()
    left = np.asarray(total, dtype=np.float64).tolist()
    out = [[0.0] * n_s for _ in range(n_t)]
    active = [[x > 0 for x in col] for col in dem]
    for _ in range(n_s + 1):
        for t in range(n_t):
            act, dt, ot = active[t], dem[t], out[t]
            if not any(act):  # nothing to give in this column (its share would be 0)
                continue
            w = [wt[t][s] if act[s] else 0.0 for s in range(n_s)]
            if sum(w) == 0:  # sectors entitled to nothing of a type still borrow, equally
                w = [1.0 if act[s] else 0.0 for s in range(n_s)]
            wsum = sum(w)
            lt = left[t]
            gave = 0.0
            for s in range(n_s):
                share = w[s] * lt / wsum if wsum > 0 else 0.0
                give = min(share, dt[s] - ot[s])
                ot[s] += give
                gave += give
                act[s] = act[s] and dt[s] - ot[s] > 1e-9
            left[t] = lt - gave
        if not (any(any(a) for a in active) and any(x > 1e-9 for x in left)):
            break
    return np.array(out, dtype=np.float64).T.reshape(n_s, n_t)


def entitlements(tenancy: Tenancy, running: JobTable, type_cap: np.ndarray,
                 pending_demand: np.ndarray) -> Entitlements:
    """Rule 1 and 2: entitled capacity, use, what each sector may lend and borrow this cycle.

    ``pending_demand[s, t]`` is the accelerators asked by the sector's eligible pending jobs."""
    ent = np.asarray(tenancy.entitlement, dtype=np.float64)
    n_s, n_t = ent.shape
    cap = ent * type_cap[None, :]
    used = sector_use(running, tenancy.project_sector, n_s, n_t)
    limit = (np.ones(n_s) if tenancy.lend_limit is None
             else np.clip(np.asarray(tenancy.lend_limit, dtype=np.float64), 0.0, 1.0))
    lend_cap = limit[:, None] * cap
    lent, pool_lent = lent_out(running, used, cap, type_cap, tenancy.project_sector, lend_cap)
    idle = np.maximum(cap - used, 0.0)
    lendable = np.maximum(np.minimum(idle, lend_cap) - lent, 0.0)
    pool = np.maximum(np.maximum(type_cap - cap.sum(axis=0), 0.0) - pool_lent, 0.0)
    want = np.maximum(pending_demand - np.maximum(cap - used, 0.0), 0.0)
    quota = water_fill(pool + lendable.sum(axis=0), cap, want)
    return Entitlements(cap=cap, used=used, lendable=lendable, pool=pool, quota=quota,
                        lent=lent, lend_cap=lend_cap)


def borrowed_rows(running: JobTable, project_sector: np.ndarray, cap: np.ndarray,
                  used: np.ndarray) -> np.ndarray:
    """Bool per running row: does it run on borrowed capacity? (rule 2)

    The youngest jobs of each over-entitled (sector, type), up to its excess over its
    entitlement; with a ``lender`` column, only among the jobs that name a lender (a job whose
    sector has since come back under its entitlement borrows nothing any more)."""
    n = len(running)
    if n == 0:
        return np.zeros(0, dtype=bool)
    sec = project_sector[running.project].astype(np.int64)
    t = running.type_idx.astype(np.int64)
    excess = np.maximum(used - cap, 0.0)[sec, t]
    acc = running.accelerators.astype(np.float64)
    if len(running.lender) == n:  # jobs that name no lender neither count nor are counted
        acc = np.where(running.lender >= 0, acc, 0.0)
    order = np.lexsort((-running.start_time, t, sec))  # group, then youngest first
    key = (sec * cap.shape[1] + t)[order]
    cum = np.cumsum(acc[order])
    starts = np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1]
    base = np.repeat(np.r_[0.0, cum][starts], np.diff(np.r_[starts, n]))
    before = cum - acc[order] - base  # accelerators of younger jobs in the same group
    out = np.zeros(n, dtype=bool)
    out[order] = (before < excess[order] - 1e-9) & (acc[order] > 0)
    return out


def accumulate_lending(balance_s: np.ndarray | None, running: JobTable, tenancy: Tenancy,
                       elapsed_s: float) -> np.ndarray:
    """The lending ledger after ``elapsed_s`` more seconds of the running table (rule 2):
    ``balance[l, b]`` grows by accelerators × seconds of every job of sector ``b`` that runs
    on capacity lent by sector ``l`` (the ``lender`` column). Returns a new array."""
    n_s = len(tenancy.sector_names)
    out = (np.zeros((n_s, n_s)) if balance_s is None
           else np.array(balance_s, dtype=np.float64, copy=True))
    if elapsed_s < 0:
        raise ValueError("elapsed_s must not be negative")
    if len(running) == 0 or len(running.lender) != len(running):
        return out
    has = running.lender >= 0
    b = tenancy.project_sector[running.project[has]].astype(np.int64)
    lender = running.lender[has].astype(np.int64)
    np.add.at(out, (lender, b), running.accelerators[has] * float(elapsed_s))
    return out


def owed_factor(balance_s: np.ndarray | None, n_sectors: int, scale_s: float) -> np.ndarray:
    """Per sector in [0, 1): net accelerator-seconds others owe it, ``x / (x + scale)``."""
    if balance_s is None:
        return np.zeros(n_sectors)
    bal = np.asarray(balance_s, dtype=np.float64)
    net = np.maximum(bal.sum(axis=1) - bal.sum(axis=0), 0.0)
    return net / (net + scale_s)
