"""The walk's block filter decides as the per-job loop alone would (one row per block), under
both sector queueing settings (rule 1): the same jobs start, borrow from the same lenders and
are preempted, on the same nodes, with ties in the key, gangs and borrowing."""

from __future__ import annotations

import numpy as np
import pytest

import aicc.scheduler.cycle as cycle
import aicc.scheduler.placement as placement
from aicc.scheduler import Policy, schedule
from scheduler.builders import World, job

NOW = 10_000.0
PROJECTS = ["res", "res2", "ind", "ind2", "pub"]


def _snapshot(seed: int):
    rng = np.random.default_rng(seed)
    running = []
    for n in range(16):  # every H100 node partly busy, by several sectors
        used = int(rng.integers(0, 9))
        while used > 0:
            k = int(rng.integers(1, used + 1))
            used -= k
            running.append(job(f"r{n}-{used}").project(str(rng.choice(PROJECTS))).shape(1, k)
                           .limit(float(rng.choice([1000.0, 4000.0, 9000.0])))
                           .running(NOW - 100, n))
    pending = []
    for i in range(int(rng.integers(20, 60))):
        gpus = int(rng.choice([1, 2, 4, 8, 16, 24, 32, 48]))
        pending.append(job(f"p{i}").project(str(rng.choice(PROJECTS))).gpus(gpus)
                       .limit(float(rng.choice([600.0, 3600.0, 7200.0])))
                       .submitted(float(rng.choice([0.0, 100.0, 200.0]))))  # many ties
    return World(lend_limit={"public": float(rng.choice([0.0, 0.5, 1.0]))}).snapshot(
        pending, running, now=NOW)


@pytest.mark.parametrize(("queueing", "reservations"),
                         [("best_effort", 0), ("best_effort", 4), ("strict", 0), ("strict", 4)])
def test_decisions_do_not_depend_on_the_block_size(monkeypatch, queueing: str,
                                                   reservations: int) -> None:
    pol = Policy(sector_queueing=queueing, reservations_per_type=reservations)
    # best fit by the array scan alone: the per-level lists it hands over to after a type's
    # first few placements break ties among equally good nodes by the state when they were
    # built, which depends on how far the filter got (tests/scheduler/test_invariants.py)
    monkeypatch.setattr(placement, "_SCANS", 1 << 30)
    for seed in range(40):
        snap = _snapshot(seed)
        big = schedule(snap, pol)
        with monkeypatch.context() as m:
            m.setattr(cycle, "_BLOCK", 1)
            m.setattr(cycle, "_BULK_MIN", 1 << 30)  # no bulk rechecks: row by row
            one = schedule(snap, pol)
        assert [(s.job_id, s.placement, s.lender) for s in big.starts] == \
            [(s.job_id, s.placement, s.lender) for s in one.starts], seed
        assert [p.job_id for p in big.preempts] == [p.job_id for p in one.preempts], seed
        assert [(r.job_id, r.start, r.nodes) for r in big.reservations] == \
            [(r.job_id, r.start, r.nodes) for r in one.reservations], seed


def test_demoted_ties_keep_row_order_whatever_the_block(monkeypatch) -> None:
    """Strict: research's head h (16) claims the room, so the filter demotes y (behind it) in
    its block before the loop demotes x (ahead of h on a tie, lower row); among tier B the tie
    must still put x before y, as one row per block does."""
    from scheduler.builders import fill

    running = (fill(0, 4, "res", NOW - 100) + fill(8, 8, "ind", NOW - 100)
               + fill(10, 15, "ind", NOW - 100)
               + [job("n9").project("ind").shape(1, 4).running(NOW - 100, 9)])
    pending = [job("z").project("res").gpus(8).submitted(NOW - 100),
               job("x").project("res").gpus(4).submitted(NOW - 10),
               job("h").project("res").gpus(16).submitted(NOW - 10),
               job("y").project("res").gpus(2).submitted(NOW - 10)]
    snap = World().snapshot(pending, running, now=NOW)
    names = {j.id: j.name for j in pending}
    pol = Policy(sector_queueing="strict")
    big = {names[s.job_id] for s in schedule(snap, pol).starts}
    monkeypatch.setattr(cycle, "_BLOCK", 1)
    one = {names[s.job_id] for s in schedule(snap, pol).starts}
    assert big == one and "x" in one, (big, one)
