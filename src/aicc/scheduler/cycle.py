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

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from aicc.errors import InvalidInput
from aicc.fleet.arrays import NODE_UP
from aicc.scheduler.fairshare import (
    fair_tree_factor,
    flat_fairshare_factor,
    pacing_factor,
    sector_shares,
)
from aicc.scheduler.lending import (
    Entitlements,
    borrowed_rows,
    entitlements,
    owed_factor,
    split_loans,
)
from aicc.scheduler.placement import (
    INF,
    FleetStatic,
    FreeState,
    fleet_static,
    fragmentation,
    nodes_at_least,
)
from aicc.scheduler.policy import Policy, resolve
from aicc.scheduler.snapshot import (
    Decisions,
    HoldReason,
    JobClass,
    JobTable,
    Preempt,
    Reservation,
    Snapshot,
    Start,
)

R = HoldReason
_NONE, _RESOURCES, _PRIORITY = int(R.NONE), int(R.RESOURCES), int(R.PRIORITY)
_POWER_CAP, _ENTITLEMENT = int(R.POWER_CAP), int(R.ENTITLEMENT)
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
    # idle draw of the nodes down now that may come back (Snapshot.down_returns): kept out of
    # the headroom, as a node comes back from repair idle, drawing it, whatever the cap (rule 9)
    down_idle_w: float
    project_sector: np.ndarray
    static: FleetStatic | None = None  # the fleet's static tables, looked up once per cycle


def _check(ok: bool, field_: str, what: str) -> None:
    if not ok:
        raise InvalidInput(f"{field_}: {what}", field=field_)


_COLUMNS = ("project", "type_idx", "nodes", "per_node", "time_limit_s", "job_class",
            "preemptible", "submit_time", "grant", "start_time", "expected_runtime_s")


def validate(snap: Snapshot) -> None:
    """Shape and index checks on the snapshot (vectorised; raises InvalidInput naming the
    field), so that a caller's mistake is a clear error, never a wrong decision."""
    fleet, ten = snap.fleet, snap.tenancy
    n_nodes, n_t = fleet.n_nodes, len(fleet.catalog)
    n_s, n_o, n_p = len(ten.sector_names), len(ten.org_names), len(ten.project_names)
    # (each message is formatted only for a failure: this runs every cycle)
    if len(snap.free) != n_nodes:
        _check(False, "snapshot.free", f"expected {n_nodes} nodes")
    if np.shape(ten.entitlement) != (n_s, n_t):
        _check(False, "snapshot.tenancy.entitlement", f"expected shape ({n_s}, {n_t})")
    _check(len(ten.org_sector) == n_o and (n_o == 0 or (
        ten.org_sector.min() >= 0 and ten.org_sector.max() < n_s)),
        "snapshot.tenancy.org_sector", "one sector index per organization")
    _check(len(ten.project_org) == n_p and (n_p == 0 or (
        ten.project_org.min() >= 0 and ten.project_org.max() < n_o)),
        "snapshot.tenancy.project_org", "one organization index per project")
    for name, t in (("pending", snap.pending), ("running", snap.running)):
        n = len(t.id)
        for col in _COLUMNS:
            if len(getattr(t, col)) != n:
                _check(False, f"snapshot.{name}.{col}", f"expected {n} rows")
        if not (n == 0 or (t.project.min() >= 0 and t.project.max() < n_p)):
            _check(False, f"snapshot.{name}.project", f"project index outside 0..{n_p - 1}")
    r = snap.running
    _check(len(r.alloc_ptr) == len(r) + 1, "snapshot.running.alloc_ptr",
           "expected one more entry than rows")
    _check(len(r.alloc_node) == 0 or (r.alloc_node.min() >= 0 and r.alloc_node.max() < n_nodes),
           "snapshot.running.alloc_node", "node index outside the fleet")
    _check(len(r) == 0 or (r.type_idx.min() >= 0 and r.type_idx.max() < n_t),
           "snapshot.running.type_idx", "accelerator type outside the catalog")
    g = snap.grants
    _check(len({len(g.project), len(g.type_idx), len(g.total_s), len(g.used_s), len(g.start),
                len(g.end)}) == 1, "snapshot.grants", "columns of different lengths")
    if snap.lending_balance_s is not None and np.shape(snap.lending_balance_s) != (n_s, n_s):
        _check(False, "snapshot.lending_balance_s", f"expected shape ({n_s}, {n_s})")
    if snap.down_returns is not None and np.shape(snap.down_returns) != (n_nodes,):
        _check(False, "snapshot.down_returns", f"expected {n_nodes} nodes")


def prepare(snap: Snapshot) -> Prepared:
    validate(snap)
    fleet = snap.fleet
    st = fleet_static(fleet)
    cap = st.cap64
    run = snap.running
    busy = (np.bincount(run.alloc_node, weights=run.alloc_count, minlength=fleet.n_nodes)
            if len(run.alloc_node) else np.zeros(fleet.n_nodes))
    b = np.minimum(busy, cap)
    power = float((b * st.tdp_node + (cap - b) * st.idle_node)[st.live].sum())
    back = ~st.live if snap.down_returns is None else ~st.live & snap.down_returns
    down_idle = float((cap * st.idle_node)[back].sum()) if back.any() else 0.0
    return Prepared(type_cap=st.type_cap.copy(), type_maxcap=st.type_maxcap.copy(),
                    type_nodes=st.type_nodes.copy(), busy=busy, delta_w=st.delta_w.copy(),
                    power_w=power, down_idle_w=down_idle,
                    project_sector=snap.tenancy.project_sector, static=st)


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
    st = prep.static
    if st is not None and not all(st.uniform) and n:  # gangs need nodes that hold their share
        shape_bad |= (p.nodes > 1) & (p.nodes > nodes_at_least(st.size_keys, st.key_base, tc,
                                                               p.per_node))
    g = snap.grants
    gi = p.grant.astype(np.int64)
    n_g = len(g.total_s)
    has = (gi >= 0) & (gi < n_g)
    if n_g:
        # per grant first (few), then one gather per job
        g_live = (g.start <= snap.now) & (snap.now < g.end)
        g_spent = g_live & (g.used_s >= g.total_s)
        g_pace = pacing_factor(g.total_s, g.used_s, g.start, g.end, snap.now)
        gs = np.where(has, gi, 0)
        active = has & g_live[gs] & (g.type_idx[gs] == t)
        exhausted = active & g_spent[gs]
        pace = np.where(has, g_pace[gs], 0.5)
    else:
        active = np.zeros(n, dtype=bool)
        exhausted = active
        pace = np.full(n, 0.5)
    reason[(gi < 0) & policy.require_grant] = R.NO_GRANT
    reason[(gi >= 0) & ~active] = R.GRANT_INACTIVE  # (one it named)
    reason[exhausted] = R.GRANT_EXHAUSTED
    reason[shape_bad] = R.NODE_UNAVAILABLE
    return Screened(reason=reason, pace=pace)


