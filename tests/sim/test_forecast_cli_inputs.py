"""``aicc jobs forecast`` checks its options before asking the server: NaN and out-of-range
numbers and unknown arrival models are named, on one line, exit 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aicc.cli import app
from aicc.sim.cli import _readable_forecast

from .cli_helpers import one_line_error


@pytest.mark.parametrize(("args", "says"), [
    (["--horizon-hours", "nan"], "--horizon-hours must be a finite number"),
    (["--horizon-hours", "0"], "--horizon-hours must be at least 0.01"),
    (["--horizon-hours", "1e-12"], "--horizon-hours must be at least 0.01"),
    (["--horizon-hours", "9000"], "--horizon-hours must be at most 8760"),
    (["--window-days", "inf"], "--window-days must be a finite number"),
    (["--window-days", "91"], "--window-days must be at most 90"),
    (["--window-days", "0.5"], "--window-days must be at least 1"),
    (["--arrivals", "future"], "--arrivals: 'future' is not a model"),
])
def test_bad_options_are_named_before_any_request(args, says):
    # an address nothing listens on: a request would fail with another message
    r = CliRunner().invoke(app, ["jobs", "forecast", "7", *args, "--url", "http://127.0.0.1:9"])
    assert says in one_line_error(r)


def test_the_forecast_table_reads_as_a_person_reads_it():
    base = {"job_id": 7, "state": "pending", "policy": "fairshare", "now": "2030-01-01T00:00:00Z",
            "horizon_s": 86400.0, "arrivals": "history", "samples": 5, "future_jobs": 900,
            "running_jobs": 3, "pending_jobs": 2, "basis": "simulation of the live queue"}
    got = _readable_forecast(base | {
        "predicted_start": "2030-01-01T01:30:00Z", "predicted_wait_s": 5400.000123,
        "predicted_start_low": "2030-01-01T01:00:00Z", "predicted_start_high": None})
    assert got["predicted_wait"] == "90.0 min" and "predicted_wait_s" not in got
    assert got["range (p10–p90)"] == "2030-01-01T01:00:00Z – beyond 24 h"
    assert got["horizon"] == "24 h" and "horizon_s" not in got
    beyond = _readable_forecast(base | {"predicted_start": None, "predicted_wait_s": None})
    assert beyond["predicted_start"] == "not within the horizon (24 h)"
    assert "predicted_wait" not in beyond and "range (p10–p90)" not in beyond
    assert "held at the horizon" not in beyond
    held = _readable_forecast(base | {"predicted_start": None, "predicted_wait_s": None,
                                      "held_for": "no_grant",
                                      "held_message": "the project has no active grant for b200"})
    assert held["held at the horizon"] == "the project has no active grant for b200"
    running = _readable_forecast({"job_id": 7, "state": "running", "basis": "running",
                                  "predicted_start": "2029-12-31T23:00:00Z",
                                  "predicted_wait_s": 0.0})
    assert running["started"] == "2029-12-31T23:00:00Z" and "predicted_start" not in running
