"""Live per-app / per-client rates handed from the daemon to ``datacap top``.

Only one attribution source may run in a network namespace (a second would reset the first's nft
table), so the daemon writes its latest rates to a small JSON file beside the store, atomically,
every sample; ``datacap top`` reads it. Without a daemon, ``top`` runs a source of its own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datacap.meter.attribution import Rate

STALE_AFTER = 10.0  # seconds: older rates mean the daemon stopped (or runs without attribution)


def live_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".live.json")


def rate_rows(rates: Iterable[Rate]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for r in sorted(rates, key=lambda r: -(r.rx_rate + r.tx_rate)):
        rows.append({"interface": r.interface, "rx_rate": round(r.rx_rate, 1), "tx_rate": round(r.tx_rate, 1),
                     "app": r.app.name if r.app else None, "user": r.app.user if r.app else None,
                     "unit": r.app.unit if r.app else None,
                     "client": (r.client.hostname or r.client.ip or r.client.mac) if r.client else None,
                     "service": r.service})
    return rows


def write_rates(path: Path, rates: Iterable[Rate], now: float | None = None) -> None:
    doc = {"at": now if now is not None else time.time(), "rates": rate_rows(rates)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False))
    os.replace(tmp, path)  # readers see the old or the new file, never half of one


def read_rates(path: Path, now: float | None = None) -> list[dict[str, Any]] | None:
    """The daemon's latest rates, or None when there are none fresh enough to show."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (now if now is not None else time.time()) - float(doc.get("at", 0)) > STALE_AFTER:
        return None
    return list(doc.get("rates", []))
