"""The run's progress: jobs ended (the bar tracks the queue draining, not only submissions), and
no bar where stderr is not a terminal."""

from __future__ import annotations

from typer.testing import CliRunner

from aicc.cli import app
from aicc.sim.loop import SimConfig, Simulator

from .cli_helpers import PHILLY
from .helpers import setup, workload


def test_progress_counts_ended_jobs():
    # all four arrive at once on one node; they end one after another over four days
    w = workload([0.0] * 4, [86_400.0] * 4, [8] * 4)
    jobs, fleet, tm = setup(w, nodes=1)
    seen: list[tuple[float, int]] = []
    Simulator(jobs, fleet, tm.tenancy, SimConfig(policy="fifo"),
              progress=lambda t, ended: seen.append((t, ended))).run()
    ended = [e for _, e in seen]
    assert ended == sorted(ended) and ended[0] == 0 and ended[-1] == 4
    assert len(set(ended)) >= 3  # it moves while the queue drains, after every job arrived


def test_no_bar_and_no_blank_lines_off_a_terminal():
    r = CliRunner().invoke(app, ["simulate", "--trace", str(PHILLY), "--max-jobs", "30",
                                 "--fleet", "2xh100-sxm-80g", "--compare", "fifo,fairshare",
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
