"""The scheduler's input and output types: an immutable snapshot in, decisions out.

Everything is plain data (numpy arrays and frozen dataclasses): no ORM objects, no clock, no I/O.
The live service (``service/``), the simulator (``sim/``) and the start-time forecast build a
:class:`Snapshot` and call :func:`aicc.scheduler.schedule`; all three get the same decisions
for the same snapshot.

Jobs are identified by ``int`` ids (the store's primary key, or the simulator's sequence).
Tables of jobs are structs of arrays, one row per job, so that a cycle over 100,000 pending jobs
never walks Python objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from aicc.fleet.arrays import FleetArrays


class JobClass(IntEnum):
    INTERACTIVE = 0
    BATCH = 1
    FLEXIBLE = 2

    @classmethod
    def parse(cls, name: str) -> JobClass:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


class HoldReason(IntEnum):
    """Why a pending job was not started in this cycle (a typed reason; see :func:`explain`)."""

    NONE = 0  # started
    RESOURCES = 1  # not enough free accelerators of its type (with the right shape)
    PRIORITY = 2  # resources exist but are reserved for higher-priority jobs
    GRANT_EXHAUSTED = 3  # the project has no grant balance left
    POWER_CAP = 4  # starting it would exceed the site power available
    ENTITLEMENT = 5  # tenant above its entitlement and nothing idle may be lent to it
    NODE_UNAVAILABLE = 6  # the shape fits no node in service (drained or down)
    NO_GRANT = 7  # no active grant for this accelerator type
    DEFERRED = 8  # flexible job deferred (e.g. carbon or power)
    PREEMPTING = 9  # borrowed capacity owed to its tenant is being reclaimed for it
    GRANT_INACTIVE = 10  # the grant the job named is not in force (suspended, ended, not begun)


REASON_TEXT = {
    HoldReason.NONE: "started",
    HoldReason.RESOURCES: "waiting for {shape} accelerators of type {type} to become free",
    HoldReason.PRIORITY: "resources are reserved for higher-priority jobs",
    HoldReason.GRANT_EXHAUSTED: "the project's grant for {type} is exhausted",
    HoldReason.POWER_CAP: "starting it would exceed the site power cap",
    HoldReason.ENTITLEMENT: "the tenant is above its entitlement and no idle capacity can be lent",
    HoldReason.NODE_UNAVAILABLE: "no node in service can hold a gang of {shape}",
    HoldReason.NO_GRANT: "the project has no active grant for {type}",
    HoldReason.DEFERRED: "flexible job deferred to a later, cheaper window",
    HoldReason.PREEMPTING: "capacity lent by the tenant is being reclaimed; it starts when the "
                           "borrowing jobs stop",
    HoldReason.GRANT_INACTIVE: "the grant the job named for {type} is not in force (suspended, "
                               "revoked, ended or not begun); it waits for that grant: cancel "
                               "and resubmit it to use another",
}


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job, as a row builder for :class:`JobTable` (tests, simulator, service)."""

    id: int
    project: int  # index into Tenancy.project_*
    type_idx: int  # index into the fleet's catalog
    nodes: int  # whole nodes for a multi-node gang; 1 for a job within one node
    per_node: int  # accelerators on each node (for a sub-node job: its count)
    time_limit_s: float
    job_class: JobClass = JobClass.BATCH
    preemptible: bool = False
    submit_time: float = 0.0
    # index into Grants, or -1 when none; one past them names a grant that is not active (a
    # suspended one): the job is held GRANT_INACTIVE
    grant: int = -1
    start_time: float = -1.0  # running jobs only
    expected_runtime_s: float = -1.0  # a known or estimated runtime, when better than the limit
    lender: int = -1  # running jobs: sector whose capacity it borrows (Start.lender), or -1

    @property
    def accelerators(self) -> int:
        return self.nodes * self.per_node


