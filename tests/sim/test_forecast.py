"""Start-time forecast: a fork of live state, checked by hand and against a replay."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from aicc.errors import InvalidInput
from aicc.scheduler.policy import resolve
from aicc.scheduler.snapshot import Grants, JobClass, JobSpec, JobTable, Snapshot
from aicc.sim.forecast import (
    Arrivals,
    History,
    _fork,
    forecast_all,
    forecast_start,
    measure_error,
    replay_history,
)
from aicc.sim.loop import Cancelled, SimConfig, Simulator, simulate
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import map_tenants

from .helpers import setup, workload


def _snapshot(b_class: JobClass = JobClass.BATCH):
    fleet = custom_fleet(1, "h100-sxm-80g")
    tm = map_tenants(["t"], len(fleet.catalog))
    t = fleet.catalog.index("h100-sxm-80g")
    # A (id 10) runs 8 accelerators since t=0 with a 2 h limit; B (11, 8) and C (12, 4) wait
    running = JobTable.from_specs(
        [JobSpec(10, 0, t, 1, 8, 7200.0, submit_time=0.0, start_time=0.0)], [[(0, 8)]])
    pending = JobTable.from_specs([
        JobSpec(11, 0, t, 1, 8, 3600.0, b_class, submit_time=100.0),
        JobSpec(12, 0, t, 1, 4, 1800.0, submit_time=200.0),
    ])
    return Snapshot(now=1000.0, fleet=fleet, free=np.zeros(1, dtype=np.int16), running=running,
                    pending=pending, tenancy=tm.tenancy, grants=Grants.empty(),
                    usage_decayed_s=np.zeros(1))


def test_forecast_by_hand():
    snap = _snapshot()
    f = forecast_start(snap, 11, "fifo", min_cycle_s=0.0)
    # A ends at its limit (7200); B starts then and holds the node for its 1 h limit
    assert f.predicted_start == 7200.0 and f.wait_s == 6200.0
    starts, _ = forecast_all(snap, "fifo", min_cycle_s=0.0)
    assert starts == {11: 7200.0, 12: 7200.0 + 3600.0}
    assert forecast_start(snap, 10, "fifo").predicted_start == 0.0  # running: its real start
    with pytest.raises(KeyError):
        forecast_start(snap, 99, "fifo")


def test_a_running_job_under_notice_stops_in_the_fork():
    # A (id 10) holds the node until its limit at 7200 but was told to stop at 2000 (rule 8);
    # B (11) waits, interactive, so it goes before A once A is requeued: B starts when A stops
    # (the next cycle after the stop), not at A's limit
    snap = _snapshot(b_class=JobClass.INTERACTIVE)
    assert forecast_start(snap, 11, "multifactor", min_cycle_s=60.0).predicted_start == 7200.0
    told = forecast_start(snap, 11, "multifactor", min_cycle_s=60.0, notices={10: 2000.0})
    assert told.predicted_start == 2060.0


def test_a_run_the_fork_found_going_keeps_its_work_when_stopped():
    # A started at 0 (7200 s limit) and was told to stop at 2000; forked at 1000 it has 6200 s
    # left, of which it does 1000 before the stop: 5200 remain after it, not 4200 (the time it
    # ran before the fork is already out of its remaining time). FIFO: A restarts at the next
    # cycle (2060) and B follows it at 7260
    f = forecast_start(_snapshot(), 11, "fifo", min_cycle_s=60.0, notices={10: 2000.0})
    assert f.predicted_start == 7260.0


def _stopped_on_grant_0(total_0: float, named_grant: int) -> float | None:
    """B's forecast start when A, running on grant 0 (``total_0`` accelerator-seconds, 8 × 1000
    used at the fork) beside grant 1 (plenty), is told to stop at 2000; ``named_grant``: the
    grant A named (-1: none, chosen at its start; 2: one past the grants, not active). FIFO,
    grants required, 60 s cycles."""
    snap = _snapshot()
    t = int(snap.running.type_idx[0])
    grants = Grants(project=np.zeros(2, dtype=np.int32), type_idx=np.full(2, t, dtype=np.int16),
                    total_s=np.array([total_0, 8 * 1e6]), used_s=np.array([8 * 1000.0, 0.0]),
                    start=np.zeros(2), end=np.array([1e6, 2e6]))
    running = snap.running
    running.grant[:] = 0
    snap = replace(snap, grants=grants, running=running)
    pol = resolve("fifo").model_copy(update={"require_grant": True})
    return forecast_start(snap, 11, pol, min_cycle_s=60.0, notices={10: 2000.0},
                          named_grant=np.array([named_grant])).predicted_start


def test_a_requeued_fork_job_that_named_no_grant_takes_the_grant_live_at_its_restart():
    # A runs on grant 0, which it was given at its start (it named none); told to stop at 2000,
    # it has spent grant 0 by then (8 × 2000 > 8 × 1500 accelerator-seconds). Grant 1 has
    # hours. FIFO with grants required: A, chosen again, restarts on grant 1 at the next cycle
    # (2060) and B waits for it (7260), as the live loop would do. Had A named grant 0, it
    # would wait for it, spent, and B would start at 2060.
    assert _stopped_on_grant_0(8 * 1500.0, named_grant=-1) == 7260.0
    assert _stopped_on_grant_0(8 * 1500.0, named_grant=0) == 2060.0


def test_a_requeued_fork_job_whose_named_grant_is_not_active_waits_for_it():
    # as above, both grants with hours; A named a grant that is now suspended (one past the
    # snapshot's active grants): stopped at 2000, it waits for that grant in the fork as the
    # live loop would hold it (grant_inactive), so B starts at the next cycle (2060). Had A named
    # the active grant 0, it would restart first and B would follow it (7260).
    assert _stopped_on_grant_0(8 * 1e6, named_grant=2) == 2060.0
    assert _stopped_on_grant_0(8 * 1e6, named_grant=0) == 7260.0


def test_a_cancelled_forecast_stops_at_its_next_cycle():
    asked: list[int] = []

    def cancelled() -> bool:  # the caller goes away after the first cycle
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(Cancelled):
        forecast_start(_snapshot(), 12, "fifo", min_cycle_s=0.0, cancelled=cancelled)
    assert len(asked) == 2  # asked before each cycle: the second call ended the run
    # never cancelled: asked once per cycle, the same answer as without the callback
    asked.clear()
    f = forecast_start(_snapshot(), 12, "fifo", min_cycle_s=0.0, cancelled=lambda: bool(
        asked.append(1)))
    assert f.predicted_start == 7200.0 + 3600.0 and len(asked) == f.cycles


def test_forecast_beyond_horizon_is_none():
    f = forecast_start(_snapshot(), 12, "fifo", min_cycle_s=0.0, horizon_s=3600.0)
    assert f.predicted_start is None


def test_forecast_is_exact_when_limits_are_runtimes_and_nothing_arrives():
    rng = np.random.default_rng(3)
    n = 60
    runtime = rng.integers(1, 5, n) * 3600.0  # whole hours: the limit equals the runtime
    w = workload(np.zeros(n), runtime, rng.choice([1, 2, 4, 8], n))
    jobs, fleet, tm = setup(w, nodes=2)
    err = measure_error(jobs, fleet, tm.tenancy, "fifo", probes=3, min_cycle_s=0.0,
                        models=("none",))["models"]["none"]
    assert err["forecasts"] > 0
    assert err["median_abs_error_s"] == 0.0 and err["p90_abs_error_s"] == 0.0


def test_forecast_error_on_a_replay_is_measured():
    rng = np.random.default_rng(4)
    n = 200
    w = workload(np.sort(rng.uniform(0, 40_000, n)), rng.lognormal(7, 1.2, n),
                 rng.choice([1, 2, 4, 8], n), [f"vc{k}" for k in rng.integers(0, 3, n)])
    jobs, fleet, tm = setup(w, nodes=6)
    out = measure_error(jobs, fleet, tm.tenancy, "fairshare", probes=3, samples=3)
    none, hist = out["models"]["none"], out["models"]["history"]
    # the same probes and the same jobs for both models
    assert none["forecasts"] + none["beyond_horizon"] == hist["forecasts"] + hist["beyond_horizon"]
    for err in (none, hist):
        assert err["forecasts"] > 0
        assert np.isfinite(err["median_abs_error_s"]) and 0 <= err["within_1h"] <= 1
        assert 0 <= err["within_range"] <= 1 and err["latency_median_s"] > 0


# --- future arrivals: the window's history submitted again ----------------------------------

H = 3600.0


def _stream_replay(days: int = 10, burst_at: float = 7 * 86400 + 0.5 * H):
    """One node; every four hours a light tenant submits a one-hour whole-node job and a heavy
    one, two hours later, a two-hour job, so the heavy one has used more when its burst of
    six two-hour jobs arrives at ``burst_at``: under fair share the light tenant's later jobs
    overtake the burst. Runtimes are whole hours, so limits are runtimes."""
    sub, rt, ten = [], [], []
    for k in range(days * 6):
        sub += [k * 4 * H, k * 4 * H + 2 * H]
        rt += [H, 2 * H]
        ten += ["light", "heavy"]
    for i in range(6):
        sub.append(burst_at + i)
        rt.append(2 * H)
        ten.append("heavy")
    o = np.argsort(sub, kind="stable")
    w = workload(np.asarray(sub)[o], np.asarray(rt)[o], np.full(len(sub), 8),
                 [ten[i] for i in o])
    jobs, fleet, tm = setup(w, nodes=1)
    at = burst_at + 60.0
    sim = Simulator(jobs, fleet, tm.tenancy, SimConfig(policy="fairshare", until_s=at))
    sim.run()
    return jobs, fleet, tm, sim, at


def test_history_arrivals_overtake_and_match_the_replay():
    jobs, fleet, tm, sim, at = _stream_replay()
    truth = simulate(jobs, fleet, tm.tenancy, SimConfig(policy="fairshare"))
    snap = sim.snapshot(at)
    hist = replay_history(jobs, sim, at)
    none, _ = forecast_all(snap, "fairshare")
    past, st = forecast_all(snap, "fairshare", arrivals=Arrivals("history", hist, samples=3))
    assert len(none) == 6 and st.future_jobs > 0
    real = {j: float(truth.first_start[j]) for j in none}
    # the light tenant's later jobs pass the burst: nothing arriving is early, history is not
    later = [j for j in none if past[j] > none[j]]
    assert later and all(past[j] >= none[j] for j in none)
    err_none = sum(abs(none[j] - real[j]) for j in none)
    err_hist = sum(abs(past[j] - real[j]) for j in none)
    assert err_hist < err_none
    assert err_hist == 0.0  # the stream really continues as it was, hour for hour


def test_range_contains_the_median_and_same_seed_same_forecast():
    jobs, _, _, sim, at = _stream_replay()
    snap = sim.snapshot(at)
    hist = replay_history(jobs, sim, at)
    job = int(snap.pending.id[-1])
    arr = Arrivals("history", hist, samples=5, seed=7)
    a = forecast_start(snap, job, "fairshare", arrivals=arr)
    b = forecast_start(snap, job, "fairshare", arrivals=arr)
    assert (a.predicted_start, a.start_low, a.start_high) == (
        b.predicted_start, b.start_low, b.start_high)
    assert a.start_low <= a.predicted_start <= a.start_high
    assert a.samples == 5 and a.arrivals == "history" and a.future_jobs > 0
    _, st = forecast_all(snap, "fairshare", arrivals=arr)
    assert (st.low <= st.median).all() and (st.median <= st.high).all()
    # the samples are what the generator draws: the same seed, the same futures
    for k in range(5):
        f1, f2 = arr.future(k, at, 86400.0 * 30), arr.future(k, at, 86400.0 * 30)
        assert np.array_equal(f1.submit, f2.submit) and np.array_equal(f1.project, f2.project)


def test_history_samples_replay_the_window_and_draw_whole_days():
    rng = np.random.default_rng(5)
    n = 400
    submit = np.sort(rng.uniform(0, 14 * 86400, n))
    now, horizon = 14 * 86400.0, 10 * 86400.0
    hist = History(submit, np.full(n, 600.0), rng.integers(0, 3, n).astype(np.int32),
                   np.zeros(n, dtype=np.int16), np.ones(n, dtype=np.int32),
                   np.full(n, 8, dtype=np.int32), np.full(n, 3600.0), np.zeros(n, dtype=np.int8),
                   np.zeros(n, dtype=bool), np.full(n, -1.0), np.full(n, -1, dtype=np.int32),
                   since=0.0)
    arr = Arrivals("history", hist, window_s=7 * 86400.0, samples=4, seed=1)
    f0 = arr.future(0, now, horizon)
    win = submit[submit >= now - 7 * 86400]
    # sample 0: the window shifted by one window, then by two (cut at the horizon)
    expect = np.concatenate((win + 7 * 86400, win + 14 * 86400))
    assert np.allclose(f0.submit, np.sort(expect[expect <= now + horizon]))
    for k in (1, 2, 3):
        f = arr.future(k, now, horizon)
        assert (np.diff(f.submit) >= 0).all()
        assert f.submit.min() >= now and f.submit.max() <= now + horizon
        # whole days: every job keeps its time of day (relative to now)
        src = np.mod(win - now, 86400.0)
        assert np.isin(np.round(np.mod(f.submit - now, 86400.0), 6), np.round(src, 6)).all()
    assert not np.array_equal(arr.future(1, now, horizon).submit,
                              arr.future(2, now, horizon).submit)
    # a source younger than an hour: no arrivals; "none": no arrivals
    young = Arrivals("history", History(**{**hist.__dict__, "since": now - 600.0}))
    assert len(young.future(0, now, horizon)) == 0
    assert len(Arrivals("none", hist).future(0, now, horizon)) == 0


def test_a_history_younger_than_two_days_is_drawn_by_the_hour():
    # a store 13 h old, whose first instant holds a burst (a warm start): the samples differ
    # (days drawn from less than one would all be the same), and the burst is among them
    rng = np.random.default_rng(2)
    now, span = 13 * 3600.0, 13 * 3600.0
    submit = np.sort(np.concatenate((np.zeros(50), rng.uniform(0, span, 300))))
    n = len(submit)
    hist = History(submit, np.full(n, 600.0), np.zeros(n, dtype=np.int32),
                   np.zeros(n, dtype=np.int16), np.ones(n, dtype=np.int32),
                   np.full(n, 8, dtype=np.int32), np.full(n, 3600.0), np.zeros(n, dtype=np.int8),
                   np.zeros(n, dtype=bool), np.full(n, -1.0), np.full(n, -1, dtype=np.int32),
                   since=0.0)
    arr = Arrivals("history", hist, window_s=7 * 86400.0, samples=5, seed=3)
    futures = [arr.future(k, now, 2 * 86400.0) for k in range(1, 5)]
    assert len({tuple(f.submit.tolist()) for f in futures}) == 4
    for f in futures:
        assert f.submit.min() >= now
        # whole hours: every job keeps its minute and second within the hour
        assert np.isin(np.round(np.mod(f.submit - now, 3600.0), 6),
                       np.round(np.mod(submit - now, 3600.0), 6)).all()
    # the first instant's burst is drawn (an hour block that holds it: 50 jobs at once)
    assert any((np.unique(f.submit, return_counts=True)[1] >= 50).any() for f in futures)


@pytest.mark.parametrize(("kw", "field"), [
    ({"model": "poisson"}, "arrivals"), ({"samples": 0}, "samples"),
    ({"samples": 10_000}, "samples"), ({"window_s": 0.0}, "window"),
    ({"window_s": float("nan")}, "window")])
def test_bad_arrival_parameters_name_their_field(kw, field):
    with pytest.raises(InvalidInput) as exc:
        Arrivals(**kw)
    assert exc.value.field == field


def test_fork_rows_out_of_order_are_refused():
    snap = _snapshot()
    fut = History(np.array([5000.0, 2000.0]), np.full(2, 60.0), np.zeros(2, dtype=np.int32),
                  np.zeros(2, dtype=np.int16), np.ones(2, dtype=np.int32),
                  np.full(2, 8, dtype=np.int32), np.full(2, 60.0), np.zeros(2, dtype=np.int8),
                  np.zeros(2, dtype=bool), np.full(2, -1.0), np.full(2, -1, dtype=np.int32))
    jobs, fork, _ = _fork(snap, fut)
    with pytest.raises(ValueError, match="by submit time"):
        Simulator(jobs, snap.fleet, snap.tenancy, SimConfig(policy="fifo"), fork=fork)


def test_a_pending_job_stamped_after_the_snapshot_is_queued_now():
    # a job committed while the snapshot was read may be stamped after its time: ahead of an
    # older one in id order, it is still a queued job (was: the fork refused its row order)
    snap = _snapshot()
    p = snap.pending
    p.submit_time[:] = [snap.now + 5.0, 200.0]  # B stamped after now, C before it
    # in submit order C (4 accelerators, 30 min) goes first when A ends at its limit, then B
    assert forecast_start(snap, 12, "fifo", min_cycle_s=0.0).predicted_start == 7200.0
    assert forecast_start(snap, 11, "fifo", min_cycle_s=0.0).predicted_start == 7200.0 + 1800


@pytest.mark.parametrize("hours", [0.0, 1e-12, 0.009, float("nan"), 8761.0])
def test_a_horizon_outside_its_range_is_refused(hours):
    # a horizon below the clock's resolution once made the run loop sample the same instant
    # for ever
    with pytest.raises(InvalidInput) as exc:
        forecast_start(_snapshot(), 12, "fifo", horizon_s=hours * 3600.0)
    assert exc.value.field == "horizon_hours"


@pytest.mark.parametrize("value", [0.0, 1e-15, -1.0, float("nan"), float("inf")])
def test_a_sample_interval_that_cannot_move_the_clock_is_refused(value):
    with pytest.raises(InvalidInput) as exc:
        SimConfig(sample_s=value)
    assert exc.value.field == "sample_s"