# 3. order ------------------------------------------------------------------------------------
_QOS = np.array([1.0, 0.5, 0.0])
_QOS.flags.writeable = False
_INTERACTIVE, _BATCH = int(JobClass.INTERACTIVE), int(JobClass.BATCH)


def _clip(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``np.clip`` as two ufuncs (the same values, without its wrapper's cost per call)."""
    return np.minimum(np.maximum(x, lo), hi)


@dataclass
class Ordered:
    order: np.ndarray  # eligible pending rows, best first
    key: np.ndarray  # order key per pending row (lower first)
    tier_a: np.ndarray  # bool per pending row: fits its entitlement at cycle start (rule 1)
    ent: Entitlements | None
    base: np.ndarray | None = None  # order key without the tier offset (rule 1's heads)


def order_jobs(snap: Snapshot, policy: Policy, prep: Prepared, scr: Screened) -> Ordered:
    p, ten = snap.pending, snap.tenancy
    n = len(p)
    eligible = scr.reason == _NONE
    acc = p.accelerators.astype(np.float64)
    n_p = len(ten.project_names)
    usage = np.zeros(n_p)
    u = np.asarray(snap.usage_decayed_s, dtype=np.float64)[:n_p]
    usage[:len(u)] = u
    share = sector_shares(np.asarray(ten.entitlement, dtype=np.float64), prep.type_cap)
    age = _clip((snap.now - p.submit_time) / policy.age_max_s, 0.0, 1.0)
    sec = prep.project_sector[p.project]
    tier_a = np.zeros(n, dtype=bool)
    ent = None
    base = None
    if policy.name == "fifo":
        key = p.submit_time.astype(np.float64)
    elif policy.name == "multifactor":  # rule 10
        fs = flat_fairshare_factor(ten.project_org, ten.org_sector, ten.org_weight,
                                   ten.project_weight, share, usage)
        size = acc / max(float(prep.type_cap.max(initial=1.0)), 1.0)
        qos = _QOS[_clip(p.job_class, 0, 2)]
        key = -(policy.weight_age * age + policy.weight_fairshare * fs[p.project]
                + policy.weight_size * size + policy.weight_qos * qos)
    else:  # rules 1, 3, 4, 5
        fs = fair_tree_factor(ten.project_org, ten.org_sector, ten.org_weight,
                              ten.project_weight, share, usage)
        owed = owed_factor(snap.lending_balance_s, len(ten.sector_names), policy.lending_scale_s)
        score = (policy.weight_fairshare * fs[p.project] + policy.weight_pacing * scr.pace
                 + policy.weight_lending * owed[sec] + policy.weight_age * age)
        cls = _clip(p.job_class.astype(np.int64), 0, 2)
        big_interactive = (cls == _INTERACTIVE) & (
            (acc > policy.interactive_max_accelerators)
            | (p.time_limit_s > policy.interactive_max_time_s))
        cls = np.where(big_interactive, _BATCH, cls)
        key = cls * _TIER - score
        if policy.lends:
            n_s, n_t = len(ten.sector_names), len(prep.type_cap)
            t = _clip(p.type_idx.astype(np.int64), 0, n_t - 1)
            demand = np.bincount((sec * n_t + t)[eligible], weights=acc[eligible],
                                 minlength=n_s * n_t).reshape(n_s, n_t)
            ent = entitlements(ten, snap.running, prep.type_cap, demand)
            room = (ent.cap - ent.used)[sec, t]
            tier_a = acc <= room + 1e-9
            base = key
            key = key + np.where(tier_a, 0.0, 3 * _TIER)
    rows = np.flatnonzero(eligible)
    # ties in the key are broken by row order (a stable sort): an unstable sort's tie order
    # depends on the numpy release and on the CPU's vector instructions, and so would decisions
    order = rows[np.argsort(key[rows], kind="stable")]
    return Ordered(order=order, key=key, tier_a=tier_a & eligible, ent=ent, base=base)


# 4. walk -------------------------------------------------------------------------------------
_BLOCK = 512  # rows filtered together before the per-job loop (first block size)
_BULK_MIN = 16  # rows left in the loop from which entitlement holds are found on arrays
_BULK_WINDOW = 512  # rows checked on arrays at once
_STREAK = 4  # rows held one by one in a row before the next window is checked on arrays


@dataclass
class Walked:
    starts: list[Start] = field(default_factory=list)
    walked: int = 0  # rows that reached the per-job loop
    reservations: list[Reservation] = field(default_factory=list)
    borrowed: int = 0
    demoted: list[int] = field(default_factory=list)
    power_w: float = 0.0
    used: np.ndarray | None = None  # [S, T] use after this cycle's starts (entitlements on)
    lent_to: list[tuple[int, int, int, int]] = field(default_factory=list)  # (s, lender, t, a)
    loans: np.ndarray | None = None  # [S, S] lender × borrower after this cycle's starts


class _Walk:
    """State of step 4: numpy columns for the block filter, Python scalars for the loop."""

    def __init__(self, snap: Snapshot, policy: Policy, prep: Prepared, od: Ordered,
                 fs: FreeState, reason: np.ndarray) -> None:
        p = snap.pending
        self.snap, self.policy, self.fs, self.reason = snap, policy, fs, reason
        self.t = p.type_idx.astype(np.int64)
        self.n = p.nodes.astype(np.int64)
        self.k = p.per_node.astype(np.int64)
        self.a = self.n * self.k
        self.end = snap.now + p.time_limit_s
        # when a start is expected to release its accelerators, estimated as for running jobs
        # (rule 7): later reservations of this cycle count on it; never after its time limit
        self.rel = snap.now + np.where(p.expected_runtime_s > 0,
                                       np.minimum(p.expected_runtime_s, p.time_limit_s),
                                       p.time_limit_s)
        self.s = prep.project_sector[p.project].astype(np.int64)
        self.n_t = len(prep.type_cap)
        self.st = self.s * self.n_t + self.t  # flat (sector, type) index, for the block filter
        self.key = od.key
        self.dw_np = prep.delta_w
        self.dw = prep.delta_w.tolist()
        self.headroom = ((snap.power_available_w - prep.power_w - prep.down_idle_w)
                         if policy.power_cap else INF)
        self.added_w = 0.0
        self.ent = od.ent
        if od.ent is not None:
            self.cap = od.ent.cap.tolist()
            self.used = od.ent.used.tolist()
            self.quota = od.ent.quota.tolist()
            self.lendable = od.ent.lendable.tolist()
            self.pool = od.ent.pool.tolist()
            self.lent = od.ent.lent.tolist()
            self.lend_cap = od.ent.lend_cap.tolist()
        # rule 1, strict sector queueing: (sector, type) -> its head, the first row in order that
        # did not fit the sector's room at the start of the cycle
        self.heads: dict[int, int] = {}
        if od.ent is not None and od.base is not None and policy.sector_queueing == "strict":
            self._init_claims(od)
        # rule 2's second pass: borrowing limited by what is still lendable, not by quotas
        self.conserving = False
        n_t = len(prep.type_cap)
        self.res_count = [0] * n_t
        # shapes whose reservation could not be made this cycle (inf), per type: reservations
        # only accumulate within a cycle, so a shape at least as large is not tried again
        self.resv_fail_sub = [1 << 30] * n_t  # smallest one-node size that failed
        self.resv_fail_gang: list[list[tuple[int, int]]] = [[] for _ in range(n_t)]
        self.blocked_type = [False] * n_t
        self.walk_types: set[int] = set()  # types with rows in the walk (set by walk())
        self.open_types = -1  # of those, not blocked yet (FIFO's early end; -1: not tracked)
        self.depth = policy.reservations_per_type if policy.backfill else 1
        self.out = Walked()

    # rule 1, strict sector queueing: each head claims its sector's queue ---------------------
    def _init_claims(self, od: Ordered) -> None:
        """The head of each (sector, type): its first row in order among those that did not fit
        the sector's room at the start of the cycle but fit its entitlement (tier B is in key
        order)."""
        ent = od.ent
        assert ent is not None and od.base is not None
        order = od.order
        b = order[~od.tier_a[order]]
        # a job larger than its sector's entitlement starts only by borrowing: it claims nothing
        b = b[self.a[b] <= ent.cap.ravel()[self.st[b]] + 1e-9]
        if not len(b):
            return
        uniq, first = np.unique(self.st[b], return_index=True)
        heads = b[first]
        self.heads = dict(zip(uniq.tolist(), heads.tolist(), strict=True))
        self.head_row = np.zeros(len(self.t), dtype=bool)
        self.head_row[heads] = True
        self.head_of = np.full(ent.cap.size, -1, dtype=np.int64)  # (sector, type) -> row
        self.head_of[uniq] = heads
        self.claim_live = np.zeros(ent.cap.size, dtype=bool)  # applied by the block filter
        self.base = od.base

    def _behind(self, j: int, h: int) -> bool:
        """Whether row ``j`` comes after ``h``, the head of its sector and type, in order (the
        key without the tier offset; ties by row order, as the sort breaks them)."""
        assert self.base is not None
        bj, bh = self.base[j], self.base[h]
        return bool(bj > bh or (bj == bh and j > h))

    def claims_for_pass(self, rows: np.ndarray) -> None:
        """Before a pass over ``rows``: the block filter applies every claim whose head is
        not among them (it waits for this pass), the others once their head is reached."""
        if not self.heads:
            return
        self.claim_live[:] = self.head_of >= 0
        self.claim_live[self.st[rows[self.head_row[rows]]]] = False

    def claimed_reasons(self, rows: np.ndarray) -> None:
        """After the walk: a row held behind its head waits for ``priority``, whatever else
        would hold it (the claim is the first check, with the entitlement's), and whichever path
        held it: the filter before the claim was in force, or the loop."""
        rows = rows[self.reason[rows] != _NONE]
        if not len(rows):
            return
        assert self.ent is not None
        self.claim_live[:] = True
        room = (self.ent.cap - np.array(self.used)).ravel()[self.st[rows]]
        self.reason[rows[self._claim_rooms(rows, room)[1]]] = _PRIORITY

    def _claim_rooms(self, rows: np.ndarray, room: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The room each row may use under the claims in force in the filter (``claim_live``):
        none behind a head (``room``: its sector's, cap minus use), and which rows those are
        (they may not borrow either: they wait)."""
        st = self.st[rows]
        h = np.where(self.claim_live[st], self.head_of[st], -1)
        idx = np.flatnonzero((h >= 0) & (h != rows))
        claimed = np.zeros(len(rows), dtype=bool)
        if not len(idx):
            return room, claimed
        assert self.base is not None
        r, hr = rows[idx], h[idx]
        bj, bh = self.base[r], self.base[hr]
        idx = idx[(bj > bh) | ((bj == bh) & (r > hr))]
        room = room.copy()
        room[idx] = 0.0
        claimed[idx] = True
        return room, claimed

    # the block filter: exact for what it rejects (capacity, quota and power only shrink)
    def candidates(self, rows: np.ndarray, tier_a: bool) -> tuple[np.ndarray, int]:
        """The rows of ``rows`` that go on to the loop, and how many rows of ``rows`` this
        decided (a prefix: the others wait for the next block)."""
        fs, pol = self.fs, self.policy
        t, a, n, k, end = self.t[rows], self.a[rows], self.n[rows], self.k[rows], self.end[rows]
        m = len(rows)
        why = np.zeros(m, dtype=np.int8)
        fifo = not pol.backfill
        if fifo:
            blk = np.array(self.blocked_type)[t]
            why[blk] = _PRIORITY
            open_ = ~blk
        else:
            open_ = np.empty(m, dtype=bool)
            open_.fill(True)
        if self.ent is not None:
            st = self.st[rows]
            room = (self.ent.cap - np.array(self.used)).ravel()[st]
            claimed = None
            if self.heads:
                room, claimed = self._claim_rooms(rows, room)
            room = np.maximum(room, 0.0)
            over = a - room > 1e-9
            if tier_a:
                dem = open_ & over  # rule 1: now tier B (recorded below, for the rows decided)
                open_ &= ~dem
            else:
                no = open_ & over & (a - room > self._limits().ravel()[st] + 1e-9)
                if claimed is not None:  # (a head held here: its claim holds from now on, below)
                    no |= open_ & claimed
                why[no] = _ENTITLEMENT
                open_ &= ~no
        hot = open_ & (a * self.dw_np[t] > self.headroom)
        why[hot] = _POWER_CAP
        open_ &= ~hot
        nofit = hot if fifo else np.zeros(m, dtype=bool)
        # every row is tested as a one-node job and, where there are gangs, as a gang; each
        # keeps its own result (no masked gathers: their per-call cost dominates small blocks)
        one = n == 1
        resv_max = np.array(fs.resv_max)
        top = np.maximum(np.array(fs.hint), resv_max)
        fail_sub, fail_gang = fs.memo_tables()
        kk = np.minimum(k, fail_sub.shape[1] - 1)
        fit = (k <= top[t]) & (end < fail_sub[t, kk])
        res = k <= resv_max[t]
        if not one.all():
            whole = fs.whole_counts()
            nn = np.minimum(n, fail_gang.shape[1] - 1)
            prio_g = n <= whole[t]
            fit = np.where(one, fit, prio_g & (end < fail_gang[t, nn]))
            res = np.where(one, res, prio_g)
        nf = open_ & ~fit
        why[nf & res] = _PRIORITY
        why[nf & ~res] = _RESOURCES
        nofit = nofit | nf
        keep = open_ & fit
        cut = m
        if nofit.any() and self.depth:
            idx = np.flatnonzero(nofit)
            ti = t[idx]
            for ty in sorted(set(ti.tolist())):
                left = self.depth - (self.res_count[ty] if pol.backfill else
                                     int(self.blocked_type[ty]))
                if left > 0:
                    mine = idx[ti == ty]
                    if pol.backfill:  # rows whose reservation would fail are settled here
                        mine = mine[~self._cannot_reserve(ty, n[mine], k[mine])]
                    keep[mine[:left]] = True
                    if pol.backfill and len(mine) > left:
                        # A reservation the loop cannot make (inf) leaves the type's budget
                        # unspent, for a later row to use: the rows from the first one beyond
                        # the budget on are decided in the next block, once the loop has tried.
                        cut = min(cut, int(mine[left]))
        if cut < m:
            rows, keep, why = rows[:cut], keep[:cut], why[:cut]
            if self.ent is not None and tier_a:
                dem = dem[:cut]
        if self.ent is not None and tier_a:
            self.out.demoted.extend(rows[dem].tolist())
        if fifo and self.ent is None and keep.any():
            self._fifo_cut(t, a, nofit, keep, why)
        drop = ~keep
        self.reason[rows[drop]] = why[drop]
        if self.heads:  # a head held here waits for this pass: its claim holds from now on
            held_heads = rows[drop & self.head_row[rows]]
            self.claim_live[self.st[held_heads]] = True
        return rows[keep], cut

    def _fifo_cut(self, t: np.ndarray, a: np.ndarray, nofit: np.ndarray, keep: np.ndarray,
                  why: np.ndarray) -> None:
        """Without backfill a type is blocked by its first row that cannot start, at the latest
        by the first kept row whose accelerators, added to those of the kept rows before it,
        exceed the type's free total. Every later row of the type is held for priority, as the
        loop would hold it, and need not reach the loop."""
        tot = np.bincount(self.fs.fleet.type_idx, weights=self.fs.free, minlength=self.n_t)
        for ty in np.unique(t[keep]).tolist():
            mine = t == ty
            pos = np.flatnonzero(keep & mine)
            over = np.flatnonzero(np.cumsum(a[pos]) > tot[ty])
            cut = int(pos[over[0]]) if len(over) else len(t)
            first_nofit = np.flatnonzero(nofit & mine)
            if len(first_nofit):
                cut = min(cut, int(first_nofit[0]))
            mine[:cut + 1] = False
            keep &= ~mine
            why[mine] = _PRIORITY

    def run(self, rows: np.ndarray, tier_a: bool) -> None:
        """Blocks grow while few of their rows reach the loop (the fleet is filling up) and
        shrink while many do, so that the filter stays fresh where starts happen."""
        b, size = 0, _BLOCK
        while b < len(rows):
            if self.all_blocked():  # FIFO: every row left is held behind its type's head
                self.reason[rows[b:]] = _PRIORITY
                return
            blk = rows[b:b + size]
            if self.heads:  # a block ends at a head not reached yet: the rows behind it are
                # filtered once its claim is settled (it started, or holds from then on)
                waiting = self.head_row[blk] & ~self.claim_live[self.st[blk]]
                if waiting.any():
                    blk = blk[:int(np.argmax(waiting)) + 1]
            cand, done = self.candidates(blk, tier_a)
            if len(cand):
                self.loop(cand, tier_a)
            b += done
            size = size * 4 if len(cand) * 8 < done else max(_BLOCK, size // 2)

    def all_blocked(self) -> bool:
        """Without backfill, once every type with rows in the walk is blocked nothing else can
        start: each remaining row is held for priority, as the filter and the loop would."""
        return not self.policy.backfill and self.open_types == 0

    def _block(self, t: int) -> None:
        if not self.blocked_type[t]:
            self.blocked_type[t] = True
            if t in self.walk_types:
                self.open_types -= 1

    def loop(self, rows: np.ndarray, tier_a: bool) -> None:
        """Rules 2, 6, 7, 9 for each row in order."""
        fs, reason, pol, out = self.fs, self.reason, self.policy, self.out
        backfill, fifo = pol.backfill, not pol.backfill
        R_max = pol.reservations_per_type
        ent = self.ent is not None
        blocked, fail_sub, resv_max, res_count = (self.blocked_type, fs.fail_sub, fs.resv_max,
                                                  self.res_count)
        PRIORITY, RESOURCES, NONE = _PRIORITY, _RESOURCES, _NONE
        out.walked += len(rows)
        rl = rows.tolist()
        m = len(rl)
        cols = list(zip(rl, self.t[rows].tolist(), self.n[rows].tolist(),
                        self.k[rows].tolist(), self.a[rows].tolist(), self.end[rows].tolist(),
                        self.rel[rows].tolist(), self.s[rows].tolist(), strict=True))
        # A row the entitlement check holds under the current state is held the same way when
        # it is reached (use only grows and quotas only shrink within a cycle), so after a streak
        # of such rows (a start used up its sector's room) the next window of rows is checked on
        # arrays and its held rows are handled in bulk: only the others are walked one by one.
        # Rows demoted from tier A are appended in row order, each run before the next row
        # walked (the order of the demoted decides their place among tier B).
        bulk = ent and not fifo
        todo: Iterator[int] = iter(range(m))  # positions still to walk, ascending
        flushed = 0  # rows before this position are handled
        streak = 0  # consecutive rows walked one by one that the entitlement check held
        recheck = False
        dwl = self.dw
        heads, n_t = self.heads, self.n_t
        while True:
            if recheck:
                recheck, streak = False, 0
                hi = min(m, flushed + _BULK_WINDOW)
                held = self._held(rows[flushed:hi], tier_a)
                if held.any():
                    todo = itertools.chain((np.flatnonzero(~held) + flushed).tolist(),
                                           range(hi, m))
                    if not tier_a:
                        reason[rows[flushed:hi][held]] = _ENTITLEMENT
            for i in todo:
                if i > flushed and tier_a:
                    out.demoted.extend(rl[flushed:i])  # a run held in bulk
                flushed = i + 1
                j, t, n, k, a, end, rel, s = cols[i]
                if heads and not tier_a and heads.get(s * n_t + t) == j:
                    self.claim_live[s * n_t + t] = True  # reached: it starts or waits (pass)
                if fifo and blocked[t]:
                    reason[j] = PRIORITY
                    if self.open_types == 0:  # every type blocked: the rest are held likewise
                        reason[rl[i + 1:]] = PRIORITY
                        return
                    continue
                borrow = 0.0
                if ent:
                    room = self.cap[s][t] - self.used[s][t]
                    claimed = False
                    if heads:  # strict sector queueing: nothing passes the head (rule 1)
                        h = heads.get(s * n_t + t, -1)
                        claimed = h >= 0 and h != j and self._behind(j, h)
                    borrow = a - (room if room > 0 and not claimed else 0.0)
                    if borrow > 1e-9:
                        held_here = tier_a or claimed or borrow > self._limit(s, t) + 1e-9
                        if held_here:
                            if tier_a:
                                out.demoted.append(j)  # rule 1: now beyond its entitlement, B
                            else:
                                reason[j] = _ENTITLEMENT
                            streak += 1
                            if bulk and streak >= _STREAK and m - flushed >= _BULK_MIN:
                                recheck = True
                                break
                            continue
                    else:
                        borrow = 0.0
                    streak = 0
                dw = a * dwl[t]
                if dw > self.headroom:
                    reason[j] = _POWER_CAP
                    if fifo:
                        self._block(t)
                    continue
                if n == 1:
                    # A shape no larger, ending no sooner, that already failed this cycle fails
                    # again without a search, and the memo needs no update (it is non-increasing
                    # in the shape).
                    known_failure = end >= fail_sub[t][k]
                    node = -1 if known_failure else fs.find_sub(t, k, end)
                    if node < 0:
                        if not known_failure:
                            fs.remember_sub_failure(t, k, end)
                        reason[j] = PRIORITY if k <= resv_max[t] else RESOURCES
                        if backfill and res_count[t] < R_max and k < self.resv_fail_sub[t]:
                            self._reserve(j, fs.reserve_sub(t, k), k)
                        if fifo:
                            self._block(t)
                        else:
                            blocked[t] = True
                        continue
                    fs.take(node, k, end, rel)
                    placement: tuple[tuple[int, int], ...] = ((node, k),)
                else:
                    nodes = fs.find_gang(t, n, k, end)
                    if nodes is None:
                        reason[j] = PRIORITY if fs.whole_free(t) >= n else RESOURCES
                        if backfill and res_count[t] < R_max and not any(
                                n >= n0 and k >= k0 for n0, k0 in self.resv_fail_gang[t]):
                            self._reserve(j, fs.reserve_gang(t, n, k), -1)
                        if fifo:
                            self._block(t)
                        else:
                            blocked[t] = True
                        continue
                    nl = nodes.tolist()
                    for nd in nl:
                        fs.take(nd, fs.freel[nd], end, rel)  # whole nodes (rule 6)
                    placement = tuple((nd, k) for nd in nl)
                self.headroom -= dw
                self.added_w += dw
                reason[j] = NONE
                lender = -1
                if ent:
                    if heads:
                        st_ = s * n_t + t
                        if heads.get(st_) == j:
                            del heads[st_]  # the head starts: its claim ends
                            self.head_of[st_] = -1
                    self.used[s][t] += a
                    if borrow > 0:
                        lender = self._lend(s, t, borrow)
                        out.borrowed += 1
                        if lender >= 0:
                            out.lent_to.append((s, lender, t, a))
                    self._own_use(s, t)
                out.starts.append(Start(int(self.snap.pending.id[j]), placement, borrow > 0,
                                        lender))
            else:
                break
        if tier_a and flushed < m:
            out.demoted.extend(rl[flushed:])  # the run held in bulk after the last row walked

    def _held(self, rows: np.ndarray, tier_a: bool) -> np.ndarray:
        """Bool per row: held by the entitlement check of :meth:`loop` under the current state
        (demoted from tier A; in tier B, beyond what the sector may borrow): the same
        arithmetic as the loop's, on arrays."""
        st = self.st[rows]
        assert self.ent is not None
        room = (self.ent.cap - np.array(self.used)).ravel()[st]
        claimed = None
        if self.heads:
            room, claimed = self._claim_rooms(rows, room)
        borrow = self.a[rows] - np.maximum(room, 0.0)
        over = borrow > 1e-9
        if tier_a:
            return over
        held = over & (borrow > self._limits().ravel()[st] + 1e-9)
        if claimed is not None:  # a head is walked: its claim holds from there on
            held = (held | claimed) & ~self.head_row[rows]
        return held

    def _lendable_to(self, s: int, t: int) -> float:
        """Accelerators of type ``t`` still lendable to sector ``s``: the pool's and every other
        sector's."""
        return self.pool[t] + sum(x[t] for i, x in enumerate(self.lendable) if i != s)

    def _limit(self, s: int, t: int) -> float:
        """What sector ``s`` may borrow of type ``t`` now: what is still lendable to it, and in
        the first pass no more than its quota."""
        left = self._lendable_to(s, t)
        return left if self.conserving else min(self.quota[s][t], left)

    def _limits(self) -> np.ndarray:
        """:meth:`_limit` for every (sector, type), [S, T]."""
        lend = np.array(self.lendable)
        left = np.array(self.pool)[None, :] + lend.sum(axis=0)[None, :] - lend
        return left if self.conserving else np.minimum(np.array(self.quota), left)

    def _own_use(self, s: int, t: int) -> None:
        """A sector that starts a job on its own entitled capacity has that much less idle to
        lend (rule 2: lendable = min(idle, lend limit) − lent)."""
        idle = self.cap[s][t] - self.used[s][t]
        left = min(idle if idle > 0 else 0.0, self.lend_cap[s][t]) - self.lent[s][t]
        left = left if left > 0 else 0.0
        if left < self.lendable[s][t]:
            self.lendable[s][t] = left

    def _cannot_reserve(self, t: int, n: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Bool per shape (``n`` nodes × ``k``) of type ``t``: no reservation can be made for
        it any more this cycle (one of no larger shape failed)."""
        out = (n == 1) & (k >= self.resv_fail_sub[t])
        for n0, k0 in self.resv_fail_gang[t]:
            out |= (n > 1) & (n >= n0) & (k >= k0)
        return out

    def _reserve(self, j: int, start: float, need: int) -> None:
        t = int(self.t[j])
        if start == INF:
            if need > 0:
                self.resv_fail_sub[t] = min(self.resv_fail_sub[t], need)
            else:
                self.resv_fail_gang[t].append((int(self.n[j]), int(self.k[j])))
            return
        self.res_count[t] += 1
        nodes = self.fs.last_reserved
        need = need if need > 0 else int(self.fs.cap[nodes[0]])
        self.out.reservations.append(Reservation(int(self.snap.pending.id[j]), start, nodes,
                                                 need))

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
            self.lent[x][t] += got
            amount -= got
            if got > best_amt:
                best, best_amt = x, got
        return best


def walk(snap: Snapshot, policy: Policy, prep: Prepared, od: Ordered, fs: FreeState,
         reason: np.ndarray) -> Walked:
    """Step 4. Rows go through in blocks: a vectorised filter decides the rows that cannot start
    under the current state (free capacity, quota and power only shrink within a cycle, so the
    decision is final) and the per-job loop takes the rest, in order. The first blocked rows of
    each type still reach the loop, to take reservations (rule 7)."""
    order = od.order
    w = _Walk(snap, policy, prep, od, fs, reason)
    if not policy.backfill and len(order):
        w.walk_types = set(np.flatnonzero(np.bincount(w.t[order])).tolist())
        w.open_types = len(w.walk_types)
    if od.ent is not None:
        tier = od.tier_a[order]
        a_rows = order[tier]
        w.claims_for_pass(a_rows)
        w.run(a_rows, tier_a=True)
        b_rows = order[~tier]
        if w.out.demoted:
            dem = np.array(w.out.demoted, dtype=np.int64)
            dkey = od.key[dem] + 3 * _TIER  # ordered among tier B as if never tier A
            # ties in row order, as the walk's sort breaks them (the filter and the loop append
            # demoted rows in different orders)
            srt = np.lexsort((dem, dkey))
            dem, dkey = dem[srt], dkey[srt]
            pos = np.searchsorted(od.key[b_rows], dkey, side="right")
            b_rows = np.insert(b_rows, pos, dem)
        w.claims_for_pass(b_rows)
        w.run(b_rows, tier_a=False)
        # Rule 2, second pass: quotas split idle capacity among the sectors that want it, but a
        # sector whose jobs are each larger than its quota leaves its part idle, and two such
        # sectors would leave a whole fleet idle for ever. The jobs held for their quota are
        # walked again, in priority order, against what is still lendable.
        held = b_rows[reason[b_rows] == _ENTITLEMENT]
        if len(held):  # (a type with nothing left to lend holds its rows as the pass would;
            # without backfill, so does a type already blocked: they keep their reason)
            lendable = np.array(w.pool) + np.array(w.lendable).sum(axis=0)
            live = lendable > 0
            if not policy.backfill:
                live &= ~np.array(w.blocked_type)
            held = held[live[w.t[held]]]
        if len(held):
            w.conserving = True
            w.claims_for_pass(held)
            w.run(held, tier_a=False)
        if w.heads:
            w.claimed_reasons(b_rows)
    else:
        w.run(order, tier_a=False)
    w.out.power_w = prep.power_w + w.added_w
    if od.ent is not None:
        w.out.used = np.array(w.used)
        w.out.loans = _loans_after(w, prep)
    return w.out


def _loans_after(w: _Walk, prep: Prepared) -> np.ndarray:
    """Rule 2: the loans in force once this cycle's starts run, [lender, borrower], for the
    caller to integrate until the next cycle. The same split as at the start of the cycle, on
    the use after the starts, with each borrowed start counted for the lender it names (its
    whole size, as the running table will show it)."""
    ent = w.ent
    assert ent is not None
    if not w.out.starts:
        return np.array(ent.loans)
    named = ent.named
    if named is not None and w.out.lent_to:
        named = [[row[:] for row in m] for m in named]
        for s, lender, t, a in w.out.lent_to:
            named[s][lender][t] += a
    return np.array(split_loans(named, w.used, w.cap, prep.type_cap.tolist(),
                                w.lend_cap).pairs)


# 5. preempt ----------------------------------------------------------------------------------
class _Allocs:
    """The running table's allocation (CSR) as Python lists, built on first use only."""

    def __init__(self, run: JobTable) -> None:
        self.run = run
        self._lists: tuple[list[int], list[int], list[int]] | None = None

    def lists(self) -> tuple[list[int], list[int], list[int]]:
        if self._lists is None:
            r = self.run
            self._lists = (r.alloc_ptr.tolist(), r.alloc_node.tolist(), r.alloc_count.tolist())
        return self._lists


class _Reclaim:
    """An incremental what-if over one pool of victims, in preemption order (rule 8).

    ``avail[n]`` is what node ``n`` would have free if every victim examined so far stopped,
    minus what earlier jobs of this step already claimed; each victim is examined once."""

    def __init__(self, pool: list[int], alloc: _Allocs, fs: FreeState, up: list[bool],
                 cap: list[int], skip: set[int] | None = None) -> None:
        self.pool, self.ptr = pool, 0
        self.skip = skip or set()  # nodes another step already counts on
        self.alloc, self.fs, self.up, self.cap = alloc, fs, up, cap
        self.avail: dict[int, int] = {}
        self.waiting: dict[int, list[int]] = {}
        self.heap: list[tuple[int, int]] = []
        self.whole: list[int] = []
        self.chosen: set[int] = set()
        self.claimed: set[int] = set()  # nodes on which a job of this step counts

    def _examine(self) -> bool:
        if self.ptr >= len(self.pool):
            return False
        v = self.pool[self.ptr]
        self.ptr += 1
        ptr, node, count = self.alloc.lists()
        freel = self.fs.freel
        for i in range(ptr[v], ptr[v + 1]):
            nd = node[i]
            if not self.up[nd] or nd in self.skip:
                continue
            a = self.avail.get(nd, freel[nd]) + count[i]
            self.avail[nd] = a
            self.waiting.setdefault(nd, []).append(v)
            heapq.heappush(self.heap, (-a, nd))
            if a == self.cap[nd]:
                self.whole.append(nd)
        return True

    def _take(self, nodes: list[int]) -> list[int]:
        out: list[int] = []
        for nd in nodes:
            for v in self.waiting.pop(nd, []):
                if v not in self.chosen:
                    self.chosen.add(v)
                    out.append(v)
        return out

    def for_one(self, k: int) -> list[int]:
        """Victims that free ``k`` accelerators on one node ([] when none can)."""
        while True:
            while self.heap and -self.heap[0][0] != self.avail.get(self.heap[0][1]):
                heapq.heappop(self.heap)
            if self.heap and -self.heap[0][0] >= k:
                nd = self.heap[0][1]
                break
            if not self._examine():
                return []
        victims = self._take([nd])
        self.claimed.add(nd)
        self.avail[nd] -= k
        heapq.heappush(self.heap, (-self.avail[nd], nd))
        return victims

    def for_gang(self, nodes: int) -> list[int]:
        """Victims that free ``nodes`` whole nodes ([] when none can)."""
        self.whole = [n for n in self.whole if self.avail.get(n) == self.cap[n]]
        while len(self.whole) < nodes:
            if not self._examine():
                return []
        picked, self.whole = self.whole[:nodes], self.whole[nodes:]
        victims = self._take(picked)
        self.claimed.update(picked)
        for nd in picked:
            self.avail[nd] = 0
        return victims


def preempt(snap: Snapshot, policy: Policy, prep: Prepared, od: Ordered, fs: FreeState,
            reason: np.ndarray, walked: Walked) -> list[Preempt]:
    """Rule 8: reclaim borrowed capacity for tier-A jobs that could not start."""
    if not policy.preemption or od.ent is None or len(snap.running) == 0:
        return []
    order = od.order
    r = reason[order]
    want = od.tier_a[order] & ((r == _RESOURCES) | (r == _PRIORITY))
    if walked.demoted and want.any():
        demoted = np.zeros(len(reason), dtype=bool)
        demoted[np.array(walked.demoted, dtype=np.int64)] = True
        want &= ~demoted[order]
    want = order[want]
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
    n_sec = len(snap.tenancy.sector_names)
    pool_key = run.type_idx[cand].astype(np.int64) * (n_sec + 1) + (
        run.lender[cand].astype(np.int64) + 1 if by_lender else 0)
    up = (snap.fleet.state == NODE_UP).tolist()
    cap = fs.cap.tolist()
    alloc = _Allocs(run)
    reclaim: dict[int, _Reclaim | None] = {}

    def reclaimer(t: int, lender: int) -> _Reclaim | None:
        key = t * (n_sec + 1) + (lender + 1 if by_lender else 0)
        if key not in reclaim:
            pool = cand[pool_key == key].tolist()
            reclaim[key] = _Reclaim(pool, alloc, fs, up, cap) if pool else None
        return reclaim[key]

    room = np.maximum(ent.cap - walked.used, 0.0).tolist()
    out: list[Preempt] = []
    p = snap.pending
    names = snap.tenancy.sector_names
    whole = fs.whole_counts()
    w_t = p.type_idx[want].astype(np.int64)
    w_s = prep.project_sector[p.project[want]].astype(np.int64)
    w_n = p.nodes[want].astype(np.int64)
    w_k = p.per_node[want].astype(np.int64)
    group = w_t * (n_sec + 1) + (w_s if by_lender else n_sec)

    def serve(sel: np.ndarray, rc: _Reclaim) -> list[int]:
        """Victims from ``rc`` for the jobs at positions ``sel`` of ``want`` (priority order);
        returns the positions it found none for."""
        failed: list[int] = []
        while len(sel):
            i = int(sel[0])
            j, s, n_req, k, t = int(want[i]), int(w_s[i]), int(w_n[i]), int(w_k[i]), int(w_t[i])
            a = n_req * k
            if a > room[s][t] + 1e-9:  # no longer below entitlement for this job
                rest = sel[1:]
                rm = np.array(room)[w_s[rest], t]
                sel = rest[w_n[rest] * w_k[rest] <= rm + 1e-9]
                continue
            sel = sel[1:]
            victims = rc.for_one(k) if n_req == 1 else (
                rc.for_gang(n_req - int(whole[t])) if n_req > whole[t] else [])
            if not victims:
                # what failed fails for every larger shape: victims are only consumed
                dead = (w_n[sel] == 1) & (w_k[sel] >= k) if n_req == 1 else (w_n[sel] >= n_req)
                failed += [i, *sel[dead].tolist()]
                sel = sel[~dead]
                continue
            room[s][t] -= a
            reason[j] = R.PREEMPTING
            for v in victims:
                borrower = names[int(prep.project_sector[run.project[v]])]
                out.append(Preempt(
                    int(run.id[v]),
                    f"preempted: capacity borrowed by {borrower} is returned to {names[s]} "
                    f"(rule 8); {policy.grace_s:.0f} s to checkpoint",
                    grace_s=policy.grace_s))
        return failed

    later: list[int] = []  # jobs that its own sector's loans cannot serve
    for key in np.unique(group).tolist():
        t, lend = divmod(key, n_sec + 1)
        rc = reclaimer(t, lend)
        sel = np.flatnonzero(group == key)  # in priority order
        failed = serve(sel, rc) if rc is not None else sel.tolist()
        if by_lender:
            later += failed
    if later:
        # A sector below its entitlement whose own loans cannot hold the job takes back any
        # loan of the type: its share is then held by borrowers of other lenders' (or the
        # pool's) capacity, e.g. where a sector within its entitlement started on capacity that
        # was free while its own idle share was lent out. A sector whose own borrowers (of any
        # age, not already being taken back) could free the job's shape once they may be
        # preempted waits for them instead; one whose own borrowers could not, however long it
        # waited (they share their nodes with other loans, and a gang needs whole nodes),
        # does not. Victims and nodes already counted on above are left out.
        chosen = set().union(*(r.chosen for r in reclaim.values() if r is not None))
        claimed = set().union(*(r.claimed for r in reclaim.values() if r is not None))
        mine = np.flatnonzero(borrowed & (run.lender >= 0))
        if chosen:
            mine = mine[~np.isin(mine, list(chosen))]
        own = np.zeros((n_sec, len(snap.fleet.catalog)))
        np.add.at(own, (run.lender[mine].astype(np.int64), run.type_idx[mine].astype(np.int64)),
                  run.accelerators[mine])
        could: dict[tuple[int, int, int, int], bool] = {}  # (sector, type, nodes, per node)

        def own_loans_could(i: int) -> bool:
            s, t, n_req, k = int(w_s[i]), int(w_t[i]), int(w_n[i]), int(w_k[i])
            if n_req * k > own[s, t] + 1e-9:
                return False
            key = (s, t, n_req, k)
            if key not in could:
                pool = mine[(run.lender[mine] == s) & (run.type_idx[mine] == t)].tolist()
                rc = _Reclaim(pool, alloc, fs, up, cap, skip=claimed)  # (a what-if, apart)
                could[key] = (bool(rc.for_one(k)) if n_req == 1 else
                              n_req <= whole[t] or bool(rc.for_gang(n_req - int(whole[t]))))
            return could[key]

        pos = np.array([i for i in sorted(later)  # in priority order
                        if not own_loans_could(i)], dtype=np.int64)
        for t in np.unique(w_t[pos]).tolist():
            pool = [v for v in cand[run.type_idx[cand] == t].tolist() if v not in chosen]
            if pool:
                serve(pos[w_t[pos] == t], _Reclaim(pool, alloc, fs, up, cap, skip=claimed))
    return out


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
    fs = FreeState(snap.fleet, snap.free, snap.running, snap.now, prep.static)
    frag_before = fragmentation(snap.fleet, fs.free, prep.static)
    walked = walk(snap, pol, prep, od, fs, reason)
    preempts = preempt(snap, pol, prep, od, fs, reason, walked)
    stats = {
        "walked": float(walked.walked),
        "starts": float(len(walked.starts)),
        "preempts": float(len(preempts)),
        "reservations": float(len(walked.reservations)),
        "borrowed_starts": float(walked.borrowed),
        "fragmentation_before": frag_before,
        "fragmentation_after": fragmentation(snap.fleet, fs.free, prep.static),
        "power_w_before": prep.power_w,
        "power_w_after": walked.power_w,
        "power_available_w": float(snap.power_available_w),
    }
    n_s = len(snap.tenancy.sector_names)
    loans = walked.loans if walked.loans is not None else np.zeros((n_s, n_s))
    return Decisions(starts=walked.starts, preempts=preempts, reason=reason,
                     considered=len(snap.pending), stats=stats,
                     reservations=walked.reservations, loans=loans)

