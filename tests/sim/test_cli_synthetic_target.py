"""``aicc simulate --synthetic-days N --target-load T``: the workload grows with T (the same
jobs and more), and the summary's offered load is the work submitted over the N days."""

from __future__ import annotations

import json

from .cli_helpers import sim


def test_job_counts_and_offered_load_grow_with_the_target():
    jobs, loads = [], []
    for t in ("0.2", "0.3", "0.4", "0.5", "0.6", "0.7"):
        r = sim("--synthetic-days", "3", "--fleet", "lab", "--policy", "fifo",
                "--target-load", t, "--quiet", "--json")
        assert r.exit_code == 0, r.output
        s = json.loads(r.stdout)["fifo"]
        jobs.append(s["jobs"])
        loads.append(s["extra"]["offered_load"])
    assert jobs == sorted(jobs) and jobs[-1] > jobs[0], jobs
    assert loads == sorted(loads) and loads[-1] > loads[0], loads


def test_the_offered_load_is_the_target_on_a_large_fleet():
    r = sim("--synthetic-days", "2", "--fleet", "64xh100-sxm-80g", "--policy", "fifo",
            "--target-load", "0.3", "--quiet", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)["fifo"]
    assert abs(s["extra"]["offered_load"] - 0.3) < 0.03, s["extra"]
