import time

import pytest

from aicc.clock import AcceleratedClock, VirtualClock, WallClock


def test_wall_clock_tracks_time():
    c = WallClock()
    assert abs(c.now() - time.time()) < 1


def test_accelerated_clock_runs_faster_than_the_wall():
    c = AcceleratedClock(speed=1000, origin=0.0)
    t0 = c.now()
    time.sleep(0.02)
    elapsed = c.now() - t0
    assert elapsed >= 0.02 * 1000 * 0.9


def test_accelerated_clock_rejects_nonpositive_speed():
    with pytest.raises(ValueError):
        AcceleratedClock(speed=0)


def test_virtual_clock_moves_only_forward():
    c = VirtualClock(10.0)
    c.advance_to(20.0)
    c.sleep(5)
    assert c.now() == 25.0
    with pytest.raises(ValueError):
        c.advance_to(1.0)
