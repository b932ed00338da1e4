"""A history forecast that would generate more future submissions than a request may simulate
is refused up front, naming what to lower; within the budget it runs."""

from __future__ import annotations

import numpy as np
import pytest

from aicc.errors import InvalidInput
from aicc.sim.forecast import MAX_FUTURE_JOBS, Arrivals, History


def _history(n: int, now: float, window_s: float) -> History:
    one = History(np.zeros(1), np.full(1, 600.0), np.zeros(1, dtype=np.int32),
                   np.zeros(1, dtype=np.int16), np.ones(1, dtype=np.int32),
                   np.ones(1, dtype=np.int32), np.full(1, 3600.0), np.ones(1, dtype=np.int8),
                   np.zeros(1, dtype=bool), np.full(1, -1.0), np.full(1, -1, dtype=np.int32))
    return one.take(np.zeros(n, dtype=np.int64), now - window_s + np.linspace(0, window_s - 1, n))


def test_a_request_over_the_budget_is_refused():
    now, day = 100 * 86400.0, 86400.0
    hist = _history(200, now, day)  # 200 jobs a day, one day's window
    year = 365 * day
    arr = Arrivals("history", hist, window_s=day, samples=50)
    with pytest.raises(InvalidInput) as e:
        arr.budget_check(now, year)
    assert e.value.field == "samples" and "horizon_hours" in e.value.message
    assert MAX_FUTURE_JOBS < 200 * 365 * 50


def test_a_request_within_the_budget_runs():
    now, day = 100 * 86400.0, 86400.0
    arr = Arrivals("history", _history(200, now, day), window_s=day, samples=3)
    arr.budget_check(now, 30 * day)  # 200 × 30 × 3 = 18,000
    assert len(arr.future(0, now, 30 * day)) == 200 * 30


def test_a_short_horizon_is_counted_at_the_window_rate_not_a_whole_window():
    now, day = 100 * 86400.0, 86400.0
    week = 7 * day
    arr = Arrivals("history", _history(1400, now, week), window_s=week, samples=50)
    arr.budget_check(now, day / 2)  # 200 a day × half a day × 50 samples = 5,000
    with pytest.raises(InvalidInput) as e:
        arr.budget_check(now, 3 * day)  # 600 × 50 = 30,000
    # the largest horizon that fits: 20,000 / (200 a day × 50) = 2 days; asked, it is taken
    assert "at most 48.0 with 50 samples" in e.value.message
    arr.budget_check(now, 48 * 3600.0)


def test_the_suggested_horizon_is_taken_when_asked():
    now, week = 100 * 86400.0, 7 * 86400.0
    arr = Arrivals("history", _history(23_520, now, week), window_s=week, samples=5)  # 140 an hour
    with pytest.raises(InvalidInput) as e:
        arr.budget_check(now, 30 * 86400.0)
    hours = float(e.value.message.split("at most ")[2].split(" with")[0].replace(",", ""))
    assert 28.0 < hours < 28.6
    arr.budget_check(now, hours * 3600.0)  # 140 × 28.5 × 5 ≤ 20,000
