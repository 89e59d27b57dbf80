"""Device tokens: 32 random bytes shown once, stored only as their SHA-256, and per-device rate limits."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

PREFIX = "dch_"


def new_token() -> str:
    """A fresh device token (printed once by ``datacap hub device add``)."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the hub stores and looks up: a token is 256 random bits, so a plain hash is enough
    (no salt or stretching needed: there is nothing to brute-force)."""
    return hashlib.sha256(token.encode()).hexdigest()


class RateLimiter:
    """A token bucket per device: ``rate`` batches a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 60)
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed (and counted); else the seconds until the next batch would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            level, last = self._state.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level >= 1:
                self._state[key] = (level - 1, now)
                return 0.0
            self._state[key] = (level, now)
            return (1 - level) / self.rate
