"""``aicc simulate`` end to end on a small slice, and the report files it writes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from aicc.cli import app
from aicc.workload.readers import default_trace_dir

PHILLY = default_trace_dir() / "philly" / "philly.csv"


def _slice(tmp_path, rows=400):
    with PHILLY.open() as fh:
        lines = [next(fh) for _ in range(rows + 1)]
    p = tmp_path / "philly-slice.csv"
    p.write_text("".join(lines))
    return p


@pytest.mark.skipif(not PHILLY.exists(), reason="shared traces not present")
def test_simulate_compare_writes_report(tmp_path):
    trace = _slice(tmp_path)
    rep = tmp_path / "rep"
    res = CliRunner().invoke(app, [
        "simulate", "--trace", str(trace), "--fleet", "8xh100-sxm-80g",
        "--compare", "fifo,fairshare", "--report", str(rep), "--target-load", "0.8",
        "--failures", "--failure-scale", "20", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "fairshare" in res.output and "fifo" in res.output
    summary = json.loads((rep / "summary.json").read_text())
    assert set(summary) == {"fifo", "fairshare"}
    for pol, s in summary.items():
        assert s["jobs"] == 400 and s["ended_exactly_once"] == 400
        jobs = pq.read_table(rep / f"jobs-{pol}.parquet")
        assert jobs.num_rows == 400
        assert {"wait_s", "jct_s", "bounded_slowdown", "preemptions"} <= set(jobs.column_names)
        series = pq.read_table(rep / f"series-{pol}.parquet")
        assert "share_research" in series.column_names
        assert s["extra"]["load_factor"] > 1
    html = (rep / "report.html").read_text()
    assert html.count("<svg") >= 4 and "http" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_simulate_rejects_bad_input(tmp_path):
    r = CliRunner().invoke(app, ["simulate", "--policy", "lottery", "--quiet"])
    assert r.exit_code == 2 and "unknown policy" in r.output
    r = CliRunner().invoke(app, ["simulate", "--fleet", "99xnot-a-gpu", "--quiet"])
    assert r.exit_code == 3 and "unknown accelerator type" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,1\n")
    r = CliRunner().invoke(app, ["simulate", "--trace", str(bad), "--quiet"])
    assert r.exit_code == 2 and "line 2" in r.output


def test_simulate_synthetic_json_on_two_fleets(tmp_path):
    r = CliRunner().invoke(app, ["simulate", "--synthetic-days", "2", "--fleet",
                                 "lab,8xh100-sxm-80g", "--policy", "fairshare", "--json",
                                 "--quiet", "--seed", "3"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) == {"fairshare@lab", "fairshare@8xh100-sxm-80g"}
    s = out["fairshare@lab"]
    assert s["jobs"] > 0 and set(s["sectors"]) == {"industry", "research", "public"}
    assert s["fleet"]["accelerators"] == 256
    assert out["fairshare@8xh100-sxm-80g"]["fleet"]["accelerators"] == 64
