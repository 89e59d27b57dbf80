"""Join carrier replies that arrive as several texts into one, before they are parsed.

ModemManager already reassembles a *concatenated* SMS (one with a UDH header) into one Sms object.
Carriers' balance replies are often not concatenated but sent as two or three separate texts a second
apart ("...本月已用流量1.2GB" / "剩余流量3.8GB..."). The rule datacap uses:

* parts are grouped per modem and sender; a group is *consecutive* texts from one sender: a text from
  another sender on the same modem closes the open group of that modem, and so does a text loaded
  from storage after live ones (or the reverse): ModemManager re-announces stored texts on enable;
* a group also closes when ``gap`` seconds pass with no new part from that sender;
* inside a group, parts are ordered by the SMSC timestamp ModemManager reports, then by the Sms object
  number (ModemManager numbers objects as it creates them), and their texts are concatenated without
  a separator (carriers split mid-sentence).

The joiner is pure: the caller feeds it parts and the current time and asks which groups are done.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from datacap.modem.types import SmsMessage, TextPart

_INDEX_RE = re.compile(r"(\d+)$")


@dataclass(frozen=True, slots=True)
class SmsPart:
    """One received Sms object, as read from ModemManager."""

    modem_device_id: str
    iccid: str | None
    path: str
    sender: str
    text: str
    timestamp: str | None
    received_at: float  # when datacap saw it complete (monotonic or epoch: the caller's clock)
    storage: str = "unknown"  # where ModemManager keeps it: sm (the SIM), me (the modem)
    stored: bool = False  # loaded from storage, not received live (see TextPart.stored)


def timestamp_epoch(timestamp: str | None) -> float | None:
    """ModemManager's ISO 8601 SMSC timestamp as epoch seconds; None when absent or unreadable."""
    if not timestamp:
        return None
    try:
        parsed = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()


def _order_key(part: SmsPart) -> tuple[float, int]:
    stamp = timestamp_epoch(part.timestamp)  # an unreadable timestamp sorts last, by object number
    match = _INDEX_RE.search(part.path)
    return float("inf") if stamp is None else stamp, int(match.group(1)) if match else 0


def join_parts(parts: list[SmsPart]) -> SmsMessage:
    """One message from the parts of a group, in the order described in the module docstring."""
    ordered = sorted(parts, key=_order_key)
    first = ordered[0]
    return SmsMessage(
        modem_device_id=first.modem_device_id, iccid=first.iccid, sender=first.sender,
        text="".join(p.text for p in ordered), timestamp=first.timestamp,
        paths=tuple(p.path for p in ordered),
        parts=tuple(TextPart(p.path, p.text, p.timestamp, p.storage, p.stored) for p in ordered),
    )


class SmsJoiner:
    """Buffers parts and releases joined messages (see the module docstring for the rule)."""

    def __init__(self, gap: float = 5.0) -> None:
        self.gap = gap
        self._open: dict[str, list[SmsPart]] = {}  # modem device id -> parts of its open group

    def add(self, part: SmsPart) -> list[SmsMessage]:
        """Buffer ``part``; returns the group it closed (another sender on the same modem), if any."""
        group = self._open.get(part.modem_device_id)
        done: list[SmsMessage] = []
        if group and (group[0].sender != part.sender or group[0].stored != part.stored):
            # another sender, or texts re-announced from storage next to live ones: never one text
            done.append(join_parts(group))
            group = None
        if any(p.path == part.path or (p.timestamp, p.text) == (part.timestamp, part.text) for p in group or ()):
            return done  # the same object reported twice (Added, then a State change), or a copy of a part
        self._open[part.modem_device_id] = [*(group or ()), part]
        return done

    def due(self, now: float) -> list[SmsMessage]:
        """Close and return every group whose newest part is at least ``gap`` old."""
        done: list[SmsMessage] = []
        for modem, group in list(self._open.items()):
            if now - max(p.received_at for p in group) >= self.gap:
                done.append(join_parts(group))
                del self._open[modem]
        return done

    def next_deadline(self) -> float | None:
        """When the next group closes if nothing else arrives; None when nothing is buffered."""
        ends = [max(p.received_at for p in g) + self.gap for g in self._open.values()]
        return min(ends) if ends else None

    def flush(self) -> list[SmsMessage]:
        """Close every open group now (on shutdown)."""
        done = [join_parts(g) for g in self._open.values()]
        self._open.clear()
        return done


def join_stored(parts: list[SmsPart], gap: float = 60.0) -> list[SmsMessage]:
    """Join texts already stored on a modem (read at start-up), where arrival times are unknown.

    The same rule as live texts, on SMSC timestamps instead of arrival: in timestamp order, parts
    from one sender each at most ``gap`` seconds after the previous are one message. Parts without
    a timestamp stand alone.
    """
    joiner = SmsJoiner(gap)
    out: list[SmsMessage] = []
    for part in sorted(parts, key=_order_key):
        stamp = timestamp_epoch(part.timestamp)
        if stamp is None:
            out.append(join_parts([part]))
            continue
        out += joiner.due(stamp)
        out += joiner.add(replace(part, received_at=stamp))
    return out + joiner.flush()
