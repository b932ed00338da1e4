"""``aicc jobs forecast`` checks its options before asking the server: NaN and out-of-range
numbers and unknown arrival models are named, on one line, exit 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from aicc.cli import app

from .cli_helpers import one_line_error


@pytest.mark.parametrize(("args", "says"), [
    (["--horizon-hours", "nan"], "--horizon-hours must be a finite number"),
    (["--horizon-hours", "0"], "--horizon-hours must be greater than 0"),
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
