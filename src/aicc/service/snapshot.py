"""Store → scheduler snapshot: the one place that turns rows into the scheduler's arrays.

The live loop and the start-time forecast both build snapshots here. :class:`SnapshotBuilder`
keeps what rarely changes (the fleet's shape) and what only grows (decayed usage, folded in from
new ledger rows by id) between cycles; everything else (node states, pending and running jobs,
tenancy, grant balances) is read per cycle with a handful of column queries, no ORM objects per
job. That includes the scheduling state the loop keeps in the store so that it survives a
restart: each running job's lender (the running table's ``lender`` column), preemption
notices (:attr:`StoreSnapshot.notices`) and the lending balance between sectors
(:func:`read_lending`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from aicc.allocation.live import live_grants
from aicc.catalog import Catalog, default_catalog
from aicc.fleet.arrays import NODE_STATE_NAMES, NODE_UP, FleetArrays, NodeInfo
from aicc.ledger.usage import USAGE, used_seconds_by_grant
from aicc.scheduler.fairshare import decay_usage
from aicc.scheduler.lending import accumulate_lending
from aicc.scheduler.snapshot import Grants, JobClass, JobTable, Snapshot, Tenancy
from aicc.sim.forecast import History
from aicc.store.models import (
    Grant,
    GrantState,
    Job,
    JobState,
    Leaf,
    LedgerEntry,
    LendingBalance,
    Node,
    NodeState,
    Organization,
    Pod,
    Project,
    Sector,
    SectorEntitlement,
    Site,
    node_view,
)

# The columns of a job the snapshot needs; a pending job's never change while it waits.
_COLS = (Job.id, Job.project_id, Job.accelerator_type, Job.nodes, Job.per_node,
         Job.time_limit_s, Job.job_class, Job.preemptible, Job.submitted_at, Job.grant_id,
         Job.started_at, Job.placement)
# A pending job's grant is the one it named; one the loop chose at an earlier start is chosen
# again (attach_live_grants), so a requeued job is not held by a grant spent meanwhile.
_STATIC = (*_COLS[:9], case((Job.grant_named.is_(True), Job.grant_id), else_=None))
# Running jobs only: whether the attempt borrows, and from which sector (see _lenders).
_LENDER = (Job.borrowed, Job.lender_sector_id)
_CHUNK = 5000

_STATE_CODE = {name: code for code, name in enumerate(NODE_STATE_NAMES)}
# The state reason of a node the engine no longer reports (``serve.retire_absent_nodes``): down
# for good, unlike one down for a repair, so rule 9 keeps no power back for its return.
ABSENT_REASON = "not in the engine's fleet"
_CLASS_CODE = {c.label: int(c) for c in JobClass}


def _state_code(state: NodeState | str, drained: bool) -> int:
    """The scheduler's node state from the stored health and drain: a drained node that is
    up is the scheduler's drain (no new starts, its jobs run on), a down one is down."""
    return _STATE_CODE[node_view(state, bool(drained)).value]


def ts(value: datetime | float | None) -> float:
    """Seconds since the epoch for a stored (UTC) datetime; -1 for None."""
    if value is None:
        return -1.0
    if isinstance(value, float):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(frozen=True)
class StoreSnapshot:
    """A snapshot plus the maps back from its indices to store ids."""

    snapshot: Snapshot
    project_ids: np.ndarray  # int64: index -> projects.id
    grant_ids: np.ndarray  # int64: index -> grants.id
    node_ids: np.ndarray  # int64: index -> nodes.id
    sector_ids: np.ndarray  # int64: index -> sectors.id
    # running job id -> (stop time, message) of the preemption notice it was given
    notices: dict[int, tuple[float, str]] = field(default_factory=dict)
    # [lender, borrower] accelerators the store says are lent now (rule 2; see read_lending)
    loans: np.ndarray | None = None
    # per running row, the grant it named at submission as the pending table gives it (an
    # index, one past the grants where that grant is not active) or -1 where it named none (its
    # grant was chosen at its start, and is chosen again if it is requeued): what the forecast's
    # fork needs to requeue it as the loop would
    running_named_grant: np.ndarray | None = None

    @property
    def fleet(self) -> FleetArrays:
        return self.snapshot.fleet


