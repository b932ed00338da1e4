"""Entitlements, borrowing and the lending ledger (rules 1 and 2, docs/design/0001-scheduling.md).

All quantities are accelerators per (sector, type), except the ledger (accelerator-seconds per
lender–borrower pair of sectors)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aicc.scheduler.fairshare import decay_usage
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
    named: list[list[list[float]]] | None  # [b][l][t] running accelerators naming lender l
    loans: list[list[float]]  # [l][b] lent by sector l to sector b now, all types


def sector_use(running: JobTable, project_sector: np.ndarray, n_sectors: int, n_types: int
               ) -> np.ndarray:
    """Accelerators in use per (sector, type) by the running table."""
    if len(running) == 0:
        return np.zeros((n_sectors, n_types))
    key = project_sector[running.project].astype(np.int64) * n_types + running.type_idx
    return np.bincount(key, weights=running.accelerators.astype(np.float64),
                       minlength=n_sectors * n_types).reshape(n_sectors, n_types)


def named_loans(running: JobTable, project_sector: np.ndarray, n_sectors: int, n_types: int
                ) -> np.ndarray | None:
    """Accelerators of the running jobs per (borrower sector, lender it names, type),
    [S, S, T]; None when the running table has no ``lender`` column (lenders unknown)."""
    n = len(running)
    if n == 0:
        return np.zeros((n_sectors, n_sectors, n_types))
    if len(running.lender) != n:
        return None
    has = running.lender >= 0
    b = project_sector[running.project[has]].astype(np.int64)
    key = (b * n_sectors + running.lender[has]) * n_types + running.type_idx[has]
    return np.bincount(key, weights=running.accelerators[has].astype(np.float64),
                       minlength=n_sectors * n_sectors * n_types
                       ).reshape(n_sectors, n_sectors, n_types)


@dataclass(frozen=True)
class Loans:
    """What is lent now (rule 2), from :func:`split_loans`, as Python lists."""

    lent: list[list[float]]  # [S][T] lent by each sector, to all borrowers
    pool: list[float]  # [T] lent by the unentitled pool
    pairs: list[list[float]]  # [S][S] lent by sector l (row) to sector b (column), all types


def split_loans(named: list[list[list[float]]] | None, used: list[list[float]],
                cap: list[list[float]], type_cap: list[float],
                lend_cap: list[list[float]] | None = None) -> Loans:
    """Who lends what now (rule 2), per lender and per lender–borrower pair.

    What a sector borrows is its use above its entitlement (its *excess*), whatever its jobs
    were told when they started: a job that borrowed part of its accelerators, or whose sector
    has since come back under its entitlement, lends no more than that. With ``named`` (the
    accelerators of each borrower's running jobs per lender they name, ``[b][l][t]``) each
    borrowing sector's excess is first split among those lenders in proportion to their
    accelerators, each lender lending at most its idle entitlement (shared among its borrowers
    in proportion to what they asked). What no named lender explains (all of it when ``named``
    is None) is charged to the pool, up to the pool's capacity, then to sectors in proportion
    to what they may still lend: their idle entitlement, within ``lend_cap`` (their lend
    limit × entitlement, when given). That remainder is shared among the borrowers in
    proportion to what they left unexplained; the pool's part is owed to no sector.

    The scheduler calls it at the start of a cycle on the running table (:func:`named_loans`)
    and after the cycle's starts on the same matrices updated, so it runs on Python floats:
    the matrices are sectors × types, where each numpy call would cost more than the
    arithmetic. Types where no sector is above its entitlement lend nothing and are skipped."""
    n_s, n_t = len(cap), len(type_cap)
    sectors = range(n_s)
    lent = [[0.0] * n_t for _ in sectors]
    pool = [0.0] * n_t
    pairs = [[0.0] * n_s for _ in sectors]
    for t in range(n_t):
        over = [0.0] * n_s
        idle = [0.0] * n_s
        for s in sectors:
            d = used[s][t] - cap[s][t]
            if d > 0:
                over[s] = d
            else:
                idle[s] = -d if d < 0 else 0.0
        if not any(over):
            continue
        unexplained = over[:]
        lent_t = [0.0] * n_s
        if named is not None:
            asked = [[0.0] * n_s for _ in sectors]  # [b][l]
            want = [0.0] * n_s
            for b in sectors:
                ob = over[b]
                if ob == 0.0:  # a sector within its entitlement borrows nothing
                    continue
                nb = [named[b][x][t] for x in sectors]
                tot = sum(nb)
                scale = ob / tot if tot > ob else 1.0
                ab = asked[b]
                for x in sectors:
                    ab[x] = v = nb[x] * scale
                    want[x] += v
            for x in sectors:
                w, i = want[x], idle[x]
                got = w if w < i else i
                lent_t[x] = got
                if got == 0.0:
                    continue
                f = got / w if w > got else 1.0  # lent less than asked: shared by the borrowers
                row = pairs[x]
                for b in sectors:
                    v = asked[b][x] * f
                    row[b] += v
                    unexplained[b] -= v
        rest = sum(over) - sum(lent_t)
        if rest > 0:
            free = type_cap[t] - sum(cap[s][t] for s in sectors)
            from_pool = rest if rest < free else (free if free > 0 else 0.0)
            pool[t] = from_pool
            room = [0.0] * n_s
            for s in sectors:
                may = idle[s] if lend_cap is None else min(idle[s], lend_cap[s][t])
                r = may - lent_t[s]
                room[s] = r if r > 0 else 0.0
            room_tot = sum(room)
            left = rest - from_pool
            for x in sectors:
                rx = room[x]
                if room_tot <= 0 or rx == 0.0:
                    continue
                give = min(rx / room_tot * left, rx)
                lent_t[x] += give
                if give > 0:
                    row = pairs[x]
                    for b in sectors:
                        u = unexplained[b]
                        if u > 0:
                            row[b] += u / rest * give
        for s in sectors:
            lent[s][t] = lent_t[s]
    return Loans(lent=lent, pool=pool, pairs=pairs)


def lent_out(running: JobTable, used: np.ndarray, cap: np.ndarray, type_cap: np.ndarray,
             project_sector: np.ndarray, lend_cap: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Accelerators currently lent by each sector [S, T] and by the pool [T]: the split of
    :func:`split_loans` on the running table (rule 2)."""
    n_s, n_t = cap.shape
    named = named_loans(running, project_sector, n_s, n_t)
    got = split_loans(None if named is None else named.tolist(), used.tolist(), cap.tolist(),
                      type_cap.tolist(), None if lend_cap is None else lend_cap.tolist())
    return np.array(got.lent).reshape(n_s, n_t), np.array(got.pool)


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


def entitled(tenancy: Tenancy, type_cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entitled accelerators per (sector, type) for ``type_cap`` in service (rule 1), and the
    most each sector lends of them (its lend limit × entitlement, rule 2)."""
    ent = np.asarray(tenancy.entitlement, dtype=np.float64)
    cap = ent * type_cap[None, :]
    limit = (np.ones(len(ent)) if tenancy.lend_limit is None
             else np.clip(np.asarray(tenancy.lend_limit, dtype=np.float64), 0.0, 1.0))
    return cap, limit[:, None] * cap


def entitlements(tenancy: Tenancy, running: JobTable, type_cap: np.ndarray,
                 pending_demand: np.ndarray) -> Entitlements:
    """Rule 1 and 2: entitled capacity, use, what each sector may lend and borrow this cycle.

    ``pending_demand[s, t]`` is the accelerators asked by the sector's eligible pending jobs."""
    cap, lend_cap = entitled(tenancy, type_cap)
    n_s, n_t = cap.shape
    used = sector_use(running, tenancy.project_sector, n_s, n_t)
    named = named_loans(running, tenancy.project_sector, n_s, n_t)
    now = split_loans(None if named is None else named.tolist(), used.tolist(), cap.tolist(),
                      type_cap.tolist(), lend_cap.tolist())
    lent, pool_lent = np.array(now.lent).reshape(n_s, n_t), np.array(now.pool)
    idle = np.maximum(cap - used, 0.0)
    lendable = np.maximum(np.minimum(idle, lend_cap) - lent, 0.0)
    pool = np.maximum(np.maximum(type_cap - cap.sum(axis=0), 0.0) - pool_lent, 0.0)
    want = np.maximum(pending_demand - np.maximum(cap - used, 0.0), 0.0)
    quota = water_fill(pool + lendable.sum(axis=0), cap, want)
    return Entitlements(cap=cap, used=used, lendable=lendable, pool=pool, quota=quota,
                        lent=lent, lend_cap=lend_cap,
                        named=None if named is None else named.tolist(), loans=now.pairs)


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


def accumulate_lending(balance_s: np.ndarray | None, loans: np.ndarray | None,
                       elapsed_s: float, half_life_s: float) -> np.ndarray:
    """The lending balance ``elapsed_s`` later, while ``loans`` hold (rule 2).

    ``balance[l, b]`` is the accelerator-seconds sector ``l`` has lent to sector ``b``, decayed
    with the fair-share usage half-life (:func:`~aicc.scheduler.fairshare.decay_usage`, rule 3)
    so that a loan repaid long ago does not weigh for ever; ``loans[l, b]`` the accelerators lent
    now (:attr:`Decisions.loans`). The balance decays over the interval and the loans add their
    accelerators × seconds, each second decayed by its age as well: ``loans × elapsed`` while
    ``elapsed`` is small beside the half-life, and exactly the same balance whether an interval
    of constant loans is added in one step or in many (the service rolls it forward only when
    the loans change). Returns a new array."""
    if elapsed_s < 0:
        raise ValueError("elapsed_s must not be negative")
    keep = float(decay_usage(1.0, elapsed_s, half_life_s))
    # ∫ 2^(−(elapsed − τ)/h) dτ over the interval: accelerator-seconds per accelerator lent
    gain = -math.expm1(-elapsed_s * math.log(2.0) / half_life_s) * half_life_s / math.log(2.0)
    if balance_s is None:
        return (np.zeros(np.shape(loans)) if loans is None
                else np.asarray(loans, dtype=np.float64) * gain)
    out = np.asarray(balance_s, dtype=np.float64) * keep
    if loans is not None:
        out += np.asarray(loans, dtype=np.float64) * gain
    return out


def owed_factor(balance_s: np.ndarray | None, n_sectors: int, scale_s: float) -> np.ndarray:
    """Per sector in [0, 1): net accelerator-seconds others owe it, ``x / (x + scale)``."""
    if balance_s is None:
        return np.zeros(n_sectors)
    bal = np.asarray(balance_s, dtype=np.float64)
    net = np.maximum(bal.sum(axis=1) - bal.sum(axis=0), 0.0)
    return net / (net + scale_s)
