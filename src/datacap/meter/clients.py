"""Who a LAN client is: its MAC from the kernel neighbour table, its hostname from DHCP leases.

On a hotspot or router, conntrack gives the client's address; people want "Anna's phone". The MAC
comes from the neighbour table (ARP / NDP), the hostname from the lease files of the DHCP server
in use: dnsmasq (also OpenWrt's ``/tmp/dhcp.leases`` and NetworkManager's hotspot), odhcpd,
systemd-networkd's DHCP server, ISC dhcpd and Kea. A client with an IPv6 address that no lease
names (SLAAC) still gets its hostname: its MAC leads to its IPv4 lease.

Lease files are written by other programs, so a line that cannot be read is skipped and reported in
:meth:`ClientDirectory.problems` (``FILE:LINE: what was expected``), never guessed at; one odd line
must not cost every client its name. Everything is cached and re-read at most every ``refresh``
seconds (files only when their mtime/size changed).
"""

from __future__ import annotations

import glob
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from datacap.errors import ConfigError, InputError, MeterError
from datacap.meter.leases import (
    DEFAULT_LEASE_SOURCES,
    LEASE_FORMATS,
    MAC_RE,
    Lease,
    LeaseSource,
    Parsed,
    normalize_ip,
    parse_leases,
)
from datacap.model import ClientIdentity
from datacap.units import parse_duration

__all__ = [
    "DEFAULT_LEASE_SOURCES",
    "LEASE_FORMATS",
    "ClientDirectory",
    "ClientResolver",
    "ClientsConfig",
    "Lease",
    "LeaseSource",
    "NetlinkNeighbours",
    "ProcArpNeighbours",
    "clients_config",
    "parse_leases",
]

log = logging.getLogger(__name__)


class ClientResolver(Protocol):
    """What the attribution core asks about a LAN client's address."""

    def identify(self, ip: str) -> ClientIdentity: ...


# --------------------------------------------------------------------------------------------------
# Neighbour table
# --------------------------------------------------------------------------------------------------


class NeighbourSource(Protocol):
    def neighbours(self) -> dict[str, str]:
        """Address -> MAC of every reachable (or recently reachable) neighbour."""
        ...


_NUD_INCOMPLETE, _NUD_FAILED, _NUD_NOARP = 0x01, 0x20, 0x40


class NetlinkNeighbours:
    """The kernel neighbour table (IPv4 ARP and IPv6 NDP) over rtnetlink, via pyroute2."""

    def __init__(self, netns: str | None = None) -> None:
        from pyroute2 import IPRoute

        # pyroute2 would create a missing namespace; reading a table must never create one.
        if netns is not None and not os.path.exists(os.path.join("/run/netns", netns)):
            raise MeterError(f"network namespace {netns!r} does not exist (no /run/netns/{netns})")
        try:
            self._ipr = IPRoute(netns=netns) if netns else IPRoute()
        except OSError as exc:
            raise MeterError("cannot open rtnetlink to read the neighbour table: "
                             f"{exc.strerror or exc}") from exc

    def neighbours(self) -> dict[str, str]:
        from pyroute2.netlink.exceptions import NetlinkError

        found: dict[str, str] = {}
        try:
            messages = list(self._ipr.get_neighbours())
        except (OSError, NetlinkError) as exc:
            raise MeterError(f"cannot read the neighbour table: {exc}") from exc
        for msg in messages:
            if msg["state"] & (_NUD_INCOMPLETE | _NUD_FAILED | _NUD_NOARP):
                continue
            ip, mac = msg.get("NDA_DST"), msg.get("NDA_LLADDR")
            if ip and mac and mac != "00:00:00:00:00:00" and MAC_RE.match(mac.lower()):
                found[str(ipaddress.ip_address(ip))] = mac.lower()
        return found

    def close(self) -> None:
        self._ipr.close()


