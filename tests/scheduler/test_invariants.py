"""Property tests (hypothesis) for the invariants of one cycle, on the lab fleet:
no accelerator allocated twice, no gang placed in part, no reservation delayed by backfill, no
power-cap overrun, no tenant below entitlement left waiting while capacity it lent is held past
minimum runtime (docs/design/0001-scheduling.md)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aicc.fleet import build_fleet
from aicc.fleet.arrays import NODE_DOWN, NODE_DRAIN, NODE_UP
from aicc.scheduler import HoldReason, JobClass, Policy, schedule
from aicc.scheduler.cycle import prepare
from aicc.scheduler.snapshot import JobSpec, Snapshot
from scheduler.builders import PROJECTS, World, job

NOW = 100_000.0
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

shape = st.one_of(
    st.tuples(st.just(1), st.sampled_from([1, 2, 3, 4, 8])),
    st.tuples(st.integers(2, 6), st.just(8)),
)
job_st = st.fixed_dictionaries({
    "project": st.sampled_from(list(PROJECTS)),
    "type": st.sampled_from([0, 1]),
    "shape": shape,
    "cls": st.sampled_from(["interactive", "batch", "flexible"]),
    "preemptible": st.booleans(),
    "limit": st.sampled_from([300.0, 1800.0, 3600.0, 7200.0, 86400.0]),
    "age": st.floats(0, 50_000),
    "expected": st.sampled_from([-1.0, 600.0, 5000.0]),
})


def make(world: World, spec: dict, running: bool, free: np.ndarray) -> job | None:
    t = world.fleet.catalog.index("h100-sxm-80g" if spec["type"] == 0 else "ascend-910b")
    n, k = spec["shape"]
    j = (job("x").project(spec["project"]).type(world.fleet.catalog.types[t].name)
         .shape(n, k).cls(spec["cls"]).limit(spec["limit"]).submitted(NOW - spec["age"]))
    if spec["preemptible"]:
        j.preemptible()
    if not running:
        return j
    fleet = world.fleet
    ok = (fleet.type_idx == t) & (fleet.state == NODE_UP)
    if n == 1:
        cand = np.flatnonzero(ok & (free >= k))[:1]
    else:
        cand = np.flatnonzero(ok & (free == fleet.capacity))[:n]
    if len(cand) < n:
        return None
    free[cand] -= k
    return j.running(NOW - spec["age"], *cand.tolist(), expected=spec["expected"])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Snapshot, str]:
    fleet = build_fleet("lab")
    states = draw(st.lists(st.sampled_from([NODE_UP] * 6 + [NODE_DRAIN, NODE_DOWN]),
                           min_size=fleet.n_nodes, max_size=fleet.n_nodes))
    fleet.state[:] = states
    world = World(fleet=fleet)
    free = np.where(fleet.state == NODE_UP, fleet.capacity, 0).astype(np.int64)
    running = [j for s in draw(st.lists(job_st, max_size=40))
               if (j := make(world, s, True, free)) is not None]
    pending = [make(world, s, False, free) for s in draw(st.lists(job_st, max_size=30))]
    usage = {p: draw(st.floats(0, 1e7)) for p in PROJECTS}
    snap = world.snapshot(pending, running, now=NOW, usage=usage, lenders=draw(st.booleans()))
    if draw(st.booleans()):
        extra = draw(st.floats(0, 60_000))
        snap = Snapshot(**{**snap.__dict__, "power_available_w": prepare(snap).power_w + extra})
    policy = draw(st.sampled_from(["fifo", "multifactor", "fairshare"]))
    return snap, policy


def end_estimate(snap: Snapshot) -> np.ndarray:
    r = snap.running
    # rule 7: the estimate when known, never past the limit (a job is stopped there)
    run = np.where(r.expected_runtime_s > 0,
                   np.minimum(r.expected_runtime_s, r.time_limit_s), r.time_limit_s)
    return np.maximum(r.start_time + run, snap.now)


@SETTINGS
@given(worlds())
def test_placements_are_whole_and_disjoint(case: tuple[Snapshot, str]) -> None:
    snap, policy = case
    d = schedule(snap, policy)
    p, fleet = snap.pending, snap.fleet
    row = {int(i): r for r, i in enumerate(p.id)}
    used = np.zeros(fleet.n_nodes, dtype=np.int64)
    started = set()
    for s in d.starts:
        r = row[s.job_id]
        started.add(r)
        nodes = [n for n, _ in s.placement]
        assert len(nodes) == len(set(nodes)) == p.nodes[r]  # the whole gang, once per node
        assert all(c == p.per_node[r] for _, c in s.placement)
        for n, c in s.placement:
            assert fleet.type_idx[n] == p.type_idx[r] and fleet.state[n] == NODE_UP
            if p.nodes[r] > 1:
                assert used[n] == 0 and snap.free[n] == fleet.capacity[n]  # whole nodes
                used[n] += fleet.capacity[n]
            else:
                used[n] += c
    assert (used <= snap.free).all()  # no accelerator allocated twice
    for r in range(len(p)):
        assert (d.reason[r] == HoldReason.NONE) == (r in started)


@SETTINGS
@given(worlds())
def test_power_cap_holds(case: tuple[Snapshot, str]) -> None:
    snap, policy = case
    d = schedule(snap, policy)
    before = prepare(snap).power_w
    added = 0.0
    fleet = snap.fleet
    for s in d.starts:
        t = fleet.catalog.types[int(fleet.type_idx[s.placement[0][0]])]
        added += sum(c for _, c in s.placement) * (t.tdp_w - t.idle_w)
    if before <= snap.power_available_w:
        assert before + added <= snap.power_available_w + 1e-6
    else:
        assert added == 0


@SETTINGS
@given(worlds())
def test_backfill_delays_no_reservation(case: tuple[Snapshot, str]) -> None:
    snap, policy = case
    d = schedule(snap, policy)
    p, r, fleet = snap.pending, snap.running, snap.fleet
    ends = end_estimate(snap)
    row = {int(i): k for k, i in enumerate(p.id)}
    for res in d.reservations:
        for n in res.nodes:
            busy = 0
            for k in range(len(r)):
                for node, c in r.allocation(k):
                    if node == n and ends[k] > res.start:
                        busy += c
            for s in d.starts:
                j = row[s.job_id]
                if snap.now + p.time_limit_s[j] > res.start:
                    for node, c in s.placement:
                        if node == n:
                            busy += fleet.capacity[n] if p.nodes[j] > 1 else c
            assert fleet.capacity[n] - busy >= res.need, (res, n)


@SETTINGS
@given(classes=st.lists(st.tuples(st.sampled_from(list(JobClass)), st.booleans(),
                                  st.floats(0, 20_000), st.sampled_from([1, 2, -1])),
                        min_size=16, max_size=16),
       wants=st.lists(st.integers(1, 8), min_size=1, max_size=4),
       lenders=st.booleans())
@example(classes=[(JobClass.BATCH, False, 0.0, 2)] * 16, wants=[8], lenders=True)
def test_tenant_below_entitlement_reclaims(classes: list, wants: list[int], lenders: bool
                                           ) -> None:
    """Industry holds every H100 node; research (entitled to 40%) waits: the first waiting
    research job must be reclaiming capacity, whichever sector (or the pool) the loans name,
    and only from borrowed jobs past minimum runtime."""
    pol = Policy()
    running = []
    for n, (cls, pre, age, lender) in enumerate(classes):
        j = job(f"i{n}").project("ind").gpus(8).cls(cls.label).running(
            NOW - pol.min_runtime_s - age, n, lender=lender)
        if pre:
            j.preemptible()
        running.append(j)
    pending = [job(f"r{i}").project("res").gpus(k).submitted(NOW - i) for i, k in
               enumerate(wants)]
    snap = World().snapshot(pending, running, now=NOW, lenders=lenders)
    d = schedule(snap, pol)
    first = int(np.argmin(snap.pending.submit_time))
    assert d.reason[first] == HoldReason.PREEMPTING
    assert d.preempts
    r = snap.running
    ids = {int(i): k for k, i in enumerate(r.id)}
    for pr in d.preempts:
        k = ids[pr.job_id]
        assert NOW - r.start_time[k] >= pol.min_runtime_s
        assert pr.grace_s == pol.grace_s
    assert len({pr.job_id for pr in d.preempts}) == len(d.preempts)


def test_spec_builder_roundtrip() -> None:
    """The builders make what the snapshot contract says (a guard for the property tests)."""
    w = World()
    j = job("a").project("res2").gpus(16)
    spec = j.spec(w)
    assert isinstance(spec, JobSpec) and spec.nodes == 2 and spec.per_node == 8
    assert spec.project == list(PROJECTS).index("res2")


@st.composite
def crowded(draw: st.DrawFn) -> tuple[Snapshot, str]:
    """Every H100 node partly busy with jobs of random ends; a blocked gang and a wide job ahead
    of many small jobs of random limits: the case backfill must get right."""
    world = World()
    running = []
    for n in range(16):
        used = draw(st.integers(4, 8))
        while used > 0:
            k = draw(st.integers(1, used))
            used -= k
            running.append(job(f"r{n}").project("pub").shape(1, k)
                           .limit(draw(st.sampled_from([1000.0, 4000.0, 9000.0])))
                           .running(NOW - 100, n, expected=draw(st.sampled_from(
                               [-1.0, 500.0, 2000.0]))))
    pending = [job("gang").project("res").shape(draw(st.integers(2, 8)), 8).submitted(0),
               job("wide").project("res").shape(1, 8).submitted(1)]
    for i in range(draw(st.integers(1, 25))):
        pending.append(job(f"s{i}").project(draw(st.sampled_from(["res", "res2", "ind"])))
                       .shape(1, draw(st.integers(1, 4)))
                       .limit(draw(st.sampled_from([300.0, 1500.0, 3000.0, 8000.0])))
                       .submitted(10 + i))
    snap = world.snapshot(pending, running, now=NOW)
    return snap, draw(st.sampled_from(["multifactor", "fairshare"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crowded())
def test_backfill_delays_no_reservation_when_crowded(case: tuple[Snapshot, str]) -> None:
    test_backfill_delays_no_reservation.hypothesis.inner_test(case)  # type: ignore[attr-defined]
    d = schedule(*case)
    assert d.reservations  # the gang (or the wide job) always waits with a reservation


@settings(max_examples=60, deadline=None)
@given(free=st.lists(st.integers(0, 8), min_size=32, max_size=32),
       asks=st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(1, 8)), max_size=12))
def test_best_fit_scan_and_lists_agree(free: list[int], asks: list[tuple[int, int]]) -> None:
    """The array scan (few placements) and the per-level lists are both best fit: each picks
    a node with the fewest free accelerators that still hold the job (their tie-breaks among
    such nodes may differ)."""
    from aicc.scheduler.placement import _SCANS, FreeState
    from aicc.scheduler.snapshot import JobTable

    fleet = build_fleet("lab")
    a = FreeState(fleet, np.array(free), JobTable.empty(), NOW)
    b = FreeState(fleet, np.array(free), JobTable.empty(), NOW)
    b.scans = [_SCANS] * b.n_types
    for t_pick, k in asks:
        t = fleet.catalog.index("h100-sxm-80g" if t_pick == 0 else "ascend-910b")
        a.scans = [0] * a.n_types
        na, nb = a.find_sub(t, k, NOW + 10), b.find_sub(t, k, NOW + 10)
        assert (na < 0) == (nb < 0)
        if na >= 0:
            for st_, n in ((a, na), (b, nb)):
                ix = st_.nodes_of_type[t]
                fits = st_.free[ix][st_.free[ix] >= k]
                assert st_.free[n] == fits.min() and fleet.type_idx[n] == t
            a.take(na, k, NOW + 10)
            b.take(nb, k, NOW + 10)
