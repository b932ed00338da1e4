"""Small builders for scheduler tests: ``job("a").project("res").gpus(16)`` and a ``World``
(lab fleet, three sectors, a few projects) that turns them into a Snapshot."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from aicc.fleet import build_fleet
from aicc.fleet.arrays import FleetArrays
from aicc.scheduler.snapshot import Grants, JobClass, JobSpec, JobTable, Snapshot, Tenancy

SECTORS = ["industry", "research", "public"]
# organization -> sector, project -> organization
ORGS = {"acme": "industry", "uni": "research", "agency": "public"}
PROJECTS = {"ind": "acme", "ind2": "acme", "res": "uni", "res2": "uni", "pub": "agency"}
H100, NPU = "h100-sxm-80g", "ascend-910b"

_ids = itertools.count(1)


class job:  # a builder: job("a").project("res").gpus(16)
    def __init__(self, name: str) -> None:
        self.name = name
        self.id = next(_ids)
        self._project = "res"
        self._type = H100
        self._nodes, self._per = 1, 1
        self._limit = 3600.0
        self._cls = JobClass.BATCH
        self._preemptible = False
        self._submit = 0.0
        self._grant: str | None = None
        self._start = -1.0
        self._expected = -1.0
        self._at: list[int] = []
        self._lender = -1

    def project(self, p: str) -> job:
        self._project = p
        return self

    def type(self, t: str) -> job:
        self._type = t
        return self

    def gpus(self, n: int) -> job:
        """n <= 8: one node; else whole 8-accelerator nodes."""
        self._nodes, self._per = (1, n) if n <= 8 else (n // 8, 8)
        return self

    def shape(self, nodes: int, per_node: int) -> job:
        self._nodes, self._per = nodes, per_node
        return self

    def limit(self, s: float) -> job:
        self._limit = s
        return self

    def cls(self, c: str) -> job:
        self._cls = JobClass.parse(c)
        return self

    def preemptible(self) -> job:
        self._preemptible = True
        return self

    def submitted(self, t: float) -> job:
        self._submit = t
        return self

    def grant(self, g: str) -> job:
        self._grant = g
        return self

    def running(self, start: float, *nodes: int, expected: float = -1.0, lender: int = -1
                ) -> job:
        """Running since ``start`` on ``nodes`` (per_node accelerators on each)."""
        self._start, self._at, self._expected, self._lender = start, list(nodes), expected, lender
        return self

    def expected(self, s: float) -> job:
        self._expected = s
        return self

    def spec(self, world: World) -> JobSpec:
        return JobSpec(
            id=self.id, project=world.project_index[self._project],
            type_idx=world.fleet.catalog.index(self._type), nodes=self._nodes,
            per_node=self._per, time_limit_s=self._limit, job_class=self._cls,
            preemptible=self._preemptible, submit_time=self._submit,
            grant=world.grant_index[self._grant] if self._grant else -1,
            start_time=self._start, expected_runtime_s=self._expected, lender=self._lender)


@dataclass
class World:
    fleet: FleetArrays = field(default_factory=lambda: build_fleet("lab"))
    entitlement: dict[str, float] = field(
        default_factory=lambda: {"industry": 0.4, "research": 0.4, "public": 0.2})
    lend_limit: dict[str, float] = field(default_factory=dict)
    org_weight: dict[str, float] = field(default_factory=dict)
    project_weight: dict[str, float] = field(default_factory=dict)
    grants: dict[str, tuple[str, str, float, float, float, float]] = field(default_factory=dict)
    # grant name -> (project, type, total_s, used_s, start, end)

    @property
    def project_index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(PROJECTS)}

    @property
    def grant_index(self) -> dict[str, int]:
        return {g: i for i, g in enumerate(self.grants)}

    def tenancy(self) -> Tenancy:
        n_t = len(self.fleet.catalog)
        orgs = list(ORGS)
        return Tenancy(
            sector_names=SECTORS,
            entitlement=np.array([[self.entitlement.get(s, 0.0)] * n_t for s in SECTORS]),
            org_names=orgs,
            org_sector=np.array([SECTORS.index(ORGS[o]) for o in orgs], dtype=np.int32),
            org_weight=np.array([self.org_weight.get(o, 1.0) for o in orgs]),
            project_names=list(PROJECTS),
            project_org=np.array([orgs.index(PROJECTS[p]) for p in PROJECTS], dtype=np.int32),
            project_weight=np.array([self.project_weight.get(p, 1.0) for p in PROJECTS]),
            lend_limit=np.array([self.lend_limit.get(s, 1.0) for s in SECTORS]),
        )

    def grants_table(self) -> Grants:
        if not self.grants:
            return Grants.empty()
        rows = list(self.grants.values())
        pi = self.project_index
        return Grants(
            project=np.array([pi[r[0]] for r in rows], dtype=np.int32),
            type_idx=np.array([self.fleet.catalog.index(r[1]) for r in rows], dtype=np.int16),
            total_s=np.array([r[2] for r in rows], dtype=np.float64),
            used_s=np.array([r[3] for r in rows], dtype=np.float64),
            start=np.array([r[4] for r in rows], dtype=np.float64),
            end=np.array([r[5] for r in rows], dtype=np.float64))

    def snapshot(self, pending: list[job], running: list[job] = (), *, now: float = 10_000.0,
                 usage: dict[str, float] | None = None, power_w: float = float("inf"),
                 free: np.ndarray | None = None, lenders: bool = True,
                 balance: np.ndarray | None = None) -> Snapshot:
        run_specs = [j.spec(self) for j in running]
        allocs = [[(n, j._per) for n in j._at] for j in running]
        run = JobTable.from_specs(run_specs, allocs)
        if not lenders:
            run.lender = np.zeros(0, dtype=np.int16)
        if free is None:
            busy = np.zeros(self.fleet.n_nodes, dtype=np.int64)
            np.add.at(busy, run.alloc_node, run.alloc_count)
            free = np.where(self.fleet.state == 0, self.fleet.capacity - busy, 0)
        u = np.zeros(len(PROJECTS))
        for p, v in (usage or {}).items():
            u[self.project_index[p]] = v
        return Snapshot(now=now, fleet=self.fleet, free=np.asarray(free, dtype=np.int16),
                        running=run, pending=JobTable.from_specs([j.spec(self) for j in pending]),
                        tenancy=self.tenancy(), grants=self.grants_table(), usage_decayed_s=u,
                        power_available_w=power_w, lending_balance_s=balance)


def fill(first: int, last: int, project: str = "ind", start: float = 0.0, **kw: object
         ) -> list[job]:
    """Whole-node running jobs occupying nodes first..last (inclusive)."""
    out = []
    for n in range(first, last + 1):
        j = job(f"fill{n}").project(project).gpus(8).running(start, n, **kw)  # type: ignore
        out.append(j)
    return out
