"""Batches as a device sends them (built as plain JSON, the wire format, not with the model)."""

from __future__ import annotations

import time
from typing import Any

from datacap.hub.protocol import encode

GiB = 1024**3


def plan(name: str = "sim1", quota: str | None = "10 GB", interfaces: tuple[str, ...] = ("wwan0",),
         cycle: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "interfaces": list(interfaces),
                           "cycle": cycle or {"kind": "monthly", "day": 1}, **extra}
    doc["buckets"] = [{"name": "general", "quota": quota}] if quota else [{"name": "general"}]
    return doc


def card(name: str = "sim1", carrier: str | None = "China Mobile", **plan_args: Any) -> dict[str, Any]:
    return {"name": name, "label": None, "iccid": None, "carrier": carrier, "interfaces": ["wwan0"],
            "plan": plan(name, **plan_args)}


def batch(device: str, seq: int, usage: list[tuple[int, str, int, int]] | None = None, *,
          cards: list[dict[str, Any]] | None = None, tz: str = "Asia/Shanghai", **more: Any) -> dict[str, Any]:
    """``usage``: (start, interface, rx, tx) rows, unstamped."""
    return {"v": 1, "device": device, "seq": seq, "created": "2026-11-30T12:00:00Z",
            "host": {"hostname": device, "datacap": "0.1.0", "timezone": tz},
            "health": {"uptime_s": 60, "last_sample": None, "store_bytes": 4096, "write_errors": 0,
                       "pending_batches": 1},
            "cards": [card()] if cards is None else cards,
            "usage": [{"start": s, "interface": i, "card": None, "rx": rx, "tx": tx} for s, i, rx, tx in usage or []],
            "attribution": [], "calibrations": [], "texts": [], "alerts": [], **more}


def body(*args: Any, **kwargs: Any) -> bytes:
    return encode(batch(*args, **kwargs))


def bucket_now(offset: int = 0) -> int:
    now = int(time.time()) - offset
    return now - now % 300