@dataclass
class JobTable:
    """Struct of arrays, one row per job. Running tables also carry their allocation in CSR
    form: job ``r`` holds ``alloc_count[k]`` accelerators on node ``alloc_node[k]`` for ``k`` in
    ``alloc_ptr[r]:alloc_ptr[r+1]``."""

    id: np.ndarray  # int64
    project: np.ndarray  # int32
    type_idx: np.ndarray  # int16
    nodes: np.ndarray  # int32
    per_node: np.ndarray  # int32
    time_limit_s: np.ndarray  # float64
    job_class: np.ndarray  # int8 (JobClass)
    preemptible: np.ndarray  # bool
    submit_time: np.ndarray  # float64
    grant: np.ndarray  # int32 (see JobSpec.grant)
    start_time: np.ndarray  # float64 (-1 when pending)
    expected_runtime_s: np.ndarray  # float64 (-1 when unknown)
    alloc_ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    alloc_node: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    alloc_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    # running jobs: int16 lender sector per row (copied from Start.lender; -1 = not borrowed, or
    # borrowed from the unentitled pool); an empty array means unknown, and the scheduler then
    # derives borrowing from use above entitlement
    lender: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))

    def __len__(self) -> int:
        return len(self.id)

    @property
    def accelerators(self) -> np.ndarray:
        return self.nodes.astype(np.int64) * self.per_node

    def allocation(self, row: int) -> list[tuple[int, int]]:
        a, b = int(self.alloc_ptr[row]), int(self.alloc_ptr[row + 1])
        return list(zip(self.alloc_node[a:b].tolist(), self.alloc_count[a:b].tolist(), strict=True))

    @classmethod
    def empty(cls) -> JobTable:
        return cls.from_specs([])

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[JobSpec],
        allocations: Sequence[Iterable[tuple[int, int]]] | None = None,
    ) -> JobTable:
        """Build a table; ``allocations[r]`` lists (node index, accelerators) for running row r."""
        t = cls(
            id=np.fromiter((s.id for s in specs), dtype=np.int64, count=len(specs)),
            project=np.fromiter((s.project for s in specs), dtype=np.int32, count=len(specs)),
            type_idx=np.fromiter((s.type_idx for s in specs), dtype=np.int16, count=len(specs)),
            nodes=np.fromiter((s.nodes for s in specs), dtype=np.int32, count=len(specs)),
            per_node=np.fromiter((s.per_node for s in specs), dtype=np.int32, count=len(specs)),
            time_limit_s=np.fromiter((s.time_limit_s for s in specs), dtype=np.float64,
                                     count=len(specs)),
            job_class=np.fromiter((int(s.job_class) for s in specs), dtype=np.int8,
                                  count=len(specs)),
            preemptible=np.fromiter((s.preemptible for s in specs), dtype=bool, count=len(specs)),
            submit_time=np.fromiter((s.submit_time for s in specs), dtype=np.float64,
                                    count=len(specs)),
            grant=np.fromiter((s.grant for s in specs), dtype=np.int32, count=len(specs)),
            start_time=np.fromiter((s.start_time for s in specs), dtype=np.float64,
                                   count=len(specs)),
            expected_runtime_s=np.fromiter((s.expected_runtime_s for s in specs),
                                           dtype=np.float64, count=len(specs)),
            lender=np.fromiter((s.lender for s in specs), dtype=np.int16, count=len(specs)),
        )
        if allocations is not None:
            ptr = [0]
            nodes: list[int] = []
            counts: list[int] = []
            for alloc in allocations:
                for node, count in alloc:
                    nodes.append(node)
                    counts.append(count)
                ptr.append(len(nodes))
            t.alloc_ptr = np.array(ptr, dtype=np.int64)
            t.alloc_node = np.array(nodes, dtype=np.int32)
            t.alloc_count = np.array(counts, dtype=np.int32)
        else:
            t.alloc_ptr = np.zeros(len(specs) + 1, dtype=np.int64)
        return t


@dataclass(frozen=True)
class Tenancy:
    """The tenancy tree as arrays: sector → organization → project.

    ``entitlement[s, t]`` is sector ``s``'s guaranteed share (0..1) of accelerator type ``t``;
    organizations and projects share their parent's entitlement by ``*_weight``.
    ``lend_limit[s]`` caps the fraction of sector s's entitlement that may be lent out.
    """

    sector_names: list[str]
    entitlement: np.ndarray  # float64 [n_sectors, n_types]
    org_names: list[str]
    org_sector: np.ndarray  # int32
    org_weight: np.ndarray  # float64
    project_names: list[str]
    project_org: np.ndarray  # int32
    project_weight: np.ndarray  # float64
    lend_limit: np.ndarray | None = None  # float64 [n_sectors], default 1.0

    @property
    def project_sector(self) -> np.ndarray:
        return self.org_sector[self.project_org]


