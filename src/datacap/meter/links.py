"""Interface counters from the kernel: a one-method source, and the netlink link events.

``/proc/net/dev`` and netlink IFLA_STATS64 agree exactly and are both 64-bit; reading the file costs
about 60 us against about 2 ms for a netlink dump, so the sampler reads the file and uses netlink
only for events: RTM_DELLINK carries the final counters of an interface that goes away, so the bytes
between the last sample and the deletion are kept too. The two attributes needed from each event
are decoded with ``struct`` (:func:`decode_link_event`; tested against pyroute2's encoder): pyroute2's
parser would add 12 MB of modules to a daemon that otherwise fits in about 50.
"""

from __future__ import annotations

import errno
import fnmatch
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from datacap.errors import MeterError
from datacap.meter.delta import Reading
from datacap.meter.netlink import NLMSG_HEADER, attrs, iter_messages

RTMGRP_LINK = 1
ARPHRD_NAMES = {1: "ether", 512: "ppp", 65534: "rawip", 772: "loopback", 776: "sit", 778: "gre",
                768: "tunnel", 769: "tunnel6", 65535: "void"}


def boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str:
    return Path(path).read_text().strip()


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclass(frozen=True, slots=True)
class LinkSample:
    """Counters of every interface at one instant."""

    boot_id: str
    boottime: float
    wall: float
    readings: dict[str, Reading]
    link_types: dict[str, str]


class LinkSource(Protocol):
    """Where counters come from: the kernel, or recorded readings in tests."""

    def sample(self) -> LinkSample: ...


def parse_proc_net_dev(text: str) -> dict[str, tuple[int, int, int, int]]:
    """``/proc/net/dev`` -> {name: (rx_bytes, tx_bytes, rx_packets, tx_packets)}."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) < 16:
            continue
        out[name.strip()] = (int(fields[0]), int(fields[8]), int(fields[1]), int(fields[9]))
    return out


class ProcNetDev:
    """Samples the counters of the current network namespace."""

    def __init__(self, proc: str = "/proc/net/dev", sys_class_net: str = "/sys/class/net") -> None:
        self._proc = proc
        self._sys = Path(sys_class_net)
        self._boot_id = boot_id()
        self._types: dict[tuple[str, int], str] = {}

    def sample(self) -> LinkSample:
        try:
            with open(self._proc) as fh:
                text = fh.read()
        except OSError as exc:
            raise MeterError(f"cannot read {self._proc}: {exc}") from exc
        now_boot, now_wall = boottime(), time.time()
        readings: dict[str, Reading] = {}
        types: dict[str, str] = {}
        for name, (rxb, txb, rxp, txp) in parse_proc_net_dev(text).items():
            ifindex = self._read_int(name, "ifindex")
            if ifindex is None:  # gone between the two reads; its DELLINK event carries the counters
                continue
            readings[name] = Reading(ifindex, self._boot_id, now_boot, now_wall, rxb, txb, rxp, txp)
            types[name] = self._link_type(name, ifindex)
        return LinkSample(self._boot_id, now_boot, now_wall, readings, types)

    def _link_type(self, name: str, ifindex: int) -> str:
        key = (name, ifindex)
        if key not in self._types:
            code = self._read_int(name, "type")
            self._types[key] = ARPHRD_NAMES.get(code or -1, f"arphrd-{code}")
        return self._types[key]

    def _read_int(self, name: str, attr: str) -> int | None:
        try:
            return int((self._sys / name / attr).read_text())
        except (OSError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """RTM_NEWLINK / RTM_DELLINK with the counters the kernel attached."""

    deleted: bool
    name: str
    reading: Reading | None


RTM_NEWLINK, RTM_DELLINK = 16, 17
RCVBUF = 1 << 18
IFLA_IFNAME, IFLA_STATS64 = 3, 23
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_STATS64_HEAD = struct.Struct("=4Q")  # rx_packets, tx_packets, rx_bytes, tx_bytes (first of 24 u64)


def decode_link_event(buf: bytes | memoryview, offset: int, boot: str, now_boot: float,
                      now_wall: float) -> LinkEvent | None:
    """One RTM_NEWLINK / RTM_DELLINK message at ``offset``: name, ifindex and counters, else None."""
    length, mtype = NLMSG_HEADER.unpack_from(buf, offset)[:2]
    if mtype not in (RTM_NEWLINK, RTM_DELLINK) or length < 16 + _IFINFOMSG.size:
        return None
    ifindex = _IFINFOMSG.unpack_from(buf, offset + 16)[2]
    name, stats = "", None
    for kind, start, end in attrs(buf, offset + 16 + _IFINFOMSG.size, offset + length):
        if kind == IFLA_IFNAME:
            name = bytes(buf[start:end]).split(b"\0", 1)[0].decode("utf-8", "replace")
        elif kind == IFLA_STATS64 and end - start >= _STATS64_HEAD.size:
            stats = _STATS64_HEAD.unpack_from(buf, start)
    reading = None
    if stats is not None:
        rx_packets, tx_packets, rx_bytes, tx_bytes = stats
        reading = Reading(ifindex, boot, now_boot, now_wall, rx_bytes, tx_bytes, rx_packets, tx_packets)
    return LinkEvent(mtype == RTM_DELLINK, name, reading)


class LinkEvents:
    """Non-blocking RTM_NEWLINK/RTM_DELLINK listener on a plain netlink socket.

    A socket of its own rather than pyroute2's: pyroute2's ``get()`` buffers messages internally, so a
    ``select`` on its socket can miss events already read (a DELLINK, typically).
    """

    def __init__(self) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
            # Links come and go a few times a day and the loop drains them at once: 256 KiB (a few
            # hundred events) is plenty, and an overflow is caught up with anyway (see ``overflowed``).
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self._sock.bind((0, RTMGRP_LINK))
        except OSError as exc:
            raise MeterError(f"cannot listen to netlink link events: {exc}") from exc
        self._sock.setblocking(False)
        self._boot_id = boot_id()
        self.overflowed = False

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> list[LinkEvent]:
        """Every event queued now (never blocks). Sets ``overflowed`` when the kernel dropped some: the
        caller must then re-read every counter (the daemon does, and records a ``resync`` event)."""
        events: list[LinkEvent] = []
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overflowed = True
                    continue
                raise MeterError(f"netlink link events failed: {exc}") from exc
            now_boot, now_wall = boottime(), time.time()
            for offset, _mtype, _length in iter_messages(data):
                event = decode_link_event(data, offset, self._boot_id, now_boot, now_wall)
                if event is not None and event.name:
                    events.append(event)

    def close(self) -> None:
        self._sock.close()


def select_interfaces(names: Iterable[str], include: list[str], exclude: list[str]) -> list[str]:
    """Names matching any include glob and no exclude glob; loopback is never metered."""
    chosen = []
    for name in names:
        if name == "lo":
            continue
        if include and not any(fnmatch.fnmatchcase(name, pat) for pat in include):
            continue
        if any(fnmatch.fnmatchcase(name, pat) for pat in exclude):
            continue
        chosen.append(name)
    return chosen


def default_route_interfaces(route4: str = "/proc/net/route", route6: str = "/proc/net/ipv6_route") -> list[str]:
    """Interfaces holding an IPv4 or IPv6 default route: the uplinks when no card names them."""
    names: list[str] = []
    try:
        for line in Path(route4).read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                names.append(fields[0])
    except OSError:
        pass
    try:
        for line in Path(route6).read_text().splitlines():
            fields = line.split()
            if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00" and fields[9] != "lo":
                names.append(fields[9])
    except OSError:
        pass
    return sorted(set(names))
