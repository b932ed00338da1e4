"""The scheduling cycle as a short pipeline; rules in docs/design/0001-scheduling.md.

    1. prepare  — capacity in service, busy accelerators, entitlements, power draw
    2. screen   — typed holds decided without placement (shape, grant)
    3. order    — vectorised priority, one argsort
    4. walk     — tier A (within entitlement) then tier B: borrow, power, place, reserve, backfill
    5. preempt  — reclaim capacity lent by tenants below entitlement
    6. report   — decisions and statistics

Each step is a function returning data; only ``walk`` and ``preempt`` loop over jobs in Python,
and ``walk`` only over jobs that can still fit the free capacity of the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aicc.fleet.arrays import NODE_DOWN, NODE_UP
from aicc.scheduler.fairshare import (
    fair_tree_factor,
    flat_fairshare_factor,
    pacing_factor,
    sector_shares,
)
from aicc.scheduler.lending import Entitlements, borrowed_rows, entitlements, owed_factor
from aicc.scheduler.placement import INF, FreeState, fragmentation
from aicc.scheduler.policy import Policy, resolve
from aicc.scheduler.snapshot import (
    Decisions,
    HoldReason,
    JobClass,
    Preempt,
    Reservation,
    Snapshot,
    Start,
)

R = HoldReason
_TIER = 1e12  # order key offset between tiers and classes (scores stay far below it)


# 1. prepare ----------------------------------------------------------------------------------
@dataclass
class Prepared:
    type_cap: np.ndarray  # in-service accelerators per type
    type_maxcap: np.ndarray  # largest in-service node per type
    type_nodes: np.ndarray  # in-service nodes per type
    busy: np.ndarray  # allocated accelerators per node (running table)
    delta_w: np.ndarray  # watts added per started accelerator, per type (TDP − idle)
    power_w: float  # fleet draw now (rule 9)
    project_sector: np.ndarray


def prepare(snap: Snapshot) -> Prepared:
    fleet = snap.fleet
    n_t = len(fleet.catalog)
    up = fleet.state == NODE_UP
    cap = fleet.capacity.astype(np.int64)
    type_cap = np.bincount(fleet.type_idx[up], weights=cap[up], minlength=n_t)
    type_nodes = np.bincount(fleet.type_idx[up], minlength=n_t)
    type_maxcap = np.zeros(n_t, dtype=np.int64)
    np.maximum.at(type_maxcap, fleet.type_idx[up], cap[up])
    run = snap.running
    busy = (np.bincount(run.alloc_node, weights=run.alloc_count, minlength=fleet.n_nodes)
            if len(run.alloc_node) else np.zeros(fleet.n_nodes))
    tdp = np.array([t.tdp_w for t in fleet.catalog])
    idle = np.array([t.idle_w for t in fleet.catalog])
    live = fleet.state != NODE_DOWN
    b = np.minimum(busy, cap)
    ti = fleet.type_idx
    power = float((b * tdp[ti] + (cap - b) * idle[ti])[live].sum())
    return Prepared(type_cap=type_cap.astype(np.float64), type_maxcap=type_maxcap,
                    type_nodes=type_nodes, busy=busy, delta_w=tdp - idle, power_w=power,
                    project_sector=snap.tenancy.project_sector)


# 2. screen -----------------------------------------------------------------------------------
@dataclass
class Screened:
    reason: np.ndarray  # int8 per pending row; NONE where still eligible
    pace: np.ndarray  # rule 4 factor per pending row


def screen(snap: Snapshot, policy: Policy, prep: Prepared) -> Screened:
    """Holds decided without looking at free capacity (rules 4 and 6)."""
    p = snap.pending
    n = len(p)
    reason = np.zeros(n, dtype=np.int8)
    n_t = len(prep.type_cap)
    t = p.type_idx.astype(np.int64)
    bad_t = (t < 0) | (t >= n_t)
    tc = np.where(bad_t, 0, t)
    shape_bad = (bad_t | (p.nodes < 1) | (p.per_node < 1) | (p.per_node > prep.type_maxcap[tc])
                 | (p.nodes > prep.type_nodes[tc]))
    g = snap.grants
    gi = p.grant.astype(np.int64)
    has = (gi >= 0) & (gi < len(g.total_s))
    gs = np.where(has, gi, 0)
    pace = np.full(n, 0.5)
    if len(g.total_s):
        active = has & (g.start[gs] <= snap.now) & (snap.now < g.end[gs]) & (g.type_idx[gs] == t)
        exhausted = active & (g.used_s[gs] >= g.total_s[gs])
        pace = np.where(has, pacing_factor(g.total_s[gs], g.used_s[gs], g.start[gs], g.end[gs],
                                           snap.now), 0.5)
    else:
        active = np.zeros(n, dtype=bool)
        exhausted = active
    no_grant = ((gi >= 0) & ~active) | ((gi < 0) & policy.require_grant)
    reason[no_grant] = R.NO_GRANT
    reason[exhausted] = R.GRANT_EXHAUSTED
    reason[shape_bad] = R.NODE_UNAVAILABLE
    return Screened(reason=reason, pace=pace)


# 3. order ------------------------------------------------------------------------------------
@dataclass
class Ordered:
    order: np.ndarray  # eligible pending rows, best first
    key: np.ndarray  # order key per pending row (lower first)
    tier_a: np.ndarray  # bool per pending row: fits its entitlement at cycle start (rule 1)
    ent: Entitlements | None


def order_jobs(snap: Snapshot, policy: Policy, prep: Prepared, scr: Screened) -> Ordered:
    p, ten = snap.pending, snap.tenancy
    n = len(p)
    eligible = scr.reason == R.NONE
    acc = p.accelerators.astype(np.float64)
    n_p = len(ten.project_names)
    usage = np.zeros(n_p)
    u = np.asarray(snap.usage_decayed_s, dtype=np.float64)[:n_p]
    usage[:len(u)] = u
    share = sector_shares(np.asarray(ten.entitlement, dtype=np.float64), prep.type_cap)
    age = np.clip((snap.now - p.submit_time) / policy.age_max_s, 0.0, 1.0)
    sec = prep.project_sector[p.project]
    tier_a = np.zeros(n, dtype=bool)
    ent = None
    if policy.name == "fifo":
        key = p.submit_time.astype(np.float64)
    elif policy.name == "multifactor":  # rule 10
        fs = flat_fairshare_factor(ten.project_org, ten.org_sector, ten.org_weight,
                                   ten.project_weight, share, usage)
        size = acc / max(float(prep.type_cap.max(initial=1.0)), 1.0)
        qos = np.array([1.0, 0.5, 0.0])[np.clip(p.job_class, 0, 2)]
        key = -(policy.weight_age * age + policy.weight_fairshare * fs[p.project]
                + policy.weight_size * size + policy.weight_qos * qos)
    else:  # rules 1, 3, 4, 5
        fs = fair_tree_factor(ten.project_org, ten.org_sector, ten.org_weight,
                              ten.project_weight, share, usage)
        owed = owed_factor(snap.lending_balance_s, len(ten.sector_names), policy.lending_scale_s)
        score = (policy.weight_fairshare * fs[p.project] + policy.weight_pacing * scr.pace
                 + policy.weight_lending * owed[sec] + policy.weight_age * age)
        cls = np.clip(p.job_class.astype(np.int64), 0, 2)
        big_interactive = (cls == JobClass.INTERACTIVE) & (
            (acc > policy.interactive_max_accelerators)
            | (p.time_limit_s > policy.interactive_max_time_s))
        cls = np.where(big_interactive, int(JobClass.BATCH), cls)
        key = cls * _TIER - score
        if policy.entitlements:
            n_s, n_t = len(ten.sector_names), len(prep.type_cap)
            t = np.clip(p.type_idx.astype(np.int64), 0, n_t - 1)
            demand = np.bincount((sec * n_t + t)[eligible], weights=acc[eligible],
                                 minlength=n_s * n_t).reshape(n_s, n_t)
            ent = entitlements(ten, snap.running, prep.type_cap, demand)
            room = (ent.cap - ent.used)[sec, t]
            tier_a = acc <= room + 1e-9
            key = key + np.where(tier_a, 0.0, 3 * _TIER)
    rows = np.flatnonzero(eligible)
    order = rows[np.argsort(key[rows], kind="stable")]
    return Ordered(order=order, key=key, tier_a=tier_a & eligible, ent=ent)


# 4. walk -------------------------------------------------------------------------------------
@dataclass
class Walked:
    starts: list[Start] = field(default_factory=list)
    walked: int = 0
    reservations: list[Reservation] = field(default_factory=list)
    borrowed: int = 0
    demoted: list[int] = field(default_factory=list)
    power_w: float = 0.0


class _Walk:
    """State of step 4: scalar copies of the arrays the per-job loop touches."""

    def __init__(self, snap: Snapshot, policy: Policy, prep: Prepared, od: Ordered,
                 fs: FreeState, reason: np.ndarray) -> None:
        p = snap.pending
        self.snap, self.policy, self.fs, self.reason = snap, policy, fs, reason
        self.T = p.type_idx.tolist()
        self.N = p.nodes.tolist()
        self.K = p.per_node.tolist()
        self.A = p.accelerators.tolist()
        self.END = (snap.now + p.time_limit_s).tolist()
        self.ID = p.id.tolist()
        self.S = prep.project_sector[p.project].tolist()
        self.dw = prep.delta_w.tolist()
        self.headroom = (snap.power_available_w - prep.power_w) if policy.power_cap else INF
        self.ent = od.ent
        if od.ent is not None:
            self.cap = od.ent.cap.tolist()
            self.used = od.ent.used.tolist()
            self.quota = od.ent.quota.tolist()
            self.lendable = od.ent.lendable.tolist()
            self.pool = od.ent.pool.tolist()
        self.added_w = 0.0
        self.res_count = [0] * len(prep.type_cap)
        self.blocked_type = [False] * len(prep.type_cap)
        self.out = Walked()

    def run(self, rows: list[int], tier_a: bool) -> None:
        """Rules 2, 6, 7, 9 for each row in order."""
        fs, reason, pol, out = self.fs, self.reason, self.policy, self.out
        T, N, K, A, END, S = self.T, self.N, self.K, self.A, self.END, self.S
        backfill, fifo = pol.backfill, not pol.backfill
        R_max = pol.reservations_per_type
        ent = self.ent is not None
        out.walked += len(rows)
        for j in rows:
            t = T[j]
            if fifo and self.blocked_type[t]:
                reason[j] = R.PRIORITY
                continue
            a, s = A[j], S[j]
            borrow = 0.0
            if ent:
                room = self.cap[s][t] - self.used[s][t]
                borrow = a - (room if room > 0 else 0.0)
                if borrow > 1e-9:
                    if tier_a:
                        out.demoted.append(j)  # rule 1: now beyond its entitlement, tier B
                        continue
                    if borrow > self.quota[s][t] + 1e-9:
                        reason[j] = R.ENTITLEMENT
                        continue
                else:
                    borrow = 0.0
            dw = a * self.dw[t]
            if dw > self.headroom:
                reason[j] = R.POWER_CAP
                if fifo:
                    self.blocked_type[t] = True
                continue
            n, k, end = N[j], K[j], END[j]
            if n == 1:
                node = -1 if fs.failed_sub(t, k, end) else fs.find_sub(t, k, end)
                if node < 0:
                    fs.remember_sub_failure(t, k, end)
                    reason[j] = R.PRIORITY if k <= fs.resv_max[t] else R.RESOURCES
                    if backfill and self.res_count[t] < R_max:
                        self._reserve(j, fs.reserve_sub(t, k), k)
                    self.blocked_type[t] = True
                    continue
                fs.take(node, k, end)
                placement: tuple[tuple[int, int], ...] = ((node, k),)
            else:
                nodes = fs.find_gang(t, n, k, end)
                if nodes is None:
                    reason[j] = R.PRIORITY if fs.whole_free(t) >= n else R.RESOURCES
                    if backfill and self.res_count[t] < R_max:
                        self._reserve(j, fs.reserve_gang(t, n, k), -1)
                    self.blocked_type[t] = True
                    continue
                nl = nodes.tolist()
                for nd in nl:
                    fs.take(nd, fs.freel[nd], end)  # whole nodes (rule 6)
                placement = tuple((nd, k) for nd in nl)
            self.headroom -= dw
            self.added_w += dw
            reason[j] = R.NONE
            lender = -1
            if ent:
                self.used[s][t] += a
                if borrow > 0:
                    lender = self._lend(s, t, borrow)
                    out.borrowed += 1
            out.starts.append(Start(self.ID[j], placement, borrow > 0, lender))

    def _reserve(self, j: int, start: float, need: int) -> None:
        if start == INF:
            return
        t = self.T[j]
        self.res_count[t] += 1
        nodes = self.fs.last_reserved
        need = need if need > 0 else int(self.fs.cap[nodes[0]])
        self.out.reservations.append(Reservation(self.ID[j], start, nodes, need))

    def _lend(self, s: int, t: int, amount: float) -> int:
        """Rule 2: charge a borrowed start to the pool first, then to the lender with most left;
        returns the sector that lent the most of it (-1: the pool)."""
        self.quota[s][t] -= amount
        take = min(amount, self.pool[t])
        self.pool[t] -= take
        amount -= take
        best, best_amt = -1, take
        while amount > 1e-9:
            cands = [(self.lendable[x][t], x) for x in range(len(self.lendable)) if x != s]
            left, x = max(cands, default=(0.0, -1))
            if left <= 1e-9:
                break
            got = min(amount, left)
            self.lendable[x][t] -= got
            amount -= got
            if got > best_amt:
                best, best_amt = x, got
        return best


def walk(snap: Snapshot, policy: Policy, prep: Prepared, od: Ordered, fs: FreeState,
         reason: np.ndarray) -> Walked:
    """Step 4. Jobs that cannot fit the free capacity at the start of the cycle are held
    vectorised (capacity only shrinks within a cycle); the first ``reservations_per_type`` of
    them per type are still walked, to take reservations (rule 7)."""
    p = snap.pending
    order = od.order
    reason[order] = R.RESOURCES
    t = p.type_idx[order].astype(np.int64)
    n_t = len(prep.type_cap)
    up = snap.fleet.state == NODE_UP
    ti = snap.fleet.type_idx[up]
    f0 = fs.free[up]
    maxfree = np.zeros(n_t, dtype=np.int64)
    np.maximum.at(maxfree, ti, f0)
    whole = np.bincount(ti[f0 == fs.cap[up]], minlength=n_t)
    one = p.nodes[order] == 1
    fits = np.where(one, p.per_node[order] <= maxfree[t], p.nodes[order] <= whole[t])
    acc = p.accelerators[order].astype(np.float64)
    ok = np.ones(len(order), dtype=bool)
    if policy.power_cap:
        headroom = snap.power_available_w - prep.power_w
        pw_ok = acc * prep.delta_w[t] <= headroom
        reason[order[fits & ~pw_ok]] = R.POWER_CAP
        ok &= pw_ok
    if od.ent is not None:
        sec = prep.project_sector[p.project[order]]
        room = np.maximum(od.ent.cap - od.ent.used, 0.0)[sec, t]
        ent_ok = od.tier_a[order] | (acc - room <= od.ent.quota[sec, t] + 1e-9)
        reason[order[fits & ok & ~ent_ok]] = R.ENTITLEMENT
        ok &= ent_ok
    keep = fits & ok
    depth = policy.reservations_per_type if policy.backfill else 1
    if depth:
        blocked = np.flatnonzero(~fits & ok)
        bt = t[blocked]
        for ty in np.unique(bt).tolist():
            keep[blocked[bt == ty][:depth]] = True
    rows = order[keep]
    w = _Walk(snap, policy, prep, od, fs, reason)
    if od.ent is not None:
        a_rows = rows[od.tier_a[rows]].tolist()
        b_rows = rows[~od.tier_a[rows]]
        w.run(a_rows, tier_a=True)
        if w.out.demoted:
            b_rows = np.concatenate([b_rows, np.array(w.out.demoted, dtype=np.int64)])
            b_rows = b_rows[np.argsort(od.key[b_rows], kind="stable")]
        w.run(b_rows.tolist(), tier_a=False)
        w.out.walked -= len(w.out.demoted)
    else:
        w.run(rows.tolist(), tier_a=False)
    w.out.power_w = prep.power_w + w.added_w
    return w.out


# 5. preempt ----------------------------------------------------------------------------------
def preempt(snap: Snapshot, policy: Policy, prep: Prepared, od: Ordered, fs: FreeState,
            reason: np.ndarray, walked: Walked) -> list[Preempt]:
    """Rule 8: reclaim borrowed capacity for tier-A jobs that could not start."""
    if not policy.preemption or od.ent is None or len(snap.running) == 0:
        return []
    demoted = np.zeros(len(reason), dtype=bool)
    demoted[walked.demoted] = True
    want = od.order[od.tier_a[od.order] & ~demoted[od.order]
                    & np.isin(reason[od.order], (R.RESOURCES, R.PRIORITY))]
    if len(want) == 0:
        return []
    run = snap.running
    ent = od.ent
    borrowed = borrowed_rows(run, prep.project_sector, ent.cap, ent.used)
    old = (snap.now - run.start_time) >= policy.min_runtime_s
    cand = np.flatnonzero(borrowed & old)
    if len(cand) == 0:
        return []
    flex = (run.job_class[cand] == JobClass.FLEXIBLE) & run.preemptible[cand]
    pref = np.where(flex, 0, np.where(run.preemptible[cand], 1, 2))
    cand = cand[np.lexsort((-run.start_time[cand], pref))]
    by_lender = len(run.lender) == len(run)
    pools: dict[tuple[int, int], list[int]] = {}
    ct = run.type_idx[cand].tolist()
    cl = run.lender[cand].tolist() if by_lender else [-1] * len(cand)
    for v, ty, le in zip(cand.tolist(), ct, cl, strict=True):
        pools.setdefault((ty, le), []).append(v)
    room = np.maximum(ent.cap - walked_used(ent, walked, snap, prep), 0.0).tolist()
    fail_k: dict[tuple[int, int], int] = {}
    chosen: set[int] = set()
    out: list[Preempt] = []
    p = snap.pending
    ptr, a_node, a_cnt = run.alloc_ptr, run.alloc_node, run.alloc_count
    cap, up = fs.cap, snap.fleet.state == NODE_UP
    names = snap.tenancy.sector_names
    for j in want.tolist():
        t = int(p.type_idx[j])
        s = int(prep.project_sector[p.project[j]])
        pool = pools.get((t, s if by_lender else -1))
        if not pool:
            continue
        a = int(p.nodes[j]) * int(p.per_node[j])
        if a > room[s][t] + 1e-9:
            continue
        n_req, k = int(p.nodes[j]), int(p.per_node[j])
        size = k if n_req == 1 else 10_000 + n_req
        if size >= fail_k.get((t, s), 1 << 40):
            continue
        temp: dict[int, int] = {}
        touched: dict[int, list[int]] = {}
        whole_new: list[int] = []
        need_whole = n_req - fs.whole_free(t) if n_req > 1 else 0
        target: list[int] = []
        for v in pool:
            if v in chosen:
                continue
            for i in range(int(ptr[v]), int(ptr[v + 1])):
                nd = int(a_node[i])
                if not up[nd]:
                    continue
                temp[nd] = temp.get(nd, fs.freel[nd]) + int(a_cnt[i])
                touched.setdefault(nd, []).append(v)
                if n_req == 1 and temp[nd] >= k and not target:
                    target = [nd]
                elif n_req > 1 and temp[nd] == cap[nd] and nd not in whole_new:
                    whole_new.append(nd)
            if target or (n_req > 1 and len(whole_new) >= need_whole):
                break
        if n_req > 1 and len(whole_new) >= need_whole:
            target = whole_new[:max(need_whole, 0)]
        if not target and not (n_req > 1 and need_whole <= 0):
            fail_k[(t, s)] = min(size, fail_k.get((t, s), 1 << 40))
            continue
        victims = sorted({v for nd in target for v in touched.get(nd, [])})
        if not victims:
            continue
        room[s][t] -= a
        reason[j] = R.PREEMPTING
        for v in victims:
            chosen.add(v)
            borrower = names[int(prep.project_sector[run.project[v]])]
            out.append(Preempt(
                int(run.id[v]),
                f"preempted: capacity borrowed by {borrower} is returned to {names[s]} "
                f"(rule 8); {policy.grace_s:.0f} s to checkpoint",
                grace_s=policy.grace_s))
    return out


def walked_used(ent: Entitlements, walked: Walked, snap: Snapshot, prep: Prepared
                ) -> np.ndarray:
    """Use per (sector, type) after the starts of this cycle."""
    used = ent.used.copy()
    if walked.starts:
        p = snap.pending
        row = {int(i): r for r, i in enumerate(p.id.tolist())} if walked.starts else {}
        for st in walked.starts:
            r = row[st.job_id]
            used[prep.project_sector[p.project[r]], p.type_idx[r]] += p.accelerators[r]
    return used


# 6. report / entry point -----------------------------------------------------------------------
def schedule(snapshot: Snapshot, policy: Policy | str = "fairshare") -> Decisions:
    """One cycle: decisions for ``snapshot`` under ``policy`` (a :class:`Policy` or a preset
    name in :data:`~aicc.scheduler.policy.POLICIES`). Pure: same snapshot, same decisions."""
    pol = resolve(policy)
    snap = snapshot
    prep = prepare(snap)
    scr = screen(snap, pol, prep)
    od = order_jobs(snap, pol, prep, scr)
    reason = scr.reason.copy()
    fs = FreeState(snap.fleet, snap.free, snap.running, snap.now)
    frag_before = fragmentation(snap.fleet, fs.free)
    walked = walk(snap, pol, prep, od, fs, reason)
    preempts = preempt(snap, pol, prep, od, fs, reason, walked)
    stats = {
        "walked": float(walked.walked),
        "starts": float(len(walked.starts)),
        "preempts": float(len(preempts)),
        "reservations": float(len(walked.reservations)),
        "borrowed_starts": float(walked.borrowed),
        "fragmentation_before": frag_before,
        "fragmentation_after": fragmentation(snap.fleet, fs.free),
        "power_w_before": prep.power_w,
        "power_w_after": walked.power_w,
        "power_available_w": float(snap.power_available_w),
    }
    return Decisions(starts=walked.starts, preempts=preempts, reason=reason,
                     considered=len(snap.pending), stats=stats,
                     reservations=walked.reservations)