def load_fleet(session: Session, catalog: Catalog | None = None) -> tuple[FleetArrays,
                                                                          np.ndarray]:
    """The stored nodes as arrays (ordered by id), with their ids."""
    catalog = catalog or default_catalog()
    rows = session.execute(
        select(Node.id, Node.name, Node.accelerator_type, Node.accelerators, Leaf.name,
               Pod.name, Site.name, Node.state, Node.drained)
        .join(Leaf, Node.leaf_id == Leaf.id).join(Pod, Leaf.pod_id == Pod.id)
        .join(Site, Pod.site_id == Site.id).order_by(Node.id)).all()
    infos = [NodeInfo(r[1], r[2], int(r[3]), f"{r[6]}/{r[5]}/{r[4]}", f"{r[6]}/{r[5]}", r[6])
             for r in rows]
    states = [_state_code(r[7], r[8]) for r in rows]
    fleet = FleetArrays.from_nodes(catalog, infos, states)
    return fleet, np.array([r[0] for r in rows], dtype=np.int64)


def _index_of(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in the sorted ``ids`` (-1 where absent)."""
    if len(ids) == 0:
        return np.full(len(values), -1, dtype=np.int32)
    pos = np.searchsorted(ids, values).clip(0, len(ids) - 1)
    return np.where(ids[pos] == values, pos, -1).astype(np.int32)


def _lenders(rows: list, sector_ids: np.ndarray) -> np.ndarray:
    """The running table's ``lender`` column from the stored ``borrowed`` and
    ``lender_sector_id`` (the last two columns of each row): a sector index per row, -1 where not
    borrowed from a sector. Empty ("unknown": the scheduler derives borrowing from usage) while
    any running job has no recorded lender, as one running since before the store kept it."""
    if not rows or any(r[-2] is None for r in rows):
        return np.zeros(0, dtype=np.int16)
    ids = np.array([-1 if r[-1] is None else r[-1] for r in rows], dtype=np.int64)
    return np.where(ids >= 0, _index_of(sector_ids, ids), -1).astype(np.int16)


@dataclass(frozen=True)
class Lending:
    """The stored lending balance brought to a time (rule 2), indexed like ``sector_ids``."""

    balance_s: np.ndarray  # [lender, borrower] accelerator-seconds lent, decayed, at ``now``
    loans: np.ndarray  # [lender, borrower] accelerators lent from the last write on
    rows: int  # stored pairs


def read_lending(session: Session, sector_ids: np.ndarray, now: float, half_life_s: float
                 ) -> Lending:
    """The lending balance at ``now``: each stored pair's balance at its ``at``, decayed, plus
    its loan integrated from ``at`` to ``now`` (``accumulate_lending``, the simulator's rule).
    The control plane writes the pairs only when the loans change, so the time since is one
    stretch of constant loans; after a restart that includes the time the control plane was
    down, during which the jobs that held the loans are taken to have run on. Pairs of sectors
    no longer in ``sector_ids`` are left out."""
    n = len(sector_ids)
    bal, loans = np.zeros((n, n)), np.zeros((n, n))
    rows = session.execute(select(LendingBalance.lender_sector_id,
                                  LendingBalance.borrower_sector_id, LendingBalance.balance_s,
                                  LendingBalance.loan, LendingBalance.at)).all()
    for lender, borrower, balance_s, loan, at in rows:
        i, j = _index_of(sector_ids, np.array([lender, borrower], dtype=np.int64)).tolist()
        if i < 0 or j < 0:
            continue
        bal[i, j] = float(accumulate_lending(np.float64(balance_s), np.float64(loan),
                                             max(0.0, now - ts(at)), half_life_s))
        loans[i, j] = loan
    return Lending(balance_s=bal, loans=loans, rows=len(rows))


def write_lending(session: Session, sector_ids: np.ndarray, balance_s: np.ndarray,
                  loans: np.ndarray, now: float) -> None:
    """Store the balance at ``now`` and the loans from ``now`` on (the caller's transaction:
    the cycle's). Every pair is rewritten at once, so they all share ``at``; a pair with
    nothing lent and less than an accelerator-second left is dropped."""
    session.execute(delete(LendingBalance))
    at = dt(now)
    rows = [{"lender_sector_id": int(sector_ids[i]), "borrower_sector_id": int(sector_ids[j]),
             "balance_s": max(0.0, float(balance_s[i, j])), "loan": max(0.0, float(loans[i, j])),
             "at": at}
            for i, j in zip(*np.nonzero((balance_s >= 1.0) | (loans > 0)), strict=True)
            if i != j]
    if rows:
        session.execute(insert(LendingBalance), rows)


def attach_live_grants(pending: JobTable, grants: Grants, now: float) -> int:
    """Give every pending job that named no grant its project's live grant for its type
    (:func:`aicc.allocation.live.live_grants`), so that it is paced and held like any other and
    charged to that grant once it starts (docs/api.md). A job whose project has no such grant
    keeps -1: the scheduler holds it when the policy requires a grant. Returns how many jobs
    got a grant."""
    loose = np.flatnonzero(pending.grant < 0)
    if not len(loose):
        return 0
    got = live_grants(pending.project[loose], pending.type_idx[loose], grants, now)
    pending.grant[loose] = got
    return int((got >= 0).sum())


class SnapshotBuilder:
    """Builds :class:`StoreSnapshot` s; see the module docstring for what is cached."""

    def __init__(self, catalog: Catalog | None = None, *, half_life_s: float = 7 * 86400.0
                 ) -> None:
        self.catalog = catalog or default_catalog()
        self.half_life_s = half_life_s
        # Accelerator power the site allows (rule 9, docs/design/0001-scheduling.md).
        self.power_available_w = float("inf")
        self._fleet: FleetArrays | None = None
        self.returns = np.zeros(0, dtype=bool)  # per node: not retired (see fleet())
        self._node_ids = np.zeros(0, dtype=np.int64)
        self._node_index: dict[str, int] = {}
        self._usage: dict[int, float] = {}  # project id -> decayed accelerator-seconds
        self._usage_at: float | None = None
        self._ledger_seen = 0  # highest ledger id folded into _usage
        self._pending: dict[int, tuple] = {}  # pending job id -> its static columns

    def _pending_rows(self, conn) -> list[tuple]:
        """Pending jobs' rows: one integer query per cycle; only jobs not seen pending before
        (new submissions, requeued jobs) are read in full."""
        ids = conn.execute(select(Job.id).where(Job.state == JobState.PENDING)
                           .order_by(Job.id)).scalars().all()
        cache = self._pending
        missing = [i for i in ids if i not in cache]
        for k in range(0, len(missing), _CHUNK):
            part = missing[k:k + _CHUNK]
            for row in conn.execute(select(*_STATIC).where(Job.id.in_(part))).all():
                cache[row[0]] = (*row[:8], ts(row[8]), row[9], None, None)
        if len(cache) > len(ids):
            keep = set(ids)
            self._pending = cache = {i: r for i, r in cache.items() if i in keep}
        return [cache[i] for i in ids if i in cache]

    # --- fleet --------------------------------------------------------------------------------

    def fleet(self, session: Session) -> FleetArrays:
        """The cached fleet shape, with node states read fresh."""
        count, top = session.execute(select(func.count(Node.id), func.max(Node.id))).one()
        if (self._fleet is None or count != self._fleet.n_nodes
                or (count and int(top) != int(self._node_ids[-1]))):
            self._fleet, self._node_ids = load_fleet(session, self.catalog)
            self._node_index = self._fleet.node_index()
        states = session.execute(select(Node.state, Node.drained, Node.state_reason)
                                 .order_by(Node.id)).all()
        self._fleet.state = np.array([_state_code(s, d) for s, d, _ in states], dtype=np.int8)
        # (rule 9: a node retired from the engine's fleet will not come back drawing power)
        self.returns = np.array([r != ABSENT_REASON for _, _, r in states], dtype=bool)
        return self._fleet

    def node_index(self) -> dict[str, int]:
        return self._node_index

    # --- usage --------------------------------------------------------------------------------

    def _decayed_usage(self, session: Session, now: float) -> dict[int, float]:
        if self._usage_at is not None and now > self._usage_at:
            factor = float(decay_usage(1.0, now - self._usage_at, self.half_life_s))
            self._usage = {p: u * factor for p, u in self._usage.items()}
        self._usage_at = now if self._usage_at is None else max(now, self._usage_at)
        rows = session.execute(
            select(LedgerEntry.id, LedgerEntry.project_id, LedgerEntry.accelerator_seconds,
                   LedgerEntry.period_end)
            .where(LedgerEntry.id > self._ledger_seen, LedgerEntry.kind == USAGE)
            .order_by(LedgerEntry.id)).all()
        for lid, pid, acc_s, end in rows:
            age = max(0.0, now - ts(end))
            self._usage[pid] = self._usage.get(pid, 0.0) + float(
                decay_usage(float(acc_s), age, self.half_life_s))
            self._ledger_seen = max(self._ledger_seen, int(lid))
        return self._usage

    # --- the snapshot -------------------------------------------------------------------------

    def build(self, session: Session, now: float, *, attach_grants: bool = True
              ) -> StoreSnapshot:
        """The live state at ``now``. ``attach_grants=False`` leaves the pending jobs submitted
        without a grant at -1: a fork (the start-time forecast) resolves them itself at each
        of its cycles, as the service does at each of its own."""
        fleet = self.fleet(session)
        cat = self.catalog
        n_types = len(cat)

        # Tenancy: sectors -> organizations -> projects, each ordered by id.
        sectors = session.execute(select(Sector.id, Sector.name, Sector.lend_limit)
                                  .order_by(Sector.id)).all()
        sector_ids = np.array([s[0] for s in sectors], dtype=np.int64)
        entitlement = np.zeros((len(sectors), n_types))
        for sid, type_name, share in session.execute(
                select(SectorEntitlement.sector_id, SectorEntitlement.accelerator_type,
                       SectorEntitlement.share)).all():
            if type_name in cat:
                entitlement[_index_of(sector_ids, np.array([sid]))[0], cat.index(type_name)] = share
        orgs = session.execute(select(Organization.id, Organization.name, Organization.sector_id,
                                      Organization.weight).order_by(Organization.id)).all()
        org_ids = np.array([o[0] for o in orgs], dtype=np.int64)
        projects = session.execute(select(Project.id, Project.name, Project.organization_id,
                                          Project.weight).order_by(Project.id)).all()
        project_ids = np.array([p[0] for p in projects], dtype=np.int64)
        tenancy = Tenancy(
            sector_names=[s[1] for s in sectors],
            entitlement=entitlement,
            org_names=[o[1] for o in orgs],
            org_sector=_index_of(sector_ids, np.array([o[2] for o in orgs], dtype=np.int64)),
            org_weight=np.array([o[3] for o in orgs], dtype=np.float64),
            project_names=[p[1] for p in projects],
            project_org=_index_of(org_ids, np.array([p[2] for p in projects], dtype=np.int64)),
            project_weight=np.array([p[3] for p in projects], dtype=np.float64),
            lend_limit=np.array([s[2] for s in sectors], dtype=np.float64),
        )

        # Jobs: one column query each for running and pending.
        conn = session.connection()
        running_rows = conn.execute(select(*_COLS, Job.grant_named, *_LENDER)
                                    .where(Job.state == JobState.RUNNING)
                                    .order_by(Job.id)).all()
        notices = {int(j): (ts(at), msg or "") for j, at, msg in conn.execute(
            select(Job.id, Job.preempt_at, Job.preempt_message)
            .where(Job.state == JobState.RUNNING, Job.preempt_at.is_not(None))).all()}
        pending_rows = self._pending_rows(conn)

        # Grants: active ones; used = charged so far + what running jobs have accrued.
        grants = session.execute(
            select(Grant.id, Grant.project_id, Grant.accelerator_type, Grant.accelerator_hours,
                   Grant.start, Grant.end).where(Grant.state == GrantState.ACTIVE)
            .order_by(Grant.id)).all()
        grant_ids = np.array([g[0] for g in grants], dtype=np.int64)
        used = used_seconds_by_grant(session) if grants else {}
        used_s = np.array([used.get(g[0], 0.0) for g in grants], dtype=np.float64)

        running = self._table(running_rows, project_ids, grant_ids, with_alloc=True)
        running.lender = _lenders(running_rows, sector_ids)
        pending = self._table(pending_rows, project_ids, grant_ids, with_alloc=False,
                              not_live=len(grant_ids))

        accrued = running.accelerators * np.maximum(0.0, now - running.start_time)
        if len(grant_ids) and len(running):
            has = running.grant >= 0
            np.add.at(used_s, running.grant[has], accrued[has])
        grant_arrays = Grants(
            project=_index_of(project_ids, np.array([g[1] for g in grants], dtype=np.int64)),
            type_idx=np.array([cat.index(g[2]) if g[2] in cat else -1 for g in grants],
                              dtype=np.int16),
            total_s=np.array([g[3] * 3600.0 for g in grants], dtype=np.float64),
            used_s=used_s,
            start=np.array([ts(g[4]) for g in grants], dtype=np.float64),
            end=np.array([ts(g[5]) for g in grants], dtype=np.float64),
        )

        if attach_grants:
            attach_live_grants(pending, grant_arrays, now)

        usage = self._decayed_usage(session, now)
        usage_arr = np.array([usage.get(int(p), 0.0) for p in project_ids], dtype=np.float64)
        if len(running) and len(project_ids):
            ok = running.project >= 0
            np.add.at(usage_arr, running.project[ok], accrued[ok])

        free = fleet.capacity.astype(np.int32).copy()
        if len(running.alloc_node):
            np.subtract.at(free, running.alloc_node, running.alloc_count)
        free = np.where(fleet.state == NODE_UP, np.maximum(free, 0), 0).astype(np.int16)

        lending = read_lending(session, sector_ids, now, self.half_life_s)
        snap = Snapshot(now=now, fleet=fleet, free=free, running=running, pending=pending,
                        down_returns=self.returns.copy(),
                        tenancy=tenancy, grants=grant_arrays, usage_decayed_s=usage_arr,
                        power_available_w=self.power_available_w,
                        lending_balance_s=lending.balance_s if lending.rows else None)
        named = np.array([bool(r[len(_COLS)]) for r in running_rows], dtype=bool)
        named_grant = np.where(named, np.where(running.grant >= 0, running.grant,
                                               len(grant_ids)), -1).astype(np.int32)
        return StoreSnapshot(snap, project_ids, grant_ids, self._node_ids.copy(), sector_ids,
                             notices, lending.loans, named_grant)

    def history(self, session: Session, built: StoreSnapshot, now: float,
                window_s: float) -> History:
        """Jobs submitted in ``[now - window_s, now)``, the start-time forecast's model of what
        will arrive (``aicc.sim.forecast``), indexed like ``built``. A job that ran and ended
        counts with the time it ran; one still pending or running with its limit; one that
        ended without starting (cancelled in the queue) is left out, as it used no capacity.
        ``since`` is the store's first submission, so a young center is not taken for an idle
        one. Each replayed job comes without a grant (-1): a new submission of its project and
        type, it takes the grant live when it arrives again (the fork resolves it), not the
        one the original was charged to, which may have ended since."""
        cond = (Job.submitted_at >= dt(now - window_s), Job.submitted_at < dt(now))
        rows = session.connection().execute(
            select(*_COLS[:11], Job.ended_at, Job.state).where(*cond).order_by(Job.id)).all()
        first = session.execute(select(func.min(Job.submitted_at))).scalar()
        live = (JobState.PENDING, JobState.RUNNING)
        rows = [r for r in rows if r[-1] in live or r[10] is not None]
        t = self._table([(*r[:11], None) for r in rows], built.project_ids, built.grant_ids,
                        with_alloc=False)
        ended = np.array([r[-1] not in live for r in rows], dtype=bool)
        ran = np.array([ts(r[11]) for r in rows], dtype=np.float64) - t.start_time
        runtime = np.where(ended, np.maximum(ran, 1.0), t.time_limit_s)
        return History(t.submit_time, runtime, t.project.astype(np.int32), t.type_idx,
                       t.nodes, t.per_node, t.time_limit_s, t.job_class, t.preemptible,
                       t.expected_runtime_s, np.full(len(t), -1, dtype=np.int32),
                       since=ts(first) if first is not None else now)

    def _table(self, rows: list, project_ids: np.ndarray, grant_ids: np.ndarray, *,
               with_alloc: bool, not_live: int = -1) -> JobTable:
        """The rows as a job table. A grant that is not among ``grant_ids`` (the active ones)
        becomes ``not_live``: -1 (none) for running jobs, whose charge the ledger settles; for
        pending ones an index past the grants, which the scheduler holds as ``no_grant``, so
        that a job naming a suspended grant waits for it instead of running on another."""
        n = len(rows)
        cat = self.catalog
        col = list(zip(*rows, strict=True)) if n else [()] * 12
        ids = np.array(col[0], dtype=np.int64)
        grant_col = np.array([-1 if g is None else g for g in col[9]], dtype=np.int64)
        grant_at = _index_of(grant_ids, grant_col)
        t = JobTable(
            id=ids,
            project=_index_of(project_ids, np.array(col[1], dtype=np.int64)),
            type_idx=np.array([cat.index(x) for x in col[2]], dtype=np.int16),
            nodes=np.array(col[3], dtype=np.int32),
            per_node=np.array(col[4], dtype=np.int32),
            time_limit_s=np.array(col[5], dtype=np.float64),
            job_class=np.array([_CLASS_CODE[str(getattr(c, "value", c))] for c in col[6]],
                               dtype=np.int8),
            preemptible=np.array(col[7], dtype=bool),
            submit_time=np.array([ts(x) for x in col[8]], dtype=np.float64),
            grant=np.where(grant_col < 0, -1, np.where(grant_at >= 0, grant_at, not_live)
                           ).astype(np.int32),
            start_time=np.array([ts(x) for x in col[10]], dtype=np.float64),
            expected_runtime_s=np.full(n, -1.0),
        )
        if with_alloc:
            index = self._node_index
            ptr = [0]
            nodes: list[int] = []
            counts: list[int] = []
            for r in range(n):
                for name in col[11][r] or ():
                    i = index.get(name)
                    if i is not None:
                        nodes.append(i)
                        counts.append(int(t.per_node[r]))
                ptr.append(len(nodes))
            t.alloc_ptr = np.array(ptr, dtype=np.int64)
            t.alloc_node = np.array(nodes, dtype=np.int32)
            t.alloc_count = np.array(counts, dtype=np.int32)
        else:
            t.alloc_ptr = np.zeros(n + 1, dtype=np.int64)
        return t