class ProcArpNeighbours:
    """IPv4 only, from ``/proc/net/arp``: for systems where rtnetlink is not available."""

    def __init__(self, path: str = "/proc/net/arp") -> None:
        self.path = path

    def neighbours(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            lines = Path(self.path).read_text().splitlines()[1:]
        except OSError as exc:
            raise MeterError(f"{self.path}: cannot read the ARP table: {exc.strerror or exc}") from exc
        for line in lines:
            fields = line.split()
            # IP, HW type, flags (0x2 = complete), MAC, mask, device
            try:
                complete = len(fields) >= 4 and int(fields[2], 16) & 0x2  # ATF_COM
            except ValueError:
                continue
            if complete and MAC_RE.match(fields[3].lower()) and fields[3] != "00:00:00:00:00:00":
                found[fields[0]] = fields[3].lower()
        return found

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientsConfig:
    """``[clients]``: extra lease files, whether to probe the usual places, how often to re-read."""

    leases: tuple[LeaseSource, ...] = ()
    default_leases: bool = True
    refresh: int = 30

    def sources(self) -> tuple[LeaseSource, ...]:
        return (*self.leases, *(DEFAULT_LEASE_SOURCES if self.default_leases else ()))


def clients_config(table: Mapping[str, Any] | None, source: str = "config") -> ClientsConfig:
    """Validate a ``[clients]`` table::

        [clients]
        refresh = "30s"
        default_leases = true
        leases = [{format = "dnsmasq", path = "/srv/dnsmasq/leases"}]
    """
    if table is None:
        return ClientsConfig()
    # "limits" ([[clients.limits]], per-client quotas) is validated by datacap.alerts.client_limits.
    unknown = set(table) - {"leases", "default_leases", "refresh", "limits"}
    if unknown:
        raise ConfigError(f"{source}: clients: unknown key(s) {sorted(unknown)}; expected 'leases', "
                          f"'default_leases' and 'refresh'")
    leases: list[LeaseSource] = []
    raw = table.get("leases", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: clients.leases: expected a list of {{format, path}} tables, "
                          f"found {raw!r}")
    for i, item in enumerate(raw):
        where = f"{source}: clients.leases[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"format", "path"}:
            raise ConfigError(f"{where}: expected a table with exactly 'format' and 'path', found {item!r}")
        if item["format"] not in LEASE_FORMATS:
            raise ConfigError(f"{where}.format: expected one of {', '.join(LEASE_FORMATS)}, "
                              f"found {item['format']!r}")
        if not isinstance(item["path"], str) or not item["path"].startswith("/"):
            raise ConfigError(f"{where}.path: expected an absolute path, found {item['path']!r}")
        leases.append(LeaseSource(item["format"], item["path"]))
    default = table.get("default_leases", True)
    if not isinstance(default, bool):
        raise ConfigError(f"{source}: clients.default_leases: expected true or false, found {default!r}")
    try:
        refresh = parse_duration(table.get("refresh", "30s"))
    except InputError as exc:
        raise ConfigError(f"{source}: clients.refresh: {exc}") from None
    if refresh < 1:
        raise ConfigError(f"{source}: clients.refresh: expected at least 1s, found {table['refresh']!r}")
    return ClientsConfig(tuple(leases), default, refresh)


# --------------------------------------------------------------------------------------------------
# The directory
# --------------------------------------------------------------------------------------------------


class ClientDirectory:
    """Implements ``ClientResolver``: address -> :class:`ClientIdentity` (MAC, hostname).

    The neighbour table and lease files are re-read at most every ``refresh`` seconds, and sooner
    (at most every ``miss_refresh`` seconds) when an address is not in the neighbour table yet: a
    new client's first flow usually arrives right after its first ARP exchange.
    """

    def __init__(self, neighbours: NeighbourSource, sources: Sequence[LeaseSource] = DEFAULT_LEASE_SOURCES,
                 *, refresh: float = 30, miss_refresh: float = 2,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._neigh_source, self._sources = neighbours, tuple(sources)
        self.refresh_s, self.miss_refresh_s, self._clock, self._wall = refresh, miss_refresh, clock, wall
        self._neigh: dict[str, str] = {}
        self._by_ip: dict[str, Lease] = {}
        self._by_mac: dict[str, Lease] = {}
        self._files: dict[str, tuple[tuple[int, int, int], Parsed]] = {}  # path -> (stat key, parsed)
        self._problems: list[str] = []
        self._last: float | None = None

    @classmethod
    def from_config(cls, config: ClientsConfig, netns: str | None = None) -> ClientDirectory:
        return cls(NetlinkNeighbours(netns), config.sources(), refresh=config.refresh)

    def identify(self, ip: str) -> ClientIdentity:
        """MAC and hostname of the client at ``ip``; fields stay ``None`` when not known."""
        key = normalize_ip(ip) or ip
        now = self._clock()
        if self._last is None or now - self._last >= self.refresh_s or (
                key not in self._neigh and now - self._last >= self.miss_refresh_s):
            self.refresh()
        mac = self._neigh.get(key)
        lease = self._by_ip.get(key)
        if lease is not None and mac is not None and lease.mac is not None and lease.mac != mac:
            lease = None  # the address moved to another device since that lease was written
        if mac is None and lease is not None:
            mac = lease.mac
        hostname = lease.hostname if lease is not None else None
        if hostname is None and mac is not None and mac in self._by_mac:
            hostname = self._by_mac[mac].hostname
        return ClientIdentity(ip=key, mac=mac, hostname=hostname)

    def refresh(self) -> None:
        """Re-read the neighbour table, and every lease file that changed."""
        self._last = self._clock()
        try:
            self._neigh = self._neigh_source.neighbours()
        except MeterError as exc:
            log.warning("%s", exc)
        problems: list[str] = []
        leases: list[Lease] = []
        seen: set[str] = set()
        for src in self._sources:
            for path in sorted(glob.glob(src.path)) if glob.has_magic(src.path) else [src.path]:
                parsed = self._read(src.format, path)
                if parsed is not None:
                    seen.add(path)
                    leases.extend(parsed[0])
                    problems.extend(parsed[1])
        self._files = {p: v for p, v in self._files.items() if p in seen}
        now = self._wall()
        self._by_ip, self._by_mac = {}, {}
        for lease in leases:  # in file order: a later lease (journal) replaces an earlier one
            if lease.hostname and lease.mac:
                self._by_mac[lease.mac] = lease
            if lease.active and (lease.expires is None or lease.expires > now):
                self._by_ip[lease.ip] = lease
            else:  # a later "free" or expired record ends whatever an earlier one said
                self._by_ip.pop(lease.ip, None)
        for problem in set(problems) - set(self._problems):
            log.warning("skipped a lease line: %s", problem)
        self._problems = problems

    def _read(self, fmt: str, path: str) -> Parsed | None:
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._files.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None  # that DHCP server is not in use here
        except OSError as exc:
            return [], [f"{path}: cannot read: {exc.strerror or exc}"]
        parsed = parse_leases(fmt, text, path)
        self._files[path] = (key, parsed)
        return parsed

    def problems(self) -> list[str]:
        """Lease lines skipped at the last refresh, as ``FILE:LINE: what was expected, found``."""
        return list(self._problems)

    def known(self) -> Iterable[ClientIdentity]:
        """Every client seen in the neighbour table or a current lease (for ``datacap clients``)."""
        return [self.identify(ip) for ip in sorted({*self._neigh, *self._by_ip})]

    def close(self) -> None:
        close = getattr(self._neigh_source, "close", None)
        if close is not None:
            close()
