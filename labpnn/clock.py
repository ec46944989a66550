"""Time as instruments see it.

Drivers never call ``time.sleep`` directly: they ask a clock. On hardware that is the
wall clock. A simulated world hands its own clock to the drivers it serves, so in
``fast`` mode a 10 ms settle wait costs no wall time while the simulated physics
(drift, settling, exposure) still sees 10 ms pass.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def sleep_until(self, t: float) -> None: ...


class WallClock:
    """Monotonic wall time; used for real hardware and ``real-time`` simulation."""

    realtime = True

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def sleep_until(self, t: float) -> None:
        self.sleep(t - self.now())


class VirtualClock:
    """Simulated time that advances only when someone waits (``fast`` mode)."""

    realtime = False

    def __init__(self, start: float = 0.0):
        self.t = float(start)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.t += seconds

    def sleep_until(self, t: float) -> None:
        self.t = max(self.t, float(t))

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)


WALL_CLOCK = WallClock()


def let_time_pass(clock: Clock, t0: float, seconds: float) -> float:
    """Move a simulated world ``seconds`` on without waiting; returns its new start time.

    A world measures its time as ``clock.now() - t0``. On a virtual clock the clock moves; on
    the wall clock (``real-time`` mode) the world's start moves back instead.
    """
    if seconds <= 0:
        return t0
    if isinstance(clock, VirtualClock):
        clock.t += seconds
        return t0
    return t0 - seconds
