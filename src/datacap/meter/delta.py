"""Two raw counter readings of one interface in, the bytes used between them out.

This is the single place that decides what a change of the kernel's counters means. Rules, in order:

* no previous reading: a baseline, nothing counted (usage before datacap saw the interface is unknown);
* the kernel booted again (boot id differs): the counters restarted at boot, so everything they show
  now was used since then: counted, placed between the later of the previous reading and the boot, and now;
* the interface was deleted and re-created (ifindex differs), or a counter went down and that is not
  a plausible wrap: the counters restarted from zero, so all they show now is new. Never read as a
  wrap, which is vnStat's phantom 4 GiB jump;
* only one direction went down (rx but not tx, or the reverse): not a reset, which zeroes every
  counter, but a glitch (a veth's rx counters read 0 while it is torn down, being its peer's tx):
  nothing is counted for that direction and the caller keeps its previous value as the base;
* a counter went down from the upper half of the 32-bit range, or from the top of the 64-bit range,
  and the wrapped difference is plausible: a wrap (some drivers still keep 32-bit counters);
* a difference larger than ``max_rate`` allows for the elapsed time is rejected: nothing is counted,
  the reading becomes the new base, and the caller logs it;
* daemon downtime within one boot loses nothing: the previous reading was persisted, so the bytes
  since then are counted, spread evenly over the time the daemon was down.

Elapsed time comes from CLOCK_BOOTTIME (monotonic across processes within a boot, counts suspend);
the wall clock only says where "now" is. The bytes are placed in [now - elapsed, now], so a jump of
the wall clock forwards or backwards moves where the next bytes land but never stretches, duplicates
or loses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from datacap.model import Reading

WRAP32 = 1 << 32
WRAP64 = 1 << 64
MIN_ELAPSED = 1.0  # seconds: counters update in batches; never judge a rate over less than this


class Kind(Enum):
    BASELINE = "baseline"
    NORMAL = "normal"
    WRAP = "wrap"
    GLITCH = "glitch"
    RESET = "reset"
    REBOOT = "reboot"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Delta:
    kind: Kind
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    start: float = 0.0  # wall epoch seconds where the bytes are placed: [start, end]
    end: float = 0.0
    note: str = ""

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes


def counter_delta(prev: Reading | None, cur: Reading, max_rate_bps: int) -> Delta:
    """The bytes and packets used between ``prev`` and ``cur`` (see the module docstring)."""
    if prev is None:
        return Delta(Kind.BASELINE, start=cur.wall, end=cur.wall, note="first reading: baseline")
    if prev.boot_id != cur.boot_id:
        start = max(prev.wall, cur.wall - cur.boottime)
        return _checked(Kind.REBOOT, cur.counters(), start, cur, cur.wall - start, max_rate_bps,
                        "reboot: counters restarted at boot")
    elapsed = cur.boottime - prev.boottime
    start = cur.wall - max(elapsed, 0.0)
    if prev.ifindex != cur.ifindex:
        return _checked(Kind.RESET, cur.counters(), start, cur, elapsed, max_rate_bps,
                        f"interface re-created (ifindex {prev.ifindex} -> {cur.ifindex})")
    limit = max_rate_bps / 8 * max(elapsed, MIN_ELAPSED)
    diffs: list[int | None] = []  # None: went down and is no plausible wrap
    for old, new in zip(prev.counters(), cur.counters(), strict=True):
        diffs.append(new - old if new >= old else _wrap(old, new, limit))
    # Counters are (rx_bytes, tx_bytes, rx_packets, tx_packets): direction d owns indexes d and d + 2.
    dropped = [diffs[d] is None or diffs[d + 2] is None for d in (0, 1)]
    had_bytes = [prev.counters()[d] > 0 for d in (0, 1)]
    if any(dropped):
        if all(dropped[d] or not had_bytes[d] for d in (0, 1)):
            return _checked(Kind.RESET, cur.counters(), start, cur, elapsed, max_rate_bps,
                            f"counters went down ({prev.rx_bytes}/{prev.tx_bytes} -> "
                            f"{cur.rx_bytes}/{cur.tx_bytes} rx/tx bytes): interface reset")
        side = "rx" if dropped[0] else "tx"
        kept = [0 if dropped[i % 2] else diffs[i] for i in range(4)]
        return _checked(Kind.GLITCH, kept, start, cur, elapsed, max_rate_bps,  # type: ignore[arg-type]
                        f"{side} counters went down while the other direction did not: "
                        f"kept the previous {side} value as the base")
    wrapped = any(d is not None and d != n - o for d, o, n in zip(diffs, prev.counters(), cur.counters(), strict=True))
    kind = Kind.WRAP if wrapped else Kind.NORMAL
    return _checked(kind, diffs, start, cur, elapsed, max_rate_bps,  # type: ignore[arg-type]
                    "counter wrapped" if wrapped else "")


def _wrap(old: int, new: int, limit: float) -> int | None:
    """The wrapped difference if ``old -> new`` is a plausible 32- or 64-bit wrap, else None."""
    if old < WRAP32:
        # Only from the upper half: a reset that starts again from a small value must not look like a wrap.
        if old >= WRAP32 // 2 and new + WRAP32 - old <= limit:
            return new + WRAP32 - old
        return None
    if old < WRAP64 and new + WRAP64 - old <= limit:
        return new + WRAP64 - old
    return None


def _checked(kind: Kind, diffs: tuple[int, ...] | list[int], start: float, cur: Reading, elapsed: float,
             max_rate_bps: int, note: str) -> Delta:
    rx, tx, rxp, txp = diffs
    limit = max_rate_bps / 8 * max(elapsed, MIN_ELAPSED)
    if rx > limit or tx > limit:
        return Delta(Kind.REJECTED, start=start, end=cur.wall,
                     note=f"{kind.value}: {max(rx, tx)} bytes in {elapsed:.1f} s exceeds the "
                          f"{max_rate_bps} bit/s plausibility limit; not counted")
    return Delta(kind, rx, tx, rxp, txp, start=start, end=cur.wall, note=note)
