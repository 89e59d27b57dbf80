"""Whether the daemon can write to its store, for everyone who shows it (metrics, dashboard, doctor).

While the disk is full nothing can be written, so the state lives in memory in the daemon's process
(its dashboard and /metrics read :data:`WRITE_HEALTH`), and is recorded in the store's ``meta`` table
as ``write_health`` whenever a write gets through, so other processes see the last episode too.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

META_KEY = "write_health"


@dataclass
class WriteHealth:
    """The writer's state; ``active`` is set by a daemon running in this process."""

    active: bool = False
    writable: bool = True
    since: float = field(default_factory=time.time)  # when the current state began
    error: str = ""
    held_bytes: int = 0  # metered bytes waiting in memory for the store
    held_entries: int = 0  # (5-minute bucket, interface, card) entries they are in
    limit_entries: int = 0
    merged_buckets: int = 0  # 5-minute buckets merged into hours in this episode
    dropped_bytes: int = 0  # bytes given up in this episode (only past the bound)
    last_failure: float | None = None
    last_recovery: float | None = None

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("active")
        return doc

    def to_meta(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)


WRITE_HEALTH = WriteHealth()


def from_meta(text: str | None) -> dict[str, Any] | None:
    """The recorded state (None when never recorded or unreadable)."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def current(meta_text: str | None) -> dict[str, Any] | None:
    """This process's live state when a daemon runs here, else what the store recorded."""
    if WRITE_HEALTH.active:
        return WRITE_HEALTH.as_dict()
    return from_meta(meta_text)