@dataclass(frozen=True)
class Grants:
    """Grant balances and periods, one row per grant (pacing and exhaustion)."""

    project: np.ndarray  # int32
    type_idx: np.ndarray  # int16
    total_s: np.ndarray  # float64, accelerator-seconds granted
    used_s: np.ndarray  # float64, accelerator-seconds charged so far (ledger + running)
    start: np.ndarray  # float64, seconds (same epoch as Snapshot.now)
    end: np.ndarray  # float64

    @classmethod
    def empty(cls) -> Grants:
        z = np.zeros(0)
        return cls(z.astype(np.int32), z.astype(np.int16), z, z, z, z)


@dataclass(frozen=True)
class Snapshot:
    """Everything one cycle may look at. ``now`` is seconds on the caller's clock."""

    now: float
    fleet: FleetArrays
    free: np.ndarray  # int16 [n_nodes]: free accelerators per node (0 for drained/down nodes)
    running: JobTable
    pending: JobTable
    tenancy: Tenancy
    grants: Grants
    usage_decayed_s: np.ndarray  # float64 [n_projects]: accelerator-seconds with half-life decay
    power_available_w: float = float("inf")  # site power the fleet may draw now
    # lender->borrower accelerator-seconds lent, decayed like usage ([n_sectors, n_sectors],
    # from Decisions.loans through lending.accumulate_lending); None = nothing owed
    lending_balance_s: np.ndarray | None = None
    # rule 9: bool per node, down now and expected back (a repair); its idle draw is kept out
    # of the power headroom, as it returns idle, drawing that. None: every node down may
    # return. A node gone for good (no longer in the engine's fleet) is not.
    down_returns: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Start:
    job_id: int
    placement: tuple[tuple[int, int], ...]  # (node index, accelerators on it)
    borrowed: bool = False  # runs on capacity above its sector's entitlement
    lender: int = -1  # sector index it borrows from, or -1


@dataclass(frozen=True, slots=True)
class Preempt:
    job_id: int
    message: str
    grace_s: float = 0.0  # time granted to checkpoint before it is stopped


@dataclass(frozen=True, slots=True)
class Reservation:
    """A blocked job's claim (rule 7): ``need`` accelerators on each of ``nodes`` from
    ``start`` (seconds, the snapshot's clock); backfill never delays it."""

    job_id: int
    start: float
    nodes: tuple[int, ...]
    need: int


@dataclass
class Decisions:
    """The result of one cycle. ``reason[r]`` is a :class:`HoldReason` per pending row."""

    starts: list[Start]
    preempts: list[Preempt]
    reason: np.ndarray  # int8 [n_pending]
    considered: int = 0
    stats: dict[str, float] = field(default_factory=dict)
    reservations: list[Reservation] = field(default_factory=list)
    # float64 [S, S]: accelerators sector l (row) lends to sector b (column) once this cycle's
    # starts run, all types together (rule 2); what the pool lends is owed to no sector. Zero
    # under the baselines (no entitlements). Callers integrate it until their next cycle
    # (lending.accumulate_lending) and pass the balance back as Snapshot.lending_balance_s.
    loans: np.ndarray | None = None


def explain(reason: HoldReason, *, shape: str = "", type_name: str = "") -> str:
    """A message a user can read for a hold reason."""
    return REASON_TEXT[HoldReason(reason)].format(shape=shape, type=type_name)


def hold_message(reason: HoldReason, nodes: int, per_node: int, type_name: str) -> str:
    """The message of a job of this shape held for ``reason`` (a gang's shape as 4x8, one
    node's as its accelerators): one wording for the job's stored reason, the scheduler's
    messages and the start-time forecast."""
    shape = f"{nodes}x{per_node}" if nodes > 1 else str(per_node)
    return explain(reason, shape=shape, type_name=type_name)


def hold_messages(snapshot: Snapshot, decisions: Decisions) -> dict[int, str]:
    """Job id → readable message for every pending job not started in ``decisions``."""
    p = snapshot.pending
    names = snapshot.fleet.catalog.names
    held = np.flatnonzero(decisions.reason != HoldReason.NONE)
    out: dict[int, str] = {}
    for r in held.tolist():
        t = int(p.type_idx[r])
        out[int(p.id[r])] = hold_message(HoldReason(int(decisions.reason[r])), int(p.nodes[r]),
                                         int(p.per_node[r]),
                                         names[t] if 0 <= t < len(names) else str(t))
    return out
