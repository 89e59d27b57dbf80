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

import calendar
import csv
import glob
import io
import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from datacap.errors import ConfigError, InputError, MeterError
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

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class ClientResolver(Protocol):
    """What the attribution core asks about a LAN client's address."""

    def identify(self, ip: str) -> ClientIdentity: ...


@dataclass(frozen=True, slots=True)
class Lease:
    ip: str
    mac: str | None
    hostname: str | None
    expires: float | None = None  # epoch seconds; None: no expiry known or infinite
    active: bool = True  # ISC dhcpd keeps freed leases in its journal; those name no current holder


Parsed = tuple[list[Lease], list[str]]  # leases, problems ("FILE:LINE: ...")


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.split("/", 1)[0]))
    except ValueError:
        return None


def _mac(text: str) -> str | None:
    """``AA-BB-..``, ``aabb.ccdd.eeff`` or 12 hex digits -> ``aa:bb:cc:dd:ee:ff``; None if not a MAC."""
    digits = re.sub(r"[^0-9a-fA-F]", "", text)
    if len(digits) != 12 or len(re.sub(r"[0-9a-fA-F:.\-]", "", text)):
        return None
    mac = ":".join(digits[i:i + 2] for i in range(0, 12, 2)).lower()
    return mac if _MAC_RE.match(mac) else None


def _hostname(text: str | None) -> str | None:
    if not text or text in ("*", "-") or text.startswith("broken\\x20"):
        return None
    return text


def parse_dnsmasq(text: str, source: str) -> Parsed:
    """``EXPIRY MAC IP HOSTNAME CLIENT-ID`` per line; DHCPv6 lines carry an IAID where the MAC goes."""
    leases, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] == "duid":
            continue
        ip = _ip(fields[2]) if len(fields) >= 4 else None
        if ip is None or not fields[0].isdigit():
            problems.append(f"{source}:{number}: expected 'EXPIRY MAC IP HOSTNAME CLIENT-ID', found {line!r}")
            continue
        expiry = int(fields[0])
        leases.append(Lease(ip, _mac(fields[1]), _hostname(fields[3]), float(expiry) if expiry else None))
    return leases, problems


def _mac_from_duid(duid: str) -> str | None:
    """DUID-LLT (type 1) and DUID-LL (type 3) over Ethernet embed the client's MAC."""
    if duid.startswith("00010001") and len(duid) == 28:
        return _mac(duid[16:])
    if duid.startswith("00030001") and len(duid) == 20:
        return _mac(duid[8:])
    return None


def parse_odhcpd(text: str, source: str) -> Parsed:
    """odhcpd state file: ``# IFACE ID IAID|ipv4 HOSTNAME EXPIRY HOSTID LEN ADDRS`` and hosts lines."""
    leases, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if fields[0] != "#":  # hosts-file line: ADDRESS NAME [ALIAS...]; the last one is the short name
            ip = _ip(fields[0])
            if ip is None or len(fields) < 2:
                problems.append(f"{source}:{number}: expected 'ADDRESS HOSTNAME' or a '# ...' lease, "
                                f"found {line!r}")
                continue
            leases.append(Lease(ip, None, fields[-1]))
            continue
        if len(fields) < 8 or not fields[5].lstrip("-").isdigit():
            problems.append(f"{source}:{number}: expected '# IFACE ID IAID HOSTNAME EXPIRY HOSTID LEN "
                            f"ADDRESSES', found {line!r}")
            continue
        mac = _mac(fields[2]) if fields[3] == "ipv4" else _mac_from_duid(fields[2].lower())
        expiry = int(fields[5])
        for addr in fields[8:]:
            ip = _ip(addr)
            if ip is not None:
                leases.append(Lease(ip, mac, _hostname(fields[4]), float(expiry) if expiry > 0 else None))
    return leases, problems


