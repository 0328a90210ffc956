"""Clocks the collector stamps connection events with.

The collector normally uses wall time. The demo runs the simulated fleet and the collector in one
process and hands both a `SimClock`, so connection, heartbeat and receive times follow the
simulated network time rather than the few minutes of wall time the demo takes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimClock:
    """A clock that only moves when the simulator moves it (never backwards)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs a time-zone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, t: datetime) -> None:
        t = t.astimezone(UTC)
        if t > self._now:
            self._now = t
