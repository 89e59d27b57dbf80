"""The store: one SQLite file, one writer (the daemon), many readers (CLI, dashboard, reports).

The parts load on first use: a read-only glance at the store needs neither the writer nor the schema.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datacap.store.db import DaemonLock, default_db_path, open_read, open_write
    from datacap.store.reader import Bytes, Reader
    from datacap.store.writer import MeterEvent, TrafficDelta, Writer

_EXPORTS = {"DaemonLock": "db", "default_db_path": "db", "open_read": "db", "open_write": "db", "Bytes": "reader",
            "Reader": "reader", "MeterEvent": "writer", "TrafficDelta": "writer", "Writer": "writer"}
__all__ = ["Bytes", "DaemonLock", "MeterEvent", "Reader", "TrafficDelta", "Writer", "default_db_path",
           "open_read", "open_write"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'datacap.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f"datacap.store.{_EXPORTS[name]}"), name)
