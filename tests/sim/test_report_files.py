"""summary.json names each run's fleet and the Parquet files that hold its jobs and series."""

from __future__ import annotations

import json

from .cli_helpers import PHILLY, sim


def test_summary_names_each_runs_fleet_and_files(tmp_path):
    out = tmp_path / "rep"
    r = sim("--trace", str(PHILLY), "--max-jobs", "40", "--fleet",
            "2xh100-sxm-80g,4xh100-sxm-80g", "--policy", "fifo", "--report", str(out))
    assert r.exit_code == 0, r.output
    runs = json.loads((out / "summary.json").read_text())
    assert {v["extra"]["fleet"] for v in runs.values()} == {"2xh100-sxm-80g", "4xh100-sxm-80g"}
    for label, v in runs.items():
        assert v["extra"]["label"] == label
        for f in v["files"].values():
            assert (out / f).is_file()
    assert len({f for v in runs.values() for f in v["files"].values()}) == 4


def test_a_single_run_names_its_fleet_and_files(tmp_path):
    out = tmp_path / "one"
    r = sim("--trace", str(PHILLY), "--max-jobs", "20", "--fleet", "lab", "--policy", "fifo",
            "--report", str(out))
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["extra"]["fleet"] == "lab"
    assert (out / s["files"]["jobs"]).is_file() and (out / s["files"]["series"]).is_file()
