"""Shared test helpers: root checks, a local HTTP receiver, status objects, a store with the migration."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from datacap.alerts.state import ALERTS_MIGRATION
from tests.conftest import require_root  # noqa: F401  (re-exported for this package's tests)

GiB = 1024**3
MiB = 1024**2





def open_store(path: Path) -> sqlite3.Connection:
    """A connection as the integrator opens it, with the alerts migration applied once."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    have = conn.execute("SELECT name FROM sqlite_master WHERE name = 'alert_state'").fetchone()
    if not have:
        conn.executescript(ALERTS_MIGRATION[1])
    return conn


def wait_for(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Receiver:
    """A webhook receiver on 127.0.0.1 that records JSON posts; can fail the first N with HTTP 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if outer.refused < outer.fail_first:
                    outer.refused += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.received.append({"path": self.path, **json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook/SECRETTOKEN123"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def bucket(name: str, quota: int | None, used: int, **extra: Any) -> dict[str, Any]:
    remaining = None if quota is None else quota - used
    return {"name": name, "kind": extra.pop("kind", "bucket"), "quota_bytes": quota, "used_bytes": used,
            "remaining_bytes": remaining, "expires": None, **extra}


def card(name: str = "unicom", *, buckets: list[dict[str, Any]] | None = None, used: int | None = None,
         start: str = "2026-11-01T00:00:00+08:00", end: str = "2026-12-01T00:00:00+08:00",
         state: str = "active", throttled: bool = False, forecast: dict[str, Any] | None = None,
         calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    bks = buckets if buckets is not None else [bucket("通用", 10 * GiB, 0)]
    return {"name": name, "state": state, "cycle": {"start": start, "end": end, "elapsed_fraction": 0.5},
            "used_bytes": used if used is not None else sum(b["used_bytes"] for b in bks),
            "buckets": bks, "overage_bytes": 0, "overage_cost": 0.0, "currency": "CNY",
            "throttled": throttled,
            "forecast": forecast or {"cycle_end_used_bytes": 0, "exhausted_at": None,
                                     "daily_budget_bytes": 0},
            "calibration": calibration}


def status(*cards: dict[str, Any], at: str = "2026-11-25T12:00:00+08:00") -> dict[str, Any]:
    return {"at": at, "cards": list(cards)}
