"""Jobs larger than the fleet, and load knobs at the edge of their range: a fleet no job fits
is refused before any run, naming it; the offered load and a target load count only the jobs
that run; a load factor or target too small to mean anything is refused naming the option."""

from __future__ import annotations

import json

from .cli_helpers import one_line_error, sim

HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"


def test_a_fleet_no_job_fits_is_refused_before_any_run(tmp_path, runs):
    trace = tmp_path / "big.csv"
    trace.write_text(HEADER + "2017-09-04 10:30:41,100,16,100,a\n"
                     "2017-09-04 10:31:41,200,16,400,b\n")
    rep = tmp_path / "rep"
    line = one_line_error(sim("--trace", str(trace), "--fleet", "lab,1xh100-sxm-80g", "--quiet",
                              "--report", str(rep)))
    assert line.startswith("error: --fleet 1xh100-sxm-80g: no job of the workload fits the fleet")
    assert "the smallest asks 16 accelerators" in line
    assert runs == [] and not rep.exists()


def test_offered_and_target_load_count_only_the_jobs_that_run(tmp_path):
    trace = tmp_path / "mixed.csv"
    # two 1-GPU jobs of 1,000 s, and a 64-GPU one of 100,000 s that no 8-accelerator fleet runs
    trace.write_text(HEADER + "2017-09-04 10:00:00,1000,1,1000,a\n"
                     "2017-09-04 10:10:00,1000,1,1000,a\n"
                     "2017-09-04 10:20:00,100000,64,6400000,b\n")
    r = sim("--trace", str(trace), "--fleet", "1xh100-sxm-80g", "--quiet", "--json")
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["fairshare"]
    assert run["rows"]["invalid"] == {"larger_than_fleet": 1}
    # 2,000 GPU-seconds over 8 accelerators and the window of the jobs that run (1,600 s)
    assert abs(run["extra"]["offered_load"] - 2000 / (8 * 1600)) < 1e-9
    assert abs(run["extra"]["offered_load"] - run["fleet"]["utilisation_exact"]) < 0.01
    r = sim("--trace", str(trace), "--fleet", "1xh100-sxm-80g", "--quiet", "--json",
            "--target-load", "0.1")
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["fairshare"]
    assert abs(run["extra"]["offered_load"] - 0.1) < 1e-6


def test_load_knobs_too_small_to_mean_anything_are_refused(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text(HEADER + "2017-09-04 10:00:00,1000,1,1000,a\n"
                     "2017-09-04 11:00:00,1000,1,1000,a\n")
    line = one_line_error(sim("--trace", str(trace), "--fleet", "lab", "--quiet",
                              "--load-factor", "1e-300"))
    assert line == "error: --load-factor must be at least 1e-06, got 1e-300"
    line = one_line_error(sim("--trace", str(trace), "--fleet", "lab", "--quiet",
                              "--target-load", "1e-300"))
    assert line == "error: --target-load must be at least 0.001, got 1e-300"
