"""Simulator throughput: the full Philly trace under each policy, then a year of the 2030 fleet.

Philly (82,247 jobs) is replayed as recorded (no time compression) on a fleet sized so that the
offered load is ``--philly-load`` (default 0.70: 67 nodes × 8 H100 = 536 accelerators for the
trace's mean demand of about 374 GPUs), with a 60 s minimum cycle interval. Then one simulated
year of the 2030 fleet (50,000 accelerators) under the synthetic sector workload at load 0.7
and the center's policy (fairshare), with a ``--year-cycle`` minimum interval (default 600 s).

Each run's wall time is split into the scheduler calls (``schedule()``, the pure core: the
baseline measured in the same process) and the simulator around them; ``sim_overhead`` is
simulator time over scheduler time.

``--forecast-jobs N`` also measures the start-time forecast's error on the first N jobs, for
both arrival models (nothing arrives; the window's history repeats) on the same probes
(``RESULT forecast=philly policy=P arrivals=M …``; the figures in docs/simulation.md use
N = 10,000).

Prints ``RESULT trace=philly policy=P jobs=N wall_s=… jobs_per_s=…`` per policy and
``RESULT scenario=year-2030 jobs=N wall_s=…``, each followed by its cycle count and split.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from aicc.errors import InvalidInput
from aicc.sim.forecast import measure_error
from aicc.sim.jobs import prepare
from aicc.sim.loop import SimConfig
from aicc.sim.metrics import summarize
from aicc.sim.scenario import Scenario, custom_fleet, parse_fleet, run_scenario
from aicc.workload.readers import read_trace
from aicc.workload.synthetic import generate, sector_mapping
from aicc.workload.tenants import map_tenants


def _split(r) -> str:
    sched = r.schedule_wall_s
    own = r.wall_s - sched
    return (f"cycles={r.cycles} cycles_skipped={r.cycles_skipped} scheduler_s={sched:.2f} "
            f"sim_s={own:.2f} sim_overhead={own / max(sched, 1e-9):.3f}")


def _forecast(full, args) -> None:
    """Forecast error on a replay (docs/simulation.md): probes over the first N jobs, on a
    fleet sized to their load; the replay keeps the jobs of ``--forecast-tail-days`` after
    them, so that the truth has the submissions that really followed; both arrival models on
    the same probes."""
    w = full.head(args.forecast_jobs)
    nodes = max(1, math.ceil(w.gpu_seconds / max(w.span_s, 1.0) / args.philly_load / 8))
    fleet = custom_fleet(nodes, "h100-sxm-80g")
    last = float(w.submit_s.max())
    n = int((full.submit_s <= last + args.forecast_tail_days * 86400.0).sum())
    wt = full.head(max(n, len(w)))
    tm = map_tenants(wt.tenants, len(fleet.catalog))
    jobs = prepare(wt, fleet, tm.tenant_project)
    print(f"forecast: {len(w):,} jobs probed, {len(jobs):,} replayed "
          f"(tail {args.forecast_tail_days:g} days), {nodes} nodes × 8")
    for pol in filter(None, args.policies.split(",")):
        t = time.perf_counter()
        out = measure_error(jobs, fleet, tm.tenancy, pol, probes=args.forecast_probes,
                            samples=args.forecast_samples,
                            window_s=args.forecast_window_days * 86400.0, probe_until=last)
        wall = time.perf_counter() - t
        for model, e in out["models"].items():
            print(f"RESULT forecast={args.trace} policy={pol} arrivals={model} jobs={len(jobs)} "
                  f"samples={out['samples'] if model != 'none' else 1} "
                  f"forecasts={e['forecasts']} beyond_horizon={e['beyond_horizon']} "
                  f"median_abs_error_s={e.get('median_abs_error_s', 0):.0f} "
                  f"p90_abs_error_s={e.get('p90_abs_error_s', 0):.0f} "
                  f"mean_error_s={e.get('mean_error_s', 0):.0f} "
                  f"median_rel_error={e.get('median_relative_error', 0):.2f} "
                  f"within_25pct={e.get('within_25pct_of_wait', 0):.2f} "
                  f"within_range={e.get('within_range', 0):.2f} "
                  f"median_range_s={e.get('median_range_width_s', 0):.0f} "
                  f"forecast_s={e['wall_s']:.1f} "
                  f"latency_median_s={e.get('latency_median_s', 0):.3f} "
                  f"latency_max_s={e.get('latency_max_s', 0):.3f}")
        print(f"  policy={pol} wall_s={wall:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trace", default="philly")
    ap.add_argument("--policies", default="fifo,multifactor,fairshare")
    ap.add_argument("--philly-load", type=float, default=0.70)
    ap.add_argument("--max-jobs", type=int, default=None)
    ap.add_argument("--year-days", type=float, default=365.0)
    ap.add_argument("--year-cycle", type=float, default=600.0)
    ap.add_argument("--year-policy", default="fairshare")
    ap.add_argument("--skip-year", action="store_true")
    ap.add_argument("--forecast-jobs", type=int, default=0,
                    help="also measure the start-time forecast's error on the first N jobs")
    ap.add_argument("--forecast-probes", type=int, default=20)
    ap.add_argument("--forecast-samples", type=int, default=5,
                    help="arrival samples of the history model")
    ap.add_argument("--forecast-window-days", type=float, default=7.0,
                    help="the history model's window")
    ap.add_argument("--forecast-tail-days", type=float, default=30.0,
                    help="days of the trace after the probed jobs that the replay keeps "
                         "(0: the truth stops arriving with the last probed job)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    try:
        w = full = read_trace(args.trace)
    except InvalidInput as exc:  # (no traces here: say where they were looked for)
        sys.exit(f"bench_sim: {exc.message}")
    if args.max_jobs:
        w = w.head(args.max_jobs)
    print(f"read {len(w):,} jobs in {time.perf_counter() - t0:.2f} s")
    demand = w.gpu_seconds / max(w.span_s, 1.0)
    nodes = max(1, math.ceil(demand / args.philly_load / 8))
    fleet = custom_fleet(nodes, "h100-sxm-80g")
    print(f"fleet {nodes} nodes × 8 = {fleet.n_accelerators} accelerators; offered load "
          f"{w.offered_load(fleet.n_accelerators):.3f}")
    for pol in filter(None, args.policies.split(",")):
        sc = Scenario(fleet=fleet, config=SimConfig(policy=pol, min_cycle_s=60.0))
        t = time.perf_counter()
        r = run_scenario(w, sc)
        wall = time.perf_counter() - t
        s = summarize(r)
        print(f"RESULT trace={args.trace} policy={pol} jobs={len(r.jobs)} wall_s={wall:.2f} "
              f"jobs_per_s={len(r.jobs) / wall:.0f}")
        print(f"  {_split(r)} util={s['fleet']['utilisation_mean']:.3f} "
              f"mean_wait_s={s['jobs_metrics']['wait_s']['mean']:.0f}")
    if args.forecast_jobs:
        _forecast(full, args)
    if args.skip_year:
        return
    f30 = parse_fleet("2030")
    t = time.perf_counter()
    wy = generate(days=args.year_days, accelerators=f30.n_accelerators, load=0.7, seed=1)
    gen = time.perf_counter() - t
    sc = Scenario(fleet=f30, config=SimConfig(policy=args.year_policy,
                                              min_cycle_s=args.year_cycle),
                  tenant_map=sector_mapping(wy))
    r = run_scenario(wy, sc)
    wall = time.perf_counter() - t
    s = summarize(r)
    print(f"RESULT scenario=year-2030 jobs={len(r.jobs)} wall_s={wall:.2f}")
    print(f"  generate_s={gen:.2f} policy={args.year_policy} min_cycle_s={args.year_cycle:g} "
          f"{_split(r)} util={s['fleet']['utilisation_mean']:.3f}")


if __name__ == "__main__":
    main()