def parse_networkd(text: str, source: str) -> Parsed:
    """systemd-networkd's DHCP server lease file (JSON with a ``Leases`` array)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [f"{source}:{exc.lineno}: expected JSON with a 'Leases' array: {exc.msg}"]
    raw = data.get("Leases") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return [], [f"{source}: expected a 'Leases' array"]
    leases, problems = [], []
    for index, item in enumerate(raw):
        try:
            ip = str(ipaddress.IPv4Address(bytes(item["Address"])))
            hw = item.get("HardwareAddress") or []
            client_id = item.get("ClientId") or []
            if not hw and len(client_id) == 7 and client_id[0] == 1:  # type 1 = Ethernet + MAC
                hw = client_id[1:]
            mac = _mac(bytes(hw).hex()) if len(hw) == 6 else None
            usec = item.get("ExpirationRealtimeUSec")
            expires = usec / 1e6 if isinstance(usec, int) else None
            hostname = item.get("Hostname")
            leases.append(Lease(ip, mac, hostname if isinstance(hostname, str) else None, expires))
        except (KeyError, TypeError, ValueError, ipaddress.AddressValueError):
            problems.append(f"{source}: Leases[{index}]: expected an 'Address' of 4 bytes, found {item!r}")
    return leases, problems


_ISC_LEASE_RE = re.compile(r"^\s*lease\s+(\S+)\s*\{")
_ISC_FIELDS = {
    "mac": re.compile(r"^\s*hardware\s+ethernet\s+([0-9a-fA-F:]+)\s*;"),
    "hostname": re.compile(r'^\s*client-hostname\s+"([^"]*)"\s*;'),
    "state": re.compile(r"^\s*binding\s+state\s+(\w+)\s*;"),
    "ends": re.compile(r"^\s*ends\s+\d\s+(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\s*;"),
}


def parse_isc(text: str, source: str) -> Parsed:
    """ISC dhcpd's journal: ``lease IP { ... }`` blocks; the last block for an address wins."""
    leases, problems = [], []
    current: dict[str, Any] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = _ISC_LEASE_RE.match(line)
        if opened:
            ip = _ip(opened.group(1))
            if ip is None:
                problems.append(f"{source}:{number}: expected 'lease ADDRESS {{', found {line!r}")
            current = {"ip": ip, "line": number} if ip else None
            continue
        if current is None:
            continue
        if line.strip() == "}":
            ends = current.get("ends")
            expires = float(calendar.timegm(time.strptime(ends, "%Y/%m/%d %H:%M:%S"))) if ends else None
            leases.append(Lease(current["ip"], _mac(current.get("mac", "")), current.get("hostname"),
                                expires, current.get("state", "active") == "active"))
            current = None
            continue
        for key, pattern in _ISC_FIELDS.items():
            found = pattern.match(line)
            if found:
                current[key] = found.group(1)
    if current is not None:
        problems.append(f"{source}:{current['line']}: lease block is not closed with '}}'")
    return leases, problems


def parse_kea(text: str, source: str) -> Parsed:
    """Kea's memfile CSV (``address,hwaddr,...,expire,...,hostname,state``)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "address" not in reader.fieldnames:
        return [], [f"{source}:1: expected a Kea lease CSV header starting with 'address'"] if text else []
    leases, problems = [], []
    for row in reader:
        ip = _ip(row.get("address") or "")
        if ip is None:
            problems.append(f"{source}:{reader.line_num}: expected an address, found {row.get('address')!r}")
            continue
        expire = row.get("expire") or ""
        hostname = (row.get("hostname") or "").rstrip(".") or None
        leases.append(Lease(ip, _mac(row.get("hwaddr") or ""), hostname,
                            float(expire) if expire.isdigit() else None, (row.get("state") or "0") == "0"))
    return leases, problems


LEASE_FORMATS: dict[str, Callable[[str, str], Parsed]] = {
    "dnsmasq": parse_dnsmasq,
    "odhcpd": parse_odhcpd,
    "networkd": parse_networkd,
    "isc": parse_isc,
    "kea": parse_kea,
}


def parse_leases(fmt: str, text: str, source: str) -> Parsed:
    """Parse a lease file's text in one of :data:`LEASE_FORMATS`."""
    parser = LEASE_FORMATS.get(fmt)
    if parser is None:
        raise InputError(f"{source}: unknown lease format {fmt!r}; "
                         f"expected one of {', '.join(LEASE_FORMATS)}")
    return parser(text, source)


@dataclass(frozen=True, slots=True)
class LeaseSource:
    """A lease file (or a glob of them) and its format."""

    format: str
    path: str


DEFAULT_LEASE_SOURCES: tuple[LeaseSource, ...] = (
    LeaseSource("dnsmasq", "/var/lib/misc/dnsmasq.leases"),
    LeaseSource("dnsmasq", "/tmp/dhcp.leases"),  # OpenWrt
    LeaseSource("dnsmasq", "/var/lib/NetworkManager/dnsmasq-*.leases"),  # NetworkManager hotspot
    LeaseSource("odhcpd", "/tmp/hosts/odhcpd"),
    LeaseSource("odhcpd", "/tmp/odhcpd.leases"),
    LeaseSource("networkd", "/run/systemd/netif/dhcp-server-lease/*"),
    LeaseSource("networkd", "/var/lib/systemd/network/dhcp-server-lease/*"),
    LeaseSource("isc", "/var/lib/dhcp/dhcpd.leases"),
    LeaseSource("kea", "/var/lib/kea/kea-leases4.csv"),
)


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

        try:
            self._ipr = IPRoute(netns=netns) if netns else IPRoute()
        except OSError as exc:
            raise MeterError("cannot open rtnetlink to read the neighbour table: "
                             f"{exc.strerror or exc}") from exc

    def neighbours(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for msg in self._ipr.get_neighbours():
            if msg["state"] & (_NUD_INCOMPLETE | _NUD_FAILED | _NUD_NOARP):
                continue
            ip, mac = msg.get("NDA_DST"), msg.get("NDA_LLADDR")
            if ip and mac and mac != "00:00:00:00:00:00" and _MAC_RE.match(mac.lower()):
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
            if len(fields) >= 4 and int(fields[2], 16) & 0x2 and fields[3] != "00:00:00:00:00:00":
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
    unknown = set(table) - {"leases", "default_leases", "refresh"}
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
        key = _ip(ip) or ip
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
