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
    lent_out,
    owed_factor,
    sector_use,
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


def test_accumulate_lending_by_pair() -> None:
    w = World()
    running = [job("a").project("ind").gpus(8).running(0.0, 0, lender=1),
               job("b").project("pub").gpus(4).running(0.0, 1, lender=0),
               job("c").project("res").gpus(8).running(0.0, 2)]
    snap = w.snapshot([], running)
    bal = accumulate_lending(None, snap.running, snap.tenancy, 10.0)
    want = np.zeros((3, 3))
    want[1, 0] = 80.0  # research lent 8 accelerators to industry for 10 s
    want[0, 2] = 40.0
    assert np.array_equal(bal, want)
    again = accumulate_lending(bal, snap.running, snap.tenancy, 5.0)
    assert again[1, 0] == 120.0 and bal[1, 0] == 80.0  # a new array; the input is kept
    owed = owed_factor(again, 3, 60.0)
    assert owed[1] > 0 and owed[2] == 0.0


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
