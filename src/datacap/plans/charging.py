"""The hot path of the plan engine: usage records -> time pieces -> bytes charged to allowances.

Everything here works in UTC epoch seconds and plain ints; datetimes are only made for the few
boundaries (cycles, packs, local midnights, hours windows), never per record.

1. ``prepare`` keeps the counted bytes of each record (``count``, L2 overhead), clips records to the
   requested range and merges records of the same interval whose scope signature is the same. The
   signature is a bit mask of the allowances whose services/apps scope matches the record, so 50
   apps collapse into a handful of streams.
2. ``split`` cuts the merged intervals at every boundary (cycle, pack start/end, hours-window edges,
   local midnights, calibration instants), sharing the bytes by time, so that within a piece
   nothing changes: which allowances are active, which local day it is.
3. ``Walker`` charges pieces in time order; see ``datacap.plans.engine`` for the rules.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

from datacap.model import UsageRecord
from datacap.plans.config import CardConfig

AUTO_ETHERNET_OVERHEAD = 14  # bytes of Ethernet header the carrier never sees, per packet

Piece = tuple[int, int, int, int, int]  # (start, end, signature, bytes, local-day start)


def scope_entries(card: CardConfig) -> list[tuple[list[str] | None, list[str] | None]]:
    """(services, apps) of every bucket, then every pack: bit i of a signature is entry i."""
    return [(b.services, b.apps) for b in card.buckets] + [(p.services, p.apps) for p in card.packs]


class Signer:
    """Maps (app, service) to the bit mask of allowances whose services/apps scope matches.

    A scope with both `services` and `apps` matches traffic of either (zero-rated plans list the apps
    and the servers they use); an allowance with neither matches everything.
    """

    def __init__(self, card: CardConfig) -> None:
        self._entries = scope_entries(card)
        self.cache: dict[tuple[str | None, str | None], int] = {}
        self.always = 0
        for bit, (services, apps) in enumerate(self._entries):
            if not services and not apps:
                self.always |= 1 << bit
        self.constant = self.always == (1 << len(self._entries)) - 1

    def sign(self, app: str | None, service: str | None) -> int:
        key = (app, service)
        mask = self.cache.get(key)
        if mask is None:
            mask = 0
            for bit, (services, apps) in enumerate(self._entries):
                unscoped = not services and not apps
                if unscoped or (services and service in services) or (apps and app in apps):
                    mask |= 1 << bit
            self.cache[key] = mask
        return mask


def _overhead_of(card: CardConfig, ethernet_ifaces: frozenset[str] | set[str]) -> dict[str, int] | int:
    """Per-interface L2 bytes per packet for "auto", else the configured number for every interface."""
    if card.l2_overhead == "auto":
        return {name: AUTO_ETHERNET_OVERHEAD for name in ethernet_ifaces}
    return card.l2_overhead


def prepare(card: CardConfig, records: Iterable[UsageRecord], lo: int, hi: int,
            ethernet_ifaces: frozenset[str] | set[str]) -> dict[tuple[int, int, int], int]:
    """Counted bytes per (start, end, signature) for the part of every record inside [lo, hi)."""
    signer = Signer(card)
    overhead = _overhead_of(card, ethernet_ifaces)
    per_iface = overhead if isinstance(overhead, dict) else {}
    fixed = overhead if isinstance(overhead, int) else 0
    out: dict[tuple[int, int, int], int] = {}
    if card.count == "both" and not per_iface and not fixed:
        records = _prepare_plain(records, lo, hi, signer, out)
    rx_on = card.count in ("both", "rx")
    tx_on = card.count in ("both", "tx")
    get = out.get
    for r in records:
        start = r.start
        end = start + r.seconds
        if (end <= lo or start >= hi) and not start == end == lo:  # an instant record at lo counts
            continue
        counted = _counted(r, rx_on, tx_on, per_iface.get(r.interface, fixed))
        if start < lo or end > hi:
            # Only the part of the interval inside the range counts, shared by time.
            a, b = max(start, lo), min(end, hi)
            counted = counted * (b - a) // (end - start)
            start, end = a, b
        if counted:
            key = (start, end, signer.sign(r.app, r.service))
            out[key] = get(key, 0) + counted
    return out


def _prepare_plain(records: Iterable[UsageRecord], lo: int, hi: int, signer: Signer,
                   out: dict[tuple[int, int, int], int]) -> list[UsageRecord]:
    """The hot loop for the common case (both directions, no L2 overhead) over records wholly inside
    [lo, hi); returns the others for the general loop. Runs once per record, so it is kept lean: the
    signature cache is read inline and the counted bytes are the plain sum."""
    rest: list[UsageRecord] = []
    get = out.get
    cache_get = signer.cache.get
    sign = signer.sign
    const_sig = signer.always if signer.constant else -1
    for r in records:
        start = r.start
        end = start + r.seconds
        if start < lo or end > hi or start == hi:
            if (end > lo and start < hi) or start == end == lo:  # straddling: clipped by the general loop
                rest.append(r)
            continue
        if const_sig >= 0:
            sig = const_sig
        else:
            found = cache_get((r.app, r.service))
            sig = sign(r.app, r.service) if found is None else found
        key = (start, end, sig)
        out[key] = get(key, 0) + r.rx_bytes + r.tx_bytes
    return rest


def _counted(r: UsageRecord, rx_on: bool, tx_on: bool, over: int) -> int:
    """Bytes the carrier bills: the counted directions, less `over` bytes of L2 framing per packet."""
    counted = 0
    if rx_on:
        counted += max(0, r.rx_bytes - over * r.rx_packets)
    if tx_on:
        counted += max(0, r.tx_bytes - over * r.tx_packets)
    return counted


def split(merged: dict[tuple[int, int, int], int], breaks: Sequence[int],
          midnights: Sequence[int]) -> list[Piece]:
    """Cut every merged interval at the sorted ``breaks`` strictly inside it, sharing bytes by time
    (the rounding remainder goes to the last piece, so no byte is lost); tag each piece with its local
    day (the last of ``midnights`` at or before its start). Sorted by time, then signature."""
    pieces: list[Piece] = []
    append = pieces.append
    nb = len(breaks)
    for (start, end, sig), amount in merged.items():
        i = bisect_right(breaks, start)
        if i >= nb or breaks[i] >= end:
            append((start, end, sig, amount, midnights[bisect_right(midnights, start) - 1]))
            continue
        length = end - start
        given = 0
        a = start
        while i < nb and breaks[i] < end:
            b = breaks[i]
            share = amount * (b - start) // length - given
            append((a, b, sig, share, midnights[bisect_right(midnights, a) - 1]))
            given += share
            a = b
            i += 1
        append((a, end, sig, amount - given, midnights[bisect_right(midnights, a) - 1]))
    pieces.sort()
    return pieces


def in_windows(windows: Sequence[int], instant: int) -> bool:
    """``windows`` is a flat sorted list [start0, end0, start1, end1, ...]."""
    return bisect_right(windows, instant) % 2 == 1
