"""One Clock protocol: wall time for the live service, virtual or accelerated time elsewhere."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch on this clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class AcceleratedClock:
    """Runs ``speed`` times faster than the wall, from ``origin`` (clock time) at start.

    Elapsed time is measured on the monotonic clock, so a jump of the system clock (NTP, a
    suspended VM) never makes center time leap forward or run backwards.
    """

    def __init__(self, speed: float, origin: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._mono0 = time.monotonic()
        self._origin = time.time() if origin is None else origin

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._mono0) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds / self.speed))


class VirtualClock:
    """Time moves only when told to: the simulator's clock."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        if t < self._now:
            raise ValueError(f"virtual time cannot go back ({t} < {self._now})")
        self._now = t

    def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)
