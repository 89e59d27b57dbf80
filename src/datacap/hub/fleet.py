"""The fleet table: every card of every device, riskiest first. One builder for the API, the page and
``datacap fleet``, so the three never disagree.

Risk, most urgent first: 0 hurting now (in overage, throttled, or its quota used up); 1 runs out
before its cycle ends (the plan engine's forecast), soonest first; 2 its device is silent (no batch
for ``silent_after``): the figures are stale; 3 fine, least remaining first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from datacap.hub.store.base import CardStatusRow, FleetFilter, HubStore
from datacap.timeutil import UTC, iso

RISKS = ("hurting", "runs_out", "silent", "ok")


def _when(epoch: int | None, tz: dt.tzinfo) -> str | None:
    return None if epoch is None else iso(dt.datetime.fromtimestamp(epoch, tz))


def reasons(row: CardStatusRow, now: int, silent_after: int) -> list[str]:
    s = row.summary
    out = []
    if s is not None:
        if s.overage_bytes > 0:
            out.append("overage")
        if s.throttled:
            out.append("throttled")
        if s.remaining_bytes is not None and s.remaining_bytes <= 0:
            out.append("exhausted")
        elif s.exhausts_at is not None:
            out.append("runs_out")
    if row.card.last_seen is None or row.card.last_seen < now - silent_after:
        out.append("silent")
    return out


def card_entry(row: CardStatusRow, now: int, silent_after: int, tz: dt.tzinfo) -> dict[str, Any]:
    c, s = row.card, row.summary
    return {
        "device": c.device, "card": c.card, "label": c.label, "group": c.group, "carrier": c.carrier,
        "iccid": c.iccid, "risk": RISKS[row.risk], "reasons": reasons(row, now, silent_after),
        "state": s.state if s else None,
        "used_bytes": s.used_bytes if s else None, "quota_bytes": s.quota_bytes if s else None,
        "remaining_bytes": s.remaining_bytes if s else None,
        "remaining_fraction": None if s is None or s.remaining_fraction is None else round(s.remaining_fraction, 4),
        "exhausts_at": _when(s.exhausts_at, tz) if s else None, "cycle_end": _when(s.cycle_end, tz) if s else None,
        "throttled": s.throttled if s else None, "overage_bytes": s.overage_bytes if s else None,
        "last_seen": _when(c.last_seen, tz), "status_at": _when(row.computed_at, tz),
    }


def fleet_doc(store: HubStore, flt: FleetFilter, *, silent_after: int, tz: dt.tzinfo = UTC,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """``GET /api/v1/fleet`` and ``datacap fleet --json``."""
    at = now or dt.datetime.now(UTC)
    stamp = int(at.timestamp())
    page = store.fleet(flt, stamp, silent_after)
    return {
        "at": iso(at.astimezone(tz)), "total": page.total, "offset": flt.offset, "silent_after_s": silent_after,
        "filters": {"carrier": flt.carrier, "device": flt.device, "group": flt.group},
        "cards": [card_entry(r, stamp, silent_after, tz) for r in page.rows],
        "carriers": [{"carrier": t.carrier, "cards": t.cards, "used_bytes": t.used_bytes,
                      "quota_bytes": t.quota_bytes, "remaining_bytes": t.remaining_bytes,
                      "overage_bytes": t.overage_bytes} for t in page.carriers],
    }


def devices_doc(store: HubStore, *, silent_after: int, tz: dt.tzinfo = UTC) -> dict[str, Any]:
    """``GET /api/v1/devices`` and ``datacap hub device list --json``: never the token, not even hashed."""
    now = int(dt.datetime.now(UTC).timestamp())
    return {"devices": [{
        "device": d.device, "group": d.group, "created": _when(d.created, tz), "revoked": _when(d.revoked_at, tz),
        "last_seq": d.last_seq, "last_seen": _when(d.last_seen, tz),
        "silent": d.revoked_at is None and (d.last_seen is None or d.last_seen < now - silent_after),
        "hostname": d.hostname, "datacap": d.version, "timezone": d.timezone, "health": d.health,
    } for d in store.devices()]}


def totals_doc(store: HubStore, device: str) -> dict[str, Any]:
    """Every byte the hub holds for a device, per interface and card stamp (all time)."""
    rows = store.usage_totals(device)
    return {"device": device, "rx_bytes": sum(r.rx for r in rows), "tx_bytes": sum(r.tx for r in rows),
            "interfaces": [{"interface": r.interface, "card": r.card, "rx_bytes": r.rx, "tx_bytes": r.tx}
                           for r in rows]}
