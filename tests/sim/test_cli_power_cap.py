"""``aicc simulate --site-power-mw``: the site's power cap (rule 9) in a simulation, as the live
service's ``[energy]`` settings give it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_helpers import one_line_error, sim

SYN = ["--synthetic-days", "1", "--fleet", "lab", "--quiet", "--json", "--policy", "fifo"]


def _summary(tmp_path: Path, *args: str) -> dict:
    # four 8-accelerator jobs of 100 s at t=0 on two H100 nodes (idle draw 16 × 70 W =
    # 1,120 W; each job adds 8 × 630 W = 5,040 W)
    trace = tmp_path / "four.csv"
    trace.write_text("s,d,g,t\n" + "0,100,8,a\n" * 4)
    r = sim("--trace", str(trace), "--columns", "submit=s,duration=d,gpus=g,tenant=t",
            "--fleet", "2xh100-sxm-80g", "--policy", "fifo", "--min-cycle", "0", "--quiet",
            "--json", *args)
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout).values()  # one run, under its label
    return run


def test_the_cap_holds_the_draw_and_delays_the_work(tmp_path: Path) -> None:
    free = _summary(tmp_path)
    assert free["fleet"]["power_available_w"] is None
    assert free["fleet"]["power_max_w"] == 1_120.0 + 2 * 5_040.0  # two jobs at a time
    assert free["fleet"]["makespan_s"] == 200.0
    # 0.0096 MW at PUE 1.2 leaves the accelerators 8,000 W: one job at a time
    capped = _summary(tmp_path, "--site-power-mw", "0.0096")
    assert capped["fleet"]["power_available_w"] == pytest.approx(8_000.0)
    assert capped["fleet"]["power_max_w"] == 1_120.0 + 5_040.0
    assert capped["fleet"]["makespan_s"] == 400.0
    assert capped["jobs_metrics"]["wait_s"]["mean"] == 150.0  # 0, 100, 200, 300
    # a lower PUE leaves the accelerators more of the same site power: 11.3 kW at PUE 1.2 is
    # 9,417 W for them (one job at a time), at PUE 1.0 all of it (two at a time)
    assert _summary(tmp_path, "--site-power-mw", "0.0113")["fleet"]["makespan_s"] == 400.0
    assert _summary(tmp_path, "--site-power-mw", "0.0113", "--pue", "1.0")["fleet"][
        "makespan_s"] == 200.0


@pytest.mark.parametrize(("args", "option"), [
    (["--pue", "1.5"], "--pue"),  # a PUE without a cap
    (["--site-power-mw", "0"], "--site-power-mw"),
    (["--site-power-mw", "nan"], "--site-power-mw"),
    (["--site-power-mw", "1", "--pue", "0.9"], "--pue"),
    (["--site-power-mw", "1", "--pue", "4"], "--pue"),
])
def test_bad_power_options_are_refused_naming_them(args: list[str], option: str) -> None:
    line = one_line_error(sim(*SYN, *args))
    assert option in line


def test_the_report_charts_the_draw_against_the_cap(tmp_path: Path) -> None:
    trace = tmp_path / "four.csv"
    trace.write_text("s,d,g,t\n" + "0,100,8,a\n" * 4)
    for extra, cap_line in (([], False), (["--site-power-mw", "0.0096"], True)):
        out = tmp_path / ("capped" if cap_line else "free")
        r = sim("--trace", str(trace), "--columns", "submit=s,duration=d,gpus=g,tenant=t",
                "--fleet", "2xh100-sxm-80g", "--policy", "fifo", "--quiet", "--report",
                str(out), *extra)
        assert r.exit_code == 0, r.output
        page = (out / "report.html").read_text()
        assert "Accelerator power draw" in page
        assert ("dashed: the site&#x27;s cap" in page) == cap_line


@pytest.mark.parametrize("extra", [["--policy", "fifo"], ["--policy", "fairshare"],
                                   ["--policy", "fifo", "--failures"]])
def test_a_job_too_large_for_the_cap_does_not_stretch_the_run(tmp_path: Path,
                                                              extra: list[str]) -> None:
    # the four jobs run one at a time, 60 s cycles: the cycle the fifth job's arrival asks for
    # comes at 60 s, so the second starts at 120 s, and the last ends at 420 s; the fifth, 16
    # accelerators, can never start under 8,000 W. The run ends with the last job's end,
    # whatever the loop does after it (more fair-share cycles; a failure drawn for far later):
    # makespan 420 s, and utilisation 4 × 800 accelerator-seconds over 16 × 420 (the fifo run
    # was right before; the other two ran to their last event)
    trace = tmp_path / "five.csv"
    trace.write_text("s,d,g,t\n" + "0,100,8,a\n0,100,8,b\n0,100,8,c\n0,100,8,d\n"
                     "10,100,16,e\n")
    r = sim("--trace", str(trace), "--columns", "submit=s,duration=d,gpus=g,tenant=t",
            "--fleet", "2xh100-sxm-80g", "--quiet", "--json", "--site-power-mw", "0.0096",
            *extra)
    assert r.exit_code == 0, r.output
    (run,) = json.loads(r.stdout).values()
    fleet = run["fleet"]
    assert run["jobs"] - run["ended_exactly_once"] == 1
    assert fleet["makespan_s"] == 420.0
    assert fleet["utilisation_exact"] == pytest.approx(3200 / (16 * 420))
    assert fleet["power_max_w"] <= fleet["power_available_w"]
