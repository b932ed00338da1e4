"""The pure parts of the cycle: usage decay, fair tree, pacing, water filling, the lending ledger,
fragmentation, policy presets and messages (docs/design/0001-scheduling.md)."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.errors import ConfigError
from aicc.fleet import build_fleet
from aicc.scheduler import (
    POLICIES,
    HoldReason,
    Policy,
    accumulate_lending,
    decay_usage,
    explain,
    fragmentation,
    hold_messages,
    schedule,
)
from aicc.scheduler.fairshare import fair_tree_factor, flat_fairshare_factor, pacing_factor
from aicc.scheduler.lending import (
    borrowed_rows,
    entitlements,
    lent_out,
    owed_factor,
    sector_use,
    split_loans,
    water_fill,
)
from aicc.scheduler.snapshot import JobSpec, JobTable
from scheduler.builders import World, fill, job


@pytest.mark.parametrize(("usage", "elapsed", "half", "want"), [
    (100.0, 0.0, 10.0, 100.0),
    (100.0, 10.0, 10.0, 50.0),
    (100.0, 30.0, 10.0, 12.5),
    (0.0, 5.0, 10.0, 0.0),
])
def test_decay_usage(usage: float, elapsed: float, half: float, want: float) -> None:
    assert decay_usage(usage, elapsed, half) == pytest.approx(want)


def test_decay_usage_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="half_life_s"):
        decay_usage(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="elapsed_s"):
        decay_usage(1.0, -1.0, 10.0)
    got = decay_usage(np.array([8.0, 4.0]), 20.0, 10.0)
    assert np.allclose(got, [2.0, 1.0])


def test_fair_tree_ranks_sector_then_org_then_project() -> None:
    # two sectors of equal share; sector 0 used more; within sector 1, org 2 used more
    org_sector = np.array([0, 1, 1])
    project_org = np.array([0, 1, 2, 2])
    usage = np.array([100.0, 10.0, 30.0, 0.0])
    f = fair_tree_factor(project_org, org_sector, np.ones(3), np.ones(4), np.array([0.5, 0.5]),
                         usage)
    # sector 1 first (less used); in it org 1 (10) before org 2 (30); in org 2 project 3 (0)
    # before project 2 (30); sector 0 last
    assert list(np.argsort(-f)) == [1, 3, 2, 0]
    assert f.max() <= 1.0 and f.min() >= 0.0


def test_fair_tree_equal_tenants_share_a_rank() -> None:
    f = fair_tree_factor(np.array([0, 0]), np.array([0]), np.ones(1), np.ones(2),
                         np.array([1.0]), np.array([5.0, 5.0]))
    assert f[0] == f[1]


def test_flat_fairshare_is_slurm_classic() -> None:
    f = flat_fairshare_factor(np.array([0, 1]), np.array([0, 0]), np.ones(2), np.ones(2),
                              np.array([1.0]), np.array([1.0, 0.0]))
    # project 0 used everything with a share of 0.5: 2^(-1/0.5) = 0.25; project 1: 2^0 = 1
    assert np.allclose(f, [0.25, 1.0])


@pytest.mark.parametrize(("used", "now", "want"), [
    (0.0, 50.0, 0.75),  # behind: priority up
    (50.0, 50.0, 0.5),  # on pace
    (100.0, 50.0, 0.25),  # ahead: priority down
    (0.0, 0.0, 0.5),
])
def test_pacing_factor(used: float, now: float, want: float) -> None:
    got = pacing_factor(np.array([100.0]), np.array([used]), np.array([0.0]), np.array([100.0]),
                        now)
    assert got[0] == pytest.approx(want)


def test_water_fill_proportional_and_capped() -> None:
    # 90 to share; weights 2:1; sector 0 wants only 20 so sector 1 gets the rest up to 100
    got = water_fill(np.array([90.0]), np.array([[2.0], [1.0]]), np.array([[20.0], [100.0]]))
    assert np.allclose(got[:, 0], [20.0, 70.0])
    got = water_fill(np.array([90.0]), np.array([[2.0], [1.0]]), np.array([[100.0], [100.0]]))
    assert np.allclose(got[:, 0], [60.0, 30.0])


HALF = 7 * 86400.0


def test_accumulate_lending_adds_loans_and_decays_with_the_usage_half_life() -> None:
    loans = np.zeros((3, 3))
    loans[1, 0] = 8.0  # research lends 8 accelerators to industry
    bal = accumulate_lending(None, loans, 10.0, HALF)
    assert bal[1, 0] == pytest.approx(80.0, rel=1e-4)  # loans × elapsed over a short interval
    assert bal.sum() == bal[1, 0]
    # the loan ends: the balance halves every half-life, as fair-share usage does
    later = accumulate_lending(bal, np.zeros((3, 3)), HALF, HALF)
    assert later[1, 0] == pytest.approx(bal[1, 0] / 2, rel=1e-12)
    assert bal[1, 0] == pytest.approx(80.0, rel=1e-4)  # a new array; the input is kept
    # a loan held one half-life: each second weighs by its age, whatever the steps
    once = accumulate_lending(None, loans, HALF, HALF)
    assert once[1, 0] == pytest.approx(8.0 * HALF / (2 * np.log(2)), rel=1e-12)
    steps = None
    for _ in range(7):
        steps = accumulate_lending(steps, loans, HALF / 7, HALF)
    assert steps[1, 0] == pytest.approx(once[1, 0], rel=1e-12)
    assert accumulate_lending(bal, loans, 0.0, HALF).tolist() == bal.tolist()
    with pytest.raises(ValueError, match="elapsed_s"):
        accumulate_lending(bal, loans, -1.0, HALF)
    owed = owed_factor(steps, 3, 60.0)
    assert owed[1] > 0 and owed[0] == 0.0 and owed[2] == 0.0


def _loans_now(snap) -> np.ndarray:
    """The loans a cycle on ``snap`` finds in force before its starts, [lender, borrower]."""
    ten = snap.tenancy
    type_cap = np.bincount(snap.fleet.type_idx, weights=snap.fleet.capacity,
                           minlength=len(snap.fleet.catalog)).astype(np.float64)
    return np.array(entitlements(ten, snap.running, type_cap,
                                 np.zeros((3, len(type_cap)))).loans)


def test_a_job_borrowing_part_of_its_size_is_a_loan_of_the_excess_only() -> None:
    # industry (entitled to 51.2 H100) runs 48 and starts 8 more: 4.8 above its entitlement,
    # lent by research (most idle; the H100 pool is empty), not the job's 8
    w = World()
    snap = w.snapshot([job("more").project("ind").gpus(8)], fill(0, 5, "ind", start=0.0))
    d = schedule(snap)
    assert len(d.starts) == 1 and d.starts[0].borrowed and d.starts[0].lender == 1
    want = np.zeros((3, 3))
    want[1, 0] = 4.8
    assert d.loans == pytest.approx(want)
    # what the next cycle sees in the running table: the same loans
    started = job("more").project("ind").gpus(8).running(10_000.0, 6, lender=1)
    after = w.snapshot([], [*fill(0, 5, "ind", start=0.0), started])
    assert _loans_now(after) == pytest.approx(want)
    bal = accumulate_lending(None, d.loans, 3600.0, HALF)
    assert bal[1, 0] == pytest.approx(4.8 * 3600.0, rel=1e-2)


def test_loans_per_pair_named_lender_then_other_sectors_within_lend_limits() -> None:
    # research runs 72 (20.8 above its 51.2) naming industry, which has 19.2 idle: the other
    # 1.6 comes from public (within its lend limit); industry is owed 19.2, public 1.6
    w = World(lend_limit={"public": 0.5})
    borrower = job("r").project("res").gpus(72).running(0.0, *range(4, 13), lender=0)
    got = _loans_now(w.snapshot([], [*fill(0, 3, "ind"), borrower]))
    assert got[0, 1] == pytest.approx(19.2) and got[2, 1] == pytest.approx(1.6)
    assert got.sum() == pytest.approx(20.8)


def test_a_named_lender_lends_at_most_its_idle_entitlement() -> None:
    # industry runs 64 (12.8 above its 51.2), its youngest two jobs naming research; research
    # runs 48 (3.2 idle), public 16 (9.6 idle): research lends 3.2, public the other 9.6
    w = World()
    ind = [job(f"i{n}").project("ind").gpus(8).running(float(n), n, lender=1 if n >= 6 else -1)
           for n in range(8)]
    run = [*ind, *fill(8, 13, "res"), *fill(14, 15, "pub")]
    got = _loans_now(w.snapshot([], run))
    assert got[1, 0] == pytest.approx(3.2) and got[2, 0] == pytest.approx(9.6)
    assert got.sum() == pytest.approx(12.8)


def test_loans_from_the_pool_are_owed_to_no_sector() -> None:
    # a fleet with a pool (entitlements add up to 0.8): industry runs 56, 17.6 above its 38.4;
    # the pool (25.6) lends it all when its jobs name no sector, lender column or not
    w = World(entitlement={"industry": 0.3, "research": 0.3, "public": 0.2})
    assert not _loans_now(w.snapshot([], fill(0, 6, "ind"), lenders=False)).any()
    assert not _loans_now(w.snapshot([], fill(0, 6, "ind"))).any()
    # a sector its jobs name comes first
    assert _loans_now(w.snapshot([], fill(0, 6, "ind", lender=1)))[1, 0] == pytest.approx(17.6)


def test_loans_per_pair_add_up_to_what_each_sector_lends() -> None:
    rng = np.random.default_rng(7)
    for trial in range(300):
        n_s, n_t = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        cap = rng.uniform(0, 100, (n_s, n_t)).round()
        used = rng.uniform(0, 150, (n_s, n_t)).round()
        named = None if trial % 3 == 0 else rng.uniform(0, 40, (n_s, n_s, n_t)).round()
        type_cap = cap.sum(axis=0) + rng.uniform(-10, 40, n_t).round()
        lend_cap = cap * rng.uniform(0, 1, (n_s, 1))
        got = split_loans(None if named is None else named.tolist(), used.tolist(),
                          cap.tolist(), type_cap.tolist(), lend_cap.tolist())
        pairs, lent = np.array(got.pairs), np.array(got.lent)
        over = np.maximum(used - cap, 0.0)
        assert np.allclose(pairs.sum(axis=1), lent.sum(axis=1))  # each lender's loans
        assert (pairs.sum(axis=0) <= over.sum(axis=1) + 1e-9).all()  # no more than borrowed
        assert not np.diag(pairs).any() and (pairs >= 0).all()
        assert np.allclose(pairs.sum() + np.sum(got.pool), np.minimum(
            over.sum(), lent.sum() + np.sum(got.pool)))


def test_baseline_policies_report_no_loans() -> None:
    snap = World().snapshot([job("more").project("ind").gpus(8)], fill(0, 6, "ind"))
    for pol in ("fifo", "multifactor"):
        d = schedule(snap, pol)
        assert d.loans.shape == (3, 3) and not d.loans.any()


def test_borrowed_rows_derived_youngest_first() -> None:
    w = World()
    # industry (entitled to 51.2 H100) runs 8 whole nodes = 64: 12.8 above, the youngest two
    running = [j for n in range(8)
               for j in [job(f"i{n}").project("ind").gpus(8).running(float(n), n)]]
    snap = w.snapshot([], running, lenders=False)
    ent = np.array(snap.tenancy.entitlement) * 128
    used = np.zeros_like(ent)
    used[0, 0] = 64
    got = borrowed_rows(snap.running, snap.tenancy.project_sector, ent, used)
    assert got.tolist() == [False] * 6 + [True, True]


def test_borrowed_rows_named_lender_only_up_to_the_excess() -> None:
    w = World()
    # industry (51.2) runs 8 whole nodes = 64, the first six named no lender, the last two
    # named research: 12.8 above its entitlement, so both named ones still borrow
    running = [job(f"i{n}").project("ind").gpus(8).running(float(n), n, lender=1 if n >= 6
                                                                       else -1)
               for n in range(8)]
    snap = w.snapshot([], running)
    ent = np.array(snap.tenancy.entitlement) * 128
    used = np.zeros_like(ent)
    used[0, 0] = 64
    got = borrowed_rows(snap.running, snap.tenancy.project_sector, ent, used)
    assert got.tolist() == [False] * 6 + [True, True]
    # back under its entitlement (48 in use), no job of industry borrows, named or not
    used[0, 0] = 48
    got = borrowed_rows(snap.running, snap.tenancy.project_sector, ent, used)
    assert not got.any()


def _lent(snap, lend_limit: dict[str, float]):
    ten = snap.tenancy
    type_cap = np.bincount(snap.fleet.type_idx, weights=snap.fleet.capacity,
                           minlength=len(snap.fleet.catalog)).astype(np.float64)
    cap = np.asarray(ten.entitlement) * type_cap[None, :]
    used = sector_use(snap.running, ten.project_sector, *cap.shape)
    limit = np.array([lend_limit.get(s, 1.0) for s in ten.sector_names])
    return lent_out(snap.running, used, cap, type_cap, ten.project_sector, limit[:, None] * cap)


def test_lent_out_charges_no_pool_that_does_not_exist() -> None:
    # research runs 72 (20.8 above its 51.2) naming industry, which has 19.2 idle: the other
    # 1.6 comes from public (entitled 25.6, lends at most 12.8), not from a pool (there is none)
    w = World(lend_limit={"public": 0.5})
    borrower = job("r").project("res").gpus(72).running(0.0, *range(4, 13), lender=0)
    run = [*fill(0, 3, "ind"), borrower]
    lent, pool_lent = _lent(w.snapshot([], run), {"public": 0.5})
    assert lent[:, 0].tolist() == pytest.approx([19.2, 0.0, 1.6])
    assert pool_lent[0] == 0.0


def test_lent_out_without_lenders_keeps_to_lend_limits() -> None:
    # industry runs 64 (12.8 above) with no lender column; public lends nothing: research lent it
    w = World(lend_limit={"public": 0.0})
    lent, pool_lent = _lent(w.snapshot([], fill(0, 7, "ind"), lenders=False), {"public": 0.0})
    assert lent[:, 0].tolist() == pytest.approx([0.0, 12.8, 0.0])
    assert pool_lent[0] == 0.0


def test_fragmentation() -> None:
    fleet = build_fleet("lab")
    free = fleet.capacity.copy()
    assert fragmentation(fleet, free) == 0.0
    free[0] = 4  # 4 stranded accelerators out of 252 free
    assert fragmentation(fleet, free) == pytest.approx(4 / 252)
    assert fragmentation(fleet, np.zeros_like(free)) == 0.0


def test_stats_report_fragmentation_and_power() -> None:
    snap = World().snapshot([job("one").gpus(1)], fill(0, 0, "pub"))
    d = schedule(snap)
    assert d.stats["fragmentation_before"] == 0.0
    assert d.stats["fragmentation_after"] == pytest.approx(7 / 247)
    assert d.stats["power_w_after"] > d.stats["power_w_before"]
    assert d.considered == 1


def test_policy_presets_and_validation() -> None:
    assert {"fifo", "multifactor", "fairshare"} == set(POLICIES)
    assert Policy.preset("fifo").backfill is False
    assert Policy.preset("multifactor").entitlements is False
    with pytest.raises(ConfigError) as err:
        Policy.preset("lottery")
    assert err.value.field == "policy"
    with pytest.raises(ValueError, match="grace_s"):
        Policy(grace_s=-1)
    with pytest.raises(ConfigError):
        schedule(World().snapshot([]), "lottery")


def test_explain_every_reason() -> None:
    for r in HoldReason:
        msg = explain(r, shape="2x8", type_name="h100-sxm-80g")
        assert msg and "{" not in msg
    assert "2x8" in explain(HoldReason.RESOURCES, shape="2x8", type_name="b200")


def test_empty_queue_and_running_table_without_lenders() -> None:
    snap = World().snapshot([])
    d = schedule(snap)
    assert d.starts == [] and len(d.reason) == 0
    t = JobTable.from_specs([JobSpec(1, 0, 0, 1, 1, 60.0)])
    assert t.lender.tolist() == [-1]


def test_hold_messages_name_shape_and_type() -> None:
    snap = World().snapshot([job("big").shape(20, 8), job("ok").gpus(1)])
    d = schedule(snap)
    msgs = hold_messages(snap, d)
    big = snap.pending.id[0]
    assert list(msgs) == [int(big)]
    assert msgs[int(big)] == "no node in service can hold a gang of 20x8"


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda s: {"free": s.free[:-1]}, "snapshot.free"),
    (lambda s: {"lending_balance_s": np.zeros((2, 2))}, "snapshot.lending_balance_s"),
])
def test_invalid_snapshot_names_the_field(mutate: object, field: str) -> None:
    from aicc.errors import InvalidInput
    from aicc.scheduler.snapshot import Snapshot

    snap = World().snapshot([job("a").gpus(1)])
    bad = Snapshot(**{**snap.__dict__, **mutate(snap)})  # type: ignore[operator]
    with pytest.raises(InvalidInput) as err:
        schedule(bad)
    assert err.value.field == field


def test_pending_project_out_of_range_is_invalid() -> None:
    from aicc.errors import InvalidInput

    snap = World().snapshot([job("a").gpus(1)])
    snap.pending.project[0] = 99
    with pytest.raises(InvalidInput) as err:
        schedule(snap)
    assert err.value.field == "snapshot.pending.project"
