"""One scheduling cycle at the scale of phase 2030: 50,000 accelerators (6,250 nodes × 8 under
leaves and pods), 100,000 pending jobs of mixed shapes, tenants and classes, 30,000 running.

Prints the fair-share cycle time (median and p95 over repeated cycles on one core), the
multifactor and FIFO baselines measured in the same process, and as its last line::

    RESULT accelerators=50000 pending=100000 considered=N cycle_ms_median=N cycle_ms_p95=N
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from aicc.fleet import build_fleet
from aicc.scheduler import schedule
from aicc.scheduler.cycle import prepare
from aicc.scheduler.policy import Policy
from aicc.scheduler.snapshot import Grants, JobSpec, JobTable, Snapshot, Tenancy
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import map_tenants

RNG = np.random.default_rng(2030)
NOW = 30 * 86400.0
N_RUNNING, N_PENDING = 30_000, 100_000
REPEATS = 15


def tenancy(n_types: int) -> Tenancy:
    sectors = ["industry", "research", "public"]
    n_orgs, n_projects = 60, 600
    org_sector = RNG.integers(0, 3, n_orgs).astype(np.int32)
    project_org = RNG.integers(0, n_orgs, n_projects).astype(np.int32)
    ent = np.tile(np.array([[0.35], [0.45], [0.15]]), (1, n_types))  # 5% unentitled pool
    return Tenancy(sectors, ent, [f"org{i}" for i in range(n_orgs)], org_sector,
                   RNG.uniform(0.5, 2.0, n_orgs), [f"p{i}" for i in range(n_projects)],
                   project_org, RNG.uniform(0.5, 2.0, n_projects),
                   lend_limit=np.array([0.8, 0.8, 0.8]))


def table(n: int, nodes: np.ndarray, per_node: np.ndarray, types: np.ndarray,
          n_projects: int, grant_of: np.ndarray, id0: int) -> JobTable:
    project = RNG.integers(0, n_projects, n).astype(np.int32)
    cls = RNG.choice(3, n, p=[0.15, 0.65, 0.20]).astype(np.int8)
    limit = RNG.choice([600.0, 3600.0, 4 * 3600.0, 12 * 3600.0, 48 * 3600.0], n)
    return JobTable(
        id=np.arange(id0, id0 + n, dtype=np.int64), project=project,
        type_idx=types.astype(np.int16), nodes=nodes.astype(np.int32),
        per_node=per_node.astype(np.int32), time_limit_s=limit, job_class=cls,
        preemptible=RNG.random(n) < 0.5, submit_time=NOW - RNG.uniform(0, 7 * 86400, n),
        grant=grant_of[project, types].astype(np.int32), start_time=np.full(n, -1.0),
        expected_runtime_s=np.where(RNG.random(n) < 0.5, limit * RNG.uniform(0.1, 1, n), -1.0))


def shapes(n: int, probs: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, per_node): 1, 2, 4, 8 accelerators on one node, or gangs of 2..16 nodes."""
    kind = RNG.choice(5, n, p=probs)
    per = np.array([1, 2, 4, 8, 8])[kind]
    nodes = np.where(kind == 4, RNG.integers(2, 17, n), 1)
    return nodes, per


def build() -> Snapshot:
    fleet = build_fleet("2030")
    n_t = len(fleet.catalog)
    ten = tenancy(n_t)
    n_p = len(ten.project_names)
    # grants: most (project, type) pairs have one; a few are used up
    g_proj, g_type = np.meshgrid(np.arange(n_p), np.arange(n_t), indexing="ij")
    g_proj, g_type = g_proj.ravel(), g_type.ravel()
    total = RNG.uniform(1e6, 1e8, len(g_proj))
    n_g = len(g_proj)
    used = total * np.where(RNG.random(n_g) < 0.03, 1.0, RNG.random(n_g))
    grants = Grants(g_proj.astype(np.int32), g_type.astype(np.int16), total, used,
                    np.full(n_g, NOW - 60 * 86400.0), np.full(n_g, NOW + 300 * 86400.0))
    grant_of = np.arange(n_p * n_t).reshape(n_p, n_t)
    grant_of[RNG.random((n_p, n_t)) < 0.05] = -1
    type_share = np.bincount(fleet.type_idx, weights=fleet.capacity, minlength=n_t)
    type_share = type_share / type_share.sum()

    # running: place 30,000 jobs, node by node within each type
    nodes, per = shapes(N_RUNNING, [0.85, 0.09, 0.04, 0.018, 0.002])
    nodes = np.minimum(nodes, 4)
    types = RNG.choice(n_t, N_RUNNING, p=type_share)
    free = fleet.capacity.astype(np.int64).copy()
    by_type = [np.flatnonzero(fleet.type_idx == t).tolist() for t in range(n_t)]
    cursor = [0] * n_t
    gang_cursor = [len(b) - 1 for b in by_type]
    ptr, a_node, a_cnt, keep = [0], [], [], []
    for r in np.argsort(-(nodes * per), kind="stable").tolist():
        t, n, k = int(types[r]), int(nodes[r]), int(per[r])
        lst = by_type[t]
        if n > 1:
            if gang_cursor[t] - n < cursor[t]:
                continue
            chosen = lst[gang_cursor[t] - n + 1:gang_cursor[t] + 1]
            gang_cursor[t] -= n
        else:
            while cursor[t] <= gang_cursor[t] and free[lst[cursor[t]]] < k:
                cursor[t] += 1
            if cursor[t] > gang_cursor[t]:
                continue
            chosen = [lst[cursor[t]]]
        for nd in chosen:
            free[nd] -= k
            a_node.append(nd)
            a_cnt.append(k)
        ptr.append(len(a_node))
        keep.append(r)
    keep_a = np.array(keep)
    m = len(keep_a)
    running = table(m, nodes[keep_a], per[keep_a], types[keep_a], n_p, grant_of, 10_000_000)
    running.start_time = NOW - RNG.uniform(0, 2 * 86400, m)
    running.alloc_ptr = np.array(ptr, dtype=np.int64)
    running.alloc_node = np.array(a_node, dtype=np.int32)
    running.alloc_count = np.array(a_cnt, dtype=np.int32)

    p_nodes, p_per = shapes(N_PENDING, [0.45, 0.15, 0.15, 0.17, 0.08])
    pending = table(N_PENDING, p_nodes, p_per, RNG.choice(n_t, N_PENDING, p=type_share), n_p,
                    grant_of, 0)
    snap = Snapshot(now=NOW, fleet=fleet, free=free.astype(np.int16), running=running,
                    pending=pending, tenancy=ten, grants=grants,
                    usage_decayed_s=RNG.uniform(0, 1e9, n_p),
                    lending_balance_s=RNG.uniform(0, 1e9, (3, 3)))
    draw = prepare(snap).power_w
    return Snapshot(**{**snap.__dict__, "power_available_w": draw + 2.0e7})


