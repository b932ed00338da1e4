"""``aicc simulate --until-days``: a run stopped at a simulated time, its unfinished work
counted, never a run without end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_helpers import one_line_error, sim


def _run(tmp_path: Path, *args: str) -> dict:
    # a 100 s job and a ten-day job, both at t=0, on one node
    trace = tmp_path / "two.csv"
    trace.write_text("s,d,g,t\n0,100,1,a\n0,864000,1,a\n")
    r = sim("--trace", str(trace), "--columns", "submit=s,duration=d,gpus=g,tenant=t",
            "--fleet", "1xh100-sxm-80g", "--policy", "fifo", "--quiet", "--json", *args)
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout).values()
    return run


def test_a_run_stops_at_its_day(tmp_path: Path) -> None:
    whole = _run(tmp_path)
    assert whole["fleet"]["makespan_s"] == 864000.0 and whole["run"]["span_s"] is None
    assert whole["ended_exactly_once"] == 2
    cut = _run(tmp_path, "--until-days", "1")
    assert cut["fleet"]["makespan_s"] == 86400.0 and cut["run"]["span_s"] == 86400.0
    assert cut["ended_exactly_once"] == 1  # the long job is still running at the stop
    assert cut["failures"]["in_progress_acc_h"] == pytest.approx(86400 / 3600)


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "1e9"])
def test_a_bad_day_count_is_refused(tmp_path: Path, bad: str) -> None:
    trace = tmp_path / "one.csv"
    trace.write_text("s,d,g,t\n0,100,1,a\n")
    line = one_line_error(sim("--trace", str(trace), "--columns",
                              "submit=s,duration=d,gpus=g,tenant=t", "--fleet",
                              "1xh100-sxm-80g", "--until-days", bad))
    assert "--until-days" in line


def test_jobs_not_yet_submitted_at_the_stop_are_not_said_to_wait(tmp_path: Path) -> None:
    # a ten-day job at t=0, a second job submitted on day 5: stopped after one day, the first
    # runs and the second was never submitted; neither "never started while waiting"
    trace = tmp_path / "late.csv"
    trace.write_text("s,d,g,t\n0,864000,1,a\n432000,100,1,a\n")
    r = sim("--trace", str(trace), "--columns", "submit=s,duration=d,gpus=g,tenant=t",
            "--fleet", "1xh100-sxm-80g", "--policy", "fifo", "--quiet", "--until-days", "1")
    assert r.exit_code == 0, r.output
    assert "never started" not in r.stderr, r.stderr
