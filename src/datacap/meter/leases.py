"""DHCP lease files as the servers write them: dnsmasq, odhcpd, systemd-networkd, ISC dhcpd, Kea.

Pure parsers: text in, ``(leases, problems)`` out. A line that cannot be read becomes a problem
``FILE:LINE: expected ..., found ...`` and is skipped, never guessed at.
"""

from __future__ import annotations

import calendar
import csv
import io
import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datacap.errors import InputError

__all__ = ["DEFAULT_LEASE_SOURCES", "LEASE_FORMATS", "MAC_RE", "Lease", "LeaseSource", "normalize_ip",
           "parse_leases"]

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


@dataclass(frozen=True, slots=True)
class Lease:
    """One address a DHCP server handed out, to whom (MAC) and under which name, until when."""

    ip: str
    mac: str | None
    hostname: str | None
    expires: float | None = None  # epoch seconds; None: no expiry known or infinite
    active: bool = True  # ISC dhcpd keeps freed leases in its journal; those name no current holder


Parsed = tuple[list[Lease], list[str]]  # leases, problems ("FILE:LINE: ...")


def normalize_ip(text: str) -> str | None:
    """Canonical text of an address (a ``/prefix`` is dropped); ``None`` if it is no address."""
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
    return mac if MAC_RE.match(mac) else None


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
        ip = normalize_ip(fields[2]) if len(fields) >= 4 else None
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
            ip = normalize_ip(fields[0])
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
            ip = normalize_ip(addr)
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
            ip = normalize_ip(opened.group(1))
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
        ip = normalize_ip(row.get("address") or "")
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

