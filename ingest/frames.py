"""The frame guard: what a charge point's frame may cost before the collector parses it.

One hostile or broken charger must not cost the others their answers. Every frame is judged
from its size and its head (`[2,"id","Action"`, read with a regex, never by parsing the whole
frame) before `json.loads` sees it:

- size: transaction messages (StopTransaction, TransactionEvent, MeterValues with a
  transactionId) may be as large as the socket allows (`transaction_frame_bytes`, also the
  websockets `max_size`), so a long session's stop is never refused; every other message has the
  smaller `frame_bytes` limit. An oversize frame is answered with a CALLERROR, only its first
  `audit_head_bytes` go to the audit, and a charger that keeps sending them is closed (1009).
- rate: a token bucket (`calls_per_second`, `call_burst`; a frame costs one token plus one per
  16 KiB). A connection over its rate waits before its next frame is read, so TCP back-pressure
  slows the sender and no one else. One that is over its rate with dozens of frames waiting
  unread (OCPP allows one outstanding CALL per side) `flood_close_after` times is closed (1008).
- depth: JSON nested deeper than `max_depth` gets a CALLERROR instead of reaching the handlers.

A guard belongs to a charge point and outlives its connections (`CollectorContext.guard`), so
reconnecting neither refills the burst nor forgets the strikes.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chargeops.settings import Settings

CALL = 2
# Actions whose messages grow with the length of a session; MeterValues only with a transactionId.
TRANSACTION_ACTIONS = frozenset({"StopTransaction", "TransactionEvent"})
TOKEN_BYTES = 16384  # a frame costs one token per this many bytes beyond the first token

_HEAD = re.compile(r'\s*\[\s*(\d{1,5})\s*,\s*"((?:[^"\\]|\\.){0,255})"\s*(?:,\s*"(\w{1,64})")?')
# objects read as arrays, every other ASCII character but " deleted (outside strings, valid
# JSON is ASCII besides these)
_KEEP_STRUCTURE = {c: None for c in range(128) if chr(c) not in '[]{}"'} | {
    ord("{"): "[",
    ord("}"): "]",
}


@dataclass(frozen=True)
class FrameLimits:
    """What one charge point may send; the module docstring says what each limit protects."""

    frame_bytes: int = 65536
    transaction_frame_bytes: int = 1 << 20
    calls_per_second: float = 50.0
    call_burst: float = 500.0
    max_depth: int = 32
    audit_head_bytes: int = 1024
    oversize_close_after: int = 10  # oversize frames within `strike_window_s`; 0: never close
    flood_close_after: int = 25  # throttled frames with calls pipelined, within the window
    pipelined_frames: int = 32  # frames already waiting unread: dozens of outstanding CALLs
    strike_window_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> FrameLimits:
        return cls(
            frame_bytes=settings.max_frame_bytes,
            transaction_frame_bytes=settings.socket_max_bytes,
            calls_per_second=float(settings.calls_per_second),
            call_burst=float(settings.call_burst),
            oversize_close_after=settings.oversize_close_after,
        )


@dataclass(frozen=True)
class Head:
    """What the start of a frame says, read without parsing it."""

    message_type: int | None
    unique_id: str
    action: str | None


def read_head(raw: str) -> Head:
    """`[type, "id", "Action"` from the first bytes; unique id "-1" when unreadable."""
    m = _HEAD.match(raw, 0, 400)
    if m is None:
        return Head(None, "-1", None)
    uid = m.group(2)
    if "\\" in uid:
        try:
            uid = json.loads(f'"{uid}"')
        except ValueError:
            uid = "-1"
    return Head(int(m.group(1)), uid[:36] or "-1", m.group(3))


def frame_size(raw: str | bytes) -> int:
    """Bytes on the wire; ASCII text (nearly every frame) is measured without encoding it."""
    if isinstance(raw, bytes) or raw.isascii():
        return len(raw)
    return len(raw.encode("utf-8", errors="replace"))


def is_transaction_message(head: Head, raw: str) -> bool:
    if head.message_type != CALL:
        return False
    if head.action in TRANSACTION_ACTIONS:
        return True
    return head.action == "MeterValues" and '"transactionId"' in raw


def size_limit(limits: FrameLimits, head: Head, raw: str) -> int:
    if is_transaction_message(head, raw):
        return limits.transaction_frame_bytes
    return limits.frame_bytes


def too_deep(text: str, max_depth: int) -> bool:
    """Whether valid JSON `text` nests arrays/objects deeper than `max_depth`. All in C: drop
    escaped backslashes and quotes, keep only brackets (objects as arrays) and quotes, keep what
    is outside strings, then strip innermost pairs once per level (at most max_depth passes);
    a 650 KB TransactionEvent takes half the time of its json.loads."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    unescaped = text.replace("\\\\", "").replace('\\"', "") if "\\" in text else text
    brackets = "".join(unescaped.translate(_KEEP_STRUCTURE).split('"')[::2])  # outside strings
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = brackets.replace("[]", "")
    return bool(brackets)


def buffered_frames(connection: Any) -> int:
    """Frames received and not yet read on a websockets connection (0 if it cannot tell)."""
    try:
        return len(connection.recv_messages.frames)
    except (AttributeError, TypeError):
        return 0


class Strikes:
    """Counts events within a sliding window of time."""

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self.clock = clock
        self.times: deque[float] = deque()
        self.total = 0

    def add(self) -> int:
        now = self.clock()
        self.times.append(now)
        self.total += 1
        while self.times and self.times[0] < now - self.window_s:
            self.times.popleft()
        return len(self.times)


class FrameGuard:
    """One charge point's token bucket and strike counts."""

    def __init__(self, limits: FrameLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.tokens = limits.call_burst
        self.updated = clock()
        self.oversize = Strikes(limits.strike_window_s, clock)
        self.flood = Strikes(limits.strike_window_s, clock)

    def wait_for(self, size: int) -> float:
        """Take a frame's tokens; seconds to wait before handling it (0 within the rate)."""
        now = self.clock()
        rate, burst = self.limits.calls_per_second, self.limits.call_burst
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        self.tokens -= 1 + size // TOKEN_BYTES
        return -self.tokens / rate if self.tokens < 0 else 0.0

    def flooding(self, waiting_frames: int) -> bool:
        """Called when over the rate: a strike if calls are pipelined; True once too many."""
        if waiting_frames < self.limits.pipelined_frames:
            return False
        return self.flood.add() >= self.limits.flood_close_after

    def oversize_frame(self) -> bool:
        """Count an oversize frame; True once the connection should be closed."""
        n = self.oversize.add()
        return 0 < self.limits.oversize_close_after <= n