def take(t: JobTable, rows: np.ndarray) -> JobTable:
    """Pending rows of a table (pending tables carry no allocations)."""
    cols = {k: v[rows] if len(v) == len(t) else v for k, v in t.__dict__.items()
            if not k.startswith("alloc_")}
    return JobTable(**cols)


def timed(snap: Snapshot, policy: str | Policy) -> tuple[list[float], object]:
    schedule(snap, policy)  # warm
    out = []
    d = None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        d = schedule(snap, policy)
        out.append((time.perf_counter() - t0) * 1000)
    return out, d


def reserved_out() -> Snapshot:
    """Every node of a small type taken by a reservation, a long queue of that type behind
    them: no later row can reserve, and none may cost the walk more than a filtered row."""
    fleet = custom_fleet(2, "h100-sxm-80g")
    t = fleet.catalog.index("h100-sxm-80g")
    running = JobTable.from_specs(
        [JobSpec(1, 0, t, 1, 8, 7200.0, start_time=0.0),
         JobSpec(2, 0, t, 1, 8, 3600.0, start_time=0.0)], [[(0, 8)], [(1, 8)]])
    pending = JobTable.from_specs([JobSpec(10 + i, 0, t, 1, 8, 3600.0, submit_time=float(i))
                                   for i in range(10_000)])
    return Snapshot(now=1000.0, fleet=fleet, free=np.zeros(2, dtype=np.int16), running=running,
                    pending=pending, tenancy=map_tenants(["t"], len(fleet.catalog)).tenancy,
                    grants=Grants.empty(), usage_decayed_s=np.zeros(1))


def main() -> None:
    small = reserved_out()
    r_ms, r_d = timed(small, "multifactor")
    n_ms, _ = timed(small, Policy(name="multifactor", reservations_per_type=0))
    print(f"RESULT case=reserved_out nodes=2 pending={len(small.pending)} "
          f"reservations={len(r_d.reservations)} cycle_ms_median={statistics.median(r_ms):.2f} "
          f"baseline_no_reservations_ms={statistics.median(n_ms):.2f} "
          f"ratio={statistics.median(r_ms) / statistics.median(n_ms):.2f}")
    snap = build()
    print(f"fleet: {snap.fleet.n_accelerators} accelerators on {snap.fleet.n_nodes} nodes; "
          f"running {len(snap.running)}, free {int(snap.free.sum())}, pending {len(snap.pending)}")
    ms, d = timed(snap, "fairshare")
    med = statistics.median(ms)
    p95 = float(np.percentile(ms, 95))
    print(f"fairshare: starts={len(d.starts)} preempts={len(d.preempts)} "
          f"reservations={len(d.reservations)} walked={int(d.stats['walked'])} "
          f"fragmentation {d.stats['fragmentation_before']:.3f} -> "
          f"{d.stats['fragmentation_after']:.3f}")
    few = Snapshot(**{**snap.__dict__, "pending": take(snap.pending, np.arange(10))})
    f_ms, _ = timed(few, "fairshare")
    print(f"RESULT short_queue accelerators={snap.fleet.n_accelerators} "
          f"running={len(snap.running)} pending=10 "
          f"cycle_ms_median={statistics.median(f_ms):.2f}")
    base = {}
    for name in ("multifactor", "fifo"):
        b_ms, b_d = timed(snap, name)
        base[name] = statistics.median(b_ms)
        print(f"{name}: cycle_ms_median={base[name]:.1f} starts={len(b_d.starts)}")
    print(f"RESULT baseline=fifo fifo_cycle_ms_median={base['fifo']:.1f} "
          f"ratio_fairshare_over_fifo={med / base['fifo']:.2f}")
    print(f"RESULT accelerators={snap.fleet.n_accelerators} pending={len(snap.pending)} "
          f"considered={d.considered} cycle_ms_median={med:.1f} cycle_ms_p95={p95:.1f}")


if __name__ == "__main__":
    main()
