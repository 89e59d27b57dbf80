"""The store: one SQLite file, one writer (the daemon), many readers (CLI, dashboard, reports)."""

from datacap.store.db import DaemonLock, default_db_path, open_read, open_write
from datacap.store.reader import Bytes, Reader
from datacap.store.writer import MeterEvent, TrafficDelta, Writer

__all__ = ["Bytes", "DaemonLock", "MeterEvent", "Reader", "TrafficDelta", "Writer", "default_db_path",
           "open_read", "open_write"]
