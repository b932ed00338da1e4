"""Each rule of docs/design/0001-scheduling.md alone and in combination, as a table of named
cases built with small builders; compared as want/got."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from aicc.fleet import build_fleet
from aicc.fleet.arrays import NODE_DOWN, NODE_DRAIN
from aicc.fleet.phases import FleetPhase, NodeGroup
from aicc.scheduler import Decisions, HoldReason, Policy, Snapshot, schedule
from aicc.scheduler.cycle import prepare
from scheduler.builders import H100, NPU, SECTORS, World, fill, job

H = HoldReason
NOW = 10_000.0


@dataclass
class Case:
    name: str
    build: Callable[[], tuple[Snapshot, dict[str, job]]]
    policy: str | Policy = "fairshare"
    started: set[str] = field(default_factory=set)
    reasons: dict[str, HoldReason] = field(default_factory=dict)
    preempted: set[str] = field(default_factory=set)
    check: Callable[[Decisions, dict[str, job]], None] | None = None


def named(*jobs: job) -> dict[str, job]:
    return {j.name: j for j in jobs}


def world_snap(pending: list[job], running: list[job] = (), world: World | None = None,
               **kw: object) -> tuple[Snapshot, dict[str, job]]:
    w = world or World()
    return w.snapshot(pending, list(running), now=NOW, **kw), named(*pending, *running)


def nodes_of(d: Decisions, j: job) -> list[int]:
    return [n for s in d.starts if s.job_id == j.id for n, _ in s.placement]


def _gang_all_or_nothing() -> tuple[Snapshot, dict[str, job]]:
    return world_snap([job("gang").gpus(24)], fill(0, 13, "pub", NOW - 100))


def _gang_one_leaf() -> tuple[Snapshot, dict[str, job]]:
    busy = fill(0, 1, "pub", NOW - 100) + fill(8, 15, "pub", NOW - 100)
    return world_snap([job("gang").gpus(16)], busy)


def _check_one_leaf(d: Decisions, jobs: dict[str, job]) -> None:
    assert sorted(nodes_of(d, jobs["gang"])) == [2, 3]  # the fullest leaf that holds it


def _gang_one_pod() -> tuple[Snapshot, dict[str, job]]:
    busy = fill(0, 2, "pub", NOW - 100) + fill(4, 4, "pub", NOW - 100) + \
        fill(8, 9, "pub", NOW - 100) + fill(12, 13, "pub", NOW - 100)
    return world_snap([job("gang").gpus(32)], busy)


def _check_one_pod(d: Decisions, jobs: dict[str, job]) -> None:
    got = nodes_of(d, jobs["gang"])
    fleet = build_fleet("lab")
    assert len({int(fleet.pod[n]) for n in got}) == 1
    assert sorted(got) == [3, 5, 6, 7]


def _best_fit() -> tuple[Snapshot, dict[str, job]]:
    running = [job("part").gpus(5).running(NOW - 100, 0)]
    return world_snap([job("two").gpus(2), job("four").gpus(4)], running)


def _check_best_fit(d: Decisions, jobs: dict[str, job]) -> None:
    assert nodes_of(d, jobs["two"]) == [0]  # the partly used node
    assert nodes_of(d, jobs["four"])[0] in (1, 2, 3)  # a node in the already broken leaf


def _interactive_first() -> tuple[Snapshot, dict[str, job]]:
    return world_snap([job("batch").gpus(8).submitted(0),
                       job("inter").gpus(8).cls("interactive").submitted(9000)],
                      fill(0, 14, "pub", NOW - 100))


def _big_interactive_is_batch() -> tuple[Snapshot, dict[str, job]]:
    return world_snap([job("batch").gpus(8).submitted(0),
                       job("inter").gpus(8).cls("interactive").limit(10 * 3600).submitted(9000)],
                      fill(0, 14, "pub", NOW - 100))


def _flexible_last() -> tuple[Snapshot, dict[str, job]]:
    return world_snap([job("flex").gpus(8).cls("flexible").submitted(0),
                       job("batch").gpus(8).submitted(9000)], fill(0, 14, "pub", NOW - 100))


def _below_entitlement_first() -> tuple[Snapshot, dict[str, job]]:
    busy = fill(0, 6, "ind", NOW - 100) + fill(7, 14, "pub", NOW - 100)
    pending = [job("ind").project("ind").gpus(8).submitted(0),
               job("res").project("res").gpus(8).submitted(9000)]
    return world_snap(pending, busy, usage={"res": 1e9})


def _borrowing() -> tuple[Snapshot, dict[str, job]]:
    return world_snap([job("big").project("ind").gpus(64)])


def _check_borrowing(d: Decisions, jobs: dict[str, job]) -> None:
    (s,) = d.starts
    assert s.borrowed and s.lender == 1  # research lends the most
    assert d.stats["borrowed_starts"] == 1


def _quotas_never_idle() -> tuple[Snapshot, dict[str, job]]:
    # both sectors want the whole type: each quota (half the idle capacity) is too small for
    # either job, which waited for ever on an idle fleet before rule 2's second pass
    return world_snap([job("ind_all").project("ind").gpus(128).submitted(NOW - 60),
                       job("res_all").project("res").gpus(128).submitted(NOW - 60)],
                      usage={"ind": 1e6, "res": 2e6})


def _quotas_never_idle_small_first() -> tuple[Snapshot, dict[str, job]]:
    # the second pass takes the held jobs in priority order: research's (less usage) first
    return world_snap([job("ind_big").project("ind").gpus(128),
                       job("res_big").project("res").gpus(128)],
                      usage={"ind": 2e6, "res": 1e6})


def _lender_uses_its_own_idle() -> tuple[Snapshot, dict[str, job]]:
    # only research may lend; its own tier-A job takes 48 of its 51.2 idle first, so industry's
    # gang (28.8 beyond its entitlement) has nothing to borrow from in this cycle
    w = World(lend_limit={"industry": 0.0, "public": 0.0})
    return world_snap([job("r_small").project("res").shape(6, 8),
                       job("r_big").project("res").shape(16, 8),
                       job("i_gang").project("ind").shape(10, 8)], world=w)


def _quota_no_more_than_others_lend() -> tuple[Snapshot, dict[str, job]]:
    # public lends nothing: industry may borrow research's 51.2 and no more (its quota counted
    # its own idle entitlement as lendable, and the loan fell on public's capacity)
    w = World(lend_limit={"public": 0.0})
    return world_snap([job("i_big").project("ind").shape(14, 8)], world=w)


def _no_backfill_second_pass() -> tuple[Snapshot, dict[str, job]]:
    # without backfill, p4's failed placement blocks the type in the first pass; the rows held
    # for their quota before it keep that reason (the second pass leaves a blocked type alone)
    running = [job("f0").project("res2").gpus(8).running(0.0, 0),
               job("f1").project("pub").gpus(8).running(0.0, 1),
               job("f2").project("res2").gpus(8).running(0.0, 2)]
    pending = [job("p0").project("ind2").gpus(96).submitted(3.0),
               job("p1").project("res2").gpus(64).submitted(3.0),
               job("p2").project("res2").gpus(64).submitted(0.0),
               job("p3").project("pub").gpus(96).submitted(1.0),
               job("p4").project("ind2").gpus(64).submitted(2.0)]
    return world_snap(pending, running, usage={"ind": 3e6, "ind2": 4e6, "res": 2e6,
                                               "res2": 3e6, "pub": 2e6})


def _lent_is_what_is_borrowed_now() -> tuple[Snapshot, dict[str, job]]:
    # research runs 40 of its 51.2, 16 of them in a job that once borrowed from industry: it
    # borrows nothing now, so industry's whole 51.2 is idle and lendable. Public (25.6) may
    # borrow 54.4 for its 80-GPU job: industry's 51.2 and research's idle 11.2 cover it
    running = [job("r_old").project("res").gpus(16).running(0.0, 0, 1, lender=0),
               job("r_more").project("res").gpus(24).running(0.0, 2, 3, 4)]
    return world_snap([job("p_big").project("pub").gpus(80)], running)


def _mixed_sizes() -> tuple[Snapshot, dict[str, job]]:
    # one 8-accelerator H100 node and four of 4: a gang of 2 × 8 fits no two nodes (it waited
    # for ever as RESOURCES, blocking FIFO); 4 × 4 fits the small ones
    ph = FleetPhase(name="mixed", site="lab", nodes_per_leaf=4, leaves_per_pod=2,
                    groups=(NodeGroup(type=H100, nodes=1),
                            NodeGroup(type=H100, nodes=4, accelerators_per_node=4)))
    w = World(fleet=build_fleet(ph))
    return world_snap([job("two_eights").shape(2, 8).submitted(NOW - 60),
                       job("four_fours").shape(4, 4).submitted(NOW - 30)], world=w)


def _lend_limit() -> tuple[Snapshot, dict[str, job]]:
    w = World(lend_limit={"research": 0.0, "public": 0.0})
    return world_snap([job("big").project("ind").gpus(64), job("fits").project("ind").gpus(48)],
                      world=w)


STRICT = Policy(sector_queueing="strict")


def _room_claim() -> tuple[Snapshot, dict[str, job]]:
    # research holds 32 of its 51.2 and may borrow nothing; its oldest job (32) does not fit the
    # 19.2 left. Strict: it is research's head, and research's later 8s wait behind it (best
    # effort: both start, and the room never reaches 32 while such jobs keep coming); public's
    # job, in its own room, starts either way
    w = World(lend_limit={"industry": 0.0, "public": 0.0})
    running = fill(0, 3, "res", NOW - 100) + fill(4, 11, "ind", NOW - 100)
    pending = [job("big").project("res").gpus(32).submitted(NOW - 1000),
               job("small").project("res").gpus(8).submitted(NOW - 10),
               job("other_project").project("res2").gpus(8).submitted(NOW - 10),
               job("public").project("pub").gpus(8).submitted(NOW - 10)]
    return world_snap(pending, running, world=w)


def _room_claim_borrow(research_nodes: int) -> Callable[[], tuple[Snapshot, dict[str, job]]]:
    """Public lends half of its 25.6 idle: too little for research's head (40), enough for a 4
    behind it; research holds 4 nodes (19.2 of its 51.2 left) or 7 (56, none left). Strict, the
    4 waits behind the head either way: it may neither take the room nor borrow (borrowing would
    keep research's use up, and its room away from the head)."""
    def build() -> tuple[Snapshot, dict[str, job]]:
        running = (fill(0, research_nodes - 1, "res", NOW - 100)
                   + fill(research_nodes, 9, "ind", NOW - 100))
        pending = [job("big").project("res").gpus(40).submitted(NOW - 1000),
                   job("small").project("res").gpus(4).submitted(NOW - 10)]
        return world_snap(pending, running,
                          world=World(lend_limit={"industry": 0.0, "public": 0.5}))
    return build


def _check_room_claim_borrow(d: Decisions, jobs: dict[str, job]) -> None:
    (s,) = d.starts
    assert s.job_id == jobs["small"].id and s.borrowed and s.lender == SECTORS.index("public")


def _fair_share_within_sector() -> tuple[Snapshot, dict[str, job]]:
    pending = [job("heavy").project("res").gpus(8).submitted(0),
               job("light").project("res2").gpus(8).submitted(9000)]
    return world_snap(pending, fill(0, 14, "pub", NOW - 100), usage={"res": 5e6, "res2": 1e3})


def _grants() -> tuple[Snapshot, dict[str, job]]:
    w = World(grants={"spent": ("res", "h100-sxm-80g", 100.0, 100.0, 0.0, 1e6),
                      "future": ("res", "h100-sxm-80g", 1e6, 0.0, 5e5, 1e6),
                      "ok": ("res", "h100-sxm-80g", 1e6, 0.0, 0.0, 1e6)})
    pending = [job("spent").grant("spent").gpus(1), job("future").grant("future").gpus(1),
               job("ok").grant("ok").gpus(1), job("none").gpus(1)]
    return world_snap(pending, world=w)


def _pacing() -> tuple[Snapshot, dict[str, job]]:
    # at NOW half of the period [0, 2*NOW) has elapsed
    w = World(grants={"behind": ("res", "h100-sxm-80g", 1e6, 1e5, 0.0, 2 * NOW),
                      "ahead": ("res2", "h100-sxm-80g", 1e6, 9e5, 0.0, 2 * NOW)})
    pending = [job("ahead").project("res2").grant("ahead").gpus(8).submitted(0),
               job("behind").project("res").grant("behind").gpus(8).submitted(9000)]
    return world_snap(pending, fill(0, 14, "pub", NOW - 100), world=w)


def _backfill() -> tuple[Snapshot, dict[str, job]]:
    busy = fill(0, 13, "pub", NOW - 100)  # limits 3600: end at NOW + 3500
    pending = [job("gang").gpus(32).submitted(0),
               job("short").gpus(8).limit(1000).submitted(10),
               job("long").gpus(8).limit(10_000).submitted(20)]
    return world_snap(pending, busy)


def _check_backfill(d: Decisions, jobs: dict[str, job]) -> None:
    r, r2 = d.reservations  # the blocked long job reserves too, behind the gang
    assert r.job_id == jobs["gang"].id and r.start == NOW + 3500 and len(r.nodes) == 4
    assert r2.job_id == jobs["long"].id and not set(r2.nodes) & set(r.nodes)
    assert nodes_of(d, jobs["short"])[0] in r.nodes  # backfilled onto a reserved node


def _started_this_cycle(shared: bool) -> Callable[[], tuple[Snapshot, dict[str, job]]]:
    """Node 15 is the only room: "first" starts there this cycle for 1,000 s (next to a running
    job that ends at NOW + 2000 when ``shared``); the whole-node job behind it must reserve
    node 15 for when both are gone, not a node that frees up at NOW + 3500, so that only the
    job that ends before that ("short", not "long") is backfilled onto node 15's free half."""
    def build() -> tuple[Snapshot, dict[str, job]]:
        busy = fill(0, 14, "pub", NOW - 100)  # limits 3600: end at NOW + 3500
        if shared:
            busy.append(job("half").project("pub").gpus(4).running(NOW - 1600, 15))
        pending = [job("first").gpus(4).limit(1000).submitted(0),
                   job("whole").gpus(8).submitted(10),
                   job("long").gpus(4).limit(5000).submitted(20),
                   job("short").gpus(4).limit(500).submitted(30)]
        return world_snap(pending, busy)
    return build


def _check_started_this_cycle(at: float) -> Callable[[Decisions, dict[str, job]], None]:
    def check(d: Decisions, jobs: dict[str, job]) -> None:
        r = d.reservations[0]
        assert r.job_id == jobs["whole"].id and r.start == at and r.nodes == (15,)
    return check


def _gang_behind_first(limit: float, expected: float
                       ) -> Callable[[], tuple[Snapshot, dict[str, job]]]:
    """Nodes 14 and 15 free: "first" takes both (``limit`` and ``expected`` runtime), a gang
    of two nodes waits behind it."""
    def build() -> tuple[Snapshot, dict[str, job]]:
        busy = fill(0, 13, "pub", NOW - 100)
        pending = [job("first").gpus(16).limit(limit).expected(expected).submitted(0),
                   job("gang").gpus(16).submitted(10)]
        return world_snap(pending, busy)
    return build


# "first" is expected to run 1,000 s of its 7,200 s limit
_gang_behind_estimated_start = _gang_behind_first(7200, 1000)


def _check_gang_behind_estimated_start(d: Decisions, jobs: dict[str, job]) -> None:
    (r,) = d.reservations  # running jobs release on their estimates, so do this cycle's starts
    assert r.job_id == jobs["gang"].id and r.start == NOW + 1000 and r.nodes == (14, 15)


def _gang_reserves_one_leaf() -> tuple[Snapshot, dict[str, job]]:
    # every node busy; nodes 3 (leaf 0), 4 and 5 (leaf 1) free up first, together
    busy = [job(f"b{n}").project("pub").gpus(8).limit(600 if n in (3, 4, 5) else 3600)
            .running(NOW - 100, n) for n in range(16)]
    return world_snap([job("gang").gpus(16)], busy)


def _check_gang_reserves_one_leaf(d: Decisions, jobs: dict[str, job]) -> None:
    (r,) = d.reservations
    assert r.start == NOW + 500 and r.nodes == (4, 5)


def _wide_world(nodes: int) -> World:
    """H100 nodes under leaves of two nodes and pods of three leaves (six nodes)."""
    ph = FleetPhase(name="wide", site="lab", nodes_per_leaf=2, leaves_per_pod=3,
                    groups=(NodeGroup(type=H100, nodes=nodes),))
    return World(fleet=build_fleet(ph))


def _gang_reserves_leaf_by_leaf() -> tuple[Snapshot, dict[str, job]]:
    # every node busy; nodes 2 (leaf 1) and 4 (leaf 2) free up first, then nodes 0, 1, 3 and
    # 5 together; pod 1 later: no leaf has three, pod 0 has six (two in each leaf)
    ends = {2: 200, 4: 300, 0: 400, 1: 400, 3: 400, 5: 400}
    busy = [job(f"b{n}").project("pub").gpus(8).limit(ends.get(n, 3600)).running(NOW - 100, n)
            for n in range(12)]
    return world_snap([job("gang").gpus(24)], busy, world=_wide_world(12))


def _check_gang_reserves_leaf_by_leaf(d: Decisions, jobs: dict[str, job]) -> None:
    # leaf 1 (frees first) whole, then leaf 2: two leaves, not one node of each of three
    (r,) = d.reservations
    assert r.start == NOW + 300 and r.nodes == (2, 3, 4)


def _gang_reserves_pod_by_pod() -> tuple[Snapshot, dict[str, job]]:
    # every node busy; node 6 (pod 1) and node 12 (pod 2) free up first, all others together;
    # seven nodes: more than a pod holds
    ends = {6: 200, 12: 300}
    busy = [job(f"b{n}").project("pub").gpus(8).limit(ends.get(n, 400)).running(NOW - 100, n)
            for n in range(18)]
    return world_snap([job("gang").gpus(56)], busy, world=_wide_world(18))


def _check_gang_reserves_pod_by_pod(d: Decisions, jobs: dict[str, job]) -> None:
    # pod 1 (frees first) whole, then node 12 of pod 2: two pods, not three
    (r,) = d.reservations
    assert r.start == NOW + 300 and r.nodes == (6, 7, 8, 9, 10, 11, 12)


# "first" has a limit of 1,000 s but an estimate of 9,000 s (a job is stopped at its limit,
# whatever its estimate says)
_estimate_past_the_limit = _gang_behind_first(1000, 9000)


def _check_estimate_past_the_limit(d: Decisions, jobs: dict[str, job]) -> None:
    (r,) = d.reservations
    assert r.job_id == jobs["gang"].id and r.start == NOW + 1000 and r.nodes == (14, 15)


def _running_estimate_past_the_limit() -> tuple[Snapshot, dict[str, job]]:
    # every node busy until NOW + 3500 but node 15, whose job's limit ends it at NOW + 400
    busy = fill(0, 14, "pub", NOW - 100)
    busy.append(job("over").project("pub").gpus(8).limit(500)
                .running(NOW - 100, 15, expected=20_000))
    return world_snap([job("whole").gpus(8)], busy)


def _check_running_estimate_past_the_limit(d: Decisions, jobs: dict[str, job]) -> None:
    (r,) = d.reservations
    assert r.job_id == jobs["whole"].id and r.start == NOW + 400 and r.nodes == (15,)


def _fifo_head_of_line() -> tuple[Snapshot, dict[str, job]]:
    busy = fill(0, 14, "pub", NOW - 100)
    pending = [job("gang").gpus(16).submitted(0), job("small").gpus(1).limit(1000).submitted(5),
               job("npu").type(NPU).gpus(8).submitted(6)]
    return world_snap(pending, busy)


def _preempt(lenders: bool, young_flex: bool) -> Callable[[], tuple[Snapshot, dict[str, job]]]:
    def build() -> tuple[Snapshot, dict[str, job]]:
        lend = 1 if lenders else -1
        busy = [job(f"b{n}").project("ind").gpus(8).running(NOW - 5000, n, lender=lend)
                for n in range(14)]
        old = job("old_flex").project("ind").gpus(8).cls("flexible").preemptible() \
            .running(NOW - 4000, 14, lender=lend)
        start = NOW - 100 if young_flex else NOW - 3000
        young = job("young_flex").project("ind").gpus(8).cls("flexible").preemptible() \
            .running(start, 15, lender=lend)
        pending = [job("res").project("res").gpus(8)]
        return world_snap(pending, [*busy, old, young], lenders=lenders)
    return build


def _preempt_other_lender(own_loan: bool) -> Callable[[], tuple[Snapshot, dict[str, job]]]:
    # industry holds the whole type, on loans named from public (and one from research)
    def build() -> tuple[Snapshot, dict[str, job]]:
        busy = [job(f"b{n}").project("ind").gpus(8).running(NOW - 5000, n, lender=2)
                for n in range(14)]
        busy.append(job("own").project("ind").gpus(8)
                    .running(NOW - 2000, 14, lender=1 if own_loan else 2))
        busy.append(job("young").project("ind").gpus(8).running(NOW - 1000, 15, lender=2))
        return world_snap([job("res").project("res").gpus(8)], busy)
    return build


def _own_loan_taken_by_the_first() -> tuple[Snapshot, dict[str, job]]:
    # research's one own loan goes to its first job; the second takes back another loan rather
    # than wait for the borrower already under notice
    busy = [job(f"b{n}").project("ind").gpus(8).running(NOW - 5000, n, lender=2)
            for n in range(14)]
    busy.append(job("b14").project("ind").gpus(8).running(NOW - 3000, 14, lender=2))
    busy.append(job("own").project("ind").gpus(8).running(NOW - 2000, 15, lender=1))
    pending = [job("r0").project("res").gpus(8).submitted(0),
               job("r1").project("res").gpus(8).submitted(1)]
    return world_snap(pending, busy)


def _own_young_loan() -> tuple[Snapshot, dict[str, job]]:
    # research's own borrower is younger than the minimum runtime: research waits for it rather
    # than taking back public's older loans
    busy = [job(f"b{n}").project("ind").gpus(8).running(NOW - 5000, n, lender=2)
            for n in range(15)]
    busy.append(job("own").project("ind").gpus(8).running(NOW - 100, 15, lender=1))
    return world_snap([job("res").project("res").gpus(8)], busy)


def _share_held_through_another_loan() -> tuple[Snapshot, dict[str, job]]:
    # Public borrowed industry's idle share; industry then started within its entitlement on
    # capacity that research keeps back (lend limit 0). Research, below its entitlement, takes
    # its share back from public's loans although none of them names research.
    w = World(lend_limit={"research": 0.0})
    pub = [job(f"p{n}").project("pub").gpus(8).running(NOW - 5000 + n, n, lender=0)
           for n in range(8)]
    ind = [job(f"i{n}").project("ind").gpus(8).running(NOW - 3000, n) for n in range(8, 14)]
    pending = [job(f"r{i}").project("res").gpus(8).submitted(i) for i in range(3)]
    return world_snap(pending, [*pub, *ind], world=w)


def _power(extra: float, down: bool = False, gone: bool = False
           ) -> Callable[[], tuple[Snapshot, dict[str, job]]]:
    """Two 8-accelerator jobs under a cap of the fleet's draw now plus ``extra`` of one job's
    start; ``down``: a node is down, its idle draw (8 × 70 W of 8 × 630 W a start adds) kept
    out of the headroom for when it comes back; ``gone``: it will not come back."""
    def build() -> tuple[Snapshot, dict[str, job]]:
        fleet = build_fleet("lab")
        if down:
            fleet.state[3] = NODE_DOWN
        w = World(fleet=fleet)
        pending = [job("first").gpus(8).submitted(0), job("second").gpus(8).submitted(1)]
        base = w.snapshot(pending, now=NOW)
        prep = prepare(base)
        cap = prep.power_w + 8 * float(prep.delta_w[0]) * extra
        snap, jobs = world_snap(pending, world=w, power_w=cap)
        if gone:
            snap = replace(snap, down_returns=fleet.state != NODE_DOWN)
        return snap, jobs
    return build


def _unavailable() -> tuple[Snapshot, dict[str, job]]:
    fleet = build_fleet("lab")
    fleet.state[3] = NODE_DRAIN
    w = World(fleet=fleet)
    pending = [job("too_many").shape(16, 8), job("too_wide").shape(1, 9),
               job("fits").shape(15, 8)]
    return world_snap(pending, world=w)


def _lending_repaid() -> tuple[Snapshot, dict[str, job]]:
    bal = np.zeros((3, 3))
    bal[0, 1] = 1e12  # research owes industry
    pending = [job("res").project("res").gpus(8), job("ind").project("ind").gpus(8)]
    return world_snap(pending, fill(0, 14, "pub", NOW - 100), balance=bal)


def _preempt_gang() -> tuple[Snapshot, dict[str, job]]:
    # industry holds every H100 node: whole-node batch jobs, and two nodes shared by small
    # flexible jobs; research needs two whole nodes
    busy = [job(f"b{n}").project("ind").gpus(8).running(NOW - 5000, n) for n in range(14)]
    small = [job(f"s{n}_{i}").project("ind").gpus(2).cls("flexible").preemptible()
             .running(NOW - 1000 - i, n) for n in (14, 15) for i in range(4)]
    return world_snap([job("gang").project("res").gpus(16)], [*busy, *small], lenders=False)


def _gang_behind_shared_loans() -> tuple[Snapshot, dict[str, job]]:
    # industry holds every H100, two 4-accelerator jobs a node, the youngest on the lowest
    # nodes. On nodes 0-5 one job of each pair borrows research's share (lender 1), the other
    # public's (lender 2). Research, using nothing, asks for two whole nodes. Its own loans (24
    # accelerators) are more than the gang's 16 but share every node with public's, so they
    # could never free a whole node however long it waited: the gang takes back both jobs of
    # the two youngest nodes (rule 8) instead of waiting for its loans to end
    running = [job(f"i{n}_{i}").project("ind").gpus(4)
               .running(NOW - 5000 + 100 * (16 - n) + i, n,
                        lender=(1 if i == 0 else 2) if n < 6 else (2 if n < 14 else -1))
               for n in range(16) for i in range(2)]
    return world_snap([job("gang").project("res").gpus(16)], running)


def _preempt_not_for_power_or_grant() -> tuple[Snapshot, dict[str, job]]:
    w = World(grants={"spent": ("res", "h100-sxm-80g", 10.0, 10.0, 0.0, 1e9)})
    busy = [job(f"b{n}").project("ind").gpus(8).cls("flexible").preemptible()
            .running(NOW - 5000, n) for n in range(16)]
    return world_snap([job("spent").project("res").grant("spent").gpus(8)], busy, world=w,
                      lenders=False)


def _power_and_backfill() -> tuple[Snapshot, dict[str, job]]:
    # power admits only one small job; the gang, checked for power before placement, is held
    # for power too (reasons: entitlement, then power, then resources)
    w = World()
    busy = fill(0, 13, "pub", NOW - 100)
    pending = [job("gang").gpus(32).submitted(0),
               job("short1").gpus(8).limit(1000).submitted(10),
               job("short2").gpus(8).limit(1000).submitted(20)]
    base = w.snapshot(pending, busy, now=NOW)
    prep = prepare(base)
    return world_snap(pending, busy, world=w,
                      power_w=prep.power_w + 8 * float(prep.delta_w[0]) * 1.5)


def _interactive_borrows() -> tuple[Snapshot, dict[str, job]]:
    # industry is above its entitlement; an interactive job still borrows idle research capacity
    busy = fill(0, 6, "ind", NOW - 100)
    return world_snap([job("inter").project("ind").gpus(4).cls("interactive")], busy)


CASES = [
    Case("gang is all or nothing", _gang_all_or_nothing, "fifo",
         reasons={"gang": H.RESOURCES}),
    Case("gang stays in one leaf", _gang_one_leaf, "fifo", started={"gang"},
         check=_check_one_leaf),
    Case("gang stays in one pod", _gang_one_pod, "fifo", started={"gang"},
         check=_check_one_pod),
    Case("small jobs best fit", _best_fit, "fifo", started={"two", "four"},
         check=_check_best_fit),
    Case("interactive before batch", _interactive_first, started={"inter"},
         reasons={"batch": H.RESOURCES}),
    Case("long interactive orders as batch", _big_interactive_is_batch, started={"batch"}),
    Case("flexible after batch", _flexible_last, started={"batch"},
         reasons={"flex": H.RESOURCES}),
    # industry and public run 43.2 above their entitlements, all of it on research's idle share
    # (there is no pool): once research's own job takes the last node, nothing is left to lend
    Case("tenant below entitlement served first", _below_entitlement_first, started={"res"},
         reasons={"ind": H.ENTITLEMENT}),
    Case("fifo ignores entitlement", _below_entitlement_first, "fifo", started={"ind"}),
    Case("idle capacity is lent", _borrowing, started={"big"}, check=_check_borrowing),
    Case("a lender's own starts shrink what it lends", _lender_uses_its_own_idle,
         started={"r_small"}, reasons={"r_big": H.ENTITLEMENT, "i_gang": H.ENTITLEMENT}),
    Case("no borrowing beyond what others lend", _quota_no_more_than_others_lend,
         reasons={"i_big": H.ENTITLEMENT}),
    Case("no backfill: quota holds keep their reason", _no_backfill_second_pass,
         Policy(backfill=False), started={"p2"},
         reasons={"p0": H.ENTITLEMENT, "p1": H.ENTITLEMENT, "p3": H.ENTITLEMENT,
                  "p4": H.RESOURCES}),
    Case("a loan ends when the borrower is back within its entitlement",
         _lent_is_what_is_borrowed_now, started={"p_big"}),
    Case("gang needs nodes that hold its share", _mixed_sizes, "fifo", started={"four_fours"},
         reasons={"two_eights": H.NODE_UNAVAILABLE}),
    Case("quotas never leave a fleet idle", _quotas_never_idle, started={"ind_all"},
         reasons={"res_all": H.ENTITLEMENT}),
    Case("held for quota: second pass by priority", _quotas_never_idle_small_first,
         started={"res_big"}, reasons={"ind_big": H.ENTITLEMENT}),
    Case("lending limit holds", _lend_limit, started={"fits"},
         reasons={"big": H.ENTITLEMENT}),
    Case("strict sector queueing: nothing of the sector passes its head", _room_claim, STRICT,
         started={"public"}, reasons={"big": H.ENTITLEMENT, "small": H.PRIORITY,
                                      "other_project": H.PRIORITY}),
    Case("best-effort sector queueing: later jobs take the room", _room_claim,
         started={"small", "other_project", "public"}, reasons={"big": H.ENTITLEMENT}),
    Case("strict: behind the head a job borrows nothing", _room_claim_borrow(4), STRICT,
         reasons={"big": H.ENTITLEMENT, "small": H.PRIORITY}),
    Case("strict: nor with no room left", _room_claim_borrow(7), STRICT,
         reasons={"big": H.ENTITLEMENT, "small": H.PRIORITY}),
    Case("best effort: behind a held job another borrows", _room_claim_borrow(7),
         started={"small"}, reasons={"big": H.ENTITLEMENT}, check=_check_room_claim_borrow),
    Case("strict: a job larger than its entitlement holds nobody", _lend_limit, STRICT,
         started={"fits"}, reasons={"big": H.ENTITLEMENT}),
    Case("fair share within a sector", _fair_share_within_sector, started={"light"}),
    Case("grants: exhausted, outside period, none", _grants,
         started={"ok", "none"},
         reasons={"spent": H.GRANT_EXHAUSTED, "future": H.GRANT_INACTIVE}),
    Case("grant required", _grants, Policy(require_grant=True), started={"ok"},
         reasons={"none": H.NO_GRANT}),
    Case("grant pacing: behind goes first", _pacing, started={"behind"}),
    Case("backfill only what ends before the reservation", _backfill, started={"short"},
         reasons={"gang": H.RESOURCES, "long": H.PRIORITY}, check=_check_backfill),
    Case("multifactor backfills too", _backfill, "multifactor", started={"short"},
         reasons={"long": H.PRIORITY}),
    Case("this cycle's start releases its node to the reservation", _started_this_cycle(False),
         started={"first", "short"},
         reasons={"whole": H.RESOURCES, "long": H.PRIORITY},
         check=_check_started_this_cycle(NOW + 1000)),
    Case("this cycle's start and a running job release together", _started_this_cycle(True),
         started={"first"}, reasons={"whole": H.RESOURCES},
         check=_check_started_this_cycle(NOW + 2000)),
    Case("gang reserves behind this cycle's start, by its estimate",
         _gang_behind_estimated_start, started={"first"}, reasons={"gang": H.RESOURCES},
         check=_check_gang_behind_estimated_start),
    Case("an estimate past the limit releases at the limit", _estimate_past_the_limit,
         started={"first"}, reasons={"gang": H.RESOURCES},
         check=_check_estimate_past_the_limit),
    Case("a running job's estimate past its limit releases at the limit",
         _running_estimate_past_the_limit, reasons={"whole": H.RESOURCES},
         check=_check_running_estimate_past_the_limit),
    Case("gang reservation stays in one leaf", _gang_reserves_one_leaf,
         reasons={"gang": H.RESOURCES}, check=_check_gang_reserves_one_leaf),
    Case("gang reservation in one pod takes leaf by leaf", _gang_reserves_leaf_by_leaf,
         reasons={"gang": H.RESOURCES}, check=_check_gang_reserves_leaf_by_leaf),
    Case("gang reservation across pods takes pod by pod", _gang_reserves_pod_by_pod,
         reasons={"gang": H.RESOURCES}, check=_check_gang_reserves_pod_by_pod),
    Case("fifo blocks behind the head", _fifo_head_of_line, "fifo", started={"npu"},
         reasons={"gang": H.RESOURCES, "small": H.PRIORITY}),
    Case("backfill passes the head", _fifo_head_of_line, "multifactor",
         started={"small", "npu"}),
    Case("preempt youngest flexible (derived lending)", _preempt(False, False),
         reasons={"res": H.PREEMPTING}, preempted={"young_flex"}),
    Case("preempt respects minimum runtime", _preempt(False, True),
         reasons={"res": H.PREEMPTING}, preempted={"old_flex"}),
    Case("preempt by lender column", _preempt(True, False),
         reasons={"res": H.PREEMPTING}, preempted={"young_flex"}),
    Case("own loans are taken back first", _preempt_other_lender(True),
         reasons={"res": H.PREEMPTING}, preempted={"own"}),
    Case("then any loan of the type", _preempt_other_lender(False),
         reasons={"res": H.PREEMPTING}, preempted={"young"}),
    Case("a loan already taken back holds no later job", _own_loan_taken_by_the_first,
         reasons={"r0": H.PREEMPTING, "r1": H.PREEMPTING}, preempted={"own", "b14"}),
    Case("a sector waits for its own young loan", _own_young_loan,
         reasons={"res": H.RESOURCES}),
    Case("a share held through another sector's loan is taken back",
         _share_held_through_another_loan, started={"r0", "r1"},
         reasons={"r2": H.PREEMPTING}, preempted={"p7"}),
    Case("no preemption in multifactor", _preempt(False, False), "multifactor",
         reasons={"res": H.RESOURCES}),
    Case("power cap admits one", _power(1.5), started={"first"},
         reasons={"second": H.POWER_CAP}),
    Case("power cap admits both", _power(2.0), started={"first", "second"}),
    Case("power cap admits one with 5 % to spare", _power(1.05), started={"first"}),
    Case("a down node's idle draw is kept for its return", _power(1.05, down=True),
         reasons={"first": H.POWER_CAP, "second": H.POWER_CAP}),
    Case("not for a node gone for good", _power(1.05, down=True, gone=True), started={"first"}),
    Case("shape fits no node in service", _unavailable, started={"fits"},
         reasons={"too_many": H.NODE_UNAVAILABLE, "too_wide": H.NODE_UNAVAILABLE}),
    Case("lenders are repaid through priority", _lending_repaid, started={"ind"}),
    Case("preempt whole nodes for a gang: flexible first", _preempt_gang,
         reasons={"gang": H.PREEMPTING},
         preempted={f"s{n}_{i}" for n in (14, 15) for i in range(4)}),
    Case("a gang its own loans could never free takes back other loans", _gang_behind_shared_loans,
         reasons={"gang": H.PREEMPTING}, preempted={"i0_0", "i0_1", "i1_0", "i1_1"}),
    Case("no preemption for an exhausted grant", _preempt_not_for_power_or_grant,
         reasons={"spent": H.GRANT_EXHAUSTED}),
    Case("power cap with backfill", _power_and_backfill, started={"short1"},
         reasons={"gang": H.POWER_CAP, "short2": H.POWER_CAP}),
    Case("interactive borrows above entitlement", _interactive_borrows, started={"inter"},
         check=lambda d, jobs: _check_lender(d, 1)),
]


def _check_lender(d: Decisions, lender: int) -> None:
    (s,) = d.starts
    assert s.borrowed and s.lender == lender


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    snap, jobs = case.build()
    got = schedule(snap, case.policy)
    by_id = {j.id: name for name, j in jobs.items()}
    started = {by_id[s.job_id] for s in got.starts}
    pend_names = [by_id[int(i)] for i in snap.pending.id]
    assert started == case.started
    got_reasons = {n: H(int(r)) for n, r in zip(pend_names, got.reason, strict=True)}
    for name in case.started:
        assert got_reasons[name] == H.NONE
    for name, want in case.reasons.items():
        assert got_reasons[name] == want, name
    assert {by_id[p.job_id] for p in got.preempts} == case.preempted
    for p in got.preempts:
        assert p.grace_s == Policy().grace_s and "checkpoint" in p.message
    if case.check:
        case.check(got, jobs)
    # pure: the same snapshot gives the same decisions
    again = schedule(snap, case.policy)
    assert again.starts == got.starts and np.array_equal(again.reason, got.reason)
