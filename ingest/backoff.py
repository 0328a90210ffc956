"""Backoff for failed charger logins, per charge point id and per remote address.

Each key's failures are a score that halves every `10 * max_s` seconds without a failure (50 min
by default). While the score (rounded) is within `max_failures` nothing waits; past it each
failure makes the key wait `base_s * 2**(score - max_failures - 1)`, capped at `max_s`. A waiting key is refused cheaply
(no scrypt), and attempts refused that way are not failures, so a real charger retrying does not
extend its own wait: it gets in once the window has passed. Memory is bounded: forgotten keys are
pruned when the table grows.
"""

from __future__ import annotations

import time

_PRUNE_AT = 50_000
_HALF_LIVES = 10  # the score's half-life, in caps


class Backoff:
    def __init__(self, max_failures: int, base_s: float, max_s: float) -> None:
        self.max_failures = max_failures
        self.base_s = base_s
        self.max_s = max_s
        self._state: dict[str, tuple[float, float, float]] = {}  # score, at, blocked until

    def _score(self, key: str, now: float) -> tuple[float, float]:
        score, at, until = self._state.get(key, (0.0, now, 0.0))
        return score * 0.5 ** (max(now - at, 0.0) / (_HALF_LIVES * self.max_s)), until

    def retry_after(self, key: str, now: float | None = None) -> float:
        """Seconds `key` must still wait; 0 when it may try."""
        now = time.monotonic() if now is None else now
        entry = self._state.get(key)
        return max(entry[2] - now, 0.0) if entry else 0.0

    def fail(self, key: str, now: float | None = None) -> float:
        """Record a failure; returns the wait it starts (0 while within the free failures)."""
        now = time.monotonic() if now is None else now
        score, _ = self._score(key, now)
        score += 1
        over = round(score) - self.max_failures
        wait = min(self.base_s * 2 ** (over - 1), self.max_s) if over > 0 else 0.0
        self._state[key] = (score, now, now + wait)
        if len(self._state) > _PRUNE_AT:
            self._prune(now)
        return wait

    def forget(self, key: str) -> None:
        self._state.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._state if self._score(k, now)[0] < 0.5]:
            if self._state[key][2] <= now:
                del self._state[key]
